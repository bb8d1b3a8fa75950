"""Hello, world with an ``async def get``: the way most current Tornado
code writes a handler.  Run unmodified by the benchmarks, like hello.py.
"""

import asyncio

import tornado.web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")


class MainHandler(tornado.web.RequestHandler):
    async def get(self):
        self.write("Hello, world")


def make_app():
    return tornado.web.Application([(r"/", MainHandler)])


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
