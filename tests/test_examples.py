"""Each example's main() on small settings: it trains and its metric is real."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    path = os.path.join(ROOT, 'examples', name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_post3_learns_to_solve_and_the_cli_uses_the_run(tmp_path, capsys):
    example = load('post3_math_word_problems')
    metrics = example.main(['--train-size', '2000', '--epochs', '3', '--number-slots',
                            '--topk', '2', '--run-dir', str(tmp_path)])
    # Measured 0.78 after 2 epochs and 1.0 after 6 with these settings.
    assert metrics['heldout_accuracy'] >= 0.8, metrics
    assert metrics['epochs'][-1]['loss'] < metrics['epochs'][0]['loss']
    with open(tmp_path / 'metrics.json') as f:
        assert json.load(f)['headline'] == 'heldout_accuracy'
    assert os.path.exists(tmp_path / 'best.weights.h5')

    from bert4keras_blog import cli
    capsys.readouterr()
    problem = '一个长方形长12厘米，宽5厘米，它的面积是多少平方厘米？'
    assert cli.main(['math', problem, '--run', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'x=12*5' in out and 'answer: 60' in out


def test_math_cli_without_a_run_says_how_to_train(tmp_path, capsys):
    from bert4keras_blog import cli
    assert cli.main(['math', '1+1等于几？', '--run', str(tmp_path)]) == 2
    assert 'post3_math_word_problems.py' in capsys.readouterr().err
