"""Fuzzes every way a FEN or a game record reaches Fairy-Stockfish's native
code: ``check_fen`` and the rules functions, ``read_games`` (the record
reader behind ``xiangqi check`` and post 7), and the move player.

Runs in its own process (``tests/test_hostile_input.py`` starts it): memory
corruption in native code kills the process (exit status 139 or 134)
instead of failing an assertion, and the parent sees that. Prints one JSON
line of counts.

    python tests/fuzz_xiangqi.py --fens 4000 --records 2000 --seed 0
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time

from bert4keras_blog.errors import BlogError
from bert4keras_blog.xiangqi.records import read_games
from bert4keras_blog.xiangqi.rules import (
    START_FEN, board_rows, check_fen, fen_after, legal_moves, outcome)

ALPHABET = 'KABNRCPkabnrcp0123456789/ wb-rk10'
JUNK = ['\x00', '\u00e9', '\u5e05', '\ufeff', '\n', '\t', '[', ']', '99999999999', '-1']


def shipped_games(rng, count=60):
    """Real games to cut and mutate: the engine games post 7 ships."""
    import gzip
    from bert4keras_blog.xiangqi import records
    path = os.path.join(os.path.dirname(records.__file__), 'data', 'engine_games.txt.gz')
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        lines = [line.split() for line in f if line.strip() and not line.startswith('#')]
    return [line[:-1] for line in rng.sample(lines, count)]


def seed_positions(rng, games):
    """Positions to mutate: the start, two endgames, and positions along the
    shipped games."""
    fens = [START_FEN, '4k4/9/9/9/9/9/9/9/9/3K5 w - - 0 1',
            '3k5/4a4/4b4/9/9/9/9/4B4/4A4/4K4 b - - 10 40']
    for moves in games:
        fens.append(fen_after(moves[:rng.randrange(len(moves) + 1)]))
    return fens


def mutate(text, rng, alphabet=ALPHABET):
    """One to three random edits (one in half the cases): a character
    replaced, inserted, deleted, a rank doubled, dropped or swapped, a digit
    bumped, junk appended."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        place = rng.randrange(len(text) + 1)
        choice = rng.randrange(9)
        if choice == 0 and text:
            text = text[:place] + rng.choice(alphabet) + text[place + 1:]
        elif choice == 1:
            text = text[:place] + rng.choice(alphabet) + text[place:]
        elif choice == 2:
            text = text[:place] + text[place + 1:]
        elif choice in (3, 4, 5):
            board, _, rest = text.partition(' ')
            ranks = board.split('/')
            i, j = rng.randrange(len(ranks)), rng.randrange(len(ranks))
            if choice == 3:
                ranks.insert(i, ranks[j])
            elif choice == 4 and len(ranks) > 1:
                del ranks[i]
            else:
                ranks[i], ranks[j] = ranks[j], ranks[i]
            text = '/'.join(ranks) + (' ' + rest if rest else '')
        elif choice == 6:
            digits = [k for k, c in enumerate(text) if c.isdigit()]
            if digits:
                k = rng.choice(digits)
                text = text[:k] + str((int(text[k]) + rng.choice((1, -1, 9))) % 10) + text[k + 1:]
        elif choice == 7:
            text = text + rng.choice(JUNK)
        else:
            text = text[:place] + rng.choice(JUNK) + text[place:]
    return text


def play_from(fen, rng, plies=3):
    """Walks a few random plies through every rules function."""
    moves = []
    for _ in range(plies):
        legal = legal_moves(moves, fen)
        if not legal:
            break
        moves.append(rng.choice(legal))
    board_rows(moves, fen)
    outcome(moves, fen)
    fen_after(moves, fen)
    try:  # an illegal move must be an error, not undefined behaviour
        legal_moves(moves + ['a0a9'], fen)
    except BlogError:
        pass
    return len(moves)


TRACE = None  # --trace: each input is written here before native code sees it


def trace(text):
    if TRACE is not None:
        TRACE.write(text + '\n')
        TRACE.flush()


def fuzz_fens(count, rng, bases):
    accepted, plies = [], 0
    for _ in range(count):
        fen = mutate(rng.choice(bases), rng)
        trace(fen)
        try:
            check_fen(fen)
        except BlogError:
            continue
        accepted.append(fen)
        plies += play_from(fen, rng)
    return accepted, plies


def record_line(rng, bases, games):
    """A game line, then mutated: part of a shipped game, maybe after a
    [FEN], maybe with a result; now and then a huge repetitive game."""
    moves = rng.choice(games)
    text = ' '.join(moves[:rng.randrange(1, len(moves) + 1)])
    text += ' ' + rng.choice(['1-0', '0-1', '1/2-1/2', '*', ''])
    if rng.random() < 0.4:
        text = '[%s] %s' % (mutate(rng.choice(bases), rng), text)
    if rng.random() < 0.8:
        text = mutate(text, rng, alphabet=ALPHABET + 'abcdefghi -H')
    if rng.random() < 0.02:
        text = ' '.join(['h2e2 h7e7 e2h2 e7h7'] * rng.randrange(200, 3000))
    return text.replace('\n', ' ').replace('\x00', ' ')


def fuzz_records(count, rng, bases, games, folder):
    path = os.path.join(folder, 'fuzzed_games.txt')
    with open(path, 'w', encoding='utf-8') as f:
        for _ in range(count):
            f.write(record_line(rng, bases, games) + '\n')
    games, problems = read_games(path)
    for game in games:  # every game kept is legal to its end
        legal_moves(game.moves, game.fen)
    return len(games), len(problems)


def fuzz_player(fens, rng, limit):
    """The move model on fuzzed positions: it must answer a legal move."""
    from bert4keras_blog.xiangqi.lm import build_move_model
    from bert4keras_blog.xiangqi.player import MovePlayer
    transformer, tokenizer = build_move_model(dict(hidden_size=16, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=32))
    player = MovePlayer(transformer, tokenizer, temperature=1.0, seed=rng.randrange(1000))
    played = 0
    for fen in fens[:limit]:
        if outcome([], fen) is None:
            move = player([], fen)
            assert move in legal_moves([], fen), (fen, move)
            played += 1
    return played


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--fens', type=int, default=4000)
    parser.add_argument('--records', type=int, default=2000)
    parser.add_argument('--player', type=int, default=40, help='fuzzed positions played')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--trace', help='write each FEN here first (to find a crashing one)')
    args = parser.parse_args(argv)
    global TRACE
    TRACE = open(args.trace, 'w') if args.trace else None
    rng = random.Random(args.seed)
    start = time.time()
    games = shipped_games(rng)
    bases = seed_positions(rng, games)
    accepted, plies = fuzz_fens(args.fens, rng, bases)
    with tempfile.TemporaryDirectory() as folder:
        kept, skipped = fuzz_records(args.records, rng, bases, games, folder)
    played = fuzz_player(accepted, rng, args.player) if args.player else 0
    print(json.dumps({'fens': args.fens, 'fens_accepted': len(accepted), 'plies': plies,
                      'records': args.records, 'games_kept': kept, 'games_skipped': skipped,
                      'player_moves': played, 'seconds': round(time.time() - start, 1)}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
