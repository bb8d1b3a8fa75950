"""CPython's own asyncio sendfile tests (test.test_asyncio.test_sendfile) run
on the tornado_c loop.  The interpreter's test package must be installed.

Skipped, with the reason:
- the TLS ones while the loop has no TLS transport (sendfile through TLS is
  the read + write fallback, tested here without TLS too);
- test_sendfile_not_supported: needs a datagram endpoint (another part of
  the loop work).

test_unix_events.SelectorEventLoopUnixSockSendfileTests is not run: it
calls the stdlib loop's private _sock_sendfile_native_impl() and inspects
its _selector; tests/test_loop_sendfile.py covers the same cases (file
without fileno, BytesIO, os.sendfile errors on the first and on a later
call, cancellation) through the public API.
"""

import pytest

try:
    from test.test_asyncio import test_sendfile
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

from tornado_c.loop import EventLoop

NO_TLS = "tornado_c has no TLS transport yet"
NO_UDP = "needs create_datagram_endpoint (not part of the sendfile work)"


def _skip(reason):
    def method(self):
        self.skipTest(reason)

    return method


def _has_tls():
    import asyncio
    import ssl

    loop = EventLoop()
    try:
        coro = loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                      ssl=ssl.create_default_context())
        try:
            loop.run_until_complete(coro)
        except NotImplementedError:
            return False
        except Exception:
            return True
        return True
    finally:
        loop.close()


def _has_udp():
    import asyncio

    loop = EventLoop()
    try:
        tr, _ = loop.run_until_complete(loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)))
        tr.close()
        return True
    except NotImplementedError:
        return False
    finally:
        loop.close()


class TCSendfileTests(test_sendfile.SendfileTestsBase, test_utils.TestCase):
    def create_event_loop(self):
        return EventLoop()

    if not _has_tls():
        test_sendfile_ssl = _skip(NO_TLS)
        test_sendfile_ssl_pre_and_post_data = _skip(NO_TLS)
        test_sendfile_ssl_partial = _skip(NO_TLS)
        test_sendfile_ssl_close_peer_after_receiving = _skip(NO_TLS)

    if not _has_udp():
        test_sendfile_not_supported = _skip(NO_UDP)
