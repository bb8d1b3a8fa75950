"""Bounded memory per open connection (issue 15).

Each test measures the same plain Tornado app (benchmarks/apps/longpoll_app.py)
under upstream Tornado and under tornado_c in the same run and compares the
RSS each server gains per connection (after gc + malloc_trim, see
benchmarks/conn_memory.py): a ratio against upstream, not an absolute number
of this machine.

Measured with 5,000 connections (docs/memory.md, second pass):
  idle keep-alive after one request: upstream 8.6 KB, tornado_c 1.6 KB (0.19x)
  long-poll handler awaiting a Future: upstream 12.7 KB, tornado_c 7.1 KB (0.56x)
At 2,000 connections (this test) one run gave 0.21x and 0.60x (upstream's
per-connection figure is lower there).  The bounds sit above those ratios by
what RSS noise at 2,000 connections allows (+-500 B per connection: pages
and 1 MiB arenas), so that a regression
of a few hundred bytes per connection -- a timer or a buffer kept per idle
connection again (the first pass's 7.5 KB was 0.88x), the request's
delegates kept while it waits -- fails.  The long-poll target of the issue
(1/4 of upstream) is not reached; the bound guards what is reached.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import _serverproc as sp  # noqa: E402
import conn_memory as cm  # noqa: E402

N = 2000
IDLE_RATIO = 0.28     # tornado_c / upstream bytes per idle keep-alive connection
POLL_RATIO = 0.68     # tornado_c / upstream bytes per waiting long-poll connection


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
