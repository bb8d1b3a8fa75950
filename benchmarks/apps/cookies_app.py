"""Signed cookies on every request: ``get_signed_cookie`` of the visit
counter the client sent and ``set_signed_cookie`` of the next value (HMAC
check and signature per request).  Run unmodified by the benchmarks, like
hello.py; wrk sends back the cookie it got (benchmarks/lua/cookies.lua).
"""

import asyncio

import tornado.web
from tornado.options import define, options, parse_command_line

define("port", default=8888, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")


class VisitHandler(tornado.web.RequestHandler):
    def get(self):
        raw = self.get_signed_cookie("visits")
        n = int(raw) + 1 if raw else 1
        self.set_signed_cookie("visits", str(n % 1000000))
        self.write("visit %d" % n if n < 2 else "welcome back")


def make_app():
    return tornado.web.Application([(r"/", VisitHandler)],
                                   cookie_secret="benchmark-cookie-secret")


async def main():
    parse_command_line()
    app = make_app()
    app.listen(options.port, address=options.address)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
