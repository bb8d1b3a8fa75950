"""Event loop micro-benchmarks: stdlib asyncio vs uvloop vs tornado_c.

    python benchmarks/loop_micro.py [--json out.json] [--quick] [--no-http]

Scenarios (each loop runs in its own subprocess):

* call_soon   -- throughput of call_soon: batches of callbacks scheduled and
                 run, plus a chain of callbacks each scheduling the next.
* timer_churn -- call_later + cancel of timers that never fire (the
                 pattern of timeouts that are set and cleared), with the loop
                 turning between batches; also timers that do fire.
* io_pingpong -- add_reader/recv/send ping-pong over a socketpair.
* hello_http  -- a Tornado "Hello, world" server with only the event loop
                 swapped, server pinned to CPU 0 and wrk to CPU 1 (taskset);
                 --http-rounds interleaved rounds, the best one per loop.

Prints a table of operations (or requests) per second and the ratio of
tornado_c to uvloop, and writes the raw numbers as JSON with --json.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchlib import HERE, LOOPS, SRC  # noqa: E402

CHILD = r'''
import asyncio, sys, time
sys.path.insert(0, {here!r})
from _benchlib import new_loop
kind, scenario, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
loop = new_loop(kind)

def noop(*a):
    pass

def bench_call_soon():
    # batches: schedule 1000, run them, repeat
    batch = 1000
    rounds = n // batch
    call_soon = loop.call_soon
    state = [0]
    def run_batch():
        for _ in range(batch):
            call_soon(noop)
        state[0] += 1
        if state[0] < rounds:
            call_soon(run_batch)
        else:
            call_soon(loop.stop)
    t0 = time.perf_counter()
    call_soon(run_batch)
    loop.run_forever()
    dt_batch = time.perf_counter() - t0
    # chain: each callback schedules the next
    left = [n]
    def chain():
        left[0] -= 1
        if left[0]:
            call_soon(chain)
        else:
            loop.stop()
    t0 = time.perf_counter()
    call_soon(chain)
    loop.run_forever()
    dt_chain = time.perf_counter() - t0
    return {{"batch": rounds * batch / dt_batch, "chain": n / dt_chain}}

def bench_timer_churn():
    call_later = loop.call_later
    batch = 1000
    rounds = n // batch
    state = [0]
    def churn():
        hs = [call_later(10.0 + (i % 97) * 0.01, noop) for i in range(batch)]
        for h in hs:
            h.cancel()
        state[0] += 1
        if state[0] < rounds:
            loop.call_soon(churn)
        else:
            loop.stop()
    t0 = time.perf_counter()
    loop.call_soon(churn)
    loop.run_forever()
    dt_churn = time.perf_counter() - t0
    # timers that fire: 0-delay timers, batch by batch
    fired = [0]
    def fire_batch():
        for _ in range(batch):
            call_later(0, count)
    def count():
        fired[0] += 1
        if fired[0] % batch == 0:
            if fired[0] >= rounds * batch:
                loop.stop()
            else:
                fire_batch()
    t0 = time.perf_counter()
    loop.call_soon(fire_batch)
    loop.run_forever()
    dt_fire = time.perf_counter() - t0
    return {{"schedule_cancel": rounds * batch / dt_churn, "fire": rounds * batch / dt_fire}}

def bench_io_pingpong():
    # add_reader ping-pong over a socketpair: the path Tornado's own IOStream
    # takes when only the loop is swapped
    import socket
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    count = [0]
    total = n // 3
    def on_a():
        a.recv(100)
        count[0] += 1
        if count[0] >= total:
            loop.stop()
        else:
            a.send(b"x")
    def on_b():
        b.recv(100)
        b.send(b"y")
    loop.add_reader(a.fileno(), on_a)
    loop.add_reader(b.fileno(), on_b)
    t0 = time.perf_counter()
    a.send(b"x")
    loop.run_forever()
    dt = time.perf_counter() - t0
    loop.remove_reader(a.fileno())
    loop.remove_reader(b.fileno())
    a.close()
    b.close()
    return {{"round_trips": total / dt}}

res = {{"call_soon": bench_call_soon, "timer_churn": bench_timer_churn,
        "io_pingpong": bench_io_pingpong}}[scenario]()
loop.close()
print(repr(res))
'''

SERVER = r'''
import asyncio, sys
if {root!r}:
    sys.path.insert(0, {root!r})
kind, port = sys.argv[1], int(sys.argv[2])
if kind == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
elif kind == "tornado_c":
    from tornado_c.loop import EventLoopPolicy
    asyncio.set_event_loop_policy(EventLoopPolicy())
import tornado.web

class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

async def main():
    app = tornado.web.Application([(r"/", Hello)])
    app.listen(port, "127.0.0.1")
    print(type(asyncio.get_running_loop()).__module__, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''


def child(kind, scenario, n):
    code = CHILD.format(here=HERE)
    out = subprocess.run([sys.executable, "-c", code, kind, scenario, str(n)],
                         check=True, capture_output=True, text=True).stdout
    return eval(out.strip().splitlines()[-1])


def _proc_cpu(pid):
    """user + system CPU seconds of a process (Linux /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def hello_http(kind, duration, connections):
    port = free_port()
    code = SERVER.format(root=SRC)
    srv = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", code, kind, str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_port(port):
            raise RuntimeError("server did not start: %s" % srv.stderr.read())
        module = srv.stdout.readline().strip()
        cpu0 = _proc_cpu(srv.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c%d" % connections,
                              "-d%ds" % duration, "http://127.0.0.1:%d/" % port],
                             check=True, capture_output=True, text=True).stdout
        cpu = _proc_cpu(srv.pid) - cpu0
        m = re.search(r"Requests/sec:\s*([\d.]+)", out)
        total = re.search(r"(\d+) requests in", out)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        return {"requests_per_sec": float(m.group(1)), "loop_module": module,
                "requests": int(total.group(1)), "server_cpu_s": cpu,
                "requests_per_cpu_s": int(total.group(1)) / cpu if cpu > 0 else 0.0,
                "errors": errors.group(0) if errors else None}
    finally:
        srv.terminate()
        srv.wait(5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--quick", action="store_true", help="smaller N and 2 s wrk runs")
    ap.add_argument("--no-http", action="store_true", help="skip the wrk scenario")
    ap.add_argument("--duration", type=int, default=5, help="wrk seconds per loop (default 5)")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the micro scenarios")
    ap.add_argument("--http-rounds", type=int, default=3,
                    help="interleaved wrk rounds per loop, best counts (default 3)")
    args = ap.parse_args()
    n = 100_000 if args.quick else 300_000
    duration = 2 if args.quick else args.duration
    if args.quick:
        args.http_rounds = 1

    loops = [k for k in LOOPS if k != "uvloop" or _has_uvloop()]
    results = {"n": n, "loops": loops, "python": sys.version.split()[0], "scenarios": {}}
    rows = []
    for scenario in ("call_soon", "timer_churn", "io_pingpong"):
        per = {}
        for kind in loops:
            best = None
            for _ in range(args.repeat):
                r = child(kind, scenario, n)
                best = r if best is None else {k: max(best[k], r[k]) for k in r}
            per[kind] = best
        results["scenarios"][scenario] = per
        for metric in per[loops[0]]:
            rows.append(("%s/%s" % (scenario, metric), {k: per[k][metric] for k in loops}, "ops/s"))
    if not args.no_http and shutil.which("wrk") and shutil.which("taskset"):
        # rounds interleave the loops (rotating the order) so that load from
        # other processes on the machine hits them alike; best round counts
        samples = {k: [] for k in loops}
        for rnd in range(args.http_rounds):
            order = loops[rnd % len(loops):] + loops[:rnd % len(loops)]
            for kind in order:
                samples[kind].append(hello_http(kind, duration, args.connections))
        per = {k: {"requests_per_sec": max(r["requests_per_sec"] for r in v),
                   "requests_per_cpu_s": max(r["requests_per_cpu_s"] for r in v),
                   "samples": v}
               for k, v in samples.items()}
        results["scenarios"]["hello_http"] = per
        rows.append(("hello_http (wrk -c%d)" % args.connections,
                     {k: per[k]["requests_per_sec"] for k in loops}, "req/s"))
        # requests per second of server CPU: less sensitive to other load
        rows.append(("hello_http per server CPU-s",
                     {k: per[k]["requests_per_cpu_s"] for k in loops}, "req/cpu-s"))

    head = "%-28s" % "scenario" + "".join("%14s" % k for k in loops)
    if "uvloop" in loops:
        head += "%12s%12s" % ("tc/uvloop", "tc/asyncio")
    print(head)
    print("-" * len(head))
    results["ratios"] = {}
    for name, vals, unit in rows:
        line = "%-28s" % name + "".join("%14s" % _fmt(vals[k]) for k in loops)
        ratio_uv = vals["tornado_c"] / vals["uvloop"] if "uvloop" in vals else None
        ratio_aio = vals["tornado_c"] / vals["asyncio"]
        if ratio_uv is not None:
            line += "%12.2f" % ratio_uv
        line += "%12.2f" % ratio_aio
        results["ratios"][name] = {"tornado_c/uvloop": ratio_uv, "tornado_c/asyncio": ratio_aio, "unit": unit}
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
        print("wrote", args.json)


def _fmt(v):
    return "%.0f" % v if v >= 100 else "%.2f" % v


def _has_uvloop():
    try:
        import uvloop  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    main()
