"""TCP and Unix stream transports: every behavioural test runs on the stdlib
asyncio loop and on the tornado_c loop; a difference is a bug."""

import asyncio
import gc
import os
import socket
import struct
import sys
import tempfile

import pytest

from conftest import free_port, new_loop
from recorder import Recorder

TIMEOUT = 15


@pytest.fixture
def loop(loop):
    """conftest's loop of each kind, set as the current loop, with an
    exception handler that keeps every context in ``loop.errors``; pending
    callbacks run once before it is closed."""
    errors = []

    def handler(lp_, context):
        errors.append(context)

    loop.set_exception_handler(handler)
    loop.errors = errors
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    if not loop.is_closed():
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    gc.collect()


def run(loop, coro, timeout=TIMEOUT):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def warm_up(loop):
    """Let the loop open its lazily created per-loop fds (libuv keeps a
    reserve fd per loop once a stream is opened) before counting fds."""

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tr.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)

    run(loop, main())


class BufRecorder(asyncio.BufferedProtocol):
    def __init__(self, loop, echo=False, bufsize=100):
        self.buf = bytearray(bufsize)
        self.events = []
        self.data = bytearray()
        self.echo = echo
        self.sizes = []
        self.lost = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def get_buffer(self, sizehint):
        self.sizes.append(sizehint)
        return memoryview(self.buf)

    def buffer_updated(self, nbytes):
        chunk = bytes(self.buf[:nbytes])
        self.data += chunk
        if self.echo:
            self.transport.write(chunk)

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)


async def _echo_server(loop, factory=None, host="127.0.0.1"):
    protos = []

    def make():
        p = (factory or (lambda: Recorder(loop, echo=True)))()
        protos.append(p)
        return p

    server = await loop.create_server(make, host, 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, protos


# --------------------------------------------------------------- echo


def test_echo_protocol(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        assert cl.events == ["made"]
        assert tr.get_protocol() is cl
        assert isinstance(tr, asyncio.Transport)
        assert isinstance(server, asyncio.AbstractServer)
        payload = b"x" * 100000 + b"end"
        tr.write(payload[:10])
        tr.writelines([payload[10:50], bytearray(payload[50:60]), memoryview(payload[60:])])
        await cl.wait_bytes(len(payload))
        assert bytes(cl.data) == payload
        tr.close()
        assert tr.is_closing()
        await cl.lost
        await protos[0].lost
        assert cl.events == ["made", "data", ("lost", None)]
        assert protos[0].events == ["made", "data", "eof", ("lost", None)]
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert loop.errors == []


def test_echo_buffered_protocol(loop):
    async def main():
        server, port, protos = await _echo_server(
            loop, lambda: BufRecorder(loop, echo=True, bufsize=7))
        tr, cl = await loop.create_connection(lambda: BufRecorder(loop, bufsize=1000),
                                              "127.0.0.1", port)
        payload = bytes(range(256)) * 50
        tr.write(payload)
        for _ in range(500):
            if len(cl.data) >= len(payload):
                break
            await asyncio.sleep(0.01)
        assert bytes(cl.data) == payload
        assert set(protos[0].sizes) == {-1}
        tr.close()
        await cl.lost
        await protos[0].lost
        assert cl.events == ["made", ("lost", None)]
        assert protos[0].events == ["made", "eof", ("lost", None)]
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert loop.errors == []


def test_buffered_protocol_get_buffer_fails(loop):
    class Bad(BufRecorder):
        def get_buffer(self, sizehint):
            raise ZeroDivisionError("nope")

    async def main():
        server, port, protos = await _echo_server(loop, lambda: Bad(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"hello")
        exc = await protos[0].lost
        assert isinstance(exc, ZeroDivisionError)
        await cl.lost
        server.close()

    run(loop, main())
    assert len(loop.errors) == 1
    assert loop.errors[0]["message"] == "Fatal error: protocol.get_buffer() call failed."
    assert isinstance(loop.errors[0]["exception"], ZeroDivisionError)


def test_asyncio_streams(loop):
    async def handle(reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line.upper())
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for i in range(50):
                writer.write(b"line %d\n" % i)
                await writer.drain()
                assert await reader.readline() == b"LINE %d\n" % i
            big = b"a" * 60000 + b"\n"
            writer.write(big)
            await writer.drain()
            assert await reader.readexactly(len(big)) == big.upper()
            writer.write_eof()
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
            assert writer.get_extra_info("peername")[1] == port

    run(loop, main())
    assert loop.errors == []


# ---------------------------------------------------------- half close


def test_write_eof_half_close(loop):
    async def main():
        class Srv(Recorder):
            def eof_received(self):
                super().eof_received()
                self.transport.write(b"reply:" + bytes(self.data))
                self.transport.close()
                return True

        server, port, protos = await _echo_server(loop, lambda: Srv(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        assert tr.can_write_eof()
        tr.write(b"question")
        tr.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            tr.write(b"more")
        tr.write_eof()  # second call is a no-op
        await cl.lost
        assert bytes(cl.data) == b"reply:question"
        assert cl.events == ["made", "data", "eof", ("lost", None)]
        await protos[0].lost
        assert protos[0].events == ["made", "data", "eof", ("lost", None)]
        server.close()

    run(loop, main())
    assert loop.errors == []


def test_eof_received_keep_open_then_write(loop):
    async def main():
        server, port, protos = await _echo_server(
            loop, lambda: Recorder(loop, eof_keep_open=True))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write_eof()
        await protos[0].got_eof
        st = protos[0].transport
        assert not st.is_closing()
        st.write(b"after eof")
        await cl.wait_bytes(9)
        st.close()
        await cl.lost
        await protos[0].lost
        assert cl.events == ["made", "data", "eof", ("lost", None)]
        server.close()

    run(loop, main())
    assert loop.errors == []


# --------------------------------------------------------- flow control


def test_flow_control_writing(loop):
    async def main():
        server, port, protos = await _echo_server(loop, lambda: Recorder(loop))
        calls = []

        class Writer(Recorder):
            def pause_writing(self):
                calls.append(("pause", self.transport.get_write_buffer_size()))

            def resume_writing(self):
                calls.append(("resume", self.transport.get_write_buffer_size()))

        tr, cl = await loop.create_connection(lambda: Writer(loop), "127.0.0.1", port)
        await asyncio.sleep(0.05)
        srv = protos[0]
        srv.transport.pause_reading()
        assert not srv.transport.is_reading()
        tr.set_write_buffer_limits(high=1000, low=100)
        assert tr.get_write_buffer_limits() == (100, 1000)
        chunk = b"z" * 65536
        total = 0
        for _ in range(200):
            tr.write(chunk)
            total += len(chunk)
            if calls:
                break
        assert calls and calls[0][0] == "pause" and calls[0][1] > 1000
        assert tr.get_write_buffer_size() > 1000
        # nothing arrives while the server does not read
        srv_len = len(srv.data)
        await asyncio.sleep(0.05)
        assert len(srv.data) == srv_len
        srv.transport.resume_reading()
        assert srv.transport.is_reading()
        await srv.wait_bytes(total)
        for _ in range(100):
            if len(calls) > 1:
                break
            await asyncio.sleep(0.01)
        assert [c[0] for c in calls] == ["pause", "resume"]
        assert calls[1][1] <= 100
        assert tr.get_write_buffer_size() == 0
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())
    assert loop.errors == []


def test_write_buffer_limits_validation(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(low=10)
        assert tr.get_write_buffer_limits() == (10, 40)
        tr.set_write_buffer_limits(high=20)
        assert tr.get_write_buffer_limits() == (5, 20)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(TypeError):
            tr.write("text")
        tr.write(b"")
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())


def test_pause_resume_reading(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        assert tr.is_reading()
        tr.pause_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        tr.write(b"ping")
        await asyncio.sleep(0.1)
        assert cl.data == b""
        tr.resume_reading()
        assert tr.is_reading()
        await cl.wait_bytes(4)
        assert cl.data == b"ping"
        tr.close()
        assert not tr.is_reading()
        await cl.lost
        server.close()

    run(loop, main())


# ------------------------------------------------------ close and abort


BIG = 16 * 1024 * 1024


def _raw_listener():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(10)
    return ls


def test_close_flushes_pending_data(loop):
    async def main():
        ls = _raw_listener()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), *ls.getsockname())
        peer, _ = ls.accept()
        tr.write(b"q" * BIG)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        await asyncio.sleep(0.05)
        assert not cl.lost.done()  # waits for the buffer to drain
        peer.setblocking(False)
        got = 0
        while True:
            try:
                d = peer.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            if not d:
                break
            got += len(d)
        assert got == BIG
        assert await cl.lost is None
        assert cl.events == ["made", ("lost", None)]
        peer.close()
        ls.close()

    run(loop, main())
    assert loop.errors == []


def test_abort_drops_pending_data(loop):
    async def main():
        ls = _raw_listener()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), *ls.getsockname())
        peer, _ = ls.accept()
        tr.write(b"q" * BIG)
        tr.abort()
        assert tr.is_closing()
        assert await cl.lost is None
        tr.abort()
        tr.close()
        assert cl.events == ["made", ("lost", None)]
        peer.settimeout(5)
        got = 0
        while True:
            try:
                d = peer.recv(1 << 20)
            except ConnectionResetError:
                break
            if not d:
                break
            got += len(d)
        assert got < BIG
        peer.close()
        ls.close()

    run(loop, main())
    assert loop.errors == []


def test_peer_reset_gives_connection_reset_error(loop):
    async def main():
        ls = _raw_listener()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), *ls.getsockname())
        peer, _ = ls.accept()
        peer.sendall(b"hi")
        await cl.wait_bytes(2)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        exc = await cl.lost
        assert isinstance(exc, ConnectionResetError)
        assert exc.errno == 104
        assert cl.events == ["made", "data", ("lost", "ConnectionResetError")]
        assert tr.is_closing()
        ls.close()

    run(loop, main())
    assert loop.errors == []  # OSErrors are not sent to the handler


def test_write_to_reset_peer(loop):
    async def main():
        ls = _raw_listener()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), *ls.getsockname())
        peer, _ = ls.accept()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        tr.pause_reading()  # find the reset by writing
        await asyncio.sleep(0.05)
        for _ in range(100):
            tr.write(b"x" * 1000)
            if tr.is_closing():
                break
            await asyncio.sleep(0.01)
        exc = await cl.lost
        assert isinstance(exc, (BrokenPipeError, ConnectionResetError))
        # writes after the loss are dropped (with a warning after 5)
        for _ in range(3):
            tr.write(b"x")
        ls.close()

    run(loop, main())
    assert loop.errors == []


def test_close_inside_data_received(loop):
    async def main():
        class Closer(Recorder):
            def data_received(self, data):
                super().data_received(data)
                self.transport.close()
                self.transport.close()

        server, port, protos = await _echo_server(loop, lambda: Closer(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"a" * 10)
        await protos[0].lost
        await cl.lost
        assert protos[0].events == ["made", "data", ("lost", None)]
        assert cl.events == ["made", "eof", ("lost", None)]
        server.close()

    run(loop, main())
    assert loop.errors == []


def test_abort_inside_connection_made(loop):
    async def main():
        class Aborter(Recorder):
            def connection_made(self, transport):
                super().connection_made(transport)
                transport.abort()

        server, port, protos = await _echo_server(loop, lambda: Aborter(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        await protos[0].lost
        await cl.lost
        assert protos[0].events == ["made", ("lost", None)]
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert loop.errors == []


def test_exception_in_data_received(loop):
    async def main():
        class Bad(Recorder):
            def data_received(self, data):
                raise ValueError("boom")

        server, port, protos = await _echo_server(loop, lambda: Bad(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"x")
        exc = await protos[0].lost
        assert isinstance(exc, ValueError)
        await cl.lost
        server.close()

    run(loop, main())
    assert len(loop.errors) == 1
    ctx = loop.errors[0]
    assert ctx["message"] == "Fatal error: protocol.data_received() call failed."
    assert isinstance(ctx["exception"], ValueError)
    assert "transport" in ctx and "protocol" in ctx


def test_exception_in_connection_lost_goes_to_handler(loop):
    async def main():
        class Bad(Recorder):
            def connection_lost(self, exc):
                super().connection_lost(exc)
                raise KeyError("lost")

        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Bad(loop), "127.0.0.1", port)
        tr.close()
        await cl.lost
        await asyncio.sleep(0.01)
        server.close()

    run(loop, main())
    assert len(loop.errors) == 1
    assert isinstance(loop.errors[0]["exception"], KeyError)


# --------------------------------------------------------- extra info


def test_extra_info(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        await asyncio.sleep(0.01)
        s = tr.get_extra_info("socket")
        assert isinstance(s, asyncio.trsock.TransportSocket)
        assert s.family == socket.AF_INET
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        sn = tr.get_extra_info("sockname")
        assert sn[0] == "127.0.0.1"
        st = protos[0].transport
        assert st.get_extra_info("sockname") == ("127.0.0.1", port)
        assert st.get_extra_info("peername") == sn
        assert tr.get_extra_info("nope") is None
        assert tr.get_extra_info("nope", 5) == 5
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())


def test_set_protocol(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, first = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        second = Recorder(loop)
        tr.set_protocol(second)
        assert tr.get_protocol() is second
        tr.write(b"abc")
        await second.wait_bytes(3)
        assert first.data == b""
        tr.close()
        await second.lost
        assert not first.lost.done()
        server.close()

    run(loop, main())


# ---------------------------------------------------- connect variants


def test_connection_refused(loop):
    async def main():
        port = free_port()
        with pytest.raises(ConnectionRefusedError) as ei:
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        return ei.value, port

    warm_up(loop)
    before = fd_count()
    exc, port = run(loop, main())
    assert exc.errno == 111
    assert str(exc) == f"[Errno 111] Connect call failed ('127.0.0.1', {port})"
    assert fd_count() == before


def test_create_connection_local_addr(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port,
                                              local_addr=("127.0.0.1", 0))
        assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())


def test_create_connection_hostname(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "localhost", port,
                                              family=socket.AF_INET)
        tr.write(b"hello")
        await cl.wait_bytes(5)
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())


def test_create_connection_sock(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        s = socket.create_connection(("127.0.0.1", port))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), sock=s)
        assert tr.get_extra_info("socket").fileno() == s.fileno()
        tr.write(b"via sock")
        await cl.wait_bytes(8)
        tr.close()
        await cl.lost
        assert s.fileno() == -1
        server.close()
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, sock=s)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(ValueError):
            await loop.create_connection(asyncio.Protocol, sock=u)
        u.close()

    run(loop, main())


def test_create_server_sock(loop):
    async def main():
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        port = ls.getsockname()[1]
        server = await loop.create_server(lambda: Recorder(loop, echo=True), sock=ls)
        assert server.sockets[0].getsockname() == ("127.0.0.1", port)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"srv sock")
        await cl.wait_bytes(8)
        tr.close()
        await cl.lost
        server.close()
        await server.wait_closed()
        assert ls.fileno() == -1

    run(loop, main())


def test_connect_accepted_socket(loop):
    async def main():
        ls = _raw_listener()
        c = socket.create_connection(ls.getsockname())
        peer, _ = ls.accept()
        tr, pr = await loop.connect_accepted_socket(lambda: Recorder(loop, echo=True), peer)
        c.sendall(b"accepted")
        c.settimeout(5)
        got = b""
        while len(got) < 8:
            got += await loop.run_in_executor(None, c.recv, 100)
        assert got == b"accepted"
        c.close()
        await pr.lost
        assert pr.events == ["made", "data", "eof", ("lost", None)]
        ls.close()

    run(loop, main())


# -------------------------------------------------------------- unix


def test_unix_echo_and_streams(loop):
    async def handle(reader, writer):
        data = await reader.read()
        writer.write(data[::-1])
        await writer.drain()
        writer.close()

    async def main():
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "sock")
            server = await loop.create_unix_server(lambda: Recorder(loop, echo=True), path)
            assert server.sockets[0].family == socket.AF_UNIX
            tr, cl = await loop.create_unix_connection(lambda: Recorder(loop), path)
            tr.write(b"unix!" * 1000)
            await cl.wait_bytes(5000)
            assert tr.get_extra_info("peername") == path
            tr.close()
            await cl.lost
            server.close()
            await server.wait_closed()

            path2 = os.path.join(d, "sock2")
            srv2 = await asyncio.start_unix_server(handle, path2)
            reader, writer = await asyncio.open_unix_connection(path2)
            writer.write(b"abcdef")
            writer.write_eof()
            assert await reader.read() == b"fedcba"
            writer.close()
            await writer.wait_closed()
            srv2.close()
            await srv2.wait_closed()

            with pytest.raises(FileNotFoundError):
                await loop.create_unix_connection(asyncio.Protocol, os.path.join(d, "none"))

    run(loop, main())
    assert loop.errors == []


def test_unix_sock_variants(loop):
    async def main():
        a, b = socket.socketpair()
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop, echo=True), sock=a)
        b.sendall(b"pair")
        b.settimeout(5)
        assert await loop.run_in_executor(None, b.recv, 10) == b"pair"
        b.close()
        await pr.lost
        assert pr.events == ["made", "data", "eof", ("lost", None)]

    run(loop, main())


# ------------------------------------------------------------- server


def test_server_lifecycle(loop):
    async def main():
        server = await loop.create_server(lambda: Recorder(loop, echo=True), "127.0.0.1", 0,
                                          start_serving=False)
        assert not server.is_serving()
        assert server.get_loop() is loop
        port = server.sockets[0].getsockname()[1]
        await server.start_serving()
        assert server.is_serving()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write(b"x")
        await cl.wait_bytes(1)
        server.close()
        assert not server.is_serving()
        assert server.sockets == ()
        server.close()
        # the open connection survives the server's close
        tr.write(b"y")
        await cl.wait_bytes(2)
        tr.close()
        await cl.lost
        await server.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    run(loop, main())


def test_server_async_with_and_serve_forever(loop):
    async def main():
        async with await loop.create_server(lambda: Recorder(loop, echo=True),
                                            "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            task = asyncio.ensure_future(server.serve_forever())
            await asyncio.sleep(0.01)
            with pytest.raises(RuntimeError):
                await server.serve_forever()
            tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
            tr.write(b"q")
            await cl.wait_bytes(1)
            tr.close()
            await cl.lost
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not server.is_serving()
        assert server.sockets == ()
        with pytest.raises(RuntimeError):
            await server.serve_forever()

    run(loop, main())


def test_server_multiple_hosts(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, ["127.0.0.1", "127.0.0.1"], 0)
        assert len(server.sockets) == 1  # duplicates bound once
        server.close()
        server = await loop.create_server(asyncio.Protocol, None, 0, family=socket.AF_INET)
        assert server.sockets[0].getsockname()[0] == "0.0.0.0"
        server.close()
        server = await loop.create_server(asyncio.Protocol, "", 0, family=socket.AF_INET)
        assert server.sockets[0].getsockname()[0] == "0.0.0.0"
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_server_bind_error(loop):
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(OSError) as ei:
            await loop.create_server(asyncio.Protocol, "127.0.0.1", port,
                                     reuse_address=False)
        server.close()
        return ei.value

    exc = run(loop, main())
    assert exc.errno == 98
    assert "error while attempting to bind on address" in str(exc)


def test_reuse_port_two_servers(loop):
    async def main():
        s1 = await loop.create_server(lambda: Recorder(loop, echo=True), "127.0.0.1", 0,
                                      reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        s2 = await loop.create_server(lambda: Recorder(loop, echo=True), "127.0.0.1", port,
                                      reuse_port=True)
        assert s2.sockets[0].getsockname()[1] == port
        for _ in range(4):
            tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
            tr.write(b"r")
            await cl.wait_bytes(1)
            tr.close()
            await cl.lost
        s1.close()
        s2.close()
        await s1.wait_closed()
        await s2.wait_closed()

    run(loop, main())


def test_protocol_factory_error(loop):
    async def main():
        def factory():
            raise RuntimeError("factory")

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        exc = await cl.lost  # the server side is closed
        assert exc is None or isinstance(exc, ConnectionResetError)
        server.close()
        await server.wait_closed()

    run(loop, main())
    if loop.kind == "tornado_c":
        # asyncio reports this only in debug mode; tornado_c always does
        assert [e["message"] for e in loop.errors] == [
            "Error on transport creation for incoming connection"]


# ---------------------------------------------------- many connections


def test_many_connections_no_fd_leak(loop):
    n = 300

    async def main():
        server, port, protos = await _echo_server(loop)
        before = fd_count()
        clients = []
        for i in range(n):
            clients.append(await loop.create_connection(lambda: Recorder(loop),
                                                        "127.0.0.1", port))
        for i, (tr, cl) in enumerate(clients):
            tr.write(b"%d" % i)
        for i, (tr, cl) in enumerate(clients):
            await cl.wait_bytes(len(b"%d" % i))
        assert fd_count() >= before + 2 * n
        for i, (tr, cl) in enumerate(clients):
            if i % 3 == 0:
                tr.abort()
            else:
                tr.close()
        await asyncio.gather(*(cl.lost for tr, cl in clients))
        await asyncio.gather(*(p.lost for p in protos))
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        return before

    warm_up(loop)
    gc.collect()
    base = fd_count()
    run(loop, main())
    gc.collect()
    assert fd_count() == base


def test_loop_closed_with_live_transports(loop):
    base = fd_count()  # the loop's own fds are released by close() too

    async def main():
        server, port, protos = await _echo_server(loop)
        conns = []
        for _ in range(5):
            conns.append(await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port))
        conns[0][0].write(b"x" * (4 << 20))
        await asyncio.sleep(0.01)
        return server, conns

    server, conns = run(loop, main())
    loop.close()
    del server, conns
    gc.collect()
    assert fd_count() <= base


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_debug_handle_counts():
    from tornado_c import _core

    if not _core.DEBUG_BUILD:
        pytest.skip("needs TORNADO_C_DEBUG=1 build")
    before = _core._debug_counts()
    loop = new_loop("tornado_c")
    idle = _core._debug_counts()
    counts = {}

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        await asyncio.sleep(0.01)
        protos[0].transport.pause_reading()
        tr.write(b"x" * (32 << 20))
        counts["busy"] = _core._debug_counts()
        tr.close()
        protos[0].transport.resume_reading()
        await cl.lost
        await protos[0].lost
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        counts["done"] = _core._debug_counts()

    run(loop, main())
    # listener + 2 transports open, one write in flight
    assert counts["busy"]["handles"] == idle["handles"] + 3
    assert counts["busy"]["requests"] >= idle["requests"] + 1
    assert counts["done"] == idle

    # loop closed with live transports and a live server
    async def live():
        server, port, protos = await _echo_server(loop)
        conns = [await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
                 for _ in range(3)]
        conns[0][0].write(b"y" * (8 << 20))
        await asyncio.sleep(0.01)

    run(loop, live())
    loop.close()
    assert _core._debug_counts() == before


# ---------------------------------------------------------- more edges


def test_connect_cancelled_no_leak(loop):
    async def main():
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        fillers = []
        # fill the accept queue: further SYNs are dropped, connect() hangs
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(ls.getsockname())
            fillers.append(c)
        await asyncio.sleep(0.05)
        before = fd_count()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                loop.create_connection(asyncio.Protocol, *ls.getsockname()), 0.2)
        await asyncio.sleep(0.05)
        assert fd_count() == before
        for c in fillers:
            c.close()
        ls.close()

    warm_up(loop)
    run(loop, main())


def test_factory_error_on_connect_no_leak(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        await asyncio.sleep(0.01)
        before = fd_count()

        def factory():
            raise LookupError("factory")

        with pytest.raises(LookupError):
            await loop.create_connection(factory, "127.0.0.1", port)
        await asyncio.sleep(0.05)
        assert fd_count() <= before + 1  # the server side may still be open
        server.close()
        await server.wait_closed()

    warm_up(loop)
    run(loop, main())


def test_writelines_many_chunks(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        chunks = [b"%03d," % i for i in range(200)]
        tr.writelines(chunks)
        tr.writelines(chunks[:3])
        tr.writelines([])
        expected = b"".join(chunks) + b"".join(chunks[:3])
        await cl.wait_bytes(len(expected))
        assert bytes(cl.data) == expected
        with pytest.raises(TypeError):
            tr.writelines(["str"])
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())


def test_exception_in_eof_received(loop):
    async def main():
        class Bad(Recorder):
            def eof_received(self):
                raise ValueError("eof")

        server, port, protos = await _echo_server(loop, lambda: Bad(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write_eof()
        exc = await protos[0].lost
        assert isinstance(exc, ValueError)
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())
    assert [e["message"] for e in loop.errors] == [
        "Fatal error: protocol.eof_received() call failed."]


def test_wait_closed_with_active_connection(loop):
    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        await asyncio.sleep(0.01)
        waiter = asyncio.ensure_future(server.wait_closed())
        await asyncio.sleep(0.01)
        assert not waiter.done()  # waits for close() and the connections
        server.close()
        await asyncio.sleep(0.01)
        assert not waiter.done()
        tr.close()
        await cl.lost
        await asyncio.wait_for(waiter, 5)

    run(loop, main())


def test_write_many_small_while_congested(loop):
    async def main():
        server, port, protos = await _echo_server(loop, lambda: Recorder(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        await asyncio.sleep(0.01)
        protos[0].transport.pause_reading()
        tr.write(b"A" * (8 << 20))
        parts = [bytes([65 + i % 26]) * 1000 for i in range(3000)]
        for p in parts:
            tr.write(p)
        protos[0].transport.resume_reading()
        total = (8 << 20) + 3000 * 1000
        await protos[0].wait_bytes(total)
        assert bytes(protos[0].data[8 << 20:]) == b"".join(parts)
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())


def test_abstract_unix_socket(loop):
    async def main():
        name = "\0tornado_c_test_%d" % os.getpid()
        server = await loop.create_unix_server(lambda: Recorder(loop, echo=True), name)
        tr, cl = await loop.create_unix_connection(lambda: Recorder(loop), name)
        tr.write(b"abstract")
        await cl.wait_bytes(8)
        assert tr.get_extra_info("peername") == name.encode()
        tr.close()
        await cl.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_close_in_eof_received_and_abort_in_pause_writing(loop):
    async def main():
        class CloseOnEof(Recorder):
            def eof_received(self):
                super().eof_received()
                self.transport.close()
                return True  # ignored: already closing

        server, port, protos = await _echo_server(loop, lambda: CloseOnEof(loop))
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.write_eof()
        await protos[0].lost
        await cl.lost
        assert protos[0].events == ["made", "eof", ("lost", None)]

        class AbortOnPause(Recorder):
            def pause_writing(self):
                self.events.append("pause")
                self.transport.abort()

        tr, cl = await loop.create_connection(lambda: AbortOnPause(loop), "127.0.0.1", port)
        await asyncio.sleep(0.01)
        protos[-1].transport.pause_reading()
        tr.set_write_buffer_limits(high=10)
        for _ in range(100):
            tr.write(b"w" * 65536)
            if tr.is_closing():
                break
        assert await cl.lost is None
        assert cl.events == ["made", "pause", ("lost", None)]
        server.close()

    run(loop, main())
    assert loop.errors == []


def test_create_on_closed_loop(loop):
    ls = _raw_listener()
    loop.close()
    coro = loop.create_connection(asyncio.Protocol, *ls.getsockname())
    with pytest.raises(RuntimeError):
        coro.send(None)
    coro.close()
    ls.close()


def test_loops_in_two_threads():
    import threading

    results = {}

    def worker(idx):
        lp = new_loop("tornado_c")

        async def main():
            server, port, protos = await _echo_server(lp)
            tr, cl = await lp.create_connection(lambda: Recorder(lp), "127.0.0.1", port)
            payload = bytes([idx]) * 3000000
            for i in range(0, len(payload), 50000):
                tr.write(payload[i:i + 50000])
                await asyncio.sleep(0)
            await cl.wait_bytes(len(payload))
            results[idx] = bytes(cl.data) == payload
            tr.close()
            await cl.lost
            server.close()
            await server.wait_closed()

        lp.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
        lp.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT + 5)
    assert results == {1: True, 2: True}


def test_exception_in_connection_made(loop):
    async def main():
        class Bad(Recorder):
            def connection_made(self, transport):
                super().connection_made(transport)
                raise ArithmeticError("made")

        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Bad(loop), "127.0.0.1", port)
        tr.write(b"still works")
        await cl.wait_bytes(11)  # reading started anyway, as in asyncio
        tr.close()
        await cl.lost
        server.close()

    run(loop, main())
    assert len(loop.errors) == 1
    assert isinstance(loop.errors[0]["exception"], ArithmeticError)
    assert loop.errors[0]["message"].startswith("Exception in callback")


def test_debug_mode_log_messages(loop, caplog):
    import logging

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "127.0.0.1", port)
        tr.pause_reading()
        tr.resume_reading()
        await asyncio.sleep(0.01)
        protos[0].transport.close()
        await cl.lost
        server.close()
        await server.wait_closed()

    loop.set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(loop, main())
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(m.endswith(" pauses reading") for m in msgs), msgs
    assert any(m.endswith(" resumes reading") for m in msgs), msgs
    assert any(m.endswith(" received EOF") for m in msgs), msgs



# --------------------------------------------------------- happy eyeballs


def _blackhole_listener():
    """A listener whose accept queue is full: a further connect() to it
    neither succeeds nor fails for a while (Linux drops the SYNs)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(lsock.getsockname())
        except BlockingIOError:
            pass
        fillers.append(c)
    return lsock, fillers


def test_happy_eyeballs(loop):
    async def main():
        hole, fillers = _blackhole_listener()
        server, port, protos = await _echo_server(loop)
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", hole.getsockname()),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        async def getaddrinfo(host, port_, **kw):
            return list(infos)

        loop.getaddrinfo = getaddrinfo
        t0 = loop.time()
        tr, cl = await loop.create_connection(lambda: Recorder(loop), "example.invalid", 80,
                                              happy_eyeballs_delay=0.2)
        dt = loop.time() - t0
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        tr.write(b"he")
        await cl.wait_bytes(2)
        tr.close()
        await cl.lost
        # without happy eyeballs the first address is waited for
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.create_connection(
                asyncio.Protocol, "example.invalid", 80), 0.5)
        # every address failing: the errors are combined as without it
        infos[:] = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 1)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 1))]
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, "example.invalid", 80,
                                         happy_eyeballs_delay=0.05, interleave=2)
        del loop.getaddrinfo
        server.close()
        await server.wait_closed()
        hole.close()
        for c in fillers:
            c.close()
        return dt

    dt = run(loop, main())
    assert 0.15 <= dt < 2
    assert loop.errors == []


def test_happy_eyeballs_no_fd_leak(loop):
    warm_up(loop)

    async def main():
        hole, fillers = _blackhole_listener()
        server, port, protos = await _echo_server(loop)

        async def getaddrinfo(host, port_, **kw):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", hole.getsockname()),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

        loop.getaddrinfo = getaddrinfo
        before = fd_count()
        for _ in range(5):
            tr, cl = await loop.create_connection(lambda: Recorder(loop), "example.invalid",
                                                  80, happy_eyeballs_delay=0.01)
            tr.close()
            await cl.lost
        await asyncio.sleep(0.05)
        gc.collect()
        after = fd_count()
        del loop.getaddrinfo
        server.close()
        await server.wait_closed()
        hole.close()
        for c in fillers:
            c.close()
        return before, after

    before, after = run(loop, main())
    assert after == before
