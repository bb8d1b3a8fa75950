"""Latency at a fixed offered load (not at saturation): the same unmodified
app under upstream and tornado_c, sent the same number of requests per second
by an open-loop client, latency percentiles for each.

wrk (closed loop) sends the next request when the previous answer arrives,
so a slow server is offered less load and its tail hides ("coordinated
omission"); Debian has no wrk2.  Here request i is due at start + i / rate
whatever happened before, on one of a few keep-alive connections; a request
that finds every connection busy waits in a queue, and its latency runs from
the time it was due.  The client is ``--procs`` processes (uvloop when
installed, else asyncio), pinned to the client CPU; the server to the server
CPU.  Also reported: the rate achieved, and the server's CPU-µs per request
(/proc, as the harness).

    python benchmarks/fixed_rate.py [--rate 1000] [--duration 10]
        [--app apps/hello.py] [--connections 16] [--procs 2] [--json OUT]

Choose a rate both servers sustain (well under upstream's saturation); the
figures are wall-clock: run it on a quiet machine.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _bench_harness():
    """benchmarks/harness.py (nothing there imports tornado), by its path: a
    plain `import harness` would get whichever module of that name a process
    imported first (the tests also have tests/http_corpus/harness.py)."""
    mod = sys.modules.get("tc_bench_harness")
    if mod is None:
        spec = importlib.util.spec_from_file_location("tc_bench_harness",
                                                      os.path.join(HERE, "harness.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules["tc_bench_harness"] = mod  # dataclasses look their module up there
        spec.loader.exec_module(mod)
    return mod


harness = _bench_harness()

PERCENTILES = (50, 90, 99, 99.9)


# --------------------------------------------------------------------------
# client (one process)


class _Conn(asyncio.Protocol):
    def __init__(self, client):
        self.client = client
        self.buf = b""
        self.due = None  # the due time of the request in flight
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def send(self, due):
        self.due = due
        self.transport.write(self.client.request)

    def data_received(self, data):
        self.buf += data
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(rest) < length:
                return
            status = head[9:12]
            self.buf = rest[length:]
            self.client.done(self, status)

    def connection_lost(self, exc):
        self.client.lost(exc)


class _Client:
    def __init__(self, loop, port, rate, count, start, request):
        self.loop = loop
        self.port = port
        self.interval = 1.0 / rate
        self.count = count
        self.start = start
        self.request = request
        self.idle = []
        self.queue = []  # due times of requests waiting for a connection
        self.latencies = []
        self.errors = 0
        self.finished = loop.create_future()

    def done(self, conn, status):
        now = time.monotonic()
        self.latencies.append(now - conn.due)
        if status != b"200":
            self.errors += 1
        if self.queue:
            conn.send(self.queue.pop(0))
        else:
            conn.due = None
            self.idle.append(conn)
        if len(self.latencies) == self.count and not self.finished.done():
            self.finished.set_result(None)

    def lost(self, exc):
        if not self.finished.done():
            self.finished.set_exception(ConnectionError("connection lost: %r" % (exc,)))

    def fire(self, due):
        if self.idle:
            self.idle.pop().send(due)
        else:
            self.queue.append(due)

    async def run(self, connections, offset):
        for _ in range(connections):
            _, proto = await self.loop.create_connection(lambda: _Conn(self), "127.0.0.1",
                                                         self.port)
            self.idle.append(proto)
        # connected: tell the driver, and take the common start time from it
        print("READY", flush=True)
        self.start = float(sys.stdin.readline()) + offset
        for i in range(self.count):
            due = self.start + i * self.interval
            # libuv's timers (uvloop) work in whole milliseconds and may wake
            # up to one early: sleep again until the due time has come, so a
            # request is never sent before it (latency is measured from it)
            while (delay := due - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            self.fire(due)
        await self.finished


def client_main(port, rate, count, offset, connections, request):
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    client = _Client(loop, port, rate, count, None, request)
    loop.run_until_complete(client.run(connections, offset))
    json.dump({"latencies": client.latencies, "errors": client.errors,
               "start": client.start, "end": time.monotonic()}, sys.stdout)


# --------------------------------------------------------------------------
# driver


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def run_clients(port, rate, duration, connections, procs, request, cpu):
    count = int(rate * duration)
    per = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    cmds = [harness.pinned([sys.executable, os.path.abspath(__file__), "--client", str(port),
                            repr(rate / procs), str(n), repr(i / rate),
                            str(max(1, connections // procs)), request.hex()], cpu)
            for i, n in enumerate(per)]
    children = [subprocess.Popen(c, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for c in cmds]
    for ch in children:  # every client connected
        line = ch.stdout.readline()
        if line.strip() != "READY":
            raise harness.BenchError("client did not start: %r" % line)
    # the common start, a little ahead (CLOCK_MONOTONIC is system-wide on Linux)
    start = time.monotonic() + 0.1
    for ch in children:
        ch.stdin.write("%r\n" % start)
        ch.stdin.flush()
    lat, errors, end = [], 0, start
    for ch in children:
        out, _ = ch.communicate(timeout=duration + 120)
        if ch.returncode != 0:
            raise harness.BenchError("client exit %d" % ch.returncode)
        data = json.loads(out)
        lat += data["latencies"]
        errors += data["errors"]
        end = max(end, data["end"])
    wall = end - start  # the first request due to the last answer
    return sorted(lat), errors, wall


def measure(impl, args, env, workdir):
    sc = harness.HttpScenario("fixed_rate", args.app, "fixed rate")
    port = harness.free_port()
    server = harness.Server(harness.server_argv(impl, sc, port), port, env, workdir,
                            cpu=args.server_cpu, label="fixed-rate-%s" % impl)
    server.start(20)
    try:
        harness.http_check(port, sc)
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        run_clients(port, args.rate, max(1, args.warmup), args.connections, args.procs,
                    request, args.client_cpu)
        t0 = harness.read_cpu_ticks(server.pid)
        lat, errors, wall = run_clients(port, args.rate, args.duration, args.connections,
                                        args.procs, request, args.client_cpu)
        ticks = harness.read_cpu_ticks(server.pid) - t0
    finally:
        server.stop()
    out = {"requests": len(lat), "errors": errors, "achieved_rate": len(lat) / wall,
           "cpu_us_per_request": harness.cpu_us_per_request(ticks, len(lat)),
           "latency_us": {"p%s" % p: percentile(lat, p) * 1e6 for p in PERCENTILES}}
    out["latency_us"]["max"] = lat[-1] * 1e6
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--app", default="apps/hello.py", help="relative to benchmarks/")
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--quick", action="store_true", help="2 s at 300 req/s")
    ap.add_argument("--json")
    ap.add_argument("--client", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        port, rate, count, offset, conns, req = args.client
        client_main(int(port), float(rate), int(count), float(offset), int(conns),
                    bytes.fromhex(req))
        return 0
    if args.quick:
        args.rate, args.duration, args.warmup = 300.0, 2.0, 1.0
    if args.no_pin:
        args.server_cpu = args.client_cpu = None
    import tempfile

    env = dict(os.environ)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for impl in harness.IMPLEMENTATIONS:
            results[impl] = measure(impl, args, env, workdir)
    comps = []
    for key in ("p50", "p99", "p99.9"):
        vals = {impl: results[impl]["latency_us"][key] for impl in results}
        comps.append({"label": "%s latency at %g req/s" % (key, args.rate), "unit": "µs",
                      "values": vals,
                      "ratio": vals["upstream"] / vals["tornado_c"] if vals["tornado_c"] else None,
                      "ratio_label": "upstream / tornado_c"})
    cpu = {impl: results[impl]["cpu_us_per_request"] for impl in results}
    comps.append({"label": "server CPU-µs/request at %g req/s" % args.rate, "unit": "µs",
                  "values": cpu, "ratio": (cpu["upstream"] / cpu["tornado_c"])
                  if cpu.get("tornado_c") else None, "ratio_label": "upstream / tornado_c"})
    data = {"rate": args.rate, "duration": args.duration, "connections": args.connections,
            "procs": args.procs, "app": args.app, "results": results, "comparisons": comps,
            "notes": ["open-loop client: latency from each request's due time"]}
    text = json.dumps(data, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
