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
    flops_per_token(config, seq_len, model='bert') -> forward FLOPs per token
    width_for_parameters(config, target, model='albert') -> hidden size
        whose parameter count comes closest to ``target``.
    compare_architectures(named_configs, batch_size=8, seq_len=128, steps=5,
                          measure_memory=False) -> list of dict rows
    build_electra_pair(config, generator_config, checkpoint=None) ->
        (discriminator, generator): bert4keras objects whose embeddings are
        the same layers, as in Google's ELECTRA
    ElectraPretraining(discriminator, generator, mask_id, ...): keras.Model
        whose train_step is one ELECTRA step (generator MLM + 50 x RTD)
    MaskedLMPretraining(transformer, mask_id, ...): the MLM-only baseline
    replaced_token_detection(text, tokenizer, generator, discriminator, ...)
        -> per token: replaced by the generator? flagged by the discriminator?
    build_classifier(kind, paths, num_labels=2, ...) -> a classifier on the [CLS] vector.
"""
import multiprocessing
import resource
import time

import numpy as np

from bert4keras_blog.compat import K, keras, tf
from bert4keras.models import BERT, build_transformer_model
from bert4keras.optimizers import Adam
from bert4keras_blog.checkpoints import build_model, read_config, special_tokens

__all__ = ['ElectraGenerator', 'build_electra_generator', 'parameter_count', 'flops_per_token',
           'build_classifier',
           'width_for_parameters', 'compare_architectures', 'build_electra_pair',
           'ElectraPretraining', 'MaskedLMPretraining', 'replaced_token_detection']


class ElectraGenerator(BERT):
    """ELECTRA's generator, read from Google's ELECTRA checkpoint.

    A ``BERT`` whose ``variable_mapping`` points at the generator's
    variables; layer names are bert4keras' (``Embedding-Token``,
    ``Transformer-0-MultiHeadSelfAttention``, ``MLM-Dense``, ...).
    """

    _EMBEDDING_TABLES = ('electra/embeddings/word_embeddings',
                         'generator_predictions/output_bias')

    def load_variable(self, checkpoint, name):
        # BERT's own load_variable trims embedding tables (keep_tokens) only
        # under their 'bert/...' names; the generator's tables have ELECTRA's.
        variable = super(ElectraGenerator, self).load_variable(checkpoint, name)
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


def flops_per_token(config, seq_len, model='bert'):
    """Forward multiply-adds x 2 per token of the encoder layers: the dense
    layers plus attention scores and their weighted sum. Sharing weights
    (ALBERT) does not change it; width does."""
    H, I, L = config['hidden_size'], config['intermediate_size'], config['num_hidden_layers']
    E = config.get('embedding_size') or H
    per_layer = 2 * (4 * H * H + 2 * H * I) + 2 * 2 * seq_len * H
    return L * per_layer + (2 * E * H if E != H else 0)


def _workloads(model_name, config, batch_size, seq_len, seed=0):
    """Builds one model; returns (parameters, predict step, train step)."""
    keras.utils.set_random_seed(seed)
    model = build_transformer_model(model=model_name, **config)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, config['vocab_size'], (batch_size, seq_len))
    inputs = [tokens, np.zeros_like(tokens)]
    trainer = keras.models.Model(model.inputs, model.output)
    trainer.compile(optimizer=Adam(1e-4), loss=lambda y, p: K.mean(K.square(p)))
    target = np.zeros((batch_size, seq_len, config['hidden_size']))
    infer = lambda: model.predict_on_batch(inputs)  # noqa: E731
    train = lambda: trainer.train_on_batch(inputs, target)  # noqa: E731
    for _ in range(3):  # graph building and TensorFlow's one-time start-up: not timed
        infer()
    for _ in range(2):
        train()
    return int(model.count_params()), infer, train


def _measure_interleaved(workloads, tokens, steps):
    """Times every model once per round, round after round, so drifts in
    machine speed hit all models alike; medians over the rounds.

    Both clocks are kept: wall time (what a user waits) and this process's
    CPU time (the computation itself). On a shared CPU machine the wall-time
    ratio of two equal models swings 0.65-1.9 between runs while the CPU-time
    ratio stays within a few per cent, so comparisons should use the latter.
    (On a GPU the CPU clock misses the device's work: use wall time there.)"""
    clocks = (('', time.perf_counter), ('_cpu', time.process_time))
    times = [{key + suffix: [] for key in ('infer', 'train') for suffix, _ in clocks}
             for _ in workloads]
    for _ in range(steps):
        for (_, infer, train), record in zip(workloads, times):
            for key, function in (('infer', infer), ('train', train)):
                starts = [clock() for _, clock in clocks]
                function()
                for (suffix, clock), start in zip(clocks, starts):
                    record[key + suffix].append(clock() - start)
    names = {'infer': 'inference_tokens_per_', 'train': 'training_tokens_per_'}
    rows = []
    for (parameters, _, _), record in zip(workloads, times):
        row = {'parameters': parameters}
        for key, prefix in names.items():
            row[prefix + 's'] = tokens / float(np.median(record[key]))
            row[prefix + 'cpu_s'] = tokens / max(float(np.median(record[key + '_cpu'])), 1e-9)
        rows.append(row)
    return rows


def _measure(model_name, config, batch_size, seq_len, steps, seed=0):
    workload = _workloads(model_name, config, batch_size, seq_len, seed)
    return _measure_interleaved([workload], batch_size * seq_len, steps)[0]


def _measure_in_child(args, queue):
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
            its peak resident memory (MB); slower (TensorFlow starts each
            time). Otherwise all models live in this process and are timed in
            interleaved rounds, which is fairer on a busy machine.

    Returns:
        list of dicts: name, model, parameters, formula_parameters,
        flops_per_token, inference_tokens_per_s, training_tokens_per_s
        (wall clock), inference_tokens_per_cpu_s, training_tokens_per_cpu_s
        (process CPU time: the stable one for comparing models on a shared
        CPU machine) and, with measure_memory, peak_rss_mb.
    """
    if measure_memory:
        rows = []
        for name, model_name, config in named_configs:
            context = multiprocessing.get_context('spawn')
            queue = context.Queue()
            child = context.Process(target=_measure_in_child, args=(
                (model_name, config, batch_size, seq_len, steps), queue))
            child.start()
            rows.append(queue.get())
            child.join()
    else:
        workloads = [_workloads(model_name, config, batch_size, seq_len)
                     for _, model_name, config in named_configs]
        rows = _measure_interleaved(workloads, batch_size * seq_len, steps)
    for row, (name, model_name, config) in zip(rows, named_configs):
        row.update(name=name, model=model_name,
                   formula_parameters=parameter_count(config, model_name),
                   flops_per_token=flops_per_token(config, seq_len, model_name))
    return rows


def build_classifier(kind, paths, num_labels=2, dropout_rate=0.1, **kwargs):
    """A sentence classifier on any of the encoders: [CLS] vector, dropout,
    softmax. For ELECTRA this fine-tunes the discriminator, as the paper does.

    Args:
        kind: str. 'bert', 'albert', 'albert_unshared', 'electra', ...
        paths: dict with 'config' and 'checkpoint'.
        num_labels: int. Defaults to 2.
        dropout_rate: float. Before the output layer. Defaults to 0.1.
        **kwargs: passed to ``build_transformer_model``.

    Returns:
        keras.Model ``[token_ids, segment_ids] -> (batch, num_labels)``,
        not compiled.
    """
    encoder = build_model(kind, paths, **kwargs)
    cls = keras.layers.Lambda(lambda h: h[:, 0], name='CLS-token')(encoder.output)
    cls = keras.layers.Dropout(dropout_rate)(cls)
    output = keras.layers.Dense(num_labels, activation='softmax', name='Classifier')(cls)
    return keras.models.Model(encoder.inputs, output)


# ------------------------------------------------------------ ELECTRA

_SHARED_EMBEDDINGS = ('Embedding-Token', 'Embedding-Segment', 'Embedding-Position',
                      'Embedding-Norm')


def build_electra_pair(config, generator_config, checkpoint=None, **kwargs):
    """Discriminator and generator with shared embeddings.

    Google's ELECTRA keeps one ``electra/embeddings`` for both networks; here
    the generator's embedding layers are the discriminator's own layer
    objects. The generator's other layers are prefixed ``Generator-``.

    Args:
        config, generator_config: paths of the two JSON configs.
        checkpoint: str or None. Google's ELECTRA pre-training checkpoint.
        **kwargs: passed to both builds (``dropout_rate=0``, ...).

    Returns:
        (discriminator, generator): bert4keras objects; ``.model`` gives the
        Keras models (discriminator: replaced-token logits (batch, seq_len, 1);
        generator: MLM probabilities).
    """
    discriminator = build_transformer_model(config, checkpoint, model='electra',
                                            with_discriminator='linear',
                                            return_keras_model=False, **kwargs)
    shared = {'Generator-' + name: discriminator.layers[name] for name in _SHARED_EMBEDDINGS
              if name in discriminator.layers}
    settings = dict(read_config(generator_config), **kwargs)
    settings.setdefault('max_position', settings.get('max_position_embeddings', 512))
    settings.setdefault('dropout_rate', settings.get('hidden_dropout_prob'))
    settings.setdefault('segment_vocab_size', settings.get('type_vocab_size', 2))
    generator = ElectraGenerator(prefix='Generator-', layers=shared, with_mlm=True, **settings)
    generator.build(**settings)
    if checkpoint is not None:
        generator.load_weights_from_checkpoint(checkpoint)
    return discriminator, generator


def _mask_tokens(token_ids, mask_id, special_ids, rate):
    """Chooses ``rate`` of the real tokens (not padding, not ``special_ids``)
    and puts ``mask_id`` there. Returns (masked ids, chosen positions)."""
    token_ids = tf.cast(token_ids, 'int32')
    candidates = token_ids > 0
    for special in special_ids:
        candidates = tf.logical_and(candidates, token_ids != special)
    chosen = tf.logical_and(candidates, tf.random.uniform(tf.shape(token_ids)) < rate)
    return tf.where(chosen, mask_id, token_ids), chosen


def _masked_lm_loss(probabilities, token_ids, chosen):
    loss = K.sparse_categorical_crossentropy(token_ids, probabilities)
    weights = tf.cast(chosen, loss.dtype)
    return tf.reduce_sum(loss * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


class _Pretraining(keras.Model):
    """Shared train_step: ``losses_for(token_ids, segment_ids)`` gives a dict
    with 'loss' (optimised) and whatever else to report."""

    def __init__(self, mask_id, special_ids, rate, **kwargs):
        super().__init__(**kwargs)
        self.mask_id, self.special_ids, self.rate = mask_id, tuple(special_ids), rate
        self.trackers = {}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        token_ids, segment_ids = tf.cast(x[0], 'int32'), x[1]
        with tf.GradientTape() as tape:
            losses = self.losses_for(token_ids, segment_ids)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(losses['loss'], variables), variables))
        for name, value in losses.items():
            if name not in self.trackers:
                self.trackers[name] = keras.metrics.Mean(name=name)
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


class ElectraPretraining(_Pretraining):
    """One ELECTRA step per batch of ``[token_ids, segment_ids]``.

    ``rate`` of the tokens are masked; the generator (an MLM, a quarter of
    the discriminator's size in Google's recipe) predicts them; its samples
    (no gradient through sampling) replace the masked tokens; the
    discriminator tells, at every real position, whether the token was
    replaced. Loss = generator MLM + ``rtd_weight`` x discriminator binary
    cross-entropy (50 in the paper). Both networks share their embeddings
    (``build_electra_pair``).

    Args:
        discriminator, generator: from ``build_electra_pair``.
        mask_id: int. ``[MASK]``.
        special_ids: ids never masked (``[CLS]``, ``[SEP]``).
        rate: float. Share of tokens masked. Defaults to 0.15.
        rtd_weight: float. Defaults to 50.

    Compile with an optimizer and ``fit`` on ``[token_ids, segment_ids]``.
    Metrics: loss, mlm_loss, rtd_loss, rtd_accuracy.
    """

    def __init__(self, discriminator, generator, mask_id, special_ids=(), rate=0.15,
                 rtd_weight=50.0, **kwargs):
        super().__init__(mask_id, special_ids, rate, **kwargs)
        self.discriminator_model, self.generator_model = discriminator.model, generator.model
        self.rtd_weight = rtd_weight

    def losses_for(self, token_ids, segment_ids):
        masked, chosen = _mask_tokens(token_ids, self.mask_id, self.special_ids, self.rate)
        probabilities = self.generator_model([masked, segment_ids], training=True)
        mlm = _masked_lm_loss(probabilities, token_ids, chosen)
        log_probabilities = tf.math.log(
            tf.reshape(probabilities, [-1, tf.shape(probabilities)[-1]]) + 1e-9)
        sampled = tf.reshape(tf.random.categorical(log_probabilities, 1, dtype='int32'),
                             tf.shape(token_ids))
        corrupted = tf.stop_gradient(tf.where(chosen, sampled, token_ids))
        replaced = tf.cast(tf.not_equal(corrupted, token_ids), 'float32')
        logits = self.discriminator_model([corrupted, segment_ids], training=True)[..., 0]
        real = tf.cast(token_ids > 0, 'float32')
        bce = tf.nn.sigmoid_cross_entropy_with_logits(replaced, logits)
        rtd = tf.reduce_sum(bce * real) / tf.reduce_sum(real)
        right = tf.cast(tf.equal(tf.cast(logits > 0, 'float32'), replaced), 'float32')
        return {'loss': mlm + self.rtd_weight * rtd, 'mlm_loss': mlm, 'rtd_loss': rtd,
                'rtd_accuracy': tf.reduce_sum(right * real) / tf.reduce_sum(real)}


class MaskedLMPretraining(_Pretraining):
    """The MLM-only baseline (BERT's objective) with the same masking.

    Args: ``transformer`` (bert4keras object built with ``with_mlm=True``),
    then as ``ElectraPretraining``. Metrics: loss, mlm_loss.
    """

    def __init__(self, transformer, mask_id, special_ids=(), rate=0.15, **kwargs):
        super().__init__(mask_id, special_ids, rate, **kwargs)
        self.mlm_model = transformer.model

    def losses_for(self, token_ids, segment_ids):
        masked, chosen = _mask_tokens(token_ids, self.mask_id, self.special_ids, self.rate)
        probabilities = self.mlm_model([masked, segment_ids], training=True)
        mlm = _masked_lm_loss(probabilities, token_ids, chosen)
        return {'loss': mlm, 'mlm_loss': mlm}


def replaced_token_detection(text, tokenizer, generator, discriminator, rate=0.15, seed=0):
    """Corrupts ``text`` with generator samples; shows what the discriminator flags.

    Args:
        text: str.
        tokenizer: bert4keras ``Tokenizer``.
        generator, discriminator: Keras models (generator: MLM probabilities;
            discriminator: replaced-token logits or probabilities,
            (batch, seq_len, 1)), e.g. ``.model`` of ``build_electra_pair``.
        rate: float. Share of tokens masked before sampling.
        seed: int.

    Returns:
        list of dicts, one per token between [CLS] and [SEP]: 'token',
        'shown' (what the discriminator saw), 'replaced' (bool), 'score'
        (discriminator's probability that it was replaced).
    """
    rng = np.random.default_rng(seed)
    token_ids, segment_ids = tokenizer.encode(text)
    token_ids, segment_ids = np.array([token_ids]), np.array([segment_ids])
    chosen = np.zeros_like(token_ids, dtype=bool)
    chosen[0, 1:-1] = rng.random(token_ids.shape[1] - 2) < rate
    if not chosen.any():
        chosen[0, 1 + rng.integers(token_ids.shape[1] - 2)] = True
    masked = np.where(chosen, special_tokens(tokenizer).mask, token_ids)
    probabilities = generator.predict([masked, segment_ids], verbose=0)[0]
    corrupted = token_ids.copy()
    for position in np.flatnonzero(chosen[0]):
        p = probabilities[position].astype('float64')
        corrupted[0, position] = rng.choice(len(p), p=p / p.sum())
    scores = discriminator.predict([corrupted, segment_ids], verbose=0)[0, :, 0]
    if scores.min() < 0 or scores.max() > 1:  # logits
        scores = 1 / (1 + np.exp(-scores))
    return [{'token': tokenizer.id_to_token(int(token_ids[0, i])),
             'shown': tokenizer.id_to_token(int(corrupted[0, i])),
             'replaced': bool(corrupted[0, i] != token_ids[0, i]), 'score': float(scores[i])}
            for i in range(1, token_ids.shape[1] - 1)]
