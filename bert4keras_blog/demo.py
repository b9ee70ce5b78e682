"""``make demo``: every example on its embedded default, one summary table.

Runs the foundation self-check (each tiny checkpoint written, loaded by
bert4keras and run on a Chinese sentence), then each ``examples/post<N>_*.py``
through its ``main([])``. An example's ``main`` returns a dict of the figures
it printed; its ``'headline'`` key names the one to show.

Public API:
    run_demo(examples_dir=None, only=None) -> list of rows
    main(argv=None) -> int
"""
import argparse
import glob
import importlib.util
import os
import sys
import time
import traceback

from bert4keras_blog.checkpoints import KINDS, tiny
from bert4keras_blog.cli import check_checkpoint

__all__ = ['run_demo', 'main']

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'examples')


def self_check_rows():
    rows = []
    for kind in KINDS:
        start = time.time()
        result = check_checkpoint(kind, tiny(kind))
        rows.append(('foundation: tiny %s' % kind, 'parameters', result['parameters'],
                     time.time() - start))
    return rows


def load_example(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location('examples.' + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return name, module


def run_demo(examples_dir=None, only=None):
    """Runs the self-check and the examples; returns (name, metric, value, seconds) rows.

    A failing example gives a row with value 'FAILED' and its traceback on
    stderr; the others still run.
    """
    rows = self_check_rows()
    pattern = os.path.join(examples_dir or EXAMPLES_DIR, 'post*_*.py')
    for path in sorted(glob.glob(pattern)):
        if only and not any(o in os.path.basename(path) for o in only):
            continue
        start = time.time()
        try:
            name, module = load_example(path)
            metrics = module.main([])
            key = metrics.get('headline') or next(iter(metrics))
            rows.append((name, key, metrics[key], time.time() - start))
        except Exception:  # noqa: BLE001  (one broken example must not hide the rest)
            traceback.print_exc()
            rows.append((os.path.basename(path), 'error', 'FAILED', time.time() - start))
    return rows


def format_table(rows):
    def show(value):
        return '%.4g' % value if isinstance(value, float) else str(value)
    header = ('example', 'headline metric', 'value', 'seconds')
    cells = [header] + [(a, b, show(c), '%.1f' % d) for a, b, c, d in rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(4)]
    lines = ['  '.join(str(cell).ljust(w) for cell, w in zip(row, widths)) for row in cells]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bert4keras_blog.demo',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--only', nargs='*', help='run only examples whose file name contains these')
    args = parser.parse_args(argv)
    rows = run_demo(only=args.only)
    print()
    print(format_table(rows))
    return 1 if any(row[2] == 'FAILED' for row in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
