"""Generation speed and memory: our cached decoders against Hugging Face
``generate`` (PyTorch, CPU) on the same weights, with bert4keras'
``AutoRegressiveDecoder`` as the baseline, measured in one run.

Models (random weights, written once as a bert4keras checkpoint and read by
both sides; speed does not depend on the values):
  base LM     BERT-base size used as a left-to-right LM (12 x 768, vocab
              21,128); Hugging Face: ``BertLMHeadModel`` (is_decoder).
  mT5-small   8+8 layers, d_model 512, vocab 250,112; Hugging Face:
              ``MT5ForConditionalGeneration``. (Not with ``--quick``.)

Settings: a 64-token input (batch 1) or 16 inputs of 48-64 tokens
(batch 16; base LM also 64), exactly N new tokens (no end token: N = 32,
16 with ``--quick``, which also leaves out batch 64), greedy, beam 3 and
top-p 0.9 sampling. Both sides run on 2 threads, warmed up first (neither
the tracing nor one full run of each row is timed); each time is the
median of 3 runs, or of more (up to 9) while a row's runs on both sides
add up to under 12 s, since the shortest rows move most with the
machine's load (one run with ``--quick``). The two sides' runs of a row
alternate, so a slow spell of the (shared) machine does not fall on one
side only.
Memory: each side runs in its own process; "MB" is the peak resident memory
during the row's runs minus that process's runtime alone (Python +
TensorFlow or PyTorch, before any model), which is printed separately.

Checks, printed with the table: every batch-1 greedy and beam output equals
bert4keras' decoder's; every batch-16 output equals the same input decoded
alone; and a peer check of the logits against Hugging Face at full size
(one greedy step after another, largest absolute difference per step).
The checks run after every timed row, so no row's memory holds what
bert4keras' decoder left behind.

Usage: python benchmarks/generation_vs_hf.py [--quick]
Last line: min_ratio_vs_hf=<smallest ours/HF speed ratio over all rows>.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PeakMemory, Worker, answer, rss_mb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERT_BASE = dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, hidden_act='gelu',
                 max_position_embeddings=512, type_vocab_size=2)
MT5_SMALL = dict(vocab_size=250112, hidden_size=512, num_hidden_layers=8,
                 num_attention_heads=6, attention_head_size=64, intermediate_size=1024,
                 hidden_act=['gelu_tanh', 'linear'], relative_attention_num_buckets=32)
SEARCHES = ('greedy', 'beam 3', 'top-p 0.9')
THREADS = 2


# ------------------------------------------------------------ shared

def inputs(model, batch, vocab):
    """The same token ids on both sides: one 64-token input, or ``batch``
    inputs of 48-64 tokens."""
    rng = np.random.default_rng(0 if batch == 1 else batch)
    lengths = [64] if batch == 1 else rng.integers(48, 65, batch)
    low = 106 if model == 'base LM' else 300
    return [rng.integers(low, min(vocab, 4000), n).astype('int64') for n in lengths]


def rows_of(model, quick):
    batches = [1, 16] + ([64] if model == 'base LM' and not quick else [])
    return [(search, batch) for batch in batches for search in SEARCHES
            if batch != 64 or search == 'greedy']


REPEATS = [3]  # runs of each side per row, at least; --quick: 1
ROW_SECONDS = [12.0]  # more runs (up to 3x) until both sides' add up to this; --quick: 0


# ------------------------------------------------------------ prepare

def prepare(model, folder, new_tokens):
    """Random weights -> bert4keras checkpoint; Hugging Face reads it with
    its own TF-checkpoint reader and saves a PyTorch copy. Then the peer
    check: our cached greedy steps against Hugging Face's logits."""
    sys.path.insert(0, ROOT)
    import bert4keras_blog  # noqa: F401
    import torch
    from bert4keras.models import build_transformer_model
    from bert4keras_blog.compat import keras
    from bert4keras_blog.checkpoints.tfwriter import save_checkpoint
    from bert4keras_blog.decoding import LMDecoder, T5Decoder
    torch.set_num_threads(THREADS)
    keras.utils.set_random_seed(0)
    prefix = os.path.join(folder, 'ckpt', 'model.ckpt')
    if model == 'base LM':
        config = dict(BERT_BASE, max_position=512)
        ours = build_transformer_model(application='lm', with_mlm=True,
                                       return_keras_model=False, **config)
        save_checkpoint(ours, prefix)
        from transformers import BertConfig, BertLMHeadModel
        from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
        hf_config = BertConfig(**BERT_BASE, is_decoder=True, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12)
        peer = load_tf_weights_in_bert(BertLMHeadModel(hf_config), hf_config, prefix)
        decoder = LMDecoder(ours.model, end_id=-1, maxlen=new_tokens)
    else:
        config = MT5_SMALL
        ours = build_transformer_model(model='mt5.1.1', return_keras_model=False, **config)
        save_checkpoint(ours, prefix)
        from transformers import MT5Config, MT5ForConditionalGeneration
        from transformers.models.mt5.modeling_mt5 import load_tf_weights_in_mt5
        hf_config = MT5Config(
            vocab_size=config['vocab_size'], d_model=config['hidden_size'],
            d_kv=config['attention_head_size'], d_ff=config['intermediate_size'],
            num_layers=config['num_hidden_layers'], num_heads=config['num_attention_heads'],
            relative_attention_num_buckets=config['relative_attention_num_buckets'],
            feed_forward_proj='gated-gelu', tie_word_embeddings=False, dropout_rate=0.0,
            layer_norm_epsilon=1e-6, decoder_start_token_id=0)
        peer = load_tf_weights_in_mt5(MT5ForConditionalGeneration(hf_config), hf_config, prefix)
        decoder = T5Decoder(ours, end_id=-1, maxlen=new_tokens)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f)
    peer.eval()
    peer.save_pretrained(os.path.join(folder, 'hf'))
    return peer_check(model, decoder, peer, inputs(model, 1, config['vocab_size'])[0],
                      steps=8)


def peer_check(model, decoder, peer, prompt, steps):
    """Feeds our greedy tokens one step at a time to both sides; returns the
    largest |logit difference| at each step and whether the greedy choices agree."""
    import torch
    logits, state = decoder.start([[prompt]])
    tokens = []
    diffs, same = [], True
    for step in range(steps):
        with torch.no_grad():
            if model == 'base LM':
                ids = torch.tensor([list(prompt) + tokens])
                theirs = peer(input_ids=ids).logits[0, -1].numpy()
            else:
                theirs = peer(input_ids=torch.tensor([prompt]),
                              decoder_input_ids=torch.tensor([[0] + tokens])).logits[0, -1].numpy()
        diffs.append(float(np.abs(logits[0] - theirs).max()))
        same &= int(logits[0].argmax()) == int(theirs.argmax())
        tokens.append(int(logits[0].argmax()))
        logits, state = decoder.runner.advance(state, [0], [tokens[-1]])
    return {'model': model, 'max_logit_diff_per_step': diffs, 'same_greedy': bool(same),
            'logit_scale': float(np.abs(logits).max())}


# ------------------------------------------------------------ the two sides

class Side(object):
    """One side of the comparison, run in its own process (``serve``):
    ``warm(i)`` traces row ``i``, ``run(i)`` times one run of it."""

    def __init__(self, model, folder, new_tokens, quick):
        with open(os.path.join(folder, 'config.json')) as f:
            self.config = json.load(f)
        self.model, self.new_tokens = model, new_tokens
        self.rows = rows_of(model, quick)
        self.batches = [inputs(model, size, self.config['vocab_size'])
                        for _, size in self.rows]
        self.results = {}

    def run(self, i):
        name = self.rows[i][0]
        with PeakMemory() as memory:
            start = time.perf_counter()
            ids = self.search(name, self.batches[i], self.new_tokens)
            seconds = time.perf_counter() - start
        self.results.setdefault(i, ids)
        return {'seconds': seconds, 'peak_mb': memory.peak - self.runtime,
                'ids': [list(map(int, x)) for x in ids[:2]]}


class Ours(Side):
    def __init__(self, model, folder, new_tokens, quick):
        Side.__init__(self, model, folder, new_tokens, quick)
        sys.path.insert(0, ROOT)
        import bert4keras_blog  # noqa: F401
        from bert4keras_blog.compat import tf
        tf.constant(1.0) + 1
        self.runtime = rss_mb()
        from bert4keras.models import build_transformer_model
        from bert4keras_blog.decoding import LMDecoder, ReferenceLM, ReferenceT5, T5Decoder
        prefix = os.path.join(folder, 'ckpt', 'model.ckpt')
        if model == 'base LM':
            net = build_transformer_model(checkpoint_path=prefix, application='lm',
                                          with_mlm=True, **self.config)
            self.make = lambda n: LMDecoder(net, end_id=-1, maxlen=n)
            self.reference = ReferenceLM(net, start_id=None, end_id=-1, maxlen=new_tokens)
            self.first = 0
        else:
            net = build_transformer_model(checkpoint_path=prefix, model='mt5.1.1',
                                          return_keras_model=False, **self.config)
            self.make = lambda n: T5Decoder(net, end_id=-1, maxlen=n)
            self.reference = ReferenceT5(net, encoder_once=True, start_id=0, end_id=-1,
                                         maxlen=new_tokens)
            self.first = 1  # T5's outputs begin with the start id
        self.loaded = rss_mb()
        self.decoder = self.make(new_tokens)

    def search(self, name, batch, n):
        dec = self.decoder if n == self.new_tokens else self.make(n)
        items = [[x] for x in batch]
        if name == 'greedy':
            out = dec.batch_greedy(items)
        elif name == 'beam 3':
            out = dec.batch_beam_search(items, topk=3)
        else:
            out = [s[0] for s in dec.batch_random_sample(items, n=1, topp=0.9, seed=0)]
        return [x[self.first:] for x in out]

    def warm(self, i):
        for batch in (self.batches[i][:1], self.batches[i]):  # traces, and this slot count
            self.search(self.rows[i][0], batch, 2)

    def checks(self):
        """Identity checks, after every timed row (see the module docstring)."""
        checks, baselines = [], {}
        for i, (name, size) in enumerate(self.rows):
            batch, ids = self.batches[i], self.results[i]
            if name == 'top-p 0.9' or size > 16:
                continue
            if size == 1:
                topk = 3 if name == 'beam 3' else 1
                start = time.perf_counter()
                expected = self.reference.generate(batch[0], topk) if self.first \
                    else self.reference.beam_search([batch[0]], topk)
                baselines[i] = time.perf_counter() - start
                same = np.array_equal(expected[self.first:], ids[0])
                what = 'bert4keras %s' % name
            else:
                count = 4 if REPEATS[0] == 1 else size
                alone = [self.search(name, [x], self.new_tokens)[0] for x in batch[:count]]
                same = all(np.array_equal(a, b) for a, b in zip(alone, ids))
                what = '%d of batch 16 %s vs each alone' % (count, name)
            checks.append({'model': self.model, 'what': what, 'same': bool(same)})
        return {'checks': checks, 'baseline_seconds': baselines}


class HuggingFace(Side):
    def __init__(self, model, folder, new_tokens, quick):
        Side.__init__(self, model, folder, new_tokens, quick)
        os.environ.setdefault('USE_TF', '0')
        import torch
        torch.set_num_threads(THREADS)
        torch.zeros(1) + 1
        self.runtime = rss_mb()
        from transformers import BertLMHeadModel, MT5ForConditionalGeneration
        cls = BertLMHeadModel if model == 'base LM' else MT5ForConditionalGeneration
        self.net = cls.from_pretrained(os.path.join(folder, 'hf')).eval()
        self.loaded = rss_mb()

    def search(self, name, batch, n):
        import torch
        width = max(len(x) for x in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, x in enumerate(batch):  # decoder-only models are padded on the left
            where = slice(width - len(x), width) if self.model == 'base LM' else slice(0, len(x))
            ids[i, where], mask[i, where] = torch.tensor(x), 1
        settings = {'greedy': dict(do_sample=False, num_beams=1),
                    'beam 3': dict(do_sample=False, num_beams=3, early_stopping=False,
                                   length_penalty=1.0),
                    'top-p 0.9': dict(do_sample=True, top_p=0.9, top_k=0)}[name]
        torch.manual_seed(0)
        with torch.no_grad():
            out = self.net.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                    min_new_tokens=n, pad_token_id=0, eos_token_id=None,
                                    **settings)
        return (out[:, width:] if self.model == 'base LM' else out[:, 1:]).tolist()

    def warm(self, i):
        self.search(self.rows[i][0], self.batches[i], 2)


def serve(role, model, folder, new_tokens, quick):
    """A side's process: builds the side, then answers one JSON line per
    command line read (``warm i``, ``run i``, ``checks``)."""
    side = (Ours if role == 'ours' else HuggingFace)(model, folder, new_tokens, quick)
    answer({'runtime_mb': side.runtime, 'loaded_mb': side.loaded})
    for line in sys.stdin:
        command, _, arg = line.strip().partition(' ')
        answer(getattr(side, command)(*([int(arg)] if arg else [])))


def compare(model, folder, new_tokens, quick):
    """Both sides loaded side by side; each row warmed on both, then timed
    runs alternate between them, so a slow spell of the machine falls on
    both sides' runs of a row rather than on one side's."""
    ours = Worker(*role_process('ours', model, folder, new_tokens, quick))
    theirs = Worker(*role_process('hf', model, folder, new_tokens, quick))
    try:
        out = {side: dict(worker.started, rows=[]) for side, worker in
               (('ours', ours), ('hf', theirs))}
        for i, (name, size) in enumerate(rows_of(model, quick)):
            for worker in (ours, theirs):  # traces, then one untimed run
                worker.ask('warm %d' % i)
                worker.ask('run %d' % i)
            runs = {'ours': [], 'hf': []}
            while len(runs['ours']) < REPEATS[0] or (
                    len(runs['ours']) < 3 * REPEATS[0] and
                    sum(r['seconds'] for side in runs.values() for r in side) < ROW_SECONDS[0]):
                runs['ours'].append(ours.ask('run %d' % i))
                runs['hf'].append(theirs.ask('run %d' % i))
            for side, results in runs.items():
                out[side]['rows'].append({
                    'search': name, 'batch': size,
                    'seconds': float(np.median([r['seconds'] for r in results])),
                    'runs': len(results),
                    'peak_mb': max(r['peak_mb'] for r in results), 'ids': results[0]['ids']})
        theirs.close()
        checked = ours.ask('checks')
    finally:
        for worker in (ours, theirs):
            if worker.process.poll() is None:
                worker.process.kill()
    out['ours']['checks'] = checked['checks']
    for i, seconds in checked['baseline_seconds'].items():
        out['ours']['rows'][int(i)]['baseline_seconds'] = seconds
    return out['ours'], out['hf']


# ------------------------------------------------------------ driver

def bf16_probe():
    """Weight precision: one base-size step's matmuls (101M weights, one
    row) in float32 and bfloat16 on this CPU, ms."""
    sys.path.insert(0, ROOT)
    from bert4keras_blog.compat import tf
    shapes = [(768, 768)] * 48 + [(768, 3072), (3072, 768)] * 12 + [(768, 21128)]
    result = {}
    for dtype in (tf.float32, tf.bfloat16):
        weights = [tf.cast(tf.random.normal(s), dtype) for s in shapes]
        x = tf.cast(tf.random.normal([1, 3072]), dtype)
        step = tf.function(lambda x: tf.add_n([tf.reduce_sum(tf.cast(
            tf.matmul(x[:, :w.shape[0]], w), tf.float32)) for w in weights]))
        step(x)
        start = time.perf_counter()
        for _ in range(10):
            step(x).numpy()
        result[dtype.name] = (time.perf_counter() - start) / 10 * 1000
    return result


def role_process(role, model, folder, new_tokens, quick=False):
    """(command, environment) that run this script in ``role``."""
    command = [sys.executable, os.path.abspath(__file__), '--role', role, '--model', model,
               '--folder', folder, '--tokens', str(new_tokens)] + (['--quick'] if quick else [])
    return command, dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONWARNINGS='ignore')


def prepare_in_child(model, folder, new_tokens):
    """Runs ``prepare`` in a fresh process; returns its JSON."""
    command, env = role_process('prepare', model, folder, new_tokens)
    done = subprocess.run(command, stdout=subprocess.PIPE, env=env, check=True)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def report(model, ours, theirs):
    print('\n%s: runtime alone (RSS before any model) TensorFlow %.0f MB, PyTorch %.0f MB; '
          'after loading the weights %.0f / %.0f MB' % (
              model, ours['runtime_mb'], theirs['runtime_mb'],
              ours['loaded_mb'] - ours['runtime_mb'], theirs['loaded_mb'] - theirs['runtime_mb']))
    print('%-10s %5s %9s %9s %9s %8s %7s %7s %6s %9s %7s %5s' % (
        'search', 'batch', 'ours s', 'tok/s', 'HF s', 'vs HF', 'ours MB', 'HF MB',
        'mem x', 'b4k s', 'vs b4k', 'runs'))
    ratios = []
    for a, b in zip(ours['rows'], theirs['rows']):
        tokens = a['batch'] * NEW_TOKENS[0]
        ratio = b['seconds'] / a['seconds']
        ratios.append(ratio)
        base = a.get('baseline_seconds')
        print('%-10s %5d %9.3f %9.1f %9.3f %8.2f %7.0f %7.0f %6.2f %9s %7s %5d' % (
            a['search'], a['batch'], a['seconds'], tokens / a['seconds'], b['seconds'], ratio,
            a['peak_mb'], b['peak_mb'], a['peak_mb'] / b['peak_mb'],
            '%.2f' % base if base else '-', '%.1f' % (base / a['seconds']) if base else '-',
            a['runs']))
        a['vs_hf'], a['hf_seconds'], a['hf_peak_mb'] = ratio, b['seconds'], b['peak_mb']
        if a['search'] != 'top-p 0.9' and a['batch'] == 1:
            a['same_as_hf'] = a['ids'] == b['ids']
    return ratios


NEW_TOKENS = [32]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='base LM only, batch 1 and 16, 16 new tokens, one run per row '
                        '(under 3 minutes)')
    parser.add_argument('--role', choices=['prepare', 'ours', 'hf'], help=argparse.SUPPRESS)
    parser.add_argument('--model', help=argparse.SUPPRESS)
    parser.add_argument('--folder', help=argparse.SUPPRESS)
    parser.add_argument('--tokens', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--only', choices=['base LM', 'mT5-small'], help='one model')
    parser.add_argument('--json', help='also write every figure to this JSON file')
    args = parser.parse_args(argv)
    if args.quick:
        REPEATS[0], ROW_SECONDS[0] = 1, 0.0
    if args.role == 'prepare':
        print(json.dumps(prepare(args.model, args.folder, args.tokens)))
        return 0
    if args.role:
        serve(args.role, args.model, args.folder, args.tokens, args.quick)
        return 0
    NEW_TOKENS[0] = 16 if args.quick else 32
    models = [args.only] if args.only else ['base LM'] if args.quick else ['base LM', 'mT5-small']
    ratios, checks, peers, everything = [], [], [], {}
    started = time.time()
    print('%d new tokens per input, CPU, %d threads each side' % (NEW_TOKENS[0], THREADS))
    for model in models:
        with tempfile.TemporaryDirectory() as folder:
            peers.append(prepare_in_child(model, folder, NEW_TOKENS[0]))
            # The checkpoints just written (~1 GB) would otherwise go to disk
            # during the first rows, which then ran 20-25% slower on our side.
            os.sync()
            ours, theirs = compare(model, folder, NEW_TOKENS[0], args.quick)
        ratios += report(model, ours, theirs)
        checks += ours['checks']
        everything[model] = {'ours': ours, 'hf': theirs}
    print('\nsame ids as bert4keras / as each input alone:')
    for c in checks:
        print('  %-5s %s: %s' % (c['model'], c['what'], c['same']))
    print('peer check at full size (largest |logit difference| per greedy step):')
    for p in peers:
        print('  %-9s %s (logits up to %.1f), same greedy tokens: %s' % (
            p['model'], ' '.join('%.1e' % d for d in p['max_logit_diff_per_step']),
            p['logit_scale'], p['same_greedy']))
    probe = bf16_probe()
    print('weights in bfloat16: one base-size step of matmuls takes %.1f ms against %.1f ms '
          'in float32 on this CPU; the rows above are float32, the same ids as bert4keras '
          "(precision='bfloat16' opts in: benchmarks/precision.py)"
          % (probe['bfloat16'], probe['float32']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'models': everything, 'checks': checks, 'peers': peers,
                       'bf16_probe_ms': probe}, f, indent=1)
    print('total %.0f s' % (time.time() - started))
    if not all(c['same'] for c in checks):
        print('WARNING: outputs differ from bert4keras\' decoder')
    print('min_ratio_vs_hf=%.2f' % min(ratios))
    return 0 if all(c['same'] for c in checks) else 1


if __name__ == '__main__':
    sys.exit(main())
