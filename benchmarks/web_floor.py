"""The floor under any HTTP server: what tornado.web's own Python costs per
request, with no server, no sockets and no parsing at all.

    python benchmarks/web_floor.py [--requests 20000] [--rounds 5] [--json out.json]

It drives an unmodified ``tornado.web.Application`` (the same "Hello, world"
handler as benchmarks/apps/hello.py) the way an HTTP server does --
``app.start_request()``, ``headers_received()``, ``finish()`` -- over a stub
connection whose ``write_headers``/``write``/``finish`` do nothing but count.
Start lines and header objects are built before the clock starts, so what is
timed is only upstream code that a faster server cannot remove: routing,
``HTTPServerRequest``, ``RequestHandler`` (init, clear, Date/ETag headers,
``_execute``, ``finish``/``flush``), ``tornado.gen`` and the asyncio task
that runs the handler, plus the loop turn that steps it.

Reading it: if upstream's full stack costs U CPU-us per request and this
floor is F, no server -- however fast -- can serve the app for less than F,
so it cannot be more than U / F times cheaper, before adding the
unavoidable read() and write() system calls per request.

Both loops are measured (stdlib asyncio and tornado_c's); the lower one is
the floor.  CPU time is ``time.process_time()`` (user+sys of this process).
"""
import argparse
import asyncio
import gc
import json
import statistics
import sys
import time

import tornado.web
from tornado import httputil


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


class _Context:
    remote_ip = "127.0.0.1"
    protocol = "http"
    address = ("127.0.0.1", 40000)


class StubConnection(httputil.HTTPConnection):
    """A request connection that accepts the response and drops it."""

    context = _Context()

    def __init__(self, done):
        self._done = done

    def set_close_callback(self, callback):
        pass

    def write_headers(self, start_line, headers, chunk=None):
        if self._done.first is None:
            self._done.first = (start_line.code, headers.get("Content-Type"), chunk)
        return self._done.future_none

    def write(self, chunk):
        return self._done.future_none

    def finish(self):
        self._done.count += 1


class _Done:
    def __init__(self, loop):
        self.count = 0
        self.first = None  # (status, content type, body) of the first response
        self.future_none = loop.create_future()
        self.future_none.set_result(None)


def _request_parts(n):
    start = httputil.RequestStartLine("GET", "/", "HTTP/1.1")
    heads = []
    for _ in range(n):
        h = httputil.HTTPHeaders()
        h.add("Host", "127.0.0.1:8888")
        h.add("User-Agent", "wrk")
        h.add("Accept", "*/*")
        heads.append(h)
    return start, heads


async def _one_round(app, n):
    loop = asyncio.get_running_loop()
    done = _Done(loop)
    start, heads = _request_parts(n)
    batch = 50  # like wrk -c50: at most 50 requests in flight per loop turn
    t0 = time.process_time()
    for i in range(0, n, batch):
        for h in heads[i:i + batch]:
            conn = StubConnection(done)
            delegate = app.start_request(None, conn)
            delegate.headers_received(start, h)
            delegate.finish()
        target = min(n, i + batch)
        while done.count < target:
            await asyncio.sleep(0)
    t1 = time.process_time()
    expected = (200, "text/html; charset=UTF-8", b"Hello, world")
    if done.first != expected:  # the handler must really have run
        raise RuntimeError("unexpected response %r, wanted %r" % (done.first, expected))
    return (t1 - t0) * 1e6 / n


def measure(loop_factory, requests, rounds):
    app = tornado.web.Application([(r"/", MainHandler)])
    loop = loop_factory()
    try:
        loop.run_until_complete(_one_round(app, 2000))  # warm-up
        results = []
        for _ in range(rounds):
            gc.collect()
            results.append(loop.run_until_complete(_one_round(app, requests)))
        return results
    finally:
        loop.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--quick", action="store_true", help="2,000 requests x 2 rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.rounds = 2000, 2

    loops = {"asyncio": asyncio.new_event_loop}
    try:
        import tornado_c.loop

        loops["tornado_c"] = tornado_c.loop.new_event_loop
    except ImportError as e:  # report it, measure the stdlib loop anyway
        print("tornado_c loop not available: %s" % e, file=sys.stderr)

    out = {"benchmark": "web_floor", "requests": args.requests,
           "rounds": args.rounds, "cpu_us_per_request": {}}
    for name, factory in loops.items():
        runs = measure(factory, args.requests, args.rounds)
        out["cpu_us_per_request"][name] = {
            "median": statistics.median(runs), "min": min(runs), "runs": runs}
        print("%-10s tornado.web floor: median %.1f CPU-us/req (min %.1f)"
              % (name, statistics.median(runs), min(runs)))
    floor = min(v["median"] for v in out["cpu_us_per_request"].values())
    out["floor_cpu_us_per_request"] = floor
    # The harness's table: one row, the floor on each loop.
    values = {k: v["median"] for k, v in out["cpu_us_per_request"].items()}
    out["comparisons"] = [{
        "label": "tornado.web floor (hello handler, no server) CPU-us/req",
        "unit": "us", "values": values,
        "ratio": (values["asyncio"] / values["tornado_c"]) if "tornado_c" in values else None,
        "ratio_label": "asyncio / tornado_c"}]
    out["notes"] = [
        "What upstream tornado.web's Python costs per request with no server at all; "
        "upstream's hello CPU-us/req divided by this floor is the most any server can "
        "gain while RequestHandler stays Python (before read/write system calls)."]
    print("floor: %.1f CPU-us/req of upstream tornado.web code per request" % floor)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
