"""The README is a front page and every docs page quotes its run's numbers."""
import copy
import glob
import json
import os
import re
import shutil

import pytest

from bert4keras_blog.app import results_pages
from bert4keras_blog.app.results_pages import POSTS, check_pages, render_results, update_pages

ROOT = results_pages.ROOT
README = os.path.join(ROOT, 'README.md')
PAGES = sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def links(path):
    """Relative link targets of a markdown file, without anchors."""
    found = re.findall(r'\]\(([^)\s]+)\)', read(path))
    return [t.split('#')[0] for t in found if not re.match(r'^[a-z]+:', t) and t.split('#')[0]]


def test_readme_is_a_front_page():
    assert len(read(README).splitlines()) <= 250


def test_every_post_is_one_click_from_the_table():
    table = re.search(r'<!-- posts -->\n(.*?)<!-- /posts -->', read(README), re.S).group(1)
    for number, example, page, _ in POSTS:
        row = next(line for line in table.splitlines() if line.startswith('| %d |' % number))
        assert '(docs/%s)' % page in row and '(examples/%s.py)' % example in row
        assert os.path.exists(os.path.join(ROOT, 'docs', page))
        assert os.path.exists(os.path.join(ROOT, 'examples', example + '.py'))


def test_every_docs_page_is_linked_from_the_readme():
    linked = {os.path.normpath(os.path.join(ROOT, t)) for t in links(README)}
    assert [p for p in PAGES if os.path.normpath(p) not in linked] == []


@pytest.mark.parametrize('page', [README] + PAGES, ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_point_at_files_that_exist(page):
    base = os.path.dirname(page)
    missing = [t for t in links(page) if not os.path.exists(os.path.join(base, t))]
    assert missing == []


def test_every_post_page_has_its_sections_and_results_block():
    for _, example, page, _ in POSTS:
        text = read(os.path.join(ROOT, 'docs', page))
        assert text.startswith('# Post ') and '**Claim.**' in text
        for section in ('## Results of the embedded default', '## What it does not do'):
            assert section in text, (page, section)
        assert '<!-- results: %s -->' % example in text
        assert os.path.exists(os.path.join(ROOT, 'docs', 'results', example + '.json')), example


def test_the_pages_quote_the_committed_results():
    assert check_pages() == []


def test_a_changed_number_is_caught_and_rewritten(tmp_path):
    """A copy of the docs with one number edited fails the check, and
    update_pages puts the value of the results file back."""
    root = tmp_path / 'repo'
    shutil.copytree(os.path.join(ROOT, 'docs'), root / 'docs')
    shutil.copy(README, root / 'README.md')
    example = POSTS[2][1]
    page = root / 'docs' / POSTS[2][2]
    metrics = json.loads(read(root / 'docs' / 'results' / (example + '.json')))
    block = render_results(metrics)
    assert block in read(page)
    edited = copy.deepcopy(metrics)
    edited[metrics['headline']] = 0.123456
    page.write_text(read(page).replace(block, render_results(edited)), encoding='utf-8')
    assert check_pages(str(root)) == ['docs/%s: the results of %s differ from '
                                      'docs/results/%s.json' % (POSTS[2][2], example, example)]
    assert update_pages(str(root)) == [str(page)]
    assert check_pages(str(root)) == [] and block in read(page)


def test_results_render_scalars_records_and_named_records():
    text = render_results({'headline': 'acc', 'acc': 0.97531, 'ok': True,
                           'runs': [{'n': 1, 'gap': 0.02, 'at': {'0.1': 5e-4}, 'curve': [1, 2]}],
                           'final': {'SimSiam': {'knn': 0.9}}})
    assert '| acc | 0.9753 |' in text and '| ok | true |' in text and 'headline' not in text
    assert '| n | gap | at 0.1 |\n|---|---|---|\n| 1 | 0.02 | 0.0005 |' in text
    assert '| name | knn |\n|---|---|\n| SimSiam | 0.9 |' in text


def test_each_post_page_opens_with_its_number_and_interval():
    """Every post page shows, before the detailed results, the headline of
    its run (with the interval where the run has one) and, where the run
    compares arms over seeds, the claims table; the README's table quotes
    each interval."""
    readme = read(README)
    with_claims = with_interval = 0
    for number, example, page, _ in POSTS:
        metrics = json.loads(read(os.path.join(ROOT, 'docs', 'results', example + '.json')))
        text = read(os.path.join(ROOT, 'docs', page))
        results = text.index('## Results of the embedded default')
        assert text.index('<!-- headline: %s -->' % example) < results, page
        if metrics.get('claims'):
            with_claims += 1
            assert text.index('<!-- claims: %s -->' % example) < results, page
        if metrics.get('interval'):
            with_interval += 1
            low, high = metrics['interval']
            row = next(line for line in readme.splitlines() if line.startswith('| %d |' % number))
            assert '[%.4g, %.4g]' % (low, high) in row, row
    assert with_claims >= 5 and with_interval >= 6  # seeds: 1, 2, 4, 5, 8; single runs: 3, 7


def test_claims_render_both_arms_and_the_difference():
    from bert4keras_blog.experiment.claims import compare
    row = compare('kNN accuracy', 'SimSiam', 'no stop-gradient', [0.9, 0.88, 0.91],
                  [0.6, 0.55, 0.58])
    text = results_pages.render_claims({'claims': [row]})
    line = text.splitlines()[2]
    assert line.startswith('| kNN accuracy | SimSiam | no stop-gradient | 0.8967 [')
    assert line.endswith('| 3 seeds | yes |') and '| 0.32 [' in line
    assert 'no claims table' in results_pages.render_claims({})
    headline = results_pages.render_headline({'headline': 'acc', 'acc': 0.5,
                                              'interval': [0.4, 0.6]})
    assert headline == ('**Headline of the embedded default** (`make claims`): `acc` = 0.5 '
                        '[0.4, 0.6] '
                        '(95% interval).\n')


def test_the_readme_quotes_the_demo_table_and_a_changed_one_is_caught(tmp_path):
    """The README's demo table is docs/results/demo.json rendered (make demo
    writes runs/demo.json, make docs copies it), like every other number."""
    from bert4keras_blog.app.results_pages import collect, render_demo
    summary = json.loads(read(os.path.join(ROOT, 'docs', 'results', 'demo.json')))
    assert summary['command'] == 'make demo' and summary['seconds'] <= 20 * 60
    examples = [row['example'] for row in summary['rows'] if not row['failed']]
    assert [p[1] for p in POSTS] == [e for e in examples if not e.startswith('foundation')]
    text = render_demo(summary)
    assert text in read(README)
    quick = [r for r in summary['rows'] if r['example'] == 'post4_teaforn'][0]
    assert '| post4_teaforn | %s | %.4g [' % (quick['metric'], quick['value']) in text
    root = tmp_path / 'repo'
    shutil.copytree(os.path.join(ROOT, 'docs'), root / 'docs')
    shutil.copy(README, root / 'README.md')
    runs = tmp_path / 'runs'
    runs.mkdir()
    summary['rows'][-1]['value'] = 0.5  # a new demo run with another number
    (runs / 'demo.json').write_text(json.dumps(summary), encoding='utf-8')
    assert collect(str(tmp_path / 'no-claims'), str(root / 'docs' / 'results'),
                   str(runs / 'demo.json')) == ['demo']
    assert check_pages(str(root)) == ['README.md: the demo table differs from '
                                      'docs/results/demo.json']
    assert update_pages(str(root)) == [str(root / 'README.md')]
    assert check_pages(str(root)) == [] and render_demo(summary) in read(root / 'README.md')
