"""Reading data files line by line with every rejected line accounted for.

Every loader (ape210k, CSL, game records) reports a malformed line the same
way: counted, with its file, line number and the reason in plain words (a
line that stops before its JSON closes says it is cut), written to
``<split>.rejected.txt`` in the run folder, the rest kept; a file with more
than a set share of rejected lines stops the run with that report instead
of training on scraps.

Public API:
    RejectedLines(path): kept, rejected [(line, reason)], lines, share,
        add(line, reason), details(), write(folder, split) -> path,
        check(max_share) raises DataFormatError.
    json_object(text, fields=()) -> dict; ValueError says what is wrong.
    text_lines(path, max_bytes=None) -> iterator of str: UTF-8, or
        DataFormatError naming the line and byte; OverlongLine for a line
        over MAX_LINE_BYTES.
    check_text_head(path): the first lines read as UTF-8 (before a run).
    read_lines(path, parse) -> (records, RejectedLines): ``parse(text)``
        returns a record or raises ValueError with the reason.
    accept(report, folder, split, max_share): print, write, check.
    MAX_REJECTED: the default share (5%).
"""
import gzip
import itertools
import json
import os

from bert4keras_blog.errors import DataFormatError

__all__ = ['RejectedLines', 'json_object', 'text_lines', 'read_lines', 'accept',
           'OverlongLine', 'check_text_head', 'MAX_REJECTED', 'MAX_LINE_BYTES']

MAX_REJECTED = 0.05
# Longer lines are rejected unread: no record any loader takes comes near.
MAX_LINE_BYTES = 1 << 20
_BOMS = ((b'\xff\xfe\x00\x00', 'UTF-32'), (b'\x00\x00\xfe\xff', 'UTF-32'),
         (b'\xff\xfe', 'UTF-16'), (b'\xfe\xff', 'UTF-16'))


class RejectedLines(object):
    """What happened to the lines of one file."""

    def __init__(self, path):
        self.path, self.kept, self.rejected = str(path), 0, []

    def add(self, line, reason):
        self.rejected.append((line, reason))

    @property
    def lines(self):
        return self.kept + len(self.rejected)

    @property
    def share(self):
        return len(self.rejected) / self.lines if self.lines else 0.0

    def __str__(self):
        text = '%s: kept %d of %d lines' % (self.path, self.kept, self.lines)
        if self.rejected:
            text += '; %d rejected (first: line %d: %s)' % (len(self.rejected),
                                                           *self.rejected[0])
        return text

    def details(self):
        """Every rejected line, one per text line, in file order."""
        return ''.join('%s line %d: %s\n' % (self.path, line, reason)
                       for line, reason in sorted(self.rejected))

    def write(self, folder, split):
        path = os.path.join(folder, '%s.rejected.txt' % split)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(self.details())
        return path

    def check(self, max_share=MAX_REJECTED, listing=None):
        if self.lines == 0:
            raise DataFormatError(self.path, None, 'no records in the file')
        if self.share > max_share:
            raise DataFormatError(self.path, None, (
                '%d of %d lines rejected (%.1f%%, more than the %.1f%% allowed), first: '
                'line %d: %s; every one is listed in %s. Fix the file, or allow more with '
                '--max-rejected' % (len(self.rejected), self.lines, 100 * self.share,
                                    100 * max_share, *self.rejected[0],
                                    listing or 'the rejected-lines file')))


def json_object(text, fields=()):
    """Parses one JSON-lines record; the ValueError's text is the reason."""
    stripped = text.rstrip('\r\n')
    try:
        record = json.loads(stripped)
    except json.JSONDecodeError as error:
        tail = stripped[error.pos:].strip()
        if error.msg.startswith('Unterminated string') or not tail or (
                error.msg.startswith('Invalid control character') and not tail[1:].strip()):
            raise ValueError('the line is cut: its JSON stops at column %d before the record '
                             'closes' % (len(stripped) + 1)) from None
        if error.msg.startswith('Invalid control character'):
            raise ValueError('a raw control character (U+%04X) inside a string at column %d; '
                             'JSON needs it escaped' % (ord(stripped[error.pos]), error.colno)) \
                from None
        raise ValueError('not JSON: %s at column %d' % (error.msg, error.colno)) from None
    if not isinstance(record, dict):
        raise ValueError('expected a JSON object, found %s' % type(record).__name__)
    for field in fields:
        if field not in record:
            raise ValueError("field '%s' is missing" % field)
    return record


class OverlongLine(str):
    """A line cut at ``MAX_LINE_BYTES``: its loader rejects it by number."""


def _open_bytes(path):
    if str(path).endswith('.gz'):
        return gzip.open(path, 'rb')
    return open(path, 'rb')


def text_lines(path, max_bytes=None):
    """The lines of a UTF-8 file (``.gz`` read compressed), one at a time.

    Anything that is not UTF-8 stops with the line and byte named: a UTF-16
    or UTF-32 file is recognised by its byte-order mark or its NUL bytes. A
    line longer than ``max_bytes`` (default ``MAX_LINE_BYTES``) is never held
    whole: an ``OverlongLine`` stands in for it, for the loader to reject.
    """
    limit = max_bytes or MAX_LINE_BYTES
    with _open_bytes(path) as f:
        for number, raw in enumerate(iter(lambda: f.readline(limit + 1), b''), 1):
            if number == 1:
                for bom, name in _BOMS:
                    if raw.startswith(bom):
                        raise DataFormatError(path, None, '%s text (it starts with a byte-order '
                                                          'mark); re-save it as UTF-8' % name)
                raw = raw[3:] if raw.startswith(b'\xef\xbb\xbf') else raw
            if len(raw) > limit and not raw.endswith(b'\n'):
                while raw and not raw.endswith(b'\n'):
                    raw = f.readline(limit)
                yield OverlongLine('longer than %d bytes' % limit)
                continue
            if b'\x00' in raw:
                raise DataFormatError(path, number, 'NUL bytes at column %d: the file is binary '
                                                    'or UTF-16, not UTF-8 text'
                                      % (raw.index(b'\x00') + 1))
            try:
                yield raw.decode('utf-8')
            except UnicodeDecodeError as error:
                raise DataFormatError(path, number, 'not UTF-8 (byte 0x%02X at column %d: %s); '
                                                    're-save the file as UTF-8' % (
                                                        raw[error.start], error.start + 1,
                                                        error.reason)) from None


def check_text_head(path, lines=100):
    """The first ``lines`` lines of ``path`` read as UTF-8 (checked before a
    run starts, with ``text_lines``' messages; the loader names any later
    bad line)."""
    for _ in itertools.islice(text_lines(path), lines):
        pass


def read_lines(path, parse):
    """Reads ``path`` (UTF-8), parsing each non-blank line; rejected lines
    are counted with their reason, the rest returned in file order."""
    report, records = RejectedLines(path), []
    for number, text in enumerate(text_lines(path), 1):
        if isinstance(text, OverlongLine):
            report.add(number, text)
            continue
        if not text.strip():
            continue
        try:
            records.append(parse(text))
        except ValueError as error:
            report.add(number, getattr(error, 'reason', None) or str(error))
    report.kept = len(records)
    return records, report


def accept(report, folder, split, max_share=MAX_REJECTED):
    """Prints the report, writes ``<split>.rejected.txt`` and stops the run
    (DataFormatError) when too many lines were rejected."""
    print(report)
    listing = report.write(folder, split)
    report.check(max_share, listing)
    return report
