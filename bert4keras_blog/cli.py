"""The ``bert4keras-blog`` command.

Subcommands:
    info                         versions of the stack and the devices TF sees
    tiny KIND OUT_DIR [--seed]   write a tiny checkpoint in KIND's release format
    check KIND --config --checkpoint [--dict | --spm]
                                 build the bert4keras model, load the checkpoint,
                                 run one Chinese sentence through it
    math TEXT [--run DIR]        solve a word problem with a solver trained by
                                 examples/post3_math_word_problems.py

Errors we raise on purpose (``errors.BlogError``) and unreadable files become
one line on stderr and exit status 2, never a traceback.

Public API:
    main(argv=None) -> int
"""
import argparse
import sys
import time

from bert4keras_blog.errors import BlogError
from bert4keras_blog.checkpoints import read_config

__all__ = ['main']

SAMPLE = '科学空间：苏剑林的博客，记录了他对自然语言处理的思考。'


def cmd_info(args):
    from bert4keras_blog.backend import stack_versions, tf
    for name, version in stack_versions().items():
        print('%-11s %s' % (name, version))
    devices = [d.device_type + ':' + d.name.split(':')[-1]
               for d in tf.config.list_physical_devices()]
    print('%-11s %s' % ('devices', ', '.join(devices)))
    return 0


def cmd_tiny(args):
    from bert4keras_blog.checkpoints import write_tiny
    paths = write_tiny(args.kind, args.out_dir, seed=args.seed)
    for key, path in sorted(paths.items()):
        print('%-17s %s' % (key, path))
    return 0


def check_checkpoint(kind, paths, text=SAMPLE):
    """Builds ``kind`` from ``paths``, runs ``text`` through it.

    Returns:
        dict with 'parameters', 'output_shape' and 'seconds'.
    """
    from bert4keras_blog.checkpoints import build_model
    start = time.time()
    model = build_model(kind, paths)
    if kind.startswith('mt5') or kind.startswith('t5'):
        from bert4keras.tokenizers import SpTokenizer
        tokenizer = SpTokenizer(paths['spm'], token_start=None, token_end='</s>')
        ids = tokenizer.encode(text)[0]
        inputs = [[ids], [[0] + ids[:-1]]]
    else:
        from bert4keras.tokenizers import Tokenizer
        tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
        token_ids, segment_ids = tokenizer.encode(text)
        inputs = [[token_ids], [segment_ids]]
    import numpy as np
    output = model.predict([np.array(x) for x in inputs], verbose=0)
    if not np.all(np.isfinite(output)):
        raise BlogError('%s checkpoint %s produced non-finite outputs' % (kind, paths['checkpoint']))
    return {'parameters': int(model.count_params()), 'output_shape': tuple(output.shape),
            'seconds': time.time() - start}


def cmd_check(args):
    needed = 'spm' if args.kind.startswith('mt5') else 'dict'
    if getattr(args, needed) is None:
        raise BlogError('%s checkpoints need --%s' % (args.kind, needed))
    read_config(args.config)  # a broken config is reported with its line
    paths = {'config': args.config, 'checkpoint': args.checkpoint,
             'dict': args.dict, 'spm': args.spm}
    result = check_checkpoint(args.kind, paths)
    print('%s: %s loaded, %d parameters, output %s, %.1f s' % (
        args.kind, args.checkpoint, result['parameters'], result['output_shape'],
        result['seconds']))
    return 0


def cmd_math(args):
    from bert4keras_blog.mathword.expression import to_text
    from bert4keras_blog.mathword.solver import load_solver, solve
    solver = load_solver(args.run, topk=args.topk)
    for text in args.text:
        expression, value = solve(text, solver)
        answer = to_text(value) if value is not None else 'no value (the expression is invalid)'
        print('%s\n  x=%s\n  answer: %s' % (text, expression, answer))
    return 0


def build_parser():
    from bert4keras_blog.checkpoints import KINDS
    parser = argparse.ArgumentParser(prog='bert4keras-blog', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('info', help='versions and devices').set_defaults(handler=cmd_info)

    tiny = sub.add_parser('tiny', help='write a tiny checkpoint in a release format')
    tiny.add_argument('kind', choices=KINDS)
    tiny.add_argument('out_dir')
    tiny.add_argument('--seed', type=int, default=0)
    tiny.set_defaults(handler=cmd_tiny)

    check = sub.add_parser('check', help='load a checkpoint and run one sentence')
    check.add_argument('kind', choices=KINDS + ('albert_unshared',))
    check.add_argument('--config', required=True)
    check.add_argument('--checkpoint', required=True)
    check.add_argument('--dict', help='vocab.txt (BERT-style kinds)')
    check.add_argument('--spm', help='sentencepiece model (mT5)')
    check.set_defaults(handler=cmd_check)

    math = sub.add_parser('math', help='solve maths word problems with a trained solver')
    math.add_argument('text', nargs='+', help='problem text(s)')
    math.add_argument('--run', default='runs/post3_math_word_problems',
                      help='folder the post-3 example trained into (default %(default)s)')
    math.add_argument('--topk', type=int, default=3, help='beam size')
    math.set_defaults(handler=cmd_math)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (BlogError, OSError) as error:
        print('bert4keras-blog %s: error: %s' % (args.command, error), file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
