"""HTTP client cost per request with and without keep-alive pooling.

benchmarks/http_client.py (the same server, the same fetch loops and the
same measures: callgrind (Ir(2N) - Ir(N)) / N by default, client CPU time
with --cpu) with these clients:
  upstream            upstream's SimpleAsyncHTTPClient on asyncio (a new
                      connection per request)
  upstream-keepalive  tornado_c._client_pool.KeepAliveAsyncHTTPClient on
                      asyncio, no switch
  tornado_c           python -m tornado_c, the default client
  tornado_c-keepalive python -m tornado_c, KeepAliveAsyncHTTPClient
  aiohttp-keepalive   aiohttp.ClientSession with its default pooling
The keep-alive clients keep up to --concurrency (8) idle connections, so
once each fetch loop has one, every request reuses a connection.

    python benchmarks/http_client_keepalive.py [--cases hello,64k] [--modes ...]
        [--n 200] [--cpu] [--json out.json]

Needs the users' build (not TORNADO_C_TEST=1) for figures worth quoting.
"""

import os
import sys

HERE = os.path.abspath(__file__)
sys.path.insert(0, os.path.dirname(HERE))

import http_client as base  # noqa: E402  (benchmarks/http_client.py)

MODES = ("upstream", "upstream-keepalive", "tornado_c", "tornado_c-keepalive",
         "aiohttp-keepalive")
_base_client = base.client
_base_client_cmd = base.client_cmd


def client(mode, port, path, n, concurrency, warmup):
    """Runs in the measured process: http_client.py's client, with the
    keep-alive client configured or aiohttp's pooling left on."""
    if mode == "aiohttp-keepalive":
        import aiohttp

        class PoolingConnector(aiohttp.TCPConnector):
            def __init__(self, **kw):
                kw["force_close"] = False
                super().__init__(**kw)

        aiohttp.TCPConnector = PoolingConnector
        mode = "aiohttp"
    elif mode.endswith("-keepalive"):
        from tornado.httpclient import AsyncHTTPClient

        AsyncHTTPClient.configure("tornado_c._client_pool.KeepAliveAsyncHTTPClient",
                                  max_idle_per_host=concurrency)
        mode = mode[:-len("-keepalive")]
    return _base_client(mode, port, path, n, concurrency, warmup)


def client_cmd(mode, port, case, n, concurrency, warmup):
    cmd = _base_client_cmd(mode, port, case, n, concurrency, warmup)
    return [HERE if a == base.HERE else a for a in cmd]


if __name__ == "__main__":
    base.MODES = MODES
    base.client = client
    base.client_cmd = client_cmd
    base.main()
