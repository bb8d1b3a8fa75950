"""The server side of TLS inside the C stream (csrc/stream/tls.c).

Under the switch a TCPServer / HTTPServer with ``ssl_options`` and
``IOStream.start_tls(True, ...)`` give ``tornado_c.iostream._SSLIOStream``
(the C stream with the SSL object's memory BIOs inside it); HTTPServer
serves it with the C HTTP connection, which reads the decrypted bytes.
Every scenario runs the server twice -- upstream's (asyncio's loop, the
switch off) and tornado_c's -- against the same blocking stdlib client in a
thread, and what the client and the handlers saw and what tornado logged
must be equal; the tests also check that tornado_c's run took the C path.
"""

import asyncio
import contextlib
import logging
import os
import re
import socket
import ssl
import threading
import time

import pytest

import tornado
import tornado.iostream
import tornado_c
from conftest import new_loop

_core = pytest.importorskip("tornado_c._core")

CERT_DIR = os.path.join(os.path.dirname(tornado.__file__), "test")
CERT = os.path.join(CERT_DIR, "test.crt")
KEY = os.path.join(CERT_DIR, "test.key")


def server_context(require_cert=False, alpn=None, trust_test_cert=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    if require_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if trust_test_cert:
            ctx.load_verify_locations(CERT)
        else:
            # the system's CAs (maybe none): tornado's test certificate is
            # not one of them
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def client_context(cert=False, alpn=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(CERT, KEY)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        msg = record.getMessage()
        # file numbers, ports and times differ between runs
        msg = re.sub(r"SSL Error on \d+ \('127\.0\.0\.1', \d+\)", "SSL Error on FD PEER", msg)
        msg = re.sub(r"\d+\.\d+ms", "Nms", msg)
        self.records.append((record.name, record.levelname, msg))


@contextlib.contextmanager
def _switched(mode):
    """The switch on ("tornado_c") or off ("upstream") and a new loop of
    that kind; the switch as it was afterwards."""
    before = tornado_c.active()
    tornado_c.uninstall()
    if mode != "upstream":
        tornado_c.install()
    loop = new_loop("asyncio" if mode == "upstream" else "tornado_c")
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        tornado_c.uninstall()
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


def run(mode, scenario):
    """scenario(loop) -> outcome, run on upstream's objects (asyncio's loop,
    switch off) or under the switch; returns (outcome, tornado's log
    records, C connections the C HTTP server took)."""
    from tornado_c import httpserver as tch

    cap = _Capture()
    logger = logging.getLogger("tornado")
    old_level = logger.level
    with _switched(mode) as loop:
        c_before = tch._stats["c_connections"]
        logger.setLevel(logging.INFO)
        logger.addHandler(cap)
        try:
            out = loop.run_until_complete(asyncio.wait_for(scenario(loop), 30))
            loop.run_until_complete(asyncio.sleep(0.05))
        finally:
            logger.removeHandler(cap)
            logger.setLevel(old_level)
    return out, cap.records, tch._stats["c_connections"] - c_before


def compare(scenario, sort_logs=False):
    """Both runs; returns tornado_c's outcome and its C connection count."""
    up, up_logs, _ = run("upstream", scenario)
    ours, our_logs, c_conns = run("tornado_c", scenario)
    assert ours == up
    if sort_logs:  # concurrent clients: the order is the scheduler's
        up_logs, our_logs = sorted(up_logs), sorted(our_logs)
    assert our_logs == up_logs
    return ours, c_conns


def _listen():
    from tornado import netutil

    socks = netutil.bind_sockets(0, "127.0.0.1")
    return socks, socks[0].getsockname()[1]


async def in_thread(loop, fn, *args):
    return await loop.run_in_executor(None, fn, *args)


def _recv_all(sock):
    chunks = []
    while True:
        try:
            d = sock.recv(65536)
        except ssl.SSLError as e:
            chunks.append(("SSLError", e.reason))
            break
        except OSError as e:
            chunks.append((type(e).__name__,))
            break
        if not d:
            break
        chunks.append(d)
    data = b"".join(c for c in chunks if isinstance(c, bytes))
    return data, [c for c in chunks if not isinstance(c, bytes)]


def _response_parts(data):
    """status line, body (the Date/Server/Etag lines differ by time)."""
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


def _https_client(port, requests, ctx=None, timeout=10):
    """Send each raw request on one TLS connection; read until close."""
    ctx = ctx or client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as s:
            for r in requests:
                s.sendall(r)
            data, errors = _recv_all(s)
    return data, errors


INFO_CLOSE = b"GET /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


# -- the app -------------------------------------------------------------------


def _app():
    import tornado.web
    import tornado.websocket

    class Info(tornado.web.RequestHandler):
        def get(self):
            stream = self.request.connection.stream
            cert = self.request.get_ssl_certificate()
            self.write({
                "protocol": self.request.protocol,
                "ssl_stream": isinstance(stream, tornado.iostream.SSLIOStream),
                "cert_subject": cert and cert.get("subject"),
                "cert_der": len(self.request.get_ssl_certificate(binary_form=True) or b""),
                "alpn": stream.socket.selected_alpn_protocol(),
                "version": stream.socket.version(),
                "server_side": stream.socket.server_side,
                "peer": stream.socket.getpeername()[0],
                "stream_type": type(stream).__name__,
            })

    class Big(tornado.web.RequestHandler):
        def get(self):
            n = int(self.get_argument("n"))
            self.write(bytes(range(256)) * (n // 256))

        def post(self):
            body = self.request.body
            self.write("%d %d" % (len(body), sum(body[::4096])))

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message):
            self.write_message(message, binary=isinstance(message, bytes))

    return tornado.web.Application([("/info", Info), ("/big", Big), ("/ws", Echo)])


def _http_scenario(client_fn, ctx_kwargs=None, server_kwargs=None):
    import tornado.httpserver

    async def scenario(loop):
        socks, port = _listen()
        server = tornado.httpserver.HTTPServer(
            _app(), ssl_options=server_context(**(ctx_kwargs or {})), **(server_kwargs or {}))
        server.add_sockets(socks)
        try:
            return await in_thread(loop, client_fn, port)
        finally:
            server.stop()
            await server.close_all_connections()

    return scenario


def _info(data):
    import json

    status, body = _response_parts(data)
    info = json.loads(body)
    stream_type = info.pop("stream_type")
    return status, info, stream_type


# -- tests ------------------------------------------------------------------------


def test_httpserver_handshake_ok_and_handler_sees():
    def client(port):
        data, errors = _https_client(
            port, [INFO_CLOSE],
            client_context(alpn=["http/1.1"]))
        return _info(data)[:2], errors

    up, _, _ = run("upstream", _http_scenario(client, {"alpn": ["http/1.1"]}))
    (status, info), errors = up
    assert status == b"HTTP/1.1 200 OK" and errors == []
    assert info["protocol"] == "https" and info["ssl_stream"] and info["alpn"] == "http/1.1"
    assert info["server_side"] is True and info["cert_subject"] is None
    ours, c_conns = compare(_http_scenario(client, {"alpn": ["http/1.1"]}))
    assert c_conns == 1  # the C HTTP server read the decrypted bytes


def test_httpserver_stream_is_the_c_tls_stream():
    def client(port):
        data, _ = _https_client(port, [INFO_CLOSE])
        return _info(data)[2]

    assert run("upstream", _http_scenario(client))[0] == "SSLIOStream"
    out, _, c_conns = run("tornado_c", _http_scenario(client))
    assert out == "_SSLIOStream" and c_conns == 1


def test_client_certificate_seen_by_handler():
    def client(port):
        data, errors = _https_client(
            port, [INFO_CLOSE],
            client_context(cert=True))
        return _info(data)[:2], errors

    ours, c_conns = compare(_http_scenario(client, {"require_cert": True}))
    (status, info), errors = ours
    assert status == b"HTTP/1.1 200 OK" and info["cert_subject"] and info["cert_der"] > 0
    assert c_conns == 1


def test_missing_client_certificate_when_required():
    def client(port):
        # nothing sent: with TLS 1.3 the client's handshake is over before
        # the server checks, and a request racing the server's alert would
        # make the outcome timing's (an alert, or a reset over unread data)
        try:
            return _https_client(port, [])
        except ssl.SSLError as e:
            return "handshake", e.reason

    ours, _ = compare(_http_scenario(client, {"require_cert": True}))
    assert ours == (b"", [("SSLError", "TLSV13_ALERT_CERTIFICATE_REQUIRED")]), ours


def test_untrusted_client_certificate():
    def client(port):
        try:
            return _https_client(port, [], client_context(cert=True))
        except ssl.SSLError as e:
            return "handshake", e.reason

    scenario = _http_scenario(client, {"require_cert": True, "trust_test_cert": False})
    ours, _ = compare(scenario)
    assert ours[0] == b"" and ours[1] and ours[1][0][0] == "SSLError", ours
    _, logs, _ = run("tornado_c", scenario)
    assert len(logs) == 1, logs
    assert logs[0][2].startswith("SSL Error on FD PEER: [SSL: CERTIFICATE_VERIFY_FAILED]"), logs


def test_plaintext_client_to_tls_port():
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
            return _recv_all(s)

    ours, _ = compare(_http_scenario(client))
    # upstream logs "SSL Error on <fd> <peer>: [SSL: HTTP_REQUEST] ..." and closes


def test_plaintext_logged_as_upstream():
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
            return _recv_all(s)

    _, logs, _ = run("tornado_c", _http_scenario(client))
    assert len(logs) == 1 and logs[0][:2] == ("tornado.general", "WARNING"), logs
    assert logs[0][2].startswith("SSL Error on FD PEER: [SSL: HTTP_REQUEST]"), logs


@pytest.mark.parametrize("what", ["nothing", "partial_hello", "reset"])
def test_client_closes_mid_handshake(what):
    def client(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if what == "partial_hello":
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
            time.sleep(0.05)
        elif what == "reset":
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            time.sleep(0.05)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        time.sleep(0.1)
        return what

    compare(_http_scenario(client))


def test_handshake_timeout():
    """A client that connects and says nothing: the idle (header) timeout
    closes it, the handshake counting in it as upstream's."""
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            t0 = time.monotonic()
            data = s.recv(100)
            return data, time.monotonic() - t0 < 5

    out, _ = compare(_http_scenario(client, server_kwargs={"idle_connection_timeout": 0.2}))
    assert out == (b"", True)


def test_big_bodies_and_keep_alive():
    big = bytes(range(256)) * 12288  # 3 MiB

    def client(port):
        reqs = [
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big,
            b"GET /big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (3 << 20),
            b"GET /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ]
        data, errors = _https_client(port, reqs)
        # three responses on the one connection
        parts = data.split(b"HTTP/1.1 200 OK\r\n")
        return len(parts) - 1, b"%d %d" % (len(big), sum(big[::4096])) in data, \
            data.count(bytes(range(256))), errors

    ours, c_conns = compare(_http_scenario(client))
    assert ours == (3, True, 12288, [])
    assert c_conns == 1


def test_websocket_over_wss():
    import tornado.httpserver
    import tornado.websocket

    async def scenario(loop):
        socks, port = _listen()
        server = tornado.httpserver.HTTPServer(_app(), ssl_options=server_context())
        server.add_sockets(socks)
        try:
            conn = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest("wss://127.0.0.1:%d/ws" % port,
                                               validate_cert=False))
            out = []
            for m in ["hello", b"\x00" * 200000, "x" * 70000]:
                await conn.write_message(m, binary=isinstance(m, bytes))
                r = await conn.read_message()
                out.append((type(r).__name__, len(r), r == m))
            conn.close()
            return out
        finally:
            server.stop()
            await server.close_all_connections()

    import tornado.httpclient

    ours, c_conns = compare(scenario)
    assert ours == [("str", 5, True), ("bytes", 200000, True), ("str", 70000, True)]
    assert c_conns == 1


# -- TCPServer and start_tls ------------------------------------------------------


def _tcp_scenario(client_fn, ssl_options, handle):
    from tornado.tcpserver import TCPServer

    class Server(TCPServer):
        async def handle_stream(self, stream, address):
            await handle(self, stream)

    async def scenario(loop):
        socks, port = _listen()
        server = Server(ssl_options=ssl_options)
        server.seen = []
        server.add_sockets(socks)
        try:
            client_out = await in_thread(loop, client_fn, port)
            await asyncio.sleep(0.05)
            return client_out, server.seen
        finally:
            server.stop()

    return scenario


async def _echo_handle(server, stream):
    seen = server.seen
    try:
        s = await stream.wait_for_handshake()
        seen.append(("handshake", s is stream,
                     isinstance(stream, tornado.iostream.SSLIOStream),
                     stream.socket.cipher() is not None,
                     stream.socket.getpeercert() is not None))
        while True:
            line = await stream.read_until(b"\n")
            await stream.write(line.upper())
    except tornado.iostream.StreamClosedError as e:
        seen.append(("closed", type(e.real_error).__name__ if e.real_error else None))
    except Exception as e:
        seen.append(("error", type(e).__name__))


def test_tcpserver_ssl_options_echo():
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_context(cert=True).wrap_socket(raw) as s:
                out = []
                for line in [b"abc\n", b"x" * 300000 + b"\n"]:
                    s.sendall(line)
                    got = b""
                    while not got.endswith(b"\n"):
                        got += s.recv(65536)
                    out.append(got == line.upper())
        return out

    classes = []

    async def handle(server, stream):
        classes.append(type(stream).__name__)
        await _echo_handle(server, stream)

    for dict_form in (False, True):
        opts = ({"certfile": CERT, "keyfile": KEY, "cert_reqs": ssl.CERT_OPTIONAL,
                 "ca_certs": CERT} if dict_form else server_context(require_cert=True))
        del classes[:]
        ours, _ = compare(_tcp_scenario(client, opts, handle))
        assert ours == ([True, True], [("handshake", True, True, True, True), ("closed", None)])
        assert classes == ["SSLIOStream", "_SSLIOStream"]


@pytest.mark.parametrize("what", ["plaintext", "close", "no_cert"])
def test_tcpserver_failed_handshake(what):
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            if what == "plaintext":
                raw.sendall(b"hello there\n")
                return _recv_all(raw)
            if what == "close":
                return "closed"
            try:
                with client_context().wrap_socket(raw) as s:
                    return _recv_all(s)  # nothing sent (see test_missing_client_certificate...)
            except ssl.SSLError as e:
                return "handshake", e.reason

    ours, _ = compare(_tcp_scenario(client, server_context(require_cert=True), _echo_handle))
    # wait_for_handshake raises the handshake's error
    expected = {"plaintext": "SSLError", "close": "SSLEOFError", "no_cert": "SSLError"}[what]
    assert ours[1] == [("error", expected)], ours


def test_start_tls_server_side():
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"STARTTLS\n")
            assert raw.recv(100) == b"OK\n"
            with client_context().wrap_socket(raw) as s:
                s.sendall(b"secret\n")
                got = b""
                while not got.endswith(b"\n"):
                    got += s.recv(100)
                return got

    classes = []

    async def handle(server, stream):
        line = await stream.read_until(b"\n")
        await stream.write(b"OK\n")
        tls = await stream.start_tls(True, ssl_options=server_context())
        classes.append(type(tls).__name__)
        server.seen.append((line, isinstance(tls, tornado.iostream.SSLIOStream),
                            tls.socket.server_side, stream.socket is None))
        line = await tls.read_until(b"\n")
        await tls.write(line.upper())
        tls.close()

    ours, _ = compare(_tcp_scenario(client, None, handle))
    assert ours == (b"SECRET\n", [(b"STARTTLS\n", True, True, True)])
    assert classes == ["SSLIOStream", "_SSLIOStream"]


def test_start_tls_server_side_failure():
    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"STARTTLS\n")
            assert raw.recv(100) == b"OK\n"
            raw.sendall(b"not a client hello\n")
            return _recv_all(raw)

    async def handle(server, stream):
        await stream.read_until(b"\n")
        await stream.write(b"OK\n")
        try:
            await stream.start_tls(True, ssl_options=server_context())
            server.seen.append("ok")
        except Exception as e:
            server.seen.append(type(e).__name__)

    ours, _ = compare(_tcp_scenario(client, None, handle))
    assert ours[1] == ["SSLError"] or ours[1] == ["StreamClosedError"], ours


def test_fallbacks_keep_upstream_stream(monkeypatch):
    """A context whose sslobject_class is not the stdlib's, or the C TLS
    switched off: upstream's SSLIOStream, served by upstream's path."""
    import tornado_c.iostream as tci

    class MyObj(ssl.SSLObject):
        pass

    def client(port):
        data, _ = _https_client(port, [INFO_CLOSE])
        return _info(data)

    ctx = server_context()
    ctx.sslobject_class = MyObj
    import tornado.httpserver

    async def scenario(loop):
        socks, port = _listen()
        server = tornado.httpserver.HTTPServer(_app(), ssl_options=ctx)
        server.add_sockets(socks)
        try:
            return await in_thread(loop, client, port)
        finally:
            server.stop()

    (status, info, stream_type), _, c_conns = run("tornado_c", scenario)
    assert status == b"HTTP/1.1 200 OK" and stream_type == "SSLIOStream" and c_conns == 0
    monkeypatch.setattr(tci, "_c_tls_enabled", False)
    (status, info, stream_type), _, c_conns = run("tornado_c", _http_scenario(client))
    assert status == b"HTTP/1.1 200 OK" and stream_type == "SSLIOStream" and c_conns == 0


def test_switch_patches_and_restores_handle_connection():
    import tornado.tcpserver

    before = tornado_c.active()
    tornado_c.uninstall()
    try:
        orig = tornado.tcpserver.TCPServer.__dict__["_handle_connection"]
        assert not hasattr(orig, "_tornado_c_upstream")
        tornado_c.install()
        patched = tornado.tcpserver.TCPServer.__dict__["_handle_connection"]
        assert patched._tornado_c_upstream is orig
        tornado_c.uninstall()
        assert tornado.tcpserver.TCPServer.__dict__["_handle_connection"] is orig
    finally:
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


def test_many_connections_threads():
    """Several clients at once, each with keep-alive requests."""
    def one(port, results, i):
        try:
            data, errors = _https_client(port, [
                b"GET /big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (1000 * (i + 1)),
                b"GET /big?n=256 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ])
            results[i] = (data.count(b"HTTP/1.1 200 OK"), errors)
        except Exception as e:  # pragma: no cover - reported in the result
            results[i] = repr(e)

    def client(port):
        results = [None] * 6
        ts = [threading.Thread(target=one, args=(port, results, i)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return results

    ours, c_conns = compare(_http_scenario(client), sort_logs=True)
    assert ours == [(2, [])] * 6 and c_conns == 6


def test_wait_for_handshake_sees_every_failed_handshake():
    """Bytes that arrive with the connection, in a poll that began with the
    handle_stream coroutine's first step ready: the handshake runs behind
    that step (as upstream's SSLIOStream handles its events behind ready
    callbacks), so wait_for_handshake is waiting when it fails.  Ten
    clients in a row, each sending plaintext at once."""
    def client(port):
        out = []
        for _ in range(10):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"plaintext\n")
                out.append(_recv_all(raw))
        return out

    ours, _ = compare(_tcp_scenario(client, server_context(), _echo_handle))
    assert ours[1] == [("error", "SSLError")] * 10, ours
