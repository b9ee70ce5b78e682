"""bert4keras-blog: eight 2020 posts of 科学空间 as tested code on bert4keras.

Importing the package runs the compatibility layer (``bert4keras_blog.compat``)
and installs the checked checkpoint loader, after which plain bert4keras code
(``build_transformer_model``, tokenizers, ``DataGenerator``,
``AutoRegressiveDecoder``, the optimizers) works on TensorFlow 2.21 + tf_keras.

The house, in layers (a module imports only from its own layer or below;
``tests/test_layers.py`` checks it):

    app          app/: the CLI, the web page, the demo, the docs pages
    posts        pretrained, dynamics, mathword/, teaforn, exposure, simsiam,
                 mt5, xiangqi/, rnn_gradients (one room per post)
    experiment   experiment/: runs, training helpers, claims, plots
    decoding     decoding/ and checkpoints/ (neither imports the other)
    compat       compat/: environment, bert4keras fixes, Keras 2.3.1, internals
    base         errors, datafiles, corpora (plain Python)

Public API:
    compat: the compatibility layer (``keras``, ``K``, ``tf``).
    __version__: this package's version.
"""
from bert4keras_blog import compat  # noqa: F401  (must run before bert4keras)
from bert4keras_blog.checkpoints import loading as _loading  # noqa: F401,E402 (step 7)

__version__ = '0.1.0'
__all__ = ['compat', '__version__']
