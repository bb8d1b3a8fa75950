"""Datagram endpoints (UDP, Unix datagram sockets): every behavioural test
runs on the stdlib asyncio loop and on the tornado_c loop; a difference is a
bug.  Results that depend on the Python version (empty datagrams, the write
buffer's header bytes, the reuse_address argument) are asserted per version,
on both loops."""

import asyncio
import gc
import logging
import os
import socket
import sys
import tempfile

import pytest

from test_loop_tcp import fd_count, loop, run  # noqa: F401  (the both-loops fixture)

PY313 = sys.version_info >= (3, 13)


def has_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class DProto(asyncio.DatagramProtocol):
    """Records every protocol call; echo=True sends each datagram back."""

    def __init__(self, loop, echo=False):
        self.loop = loop
        self.events = []
        self.received = []
        self.errors = []
        self.echo = echo
        self.transport = None
        self.lost = loop.create_future()
        self._waiters = []

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def datagram_received(self, data, addr):
        assert isinstance(data, bytes)
        self.received.append((data, addr))
        if self.echo:
            self.transport.sendto(data, addr)
        self._check()

    def error_received(self, exc):
        self.events.append(("error", type(exc).__name__))
        self.errors.append(exc)
        self._check()

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(("lost", type(exc).__name__ if exc else None))
        if not self.lost.done():
            self.lost.set_result(exc)

    async def wait(self, n=1, errors=0):
        fut = self.loop.create_future()
        self._waiters.append((n, errors, fut))
        self._check()
        await fut

    def _check(self):
        for item in list(self._waiters):
            n, errors, fut = item
            if len(self.received) >= n and len(self.errors) >= errors and not fut.done():
                fut.set_result(None)
                self._waiters.remove(item)


async def echo_server(loop, local_addr=("127.0.0.1", 0), **kw):
    tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop, echo=True),
                                                 local_addr=local_addr, **kw)
    return tr, pr, tr.get_extra_info("sockname")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ basics


def test_echo_connected_client(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=saddr)
        assert pr.events == ["made"]
        assert tr.get_protocol() is pr
        assert isinstance(tr, asyncio.BaseTransport)
        assert isinstance(tr, asyncio.Transport)  # the stdlib's is, on every version
        if PY313:
            assert isinstance(tr, asyncio.DatagramTransport)
        caddr = tr.get_extra_info("sockname")
        assert tr.get_extra_info("peername") == saddr
        assert str_.get_extra_info("peername") is None
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_DGRAM
        assert sock.getsockname() == caddr
        tr.sendto(b"one")
        tr.sendto(bytearray(b"two"), saddr)
        tr.sendto(memoryview(b"three"))
        await pr.wait(3)
        assert pr.received == [(b"one", saddr), (b"two", saddr), (b"three", saddr)]
        assert spr.received == [(b"one", caddr), (b"two", caddr), (b"three", caddr)]
        assert tr.get_write_buffer_size() == 0
        assert not tr.is_closing()
        tr.close()
        assert tr.is_closing()
        assert await pr.lost is None
        assert pr.events == ["made", ("lost", None)]
        assert tr.get_extra_info("peername") == saddr  # kept after close
        str_.close()
        await spr.lost

    run(loop, main())
    assert loop.errors == []


def test_unconnected_sendto_addresses(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                     local_addr=("127.0.0.1", 0))
        assert tr.get_extra_info("peername") is None
        tr.sendto(b"a", saddr)
        tr.sendto(b"b", ("localhost", saddr[1]))  # resolved by the socket
        tr.sendto(b"c", addr=saddr)
        await pr.wait(3)
        assert [d for d, _ in pr.received] == [b"a", b"b", b"c"]
        assert {a for _, a in pr.received} == {saddr}
        tr.close()
        str_.close()
        await pr.lost
        await spr.lost

    run(loop, main())
    assert loop.errors == []


def test_many_datagrams_in_order(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=saddr)
        for i in range(200):
            tr.sendto(b"%d" % i)
            if i % 20 == 19:
                await pr.wait(i + 1)
        await pr.wait(200)
        assert [d for d, _ in pr.received] == [b"%d" % i for i in range(200)]
        tr.close()
        str_.close()
        await pr.lost

    run(loop, main())
    assert loop.errors == []


def test_large_datagram_and_empty_datagram(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=saddr)
        big = os.urandom(65507)  # the largest IPv4 UDP payload
        tr.sendto(b"")
        tr.sendto(big)
        await pr.wait(2 if PY313 else 1)
        if PY313:
            # 3.13 sends empty datagrams
            assert pr.received == [(b"", saddr), (big, saddr)]
        else:
            # 3.11/3.12: sendto(b"") does nothing
            assert pr.received == [(big, saddr)]
        tr.close()
        str_.close()
        await pr.lost

    run(loop, main())
    assert loop.errors == []


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6")
def test_ipv6(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop, local_addr=("::1", 0))
        assert len(saddr) == 4
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                     local_addr=("::1", 0),
                                                     family=socket.AF_INET6)
        tr.sendto(b"v6", saddr)
        tr.sendto(b"v6-2tuple", saddr[:2])
        await pr.wait(2)
        assert pr.received == [(b"v6", saddr), (b"v6-2tuple", saddr)]
        assert spr.received[0][1] == tr.get_extra_info("sockname")
        tr.close()
        str_.close()
        await pr.lost

    run(loop, main())
    assert loop.errors == []


def test_remote_addr_hostname(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(
            lambda: DProto(loop), remote_addr=("localhost", saddr[1]), family=socket.AF_INET)
        tr.sendto(b"hi")
        await pr.wait(1)
        assert pr.received == [(b"hi", saddr)]
        tr.close()
        str_.close()
        await pr.lost

    run(loop, main())
    assert loop.errors == []


# ----------------------------------------------------------------- errors


def test_icmp_refused_goes_to_error_received(loop):
    async def main():
        port = free_udp_port()
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                     remote_addr=("127.0.0.1", port))
        tr.sendto(b"nobody")
        # the ICMP port-unreachable arrives as a pending socket error; the
        # next receive (or send) reports it
        for _ in range(100):
            if pr.errors:
                break
            await asyncio.sleep(0.01)
        assert [type(e) for e in pr.errors] == [ConnectionRefusedError]
        assert not tr.is_closing()
        # the transport keeps working
        tr.sendto(b"again")
        for _ in range(100):
            if len(pr.errors) == 2:
                break
            await asyncio.sleep(0.01)
        assert [type(e) for e in pr.errors] == [ConnectionRefusedError] * 2
        tr.close()
        await pr.lost
        assert pr.events == ["made", ("error", "ConnectionRefusedError"),
                             ("error", "ConnectionRefusedError"), ("lost", None)]

    run(loop, main())
    assert loop.errors == []


def test_sendto_argument_errors(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=saddr)
        with pytest.raises(TypeError) as ei:
            tr.sendto("text")
        assert str(ei.value) == "data argument must be a bytes-like object, not 'str'"
        with pytest.raises(ValueError) as ei:
            tr.sendto(b"x", ("127.0.0.1", saddr[1] + 1 if saddr[1] < 65535 else 1))
        assert str(ei.value) == "Invalid address: must be None or %s" % (saddr,)
        tr.sendto(b"x", saddr)  # the connected address itself is fine
        await pr.wait(1)
        tr.close()
        str_.close()
        await pr.lost

    run(loop, main())
    assert loop.errors == []


def test_sendto_without_address_is_fatal(loop):
    # asyncio: sock.sendto(data, None) raises TypeError, a fatal write error
    async def main():
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                     local_addr=("127.0.0.1", 0))
        tr.sendto(b"where to?")
        exc = await pr.lost
        assert isinstance(exc, TypeError)
        assert tr.is_closing()

    run(loop, main())
    assert len(loop.errors) == 1
    assert loop.errors[0]["message"] == "Fatal write error on datagram transport"
    assert isinstance(loop.errors[0]["exception"], TypeError)


def test_sendto_bad_address_types(loop):
    async def main():
        results = []
        for addr in (("127.0.0.1", 70000), ("127.0.0.1",), ("no-such-host.invalid", 1)):
            tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                         local_addr=("127.0.0.1", 0))
            tr.sendto(b"x", addr)
            await asyncio.sleep(0.01)
            if pr.errors:
                results.append(("error_received", type(pr.errors[0]).__name__))
            if pr.lost.done():
                results.append(("lost", type(pr.lost.result()).__name__))
            tr.close()
            await pr.lost
        return results

    results = run(loop, main())
    assert results[0] == ("lost", "OverflowError")
    assert results[1] == ("lost", "TypeError")
    assert results[2] == ("error_received", "gaierror")
    assert [e["exception"].__class__.__name__ for e in loop.errors] == [
        "OverflowError", "TypeError"]


def test_exception_in_datagram_received_keeps_transport(loop):
    class Bad(DProto):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            if data == b"boom":
                raise RuntimeError("boom")

    async def main():
        tr, pr = await loop.create_datagram_endpoint(lambda: Bad(loop),
                                                     local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"boom", addr)
            await pr.wait(1)
            s.sendto(b"after", addr)
            await pr.wait(2)
        assert [d for d, _ in pr.received] == [b"boom", b"after"]
        assert not tr.is_closing()
        tr.close()
        await pr.lost

    run(loop, main())
    assert len(loop.errors) == 1
    assert isinstance(loop.errors[0]["exception"], RuntimeError)


def test_error_received_exception_propagates_from_sendto(loop):
    class Raises(DProto):
        def error_received(self, exc):
            super().error_received(exc)
            raise KeyError("from error_received")

    async def main():
        port = free_udp_port()
        tr, pr = await loop.create_datagram_endpoint(lambda: Raises(loop),
                                                     remote_addr=("127.0.0.1", port))
        tr.pause_reading()  # the pending error must come through sendto()
        tr.sendto(b"nobody")
        await asyncio.sleep(0.05)
        with pytest.raises(KeyError):
            tr.sendto(b"again")
        tr.close()
        await pr.lost

    run(loop, main())


def test_endpoint_argument_validation(loop):
    async def main():
        f = asyncio.DatagramProtocol
        with pytest.raises(ValueError, match="unexpected address family"):
            await loop.create_datagram_endpoint(f)
        with pytest.raises(TypeError, match="2-tuple is expected"):
            await loop.create_datagram_endpoint(f, local_addr="127.0.0.1")
        with pytest.raises(TypeError, match="2-tuple is expected"):
            await loop.create_datagram_endpoint(f, remote_addr=("127.0.0.1", 1, 2))
        with pytest.raises(TypeError, match="string is expected"):
            await loop.create_datagram_endpoint(f, local_addr=("a", 1), family=socket.AF_UNIX)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            with pytest.raises(ValueError, match="socket was expected|Socket was expected"):
                await loop.create_datagram_endpoint(f, sock=s)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            with pytest.raises(ValueError) as ei:
                await loop.create_datagram_endpoint(f, sock=s, local_addr=("127.0.0.1", 0),
                                                    reuse_port=True)
            assert str(ei.value) == (
                "socket modifier keyword arguments can not be used when sock is specified. "
                "(local_addr=('127.0.0.1', 0), reuse_port=True)")
        if sys.version_info >= (3, 11):
            with pytest.raises(TypeError):
                await loop.create_datagram_endpoint(f, local_addr=("127.0.0.1", 0),
                                                    reuse_address=True)
        with pytest.raises(OSError):
            # an address of the wrong family for the socket
            await loop.create_datagram_endpoint(f, local_addr=("::1", 0),
                                                family=socket.AF_INET)

    run(loop, main())


def test_bind_error(loop):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            with pytest.raises(OSError) as ei:
                await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                    local_addr=s.getsockname())
            return ei.value.errno

    import errno

    assert run(loop, main()) == errno.EADDRINUSE


# ---------------------------------------------------------- socket options


def test_sock_argument_and_options(loop):
    async def main():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop, echo=True), sock=s)
        assert tr.get_extra_info("sockname") == s.getsockname()
        assert not s.getblocking()
        ctr, cpr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                       remote_addr=s.getsockname())
        ctr.sendto(b"ping")
        await cpr.wait(1)
        assert cpr.received == [(b"ping", s.getsockname())]
        ctr.close()
        tr.close()
        await pr.lost
        assert s.fileno() == -1  # the transport closed the socket it was given

        tr, pr = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), allow_broadcast=True,
            reuse_port=True)
        sock = tr.get_extra_info("socket")
        opts = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST),
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
        tr.close()
        await asyncio.sleep(0)
        tr, pr = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        sock = tr.get_extra_info("socket")
        plain = (sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST),
                 sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT),
                 sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))
        tr.close()
        await asyncio.sleep(0)
        return opts, plain

    opts, plain = run(loop, main())
    assert bool(opts[0]) and bool(opts[1]) and not opts[2]
    # no SO_REUSEADDR ever (another process could take the port's datagrams)
    assert plain == (0, 0, 0)


def test_allow_broadcast_with_remote_addr_does_not_connect(loop):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(
            lambda: DProto(loop), remote_addr=saddr, allow_broadcast=True)
        assert tr.get_extra_info("peername") is None
        tr.sendto(b"b")  # goes to remote_addr
        await pr.wait(1)
        assert pr.received == [(b"b", saddr)]
        with pytest.raises(ValueError):
            tr.sendto(b"x", ("127.0.0.2", 9))
        tr.close()
        str_.close()
        await pr.lost

    run(loop, main())


# ------------------------------------------------------------ unix datagram


def test_unix_datagram(loop):
    async def main():
        d = tempfile.mkdtemp()
        spath = os.path.join(d, "server.sock")
        cpath = os.path.join(d, "client.sock")
        str_, spr, saddr = await echo_server(loop, local_addr=spath, family=socket.AF_UNIX)
        assert saddr == spath
        # named client, connected
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), local_addr=cpath,
                                                     remote_addr=spath, family=socket.AF_UNIX)
        assert tr.get_extra_info("peername") == spath
        tr.sendto(b"unix")
        await pr.wait(1)
        assert pr.received == [(b"unix", spath)]
        assert spr.received == [(b"unix", cpath)]
        tr.close()
        await pr.lost
        # an unnamed sender: the server sees None as its address, and echoing
        # to None is a fatal TypeError (sock.sendto(data, None)), as asyncio
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"anon", spath)
            await spr.wait(2)
        assert spr.received[1] == (b"anon", None)
        assert isinstance(await spr.lost, TypeError)
        # a stale socket file is replaced
        str2, spr2, _ = await echo_server(loop, local_addr=spath, family=socket.AF_UNIX)
        str2.close()
        await spr2.lost

    run(loop, main())
    assert [(e["message"], type(e["exception"])) for e in loop.errors] == [
        ("Fatal write error on datagram transport", TypeError)]


def test_unix_datagram_flow_control_and_close_drains(loop):
    async def main():
        d = tempfile.mkdtemp()
        path = os.path.join(d, "slow.sock")
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        peer.bind(path)
        peer.setblocking(False)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=path,
                                                     family=socket.AF_UNIX)
        tr.set_write_buffer_limits(high=4000, low=1000)
        assert tr.get_write_buffer_limits() == (1000, 4000)
        # the peer does not read: its queue fills up, then sends would block
        n = 0
        while tr.get_write_buffer_size() == 0 and n < 10000:
            tr.sendto(b"%05d" % n + b"." * 995)
            n += 1
        assert 0 < n < 10000
        queued_after_first = tr.get_write_buffer_size()
        for _ in range(10):
            tr.sendto(b"%05d" % n + b"." * 995)
            n += 1
        assert pr.events[-1] == "pause"
        size = tr.get_write_buffer_size()
        tr.close()
        assert tr.is_closing()
        await asyncio.sleep(0.05)
        assert not pr.lost.done()  # close() waits for the queue
        got = []
        while len(got) < n:
            try:
                got.append(peer.recv(2000))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await pr.lost
        peer.close()
        return n, queued_after_first, size, got, pr.events

    n, first, size, got, events = run(loop, main())
    assert [g[:5] for g in got] == [b"%05d" % i for i in range(n)]
    assert first == 1000 + (8 if PY313 else 0)
    assert size == 11 * first
    assert events == ["made", "pause", "resume", ("lost", None)]


def test_abort_drops_queue(loop):
    async def main():
        d = tempfile.mkdtemp()
        path = os.path.join(d, "slow.sock")
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        peer.bind(path)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=path,
                                                     family=socket.AF_UNIX)
        while tr.get_write_buffer_size() == 0:
            tr.sendto(b"x" * 100)
        size = tr.get_write_buffer_size()
        tr.abort()
        # the queue is dropped; asyncio does not reset its byte count
        assert tr.get_write_buffer_size() == size
        assert await pr.lost is None
        peer.close()
        # sends after the connection is lost are dropped (a warning after 5)
        for _ in range(6):
            tr.sendto(b"late")
        return pr.events

    events = run(loop, main())
    assert events == ["made", ("lost", None)]


def test_sends_after_close_warn(loop, caplog):
    async def main():
        str_, spr, saddr = await echo_server(loop)
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop), remote_addr=saddr)
        tr.close()
        await pr.lost
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(7):
                tr.sendto(b"late")
        str_.close()
        await spr.lost

    run(loop, main())
    warnings = [r for r in caplog.records if r.getMessage() == "socket.send() raised exception."]
    assert len(warnings) == 3  # from the 5th dropped send on


# -------------------------------------------------------- reading control


def test_pause_resume_reading(loop):
    async def main():
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                     local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"while paused", addr)
            await asyncio.sleep(0.05)
            assert pr.received == []
            tr.resume_reading()
            await pr.wait(1)
        assert pr.received[0][0] == b"while paused"
        tr.close()
        assert not tr.is_reading()
        await pr.lost

    run(loop, main())
    assert loop.errors == []


def test_close_in_connection_made_and_in_datagram_received(loop):
    class CloseEarly(DProto):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.close()

    class CloseOnData(DProto):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            self.transport.close()

    async def main():
        tr, pr = await loop.create_datagram_endpoint(lambda: CloseEarly(loop),
                                                     local_addr=("127.0.0.1", 0))
        await pr.lost
        assert pr.events == ["made", ("lost", None)]
        tr, pr = await loop.create_datagram_endpoint(lambda: CloseOnData(loop),
                                                     local_addr=("127.0.0.1", 0))
        addr = tr.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(5):
                s.sendto(b"%d" % i, addr)
            await pr.lost
        assert [d for d, _ in pr.received] == [b"0"]

    run(loop, main())
    assert loop.errors == []


# ------------------------------------------------------------- resources


def test_no_fd_leak_and_loop_close_releases(loop):
    async def cycle():
        for _ in range(20):
            tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                         local_addr=("127.0.0.1", 0))
            tr.close()
            await pr.lost

    run(loop, cycle())
    gc.collect()
    before = fd_count()
    run(loop, cycle())
    gc.collect()
    assert fd_count() == before

    async def leave_open():
        tr, pr = await loop.create_datagram_endpoint(lambda: DProto(loop),
                                                     local_addr=("127.0.0.1", 0))
        return tr

    tr = run(loop, leave_open())
    loop.close()
    del tr
    gc.collect()
    assert fd_count() <= before


def test_endpoint_waiter_cancelled_closes(loop):
    async def main():
        task = loop.create_task(loop.create_datagram_endpoint(
            lambda: DProto(loop), local_addr=("127.0.0.1", 0)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.01)

    before = fd_count()
    run(loop, main())
    gc.collect()
    assert fd_count() <= before


def test_datagram_waits_for_callbacks_already_ready(loop):
    # asyncio queues the read behind the callbacks that are ready: a task
    # created right after sendto() runs before the datagram arrives
    class P(asyncio.DatagramProtocol):
        fut = None

        def datagram_received(self, data, addr):
            self.fut.set_result(data)

    async def wait(p):
        p.fut = loop.create_future()
        return await p.fut

    async def main():
        t1, p1 = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
        t2, p2 = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
        a2 = t2.get_extra_info("sockname")
        got = []
        for i in range(20):
            t1.sendto(b"%d" % i, a2)
            got.append(await loop.create_task(wait(p2)))
        t1.close()
        t2.close()
        return got

    assert run(loop, main()) == [b"%d" % i for i in range(20)]
    assert loop.errors == []
