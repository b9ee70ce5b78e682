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

Public API:
    ElectraGenerator: bert4keras ``BERT`` subclass reading the generator.
    build_electra_generator(config_path, checkpoint_path=None, **kwargs):
        the generator as a Keras model (MLM probabilities by default).
"""
from bert4keras_blog import backend  # noqa: F401  (bert4keras on TF 2.21)
from bert4keras.models import BERT, build_transformer_model

__all__ = ['ElectraGenerator', 'build_electra_generator']


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
