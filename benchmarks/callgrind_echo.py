"""Instructions per echoed message of an echo SERVER on asyncio, uvloop and
the tornado_c loop, counted by callgrind (TLS and UDP echo).

Wall-clock figures on a shared 2-CPU VM swing by tens of percent; the
instructions a server executes per message do not.  Each (case, loop) runs
twice under ``valgrind --tool=callgrind`` (N and 2N messages, same set-up) and
``(Ir(2N) - Ir(N)) / N`` is reported: what one more message costs the server,
start-up and tear-down cancelled out.  The client is a separate process that
is not measured (plain blocking sockets, one message in flight).

    python benchmarks/callgrind_echo.py [--cases udp64,tls1k,tls64k]
        [--loops asyncio,uvloop,tornado_c] [--n 1000] [--json out.json]

Cases:
  udp64   a 64-byte datagram to a DatagramProtocol that sends it back
  tls1k   1 KiB over TLS to a Protocol that writes it back (ssl= server)
  tls64k  64 KiB the same way
  tcp1k   1 KiB over plain TCP (reference for the TLS cases)
  tls1k-streams, tls64k-streams
          the TLS cases with an asyncio.start_server() handler (StreamReader
          read / StreamWriter write + drain) instead of a Protocol

Instruction counts include OpenSSL's (the same library for every loop) and
exclude the kernel's (system calls are not counted).  Under valgrind the
server runs some 50 times slower, so the client's next UDP datagram is often
already waiting when the server asks again: loops that read until EAGAIN
(uvloop, tornado_c's Unix datagram path) then handle several per wakeup,
which a normal run does not; compare UDP figures with that in mind.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _benchlib import LOOPS, child_env, new_loop, use_source_tree  # noqa: E402
CASES = {"udp64": ("udp", 64), "tls1k": ("tls", 1024), "tls64k": ("tls", 65536),
         "tcp1k": ("tcp", 1024), "tls1k-streams": ("tls", 1024),
         "tls64k-streams": ("tls", 65536)}
COLLECTED_RE = re.compile(r"Collected\s*:\s*(\d+)")

CLIENT = r"""
import socket, ssl, sys
kind, port, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
msg = b"x" * size
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    for _ in range(n):
        s.send(msg)
        s.recv(65536)
    s.send(b"")  # the end (an empty datagram is also sent by 3.11's client socket)
    sys.exit(0)
s = socket.create_connection(("127.0.0.1", port))
if kind == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
for _ in range(n):
    s.sendall(msg)
    got = 0
    while got < size:
        data = s.recv(size - got)
        if not data:
            sys.exit("server closed the connection")
        got += len(data)
s.close()
"""


# --------------------------------------------------------------------------
# worker side: the server, runs under valgrind




def worker(case, loop_kind, n):
    import asyncio
    import ssl
    import threading

    kind, size = CASES[case]
    loop = new_loop(loop_kind)
    asyncio.set_event_loop(loop)

    async def main():
        done = loop.create_future()
        if kind == "udp":
            class Echo(asyncio.DatagramProtocol):
                def connection_made(self, tr):
                    self.tr = tr

                def datagram_received(self, data, addr):
                    if not data:
                        if not done.done():
                            done.set_result(None)
                        return
                    self.tr.sendto(data, addr)

            tr, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
            port = tr.get_extra_info("sockname")[1]
        else:
            class Echo(asyncio.Protocol):
                def connection_made(self, tr):
                    self.tr = tr

                def data_received(self, data):
                    self.tr.write(data)

                def connection_lost(self, exc):
                    if not done.done():
                        done.set_result(None)

            ctx = None
            if kind == "tls":
                import tornado.test

                d = os.path.dirname(tornado.test.__file__)
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(os.path.join(d, "test.crt"), os.path.join(d, "test.key"))
            if case.endswith("-streams"):
                async def handle(reader, writer):
                    while True:
                        data = await reader.read(262144)
                        if not data:
                            break
                        writer.write(data)
                        await writer.drain()
                    writer.close()
                    if not done.done():
                        done.set_result(None)

                tr = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
            else:
                tr = await loop.create_server(Echo, "127.0.0.1", 0, ssl=ctx)
            port = tr.sockets[0].getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-c", CLIENT, kind, str(port), str(size),
                                 str(n)])
        exited = loop.create_future()

        def wait_client():
            rc = proc.wait()
            loop.call_soon_threadsafe(exited.set_result, rc)

        threading.Thread(target=wait_client, daemon=True).start()
        rc = await exited
        await asyncio.wait_for(done, 30)
        tr.close()
        if rc != 0:
            raise SystemExit("client failed: %d" % rc)

    loop.run_until_complete(main())
    loop.close()


# --------------------------------------------------------------------------
# driver side


def run_once(case, loop_kind, n, env):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
               sys.executable, os.path.abspath(__file__), "--worker", case, loop_kind, str(n)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise SystemExit("%s/%s n=%d failed:\n%s" % (case, loop_kind, n,
                                                        proc.stderr[-3000:]))
        m = COLLECTED_RE.search(proc.stderr)
        if not m:
            raise SystemExit("no 'Collected' line from callgrind:\n" + proc.stderr[-2000:])
        return int(m.group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="udp64,tls1k,tls64k")
    ap.add_argument("--loops", default=",".join(LOOPS))
    ap.add_argument("--n", type=int, default=1000, help="messages in the smaller run "
                    "(a tenth of it for tls64k)")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--worker", nargs=3, metavar=("CASE", "LOOP", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        use_source_tree()
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return 0
    env = child_env(PYTHONHASHSEED="0")
    results = {"python": sys.version.split()[0], "cases": {}}
    print("%-8s %-10s %14s %14s %12s %10s" % ("case", "loop", "Ir(N)", "Ir(2N)", "Ir/msg",
                                              "vs uvloop"))
    for case in args.cases.split(","):
        n = args.n // 10 if case.startswith("tls64k") else args.n
        per = {}
        for lk in args.loops.split(","):
            started = time.monotonic()
            one = run_once(case, lk, n, env)
            two = run_once(case, lk, 2 * n, env)
            per[lk] = {"ir_n": one, "ir_2n": two, "n": n, "ir_per_msg": (two - one) / n}
            ref = per.get("uvloop", {}).get("ir_per_msg")
            print("%-8s %-10s %14d %14d %12.0f %10s   (%.0f s)" % (
                case, lk, one, two, per[lk]["ir_per_msg"],
                "%.2f" % (ref / per[lk]["ir_per_msg"]) if ref else "-",
                time.monotonic() - started), flush=True)
        results["cases"][case] = per
    print("vs uvloop = uvloop's instructions per message / this loop's (> 1: cheaper)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
