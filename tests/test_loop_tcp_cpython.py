"""CPython's own asyncio tests for streams, servers and socket transports, run
on the tornado_c loop (the interpreter's test package must be installed).

Tests of features the tornado_c loop does not have (TLS, datagram
endpoints) or that mock asyncio's private internals are
skipped here with the reason; everything else must pass.
"""

import unittest

import pytest

try:
    from test.test_asyncio import test_buffered_proto, test_events, test_server, test_streams
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

from tornado_c.loop import EventLoop

NO_TLS = "tornado_c has no TLS transport yet"
NO_UDP = "datagram endpoints are not part of the TCP/Unix transport work"
MOCKS = "mocks asyncio.base_events internals (socket module, _start_serving)"


def _skip(reason):
    def method(self):
        self.skipTest(reason)

    return method


class TCEventLoopTests(test_events.UnixEventLoopTestsMixin, test_utils.TestCase):
    def create_event_loop(self):
        return EventLoop()

    test_create_server_multiple_hosts_ipv4 = _skip(MOCKS)
    test_create_server_multiple_hosts_ipv6 = _skip(MOCKS)
    test_create_server_ssl = _skip(NO_TLS)
    test_create_server_ssl_match_failed = _skip(NO_TLS)
    test_create_server_ssl_verified = _skip(NO_TLS)
    test_create_server_ssl_verify_failed = _skip(NO_TLS)
    test_create_ssl_connection = _skip(NO_TLS)
    test_create_ssl_unix_connection = _skip(NO_TLS)
    test_create_unix_server_ssl = _skip(NO_TLS)
    test_create_unix_server_ssl_verified = _skip(NO_TLS)
    test_create_unix_server_ssl_verify_failed = _skip(NO_TLS)
    test_ssl_connect_accepted_socket = _skip(NO_TLS)
    # loop-core tests (not transports): counted _run_once calls, sock_recv
    # cancellation timing
    test_timeout_rounding = _skip("loop core internals (_run_once count)")
    test_prompt_cancellation = _skip("loop core sock_recv, not the transports")


# Datagram tests by name, whatever this Python's test suite holds (3.13 added
# test_datagram_send_to_non_listening_address, for instance).
for _name in dir(test_events.UnixEventLoopTestsMixin):
    if _name.startswith("test_") and "datagram" in _name:
        setattr(TCEventLoopTests, _name, _skip(NO_UDP))


class TCStreamTests(test_streams.StreamTests):
    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = EventLoop()
        self.set_event_loop(self.loop)

    test_open_connection_no_loop_ssl = _skip(NO_TLS)
    test_open_unix_connection_no_loop_ssl = _skip(NO_TLS)
    test_start_tls = _skip(NO_TLS)


class TCStartServerTests(test_server.BaseStartServer, unittest.TestCase):
    def new_loop(self):
        return EventLoop()


class TCBufferedProtoTests(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
    def new_loop(self):
        return EventLoop()

