"""The C HTTP server (tornado_c.httpserver.HTTPServer) against upstream's.

Most tests run twice, on the tornado_c loop: once with upstream's
tornado.httpserver.HTTPServer (the reference) and once with ours, and check
the same client-visible bytes and log lines.  For ours they also check that
the connections were really served in C (_stats["c_connections"]).
"""

import asyncio
import gzip
import json
import logging
import os
import socket
import ssl
import sys
import time

import pytest
import tornado.httpserver
from tornado import web, websocket

import tornado_c
import tornado_c.loop
from tornado_c import httpserver as chs

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "http_corpus"))
import harness  # noqa: E402
from conftest import needs_test_api  # noqa: E402

UPSTREAM = tornado.httpserver.HTTPServer
SERVERS = {"upstream": UPSTREAM, "c": chs.HTTPServer}


@pytest.fixture(autouse=True)
def no_configure():
    # tests pick the server class explicitly; the switch must not redirect
    # upstream's class to ours (restored after)
    saved = (UPSTREAM._Configurable__impl_class, UPSTREAM._Configurable__impl_kwargs)
    UPSTREAM.configure(None)
    yield
    UPSTREAM._Configurable__impl_class, UPSTREAM._Configurable__impl_kwargs = saved


def run(coro):
    loop = tornado_c.loop.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def messages(self, name=None):
        return [r.getMessage() for r in self.records if name is None or r.name == name]


@pytest.fixture
def logs():
    cap = LogCapture()
    lg = logging.getLogger("tornado")
    saved = lg.level, lg.propagate
    lg.addHandler(cap)
    lg.setLevel(logging.DEBUG)
    lg.propagate = False
    yield cap
    lg.removeHandler(cap)
    lg.setLevel(saved[0])
    lg.propagate = saved[1]


class Echo(web.RequestHandler):
    def post(self):
        self.write(b"%s %d %s" % (self.request.version.encode(), len(self.request.body),
                                  self.request.body[:40]))

    put = post

    def get(self):
        self.write("hello " + self.request.uri)

    head = get


class Chunky(web.RequestHandler):
    async def get(self):
        self.write("part1-")
        await self.flush()
        self.write("part2")


class Slow(web.RequestHandler):
    async def get(self):
        await asyncio.sleep(0.05)
        self.write("slow")


def make_app(**settings):
    return web.Application(
        [(r"/echo.*", Echo), (r"/chunky", Chunky), (r"/slow", Slow), (r"/ws", WS),
         (r"/.*", Echo)], **settings)


class WS(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message("echo:" + message)


async def serve(server_class, app=None, **kw):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    server = server_class(app or make_app(), **kw)
    server.add_sockets([sock])
    return server, sock.getsockname()[1]


async def shutdown(server):
    server.stop()
    await server.close_all_connections()


async def exchange(port, data, wait=2.0, chunks=None):
    """Send data (or a list of (delay, bytes)), read until the server closes."""
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setblocking(False)
    await loop.sock_connect(s, ("127.0.0.1", port))
    try:
        for piece in (chunks or [(0, data)]):
            if piece[0]:
                await asyncio.sleep(piece[0])
            await loop.sock_sendall(s, piece[1])
        out = b""
        while True:
            try:
                c = await asyncio.wait_for(loop.sock_recv(s, 65536), wait)
            except (asyncio.TimeoutError, ConnectionResetError):
                break
            if not c:
                break
            out += c
        return out
    finally:
        s.close()


def responses(data):
    return [(item[1], item[2]) if item[0] == "resp" else item for item in harness.parse_responses(data)]


def both(fn):
    """Run fn(server_class) for both servers; check ours used the C path;
    return both results."""
    out = {}
    for name, cls in SERVERS.items():
        before = chs._stats["c_connections"]
        out[name] = run(fn(cls))
        if name == "c":
            assert chs._stats["c_connections"] > before, "C server not used"
    return out


# ------------------------------------------------------------- corpus

# harness.compare() predicts with the test build's HTTPRequestParser
@needs_test_api()
def test_differential_corpus_c_server():
    cases = [json.loads(line) for line in open(os.path.join(HERE, "http_corpus", "cases.jsonl"))]
    before = chs._stats["c_connections"]

    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
    try:
        results, _, unsat = harness.run_corpus(cases, server_class=chs.HTTPServer)
    finally:
        asyncio.set_event_loop_policy(saved)
    assert harness.compare(cases, results, unsat) == []
    assert chs._stats["c_connections"] - before == len(cases)


@needs_test_api()
def test_differential_mutants_c_server():
    cases = harness.mutate(
        [json.loads(line) for line in open(os.path.join(HERE, "http_corpus", "cases.jsonl"))], 1500, 7)
    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
    try:
        results, _, unsat = harness.run_corpus(cases, server_class=chs.HTTPServer)
    finally:
        asyncio.set_event_loop_policy(saved)
    assert harness.compare(cases, results, unsat) == []


# ---------------------------------------------------- keep-alive etc.

def test_pipelining_and_keep_alive():
    reqs = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    async def go(cls):
        server, port = await serve(cls)
        data = await exchange(port, reqs)
        await shutdown(server)
        return data

    r = both(go)
    assert _strip_dates(r["c"]) == _strip_dates(r["upstream"])
    assert [x[1] for x in responses(r["c"])] == [
        "hello /a", "HTTP/1.1 5 hello", "hello /b", "hello /c"]


def _strip_dates(data):
    import re
    return re.sub(rb"Date: [^\r]*\r\n", b"", data)


def test_http10_keep_alive():
    async def go(cls):
        server, port = await serve(cls)
        a = await exchange(port, b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", wait=0.3)
        b = await exchange(port, b"GET /c HTTP/1.0\r\n\r\n")
        await shutdown(server)
        return a, b

    r = both(go)
    for name in r:
        a, b = r[name]
        assert b"Connection: Keep-Alive\r\n" in a, name
        assert b"hello /c" in b
    assert _strip_dates(r["c"][0]) == _strip_dates(r["upstream"][0])
    assert _strip_dates(r["c"][1]) == _strip_dates(r["upstream"][1])


def test_100_continue_exact_bytes():
    async def go(cls):
        server, port = await serve(cls)
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.setblocking(False)
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                                   b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        first = await asyncio.wait_for(loop.sock_recv(s, 100), 2)
        await loop.sock_sendall(s, b"abc")
        rest = b""
        while True:
            c = await asyncio.wait_for(loop.sock_recv(s, 65536), 2)
            if not c:
                break
            rest += c
        s.close()
        await shutdown(server)
        return first, rest

    r = both(go)
    for name, (first, rest) in r.items():
        assert first == b"HTTP/1.1 100 (Continue)\r\n\r\n", name
        assert rest.endswith(b"HTTP/1.1 3 abc"), name


def test_chunked_request_and_response():
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"

    async def go(cls):
        server, port = await serve(cls)
        a = await exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                 b"Connection: close\r\n\r\n" + body)
        b = await exchange(port, b"GET /chunky HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await shutdown(server)
        return a, b

    r = both(go)
    assert b"HTTP/1.1 11 hello world" in r["c"][0]
    assert b"Transfer-Encoding: chunked\r\n" in r["c"][1]
    assert r["c"][1].endswith(b"6\r\npart1-\r\n5\r\npart2\r\n0\r\n\r\n")
    assert _strip_dates(r["c"][0]) == _strip_dates(r["upstream"][0])
    assert _strip_dates(r["c"][1]) == _strip_dates(r["upstream"][1])


def test_head_and_304():
    async def go(cls):
        server, port = await serve(cls)
        a = await exchange(port, b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await shutdown(server)
        return a

    r = both(go)
    assert _strip_dates(r["c"]) == _strip_dates(r["upstream"])
    assert b"Content-Length: 8\r\n" in r["c"] and r["c"].endswith(b"\r\n\r\n")


def test_idle_timeout_closes_quietly(logs):
    async def go(cls):
        server, port = await serve(cls, idle_connection_timeout=0.2)
        t = time.monotonic()
        data = await exchange(port, b"GET / HTTP/1.1\r\n", wait=3)
        dt = time.monotonic() - t
        await shutdown(server)
        return data, dt

    r = both(go)
    for name, (data, dt) in r.items():
        assert data == b"", name
        assert 0.15 < dt < 2, (name, dt)
    assert not [m for m in logs.messages() if "Timeout" in m]


def test_idle_timeout_between_requests():
    async def go(cls):
        server, port = await serve(cls, idle_connection_timeout=0.3)
        t = time.monotonic()
        data = await exchange(port, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n", wait=3)
        dt = time.monotonic() - t
        await shutdown(server)
        return data, dt

    r = both(go)
    for name, (data, dt) in r.items():
        assert b"hello /1" in data
        assert 0.25 < dt < 2, (name, dt)


def test_body_timeout_logged(logs):
    async def go(cls):
        server, port = await serve(cls, body_timeout=0.2)
        data = await exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", wait=3)
        await shutdown(server)
        return data

    r = both(go)
    assert r["c"] == r["upstream"] == b""
    msgs = [m for m in logs.messages("tornado.general") if m.startswith("Timeout reading body from")]
    assert msgs == ["Timeout reading body from 127.0.0.1"] * 2


def test_decompress_request():
    raw = b"x" * 5000
    gz = gzip.compress(raw)

    async def go(cls):
        server, port = await serve(cls, decompress_request=True)
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
        a = await exchange(port, head + b"Content-Length: %d\r\n\r\n" % len(gz) + gz)
        await shutdown(server)
        server, port = await serve(cls, decompress_request=True, max_body_size=1000)
        b = await exchange(port, head + b"Content-Length: %d\r\n\r\n" % len(gz) + gz)
        await shutdown(server)
        return a, b

    r = both(go)
    assert b"HTTP/1.1 5000 xxxx" in r["c"][0]
    # the limit applies after decompression
    assert r["c"][1] == r["upstream"][1] == b"HTTP/1.1 400 Bad Request\r\n\r\n"
    assert _strip_dates(r["c"][0]) == _strip_dates(r["upstream"][0])


def test_malformed_logged_and_others_served(logs):
    async def go(cls):
        server, port = await serve(cls)
        loop = asyncio.get_running_loop()
        good = socket.socket()
        good.setblocking(False)
        await loop.sock_connect(good, ("127.0.0.1", port))
        bad = await exchange(port, b"GET / HTTP/1.1\r\nbad header\r\n\r\n")
        garbage = await exchange(port, bytes(range(256)) * 40)
        await loop.sock_sendall(good, b"GET /still HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            c = await asyncio.wait_for(loop.sock_recv(good, 65536), 2)
            if not c:
                break
            out += c
        good.close()
        await shutdown(server)
        return bad, garbage, out

    r = both(go)
    for name, (bad, garbage, out) in r.items():
        assert bad == b"HTTP/1.1 400 Bad Request\r\n\r\n", name
        assert b"hello /still" in out
    assert r["c"][1] == r["upstream"][1]
    malformed = [m for m in logs.messages("tornado.general") if m.startswith("Malformed HTTP message from 127.0.0.1")]
    assert malformed == ["Malformed HTTP message from 127.0.0.1: no colon in header line"] * 2


def test_uncaught_exception_in_delegate_logged(logs):
    class Boom(tornado.httputil.HTTPMessageDelegate):
        def headers_received(self, start_line, headers):
            raise ZeroDivisionError("boom")

    class App(tornado.httputil.HTTPServerConnectionDelegate):
        def start_request(self, server_conn, request_conn):
            return Boom()

    async def go(cls):
        server, port = await serve(cls, App())
        data = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await shutdown(server)
        return data

    r = both(go)
    assert r["c"] == r["upstream"] == b""
    recs = [x for x in logs.records if x.name == "tornado.application" and x.getMessage() == "Uncaught exception"]
    assert len(recs) == 2 and all(x.exc_info[0] is ZeroDivisionError for x in recs)


import tornado.httputil  # noqa: E402


def test_async_response_and_client_close_callback():
    closed = []

    class Hold(web.RequestHandler):
        async def get(self):
            await asyncio.sleep(0.3)
            self.write("late")

        def on_connection_close(self):
            closed.append(True)

    async def go(cls):
        server, port = await serve(cls, web.Application([(r"/", Hold)]))
        await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", wait=0.05)
        await asyncio.sleep(0.4)
        await shutdown(server)

    both(go)
    assert closed == [True, True]


def test_detach_websocket_with_buffered_frames():
    async def go(cls):
        server, port = await serve(cls)
        ws = await websocket.websocket_connect("ws://127.0.0.1:%d/ws" % port)
        await ws.write_message("hi")
        a = await ws.read_message()
        ws.close()
        # frames sent with the upgrade request stay buffered across detach()
        frame = b"\x81\x82\x00\x00\x00\x00ok"  # masked text "ok", zero mask
        data = await exchange(port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                    b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n\r\n" + frame,
                              wait=0.5)
        await shutdown(server)
        return a, data

    r = both(go)
    for name, (a, data) in r.items():
        assert a == "echo:hi"
        assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), name
        assert data.endswith(b"\x81\x07echo:ok"), name


def test_content_length_enforced_on_output(logs):
    class TooMuch(web.RequestHandler):
        def get(self):
            self.set_header("Content-Length", "2")
            self.write("abcd")

    async def go(cls):
        server, port = await serve(cls, web.Application([(r"/", TooMuch)]))
        data = await exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await shutdown(server)
        return data

    r = both(go)
    assert _strip_dates(r["c"]) == _strip_dates(r["upstream"])


# ------------------------------------------------ switch and fallbacks

def test_switch_configures_and_restores(clean_switch):
    tornado_c.uninstall()
    UPSTREAM.configure(None)
    assert UPSTREAM.configured_class() is UPSTREAM
    tornado_c.install()
    if "http" in tornado_c.active():
        assert UPSTREAM.configured_class() is chs.HTTPServer
        assert type(UPSTREAM(make_app())) is chs.HTTPServer
    tornado_c.uninstall()
    assert UPSTREAM.configured_class() is UPSTREAM


def test_fallback_on_asyncio_loop():
    async def go():
        server, port = await serve(chs.HTTPServer)
        data = await exchange(port, b"GET /py HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await shutdown(server)
        return data

    before = dict(chs._stats)
    loop = asyncio.new_event_loop()  # policy default: not a tornado_c loop
    try:
        if isinstance(loop, tornado_c._core.Loop):
            pytest.skip("global policy is tornado_c")
        data = loop.run_until_complete(go())
    finally:
        loop.close()
    assert b"hello /py" in data
    assert chs._stats["python_connections"] == before["python_connections"] + 1
    assert chs._stats["c_connections"] == before["c_connections"]


def test_ssl_served_in_c():
    """ssl_options: TLS in the C stream, the C connection on it (also
    without the switch, as the plain server)."""
    import tornado.test

    certdir = os.path.dirname(tornado.test.__file__)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(certdir, "test.crt"), os.path.join(certdir, "test.key"))

    async def go():
        server, port = await serve(chs.HTTPServer, ssl_options=ctx)
        cctx = ssl.create_default_context()
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE

        def client():
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with cctx.wrap_socket(raw) as s:
                    s.sendall(b"GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    out = b""
                    while True:
                        c = s.recv(65536)
                        if not c:
                            return out
                        out += c

        data = await asyncio.get_running_loop().run_in_executor(None, client)
        await shutdown(server)
        return data

    before = dict(chs._stats)
    data = run(go())
    assert b"hello /tls" in data
    assert chs._stats["c_connections"] == before["c_connections"] + 1
    assert chs._stats["python_connections"] == before["python_connections"]


def test_handle_stream_override_falls_back():
    seen = []

    class Sub(chs.HTTPServer):
        def handle_stream(self, stream, address):
            seen.append(type(stream).__name__)
            return super().handle_stream(stream, address)

    async def go():
        server, port = await serve(Sub)
        data = await exchange(port, b"GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await shutdown(server)
        return data

    assert b"hello /sub" in run(go())
    assert seen == ["IOStream"]


UPSTREAM_PROBE = r"""
import atexit, runpy, sys
import tornado_c
tornado_c.install()
from tornado_c import httpserver
atexit.register(lambda: print("STATS", httpserver._stats["c_connections"],
                              httpserver._stats["python_connections"]))
sys.argv = ["runtests", sys.argv[1]]
runpy.run_module("tornado.test.runtests", run_name="__main__")
"""


@pytest.mark.parametrize("module", ["tornado.test.httpserver_test", "tornado.test.web_test"])
def test_upstream_suites_use_c_server(module):
    from conftest import run_python

    p = run_python("-c", UPSTREAM_PROBE, module, cwd="/tmp", timeout=300)
    line = [x for x in p.stdout.splitlines() if x.startswith("STATS")]
    assert line, p.stdout + p.stderr[-3000:]
    c, py = map(int, line[0].split()[1:])
    assert p.returncode == 0, p.stderr[-5000:]
    assert c >= 50, (c, py)


def test_half_close_after_requests():
    # the client sends two requests and shuts down its side at once
    reqs = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"

    async def go(cls):
        server, port = await serve(cls)
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.setblocking(False)
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, reqs)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                c = await asyncio.wait_for(loop.sock_recv(s, 65536), 1)
            except (asyncio.TimeoutError, ConnectionResetError):
                break
            if not c:
                break
            out += c
        s.close()
        await shutdown(server)
        return out

    r = both(go)
    assert [x[1] for x in responses(r["c"])] == [x[1] for x in responses(r["upstream"])]


def test_connection_outlives_dropped_server():
    # upstream's connections go on after stop() even when nothing keeps the
    # server object; so do ours (they hold themselves while serving)
    import gc

    async def go(cls):
        server, port = await serve(cls)
        loop = asyncio.get_running_loop()
        s = socket.socket()
        s.setblocking(False)
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(loop.sock_recv(s, 65536), 2)
        server.stop()
        del server
        gc.collect()
        await loop.sock_sendall(s, b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            c = await asyncio.wait_for(loop.sock_recv(s, 65536), 2)
            if not c:
                break
            out += c
        s.close()
        return first, out

    r = both(go)
    for name, (first, out) in r.items():
        assert b"hello /a" in first and b"hello /b" in out, name


def test_negative_max_body_size_refuses_every_content_length(logs):
    # upstream compares lengths with the negative int: Content-Length: 0 is
    # "too long" too, while an empty chunked body passes (and a negative
    # set_max_body_size() is accepted); the C parser keeps the sign
    async def go(cls):
        server, port = await serve(cls, max_body_size=-1)
        out = []
        for req in (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"0\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"1\r\na\r\n0\r\n\r\n",
                    b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
            out.append(responses(await exchange(port, req, wait=1.0)))
        await shutdown(server)
        return out

    r = both(go)
    assert r["c"] == r["upstream"]
    assert r["c"][0] == [("400",)] and r["c"][2][0][0] == 200 and r["c"][4][0][0] == 200


def test_max_buffer_size_is_the_default_body_limit(logs):
    async def go(cls):
        server, port = await serve(cls, max_buffer_size=1000)
        a = await exchange(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"
                           + b"x" * 2000)
        server2, port2 = await serve(cls, max_buffer_size=1000, max_body_size=0)
        b = await exchange(port2, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        await shutdown(server)
        await shutdown(server2)
        return a, b

    r = both(go)
    assert r["c"] == r["upstream"] == (b"HTTP/1.1 400 Bad Request\r\n\r\n",) * 2
    assert [m for m in logs.messages("tornado.general") if "Content-Length too long" in m]
