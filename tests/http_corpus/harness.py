"""Differential harness: send raw requests to a real HTTP server and compare
what it does with the verdict of tornado_c's C request parser.

    results = run_corpus(cases, server_class=tornado.httpserver.HTTPServer)

`server_class` is any class constructed like tornado.httpserver.HTTPServer
(application, **kwargs) with listen()/add_sockets(); the C server will be
plugged in here.  Each case runs on its own connection from its own loopback
source address (127.1.x.y) so that the server's log lines ("Malformed HTTP
message from <ip>: ...") can be matched to the case.

Outcome of a case, observed or predicted, is a list of items:
    ("100",)                          interim 100-continue
    ("resp", status, echo)            an application response (echo: the
                                      handler's "method uri version bodylen
                                      sha" line, None for HEAD / 405)
    ("400",)                          connection-level "HTTP/1.1 400 Bad Request"
and then the connection is closed (always: the servers run with short idle
and body timeouts so that nothing waits forever).
"""

import asyncio
import hashlib
import logging
import socket

from tornado import httputil, web
from tornado.httpserver import HTTPServer

SUPPORTED = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")
# Incomplete requests end when these run out.  0.3 s was too short on a loaded
# 2-CPU machine: a whole request could wait that long in the 48-connection
# queue and be cut off on one server but not on the other (differential
# mutants failed under load, passed alone).
TIMEOUTS = dict(idle_connection_timeout=1.0, body_timeout=1.0)


def echo_line(method, uri, version, body):
    return "%s %s %s %d %s" % (method, uri, version, len(body), hashlib.sha1(body).hexdigest()[:12])


class EchoHandler(web.RequestHandler):
    def set_default_headers(self):
        self.set_header("X-Method", "HEAD" if self.request.method == "HEAD" else "other")

    def echo(self, *args):
        r = self.request
        self.write(echo_line(r.method, r.uri, r.version, r.body).encode("utf-8", "surrogateescape"))

    get = post = put = delete = patch = options = head = echo


def make_app():
    return web.Application([(r".*", EchoHandler)])


def parse_responses(data):
    """Split what the server sent into outcome items."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append(("garbage", data[pos:]))
            break
        head = data[pos:end]
        pos = end + 4
        first, _, rest = head.partition(b"\r\n")
        if head == b"HTTP/1.1 400 Bad Request":
            out.append(("400",))
            continue
        if head == b"HTTP/1.1 100 (Continue)":
            out.append(("100",))
            continue
        code = int(first.split(b" ")[1])
        hdrs = httputil.HTTPHeaders.parse(rest.decode("latin1"))
        if hdrs.get("X-Method") == "HEAD":
            body = None
        else:
            n = int(hdrs.get("Content-Length", "0"))
            body = data[pos:pos + n]
            pos += n
        echo = body.decode("utf-8", "surrogateescape") if (body is not None and code == 200) else None
        out.append(("resp", code, echo))
    return out


async def _send_tls(raw, src_ip, port, timeout, client_ssl):
    """_send over TLS (client_ssl: an ssl.SSLContext for the client)."""
    data = b""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl, local_addr=(src_ip, 0)), timeout)
    except (OSError, asyncio.TimeoutError):
        return data
    try:
        writer.write(raw)
        try:
            await writer.drain()
        except OSError:
            pass
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout)
            except (OSError, asyncio.TimeoutError):
                break
            if not chunk:
                break
            data += chunk
    finally:
        writer.close()
    return data


async def _send(raw, src_ip, port, timeout, client_ssl=None):
    if client_ssl is not None:
        return await _send_tls(raw, src_ip, port, timeout, client_ssl)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    data = b""
    try:
        sock.bind((src_ip, 0))
        await loop.sock_connect(sock, ("127.0.0.1", port))
        try:
            await loop.sock_sendall(sock, raw)
        except (ConnectionResetError, BrokenPipeError):
            pass
        while True:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return data


class _LogCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


async def _run(cases, server_class, concurrency, timeout, tls=None):
    server_ssl, client_ssl = tls if tls is not None else ({}, None)
    servers = {}
    ports = {}
    for case in cases:
        key = tuple(sorted(case["server"].items()))
        if key not in servers:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            sock.setblocking(False)
            extra = {"ssl_options": server_ssl} if tls is not None else {}
            server = server_class(make_app(), **TIMEOUTS, **extra, **case["server"])
            server.add_sockets([sock])
            servers[key] = server
            ports[key] = sock.getsockname()[1]
    sem = asyncio.Semaphore(concurrency)
    results = [None] * len(cases)

    async def one(i, case):
        async with sem:
            ip = "127.1.%d.%d" % (i // 250, i % 250 + 1)
            key = tuple(sorted(case["server"].items()))
            raw = case["raw"].encode("latin1")
            data = await _send(raw, ip, ports[key], timeout, client_ssl)
            results[i] = {"ip": ip, "data": data, "outcome": parse_responses(data)}

    try:
        await asyncio.gather(*(one(i, c) for i, c in enumerate(cases)))
    finally:
        for server in servers.values():
            server.stop()
            await server.close_all_connections()
    return results


def run_corpus(cases, server_class=HTTPServer, concurrency=48, timeout=10.0, tls=None):
    """Send every case; returns (results, log records of tornado.*).
    tls: None, or (server ssl_options, client ssl.SSLContext): every server
    is made with those ssl_options and every case sent over TLS."""
    collector = _LogCollector()
    logger = logging.getLogger("tornado")
    saved = logger.propagate, logger.level
    logger.addHandler(collector)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        results = asyncio.run(_run(cases, server_class, concurrency, timeout, tls))
    finally:
        logger.removeHandler(collector)
        logger.propagate, level = saved
        logger.setLevel(level)
    malformed = {}
    unsatisfiable = []
    for rec in collector.records:
        if rec.name == "tornado.general" and rec.msg == "Malformed HTTP message from %s: %s":
            malformed.setdefault(str(rec.args[0]), []).append(str(rec.args[1]))
        elif rec.name == "tornado.general" and rec.getMessage().startswith("Unsatisfiable read"):
            unsatisfiable.append(rec.getMessage())
    for r in results:
        r["malformed_logs"] = malformed.get(r["ip"], [])
    return results, collector.records, unsatisfiable


def feed_all(p, raw):
    """Feed raw to a parser made with auto=False, resuming at every pause,
    and going on after a message that closes the connection: upstream's
    server loop reads requests that are already buffered even then (their
    errors are logged, their responses are never sent)."""
    pos = 0
    while True:
        pos += p.feed(raw[pos:])
        if p.error is not None or not p.paused:
            return pos
        p.resume()


def predict(case, parser_class=None):
    """The outcome the C parser implies.

    Returns (outcome, logs, late_logs, unsatisfiable, late_unsatisfiable):
    logs are the "Malformed HTTP message" texts that must be logged;
    late_logs those of requests after a closing one, which upstream logs
    only if they were already buffered when the connection closed (timing);
    the same split for "Unsatisfiable read" texts."""
    from tornado_c import _core

    parser_class = parser_class or _core.HTTPRequestParser
    kw = {}
    s = case["server"]
    if "max_header_size" in s:
        kw["max_header_size"] = s["max_header_size"]
    if "max_body_size" in s:
        kw["max_body_size"] = s["max_body_size"]
    if s.get("no_keep_alive"):
        kw["no_keep_alive"] = True
    p = parser_class(auto=False, **kw)
    feed_all(p, case["raw"].encode("latin1"))
    out = []
    logs = []
    late = []
    unsat = []
    late_unsat = []
    cur = None
    closed = False

    def emit(item):
        if not closed:
            out.append(item)

    for ev in p.events:
        if ev[0] == "headers":
            _, method, target, version, hdrs, keep_alive, expect = ev
            headers = httputil.HTTPHeaders()
            try:
                for n, v in hdrs:
                    headers.add(n, v)
                # What the application's delegate does in headers_received.
                httputil.HTTPServerRequest(
                    start_line=httputil.RequestStartLine(method, target, version),
                    headers=headers,
                )
            except httputil.HTTPInputError as e:
                emit(("400",))
                (late if closed else logs).append(str(e))
                return out, logs, late, unsat, late_unsat
            cur = [method, target, version, b"", keep_alive]
            if expect:
                emit(("100",))
        elif ev[0] == "body":
            cur[3] += ev[1]
        elif ev[0] == "complete":
            method, target, version, body, keep_alive = cur
            if method not in SUPPORTED:
                emit(("resp", 405, None))
            elif method == "HEAD":
                emit(("resp", 200, None))
            else:
                emit(("resp", 200, echo_line(method, target, version, body)))
            if not keep_alive:
                closed = True
        elif ev[0] == "error":
            if ev[1] == "400":
                emit(("400",))
                (late if closed else logs).append(ev[2])
            else:
                text = "Unsatisfiable read, closing connection: " + ev[2]
                (late_unsat if closed else unsat).append(text)
    return out, logs, late, unsat, late_unsat


def compare(cases, results, unsat_logged, parser_class=None):
    """Mismatches between observed results and the parser's predictions."""
    import collections

    mismatches = []
    need = collections.Counter()
    may = collections.Counter()
    for case, r in zip(cases, results):
        out, logs, late, unsat, late_unsat = predict(case, parser_class)
        need.update(unsat)
        may.update(late_unsat)
        obs = r["malformed_logs"]
        ok = (out == r["outcome"] and obs[:len(logs)] == logs
              and obs[len(logs):] == late[:len(obs) - len(logs)])
        if not ok:
            mismatches.append((case["name"], case["raw"][:200], r["outcome"], obs, out, logs))
    got = collections.Counter(unsat_logged)
    if got - need - may or need - got:
        mismatches.append(("unsatisfiable logs", dict(got), dict(need), dict(may)))
    return mismatches


MUTATION_TOKENS = [
    "\r", "\n", "\r\n", " ", "\t", ":", ",", "0", "\x00", "\xa0", "chunked", "5", "f", ";",
    "\r\n\r\n", "HTTP/1.0", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n",
    "Connection: keep-alive\r\n", "Expect: 100-continue\r\n",
]


def mutate(cases, count, seed):
    """Deterministic random mutants of cases (insert a token, delete, replace
    a byte, duplicate a slice), 1-3 edits each."""
    import random

    rnd = random.Random(seed)
    base = [c for c in cases if "byte 0x" not in c["name"]]
    out = []
    for i in range(count):
        c = rnd.choice(base)
        raw = c["raw"]
        for _ in range(rnd.randint(1, 3)):
            k = rnd.randint(0, len(raw))
            op = rnd.random()
            if op < 0.4:
                raw = raw[:k] + rnd.choice(MUTATION_TOKENS) + raw[k:]
            elif op < 0.7:
                raw = raw[:k] + raw[k + rnd.randint(1, 4):]
            elif op < 0.85:
                raw = raw[:k] + chr(rnd.randint(0, 255)) + raw[k + 1:]
            else:
                j = rnd.randint(0, len(raw))
                raw = raw[:k] + raw[min(k, j):max(k, j)] + raw[k:]
        out.append({"name": "%s / mutant %d" % (c["name"], i), "raw": raw, "server": c["server"]})
    return out
