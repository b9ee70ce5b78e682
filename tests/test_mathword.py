"""Post 3: exact, safe evaluation; ape210k loading; synthetic problems; codec."""
import gc
import json
import re
import time
from fractions import Fraction

import pytest

from bert4keras_blog.errors import DataFormatError, MathExpressionError
from bert4keras_blog.mathword import (
    TEMPLATES, answers_match, evaluate, generate, load_ape210k, normalize, to_text, write_jsonl)


@pytest.mark.parametrize('expression, value', [
    ('x=150*20%/5%-150', 450),
    ('1(1/2)+1(1/2)', 3),
    ('3(1/4)*4', 13),
    ('(1+20%)*(1-20%)', Fraction(24, 25)),
    ('50%*50%', Fraction(1, 4)),
    ('((1+2)*3)%', Fraction(9, 100)),
    ('12.5%*8', 1),
    ('0.1+0.2', Fraction(3, 10)),  # exact, unlike floats
    ('1/3*3', 1),
    ('2^10', 1024), ('2**-2', Fraction(1, 4)), ('2^3^2', 512), ('(2^3)^2', 64),
    ('-2^2', -4), ('(-2)^2', 4), ('--3', 3), ('4^(1/2)', 2), ('(8/27)^(2/3)', Fraction(4, 9)),
    ('6:4', Fraction(3, 2)),
    ('x＝（３＋５）×２÷４', 4),
    ('[1+{2*3}]-4', 3),
    ('3.14*10^2', 314),
    ('1/(1/12+1/8)', Fraction(24, 5)),
])
def test_exact_values(expression, value):
    assert evaluate(expression) == value
    assert isinstance(evaluate(expression), Fraction)


@pytest.mark.parametrize('text, position, reason', [
    ('__import__("os").system("ls")', 0, 'unexpected character'),
    ('abs(-3)', 0, 'unexpected character'),
    ('1+2)', 3, "unexpected ')'"),
    ('(1+2', 4, 'closing'),
    ('3/(2-2)', 1, 'division by zero'),
    ('2(3+4)', 1, 'cannot be followed by a bracket'),
    ('1+', 2, 'number or bracket expected'),
    ("'1'+'2'", 0, 'unexpected character'),
    ('2^(1/3)', 1, 'no exact rational value'),
    ('1.5.2', 3, 'unexpected'),
    ('x.real', 1, 'unexpected character'),
])
def test_errors_name_position_and_reason(text, position, reason):
    with pytest.raises(MathExpressionError) as info:
        evaluate(text)
    assert info.value.position == position, str(info.value)
    assert reason in info.value.reason


HOSTILE = [
    '9**9**9**9', '9^9^9', '10^100000', '2**(2**(2**(2**(2**5))))',
    '(' * 5000 + '1' + ')' * 5000, '-' * 3000 + '1', '1' * 5000,
    '+'.join(['9999999999'] * 300), '99999999999999999999^1000',
    '*'.join(['99999999999999999999'] * 250), 'lambda: 0', '().__class__',
    '1/0', '0^-1', 'x=' + '((((((' * 20 + '1' + '))))))' * 20,
]


@pytest.mark.parametrize('text', HOSTILE)
def test_hostile_input_fails_fast(text):
    # CPU time of this process after a collection: what the evaluator costs,
    # not a pause of the machine or a garbage collection of the whole suite
    # (a 1.6 s wall-clock stall was seen once in the full suite)
    gc.collect()
    start = time.process_time()
    with pytest.raises(MathExpressionError):
        evaluate(text)
    assert time.process_time() - start < 0.1


def test_evaluator_never_uses_eval():
    import bert4keras_blog.mathword.expression as module
    source = open(module.__file__, encoding='utf-8').read()
    assert not re.search(r'(?<![\w.])(eval|exec|compile)\(', source)


@pytest.mark.parametrize('text, expected', [
    ('x=（（150×20％））÷5%-150', '150*20%/5%-150'),
    ('x=((1+2))*3', '(1+2)*3'),
    ('1-(2-3)', '1-(2-3)'), ('1-(2+3)', '1-(2+3)'), ('1+(2+3)', '1+2+3'),
    ('1/(2*3)', '1/(2*3)'), ('(1*2)/3', '1*2/3'), ('2^(3^2)', '2^3^2'),
    ('(2^3)^2', '(2^3)^2'), ('2**-1', '2^(-1)'), ('6:4', '6/4'), ('3(1/2)*2', '3(1/2)*2'),
    ('(1+2)%', '(1+2)%'), ('-(1+2)', '-(1+2)'),
])
def test_normalize(text, expected):
    assert normalize(text) == expected
    assert evaluate(normalize(text)) == evaluate(text)


def test_answers_match_in_ape210k_forms():
    assert answers_match('x=1+1/2', '1(1/2)')
    assert answers_match('x=1/2', '50%') and answers_match('x=3/4', '0.75')
    assert answers_match(Fraction(10, 3), '3.333333')  # the post's 6-decimal rule
    assert not answers_match(Fraction(10, 3), '3.33')
    assert not answers_match('x=1/0', '1') and not answers_match('2', 'abc')
    assert to_text(Fraction(9, 4)) == '2.25' and to_text(Fraction(1, 3)) == '1/3'
    assert to_text(Fraction(-1, 8)) == '-0.125' and to_text(Fraction(7)) == '7'


def test_loader_reports_broken_lines_and_keeps_the_rest(tmp_path):
    good = {'id': '1', 'original_text': '一共有3个苹果，又买了2个，现在有几个？',
            'segmented_text': '一共 有 3 个', 'equation': 'x=3+2', 'ans': '5'}
    lines = [json.dumps(good, ensure_ascii=False),
             '{"id": "2", "original_text": "x"',  # truncated JSON
             json.dumps(dict(good, id='3', equation='x=3*2')),  # wrong answer
             json.dumps({k: v for k, v in good.items() if k != 'equation'}),  # field missing
             '',
             json.dumps(dict(good, id='6', equation='x=os.system(1)')),  # does not evaluate
             json.dumps(dict(good, id='7', ans='50%', equation='x=1/2')),
             '[1, 2]']
    path = tmp_path / 'train.ape.json'
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    data = load_ape210k(str(path))
    assert [r['id'] for r in data] == ['1', '7'] and [r['line'] for r in data] == [1, 7]
    report = data.report
    assert report.kept == 2 and report.lines == 7
    assert [line for line, _ in report.malformed] == [2, 4, 8]
    assert "field 'equation' is missing" in dict(report.malformed)[4]
    assert [line for line, _ in report.wrong] == [3, 6]
    assert "gives 6, answer is '5'" in dict(report.wrong)[3]
    assert 'kept 2 of 7 lines' in str(report) and 'first: line 2' in str(report)
    assert 'train.ape.json line 6: wrong: equation does not evaluate' in report.details()
    with pytest.raises(DataFormatError, match='line 2: the line is cut'):
        load_ape210k(str(path), on_error='raise')


def test_synthetic_problems_cover_the_categories(tmp_path):
    categories = {t.category for t in TEMPLATES}
    assert len(TEMPLATES) >= 20
    assert categories >= {'盈亏', '年龄', '植树', '牛吃草', '利润/折扣', '百分数', '分数', '行程',
                          '工程', '面积'}
    records = generate(2 * len(TEMPLATES), seed=3, segment=False)
    assert {r['template'] for r in records} == set(range(len(TEMPLATES)))
    for r in records:
        operators = re.findall(r'[-+*/^]', r['equation'][2:])
        assert len(operators) <= 3, r['equation']
        assert evaluate(r['equation']) > 0 and answers_match(r['equation'], r['ans'])
    assert any('(' in r['equation'] for r in records)
    assert generate(10, seed=3, segment=False) == records[:10]
    assert generate(10, seed=4, segment=False) != records[:10]
    path = write_jsonl(records, str(tmp_path / 'synthetic.json'))
    loaded = load_ape210k(path)
    assert len(loaded) == len(records) and not loaded.report.malformed + loaded.report.wrong


def test_segmented_text_uses_jieba():
    record = generate(1, seed=0)[0]
    assert ' ' in record['segmented_text']
    assert record['segmented_text'].replace(' ', '') == record['original_text']


# ----------------------------------------------------------------- codec

@pytest.fixture(scope='module')
def codec():
    from bert4keras.tokenizers import Tokenizer
    from bert4keras_blog.checkpoints import tiny
    from bert4keras_blog.mathword.solver import ProblemCodec
    return ProblemCodec(Tokenizer(tiny('bert')['dict'], do_lower_case=True), maxlen=64,
                        number_slots=True)


def test_codec_round_trip_with_number_slots(codec):
    text = '商店以每件190元的价格进了一批货，按45%的利润定价，每件定价多少元？'
    token_ids, segment_ids, numbers = codec.encode_problem(text)
    assert numbers == ['190', '45']
    assert codec.slot_ids[0] in token_ids and codec.slot_ids[1] in token_ids
    target = codec.encode_expression('x=190*(1+45%)', numbers)
    assert target[0] == codec.slot_ids[0] and target[-1] == codec.end_id
    assert codec.decode(target, numbers) == '190*(1+45%)'
    ids, segments = codec.encode(text, 'x=190*(1+45%)')
    assert segments.count(1) == len(target) and ids[-len(target):] == target
    mask = codec.allowed_mask(3000)
    assert mask[target].all() and mask.sum() == len(codec.char_ids) + 1 + 9


def test_codec_spells_constants_and_raw_numbers(codec):
    numbers = ['7']
    target = codec.encode_expression('3.14*7^2', numbers)
    assert codec.decode(target, numbers) == '3.14*7^2'
    assert target.count(codec.slot_ids[0]) == 1  # the 7 from the text
    from bert4keras_blog.mathword.solver import ProblemCodec
    raw = ProblemCodec(codec.tokenizer, number_slots=False)
    ids, _, nums = raw.encode_problem('一共有12个')
    assert not set(raw.slot_ids) & set(ids) and nums == ['12']
    assert raw.decode(raw.encode_expression('12+1', nums), nums) == '12+1'


def test_fast_path_agrees_with_the_tree_evaluator():
    """evaluate() runs a shunting-yard pass first; it must give the parse
    tree's value on everything it accepts, and leave the rest to the tree."""
    import numpy as np
    from bert4keras_blog.mathword import expression as ex
    rng = np.random.default_rng(0)
    atoms = ['7', '12.5', '0.25', '3%', '2(1/4)', '0', '100']
    ops = ['+', '-', '*', '/', '^', ':', '**']
    checked = declined = 0
    for _ in range(3000):
        parts = [str(rng.choice(atoms))]
        for _ in range(int(rng.integers(1, 5))):
            parts += [str(rng.choice(ops)), ('-' if rng.random() < 0.2 else '') + str(rng.choice(atoms))]
        text = ''.join(parts)
        if rng.random() < 0.5:
            cut = int(rng.integers(0, len(parts)))
            text = '(' + ''.join(parts[:cut + 1]) + ')' + ''.join(parts[cut + 1:])
        try:
            expected = ex._evaluate_tree(text)
        except MathExpressionError:
            expected = None
        try:
            fast = ex._evaluate_fast(text)
        except (ex._Slow, IndexError):
            declined += 1
            assert expected is None or '^' in text or '**' in text, text
            continue
        checked += 1
        assert fast == expected, text
    assert checked > 1000 and declined > 50
