"""Strict mode (HTTPServer(strict_http=True), TORNADO_C_STRICT_HTTP=1) on the
connections that upstream's Python HTTP1ServerConnection serves: a server
with ``ssl_options`` (an SSLIOStream), or one whose loop is not a tornado_c
loop (tornado_c/httpserver.py says when).

The C server feeds llhttp (csrc/http/judge.h) every byte its parser
consumed and refuses a request when llhttp rejects it or frames it
differently.  Here the same judge (``_core.HTTPJudge``, whose verdict is the
C server's own function) is fed the bytes upstream's HTTP1Connection reads,
in the order it reads them:

- the head (``read_until_regex``) is judged once Tornado's grammar has
  parsed it (HTTP1Connection calls ``_can_keep_alive`` right after, before
  ``headers_received``), so a head Tornado rejects keeps Tornado's error and
  a head llhttp refuses never reaches the application;
- body reads (``read_bytes``, and ``read_until`` for chunk-size lines) are
  fed as they arrive; a refusal is raised by the next read (or at the end of
  the message), that is once HTTP1Connection has checked those bytes itself,
  so Tornado's own error still wins (the C server's parser also speaks
  first).  Unlike the C server, a body piece llhttp refused may already
  have gone to a ``stream_request_body`` handler's ``data_received``;
- the end of the message (the body coroutine of ``_read_body`` returned, or
  no body) checks that llhttp ended it at the same byte.

A refusal is raised as ``HTTPInputError("llhttp (strict mode) refuses the
request: ...")`` where HTTP1Connection catches it: upstream's "Malformed
HTTP message" log line at INFO, ``HTTP/1.1 400 Bad Request``, close -- what
the C server does.

The reads are observed by three instance attributes put on the stream
while HTTP is served on it (they call the class's own method and judge
the bytes it returns); ``detach()`` (WebSocket) and the end of the request
loop take them off again, so the stream handed to the application is
untouched.  Nothing here runs for a server without strict mode.
"""

import asyncio as _asyncio

from tornado import http1connection as _h1
from tornado import httputil as _httputil
from tornado import iostream as _iostream
from tornado.concurrent import Future as _Future
from tornado.log import gen_log as _gen_log

from tornado_c import _core

_READS = ("read_until_regex", "read_until", "read_bytes")
_PREFIX = "llhttp (strict mode) refuses the request: "


class _StrictReads:
    """The judge of one connection and the read hooks on its stream."""

    def __init__(self, stream):
        self.stream = stream
        self.judge = _core.HTTPJudge()
        self.heads = 0       # heads Tornado's grammar accepted
        self.messages = 0    # messages it completed
        self.head = None     # the head read but not yet judged (bytes)
        self.refusal = None  # why the bytes last read are refused (raised next)
        self.installed = False

    def install(self):
        s = self.stream
        cls = type(s)
        regex, until, nbytes = (getattr(cls, name) for name in _READS)

        def read_until_regex(*args, **kwargs):
            return self._then(regex, args, kwargs, self._head_read)

        def read_until(*args, **kwargs):
            return self._then(until, args, kwargs, self._body_read)

        def read_bytes(*args, **kwargs):
            return self._then(nbytes, args, kwargs, self._body_read)

        s.read_until_regex = read_until_regex
        s.read_until = read_until
        s.read_bytes = read_bytes
        self.installed = True

    def uninstall(self):
        if not self.installed:
            return
        self.installed = False
        d = self.stream.__dict__
        for name in _READS:
            d.pop(name, None)

    def _then(self, read, args, kwargs, check):
        """The future of the stream's read(*args, **kwargs), its data passed
        through check(data); done at once when the read's is
        (HTTP1Connection looks at done() to decide whether to flush the body
        it has pending).  Refused at once when the last bytes were."""
        out = _Future()
        if self.refusal is not None:
            out.set_exception(_httputil.HTTPInputError(_PREFIX + self.refusal))
            return out
        fut = read(self.stream, *args, **kwargs)

        def settle(f):
            if out.done():
                return
            if f.cancelled():
                out.cancel()
                return
            exc = f.exception()
            if exc is not None:
                out.set_exception(exc)
                return
            try:
                data = check(f.result())
            except _httputil.HTTPInputError as e:
                out.set_exception(e)
            else:
                out.set_result(data)

        if fut.done():
            settle(fut)
        else:
            fut.add_done_callback(settle)
        return out

    def _refuse(self, why):
        raise _httputil.HTTPInputError(_PREFIX + why)

    def _head_read(self, data):
        # judged after Tornado's grammar accepted it (head_parsed)
        self.head = data
        return data

    def _body_read(self, data):
        self.refusal = self.judge.check(data, self.heads, self.messages, False)
        return data

    def head_parsed(self):
        data, self.head = self.head, None
        if data is None:
            return
        self.heads += 1
        why = self.judge.check(data, self.heads, self.messages, False)
        if why is not None:
            self._refuse(why)

    def message_done(self):
        # judged again with the message counted, as the C server judges
        # the bytes that end a message (an llhttp error in them waits for
        # the next head there too)
        self.refusal = None
        self.messages += 1
        why = self.judge.check(b"", self.heads, self.messages, True)
        if why is not None:
            self._refuse(why)


class StrictHTTP1Connection(_h1.HTTP1Connection):
    """Upstream's server-side HTTP1Connection with strict mode's checks at
    the end of the head and of the message (see the module docstring)."""

    def __init__(self, stream, params, context, strict):
        super().__init__(stream, False, params, context)
        self._strict = strict

    def _can_keep_alive(self, start_line, headers):
        keep = super()._can_keep_alive(start_line, headers)
        self._strict.head_parsed()
        return keep

    def _read_body(self, code, headers, delegate):
        body = super()._read_body(code, headers, delegate)
        if body is None:
            self._strict.message_done()
            return None
        return self._body_then_done(body)

    async def _body_then_done(self, body):
        await body
        self._strict.message_done()

    def detach(self):
        self._strict.uninstall()
        return super().detach()


class StrictHTTP1ServerConnection(_h1.HTTP1ServerConnection):
    """Upstream's HTTP1ServerConnection whose requests are read by
    StrictHTTP1Connection; the request loop is upstream's, written again
    here only to make that class."""

    def start_serving(self, delegate):
        self._strict = _StrictReads(self.stream)
        self._strict.install()
        super().start_serving(delegate)

    async def _server_request_loop(self, delegate):
        try:
            while True:
                conn = StrictHTTP1Connection(self.stream, self.params, self.context, self._strict)
                request_delegate = delegate.start_request(self, conn)
                try:
                    more = await conn.read_response(request_delegate)
                except (_iostream.StreamClosedError, _iostream.UnsatisfiableReadError,
                        _asyncio.CancelledError):
                    return
                except Exception:
                    _gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                if not more:
                    return
                await _asyncio.sleep(0)
        finally:
            self._strict.uninstall()
            delegate.on_close(self)
