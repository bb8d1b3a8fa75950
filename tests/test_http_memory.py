"""Bounded memory per open connection (issue 15).

Each test measures the same plain Tornado app (benchmarks/apps/longpoll_app.py)
under upstream Tornado and under tornado_c in the same run and compares the
RSS each server gains per connection (after gc + malloc_trim, see
benchmarks/conn_memory.py): a ratio against upstream, not an absolute number
of this machine.

Measured with 5,000 connections (docs/memory.md):
  idle keep-alive after one request: upstream 8.6 KB, tornado_c 2.3 KB (0.27x)
  long-poll handler awaiting a Future: upstream 12.6 KB, tornado_c 7.9 KB (0.63x)
The bounds below sit a little above those ratios, so that a regression (a
buffer kept per idle connection again: it was 7.5 KB, 0.88x) fails.  The
long-poll target of the issue (1/4 of upstream) is not reached yet; the bound
guards what is reached.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import _serverproc as sp  # noqa: E402
import conn_memory as cm  # noqa: E402

N = 2000
IDLE_RATIO = 0.4      # tornado_c / upstream bytes per idle keep-alive connection
POLL_RATIO = 0.75     # tornado_c / upstream bytes per waiting long-poll connection


def _pair(state):
    sp.raise_nofile()
    up = cm.measure("upstream", state, N)
    tc = cm.measure("tornado_c", state, N)
    for r in (up, tc):
        assert r["ok"] and r["server_alive"], r
    msg = "bytes per %s connection (n=%d): upstream %d, tornado_c %d" % (
        state, N, up["bytes_per_conn"], tc["bytes_per_conn"])
    assert up["bytes_per_conn"] > 0, msg
    return up["bytes_per_conn"], tc["bytes_per_conn"], msg


def test_idle_keepalive_memory_vs_upstream():
    up, tc, msg = _pair("idle")
    assert tc <= IDLE_RATIO * up, msg


def test_longpoll_waiting_memory_vs_upstream():
    up, tc, msg = _pair("poll")
    assert tc <= POLL_RATIO * up, msg
