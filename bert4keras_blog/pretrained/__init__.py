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

Modules: ``electra`` (the generator, the generator-discriminator pair,
replaced-token detection, the fine-tuning classifier), ``costs``
(parameters, FLOPs and measured throughput of architectures, each measured
in its own process), ``pretraining`` (one ELECTRA or masked-LM step as a
Keras ``train_step``), ``budget`` (pre-training for a fixed time, and the
small releases it writes).

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
    SMALL, write_initial(kind, folder, seed=0, **sizes) -> paths: a random
        small release (hidden 128, 4 layers) to pre-train from.
    TimeBudget(seconds, clock='wall', ...): Keras callback ending ``fit`` on time.
    pretrain_for(trainer, batches, seconds, clock='wall', ...) -> steps,
        seconds, CPU seconds and the loss curve of a budgeted pre-training.
    write_release(models, initial, folder) -> paths: trained weights as a release.
"""
from bert4keras_blog.pretrained.budget import (
    SMALL, TimeBudget, pretrain_for, write_initial, write_release)
from bert4keras_blog.pretrained.costs import (
    compare_architectures, flops_per_token, parameter_count, width_for_parameters)
from bert4keras_blog.pretrained.electra import (
    ElectraGenerator, build_classifier, build_electra_generator, build_electra_pair,
    replaced_token_detection)
from bert4keras_blog.pretrained.pretraining import ElectraPretraining, MaskedLMPretraining

__all__ = ['ElectraGenerator', 'build_electra_generator', 'parameter_count', 'flops_per_token',
           'build_classifier', 'width_for_parameters', 'compare_architectures',
           'build_electra_pair', 'ElectraPretraining', 'MaskedLMPretraining',
           'replaced_token_detection', 'SMALL', 'write_initial', 'TimeBudget', 'pretrain_for',
           'write_release']
