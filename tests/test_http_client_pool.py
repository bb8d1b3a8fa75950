"""The opt-in keep-alive client (tornado_c._client_pool.KeepAliveAsyncHTTPClient).

A threaded raw-socket server that keeps connections open answers with the
connection's number and the request's number on it, so a test sees which
requests shared a connection.  Every scenario runs with upstream's loop and
stream (no switch) and under the switch (the C stream and tornado_c's
connection class), and both must give the same outcome: what was reused,
what was not, what failed.
"""

import socketserver
import ssl
import threading
import time

import pytest

from tornado import gen
from tornado.httpclient import AsyncHTTPClient
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from test_http_client_behaviour import CERT, KEY, _Conn, _run, fetch
from tornado_c._client_pool import KeepAliveAsyncHTTPClient

MODES = ("upstream", "tornado_c")


def _reply(conn, req, n, cid, extra=(), body=None):
    if body is None:
        body = ("%d:%d %s %s" % (cid, n, req.method, req.body[:20].decode("latin-1"))).encode()
    head = ["HTTP/1.1 200 OK"] + ["%s: %s" % kv for kv in extra]
    if ("Transfer-Encoding", "chunked") in extra:
        data = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    elif ("Framing", "eof") in extra:
        data = body
    else:
        head.append("Content-Length: %d" % len(body))
        data = body
    if req.method == "HEAD":
        data = b""
    conn.send(("\r\n".join(head) + "\r\n\r\n").encode() + data)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        with srv.lock:
            srv.next_id += 1
            cid = srv.next_id
        sock = self.request
        sock.settimeout(10)
        drop_next = False
        try:
            if srv.tls is not None:
                sock = srv.tls.wrap_socket(sock, server_side=True)
            conn = _Conn(sock)
            for n in range(1, 1000):
                req = conn.read_head()
                conn.read_body(req)
                with srv.lock:
                    srv.seen.append((cid, n, req.target, req.header("Connection")))
                if drop_next:
                    return  # the request that crossed the close: unanswered
                path = req.path
                if path == "/drop-next":
                    drop_next = True
                if path == "/close":
                    return _reply(conn, req, n, cid, [("Connection", "close")])
                if path == "/eof":
                    return _reply(conn, req, n, cid, [("Framing", "eof")])
                if path == "/http10":
                    return conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                if path == "/leftover":
                    _reply(conn, req, n, cid)
                    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nodd")
                    time.sleep(0.2)
                    continue
                if path == "/then-close":
                    _reply(conn, req, n, cid)
                    time.sleep(float(req.query.get("delay", "0")))
                    return
                if path == "/error":
                    _reply(conn, req, n, cid, body=b"")
                    return
                if path == "/chunked":
                    _reply(conn, req, n, cid, [("Transfer-Encoding", "chunked")])
                    continue
                if path == "/slow":
                    time.sleep(float(req.query.get("delay", "0.05")))
                _reply(conn, req, n, cid)
                if req.header("Connection") == "close":
                    return
        except (OSError, EOFError, ValueError):
            pass
        finally:
            sock.close()


class KeepAliveServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.tls = tls
        self.url = "%s://127.0.0.1:%d" % ("http" if tls is None else "https",
                                          self.server_address[1])
        self.reset()

    def reset(self):
        with self.lock:
            self.next_id = 0
            self.seen = []

    def connections(self):
        with self.lock:
            return len({c for c, *_ in self.seen})


def _serve(tls=None):
    s = KeepAliveServer(tls)
    threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


@pytest.fixture(scope="module")
def server():
    yield from _serve()


@pytest.fixture(scope="module")
def tls_server():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    yield from _serve(ctx)


def both(scenario, server, check, **kw):
    up, up_logs = _run("upstream", scenario, server, client_class=KeepAliveAsyncHTTPClient,
                       **kw)
    check(up)
    ours, our_logs = _run("tornado_c", scenario, server,
                          client_class=KeepAliveAsyncHTTPClient, **kw)
    assert ours == up
    assert our_logs == up_logs
    return up


def bodies(outs):
    return [o.get("body", o.get("raised")) for o in outs]


def test_sequential_requests_share_a_connection(server):
    async def scenario(client, srv):
        outs = [await fetch(client, srv.url + "/"),
                await fetch(client, srv.url + "/chunked"),
                await fetch(client, srv.url + "/", method="POST", body=b"posted"),
                await fetch(client, srv.url + "/", method="HEAD"),
                await fetch(client, srv.url + "/", method="PUT", body=b"x" * 10000)]
        return bodies(outs), srv.seen, client._pool.reused

    def check(up):
        assert up[0][:3] == [b"1:1 GET ", b"1:2 GET ", b"1:3 POST posted"]
        assert [s[3] for s in up[1]] == ["keep-alive"] * 5 and up[2] == 4

    both(scenario, server, check)


def test_connection_close_eof_http10_and_leftover_are_not_reused(server):
    async def scenario(client, srv):
        outs = []
        for path in ("/close", "/eof", "/http10", "/leftover", "/"):
            outs.append(await fetch(client, srv.url + path))
            # the bytes /leftover sends after its response have arrived
            await gen.sleep(0.1)
        return bodies(outs), srv.connections(), client._pool.reused

    def check(up):
        assert up[1] == 5 and up[2] == 0

    both(scenario, server, check)


def test_request_connection_close_header_respected(server):
    async def scenario(client, srv):
        outs = [await fetch(client, srv.url + "/", headers={"Connection": "close"}),
                await fetch(client, srv.url + "/")]
        return bodies(outs), srv.connections()

    def check(up):
        assert up == ([b"1:1 GET ", b"2:1 GET "], 2)

    both(scenario, server, check)


@pytest.mark.parametrize("delay", ["0", "0.05"])
def test_server_closes_idle_connection(server, delay):
    """Closed while idle (noticed by the pool, or found stale when reused and
    sent again): the next request still succeeds, on a new connection."""

    async def scenario(client, srv):
        first = await fetch(client, srv.url + "/then-close?delay=" + delay)
        await gen.sleep(1.0)  # well after the server's close
        second = await fetch(client, srv.url + "/")
        third = await fetch(client, srv.url + "/")
        return bodies([first, second, third])

    def check(up):
        assert up == [b"1:1 GET ", b"2:1 GET ", b"2:2 GET "]

    both(scenario, server, check)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_stale_connection_is_retried(server, method):
    async def scenario(client, srv):
        body = b"again" if method == "POST" else None
        # the server reads the next request on this connection and closes it
        # unanswered: the race keep-alive clients live with (the server's
        # close crosses the next request on the wire)
        first = await fetch(client, srv.url + "/drop-next")
        second = await fetch(client, srv.url + "/", method=method, body=body)
        third = await fetch(client, srv.url + "/")
        return bodies([first, second, third]), client._pool.reused, client._pool.retried

    def check(up):
        assert up == ([b"1:1 GET ", b"2:1 %s %s" % (method.encode(),
                                                    b"again" if method == "POST" else b""),
                       b"2:2 GET "], 2, 1)

    both(scenario, server, check)


def test_stale_body_producer_not_retried(server):
    async def scenario(client, srv):
        async def producer(write):
            await write(b"streamed")

        # the server reads the next request on this connection and closes it
        # unanswered: the race keep-alive clients live with (the server's
        # close crosses the next request on the wire)
        first = await fetch(client, srv.url + "/drop-next")
        second = await fetch(client, srv.url + "/", method="POST",
                             headers={"Content-Length": "8"}, body_producer=producer)
        return bodies([first, second]), client._pool.retried

    def check(up):
        assert up[0][1][0] in ("HTTPStreamClosedError", "ConnectionResetError") and up[1] == 0

    both(scenario, server, check)


def test_concurrent_requests_bounded_by_max_clients(server):
    async def scenario(client, srv):
        outs = await gen.multi([fetch(client, srv.url + "/slow?delay=0.05&i=%d" % i)
                                for i in range(20)])
        return sorted(o["body"].split(b":")[0] for o in outs), srv.connections(), \
            client._pool.reused, client._pool.idle_count()

    def check(up):
        ids, conns, reused, idle = up
        assert len(ids) == 20 and conns <= 4 and reused == 20 - conns and idle == conns

    up = _run("upstream", scenario, server, client_class=KeepAliveAsyncHTTPClient,
              max_clients=4)[0]
    check(up)
    ours = _run("tornado_c", scenario, server, client_class=KeepAliveAsyncHTTPClient,
                max_clients=4)[0]
    check(ours)  # which request got which connection is scheduling


def test_limits_idle_per_host_and_timeout(server):
    async def scenario(client, srv):
        await gen.multi([fetch(client, srv.url + "/slow?delay=0.1&i=%d" % i) for i in range(4)])
        await gen.sleep(0.05)
        kept = client._pool.idle_count()
        await gen.sleep(0.5)  # past idle_timeout
        again = await fetch(client, srv.url + "/")
        return kept, again["body"], client._pool.reused

    def check(up):
        assert up == (2, b"5:1 GET ", 0)

    both(scenario, server, check, max_idle_per_host=2, idle_timeout=0.3)


def test_close_closes_idle_streams(server):
    async def scenario(client, srv):
        await fetch(client, srv.url + "/")
        await gen.sleep(0.05)
        stream, _ = next(iter(client._pool._idle.values()))[0]
        client.close()
        return stream.closed(), client._pool.idle_count()

    both(scenario, server, lambda up: up == (True, 0))


def test_https_pools_only_with_its_own_ssl_options(tls_server):
    """Without ssl_options upstream builds a new SSLContext per request:
    those requests never share a stream; with one SSLContext they do."""

    async def scenario(client, srv):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        outs = [await fetch(client, srv.url + "/", validate_cert=False) for _ in range(2)]
        outs += [await fetch(client, srv.url + "/", ssl_options=ctx) for _ in range(3)]
        return bodies(outs), client._pool.reused, client._pool.idle_count()

    def check(up):
        assert up == ([b"1:1 GET ", b"2:1 GET ", b"3:1 GET ", b"3:2 GET ", b"3:3 GET "], 2, 1)

    both(scenario, tls_server, check)


def test_default_client_still_closes(server):
    """Without the opt-in, one connection per request and Connection: close."""

    for mode in MODES:
        async def scenario(client, srv):
            for _ in range(3):
                await fetch(client, srv.url + "/")
            return [s[3] for s in srv.seen], srv.connections()

        assert _run(mode, scenario, server)[0] == (["close"] * 3, 3)


def test_configure(server):
    """AsyncHTTPClient.configure() picks it, with its arguments."""

    async def scenario(client, srv):
        saved = AsyncHTTPClient._save_configuration()
        try:
            AsyncHTTPClient.configure("tornado_c._client_pool.KeepAliveAsyncHTTPClient",
                                      max_idle_per_host=3)
            c = AsyncHTTPClient(force_instance=True)
            try:
                await fetch(c, srv.url + "/")
                await fetch(c, srv.url + "/")
                return type(c).__name__, c._pool._max, c._pool.reused
            finally:
                c.close()
        finally:
            AsyncHTTPClient._restore_configuration(saved)

    both(scenario, server, lambda up: up == ("KeepAliveAsyncHTTPClient", 3, 1))
    assert AsyncHTTPClient.configured_class() is SimpleAsyncHTTPClient


def test_against_tornado_server():
    """Against a tornado HTTPServer (the C server under the switch): its
    keep-alive rules and ours agree."""
    import tornado.web
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("conn %d" % id(self.request.connection.stream))

    async def scenario(client, srv):
        socks = bind_sockets(0, "127.0.0.1")
        port = socks[0].getsockname()[1]
        http_server = HTTPServer(tornado.web.Application([("/", Hello)]))
        http_server.add_sockets(socks)
        try:
            outs = [await fetch(client, "http://127.0.0.1:%d/" % port) for _ in range(5)]
            return len({o["body"] for o in outs}), client._pool.reused
        finally:
            http_server.stop()

    class _NoServer:
        def reset(self):
            pass

    both(scenario, _NoServer(), lambda up: up == (1, 4))
