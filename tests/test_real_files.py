"""The real-file path: release folders laid out and named as the releases
unpack (our tiny writer, copied under each release's folder name), real-format
data with real quirks (cut JSON lines, CRLF endings, TSV, upper-case and
dashed ICCS, PGN), each example run through its release flags, and every
failure mode a user meets there."""
import json
import re
import os
import shutil
import subprocess
import sys

import pytest

from bert4keras_blog.app import cli
from bert4keras_blog.checkpoints import RELEASES, find_release, read_config, tiny
from bert4keras_blog.datafiles import json_object, read_lines
from bert4keras_blog.errors import BlogError, DataFormatError
from bert4keras_blog.mathword import heldout_split, write_jsonl
from bert4keras_blog.xiangqi import DEFAULT_GAMES, read_games
from test_examples import load

EXAMPLES = ['post1_albert_electra', 'post2_learning_rate', 'post3_math_word_problems',
            'post4_teaforn', 'post5_simsiam', 'post6_mt5_title_generation',
            'post7_gpt_xiangqi', 'post8_rnn_gradients']
CUT_LINE = '{"id": "cut", "original_text": "一共有\r\n'  # a CRLF file cut mid-string


@pytest.fixture(scope='module')
def releases(tmp_path_factory):
    """{kind: folder}: each tiny checkpoint under its release's folder name."""
    root = tmp_path_factory.mktemp('releases')
    folders = {}
    for kind in ('bert', 'roberta', 'albert', 'electra', 'mt5.1.1'):
        source = os.path.dirname(tiny(kind)['checkpoint'])
        folders[kind] = str(root / RELEASES[kind].folder)
        shutil.copytree(source, folders[kind], ignore=shutil.ignore_patterns('paths.json'))
    return folders


def ape_folder(root, train=120, extra_train_lines=()):
    """ape210k's three files from synthetic problems, plus raw lines."""
    train_set, valid, test = heldout_split(train + 80, seed=0)
    root.mkdir(exist_ok=True)
    for name, records in (('train', train_set[:train]), ('valid', valid[:12]), ('test', test[:12])):
        path = root / ('%s.ape.json' % name)
        write_jsonl(records, str(path))
        if name == 'train':
            with open(path, 'a', encoding='utf-8', newline='') as f:
                f.writelines(extra_train_lines)
    return str(root)


def usage_error(example, argv, capsys):
    """Runs an example's argument parsing; returns its one error line."""
    with pytest.raises(SystemExit) as stop:
        load(example).parse_args(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# ------------------------------------------------------------------ releases

def test_each_release_folder_is_found_by_its_release_names(releases):
    for kind, folder in releases.items():
        release = RELEASES[kind]
        paths = find_release(folder)
        assert paths['kind'] == kind  # roberta: the folder name says so; the files are BERT's
        assert paths['checkpoint'] == os.path.join(folder, release.checkpoint)
        assert paths['config'] == os.path.join(folder, release.config)
        key = 'spm' if kind == 'mt5.1.1' else 'dict'
        assert paths[key] == os.path.join(folder, release.vocab)
    assert find_release(releases['electra'])['generator_config'].endswith(
        'base_generator_config.json')


def test_mirror_names_and_a_missing_state_file_still_resolve(releases, tmp_path):
    # HFL's 180g ELECTRA: electra_180g_base.ckpt.*, no `checkpoint` state file.
    folder = tmp_path / 'electra_180g_base'
    shutil.copytree(releases['electra'], folder)
    os.remove(folder / 'checkpoint')
    for name in os.listdir(folder):
        if name.startswith('electra_base.'):
            renamed = name.replace('electra_base', 'electra_180g_base.ckpt')
            os.rename(folder / name, folder / renamed)
    paths = find_release(str(folder))
    assert paths['kind'] == 'electra'
    assert paths['checkpoint'] == str(folder / 'electra_180g_base.ckpt')
    assert paths['config'].endswith('base_discriminator_config.json')  # not the generator's


def test_mt5_without_a_json_config_reads_it_off_the_checkpoint(releases, tmp_path):
    folder = tmp_path / 'mt5_small'
    shutil.copytree(releases['mt5.1.1'], folder)
    written = read_config(str(folder / 'mt5_config.json'))
    os.remove(folder / 'mt5_config.json')  # as Google ships it: a gin file, no JSON
    derived = read_config(find_release(str(folder))['config'])
    for key in ('vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads',
                'attention_head_size', 'intermediate_size', 'relative_attention_num_buckets'):
        assert derived[key] == written[key], key


@pytest.mark.parametrize('case, expected', [
    ('missing', 'no such folder'),
    ('empty', 'holds no TF checkpoint'),
    ('two', 'holds several checkpoints'),
    ('mt5 without spm', 'mc4.250000.100extra'),
    ('no vocab', 'has no vocab.txt'),
])
def test_broken_release_folders_say_what_is_wrong(releases, tmp_path, case, expected):
    folder = tmp_path / 'release'
    if case == 'empty':
        folder.mkdir()
    elif case == 'two':
        shutil.copytree(releases['bert'], folder)
        os.remove(folder / 'checkpoint')
        for suffix in ('.index', '.data-00000-of-00001'):
            shutil.copy(folder / ('bert_model.ckpt' + suffix), folder / ('old.ckpt' + suffix))
    elif case == 'mt5 without spm':
        shutil.copytree(releases['mt5.1.1'], folder)
        os.remove(folder / 'sentencepiece.model')
    elif case == 'no vocab':
        shutil.copytree(releases['bert'], folder)
        os.remove(folder / 'vocab.txt')
    with pytest.raises(BlogError, match=expected):
        find_release(str(folder))


def test_cli_checks_a_release_folder_alone(releases, capsys):
    assert cli.main(['check', releases['albert']]) == 0
    assert capsys.readouterr().out.startswith('albert: %s/model.ckpt-best loaded'
                                              % releases['albert'])


# ---------------------------------------------------------------- the flags

def test_help_shows_the_same_release_flags_in_all_eight(capsys):
    groups = []
    for name in EXAMPLES:
        with pytest.raises(SystemExit):
            load(name).parse_args(['--help'])
        text = capsys.readouterr().out
        group = text[text.index('pretrained release:'):].split('\n\n')[1]  # title and text, flags
        groups.append([line.split()[0] for line in group.splitlines()
                       if line.lstrip().startswith('--')])
    assert groups[0] == ['--pretrained', '--config', '--checkpoint', '--dict', '--spm']
    assert all(g == groups[0] for g in groups), groups


def test_partial_or_contradictory_flags_stop_before_any_work(releases, capsys, tmp_path):
    bert = find_release(releases['bert'])
    mt5 = find_release(releases['mt5.1.1'])
    data = ['--data', str(tmp_path)]
    cases = [
        # --config alone used to train the tiny model on the user's data
        ('post3_math_word_problems', ['--config', bert['config']] + data, 'need --checkpoint'),
        ('post4_teaforn', ['--checkpoint', bert['checkpoint'], '--config', bert['config']] + data,
         'needs --dict'),
        ('post7_gpt_xiangqi', ['--dict', bert['dict']], 'need --checkpoint'),
        ('post6_mt5_title_generation', ['--pretrained', releases['mt5.1.1'],
                                        '--spm', mt5['spm']] + data, 'not both'),
        ('post6_mt5_title_generation', ['--checkpoint', mt5['checkpoint'],
                                        '--dict', bert['dict']] + data, '--dict does not apply'),
        ('post3_math_word_problems', ['--pretrained', releases['mt5.1.1']] + data,
         'holds a Google mT5'),
        ('post3_math_word_problems', ['--pretrained', releases['bert']],
         'add --data (folder with'),
        ('post7_gpt_xiangqi', ['--pretrained', releases['bert'], releases['roberta']],
         'takes one folder'),
        ('post1_albert_electra', ['--pretrained', releases['bert'], releases['roberta']],
         'two BERT-format releases'),
        ('post2_learning_rate', ['--pretrained', releases['bert']], 'trains its models from '
                                                                    'scratch'),
    ]
    for example, argv, expected in cases:
        line = usage_error(example, argv, capsys)
        assert 'error: ' in line and expected in line, (example, argv, line)


# ------------------------------------------------------------- data loaders

@pytest.mark.parametrize('text, reason', [
    ('{"title": "半截", "abst": "被截断', 'the line is cut'),
    (CUT_LINE, 'the line is cut'),
    ('{"title": "a\tb", "abst": "c"}', 'raw control character (U+0009)'),
    ('[1, 2]', 'expected a JSON object, found list'),
    ('{"title": "t"}', "field 'abst' is missing"),
    ('{"title": "t", "abst": 1,}', 'not JSON'),
])
def test_json_lines_are_rejected_in_plain_words(text, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        json_object(text, ('title', 'abst'))


def test_rejected_share_above_the_limit_stops_with_the_report(tmp_path):
    path = tmp_path / 'train.json'
    path.write_text('{"a": 1}\n{"a": 2\n\n{"a": 3}\nnot json\n', encoding='utf-8')
    records, report = read_lines(str(path), json_object)
    assert [r['a'] for r in records] == [1, 3]
    assert report.kept == 2 and report.lines == 4
    assert [line for line, _ in report.rejected] == [2, 5]
    listing = report.write(str(tmp_path), 'train')
    assert open(listing, encoding='utf-8').read().splitlines() == [
        '%s line 2: the line is cut: its JSON stops at column 8 before the record closes' % path,
        '%s line 5: not JSON: Expecting value at column 1' % path]
    with pytest.raises(DataFormatError, match=r'2 of 4 lines rejected \(50.0%, more than the '
                                              r'5.0% allowed\), first: line 2: the line is cut'):
        report.check(0.05, listing)
    report.check(0.5)  # at the limit: kept


def test_non_utf8_data_names_the_byte(tmp_path):
    path = tmp_path / 'train.json'
    path.write_bytes('{"title": "标题"}\n'.encode('gbk'))
    with pytest.raises(DataFormatError,
                       match='train.json line 1: not UTF-8 \\(byte 0xB1 at column 12'):
        read_lines(str(path), json_object)


# ------------------------------------------------------------------ records

def test_game_records_read_upper_case_and_dashed_iccs(tmp_path):
    path = tmp_path / 'games.txt'
    path.write_text('H2E2 h9g7 H0-G2 i9-h9 1-0\n', encoding='utf-8')
    games, problems = read_games(str(path))
    assert not problems and games[0].moves == ['h2e2', 'h9g7', 'h0g2', 'i9h9']


def test_a_line_with_only_a_fen_is_reported_not_a_crash(tmp_path):
    start = 'rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w - - 0 1'
    path = tmp_path / 'games.txt'
    path.write_text('h2e2 h9g7 1-0\n[%s]\n[%s] 1-0\n' % (start, start), encoding='utf-8')
    games, problems = read_games(str(path))
    assert len(games) == 1 and [p.line for p in problems] == [2, 3]
    assert all('the line has no moves' in str(p) for p in problems)


@pytest.mark.parametrize('content, expected', [
    (b'[Game "Chinese Chess"]\n[Event "x"]\n1. H2-E2 H9-G7\n', 'line 1: a PGN tag pair'),
    (b'XQ\x0a\x00' + bytes(200), 'an XQF game file'),
])
def test_pgn_and_xqf_files_are_refused_by_name_in_one_line(tmp_path, content, expected):
    path = tmp_path / 'games.pgn'
    path.write_bytes(content)
    exe = os.path.join(os.path.dirname(sys.executable), 'bert4keras-blog')
    result = subprocess.run([exe, 'xiangqi', 'check', str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr
    assert expected in result.stderr and 'ICCS move lists' in result.stderr


# ----------------------------------------------------- examples, real flags

def run_record(folder):
    with open(os.path.join(folder, 'metrics.json'), encoding='utf-8') as f:
        return json.load(f)


# Post 1's pre-training at a size the suite affords (its real run: hidden 128).
_TINY_SMALL = dict(hidden_size=64, num_attention_heads=2, intermediate_size=128,
                   num_hidden_layers=2, num_chars=800)
_TINY_EXTRA = {'electra': dict(embedding_size=64, generator_hidden_size=16,
                               generator_num_attention_heads=1, generator_intermediate_size=32)}


@pytest.mark.slow
def test_post1_pretrains_for_equal_time_and_its_releases_load_everywhere(tmp_path, monkeypatch,
                                                                          capsys):
    from bert4keras_blog.pretrained import budget
    example = load('post1_albert_electra')
    def write_initial(kind, folder, seed=0):
        return budget.write_initial(kind, folder, seed,
                                    **dict(_TINY_SMALL, **_TINY_EXTRA.get(kind, {})))
    monkeypatch.setattr(example, 'write_initial', write_initial)
    run = tmp_path / 'run'
    metrics = example.main(['--pretrain-seconds', '12', '--pretrain-lr', '3e-3',
                            '--pretrain-maxlen', '64', '--finetune-steps', '10',
                            '--finetune-seeds', '2', '--no-cost', '--run-dir', str(run)])
    arms = {row['arm']: row for row in metrics['pretraining']}
    assert set(arms) == {'MLM', 'ELECTRA'}
    for row in arms.values():
        assert 12 <= row['seconds'] < 13.2  # the budget, overrun by one step at most
        assert row['mlm_loss_last'] < row['mlm_loss_first'] - 0.3, row  # real text is learned
    assert arms['ELECTRA']['rtd_accuracy_last'] > arms['ELECTRA']['rtd_accuracy_first']
    assert abs(arms['MLM']['seconds'] - arms['ELECTRA']['seconds']) <= \
        0.1 * arms['MLM']['seconds']  # equal budgets, measured
    assert arms['MLM']['steps'] > arms['ELECTRA']['steps']  # ELECTRA's step costs more
    models = [row['model'] for row in metrics['finetuning']]
    assert models == ['random init'] * 2 + ['MLM'] * 2 + ['ELECTRA discriminator'] * 2
    assert [(c['a'], c['b'], c['n']) for c in metrics['claims']] == [
        ('ELECTRA discriminator', 'MLM', 2), ('MLM', 'random init', 2),
        ('ELECTRA discriminator', 'random init', 2)]
    assert metrics['headline'] == 'electra_minus_mlm_accuracy'
    assert metrics['interval'] == [metrics['claims'][0]['low'], metrics['claims'][0]['high']]
    assert os.path.getsize(run / 'pretraining.png') > 10000
    curves = json.loads((run / 'pretraining_curves.json').read_text())
    assert curves['ELECTRA']['curve'][-1]['step'] == arms['ELECTRA']['steps']

    bert, electra = (str(run / 'pretrained' / name)
                     for name in ('bert_small_zh', 'electra_small_zh'))
    assert find_release(bert)['kind'] == 'bert' and find_release(electra)['kind'] == 'electra'
    capsys.readouterr()
    for folder in (bert, electra):
        assert cli.main(['check', folder]) == 0
    out = capsys.readouterr().out
    assert 'bert: %s loaded' % os.path.join(bert, 'bert_model.ckpt') in out
    assert 'electra: %s loaded' % os.path.join(electra, 'electra_base') in out

    # The trained weights, not the initial ones, are what a release loads.
    again = load('post1_albert_electra').main([
        '--pretrained', bert, electra, '--finetune-steps', '2', '--batch-size', '8',
        '--no-cost', '--run-dir', str(tmp_path / 'again')])
    assert [row['model'] for row in again['finetuning']] == ['BERT', 'ELECTRA discriminator']
    trained = metrics['replaced_token_detection'][0]['tokens']
    reloaded = again['replaced_token_detection'][0]['tokens']
    assert [t['shown'] for t in reloaded] == [t['shown'] for t in trained]
    assert [t['score'] for t in reloaded] == pytest.approx([t['score'] for t in trained], abs=1e-5)
    solved = load('post3_math_word_problems').main([
        '--pretrained', bert, '--data', ape_folder(tmp_path / 'ape'), '--epochs', '1',
        '--maxlen', '48', '--topk', '1', '--run-dir', str(tmp_path / 'post3')])
    assert run_record(tmp_path / 'post3')['run']['inputs']['releases'][0]['kind'] == 'bert'
    assert solved['epochs'][0]['loss'] > 0


@pytest.mark.slow
def test_post1_with_one_release_runs_what_it_can_and_says_what_it_skipped(releases, tmp_path):
    # Before: --bert DIR alone crashed with KeyError: 'albert' after fine-tuning BERT.
    metrics = load('post1_albert_electra').main([
        '--pretrained', releases['bert'], '--finetune-steps', '2', '--batch-size', '8',
        '--no-cost', '--run-dir', str(tmp_path)])
    assert [row['model'] for row in metrics['finetuning']] == ['BERT']
    skipped = {part['part']: part['why'] for part in metrics['skipped']}
    assert skipped['fine-tune ALBERT'] == 'no ALBERT release given'
    assert skipped['replaced-token detection'] == 'no ELECTRA release given'
    assert run_record(tmp_path)['run']['settings']['lr'] == 2e-5  # the real-release rate


@pytest.mark.slow
def test_post1_replaced_token_detection_runs_on_a_real_electra(releases, tmp_path):
    # Before: a real ELECTRA gave "replaced_token_detection": [] without a word.
    metrics = load('post1_albert_electra').main([
        '--pretrained', releases['electra'], '--finetune-steps', '2', '--batch-size', '8',
        '--no-cost', '--run-dir', str(tmp_path)])
    assert [row['model'] for row in metrics['finetuning']] == ['ELECTRA discriminator']
    demo = metrics['replaced_token_detection']
    assert len(demo) == 3 and all(0 <= t['score'] <= 1 for d in demo for t in d['tokens'])
    assert any(t['replaced'] for t in demo[0]['tokens'])


def test_post1_says_when_a_release_has_no_generator(releases, tmp_path):
    folder = tmp_path / 'electra'
    shutil.copytree(releases['electra'], folder)
    os.remove(folder / 'base_generator_config.json')
    example = load('post1_albert_electra')
    found, skipped = example.real_checkpoints(example.parse_args(['--pretrained', str(folder)]))
    assert 'electra_pair' not in found and 'electra' in found  # still fine-tuned
    why = {part['part']: part['why'] for part in skipped}['replaced-token detection']
    assert why == '%s has no *generator_config.json' % folder


@pytest.mark.slow
def test_post3_real_flags_record_the_run_and_the_rejected_lines(releases, tmp_path):
    data = ape_folder(tmp_path / 'ape', extra_train_lines=[CUT_LINE])
    run = tmp_path / 'run'
    metrics = load('post3_math_word_problems').main([
        '--pretrained', releases['roberta'], '--data', data, '--epochs', '1', '--maxlen', '48',
        '--topk', '1', '--run-dir', str(run)])
    rejected = (run / 'train.rejected.txt').read_text(encoding='utf-8')
    assert rejected == '%s line 121: malformed: the line is cut: its JSON stops at column 36 ' \
                       'before the record closes\n' % os.path.join(data, 'train.ape.json')
    record = run_record(run)['run']
    assert record['settings']['lr'] == 2e-5 and record['settings']['maxlen'] == 48
    assert record['settings']['epochs'] == 1 and record['settings']['batch_size'] == 32
    release = record['inputs']['releases'][0]
    assert release['kind'] == 'roberta' and len(release['checkpoint']['sha256_of_index']) == 64
    assert record['inputs']['data']['files']['train.ape.json']['sha256']
    assert record['versions']['bert4keras'] == '0.11.5' and record['seconds'] > 0
    assert record['command'][:3] == ['examples/post3_math_word_problems.py', '--pretrained',
                                     releases['roberta']]
    assert '--lr' in record['command'] and '--maxlen' in record['command']
    vocab = sum(1 for _ in open(find_release(releases['roberta'])['dict'], encoding='utf-8'))
    assert 0 < metrics['vocabulary'] < vocab  # keep_tokens trimmed, as the post does

    # The folder alone is enough to run it again, as a user would from a shell.
    again = tmp_path / 'again'
    exe = os.path.join(os.path.dirname(sys.executable), 'bert4keras-blog')
    result = subprocess.run([exe, 'rerun', str(run), '--run-dir', str(again)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    redone = run_record(again)
    assert {k: v for k, v in redone['run']['settings'].items() if k != 'run_dir'} == \
        {k: v for k, v in record['settings'].items() if k != 'run_dir'}
    assert redone['run']['inputs'] == record['inputs']  # same files, same hashes
    assert redone['epochs'][0]['loss'] == pytest.approx(metrics['epochs'][0]['loss'], rel=1e-4)


def test_post3_stops_when_too_many_lines_are_malformed(releases, tmp_path):
    data = ape_folder(tmp_path / 'ape', train=20, extra_train_lines=['{broken\n'] * 3)
    with pytest.raises(DataFormatError, match=r'3 of 23 lines rejected'):
        load('post3_math_word_problems').main([
            '--pretrained', releases['bert'], '--data', data, '--run-dir', str(tmp_path / 'r')])
    assert (tmp_path / 'r' / 'train.rejected.txt').read_text().count('\n') == 3


@pytest.mark.slow
def test_post4_real_flags_report_rejected_lines(releases, tmp_path):
    # Before: post 4 dropped malformed ape210k lines silently.
    data = ape_folder(tmp_path / 'ape', train=32, extra_train_lines=[CUT_LINE])
    run = tmp_path / 'run'
    metrics = load('post4_teaforn').main([
        '--pretrained', releases['bert'], '--data', data, '--arms', '1', '2', '--seeds', '2',
        '--max-steps', '20', '--eval-every', '10', '--batch-size', '8', '--topk', '1',
        '--maxlen', '40', '--valid-size', '16', '--test-size', '16', '--run-dir', str(run)])
    assert 'line 33: malformed: the line is cut' in (run / 'train.rejected.txt').read_text()
    assert [r['n'] for r in metrics['runs']] == [1, 1, 2, 2] and metrics['task'] == 'math'
    assert run_record(run)['run']['settings']['lr'] == 2e-5


@pytest.mark.slow
def test_post6_real_flags_read_json_and_tsv_and_record_adafactor(releases, tmp_path):
    from bert4keras_blog.corpora import peoples_daily
    texts = [t for t in peoples_daily(limit=2000) if 20 < len(t) < 80][:150]
    data = tmp_path / 'csl'
    data.mkdir()
    for name, part in (('train', texts[:100]), ('valid', texts[100:125]), ('test', texts[125:])):
        lines = [json.dumps({'title': t[:10], 'abst': t}, ensure_ascii=False) + '\n' if i % 2
                 else '%s\t%s\n' % (t[:10], t) for i, t in enumerate(part)]
        if name == 'train':
            lines.append('{"title": "半截", "abst": "被截断\n')
        (data / ('%s.json' % name)).write_text(''.join(lines), encoding='utf-8')
    run = tmp_path / 'run'
    metrics = load('post6_mt5_title_generation').main([
        '--pretrained', releases['mt5.1.1'], '--data', str(data), '--epochs', '1',
        '--max-source', '48', '--run-dir', str(run)])
    assert 'line 101: the line is cut' in (run / 'train.rejected.txt').read_text()
    settings = run_record(run)['run']['settings']
    assert settings['optimizer'] == 'AdaFactor' and settings['lr'] == 1e-3
    assert settings['batch_size'] == 16 and metrics['test_pairs'] == 25


@pytest.mark.slow
def test_post7_real_flags_learn_from_upper_case_records(releases, tmp_path):
    games, _ = read_games(DEFAULT_GAMES)
    path = tmp_path / 'games.txt'
    with open(path, 'w', encoding='utf-8') as f:
        for i, game in enumerate(games[:60]):
            moves = [m.upper() if i % 2 else '%s-%s' % (m[:2].upper(), m[2:].upper())
                     for m in game.moves]
            f.write(' '.join(moves + [game.result]) + '\n')
        f.write('[%s]\n' % 'rnbakabnr/9/1c5c1/p1p1p1p1p/9/9/P1P1P1P1P/1C5C1/9/RNBAKABNR w - - 0 1')
    run = tmp_path / 'run'
    metrics = load('post7_gpt_xiangqi').main([
        '--pretrained', releases['bert'], '--data', str(path), '--steps', '8',
        '--batch-size', '4', '--maxlen', '64', '--random-games', '1', '--engine-games', '0',
        '--max-plies', '10', '--probe-positions', '3', '--curve-games', '0',
        '--run-dir', str(run)])
    assert metrics['train_games'] == 57  # 60 read, 3 held out
    assert (run / 'games.rejected.txt').read_text() == \
        '%s line 61: game 61: move \'\': the line has no moves\n' % path
