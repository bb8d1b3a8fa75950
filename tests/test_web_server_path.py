"""The C server's way into tornado.web with the `web` switch on and off.

With `web` on, upstream's HTTPServer.start_request runs in C for the C HTTP
server (csrc/web/routing.c: tc_web_server_start_request), the routing
delegate runs _HandlerDelegate.finish in C, the handler is made without
type.__call__'s Python frames, and the access log asks logging.Logger's
cache directly.  Each scenario serves the same requests over real sockets
(tornado_c's loop and HTTP server in both runs) with `web` off and on, and
compares the responses, the calls overridden hooks saw and the access log
records.
"""

import asyncio
import logging
import socket
from unittest import mock

import pytest

from conftest import free_port
from test_web_routing import LogCapture

CALLS = []


def _complete(resp):
    """True once resp holds a whole response with a Content-Length body."""
    head, sep, body = resp.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _request(port, raw):
    # The client half-closes only once the response is complete (or after
    # 2 s without one: a handler that sends none).  Closing right after the
    # request would race the server's handler against the EOF, which
    # upstream's own server loses too under some timings.
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(raw)
        s.settimeout(2)
        out = b""
        try:
            while not _complete(out):
                d = s.recv(65536)
                if not d:
                    return out
                out += d
        except socket.timeout:
            pass
        s.settimeout(None)
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    finally:
        s.close()


def _normalise(resp):
    lines = []
    for line in resp.split(b"\r\n"):
        if line.startswith(b"Date: "):
            line = b"Date: -"
        lines.append(line)
    return b"\r\n".join(lines)


def serve(switch, web, make_server, requests, log_level=logging.INFO):
    """Start the server make_server(app_module) gives on a free port, send
    each raw request on its own connection, return (responses, CALLS, access
    log records)."""
    switch.uninstall()
    switch.install(loop=True, http=True, web=web, websocket=False)
    import tornado_c.loop

    CALLS.clear()
    cap = LogCapture()
    access = logging.getLogger("tornado.access")
    old_level = access.level
    access.setLevel(log_level)
    access.addHandler(cap)
    loop = tornado_c.loop.EventLoop()
    try:
        port = free_port()

        async def main():
            server = make_server()
            server.listen(port, address="127.0.0.1")
            out = []
            for raw in requests:
                out.append(_normalise(await loop.run_in_executor(None, _request, port, raw)))
            server.stop()
            await server.close_all_connections()
            return out

        responses = loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
        access.removeHandler(cap)
        access.setLevel(old_level)
        switch.uninstall()
    records = [(n, lvl, m.rsplit(" ", 1)[0]) for n, lvl, m in cap.records]  # no timing
    return responses, list(CALLS), records


def both(switch, make_server, requests, **kw):
    off = serve(switch, False, make_server, requests, **kw)
    on = serve(switch, True, make_server, requests, **kw)
    assert on == off
    return on


GET = b"GET /h?x=1 HTTP/1.1\r\nHost: a.example\r\nX-Real-Ip: 10.9.8.7\r\n\r\n"
POST = (b"POST /h HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/x-www-form-urlencoded"
        b"\r\nContent-Length: 7\r\n\r\nx=2&y=3")


def _app(**settings):
    import tornado.web

    class H(tornado.web.RequestHandler):
        def get(self):
            self.write({"ip": self.request.remote_ip, "x": self.get_argument("x"),
                        "ui": sorted(self.ui)})

        def post(self):
            self.write({"body": self.request.body.decode(), "y": self.get_argument("y")})

    return tornado.web.Application([(r"/h", H)], **settings)


def test_plain_and_xheaders(clean_switch):
    from tornado.httpserver import HTTPServer

    for xh in (False, True):
        resp, _calls, log = both(clean_switch, lambda: HTTPServer(_app(), xheaders=xh),
                                 [GET, POST, b"GET /missing HTTP/1.1\r\nHost: b\r\n\r\n"])
        assert (b'"ip": "10.9.8.7"' in resp[0]) == xh
        assert b'"body": "x=2&y=3"' in resp[1]
        assert resp[2].startswith(b"HTTP/1.1 404")
        assert [r[1] for r in log] == ["INFO", "INFO", "WARNING"]


def test_ui_methods_and_disabled_or_quiet_access_log(clean_switch):
    from tornado.httpserver import HTTPServer

    def shout(handler, s):
        return s.upper()

    resp, _c, log = both(clean_switch, lambda: HTTPServer(_app(ui_methods={"shout": shout})),
                         [GET])
    assert b'"shout"' in resp[0]
    _r, _c, log = both(clean_switch, lambda: HTTPServer(_app()), [GET], log_level=logging.WARNING)
    assert log == []
    access = logging.getLogger("tornado.access")
    with mock.patch.object(access, "disabled", True):
        _r, _c, log = both(clean_switch, lambda: HTTPServer(_app()), [GET])
    assert log == []


def test_overridden_start_request_and_callable_app(clean_switch):
    from tornado.httpserver import HTTPServer

    class Mine(HTTPServer):
        def start_request(self, server_conn, request_conn):
            CALLS.append(("start_request", type(self).__name__))
            return super().start_request(server_conn, request_conn)

    both(clean_switch, lambda: Mine(_app()), [GET])

    def callback(request):
        CALLS.append(("callback", request.method, request.uri))
        request.connection.finish()

    _r, calls, _l = both(clean_switch, lambda: HTTPServer(callback), [GET])
    assert calls == [("callback", "GET", "/h?x=1")]

    class MyRouterApp:
        pass

    import tornado.routing
    import tornado.web

    class Logged(tornado.routing.Router):
        def __init__(self, app):
            self.app = app

        def find_handler(self, request, **kw):
            CALLS.append(("find_handler", request.path))
            return self.app.get_handler_delegate(request, tornado.web.ErrorHandler,
                                                 {"status_code": 418})

        def start_request(self, server_conn, request_conn):
            CALLS.append(("router.start_request",))
            return super().start_request(server_conn, request_conn)

    resp, calls, _l = both(clean_switch, lambda: HTTPServer(Logged(_app())), [GET])
    assert calls == [("router.start_request",), ("find_handler", "/h")]
    assert resp[0].startswith(b"HTTP/1.1 418")


def test_patched_delegate_finish_handler_new_and_init(clean_switch):
    import tornado.web
    from tornado.httpserver import HTTPServer

    orig_finish = tornado.web._HandlerDelegate.finish

    def finish(self):
        CALLS.append(("finish", len(self.chunks)))
        return orig_finish(self)

    class New(tornado.web.RequestHandler):
        def __new__(cls, *a, **kw):
            CALLS.append(("__new__", cls.__name__, len(a)))
            return super().__new__(cls)

        def __init__(self, application, request, **kw):
            CALLS.append(("__init__", sorted(kw)))
            super().__init__(application, request, **kw)

        def initialize(self, **kw):
            CALLS.append(("initialize", kw))

        def get(self):
            self.write("new")

    def make():
        return HTTPServer(tornado.web.Application([(r"/h", New, {"k": 1})]))

    with mock.patch.object(tornado.web._HandlerDelegate, "finish", finish):
        resp, calls, _l = both(clean_switch, make, [GET, POST])
    assert calls[:4] == [("finish", 0), ("__new__", "New", 2), ("__init__", ["k"]),
                         ("initialize", {"k": 1})]
    assert resp[0].endswith(b"new")
    assert resp[1].startswith(b"HTTP/1.1 405")


def test_task_factory_takes_the_task_path(clean_switch):
    """A loop with a task factory: upstream's _execute in a Task (the
    factory sees it) both ways."""
    import tornado.web
    from tornado.httpserver import HTTPServer

    class H(tornado.web.RequestHandler):
        def get(self):
            self.write("t")

    def make():
        loop = asyncio.get_running_loop()

        def factory(lp, coro, **kw):
            CALLS.append(("task", getattr(coro, "__qualname__", "?")))
            return asyncio.Task(coro, loop=lp, **kw)

        loop.set_task_factory(factory)
        return HTTPServer(tornado.web.Application([(r"/h", H)]))

    _r, calls, _l = both(clean_switch, make, [GET])
    assert ("task", "RequestHandler._execute") in calls


def test_the_c_path_runs_no_python_of_these_methods(clean_switch):
    """With `web` on, a plain app's request runs no Python frame of
    HTTPServer.start_request, Router.start_request's forwarder,
    _HandlerDelegate.finish, RequestHandler.__init__'s forwarder,
    _UIModuleNamespace.__init__, Logger.isEnabledFor (access log quiet) or
    get_task_factory; with it off the first ones run."""
    import sys

    from tornado.httpserver import HTTPServer

    watched = {"HTTPServer.start_request", "Router.start_request", "_HandlerDelegate.finish",
               "RequestHandler.__init__", "_UIModuleNamespace.__init__",
               "Logger.isEnabledFor", "BaseEventLoop.get_task_factory"}

    def run(web):
        seen = []

        def prof(frame, event, arg):
            if event == "call":
                q = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
                if q in watched:
                    seen.append(q)

        def make():
            sys.setprofile(prof)
            return HTTPServer(_app())

        try:
            serve(clean_switch, web, make, [GET] * 3, log_level=logging.WARNING)
        finally:
            sys.setprofile(None)
        return seen

    if sys.version_info < (3, 11):
        pytest.skip("co_qualname")
    off = run(False)
    for q in ("HTTPServer.start_request", "_HandlerDelegate.finish",
              "_UIModuleNamespace.__init__", "Logger.isEnabledFor"):
        assert off.count(q) == 3, q
    # the logger's cache, emptied by setLevel, is filled by the one call
    assert run(True) == ["Logger.isEnabledFor"]
