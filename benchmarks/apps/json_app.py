"""A small JSON response: ``RequestHandler.write(dict)`` serialises it with
``json.dumps`` and sets ``Content-Type: application/json; charset=UTF-8``.
Run unmodified by the benchmarks, like hello.py.
"""

import asyncio

import tornado.web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")


class JsonHandler(tornado.web.RequestHandler):
    def get(self):
        self.write({
            "message": "Hello, World!",
            "n": 1,
            "ok": True,
            "tags": ["tornado", "benchmark"],
            "ratio": 0.5,
        })


def make_app():
    return tornado.web.Application([(r"/", JsonHandler)])


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
