"""Hello, world on aiohttp, a peer for the ``hello`` scenario: the same
response body as hello.py, from an aiohttp application written the way its
documentation writes one.  The benchmarks run it as
``python hello_aiohttp.py --port=N`` (aiohttp's own server on the stdlib's
asyncio loop, one process, no access log).
"""

import argparse

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello, world")


def make_app():
    app = web.Application()
    app.router.add_get("/", hello)
    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--address", default="127.0.0.1")
    args = ap.parse_args()
    web.run_app(make_app(), host=args.address, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
