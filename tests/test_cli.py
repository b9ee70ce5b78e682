"""The bert4keras-blog command: one readable line and exit 2 on errors."""
import os
import subprocess
import sys

import pytest

from bert4keras_blog.app import cli
from bert4keras_blog.checkpoints import tiny, write_tiny


def run_cli(*args):
    """Runs the installed console script as a user would."""
    exe = os.path.join(os.path.dirname(sys.executable), 'bert4keras-blog')
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def python_lines(stderr):
    """stderr without TensorFlow's native start-up log lines."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(('I0000', 'W0000', 'E0000', 'WARNING: All log'))]


def test_info_prints_the_stack(capsys):
    assert cli.main(['info']) == 0
    out = capsys.readouterr().out
    assert 'bert4keras  0.11.5' in out and 'tensorflow  2.21' in out and 'CPU' in out


def test_tiny_then_check(tmp_path, capsys):
    assert cli.main(['tiny', 'electra', str(tmp_path)]) == 0
    assert 'generator_config' in capsys.readouterr().out
    assert cli.main(['check', 'electra', '--config',
                     str(tmp_path / 'base_discriminator_config.json'),
                     '--checkpoint', str(tmp_path / 'electra_base'),
                     '--dict', str(tmp_path / 'vocab.txt')]) == 0
    assert 'parameters' in capsys.readouterr().out
    assert cli.main(['check', str(tmp_path)]) == 0  # the folder alone: files and kind found
    assert capsys.readouterr().out.startswith('electra: %s loaded' % (tmp_path / 'electra_base'))


def test_wrong_shape_checkpoint_is_one_line_from_the_command(tmp_path):
    wide = write_tiny('bert', str(tmp_path), hidden_size=64, num_attention_heads=4)
    paths = tiny('bert')
    result = run_cli('check', 'bert', '--config', paths['config'],
                     '--checkpoint', wide['checkpoint'], '--dict', paths['dict'])
    assert result.returncode == 2
    lines = python_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('bert4keras-blog check: error: layer ')
    vocab = sum(1 for _ in open(paths['dict'], encoding='utf-8'))
    assert ("'bert/embeddings/word_embeddings' has shape (%d, 64), model expects (%d, 48)"
            % (vocab, vocab)) in lines[0]
    assert 'Traceback' not in result.stderr


@pytest.mark.parametrize('args, expected', [
    (['check', 'bert', '--config', 'nowhere.json', '--checkpoint', 'x', '--dict', 'v'],
     'no x.index'),
    (['check', 'mt5.1.1', '--checkpoint', 'x'], 'no x.index'),
    (['check', '--config', 'c.json'], 'need --checkpoint'),
    (['check', 'no/such/release'], 'no such folder'),
])
def test_bad_paths_are_one_line(args, expected, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_broken_config_names_its_line(tmp_path, capsys):
    config = tmp_path / 'bert_config.json'
    config.write_text('{"hidden_size": 48,,}')
    paths = tiny('bert')
    assert cli.main(['check', 'bert', '--config', str(config), '--checkpoint',
                     paths['checkpoint'], '--dict', paths['dict']]) == 2
    assert 'bert_config.json line 1: invalid JSON' in capsys.readouterr().err
