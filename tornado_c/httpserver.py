"""tornado_c.httpserver: the public names of ``tornado.httpserver``, and
``HTTPServer``, the HTTP/1.x server whose connections are served in C.

``HTTPServer`` subclasses ``tornado.httpserver.HTTPServer`` and keeps all of
its options and its TCPServer behaviour (listen, bind/start, add_sockets,
stop, close_all_connections, reuse_port).  The ``http`` switch component
installs it with ``tornado.httpserver.HTTPServer.configure(...)``, so
``Application.listen``, ``HTTPServer(app)`` and ``tornado.testing`` use it.

Each accepted connection is served by ``_core.HTTPServerConnection`` (C:
libuv I/O, tornado 6.6's request grammar, HTTP1Connection's keep-alive,
body, timeout and response-framing rules, the same log lines).  A connection
falls back to upstream's pure-Python path (IOStream + HTTP1ServerConnection)
when the C path cannot serve it:

- ``ssl_options`` is set (TLS is not done in C);
- the running event loop is not a tornado_c loop;
- a subclass overrides ``handle_stream`` (it expects an IOStream).

``request.connection.stream`` on a C connection is a write/close view
(write, close, closed, socket, set_nodelay); reading is the server's.
``detach()`` returns a real IOStream holding every byte not yet parsed.
"""

import asyncio as _asyncio
import os as _os
import socket as _socket
import weakref as _weakref

import tornado.httpserver as _hs
from tornado import gen as _gen
from tornado import httputil as _httputil
from tornado import iostream as _iostream
from tornado.http1connection import _GzipMessageDelegate
from tornado.log import app_log as _app_log
from tornado.log import gen_log as _gen_log

from tornado_c import _core
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.httpserver")

_UpstreamHTTPServer = _hs.HTTPServer
_DEFAULT_MAX_BUFFER = 104857600


def _make_pystream(fd, leftover):
    """detach(): an upstream IOStream on fd with `leftover` already read."""
    sock = _socket.socket(fileno=fd)
    sock.setblocking(False)
    stream = _iostream.IOStream(sock)
    if leftover:
        stream._read_buffer += leftover
        stream._read_buffer_size += len(leftover)
    return stream


_core._http_server_init(
    _httputil.RequestStartLine,
    _httputil.HTTPHeaders,
    _app_log,
    _gen_log,
    _httputil.HTTPInputError,
    _httputil.HTTPOutputError,
    _iostream.StreamClosedError,
    _make_pystream,
    _GzipMessageDelegate,
    _gen.convert_yielded,
    _httputil.ResponseStartLine,
)


class _ConnectionStream:
    """``request.connection.stream`` of a C connection: the write/close part
    of the IOStream API (raw bytes go out in order with the response).
    Reading is the server's job; use ``detach()`` to take the connection
    over completely."""

    def __init__(self, sconn):
        self._sconn = sconn
        self._socket = None
        self.error = None

    @property
    def io_loop(self):
        from tornado.ioloop import IOLoop

        return IOLoop.current()

    @property
    def socket(self):
        if self._socket is None:
            fd = self._sconn.fileno()
            if fd < 0:
                return None
            # a dup, so closing it never closes the connection
            self._socket = _socket.socket(fileno=_os.dup(fd))
        return self._socket

    def fileno(self):
        return self._sconn.fileno()

    def write(self, data):
        return self._sconn._write_raw(data)

    def close(self, exc_info=False):
        self._sconn._close_now()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def closed(self):
        return self._sconn.closed

    def set_nodelay(self, value):
        self._sconn._set_nodelay(value)

    def reading(self):
        return False

    def writing(self):
        return False


def _connection_stream(self):
    sconn = self._server_conn
    if sconn is None:
        return None
    view = _stream_views.get(sconn)
    if view is None:
        view = _stream_views[sconn] = _ConnectionStream(sconn)
    return view


_stream_views = _weakref.WeakKeyDictionary()
_core.HTTPConnection.stream = property(_connection_stream)


class _SocketHolder:
    """What _HTTPRequestContext reads from a stream: its socket."""

    __slots__ = ("socket",)

    def __init__(self, sock):
        self.socket = sock


# connections served in C since import (tests check the C path is used)
_stats = {"c_connections": 0, "python_connections": 0}


class HTTPServer(_UpstreamHTTPServer):
    __doc__ = _UpstreamHTTPServer.__doc__

    def _c_loop(self):
        if self.ssl_options is not None:
            return None
        if type(self).handle_stream is not _UpstreamHTTPServer.handle_stream:
            return None
        try:
            loop = _asyncio.get_running_loop()
        except RuntimeError:
            return None
        if not isinstance(loop, _core.Loop):
            return None
        return loop

    def _handle_connection(self, connection, address):
        loop = self._c_loop()
        if loop is None:
            _stats["python_connections"] += 1
            return super()._handle_connection(connection, address)
        try:
            context = _hs._HTTPRequestContext(
                _SocketHolder(connection), address, self.protocol, self.trusted_downstream
            )
            p = self.conn_params
            conn = _core.HTTPServerConnection(
                self,
                connection.fileno(),
                context,
                loop,
                p.max_header_size or 65536,
                p.max_body_size or _DEFAULT_MAX_BUFFER,
                p.chunk_size or 65536,
                p.header_timeout,
                p.body_timeout,
                bool(p.decompress),
                bool(p.no_keep_alive),
                self.max_buffer_size or _DEFAULT_MAX_BUFFER,
            )
            # the fd belongs to the C connection now
            connection.detach()
            _stats["c_connections"] += 1
            self._connections.add(conn)
        except Exception:
            _app_log.error("Error in connection callback", exc_info=True)
            connection.close()

    def on_close(self, server_conn):
        self._connections.discard(server_conn)
