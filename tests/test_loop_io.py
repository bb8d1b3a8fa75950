"""add_reader/add_writer and the sock_* helpers, on stdlib asyncio and tornado_c."""
import asyncio
import errno
import fcntl
import os
import socket
import tempfile

import pytest

from tornado_c.loop import EventLoop

from conftest import free_port


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def run_until(loop, pred, timeout=5.0):
    deadline = loop.time() + timeout

    def check():
        if pred() or loop.time() > deadline:
            loop.stop()
        else:
            loop.call_later(0.001, check)

    loop.call_soon(check)
    loop.run_forever()
    assert pred(), "condition not reached in %s s" % timeout


def is_blocking(fd):
    return not (fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)


def test_reader_fires_on_data(loop, pair):
    a, b = pair
    got = []

    def on_read():
        got.append(a.recv(100))

    loop.add_reader(a.fileno(), on_read)
    b.send(b"hello")
    run_until(loop, lambda: got)
    assert got == [b"hello"]
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_reader(a.fileno()) is False
    b.send(b"more")
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert got == [b"hello"]


def test_fd_stays_open_and_blocking(loop, pair):
    a, b = pair
    assert is_blocking(a.fileno())
    loop.add_reader(a.fileno(), lambda: None)
    loop.add_writer(a.fileno(), lambda: None)
    assert is_blocking(a.fileno())
    loop.remove_reader(a.fileno())
    loop.remove_writer(a.fileno())
    assert is_blocking(a.fileno())
    b.send(b"x")
    assert a.recv(1) == b"x"


def test_reader_and_writer_on_same_fd(loop, pair):
    a, b = pair
    events = []
    loop.add_writer(a.fileno(), lambda: events.append("w"))
    loop.add_reader(a.fileno(), lambda: events.append("r"))
    b.send(b"x")
    run_until(loop, lambda: "r" in events and "w" in events)
    assert loop.remove_writer(a.fileno()) is True
    events.clear()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert "w" not in events and "r" in events  # level-triggered, still readable
    assert loop.remove_reader(a.fileno()) is True
    assert loop.remove_writer(a.fileno()) is False


def test_file_object_is_accepted(loop, pair):
    a, b = pair
    got = []
    loop.add_reader(a, lambda: got.append(a.recv(10)))
    b.send(b"ok")
    run_until(loop, lambda: got)
    assert loop.remove_reader(a) is True


def test_replacing_reader_cancels_old_handle(loop, pair):
    a, b = pair
    got = []
    loop.add_reader(a.fileno(), lambda: got.append("old"))
    loop.add_reader(a.fileno(), lambda: got.append(a.recv(10)))
    b.send(b"new")
    run_until(loop, lambda: got)
    assert got == [b"new"]
    loop.remove_reader(a.fileno())


def test_remove_in_same_iteration_skips_callback(loop):
    # both fds are ready in the same poll; whichever reader runs first
    # removes the other, whose already-queued callback must then not run
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    got = []
    try:
        loop.add_reader(a.fileno(), lambda: (got.append("a"), loop.remove_reader(c.fileno())))
        loop.add_reader(c.fileno(), lambda: (got.append("c"), loop.remove_reader(a.fileno())))
        b.send(b"x")
        d.send(b"x")
        import time

        time.sleep(0.01)
        run_until(loop, lambda: len(got) >= 3)
        assert len(set(got)) == 1
        loop.remove_reader(a.fileno())
        loop.remove_reader(c.fileno())
    finally:
        for s_ in (a, b, c, d):
            s_.close()


def test_closed_fd_number_reused(loop):
    # register a reader, close the fd without removing it, reuse the number
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, lambda: None)
    a.close()
    b.close()
    c, d = socket.socketpair()
    try:
        got = []
        if c.fileno() != fd:
            c, d = d, c
        if c.fileno() != fd:
            pytest.skip("fd number not reused")
        if isinstance(loop, EventLoop):
            loop.add_reader(fd, lambda: got.append(c.recv(10)))
        else:
            # asyncio's selector keeps the stale key: it must be removed first
            loop.remove_reader(fd)
            loop.add_reader(fd, lambda: got.append(c.recv(10)))
        d.send(b"reused")
        run_until(loop, lambda: got)
        assert got == [b"reused"]
        loop.remove_reader(fd)
    finally:
        c.close()
        d.close()


def test_closed_fd_between_add_and_poll(loop):
    # libuv's own watchers abort() the process here; the loop must not
    a, b = socket.socketpair()
    loop.add_reader(a.fileno(), lambda: None)
    loop.add_writer(b.fileno(), lambda: None)
    a.close()
    b.close()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()


def test_bad_fds(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        loop.add_reader(r, lambda: None)
    assert info.value.errno == errno.EBADF
    with pytest.raises(ValueError):
        loop.add_reader(-1, lambda: None)
    with tempfile.TemporaryFile() as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f.fileno(), lambda: None)
    assert loop.remove_reader(r) is False


def test_reader_exception_goes_to_handler(loop, pair):
    a, b = pair
    ctxs = []
    loop.set_exception_handler(lambda lp, ctx: ctxs.append(ctx))

    def bad():
        a.recv(10)
        raise OSError("reader failed")

    loop.add_reader(a.fileno(), bad)
    b.send(b"x")
    run_until(loop, lambda: ctxs)
    assert isinstance(ctxs[0]["exception"], OSError)
    loop.remove_reader(a.fileno())


def test_hangup_wakes_reader(loop, pair):
    a, b = pair
    got = []
    loop.add_reader(a.fileno(), lambda: got.append(a.recv(10)))
    b.close()
    run_until(loop, lambda: got)
    assert got[0] == b""
    loop.remove_reader(a.fileno())


def test_sock_recv_sendall(loop, pair):
    a, b = pair
    a.setblocking(False)
    b.setblocking(False)
    payload = os.urandom(3 * 1024 * 1024)

    async def reader():
        chunks = []
        n = 0
        while n < len(payload):
            data = await loop.sock_recv(a, 65536)
            if not data:
                break
            chunks.append(data)
            n += len(data)
        return b"".join(chunks)

    async def main():
        task = asyncio.ensure_future(reader())
        await loop.sock_sendall(b, payload)
        return await task

    assert loop.run_until_complete(main()) == payload


def test_sock_recv_into(loop, pair):
    a, b = pair
    a.setblocking(False)
    b.setblocking(False)
    buf = bytearray(10)

    async def main():
        loop.call_later(0.01, b.send, b"abc")
        return await loop.sock_recv_into(a, buf)

    assert loop.run_until_complete(main()) == 3
    assert bytes(buf[:3]) == b"abc"


def test_sock_accept_connect(loop):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.setblocking(False)
    cli = socket.socket()
    cli.setblocking(False)

    async def main():
        accept = asyncio.ensure_future(loop.sock_accept(srv))
        await loop.sock_connect(cli, srv.getsockname())
        conn, addr = await accept
        assert conn.gettimeout() == 0
        await loop.sock_sendall(cli, b"ping")
        data = await loop.sock_recv(conn, 10)
        conn.close()
        return addr, data

    try:
        addr, data = loop.run_until_complete(main())
        assert data == b"ping"
        assert addr == cli.getsockname()
    finally:
        cli.close()
        srv.close()


def test_sock_connect_refused(loop):
    port = free_port()
    cli = socket.socket()
    cli.setblocking(False)
    try:
        with pytest.raises(ConnectionRefusedError):
            loop.run_until_complete(loop.sock_connect(cli, ("127.0.0.1", port)))
    finally:
        cli.close()


def test_sock_connect_resolves_names(loop):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.socket(socket.AF_INET)
    cli.setblocking(False)
    try:
        loop.run_until_complete(loop.sock_connect(cli, ("localhost", srv.getsockname()[1])))
        assert cli.getpeername() == srv.getsockname()
    finally:
        cli.close()
        srv.close()


def test_sock_ops_require_nonblocking(loop, pair):
    a, b = pair
    loop.set_debug(True)  # stdlib asyncio only checks in debug mode
    with pytest.raises(ValueError, match="non-blocking"):
        loop.run_until_complete(loop.sock_recv(a, 1))
    with pytest.raises(ValueError, match="non-blocking"):
        loop.run_until_complete(loop.sock_sendall(a, b"x"))
    loop.set_debug(False)


def test_sock_recv_cancel_removes_reader(loop, pair):
    a, b = pair
    a.setblocking(False)

    async def main():
        t = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    loop.run_until_complete(main())
    # nothing left watching the fd: a new reader can be added
    assert loop.remove_reader(a.fileno()) is False


def test_sock_sendfile(loop, pair):
    a, b = pair
    a.setblocking(False)
    b.setblocking(False)
    data = os.urandom(700_000)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()

        async def reader(n):
            got = bytearray()
            while len(got) < n:
                chunk = await loop.sock_recv(a, 65536)
                if not chunk:
                    break
                got += chunk
            return bytes(got)

        async def main():
            r = asyncio.ensure_future(reader(len(data) - 100))
            sent = await loop.sock_sendfile(b, f, 100)
            return sent, await r, f.tell()

        sent, got, pos = loop.run_until_complete(main())
        assert sent == len(data) - 100
        assert got == data[100:]
        assert pos == len(data)
        with pytest.raises(ValueError):
            loop.run_until_complete(loop.sock_sendfile(b, f, -1))


def test_poll_modes_switch_with_libuv_handles():
    # with only the loop's own handles it blocks in its own epoll set; a
    # libuv-based server switches it to polling through libuv and back
    lp = EventLoop()
    a, b = socket.socketpair()
    got = []
    try:
        lp.add_reader(a.fileno(), lambda: got.append(a.recv(100)))

        def ping(data):
            b.send(data)

        lp.call_later(0.01, ping, b"1")
        run_until(lp, lambda: len(got) == 1)
        assert lp._counts()["own_poll"] == 1
        if not hasattr(lp, "create_server"):
            return

        async def with_server():
            srv = await lp.create_server(asyncio.Protocol, "127.0.0.1", 0)
            await asyncio.sleep(0.01)
            mode_with_server = lp._counts()["own_poll"]
            lp.call_later(0.005, ping, b"2")
            deadline = lp.time() + 5
            while len(got) < 2 and lp.time() < deadline:
                await asyncio.sleep(0.005)
            srv.close()
            await srv.wait_closed()
            return mode_with_server

        assert lp.run_until_complete(with_server()) == 0
        assert got == [b"1", b"2"]
        lp.call_later(0.01, ping, b"3")
        run_until(lp, lambda: len(got) == 3)
        assert lp._counts()["own_poll"] == 1
        # a threadsafe wakeup reaches a loop blocked in its own epoll set
        import threading

        threading.Timer(0.05, lambda: lp.call_soon_threadsafe(lp.stop)).start()
        guard = lp.call_later(5, lp.stop)
        t0 = lp.time()
        lp.run_forever()
        guard.cancel()
        assert lp.time() - t0 < 1
    finally:
        lp.remove_reader(a.fileno())
        lp.close()
        a.close()
        b.close()
