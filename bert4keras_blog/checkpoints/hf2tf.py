"""Hugging Face model folders -> Google-format TF checkpoints bert4keras reads.

Most Chinese checkpoints are published on the Hugging Face hub
(bert-base-chinese, hfl/chinese-roberta-wwm-ext, hfl/chinese-electra-*,
voidful/albert_chinese_*, google/mt5-small). bert4keras reads Google's TF
release format. ``convert`` reads a folder with ``config.json``, weights in
``*.safetensors`` (read with the ``safetensors`` library, tensor by tensor)
or ``pytorch_model.bin`` (PyTorch, memory-mapped), and ``vocab.txt`` or
``spiece.model``, and writes the checkpoint, a config and the vocabulary.

Names follow the release each kind came from (the tables below, checked
against transformers' own TF readers ``load_tf_weights_in_*`` in the
tests). Linear weights are stored [in, out] by TF and [out, in] by PyTorch,
so they are transposed; so is T5's relative attention bias.

Every tensor of the source must be mapped or known to be redundant (tied
output embeddings, position-id buffers), and every encoder (and decoder)
tensor the config implies must be there; anything else is an error that
names the tensors, and nothing is written: the checkpoint goes to a
temporary folder first and is moved into place only when complete. Memory
stays bounded: tensors are read one at a time and written in shards of
about 256 MB, merged at the end.

Public API:
    KINDS: the kinds ``convert`` knows.
    convert(src_dir, out_dir, kind) -> dict of written paths
    tf_name(hf_name, kind) -> (tf name, transpose) or None for redundant tensors
    required_names(kind, config) -> the tensors a converted release must hold
"""
import json
import os
import re
import shutil
import tempfile

import numpy as np

from bert4keras_blog.checkpoints.releases import RELEASES, vocab_key
from bert4keras_blog.checkpoints.tfwriter import ShardedWriter
from bert4keras_blog.errors import BlogError
from bert4keras_blog.checkpoints.building import read_config
from bert4keras_blog.checkpoints.layouts import variable_names
from bert4keras_blog.checkpoints.integrity import check_sizes
from bert4keras_blog.checkpoints.layouts import variable_layout

__all__ = ['KINDS', 'convert', 'tf_name', 'required_names']

KINDS = ('bert', 'roberta', 'albert', 'electra', 'mt5.1.1')

# Tensors a Google checkpoint does not store: tied copies and buffers.
REDUNDANT = re.compile(r'(^|\.)(position_ids|predictions\.decoder\.(weight|bias)|generator_lm_head\.weight|'
                       r'encoder\.embed_tokens\.weight|decoder\.embed_tokens\.weight)$')


def _bert_layer(rest):
    """BERT encoder-layer names below ``layer.N.``."""
    table = [('attention.self.query', 'attention/self/query'),
             ('attention.self.key', 'attention/self/key'),
             ('attention.self.value', 'attention/self/value'),
             ('attention.output.dense', 'attention/output/dense'),
             ('attention.output.LayerNorm', 'attention/output/LayerNorm'),
             ('intermediate.dense', 'intermediate/dense'),
             ('output.dense', 'output/dense'),
             ('output.LayerNorm', 'output/LayerNorm')]
    for hf, tf in table:
        if rest.startswith(hf + '.'):
            return tf, rest[len(hf) + 1:]
    return None, None


def _leaf(module, param):
    """(suffix, transpose) for a parameter of a Linear, LayerNorm or Embedding."""
    if 'LayerNorm' in module or module.endswith('layer_norm'):
        return {'weight': 'gamma', 'gamma': 'gamma', 'bias': 'beta', 'beta': 'beta'}[param], False
    if module.endswith('embeddings') and param == 'weight':
        return '', False
    return {'weight': 'kernel', 'bias': 'bias'}[param], param == 'weight'


def _join(*parts):
    return '/'.join(p for p in parts if p)


def _bert_like(name, scope):
    """bert/roberta/electra encoders: ``embeddings.*`` and ``encoder.layer.N.*``."""
    found = re.match(r'^encoder\.layer\.(\d+)\.(.+)$', name)
    if found:
        module, param = _bert_layer(found.group(2))
        if module is None:
            return None
        suffix, transpose = _leaf(module, param)
        return _join(scope, 'encoder/layer_%s' % found.group(1), module, suffix), transpose
    found = re.match(r'^embeddings\.(word_embeddings|position_embeddings|token_type_embeddings|'
                     r'LayerNorm)\.(\w+)$', name)
    if found:
        module, param = found.groups()
        suffix, transpose = _leaf(module, param)
        return _join(scope, 'embeddings', module, suffix), transpose
    found = re.match(r'^(pooler\.dense|embeddings_project)\.(\w+)$', name)
    if found:
        suffix, transpose = _leaf(found.group(1), found.group(2))
        return _join(scope, found.group(1).replace('.', '/'), suffix), transpose
    return None


def _strip(name, prefixes):
    """``name`` without its model prefix (``bert.``, ``electra.``, ...)."""
    for prefix in prefixes:
        if name.startswith(prefix + '.'):
            return name[len(prefix) + 1:]
    return name


def _module(name, table):
    """A parameter of one of ``table``'s modules (HF prefix -> TF scope)."""
    for hf, tf in table:
        if name.startswith(hf + '.'):
            suffix, transpose = _leaf(tf, name[len(hf) + 1:])
            return _join(tf, suffix), transpose
    return None


BERT_HEADS = [('cls.predictions.transform.dense', 'cls/predictions/transform/dense'),
              ('cls.predictions.transform.LayerNorm', 'cls/predictions/transform/LayerNorm')]


# Head tensors stored as they are ([2, hidden] for the NSP/SOP weights in both).
BERT_EXACT = {'cls.predictions.bias': 'cls/predictions/output_bias',
              'cls.seq_relationship.weight': 'cls/seq_relationship/output_weights',
              'cls.seq_relationship.bias': 'cls/seq_relationship/output_bias'}
ALBERT_EXACT = {'predictions.bias': 'cls/predictions/output_bias',
                'sop_classifier.classifier.weight': 'cls/seq_relationship/output_weights',
                'sop_classifier.classifier.bias': 'cls/seq_relationship/output_bias'}


def _head_or_encoder(name, rest, heads, exact, scope='bert'):
    """A head tensor (by module prefix, or by its exact name), else an
    encoder tensor under ``scope``."""
    found = _module(name, heads)
    if found:
        return found
    if name in exact:
        return exact[name], False
    return _bert_like(rest, scope)


def _bert(name):
    return _head_or_encoder(name, _strip(name, ('bert', 'roberta')), BERT_HEADS, BERT_EXACT)


ALBERT_LAYER = [('attention.query', 'attention_1/self/query'),
                ('attention.key', 'attention_1/self/key'),
                ('attention.value', 'attention_1/self/value'),
                ('attention.dense', 'attention_1/output/dense'),
                ('attention.LayerNorm', 'LayerNorm'),
                ('ffn_output', 'ffn_1/intermediate/output/dense'),
                ('ffn', 'ffn_1/intermediate/dense'),
                ('full_layer_layer_norm', 'LayerNorm_1')]


ALBERT_HEADS = [('predictions.dense', 'cls/predictions/transform/dense'),
                ('predictions.LayerNorm', 'cls/predictions/transform/LayerNorm')]


def _albert(name):
    rest = _strip(name, ('albert',))
    found = re.match(r'^encoder\.albert_layer_groups\.(\d+)\.albert_layers\.(\d+)\.(.+)$', rest)
    if found:
        group, inner, tail = found.groups()
        layer = _module(tail, ALBERT_LAYER)
        if layer is None:
            return None
        scope = 'bert/encoder/transformer/group_%s/inner_group_%s' % (group, inner)
        return _join(scope, layer[0]), layer[1]
    if rest.startswith('encoder.embedding_hidden_mapping_in.'):
        suffix, transpose = _leaf('mapping', rest.split('.')[-1])
        return _join('bert/encoder/embedding_hidden_mapping_in', suffix), transpose
    if rest.startswith('pooler.') and rest.count('.') == 1:  # a Linear, not pooler.dense
        suffix, transpose = _leaf('pooler', rest.split('.')[-1])
        return _join('bert/pooler/dense', suffix), transpose
    return _head_or_encoder(name, rest, ALBERT_HEADS, ALBERT_EXACT)


ELECTRA_HEADS = [('discriminator_predictions.dense_prediction', 'discriminator_predictions/dense_1'),
                 ('discriminator_predictions.dense', 'discriminator_predictions/dense'),
                 ('generator_predictions.dense', 'generator_predictions/dense'),
                 ('generator_predictions.LayerNorm', 'generator_predictions/LayerNorm')]
ELECTRA_EXACT = {'generator_lm_head.bias': 'generator_predictions/output_bias'}


def _electra(name, generator=False):
    rest = _strip(name, ('electra',))
    scope = 'generator' if generator else 'electra'
    if generator and rest.startswith('embeddings.'):
        scope = 'electra'  # Google's checkpoints share the embeddings under electra/
    return _head_or_encoder(name, rest, ELECTRA_HEADS, ELECTRA_EXACT, scope)


def _mt5(name):
    if name == 'shared.weight':
        return 'shared/embedding', False
    if name == 'lm_head.weight':
        return 'decoder/logits/kernel', True
    found = re.match(r'^(encoder|decoder)\.final_layer_norm\.weight$', name)
    if found:
        return '%s/rms_norm/scale' % found.group(1), False
    found = re.match(r'^(encoder|decoder)\.block\.(\d+)\.layer\.(\d+)\.(.+)$', name)
    if not found:
        return None
    stack, block, layer, tail = found.groups()
    prefix = '%s/block_%03d/layer_%03d' % (stack, int(block), int(layer))
    if tail == 'layer_norm.weight':
        return prefix + '/rms_norm/scale', False
    found = re.match(r'^(SelfAttention|EncDecAttention)\.(q|k|v|o)\.weight$', tail)
    if found:
        return '%s/%s/%s' % (prefix, found.group(1), found.group(2)), True
    if tail == 'SelfAttention.relative_attention_bias.weight':  # [buckets, heads] -> [heads, buckets]
        return prefix + '/SelfAttention/relative_attention_bias', True
    found = re.match(r'^DenseReluDense\.(wi_0|wi_1|wo)\.weight$', tail)
    if found:
        return '%s/DenseReluDense/%s/kernel' % (prefix, found.group(1)), True
    return None


def tf_name(hf_name, kind, generator=False):
    """The Google-format name of one Hugging Face tensor.

    Returns:
        (tf name, transpose: bool), or None if the tensor is redundant (a
        tied copy or a buffer). Raises KeyError for a tensor it does not know.
    """
    if REDUNDANT.search(hf_name):
        return None
    mapper = {'bert': _bert, 'roberta': _bert, 'albert': _albert, 'mt5.1.1': _mt5,
              'electra': lambda n: _electra(n, generator)}[kind]
    found = mapper(hf_name)
    if found is None:
        raise KeyError(hf_name)
    return found


# ------------------------------------------------------------------ reading

def _weight_files(src_dir):
    """The weight files of a model folder: safetensors first, else .bin."""
    names = sorted(os.listdir(src_dir))
    found = [n for n in names if n.endswith('.safetensors')]
    if not found:
        found = [n for n in names if n.endswith('.bin') and n.startswith('pytorch_model')]
    if not found:
        raise BlogError('%s has no *.safetensors or pytorch_model*.bin weights' % src_dir)
    return [os.path.join(src_dir, n) for n in found]


def iter_tensors(path):
    """(name, numpy array) one at a time; a .bin is memory-mapped by PyTorch."""
    if path.endswith('.safetensors'):
        from safetensors import safe_open  # optional: only for Hugging Face folders
        try:
            with safe_open(path, framework='numpy') as f:
                for name in f.keys():
                    yield name, f.get_tensor(name)
        except Exception as error:  # safetensors' own error type, OSError, ValueError
            raise BlogError('%s is not a readable safetensors file (%s: %s); download it '
                            'again' % (path, type(error).__name__,
                                       str(error).splitlines()[0][:120])) from None
        return
    try:
        import torch  # optional: only for PyTorch .bin files
    except ImportError:
        raise BlogError('%s is a PyTorch file: pip install torch (CPU build) to read it, or '
                        'convert it to safetensors first' % path)
    try:
        state = torch.load(path, map_location='cpu', mmap=True, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise BlogError('%s is not a readable PyTorch weights file (%s: %s)' % (
            path, type(error).__name__, str(error).splitlines()[0][:120])) from None
    for name in list(state):
        yield name, state.pop(name).float().numpy()


def _electra_is_generator(config):
    return 'generator_predictions' in json.dumps(config) or \
        any('Generator' in a or 'MaskedLM' in a for a in config.get('architectures', []))


# The model_type a Hugging Face config of each kind declares.
MODEL_TYPES = {'bert': ('bert',), 'roberta': ('bert', 'roberta'), 'albert': ('albert',),
               'electra': ('electra',), 'mt5.1.1': ('mt5', 't5')}


def _configs(kind, hf, generator, path='config.json'):
    """The bert4keras JSON config (Google's keys) for a Hugging Face config,
    its sizes checked."""
    declared = hf.get('model_type')
    if declared is not None and declared not in MODEL_TYPES[kind]:
        right = [k for k, types in MODEL_TYPES.items() if declared in types]
        raise BlogError('%s: model_type is %r, not a %s model%s' % (
            path, declared, kind, '; convert it with --kind %s' % right[0] if right else ''))
    try:
        config = _google_config(kind, hf)
    except KeyError as missing:
        raise BlogError("%s: key %s is missing (a %s config gives it)" % (path, missing, kind)) \
            from None
    return check_sizes(config, kind, path)


def _google_config(kind, hf):
    if kind == 'mt5.1.1':  # the keys of mt5.CONFIGS
        return {'vocab_size': hf['vocab_size'], 'hidden_size': hf['d_model'],
                'num_hidden_layers': hf['num_layers'], 'num_attention_heads': hf['num_heads'],
                'attention_head_size': hf['d_kv'], 'intermediate_size': hf['d_ff'],
                'hidden_act': ['gelu_tanh', 'linear'],
                'hidden_dropout_prob': hf.get('dropout_rate', 0.1),
                'relative_attention_num_buckets': hf.get('relative_attention_num_buckets', 32)}
    keys = ('vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads',
            'intermediate_size', 'hidden_act', 'hidden_dropout_prob',
            'attention_probs_dropout_prob', 'max_position_embeddings', 'type_vocab_size',
            'initializer_range', 'embedding_size', 'num_hidden_groups', 'inner_group_num')
    config = {k: hf[k] for k in keys if k in hf}
    if kind == 'roberta' and hf.get('model_type') == 'roberta':
        raise BlogError('this is a fairseq-style RoBERTa (model_type roberta, position ids '
                        'offset by 2); Chinese RoBERTa-wwm-ext is published as a BERT '
                        '(model_type bert): convert it with --kind bert')
    if kind == 'electra' and config.get('embedding_size') == config['hidden_size']:
        config.pop('embedding_size')
    if hf.get('hidden_act') == 'gelu_new':
        config['hidden_act'] = 'gelu'
    return config


# ------------------------------------------------------------- what must be

# Heads, poolers and optimizer slots: a release may lack them.
OPTIONAL = re.compile(r'^(cls|bert/pooler|discriminator_predictions|generator_predictions)/|_slot_')


def required_names(kind, config, generator=False):
    """The encoder (and for mT5 the decoder) tensors a release of ``kind``
    with ``config`` cannot do without: Google's layout as ``checkpoints``
    writes it, less ``OPTIONAL``. An ELECTRA generator keeps its encoder
    under ``generator/`` and the embeddings under ``electra/``."""
    names = [n for n in variable_names(kind, config) if not OPTIONAL.search(n)]
    if kind == 'electra':
        keep = ('generator/', 'electra/embeddings/') if generator else ('electra/',)
        names = [n for n in names if n.startswith(keep)]
    return names


# ------------------------------------------------------------------ convert

def convert(src_dir, out_dir, kind, shard_bytes=256 << 20):
    """Converts a Hugging Face model folder into a Google-format release.

    Args:
        src_dir: folder with config.json, weights (*.safetensors or
            pytorch_model.bin) and vocab.txt or spiece.model.
        out_dir: created; must not exist or be empty.
        kind: one of ``KINDS``. An ELECTRA folder is a discriminator
            (ElectraForPreTraining) or a generator (ElectraForMaskedLM); the
            generator's encoder is written under ``generator/`` as in
            Google's checkpoints, its embeddings under ``electra/``.

    Returns:
        dict: config, checkpoint (prefix), and dict or spm.
    """
    config_path, hf_config, vocab = _check_source(src_dir, out_dir, kind)
    generator = kind == 'electra' and _electra_is_generator(hf_config)
    config = _configs(kind, hf_config, generator, config_path)
    release = RELEASES[kind]
    config_name = release.generator_config if generator else release.config
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.hf2tf-', dir=parent)
    try:
        _write_weights(src_dir, os.path.join(staging, release.checkpoint), kind, generator,
                       config, config_path, shard_bytes)
        with open(os.path.join(staging, config_name), 'w') as f:
            json.dump(config, f, indent=2)
        shutil.copy(vocab, os.path.join(staging, release.vocab))
        _publish(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {'config': os.path.join(out_dir, config_name),
            'checkpoint': os.path.join(out_dir, release.checkpoint),
            vocab_key(kind): os.path.join(out_dir, release.vocab)}


def _check_source(src_dir, out_dir, kind):
    """What must hold before anything is written; returns (config path, the
    Hugging Face config, the vocabulary file)."""
    if kind not in KINDS:
        raise BlogError('unknown kind %r; choose from %s' % (kind, ', '.join(KINDS)))
    config_path = os.path.join(src_dir, 'config.json')
    if not os.path.exists(config_path):
        raise BlogError('%s has no config.json (is it a Hugging Face model folder?)' % src_dir)
    hf_config = read_config(config_path)
    vocab = [n for n in ('vocab.txt', 'spiece.model') if os.path.exists(os.path.join(src_dir, n))]
    if not vocab:
        raise BlogError('%s has neither vocab.txt nor spiece.model' % src_dir)
    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise BlogError('%s exists and is not empty; nothing was written' % out_dir)
    return config_path, hf_config, os.path.join(src_dir, vocab[0])


def _write_weights(src_dir, prefix, kind, generator, config, config_path, shard_bytes):
    """Streams every tensor under its TF name into a sharded checkpoint at
    ``prefix``, checking each shape against the config; refuses unknown and
    missing tensors."""
    shapes = variable_layout(kind, config)
    writer = ShardedWriter(prefix, shard_bytes)
    unknown, written = [], {}
    for path in _weight_files(src_dir):
        for name, value in iter_tensors(path):
            try:
                target = tf_name(name, kind, generator)
            except KeyError:
                unknown.append(name)
                continue
            if target is None:
                continue
            tf_var, transpose = target
            if tf_var in written:
                raise BlogError('%s and %s both map to %s' % (written[tf_var], name, tf_var))
            written[tf_var] = name
            value = np.asarray(value, dtype=np.float32)
            value = np.ascontiguousarray(value.T) if transpose else value
            if tf_var in shapes and value.shape != shapes[tf_var]:
                raise BlogError('%s: tensor %s has shape %s, but %s implies %s for %s; '
                                'the config and the weights disagree, nothing was written'
                                % (src_dir, name, value.shape, config_path,
                                   shapes[tf_var], tf_var))
            writer.add(tf_var, value)
    if unknown:
        raise BlogError('%s: %d tensors have no %s name, nothing was written: %s'
                        % (src_dir, len(unknown), kind, ', '.join(unknown[:20])))
    missing = sorted(set(required_names(kind, config, generator)) - set(written))
    if missing:
        raise BlogError('%s: %d tensors a %s checkpoint needs are missing, nothing was '
                        'written: %s' % (src_dir, len(missing), kind, ', '.join(missing[:20])))
    writer.close()


def _publish(staging, out_dir):
    """The finished folder takes ``out_dir``'s name in one step, with the
    permissions the umask gives (mkdtemp made it private, 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    if os.path.exists(out_dir):
        os.rmdir(out_dir)
    os.replace(staging, out_dir)
