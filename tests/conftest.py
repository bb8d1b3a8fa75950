"""Fixtures and helpers shared by the tests (test modules import the helpers
with ``from conftest import ...``)."""

import asyncio
import os
import socket
import subprocess
import sys

import pytest

# the folder holding tests/, benchmarks/, examples/, compat/ ...
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Loop tests run on both: stdlib asyncio's loop is the reference, tornado_c's
# must behave the same (a difference is a bug).
LOOP_KINDS = ("asyncio", "tornado_c")


def tornado_c_parent():
    """The folder holding the tornado_c package the tests import (the
    installed build, or the source tree after an in-place build)."""
    import tornado_c

    return os.path.dirname(os.path.dirname(os.path.abspath(tornado_c.__file__)))


def run_python(*args, env=None, cwd=None, timeout=120, input=None):
    """Run the venv's python in a subprocess and return CompletedProcess."""
    full_env = dict(os.environ)
    # Subprocesses import the same tornado_c build the tests import (installed
    # or in-tree), whatever their working directory.
    pkg_parent = tornado_c_parent()
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (pkg_parent, full_env.get("PYTHONPATH")) if p
    )
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def clean_switch():
    """Leave the global switch as it was found after the test."""
    import tornado_c

    before = tornado_c.active()
    yield tornado_c
    tornado_c.uninstall()
    if before:
        tornado_c.install(**{name: (name in before) for name in ("loop", "http", "web", "websocket")})


def free_port():
    """A 127.0.0.1 TCP port nobody listened on a moment ago (bound, then
    released), for servers started elsewhere and for refused connects."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def new_loop(kind):
    """A new event loop of one of LOOP_KINDS."""
    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    if kind == "tornado_c":
        from tornado_c.loop import EventLoop

        return EventLoop()
    raise ValueError("unknown loop kind %r" % (kind,))


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    """Runs the test once per loop kind (the name, for tests that make their
    loop elsewhere, e.g. in a subprocess)."""
    return request.param


@pytest.fixture
def loop(loop_kind):
    """A new loop of each kind (``loop.kind`` says which), not set as the
    current loop; closed afterwards (after shutting its default executor
    down) unless the test closed it."""
    lp = new_loop(loop_kind)
    lp.kind = loop_kind
    yield lp
    if not lp.is_closed():
        lp.run_until_complete(lp.shutdown_default_executor())
        lp.close()

# -- the test build ---------------------------------------------------------
# Some tests drive C code through entry points that exist only in the test
# build of tornado_c._core (TORNADO_C_TEST=1 at build time, see setup.py and
# the README's "Building and developing"); a user's build has none of them.
# On a normal build those tests are skipped with TEST_BUILD_MISSING as the
# reason.  scripts/test.sh builds the test build and runs pytest with
# TORNADO_C_TEST=1 in its environment: then a build without the test API is
# an error of the whole run (pytest_sessionstart below), never a skip.

TEST_BUILD_MISSING = (
    "needs the test build of tornado_c._core (TORNADO_C_TEST=1 at build time; "
    "see the README, 'Building and developing')"
)


def has_test_api():
    from tornado_c import _core

    return bool(_core.TEST_API)


def needs_test_api():
    """Mark for a test that uses the test build's entry points."""
    return pytest.mark.skipif(not has_test_api(), reason=TEST_BUILD_MISSING)


def pytest_sessionstart(session):
    if os.environ.get("TORNADO_C_TEST") == "1" and not has_test_api():
        from tornado_c import _core

        raise pytest.UsageError(
            "TORNADO_C_TEST=1 asks for the test build, but %s was built without it "
            "(rebuild with TORNADO_C_TEST=1: python setup.py build_ext --inplace, "
            "or pip install --force-reinstall)" % _core.__file__
        )
