"""A local web page for the trained models: play xiangqi against post 7's
model on a board, solve a word problem with post 3's solver, generate a
title with post 6's mT5, and see every example's results and plots.

``bert4keras-blog serve [--runs runs/] [--host 127.0.0.1] [--port 8000]``
starts it. The stack is waitress (a pure-Python WSGI server that reads
each request whole before a fixed pool of worker threads sees it) and one
page of plain JavaScript: nothing to build.

Modules, one job each:
    services  the operations, each input checked; models loaded once and
              called one request at a time
    server    routes, JSON in and out, refusals as 4xx, bounded connections
    static/   index.html, app.js, app.css

Public API:
    make_server, serve (server); Services, RequestError (services)
"""
from bert4keras_blog.app.web.server import make_server, serve  # noqa: F401
from bert4keras_blog.app.web.services import RequestError, Services  # noqa: F401

__all__ = ['make_server', 'serve', 'Services', 'RequestError']
