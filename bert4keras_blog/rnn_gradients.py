"""Post 8: how an RNN's gradient vanishes or explodes, measured.

The state Jacobian ∂h_T/∂h_t is the product of the per-step Jacobians
∂h_k/∂h_{k-1}, k = t+1..T, so its norm shrinks or grows geometrically with
T−t at a rate set by the per-step factors. For a plain RNN that factor is
diag(tanh') · Uᵀ; in an LSTM the cell path contributes diag(f) (the forget
gate), in a GRU diag(z) plus corrections, which is how gates keep the product
near 1. The loss gradient is a sum over time steps (paths), so "vanishing"
means the long-range terms vanish, not the whole gradient.

Here the "state" of a cell is all its recurrent state vectors concatenated
(LSTM: [h, c]); the Jacobians are of that state.

Public API:
    unroll(cell, inputs) -> list of states (each (batch, state_dim))
    state_jacobian_norms(cell_or_layer, inputs) -> dict with 'spectral' and
        'frobenius' norms of ∂s_T/∂s_t for t = 0..T-1 (index = T−t − 1),
        and 'step_spectra': singular values of each ∂s_t/∂s_{t-1}
    step_jacobians(cell_or_layer, inputs) -> (T, batch, n, n) by autodiff
    analytic_step_jacobians(cell_or_layer, inputs) -> the same from the
        post's formulas (SimpleRNN with tanh or linear, LSTM, GRU)
    gradient_by_step(cell_or_layer, inputs, loss_fn) -> per-step
        contributions to ∂L/∂(weights), which add up to the total
    fit_decay_rate(norms, skip=0) -> the geometric rate r with norm ≈ a·r^(T−t)
    cell_of(cell_or_layer) -> the RNN cell inside a Keras RNN layer (or itself).
"""
import numpy as np

from bert4keras_blog.compat import K, keras, tf
from bert4keras_blog.errors import SettingError
from bert4keras_blog.compat.internals import cell_weights_replaced

__all__ = ['unroll', 'state_jacobian_norms', 'step_jacobians', 'analytic_step_jacobians',
           'gradient_by_step', 'fit_decay_rate', 'cell_of']


def cell_of(cell_or_layer):
    """The cell of a Keras RNN layer (or the cell itself), built."""
    cell = getattr(cell_or_layer, 'cell', cell_or_layer)
    return cell


def _state_sizes(cell):
    sizes = cell.state_size
    return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]


def _ensure_built(cell, inputs):
    if not cell.built:
        cell.build(tf.TensorShape([None, inputs.shape[-1]]))


def _split(state, sizes):
    return tf.split(state, sizes, axis=-1) if len(sizes) > 1 else [state]


def _step(cell, x, state, sizes):
    """One step on the concatenated state; returns the new concatenated state."""
    _, new_states = cell(x, _split(state, sizes), training=False)
    new_states = new_states if isinstance(new_states, (list, tuple)) else [new_states]
    return tf.concat(list(new_states), axis=-1)


def unroll(cell_or_layer, inputs, initial_state=None):
    """Runs the cell over ``inputs`` (batch, T, features); returns T+1 states.

    ``states[0]`` is the initial state (zeros unless given), ``states[t]``
    the state after step t.
    """
    cell = cell_of(cell_or_layer)
    inputs = tf.convert_to_tensor(inputs, dtype=cell.dtype or K.floatx())
    _ensure_built(cell, inputs)
    sizes = _state_sizes(cell)
    state = initial_state if initial_state is not None else \
        tf.zeros([tf.shape(inputs)[0], sum(sizes)], inputs.dtype)
    states = [state]
    for t in range(inputs.shape[1]):
        states.append(_step(cell, inputs[:, t], states[-1], sizes))
    return states


def _jacobian_rows(tape, target, sources):
    """∂target/∂source for each source, one backward pass per output unit.

    ``target`` (batch, n); sources a list of (batch, m) tensors on the tape.
    Rows of a batch do not interact, so summing over the batch is exact.
    Returns an array (len(sources), batch, n, m). (One pass per unit avoids
    batch_jacobian's per-call graph tracing, which dominates at T = 100.)
    """
    rows = []
    n = target.shape[-1]
    for i in range(n):
        unit = tf.broadcast_to(tf.one_hot(i, n, dtype=target.dtype), tf.shape(target))
        grads = tape.gradient(target, sources, output_gradients=unit)
        rows.append(np.stack([g.numpy() for g in grads]))
    return np.stack(rows, axis=2)


def step_jacobians(cell_or_layer, inputs, initial_state=None):
    """∂s_t/∂s_{t-1} for t = 1..T by automatic differentiation.

    All T steps go through the cell as one batch of T·batch rows.

    Returns:
        array (T, batch, n, n), entry [t-1, b, i, j] = ∂s_t[i]/∂s_{t-1}[j].
    """
    cell = cell_of(cell_or_layer)
    states = unroll(cell, inputs, initial_state)
    x = tf.convert_to_tensor(inputs, dtype=states[0].dtype)
    steps, batch = x.shape[1], x.shape[0]
    previous = tf.concat(states[:-1], axis=0)  # (T*b, n), step-major
    flat_x = tf.reshape(tf.transpose(x, (1, 0, 2)), [steps * batch, -1])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(previous)
        new = _step(cell, flat_x, previous, _state_sizes(cell))
    jacobians = _jacobian_rows(tape, new, [previous])[0]
    del tape
    return jacobians.reshape(steps, batch, *jacobians.shape[1:])


def state_jacobian_norms(cell_or_layer, inputs, initial_state=None):
    """Norms of ∂s_T/∂s_t for every t, straight from a tape over the unroll.

    Args:
        cell_or_layer: a Keras SimpleRNN/LSTM/GRU layer, or any Keras RNN cell.
        inputs: (batch, T, features).
        initial_state: (batch, state_dim) or None for zeros.

    Returns:
        dict of arrays: 'distance' (T−t = 1..T), 'spectral' and 'frobenius'
        (batch mean of the norms of ∂s_T/∂s_t, same order), 'step_spectra'
        (T, batch, n) singular values of each ∂s_t/∂s_{t-1}.

    Example:
    ```python
    import numpy as np
    from bert4keras_blog.compat import keras
    from bert4keras_blog.rnn_gradients import state_jacobian_norms
    layer = keras.layers.LSTM(8)
    norms = state_jacobian_norms(layer, np.random.randn(2, 20, 3).astype('float32'))
    assert norms['spectral'].shape == (20,)
    ```
    """
    cell = cell_of(cell_or_layer)
    x = tf.convert_to_tensor(inputs, dtype=cell.dtype or K.floatx())
    _ensure_built(cell, x)
    sizes = _state_sizes(cell)
    steps = x.shape[1]
    state = initial_state if initial_state is not None else \
        tf.zeros([tf.shape(x)[0], sum(sizes)], x.dtype)
    with tf.GradientTape(persistent=True) as tape:
        states = []
        for t in range(steps):
            state = tf.identity(state)
            tape.watch(state)
            states.append(state)  # s_t, t = 0..T-1
            state = _step(cell, x[:, t], state, sizes)
        final = state  # s_T
    jacobians = _jacobian_rows(tape, final, states)[::-1]  # index = T−t − 1
    del tape
    spectral = np.linalg.norm(jacobians, ord=2, axis=(2, 3)).mean(axis=1)
    frobenius = np.linalg.norm(jacobians, ord='fro', axis=(2, 3)).mean(axis=1)
    step_spectra = np.linalg.svd(step_jacobians(cell, inputs, initial_state), compute_uv=False)
    return {'distance': np.arange(1, steps + 1), 'spectral': spectral,
            'frobenius': frobenius, 'step_spectra': step_spectra}


# ------------------------------------------------------------- the formulas

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _activation(cell, name):
    """The numpy form of a Keras activation the formulas support."""
    fn = getattr(cell, name)
    known = {keras.activations.tanh: (np.tanh, lambda y: 1 - y ** 2),
             keras.activations.sigmoid: (_sigmoid, lambda y: y * (1 - y)),
             keras.activations.linear: (lambda a: a, lambda y: np.ones_like(y))}
    for keras_fn, pair in known.items():
        if fn is keras_fn or getattr(fn, '__name__', None) == keras_fn.__name__:
            return pair
    raise SettingError('no formula for activation %r of %s' % (fn, type(cell).__name__))


def analytic_step_jacobians(cell_or_layer, inputs, initial_state=None):
    """∂s_t/∂s_{t-1} from the post's formulas, for Keras' three cells.

    SimpleRNN: h_t = φ(x W + h U + b), so ∂h_t/∂h_{t-1} = diag(φ'(·)) Uᵀ.
    LSTM (gates i, f, c̃, o; c_t = f⊙c + i⊙c̃; h_t = o⊙tanh(c_t)): the blocks
    ∂c_t/∂c = diag(f), ∂c_t/∂h, ∂h_t/∂h and ∂h_t/∂c.
    GRU (gates z, r; reset after or before the matmul; h_t = z⊙h + (1−z)⊙ĥ).

    Returns:
        array (T, batch, n, n), like ``step_jacobians``.
    """
    cell = cell_of(cell_or_layer)
    states = [s.numpy() for s in unroll(cell, inputs, initial_state)]
    x = np.asarray(inputs, dtype=states[0].dtype)
    kind = type(cell).__name__
    out = []
    for t in range(x.shape[1]):
        if kind.startswith('SimpleRNN'):
            out.append(_simple_rnn_jacobian(cell, x[:, t], states[t], states[t + 1]))
        elif kind.startswith('LSTM'):
            out.append(_lstm_jacobian(cell, x[:, t], states[t]))
        elif kind.startswith('GRU'):
            out.append(_gru_jacobian(cell, x[:, t], states[t]))
        else:
            raise SettingError('no formula for %s; use step_jacobians (autodiff)' % kind)
    return np.stack(out)


def _diag_times(d, matrix_t):
    """diag(d) · matrix_t for a batch: d (b, n), matrix_t (n, m) -> (b, n, m)."""
    return d[:, :, None] * matrix_t[None]


def _simple_rnn_jacobian(cell, x, h, h_new):
    _, derivative = _activation(cell, 'activation')
    U = K.get_value(cell.recurrent_kernel)
    return _diag_times(derivative(h_new), U.T)


def _lstm_jacobian(cell, x, state):
    n = cell.units
    h, c = state[:, :n], state[:, n:]
    W, U = K.get_value(cell.kernel), K.get_value(cell.recurrent_kernel)
    b = K.get_value(cell.bias) if cell.use_bias else 0
    gate, gate_d = _activation(cell, 'recurrent_activation')
    act, act_d = _activation(cell, 'activation')
    z = x @ W + h @ U + b
    i, f, g, o = gate(z[:, :n]), gate(z[:, n:2 * n]), act(z[:, 2 * n:3 * n]), gate(z[:, 3 * n:])
    Ui, Uf, Ug, Uo = (U[:, k * n:(k + 1) * n].T for k in range(4))
    c_new = f * c + i * g
    tc = act(c_new)
    dc_dh = _diag_times(c * gate_d(f), Uf) + _diag_times(g * gate_d(i), Ui) + \
        _diag_times(i * act_d(g), Ug)
    dc_dc = np.eye(n)[None] * f[:, :, None]
    dh_dh = _diag_times(tc * gate_d(o), Uo) + (o * act_d(tc))[:, :, None] * dc_dh
    dh_dc = (o * act_d(tc))[:, :, None] * dc_dc
    top = np.concatenate([dh_dh, dh_dc], axis=2)
    bottom = np.concatenate([dc_dh, dc_dc], axis=2)
    return np.concatenate([top, bottom], axis=1)


def _gru_jacobian(cell, x, h):
    n = cell.units
    W, U = K.get_value(cell.kernel), K.get_value(cell.recurrent_kernel)
    gate, gate_d = _activation(cell, 'recurrent_activation')
    act, act_d = _activation(cell, 'activation')
    if cell.use_bias:
        bias = K.get_value(cell.bias)
        b_in, b_rec = (bias[0], bias[1]) if cell.reset_after else (bias, np.zeros(3 * n))
    else:
        b_in = b_rec = np.zeros(3 * n)
    xz = x @ W + b_in
    Uz, Ur, Uh = (U[:, k * n:(k + 1) * n] for k in range(3))
    z = gate(xz[:, :n] + h @ Uz + b_rec[:n])
    r = gate(xz[:, n:2 * n] + h @ Ur + b_rec[n:2 * n])
    if cell.reset_after:
        recurrent = h @ Uh + b_rec[2 * n:]
        candidate = act(xz[:, 2 * n:] + r * recurrent)
        d_inner = _diag_times(r, Uh.T) + _diag_times(recurrent * gate_d(r), Ur.T)
    else:
        candidate = act(xz[:, 2 * n:] + (r * h) @ Uh)
        # ∂((r⊙h)U_h)/∂h = U_hᵀ (diag(r) + diag(h) ∂r/∂h)
        d_rh = np.eye(n)[None] * r[:, :, None] + _diag_times(h * gate_d(r), Ur.T)
        d_inner = np.einsum('ij,bjk->bik', Uh.T, d_rh)
    eye = np.eye(n)[None] * z[:, :, None]
    return eye + _diag_times((h - candidate) * gate_d(z), Uz.T) + \
        ((1 - z) * act_d(candidate))[:, :, None] * d_inner


# ------------------------------------------------------ gradient by step

def gradient_by_step(cell_or_layer, inputs, loss_fn, initial_state=None):
    """Each time step's share of ∂L/∂(cell weights).

    Every step gets its own copy of the weights, so the tape separates the
    contribution of the weights' use at step t (through all later steps);
    the contributions add up to the ordinary gradient.

    Args:
        cell_or_layer: Keras RNN layer or cell.
        inputs: (batch, T, features).
        loss_fn: callable(final_state) -> scalar loss.

    Returns:
        dict: 'per_step' list (T) of lists of arrays (one per weight),
        'total' list of arrays (the ordinary gradient), 'norms' (T,) the
        norm of each step's contribution over all weights.
    """
    cell = cell_of(cell_or_layer)
    x = tf.convert_to_tensor(inputs, dtype=cell.dtype or K.floatx())
    _ensure_built(cell, x)
    weights = cell.trainable_weights
    originals = [K.get_value(w) for w in weights]
    sizes = _state_sizes(cell)
    steps = x.shape[1]
    copies = [[tf.Variable(v) for v in originals] for _ in range(steps)]
    state = initial_state if initial_state is not None else \
        tf.zeros([tf.shape(x)[0], sum(sizes)], x.dtype)
    with tf.GradientTape() as tape:
        for t in range(steps):
            with cell_weights_replaced(cell, copies[t]):
                state = _step(cell, x[:, t], state, sizes)
        loss = loss_fn(state)
    flat = [v for step in copies for v in step]
    grads = tape.gradient(loss, flat)
    per_step = [grads[t * len(weights):(t + 1) * len(weights)] for t in range(steps)]
    per_step = [[g.numpy() if g is not None else np.zeros_like(v)
                 for g, v in zip(step, originals)] for step in per_step]
    total = [sum(step[k] for step in per_step) for k in range(len(weights))]
    norms = np.array([np.sqrt(sum(float(np.sum(g ** 2)) for g in step)) for step in per_step])
    return {'per_step': per_step, 'total': total, 'norms': norms}


def fit_decay_rate(norms, skip=0):
    """Least-squares geometric rate: log norm ≈ a + (T−t)·log r; returns r.

    Args:
        norms: array of norms at T−t = 1, 2, ...
        skip: int. Leave out the first ``skip`` distances (transients).
    """
    norms = np.asarray(norms, dtype=float)[skip:]
    distance = np.arange(skip + 1, skip + 1 + len(norms))
    keep = norms > 0
    slope = np.polyfit(distance[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))
