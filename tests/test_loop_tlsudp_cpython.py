"""CPython's own asyncio tests for TLS, UDP and happy eyeballs, run on the
tornado_c loop (the interpreter's test package must be installed).

Modules: test_ssl (TLS over real sockets, threads on the other end),
test_sslproto (start_tls and the SSLProtocol state machine on our loop),
test_sock_lowlevel (sock_* incl. UDP), and test_base_events'
create_datagram_endpoint / happy eyeballs tests.  (test_events' TLS and UDP
tests run in test_loop_tcp_cpython.py with the rest of that module.)

EXCLUDED lists every test that does not run here, with the reason.  A fair
reason is a test that checks the stdlib loop's own private machinery (mocks
of asyncio.base_events.socket, the selector, _make_datagram_transport...):
such a test exercises code our loop does not run.  A behaviour difference is
not a reason.
"""

import asyncio
import sys
import unittest

import pytest

try:
    from test.test_asyncio import test_base_events, test_sock_lowlevel, test_ssl, test_sslproto
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)
try:
    from test.test_asyncio import test_staggered  # 3.12+
except ImportError:
    test_staggered = None

import tornado_c.loop
from tornado_c.loop import EventLoop

MOCKS_SOCKET = "patches asyncio.base_events.socket (the stdlib loop's module global)"
MOCKS_LOOP = "replaces private methods of the stdlib loop (e.g. _make_datagram_transport)"
MOCK_SELECTOR = "checks the stdlib selector loop's private state (a mocked selector)"

# test name -> reason
EXCLUDED = {
    # test_base_events.BaseEventLoopWithSelectorTests
    "test_create_datagram_endpoint_no_addrinfo": MOCKS_SOCKET,
    "test_create_datagram_endpoint_socket_err": MOCKS_SOCKET,
    "test_create_datagram_endpoint_setblk_err": MOCKS_SOCKET,
    "test_create_datagram_endpoint_cant_bind": MOCKS_SOCKET,
    "test_create_datagram_endpoint_nosoreuseport": MOCKS_SOCKET,
    "test_create_datagram_endpoint_ip_addr": MOCKS_SOCKET,
    "test_create_connection_ssl_server_hostname_default": MOCKS_LOOP,
}


def _skip(reason):
    def method(self):
        self.skipTest(reason)

    return method


def _apply_exclusions(cls):
    for name, reason in EXCLUDED.items():
        if hasattr(cls, name):
            setattr(cls, name, _skip(reason))
    return cls


@_apply_exclusions
class TCTestSSL(test_ssl.TestSSL):
    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = EventLoop()
        self.set_event_loop(self.loop)
        self.addCleanup(self.loop.close)

    def new_loop(self):
        return EventLoop()

    def new_policy(self):
        return tornado_c.loop.EventLoopPolicy()


@_apply_exclusions
class TCStartTLSTests(test_sslproto.BaseStartTLS, unittest.TestCase):
    def new_loop(self):
        return EventLoop()


@_apply_exclusions
class TCSslProtoHandshakeTests(test_sslproto.SslProtoHandshakeTests):
    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = EventLoop()
        self.set_event_loop(self.loop)


# The parts of test_base_events' loop tests that are about TLS arguments,
# datagram endpoints and happy eyeballs; the rest of that class tests the
# stdlib loop's own machinery.
_BASE_EVENTS_TOPICS = ("datagram", "ssl", "server_hostname", "happy", "interleave",
                       "start_tls")


class TCBaseEventLoopTests(test_base_events.BaseEventLoopWithSelectorTests):
    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = EventLoop()
        self.set_event_loop(self.loop)


for _name in list(vars(test_base_events.BaseEventLoopWithSelectorTests)):
    if _name.startswith("test_") and not any(t in _name for t in _BASE_EVENTS_TOPICS):
        setattr(TCBaseEventLoopTests, _name, None)
_apply_exclusions(TCBaseEventLoopTests)


@_apply_exclusions
class TCSockTests(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return EventLoop()


if test_staggered is not None:
    @_apply_exclusions
    class TCStaggeredTests(test_staggered.StaggeredTests):
        def setUp(self):
            super().setUp()
            asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())

        def tearDown(self):
            asyncio.set_event_loop_policy(None)
            super().tearDown()
