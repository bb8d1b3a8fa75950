"""Routing in C (csrc/web/routing.c) against upstream's tornado.routing /
tornado.web routing.

Every scenario serves the same requests to the same application with the
`web` switch off (upstream's _RoutingDelegate and find_handler in Python)
and on (the C routing delegate), over a stub connection, and compares what
can be observed: the delegate find_handler chose (its class and attributes,
the handler class, kwargs and path arguments), the response, the calls
overridden hooks saw (in order, with their arguments), the log records, and
exceptions.  Then: the C path really is taken (no Python frame of the
routing code runs for a plain app), a class patched after requests were
served is seen at the next one, and the switch restores upstream's
Router.start_request.
"""

import asyncio
import logging
import re
import sys
from unittest import mock

import pytest
import tornado.httputil as hu
import tornado.routing as routing
import tornado.web as web
from tornado.routing import (AnyMatches, HostMatches, Matcher, PathMatches, Rule, Router,
                             RuleRouter, URLSpec)

from tornado_c import _core
import tornado_c.httputil  # noqa: F401  (sets up the C request builder)


@pytest.fixture(autouse=True)
def switch_off(clean_switch):
    clean_switch.uninstall()
    yield clean_switch


def web_on(switch):
    switch.install(loop=False, http=False, web=True, websocket=False)


CALLS = []  # what overridden hooks saw, in order


class Ctx:
    remote_ip = "10.1.2.3"
    protocol = "http"


class Conn(hu.HTTPConnection):
    context = Ctx()

    def __init__(self):
        self.out = []
        self.done = False

    def _ready(self):
        f = asyncio.get_event_loop().create_future()
        f.set_result(None)
        return f

    def set_close_callback(self, cb):
        pass

    def write_headers(self, start_line, headers, chunk=None):
        keep = {k: v for k, v in headers.get_all() if k in ("Content-Type", "Location", "X-Kw")}
        self.out.append(("head", start_line.code, start_line.reason, sorted(keep.items())))
        if chunk:
            self.out.append(("chunk", bytes(chunk)))
        return self._ready()

    def write(self, chunk):
        self.out.append(("chunk", bytes(chunk)))
        return self._ready()

    def finish(self):
        self.done = True
        self.out.append(("finish",))


def plain(v):
    if isinstance(v, hu.HTTPServerRequest):
        return ("request", v.method, v.uri, v.path, v.host_name)
    if isinstance(v, hu.HTTPHeaders):
        return ("headers", list(v.get_all()))
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(plain(x) for x in v)
    if isinstance(v, (str, bytes, int, float, bool, type(None), type)):
        return v
    return type(v).__name__


def describe_delegate(d):
    if d is None:
        return None
    out = [type(d).__name__]
    if isinstance(d, web._HandlerDelegate):
        out.append([(k, plain(v)) for k, v in vars(d).items() if k != "connection"])
    elif isinstance(d, routing._DefaultMessageDelegate):
        out.append(sorted(vars(d)))
    elif type(d) in (routing._RoutingDelegate, _core.RoutingDelegate):
        out = ["routing", describe_delegate(d.delegate)]
    elif hasattr(d, "request"):  # _CallableAdapter
        out.append(plain(d.request))
    return out


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.name, record.levelname, record.getMessage()))


def serve(app, requests, on, switch):
    """Serve `requests` ((method, uri, [(header, value)...], body) ...) one by
    one; returns what was observed."""
    if on:
        web_on(switch)
    else:
        switch.uninstall()
    CALLS.clear()
    cap = LogCapture()
    loggers = [logging.getLogger(n) for n in ("tornado.application", "tornado.access",
                                               "tornado.general")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(cap)
        lg.setLevel(logging.DEBUG)
    log = []

    async def main():
        for method, uri, pairs, body in requests:
            conn = Conn()
            h = hu.HTTPHeaders()
            for k, v in pairs:
                h.add(k, v)
            entry = [method, uri]
            try:
                d = app.start_request("server-conn", conn)
                entry.append(("start", type(d).__name__ if not isinstance(
                    d, (routing._RoutingDelegate, _core.RoutingDelegate)) else "routing"))
                r = d.headers_received(hu.RequestStartLine(method, uri, "HTTP/1.1"), h)
                if r is not None:
                    await r
                entry.append(("delegate", describe_delegate(d)))
                if body:
                    r = d.data_received(body)
                    if r is not None:
                        await r
                d.finish()
            except Exception as e:
                entry.append(("raise", type(e).__name__, str(e)))
            for _ in range(20):
                if conn.done:
                    break
                await asyncio.sleep(0)
            # the access log line's time varies
            entry.append(("out", conn.out))
            entry.append(("calls", list(CALLS)))
            CALLS.clear()
            log.append(entry)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        for lg, level in saved:
            lg.removeHandler(cap)
            lg.setLevel(level)
    records = [(n, lv, re.sub(r"\d+\.\d+ms", "Tms", m)) for n, lv, m in cap.records]
    switch.uninstall()
    return log, records


def same_both_ways(switch, make_app, requests):
    off = serve(make_app(), requests, False, switch)
    on = serve(make_app(), requests, True, switch)
    assert on[0] == off[0]
    assert on[1] == off[1]
    return on


# ------------------------------------------------------------ handlers and targets


class H(web.RequestHandler):
    def initialize(self, **kw):
        self.kw = kw

    def get(self, *args, **kwargs):
        self.set_header("X-Kw", repr(sorted(self.kw.items())))
        self.write({"args": list(args), "kwargs": dict(sorted(kwargs.items())),
                    "path": self.request.path, "host": self.request.host_name,
                    "query": {k: [x.decode("latin1") for x in v]
                              for k, v in sorted(self.request.arguments.items())},
                    "cls": type(self).__name__})

    post = get


class H2(H):
    pass


@web.stream_request_body
class Streaming(web.RequestHandler):
    def prepare(self):
        CALLS.append(("prepare", self.request.method, plain(self.path_args)))
        self.got = []

    def data_received(self, chunk):
        CALLS.append(("data_received", chunk))
        self.got.append(chunk)

    def post(self, *args):
        self.write(b"|".join(self.got))

    put = post


class Default(web.RequestHandler):
    def initialize(self, tag=None):
        self.tag = tag

    def prepare(self):
        raise web.HTTPError(418, reason="Default %s" % self.tag)


def callable_target(request, **kw):
    CALLS.append(("callable", plain(request), plain(kw)))
    request.connection.write_headers(
        hu.ResponseStartLine("HTTP/1.1", 200, "OK"),
        hu.HTTPHeaders({"X-Kw": repr(sorted(plain(kw).items()))}), b"callable")
    request.connection.finish()


def basic_rules():
    return [
        (r"/", H),
        (r"/a/b", H, {"x": 1}),
        (r"/u/([^/]+)/(\d+)?", H),
        (r"/n/(?P<id>\d+)/(?P<name>.*)", H),
        (r"/opt/(x)?(y)?", H2),
        URLSpec(r"/named/(\d+)", H, name="named"),
        URLSpec(re.compile(r"/ci/(\w+)$", re.I), H),
        URLSpec(re.compile(r"/pre"), H),
        (r"/dot.", H),
        (r"/nest/.*", [(r"/nest/a", H, {"in": "nest"}), (r"/nest/(b)", H2)]),
        Rule(PathMatches(r"/call/(?P<c>.*)"), callable_target, {"t": "kw"}),
        (r"/esc\$/(.*)", H),
        (r"/stream/(.*)", Streaming),
    ]


PATHS = [
    "/", "/?a=1&a=2&b", "/a/b", "/a/b/", "/a/b\n", "/a/bc", "/u/x/12", "/u/x/", "/u/%41%2F%zz/1",
    "/u/%E9/1", "/u/\xe9/2", "/u/%25/3", "/n/5/a%20b+c", "/n/x/y", "/opt/", "/opt/x", "/opt/xy",
    "/named/7", "/CI/Abc", "/ci/abc", "/prefix/anything", "/dotx", "/dot", "/nest/a",
    "/nest/b", "/nest/c", "/call/%41x", "/esc$/q", "/missing", "/u/a b/1",
]


def reqs(paths, host="example.com", method="GET"):
    return [(method, p, [("Host", host)], b"") for p in paths]


# ------------------------------------------------------------ scenarios


def test_plain_application_routes(switch_off):
    same_both_ways(switch_off, lambda: web.Application(basic_rules()), reqs(PATHS))


def test_streaming_request_body(switch_off):
    requests = [("POST", "/stream/a", [("Host", "h")], b"chunk-1"),
                ("PUT", "/stream/%41", [("Host", "h")], b"x"),
                ("POST", "/a/b", [("Host", "h"), ("Content-Type", "application/x-www-form-urlencoded")],
                 b"p=1&p=2")]
    same_both_ways(switch_off, lambda: web.Application(basic_rules()), requests)


def test_handler_delegate_headers_received_patched(switch_off, monkeypatch):
    seen = []
    orig = web._HandlerDelegate.headers_received

    def hr(self, start_line, headers):
        seen.append((self.handler_class.__name__, start_line.path))
        return orig(self, start_line, headers)

    monkeypatch.setattr(web._HandlerDelegate, "headers_received", hr)
    same_both_ways(switch_off, lambda: web.Application(basic_rules()), reqs(["/", "/u/x/1"]))
    assert seen == [("H", "/"), ("H", "/u/x/1")] * 2


def test_default_handler_class(switch_off):
    same_both_ways(switch_off, lambda: web.Application(
        basic_rules(), default_handler_class=Default, default_handler_args={"tag": "t"}),
        reqs(["/missing", "/", "/u/x/1"]))
    same_both_ways(switch_off, lambda: web.Application(
        basic_rules(), default_handler_class=Default), reqs(["/missing"]))


def test_host_rules_and_default_host(switch_off):
    def make():
        app = web.Application([(r"/", H)], default_host="default.org")
        app.add_handlers(r"example\.com", [(r"/host", H, {"h": "ex"}), (r"/h/(.*)", H2)])
        app.add_handlers(r".*\.sub\.org$", [(r"/host", H2, {"h": "sub"})])
        app.add_handlers(r"default\.org", [(r"/dflt", H)])
        return app

    requests = []
    for host in ("example.com", "EXAMPLE.com:8080", "a.sub.org", "default.org", "other.net"):
        requests += reqs(["/", "/host", "/h/x%20y", "/dflt", "/none"], host=host)
    requests.append(("GET", "/dflt", [("Host", "other.net"), ("X-Real-Ip", "1.2.3.4")], b""))
    same_both_ways(switch_off, make, requests)


def test_nested_routers_and_connection_delegates(switch_off):
    def make():
        sub = web.Application([(r"/sub/(.*)", H2, {"from": "sub"})])
        inner = RuleRouter([
            Rule(PathMatches(r"/rr/call"), callable_target),
            Rule(PathMatches(r"/rr/none"), object()),  # not a target: None
        ])
        return web.Application([
            Rule(PathMatches(r"/sub/.*"), sub),
            Rule(PathMatches(r"/rr/.*"), inner),
            Rule(AnyMatches(), [(r"/any/(\d)", H)]),
        ])

    same_both_ways(switch_off, make,
                   reqs(["/sub/x", "/sub/", "/rr/call", "/rr/none", "/rr/x", "/any/1", "/any/x"]))


def test_plain_rule_router_as_server_delegate(switch_off):
    """A RuleRouter (not an Application) given to the server: its
    start_request is Router's, find_handler may return None (404 from
    _DefaultMessageDelegate with upstream's debug log line)."""
    def make():
        return RuleRouter([(r"/call/(.*)", callable_target), ("/x", callable_target)])

    same_both_ways(switch_off, make, reqs(["/call/a", "/x", "/nothing"]))


class LoggingApp(web.Application):
    def find_handler(self, request, **kwargs):
        CALLS.append(("find_handler", plain(request), plain(kwargs)))
        return super().find_handler(request, **kwargs)

    def get_handler_delegate(self, request, target_class, target_kwargs=None, path_args=None,
                             path_kwargs=None):
        CALLS.append(("get_handler_delegate", plain(request), target_class.__name__,
                      plain(target_kwargs), plain(path_args), plain(path_kwargs)))
        return super().get_handler_delegate(request, target_class, target_kwargs, path_args,
                                            path_kwargs)


class LoggingPathMatches(PathMatches):
    def match(self, request):
        r = super().match(request)
        CALLS.append(("match", self.regex.pattern, plain(request), plain(r)))
        return r


class HeaderMatches(Matcher):
    def __init__(self, value):
        self.value = value

    def match(self, request):
        CALLS.append(("header-match", self.value))
        if request.headers.get("X-Mode") == self.value:
            return {"path_args": [self.value.encode()]}
        return None


class ExtraKeyMatches(Matcher):
    def match(self, request):
        return {"surprise": 1} if request.path == "/extra" else None


class LoggingRuleRouter(RuleRouter):
    def get_target_delegate(self, target, request, **target_params):
        CALLS.append(("get_target_delegate", plain(target), plain(target_params)))
        return super().get_target_delegate(target, request, **target_params)


class MethodRouter(Router):
    """The documentation's HTTPMethodRouter: find_handler of its own."""

    def __init__(self, app):
        self.app = app

    def find_handler(self, request, **kwargs):
        CALLS.append(("method-router", request.method, plain(kwargs)))
        handler = H if request.method == "GET" else H2
        return self.app.get_handler_delegate(request, handler, path_args=[b"m"])


def test_overridden_hooks_are_called_in_order(switch_off):
    def make():
        app = LoggingApp([
            Rule(LoggingPathMatches(r"/lp/(\w+)"), H, {"k": "v"}),
            Rule(HeaderMatches("blue"), H2),
            Rule(ExtraKeyMatches(), H),
            Rule(LoggingPathMatches(r"/lr/.*"),
                 LoggingRuleRouter([(r"/lr/cb", callable_target)])),
            (r"/plain/(.*)", H),
        ])
        return app

    requests = reqs(["/lp/abc", "/lp/", "/plain/z", "/extra", "/lr/cb", "/lr/no", "/zzz"])
    requests.append(("GET", "/anything", [("Host", "h"), ("X-Mode", "blue")], b""))
    same_both_ways(switch_off, make, requests)


def test_custom_router_class(switch_off):
    def make():
        app = web.Application()
        return MethodRouter(app)

    same_both_ways(switch_off, make, reqs(["/x"]) + reqs(["/y"], method="POST"))


def test_instance_level_override(switch_off):
    def make():
        app = web.Application(basic_rules())
        orig = app.find_handler

        def find_handler(request, **kw):
            CALLS.append(("instance find_handler", plain(request)))
            return orig(request, **kw)

        app.find_handler = find_handler
        app.default_router.get_target_delegate = (
            lambda target, request, **p: CALLS.append(("instance gtd", plain(target), plain(p)))
            or web._ApplicationRouter.get_target_delegate(app.default_router, target, request,
                                                          **p))
        return app

    same_both_ways(switch_off, make, reqs(["/", "/u/a/1", "/missing"]))


def test_bad_requests_raise_the_same(switch_off):
    requests = [("GET", "/", [("Host", "bad host")], b""),
                ("GET", "/", [("Host", "a"), ("Host", "b")], b""),
                ("GET", "/", [], b""),
                ("GET", "/?" + "&".join(["a"] * 1001), [("Host", "h")], b""),
                ("POST", "/a/b", [("Host", "h")], b"x=1&y=2")]
    same_both_ways(switch_off, lambda: web.Application(basic_rules()), requests)


def test_reverse_url_unchanged(switch_off):
    out = []
    for on in (False, True):
        if on:
            web_on(switch_off)
        app = web.Application(basic_rules())
        res = [app.reverse_url("named", 5), app.reverse_url("named", "a b/é")]
        with pytest.raises(KeyError):
            app.reverse_url("nope")
        out.append(res)
        switch_off.uninstall()
    assert out[0] == out[1]


# ------------------------------------------------------------ the C path is the one taken


ROUTING_CODE = {("routing.py", n) for n in ("find_handler", "get_target_delegate", "match",
                                             "headers_received", "_unquote_or_none")}
ROUTING_CODE |= {("web.py", n) for n in ("find_handler", "get_target_delegate",
                                          "get_handler_delegate", "_has_stream_request_body")}
ROUTING_CODE |= {("httputil.py", "__init__")}


def python_routing_calls(app, uri):
    seen = []

    def prof(frame, event, arg):
        if event == "call":
            code = frame.f_code
            key = (code.co_filename.rsplit("/", 1)[-1], code.co_name)
            if key in ROUTING_CODE and "tornado" in code.co_filename:
                seen.append(key)

    d = app.start_request(None, Conn())
    h = hu.HTTPHeaders()
    h.add("Host", "h")
    sys.setprofile(prof)
    try:
        d.headers_received(hu.RequestStartLine("GET", uri, "HTTP/1.1"), h)
    finally:
        sys.setprofile(None)
    return d, seen


def test_c_path_runs_no_python_routing(switch_off):
    web_on(switch_off)
    app = web.Application(basic_rules())
    for uri in ("/", "/u/x/1", "/n/1/b", "/missing", "/nest/a", "/ci/X", "/a/b\n"):
        d, seen = python_routing_calls(app, uri)
        assert type(d) is _core.RoutingDelegate
        assert type(d.delegate) is web._HandlerDelegate
        assert seen == [], uri
    switch_off.uninstall()
    d, seen = python_routing_calls(web.Application(basic_rules()), "/u/x/1")
    assert type(d) is routing._RoutingDelegate and seen  # upstream's Python


def test_patching_a_class_is_seen_at_the_next_request(switch_off):
    web_on(switch_off)
    app = web.Application(basic_rules())
    d, seen = python_routing_calls(app, "/u/x/1")
    assert seen == []
    calls = []
    orig = web.Application.get_handler_delegate

    def ghd(self, *a, **kw):
        calls.append((a[1].__name__, sorted(kw)))
        return orig(self, *a, **kw)

    with mock.patch.object(web.Application, "get_handler_delegate", ghd):
        d, _ = python_routing_calls(app, "/u/x/1")
        assert calls == [("H", ["path_args", "path_kwargs"])]
        with mock.patch.object(PathMatches, "match", lambda self, request: None):
            d, _ = python_routing_calls(app, "/u/x/1")
            assert d.delegate.handler_class is web.ErrorHandler
    d, seen = python_routing_calls(app, "/u/x/1")
    assert seen == [] and len(calls) == 2 and d.delegate.handler_class is H


def test_replaced_module_globals_are_used(switch_off, monkeypatch):
    web_on(switch_off)
    made = []

    class MyHD(web._HandlerDelegate):
        def __init__(self, *a):
            made.append(len(a))
            super().__init__(*a)

    monkeypatch.setattr(web, "_HandlerDelegate", MyHD)
    monkeypatch.setattr(routing, "_unquote_or_none", lambda s: b"UNQ")
    d, _ = python_routing_calls(web.Application(basic_rules()), "/u/x/1")
    assert type(d.delegate) is MyHD and made == [6]
    assert d.delegate.path_args == [b"UNQ", b"UNQ"]

    class MyRD(routing._RoutingDelegate):
        pass

    monkeypatch.setattr(routing, "_RoutingDelegate", MyRD)
    assert type(web.Application().start_request(None, Conn())) is MyRD


def test_switch_replaces_and_restores_start_request(switch_off):
    orig = Router.__dict__["start_request"]
    web_on(switch_off)
    assert type(Router.__dict__["start_request"]) is _core.WebMethod
    assert Router.start_request.__wrapped__ is orig
    assert Router.start_request.__name__ == "start_request"
    # keywords go to upstream's function
    d = web.Application().start_request(server_conn=None, request_conn=Conn())
    assert type(d) is routing._RoutingDelegate
    switch_off.uninstall()
    assert Router.__dict__["start_request"] is orig


def test_routing_delegate_forwards(switch_off):
    web_on(switch_off)

    class Rec(hu.HTTPMessageDelegate):
        def __init__(self):
            self.calls = []

        def headers_received(self, start_line, headers):
            self.calls.append("headers")
            return "hr"

        def data_received(self, chunk):
            self.calls.append(("data", chunk))
            return "dr"

        def finish(self):
            self.calls.append("finish")
            return "ignored"

        def on_connection_close(self):
            self.calls.append("close")

    rec = Rec()

    class R(Router):
        def find_handler(self, request, **kwargs):
            return rec

    d = R().start_request("sc", Conn())
    assert type(d) is _core.RoutingDelegate
    assert d.delegate is None and d.server_conn == "sc"
    d.on_connection_close()  # nothing yet: no error
    with pytest.raises(AssertionError):
        d.finish()
    with pytest.raises(AssertionError):
        d.data_received(b"x")
    with pytest.raises(AssertionError):
        d.headers_received(("GET", "/", "HTTP/1.1"), hu.HTTPHeaders())
    h = hu.HTTPHeaders({"Host": "h"})
    assert d.headers_received(start_line=hu.RequestStartLine("GET", "/", "HTTP/1.1"),
                              headers=h) == "hr"
    assert d.data_received(b"abc") == "dr"
    assert d.finish() is None
    d.on_connection_close()
    assert rec.calls == ["headers", ("data", b"abc"), "finish", "close"]
    with pytest.raises(TypeError):
        d.headers_received(1)
    with pytest.raises(TypeError):
        d.headers_received(1, 2, 3)


def test_patches_made_before_the_switch_are_kept(switch_off, monkeypatch):
    """Methods already patched (even with functools.wraps) when the switch
    is turned on are not taken for upstream's: they are called."""
    import functools

    seen = []
    orig_find = web.Application.find_handler
    orig_match = PathMatches.match
    orig_start = Router.start_request

    @functools.wraps(orig_find)
    def find_handler(self, request, **kw):
        seen.append(("find", request.path))
        return orig_find(self, request, **kw)

    @functools.wraps(orig_match)
    def match(self, request):
        seen.append(("match", self.regex.pattern))
        return orig_match(self, request)

    @functools.wraps(orig_start)
    def start_request(self, server_conn, request_conn):
        seen.append(("start",))
        return orig_start(self, server_conn, request_conn)

    monkeypatch.setattr(web.Application, "find_handler", find_handler)
    monkeypatch.setattr(PathMatches, "match", match)
    monkeypatch.setattr(Router, "start_request", start_request)
    web_on(switch_off)
    assert Router.__dict__["start_request"] is start_request
    d, _ = python_routing_calls(web.Application([(r"/x", H)]), "/x")
    assert type(d) is routing._RoutingDelegate
    assert seen == [("start",), ("find", "/x"), ("match", "/x$")]
    # the C delegate, still with the patched methods called
    monkeypatch.setattr(Router, "start_request", orig_start)
    switch_off.uninstall()
    web_on(switch_off)
    seen.clear()
    d, _ = python_routing_calls(web.Application([(r"/x", H)]), "/x")
    assert type(d) is _core.RoutingDelegate and d.delegate.handler_class is H
    assert seen == [("find", "/x"), ("match", "/x$")]


def test_instance_headers_received_on_handler_delegate(switch_off):
    class App(web.Application):
        def get_handler_delegate(self, *a, **kw):
            d = super().get_handler_delegate(*a, **kw)
            orig = d.headers_received

            def hr(start_line, headers):
                CALLS.append(("instance headers_received", start_line.path))
                return orig(start_line, headers)

            d.headers_received = hr
            return d

    on, _ = same_both_ways(switch_off, lambda: App(basic_rules()), reqs(["/", "/missing"]))
    assert [e[-1] for e in on] == [("calls", [("instance headers_received", "/")]),
                                   ("calls", [("instance headers_received", "/missing")])]


def test_deleted_delegate_attributes_raise(switch_off):
    web_on(switch_off)
    for name in ("router", "server_conn", "request_conn"):
        d = web.Application().start_request("sc", Conn())
        delattr(d, name)
        with pytest.raises(AttributeError):
            getattr(d, name)
        with pytest.raises(AttributeError):
            d.headers_received(hu.RequestStartLine("GET", "/", "HTTP/1.1"),
                               hu.HTTPHeaders({"Host": "h"}))
    d = web.Application().start_request("sc", Conn())
    assert d.delegate is None
