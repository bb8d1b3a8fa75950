"""Client-mode response grammar: the C parser (tc_http_parser with client
set, through the test build's _core.HTTPRequestParser(client=True)) and the
switched client (tornado_c.simple_httpclient) against upstream's client.

A raw-socket server replays each canned response of tests/http_client_corpus.py
(valid, odd, hostile, cut short, trickled) to upstream's SimpleAsyncHTTPClient
on a plain asyncio loop; what the client returns (code, reason, headers in
get_all() order, body, the error's type and message) and what it logs on
tornado.* are recorded.  The same bytes go through the C parser, whole and
one byte at a time, and its events are turned into the outcome upstream's
client builds from the same facts (the delegate side of _HTTPConnection:
headers_received, data_received, finish, on_connection_close, and
_read_message_inner's error handling).  The two must be equal for every
case.  The mapping (_predict) is what the C client connection has to do
with the parser's events; it does no parsing itself.

Then the same corpus goes to SimpleAsyncHTTPClient under the switch (the
tornado_c loop, the C IOStream, HTTP1ClientConnection with the head and the
framing parsed in C): its outcomes and logs must be upstream's, case by
case.
"""

import asyncio
import logging

import pytest

from tornado import httputil
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from http_client_corpus import cases

_core = pytest.importorskip("tornado_c._core")
if not hasattr(_core, "HTTPRequestParser"):
    pytest.skip("needs the test build (TORNADO_C_TEST=1)", allow_module_level=True)

CASES = cases()
DEFAULT_MAX_HEADER = 65536
DEFAULT_MAX_BODY = 100 * 1024 * 1024
REQUEST_TIMEOUT = 3.0
TRICKLE_PAUSE = 0.002


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append((record.name, record.levelname, record.getMessage()))


def _outcome_of_response(resp):
    headers = list(resp.headers.get_all()) if resp.headers is not None else None
    err = resp.error
    return {
        "code": resp.code,
        "reason": resp.reason,
        "headers": headers,
        "body": resp.body if err is None or isinstance(err, HTTPClientError) else None,
        "error": None if err is None else (type(err).__name__, str(err)),
    }


async def _run_client(case_list):
    """Every case through the SimpleAsyncHTTPClient in force (upstream's, or
    the switched one); returns {name: (outcome, logs)}."""
    current = {}
    handlers = set()

    async def handle(reader, writer):
        handlers.add(asyncio.current_task())
        try:
            await reader.readuntil(b"\r\n\r\n")
            case = current["case"]
            data = case["data"]
            if case["pieces"]:
                pos = 0
                for n in case["pieces"]:
                    if pos >= len(data):
                        break
                    writer.write(data[pos:pos + n])
                    pos += n
                    await writer.drain()
                    await asyncio.sleep(TRICKLE_PAUSE)
                writer.write(data[pos:])
            else:
                writer.write(data)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            handlers.discard(asyncio.current_task())

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients = {}
    cap = _Capture()
    loggers = [logging.getLogger(n) for n in ("tornado.general", "tornado.application")]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(cap)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    results = {}
    try:
        for case in case_list:
            key = (case["max_header_size"], case["max_body_size"])
            if key not in clients:
                kw = {}
                if key[0] is not None:
                    kw["max_header_size"] = key[0]
                if key[1] is not None:
                    kw["max_body_size"] = key[1]
                clients[key] = SimpleAsyncHTTPClient(force_instance=True, **kw)
            current["case"] = case
            del cap.records[:]
            req = HTTPRequest("http://127.0.0.1:%d/" % port, method=case["method"],
                              follow_redirects=False, decompress_response=False,
                              request_timeout=REQUEST_TIMEOUT)
            try:
                resp = await clients[key].fetch(req, raise_error=False)
                out = _outcome_of_response(resp)
            except Exception as e:
                out = {"raised": (type(e).__name__, str(e))}
            # the server side of this case is done before the next one
            while handlers:
                await asyncio.sleep(0.001)
            results[case["name"]] = (out, list(cap.records))
    finally:
        for c in clients.values():
            c.close()
        for lg, (level, prop) in zip(loggers, saved):
            lg.removeHandler(cap)
            lg.setLevel(level)
            lg.propagate = prop
        server.close()
        await server.wait_closed()
    return results


@pytest.fixture(scope="module")
def upstream():
    import tornado.http1connection
    import tornado.simple_httpclient

    # upstream's connection class, whatever the session's switch says
    assert tornado.simple_httpclient.HTTP1Connection is tornado.http1connection.HTTP1Connection
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_run_client(CASES))
    finally:
        loop.close()


@pytest.fixture(scope="module")
def switched():
    import tornado.simple_httpclient
    import tornado_c
    from tornado_c.simple_httpclient import HTTP1ClientConnection

    from conftest import new_loop

    before = tornado_c.active()
    tornado_c.install()
    loop = new_loop("tornado_c")
    try:
        assert tornado.simple_httpclient.HTTP1Connection is HTTP1ClientConnection
        return loop.run_until_complete(_run_client(CASES))
    finally:
        loop.close()
        tornado_c.uninstall()
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


def _parse(case, split):
    p = _core.HTTPRequestParser(
        client=True,
        request_head=case["method"] == "HEAD",
        max_header_size=case["max_header_size"] or DEFAULT_MAX_HEADER,
        max_body_size=case["max_body_size"] or DEFAULT_MAX_BODY,
    )
    data = case["data"]
    if split:
        for i in range(len(data)):
            if p.error is not None:
                break
            p.feed(data[i:i + 1])
    else:
        p.feed(data)
    truncated = p.eof() if p.error is None else None
    return p.events, p.error, truncated


def _predict(events, error, truncated):
    """Upstream client's outcome for the parser's events, and its logs."""
    code = reason = headers = None
    body = b""
    past_final_head = False
    body_started = False
    for ev in events:
        if ev[0] == "headers":
            _, version, code, reason, pairs = ev
            headers = httputil.HTTPHeaders()
            for k, v in pairs:
                headers.add(k, v)
            past_final_head = not (100 <= code < 200)
        elif ev[0] == "body_start":
            body_started = True
            if ev[3] is not None:  # the Content-Length list rewritten
                headers["Content-Length"] = ev[3]
        elif ev[0] == "body":
            body += ev[1]
        elif ev[0] == "complete":
            reason = reason or httputil.responses.get(code, "Unknown")
            err = None
            if code < 200 or code >= 300:
                e = HTTPClientError(code, message=reason)
                err = (type(e).__name__, str(e))
            return {"code": code, "reason": reason, "headers": list(headers.get_all()),
                    "body": body, "error": err}, []
    if error is not None:
        kind, msg = error
        if kind == "400":
            # HTTPInputError: logged, then the delegate's on_connection_close
            return ({"raised": ("HTTPStreamClosedError", "Connection closed")},
                    [("tornado.general", "INFO", "Malformed HTTP message from None: %s" % msg)])
        unsat = [("tornado.general", "INFO", "Unsatisfiable read, closing connection: %s" % msg)]
        if not body_started:
            # read_until_regex of a head: the error reaches fetch()
            return {"raised": ("UnsatisfiableReadError", msg)}, unsat
        # a chunk-size line: upstream's read future never resolves; the
        # request times out
        return ({"raised": ("HTTPTimeoutError", "Timeout during request")},
                unsat + [("tornado.application", "ERROR", "Uncaught exception")])
    if past_final_head:
        # the parser says the end cut the response short
        assert truncated is True
        return {"raised": ("HTTPStreamClosedError", "Connection closed")}, []
    return {"raised": ("HTTPStreamClosedError", "Stream closed")}, []


def test_corpus_size():
    assert len(CASES) >= 300


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_same_as_upstream(case, upstream):
    whole = _parse(case, split=False)
    if len(case["data"]) <= 4096:
        split = _parse(case, split=True)
        if whole[1] is not None:
            # before an error, how much of a body was delivered depends on
            # how the bytes arrived (upstream's too); it is thrown away
            split, whole_cmp = ([[e for e in r[0] if e[0] != "body"]] + list(r[1:])
                                for r in (split, whole))
        else:
            whole_cmp = whole
        assert split == whole_cmp, "split changes the parse"
    got = _predict(*whole)
    assert got == upstream[case["name"]], case["data"][:200]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_switched_client_same_as_upstream(case, upstream, switched):
    assert switched[case["name"]] == upstream[case["name"]], case["data"][:200]


def test_corpus_reaches_every_outcome(upstream):
    """The corpus is not one-sided: successes, HTTP errors, every parser
    error message kind, both stream-closed messages, the header limit."""
    kinds = set()
    for out, logs in upstream.values():
        if "raised" in out:
            kinds.add(out["raised"])
        elif out["error"] is None:
            kinds.add("ok")
        else:
            kinds.add("http error")
        for _, _, msg in logs:
            if msg.startswith("Malformed HTTP message"):
                kinds.add(msg.split(": ", 1)[1].split(" ")[0])
    for want in ("ok", "http error", ("HTTPStreamClosedError", "Stream closed"),
                 ("HTTPStreamClosedError", "Connection closed"),
                 ("HTTPTimeoutError", "Timeout during request"),
                 "Error", "Unexpected", "Response", "Body", "invalid", "improperly",
                 "Multiple", "Only", "Content-Length", "chunked", "Too", "header", "no",
                 "Invalid", "Unsupported", "Message"):
        assert want in kinds or any(isinstance(k, tuple) and k == want for k in kinds), want
