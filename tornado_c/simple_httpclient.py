"""The simple HTTP client's connection with the response head parsed in C.

While the ``http`` component is on, ``tornado.simple_httpclient``'s module
global ``HTTP1Connection`` (what ``_HTTPConnection._create_connection``
builds, for ``SimpleAsyncHTTPClient`` and the WebSocket client) is
`HTTP1ClientConnection` below: upstream's class with the reading of a
response replaced.  The stream reads stay upstream's (the head with
``read_until_regex`` and the header limit, the body with upstream's own
fixed / chunked / until-close loops), so what is left in the stream, the
timeouts and every stream error are as upstream has them; the head is
parsed, checked and turned into ``ResponseStartLine`` / ``HTTPHeaders`` in
C, and the framing decision (1xx, HEAD/204/304, Content-Length and
Transfer-Encoding checks) is made there too, by the grammar
tests/test_http_client_grammar.py holds against upstream's client
(_core.HTTPClientParser, csrc/http/client.c; the parser's client mode,
csrc/http/parser.h).

Requests are written by upstream's code, unchanged.  Known difference: a
negative ``max_body_size`` counts as 0 (upstream compares the length with
the negative number, so it then refuses even an empty body).
"""

from tornado import gen, httputil, iostream
from tornado import http1connection as _h1
from tornado.log import app_log, gen_log

from tornado_c import _core

__all__ = ["HTTP1ClientConnection"]

_HEAD_END = b"\r?\n\r?\n"


class HTTP1ClientConnection(_h1.HTTP1Connection):
    """upstream's HTTP1Connection for the client side, response head and
    framing in C (see the module docstring)."""

    async def _read_message_inner(self, delegate, num_1xx=0):
        if not self.is_client:  # not ours to change
            return await super()._read_message_inner(delegate, num_1xx)
        if num_1xx == 0:
            req = self._request_start_line
            self._c_parser = _core.HTTPClientParser(
                request_head=req is not None and req.method == "HEAD"
            )
        parser = self._c_parser
        owe_close = False  # the delegate has the head: on_connection_close is owed
        try:
            head_future = self.stream.read_until_regex(
                _HEAD_END, max_bytes=self.params.max_header_size
            )
            if self.params.header_timeout is None:
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
            start_line, headers = parser.head(head)
            self._response_start_line = start_line
            self._disconnect_on_finish = False
            owe_close = True
            with _h1._ExceptionLoggingContext(app_log):
                pending = delegate.headers_received(start_line, headers)
                if pending is not None:
                    await pending
            if self.stream is None:  # detached by the delegate
                owe_close = False
                return False
            kind, length, rewrite = parser.framing(self._max_body_size)
            if kind == "1xx":
                # the next head is the response; the delegate is the next
                # read's from here on
                owe_close = False
                return await self._read_message_inner(delegate, num_1xx + 1)
            if rewrite is not None:
                headers["Content-Length"] = rewrite
            body = None
            if kind == "fixed":
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
            if owe_close:
                with _h1._ExceptionLoggingContext(app_log):
                    delegate.on_connection_close()
            self._clear_callbacks()
        return True
