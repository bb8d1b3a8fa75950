"""WebSocket echo: server CPU per echoed message, upstream vs tornado_c.

The server is one unmodified Tornado app (a WebSocketHandler whose
on_message writes the message back), run three ways:
  upstream        python ws_echo.py --serve          (asyncio loop, upstream)
  tornado_c-nows  python -m tornado_c ... with TORNADO_C_DISABLE=websocket
                  (C loop, stream and HTTP server; upstream's WebSocket code)
  tornado_c       python -m tornado_c ws_echo.py --serve (everything)
The client is a separate process that is not measured, masked frames
prepared in advance, one message in flight per connection.

Three measures:
  --callgrind   instructions the server executes per message, counted by
                callgrind: each (case, mode) runs with N and 2N messages and
                (Ir(2N) - Ir(N)) / N is reported (start-up cancelled out;
                repeatable on a loaded machine; one Python client
                connection).  The default.
  --cpu         server CPU-us per message from /proc/<pid>/stat (utime +
                stime; server pinned to CPU 0, load generator to CPU 1)
                while the load generator echoes for --duration seconds after
                a second of warm-up; wall-clock sensitive, for quiet machines
                (what benchmarks/run.py runs as the ``ws_echo`` scenario).
                The load generator is benchmarks/ws_load.c (epoll, --conns
                connections, --depth messages in flight on each), compiled
                here with `cc -O2` into a temporary directory: it costs a
                fraction of the server's CPU per message, so the server is
                the bottleneck (its busy share is reported: near 1.0 on a
                quiet machine).  --client python uses --clients Python
                processes instead (blocking sockets; they set the pace).
  --syscalls    system calls the server makes per message: `strace -c -f`
                attached to the server while the C load generator runs for
                --duration and for 2 x --duration seconds; the difference
                over the difference in messages (the handshakes and closes
                cancel out).  strace slows the server several times: the
                counts, not the time, are the figure.

    python benchmarks/ws_echo.py [--cases b64,b1k,b64k,t1k] [--modes ...]
        [--n 2000] [--cpu | --syscalls] [--conns 64] [--depth 1]
        [--client c|python] [--json out.json] [--quick]

Cases: bN = binary message of N bytes, t1k = 1 KiB ASCII text message.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = ROOT if glob.glob(os.path.join(ROOT, "tornado_c", "_core*.so")) else ""
CASES = {"b64": (64, True), "b1k": (1024, True), "b64k": (65536, True), "t1k": (1024, False)}
MODES = ("upstream", "tornado_c-nows", "tornado_c")
COLLECTED_RE = re.compile(r"Collected\s*:\s*(\d+)")


# ------------------------------------------------------------------ server


def serve(once):
    import asyncio

    import tornado.web
    import tornado.websocket

    async def main():
        done = asyncio.Event()

        class Echo(tornado.websocket.WebSocketHandler):
            def on_message(self, m):
                self.write_message(m, binary=isinstance(m, bytes))

            def on_close(self):
                if once:
                    done.set()

        app = tornado.web.Application([("/ws", Echo)], websocket_max_message_size=1 << 24)
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        print("READY %d" % port, flush=True)
        await done.wait()
        server.stop()

    asyncio.run(main())


# ------------------------------------------------------------------ client


def client_frame(payload, binary):
    mask = b"\x11\x22\x33\x44"
    n = len(payload)
    first = 0x82 if binary else 0x81
    if n < 126:
        head = struct.pack("BB", first, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", first, 0xFE, n)
    else:
        head = struct.pack("!BBQ", first, 0xFF, n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def server_frame_len(n):
    return n + (2 if n < 126 else 4 if n <= 0xFFFF else 10)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise SystemExit("server closed during the handshake")
        buf += d
    if not buf.startswith(b"HTTP/1.1 101"):
        raise SystemExit("handshake failed: %r" % buf[:200])
    return s, buf.partition(b"\r\n\r\n")[2]


def echo(s, frame, want, count, deadline=None):
    """Send frame and read `want` bytes back, count times (or until
    deadline); returns the number of round trips."""
    buf = bytearray(want)
    view = memoryview(buf)
    done = 0
    while done < count:
        if deadline is not None and done % 16 == 0 and time.monotonic() > deadline:
            break
        s.sendall(frame)
        got = 0
        while got < want:
            k = s.recv_into(view[got:], want - got)
            if not k:
                raise SystemExit("server closed the connection")
            got += k
        done += 1
    return done


def client_main(port, case, n, duration):
    size, binary = CASES[case]
    payload = b"x" * size
    frame = client_frame(payload, binary)
    s, rest = connect(port)
    assert not rest
    deadline = time.monotonic() + duration if duration else None
    done = echo(s, frame, server_frame_len(size), n if n else 1 << 62, deadline)
    s.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000
    while s.recv(65536):
        pass
    s.close()
    print(done, flush=True)


# ------------------------------------------------------------------ driver


def server_cmd(mode, once):
    cmd = [sys.executable]
    if mode != "upstream":
        cmd += ["-m", "tornado_c"]
    return cmd + [HERE, "--serve-once" if once else "--serve"]


def server_env(mode):
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("TORNADO_C_DISABLE", None)
    if SRC:
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    if mode == "tornado_c-nows":
        env["TORNADO_C_DISABLE"] = "websocket"
    return env


def wait_ready(proc):
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit("server did not start: %r %s" % (line, proc.stderr.read()[-3000:]))
    return int(line.split()[1])


def run_client(port, case, n, duration=0):
    out = subprocess.run([sys.executable, HERE, "--client-proc", str(port), case, str(n),
                          str(duration)], capture_output=True, text=True, env=server_env("upstream"))
    if out.returncode != 0:
        raise SystemExit("client failed: %s" % out.stderr[-2000:])
    return int(out.stdout.split()[-1])


def callgrind_once(case, mode, n):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + server_cmd(mode, True)
        proc = subprocess.Popen(cmd, env=server_env(mode), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp)
        port = wait_ready(proc)
        run_client(port, case, n)
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise SystemExit("%s/%s failed:\n%s" % (case, mode, err[-3000:]))
        m = COLLECTED_RE.search(err)
        if not m:
            raise SystemExit("no 'Collected' line from callgrind:\n" + err[-2000:])
        return int(m.group(1))


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin(cpu):
    # server on CPU 0, clients on CPU 1: the clients do not take the
    # server's CPU (a no-op on a machine with one CPU)
    def pin():
        if os.cpu_count() and os.cpu_count() > 1:
            os.sched_setaffinity(0, {cpu})
    return pin


def cpu_once_python(case, mode, clients, duration):
    """--client python: `clients` blocking Python client processes."""
    proc = subprocess.Popen(server_cmd(mode, False), env=server_env(mode),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_pin(0))
    try:
        port = wait_ready(proc)
        run_client(port, case, 50)  # warm-up
        c0 = proc_cpu(proc.pid)
        t0 = time.monotonic()
        cl = [subprocess.Popen([sys.executable, HERE, "--client-proc", str(port), case, "0",
                                str(duration)], stdout=subprocess.PIPE, text=True,
                               env=server_env("upstream"), preexec_fn=_pin(1))
              for _ in range(clients)]
        total = sum(int(p.communicate()[0].split()[-1]) for p in cl)
        wall = time.monotonic() - t0
        cpu = proc_cpu(proc.pid) - c0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return {"client": "python", "clients": clients, "messages": total, "wall_s": wall,
            "server_cpu_s": cpu, "cpu_us_per_msg": cpu / total * 1e6,
            "msgs_per_s": total / wall, "server_busy": cpu / wall}


LOADGEN_SRC = os.path.join(os.path.dirname(HERE), "ws_load.c")
_loadgen = []  # [path of the compiled ws_load, its TemporaryDirectory]


def loadgen_path():
    """benchmarks/ws_load.c compiled (once per run) with `cc -O2` into a
    temporary directory."""
    if _loadgen:
        return _loadgen[0]
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc.split()[0]):
        raise SystemExit("ws_echo.py: no C compiler (%r) to build the load generator %s; "
                         "install one (or set CC), or use --client python"
                         % (cc, LOADGEN_SRC))
    tmp = tempfile.TemporaryDirectory(prefix="ws_load")
    exe = os.path.join(tmp.name, "ws_load")
    out = subprocess.run(cc.split() + ["-O2", "-o", exe, LOADGEN_SRC],
                         capture_output=True, text=True)
    if out.returncode != 0:
        tmp.cleanup()
        raise SystemExit("ws_echo.py: compiling %s failed:\n%s" % (LOADGEN_SRC, out.stderr))
    _loadgen[:] = [exe, tmp]
    return exe


def run_loadgen(port, case, conns, depth, duration, warmup, pid=None):
    """Run the C load generator against port; returns its JSON (errors and
    a failed set-up raise SystemExit)."""
    size, binary = CASES[case]
    cmd = [loadgen_path(), "--port", str(port), "--conns", str(conns), "--depth", str(depth),
           "--size", str(size), "--duration", str(duration), "--warmup", str(warmup)]
    if not binary:
        cmd.append("--text")
    if pid is not None:
        cmd += ["--pid", str(pid)]
    out = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_pin(1))
    if out.returncode == 2 or not out.stdout.strip():
        raise SystemExit("load generator failed: %s" % out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["errors"] or out.returncode != 0:
        raise SystemExit("load generator: %d error(s): %s" % (res["errors"], out.stderr[-2000:]))
    return res


def cpu_once(case, mode, conns, depth, duration):
    """Server CPU-us/msg under the C load generator (the server's CPU read
    by the load generator at both ends of its counted window)."""
    proc = subprocess.Popen(server_cmd(mode, False), env=server_env(mode),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_pin(0))
    try:
        port = wait_ready(proc)
        res = run_loadgen(port, case, conns, depth, duration, 1.0, pid=proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    n = res["messages"]
    if not n or res["server_cpu_s"] is None:
        raise SystemExit("%s/%s: no messages echoed or no server CPU figure: %r"
                         % (case, mode, res))
    return {"client": "c", "connections": conns, "depth": depth, "messages": n,
            "wall_s": res["seconds"], "server_cpu_s": res["server_cpu_s"],
            "cpu_us_per_msg": res["server_cpu_s"] / n * 1e6, "msgs_per_s": res["msgs_per_s"],
            "server_busy": res["server_busy"],
            "server_sys_share": res["server_sys_s"] / res["server_cpu_s"] if res["server_cpu_s"] else None,
            "loadgen_cpu_us_per_msg": res["loadgen_cpu_s"] / n * 1e6}


STRACE_ROW_RE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")


def strace_run(case, mode, conns, depth, duration):
    """One server under `strace -c -f` for a whole load generator run of
    `duration` seconds: ({syscall: calls}, messages echoed in the run)."""
    proc = subprocess.Popen(server_cmd(mode, False), env=server_env(mode),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_pin(0))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "strace.txt")
        tracer = None
        try:
            port = wait_ready(proc)
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(proc.pid)],
                                      stderr=subprocess.PIPE, text=True)
            # strace says "Process N attached" (one line per thread) once it is in
            line = tracer.stderr.readline()
            if "attached" not in line:
                raise SystemExit("strace did not attach: %r %s" % (line, tracer.stderr.read()))
            time.sleep(0.2)  # the other threads' lines
            res = run_loadgen(port, case, conns, depth, duration, 0.0)
        finally:
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(30)
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        with open(out) as f:
            table = f.read()
    calls = {}
    for row in table.splitlines():
        m = STRACE_ROW_RE.match(row)
        if m and m.group(3) != "total":
            calls[m.group(3)] = int(m.group(1))
    return calls, res["messages_total"]


def syscalls_once(case, mode, conns, depth, duration):
    """System calls of the server per message: two traced runs, of
    `duration` and 2 * `duration` seconds, and (calls(long) - calls(short))
    / (messages(long) - messages(short)): the connections' handshakes and
    closes, the same in both, cancel out (as start-up does for
    --callgrind)."""
    if not shutil.which("strace"):
        raise SystemExit("ws_echo.py --syscalls needs strace")
    short, n1 = strace_run(case, mode, conns, depth, duration)
    long_, n2 = strace_run(case, mode, conns, depth, 2 * duration)
    n = n2 - n1
    if n <= 0:
        raise SystemExit("%s/%s: the longer traced run echoed no more messages (%d, %d)"
                         % (case, mode, n1, n2))
    diff = {k: long_.get(k, 0) - short.get(k, 0) for k in set(short) | set(long_)}
    total = sum(diff.values())
    return {"messages_short": n1, "messages_long": n2, "connections": conns, "depth": depth,
            "syscalls_per_msg": total / n,
            "per_msg": {k: round(v / n, 4) for k, v in
                        sorted(diff.items(), key=lambda kv: -kv[1]) if abs(v / n) >= 0.001}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="b64,b1k,b64k,t1k")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--n", type=int, default=2000,
                    help="messages in the smaller callgrind run (a tenth for b64k)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--callgrind", action="store_true",
                     help="server instructions per message (the default)")
    how.add_argument("--cpu", action="store_true", help="measure server CPU-us/msg instead")
    how.add_argument("--syscalls", action="store_true",
                     help="count the server's system calls per message (strace -c)")
    ap.add_argument("--client", choices=("c", "python"), default="c",
                    help="--cpu load: the C load generator (default) or Python processes")
    ap.add_argument("--conns", type=int, default=64,
                    help="C load generator: connections (default 64)")
    ap.add_argument("--depth", type=int, default=1,
                    help="C load generator: messages in flight per connection (default 1)")
    ap.add_argument("--clients", type=int, default=4, help="--client python: processes")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-once", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client-proc", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve or args.serve_once:
        serve(args.serve_once)
        return 0
    if args.client_proc:
        port, case, n, duration = args.client_proc
        client_main(int(port), case, int(n), float(duration))
        return 0
    if args.conns < 1 or not 1 <= args.depth <= 1024:
        ap.error("--conns must be >= 1 and --depth in 1..1024")
    if args.quick:
        args.n, args.duration = max(args.n // 4, 100), 1.0
    measure = "cpu" if args.cpu else "syscalls" if args.syscalls else "callgrind"
    if measure != "callgrind" and (args.client == "c" or args.syscalls):
        loadgen_path()  # a missing compiler stops the run before any server starts
    modes = args.modes.split(",")
    results = {"python": sys.version.split()[0], "measure": measure, "cases": {}}
    if measure == "cpu":
        results["client"] = ("C load generator (benchmarks/ws_load.c): %d connections, "
                             "%d message(s) in flight each" % (args.conns, args.depth)
                             if args.client == "c" else
                             "%d Python client processes" % args.clients)
    key, unit = {"cpu": ("cpu_us_per_msg", "server CPU-us/msg"),
                 "syscalls": ("syscalls_per_msg", "server system calls/msg"),
                 "callgrind": ("ir_per_msg", "server instructions/msg")}[measure]
    comparisons = []
    for case in args.cases.split(","):
        per = {}
        for mode in modes:
            started = time.monotonic()
            if measure == "cpu":
                if args.client == "c":
                    per[mode] = cpu_once(case, mode, args.conns, args.depth, args.duration)
                else:
                    per[mode] = cpu_once_python(case, mode, args.clients, args.duration)
                r = per[mode]
                print("%-5s %-15s %10.2f CPU-us/msg %10.0f msg/s  server busy %.2f%s   (%.0f s)" % (
                    case, mode, r["cpu_us_per_msg"], r["msgs_per_s"], r["server_busy"],
                    "" if r.get("server_sys_share") is None else
                    ", %.0f%% in the kernel" % (100 * r["server_sys_share"]),
                    time.monotonic() - started), flush=True)
            elif measure == "syscalls":
                per[mode] = r = syscalls_once(case, mode, args.conns, args.depth, args.duration)
                print("%-5s %-15s %8.3f syscalls/msg  %s   (%.0f s)" % (
                    case, mode, r["syscalls_per_msg"],
                    " ".join("%s=%.3f" % kv for kv in list(r["per_msg"].items())[:6]),
                    time.monotonic() - started), flush=True)
            else:
                n = args.n // 10 if case == "b64k" else args.n
                one = callgrind_once(case, mode, n)
                two = callgrind_once(case, mode, 2 * n)
                per[mode] = {"ir_n": one, "ir_2n": two, "n": n, "ir_per_msg": (two - one) / n}
                print("%-5s %-15s %12.0f Ir/msg   (%.0f s)" % (
                    case, mode, per[mode]["ir_per_msg"], time.monotonic() - started), flush=True)
        results["cases"][case] = per
        if "upstream" in per and "tornado_c" in per:
            comparisons.append({
                "label": "%s echo" % case,
                "unit": unit,
                "values": {m: per[m][key] for m in per},
                "ratio": per["upstream"][key] / per["tornado_c"][key],
                "ratio_label": "upstream / tornado_c (x less server %s)" % (
                    "CPU" if measure == "cpu" else unit.split("/")[0].split(" ", 1)[1]),
            })
    results["comparisons"] = comparisons
    for c in comparisons:
        print("%-10s upstream/tornado_c = %.2fx" % (c["label"], c["ratio"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
