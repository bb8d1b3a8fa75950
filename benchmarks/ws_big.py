"""WebSocket at scale: one 64 MiB message, broadcast, idle connections --
upstream vs tornado_c, same run.

The server is one unmodified Tornado app (``--serve``), run as
``python ws_big.py --serve`` (upstream) or ``python -m tornado_c ws_big.py
--serve`` (tornado_c), pinned to CPU 0.  The load is made by separate
client processes pinned to CPU 1 (raw non-blocking sockets and epoll,
handshakes prepared in advance; several processes, several 127.0.0.x
source addresses), so the client is not what is measured.

Scenarios (``--scenarios big,broadcast,idle``):
  big        one 64 MiB binary message (zero mask key: the server still
             unmasks it) sent to an echo handler and read back whole:
             seconds per round trip (median of --rounds) and the server's
             peak RSS (VmHWM) over its RSS before the first message.
  broadcast  N subscribers (--broadcast 1000,10000); one POST makes the
             server call write_message(msg) on each; time from the POST
             until the last client has the message (the clients record
             CLOCK_MONOTONIC, shared by all processes), median of --rounds,
             and the server's own time in that loop.
  idle       as many idle WebSocket connections as one server process can
             hold (--idle N, default: the fd hard limit minus 100), from
             --clients processes on 127.0.0.1..4; memory per connection =
             (server RSS with them - RSS before) / N, and where it stopped.

    python benchmarks/ws_big.py [--scenarios ...] [--modes upstream,tornado_c]
        [--json out.json] [--quick]

Wall-clock figures (big, broadcast) depend on the machine's load; RSS
figures do not.
"""

import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import ws_echo  # noqa: E402  (server_cmd/server_env/wait_ready conventions)

MODES = ("upstream", "tornado_c")
SERVER_CPU, CLIENT_CPU = 0, 1
BIG = 64 << 20
HANDSHAKE = (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return 0


# ------------------------------------------------------------------ server


def serve():
    import asyncio

    import tornado.web
    import tornado.websocket

    raise_nofile()
    subs = set()

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, m):
            self.write_message(m, binary=isinstance(m, bytes))

    class Sub(tornado.websocket.WebSocketHandler):
        def open(self):
            subs.add(self)

        def on_close(self):
            subs.discard(self)

    class Pub(tornado.web.RequestHandler):
        def post(self):
            msg = self.request.body.decode()
            t0 = time.perf_counter()
            for c in list(subs):
                c.write_message(msg)
            self.write({"n": len(subs), "loop_s": time.perf_counter() - t0})

    class Stats(tornado.web.RequestHandler):
        def get(self):
            pid = os.getpid()
            self.write({"rss_kb": proc_status(pid, "VmRSS"), "hwm_kb": proc_status(pid, "VmHWM"),
                        "subs": len(subs), "fds": len(os.listdir("/proc/self/fd"))})

    async def main():
        app = tornado.web.Application([("/echo", Echo), ("/sub", Sub), ("/pub", Pub),
                                       ("/stats", Stats)],
                                      websocket_max_message_size=128 << 20)
        server = app.listen(0, "127.0.0.1", backlog=4096)
        port = list(server._sockets.values())[0].getsockname()[1]
        print("READY %d" % port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# ------------------------------------------------------------------ clients


def http(port, method, path, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    s.sendall(b"%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
              % (method.encode(), path.encode(), len(body)) + body)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return json.loads(data.partition(b"\r\n\r\n")[2])


def open_many(port, n, src, path, batch=256):
    """n WebSocket connections from source address src; returns the list
    of sockets (handshake done) and the first error, if any."""
    sel = selectors.DefaultSelector()
    socks, err = [], None
    hs = HANDSHAKE % path.encode()
    pending = 0
    started = 0
    while len(socks) < n and err is None:
        while started < n and pending < batch:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((src, 0))
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
            except OSError as e:
                s.close()
                err = "client: %s" % e
                break
            sel.register(s, selectors.EVENT_WRITE, [b""])
            pending += 1
            started += 1
        if pending == 0:
            break
        for key, ev in sel.select(60):
            s, buf = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    err = "connect: %s" % os.strerror(e)
                    sel.unregister(s)
                    s.close()
                    pending -= 1
                    continue
                s.send(hs)
                sel.modify(s, selectors.EVENT_READ, buf)
                continue
            try:
                d = s.recv(4096)
            except OSError as e:
                d, err = b"", "recv: %s" % e
            if not d:
                err = err or "server closed a connection during the handshake"
                sel.unregister(s)
                s.close()
                pending -= 1
                continue
            buf[0] += d
            if b"\r\n\r\n" in buf[0]:
                if not buf[0].startswith(b"HTTP/1.1 101"):
                    err = "handshake: %r" % buf[0][:80]
                sel.unregister(s)
                pending -= 1
                socks.append(s)
    sel.close()
    return socks, err


def client_main(port, n, src, path):
    """Child process: open n connections, say UP, then obey stdin:
    'wait SIZE' -> read one server frame of SIZE payload bytes on every
    connection, print 'GOT <monotonic of the last one>'; 'quit'."""
    raise_nofile()
    os.sched_setaffinity(0, {CLIENT_CPU})
    socks, err = open_many(port, n, src, path)
    print("UP %d %s" % (len(socks), json.dumps(err)), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        size = int(cmd[1])
        want = size + (2 if size < 126 else 4 if size <= 0xFFFF else 10)
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ, [0])
        left, last = len(socks), time.monotonic()
        while left:
            for key, _ in sel.select(120):
                d = key.fileobj.recv(65536)
                if not d:
                    raise SystemExit("server closed a subscriber")
                key.data[0] += len(d)
                if key.data[0] >= want:
                    sel.unregister(key.fileobj)
                    left -= 1
                    last = time.monotonic()
        sel.close()
        print("GOT %.6f" % last, flush=True)
    for s in socks:
        s.close()


# ------------------------------------------------------------------ driver


def start_server(mode):
    env = ws_echo.server_env(mode)
    cmd = [sys.executable] + (["-m", "tornado_c"] if mode != "upstream" else []) + [HERE, "--serve"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}))
    return proc, ws_echo.wait_ready(proc)


def stop(proc):
    proc.kill()
    proc.wait(30)


def start_clients(port, total, nproc, path):
    per = [total // nproc + (1 if i < total % nproc else 0) for i in range(nproc)]
    procs = []
    for i, k in enumerate(per):
        src = "127.0.0.%d" % (1 + i % 4)
        procs.append(subprocess.Popen(
            [sys.executable, HERE, "--client", str(port), str(k), src, path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ws_echo.server_env("upstream")))
    up, errs = 0, []
    for p in procs:
        line = p.stdout.readline().split(" ", 2)
        if line[0] != "UP":
            raise SystemExit("client failed: %r" % line)
        up += int(line[1])
        e = json.loads(line[2])
        if e:
            errs.append(e)
    return procs, up, errs


def end_clients(procs):
    for p in procs:
        try:
            p.stdin.write("quit\n")
            p.stdin.flush()
        except OSError:
            pass
    for p in procs:
        p.wait(120)


def scenario_big(mode, rounds):
    proc, port = start_server(mode)
    try:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(HANDSHAKE % b"/echo")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        frame = struct.pack("!BBQ", 0x82, 0xFF, BIG) + b"\0\0\0\0" + b"x" * BIG
        want = BIG + 10
        inbuf = bytearray(want)
        view = memoryview(inbuf)
        times = []
        base = proc_status(proc.pid, "VmRSS")
        cpu0 = ws_echo.proc_cpu(proc.pid)
        for _ in range(rounds):
            t0 = time.monotonic()
            s.sendall(frame)
            got = 0
            while got < want:
                k = s.recv_into(view[got:], want - got)
                if not k:
                    raise SystemExit("server closed during the big echo")
                got += k
            times.append(time.monotonic() - t0)
        assert inbuf[:2] == b"\x82\x7f" and inbuf[-1:] == b"x"
        hwm = proc_status(proc.pid, "VmHWM")
        cpu = (ws_echo.proc_cpu(proc.pid) - cpu0) / rounds
        s.close()
    finally:
        stop(proc)
    return {"bytes": BIG, "rounds": rounds, "seconds": times, "median_s": statistics.median(times),
            "server_cpu_s": cpu,
            "rss_before_kb": base, "peak_rss_kb": hwm, "peak_over_base_mb": (hwm - base) / 1024}


def scenario_broadcast(mode, n, rounds, nproc):
    proc, port = start_server(mode)
    procs = []
    try:
        procs, up, errs = start_clients(port, n, nproc, "/sub")
        if up != n:
            raise SystemExit("broadcast: only %d of %d connected: %s" % (up, n, errs))
        for _ in range(100):
            if http(port, "GET", "/stats")["subs"] == n:
                break
            time.sleep(0.1)
        msg = "m" * 100
        walls, loops = [], []
        for _ in range(rounds):
            for p in procs:
                p.stdin.write("wait %d\n" % len(msg))
                p.stdin.flush()
            time.sleep(0.5)  # the clients are waiting
            t0 = time.monotonic()
            r = http(port, "POST", "/pub", msg.encode())
            last = max(float(p.stdout.readline().split()[1]) for p in procs)
            walls.append(last - t0)
            loops.append(r["loop_s"])
    finally:
        end_clients(procs)
        stop(proc)
    return {"clients": n, "message_bytes": 100, "rounds": rounds, "seconds": walls,
            "median_s": statistics.median(walls), "server_loop_s": loops,
            "median_server_loop_s": statistics.median(loops)}


def scenario_idle(mode, n, nproc):
    proc, port = start_server(mode)
    procs = []
    try:
        # one connection first: imports and first-use allocations are in the base
        procs0, _, _ = start_clients(port, 1, 1, "/sub")
        time.sleep(0.5)
        before = http(port, "GET", "/stats")
        t0 = time.monotonic()
        procs, up, errs = start_clients(port, n - 1, nproc, "/sub")
        took = time.monotonic() - t0
        time.sleep(1.0)
        after = http(port, "GET", "/stats")
        procs += procs0
    finally:
        end_clients(procs)
        stop(proc)
    held = after["subs"] - before["subs"]
    return {"asked": n, "connected": up + 1, "held_by_server": after["subs"], "errors": errs[:3],
            "server_fds": after["fds"], "fd_hard_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            "rss_before_kb": before["rss_kb"], "rss_after_kb": after["rss_kb"],
            "kb_per_conn": (after["rss_kb"] - before["rss_kb"]) / max(held, 1),
            "connect_s": took}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="big,broadcast,idle")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--broadcast", default="1000,10000")
    ap.add_argument("--idle", type=int, default=0, help="connections (0: fd hard limit - 100)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.client:
        port, n, src, path = args.client
        client_main(int(port), int(n), src, path)
        return 0
    hard = raise_nofile()
    idle_n = args.idle or hard - 100
    if args.quick:
        args.rounds, args.broadcast, idle_n = 1, "1000", min(idle_n, 2000)
    results = {"python": sys.version.split()[0], "scenarios": {}}
    comparisons = []
    for scen in args.scenarios.split(","):
        variants = ([("broadcast%s" % n, int(n)) for n in args.broadcast.split(",")]
                    if scen == "broadcast" else [(scen, None)])
        for name, n in variants:
            per = {}
            for mode in args.modes.split(","):
                started = time.monotonic()
                if scen == "big":
                    r = scenario_big(mode, args.rounds)
                    line = "%.2f s/round trip, server CPU %.2f s, peak RSS %.0f MB (+%.0f MB)" % (
                        r["median_s"], r["server_cpu_s"], r["peak_rss_kb"] / 1024,
                        r["peak_over_base_mb"])
                elif scen == "broadcast":
                    r = scenario_broadcast(mode, n, args.rounds, args.clients)
                    line = "%.3f s until all %d have it (server loop %.3f s)" % (
                        r["median_s"], n, r["median_server_loop_s"])
                elif scen == "idle":
                    r = scenario_idle(mode, idle_n, args.clients)
                    line = "%d connections held, %.2f kB/conn (RSS %d -> %d kB), errors %s" % (
                        r["held_by_server"], r["kb_per_conn"], r["rss_before_kb"],
                        r["rss_after_kb"], r["errors"])
                else:
                    raise SystemExit("unknown scenario %s" % scen)
                per[mode] = r
                print("%-14s %-10s %s   (%.0f s)" % (name, mode, line, time.monotonic() - started),
                      flush=True)
            results["scenarios"][name] = per
            if "upstream" not in per or "tornado_c" not in per:
                continue
            rows = {"big": [(name, "s", "median_s"), ("big server CPU", "s", "server_cpu_s"),
                            ("big peak RSS over base", "MB", "peak_over_base_mb")],
                    "broadcast": [(name, "s", "median_s")],
                    "idle": [(name, "kB/connection", "kb_per_conn")]}[scen]
            for label, unit, key in rows:
                values = {m: per[m][key] for m in per}
                comparisons.append({"label": label, "unit": unit, "values": values,
                                    "ratio": values["upstream"] / max(values["tornado_c"], 1e-9),
                                    "ratio_label": "upstream / tornado_c"})
    results["comparisons"] = comparisons
    for c in comparisons:
        print("%-24s upstream/tornado_c = %.2fx" % (c["label"], c["ratio"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
