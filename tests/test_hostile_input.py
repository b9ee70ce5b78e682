"""Hostile input (issue 19): no native crash, no traceback, no hang, nothing
lost. One section per finding of the review, in its order; every test here
failed before the fix. The Hugging Face converter's cases (finding 6) are in
tests/peer/test_hf2tf.py, next to the folders they need.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import warnings

import pytest

from bert4keras_blog.app import cli
from bert4keras_blog.checkpoints import tiny
from bert4keras_blog.errors import BlogError, CheckpointMismatchError, DataFormatError
from bert4keras_blog.xiangqi import rules
from bert4keras_blog.xiangqi.records import read_games

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
GOOD_GAME = 'h2e2 h9g7 h0g2 i9h9 1-0'


def run_cli(*args, timeout=300):
    exe = os.path.join(os.path.dirname(sys.executable), 'bert4keras-blog')
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def python_lines(stderr):
    """stderr without TensorFlow's native start-up log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(
        ('I0000', 'W0000', 'E0000', 'WARNING: All log'))]


def one_error_line(capsys, *expected):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    for text in expected:
        assert text in err[0], (text, err[0])
    return err[0]


# ---------------------------------------- 1. malformed FENs reach native code

BAD_FENS = {
    'a 10-file last rank': 'rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR1 w',
    'a 10-file first rank': 'RNBAKABNR1/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w',
    'eleven ranks': '4k4/9/9/9/9/9/9/9/9/9/4K4 w - - 0 1',
    'two red kings': '4k4/9/9/9/9/9/9/9/4K4/4K4 w - - 0 1',
    'a king outside its palace': '4k4/9/9/9/9/9/9/9/9/K8 w - - 0 1',
    'a letter that is no piece': '4k4/9/9/9/9/4Z4/9/9/9/4K4 w - - 0 1',
    'side x': '4k4/9/9/9/9/9/9/9/9/4K4 x - - 0 1',
    'two digits in a row': '4k4/9/9/9/9/54/9/9/9/4K4 w - - 0 1',
}


def test_malformed_fen_headers_are_refused_before_native_code(tmp_path):
    path = tmp_path / 'games.txt'
    path.write_text(''.join('[%s] h2e2 *\n' % fen for fen in BAD_FENS.values()) +
                    GOOD_GAME + '\n', encoding='utf-8')
    result = run_cli('xiangqi', 'check', str(path))  # in a child: a crash is its exit status
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    assert '1 good games, %d skipped' % len(BAD_FENS) in result.stdout
    for number in range(1, len(BAD_FENS) + 1):
        assert '%s line %d, game %d:' % (path, number, number) in result.stdout
    assert 'rank 0 (' in result.stdout and 'covers 10 files, xiangqi has 9' in result.stdout
    for reason in BAD_FENS:
        with pytest.raises(BlogError, match='not a valid xiangqi FEN'):
            rules.check_fen(BAD_FENS[reason])


def test_a_bad_fen_on_the_command_line_stops_before_the_model_loads():
    result = run_cli('xiangqi', 'play', '--checkpoint', 'no/such/model', '--fen',
                     BAD_FENS['a 10-file first rank'])
    assert result.returncode == 2
    lines = python_lines(result.stderr)
    assert len(lines) == 1 and 'rank 9 (' in lines[0] and 'covers 10 files' in lines[0]


def test_rules_functions_refuse_what_native_code_mishandles():
    with pytest.raises(BlogError, match='covers 10 files'):
        rules.legal_moves([], BAD_FENS['a 10-file last rank'])
    with pytest.raises(BlogError, match='not legal from'):  # pyffish: SystemError
        rules.legal_moves(['a0a9'])
    with pytest.raises(BlogError, match='limited to %d plies' % rules.MAX_PLIES):
        rules.fen_after(['h2e2', 'h7e7', 'e2h2', 'e7h7'] * 300)
    assert len(rules.parse_fen(rules.START_FEN)) == 10


def test_fuzzed_fens_records_and_player_never_crash_the_process():
    """Thousands of mutated FENs and record lines through check_fen, every
    rules function, read_games and the move player, in a child process."""
    result = subprocess.run([sys.executable, os.path.join(TESTS, 'fuzz_xiangqi.py'),
                             '--fens', '2500', '--records', '1000', '--player', '30'],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts['fens_accepted'] > 100 and counts['plies'] > 100
    assert counts['games_kept'] > 50 and counts['games_skipped'] > 300
    assert counts['player_moves'] >= 10


# ---------------------------------------------------- 2. memory blow-up

MEMORY_PROBE = r'''
import resource, sys
from bert4keras_blog.xiangqi.records import read_games
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
games, problems = read_games(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(games), len(problems), (after - before) // 1024)
print(problems[0] if problems else '')
'''


def test_a_ten_megabyte_game_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / 'huge.txt'
    cycle = 'h2e2 h7e7 e2h2 e7h7 '
    path.write_text(GOOD_GAME + '\n' + cycle * (10 * 2 ** 20 // len(cycle)) + '1/2-1/2\n',
                    encoding='utf-8')
    start = time.time()
    result = subprocess.run([sys.executable, '-c', MEMORY_PROBE, str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1000:]
    counts, problem = result.stdout.splitlines()
    kept, skipped, grown_mb = map(int, counts.split())
    assert (kept, skipped) == (1, 1)
    assert grown_mb < 100, grown_mb  # was 9.9 GB
    assert time.time() - start < 60
    assert 'line 2, game 2' in problem and 'longer than' in problem


def test_games_over_the_ply_limit_are_refused_by_line(tmp_path):
    path = tmp_path / 'long.txt'
    moves = ['h2e2', 'h7e7', 'e2h2', 'e7h7'] * (rules.MAX_PLIES // 4 + 1)
    path.write_text(GOOD_GAME + '\n' + ' '.join(moves) + ' *\n', encoding='utf-8')
    games, problems = read_games(str(path))
    assert len(games) == 1 and len(problems) == 1
    assert 'line 2' in str(problems[0]) and 'longer than %d plies' % rules.MAX_PLIES in \
        str(problems[0])


# ------------------------------------------------- 3. corrupted checkpoints

def _bert_folder(root, name):
    folder = os.path.join(str(root), name)
    shutil.copytree(os.path.dirname(tiny('bert')['checkpoint']), folder)
    return folder


def _edit_config(folder, **changes):
    path = os.path.join(folder, 'bert_config.json')
    with open(path) as f:
        config = json.load(f)
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    with open(path, 'w') as f:
        json.dump(config, f)


def _data(folder):
    return os.path.join(folder, 'bert_model.ckpt.data-00000-of-00001')


def _truncate(folder):
    with open(_data(folder), 'r+b') as f:
        f.truncate(os.path.getsize(_data(folder)) // 2)


def _flip_a_byte(folder):
    with open(_data(folder), 'r+b') as f:
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0xFF]))


def _write(name, content):
    def change(folder):
        with open(os.path.join(folder, name), 'wb') as f:
            f.write(content)
    return change


def _few_tokens(folder):
    with open(os.path.join(folder, 'vocab.txt'), 'w', encoding='utf-8') as f:
        f.write('[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n的\n')


def _non_utf8_config(folder):
    path = os.path.join(folder, 'bert_config.json')
    with open(path, 'rb') as f:
        raw = f.read()
    with open(path, 'wb') as f:
        f.write(raw.replace(b'gelu', b'g\xe9lu'))


CORRUPTIONS = {
    'cut data': (_truncate, ['is cut short', 'the index lists']),
    'bit flip': (_flip_a_byte, ['is corrupted', 'bert_model.ckpt.data-00000-of-00001',
                                'CRC32C']),
    'no data': (lambda f: os.remove(_data(f)), ['has no data file', 'bert_model.ckpt.index']),
    'garbage index': (_write('bert_model.ckpt.index', os.urandom(1870)),
                      ['not a readable TF checkpoint']),
    'empty vocab': (_write('vocab.txt', b''), ['vocab.txt', 'the vocabulary is empty']),
    'binary vocab': (_write('vocab.txt', bytes(range(256)) * 8),
                     ['vocab.txt line 1', 'NUL bytes', 'binary']),
    'Latin-1 vocab': (_write('vocab.txt', '[UNK]\n[CLS]\n[SEP]\ncaf\u00e9\n'.encode('latin-1')),
                      ['vocab.txt line 4', 'not UTF-8 (byte 0xE9']),
    'vocab of 6 tokens': (_few_tokens, ['holds 6 tokens', 'vocab_size 2677']),
    'missing key': (lambda f: _edit_config(f, hidden_size=None),
                    ['bert_config.json', "key 'hidden_size' is missing"]),
    'zero heads': (lambda f: _edit_config(f, num_attention_heads=0),
                   ["'num_attention_heads' is 0"]),
    'string size': (lambda f: _edit_config(f, hidden_size='48'), ["'hidden_size' is \"48\""]),
    'non-UTF-8 config': (_non_utf8_config, ['bert_config.json line', 'not UTF-8 (byte 0xE9 at']),
    'one layer of two': (lambda f: _edit_config(f, num_hidden_layers=1),
                         ['holds 2 layers', 'the config builds 1', 'unused']),
}


@pytest.mark.parametrize('case', sorted(CORRUPTIONS))
def test_a_corrupted_release_is_one_line_naming_the_file(case, tmp_path, capsys):
    folder = _bert_folder(tmp_path, 'release')
    corrupt, expected = CORRUPTIONS[case]
    corrupt(folder)
    assert cli.main(['check', folder]) == 2
    one_error_line(capsys, 'bert4keras-blog check: error: ', folder, *expected)


def test_a_missing_index_or_wrong_path_says_so_not_missing_variable(tmp_path):
    from bert4keras.models import build_transformer_model
    from bert4keras_blog.errors import CheckpointError
    folder = _bert_folder(tmp_path, 'release')
    os.remove(os.path.join(folder, 'bert_model.ckpt.index'))
    for prefix in (os.path.join(folder, 'bert_model.ckpt'), os.path.join(folder, 'typo.ckpt')):
        with pytest.raises(CheckpointError, match='no checkpoint at %s: %s.index is missing'
                                                  % (prefix, prefix)):
            build_transformer_model(os.path.join(folder, 'bert_config.json'), prefix)


def test_plain_bert4keras_loading_names_the_file_and_warns_on_unused_layers(tmp_path):
    from bert4keras.models import build_transformer_model
    from bert4keras_blog.errors import CheckpointError
    flipped = _bert_folder(tmp_path, 'flipped')
    _flip_a_byte(flipped)
    with pytest.raises(CheckpointError, match='flipped/bert_model.ckpt.data-00000-of-00001'):
        build_transformer_model(os.path.join(flipped, 'bert_config.json'),
                                os.path.join(flipped, 'bert_model.ckpt'))
    shallow = _bert_folder(tmp_path, 'shallow')
    _edit_config(shallow, num_hidden_layers=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        build_transformer_model(os.path.join(shallow, 'bert_config.json'),
                                os.path.join(shallow, 'bert_model.ckpt'))
    assert any('holds 2 layers' in str(w.message) for w in caught)
    assert issubclass(CheckpointError, BlogError) and issubclass(CheckpointMismatchError,
                                                                 BlogError)


# --------------------------- 4. one line aborts a data set; other encodings

def _ape_line(equation, answer, text='题目'):
    return json.dumps({'id': '1', 'original_text': text, 'segmented_text': text,
                       'equation': equation, 'ans': answer}, ensure_ascii=False) + '\n'


def test_huge_powers_are_a_rejected_line_not_an_overflow(tmp_path):
    from bert4keras_blog.mathword import answers_match, load_ape210k
    assert answers_match('3^1000', '1') is False
    assert answers_match('9^999', '9^999') is True
    assert answers_match('1/3', '0.333333') is True
    path = tmp_path / 'train.ape.json'
    path.write_text(_ape_line('x=1+1', '2') + _ape_line('x=3^1000', '1') +
                    _ape_line('x=2*3', '6'), encoding='utf-8')
    data = load_ape210k(str(path))
    assert [r['line'] for r in data] == [1, 3]
    assert data.report.rejected[0][0] == 2 and 'gives' in data.report.rejected[0][1]


@pytest.mark.parametrize('encoding, expected', [
    ('latin-1', 'line 2: not UTF-8 (byte 0xE9 at column'),
    ('utf-16', 'UTF-16 text'),
    ('utf-16-le', 'line 1: NUL bytes'),
])
def test_other_encodings_are_named_with_the_line(encoding, expected, tmp_path):
    from bert4keras_blog.datafiles import json_object, read_lines
    from bert4keras_blog.mathword import load_ape210k
    path = tmp_path / 'train.ape.json'
    path.write_bytes((_ape_line('x=1+1', '2', 'abc') + _ape_line('x=1+2', '3', 'café'))
                     .encode(encoding))
    for read in (load_ape210k, lambda p: read_lines(p, json_object), read_games):
        with pytest.raises(DataFormatError) as error:
            read(str(path))
        assert expected in str(error.value) and str(path) in str(error.value)


def test_an_overlong_data_line_is_rejected_by_number(tmp_path):
    from bert4keras_blog.datafiles import MAX_LINE_BYTES, json_object, read_lines
    path = tmp_path / 'train.json'
    path.write_text('{"a": 1}\n{"a": "%s"}\n{"a": 3}\n' % ('x' * MAX_LINE_BYTES),
                    encoding='utf-8')
    records, report = read_lines(str(path), json_object)
    assert records == [{'a': 1}, {'a': 3}]
    assert report.rejected == [(2, 'longer than %d bytes' % MAX_LINE_BYTES)]


# ------------------------------------------------------ 5. games and files lost

class InterruptedPlayer(object):
    """Plays h9g7, then is 'thinking' when the user presses Ctrl-C."""

    def __init__(self):
        self.calls = 0

    def __call__(self, moves, fen=None):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return 'h9g7'


def test_ctrl_c_while_the_model_thinks_saves_the_moves(tmp_path):
    from bert4keras_blog.xiangqi.terminal import TerminalGame
    save = str(tmp_path / 'games.txt')
    moves = iter(['h2e2', 'h0g2'])
    out = []
    try:
        game = TerminalGame(InterruptedPlayer(), save_path=save,
                            read=lambda prompt: next(moves), write=out.append).run()
    except KeyboardInterrupt:
        pytest.fail('Ctrl-C escaped the game and the moves were not saved')
    assert game.moves == ['h2e2', 'h9g7', 'h0g2'] and game.result == '*'
    assert read_games(save)[0][0].moves == game.moves
    assert any('Saved the game (3 moves' in line for line in out)


def test_an_unwritable_save_path_keeps_the_game_elsewhere(tmp_path):
    from bert4keras_blog.xiangqi.match import RandomPlayer
    from bert4keras_blog.xiangqi.terminal import TerminalGame
    out, typed = [], iter(['h2e2', 'quit'])
    game = TerminalGame(RandomPlayer(0), save_path=str(tmp_path),
                        read=lambda prompt: next(typed), write=out.append).run()
    saved = [line for line in out if line.startswith('Saved the game')][0]
    fallback = saved.rsplit(' to ', 1)[1].rstrip('.')
    assert fallback != str(tmp_path) and read_games(fallback)[0][0].moves == game.moves
    os.remove(fallback)


def test_play_checks_save_and_temperature_before_the_game(tmp_path, capsys):
    from bert4keras_blog.xiangqi.player import MovePlayer
    assert cli.main(['xiangqi', 'play', '--checkpoint', 'no/such', '--save',
                     str(tmp_path)]) == 2
    one_error_line(capsys, '--save %s is a folder' % tmp_path)
    for value in ('nan', 'inf', '-1'):
        with pytest.raises(SystemExit) as stop:
            cli.main(['xiangqi', 'play', '--temperature', value])
        assert stop.value.code == 2
        assert 'must be a finite number' in capsys.readouterr().err
    with pytest.raises(BlogError, match='temperature nan'):
        MovePlayer(None, None, temperature=float('nan'))


def test_generate_never_empties_or_replaces_a_file_without_a_flag(tmp_path, capsys):
    out = tmp_path / 'games.txt'
    out.write_text(GOOD_GAME + '\n')
    with pytest.raises(SystemExit):
        cli.main(['xiangqi', 'generate', str(out), '--games', '0'])
    assert 'must be 1 or more' in capsys.readouterr().err
    assert cli.main(['xiangqi', 'generate', str(out), '--games', '1']) == 2
    one_error_line(capsys, 'exists; pass --append', '--force')
    assert out.read_text() == GOOD_GAME + '\n'


FAKE_ENGINES = {'echo': '#!/bin/sh\nexec cat\n', 'spam': '#!/bin/sh\nexec yes\n',
                'dead': '#!/bin/sh\nexit 3\n'}
ENGINE_PROBE = r'''
import json, sys, time
from bert4keras_blog.xiangqi import engine
engine.HANDSHAKE_SECONDS = 3
from bert4keras_blog.app.cli import main
out = sys.argv[1]
for path in sys.argv[2:]:
    start = time.time()
    status = main(['xiangqi', 'generate', out, '--games', '4', '--workers', '2',
                   '--engine', path])
    print(json.dumps([path, status, time.time() - start]), flush=True)
'''


def test_a_program_that_is_no_engine_is_an_error_not_a_hang(tmp_path):
    fakes = []
    for kind, text in sorted(FAKE_ENGINES.items()):
        fakes.append(tmp_path / kind)
        fakes[-1].write_text(text)
        fakes[-1].chmod(0o755)
    # A session of its own: on a hang, the pool workers are killed with it.
    child = subprocess.Popen([sys.executable, '-c', ENGINE_PROBE, str(tmp_path / 'out.txt')] +
                             [str(f) for f in fakes], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)
        stdout, _ = child.communicate()
        pytest.fail('xiangqi generate hung; finished: %s' % stdout)
    results = [json.loads(line) for line in stdout.splitlines()]
    assert [(path, status) for path, status, _ in results] == [(str(f), 2) for f in fakes]
    assert all(seconds < 40 for _, _, seconds in results), results
    lines = python_lines(stderr)
    assert len(lines) == len(fakes), lines
    for fake, line in zip(fakes, lines):
        assert str(fake) in line and 'Fairy-Stockfish' in line
    assert not (tmp_path / 'out.txt').exists()


def test_tiny_does_not_overwrite_a_folder_without_force(tmp_path, capsys):
    (tmp_path / 'vocab.txt').write_text('mine\n')
    assert cli.main(['tiny', 'bert', str(tmp_path)]) == 2
    one_error_line(capsys, 'already holds files (vocab.txt)', '--force')
    assert (tmp_path / 'vocab.txt').read_text() == 'mine\n'
    assert cli.main(['tiny', 'bert', str(tmp_path), '--force']) == 0
    assert (tmp_path / 'vocab.txt').read_text() != 'mine\n'


# ------------------------------------------ 7. examples and the error path

def _example(name):
    sys.path.insert(0, os.path.join(ROOT, 'examples'))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def _stops_at_once(capsys, example, argv, expected):
    start = time.time()
    with pytest.raises(SystemExit) as stop:
        _example(example).main(argv)
    assert stop.value.code == 2 and time.time() - start < 10
    assert expected in capsys.readouterr().err


def test_examples_check_data_and_run_dir_before_any_work(tmp_path, capsys):
    paths = tiny('bert')
    (tmp_path / 'empty').mkdir()
    utf16 = tmp_path / 'games16.txt'
    utf16.write_bytes(GOOD_GAME.encode('utf-16'))
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'thesis.tex').write_text('precious')
    cases = [
        ('post3_math_word_problems', ['--data', str(tmp_path / 'nowhere')], 'no such folder'),
        ('post4_teaforn', ['--data', str(tmp_path / 'empty')], 'train.ape.json: no such file'),
        ('post6_mt5_title_generation', ['--data', str(tmp_path / 'empty')],
         'train.json: no such file'),
        ('post7_gpt_xiangqi', ['--data', str(utf16)], 'UTF-16 text'),
        ('post7_gpt_xiangqi', ['--data', str(tmp_path / 'nowhere.txt')], 'no such file'),
        ('post3_math_word_problems', ['--checkpoint', str(tmp_path / 'bert_model.ckpt'),
                                      '--config', paths['config'], '--dict', paths['dict'],
                                      '--data', str(tmp_path)], 'bert_model.ckpt.index'),
        ('post2_learning_rate', ['--run-dir', str(utf16)], 'is a file, not a folder'),
        ('post8_rnn_gradients', ['--run-dir', str(mine)], "holds files that are not a run's"),
        ('post7_gpt_xiangqi', ['--max-rejected', 'nan'], 'a share from 0 to 1'),
        ('post1_albert_electra', ['--pretrained', str(tmp_path / 'nowhere')],
         'no such folder'),  # it benchmarked for 73 s first
    ]
    for example, argv, expected in cases:
        _stops_at_once(capsys, example, argv, expected)
    assert (mine / 'thesis.tex').read_text() == 'precious' and len(os.listdir(mine)) == 1


def test_an_example_failing_on_its_data_is_one_line(tmp_path):
    data = tmp_path / 'games.txt'
    data.write_text('e0e5 *\n' * 20)  # every game illegal at ply 1
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'examples',
                                                          'post7_gpt_xiangqi.py'),
                             '--data', str(data), '--run-dir', str(tmp_path / 'run')],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr
    lines = python_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith('post7_gpt_xiangqi.py: error: %s' % data)
    assert '20 of 20 lines rejected' in lines[0]


def test_an_unexpected_error_is_one_line_and_a_traceback_file(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError('a bug of ours')
    monkeypatch.setattr(cli, 'cmd_info', broken)
    assert cli.main(['info']) == 1
    line = one_error_line(capsys, 'bert4keras-blog info: unexpected error: RuntimeError: a bug '
                                  'of ours')
    path = line.split('traceback is in ')[1].split(';')[0]
    with open(path) as f:
        assert 'Traceback' in f.read() and 'a bug of ours' in line
    os.remove(path)


def test_sigterm_unwinds_so_cleanup_runs(tmp_path):
    """run_main turns SIGTERM into an exit that runs ``finally`` blocks."""
    marker = tmp_path / 'cleaned'
    script = ('import os, signal, sys, time\n'
              'from bert4keras_blog.errors import run_main\n'
              'def main(argv):\n'
              '    try:\n'
              '        os.kill(os.getpid(), signal.SIGTERM)\n'
              '        time.sleep(30)\n'
              '    finally:\n'
              '        open(%r, "w").close()\n'
              'sys.exit(run_main(main, [], "probe"))\n' % str(marker))
    result = subprocess.run([sys.executable, '-c', script], timeout=60)
    assert result.returncode == 143 and marker.exists()

