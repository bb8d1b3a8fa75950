"""The recipe of docs/deploy-nginx.md, for real: nginx (Debian package) runs
in the foreground with a config generated from
examples/nginx/nginx.conf.template in a temp dir (own pid/log/temp paths,
listening on a free 127.0.0.1 port), in front of two
``python -m tornado_c examples/nginx/app.py`` processes (127.0.0.1 ports or
Unix sockets).  Checks: requests through nginx reach both processes, the
tornado_c HTTP server serves them, X-Real-IP / X-Forwarded-For from nginx
become request.remote_ip (xheaders=True), nginx keeps upstream keep-alive
connections, and everything stops cleanly.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

import _serverproc as sp
from conftest import free_port

NGINX_DIR = os.path.join(sp.ROOT, "examples", "nginx")
APP = os.path.join(NGINX_DIR, "app.py")
TEMPLATE = os.path.join(NGINX_DIR, "nginx.conf.template")


def find_nginx():
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if path:
        return path, None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "nginx is not installed and apt-get cannot be run here (not root)"
    r = subprocess.run(
        ["apt-get", "install", "-y", "-q", "nginx"],
        capture_output=True,
        text=True,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        timeout=300,
    )
    if r.returncode != 0:
        return None, "apt-get install nginx failed: %s" % r.stderr.strip()[-300:]
    return (shutil.which("nginx") or "/usr/sbin/nginx"), None


def render_config(prefix, listen, upstreams):
    with open(TEMPLATE) as f:
        text = f.read()
    user_line = "user root;" if os.geteuid() == 0 else ""
    servers = "\n        ".join("server %s;" % u for u in upstreams)
    text = (
        text.replace("@PREFIX@", prefix)
        .replace("@LISTEN@", listen)
        .replace("@UPSTREAM_SERVERS@", servers)
        .replace("@USER_LINE@", user_line)
    )
    assert "@" not in text, "unreplaced placeholder"
    return text


def request_via(port, source_ip, path="/", extra=b""):
    """GET through nginx from a given loopback source address (127.0.0.0/8
    is all loopback on Linux, so nginx sees a remote_addr other than the
    127.0.0.1 it uses itself towards the apps)."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    try:
        code, headers, body = sp.get(port, path, sock=s, extra=extra)
    finally:
        s.close()
    assert code == 200, (code, body)
    return json.loads(body)


def established_to(app):
    """Connected sockets whose server side is this app's listening address
    (/proc/net/tcp local port, or /proc/net/unix path, state connected)."""
    if app.port is not None:
        n = 0
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state = fields[1], fields[3]
                if state == "01" and local == "0100007F:%04X" % app.port:
                    n += 1
        return n
    n = 0
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            # Num RefCount Protocol Flags Type St Inode Path
            if len(fields) >= 8 and fields[7] == app.unix and fields[5] == "03":
                n += 1
    return n


class Nginx:
    def __init__(self, binary, prefix, config):
        self.prefix = prefix
        self.conf = os.path.join(prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(config)
        t = subprocess.run([binary, "-t", "-p", prefix, "-e", os.path.join(prefix, "error.log"),
                            "-c", self.conf], capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        self.proc = subprocess.Popen(
            [binary, "-p", prefix, "-e", os.path.join(prefix, "error.log"),
             "-c", self.conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_listening(self, port, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: %s\n%s" % (self.proc.returncode, self.log()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("nginx not listening:\n" + self.log())

    def log(self):
        try:
            with open(os.path.join(self.prefix, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def nginx_binary():
    path, why = find_nginx()
    if path is None:
        pytest.skip(why)
    return path


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_nginx_recipe(nginx_binary, tmp_path, transport):
    prefix = str(tmp_path)
    apps = []
    nginx = None
    try:
        for i in range(2):
            if transport == "tcp":
                args = ("--port", "0")
            else:
                args = ("--unix", os.path.join(prefix, "app%d.sock" % i))
            apps.append(sp.ServerProc("tornado_c", *args, app=APP))
        upstreams = [
            "127.0.0.1:%d" % a.port if a.port is not None else "unix:%s" % a.unix for a in apps
        ]
        listen = free_port()
        nginx = Nginx(nginx_binary, prefix, render_config(prefix, "127.0.0.1:%d" % listen, upstreams))
        nginx.wait_listening(listen)

        # both processes answer through nginx (round robin), on the C server
        seen = {}
        for i in range(20):
            info = request_via(listen, "127.0.0.1")
            seen[info["pid"]] = info
        assert set(seen) == {a.pid for a in apps}, seen
        for info in seen.values():
            assert info["server"].startswith("tornado_c."), info
            assert info["protocol"] == "http"

        # X-Real-IP / X-Forwarded-For set by nginx become remote_ip; the app
        # itself is only ever connected to from 127.0.0.1 (or a Unix socket),
        # so another loopback source address proves the headers are used, and
        # alternating addresses check that nothing leaks between requests on
        # one upstream keep-alive connection.
        for n in range(12):
            src = "127.0.0.%d" % (2 + n % 3)
            info = request_via(listen, src)
            assert info["remote_ip"] == src, info
            assert info["x_real_ip"] == src, info
            assert info["x_forwarded_for"] == src, info
            assert info["host"] == "t", info  # the client's Host header, passed on
        # a client-supplied X-Forwarded-For is extended by nginx, and
        # X-Real-IP (the address nginx saw) still wins
        info = request_via(listen, "127.0.0.9", extra=b"X-Forwarded-For: 198.51.100.7\r\n")
        assert info["x_forwarded_for"] == "198.51.100.7, 127.0.0.9", info
        assert info["remote_ip"] == "127.0.0.9", info

        # nginx keeps idle upstream connections open (keepalive 32): after the
        # traffic, connections to the apps are still established
        time.sleep(0.3)
        held = [established_to(a) for a in apps]
        assert all(n >= 1 for n in held), held
        assert not [l for l in nginx.log().splitlines() if "[error]" in l or "[emerg]" in l], nginx.log()
    finally:
        status = nginx.stop() if nginx is not None else 0
        app_status = [a.stop() for a in apps]
        errs = [a.stderr_text() for a in apps]
        for a in apps:
            a.cleanup()
    assert status == 0, status
    assert app_status == [0] * len(apps), (app_status, errs)
    for e in errs:
        assert "Traceback" not in e, e
    if transport == "unix":
        assert not [p for p in os.listdir(prefix) if p.endswith(".sock")]
