"""Post 4: TeaForN, teacher forcing with N nested, weight-sharing passes.

Teacher forcing feeds every position the true previous token, so the model
never sees its own predictions (exposure bias). TeaForN (Goodman et al.,
2020, "TeaForN: Teacher-Forcing with N-grams") runs the same decoder N times:
pass 1 is ordinary teacher forcing; in pass k+1 a target position t is fed,
instead of the true token's embedding, a vector pass k produced at position
t-1; positions outside the target (the source, the start token) keep their
tokens. Every pass predicts the same true next tokens and the losses are
added with weights, pass 1 largest. The feed-back path is differentiable and
the paper backpropagates through it; that is the default here. Inference is
unchanged: only pass 1 exists at decoding time.

The passes re-run the bert4keras model's own ``call`` with the token
embedding of the target positions replaced, so every layer is the model's
(found by name, as bert4keras shares layers) and the training model has
exactly the ordinary model's weights; save and decode the ordinary model.

Covered: BERT-family models with ``application='unilm'`` (target = segment 1)
and ``application='lm'`` (target = every position after the first). T5's
decoder is not covered.

Public API:
    TeaForN(transformer, n=3, weights=None, decay=0.5, feedback='output',
            topk=None, stop_gradient=False, application='unilm')
        .build() -> keras.Model to compile and fit (losses added inside)
        .feedback(vectors, probabilities) -> vectors fed to the next pass;
            override it in a subclass to feed back something else.
    pass_weights(n, weights=None, decay=0.5) -> list of floats

Example:
```python
from bert4keras_blog.checkpoints import tiny, build_model
from bert4keras_blog.teaforn import TeaForN
transformer = build_model('bert', tiny('bert'), application='unilm', with_mlm=True,
                          return_keras_model=False)
trainer = TeaForN(transformer, n=3).build()
trainer.compile(optimizer='adam')
assert trainer.count_params() == transformer.model.count_params()
```
"""
from bert4keras_blog.compat import K, keras, tf
from bert4keras_blog.errors import SettingError
from bert4keras_blog.compat.internals import token_embeddings_replaced

__all__ = ['TeaForN', 'pass_weights']


def pass_weights(n, weights=None, decay=0.5):
    """Loss weight of each pass: ``weights`` as given, else ``decay**k``.

    Raises:
        SettingError: wrong count, or pass 1 not the largest.
    """
    weights = list(weights) if weights is not None else [decay ** k for k in range(n)]
    if len(weights) != n:
        raise SettingError('weights has %d entries for n=%d passes' % (len(weights), n))
    if any(w > weights[0] for w in weights):
        raise SettingError('pass 1 must weigh the most; got weights=%s' % weights)
    return [float(w) for w in weights]


class _FeedBack(keras.layers.Layer):
    """Token vectors for the next pass: fed-back vectors at target positions,
    true embeddings elsewhere. Carries the padding mask of the token ids, as
    the embedding lookup it replaces would. Owns no weights."""

    def __init__(self, build_inputs, **kwargs):
        super().__init__(**kwargs)
        self.build_inputs = build_inputs

    def call(self, inputs):
        return self.build_inputs(*inputs)

    def compute_mask(self, inputs, mask=None):
        return K.not_equal(inputs[0], 0)


class _PassLoss(keras.layers.Layer):
    """Weighted cross-entropy of each pass on the target positions."""

    def __init__(self, weights, **kwargs):
        super().__init__(**kwargs)
        self.pass_weights = weights

    def call(self, inputs):
        token_ids, target_mask = inputs[:2]
        y_true = token_ids[:, 1:]
        y_mask = K.cast(target_mask[:, 1:], K.floatx())
        total = 0.0
        for k, (weight, probs) in enumerate(zip(self.pass_weights, inputs[2:])):
            loss = K.sparse_categorical_crossentropy(y_true, probs[:, :-1])
            loss = K.sum(loss * y_mask) / K.maximum(K.sum(y_mask), 1.0)
            self.add_metric(loss, name='pass%d_loss' % (k + 1))
            total = total + weight * loss
        self.add_loss(total)
        return inputs[2]


class TeaForN(object):
    """Builds the TeaForN training model around a bert4keras model.

    Args:
        transformer: bert4keras model object (``return_keras_model=False``),
            built with ``with_mlm=True`` and ``application='unilm'`` or 'lm'.
        n: int. Number of passes; 1 is plain teacher forcing. Defaults to 3.
        weights: list of n floats or None. Loss weight per pass.
        decay: float. With ``weights=None``, pass k weighs ``decay**(k-1)``.
        feedback: str. 'output': the vector the tied output layer turns into
            logits (after ``MLM-Norm``); 'expected_embedding': the
            probability-weighted mean of the token embeddings.
        topk: int or None. With 'expected_embedding', average only over the
            k most probable tokens (renormalised).
        stop_gradient: bool. Cut gradients through the feed-back path. The
            paper backpropagates through it; defaults to False.
        application: str. 'unilm' or 'lm', as the model was built.
    """

    def __init__(self, transformer, n=3, weights=None, decay=0.5, feedback='output',
                 topk=None, stop_gradient=False, application='unilm'):
        if feedback not in ('output', 'expected_embedding'):
            raise SettingError("feedback must be 'output' or 'expected_embedding', got %r"
                             % (feedback,))
        if 'MLM-Norm' not in transformer.layers:
            raise SettingError('TeaForN needs a model built with with_mlm=True')
        if application not in ('unilm', 'lm'):
            raise SettingError("application must be 'unilm' or 'lm', got %r" % (application,))
        self.transformer, self.n = transformer, n
        self.weights = pass_weights(n, weights, decay)
        self.feedback_kind, self.topk = feedback, topk
        self.stop_gradient, self.application = stop_gradient, application
        self.pass_outputs = []

    # -- one pass -------------------------------------------------------
    def _run_pass(self, token_vectors=None):
        """Re-runs the model's own call; returns (probabilities, MLM-Norm output).

        With ``token_vectors`` the ``Embedding-Token`` lookup is replaced by
        them; the output head's use of the same layer (``mode='dense'``) is not.
        """
        with token_embeddings_replaced(self.transformer, token_vectors,
                                       record=('MLM-Norm',)) as recorded:
            probabilities = self.transformer.call(self.transformer.inputs)
        if isinstance(probabilities, list):
            probabilities = probabilities[0]
        return probabilities, recorded['MLM-Norm']

    def feedback(self, vectors, probabilities):
        """The vector each position hands to the next position of the next pass.

        Args:
            vectors: (batch, seq_len, embedding_size), the MLM-Norm output.
            probabilities: (batch, seq_len, vocab).

        Returns:
            (batch, seq_len, embedding_size).
        """
        if self.feedback_kind == 'output':
            return vectors
        table = self.transformer.layers['Embedding-Token'].embeddings
        if self.topk:
            top = tf.math.top_k(probabilities, self.topk)
            weights = top.values / K.sum(top.values, axis=-1, keepdims=True)
            return tf.einsum('btk,btke->bte', weights, tf.gather(table, top.indices))
        return tf.einsum('btv,ve->bte', probabilities, table)

    def _target_mask(self, token_ids, segment_ids):
        """Where the input is a generated token: fed back in passes > 1."""
        token_ids = K.cast(token_ids, 'int32')  # bert4keras' inputs are float
        real = K.not_equal(token_ids, 0)
        if self.application == 'unilm':
            return tf.logical_and(K.equal(K.cast(segment_ids, 'int32'), 1), real)
        first = K.equal(tf.range(tf.shape(token_ids)[1])[None], 0)
        return tf.logical_and(tf.logical_not(first), real)

    def _next_inputs(self, token_ids, segment_ids, hidden, probabilities):
        table = self.transformer.layers['Embedding-Token'].embeddings
        true_vectors = tf.gather(table, K.cast(token_ids, 'int32'))
        fed = self.feedback(hidden, probabilities)
        if self.stop_gradient:
            fed = tf.stop_gradient(fed)
        shifted = tf.pad(fed[:, :-1], [[0, 0], [1, 0], [0, 0]])  # position t gets t-1's vector
        use = self._target_mask(token_ids, segment_ids)[..., None]
        return tf.where(use, shifted, true_vectors)

    def build(self):
        """The training model: inputs as the ordinary model's, losses inside.

        Per-pass cross-entropies are reported as metrics ``pass1_loss`` ...
        """
        token_ids, segment_ids = self.transformer.inputs[:2]
        probabilities, hidden = self._run_pass()
        outputs = [probabilities]
        self.pass_outputs = [(probabilities, hidden)]
        for _ in range(1, self.n):
            vectors = _FeedBack(self._next_inputs)([token_ids, segment_ids, hidden,
                                                    probabilities])
            probabilities, hidden = self._run_pass(vectors)
            outputs.append(probabilities)
            self.pass_outputs.append((probabilities, hidden))
        target = keras.layers.Lambda(lambda args: self._target_mask(*args))(
            [token_ids, segment_ids])
        output = _PassLoss(self.weights)([token_ids, target] + outputs)
        return keras.models.Model(self.transformer.inputs, output)
