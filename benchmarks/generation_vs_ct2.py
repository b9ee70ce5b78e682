"""Generation speed and memory: our cached T5 decoder against CTranslate2
(OpenNMT's C++ engine, float32 and int8) on the same mT5-small weights.

Models (random weights; speed does not depend on the values): mT5-small
(8+8 layers, d_model 512) with a 32,000-token vocabulary (what trimming
leaves for Chinese, post 6) and with mT5's full 250,112 tokens. The weights
are written once as a bert4keras checkpoint, read by Hugging Face's own
TF-checkpoint reader, saved as a Hugging Face folder (with a word-level
tokenizer naming every id, since the benchmark needs no real vocabulary)
and converted by CTranslate2's own ``TransformersConverter``, once without
quantization and once with ``int8``.

Settings: a 64-token input (batch 1) or 16 inputs of 48-64 tokens, exactly
N new tokens (no end token: N = 32, 16 with ``--quick``), greedy, beam 3
and top-p 0.9 sampling; 2 threads on every side, each side in its own
process, warmed up first; each time is the median of 3 runs (1 with
``--quick``), the sides' runs of a row alternating. Memory ("MB") is the
peak resident memory during the row minus the process's runtime alone.
Sides: ours in float32 and with ``precision='bfloat16'``, CTranslate2
float32 and int8. Checks: greedy and beam ids at batch 1, ours against
CTranslate2 float32 (the same arithmetic, so they should agree), and the
token agreement of each low precision with its own float32 ("i8=f": int8
against CTranslate2 float32, "bf=us": bfloat16 against ours).

CTranslate2 is a benchmark dependency only: ``pip install -r
requirements/bench.txt``.

``--threads 1`` gives every side one thread: there, greedy at batch 1 is
level with CTranslate2 float32, which gains 1.4x from a second thread where
ours gains nothing; beam 3 at batch 1 is short on one thread too
(docs/decoding.md).

Usage: python benchmarks/generation_vs_ct2.py [--quick] [--vocab 32000 250112]
    [--batch 1 16] [--threads 2]
Last lines: min_ratio_bfloat16_vs_ct2_int8=<smallest CTranslate2 int8
seconds / ours in bfloat16> and min_ratio_vs_ct2_float32=<smallest
CTranslate2 float32 seconds / ours in float32>, over all rows.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PeakMemory, Worker, answer, rss_mb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MT5_SMALL = dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=6,
                 attention_head_size=64, intermediate_size=1024,
                 hidden_act=['gelu_tanh', 'linear'], relative_attention_num_buckets=32)
SEARCHES = ('greedy', 'beam 3', 'top-p 0.9')
SETTINGS = {'batches': (1, 16), 'threads': 2}  # --batch, --threads
PIECE = 't%d'  # the word-level tokenizer's name for id i
SIDES = ('ours', 'ours bfloat16', 'ct2 float32', 'ct2 int8')


def inputs(batch, vocab):
    """The same ids on every side: one 64-token input, or ``batch`` of 48-64."""
    rng = np.random.default_rng(0 if batch == 1 else batch)
    lengths = [64] if batch == 1 else rng.integers(48, 65, batch)
    return [np.append(rng.integers(300, min(vocab, 4000), n - 1), 1).astype('int64')
            for n in lengths]


def prepare(folder, vocab):
    """Random weights -> bert4keras checkpoint -> Hugging Face -> CTranslate2."""
    sys.path.insert(0, ROOT)
    import bert4keras_blog  # noqa: F401
    import ctranslate2
    from bert4keras.models import build_transformer_model
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import MT5Config, MT5ForConditionalGeneration, PreTrainedTokenizerFast
    from transformers.models.mt5.modeling_mt5 import load_tf_weights_in_mt5
    from bert4keras_blog.checkpoints.tfwriter import save_checkpoint
    from bert4keras_blog.compat import keras
    keras.utils.set_random_seed(0)
    config = dict(MT5_SMALL, vocab_size=vocab)
    ours = build_transformer_model(model='mt5.1.1', return_keras_model=False, **config)
    prefix = os.path.join(folder, 'ckpt', 'model.ckpt')
    save_checkpoint(ours, prefix)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f)
    hf_config = MT5Config(
        vocab_size=vocab, d_model=config['hidden_size'], d_kv=config['attention_head_size'],
        d_ff=config['intermediate_size'], num_layers=config['num_hidden_layers'],
        num_heads=config['num_attention_heads'],
        relative_attention_num_buckets=config['relative_attention_num_buckets'],
        feed_forward_proj='gated-gelu', tie_word_embeddings=False, dropout_rate=0.0,
        layer_norm_epsilon=1e-6, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    peer = load_tf_weights_in_mt5(MT5ForConditionalGeneration(hf_config), hf_config, prefix)
    hf = os.path.join(folder, 'hf')
    peer.save_pretrained(hf)
    names = {PIECE % i: i for i in range(vocab)}
    for i, special in enumerate(('<pad>', '</s>', '<unk>')):
        del names[PIECE % i]
        names[special] = i
    word_level = Tokenizer(models.WordLevel(names, unk_token='<unk>'))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token='<pad>', eos_token='</s>',
                            unk_token='<unk>').save_pretrained(hf)
    for quantization in (None, 'int8'):
        out = os.path.join(folder, 'ct2-' + (quantization or 'float32'))
        ctranslate2.converters.TransformersConverter(hf).convert(
            out, quantization=quantization, force=True)


def piece(i):
    return ('<pad>', '</s>', '<unk>')[i] if i < 3 else PIECE % i


class Side(object):
    """What every side shares: the rows, their inputs, and the timing commands."""

    def __init__(self, folder, new_tokens, vocab):
        self.new_tokens, self.vocab = new_tokens, vocab
        self.rows = [(s, b) for b in SETTINGS['batches'] for s in SEARCHES]
        self.batches = [inputs(b, vocab) for _, b in self.rows]
        self.results = {}

    def warm(self, i):
        for batch in (self.batches[i][:1], self.batches[i]):
            self.search(self.rows[i][0], batch)
        return None

    def run(self, i):
        with PeakMemory() as memory:
            start = time.perf_counter()
            self.results[i] = self.search(self.rows[i][0], self.batches[i])
            seconds = time.perf_counter() - start
        return {'seconds': seconds, 'mb': memory.peak - self.runtime}

    def ids(self, i):
        return [list(map(int, x)) for x in self.results[i]]


class Ours(Side):
    def __init__(self, folder, new_tokens, vocab, precision):
        Side.__init__(self, folder, new_tokens, vocab)
        sys.path.insert(0, ROOT)
        import bert4keras_blog  # noqa: F401
        from bert4keras.models import build_transformer_model
        from bert4keras_blog.compat import tf
        from bert4keras_blog.decoding import T5Decoder
        tf.config.threading.set_intra_op_parallelism_threads(SETTINGS['threads'])
        tf.config.threading.set_inter_op_parallelism_threads(SETTINGS['threads'])
        tf.constant(1.0) + 1
        self.runtime = rss_mb()
        with open(os.path.join(folder, 'config.json')) as f:
            config = json.load(f)
        net = build_transformer_model(checkpoint_path=os.path.join(folder, 'ckpt', 'model.ckpt'),
                                      model='mt5.1.1', return_keras_model=False, **config)
        self.loaded = rss_mb()
        self.decoder = T5Decoder(net, end_id=-1, maxlen=new_tokens, precision=precision)

    def search(self, name, batch):
        items = [[x] for x in batch]
        if name == 'greedy':
            out = self.decoder.batch_greedy(items)
        elif name == 'beam 3':
            out = self.decoder.batch_beam_search(items, topk=3)
        else:
            out = [s[0] for s in self.decoder.batch_random_sample(items, n=1, topp=0.9, seed=0)]
        return [x[1:] for x in out]  # T5's outputs begin with the start id


class CTranslate2(Side):
    def __init__(self, folder, new_tokens, vocab, compute_type):
        Side.__init__(self, folder, new_tokens, vocab)
        import ctranslate2
        self.runtime = rss_mb()
        self.translator = ctranslate2.Translator(
            os.path.join(folder, 'ct2-' + compute_type), device='cpu',
            compute_type=compute_type, inter_threads=1, intra_threads=SETTINGS['threads'])
        self.loaded = rss_mb()
        self.index = {piece(i): i for i in range(vocab)}

    def search(self, name, batch):
        tokens = [[piece(int(i)) for i in x] for x in batch]
        settings = dict(max_decoding_length=self.new_tokens, min_decoding_length=self.new_tokens,
                        max_batch_size=0)
        if name == 'beam 3':
            settings['beam_size'] = 3
        elif name == 'top-p 0.9':
            settings.update(beam_size=1, sampling_topk=0, sampling_topp=0.9)
        else:
            settings['beam_size'] = 1
        results = self.translator.translate_batch(tokens, **settings)
        return [[self.index[t] for t in r.hypotheses[0]] for r in results]


def serve(role, folder, new_tokens, vocab):
    if role.startswith('ours'):
        side = Ours(folder, new_tokens, vocab, (role.split()[1:] or ['float32'])[0])
    else:
        side = CTranslate2(folder, new_tokens, vocab, role.split()[-1])
    answer({'runtime_mb': side.runtime, 'loaded_mb': side.loaded})
    for line in sys.stdin:
        command, _, arg = line.strip().partition(' ')
        answer(getattr(side, command)(int(arg)))


def role_process(role, folder, new_tokens, vocab):
    command = [sys.executable, os.path.abspath(__file__), '--role', role, '--folder', folder,
               '--tokens', str(new_tokens), '--vocab', str(vocab),
               '--threads', str(SETTINGS['threads']), '--batch'] + \
        [str(b) for b in SETTINGS['batches']]
    return command, dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONWARNINGS='ignore',
                         OMP_NUM_THREADS=str(SETTINGS['threads']))


def compare(folder, new_tokens, vocab, repeats):
    workers = {role: Worker(*role_process(role, folder, new_tokens, vocab)) for role in SIDES}
    try:
        rows = [(s, b) for b in SETTINGS['batches'] for s in SEARCHES]
        table = []
        for i, (search, batch) in enumerate(rows):
            for worker in workers.values():
                worker.ask('warm %d' % i)
            runs = {role: [] for role in SIDES}
            for _ in range(repeats):
                for role, worker in workers.items():
                    runs[role].append(worker.ask('run %d' % i))
            row = {'vocab': vocab, 'search': search, 'batch': batch}
            for role in SIDES:
                row[role] = float(np.median([r['seconds'] for r in runs[role]]))
                row[role + ' MB'] = max(r['mb'] for r in runs[role])
            ids = {role: workers[role].ask('ids %d' % i) for role in SIDES}
            if search != 'top-p 0.9':
                row['same as ct2 float32'] = ids['ours'] == ids['ct2 float32'] if batch == 1 \
                    else None
                a, b = np.array(ids['ct2 int8']), np.array(ids['ct2 float32'])
                row['int8 agreement'] = float((a == b).mean())
                a, b = np.array(ids['ours bfloat16']), np.array(ids['ours'])
                row['bfloat16 agreement'] = float((a == b).mean())
            table.append(row)
            print(format_row(row), flush=True)
        loaded = {role: (w.started['loaded_mb'] - w.started['runtime_mb'])
                  for role, w in workers.items()}
        return table, loaded
    finally:
        for worker in workers.values():
            worker.close()


def format_row(row):
    same = row.get('same as ct2 float32')
    agree = ['%.2f' % row[k] if k in row else '-' for k in ('int8 agreement',
                                                           'bfloat16 agreement')]
    return ('%6dk %-10s %5d %8.3f %8.3f %8.3f %8.3f %7.2f %7.2f %6.0f %6.0f %6.0f %6.0f '
            '%5s %5s  %s' % (
                row['vocab'] // 1000, row['search'], row['batch'], row['ours'],
                row['ours bfloat16'], row['ct2 float32'], row['ct2 int8'],
                row['ct2 float32'] / row['ours'], row['ct2 int8'] / row['ours bfloat16'],
                row['ours MB'], row['ours bfloat16 MB'], row['ct2 float32 MB'],
                row['ct2 int8 MB'], agree[0], agree[1],
                '' if same is None else ('same ids' if same else 'IDS DIFFER')))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='16 new tokens, one run per row')
    parser.add_argument('--vocab', type=int, nargs='+', default=[32000, 250112])
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 16],
                        help='batch sizes of the rows (default: 1 16)')
    parser.add_argument('--threads', type=int, default=2,
                        help='threads of every side (default 2: this machine\'s cores)')
    parser.add_argument('--role', help=argparse.SUPPRESS)
    parser.add_argument('--folder', help=argparse.SUPPRESS)
    parser.add_argument('--tokens', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    SETTINGS.update(batches=tuple(args.batch), threads=args.threads)
    if args.role:
        return serve(args.role, args.folder, args.tokens, args.vocab[0])
    new_tokens = 16 if args.quick else 32
    print('mT5-small, %d new tokens, %d threads per side; seconds (median of %d), '
          'CTranslate2 / ours, peak MB' % (new_tokens, args.threads, 1 if args.quick else 3))
    print('%7s %-10s %5s %8s %8s %8s %8s %7s %7s %6s %6s %6s %6s %5s %5s' % (
        'vocab', 'search', 'batch', 'ours', 'ours bf', 'ct2 f32', 'ct2 int8', 'f32/us',
        'int8/bf', 'MB us', 'MB bf', 'MB f32', 'MB i8', 'i8=f', 'bf=us'))
    everything = []
    with tempfile.TemporaryDirectory(prefix='ct2-bench-') as root:
        for vocab in args.vocab:
            folder = os.path.join(root, str(vocab))
            os.makedirs(folder)
            from multiprocessing import get_context
            child = get_context('spawn').Process(target=prepare, args=(folder, vocab))
            child.start()
            child.join()
            if child.exitcode:
                raise SystemExit('preparing the %d-token model failed' % vocab)
            table, loaded = compare(folder, new_tokens, vocab, 1 if args.quick else 3)
            print('weights resident after loading, MB: ' + ', '.join(
                '%s %.0f' % item for item in loaded.items()))
            everything += table
    print('min_ratio_bfloat16_vs_ct2_int8=%.2f' % min(
        r['ct2 int8'] / r['ours bfloat16'] for r in everything))
    print('min_ratio_vs_ct2_float32=%.2f' % min(
        r['ct2 float32'] / r['ours'] for r in everything))
    return 0


if __name__ == '__main__':
    sys.exit(main())
