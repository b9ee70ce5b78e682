"""Incremental decoding with a key/value cache for bert4keras models.

bert4keras' ``AutoRegressiveDecoder`` runs the whole model over the whole
prefix for every new token. The decoders here run the prompt once, keep each
layer's keys and values, and then feed one token per step, reusing the
model's own layers (embeddings, dense, feed-forward, layer norms, output
head) so the numbers are the model's. Only attention over the cache is
written here. Search (beam, greedy, sampling) follows
``AutoRegressiveDecoder`` step for step, so results are the same.

Model shapes:
    UniLMDecoder: ``build_transformer_model(..., application='unilm')``
        (BERT, RoBERTa, ALBERT checkpoints). ``inputs = [token_ids,
        segment_ids]`` of the source; generated tokens get segment 1.
    LMDecoder: ``application='lm'`` (GPT-style on a BERT checkpoint).
        ``inputs = [token_ids]`` of the prompt.
    T5Decoder: ``model='t5.1.1'`` / ``'mt5.1.1'`` built with
        ``return_keras_model=False``. ``inputs = [encoder_token_ids]``; the
        encoder runs once, cross-attention keys/values are computed once.

Public API:
    UniLMDecoder, LMDecoder, T5Decoder(model, end_id, maxlen, minlen=1, start_id=..., precision=...)
        .beam_search(inputs, topk, temperature=1, min_ends=1, constraint=None) -> ids
        .batch_beam_search(batch, topk, ..., candidates=False, max_rows=None)
            -> list of ids
        .greedy(inputs, ...) / .batch_greedy(batch, ..., max_rows=None)
        .random_sample(inputs, n, topk=None, topp=None, temperature=1,
                       min_ends=1, seed=None, constraint=None) -> list of ids
        .batch_random_sample(batch, n=1, ..., max_rows=None) -> list per input
        .cache_bytes(batch_size, length) -> int

``max_rows`` caps the cache rows (beams or samples of all inputs) of one
step: the other inputs wait and take the rows of those that finish, so a
long list of requests runs as one stream of full steps.

Reference decoders (bert4keras' ``AutoRegressiveDecoder`` as its examples
write it, the baseline the tests and benchmark compare against):
    ReferenceUniLM, ReferenceLM, ReferenceT5

Modules, one job each (as KerasHub's cached attention and samplers, and
Hugging Face's logits processors, split them):
    attention   attention over a key/value cache (``CachedAttention``)
    slots       one search's slots and columns (``State``, growing, branching)
    runner      the runner protocol (start / admit / advance) and its base
    bert, t5    one runner per model family (``bert_runner``, ``t5_runner``)
    processors  step scores and logits rules (Temperature, Constraint, TopK, TopP)
    strategies  ``Search`` owns the loop; ``BeamSearch``, ``Sampling``
    speed       kernel copies, buffer-sharing reads, flat calls, malloc
                (``speed.set_enabled(False)`` turns all of it off)
    search      the decoders above, bert4keras' API
    reference   bert4keras' ``AutoRegressiveDecoder`` as its examples use it

A ``constraint`` is ``f(input_index, output_ids) -> allowed`` returning the
token ids allowed next (any iterable or a boolean mask over the vocabulary),
or None for no restriction.

Example:
```python
from bert4keras_blog.checkpoints import tiny, build_model
from bert4keras_blog.decoding import UniLMDecoder
paths = tiny('bert')
model = build_model('bert', paths, application='unilm', with_mlm=True)
decoder = UniLMDecoder(model, end_id=3, maxlen=16)
ids = decoder.beam_search([[2, 100, 200, 3], [0, 0, 0, 0]], topk=3)
```
    log_probabilities(logits, temperature=1.0) -> log(softmax + 1e-12), the beam score.
    step_differences(decoder, other, inputs, steps) -> largest |logit gap| per step.
    bert_runner(model, lm, precision='float32'), t5_runner(t5): the shared
        runner of a model, for callers that drive the steps themselves
        (``xiangqi.player`` scores every legal move this way).
    decoder.search(strategy, batch): any ``strategies.Search``, with any
        ``processors.LogitsRule`` list.
"""
from bert4keras_blog.decoding.bert import bert_runner
from bert4keras_blog.decoding.processors import log_probabilities
from bert4keras_blog.decoding.reference import ReferenceLM, ReferenceT5, ReferenceUniLM
from bert4keras_blog.decoding.search import LMDecoder, T5Decoder, UniLMDecoder, step_differences
from bert4keras_blog.decoding.t5 import t5_runner

__all__ = ['UniLMDecoder', 'LMDecoder', 'T5Decoder', 'log_probabilities', 'step_differences',
           'ReferenceUniLM', 'ReferenceLM', 'ReferenceT5', 'bert_runner', 't5_runner']
