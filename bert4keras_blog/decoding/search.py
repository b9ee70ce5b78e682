"""The decoders: bert4keras' ``AutoRegressiveDecoder`` API (beam search,
greedy, sampling) over a cached runner, with the same results.

Public API:
    UniLMDecoder, LMDecoder, T5Decoder (see ``decoding``), their
        ``start(batch, width=None) -> (logits, state)`` and ``runner``.
    step_differences(decoder, other, inputs, steps).
"""
import numpy as np

from bert4keras_blog.decoding.bert import bert_runner
from bert4keras_blog.decoding.processors import rules
from bert4keras_blog.decoding.strategies import BeamSearch, Sampling
from bert4keras_blog.decoding.t5 import t5_runner

__all__ = ['UniLMDecoder', 'LMDecoder', 'T5Decoder', 'step_differences']


class CachedDecoder(object):
    """What the three decoders share: the search methods over ``runner``."""

    start_id = None

    def __init__(self, runner, end_id, maxlen, minlen=1, start_id=None):
        self.runner = runner
        self.end_id, self.maxlen, self.minlen = end_id, maxlen, minlen
        if start_id is not None:
            self.start_id = start_id
        self.first_output_ids = np.empty((1, 0), dtype=int) if self.start_id is None \
            else np.array([[self.start_id]])

    def start(self, batch, width=None, rows=None):
        """Starts a search of ``batch`` on the runner: (logits, state);
        ``rows``: the most rows it will hold."""
        return self.runner.start(batch, width=width, new_tokens=self.maxlen, rows=rows)

    def cache_bytes(self, batch_size, length):
        """Memory of the key/value cache for ``batch_size`` rows of ``length`` tokens."""
        return self.runner.cache_bytes(batch_size, length)

    def search(self, strategy, batch):
        """Runs a strategy (``strategies.Search``) on ``batch``: its hypotheses per input."""
        return strategy.run(self.runner, batch, self.end_id, self.maxlen, self.minlen,
                            self.first_output_ids, self.start)

    def batch_beam_search(self, batch, topk, temperature=1, min_ends=1, constraint=None,
                          candidates=False, max_rows=None):
        """Beam search for several inputs at once.

        Args:
            batch: list of per-input ``inputs`` (see the module docstring).
            topk: int. Beam size; 1 is greedy.
            temperature: float. Divides the logits. Defaults to 1.
            min_ends: int. A beam is finished after this many end tokens.
            constraint: callable or None. See the module docstring.
            candidates: bool. Also return the beams that finished on the way.
            max_rows: int or None. At most this many cache rows (beams of all
                inputs together) in one step; inputs wait and take the rows
                of those that finish. None: all inputs at once.

        Returns:
            list of 1-D int arrays, the best sequence of each input (with
            the start token first where the model has one); with
            ``candidates``, for each input a list of (ids, log-probability):
            that best sequence first, then the beams that ended before it,
            most probable first.
        """
        beams = self.search(BeamSearch(topk, rules(temperature, constraint), min_ends,
                                       max_rows), batch)
        if candidates:
            return [b.finished[-1:] + sorted(b.finished[:-1], key=lambda c: -c[1])
                    for b in beams]
        return [b.result for b in beams]

    def beam_search(self, inputs, topk, temperature=1, min_ends=1, constraint=None):
        """``AutoRegressiveDecoder.beam_search`` for one input; returns its ids."""
        return self.batch_beam_search([inputs], topk, temperature, min_ends, constraint)[0]

    def batch_greedy(self, batch, temperature=1, min_ends=1, constraint=None, max_rows=None):
        """Greedy decoding (beam size 1) of several inputs."""
        return self.batch_beam_search(batch, 1, temperature, min_ends, constraint,
                                      max_rows=max_rows)

    def greedy(self, inputs, temperature=1, min_ends=1, constraint=None):
        """Greedy decoding of one input."""
        return self.batch_greedy([inputs], temperature, min_ends, constraint)[0]

    def batch_random_sample(self, batch, n=1, topk=None, topp=None, temperature=1,
                            min_ends=1, seed=None, constraint=None, max_rows=None):
        """Samples ``n`` sequences for each input of ``batch``; the other
        arguments as ``random_sample`` and ``batch_beam_search``. Returns
        one list of ``n`` arrays per input."""
        strategy = Sampling(n, seed, rules(temperature, constraint, topk, topp), min_ends,
                            max_rows)
        return [s.result for s in self.search(strategy, batch)]

    def random_sample(self, inputs, n, topk=None, topp=None, temperature=1, min_ends=1,
                      seed=None, constraint=None):
        """Samples ``n`` sequences for one input.

        Args:
            inputs: the input (see the module docstring).
            n: int. How many samples.
            topk: int or None. Sample among the ``topk`` most probable tokens.
            topp: float or None. Sample among the most probable tokens whose
                probabilities first reach ``topp`` in total.
            temperature: float. Defaults to 1.
            min_ends: int. Defaults to 1.
            seed: int or None. Same seed, same samples.
            constraint: callable or None.

        Returns:
            list of ``n`` 1-D int arrays, in the order they finished.
        """
        return self.batch_random_sample([inputs], n, topk, topp, temperature, min_ends, seed,
                                        constraint)[0]


def step_differences(decoder, other, inputs, steps):
    """The largest |logit difference| at each of ``steps`` steps between
    two decoders of one model (float32 and bfloat16, say), both fed
    ``decoder``'s greedy tokens after ``inputs``. The prompt's own logits
    are left out: both read it with the model's layers."""
    (mine, state), (theirs, other_state) = decoder.start([inputs]), other.start([inputs])
    gaps = []
    for _ in range(steps):
        token = int(mine[0].argmax())
        mine, state = decoder.runner.advance(state, [0], [token])
        theirs, other_state = other.runner.advance(other_state, [0], [token])
        gaps.append(float(np.abs(mine - theirs).max()))
    return gaps


class UniLMDecoder(CachedDecoder):
    """Cached decoding for ``application='unilm'`` models (seq2seq on BERT).

    Args:
        model: the Keras model (or bert4keras object) from
            ``build_transformer_model(..., application='unilm', with_mlm=True)``.
        end_id: int. The end token, ``compat.special_tokens(tokenizer).end``.
        maxlen: int. At most this many new tokens.
        minlen: int. Ends before this length do not count. Defaults to 1.
        precision: 'float32' (default: the same ids as bert4keras' decoder)
            or 'bfloat16': the steps' dense products in bfloat16, on copies
            of the kernels (about half the weights' memory); faster for
            batches, within rounding of float32 (figures in docs/decoding.md).

    ``inputs = [token_ids, segment_ids]`` of the source, as in bert4keras'
    seq2seq examples; the first token is predicted at the source's last
    position, later tokens carry segment 1.
    """

    def __init__(self, model, end_id, maxlen, minlen=1, precision='float32'):
        super().__init__(bert_runner(model, False, precision), end_id, maxlen, minlen)


class LMDecoder(CachedDecoder):
    """Cached decoding for ``application='lm'`` models (GPT-style on BERT).

    Args: as ``UniLMDecoder``. ``inputs = [token_ids]`` of the prompt.
    """

    def __init__(self, model, end_id, maxlen, minlen=1, precision='float32'):
        super().__init__(bert_runner(model, True, precision), end_id, maxlen, minlen)


class T5Decoder(CachedDecoder):
    """Cached decoding for T5 v1.1 / mT5 (``return_keras_model=False``).

    Args:
        model: the bert4keras T5 object.
        end_id: int. ``</s>`` is 1 in mT5's vocabulary.
        maxlen: int. At most this many decoder steps.
        minlen: int. Defaults to 1.
        start_id: int. The decoder's first input. Defaults to 0 (``<pad>``).
        precision: 'float32' (default: the same ids as bert4keras' decoder)
            or 'bfloat16': every step's products, the output layer's
            included, on bfloat16 copies of the kernels; within rounding of
            float32 (figures in docs/decoding.md).

    ``inputs = [encoder_token_ids]``; results start with ``start_id``, as
    ``AutoRegressiveDecoder``'s do.
    """

    start_id = 0

    def __init__(self, model, end_id, maxlen, minlen=1, start_id=0, precision='float32'):
        super().__init__(t5_runner(model, precision), end_id, maxlen, minlen, start_id)

    def start(self, batch, width=None, rows=None):
        return self.runner.start(batch, width, self.maxlen, self.start_id, rows)
