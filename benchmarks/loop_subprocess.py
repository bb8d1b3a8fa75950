"""Child processes on the event loop: stdlib asyncio vs uvloop vs tornado_c.

    python benchmarks/loop_subprocess.py [--json out.json] [--quick] [--rounds R]

Each loop runs in its own interpreter; rounds alternate the loops and the
best round per loop is kept.  Scenarios (asyncio.create_subprocess_exec on
the loop under test):

* spawn_wait   -- /bin/true, one child at a time: spawn, wait().
* spawn_pipes  -- /bin/echo with stdout and stderr piped, 20 children at a
                  time: spawn, communicate() (pipes connected, read to EOF,
                  exit noticed).

Reported: children per second (wall clock) and the parent's CPU-µs per child
(utime + stime of the benchmarking process, the children's own CPU not
counted).  The JSON has a "comparisons" list for benchmarks/run.py.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchlib import HERE, LOOPS  # noqa: E402

CHILD = r'''
import asyncio, json, os, resource, sys, time
sys.path.insert(0, {here!r})
from _benchlib import new_loop
kind, scenario, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
loop = new_loop(kind)
asyncio.set_event_loop(loop)
PIPE = asyncio.subprocess.PIPE

async def spawn_wait():
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec("/bin/true")
        if await proc.wait() != 0:
            raise SystemExit("bad exit")

async def one_piped():
    proc = await asyncio.create_subprocess_exec("/bin/echo", "hi", stdout=PIPE, stderr=PIPE)
    out, err = await proc.communicate()
    if out != b"hi\n" or proc.returncode != 0:
        raise SystemExit("bad output")

async def spawn_pipes():
    width = 20
    for _ in range(n // width):
        await asyncio.gather(*(one_piped() for _ in range(width)))

fn = {{"spawn_wait": spawn_wait, "spawn_pipes": spawn_pipes}}[scenario]
loop.run_until_complete(fn())  # warm-up: imports, first spawns
def cpu_now():
    ru = resource.getrusage(resource.RUSAGE_SELF)  # this process, all threads
    return ru.ru_utime + ru.ru_stime
c0, t0 = cpu_now(), time.perf_counter()
loop.run_until_complete(fn())
dt = time.perf_counter() - t0
cpu = cpu_now() - c0
count = n if scenario == "spawn_wait" else (n // 20) * 20
print(json.dumps({{"per_sec": count / dt, "cpu_us": cpu * 1e6 / count}}))
loop.close()
'''


def child(kind, scenario, n):
    out = subprocess.run([sys.executable, "-c", CHILD.format(here=HERE), kind, scenario, str(n)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError("%s %s failed: %s" % (kind, scenario, out.stderr.strip()[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _has_uvloop():
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--quick", action="store_true", help="fewer children, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=400, help="children per round and scenario")
    args = ap.parse_args()
    n, rounds = (100, 1) if args.quick else (args.n, args.rounds)
    loops = [k for k in LOOPS if k != "uvloop" or _has_uvloop()]
    best = {}
    for r in range(rounds):
        order = loops if r % 2 == 0 else loops[::-1]
        for scenario in ("spawn_wait", "spawn_pipes"):
            for kind in order:
                res = child(kind, scenario, n)
                cur = best.setdefault(scenario, {}).get(kind)
                if cur is None or res["per_sec"] > cur["per_sec"]:
                    best[scenario][kind] = res
    comps = []
    for scenario, per in best.items():
        rate = {k: round(v["per_sec"], 1) for k, v in per.items()}
        cpu = {k: round(v["cpu_us"], 1) for k, v in per.items()}
        for label, unit, values, invert in (("%s children/s" % scenario, "1/s", rate, False),
                                            ("%s parent CPU-µs/child" % scenario, "µs", cpu, True)):
            ratio = label_ = None
            for ref in ("uvloop", "asyncio"):
                a, b = values.get("tornado_c"), values.get(ref)
                if a and b:
                    ratio = b / a if invert else a / b
                    label_ = ("%s / tornado_c" if invert else "tornado_c / %s") % ref
                    break
            comps.append({"label": label, "unit": unit, "values": values,
                          "ratio": ratio, "ratio_label": label_})
    result = {
        "python": sys.version.split()[0],
        "n": n,
        "rounds": rounds,
        "notes": ["best of %d round(s) of %d children per loop and scenario" % (rounds, n)],
        "comparisons": comps,
    }
    for c in comps:
        vals = "  ".join("%s=%s" % kv for kv in c["values"].items())
        ratio = " (%s %.2f)" % (c["ratio_label"], c["ratio"]) if c["ratio"] else ""
        print("%-36s %s%s" % (c["label"], vals, ratio))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    else:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
