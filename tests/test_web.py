"""The web page's server over real HTTP: answers, refusals, and load."""
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest

from bert4keras_blog.xiangqi.records import read_games
from bert4keras_blog.xiangqi.rules import legal_moves
from web_tour import MATE_IN_ONE, PROBLEM, start_server


@pytest.fixture()
def empty_runs(tmp_path):
    server, url = start_server(tmp_path)
    yield server, server.server_address[1]
    server.shutdown()
    server.server_close()


_PATH = re.compile(r'(?<![\w.:/])/([\w.-]+)/[\w./-]*')


def no_machine_paths(text):
    """A response names no folder of this machine: every /x/... in it is a
    URL of the page (/runs/..., /api/...), not a path under an existing /x."""
    leaks = [m.group(0) for m in _PATH.finditer(text)
             if m.group(1) not in ('runs', 'api') and os.path.isdir('/' + m.group(1))]
    assert not leaks, leaks
    return text


def request(port, method, path, body=None, raw=None, headers=None, retries=30):
    """(status, decoded JSON or text, seconds) of one request; a 503 (a busy
    model) is tried again after a quarter of its Retry-After, as a polite
    client does, and every answer is checked for absolute paths of this
    machine."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    start = time.perf_counter()
    for _ in range(retries):
        connection = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        if response.status != 503:
            break
        time.sleep(float(response.getheader('Retry-After')) / 4)
    seconds = time.perf_counter() - start
    kind = response.getheader('Content-Type', '')
    if 'json' in kind or 'text/plain' in kind:
        no_machine_paths(payload.decode())
    return response.status, (json.loads(payload) if 'json' in kind else payload.decode()), seconds


# Each of these must be refused with the status given and a message, and change nothing.
BAD_REQUESTS = [
    ('POST', '/api/math', None, b'{not json', 400, 'not JSON'),
    ('POST', '/api/math', None, b'\xff\xfe', 400, 'not JSON'),
    ('POST', '/api/math', [1, 2], None, 400, 'JSON object'),
    ('POST', '/api/math', None, b'[' * 60000, 400, 'nested too deeply'),
    ('DELETE', '/api/status', None, None, 405, 'GET and POST only'),
    ('PUT', '/api/math', {'text': '1+1'}, None, 405, 'GET and POST only'),
    ('POST', '/api/math', {}, None, 400, '"text" is missing'),
    ('POST', '/api/math', {'text': 12}, None, 400, 'must be a string'),
    ('POST', '/api/math', {'text': '   '}, None, 400, 'is empty'),
    ('POST', '/api/math', {'text': '多' * 501}, None, 413, 'at most 500'),
    ('POST', '/api/titles', {'text': 'x' * 70000}, None, 413, 'at most 65536'),
    ('POST', '/api/chess/move', {'moves': [], 'move': 'a3a5'}, None, 400, 'not a legal move'),
    ('POST', '/api/chess/move', {'moves': [], 'move': 'zz'}, None, 400, 'not a legal move'),
    ('POST', '/api/chess/move', {'moves': []}, None, 400, '"move" is missing'),
    ('POST', '/api/chess/state', {'moves': ['h2e2', 'h2e2']}, None, 400, 'not legal'),
    ('POST', '/api/chess/state', {'moves': 'h2e2'}, None, 400, 'must be a list'),
    ('POST', '/api/chess/state', {'moves': [None]}, None, 400, 'ICCS moves'),
    ('POST', '/api/chess/state', {'moves': ['h2e2'] * 1001}, None, 400, 'at most'),
    ('POST', '/api/chess/state', {'fen': 'k' * 90 + ' w'}, None, 400, 'FEN'),
    ('POST', '/api/chess/state', {'fen': '3kk4/9/9/9/9/9/9/9/9/4K4 w'}, None, 400, 'FEN'),
    ('POST', '/api/chess/move', {'fen': MATE_IN_ONE, 'moves': ['a0a9'], 'move': 'a9a8'},
     None, 409, 'game is over'),
    ('GET', '/api/chess/move', None, None, 405, 'not allowed'),
    ('POST', '/api/status', {}, None, 405, 'not allowed'),
    ('GET', '/no/such/page', None, None, 404, 'no such page'),
    ('GET', '/runs/post5_simsiam/../../setup.py', None, None, 404, 'no such'),
    ('GET', '/runs/../setup.py', None, None, 404, 'no such'),
    ('GET', '/runs/post9_unknown/plot.png', None, None, 404, 'no such plot'),
    ('GET', '/runs/post5_simsiam/metrics.json', None, None, 404, 'no such plot'),
]


def test_bad_requests_get_4xx_with_a_message_and_the_server_goes_on(empty_runs):
    _, port = empty_runs
    for method, path, body, raw, status, message in BAD_REQUESTS:
        got, answer, _ = request(port, method, path, body, raw)
        assert got == status and message in answer['error'], (method, path, got, answer)
    # no Content-Length at all
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    connection.putrequest('POST', '/api/math')
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 411
    connection.close()
    status, answer, _ = request(port, 'GET', '/api/status')
    assert status == 200 and set(answer['models']) == {'chess', 'maths', 'titles'}


def test_untrained_models_say_which_command_trains_them(empty_runs):
    _, port = empty_runs
    _, status, _ = request(port, 'GET', '/api/status')
    for name, script in [('chess', 'post7_gpt_xiangqi.py'),
                         ('maths', 'post3_math_word_problems.py'),
                         ('titles', 'post6_mt5_title_generation.py')]:
        assert not status['models'][name]['ready']
        assert status['models'][name]['train'] == 'python examples/' + script
    code, answer, _ = request(port, 'POST', '/api/math', {'text': PROBLEM})
    assert code == 409 and 'python examples/post3_math_word_problems.py' in answer['error']
    code, answer, _ = request(port, 'POST', '/api/chess/reply', {'moves': ['h2e2']})
    assert code == 409 and 'post7_gpt_xiangqi.py' in answer['error']
    code, page, _ = request(port, 'GET', '/')
    assert code == 200 and '<script src="/app.js">' in page


def test_a_run_folder_cut_short_is_a_409_naming_what_is_missing(tmp_path):
    folder = tmp_path / 'post6_mt5_title_generation'
    folder.mkdir()
    for name in ('metrics.json', 'keep_tokens.json', 'best.weights.h5'):
        (folder / name).write_text('{}')  # the trimmed sentencepiece model is missing
    server, url = start_server(tmp_path)
    try:
        code, answer, _ = request(server.server_address[1], 'POST', '/api/titles',
                                  {'text': '人民日报'})
        assert code == 409 and 'sentencepiece.trimmed.model' in answer['error']
    finally:
        server.shutdown()
        server.server_close()


def test_the_rules_answer_without_a_model_and_the_record_reads_back(empty_runs, tmp_path):
    _, port = empty_runs
    code, state, _ = request(port, 'POST', '/api/chess/state', {'moves': []})
    assert code == 200 and state['turn'] == 'red' and state['board'][9] == 'RNBAKABNR'
    assert state['legal'] == legal_moves([]) and len(state['legal']) == 44
    code, state, _ = request(port, 'POST', '/api/chess/move', {'moves': [], 'move': 'H2-E2'})
    assert code == 200 and state['moves'] == ['h2e2'] and state['turn'] == 'black'
    assert state['board'][7] == '.C..C....' and state['last'] == 'h2e2'
    code, state, _ = request(port, 'POST', '/api/chess/move',
                             {'fen': MATE_IN_ONE, 'moves': [], 'move': 'a0a9'})
    assert state['result'] == {'result': '1-0', 'reason': 'checkmate'} and state['legal'] == []
    code, text, _ = request(port, 'POST', '/api/chess/record',
                            {'fen': MATE_IN_ONE, 'moves': ['a0a9']})
    assert code == 200 and text == '[%s] a0a9 1-0\n' % MATE_IN_ONE
    (tmp_path / 'game.txt').write_text(text)
    games, problems = read_games(str(tmp_path / 'game.txt'))
    assert not problems and games[0].moves == ['a0a9'] and games[0].result == '1-0'


def test_results_cards_come_from_the_run_folders(tmp_path):
    folder = tmp_path / 'post5_simsiam'
    folder.mkdir()
    (folder / 'metrics.json').write_text(json.dumps({
        'headline': 'knn', 'knn': 0.5, 'interval': [0.4, 0.6], 'epochs': 3,
        'run': {'command': ['examples/post5_simsiam.py', '--epochs', '3']}}))
    shutil.copy(__file__, folder / 'not_a_plot.py')
    png = b'\x89PNG\r\n\x1a\n' + b'0' * 100
    (folder / 'collapse.png').write_bytes(png)
    (tmp_path / 'post8_rnn_gradients').mkdir()
    (tmp_path / 'post8_rnn_gradients' / 'metrics.json').write_text('{broken')
    server, url = start_server(tmp_path)
    port = server.server_address[1]
    try:
        code, cards, _ = request(port, 'GET', '/api/results')
        assert code == 200 and [c['post'] for c in cards] == list(range(1, 9))
        card = cards[4]
        assert card['headline'] == 'knn' and card['value'] == '0.5 [0.4, 0.6]'
        assert card['plots'] == ['/runs/post5_simsiam/collapse.png']
        assert ['epochs', '3'] in card['scalars']
        assert card['command'] == 'examples/post5_simsiam.py --epochs 3'
        assert 'metrics.json' in cards[7]['error']  # broken file: said on its card, no 500
        assert cards[0]['missing'] == 'python examples/post1_albert_electra.py'
        connection = http.client.HTTPConnection('127.0.0.1', port)
        connection.request('GET', card['plots'][0])
        response = connection.getresponse()
        assert response.status == 200 and response.read() == png
        assert response.getheader('Content-Type') == 'image/png'
        assert request(port, 'GET', '/runs/post5_simsiam/not_a_plot.py')[0] == 404
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------ with trained models (trained_server: conftest.py)

@pytest.mark.slow
def test_the_models_answer_as_their_own_apis_do(trained_server, trained_run):
    port = trained_server.server_address[1]
    code, answer, _ = request(port, 'POST', '/api/math', {'text': PROBLEM})
    assert code == 200 and answer['expression'] == '12*5' and answer['value'] == '60'
    assert answer['candidates'][0]['expression'] == '12*5'

    code, state, _ = request(port, 'POST', '/api/chess/reply', {'moves': ['h2e2']})
    assert code == 200 and state['moves'][0] == 'h2e2' and len(state['moves']) == 2
    assert state['model_move'] in legal_moves(['h2e2'])
    probabilities = [c['probability'] for c in state['candidates']]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
    from bert4keras_blog.xiangqi.lm import load_move_model
    from bert4keras_blog.xiangqi.player import MovePlayer
    transformer, tokenizer = load_move_model(str(trained_run.root / 'post7_gpt_xiangqi' / 'model'))
    scores = MovePlayer(transformer, tokenizer).scores(['h2e2'])
    values = np.array(list(scores.values()))
    expected = np.exp(values.max() - np.logaddexp.reduce(values))
    assert state['model_move'] == max(scores, key=scores.get)
    assert abs(probabilities[0] - expected) < 1e-6

    text = '国务院总理今天在北京会见了日本外务大臣，双方就两国关系交换了意见。'
    code, answer, _ = request(port, 'POST', '/api/titles', {'text': text})
    assert code == 200 and answer['title'] == answer['candidates'][0]['title']
    from bert4keras_blog.mt5 import load_title_generator
    generator = load_title_generator(str(trained_run.root / 'post6_mt5_title_generation'))
    decoder = generator.decoder
    ids = generator.tokenizer.encode(text, maxlen=generator.max_source)[0]
    best = decoder.batch_beam_search([[np.array(ids)]], 3)[0]  # the example's own decoding
    assert answer['title'] == generator.tokenizer.decode([int(i) for i in best[1:]])


class Serialized(object):
    """Wraps a loaded model; records how many requests were inside it at once."""

    def __init__(self, model):
        self.model, self.inside, self.most = model, 0, 0
        self.guard = threading.Lock()

    def __getattr__(self, name):
        method = getattr(self.model, name)

        def call(*args, **kwargs):
            with self.guard:
                self.inside += 1
                self.most = max(self.most, self.inside)
            try:
                return method(*args, **kwargs)
            finally:
                with self.guard:
                    self.inside -= 1
        return call


@pytest.mark.slow
def test_load_mixed_good_and_bad_requests_from_concurrent_clients(trained_server, capsys):
    """300 requests from 8 clients: every good one answered as it is alone,
    every bad one refused with 4xx, no 5xx; each model entered by one
    request at a time. Prints the latency percentiles."""
    services = trained_server.services
    services.warm_up()
    watched = {name: Serialized(slot.model) for name, slot in services.slots.items()}
    for name, slot in services.slots.items():
        slot.model = watched[name]
    port = trained_server.server_address[1]
    problems = [PROBLEM, '小明有3个苹果，又买了4个，一共有几个？', '5个人每人分2本书，一共要几本？']
    positions = [[], ['h2e2'], ['h2e2', 'h9g7'], ['b2e2', 'b9c7', 'b0c2']]
    good = ([('POST', '/api/math', {'text': p}) for p in problems] +
            [('POST', '/api/chess/reply', {'moves': m}) for m in positions] +
            [('POST', '/api/chess/state', {'moves': m}) for m in positions] +
            [('POST', '/api/titles', {'text': '人民日报今天发表社论，祝贺新年。'}),
             ('GET', '/api/results', None), ('GET', '/api/status', None)])
    expected = {}
    for method, path, body in good:  # answered one at a time first
        code, answer, _ = request(port, method, path, body)
        assert code == 200, (path, answer)
        expected[path, json.dumps(body)] = answer
    expected = {k: v for k, v in expected.items() if k[0] != '/api/status'}  # 'loaded' changes
    bad = [(m, p, b, r, s) for m, p, b, r, s, _ in BAD_REQUESTS]
    rng = np.random.default_rng(0)
    plan = [good[i] + (None, 200) for i in rng.integers(len(good), size=180)] + \
        [bad[i] for i in rng.integers(len(bad), size=120)]
    rng.shuffle(plan)

    def one(item):
        method, path, body, raw, status = item
        code, answer, seconds = request(port, method, path, body, raw)
        return item, code, answer, seconds

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        start = time.perf_counter()
        done = list(pool.map(one, plan))
        wall = time.perf_counter() - start
    for (method, path, body, raw, status), code, answer, _ in done:
        assert code < 500, (path, body, answer)
        assert code == status, (path, body, code, answer)
        if status == 200 and (path, json.dumps(body)) in expected:
            assert answer == expected[path, json.dumps(body)], path
    assert all(w.most == 1 for w in watched.values()), {n: w.most for n, w in watched.items()}
    assert max(w.most for w in watched.values()) == 1
    latencies = np.array([d[3] for d in done]) * 1000
    with capsys.disabled():
        print('\nweb load: %d requests (%d bad), 8 clients, %.1f s, %.0f requests/s; latency ms '
              'p50 %.1f, p90 %.1f, p99 %.1f, max %.1f' % (
                  len(done), sum(item[4] != 200 for item in plan), wall,
                  len(done) / wall, *np.percentile(latencies, [50, 90, 99, 100])))


def test_the_serve_command_starts_answers_and_stops_on_ctrl_c(tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys
    command = [sys.executable, '-m', 'bert4keras_blog.app.cli', 'serve', '--runs', str(tmp_path),
               '--port', '0']
    # A shell's background job (CI, nohup ... &) ignores SIGINT, and so would
    # the server; a user's terminal does not, so the child gets the default back.
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONUNBUFFERED='1'),
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = [server.stdout.readline() for _ in range(4)]
        assert 'not trained yet (python examples/post7_gpt_xiangqi.py)' in lines[0]
        port = int(re.search(r'http://127\.0\.0\.1:(\d+)/', lines[3]).group(1))
        assert request(port, 'GET', '/api/status')[0] == 200
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()  # never leave a server behind
            raise
    assert server.returncode == 130 and 'interrupted' in err
    missing = subprocess.run(command[:4] + ['--runs', str(tmp_path / 'nowhere')],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and 'nowhere: no such folder' in missing.stderr
