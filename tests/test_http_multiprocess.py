"""Multi-process serving with both servers (examples/robust_app.py):

- the deprecated ``server.bind(port); server.start(2)`` path (fork after bind,
  the IOLoop created only in the children);
- ``reuse_port=True`` with two independent processes on the same port.

Both processes must answer (the app returns os.getpid()), under tornado_c each
on the C loop with the C HTTP server, and SIGTERM must shut everything down
cleanly (exit status 0, no process left, no traceback).
"""

import json
import os
import socket
import threading
import time

import pytest

import _serverproc as sp
from conftest import free_port


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def check_info(mode, info):
    if mode == "tornado_c":
        assert info["connection"].startswith("tornado_c."), info
        assert info["loop"].startswith("tornado_c."), info
    else:
        assert info["connection"].startswith("tornado."), info


def pids_answering(port, want, tries=200):
    """New connections until `want` distinct pids answered /pid."""
    seen = {}
    for _ in range(tries):
        info = sp.get_json(port)
        seen[info["pid"]] = info
        if len(seen) >= want:
            break
    return seen


@pytest.mark.parametrize("mode", sp.MODES)
def test_bind_start_fork(mode):
    srv = sp.ServerProc(mode, "--mode", "fork", "--procs", "2", "--port", str(free_port()))
    children = []
    try:
        srv.wait_line("SERVING ", 30, count=2)
        children = srv.serving_pids()
        assert len(set(children)) == 2 and srv.pid not in children, children

        # Deterministic: while one child is blocked in time.sleep, a second
        # connection to the shared listening socket can only be accepted by
        # the other child.
        blocked = {}

        def block():
            blocked.update(sp.get_json(srv.port, "/block?s=1.5"))

        t = threading.Thread(target=block)
        t.start()
        time.sleep(0.4)
        other = sp.get_json(srv.port)
        t.join(10)
        assert {blocked["pid"], other["pid"]} == set(children), (blocked, other, children)
        check_info(mode, other)
        # and plain traffic keeps being served
        seen = pids_answering(srv.port, 1, tries=20)
        assert set(seen) <= set(children)
        for info in seen.values():
            check_info(mode, info)
    finally:
        status = srv.stop()
        err = srv.stderr_text()
        srv.cleanup()
    assert status == 0, (status, err)
    assert not any(pid_alive(p) for p in children), children
    assert "Traceback" not in err, err


@pytest.mark.parametrize("mode", sp.MODES)
def test_reuse_port_two_processes(mode):
    port = free_port()
    a = sp.ServerProc(mode, "--mode", "reuseport", "--port", str(port))
    b = None
    try:
        b = sp.ServerProc(mode, "--mode", "reuseport", "--port", str(port))
        assert a.port == b.port == port
        a.wait_line("SERVING ", 10)
        b.wait_line("SERVING ", 10)
        # the kernel spreads new connections over both sockets by hash
        seen = pids_answering(port, 2)
        assert set(seen) == {a.pid, b.pid}, seen
        for info in seen.values():
            check_info(mode, info)
        # one process going away leaves the other serving the port
        assert a.stop() == 0, a.stderr_text()
        for _ in range(20):
            assert sp.get_json(port)["pid"] == b.pid
        assert b.stop() == 0, b.stderr_text()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        for p in (a, b):
            assert "Traceback" not in p.stderr_text(), p.stderr_text()
    finally:
        a.cleanup()
        if b is not None:
            b.cleanup()
