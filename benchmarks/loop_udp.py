"""UDP echo benchmark of the event loops' datagram transports.

The echo SERVER (one create_datagram_endpoint, DatagramProtocol that sends
every datagram back to its sender) runs the loop under test (stdlib asyncio,
uvloop, tornado_c) in a subprocess pinned to CPU 0 (taskset); the CLIENT is
the same for every run (uvloop unless --client-loop says otherwise) pinned to
CPU 1: --clients endpoints, each with one datagram in flight (ping-pong).

    python benchmarks/loop_udp.py [--duration 3] [--json out.json]

Prints a table (datagrams/s, server CPU-us per datagram, ratio to uvloop)
and writes the raw numbers as JSON to --json.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchlib import LOOPS, child_env, new_loop, serve_stdin  # noqa: E402
SIZES = (64, 1024)




class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


def serve(kind):
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)

    async def main():
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
        await serve_stdin(loop)
        transport.close()

    loop.run_until_complete(main())
    loop.close()


class PingPong(asyncio.DatagramProtocol):
    def __init__(self, msg, stats):
        self.msg = msg
        self.stats = stats

    def connection_made(self, transport):
        self.transport = transport
        transport.sendto(self.msg)

    def datagram_received(self, data, addr):
        self.stats[0] += 1
        if not self.stats[1]:
            self.transport.sendto(self.msg)

    def error_received(self, exc):
        self.stats[2] += 1


def server_cpu(proc):
    proc.stdin.write(b"t")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def run_client(client_kind, port, size, clients, warmup, duration, proc):
    loop = new_loop(client_kind)
    asyncio.set_event_loop(loop)
    stats = [0, False, 0]

    async def main():
        msg = b"x" * size
        trs = []
        for _ in range(clients):
            tr, _ = await loop.create_datagram_endpoint(lambda: PingPong(msg, stats),
                                                        remote_addr=("127.0.0.1", port))
            trs.append(tr)

        async def keepalive():
            # a lost datagram (full socket buffer) would stop a ping-pong: resend
            last = -1
            while not stats[1]:
                await asyncio.sleep(0.2)
                if stats[0] == last:
                    for tr in trs:
                        tr.sendto(msg)
                last = stats[0]

        ka = loop.create_task(keepalive())
        await asyncio.sleep(warmup)
        n0, t0 = stats[0], time.perf_counter()
        c0 = server_cpu(proc)
        await asyncio.sleep(duration)
        n1, t1 = stats[0], time.perf_counter()
        c1 = server_cpu(proc)
        stats[1] = True
        ka.cancel()
        for tr in trs:
            tr.close()
        await asyncio.sleep(0.05)
        return (n1 - n0) / (t1 - t0), ((c1 - c0) / (n1 - n0) * 1e6 if n1 > n0 else None)

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def one(server_kind, size, args):
    env = child_env()
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", server_kind]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        port = int(proc.stdout.readline())
        return run_client(args.client_loop, port, size, args.clients, args.warmup,
                          args.duration, proc)
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--client-loop", default="uvloop")
    ap.add_argument("--rounds", type=int, default=3,
                    help="repeat the whole matrix (loops interleaved); median reported")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    loops = args.loops.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    samples, cpus = {}, {}
    for rnd in range(args.rounds):
        for size in sizes:
            order = loops if rnd % 2 == 0 else loops[::-1]
            for kind in order:
                rate, cpu = one(kind, size, args)
                samples.setdefault((size, kind), []).append(rate)
                cpus.setdefault((size, kind), []).append(cpu)
                print("  round %d  %-9s %6d B  %10.0f dgram/s  %7.2f us CPU/dgram"
                      % (rnd + 1, kind, size, rate, cpu or 0), file=sys.stderr, flush=True)
    results = []
    for size in sizes:
        for kind in loops:
            cs = [c for c in cpus[(size, kind)] if c is not None]
            results.append({"server_loop": kind, "size": size,
                            "msgs_per_s": median(samples[(size, kind)]),
                            "samples_msgs_per_s": sorted(samples[(size, kind)]),
                            "server_cpu_us_per_msg": median(cs) if cs else None,
                            "samples_cpu_us_per_msg": sorted(cs)})
    print()
    print("UDP echo, server loop under test on CPU 0, %s client on CPU 1, %d endpoints, "
          "%.1f s x %d rounds (median)" % (args.client_loop, args.clients, args.duration,
                                          args.rounds))
    print("%7s  %-10s %10s %11s %10s %10s" % ("size", "server", "dgram/s", "us CPU/msg",
                                              "med/uvloop", "cpu:uv/us"))
    for r in results:
        ref = [x for x in results if x["size"] == r["size"] and x["server_loop"] == "uvloop"]
        ratio = r["msgs_per_s"] / ref[0]["msgs_per_s"] if ref and ref[0]["msgs_per_s"] else None
        cratio = (ref[0]["server_cpu_us_per_msg"] / r["server_cpu_us_per_msg"]
                  if ref and ref[0]["server_cpu_us_per_msg"] and r["server_cpu_us_per_msg"]
                  else None)
        r["ratio_vs_uvloop"] = ratio
        r["cpu_efficiency_vs_uvloop"] = cratio
        print("%7d  %-10s %10.0f %11.2f %10s %10s" % (
            r["size"], r["server_loop"], r["msgs_per_s"], r["server_cpu_us_per_msg"] or 0,
            "%.2f" % ratio if ratio is not None else "-",
            "%.2f" % cratio if cratio is not None else "-"))
    print("cpu:uv/us = uvloop's server CPU per datagram / this loop's (> 1: cheaper than uvloop)")
    if args.json:
        meta = {"python": sys.version.split()[0], "platform": platform.platform(),
                "duration": args.duration, "clients": args.clients,
                "client_loop": args.client_loop, "cpus": os.cpu_count(),
                "rounds": args.rounds, "loadavg_at_end": os.getloadavg()}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
