"""AsyncHTTPClient.fetch and SimpleAsyncHTTPClient.fetch_impl under the
switch (tornado_c._client_entry), against upstream's.

fetch() of a URL string without keyword arguments makes its HTTPRequest
from a copy of the attributes upstream's __init__ gives one; a fetch that
can start at once goes straight to its connection, without upstream's round
trip through ``queue`` and ``waiting`` and without the two
``_RequestProxy.__getattr__`` calls of its asserts.  Checked here: the
request's attributes (names, order, values) and the response for several
fetches, a closed client, a failed callback's log line; that the short
paths are taken for a plain fetch and not when what they stand for is
replaced; that what a connection sees of the client while it is made, a
fetch queued from inside it (and the debug lines both log), a failed
assert and ``max_clients`` queueing are upstream's.
"""

import asyncio
import logging
import os

import pytest

from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

pytest.importorskip("tornado_c._core")

from test_http_client_fetch import _serve, _switched_run, _upstream_run  # noqa: E402


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        if "max_clients" in record.getMessage():
            self.records.append((record.name, record.levelname, record.getMessage(),
                                 os.path.basename(record.pathname), record.lineno,
                                 record.funcName))


def _portless(value, port):
    """`value` with the server's port (which differs from run to run) in
    its strings replaced by "PORT"."""
    if isinstance(value, str):
        return value.replace(str(port), "PORT")
    if isinstance(value, (list, tuple)):
        return type(value)(_portless(v, port) for v in value)
    return value


async def _scenarios():
    """What the fetches of each scenario give, and what the client looked
    like from inside the connections they made."""
    server, port = await _serve()
    url = "http://127.0.0.1:%d/plain" % port
    out = {}
    cap = _Records()
    log = logging.getLogger("tornado.general")
    level = log.level
    log.addHandler(cap)
    log.setLevel(logging.DEBUG)
    try:
        # the request a fetch made, attribute by attribute in __dict__ order
        # (the start time: a float; the headers: their items), and the
        # response, for a URL string alone, with options, and an HTTPRequest
        client = SimpleAsyncHTTPClient(force_instance=True)
        seen_headers = []
        try:
            for name, args, kw in (("url", (url,), {}), ("url-query", (url + "?a=1&b",), {}),
                                   ("options", (url,), dict(method="GET", headers={"X-A": "1"},
                                                            request_timeout=9)),
                                   ("object", (HTTPRequest(url, user_agent="u"),), {}),
                                   ("raise_error", (url[:-len("plain")] + "nope",),
                                    dict(raise_error=False))):
                try:
                    r = await client.fetch(*args, **kw)
                except Exception as e:
                    out["request-" + name] = ("raised", type(e).__name__, str(e))
                    continue
                attrs = []
                for k, v in vars(r.request).items():
                    if k == "start_time":
                        v = type(v).__name__
                    elif k == "_headers":
                        v = (type(v).__name__, sorted(v.get_all()))
                    attrs.append((k, v))
                # the response's attributes, in order (values that differ by
                # run: their type), made in C for a 2xx, by the class otherwise
                resp = [(k, v if k in ("code", "reason", "_body", "time_info",
                                       "_error_is_response_code") else
                         _portless(v, port) if k == "effective_url" else
                         type(v).__name__) for k, v in vars(r).items()]
                out["request-" + name] = (_portless(attrs, port), r.code, r.body,
                                          type(r.request).__name__,
                                          any(r.request.headers is h for h in seen_headers),
                                          resp, r.request is args[0] or None, repr(r.error))
                seen_headers.append(r.request.headers)
        finally:
            client.close()
        # a closed client
        try:
            client.fetch(url)
            out["closed"] = "no error"
        except RuntimeError as e:
            out["closed"] = str(e)
        # the closure the IOLoop calls with the response, as its log shows it
        client = SimpleAsyncHTTPClient(force_instance=True)
        try:
            fut = client.fetch(url)
            fut.cancel()  # future_set_result_unless_cancelled: nothing to do
            names = []
            orig_fetch_impl = client.fetch_impl

            def spy(request, callback):
                names.append(callback.__qualname__)
                return orig_fetch_impl(request, callback)

            client.fetch_impl = spy
            await client.fetch(url)
            out["callback-name"] = names
        finally:
            client.close()
        # the client as a connection sees it while it is made; a fetch made
        # from there with max_clients reached is queued (both log)
        seen = []
        inner = []

        class Nesting(SimpleAsyncHTTPClient):
            def _connection_class(self):
                base = super()._connection_class()
                client = self

                class Conn(base):
                    def __init__(self, *args):
                        seen.append((len(client.queue), len(client.waiting),
                                     len(client.active), callable(args[2])))
                        if not inner:
                            inner.append(client.fetch(url))
                        super().__init__(*args)

                return Conn

        client = Nesting(force_instance=True, max_clients=1)
        try:
            first = await client.fetch(url)
            second = await inner[0]
            out["nested"] = (first.body, second.body, seen, list(cap.records))
        finally:
            client.close()
        del cap.records[:]
        # an assert of fetch_impl that fails: upstream's AssertionError,
        # with the entry upstream left in the queue
        client = SimpleAsyncHTTPClient(force_instance=True, defaults=dict(request_timeout=None))
        try:
            try:
                client.fetch(url)
                out["assert"] = "no error"
            except AssertionError:
                out["assert"] = ("AssertionError", len(client.queue), len(client.waiting),
                                 len(client.active))
            # the request's own value stands in for the default
            r = await client.fetch(HTTPRequest(url, request_timeout=5))
            out["assert-own-value"] = r.body
        finally:
            client.close()
        # queued behind max_clients, then released in order; nothing left
        client = SimpleAsyncHTTPClient(force_instance=True, max_clients=3)
        try:
            got = await asyncio.gather(*(client.fetch(url) for _ in range(8)))
            out["queued"] = ([r.body for r in got], len(client.queue), len(client.waiting),
                             len(client.active), list(cap.records))
        finally:
            client.close()
    finally:
        log.removeHandler(cap)
        log.setLevel(level)
        server.close()
        await server.wait_closed()
    return out


@pytest.fixture(scope="module")
def both():
    return _upstream_run(_scenarios), _switched_run(_scenarios)


@pytest.mark.parametrize("name", ["request-url", "request-url-query", "request-options",
                                  "request-object", "request-raise_error", "closed",
                                  "callback-name", "nested", "assert", "assert-own-value",
                                  "queued"])
def test_same_as_upstream(both, name):
    up, sw = both
    assert sw[name] == up[name]


def test_scenarios_reach_their_cases(both):
    up, _ = both
    first, second, seen, records = up["nested"]
    assert first == second == b"hello"
    # the outer connection saw nothing queued or waiting, the inner fetch
    # was queued and logged twice (its own fetch_impl, then the outer one)
    assert seen[0] == (0, 0, 1, True)
    assert len(records) == 2 and records[0][-1] == records[1][-1] == "fetch_impl"
    assert up["assert"] == ("AssertionError", 1, 0, 0)
    attrs, code, body, cls, shared, resp, _same, error = up["request-url"]
    assert (code, body, cls, shared, error) == (200, b"hello", "HTTPRequest", False, "None")
    assert [k for k, _ in resp][:3] == ["request", "code", "reason"] and len(resp) == 12
    assert up["request-object"][6] is True  # the response's request is the one passed
    assert len(attrs) > 30 and ("url", "http://127.0.0.1:PORT/plain") in attrs
    assert up["request-raise_error"][1] == 404
    assert up["closed"] == "fetch() called on closed AsyncHTTPClient"
    assert up["callback-name"] == ["AsyncHTTPClient.fetch.<locals>.handle_response"]
    assert up["queued"][0] == [b"hello"] * 8 and up["queued"][1:4] == (0, 0, 0)
    assert len(up["queued"][4]) == 5  # one line per queued fetch


def _process_queue_calls(client_class):
    """How many times upstream's _process_queue ran for one fetch under the
    switch with a client of `client_class`."""
    calls = []
    orig = SimpleAsyncHTTPClient._process_queue

    def spy(self):
        calls.append(1)
        return orig(self)

    async def go():
        server, port = await _serve()
        SimpleAsyncHTTPClient._process_queue = spy
        client = client_class(force_instance=True)
        try:
            r = await client.fetch("http://127.0.0.1:%d/plain" % port)
            assert r.body == b"hello"
        finally:
            SimpleAsyncHTTPClient._process_queue = orig
            client.close()
            server.close()
            await server.wait_closed()

    _switched_run(go)
    return len(calls)


def test_a_fetch_that_starts_at_once_skips_the_queue():
    import tornado_c  # noqa: F401  (the switch's module is importable)

    # a replaced _process_queue is called as upstream calls it: at the fetch
    # and at the release (the spy is also the short path's signal to step
    # aside)
    assert _process_queue_calls(SimpleAsyncHTTPClient) == 2

    class Plain(SimpleAsyncHTTPClient):
        pass

    from tornado_c import _client_entry as tc_sc

    calls = []
    orig = tc_sc._UPSTREAM_FETCH_IMPL

    def spy(self, request, callback):
        calls.append(1)
        return orig(self, request, callback)

    async def go():
        server, port = await _serve()
        client = Plain(force_instance=True)
        try:
            for _ in range(3):
                r = await client.fetch("http://127.0.0.1:%d/plain" % port)
                assert r.body == b"hello"
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    orig_fetch = tc_sc._UPSTREAM_FETCH

    def fetch_spy(*args, **kwargs):
        calls.append(2)
        return orig_fetch(*args, **kwargs)

    tc_sc._UPSTREAM_FETCH_IMPL = spy
    tc_sc._UPSTREAM_FETCH = fetch_spy
    try:
        _switched_run(go)
    finally:
        tc_sc._UPSTREAM_FETCH_IMPL = orig
        tc_sc._UPSTREAM_FETCH = orig_fetch
    assert calls == []


def test_the_switch_swaps_fetch_impl_and_restores_it():
    import tornado_c
    from tornado_c._client_entry import _UPSTREAM_FETCH_IMPL, _fetch_impl

    before = tornado_c.active()
    tornado_c.install()
    try:
        assert SimpleAsyncHTTPClient.fetch_impl is _fetch_impl
    finally:
        tornado_c.uninstall()
    try:
        assert SimpleAsyncHTTPClient.fetch_impl is _UPSTREAM_FETCH_IMPL
    finally:
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


def test_a_replaced_request_init_is_run():
    """While HTTPRequest.__init__ is not upstream's, fetch(url) calls it."""
    calls = []
    orig = HTTPRequest.__init__

    def init(self, *args, **kwargs):
        calls.append(kwargs.get("url"))
        orig(self, *args, **kwargs)

    async def go():
        server, port = await _serve()
        client = SimpleAsyncHTTPClient(force_instance=True)
        try:
            r = await client.fetch("http://127.0.0.1:%d/plain" % port)
            return r.body, r.request.url == "http://127.0.0.1:%d/plain" % port
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    HTTPRequest.__init__ = init
    try:
        assert _switched_run(go) == (b"hello", True)
    finally:
        HTTPRequest.__init__ = orig
    assert len(calls) == 1


@pytest.mark.parametrize("first", ["tornado_c.simple_httpclient", "tornado_c._client_entry",
                                   "tornado.simple_httpclient"])
def test_the_client_is_switched_whichever_module_comes_first(first):
    """tornado_c's two client modules import tornado.simple_httpclient: the
    switch's patch of it waits for the end of their import when one of them
    is imported first (it used to fail with an ImportError)."""
    import subprocess
    import sys

    code = (
        "import tornado_c\n"
        "tornado_c.install()\n"
        "import %s\n"
        "import tornado.httpclient as h, tornado.simple_httpclient as s\n"
        "print(s.HTTP1Connection.__module__, s.SimpleAsyncHTTPClient._connection_class.__module__,"
        " s.SimpleAsyncHTTPClient.fetch_impl.__module__, h.AsyncHTTPClient.fetch.__module__)\n"
        "tornado_c.uninstall()\n"
        "print(s.HTTP1Connection.__module__, s.SimpleAsyncHTTPClient.fetch_impl.__module__,"
        " h.AsyncHTTPClient.fetch.__module__)\n" % first
    )
    env = dict(os.environ)
    env.pop("TORNADO_C_DISABLE", None)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == [
        "tornado_c.simple_httpclient tornado_c.simple_httpclient tornado_c._client_entry "
        "tornado_c._client_entry",
        "tornado.http1connection tornado.simple_httpclient tornado.httpclient",
    ]
