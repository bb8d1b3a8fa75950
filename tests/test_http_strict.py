"""Strict mode of the C HTTP server (HTTPServer(strict_http=True) or
TORNADO_C_STRICT_HTTP=1): a request must be accepted by llhttp (strict
build, csrc/http/judge.h) as well as by Tornado's grammar, and framed the
same way; anything else gets upstream's 400 path ("Malformed HTTP message
from ..." at INFO on tornado.general, "HTTP/1.1 400 Bad Request", close).
Off by default: then those requests are served as upstream serves them.

The tests run on three transports: "plain" (the C server), "tls_c" (a
server with ssl_options: TLS inside the C stream, the C server on the
plaintext) and "tls" (the same server with TLS in the C stream turned off,
so served by upstream's SSLIOStream and Python HTTP1Connection with llhttp
judging what it reads: tornado_c/_strict.py, the path a context class that
is not the stdlib's still takes); the answers must be the same.
"""

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from tornado_c import httpserver as chs

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "http_corpus"))
import harness  # noqa: E402
from conftest import needs_test_api  # noqa: E402
from test_http_server import (  # noqa: E402,F401  (fixtures)
    exchange, logs, make_app, no_configure, responses, run, serve, shutdown)

BAD = b"HTTP/1.1 400 Bad Request\r\n\r\n"


def req(*headers, start="GET / HTTP/1.1", body=b"", eol=b"\r\n"):
    lines = [start.encode("latin1")] + [h.encode("latin1") for h in headers]
    return eol.join(lines) + eol + eol + body


def _cert_dir():
    import tornado.test
    return os.path.dirname(tornado.test.__file__)


def server_ssl():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(_cert_dir(), "test.crt"),
                        os.path.join(_cert_dir(), "test.key"))
    return ctx


def client_ssl():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


TRANSPORTS = ["plain", "tls", "tls_c"]


class _tls_path:
    """While on: TLS in the C stream for "tls_c", upstream's SSLIOStream
    (and Python connection) for "tls"."""

    def __init__(self, transport):
        self.transport = transport

    def __enter__(self):
        import tornado_c.iostream as tci

        self.saved = tci._c_tls_enabled
        tci._c_tls_enabled = self.transport != "tls"

    def __exit__(self, *exc):
        import tornado_c.iostream as tci

        tci._c_tls_enabled = self.saved


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


def serve_one(data, strict, wait=1.0, transport="plain"):
    """Send data on one connection, read until the server closes; on
    "plain" and "tls_c" the C server must have served it, on "tls"
    upstream's Python connection (strict mode's when strict)."""
    tls = transport != "plain"

    async def go():
        kw = {"ssl_options": server_ssl()} if tls else {}
        server, port = await serve(chs.HTTPServer, strict_http=strict, **kw)
        try:
            if tls:
                return await harness._send(data, "127.0.0.1", port, wait, client_ssl())
            return await exchange(port, data, wait=wait)
        finally:
            await shutdown(server)
    before = dict(chs._stats)
    with _tls_path(transport):
        out = run(go())
    if transport == "tls":
        assert chs._stats["python_connections"] > before["python_connections"]
        assert chs._stats["c_connections"] == before["c_connections"]
    else:
        assert chs._stats["c_connections"] > before["c_connections"], "C server not used"
    return out


# Tornado accepts these, llhttp does not (csrc/http/parser.h,
# tests/test_http_parser.py::test_llhttp_rejects_requests_tornado_accepts).
LLHTTP_REJECTS = [
    pytest.param(req("Host: a", "Connection: close", start="OTHER / HTTP/1.1"), 405,
                 "HPE_INVALID_METHOD", id="token method"),
    pytest.param(req("Host: a", "Content-Length: 1", "Content-Length: 1", "Connection: close",
                     start="POST /echo HTTP/1.1", body=b"x"), 200,
                 "HPE_UNEXPECTED_CONTENT_LENGTH", id="equal repeated Content-Length"),
    pytest.param(req("Host: a", "Content-Length: 1, 1", "Connection: close",
                     start="POST /echo HTTP/1.1", body=b"x"), 200,
                 "HPE_INVALID_CONTENT_LENGTH", id="Content-Length list"),
    pytest.param(req("Host: a", "Connection: close", eol=b"\n"), 200,
                 "HPE_", id="LF-only lines"),
    pytest.param(req("Host: a", "Connection: close", start="GET / HTTP/1.2"), 200,
                 "HPE_INVALID_VERSION", id="HTTP/1.2"),
]


@pytest.mark.parametrize("data,default_status,llhttp_error", LLHTTP_REJECTS)
def test_llhttp_rejects_400_only_in_strict_mode(data, default_status, llhttp_error, logs,
                                                transport):
    out = responses(serve_one(data, strict=False, transport=transport))
    assert len(out) == 1 and out[0][0] == default_status, out
    assert not [m for m in logs.messages() if m.startswith("Malformed")]

    raw = serve_one(data, strict=True, transport=transport)
    assert raw == BAD
    lines = [m for m in logs.messages("tornado.general") if m.startswith("Malformed HTTP message")]
    assert len(lines) == 1, logs.messages()
    assert lines[0].startswith("Malformed HTTP message from 127.0.0.1: "
                               "llhttp (strict mode) refuses the request: " + llhttp_error), lines
    rec = [r for r in logs.records if r.getMessage() == lines[0]][0]
    assert rec.levelname == "INFO"


# Both accept these: strict mode changes nothing.
BOTH_ACCEPT = [
    req("Host: a", start="GET /echo?x=1 HTTP/1.1") + req("Host: a", "Connection: close",
                                                         start="GET /b HTTP/1.1"),
    req("Host: a", "Content-Length: 5", start="POST /echo HTTP/1.1", body=b"hello")
    + req("Host: a", "Transfer-Encoding: chunked", "Connection: close", start="PUT /echo HTTP/1.1",
          body=b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
    req("Host: a", "Connection: keep-alive", start="GET / HTTP/1.0")
    + req("Host: a", start="GET /two HTTP/1.0"),
    req("Host: a", "Expect: 100-continue", "Content-Length: 2", "Connection: close",
        start="POST /echo HTTP/1.1", body=b"ok"),
    # an Upgrade a plain handler ignores: llhttp pauses after it, the judge
    # resumes, the next request is served
    req("Host: a", "Upgrade: foo", "Connection: Upgrade", start="GET /up HTTP/1.1")
    + req("Host: a", "Connection: close", start="GET /next HTTP/1.1"),
    b"\r\n" + req("Host: a", "Connection: close"),
]


@pytest.mark.parametrize("data", BOTH_ACCEPT)
def test_both_accept_same_responses(data, logs, transport):
    plain = serve_one(data, strict=False, transport=transport)
    strict = serve_one(data, strict=True, transport=transport)
    assert responses(strict) == responses(plain)
    assert all(item[0] != "400" for item in responses(strict)), responses(strict)
    assert not [m for m in logs.messages() if m.startswith("Malformed")]


# Tornado rejects these: the same 400 and log line in both modes (an llhttp
# error inside a head waits for the end of Tornado's head, so Tornado's
# message wins).
TORNADO_REJECTS = [
    req("Host: a", "X: b", " folded"),
    req("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1",
        body=b"3;ext=1\r\nabc\r\n0\r\n\r\n"),
    req("Host: a", "Transfer-Encoding: chunked", start="POST / HTTP/1.1",
        body=b"3\r\nabcXX0\r\n\r\n"),
    req("Host: a", "Bad Name: x"),
]


@pytest.mark.parametrize("data", TORNADO_REJECTS)
def test_tornado_rejects_same_in_both_modes(data, logs, transport):
    plain = serve_one(data, strict=False, transport=transport)
    n = len(logs.records)
    strict = serve_one(data, strict=True, transport=transport)
    assert BAD in plain and strict == plain
    first = [m for m in logs.messages()[:n] if m.startswith("Malformed")]
    second = [m for m in logs.messages()[n:] if m.startswith("Malformed")]
    assert first == second and len(first) == 1 and "llhttp" not in first[0]


def test_framing_error_after_head_is_llhttps_in_strict_mode(logs, transport):
    # Tornado checks Content-Length / Transfer-Encoding only after the head
    # has gone to the application (headers_received); strict mode refuses
    # at the end of the head, so llhttp's reason is logged and the
    # application never sees the request.  Same 400 and close.
    data = req("Host: a", "Content-Length: 1", "Content-Length: 2", start="POST / HTTP/1.1",
               body=b"xy")
    assert serve_one(data, strict=False, transport=transport) == BAD
    assert serve_one(data, strict=True, transport=transport) == BAD
    lines = [m for m in logs.messages() if m.startswith("Malformed")]
    assert lines == [
        "Malformed HTTP message from 127.0.0.1: Multiple unequal Content-Lengths: '1,2'",
        "Malformed HTTP message from 127.0.0.1: llhttp (strict mode) refuses the request: "
        "HPE_UNEXPECTED_CONTENT_LENGTH: Duplicate Content-Length"]


def test_keep_alive_disagreement_closes_in_strict_mode(logs, transport):
    # Tornado keeps this connection alive ("close,close" is not "close",
    # tests/test_http_judge.py); llhttp does not, so in strict mode the next
    # request on it is refused.
    data = (req("Host: a", "Connection: close", "Connection: close", start="GET /one HTTP/1.1")
            + req("Host: a", "Connection: close", start="GET /two HTTP/1.1"))
    assert [r[0] for r in responses(serve_one(data, strict=False, transport=transport))] == [
        200, 200]
    out = responses(serve_one(data, strict=True, transport=transport))
    assert [r[0] for r in out] == [200, "400"], out
    assert any("HPE_CLOSED_CONNECTION" in m for m in logs.messages())


def test_websocket_in_strict_mode(transport):
    # the WebSocket handshake detaches the stream: the frames after it are
    # never judged (on TLS the read hooks come off the SSLIOStream)
    async def go():
        from tornado import httpclient, websocket
        kw = {"ssl_options": server_ssl()} if transport != "plain" else {}
        server, port = await serve(chs.HTTPServer, strict_http=True, **kw)
        try:
            if transport != "plain":
                req = httpclient.HTTPRequest("wss://127.0.0.1:%d/ws" % port,
                                             ssl_options=client_ssl())
            else:
                req = "ws://127.0.0.1:%d/ws" % port
            ws = await websocket.websocket_connect(req)
            out = []
            for text in ("hi", "GET / HTTP/1.1\r\n\r\n", "x" * 70000):
                await ws.write_message(text)
                out.append(await ws.read_message())
            ws.close()
            return out
        finally:
            await shutdown(server)
    with _tls_path(transport):
        assert run(go()) == ["echo:hi", "echo:GET / HTTP/1.1\r\n\r\n", "echo:" + "x" * 70000]


def test_setting_and_environment(monkeypatch):
    app = make_app()
    monkeypatch.delenv("TORNADO_C_STRICT_HTTP", raising=False)
    assert chs.HTTPServer(app).strict_http is False
    assert chs.HTTPServer(app, strict_http=True).strict_http is True
    monkeypatch.setenv("TORNADO_C_STRICT_HTTP", "1")
    assert chs.HTTPServer(app).strict_http is True
    assert chs.HTTPServer(app, strict_http=False).strict_http is False
    monkeypatch.setenv("TORNADO_C_STRICT_HTTP", "0")
    assert chs.HTTPServer(app).strict_http is False


def test_non_tornado_c_loop_is_strict_too(logs):
    # a non-tornado_c loop: upstream's Python path, judged as on TLS
    data = req("Host: a", "Connection: close", start="OTHER / HTTP/1.1")

    async def go(strict):
        server, port = await serve(chs.HTTPServer, strict_http=strict)
        try:
            return await exchange(port, data)
        finally:
            await shutdown(server)
    out = {}
    for strict in (False, True):
        before = chs._stats["python_connections"]
        loop = asyncio.new_event_loop()
        try:
            out[strict] = loop.run_until_complete(go(strict))
        finally:
            loop.close()
        assert chs._stats["python_connections"] == before + 1
    assert responses(out[False])[0][0] == 405
    assert out[True] == BAD
    assert any("HPE_INVALID_METHOD" in m for m in logs.messages("tornado.general"))
    assert not any("strict_http" in m for m in logs.messages())


class OwnHandleStream(chs.HTTPServer):
    def handle_stream(self, stream, address):
        # upstream's handle_stream, not ours: no strict mode
        return chs._UpstreamHTTPServer.handle_stream(self, stream, address)


def test_overridden_handle_stream_warns(logs):
    async def go():
        server, port = await serve(OwnHandleStream, strict_http=True)
        try:
            return await exchange(port, req("Host: a", "Connection: close",
                                            start="OTHER / HTTP/1.1"))
        finally:
            await shutdown(server)
    assert responses(run(go()))[0][0] == 405
    assert any("strict_http is applied by HTTPServer.handle_stream" in m
               for m in logs.messages())


@pytest.mark.parametrize("transport", ["plain", "tls"])
def test_unmodified_app_under_environment_variable(tmp_path, transport):
    # python -m tornado_c app.py with TORNADO_C_STRICT_HTTP=1: no code change;
    # with TORNADO_C_DISABLE=http upstream's HTTPServer serves (no strict mode)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    ssl_arg = ""
    if transport == "tls":
        ssl_arg = ", ssl_options=dict(certfile=%r, keyfile=%r)" % (
            os.path.join(_cert_dir(), "test.crt"), os.path.join(_cert_dir(), "test.key"))
    app = tmp_path / "app.py"
    app.write_text(
        "import tornado.web, tornado.ioloop\n"
        "class H(tornado.web.RequestHandler):\n"
        "    def get(self):\n"
        "        self.write('ok')\n"
        "tornado.web.Application([(r'/', H)]).listen(%d, '127.0.0.1'%s)\n"
        "tornado.ioloop.IOLoop.current().start()\n" % (port, ssl_arg))
    results = {}
    runs = {"strict": {"TORNADO_C_STRICT_HTTP": "1"}, "off": {"TORNADO_C_STRICT_HTTP": "0"},
            "disabled": {"TORNADO_C_STRICT_HTTP": "1", "TORNADO_C_DISABLE": "http"}}
    for name, extra in runs.items():
        env = {k: v for k, v in os.environ.items() if k != "TORNADO_C_DISABLE"}
        env.update(extra)
        proc = subprocess.Popen([sys.executable, "-m", "tornado_c", str(app)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    c = socket.create_connection(("127.0.0.1", port), timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.1)
            if transport == "tls":
                c = client_ssl().wrap_socket(c)
            with c:
                c.sendall(req("Host: a", "Content-Length: 0", "Content-Length: 0",
                              "Connection: close"))
                out = b""
                while True:
                    try:
                        piece = c.recv(65536)
                    except (ConnectionResetError, ssl.SSLError):
                        break
                    if not piece:
                        break
                    out += piece
            results[name] = out
        finally:
            proc.kill()
            proc.wait()
    assert results["strict"] == BAD
    for name in ("off", "disabled"):
        assert results[name].startswith(b"HTTP/1.1 200 OK") and results[name].endswith(b"ok")


def test_judge_api():
    from tornado_c import _core

    j = _core.HTTPJudge()
    head = req("Host: a", "Content-Length: 2", start="POST / HTTP/1.1")
    # the head, judged once Tornado's grammar delivered it (heads=1)
    assert j.check(head, 1, 0, False) is None
    assert j.check(b"o", 1, 0, False) is None
    assert j.check(b"k", 1, 1, True) is None
    # llhttp would end a head Tornado has not ended
    assert j.check(req("Host: a"), 1, 1, False) == (
        "llhttp ends the request head at another byte")
    j = _core.HTTPJudge()
    assert j.check(req("Host: a", "Content-Length: 2"), 1, 1, True) == (
        "llhttp ends the message at another byte")
    j = _core.HTTPJudge()
    # an llhttp error inside a head waits for Tornado's end of it
    assert j.check(b"OTHER / HTTP/1.1\r\n", 0, 0, False) is None
    assert j.check(b"\r\n", 1, 0, False).startswith("HPE_INVALID_METHOD: ")
    with pytest.raises(TypeError):
        j.check(b"x", 1, 0)
    with pytest.raises(TypeError):
        j.check("text", 1, 0, False)
    with pytest.raises(OverflowError):
        j.check(b"", -1, 0, False)
    with pytest.raises(TypeError):
        _core.HTTPJudge(1)


class StrictServer(chs.HTTPServer):
    def initialize(self, *args, **kwargs):
        super().initialize(*args, strict_http=True, **kwargs)


_CORPUS_RUNS = {}


def corpus_run(transport):
    """The differential corpus (tests/http_corpus) against StrictServer on
    a tornado_c loop, once per transport per session: (cases, results)."""
    import json

    import tornado_c.loop

    if transport not in _CORPUS_RUNS:
        cases = [json.loads(line)
                 for line in open(os.path.join(HERE, "http_corpus", "cases.jsonl"))]
        before = dict(chs._stats)
        saved = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
        tls_path = _tls_path(transport)
        tls_path.__enter__()
        try:
            if transport == "tls":
                # upstream's Python connection (_strict.py): C TLS off
                tls = (server_ssl(), client_ssl())
                results, _, _ = harness.run_corpus(cases, server_class=StrictServer, tls=tls,
                                                   concurrency=16)
                # The TLS handshake counts against the corpus servers' 1 s
                # idle timeout: on a loaded machine a connection may be
                # closed before its request arrived (no answer, no log).
                # Those are sent once more, a few at a time (with the
                # cases whose answer is no answer: about 40).
                again = [i for i, r in enumerate(results)
                         if not r["data"] and not r["malformed_logs"]]
                if again:
                    retry, _, _ = harness.run_corpus([cases[i] for i in again],
                                                     server_class=StrictServer, tls=tls,
                                                     concurrency=2)
                    for i, r in zip(again, retry):
                        results[i] = r
                sent = len(cases) + len(again)
            else:
                results, _, _ = harness.run_corpus(cases, server_class=StrictServer)
                sent = len(cases)
        finally:
            tls_path.__exit__()
            asyncio.set_event_loop_policy(saved)
        served = "python_connections" if transport == "tls" else "c_connections"
        assert chs._stats[served] - before[served] == sent
        _CORPUS_RUNS[transport] = cases, results
    return _CORPUS_RUNS[transport]


@needs_test_api()
def test_corpus_strict_server():
    # The differential corpus against the C server in strict mode.  Where
    # llhttp accepts the whole input and agrees with Tornado's grammar on
    # every message (test_http_judge.compare), the outcome and the log lines
    # are exactly those without strict mode (harness.predict); everywhere
    # else they may also stop early with strict mode's 400: the responses
    # before it are the predicted ones.
    import test_http_judge as judge

    cases, results = corpus_run("plain")
    clean = refused = 0
    bad = []
    for case, r in zip(cases, results):
        data = case["raw"].encode("latin1")
        explained = {}
        agree = judge.theirs(data)[1] is None and judge.compare(data, case["server"], explained) == []
        out, logs, late, _, _ = harness.predict(case)
        obs = r["malformed_logs"]
        strict_logs = [m for m in obs if m.startswith("llhttp (strict mode)")]
        if agree and not explained:
            clean += 1
            if r["outcome"] != out or strict_logs or obs[:len(logs)] != logs:
                bad.append((case["name"], "clean", r["outcome"], out, obs))
        elif r["outcome"] != out:
            got = r["outcome"]
            if not (got and got[-1] == ("400",) and got[:-1] == out[:len(got) - 1] and strict_logs):
                bad.append((case["name"], "refused", got, out, obs))
            refused += 1
    assert bad == []
    assert clean >= 200 and refused >= 50, (clean, refused)


@needs_test_api()
def test_corpus_strict_tls_same_as_plain():
    # The whole corpus in strict mode over TLS (upstream's Python connection
    # judged by tornado_c/_strict.py) gives the C server's answers: the same
    # responses, 400s and "Malformed HTTP message" lines, case by case.
    # Two differences, both explained:
    #  - late lines: after a response that closes the connection, upstream's
    #    request loop still parses a request already buffered and logs its
    #    error (harness.predict's "late" logs; llhttp's HPE_CLOSED_CONNECTION
    #    is its own such line); the C server stops reading.  TLS may add
    #    such lines after the plain ones, nothing else.
    #  - bytes never read: the C parser consumes a chunk-size line as it
    #    arrives, so llhttp judges (and refuses) a line that never ends in
    #    CRLF; upstream's read_until(b"\r\n") never returns such a line, so
    #    nothing is judged and upstream's own ending applies (timeout or
    #    unsatisfiable close without an answer, as without strict mode).
    #    The request is refused either way, only the 400 line is missing.
    cases, plain = corpus_run("plain")
    _, tls = corpus_run("tls")
    bad = []
    refused = late_lines = unread = 0
    for case, p, t in zip(cases, plain, tls):
        p_logs, t_logs = p["malformed_logs"], t["malformed_logs"]
        if any(m.startswith("llhttp (strict mode)") for m in p_logs):
            refused += 1
        if t["outcome"] == p["outcome"] and t_logs == p_logs:
            continue
        out, _, late, _, _ = harness.predict(case)
        extra = t_logs[len(p_logs):]
        if (t["outcome"] == p["outcome"] and t_logs[:len(p_logs)] == p_logs
                and all(m in late or "HPE_CLOSED_CONNECTION" in m for m in extra)):
            late_lines += 1
            continue
        if (p["outcome"] and p["outcome"][-1] == ("400",) and t["outcome"] == out
                and p["outcome"][:-1] == out and p_logs[-1:] and t_logs == p_logs[:-1]
                and p_logs[-1].startswith("llhttp (strict mode)")):
            unread += 1
            continue
        bad.append((case["name"], p["outcome"], t["outcome"], p_logs, t_logs))
    assert bad == []
    assert refused >= 50, refused
    assert late_lines + unread <= 10, (late_lines, unread)
