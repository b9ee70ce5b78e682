"""The ape210k data files, read with every rejected line accounted for.

ape210k ships ``train.ape.json``, ``valid.ape.json`` and ``test.ape.json``:
one JSON object a line with ``id``, ``original_text``, ``segmented_text``,
``equation`` (``x=...``) and ``ans``. A line that is not such an object, or
whose equation does not give its answer, is reported with its line number and
counted; nothing is dropped silently.

Public API:
    load_ape210k(path) -> Ape210k (records + report)
    LoadReport: kept, malformed [(line, reason)], wrong [(line, reason)]
    FIELDS: the fields of an ape210k record.
"""
from bert4keras_blog.datafiles import OverlongLine, RejectedLines, json_object, text_lines
from bert4keras_blog.errors import DataFormatError, MathExpressionError
from bert4keras_blog.mathword.answers import answers_match, to_text
from bert4keras_blog.mathword.expression import evaluate

__all__ = ['load_ape210k', 'LoadReport', 'Ape210k', 'FIELDS']

FIELDS = ('id', 'original_text', 'segmented_text', 'equation', 'ans')


class LoadReport(RejectedLines):
    """What happened to each line of one file (see ``datafiles.RejectedLines``).

    Attributes:
        malformed: list of (line, reason): not JSON, cut, or a field missing
            or empty.
        wrong: list of (line, reason): the equation does not evaluate, or
            does not give the answer.
    """

    def __init__(self, path):
        super().__init__(path)
        self.malformed, self.wrong = [], []

    def add(self, line, reason, wrong=False):
        super().add(line, reason)
        (self.wrong if wrong else self.malformed).append((line, reason))

    def details(self):
        """Every rejected line, one per text line, in file order."""
        rows = [(line, 'malformed', reason) for line, reason in self.malformed]
        rows += [(line, 'wrong', reason) for line, reason in self.wrong]
        return ''.join('%s line %d: %s: %s\n' % (self.path, line, kind, reason)
                       for line, kind, reason in sorted(rows))


class Ape210k(list):
    """The kept records (dicts with the ape210k fields plus ``line`` and
    ``value``, the exact answer), with ``.report``."""

    def __init__(self, records, report):
        super().__init__(records)
        self.report = report


def _check_record(path, number, text):
    try:
        record = json_object(text, FIELDS)
    except ValueError as error:
        raise DataFormatError(path, number, str(error)) from None
    for field in ('original_text', 'equation', 'ans'):
        if not isinstance(record[field], str) or not record[field].strip():
            raise DataFormatError(path, number, "field '%s' is empty or not text" % field)
    return record


def load_ape210k(path, on_error='report'):
    """Reads an ape210k JSON-lines file.

    Args:
        path: str. ``train.ape.json`` or the like (or our synthetic file).
        on_error: str. 'report' keeps going and lists rejected lines in
            ``.report``; 'raise' raises the first problem as DataFormatError.

    Returns:
        Ape210k: a list of record dicts, with ``.report`` (a LoadReport).

    Example:
    ```python
    import json, tempfile
    from bert4keras_blog.mathword import load_ape210k
    path = tempfile.mktemp(suffix='.json')
    with open(path, 'w') as f:
        f.write(json.dumps({'id': '1', 'original_text': '1加1等于几？', 'segmented_text': '',
                            'equation': 'x=1+1', 'ans': '2'}) + '\\n{broken\\n')
    data = load_ape210k(path)
    assert len(data) == 1 and data.report.malformed[0][0] == 2
    ```
    """
    report = LoadReport(str(path))
    records = []
    for number, text in enumerate(text_lines(path), 1):
        if isinstance(text, OverlongLine):
            if on_error == 'raise':
                raise DataFormatError(path, number, text)
            report.add(number, text)
            continue
        if not text.strip():
            continue
        try:
            record = _check_record(path, number, text)
        except DataFormatError as error:
            if on_error == 'raise':
                raise
            report.add(number, error.reason)
            continue
        try:
            value = evaluate(record['equation'])
            if not answers_match(value, record['ans']):
                raise DataFormatError(path, number, 'equation %r gives %s, answer is %r' % (
                    record['equation'], to_text(value), record['ans']))
        except (MathExpressionError, DataFormatError) as error:
            if on_error == 'raise':
                raise DataFormatError(path, number, str(error)) from None
            reason = error.reason if isinstance(error, DataFormatError) else \
                'equation does not evaluate: %s' % error
            report.add(number, reason, wrong=True)
            continue
        record['line'], record['value'] = number, value
        records.append(record)
    report.kept = len(records)
    return Ape210k(records, report)
