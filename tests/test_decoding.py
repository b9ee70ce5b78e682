"""Cached decoding gives AutoRegressiveDecoder's results, token for token."""
import time

import numpy as np
import pytest

import bert4keras_blog  # noqa: F401
from bert4keras.tokenizers import SpTokenizer, Tokenizer
from bert4keras_blog.compat import tf
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.decoding import (
    LMDecoder, ReferenceLM, ReferenceT5, ReferenceUniLM, T5Decoder, UniLMDecoder, log_probabilities,
    step_differences)
from bert4keras_blog.decoding import slots
from bert4keras_blog.errors import BlogError

SOURCES = ['科学空间是苏剑林的博客', '北京欢迎你', '今天天气很好，我们去公园散步吧。', '人民日报']


# -------------------------------------------------------------- fixtures

@pytest.fixture(scope='module')
def unilm():
    paths = tiny('bert')
    model = build_model('bert', paths, application='unilm', with_mlm=True)
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    inputs = [[np.array(x) for x in tokenizer.encode(s)] for s in SOURCES]
    return model, inputs


@pytest.fixture(scope='module')
def lm():
    paths = tiny('gpt')
    model = build_model('gpt', paths, with_mlm=True)
    tokenizer = Tokenizer(paths['dict'], do_lower_case=True)
    inputs = [[np.array(tokenizer.encode(s)[0][:-1])] for s in SOURCES]  # [CLS] prompt
    return model, inputs


@pytest.fixture(scope='module')
def t5():
    paths = tiny('mt5.1.1')
    model = build_model('mt5.1.1', paths, return_keras_model=False)
    tokenizer = SpTokenizer(paths['spm'], token_start=None, token_end='</s>')
    inputs = [[np.array(tokenizer.encode(s)[0])] for s in SOURCES]
    return model, inputs


def frequent_token(reference, batch, topk):
    """The token the model produces most often, used as end_id so beams end early."""
    reference.end_id = -1
    start = reference.first_output_ids.shape[1]  # T5's outputs begin with the start id
    counts = np.bincount(np.concatenate([reference.beam_search(x, topk=topk)[start:]
                                         for x in batch]))
    return int(counts.argmax())


CASES = [('unilm', UniLMDecoder, ReferenceUniLM, {'start_id': None}),
         ('lm', LMDecoder, ReferenceLM, {'start_id': None}),
         ('t5', T5Decoder, ReferenceT5, {'start_id': 0})]


@pytest.mark.slow
@pytest.mark.parametrize('shape, Cached, Reference, extra', CASES)
@pytest.mark.parametrize('topk', [1, 3])
def test_same_ids_as_autoregressive_decoder(shape, Cached, Reference, extra, topk, request):
    model, inputs = request.getfixturevalue(shape)
    maxlen = 8
    reference = Reference(model, end_id=-1, maxlen=maxlen, **extra)
    end_id = frequent_token(reference, inputs, topk)
    reference.end_id = end_id
    decoder = Cached(model, end_id=end_id, maxlen=maxlen)
    expected = [reference.beam_search(x, topk=topk) for x in inputs]
    assert any(len(e) < maxlen for e in expected), 'some beams should end early'
    got = decoder.batch_beam_search(inputs, topk=topk)  # varied lengths in one batch
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(decoder.beam_search(inputs[2], topk=topk), expected[2])


@pytest.mark.parametrize('shape, Cached', [('unilm', UniLMDecoder), ('lm', LMDecoder),
                                           ('t5', T5Decoder)])
def test_cached_step_logits_equal_full_forward(shape, Cached, request):
    """The score of every step equals the uncached model's, within 1e-4."""
    model, inputs = request.getfixturevalue(shape)
    decoder = Cached(model, end_id=-1, maxlen=6)
    reference = {'unilm': ReferenceUniLM, 'lm': ReferenceLM, 't5': ReferenceT5}[shape](
        model, end_id=-1, maxlen=6, start_id=0 if shape == 't5' else None)
    ids = decoder.greedy(inputs[1])
    logits, state = decoder.start([inputs[1]])
    prefix = decoder.first_output_ids
    for i in range(len(ids) - prefix.shape[1]):
        expected, _ = reference.predict([x[None] for x in inputs[1]], prefix, None, 1, 'logits')
        np.testing.assert_allclose(log_probabilities(logits), expected, atol=1e-4)
        token = ids[prefix.shape[1]]
        prefix = np.concatenate([prefix, [[token]]], 1)
        logits, state = decoder.runner.advance(state, [0], [token])


def test_beam_candidates_are_the_finished_beams_with_their_probabilities(unilm):
    """Candidates start with the beam search's answer; every score is the
    summed log-probability the whole (uncached) model gives that sequence."""
    model, inputs = unilm
    reference = ReferenceUniLM(model, start_id=None, end_id=-1, maxlen=12)
    seen = np.concatenate([reference.beam_search(x, topk=4) for x in inputs])
    for end_id in np.unique(seen):  # an end token with which some beams end early
        decoder = UniLMDecoder(model, end_id=int(end_id), maxlen=12)
        found = decoder.batch_beam_search(inputs, topk=4, candidates=True)
        if any(len(c) > 1 for c in found):
            break
    assert any(len(c) > 1 for c in found), 'some beams should end before the best one'
    best = decoder.batch_beam_search(inputs, topk=4)
    for source, answer, candidates in zip(inputs, best, found):
        np.testing.assert_array_equal(candidates[0][0], answer)
        assert [s for _, s in candidates[1:]] == sorted((s for _, s in candidates[1:]),
                                                        reverse=True)
        for ids, score in candidates:
            tokens = np.concatenate([source[0], ids])
            segments = np.concatenate([source[1], np.ones(len(ids), int)])
            probas = model.predict([tokens[None], segments[None]], verbose=0)[0]
            at = np.arange(len(source[0]) - 1, len(tokens) - 1)
            expected = np.log(probas[at, ids] + 1e-12).sum()
            assert abs(score - expected) < 1e-3 * max(1, abs(expected)), (score, expected)


def test_constraint_restricts_every_step(unilm):
    model, inputs = unilm
    allowed = np.array([700, 701, 702, 703, 3])
    seen = []

    def constraint(index, output_ids):
        seen.append((index, len(output_ids)))
        return allowed if len(output_ids) < 4 else [3]

    decoder = UniLMDecoder(model, end_id=3, maxlen=10)
    results = decoder.batch_beam_search(inputs[:2], topk=2, constraint=constraint)
    for ids in results:
        assert set(ids) <= set(allowed.tolist())
        assert len(ids) <= 5 and ids[-1] == 3  # forced to end at the 5th token
    assert {i for i, _ in seen} == {0, 1} and (0, 0) in seen
    mask = np.zeros(decoder.runner.vocab_size, bool)
    mask[[800, 3]] = True
    ids = decoder.greedy(inputs[0], constraint=lambda i, o: mask)
    assert set(ids) <= {800, 3}


def test_random_sample_is_seeded_and_respects_topk(lm):
    model, inputs = lm
    decoder = LMDecoder(model, end_id=-1, maxlen=5)
    a = decoder.random_sample(inputs[0], n=4, topk=3, seed=1)
    b = decoder.random_sample(inputs[0], n=4, topk=3, seed=1)
    c = decoder.random_sample(inputs[0], n=4, topk=3, seed=2)
    assert len(a) == 4 and all(len(x) == 5 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    first_logits, _ = decoder.start([inputs[0]])
    top3 = set(np.argsort(first_logits[0])[-3:])
    assert {int(x[0]) for x in a + c} <= top3
    greedy = decoder.random_sample(inputs[0], n=2, topk=1, seed=0)
    np.testing.assert_array_equal(greedy[0], decoder.greedy(inputs[0]))


def test_topp_keeps_the_smallest_nucleus(lm):
    model, inputs = lm
    decoder = LMDecoder(model, end_id=-1, maxlen=1)
    logits, _ = decoder.start([inputs[0]])
    p = np.sort(np.exp(log_probabilities(logits[0])))[::-1]
    nucleus = int(np.searchsorted(np.cumsum(p), 0.5) + 1)
    samples = decoder.random_sample(inputs[0], n=200, topp=0.5, seed=0)
    allowed = set(np.argsort(-logits[0])[:nucleus])
    assert {int(s[0]) for s in samples} <= allowed


def test_cache_memory_is_reported(unilm):
    model, inputs = unilm
    decoder = UniLMDecoder(model, end_id=3, maxlen=4)
    # 3 rows take 4 slots; 2 layers x (keys + values) x 3 heads x 16 dims x 4 bytes
    # per position and slot.
    assert decoder.cache_bytes(3, 512) == 4 * 512 * 2 * 2 * 48 * 4
    _, state = decoder.runner.start([inputs[0]] * 3)  # what a search really allocates
    allocated = sum(int(tf.size(v)) * 4 for v in state.self_kv)
    assert allocated == decoder.cache_bytes(3, len(inputs[0][0]) + 1)


def test_unsupported_models_are_refused():
    paths = tiny('bert')
    encoder = build_model('bert', paths)  # no MLM head
    with pytest.raises(BlogError, match='with_mlm'):
        UniLMDecoder(encoder, end_id=3, maxlen=4)
    with pytest.raises(BlogError, match='return_keras_model=False'):
        T5Decoder(encoder, end_id=1, maxlen=4)


# ------------------------------------------------- batched generation

@pytest.mark.parametrize('shape, Cached', [('unilm', UniLMDecoder), ('lm', LMDecoder),
                                           ('t5', T5Decoder)])
@pytest.mark.parametrize('topk, max_rows', [(1, 2), (2, 4), (3, 3)])
def test_rows_freed_by_finished_inputs_take_waiting_ones(shape, Cached, topk, max_rows,
                                                         request):
    """With fewer rows than inputs, the inputs wait and enter as others end;
    each result equals that input decoded on its own."""
    model, inputs = request.getfixturevalue(shape)
    batch = inputs * 2  # 8 inputs of different lengths
    reference = Cached(model, end_id=-1, maxlen=7)
    start = reference.first_output_ids.shape[1]
    end_id = int(np.bincount(np.concatenate(
        [reference.beam_search(x, topk=topk)[start:] for x in inputs])).argmax())
    decoder = Cached(model, end_id=end_id, maxlen=7)
    alone = [decoder.beam_search(x, topk=topk) for x in batch]
    assert len({len(a) for a in alone}) > 1, 'inputs should end at different steps'
    admitted = []
    admit = decoder.runner.admit
    decoder.runner.admit = lambda state, new: admitted.append(len(new)) or admit(state, new)
    try:
        together = decoder.batch_beam_search(batch, topk=topk, max_rows=max_rows)
    finally:
        del decoder.runner.admit
    assert sum(admitted) > 0, 'some inputs should have waited'
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize('shape, Cached', [('unilm', UniLMDecoder), ('t5', T5Decoder)])
def test_a_beam_search_starts_with_slots_for_all_its_rows(shape, Cached, request):
    """Its first step branches every input into ``topk`` rows: the slots
    are there from the start, so no buffer is copied into a larger one;
    the results equal each input decoded alone."""
    model, inputs = request.getfixturevalue(shape)
    decoder = Cached(model, end_id=-1, maxlen=5)
    alone = [decoder.beam_search(x, topk=3) for x in inputs]
    grown = []
    resized = slots.resized
    slots.resized = lambda caches, n, *args: grown.append(n) or resized(caches, n, *args)
    try:
        together = decoder.batch_beam_search(inputs, topk=3)
    finally:
        slots.resized = resized
    assert grown == []
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(b, a)


def test_a_long_stream_reuses_columns_and_grows_its_buffers(lm):
    """One row at a time over many inputs: the columns of finished inputs
    are dropped and the buffers grow as needed; results stay the same."""
    model, inputs = lm
    decoder = LMDecoder(model, end_id=-1, maxlen=20)
    batch = inputs * 4
    alone = [decoder.greedy(x) for x in batch]
    states = []
    start = decoder.runner.start
    decoder.runner.start = lambda *a, **k: states.append(start(*a, **k)) or states[-1]
    try:
        streamed = decoder.batch_greedy(batch, max_rows=1)
    finally:
        del decoder.runner.start
    assert states[0][1].length >= 64 and states[0][1].t < 64  # columns were dropped
    for a, b in zip(alone, streamed):
        np.testing.assert_array_equal(b, a)
    many = decoder.batch_greedy(batch * 3, max_rows=48)  # 48 rows: slots grow past 16
    for a, b in zip(alone * 3, many):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize('shape, Cached, Reference, start_id', [
    ('lm', LMDecoder, ReferenceLM, None), ('t5', T5Decoder, ReferenceT5, 0)])
def test_a_search_reserves_columns_for_its_tokens_once(shape, Cached, Reference, start_id,
                                                        request):
    """A search starts with a column per token it may add (every step reads
    all columns, so no more than that) and grows only past
    ``PLANNED_STEPS``; the results stay bert4keras' decoder's, and
    prompts are written into caches of any size by one trace."""
    from bert4keras_blog.decoding import slots
    model, inputs = request.getfixturevalue(shape)
    inputs = inputs[:2]
    first = 1 if shape == 't5' else max(len(x[0]) for x in inputs)  # columns used at the start
    short, long = 20, slots.PLANNED_STEPS + 20
    lengths, resized = {}, []
    for maxlen in (short, long):
        decoder = Cached(model, end_id=-1, maxlen=maxlen)
        cache = decoder.runner
        start, resize = cache.start, slots.resized
        states = []
        cache.start = lambda *a, **k: states.append(start(*a, **k)) or states[-1]
        slots.resized = lambda *a: resized.append(maxlen) or resize(*a)
        try:
            got = decoder.batch_greedy(inputs)
        finally:
            del cache.start
            slots.resized = resize
        lengths[maxlen] = states[0][1].length  # after the search
        reference = Reference(model, start_id=start_id, end_id=-1, maxlen=maxlen)
        for x, ids in zip(inputs, got):
            np.testing.assert_array_equal(ids, reference.beam_search(x, topk=1))
    planned = slots.column_bucket(first + short)
    assert lengths[short] == planned < first + short + slots.COLUMNS
    assert short not in resized  # the short search never copied its buffers
    assert long in resized and lengths[long] > first + slots.PLANNED_STEPS
    writes = [cache.write] + ([cache.write_extra] if shape == 't5' else [])
    assert [w.experimental_get_tracing_count() for w in writes] == [1] * len(writes)


def test_batched_sampling_is_per_input_and_seeded(lm):
    model, inputs = lm
    decoder = LMDecoder(model, end_id=-1, maxlen=5)
    a = decoder.batch_random_sample(inputs, n=3, topk=2, seed=4, max_rows=5)
    b = decoder.batch_random_sample(inputs, n=3, topk=2, seed=4, max_rows=5)
    assert [len(x) for x in a] == [3] * len(inputs)
    assert all(np.array_equal(x, y) for xs, ys in zip(a, b) for x, y in zip(xs, ys))
    for x, samples in zip(inputs, a):
        first_logits, _ = decoder.start([x])
        top2 = set(np.argsort(first_logits[0])[-2:])
        assert {int(s[0]) for s in samples} <= top2
    greedy = decoder.batch_random_sample(inputs, n=1, topk=1, max_rows=2)
    for x, samples in zip(inputs, greedy):
        np.testing.assert_array_equal(samples[0], decoder.greedy(x))


def test_searches_on_one_model_do_not_share_buffers(lm):
    """Keys and values are updated in place: two searches advanced in turn
    on the same model each get the ids they get alone."""
    model, inputs = lm
    decoder = LMDecoder(model, end_id=-1, maxlen=6)
    alone = [decoder.greedy(x) for x in inputs[:2]]
    cache = decoder.runner
    runs = [list(cache.start([x])) + [[]] for x in inputs[:2]]  # logits, state, ids
    for _ in range(6):
        for run in runs:
            token = int(run[0][0].argmax())
            run[2].append(token)
            run[0], run[1] = cache.advance(run[1], [0], [token])
    for run, expected in zip(runs, alone):
        np.testing.assert_array_equal(run[2], expected)


_MALLOC_CHECK = '''
import numpy as np
from bert4keras_blog.decoding.speed import reuse_freed_memory, release_freed_memory

def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20

reuse_freed_memory()
before = rss_mb()
block = np.ones(300 * 2 ** 18, 'float32')  # 300 MB, touched
del block
kept = rss_mb() - before
ran = release_freed_memory()
print(kept, rss_mb() - before, ran)
'''


@pytest.mark.parametrize('setting', ['tuned', 'default'])
def test_freed_search_buffers_are_kept_for_reuse_then_given_back(setting):
    """Tuned, glibc keeps a freed 300 MB block (the next step reuses its
    pages) until a search ends and gives it back; with
    BERT4KERAS_BLOG_MALLOC=default malloc is left as it is."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    if setting == 'default':
        env['BERT4KERAS_BLOG_MALLOC'] = 'default'
    out = subprocess.run([sys.executable, '-c', _MALLOC_CHECK], capture_output=True,
                         text=True, env=env, check=True).stdout.split()
    kept, after, ran = float(out[-3]), float(out[-2]), out[-1] == 'True'
    if setting == 'tuned':
        assert kept > 250 and ran
    else:
        assert kept < 50 and not ran
    assert after < 50


@pytest.mark.parametrize('shape, Cached', [('lm', LMDecoder), ('t5', T5Decoder)])
def test_weights_changed_between_searches_are_used_and_snapshots_kept(shape, Cached, request):
    """A search reads the output layer from a snapshot that shares the
    variable's buffer. A training step between two searches must reach
    the next search, and must not change a search already under way."""
    model, inputs = request.getfixturevalue(shape)
    decoder = Cached(model, end_id=-1, maxlen=4)
    before, running = decoder.start([inputs[0]])
    variable = (decoder.runner.token.embeddings if getattr(decoder.runner, 'output_lm', None)
                is None else decoder.runner.output_lm.kernel)
    saved = variable.numpy()
    try:
        # what an optimizer does: a sparse (scatter) update to some rows, then a dense one
        rows = tf.constant([0, 5, 7])
        variable.scatter_add(tf.IndexedSlices(tf.ones([3, variable.shape[1]]), rows))
        variable.assign_add(0.01 * tf.ones_like(variable))
        np.testing.assert_array_equal(running.table.numpy(), saved)  # the running search
        fresh = Cached(model, end_id=-1, maxlen=4)
        after, _ = fresh.start([inputs[0]])
        reference = {'lm': ReferenceLM, 't5': ReferenceT5}[shape](
            model, end_id=-1, maxlen=4, start_id=0 if shape == 't5' else None)
        expected, _ = reference.predict([x[None] for x in inputs[0]],
                                        decoder.first_output_ids, None, 1, 'logits')
        np.testing.assert_allclose(log_probabilities(after), expected, atol=1e-4)
        assert np.abs(after - before).max() > 1e-3
        assert fresh.runner is decoder.runner  # the same cached model saw the update
    finally:
        variable.assign(saved)


def step_logits(decoder, inputs, tokens):
    """Logits of the steps that feed ``tokens`` after ``inputs`` (not the prefill's)."""
    logits, state = decoder.start(inputs)
    steps = []
    for token in tokens:
        logits, state = decoder.runner.advance(state, list(range(len(inputs))),
                                              [token] * len(inputs))
        steps.append(logits)
    return np.array(steps), state


@pytest.mark.parametrize('kind', ['gpt', 'albert'])
def test_steps_read_kernel_copies_that_follow_updates(kind):
    """A step of up to 16 rows multiplies by copies of the dense kernels in
    blocks, kept between searches. Its logits equal the full forward pass;
    an optimizer step and an assignment between searches reach the next
    search's steps; a batch of more rows drops the copies and gets the
    same logits. ALBERT's shared block is copied once."""
    paths = tiny(kind)
    model = build_model(kind, paths, application='lm', with_mlm=True)
    prompt = [np.array([2, 15, 9, 31, 4])]
    tokens = [7, 12, 3]
    decoder = LMDecoder(model, end_id=-1, maxlen=4)
    cache = decoder.runner
    reference = ReferenceLM(model, end_id=-1, maxlen=4, start_id=None)

    def expected():
        prefix = np.zeros((1, 0), int)
        out = []
        for token in tokens:
            prefix = np.concatenate([prefix, [[token]]], 1)
            out.append(reference.predict([prompt[0][None]], prefix, None, 1, 'logits')[0][0])
        return np.array(out)

    before, _ = step_logits(decoder, [prompt], tokens)
    assert cache.step_on_copies in cache.traces and cache.copies.kernels is not None
    unique = {id(layer) for layer in cache._dense_layers()}
    assert len(cache.copies.kernels) == len(unique)
    if kind == 'albert':
        assert len(unique) < sum(1 for _ in cache._dense_layers())
    np.testing.assert_allclose(log_probabilities(before[:, 0]), expected(), atol=1e-4)
    copies = cache.copies.kernels

    attention, _, feed_forward, _ = cache.layers[0]
    saved = [v.numpy() for v in (attention.q_dense.kernel, feed_forward.o_dense.kernel)]
    try:
        optimizer = tf.keras.optimizers.Adam(0.5)
        optimizer.apply_gradients([(tf.ones_like(attention.q_dense.kernel),
                                    attention.q_dense.kernel)])
        feed_forward.o_dense.kernel.assign_add(0.5 * tf.ones_like(feed_forward.o_dense.kernel))
        after, _ = step_logits(decoder, [prompt], tokens)
        assert cache.copies.kernels is not copies  # rebuilt
        np.testing.assert_allclose(log_probabilities(after[:, 0]), expected(), atol=1e-4)
        assert np.abs(after - before).max() > 1e-3
        same, _ = step_logits(decoder, [prompt], tokens)
        np.testing.assert_array_equal(same, after)

        few, state = step_logits(decoder, [prompt] * 3, tokens)  # 4 slots
        assert state.slots == 4 and cache.copies.kernels is not None
        many, state = step_logits(decoder, [prompt] * 17, tokens)  # 32 slots
        assert state.slots == 32 and cache.copies.kernels is None
        for batched in (few, many):
            np.testing.assert_allclose(batched[:, 0], after[:, 0], atol=1e-5)
    finally:
        for variable, value in zip((attention.q_dense.kernel, feed_forward.o_dense.kernel),
                                   saved):
            variable.assign(value)


def steps_move_by_rounding(exact, rounded, inputs):
    """One input, then three: the first logits of ``rounded`` equal
    ``exact``'s, later ones differ by rounding only. The rounded
    decoder's states after two steps."""
    states = []
    for batch in ([inputs[0]], inputs[:3]):
        (a, _), (b, _) = exact.start(batch), rounded.start(batch)
        np.testing.assert_array_equal(a, b)
        gaps = np.array([step_differences(exact, rounded, x, 3) for x in batch])
        assert 0 < gaps.max() < 0.1, gaps
        states.append(step_logits(rounded, batch, [7, 12])[1])
    return states


def test_bfloat16_steps_use_bfloat16_copies_at_every_row_count(lm):
    """precision='bfloat16': every step (one row or a batch) multiplies by
    bfloat16 copies of the kernels; the logits move by rounding only, and
    the prompt's logits (read with the model's layers) do not move."""
    model, inputs = lm
    exact = LMDecoder(model, end_id=-1, maxlen=4)
    rounded = LMDecoder(model, end_id=-1, maxlen=4, precision='bfloat16')
    assert rounded.runner is not exact.runner
    for state, slots in zip(steps_move_by_rounding(exact, rounded, inputs), (1, 4)):
        assert state.slots == slots
        assert rounded.runner.step_on_copies in rounded.runner.traces
        assert all(k.dtype == tf.bfloat16 for k in rounded.runner.copies.kernels)
    with pytest.raises(BlogError, match='precision'):
        LMDecoder(model, end_id=-1, maxlen=4, precision='float16')


@pytest.mark.parametrize('k', [1, 3, 12])
def test_beam_candidates_equal_a_partition_of_the_full_scores(k):
    """A beam step reads each row's best ``k`` tokens from ``_Scores``
    without taking the logarithm of every token: the tokens must be the
    best ``k`` of the full ``log_probabilities`` and carry the same bits,
    tokens a constraint rules out included (-inf)."""
    from bert4keras_blog.decoding.processors import Scores as _Scores
    rng = np.random.default_rng(k)
    logits = (rng.standard_normal((5, 3000)) * 4).astype('float32')
    keep = rng.random(3000) < 0.002  # row 2 may take only a handful of tokens
    for temperature in (1, 0.7):
        full = log_probabilities(logits, temperature)
        full[2, ~keep] = -np.inf
        scores = _Scores(logits, temperature)
        scores.ban(2, keep)
        tokens, values = scores.best(1, 3, k)
        np.testing.assert_array_equal(values, np.take_along_axis(full[1:4], tokens, 1))
        np.testing.assert_array_equal(np.sort(values, 1), np.sort(full[1:4], 1)[:, -k:])
        assert (np.isneginf(values[1]).sum() == max(k - keep.sum(), 0))
        probas = scores.probabilities(0, 5)
        np.testing.assert_allclose(probas, np.exp(full), atol=1e-9, rtol=1e-5)


@pytest.mark.parametrize('shape, Cached, Reference, start_id', [
    ('lm', LMDecoder, ReferenceLM, None), ('t5', T5Decoder, ReferenceT5, 0)])
def test_the_same_ids_with_the_speedups_switched_off(shape, Cached, Reference, start_id,
                                                      request):
    """``decoding.speed`` only makes steps faster: with it off (no kernel
    copies, plain weight reads, the public call of each trace, malloc left
    alone) a search still gives bert4keras' decoder's ids."""
    from bert4keras_blog.decoding import speed
    model, inputs = request.getfixturevalue(shape)
    speed.set_enabled(False)
    try:
        decoder = Cached(model, end_id=-1, maxlen=6)
        got = decoder.batch_beam_search(inputs[:2], topk=2)
        assert getattr(decoder.runner, 'copies', None) is None
    finally:
        speed.set_enabled(True)
    assert Cached(model, end_id=-1, maxlen=6).runner is not decoder.runner
    reference = Reference(model, start_id=start_id, end_id=-1, maxlen=6)
    for x, ids in zip(inputs[:2], got):
        np.testing.assert_array_equal(ids, reference.beam_search(x, topk=2))


def test_t5_steps_of_few_slots_are_compiled_once_and_give_the_same_logits(t5):
    """With the speed-ups on, a T5 step of at most ``COMPILED_SLOTS`` slots
    runs as one XLA program: its logits equal the op-by-op step's, and it
    is compiled once per shape, not once per column (a step that took a
    column as a compile-time constant recompiled on every step)."""
    from bert4keras_blog.decoding import speed
    model, inputs = t5
    decoder = T5Decoder(model, end_id=-1, maxlen=24)
    runner = decoder.runner
    tokens = [5, 9, 3]
    compiled, state = step_logits(decoder, [inputs[0]], tokens)
    assert state.slots <= speed.COMPILED_SLOTS and runner.compiled_step in runner.traces
    saved = runner.compiled_slots
    runner.compiled_slots = 0
    try:
        plain, _ = step_logits(decoder, [inputs[0]], tokens)
    finally:
        runner.compiled_slots = saved
    np.testing.assert_allclose(compiled, plain, atol=1e-5)
    logits, state = decoder.start([inputs[0]])
    seconds = []
    for _ in range(20):  # columns 4 and on are new to this shape
        began = time.perf_counter()
        logits, state = runner.advance(state, [0], [int(logits[0].argmax())])
        seconds.append(time.perf_counter() - began)
    assert np.median(seconds[4:]) < 10 * np.median(seconds[:3]), seconds  # a compile: 0.5 s


def test_t5_copies_encoder_keys_values_only_between_inputs(t5):
    """A T5 beam's rows share their input's cross keys/values: a beam
    search of one input copies them once, into the slots its first step
    branches to, however often its rows branch later; over several inputs
    sharing few rows, slots that change input get theirs, and each result
    equals that input decoded alone."""
    model, inputs = t5
    decoder = T5Decoder(model, end_id=-1, maxlen=6)
    runner = decoder.runner
    copies = []
    call = runner.call_step
    runner.call_step = lambda step, *args: (
        step is runner.copy_extra and copies.append(len(args[1]))) or call(step, *args)
    branched = []
    take = slots.State.take_copies
    try:
        slots.State.take_copies = lambda state: branched.append(take(state)) or branched[-1]
        alone = [decoder.beam_search(x, topk=3) for x in inputs]
        assert sum(len(s) for s, _ in branched) > 3 * len(inputs)
        assert copies == [2] * len(inputs)  # beam 3 from one row: two new slots, once
        copies.clear()
        shared = decoder.batch_beam_search(inputs, topk=3, max_rows=3)
    finally:
        slots.State.take_copies = take
        del runner.call_step
    assert sum(copies) > 0
    for a, b in zip(alone, shared):
        np.testing.assert_array_equal(b, a)


def test_t5_bfloat16_steps_round_every_product(t5):
    """precision='bfloat16' on T5: every step's products (the output
    layer's too) read bfloat16 copies, at one slot and at a batch; the
    logits move by rounding only; the first step (float32) does not."""
    model, inputs = t5
    exact = T5Decoder(model, end_id=-1, maxlen=4)
    rounded = T5Decoder(model, end_id=-1, maxlen=4, precision='bfloat16')
    runner = rounded.runner
    assert runner is not exact.runner and runner.output_lm in runner.copies.layers
    for state in steps_move_by_rounding(exact, rounded, inputs):
        assert all(k.dtype == tf.bfloat16 for k in state.kernels)
    assert runner.compiled_step in runner.traces and runner.step in runner.traces
    with pytest.raises(BlogError, match='precision'):
        T5Decoder(model, end_id=-1, maxlen=4, precision='int8')
