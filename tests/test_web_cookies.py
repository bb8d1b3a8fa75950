"""RequestHandler.set_cookie / clear_cookie / get_cookie in C
(csrc/web/handler_cookie.c, handler_args.c) against upstream's Python.

Each scenario serves the same requests with the ``web`` switch off
(upstream's methods) and on (C), and compares the responses (the
Set-Cookie headers byte for byte), what every call returned or raised
(type and message), the ``_new_cookie`` jar the handler holds afterwards
(its type, each Morsel's key, value, coded value, attributes and
OutputString), the warnings raised, the calls an overriding subclass
received, and the log records.  Expiry dates computed from the clock
(``expires_days``, ``clear_cookie``) are compared after replacing each
with its offset from now in whole hours, checked to within a few seconds.
"""

import datetime
import email.utils
import http.cookies
import re
import time
import warnings

import pytest
import tornado.web

from test_web_handler import compare as _compare_unused  # noqa: F401  (same fixtures)
from test_web_handler import err, serve, set_mode


@pytest.fixture(autouse=True)
def switch_off(clean_switch):
    clean_switch.uninstall()
    yield clean_switch


_DATE_RE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")


def _relative_dates(obj, now):
    """Replace each HTTP date within 10 s of now + k hours (k whole, up to
    400 days either way) by <now+k h>; other dates are left as they are."""
    if isinstance(obj, (bytes, bytearray)):
        return _relative_dates(obj.decode("latin-1"), now).encode("latin-1")
    if isinstance(obj, str):
        def sub(m):
            t = email.utils.parsedate_to_datetime(m.group(0)).timestamp()
            hours = round((t - now) / 3600.0)
            if abs(hours) <= 400 * 24 and abs(t - (now + hours * 3600)) < 10:
                return "<now%+d h>" % hours
            return m.group(0)
        return _DATE_RE.sub(sub, obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_relative_dates(o, now) for o in obj)
    if isinstance(obj, dict):
        return {k: _relative_dates(v, now) for k, v in obj.items()}
    return obj


def compare(switch, make_app, requests):
    got = {}
    for mode in ("upstream", "c"):
        set_mode(switch, mode)
        calls = []
        app = make_app(calls)
        now = time.time()
        results, records = serve(app, requests)
        got[mode] = _relative_dates((results, calls, records), now)
    switch.uninstall()
    up, c = got["upstream"], got["c"]
    assert c[0] == up[0], "responses differ"
    for i, (x, y) in enumerate(zip(c[1], up[1])):
        assert x == y, "call %d differs" % i
    assert c[1] == up[1], "calls differ"
    assert c[2] == up[2], "log records differ"
    return up


def jar(handler):
    """What the handler's _new_cookie holds, as plain data."""
    if not hasattr(handler, "_new_cookie"):
        return ("no jar",)
    j = handler._new_cookie
    out = [type(j).__module__ + "." + type(j).__qualname__]
    for name, m in j.items():
        out.append((name, type(m).__name__, m.key, m.value, m.coded_value, sorted(m.items()),
                    m.OutputString()))
    return tuple(out)


def call(handler, calls, fn, *a, **kw):
    """fn(*a, **kw) recorded: its result or exception, the warnings it
    raised and the jar afterwards."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = err(fn, *a, **kw)
    calls.append((fn.__name__, repr(a), repr(sorted(kw.items())), r,
                  [(x.category.__name__, str(x.message)) for x in w], jar(handler)))


UTC = datetime.timezone.utc
OTHER_TZ = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

# (args, kwargs) of set_cookie, each on a fresh handler (one request each)
SET_CASES = [
    (("a", "b"), {}),
    (("a", b"bytes-value"), {}),
    ((b"bname", "v"), {}),
    (("a", b"\xff\xfe"), {}),
    ((b"\xff", "v"), {}),
    (("a", "caf\u00e9"), {}),
    (("\u00e9", "v"), {}),
    (("a", "with space"), {}),
    (("a", "tab\there"), {}),
    (("a", "nl\nx"), {}),
    (("a", "semi;colon"), {}),
    (("a", "quote\"d"), {}),
    (("a", "comma,x"), {}),
    (("a", "del\x7f"), {}),
    (("a", ""), {}),
    (("a", "x" * 300), {}),
    (("a b", "v"), {}),
    (("a;b", "v"), {}),
    (("a=b", "v"), {}),
    (("a\x7f", "v"), {}),
    (("", "v"), {}),
    (("expires", "v"), {}),
    (("Path", "v"), {}),
    ((None, "v"), {}),
    (("a", None), {}),
    ((5, "v"), {}),
    (("a", 5), {}),
    (("a", "v"), {"domain": "example.com"}),
    (("a", "v"), {"domain": ""}),
    (("a", "v"), {"domain": "bad domain"}),
    (("a", "v"), {"domain": "x;y"}),
    (("a", "v"), {"domain": "x\x7f"}),
    (("a", "v"), {"domain": b"bytes.example"}),
    (("a", "v"), {"domain": 5}),
    (("a", "v"), {"path": None}),
    (("a", "v"), {"path": ""}),
    (("a", "v"), {"path": "/sub/dir"}),
    (("a", "v"), {"path": "/a b"}),
    (("a", "v"), {"path": "/a;b"}),
    (("a", "v"), {"path": b"/bytes"}),
    (("a", "v"), {"expires": 1359312200}),
    (("a", "v"), {"expires": 1359312200.75}),
    (("a", "v"), {"expires": 0}),
    (("a", "v"), {"expires": -5}),
    (("a", "v"), {"expires": time.gmtime(86400 * 365)}),
    (("a", "v"), {"expires": (2020, 2, 29, 23, 59, 59, 0, 0, 0)}),
    (("a", "v"), {"expires": datetime.datetime(2031, 12, 31, 23, 59, 59, 999999)}),
    (("a", "v"), {"expires": datetime.datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)}),
    (("a", "v"), {"expires": datetime.datetime(2024, 3, 1, 1, 0, 0, tzinfo=OTHER_TZ)}),
    (("a", "v"), {"expires": datetime.datetime(1969, 7, 20, 20, 17, 40)}),
    (("a", "v"), {"expires": datetime.datetime(1970, 1, 1)}),
    (("a", "v"), {"expires": datetime.datetime(9999, 12, 31, 23, 59, 59)}),
    (("a", "v"), {"expires": datetime.date(2030, 1, 1)}),
    (("a", "v"), {"expires": "tomorrow"}),
    (("a", "v"), {"expires_days": 1}),
    (("a", "v"), {"expires_days": 30}),
    (("a", "v"), {"expires_days": 0}),
    (("a", "v"), {"expires_days": -2}),
    (("a", "v"), {"expires_days": 1.5}),
    (("a", "v"), {"expires_days": "x"}),
    (("a", "v"), {"expires_days": 3, "expires": 1359312200}),
    (("a", "v"), {"expires_days": 3, "expires": 0}),
    (("a", "v"), {"max_age": 10}),
    (("a", "v"), {"max_age": "10"}),
    (("a", "v"), {"max_age": 10.9}),
    (("a", "v"), {"max_age": 0}),
    (("a", "v"), {"max_age": -1}),
    (("a", "v"), {"max_age": "10; Domain=evil"}),
    (("a", "v"), {"max_age": True}),
    (("a", "v"), {"httponly": True}),
    (("a", "v"), {"httponly": 0}),
    (("a", "v"), {"httponly": "yes"}),
    (("a", "v"), {"secure": True}),
    (("a", "v"), {"secure": 1, "httponly": 1}),
    (("a", "v"), {"samesite": "Lax"}),
    (("a", "v"), {"samesite": "None", "secure": True}),
    (("a", "v"), {"samesite": ""}),
    (("a", "v"), {"samesite": "Lax; x"}),
    (("a", "v"), {"samesite": 5}),
    (("a", "v"), {"comment": "hi"}),
    (("a", "v"), {"Comment": "hi"}),
    (("a", "v"), {"partitioned": True}),
    (("a", "v"), {"version": 1}),
    (("a", "v"), {"bogus": "x"}),
    (("a", "v"), {"comment": "bad;x"}),
    (("a", "v"), {"HttpOnly": True, "samesite": "Strict"}),
    (("a", "v", "d.example", 1359312200, "/p", 4), {}),
    (("a", "v", "d.example", None, "/p", 4), {"max_age": 5, "httponly": True,
                                             "secure": True, "samesite": "Strict"}),
    (("a", "v", None, None, "/", None, 5), {}),
    (("a",), {}),
    ((), {"name": "a", "value": "v"}),
    (("a", "v"), {"name": "dup"}),
    (("a", "v"), {"value": "dup"}),
    (("a", "v", "d"), {"domain": "dup"}),
]


def test_set_cookie_cases(switch_off):
    def make_app(calls):
        class Set(tornado.web.RequestHandler):
            def get(self, i):
                a, kw = SET_CASES[int(i)]
                call(self, calls, self.set_cookie, *a, **kw)
                self.write("ok")

        return tornado.web.Application([(r"/(\d+)", Set)])

    compare(switch_off, make_app,
            [("GET", "/%d" % i, None, None) for i in range(len(SET_CASES))])


def test_several_cookies_one_response(switch_off):
    """Replacing a cookie (del then set), several in one jar, in order; the
    Set-Cookie headers written by flush() and by finish()."""

    def make_app(calls):
        class Many(tornado.web.RequestHandler):
            def get(self, how):
                call(self, calls, self.set_cookie, "a", "1")
                call(self, calls, self.set_cookie, "b", "2", path="/b", httponly=True)
                call(self, calls, self.set_cookie, "a", "3", domain="example.com")
                call(self, calls, self.set_cookie, "c", "x y", samesite="Lax")
                call(self, calls, self.clear_cookie, "b")
                if how == "flush":
                    self.flush()
                    call(self, calls, self.set_cookie, "late", "v")
                self.write("many")

        return tornado.web.Application([(r"/(\w+)", Many)])

    compare(switch_off, make_app,
            [("GET", "/plain", None, None), ("GET", "/flush", None, None),
             ("HEAD", "/plain", None, None)])


CLEAR_CASES = [
    (("a",), {}),
    (("a",), {"path": "/p", "domain": "example.com"}),
    (("a",), {"samesite": "None", "secure": True}),
    (("a",), {"httponly": True}),
    (("a",), {"expires": 5}),
    (("a",), {"max_age": 5}),
    (("a",), {"value": "x"}),
    ((), {"name": "a"}),
    (("a b",), {}),
    (("a",), {"path": "/x;y"}),
    (("a",), {"expires_days": 3}),
    (("a",), {"comment": "c"}),
    (("a",), {"path": "/1", "domain": "d", "secure": 1, "httponly": 1, "samesite": "Lax"}),
    (("a", "extra"), {}),
    ((), {}),
]


def test_clear_cookie_cases(switch_off):
    def make_app(calls):
        class Clear(tornado.web.RequestHandler):
            def get(self, i):
                a, kw = CLEAR_CASES[int(i)]
                call(self, calls, self.clear_cookie, *a, **kw)
                self.write("ok")

        class ClearAll(tornado.web.RequestHandler):
            def get(self):
                call(self, calls, self.clear_all_cookies)
                call(self, calls, self.clear_all_cookies, path="/p")
                self.write("ok")

        return tornado.web.Application([(r"/(\d+)", Clear), (r"/all", ClearAll)])

    reqs = [("GET", "/%d" % i, None, None) for i in range(len(CLEAR_CASES))]
    reqs.append(("GET", "/all", {"Cookie": "x=1; y=2; bad name=3"}, None))
    compare(switch_off, make_app, reqs)


def test_get_cookie_and_signed_cookies(switch_off):
    def make_app(calls):
        class Signed(tornado.web.RequestHandler):
            def get(self):
                c = calls
                c.append(("cookies", sorted((k, m.value) for k, m in self.cookies.items())))
                for name in ("plain", "quoted", "missing", "signed", "signed1", "bad"):
                    c.append((name, err(self.get_cookie, name),
                              err(self.get_cookie, name, "dflt")))
                    c.append((name, err(self.get_signed_cookie, name)))
                c.append(err(self.get_signed_cookie, "signed", max_age_days=0.00001))
                c.append(err(self.get_signed_cookie, "signed", min_version=2))
                c.append(err(self.get_signed_cookie_key_version, "signed"))
                c.append(err(self.get_secure_cookie, "signed"))
                call(self, calls, self.set_signed_cookie, "s1", "value")
                call(self, calls, self.set_signed_cookie, "s2", b"bytes", expires_days=None,
                     httponly=True)
                call(self, calls, self.set_signed_cookie, "s3", "v", version=1)
                call(self, calls, self.set_secure_cookie, "s4", "v", expires_days=2)
                call(self, calls, self.set_signed_cookie, "bad name", "v")
                self.write("signed")

        return tornado.web.Application([(r"/", Signed)], cookie_secret="0123456789abcdef")

    from tornado.web import create_signed_value

    v2 = create_signed_value("0123456789abcdef", "signed", "hello").decode()
    v1 = create_signed_value("0123456789abcdef", "signed1", "old", version=1).decode()
    cookie = 'plain=p; quoted="a\\"b"; signed=%s; signed1=%s; bad=2|1:0|10:1|bad' % (v2, v1)
    up = compare(switch_off, make_app, [("GET", "/", {"Cookie": cookie}, None),
                                        ("GET", "/", None, None)])
    # the signature of a cookie set now carries the time: these differ
    # between the two runs only in what they sign (compared above after
    # the same normalisation, so the responses must have matched anyway)
    assert any("s1=" in str(x) for x in up[0][0])


def test_overrides_are_called(switch_off):
    """clear_cookie and set_signed_cookie call the subclass's set_cookie;
    get_signed_cookie its get_cookie; get_cookie reads self.request.cookies
    (a request subclass's property is honoured)."""

    def make_app(calls):
        class Over(tornado.web.RequestHandler):
            def set_cookie(self, name, value, *a, **kw):
                # the expiry's type and zone (its time is the clock's)
                calls.append(("set_cookie", name, value, a, sorted(
                    (k, (type(v).__name__, v.tzinfo) if k == "expires" else v)
                    for k, v in kw.items())))
                return super().set_cookie(name, value, *a, **kw)

            def get_cookie(self, name, default=None):
                calls.append(("get_cookie", name, default))
                return super().get_cookie(name, default)

            def get(self):
                call(self, calls, self.clear_cookie, "x", path="/p")
                call(self, calls, self.set_signed_cookie, "s", "v")
                calls.append(err(self.get_signed_cookie, "s"))
                calls.append(err(self.get_cookie, "c"))
                self.write("o")

        class Shadow(tornado.web.RequestHandler):
            def get(self):
                self.set_cookie = lambda *a, **kw: calls.append(
                    ("instance", a, sorted(kw), type(kw["expires"]).__name__))
                call(self, calls, self.clear_cookie, "y")
                self.write("s")

        return tornado.web.Application([(r"/", Over), (r"/shadow", Shadow)],
                                       cookie_secret="k")

    up = compare(switch_off, make_app, [("GET", "/", {"Cookie": "c=1; s=zz"}, None),
                                        ("GET", "/shadow", None, None)])
    names = [c[0] for c in up[1] if isinstance(c, tuple) and c and isinstance(c[0], str)]
    assert "set_cookie" in names and "get_cookie" in names and "instance" in names


def test_c_path_is_taken(switch_off):
    """Under the switch the methods are the C forwarders."""
    from test_web_handler import _forwards_to_c

    set_mode(switch_off, "c")
    try:
        for name in ("set_cookie", "clear_cookie", "get_cookie"):
            assert _forwards_to_c(tornado.web.RequestHandler.__dict__[name]), name
    finally:
        switch_off.uninstall()
    for name in ("set_cookie", "clear_cookie", "get_cookie"):
        assert not _forwards_to_c(tornado.web.RequestHandler.__dict__[name]), name
    assert http.cookies.SimpleCookie  # the jar's type, checked in jar()
