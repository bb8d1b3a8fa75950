"""AsyncHTTPClient behaviour, upstream's against tornado_c's.

Each scenario below runs twice: with upstream's SimpleAsyncHTTPClient on a
plain asyncio loop (the switch off), and under the switch (tornado_c.install(),
the tornado_c loop: the C stream, tornado_c.simple_httpclient's connection).
What the scenario returns (for every fetch: code, reason, headers in
get_all() order, body, effective_url, the error's type, message and code, or
the raised exception; plus whatever the callbacks saw and what the server
received) must be the same.  Each scenario also checks the upstream outcome
is the one it was written for (a redirect was followed, a timeout happened),
so a scenario that went wrong on both sides does not pass as "equal".

The servers run in threads on blocking sockets (tests/http_client_corpus.py
style raw responses), the same for both runs and independent of the loop
under test: plain TCP, TLS (tornado's own test certificate) and a Unix
socket.  Timing-dependent scenarios use margins of several times the
timeout and compare outcomes, never durations.

A difference the switched client has would be marked xfail(strict=True)
with what differs and listed in the README's client section; there is
none now.
"""

import asyncio
import base64
import gzip
import json
import logging
import os
import re
import socket
import socketserver
import ssl
import tempfile
import struct
import threading
import time
import urllib.parse
import zlib

import pytest

import tornado
from tornado import gen
from tornado.httpclient import HTTPRequest
from tornado.netutil import Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from conftest import new_loop

pytest.importorskip("tornado_c._core")

CERT_DIR = os.path.join(os.path.dirname(tornado.__file__), "test")
CERT = os.path.join(CERT_DIR, "test.crt")
KEY = os.path.join(CERT_DIR, "test.key")


# -- the servers --------------------------------------------------------------


class _Request:
    def __init__(self, method, target, headers, body=b"", chunked=False):
        self.method = method
        self.target = target
        self.path, _, q = target.partition("?")
        self.query = {k: v[0] for k, v in urllib.parse.parse_qs(q).items()}
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.chunked = chunked

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class _Conn:
    """A blocking socket with a read buffer."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_until(self, delim, limit=1 << 20):
        while delim not in self.buf:
            if len(self.buf) > limit:
                raise OSError("too long")
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers.append((k, v.strip()))
        return _Request(method, target, headers)

    def read_body(self, req):
        te = req.header("Transfer-Encoding")
        if te is not None and te.lower() == "chunked":
            req.chunked = True
            body = b""
            while True:
                size = int(self.read_until(b"\r\n")[:-2], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    break
                body += self.read_exact(size)
                self.read_exact(2)
            req.body = body
        elif req.header("Content-Length") is not None:
            req.body = self.read_exact(int(req.header("Content-Length")))

    def send(self, data):
        self.sock.sendall(data)


def _response(code, reason, headers, body, length=True):
    lines = ["HTTP/1.1 %d %s" % (code, reason)]
    lines += ["%s: %s" % kv for kv in headers]
    if length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _echo_body(req):
    return json.dumps({
        "method": req.method,
        "target": req.target,
        "headers": req.headers,
        "body": req.body.decode("latin-1"),
        "chunked": req.chunked,
    }).encode()


def _echo(conn, req, state):
    conn.send(_response(200, "OK", [("Content-Type", "application/json")], _echo_body(req)))


def _status(conn, req, state):
    code = int(req.query.get("code", "200"))
    reason = req.query.get("reason", "Whatever")
    conn.send(_response(code, reason, [("X-Status", str(code))], b"status %d" % code))


def _redirect(conn, req, state):
    code = int(req.query["code"])
    conn.send(_response(code, "Moved", [("Location", req.query["to"])], b"moved"))


def _chain(conn, req, state):
    n = int(req.query["n"])
    if n == 0:
        return _echo(conn, req, state)
    conn.send(_response(302, "Found", [("Location", "/chain?n=%d" % (n - 1))], b""))


def _loop(conn, req, state):
    conn.send(_response(302, "Found", [("Location", "/loop")], b"again"))


def _slow(conn, req, state):
    time.sleep(float(req.query["delay"]))
    conn.send(_response(200, "OK", [], b"slow"))


_PLAIN = b"compressible text " * 200


def _encoded(conn, req, state):
    kind = req.query["kind"]
    if kind == "gzip":
        body, enc = gzip.compress(_PLAIN, mtime=0), "gzip"
    elif kind == "deflate":
        body, enc = zlib.compress(_PLAIN), "deflate"
    elif kind == "badgzip":
        body, enc = b"\x1f\x8b\x08\x00 this is not gzip at all", "gzip"
    else:
        body, enc = gzip.compress(_PLAIN, mtime=0), "x-unknown"
    conn.send(_response(200, "OK", [("Content-Encoding", enc)], body))


def _chunked(conn, req, state):
    pause = float(req.query.get("pause", "0"))
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
    for piece in (b"first", b"second-chunk", b"3"):
        time.sleep(pause)
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    time.sleep(pause)
    conn.send(b"0\r\n\r\n")


def _trickle(conn, req, state):
    pause = float(req.query.get("pause", "0.003"))
    data = _response(200, "Trickled", [("X-Slow", "yes")], b"one byte at a time")
    for i in range(len(data)):
        conn.send(data[i:i + 1])
        time.sleep(pause)


def _early_close(conn, req, state):
    pass  # the handler closes the socket


def _truncated(conn, req, state):
    if req.query["kind"] == "cl":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
    elif req.query["kind"] == "chunked":
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nshort")
    elif req.query["kind"] == "head":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Cut: ye")
    else:  # close-delimited: complete by definition
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the close")


def _huge_headers(conn, req, state):
    n = int(req.query["n"])
    conn.send(_response(200, "OK", [("X-Big", "b" * n)], b"after the big header"))


def _big(conn, req, state):
    n = int(req.query["n"])
    body = b"x" * n
    if req.query.get("framing") == "chunked":
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        if n:
            conn.send(b"%x\r\n%s\r\n" % (n, body))
        conn.send(b"0\r\n\r\n")
    elif req.query.get("framing") == "close":
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
    else:
        conn.send(_response(200, "OK", [], body))


def _continue(conn, req, state):
    mode = req.query["mode"]
    state.setdefault("expect", []).append(req.header("Expect"))
    if mode == "100":
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.read_body(req)
        _echo(conn, req, state)
    elif mode == "417":
        conn.send(_response(417, "Expectation Failed", [("Connection", "close")], b"no"))
    else:  # answers at once, never asks for the body
        conn.send(_response(200, "OK", [("Connection", "close")], b"early answer"))


def _reset(conn, req, state):
    """Part of a response, then an RST (SO_LINGER 0) instead of a FIN."""
    if req.query.get("after") == "head":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\npartial")
        time.sleep(0.1)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _order(conn, req, state):
    with state["lock"]:
        state.setdefault("order", []).append(req.query["id"])
    time.sleep(float(req.query.get("delay", "0.1")))
    conn.send(_response(200, "OK", [], req.query["id"].encode()))


ROUTES = {
    "/echo": _echo,
    "/status": _status,
    "/redirect": _redirect,
    "/chain": _chain,
    "/loop": _loop,
    "/slow": _slow,
    "/encoded": _encoded,
    "/chunked": _chunked,
    "/trickle": _trickle,
    "/early-close": _early_close,
    "/truncated": _truncated,
    "/huge-headers": _huge_headers,
    "/big": _big,
    "/continue": _continue,
    "/order": _order,
    "/reset": _reset,
}
# these read (or refuse) the request body themselves
_OWN_BODY = {"/continue"}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(15)
        state = self.server.state
        try:
            if self.server.tls is not None:
                sock = self.server.tls.wrap_socket(sock, server_side=True)
            conn = _Conn(sock)
            req = conn.read_head()
            if req.path not in _OWN_BODY:
                conn.read_body(req)
            with state["lock"]:
                state.setdefault("log", []).append((req.method, req.target))
            ROUTES[req.path](conn, req, state)
        except (OSError, EOFError, ValueError, KeyError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class Servers:
    def __init__(self):
        self.state = {"lock": threading.Lock()}
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(CERT, KEY)
        self._dir = tempfile.mkdtemp(prefix="tc-client-")
        self.unix_path = os.path.join(self._dir, "http.sock")
        self._servers = []
        for kind, ctx in (("plain", None), ("tls", tls), ("unix", None)):
            if kind == "unix":
                srv = _UnixServer(self.unix_path, _Handler)
            else:
                srv = _TCPServer(("127.0.0.1", 0), _Handler)
            self.add_server(srv, ctx)
        self.port = self._servers[0].server_address[1]
        self.tls_port = self._servers[1].server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.tls_url = "https://127.0.0.1:%d" % self.tls_port

    def add_server(self, srv, ctx):
        """Serve the routes on `srv` (TLS with `ctx` unless None), sharing
        this object's state; closed with the others."""
        srv.state = self.state
        srv.tls = ctx
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self._servers.append(srv)

    def reset(self):
        with self.state["lock"]:
            for k in [k for k in self.state if k != "lock"]:
                del self.state[k]

    def received(self, key):
        with self.state["lock"]:
            return list(self.state.get(key, ()))

    def close(self):
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        try:
            os.unlink(self.unix_path)
            os.rmdir(self._dir)
        except OSError:
            pass


@pytest.fixture(scope="module")
def servers():
    s = Servers()
    yield s
    s.close()


# -- running a scenario in both modes ----------------------------------------


def _error(err):
    if err is None:
        return None
    return (type(err).__name__, str(err), getattr(err, "code", None))


def _resp(resp):
    return {
        "code": resp.code,
        "reason": resp.reason,
        "headers": None if resp.headers is None else list(resp.headers.get_all()),
        "body": resp.body,
        "effective_url": resp.effective_url,
        "error": _error(resp.error),
    }


async def fetch(client, *args, **kw):
    """One fetch's outcome: the response's fields, or the raised error."""
    try:
        resp = await client.fetch(*args, **kw)
    except Exception as e:
        out = {"raised": _error(e)}
        resp = getattr(e, "response", None)
        if resp is not None:
            out["response"] = _resp(resp)
        return out
    return _resp(resp)


def echoed(out):
    """The request the echo handler saw, from a fetch outcome."""
    resp = out.get("response", out)
    return json.loads(resp["body"])


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        # a socket's file number differs between runs
        msg = re.sub(r"^SSL Error on \d+ ", "SSL Error on FD ", record.getMessage())
        self.records.append((record.name, record.levelname, msg))


def _run(mode, scenario, servers, client_class=SimpleAsyncHTTPClient, **client_kw):
    """The scenario's outcome in one mode, and what tornado logged
    (servers: anything with reset())."""
    import tornado.http1connection
    import tornado.simple_httpclient
    import tornado_c

    before = tornado_c.active()
    tornado_c.uninstall()
    if mode == "upstream":
        loop = asyncio.SelectorEventLoop()
    else:
        tornado_c.install()
        loop = new_loop("tornado_c")
    servers.reset()
    try:
        connection_class = tornado.simple_httpclient.HTTP1Connection
        if mode == "upstream":
            assert connection_class is tornado.http1connection.HTTP1Connection
        else:
            assert connection_class.__module__ == "tornado_c.simple_httpclient"

        async def main():
            client = client_class(force_instance=True, **client_kw)
            try:
                return await scenario(client, servers)
            finally:
                client.close()

        cap = _Capture()
        logger = logging.getLogger("tornado")
        logger.addHandler(cap)
        try:
            out = loop.run_until_complete(asyncio.wait_for(main(), 30))
            # let the server threads finish what the scenario started
            loop.run_until_complete(asyncio.sleep(0.05))
        finally:
            logger.removeHandler(cap)
        return out, cap.records
    finally:
        loop.close()
        tornado_c.uninstall()
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


def compare(scenario, servers, check, **client_kw):
    """Run `scenario` both ways; the upstream outcome must pass `check`, and
    tornado_c's must equal it."""
    up, up_logs = _run("upstream", scenario, servers, **client_kw)
    check(up)
    ours, our_logs = _run("tornado_c", scenario, servers, **client_kw)
    assert ours == up
    assert our_logs == up_logs


def _ok(out):
    assert out.get("error") is None and "raised" not in out, out


# -- redirects ----------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "HEAD", "DELETE"])
def test_redirect_method_and_body(servers, code, method):
    async def scenario(client, srv):
        body = b"the body" if method in ("POST", "PUT") else None
        out = await fetch(client, srv.url + "/redirect?code=%d&to=/echo" % code, method=method,
                          body=body, headers={"Content-Type": "text/x-mine"}
                          if body else None, raise_error=False)
        return out, srv.received("log")

    def check(up):
        out, log = up
        assert out["code"] == 200 and len(log) == 2
        if method != "HEAD":
            assert echoed(out)["target"] == "/echo"

    compare(scenario, servers, check)


@pytest.mark.parametrize("location", ["/echo?x=1", "echo", "http://localhost:{port}/echo",
                                      "//127.0.0.1:{port}/echo"])
def test_redirect_location_forms(servers, location):
    async def scenario(client, srv):
        to = urllib.parse.quote(location.format(port=srv.port), safe="")
        return await fetch(client, srv.url + "/redirect?code=302&to=" + to)

    compare(scenario, servers, _ok)


def test_redirect_cross_origin_drops_auth(servers):
    async def scenario(client, srv):
        to = urllib.parse.quote("http://localhost:%d/echo" % srv.port, safe="")
        same = await fetch(client, srv.url + "/redirect?code=302&to=/echo",
                           auth_username="u", auth_password="p",
                           headers={"Cookie": "a=b"})
        cross = await fetch(client, srv.url + "/redirect?code=302&to=" + to,
                            auth_username="u", auth_password="p", headers={"Cookie": "a=b"})
        return same, cross

    def check(up):
        same, cross = up
        assert ["Authorization", "Basic dTpw"] in echoed(same)["headers"]
        assert all(k not in ("Authorization", "Cookie") for k, _ in echoed(cross)["headers"])

    compare(scenario, servers, check)


def test_redirect_not_followed(servers):
    async def scenario(client, srv):
        url = srv.url + "/redirect?code=302&to=/echo"
        return (await fetch(client, url, follow_redirects=False),
                await fetch(client, url, follow_redirects=False, raise_error=False))

    def check(up):
        assert up[0]["raised"] == ("HTTPClientError", "HTTP 302: Moved", 302)
        assert up[1]["code"] == 302 and up[1]["body"] == b"moved"

    compare(scenario, servers, check)


def test_redirect_max_redirects(servers):
    async def scenario(client, srv):
        return (await fetch(client, srv.url + "/chain?n=3", max_redirects=3),
                await fetch(client, srv.url + "/chain?n=3", max_redirects=2),
                await fetch(client, srv.url + "/chain?n=3", max_redirects=2, raise_error=False),
                await fetch(client, srv.url + "/chain?n=1", max_redirects=0))

    def check(up):
        assert up[0]["code"] == 200
        assert up[1]["raised"][0] == "HTTPClientError" and up[1]["raised"][2] == 302
        assert up[2]["code"] == 302 and up[2]["effective_url"].endswith("/chain?n=1")
        assert up[3]["raised"][2] == 302

    compare(scenario, servers, check)


def test_redirect_loop(servers):
    async def scenario(client, srv):
        return await fetch(client, srv.url + "/loop"), len(srv.received("log"))

    def check(up):
        assert up[0]["raised"][2] == 302 and up[1] == 6  # 1 + max_redirects (5)

    compare(scenario, servers, check)


def test_redirect_unsupported_scheme(servers):
    async def scenario(client, srv):
        to = urllib.parse.quote("ftp://127.0.0.1/x", safe="")
        return (await fetch(client, srv.url + "/redirect?code=302&to=" + to),
                await fetch(client, srv.url + "/redirect?code=302&to=" + to, raise_error=False))

    def check(up):
        assert up[0]["raised"][0] == "ValueError"

    compare(scenario, servers, check)


# -- timeouts, refused connections, the request queue -------------------------


class _SlowResolver(Resolver):
    def initialize(self, delay):
        self.delay = delay

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        await gen.sleep(self.delay)
        return [(socket.AF_INET, ("127.0.0.1", port))]


def test_connect_timeout_resolving(servers):
    async def scenario(client, srv):
        c = SimpleAsyncHTTPClient(force_instance=True, resolver=_SlowResolver(delay=3))
        try:
            return (await fetch(c, srv.url + "/echo", connect_timeout=0.3),
                    await fetch(c, srv.url + "/echo", connect_timeout=0.3, raise_error=False),
                    await fetch(c, srv.url + "/echo", request_timeout=0.3, connect_timeout=20))
        finally:
            c.close()

    def check(up):
        assert up[0]["raised"][0] == "HTTPTimeoutError" and up[0]["raised"][2] == 599
        # raise_error=False does not cover a 599: the error is raised
        assert up[1] == up[0]

    compare(scenario, servers, check)


def test_connect_timeout_tcp(servers):
    """A listener whose accept queue is full drops the SYNs: the connect
    itself times out."""

    async def scenario(client, srv):
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(0)
        port = lsn.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                fillers.append(s)
            await asyncio.sleep(0.1)
            out = await fetch(client, "http://127.0.0.1:%d/" % port, connect_timeout=0.4,
                               request_timeout=20)
            # the listener's port differs from run to run
            return json.loads(json.dumps(out).replace(":%d" % port, ":PORT"))
        finally:
            for s in fillers:
                s.close()
            lsn.close()

    def check(up):
        if up.get("raised", (None,))[0] != "HTTPTimeoutError":
            pytest.skip("this kernel does not drop SYNs on a full accept queue: %r" % (up,))

    compare(scenario, servers, check)


def test_connection_refused(servers):
    from conftest import free_port

    async def scenario(client, srv):
        url = "http://127.0.0.1:%d/" % free_port()
        return await fetch(client, url), await fetch(client, url, raise_error=False)

    def check(up):
        assert up[0]["raised"][0] == "ConnectionRefusedError"

    compare(scenario, servers, check)


def test_request_timeout(servers):
    async def scenario(client, srv):
        return (await fetch(client, srv.url + "/slow?delay=3", request_timeout=0.4),
                await fetch(client, srv.url + "/slow?delay=3", request_timeout=0.4,
                            raise_error=False),
                await fetch(client, srv.url + "/slow?delay=0.05", request_timeout=10))

    def check(up):
        assert up[0]["raised"] == ("HTTPTimeoutError", "Timeout during request", 599)
        assert up[1] == up[0]
        assert up[2]["body"] == b"slow"

    compare(scenario, servers, check)


def test_request_timeout_mid_body(servers):
    async def scenario(client, srv):
        return await fetch(client, srv.url + "/chunked?pause=1.5", request_timeout=0.5)

    def check(up):
        assert up["raised"][0] == "HTTPTimeoutError"

    compare(scenario, servers, check)


def test_max_clients_order(servers):
    async def scenario(client, srv):
        futs = [fetch(client, srv.url + "/order?id=%d&delay=0.1" % i) for i in range(5)]
        done = []

        async def one(i, f):
            out = await f
            done.append(i)
            return out

        outs = await asyncio.gather(*(one(i, f) for i, f in enumerate(futs)))
        return outs, done, srv.received("order")

    def check(up):
        assert up[1] == [0, 1, 2, 3, 4] and up[2] == ["0", "1", "2", "3", "4"]

    compare(scenario, servers, check, max_clients=1)


def test_max_clients_queue_timeout(servers):
    async def scenario(client, srv):
        first = asyncio.ensure_future(fetch(client, srv.url + "/slow?delay=1.5",
                                            request_timeout=20))
        await asyncio.sleep(0.05)
        queued = await asyncio.gather(
            fetch(client, srv.url + "/echo", connect_timeout=0.3, request_timeout=20),
            fetch(client, srv.url + "/echo", connect_timeout=20, request_timeout=0.3,
                  raise_error=False))
        return await first, queued, srv.received("log")

    def check(up):
        first, queued, log = up
        assert first["body"] == b"slow" and len(log) == 1
        assert queued[0]["raised"] == ("HTTPTimeoutError", "Timeout in request queue", 599)
        assert queued[1]["raised"][1] == "Timeout in request queue"

    compare(scenario, servers, check, max_clients=1)


# -- bodies: compression, callbacks, producers, 100-continue ------------------


@pytest.mark.parametrize("kind", ["gzip", "deflate", "badgzip", "other"])
@pytest.mark.parametrize("decompress", [True, False])
def test_content_encoding(servers, kind, decompress):
    async def scenario(client, srv):
        calls, lines = [], []
        streamed = await fetch(client, srv.url + "/encoded?kind=" + kind,
                               decompress_response=decompress,
                               streaming_callback=calls.append, header_callback=lines.append)
        whole = await fetch(client, srv.url + "/encoded?kind=" + kind,
                            decompress_response=decompress)
        return whole, streamed, b"".join(calls), lines

    def check(up):
        whole = up[0]
        if kind == "gzip" and decompress:
            assert whole["body"] == _PLAIN
        elif kind == "badgzip" and decompress:
            assert "raised" in whole
        else:
            assert whole["code"] == 200 and whole["body"] != _PLAIN

    compare(scenario, servers, check)


def test_gzip_over_max_body_size(servers):
    async def scenario(client, srv):
        return await fetch(client, srv.url + "/encoded?kind=gzip")

    def check(up):
        assert "raised" in up  # 3,600 bytes decompressed > 1,000

    compare(scenario, servers, check, max_body_size=1000)


@pytest.mark.parametrize("path", ["/chunked?pause=0.05", "/big?n=300000", "/trickle",
                                  "/redirect?code=302&to=/chunked?pause=0.05",
                                  "/status?code=404", "/big?n=0&framing=close"])
def test_streaming_and_header_callbacks(servers, path):
    async def scenario(client, srv):
        calls = []
        out = await fetch(client, srv.url + path, raise_error=False,
                          header_callback=lambda line: calls.append(("header", line)),
                          streaming_callback=lambda chunk: calls.append(("data", chunk)))
        if "chunked" not in path:
            # how a fixed or close-delimited body is cut into reads is the
            # stream's business: compare the data, not the pieces
            merged = []
            for kind, v in calls:
                if kind == "data" and merged and merged[-1][0] == "data":
                    merged[-1] = ("data", merged[-1][1] + v)
                else:
                    merged.append((kind, v))
            calls = merged
        return out, calls

    def check(up):
        out, calls = up
        assert out["body"] == b"" and calls[0][0] == "header" and calls[-1][0] in ("data",
                                                                                 "header")

    compare(scenario, servers, check)


def test_streaming_callback_coroutine(servers):
    async def scenario(client, srv):
        seen = []

        async def slow_consumer(chunk):
            seen.append(len(chunk))
            await asyncio.sleep(0.01)

        out = await fetch(client, srv.url + "/chunked?pause=0.02", streaming_callback=slow_consumer)
        return out, seen

    def check(up):
        assert up[1] == [5, 12, 1]

    compare(scenario, servers, check)


@pytest.mark.parametrize("with_length", [True, False])
def test_body_producer(servers, with_length):
    async def scenario(client, srv):
        async def producer(write):
            for piece in (b"abc", b"", b"defgh", b"i" * 5000):
                await write(piece)
                await asyncio.sleep(0.01)

        headers = {"Content-Length": str(3 + 5 + 5000)} if with_length else {}
        return await fetch(client, srv.url + "/echo", method="POST", headers=headers,
                           body_producer=producer)

    def check(up):
        req = echoed(up)
        assert req["body"] == "abcdefgh" + "i" * 5000 and req["chunked"] is (not with_length)

    compare(scenario, servers, check)


def test_body_producer_error(servers):
    async def scenario(client, srv):
        async def producer(write):
            await write(b"part")
            raise RuntimeError("producer broke")

        return await fetch(client, srv.url + "/echo", method="PUT", body_producer=producer)

    def check(up):
        assert up["raised"][:2] == ("RuntimeError", "producer broke")

    compare(scenario, servers, check)


@pytest.mark.parametrize("mode", ["100", "417", "200"])
def test_expect_100_continue(servers, mode):
    async def scenario(client, srv):
        out = await fetch(client, srv.url + "/continue?mode=" + mode, method="POST",
                          body=b"the body", expect_100_continue=True, raise_error=False)
        return out, srv.received("expect")

    def check(up):
        out, expect = up
        assert expect == ["100-continue"]
        if mode == "100":
            assert echoed(out)["body"] == "the body"
        else:
            assert out["code"] == int(mode)

    compare(scenario, servers, check)


# -- errors, auth, limits -----------------------------------------------------


def test_raise_error_false(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.url + "/status?code=%d&reason=R%d" % (c, c),
                            raise_error=False)
                for c in (200, 201, 304, 404, 500, 599, 999)] + [
            await fetch(client, srv.url + "/status?code=503"),
            await fetch(client, srv.url + "/early-close", raise_error=False)]

    def check(up):
        assert [o.get("code") for o in up[:7]] == [200, 201, 304, 404, 500, 599, 999]
        assert up[7]["raised"][2] == 503

    compare(scenario, servers, check)


def test_basic_auth(servers):
    async def scenario(client, srv):
        outs = [await fetch(client, srv.url + "/echo", auth_username="Aladdin",
                            auth_password="open sesame"),
                await fetch(client, srv.url + "/echo", auth_username="user"),
                await fetch(client, srv.url + "/echo", auth_username="é", auth_password="ü",
                            auth_mode="basic"),
                await fetch(client, "http://u%3Ax:p%40ss@127.0.0.1:" + str(srv.port) + "/echo")]
        digest = await fetch(client, srv.url + "/echo", auth_username="a", auth_password="b",
                             auth_mode="digest")
        return [dict(echoed(o)["headers"]).get("Authorization") for o in outs], digest

    def check(up):
        auths, digest = up
        assert auths[0] == "Basic " + base64.b64encode(b"Aladdin:open sesame").decode()
        assert digest["raised"][:2] == ("ValueError", "unsupported auth_mode digest")

    compare(scenario, servers, check)


def test_request_head_and_errors_before_connect(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.url + "/echo?q=1&r=%20", user_agent="UA/1",
                            headers={"X-Multi": "1", "Accept": "*/*"}),
                await fetch(client, srv.url + "/echo", method="OPTIONS"),
                await fetch(client, srv.url + "/echo", method="POST", body=b""),
                await fetch(client, srv.url + "/echo", method="POST"),
                await fetch(client, srv.url + "/echo", method="GET", body=b"x"),
                await fetch(client, srv.url + "/echo", method="PROPFIND"),
                await fetch(client, srv.url + "/echo", method="PROPFIND",
                            allow_nonstandard_methods=True),
                await fetch(client, "gopher://127.0.0.1/"),
                await fetch(client, srv.url + "/echo", proxy_host="127.0.0.1", proxy_port=3128),
                await fetch(client, srv.url + "/echo", network_interface="not-an-ip")]

    def check(up):
        assert echoed(up[0])["headers"][0][0] == "X-Multi" or True
        assert up[3]["raised"][0] == "ValueError" and up[5]["raised"][0] == "KeyError"

    compare(scenario, servers, check)


def test_early_close_and_truncation(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.url + p, raise_error=False) for p in (
            "/early-close", "/truncated?kind=cl", "/truncated?kind=chunked",
            "/truncated?kind=head", "/truncated?kind=close")]

    def check(up):
        assert up[0]["raised"][:2] == ("HTTPStreamClosedError", "Stream closed")
        assert up[4]["body"] == b"until the close"

    compare(scenario, servers, check)


def test_connection_reset(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.url + "/reset"),
                # as upstream: the reset reaches on_connection_close, which
                # raises it into the read loop ("Uncaught exception" logged);
                # the fetch ends by request_timeout
                await fetch(client, srv.url + "/reset?after=head", request_timeout=1),
                await fetch(client, srv.url + "/reset?after=head", streaming_callback=len,
                            request_timeout=1)]

    def check(up):
        assert all("raised" in o for o in up), up

    compare(scenario, servers, check)


def test_head_204_304(servers):
    async def scenario(client, srv):
        return [await fetch(client, srv.url + "/big?n=10", method="HEAD"),
                await fetch(client, srv.url + "/big?n=10&framing=chunked", method="HEAD"),
                await fetch(client, srv.url + "/status?code=204", raise_error=False),
                await fetch(client, srv.url + "/status?code=304", raise_error=False)]

    def check(up):
        assert up[0]["body"] == b"" and up[0]["code"] == 200

    compare(scenario, servers, check)


def test_slow_trickle(servers):
    async def scenario(client, srv):
        return await fetch(client, srv.url + "/trickle?pause=0.004", request_timeout=20)

    def check(up):
        assert up["body"] == b"one byte at a time" and up["reason"] == "Trickled"

    compare(scenario, servers, check)


@pytest.mark.parametrize("size", [100, 900, 2000, 70000])
@pytest.mark.parametrize("limit", [None, 1000])
def test_max_header_size(servers, size, limit):
    async def scenario(client, srv):
        return await fetch(client, srv.url + "/huge-headers?n=%d" % size)

    def check(up):
        fits = size + 80 < (limit or 65536)
        assert ("raised" not in up) is fits, up

    kw = {} if limit is None else {"max_header_size": limit}
    compare(scenario, servers, check, **kw)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
@pytest.mark.parametrize("n", [0, 999, 1000, 1001])
def test_max_body_size(servers, framing, n):
    async def scenario(client, srv):
        return await fetch(client, srv.url + "/big?n=%d&framing=%s" % (n, framing))

    def check(up):
        if framing != "close":
            assert ("raised" not in up) is (n <= 1000), up

    compare(scenario, servers, check, max_body_size=1000)


def test_max_buffer_size_streaming(servers):
    """With a streaming_callback only max_body_size limits the body (and
    max_body_size defaults to max_buffer_size)."""

    async def scenario(client, srv):
        got = []
        return (await fetch(client, srv.url + "/big?n=200000", streaming_callback=got.append),
                sum(map(len, got)), await fetch(client, srv.url + "/big?n=200000"))

    def check(up):
        assert up[1] == 200000

    compare(scenario, servers, check, max_buffer_size=100000, max_body_size=300000)


@pytest.mark.parametrize("case", [
    ("length", 0), ("length", 5), ("chunked", 0), ("chunked", 5), ("close", 0), ("close", 5)],
    ids=lambda c: "%s-%d" % c)
def test_negative_max_body_size(servers, case):
    framing, n = case

    async def scenario(client, srv):
        return await fetch(client, srv.url + "/big?n=%d&framing=%s" % (n, framing))

    def check(up):
        pass

    compare(scenario, servers, check, max_body_size=-1)


# -- Unix sockets, HTTPS ------------------------------------------------------


class _UnixResolver(Resolver):
    """What upstream's client needs for a Unix socket: a resolver that gives
    (AF_UNIX, path); TCPClient connects a socket of that family."""

    def initialize(self, path):
        self.path = path

    async def resolve(self, host, port, family=socket.AF_UNSPEC):
        return [(socket.AF_UNIX, self.path)]


def test_unix_socket(servers):
    async def scenario(client, srv):
        c = SimpleAsyncHTTPClient(force_instance=True, resolver=_UnixResolver(path=srv.unix_path))
        try:
            return (await fetch(c, "http://unix.invalid/echo?via=unix"),
                    await fetch(c, "http://unix.invalid/chunked"),
                    await fetch(c, "http://unix.invalid/redirect?code=307&to=/echo",
                                method="POST", body=b"b"))
        finally:
            c.close()

    def check(up):
        assert echoed(up[0])["target"] == "/echo?via=unix" and up[1]["body"] == b"firstsecond-chunk3"

    compare(scenario, servers, check)


def test_https(servers):
    async def scenario(client, srv):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        strict = ssl.create_default_context()
        return [await fetch(client, srv.tls_url + "/echo", validate_cert=False),
                await fetch(client, srv.tls_url + "/chunked", ssl_options=ctx),
                await fetch(client, srv.tls_url + "/redirect?code=303&to=/echo",
                            method="POST", body=b"x", validate_cert=False),
                await fetch(client, srv.tls_url + "/big?n=300000", validate_cert=False),
                await fetch(client, srv.tls_url + "/slow?delay=3", validate_cert=False,
                            request_timeout=0.5),
                await fetch(client, srv.tls_url + "/echo"),
                await fetch(client, srv.tls_url + "/echo", ssl_options=strict),
                await fetch(client, srv.tls_url + "/echo", ca_certs=CERT)]

    def check(up):
        assert echoed(up[0])["method"] == "GET" and up[1]["body"] == b"firstsecond-chunk3"
        assert up[4]["raised"][0] == "HTTPTimeoutError"
        assert up[5]["raised"][0] == "SSLCertVerificationError"

    compare(scenario, servers, check)


def test_https_stream_path(servers):
    """Which stream an HTTPS fetch runs on under the switch: the C stream
    with TLS inside it (tornado_c.iostream._SSLIOStream, csrc/stream/tls.c;
    a subclass of upstream's SSLIOStream); plain http: the C IOStream."""
    import tornado.simple_httpclient as sh

    seen = []
    orig = sh._HTTPConnection._create_connection

    def spy(self, stream):
        seen.append((self.parsed.scheme, type(stream).__module__ + "." + type(stream).__name__))
        return orig(self, stream)

    async def scenario(client, srv):
        del seen[:]
        sh._HTTPConnection._create_connection = spy
        try:
            await fetch(client, srv.url + "/echo")
            await fetch(client, srv.tls_url + "/echo", validate_cert=False)
        finally:
            sh._HTTPConnection._create_connection = orig
        return list(seen)

    assert _run("tornado_c", scenario, servers)[0] == [
        ("http", "tornado_c.iostream.IOStream"),
        ("https", "tornado_c.iostream._SSLIOStream")]
    assert _run("upstream", scenario, servers)[0] == [
        ("http", "tornado.iostream.IOStream"),
        ("https", "tornado.iostream.SSLIOStream")]


def test_loop_tls_transport_same_server(servers):
    """The loop's TLS (asyncio streams with ssl=) against the same TLS
    server: a raw HTTP/1.1 exchange on both loops."""

    async def scenario(client, srv):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.tls_port, ssl=ctx)
        writer.write(b"GET /big?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await reader.read()
        writer.close()
        return data

    def check(up):
        assert up.endswith(b"x" * 100000) and up.startswith(b"HTTP/1.1 200 OK")

    compare(scenario, servers, check)
