"""Many long-poll connections in one process, then one wake-up for all of them.

The server is benchmarks/apps/longpoll_app.py (plain Tornado) under upstream
Tornado and under tornado_c, RLIMIT_NOFILE raised to 20,000 for both.  For
each: N clients (default 19,000, from several 127.0.0.x source addresses) each
send ``GET /poll`` and wait (the handler awaits one shared Future); then one
``POST /wake`` resolves the Future and every client must get its response.

Reported per server: RSS with the N waiting connections (bytes each, against
the RSS before, both after gc + malloc_trim), the time from sending the wake
request until the last of the N clients has its whole response, the server's
CPU time (utime+stime) over that window, and a normal client (a separate
process doing ``GET /pid`` every 20 ms on 127.0.0.1) during the wake-up: its
requests, errors and slowest answer.  Wall-clock times depend on the load of
the machine: compare the two servers of one run.

    python benchmarks/longpoll_scale.py [-n 19000] [--modes upstream,tornado_c] [--json out.json]
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import _serverproc as sp  # noqa: E402
import conn_memory as cm  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
NORMAL_CLIENT = r"""
import json, sys
sys.path.insert(0, %r)
import _serverproc as sp
c = sp.NormalClient(int(sys.argv[1]), interval=0.02)
c.start()
while not c.latencies:
    c._stop_ev.wait(0.01)
print("STARTED", flush=True)
sys.stdin.read()
lat, err = c.finish()
print(json.dumps({"latencies": lat, "errors": [str(e) for e in err]}))
"""


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def measure(mode, n):
    srv = sp.ServerProc(mode, app=cm.APP)
    port = srv.port
    out = {"mode": mode, "connections": n}
    try:
        w = cm.open_conns(port, 200, "poll")  # warm-up
        cm.post(port, "/wake")
        cm.read_all_responses(w, 30)
        sp.close_all(w)
        sp.wait_for(lambda: sp.fd_count(srv.pid) <= 20, 10)
        cm.post(port, "/trim")
        rss0 = sp.settle_rss(srv.pid)
        t0 = time.monotonic()
        socks = cm.open_conns(port, n, "poll")
        out["open_seconds"] = round(time.monotonic() - t0, 2)
        try:
            cm.post(port, "/trim")
            rss1 = sp.settle_rss(srv.pid)
            out["rss_before_kib"] = rss0
            out["rss_waiting_kib"] = rss1
            out["bytes_per_waiting_conn"] = round((rss1 - rss0) * 1024 / n)
            out["fds_waiting"] = sp.fd_count(srv.pid)
            normal = subprocess.Popen(
                [sys.executable, "-c", NORMAL_CLIENT % os.path.join(os.path.dirname(HERE), "tests"),
                 str(port)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            normal.stdout.readline()  # STARTED: its first answer came
            time.sleep(0.2)
            cpu0 = cpu_seconds(srv.pid)
            t0 = time.monotonic()
            woke = cm.post(port, "/wake")
            last, done, bodies = cm.read_all_responses(socks, 120)
            wake_s = time.monotonic() - t0 if last is None else last
            cpu1 = cpu_seconds(srv.pid)
            time.sleep(0.3)
            normal.stdin.close()
            res = json.loads(normal.stdout.read())
            normal.wait(60)
            out["woken"] = woke["waiting"]
            out["answered"] = done
            out["distinct_bodies"] = len(bodies)
            out["seconds_until_all_answered"] = round(wake_s, 3)
            out["server_cpu_seconds_wake"] = round(cpu1 - cpu0, 2)
            out["normal_requests"] = len(res["latencies"])
            out["normal_errors"] = res["errors"]
            out["normal_max_latency_ms"] = round(max(res["latencies"]) * 1000, 1)
            # every long-poll client got the one answer (the normal client's
            # errors are reported, not part of this: upstream times it out)
            out["ok"] = done == n and woke["waiting"] == n and len(bodies) == 1
        finally:
            sp.close_all(socks)
        out["server_alive"] = srv.alive()
        out["server_traceback"] = "Traceback" in srv.stderr_text()
    finally:
        srv.cleanup()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", type=int, default=19000)
    p.add_argument("--modes", default="upstream,tornado_c")
    p.add_argument("--quick", action="store_true", help="n = 2000")
    p.add_argument("--json")
    args = p.parse_args()
    n = 2000 if args.quick else args.n
    limit = sp.raise_nofile(sp.NOFILE)
    if limit < n + 200:
        sys.exit("RLIMIT_NOFILE is %d, need > %d" % (limit, n + 200))
    results = []
    for mode in args.modes.split(","):
        r = measure(mode, n)
        results.append(r)
        print("%-10s n=%d  %5d B/waiting conn  all %d answered in %.3f s (server CPU %.2f s)  "
              "normal client: %d requests, max %.1f ms, errors %d  ok=%s" % (
                  mode, n, r["bytes_per_waiting_conn"], r["answered"],
                  r["seconds_until_all_answered"], r["server_cpu_seconds_wake"],
                  r["normal_requests"], r["normal_max_latency_ms"], len(r["normal_errors"]),
                  r["ok"]), flush=True)
    comps = []
    for key, label, unit in (
        ("bytes_per_waiting_conn", "long-poll connection, bytes each", "B"),
        ("seconds_until_all_answered", "wake-up: all answered", "s"),
        ("server_cpu_seconds_wake", "wake-up: server CPU", "s"),
    ):
        vals = {r["mode"]: r[key] for r in results}
        ratio = (vals["upstream"] / vals["tornado_c"]
                 if vals.get("upstream") and vals.get("tornado_c") else None)
        comps.append({"label": "%s (n=%d)" % (label, n), "unit": unit, "values": vals,
                      "ratio": ratio, "ratio_label": "upstream / tornado_c"})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version.split()[0], "results": results,
                       "comparisons": comps}, f, indent=2)
    bad = [r for r in results if not (r["ok"] and r["server_alive"])
           or (r["mode"] == "tornado_c" and r["normal_errors"])]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
