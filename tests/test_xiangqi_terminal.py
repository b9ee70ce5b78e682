"""Post 7: the terminal game, in-process and through a real pty."""
import sys

import pytest

from bert4keras_blog.errors import IllegalMoveError
from bert4keras_blog.xiangqi import rules
from bert4keras_blog.xiangqi.match import RandomPlayer
from bert4keras_blog.xiangqi.records import read_games
from bert4keras_blog.xiangqi.terminal import TerminalGame, read_move

MATE_IN_ONE = '4k4/8R/9/9/9/9/9/9/9/R2K5 w - - 0 1'  # red: a0a9 mates


def test_read_move_takes_both_notations_and_explains_the_rest():
    legal = rules.legal_moves([])
    assert read_move('h2e2', legal) == ('h2e2', '')
    assert read_move(' H2-E2 ', legal) == ('h2e2', '')
    move, note = read_move('h3e3', legal)  # Fairy-Stockfish ranks: ICCS h3e3 is illegal
    assert move == 'h2e2' and 'ICCS h2e2' in note
    assert read_move('a1a2', legal, notation='fsf')[0] == 'a0a1'
    assert read_move('a10a9', rules.legal_moves(['h2e2']))[0] == 'a9a8'
    with pytest.raises(IllegalMoveError, match='not a move'):
        read_move('hello', legal)
    with pytest.raises(IllegalMoveError, match='piece on h2 can go to'):
        read_move('h2h8', legal)
    with pytest.raises(IllegalMoveError, match='no piece that can move from e5'):
        read_move('e5e6', legal)


def scripted(lines):
    lines = iter(lines)

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError
    return read


def test_hostile_input_then_checkmate_in_process(tmp_path):
    out = []
    save = str(tmp_path / 'games.txt')
    game = TerminalGame(RandomPlayer(0), fen=MATE_IN_ONE, save_path=save,
                        read=scripted(['', 'rubbish', 'a0b1', 'undo', 'notation x', 'help',
                                       'i9i10', 'undo', 'moves', 'a0a9']),
                        write=out.append).run()
    text = '\n'.join(out)
    for expected in ('Empty line', 'not a move', 'the piece on a0 can go to',
                     'Nothing of yours to undo', 'notation iccs', 'Type a move in ICCS',
                     'read as ranks 1-10: ICCS i8i9', 'Took back 2 plies', 'Game over: 1-0 '
                     '(checkmate)'):
        assert expected in text, expected
    assert game.moves == ['a0a9'] and game.result == '1-0'
    assert read_games(save) == ([game], [])


def test_ctrl_d_and_resign_end_cleanly_and_save(tmp_path):
    save = str(tmp_path / 'games.txt')
    first = TerminalGame(RandomPlayer(0), save_path=save, read=scripted(['h2e2']),
                         write=lambda *a: None).run()
    second = TerminalGame(RandomPlayer(0), human='black', save_path=save,
                          read=scripted(['resign']), write=lambda *a: None).run()
    assert first.result == '*' and len(first.moves) == 2
    assert second.result == '1-0' and len(second.moves) == 1
    assert read_games(save) == ([first, second], [])


@pytest.fixture(scope='module')
def saved_model(tmp_path_factory):
    from bert4keras_blog.compat import keras
    from bert4keras_blog.xiangqi.lm import build_move_model, save_move_model
    keras.utils.set_random_seed(2)
    transformer, _ = build_move_model(dict(hidden_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, intermediate_size=64,
                                           max_position_embeddings=128))
    return save_move_model(transformer, str(tmp_path_factory.mktemp('xq') / 'model'))


def spawn(args, tmp_path):
    pexpect = pytest.importorskip('pexpect')
    child = pexpect.spawn(sys.executable, ['-m', 'bert4keras_blog.app.cli', 'xiangqi', 'play'] + args,
                          encoding='utf-8', timeout=120, dimensions=(50, 120))
    child.logfile_read = open(str(tmp_path / 'pty.log'), 'w', encoding='utf-8')
    return child, pexpect


@pytest.mark.slow
def test_terminal_game_through_a_pty_survives_hostile_input(saved_model, tmp_path):
    import os
    save = str(tmp_path / 'played.txt')
    folder = os.path.dirname(saved_model['checkpoint'])
    child, pexpect = spawn(['--checkpoint', folder, '--fen', MATE_IN_ONE, '--save', save],
                           tmp_path)
    prompt = r'your move \(red\) > '
    child.expect(prompt)
    for line, answer in (('', 'Empty line'), ('$%^&*', 'not a move'),
                         ('a0b1', 'can go to'), ('undo', 'Nothing of yours'),
                         ('hint', 'The model would play'), ('x' * 5000, 'not a move'),
                         ('i9i10', 'ICCS i8i9'), ('undo', 'Took back 2 plies'),
                         ('a0a9', r'Game over: 1-0 \(checkmate\)')):
        child.sendline(line)
        child.expect(answer)
        if 'Game over' not in answer:
            child.expect(prompt)
    child.expect('Saved the game')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    games, problems = read_games(save)
    assert problems == [] and games[0].moves == ['a0a9'] and games[0].fen == MATE_IN_ONE

    child, pexpect = spawn(['--checkpoint', folder, '--side', 'black', '--save', save],
                           tmp_path)
    child.expect('The model plays')
    child.expect(r'your move \(black\) > ')
    child.sendeof()  # Ctrl-D
    child.expect(r'Game over: \* \(stopped\)')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    games, problems = read_games(save)
    assert len(games) == 2 and games[1].result == '*' and len(games[1].moves) == 1
