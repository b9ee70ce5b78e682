"""Synthetic Chinese word problems in ape210k's format.

ape210k cannot be downloaded at run time, so the embedded default generates
problems from 28 templates over the post's categories (盈亏, 年龄, 植树,
牛吃草, 利润/折扣, 百分数, 分数, 行程, 工程, 面积). Numbers are drawn so
that answers come out positive and readable; each record's answer is computed
by ``evaluate`` from its equation, never written by hand.

Public API:
    TEMPLATES: list of Template.
    generate(n, seed=0) -> list of records (ape210k fields).
    heldout_split(train_size, seed=0, valid=200, test=400) -> (train, valid, test):
        valid and test problems never occur, with their numbers, in train.
    write_jsonl(records, path)
"""
import json
import logging

import jieba
import numpy as np

from bert4keras_blog.errors import BlogError
from bert4keras_blog.mathword.answers import to_text
from bert4keras_blog.mathword.expression import evaluate

__all__ = ['TEMPLATES', 'Template', 'generate', 'heldout_split', 'write_jsonl']

NAMES = ['小明', '小红', '小刚', '小华', '小丽', '小军', '小芳']
THINGS = ['苹果', '梨', '橘子', '桃子', '糖果', '铅笔', '本子']


class Template(object):
    """One problem shape.

    Args:
        category: str. The post's category.
        text: str. ``str.format`` pattern with named numbers and optional
            ``{name}``/``{thing}``.
        equation: str. Pattern of the expression over the same names.
        draw: callable(rng) -> dict of numbers (ints or decimal strings).
    """

    def __init__(self, category, text, equation, draw):
        self.category, self.text, self.equation, self.draw = category, text, equation, draw


def _i(rng, low, high):
    return int(rng.integers(low, high + 1))


def _surplus(rng):
    n, a, k = _i(rng, 3, 12), _i(rng, 2, 6), _i(rng, 1, 3)
    b = _i(rng, 1, n * k - 1)
    return dict(a=a, b=b, c=a + k, d=n * k - b)


def _age_sum(rng):
    child, k = _i(rng, 3, 15), _i(rng, 3, 8)
    return dict(s=child * (k + 1), k=k)


def _age_gap(rng):
    child, n, k = _i(rng, 3, 12), _i(rng, 1, 8), _i(rng, 2, 5)
    return dict(a=(k - 1) * (child + n), n=n, k=k)


def _grass_days(rng):
    r, extra, days = _i(rng, 2, 9), _i(rng, 1, 5), _i(rng, 2, 12)
    return dict(m=extra * days, x=_i(rng, 2, 9), r=r, a=r + extra)


def _grass_original(rng):
    r = _i(rng, 2, 9)
    return dict(a=r + _i(rng, 2, 20), x=_i(rng, 3, 15), r=r)


def _fraction_of_book(rng):
    d = _i(rng, 3, 9)
    n = _i(rng, 1, d - 1)
    return dict(d=d, n=n, b=n * _i(rng, 5, 40))


def _rope(rng):
    d = _i(rng, 3, 9)
    return dict(d=d, n=_i(rng, 1, d - 1), a=d * _i(rng, 1, 12))


def _oil(rng):
    a = _i(rng, 2, 20) * 10
    return dict(a=a, b=_i(rng, 1, a // 10 - 1) * 10) if a > 10 else dict(a=40, b=10)


def _spacing(low, high):
    def draw(rng):
        d = _i(rng, 2, 12)
        return dict(d=d, L=d * _i(rng, low, high))
    return draw


def _joint_work(rng):
    a, b = _i(rng, 20, 90), _i(rng, 20, 90)
    return dict(a=a, b=b, W=(a + b) * _i(rng, 2, 12))


def _joint_days(rng):
    p, q = _i(rng, 5, 40), _i(rng, 5, 40)
    return dict(p=p, q=q, t=(p + q) * _i(rng, 1, 4) // 1)


def _meet(rng):
    v1, v2 = _i(rng, 30, 90), _i(rng, 30, 90)
    return dict(v1=v1, v2=v2, s=(v1 + v2) * _i(rng, 2, 9))


def _same_speed(rng):
    t, v = _i(rng, 2, 6), _i(rng, 40, 90)
    return dict(t=t, s=t * v, t2=_i(rng, 1, 6))


def _cost_price(rng):
    return dict(c=_i(rng, 2, 40) * 10, r=_i(rng, 1, 9) * 5)


TEMPLATES = [
    Template('盈亏', '把一些{thing}分给小朋友，每人分{a}个多{b}个，每人分{c}个少{d}个。有多少个小朋友？',
             '({b}+{d})/({c}-{a})', _surplus),
    Template('盈亏', '{name}给同学们发{thing}，如果每人{a}个就剩下{b}个，如果每人{c}个就差{d}个，一共有几位同学？',
             '({b}+{d})/({c}-{a})', _surplus),
    Template('年龄', '父子两人的年龄和是{s}岁，爸爸的年龄是儿子的{k}倍，儿子今年几岁？',
             '{s}/({k}+1)', _age_sum),
    Template('年龄', '妈妈比{name}大{a}岁，{n}年后妈妈的年龄是{name}的{k}倍，{name}今年几岁？',
             '{a}/({k}-1)-{n}', _age_gap),
    Template('年龄', '{name}今年{b}岁，爷爷的年龄是{name}的{k}倍，爷爷比{name}大多少岁？',
             '{b}*({k}-1)', lambda rng: dict(b=_i(rng, 5, 15), k=_i(rng, 4, 8))),
    Template('植树', '一条路长{L}米，在路的一边从头到尾每隔{d}米种一棵树，一共要种多少棵树？',
             '{L}/{d}+1', _spacing(5, 60)),
    Template('植树', '在一条长{L}米的小路两旁种树，两端都不种，每隔{d}米种一棵，一共种多少棵？',
             '({L}/{d}-1)*2', _spacing(5, 60)),
    Template('植树', '一个圆形水池的周长是{L}米，沿着池边每隔{d}米放一盆花，一共要放多少盆花？',
             '{L}/{d}', _spacing(8, 90)),
    Template('牛吃草', '一片草地原有的草够{m}头牛吃{x}天，每天新长的草够{r}头牛吃一天，放{a}头牛几天可以吃完？',
             '{m}*{x}/({a}-{r})', _grass_days),
    Template('牛吃草', '牧场上的草每天都在生长，{a}头牛{x}天把草吃完，每天新长的草够{r}头牛吃一天，原有的草够1头牛吃几天？',
             '({a}-{r})*{x}', _grass_original),
    Template('利润/折扣', '一件衣服原价{p}元，打{z}折出售，现价多少元？',
             '{p}*{z}/10', lambda rng: dict(p=_i(rng, 4, 60) * 10, z=_i(rng, 5, 9))),
    Template('利润/折扣', '商店以每件{c}元的价格进了一批货，按{r}%的利润定价，每件定价多少元？',
             '{c}*(1+{r}%)', _cost_price),
    Template('利润/折扣', '一件商品按原价的{r}%出售，售价是{s}元，原价是多少元？',
             '{s}/{r}%', lambda rng: (lambda r, p: dict(r=r, s=p * r // 100))(
                 _i(rng, 6, 19) * 5, _i(rng, 1, 30) * 20)),
    Template('利润/折扣', '某商品进价{c}元，售价{s}元，利润率是百分之几？',
             '({s}-{c})/{c}', lambda rng: (lambda c, r: dict(c=c, s=c + c * r // 100))(
                 _i(rng, 1, 20) * 20, _i(rng, 1, 19) * 5)),
    Template('百分数', '学校有男生{a}人，女生比男生多{r}%，女生有多少人？',
             '{a}*(1+{r}%)', lambda rng: dict(a=_i(rng, 2, 30) * 20, r=_i(rng, 1, 9) * 5)),
    Template('百分数', '一批零件，已经完成了{r}%，还剩{b}个没有完成，这批零件一共有多少个？',
             '{b}/(1-{r}%)', lambda rng: (lambda r, t: dict(r=r, b=t * (100 - r) // 100))(
                 _i(rng, 1, 18) * 5, _i(rng, 1, 40) * 20)),
    Template('百分数', '{a}是{b}的百分之几？',
             '{a}/{b}', lambda rng: (lambda b: dict(b=b, a=b * _i(rng, 1, 19) // 20))(_i(rng, 1, 30) * 20)),
    Template('分数', '一根绳子长{a}米，用去了它的{n}/{d}，还剩多少米？',
             '{a}*(1-{n}/{d})', _rope),
    Template('分数', '{name}看一本书，看了全书的{n}/{d}，正好是{b}页，这本书一共有多少页？',
             '{b}/({n}/{d})', _fraction_of_book),
    Template('分数', '一桶油重{a}千克，用去{b}千克后，剩下的油是原来的几分之几？',
             '({a}-{b})/{a}', _oil),
    Template('行程', '甲乙两地相距{s}千米，两辆车同时从两地相向而行，一辆每小时行{v1}千米，另一辆每小时行{v2}千米，几小时后相遇？',
             '{s}/({v1}+{v2})', _meet),
    Template('行程', '{name}每分钟走{v1}米，妈妈每分钟走{v2}米，两人同时从同一地点出发背向而行，{t}分钟后相距多少米？',
             '({v1}+{v2})*{t}', lambda rng: dict(v1=_i(rng, 50, 90), v2=_i(rng, 50, 90), t=_i(rng, 3, 30))),
    Template('行程', '一辆汽车{t}小时行了{s}千米，照这样的速度，再行{t2}小时，一共行了多少千米？',
             '{s}/{t}*({t}+{t2})', _same_speed),
    Template('工程', '修一条路，甲队每天修{a}米，乙队每天修{b}米，两队合修{W}米的路要几天？',
             '{W}/({a}+{b})', _joint_work),
    Template('工程', '一批零件，甲单独做{t}天完成，甲每天做{p}个，乙每天做{q}个，两人合作几天完成？',
             '{t}*{p}/({p}+{q})', _joint_days),
    Template('工程', '{name}加工一批零件，每小时加工{a}个，{t}小时完成了全部的{n}/{d}，这批零件有多少个？',
             '{a}*{t}/({n}/{d})', lambda rng: (lambda d: dict(d=d, n=1, a=_i(rng, 5, 30), t=_i(rng, 2, 8)))(
                 _i(rng, 2, 6))),
    Template('面积', '一个长方形长{a}厘米，宽{b}厘米，它的面积是多少平方厘米？',
             '{a}*{b}', lambda rng: dict(a=_i(rng, 5, 40), b=_i(rng, 2, 30))),
    Template('面积', '一个长方形的周长是{p}米，长是{a}米，宽是多少米？',
             '{p}/2-{a}', lambda rng: (lambda a, b: dict(a=a, p=2 * (a + b)))(_i(rng, 8, 40), _i(rng, 2, 7))),
    Template('面积', '一个梯形的上底是{a}厘米，下底是{b}厘米，高是{h}厘米，它的面积是多少平方厘米？',
             '({a}+{b})*{h}/2', lambda rng: dict(a=_i(rng, 2, 20), b=_i(rng, 21, 40), h=_i(rng, 2, 20))),
    Template('面积', '一个圆的半径是{r}厘米，它的面积是多少平方厘米？',
             '3.14*{r}^2', lambda rng: dict(r=_i(rng, 1, 20))),
    Template('面积', '一个正方形的周长是{p}米，它的面积是多少平方米？',
             '({p}/4)^2', lambda rng: dict(p=4 * _i(rng, 2, 30))),
]


def _answer_text(value):
    """ape210k writes non-terminating answers as mixed fractions a(b/c)."""
    text = to_text(value)
    if '/' in text and value > 1:
        whole = value.numerator // value.denominator
        rest = value - whole
        return '%d(%d/%d)' % (whole, rest.numerator, rest.denominator)
    return text


def _segment(text):
    jieba.setLogLevel(logging.WARNING)
    return ' '.join(jieba.lcut(text))


def generate(n, seed=0, templates=None, segment=True):
    """Generates ``n`` problems, cycling through the templates.

    Args:
        n: int. Number of problems.
        seed: int. Same seed, same problems.
        templates: list of Template. Defaults to ``TEMPLATES``.
        segment: bool. Fill ``segmented_text`` with jieba words (as ape210k
            does). Defaults to True.

    Returns:
        list of dicts with ape210k's fields plus ``template`` (its index).
    """
    rng = np.random.default_rng(seed)
    templates = templates or TEMPLATES
    records = []
    while len(records) < n:
        index = len(records) % len(templates)
        template = templates[index]
        for _ in range(100):
            numbers = template.draw(rng)
            value = evaluate(template.equation.format(**numbers))
            if value > 0 and (value.denominator <= 100):
                break
        else:
            raise BlogError('template %d gives no readable answer' % index)
        fill = dict(numbers, name=NAMES[int(rng.integers(len(NAMES)))],
                    thing=THINGS[int(rng.integers(len(THINGS)))])
        text = template.text.format(**fill)
        equation = 'x=' + template.equation.format(**numbers)
        record = {'id': '%d-%d' % (seed, len(records)), 'original_text': text,
                  'segmented_text': _segment(text) if segment else '',
                  'equation': equation, 'ans': _answer_text(value),
                  'template': index}
        assert evaluate(record['ans']) == value == evaluate(equation)
        records.append(record)
    return records


def heldout_split(train_size, seed=0, valid=200, test=400):
    """Training problems, and validation/test problems with unseen numbers.

    A held-out problem's equation (its template filled with its numbers)
    never occurs in the training set.
    """
    train = generate(train_size, seed=seed)
    seen = {(r['template'], r['equation']) for r in train}
    unseen = [r for r in generate(2 * (valid + test), seed=seed + 1000)
              if (r['template'], r['equation']) not in seen]
    if len(unseen) < valid + test:
        raise BlogError('only %d unseen problems; lower train_size' % len(unseen))
    return train, unseen[:valid], unseen[valid:valid + test]


def write_jsonl(records, path):
    """Writes records one JSON object a line (UTF-8, readable Chinese)."""
    with open(path, 'w', encoding='utf-8') as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + '\n')
    return path
