"""The ``bert4keras-blog`` command.

Subcommands:
    info                         versions of the stack and the devices TF sees
    tiny KIND OUT_DIR [--seed]   write a tiny checkpoint in KIND's release format
    check DIR | check [KIND] --config --checkpoint [--dict | --spm]
                                 find a release's files (DIR as it unpacks), build
                                 the bert4keras model, load the checkpoint, run
                                 one Chinese sentence through it
    releases                     the real releases: folders and file names
    math TEXT [--run DIR]        solve a word problem with a solver trained by
                                 examples/post3_math_word_problems.py
    xiangqi play [--checkpoint DIR] [--side red|black]
                                 play Chinese chess against the model trained by
                                 examples/post7_gpt_xiangqi.py
    xiangqi generate OUT [--games N] [--seed S] [--workers W]
                                 games Fairy-Stockfish plays against itself
    xiangqi check FILE           check a game record file move by move
    rerun RUN_DIR [--run-dir NEW]
                                 run an example again with the settings, release
                                 and data its metrics.json records
    run SCRIPT [ARGS...]         run a bert4keras script written for Keras 2.3 as it
                                 is (graph mode when it uses TF1-graph idioms)
    serve [--runs runs/] [--host 127.0.0.1] [--port 8000] [--warm-up]
          [--max-connections 200] [--idle-timeout 10]
                                 a local web page over the run folders: play
                                 xiangqi, solve word problems, generate titles,
                                 see each example's results
    convert hf2tf SRC_DIR OUT_DIR --kind KIND
                                 a Hugging Face model folder -> a Google-format
                                 checkpoint, config and vocabulary

Every failure goes through ``errors.run_main``: a problem with the input
(``errors.BlogError``, an unreadable or unwritable file) is one line on stderr
naming the file, line or field, with exit status 2; Ctrl-C exits 130 and
SIGTERM 143 after cleanup; anything else is one line and the path of a file
holding the full traceback (exit status 1). Never a traceback on screen.

Public API:
    main(argv=None) -> int
"""
import argparse
import math
import os
import runpy
import sys
import threading
import time

import numpy as np

from bert4keras_blog.errors import BlogError, run_main
from bert4keras_blog.checkpoints import (
    KINDS, RELEASES, build_model, find_release, read_config, release_from_files, write_tiny)
from bert4keras.tokenizers import SpTokenizer, Tokenizer
from bert4keras_blog.compat import stack_versions, tf, use_graph_mode_if_wanted
from bert4keras_blog.checkpoints.hf2tf import KINDS as HF_KINDS
from bert4keras_blog.checkpoints.hf2tf import convert as convert_hf_folder
from bert4keras_blog.mathword.answers import to_text
from bert4keras_blog.mathword.solver import load_solver, solve
from bert4keras_blog.experiment.flags import share
from bert4keras_blog.experiment.runs import check_writable_file, rerun
from bert4keras_blog.xiangqi.engine import generate_games
from bert4keras_blog.xiangqi.lm import load_move_model
from bert4keras_blog.xiangqi.player import MovePlayer
from bert4keras_blog.xiangqi.records import read_games, write_games
from bert4keras_blog.xiangqi.rules import MAX_PLIES, check_fen
from bert4keras_blog.xiangqi.terminal import TerminalGame

__all__ = ['main']

SAMPLE = '科学空间：苏剑林的博客，记录了他对自然语言处理的思考。'


def cmd_info(args):
    for name, version in stack_versions().items():
        print('%-11s %s' % (name, version))
    devices = [d.device_type + ':' + d.name.split(':')[-1]
               for d in tf.config.list_physical_devices()]
    print('%-11s %s' % ('devices', ', '.join(devices)))
    return 0


def cmd_tiny(args):
    if os.path.isdir(args.out_dir) and os.listdir(args.out_dir) and not args.force:
        raise BlogError('%s already holds files (%s); a tiny checkpoint would overwrite the '
                        'config, vocabulary and checkpoint there. Choose a new folder, or pass '
                        '--force' % (args.out_dir, ', '.join(sorted(os.listdir(args.out_dir))[:4])))
    paths = write_tiny(args.kind, args.out_dir, seed=args.seed)
    for key, path in sorted(paths.items()):
        print('%-17s %s' % (key, path))
    return 0


def check_checkpoint(kind, paths, text=SAMPLE):
    """Builds ``kind`` from ``paths``, runs ``text`` through it.

    Returns:
        dict with 'parameters', 'output_shape' and 'seconds'.
    """
    start = time.time()
    model = build_model(kind, paths)
    if kind.startswith('mt5') or kind.startswith('t5'):
        tokenizer = SpTokenizer(paths['spm'], token_start=None, token_end='</s>')
        ids = tokenizer.encode(text)[0]
        inputs = [[ids], [[0] + ids[:-1]]]
    else:
        tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
        token_ids, segment_ids = tokenizer.encode(text)
        inputs = [[token_ids], [segment_ids]]
    output = model.predict([np.array(x) for x in inputs], verbose=0)
    if not np.all(np.isfinite(output)):
        raise BlogError('%s checkpoint %s produced non-finite outputs' % (kind, paths['checkpoint']))
    return {'parameters': int(model.count_params()), 'output_shape': tuple(output.shape),
            'seconds': time.time() - start}


def cmd_check(args):
    kind, folder = args.target, None
    if kind is not None and kind not in KINDS + ('albert_unshared',):
        kind, folder = None, args.target
    files = {k: getattr(args, k) for k in ('config', 'checkpoint', 'dict', 'spm')}
    if folder and any(files.values()):
        raise BlogError('give a release folder or --config/--checkpoint/--dict, not both')
    if folder is None and not any(files.values()):
        raise BlogError('give a release folder, or --config, --checkpoint and --dict (--spm)')
    paths = find_release(folder) if folder else release_from_files(**files)
    read_config(paths['config'])  # a broken config is reported with its line
    kind = kind or paths['kind']
    result = check_checkpoint(kind, paths)
    print('%s: %s loaded, %d parameters, output %s, %.1f s' % (
        kind, paths['checkpoint'], result['parameters'], result['output_shape'],
        result['seconds']))
    return 0


def cmd_releases(args):
    for release in RELEASES.values():
        files = [release.config, release.checkpoint + '.{index,data-*}', release.vocab]
        if release.generator_config:
            files.insert(1, release.generator_config)
        print('%-8s %s\n         %s/: %s\n         from %s' % (
            release.kind, release.title, release.folder, ', '.join(files), release.source))
    return 0


def cmd_rerun(args):
    return rerun(args.run_dir_to_repeat, args.run_dir)


def cmd_math(args):
    solver = load_solver(args.run, topk=args.topk)
    for text in args.text:
        expression, value = solve(text, solver)
        answer = to_text(value) if value is not None else 'no value (the expression is invalid)'
        print('%s\n  x=%s\n  answer: %s' % (text, expression, answer))
    return 0


def cmd_xiangqi_play(args):
    if args.fen:
        check_fen(args.fen)  # before the model loads
    save = args.save or os.path.join(args.checkpoint, os.pardir, 'games_played.txt')
    check_writable_file(save, '--save')  # a finished game must have somewhere to go
    transformer, tokenizer = load_move_model(args.checkpoint)
    player = MovePlayer(transformer, tokenizer, temperature=args.temperature, topk=args.topk,
                        seed=args.seed)
    TerminalGame(player, human=args.side, fen=args.fen, save_path=os.path.normpath(save),
                 color=sys.stdout.isatty() and not args.no_color, notation=args.notation,
                 max_plies=args.max_plies).run()
    return 0


def cmd_xiangqi_generate(args):
    check_writable_file(args.out, 'OUT')
    if os.path.exists(args.out) and not (args.append or args.force):
        raise BlogError('%s exists; pass --append to add the new games to it, or --force to '
                        'replace it' % args.out)
    games = generate_games(args.games, seed=args.seed, workers=args.workers, engine=args.engine,
                           max_plies=args.max_plies, weak_noise=args.weak_noise,
                           depths=args.depths)
    write_games(args.out, games, append=args.append)
    results = [g.result for g in games]
    print('%d games -> %s (red won %d, black won %d, drawn %d)' % (
        len(games), args.out, results.count('1-0'), results.count('0-1'),
        results.count('1/2-1/2')))
    return 0


def cmd_xiangqi_check(args):
    games, problems = read_games(args.file)
    for problem in problems:
        print(problem)
    print('%s: %d good games, %d skipped' % (args.file, len(games), len(problems)))
    return 0 if not problems else 1


def cmd_convert(args):
    start = time.time()
    paths = convert_hf_folder(args.src_dir, args.out_dir, args.kind)
    for key, path in sorted(paths.items()):
        print('%-11s %s' % (key, path))
    print('converted in %.1f s; check it: bert4keras-blog check %s --config %s --checkpoint %s %s'
          % (time.time() - start, args.kind, paths['config'], paths['checkpoint'],
             '--spm ' + paths['spm'] if 'spm' in paths else '--dict ' + paths.get('dict', '')))
    return 0


def cmd_serve(args):
    from bert4keras_blog.app.web import serve  # the web page's modules load only when served
    if not os.path.isdir(args.runs):
        raise BlogError('--runs %s: no such folder (the examples write their runs into runs/)'
                        % args.runs)
    serve(args.runs, args.host, args.port, warm_up=args.warm_up,
          max_connections=args.max_connections, idle_seconds=args.idle_timeout)
    return 0


def cmd_run(args):
    """Runs a user's script as ``python SCRIPT ARGS`` would, on our backend."""
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        print('bert4keras-blog run: error: no such script: %s' % args.script, file=sys.stderr)
        return 2
    use_graph_mode_if_wanted(script)
    sys.argv = [script] + args.args
    sys.path.insert(0, os.path.dirname(script))
    runpy.run_path(script, run_name='__main__')
    return 0


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('%s: must be 1 or more' % text)
    return value


def plies(text):
    value = positive_int(text)
    if value > MAX_PLIES:
        raise argparse.ArgumentTypeError('%s: at most %d' % (text, MAX_PLIES))
    return value


def depth_list(text):
    try:
        depths = [int(d) for d in text.split(',')]
    except ValueError:
        depths = []
    if not depths or not all(1 <= d <= 30 for d in depths):
        raise argparse.ArgumentTypeError('%s: search depths 1-30, separated by commas' % text)
    return depths


def non_negative_float(text):
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError('%s: must be a finite number, 0 or more' % text)
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog='bert4keras-blog', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('info', help='versions and devices').set_defaults(handler=cmd_info)

    tiny = sub.add_parser('tiny', help='write a tiny checkpoint in a release format')
    tiny.add_argument('kind', choices=KINDS)
    tiny.add_argument('out_dir')
    tiny.add_argument('--seed', type=int, default=0)
    tiny.add_argument('--force', action='store_true',
                      help='write into OUT_DIR even if it already holds files')
    tiny.set_defaults(handler=cmd_tiny)

    check = sub.add_parser('check', help='load a checkpoint and run one sentence')
    check.add_argument('target', nargs='?', metavar='DIR | KIND',
                       help='a release folder, or the kind (%s; default: read off the '
                            'checkpoint) of the files given below' % ', '.join(KINDS))
    check.add_argument('--config')
    check.add_argument('--checkpoint')
    check.add_argument('--dict', help='vocab.txt (BERT-style kinds)')
    check.add_argument('--spm', help='sentencepiece model (mT5)')
    check.set_defaults(handler=cmd_check)
    sub.add_parser('releases', help='the real releases, their folders and file names'
                   ).set_defaults(handler=cmd_releases)
    rerun = sub.add_parser('rerun', help="run an example again from its run folder's record")
    rerun.add_argument('run_dir_to_repeat', metavar='RUN_DIR', help='holds metrics.json')
    rerun.add_argument('--run-dir', default=None, help='write the new run here (default: '
                                                       'the recorded one, overwritten)')
    rerun.set_defaults(handler=cmd_rerun)

    math = sub.add_parser('math', help='solve maths word problems with a trained solver')
    math.add_argument('text', nargs='+', help='problem text(s)')
    math.add_argument('--run', default='runs/post3_math_word_problems',
                      help='folder the post-3 example trained into (default %(default)s)')
    math.add_argument('--topk', type=positive_int, default=3, help='beam size')
    math.set_defaults(handler=cmd_math)

    serve = sub.add_parser('serve', help='a local web page for the trained models')
    serve.add_argument('--runs', default='runs', help='the examples\' run folders '
                                                      '(default %(default)s)')
    serve.add_argument('--host', default='127.0.0.1',
                       help='address to listen on (default %(default)s: this machine only)')
    serve.add_argument('--port', type=int, default=8000, help='default %(default)s')
    serve.add_argument('--warm-up', action='store_true',
                       help='load the trained models before serving, not on first use')
    serve.add_argument('--max-connections', type=positive_int, default=200,
                       help='open connections at most; past it the longest-silent idle one '
                            'is closed, or the newcomer gets a 503 (default %(default)s)')
    serve.add_argument('--idle-timeout', type=positive_int, default=10, metavar='SECONDS',
                       help='close a connection silent this long with no request in progress '
                            '(default %(default)s)')
    serve.set_defaults(handler=cmd_serve)

    run = sub.add_parser('run', help='run a bert4keras script unchanged (Keras 2.3 idioms)')
    run.add_argument('script', help='a Python script written for bert4keras')
    run.add_argument('args', nargs=argparse.REMAINDER, help='its own arguments')
    run.set_defaults(handler=cmd_run)

    convert = sub.add_parser('convert', help='convert checkpoints between formats')
    formats = convert.add_subparsers(dest='action', required=True)
    hf2tf = formats.add_parser('hf2tf', help='Hugging Face folder -> Google TF checkpoint')
    hf2tf.add_argument('src_dir', help='config.json, *.safetensors or pytorch_model.bin, '
                                       'vocab.txt or spiece.model')
    hf2tf.add_argument('out_dir', help='created; must be new or empty')
    hf2tf.add_argument('--kind', required=True, choices=HF_KINDS)
    hf2tf.set_defaults(handler=cmd_convert)

    xiangqi = sub.add_parser('xiangqi', help='post 7: Chinese chess with the move model')
    games = xiangqi.add_subparsers(dest='action', required=True)
    play = games.add_parser('play', help='play against the model in the terminal')
    play.add_argument('--checkpoint', default='runs/post7_gpt_xiangqi/model',
                      help='folder with bert_config.json, bert_model.ckpt and vocab.txt '
                           '(default %(default)s)')
    play.add_argument('--side', choices=('red', 'black'), default='red', help='your side')
    play.add_argument('--temperature', type=non_negative_float, default=0.0,
                      help='0 plays the best move; above 0 samples (variety)')
    play.add_argument('--topk', type=positive_int, default=None, help='sample among the k best')
    play.add_argument('--seed', type=int, default=0)
    play.add_argument('--fen', default=None, help='start from this position')
    play.add_argument('--notation', choices=('iccs', 'fsf'), default='iccs',
                      help='read moves as ICCS ranks 0-9 first, or ranks 1-10 first')
    play.add_argument('--save', default=None,
                      help='record file the game is appended to (default: games_played.txt '
                           'beside the checkpoint folder)')
    play.add_argument('--max-plies', type=plies, default=300)
    play.add_argument('--no-color', action='store_true')
    play.set_defaults(handler=cmd_xiangqi_play)
    generate = games.add_parser('generate', help='games the engine plays against itself')
    generate.add_argument('out', help='record file to write (.gz compresses)')
    generate.add_argument('--games', type=positive_int, default=3000)
    generate.add_argument('--seed', type=int, default=0)
    generate.add_argument('--workers', type=positive_int, default=2, help='engine processes')
    generate.add_argument('--engine', default=None, help='Fairy-Stockfish binary')
    generate.add_argument('--max-plies', type=plies, default=300)
    generate.add_argument('--weak-noise', type=share, default=None,
                          help='one side plays a random move with this probability, the other '
                               'is the plain engine (default: both sides drawn noisy)')
    generate.add_argument('--depths', type=depth_list, default=[1, 2, 3],
                          help='search depths the engine sides draw from (default 1,2,3)')
    generate.add_argument('--append', action='store_true', help='add to OUT')
    generate.add_argument('--force', action='store_true', help='replace OUT if it exists')
    generate.set_defaults(handler=cmd_xiangqi_generate)
    check = games.add_parser('check', help='check a record file move by move')
    check.add_argument('file')
    check.set_defaults(handler=cmd_xiangqi_check)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.handler is cmd_run:  # the script's own errors are its to report
        return cmd_run(args)
    command = ' '.join(filter(None, [args.command, getattr(args, 'action', None)]))
    if args.handler is not cmd_serve:
        return run_main(args.handler, args, 'bert4keras-blog ' + command)
    try:
        status = run_main(args.handler, args, 'bert4keras-blog ' + command)
    except SystemExit as stop:  # SIGTERM
        status = stop.code
    if status in (130, 143) and threading.active_count() > 1:
        # A worker may still be inside a model call; TensorFlow aborts the
        # process (SIGABRT) if Python finalises under it, so leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


if __name__ == '__main__':
    sys.exit(main())
