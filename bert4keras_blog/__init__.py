"""bert4keras-blog: eight 2020 posts of 科学空间 as tested code on bert4keras.

Importing the package runs ``bert4keras_blog.backend``, after which plain
bert4keras code (``build_transformer_model``, tokenizers, ``DataGenerator``,
``AutoRegressiveDecoder``, the optimizers) works on TensorFlow 2.21 + tf_keras.

Public API:
    backend: the compatibility layer (``keras``, ``K``, ``tf``).
    __version__: this package's version.
"""
from bert4keras_blog import backend  # noqa: F401  (must run before bert4keras)

__version__ = '0.1.0'
__all__ = ['backend', '__version__']
