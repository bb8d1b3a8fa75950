"""The C IOStream as plain TCPServer / TCPClient users get it.

Under ``install()`` the ``http`` component replaces the two module globals
``tornado.tcpserver.IOStream`` and ``tornado.tcpclient.IOStream`` with
``tornado_c.iostream.IOStream`` (tests/test_switch.py checks the patching
itself).  The behaviour tests here run in two modes
(parametrised): "upstream" (switch uninstalled, asyncio's default loop,
upstream's IOStream) and "tornado_c" (switch installed, the tornado_c loop,
the C IOStream); both must behave the same, and each checks which stream
class it really got.
"""

import asyncio
import os
import socket
import ssl
import textwrap

import pytest

import tornado.iostream
import tornado.tcpclient
import tornado.tcpserver
from tornado.iostream import SSLIOStream, StreamBufferFullError, StreamClosedError
from tornado.tcpclient import TCPClient
from tornado.tcpserver import TCPServer

import tornado_c
from tornado_c import _core
from tornado_c import iostream as tci

from conftest import free_port, run_python

MODES = ["upstream", "tornado_c"]
ALL = {name: True for name in ("loop", "http", "web", "websocket")}

CERT_DIR = os.path.join(os.path.dirname(tornado.__file__), "test")


def server_ssl_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(CERT_DIR, "test.crt"), os.path.join(CERT_DIR, "test.key"))
    return ctx


def client_ssl_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(params=MODES)
def mode(request, clean_switch, monkeypatch):
    monkeypatch.delenv("TORNADO_C_DISABLE", raising=False)
    tornado_c.uninstall()
    if request.param == "tornado_c":
        assert "http" in tornado_c.install(**ALL)
    return request.param


# tests that check a logged error themselves
LOGS_EXPECTED = {"test_buffer_sizes_reach_the_streams"}


@pytest.fixture(autouse=True)
def no_warnings_logged(request, caplog):
    """Neither mode logs a warning or error from tornado or asyncio unless the
    test says it expects one (upstream's logging is part of the behaviour)."""
    yield
    if request.node.originalname in LOGS_EXPECTED:
        return
    bad = [(r.name, r.levelname, r.getMessage()) for r in caplog.get_records("call")
           if r.levelno >= 30 and r.name.split(".")[0] in ("tornado", "asyncio")]
    assert not bad


def run(coro_fn, timeout=10):
    """asyncio.run under whatever policy the mode set (tornado_c's loop when
    installed, asyncio's default otherwise)."""
    return asyncio.run(asyncio.wait_for(coro_fn(), timeout))


def check_tls_client(mode, stream):
    """A stream after TLS (TCPClient.connect(ssl_options=...), start_tls, an
    ssl_options server's): under the switch the C stream with TLS inside it
    (csrc/stream/tls.c), else upstream's SSLIOStream; both are SSLIOStreams."""
    assert isinstance(stream, SSLIOStream)
    if mode == "tornado_c":
        assert type(stream) is tci._SSLIOStream
        assert isinstance(stream, _core.Stream)
    else:
        assert type(stream) is SSLIOStream


def check_kind(mode, stream):
    assert isinstance(stream, tornado.iostream.IOStream)
    assert not isinstance(stream, SSLIOStream)
    if mode == "tornado_c":
        assert type(stream) is tci.IOStream
        assert isinstance(stream, _core.Stream)
    else:
        assert type(stream) is tornado.iostream.IOStream
    if not stream.closed():
        assert isinstance(stream.socket, socket.socket)
        assert stream.fileno() is stream.socket or stream.fileno() == stream.socket.fileno()


class Recording(TCPServer):
    """Queues every (stream, address) it is handed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue = asyncio.Queue()

    def handle_stream(self, stream, address):
        self.queue.put_nowait((stream, address))


class Echo(TCPServer):
    """Line echo; records the stream types and how each connection ended."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.streams = []
        self.ended = []

    async def handle_stream(self, stream, address):
        self.streams.append(stream)
        try:
            while True:
                line = await stream.read_until(b"\n")
                if line == b"bye\n":
                    await stream.write(b"ciao\n")
                    stream.close()
                    break
                await stream.write(line)
        except StreamClosedError as e:
            self.ended.append(e)


def listen(server):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)  # as tornado.netutil.bind_sockets makes them
    port = sock.getsockname()[1]
    server.add_socket(sock)
    return port


async def one_connection():
    """A Recording server and one TCPClient connection to it:
    (server, client stream, server-side stream, client address)."""
    server = Recording()
    port = listen(server)
    client = await TCPClient().connect("127.0.0.1", port)
    stream, address = await server.queue.get()
    return server, client, stream, address


# ------------------------------------ the patched names off the C loop


def test_installed_but_not_on_tornado_c_loop_gives_upstream_streams(clean_switch, monkeypatch):
    # the patched name constructs upstream's IOStream on any other loop
    monkeypatch.delenv("TORNADO_C_DISABLE", raising=False)
    tornado_c.install()
    got = {}

    async def main():
        server, client, stream, _ = await one_connection()
        assert isinstance(asyncio.get_running_loop(), asyncio.SelectorEventLoop)
        got["types"] = (type(client), type(stream))
        client.close()
        stream.close()
        server.stop()

    loop = asyncio.SelectorEventLoop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        loop.close()
    assert got["types"] == (tornado.iostream.IOStream, tornado.iostream.IOStream)


# ----------------------------------------------------- behaviour, both modes


def test_echo_server_and_client(mode):
    async def main():
        server = Echo()
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port)
        check_kind(mode, client)
        closed = asyncio.Event()
        client.set_close_callback(closed.set)
        for i in range(20):
            msg = b"line %d " % i + b"x" * (i * 997) + b"\n"
            await client.write(msg)
            assert await client.read_until(b"\n") == msg
        # read_bytes over two echoed lines, then a partial read
        await client.write(b"ab\ncd\n")
        assert await client.read_bytes(4) == b"ab\nc"
        assert await client.read_bytes(10, partial=True) == b"d\n"
        await client.write(b"bye\n")
        assert await client.read_until_close() == b"ciao\n"
        await asyncio.wait_for(closed.wait(), 5)
        assert client.closed()
        with pytest.raises(StreamClosedError):
            await client.read_bytes(1)
        assert len(server.streams) == 1
        check_kind(mode, server.streams[0])
        server.stop()

    run(main)


def test_server_sees_client_close(mode):
    async def main():
        server, client, stream, address = await one_connection()
        check_kind(mode, stream)
        assert address[0] == "127.0.0.1"
        assert address[1] == client.socket.getsockname()[1]
        closed = asyncio.Event()
        stream.set_close_callback(closed.set)
        client.write(b"tail without newline")
        client.close()
        # the bytes sent before the close are all delivered
        assert await stream.read_until_close() == b"tail without newline"
        await asyncio.wait_for(closed.wait(), 5)
        assert stream.closed()
        with pytest.raises(StreamClosedError):
            await stream.read_until(b"\n")
        server.stop()

    run(main)


def test_chat_broadcast_many_clients(mode):
    """A chat-style server: every line from one client goes to all."""

    class Chat(TCPServer):
        def __init__(self):
            super().__init__()
            self.members = set()

        async def handle_stream(self, stream, address):
            self.members.add(stream)
            try:
                while True:
                    line = await stream.read_until(b"\n")
                    for m in list(self.members):
                        m.write(line)
            except StreamClosedError:
                pass
            finally:
                self.members.discard(stream)

    async def main():
        server = Chat()
        port = listen(server)
        clients = [await TCPClient().connect("127.0.0.1", port) for _ in range(5)]
        while len(server.members) < 5:
            await asyncio.sleep(0.01)
        for m in server.members:
            check_kind(mode, m)
        for i, c in enumerate(clients):
            await c.write(b"from %d\n" % i)
        for c in clients:
            got = [await c.read_until(b"\n") for _ in range(5)]
            assert sorted(got) == [b"from %d\n" % i for i in range(5)]
        for c in clients:
            c.close()
        while server.members:
            await asyncio.sleep(0.01)
        server.stop()

    run(main)


def test_buffer_sizes_reach_the_streams(mode, caplog):
    async def main():
        server = Recording(max_buffer_size=3000, read_chunk_size=512)
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port, max_buffer_size=5000)
        check_kind(mode, client)
        assert client.max_buffer_size == 5000
        stream, _ = await server.queue.get()
        check_kind(mode, stream)
        assert stream.max_buffer_size == 3000
        assert stream.read_chunk_size == 512
        # more than max_buffer_size with no delimiter: the read fails with
        # StreamBufferFullError, which is logged, and the stream closes
        closed = asyncio.Event()
        stream.set_close_callback(closed.set)
        client.write(b"y" * 20000)
        with pytest.raises(StreamBufferFullError):
            await stream.read_until(b"\n")
        await asyncio.wait_for(closed.wait(), 5)
        assert stream.closed()
        assert isinstance(stream.error, StreamBufferFullError)
        client.close()
        server.stop()

    run(main)
    logged = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert ("tornado.general", "ERROR", "Reached maximum read buffer size") in logged


def test_connect_refused(mode):
    async def main():
        port = free_port()  # nobody listens there
        with pytest.raises(StreamClosedError) as info:
            await TCPClient().connect("127.0.0.1", port)
        assert isinstance(info.value.real_error, ConnectionRefusedError)

    run(main)


class _Tracking(TCPClient):
    """Remembers the streams it made, to check they were closed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.made = []

    def _create_stream(self, *args, **kwargs):
        stream, future = super()._create_stream(*args, **kwargs)
        self.made.append(stream)
        return stream, future


def _full_backlog():
    """A listener whose accept queue is full: connects to it hang."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    held = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(lst.getsockname())
        held.append(s)
    return lst, held


def test_connect_timeout_closes_the_pending_stream(mode):
    async def main():
        lst, held = _full_backlog()
        try:
            client = _Tracking()
            with pytest.raises(TimeoutError) as info:
                await client.connect("127.0.0.1", lst.getsockname()[1], timeout=0.3)
            assert str(info.value) == "Timeout while connecting to 127.0.0.1:%d" % (
                lst.getsockname()[1])
            assert len(client.made) == 1
            check_kind(mode, client.made[0])
            assert client.made[0].closed()
        finally:
            for s in held:
                s.close()
            lst.close()

    run(main)


def test_cancelled_connect_closes_the_pending_stream(mode):
    async def main():
        lst, held = _full_backlog()
        try:
            client = _Tracking()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.connect("127.0.0.1", lst.getsockname()[1]), 0.2)
            assert len(client.made) == 1
            check_kind(mode, client.made[0])
            assert client.made[0].closed()
        finally:
            for s in held:
                s.close()
            lst.close()

    run(main)


def test_source_port_and_ip(mode):
    async def main():
        server = Recording()
        port = listen(server)
        src_port = free_port()
        client = await TCPClient().connect("127.0.0.1", port, source_ip="127.0.0.1",
                                           source_port=src_port)
        check_kind(mode, client)
        stream, address = await server.queue.get()
        assert address == ("127.0.0.1", src_port)
        assert client.socket.getsockname() == ("127.0.0.1", src_port)
        await client.write(b"ping")
        assert await stream.read_bytes(4) == b"ping"
        client.close()
        stream.close()
        server.stop()

    run(main)


def test_ssl_server_and_client_streams(mode):
    """An ssl_options server's streams and the client's are the C TLS
    stream under the switch."""

    async def main():
        server = Echo(ssl_options=server_ssl_ctx())
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port, ssl_options=client_ssl_ctx())
        check_tls_client(mode, client)
        await client.write(b"over tls\n")
        assert await client.read_until(b"\n") == b"over tls\n"
        check_tls_client(mode, server.streams[0])
        client.close()
        server.stop()

    run(main)


def test_plain_server_with_start_tls(mode):
    """A protocol that upgrades to TLS midway (STARTTLS): the plain stream
    from handle_stream and the client's (TCPClient.connect) hand over to
    the C TLS stream under the switch."""

    class StartTLS(TCPServer):
        def __init__(self):
            super().__init__()
            self.kinds = []

        async def handle_stream(self, stream, address):
            self.kinds.append(type(stream))
            assert await stream.read_until(b"\n") == b"STARTTLS\n"
            await stream.write(b"GO\n")
            tls = await stream.start_tls(True, server_ssl_ctx())
            self.kinds.append(type(tls))
            line = await tls.read_until(b"\n")
            await tls.write(line.upper())
            tls.close()

    async def main():
        server = StartTLS()
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port)
        check_kind(mode, client)
        await client.write(b"STARTTLS\n")
        assert await client.read_until(b"\n") == b"GO\n"
        tls = await client.start_tls(False, client_ssl_ctx())
        check_tls_client(mode, tls)
        await tls.write(b"secret\n")
        assert await tls.read_until(b"\n") == b"SECRET\n"
        tls.close()
        expect = tci.IOStream if mode == "tornado_c" else tornado.iostream.IOStream
        expect_tls = tci._SSLIOStream if mode == "tornado_c" else SSLIOStream
        assert server.kinds == [expect, expect_tls]
        server.stop()

    run(main)


def test_unix_socket_server(mode, tmp_path):
    from tornado.netutil import bind_unix_socket

    async def main():
        server = Echo()
        path = str(tmp_path / "echo.sock")
        server.add_socket(bind_unix_socket(path))
        client_sock = socket.socket(socket.AF_UNIX)
        client_sock.connect(path)
        client_sock.sendall(b"over unix\n")
        loop = asyncio.get_running_loop()
        got = b""
        while not got.endswith(b"\n"):
            got += await loop.run_in_executor(None, client_sock.recv, 100)
        assert got == b"over unix\n"
        check_kind(mode, server.streams[0])
        assert server.streams[0].socket.family == socket.AF_UNIX
        client_sock.close()
        while not server.ended:
            await asyncio.sleep(0.01)
        server.stop()

    run(main)


def test_ipv6_loopback(mode):
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")

    async def main():
        server = Echo()
        sock = socket.socket(socket.AF_INET6)
        sock.bind(("::1", 0))
        sock.listen(8)
        sock.setblocking(False)
        server.add_socket(sock)
        client = await TCPClient().connect("::1", sock.getsockname()[1])
        check_kind(mode, client)
        assert client.socket.family == socket.AF_INET6
        await client.write(b"six\n")
        assert await client.read_until(b"\n") == b"six\n"
        client.close()
        server.stop()

    run(main)


def test_set_nodelay_and_socket_options(mode):
    async def main():
        server, client, stream, _ = await one_connection()
        for st in (client, stream):
            check_kind(mode, st)
            st.set_nodelay(True)
            assert st.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            st.set_nodelay(False)
            assert not st.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.close()
        stream.close()
        server.stop()

    run(main)


def test_http_server_subclass_with_handle_stream_and_simple_client(mode):
    """An HTTPServer subclass overriding handle_stream takes the TCPServer
    path (upstream's HTTP1ServerConnection) and gets the C stream there; the
    simple HTTP client's connections come from TCPClient."""
    import tornado.web
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer

    class Hello(tornado.web.RequestHandler):
        def post(self):
            self.write(b"got " + self.request.body)

    seen = []

    class Watching(HTTPServer):
        def handle_stream(self, stream, address):
            seen.append(type(stream))
            return super().handle_stream(stream, address)

    made = []
    real_create = TCPClient._create_stream

    def spy(self, *args, **kwargs):
        stream, future = real_create(self, *args, **kwargs)
        made.append(type(stream))
        return stream, future

    async def main():
        server = Watching(tornado.web.Application([("/", Hello)]))
        port = listen(server)
        client = AsyncHTTPClient(force_instance=True)
        try:
            for body in (b"a", b"b" * 100000):
                resp = await client.fetch("http://127.0.0.1:%d/" % port, method="POST",
                                          body=body)
                assert resp.body == b"got " + body
        finally:
            client.close()
            server.stop()

    TCPClient._create_stream = spy
    try:
        run(main)
    finally:
        TCPClient._create_stream = real_create
    expect = tci.IOStream if mode == "tornado_c" else tornado.iostream.IOStream
    assert seen and set(seen) == {expect}
    assert made and set(made) == {expect}


def test_close_callback_without_a_read(mode):
    """handle_stream only sets a close callback (no read pending): the peer's
    close is still noticed, as upstream polls for it."""

    class Idle(TCPServer):
        def __init__(self):
            super().__init__()
            self.closed = asyncio.Event()
            self.kinds = []

        def handle_stream(self, stream, address):
            self.kinds.append(type(stream))
            stream.set_close_callback(self.closed.set)

    async def main():
        server = Idle()
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port)
        while not server.kinds:
            await asyncio.sleep(0.01)
        client.close()
        await asyncio.wait_for(server.closed.wait(), 5)
        expect = tci.IOStream if mode == "tornado_c" else tornado.iostream.IOStream
        assert server.kinds == [expect]
        server.stop()

    run(main)


def test_peer_reset_gives_stream_closed_with_the_error(mode):
    import struct

    async def main():
        server, client, stream, _ = await one_connection()
        check_kind(mode, stream)
        read = asyncio.ensure_future(stream.read_until(b"\n"))
        await asyncio.sleep(0.05)
        # SO_LINGER 0: close() sends RST
        client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        with pytest.raises(StreamClosedError) as info:
            await read
        assert isinstance(info.value.real_error, ConnectionResetError)
        assert isinstance(stream.error, ConnectionResetError)
        server.stop()

    run(main)


def test_connect_future_resolves_to_the_stream(mode):
    async def main():
        server = Recording()
        port = listen(server)
        sock = socket.socket()
        stream = tornado.tcpclient.IOStream(sock, max_buffer_size=12345)
        check_kind(mode, stream)
        fut = stream.connect(("127.0.0.1", port))
        assert not fut.done()
        assert (await fut) is stream
        assert stream.max_buffer_size == 12345
        peer, _ = await server.queue.get()
        stream.close()
        peer.close()
        server.stop()

    run(main)


class _Dropping(TCPServer):
    """handle_stream keeps no reference to the stream (what=nothing), only
    writes a greeting (greet), or only parks it in a reference cycle (cycle)."""

    def __init__(self, what):
        super().__init__()
        self.what = what
        self.refs = []

    def handle_stream(self, stream, address):
        import weakref

        self.refs.append(weakref.ref(stream))
        if self.what == "greet":
            stream.write(b"welcome\n")  # goes out at once: nothing waits
        elif self.what == "cycle":
            stream.myself = stream


@pytest.mark.parametrize("what", ["nothing", "greet", "cycle"])
def test_dropped_stream_closes_the_connection(mode, what):
    """A stream nobody references that never waited for the loop is
    collected and its connection closed, as upstream's (whose socket closes
    when collected); the C stream object itself is freed too."""
    import gc

    async def main():
        server = _Dropping(what)
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port)
        while not server.refs:
            await asyncio.sleep(0.01)
        gc.collect()
        if what == "greet":
            assert await client.read_until(b"\n") == b"welcome\n"
        assert await asyncio.wait_for(client.read_until_close(), 5) == b""
        for _ in range(50):
            gc.collect()
            if server.refs[0]() is None:
                break
            await asyncio.sleep(0.01)
        assert server.refs[0]() is None
        server.stop()

    run(main)


def test_stream_waiting_for_the_loop_stays_alive_unreferenced(mode):
    """A stream with a pending read is kept alive by the loop (upstream: its
    handler is registered) even when the application keeps no reference."""
    import gc

    results = []

    class CallbackStyle(TCPServer):
        def handle_stream(self, stream, address):
            def on_line(fut):
                stream.write(fut.result().upper())
                results.append(type(stream))

            stream.read_until(b"\n").add_done_callback(on_line)

    async def main():
        server = CallbackStyle()
        port = listen(server)
        client = await TCPClient().connect("127.0.0.1", port)
        await asyncio.sleep(0.05)
        gc.collect()
        await client.write(b"still here\n")
        assert await client.read_until(b"\n") == b"STILL HERE\n"
        expect = tci.IOStream if mode == "tornado_c" else tornado.iostream.IOStream
        assert results == [expect]
        client.close()
        server.stop()

    run(main)


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_fd_leak_over_many_connections(mode):
    """Connections served and closed from either end, refused connects and
    timed-out connects leave no descriptor behind."""
    import gc

    async def main():
        server = Echo()
        port = listen(server)
        dead_port = free_port()
        lst, held = _full_backlog()
        # warm up: the first resolve may set up the loop's DNS machinery
        (await TCPClient().connect("127.0.0.1", port)).close()
        await asyncio.sleep(0.05)
        before = _open_fds()
        for i in range(30):
            client = await TCPClient().connect("127.0.0.1", port)
            await client.write(b"x\n")
            await client.read_until(b"\n")
            if i % 2:
                client.close()
            else:
                await client.write(b"bye\n")
                await client.read_until_close()
            with pytest.raises(StreamClosedError):
                await TCPClient().connect("127.0.0.1", dead_port)
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await TCPClient().connect("127.0.0.1", lst.getsockname()[1], timeout=0.05)
        while len(server.ended) < 16:  # the 15 client-side closes + warm-up
            await asyncio.sleep(0.01)
        for _ in range(20):
            await asyncio.sleep(0.01)
            gc.collect()
            if _open_fds() <= before:
                break
        assert _open_fds() <= before
        for s in held:
            s.close()
        lst.close()
        server.stop()

    run(main, timeout=30)


# ------------------------------------------------- python -m tornado_c

_APP = textwrap.dedent('''
    import asyncio
    from tornado.iostream import StreamClosedError
    from tornado.tcpclient import TCPClient
    from tornado.tcpserver import TCPServer

    kinds = []

    class Echo(TCPServer):
        async def handle_stream(self, stream, address):
            kinds.append(type(stream).__module__)
            try:
                while True:
                    stream.write(await stream.read_until(b"\\n"))
            except StreamClosedError:
                pass

    async def main():
        server = Echo()
        server.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        client = await TCPClient().connect("127.0.0.1", port)
        kinds.append(type(client).__module__)
        for i in range(3):
            await client.write(b"n%d\\n" % i)
            print((await client.read_until(b"\\n")).decode().strip())
        client.close()
        server.stop()
        print(" ".join(kinds))

    asyncio.run(main())
''')


def test_python_m_tornado_c_tcp_echo(tmp_path):
    app = tmp_path / "tcp_echo.py"
    app.write_text(_APP)
    env = {"TORNADO_C_DISABLE": ""}
    plain = run_python(str(app), cwd=str(tmp_path), env=env)
    ours = run_python("-m", "tornado_c", str(app), cwd=str(tmp_path), env=env)
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    assert plain.stdout.splitlines()[:3] == ours.stdout.splitlines()[:3] == ["n0", "n1", "n2"]
    assert plain.stdout.splitlines()[3] == "tornado.iostream tornado.iostream"
    assert ours.stdout.splitlines()[3] == "tornado_c.iostream tornado_c.iostream"
    assert ours.stderr == plain.stderr == ""
