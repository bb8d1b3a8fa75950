"""Memory per idle keep-alive HTTP connection, upstream Tornado vs tornado_c.

For each server (examples/robust_app.py in a subprocess, ``python app.py`` vs
``python -m tornado_c app.py``, RLIMIT_NOFILE raised to 20000 for both
processes) this:

1. warms the server up and records its VmRSS and fd count (baseline);
2. opens N connections (default 10,000) on 127.0.0.1, each sends one
   ``GET /pid`` and reads the response, then stays open and idle;
   (``--body B``: a ``POST /echo`` with a B-byte body instead of the GET);
3. records VmRSS with the N idle connections, checks a new client is still
   served (and its latency), then closes all N (RST, so no TIME_WAIT piles up);
4. records VmRSS and fd count after the close, and VmRSS again after the app
   ran gc.collect() + malloc_trim(0) (POST /trim; the baseline is taken after
   a trim too): glibc keeps freed heap memory mapped, so without the trim RSS
   after the close says little about whether the connections' memory was freed.

memory per idle connection = (RSS with N idle connections - RSS before) / N.

    python benchmarks/idle_conns.py [-n 10000] [--json out.json]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

import _serverproc as sp  # noqa: E402


def idle_request(body):
    if not body:
        return b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"
    return (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % body) + b"b" * body


def measure(mode, n, warm=200, body=0):
    srv = sp.ServerProc(mode)
    try:
        info = sp.get_json(srv.port)
        # warm-up: a first batch of connections, opened and closed, so that
        # one-time allocations (code objects, caches, pools) are in the baseline
        sp.close_all(sp.open_idle(srv.port, warm))
        sp.wait_for(lambda: sp.fd_count(srv.pid) <= 20, 5)
        fds_before = sp.fd_count(srv.pid)
        sp.trim(srv.port)
        rss_before = sp.settle_rss(srv.pid)
        t0 = time.monotonic()
        socks = sp.open_idle(srv.port, n, request=idle_request(body))
        open_s = time.monotonic() - t0
        rss_idle = sp.settle_rss(srv.pid)
        fds_idle = sp.fd_count(srv.pid)
        t1 = time.monotonic()
        probe = sp.get_json(srv.port)
        probe_ms = (time.monotonic() - t1) * 1000
        # the idle connections still work
        for s in (socks[0], socks[-1]):
            assert sp.get(srv.port, sock=s)[0] == 200
        sp.close_all(socks)
        sp.wait_for(lambda: sp.fd_count(srv.pid) <= fds_before, 30)
        fds_after = sp.fd_count(srv.pid)
        rss_after = sp.settle_rss(srv.pid)
        sp.trim(srv.port)
        rss_trim = sp.settle_rss(srv.pid)
        alive = srv.alive()
    finally:
        srv.cleanup()
    return {
        "mode": mode,
        "connection_type": info["connection"],
        "loop_type": info["loop"],
        "connections": n,
        "request_body_bytes": body,
        "open_seconds": round(open_s, 3),
        "rss_before_kib": rss_before,
        "rss_idle_kib": rss_idle,
        "rss_after_close_kib": rss_after,
        "rss_after_close_and_trim_kib": rss_trim,
        "bytes_per_idle_connection": round((rss_idle - rss_before) * 1024 / n),
        "fds_before": fds_before,
        "fds_idle": fds_idle,
        "fds_after_close": fds_after,
        "probe_latency_ms_while_idle": round(probe_ms, 2),
        "probe_pid_ok": probe["pid"] == srv.pid,
        "server_alive": alive,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=10000, help="idle connections (default 10000)")
    p.add_argument("--modes", default="upstream,tornado_c")
    p.add_argument("--body", type=int, default=0,
                   help="each connection first POSTs a body of this many bytes "
                   "(default 0: a GET) before it goes idle")
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args()
    limit = sp.raise_nofile(max(sp.NOFILE, args.n + 1000))
    if limit < args.n + 100:
        sys.exit("RLIMIT_NOFILE is %d, need > %d" % (limit, args.n + 100))
    results = [measure(m, args.n, body=args.body) for m in args.modes.split(",")]
    hdr = "%-10s %8s %10s %10s %10s %10s %12s %9s %9s %9s" % (
        "server", "conns", "RSS0 KiB", "RSSidle", "RSSafter", "RSStrim", "B/idle conn",
        "fds0", "fdsidle", "fdsafter",
    )
    print(hdr)
    for r in results:
        print(
            "%-10s %8d %10d %10d %10d %10d %12d %9d %9d %9d"
            % (
                r["mode"], r["connections"], r["rss_before_kib"], r["rss_idle_kib"],
                r["rss_after_close_kib"], r["rss_after_close_and_trim_kib"],
                r["bytes_per_idle_connection"],
                r["fds_before"], r["fds_idle"], r["fds_after_close"],
            )
        )
    for r in results:
        print(
            "%s: opened in %.2f s; a new client while idle: %.2f ms (pid ok: %s)"
            % (r["mode"], r["open_seconds"], r["probe_latency_ms_while_idle"], r["probe_pid_ok"])
        )
    if len(results) == 2 and results[1]["bytes_per_idle_connection"] > 0:
        print(
            "upstream / tornado_c memory per idle connection: %.2fx"
            % (results[0]["bytes_per_idle_connection"] / results[1]["bytes_per_idle_connection"])
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "results": results}, f, indent=2)
    ok = all(r["server_alive"] and r["probe_pid_ok"] and r["fds_after_close"] <= r["fds_before"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
