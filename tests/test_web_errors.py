"""RequestHandler's error path in C (csrc/web/handler_error.c):
_handle_request_exception, send_error, log_exception, against upstream.

Each scenario serves the same requests with the ``web`` switch off and on
(test_web_handler's compare): the responses, the calls every overridden
hook received, and the log records (logger, level, message, args,
pathname, lineno, funcName, exc_info) must be the same.
"""

import logging

import pytest
import tornado.web

from test_web_handler import MODES, _forwards_to_c, compare, err, serve, set_mode  # noqa: F401


@pytest.fixture(autouse=True)
def switch_off(clean_switch):
    clean_switch.uninstall()
    yield clean_switch


class Odd(tornado.web.HTTPError):
    def get_message(self):
        return "odd message"


def _raise(what):
    if what == "http":
        raise tornado.web.HTTPError(403)
    if what == "http_msg":
        raise tornado.web.HTTPError(400, "bad %s and %d", "thing", 7, reason="Bad Thing")
    if what == "http_pct":
        raise tornado.web.HTTPError(418, "100% sure")
    if what == "http_empty_reason":
        raise tornado.web.HTTPError(409, reason="")
    if what == "http_unknown":
        raise tornado.web.HTTPError(599)
    if what == "odd":
        raise Odd(402)
    if what == "boom":
        raise KeyError("boom")
    if what == "finish":
        raise tornado.web.Finish("finished by Finish")
    if what == "finish_bare":
        raise tornado.web.Finish()


REQS = [("GET", "/h?what=" + w, None, None)
        for w in ("http", "http_msg", "http_pct", "http_empty_reason", "http_unknown", "odd",
                  "boom", "finish", "finish_bare")]


def test_default_hooks(switch_off):
    """No override: the default page, the records of log_exception, 404,
    405, Finish, HTTPError with reason and log message with args."""

    def make_app(calls):
        class H(tornado.web.RequestHandler):
            def get(self):
                self.write("discarded")
                _raise(self.get_argument("what"))

            def on_finish(self):
                calls.append(("on_finish", self.get_status(), self._reason))

        return tornado.web.Application([(r"/h", H)])

    up = compare(switch_off, make_app,
                 REQS + [("GET", "/nowhere", None, None), ("DELETE", "/h", None, None)])
    bodies = [e[3] for r in up[0] for e in r if e[0] == "headers"]
    assert bodies[1] == b"<html><title>400: Bad Thing</title><body>400: Bad Thing</body></html>"
    assert bodies[0] == b"<html><title>403: Forbidden</title><body>403: Forbidden</body></html>"
    msgs = [r[2] for r in up[2] if r[0] != "tornado.access"]
    assert "%d %s: %s" in msgs and "Uncaught exception %s\n%r" in msgs


def test_serve_traceback_and_direct_send_error(switch_off):
    """serve_traceback's page; send_error called by the handler with a
    reason, extra keywords, 304, and a status without a reason.  (A
    coroutine method: the page's traceback is upstream's but for the frame
    of upstream's _execute, which the C coroutine does not have.)"""

    def make_app(calls):
        class H(tornado.web.RequestHandler):
            async def get(self):
                what = self.get_argument("what", "")
                if what == "direct":
                    self.send_error(410, reason="Gone <away>")
                elif what == "304":
                    self.send_error(304)
                elif what == "kw":
                    self.send_error(503, extra="x")
                elif what == "default":
                    self.send_error()
                elif what == "bad_args":
                    calls.append(err(self.send_error, 500, 501))
                    calls.append(err(self.log_exception, None, None))
                    calls.append(err(self._handle_request_exception))
                    calls.append(err(self.send_error, 500, exc_info=7))
                    calls.append(err(self.send_error, 500, exc_info={1: ValueError("v")}))
                    calls.append(err(self.send_error, 500, exc_info=(None,)))
                    self.finish("ok")
                else:
                    _raise(what)

        return tornado.web.Application([(r"/h", H)], serve_traceback=True)

    reqs = [("GET", "/h?what=" + w, None, None)
            for w in ("direct", "304", "kw", "default", "bad_args", "boom", "http_msg")]
    got = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        calls = []
        results, records = serve(make_app(calls), reqs)
        got[mode] = ([[_without_execute_frame(e) for e in out] for out in results], calls,
                     records)
    switch_off.uninstall()
    assert got["c"] == got["upstream"]
    tb_page = [e[3] for e in got["c"][0][5] if e[0] == "headers"][0]
    assert b"Traceback" in tb_page and b"KeyError" in tb_page
    raw = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        raw[mode] = serve(make_app([]), reqs[5:6])[0][0]
    switch_off.uninstall()
    page = {m: [e[3] for e in raw[m] if e[0] == "headers"][0] for m in MODES}
    # the documented difference: upstream's page has _execute's frame
    assert b"in _execute" in page["upstream"] and b"in _execute" not in page["c"]


def _without_execute_frame(event):
    """A response's headers event with upstream's _execute frame taken out of
    a traceback page (the C coroutine has no Python frame) and the
    Content-Length that then differs left out."""
    import re

    if event[0] != "headers" or not event[3] or b"Traceback" not in event[3]:
        return event
    body = re.sub(rb'  File "[^"]*tornado/web\.py", line \d+, in _execute\n(    .*\n)([ ^~]*\n)?',
                  b"", event[3])
    headers = [h for h in event[2] if h[0] != "Content-Length"]
    return (event[0], event[1], headers, body)


def test_after_flush_and_headers_written(switch_off):
    """An exception after flush(), send_error after the headers were
    written (gen_log's records), and after finish()."""

    def make_app(calls):
        class H(tornado.web.RequestHandler):
            def get(self):
                what = self.get_argument("what")
                self.write("partial")
                self.flush()
                if what == "raise":
                    raise ValueError("after flush")
                if what == "http":
                    raise tornado.web.HTTPError(500, "late %s", "error")
                if what == "send":
                    self.send_error(502)
                if what == "finish_then_raise":
                    self.finish()
                    raise RuntimeError("after finish")

        return tornado.web.Application([(r"/h", H)])

    up = compare(switch_off, make_app,
                 [("GET", "/h?what=" + w, None, None)
                  for w in ("raise", "http", "send", "finish_then_raise")])
    assert any(r[2] == "Cannot send error response after headers written" for r in up[2])


def test_overridden_hooks(switch_off):
    """Overrides of write_error, log_exception, send_error, clear,
    set_status (keywords only), finish and on_finish are called in
    upstream's order with upstream's arguments; failures inside them give
    upstream's records."""

    def make_app(calls):
        class H(tornado.web.RequestHandler):
            def get(self):
                _raise(self.get_argument("what"))

            def clear(self):
                calls.append(("clear",))
                super().clear()

            def set_status(self, status_code, **kw):
                calls.append(("set_status", status_code, kw))
                super().set_status(status_code, **kw)

            def write_error(self, status_code, **kwargs):
                ei = kwargs.get("exc_info")
                calls.append(("write_error", status_code, sorted(kwargs),
                              type(ei[1]).__name__ if ei else None, self._reason))
                if self.get_argument("bad_write_error", None):
                    raise RuntimeError("write_error failed")
                self.write({"code": status_code})

            def log_exception(self, typ, value, tb):
                calls.append(("log_exception", typ.__name__, str(value), tb is not None))
                if self.get_argument("bad_log", None):
                    raise ValueError("log_exception failed")
                super().log_exception(typ, value, tb)

            def send_error(self, status_code=500, **kwargs):
                calls.append(("send_error", status_code, sorted(kwargs)))
                super().send_error(status_code, **kwargs)

            def finish(self, chunk=None):
                calls.append(("finish", chunk))
                return super().finish(chunk)

            def on_finish(self):
                calls.append(("on_finish", self.get_status()))

        return tornado.web.Application([(r"/h", H)])

    reqs = REQS + [("GET", "/h?what=boom&bad_write_error=1", None, None),
                   ("GET", "/h?what=http_msg&bad_log=1", None, None),
                   ("GET", "/h?what=boom&bad_log=1&bad_write_error=1", None, None)]
    up = compare(switch_off, make_app, reqs)
    msgs = [r[2] for r in up[2]]
    assert "Uncaught exception in write_error" in msgs and "Error in exception logger" in msgs
    assert ("set_status", 400, {"reason": "Bad Thing"}) in up[1]


def test_custom_logger_class(switch_off):
    """A logger whose class is not logging.Logger gets its own error()."""

    class L(logging.Logger):
        def error(self, msg, *args, **kwargs):
            ei = kwargs.get("exc_info")
            calls_box.append(("L.error", msg, ei if ei is True else type(ei[1]).__name__))
            super().error(msg, *args, **kwargs)

    calls_box = []

    def make_app(calls):
        class H(tornado.web.RequestHandler):
            def get(self):
                raise KeyError("x")

            def write_error(self, status_code, **kwargs):
                raise RuntimeError("nope")

        return tornado.web.Application([(r"/h", H)])

    saved = tornado.web.app_log
    tornado.web.app_log = L("tornado.application")
    try:
        compare(switch_off, make_app, [("GET", "/h", None, None)])
    finally:
        tornado.web.app_log = saved
    assert calls_box[:2] == calls_box[2:] and len(calls_box) == 4


def test_forwarders_installed(switch_off):
    set_mode(switch_off, "c")
    for name in ("send_error", "log_exception", "_handle_request_exception"):
        assert _forwards_to_c(tornado.web.RequestHandler.__dict__[name]), name
    switch_off.uninstall()
    for name in ("send_error", "log_exception", "_handle_request_exception"):
        assert not _forwards_to_c(tornado.web.RequestHandler.__dict__[name]), name


def test_exception_in_exception_handler(switch_off):
    """_handle_request_exception raising: upstream's _execute logs
    "Exception in exception handler" (the record's place is upstream's line
    on the synchronous path too)."""

    def make_app(calls):
        class H(tornado.web.RequestHandler):
            def get(self):
                raise ValueError("first")

            def send_error(self, status_code=500, **kwargs):
                calls.append(("send_error", status_code))
                self.finish("partial answer")
                raise RuntimeError("send_error failed")

        class A(H):
            async def get(self):
                raise ValueError("first, async")

        return tornado.web.Application([(r"/h", H), (r"/a", A)])

    up = compare(switch_off, make_app, [("GET", "/h", None, None), ("GET", "/a", None, None)])
    assert [r[2] for r in up[2]].count("Exception in exception handler") == 2
