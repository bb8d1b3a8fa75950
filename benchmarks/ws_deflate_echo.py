"""WebSocket echo with permessage-deflate: server instructions per echoed
message, upstream vs tornado_c, counted by callgrind.

The server is an unmodified Tornado app whose handler returns {} from
get_compression_options (zlib level 6, mem_level 8, context takeover both
ways) and writes every message back.  The client is a separate process that
is not measured: one connection offering permessage-deflate, one message in
flight; it compresses each message live (its own context takeover) and
reads the compressed answer's frame.  Messages are --size bytes of
word-like ASCII text drawn from a pool of 256 different ones, so the
server's zlib sees varied text rather than the same message again.

Each mode runs twice under ``valgrind --tool=callgrind`` (N and 2N
messages) and ``(Ir(2N) - Ir(N)) / N`` is reported.

    python benchmarks/ws_deflate_echo.py [--size 1024] [--n 1000]
        [--modes upstream,tornado_c-nows,tornado_c] [--json out.json]

Modes: upstream (plain Tornado on asyncio), tornado_c-nows
(TORNADO_C_DISABLE=websocket: upstream's WebSocket code and its Python
zlib objects on tornado_c's loop/stream/server), tornado_c (every component:
C framing and zlib from C).
"""

import argparse
import glob
import json
import os
import random
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _wsbench import callgrind_server, handshake  # noqa: E402

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = ROOT if glob.glob(os.path.join(ROOT, "tornado_c", "_core*.so")) else ""
MODES = ("upstream", "tornado_c-nows", "tornado_c")


def serve():
    import asyncio

    import tornado.web
    import tornado.websocket

    async def main():
        done = asyncio.Event()

        class Echo(tornado.websocket.WebSocketHandler):
            def get_compression_options(self):
                return {}

            def on_message(self, m):
                self.write_message(m, binary=isinstance(m, bytes))

            def on_close(self):
                done.set()

        app = tornado.web.Application([("/ws", Echo)])
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        print("READY %d" % port, flush=True)
        await done.wait()
        server.stop()

    asyncio.run(main())


WORDS = ("the quick brown fox jumps over lazy dog tornado socket message chat room user "
         "hello world server client frame deflate window level memory stream buffer "
         "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda").split()


def pool(size):
    rnd = random.Random(1)
    out = []
    for _ in range(256):
        words = []
        n = 0
        while n < size:
            w = rnd.choice(WORDS) + (str(rnd.randrange(1000)) if rnd.random() < 0.2 else "")
            words.append(w)
            n += len(w) + 1
        out.append(" ".join(words)[:size].encode())
    return out


def recv_exact(s, n, buf):
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            raise SystemExit("server closed the connection")
        buf += d
    out = bytes(buf[:n])
    del buf[:n]
    return out


def client_main(n, size, port):
    msgs = pool(size)
    s, head, rest = handshake(port, b"/ws", b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
    if b"permessage-deflate" not in head:
        raise SystemExit("permessage-deflate was not negotiated: %r" % head)
    buf = bytearray(rest)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    decomp = zlib.decompressobj(-15)
    mask = b"\x11\x22\x33\x44"
    for i in range(n):
        m = msgs[i % len(msgs)]
        payload = (comp.compress(m) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
        ln = len(payload)
        head = struct.pack("BB", 0xC1, 0x80 | ln) if ln < 126 else struct.pack("!BBH", 0xC1, 0xFE, ln)
        s.sendall(head + mask + bytes(b ^ mask[j % 4] for j, b in enumerate(payload)))
        first, ln = recv_exact(s, 2, buf)
        if ln == 126:
            ln, = struct.unpack("!H", recv_exact(s, 2, buf))
        elif ln == 127:
            ln, = struct.unpack("!Q", recv_exact(s, 8, buf))
        data = recv_exact(s, ln, buf)
        if i < 3 or i % 97 == 0:  # spot checks: the echo is right
            out = decomp.decompress(data + b"\x00\x00\xff\xff")
            if first != 0xC1 or out != m:
                raise SystemExit("bad echo at %d" % i)
        else:
            decomp.decompress(data + b"\x00\x00\xff\xff")
    s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
    while s.recv(65536):
        pass
    s.close()


def server_env(mode):
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("TORNADO_C_DISABLE", None)
    if SRC and mode != "upstream":
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    if mode == "tornado_c-nows":
        env["TORNADO_C_DISABLE"] = "websocket"
    return env


def callgrind_once(mode, n, size):
    server = (["-m", "tornado_c"] if mode != "upstream" else []) + [HERE, "--serve"]
    client = [HERE, "--client", str(n), str(size)]
    return callgrind_server(server, server_env(mode), client, server_env("upstream"), mode)


def main(argv=None):
    global SRC
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--tree", default=SRC, help="source tree with a built tornado_c "
                    "(default: this one if built, else the installed package)")
    ap.add_argument("--json")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.client:
        client_main(*(int(x) for x in args.client))
        return 0
    SRC = args.tree
    results = {"python": sys.version.split()[0], "size": args.size, "n": args.n, "modes": {}}
    for mode in args.modes.split(","):
        t0 = time.monotonic()
        one = callgrind_once(mode, args.n, args.size)
        two = callgrind_once(mode, 2 * args.n, args.size)
        per = (two - one) / args.n
        results["modes"][mode] = {"ir_n": one, "ir_2n": two, "ir_per_msg": per}
        print("%-15s %10.0f Ir/msg   (%.0f s)" % (mode, per, time.monotonic() - t0), flush=True)
    m = results["modes"]
    if "upstream" in m and "tornado_c" in m:
        results["ratio"] = m["upstream"]["ir_per_msg"] / m["tornado_c"]["ir_per_msg"]
        print("upstream/tornado_c = %.2fx" % results["ratio"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
