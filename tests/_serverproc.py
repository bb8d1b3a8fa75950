"""Start examples/robust_app.py (or another app) in a subprocess under upstream
Tornado (``python app.py``) or tornado_c (``python -m tornado_c app.py``), and
small raw-socket HTTP helpers shared by the robustness, multi-process,
idle-connection and nginx tests/benchmarks."""

import json
import os
import tempfile
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

from conftest import tornado_c_parent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "examples", "robust_app.py")
MODES = ("upstream", "tornado_c")
NOFILE = 20000


def raise_nofile(n=NOFILE):
    """Raise this process's RLIMIT_NOFILE soft limit to n (or the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def lower_nofile(n):
    """Set this process's RLIMIT_NOFILE soft limit to n (the EMFILE tests)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))


def command(mode, app=APP, *args):
    if mode == "upstream":
        return [sys.executable, app, *args]
    if mode == "tornado_c":
        return [sys.executable, "-m", "tornado_c", app, *args]
    raise ValueError(mode)


class ServerProc:
    """A server subprocess; ``port`` (or ``unix``) is known once started."""

    def __init__(self, mode, *args, app=APP, env=None, nofile=NOFILE):
        self.mode = mode
        full_env = dict(os.environ)
        # The tornado_c under test (the installed build in CI, or the source
        # tree after an in-place build) - never the unbuilt source tree.
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (tornado_c_parent(), full_env.get("PYTHONPATH")) if p
        )
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.pop("TORNADO_C_DISABLE", None)
        if env:
            full_env.update(env)
        self.stderr_path = "/tmp/robust_server_%d_%d.log" % (os.getpid(), id(self))
        self._stderr = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen(
            command(mode, app, *args),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
            cwd=tempfile.gettempdir(),
            text=True,
            start_new_session=True,
            preexec_fn=lambda: raise_nofile(nofile) if nofile >= NOFILE else lower_nofile(nofile),
        )
        self.pid = self.proc.pid
        self.lines = []
        self._cond = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()
        try:
            line = self.wait_line("READY ", 30)
        except BaseException:
            self.cleanup()  # the error message carries the server's stderr
            raise
        target = line.split(" ", 1)[1]
        self.port = int(target) if target.isdigit() else None
        self.unix = None if target.isdigit() else target

    def _reader(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append(None)
            self._cond.notify_all()

    def wait_line(self, prefix, timeout, count=1):
        """Wait until `count` stdout lines start with prefix; return the last."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [l for l in self.lines if l is not None and l.startswith(prefix)]
                if len(found) >= count:
                    return found[count - 1]
                if None in self.lines:
                    raise RuntimeError(
                        "server exited (%s) before %r; stderr:\n%s"
                        % (self.proc.poll(), prefix, self.stderr_text())
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no %r from server; stderr:\n%s" % (prefix, self.stderr_text()))
                self._cond.wait(left)

    def serving_pids(self):
        with self._cond:
            return [int(l.split()[1]) for l in self.lines if l and l.startswith("SERVING ")]

    def stderr_text(self):
        if not self._stderr.closed:
            self._stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM the server's process group; return the exit status."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        self._stderr.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        try:
            os.unlink(self.stderr_path)
        except OSError:
            pass


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def wait_for(pred, timeout, interval=0.05):
    """Poll pred() until true or timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def read_response(sock, timeout=10):
    """Read one HTTP/1.1 response with Content-Length from sock.
    Returns (status_code, headers_dict_lowercase, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("closed before response head: %r" % buf)
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    code = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("closed mid-body")
        rest += d
    return code, headers, rest[:n]


def get(port, path="/pid", sock=None, timeout=10, host="127.0.0.1", extra=b""):
    """GET path (on sock if given, else a new connection closed afterwards)."""
    own = sock is None
    if own:
        sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
        return read_response(sock, timeout)
    finally:
        if own:
            sock.close()


def get_json(port, path="/pid", **kw):
    code, _, body = get(port, path, **kw)
    assert code == 200, (code, body)
    return json.loads(body)


def trim(port):
    """POST /trim: the app runs gc.collect() and malloc_trim(0)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"POST /trim HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        code, _, body = read_response(s)
    finally:
        s.close()
    assert code == 200, (code, body)
    return json.loads(body)


def wait_closed(sock, timeout):
    """Wait until the peer closes sock (EOF or reset), discarding data.
    Returns seconds waited, or None if still open after timeout."""
    t0 = time.monotonic()
    sock.setblocking(False)
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if r:
            try:
                d = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
            except BlockingIOError:
                continue
            if not d:
                return time.monotonic() - t0


def trickle_head(sock, delay, seconds=None, pad=100):
    """Send a request head that never ends (an X-Slow header of `pad` bytes)
    one byte every `delay` seconds.  Returns the seconds until the server
    closed the connection, or None if it was still open after `seconds` (or
    after the last byte)."""
    t0 = time.monotonic()
    for b in b"GET /pid HTTP/1.1\r\nX-Slow: " + b"a" * pad:
        try:
            sock.sendall(bytes([b]))
        except OSError:
            return time.monotonic() - t0
        if wait_closed(sock, delay) is not None:
            return time.monotonic() - t0
        sock.setblocking(True)
        if seconds is not None and time.monotonic() - t0 > seconds:
            break
    return None


def rst_close(sock):
    """Close sock with an RST (SO_LINGER 0) instead of a FIN."""
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class NormalClient(threading.Thread):
    """Keeps issuing GET /pid (keep-alive, plus a new connection every 10th
    request) and records latencies and failures until stopped."""

    def __init__(self, port, interval=0.05):
        super().__init__(daemon=True)
        self.port = port
        self.interval = interval
        self.latencies = []
        self.errors = []
        self._stop_ev = threading.Event()

    def run(self):
        sock = None
        i = 0
        while not self._stop_ev.is_set():
            if sock is None or i % 10 == 0:
                if sock is not None:
                    sock.close()
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            t0 = time.monotonic()
            try:
                code, _, body = get(self.port, "/pid", sock=sock, timeout=10)
                if code != 200 or json.loads(body)["pid"] <= 0:
                    self.errors.append((code, body))
            except Exception as e:  # recorded and asserted on by the test
                self.errors.append(repr(e))
                sock.close()
                sock = None
            self.latencies.append(time.monotonic() - t0)
            i += 1
            self._stop_ev.wait(self.interval)
        if sock is not None:
            sock.close()

    def finish(self):
        self._stop_ev.set()
        self.join(15)
        return self.latencies, self.errors


def settle_rss(pid, wait=0.5, tries=10):
    """VmRSS once two readings `wait` apart agree within 1%."""
    prev = rss_kib(pid)
    for _ in range(tries):
        time.sleep(wait)
        cur = rss_kib(pid)
        if abs(cur - prev) <= prev * 0.01:
            return cur
        prev = cur
    return prev


def open_idle(port, n, request=b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n"):
    """n keep-alive connections, each after one request/response."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(request)
            code, _, _ = read_response(s, 30)
            if code != 200:
                raise RuntimeError("status %d" % code)
            socks.append(s)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        rst_close(s)
    socks.clear()
