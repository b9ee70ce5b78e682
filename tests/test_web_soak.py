"""The real `bert4keras-blog serve` process under hostile clients, loopback
only, bounded in count and time: slow clients that send half a request and
go silent, idle keep-alive connections, bursts of good requests mixed with
oversized and malformed ones, a client that leaves mid-response, and
SIGTERM with clients connected and a model busy. The figures it prints are
the ones docs/web.md quotes."""
import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from test_web import request
from web_tour import PROBLEM

SLOW_CLIENTS = 1500
MAX_CONNECTIONS = 200
IDLE_SECONDS = 4
TEXT = '国务院总理今天在北京会见了日本外务大臣，双方就两国关系交换了意见。'


def start(runs, *flags):
    """The serve command on a free port; returns (process, port)."""
    command = [sys.executable, '-m', 'bert4keras_blog.app.cli', 'serve', '--runs', str(runs),
               '--port', '0', '--max-connections', str(MAX_CONNECTIONS),
               '--idle-timeout', str(IDLE_SECONDS)] + list(flags)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    deadline = time.time() + 300
    while time.time() < deadline:
        line = process.stdout.readline()
        found = re.search(r'serving http://127\.0\.0\.1:(\d+)/', line)
        if found:
            return process, int(found.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError('the server did not start')


def stop(process):
    if process.poll() is None:
        process.kill()
        process.wait(30)


def proc_status(pid):
    """(threads, RSS in MB, open TCP sockets) of a process, from /proc."""
    with open('/proc/%d/status' % pid) as f:
        fields = dict(line.split(':', 1) for line in f if ':' in line)
    sockets = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            sockets += os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith('socket:')
        except OSError:  # closed while we looked
            pass
    return int(fields['Threads']), int(fields['VmRSS'].split()[0]) / 1024, sockets


def slow_client(port):
    """Headers and part of a body, then nothing."""
    client = socket.create_connection(('127.0.0.1', port), timeout=10)
    client.sendall(b'POST /api/math HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                   b'Content-Length: 400\r\n\r\n{"text": "\xe4\xb8\x80\xe4')
    return client


def fate(client):
    """'open', 'closed' (by the server) or 'refused' (a 503) of a slow client."""
    client.setblocking(False)
    try:
        data = client.recv(4096)
    except BlockingIOError:
        return 'open'
    except OSError:
        return 'closed'
    return 'refused' if data.startswith(b'HTTP/1.1 503') else 'closed'


@pytest.mark.slow
def test_slow_and_idle_clients_stay_bounded_and_good_requests_keep_their_answers(trained_run):
    for example in ('post3_math_word_problems', 'post6_mt5_title_generation',
                    'post7_gpt_xiangqi'):
        trained_run(example)
    process, port = start(trained_run.root, '--warm-up')
    clients = []
    try:
        alone = {name: request(port, 'POST', path, body)[1] for name, path, body in (
            ('math', '/api/math', {'text': PROBLEM}), ('titles', '/api/titles', {'text': TEXT}),
            ('reply', '/api/chess/reply', {'moves': ['h2e2']}))}
        threads0, rss0, _ = proc_status(process.pid)

        # 1. Slow clients: all connect, while the page keeps answering.
        began, status_seconds, most = time.time(), [], (0, 0)
        for i in range(SLOW_CLIENTS):
            clients.append(slow_client(port))
            if i % 250 == 249:
                status_seconds.append(request(port, 'GET', '/api/status')[2])
                threads, _, sockets = proc_status(process.pid)
                most = max(most[0], threads), max(most[1], sockets)
        connect_seconds = time.time() - began
        fates = [fate(c) for c in clients]
        threads, rss, sockets = proc_status(process.pid)
        most = max(most[0], threads), max(most[1], sockets)
        # 2. Idle keep-alive connections after one good request each.
        keep_alive = []
        for _ in range(20):
            connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
            connection.request('GET', '/api/status')
            assert connection.getresponse().read()
            keep_alive.append(connection)
        time.sleep(IDLE_SECONDS + 2.5)  # every silent connection is closed by now
        after_idle = proc_status(process.pid)[2]
        still_open = sum(fate(c) == 'open' for c in clients)

        # 3. A burst of good requests from 8 clients, with bad ones mixed in.
        jobs = [('math', '/api/math', {'text': PROBLEM}), ('titles', '/api/titles', {'text': TEXT}),
                ('reply', '/api/chess/reply', {'moves': ['h2e2']}),
                ('big', '/api/titles', {'text': 'x' * 70000}),
                ('broken', '/api/math', None), ('status', '/api/status', None)] * 12

        def run(job):
            name, path, body = job
            if name == 'broken':
                return name, request(port, 'POST', path, raw=b'{"text": ')
            return name, request(port, 'GET' if body is None else 'POST', path, body)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            done = list(pool.map(run, jobs))
        for name, (code, answer, _) in done:
            expected = {'big': 413, 'broken': 400}.get(name, 200)
            assert code == expected, (name, code, answer)
            if name in alone:
                assert answer == alone[name], name
        latencies = [seconds for name, (_, _, seconds) in done]
        # 4. A client that leaves mid-response, then the page still answers.
        leaver = socket.create_connection(('127.0.0.1', port), timeout=10)
        body = json.dumps({'text': TEXT}).encode()
        leaver.sendall(b'POST /api/titles HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n'
                       % len(body) + body)
        leaver.close()
        assert request(port, 'POST', '/api/math', {'text': PROBLEM})[1] == alone['math']
        final_threads, final_rss, _ = proc_status(process.pid)
    finally:
        for client in clients:
            client.close()
        stop(process)

    print('\n%d slow clients connected in %.1f s (%d open, %d closed by the server, %d refused '
          'with 503); /api/status meanwhile: at most %.3f s; threads %d at rest, at most %d; '
          'open sockets at most %d (cap %d), %d after %d s of silence; RSS %.0f MB at rest, '
          '%.0f MB after; burst of %d requests from 8 clients: p50 %.3f s, p99 %.3f s'
          % (SLOW_CLIENTS, connect_seconds, fates.count('open'), fates.count('closed'),
             fates.count('refused'), max(status_seconds), threads0, most[0], most[1],
             MAX_CONNECTIONS, after_idle, IDLE_SECONDS, rss0, final_rss, len(jobs),
             *np.percentile(latencies, [50, 99])))
    assert connect_seconds < 120 and max(status_seconds) < 1.0
    assert most[1] <= MAX_CONNECTIONS + 2  # the listening socket, one being accepted
    assert most[0] <= threads0 + 2 and final_threads <= threads0 + 2  # a fixed worker pool
    assert still_open == 0 and after_idle <= 2  # the listener (and at most one straggler)
    assert rss - rss0 < 100 and final_rss - rss0 < 100
    assert np.percentile(latencies, 99) < 30


@pytest.mark.slow
def test_sigterm_stops_the_server_in_two_seconds_with_clients_and_a_busy_model(trained_run):
    trained_run('post6_mt5_title_generation')
    process, port = start(trained_run.root, '--warm-up')
    clients = []
    try:
        clients = [socket.create_connection(('127.0.0.1', port), timeout=10)
                   for _ in range(100)]
        def keep_busy():  # titles one after another: a model is decoding at any moment
            try:
                while True:
                    request(port, 'POST', '/api/titles', {'text': TEXT * 20}, retries=1)
            except (OSError, ValueError):  # the server has gone
                pass
        for client in clients[:50]:  # half of them mid-request
            client.sendall(b'GET /api/status HTTP/1.1\r\nHost: x\r\n')
        threading.Thread(target=keep_busy, daemon=True).start()
        time.sleep(1.0)
        began = time.time()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        seconds = time.time() - began
    finally:
        for client in clients:
            client.close()
        stop(process)
    print('\nSIGTERM with 100 clients connected and a model busy: exited in %.2f s' % seconds)
    assert process.returncode == 143 and seconds < 2
