"""What the WebSocket callgrind benchmarks (callgrind_ws_broadcast.py,
ws_deflate_echo.py) share: a raw-socket handshake and one callgrind run of a
server process with an unmeasured client."""

import os
import re
import socket
import subprocess
import sys
import tempfile

COLLECTED_RE = re.compile(r"Collected\s*:\s*(\d+)")
HANDSHAKE = (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n%s\r\n")


def handshake(port, path, extra=b""):
    """A connected socket after a 101 answer to GET path (extra: more header
    lines, each ending in CRLF); returns (socket, response head, bytes
    after the head)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(HANDSHAKE % (path, extra))
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise SystemExit("server closed during the handshake")
        buf += d
    if not buf.startswith(b"HTTP/1.1 101"):
        raise SystemExit("handshake failed: %r" % buf[:200])
    head, _, rest = buf.partition(b"\r\n\r\n")
    return s, head, rest


def callgrind_server(server_args, env, client_args, client_env, label):
    """Run `python [server_args]` under callgrind; once it prints "READY
    <port>", run `python [client_args] <port>` (unmeasured) to completion;
    the server must then exit.  Returns the instructions callgrind counted."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, sys.executable]
        proc = subprocess.Popen(cmd + list(server_args), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp)
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            raise SystemExit("server did not start: %r %s" % (line, proc.stderr.read()[-3000:]))
        cl = subprocess.run([sys.executable] + list(client_args) + [line.split()[1]],
                            capture_output=True, text=True, env=client_env)
        if cl.returncode != 0:
            proc.kill()
            raise SystemExit("client failed: %s" % cl.stderr[-2000:])
        _, err = proc.communicate(timeout=1200)
        if proc.returncode != 0:
            raise SystemExit("%s failed:\n%s" % (label, err[-3000:]))
        m = COLLECTED_RE.search(err)
        if not m:
            raise SystemExit("no 'Collected' line from callgrind:\n" + err[-2000:])
        return int(m.group(1))
