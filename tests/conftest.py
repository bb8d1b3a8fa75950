import os
import subprocess
import sys

import pytest


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
