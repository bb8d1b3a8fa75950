"""tornado_c.iostream.IOStream: own tests.

The behaviour tests run twice (parametrised): with upstream's
tornado.iostream.IOStream on asyncio's default loop, and with tornado_c's
IOStream on the tornado_c loop -- both must behave the same.  The C consumer
API (stream.h) is exercised through _core._test_stream_consumer, a small
test-only consumer written in C (csrc/stream/test_consumer.c), part of the
test build only (TORNADO_C_TEST=1): those tests are skipped on a normal build.
"""

import asyncio
import gc
import logging
import os
import socket

import pytest

import tornado.iostream
from tornado.iostream import (StreamBufferFullError, StreamClosedError,
                              UnsatisfiableReadError)

import tornado_c.loop
from tornado_c import _core
from tornado_c import iostream as tci

from conftest import free_port, needs_test_api

KINDS = ["upstream", "tornado_c"]


def new_loop(kind):
    if kind == "tornado_c":
        return tornado_c.loop.new_event_loop()
    return asyncio.new_event_loop()


def stream_class(kind):
    return tci.IOStream if kind == "tornado_c" else tornado.iostream.IOStream


def run(kind, coro_fn, timeout=10):
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(), timeout))
    finally:
        loop.close()
        gc.collect()


async def pair(kind, family=socket.AF_INET, **kwargs):
    """Two connected streams (server side, client side)."""
    cls = stream_class(kind)
    if family == socket.AF_UNIX:
        a, b = socket.socketpair()
        return cls(a, **kwargs), cls(b, **kwargs)
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    client = cls(socket.socket(), **kwargs)
    await client.connect(lst.getsockname())
    conn, _ = lst.accept()
    lst.close()
    server = cls(conn, **kwargs)
    return server, client


def check_kind(kind, *streams):
    for s in streams:
        if kind == "tornado_c":
            assert isinstance(s, _core.Stream)
        else:
            assert not isinstance(s, _core.Stream)
        assert isinstance(s, tornado.iostream.IOStream)


# ------------------------------------------------------------ both kinds


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX])
def test_reads_of_every_kind(kind, family):
    async def main():
        s, c = await pair(kind, family)
        check_kind(kind, s, c)
        c.write(b"GET / HTTP/1.1\r\n")
        assert await s.read_until(b"\r\n") == b"GET / HTTP/1.1\r\n"
        c.write(b"abc123def")
        assert await s.read_until_regex(rb"\d+") == b"abc123"
        assert await s.read_bytes(3) == b"def"
        c.write(b"xy")
        assert await s.read_bytes(10, partial=True) == b"xy"
        buf = bytearray(4)
        c.write(b"12345")
        assert await s.read_into(buf) == 4
        assert buf == b"1234"
        buf2 = bytearray(10)
        assert await s.read_into(buf2, partial=True) == 1
        assert buf2[:1] == b"5"
        # a delimiter split over many writes
        for ch in b"hello world!":
            c.write(bytes([ch]))
            await asyncio.sleep(0)
        assert await s.read_until(b"world!") == b"hello world!"
        c.write(b"tail")
        c.close()
        assert await s.read_until_close() == b"tail"
        assert s.closed()
        s.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_reads_satisfied_from_buffer_after_close(kind):
    async def main():
        s, c = await pair(kind)
        await c.write(b"#line1\nline2\nrest")
        await asyncio.sleep(0.05)
        assert await s.read_bytes(1) == b"#"  # the rest is now buffered
        s.close()
        assert s.closed()
        assert await s.read_until(b"\n") == b"line1\n"
        assert await s.read_bytes(6) == b"line2\n"
        assert await s.read_until_close() == b"rest"
        with pytest.raises(StreamClosedError):
            await s.read_bytes(1)
        c.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_already_reading(kind):
    async def main():
        s, c = await pair(kind)
        fut = s.read_bytes(5)
        assert s.reading()
        with pytest.raises(AssertionError, match="Already reading"):
            s.read_until(b"\n")
        c.write(b"12345")
        assert await fut == b"12345"
        assert not s.reading()
        s.close()
        c.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_unsatisfiable_read(kind, caplog):
    async def main():
        s, c = await pair(kind)
        c.write(b"x" * 100)
        fut = s.read_until(b"\n", max_bytes=10)
        with pytest.raises(StreamClosedError) as ei:
            await fut
        assert isinstance(ei.value.real_error, UnsatisfiableReadError)
        assert isinstance(s.error, UnsatisfiableReadError)
        assert s.closed()
        c.close()
    with caplog.at_level(logging.INFO, logger="tornado.general"):
        run(kind, main)
    assert any("Unsatisfiable read, closing connection" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
def test_max_buffer_size(kind, caplog):
    async def main():
        s, c = await pair(kind, max_buffer_size=1000, read_chunk_size=100)
        fut = s.read_until(b"\n")
        c.write(b"x" * 5000)
        with pytest.raises(StreamClosedError) as ei:
            await fut
        assert isinstance(ei.value.real_error, StreamBufferFullError)
        assert s.closed()
        c.close()
    with caplog.at_level(logging.INFO, logger="tornado.general"):
        run(kind, main)
    assert any("Reached maximum read buffer size" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
def test_satisfied_read_does_not_count_against_max_buffer(kind):
    async def main():
        s, c = await pair(kind, max_buffer_size=1000, read_chunk_size=100)
        await c.write(b"a" * 500 + b"\n" + b"b" * 4499)
        await asyncio.sleep(0.05)
        assert await s.read_until(b"\n") == b"a" * 500 + b"\n"
        # the rest overflows inside the inline read: raised at once
        with pytest.raises(StreamBufferFullError):
            s.read_until(b"\n")
        assert s.closed()
        assert isinstance(s.error, StreamBufferFullError)
        c.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_max_write_buffer_size(kind):
    async def main():
        s, c = await pair(kind, max_write_buffer_size=100000)
        # nobody reads s: the kernel buffers fill up, then ours
        with pytest.raises(StreamBufferFullError):
            for _ in range(10000):
                c.write(b"x" * 50000)
        s.close()
        c.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_write_futures_and_writing(kind):
    async def main():
        s, c = await pair(kind)
        data = b"y" * (8 * 1024 * 1024)
        f1 = c.write(data)
        f2 = c.write(b"")
        f3 = c.write(memoryview(b"end"))
        assert c.writing()
        assert not f1.done() and not f2.done()
        got = await s.read_bytes(len(data) + 3)
        assert got == data + b"end"
        await f1
        await f2
        await f3
        assert not c.writing()
        # a write on a closed stream raises at once
        c.close()
        with pytest.raises(StreamClosedError):
            c.write(b"z")
        s.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_pending_futures_fail_on_close(kind):
    async def main():
        s, c = await pair(kind)
        rf = s.read_until(b"never sent")
        wf = c.write(b"q" * (16 * 1024 * 1024))
        c.close()
        with pytest.raises(StreamClosedError):
            await wf
        with pytest.raises(StreamClosedError):
            await rf
        s.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_close_callback_runs_once_from_the_loop(kind):
    async def main():
        s, c = await pair(kind)
        calls = []
        s.set_close_callback(lambda: calls.append(1))
        s.close()
        assert calls == []  # never inside close()
        s.close()
        await asyncio.sleep(0.01)
        assert calls == [1]
        c.close()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_close_exc_info(kind):
    async def main():
        s, c = await pair(kind)
        try:
            raise ValueError("boom")
        except ValueError:
            s.close(exc_info=True)
        assert isinstance(s.error, ValueError)
        err = KeyError("k")
        c.close(exc_info=err)
        assert c.error is err
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_close_callback_after_keepalive_reads(kind):
    # the close is noticed after reads that emptied the buffer (regression)
    async def main():
        s, c = await pair(kind)
        closed = asyncio.Event()
        c.set_close_callback(closed.set)
        for _ in range(2):
            s.write(b"head\r\n\r\nbody!")
            assert await c.read_until(b"\r\n\r\n") == b"head\r\n\r\n"
            assert await c.read_bytes(5) == b"body!"
        s.close()
        await asyncio.wait_for(closed.wait(), 5)
        assert c.closed()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_peer_eof_is_seen_after_the_callbacks_ready_before_the_poll(kind):
    # asyncio runs the reader that finds a peer's EOF after the callbacks
    # that were already ready; one of them may still answer a client that
    # sent its request and half-closed (the C stream used to close inside
    # the poll, so that answer was lost).
    async def main():
        s, c = await pair(kind)
        c.socket.shutdown(socket.SHUT_WR)
        await asyncio.sleep(0.05)   # the FIN is waiting at s; s is not reading
        loop = asyncio.get_running_loop()
        seen = loop.create_future()

        def answer():
            seen.set_result(s.closed())
            if not s.closed():
                s.write(b"answer")

        def watch():
            s.set_close_callback(lambda: None)   # now s listens for a close
            loop.call_soon(answer)

        loop.call_soon(watch)
        assert await seen is False
        assert await c.read_until_close() == b"answer"
        assert s.closed()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_connect_refused(kind):
    async def main():
        port = free_port()
        c = stream_class(kind)(socket.socket())
        with pytest.raises(StreamClosedError):
            await c.connect(("127.0.0.1", port))
        assert isinstance(c.error, ConnectionRefusedError)
        assert c.closed()
    run(kind, main)


@pytest.mark.parametrize("kind", KINDS)
def test_peer_reset_is_real_error(kind):
    async def main():
        s, c = await pair(kind)
        fut = s.read_bytes(10)
        sock = c.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        with pytest.raises(StreamClosedError) as ei:
            await fut
        assert isinstance(ei.value.real_error, ConnectionResetError)
    run(kind, main)


def test_fallback_on_other_loops():
    async def main():
        a, b = socket.socketpair()
        s = tci.IOStream(a)
        assert type(s) is tornado.iostream.IOStream
        s.close()
        b.close()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_upstream_private_machinery_is_not_reachable():
    async def main():
        s, c = await pair("tornado_c")
        for name in ("_handle_events", "_read_to_buffer", "_try_inline_read",
                     "read_from_fd", "write_to_fd", "_handle_write"):
            with pytest.raises(NotImplementedError):
                getattr(s, name)()
        s.close()
        c.close()
    run("tornado_c", main)


def test_start_tls_hands_over_to_sslstream():
    import ssl
    import os
    import tornado.test

    certdir = os.path.dirname(tornado.test.__file__)

    async def main():
        s, c = await pair("tornado_c")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.path.join(certdir, "test.crt"), os.path.join(certdir, "test.key"))
        cctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        sf = s.start_tls(True, ctx)
        cf = c.start_tls(False, cctx)
        ss, cs = await asyncio.gather(sf, cf)
        assert isinstance(ss, tornado.iostream.SSLIOStream)
        assert s.socket is None and s.closed()
        await cs.write(b"secret\n")
        assert await ss.read_until(b"\n") == b"secret\n"
        ss.close()
        cs.close()
    run("tornado_c", main)


def test_start_tls_not_idle():
    async def main():
        s, c = await pair("tornado_c")
        s.read_bytes(1)
        with pytest.raises(ValueError, match="not idle"):
            s.start_tls(True)
        s.close()
        c.close()
    run("tornado_c", main)


# ------------------------------------------------------------ C consumer


async def consumer_pair(**kwargs):
    s, c = await pair("tornado_c", **kwargs)
    log = []
    cons = _core._test_stream_consumer(s, log)
    return s, c, cons, log


async def until(pred, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


def data_of(log):
    return [e[1] for e in log if e[0] == "data"]


@needs_test_api()
def test_consumer_peek_consume():
    async def main():
        s, c, cons, log = await consumer_pair()
        c.write(b"a\nb\npart")
        await until(lambda: len(data_of(log)) == 2)
        assert data_of(log) == [b"a", b"b"]
        assert cons.peek() == b"part"
        assert s._read_buffer_size == 4
        c.write(b"ial\n")
        await until(lambda: len(data_of(log)) == 3)
        assert data_of(log)[2] == b"partial"
        assert cons.peek() == b""
        # Python reads are refused while a consumer owns the input
        with pytest.raises(RuntimeError):
            s.read_bytes(1)
        cons.close()
        assert log[-1] == ("close", None)
        c.close()
    run("tornado_c", main)


@needs_test_api()
def test_consumer_pause_resume_with_buffered_data():
    async def main():
        s, c, cons, log = await consumer_pair()
        c.write(b"one\npause\ntwo\nthree\n")
        await until(lambda: b"pause" in data_of(log))
        await asyncio.sleep(0.02)
        assert data_of(log) == [b"one", b"pause"]
        assert cons.peek() == b"two\nthree\n"
        cons.resume()
        # delivered from the loop, never inside resume()
        assert data_of(log) == [b"one", b"pause"]
        await until(lambda: len(data_of(log)) == 4)
        assert data_of(log)[2:] == [b"two", b"three"]
        # still reading after the resume
        c.write(b"four\n")
        await until(lambda: len(data_of(log)) == 5)
        cons.close()
        c.close()
    run("tornado_c", main)


@needs_test_api()
def test_consumer_write_and_drain():
    async def main():
        s, c, cons, log = await consumer_pair()
        c.write(b"echo hi\n")
        assert await c.read_until(b"\n") == b"hi\n"
        assert not [e for e in log if e[0] == "drain"]  # nothing was pending
        c.write(b"big 8000000\n")
        await until(lambda: any(e[0] == "pending" for e in log))
        pending = [e for e in log if e[0] == "pending"][0][1]
        assert pending > 0
        got = await c.read_bytes(8000000)
        assert got == b"x" * 8000000
        await until(lambda: any(e[0] == "drain" for e in log))
        assert [e for e in log if e[0] == "drain"] == [("drain", 0)]
        cons.close()
        c.close()
    run("tornado_c", main)


@needs_test_api()
def test_consumer_close_from_on_data():
    async def main():
        s, c, cons, log = await consumer_pair()
        c.write(b"x\nclose\nignored\n")
        assert await c.read_until_close() == b""
        assert s.closed()
        assert data_of(log) == [b"x", b"close"]
        assert log[-1] == ("close", None)
        assert not cons.attached()
    run("tornado_c", main)


@needs_test_api()
def test_consumer_detach_then_python_reads_leftover():
    async def main():
        s, c, cons, log = await consumer_pair()
        c.write(b"first\ndetach\nleft over\nand more")
        await until(lambda: ("detached",) in log)
        assert not cons.attached()
        assert not s._has_consumer
        assert await s.read_until(b"\n") == b"left over\n"
        c.write(b" data\n")
        assert await s.read_until(b"\n") == b"and more data\n"
        # and back to Python writes
        await s.write(b"bye\n")
        assert await c.read_until(b"\n") == b"bye\n"
        s.close()
        c.close()
    run("tornado_c", main)


@needs_test_api()
def test_consumer_max_buffer_size():
    async def main():
        s, c, cons, log = await consumer_pair(max_buffer_size=1000, read_chunk_size=100)
        c.write(b"y" * 5000)  # no newline: the consumer never consumes
        await until(lambda: log and log[-1][0] == "close")
        assert isinstance(log[-1][1], StreamBufferFullError)
        assert s.closed()
        assert isinstance(s.error, StreamBufferFullError)
        c.close()
    run("tornado_c", main)


@needs_test_api()
def test_consumer_peer_close_and_reset():
    async def main():
        s, c, cons, log = await consumer_pair()
        c.close()
        await until(lambda: log and log[-1][0] == "close")
        assert log[-1] == ("close", None)

        s, c, cons, log = await consumer_pair()
        c.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        await until(lambda: log and log[-1][0] == "close")
        assert isinstance(log[-1][1], ConnectionResetError)
    run("tornado_c", main)


@needs_test_api()
def test_consumer_dropped_while_attached():
    async def main():
        s, c, cons, log = await consumer_pair()
        del cons
        gc.collect()
        assert not s._has_consumer
        c.write(b"abc\n")
        assert await s.read_until(b"\n") == b"abc\n"
        s.close()
        c.close()
    run("tornado_c", main)


@needs_test_api()
def test_stream_from_fd():
    async def main():
        a, b = socket.socketpair()
        loop = asyncio.get_running_loop()
        s = _core._test_stream_from_fd(loop, a.detach(), 0, 0)
        assert type(s) is tci.IOStream
        assert s.max_buffer_size == 100 * 1024 * 1024
        assert s.read_chunk_size == 65536
        other = tci.IOStream(b)
        await other.write(b"ping\n")
        assert await s.read_until(b"\n") == b"ping\n"
        assert s.socket is not None and s.fileno() is s.socket
        s.close()
        assert await other.read_until_close() == b""
        with pytest.raises(OSError):
            _core._test_stream_from_fd(loop, 1 << 20, 0, 0)
    run("tornado_c", main)


def test_streams_left_open_when_the_loop_closes():
    async def main():
        s, c = await pair("tornado_c")
        s.read_bytes(1)
        return s, c
    s, c = run("tornado_c", main)
    assert s.closed() and c.closed()


@pytest.mark.parametrize("kind", KINDS)
def test_unreferenced_idle_stream_closes_its_connection(kind):
    # upstream: an IOStream that never waited for the loop is not registered
    # anywhere, and collecting it closes the socket
    import weakref

    async def main():
        s, c = await pair(kind)
        check_kind(kind, s, c)
        s.write(b"bye")  # written at once: nothing waits for the loop
        ref = weakref.ref(s)
        del s
        gc.collect()
        assert await c.read_until_close() == b"bye"
        for _ in range(50):
            gc.collect()
            if ref() is None:
                break
            await asyncio.sleep(0.01)
        assert ref() is None
        c.close()
    run(kind, main)


def test_unreferenced_stream_after_its_loop_closed():
    # the loop is gone when the idle stream is collected: the handle and fd
    # are still released, at once
    holder = {}

    async def main():
        s, c = await pair("tornado_c")
        holder["s"] = s
        c.close()
    run("tornado_c", main)
    s = holder.pop("s")
    assert not s.closed()  # never waited for the loop: the loop left it
    fd = s.socket.fileno()
    del s
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_unreferenced_stream_collected_by_another_thread():
    # the cycle collector runs in whichever thread allocates: an idle stream
    # in a cycle, collected by the main thread while its loop runs in
    # another one, is closed from the loop's thread
    import threading
    import weakref

    box = {}
    ready = threading.Event()
    finished = threading.Event()

    def loop_thread():
        async def main():
            s, c = await pair("tornado_c")
            s.cycle = s  # only the cycle collector can free it
            box["ref"] = weakref.ref(s)
            del s
            ready.set()
            box["eof"] = await asyncio.wait_for(c.read_until_close(), 10)
            for _ in range(200):
                if box["ref"]() is None:
                    break
                await asyncio.sleep(0.01)
            box["freed"] = box["ref"]() is None
            c.close()
        try:
            run("tornado_c", main)
        except BaseException as e:  # pragma: no cover - reported below
            box["error"] = e
        finished.set()

    gc.disable()  # the main thread's gc.collect() below is the one that runs
    try:
        t = threading.Thread(target=loop_thread)
        t.start()
        assert ready.wait(10)
        while not finished.is_set():
            gc.collect()
            finished.wait(0.02)
        t.join(10)
    finally:
        gc.enable()
    assert "error" not in box, box.get("error")
    assert box["eof"] == b""
    assert box["freed"]


def test_bad_input_raises_cleanly():
    async def main():
        s, c = await pair("tornado_c")
        with pytest.raises(TypeError):
            s.read_until(None)
        with pytest.raises(TypeError):
            s.read_until("text")
        with pytest.raises(TypeError):
            c.write("text")
        with pytest.raises(TypeError):
            c.write(12)
        with pytest.raises(TypeError):
            s.max_buffer_size = "x"
        with pytest.raises(TypeError):
            s.set_close_callback()
        s.read_chunk_size = -5
        assert s.read_chunk_size == 1
        s.max_write_buffer_size = None
        assert s.max_write_buffer_size is None
        c.set_nodelay(None)
        # still usable after all that
        c.write(b"ok\n")
        assert await s.read_until(b"\n") == b"ok\n"
        # read_into needs a writable buffer; the read is not left pending
        with pytest.raises(BufferError):
            s.read_into(b"immutable")
        assert not s.reading()
        # as upstream, a bad count or pattern leaves the read pending
        with pytest.raises(AssertionError):
            s.read_bytes("x")
        s.close()
        c.close(exc_info=object())  # not an exception: no error recorded
        assert c.error is None
        with pytest.raises(StreamClosedError):
            c.write(b"late")
    run("tornado_c", main)


@pytest.mark.skipif(not _core.DEBUG_BUILD, reason="not a TC_DEBUG build")
def test_debug_handle_counts_return_to_zero():
    gc.collect()
    base = _core._debug_counts()
    test_reads_of_every_kind("tornado_c", socket.AF_INET)
    test_consumer_write_and_drain()
    test_consumer_detach_then_python_reads_leftover()
    test_streams_left_open_when_the_loop_closes()
    test_connect_refused("tornado_c")
    test_start_tls_hands_over_to_sslstream()
    test_consumer_max_buffer_size()
    test_consumer_close_from_on_data()
    test_stream_from_fd()
    test_bad_input_raises_cleanly()
    test_unreferenced_idle_stream_closes_its_connection("tornado_c")
    test_unreferenced_stream_after_its_loop_closed()
    test_unreferenced_stream_collected_by_another_thread()
    gc.collect()
    assert _core._debug_counts() == base


@needs_test_api()
def test_two_loops_in_two_threads_keep_their_bytes():
    # the shared read buffer is per module: two loops reading at once in two
    # threads must never see each other's bytes
    import threading

    errors = []

    def worker(tag):
        async def main():
            s, c = await pair("tornado_c")
            log = []
            cons = _core._test_stream_consumer(s, log)
            for i in range(2000):
                msg = b"%s-%d-" % (tag, i) + tag * 1000
                c.write(b"echo " + msg + b"\n")
                got = await c.read_until(b"\n")
                if got != msg + b"\n":
                    errors.append((tag, i, got[:40]))
                    break
            cons.close()
            c.close()
        try:
            run("tornado_c", main)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in (b"A", b"B", b"C")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


# -- corking (what the C HTTP server turns on for its connections) ---------


def _recv_now(sock):
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


def test_cork_batches_writes_until_the_iteration_ends():
    """Corked writes stay queued (writing() is True, the peer has nothing)
    until the loop's callbacks are done, then leave in order, in one piece,
    and their futures resolve; the loop does not block with a batch due."""
    async def go():
        a, b = socket.socketpair()
        b.setblocking(False)
        s = tci.IOStream(a)
        s._set_cork(True)
        f1 = s.write(b"one ")
        f2 = s.write(b"two")
        assert s.writing() and not f1.done() and not f2.done()
        assert _recv_now(b) == b""
        await asyncio.sleep(0)  # one iteration
        assert not s.writing() and f1.done() and f2.done()
        assert _recv_now(b) == b"one two"
        # uncorked: tried at once, as before
        s._set_cork(False)
        f3 = s.write(b"three")
        assert not s.writing() and _recv_now(b) == b"three"
        await f3
        s.close()
        b.close()

    run("tornado_c", go)


def test_cork_big_write_sends_the_batch_first_and_close_flushes():
    async def go():
        a, b = socket.socketpair()
        b.setblocking(False)
        s = tci.IOStream(a)
        s._set_cork(True)
        s.write(b"head:")
        big = b"x" * (200 * 1024)  # past the batch limit: goes out at once
        fut = s.write(big)
        got = _recv_now(b)
        assert got.startswith(b"head:xxx")
        while not fut.done():
            got += _recv_now(b)
            await asyncio.sleep(0.001)
        got += _recv_now(b)
        assert got == b"head:" + big
        s.write(b"bye")
        s.close()  # the batch is tried before the handle closes
        await asyncio.sleep(0)
        assert _recv_now(b) == b"bye"
        b.close()

    run("tornado_c", go)


def test_cork_peer_gone_closes_with_the_error():
    async def go():
        a, b = socket.socketpair()
        s = tci.IOStream(a)
        s._set_cork(True)
        b.close()
        fut = s.write(b"x" * 1000)
        with pytest.raises(StreamClosedError):
            await fut
        assert s.closed()

    run("tornado_c", go)
