"""Fairy-Stockfish over UCI: an opponent, and the generator of training games.

Debian and Ubuntu package the engine: ``sudo apt-get install fairy-stockfish``
puts it at ``/usr/games/fairy-stockfish``. Elsewhere build it from
https://github.com/fairy-stockfish/Fairy-Stockfish and pass its path
(``--engine PATH``) or set ``FAIRY_STOCKFISH``.

Public API:
    find_engine(path=None) -> str
    Engine(path=None, depth=1, skill=None): ``best_move(moves, fen=None)``,
        usable as a player; a context manager.
    generate_games(count, seed=0, workers=1, engine=None, ...) -> list[Game]
    EngineNotFoundError (from errors): no engine binary; says how to install one.
"""
import multiprocessing
import os
import queue
import shutil
import subprocess
import threading
import time

import numpy as np
from tqdm import tqdm

from bert4keras_blog.errors import BlogError, EngineNotFoundError
from bert4keras_blog.xiangqi.match import play_game
from bert4keras_blog.xiangqi.rules import VARIANT, fsf_to_iccs, iccs_to_fsf, legal_moves

__all__ = ['EngineNotFoundError', 'find_engine', 'Engine', 'generate_games']

INSTALL_HINT = ('install Fairy-Stockfish: on Debian/Ubuntu `sudo apt-get install '
                'fairy-stockfish` (it lands in /usr/games/fairy-stockfish); elsewhere build '
                'https://github.com/fairy-stockfish/Fairy-Stockfish and pass --engine PATH '
                'or set FAIRY_STOCKFISH=PATH')


DEBIAN_PATH = '/usr/games/fairy-stockfish'
HANDSHAKE_SECONDS = 20  # to 'uciok' and 'readyok'; the engine takes well under 1 s
MOVE_SECONDS = 120  # to 'bestmove' at a fixed depth; depth 8 takes about a second


def find_engine(path=None):
    """The engine binary: ``path`` if given, else $FAIRY_STOCKFISH,
    ``fairy-stockfish`` on PATH, or Debian's /usr/games/fairy-stockfish."""
    usable = lambda p: bool(p) and os.path.isfile(p) and os.access(p, os.X_OK)  # noqa: E731
    if path:
        if usable(path):
            return path
        raise EngineNotFoundError('no executable engine at %s; %s' % (path, INSTALL_HINT))
    for candidate in (os.environ.get('FAIRY_STOCKFISH'), shutil.which('fairy-stockfish'),
                      DEBIAN_PATH):
        if usable(candidate):
            return candidate
    raise EngineNotFoundError('Fairy-Stockfish was not found; ' + INSTALL_HINT)


class Engine(object):
    """One Fairy-Stockfish process playing xiangqi at a fixed search depth.

    Args:
        path: the binary (see ``find_engine``).
        depth: plies of search per move; 1 is weak, 8 is strong.
        skill: UCI ``Skill Level`` (-20..20; -20 is the weakest). None
            leaves the engine at full strength; any other value makes it
            pick weaker moves at random (unseeded: not reproducible).
    """

    def __init__(self, path=None, depth=1, skill=None):
        self.path, self.depth = find_engine(path), depth
        self.process = subprocess.Popen([self.path], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, bufsize=1, errors='replace')
        # A reader thread, so every wait has a deadline: a program that is
        # not a UCI engine (or hangs) is an error, never a hang.
        self.lines = queue.Queue(maxsize=10000)
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self._send('uci')
            self._wait('uciok', HANDSHAKE_SECONDS)
            self._send('setoption name UCI_Variant value ' + VARIANT)
            self._send('setoption name Threads value 1')
            if skill is not None:
                self._send('setoption name Skill Level value %d' % skill)
            self.new_game()
        except BaseException:
            self.process.kill()
            raise

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _send(self, line):
        try:
            self.process.stdin.write(line + '\n')
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise BlogError('the engine %s stopped (exit status %s) before %r; is it '
                            'Fairy-Stockfish?' % (self.path, self._exit_status(), line)) from None

    def _exit_status(self):
        try:
            return self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return 'none: killed'

    def _wait(self, prefix, seconds=MOVE_SECONDS):
        deadline = time.monotonic() + seconds
        for _ in range(10000):
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if line is None:
                raise BlogError('the engine %s stopped answering (exit status %s); is it '
                                'Fairy-Stockfish?' % (self.path, self._exit_status()))
            if line.startswith(prefix):
                return line
        self.process.kill()
        raise BlogError('the engine %s gave no %r within %d s; is it a UCI engine such as '
                        'Fairy-Stockfish?' % (self.path, prefix, seconds))

    def new_game(self):
        """Clears the hash table, so a game does not depend on the last one."""
        self._send('ucinewgame')
        self._send('isready')
        self._wait('readyok', HANDSHAKE_SECONDS)

    def best_move(self, moves, fen=None, depth=None):
        """The engine's move (ICCS) after ``moves`` (ICCS)."""
        start = 'startpos' if fen is None else 'fen ' + fen
        self._send('position %s moves %s' % (start, ' '.join(iccs_to_fsf(m) for m in moves)))
        self._send('go depth %d' % (depth or self.depth))
        answer = self._wait('bestmove').split()
        try:
            return fsf_to_iccs(answer[1])
        except (IndexError, ValueError):
            raise BlogError('the engine %s answered %r, not a move' % (self.path, ' '.join(
                answer)[:80])) from None

    __call__ = best_move

    def close(self):
        if self.process.poll() is None:
            try:
                self._send('quit')
                self.process.wait(timeout=10)
            except (BlogError, subprocess.TimeoutExpired):
                self.process.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------- generation

NOISE = (0.0, 0.05, 0.2, 0.5, 1.0)  # chance a side plays a random legal move
NOISE_WEIGHTS = (0.3, 0.25, 0.2, 0.15, 0.1)


class _NoisyEngine(object):
    """One side of a generated game: the engine at ``depth``, or with
    probability ``noise`` a random legal move."""

    def __init__(self, engine, depth, noise, rng):
        self.engine, self.depth, self.noise, self.rng = engine, depth, noise, rng

    def __call__(self, moves, fen=None):
        if self.rng.random() < self.noise:
            legal = legal_moves(moves, fen)
            return legal[self.rng.integers(len(legal))]
        return self.engine.best_move(moves, fen, self.depth)


_worker_engine = None


def _start_worker(path):
    global _worker_engine
    _worker_engine = Engine(path)


def _one_game(job):
    seed, index, max_plies, depths, opening_plies, weak_noise = job
    rng = np.random.default_rng([seed, index])
    _worker_engine.new_game()
    opening = []
    for _ in range(rng.integers(0, opening_plies + 1)):
        legal = legal_moves(opening)
        opening.append(legal[rng.integers(len(legal))])
    settings = [(int(rng.choice(depths)), float(rng.choice(NOISE, p=NOISE_WEIGHTS)))
                for _ in range(2)]  # (depth, noise) of red, then of black
    if weak_noise is not None:  # one side (either colour) weak, the other the plain engine
        weak = int(rng.integers(2))
        settings = [(depth, weak_noise if side == weak else 0.0)
                    for side, (depth, _) in enumerate(settings)]
    sides = [_NoisyEngine(_worker_engine, depth, noise, rng) for depth, noise in settings]

    def side(moves, fen=None):  # random opening, then the noisy engines
        if len(moves) < len(opening):
            return opening[len(moves)]
        return sides[len(moves) % 2](moves, fen)
    game, _ = play_game(side, side, max_plies=max_plies)
    return game


def generate_games(count, seed=0, workers=1, engine=None, max_plies=300, depths=(1, 2, 3),
                   opening_plies=8, weak_noise=None, progress=True):
    """Games Fairy-Stockfish plays against itself, reproducibly.

    Game ``i`` depends only on ``(seed, i)``: it opens with 0..``opening_plies``
    random legal moves, then each side is the engine searching to a depth
    drawn from ``depths`` that plays a random legal move instead with a
    probability drawn from ``NOISE`` (so some games are lopsided, and the
    winner's moves show how to punish mistakes). With ``weak_noise`` set,
    one side (red or black at random) plays random moves with that
    probability and the other is the plain engine: games of the engine
    beating a weak player. Games reaching ``max_plies`` are recorded as draws.

    Returns:
        list of Game, in index order whatever ``workers`` is.
    """
    path = find_engine(engine)
    Engine(path).close()  # a broken engine fails here, not in every pool worker
    jobs = [(seed, i, max_plies, tuple(depths), opening_plies, weak_noise)
            for i in range(count)]
    if workers <= 1:
        _start_worker(path)
        try:
            return [_one_game(job) for job in tqdm(jobs, disable=not progress, unit='game')]
        finally:
            _worker_engine.close()
    with multiprocessing.get_context('spawn').Pool(workers, _start_worker, (path,)) as pool:
        return list(tqdm(pool.imap(_one_game, jobs, chunksize=4), total=count,
                         disable=not progress, unit='game'))
