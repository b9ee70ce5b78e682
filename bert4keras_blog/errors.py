"""Exceptions whose messages name the place (file, line, variable, field) and
what was expected there.

Public API:
    BlogError: base class; the CLI prints ``str(error)`` as one line.
    StackError: the wrong bert4keras / Keras / TensorFlow is installed.
    DataFormatError: a data file is malformed at a given line.
    CheckpointMismatchError: a checkpoint lacks a variable or its shape
        disagrees with the model built from the config.
    CheckpointError: a checkpoint file is missing, cut short or corrupted.
    MathExpressionError: an arithmetic expression is invalid or unsafe.
    IllegalMoveError: a chess move is illegal or unreadable.
    EngineNotFoundError: no Fairy-Stockfish binary; says how to install one.
    SettingError: an argument of a library call is out of range or of the
        wrong kind (also a ``ValueError``); the message names the argument.
    run_main(main, argv, program) -> int: the one error path of the CLI and
        the examples (one line on stderr, an exit status, no traceback).
"""


import signal
import sys
import tempfile
import time
import traceback
__all__ = [
    'BlogError', 'StackError', 'DataFormatError', 'CheckpointMismatchError', 'CheckpointError',
    'MathExpressionError', 'IllegalMoveError', 'EngineNotFoundError', 'SettingError',
    'run_main',
]


class BlogError(Exception):
    """Base class of every error bert4keras-blog raises on purpose."""


class StackError(BlogError, ImportError):
    """The installed bert4keras / Keras / TensorFlow cannot work together."""


class DataFormatError(BlogError, ValueError):
    """A malformed record. ``path`` and ``line`` (1-based) say where.

    Example: ``DataFormatError('train.json', 812, "field 'equation' is missing")``
    reads "train.json line 812: field 'equation' is missing".
    """

    def __init__(self, path, line, reason):
        self.path, self.line, self.reason = str(path), line, reason
        where = self.path if line is None else '%s line %d' % (self.path, line)
        super().__init__('%s: %s' % (where, reason))


class CheckpointMismatchError(BlogError, ValueError):
    """A checkpoint variable is missing or its shape disagrees with the config.

    Args:
        checkpoint: str. The checkpoint path (prefix) that was read.
        variable: str. The checkpoint variable name.
        layer: str. The Keras layer that wanted it. Defaults to None.
        found: tuple. Shape in the file. Defaults to None.
        expected: tuple. Shape the model built from the config expects.
        reason: str. 'missing' when the file has no such variable; 'unused'
            when it holds more layers (``found[0]``) than the config builds
            (``expected[0]``).
    """

    def __init__(self, checkpoint, variable, layer=None, found=None,
                 expected=None, reason=None):
        self.checkpoint, self.variable, self.layer = str(checkpoint), variable, layer
        self.found, self.expected = found, expected
        place = "layer '%s': " % layer if layer else ''
        if reason == 'missing':
            text = "%scheckpoint %s has no variable '%s'" % (place, self.checkpoint, variable)
        elif reason == 'unused':
            text = ("checkpoint %s holds %d layers (up to '%s'), the config builds %d "
                    "(num_hidden_layers): the rest would go unused; use the release's own "
                    "config" % (self.checkpoint, found[0], variable, expected[0]))
        else:
            text = ("%scheckpoint variable '%s' has shape %s, model expects %s "
                    "(checkpoint %s; does the config match it?)"
                    % (place, variable, tuple(found), tuple(expected), self.checkpoint))
        super().__init__(text)


class CheckpointError(BlogError):
    """A checkpoint's files are missing, cut short or corrupted; the message
    names the file."""


class EngineNotFoundError(BlogError):
    """No Fairy-Stockfish binary; the message says how to install one."""


class SettingError(BlogError, ValueError):
    """A library call got an argument it cannot work with (a ``ValueError``,
    so ``except ValueError`` written for the old behaviour still catches it)."""


class MathExpressionError(BlogError, ValueError):
    """An arithmetic expression is malformed or unsafe at ``position``."""

    def __init__(self, expression, position, reason):
        self.expression, self.position, self.reason = expression, position, reason
        super().__init__('expression %r, position %s: %s' % (expression, position, reason))


class IllegalMoveError(BlogError, ValueError):
    """A move is illegal or unreadable; ``game`` and ``ply`` (1-based) say
    where, and ``path``/``line`` where a record file holds it."""

    def __init__(self, move, reason, game=None, ply=None, path=None, line=None):
        self.move, self.reason, self.game, self.ply = move, reason, game, ply
        self.path, self.line = path, line
        where = []
        if path is not None:
            where.append(str(path) if line is None else '%s line %d' % (path, line))
        if game is not None:
            where.append('game %s' % game)
        if ply is not None:
            where.append('ply %s' % ply)
        prefix = ', '.join(where) + ': ' if where else ''
        super().__init__('%smove %r: %s' % (prefix, move, reason))


def run_main(main, argv, program):
    """The one error path of the CLI and the examples: ``main(argv)``, with
    every input problem (``BlogError``, an unreadable or unwritable file) as
    one line naming the place and exit status 2; Ctrl-C as 'interrupted'
    (130); SIGTERM unwinding like Ctrl-C, so cleanup code runs and no
    half-written output stays behind (143); and any other exception as one
    line plus the file its full traceback was written to (1).

    Returns:
        int, the exit status.
    """

    def terminate(number, frame):
        raise SystemExit(128 + number)
    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        status = main(argv)
        return status if isinstance(status, int) else 0
    except (BlogError, OSError) as error:
        print('%s: error: %s' % (program, error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\n%s: interrupted' % program, file=sys.stderr)
        return 130
    except Exception as error:  # a bug of ours: short on screen, whole in a file
        path = _write_traceback(program)
        print('%s: unexpected error: %s: %s (the full traceback is in %s; please report it)'
              % (program, type(error).__name__, str(error).splitlines()[0][:200] if str(error)
                 else '', path), file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _write_traceback(program):
    handle, path = tempfile.mkstemp(prefix='%s-traceback-%s-' % (
        program.split()[0].split('/')[-1], time.strftime('%Y%m%d-%H%M%S')), suffix='.txt')
    with open(handle, 'w', encoding='utf-8') as f:
        f.write(traceback.format_exc())
    return path
