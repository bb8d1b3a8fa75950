"""TLS on the loops' stream transports (ssl= on connections and servers,
start_tls, timeouts, failures): every behavioural test runs on the stdlib
asyncio loop and on the tornado_c loop; a difference is a bug.

Certificates: tornado's own test certificate (self-signed, for
foo.example.com), from the installed tornado package."""

import asyncio
import os
import socket
import ssl
import sys
import tempfile
import threading

import pytest
import tornado.test

from recorder import Recorder as _Recorder
from test_loop_tcp import loop, run  # noqa: F401  (the both-loops fixture)

CERT_DIR = os.path.dirname(tornado.test.__file__)
CERT = os.path.join(CERT_DIR, "test.crt")
KEY = os.path.join(CERT_DIR, "test.key")
HOST = "foo.example.com"


def server_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    return ctx


def client_ctx():
    """Verifies the server against the test certificate."""
    return ssl.create_default_context(cafile=CERT)


def insecure_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Recorder(_Recorder):
    """The shared recorder, with pause/resume_writing recorded."""

    def __init__(self, loop, echo=False):
        super().__init__(loop, echo=echo, flow=True)


async def tls_echo_server(loop, **kw):
    protos = []

    def make():
        p = Recorder(loop, echo=True)
        protos.append(p)
        return p

    server = await loop.create_server(make, "127.0.0.1", 0, ssl=server_ctx(), **kw)
    return server, server.sockets[0].getsockname()[1], protos


async def raw_server(loop, on_conn):
    """A plain TCP listener in a thread-free form: on_conn(sock) is called
    from a reader callback for each accepted socket."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(5)
    lsock.setblocking(False)
    conns = []

    def accept():
        try:
            c, _ = lsock.accept()
        except BlockingIOError:
            return
        conns.append(c)
        on_conn(c)

    loop.add_reader(lsock.fileno(), accept)

    def close():
        loop.remove_reader(lsock.fileno())
        lsock.close()
        for c in conns:
            c.close()

    return lsock.getsockname()[1], close


# ----------------------------------------------------------------- echo


def test_tls_echo_and_extra_info(loop):
    async def main():
        server, port, protos = await tls_echo_server(loop)
        cctx = client_ctx()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port, ssl=cctx,
                                              server_hostname=HOST)
        assert cl.events == ["made"]
        assert tr.get_protocol() is cl
        obj = tr.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        assert obj.server_hostname == HOST
        assert tr.get_extra_info("sslcontext") is cctx
        cert = tr.get_extra_info("peercert")
        assert dict(x[0] for x in cert["subject"])["commonName"] == HOST
        cipher = tr.get_extra_info("cipher")
        assert isinstance(cipher, tuple) and len(cipher) == 3
        assert tr.get_extra_info("compression") is None
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        assert tr.get_extra_info("socket").family == socket.AF_INET
        assert tr.get_extra_info("nonexistent", "dflt") == "dflt"
        payload = os.urandom(300000)
        tr.write(payload[:1000])
        tr.writelines([payload[1000:5000], payload[5000:]])
        await cl.wait_bytes(len(payload))
        assert bytes(cl.data) == payload
        await protos[0].made
        assert protos[0].transport.get_extra_info("peercert") is None  # no client cert
        assert protos[0].transport.get_extra_info("ssl_object").server_side
        tr.close()
        assert tr.is_closing()
        assert await cl.lost is None
        assert await protos[0].lost is None
        server.close()
        await server.wait_closed()
        return cl.events, protos[0].events

    client_events, server_events = run(loop, main())
    # close(): close_notify both ways, so both sides see eof_received
    assert client_events == ["made", "data", "eof", ("lost", None)]
    assert server_events == ["made", "data", "eof", ("lost", None)]
    assert loop.errors == []


def test_tls_streams_and_start_tls(loop):
    async def handle(reader, writer):
        line = await reader.readline()
        assert line == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(server_ctx())
        assert writer.get_extra_info("ssl_object") is not None
        data = await reader.read(5)
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(client_ctx(), server_hostname=HOST)
        writer.write(b"hello")
        assert await reader.read() == b"olleh"
        writer.close()
        server.close()
        await server.wait_closed()

        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0,
                                            ssl=server_ctx())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx(),
                                                       server_hostname=HOST)
        assert await reader.read() == b""
        writer.close()
        server.close()
        await server.wait_closed()

    if sys.version_info < (3, 11):
        pytest.skip("StreamWriter.start_tls is 3.11+")
    run(loop, main())
    assert loop.errors == []


def test_loop_start_tls_protocols(loop):
    class Upgrading(Recorder):
        def data_received(self, data):
            if data == b"STARTTLS":
                loop_ = asyncio.get_running_loop()
                self.task = loop_.create_task(self.upgrade())
                return
            super().data_received(data)

        async def upgrade(self):
            loop_ = asyncio.get_running_loop()
            self.transport = await loop_.start_tls(self.transport, self, server_ctx(),
                                                   server_side=True)
            self.upgraded = True
            self.transport.write(b"ready")

    async def main():
        protos = []

        def make():
            p = Upgrading(loop)
            protos.append(p)
            return p

        server = await loop.create_server(make, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"STARTTLS")
        await asyncio.sleep(0.05)
        tls_tr = await loop.start_tls(tr, cl, client_ctx(), server_hostname=HOST)
        assert tls_tr is not tr
        assert tls_tr.get_extra_info("ssl_object") is not None
        assert tls_tr.get_protocol() is cl
        tls_tr.write(b"secret")
        await cl.wait_bytes(5)
        await protos[0].wait_bytes(6)
        assert bytes(cl.data) == b"ready"
        assert bytes(protos[0].data) == b"secret"
        assert protos[0].transport.get_extra_info("ssl_object").server_side
        assert protos[0].upgraded
        with pytest.raises(TypeError, match="sslcontext is expected"):
            await loop.start_tls(tls_tr, cl, "not a context")
        tls_tr.close()
        await cl.lost
        await protos[0].lost
        server.close()
        await server.wait_closed()
        return cl.events, protos[0].events

    client_events, server_events = run(loop, main())
    assert client_events == ["made", "data", "eof", ("lost", None)]
    assert server_events == ["made", "data", "eof", ("lost", None)]
    assert loop.errors == []


def test_unix_tls(loop):
    async def main():
        path = os.path.join(tempfile.mkdtemp(), "tls.sock")
        protos = []

        def make():
            p = Recorder(loop, echo=True)
            protos.append(p)
            return p

        server = await loop.create_unix_server(make, path, ssl=server_ctx())
        tr, cl = await loop.create_unix_connection(lambda: Recorder(loop), path, ssl=client_ctx(),
                                                   server_hostname=HOST)
        assert tr.get_extra_info("peername") == path
        tr.write(b"over unix")
        await cl.wait_bytes(9)
        tr.close()
        await cl.lost
        server.close()
        await server.wait_closed()
        with pytest.raises(ValueError, match="you have to pass server_hostname"):
            await loop.create_unix_connection(asyncio.Protocol, path, ssl=client_ctx())
        return bytes(cl.data)

    assert run(loop, main()) == b"over unix"
    assert loop.errors == []


def test_connect_accepted_socket_and_sock_tls(loop):
    async def main():
        a, b = socket.socketpair()
        srv_task = loop.create_task(loop.connect_accepted_socket(
            lambda: Recorder(loop, echo=True), a, ssl=server_ctx()))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), sock=b, ssl=client_ctx(),
                                              server_hostname=HOST)
        str_, sp = await srv_task
        assert str_.get_extra_info("ssl_object").server_side
        tr.write(b"pair")
        await cl.wait_bytes(4)
        tr.close()
        await cl.lost
        await sp.lost
        return bytes(cl.data)

    assert run(loop, main()) == b"pair"
    assert loop.errors == []


# ---------------------------------------------------------- argument checks


def test_tls_argument_errors(loop):
    async def main():
        P = asyncio.Protocol
        cases = [
            (loop.create_connection(P, "127.0.0.1", 1, server_hostname="x"),
             ValueError, "server_hostname is only meaningful with ssl"),
            (loop.create_connection(P, port=1, ssl=True),
             ValueError, "You must set server_hostname when using ssl without a host"),
            (loop.create_connection(P, "127.0.0.1", 1, ssl_handshake_timeout=1),
             ValueError, "ssl_handshake_timeout is only meaningful with ssl"),
            (loop.create_server(P, "127.0.0.1", 0, ssl=True),
             TypeError, "ssl argument must be an SSLContext or None"),
            (loop.create_server(P, "127.0.0.1", 0, ssl_handshake_timeout=1),
             ValueError, "ssl_handshake_timeout is only meaningful with ssl"),
            (loop.create_unix_server(P, "/nonexistent/x", ssl=True),
             TypeError, "ssl argument must be an SSLContext or None"),
            (loop.create_unix_connection(P, "/nonexistent/x", server_hostname="x"),
             ValueError, "server_hostname is only meaningful with ssl"),
            (loop.connect_accepted_socket(P, socket.socket(), ssl_handshake_timeout=1),
             ValueError, "ssl_handshake_timeout is only meaningful with ssl"),
        ]
        if sys.version_info >= (3, 11):
            cases += [
                (loop.create_connection(P, "127.0.0.1", 1, ssl_shutdown_timeout=1),
                 ValueError, "ssl_shutdown_timeout is only meaningful with ssl"),
                (loop.create_server(P, "127.0.0.1", 0, ssl_shutdown_timeout=1),
                 ValueError, "ssl_shutdown_timeout is only meaningful with ssl"),
            ]
        for coro, exc_type, message in cases:
            with pytest.raises(exc_type) as ei:
                await coro
            assert str(ei.value) == message
        ctx = ssl.create_default_context()
        with socket.socket() as s:
            wrapped = ctx.wrap_socket(s, do_handshake_on_connect=False, server_hostname="x")
            with pytest.raises(TypeError, match="Socket cannot be of type SSLSocket"):
                await loop.create_connection(P, sock=wrapped, ssl=ctx, server_hostname="x")
            wrapped.close()

        # a non-positive timeout is refused once the connection is made
        server, port, _ = await tls_echo_server(loop)
        with pytest.raises(ValueError) as ei:
            await loop.create_connection(P, "127.0.0.1", port, ssl=client_ctx(),
                                         server_hostname=HOST, ssl_handshake_timeout=0)
        assert str(ei.value) == "ssl_handshake_timeout should be a positive number, got 0"
        # (not wait_closed(): asyncio leaves that connected socket to the
        # garbage collector, so on 3.12+ its server would wait for it)
        server.close()

    run(loop, main())


# ----------------------------------------------------------- handshake errors


def test_certificate_verify_failed(loop):
    async def main():
        server, port, protos = await tls_echo_server(loop)
        with pytest.raises(ssl.SSLCertVerificationError) as ei:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port,
                                         ssl=ssl.create_default_context(),
                                         server_hostname=HOST)
        assert "self-signed certificate" in str(ei.value) or "self signed" in str(ei.value)
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        return [p.events for p in protos]

    # the server side saw the failed handshake: no protocol call
    assert run(loop, main()) == [[]]
    assert loop.errors == []


def test_hostname_mismatch_and_default_server_hostname(loop):
    async def main():
        server, port, _ = await tls_echo_server(loop)
        with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname mismatch"):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx(),
                                         server_hostname="wrong.example.com")
        # server_hostname defaults to the host
        with pytest.raises(ssl.SSLCertVerificationError, match="[Hh]ostname mismatch"):
            await loop.create_connection(asyncio.Protocol, "localhost", port, ssl=client_ctx(),
                                         family=socket.AF_INET)
        # ssl=True: the default context (verification on)
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=True,
                                         server_hostname=HOST)
        # server_hostname="" skips the hostname check only
        tr, pr = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port,
                                              ssl=insecure_ctx(), server_hostname="")
        assert tr.get_extra_info("ssl_object").server_hostname is None
        tr.close()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_handshake_timeout(loop):
    async def main():
        # the server accepts and never answers
        port, close = await raw_server(loop, lambda c: None)
        t0 = loop.time()
        with pytest.raises(ConnectionAbortedError) as ei:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx(),
                                         server_hostname=HOST, ssl_handshake_timeout=0.2)
        assert 0.15 <= loop.time() - t0 < 5
        assert str(ei.value) == ("SSL handshake is taking longer than 0.2 seconds: "
                                 "aborting the connection")
        close()

        # the TLS server gives up on a client that never starts the handshake
        server, port, protos = await tls_echo_server(loop, ssl_handshake_timeout=0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t0 = loop.time()
        assert await reader.read() == b""
        assert 0.15 <= loop.time() - t0 < 5
        writer.close()
        server.close()
        await server.wait_closed()
        return [p.events for p in protos]

    assert run(loop, main()) == [[]]
    assert loop.errors == []


def test_handshake_eof_and_garbage(loop):
    async def main():
        port, close = await raw_server(loop, lambda c: c.close())
        with pytest.raises(ConnectionResetError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx(),
                                         server_hostname=HOST)
        close()

        def garbage(c):
            c.send(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        port, close = await raw_server(loop, garbage)
        with pytest.raises(ssl.SSLError) as ei:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx(),
                                         server_hostname=HOST)
        close()
        return type(ei.value).__name__

    assert run(loop, main()) == "SSLError"
    assert loop.errors == []


def test_handshake_failure_reported_in_debug_mode(loop):
    async def main():
        loop.set_debug(True)
        server, port, protos = await tls_echo_server(loop)
        with socket.socket() as s:
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")  # not TLS
            await asyncio.sleep(0.2)
        server.close()
        await server.wait_closed()
        loop.set_debug(False)
        return [p.events for p in protos]

    assert run(loop, main()) == [[]]
    msgs = [e["message"] for e in loop.errors]
    assert msgs == ["Error on transport creation for incoming connection"]
    assert isinstance(loop.errors[0]["exception"], ssl.SSLError)


# --------------------------------------------------------------- shutdowns


def test_peer_closes_without_close_notify(loop):
    async def main():
        protos = []

        def make():
            p = Recorder(loop)
            protos.append(p)
            return p

        server = await loop.create_server(make, "127.0.0.1", 0, ssl=server_ctx())
        port = server.sockets[0].getsockname()[1]
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST)
        await asyncio.sleep(0.05)
        protos[0].transport.abort()  # raw connection closed, no close_notify
        exc = await cl.lost
        server.close()
        await server.wait_closed()
        return cl.events, type(exc).__name__ if exc else None

    # an unclean close (no close_notify) ends like a clean one for the app
    assert run(loop, main()) == (["made", "eof", ("lost", None)], None)


def test_peer_reset_mid_stream(loop):
    async def main():
        results = {}
        # the loop's own TLS server; its raw socket is then reset (RST)
        server, sport, protos = await tls_echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", sport,
                                              ssl=client_ctx(), server_hostname=HOST)
        tr.write(b"x" * 1000)
        await cl.wait_bytes(1000)
        raw = protos[0].transport.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        protos[0].transport.abort()
        exc = await cl.lost
        results["client"] = cl.events
        results["exc"] = type(exc).__name__ if exc else None
        server.close()
        await server.wait_closed()
        return results

    results = run(loop, main())
    assert results["client"][:2] == ["made", "data"]
    assert results["exc"] == "ConnectionResetError"


def test_shutdown_timeout(loop):
    if sys.version_info < (3, 11):
        pytest.skip("ssl_shutdown_timeout is 3.11+")
    stop = threading.Event()
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def serve():
        # handshake, then never read again (no close_notify answer)
        c, _ = lsock.accept()
        with server_ctx().wrap_socket(c, server_side=True) as tls:
            stop.wait(10)

    th = threading.Thread(target=serve)
    th.start()

    async def main():
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST,
                                              ssl_shutdown_timeout=0.3)
        t0 = loop.time()
        tr.close()
        exc = await cl.lost
        return type(exc).__name__ if exc else None, loop.time() - t0

    try:
        exc, dt = run(loop, main())
    finally:
        stop.set()
        th.join()
        lsock.close()
    assert exc == "TimeoutError"
    assert 0.25 <= dt < 5


# ----------------------------------------------------------- flow control


def test_flow_control_over_tls(loop):
    async def main():
        protos = []

        def make():
            p = Recorder(loop)
            protos.append(p)
            return p

        server = await loop.create_server(make, "127.0.0.1", 0, ssl=server_ctx())
        port = server.sockets[0].getsockname()[1]
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST)
        await protos[0].made
        protos[0].transport.pause_reading()
        assert not protos[0].transport.is_reading()
        chunk = b"y" * 65536
        sent = 0
        while "pause" not in cl.events and sent < (64 << 20):
            tr.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        assert "pause" in cl.events
        payload = b"y" * sent
        assert tr.get_write_buffer_size() > 0
        protos[0].transport.resume_reading()
        await protos[0].wait_bytes(len(payload))
        for _ in range(200):
            if "resume" in cl.events:
                break
            await asyncio.sleep(0.01)
        tr.close()
        await cl.lost
        server.close()
        await server.wait_closed()
        return cl.events, len(protos[0].data), sent

    events, n, sent = run(loop, main())
    assert n == sent
    assert events == ["made", "pause", "resume", "eof", ("lost", None)]
    assert loop.errors == []


# ----------------------------------------------------- tornado over the loop


def test_tornado_https_server_and_client(loop):
    import tornado.httpclient
    import tornado.httpserver
    import tornado.web

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("secure hello")

    async def main():
        app = tornado.web.Application([("/", Hello)])
        server = tornado.httpserver.HTTPServer(app, ssl_options=server_ctx())
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(10)
        sock.setblocking(False)
        server.add_sockets([sock])
        port = sock.getsockname()[1]
        client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
        resp = await client.fetch("https://127.0.0.1:%d/" % port,
                                  ssl_options=insecure_ctx())
        client.close()
        # and an asyncio TLS client on the same loop
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=insecure_ctx())
        writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        raw = await reader.read()
        writer.close()
        server.stop()
        await server.close_all_connections()
        return resp.body, raw

    body, raw = run(loop, main())
    assert body == b"secure hello"
    assert raw.startswith(b"HTTP/1.1 200 OK") and raw.endswith(b"secure hello")


def test_data_then_close_notify_in_one_read(loop):
    # the server writes several records and closes at once: the client reads
    # them (and the close_notify) together, in order
    class Sender(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            for i in range(5):
                transport.write(b"%d" % i * 1000)
            transport.close()

    async def main():
        server = await loop.create_server(lambda: Sender(loop), "127.0.0.1", 0,
                                          ssl=server_ctx())
        port = server.sockets[0].getsockname()[1]
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST)
        await cl.lost
        server.close()
        await server.wait_closed()
        return bytes(cl.data), cl.events

    data, events = run(loop, main())
    assert data == b"".join(b"%d" % i * 1000 for i in range(5))
    assert events == ["made", "data", "eof", ("lost", None)]
    assert loop.errors == []


# ------------------------------------- the C steady state and its edges


def test_buffered_protocol_over_tls(loop):
    class BufRec(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1000)
            self.data = bytearray()
            self.lost = loop.create_future()

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            # a memoryview: with a bytearray the stdlib's buffered TLS read
            # slices a copy and the data is scrambled (on every loop)
            return memoryview(self.buf)

        def buffer_updated(self, nbytes):
            self.data += self.buf[:nbytes]

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        server, port, _ = await tls_echo_server(loop)
        tr, pr = await loop.create_connection(BufRec, "127.0.0.1", port, ssl=client_ctx(),
                                              server_hostname=HOST)
        payload = os.urandom(50000)
        tr.write(payload)
        for _ in range(1000):
            if len(pr.data) >= len(payload):
                break
            await asyncio.sleep(0.01)
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return bytes(pr.data) == payload

    assert run(loop, main())
    assert loop.errors == []


def test_app_pause_reading_and_write_variants(loop):
    async def main():
        server, port, protos = await tls_echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST)
        tr.pause_reading()
        assert not tr.is_reading()
        tr.write(b"a" * 10)
        tr.write(bytearray(b"b" * 10))
        tr.write(memoryview(b"c" * 10))
        tr.writelines([b"d" * 10, bytearray(b"e" * 10), memoryview(b"f" * 10)])
        tr.write(b"")
        with pytest.raises(TypeError) as ei:
            tr.write("text")
        message = str(ei.value)
        await protos[0].wait_bytes(60)
        await asyncio.sleep(0.05)
        assert bytes(cl.data) == b""  # paused: nothing delivered
        tr.resume_reading()
        await cl.wait_bytes(60)
        tr.close()
        await cl.lost
        server.close()
        await server.wait_closed()
        return bytes(cl.data), message

    data, message = run(loop, main())
    assert data == b"a" * 10 + b"b" * 10 + b"c" * 10 + b"d" * 10 + b"e" * 10 + b"f" * 10
    assert message == "data: expecting a bytes-like instance, got str"
    assert loop.errors == []


def test_exception_in_data_received_over_tls(loop):
    class Bad(Recorder):
        def data_received(self, data):
            super().data_received(data)
            raise ValueError("app bug")

    async def main():
        server, port, protos = await tls_echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Bad(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST)
        tr.write(b"ping")
        exc = await cl.lost
        server.close()
        await server.wait_closed()
        return type(exc).__name__, cl.events

    name, events = run(loop, main())
    assert name == "ValueError"
    assert events == ["made", "data", ("lost", "ValueError")]
    assert [(e["message"], type(e["exception"]).__name__) for e in loop.errors] == [
        ("Fatal error on SSL protocol", "ValueError")]


def test_writes_after_close_over_tls(loop, caplog):
    import logging

    async def main():
        server, port, protos = await tls_echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              ssl=client_ctx(), server_hostname=HOST)
        tr.write(b"x")
        await cl.wait_bytes(1)
        tr.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(7):
                tr.write(b"late")
        await cl.lost
        server.close()
        await server.wait_closed()
        return bytes(cl.data)

    assert run(loop, main()) == b"x"
    warnings = [r for r in caplog.records if r.getMessage() == "SSL connection is closed"]
    assert len(warnings) == 2
