"""Error answers: a plain Tornado 6 application whose /boom handler raises
(500: app_log.error with the traceback, the default error page) and whose
other paths are not routed (404: the default ErrorHandler).  Tornado's
loggers get a handler that drops the records, so that a measurement counts
making them, not writing them to a terminal (as an app that configures
logging would, without the cost of its output).  Measured by
benchmarks/callgrind_hot.py (cases not_found and server_error), which
serves make_app() itself."""

import logging

import tornado.web


class BoomHandler(tornado.web.RequestHandler):
    def get(self):
        raise ValueError("boom")


def make_app():
    log = logging.getLogger("tornado")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return tornado.web.Application([(r"/boom", BoomHandler)])

