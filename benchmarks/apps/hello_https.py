"""Hello, world over HTTPS: the hello app served with Tornado's ssl_options,
written the way the Tornado documentation writes one.  The benchmarks run this
file unmodified, once as ``python hello_https.py --port N`` and once as
``python -m tornado_c hello_https.py --port N``.

The certificate is the self-signed one Tornado's own test suite uses
(tornado/test/test.crt and test.key, installed with tornado), unless
--certfile/--keyfile name others.
"""

import asyncio
import os
import ssl

import tornado.test
import tornado.web
from tornado.options import define, options, parse_command_line

_TEST_DIR = os.path.dirname(os.path.abspath(tornado.test.__file__))

define("port", default=8443, type=int, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")
define("certfile", default=os.path.join(_TEST_DIR, "test.crt"), help="PEM certificate")
define("keyfile", default=os.path.join(_TEST_DIR, "test.key"), help="PEM private key")


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


def make_app():
    return tornado.web.Application([(r"/", MainHandler)])


async def main():
    parse_command_line()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(options.certfile, options.keyfile)
    app = make_app()
    app.listen(options.port, address=options.address, ssl_options=ctx)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
