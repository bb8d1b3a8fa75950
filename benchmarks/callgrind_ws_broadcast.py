"""Broadcast: server instructions per recipient of one WebSocket message sent
to many connections, counted by callgrind (tornado_c vs upstream).

The server is an unmodified Tornado app: a chat-style handler keeps its
connections in a list, and a control connection asks it to broadcast: each
round builds one new message (a 1 KiB str by default) and sends it with
``for c in clients: c.write_message(msg)`` -- what chat apps do.  The
clients (--clients connections, default 1000) live in a separate process that
is not measured and drains every socket; the control connection gets "done"
after the rounds.  Each mode runs twice under ``valgrind --tool=callgrind``
(R and 2R rounds, same set-up) and ``(Ir(2R) - Ir(R)) / (R * clients)`` is
reported: the instructions one more recipient of one more message costs the
server (the handshakes and start-up cancel out).

    python benchmarks/callgrind_ws_broadcast.py [--clients 1000] [--rounds 10]
        [--size 1024] [--binary] [--modes tornado_c,upstream] [--json out.json]

Modes: tornado_c (python -m tornado_c: every component), tornado_c-nows
(TORNADO_C_DISABLE=websocket), upstream (plain Tornado on asyncio).
``--tree PATH`` runs the tornado_c modes from another built source tree (a
before/after comparison).
"""

import argparse
import json
import os
import resource
import selectors
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _wsbench import callgrind_server, handshake  # noqa: E402

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
MODES = ("tornado_c", "tornado_c-nows", "upstream")


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ------------------------------------------------------------------ server


def serve(size, binary):
    import asyncio

    import tornado.web
    import tornado.websocket

    raise_nofile(65536)

    async def main():
        done = asyncio.Event()
        clients = []

        class Member(tornado.websocket.WebSocketHandler):
            def open(self):
                clients.append(self)

        class Control(tornado.websocket.WebSocketHandler):
            def on_message(self, m):
                rounds = int(m)
                for i in range(rounds):
                    # a new message object each round, as a chat relays
                    # what it received
                    msg = (b"%08d" % i) * (size // 8) if binary else ("%08d" % i) * (size // 8)
                    for c in clients:
                        c.write_message(msg, binary=binary)
                self.write_message("done")

            def on_close(self):
                done.set()

        app = tornado.web.Application([("/m", Member), ("/c", Control)])
        server = app.listen(0, "127.0.0.1", backlog=4096)
        port = list(server._sockets.values())[0].getsockname()[1]
        print("READY %d" % port, flush=True)
        await done.wait()
        server.stop()

    asyncio.run(main())


# ------------------------------------------------------------------ client

def connect(port, path):
    s, _head, rest = handshake(port, path)
    return s, rest


def client_main(clients, rounds, size, port):
    raise_nofile(clients + 100)
    sel = selectors.DefaultSelector()
    members = []
    for _ in range(clients):
        s, rest = connect(port, b"/m")
        s.setblocking(False)
        members.append(s)
        sel.register(s, selectors.EVENT_READ, [len(rest)])
    # the server opened every member before it answers the control
    # connection's handshake (open() follows the 101 in the same callback)
    ctl, rest = connect(port, b"/c")
    ctl.sendall(bytes([0x81, 0x80 | len(str(rounds))]) + b"\0\0\0\0" + str(rounds).encode())
    ctl.setblocking(False)
    sel.register(ctl, selectors.EVENT_READ, None)
    got_ctl = bytearray(rest)
    header = 2 if size < 126 else 4 if size <= 0xFFFF else 10
    want = rounds * (header + size)
    while True:
        for key, _ in sel.select(120):
            if key.data is None:
                d = key.fileobj.recv(65536)
                if not d:
                    raise SystemExit("control connection closed")
                got_ctl += d
            else:
                while True:
                    try:
                        d = key.fileobj.recv(1 << 20)
                    except BlockingIOError:
                        break
                    if not d:
                        raise SystemExit("member connection closed")
                    key.data[0] += len(d)
        if b"done" in got_ctl:
            break
    # every member got every byte
    for s in members:
        while sel.get_key(s).data[0] < want:
            s.setblocking(True)
            d = s.recv(1 << 20)
            if not d:
                raise SystemExit("member connection closed early")
            sel.get_key(s).data[0] += len(d)
        if sel.get_key(s).data[0] != want:
            raise SystemExit("member got %d bytes, want %d" % (sel.get_key(s).data[0], want))
    ctl.setblocking(True)
    ctl.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
    for s in members:
        s.close()
    while ctl.recv(65536):
        pass
    ctl.close()


# ------------------------------------------------------------------ driver


def env_for(mode, tree):
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("TORNADO_C_DISABLE", None)
    src = tree if mode != "upstream" else ""
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    if mode == "tornado_c-nows":
        env["TORNADO_C_DISABLE"] = "websocket"
    return env


def callgrind_once(mode, tree, clients, rounds, size, binary):
    server = (["-m", "tornado_c"] if mode != "upstream" else []) + [HERE, "--serve", str(size)]
    server += ["--binary"] if binary else []
    client = [HERE, "--client", str(clients), str(rounds), str(size)]
    return callgrind_server(server, env_for(mode, tree), client, env_for("upstream", ""), mode)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--binary", action="store_true")
    ap.add_argument("--modes", default="tornado_c,upstream")
    ap.add_argument("--tree", default=ROOT, help="source tree with a built tornado_c")
    ap.add_argument("--json")
    ap.add_argument("--serve", nargs=1, help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(int(args.serve[0]), args.binary)
        return 0
    if args.client:
        client_main(*(int(x) for x in args.client))
        return 0
    results = {"python": sys.version.split()[0], "clients": args.clients, "rounds": args.rounds,
               "size": args.size, "binary": args.binary, "tree": args.tree, "modes": {}}
    for mode in args.modes.split(","):
        t0 = time.monotonic()
        one = callgrind_once(mode, args.tree, args.clients, args.rounds, args.size, args.binary)
        two = callgrind_once(mode, args.tree, args.clients, 2 * args.rounds, args.size, args.binary)
        per = (two - one) / (args.rounds * args.clients)
        results["modes"][mode] = {"ir_r": one, "ir_2r": two, "ir_per_recipient": per}
        print("%-15s %10.0f Ir/recipient   (%.0f s)" % (mode, per, time.monotonic() - t0),
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
