"""Writing and reading TF checkpoints without a TF 1 session.

The one writer of this project: the tiny checkpoints, ``save_checkpoint``
and the Hugging Face converter all go through ``ShardedWriter``, which
writes what Google's ``Saver`` writes (``prefix.index`` +
``prefix.data-00000-of-00001`` and the ``checkpoint`` state file) in shards
of bounded size, merged at the end, so a BERT-Large never sits in memory
twice.

Public API:
    ShardedWriter(prefix, shard_bytes=256 MB): add(name, array), close().
    save_variables(prefix, variables): ``{name: array}`` -> checkpoint.
    save_checkpoint(transformer, prefix): a bert4keras model's weights (or
        several models', one release) under their release names (what
        bert4keras' ``save_weights_as_checkpoint`` does, which needs TF 1
        graph sessions).
    variable_shapes(prefix) -> {name: shape}: reads only the ``.index``.
"""
import glob
import os

from bert4keras_blog.compat import K, tf

__all__ = ['ShardedWriter', 'save_variables', 'save_checkpoint', 'variable_shapes']


class ShardedWriter(object):
    """Collects variables and writes them in shards of about
    ``shard_bytes``; ``close`` merges the shards into one checkpoint at
    ``prefix`` and writes the ``checkpoint`` state file beside it."""

    def __init__(self, prefix, shard_bytes=256 << 20):
        self.prefix, self.shard_bytes = prefix, shard_bytes
        self.pending, self.size, self.shards = {}, 0, []

    def add(self, name, value):
        self.pending[name] = value
        self.size += value.nbytes
        if self.size >= self.shard_bytes:
            self.flush()

    def flush(self):
        if not self.pending:
            return
        shard = '%s-part-%03d' % (self.prefix, len(self.shards))
        names = sorted(self.pending)
        with tf.device('/cpu:0'):
            tf.raw_ops.SaveV2(prefix=shard, tensor_names=names,
                              shape_and_slices=[''] * len(names),
                              tensors=[tf.constant(self.pending[n]) for n in names])
        self.shards.append(shard)
        self.pending, self.size = {}, 0

    def close(self):
        self.flush()
        with tf.device('/cpu:0'):
            tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=self.shards,
                                          destination_prefix=self.prefix, delete_old_dirs=True)
        name = os.path.basename(self.prefix)
        with open(os.path.join(os.path.dirname(self.prefix), 'checkpoint'), 'w') as f:
            f.write('model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n'
                    % (name, name))
        return self.prefix

    def discard(self):
        """Removes the shards written so far (an interrupted write)."""
        for shard in self.shards:
            for path in glob.glob(glob.escape(shard) + '.*'):
                os.remove(path)
        self.pending, self.size, self.shards = {}, 0, []


def save_variables(prefix, variables, shard_bytes=256 << 20):
    """Writes ``{name: array}`` as a TF checkpoint at ``prefix``; interrupted
    (Ctrl-C, SIGTERM through ``errors.run_main``), it leaves no shards."""
    writer = ShardedWriter(prefix, shard_bytes)
    try:
        for name in sorted(variables):
            writer.add(name, variables[name])
        return writer.close()
    except BaseException:
        writer.discard()
        raise


def save_checkpoint(transformer, prefix):
    """Writes ``transformer``'s weights as a checkpoint in its release format.

    Reads ``variable_mapping()`` (the table bert4keras loads with) and undoes
    the loading transforms: NSP weights and T5 relative biases are stored
    transposed. Layers the model lacks (a pooler it was built without) are
    simply not written, so load it back with the same options.

    Args:
        transformer: a bert4keras model object, or several whose variables
            make one release (ELECTRA's discriminator and generator).
        prefix: str. The checkpoint prefix (``.../bert_model.ckpt``).

    Returns:
        str, ``prefix``.
    """
    values = {}
    for model in transformer if isinstance(transformer, (list, tuple)) else [transformer]:
        for layer_name, names in model.variable_mapping().items():
            layer = model.layers.get(model.prefixed(layer_name))
            if layer is None:
                continue
            for name, weight in zip(names, layer.trainable_weights):
                value = K.get_value(weight)
                if name == 'cls/seq_relationship/output_weights' or \
                        'relative_attention_bias' in name:
                    value = value.T
                values[name] = value
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    return save_variables(prefix, values)


def variable_shapes(prefix):
    """``{name: shape}`` of a checkpoint, from its ``.index`` alone."""
    return dict(tf.train.list_variables(prefix))
