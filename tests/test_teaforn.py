"""Post 4: TeaForN shares every weight, reduces to teacher forcing at n=1,
and really feeds each pass's outputs to the next."""
import numpy as np
import pytest

from bert4keras_blog.compat import K, keras, tf
from bert4keras.snippets import sequence_padding  # noqa: I100  (after bert4keras_blog)
from bert4keras_blog.checkpoints import build_model, tiny
from bert4keras_blog.errors import SettingError
from bert4keras_blog.teaforn import TeaForN, pass_weights

TOKENS = [[2, 100, 200, 300, 3, 400, 500, 3], [2, 100, 3, 600, 700, 800, 900, 3]]
SEGMENTS = [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]]


def transformer(application='unilm'):
    keras.utils.set_random_seed(0)
    return build_model('bert', tiny('bert'), application=application, with_mlm=True,
                       return_keras_model=False, dropout_rate=0)


def batch(tokens=TOKENS, segments=SEGMENTS, width=None):
    return [sequence_padding(tokens, length=width), sequence_padding(segments, length=width)]


def teacher_forcing(model):
    """Plain teacher forcing: post 3's loss on the ordinary model."""
    token_ids, segment_ids = model.inputs
    probs = model.output
    y_mask = K.cast(segment_ids[:, 1:], K.floatx())
    loss = K.sparse_categorical_crossentropy(token_ids[:, 1:], probs[:, :-1])
    return K.sum(loss * y_mask) / K.sum(y_mask)


def loss_and_grads(model, inputs, loss_fn=None):
    with tf.GradientTape() as tape:
        if loss_fn is None:
            model(inputs, training=False)
            loss = tf.add_n(model.losses)
        else:
            loss = loss_fn(inputs)
    return float(loss), tape.gradient(loss, model.trainable_weights)


def test_n1_equals_teacher_forcing_in_loss_and_every_gradient():
    t = transformer()
    trainer = TeaForN(t, n=1).build()
    plain = keras.models.Model(t.model.inputs, t.model.output)
    inputs = [tf.constant(x, tf.float32) for x in batch()]

    def plain_loss(x):
        probs = plain(x, training=False)
        y_mask = K.cast(x[1][:, 1:], K.floatx())
        loss = K.sparse_categorical_crossentropy(x[0][:, 1:], probs[:, :-1])
        return K.sum(loss * y_mask) / K.sum(y_mask)

    ours, our_grads = loss_and_grads(trainer, inputs)
    theirs, their_grads = loss_and_grads(plain, inputs, plain_loss)
    assert abs(ours - theirs) <= 1e-6
    assert len(our_grads) == len(their_grads)
    names = [w.name for w in trainer.trainable_weights]
    assert names == [w.name for w in plain.trainable_weights]
    for g1, g2 in zip(our_grads, their_grads):
        np.testing.assert_allclose(tf.convert_to_tensor(g1).numpy(),
                                   tf.convert_to_tensor(g2).numpy(), atol=1e-6)


@pytest.mark.parametrize('n', [2, 3])
def test_passes_share_all_weights(n):
    t = transformer()
    trainer = TeaForN(t, n=n).build()
    assert trainer.count_params() == t.model.count_params()
    assert {id(w) for w in trainer.weights} == {id(w) for w in t.model.weights}


class ShiftedFeedback(TeaForN):
    """A subclass that changes what pass k hands to pass k+1."""

    def feedback(self, vectors, probabilities):
        # Not a constant shift: the embedding LayerNorm would remove that.
        return super().feedback(vectors, probabilities) * 2.0


def per_pass(trainer, inputs):
    trainer.compile()
    return trainer.evaluate(inputs, verbose=0, return_dict=True)


def test_pass_k_plus_1_consumes_pass_k_outputs():
    inputs = batch()
    base = per_pass(TeaForN(transformer(), n=3).build(), inputs)
    shifted = per_pass(ShiftedFeedback(transformer(), n=3).build(), inputs)
    assert abs(base['pass1_loss'] - shifted['pass1_loss']) < 1e-6  # pass 1 sees true tokens
    assert abs(base['pass2_loss'] - shifted['pass2_loss']) > 1e-3
    assert abs(base['pass3_loss'] - shifted['pass3_loss']) > 1e-3
    expected = base['pass1_loss'] + 0.5 * base['pass2_loss'] + 0.25 * base['pass3_loss']
    assert abs(base['loss'] - expected) < 1e-4


def test_pass_2_reads_fed_back_vectors_not_true_target_tokens():
    t = transformer()
    teaforn = TeaForN(t, n=2)
    teaforn.build()
    pass1 = keras.models.Model(t.inputs, teaforn.pass_outputs[0][0])
    pass2 = keras.models.Model(t.inputs, teaforn.pass_outputs[1][0])
    changed = [list(TOKENS[0]), list(TOKENS[1])]
    changed[0][6] = 777  # a target position (segment 1)
    a1, b1 = pass1.predict(batch(), verbose=0), pass1.predict(batch(changed), verbose=0)
    a2, b2 = pass2.predict(batch(), verbose=0), pass2.predict(batch(changed), verbose=0)
    assert np.abs(a1[0, 6] - b1[0, 6]).max() > 1e-4  # pass 1 reads the true token
    # Pass 2's input at 6 is pass 1's vector from 5, which could not see token 6.
    np.testing.assert_allclose(a2[0, :7], b2[0, :7], atol=1e-5)
    assert np.abs(a2[0, 7] - b2[0, 7]).max() > 1e-4  # 7 is fed pass 1's changed vector


def test_padding_contributes_no_loss():
    t = transformer()
    trainer = TeaForN(t, n=3).build()
    short = per_pass(trainer, batch())
    padded = per_pass(trainer, batch(width=20))
    for key in ('pass1_loss', 'pass2_loss', 'pass3_loss', 'loss'):
        assert abs(short[key] - padded[key]) < 1e-5, key


def test_gradients_flow_through_feedback_unless_stopped():
    inputs = [tf.constant(x, tf.float32) for x in batch()]
    flowing = loss_and_grads(TeaForN(transformer(), n=2).build(), inputs)
    stopped = loss_and_grads(TeaForN(transformer(), n=2, stop_gradient=True).build(), inputs)
    assert abs(flowing[0] - stopped[0]) < 1e-6  # same forward pass
    diff = max(float(tf.reduce_max(tf.abs(tf.convert_to_tensor(a) - tf.convert_to_tensor(b))))
               for a, b in zip(flowing[1], stopped[1]))
    assert diff > 1e-6


def test_expected_embedding_feedback_and_lm_application():
    t = transformer('lm')
    trainer = TeaForN(t, n=2, feedback='expected_embedding', topk=5, application='lm').build()
    result = per_pass(trainer, [sequence_padding(TOKENS), np.zeros((2, 8))])
    assert np.isfinite(result['loss']) and result['pass2_loss'] > 0
    with pytest.raises(SettingError, match='feedback'):
        TeaForN(t, feedback='sample')


def test_pass_weights():
    assert pass_weights(3) == [1.0, 0.5, 0.25]
    assert pass_weights(2, [2, 1]) == [2.0, 1.0]
    with pytest.raises(SettingError, match='pass 1 must weigh the most'):
        pass_weights(2, [1, 2])
    with pytest.raises(SettingError, match='2 entries for n=3'):
        pass_weights(3, [1, 1])


@pytest.mark.slow
def test_teaforn_training_lowers_every_pass_loss():
    t = transformer()
    trainer = TeaForN(t, n=3).build()
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    inputs = batch()
    before = trainer.evaluate(inputs, verbose=0, return_dict=True)
    for _ in range(30):
        trainer.train_on_batch(inputs)
    after = trainer.evaluate(inputs, verbose=0, return_dict=True)
    for key in ('pass1_loss', 'pass2_loss', 'pass3_loss'):
        assert after[key] < 0.6 * before[key], (key, before, after)
