"""bert4keras' own way of decoding, as its examples write it: the baseline.

``AutoRegressiveDecoder`` subclasses whose ``predict`` runs the whole model
over source + prefix for every new token. The cached decoders must give the
same ids; tests and ``benchmarks/decoding.py`` compare against these.

Public API:
    ReferenceUniLM(model, start_id=None, end_id, maxlen): inputs [token_ids, segment_ids]
    ReferenceLM(model, start_id=None, end_id, maxlen): inputs [token_ids]
    ReferenceT5(t5, start_id=0, end_id, maxlen): inputs [encoder_token_ids];
        ``encoder_once=True`` runs the encoder once and the decoder per step,
        as bert4keras' T5 examples do.
"""
import numpy as np

from bert4keras_blog import compat  # noqa: F401
from bert4keras.snippets import AutoRegressiveDecoder

__all__ = ['ReferenceUniLM', 'ReferenceLM', 'ReferenceT5']


class _WholeSequence(AutoRegressiveDecoder):
    """A BERT-family model run over the input and the whole prefix each step."""

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def sequence(self, inputs, output_ids):
        """(token_ids, segment_ids) of the input followed by the prefix."""
        raise NotImplementedError

    @AutoRegressiveDecoder.wraps(default_rtype='probas')
    def predict(self, inputs, output_ids, states):
        return self.last_token(self.model).predict(
            list(self.sequence(inputs, output_ids)), verbose=0)


class ReferenceUniLM(_WholeSequence):
    """Seq2seq on a UniLM: source, then the prefix with segment 1."""

    def sequence(self, inputs, output_ids):
        token_ids, segment_ids = inputs
        return (np.concatenate([token_ids, output_ids], 1),
                np.concatenate([segment_ids, np.ones_like(output_ids)], 1))


class ReferenceLM(_WholeSequence):
    """A left-to-right LM on BERT: prompt and prefix, segment 0."""

    def sequence(self, inputs, output_ids):
        token_ids = np.concatenate([inputs[0], output_ids], 1)
        return token_ids, np.zeros_like(token_ids)


class ReferenceT5(AutoRegressiveDecoder):
    """T5/mT5: the whole seq2seq model per step, or (``encoder_once``) the
    encoder once and the decoder per step."""

    def __init__(self, t5, encoder_once=False, **kwargs):
        super().__init__(**kwargs)
        self.t5, self.encoder_once = t5, encoder_once

    @AutoRegressiveDecoder.wraps(default_rtype='probas')
    def predict(self, inputs, output_ids, states):
        model = self.t5.decoder if self.encoder_once else self.t5.model
        return self.last_token(model).predict([inputs[0], output_ids], verbose=0)

    def generate(self, token_ids, topk):
        """Beam search from encoder token ids (encoder run once if set)."""
        if self.encoder_once:
            encoded = self.t5.encoder.predict(np.array([token_ids]), verbose=0)
            return self.beam_search([encoded[0]], topk=topk)
        return self.beam_search([np.array(token_ids)], topk=topk)
