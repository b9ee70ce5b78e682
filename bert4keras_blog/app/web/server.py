"""The HTTP side: routes, JSON in and out, refusals as 4xx, and resources
that stay bounded whatever the clients do.

Waitress (a pure-Python WSGI server with no dependencies of its own) reads
every request whole in one event loop before one of a fixed pool of worker
threads sees it, so a client that sends half a request and then nothing
costs a socket and a buffer, never a thread. A connection silent for
``idle_seconds`` with no request in progress is closed. At
``max_connections`` open connections, a new one first closes the connection
that has been silent longest with no request in progress; when every
connection has one, the new one gets a fast 503 with ``Retry-After``.
``services.Services`` does the work. Every refusal is a JSON
``{"error": message}`` with a 4xx (or 503) status; an unexpected failure is
logged with its traceback and answered 500 without details.

Public API:
    SERVER_LIMITS: the default connection cap, idle timeout and worker threads.
    make_server(runs_root, host='127.0.0.1', port=8000, quiet=False, **limits)
        -> PageServer (``.serve_forever()``, ``.shutdown()``, ``.server_close()``,
        ``.server_address``, ``.services``, ``.open_connections()``)
    serve(runs_root, host, port, warm_up=False, **limits): runs until Ctrl-C
        or SIGTERM, which stop it at once even while a model is busy.
    ROUTES: (method, path) -> Services method name.
"""
import http
import json
import os
import sys
import threading
import traceback

from waitress.server import TcpWSGIServer
from waitress import wasyncore

from bert4keras_blog.app.web.services import LIMITS, RequestError, Services

__all__ = ['make_server', 'serve', 'ROUTES', 'SERVER_LIMITS', 'PageServer']

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
JSON = 'application/json'
SERVER_LIMITS = {'max_connections': 200, 'idle_seconds': 10, 'threads': 8}
RETRY_AFTER = '2'
# Bodies past LIMITS['body_bytes'] get our 413; past this, waitress' own.
_READ_LIMIT = 16 * LIMITS['body_bytes']


class Application(object):
    """The WSGI application: one route table over ``services``."""

    def __init__(self, services, quiet=False):
        self.services, self.quiet = services, quiet

    def __call__(self, environ, start_response):
        method, path = environ['REQUEST_METHOD'], environ.get('PATH_INFO') or '/'
        headers = {}
        try:
            status, payload, kind, headers = self._route(method, path, environ)
        except RequestError as error:
            status, payload, kind = error.status, {'error': str(error)}, JSON
            if error.status == 503:
                headers = {'Retry-After': RETRY_AFTER}
        except Exception:  # a bug of ours: logged whole, answered without details
            traceback.print_exc(file=sys.stderr)
            status, payload, kind = 500, {'error': 'internal error (logged by the server)'}, JSON
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload, ensure_ascii=False)
        if isinstance(payload, str):  # never an absolute path of this machine
            payload = self.services.public(payload).encode('utf-8')
        start_response('%d %s' % (status, http.HTTPStatus(status).phrase),
                       [('Content-Type', kind), ('Content-Length', str(len(payload))),
                        ('Cache-Control', 'no-store')] + list(headers.items()))
        if not self.quiet:
            print('%s "%s %s" %d' % (environ.get('REMOTE_ADDR', '-'), method, path[:200], status),
                  file=sys.stderr, flush=True)
        return [] if method == 'HEAD' else [payload]

    def _route(self, method, path, environ):
        if method not in ('GET', 'POST'):
            raise RequestError(405, '%s is not allowed here (GET and POST only)' % method)
        if method == 'GET' and path in PAGES:
            name, kind = PAGES[path]
            with open(os.path.join(STATIC, name), 'rb') as f:
                return 200, f.read(), kind, {}
        if method == 'GET' and path.startswith('/runs/'):
            parts = path.split('/')
            if len(parts) != 4:
                raise RequestError(404, 'no such file: %s' % path[:200])
            with open(self.services.plot_path(parts[2], parts[3]), 'rb') as f:
                return 200, f.read(), 'image/png', {}
        name = ROUTES.get((method, path))
        if name is None:
            if any(p == path for _, p in ROUTES) or path in PAGES:
                raise RequestError(405, '%s is not allowed on %s' % (method, path))
            raise RequestError(404, 'no such page: %s' % path[:200])
        operation = getattr(self.services, name)
        answer = operation(_body(environ)) if method == 'POST' else operation()
        if name == 'chess_record':
            return 200, answer, 'text/plain; charset=utf-8', {
                'Content-Disposition': 'attachment; filename="game.txt"'}
        return 200, answer, JSON, {}


def _body(environ):
    """The request's JSON body (waitress has read it whole already)."""
    length = environ.get('CONTENT_LENGTH') or ''
    if not length.isdigit():
        raise RequestError(411, 'a POST needs a Content-Length')
    if int(length) > LIMITS['body_bytes']:
        raise RequestError(413, 'request body of %s bytes; at most %d' % (
            length, LIMITS['body_bytes']))
    raw = environ['wsgi.input'].read(int(length))
    try:
        return json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(400, 'the body is not JSON: %s' % error) from None
    except RecursionError:
        raise RequestError(400, 'the body is not JSON we read: nested too deeply') from None


class _Listener(TcpWSGIServer):
    """waitress' TCP server with our rule at the connection cap: close the
    longest-silent idle connection, or answer the newcomer 503."""

    max_connections = SERVER_LIMITS['max_connections']

    def handle_accept(self):
        channels = self.active_channels
        if len(channels) >= self.max_connections:
            idle = [c for c in channels.values() if not c.requests and not c.total_outbufs_len]
            if idle:
                min(idle, key=lambda c: c.last_activity).handle_close()
            else:
                return self._refuse()
        super().handle_accept()

    def _refuse(self):
        try:
            accepted = self.accept()
        except OSError:
            return
        if accepted is None:
            return
        connection = accepted[0]
        body = json.dumps({'error': 'all %d connections have a request in progress; try again '
                                    'shortly' % self.max_connections}).encode('utf-8')
        head = ('HTTP/1.1 503 Service Unavailable\r\nContent-Type: %s\r\nRetry-After: %s\r\n'
                'Content-Length: %d\r\nConnection: close\r\n\r\n' % (JSON, RETRY_AFTER, len(body)))
        try:
            connection.setblocking(False)  # never wait on a client in the event loop
            connection.send(head.encode('ascii') + body)
        except OSError:
            pass
        connection.close()


class PageServer(object):
    """The page's server: ``serve_forever`` in one thread (the event loop),
    ``shutdown`` from another, ``server_close`` to release everything."""

    def __init__(self, runs_root, host, port, quiet, max_connections, idle_seconds, threads):
        self.services = Services(runs_root)
        self.sockets = {}  # the event loop's map: the listener and every connection
        self.listener = _Listener(
            Application(self.services, quiet), map=self.sockets, host=host, port=port,
            threads=threads,
            channel_timeout=idle_seconds, cleanup_interval=1,
            connection_limit=max_connections + 16,  # our handle_accept decides first
            # Memory per connection stays small: 16 KiB of headers, a body
            # past 64 KiB spooled to a temporary file until our 413.
            max_request_header_size=16 * 1024, max_request_body_size=_READ_LIMIT,
            inbuf_overflow=LIMITS['body_bytes'], expose_tracebacks=False,
            ident='bert4keras-blog', clear_untrusted_proxy_headers=False,
            asyncore_use_poll=True)
        self.listener.max_connections = max_connections
        self.limits = {'max_connections': max_connections, 'idle_seconds': idle_seconds,
                       'threads': threads}
        self._stop, self._stopped = threading.Event(), threading.Event()
        self._stopped.set()  # not serving yet

    @property
    def server_address(self):
        return self.listener.effective_host, int(self.listener.effective_port)

    def open_connections(self):
        return len(self.listener.active_channels)

    def serve_forever(self, poll_interval=0.25):
        self._stopped.clear()
        try:
            while not self._stop.is_set():
                # poll(), not select(): select() cannot watch descriptors past 1023.
                wasyncore.loop(timeout=poll_interval, map=self.sockets, use_poll=True, count=1)
        finally:
            self._stopped.set()

    def shutdown(self):
        """Stops ``serve_forever`` and waits until it has returned (called
        from another thread, as socketserver's)."""
        self._stop.set()
        self.listener.pull_trigger()
        self._stopped.wait()

    def server_close(self):
        """Closes the listening socket and every connection; a model call in
        progress is left to its (daemon) worker thread, never waited for."""
        self._stop.set()
        for channel in list(self.listener.active_channels.values()):
            channel.handle_close()
        self.listener.task_dispatcher.shutdown(cancel_pending=True, timeout=0)
        self.listener.close()


def make_server(runs_root, host='127.0.0.1', port=8000, quiet=False, **limits):
    """The page's server over ``runs_root`` (not yet serving); port 0 picks a
    free one (see ``server_address``). ``limits`` override SERVER_LIMITS."""
    unknown = set(limits) - set(SERVER_LIMITS)
    if unknown:
        raise TypeError('unknown server limits: %s' % ', '.join(sorted(unknown)))
    return PageServer(runs_root, host, port, quiet, **dict(SERVER_LIMITS, **limits))


def serve(runs_root, host='127.0.0.1', port=8000, warm_up=False, **limits):
    """Serves until Ctrl-C or SIGTERM; ``warm_up`` loads the trained models first."""
    server = make_server(runs_root, host, port, **limits)
    try:
        if warm_up:
            server.services.warm_up()
        if host not in LOCAL_HOSTS:
            print('note: listening on %s: anyone who can reach this machine can use the page '
                  '(it has no login)' % host)
        for name, model in server.services.status()['models'].items():
            print('%-7s %s' % (name, model['folder'] if model['ready'] else
                               'not trained yet (%s)' % model['train']))
        print('serving http://%s:%d/ (Ctrl-C stops; at most %d connections, idle ones closed '
              'after %d s)' % (server.server_address + (server.limits['max_connections'],
                                                      server.limits['idle_seconds'])),
              flush=True)
        server.serve_forever()
    finally:
        server.server_close()
