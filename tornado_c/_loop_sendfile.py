"""sendfile for the tornado_c event loop: loop.sendfile(transport, file) and
loop.sock_sendfile(sock, file).

Zero-copy where the kernel can do it: os.sendfile() from the file's fd to
the socket's fd, waiting for writability with add_writer between calls.
For a transport of ours (``_core.StreamTransport``, TCP or Unix socket) the
transport first stops reading and lets its write queue drain
(``_make_empty_waiter()``, which also makes write() raise while sendfile owns
the socket), then os.sendfile() writes to its fd directly, as asyncio does
with its selector transports.  libuv's own watcher of that fd lives in
libuv's epoll set, separate from the one add_writer uses, and is idle
meanwhile (reading paused, no write queued).

Otherwise, and when os.sendfile() refuses the file on its first call (not a
regular file, a file object without a fileno...), the data is read in the
default executor and written: with sock_sendall() for a socket, or through
the transport with its flow control for a transport (any transport with
get_protocol/set_protocol and flow control, e.g. a TLS transport whose
_sendfile_compatible says FALLBACK).  fallback=False turns those cases into
asyncio.SendfileNotAvailableError (RuntimeError for a transport that only
has the fallback), like asyncio.

Arguments, errors and the file position afterwards (offset + bytes sent,
even when an error stops the transfer) are asyncio's.
"""

import asyncio
import errno
import io
import os
import socket

from asyncio import constants, transports

from tornado_c import _core

__all__ = ["SendfileMixin"]

_SOCK_FALLBACK_CHUNK = 256 * 1024     # asyncio: SENDFILE_FALLBACK_READBUFFER_SIZE
_TRANSPORT_FALLBACK_CHUNK = 16 * 1024  # asyncio's _sendfile_fallback block size

_NOT_AVAILABLE = asyncio.SendfileNotAvailableError


def _check_params(sock_type, file, offset, count):
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if sock_type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError("count must be a positive integer (got {!r})".format(count))
        if count <= 0:
            raise ValueError("count must be a positive integer (got {!r})".format(count))
    if not isinstance(offset, int):
        raise TypeError("offset must be a non-negative integer (got {!r})".format(offset))
    if offset < 0:
        raise ValueError("offset must be a non-negative integer (got {!r})".format(offset))


def check_nonblocking_socket(sock):
    """The sock_* methods' check (loop.py uses it too): non-blocking, not an
    SSLSocket."""
    if sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    try:
        import ssl
    except ImportError:  # pragma: no cover
        return
    if isinstance(sock, ssl.SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _file_fd(file):
    """The fd os.sendfile() reads from, or SendfileNotAvailableError."""
    if not hasattr(os, "sendfile"):
        raise _NOT_AVAILABLE("os.sendfile() is not available")
    try:
        fd = file.fileno()
    except (AttributeError, io.UnsupportedOperation):
        raise _NOT_AVAILABLE("not a regular file")
    try:
        size = os.fstat(fd).st_size
    except OSError:
        raise _NOT_AVAILABLE("not a regular file")
    return fd, size


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


class _FallbackProtocol(asyncio.Protocol):
    """Stands in for the transport's protocol while the fallback writes:
    reading is paused, writes wait for resume_writing, connection_lost is
    passed on to the real protocol (and fails a pending drain)."""

    def __init__(self, loop, transport):
        self._loop = loop
        self._transport = transport
        self._proto = transport.get_protocol()
        self._resume_reading = transport.is_reading()
        self._was_paused = bool(getattr(transport, "_protocol_paused", False))
        self._writable = None
        transport.pause_reading()
        transport.set_protocol(self)
        if self._was_paused:
            self._writable = loop.create_future()

    async def drain(self):
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._writable is not None:
            await self._writable

    def pause_writing(self):
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self):
        fut, self._writable = self._writable, None
        if fut is not None:
            fut.set_result(False)

    def connection_made(self, transport):
        raise RuntimeError("Invalid state: connection should have been established already.")

    def data_received(self, data):
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self):
        raise RuntimeError("Invalid state: reading should be paused")

    def connection_lost(self, exc):
        if self._writable is not None:
            # the peer went away before everything was sent
            self._writable.set_exception(
                exc if exc is not None else ConnectionError("Connection is closed by peer"))
        self._proto.connection_lost(exc)

    def restore(self):
        self._transport.set_protocol(self._proto)
        if self._resume_reading:
            self._transport.resume_reading()
        if self._writable is not None:
            self._writable.cancel()  # nobody waits on it any more
        if self._was_paused:
            # the real protocol was paused when we took over; the transport
            # has resumed us since, so tell it
            self._proto.resume_writing()


class SendfileMixin:
    """sock_sendfile / sendfile of the C event loop."""

    # -- sockets -------------------------------------------------------------

    async def sock_sendfile(self, sock, file, offset=0, count=None, *, fallback=True):
        """Send `file` over the non-blocking stream socket `sock` from
        `offset` (`count` bytes, or to EOF); returns the number of bytes
        sent.  os.sendfile() when possible, else (if `fallback`) read and
        send."""
        check_nonblocking_socket(sock)
        _check_params(sock.type, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except _NOT_AVAILABLE:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock, file, offset, count):
        fileno, size = _file_fd(file)
        return await self._tc_sendfile_fd(sock.fileno(), fileno, offset, count, size)

    async def _tc_wait_writable(self, fd):
        fut = self.create_future()
        self.add_writer(fd, _wake, fut)
        try:
            await fut
        finally:
            self.remove_writer(fd)

    async def _tc_sendfile_fd(self, out_fd, in_fd, offset, count, size):
        """os.sendfile() from in_fd to the non-blocking socket out_fd; the
        file position ends at offset + sent when anything was sent."""
        if not (count or size):
            return 0  # an empty file
        sent = 0
        try:
            while True:
                blocksize = count - sent if count else size
                if blocksize <= 0:
                    return sent
                try:
                    n = os.sendfile(out_fd, in_fd, offset + sent, blocksize)
                except (BlockingIOError, InterruptedError):
                    await self._tc_wait_writable(out_fd)
                    continue
                except OSError as exc:
                    if sent == 0:
                        # e.g. a file that cannot be mmap()ed: the caller may
                        # fall back to read + send
                        raise _NOT_AVAILABLE("os.sendfile call failed")
                    if exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                        # the peer left mid-transfer: the same error on every
                        # Posix system
                        raise ConnectionError("socket is not connected", errno.ENOTCONN) from exc
                    raise
                if n == 0:
                    return sent  # EOF
                sent += n
                # let the rest of the loop run between pieces, as asyncio does
                await self._tc_wait_writable(out_fd)
        finally:
            if sent > 0:
                os.lseek(in_fd, offset + sent, os.SEEK_SET)

    async def _sock_sendfile_fallback(self, sock, file, offset, count):
        if offset:
            file.seek(offset)
        chunk = min(count, _SOCK_FALLBACK_CHUNK) if count else _SOCK_FALLBACK_CHUNK
        buf = bytearray(chunk)
        sent = 0
        try:
            while True:
                if count:
                    chunk = min(count - sent, chunk)
                    if chunk <= 0:
                        return sent
                view = memoryview(buf)[:chunk]
                n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    return sent  # EOF
                await self.sock_sendall(sock, view[:n])
                sent += n
        finally:
            if sent > 0 and hasattr(file, "seek"):
                file.seek(offset + sent)

    # -- transports ------------------------------------------------------------

    async def sendfile(self, transport, file, offset=0, count=None, *, fallback=True):
        """Send `file` through `transport` from `offset` (`count` bytes, or to
        EOF); returns the number of bytes sent.  Zero-copy for the loop's
        TCP/Unix transports; read + write for transports that only allow
        that (if `fallback`)."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        if isinstance(transport, _core.StreamTransport):
            mode = constants._SendfileMode.TRY_NATIVE
        else:
            mode = getattr(transport, "_sendfile_compatible", constants._SendfileMode.UNSUPPORTED)
        if mode is constants._SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is constants._SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except _NOT_AVAILABLE:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not "
                               f"supported for transport {transport!r}")
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transport, file, offset, count):
        if not isinstance(transport, _core.StreamTransport):
            raise _NOT_AVAILABLE(f"no zero-copy sendfile for transport {transport!r}")
        resume_reading = transport.is_reading()
        transport.pause_reading()
        try:
            emptied = transport._make_empty_waiter()
        except BaseException:
            if resume_reading:
                transport.resume_reading()
            raise
        try:
            await emptied  # what was written before goes out first
            fd = transport._fd
            if fd < 0:
                raise ConnectionError("Connection is closed by peer")
            _check_params(socket.SOCK_STREAM, file, offset, count)  # our transports: streams
            fileno, size = _file_fd(file)
            return await self._tc_sendfile_fd(fd, fileno, offset, count, size)
        finally:
            transport._reset_empty_waiter()
            if resume_reading:
                transport.resume_reading()

    async def _sendfile_fallback(self, transport, file, offset, count):
        if not (isinstance(transport, (_core.StreamTransport, transports._FlowControlMixin))):
            raise TypeError("transport should be _FlowControlMixin instance")
        if offset:
            file.seek(offset)
        chunk = min(count, _TRANSPORT_FALLBACK_CHUNK) if count else _TRANSPORT_FALLBACK_CHUNK
        buf = bytearray(chunk)
        sent = 0
        proto = _FallbackProtocol(self, transport)
        try:
            while True:
                if count:
                    chunk = min(count - sent, chunk)
                    if chunk <= 0:
                        return sent
                view = memoryview(buf)[:chunk]
                n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    return sent  # EOF
                await proto.drain()
                transport.write(view[:n])
                sent += n
        finally:
            if sent > 0 and hasattr(file, "seek"):
                file.seek(offset + sent)
            proto.restore()
