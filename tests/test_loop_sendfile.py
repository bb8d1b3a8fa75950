"""loop.sendfile(transport, ...) and loop.sock_sendfile(sock, ...), checked
against stdlib asyncio: every test runs on both loops (the `loop` fixture)."""
import asyncio
import io
import os
import socket
import tempfile

import pytest

from tornado_c.loop import EventLoop

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4


@pytest.fixture
def datafile():
    with tempfile.TemporaryFile() as f:
        f.write(DATA)
        f.seek(0)
        yield f


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


class Sink(asyncio.Protocol):
    """Server side: collects everything, optionally closes after n bytes."""

    def __init__(self, loop, close_after=0):
        self.data = bytearray()
        self.close_after = close_after
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        if self.close_after and len(self.data) >= self.close_after:
            self.transport.close()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


class Client(asyncio.Protocol):
    def __init__(self, loop):
        self.calls = []
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def pause_writing(self):
        self.calls.append("pause")

    def resume_writing(self):
        self.calls.append("resume")

    def connection_lost(self, exc):
        self.calls.append("lost")
        if not self.done.done():
            self.done.set_result(None)


async def connect(loop, close_after=0, unix_path=None, small_buffers=True):
    sink = Sink(loop, close_after)
    if unix_path:
        server = await loop.create_unix_server(lambda: sink, unix_path)
        tr, client = await loop.create_connection(lambda: Client(loop), sock=_unix(unix_path))
    else:
        server = await loop.create_server(lambda: sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port))
        if small_buffers:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        sock.setblocking(False)
        tr, client = await loop.create_connection(lambda: Client(loop), sock=sock)
    while not hasattr(sink, "transport"):
        await asyncio.sleep(0.001)
    return server, sink, tr, client


def _unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.setblocking(False)
    return s


async def finish(server, sink, tr):
    tr.close()
    await sink.done
    server.close()
    await server.wait_closed()


# --------------------------------------------------------- loop.sendfile


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_whole_file(loop, datafile, fallback):
    async def main():
        server, sink, tr, client = await connect(loop)
        n = await loop.sendfile(tr, datafile, fallback=fallback)
        assert n == len(DATA)
        assert datafile.tell() == len(DATA)
        await finish(server, sink, tr)
        assert sink.data == DATA

    run(loop, main())


def test_sendfile_offset_count_and_data_around(loop, datafile):
    async def main():
        server, sink, tr, client = await connect(loop)
        tr.write(b"<pre>" * 50000)  # queued behind a small send buffer
        n = await loop.sendfile(tr, datafile, 1000, 300000)
        assert n == 300000 and datafile.tell() == 301000
        tr.write(b"<post>")
        assert tr.is_reading()
        await finish(server, sink, tr)
        assert sink.data == b"<pre>" * 50000 + DATA[1000:301000] + b"<post>"

    run(loop, main())


def test_sendfile_over_unix_socket(loop, datafile, tmp_path):
    async def main():
        server, sink, tr, client = await connect(loop, unix_path=str(tmp_path / "s"))
        assert await loop.sendfile(tr, datafile, 10) == len(DATA) - 10
        await finish(server, sink, tr)
        assert sink.data == DATA[10:]

    run(loop, main())


def test_write_during_sendfile_is_refused(loop, datafile):
    async def main():
        server, sink, tr, client = await connect(loop)
        task = asyncio.ensure_future(loop.sendfile(tr, datafile))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            tr.write(b"data")
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            tr.writelines([b"data"])
        assert await task == len(DATA)
        tr.write(b"after")  # allowed again
        await finish(server, sink, tr)
        assert sink.data == DATA + b"after"

    run(loop, main())


def test_sendfile_errors(loop, datafile):
    async def main():
        server, sink, tr, client = await connect(loop)
        for bad, exc in (({"count": 0}, ValueError), ({"count": -1}, ValueError),
                         ({"count": 1.5}, TypeError), ({"offset": -1}, ValueError),
                         ({"offset": "1"}, TypeError)):
            with pytest.raises(exc):
                await loop.sendfile(tr, datafile, **bad)
        with tempfile.TemporaryFile("w+") as text:
            with pytest.raises(ValueError, match="binary mode"):
                await loop.sendfile(tr, text)
        assert datafile.tell() == 0
        # a file os.sendfile cannot read: fallback, or the error without it
        buf = io.BytesIO(b"from memory")
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sendfile(tr, buf, fallback=False)
        assert await loop.sendfile(tr, buf, 5) == 6 and buf.tell() == 11
        # a transport that cannot do sendfile at all
        r, w = os.pipe()
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, open(w, "wb", 0))
        with pytest.raises(RuntimeError, match="not supported"):
            await loop.sendfile(wt, datafile)
        wt.close()
        os.close(r)
        await finish(server, sink, tr)
        assert sink.data == b"memory"
        with pytest.raises(RuntimeError, match="Transport is closing"):
            await loop.sendfile(tr, datafile)

    run(loop, main())


def test_sendfile_peer_closes_in_the_middle(loop, datafile):
    async def main():
        server, sink, tr, client = await connect(loop, close_after=1024)
        sink_sock = sink.transport.get_extra_info("socket")
        sink_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        with pytest.raises(ConnectionError):
            await loop.sendfile(tr, datafile)
        assert 1024 <= datafile.tell() < len(DATA)
        await client.done
        assert tr.is_closing()
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_fallback_resumes_a_paused_protocol(loop):
    async def main():
        server, sink, tr, client = await connect(loop)
        sink.transport.pause_reading()
        tr.set_write_buffer_limits(high=4096)
        tr.write(b"x" * 500000)
        assert client.calls == ["pause"]
        sink.transport.resume_reading()
        n = await loop.sendfile(tr, io.BytesIO(b"y" * 100000))
        assert n == 100000
        # the real protocol was paused when sendfile took over: it is told
        assert client.calls == ["pause", "resume"]
        await finish(server, sink, tr)
        assert sink.data == b"x" * 500000 + b"y" * 100000

    run(loop, main())


# ----------------------------------------------------- loop.sock_sendfile


async def sock_pair(loop):
    sink = Sink(loop)
    server = await loop.create_server(lambda: sink, "127.0.0.1", 0)
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    await loop.sock_connect(sock, server.sockets[0].getsockname())
    while not hasattr(sink, "transport"):
        await asyncio.sleep(0.001)
    return server, sink, sock


async def sock_finish(server, sink, sock):
    sock.close()
    await sink.done
    server.close()
    await server.wait_closed()


def test_sock_sendfile(loop, datafile):
    async def main():
        server, sink, sock = await sock_pair(loop)
        assert await loop.sock_sendfile(sock, datafile, 7, 100000, fallback=False) == 100000
        assert datafile.tell() == 100007
        await loop.sock_sendall(sock, b"|")
        assert await loop.sock_sendfile(sock, datafile) == len(DATA)
        await loop.sock_sendall(sock, b"|")
        assert await loop.sock_sendfile(sock, io.BytesIO(b"memory"), 1) == 5
        with tempfile.TemporaryFile() as empty:
            assert await loop.sock_sendfile(sock, empty) == 0
        await sock_finish(server, sink, sock)
        assert sink.data == DATA[7:100007] + b"|" + DATA + b"|" + b"emory"

    run(loop, main())


def test_sock_sendfile_errors(loop, datafile):
    async def main():
        server, sink, sock = await sock_pair(loop)
        with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
            await loop.sock_sendfile(sock, io.BytesIO(b"x"), fallback=False)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(sock, object(), fallback=False)

        class BadFd:
            def fileno(self):
                return -1

        with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
            await loop.sock_sendfile(sock, BadFd(), fallback=False)
        with pytest.raises(ValueError):
            await loop.sock_sendfile(sock, datafile, count=0)
        with pytest.raises(TypeError):
            await loop.sock_sendfile(sock, datafile, offset=None)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setblocking(False)
        with pytest.raises(ValueError, match="SOCK_STREAM"):
            await loop.sock_sendfile(udp, datafile)
        udp.close()
        blocking = socket.socket()
        loop.set_debug(True)  # asyncio checks the timeout in debug mode only
        with pytest.raises(ValueError, match="non-blocking"):
            await loop.sock_sendfile(blocking, datafile)
        loop.set_debug(False)
        blocking.close()
        await sock_finish(server, sink, sock)

    run(loop, main())


def test_sock_sendfile_os_errors(loop, datafile, monkeypatch):
    real = os.sendfile

    async def main():
        server, sink, sock = await sock_pair(loop)
        # refused on the first call: falls back to read + send
        monkeypatch.setattr(os, "sendfile", lambda *a: (_ for _ in ()).throw(OSError(22, "no")))
        assert await loop.sock_sendfile(sock, datafile, 0, 1000) == 1000
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(sock, datafile, 0, 1000, fallback=False)
        # fails after the first piece: the error, file position after what was sent
        calls = []

        def flaky(out_fd, in_fd, offset, count):
            calls.append(offset)
            if len(calls) == 1:
                return real(out_fd, in_fd, offset, min(count, 3000))
            raise OSError(5, "io error")

        monkeypatch.setattr(os, "sendfile", flaky)
        with pytest.raises(OSError) as info:
            await loop.sock_sendfile(sock, datafile, 2000)
        assert not isinstance(info.value, asyncio.SendfileNotAvailableError)
        # (the position of the fd: the buffered file object read ahead in the
        # fallback above)
        assert os.lseek(datafile.fileno(), 0, os.SEEK_CUR) == 5000
        monkeypatch.setattr(os, "sendfile", real)
        await sock_finish(server, sink, sock)
        assert sink.data == DATA[:1000] + DATA[2000:5000]

    run(loop, main())


def test_sock_sendfile_cancelled(loop, datafile):
    async def main():
        server, sink, sock = await sock_pair(loop)
        sink.transport.pause_reading()  # the socket buffers fill up
        task = asyncio.ensure_future(loop.sock_sendfile(sock, datafile))
        for _ in range(20):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        pos = os.lseek(datafile.fileno(), 0, os.SEEK_CUR)
        # the socket is not watched any more: sock_sendall works on it
        sink.transport.resume_reading()
        await loop.sock_sendall(sock, b"!")
        await sock_finish(server, sink, sock)
        sent = bytes(sink.data[:-1])
        assert sink.data[-1:] == b"!" and 0 < len(sent) < len(DATA)
        assert DATA.startswith(sent)
        if isinstance(loop, EventLoop):
            # tornado_c moves the file position past what was sent, as on
            # errors; asyncio leaves it where it was when cancelled
            assert pos == len(sent)

    run(loop, main())


def test_sock_sendfile_large(loop):
    big = os.urandom(8 * 1024 * 1024)

    async def main():
        server, sink, sock = await sock_pair(loop)
        with tempfile.TemporaryFile() as f:
            f.write(big)
            f.seek(0)
            assert await loop.sock_sendfile(sock, f) == len(big)
        await sock_finish(server, sink, sock)
        assert bytes(sink.data) == big

    run(loop, main())
