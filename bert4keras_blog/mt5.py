"""Post 6: mT5 for Chinese.

Google's mT5 v1.1 carries a 250,112-row vocabulary (250,100 sentencepiece
pieces, padded), most of it useless for Chinese. The post's recipe keeps the
first pieces (``<pad>``, ``</s>``, ``<unk>`` and the 256 byte pieces), the
pieces a Chinese corpus actually uses and the last pieces, writes a smaller
sentencepiece model, and hands the old ids to bert4keras as ``keep_tokens``
so the embedding and output rows of the checkpoint are sliced to match.

Public API:
    trim_vocabulary(spm_in, corpus_files, spm_out, min_count=1, keep_first=259,
                    keep_last=100, max_lines=None) -> keep_tokens (list of old ids)
    load_mt5(checkpoint, spm, config=None, size='small', keep_tokens=None,
             **kwargs) -> (t5, tokenizer)
    CONFIGS: bert4keras configs of Google's mT5 v1.1 small and base
    load_title_generator(folder, topk=3) -> TitleGenerator: the model the
        post-6 example fine-tuned into ``folder``; ``.titles(text)`` ->
        [(title, log-probability)], the beam search's answer first
    chinese_rouge_bleu(predictions, references) -> dict (per-character
        Rouge-1/2/L F1 from rouge-score, BLEU from sacrebleu's 'zh' tokenizer)
"""
import json
import os
import tempfile

from rouge_score import rouge_scorer, tokenizers
from sentencepiece import sentencepiece_model_pb2
from tqdm import tqdm
import numpy as np
import sacrebleu
import sentencepiece as spm

from bert4keras_blog.errors import BlogError
from bert4keras.models import build_transformer_model
from bert4keras.tokenizers import SpTokenizer
from bert4keras_blog.checkpoints import read_config, tiny
from bert4keras_blog.compat import special_tokens
from bert4keras_blog.decoding import T5Decoder

__all__ = ['trim_vocabulary', 'load_mt5', 'CONFIGS', 'chinese_rouge_bleu',
           'TitleGenerator', 'load_title_generator']

_COMMON = {'vocab_size': 250112, 'relative_attention_num_buckets': 32,
           'attention_head_size': 64, 'hidden_act': ['gelu_tanh', 'linear'],
           'hidden_dropout_prob': 0.1}
CONFIGS = {
    'small': dict(_COMMON, hidden_size=512, intermediate_size=1024, num_attention_heads=6,
                  num_hidden_layers=8),
    'base': dict(_COMMON, hidden_size=768, intermediate_size=2048, num_attention_heads=12,
                 num_hidden_layers=12),
}


def _corpus_lines(corpus_files, max_lines=None):
    count = 0
    for path in corpus_files:
        with open(path, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if line:
                    yield line
                    count += 1
                    if max_lines is not None and count >= max_lines:
                        return


def trim_vocabulary(spm_in, corpus_files, spm_out, min_count=1, keep_first=259, keep_last=100,
                    max_lines=None, progress=True):
    """Writes a smaller sentencepiece model with the pieces a corpus uses.

    Args:
        spm_in: str. The full model (mT5's ``sentencepiece.model``).
        corpus_files: list of str. UTF-8 text, one example a line.
        spm_out: str. Where the trimmed model goes; ``keep_tokens.json`` is
            written beside it.
        min_count: int. Keep a piece used at least this often. Defaults to 1.
        keep_first: int. Always keep ids below this (mT5: 3 specials and
            256 byte pieces, so any text still encodes). Defaults to 259.
        keep_last: int. Always keep the last ids. Defaults to 100.
        max_lines: int or None. Read at most this many corpus lines.
        progress: bool. A tqdm bar while counting.

    Returns:
        list of int: ``keep_tokens``, the old id of each new id (pass it to
        ``load_mt5`` / ``build_transformer_model``).

    Example:
    ```python
    import tempfile
    from bert4keras_blog.checkpoints import tiny
    from bert4keras_blog.corpora import peoples_daily
    from bert4keras_blog.mt5 import trim_vocabulary
    folder = tempfile.mkdtemp()
    corpus = folder + '/corpus.txt'
    open(corpus, 'w', encoding='utf-8').write('\\n'.join(peoples_daily(limit=200)))
    keep = trim_vocabulary(tiny('mt5.1.1')['spm'], [corpus], folder + '/small.model',
                           progress=False)
    assert keep[:3] == [0, 1, 2]
    ```
    """
    processor = spm.SentencePieceProcessor(model_file=spm_in)
    size = processor.get_piece_size()
    counts = np.zeros(size, dtype=np.int64)
    lines = _corpus_lines(corpus_files, max_lines)
    for line in tqdm(lines, desc='counting pieces', unit=' lines', disable=not progress):
        np.add.at(counts, processor.encode(line), 1)
    keep = sorted(set(range(min(keep_first, size))) | set(range(max(size - keep_last, 0), size)) |
                  set(np.flatnonzero(counts >= min_count).tolist()))
    proto = sentencepiece_model_pb2.ModelProto()
    with open(spm_in, 'rb') as f:
        proto.ParseFromString(f.read())
    pieces = [proto.pieces[i] for i in keep]
    kept = [sentencepiece_model_pb2.ModelProto.SentencePiece() for _ in pieces]
    for new, old in zip(kept, pieces):
        new.CopyFrom(old)
    del proto.pieces[:]
    proto.pieces.extend(kept)
    proto.trainer_spec.vocab_size = len(kept)
    with open(spm_out, 'wb') as f:
        f.write(proto.SerializeToString())
    with open(os.path.join(os.path.dirname(os.path.abspath(spm_out)), 'keep_tokens.json'),
              'w') as f:
        json.dump(keep, f)
    return keep


def load_mt5(checkpoint, spm, config=None, size='small', keep_tokens=None, **kwargs):
    """Builds bert4keras' mT5 v1.1 and its tokenizer, checkpoint loaded.

    Args:
        checkpoint: str. ``model.ckpt-1000000`` of Google's release (or a
            tiny one).
        spm: str. The sentencepiece model (trimmed or not).
        config: str or None. A bert4keras JSON config; None uses
            ``CONFIGS[size]``.
        size: str. 'small' or 'base' when ``config`` is None.
        keep_tokens: list of int or None. Old ids of a trimmed vocabulary.
        **kwargs: more ``build_transformer_model`` arguments.

    Returns:
        (t5, tokenizer): the bert4keras T5 object (``.encoder``,
        ``.decoder``, ``.model``) and ``SpTokenizer(token_start=None,
        token_end='</s>')``.

    Raises:
        CheckpointMismatchError: the config does not fit the checkpoint.
        BlogError: unknown size, or the tokenizer and keep_tokens disagree.
    """
    if config is None:
        if size not in CONFIGS:
            raise BlogError('unknown mT5 size %r; choose %s or pass config=' % (
                size, ', '.join(CONFIGS)))
        folder = tempfile.mkdtemp(prefix='mt5-config-')
        config = os.path.join(folder, 'mt5_%s_config.json' % size)
        with open(config, 'w') as f:
            json.dump(CONFIGS[size], f)
    tokenizer = SpTokenizer(spm, token_start=None, token_end='</s>')
    vocab_rows = len(keep_tokens) if keep_tokens is not None else read_config(config)['vocab_size']
    if special_tokens(tokenizer).vocab_size > vocab_rows:
        raise BlogError('%s has %d pieces but the model gets %d embedding rows; pass the '
                        'keep_tokens written by trim_vocabulary' % (
                            spm, special_tokens(tokenizer).vocab_size, vocab_rows))
    t5 = build_transformer_model(config, checkpoint, model='mt5.1.1', keep_tokens=keep_tokens,
                                 return_keras_model=False, **kwargs)
    return t5, tokenizer


def chinese_rouge_bleu(predictions, references, per_example=False):
    """Per-character Rouge-1/2/L F1 (rouge-score) and BLEU (sacrebleu, 'zh').

    Returns:
        dict with 'rouge-1', 'rouge-2', 'rouge-l' (mean F1 in [0, 1]) and
        'bleu' (corpus BLEU in [0, 1]); with ``per_example``, also
        'rouge-l_by_example' (one F1 per pair, for an interval over them).
    """

    class Characters(tokenizers.Tokenizer):
        """rouge-score's default tokenizer drops Chinese; score characters."""

        def tokenize(self, text):
            return [c for c in text if not c.isspace()]

    scorer = rouge_scorer.RougeScorer(['rouge1', 'rouge2', 'rougeL'], tokenizer=Characters())
    totals = {'rouge-1': 0.0, 'rouge-2': 0.0, 'rouge-l': 0.0}
    rouge_l = []
    for prediction, reference in zip(predictions, references):
        scores = scorer.score(reference, prediction)
        totals['rouge-1'] += scores['rouge1'].fmeasure
        totals['rouge-2'] += scores['rouge2'].fmeasure
        rouge_l.append(scores['rougeL'].fmeasure)
    totals['rouge-l'] = sum(rouge_l)
    n = max(len(references), 1)
    result = {k: v / n for k, v in totals.items()}
    if per_example:
        result['rouge-l_by_example'] = rouge_l
    result['bleu'] = sacrebleu.corpus_bleu(list(predictions), [list(references)],
                                           tokenize='zh').score / 100
    return result


class TitleGenerator(object):
    """Titles for new texts from a fine-tuned mT5 (beam search, cached).

    Args:
        t5: the bert4keras T5 object, weights loaded.
        tokenizer: its ``SpTokenizer``.
        max_source, max_target: int. Token limits the model was trained with.
        topk: int. Beam size.
        precision: 'float32' or 'bfloat16' (``T5Decoder``).
    """

    def __init__(self, t5, tokenizer, max_source, max_target, topk=3, precision='float32'):
        self.tokenizer, self.max_source, self.topk = tokenizer, max_source, topk
        self.decoder = T5Decoder(t5, end_id=special_tokens(tokenizer).end, maxlen=max_target,
                                 precision=precision)

    def titles(self, text):
        """[(title, log-probability)]: the beam search's answer, then the
        beams that ended before it."""
        ids = self.tokenizer.encode(text, maxlen=self.max_source)[0]
        found = self.decoder.batch_beam_search([[np.array(ids)]], self.topk, candidates=True)[0]
        return [(self.tokenizer.decode([int(i) for i in output[1:]]), score)
                for output, score in found]


def load_title_generator(folder, topk=3, precision='float32'):
    """Rebuilds the model ``examples/post6_mt5_title_generation.py`` trained
    into ``folder`` from its run record (the release's config, or the tiny
    one), trimmed vocabulary and best weights.

    Raises:
        BlogError: a file of the run is missing (train first).
    """
    names = ('metrics.json', 'sentencepiece.trimmed.model', 'keep_tokens.json',
             'best.weights.h5')
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise BlogError('%s has no %s: train a title model first with '
                        'python examples/post6_mt5_title_generation.py'
                        % (folder, ' or '.join(missing)))
    with open(os.path.join(folder, 'metrics.json'), encoding='utf-8') as f:
        run = json.load(f).get('run') or {}
    settings, releases = run.get('settings', {}), run.get('inputs', {}).get('releases', [])
    if not settings:
        raise BlogError('%s/metrics.json has no run record; train again with '
                        'python examples/post6_mt5_title_generation.py' % folder)
    config = releases[0]['config']['path'] if releases else tiny('mt5.1.1')['config']
    with open(os.path.join(folder, 'keep_tokens.json')) as f:
        keep_tokens = json.load(f)
    t5, tokenizer = load_mt5(None, os.path.join(folder, 'sentencepiece.trimmed.model'),
                             config=config, keep_tokens=keep_tokens)
    t5.model.load_weights(os.path.join(folder, 'best.weights.h5'))
    return TitleGenerator(t5, tokenizer, settings['max_source'], settings['max_target'], topk,
                          precision)
