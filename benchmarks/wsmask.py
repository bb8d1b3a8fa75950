"""Micro-benchmark: WebSocket masking throughput (no server).

Compares, on the same input objects (a 4-byte ``bytes`` mask and a ``bytes``
payload) and with the same output kind (a new ``bytes``):

* ``tornado_c.websocket.websocket_mask``      (tornado_c's C code)
* ``tornado.speedups.websocket_mask``         (upstream Tornado's C speedup)
* ``tornado.util._websocket_mask_python``     (upstream's pure Python; small sizes only)

for 16 B, 1 KiB, 64 KiB and 1 MiB payloads.  Each measurement is a batch of
calls timed with ``time.perf_counter``; the batch size is calibrated so that a
batch lasts at least ``--batch-seconds``; the best of ``--repeats`` batches is
kept, and the implementations take turns within each repeat so background
noise hits them alike.  MB/s uses 10**6 bytes.

    python benchmarks/wsmask.py [--quick] [--cpu N] [--json PATH|-]
"""

import argparse
import json
import os
import sys
import time

SIZES = (16, 1024, 64 * 1024, 1024 * 1024)
PYTHON_MAX_SIZE = 1024  # the pure-Python version is only timed up to here


def size_label(n):
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return "%d MiB" % (n // (1024 * 1024))
    if n >= 1024 and n % 1024 == 0:
        return "%d KiB" % (n // 1024)
    return "%d B" % n


def implementations():
    """name -> (function, description); an implementation that cannot be
    imported is reported with its error instead of a function."""
    impls = {}
    try:
        from tornado_c.websocket import websocket_mask as c_mask

        impls["tornado_c"] = (c_mask, "tornado_c.websocket.websocket_mask")
    except Exception as exc:  # reported, not hidden
        impls["tornado_c"] = (None, "import failed: %r" % (exc,))
    try:
        from tornado.speedups import websocket_mask as sp_mask

        impls["speedups"] = (sp_mask, "tornado.speedups.websocket_mask")
    except Exception as exc:
        impls["speedups"] = (None, "import failed: %r" % (exc,))
    try:
        from tornado.util import _websocket_mask_python as py_mask

        impls["python"] = (py_mask, "tornado.util._websocket_mask_python")
    except Exception as exc:
        impls["python"] = (None, "import failed: %r" % (exc,))
    return impls


def time_batch(func, mask, data, n):
    t0 = time.perf_counter()
    for _ in range(n):
        func(mask, data)
    return time.perf_counter() - t0


def calibrate(func, mask, data, batch_seconds):
    n = 1
    while True:
        t = time_batch(func, mask, data, n)
        if t >= batch_seconds:
            return n
        # aim a little past the target, grow at most 100x per step
        n = max(n + 1, min(n * 100, int(n * batch_seconds * 1.2 / max(t, 1e-9))))


def run(sizes=SIZES, batch_seconds=0.1, repeats=5):
    impls = implementations()
    mask = os.urandom(4)
    results = []
    for size in sizes:
        data = os.urandom(size)
        names = [
            name
            for name, (func, _) in impls.items()
            if func is not None and (name != "python" or size <= PYTHON_MAX_SIZE)
        ]
        # Fairness and correctness: same inputs, same output kind and value.
        reference = None
        for name in names:
            out = impls[name][0](mask, data)
            if type(out) is not bytes:
                raise SystemExit("wsmask: %s returned %s, not bytes" % (name, type(out).__name__))
            if reference is None:
                reference = out
            elif out != reference:
                raise SystemExit("wsmask: %s gives a different result at %d bytes" % (name, size))
        counts = {name: calibrate(impls[name][0], mask, data, batch_seconds) for name in names}
        best = {name: float("inf") for name in names}
        for _ in range(repeats):
            for name in names:
                t = time_batch(impls[name][0], mask, data, counts[name])
                best[name] = min(best[name], t / counts[name])
        mbps = {name: size / best[name] / 1e6 for name in names}
        row = {
            "size": size,
            "label": size_label(size),
            "mb_per_s": mbps,
            "ns_per_call": {name: best[name] * 1e9 for name in names},
            "calls_per_batch": counts,
        }
        if "tornado_c" in mbps and "speedups" in mbps:
            row["ratio_c_over_speedups"] = mbps["tornado_c"] / mbps["speedups"]
        results.append(row)
    try:
        from tornado_c import _core

        c_impl = _core.websocket_mask_impl()  # which body the CPU got: avx2/sse2/word
    except Exception as exc:
        c_impl = "unknown (%r)" % (exc,)
    return {
        "benchmark": "wsmask",
        "tornado_c_mask_impl": c_impl,
        "unit": "MB/s (10**6 bytes per second)",
        "implementations": {name: desc for name, (_, desc) in impls.items()},
        "settings": {"batch_seconds": batch_seconds, "repeats": repeats, "statistic": "best batch"},
        "results": results,
        # The harness shows any script's "notes" and renders "comparisons" as a table.
        "notes": [
            "tornado_c mask code path on this CPU: %s; best of %d batches of >= %g s each, "
            "implementations interleaved; pure Python timed up to %s only"
            % (c_impl, repeats, batch_seconds, size_label(PYTHON_MAX_SIZE)),
        ],
        "comparisons": [
            {
                "label": "mask %s" % row["label"],
                "unit": "MB/s",
                "values": row["mb_per_s"],
                "ratio": row.get("ratio_c_over_speedups"),
                "ratio_label": "tornado_c / speedups",
            }
            for row in results
        ],
    }


def format_table(result):
    names = ["tornado_c", "speedups", "python"]
    lines = ["%-8s %14s %14s %14s %10s" % ("size", *names, "C/speedups")]
    for row in result["results"]:
        cells = []
        for name in names:
            v = row["mb_per_s"].get(name)
            cells.append("%14.1f" % v if v is not None else "%14s" % "-")
        ratio = row.get("ratio_c_over_speedups")
        lines.append("%-8s %s %10s" % (row["label"], " ".join(cells),
                                       "%.2fx" % ratio if ratio else "-"))
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
