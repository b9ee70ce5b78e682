"""make demo and make claims: the runner, its table and progress, the quick
settings of every example, and the settings behind docs/results/."""
import json
import os

import pytest

from bert4keras_blog.app import demo
from conftest import ROOT, load_example

EXAMPLES = sorted(demo.CLAIMS)


def fake_examples(folder):
    (folder / 'post0_broken.py').write_text('def main(argv=None):\n    raise RuntimeError("boom")\n')
    (folder / 'post1_usage.py').write_text(  # argparse's exit on a bad flag must not end the run
        'import argparse\n'
        'def main(argv=None):\n'
        '    argparse.ArgumentParser().parse_args(["--no-such-flag"])\n')
    (folder / 'post9_ok.py').write_text(
        'import json, os\n'
        'def main(argv=None):\n'
        '    folder = argv[argv.index("--run-dir") + 1]\n'
        '    os.makedirs(folder, exist_ok=True)\n'
        '    with open(os.path.join(folder, "argv.json"), "w") as f:\n'
        '        json.dump(argv, f)\n'
        '    return {"headline": "accuracy", "accuracy": 0.875, "interval": [0.8, 0.93]}\n')


def demo_over_fake_examples(tmp_path, monkeypatch):
    """``demo.main`` reads the fake examples, with no self-check; returns their folder."""
    examples = tmp_path / 'examples'
    examples.mkdir()
    fake_examples(examples)
    monkeypatch.setattr(demo, 'EXAMPLES_DIR', str(examples))
    monkeypatch.setattr(demo, 'self_check_rows', lambda: [])
    return examples


def test_demo_runs_every_example_quick_into_runs_and_reports_failures(tmp_path, capsys):
    examples = tmp_path / 'examples'
    examples.mkdir()
    fake_examples(examples)
    said = []
    runs = str(tmp_path / 'runs')
    rows = demo.run_demo(examples_dir=str(examples), runs=runs, say=said.append)
    names = [row['example'] for row in rows]
    for kind in ('bert', 'roberta', 'albert', 'electra', 'mt5.1.1', 'gpt'):
        assert 'foundation: tiny %s' % kind in names
    params = {row['example']: row['value'] for row in rows}
    assert params['foundation: tiny albert'] < params['foundation: tiny bert']  # shared layers
    assert [(r['example'], r['failed']) for r in rows[-3:]] == [
        ('post0_broken', True), ('post1_usage', True), ('post9_ok', False)]
    # The folder the web page reads (runs/<example>), given --quick.
    with open(os.path.join(runs, 'post9_ok', 'argv.json')) as f:
        assert json.load(f) == ['--quick', '--run-dir', os.path.join(runs, 'post9_ok')]
    assert len(said) == 3 and said[0].startswith('\n[1/3] post0_broken')
    assert 'elapsed' in said[2] and 'to go' in said[2]
    table = demo.format_table(rows)
    assert table.splitlines()[0].split() == ['example', 'headline', 'metric', 'value', '95%',
                                             'interval', 'seconds']
    assert table.splitlines()[-1].split() == ['post9_ok', 'accuracy', '0.875', '[0.8,', '0.93]',
                                              '0.0']
    assert 'boom' in capsys.readouterr().err  # the traceback, for the one that broke


def test_progress_counts_down_the_expected_time(tmp_path):
    examples = tmp_path / 'examples'
    examples.mkdir()
    for name in ('post1_a', 'post2_b'):
        (examples / (name + '.py')).write_text(
            'def main(argv=None):\n    return {"headline": "x", "x": 1.0}\n')
    said = []
    demo.run_examples(lambda name: [], str(examples), expected={'post1_a': 90, 'post2_b': 30},
                      say=said.append)
    assert 'about 1:30; 0:00 elapsed, about 2:00 to go' in said[0]
    assert 'about 0:30;' in said[1] and 'about 0:30 to go' in said[1]


def test_main_exits_non_zero_naming_the_failed_example(tmp_path, monkeypatch, capsys):
    demo_over_fake_examples(tmp_path, monkeypatch)
    assert demo.main(['--runs', str(tmp_path / 'runs')]) == 1
    captured = capsys.readouterr()
    assert 'FAILED: post0_broken, post1_usage' in captured.err
    assert 'post9_ok' in captured.out and 'make demo took' in captured.out
    assert demo.main(['--runs', str(tmp_path / 'runs'), '--only', 'post9']) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith('http://127.0.0.1:8000/')
    assert 'bert4keras-blog serve --runs %s' % (tmp_path / 'runs') in out


@pytest.mark.parametrize('example', EXAMPLES)
def test_every_example_takes_quick_and_explicit_flags_win(example):
    module = load_example(example)
    quick = module.parse_args(['--quick'])
    assert quick.quick and module.QUICK
    for dest, value in module.QUICK.items():
        assert getattr(quick, dest) == value, dest
    assert quick.command[-1] == '--quick'  # the run folder records it
    dest, value = next((d, v) for d, v in module.QUICK.items() if isinstance(v, int))
    given = module.parse_args(['--quick', '--' + dest.replace('_', '-'), str(value + 1)])
    assert getattr(given, dest) == value + 1


def _settings(example, argv):
    """The settings a run with ``argv`` records (Run's own selection)."""
    from bert4keras_blog.experiment.runs import recorded_settings
    return json.loads(json.dumps(recorded_settings(load_example(example).parse_args(argv))))


# Paths differ between machines; the rest must be equal.
_MACHINE_SPECIFIC = ('run_dir', 'data')
# Flags added after a recorded run, with the default that is what the run did
# (post 4's run predates the --feedback flag; TeaForN fed outputs back then).
# Post 1's run predates --arms; it fine-tuned every arm.
_ADDED_SINCE = {'post4_teaforn': {'feedback': 'output'},
                'post1_albert_electra': {'arms': ['random', 'mlm', 'electra']}}


@pytest.mark.parametrize('example', EXAMPLES)
def test_make_claims_runs_the_settings_recorded_in_docs_results(example):
    with open(os.path.join(ROOT, 'docs', 'results', example + '.json'), encoding='utf-8') as f:
        recorded = json.load(f)['run']['settings']
    wanted = _settings(example, demo.CLAIMS[example])
    for key in _MACHINE_SPECIFIC:
        if recorded.get(key) and wanted.get(key):
            assert os.path.basename(recorded.pop(key)) == os.path.basename(wanted.pop(key))
        elif key == 'run_dir' and recorded.get(key):  # make claims' own --run-dir
            assert recorded.pop(key) == os.path.join('runs', 'claims', example)
            assert wanted.pop(key, None) is None
        else:
            assert recorded.pop(key, None) == wanted.pop(key, None)
    recorded.setdefault('quick', False)  # runs from before --quick existed
    for key, value in _ADDED_SINCE.get(example, {}).items():
        recorded.setdefault(key, value)
    assert wanted == recorded
    assert demo.recorded_seconds()[example] == pytest.approx(
        json.load(open(os.path.join(ROOT, 'docs', 'results', example + '.json')))['run']['seconds'])


def test_ctrl_c_stops_the_whole_demo_with_status_130(tmp_path, monkeypatch, capsys):
    examples = tmp_path / 'examples'
    examples.mkdir()
    (examples / 'post1_stopped.py').write_text(
        'def main(argv=None):\n    raise KeyboardInterrupt\n')
    (examples / 'post2_after.py').write_text(
        'def main(argv=None):\n    raise AssertionError("ran after Ctrl-C")\n')
    monkeypatch.setattr(demo, 'EXAMPLES_DIR', str(examples))
    monkeypatch.setattr(demo, 'self_check_rows', lambda: [])
    assert demo.main(['--runs', str(tmp_path / 'runs')]) == 130
    captured = capsys.readouterr()
    assert 'interrupted' in captured.err and 'ran after Ctrl-C' not in captured.err
    assert '[2/2]' not in captured.out


def test_the_summary_file_holds_the_table_and_the_time(tmp_path, monkeypatch, capsys):
    demo_over_fake_examples(tmp_path, monkeypatch)
    runs = tmp_path / 'runs'
    demo.main(['--runs', str(runs)])
    summary = json.loads((runs / 'demo.json').read_text(encoding='utf-8'))
    assert summary['command'] == 'make demo' and summary['seconds'] >= 0
    assert 'cores' in summary['machine'] and summary['versions']['bert4keras'] == '0.11.5'
    assert [(r['example'], r['failed']) for r in summary['rows']] == [
        ('post0_broken', True), ('post1_usage', True), ('post9_ok', False)]
    assert summary['rows'][-1]['interval'] == [0.8, 0.93]


def test_make_claims_passes_each_examples_recorded_argv(tmp_path, monkeypatch, capsys):
    demo_over_fake_examples(tmp_path, monkeypatch)
    monkeypatch.setattr(demo, 'CLAIMS', {'post9_ok': ['--seeds', '3']})
    runs = str(tmp_path / 'claims')
    row, = demo.run_claims(only=['post9'], runs=runs, say=lambda line: None)
    with open(os.path.join(runs, 'post9_ok', 'argv.json')) as f:
        assert json.load(f) == ['--seeds', '3', '--run-dir', os.path.join(runs, 'post9_ok')]
    assert row['metrics']['accuracy'] == 0.875
