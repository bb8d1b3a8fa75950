"""IOStream micro-benchmark: line echo ping-pong and a bulk transfer.

Three setups, each in a fresh subprocess-free loop in this process:
  upstream/asyncio    tornado.iostream.IOStream on asyncio's default loop
  upstream/tornado_c  tornado.iostream.IOStream on the tornado_c loop
  tornado_c           tornado_c.iostream.IOStream on the tornado_c loop

Both ends of every connection live in this process (same loop), so the
numbers are for client + server together on 127.0.0.1.

    PYTHONPATH=. python benchmarks/stream_echo.py [--conns 8] [--rounds 3000]
"""

import argparse
import asyncio
import socket
import time

import tornado.iostream

import tornado_c.loop
from tornado_c import iostream as tci


async def make_pair(cls):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    client = cls(socket.socket())
    await client.connect(lst.getsockname())
    conn, _ = lst.accept()
    lst.close()
    return cls(conn), client


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
    t0 = time.perf_counter()
    await asyncio.gather(*(ping(c, rounds, msg) for _, c in pairs))
    dt = time.perf_counter() - t0
    for s, c in pairs:
        c.close()
        s.close()
    await asyncio.gather(*servers)
    return conns * rounds / dt


async def bench_bulk(cls, total):
    s, c = await make_pair(cls)
    chunk = b"z" * 65536
    n = total // len(chunk)

    async def writer():
        for _ in range(n):
            await c.write(chunk)

    t0 = time.perf_counter()
    w = asyncio.ensure_future(writer())
    got = 0
    while got < n * len(chunk):
        got += len(await s.read_bytes(1 << 20, partial=True))
    await w
    dt = time.perf_counter() - t0
    s.close()
    c.close()
    return got / dt / 1e6


SETUPS = [
    ("upstream/asyncio", asyncio.new_event_loop, tornado.iostream.IOStream),
    ("upstream/tornado_c", tornado_c.loop.new_event_loop, tornado.iostream.IOStream),
    ("tornado_c", tornado_c.loop.new_event_loop, tci.IOStream),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--bulk-mb", type=int, default=256)
    args = ap.parse_args()
    print("%-20s %16s %14s" % ("setup", "round trips/s", "bulk MB/s"))
    for name, new_loop, cls in SETUPS:
        loop = new_loop()
        try:
            rt = loop.run_until_complete(bench_pingpong(cls, args.conns, args.rounds))
            mb = loop.run_until_complete(bench_bulk(cls, args.bulk_mb << 20))
        finally:
            loop.close()
        print("%-20s %16.0f %14.0f" % (name, rt, mb))


if __name__ == "__main__":
    main()
