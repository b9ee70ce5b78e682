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
# Embedded default: 4,500 games Fairy-Stockfish played (3,000 against itself
# with random mistakes, 1,500 against a random mover), shipped with the
# package (`bert4keras-blog xiangqi generate` remakes them), and a small model
# trained from scratch. Real setting, as the post:
#
#   python examples/post7_gpt_xiangqi.py
#   python examples/post7_gpt_xiangqi.py --data games.txt \
#       --pretrained chinese_L-12_H-768_A-12/ --steps 20000
#   bert4keras-blog xiangqi play              # then play it in the terminal
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.optimizers import Adam
from bert4keras_blog.datafiles import accept
from bert4keras_blog.runs import Run, add_data_arguments, add_release_arguments, parse_example_args
from bert4keras_blog.training import (
    add_common_arguments, make_strategy, new_figure, save_figure, set_seed)
from bert4keras_blog.xiangqi import DEFAULT_GAMES, RandomPlayer, play_match, read_games
from bert4keras_blog.xiangqi.records import rejected_lines
from bert4keras_blog.xiangqi.engine import Engine, EngineNotFoundError
from bert4keras_blog.xiangqi.lm import (
    GameBatches, build_move_model, build_trainer, save_move_model)
from bert4keras_blog.xiangqi.player import MovePlayer
from bert4keras_blog.errors import run_main

EXAMPLE = 'post7_gpt_xiangqi'
STAGES = (1 / 8, 1 / 4, 1 / 2, 1)


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
    add_common_arguments(parser, epochs=None, batch_size=None)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    real = bool(args.releases)
    args.data = args.data or DEFAULT_GAMES
    args.steps = args.steps or (20000 if real else 400)
    args.batch_size = args.batch_size or (16 if real else 32)
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

def train(args, train_games, valid_games, strategy):
    with strategy.scope():  # model and optimizer variables live on every replica
        if args.releases:
            release = args.releases[0]
            transformer, tokenizer = build_move_model(release['config'], release['checkpoint'],
                                                      release['dict'])
        else:
            transformer, tokenizer = build_move_model()
        trainer = build_trainer(transformer, Adam(args.lr))
    batches = GameBatches(train_games, tokenizer, args.batch_size, maxlen=args.maxlen,
                          learn_from=args.learn_from)
    valid = GameBatches(valid_games, tokenizer, args.batch_size, maxlen=args.maxlen,
                        learn_from=args.learn_from)
    history = []
    start = time.time()
    for fraction in STAGES:
        batches.fraction = valid.fraction = fraction
        print('stage: %s' % ('whole games' if fraction == 1 else
                             'the first 1/%d of every game' % round(1 / fraction)))
        fit = trainer.fit(batches.forfit(), steps_per_epoch=args.steps // len(STAGES),
                          epochs=1, verbose=2)
        valid_loss = trainer.evaluate(valid.forfit(random=False), steps=len(valid), verbose=0)
        history.append({'fraction': fraction, 'train_loss': fit.history['loss'][-1],
                        'valid_loss': float(valid_loss), 'seconds': time.time() - start})
        print('  held-out loss %.3f' % valid_loss)
    return transformer, tokenizer, history


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


def plot(history, path):
    fig, ax = new_figure()
    x = np.arange(1, len(history) + 1)
    ax.plot(x, [h['train_loss'] for h in history], 'o-', label='training loss')
    ax.plot(x, [h['valid_loss'] for h in history], 's-', label='held-out loss')
    ax.set_xticks(x)
    ax.set_xticklabels(['first 1/8', 'first 1/4', 'first 1/2', 'whole game'][:len(history)])
    ax.set_xlabel('training stage (share of each game seen)')
    ax.set_ylabel('cross-entropy per character (nats)')
    save_figure(fig, path, ax)


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy)  # first: multi-worker must precede other TF work
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder = run.folder
    train_games, valid_games, skipped = load_games(args, folder)
    transformer, tokenizer, history = train(args, train_games, valid_games, strategy)
    paths = save_move_model(transformer, os.path.join(folder, 'model'))
    results = evaluate(args, transformer, tokenizer)
    figure = os.path.join(folder, 'loss_by_stage.png')
    plot(history, figure)

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
    metrics = {'headline': 'win_rate_vs_random', 'win_rate_vs_random': win_rate,
               'results': results, 'history': history, 'skipped_games': skipped,
               'train_games': len(train_games), 'figure': figure, 'model': paths}
    run.save(metrics)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
