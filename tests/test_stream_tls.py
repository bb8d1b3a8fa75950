"""TLS inside the C stream (csrc/stream/tls.c) for HTTPS client fetches.

Under the switch ``IOStream.start_tls(False, ...)`` -- what
``TCPClient.connect(..., ssl_options=...)`` calls for every https:// fetch --
gives ``tornado_c.iostream._SSLIOStream``: the C stream with the SSL
object's memory BIOs inside it, so the C response reader sees plaintext.
Every scenario below runs with upstream's client on asyncio's loop and with
tornado_c's, against the same threaded TLS server (test_http_client_behaviour's
raw-socket servers, plus routes of this file), and the fetches' fields,
errors and tornado's log records must be equal; the tests also check that the
C path was the one taken (not upstream's SSLIOStream) and that the cases
kept on upstream's way (a context whose sslobject_class is a subclass, the
module switch off) still work.
"""

import asyncio
import os
import socket
import ssl
import threading

import pytest

import tornado.iostream
from tornado import netutil
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from tornado.tcpclient import TCPClient

import tornado_c
from tornado_c import _core
from test_http_client_behaviour import (
    CERT,
    KEY,
    ROUTES,
    Servers,
    _Handler,
    _TCPServer,
    _response,
    _run,
    fetch,
)


def _notify(conn, req, state):
    """A close-delimited body, then the TLS close_notify, then the FIN."""
    conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"n" * int(req.query["n"]))
    conn.sock = conn.sock.unwrap()  # sends close_notify (and waits for none)


def _halves(conn, req, state):
    """A 1 MiB Content-Length body in two writes with a pause between."""
    body = bytes(range(256)) * 4096
    head = _response(200, "OK", [], b"")
    conn.send(head.replace(b"Content-Length: 0", b"Content-Length: %d" % len(body))
              + body[: len(body) // 2])
    import time

    time.sleep(0.05)
    conn.send(body[len(body) // 2:])


ROUTES.setdefault("/notify", _notify)
ROUTES.setdefault("/halves", _halves)


class TLSServers(Servers):
    """The behaviour test's servers, plus a TLS server that requires a client
    certificate (tornado's test certificate) and records the SNI names it
    was sent."""

    def __init__(self):
        super().__init__()
        self.state["sni"] = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERT, KEY)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(CERT)
        srv = _TCPServer(("127.0.0.1", 0), _Handler)
        self.add_server(srv, ctx)
        self.mtls_url = "https://127.0.0.1:%d" % srv.server_address[1]

        def sni(sslsock, name, context):
            with self.state["lock"]:
                self.state.setdefault("sni", []).append(name)

        self._servers[1].tls.sni_callback = sni


@pytest.fixture(scope="module")
def servers():
    s = TLSServers()
    yield s
    s.close()


def compare(scenario, servers, check, **client_kw):
    """upstream vs tornado_c (fields, errors, log records); returns the
    streams tornado_c's fetches ran on."""
    up, up_logs = _run("upstream", scenario, servers, **client_kw)
    check(up)
    with _StreamSpy() as spy:
        ours, our_logs = _run("tornado_c", scenario, servers, **client_kw)
    assert ours == up
    assert our_logs == up_logs
    return spy.streams


class _StreamSpy:
    """Records the stream of each HTTPS fetch and counts calls of upstream
    SSLIOStream's socket I/O (which the C path never makes)."""

    def __enter__(self):
        import tornado.simple_httpclient as sh

        self.streams = []
        self.upstream_io = 0
        self._sh = sh
        self._orig = sh._HTTPConnection._create_connection
        self._orig_read = tornado.iostream.SSLIOStream.read_from_fd
        spy = self

        def create(conn, stream):
            spy.streams.append(stream)
            return spy._orig(conn, stream)

        def read_from_fd(stream, buf):
            spy.upstream_io += 1
            return spy._orig_read(stream, buf)

        sh._HTTPConnection._create_connection = create
        tornado.iostream.SSLIOStream.read_from_fd = read_from_fd
        return self

    def __exit__(self, *exc):
        self._sh._HTTPConnection._create_connection = self._orig
        tornado.iostream.SSLIOStream.read_from_fd = self._orig_read

    def all_c(self):
        return self.streams and all(type(s).__name__ == "_SSLIOStream" for s in self.streams)


def _c_streams(streams):
    assert streams, "no fetch reached a connection"
    for s in streams:
        assert type(s).__module__ == "tornado_c.iostream" and type(s).__name__ == "_SSLIOStream"
        assert isinstance(s, _core.Stream) and isinstance(s, tornado.iostream.SSLIOStream)


def _insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- the path -------------------------------------------------------------------


def test_c_path_is_taken(servers, monkeypatch):
    """An https fetch under the switch runs on the C TLS stream: upstream
    SSLIOStream's read_from_fd is never called, and the response head and
    body are read by the C response reader (HTTPClientParser.read_head /
    read_body, which take the stream's plaintext as its consumer)."""
    import tornado_c.simple_httpclient as tsh

    calls = []

    class ParserSpy:
        def __init__(self, *args, **kwargs):
            self._p = _core.HTTPClientParser(*args, **kwargs)

        def read_head(self, stream, *args):
            calls.append(("read_head", type(stream).__name__))
            return self._p.read_head(stream, *args)

        def read_body(self, stream, *args):
            calls.append(("read_body", type(stream).__name__))
            return self._p.read_body(stream, *args)

        def __getattr__(self, name):
            return getattr(self._p, name)

    class CoreSpy:
        HTTPClientParser = ParserSpy

        def __getattr__(self, name):
            return getattr(_core, name)

    monkeypatch.setattr(tsh, "_core", CoreSpy())

    async def scenario(client, srv):
        return await fetch(client, srv.tls_url + "/big?n=70000", validate_cert=False)

    with _StreamSpy() as spy:
        out, logs = _run("tornado_c", scenario, servers)
    assert out["code"] == 200 and out["body"] == b"x" * 70000 and logs == []
    _c_streams(spy.streams)
    assert spy.upstream_io == 0
    assert calls == [("read_head", "_SSLIOStream"), ("read_body", "_SSLIOStream")]


def test_switch_off_gives_upstream_stream(servers, monkeypatch):
    import tornado_c.iostream as tci

    monkeypatch.setattr(tci, "_c_tls_enabled", False)

    async def scenario(client, srv):
        return await fetch(client, srv.tls_url + "/echo", validate_cert=False)

    with _StreamSpy() as spy:
        out, _ = _run("tornado_c", scenario, servers)
    assert out["code"] == 200
    assert [type(s) for s in spy.streams] == [tornado.iostream.SSLIOStream]
    assert spy.upstream_io > 0


class _MySSLObject(ssl.SSLObject):
    pass


def test_sslobject_subclass_keeps_upstream_path(servers):
    async def scenario(client, srv):
        ctx = _insecure()
        ctx.sslobject_class = _MySSLObject
        return await fetch(client, srv.tls_url + "/echo", ssl_options=ctx)

    with _StreamSpy() as spy:
        out, _ = _run("tornado_c", scenario, servers)
    assert out["code"] == 200
    assert [type(s) for s in spy.streams] == [tornado.iostream.SSLIOStream]


# -- behaviour equal to upstream --------------------------------------------------


def test_options_forms(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.tls_url + "/echo", validate_cert=False),
                await fetch(client, srv.tls_url + "/echo",
                            ssl_options={"cert_reqs": ssl.CERT_NONE}),
                await fetch(client, srv.tls_url + "/echo", ssl_options=_insecure()),
                await fetch(client, srv.tls_url + "/echo", method="POST", body=b"p" * 70000,
                            validate_cert=False)]

    def check(up):
        assert all(o["code"] == 200 for o in up)

    _c_streams(compare(scenario, servers, check))


def test_untrusted_certificate(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.tls_url + "/echo"),
                await fetch(client, srv.tls_url + "/echo", ssl_options=ssl.create_default_context()),
                await fetch(client, srv.tls_url + "/echo", raise_error=False)]

    def check(up):
        assert up[0]["raised"][0] == "SSLCertVerificationError"
        assert "self-signed certificate" in up[0]["raised"][1]
        assert up[2]["raised"][0] == "SSLCertVerificationError"

    compare(scenario, servers, check)


def test_hostname_mismatch(servers):
    async def scenario(client, srv):
        port = srv.tls_url.rsplit(":", 1)[1]
        return [await fetch(client, srv.tls_url + "/echo", ca_certs=CERT),
                await fetch(client, "https://localhost:%s/echo" % port, ca_certs=CERT)]

    def check(up):
        assert up[0]["raised"][0] == "SSLCertVerificationError"
        assert "IP address mismatch" in up[0]["raised"][1]
        assert "Hostname mismatch" in up[1]["raised"][1]

    compare(scenario, servers, check)


def test_verified_with_sni(servers):
    """ca_certs and the certificate's own name (resolved to the test
    server): verified, and the server was sent that name (SNI)."""

    async def scenario(client, srv):
        port = srv.tls_url.rsplit(":", 1)[1]
        resolver = netutil.OverrideResolver(
            resolver=netutil.DefaultLoopResolver(), mapping={"foo.example.com": "127.0.0.1"})
        c = SimpleAsyncHTTPClient(force_instance=True, resolver=resolver)
        try:
            out = await fetch(c, "https://foo.example.com:%s/echo" % port, ca_certs=CERT)
        finally:
            c.close()
        return out, srv.received("sni")

    def check(up):
        out, sni = up
        assert out["code"] == 200 and sni == ["foo.example.com"]

    _c_streams(compare(scenario, servers, check))


class _RawServer:
    """A thread accepting connections on a port of its own: reads what the
    client sends first (its ClientHello), answers `reply`, closes."""

    def __init__(self, reply, hold=0.0):
        self.hold = hold  # seconds to keep the connection open, silent
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.reply = reply
        self.url = "https://127.0.0.1:%d/" % self.lsock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            c.settimeout(2)
            try:
                c.recv(65536)  # the ClientHello, so that the close is a FIN
                if self.reply:
                    c.sendall(self.reply)
                if self.hold:
                    import time

                    time.sleep(self.hold)
            except OSError:
                pass
            c.close()

    def close(self):
        self.lsock.close()


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 400 Bad Request\r\n\r\n", b"\x15" * 7])
def test_handshake_failures(servers, reply):
    """The server is not TLS: it closes after the ClientHello (EOF in the
    handshake), or answers plain HTTP ("wrong version number"), or garbage."""
    raw = _RawServer(reply)

    async def scenario(client, srv):
        return await fetch(client, raw.url, validate_cert=False)

    def check(up):
        assert up["raised"][0] in ("SSLEOFError", "SSLError", "HTTPStreamClosedError",
                                   "ConnectionResetError"), up

    try:
        compare(scenario, servers, check)
    finally:
        raw.close()


def test_handshake_timeout(servers):
    """A peer that never answers the ClientHello: the connect timeout's
    message names the TLS phase (TCPClient.connect's), and the request
    timeout alone gives upstream's."""
    raw = _RawServer(b"", hold=3.0)

    async def scenario(client, srv):
        return [await fetch(client, raw.url, validate_cert=False, connect_timeout=0.4),
                await fetch(client, raw.url, validate_cert=False, request_timeout=0.4)]

    def check(up):
        assert up[0]["raised"][:2] == (
            "HTTPTimeoutError", "Timeout during TLS handshake with " + raw.url[8:-1])
        assert up[1]["raised"][0] == "HTTPTimeoutError"

    try:
        compare(scenario, servers, check)
    finally:
        raw.close()


def test_client_certificate(servers):
    async def scenario(client, srv):
        return await fetch(client, srv.mtls_url + "/echo", validate_cert=False,
                           client_cert=CERT, client_key=KEY)

    def check(up):
        assert up["code"] == 200

    _c_streams(compare(scenario, servers, check))


def test_client_certificate_missing(servers):
    """Without the certificate the server refuses once the client's side
    of the TLS 1.3 handshake is done: the fetch fails, with the server's
    alert or a reset depending on timing (upstream's as well: which one is
    a race, so only the failure is compared)."""

    async def scenario(client, srv):
        return await fetch(client, srv.mtls_url + "/echo", validate_cert=False,
                           request_timeout=5)

    for mode in ("upstream", "tornado_c"):
        out, _ = _run(mode, scenario, servers)
        assert out["raised"][0] in ("SSLError", "ConnectionResetError",
                                    "HTTPStreamClosedError"), (mode, out)


@pytest.mark.parametrize("kind", ["cl", "chunked", "head", "close"])
def test_server_closes_mid_body(servers, kind):
    async def scenario(client, srv):
        return await fetch(client, srv.tls_url + "/truncated?kind=" + kind, validate_cert=False)

    compare(scenario, servers, lambda up: None)


def test_early_close_and_reset(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.tls_url + "/early-close", validate_cert=False),
                await fetch(client, srv.tls_url + "/reset?after=head", validate_cert=False)]

    compare(scenario, servers, lambda up: None)


def test_close_notify_ends_close_delimited_body(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.tls_url + "/notify?n=70000", validate_cert=False),
                await fetch(client, srv.tls_url + "/big?n=5000&framing=close",
                            validate_cert=False)]

    def check(up):
        assert up[0]["body"] == b"n" * 70000 and up[1]["body"] == b"x" * 5000

    _c_streams(compare(scenario, servers, check))


@pytest.mark.parametrize("framing", ["cl", "chunked", "close"])
def test_large_body(servers, framing):
    n = 1 << 20

    async def scenario(client, srv):
        return await fetch(client, srv.tls_url + "/big?n=%d&framing=%s" % (n, framing),
                           validate_cert=False)

    def check(up):
        assert up["code"] == 200 and up["body"] == b"x" * n

    _c_streams(compare(scenario, servers, check))


def test_large_body_in_pieces_and_streaming(servers):
    pieces = []

    async def scenario(client, srv):
        del pieces[:]
        a = await fetch(client, srv.tls_url + "/halves", validate_cert=False)
        b = await fetch(client, srv.tls_url + "/halves", validate_cert=False,
                        streaming_callback=pieces.append)
        return a, b, b"".join(pieces)

    def check(up):
        assert up[0]["body"] == bytes(range(256)) * 4096 and up[2] == up[0]["body"]

    _c_streams(compare(scenario, servers, check))


def test_many_concurrent_fetches(servers):
    async def scenario(client, srv):
        urls = [srv.tls_url + ("/big?n=%d" % (i * 997) if i % 2 else "/echo?i=%d" % i)
                for i in range(40)]
        # generous timeouts: 40 connects at once overflow the test server's
        # listen backlog (5), and SYN retries take seconds on a slow run
        outs = await asyncio.gather(*(fetch(client, u, validate_cert=False, connect_timeout=90,
                                            request_timeout=120) for u in urls))
        for o in outs:  # the echo's headers carry nothing per-run but the host
            o.pop("headers", None)
        return outs

    def check(up):
        assert all(o.get("code") == 200 for o in up)

    streams = compare(scenario, servers, check, max_clients=40)
    _c_streams(streams)
    assert len(streams) == 40


# -- the stream itself -------------------------------------------------------------


def _stream_run(coro_fn):
    import tornado_c.loop as tcl

    tornado_c.uninstall()
    tornado_c.install()
    loop = tcl.EventLoop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(), 20))
    finally:
        loop.close()
        tornado_c.uninstall()


def test_stream_api_over_tls(servers):
    """TCPClient.connect(ssl_options=...) gives the C TLS stream; the
    IOStream API (write futures, read_until, read_bytes, read_into,
    read_until_close) works on plaintext; the socket attribute answers the
    TLS queries as an SSLSocket's."""
    port = int(servers.tls_url.rsplit(":", 1)[1])

    async def main():
        stream = await TCPClient().connect("localhost", port, ssl_options=_insecure())
        assert type(stream).__name__ == "_SSLIOStream"
        assert stream.socket.version().startswith("TLS")
        assert stream.socket.cipher() is not None
        assert stream.socket.getpeername()[1] == port
        assert stream.socket.server_hostname == "localhost"
        w = stream.write(b"GET /big?n=100000&framing=close HTTP/1.1\r\nHost: x\r\n\r\n")
        await w
        head = await stream.read_until(b"\r\n\r\n")
        first = await stream.read_bytes(10)
        buf = bytearray(1000)
        n = await stream.read_into(buf)
        rest = await stream.read_until_close()
        assert stream.closed() and stream.error is None
        return head, first + bytes(buf[:n]) + rest

    head, body = _stream_run(main)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b"x" * 100000


def test_start_tls_cancelled_closes(servers):
    """Cancelling start_tls's future closes the new stream (#3614), and its
    close callback runs."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)

    async def main():
        from tornado_c.iostream import IOStream

        s = IOStream(socket.socket())
        assert isinstance(s, _core.Stream)
        await s.connect(lsock.getsockname())
        conn, _ = lsock.accept()
        closed = asyncio.Event()
        s.set_close_callback(closed.set)
        fut = s.start_tls(False, _insecure())
        fut.cancel()
        await asyncio.wait_for(closed.wait(), 5)
        conn.settimeout(5)
        with conn, conn.makefile("rb") as f:
            return f.read()  # until the FIN

    try:
        data = _stream_run(main)
    finally:
        lsock.close()
    # as upstream's: the handshake would have begun in the next iteration,
    # the close came first (nothing sent, then the FIN)
    assert data == b""


def test_write_error_after_close_fails_futures(servers):
    """A write on a TLS stream the peer has closed: the write's future fails
    with StreamClosedError, as upstream's."""
    port = int(servers.tls_url.rsplit(":", 1)[1])

    async def main():
        stream = await TCPClient().connect("127.0.0.1", port, ssl_options=_insecure())
        await stream.write(b"GET /early-close HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.read_until_close()
        with pytest.raises(tornado.iostream.StreamClosedError):
            await stream.write(b"more")
        return True

    assert _run_both(main)


def _run_both(main):
    assert _stream_run(main)
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), 20))
    finally:
        loop.close()


def test_no_fd_leak(servers):
    """Fetches that succeed and fail leave no sockets open: the process's
    open sockets do not grow with the number of rounds."""
    import gc
    import time

    def fds():
        gc.collect()
        time.sleep(0.3)  # the server threads close their ends
        out = []
        for f in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink("/proc/self/fd/" + f)
            except OSError:
                continue
            if target.startswith("socket:"):  # loops' own files are not ours to count
                out.append(target)
        return sorted(out)

    async def scenario(client, srv):
        for _ in range(10):
            await fetch(client, srv.tls_url + "/echo", validate_cert=False)
            await fetch(client, srv.tls_url + "/echo")
            await fetch(client, srv.tls_url + "/truncated?kind=cl", validate_cert=False)
        return None

    _run("tornado_c", scenario, servers)
    before = fds()
    for _ in range(3):
        _run("tornado_c", scenario, servers)
    after = fds()
    assert len(after) <= len(before) + 2, (before, after)



def test_websocket_client_frames_over_c_tls(servers):
    """A wss:// websocket_connect client runs on the C TLS stream, and
    messages on both sides of the size where a frame's header and payload go
    out in one write (IOStream._write_frame, 16 KiB) arrive whole: on a TLS
    stream that pair must go through the encrypting write, not to the
    socket.  The server is upstream's SSLIOStream (ssl_options servers stay
    upstream's) echoing each message; _write_frame is also called directly
    on a C TLS stream with a 30 KB request."""
    import tornado.web
    import tornado.websocket
    from tornado.httpclient import HTTPRequest

    sizes = (10, 16 * 1024 - 1, 16 * 1024, 20000, 70000, 300000)
    port = int(servers.tls_url.rsplit(":", 1)[1])

    async def main():
        class Echo(tornado.websocket.WebSocketHandler):
            def on_message(self, m):
                self.write_message(m, binary=isinstance(m, bytes))

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(CERT, KEY)
        srv = tornado.web.Application([("/ws", Echo)]).listen(0, "127.0.0.1", ssl_options=ctx)
        ws_port = next(iter(srv._sockets.values())).getsockname()[1]
        try:
            conn = await tornado.websocket.websocket_connect(
                HTTPRequest("wss://127.0.0.1:%d/ws" % ws_port, ssl_options=_insecure()))
            assert type(conn.stream).__name__ == "_SSLIOStream"
            got = []
            for size in sizes:
                msg = os.urandom(size)
                await conn.write_message(msg, binary=True)
                got.append((await conn.read_message()) == msg)
            conn.close()
            stream = await TCPClient().connect("localhost", port, ssl_options=_insecure())
            assert type(stream).__name__ == "_SSLIOStream"
            req = (b"GET /big?n=10&framing=close HTTP/1.1\r\nHost: x\r\nX-Pad: "
                   + b"p" * 30000 + b"\r\n\r\n")
            await stream._write_frame(req[:7], req[7:])
            head = await stream.read_until(b"\r\n\r\n")
            return got, head, await stream.read_until_close()
        finally:
            srv.stop()

    got, head, rest = _stream_run(main)
    assert got == [True] * len(sizes)
    assert head.startswith(b"HTTP/1.1 200 OK") and rest == b"x" * 10
