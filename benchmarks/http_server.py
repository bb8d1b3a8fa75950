"""HTTP server benchmark: upstream Tornado vs ``python -m tornado_c``.

    python benchmarks/http_server.py [--duration 5] [--connections 50] [--json out.json]

Two apps, each run as a server process pinned to CPU 0 (taskset) and loaded
with ``wrk -t1 -cN`` pinned to CPU 1:

* hello -- a tornado.web "Hello, world" RequestHandler (the issue's target
           app; most of its time is tornado.web's Python code);
* raw   -- a bare HTTPServerConnectionDelegate writing a fixed response
           through request.connection (what the HTTP server itself costs).

For each it reports requests/s and the server's CPU time per request
(utime+stime from /proc/<pid>/stat over the wrk window / requests), the
number that does not depend on how busy the machine is.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

APPS = {
    "hello": r'''
import asyncio, sys
import tornado.web
class H(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")
async def main():
    tornado.web.Application([(r"/", H)]).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
''',
    "raw": r'''
import asyncio, sys
from tornado import httpserver, httputil
START = httputil.ResponseStartLine("HTTP/1.1", 200, "OK")
class D(httputil.HTTPMessageDelegate):
    def __init__(self, c):
        self.c = c
    def finish(self):
        h = httputil.HTTPHeaders({"Content-Length": "12", "Content-Type": "text/plain"})
        self.c.write_headers(START, h, b"Hello, world")
        self.c.finish()
class A(httputil.HTTPServerConnectionDelegate):
    def start_request(self, server_conn, request_conn):
        return D(request_conn)
async def main():
    httpserver.HTTPServer(A()).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
''',
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(app, mode, duration, connections):
    port = free_port()
    path = os.path.join("/tmp", "tc_bench_http_%s.py" % app)
    with open(path, "w") as f:
        f.write(APPS[app])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, path, str(port)]
    if mode == "tornado_c":
        cmd = [sys.executable, "-m", "tornado_c", path, str(port)]
    srv = subprocess.Popen(["taskset", "-c", "0", *cmd], env=env, cwd="/tmp")
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        t0 = cpu_seconds(srv.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c%d" % connections,
                              "-d%ds" % duration, "http://127.0.0.1:%d/" % port],
                             capture_output=True, text=True).stdout
        t1 = cpu_seconds(srv.pid)
    finally:
        srv.kill()
        srv.wait()
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx.*|Socket errors.*", out)
    return {"rps": rps, "requests": reqs, "cpu_us_per_req": (t1 - t0) * 1e6 / max(reqs, 1),
            "errors": errors.group(0) if errors else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not (shutil.which("wrk") and shutil.which("taskset")):
        sys.exit("needs wrk and taskset")
    results = {}
    for app in APPS:
        for mode in ("upstream", "tornado_c"):
            results[(app, mode)] = r = run_one(app, mode, args.duration, args.connections)
            print("%-6s %-10s %9.0f req/s %8.1f CPU-us/req%s" % (
                app, mode, r["rps"], r["cpu_us_per_req"], "  " + r["errors"] if r["errors"] else ""))
        up, tc = results[(app, "upstream")], results[(app, "tornado_c")]
        print("%-6s ratio      %9.2fx req/s %7.2fx less CPU/req" % (
            app, tc["rps"] / up["rps"], up["cpu_us_per_req"] / tc["cpu_us_per_req"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"%s/%s" % k: v for k, v in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
