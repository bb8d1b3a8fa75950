"""A legacy generator-based handler: ``@gen.coroutine`` yielding
``gen.sleep(0)``, then ``gen.multi`` of two small coroutines, then writing
the text.  Run unmodified by the benchmarks, like hello.py (under tornado_c
the decorator is the C runner when the ``web`` component is on).
"""

import asyncio

import tornado.web
from tornado import gen
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")


@gen.coroutine
def part(text):
    yield gen.sleep(0)
    return text


class GenHandler(tornado.web.RequestHandler):
    @gen.coroutine
    def get(self):
        yield gen.sleep(0)
        a, b = yield gen.multi([part("Hello, "), part("world")])
        self.write(a + b)


def make_app():
    return tornado.web.Application([(r"/", GenHandler)])


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
