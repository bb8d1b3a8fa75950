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

    PYTHONPATH=. python benchmarks/stream_echo.py [--conns 8] [--rounds 3000]
                                                  [--bulk-mb 256] [--via tcp]
"""

import argparse
import asyncio
import socket
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
    ap.add_argument("--via", choices=("direct", "tcp"), default="direct",
                    help="tcp: connections from TCPServer/TCPClient under the switch")
    args = ap.parse_args()
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
