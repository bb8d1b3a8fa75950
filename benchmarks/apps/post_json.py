"""A POST echoing a JSON body: the handler parses ``self.request.body`` with
``json.loads`` and writes a dict back (``RequestHandler.write(dict)``).  Run
unmodified by the benchmarks, like hello.py; wrk sends the body
(benchmarks/lua/post_json.lua).
"""

import asyncio
import json

import tornado.web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")


class EchoHandler(tornado.web.RequestHandler):
    def post(self):
        data = json.loads(self.request.body)
        self.write({"received": data, "count": len(data)})


def make_app():
    return tornado.web.Application([(r"/", EchoHandler)])


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
