"""Step 7 of the compatibility layer, installed from here because it needs
the checkpoint checks: bert4keras' ``Transformer.load_weights_from_checkpoint``
made to say what is wrong.

``Transformer.load_weights_from_checkpoint`` reports a missing variable or
a shape that disagrees with the config as ``CheckpointMismatchError``
naming the layer, the variable and both shapes; a cut, corrupted or
missing data file as ``CheckpointError`` naming the file; and it warns
when the checkpoint holds layers the config leaves unused.
Importing ``bert4keras_blog`` installs it.

Public API:
    checked_load_weights_from_checkpoint(transformer, checkpoint, mapping=None):
        what ``Transformer.load_weights_from_checkpoint`` now is.
"""
import warnings

from bert4keras import models

from bert4keras_blog.checkpoints import integrity
from bert4keras_blog.compat import K, tf
from bert4keras_blog.errors import CheckpointMismatchError

__all__ = ['checked_load_weights_from_checkpoint']


def _explain_checkpoint_failure(transformer, checkpoint, mapping):
    """Finds the first variable that is missing or has the wrong shape."""
    mapping = mapping or transformer.variable_mapping()
    for layer_name, names in mapping.items():
        layer = transformer.layers.get(transformer.prefixed(layer_name))
        if layer is None:
            continue
        for weight, name in zip(layer.trainable_weights, names):
            try:
                value = transformer.load_variable(checkpoint, name)
            except (KeyError, ValueError, tf.errors.NotFoundError):
                raise CheckpointMismatchError(
                    checkpoint, name, layer=layer.name, reason='missing') from None
            expected = tuple(K.int_shape(weight))
            if tuple(value.shape) != expected:
                raise CheckpointMismatchError(
                    checkpoint, name, layer=layer.name,
                    found=tuple(value.shape), expected=expected)
    return None


_bert4keras_loader = models.Transformer.load_weights_from_checkpoint


def checked_load_weights_from_checkpoint(self, checkpoint, mapping=None):
    # Runs bert4keras' own loader; only when it fails do we look for the
    # file or variable to blame, so a good checkpoint is read exactly once.
    try:
        loaded = _bert4keras_loader(self, checkpoint, mapping)
    except (ValueError, KeyError, IndexError, tf.errors.OpError) as error:
        integrity.explain_load_failure(checkpoint, error)
        if not self.autoresize_weights and not self.ignore_invalid_weights:
            _explain_checkpoint_failure(self, checkpoint, mapping)
        raise
    if isinstance(checkpoint, str):
        try:  # fewer layers than the checkpoint holds is legal, but rarely meant
            integrity.check_layers(checkpoint, {'num_hidden_layers': self.num_hidden_layers})
        except CheckpointMismatchError as unused:
            warnings.warn(str(unused))
    return loaded


models.Transformer.load_weights_from_checkpoint = checked_load_weights_from_checkpoint
