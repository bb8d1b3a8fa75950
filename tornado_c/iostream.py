"""tornado_c.iostream: the public names of ``tornado.iostream``.

``IOStream`` is accelerated: its reads, writes, buffering and closing are in
C on a libuv stream handle (``tornado_c._core.Stream``), and it is also a
subclass of ``tornado.iostream.IOStream`` so ``isinstance`` checks hold.

Where it applies:

* It only runs on the tornado_c event loop (``tornado_c.loop.EventLoop``).
  ``tornado_c.iostream.IOStream(sock, ...)`` constructed while the current
  loop is any other asyncio loop returns a plain upstream
  ``tornado.iostream.IOStream`` instead (same API, upstream's code).
* TLS: ``SSLIOStream`` is upstream's class (on the tornado_c loop it runs on
  the loop's add_reader/add_writer).  ``IOStream.start_tls()`` takes the
  socket away from libuv (a dup of the fd, the libuv handle is closed) and
  hands it to upstream's ``SSLIOStream``, as upstream's start_tls does.
* Differences from upstream that are not behaviour: ``_read_buffer`` /
  ``_write_buffer`` are read-only snapshots (bytearray / bytes); upstream's
  private helpers (``_handle_events``, ``_read_to_buffer``,
  ``read_from_fd``, ...) are not used and raise NotImplementedError, so
  patching them (as two upstream tests do) has no effect.
* Reading stops while nobody wants bytes (no pending read, and no close
  callback on an empty buffer), exactly when upstream stops polling.
* Lifetime as upstream's: from the first time the stream waits for the loop
  (a read that is not satisfied at once, a write that does not go out at
  once, a connect, a close callback on an empty buffer) the loop keeps it
  alive until it is closed; before that, dropping the last reference closes
  the connection.
* Under the switch (``tornado_c.install()``, ``http`` component) this is the
  stream ``tornado.tcpserver.TCPServer.handle_stream`` receives and
  ``tornado.tcpclient.TCPClient.connect()`` returns (plain TCP; TLS stays
  upstream's ``SSLIOStream``).

Every other name is upstream's object itself.
"""

import asyncio
import errno
import os
import socket as _socket

import tornado.iostream as _up
from tornado import ioloop as _ioloop
from tornado.log import gen_log as _gen_log

from tornado_c import _core
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.iostream")


def _on_tornado_c_loop():
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # not inside the loop: the IOLoop the stream's __init__ would pick
        current = _ioloop.IOLoop.current(instance=False)
        if current is None:
            return None
        loop = current.asyncio_loop
    if isinstance(loop, _core.Loop):
        return loop
    return None


class IOStream(_core.Stream, _up.IOStream):
    """tornado.iostream.IOStream in C on libuv (see the module docstring)."""

    def __new__(cls, socket=None, *args, **kwargs):
        if _on_tornado_c_loop() is None:
            # not on the tornado_c loop: upstream's IOStream does the work
            return _up.IOStream(socket, *args, **kwargs)
        return _core.Stream.__new__(cls)

    def __init__(self, socket, max_buffer_size=None, read_chunk_size=None,
                 max_write_buffer_size=None):
        socket.setblocking(False)
        io_loop = _ioloop.IOLoop.current()
        loop = io_loop.asyncio_loop
        self._open(loop, io_loop, socket, max_buffer_size, read_chunk_size,
                   max_write_buffer_size)

    def connect(self, address, server_hostname=None):
        future = self._begin_connect()
        sock = self.socket
        try:
            sock.connect(address)
        except BlockingIOError:
            pass
        except OSError as e:
            self.close(exc_info=e)
            return future
        self.io_loop.asyncio_loop.add_writer(sock.fileno(), self._connect_ready, sock)
        return future

    def _connect_ready(self, sock):
        loop = self.io_loop.asyncio_loop
        try:
            loop.remove_writer(sock.fileno())
        except (OSError, ValueError):
            pass
        if self.closed():
            return
        try:
            err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        except OSError as e:
            err = 0 if e.errno == errno.ENOPROTOOPT else e.errno
        self._finish_connect(err)

    def close(self, exc_info=False):
        if self._connecting and not self.closed():
            sock = self.socket
            if sock is not None:
                try:
                    self.io_loop.asyncio_loop.remove_writer(sock.fileno())
                except (OSError, ValueError, RuntimeError):
                    pass
        _core.Stream.close(self, exc_info)

    def start_tls(self, server_side, ssl_options=None, server_hostname=None):
        if (self.reading() or self._write_futures or self._connect_future is not None
                or self.closed() or self._read_buffer_size or self.writing()):
            raise ValueError("IOStream is not idle; cannot convert to SSL")
        if ssl_options is None:
            if server_side:
                ssl_options = _up._server_ssl_defaults()
            else:
                ssl_options = _up._client_ssl_defaults()
        orig_close_callback = self._close_callback
        self.set_close_callback(None)
        sock = self._detach_socket()
        sock = _up.ssl_wrap_socket(
            sock, ssl_options, server_hostname=server_hostname,
            server_side=server_side, do_handshake_on_connect=False,
        )
        future = _up.Future()
        ssl_stream = _up.SSLIOStream(sock, ssl_options=ssl_options)
        ssl_stream.set_close_callback(orig_close_callback)
        ssl_stream._ssl_connect_future = future
        ssl_stream.max_buffer_size = self.max_buffer_size
        ssl_stream.read_chunk_size = self.read_chunk_size
        future.add_done_callback(lambda f: ssl_stream.close() if f.cancelled() else None)
        return future

    def _check_closed(self):
        if self.closed():
            raise StreamClosedError(real_error=self.error)  # noqa: F821

    _is_connreset = _up.BaseIOStream._is_connreset  # stateless

    def get_fd_error(self):
        sock = self.socket
        if sock is None:
            return None
        err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        return _socket.error(err, os.strerror(err))



def _not_here(name):
    def method(self, *args, **kwargs):
        raise NotImplementedError(
            "%s() is upstream IOStream machinery that tornado_c's IOStream "
            "does in C" % name)
    method.__name__ = name
    return method


# Upstream's private machinery works on Python-side state this class does not
# have: make sure none of it can run on an accelerated stream by accident.
for _cls in (_up.BaseIOStream, _up.IOStream):
    for _name, _value in vars(_cls).items():
        if (callable(_value) and not _name.startswith("__")
                and not hasattr(_core.Stream, _name) and _name not in IOStream.__dict__):
            setattr(IOStream, _name, _not_here(_name))
del _cls, _name, _value

_core._stream_setup(IOStream, StreamClosedError, UnsatisfiableReadError,  # noqa: F821
                    StreamBufferFullError, _gen_log, _ioloop.IOLoop.current)  # noqa: F821
