"""A short server session for scripts/valgrind.sh (issue 14).

    python valgrind_session.py server     serve (full tornado_c switch) on a free
                                          port, print "READY <port>", exit 0
                                          after GET /quit
    python valgrind_session.py client PORT [N]
                                          N rounds (default 100) of: keep-alive
                                          GETs and POSTs, a chunked request and a
                                          chunked response, a 404, a 500, a 400
                                          (bad head), a client gone mid-body, a
                                          WebSocket connect/echo/close; then
                                          /quit.  Prints the counts; exits 1 on
                                          any wrong answer.

The server runs under valgrind (slow), the client in a normal interpreter.
"""

import asyncio
import socket
import sys

REQS = [
    (b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", b"200"),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world", b"200"),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"200"),
    (b"GET /chunked HTTP/1.1\r\nHost: t\r\n\r\n", b"200"),
    (b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", b"404"),
    (b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n", b"500"),
]


def server():
    import tornado_c

    tornado_c.install()
    import logging

    import tornado.httpserver
    import tornado.ioloop
    import tornado.web
    import tornado.websocket

    logging.getLogger("tornado").setLevel(logging.CRITICAL)  # the 500s, 400s

    class Hello(tornado.web.RequestHandler):
        def get(self):
            self.write("hello")

    class EchoBody(tornado.web.RequestHandler):
        def post(self):
            self.write({"length": len(self.request.body), "body": self.request.body.decode()})

    class Chunked(tornado.web.RequestHandler):
        async def get(self):
            self.write("part1-")
            await self.flush()
            self.write("part2")

    class Fail(tornado.web.RequestHandler):
        def get(self):
            raise RuntimeError("valgrind session: a 500")

    class WSEcho(tornado.websocket.WebSocketHandler):
        def on_message(self, message):
            self.write_message(message, binary=isinstance(message, bytes))

    class Quit(tornado.web.RequestHandler):
        def get(self):
            self.write("bye")
            tornado.ioloop.IOLoop.current().add_callback(stop)

    async def stop():
        srv.stop()
        await srv.close_all_connections()
        tornado.ioloop.IOLoop.current().stop()

    app = tornado.web.Application([
        (r"/", Hello), (r"/echo", EchoBody), (r"/chunked", Chunked), (r"/fail", Fail),
        (r"/ws", WSEcho), (r"/quit", Quit)])
    srv = tornado.httpserver.HTTPServer(app)
    assert type(srv).__module__ == "tornado_c.httpserver", type(srv)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    srv.add_sockets([sock])
    print("READY %d" % sock.getsockname()[1], flush=True)
    tornado.ioloop.IOLoop.current().start()
    print("STOPPED", flush=True)


def read_response(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("closed before the head: %r" % buf)
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
        return head
    n = 0
    for line in lower.split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(rest) < n:
        rest += sock.recv(65536)
    return head


def client(port, rounds):
    import tornado.websocket

    counts = {"requests": 0, "connections": 0, "bad": 0, "vanished": 0, "websocket": 0}

    def conn():
        counts["connections"] += 1
        return socket.create_connection(("127.0.0.1", port), timeout=60)

    async def ws_echo(i):
        ws = await tornado.websocket.websocket_connect("ws://127.0.0.1:%d/ws" % port)
        ws.write_message("message %d" % i)
        assert await ws.read_message() == "message %d" % i
        ws.write_message(b"\x01" * 300, binary=True)
        assert await ws.read_message() == b"\x01" * 300
        ws.close()
        assert await ws.read_message() is None

    for i in range(rounds):
        s = conn()
        for req, status in REQS:  # keep-alive: all on one connection
            s.sendall(req)
            head = read_response(s)
            assert head.split(b" ")[1] == status, (req, head)
            counts["requests"] += 1
        s.close()
        s = conn()
        s.sendall(b"BAD REQUEST\r\n\r\n")
        assert read_response(s).split(b" ")[1] == b"400"
        counts["bad"] += 1
        s.close()
        s = conn()
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
        s.close()
        counts["vanished"] += 1
        if i % 5 == 0:
            asyncio.run(ws_echo(i))
            counts["websocket"] += 1
    s = conn()
    s.sendall(b"GET /quit HTTP/1.1\r\nHost: t\r\n\r\n")
    read_response(s)
    s.close()
    print("client: %s" % ", ".join("%s %d" % kv for kv in counts.items()))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    else:
        client(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 100)
