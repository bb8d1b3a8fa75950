"""Upstream's IOStream test mixins (tornado/test/iostream_test.py) run
against tornado_c.iostream.IOStream on the tornado_c event loop.

Upstream gives its mixins ``_make_server_iostream`` / ``_make_client_iostream``
hooks for alternative stream classes; the classes below plug ours in, the same
way upstream's own TestIOStream plugs in tornado.iostream.IOStream.  Every test
also checks that the streams really were tornado_c's (not the fallback).

Skipped upstream tests (and why) are listed in SKIPPED below.
"""

import asyncio
import logging
import socket

import pytest

import tornado.iostream
from tornado.test import iostream_test as T
from tornado.testing import AsyncHTTPTestCase

import tornado_c.loop
from tornado_c import _core
from tornado_c import iostream as tci


# name -> reason.  Keep this honest: every entry is a real difference.
SKIPPED = {
    # The test patches tornado.iostream.BaseIOStream._try_inline_read to make
    # read_until_close() raise; our read_until_close is C and never calls that
    # Python method, so the patch has no effect and there is nothing to test.
    "test_read_until_close_with_error":
        "patches upstream's Python _try_inline_read, which the C stream does not use",
    # Replaces the instance's read_from_fd() (a Python hook of upstream's
    # BaseIOStream) to make the read fail; the C stream reads through libuv
    # and has no such hook.
    "test_async_read_error_logging":
        "stubs upstream's Python read_from_fd hook, which the C stream does not have",
}


@pytest.fixture(autouse=True, scope="module")
def _tornado_c_policy():
    old = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
    # as tornado/test/runtests.py does
    access = logging.getLogger("tornado.access")
    level = access.level
    access.setLevel(logging.CRITICAL)
    yield
    access.setLevel(level)
    asyncio.set_event_loop_policy(old)


class _Checked:
    """Record the streams made, and check they are tornado_c's."""

    def _made(self, stream):
        assert isinstance(stream, tci.IOStream), type(stream)
        assert isinstance(stream, _core.Stream)
        assert isinstance(stream, tornado.iostream.IOStream)
        return stream

    def setUp(self):
        name = self._testMethodName
        if name in SKIPPED:
            self.skipTest(SKIPPED[name])
        super().setUp()
        assert isinstance(self.io_loop.asyncio_loop, _core.Loop)


class TestCIOStream(_Checked, T.TestIOStreamMixin):
    def _make_server_iostream(self, connection, **kwargs):
        return self._made(tci.IOStream(connection, **kwargs))

    def _make_client_iostream(self, connection, **kwargs):
        return self._made(tci.IOStream(connection, **kwargs))


class TestCIOStreamWebHTTP(_Checked, AsyncHTTPTestCase, T.TestIOStreamWebMixin):
    def _make_client_iostream(self):
        return self._made(tci.IOStream(socket.socket()))

    def get_app(self):
        return self.mixin_get_app()


class TestCIOStreamStartTLS(_Checked, T.TestIOStreamStartTLS):
    """Upstream's start_tls tests with the plain streams being ours (the
    module global IOStream of iostream_test is swapped while they run)."""

    def setUp(self):
        self._saved = T.IOStream
        T.IOStream = tci.IOStream
        try:
            super().setUp()
        except BaseException:
            T.IOStream = self._saved
            raise
        self._made(self.client_stream)
        self._made(self.server_stream)

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            T.IOStream = self._saved


# Upstream suites that create IOStreams (directly, through TCPServer,
# TCPClient, the simple HTTP client, the HTTP server, WebSocket), run in a
# subprocess with tornado.iostream.IOStream (and the names tcpserver and
# tcpclient imported from it) replaced by tornado_c's: every plain IOStream
# they make is then ours.
PATCHED_SUITES = [
    "tornado.test.iostream_test",
    "tornado.test.tcpclient_test",
    "tornado.test.tcpserver_test",
    "tornado.test.simple_httpclient_test",
    "tornado.test.httpserver_test",
    "tornado.test.websocket_test",
    "tornado.test.web_test",
]

PATCHED_SKIPS = {
    # the same two as above
    "tornado.test.iostream_test.TestIOStream.test_read_until_close_with_error",
    "tornado.test.iostream_test.TestIOStream.test_async_read_error_logging",
    # 0.1 s for a TLS handshake plus a request: fails on a loaded machine
    # even with upstream's IOStream when run alone
    "tornado.test.simple_httpclient_test.SimpleHTTPSClientTestCase.test_request_timeout",
}

_PATCHED_RUNNER = r'''
import sys, unittest, asyncio
import tornado_c
tornado_c.install()
import tornado.iostream, tornado_c.iostream as tci
tornado.iostream.IOStream = tci.IOStream
import tornado.tcpserver, tornado.tcpclient  # bound IOStream at import time
tornado.tcpserver.IOStream = tci.IOStream
tornado.tcpclient.IOStream = tci.IOStream
import tornado.testing, tornado.test.runtests  # logging / warnings setup as upstream
import logging
logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
skips = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else set()
suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1].split(","))
def flat(s):
    for t in s:
        if isinstance(t, unittest.TestSuite):
            yield from flat(t)
        else:
            yield t
kept = unittest.TestSuite(t for t in flat(suite) if t.id() not in skips)
made = []
orig_init = tci.IOStream.__init__
def counting_init(self, *a, **k):
    made.append(1)
    return orig_init(self, *a, **k)
tci.IOStream.__init__ = counting_init
res = unittest.TextTestRunner(verbosity=0).run(kept)
print("RAN", res.testsRun, "FAILED", len(res.failures) + len(res.errors), "TC_STREAMS", len(made))
sys.exit(0 if res.wasSuccessful() else 1)
'''


def test_upstream_suites_with_iostream_patched():
    from conftest import run_python

    r = run_python("-c", _PATCHED_RUNNER, ",".join(PATCHED_SUITES),
                   ",".join(sorted(PATCHED_SKIPS)), timeout=600, cwd="/tmp")
    tail = (r.stdout + r.stderr)[-4000:]
    assert r.returncode == 0, tail
    line = [x for x in r.stdout.splitlines() if x.startswith("RAN")][-1]
    ran, streams = int(line.split()[1]), int(line.split()[5])
    assert ran > 500, line
    assert streams > 400, line  # our IOStream really was the one in use
