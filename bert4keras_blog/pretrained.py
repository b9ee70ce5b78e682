"""ALBERT and ELECTRA helpers that bert4keras lacks.

bert4keras builds ELECTRA's discriminator (``model='electra'``) but not its
generator. Google ships both in one pre-training checkpoint: the generator
shares the discriminator's embeddings (``electra/embeddings/...``) and has its
own projection (``generator/embeddings_project``), encoder
(``generator/encoder/layer_N/...``) and MLM head
(``generator_predictions/...``, output tied to the word embeddings). That
head has exactly the shape of BERT's MLM head (dense to embedding size, layer
norm, tied embedding, bias), so the generator is BERT with another variable
table.

ALBERT shares one layer's weights across all layers: fewer parameters, the
same computation. ``compare_architectures`` measures that.

Public API:
    ElectraGenerator: bert4keras ``BERT`` subclass reading the generator.
    build_electra_generator(config_path, checkpoint_path=None, **kwargs):
        the generator as a Keras model (MLM probabilities by default).
    parameter_count(config, model='bert') -> int: encoder parameters from
        the config alone (bert, albert, albert_unshared).
    width_for_parameters(config, target, model='albert') -> hidden size
        whose parameter count comes closest to ``target``.
    compare_architectures(named_configs, batch_size=8, seq_len=128, steps=5,
                          measure_memory=False) -> list of dict rows
"""
import time

import numpy as np

from bert4keras_blog import backend  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.models import BERT, build_transformer_model

__all__ = ['ElectraGenerator', 'build_electra_generator', 'parameter_count',
           'width_for_parameters', 'compare_architectures']


class ElectraGenerator(BERT):
    """ELECTRA's generator, read from Google's ELECTRA checkpoint.

    A ``BERT`` whose ``variable_mapping`` points at the generator's
    variables; layer names are bert4keras' (``Embedding-Token``,
    ``Transformer-0-MultiHeadSelfAttention``, ``MLM-Dense``, ...).
    """

    _EMBEDDING_TABLES = ('electra/embeddings/word_embeddings',
                         'generator_predictions/output_bias')

    def load_variable(self, checkpoint, name):
        variable = super(BERT, self).load_variable(checkpoint, name)
        if name in self._EMBEDDING_TABLES:
            return self.load_embeddings(variable)  # honours keep_tokens
        return variable

    def variable_mapping(self):
        renames = [
            ('bert/embeddings/', 'electra/embeddings/'),
            ('bert/encoder/layer_', 'generator/encoder/layer_'),
            ('cls/predictions/transform/dense/', 'generator_predictions/dense/'),
            ('cls/predictions/transform/LayerNorm/', 'generator_predictions/LayerNorm/'),
            ('cls/predictions/output_bias', 'generator_predictions/output_bias'),
        ]
        mapping = {}
        for layer, names in super(ElectraGenerator, self).variable_mapping().items():
            if layer in ('Pooler-Dense', 'NSP-Proba'):
                continue  # ELECTRA has neither
            for old, new in renames:
                names = [n.replace(old, new) for n in names]
            mapping[layer] = names
        mapping['Embedding-Mapping'] = ['generator/embeddings_project/kernel',
                                        'generator/embeddings_project/bias']
        return mapping


def build_electra_generator(config_path, checkpoint_path=None, with_mlm=True, **kwargs):
    """Builds ELECTRA's generator from Google's ELECTRA checkpoint.

    Args:
        config_path: str. The generator's config (BERT keys plus
            ``embedding_size``, which must equal the discriminator's).
        checkpoint_path: str. The ELECTRA pre-training checkpoint. Defaults
            to None (random weights).
        with_mlm: bool or str. True for probabilities, 'linear' for logits.
        **kwargs: passed to ``build_transformer_model``.

    Returns:
        A Keras model ``[token_ids, segment_ids] -> (batch, seq_len, vocab)``.

    Example:
    ```python
    from bert4keras_blog.checkpoints import tiny
    from bert4keras_blog.pretrained import build_electra_generator
    paths = tiny('electra')
    generator = build_electra_generator(paths['generator_config'], paths['checkpoint'])
    ```
    """
    return build_transformer_model(config_path, checkpoint_path, model=ElectraGenerator,
                                   with_mlm=with_mlm, **kwargs)


# ------------------------------------------------------- architecture costs

def parameter_count(config, model='bert'):
    """Parameters of the encoder (embeddings and layers, no pooler or heads).

    Args:
        config: dict with vocab_size, hidden_size, num_hidden_layers,
            intermediate_size, max_position (or max_position_embeddings),
            optional embedding_size and segment_vocab_size (or type_vocab_size).
        model: 'bert', 'albert' (one shared layer) or 'albert_unshared'.
    """
    V, H, I = config['vocab_size'], config['hidden_size'], config['intermediate_size']
    E = config.get('embedding_size') or H
    P = config.get('max_position', config.get('max_position_embeddings', 512))
    T = config.get('segment_vocab_size', config.get('type_vocab_size', 2))
    embeddings = (V + P + T) * E + 2 * E + (E * H + H if E != H else 0)
    layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    layers = 1 if model == 'albert' else config['num_hidden_layers']
    return embeddings + layers * layer


def width_for_parameters(config, target, model='albert', step=4):
    """The hidden size (multiple of ``step``, intermediate = 4x) whose
    parameter count comes closest to ``target``."""
    best = None
    for hidden in range(step, 8 * config['hidden_size'] + step, step):
        trial = dict(config, hidden_size=hidden, intermediate_size=4 * hidden)
        gap = abs(parameter_count(trial, model) - target)
        if best is None or gap < best[0]:
            best = (gap, hidden)
    return best[1]


def _measure(model_name, config, batch_size, seq_len, steps, seed=0):
    from bert4keras.optimizers import Adam
    from bert4keras_blog.backend import K, keras
    keras.utils.set_random_seed(seed)
    model = build_transformer_model(model=model_name, **config)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, config['vocab_size'], (batch_size, seq_len))
    inputs = [tokens, np.zeros_like(tokens)]
    model.predict_on_batch(inputs)  # builds the graph; not timed
    start = time.perf_counter()
    for _ in range(steps):
        model.predict_on_batch(inputs)
    inference = steps * batch_size * seq_len / (time.perf_counter() - start)
    trainer = keras.models.Model(model.inputs, model.output)
    trainer.compile(optimizer=Adam(1e-4), loss=lambda y, p: K.mean(K.square(p)))
    target = np.zeros((batch_size, seq_len, config['hidden_size']))
    trainer.train_on_batch(inputs, target)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_on_batch(inputs, target)
    training = steps * batch_size * seq_len / (time.perf_counter() - start)
    return {'parameters': int(model.count_params()), 'inference_tokens_per_s': inference,
            'training_tokens_per_s': training}


def _measure_in_child(args, queue):
    import resource
    row = _measure(*args)
    row['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    queue.put(row)


def compare_architectures(named_configs, batch_size=8, seq_len=128, steps=5,
                          measure_memory=False):
    """Parameters, inference and training throughput (and peak memory) of
    several encoders, measured one after another in the same run.

    Args:
        named_configs: list of (name, bert4keras model name, config dict),
            e.g. ``('ALBERT', 'albert', {...})``.
        batch_size, seq_len: the batch every model gets.
        steps: timed repetitions after one warm-up.
        measure_memory: bool. Run each model in a fresh process and report
            its peak resident memory (MB); slower (TensorFlow starts each time).

    Returns:
        list of dicts: name, model, parameters, formula_parameters,
        inference_tokens_per_s, training_tokens_per_s (and peak_rss_mb).
    """
    import multiprocessing
    rows = []
    for name, model_name, config in named_configs:
        args = (model_name, config, batch_size, seq_len, steps)
        if measure_memory:
            context = multiprocessing.get_context('spawn')
            queue = context.Queue()
            child = context.Process(target=_measure_in_child, args=(args, queue))
            child.start()
            row = queue.get()
            child.join()
        else:
            row = _measure(*args)
        row.update(name=name, model=model_name,
                   formula_parameters=parameter_count(config, model_name))
        rows.append(row)
    return rows
