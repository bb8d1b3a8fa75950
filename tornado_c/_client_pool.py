"""Keep-alive connection pooling for the simple HTTP client, as an opt-in.

Upstream's ``SimpleAsyncHTTPClient`` opens one connection per request (it
sends ``Connection: close`` and closes the stream after the response), and
that stays the default under the switch.  An application that wants its
connections reused configures this subclass instead::

    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure("tornado_c._client_pool.KeepAliveAsyncHTTPClient",
                              max_idle_per_host=8, idle_timeout=30.0)

It works with or without the switch (on the tornado_c loop the streams are
the C IOStream and the responses are read by tornado_c's connection class,
since the connection is still built from ``tornado.simple_httpclient``'s
module global ``HTTP1Connection``).  Everything else is upstream's
``_HTTPConnection``: this module only changes where a stream comes from and
where it goes after the response.

* A request without its own ``Connection`` header is sent with
  ``Connection: keep-alive`` (upstream would add ``close``).
* After a response, the stream goes back to the client's idle pool when it
  can carry another request: HTTP/1.1 response without ``Connection:
  close``, a body framed by Content-Length or chunked (or none: HEAD, 204,
  304), the request fully written, nothing left unread in the stream, no
  error.  When it is taken again, a plain stream with anything pending on
  its socket (unsolicited bytes or the server's close) is dropped.  Otherwise it is closed, as upstream does.
* A request takes the most recently used idle stream of the same
  (host, port, address family, TLS options object, source address,
  max_buffer_size).  An HTTPS request pools only when it passes its own
  ``ssl_options`` object (an ``SSLContext``, the same one each time):
  without one, upstream builds a fresh context for every request (from
  ``validate_cert``, ``ca_certs``...), so such requests connect anew each
  time, as with the default client.
* Idle streams are dropped after ``idle_timeout`` seconds (checked whenever
  a stream is taken or returned), when the server
  closes them, beyond ``max_idle_per_host`` per key, and on ``close()``.
* A reused stream the server had closed in the meantime (the usual race of
  keep-alive clients) fails before any byte of a response arrives; such a
  request is sent once more on a fresh connection, unless it has a
  ``body_producer`` (which cannot be replayed).  The request timeout keeps
  counting from the first attempt.
"""

import collections
import socket
import ssl

from tornado import iostream
from tornado.httpclient import HTTPRequest, _RequestProxy
from tornado.simple_httpclient import (
    HTTPStreamClosedError,
    SimpleAsyncHTTPClient,
    _HTTPConnection,
)

from tornado_c._client_entry import _PROXY_GETATTR, _proxy_option

__all__ = ["KeepAliveAsyncHTTPClient"]

_STALE_ERRORS = (iostream.StreamClosedError, HTTPStreamClosedError, ConnectionResetError,
                 BrokenPipeError)


class _IdlePool:
    """Idle streams by key, most recently used last."""

    def __init__(self, io_loop, max_idle_per_host, idle_timeout):
        self._io_loop = io_loop
        self._max = max_idle_per_host
        self._timeout = idle_timeout
        self._idle = collections.defaultdict(list)  # key -> [(stream, since)]
        # streams handed out again, requests sent again (tests, benchmarks)
        self.reused = 0
        self.retried = 0
        self.closed = False

    def take(self, key):
        entries = self._idle.get(key)
        now = self._io_loop.time()
        while entries:
            stream, since = entries.pop()
            stream.set_close_callback(None)
            if (stream.closed() or now - since > self._timeout or stream._read_buffer_size
                    or _input_pending(stream)):
                stream.close()
                continue
            self.reused += 1
            return stream
        self._idle.pop(key, None)
        return None

    def put(self, key, stream):
        if self.closed or stream.closed():
            stream.close()
            return
        self._expire()
        entries = self._idle[key]
        if len(entries) >= self._max:
            old, _ = entries.pop(0)
            old.set_close_callback(None)
            old.close()
        entries.append((stream, self._io_loop.time()))
        # The connection that read the last response is still unwinding
        # (it clears the stream's close callback last), so the watch for
        # the server's close starts on the next iteration, if the stream is
        # still idle then.  A request queued behind that response can take
        # the stream at once (its connect runs in a later step).
        self._io_loop.add_callback(self._watch, key, stream)

    def _expire(self):
        now = self._io_loop.time()
        for key in list(self._idle):
            keep = []
            for stream, since in self._idle[key]:
                if now - since > self._timeout:
                    stream.set_close_callback(None)
                    stream.close()
                else:
                    keep.append((stream, since))
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    def _watch(self, key, stream):
        if any(e[0] is stream for e in self._idle.get(key, ())):
            stream.set_close_callback(lambda: self._forget(key, stream))

    def _forget(self, key, stream):
        entries = self._idle.get(key)
        if entries:
            entries[:] = [e for e in entries if e[0] is not stream]
            if not entries:
                self._idle.pop(key, None)

    def idle_count(self):
        return sum(len(v) for v in self._idle.values())

    def close(self):
        self.closed = True
        idle, self._idle = self._idle, collections.defaultdict(list)
        for entries in idle.values():
            for stream, _ in entries:
                stream.set_close_callback(None)
                stream.close()


_PEEK = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)  # the flags as a plain int: no enum "|"


def _input_pending(stream):
    """Has the server sent anything (bytes or its close) to an idle plain
    stream that the stream has not read yet?  A peek at the socket; TLS
    streams rely on the stream's own state (raw bytes there may be
    post-handshake records)."""
    sock = getattr(stream, "socket", None)
    if sock is None or isinstance(sock, ssl.SSLSocket):
        return False
    try:
        sock.recv(1, _PEEK)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    return True  # data, or b"": the server's close


_ABSENT = object()


def _option(request, name):
    """getattr(request, name) for the _RequestProxy a connection has,
    without __getattr__'s AttributeError round trip where it can be read
    directly (tornado_c._client_entry._proxy_option)."""
    value = _proxy_option(request, name, _ABSENT)
    return getattr(request, name) if value is _ABSENT else value


def _pool_key(host, port, af, ssl_options, source_ip, max_buffer_size):
    if ssl_options is not None:
        try:
            hash(ssl_options)
        except TypeError:  # a dict: no identity to share a stream under
            return None
    return (host, port, af, ssl_options, source_ip, max_buffer_size)


class _Connector:
    """Stands in for the client's TCPClient in one _KeepAliveConnection:
    an idle stream of the same key if there is one, else a new one."""

    def __init__(self, owner, tcp_client, pool):
        self._owner = owner
        self._tcp_client = tcp_client
        self._pool = pool

    async def connect(self, host, port, af=0, ssl_options=None, max_buffer_size=None,
                      source_ip=None, source_port=None, timeout=None):
        owner = self._owner
        if ssl_options is not None and ssl_options is not owner.request.ssl_options:
            # upstream builds a new context per request from validate_cert,
            # ca_certs...: nothing to share a stream under
            key = None
        else:
            key = _pool_key(host, port, af, ssl_options, source_ip, max_buffer_size)
        owner._pool_key = key
        if key is not None and not owner._fresh:
            stream = self._pool.take(key)
            if stream is not None:
                owner._reused = True
                return stream
        return await self._tcp_client.connect(
            host, port, af=af, ssl_options=ssl_options, max_buffer_size=max_buffer_size,
            source_ip=source_ip, source_port=source_port, timeout=timeout)


class _KeepAlive:
    """What a pooled fetch's per-fetch connection adds to its base (upstream's
    _HTTPConnection, or under the switch tornado_c's HTTPClientConnection,
    whose lean run() connects through the client's tcp_client: the
    connector below)."""

    def __init__(self, client, request, release_callback, final_callback, max_buffer_size,
                 tcp_client, max_header_size, max_body_size):
        self._pool = client._pool
        self._pool_key = None
        self._reused = False
        self._fresh = False
        self._args = (max_buffer_size, tcp_client, max_header_size, max_body_size)
        # request.headers: the HTTPRequest's property, for a proxy over one
        # (as upstream's __getattr__ reads it when it is not None)
        inner = request.__dict__.get("request") if type(request) is _RequestProxy else None
        headers = None
        if (type(inner) is HTTPRequest and _RequestProxy.__getattr__ is _PROXY_GETATTR
                and "headers" not in request.__dict__):
            headers = inner.headers
        if headers is None:
            headers = request.headers
        if "Connection" not in headers:
            headers["Connection"] = "keep-alive"
        # upstream's __init__ schedules run(); it starts on the next loop
        # iteration, after the connector below is in place (the C fetch
        # takes its stream from _c_take instead)
        super().__init__(client, request, release_callback, final_callback, max_buffer_size,
                         tcp_client, max_header_size, max_body_size)
        if not getattr(self, "_c_fetch", False):
            self.tcp_client = _Connector(self, tcp_client, self._pool)

    def _c_take(self, host, port):
        """The C fetch's connect for this request (tornado_c's
        csrc/http/client_fetch.c; an http URL with an IPv4-literal host, the
        host and port as run() would pass them to connect()): what the
        connector gives -- the key, and an idle stream or None (then the C
        fetch connects)."""
        af = socket.AF_INET if _option(self.request, "allow_ipv6") is False else socket.AF_UNSPEC
        key = self._pool_key = _pool_key(host, port, af, None, None, self._args[0])
        if not self._fresh:
            stream = self._pool.take(key)
            if stream is not None:
                self._reused = True
                return stream
        return None

    def _reusable(self):
        conn = getattr(self, "connection", None)
        stream = getattr(self, "stream", None)
        facts = getattr(self, "_c_facts", None)  # the C fetch's (no HTTP1Connection)
        if (conn is None and facts is None) or stream is None or stream.closed() \
                or self._pool_key is None or self._pool.closed:
            return False
        if conn is None:
            version, written = facts
        else:
            if not conn._write_finished or not conn._finish_future.done():
                return False
            start_line = getattr(conn, "_response_start_line", None)
            version, written = (None if start_line is None else start_line.version), True
        headers = self.headers
        if not written or headers is None or version != "HTTP/1.1":
            return False
        if "close" in headers.get("Connection", "").lower():
            return False
        framed = (
            "Content-Length" in headers
            or headers.get("Transfer-Encoding", "").lower() == "chunked"
            or self.code in (204, 304)
            or _option(self.request, "method") == "HEAD"
        )
        return framed and not stream._read_buffer_size

    def _on_end_request(self):
        if self._reusable():
            self._pool.put(self._pool_key, self.stream)
        else:
            self.stream.close()

    def _stale(self, error):
        """Did a reused stream fail before any of the response arrived?"""
        return (
            self._reused
            and self.final_callback is not None
            and self.code is None
            and (error is None or isinstance(error, _STALE_ERRORS))
            and self.request.body_producer is None
        )

    def _retry(self):
        """The server had closed the idle stream: once more, on a new one
        (the callbacks move to the new connection, the clock does not
        restart)."""
        self._remove_timeout()
        if hasattr(self, "stream"):
            self.stream.close()
        final_callback, self.final_callback = self.final_callback, None
        release_callback, self.release_callback = self.release_callback, None
        retry = type(self)(self.client, self.request, release_callback, final_callback,
                           *self._args)
        retry._fresh = True
        retry.start_time = self.start_time
        retry.start_wall_time = self.start_wall_time
        self._pool.retried += 1

    def _handle_exception(self, typ, value, tb):
        if self._stale(value):
            self._retry()
            return True
        return super()._handle_exception(typ, value, tb)

    def on_connection_close(self):
        # upstream raises the stream's error from here (into the reading
        # coroutine); a stale reused stream is retried instead
        if self._stale(getattr(self.stream, "error", None)):
            self._retry()
            return
        super().on_connection_close()


class _KeepAliveConnection(_KeepAlive, _HTTPConnection):
    pass


# the pooled connection class over each other per-fetch connection class
_KEEPALIVE_CLASSES = {}


class KeepAliveAsyncHTTPClient(SimpleAsyncHTTPClient):
    """``SimpleAsyncHTTPClient`` that keeps connections open and reuses them
    (see the module docstring).  Extra arguments: ``max_idle_per_host``
    (idle streams kept per host, port and TLS options; default 8) and
    ``idle_timeout`` (seconds an idle stream is kept; default 30)."""

    def initialize(self, max_idle_per_host=8, idle_timeout=30.0, **kwargs):
        super().initialize(**kwargs)
        self._pool = _IdlePool(self.io_loop, max_idle_per_host, idle_timeout)

    def _connection_class(self):
        # under the switch SimpleAsyncHTTPClient's gives tornado_c's
        # HTTPClientConnection (tornado_c/simple_httpclient.py)
        base = super()._connection_class()
        if base is _HTTPConnection:
            return _KeepAliveConnection
        cls = _KEEPALIVE_CLASSES.get(base)
        if cls is None:
            cls = _KEEPALIVE_CLASSES[base] = type(
                "_KeepAliveConnection", (_KeepAlive, base), {"__module__": __name__})
            from tornado_c import simple_httpclient as _tc_sc

            if base is _tc_sc.HTTPClientConnection:
                _tc_sc._POOLED_CLASSES.add(cls)
                _tc_sc._POOLED_END_REQUEST.add(_KeepAlive._on_end_request)
        return cls

    def close(self):
        self._pool.close()
        super().close()

