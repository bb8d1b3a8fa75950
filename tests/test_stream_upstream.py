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
