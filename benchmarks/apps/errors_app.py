"""Error answers: a plain Tornado 6 application whose /boom handler raises
(500: app_log.error with the traceback, the default error page) and whose
other paths are not routed (404: the default ErrorHandler).  Tornado's
loggers get a handler that drops the records, so that a measurement counts
making them, not writing them to a terminal (as an app that configures
logging would, without the cost of its output)."""

import asyncio
import logging

import tornado.web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")


class BoomHandler(tornado.web.RequestHandler):
    def get(self):
        raise ValueError("boom")


def make_app():
    log = logging.getLogger("tornado")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return tornado.web.Application([(r"/boom", BoomHandler)])


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
