#! -*- coding: utf-8 -*-
# Post 7: 用GPT下中国象棋 (GPT plays Chinese chess), https://kexue.fm/archives/7877
#
# A BERT with a left-to-right mask learns game records written as ICCS moves
# (four characters a move), on games lengthened in stages (the first 1/8 of
# every game, then 1/4, 1/2, all). At play time every legal move is scored by
# the summed log-probability of its characters and the best one is played, so
# the model never plays an illegal move. It then plays a random legal mover
# and Fairy-Stockfish at its lowest skill, and we count how often its own
# unconstrained first choice was legal.
#
# Learning is measured after every stage on held-out games' positions: the
# share of unconstrained first choices that are legal, of positions with a
# hanging piece where it takes one, of positions with a mate in one where it
# mates, and its score in a few games against the random mover, each with a
# 95% interval over positions or games.
#
# Embedded default: 4,500 games Fairy-Stockfish played (3,000 against itself
# with random mistakes, 1,500 against a random mover), shipped with the
# package (`bert4keras-blog xiangqi generate` remakes them), and a small model
# trained from scratch. Real setting, as the post:
#
#   python examples/post7_gpt_xiangqi.py
#   python examples/post7_gpt_xiangqi.py --data games.txt \
#       --pretrained chinese_L-12_H-768_A-12/ --steps 20000
#   bert4keras-blog xiangqi play              # then play it in the terminal
#
# On a GPU, the post's scale in one command (bfloat16 mixed precision, batch
# 64, 20,000 steps; refuses to start without a GPU):
#
#   python examples/post7_gpt_xiangqi.py --gpu --pretrained chinese_L-12_H-768_A-12/ \
#       --data games.txt
import argparse
import contextlib
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.optimizers import Adam
from bert4keras_blog.datafiles import accept
from bert4keras_blog.experiment.flags import (
    add_data_arguments, add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.distribute import make_strategy
from bert4keras_blog.experiment.flags import add_common_arguments
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.xiangqi import DEFAULT_GAMES, RandomPlayer, play_match, read_games
from bert4keras_blog.xiangqi.records import rejected_lines
from bert4keras_blog.xiangqi.engine import Engine, EngineNotFoundError
from bert4keras_blog.xiangqi.lm import (
    GameBatches, build_move_model, build_trainer, save_move_model)
from bert4keras_blog.xiangqi.player import MovePlayer
from bert4keras_blog.xiangqi.probes import find_positions, run_probes
from bert4keras_blog.compat import keras, tf
from bert4keras_blog.experiment.claims import interval, proportion
from bert4keras_blog.errors import BlogError, run_main

EXAMPLE = 'post7_gpt_xiangqi'
STAGES = (1 / 8, 1 / 4, 1 / 2, 1)

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'steps': 240, 'maxlen': 256, 'probe_positions': 20, 'curve_games': 0,
         'random_games': 12, 'engine_games': 1, 'max_plies': 120}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='A language model plays xiangqi (post 7).')
    add_release_arguments(parser, kinds=('bert', 'roberta'))
    add_data_arguments(parser, 'game records, ICCS moves one game a line (default: the shipped '
                               'engine games)')
    parser.add_argument('--steps', type=int, default=None,
                        help='training steps, split evenly over the four stages')
    parser.add_argument('--maxlen', type=int, default=None, help='tokens per game (4 a move)')
    parser.add_argument('--lr', type=float, default=None)
    parser.add_argument('--learn-from', choices=('winner', 'all'), default='winner',
                        help="learn the winner's moves (default) or every move, as the post")
    parser.add_argument('--random-games', type=int, default=20,
                        help='games against the random mover')
    parser.add_argument('--engine-games', type=int, default=6,
                        help='games against Fairy-Stockfish (0 to skip)')
    parser.add_argument('--engine', default=None, help='Fairy-Stockfish binary')
    parser.add_argument('--engine-depth', type=int, default=1)
    parser.add_argument('--engine-skill', type=int, default=-20,
                        help='UCI Skill Level, -20 (weakest) to 20')
    parser.add_argument('--max-plies', type=int, default=200,
                        help='evaluation games are drawn after this many plies')
    parser.add_argument('--temperature', type=float, default=0.0,
                        help='0 plays the best move; above 0 samples among --topk')
    parser.add_argument('--topk', type=int, default=None)
    parser.add_argument('--probe-positions', type=int, default=100,
                        help='held-out positions per probe after each stage (default 100)')
    parser.add_argument('--curve-games', type=int, default=4,
                        help='games against the random mover after each stage (default 4)')
    parser.add_argument('--precision', choices=('float32', 'mixed_bfloat16'), default=None,
                        help='Keras dtype policy while training (default float32)')
    parser.add_argument('--gpu', action='store_true',
                        help='the post\'s scale on a GPU: mixed_bfloat16, batch 64, 20000 steps')
    add_common_arguments(parser, epochs=None, batch_size=None)
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    real = bool(args.releases)
    if args.gpu and not tf.config.list_physical_devices('GPU'):
        raise BlogError('--gpu: TensorFlow sees no GPU here (tf.config.list_physical_devices('
                        '"GPU") is empty); leave out --gpu to train on the CPU')
    args.data = args.data or DEFAULT_GAMES
    args.precision = args.precision or ('mixed_bfloat16' if args.gpu else 'float32')
    args.steps = args.steps or (20000 if (real or args.gpu) else 400)
    args.batch_size = args.batch_size or (64 if args.gpu else 16 if real else 32)
    args.maxlen = args.maxlen or 512
    args.lr = args.lr or (2e-5 if real else 1e-3)


# -------------------------------------------------------------------- data

def load_games(args, folder):
    games, problems = read_games(args.data)
    accept(rejected_lines(args.data, games, problems), folder, 'games', args.max_rejected)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(games))
    held_out = max(1, len(games) // 20)
    train = [games[i] for i in order[held_out:]]
    valid = [games[i] for i in order[:held_out]]
    print('%d games (%d skipped): %d to train, %d held out; %.0f plies a game on average'
          % (len(games), len(problems), len(train), len(valid),
             np.mean([len(g.moves) for g in games])))
    return train, valid, len(problems)


# ----------------------------------------------------------------- training

def learning_point(args, transformer, tokenizer, positions, steps):
    """What the model can do now: the probes, and a few games against the
    random mover (score: win 1, draw 1/2), with 95% intervals."""
    player = MovePlayer(transformer, tokenizer, seed=args.seed)
    point = {'step': steps}
    for probe, result in run_probes(player, positions).items():
        point.update({probe: result['share'], probe + '_low': result['low'],
                      probe + '_high': result['high']})
    if args.curve_games:
        games = play_match(player, RandomPlayer(args.seed + steps), args.curve_games,
                           max_plies=args.max_plies)
        score = interval(games['scores']) if args.curve_games > 1 else None
        point.update(score_vs_random=float(np.mean(games['scores'])),
                     score_low=score.low if score else float('nan'),
                     score_high=score.high if score else float('nan'))
    print('  step %d: legal top-1 %.2f, takes hanging %.2f, mates in one %.2f%s' % (
        steps, point['legal'], point['hanging'], point['mate'],
        ', score vs random %.2f' % point['score_vs_random'] if args.curve_games else ''))
    return point


@contextlib.contextmanager
def dtype_policy(name):
    """Keras' dtype policy is global: set it for a block, then restore it."""
    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def new_model(args):
    if args.releases:
        release = args.releases[0]
        return build_move_model(release['config'], release['checkpoint'], release['dict'])
    return build_move_model()


def train(args, train_games, valid_games, strategy, positions):
    """Trains in stages. Returns a float32 model (the cached player reads
    its variables directly, so it plays a float32 copy of a mixed-precision
    model), its tokenizer, the loss history and the learning curve."""
    with strategy.scope(), dtype_policy(args.precision):  # variables on every replica
        transformer, tokenizer = new_model(args)
        trainer = build_trainer(transformer, Adam(args.lr))
    player_model = transformer
    if args.precision != 'float32':
        with dtype_policy('float32'):
            player_model, _ = new_model(args)

    def measure(steps):
        if player_model is not transformer:
            player_model.model.set_weights(transformer.model.get_weights())
        return learning_point(args, player_model, tokenizer, positions, steps)

    batches = GameBatches(train_games, tokenizer, args.batch_size, maxlen=args.maxlen,
                          learn_from=args.learn_from)
    valid = GameBatches(valid_games, tokenizer, args.batch_size, maxlen=args.maxlen,
                        learn_from=args.learn_from)
    history, curve = [], [measure(0)]
    start = time.time()
    for stage, fraction in enumerate(STAGES, 1):
        batches.fraction = valid.fraction = fraction
        print('stage: %s' % ('whole games' if fraction == 1 else
                             'the first 1/%d of every game' % round(1 / fraction)))
        fit = trainer.fit(batches.forfit(), steps_per_epoch=args.steps // len(STAGES),
                          epochs=1, verbose=2)
        valid_loss = trainer.evaluate(valid.forfit(random=False), steps=len(valid), verbose=0)
        history.append({'fraction': fraction, 'train_loss': fit.history['loss'][-1],
                        'valid_loss': float(valid_loss), 'seconds': time.time() - start})
        print('  held-out loss %.3f' % valid_loss)
        curve.append(dict(measure(stage * (args.steps // len(STAGES))),
                          valid_loss=float(valid_loss)))
    return player_model, tokenizer, history, curve


# --------------------------------------------------------------- evaluation

def evaluate(args, transformer, tokenizer):
    player = MovePlayer(transformer, tokenizer, temperature=args.temperature, topk=args.topk,
                        seed=args.seed)
    results = {}
    start = time.time()
    results['random'] = play_match(player, RandomPlayer(args.seed), args.random_games,
                                   max_plies=args.max_plies, desc='vs random mover')
    results['random']['seconds'] = time.time() - start
    if args.engine_games:
        try:
            engine = Engine(args.engine, depth=args.engine_depth, skill=args.engine_skill)
        except EngineNotFoundError as error:
            print('skipping the engine games: %s' % error)
        else:
            with engine:
                start = time.time()
                results['engine'] = play_match(player, engine, args.engine_games,
                                               max_plies=args.max_plies,
                                               desc='vs Fairy-Stockfish')
                results['engine']['seconds'] = time.time() - start
    results['legal_top1_rate'] = player.legal_top1_rate
    results['positions'] = player.predictions
    return results


def plot(history, curve, path):
    fig, axes = new_figure(2, (12, 4.5))
    ax = axes[0]
    x = np.arange(1, len(history) + 1)
    ax.plot(x, [h['train_loss'] for h in history], 'o-', label='training loss')
    ax.plot(x, [h['valid_loss'] for h in history], 's-', label='held-out loss')
    ax.set_xticks(x)
    ax.set_xticklabels(['first 1/8', 'first 1/4', 'first 1/2', 'whole game'][:len(history)])
    ax.set_xlabel('training stage (share of each game seen)')
    ax.set_ylabel('cross-entropy per character (nats)')
    steps = [p['step'] for p in curve]
    names = [('legal', 'legal unconstrained top-1'), ('hanging', 'takes a hanging piece'),
             ('mate', 'mates in one'), ('score', 'score vs random mover')]
    for key, label in names:
        value = 'score_vs_random' if key == 'score' else key
        if value in curve[0]:
            mean = np.array([p[value] for p in curve])
            low = np.array([p[key + '_low'] for p in curve])
            high = np.array([p[key + '_high'] for p in curve])
            axes[1].errorbar(steps, mean, yerr=[mean - low, high - mean], marker='o',
                             capsize=3, label=label)
    axes[1].set(xlabel='training steps', ylabel='share (95% interval)', ylim=(-0.05, 1.05),
                title='What the model has learned')
    save_figure(fig, path, axes)


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy)  # first: multi-worker must precede other TF work
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    train_games, valid_games, skipped = load_games(args, folder)
    positions = find_positions(valid_games, limit=args.probe_positions, seed=args.seed)
    print('probe positions from held-out games: %s' % ', '.join(
        '%d %s' % (len(v), k) for k, v in positions.items()))
    transformer, tokenizer, history, curve = train(args, train_games, valid_games, strategy,
                                                   positions)
    paths = save_move_model(transformer, os.path.join(folder, 'model'))
    results = evaluate(args, transformer, tokenizer)
    figure = os.path.join(folder, 'learning.png')
    plot(history, curve, figure)

    print('\n%-22s %5s %5s %5s %9s %7s' % ('opponent', 'win', 'draw', 'loss', 'mean plies',
                                          'seconds'))
    for name, key in (('random legal mover', 'random'), ('Fairy-Stockfish (%d, %d)' % (
            args.engine_skill, args.engine_depth), 'engine')):
        if key in results:
            r = results[key]
            print('%-22s %5d %5d %5d %9.0f %7.0f' % (name, r['win'], r['draw'], r['loss'],
                                                     r['plies'], r['seconds']))
    print('legal unconstrained top-1 choices: %.1f%% of %d positions'
          % (100 * results['legal_top1_rate'], results['positions']))
    print('model saved in %s; play it: bert4keras-blog xiangqi play --checkpoint %s'
          % (os.path.dirname(paths['checkpoint']), os.path.dirname(paths['checkpoint'])))
    win_rate = results['random']['win'] / max(results['random']['games'], 1)
    scores = results['random']['scores']  # per game: win 1, draw 1/2, loss 0
    # Wilson's interval over the games, a draw counting half a win (Student's t
    # would shrink to nothing when every game ends the same way).
    score = proportion(float(np.sum(scores)), len(scores)) if scores else None
    metrics = {'headline': 'score_vs_random', 'score_vs_random': float(np.mean(scores)),
               'interval': [score.low, score.high] if score else None,
               'win_rate_vs_random': win_rate,
               'legal_top1_rate': results['legal_top1_rate'], 'curve': curve,
               'precision': args.precision,
               'results': results, 'history': history, 'skipped_games': skipped,
               'train_games': len(train_games), 'figure': figure, 'model': paths}
    run.save(metrics)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
