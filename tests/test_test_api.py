"""The test build (TORNADO_C_TEST=1, see setup.py) and the normal one.

A user's build carries none of the test-only entry points; the test build
carries all of them, and scripts/test.sh (which sets TORNADO_C_TEST=1 for
the build and for pytest) must really have run the test build.
"""

import os
import subprocess
import sys

import pytest

from tornado_c import _core

# Everything the test build adds to tornado_c._core (csrc/*/test_*.c).
TEST_ONLY = [
    "HTTPRequestParser",       # csrc/http/test_api.c
    "HTTPResponseWriter",
    "_http_repr",
    "_llhttp_selftest",
    "_llhttp_verdict",
    "TestStreamConsumer",      # csrc/stream/test_consumer.c
    "_test_stream_consumer",
    "_test_stream_from_fd",
]
# C functions of the test-only sources that must not reach a user's .so
TEST_ONLY_SYMBOLS = ["tc_http_test_exec", "tc_stream_test_exec"]


def test_the_test_api_is_all_or_nothing():
    present = [name for name in TEST_ONLY if hasattr(_core, name)]
    assert _core.TEST_API in (0, 1)
    assert present == (TEST_ONLY if _core.TEST_API else [])


@pytest.mark.skipif(sys.platform != "linux", reason="nm on an ELF shared object")
def test_the_test_api_symbols_follow_the_build():
    try:
        out = subprocess.run(["nm", "-D", "--defined-only", _core.__file__],
                             capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        pytest.skip("nm (binutils) not installed")
    symbols = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert "PyInit__core" in symbols
    found = [s for s in TEST_ONLY_SYMBOLS if s in symbols]
    assert found == (TEST_ONLY_SYMBOLS if _core.TEST_API else [])


def test_test_command_runs_the_test_build():
    # scripts/test.sh builds with TORNADO_C_TEST=1 and keeps it set for pytest
    # (conftest.py stops the run before this test when the build lacks it).
    if os.environ.get("TORNADO_C_TEST") != "1":
        pytest.skip("not run by scripts/test.sh (TORNADO_C_TEST is not 1)")
    assert _core.TEST_API == 1, _core.__file__
