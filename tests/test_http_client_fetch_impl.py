"""SimpleAsyncHTTPClient.fetch_impl under the switch
(tornado_c.simple_httpclient._fetch_impl), against upstream's.

A fetch that can start at once goes straight to its connection, without
upstream's round trip through ``queue`` and ``waiting`` and without the two
``_RequestProxy.__getattr__`` calls of its asserts.  Checked here: that the
short path is taken for a plain fetch and not when the client's queue
methods are replaced; that what a connection sees of the client while it is
made, a fetch queued from inside it (and the debug lines both log), a failed
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


@pytest.mark.parametrize("name", ["nested", "assert", "assert-own-value", "queued"])
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

    from tornado_c import simple_httpclient as tc_sc

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

    tc_sc._UPSTREAM_FETCH_IMPL = spy
    try:
        _switched_run(go)
    finally:
        tc_sc._UPSTREAM_FETCH_IMPL = orig
    assert calls == []


def test_the_switch_swaps_fetch_impl_and_restores_it():
    import tornado_c
    from tornado_c.simple_httpclient import _UPSTREAM_FETCH_IMPL, _fetch_impl

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
