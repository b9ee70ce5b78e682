"""Reading configs and building bert4keras models from release files.

Public API:
    read_config(path) -> dict: a JSON config; syntax errors name the line.
    build_model(kind, paths, application=None, **kwargs): the bert4keras
        model for a kind, weights loaded (the one place that knows which
        bert4keras model name goes with which kind).
"""
__all__ = ['read_config', 'build_model']

from bert4keras.models import build_transformer_model
from bert4keras_blog.checkpoints.integrity import check_config
from bert4keras_blog.checkpoints.releases import RELEASES


def read_config(path):
    """Reads a JSON model config.

    Raises:
        DataFormatError: the file is not UTF-8 or not valid JSON (names the
            line), or not a JSON object.
        OSError: the file cannot be read.
    """
    return check_config(path)


def build_model(kind, paths, application=None, **kwargs):
    """Builds the bert4keras model for ``kind`` from ``paths`` and loads it.

    Args:
        kind: str. One of ``KINDS`` (or 'albert_unshared').
        paths: dict. As returned by ``tiny`` / ``write_tiny``, or real files.
        application: str. 'encoder', 'lm' or 'unilm'. Defaults to 'lm' for
            'gpt' and 'encoder' otherwise.
        **kwargs: passed to ``build_transformer_model`` (``with_mlm=True``,
            ``return_keras_model=False``, ...).

    Returns:
        What ``build_transformer_model`` returns.
    """
    model = RELEASES[kind].model if kind in RELEASES else {'gpt': 'bert'}.get(kind, kind)
    if application is None:
        application = 'lm' if kind == 'gpt' else 'encoder'
    return build_transformer_model(paths['config'], paths['checkpoint'], model=model,
                                   application=application, **kwargs)
