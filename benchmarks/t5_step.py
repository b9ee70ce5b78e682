"""Where one cached greedy step of mT5-small (32k vocabulary, batch 1) spends
its time: the whole step, the traced graph alone (compiled by XLA, as batch
1 runs, and op by op), the start of a search, the output layer's
product alone, the decoder blocks' dense products alone, and the bytes of
weights a step reads (what an engine bound by memory bandwidth needs).
Random weights; medians of 31-40 calls. Quoted in docs/decoding.md,
"Generation speed against CTranslate2".

Usage: python benchmarks/t5_step.py
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import numpy as np  # noqa: E402

import bert4keras_blog  # noqa: E402,F401
from bert4keras.models import build_transformer_model
from bert4keras_blog.compat import tf
from bert4keras_blog.decoding import T5Decoder
cfg = dict(vocab_size=32000, hidden_size=512, num_hidden_layers=8, num_attention_heads=6,
           attention_head_size=64, intermediate_size=1024, hidden_act=['gelu_tanh', 'linear'],
           relative_attention_num_buckets=32)
net = build_transformer_model(model='mt5.1.1', return_keras_model=False, **cfg)
x = np.append(np.random.default_rng(0).integers(300, 4000, 63), 1)
d = T5Decoder(net, end_id=-1, maxlen=32)
d.greedy([x])
r = d.runner
def med(f, n=40):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return np.median(ts) * 1e3
logits, state = d.start([x])
def step():
    global logits, state
    logits, state = r.advance(state, [0], [int(logits[0].argmax())])
print('whole step (advance + argmax) ms %.2f' % med(step, 31))
# graph only: the XLA program batch 1 runs, and the op-by-op step
logits, state = d.start([x])
fed = np.zeros(state.slots, 'int32')
none = np.zeros(0, 'int32')
args = (state.self_kv, state.extra, state.table, state.kernels, fed, state.start,
        np.int32(state.t), none, none)
for name, function in (('compiled', r.compiled_step), ('op-by-op', r.step)):
    r.call_step(function, *args)  # traced (and compiled) on first use
    call = r.traces[function]
    print('%s step alone ms %.2f' % (name, med(lambda: call(*args))))
print('start (encoder, cross keys/values, first step) ms %.2f' % med(lambda: d.start([x]), 10))
table = state.table
h = tf.random.normal((1, 512))
mm = tf.function(lambda h, t: tf.matmul(h, t))
mm(h, table)
print('output layer matmul (1x512 @ 512x32000) ms %.2f' % med(lambda: mm(h, table).numpy()))
dense = [layer for self_att, _, _, cross, _, ffn in r.layers
         for layer in (self_att.q_dense, self_att.k_dense, self_att.v_dense, self_att.o_dense,
                       cross.q_dense, cross.o_dense, ffn.i0_dense, ffn.i1_dense, ffn.o_dense)]
ks = [l.kernel for l in dense]
def prods(h):
    outs = []
    for k in ks:
        inp = h if k.shape[0] == 512 else tf.zeros((1, k.shape[0]))
        outs.append(tf.matmul(inp, k))
    return outs
pf = tf.function(prods); pf(h)
print('the decoder blocks\' %d matmuls alone ms %.2f' % (len(ks), med(lambda: pf(h))))
mb = sum(int(np.prod(k.shape)) for k in ks) * 4 / 2**20 + 512 * 32000 * 4 / 2**20
print('weights read per step MB %.0f' % mb)
