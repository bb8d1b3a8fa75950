"""The connection's _HTTPRequestContext under the C server (csrc/http/context.c)
against upstream's HTTPServer: the same attributes, in the same order, with
the same values, for IPv4, IPv6 and Unix sockets, with and without
trusted_downstream / protocol; a patched __init__ is still what runs."""

import asyncio
import os
import socket
import tempfile

import pytest
import tornado.httpserver
import tornado.netutil
from tornado import web

import tornado_c.loop
from tornado_c import httpserver as chs

from test_http_server import SERVERS, no_configure  # noqa: F401 (fixture)


def _serve_one(server_cls, family, kwargs):
    """vars() of the context of one request's connection (the client's port
    masked), str(context), and request.remote_ip / protocol."""
    seen = []

    class H(web.RequestHandler):
        def get(self):
            ctx = self.request.connection.context
            items = []
            for k, v in vars(ctx).items():
                if k == "address" and isinstance(v, tuple):
                    v = (v[0], "port") + v[2:]
                items.append((k, type(v).__name__, v))
            seen.append((items, str(ctx) if family != socket.AF_INET else "ip",
                         self.request.remote_ip, self.request.protocol))
            self.write("ok")

    async def main():
        app = web.Application([("/", H)])
        srv = server_cls(app, **kwargs)
        if family == socket.AF_UNIX:
            d = tempfile.mkdtemp()
            path = os.path.join(d, "s")
            srv.add_sockets([tornado.netutil.bind_unix_socket(path)])
            r, w = await asyncio.open_unix_connection(path)
        else:
            host = "127.0.0.1" if family == socket.AF_INET else "::1"
            socks = tornado.netutil.bind_sockets(0, host, family=family)
            srv.add_sockets(socks)
            r, w = await asyncio.open_connection(host, socks[0].getsockname()[1])
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 9.9.9.9\r\n"
                b"X-Scheme: https\r\n\r\n")
        data = await r.read(1000)
        w.close()
        srv.stop()
        assert data.endswith(b"ok"), data
        return seen[0]

    loop = tornado_c.loop.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6, socket.AF_UNIX],
                         ids=["ipv4", "ipv6", "unix"])
@pytest.mark.parametrize("kwargs", [
    {},
    {"xheaders": True, "trusted_downstream": ["1.2.3.4", "5.6.7.8"]},
    {"protocol": "https", "xheaders": True},
], ids=["plain", "trusted", "protocol"])
def test_context_as_upstream(family, kwargs):
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6")
    before = chs._stats["c_connections"]
    got = _serve_one(SERVERS["c"], family, kwargs)
    assert chs._stats["c_connections"] == before + 1   # served in C
    want = _serve_one(SERVERS["upstream"], family, kwargs)
    assert got == want


def test_patched_context_init_runs(monkeypatch):
    cls = tornado.httpserver._HTTPRequestContext
    orig = cls.__init__
    calls = []

    def patched(self, stream, address, protocol, trusted_downstream=None):
        calls.append(type(stream).__name__)
        orig(self, stream, address, protocol, trusted_downstream)
        self.extra = 1

    monkeypatch.setattr(cls, "__init__", patched)
    items, _, _, _ = _serve_one(SERVERS["c"], socket.AF_INET, {})
    assert calls == ["IOStream"]
    assert items[-1] == ("extra", "int", 1)
