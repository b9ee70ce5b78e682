"""Keras 2.3-era training tricks, written the way users' scripts write them.

Run as a script (``python tests/tf1_idioms_worker.py``): the backend reads this
file, finds ``K.gradients`` and ``_make_train_function`` and switches to the
graph-mode training loop by itself. Prints one JSON object with what each
trick did and what a NumPy computation of the same step says it should do;
``test_bert4keras_idioms.py`` compares them.
"""
import json
import sys

import numpy as np

import bert4keras_blog  # noqa: F401
from bert4keras.backend import keras, search_layer, K

VOCAB, WIDTH, CLASSES, LR, EPSILON = 11, 4, 3, 0.5, 0.7


def tiny_classifier(seed, dropout=0.0):
    keras.utils.set_random_seed(seed)
    tokens = keras.layers.Input(shape=(None,), name='Input-Token')
    embedded = keras.layers.Embedding(VOCAB, WIDTH, name='Embedding-Token')(tokens)
    if dropout:  # the training-time branch is a tf.cond, as in bert4keras models
        embedded = keras.layers.Dropout(dropout)(embedded)
    pooled = keras.layers.GlobalAveragePooling1D()(embedded)
    probs = keras.layers.Dense(CLASSES, activation='softmax', name='Classifier')(pooled)
    return keras.models.Model(tokens, probs)


def numpy_loss_and_grads(E, W, b, x, y, embedded=None):
    """Mean sparse cross-entropy of the model above, and its exact gradients:
    (loss, d/dE, d/dW, d/db, d/d(the embedded tokens E[x]))."""
    embedded = E[x] if embedded is None else embedded
    pooled = embedded.mean(axis=1)
    logits = pooled @ W + b
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    n = len(x)
    loss = -np.log(probs[np.arange(n), y]).mean()
    dlogits = probs.copy()
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    dW, db = pooled.T @ dlogits, dlogits.sum(axis=0)
    dembedded = np.repeat((dlogits @ W.T / x.shape[1])[:, None, :], x.shape[1], axis=1)
    dE = np.zeros_like(E)
    np.add.at(dE, x, dembedded)
    return loss, dE, dW, db, dembedded


def batch():
    rng = np.random.default_rng(3)
    return rng.integers(0, VOCAB, size=(6, 5)), rng.integers(0, CLASSES, size=(6,))


def add_fast_gradient_method(model, embedding_name, epsilon):
    """FGM: perturb the embeddings along the loss gradient, step, restore."""
    if model.train_function is None:
        model._make_train_function()
    old_train_function = model.train_function
    embedding_layer = search_layer(model.outputs[0], embedding_name)
    embeddings = embedding_layer.embeddings
    gradients = K.zeros_like(embeddings) + K.gradients(model.total_loss, [embeddings])[0]
    feeds = model._feed_inputs + model._feed_targets + model._feed_sample_weights
    embedding_gradients = K.function(inputs=feeds, outputs=[gradients])

    def train_function(inputs):
        grads = embedding_gradients(inputs)[0]
        delta = epsilon * grads / (np.sqrt((grads ** 2).sum()) + 1e-8)
        K.set_value(embeddings, K.eval(embeddings) + delta)
        outputs = old_train_function(inputs)
        K.set_value(embeddings, K.eval(embeddings) - delta)
        return outputs

    model.train_function = train_function


def fast_gradient_method_step():
    x, y = batch()
    model = tiny_classifier(seed=1)
    model.compile(loss='sparse_categorical_crossentropy',
                  optimizer=keras.optimizers.legacy.SGD(LR))
    E, (W, b) = model.get_layer('Embedding-Token').get_weights()[0], \
        model.get_layer('Classifier').get_weights()
    add_fast_gradient_method(model, 'Embedding-Token', EPSILON)
    model.train_on_batch(x, y)
    _, g, _, _, _ = numpy_loss_and_grads(E, W, b, x, y)
    delta = EPSILON * g / (np.sqrt((g ** 2).sum()) + 1e-8)
    _, dE, dW, db, _ = numpy_loss_and_grads(E + delta, W, b, x, y)
    return {
        'embeddings': model.get_layer('Embedding-Token').get_weights()[0].tolist(),
        'expected_embeddings': (E - LR * dE).tolist(),
        'plain_sgd_embeddings': (E - LR * numpy_loss_and_grads(E, W, b, x, y)[1]).tolist(),
        'kernel': model.get_layer('Classifier').get_weights()[0].tolist(),
        'expected_kernel': (W - LR * dW).tolist(),
    }


def gradient_penalty():
    x, y = batch()
    model = tiny_classifier(seed=2, dropout=0.1)

    def loss_with_gradient_penalty(y_true, y_pred):
        y_true = K.cast(K.reshape(y_true, K.shape(y_pred)[:-1]), 'int32')
        loss = K.mean(K.sparse_categorical_crossentropy(y_true, y_pred))
        embeddings = search_layer(y_pred, 'Embedding-Token').embeddings
        penalty = K.sum(K.gradients(loss, [embeddings])[0].values ** 2)
        return loss + 0.5 * EPSILON * penalty

    model.compile(loss=loss_with_gradient_penalty, optimizer=keras.optimizers.legacy.SGD(LR))
    E, (W, b) = model.get_layer('Embedding-Token').get_weights()[0], \
        model.get_layer('Classifier').get_weights()
    loss = numpy_loss_and_grads(E, W, b, x, y)[0]
    # K.gradients w.r.t. the embedding matrix is an IndexedSlices with one row
    # per token position, so the penalty is |dL/d(embedded tokens)|^2: here
    # from a central finite difference of the loss, entry by entry.
    h, embedded = 1e-4, E[x].astype('float64')
    fd = np.zeros_like(embedded)
    for index in np.ndindex(*embedded.shape):
        step = np.zeros_like(embedded)
        step[index] = h
        fd[index] = (numpy_loss_and_grads(E, W, b, x, y, embedded + step)[0]
                     - numpy_loss_and_grads(E, W, b, x, y, embedded - step)[0]) / (2 * h)
    keras_loss = float(model.test_on_batch(x, y))
    for _ in range(20):  # training differentiates the penalty: a second-order gradient
        model.train_on_batch(x, y)
    return {'keras_loss': keras_loss, 'plain_loss': float(loss),
            'expected_loss': float(loss + 0.5 * EPSILON * (fd ** 2).sum()),
            'loss_after_training': float(model.test_on_batch(x, y))}


class Gradient(keras.layers.Layer):
    """d(probability of the label)/d(embedding output) times that output."""

    def call(self, inputs):
        embedded, probs, label = inputs
        chosen = K.sum(probs * K.one_hot(K.cast(label[:, 0], 'int32'), CLASSES), axis=1)
        return K.gradients(chosen, [embedded])[0] * embedded


def integrated_gradient_layer():
    x, y = batch()
    model = tiny_classifier(seed=3)
    label = keras.layers.Input(shape=(1,))
    embedded = model.get_layer('Embedding-Token').output
    grads = Gradient()([embedded, model.output, label])
    gradient_model = keras.models.Model(model.inputs + [label], grads)
    got = gradient_model.predict([x, y[:, None]])
    E, (W, b) = model.get_layer('Embedding-Token').get_weights()[0], \
        model.get_layer('Classifier').get_weights()
    pooled = E[x].mean(axis=1)
    logits = pooled @ W + b
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    p = probs[np.arange(len(x)), y]
    # d p_y / d logits = p_y (onehot - p); through the mean over positions.
    dlogits = p[:, None] * (np.eye(CLASSES)[y] - probs)
    dembedded = np.repeat(((dlogits @ W.T) / x.shape[1])[:, None, :], x.shape[1], axis=1)
    return {'gradients': got.tolist(), 'expected': (dembedded * E[x]).tolist()}


if __name__ == '__main__':
    results = {'executing_eagerly': __import__('tensorflow').executing_eagerly()}
    for name in sys.argv[1:] or ['fast_gradient_method_step', 'gradient_penalty',
                                 'integrated_gradient_layer']:
        results[name] = globals()[name]()
    print(json.dumps(results))
