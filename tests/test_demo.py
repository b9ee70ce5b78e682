"""make demo's table: the foundation self-check and the examples' rows."""
from bert4keras_blog import demo


def test_self_check_covers_every_kind_and_table_formats(tmp_path):
    broken = tmp_path / 'post0_broken.py'
    broken.write_text('def main(argv=None):\n    raise RuntimeError("boom")\n')
    working = tmp_path / 'post9_ok.py'
    working.write_text('def main(argv=None):\n    return {"headline": "accuracy", "accuracy": 0.875}\n')
    rows = demo.run_demo(examples_dir=str(tmp_path))
    names = [row[0] for row in rows]
    for kind in ('bert', 'roberta', 'albert', 'electra', 'mt5.1.1', 'gpt'):
        assert 'foundation: tiny %s' % kind in names
    params = {row[0]: row[2] for row in rows}
    assert params['foundation: tiny albert'] < params['foundation: tiny bert']  # shared layers
    assert ('post0_broken.py', 'error', 'FAILED') == rows[-2][:3]
    assert rows[-1][:3] == ('post9_ok', 'accuracy', 0.875)
    table = demo.format_table(rows)
    assert table.splitlines()[0].split() == ['example', 'headline', 'metric', 'value', 'seconds']
    assert '0.875' in table
