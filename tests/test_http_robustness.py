"""Misbehaving clients against a real server process, upstream Tornado and
tornado_c (``python -m tornado_c``, so the C HTTP server runs on the C loop),
same app file (examples/robust_app.py), same assertions:

- slow clients (a byte every 0.1 s), clients vanishing mid-header, mid-body
  and mid-response (FIN and RST), garbage input;
- meanwhile a normal client keeps getting correct answers with normal latency;
- idle_connection_timeout and body_timeout close slow clients as upstream does;
- the server neither crashes nor hangs, logs no traceback, and its fd count
  returns to the baseline once the bad clients are gone.
"""

import json
import os
import socket
import statistics
import threading
import time

import pytest

import _serverproc as sp

IDLE_TIMEOUT = 4.0
BODY_TIMEOUT = 2.0

# "normal latency" on a shared 2-core machine: the median stays low and no
# request stalls behind a misbehaving client.
MEDIAN_LATENCY = 0.1
MAX_LATENCY = 1.5


@pytest.fixture(scope="module", params=sp.MODES)
def server(request):
    sp.raise_nofile()
    srv = sp.ServerProc(
        request.param,
        "--idle-timeout", str(IDLE_TIMEOUT),
        "--body-timeout", str(BODY_TIMEOUT),
    )
    info = sp.get_json(srv.port)
    if request.param == "tornado_c":
        assert info["connection"].startswith("tornado_c."), info
        assert info["loop"].startswith("tornado_c."), info
    else:
        assert info["connection"].startswith("tornado."), info
    yield srv
    alive = srv.alive()
    status = srv.stop()
    err = srv.stderr_text()
    srv.cleanup()
    assert alive, "server died: %s\n%s" % (status, err)


@pytest.fixture
def guard(server):
    """Baseline fd count before the test; afterwards: server alive, a normal
    request works, fds back to the baseline, no traceback logged."""
    sp.get_json(server.port)  # warm
    time.sleep(0.1)
    base = sp.fd_count(server.pid)
    log_start = len(server.stderr_text())
    yield base
    assert server.alive(), server.stderr_text()
    assert sp.get_json(server.port)["pid"] == server.pid
    n = sp.wait_for(lambda: sp.fd_count(server.pid) <= base, 10)
    assert n, "fds did not return to baseline %d: now %d" % (base, sp.fd_count(server.pid))
    log = server.stderr_text()[log_start:]
    assert "Traceback" not in log, log


@pytest.fixture
def normal_client(server):
    c = sp.NormalClient(server.port)
    c.start()
    yield c
    c.finish()


def check_normal(client, min_requests=2):
    lat, errors = client.finish()
    assert not errors, errors[:5]
    assert len(lat) >= min_requests, len(lat)
    assert statistics.median(lat) < MEDIAN_LATENCY, statistics.median(lat)
    assert max(lat) < MAX_LATENCY, max(lat)


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def slow_send(sock, data, delay):
    for i in range(len(data)):
        sock.sendall(data[i : i + 1])
        time.sleep(delay)


def run_threads(fn, n):
    errors = []

    def wrap(i):
        try:
            fn(i)
        except Exception as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors


def test_slow_clients_served(server, guard, normal_client):
    # 20 clients each sending their request head one byte per 0.1 s (2.1 s,
    # inside idle_connection_timeout) all get correct responses.
    head = b"GET /pid HTTP/1.0\r\n\r\n"

    def slow(i):
        s = connect(server)
        try:
            slow_send(s, head, 0.1)
            code, _, body = sp.read_response(s)
            assert code == 200 and json.loads(body)["pid"] == server.pid
        finally:
            s.close()

    run_threads(slow, 20)
    check_normal(normal_client)


def test_slow_body_served(server, guard, normal_client):
    # A body trickled in 0.1 s apart but finished inside body_timeout.
    s = connect(server)
    try:
        body = bytes(range(1, 13))
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n")
        slow_send(s, body, 0.1)
        code, _, resp = sp.read_response(s)
        assert code == 200
        assert json.loads(resp) == {"length": 12, "sum": sum(body)}
    finally:
        s.close()
    check_normal(normal_client)


def test_idle_timeout_closes_slow_head(server, guard, normal_client):
    # A head that never completes (a byte every 0.5 s) is cut off by
    # idle_connection_timeout, which bounds the whole head read.
    s = connect(server)
    try:
        closed = sp.trickle_head(s, 0.5)
    finally:
        s.close()
    assert closed is not None, "slow head not closed"
    assert IDLE_TIMEOUT - 0.5 < closed < IDLE_TIMEOUT + 2.0, closed
    check_normal(normal_client)


def test_idle_timeout_closes_idle_keepalive(server, guard):
    s = connect(server)
    try:
        assert sp.get(server.port, sock=s)[0] == 200
        t0 = time.monotonic()
        waited = sp.wait_closed(s, IDLE_TIMEOUT + 3)
    finally:
        s.close()
    assert waited is not None, "idle keep-alive connection not closed"
    assert IDLE_TIMEOUT - 0.5 < time.monotonic() - t0 < IDLE_TIMEOUT + 2.0


def test_body_timeout_closes_slow_body(server, guard, normal_client):
    s = connect(server)
    t0 = time.monotonic()
    closed = None
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            try:
                s.sendall(b"z")
            except OSError:
                closed = time.monotonic() - t0
                break
            if sp.wait_closed(s, 0.3) is not None:
                closed = time.monotonic() - t0
                break
            s.setblocking(True)
    finally:
        s.close()
    assert closed is not None, "slow body not closed"
    assert BODY_TIMEOUT - 0.3 < closed < BODY_TIMEOUT + 2.0, closed
    check_normal(normal_client)
    # upstream logs this at INFO on tornado.general (not shown by default);
    # the connection must simply be gone.


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_vanish_mid_header(server, guard, normal_client, how):
    for i in range(50):
        s = connect(server)
        s.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\nX-Part: " + b"p" * i)
        if i % 5 == 0:
            time.sleep(0.02)
        sp.rst_close(s) if how == "rst" else s.close()
    check_normal(normal_client)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_vanish_mid_body(server, guard, normal_client, how):
    for i in range(30):
        s = connect(server)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        s.sendall(b"b" * (1000 * i + 1))
        time.sleep(0.01)
        sp.rst_close(s) if how == "rst" else s.close()
    check_normal(normal_client)


@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("read", [0, 200000])
def test_vanish_mid_response(server, guard, normal_client, how, read):
    # 8 clients ask for 32 MB streamed responses, read `read` bytes and go.
    before = sp.get_json(server.port, "/stats")

    def one(i):
        s = connect(server)
        s.sendall(b"GET /big?size=33554432 HTTP/1.1\r\nHost: t\r\n\r\n")
        got = 0
        while got < read:
            d = s.recv(65536)
            assert d
            got += len(d)
        time.sleep(0.1)
        sp.rst_close(s) if how == "rst" else s.close()

    run_threads(one, 8)

    def settled():
        st = sp.get_json(server.port, "/stats")
        return st if st["big_active"] == before["big_active"] else None

    st = sp.wait_for(settled, 10)
    assert st, "streamed responses still running: %s" % sp.get_json(server.port, "/stats")
    assert st["big_started"] == before["big_started"] + 8
    assert st["big_aborted"] == before["big_aborted"] + 8
    check_normal(normal_client)


GARBAGE = [
    b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
    b"HELLO\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"h" * 70000 + b"\r\n\r\n",
    b"\r\n" * 5000,
    bytes(range(256)) * 40,
]


def garbage_outcome(port, payload):
    """(status line or None, closed?) for one garbage payload."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        try:
            s.sendall(payload)
        except OSError:
            pass
        data = b""
        s.settimeout(5)
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                return (data.split(b"\r\n", 1)[0] or None, False)
            if not d:
                break
            data += d
        return (data.split(b"\r\n", 1)[0] or None, True)
    finally:
        s.close()


@pytest.mark.parametrize("i", range(len(GARBAGE)))
def test_garbage(server, guard, normal_client, i):
    status, closed = garbage_outcome(server.port, GARBAGE[i])
    assert closed, "connection left open after garbage (status %r)" % status
    assert status in (None, b"HTTP/1.1 400 Bad Request"), status
    check_normal(normal_client, min_requests=1)


def test_garbage_same_as_upstream():
    """Each garbage payload gets the same answer from both servers."""
    outcomes = {}
    for mode in sp.MODES:
        srv = sp.ServerProc(mode)
        try:
            outcomes[mode] = [garbage_outcome(srv.port, g) for g in GARBAGE]
            assert srv.alive()
        finally:
            srv.cleanup()
    diffs = [
        (i, outcomes["upstream"][i], outcomes["tornado_c"][i])
        for i in range(len(GARBAGE))
        if outcomes["upstream"][i] != outcomes["tornado_c"][i]
    ]
    assert not diffs, diffs


def test_many_bad_clients_at_once(server, guard, normal_client):
    """All kinds of bad clients together, while the normal client runs."""

    def bad(i):
        kind = i % 5
        s = connect(server)
        try:
            if kind == 0:
                slow_send(s, b"GET /pid HTTP/1.0\r\n\r\n", 0.05)
                assert sp.read_response(s)[0] == 200
            elif kind == 1:
                s.sendall(b"GET /pid HTTP/1.1\r\nHo")
                time.sleep(0.2)
                sp.rst_close(s)
            elif kind == 2:
                s.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 99999\r\n\r\nabc")
                time.sleep(0.2)
                sp.rst_close(s)
            elif kind == 3:
                s.sendall(b"GET /big?size=16777216 HTTP/1.1\r\n\r\n")
                s.recv(1000)
                sp.rst_close(s)
            else:
                s.sendall(os.urandom(3000) + b"\r\n\r\n")
                sp.wait_closed(s, 5)
        finally:
            s.close()

    run_threads(bad, 40)
    check_normal(normal_client)


IDLE_CONNS = 10000  # the number of concurrent keep-alive connections
IDLE_CYCLES = 2
# RSS is read after the app ran gc.collect() + malloc_trim(0) (POST /trim):
# glibc keeps freed heap mapped, so untrimmed RSS after a close says little.
# - no leak: each later round of IDLE_CONNS connections peaks at most
#   RSS_REPEAT_MARGIN x (first round's growth) above the first round's peak,
#   and the trimmed RSS after each round stays within the same margin of the
#   trimmed RSS after the first round;
# - return to baseline (tornado_c): after the close + trim, RSS is within
#   2 MiB + RSS_RETURN_MARGIN x growth of the baseline.  Measured with 10,000
#   connections: +23 MiB with them open (+36 MiB before idle connections
#   stopped holding write and header buffers, docs/memory.md), +11 MiB after
#   they went (the same after every round: no leak).  The rest is CPython's
#   small-object allocator: the live blocks are back to the baseline's
#   (sys._debugmallocstats), but 8 of its 1 MiB arenas stay mapped because a
#   few long-lived objects were allocated among the connections' ones.
#   Upstream Tornado keeps more (+91 MiB open, +39 MiB after), so for
#   upstream only the no-leak part is asserted; the numbers are in the
#   assertion messages.
RSS_RETURN_MARGIN = 0.5
RSS_REPEAT_MARGIN = 0.25


# tornado_c's server only: upstream's figures for the same 10,000 connections
# (the comparison in the comment above) come from benchmarks/idle_conns.py; a
# test of plain Tornado here would check nothing of ours and cost CI ~1.5 min.
@pytest.mark.parametrize("mode", ["tornado_c"])
def test_idle_keepalive_connections(mode):
    """IDLE_CONNS keep-alive connections, each after one request, stay open
    while a normal client is still served; once they close, fds return to
    the baseline and RSS returns close to it (see benchmarks/idle_conns.py
    for the 10,000-connection measurement)."""
    sp.raise_nofile()
    srv = sp.ServerProc(mode)
    try:
        sp.close_all(sp.open_idle(srv.port, 200))  # warm-up
        sp.wait_for(lambda: sp.fd_count(srv.pid) <= 20, 5)
        base_fds = sp.fd_count(srv.pid)
        sp.trim(srv.port)
        base_rss = sp.settle_rss(srv.pid)
        peaks, afters = [], []
        for cycle in range(IDLE_CYCLES):
            socks = sp.open_idle(srv.port, IDLE_CONNS)
            try:
                assert sp.fd_count(srv.pid) >= base_fds + IDLE_CONNS
                peaks.append(sp.settle_rss(srv.pid))
                t0 = time.monotonic()
                assert sp.get_json(srv.port)["pid"] == srv.pid
                assert time.monotonic() - t0 < MAX_LATENCY
                for s in socks[:: IDLE_CONNS // 10]:  # the idle ones still work
                    assert sp.get(srv.port, sock=s)[0] == 200
            finally:
                sp.close_all(socks)
            assert sp.wait_for(lambda: sp.fd_count(srv.pid) <= base_fds, 20), (
                "fds %d, baseline %d" % (sp.fd_count(srv.pid), base_fds)
            )
            sp.trim(srv.port)
            afters.append(sp.settle_rss(srv.pid))
        growth = peaks[0] - base_rss
        msg = "RSS KiB: baseline %d, peaks with %d idle conns %s, after close+trim %s" % (
            base_rss, IDLE_CONNS, peaks, afters,
        )
        assert growth > 0, msg
        assert max(peaks[1:]) <= peaks[0] + RSS_REPEAT_MARGIN * growth, msg
        assert max(afters[1:]) <= afters[0] + RSS_REPEAT_MARGIN * growth, msg
        if mode == "tornado_c":
            assert afters[-1] <= base_rss + 2048 + RSS_RETURN_MARGIN * growth, msg
        assert srv.alive()
        assert "Traceback" not in srv.stderr_text()
    finally:
        srv.cleanup()


# Scenarios replayed byte for byte against both servers; the bytes each server
# sends back until it closes (or goes quiet) must be the same, apart from the
# Date header.  (steps: bytes to send or a float = seconds to sleep;
# "SHUT_WR" half-closes the client side.)
H = b"Host: t\r\n"
SCENARIOS = {
    "pipelined_then_close": [
        b"GET /pid HTTP/1.1\r\n" + H + b"\r\nGET /stats HTTP/1.1\r\n" + H + b"\r\nGET /p", 0.3,
    ],
    "half_close_after_request": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n\r\nabc", "SHUT_WR", 0.5,
    ],
    "half_close_mid_body": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 30\r\n\r\nabc", "SHUT_WR", 0.5,
    ],
    "half_close_mid_head": [b"GET /pid HTTP/1.1\r\n" + H, "SHUT_WR", 0.5],
    "expect_100_continue": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        0.3, b"wxyz", 0.3,
    ],
    "chunked_body_ok": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n",
        0.1, b"3\r\nabc\r\n", 0.1, b"2;ext=1\r\nde\r\n0\r\n\r\n", 0.3,
    ],
    "chunked_truncated_then_close": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", 0.2,
    ],
    "body_too_large_chunked": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"FFFFFFFF\r\n" + b"a" * 1000, 0.5,
    ],
    "content_length_too_large": [
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 999999999999\r\n\r\nabc", 0.5,
    ],
    "http10_keepalive": [
        b"GET /pid HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0.3,
        b"GET /pid HTTP/1.0\r\n\r\n", 0.3,
    ],
    "connection_close": [b"GET /pid HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", 0.3],
    "many_headers": [
        b"GET /pid HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n", 0.3,
    ],
    "obs_fold_header": [b"GET /pid HTTP/1.1\r\n" + H + b"X-A: a\r\n  b\r\n\r\n", 0.3],
    "lf_only_line_endings": [b"GET /pid HTTP/1.1\n" + b"Host: t\n\n", 0.3],
    "bare_cr_in_header": [b"GET /pid HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 0.3],
    "absolute_uri": [b"GET http://t/pid HTTP/1.1\r\n" + H + b"\r\n", 0.3],
    "404_then_ok": [
        b"GET /nope HTTP/1.1\r\n" + H + b"\r\n", 0.2, b"GET /pid HTTP/1.1\r\n" + H + b"\r\n", 0.3,
    ],
    "head_request": [b"HEAD /pid HTTP/1.1\r\n" + H + b"\r\n", 0.3],
    "body_on_get_then_pipeline": [
        b"GET /pid HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhelloGET /pid HTTP/1.1\r\n" + H + b"\r\n",
        0.3,
    ],
}


def replay(port, steps, quiet=1.5):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    out = b""
    try:
        for step in steps:
            if isinstance(step, float):
                time.sleep(step)
            elif step == "SHUT_WR":
                s.shutdown(socket.SHUT_WR)
            else:
                try:
                    s.sendall(step)
                except OSError as e:
                    out += b"<send error %s>" % type(e).__name__.encode()
                    break
        s.settimeout(quiet)
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                out += b"<open>"
                break
            except ConnectionResetError:
                out += b"<reset>"
                break
            if not d:
                out += b"<eof>"
                break
            out += d
    finally:
        s.close()
    return out


def normalize(out, pid):
    import re

    out = re.sub(rb"Date: [^\r\n]*", b"Date: X", out)
    out = out.replace(str(pid).encode(), b"PID")
    # the app names its own connection/loop types
    out = re.sub(rb'"connection": "[^"]*", "loop": "[^"]*"', b'"connection": X, "loop": X', out)
    out = re.sub(rb"Content-Length: \d+(\r\n[^<]*?\"connection\": X)", rb"Content-Length: N\1", out)
    out = re.sub(rb'Etag: "[0-9a-f]+"', b'Etag: "X"', out)
    out = re.sub(rb'"(big|wait|pid|malloc)_[a-z_]+": \d+', b'"counter": N', out)
    out = re.sub(rb'"rss_kib": \d+', b'"rss_kib": N', out)
    # /stats bodies: the length varies with the numbers
    out = re.sub(rb"Content-Length: \d+(\r\n[^<]*?\"rss_kib\": N)", rb"Content-Length: N\1", out)
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_same_as_upstream(name, differential_servers):
    results = {}
    for mode, srv in differential_servers.items():
        results[mode] = normalize(replay(srv.port, SCENARIOS[name]), srv.pid)
        assert srv.alive(), srv.stderr_text()
    assert results["tornado_c"] == results["upstream"]


@pytest.fixture(scope="module")
def differential_servers():
    srvs = {m: sp.ServerProc(m, "--body-timeout", "5") for m in sp.MODES}
    yield srvs
    for s in srvs.values():
        s.cleanup()


def test_slowloris_many(server, guard, normal_client):
    """300 connections each trickling an endless head: the normal client is
    unaffected, and idle_connection_timeout disposes of all of them."""
    socks = []
    try:
        for i in range(300):
            s = connect(server)
            s.sendall(b"GET /pid HTTP/1.1\r\n")
            socks.append(s)
        t0 = time.monotonic()
        while time.monotonic() - t0 < IDLE_TIMEOUT + 2.5:
            for s in socks:
                try:
                    s.send(b"X-a: b\r\n")
                except OSError:
                    pass
            time.sleep(0.5)
        open_ = [s for s in socks if sp.wait_closed(s, 0.01) is None]
        assert not open_, "%d slow heads still open after idle_connection_timeout" % len(open_)
    finally:
        for s in socks:
            s.close()
    check_normal(normal_client)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_vanish_unread_pipeline(server, guard, normal_client, how):
    """A client pipelines 3,000 requests, never reads, and goes away."""
    s = connect(server)
    s.settimeout(5)
    req = b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"
    try:
        for _ in range(30):
            s.sendall(req * 100)
    except OSError:
        pass
    time.sleep(0.5)
    sp.rst_close(s) if how == "rst" else s.close()
    check_normal(normal_client)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_vanish_single_big_write(server, guard, normal_client, how):
    """64 MB written in one go; the client reads 100 KB and leaves.  (Building
    the 64 MB body stalls the app's loop for ~0.2 s in both servers, so the
    normal client runs on for a second afterwards before latency is judged.)"""
    s = connect(server)
    s.sendall(b"GET /big?size=67108864&flush=0 HTTP/1.1\r\nHost: t\r\n\r\n")
    got = 0
    while got < 100000:
        d = s.recv(65536)
        assert d
        got += len(d)
    sp.rst_close(s) if how == "rst" else s.close()
    time.sleep(1.0)
    check_normal(normal_client)


def test_idle_memory_after_large_body():
    """Keep-alive connections that each POSTed a 60 KB body and went idle
    must not cost much more memory than under upstream Tornado (at most
    2x + 4 KiB per connection).  Regression: the C server kept the body
    coalescing buffer (and the parser a large head buffer) for the life of
    the connection, ~68 KB per idle connection."""
    n, body = 500, 60000
    req = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % body) + b"b" * body
    sp.raise_nofile()
    per_conn = {}
    for mode in sp.MODES:
        srv = sp.ServerProc(mode)
        try:
            sp.close_all(sp.open_idle(srv.port, 50))
            sp.trim(srv.port)
            base = sp.settle_rss(srv.pid)
            socks = sp.open_idle(srv.port, n, request=req)
            try:
                per_conn[mode] = (sp.settle_rss(srv.pid) - base) * 1024 / n
            finally:
                sp.close_all(socks)
        finally:
            srv.cleanup()
    assert per_conn["tornado_c"] <= 2 * per_conn["upstream"] + 4096, per_conn


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_vanish_during_async_handler(server, guard, normal_client, how):
    """Clients leave while their handler awaits: on_connection_close() runs
    for each (as upstream), the handlers finish, nothing is written to the
    dead connections."""
    before = sp.get_json(server.port, "/stats")
    socks = []
    for _ in range(20):
        s = connect(server)
        s.sendall(b"GET /wait?s=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        socks.append(s)
    time.sleep(0.3)
    for s in socks:
        sp.rst_close(s) if how == "rst" else s.close()

    def done():
        st = sp.get_json(server.port, "/stats")
        return st if st["wait_finished"] - before["wait_finished"] == 20 else None

    st = sp.wait_for(done, 10)
    assert st, sp.get_json(server.port, "/stats")
    assert st["wait_started"] - before["wait_started"] == 20
    assert st["wait_conn_closed"] - before["wait_conn_closed"] == 20, st
    check_normal(normal_client)


def test_slow_reader_bounded_memory(server, guard, normal_client):
    """A client that reads a 64 MB streamed response slowly: flush() makes
    the handler wait, so the server does not buffer the whole response."""
    st0 = sp.get_json(server.port, "/stats")
    s = connect(server)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /big?size=67108864 HTTP/1.1\r\nHost: t\r\n\r\n")
    got = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 2.0:
            d = s.recv(16384)
            assert d
            got += len(d)
            time.sleep(0.01)
        st = sp.get_json(server.port, "/stats")
    finally:
        sp.rst_close(s)
    assert st["big_active"] == st0["big_active"] + 1
    assert st["rss_kib"] - st0["rss_kib"] < 16 * 1024, (st0["rss_kib"], st["rss_kib"], got)
    check_normal(normal_client)
