"""ELECTRA's generator and its pair with the discriminator, replaced-token
detection on a sentence, and the classifier every post-1 model fine-tunes.

Public API: ElectraGenerator, build_electra_generator, build_electra_pair,
replaced_token_detection, build_classifier (see ``pretrained``).
"""
import numpy as np

from bert4keras.models import BERT, build_transformer_model

from bert4keras_blog.checkpoints import build_model, read_config
from bert4keras_blog.compat import keras, special_tokens

__all__ = ['ElectraGenerator', 'build_electra_generator', 'build_electra_pair',
           'replaced_token_detection', 'build_classifier']


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
