#! -*- coding: utf-8 -*-
# Post 3: 用Seq2Seq做小学数学应用题 (Seq2Seq for primary-school maths word
# problems, ape210k), https://kexue.fm/archives/7809
#
# A UniLM (BERT with a seq2seq attention mask) reads a problem and writes an
# expression; the expression is evaluated exactly and safely (no eval) and
# compared with the answer.
#
#   python examples/post3_math_word_problems.py            # tiny BERT + synthetic problems
#   python examples/post3_math_word_problems.py \
#       --pretrained chinese_roberta_wwm_ext_L-12_H-768_A-12 --data ape210k/
#       # real release and data, the post's settings (or --config/--checkpoint/--dict)
import argparse
import os
import sys
import time


import bert4keras_blog  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.layers import Loss
from bert4keras.optimizers import Adam
from bert4keras.tokenizers import Tokenizer
from bert4keras_blog.compat import K, keras, special_tokens
from bert4keras_blog.experiment.claims import proportion
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.datafiles import accept
from bert4keras_blog.mathword import heldout_split, load_ape210k, write_jsonl
from bert4keras_blog.mathword.solver import (
    MathSolver, ProblemCodec, Seq2SeqGenerator, math_vocabulary, save_solver)
from bert4keras_blog.experiment.flags import (
    add_data_arguments, add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.distribute import make_strategy
from bert4keras_blog.experiment.flags import add_common_arguments
from bert4keras_blog.experiment.training import KeepBest, set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post3_math_word_problems'

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'train_size': 6000, 'epochs': 5}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='UniLM solves maths word problems (post 3).')
    add_release_arguments(parser, kinds=('bert', 'roberta'))
    add_data_arguments(parser, 'folder with train.ape.json, valid.ape.json, test.ape.json',
                       files=('train.ape.json', 'valid.ape.json', 'test.ape.json'),
                       with_release=True)
    parser.add_argument('--maxlen', type=int, help='source length (real: 192, tiny: 96)')
    parser.add_argument('--lr', type=float, help='learning rate (real: 2e-5, tiny: 2e-3)')
    parser.add_argument('--topk', type=int, default=3, help='beam size for the final test')
    parser.add_argument('--train-size', type=int, default=6000, help='synthetic problems')
    parser.add_argument('--number-slots', action='store_true',
                        help='replace numbers by slot tokens instead of generating their digits '
                             '(easier for small models; the post generates digits)')
    add_common_arguments(parser, epochs=None, batch_size=32)
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    """The post's settings for a real release, small ones for the tiny model."""
    real = bool(args.releases)
    args.maxlen = args.maxlen or (192 if real else 96)
    args.lr = args.lr or (2e-5 if real else 2e-3)
    args.epochs = args.epochs or (100 if real else 8)


# -------------------------------------------------------------------- data

def load_data(args, folder):
    """Real ape210k files, or synthetic problems with a held-out test set."""
    if args.data:
        splits = {}
        for name in ('train', 'valid', 'test'):
            records = load_ape210k(os.path.join(args.data, '%s.ape.json' % name))
            accept(records.report, folder, name, args.max_rejected)
            splits[name] = records
        return splits['train'], splits['valid'], splits['test']
    # Held out: problems whose numbers never appeared with that template in training.
    train, valid, test = heldout_split(args.train_size, seed=args.seed)
    write_jsonl(train, os.path.join(folder, 'train.synthetic.json'))
    write_jsonl(test, os.path.join(folder, 'test.synthetic.json'))
    print('synthetic problems: %d train, %d valid, %d held-out test' % (
        len(train), len(valid), len(test)))
    return train, valid, test


class CrossEntropy(Loss):
    """Cross-entropy on the target part only (where the segment id is 1)."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        y_true, y_mask, y_pred = y_true[:, 1:], y_mask[:, 1:], y_pred[:, :-1]
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        return K.sum(loss * y_mask) / K.sum(y_mask)


# ------------------------------------------------------------------- model

def build(args):
    """UniLM on the checkpoint; the real vocabulary is trimmed as in the post."""
    paths = args.releases[0] if args.releases else dict(tiny('bert'), kind='bert')
    token_dict, keep_tokens = math_vocabulary(paths['dict'], trim=bool(args.releases))
    tokenizer = Tokenizer(token_dict, do_lower_case=True)
    model = build_model(paths['kind'], paths, application='unilm', keep_tokens=keep_tokens,
                        with_mlm=True)
    output = CrossEntropy(2)(model.inputs + model.outputs)
    trainer = keras.models.Model(model.inputs, output)
    trainer.compile(optimizer=Adam(args.lr))
    codec = ProblemCodec(tokenizer, maxlen=args.maxlen, number_slots=args.number_slots)
    return model, trainer, codec, paths, keep_tokens


# --------------------------------------------------------------------- run

def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy)  # first: multi-worker must precede other TF work
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder, start = run.folder, time.time()
    train, valid, test = load_data(args, folder)
    with strategy.scope():  # model and optimizer variables live on every replica
        model, trainer, codec, paths, keep_tokens = build(args)
    solver = MathSolver(model, codec, topk=1)
    weights = os.path.join(folder, 'best.weights.h5')
    keep_best = KeepBest(lambda: solver.accuracy(valid), 'accuracy', weights, model)
    data = Seq2SeqGenerator(train, codec, args.batch_size)
    trainer.fit(data.forfit(), steps_per_epoch=len(data), epochs=args.epochs,
                callbacks=[keep_best], verbose=2)

    model.load_weights(weights)
    greedy = solver.accuracy(test)
    beam = MathSolver(model, codec, topk=args.topk).accuracy(test)
    examples = [(r['original_text'], e, str(v), r['ans']) for r, (e, v) in
                zip(test[:5], solver.solve([r['original_text'] for r in test[:5]]))]
    for text, expression, value, gold in examples:
        print('%s\n  -> %s = %s (answer %s)' % (text, expression, value, gold))
    metrics = {
        'headline': 'heldout_accuracy', 'heldout_accuracy': beam['accuracy'],
        'heldout_accuracy_greedy': greedy['accuracy'],
        # One run: the interval is Wilson's over the held-out problems, not over seeds.
        'interval': list(proportion(round(beam['accuracy'] * len(test)), len(test))[1:3]),
        'valid_expressions': beam['valid_expressions'], 'test_problems': len(test),
        'best_valid_accuracy': keep_best.best['accuracy'], 'epochs': keep_best.history,
        'beam_size': args.topk, 'seconds': round(time.time() - start, 1),
        'data': args.data or 'synthetic', 'number_slots': args.number_slots,
        'vocabulary': len(keep_tokens) if keep_tokens else
        special_tokens(codec.tokenizer).vocab_size,
    }
    print('vocabulary: %d tokens%s' % (metrics['vocabulary'], ' (keep_tokens trimmed)'
                                       if keep_tokens else ''))
    run.save(metrics)
    save_solver(folder, paths['config'], paths['dict'], args.maxlen, args.number_slots,
                keep_tokens)
    print('held-out accuracy: %.1f%% (beam %d), %.1f%% (greedy) on %d problems' % (
        100 * beam['accuracy'], args.topk, 100 * greedy['accuracy'], len(test)))
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
