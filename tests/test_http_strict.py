"""Strict mode of the C HTTP server (HTTPServer(strict_http=True) or
TORNADO_C_STRICT_HTTP=1): a request must be accepted by llhttp (strict
build, csrc/http/judge.h) as well as by Tornado's grammar, and framed the
same way; anything else gets upstream's 400 path ("Malformed HTTP message
from ..." at INFO on tornado.general, "HTTP/1.1 400 Bad Request", close).
Off by default: then those requests are served as upstream serves them.
"""

import asyncio
import os
import socket
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


def serve_one(data, strict, wait=1.0):
    async def go():
        server, port = await serve(chs.HTTPServer, strict_http=strict)
        try:
            return await exchange(port, data, wait=wait)
        finally:
            await shutdown(server)
    before = chs._stats["c_connections"]
    out = run(go())
    assert chs._stats["c_connections"] > before, "C server not used"
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
def test_llhttp_rejects_400_only_in_strict_mode(data, default_status, llhttp_error, logs):
    out = responses(serve_one(data, strict=False))
    assert len(out) == 1 and out[0][0] == default_status, out
    assert not [m for m in logs.messages() if m.startswith("Malformed")]

    raw = serve_one(data, strict=True)
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
def test_both_accept_same_responses(data, logs):
    plain = serve_one(data, strict=False)
    strict = serve_one(data, strict=True)
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
def test_tornado_rejects_same_in_both_modes(data, logs):
    plain = serve_one(data, strict=False)
    n = len(logs.records)
    strict = serve_one(data, strict=True)
    assert BAD in plain and strict == plain
    first = [m for m in logs.messages()[:n] if m.startswith("Malformed")]
    second = [m for m in logs.messages()[n:] if m.startswith("Malformed")]
    assert first == second and len(first) == 1 and "llhttp" not in first[0]


def test_framing_error_after_head_is_llhttps_in_strict_mode(logs):
    # Tornado checks Content-Length / Transfer-Encoding only after the head
    # has gone to the application (headers_received); strict mode refuses
    # at the end of the head, so llhttp's reason is logged and the
    # application never sees the request.  Same 400 and close.
    data = req("Host: a", "Content-Length: 1", "Content-Length: 2", start="POST / HTTP/1.1",
               body=b"xy")
    assert serve_one(data, strict=False) == BAD
    assert serve_one(data, strict=True) == BAD
    lines = [m for m in logs.messages() if m.startswith("Malformed")]
    assert lines == [
        "Malformed HTTP message from 127.0.0.1: Multiple unequal Content-Lengths: '1,2'",
        "Malformed HTTP message from 127.0.0.1: llhttp (strict mode) refuses the request: "
        "HPE_UNEXPECTED_CONTENT_LENGTH: Duplicate Content-Length"]


def test_keep_alive_disagreement_closes_in_strict_mode(logs):
    # Tornado keeps this connection alive ("close,close" is not "close",
    # tests/test_http_judge.py); llhttp does not, so in strict mode the next
    # request on it is refused.
    data = (req("Host: a", "Connection: close", "Connection: close", start="GET /one HTTP/1.1")
            + req("Host: a", "Connection: close", start="GET /two HTTP/1.1"))
    assert [r[0] for r in responses(serve_one(data, strict=False))] == [200, 200]
    out = responses(serve_one(data, strict=True))
    assert [r[0] for r in out] == [200, "400"], out
    assert any("HPE_CLOSED_CONNECTION" in m for m in logs.messages())


def test_websocket_in_strict_mode():
    async def go():
        from tornado import websocket
        server, port = await serve(chs.HTTPServer, strict_http=True)
        try:
            ws = await websocket.websocket_connect("ws://127.0.0.1:%d/ws" % port)
            await ws.write_message("hi")
            msg = await ws.read_message()
            ws.close()
            return msg
        finally:
            await shutdown(server)
    assert run(go()) == "echo:hi"


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


def test_fallback_path_warns(logs):
    # a non-tornado_c loop: upstream's Python path, strict mode not applied
    async def go():
        server, port = await serve(chs.HTTPServer, strict_http=True)
        try:
            return await exchange(port, req("Host: a", "Connection: close", start="OTHER / HTTP/1.1"))
        finally:
            await shutdown(server)
    loop = asyncio.new_event_loop()
    try:
        out = loop.run_until_complete(go())
    finally:
        loop.close()
    assert responses(out)[0][0] == 405
    assert any("strict_http is not applied" in m for m in logs.messages())


def test_unmodified_app_under_environment_variable(tmp_path):
    # python -m tornado_c app.py with TORNADO_C_STRICT_HTTP=1: no code change
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    app = tmp_path / "app.py"
    app.write_text(
        "import tornado.web, tornado.ioloop\n"
        "class H(tornado.web.RequestHandler):\n"
        "    def get(self):\n"
        "        self.write('ok')\n"
        "tornado.web.Application([(r'/', H)]).listen(%d, '127.0.0.1')\n"
        "tornado.ioloop.IOLoop.current().start()\n" % port)
    results = {}
    for value in ("1", "0"):
        env = dict(os.environ, TORNADO_C_STRICT_HTTP=value)
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
            with c:
                c.sendall(req("Host: a", "Content-Length: 0", "Content-Length: 0",
                              "Connection: close"))
                out = b""
                while True:
                    piece = c.recv(65536)
                    if not piece:
                        break
                    out += piece
            results[value] = out
        finally:
            proc.kill()
            proc.wait()
    assert results["1"] == BAD
    assert results["0"].startswith(b"HTTP/1.1 200 OK") and results["0"].endswith(b"ok")


class StrictServer(chs.HTTPServer):
    def initialize(self, *args, **kwargs):
        super().initialize(*args, strict_http=True, **kwargs)


@needs_test_api()
def test_corpus_strict_server():
    # The differential corpus against the C server in strict mode.  Where
    # llhttp accepts the whole input and agrees with Tornado's grammar on
    # every message (test_http_judge.compare), the outcome and the log lines
    # are exactly those without strict mode (harness.predict); everywhere
    # else they may also stop early with strict mode's 400: the responses
    # before it are the predicted ones.
    import json

    import tornado_c.loop
    import test_http_judge as judge

    cases = [json.loads(line) for line in open(os.path.join(HERE, "http_corpus", "cases.jsonl"))]
    before = chs._stats["c_connections"]
    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())
    try:
        results, _, unsat = harness.run_corpus(cases, server_class=StrictServer)
    finally:
        asyncio.set_event_loop_policy(saved)
    assert chs._stats["c_connections"] - before == len(cases)
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

