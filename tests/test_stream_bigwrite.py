"""A single IOStream.write() larger than 4 GiB reaches the peer whole.

Regression: libuv buffer lengths are 32-bit and the C stream passed the full
length, so a 4.6 GB write delivered 314 MB and still resolved its future."""

import asyncio
import hashlib
import socket
import threading

import pytest

N = (4 << 30) + (300 << 20) + 7  # > 4 GiB, not a multiple of the 1 GiB piece


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.skipif(mem_available() < 12 * (1 << 30), reason="needs ~12 GiB of free memory")
def test_write_over_4_gib_arrives_whole():
    from tornado_c.iostream import IOStream
    from tornado_c.loop import EventLoop

    data = bytes(range(256)) * (N // 256) + b"x" * (N % 256)
    expected = hashlib.blake2b(data, digest_size=16).hexdigest()
    got = []

    def reader(sock):
        h = hashlib.blake2b(digest_size=16)
        n = 0
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while True:
            k = sock.recv_into(buf)
            if not k:
                break
            h.update(view[:k])
            n += k
        got.append((n, h.hexdigest()))

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        t = threading.Thread(target=reader, args=(b,))
        t.start()
        try:
            stream = IOStream(a)
            assert type(stream).__module__ == "tornado_c.iostream"
            await stream.write(data)
            stream.close()
            await asyncio.get_running_loop().run_in_executor(None, t.join)
        finally:
            b.close()

    loop = EventLoop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert got == [(N, expected)]
