"""What the web page asks of the trained models, with every input checked.

The server keeps no game or session: each request carries the whole
position (start FEN and moves), which the rules library checks before
anything else happens, so a bad request can change nothing. Each model
loads once, on first use, and its calls run one at a time (``ModelSlot``).

Public API:
    RequestError(status, message): a request the server refuses (4xx, or
        503 when a model already has LIMITS['queued_per_model'] waiting).
    ModelSlot(name, folder, required, load, train_command, shown=None)
        .ready(), .call(fn), .describe() -> dict
    Services(runs_root): the three models over one runs folder, and
        .public(text) (folders named relative to --runs), .status(),
        .chess_state(body), .chess_move(body), .chess_reply(body),
        .chess_record(body), .math(body), .titles(body), .results(),
        .plot_path(example, name)
    LIMITS: the sizes a request may have.
"""
import json
import os
import re
import threading

import numpy as np

from bert4keras_blog.errors import BlogError
from bert4keras_blog.mathword.answers import to_text
from bert4keras_blog.app.results_pages import POSTS, headline, scalar_rows
from bert4keras_blog.xiangqi.records import Game, format_game
from bert4keras_blog.xiangqi.rules import (
    MAX_PLIES, PIECE_NAMES, START_FEN, board_rows, check_fen, legal_moves, normalize_iccs,
    outcome, side_to_move)

__all__ = ['RequestError', 'ModelSlot', 'Services', 'LIMITS']

LIMITS = {'body_bytes': 64 * 1024, 'problem_chars': 500, 'abstract_chars': 2000,
          'candidates': 5, 'queued_per_model': 4}
_PLOT_NAME = re.compile(r'^[\w.-]+\.png$')
_BUILD_LOCK = threading.Lock()  # Keras layer names and uids are global while building
_HERE = os.path.abspath(__file__)  # bert4keras_blog/app/web/services.py
_PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(_HERE))))


class RequestError(Exception):
    """A request refused with ``status`` (4xx) and a message for the page."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ModelSlot(object):
    """One model: loaded on first use, shared, called one request at a time.

    Args:
        name: what the page calls it ('chess', 'maths', 'titles').
        folder: its run folder (or model folder).
        required: file names that must be in ``folder`` before loading.
        load: callable(folder) -> the loaded model object.
        train_command: how a user trains it, shown when it is missing.
    """

    def __init__(self, name, folder, required, load, train_command, shown=None):
        self.name, self.folder, self.required = name, folder, required
        self.load, self.train_command = load, train_command
        self.shown = shown or folder  # how responses name the folder (relative to --runs)
        self.lock = threading.Lock()
        self.model = None
        self.waiting = 0  # requests inside call(): the one running and those queued
        self._count = threading.Lock()

    def ready(self):
        return all(os.path.isfile(os.path.join(self.folder, n)) for n in self.required)

    def describe(self):
        return {'ready': self.ready(), 'loaded': self.model is not None,
                'folder': self.shown, 'train': self.train_command}

    def call(self, fn):
        """``fn(model)``, after any call already running on this model; a
        503 when ``LIMITS['queued_per_model']`` requests already wait."""
        if not self.ready():
            raise RequestError(409, 'no trained %s model in %s; train one with: %s' % (
                self.name, self.shown, self.train_command))
        with self._count:
            if self.waiting >= LIMITS['queued_per_model']:
                raise RequestError(503, 'the %s model is busy with %d requests; try again '
                                        'shortly' % (self.name, self.waiting))
            self.waiting += 1
        try:
            with self.lock:
                if self.model is None:
                    with _BUILD_LOCK:
                        try:
                            self.model = self.load(self.folder)
                        except BlogError as error:  # a run folder cut short or broken
                            raise RequestError(409, 'the %s model in %s cannot be loaded: %s'
                                               % (self.name, self.shown, error)) from None
                return fn(self.model)
        finally:
            with self._count:
                self.waiting -= 1


def _field(body, name, kind, required=True, default=None):
    if not isinstance(body, dict):
        raise RequestError(400, 'the request body must be a JSON object')
    if name not in body or body[name] is None:
        if required:
            raise RequestError(400, 'field "%s" is missing' % name)
        return default
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RequestError(400, 'field "%s" must be a %s' % (
            name, {str: 'string', list: 'list'}.get(kind, kind.__name__)))
    return value


def _text(body, name, limit):
    text = _field(body, name, str).strip()
    if not text:
        raise RequestError(400, 'field "%s" is empty' % name)
    if len(text) > limit:
        raise RequestError(413, 'field "%s" has %d characters; at most %d' % (
            name, len(text), limit))
    return text


def _position(body):
    """(fen or None, moves) of a request, checked against the rules."""
    fen = _field(body, 'fen', str, required=False)
    moves = _field(body, 'moves', list, required=False, default=[])
    if len(moves) > MAX_PLIES:
        raise RequestError(400, '%d moves; a game has at most %d' % (len(moves), MAX_PLIES))
    if not all(isinstance(m, str) and len(m) <= 8 for m in moves):
        raise RequestError(400, 'field "moves" must be a list of ICCS moves such as "h2e2"')
    moves = [normalize_iccs(m) for m in moves]
    try:
        fen = check_fen(fen) if fen and fen.strip() else None
        legal_moves(moves, fen)
    except BlogError as error:
        raise RequestError(400, str(error)) from None
    return fen, moves


def _state(fen, moves):
    ended = outcome(moves, fen)
    return {'fen': fen, 'moves': moves, 'board': board_rows(moves, fen),
            'turn': side_to_move(moves, fen), 'legal': [] if ended else legal_moves(moves, fen),
            'last': moves[-1] if moves else None,
            'result': ended and {'result': ended[0], 'reason': ended[1]}}


def _load_chess(folder):
    from bert4keras_blog.xiangqi.lm import load_move_model
    from bert4keras_blog.xiangqi.player import MovePlayer
    transformer, tokenizer = load_move_model(folder)
    return MovePlayer(transformer, tokenizer)


def _load_maths(folder):
    from bert4keras_blog.mathword.solver import load_solver
    return load_solver(folder, topk=3)


def _load_titles(folder):
    from bert4keras_blog.mt5 import load_title_generator
    return load_title_generator(folder, topk=3)


class Services(object):
    """The page's operations over the run folders under ``runs_root``."""

    def __init__(self, runs_root):
        self.runs_root = os.path.abspath(runs_root)
        # Responses name folders from here, never by absolute path.
        self.runs_name = os.path.basename(self.runs_root.rstrip(os.sep)) or 'runs'

        def slot(name, parts, required, load, example):
            return ModelSlot(name, os.path.join(self.runs_root, *parts), required, load,
                             'python examples/%s.py' % example,
                             shown='/'.join((self.runs_name,) + parts))
        self.slots = {
            'chess': slot('chess', ('post7_gpt_xiangqi', 'model'),
                          ['bert_config.json', 'vocab.txt'], _load_chess, 'post7_gpt_xiangqi'),
            'maths': slot('maths', ('post3_math_word_problems',), ['solver.json'], _load_maths,
                          'post3_math_word_problems'),
            'titles': slot('titles', ('post6_mt5_title_generation',),
                           ['metrics.json', 'keep_tokens.json', 'best.weights.h5'],
                           _load_titles, 'post6_mt5_title_generation'),
        }

    def public(self, text):
        """``text`` with the machine's folders named relative to ``--runs``
        (or to the project, or ``~``), for a response."""
        for folder, name in ((self.runs_root, self.runs_name), (_PROJECT, '.'),
                             (os.getcwd(), '.'), (os.path.expanduser('~'), '~')):
            if len(folder) > 1:
                text = text.replace(folder.rstrip(os.sep) + os.sep, name + '/')
        return text

    def status(self):
        return {'runs': self.runs_name, 'pieces': PIECE_NAMES, 'start_fen': START_FEN,
                'limits': LIMITS,
                'models': {name: slot.describe() for name, slot in self.slots.items()}}

    def warm_up(self):
        """Loads every trained model now rather than on its first request."""
        for slot in self.slots.values():
            if slot.ready():
                slot.call(lambda model: None)

    # ---------------------------------------------------------------- chess

    def chess_state(self, body):
        return _state(*_position(body))

    def chess_move(self, body):
        """The human's move, checked; the position after it."""
        fen, moves = _position(body)
        move = normalize_iccs(_field(body, 'move', str)[:8])
        if outcome(moves, fen):
            raise RequestError(409, 'the game is over')
        if move not in legal_moves(moves, fen):
            raise RequestError(400, '"%s" is not a legal move here (ICCS, e.g. h2e2; the '
                                    'board lists the legal ones)' % move)
        return _state(fen, moves + [move])

    def chess_reply(self, body):
        """The model's move and its top candidates with probabilities."""
        fen, moves = _position(body)
        if outcome(moves, fen):
            raise RequestError(409, 'the game is over')
        scores = self.slots['chess'].call(lambda player: player.scores(moves, fen))
        legal = sorted(scores, key=scores.get, reverse=True)
        values = np.array([scores[m] for m in legal])
        probabilities = np.exp(values - values.max())
        probabilities /= probabilities.sum()
        state = _state(fen, moves + [legal[0]])
        state['model_move'] = legal[0]
        state['candidates'] = [{'move': m, 'probability': float(p)} for m, p in
                               zip(legal[:LIMITS['candidates']], probabilities)]
        return state

    def chess_record(self, body):
        """The game as one line of an ICCS record file."""
        fen, moves = _position(body)
        ended = outcome(moves, fen)
        return format_game(Game(moves, ended[0] if ended else '*', fen))

    # ------------------------------------------------------- maths, titles

    def math(self, body):
        text = _text(body, 'text', LIMITS['problem_chars'])
        found = self.slots['maths'].call(lambda solver: solver.candidates(text))
        candidates = [{'expression': e, 'log_probability': s,
                       'value': None if v is None else to_text(v)} for e, s, v in found]
        return dict(candidates[0], candidates=candidates)

    def titles(self, body):
        text = _text(body, 'text', LIMITS['abstract_chars'])
        found = self.slots['titles'].call(lambda generator: generator.titles(text))
        return {'title': found[0][0],
                'candidates': [{'title': t, 'log_probability': s} for t, s in found]}

    # -------------------------------------------------------------- results

    def results(self):
        """One card per post that has a run folder with ``metrics.json``."""
        cards = []
        for number, example, page, claim in POSTS:
            folder = os.path.join(self.runs_root, example)
            path = os.path.join(folder, 'metrics.json')
            if not os.path.isfile(path):
                cards.append({'post': number, 'example': example, 'claim': claim,
                              'missing': 'python examples/%s.py' % example})
                continue
            try:
                with open(path, encoding='utf-8') as f:
                    metrics = json.load(f)
            except (OSError, ValueError) as error:
                cards.append({'post': number, 'example': example, 'claim': claim,
                              'error': '%s/%s/metrics.json: %s' % (self.runs_name, example,
                                                                   error)})
                continue
            name, value = headline(metrics)
            plots = sorted(n for n in os.listdir(folder) if _PLOT_NAME.match(n))
            cards.append({'post': number, 'example': example, 'claim': claim, 'page': page,
                          'headline': name, 'value': value,
                          'scalars': scalar_rows(metrics)[:24],
                          'plots': ['/runs/%s/%s' % (example, n) for n in plots],
                          'command': ' '.join((metrics.get('run') or {}).get('command', []))})
        return cards

    def plot_path(self, example, name):
        """The file of a plot named in a results card; anything else is 404."""
        if example not in {e for _, e, _, _ in POSTS} or not _PLOT_NAME.match(name):
            raise RequestError(404, 'no such plot: %s/%s' % (example, name))
        path = os.path.join(self.runs_root, example, name)
        if not os.path.isfile(path):
            raise RequestError(404, 'no such plot: %s/%s' % (example, name))
        return path
