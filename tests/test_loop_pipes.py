"""Pipe and pty transports (connect_read_pipe, connect_write_pipe), checked
against stdlib asyncio: every test runs on both loops (the `loop` fixture)."""
import asyncio
import errno
import gc
import os
import socket
import tempfile
import warnings

import pytest



def run_briefly(loop, n=1):
    for _ in range(n):
        loop.call_soon(loop.stop)
        loop.run_forever()


class Recorder(asyncio.Protocol):
    """Records every protocol call in order."""

    def __init__(self, loop):
        self.calls = []
        self.data = bytearray()
        self.transport = None
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.calls.append("made")

    def data_received(self, data):
        self.data += data
        if not self.calls or self.calls[-1] != "data":
            self.calls.append("data")

    def eof_received(self):
        self.calls.append("eof")

    def pause_writing(self):
        self.calls.append("pause")

    def resume_writing(self):
        self.calls.append("resume")

    def connection_lost(self, exc):
        self.calls.append(("lost", type(exc).__name__ if exc else None))
        self.exc = exc
        if not self.done.done():
            self.done.set_result(None)


def pipe_files():
    r, w = os.pipe()
    return open(r, "rb", 0), open(w, "wb", 0)


async def open_pipe(loop, side):
    """A pipe and a Recorder connected to its `side` ("read" or "write")
    end: (rf, wf, transport, proto)."""
    rf, wf = pipe_files()
    proto = Recorder(loop)
    if side == "read":
        tr, pr = await loop.connect_read_pipe(lambda: proto, rf)
    else:
        tr, pr = await loop.connect_write_pipe(lambda: proto, wf)
    assert pr is proto
    return rf, wf, tr, proto


def run(loop, coro, timeout=10):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


# -------------------------------------------------------------- read side


def test_read_pipe_data_eof_then_connection_lost(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "read")
        assert proto.transport is tr
        assert tr.get_extra_info("pipe") is rf
        assert not tr.is_closing() and tr.is_reading()
        os.write(wf.fileno(), b"abc")
        os.write(wf.fileno(), b"def")
        wf.close()
        await proto.done
        assert bytes(proto.data) == b"abcdef"
        assert proto.calls == ["made", "data", "eof", ("lost", None)]
        assert tr.is_closing()
        assert rf.closed  # the transport closes the pipe after connection_lost
        return tr

    tr = run(loop, main())
    assert "closed" in repr(tr)


def test_read_pipe_closes_even_if_eof_received_returns_true(loop):
    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)
        proto.eof_received = lambda: proto.calls.append("eof") or True
        await loop.connect_read_pipe(lambda: proto, rf)
        wf.close()
        await proto.done
        assert proto.calls == ["made", "eof", ("lost", None)]

    run(loop, main())


def test_read_pipe_pause_and_resume_reading(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "read")
        tr.pause_reading()
        tr.pause_reading()  # no-op
        assert not tr.is_reading()
        os.write(wf.fileno(), b"x" * 100)
        for _ in range(5):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.resume_reading()
        tr.resume_reading()  # no-op
        assert tr.is_reading()
        while len(proto.data) < 100:
            await asyncio.sleep(0.001)
        wf.close()
        await proto.done

    run(loop, main())


def test_read_pipe_close_before_eof(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "read")
        tr.close()
        assert tr.is_closing() and not tr.is_reading()
        tr.close()  # idempotent
        os.write(wf.fileno(), b"late")
        await proto.done
        assert proto.calls == ["made", ("lost", None)]
        assert rf.closed
        wf.close()

    run(loop, main())


def test_read_pipe_large_data(loop):
    payload = os.urandom(3 * 1024 * 1024 + 7)

    async def main():
        rf, wf, _, proto = await open_pipe(loop, "read")
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, wf)
        wt.write(payload)
        wt.close()
        await proto.done
        assert bytes(proto.data) == payload

    run(loop, main())


def test_read_pipe_rejects_regular_file(loop):
    async def main():
        with tempfile.TemporaryFile() as f:
            with pytest.raises(ValueError, match="Pipe transport is for pipes/sockets only"):
                await loop.connect_read_pipe(asyncio.Protocol, f)

    run(loop, main())


def test_read_pipe_on_socket(loop):
    async def main():
        a, b = socket.socketpair()
        proto = Recorder(loop)
        tr, _ = await loop.connect_read_pipe(lambda: proto, a)
        b.sendall(b"over a socket")
        b.close()
        await proto.done
        assert bytes(proto.data) == b"over a socket"
        assert proto.calls[-2:] == ["eof", ("lost", None)]
        assert a.fileno() == -1

    run(loop, main())


def test_data_received_error_goes_to_exception_handler(loop):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        rf, wf = pipe_files()
        proto = Recorder(loop)

        def boom(data):
            raise ZeroDivisionError

        proto.data_received = boom
        tr, _ = await loop.connect_read_pipe(lambda: proto, rf)
        os.write(wf.fileno(), b"x")
        for _ in range(20):
            await asyncio.sleep(0.001)
            if errors:
                break
        tr.close()
        wf.close()
        await proto.done

    run(loop, main())
    assert isinstance(errors[0]["exception"], ZeroDivisionError)


def test_read_pty_output_and_eio_at_close(loop):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        master, slave = os.openpty()
        master_file = open(master, "rb", 0)
        proto = Recorder(loop)
        tr, _ = await loop.connect_read_pipe(lambda: proto, master_file)
        os.write(slave, b"typed on a terminal\n")
        while b"\n" not in proto.data:
            await asyncio.sleep(0.001)
        os.close(slave)
        await proto.done
        assert proto.data.startswith(b"typed on a terminal")
        # a pty master reads EIO once the slave is closed: connection_lost
        # gets it, the exception handler does not
        assert isinstance(proto.exc, OSError) and proto.exc.errno == errno.EIO
        assert "eof" not in proto.calls
        assert master_file.closed

    run(loop, main())
    assert errors == []


# ------------------------------------------------------------- write side


def test_write_pipe_write_and_close_flushes(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        assert tr.get_extra_info("pipe") is wf
        assert tr.can_write_eof()
        tr.write(b"one ")
        tr.write(bytearray(b"two "))
        tr.write(memoryview(b"three"))
        tr.writelines([b" four", b" five"])
        tr.write(b"")
        tr.close()
        assert tr.is_closing()
        tr.close()
        await proto.done
        assert proto.calls == ["made", ("lost", None)]
        assert wf.closed
        assert os.read(rf.fileno(), 100) == b"one two three four five"
        assert os.read(rf.fileno(), 100) == b""  # EOF: the write end is closed
        rf.close()

    run(loop, main())


def test_write_pipe_flow_control(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=10, low=20)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=-1, low=-1)
        tr.set_write_buffer_limits(high=4096, low=1024)
        payload = b"p" * (1024 * 1024)
        tr.write(payload)  # the pipe takes 64 KiB at most, the rest is buffered
        size = tr.get_write_buffer_size()
        assert 0 < size <= len(payload)
        assert proto.calls == ["made", "pause"]
        # a drain makes the buffer shrink and the protocol resume
        received = bytearray()
        loop.add_reader(rf.fileno(), lambda: received.extend(os.read(rf.fileno(), 65536)))
        while "resume" not in proto.calls:
            await asyncio.sleep(0.001)
        assert tr.get_write_buffer_size() <= 1024
        tr.close()
        while len(received) < len(payload):
            await asyncio.sleep(0.001)
        loop.remove_reader(rf.fileno())
        await proto.done
        assert bytes(received) == payload
        assert proto.calls == ["made", "pause", "resume", ("lost", None)]
        rf.close()

    run(loop, main())


def test_write_pipe_lowering_limits_pauses_at_once(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        tr.write(b"x" * 200000)
        assert proto.calls == ["made", "pause"]  # above the 64 KiB default
        tr.abort()
        await proto.done
        rf.close()

        rf, wf, tr, proto = await open_pipe(loop, "write")
        tr.write(b"x" * 70000)  # 64 KiB go into the pipe, the rest waits
        assert proto.calls == ["made"]
        tr.set_write_buffer_limits(high=0)
        assert proto.calls == ["made", "pause"]
        tr.abort()
        await proto.done
        rf.close()

    run(loop, main())


def test_write_pipe_abort_drops_buffer(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        tr.write(b"a" * (1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        await proto.done
        assert proto.calls[-1] == ("lost", None)
        # writes after close are dropped silently
        tr.write(b"ignored")
        data = b""
        while True:
            chunk = os.read(rf.fileno(), 1 << 20)
            if not chunk:
                break
            data += chunk
        assert 0 < len(data) < 1024 * 1024
        rf.close()

    run(loop, main())


def test_write_eof_then_abort_calls_connection_lost_once(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        tr.write_eof()
        tr.write_eof()
        await proto.done
        await asyncio.sleep(0.01)
        assert proto.calls == ["made", ("lost", None)]
        rf.close()

    run(loop, main())


def test_write_pipe_notices_reader_gone_with_buffered_data(loop):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        tr.write(b"b" * (1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        rf.close()
        await proto.done
        assert isinstance(proto.exc, BrokenPipeError)
        assert tr.get_write_buffer_size() == 0
        assert wf.closed

    run(loop, main())
    assert errors == []


def test_write_pipe_notices_reader_gone_when_idle(loop):
    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        tr.write(b"small")
        rf.close()
        await proto.done
        # nothing was lost: a plain close
        assert proto.calls == ["made", ("lost", None)]

    run(loop, main())


def test_write_to_broken_pipe_passes_error_to_connection_lost(loop, caplog):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    async def main():
        rf, wf, tr, proto = await open_pipe(loop, "write")
        # drop the reader's side without letting the transport see it first
        loop.remove_reader(wf.fileno())
        rf.close()
        tr.write(b"to nobody")  # EPIPE at once
        assert tr.is_closing()
        await proto.done
        assert isinstance(proto.exc, BrokenPipeError)
        for _ in range(6):
            tr.write(b"more")
        return tr

    with caplog.at_level("WARNING", logger="asyncio"):
        run(loop, main())
    assert errors == []
    assert any("pipe closed by peer" in r.getMessage() for r in caplog.records)


def test_write_pipe_rejects_non_bytes_and_regular_files(loop):
    async def main():
        with tempfile.TemporaryFile() as f:
            with pytest.raises(ValueError, match="only for pipes, sockets and character devices"):
                await loop.connect_write_pipe(asyncio.BaseProtocol, f)
        rf, wf = pipe_files()
        tr, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, wf)
        # asyncio asserts (AssertionError), tornado_c raises TypeError
        with pytest.raises((TypeError, AssertionError)):
            tr.write("text")
        tr.close()
        await asyncio.sleep(0)
        rf.close()

    run(loop, main())


def test_write_pty_and_bidirectional(loop):
    async def main():
        master, slave = os.openpty()
        os.set_blocking(slave, True)
        import tty

        tty.setraw(slave)
        master_w = open(master, "wb", 0)
        master_r = open(os.dup(master), "rb", 0)
        wproto = Recorder(loop)
        rproto = Recorder(loop)
        wt, _ = await loop.connect_write_pipe(lambda: wproto, master_w)
        rt, _ = await loop.connect_read_pipe(lambda: rproto, master_r)
        wt.write(b"to the slave")
        got = b""
        while len(got) < 12:
            got += await loop.run_in_executor(None, os.read, slave, 100)
        assert got == b"to the slave"
        os.write(slave, b"from the slave")
        while len(rproto.data) < 14:
            await asyncio.sleep(0.001)
        assert bytes(rproto.data) == b"from the slave"
        wt.close()
        await wproto.done
        os.close(slave)
        await rproto.done

    run(loop, main())


def test_unclosed_pipe_transport_warns(loop):
    async def main():
        rf, wf = pipe_files()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, rf)
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, wf)
        return rt, wt

    rt, wt = run(loop, main())
    rfile, wfile = rt.get_extra_info("pipe"), wt.get_extra_info("pipe")
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del rt, wt
        gc.collect()
    msgs = [str(w.message) for w in caught if w.category is ResourceWarning]
    assert sum("unclosed transport" in m for m in msgs) == 2
    assert rfile.closed and wfile.closed


def test_connect_pipe_cancelled_closes_transport(loop):
    async def main():
        rf, wf = pipe_files()
        task = asyncio.ensure_future(loop.connect_read_pipe(asyncio.Protocol, rf))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(3):
            await asyncio.sleep(0)
        assert rf.closed
        wf.close()

    run(loop, main())


def test_debug_logs(loop, caplog):
    loop.set_debug(True)

    async def main():
        rf, wf, _, proto = await open_pipe(loop, "read")
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, wf)
        wt.close()
        await proto.done

    with caplog.at_level("DEBUG", logger="asyncio"):
        run(loop, main())
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Read pipe" in text and "Write pipe" in text and "was closed by peer" in text
