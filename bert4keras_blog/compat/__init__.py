"""The compatibility layer: what makes bert4keras 0.11.5 and code written
for Keras 2.3.1 run on TensorFlow 2.21 + tf_keras. The lowest layer of the
package: it imports nothing of ``bert4keras_blog`` but ``errors``.

Importing it (``import bert4keras_blog`` does) is enough for plain bert4keras
code to run unchanged. Its modules, in the order they run:

    environment       steps 1-3: environment variables, versions, tf.keras
    internals         every private name of tf_keras, TF, bert4keras, libc
    bert4keras_fixes  steps 4-6 and 8: bert4keras' own code on tf_keras
    keras23           steps 9-13: Keras 2.3.1's training behaviour
    keras23_backend   steps 14-22: Keras 2.3.1's backend functions
(step 7, the checked checkpoint loader, is ``checkpoints.loading``).
``docs/compat.md`` lists every change to tf_keras and bert4keras, and
``tests/test_compat.py`` what plain tf_keras code sees of them.

Public API:
    keras, K, tf: the Keras 2 API (tf_keras), its backend, and TensorFlow.
    check_versions(), stack_versions(), StackError: see ``environment``.
    use_graph_mode(), use_graph_mode_if_wanted(script), wants_graph_mode(script),
    tf1_graph_idioms(path), TF1_GRAPH_IDIOMS, GRAPH_MODE_ENV: see ``keras23``.
    special_tokens(tokenizer) -> SpecialTokens(start, end, mask, unk,
        vocab_size): what a bert4keras tokenizer keeps privately.
"""
import sys

from bert4keras_blog.compat.environment import (  # noqa: F401  (first: sets the environment)
    StackError, check_versions, keras, stack_versions, tf)
from bert4keras_blog.compat import internals  # noqa: F401,E402
from bert4keras_blog.compat.internals import special_tokens  # noqa: E402
from bert4keras_blog.compat.bert4keras_fixes import K  # noqa: E402
from bert4keras_blog.compat.keras23 import (  # noqa: E402
    GRAPH_MODE_ENV, TF1_GRAPH_IDIOMS, tf1_graph_idioms, use_graph_mode, use_graph_mode_if_wanted,
    wants_graph_mode)
from bert4keras_blog.compat import keras23_backend  # noqa: F401,E402

__all__ = ['keras', 'K', 'tf', 'check_versions', 'stack_versions', 'StackError',
           'use_graph_mode', 'use_graph_mode_if_wanted', 'wants_graph_mode', 'tf1_graph_idioms',
           'TF1_GRAPH_IDIOMS', 'GRAPH_MODE_ENV', 'special_tokens']

# Step 12's detection runs last, once everything is patched.
use_graph_mode_if_wanted(getattr(sys.modules.get('__main__'), '__file__', None))
