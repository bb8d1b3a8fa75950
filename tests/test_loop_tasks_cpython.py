"""CPython's own tests of tasks and of what is built on them
(test.test_asyncio.test_tasks, test_locks, test_queues, test_runners,
test_taskgroups, test_timeouts, and the small test_waitfor, test_threads,
test_context, test_futures2) run on the tornado_c loop.
(test_futures passes here too, 155 tests, but takes some 30 s, most of it
in three tests that call gc.collect() a hundred times: left out.)

The interpreter's test package must be installed.  How each module gets our
loop:

- test_locks, test_queues, test_taskgroups, test_timeouts, test_waitfor,
  test_threads, test_futures2 are unittest.IsolatedAsyncioTestCase classes:
  their asyncio.Runner takes its loop from the event loop policy, which is
  tornado_c's for each test (and every test checks that the loop it runs on
  is ours); test_context's calls asyncio.run(), which does the same.
- test_runners builds its loops with BaseTest.new_loop (a mocked stdlib
  BaseEventLoop); here new_loop returns our loop, with the same hook the
  tests check (shutdown_asyncgens was awaited).
- test_tasks makes its loops with TestCase.new_test_loop() and
  asyncio.new_event_loop(): both give our loop here.  Tests that pass a
  generator to new_test_loop(gen) need asyncio's fake-clock TestLoop (the
  generator is told each timer's deadline and moves the clock), which no
  real loop can stand in for: they are skipped (FAKE_CLOCK).  Of the eight
  Task x Future implementation pairs BaseTaskTests runs, two run here: C
  Task with C Future (what programs use) and the pure-Python pair; the
  others mix the same implementations and call the loop the same way.
  The introspection tests (no loop) are left out.

EXCLUDED lists every other test that does not run here, with the reason.  A
fair reason is a test that checks the stdlib loop's own private machinery; a
behaviour difference is not.  Tests that patch asyncio.base_events.logger
(the stdlib module's name for the 'asyncio' logger, which our loop logs to as
well) see our loop's log calls through _StdlibLoggerName.
"""

import asyncio
import gc
import unittest
from unittest import mock

import pytest

try:
    from test.test_asyncio import (test_context, test_futures2, test_locks, test_queues,
                                   test_runners, test_taskgroups, test_tasks, test_threads,
                                   test_timeouts, test_waitfor)
    from test.test_asyncio import utils as test_utils
except ImportError:  # pragma: no cover - interpreter built without its tests
    pytest.skip("CPython's test.test_asyncio is not installed", allow_module_level=True)

import tornado_c.loop
from tornado_c.loop import EventLoop

FAKE_CLOCK = ("needs asyncio's fake-clock test_utils.TestLoop (new_test_loop(gen): a "
              "generator moves the clock to each timer's deadline)")
PRIVATE_RUN_ONCE = "steps the stdlib loop with its private _run_once() and reads its _ready deque"
PATCHES_BASE_LOOP = ("patches asyncio.base_events.BaseEventLoop.call_exception_handler (the "
                     "stdlib loop's class) and then calls the loop's method as a mock")

NO_LOOP = ("runs `python -c` in subprocesses to read asyncio.coroutines' debug flag: "
           "no loop involved")

# test name -> reason
EXCLUDED = {
    # test_tasks.BaseTaskTests
    "test_log_destroyed_pending_task": PRIVATE_RUN_ONCE,
    # test_tasks.CoroutineGatherTests
    "test_issue46672": PATCHES_BASE_LOOP,
    # test_tasks.GatherTestsBase
    "test_env_var_debug": NO_LOOP,
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


class _StdlibLoggerName:
    """Stands for tornado_c.loop's `logger` during a test: forwards to
    whatever asyncio.base_events.logger is at the time of the call, so a test
    that patches that name sees what our loop logs (both names are the
    'asyncio' logger when nothing is patched)."""

    def __getattr__(self, name):
        return getattr(asyncio.base_events.logger, name)


class _OnOurLoop:
    """For test_utils.TestCase classes: our policy during the test (so
    asyncio.new_event_loop() gives our loop) and our loop from
    new_test_loop()."""

    def setUp(self):
        asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
        self.addCleanup(asyncio.set_event_loop_policy, None)
        patcher = mock.patch.object(tornado_c.loop, "logger", _StdlibLoggerName())
        patcher.start()
        self.addCleanup(patcher.stop)
        super().setUp()

    def new_test_loop(self, gen=None):
        if gen is not None:
            self.skipTest(FAKE_CLOCK)
        loop = asyncio.new_event_loop()
        self.assertIsInstance(loop, EventLoop)
        self.set_event_loop(loop)
        return loop


class _AsyncOnOurLoop:
    """For IsolatedAsyncioTestCase classes: the test's asyncio.Runner creates
    its loop from the policy, ours for the duration of the test."""

    def run(self, result=None):
        asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
        try:
            return super().run(result)
        finally:
            asyncio.set_event_loop_policy(None)

    async def asyncSetUp(self):
        self.assertIsInstance(asyncio.get_running_loop(), EventLoop)
        await super().asyncSetUp()


def _on_our_loop(module, name):
    """A subclass of module.name that runs on our loop, with EXCLUDED applied."""
    base = getattr(module, name)
    mixin = _AsyncOnOurLoop if issubclass(base, unittest.IsolatedAsyncioTestCase) else _OnOurLoop
    return _apply_exclusions(type("TC" + name, (mixin, base), {"__module__": __name__}))


# test_tasks
TCCTask_CFuture_Tests = _on_our_loop(test_tasks, "CTask_CFuture_Tests")
TCPyTask_PyFuture_Tests = _on_our_loop(test_tasks, "PyTask_PyFuture_Tests")


def _with_frozen_heap(test):
    """Run test with the objects that exist before it moved out of the
    collector's reach (gc.freeze): each of the test's 100 gc.collect() calls
    then walks what the test made, not the whole heap of the pytest session
    (40 s at the end of a full run on a loaded machine, ~4 s alone).  The
    tasks, coroutines and Evil objects it checks are all made inside it."""
    def run(self):
        gc.collect()
        gc.freeze()
        try:
            test(self)
        finally:
            gc.unfreeze()
    run.__name__ = test.__name__
    return run


# 100 gc.collect() calls from __del__ while the tasks finish on our loop
for _cls in (TCCTask_CFuture_Tests, TCPyTask_PyFuture_Tests):
    _cls.test_task_del_collect = _with_frozen_heap(_cls.test_task_del_collect)
del _cls  # not a test class of its own
TCCTask_Future_Tests = _on_our_loop(test_tasks, "CTask_Future_Tests")
TCPyCurrentLoopTests = _on_our_loop(test_tasks, "PyCurrentLoopTests")
TCCCurrentLoopTests = _on_our_loop(test_tasks, "CCurrentLoopTests")
TCRunCoroutineThreadsafeTests = _on_our_loop(test_tasks, "RunCoroutineThreadsafeTests")
TCSleepTests = _on_our_loop(test_tasks, "SleepTests")
TCCompatibilityTests = _on_our_loop(test_tasks, "CompatibilityTests")


class _GatherOnOurLoop:
    def _run_loop(self, loop):
        # The test's helper runs the loop until no callback is ready, reading
        # the stdlib loop's private _ready deque; ours counts its ready queue
        # in _counts().
        while loop._counts()["ready"]:
            test_utils.run_briefly(loop)


TCFutureGatherTests = _apply_exclusions(
    type("TCFutureGatherTests", (_GatherOnOurLoop, _OnOurLoop, test_tasks.FutureGatherTests),
         {"__module__": __name__}))
TCCoroutineGatherTests = _apply_exclusions(
    type("TCCoroutineGatherTests",
         (_GatherOnOurLoop, _OnOurLoop, test_tasks.CoroutineGatherTests),
         {"__module__": __name__}))


def _classes_of(module):
    return [name for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, unittest.TestCase)
            and value.__module__ == module.__name__]


# every test class of these (test_utils.TestCase or IsolatedAsyncioTestCase)
for _module in (test_locks, test_queues, test_taskgroups, test_timeouts, test_waitfor,
                test_threads, test_context, test_futures2):
    for _name in _classes_of(_module):
        globals()["TC" + _name] = _on_our_loop(_module, _name)


# test_runners
class _RunnersOnOurLoop:
    def new_loop(self):
        loop = EventLoop()
        # as BaseTest.new_loop: tearDown checks that the runner awaited
        # shutdown_asyncgens()
        loop.shutdown_ag_run = False
        shutdown_asyncgens = loop.shutdown_asyncgens

        async def shutdown_and_note():
            await shutdown_asyncgens()
            loop.shutdown_ag_run = True

        loop.shutdown_asyncgens = shutdown_and_note
        return loop


for _name in _classes_of(test_runners):
    if issubclass(getattr(test_runners, _name), test_runners.BaseTest):
        globals()["TC" + _name] = _apply_exclusions(
            type("TC" + _name, (_RunnersOnOurLoop, getattr(test_runners, _name)),
                 {"__module__": __name__}))

del _module, _name
