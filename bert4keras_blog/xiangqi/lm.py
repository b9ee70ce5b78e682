"""The language model over ICCS moves: tokens, batches, model, files.

A game is the start token followed by the characters of its moves,
``[CLS] h 2 e 2 h 9 g 7 ...``: four tokens a move, 23 tokens in all
('[PAD]', '[UNK]', '[CLS]', '[SEP]', '0'-'9', 'a'-'i'). The model is a
BERT with a left-to-right mask (bert4keras ``application='lm'``), from
scratch or from a Chinese BERT whose vocabulary is cut down to these tokens
(all of them are in Google's Chinese vocab.txt), as the post did.

Training grows the games in stages: first the opening 1/8 of each game, then
1/4, 1/2 and the whole game (up to ``maxlen`` tokens), so the model learns
the frequent openings before the long tails.

Public API:
    TOKENS, MoveTokenizer
    move_weights(game, learn_from='winner', fen=None) -> per-ply 0/1 weights
    GameBatches(games, tokenizer, batch_size, fraction=1.0, maxlen=512, learn_from='winner')
    MoveCrossEntropy: bert4keras Loss layer [token_ids, weights, probabilities]
    DEFAULT_CONFIG
    build_move_model(config=None, checkpoint=None, dict_path=None) -> (transformer, tokenizer)
    build_trainer(model, optimizer) -> Keras model to fit on GameBatches
    save_move_model(transformer, folder, config=None) -> dict of paths
    load_move_model(folder) -> (transformer, tokenizer)
"""
import json
import math
import os

import numpy as np

from bert4keras_blog.compat import K, keras
from bert4keras_blog.errors import BlogError, SettingError
from bert4keras.layers import Loss
from bert4keras.models import build_transformer_model
from bert4keras.snippets import DataGenerator, sequence_padding
from bert4keras.tokenizers import load_vocab
from bert4keras_blog.checkpoints import RELEASES, find_release, save_checkpoint

__all__ = ['TOKENS', 'MoveTokenizer', 'move_weights', 'GameBatches', 'MoveCrossEntropy',
           'DEFAULT_CONFIG', 'build_move_model', 'build_trainer', 'save_move_model',
           'load_move_model']

TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] + list('0123456789abcdefghi')

# The embedded default: small enough to train in minutes on 2 CPU cores (a
# wider 4-layer model, hidden 192, reached a higher loss in about the same
# time); no dropout, as a few minutes of training do not overfit 4,500 games.
DEFAULT_CONFIG = dict(vocab_size=len(TOKENS), hidden_size=128, num_hidden_layers=3,
                      num_attention_heads=4, intermediate_size=512, hidden_act='gelu',
                      max_position_embeddings=512, type_vocab_size=2,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      initializer_range=0.02)


class MoveTokenizer(object):
    """ICCS moves <-> token ids. ``start_id`` opens every game."""

    def __init__(self):
        self.token_to_id = {t: i for i, t in enumerate(TOKENS)}
        self.start_id = self.token_to_id['[CLS]']
        self.vocab_size = len(TOKENS)

    @staticmethod
    def keep_tokens(dict_path):
        """Rows of a BERT vocab.txt to keep (bert4keras ``keep_tokens``) so
        the model's vocabulary is ``TOKENS`` in this order."""
        vocab = load_vocab(dict_path)
        missing = [t for t in TOKENS if t not in vocab]
        if missing:
            raise BlogError('%s lacks the tokens %s that ICCS moves need' % (dict_path, missing))
        return [vocab[t] for t in TOKENS]

    def encode(self, moves):
        """[start] + four ids a move."""
        ids = [self.start_id]
        for move in moves:
            ids.extend(self.token_to_id[c] for c in move)
        return ids

    def decode(self, ids):
        """Token ids (the start id optional) -> moves; a tail shorter than a
        move is dropped."""
        chars = ''.join(TOKENS[i] for i in ids if i != self.start_id)
        return [chars[i:i + 4] for i in range(0, len(chars) - 3, 4)]


def move_weights(game, learn_from='winner', fen=None):
    """1 for the plies the model should learn, 0 for the others.

    learn_from: 'all' (every move, as the post), or 'winner' (the winner's
    moves of decisive games, every move of draws and unknown results), which
    teaches the model to play like the side that won.
    """
    n = len(game.moves)
    if learn_from == 'all' or game.result not in ('1-0', '0-1'):
        return np.ones(n)
    if learn_from != 'winner':
        raise SettingError("learn_from must be 'all' or 'winner', not %r" % (learn_from,))
    red_first = fen is None or fen.split()[1] == 'w'
    red_plies = np.arange(n) % 2 == (0 if red_first else 1)
    return (red_plies if game.result == '1-0' else ~red_plies).astype(float)


class GameBatches(DataGenerator):
    """bert4keras DataGenerator of (token_ids, segment_ids, weights) batches.

    Each game is cut to its first ``ceil(fraction * plies)`` plies and to
    ``maxlen`` tokens; set ``fraction`` between ``fit`` calls to train in
    stages. ``weights`` marks the tokens of the plies to learn (``move_weights``).
    """

    def __init__(self, games, tokenizer, batch_size, fraction=1.0, maxlen=512,
                 learn_from='winner'):
        super().__init__(games, batch_size)
        self.tokenizer, self.fraction, self.maxlen = tokenizer, fraction, maxlen
        self.learn_from = learn_from

    def encode(self, game):
        plies = min(int(math.ceil(self.fraction * len(game.moves))), (self.maxlen - 1) // 4)
        token_ids = self.tokenizer.encode(game.moves[:plies])
        weights = np.concatenate([[0.0], np.repeat(move_weights(game, self.learn_from)[:plies], 4)])
        return token_ids, weights

    def __iter__(self, random=False):
        tokens, weights = [], []
        for is_end, game in self.sample(random):
            token_ids, weight = self.encode(game)
            tokens.append(token_ids)
            weights.append(weight)
            if len(tokens) == self.batch_size or is_end:
                tokens, weights = sequence_padding(tokens), sequence_padding(weights)
                # A tuple: tf_keras would stack a list of equal-shape arrays into one input.
                yield (tokens, np.zeros_like(tokens), weights), None
                tokens, weights = [], []


class MoveCrossEntropy(Loss):
    """Next-token cross-entropy where ``weights`` (of the predicted token) is 1."""

    def compute_loss(self, inputs, mask=None):
        token_ids, weights, probabilities = inputs
        y_true, y_weight = token_ids[:, 1:], weights[:, 1:]
        loss = K.sparse_categorical_crossentropy(y_true, probabilities[:, :-1])
        return K.sum(loss * y_weight) / K.maximum(K.sum(y_weight), 1.0)


def build_move_model(config=None, checkpoint=None, dict_path=None):
    """The move LM: from scratch on ``DEFAULT_CONFIG`` (or a config dict),
    or from a BERT release (``config`` a path, ``checkpoint``, and its
    ``dict_path`` to cut the vocabulary down to ``TOKENS``).

    Returns:
        (bert4keras transformer, MoveTokenizer); ``transformer.model`` is the
        Keras model [token_ids, segment_ids] -> next-token probabilities.
    """
    keep_tokens = MoveTokenizer.keep_tokens(dict_path) if dict_path else None
    settings = {}
    if config is None or isinstance(config, dict):
        settings, config = dict(DEFAULT_CONFIG, **(config or {})), None
    transformer = build_transformer_model(config, checkpoint, application='lm',
                                          keep_tokens=keep_tokens, return_keras_model=False,
                                          **settings)
    if transformer.vocab_size != len(TOKENS):
        raise BlogError('the move model needs a %d-token vocabulary; %s gives %d (pass the '
                        'checkpoint\'s vocab.txt as dict_path to cut it down)'
                        % (len(TOKENS), config, transformer.vocab_size))
    return transformer, MoveTokenizer()


def build_trainer(model, optimizer):
    """``model`` (Keras or bert4keras) plus a weights input and the
    MoveCrossEntropy loss, compiled."""
    model = getattr(model, 'model', model)
    weights = keras.layers.Input(shape=(None,), name='Move-Weights')
    output = MoveCrossEntropy(2)([model.inputs[0], weights, model.outputs[0]])
    trainer = keras.models.Model(model.inputs + [weights], output)
    trainer.compile(optimizer=optimizer)
    return trainer


def save_move_model(transformer, folder, config=None):
    """Writes a Google-format BERT checkpoint (``bert_model.ckpt``), its
    ``bert_config.json`` and ``vocab.txt`` (the 23 tokens), so the model
    loads as any release does, e.g. in ``bert4keras-blog xiangqi play``."""
    release = RELEASES['bert']
    os.makedirs(folder, exist_ok=True)
    bert = transformer
    settings = dict(DEFAULT_CONFIG, **(config or {}))
    settings.update(vocab_size=bert.vocab_size, hidden_size=bert.hidden_size,
                    num_hidden_layers=bert.num_hidden_layers,
                    num_attention_heads=bert.num_attention_heads,
                    intermediate_size=bert.intermediate_size,
                    max_position_embeddings=bert.max_position)
    paths = {'config': os.path.join(folder, release.config),
             'checkpoint': os.path.join(folder, release.checkpoint),
             'dict': os.path.join(folder, release.vocab)}
    with open(paths['config'], 'w') as f:
        json.dump(settings, f, indent=2)
    with open(paths['dict'], 'w', encoding='utf-8') as f:
        f.write('\n'.join(TOKENS) + '\n')
    save_checkpoint(bert, paths['checkpoint'])
    return paths


def load_move_model(folder):
    """Loads what ``save_move_model`` wrote (a folder laid out as Google's
    BERT release, found as every release is: ``checkpoints.find_release``)."""
    try:
        paths = find_release(folder, kinds=('bert',))
    except BlogError as error:
        raise BlogError('%s; train a model with examples/post7_gpt_xiangqi.py or pass the '
                        'folder it saved (runs/post7_gpt_xiangqi/model)' % error) from None
    return build_move_model(paths['config'], paths['checkpoint'], paths['dict'])
