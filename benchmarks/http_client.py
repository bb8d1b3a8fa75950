"""HTTP client cost per request: upstream's AsyncHTTPClient vs the same code
under ``python -m tornado_c`` vs aiohttp's client.

One server process (``python -m tornado_c http_client.py --serve``: the C
HTTP server, not measured) answers GET /hello ("Hello, world") and GET /64k
(65536 bytes); a second port of the same server has ssl_options (Tornado's
test certificate) for the https_hello case (--cases https_hello: GET /hello
over TLS, a new TLS connection per request, one client SSLContext without
certificate checks made once and passed as ssl_options -- validate_cert=False
would make upstream's client build a context and load the system CA store
on every fetch, which is most of its cost; not run by default).  The measured process is the client, one of:
  upstream         python http_client.py --client ...   (asyncio loop,
                   upstream's SimpleAsyncHTTPClient)
  tornado_c-nohttp python -m tornado_c ... with TORNADO_C_DISABLE=http,web
                   (the C loop only)
  tornado_c        python -m tornado_c http_client.py --client ... (C loop,
                   C IOStream, request and response in C, the lean
                   per-fetch delegate of tornado_c/simple_httpclient.py)
  aiohttp          aiohttp.ClientSession on asyncio, a new connection per
                   request (force_close=True: what the simple client does)
Each client runs --concurrency fetch loops (8) until --n requests are done.

Two measures:
  --cpu        wall clock: client CPU-us per request (the client process's
               own time.process_time() around the fetch loops, after a
               warm-up) and requests per second (time.perf_counter() around
               the same loops), the client pinned to --client-cpu (1) and
               the server to --server-cpu (0) with taskset; the modes are
               interleaved (each round runs every case and mode once, the
               order of the modes rotating from round to round) and the
               median of --rounds is reported, with the ratios to
               tornado_c.  For quiet machines (what benchmarks/run.py runs as
               the ``http_client`` scenario).  Default modes: upstream,
               tornado_c, aiohttp.
  --callgrind  instructions the client executes per request, counted by
               callgrind: each (case, mode) runs with N and 2N requests and
               (Ir(2N) - Ir(N)) / N is reported (start-up cancelled out;
               repeatable on a loaded machine).  The default.

    python benchmarks/http_client.py [--cases hello,64k] [--modes ...]
        [--n 400] [--cpu] [--json out.json] [--quick]

Needs the users' build (not TORNADO_C_TEST=1) for figures worth quoting.
"""

import argparse
import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = ROOT if glob.glob(os.path.join(ROOT, "tornado_c", "_core*.so")) else ""
CASES = {"hello": "/hello", "64k": "/64k"}
MODES = ("upstream", "tornado_c-nohttp", "tornado_c", "aiohttp")
HTTPS_CASES = {"https_hello": "/hello"}  # only when asked for (--cases)
TLS_TIMEOUT = 3600
COLLECTED_RE = re.compile(r"Collected\s*:\s*(\d+)")
BODY_64K = bytes(range(256)) * 256


def serve():
    import asyncio
    import ssl

    import tornado.test
    import tornado.web

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("Hello, world")

    class Big(tornado.web.RequestHandler):
        def get(self):
            self.write(BODY_64K)

    async def main():
        app = tornado.web.Application([("/hello", Hello), ("/64k", Big)])
        server = app.listen(0, "127.0.0.1")
        port = next(iter(server._sockets.values())).getsockname()[1]
        certs = os.path.dirname(tornado.test.__file__)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(certs, "test.crt"), os.path.join(certs, "test.key"))
        tls_server = app.listen(0, "127.0.0.1", ssl_options=ctx)
        tls_port = next(iter(tls_server._sockets.values())).getsockname()[1]
        print(port, tls_port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def client(mode, port, path, n, concurrency, warmup):
    """Runs in the measured process: prints 'CPU_SECONDS REQUESTS'."""
    import asyncio

    tls = path.startswith("https:")
    if tls:
        import ssl

        path = path[len("https:"):]
        ssl_ctx = ssl.create_default_context()
        ssl_ctx.check_hostname = False
        ssl_ctx.verify_mode = ssl.CERT_NONE
    url = "%s://127.0.0.1:%d%s" % ("https" if tls else "http", port, path)
    expect = 12 if path == "/hello" else len(BODY_64K)

    if mode == "aiohttp":
        import aiohttp

        async def main():
            conn = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=conn) as session:
                async def fetch():
                    async with session.get(url, ssl=ssl_ctx if tls else None,
                                           timeout=aiohttp.ClientTimeout(total=TLS_TIMEOUT)
                                           if tls else None) as r:
                        body = await r.read()
                    if r.status != 200 or len(body) != expect:
                        raise SystemExit("bad response %s %d" % (r.status, len(body)))
                return await run_loops(fetch)
    else:
        from tornado.httpclient import AsyncHTTPClient

        async def main():
            http = AsyncHTTPClient()

            async def fetch():
                if tls:  # handshakes under callgrind are slow: no 20 s limits
                    r = await http.fetch(url, ssl_options=ssl_ctx, connect_timeout=TLS_TIMEOUT,
                                         request_timeout=TLS_TIMEOUT)
                else:
                    r = await http.fetch(url)
                if r.code != 200 or len(r.body) != expect:
                    raise SystemExit("bad response %s %d" % (r.code, len(r.body)))
            return await run_loops(fetch)

    async def run_loops(fetch):
        for _ in range(warmup):
            await fetch()
        left = [n]

        async def loop():
            while left[0] > 0:
                left[0] -= 1
                await fetch()

        t0 = time.process_time()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        wall = time.perf_counter() - w0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        return (time.process_time() - t0, wall, r1.ru_utime - r0.ru_utime,
                r1.ru_stime - r0.ru_stime)

    cpu, wall, user, system = asyncio.run(main())
    print("%.6f %d %.6f %.6f %.6f" % (cpu, n, wall, user, system), flush=True)


def env_for(mode):
    env = dict(os.environ)
    if SRC:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, env.get("PYTHONPATH")) if p)
    env.pop("TORNADO_C_DISABLE", None)
    if mode == "tornado_c-nohttp":
        env["TORNADO_C_DISABLE"] = "http,web,websocket"
    return env


def client_cmd(mode, port, case, n, concurrency, warmup):
    path = CASES[case] if case in CASES else "https:" + HTTPS_CASES[case]
    args = [HERE, "--client", mode, str(port), path, str(n), str(concurrency), str(warmup)]
    if mode.startswith("tornado_c"):
        return [sys.executable, "-m", "tornado_c"] + args
    return [sys.executable] + args


def pin(cmd, cpu):
    """`cmd` under taskset -c cpu (taskset execs it), or as is for None."""
    return list(cmd) if cpu is None else ["taskset", "-c", str(cpu)] + list(cmd)


def start_server(cpu=None):
    proc = subprocess.Popen(pin([sys.executable, "-m", "tornado_c", HERE, "--serve"], cpu),
                            env=env_for("tornado_c"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.strip():
        proc.kill()
        raise SystemExit("server failed: %s" % proc.stderr.read()[-2000:])
    port, tls_port = map(int, line.split())
    return proc, port, tls_port


def cpu_once(port, case, mode, n, concurrency, cpu=None):
    """[client CPU-us per request, requests per second, user CPU-us and
    system CPU-us per request] of one client run."""
    out = subprocess.run(pin(client_cmd(mode, port, case, n, concurrency, 50), cpu),
                         capture_output=True, text=True, env=env_for(mode), timeout=900)
    if out.returncode != 0:
        raise SystemExit("%s/%s client failed:\n%s" % (case, mode, out.stderr[-3000:]))
    used, reqs, wall, user, system = out.stdout.split()[-5:]
    reqs = int(reqs)
    return [round(float(used) / reqs * 1e6, 1), round(reqs / float(wall), 1),
            round(float(user) / reqs * 1e6, 1), round(float(system) / reqs * 1e6, 1)]


def median(vals):
    vals = sorted(vals)
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def run_cpu(args, cases, modes, n):
    """The --cpu measure: rounds of every (case, mode), modes rotating."""
    server_cpu, client_cpu = args.server_cpu, args.client_cpu
    cpus = sorted(os.sched_getaffinity(0))
    if args.no_pin or shutil.which("taskset") is None or len(cpus) < 2:
        server_cpu = client_cpu = None
    elif server_cpu not in cpus or client_cpu not in cpus or server_cpu == client_cpu:
        raise SystemExit("--server-cpu/--client-cpu must be two different CPUs of %s" % cpus)
    results = {"python": sys.version.split()[0], "measure": "cpu", "n": n,
               "concurrency": args.concurrency, "rounds": args.rounds,
               "server_cpu": server_cpu, "client_cpu": client_cpu,
               "loadavg_start": loadavg(), "runs": {}, "results": {}, "req_per_s": {}}
    server, http_port, tls_port = start_server(server_cpu)
    try:
        for r in range(args.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for case in cases:
                for mode in order:
                    port = tls_port if case in HTTPS_CASES else http_port
                    run = cpu_once(port, case, mode, n, args.concurrency, client_cpu)
                    results["runs"].setdefault(case, {}).setdefault(mode, []).append(run)
                    print("round %d %-6s %-17s %8.1f client CPU-us/request %8.0f req/s "
                          "(user %.1f, system %.1f)" % (r + 1, case, mode, *run), flush=True)
    finally:
        server.kill()
        server.wait()
    results["loadavg_end"] = loadavg()
    comps = []
    results["user_us"], results["system_us"] = {}, {}
    for case in cases:
        runs = results["runs"][case]
        cpu = {m: round(median([r[0] for r in runs[m]]), 1) for m in modes}
        rps = {m: round(median([r[1] for r in runs[m]])) for m in modes}
        user = {m: round(median([r[2] for r in runs[m]]), 1) for m in modes}
        system = {m: round(median([r[3] for r in runs[m]]), 1) for m in modes}
        results["results"][case] = cpu
        results["req_per_s"][case] = rps
        results["user_us"][case] = user
        results["system_us"][case] = system
        tc = cpu.get("tornado_c")
        for ref in ("upstream", "aiohttp"):
            if ref in cpu and tc:
                comps.append({"label": "%s client CPU-µs/request, %s / tornado_c" % (case, ref),
                              "unit": "µs", "values": cpu, "ratio": cpu[ref] / tc,
                              "ratio_label": "%s / tornado_c" % ref})
        for what, vals in (("user", user), ("system", system)):
            if "upstream" in vals and vals.get("tornado_c"):
                comps.append({"label": "%s client %s CPU-µs/request, upstream / tornado_c"
                              % (case, what), "unit": "µs", "values": vals,
                              "ratio": vals["upstream"] / vals["tornado_c"],
                              "ratio_label": "upstream / tornado_c"})
        if "upstream" in rps and rps.get("tornado_c"):
            comps.append({"label": "%s req/s (8 fetch loops), tornado_c / upstream" % case,
                          "unit": "req/s", "values": rps,
                          "ratio": rps["tornado_c"] / rps["upstream"],
                          "ratio_label": "tornado_c / upstream"})
    results["comparisons"] = comps
    results["notes"] = [
        "client pinned to CPU %s, the tornado_c server to CPU %s; %d requests per run, "
        "median of %d interleaved rounds; load average %s at the start, %s at the end; "
        "CPU = user + system (the kernel's share: a new connection per request)"
        % (client_cpu, server_cpu, n, args.rounds, results["loadavg_start"],
           results["loadavg_end"])]
    return results


def callgrind_once(port, case, mode, n, concurrency):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = (["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
               + client_cmd(mode, port, case, n, concurrency, 5))
        res = subprocess.run(cmd, capture_output=True, text=True, env=env_for(mode),
                             cwd=tmp, timeout=1800)
        if res.returncode != 0:
            raise SystemExit("%s/%s failed:\n%s" % (case, mode, res.stderr[-3000:]))
        m = COLLECTED_RE.search(res.stderr)
        if not m:
            raise SystemExit("no 'Collected' line from callgrind:\n" + res.stderr[-2000:])
        return int(m.group(1))


def run_callgrind(args, cases, modes, n):
    """The callgrind measure: (Ir(2n) - Ir(n)) / n per (case, mode)."""
    server, http_port, tls_port = start_server()
    results = {"python": sys.version.split()[0], "measure": "callgrind",
               "n": n, "concurrency": args.concurrency, "results": {}}
    try:
        for case in cases:
            port = tls_port if case in HTTPS_CASES else http_port
            per = results["results"].setdefault(case, {})
            for mode in modes:
                small = callgrind_once(port, case, mode, n, args.concurrency)
                big = callgrind_once(port, case, mode, 2 * n, args.concurrency)
                per[mode] = round((big - small) / n)
                print("%-6s %-17s %10d Ir/request" % (case, mode, per[mode]), flush=True)
    finally:
        server.kill()
        server.wait()
    comps = []
    for case, per in results["results"].items():
        up, tc = per.get("upstream"), per.get("tornado_c")
        comps.append({"label": "%s client Ir/request" % case, "unit": "Ir", "values": per,
                      "ratio": (up / tc) if up and tc else None,
                      "ratio_label": "upstream / tornado_c"})
    results["comparisons"] = comps
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--modes", help="default: all four (callgrind), upstream,tornado_c,aiohttp "
                    "(cpu)")
    ap.add_argument("--n", type=int, default=0,
                    help="requests (callgrind: in the smaller run; default 200, cpu: 4000)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="cpu: median of this many runs")
    ap.add_argument("--server-cpu", type=int, default=0, help="cpu: CPU the server is pinned to")
    ap.add_argument("--client-cpu", type=int, default=1, help="cpu: CPU the client is pinned to")
    ap.add_argument("--no-pin", action="store_true", help="cpu: do not pin")
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.serve:
        return serve()
    if args.client:
        mode, port, path, n, conc, warm = args.client
        return client(mode, int(port), path, int(n), int(conc), int(warm))

    cases = [c for c in args.cases.split(",") if c]
    if args.modes is None:
        args.modes = "upstream,tornado_c,aiohttp" if args.cpu else ",".join(MODES)
    modes = [m for m in args.modes.split(",") if m]
    if "aiohttp" in modes:
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            modes.remove("aiohttp")
    n = args.n or (200 if not args.cpu else 4000)
    if args.quick:
        n, args.rounds = max(20, n // 10), 1
    if args.cpu:
        results = run_cpu(args, cases, modes, n)
    else:
        results = run_callgrind(args, cases, modes, n)
    text = json.dumps(results, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        print(text)

if __name__ == "__main__":
    main()
