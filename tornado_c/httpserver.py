"""tornado_c.httpserver: the public names of ``tornado.httpserver``, and
``HTTPServer``, the HTTP/1.x server whose connections are served in C.

``HTTPServer`` subclasses ``tornado.httpserver.HTTPServer`` and keeps all of
its options and its TCPServer behaviour (listen, bind/start, add_sockets,
stop, close_all_connections, reuse_port).  The ``http`` switch component
installs it with ``tornado.httpserver.HTTPServer.configure(...)``, so
``Application.listen``, ``HTTPServer(app)`` and ``tornado.testing`` use it.

Each accepted connection is a C IOStream (tornado_c.iostream.IOStream, on
libuv) whose input is consumed in C by ``_core.HTTPServerConnection``
(tornado 6.6's request grammar, HTTP1Connection's keep-alive, body, timeout
and response-framing rules, the same log lines); ``request.connection`` is a
``_core.HTTPConnection``.  A connection
falls back to upstream's pure-Python path (IOStream + HTTP1ServerConnection)
when the C path cannot serve it:

- the running event loop is not a tornado_c loop;
- a subclass overrides ``handle_stream`` (it expects an IOStream);
- ``ssl_options`` is set and TLS cannot run in the C stream (a context
  class that is not the stdlib's, a replaced ``SSLIOStream`` /
  ``ssl_wrap_socket``: upstream's ``SSLIOStream``, strict mode still
  applies: tornado_c/_strict.py).

With ``ssl_options`` the connection's IOStream is the C stream with TLS
inside it (tornado_c.iostream._SSLIOStream, a subclass of upstream's
``SSLIOStream``; its handshake is upstream's ``_do_ssl_handshake``), and
``_core.HTTPServerConnection`` consumes the decrypted bytes
(``request.protocol`` "https", ``request.get_ssl_certificate()`` as
upstream's).

``request.connection.stream`` is that IOStream (writes and close work; reads
raise RuntimeError while the server owns the input).  ``detach()`` hands it
over with every byte not yet parsed still buffered.
"""

import asyncio as _asyncio
import os as _os

import tornado.httpserver as _hs
import tornado.iostream as _up_iostream
from tornado import netutil as _netutil
from tornado.log import app_log as _app_log

from tornado_c import _core
from tornado_c import iostream as _iostream
from tornado_c._strict import StrictHTTP1ServerConnection as _StrictHTTP1ServerConnection
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.httpserver")

_UpstreamHTTPServer = _hs.HTTPServer
_DEFAULT_MAX_BUFFER = 104857600


def _strict_from_env():
    """TORNADO_C_STRICT_HTTP=1 (any value but empty or "0") turns strict mode
    on for every HTTPServer made without strict_http=."""
    return _os.environ.get("TORNADO_C_STRICT_HTTP", "") not in ("", "0")


# connections served in C since import (tests check the C path is used)
_stats = {"c_connections": 0, "python_connections": 0}


class HTTPServer(_UpstreamHTTPServer):
    __doc__ = (
        """tornado.httpserver.HTTPServer with its connections served in C.

    Same constructor, options and behaviour as upstream's (below).  A
    connection is served by upstream's Python code instead when the
    running loop is not a tornado_c loop, when a subclass overrides
    ``handle_stream``, or when ``ssl_options`` cannot run in the C stream
    (a context class that is not the stdlib's); with ``ssl_options`` the
    TLS is inside the C stream.

    One more keyword argument: ``strict_http=True`` (default: the
    environment variable ``TORNADO_C_STRICT_HTTP=1``, else off) accepts only
    requests that llhttp (the system's, in its strict build) accepts too and
    frames the same way, besides Tornado's own grammar; any other request
    gets upstream's "Malformed HTTP message" log line, a 400 and a close.
    For servers behind another proxy, where two parsers reading one byte
    stream differently is how requests are smuggled.  It applies to the
    connections served in C and to those upstream's Python path serves (a
    non-tornado_c loop, ``ssl_options`` that stay upstream's), where llhttp
    judges the bytes upstream's HTTP1Connection reads (tornado_c/_strict.py)
    with the same verdicts; a subclass that overrides ``handle_stream`` gets it only
    through ``super().handle_stream`` (a warning is logged once).

    Upstream's documentation:
    """
        + (_UpstreamHTTPServer.__doc__ or "")
    )

    def initialize(self, *args, strict_http=None, **kwargs):
        self.strict_http = _strict_from_env() if strict_http is None else bool(strict_http)
        self._strict_warned = False
        super().initialize(*args, **kwargs)

    def _c_loop(self):
        if type(self).handle_stream is not HTTPServer.handle_stream:
            return None
        try:
            loop = _asyncio.get_running_loop()
        except RuntimeError:
            return None
        if not isinstance(loop, _core.Loop):
            return None
        return loop

    def _c_tls_context(self):
        """ssl_options as the SSLContext the C TLS stream is made with, or
        None when upstream's TCPServer path must serve the connection (the
        conditions of tornado_c.iostream's TCPServer._handle_connection).
        Raises what ssl_wrap_socket would raise converting ssl_options."""
        if not _iostream._c_tls_enabled:
            return None
        up = _hs.TCPServer._handle_connection
        # tornado.tcpserver's module globals (the switch's replacement
        # keeps upstream's method)
        g = getattr(up, "_tornado_c_upstream", up).__globals__
        if (g.get("SSLIOStream") is not _up_iostream.SSLIOStream
                or g.get("ssl_wrap_socket") is not _netutil.ssl_wrap_socket):
            return None
        return _iostream._c_tls_context(self.ssl_options, True)

    def _handle_connection(self, connection, address):
        loop = self._c_loop()
        stream = None
        if loop is not None and self.ssl_options is not None:
            # TLS in the C stream under the C server, or upstream's
            # SSLIOStream path (TCPServer's, maybe tornado_c's stream there)
            try:
                context = self._c_tls_context()
            except Exception:
                # raised again where upstream's ssl_wrap_socket raises it
                context = None
            if context is None:
                loop = None
            else:
                try:
                    stream = _iostream._c_tls_server_stream(
                        connection, self.ssl_options, context, self.max_buffer_size, None)
                except Exception:
                    _app_log.error("Error in connection callback", exc_info=True)
                    connection.close()
                    return
        if loop is None:
            if (self.strict_http and not self._strict_warned
                    and type(self).handle_stream is not HTTPServer.handle_stream):
                self._strict_warned = True
                _app_log.warning(
                    "strict_http is applied by HTTPServer.handle_stream, which a "
                    "subclass overrides: not applied unless it calls super()")
            _stats["python_connections"] += 1
            return super()._handle_connection(connection, address)
        try:
            p = self.conn_params
            conn = _core.HTTPServerConnection(
                self,
                connection.fileno(),
                address,
                # upstream's _HTTPRequestContext: "https" for an SSLIOStream
                protocol=self.protocol or ("https" if stream is not None else None),
                trusted_downstream=self.trusted_downstream,
                loop=loop,
                max_header_size=p.max_header_size or 65536,
                # as HTTP1Connection: the stream's max_buffer_size by default
                max_body_size=p.max_body_size
                if p.max_body_size is not None
                else (self.max_buffer_size or _DEFAULT_MAX_BUFFER),
                chunk_size=p.chunk_size or 65536,
                header_timeout=p.header_timeout,
                body_timeout=p.body_timeout,
                decompress=bool(p.decompress),
                no_keep_alive=bool(p.no_keep_alive),
                max_buffer_size=self.max_buffer_size or 0,
                read_chunk_size=self.read_chunk_size or 0,
                strict=self.strict_http,
                stream=stream,
            )
            if stream is None:
                # the fd belongs to the connection's IOStream now
                connection.detach()
            _stats["c_connections"] += 1
            self._connections.add(conn)
        except Exception:
            _app_log.error("Error in connection callback", exc_info=True)
            if stream is not None:
                stream.close()
            else:
                connection.close()

    def handle_stream(self, stream, address):
        # Upstream's Python path (ssl_options, a non-tornado_c loop).  In
        # strict mode its connection is upstream's with llhttp judging what
        # it reads (tornado_c/_strict.py); otherwise upstream's own method.
        if not self.strict_http:
            return super().handle_stream(stream, address)
        context = _hs._HTTPRequestContext(stream, address, self.protocol,
                                          self.trusted_downstream)
        conn = _StrictHTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        conn.start_serving(self)

    def on_close(self, server_conn):
        self._connections.discard(server_conn)
