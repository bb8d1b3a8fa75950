"""Hello, world on Starlette under uvicorn, a peer for the ``hello`` scenario:
the same response body as hello.py.  The benchmarks run it as
``python hello_starlette.py --port=N``: one uvicorn process with its
defaults (uvloop and httptools when they are installed, as the bench
environment installs them), no access log.
"""

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("Hello, world")


app = Starlette(routes=[Route("/", hello)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--address", default="127.0.0.1")
    args = ap.parse_args()
    uvicorn.run(app, host=args.address, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
