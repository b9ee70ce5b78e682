"""What every example shares on its command line.

One way to point any example at a release: ``--pretrained DIR`` (a release
folder as it unpacks, found through ``checkpoints.find_release``; a Hugging
Face folder is converted once) or the explicit ``--config``,
``--checkpoint``, ``--dict`` / ``--spm``. The same five flags are on all
eight examples; partial or contradictory flags stop the example with a
message that says what is missing, never a silent fallback to the tiny
model. Examples that train from scratch (posts 2, 5, 8) say so if given one.

Public API:
    add_release_arguments(parser, kinds, many=False)
    add_data_arguments(parser, help)
    add_quick_argument(parser, settings): ``--quick``, the setting ``make
        demo`` runs (a headline worth reading in a minute or two on 2 CPU
        cores); ``settings`` are defaults, so flags given with it still win.
    add_common_arguments(parser, epochs, batch_size, seed=0): --seed,
        --epochs, --batch-size, --run-dir, --strategy.
    parse_example_args(parser, argv, resolve=None) -> argparse.Namespace:
        ``.releases`` (list of path dicts; empty = the tiny default) and
        ``.command`` (the resolved argv), filled.
    resolved_argv(parser, args) -> list: every option with its value.
    share(text): argparse type, a number from 0 to 1.
    RELEASE_FLAGS: the flags that point an example at a real release.
"""
import argparse
import os

from bert4keras_blog.checkpoints import RELEASES, find_release, release_from_files
from bert4keras_blog.compat import internals
from bert4keras_blog.datafiles import MAX_REJECTED, check_text_head
from bert4keras_blog.errors import BlogError
from bert4keras_blog.experiment.distribute import STRATEGIES
from bert4keras_blog.experiment.runs import check_run_dir

__all__ = ['add_release_arguments', 'add_data_arguments', 'add_quick_argument',
           'add_common_arguments', 'parse_example_args', 'resolved_argv',
           'share', 'RELEASE_FLAGS']

RELEASE_FLAGS = ('pretrained', 'config', 'checkpoint', 'dict', 'spm')


def add_release_arguments(parser, kinds, many=False):
    """The five release flags, identical on every example.

    Args:
        kinds: the release kinds the example can use ('bert', 'roberta',
            'albert', 'electra', 'mt5.1.1'); empty for examples that train
            from scratch.
        many: the example takes several releases at once (post 1).
    """
    if kinds:
        takes = ', '.join(RELEASES[k].title for k in kinds)
        text = ('takes %s%s. Give a release folder, or the files; with neither, the tiny '
                'checkpoint in the same format.' % (takes, ' (one folder each)' if many else ''))
    else:
        text = 'not used: this example trains its models from scratch.'
    group = parser.add_argument_group('pretrained release', text)
    group.add_argument('--pretrained', nargs='+', metavar='DIR',
                       help='release folder(s) as they unpack (e.g. '
                            'chinese_roberta_wwm_ext_L-12_H-768_A-12/); a Hugging Face folder '
                            'is converted once')
    group.add_argument('--config', metavar='JSON', help='the release config (bert_config.json)')
    group.add_argument('--checkpoint', metavar='PREFIX',
                       help='checkpoint prefix (bert_model.ckpt, model.ckpt-1000000)')
    group.add_argument('--dict', metavar='TXT', help='vocab.txt (BERT, RoBERTa, ALBERT, ELECTRA)')
    group.add_argument('--spm', metavar='MODEL', help='sentencepiece.model (mT5)')
    parser.set_defaults(release_kinds=tuple(kinds), many_releases=many)
    return group


def add_data_arguments(parser, help, with_release=False, files=None):
    """``--data`` and ``--max-rejected``; ``with_release``: a real release
    needs real data (the embedded data is sized for the tiny model);
    ``files``: the names a ``--data`` folder must hold (None: it is a file).
    Both are checked before the example starts any work."""
    parser.add_argument('--data', help=help)
    parser.set_defaults(data_with_release=help if with_release else None, data_files=files)
    parser.add_argument('--max-rejected', type=share, default=MAX_REJECTED,
                        help='stop when more than this share of a file\'s lines is malformed '
                             '(default %(default)s); every rejected line is listed in '
                             '<run dir>/<split>.rejected.txt')


def add_quick_argument(parser, settings):
    """``--quick``: ``settings`` (argparse dests -> values) become the
    defaults. The same flag on all eight examples; ``make demo`` passes it."""
    shown = ' '.join('--%s %s' % (dest.replace('_', '-'), ' '.join(map(str, value))
                                  if isinstance(value, (list, tuple)) else value)
                     for dest, value in settings.items())
    parser.add_argument('--quick', action='store_true',
                        help="make demo's setting, a minute or two on 2 CPU cores: " + shown)
    parser.set_defaults(quick_settings=dict(settings))


def _releases(args):
    files = {k: getattr(args, k) for k in RELEASE_FLAGS[1:]}
    given = ['--' + k for k in RELEASE_FLAGS if getattr(args, k)]
    if not given:
        return []
    if not args.release_kinds:
        raise BlogError('%s: this example trains its models from scratch and reads no '
                        'checkpoint' % ' '.join(given))
    if args.pretrained and len(given) > 1:
        raise BlogError('give --pretrained DIR or the files (%s), not both'
                        % ' '.join(g for g in given if g != '--pretrained'))
    if args.pretrained:
        if len(args.pretrained) > 1 and not args.many_releases:
            raise BlogError('--pretrained takes one folder here, got %d' % len(args.pretrained))
        found = [find_release(folder, args.release_kinds) for folder in args.pretrained]
        kinds = ['bert' if r['kind'] == 'roberta' else r['kind'] for r in found]
        if len(set(kinds)) < len(kinds):
            raise BlogError('--pretrained got two %s-format releases; give one of each kind'
                            % max(kinds, key=kinds.count).upper())
        return found
    return [release_from_files(kinds=args.release_kinds, **files)]


def share(text):
    """An argparse type: a number from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError('%s: a share from 0 to 1' % text)
    return value


def _check_data(args):
    """``--data`` exists, is readable and starts as UTF-8 text."""
    files = getattr(args, 'data_files', None)
    if files:
        if not os.path.isdir(args.data):
            raise BlogError('--data %s: no such folder (it holds %s)' % (args.data,
                                                                         ', '.join(files)))
        paths = [os.path.join(args.data, name) for name in files]
    else:
        paths = [args.data]
    for path in paths:
        if not os.path.isfile(path):
            raise BlogError('--data: %s: no such file' % path)
        check_text_head(path)


def add_common_arguments(parser, epochs, batch_size, seed=0):
    """Adds --seed, --epochs, --batch-size, --run-dir and --strategy."""
    parser.add_argument('--seed', type=int, default=seed, help='random seed (default %(default)s)')
    parser.add_argument('--epochs', type=int, default=epochs, help='default %(default)s')
    parser.add_argument('--batch-size', type=int, default=batch_size,
                        help='global batch size, split over the replicas (default %(default)s)')
    parser.add_argument('--run-dir', default=None, help='outputs folder (default runs/<example>)')
    parser.add_argument('--strategy', choices=STRATEGIES, default='default',
                        help='tf.distribute: default (one device), mirrored (all local GPUs), '
                             'multiworker (machines listed in TF_CONFIG)')
    return parser


def parse_example_args(parser, argv, resolve=None):
    """Parses, resolves the release flags and the example's own defaults
    (``resolve(args)``, which may raise BlogError), checks ``--data`` and
    ``--run-dir``, and records the full command line in ``args.command``.
    Problems exit as ``parser.error``, before any work."""
    args = parser.parse_args(argv)
    if getattr(args, 'quick', False):  # the quick values as defaults: explicit flags win
        parser.set_defaults(**args.quick_settings)
        args = parser.parse_args(argv)
    try:
        args.releases = _releases(args) if hasattr(args, 'release_kinds') else []
        if args.releases and getattr(args, 'data_with_release', None) and not args.data:
            raise BlogError('a real release trains on real data: add --data (%s)'
                            % args.data_with_release)
        if getattr(args, 'data', None):
            _check_data(args)
        if getattr(args, 'run_dir', None):
            check_run_dir(args.run_dir)
        if resolve is not None:
            resolve(args)
    except BlogError as error:
        parser.error(str(error))
    args.command = resolved_argv(parser, args)
    return args


def resolved_argv(parser, args):
    """Every option with its value, so the command alone repeats the run."""
    argv = []
    for action, kind in internals.parser_actions(parser):
        flags = [s for s in action.option_strings if s.startswith('--')]
        if not flags or kind == 'help':
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False:
            continue
        if kind == 'flag':
            argv.append(flags[0])
        elif isinstance(value, (list, tuple)):
            argv += [flags[0]] + [str(v) for v in value]
        else:
            argv += [flags[0], str(value)]
    return argv
