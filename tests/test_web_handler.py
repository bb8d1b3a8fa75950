"""RequestHandler's hot path in C (csrc/web/handler*.c, tornado_c/_webhandler.py)
against upstream's Python.

Each scenario serves requests to a tornado.web.Application over a stub
connection twice: with the ``web`` switch off (upstream's RequestHandler
methods) and on (the C descriptors), and compares everything observable:
the response (start line, headers with Date normalised, body), the calls
each overridden hook received (name and arguments, in order), what the
handler recorded about errors raised by the methods, and the log records.
Then: the switch puts upstream's functions back, no cyclic garbage per
request, and the Date header's text.
"""

import asyncio
import datetime
import gc
import inspect
import logging
import time
import weakref

import pytest
import tornado.web
from tornado import httputil

from tornado_c import _core


@pytest.fixture(autouse=True)
def switch_off(clean_switch):
    clean_switch.uninstall()
    yield clean_switch


MODES = ("upstream", "c")


def _forwards_to_c(f):
    """A function put on upstream's class by the switch: upstream's
    signature, one call of the C descriptor (tornado_c/_forward.py)."""
    return (
        type(f).__name__ == "function"
        and getattr(f, "__tornado_c_forwarder__", False)
        and type(f.__globals__["_target"]) is _core._HandlerMethod
    )


def set_mode(switch, mode):
    switch.uninstall()
    if mode == "c":
        switch.install(loop=False, http=False, web=True, websocket=False)
        assert _forwards_to_c(tornado.web.RequestHandler.__dict__["clear"])
    else:
        assert type(tornado.web.RequestHandler.__dict__["clear"]).__name__ == "function"


class _Context:
    remote_ip = "127.0.0.1"
    protocol = "http"
    address = ("127.0.0.1", 40000)


class StubConnection(httputil.HTTPConnection):
    context = _Context()

    def __init__(self, loop, out):
        self.out = out
        self.loop = loop
        self.done = loop.create_future()

    def _ok(self):
        f = self.loop.create_future()
        f.set_result(None)
        return f

    def set_close_callback(self, callback):
        self.out.append(("set_close_callback", callback is not None))

    def write_headers(self, start_line, headers, chunk=None):
        hs = [(k, "<date>" if k == "Date" else v) for k, v in headers.get_all()]
        if chunk and chunk[:2] == b"\x1f\x8b":
            # gzip's header carries the time of compression (MTIME, bytes
            # 4-7): two runs a second apart differ there and nowhere else
            chunk = chunk[:4] + b"<mtime>" + chunk[8:]
        self.out.append(("headers", tuple(start_line), hs, chunk))
        return self._ok()

    def write(self, chunk):
        self.out.append(("write", chunk))
        return self._ok()

    def finish(self):
        self.out.append(("finish",))
        if not self.done.done():
            self.done.set_result(None)


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.name, record.levelname, record.msg,
                             tuple(a if isinstance(a, (int, str)) else repr(a) for a in record.args)
                             if isinstance(record.args, tuple) else record.args,
                             record.pathname, record.lineno, record.funcName,
                             record.exc_info[0] if record.exc_info else None,
                             str(record.exc_info[1]) if record.exc_info else None))


def serve(app, requests, access_level=logging.DEBUG):
    """Serve each (method, uri, headers dict, body) and return what the
    connections saw."""
    loop = asyncio.new_event_loop()
    cap = LogCapture()
    loggers = [logging.getLogger(n) for n in ("tornado.access", "tornado.application",
                                              "tornado.general")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(cap)
        lg.setLevel(access_level if lg.name == "tornado.access" else logging.DEBUG)
        lg.propagate = False
    results = []

    async def run():
        for method, uri, headers, body in requests:
            out = []
            conn = StubConnection(loop, out)
            h = httputil.HTTPHeaders()
            h.add("Host", "127.0.0.1")
            for k, v in (headers or {}).items():
                h.add(k, v)
            try:
                delegate = app.start_request(None, conn)
                delegate.headers_received(
                    httputil.RequestStartLine(method, uri, "HTTP/1.1"), h)
                if body:
                    delegate.data_received(body)
                delegate.finish()
            except Exception as e:
                out.append(("raised", type(e).__name__, str(e)))
            else:
                await asyncio.wait_for(conn.done, 5)
                await asyncio.sleep(0)
            results.append(out)

    try:
        loop.run_until_complete(run())
    finally:
        for lg, (level, prop) in zip(loggers, saved):
            lg.removeHandler(cap)
            lg.setLevel(level)
            lg.propagate = prop
        loop.close()
    # the access log's request time differs from run to run
    records = [r if r[0] != "tornado.access" else r[:3] + (r[3][:2],) + r[4:]
               for r in cap.records]
    return results, records


def compare(switch, make_app, requests):
    got = {}
    for mode in MODES:
        set_mode(switch, mode)
        calls = []
        app = make_app(calls)
        results, records = serve(app, requests)
        got[mode] = (results, calls, records)
    switch.uninstall()
    up, c = got["upstream"], got["c"]
    assert c[0] == up[0], "responses differ"
    assert c[1] == up[1], "hook calls differ"
    assert c[2] == up[2], "log records differ"
    return up


def recording_base(calls):
    """A RequestHandler base that records on_finish and write_error calls
    (write_error fails when the request has ?bad_write_error=1)."""

    class Base(tornado.web.RequestHandler):
        def on_finish(self):
            calls.append(("on_finish", type(self).__name__, self.get_status()))

        def write_error(self, status_code, **kwargs):
            calls.append(("write_error", status_code,
                          type(kwargs.get("exc_info", (None, None))[1]).__name__))
            if self.get_argument("bad_write_error", None):
                raise RuntimeError("write_error failed")
            super().write_error(status_code, **kwargs)

    return Base


def err(fn, *a, **kw):
    try:
        return ("ok", fn(*a, **kw))
    except Exception as e:
        return ("raise", type(e).__name__, str(e))


# ------------------------------------------------------------------ scenarios


def test_hello(switch_off):
    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("Hello, world")

    up = compare(switch_off, lambda calls: tornado.web.Application([(r"/", Hello)]),
                 [("GET", "/", None, None), ("HEAD", "/", None, None),
                  ("POST", "/", None, b"x")])
    assert [e for e in up[0][0] if e[0] == "headers"][0][3] == b"Hello, world"


def test_write_kinds_and_errors(switch_off):
    class W(tornado.web.RequestHandler):
        def initialize(self, calls):
            self.calls = calls

        def get(self):
            c = self.calls
            c.append(err(self.write, b"bytes;"))
            c.append(err(self.write, "str \u00e9\u4e2d;"))
            c.append(err(self.write, {"a": [1, "</script>"], "b": None}))
            c.append(err(self.write, [1, 2]))
            c.append(err(self.write, 3))
            c.append(err(self.write, None))
            c.append(err(self.write, "\ud800"))
            c.append(err(self.write, chunk=b"kw"))
            c.append(err(self.write))
            c.append(err(self.write, b"a", b"b"))
            c.append(err(self.write, bytearray(b"ba")))

        def post(self):
            self.finish({"k": "v"})
            self.calls.append(err(self.write, b"late"))
            self.calls.append(err(self.finish))

    compare(switch_off,
            lambda calls: tornado.web.Application([(r"/", W, {"calls": calls})]),
            [("GET", "/", None, None), ("POST", "/", None, b"")])


def test_status_and_reason(switch_off):
    class S(tornado.web.RequestHandler):
        def initialize(self, calls):
            self.calls = calls

        def get(self):
            code = int(self.get_argument("code"))
            reason = self.get_argument("reason", None)
            if reason == "NONE":
                reason = None
            self.calls.append(err(self.set_status, code, reason))
            self.calls.append((self.get_status(), self._reason))
            self.calls.append(err(self.set_status, code, reason=reason))
            self.calls.append(err(self.set_status))
            self.calls.append(err(self.set_status, 200, b"bytes"))
            self.calls.append(err(self.set_status, 200, "x", "y"))
            self.calls.append(err(self.set_status, code, reason))
            if code in (204, 304):
                return
            self.write("body")

    reqs = []
    for code in ("200", "201", "299", "404", "599", "204", "304"):
        for reason in ("NONE", "Fine", "bad<x", "tab\there", "caf\u00e9", "\u4e2d",
                       "", "x\x7f"):
            reqs.append(("GET", "/?" + __import__("urllib.parse").parse.urlencode(
                {"code": code, "reason": reason}), None, None))
    compare(switch_off,
            lambda calls: tornado.web.Application([(r"/", S, {"calls": calls})]), reqs)


def test_headers(switch_off):
    class H(tornado.web.RequestHandler):
        def initialize(self, calls):
            self.calls = calls

        def get(self):
            c = self.calls
            c.append(err(self.set_header, "X-Int", 42))
            c.append(err(self.set_header, "X-Bool", True))
            c.append(err(self.set_header, "X-Bytes", b"caf\xe9"))
            c.append(err(self.set_header, "X-Date",
                         datetime.datetime(2020, 1, 2, 3, 4, 5)))
            c.append(err(self.set_header, "X-Float", 1.5))
            c.append(err(self.set_header, "X-Bad", "a\nb"))
            c.append(err(self.set_header, "X-Bad", "a\x7fb"))
            c.append(err(self.set_header, "X-Wide", "\u4e2d"))
            c.append(err(self.set_header, "X-Tab", "a\tb \u00ff"))
            c.append(err(self.set_header, "x-lower", "v"))
            c.append(err(self.set_header, name="X-Kw", value="kw"))
            c.append(err(self.set_header, "X-Missing"))
            c.append(err(self.add_header, "X-Multi", "1"))
            c.append(err(self.add_header, "X-Multi", 2))
            c.append(err(self.add_header, "X-Multi", "bad\r"))
            c.append(err(self.add_header, "Bad Name", "v"))
            c.append(err(self.clear_header, "X-Int"))
            c.append(err(self.clear_header, "X-Absent"))
            c.append(err(self.clear_header, "server"))
            c.append(err(self._convert_header_value, object))
            c.append(err(self._convert_header_value, b"\xff"))
            self.write("h")

    compare(switch_off,
            lambda calls: tornado.web.Application([(r"/", H, {"calls": calls})]),
            [("GET", "/", None, None)])


def test_overridden_hooks_called_in_order(switch_off):
    """Every method the C code calls on self is the subclass's when it
    overrides it, called with upstream's arguments in upstream's order."""

    def make_app(calls):
        class Base:
            def __init__(self, *a, **kw):
                calls.append(("Base.__init__", a, kw))

        class Hooks(tornado.web.RequestHandler, Base):
            def initialize(self, **kw):
                calls.append(("initialize", kw))

            def clear(self):
                calls.append(("clear",))
                super().clear()

            def set_default_headers(self):
                calls.append(("set_default_headers", self._status_code
                              if hasattr(self, "_status_code") else None))
                self.set_header("X-Default", "d")

            def set_header(self, name, value):
                calls.append(("set_header", name, value))
                super().set_header(name, value)

            def add_header(self, name, value):
                calls.append(("add_header", name, value))
                super().add_header(name, value)

            def clear_header(self, name):
                calls.append(("clear_header", name))
                super().clear_header(name)

            def _convert_header_value(self, value):
                calls.append(("convert", value))
                return super()._convert_header_value(value)

            def set_status(self, code, reason=None):
                calls.append(("set_status", code, reason))
                super().set_status(code, reason)

            def get_status(self):
                calls.append(("get_status",))
                return super().get_status()

            def write(self, chunk):
                calls.append(("write", chunk))
                super().write(chunk)

            def compute_etag(self):
                calls.append(("compute_etag",))
                return super().compute_etag()

            def on_finish(self):
                calls.append(("on_finish", self._status_code))

            def on_connection_close(self):
                calls.append(("on_connection_close",))

            def get(self):
                self.write({"x": 1})
                self.add_header("X-A", 1)
                self.clear_header("X-A")

            def post(self):
                raise tornado.web.HTTPError(418, reason="Teapot")

        return tornado.web.Application(
            [(r"/", Hooks, {"k": "v"})], ui_methods={"m": lambda handler, x: x})

    compare(switch_off, make_app,
            [("GET", "/", None, None), ("POST", "/", None, b""),
             ("GET", "/", {"If-None-Match": '"x"'}, None)])


def test_instance_attribute_shadows_method(switch_off):
    def make_app(calls):
        class I(tornado.web.RequestHandler):
            def initialize(self):
                def set_header(name, value):
                    calls.append(("instance set_header", name, value))

                self.set_header = set_header

            def get(self):
                self.write({"a": 1})

        return tornado.web.Application([(r"/", I)])

    compare(switch_off, make_app, [("GET", "/", None, None)])


def test_initialize_kwargs_errors(switch_off):
    class NoInit(tornado.web.RequestHandler):
        def get(self):
            self.write("x")

    def make_app(calls):
        return tornado.web.Application([(r"/", NoInit, {"unexpected": 1})])

    compare(switch_off, make_app, [("GET", "/", None, None)])


def test_etag_304(switch_off):
    class E(tornado.web.RequestHandler):
        def get(self):
            self.write("etagged body")

    def make_app(calls):
        return tornado.web.Application([(r"/", E)])

    up = compare(switch_off, make_app, [("GET", "/", None, None)])
    etag = dict([e for e in up[0][0] if e[0] == "headers"][0][2])["Etag"]
    compare(switch_off, make_app,
            [("GET", "/", {"If-None-Match": etag}, None),
             ("GET", "/", {"If-None-Match": "W/" + etag}, None),
             ("GET", "/", {"If-None-Match": "*"}, None),
             ("GET", "/", {"If-None-Match": '"other", ' + etag}, None)])


# ------------------------------------------------------------------ the switch


def test_switch_restores_upstream(switch_off):
    names = ["__init__", "clear", "set_header", "add_header", "clear_header",
             "_convert_header_value", "set_status", "get_status", "write", "flush", "finish",
             "compute_etag", "set_etag_header", "check_etag_header",
             "_should_not_send_content", "_clear_representation_headers", "_log",
             "_request_summary", "_break_cycles"]
    app_before = tornado.web.Application.__dict__["log_request"]
    before = {n: tornado.web.RequestHandler.__dict__[n] for n in names}
    set_mode(switch_off, "c")
    for n in names:
        d = tornado.web.RequestHandler.__dict__[n]
        assert _forwards_to_c(d)
        assert inspect.isfunction(d)  # what introspection (and tornado's api_test) expects
        assert d.__name__ == before[n].__name__
        assert d.__qualname__ == before[n].__qualname__
        assert d.__doc__ == before[n].__doc__
        assert d.__module__ == "tornado.web"
        assert inspect.signature(d) == inspect.signature(before[n])
    assert _forwards_to_c(tornado.web.Application.__dict__["log_request"])
    switch_off.uninstall()
    for n in names:
        assert tornado.web.RequestHandler.__dict__[n] is before[n]
    assert tornado.web.Application.__dict__["log_request"] is app_before


def test_descriptor_binding(switch_off):
    set_mode(switch_off, "c")
    d = tornado.web.RequestHandler.__dict__["get_status"]
    assert tornado.web.RequestHandler.get_status is d
    with pytest.raises(TypeError, match="doesn't apply"):
        d(object())
    with pytest.raises(TypeError):
        d()


def test_date_header_text(switch_off):
    set_mode(switch_off, "c")
    lo = httputil.format_timestamp(time.time())
    out = []

    class D(tornado.web.RequestHandler):
        def get(self):
            out.append(self._headers["Date"])

    serve(tornado.web.Application([(r"/", D)]), [("GET", "/", None, None)])
    hi = httputil.format_timestamp(time.time())
    assert out[0] in (lo, hi)


def test_no_cyclic_garbage_on_fast_path(switch_off):
    """After the handler has finished nothing of the request is left for
    the cycle collector (upstream breaks handler<->ui cycles in finish)."""
    set_mode(switch_off, "c")
    handlers = []

    class G(tornado.web.RequestHandler):
        def get(self):
            handlers.append(weakref.ref(self))
            self.write("g")

    app = tornado.web.Application([(r"/", G)])
    serve(app, [("GET", "/", None, None)] * 3)  # warm up
    handlers.clear()
    gc.collect()
    gc.disable()
    try:
        serve(app, [("GET", "/", None, None)] * 20)
        alive = [r for r in handlers if r() is not None]
        assert not alive, "handlers kept alive only by reference cycles"
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_finish_flush_paths(switch_off):
    class F(tornado.web.RequestHandler):
        def initialize(self, calls):
            self.calls = calls

        def get(self, what):
            c = self.calls
            if what == "stream":
                self.write("part1;")
                c.append(("flush", type(self.flush()).__name__))
                self.write("part2;")
                self.flush()
                self.write("part3")
            elif what == "nocontent":
                self.set_status(204)
                c.append(err(self.finish, "body"))
                self._write_buffer = []
                self.set_header("Content-Type", "x/y")
                self.set_header("Content-Language", "fr")
                self.finish()
            elif what == "cookies":
                self.set_cookie("a", "1")
                self.set_cookie("b", "2", path="/x")
                self.write("c")
            elif what == "length":
                self.set_header("Content-Length", 3)
                self.write("abc")
            elif what == "finishdict":
                self.finish({"d": 1})
                c.append(err(self.finish))
            elif what == "status500":
                self.set_status(503)
                self.write("down")
            elif what == "notfound":
                raise tornado.web.HTTPError(404)
            elif what == "boom":
                raise ValueError("boom")
            elif what == "early":
                self.set_status(302)
                self.set_header("Location", "/x")
                self.finish()

    def make_app(calls):
        return tornado.web.Application([(r"/(\w+)", F, {"calls": calls})], gzip=True)

    reqs = []
    for what in ("stream", "nocontent", "cookies", "length", "finishdict", "status500",
                 "notfound", "boom", "early"):
        for method in ("GET", "HEAD", "POST"):
            reqs.append((method, "/" + what, None, b"" if method == "POST" else None))
        reqs.append(("GET", "/" + what, {"Accept-Encoding": "gzip"}, None))
    compare(switch_off, make_app, reqs)


def test_etag_overrides(switch_off):
    def make_app(calls):
        class NoEtag(tornado.web.RequestHandler):
            def compute_etag(self):
                calls.append("compute_etag")
                return None

            def get(self):
                self.write("x")

        class Custom(tornado.web.RequestHandler):
            def compute_etag(self):
                return '"fixed"'

            def check_etag_header(self):
                r = super().check_etag_header()
                calls.append(("check", r))
                return r

            def set_etag_header(self):
                calls.append("set_etag_header")
                super().set_etag_header()

            def get(self):
                self.write("y")

        return tornado.web.Application([(r"/no", NoEtag), (r"/custom", Custom)])

    compare(switch_off, make_app,
            [("GET", "/no", None, None), ("GET", "/custom", None, None),
             ("GET", "/custom", {"If-None-Match": '"fixed"'}, None),
             ("HEAD", "/custom", {"If-None-Match": 'W/"fixed"'}, None),
             ("GET", "/custom", {"If-None-Match": '"other"'}, None)])


def test_log_function_and_overrides(switch_off):
    def make_app(calls):
        class L(tornado.web.RequestHandler):
            def get(self):
                self.write("l")

        class Summary(tornado.web.RequestHandler):
            def _request_summary(self):
                calls.append("summary")
                return "custom summary"

            def get_status(self):
                calls.append("get_status")
                return super().get_status()

            def get(self):
                self.write("s")

        class App(tornado.web.Application):
            pass

        return App([(r"/l", L), (r"/s", Summary)],
                   log_function=lambda h: calls.append(("log_function", h.get_status())))

    compare(switch_off, make_app, [("GET", "/l", None, None), ("GET", "/s", None, None)])

    def make_app2(calls):
        class Summary(tornado.web.RequestHandler):
            def _request_summary(self):
                calls.append("summary")
                return "custom summary"

            def get_status(self):
                calls.append("get_status")
                return super().get_status()

            def get(self):
                self.write("s")

        return tornado.web.Application([(r"/s", Summary)])

    compare(switch_off, make_app2, [("GET", "/s", None, None), ("GET", "/x", None, None)])


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING, logging.ERROR,
                                   logging.CRITICAL])
def test_access_log_levels(switch_off, level):
    """Records are identical whatever the access logger lets through (C
    skips the record only when upstream would not emit it)."""
    class A(tornado.web.RequestHandler):
        def get(self, code):
            self.set_status(int(code))

    got = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        app = tornado.web.Application([(r"/(\d+)", A)])
        got[mode] = serve(app, [("GET", "/%d" % c, None, None) for c in (200, 302, 404, 500)],
                          access_level=level)
    switch_off.uninstall()
    assert got["c"] == got["upstream"]
    assert len([r for r in got["c"][1] if r[0] == "tornado.access"]) == {
        logging.INFO: 4, logging.WARNING: 2, logging.ERROR: 1, logging.CRITICAL: 0}[level]


# ------------------------------------------------------------------ _execute


def test_sync_path_has_no_task_and_copied_context(switch_off):
    import contextvars

    var = contextvars.ContextVar("v", default="outer")
    seen = {}

    class Sync(tornado.web.RequestHandler):
        def get(self):
            seen["task"] = asyncio.current_task()
            seen["var"] = var.get()
            var.set("inner")
            self.write("s")

    class Async(tornado.web.RequestHandler):
        async def get(self):
            seen["atask"] = asyncio.current_task()
            self.write("a")

    for mode in MODES:
        set_mode(switch_off, mode)
        seen.clear()
        app = tornado.web.Application([(r"/s", Sync), (r"/a", Async)])
        serve(app, [("GET", "/s", None, None), ("GET", "/a", None, None)])
        assert var.get() == "outer"
        assert seen["var"] == "outer"
        assert seen["atask"] is not None
        if mode == "c":
            assert seen["task"] is None  # the documented difference
        else:
            assert seen["task"] is not None


def test_execute_variants(switch_off):
    """Sync, async, @gen.coroutine, plain functions returning awaitables,
    async prepare, Finish, HTTPError, unexpected errors (in prepare, in the
    method, in write_error), 405s, path arguments, bad bodies: the same
    responses, hook calls and log records."""
    from tornado import gen

    def make_app(calls):
        Base = recording_base(calls)

        class Sync(Base):
            def prepare(self):
                calls.append(("prepare", self.path_args, self.path_kwargs))
                what = self.get_argument("prepare", "")
                if what == "finish":
                    self.finish("from prepare")
                elif what == "raise":
                    raise ValueError("prepare failed")
                elif what == "Finish":
                    raise tornado.web.Finish("Finish from prepare")

            def get(self, *args, **kwargs):
                calls.append(("get", args, kwargs))
                what = self.get_argument("what", "")
                if what == "http":
                    raise tornado.web.HTTPError(403, "log %s", "msg", reason="Nope")
                if what == "Finish":
                    raise tornado.web.Finish()
                if what == "boom":
                    raise KeyError("boom")
                if what == "noauto":
                    self._auto_finish = False
                    self.write("x")
                    self.finish()
                    return
                self.write("sync %r %r" % (args, kwargs))

            def post(self, *args, **kwargs):
                self.write({"body": self.request.body.decode("latin1"),
                            "args": {k: [x.decode() for x in v]
                                     for k, v in self.request.arguments.items()}})

        class Named(Sync):
            pass

        class Async(Base):
            async def prepare(self):
                calls.append("async prepare")
                await asyncio.sleep(0)

            async def get(self):
                await asyncio.sleep(0)
                if self.get_argument("what", "") == "boom":
                    raise ValueError("async boom")
                self.write("async")

        class GenCo(Base):
            @gen.coroutine
            def get(self):
                yield gen.moment
                self.write("gen")

        class ReturnsFuture(Base):
            def prepare(self):
                f = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_soon(f.set_result, None)
                calls.append("prepare returns future")
                return f

            def get(self):
                f = asyncio.get_running_loop().create_future()

                def later():
                    self.write("later")
                    f.set_result(None)

                asyncio.get_running_loop().call_soon(later)
                return f

        class MethodReturnsCoro(Base):
            def get(self):
                return self.real()

            async def real(self):
                await asyncio.sleep(0)
                if self.get_argument("what", "") == "boom":
                    raise ValueError("late boom")
                self.write("coro")

        return tornado.web.Application([
            (r"/sync/(\w*)", Sync), (r"/named/(?P<name>[^/]*)", Named),
            (r"/async", Async), (r"/gen", GenCo), (r"/fut", ReturnsFuture),
            (r"/coro", MethodReturnsCoro)])

    reqs = [("GET", "/sync/a", None, None),
            ("GET", "/sync/a?prepare=finish", None, None),
            ("GET", "/sync/a?prepare=raise", None, None),
            ("GET", "/sync/a?prepare=Finish", None, None),
            ("GET", "/sync/a?what=http", None, None),
            ("GET", "/sync/a?what=Finish", None, None),
            ("GET", "/sync/a?what=boom", None, None),
            ("GET", "/sync/a?what=boom&bad_write_error=1", None, None),
            ("GET", "/sync/a?what=noauto", None, None),
            ("GET", "/sync/%FF", None, None),
            ("GET", "/named/x%20y", None, None),
            ("GET", "/named/%FF", None, None),
            ("DELETE", "/sync/a", None, None),
            ("PROPFIND", "/sync/a", None, None),
            ("POST", "/sync/a?q=1", {"Content-Type": "application/x-www-form-urlencoded"},
             b"a=1&b=2"),
            ("POST", "/sync/a", {"Content-Encoding": "bogus"}, b"a=1"),
            ("POST", "/sync/a", {"Content-Type": "multipart/form-data; boundary=x"},
             b"garbage"),
            ("GET", "/async", None, None), ("GET", "/async?what=boom", None, None),
            ("GET", "/gen", None, None), ("GET", "/fut", None, None),
            ("GET", "/coro", None, None), ("GET", "/coro?what=boom", None, None)]
    compare(switch_off, make_app, reqs)


def test_etag_digest_sizes(switch_off):
    """The default ETag (SHA-1 in C) equals hashlib's for bodies around the
    64-byte block boundaries, written in one or several parts."""
    import hashlib

    sizes = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 4097, 8192, 8193, 20000]

    class E(tornado.web.RequestHandler):
        def get(self, n, parts):
            body = bytes(range(256)) * 100
            body = body[:int(n)]
            k = int(parts)
            step = max(1, len(body) // k)
            for i in range(0, len(body), step):
                self.write(body[i:i + step])

    set_mode(switch_off, "c")
    app = tornado.web.Application([(r"/(\d+)/(\d+)", E)])
    reqs = [("GET", "/%d/%d" % (n, k), None, None) for n in sizes for k in (1, 3)]
    results, _ = serve(app, reqs)
    for (_, uri, _, _), out in zip(reqs, results):
        n = int(uri.split("/")[1])
        body = (bytes(range(256)) * 100)[:n]
        hdrs = dict([e for e in out if e[0] == "headers"][0][2])
        assert hdrs["Etag"] == '"%s"' % hashlib.sha1(body).hexdigest(), uri
    compare(switch_off, lambda calls: app, reqs[:6])


def test_arguments_cookies_redirect(switch_off):
    def make_app(calls):
        class Args(tornado.web.RequestHandler):
            def get(self):
                c = calls
                c.append(err(self.get_argument, "a"))
                c.append(err(self.get_argument, "missing"))
                c.append(err(self.get_argument, "missing", None))
                c.append(err(self.get_argument, "missing", "dflt"))
                c.append(err(self.get_argument, "sp"))
                c.append(err(self.get_argument, "sp", strip=False))
                c.append(err(self.get_argument, "ctl"))
                c.append(err(self.get_argument, "bad"))
                c.append(err(self.get_argument, "multi"))
                c.append(err(self.get_arguments, "multi"))
                c.append(err(self.get_arguments, "multi", "notbool"))
                c.append(err(self.get_arguments, "sp", False))
                c.append(err(self.get_query_argument, "a"))
                c.append(err(self.get_query_arguments, "multi"))
                c.append(err(self.get_body_argument, "b"))
                c.append(err(self.get_body_argument, "a", "nobody"))
                c.append(err(self.get_body_arguments, "b"))
                c.append(err(self.get_argument, "b"))
                c.append(err(self.get_argument))
                c.append(err(self.get_argument, name="a", default=None, strip=True))
                c.append(err(self.decode_argument, b"\xe9t\xc3\xa9"))
                c.append(err(self.decode_argument, b"ok", name="n"))
                c.append(err(self.decode_argument, "str"))
                c.append(err(self.decode_argument, None))
                c.append(err(self.decode_argument, 5))
                c.append(err(self.get_cookie, "c1"))
                c.append(err(self.get_cookie, "nope"))
                c.append(err(self.get_cookie, "nope", "d"))
                self.write("args")

            post = get

        class Decoding(Args):
            def decode_argument(self, value, name=None):
                calls.append(("decode_argument", value, name))
                return value

        class Redirect(tornado.web.RequestHandler):
            def get(self, how):
                if how == "perm":
                    self.redirect("/to/\u00e9", permanent=True)
                elif how == "status":
                    self.redirect(b"/bytes", status=307)
                elif how == "badstatus":
                    calls.append(err(self.redirect, "/x", status=200))
                    self.finish()
                elif how == "late":
                    self.flush()
                    calls.append(err(self.redirect, "/x"))
                    self.finish()
                elif how == "badurl":
                    calls.append(err(self.redirect, 5))
                else:
                    self.redirect("/plain")

        class Errors(tornado.web.RequestHandler):
            def get(self, code):
                self.send_error(int(code), reason=self.get_argument("reason", None))

        return tornado.web.Application([
            (r"/args", Args), (r"/dec", Decoding), (r"/r/(\w+)", Redirect),
            (r"/e/(\d+)", Errors)])

    q = ("?a=1&sp=%20spaced%20&ctl=x%01y%1fz&bad=%FF&multi=1&multi=2&multi=%203%20")
    reqs = [("GET", "/args" + q, {"Cookie": "c1=v1; c2=v2"}, None),
            ("POST", "/args" + q, {"Content-Type": "application/x-www-form-urlencoded"},
             b"b=body&b=2&a=fromBody"),
            ("GET", "/dec" + q, None, None)]
    reqs += [("GET", "/r/" + h, None, None)
             for h in ("perm", "status", "badstatus", "late", "badurl", "plain")]
    reqs += [("GET", "/e/%d?reason=%s" % (c, r), None, None)
             for c in (400, 404, 500, 503, 304, 204, 599)
             for r in ("", "Custom", "%3Cscript%3E", "a%26b%22c%27d")]
    compare(switch_off, make_app, reqs)


def test_serve_traceback_page(switch_off):
    class Boom(tornado.web.RequestHandler):
        def get(self):
            raise ValueError("tb")

    def make_app(calls):
        return tornado.web.Application([(r"/", Boom)], serve_traceback=True)

    got = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        res, _ = serve(make_app(None), [("GET", "/", None, None)])
        got[mode] = res
    switch_off.uninstall()
    for mode in MODES:
        hdr = [e for e in got[mode][0] if e[0] == "headers"][0]
        assert hdr[1][1] == 500
        assert b"ValueError: tb" in hdr[3]


def test_overrides_added_after_first_request(switch_off):
    """C caches, per handler class, which hooks resolve to its own methods:
    a method given to the class, to a base class or to the instance after
    requests were served is called from the next request on, and removing
    it brings the C path back."""

    def make_app(calls):
        class Base(tornado.web.RequestHandler):
            pass

        class Late(Base):
            def get(self):
                step = self.get_argument("step")
                if step == "instance":
                    self.finish = lambda *a: calls.append(("instance finish", a)) or \
                        tornado.web.RequestHandler.finish(self, *a)
                self.write("late " + step)

        def add(step):
            if step == "class":
                def set_default_headers(self):
                    calls.append(("class set_default_headers",))
                Late.set_default_headers = set_default_headers
            elif step == "base":
                def compute_etag(self):
                    calls.append(("base compute_etag",))
                    return None
                Base.compute_etag = compute_etag
            elif step == "remove":
                del Late.set_default_headers
                del Base.compute_etag

        class Steps(tornado.web.RequestHandler):
            def get(self, step):
                add(step)
                self.write("ok")

        return tornado.web.Application([(r"/late", Late), (r"/add/(\w+)", Steps)])

    reqs = []
    for step in ("first", "class", "base", "instance", "remove"):
        reqs.append(("GET", "/add/" + step, None, None))
        reqs.append(("GET", "/late?step=" + step, None, None))
        reqs.append(("GET", "/late?step=again", None, None))
    up = compare(switch_off, make_app, reqs)
    names = [c[0] for c in up[1]]
    assert names.count("class set_default_headers") == 6
    assert names.count("base compute_etag") == 4
    assert names.count("instance finish") == 1
