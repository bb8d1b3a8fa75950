#!/usr/bin/env python3
"""Run the benchmarks: each HTTP scenario's unmodified Tornado app under plain
upstream Tornado and under tornado_c, side by side; plus the script scenarios.

    python benchmarks/run.py [--quick] [--only hello,json,wsmask] [--out DIR]

Writes DIR/<UTC timestamp>.json, DIR/latest.json, DIR/latest.md and
DIR/latest.png, and prints the markdown table.  The servers run with this
interpreter (sys.executable) and this environment; run it from outside the
source tree (scripts/bench.sh does) so the installed tornado_c is measured.
Exit status: 0 if every run succeeded, 1 if any failed (all are reported).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="tornado_c vs upstream Tornado, side by side.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short runs for tests/CI (2 s measured, 1 s warm-up)")
    ap.add_argument("--only", metavar="A,B", help="scenarios to run; known: %s"
                    % ", ".join(harness.REGISTRY))
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="output folder (relative paths: to $TC_BENCH_CWD if set, else cwd)")
    ap.add_argument("--duration", type=int, help="whole seconds measured per run (default 10, quick 2)")
    ap.add_argument("--warmup", type=int, help="warm-up seconds, 0 = none (default 2, quick 1)")
    ap.add_argument("--connections", "-c", type=int, default=50, help="wrk connections")
    ap.add_argument("--threads", "-t", type=int, default=1, help="wrk threads")
    ap.add_argument("--repeat", type=int,
                    help="runs per implementation, alternating order; the median is reported "
                    "(default 3, quick 1)")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU wrk is pinned to")
    ap.add_argument("--no-pin", action="store_true", help="do not pin (e.g. a 1-CPU machine)")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                    help="before each measurement wait up to SECONDS for the pinned CPUs to "
                    "be free of other load (shared machines)")
    ap.add_argument("--no-png", action="store_true", help="skip the matplotlib chart")
    ap.add_argument("--render", metavar="RESULT.json",
                    help="measure nothing: redo latest.md/latest.png from a saved result")
    args = ap.parse_args(argv)
    if (args.repeat is not None and args.repeat < 1) or args.connections < 1 or args.threads < 1:
        ap.error("--repeat, --connections and --threads must be >= 1")
    if args.connections < args.threads:
        ap.error("wrk needs at least one connection per thread")
    for name in ("duration", "warmup"):
        v = getattr(args, name)
        if v is not None and (v < 0 or (name == "duration" and v < 1)):
            ap.error("--%s is out of range" % name)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for sc in harness.REGISTRY.values():
            print("%-12s %-6s %s" % (sc.name, sc.kind, sc.description))
        return 0
    if not args.no_pin:
        cpus = os.sched_getaffinity(0)
        if args.server_cpu not in cpus or args.client_cpu not in cpus \
                or args.server_cpu == args.client_cpu:
            if len(cpus) < 2:
                print("note: fewer than 2 CPUs available (%s): not pinning" % sorted(cpus))
                args.no_pin = True
            else:
                print("run.py: --server-cpu/--client-cpu must be two different CPUs of %s"
                      % sorted(cpus), file=sys.stderr)
                return 2
    if args.render:
        import json

        with open(args.render) as f:
            doc = json.load(f)
        out = args.out if os.path.isabs(args.out) else os.path.join(
            os.environ.get("TC_BENCH_CWD") or os.getcwd(), args.out)
        paths, md = harness.write_outputs(doc, out, png=not args.no_png)
        print(md)
        for key, path in paths.items():
            print("%-12s %s" % (key, path))
        return 0
    make = harness.Settings.quick_settings if args.quick else harness.Settings
    settings = make(connections=args.connections, threads=args.threads,
                    server_cpu=None if args.no_pin else args.server_cpu,
                    client_cpu=None if args.no_pin else args.client_cpu)
    if args.repeat is not None:
        settings.repeat = args.repeat
    settings.quiet_wait = max(0.0, args.quiet_wait)
    if args.duration is not None:
        settings.duration = args.duration
    if args.warmup is not None:
        settings.warmup = args.warmup
    out = args.out
    if not os.path.isabs(out):
        out = os.path.join(os.environ.get("TC_BENCH_CWD") or os.getcwd(), out)
    try:
        scenarios, notes = harness.select(args.only)
    except harness.BenchError as exc:
        print("run.py: %s" % exc, file=sys.stderr)
        return 2
    for note in notes:
        print("note: %s" % note)
    print("tornado_c benchmarks: %s (python %s)" % (
        ", ".join(sc.name for sc in scenarios), sys.executable))
    try:
        doc = harness.run_all(scenarios, settings, notes=notes,
                              log=lambda msg: print(msg, flush=True))
    except harness.BenchError as exc:
        print("run.py: %s" % exc, file=sys.stderr)
        return 2
    paths, md = harness.write_outputs(doc, out, png=not args.no_png)
    print()
    print(md)
    for key, path in paths.items():
        print("%-12s %s" % (key, path))
    failed = [sc["name"] for sc in doc["scenarios"]
              if not sc.get("ok", all(r.get("ok") for r in sc.get("results", {}).values()))]
    if failed:
        print("FAILED scenario(s): %s" % ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
