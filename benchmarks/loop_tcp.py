"""TCP echo benchmark of the event loops' stream transports.

The echo SERVER runs the loop under test (stdlib asyncio, uvloop, tornado_c)
in a subprocess pinned to CPU 0 (taskset); the CLIENT is the same for every
run (uvloop + Protocol API unless --client-loop says otherwise) pinned to
CPU 1.  Each client connection sends one message, waits for all of it to come
back, sends the next (ping-pong); --conns connections run at once.

APIs on the server: "protocol" (asyncio.Protocol, write() in data_received)
and "streams" (asyncio.start_server, read() / write() / await drain()).
--tls: the same over TLS (ssl= on both ends; tornado's test certificate,
the client does not verify it).

    python benchmarks/loop_tcp.py [--tls] [--duration 3] [--json out.json]

Prints a table (messages/s, MiB/s each way, ratio to uvloop) and writes the
raw numbers as JSON to --json.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchlib import LOOPS, child_env, new_loop, serve_stdin  # noqa: E402
APIS = ("protocol", "streams")
SIZES = (1024, 65536)




def ssl_contexts():
    """(server context, client context) with tornado's test certificate; the
    client does not verify it (a benchmark, not a security test)."""
    import ssl

    import tornado.test

    d = os.path.dirname(tornado.test.__file__)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.path.join(d, "test.crt"), os.path.join(d, "test.key"))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    return server, client


# ------------------------------------------------------------------ server


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_stream(reader, writer):
    try:
        while True:
            data = await reader.read(262144)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


def serve(kind, api, tls=False):
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)
    ctx = ssl_contexts()[0] if tls else None

    async def main():
        if api == "protocol":
            server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, ssl=ctx)
        else:
            server = await asyncio.start_server(echo_stream, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
        # "t" on stdin: answer with our CPU time; EOF: stop (_benchlib)
        await serve_stdin(loop)
        server.close()

    loop.run_until_complete(main())
    loop.close()


# ------------------------------------------------------------------ client


class PingPong(asyncio.Protocol):
    def __init__(self, msg, stats):
        self.msg = msg
        self.size = len(msg)
        self.stats = stats
        self.pending = 0

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.msg)

    def data_received(self, data):
        self.pending += len(data)
        while self.pending >= self.size:
            self.pending -= self.size
            self.stats[0] += 1
            if not self.stats[1]:
                self.transport.write(self.msg)


def server_cpu(proc):
    proc.stdin.write(b"t")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def run_client(client_kind, port, size, conns, warmup, duration, proc=None, tls=False):
    loop = new_loop(client_kind)
    asyncio.set_event_loop(loop)
    stats = [0, False]
    ctx = ssl_contexts()[1] if tls else None

    async def main():
        msg = b"x" * size
        trs = []
        for _ in range(conns):
            tr, _ = await loop.create_connection(lambda: PingPong(msg, stats), "127.0.0.1", port,
                                                 ssl=ctx)
            trs.append(tr)
        await asyncio.sleep(warmup)
        n0, t0 = stats[0], time.perf_counter()
        c0 = server_cpu(proc) if proc else 0.0
        await asyncio.sleep(duration)
        n1, t1 = stats[0], time.perf_counter()
        c1 = server_cpu(proc) if proc else 0.0
        stats[1] = True
        for tr in trs:
            tr.close()
        await asyncio.sleep(0.05)
        return (n1 - n0) / (t1 - t0), ((c1 - c0) / (n1 - n0) * 1e6 if n1 > n0 else None)

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def one(server_kind, api, size, args):
    env = child_env()
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", server_kind, "--api", api]
    if args.tls:
        cmd.append("--tls")
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    try:
        port = int(proc.stdout.readline())
        rate = run_client(args.client_loop, port, size, args.conns, args.warmup, args.duration,
                          proc, args.tls)
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--api", default="protocol", help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--apis", default=",".join(APIS))
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--client-loop", default="uvloop")
    ap.add_argument("--tls", action="store_true", help="echo over TLS")
    ap.add_argument("--rounds", type=int, default=3,
                    help="repeat the whole matrix (loops interleaved); median and best reported")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.api, args.tls)
        return
    if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > 1:
        os.sched_setaffinity(0, {1})
    loops = args.loops.split(",")
    apis = args.apis.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    samples = {}
    cpus = {}
    for rnd in range(args.rounds):
        for api in apis:
            for size in sizes:
                order = loops if rnd % 2 == 0 else loops[::-1]
                for kind in order:
                    rate, cpu = one(kind, api, size, args)
                    samples.setdefault((api, size, kind), []).append(rate)
                    cpus.setdefault((api, size, kind), []).append(cpu)
                    print("  round %d  %-9s %-8s %6d B  %10.0f msg/s  %7.2f us CPU/msg"
                          % (rnd + 1, kind, api, size, rate, cpu), file=sys.stderr, flush=True)
    results = []
    for api in apis:
        for size in sizes:
            for kind in loops:
                xs = sorted(samples[(api, size, kind)])
                med = xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
                cs = sorted(cpus[(api, size, kind)])
                results.append({"server_loop": kind, "api": api, "size": size,
                                "server_cpu_us_per_msg": cs[len(cs) // 2],
                                "samples_cpu_us_per_msg": cs,
                                "samples_msgs_per_s": xs, "msgs_per_s": med,
                                "best_msgs_per_s": xs[-1], "mib_per_s": med * size / 2**20})
    print()
    print(("TLS" if args.tls else "TCP") + " echo, server loop under test on CPU 0, %s client on CPU 1, %d connections, "
          "%.1f s x %d rounds (median, best)" % (args.client_loop, args.conns, args.duration,
                                                args.rounds))
    print("%-8s %7s  %-10s %10s %10s %9s %11s %10s %10s" % (
        "api", "size", "server", "median/s", "best/s", "MiB/s", "us CPU/msg",
        "med/uvloop", "cpu:uv/us"))
    for r in results:
        ref = [x for x in results if x["api"] == r["api"] and x["size"] == r["size"]
               and x["server_loop"] == "uvloop"]
        ratio = r["msgs_per_s"] / ref[0]["msgs_per_s"] if ref and ref[0]["msgs_per_s"] else None
        cratio = (ref[0]["server_cpu_us_per_msg"] / r["server_cpu_us_per_msg"]
                  if ref and r["server_cpu_us_per_msg"] else None)
        r["ratio_vs_uvloop"] = ratio
        r["cpu_efficiency_vs_uvloop"] = cratio
        print("%-8s %7d  %-10s %10.0f %10.0f %9.1f %11.2f %10s %10s" % (
            r["api"], r["size"], r["server_loop"], r["msgs_per_s"], r["best_msgs_per_s"],
            r["mib_per_s"], r["server_cpu_us_per_msg"],
            "%.2f" % ratio if ratio is not None else "-",
            "%.2f" % cratio if cratio is not None else "-"))
    print("cpu:uv/us = uvloop's server CPU per message / this loop's (> 1: cheaper than uvloop)")
    if args.json:
        meta = {"python": sys.version.split()[0], "platform": platform.platform(),
                "duration": args.duration, "conns": args.conns,
                "client_loop": args.client_loop, "cpus": os.cpu_count(),
                "rounds": args.rounds, "tls": args.tls, "loadavg_at_end": os.getloadavg()}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
