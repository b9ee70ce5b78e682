"""``make demo`` and ``make claims``: every example in a row, one table.

``make demo`` runs the foundation self-check (each tiny checkpoint written,
loaded by bert4keras and run on a Chinese sentence), then every
``examples/post<N>_*.py`` through ``main(['--quick'])``: one setting per
example small enough for minutes on 2 CPU cores and large enough that its
headline means something. The runs land in ``runs/<example>/``, where
``bert4keras-blog serve`` finds them, and the demo ends by saying so.

``make claims`` (``--claims``) runs each example with the settings behind
``docs/results/`` (``CLAIMS``: the seeded comparisons the docs quote) into
``runs/claims/<example>/``, prints every claims table and the time taken;
``make docs`` renders the pages from those runs.

An example's ``main`` returns a dict of the figures it printed; its
``'headline'`` key names the one to show and ``'interval'`` its 95% interval
(Wilson's over held-out examples or games for one run, Student's t over
seeds for a comparison).

Public API:
    QUICK_SECONDS: example -> seconds its quick run takes on 2 CPU cores.
    CLAIMS: example -> the argv behind docs/results/<example>.json.
    run_examples(argv_of, examples_dir=None, only=None, runs=None,
                 expected=None, say=_say, begun=None) -> list of row dicts
    run_demo(examples_dir=None, only=None, runs='runs', say=_say) -> rows
    run_claims(only=None, runs='runs/claims', say=_say) -> rows
    format_table(rows) -> str
    save_summary(path, rows, seconds, claims=False) -> dict: the table and
        the time as JSON (``runs/demo.json``; the README's demo table).
    main(argv=None) -> int
"""
import argparse
import glob
import importlib.util
import json
import os
import sys
import time
import traceback

from bert4keras_blog.checkpoints import KINDS, tiny
from bert4keras_blog.experiment.claims import table
from bert4keras_blog.app.cli import check_checkpoint
from bert4keras_blog.app.results_pages import POSTS

__all__ = ['QUICK_SECONDS', 'CLAIMS', 'run_examples', 'run_demo', 'run_claims', 'format_table',
           'save_summary', 'main']

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES_DIR = os.path.join(ROOT, 'examples')
RESULTS_DIR = os.path.join(ROOT, 'docs', 'results')
WHAT = {example: claim for _, example, _, claim in POSTS}

# Measured by `make demo` on 2 CPU cores (the README gives the run); only
# used to tell a person how long to wait.
QUICK_SECONDS = {
    'post1_albert_electra': 320, 'post2_learning_rate': 15, 'post3_math_word_problems': 150,
    'post4_teaforn': 40, 'post5_simsiam': 35, 'post6_mt5_title_generation': 75,
    'post7_gpt_xiangqi': 185, 'post8_rnn_gradients': 65,
}

# The settings behind docs/results/: every example's own defaults. A test
# checks that these resolve to the settings each results file records.
CLAIMS = {example: [] for _, example, _, _ in POSTS}


def self_check_rows():
    rows = []
    for kind in KINDS:
        start = time.time()
        result = check_checkpoint(kind, tiny(kind))
        rows.append(_row('foundation: tiny %s' % kind, 'parameters', result['parameters'],
                         None, time.time() - start))
    return rows


def _row(example, metric, value, interval, seconds, metrics=None, failed=False):
    return {'example': example, 'metric': metric, 'value': value, 'interval': interval,
            'seconds': seconds, 'metrics': metrics, 'failed': failed}


def _say(line):
    print(line, flush=True)  # a person watches this line; it must not wait in a buffer


def load_example(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location('examples.' + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return name, module


def _minutes(seconds):
    return '%d:%02d' % divmod(int(round(seconds)), 60)


def run_examples(argv_of, examples_dir=None, only=None, runs=None, expected=None, say=_say,
                 begun=None):
    """Runs each example's ``main(argv_of(name))``; returns one row each.

    Args:
        argv_of: callable(example name) -> its argv.
        only: run only the examples whose file name contains one of these.
        runs: a folder; each example writes ``runs/<example>/`` (``--run-dir``).
        expected: example -> expected seconds, for the progress lines.
        say: where progress lines go.
        begun: when the whole run began (time.time()), for the elapsed time.

    A failing example gives a row with ``failed`` set and its traceback on
    stderr; the others still run. Ctrl-C stops the whole run.
    """
    paths = sorted(glob.glob(os.path.join(examples_dir or EXAMPLES_DIR, 'post*_*.py')))
    paths = [p for p in paths if not only or any(o in os.path.basename(p) for o in only)]
    names = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    expected = expected or {}
    rows, begun = [], begun or time.time()
    for index, (path, name) in enumerate(zip(paths, names)):
        to_go = sum(expected.get(n, 0) for n in names[index:])
        say('\n[%d/%d] %s: %s (about %s; %s elapsed, about %s to go)' % (
            index + 1, len(paths), name, WHAT.get(name, 'example'),
            _minutes(expected.get(name, 0)), _minutes(time.time() - begun), _minutes(to_go)))
        argv = list(argv_of(name))
        if runs:
            argv += ['--run-dir', os.path.join(runs, name)]
        start = time.time()
        try:
            _, module = load_example(path)
            metrics = module.main(argv)
            key = metrics.get('headline') or next(iter(metrics))
            rows.append(_row(name, key, metrics[key], metrics.get('interval'),
                             time.time() - start, metrics))
        except (Exception, SystemExit):  # noqa: BLE001  (one broken example must not hide the rest)
            traceback.print_exc()
            rows.append(_row(name, 'error', 'FAILED', None, time.time() - start, failed=True))
    return rows


def run_demo(examples_dir=None, only=None, runs='runs', say=_say):
    """The self-check, then every example's ``--quick`` run into ``runs``."""
    begun = time.time()
    rows = self_check_rows()
    return rows + run_examples(lambda name: ['--quick'], examples_dir, only, runs,
                               QUICK_SECONDS, say, begun)


def recorded_seconds(results_dir=RESULTS_DIR):
    """example -> the seconds its run in docs/results/ took."""
    seconds = {}
    for name in CLAIMS:
        path = os.path.join(results_dir, name + '.json')
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                seconds[name] = json.load(f).get('run', {}).get('seconds', 0)
    return seconds


def run_claims(only=None, runs=os.path.join('runs', 'claims'), say=_say):
    """Every example with the settings behind docs/results/, into ``runs``."""
    return run_examples(lambda name: CLAIMS[name], None, only, runs, recorded_seconds(), say)


def _show(value):
    return '%.4g' % value if isinstance(value, float) else str(value)


def format_table(rows):
    header = ('example', 'headline metric', 'value', '95% interval', 'seconds')
    cells = [header] + [
        (r['example'], r['metric'], _show(r['value']),
         '[%s, %s]' % tuple(_show(v) for v in r['interval']) if r['interval'] else '-',
         '%.1f' % r['seconds']) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def claims_tables(rows):
    """Each run's claims table under its example's name."""
    parts = []
    for row in rows:
        claims = (row['metrics'] or {}).get('claims')
        if claims:
            parts.append('%s\n%s' % (row['example'], table(claims, digits=3)))
    return '\n\n'.join(parts)


def _processor():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        return names[0] if names else 'unknown processor'
    except OSError:
        return 'unknown processor'


def save_summary(path, rows, seconds, claims=False):
    """The table and the total time as JSON (``make docs`` renders the
    README's demo table from it)."""
    from bert4keras_blog.compat import stack_versions
    summary = {
        'command': 'make claims' if claims else 'make demo', 'seconds': round(seconds, 1),
        'started': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(time.time() - seconds)),
        'machine': '%s, %d cores' % (_processor(), os.cpu_count() or 0),
        'versions': {k: str(v) for k, v in stack_versions().items()},
        'rows': [{k: row[k] for k in ('example', 'metric', 'value', 'interval', 'seconds',
                                      'failed')} for row in rows]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1, ensure_ascii=False,
                  default=lambda v: v.item() if hasattr(v, 'item') else str(v))  # NumPy scalars
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bert4keras_blog.app.demo',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--only', nargs='*', help='run only examples whose file name contains these')
    parser.add_argument('--claims', action='store_true',
                        help='run the seeded comparisons behind docs/results/ (make claims)')
    parser.add_argument('--runs', default=None,
                        help='where the run folders go (default runs/, with --claims runs/claims/)')
    args = parser.parse_args(argv)
    start = time.time()
    try:
        if args.claims:
            runs = args.runs or os.path.join('runs', 'claims')
            rows = run_claims(args.only, runs)
        else:
            runs = args.runs or 'runs'
            rows = run_demo(only=args.only, runs=runs)
    except KeyboardInterrupt:
        print('\ninterrupted; the examples that finished kept their run folders in %s'
              % (args.runs or 'runs'), file=sys.stderr)
        return 130
    print()
    if args.claims and claims_tables(rows):
        print(claims_tables(rows) + '\n')
    print(format_table(rows))
    summary = save_summary(os.path.join(runs, 'claims.json' if args.claims else 'demo.json'),
                           rows, time.time() - start, args.claims)
    print('\n%s took %s (minutes:seconds) on %s.' % (summary['command'],
                                                    _minutes(summary['seconds']),
                                                    summary['machine']))
    failed = [row['example'] for row in rows if row['failed']]
    if failed:
        print('FAILED: %s (tracebacks above)' % ', '.join(failed), file=sys.stderr)
        return 1
    if args.claims:
        print('Render the docs from these runs: make docs')
    else:
        served = '' if runs == 'runs' else ' --runs %s' % runs
        print('Open the page over these runs (play xiangqi, solve a word problem, write a '
              'title, see every plot):\n  .venv/bin/bert4keras-blog serve%s   # then '
              'http://127.0.0.1:8000/' % served)
    return 0


if __name__ == '__main__':
    sys.exit(main())
