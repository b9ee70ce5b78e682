"""Keras 2.3.1's backend functions and training API where tf_keras 2.21
differs (steps 14-22). ``docs/compat.md`` is the audit
behind them, one row per function of Keras 2.3.1's ``K`` and per training
idiom, with what differs and the test that shows it. ``compat`` imports this
module once, after ``keras23``; nothing else should.

14. ``K.zeros``, ``K.ones`` and ``K.eye`` inside a traced graph (a ``Lambda``
    or ``Loss`` layer's call, anything ``fit`` traces) return tensors, as
    under Keras 2.3.1's TF1 graph; tf_keras made a ``tf.Variable`` there,
    which a traced function refuses (``could not be lifted out of a
    tf.function``: the in-batch-negatives loss
    ``sim - K.eye(K.shape(y_pred)[0]) * 1e12``). ``K.eye`` is a tensor
    everywhere, as in Keras 2.3.1, and takes ``(rows, columns)`` again.
15. ``K.arange(n)`` with a tensor ``n`` (inside a trace tf_keras compared it
    with 0 in Python and failed).
16. ``K.resize_images(..., interpolation='bilinear')`` (and so
    ``UpSampling2D(interpolation='bilinear')``) uses TF1's kernel, as Keras
    2.3.1 did; tf_keras' ``tf.image.resize`` samples at pixel centres and
    gave other numbers (up to 1.2 apart on unit-variance images).
17. ``K.ctc_decode`` returns each decoded batch as wide as its longest
    sequence, as Keras 2.3.1 did; tf_keras padded to the input length.
18. Functions tf_keras dropped are back: ``identity``, ``size``, ``slice``,
    ``is_tensor``, ``is_variable``, ``is_placeholder``, ``is_symbolic``,
    ``get_variable_shape``, ``control_dependencies``,
    ``normalize_data_format``, ``separable_conv1d``, ``conv3d_transpose``,
    ``eager``, ``v1_variable_initialization``; ``get_session`` and
    ``set_session`` work in graph mode and say what to do instead in eager.
19. Layers and models are named from 1 (``dense_1`` is the first Dense),
    as Keras 2.3.1 did; tf_keras counted from 0, so ``get_layer('dense_1')``
    written for Keras 2.3.1 silently found the second layer.
20. ``model.metrics_names`` right after ``compile``; tf_keras left it empty
    until the first batch.
21. ``save_weights`` and ``save`` write HDF5 unless the name asks for
    TensorFlow's format (``.tf``, ``.ckpt``): Keras 2.3.1 always wrote HDF5,
    and tf_keras' format for other names cannot be loaded ``by_name``. A
    registered custom activation is saved by its name, so ``load_model``
    reads a bert4keras model back from HDF5.
22. ``fit(class_weight=...)`` on a generator that yields sample weights
    (tf_keras failed on their unknown batch size), and
    ``EarlyStopping(restore_best_weights=True)`` restores only when it
    stopped training, as in Keras 2.3.1; tf_keras also restored when the
    last epoch was reached, which changed the final weights silently.

Public API: everything above reaches scripts through ``K`` and Keras itself;
the one name to import is
    EagerOnlyError: what ``K.get_session()``/``K.set_session()`` raise
        eagerly (a ``BlogError`` and a ``RuntimeError``).
"""
import sys

from bert4keras_blog.compat import internals
from bert4keras_blog.compat.environment import tf

from bert4keras_blog.errors import BlogError

keras = tf.keras
_backend = internals.TF_KERAS_BACKEND  # tf_keras' own module: its callers see the changes too

__all__ = ['EagerOnlyError']


class EagerOnlyError(BlogError, RuntimeError):
    """A TF1-session idiom called where no session exists (eager TF 2)."""


# Step 14.
def zeros(shape, dtype=None, name=None):
    """All zeros: a variable when called eagerly, a tensor inside a trace."""
    if tf.inside_function():
        return tf.zeros(shape, dtype=dtype or _backend.floatx(), name=name)
    return _backend.zeros(shape, dtype, name)


def ones(shape, dtype=None, name=None):
    """All ones: a variable when called eagerly, a tensor inside a trace."""
    if tf.inside_function():
        return tf.ones(shape, dtype=dtype or _backend.floatx(), name=name)
    return _backend.ones(shape, dtype, name)


def eye(size, dtype=None, name=None):
    """The identity matrix, ``size`` rows or ``(rows, columns)``, as a tensor."""
    rows, columns = size if isinstance(size, (list, tuple)) else (size, size)
    return tf.eye(rows, columns, dtype=dtype or _backend.floatx(), name=name)


# Step 15.
def arange(start, stop=None, step=1, dtype='int32'):
    """``range`` as a tensor; one argument means [0, start), empty if negative."""
    if stop is None:
        start = tf.maximum(start, 0) if tf.is_tensor(start) else max(start, 0)
    result = tf.range(start, limit=stop, delta=step, name='arange')
    return result if dtype == 'int32' else tf.cast(result, dtype)


# Step 16.
_tf_keras_resize_images = _backend.resize_images


def resize_images(x, height_factor, width_factor, data_format, interpolation='nearest'):
    """Upsamples the rows and columns of a 4D tensor by integer factors."""
    if interpolation != 'bilinear':
        return _tf_keras_resize_images(x, height_factor, width_factor, data_format,
                                       interpolation)
    channels_first = data_format == 'channels_first'
    if channels_first:
        x = tf.transpose(x, (0, 2, 3, 1))
    rows, columns = x.shape[1], x.shape[2]
    size = tf.shape(x)[1:3] * tf.constant([height_factor, width_factor], 'int32')
    # TF1's kernel (no half-pixel centres), the numbers Keras 2.3.1 gave.
    resized = tf.cast(tf.compat.v1.image.resize_bilinear(x, size), x.dtype)
    resized.set_shape((None, rows and rows * height_factor,
                       columns and columns * width_factor, None))
    return tf.transpose(resized, (0, 3, 1, 2)) if channels_first else resized



# Step 17.
def ctc_decode(y_pred, input_length, greedy=True, beam_width=100, top_paths=1):
    """tf_keras' decoder, each path trimmed to its longest sequence."""
    decoded, log_prob = _backend.ctc_decode(y_pred, input_length, greedy, beam_width, top_paths)

    def trimmed(paths):  # -1 pads the end of every row, never its middle
        width = tf.reduce_max(tf.reduce_sum(tf.cast(paths >= 0, 'int32'), axis=1))
        return paths[:, :width]
    return [trimmed(paths) for paths in decoded], log_prob


# Step 18.
def identity(x, name=None):
    return tf.identity(x, name=name)


def size(x, name=None):
    """The number of elements of ``x``, as a tensor."""
    return tf.size(x, name=name)


def slice(x, start, size):  # noqa: A001 (Keras 2.3.1's name)
    return tf.slice(x, start, size)


def is_tensor(x):
    return tf.is_tensor(x)


def is_variable(x):
    return isinstance(x, tf.Variable)


def is_symbolic(x):
    """Whether ``x`` is a graph tensor (a Keras input or a traced value)."""
    return tf.is_tensor(x) and not hasattr(x, 'numpy')


def is_placeholder(x):
    """Whether ``x`` is a model input (Keras 2.3.1: a placeholder op)."""
    layer = internals.keras_layer_of(x)
    if layer is not None:
        return isinstance(layer, keras.layers.InputLayer)
    try:
        return x.op.type == 'Placeholder'
    except AttributeError:
        return False


def get_variable_shape(x):
    return _backend.int_shape(x)


def control_dependencies(control_inputs):
    return tf.control_dependencies(control_inputs)


def normalize_data_format(value):
    """``'channels_first'`` or ``'channels_last'``; None means the default."""
    if value is None:
        value = _backend.image_data_format()
    data_format = value.lower()
    if data_format not in ('channels_first', 'channels_last'):
        raise ValueError('data_format %r: expected "channels_first" or "channels_last"' % value)
    return data_format


def separable_conv1d(x, depthwise_kernel, pointwise_kernel, strides=1, padding='valid',
                     data_format=None, dilation_rate=1):
    """A 1D separable convolution, as a 2D one over a height of one."""
    spatial_axis = 2 if normalize_data_format(data_format) == 'channels_first' else 1
    strides = strides[0] if isinstance(strides, (list, tuple)) else strides
    dilation_rate = dilation_rate[0] if isinstance(dilation_rate, (list, tuple)) \
        else dilation_rate
    y = _backend.separable_conv2d(
        tf.expand_dims(x, spatial_axis), tf.expand_dims(depthwise_kernel, 0),
        tf.expand_dims(pointwise_kernel, 0), strides=(1, strides), padding=padding,
        data_format=data_format, dilation_rate=(1, dilation_rate))
    return tf.squeeze(y, [spatial_axis])


def conv3d_transpose(x, kernel, output_shape, strides=(1, 1, 1), padding='valid',
                     data_format=None):
    """The transpose of a 3D convolution; ``output_shape`` may leave the batch None."""
    channels_first = normalize_data_format(data_format) == 'channels_first'
    if isinstance(output_shape, (list, tuple)):
        output_shape = tf.stack([tf.shape(x)[0] if output_shape[0] is None else output_shape[0]]
                                + list(output_shape[1:]))
    if channels_first:
        x = tf.transpose(x, (0, 2, 3, 4, 1))
        output_shape = tf.gather(output_shape, [0, 2, 3, 4, 1])
    y = tf.nn.conv3d_transpose(x, kernel, output_shape, (1,) + tuple(strides) + (1,),
                               padding.upper())
    return tf.transpose(y, (0, 4, 1, 2, 3)) if channels_first else y


def eager(func):
    """Keras 2.3.1's decorator for eager-only functions; TF 2 is eager already."""
    return func


def v1_variable_initialization():
    """Initialises the graph's variables in graph mode; eager ones already are."""
    if not tf.executing_eagerly():
        get_session().run(tf.compat.v1.global_variables_initializer())


_NO_SESSION = ('K.%s() is TF1\'s: TensorFlow 2 runs eagerly, without a session. Call the '
               'model (or K.function) directly; a script that needs the session runs in graph '
               'mode under BERT4KERAS_BLOG_GRAPH_MODE=1')


def get_session(op_input_list=()):
    if tf.executing_eagerly():
        raise EagerOnlyError(_NO_SESSION % 'get_session')
    return tf.compat.v1.keras.backend.get_session(op_input_list)


def set_session(session):
    if tf.executing_eagerly():
        raise EagerOnlyError(_NO_SESSION % 'set_session')
    tf.compat.v1.keras.backend.set_session(session)


_FUNCTIONS = [zeros, ones, eye, arange, resize_images, ctc_decode, identity, size, slice,
              is_tensor, is_variable, is_symbolic, is_placeholder, get_variable_shape,
              control_dependencies, normalize_data_format, separable_conv1d, conv3d_transpose,
              eager, v1_variable_initialization, get_session, set_session]


def _backend_modules():
    """Every public module through which scripts reach Keras' backend."""
    names = ('keras.backend', 'tf_keras.backend', 'tensorflow.keras.backend',
             'tf_keras.api._v2.keras.backend')
    found = {id(m): m for m in (sys.modules.get(n) for n in names) if m is not None}
    found.pop(id(_backend), None)  # tf_keras' own module keeps its functions
    return found.values()


# Plain TensorFlow ops: autograph need not rewrite them inside a traced
# call (as it leaves tf_keras' own backend alone).
for _module in _backend_modules():
    for _function in _FUNCTIONS:
        setattr(_module, _function.__name__, tf.autograph.experimental.do_not_convert(_function))
# UpSampling2D and tf_keras' own callers follow step 16 too.
_backend.resize_images = tf.autograph.experimental.do_not_convert(resize_images)


# Step 19.
def _named_from_one(init_set_name):
    def name_from_one(self, name, zero_based=True):
        return init_set_name(self, name, zero_based=False)
    return name_from_one


internals.wrap_layer_naming(_named_from_one)  # Layer's and Functional's own


# Step 20.
def _display_name(metric):
    if isinstance(metric, str):
        return metric
    return getattr(metric, 'name', None) or getattr(metric, '__name__', type(metric).__name__)


def _of_output(metrics, outputs, index):
    """The metrics ``compile`` gave output ``index``: a list for all, a list
    per output, or a dict by output name."""
    if isinstance(metrics, dict):
        found = metrics.get(outputs[index]) or []
    elif isinstance(metrics, (list, tuple)) and metrics and isinstance(metrics[0], (list, tuple)):
        found = metrics[index] if index < len(metrics) else []
    else:
        found = metrics or []
    return [_display_name(m) for m in (found if isinstance(found, (list, tuple)) else [found])]


def _names_from_compile(model):
    """The names Keras 2.3.1 gave right after compile: the total loss, each
    output's loss when there are several, then each output's metrics and
    weighted metrics (``weighted_`` when an unweighted one has the name)."""
    outputs = list(model.output_names or [])
    losses, metrics, weighted = internals.compiled_losses_and_metrics(model)
    names = ['loss']
    if len(outputs) > 1 and losses is not None:
        if isinstance(losses, dict):
            names += ['%s_loss' % o for o in outputs if losses.get(o) is not None]
        elif isinstance(losses, (list, tuple)):
            names += ['%s_loss' % o for o, loss in zip(outputs, losses) if loss is not None]
        else:
            names += ['%s_loss' % o for o in outputs]
    for index, output in enumerate(outputs):
        plain = _of_output(metrics, outputs, index)
        plain += [n if n not in plain else 'weighted_' + n
                  for n in _of_output(weighted, outputs, index)]
        prefix = output + '_' if len(outputs) > 1 else ''
        names += [prefix + n for n in plain]
    return names


def _names_after_compile(metrics_names):
    def names(self):
        found = metrics_names.fget(self)
        if found or not internals.is_compiled(self):
            return found
        return _names_from_compile(self)
    return property(names)


_Model = internals.TRAINING.Model  # tf_keras' own Model class
_Model.metrics_names = _names_after_compile(_Model.metrics_names)


# Step 21.
_KEEP_TF_KERAS_FORMAT = ('.tf', '.ckpt', '.keras')  # names that choose a format


def _hdf5_by_default(save):
    def save_as_in_keras_2(self, filepath, *args, **kwargs):
        names_tf_format = str(filepath).endswith(_KEEP_TF_KERAS_FORMAT)
        if len(args) < 2 and kwargs.get('save_format') is None and not names_tf_format:
            kwargs['save_format'] = 'h5'
        return save(self, filepath, *args, **kwargs)
    return save_as_in_keras_2


_Model.save_weights = _hdf5_by_default(_Model.save_weights)
_Model.save = _hdf5_by_default(_Model.save)


def _registered_functions_by_name(serialize):
    # Keras 2.3.1 wrote a custom activation (bert4keras' ``gelu_erf``) as
    # its registered name; tf_keras writes {'class_name': 'function', ...},
    # which its own HDF5 loader then cannot read back.
    def serialize_by_name(activation, use_legacy_format=False):
        name = getattr(activation, '__name__', None)
        if name and keras.utils.get_custom_objects().get(name) is activation:
            return name
        return serialize(activation, use_legacy_format)
    return serialize_by_name


internals.ACTIVATIONS.serialize = _registered_functions_by_name(internals.ACTIVATIONS.serialize)
keras.activations.serialize = internals.ACTIVATIONS.serialize


# Step 22.
def _class_weight_map_fn(make_map_fn):
    def make(class_weight):
        weigh = make_map_fn(class_weight)

        def weigh_any_batch(*data):
            x, y, sample_weight = internals.DATA_ADAPTER.unpack_x_y_sample_weight(data)
            if sample_weight is None:
                return weigh(*data)
            # tf_keras reshapes sample weights by their static shape, which a
            # generator leaves unknown; weigh without them, then multiply.
            _, _, class_weights = weigh(x, y)
            class_weights = tf.cast(class_weights, sample_weight.dtype)
            extra = tf.rank(class_weights) - tf.rank(sample_weight)
            sample_weight = tf.reshape(sample_weight, tf.concat(
                [tf.shape(sample_weight), tf.ones([extra], tf.int32)], 0))
            return x, y, sample_weight * class_weights
        return weigh_any_batch
    return make


internals.wrap_class_weights(_class_weight_map_fn)


def _restore_only_when_stopped(on_train_end):
    def on_train_end_as_in_keras_2(self, logs=None):
        if self.stopped_epoch == 0:  # ran to the last epoch: keep its weights
            restore, self.restore_best_weights = self.restore_best_weights, False
            try:
                return on_train_end(self, logs)
            finally:
                self.restore_best_weights = restore
        return on_train_end(self, logs)
    return on_train_end_as_in_keras_2


internals.CALLBACKS.EarlyStopping.on_train_end = _restore_only_when_stopped(
    internals.CALLBACKS.EarlyStopping.on_train_end)
