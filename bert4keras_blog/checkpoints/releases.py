"""The real releases: their folders, file names and model kinds, in one table.

The tiny writer names its files after this table, the Hugging Face
converter writes this layout, and ``finding`` looks for these names first.

Public API:
    RELEASES: {kind: Release}; Release fields: kind, model (bert4keras'
        name), title, folder, config, checkpoint, vocab ('dict' file or
        'spm' model), generator_config (ELECTRA), source (where to get it),
        config_patterns, vocab_patterns (the names other mirrors use).
    vocab_key(kind) -> 'spm' or 'dict'.
"""
import collections

__all__ = ['RELEASES', 'Release', 'vocab_key']

Release = collections.namedtuple(
    'Release', 'kind model title folder config checkpoint vocab generator_config source '
               'config_patterns vocab_patterns')

_BERT = dict(config='bert_config.json', checkpoint='bert_model.ckpt', vocab='vocab.txt',
             generator_config=None, config_patterns=('bert_config*.json', '*config*.json'),
             vocab_patterns=('vocab*.txt',))

RELEASES = collections.OrderedDict((r.kind, r) for r in [
    Release(kind='bert', model='bert', title='Google BERT-Base, Chinese',
            folder='chinese_L-12_H-768_A-12',
            source='github.com/google-research/bert (chinese_L-12_H-768_A-12.zip)', **_BERT),
    Release(kind='roberta', model='roberta', title='HFL RoBERTa-wwm-ext, Chinese',
            folder='chinese_roberta_wwm_ext_L-12_H-768_A-12',
            source='github.com/ymcui/Chinese-BERT-wwm (TF release)', **_BERT),
    Release(kind='albert', model='albert', title='Google ALBERT-Base, Chinese',
            folder='albert_base', config='albert_config.json', checkpoint='model.ckpt-best',
            vocab='vocab_chinese.txt', generator_config=None,
            source='github.com/google-research/albert (albert_base_zh.tar.gz)',
            config_patterns=('albert_config*.json', '*config*.json'),
            vocab_patterns=('vocab*.txt',)),
    Release(kind='electra', model='electra', title='HFL ELECTRA-base, Chinese',
            folder='chinese_electra_base_L-12_H-768_A-12',
            config='base_discriminator_config.json', checkpoint='electra_base',
            vocab='vocab.txt', generator_config='base_generator_config.json',
            source='github.com/ymcui/Chinese-ELECTRA (TF release)',
            config_patterns=('*discriminator_config.json', '*config*.json'),
            vocab_patterns=('vocab*.txt',)),
    Release(kind='mt5.1.1', model='mt5.1.1', title='Google mT5 v1.1 (small, base)',
            folder='mt5_small', config='mt5_config.json',
            checkpoint='model.ckpt-1000000', vocab='sentencepiece.model',
            generator_config=None,
            source='gs://t5-data/pretrained_models/mt5/small (+ gs://t5-data/vocabs/'
                   'mc4.250000.100extra/sentencepiece.model)',
            config_patterns=('*config*.json',), vocab_patterns=('*.model',)),
])

def vocab_key(kind):
    """'spm' for sentencepiece kinds, else 'dict' (a vocab.txt)."""
    return 'spm' if kind == 'mt5.1.1' else 'dict'
