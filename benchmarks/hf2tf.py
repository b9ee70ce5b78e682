"""Peak memory of converting a base-sized Hugging Face BERT to Google format.

A random BERT-Base Chinese (vocab 21,128, hidden 768, 12 layers, 102M
parameters, ~410 MB of float32) is saved by transformers as safetensors, then
converted in a fresh process two ways, each process's peak resident memory
(ru_maxrss) measured:
- baseline: the whole state dict in memory (safetensors.numpy.load_file),
  then one SaveV2 of everything (what a straightforward converter does);
- ours: ``hf2tf.convert`` (tensors one at a time, 256 MB shards, merged).

    python benchmarks/hf2tf.py            # about a minute on 2 cores
"""
import multiprocessing
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _baseline(src, out, queue):
    import bert4keras_blog  # noqa: F401
    import tensorflow as tf
    from safetensors.numpy import load_file
    from bert4keras_blog.checkpoints.hf2tf import tf_name
    start = time.time()
    state = load_file(os.path.join(src, 'model.safetensors'))
    values = {}
    for name, value in state.items():
        target = tf_name(name, 'bert')
        if target is not None:
            values[target[0]] = value.T if target[1] else value
    os.makedirs(out)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=os.path.join(out, 'bert_model.ckpt'), tensor_names=names,
                      shape_and_slices=[''] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, time.time() - start))


def _ours(src, out, queue):
    import bert4keras_blog  # noqa: F401
    import tensorflow as tf  # noqa: F401  (loaded before timing, as in the baseline)
    from bert4keras_blog.checkpoints.hf2tf import convert
    start = time.time()
    convert(src, out, 'bert')
    queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, time.time() - start))


def _idle(queue):
    import bert4keras_blog  # noqa: F401
    import tensorflow as tf  # noqa: F401
    queue.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 0.0))


def in_child(target, *args):
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    child = context.Process(target=target, args=args + (queue,))
    child.start()
    result = queue.get()
    child.join()
    return result


def main():
    import bert4keras_blog  # noqa: F401
    from transformers import BertConfig, BertForPreTraining
    from bert4keras_blog.checkpoints import tiny
    work = tempfile.mkdtemp(prefix='hf2tf-bench-')
    src = os.path.join(work, 'hf')
    config = BertConfig(vocab_size=21128, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072)
    BertForPreTraining(config).save_pretrained(src, safe_serialization=True)
    with open(os.path.join(src, 'vocab.txt'), 'w') as f:
        f.write(open(tiny('bert')['dict']).read())
    size = os.path.getsize(os.path.join(src, 'model.safetensors')) / 2 ** 20
    idle, _ = in_child(_idle)
    base, base_s = in_child(_baseline, src, os.path.join(work, 'baseline'))
    ours, ours_s = in_child(_ours, src, os.path.join(work, 'ours'))
    print('safetensors file: %.0f MB; TensorFlow alone: %.0f MB peak RSS' % (size, idle))
    print('%-32s %14s %10s %8s' % ('converter', 'peak RSS MB', 'above TF', 'seconds'))
    print('%-32s %14.0f %10.0f %8.1f' % ('baseline (all in memory)', base, base - idle, base_s))
    print('%-32s %14.0f %10.0f %8.1f' % ('hf2tf.convert (streamed)', ours, ours - idle, ours_s))
    print('memory_ratio=%.2f (baseline / ours, above TensorFlow alone)'
          % ((base - idle) / max(ours - idle, 1.0)))


if __name__ == '__main__':
    main()
