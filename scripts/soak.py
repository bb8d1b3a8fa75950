"""Soak test: many requests at many connections against one server process
(issue 14).  Loopback only, bounded in time.

    python scripts/soak.py [--requests 1000000] [--connections 1000]
                           [--mode tornado_c|upstream] [--tracemalloc] [--close]
    python scripts/soak.py --warmup-study [--runs 4] [--seconds 8]

Default: examples/robust_app.py under ``python -m tornado_c`` (C loop, C
HTTP server, C web handler); one wrk run (``apt-get install wrk``) drives
GET /pid at --connections and is stopped once the server has answered
--requests of them (the app counts them; /stats is read every second).  At
the end of each quarter of the requests /stats gives RSS, malloc's figures
(in use, held from the OS) and, with --tracemalloc (PYTHONTRACEMALLOC=1 in
the server: slow), the memory tracemalloc traces.  It fails when wrk reports any socket error or
non-2xx answer, the server dies or logs a traceback, or the RSS at the end of
the last quarter is more than 5% (plus 2 MiB) over the end of the second.

--warmup-study: the issue's "RSS grows 11% between two 8 s wrk runs at
c=1000".  Several wrk runs of --seconds each, with RSS and malloc's figures
after each, then POST /trim (gc.collect() and malloc_trim(0)) and the same
figures again: RSS that stops growing after the first runs, with malloc's
in-use figure flat and the growth given back (or kept as free memory inside
malloc's arenas), is allocator warm-up, not a leak.

Prints one line per quarter (or run) and a summary; exits 1 on failure.
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APP = os.path.join(ROOT, "examples", "robust_app.py")


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def http(port, method, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(("%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                   "Connection: close\r\n\r\n" % (method, path)).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split()[1] == b"200", head
    return json.loads(body)


class Server:
    def __init__(self, mode, tracemalloc=False):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
        if tracemalloc:
            env["PYTHONTRACEMALLOC"] = "1"
        cmd = [sys.executable] + (["-m", "tornado_c"] if mode == "tornado_c" else []) + [APP]
        self.err = open("/tmp/soak_server_%d.log" % os.getpid(), "w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, env=env,
                                     text=True, cwd="/tmp")
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit("server did not start: %r\n%s" % (line, self.log()))
        self.port = int(line.split()[1])
        self.pid = self.proc.pid
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        info = http(self.port, "GET", "/pid")
        print("server: pid %d, %s on %s" % (self.pid, info["connection"], info["loop"]))

    def log(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def stats(self):
        return http(self.port, "GET", "/stats")

    def finish(self):
        """Stop the server; False (and why, printed) if it had died or
        logged a traceback."""
        alive = self.stop()
        log = self.log()
        if not alive:
            print("server DIED:\n" + log)
        if "Traceback" in log:
            print("server logged a traceback:\n" + log[:4000])
        return alive and "Traceback" not in log

    def stop(self):
        alive = self.proc.poll() is None
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        return alive


def wrk(port, connections, seconds, threads=2):
    out = subprocess.run(
        ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "30s",
         "http://127.0.0.1:%d/pid" % port],
        capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    errors = {}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors.update(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors["non-2xx"] = int(m.group(1))
    return requests, {k: v for k, v in errors.items() if v}, out


def fmt_stats(st):
    out = "rss %d KiB, malloc in use %s KiB, held %s KiB" % (
        st["rss_kib"], st.get("malloc_in_use_kib"), st.get("malloc_from_os_kib"))
    if st.get("traced_kib") is not None:
        out += ", traced %d KiB" % st["traced_kib"]
    return out


def soak(args):
    srv = Server(args.mode, args.tracemalloc)
    ok = True
    try:
        base = srv.stats()
        print("start: " + fmt_stats(base))
        # one long wrk run, stopped (SIGINT: wrk prints its summary) once the
        # server has answered --requests GET /pid; /stats every second gives
        # the count and the memory figures, read at each quarter's end
        t0 = time.monotonic()
        extra = ["-H", "Connection: close"] if args.close else []
        proc = subprocess.Popen(
            ["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.max_seconds,
             "--timeout", "30s"] + extra + ["http://127.0.0.1:%d/pid" % srv.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        quarters = []
        rss_max = [0, 0, 0, 0]
        while proc.poll() is None:
            time.sleep(1)
            st = srv.stats()
            done = st["pid_requests"] - base["pid_requests"]
            q = min(3, done * 4 // args.requests)
            rss_max[q] = max(rss_max[q], st["rss_kib"])
            while len(quarters) < 4 and done >= args.requests * (len(quarters) + 1) // 4:
                quarters.append((time.monotonic() - t0, done, st))
                print("quarter %d: %d requests at %.0f s; %s" % (
                    len(quarters), done, time.monotonic() - t0, fmt_stats(st)), flush=True)
            if len(quarters) == 4:
                proc.send_signal(signal.SIGINT)
                break
        out = proc.communicate(timeout=60)[0]
        elapsed = time.monotonic() - t0
        print(out.rstrip())
        m = re.search(r"(\d+) requests in", out)
        total = int(m.group(1)) if m else 0
        errors = {}
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            errors.update((k, int(v)) for k, v in zip(("connect", "read", "write", "timeout"),
                                                     m.groups()) if int(v))
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if m:
            errors["non-2xx"] = int(m.group(1))
        if len(quarters) < 4:
            print("wrk ended before %d requests (%d after %d s)" % (
                args.requests, quarters[-1][1] if quarters else 0, elapsed))
            ok = False
        else:
            for i, (el, done, st) in enumerate(quarters):
                print("quarter %d (to %d requests, %.0f s): %s; RSS max in the quarter %d KiB"
                      % (i + 1, done, el, fmt_stats(st), rss_max[i]))
            second, last = quarters[1][2]["rss_kib"], quarters[3][2]["rss_kib"]
            flat = last <= second * 1.05 + 2048
            print("wrk: %d requests in %.0f s (%.0f/s), errors %s; RSS second->last quarter "
                  "%+.1f%% (%s)" % (total, elapsed, total / elapsed, errors or 0,
                                    (last - second) * 100.0 / second, "flat" if flat else "GREW"))
            ok = ok and flat
        ok = ok and not errors
        trimmed = http(srv.port, "POST", "/trim")
        print("after gc + malloc_trim(%s): %s" % (trimmed["malloc_trim"], fmt_stats(srv.stats())))
    finally:
        ok = srv.finish() and ok
    print("soak: %s" % ("ok" if ok else "FAILED"))
    return ok


def warmup_study(args):
    srv = Server(args.mode, args.tracemalloc)
    ok = True
    try:
        base = srv.stats()
        print("start: " + fmt_stats(base))
        rows = []
        for i in range(args.runs):
            n, errors, _ = wrk(srv.port, args.connections, args.seconds)
            time.sleep(1)
            st = srv.stats()
            rows.append(st)
            prev = rows[-2]["rss_kib"] if len(rows) > 1 else None
            print("run %d: %d requests, errors %s; %s%s" % (
                i + 1, n, errors or 0, fmt_stats(st),
                "" if prev is None else "; RSS %+.1f%% on run %d" % (
                    (st["rss_kib"] - prev) * 100.0 / prev, i)))
            ok = ok and not errors
        trimmed = http(srv.port, "POST", "/trim")
        print("after gc + malloc_trim(%s): %s" % (trimmed["malloc_trim"], fmt_stats(srv.stats())))
        n, errors, _ = wrk(srv.port, args.connections, args.seconds)
        time.sleep(1)
        print("one more run after the trim: %d requests, errors %s; %s" % (
            n, errors or 0, fmt_stats(srv.stats())))
    finally:
        ok = srv.finish() and ok
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000000)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--mode", choices=("tornado_c", "upstream"), default="tornado_c")
    p.add_argument("--tracemalloc", action="store_true")
    p.add_argument("--close", action="store_true",
                   help="Connection: close on every request (a new connection each)")
    p.add_argument("--max-seconds", type=int, default=3600,
                   help="give up (fail) if the requests take longer")
    p.add_argument("--warmup-study", action="store_true")
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--seconds", type=int, default=8)
    args = p.parse_args()
    raise_nofile(args.connections * 2 + 100)
    ok = warmup_study(args) if args.warmup_study else soak(args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
