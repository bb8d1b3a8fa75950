"""IOStream micro-benchmark: line echo ping-pong and a bulk transfer.

Three setups, each in a fresh subprocess-free loop in this process:
  upstream/asyncio    tornado.iostream.IOStream on asyncio's default loop
  upstream/tornado_c  tornado.iostream.IOStream on the tornado_c loop
  tornado_c           tornado_c.iostream.IOStream on the tornado_c loop

Both ends of every connection live in this process (same loop), so the
numbers are for client + server together on 127.0.0.1.

``--via tcp`` makes every connection the way a Tornado application does:
a ``tornado.tcpserver.TCPServer`` (its ``handle_stream`` gets the server end)
and ``tornado.tcpclient.TCPClient().connect()`` (the client end), with the
setups chosen by the switch instead of by hand:
  upstream            tornado_c.uninstall(): asyncio's loop, upstream streams
  switch/loop-only    install(http=False): the tornado_c loop, upstream streams
  switch              install(): the tornado_c loop and the C IOStream
                      (tornado.tcpserver/tcpclient.IOStream patched)

``--via tcp-proc`` measures the server alone: the same line-echo TCPServer
runs in a subprocess started as ``python stream_echo.py --serve-tcp``
(upstream), with ``TORNADO_C_DISABLE=http`` under ``python -m tornado_c``
(loop only) and under ``python -m tornado_c`` (switch), pinned to CPU 0 when
taskset exists; the client (this process, on the full switch, CPU 1) keeps
--conns connections ping-ponging --msg-size byte lines for --duration
seconds.  Reported: round trips/s and the server's CPU-us per round trip
(utime+stime from /proc/<pid>/stat).

    PYTHONPATH=. python benchmarks/stream_echo.py [--conns 8] [--rounds 3000]
                                                  [--bulk-mb 256] [--via tcp]
    PYTHONPATH=. python benchmarks/stream_echo.py --via tcp-proc [--duration 3]
"""

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import tornado.iostream
import tornado.tcpclient
import tornado.tcpserver

import tornado_c
import tornado_c.loop
from tornado_c import iostream as tci


class _Accepting(tornado.tcpserver.TCPServer):
    def __init__(self):
        super().__init__()
        self.accepted = asyncio.Queue()

    def handle_stream(self, stream, address):
        self.accepted.put_nowait(stream)


async def make_pair(cls):
    if cls == "tcp":
        return await make_tcp_pair()
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    client = cls(socket.socket())
    await client.connect(lst.getsockname())
    conn, _ = lst.accept()
    lst.close()
    return cls(conn), client


async def make_tcp_pair():
    """(server end from TCPServer.handle_stream, client end from TCPClient)."""
    server = _Accepting()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.setblocking(False)
    server.add_socket(sock)
    client = await tornado.tcpclient.TCPClient().connect("127.0.0.1", sock.getsockname()[1])
    stream = await server.accepted.get()
    server.stop()
    return stream, client


async def echo_server(stream):
    try:
        while True:
            line = await stream.read_until(b"\n")
            stream.write(line)
    except tornado.iostream.StreamClosedError:
        pass


async def ping(stream, rounds, msg):
    for _ in range(rounds):
        stream.write(msg)
        await stream.read_until(b"\n")


async def bench_pingpong(cls, conns, rounds):
    pairs = [await make_pair(cls) for _ in range(conns)]
    servers = [asyncio.ensure_future(echo_server(s)) for s, _ in pairs]
    msg = b"x" * 99 + b"\n"
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(ping(c, rounds, msg) for _, c in pairs))
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    for s, c in pairs:
        c.close()
        s.close()
    await asyncio.gather(*servers)
    return conns * rounds / dt, conns * rounds / dc


async def bench_bulk(cls, total):
    s, c = await make_pair(cls)
    chunk = b"z" * 65536
    n = total // len(chunk)

    async def writer():
        for _ in range(n):
            await c.write(chunk)

    t0, c0 = time.perf_counter(), time.process_time()
    w = asyncio.ensure_future(writer())
    got = 0
    while got < n * len(chunk):
        got += len(await s.read_bytes(1 << 20, partial=True))
    await w
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    s.close()
    c.close()
    return got / dt / 1e6, got / dc / 1e6


SETUPS = [
    ("upstream/asyncio", asyncio.new_event_loop, tornado.iostream.IOStream),
    ("upstream/tornado_c", tornado_c.loop.new_event_loop, tornado.iostream.IOStream),
    ("tornado_c", tornado_c.loop.new_event_loop, tci.IOStream),
]


def _switched(**components):
    def new_loop():
        tornado_c.uninstall()
        if components:
            tornado_c.install(**components)
        # the policy the switch set decides the loop, as in an application
        return asyncio.new_event_loop()
    return new_loop


TCP_SETUPS = [
    ("upstream", _switched(), "tcp"),
    ("switch/loop-only", _switched(loop=True, http=False), "tcp"),
    ("switch", _switched(loop=True, http=True), "tcp"),
]

# the class the setup should end up with, to catch a switch that did nothing
_EXPECT = {"upstream": tornado.iostream.IOStream,
           "switch/loop-only": tornado.iostream.IOStream, "switch": tci.IOStream}


# ------------------------------------------- --via tcp-proc (server alone)


def serve_tcp():
    """The server of --via tcp-proc: an ordinary Tornado line-echo TCPServer.
    Prints its port and the stream class tornado.tcpserver will use, then
    runs until stdin is closed."""
    from tornado.netutil import bind_sockets

    class Echo(tornado.tcpserver.TCPServer):
        async def handle_stream(self, stream, address):
            try:
                while True:
                    stream.write(await stream.read_until(b"\n"))
            except tornado.iostream.StreamClosedError:
                pass

    async def main():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        server = Echo()
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        cls = tornado.tcpserver.IOStream
        print(sockets[0].getsockname()[1], "%s.%s" % (cls.__module__, cls.__name__),
              type(loop).__module__, flush=True)

        def wait_stdin():
            sys.stdin.read()
            loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))

        threading.Thread(target=wait_stdin, daemon=True).start()
        await stop
        server.stop()

    asyncio.run(main())


def _cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


PROC_SETUPS = [
    # name, argv prefix, TORNADO_C_DISABLE, stream class the server must use
    ("upstream", [], None, "tornado.iostream.IOStream"),
    ("switch/loop-only", ["-m", "tornado_c"], "http", "tornado.iostream.IOStream"),
    ("switch", ["-m", "tornado_c"], "", "tornado_c.iostream.IOStream"),
]


def _pin(cmd, cpu):
    taskset = shutil.which("taskset")
    if taskset and (os.cpu_count() or 1) > 1:
        return [taskset, "-c", str(cpu), *cmd]
    return cmd


def bench_tcp_proc_one(prefix, disable, expect, args):
    env = dict(os.environ)
    env.pop("TORNADO_C_DISABLE", None)
    if disable is not None:
        env["TORNADO_C_DISABLE"] = disable
    cmd = _pin([sys.executable, *prefix, os.path.abspath(__file__), "--serve-tcp"], 0)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            text=True)
    try:
        port, cls, _loop = proc.stdout.readline().split()
        if cls != expect:
            raise SystemExit("server uses %s, expected %s" % (cls, expect))
        return asyncio.run(_drive(int(port), proc.pid, args))
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _drive(port, pid, args):
    msg = b"x" * (args.msg_size - 1) + b"\n"
    count = [0]
    running = [True]

    async def client():
        stream = await tornado.tcpclient.TCPClient().connect("127.0.0.1", port)
        stream.set_nodelay(True)
        while running[0]:
            stream.write(msg)
            await stream.read_bytes(len(msg))
            count[0] += 1
        stream.close()

    tasks = [asyncio.ensure_future(client()) for _ in range(args.conns)]
    await asyncio.sleep(args.warmup)
    n0, t0, c0 = count[0], time.perf_counter(), _cpu_ticks(pid)
    await asyncio.sleep(args.duration)
    n1, t1, c1 = count[0], time.perf_counter(), _cpu_ticks(pid)
    running[0] = False
    await asyncio.gather(*tasks)
    n = n1 - n0
    cpu_us = (c1 - c0) / os.sysconf("SC_CLK_TCK") * 1e6 / n if n else float("nan")
    return n / (t1 - t0), cpu_us


def main_tcp_proc(args):
    # the client is the same fast one for every setup: the full switch
    tornado_c.install()
    try:
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {1})
        runs = {name: [] for name, *_ in PROC_SETUPS}
        for _ in range(args.repeat):
            for name, prefix, disable, expect in PROC_SETUPS:
                runs[name].append(bench_tcp_proc_one(prefix, disable, expect, args))
    finally:
        tornado_c.uninstall()
    med = {name: [_median(col) for col in zip(*rows)] for name, rows in runs.items()}
    print("server in a subprocess (TCPServer line echo, %d B lines, %d connections); "
          "median of %d run(s) of %.1f s" % (args.msg_size, args.conns, args.repeat,
                                              args.duration))
    print("%-20s %14s %20s" % ("server", "round trips/s", "server CPU-us/trip"))
    for name, (rt, us) in med.items():
        print("%-20s %14.0f %20.2f" % (name, rt, us))
    base = med["upstream"]
    print("ratio to upstream (round trips/s; x less server CPU per trip):")
    for name, (rt, us) in med.items():
        # the server's CPU time is counted in clock ticks (10 ms): a very short
        # run can show none, and then there is no ratio to give
        print("%-20s %14s %20s" % (name, _ratio(rt, base[0]), _ratio(base[1], us)))


def _ratio(a, b):
    return "%.2fx" % (a / b) if b else "n/a"


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--bulk-mb", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per setup, interleaved; the median is shown")
    ap.add_argument("--via", choices=("direct", "tcp", "tcp-proc"), default="direct",
                    help="tcp: connections from TCPServer/TCPClient under the switch; "
                    "tcp-proc: the TCPServer alone in a subprocess")
    ap.add_argument("--duration", type=float, default=3.0, help="tcp-proc: seconds measured")
    ap.add_argument("--warmup", type=float, default=0.5, help="tcp-proc: seconds before")
    ap.add_argument("--msg-size", type=int, default=100, help="tcp-proc: line length")
    ap.add_argument("--serve-tcp", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_tcp:
        return serve_tcp()
    if args.via == "tcp-proc":
        return main_tcp_proc(args)
    setups = TCP_SETUPS if args.via == "tcp" else SETUPS
    # name -> list of (rt/s, rt/CPU-s, MB/s, MB/CPU-s)
    runs = {name: [] for name, _, _ in setups}
    try:
        for _ in range(args.repeat):
            for name, new_loop, cls in setups:
                loop = new_loop()
                try:
                    if args.via == "tcp":
                        pair = loop.run_until_complete(make_tcp_pair())
                        for stream in pair:
                            assert type(stream) is _EXPECT[name], (name, type(stream))
                            stream.close()
                    rt = loop.run_until_complete(bench_pingpong(cls, args.conns, args.rounds))
                    mb = loop.run_until_complete(bench_bulk(cls, args.bulk_mb << 20))
                finally:
                    loop.close()
                runs[name].append(rt + mb)
    finally:
        if args.via == "tcp":
            tornado_c.uninstall()
    med = {name: [_median(col) for col in zip(*rows)] for name, rows in runs.items()}
    print("median of %d run(s); 'per CPU-s' = per second of this process's CPU time"
          % args.repeat)
    print("%-20s %14s %14s %12s %12s" % ("setup", "round trips/s", "per CPU-s",
                                         "bulk MB/s", "per CPU-s"))
    for name, m in med.items():
        print("%-20s %14.0f %14.0f %12.0f %12.0f" % (name, *m))
    base = med[setups[0][0]]
    print("ratio to %s:" % setups[0][0])
    for name, m in med.items():
        print("%-20s %13.2fx %13.2fx %11.2fx %11.2fx"
              % (name, *(a / b for a, b in zip(m, base))))


if __name__ == "__main__":
    main()
