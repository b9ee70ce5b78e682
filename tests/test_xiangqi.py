"""Post 7: rules in ICCS, game records, the legal-only player, engine, matches."""
import gzip

import numpy as np
import pytest

from bert4keras_blog.errors import BlogError, IllegalMoveError
from bert4keras_blog.xiangqi import rules
from bert4keras_blog.xiangqi.match import RandomPlayer, play_game, play_match
from bert4keras_blog.xiangqi.records import Game, read_games, write_games

MATE_IN_ONE = '4k4/8R/9/9/9/9/9/9/9/R2K5 w - - 0 1'  # red: a0a9 mates


def random_positions(count, seed=0, max_plies=120):
    """Move lists reached by random play (different lengths, both sides to move)."""
    rng = np.random.default_rng(seed)
    positions = []
    while len(positions) < count:
        moves = []
        for _ in range(rng.integers(0, max_plies)):
            legal = rules.legal_moves(moves)
            if not legal:
                break
            moves.append(legal[rng.integers(len(legal))])
        if rules.legal_moves(moves):
            positions.append(moves)
    return positions


# ------------------------------------------------------------------- rules

def test_start_position_has_44_moves_and_perft_2_is_1920():
    first = rules.legal_moves([])
    assert len(first) == 44 and 'h2e2' in first and 'b0c2' in first
    assert sum(len(rules.legal_moves([m])) for m in first) == 1920


def test_iccs_and_fairy_stockfish_forms_round_trip_and_match_the_board():
    """Every legal move of 100 random positions: the conversion round-trips,
    and read in ICCS (rank 0 = red's back rank) the from-square holds a piece
    of the side to move and the to-square does not, on the board drawn from
    Fairy-Stockfish's FEN."""
    for moves in random_positions(100):
        board = rules.board_rows(moves)
        red = rules.side_to_move(moves) == 'red'
        for move in rules.legal_moves(moves):
            assert rules.fsf_to_iccs(rules.iccs_to_fsf(move)) == move
            piece = board[9 - int(move[1])]['abcdefghi'.index(move[0])]
            target = board[9 - int(move[3])]['abcdefghi'.index(move[2])]
            assert piece != '.' and piece.isupper() == red, (moves, move)
            assert target == '.' or target.isupper() != red, (moves, move)


def test_conversion_rejects_the_other_notation():
    assert rules.iccs_to_fsf('a9a8') == 'a10a9'
    assert rules.fsf_to_iccs('a10a9') == 'a9a8'
    for bad in ('h0e0', 'j3e3', 'h3e', ''):
        with pytest.raises(ValueError):
            rules.fsf_to_iccs(bad)
    for bad in ('a10a9', 'h2e', 'z2e2'):
        with pytest.raises(ValueError):
            rules.iccs_to_fsf(bad)


def test_outcome_detects_checkmate_and_names_the_winner():
    assert rules.outcome([], MATE_IN_ONE) is None
    assert rules.outcome(['a0a9'], MATE_IN_ONE) == ('1-0', 'checkmate')
    assert rules.legal_moves(['a0a9'], MATE_IN_ONE) == []
    with pytest.raises(BlogError, match='FEN'):
        rules.check_fen('not a position')


def test_random_games_end_by_the_rules_with_consistent_results():
    reasons = set()
    for seed in range(3):  # seeded: one game ends by a rule, one by checkmate, one at 400 plies
        game, reason = play_game(RandomPlayer(seed), RandomPlayer(seed + 100), max_plies=400)
        reasons.add(reason)
        ended = rules.outcome(game.moves)
        if reason == 'max_plies':
            assert ended is None and game.result == '1/2-1/2'
        else:
            assert ended == (game.result, reason)
        if reason == 'checkmate':  # the side to move has no move and lost
            loser = rules.side_to_move(game.moves)
            assert game.result == ('0-1' if loser == 'red' else '1-0')
    assert reasons == {'rule', 'checkmate', 'max_plies'}, reasons


# ----------------------------------------------------------------- records

def test_corrupted_record_file_reports_game_and_ply_and_keeps_the_rest(tmp_path):
    good = [Game(m, r) for m, r in zip(random_positions(4, seed=3, max_plies=30),
                                       ['1-0', '0-1', '*', '1/2-1/2'])]
    lines = [' '.join(g.moves + [g.result]) for g in good]
    bad_illegal = good[0].moves[:2] + ['a0a5'] + good[0].moves[3:]  # rook through pawn
    lines.insert(1, ' '.join(bad_illegal))  # line 2 = game 2
    lines.insert(3, 'h2e2 h9g7 XYZ')  # line 4 = game 4, ply 3 unreadable
    lines.insert(4, '# a comment')
    lines.insert(5, '')
    path = tmp_path / 'games.txt'
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    games, problems = read_games(str(path))
    assert games == good
    assert [(p.path, p.line, p.game, p.ply) for p in problems] == [
        (str(path), 2, 2, 3), (str(path), 4, 4, 3)]
    assert "line 2, game 2, ply 3: move 'a0a5': not legal" in str(problems[0])
    assert 'not an ICCS move' in str(problems[1])
    with pytest.raises(IllegalMoveError, match='line 2'):
        read_games(str(path), strict=True)


def test_records_round_trip_compressed(tmp_path):
    games = [Game(m, '*') for m in random_positions(5, seed=4, max_plies=40)]
    path = str(tmp_path / 'games.txt.gz')
    write_games(path, games[:3])
    write_games(path, games[3:], append=True)
    assert read_games(path) == (games, [])
    with gzip.open(path, 'rt') as f:
        assert len(f.read().splitlines()) == 5


@pytest.fixture(scope='module')
def shipped():
    """The shipped games, read (and checked move by move) once."""
    from bert4keras_blog.xiangqi import DEFAULT_GAMES
    return read_games(DEFAULT_GAMES)


def test_shipped_engine_games_are_all_legal_and_varied(shipped):
    games, problems = shipped
    assert problems == [] and len(games) == 4500
    openings = {tuple(g.moves[:6]) for g in games}
    assert len(openings) > 0.8 * len(games)
    results = [g.result for g in games]
    assert results.count('1-0') > 0.2 * len(games) and results.count('0-1') > 0.2 * len(games)


# ------------------------------------------------------------ model, player

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=64)


@pytest.fixture(scope='module')
def small_model():
    from bert4keras_blog.compat import keras
    from bert4keras_blog.xiangqi.lm import build_move_model
    keras.utils.set_random_seed(1)
    return build_move_model(SMALL)


def reference_scores(transformer, tokenizer, moves, candidates):
    """Full forward pass per candidate, no cache: summed log-probabilities."""
    model = transformer.model
    context = tokenizer.encode(moves)
    batch = np.array([context + tokenizer.encode([m])[1:] for m in candidates])
    probabilities = model.predict([batch, np.zeros_like(batch)], verbose=0)
    n = len(context)
    picked = probabilities[np.arange(len(batch))[:, None], np.arange(n - 1, n + 3)[None],
                           batch[:, n:n + 4]]
    return np.log(picked + 1e-12).sum(axis=1)


def test_player_scores_equal_full_forward_passes(small_model):
    from bert4keras_blog.xiangqi.player import MovePlayer
    transformer, tokenizer = small_model
    player = MovePlayer(transformer, tokenizer)
    for moves in random_positions(4, seed=5, max_plies=12):
        scores = player.scores(moves)
        legal = rules.legal_moves(moves)
        assert sorted(scores) == legal
        np.testing.assert_allclose([scores[m] for m in legal],
                                   reference_scores(transformer, tokenizer, moves, legal),
                                   atol=1e-4)


def test_unconstrained_choice_is_the_greedy_decode(small_model):
    from bert4keras_blog.xiangqi.player import MovePlayer
    transformer, tokenizer = small_model
    player = MovePlayer(transformer, tokenizer)
    moves = ['h2e2', 'h9g7']
    player.scores(moves)
    ids = tokenizer.encode(moves)
    for _ in range(4):
        p = transformer.model.predict([np.array([ids]), np.zeros((1, len(ids)))], verbose=0)
        ids.append(int(np.argmax(p[0, -1])))
    from bert4keras_blog.xiangqi.lm import TOKENS
    assert player.unconstrained_choice == ''.join(TOKENS[i] for i in ids[-4:])


def test_player_never_returns_an_illegal_move(small_model):
    """120 random positions, greedy and sampled, including games longer than
    the model's 64 positions (the context keeps the latest moves)."""
    from bert4keras_blog.xiangqi.player import MovePlayer
    transformer, tokenizer = small_model
    greedy = MovePlayer(transformer, tokenizer)
    sampler = MovePlayer(transformer, tokenizer, temperature=1.0, topk=5, seed=1)
    positions = random_positions(120, seed=6, max_plies=60)
    assert max(len(m) for m in positions) * 4 > 64
    chosen = set()
    for moves in positions:
        legal = rules.legal_moves(moves)
        for player in (greedy, sampler):
            move = player(moves)
            assert move in legal
            chosen.add(move)
    assert len(chosen) > 50
    assert 0 <= greedy.legal_top1_rate <= 1 and greedy.predictions == 120


def test_staged_batches_cut_games_and_weight_the_winner():
    from bert4keras_blog.xiangqi.lm import GameBatches, MoveTokenizer, move_weights
    tokenizer = MoveTokenizer()
    game = Game(random_positions(1, seed=7, max_plies=80)[0][:40], '0-1')
    assert list(move_weights(game)[:4]) == [0, 1, 0, 1]
    assert move_weights(game, 'all').sum() == 40
    assert move_weights(Game(game.moves, '1/2-1/2')).sum() == 40
    assert tokenizer.decode(tokenizer.encode(game.moves)) == game.moves
    batches = GameBatches([game] * 3, tokenizer, batch_size=2, fraction=1 / 8)
    (tokens, segments, weights), _ = next(iter(batches))
    assert tokens.shape == (2, 1 + 4 * 5) and not segments.any()  # ceil(40 / 8) = 5 plies
    assert list(weights[0, :9]) == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    batches = GameBatches([game], tokenizer, batch_size=1, maxlen=41)
    assert next(iter(batches))[0][0].shape == (1, 41)


@pytest.mark.slow
def test_training_on_engine_games_lowers_the_loss_and_saves_a_loadable_model(tmp_path, shipped):
    from bert4keras.optimizers import Adam
    from bert4keras_blog.compat import keras
    from bert4keras_blog.xiangqi.lm import (
        GameBatches, build_move_model, build_trainer, load_move_model, save_move_model)
    from bert4keras_blog.xiangqi.player import MovePlayer
    keras.utils.set_random_seed(0)
    games = shipped[0][:300]
    transformer, tokenizer = build_move_model(dict(SMALL, hidden_size=64,
                                                   max_position_embeddings=128))
    trainer = build_trainer(transformer, Adam(2e-3))
    batches = GameBatches(games, tokenizer, batch_size=16, maxlen=128)
    before = trainer.evaluate(batches.forfit(random=False), steps=len(batches), verbose=0)
    trainer.fit(batches.forfit(), steps_per_epoch=60, epochs=1, verbose=0)
    after = trainer.evaluate(batches.forfit(random=False), steps=len(batches), verbose=0)
    assert after < 0.75 * before, (before, after)  # ln(23) = 3.1 at the start
    paths = save_move_model(transformer, str(tmp_path / 'model'))
    loaded, _ = load_move_model(str(tmp_path / 'model'))
    moves = games[0].moves[:10]
    np.testing.assert_allclose(
        sorted(MovePlayer(loaded, tokenizer).scores(moves).values()),
        sorted(MovePlayer(transformer, tokenizer).scores(moves).values()), atol=1e-5)
    assert paths['dict'].endswith('vocab.txt')


# ---------------------------------------------------------- engine, matches

@pytest.fixture(scope='module')
def engine_path():
    from bert4keras_blog.xiangqi.engine import EngineNotFoundError, find_engine
    try:
        return find_engine()
    except EngineNotFoundError as error:  # `make test` installs it; CI has it
        pytest.skip(str(error))


def test_missing_engine_says_how_to_install(tmp_path, monkeypatch):
    from bert4keras_blog.xiangqi import engine
    with pytest.raises(engine.EngineNotFoundError, match='apt-get install fairy-stockfish'):
        engine.find_engine(str(tmp_path / 'no-such-engine'))
    monkeypatch.setenv('PATH', str(tmp_path))
    monkeypatch.delenv('FAIRY_STOCKFISH', raising=False)
    monkeypatch.setattr(engine, 'DEBIAN_PATH', str(tmp_path / 'fairy-stockfish'))
    with pytest.raises(engine.EngineNotFoundError, match='was not found.*apt-get install'):
        engine.Engine()


def test_engine_plays_legal_moves_and_beats_the_random_mover(engine_path):
    from bert4keras_blog.xiangqi.engine import Engine
    with Engine(engine_path, depth=1) as engine:
        for moves in random_positions(20, seed=8, max_plies=60):
            assert engine.best_move(moves) in rules.legal_moves(moves)
        tally = play_match(engine, RandomPlayer(0), 6, max_plies=200)
    assert tally['win'] >= 5, tally


def test_shipped_games_are_what_the_generator_makes(engine_path, shipped):
    """The two generate commands of docs/post7-gpt-xiangqi.md remake the shipped file."""
    from bert4keras_blog.xiangqi.engine import generate_games
    games = shipped[0]
    assert generate_games(3, seed=0, progress=False) == games[:3]
    assert generate_games(3, seed=1, weak_noise=1.0, depths=(1, 2),
                          progress=False) == games[3000:3003]


def test_generated_games_are_reproducible_and_legal(engine_path, tmp_path):
    from bert4keras_blog.xiangqi.engine import generate_games
    one = generate_games(4, seed=11, workers=1, max_plies=80, progress=False)
    two = generate_games(4, seed=11, workers=2, max_plies=80, progress=False)
    assert one == two
    assert len({tuple(g.moves[:8]) for g in one}) == 4
    path = str(tmp_path / 'g.txt')
    write_games(path, one)
    assert read_games(path) == (one, [])


def test_move_model_from_a_bert_release_keeps_the_move_tokens_rows():
    """The post's setting: a Chinese BERT cut down to the 23 move tokens."""
    import tensorflow as tf
    from bert4keras_blog.checkpoints import tiny
    from bert4keras_blog.xiangqi.lm import TOKENS, MoveTokenizer, build_move_model
    paths = tiny('bert')
    transformer, _ = build_move_model(paths['config'], paths['checkpoint'], paths['dict'])
    rows = MoveTokenizer.keep_tokens(paths['dict'])
    full = tf.train.load_variable(paths['checkpoint'], 'bert/embeddings/word_embeddings')
    kept = transformer.model.get_layer('Embedding-Token').get_weights()[0]
    assert kept.shape[0] == len(TOKENS)
    np.testing.assert_array_equal(kept, full[rows])


def test_a_move_that_leaves_the_king_attacked_is_illegal():
    from bert4keras_blog.xiangqi.records import validate_game
    validate_game(['i8i9', 'e9e8'], MATE_IN_ONE)  # the only way out of the check
    with pytest.raises(IllegalMoveError, match='ply 2'):
        validate_game(['i8i9', 'e9f9'], MATE_IN_ONE)  # f9 is on the rook's rank
