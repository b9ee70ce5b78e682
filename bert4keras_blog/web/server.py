"""The HTTP side: routes, JSON in and out, and refusals as 4xx.

Python's own ``http.server`` (one thread per connection) serves one HTML
page, its script and stylesheet, the run folders' plots and a small JSON
API; ``services.Services`` does the work. Every refusal is a JSON
``{"error": message}`` with a 4xx status; an unexpected failure is logged
with its traceback and answered 500 without details.

Public API:
    make_server(runs_root, host='127.0.0.1', port=8000, quiet=False) -> server
        (``.serve_forever()``, ``.shutdown()``, ``.server_address``)
    serve(runs_root, host, port, warm_up=False): runs until Ctrl-C.
    ROUTES: (method, path) -> Services method name.
"""
import http.server
import json
import os
import sys
import traceback
import urllib.parse

from bert4keras_blog.web.services import LIMITS, RequestError, Services

__all__ = ['make_server', 'serve', 'ROUTES']

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
PAGES = {'/': ('index.html', 'text/html; charset=utf-8'),
         '/app.js': ('app.js', 'text/javascript; charset=utf-8'),
         '/app.css': ('app.css', 'text/css; charset=utf-8')}
ROUTES = {('GET', '/api/status'): 'status', ('GET', '/api/results'): 'results',
          ('POST', '/api/chess/state'): 'chess_state', ('POST', '/api/chess/move'): 'chess_move',
          ('POST', '/api/chess/reply'): 'chess_reply',
          ('POST', '/api/chess/record'): 'chess_record',
          ('POST', '/api/math'): 'math', ('POST', '/api/titles'): 'titles'}
LOCAL_HOSTS = ('127.0.0.1', 'localhost', '::1')


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'bert4keras-blog'
    protocol_version = 'HTTP/1.1'  # keep-alive: the load test's clients reuse connections

    def log_message(self, format, *args):
        if not self.server.quiet:
            super().log_message(format, *args)

    def do_GET(self):
        self._answer('GET')

    def do_POST(self):
        self._answer('POST')

    def _refuse_method(self):
        self._send(405, {'error': '%s is not allowed here (GET and POST only)' % self.command})

    # Other methods get a 405 rather than http.server's 501.
    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def do_HEAD(self):  # a HEAD answer has no body
        self.send_response(405)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def _answer(self, method):
        try:
            path = urllib.parse.urlsplit(self.path).path
            body = self._body() if method == 'POST' else None
            self._route(method, path, body)
        except RequestError as error:
            self._send(error.status, {'error': str(error)})
        except Exception:  # a bug of ours: logged whole, answered without details
            traceback.print_exc(file=sys.stderr)
            self._send(500, {'error': 'internal error (logged by the server)'})

    def _body(self):
        length = self.headers.get('Content-Length')
        if length is None or not length.isdigit():
            raise RequestError(411, 'a POST needs a Content-Length')
        if int(length) > LIMITS['body_bytes']:
            if int(length) <= 16 * LIMITS['body_bytes']:
                self.rfile.read(int(length))  # drained, so the client reads our answer
            else:
                self.close_connection = True
            raise RequestError(413, 'request body of %s bytes; at most %d' % (
                length, LIMITS['body_bytes']))
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as error:
            raise RequestError(400, 'the body is not JSON: %s' % error) from None
        except RecursionError:
            raise RequestError(400, 'the body is not JSON we read: nested too deeply') from None

    def _route(self, method, path, body):
        if method == 'GET' and path in PAGES:
            name, kind = PAGES[path]
            with open(os.path.join(STATIC, name), 'rb') as f:
                return self._send(200, f.read(), kind)
        if method == 'GET' and path.startswith('/runs/'):
            parts = path.split('/')
            if len(parts) != 4:
                raise RequestError(404, 'no such file: %s' % path)
            with open(self.server.services.plot_path(parts[2], parts[3]), 'rb') as f:
                return self._send(200, f.read(), 'image/png')
        name = ROUTES.get((method, path))
        if name is None:
            if any(p == path for _, p in ROUTES) or path in PAGES:
                raise RequestError(405, '%s is not allowed on %s' % (method, path))
            raise RequestError(404, 'no such page: %s' % path[:200])
        operation = getattr(self.server.services, name)
        answer = operation(body) if method == 'POST' else operation()
        if name == 'chess_record':
            return self._send(200, answer.encode('utf-8'), 'text/plain; charset=utf-8',
                              {'Content-Disposition': 'attachment; filename="game.txt"'})
        self._send(200, answer)

    def _send(self, status, payload, kind='application/json', headers=None):
        data = payload if isinstance(payload, bytes) else \
            json.dumps(payload, ensure_ascii=False).encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Cache-Control', 'no-store')
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def make_server(runs_root, host='127.0.0.1', port=8000, quiet=False):
    """A threading HTTP server over ``runs_root`` (not yet serving); port 0
    picks a free one (see ``server_address``)."""
    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.services, server.quiet = Services(runs_root), quiet
    return server


def serve(runs_root, host='127.0.0.1', port=8000, warm_up=False):
    """Serves until Ctrl-C; ``warm_up`` loads the trained models first."""
    server = make_server(runs_root, host, port)
    try:
        if warm_up:
            server.services.warm_up()
        if host not in LOCAL_HOSTS:
            print('note: listening on %s: anyone who can reach this machine can use the page '
                  '(it has no login)' % host)
        for name, model in server.services.status()['models'].items():
            print('%-7s %s' % (name, model['folder'] if model['ready'] else
                               'not trained yet (%s)' % model['train']))
        print('serving http://%s:%d/ (Ctrl-C stops)' % server.server_address[:2], flush=True)
        server.serve_forever()
    finally:
        server.server_close()
