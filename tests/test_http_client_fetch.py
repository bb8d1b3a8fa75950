"""The C fetch (csrc/http/client_fetch.c): which fetches take it, and what
it hands to Python, against upstream's client.

Under the switch a fetch of an http:// URL whose host is an IPv4 literal,
without the options upstream's run() treats specially, runs in C
(_core.http_client_fetch) instead of HTTPClientConnection.run().  The cases
of test_http_client_request.py and test_http_client_grammar.py compare its
results with upstream's; the ones here check that the path is really taken
(and not for the other fetches), and what is specific to it: the Context the
fetch's steps run in (seen by logging), the request timeout while the body
is read, a 1xx head handed to Python, queueing behind max_clients, and no
garbage cycles per fetch.
"""

import asyncio
import contextvars
import gc
import logging
import os

import pytest

from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

_core = pytest.importorskip("tornado_c._core")

REQUEST_ID = contextvars.ContextVar("request_id", default=None)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.name, record.getMessage(), REQUEST_ID.get()))


RESPONSES = {
    "/plain": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "/nope": b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "/bad": b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    "/continue": (b"HTTP/1.1 100 Continue\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "/early": (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
               b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew"),
}


async def _serve():
    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ")[1].decode().partition("?")[0]
            if path == "/stall":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                await writer.drain()
                await reader.read()  # until the client gives up and closes
            else:
                writer.write(RESPONSES[path])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def _outcome(resp):
    err = resp.error
    return (resp.code, resp.reason, list(resp.headers.get_all()), resp.body,
            None if err is None else (type(err).__name__, str(err)))


async def _scenarios():
    server, port = await _serve()
    base = "http://127.0.0.1:%d" % port
    cap = _Capture()
    log = logging.getLogger("tornado")
    level = log.level
    log.addHandler(cap)
    log.setLevel(logging.DEBUG)
    client = SimpleAsyncHTTPClient(force_instance=True)
    out = {}
    try:
        for name, path, kw in (("continue", "/continue", {}), ("early", "/early", {}),
                               ("stall", "/stall", dict(request_timeout=0.3))):
            try:
                out[name] = _outcome(await client.fetch(HTTPRequest(base + path, **kw),
                                                        raise_error=False))
            except Exception as e:
                out[name] = ("raised", type(e).__name__, str(e))
        # the malformed response's log line, in the Context fetch() ran in
        del cap.records[:]
        REQUEST_ID.set("r-1")
        try:
            await client.fetch(base + "/bad")
        except Exception as e:
            out["bad"] = ("raised", type(e).__name__, str(e))
        REQUEST_ID.set(None)
        out["bad-log"] = [r for r in cap.records if r[0].startswith("tornado")]
        # queued behind max_clients: every one completes, in order
        small = SimpleAsyncHTTPClient(force_instance=True, max_clients=2)
        try:
            got = await asyncio.gather(*(small.fetch(base + "/plain") for _ in range(7)))
            out["queued"] = [r.body for r in got]
        finally:
            small.close()
    finally:
        client.close()
        log.removeHandler(cap)
        log.setLevel(level)
        server.close()
        await server.wait_closed()
    return out


def _upstream_run(coro_fn):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(), 30))
    finally:
        loop.close()


def _switched_run(coro_fn):
    import tornado_c

    from conftest import new_loop

    before = tornado_c.active()
    tornado_c.install()
    loop = new_loop("tornado_c")
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(), 30))
    finally:
        loop.close()
        tornado_c.uninstall()
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


@pytest.fixture(scope="module")
def both():
    return _upstream_run(_scenarios), _switched_run(_scenarios)


@pytest.mark.parametrize("name", ["continue", "early", "stall", "bad", "bad-log", "queued"])
def test_same_as_upstream(both, name):
    up, sw = both
    assert sw[name] == up[name]


def test_scenarios_reach_their_paths(both):
    up, _ = both
    assert up["continue"][:2] == (200, "OK") and up["continue"][3] == b"ok"
    assert up["early"][0] == 201
    assert up["stall"] == ("raised", "HTTPTimeoutError", "Timeout during request")
    assert up["bad"][0] == "raised"
    # the log line carries the Context's value
    assert any("Malformed HTTP message" in msg and rid == "r-1"
               for _, msg, rid in up["bad-log"])
    assert up["queued"] == [b"hello"] * 7


def _with_client(body):
    """Run `await body(client, port)` under the switch with a fresh client
    and the canned server; its result."""

    async def go():
        server, port = await _serve()
        client = SimpleAsyncHTTPClient(force_instance=True)
        try:
            return await body(client, port)
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    return _switched_run(go)


def _which_path(url):
    """'c' if a fetch of `url` under the switch ran without
    HTTPClientConnection.run(), 'python' if run() was called."""
    from tornado_c.simple_httpclient import HTTPClientConnection

    calls = []
    orig = HTTPClientConnection.run

    def spy(self):
        calls.append(1)
        return orig(self)

    async def fetch(client, port):
        assert (await client.fetch(url % port)).body == b"hello"

    HTTPClientConnection.run = spy
    try:
        _with_client(fetch)
    finally:
        HTTPClientConnection.run = orig
    return "python" if calls else "c"


def test_ip_literal_takes_the_c_fetch():
    assert _which_path("http://127.0.0.1:%d/plain") == "c"
    assert _which_path("http://127.0.0.1:%d/plain?x=1") == "c"


def test_other_fetches_take_run():
    # a host name needs the resolver; userinfo, upper-case schemes and
    # fragments are left to urlsplit
    assert _which_path("http://localhost:%d/plain") == "python"
    assert _which_path("http://u:p@127.0.0.1:%d/plain") == "python"
    assert _which_path("HTTP://127.0.0.1:%d/plain") == "python"
    assert _which_path("http://127.0.0.1:%d/plain#frag") == "python"


def test_a_replaced_resolver_takes_run():
    from tornado import netutil

    orig = netutil.DefaultLoopResolver.resolve

    async def resolve(self, host, port, family=0):
        return await orig(self, host, port, family)

    netutil.DefaultLoopResolver.resolve = resolve
    try:
        assert _which_path("http://127.0.0.1:%d/plain") == "python"
    finally:
        netutil.DefaultLoopResolver.resolve = orig


def test_no_garbage_cycles_per_fetch():
    async def fetches(client, port):
        url = "http://127.0.0.1:%d/plain" % port
        for _ in range(10):
            await client.fetch(url)
        await asyncio.sleep(0.05)
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                await client.fetch(url)
            await asyncio.sleep(0.05)
            return gc.collect()
        finally:
            gc.enable()

    assert _with_client(fetches) == 0


def test_fetch_arguments_checked():
    with pytest.raises(TypeError):
        _core.http_client_fetch(None, {}, None)
    # not a tornado_c loop, not a dict: not for this path, nothing done
    assert _core.http_client_fetch(None, {}, None, None, "ua", True, False) is False
    assert _core.http_client_fetch(None, None, None, None, "ua", True, False) is False


def test_a_replaced_finish_is_called():
    """The C fetch builds the response itself only while finish() and what
    it calls are the ones it stands for; a spy on finish() sees the call."""
    from tornado_c.simple_httpclient import HTTPClientConnection

    calls = []
    orig = HTTPClientConnection.finish

    def spy(self):
        calls.append(self.code)
        return orig(self)

    async def fetch(client, port):
        return (await client.fetch("http://127.0.0.1:%d/plain" % port)).body

    HTTPClientConnection.finish = spy
    try:
        assert _with_client(fetch) == b"hello"
    finally:
        HTTPClientConnection.finish = orig
    assert calls == [200]


_EMFILE_SCRIPT = r'''
import asyncio, os, resource, sys

if sys.argv[1] == "switched":
    import tornado_c
    tornado_c.install()
from tornado.simple_httpclient import SimpleAsyncHTTPClient


async def main():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = "http://127.0.0.1:%d/" % server.sockets[0].getsockname()[1]
    client = SimpleAsyncHTTPClient(force_instance=True)
    print("before", (await client.fetch(url)).body)
    fillers = []
    try:
        while True:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        r = await client.fetch(url, raise_error=False)
        print("full", r.code, repr(r.error))
    except Exception as e:
        print("full raised", type(e).__name__, e.args)
    finally:
        for fd in fillers:
            os.close(fd)
    print("after", (await client.fetch(url)).body)
    client.close()
    server.close()


resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
asyncio.run(main())
'''


def test_no_socket_left_gives_upstreams_error():
    """socket() failing (no file descriptor left) in the C fetch: the
    OSError upstream's TCPClient gets from socket.socket(), and the next
    fetch works."""
    import subprocess
    import sys

    out = {}
    for mode in ("upstream", "switched"):
        env = dict(os.environ)
        env.pop("TORNADO_C_DISABLE", None)
        p = subprocess.run([sys.executable, "-c", _EMFILE_SCRIPT, mode], capture_output=True,
                           text=True, timeout=60, env=env)
        assert p.returncode == 0, p.stderr
        out[mode] = p.stdout
    assert "full raised OSError (24, 'Too many open files')" in out["upstream"]
    assert out["switched"] == out["upstream"]


def test_pooled_fetches_finish_in_c_and_leave_no_cycles():
    """The keep-alive pool's connection class over HTTPClientConnection: its
    fetches' finish() is done in C (its _on_end_request called in place of
    closing the stream), a replaced _on_end_request sends finish() back to
    Python, and a fetch leaves no garbage cycle."""
    from tornado_c import _client_pool
    from tornado_c import simple_httpclient as tc_sc
    from tornado.platform.asyncio import BaseAsyncIOLoop

    ends = []

    async def fetches(_client, port):
        client = _client_pool.KeepAliveAsyncHTTPClient(force_instance=True)
        try:
            url = "http://127.0.0.1:%d/plain" % port
            for _ in range(5):
                assert (await client.fetch(url)).body == b"hello"
            cls = client._connection_class()
            in_c = tc_sc._finish_in_c(cls, BaseAsyncIOLoop)
            await asyncio.sleep(0.05)
            gc.collect()
            gc.disable()
            try:
                for _ in range(30):
                    await client.fetch(url)
                await asyncio.sleep(0.05)
                cycles = gc.collect()
            finally:
                gc.enable()
            orig = _client_pool._KeepAlive._on_end_request

            def spy(self):
                ends.append(1)
                return orig(self)

            _client_pool._KeepAlive._on_end_request = spy
            try:
                spied_in_c = tc_sc._finish_in_c(cls, BaseAsyncIOLoop)
                assert (await client.fetch(url)).body == b"hello"
            finally:
                _client_pool._KeepAlive._on_end_request = orig
            return in_c, cycles, spied_in_c
        finally:
            client.close()

    assert _with_client(fetches) == (True, 0, False)
    assert ends == [1]
