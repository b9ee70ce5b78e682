"""The environment bert4keras 0.11.5 needs on TensorFlow 2.21 + tf_keras,
set before either loads, and the version check.

Public API:
    keras, tf: the Keras 2 API (tf_keras) and TensorFlow.
    check_versions(): raise ``StackError`` if the wrong bert4keras or Keras
        is importable, naming the version found and the command that fixes it.
    stack_versions() -> dict: versions of the pieces that matter.

What it does, in order (each step is needed, see ../shared/STACK_NOTES.md):
1. ``TF_KERAS=1`` and ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads, so
   bert4keras picks tf.keras and tf.keras is tf_keras, not Keras 3. Also
   ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1``: on CPUs where TensorFlow turns
   oneDNN on (AVX-512 VNNI/BF16, AMX), its CPU allocator is otherwise a pool
   that keeps every freed block, so loading mT5-small (1.2 GB of weights)
   left 2.6 GB resident, and a freed 256 MB tensor stayed resident; with
   malloc both go back. Set it to 0 before importing to keep the pool.
2. A ``distutils.util.strtobool`` stand-in on Python 3.12+, where
   ``distutils`` is gone (bert4keras' backend imports it).
3. ``tf.keras`` is resolved before bert4keras does
   ``sys.modules['keras'] = tf.keras``; TensorFlow's lazy loader otherwise
   recurses forever.
"""
import os
import sys
import types

os.environ.setdefault('TF_KERAS', '1')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ONEDNN_USE_SYSTEM_ALLOCATOR', '1')

from bert4keras_blog.errors import StackError  # noqa: E402

REQUIRED_BERT4KERAS = '0.11.5'
FIX_BERT4KERAS = 'pip install --no-deps bert4keras==%s' % REQUIRED_BERT4KERAS
FIX_KERAS = 'pip install "tensorflow==2.21.*" "tf-keras==2.21.*"'

__all__ = ['keras', 'tf', 'check_versions', 'stack_versions', 'StackError']


def _provide_distutils_strtobool():
    """bert4keras imports distutils.util.strtobool, removed in Python 3.12."""
    try:
        from distutils.util import strtobool  # noqa: F401
        return
    except ImportError:
        pass

    def strtobool(value):
        value = value.lower()
        if value in ('y', 'yes', 't', 'true', 'on', '1'):
            return 1
        if value in ('n', 'no', 'f', 'false', 'off', '0'):
            return 0
        raise ValueError('invalid truth value %r' % (value,))

    distutils = sys.modules.setdefault('distutils', types.ModuleType('distutils'))
    util = types.ModuleType('distutils.util')
    util.strtobool = strtobool
    distutils.util = util
    sys.modules['distutils.util'] = util


def _installed_version(distribution):
    from importlib import metadata
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check_versions():
    """Raises StackError if bert4keras or Keras is not the version we need."""
    found = _installed_version('bert4keras')
    if found is None:
        raise StackError('bert4keras is not installed; run: %s' % FIX_BERT4KERAS)
    if found != REQUIRED_BERT4KERAS:
        raise StackError(
            'bert4keras %s is installed, bert4keras-blog needs %s '
            '(a plain `pip install bert4keras` picks 0.8.1 next to TensorFlow 2.21); '
            'run: %s' % (found, REQUIRED_BERT4KERAS, FIX_BERT4KERAS))
    tf_keras_version = _installed_version('tf-keras') or _installed_version('tf_keras')
    if tf_keras_version is None:
        raise StackError('tf_keras (the Keras 2 API) is not installed; run: %s' % FIX_KERAS)
    keras_version = _installed_version('keras')
    if keras_version is not None and int(keras_version.split('.')[0]) < 3:
        raise StackError(
            'keras %s is installed (bert4keras\' old keras<=2.3.1 pin pulls it in); '
            'TensorFlow 2.21 needs keras 3 beside tf_keras; run: %s'
            % (keras_version, FIX_KERAS))


_provide_distutils_strtobool()
check_versions()
_early = sys.modules.get('bert4keras.backend')
if _early is not None and not getattr(_early, 'is_tf_keras', False):
    raise StackError('bert4keras was imported before bert4keras_blog, so it bound itself to '
                     'Keras 3 and cannot work; put `import bert4keras_blog` before any '
                     'bert4keras import')


class _NativeLogsSilenced(object):
    """TensorFlow's C++ runtime prints start-up notes (oneDNN, CUDA probing)
    straight to file descriptor 2 while it loads, before any Python setting
    can stop them. They are hidden during the import only; Python errors
    still surface. BERT4KERAS_BLOG_TF_LOGS=1 shows them."""

    def __enter__(self):
        self.saved = None
        if os.environ.get('BERT4KERAS_BLOG_TF_LOGS') == '1':
            return self
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # no real stderr (some notebooks): nothing to hide
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        return False


with _NativeLogsSilenced():
    import tensorflow as tf  # noqa: E402
    # Step 3: resolve the lazy module now; bert4keras then aliases a real module.
    keras = tf.keras
    keras.layers  # noqa: B018  (touching an attribute finishes the lazy import)
    tf.config.list_physical_devices()  # CUDA probing logs here, once
if not keras.__name__.startswith('tf_keras') and 'tf_keras' not in getattr(keras, '__file__', ''):
    raise StackError(
        'tf.keras resolved to %s instead of tf_keras; TF_USE_LEGACY_KERAS=1 must be '
        'set before TensorFlow is imported: import bert4keras_blog first' % keras.__name__)


def stack_versions():
    """Returns {name: version} for Python, TensorFlow, tf_keras, bert4keras, numpy."""
    import platform
    import numpy
    import bert4keras
    return {
        'python': platform.python_version(),
        'tensorflow': tf.__version__,
        'tf_keras': keras.__version__ if hasattr(keras, '__version__') else
        _installed_version('tf-keras'),
        'bert4keras': bert4keras.__version__,
        'numpy': numpy.__version__,
    }
