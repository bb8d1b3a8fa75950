"""The simple HTTP client with its hot path in C.

While the ``http`` component is on:

* ``tornado.simple_httpclient``'s module global ``HTTP1Connection`` (what
  ``_HTTPConnection._create_connection`` builds, for ``SimpleAsyncHTTPClient``
  and the WebSocket client) is `HTTP1ClientConnection` below: upstream's
  class with the reading of a response replaced.  On the C stream (plain
  http, no header/body timeout) the head and the body are read by
  ``_core.HTTPClientParser`` as the stream's consumer (csrc/http/client.c):
  the head parsed, checked and turned into ``ResponseStartLine`` /
  ``HTTPHeaders`` in C, the framing decision (1xx, HEAD/204/304,
  Content-Length and Transfer-Encoding checks, max_body_size) made there,
  and the body (fixed, chunked, until close) decoded in C -- into the
  delegate's buffer when the delegate is upstream's ``_HTTPConnection``
  without a streaming_callback or decompressor, otherwise through
  upstream's body loops and the delegate's data_received.  The grammar and
  the errors are upstream's client's (tests/test_http_client_grammar.py);
  an https fetch's stream is the C stream with TLS inside it
  (tornado_c.iostream), read the same way; upstream's SSLIOStream (the
  cases tornado_c.iostream leaves to it) keeps upstream's reads
  (read_until_regex, the same parser).
  ``write_request`` builds a non-chunked request in C and sends it with one
  stream write.

* ``SimpleAsyncHTTPClient._connection_class`` gives `HTTPClientConnection`:
  upstream's per-fetch delegate with a leaner ``run()`` for http and https
  requests (no body_producer, expect_100_continue, network_interface or
  proxy options: those run upstream's ``run()``), IP-literal hosts of the
  default resolver connected without its executor hop (then for https
  TCPClient.connect's start_tls step), and
  ``headers_received`` / ``_should_follow_redirect`` / ``finish`` reading
  the request's options without ``_RequestProxy``'s lookups.  What they do
  and in which order is upstream's (tests/test_http_client_request.py).

Known difference: a negative ``max_body_size`` counts as 0 (upstream
compares the length with the negative number, so it then refuses even an
empty body).
"""

import functools
import socket
import sys
import time
import urllib.parse
from io import BytesIO

from tornado import gen, httputil, iostream, netutil, tcpclient, version
from tornado import http1connection as _h1
from tornado import simple_httpclient as _sc
from tornado.concurrent import future_add_done_callback
from tornado.escape import _unicode
from tornado.httpclient import HTTPRequest, HTTPResponse, _RequestProxy
from tornado.ioloop import IOLoop
from tornado.log import app_log, gen_log
from tornado.platform import asyncio as _asyncio_platform

from tornado_c import _core
from tornado_c import iostream as _tc_iostream

__all__ = ["HTTP1ClientConnection", "HTTPClientConnection"]

_HEAD_END = b"\r?\n\r?\n"


_NO_SINK = object()


def _body_sink(delegate):
    """Where read_body() may put the body for `delegate`: the
    _HTTPConnection itself when its chunks bytearray (what upstream's
    data_received appends every piece to) is still empty -- the body then
    replaces it as one bytes object --, that bytearray otherwise, None when
    the pieces are dropped (a redirect to follow), or _NO_SINK when the body
    must go through the delegate's own data_received (a streaming_callback,
    a gzip decompressor, any other delegate)."""
    if type(delegate) is _h1._GzipMessageDelegate:
        if delegate._decompressor is not None:
            return _NO_SINK
        delegate = delegate._delegate  # what its data_received passes to
    if (
        not isinstance(delegate, _sc._HTTPConnection)
        or type(delegate).data_received is not _sc._HTTPConnection.data_received
        or type(delegate)._should_follow_redirect not in _REDIRECT_CHECKS
    ):
        return _NO_SINK
    if delegate._should_follow_redirect():
        return None
    attrs = getattr(delegate, "_c_attrs", None)
    if attrs is None:
        streaming_callback = delegate.request.streaming_callback
    else:
        streaming_callback = attrs["streaming_callback"]
        if streaming_callback is None:
            streaming_callback = delegate._c_defaults.get("streaming_callback")
    if streaming_callback is not None:
        return _NO_SINK
    chunks = delegate.chunks
    if type(chunks) is not bytearray:
        return _NO_SINK
    # nothing received yet (one response per delegate): the body may be
    # handed over as one bytes object
    return delegate if not chunks else chunks


class HTTP1ClientConnection(_h1.HTTP1Connection):
    """upstream's HTTP1Connection for the client side, response head and
    framing in C (see the module docstring)."""

    def read_response(self, delegate):
        """upstream's read_response and _read_message in one coroutine;
        the _GzipMessageDelegate upstream wraps the delegate in when
        decompressing is made only for a response that is gzip-encoded (the
        only one it changes anything for), before its headers_received."""
        if not self.is_client:  # not ours to change
            return super().read_response(delegate)
        return self._c_read_message(delegate)

    async def _c_read_message(self, delegate, parser=None, head=None):
        try:
            if head is not None:
                # the C fetch read this head (csrc/http/client_fetch.c)
                self._c_parser = parser
                return await self._c_read(delegate, head, 0, self.params.decompress)
            return await self._read_message_inner(delegate, 0, self.params.decompress)
        except _h1._QuietException:
            self.close()
            return False

    def _c_sent(self, start_line):
        """The state write_request() leaves once its write is done, for a
        request the C fetch wrote."""
        self._request_start_line = start_line
        self._chunking_output = False
        self._expected_content_remaining = None
        self._write_future = None
        self._write_finished = True
        if not self._read_finished:
            self._disconnect_on_finish = True
        self._finish_request(None)

    async def _read_message_inner(self, delegate, num_1xx=0, gzip_pending=False):
        if not self.is_client:  # not ours to change
            return await super()._read_message_inner(delegate, num_1xx)
        if num_1xx == 0:
            req = self._request_start_line
            self._c_parser = _core.HTTPClientParser(
                request_head=req is not None and req.method == "HEAD"
            )
        return await self._c_read(delegate, None, num_1xx, gzip_pending)

    async def _c_read(self, delegate, head, num_1xx, gzip_pending):
        """_read_message_inner for the client, from the head's read on (head
        None) or from a head the C fetch read (start_line, headers)."""
        parser = self._c_parser
        owe_close = False  # the delegate has the head: on_connection_close is owed
        # the C stream without timeouts is read by the parser itself, as the
        # stream's consumer (see _core.HTTPClientParser.read_head/read_body)
        c_read = self.params.header_timeout is None and isinstance(self.stream, _core.Stream)
        given = head is not None
        try:
            if given:
                start_line, headers = head
                head = None
            elif c_read:
                # body bytes that come with the head may go straight into
                # the bytes object read_body(stream, bytes) returns, for
                # the delegate whose body that can be (see _body_sink)
                start_line, headers = await parser.read_head(
                    self.stream,
                    self.params.max_header_size,
                    self._body_timeout is None and type(delegate) is HTTPClientConnection,
                )
                head = None
            else:
                head_future = self.stream.read_until_regex(
                    _HEAD_END, max_bytes=self.params.max_header_size
                )
            if c_read or given:
                pass
            elif self.params.header_timeout is None:
                head = await head_future
            else:
                try:
                    head = await gen.with_timeout(
                        self.stream.io_loop.time() + self.params.header_timeout,
                        head_future,
                        quiet_exceptions=iostream.StreamClosedError,
                    )
                except TimeoutError:
                    self.close()
                    return False
            if head is not None:
                start_line, headers = parser.head(head)
            self._response_start_line = start_line
            self._disconnect_on_finish = False
            if gzip_pending and headers.get("Content-Encoding", "").lower() == "gzip":
                delegate = _h1._GzipMessageDelegate(
                    delegate, self.params.chunk_size, self._max_body_size
                )
                gzip_pending = False
            owe_close = True
            with _h1._ExceptionLoggingContext(app_log):
                pending = delegate.headers_received(start_line, headers)
                if pending is not None:
                    await pending
            if self.stream is None:  # detached by the delegate
                owe_close = False
                return False
            sink = (
                _body_sink(delegate) if c_read and self._body_timeout is None else _NO_SINK
            )
            kind, length, rewrite = parser.framing(
                self._max_body_size, isinstance(sink, _sc._HTTPConnection)
            )
            if kind == "1xx":
                # the next head is the response; the delegate is the next
                # read's from here on
                owe_close = False
                return await self._read_message_inner(delegate, num_1xx + 1, gzip_pending)
            if rewrite is not None:
                headers["Content-Length"] = rewrite
            body = None
            if kind == "none":
                sink = _NO_SINK
            if isinstance(sink, _sc._HTTPConnection):
                # the body in one bytes object, made in C: what
                # bytes(self.chunks) in finish() gives (bytes() of a bytes
                # object is that object)
                sink.chunks = await parser.read_body(self.stream, bytes)
            elif sink is not _NO_SINK:
                body = parser.read_body(self.stream, sink)
            elif kind == "fixed":
                body = self._read_fixed_body(length, delegate)
            elif kind == "chunked":
                body = self._read_chunked_body(delegate)
            elif kind == "until_close":
                body = self._read_body_until_close(delegate)
            if body is not None:
                if self._body_timeout is None:
                    await body
                else:
                    try:
                        await gen.with_timeout(
                            self.stream.io_loop.time() + self._body_timeout,
                            body,
                            quiet_exceptions=iostream.StreamClosedError,
                        )
                    except TimeoutError:
                        gen_log.info("Timeout reading body from %s", self.context)
                        self.stream.close()
                        return False
            self._read_finished = True
            with _h1._ExceptionLoggingContext(app_log):
                delegate.finish()
            owe_close = False
            if (
                not self._finish_future.done()
                and self.stream is not None
                and not self.stream.closed()
            ):
                self.stream.set_close_callback(self._on_connection_close)
                await self._finish_future
            if self._disconnect_on_finish:
                self.close()
            if self.stream is None:
                return False
        except httputil.HTTPInputError as e:
            gen_log.info("Malformed HTTP message from %s: %s", self.context, e)
            # before or after the head, the delegate hears of the close
            owe_close = True
            self.close()
            return False
        finally:
            # body bytes prefetched with the head and not read are the
            # stream's again (a delegate that detached it, an error)
            parser.release()
            if owe_close:
                with _h1._ExceptionLoggingContext(app_log):
                    delegate.on_connection_close()
            self._clear_callbacks()
        return True

    def write_request(self, start_line, headers, body):
        """write_headers(start_line, headers), write(body) when body is not
        None, then finish(), as upstream's client-mode connection does them
        for a request that is not chunked -- with the bytes built in C and
        sent with one stream write.  False (nothing done) when this request
        needs upstream's methods: a chunked one, or one whose lines C does
        not build (see _core.http_client_request)."""
        if "Content-Length" in headers:
            expected = _h1.parse_int(headers["Content-Length"])
        elif start_line.method in ("POST", "PUT", "PATCH"):
            return False  # chunked output
        else:
            expected = None
        if expected is not None and expected != (0 if body is None else len(body)):
            return False  # upstream raises HTTPOutputError from write/finish
        data = _core.http_client_request(start_line.method, start_line.path, headers, body)
        if data is None or self.stream.closed():
            return False
        self._request_start_line = start_line
        self._chunking_output = False
        self._expected_content_remaining = 0 if expected is not None else None
        self._write_future = None
        self._pending_write = self.stream.write(data)
        self._write_finished = True
        if not self._read_finished:
            self._disconnect_on_finish = True
        self.stream.set_nodelay(True)
        future_add_done_callback(self._pending_write, self._finish_request)
        return True


# request options that upstream's run() handles (HTTPRequest attributes)
_SLOW_OPTIONS = (
    "body_producer",
    "expect_100_continue",
    "network_interface",
    "proxy_host",
    "proxy_port",
    "proxy_username",
    "proxy_password",
    "proxy_auth_mode",
)


def _connect_functions():
    return (
        tcpclient.TCPClient.connect,
        tcpclient.TCPClient._create_stream,
        tcpclient._Connector.start,
        netutil.DefaultLoopResolver.resolve,
    )


# what the fast connect stands for; code that replaced one of these (a spy,
# a patch) gets upstream's connect, which calls it
_UPSTREAM_CONNECT = _connect_functions()


def _add_timeout(io_loop, deadline, callback, arg):
    """io_loop.add_timeout(deadline, callback, arg) for a float deadline:
    what BaseAsyncIOLoop.call_at does (a call_later on the asyncio loop
    running the callback through IOLoop._run_callback), without
    add_timeout's numbers.Real check and the call_at frame, while those two
    methods are upstream's."""
    cls = type(io_loop)
    if cls.add_timeout is not _IOLoop_add_timeout or cls.call_at is not _BaseAsyncIOLoop_call_at:
        return io_loop.add_timeout(deadline, callback, arg)
    return io_loop.asyncio_loop.call_later(
        max(0, deadline - io_loop.time()), io_loop._run_callback, functools.partial(callback, arg)
    )


_IOLoop_add_timeout = IOLoop.add_timeout
_IOLoop_time = IOLoop.time
_BaseAsyncIOLoop_call_at = _asyncio_platform.BaseAsyncIOLoop.call_at


def _task_result(task):
    task.result()


def _task_done(task):
    # upstream checks the end of run() with f.result() in an IOLoop
    # callback (so an exception is logged by the IOLoop); only an exception
    # needs that callback
    if task.cancelled() or task.exception() is not None:
        IOLoop.current().add_callback(_task_result, task)


def _raise(exc):
    raise exc


def _c_task_failed(exc):
    # what _task_done does for a run() Task that ended with `exc`: the
    # IOLoop logs it from a callback
    IOLoop.current().add_callback(_raise, exc)


_USER_AGENT = "Tornado/" + version


def _c_fetch_ready(conn):
    """The C fetch stands for upstream's connect, stream and connection
    while none of them was replaced (a subclass, a patch, a spy)."""
    tcp_client = conn.tcp_client
    cls = type(conn.io_loop)
    return (
        type(tcp_client) is tcpclient.TCPClient
        and type(tcp_client.resolver) is netutil.DefaultLoopResolver
        and _UPSTREAM_CONNECT == _connect_functions()
        and tcpclient.IOStream is _tc_iostream.IOStream
        and _sc.HTTP1Connection is HTTP1ClientConnection
        and type(conn)._create_connection is _UPSTREAM_CREATE_CONNECTION
        and cls.add_timeout is _IOLoop_add_timeout
        and cls.call_at is _BaseAsyncIOLoop_call_at
        and cls.time is _IOLoop_time
    )


def _is_dotted_quad(host):
    """True if `host` is an IPv4 address exactly as inet_ntop writes it."""
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host)) == host
    except (OSError, TypeError, ValueError):
        return False


def _connect_timed_out(state, stream, addr):
    state.append(tcpclient._format_addr(addr))
    stream.close()


class HTTPClientConnection(_sc._HTTPConnection):
    """upstream's _HTTPConnection (SimpleAsyncHTTPClient's per-fetch
    delegate) with a leaner run() for the common request: http or https, no
    body_producer, no expect_100_continue, no network_interface, no proxy
    options.  What it reads and assigns is upstream's (the request's options
    through the client's defaults as _RequestProxy gives them, the headers
    added in upstream's order); a host that is an IP literal, resolved by
    the client's default resolver, is connected to without the resolver's
    executor round trip (getaddrinfo of a numeric host gives the same single
    address at once); the request goes out in one write built in C
    (HTTP1ClientConnection.write_request).  Every other request runs
    upstream's run()."""

    def __init__(
        self,
        client,
        request,
        release_callback,
        final_callback,
        max_buffer_size,
        tcp_client,
        max_header_size,
        max_body_size,
    ):
        # upstream's attributes; run() starts as upstream's add_future(
        # convert_yielded(self.run()), lambda f: f.result()) starts it (a
        # task; a failed end is raised in a callback of the IOLoop, see
        # _task_done), without the wrappers' frames
        self.io_loop = io_loop = IOLoop.current()
        self.start_time = io_loop.time()
        self.start_wall_time = time.time()
        self.client = client
        self.request = request
        self.release_callback = release_callback
        self.final_callback = final_callback
        self.max_buffer_size = max_buffer_size
        self.tcp_client = tcp_client
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self.code = None
        self.headers = None
        self.chunks = bytearray()
        self._decompressor = None
        self._timeout = None
        self._sockaddr = None
        self._c_redirect = None  # (follow_redirects, max_redirects) once read
        self._c_fetch = False  # the fetch runs in C
        # for an HTTPRequest (exactly) behind the _RequestProxy: its __dict__
        # and the defaults, read live as the proxy reads them (plain
        # attributes), without the proxy's __getattr__
        inner = request.request if type(request) is _RequestProxy else None
        if type(inner) is HTTPRequest:
            self._c_attrs = inner.__dict__
            self._c_defaults = request.defaults or {}
            cls = type(self)
            if (
                (cls is HTTPClientConnection or cls in _POOLED_CLASSES)
                and _c_fetch_ready(self)
                and _core.http_client_fetch(
                    self,
                    self._c_attrs,
                    request.defaults,
                    io_loop.asyncio_loop,
                    _USER_AGENT,
                    _finish_in_c(cls, type(io_loop)),
                    cls is not HTTPClientConnection,
                )
            ):
                # the fetch runs in C (csrc/http/client_fetch.c), which
                # hands its uncommon turns to the _c_* methods below
                self._c_fetch = True
                return
        else:
            self._c_attrs = None
        self._c_task(self.run())

    def _c_task(self, coro):
        # as upstream starts run(): a Task whose failure the IOLoop logs
        task = self.io_loop.asyncio_loop.create_task(coro)
        task.add_done_callback(_task_done)

    def _c_connection(self, stream, decompress):
        """self._create_connection(stream), upstream's with decompress_response
        given rather than read through the _RequestProxy."""
        if type(self)._create_connection is not _UPSTREAM_CREATE_CONNECTION:
            return self._create_connection(stream)
        stream.set_nodelay(True)
        return _sc.HTTP1Connection(
            stream,
            True,
            _h1.HTTP1ConnectionParameters(
                no_keep_alive=True,
                max_header_size=self.max_header_size,
                max_body_size=self.max_body_size,
                decompress=bool(decompress),
            ),
            self._sockaddr,
        )

    # What the C fetch hands over.  Each is the rest of upstream's run() (and
    # of the client connection's read) from the point the C fetch reached.

    def _c_after_head(self, stream, parser, start_line, headers, path):
        """A head the C fetch does not finish (a 1xx, a gzip body to
        decompress, a redirect to follow): the rest of the read in a Task,
        on the connection run() would have made."""
        self._c_task(self._c_after_head_run(stream, parser, (start_line, headers), path))

    async def _c_after_head_run(self, stream, parser, head, path):
        try:
            try:
                self.connection = connection = self._c_connection(
                    stream, self.request.decompress_response
                )
                connection._c_sent(httputil.RequestStartLine(self.request.method, path, ""))
                await connection._c_read_message(self, parser, head)
            except iostream.StreamClosedError:
                if not self._handle_exception(*sys.exc_info()):
                    raise
        except Exception:
            if not self._handle_exception(*sys.exc_info()):
                raise

    def _c_send_slow(self, stream, path):
        """A request whose bytes C does not build: upstream's write_headers,
        body and read, in a Task."""
        self._c_task(self._c_send_slow_run(stream, path))

    async def _c_send_slow_run(self, stream, path):
        try:
            self.connection = connection = self._c_connection(
                stream, self.request.decompress_response
            )
            start_line = httputil.RequestStartLine(self.request.method, path, "")
            connection.write_headers(start_line, self.request.headers)
            await self._write_body(True)
        except Exception:
            if not self._handle_exception(*sys.exc_info()):
                raise

    def _c_raised(self, exc):
        """run()'s `except Exception` for what the C fetch met."""
        try:
            raise exc
        except Exception:
            if not self._handle_exception(*sys.exc_info()):
                _c_task_failed(exc)

    def _c_connect_failed(self, exc):
        """The connect failed: StreamClosedError(real_error=...) as the
        stream's connect future raises it, or the TimeoutError of the
        connect's timeout (TCPClient's message), which run() turns into
        HTTPTimeoutError."""
        if type(exc) is TimeoutError:
            exc = _sc.HTTPTimeoutError(str(exc) or "Timeout while connecting")
        self._c_raised(exc)

    def _c_read_failed(self, exc, parser, head_received, in_finish):
        """The response's read failed with `exc` (in_finish: finish() raised
        it): what _read_message_inner's handlers, _c_read_message's and
        run()'s do with it."""
        try:
            try:
                try:
                    owe_close = head_received
                    try:
                        if in_finish:
                            with _h1._ExceptionLoggingContext(app_log):
                                raise exc
                        raise exc
                    except httputil.HTTPInputError as e:
                        gen_log.info("Malformed HTTP message from %s: %s", self._sockaddr, e)
                        owe_close = True
                        self.stream.close()
                    finally:
                        parser.release()
                        if owe_close:
                            with _h1._ExceptionLoggingContext(app_log):
                                self.on_connection_close()
                except _h1._QuietException:
                    self.stream.close()
            except iostream.StreamClosedError:
                if not self._handle_exception(*sys.exc_info()):
                    raise
        except Exception as e:
            if not self._handle_exception(*sys.exc_info()):
                _c_task_failed(e)

    async def run(self):
        request = self.request
        if type(request) is not _RequestProxy:
            return await super().run()
        req = request.request
        defaults = request.defaults or {}

        if type(req) is HTTPRequest:
            # what _RequestProxy gives for each option, in one dict: the
            # request's attribute unless None, else the default (headers and
            # body are properties over _headers and _body)
            merged = dict(defaults)
            for k, v in req.__dict__.items():
                if v is not None:
                    merged[k] = v
            merged["headers"] = req.headers
            merged["body"] = req._body if req._body is not None else defaults.get("body")
            opt = merged.get
        else:

            def opt(name):
                v = getattr(req, name)
                return defaults.get(name) if v is None else v

        url = opt("url")
        if any(map(opt, _SLOW_OPTIONS)) or type(url) is not str:
            return await super().run()
        try:
            self.parsed = parsed = urllib.parse.urlsplit(url)
            scheme = parsed.scheme
            if scheme != "http" and scheme != "https":
                # the unsupported schemes' error is upstream's
                del self.parsed
                return await super().run()
            netloc = parsed.netloc
            if "@" in netloc:
                netloc = netloc.rpartition("@")[2]
            host, port = httputil.split_host_and_port(netloc)
            if port is None:
                port = 443 if scheme == "https" else 80
            if host[:1] == "[" and host[-1:] == "]":
                host = host[1:-1]
            self.parsed_hostname = host
            af = socket.AF_INET if opt("allow_ipv6") is False else socket.AF_UNSPEC
            # upstream's (validate_cert, ca_certs, client_cert/key, ssl_options
            # read through the request proxy); None for http
            ssl_options = self._get_ssl_options(scheme)
            connect_timeout = opt("connect_timeout")
            request_timeout = opt("request_timeout")
            if connect_timeout and request_timeout:
                timeout = min(connect_timeout, request_timeout)
            else:
                timeout = connect_timeout or request_timeout or 0
            io_loop = self.io_loop
            try:
                stream = await self._connect(host, port, af, timeout, ssl_options)
            except TimeoutError as e:
                raise _sc.HTTPTimeoutError(str(e) or "Timeout while connecting") from None
            if self.final_callback is None:
                stream.close()
                return
            self.stream = stream
            stream.set_close_callback(self.on_connection_close)
            self._remove_timeout()
            if self.final_callback is None:
                return
            if request_timeout:
                self._timeout = _add_timeout(
                    io_loop, self.start_time + request_timeout, self._on_timeout, "during request"
                )
            method = opt("method")
            allow_nonstandard = opt("allow_nonstandard_methods")
            if method not in self._SUPPORTED_METHODS and not allow_nonstandard:
                raise KeyError("unknown method %s" % method)
            headers = opt("headers")
            if "Connection" not in headers:
                headers["Connection"] = "close"
            if "Host" not in headers:
                headers["Host"] = netloc
            if parsed.username is not None:
                username, password = parsed.username, parsed.password
            else:
                username = opt("auth_username")
                password = None if username is None else (opt("auth_password") or "")
            if username is not None:
                assert password is not None
                auth_mode = opt("auth_mode")
                if auth_mode not in (None, "basic"):
                    raise ValueError("unsupported auth_mode %s" % auth_mode)
                headers["Authorization"] = "Basic " + _unicode(
                    _sc.base64.b64encode(httputil.encode_username_password(username, password))
                )
            user_agent = opt("user_agent")
            if user_agent:
                headers["User-Agent"] = user_agent
            elif headers.get("User-Agent") is None:
                headers["User-Agent"] = "Tornado/" + version
            body = opt("body")
            if not allow_nonstandard:
                body_expected = method in ("POST", "PATCH", "PUT")
                if body_expected != (body is not None):
                    raise ValueError(
                        "Body must %sbe None for method %s (unless "
                        "allow_nonstandard_methods is true)"
                        % ("not " if body_expected else "", method)
                    )
            if body is not None:
                headers["Content-Length"] = str(len(body))
            if method == "POST" and "Content-Type" not in headers:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            decompress = opt("decompress_response")
            if decompress:
                headers["Accept-Encoding"] = "gzip"
            path = parsed.path or "/"
            if parsed.query:
                path += "?" + parsed.query
            self.connection = connection = self._c_connection(stream, decompress)
            start_line = httputil.RequestStartLine(method, path, "")
            if not (
                type(connection) is HTTP1ClientConnection
                and connection.write_request(start_line, headers, body)
            ):
                connection.write_headers(start_line, headers)
                if body is not None:
                    connection.write(body)
                connection.finish()
            try:
                await connection.read_response(self)
            except iostream.StreamClosedError:
                if not self._handle_exception(*sys.exc_info()):
                    raise
        except Exception:
            if not self._handle_exception(*sys.exc_info()):
                raise

    def headers_received(self, first_line, headers):
        """upstream's, returning its awaitable only for the 100-continue
        that writes the body (the connection awaits what is not None)."""
        assert isinstance(first_line, httputil.ResponseStartLine)
        request = self.request
        if first_line.code == 100 and request.expect_100_continue:
            return self._write_body(False)
        attrs = self._c_attrs
        self.code = first_line.code
        self.reason = first_line.reason
        self.headers = headers
        if self._should_follow_redirect():
            return None
        if attrs is None:
            header_callback = request.header_callback
        else:
            header_callback = attrs["header_callback"]
            if header_callback is None:
                header_callback = self._c_defaults.get("header_callback")
        if header_callback is not None:
            header_callback("%s %s %s\r\n" % first_line)
            for k, v in headers.get_all():
                header_callback(f"{k}: {v}\r\n")
            header_callback("\r\n")
        return None

    def _should_follow_redirect(self):
        """upstream's, with the two options read once per fetch."""
        redirect = self._c_redirect
        if redirect is None:
            attrs = self._c_attrs
            if attrs is None:
                follow = self.request.follow_redirects
                most = self.request.max_redirects if follow else None
            else:
                defaults = self._c_defaults
                follow = attrs["follow_redirects"]
                if follow is None:
                    follow = defaults.get("follow_redirects")
                most = attrs["max_redirects"] if follow else None
                if follow and most is None:
                    most = defaults.get("max_redirects")
            redirect = self._c_redirect = (follow, most)
        if redirect[0]:
            assert redirect[1] is not None
            return (
                self.code in (301, 302, 303, 307, 308)
                and redirect[1] > 0
                and self.headers is not None
                and self.headers.get("Location") is not None
            )
        return False

    def finish(self):
        """upstream's for a response that is not a redirect to follow, with
        the request's attributes read without _RequestProxy's lookups (and
        the exception its getattr of a missing original_request costs)."""
        request = self.request
        if type(request) is not _RequestProxy or type(request.request) is not HTTPRequest:
            return super().finish()
        assert self.code is not None
        if self._should_follow_redirect():
            return super().finish()
        data = bytes(self.chunks)
        self._remove_timeout()
        inner = request.request
        d = inner.__dict__
        if "original_request" in d:
            original_request = d["original_request"]
            if original_request is None:
                defaults = request.defaults
                original_request = None if defaults is None else defaults.get("original_request")
        else:
            original_request = request
        streaming_callback = d["streaming_callback"]
        if streaming_callback is None:
            streaming_callback = (request.defaults or {}).get("streaming_callback")
        url = d["url"]
        if url is None:
            url = (request.defaults or {}).get("url")
        if streaming_callback:
            buffer = BytesIO()
        else:
            buffer = BytesIO(data)
        response = HTTPResponse(
            original_request,
            self.code,
            reason=getattr(self, "reason", None),
            headers=self.headers,
            request_time=self.io_loop.time() - self.start_time,
            start_time=self.start_wall_time,
            buffer=buffer,
            effective_url=url,
        )
        self._run_callback(response)
        self._on_end_request()

    async def _connect(self, host, port, af, timeout, ssl_options=None):
        """TCPClient.connect(host, port, af, ssl_options=..., max_buffer_size=...,
        timeout=...) for this request: upstream's for a host name or a
        resolver of the user's, done here for an IP literal with the default
        resolver (the one address upstream's _Connector would try, with its
        timeout and message, then TCPClient.connect's start_tls step for
        https with its timeout and message; start_tls gives the C stream's
        TLS, see tornado_c.iostream)."""
        tcp_client = self.tcp_client
        deadline = self.start_time + timeout if timeout else None
        addr = None
        if (
            type(tcp_client) is tcpclient.TCPClient
            and type(tcp_client.resolver) is netutil.DefaultLoopResolver
            and _UPSTREAM_CONNECT == _connect_functions()
        ):
            if af != socket.AF_INET6 and _is_dotted_quad(host) and type(port) is int:
                # what getaddrinfo gives for a dotted quad in its own
                # spelling, without its idna encoding and lookup
                af, addr = socket.AF_INET, (host, port)
            else:
                try:
                    infos = socket.getaddrinfo(
                        host, port, af, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
                    )
                except (OSError, UnicodeError, ValueError):
                    infos = None
                if infos is not None and len(infos) == 1:
                    af, addr = infos[0][0], infos[0][4]
        if addr is None:
            return await tcp_client.connect(
                host,
                port,
                af=af,
                ssl_options=ssl_options,
                max_buffer_size=self.max_buffer_size,
                timeout=deadline - self.io_loop.time() if deadline is not None else None,
            )
        sock = socket.socket(af)
        try:
            stream = tcpclient.IOStream(sock, max_buffer_size=self.max_buffer_size)
        except BaseException:
            sock.close()
            raise
        connected = stream.connect(addr)
        if deadline is None:
            stream = await connected
        else:
            timed_out = []
            # as IOLoop.add_timeout schedules it (the callback cannot raise)
            handle = self.io_loop.asyncio_loop.call_later(
                max(0, deadline - self.io_loop.time()), _connect_timed_out, timed_out, stream,
                addr
            )
            try:
                stream = await connected
            except iostream.StreamClosedError:
                if timed_out:
                    raise TimeoutError("Timeout while connecting to %s" % timed_out[0]) from None
                raise
            finally:
                handle.cancel()
        if ssl_options is None:
            return stream
        # TCPClient.connect's TLS step, as upstream takes it
        tls_future = stream.start_tls(False, ssl_options=ssl_options, server_hostname=host)
        try:
            if deadline is None:
                return await tls_future
            return await gen.with_timeout(
                deadline,
                tls_future,
                message=lambda: "Timeout during TLS handshake with " + tcpclient._format_addr(addr),
            )
        finally:
            # closes the new stream if the handshake did not complete
            tls_future.cancel()


_UPSTREAM_CREATE_CONNECTION = _sc._HTTPConnection._create_connection


def _finish_parts(conn_cls, io_loop_cls):
    return (
        conn_cls.finish,
        conn_cls._remove_timeout,
        conn_cls._run_callback,
        conn_cls._release,
        conn_cls._on_end_request,  # [4]: see _finish_in_c
        io_loop_cls.add_callback,
        io_loop_cls.remove_timeout,
    )


# what the C fetch does in place of finish() (csrc/http/client_fetch.c,
# finish_response) while none of these was replaced
_UPSTREAM_FINISH = _finish_parts(HTTPClientConnection, _asyncio_platform.BaseAsyncIOLoop)

# the keep-alive pool's connection classes over HTTPClientConnection
# (tornado_c/_client_pool.py registers them): the C fetch runs them too,
# with the pool giving and taking the stream; and their _on_end_request,
# which the C fetch's finish calls in place of closing the stream
_POOLED_CLASSES = set()
_POOLED_END_REQUEST = set()


def _finish_in_c(conn_cls, io_loop_cls):
    """Does the C fetch do finish() itself for a connection of `conn_cls`?"""
    parts = _finish_parts(conn_cls, io_loop_cls)
    if conn_cls is HTTPClientConnection:
        return parts == _UPSTREAM_FINISH
    return parts[4] in _POOLED_END_REQUEST and parts[:4] + parts[5:] == _UPSTREAM_FINISH_POOLED


_UPSTREAM_FINISH_POOLED = _UPSTREAM_FINISH[:4] + _UPSTREAM_FINISH[5:]  # _on_end_request apart


def _connection_class(self):
    """SimpleAsyncHTTPClient._connection_class while the switch is on."""
    return HTTPClientConnection


# the _should_follow_redirect methods _body_sink knows (upstream's, ours)
_REDIRECT_CHECKS = (
    _sc._HTTPConnection._should_follow_redirect,
    HTTPClientConnection._should_follow_redirect,
)
