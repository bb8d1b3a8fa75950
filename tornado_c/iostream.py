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
  the loop's add_reader/add_writer).  ``IOStream.start_tls(server_side,
  ...)`` -- what ``TCPClient.connect(..., ssl_options=...)`` calls, so every
  https fetch -- gives an `_SSLIOStream` (a subclass of upstream's
  ``SSLIOStream``): the same C stream with TLS inside it (csrc/stream/tls.c:
  the SSL object's memory BIOs between the socket and the buffers), its
  handshake being upstream's ``_do_ssl_handshake`` on an ``ssl.SSLObject``.
  Under the switch a ``TCPServer`` / ``HTTPServer`` with ``ssl_options``
  gets the same stream for each connection it accepts
  (`_tcpserver_handle_connection`).  A subclass of this IOStream, a
  context whose ``sslobject_class`` / ``sslsocket_class`` is not the
  stdlib's, or a replaced ``tornado.iostream.ssl_wrap_socket`` /
  ``SSLIOStream`` (for servers: tornado.tcpserver's) take upstream's way:
  start_tls's socket leaves libuv (a dup of the fd, the libuv handle is
  closed) for upstream's ``SSLIOStream``, a server builds upstream's.
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
  ``tornado.tcpclient.TCPClient.connect()`` returns (with ``ssl_options``,
  the `_SSLIOStream` its start_tls gives).

Every other name is upstream's object itself.
"""

import asyncio
import errno
import os
import socket as _socket
import ssl as _ssl
import struct as _struct

import tornado.iostream as _up
from tornado import ioloop as _ioloop
from tornado import netutil as _netutil
from tornado.log import gen_log as _gen_log
from tornado.util import errno_from_exception as _errno_from_exception

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
        if _c_tls_enabled and type(self) is IOStream:
            context = _c_tls_context(ssl_options, server_side)
            if context is not None:
                return self._start_c_tls(ssl_options, context, server_side, server_hostname)
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

    def _start_c_tls(self, ssl_options, context, server_side, server_hostname):
        """start_tls(...) with TLS in the C stream: upstream's steps
        (the socket taken from this stream, wrapped as ssl_wrap_socket
        would, a new stream with the close callback, buffer sizes and
        _ssl_connect_future, closed if that future is cancelled), the
        wrapping being context.wrap_bio instead of wrap_socket."""
        orig_close_callback = self._close_callback
        max_buffer_size = self.max_buffer_size
        read_chunk_size = self.read_chunk_size
        self.set_close_callback(None)
        sock = self._detach_socket()
        incoming = _ssl.MemoryBIO()
        outgoing = _ssl.MemoryBIO()
        sslobj = context.wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=server_hostname
        )
        future = _up.Future()
        ssl_stream = _SSLIOStream(sock, ssl_options, sslobj, incoming, outgoing,
                                  max_buffer_size, read_chunk_size)
        ssl_stream.set_close_callback(orig_close_callback)
        ssl_stream._ssl_connect_future = future
        future.add_done_callback(lambda f: ssl_stream.close() if f.cancelled() else None)
        # upstream starts the handshake once the loop finds the socket
        # writable, after the callbacks ready now (a cancellation of the
        # future made right after this call closes the stream first)
        loop = self.io_loop.asyncio_loop
        loop.call_soon(loop.call_soon, ssl_stream._do_ssl_handshake)
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



# SO_LINGER on, 0 seconds: close() resets the connection
_LINGER_RESET = _struct.pack("ii", 1, 0)

# False: start_tls always takes upstream's way (tests compare the two)
_c_tls_enabled = True

# what upstream's start_tls calls; replaced ones (a patch, a spy) are honoured
# by taking upstream's way
_UPSTREAM_TLS = (_up.ssl_wrap_socket, _up.SSLIOStream)


def _c_tls_context(ssl_options, server_side=False):
    """The SSLContext for TLS in the C stream, or None when start_tls must
    take upstream's way.  A dict is converted as ssl_wrap_socket converts it
    (and raises what it raises)."""
    if (_up.ssl_wrap_socket, _up.SSLIOStream) != _UPSTREAM_TLS:
        return None
    context = _netutil.ssl_options_to_context(ssl_options, server_side=server_side)
    if (
        type(context).sslobject_class is not _ssl.SSLObject
        or context.sslobject_class is not _ssl.SSLObject
        or type(context).sslsocket_class is not _ssl.SSLSocket
        or context.sslsocket_class is not _ssl.SSLSocket
        or type(context).wrap_bio is not _ssl.SSLContext.wrap_bio
        or type(context).wrap_socket is not _ssl.SSLContext.wrap_socket
    ):
        return None
    return context


def _c_tls_server_stream(connection, ssl_options, context, max_buffer_size, read_chunk_size):
    """The server side of a TLS connection in the C stream: what
    TCPServer._handle_connection makes of an accepted socket with
    ``ssl_options`` (upstream: ``SSLIOStream(ssl_wrap_socket(connection,
    ssl_options, server_side=True, do_handshake_on_connect=False))``), the
    wrapping being context.wrap_bio.  `context`: _c_tls_context(ssl_options,
    True).  The handshake starts with the client's first records (upstream
    asks for it once the socket is writable, and is then told to wait for
    them)."""
    connection.setblocking(False)
    incoming = _ssl.MemoryBIO()
    outgoing = _ssl.MemoryBIO()
    sslobj = context.wrap_bio(incoming, outgoing, server_side=True)
    return _SSLIOStream(connection, ssl_options, sslobj, incoming, outgoing,
                        max_buffer_size, read_chunk_size)


def _tcpserver_handle_connection(upstream_handle_connection):
    """TCPServer._handle_connection under the switch (tornado_c._switch):
    with ``ssl_options`` on the tornado_c loop the connection is the C
    stream with TLS inside it (_c_tls_server_stream); otherwise, or when
    tornado.tcpserver's ``SSLIOStream`` / ``ssl_wrap_socket`` or the
    context's classes are not the stdlib's / upstream's, upstream's method
    (``upstream_handle_connection``) does it all."""
    g = upstream_handle_connection.__globals__

    def _handle_connection(self, connection, address):
        ssl_options = self.ssl_options
        if (ssl_options is None or not _c_tls_enabled or _on_tornado_c_loop() is None
                or g.get("SSLIOStream") is not _up.SSLIOStream
                or g.get("ssl_wrap_socket") is not _netutil.ssl_wrap_socket):
            return upstream_handle_connection(self, connection, address)
        # the context is made where upstream's ssl_wrap_socket makes it, and
        # what it raises is taken as upstream takes it
        try:
            context = _c_tls_context(ssl_options, True)
        except _ssl.SSLError as err:
            if err.args[0] == _ssl.SSL_ERROR_EOF:
                return connection.close()
            raise
        except OSError as err:
            if _errno_from_exception(err) in (errno.ECONNABORTED, errno.EINVAL):
                return connection.close()
            raise
        if context is None:
            return upstream_handle_connection(self, connection, address)
        try:
            stream = _c_tls_server_stream(connection, ssl_options, context,
                                          self.max_buffer_size, self.read_chunk_size)
            future = self.handle_stream(stream, address)
            if future is not None:
                # tornado.tcpserver's own IOLoop, gen and app_log
                g["IOLoop"].current().add_future(
                    g["gen"].convert_yielded(future), lambda f: f.result()
                )
        except Exception:
            g["app_log"].error("Error in connection callback", exc_info=True)

    _handle_connection.__name__ = "_handle_connection"
    _handle_connection.__qualname__ = "TCPServer._handle_connection"
    _handle_connection.__doc__ = upstream_handle_connection.__doc__
    _handle_connection._tornado_c_upstream = upstream_handle_connection
    return _handle_connection


class _TLSSocket:
    """What `_SSLIOStream.socket` gives: the connected socket's methods
    and attributes, and the TLS connection's queries (getpeercert, cipher,
    version, selected_alpn_protocol, ...) from its ssl.SSLObject -- the
    methods upstream's SSLSocket has for them."""

    __slots__ = ("_sock", "_sslobj")

    _TLS_NAMES = frozenset((
        "getpeercert", "cipher", "shared_ciphers", "compression", "version",
        "selected_alpn_protocol", "selected_npn_protocol", "get_channel_binding",
        "server_side", "server_hostname", "context", "session", "session_reused",
        "pending", "get_verified_chain", "get_unverified_chain",
    ))

    def __init__(self, sock, sslobj):
        self._sock = sock
        self._sslobj = sslobj

    def __getattr__(self, name):
        if name in _TLSSocket._TLS_NAMES:
            return getattr(self._sslobj, name)
        return getattr(self._sock, name)

    def __repr__(self):
        return "<tornado_c TLS socket %r>" % (self._sock,)


class _SSLIOStream(IOStream, _up.SSLIOStream):
    """The stream IOStream.start_tls(False, ...) gives: the C stream with
    TLS inside it (see the module docstring).  Its handshake is upstream's
    SSLIOStream._do_ssl_handshake on the ssl.SSLObject; reads and writes
    are the C stream's on plaintext."""

    def __new__(cls, *args, **kwargs):
        return _core.Stream.__new__(cls)

    def __init__(self, sock, ssl_options, sslobj, incoming, outgoing,
                 max_buffer_size, read_chunk_size):
        io_loop = _ioloop.IOLoop.current()
        self._open(io_loop.asyncio_loop, io_loop, sock, max_buffer_size, read_chunk_size, None)
        self._ssl_options = ssl_options
        self._ssl_accepting = True
        self._ssl_connect_future = None
        self._server_hostname = sslobj.server_hostname
        self._sslobj = sslobj
        self._tls_incoming = incoming
        self._tls_socket = None
        # the _ssl object itself is what C calls: ssl.SSLObject's read/write
        # only forward to it (_c_tls_context makes sure it is that class)
        self._tls_attach(sslobj._sslobj, incoming, outgoing, _ssl.SSLWantReadError)

    @property
    def socket(self):
        sock = _core.Stream.socket.__get__(self)
        if sock is None:
            return None
        tls = self._tls_socket
        if tls is None or tls._sock is not sock:
            tls = self._tls_socket = _TLSSocket(sock, self._sslobj)
        return tls

    def reading(self):
        return (self._ssl_accepting and not self.closed()) or _core.Stream.reading(self)

    def _do_ssl_handshake(self):
        """upstream's, on the SSLObject: the records the handshake makes
        are sent with _tls_flush(), also before a failure closes the stream
        (the alert goes out as an SSLSocket writes it)."""
        if not self._ssl_accepting or self.closed():
            return
        try:
            self._sslobj.do_handshake()
        except _ssl.SSLError as err:
            if err.args[0] in (_ssl.SSL_ERROR_WANT_READ, _ssl.SSL_ERROR_WANT_WRITE):
                self._tls_flush()
                return
            self._tls_flush()
            if err.args[0] in (_ssl.SSL_ERROR_EOF, _ssl.SSL_ERROR_ZERO_RETURN):
                return self.close(exc_info=err)
            elif err.args[0] in (_ssl.SSL_ERROR_SSL, _ssl.SSL_ERROR_SYSCALL):
                sock = self.socket
                try:
                    peer = sock.getpeername()
                except Exception:
                    peer = "(not connected)"
                _gen_log.warning("SSL Error on %s %s: %s", sock.fileno(), peer, err)
                if self._sslobj.server_side and self._tls_incoming.pending:
                    # an SSLSocket reads no further than the record that
                    # failed and the rest stays unread in the kernel, so
                    # upstream's close resets the connection: what arrived
                    # after that record (still in the BIO here) does too
                    self._tls_reset_on_close(sock)
                return self.close(exc_info=err)
            raise
        except OSError as err:
            if self._is_connreset(err) or err.args[0] in (0, errno.EBADF, errno.ENOTCONN):
                return self.close(exc_info=err)
            raise
        else:
            self._ssl_accepting = False
            self._tls_flush()
            self._tls_established()
            self._finish_ssl_connect()

    @staticmethod
    def _tls_reset_on_close(sock):
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass

    def _tls_signal_closed(self):
        """upstream's _signal_closed for _ssl_connect_future (the C stream
        calls it after failing its own futures, before the close
        callback)."""
        future = self._ssl_connect_future
        if future is not None:
            if not future.done():
                if self.error is not None:
                    future.set_exception(self.error)
                else:
                    future.set_exception(StreamClosedError())  # noqa: F821
            try:
                future.exception()
            except asyncio.CancelledError:
                pass
            self._ssl_connect_future = None

    def connect(self, address, server_hostname=None):
        raise NotImplementedError("a TLS stream of tornado_c is made connected, by start_tls")

    def start_tls(self, server_side, ssl_options=None, server_hostname=None):
        raise ValueError("IOStream is not idle; cannot convert to SSL")

    _is_connreset = _up.SSLIOStream._is_connreset  # stateless


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
# upstream SSLIOStream's own machinery, except what works on the attributes
# _SSLIOStream keeps as upstream does (_ssl_connect_future, _ssl_accepting)
for _name, _value in vars(_up.SSLIOStream).items():
    if (callable(_value) and not _name.startswith("__")
            and _name not in _SSLIOStream.__dict__ and not hasattr(IOStream, _name)
            and _name not in ("wait_for_handshake", "_finish_ssl_connect")):
        setattr(_SSLIOStream, _name, _not_here(_name))
del _cls, _name, _value

_core._stream_setup(IOStream, StreamClosedError, UnsatisfiableReadError,  # noqa: F821
                    StreamBufferFullError, _gen_log, _ioloop.IOLoop.current)  # noqa: F821
