"""Pipe transports of the tornado_c event loop (connect_read_pipe,
connect_write_pipe).

They behave like asyncio's Unix pipe transports (asyncio.unix_events) and
are written on the loop's add_reader/add_writer: pipes carry subprocess
output and terminal traffic, where one Python call per readiness event is
not what limits anyone, and a Python transport keeps asyncio's exact
semantics in the corner cases:

* read side: data_received() per read of up to 256 KiB; at EOF the reader is
  dropped, then eof_received() and connection_lost(None) run (the transport
  closes whatever eof_received() returns); a read error other than EIO (the
  error a pty master gets once its slave side is closed) goes to the loop's
  exception handler; every read error ends in connection_lost(exc).
* write side: write() tries os.write() at once and buffers the rest,
  pause_writing()/resume_writing() on the protocol around the high/low water
  marks (64 KiB / 16 KiB by default); for a pipe or a socket the transport
  also watches its own fd for readability, which on a write end means that
  the reader went away: the transport then closes, with
  connection_lost(BrokenPipeError()) if data was still buffered.
  close() = write_eof(): connection_lost(None) once the buffer is flushed.
  Write errors that are OSErrors are passed to connection_lost() only; others
  also go to the exception handler.

The pipe object (anything with fileno() and close(): a file object, a
socket, a pty master opened with open(fd, 'rb', 0)...) is put in
non-blocking mode, reported as get_extra_info('pipe') and closed after
connection_lost().
"""

import asyncio
import errno
import os
import stat
import warnings

from asyncio.log import logger

__all__ = ["ReadPipeTransport", "WritePipeTransport", "PipesMixin"]

_READ_SIZE = 256 * 1024
# asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
_CONNLOST_WRITES_BEFORE_WARNING = 5


def _wake(waiter):
    if waiter is not None and not waiter.cancelled():
        waiter.set_result(None)


class _PipeTransportBase:
    """What both directions share: the pipe, its fd, the protocol and the
    end of life (connection_lost once, then the pipe is closed)."""

    def _setup(self, loop, pipe, protocol, allowed, error):
        self._loop = loop
        self._pipe = None
        self._fileno = None
        self._protocol = None
        self._closing = False
        self._polling = False  # for repr: our side of the fd is watched
        fd = pipe.fileno()
        mode = os.fstat(fd).st_mode
        if not any(check(mode) for check in allowed):
            raise ValueError(error)
        self._extra["pipe"] = pipe
        self._pipe = pipe
        self._fileno = fd
        self._protocol = protocol
        os.set_blocking(fd, False)
        return mode

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol):
        self._protocol = protocol

    def is_closing(self):
        return self._closing

    def _describe(self, watching_for):
        parts = [type(self).__name__]
        if self._pipe is None:
            parts.append("closed")
        elif self._closing:
            parts.append("closing")
        parts.append("fd=%s" % (self._fileno,))
        if self._pipe is not None:
            if self._loop is None or self._loop.is_closed():
                parts.append("open")  # nothing is polled by a closed loop
            else:
                parts.append("polling" if watching_for() else "idle")
        return parts

    def _call_connection_lost(self, exc):
        if self._pipe is None:
            return  # already done (e.g. abort() after write_eof())
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._pipe.close()
            self._pipe = self._protocol = self._loop = None

    def __del__(self, _warn=warnings.warn):
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            _warn("unclosed transport %r" % (self,), ResourceWarning, source=self)
            pipe.close()


class ReadPipeTransport(_PipeTransportBase, asyncio.ReadTransport):
    """Read end of a pipe, socket or character device (pty)."""

    max_size = _READ_SIZE

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        asyncio.ReadTransport.__init__(self, extra)
        self._paused = False
        self._setup(loop, pipe, protocol, (stat.S_ISFIFO, stat.S_ISSOCK, stat.S_ISCHR),
                    "Pipe transport is for pipes/sockets only.")
        loop.call_soon(protocol.connection_made, self)
        # reading starts only once connection_made() has run
        loop.call_soon(self._start_polling)
        loop.call_soon(_wake, waiter)

    def __repr__(self):
        return "<%s>" % " ".join(self._describe(lambda: self._polling))

    def _start_polling(self):
        if self.is_reading() and not self._polling:
            self._loop.add_reader(self._fileno, self._read_ready)
            self._polling = True

    def _stop_polling(self):
        self._polling = False
        self._loop.remove_reader(self._fileno)

    def _read_ready(self):
        try:
            data = os.read(self._fileno, self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if data:
            self._protocol.data_received(data)
            return
        # EOF: the writer closed its end
        loop = self._loop
        if loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._closing = True
        self._stop_polling()
        loop.call_soon(self._protocol.eof_received)
        loop.call_soon(self._call_connection_lost, None)

    def is_reading(self):
        return not (self._paused or self._closing)

    def pause_reading(self):
        if not self.is_reading():
            return
        self._paused = True
        self._stop_polling()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self):
        if not self._paused or self._closing:
            return
        self._paused = False
        self._start_polling()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def close(self):
        if not self._closing:
            self._close(None)

    def _fatal_error(self, exc, message):
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            # a pty whose other side was closed: the normal way for it to end
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._close(exc)

    def _close(self, exc):
        self._closing = True
        self._stop_polling()
        self._loop.call_soon(self._call_connection_lost, exc)


class WritePipeTransport(_PipeTransportBase, asyncio.WriteTransport):
    """Write end of a pipe, socket or character device (pty)."""

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        asyncio.WriteTransport.__init__(self, extra)
        self._buffer = bytearray()
        self._conn_lost = 0
        self._writing = False      # for repr: add_writer is active (data buffered)
        self._protocol_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024
        mode = self._setup(loop, pipe, protocol,
                           (stat.S_ISFIFO, stat.S_ISSOCK, stat.S_ISCHR),
                           "Pipe transport is only for pipes, sockets and character devices")
        loop.call_soon(protocol.connection_made, self)
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            # A write end becomes "readable" (error/hangup) once the reading
            # side is gone; watch for it after connection_made() has run.
            loop.call_soon(self._watch_peer)
        loop.call_soon(_wake, waiter)

    def __repr__(self):
        parts = self._describe(lambda: self._writing)
        if self._pipe is not None:
            parts.append("bufsize=%d" % len(self._buffer))
        return "<%s>" % " ".join(parts)

    def _watch_peer(self):
        if self._closing:
            # write_eof()/abort() came first: asyncio registers anyway and
            # unregisters when it closes; nothing to watch any more
            return
        self._loop.add_reader(self._fileno, self._read_ready)
        self._polling = True

    def _unwatch_peer(self):
        self._polling = False
        self._loop.remove_reader(self._fileno)

    def _read_ready(self):
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._close(BrokenPipeError() if self._buffer else None)

    # -- flow control (as asyncio's transports) -------------------------

    def get_write_buffer_size(self):
        return len(self._buffer)

    def get_write_buffer_limits(self):
        return (self._low, self._high)

    def set_write_buffer_limits(self, high=None, low=None):
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError("high (%r) must be >= low (%r) must be >= 0" % (high, low))
        self._high = high
        self._low = low
        self._maybe_pause_protocol()

    def _call_flow(self, name):
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler({
                "message": "protocol.%s() failed" % name,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })

    def _maybe_pause_protocol(self):
        if len(self._buffer) > self._high and not self._protocol_paused:
            self._protocol_paused = True
            self._call_flow("pause_writing")

    def _maybe_resume_protocol(self):
        if self._protocol_paused and len(self._buffer) <= self._low:
            self._protocol_paused = False
            self._call_flow("resume_writing")

    # -- writing ------------------------------------------------------------

    def write(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data argument must be a bytes-like object, not %r"
                            % type(data).__name__)
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= _CONNLOST_WRITES_BEFORE_WARNING:
                logger.warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if self._buffer:
            self._buffer += data
        else:
            try:
                n = os.write(self._fileno, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            view = memoryview(data).cast("B")
            if n == len(view):
                return
            self._buffer += view[n:]
            self._loop.add_writer(self._fileno, self._write_ready)
            self._writing = True
        self._maybe_pause_protocol()

    def _write_ready(self):
        try:
            n = os.write(self._fileno, self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._buffer.clear()
            self._conn_lost += 1
            self._stop_writing()
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        del self._buffer[:n]
        if self._buffer:
            return
        self._stop_writing()
        self._maybe_resume_protocol()  # the protocol may write again here
        if self._closing and not self._buffer:
            # close()/write_eof() was waiting for the buffer to drain
            self._unwatch_peer()
            self._call_connection_lost(None)

    def _stop_writing(self):
        self._writing = False
        self._loop.remove_writer(self._fileno)

    def can_write_eof(self):
        return True

    def write_eof(self):
        if self._closing:
            return
        if self._pipe is None:
            raise RuntimeError("write_eof() on a closed pipe transport")
        self._closing = True
        if not self._buffer:
            self._unwatch_peer()
            self._loop.call_soon(self._call_connection_lost, None)

    def close(self):
        if self._pipe is not None and not self._closing:
            self.write_eof()

    def abort(self):
        self._close(None)

    def _fatal_error(self, exc, message):
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                logger.debug("%r: %s", self, message, exc_info=True)
        else:
            self._loop.call_exception_handler({
                "message": message,
                "exception": exc,
                "transport": self,
                "protocol": self._protocol,
            })
        self._close(exc)

    def _close(self, exc=None):
        self._closing = True
        self._stop_writing()
        self._buffer.clear()
        self._unwatch_peer()
        self._loop.call_soon(self._call_connection_lost, exc)


class PipesMixin:
    """connect_read_pipe / connect_write_pipe of the C event loop."""

    async def _tc_connect_pipe(self, transport_class, kind, protocol_factory, pipe):
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = transport_class(self, pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self.get_debug():
            logger.debug("%s pipe %r connected: (%r, %r)", kind, pipe.fileno(),
                         transport, protocol)
        return transport, protocol

    async def connect_read_pipe(self, protocol_factory, pipe):
        """Read from `pipe` (a file-like object with fileno()) with a
        protocol made by `protocol_factory`; returns (transport, protocol)."""
        return await self._tc_connect_pipe(ReadPipeTransport, "Read", protocol_factory, pipe)

    async def connect_write_pipe(self, protocol_factory, pipe):
        """Write to `pipe` (a file-like object with fileno()) through a
        transport; returns (transport, protocol)."""
        return await self._tc_connect_pipe(WritePipeTransport, "Write", protocol_factory, pipe)
