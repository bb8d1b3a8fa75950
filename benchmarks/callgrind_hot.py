"""Instructions per operation on the hot paths, counted by callgrind.

Wall-clock and CPU time swing by tens of percent on a shared VM; the number of
instructions a path executes does not.  This script runs each case twice under
``valgrind --tool=callgrind`` (N and 2N operations, same process set-up) and
reports ``(Ir(2N) - Ir(N)) / N``: the instructions one more operation costs,
with start-up, imports and tear-down cancelled out.  Use it to compare a change
before and after (same machine, same interpreter, same build flags):

    cd / && PYTHONPATH=/path/to/tree python /path/to/benchmarks/callgrind_hot.py
    ... --cases hello,call_soon --n 2000 --json out.json

Cases:
  call_soon       loop.call_soon of a no-op callback (batches of 1000)
  call_later      loop.call_later(0) of a no-op callback, fired
  transport_write Transport.write of 100 bytes to a socketpair peer
  iostream_write  tornado_c IOStream.write of 100 bytes (awaited)
  hello           one keep-alive GET of benchmarks/apps/hello.py's handler,
                  server under the full switch in the measured process, the
                  client a separate, unmeasured process
  json            the same for benchmarks/apps/json_app.py (write(dict))
  https_hello     the same over TLS: the server has ssl_options (Tornado's
                  test certificate), one keep-alive TLS connection (the
                  handshake cancels out with the start-up)
  https_hello_newconn
                  https_hello with a new TLS connection per request (connect,
                  handshake, one keep-alive GET, close): what a server
                  spends per https client that comes once
  https_hello_upstream, https_hello_newconn_upstream, hello_upstream,
  json_upstream
                  the same three without tornado_c (plain upstream Tornado on
                  asyncio's loop), for the ratio
  hello_strict    hello with the server in strict mode (TORNADO_C_STRICT_HTTP=1:
                  llhttp judges every request too); minus hello: its cost
  https_hello_strict  https_hello in strict mode (upstream's Python connection
                  with llhttp judging what it reads, tornado_c/_strict.py);
                  minus https_hello: its cost
  web_floor       one request of benchmarks/web_floor.py (tornado.web's own
                  code over a stub connection, no server, no sockets) under
                  the full switch on the tornado_c loop; with
                  TORNADO_C_DISABLE=web it is upstream's tornado.web
  gen_done        one call of a @gen.coroutine (tornado.gen.coroutine under
                  the full switch: C; with TORNADO_C_DISABLE=web upstream's)
                  that yields 10 already-done Futures, awaited
  gen_sleep_multi one call of a @gen.coroutine that yields gen.sleep(0), then
                  gen.multi of two gen.sleep(0), awaited
  post_json, template, cookies, gen_coroutine, json, async_hello
                  one keep-alive request of the harness app of that name
                  (benchmarks/apps/post_json.py: POST of a JSON body echoed
                  as a dict; template_app.py: self.render() of a page with a
                  loop and escaping; cookies_app.py: get_signed_cookie +
                  set_signed_cookie, the client sending back a valid signed
                  cookie; gen_coroutine.py; json_app.py; async_hello.py: hello
                  with an `async def get`), measured as hello;
                  each has an ``_upstream`` twin (optional) for the ratio

Only the measured process runs under valgrind (children are not traced).
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

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("call_soon", "call_later", "transport_write", "iostream_write", "hello",
         "web_floor", "gen_done", "gen_sleep_multi", "https_hello", "https_hello_upstream", "hello_upstream",
         "hello_strict",
         "https_hello_strict",
         "https_hello_newconn", "https_hello_newconn_upstream")
POST_JSON_BODY = '{"name": "tornado", "n": 42, "ok": true, "tags": ["a", "b"]}'
# the harness apps measured as hello: case name -> (app module, request)
APP_CASES = {
    "json": ("json_app", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    "post_json": ("post_json", "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(POST_JSON_BODY), POST_JSON_BODY)),
    "template": ("template_app", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    "cookies": ("cookies_app", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Cookie: visits={signed:benchmark-cookie-secret:visits:41}\r\n\r\n",
                "welcome back"),  # the cookie was accepted
    "gen_coroutine": ("gen_coroutine", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    "async_hello": ("async_hello", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    # error answers: (app, request, expected body, expected status)
    "not_found": ("errors_app", "GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                  "404: Not Found", "404"),
    "server_error": ("errors_app", "GET /boom HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                     "500: Internal Server Error", "500"),
}
CASES += tuple(APP_CASES) + tuple(c + "_upstream" for c in APP_CASES)
# not run unless asked for (--cases): the upstream references and TLS
OPTIONAL_CASES = ("https_hello", "https_hello_upstream", "hello_upstream",
                  "https_hello_strict", "https_hello_newconn",
                  "https_hello_newconn_upstream") + tuple(
    c + "_upstream" for c in APP_CASES)
COLLECTED_RE = re.compile(r"Collected\s*:\s*(\d+)")


# --------------------------------------------------------------------------
# worker side: runs under valgrind


def _new_loop():
    import tornado_c.loop

    return tornado_c.loop.new_event_loop()


def case_call_soon(n):
    loop = _new_loop()
    noop = lambda: None  # noqa: E731

    async def main():
        done = 0
        while done < n:
            k = min(1000, n - done)
            for _ in range(k):
                loop.call_soon(noop)
            await asyncio_sleep0()
            done += k

    loop.run_until_complete(main())
    loop.close()


def asyncio_sleep0():
    import asyncio

    return asyncio.sleep(0)


def case_call_later(n):
    loop = _new_loop()
    noop = lambda: None  # noqa: E731

    async def main():
        import asyncio

        done = 0
        while done < n:
            k = min(1000, n - done)
            for _ in range(k):
                loop.call_later(0, noop)
            await asyncio.sleep(0.001)
            done += k

    loop.run_until_complete(main())
    loop.close()


def _drain(sock):
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        pass


def case_transport_write(n):
    import asyncio

    loop = _new_loop()
    a, b = socket.socketpair()
    b.setblocking(False)
    payload = b"x" * 100

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        done = 0
        while done < n:
            k = min(100, n - done)
            for _ in range(k):
                transport.write(payload)
            await asyncio.sleep(0)
            _drain(b)
            done += k
        transport.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    loop.close()
    b.close()


def case_iostream_write(n):
    import asyncio

    import tornado_c
    from tornado_c.iostream import IOStream

    tornado_c.install()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    a, b = socket.socketpair()
    b.setblocking(False)
    payload = b"x" * 100

    async def main():
        stream = IOStream(a)
        done = 0
        while done < n:
            k = min(100, n - done)
            for _ in range(k):
                await stream.write(payload)
            _drain(b)
            done += k
        stream.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    loop.close()
    b.close()


CLIENT = r"""
import socket, ssl, sys
port, n, tls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] in ("tls", "tlsnew")
newconn = sys.argv[3] == "tlsnew"
req = sys.argv[4].encode("latin-1") if len(sys.argv) > 4 else (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
expect = sys.argv[5].encode() if len(sys.argv) > 5 else b""
status = b"HTTP/1.1 %s " % (sys.argv[6].encode() if len(sys.argv) > 6 else b"200")
def connect():
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        s = ctx.wrap_socket(s)
    return s
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
s = connect()
buf = b""
for i in range(n):
    if newconn and i:
        s.close()
        s = connect()
    s.sendall(req)
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep and not head.startswith(status):
            sys.exit("unexpected response: %r" % head[:200])
        if sep:
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(rest) >= length:
                if expect and expect not in rest[:length]:
                    sys.exit("unexpected body: %r" % rest[:200])
                buf = rest[length:]
                break
        data = s.recv(65536)
        if not data:
            sys.exit("server closed the connection")
        buf += data
s.close()
"""


def _expand_request(text):
    """{signed:SECRET:NAME:VALUE} in a request -> a signed value made now
    (the client's cookie must be fresh: signed values expire)."""
    def sub(m):
        from tornado.web import create_signed_value

        secret, name, value = m.group(1).split(":")
        return create_signed_value(secret, name, value).decode()

    return re.sub(r"\{signed:([^}]*)\}", sub, text)


def case_hello(n, tls=False, switch=True, strict=False, app="hello", request=None, expect=None,
               status=None, newconn=False):
    import asyncio
    import importlib
    import threading

    if strict:
        os.environ["TORNADO_C_STRICT_HTTP"] = "1"

    if switch:
        import tornado_c

        tornado_c.install()
    sys.path.insert(0, os.path.join(HERE, "apps"))
    hello = importlib.import_module(app)
    extra = [_expand_request(request)] if request else []
    if expect:
        extra.append(expect)
    if status:
        extra.append(status)

    ssl_options = None
    if tls:
        import ssl

        import tornado.test

        d = os.path.dirname(tornado.test.__file__)
        ssl_options = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_options.load_cert_chain(os.path.join(d, "test.crt"), os.path.join(d, "test.key"))

    async def main():
        app = hello.make_app()
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(128)
        lsock.setblocking(False)
        port = lsock.getsockname()[1]
        from tornado.httpserver import HTTPServer

        server = HTTPServer(app, ssl_options=ssl_options)
        server.add_sockets([lsock])
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        proc = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), str(n),
                                 ("tlsnew" if newconn else "tls") if tls else "plain", *extra])

        def waiter():
            rc = proc.wait()
            loop.call_soon_threadsafe(finished.set_result, rc)

        threading.Thread(target=waiter, daemon=True).start()
        rc = await finished
        server.stop()
        await server.close_all_connections()
        if rc != 0:
            raise SystemExit("client failed: %d" % rc)

    asyncio.run(main())


def case_https_hello(n):
    case_hello(n, tls=True)


def case_https_hello_upstream(n):
    case_hello(n, tls=True, switch=False)


def case_https_hello_newconn(n):
    case_hello(n, tls=True, newconn=True)


def case_https_hello_newconn_upstream(n):
    case_hello(n, tls=True, switch=False, newconn=True)


def case_hello_upstream(n):
    case_hello(n, switch=False)


def case_hello_strict(n):
    case_hello(n, strict=True)


def case_https_hello_strict(n):
    case_hello(n, tls=True, strict=True)


def _app_case(name, n):
    upstream = name.endswith("_upstream")
    app, request, *rest = APP_CASES[name[:-len("_upstream")] if upstream else name]
    case_hello(n, switch=not upstream, app=app, request=request,
               expect=rest[0] if rest else None, status=rest[1] if len(rest) > 1 else None)


def case_web_floor(n):
    import tornado_c

    tornado_c.install()
    import tornado.web

    sys.path.insert(0, HERE)
    import web_floor

    app = tornado.web.Application([(r"/", web_floor.MainHandler)])
    loop = _new_loop()
    loop.run_until_complete(web_floor._one_round(app, n))
    loop.close()


def _gen_case(n, body):
    import tornado_c

    tornado_c.install()
    from tornado import gen

    coro = gen.coroutine(body(gen))
    loop = _new_loop()

    async def main():
        for _ in range(n):
            await coro()

    loop.run_until_complete(main())
    loop.close()


def case_gen_done(n):
    from tornado.concurrent import Future

    def body(gen):
        def g():
            total = 0
            for i in range(10):
                f = Future()
                f.set_result(i)
                total += yield f
            return total

        return g

    _gen_case(n, body)


def case_gen_sleep_multi(n):
    def body(gen):
        def g():
            yield gen.sleep(0)
            r = yield gen.multi([gen.sleep(0), gen.sleep(0)])
            return r

        return g

    _gen_case(n, body)


# --------------------------------------------------------------------------
# driver side


def run_once(case, n, env):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
            sys.executable, os.path.abspath(__file__), "--worker", case, str(n),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise SystemExit("%s n=%d failed:\n%s" % (case, n, proc.stderr[-3000:]))
        m = COLLECTED_RE.search(proc.stderr)
        if not m:
            raise SystemExit("no 'Collected' line from callgrind:\n" + proc.stderr[-2000:])
        return int(m.group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(c for c in CASES if c not in OPTIONAL_CASES))
    ap.add_argument("--n", type=int, default=2000, help="operations in the smaller run")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        case = args.worker[0]
        if case in APP_CASES or case[:-len("_upstream")] in APP_CASES:
            _app_case(case, int(args.worker[1]))
        else:
            globals()["case_" + case](int(args.worker[1]))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            ap.error("unknown case %r (known: %s)" % (c, ", ".join(CASES)))
    import tornado_c

    env = dict(os.environ, PYTHONHASHSEED="0")
    results = {"n": args.n, "tornado_c": os.path.dirname(tornado_c.__file__),
               "python": sys.version.split()[0], "cases": {}}
    print("%-16s %14s %14s %12s" % ("case", "Ir(N)", "Ir(2N)", "Ir/op"))
    for c in cases:
        started = time.monotonic()
        one = run_once(c, args.n, env)
        two = run_once(c, 2 * args.n, env)
        per_op = (two - one) / args.n
        results["cases"][c] = {"ir_n": one, "ir_2n": two, "ir_per_op": round(per_op, 1)}
        print("%-16s %14d %14d %12.1f   (%.0f s)" % (c, one, two, per_op,
                                                     time.monotonic() - started),
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
