"""Post 4's long-output tasks and the accuracy-by-position measure."""
import numpy as np
import pytest

from bert4keras.tokenizers import Tokenizer
from bert4keras_blog.checkpoints import tiny
from bert4keras_blog.errors import BlogError
from bert4keras_blog.exposure import MathTask, SortingTask, digit_vocabulary, score
from bert4keras_blog.mathword import heldout_split
from bert4keras_blog.mathword.solver import ProblemCodec, math_vocabulary


def test_sorting_batches_hold_the_digits_then_the_same_digits_sorted():
    token_dict, keep = digit_vocabulary(tiny('bert')['dict'])
    assert len(keep) == 15 and token_dict['0'] == 5 and token_dict['[SEP]'] == 3
    task = SortingTask(token_dict, length=12, valid=5, test=7, seed=3)
    tokens, segments = task.train_batch(20, np.random.default_rng(0))
    assert tokens.shape == segments.shape == (20, 1 + 12 + 1 + 12 + 1)
    source, target = tokens[:, 1:13], tokens[:, 14:26]
    assert (np.sort(source, axis=1) == target).all()
    assert (tokens[:, [0, 13, 26]] == [2, 3, 3]).all()
    assert (segments[:, :14] == 0).all() and (segments[:, 14:] == 1).all()
    assert len(task.valid) == 5 and len(task.test) == 7
    # The same seed gives the same held-out strings; the splits differ.
    again = SortingTask(token_dict, length=12, valid=5, test=7, seed=3)
    assert again.test == task.test and task.valid[0] != task.test[0]
    for source_ids, target_ids in task.test:
        assert sorted(source_ids[1:-1]) == target_ids


def test_score_counts_exact_tokens_and_each_position():
    end = 3
    targets = [[5, 6, 7, 8], [5, 5, 9, 9], [6, 7]]
    outputs = [[5, 6, 7, 8, end],          # right
               [5, 9, 9, end],             # a digit dropped: the rest shifts
               [6, 7, 7, 7, end]]          # overruns its target
    result = score(outputs, targets, end)
    assert result['exact'] == pytest.approx(1 / 3)
    # Position 2 of the shifted output is right by coincidence (9 = 9); position 3 is missing.
    assert result['by_position'] == pytest.approx([1.0, 2 / 3, 1.0, 1 / 2])
    assert result['token_accuracy'] == pytest.approx((1 + 2 / 4 + 2 / 4) / 3)
    with pytest.raises(BlogError):
        score([], [], end)


def test_a_vocabulary_without_digits_is_named(tmp_path):
    vocab = tmp_path / 'vocab.txt'
    vocab.write_text('\n'.join(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '甲', '乙']),
                     encoding='utf-8')
    with pytest.raises(BlogError, match=r'vocab.txt: lacks 0, 1, 2'):
        digit_vocabulary(str(vocab))


def test_math_task_targets_are_the_encoded_expressions():
    token_dict, _ = math_vocabulary(tiny('bert')['dict'], trim=False)
    codec = ProblemCodec(Tokenizer(token_dict, do_lower_case=True), maxlen=96, number_slots=True)
    train, valid, test = heldout_split(60, seed=0, valid=4, test=4)
    task = MathTask(train, valid, test, codec=codec, vocab_size=len(token_dict))
    for record, (source, target) in zip(test, task.test):
        ids, segments = codec.encode(record['original_text'], record['equation'])
        assert ids == source + target + [codec.end_id]
        assert segments.count(1) == len(target) + 1
    assert task.constraint(0, [])[codec.end_id] and task.max_target > len(task.test[0][1])
    tokens, segments = task.train_batch(6, np.random.default_rng(0))
    assert tokens.shape[0] == 6 and (segments.sum(axis=1) > 0).all()
