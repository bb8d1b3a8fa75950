"""Micro-benchmark: HTTPHeaders operations, upstream's Python vs tornado_c's C.

Both classes get the same inputs and must give the same results (checked
before timing).  The operations are the ones a request makes:

* ``ctor dict``  ``HTTPHeaders({...3 names...})`` (RequestHandler.clear())
* ``add x3``     a new object and three add() calls, one name twice
* ``get hit``    ``h.get("Accept")`` on 8 request headers
* ``get miss``   ``h.get("If-None-Match")`` on the same
* ``contains``   ``"Etag" in h`` on response headers
* ``setitem``    ``h["Content-Length"] = "12"``
* ``get_all``    ``list(h.get_all())`` of 8 headers
* ``parse 8``    ``HTTPHeaders.parse()`` of a typical 8-header browser block

Each is a batch of calls timed with ``time.perf_counter`` and calibrated to
last at least ``--batch-seconds``; the best of ``--repeats`` batches is kept,
implementations taking turns within each repeat.

    python benchmarks/web_headers.py [--quick] [--cpu N] [--json PATH|-]
"""

import argparse
import json
import os
import sys
import time

BLOCK = (
    "Host: localhost:8888\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=0123456789abcdef; theme=dark\r\n"
    "Cache-Control: max-age=0\r\n"
)
RESPONSE = {
    "Server": "TornadoServer/6.6.1",
    "Content-Type": "text/html; charset=UTF-8",
    "Date": "Thu, 01 Jan 2026 00:00:00 GMT",
}


def implementations():
    """name -> (class, description); import errors are reported."""
    impls = {}
    try:
        from tornado_c import httputil as chu

        impls["tornado_c"] = (chu.HTTPHeaders, "tornado_c.httputil.HTTPHeaders (C)")
        impls["upstream"] = (chu._UpstreamHTTPHeaders, "tornado.httputil.HTTPHeaders")
    except Exception as exc:  # reported, not hidden
        import tornado.httputil

        impls["tornado_c"] = (None, "import failed: %r" % (exc,))
        impls["upstream"] = (tornado.httputil.HTTPHeaders, "tornado.httputil.HTTPHeaders")
    return impls


def operations(cls):
    """label -> (no-argument function, its result for the check)."""
    request = cls.parse(BLOCK)
    response = cls(RESPONSE)

    def add3():
        h = cls()
        h.add("Set-Cookie", "a=1")
        h.add("Set-Cookie", "b=2")
        h.add("Vary", "Accept-Encoding")
        return h

    def setitem():
        response["Content-Length"] = "12"

    return {
        "ctor dict": (lambda: cls(RESPONSE), lambda r: sorted(r.get_all())),
        "add x3": (add3, lambda r: list(r.get_all())),
        "get hit": (lambda: request.get("Accept"), None),
        "get miss": (lambda: request.get("If-None-Match"), None),
        "contains": (lambda: "Etag" in response, None),
        "setitem": (setitem, None),
        "get_all": (lambda: list(request.get_all()), None),
        "parse 8": (lambda: cls.parse(BLOCK), lambda r: list(r.get_all())),
    }


def time_batch(func, n):
    t0 = time.perf_counter()
    for _ in range(n):
        func()
    return time.perf_counter() - t0


def calibrate(func, batch_seconds):
    n = 1
    while True:
        t = time_batch(func, n)
        if t >= batch_seconds:
            return n
        n = max(n + 1, min(n * 100, int(n * batch_seconds * 1.2 / max(t, 1e-9))))


def run(batch_seconds=0.1, repeats=5):
    impls = implementations()
    names = [name for name, (cls, _) in impls.items() if cls is not None]
    ops = {name: operations(impls[name][0]) for name in names}
    labels = list(ops[names[0]])
    results = []
    for label in labels:
        # same results from both before anything is timed
        outs = {}
        for name in names:
            func, view = ops[name][label]
            r = func()
            outs[name] = view(r) if view else r
        if len({json.dumps(o, sort_keys=True, default=str) for o in outs.values()}) != 1:
            raise SystemExit("web_headers: %s differs between implementations: %r" % (label, outs))
        counts = {name: calibrate(ops[name][label][0], batch_seconds) for name in names}
        best = {name: float("inf") for name in names}
        for _ in range(repeats):
            for name in names:
                t = time_batch(ops[name][label][0], counts[name])
                best[name] = min(best[name], t / counts[name])
        ns = {name: best[name] * 1e9 for name in names}
        row = {"op": label, "ns_per_op": ns}
        if "tornado_c" in ns and "upstream" in ns:
            row["speedup"] = ns["upstream"] / ns["tornado_c"]
        results.append(row)
    return {
        "benchmark": "web_headers",
        "unit": "ns per operation (lower is better)",
        "implementations": {name: desc for name, (_, desc) in impls.items()},
        "settings": {"batch_seconds": batch_seconds, "repeats": repeats,
                     "statistic": "best batch"},
        "results": results,
        "notes": [
            "HTTPHeaders operations one request makes; best of %d batches of >= %g s each, "
            "implementations interleaved; results checked equal first" % (repeats, batch_seconds),
        ],
        "comparisons": [
            {
                "label": row["op"],
                "unit": "ns/op",
                "values": row["ns_per_op"],
                "ratio": row.get("speedup"),
                "ratio_label": "upstream / tornado_c (x faster)",
            }
            for row in results
        ],
    }


def format_table(result):
    lines = ["%-10s %12s %12s %9s" % ("op", "upstream ns", "tornado_c ns", "speedup")]
    for row in result["results"]:
        ns = row["ns_per_op"]
        sp = row.get("speedup")
        lines.append("%-10s %12.0f %12s %9s" % (
            row["op"], ns.get("upstream", float("nan")),
            "%.0f" % ns["tornado_c"] if "tornado_c" in ns else "-",
            "%.1fx" % sp if sp else "-"))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short batches (tests/CI)")
    ap.add_argument("--batch-seconds", type=float, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--json", metavar="PATH", help="write the result as JSON ('-' = stdout)")
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    batch = args.batch_seconds or (0.02 if args.quick else 0.1)
    repeats = args.repeats or (3 if args.quick else 5)
    result = run(batch_seconds=batch, repeats=repeats)
    result["settings"]["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    if args.json == "-":
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
