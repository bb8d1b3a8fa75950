"""HTTPServerRequest built in C (csrc/web/request.c) against upstream's
tornado.httputil.HTTPServerRequest.__init__.

Each case builds the request both ways -- upstream's constructor with the
keywords upstream's _RoutingDelegate passes, and the C builder the routing
delegate uses (through the routing delegate itself with the `web` switch on,
and through _core._web_request) -- and compares everything that can be
observed: the class, vars() in order with each value's type and value,
upstream's methods (full_url, request_time, cookies), and, where upstream
raises, the exception's type, message and cause.  The C query parser is also
compared with upstream's parse_qs_bytes on random query strings.
"""

import random
import time as _time
import types
import warnings

import pytest
import tornado.httputil as hu
import tornado.routing
import tornado.web
from tornado.escape import parse_qs_bytes

from tornado_c import _core
import tornado_c.httputil  # noqa: F401  (sets up the C request builder)

FIXED_TIME = 1_700_000_000.25


@pytest.fixture(autouse=True)
def switch_off(clean_switch):
    clean_switch.uninstall()
    yield clean_switch


def web_on(switch):
    switch.install(loop=False, http=False, web=True, websocket=False)


@pytest.fixture
def fixed_time(monkeypatch):
    """httputil's `time` module replaced: both ways must read the clock
    through it."""
    fake = types.SimpleNamespace(time=lambda: FIXED_TIME)
    monkeypatch.setattr(hu, "time", fake)
    return fake


class Ctx:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Conn:
    def __init__(self, context="default"):
        if context == "default":
            context = Ctx(remote_ip="10.0.0.1", protocol="https")
        if context is not None:
            self.context = context


def plain_headers(h):
    return list(h.get_all()) if h is not None else None


def describe(req, ids=True):
    """Everything observable about a request, comparable across builds
    (connections by identity, or by type only when ids is false)."""
    out = []
    for k, v in vars(req).items():
        if k == "headers":
            out.append((k, "headers", plain_headers(v)))
        elif k in ("connection", "server_connection"):
            out.append((k, type(v).__name__, id(v) if ids else None))
        else:
            out.append((k, type(v), v))
    out.append(("class", type(req)))
    out.append(("full_url", req.full_url()))
    out.append(("request_time", req.request_time()))
    out.append(("cookies", sorted((k, m.value) for k, m in req.cookies.items())))
    return out


def outcome(fn):
    try:
        return ("ok", describe(fn()))
    except Exception as e:
        cause = e.__cause__
        return ("raise", type(e), str(e),
                None if cause is None else (type(cause), str(cause)))


def upstream_build(sl, h, conn, sc):
    return hu.HTTPServerRequest(connection=conn, server_connection=sc, start_line=sl,
                                headers=h)


def c_build(sl, h, conn, sc):
    return _core._web_request(sl, h, conn, sc)


def make_headers(pairs):
    if pairs is None:
        return None
    h = hu.HTTPHeaders()
    for k, v in pairs:
        h.add(k, v)
    return h


URIS = [
    "/", "/?", "/?a", "/?a=", "/?=b", "/?=", "/?&&a=1&&", "/?a=1&a=2&b=3&a=4",
    "/?a=1;b=2", "/?a=1;b=2&c=3;d", "/?a=%41%4", "/?a=%zz&%=%", "/?a+b=c+d",
    "/?a=%2B&b=%2b+", "/?%E9=%E9", "/?\xe9=\xe9\xff", "/?a=%%41", "/?a==b",
    "/?a=b=c", "/p%20q?x", "/?x=&&&&&", "/?a=%0A&b=%0d%0a", "/?%00=%00", "/?a=%3d%25",
    "/?a=%3D&b=%253D", "/?%=1&%2=2&%%=3", "/?+=+", "/?a=%2", "/?a=%", "/?a=%g1",
    "/path?#frag", "/?a=1#x", "*", "http://h/abs?x=1&y", "/a?b?c=d?e", "/??",
    "/?" + "&".join("k%d=v" % i for i in range(50)),
    "/?a=\u0100", "/\u0100?x=1",
]

HOSTS = [
    [("Host", "example.com")], [("Host", "Example.COM:8080")], [("Host", "[::1]:80")],
    [("Host", "a,b")], [("Host", "bad host")], [("Host", "h%41st")], [("Host", "h%4")],
    [("Host", ":80")], [("Host", "a:")], [("Host", "a:b:12")], [("Host", "")],
    [("Host", "a"), ("Host", "b")], [("Host", "ex\xe9.com")], [("Host", "a_b~c!$&'()*+;=")],
    [("Host", "a:" + "1" * 700)], [("Host", "a:" + "1" * 5000)], [("Host", "A:" + "9" * 600)],
    [("Host", "h"), ("Cookie", "a=1; b=\"x\\073\"; c")], [("X-Other", "1")], [], None,
]


def cases():
    for uri in URIS:
        for version in ("HTTP/1.1",):
            yield hu.RequestStartLine("GET", uri, version), [("Host", "h.example:81")]
    for hosts in HOSTS:
        for version in ("HTTP/1.1", "HTTP/1.0"):
            yield hu.RequestStartLine("POST", "/x?y=1", version), hosts


@pytest.mark.parametrize("on", [False, True], ids=["web-off", "web-on"])
def test_request_attributes_match_upstream(switch_off, fixed_time, on):
    if on:
        web_on(switch_off)
    for sl, pairs in cases():
        for conn in (Conn(), Conn(None), Conn(Ctx(remote_ip="::1")), None):
            sc = object()
            up = outcome(lambda: upstream_build(sl, make_headers(pairs), conn, sc))
            c = outcome(lambda: c_build(sl, make_headers(pairs), conn, sc))
            assert c == up, (sl, pairs)


def test_empty_headers_are_replaced_as_upstream_does(switch_off, fixed_time):
    web_on(switch_off)
    sl = hu.RequestStartLine("GET", "/", "HTTP/1.0")
    for build in (upstream_build, c_build):
        h = hu.HTTPHeaders()
        req = build(sl, h, Conn(), None)
        assert req.headers is not h  # `headers or HTTPHeaders()`
        assert isinstance(req.headers, hu.HTTPHeaders)
        assert req.host == "127.0.0.1"
        h.add("Host", "x")
        req = build(sl, h, Conn(), None)
        assert req.headers is h


def test_arguments_are_copied_not_shared(switch_off):
    sl = hu.RequestStartLine("GET", "/?a=1&a=2&b=", "HTTP/1.1")
    req = c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    assert req.arguments == req.query_arguments == {"a": [b"1", b"2"], "b": [b""]}
    assert req.arguments is not req.query_arguments
    for k in req.arguments:
        assert req.arguments[k] is not req.query_arguments[k]
        for x, y in zip(req.arguments[k], req.query_arguments[k]):
            assert type(x) is bytes and x == y
    req.arguments["a"].append(b"3")
    assert req.query_arguments["a"] == [b"1", b"2"]
    assert req.body_arguments == {} and req.files == {}
    assert req.body_arguments is not req.files


def test_start_time_comes_from_time_time(switch_off):
    sl = hu.RequestStartLine("GET", "/", "HTTP/1.1")
    before = _time.time()
    req = c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    after = _time.time()
    assert type(req._start_time) is float and before <= req._start_time <= after
    assert req._finish_time is None
    assert 0 <= req.request_time() < 60


@pytest.mark.parametrize("limit", [1, 2, 3, None])
def test_max_arguments_config_is_read_per_request(switch_off, fixed_time, limit):
    cfg = hu.ParseBodyConfig(urlencoded=hu.ParseUrlEncodedConfig(max_arguments=limit))
    saved = hu._DEFAULT_PARSE_BODY_CONFIG
    hu.set_parse_body_config(cfg)
    try:
        for uri in ("/", "/?a", "/?a&b", "/?a&b&c", "/?&&", "/?" + "&" * 10):
            sl = hu.RequestStartLine("GET", uri, "HTTP/1.1")
            conn = Conn()
            up = outcome(lambda: upstream_build(sl, make_headers([("Host", "h")]), conn, None))
            c = outcome(lambda: c_build(sl, make_headers([("Host", "h")]), conn, None))
            assert c == up, uri
    finally:
        hu.set_parse_body_config(saved)


def test_too_many_fields_error_and_cause(switch_off):
    sl = hu.RequestStartLine("GET", "/?" + "&".join(["a=1"] * 1001), "HTTP/1.1")
    with pytest.raises(hu.HTTPInputError) as ei:
        c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    assert str(ei.value) == "Invalid query string: Max number of fields exceeded"
    assert type(ei.value.__cause__) is ValueError
    assert ei.value.__suppress_context__


def test_patched_module_globals_are_called(switch_off, fixed_time, monkeypatch):
    calls = []

    def pqs(qs, *a, **kw):
        calls.append(("pqs", qs, a, kw))
        return {"patched": [b"1"]}

    def shp(netloc):
        calls.append(("shp", netloc))
        return ("patched-host", None)

    monkeypatch.setattr(hu, "parse_qs_bytes", pqs)
    monkeypatch.setattr(hu, "split_host_and_port", shp)
    sl = hu.RequestStartLine("GET", "/?q=1", "HTTP/1.1")
    for build in (upstream_build, c_build):
        calls.clear()
        req = build(sl, make_headers([("Host", "H:1")]), Conn(), None)
        assert req.arguments == {"patched": [b"1"]}
        assert req.host_name == "patched-host"
        assert calls == [("shp", "h:1"),
                         ("pqs", "q=1", (), {"keep_blank_values": True, "max_num_fields": 1000})]


def test_patched_init_is_honoured(switch_off, monkeypatch):
    """A patched HTTPServerRequest.__init__ (the class's version tag
    changes) is the one the C builder runs, and the C path comes back once
    it is restored."""
    web_on(switch_off)
    seen = []
    orig = hu.HTTPServerRequest.__init__

    def init(self, *a, **kw):
        seen.append(sorted(kw))
        orig(self, *a, **kw)
        self.extra = 1

    sl = hu.RequestStartLine("GET", "/", "HTTP/1.1")
    r1 = c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    assert not hasattr(r1, "extra")
    monkeypatch.setattr(hu.HTTPServerRequest, "__init__", init)
    r2 = c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    assert r2.extra == 1
    assert seen == [["connection", "headers", "server_connection", "start_line"]]
    monkeypatch.undo()
    r3 = c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    assert not hasattr(r3, "extra") and len(seen) == 1


def test_replaced_class_is_called(switch_off, monkeypatch):
    class Sub(hu.HTTPServerRequest):
        pass

    monkeypatch.setattr(hu, "HTTPServerRequest", Sub)
    sl = hu.RequestStartLine("GET", "/", "HTTP/1.1")
    assert type(c_build(sl, make_headers([("Host", "h")]), Conn(), None)) is Sub


def test_odd_arguments_take_upstreams_init(switch_off, fixed_time):
    """Arguments the servers never give go through upstream's __init__, so
    its behaviour (and errors) are upstream's."""
    odd = [
        (("GET", "/", "HTTP/1.1"), [("Host", "h")]),          # a plain tuple
        (hu.RequestStartLine("GET", None, "HTTP/1.1"), [("Host", "h")]),
        (hu.RequestStartLine("GET", b"/x", "HTTP/1.1"), [("Host", "h")]),
        (hu.RequestStartLine("GET", "/", None), []),
    ]
    conn = Conn()
    for sl, pairs in odd:
        up = outcome(lambda: upstream_build(sl, make_headers(pairs), conn, None))
        c = outcome(lambda: c_build(sl, make_headers(pairs), conn, None))
        assert c == up, sl


def test_keyword_construction_by_user_code_is_upstreams(switch_off, fixed_time):
    """HTTPServerRequest(method=..., uri=...) keeps upstream's __init__ (and
    its DeprecationWarnings) under the switch."""
    results = []
    for on in (False, True):
        if on:
            web_on(switch_off)
        assert hu.HTTPServerRequest.__init__ is hu.HTTPServerRequest.__dict__["__init__"]
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            req = hu.HTTPServerRequest(method="PUT", uri="/a?b=c", host="x.org",
                                       body=b"data")
        results.append((describe(req), [(x.category, str(x.message), x.filename) for x in w]))
    assert results[0] == results[1]
    assert results[0][1] and all(c is DeprecationWarning for c, _m, _f in results[0][1])


QS_ALPHABET = b"ab=&%+;2Bfz0\x00\xff\xe9 "


def test_parse_qs_matches_upstream_randomized():
    rnd = random.Random(1234)
    for _ in range(5000):
        qs = bytes(rnd.choice(QS_ALPHABET) for _ in range(rnd.randrange(0, 24)))
        assert _core._web_parse_qs(qs) == parse_qs_bytes(qs, keep_blank_values=True), qs
        s = qs.decode("latin1")
        assert _core._web_parse_qs(s) == parse_qs_bytes(s, keep_blank_values=True), s


def test_parse_qs_types():
    r = _core._web_parse_qs(b"a=1&%E9=%FF&a")
    assert r == {"a": [b"1", b""], "\xe9": [b"\xff"]}
    assert all(type(k) is str for k in r)
    assert all(type(v) is list and all(type(x) is bytes for x in v) for v in r.values())
    with pytest.raises(TypeError):
        _core._web_parse_qs("\u0100")


def test_routing_delegate_builds_the_same_request(switch_off, fixed_time):
    """Through Application.start_request with the switch off (upstream's
    _RoutingDelegate) and on (the C delegate): the handler's request."""
    seen = {}

    class H(tornado.web.RequestHandler):
        def get(self):
            pass

    for on in (False, True):
        if on:
            web_on(switch_off)
        app = tornado.web.Application([(r"/.*", H)])
        got = []
        for sl, pairs in cases():
            conn = Conn()
            d = app.start_request(None, conn)
            assert (type(d) is _core.RoutingDelegate) == on
            try:
                d.headers_received(sl, make_headers(pairs) if pairs is not None else None)
            except Exception as e:
                got.append(("raise", type(e), str(e)))
                continue
            got.append(("ok", type(d.delegate), describe(d.delegate.request, ids=False)))
            assert d.delegate.request.connection is conn
        seen[on] = got
        switch_off.uninstall()
    assert seen[True] == seen[False]


def test_rejects_bad_calls():
    with pytest.raises(TypeError):
        _core._web_request(1, 2, 3)
    with pytest.raises(TypeError):
        _core._web_parse_qs(5)


def test_data_descriptor_on_the_class_sees_assignments(switch_off, fixed_time, monkeypatch):
    """A property added to the class for one of the attributes __init__
    sets is called by the C builder as by upstream's __init__."""
    seen = []

    def setter(self, v):
        seen.append(v)
        self.__dict__["_hn"] = v

    monkeypatch.setattr(hu.HTTPServerRequest, "host_name",
                        property(lambda self: self.__dict__["_hn"], setter), raising=False)
    sl = hu.RequestStartLine("GET", "/", "HTTP/1.1")
    conn = Conn()
    up = describe(upstream_build(sl, make_headers([("Host", "A.b:1")]), conn, None))
    c = describe(c_build(sl, make_headers([("Host", "A.b:1")]), conn, None))
    assert c == up
    assert seen == ["a.b", "a.b"]


def test_init_patched_before_setup_is_not_taken_for_upstreams(switch_off, monkeypatch):
    import functools

    orig = hu.HTTPServerRequest.__init__
    calls = []

    @functools.wraps(orig)
    def init(self, *a, **kw):
        calls.append(1)
        orig(self, *a, **kw)

    sl = hu.RequestStartLine("GET", "/", "HTTP/1.1")
    monkeypatch.setattr(hu.HTTPServerRequest, "__init__", init)
    try:
        _core._web_request_setup(hu)  # as at import, with the patch in place
        c_build(sl, make_headers([("Host", "h")]), Conn(), None)
        assert calls == [1]
    finally:
        monkeypatch.undo()
        _core._web_request_setup(hu)
    c_build(sl, make_headers([("Host", "h")]), Conn(), None)
    assert calls == [1]
