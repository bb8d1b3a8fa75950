"""CPython's unit tests of asyncio's pipe transports
(test.test_asyncio.test_unix_events.UnixReadPipeTransportTests and
UnixWritePipeTransportTests) run against tornado_c's pipe transports.

Those tests build asyncio.unix_events._UnixReadPipeTransport /
_UnixWritePipeTransport on a mock loop (test_utils.TestLoop) with os.read /
os.write patched; here the two names are pointed at
tornado_c._loop_pipes.ReadPipeTransport / WritePipeTransport for the
duration of each test, so the same calls and checks run on ours.  The
interpreter's test package must be installed.  One test is skipped, with its
reason below (LOGGER_PATCH).
"""

from unittest import mock

import pytest

try:
    from asyncio import unix_events
    from test.test_asyncio import test_unix_events
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

from tornado_c._loop_pipes import ReadPipeTransport, WritePipeTransport

LOGGER_PATCH = ("patches asyncio.unix_events.logger, the stdlib module's own name for the "
                "'asyncio' logger; ours logs the same warning to that logger "
                "(tests/test_loop_pipes.py::test_write_to_broken_pipe_passes_error_to_connection_lost)")


def _skip(reason):
    def method(self):
        self.skipTest(reason)

    return method


class _Ours:
    stdlib_name = None
    ours = None

    def setUp(self):
        super().setUp()
        patcher = mock.patch.object(unix_events, self.stdlib_name, self.ours)
        patcher.start()
        self.addCleanup(patcher.stop)


class TCReadPipeTransportTests(_Ours, test_unix_events.UnixReadPipeTransportTests):
    stdlib_name = "_UnixReadPipeTransport"
    ours = ReadPipeTransport


class TCWritePipeTransportTests(_Ours, test_unix_events.UnixWritePipeTransportTests):
    stdlib_name = "_UnixWritePipeTransport"
    ours = WritePipeTransport

    test_write_err = _skip(LOGGER_PATCH)
