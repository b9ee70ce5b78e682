"""The numbers in the docs come from runs: each example's ``metrics.json`` is
copied to ``docs/results/<example>.json`` and rendered into the pages.

A page holds a block between ``<!-- results: <example> -->`` and
``<!-- /results -->``; it may also hold the run's headline with its interval
(``<!-- headline: <example> -->`` ... ``<!-- /headline -->``) and its claims
table (``<!-- claims: <example> -->`` ... ``<!-- /claims -->``: each
comparison over seeds with its 95% interval, from ``metrics['claims']``). The
README's post table sits between ``<!-- posts -->`` and ``<!-- /posts -->``,
and make demo's table (``docs/results/demo.json``, a copy of
``runs/demo.json``) between ``<!-- demo -->`` and ``<!-- /demo -->``. All are
written from the committed results files, and ``check_pages`` (run by the tests) reports any block that
differs from what its file renders, so a page cannot quote a number its run
did not produce.

Public API:
    POSTS: (number, example, docs page, what the post shows) for the eight posts.
    render_results(metrics) -> str: the markdown of one results block.
    render_claims(metrics) -> str: the markdown of one claims block.
    render_headline(metrics) -> str: the headline number and its interval.
    headline(metrics) -> (name, value text with its interval), or ('', '').
    scalar_rows(metrics) -> [(name, value text)]: the scalars of a run.
    render_posts(results) -> str: the README's table of posts.
    render_demo(summary) -> str: make demo's table (``docs/results/demo.json``).
    collect(runs_dir, results_dir, demo=None) -> list of examples copied.
    update_pages(root) -> list of files rewritten.
    check_pages(root) -> list of str: blocks that disagree with their files.
    main(argv=None) -> int: ``python -m bert4keras_blog.app.results_pages``.
"""
import argparse
import json
import os
import re
import shutil

from bert4keras_blog.experiment.claims import HEADER, cells

__all__ = ['POSTS', 'render_results', 'render_claims', 'render_headline', 'render_posts',
           'render_demo', 'headline', 'scalar_rows', 'collect', 'update_pages', 'check_pages', 'main']

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POSTS = [
    (1, 'post1_albert_electra', 'post1-albert-electra.md',
     'ALBERT saves parameters, not time; fine-tune ELECTRA\'s discriminator'),
    (2, 'post2_learning_rate', 'post2-learning-rate.md',
     'a larger step acts as a gradient-norm penalty'),
    (3, 'post3_math_word_problems', 'post3-math-word-problems.md',
     'UniLM writes an expression, evaluated safely'),
    (4, 'post4_teaforn', 'post4-teaforn.md',
     'TeaForN against teacher forcing on long outputs'),
    (5, 'post5_simsiam', 'post5-simsiam.md', 'SimSiam/BYOL and the collapse measured'),
    (6, 'post6_mt5_title_generation', 'post6-mt5.md',
     'mT5 v1.1, vocabulary trimmed for Chinese, seq2seq'),
    (7, 'post7_gpt_xiangqi', 'post7-gpt-xiangqi.md',
     'a move LM that only plays legal moves, and what it learns'),
    (8, 'post8_rnn_gradients', 'post8-rnn-gradients.md',
     '∂h_T/∂h_t of SimpleRNN, LSTM and GRU'),
]

BLOCK = re.compile(r'<!-- (results|claims|headline): (\w+) -->\n(.*?)<!-- /\1 -->', re.S)
POSTS_BLOCK = re.compile(r'<!-- posts -->\n(.*?)<!-- /posts -->', re.S)
DEMO_BLOCK = re.compile(r'<!-- demo -->\n(.*?)<!-- /demo -->', re.S)
DEMO = 'demo'  # docs/results/demo.json: make demo's table (runs/demo.json)
# Files and provenance are not numbers; claims and the headline's interval
# have their own renderings.
_SKIPPED = ('headline', 'figure', 'model', 'run', 'claims', 'interval')


def _value(value):
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return '%.4g' % value
    if isinstance(value, (int, str)):
        return str(value)
    return None


def _flat(row):
    """A record with its dicts of scalars spread into ``key sub`` fields."""
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict) and all(_value(v) is not None for v in value.values()):
            flat.update(('%s %s' % (key, sub), v) for sub, v in value.items())
        else:
            flat[key] = value
    return flat


def _table(rows):
    """A list of records -> a markdown table of their scalar fields."""
    rows = [_flat(row) for row in rows]
    columns = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and _value(value) is not None:
                columns.append(key)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for row in rows:
        cells = [(_value(row[c]) or '') if c in row else '' for c in columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def scalar_rows(metrics):
    """(name, text) of every scalar of a run, those inside a dict as
    ``key sub``; provenance, claims and the headline are left out."""
    rows = []
    for key, value in metrics.items():
        if key in _SKIPPED:
            continue
        if _value(value) is not None:
            rows.append((key, _value(value)))
        elif isinstance(value, dict):
            rows += [('%s %s' % (key, sub), _value(v)) for sub, v in value.items()
                     if _value(v) is not None]
    return rows


def render_results(metrics):
    """Scalars as a two-column table (those inside a dict as ``key sub``),
    each list of records as its own table, the records inside a dict (name ->
    record) as a table with a ``name`` column, and the run's command last."""
    scalars, tables = scalar_rows(metrics), []
    for key, value in metrics.items():
        if key in _SKIPPED:
            continue
        if isinstance(value, dict):
            named = [dict({'name': sub}, **v) for sub, v in value.items() if isinstance(v, dict)]
            if named:
                tables.append((key, named))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((key, value))
    parts = ['| metric | value |\n|---|---|\n' + '\n'.join(
        '| %s | %s |' % row for row in scalars)] if scalars else []
    parts += ['`%s`:\n\n%s' % (key, _table(rows)) for key, rows in tables]
    if isinstance(metrics.get('run'), dict):
        parts.append(_provenance(metrics['run']))
    return '\n\n'.join(parts) + '\n'


def _provenance(run):
    """One line: the command that produced the numbers, when, on what."""
    versions = run.get('versions', {})
    stack = ', '.join('%s %s' % (name, versions[name])
                      for name in ('tensorflow', 'tf_keras', 'bert4keras') if name in versions)
    return '`make claims` runs `python %s`; this run started %s (%s), %s s.' % (
        ' '.join(run.get('command', [])), run.get('started', '?'), stack,
        _value(run.get('seconds')))


def render_claims(metrics):
    """Each claim of the run: both arms' means and the difference, with 95%
    intervals over seeds, and whether the difference excludes zero."""
    rows = metrics.get('claims') or []
    if not rows:
        return 'This run has no claims table: run the example and `make docs`.\n'
    lines = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER)]
    lines += ['| ' + ' | '.join(cells(r)) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


def render_headline(metrics):
    """One line: the embedded default's headline, with its 95% interval."""
    name, value = headline(metrics)
    if not name:
        return 'This run names no headline.\n'
    note = ' (95% interval)' if metrics.get('interval') else ' (one run, no interval)'
    return '**Headline of the embedded default** (`make claims`): `%s` = %s%s.\n' % (
        name, value, note)


def headline(metrics):
    name = metrics.get('headline')
    if not name:
        return '', ''
    value = _value(metrics.get(name))
    if metrics.get('interval') and value is not None:
        value += ' [%s, %s]' % tuple(_value(v) for v in metrics['interval'])
    return name, value


def render_posts(results):
    """``results``: example -> metrics (or None when no file exists)."""
    lines = ['| post | claim | example | docs | headline (embedded default, `make claims`) |',
             '|---|---|---|---|---|']
    for number, example, page, claim in POSTS:
        metrics = results.get(example)
        name, value = headline(metrics) if metrics else ('not run yet', '')
        lines.append('| %d | %s | [`%s.py`](examples/%s.py) | [%s](docs/%s) | %s %s |'
                     % (number, claim, example, example, page[:-3], page, name,
                        value and '= ' + value))
    return '\n'.join(lines) + '\n'


def _minutes(seconds):
    return '%d:%02d' % divmod(int(round(seconds)), 60)


def render_demo(summary):
    """make demo's table: each example's quick headline, interval, seconds."""
    if not summary:
        return 'No demo summary yet: run `make demo`, then `make docs`.\n'
    lines = ['| example | headline (`--quick`) | value [95%] | seconds |', '|---|---|---|---|']
    checks = [row for row in summary['rows'] if row['example'].startswith('foundation')]
    for row in summary['rows']:
        if row in checks:
            continue
        value = 'FAILED' if row['failed'] else _value(row['value'])
        if row['interval'] and not row['failed']:
            value += ' [%s, %s]' % tuple(_value(v) for v in row['interval'])
        lines.append('| %s | %s | %s | %.0f |' % (row['example'], row['metric'], value,
                                                  row['seconds']))
    lines.append('\n`make demo` took %s (minutes:seconds; %.0f s of it the self-check of the %d '
                 'tiny checkpoints) on %s, started %s (%s).' % (
        _minutes(summary['seconds']), sum(row['seconds'] for row in checks), len(checks),
        summary['machine'], summary['started'],
        ', '.join('%s %s' % kv for kv in sorted(summary['versions'].items())
                  if kv[0] in ('tensorflow', 'tf_keras', 'bert4keras'))))
    return '\n'.join(lines) + '\n'


def _results(root):
    results = {}
    for example in [DEMO] + [post[1] for post in POSTS]:
        path = os.path.join(root, 'docs', 'results', example + '.json')
        if os.path.exists(path):
            with open(path, encoding='utf-8') as f:
                results[example] = json.load(f)
    return results


def _pages(root):
    return [os.path.join(root, 'README.md')] + sorted(
        os.path.join(root, 'docs', name) for name in os.listdir(os.path.join(root, 'docs'))
        if name.endswith('.md'))


def _rendered(text, results):
    """``text`` with every block replaced by what the results render."""
    def block(match):
        kind, example = match.group(1), match.group(2)
        metrics = results.get(example)
        render = {'results': render_results, 'claims': render_claims,
                  'headline': render_headline}[kind]
        body = render(metrics) if metrics else \
            'No results file yet: run the example and `make docs`.\n'
        return '<!-- %s: %s -->\n%s<!-- /%s -->' % (kind, example, body, kind)
    text = BLOCK.sub(block, text)
    text = DEMO_BLOCK.sub(lambda m: '<!-- demo -->\n%s<!-- /demo -->'
                          % render_demo(results.get(DEMO)), text)
    return POSTS_BLOCK.sub(lambda m: '<!-- posts -->\n%s<!-- /posts -->'
                           % render_posts(results), text)


def collect(runs_dir, results_dir, demo=None):
    """Copies ``runs_dir/<example>/metrics.json`` of each post to
    ``results_dir/<example>.json``, and ``demo`` (make demo's
    ``runs/demo.json``), when it exists, to ``results_dir/demo.json``."""
    os.makedirs(results_dir, exist_ok=True)
    copied = []
    if demo and os.path.exists(demo):
        shutil.copyfile(demo, os.path.join(results_dir, DEMO + '.json'))
        copied.append(DEMO)
    for _, example, _, _ in POSTS:
        source = os.path.join(runs_dir, example, 'metrics.json')
        if os.path.exists(source):
            shutil.copyfile(source, os.path.join(results_dir, example + '.json'))
            copied.append(example)
    return copied


def _page_texts(root):
    """(page, its text, its text with every block rendered from the results)."""
    results = _results(root)
    for page in _pages(root):
        with open(page, encoding='utf-8') as f:
            text = f.read()
        yield page, text, _rendered(text, results)


def update_pages(root=ROOT):
    changed = []
    for page, text, new in _page_texts(root):
        if new != text:
            with open(page, 'w', encoding='utf-8') as f:
                f.write(new)
            changed.append(page)
    return changed


def check_pages(root=ROOT):
    problems = []
    for page, text, new in _page_texts(root):
        name = os.path.relpath(page, root)
        wanted = {(kind, example): body for kind, example, body in BLOCK.findall(new)}
        for kind, example, body in BLOCK.findall(text):
            if body != wanted[kind, example]:
                problems.append('%s: the %s of %s differ from docs/results/%s.json'
                                % (name, kind, example, example))
        posts, wanted_posts = POSTS_BLOCK.search(text), POSTS_BLOCK.search(new)
        if posts and posts.group(1) != wanted_posts.group(1):
            problems.append('%s: the table of posts differs from docs/results/' % name)
        demo, wanted_demo = DEMO_BLOCK.search(text), DEMO_BLOCK.search(new)
        if demo and demo.group(1) != wanted_demo.group(1):
            problems.append('%s: the demo table differs from docs/results/demo.json' % name)
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m bert4keras_blog.app.results_pages',
        description='Copy the examples\' metrics into docs/results and rewrite the results '
                    'blocks of README.md and docs/*.md from them.')
    parser.add_argument('--runs', default=None,
                        help='copy <RUNS>/<example>/metrics.json first (make claims\' '
                             'runs/claims/)')
    parser.add_argument('--demo', default=None,
                        help='copy make demo\'s summary too (runs/demo.json), when it exists')
    args = parser.parse_args(argv)
    if args.runs or args.demo:
        copied = collect(args.runs or os.devnull, os.path.join(ROOT, 'docs', 'results'),
                         args.demo)
        print('copied: %s' % (', '.join(copied) or 'nothing'))
    for page in update_pages():
        print('rewrote %s' % os.path.relpath(page, ROOT))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
