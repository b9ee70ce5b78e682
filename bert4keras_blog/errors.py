"""Exceptions whose messages name the place (file, line, variable, field) and
what was expected there.

Public API:
    BlogError: base class; the CLI prints ``str(error)`` as one line.
    StackError: the wrong bert4keras / Keras / TensorFlow is installed.
    DataFormatError: a data file is malformed at a given line.
    CheckpointMismatchError: a checkpoint lacks a variable or its shape
        disagrees with the model built from the config.
    MathExpressionError: an arithmetic expression is invalid or unsafe.
    IllegalMoveError: a chess move is illegal or unreadable.
"""

__all__ = [
    'BlogError', 'StackError', 'DataFormatError', 'CheckpointMismatchError',
    'MathExpressionError', 'IllegalMoveError',
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
        reason: str. 'missing' when the file has no such variable.
    """

    def __init__(self, checkpoint, variable, layer=None, found=None,
                 expected=None, reason=None):
        self.checkpoint, self.variable, self.layer = str(checkpoint), variable, layer
        self.found, self.expected = found, expected
        place = "layer '%s': " % layer if layer else ''
        if reason == 'missing':
            text = "%scheckpoint %s has no variable '%s'" % (place, self.checkpoint, variable)
        else:
            text = ("%scheckpoint variable '%s' has shape %s, model expects %s "
                    "(checkpoint %s; does the config match it?)"
                    % (place, variable, tuple(found), tuple(expected), self.checkpoint))
        super().__init__(text)


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
