"""CPython's own asyncio subprocess tests (test.test_asyncio.test_subprocess
and test_events.SubprocessTestsMixin) run on the tornado_c loop.

The interpreter's test package must be installed.  None is skipped: all
of them pass on 3.11, 3.12 and 3.13, with pidfds and with the thread that
waits when pidfd_open() is refused.  (test_subprocess' other classes test
asyncio's child watchers and a mock BaseSubprocessTransport, not a loop.)
(The pipe and pty tests of test_events run with the rest of
EventLoopTestsMixin in tests/test_loop_tcp_cpython.py, test_unix_events' pipe
transport tests in tests/test_loop_pipes_cpython.py.)
"""

import pytest

try:
    from test.test_asyncio import test_events, test_subprocess
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

from tornado_c import _loop_subprocess
from tornado_c.loop import EventLoop


def _skip(reason):
    def method(self):
        self.skipTest(reason)

    return method


class _TCLoopSetUp:
    def setUp(self):
        super().setUp()
        self.loop = EventLoop()
        self.set_event_loop(self.loop)


class TCSubprocessTests(_TCLoopSetUp, test_subprocess.SubprocessMixin, test_utils.TestCase):
    pass


class TCSubprocessThreadFallbackTests(TCSubprocessTests):
    """The same with the exit noticed by a waiting thread (as when
    os.pidfd_open is unavailable)."""

    def setUp(self):
        super().setUp()
        saved = _loop_subprocess._USE_PIDFD
        _loop_subprocess._USE_PIDFD = False

        def restore():
            _loop_subprocess._USE_PIDFD = saved

        self.addCleanup(restore)


class TCSubprocessEventsTests(_TCLoopSetUp, test_events.SubprocessTestsMixin,
                              test_utils.TestCase):
    def tearDown(self):
        # as test_events.EventLoopTestsMixin.tearDown: transport close callbacks
        if not self.loop.is_closed():
            test_utils.run_briefly(self.loop)
        super().tearDown()
