"""A realistic Tornado application for tests/test_web_app_differential.py.

It uses tornado.web the way applications do (templates with ui_modules and
ui_methods, xsrf, signed cookies, @authenticated, static files, gzip, streamed
uploads, custom write_error, async and @gen.coroutine handlers, ...) and is
run unmodified twice: ``python realistic_app.py STATIC LOG`` (upstream) and
``python -m tornado_c realistic_app.py STATIC LOG``.  It listens on two
ephemeral ports (the main application and a second one with a custom
``log_function`` and ``default_handler_class``), prints ``READY port1 port2``
and writes every log record, one JSON object a line, to LOG.
"""

import asyncio
import json
import logging
import os
import sys
import traceback

import tornado.locale
import tornado.template
import tornado.web
from tornado import gen
from tornado.web import (Finish, HTTPError, RedirectHandler, authenticated,
                         stream_request_body)

COOKIE_SECRET = "differential-test-secret"

TEMPLATES = {
    "base.html": """<!DOCTYPE html>
<html><head><title>{% block title %}App{% end %}</title></head>
<body>
<nav>{% if current_user %}user: {{ current_user }} <a href="{{ reverse_url('logout') }}">out</a>
{% else %}<a href="{{ reverse_url('login') }}">login</a>{% end %}</nav>
{% block body %}{% end %}
</body></html>
""",
    "index.html": """{% extends "base.html" %}
{% block title %}Home &amp; {{ title }}{% end %}
{% block body %}
<h1>{{ title }}</h1>
<ul>
{% for i, item in enumerate(items) %}  {% module Entry(item, i) %}
{% end %}</ul>
<p>{{ shout(title) }} {{ plural(len(items), "item") }}</p>
<p>{% raw raw_html %} / {{ raw_html }} / {{ locale.code }}</p>
<img src="{{ static_url('logo.txt') }}">
<form method="post" action="/login">{% module xsrf_form_html() %}</form>
{% set total = sum(len(it) for it in items) %}<p>total {{ total }}</p>
{% try %}{{ 1 // zero }}{% except %}div by zero{% end %}
{% end %}
""",
    "entry.html": """<li class="{{ 'odd' if index % 2 else 'even' }}">{{ index }}: {{ item }}</li>""",
    "login.html": """{% extends "base.html" %}
{% block body %}<form method="post">{% module xsrf_form_html() %}
<input name="name"><input type="hidden" name="next" value="{{ next }}"></form>{% end %}
""",
    "mod.html": """{% module Template("entry.html", item="via module", index=7) %}|{{ handler.xsrf_token[:2] }}""",
    "error.html": """<html><body><h1>{{ status }}: {{ reason }}</h1>
{% if kind %}<p>{{ kind }}</p>{% end %}</body></html>""",
}


class Entry(tornado.web.UIModule):
    def render(self, item, index):
        return self.render_string("entry.html", item=item, index=index)

    def embedded_css(self):
        return "li.odd { color: gray }"

    def embedded_javascript(self):
        return "var entries = true;"

    def css_files(self):
        return ["entry.css"]


def shout(handler, text):
    return text.upper() + "!"


def plural(handler, n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


app_log = logging.getLogger("app")


class BaseHandler(tornado.web.RequestHandler):
    def set_default_headers(self):
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("X-App", "realistic")

    def get_current_user(self):
        user = self.get_signed_cookie("user")
        return user.decode("utf-8") if user else None

    def get_user_locale(self):
        lang = self.get_query_argument("lang", None)
        if lang:
            return tornado.locale.get(lang)
        return None

    def write_error(self, status_code, **kwargs):
        kind = None
        if "exc_info" in kwargs:
            kind = kwargs["exc_info"][0].__name__
        if self.request.headers.get("Accept", "").startswith("application/json"):
            self.finish({"status": status_code, "reason": self._reason, "kind": kind})
        else:
            self.render("error.html", status=status_code, reason=self._reason, kind=kind)

    def on_finish(self):
        app_log.info("on_finish %s %s %d", self.request.method, self.request.uri,
                     self.get_status())


class MainHandler(BaseHandler):
    def get(self):
        items = self.get_arguments("item") or ["apple", "<pear>", "caf\u00e9"]
        self.render("index.html", title=self.get_argument("title", "Fruit & Co"),
                    items=items, raw_html="<b>bold</b>", zero=0)


class LoginHandler(BaseHandler):
    def get(self):
        self.render("login.html", next=self.get_argument("next", "/"))

    def post(self):
        name = self.get_body_argument("name")
        self.set_signed_cookie("user", name, expires_days=None)
        self.redirect(self.get_argument("next", "/"))


class LogoutHandler(BaseHandler):
    def get(self):
        self.clear_cookie("user")
        self.redirect(self.reverse_url("main"))


class ProfileHandler(BaseHandler):
    @authenticated
    def get(self):
        self.write({"user": self.current_user, "cookie": self.get_cookie("theme", "none")})

    @authenticated
    def post(self):
        self.write("posted")


class CookieHandler(BaseHandler):
    def get(self):
        self.set_cookie("theme", self.get_argument("theme", "dark"), path="/", httponly=True,
                        samesite="Lax")
        self.set_cookie("session", "abc", domain="example.com", expires_days=2, secure=True)
        self.set_signed_cookie("prefs", json.dumps({"a": 1}))
        signed = self.get_signed_cookie("prefs")
        self.clear_cookie("old")
        self.write({"signed": signed.decode() if signed else None,
                    "plain": self.get_cookie("theme"),
                    "cookies": sorted(self.cookies.keys())})


class ErrorHandler(BaseHandler):
    def get(self, code):
        code = int(code)
        if code == 418:
            raise HTTPError(418, "teapot %s", "brewing", reason="I Am A Teapot")
        if code == 503:
            raise HTTPError(503)
        if code == 599:
            self.send_error(599)
            return
        raise HTTPError(code, "plain %d", code)


class CrashHandler(BaseHandler):
    def get(self):
        self.write("partial")
        raise ValueError("boom %d" % 42)

    def post(self):
        return {}["missing"]


class CrashAfterFlushHandler(BaseHandler):
    async def get(self):
        self.write("first part\n")
        await self.flush()
        raise RuntimeError("after flush")


class FinishHandler(BaseHandler):
    def get(self):
        if self.get_argument("empty", None):
            self.set_status(201)
            raise Finish()
        raise Finish("finished early")


class AsyncPrepareHandler(BaseHandler):
    async def prepare(self):
        await asyncio.sleep(0)
        self.prepared = "yes"
        if self.get_argument("deny", None):
            raise HTTPError(403, reason="Denied In Prepare")

    async def get(self):
        await asyncio.sleep(0.001)
        self.write("prepared=%s" % self.prepared)


@gen.coroutine
def _part(text):
    yield gen.sleep(0)
    return text


class GenHandler(BaseHandler):
    @gen.coroutine
    def get(self):
        yield gen.sleep(0)
        a, b = yield gen.multi([_part("gen "), _part("coroutine")])
        self.write(a + b)

    @gen.coroutine
    def post(self):
        yield gen.moment
        raise HTTPError(409, "conflict from gen")


class ItemHandler(BaseHandler):
    def get(self, name, ext=None):
        self.write({"name": name, "ext": ext, "len": len(name),
                    "url": self.reverse_url("item_ext" if ext else "item", name,
                                            *([ext] if ext else []))})


class ArgsHandler(BaseHandler):
    def get(self):
        self.write({
            "a": self.get_argument("a", None),
            "all_a": self.get_arguments("a"),
            "q": self.get_query_arguments("a"),
            "stripped": self.get_argument("s", "dflt"),
            "unstripped": self.get_argument("s", "dflt", strip=False),
            "keys": sorted(self.request.arguments),
            "required": self.get_argument("need"),
        })

    def post(self):
        files = {k: [(f.filename, f.content_type, len(f.body), f.body[:20].decode("latin-1"))
                     for f in v] for k, v in self.request.files.items()}
        self.write({
            "body": {k: self.get_body_arguments(k) for k in sorted(self.request.body_arguments)},
            "query": {k: self.get_query_arguments(k)
                      for k in sorted(self.request.query_arguments)},
            "a": self.get_argument("a", None),
            "files": files,
            "ctype": self.request.headers.get("Content-Type", "").split(";")[0],
        })


class JsonHandler(BaseHandler):
    def post(self):
        try:
            data = json.loads(self.request.body)
        except ValueError:
            raise HTTPError(400, reason="Bad JSON")
        self.write({"echo": data, "keys": sorted(data) if isinstance(data, dict) else None})

    def put(self):
        self.write([1, 2])  # lists are refused by write()


class VerbsHandler(BaseHandler):
    def get(self):
        self.set_header("X-Verb", "get")
        self.write("verbs body")

    def head(self):
        self.set_header("X-Verb", "head")
        self.set_header("Content-Length", "10")

    def options(self):
        self.set_header("Allow", "GET, HEAD, OPTIONS, DELETE")
        self.set_status(204)

    def delete(self):
        self.set_status(202, "Deleted Later")
        self.finish()


class ChunkedHandler(BaseHandler):
    async def get(self):
        n = int(self.get_argument("n", "3"))
        for i in range(n):
            self.write("chunk %d %s\n" % (i, "x" * (i * 50)))
            await self.flush()
        self.write("done\n")


class StatusHandler(BaseHandler):
    def get(self):
        code = int(self.get_argument("code", "200"))
        reason = self.get_argument("reason", None)
        self.set_status(code, reason)
        self.write("status %d" % code)


class HeadersHandler(BaseHandler):
    def get(self):
        self.add_header("X-Multi", "one")
        self.add_header("X-Multi", "two")
        self.set_header("X-Number", 42)
        self.set_header("X-Remove", "gone")
        self.clear_header("X-Remove")
        self.clear_header("X-App")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        bad = self.get_argument("bad", None)
        if bad == "newline":
            self.set_header("X-Bad", "a\r\nInjected: yes")
        self.write("headers")


class EtagHandler(BaseHandler):
    def get(self):
        self.write("content that has an etag " * 3)


class NoEtagHandler(BaseHandler):
    def compute_etag(self):
        return None

    def get(self):
        self.write("no etag here")


class RedirectingHandler(BaseHandler):
    def get(self):
        kind = self.get_argument("kind", "temp")
        if kind == "perm":
            self.redirect("/target", permanent=True)
        elif kind == "303":
            self.redirect("/target?x=1", status=303)
        elif kind == "late":
            self.write("body first")
            self.flush()
            self.redirect("/target")
        else:
            self.redirect("/target")


@stream_request_body
class StreamHandler(BaseHandler):
    def prepare(self):
        self.received = 0
        self.digest = 0

    def data_received(self, chunk):
        self.received += len(chunk)
        for b in chunk[:64]:
            self.digest = (self.digest * 31 + b) % 1000003

    def put(self):
        self.write({"received": self.received})

    post = put


class SlowHandler(BaseHandler):
    async def get(self):
        await asyncio.sleep(0)
        await gen.sleep(0)
        self.write("slow ok")


class UnicodeHandler(BaseHandler):
    def get(self):
        self.write("\u00e9t\u00e9 \u2603 \U0001F600")


class ClearHandler(BaseHandler):
    def get(self):
        self.write("discarded")
        self.set_header("X-Temp", "1")
        self.clear()
        self.write("after clear")


class RequestProbeHandler(BaseHandler):
    """The request as the handler sees it."""

    def check_xsrf_cookie(self):
        pass  # a probe of every method

    def _probe(self):
        r = self.request
        self.write({
            "method": r.method, "uri": r.uri, "path": r.path, "query": r.query,
            "version": r.version, "host": r.host, "host_name": r.host_name,
            "protocol": r.protocol, "full_url": r.full_url(), "remote_ip": r.remote_ip,
            "headers": [list(kv) for kv in r.headers.get_all()],
            "cookie_names": sorted(r.cookies.keys()),
            "cookie_values": {k: v.value for k, v in sorted(r.cookies.items())},
            "arguments": {k: [x.decode("latin-1") for x in v]
                          for k, v in sorted(r.arguments.items())},
            "query_arguments": sorted(r.query_arguments),
            "body_arguments": sorted(r.body_arguments),
            "body": r.body.decode("latin-1"),
            "time_ok": r.request_time() >= 0,
            "locale": self.get_browser_locale().code,
            "xsrf_header": self.request.headers.get("X-Xsrftoken"),
            "summary": self._request_summary(),
            "status": self.get_status(),
        })

    get = post = put = delete = patch = _probe


class MiscHandler(BaseHandler):
    """Edge behaviours of the RequestHandler methods, one per ``case``."""

    def compute_etag(self):
        if self.get_argument("case") == "custom-etag":
            return '"custom"'
        return super().compute_etag()

    def get(self):
        case = self.get_argument("case")
        if case == "write-after-finish":
            self.finish("done")
            self.write("more")
        elif case == "finish-twice":
            self.finish("once")
            self.finish("twice")
        elif case == "dict-twice":
            self.write({"a": 1})
            self.write({"b": 2})
        elif case == "finish-dict":
            self.finish({"finished": True})
        elif case == "finish-bytes":
            self.finish(b"\x00\xffbytes")
        elif case == "bytes-header":
            self.set_header("X-Bytes", b"raw-bytes")
            self.set_header("X-Date", __import__("datetime").datetime(2024, 2, 3, 4, 5, 6))
            self.set_header("X-Latin", "caf\u00e9")
            self.write("ok")
        elif case == "unicode-header":
            self.set_header("X-Snow", "\u2603")
            self.write("ok")
        elif case == "ctype":
            self.set_header("Content-Type", "text/csv")
            self.write({"ctype": "kept?"})
        elif case == "cookies":
            import datetime
            self.set_cookie("a", "1", max_age=60)
            self.set_cookie("b", "2", expires=datetime.datetime(2030, 1, 2, 3, 4, 5))
            self.set_cookie("c", "x y" if self.get_argument("bad", None) else "3",
                            samesite="None", secure=True)
            self.set_cookie("d", "q\"uote")
            self.clear_all_cookies()
            self.write("cookies")
        elif case == "bad-cookie-name":
            self.set_cookie("na me", "v")
        elif case == "custom-etag":
            self.write("body with custom etag")
        elif case == "redirect-unicode":
            self.redirect("/caf\u00e9?x=\u2603")
        elif case == "redirect-abs":
            self.redirect("http://example.com/elsewhere", status=307)
        elif case == "redirect-bad-status":
            self.redirect("/x", status=200)
        elif case == "bad-body-arg":
            self.write(self.get_body_argument("a", "none"))
        elif case == "send-error-kwargs":
            self.send_error(402, reason="Pay Up")
        elif case == "error-in-write-error":
            self.write_error = self._broken_write_error
            raise HTTPError(410)
        elif case == "render-string":
            self.write(self.render_string("entry.html", item="<x>", index=3))
            self.write(self.static_url("logo.txt", include_host=True))
        elif case == "current-user":
            self.write({"user": self.current_user})
        elif case == "locale":
            self.write(self.locale.code + " " + self.get_browser_locale().code)
        elif case == "odd-reasons":
            which = self.get_argument("which")
            self.set_status(200, {"snow": "Snow \u2603", "empty": "", "tab": "A\tB",
                                  "latin": "Caf\u00e9"}[which])
            self.write(self._reason)
        elif case == "template-module":
            self.write(self.render_string("mod.html"))
        elif case == "set-status-str":
            self.set_status(418)
            self.write(self._reason)
        else:
            raise HTTPError(400, "unknown case %r", case)

    def _broken_write_error(self, status_code, **kwargs):
        raise RuntimeError("write_error broke")

    def post(self):
        case = self.get_argument("case")
        if case == "body-args":
            self.write({k: self.get_body_arguments(k, strip=False)
                        for k in sorted(self.request.body_arguments)})
        else:
            raise HTTPError(400)


class ConfiguredHandler(BaseHandler):
    SUPPORTED_METHODS = BaseHandler.SUPPORTED_METHODS + ("PROPFIND",)

    def initialize(self, greeting, size=1):
        self.greeting = greeting
        self.size = size

    def prepare(self):
        if self.get_argument("fail", None) == "prepare":
            raise KeyError("prepare failed")

    def get(self):
        if self.get_argument("fail", None) == "big":
            self.write(("%s " % self.greeting) * 20000)
            return
        self.write("%s x%d" % (self.greeting, self.size))

    def propfind(self):
        self.set_status(207, "Multi-Status")
        self.write("<props/>")

    def on_finish(self):
        super().on_finish()
        if self.get_argument("fail", None) == "on_finish":
            raise RuntimeError("on_finish failed")


# -- second application: custom log_function and default_handler_class, an
# output transform and find_handler overridden in an Application subclass

class ShoutTransform(tornado.web.OutputTransform):
    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        headers["X-Transformed"] = "yes"
        if "Content-Length" in headers:
            headers["Content-Length"] = str(len(chunk))
        return status_code, headers, chunk.upper()

    def transform_chunk(self, chunk, finishing):
        return chunk.upper()


class SecondApplication(tornado.web.Application):
    def find_handler(self, request, **kwargs):
        if request.path.startswith("/special/"):
            return self.get_handler_delegate(request, PingHandler,
                                             path_args=[request.path[9:].encode()])
        return super().find_handler(request, **kwargs)

class NotFoundHandler(tornado.web.RequestHandler):
    def prepare(self):
        raise HTTPError(404, reason="Nothing Here")

    def write_error(self, status_code, **kwargs):
        self.write("custom %d %s" % (status_code, self._reason))


class PingHandler(tornado.web.RequestHandler):
    def get(self, *args):
        self.write("pong %r" % (args,))


def custom_log(handler):
    logging.getLogger("app.custom").info(
        "custom-log %s %s %d %s", handler.request.method, handler.request.uri,
        handler.get_status(), type(handler).__name__)


def make_apps(static_path):
    main = tornado.web.Application([
        tornado.web.url(r"/", MainHandler, name="main"),
        tornado.web.url(r"/login", LoginHandler, name="login"),
        tornado.web.url(r"/logout", LogoutHandler, name="logout"),
        (r"/profile", ProfileHandler),
        (r"/cookies", CookieHandler),
        (r"/error/(\d+)", ErrorHandler),
        (r"/crash", CrashHandler),
        (r"/crash-after-flush", CrashAfterFlushHandler),
        (r"/finish", FinishHandler),
        (r"/async-prepare", AsyncPrepareHandler),
        (r"/gen", GenHandler),
        tornado.web.url(r"/items/([^/.]+)", ItemHandler, name="item"),
        tornado.web.url(r"/items/([^/.]+)\.(\w+)", ItemHandler, name="item_ext"),
        (r"/args", ArgsHandler),
        (r"/json", JsonHandler),
        (r"/verbs", VerbsHandler),
        (r"/chunked", ChunkedHandler),
        (r"/status", StatusHandler),
        (r"/headers", HeadersHandler),
        (r"/etag", EtagHandler),
        (r"/noetag", NoEtagHandler),
        (r"/redirect", RedirectingHandler),
        (r"/old/(.*)", RedirectHandler, {"url": "/new/{0}"}),
        (r"/perm", RedirectHandler, {"url": "/target", "permanent": True}),
        (r"/stream", StreamHandler),
        (r"/slow", SlowHandler),
        (r"/unicode", UnicodeHandler),
        (r"/clear", ClearHandler),
        (r"/request", RequestProbeHandler),
        (r"/misc", MiscHandler),
        (r"/configured", ConfiguredHandler, {"greeting": "hi", "size": 3}),
        (r"/gone", tornado.web.ErrorHandler, {"status_code": 410}),
        (r"/files/(.*)", tornado.web.StaticFileHandler, {"path": static_path}),
    ],
        template_loader=tornado.template.DictLoader(TEMPLATES),
        ui_modules={"Entry": Entry},
        ui_methods={"shout": shout, "plural": plural},
        static_path=static_path,
        cookie_secret=COOKIE_SECRET,
        xsrf_cookies=True,
        login_url="/login",
        compress_response=True,
    )
    second = SecondApplication(
        [(r"/ping", PingHandler),
         (r"/gone", tornado.web.ErrorHandler, {"status_code": 410})],
        transforms=[ShoutTransform],
        log_function=custom_log,
        default_handler_class=NotFoundHandler,
    )
    return main, second


class JsonLines(logging.Handler):
    """Every record, as JSON, one a line (flushed: the test reads the file)."""

    def __init__(self, path):
        super().__init__()
        self.out = open(path, "w", encoding="utf-8")

    def emit(self, record):
        exc = None
        if record.exc_info and record.exc_info[0] is not None:
            etype, evalue, tb = record.exc_info
            frames = traceback.extract_tb(tb)
            exc = {"type": etype.__name__, "value": str(evalue),
                   "frames": [[os.path.basename(f.filename), f.name, f.lineno]
                              for f in frames]}
        self.out.write(json.dumps({
            "name": record.name,
            "level": record.levelname,
            "msg": str(record.msg),
            "args": [repr(a) for a in (record.args or ())]
            if isinstance(record.args, tuple) else repr(record.args),
            "message": record.getMessage(),
            "file": os.path.basename(record.pathname),
            "func": record.funcName,
            "line": record.lineno,
            "exc": exc,
        }, sort_keys=True) + "\n")
        self.out.flush()


async def main(static_path, log_path):
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(JsonLines(log_path))
    main_app, second = make_apps(static_path)
    s1 = main_app.listen(0, address="127.0.0.1")
    s2 = second.listen(0, address="127.0.0.1")
    ports = [next(iter(s._sockets.values())).getsockname()[1] for s in (s1, s2)]
    print("READY %d %d" % tuple(ports), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
