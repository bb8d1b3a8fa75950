"""llhttp as the second judge of Tornado's request grammar (issue 14).

Every request that both the C parser (Tornado 6.6's grammar, csrc/http/
parser.c) and llhttp (the system's, compiled with LLHTTP_STRICT_MODE=1 by
setup.py, no lenient flag: csrc/http/judge.h) accept must give the same
method, target, version, header list, body bytes and keep-alive decision.
The inputs are the differential corpus (tests/http_corpus/cases.jsonl), its
seeded mutants and the requests below.  Where the two disagree the
disagreement is a named case here with its reason, and the C parser's
answer is checked against upstream Tornado's own code (Tornado is right:
the server is a drop-in Tornado server).

The same comparison runs on arbitrary bytes in fuzz/fuzz_differential.c.
"""

import json
import os
import sys

import pytest
from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters

from tornado_c import _core

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "http_corpus"))
import harness  # noqa: E402
from conftest import TEST_BUILD_MISSING, has_test_api  # noqa: E402

if not has_test_api():  # _core._llhttp_parse is the test build's (csrc/http/test_api.c)
    pytest.skip(TEST_BUILD_MISSING, allow_module_level=True)

FIELDS = ("method", "target", "version", "headers", "body", "keep_alive")


def ours(data, **kw):
    """Messages the C parser completed, and its error (None if none)."""
    p = _core.HTTPRequestParser(**kw)
    p.feed(data)
    msgs, cur = [], None
    for e in p.events:
        if e[0] == "headers":
            cur = dict(method=e[1], target=e[2], version=e[3], headers=list(e[4]),
                       keep_alive=bool(e[5]), body=b"")
        elif e[0] == "body":
            cur["body"] += e[1]
        elif e[0] == "complete":
            msgs.append(cur)
            cur = None
    return msgs, p.error


def theirs(data, pieces=1):
    """Messages llhttp completed, and its error ("HPE_...: reason" or None).
    Header values lose trailing SP/HT (llhttp keeps them in the span; the
    value is the same, RFC 9110 5.5)."""
    recs, error = _core._llhttp_parse(data, pieces)
    msgs, cur = [], None
    for tag, b in recs:
        if cur is None:
            cur = dict(method="", target="", version="", headers=[], body=b"", keep_alive=None)
        s = b.decode("latin1")
        if tag == "m":
            cur["method"] = s
        elif tag == "u":
            cur["target"] = s
        elif tag == "V":
            cur["version"] = s
        elif tag == "f":
            cur["headers"].append((s, ""))
        elif tag == "v":
            cur["headers"][-1] = (cur["headers"][-1][0], s.strip(" \t"))
        elif tag == "b":
            cur["body"] += b
        elif tag == "E":
            cur["keep_alive"] = bool(b[0])
            msgs.append(cur)
            cur = None
    return msgs, error


def tornado_keep_alive(msg, no_keep_alive=False):
    """Upstream's own decision: HTTP1Connection._can_keep_alive."""
    conn = HTTP1Connection.__new__(HTTP1Connection)
    conn.params = HTTP1ConnectionParameters(no_keep_alive=no_keep_alive)
    headers = httputil.HTTPHeaders()
    for name, value in msg["headers"]:
        headers.add(name, value)
    start = httputil.RequestStartLine(msg["method"], msg["target"], msg["version"])
    return conn._can_keep_alive(start, headers)


def keep_alive_reason(msg, server):
    """Why the C parser (= Tornado) and llhttp decide keep-alive differently
    for this message, or None when no known reason applies."""
    if server.get("no_keep_alive"):
        return "no_keep_alive"
    values = [v for n, v in msg["headers"] if n.lower() == "connection"]
    combined = ",".join(values).lower() if values else None
    tokens = [t.strip() for t in combined.split(",")] if combined is not None else []
    exact = {"HTTP/1.1": combined != "close", "HTTP/1.0": combined == "keep-alive"}
    by_token = {"HTTP/1.1": "close" not in tokens,
                "HTTP/1.0": "keep-alive" in tokens}  # llhttp 1.0: close is not looked at
    if exact[msg["version"]] != by_token[msg["version"]]:
        return "connection_tokens"
    if msg["version"] == "HTTP/1.0" and combined == "keep-alive":
        return "http10_no_length"
    return None


# The disagreements, one named case each (both parsers accept the request
# and agree on everything else).  Tornado is right in each: the server must
# keep connections exactly when upstream's HTTP1Connection does, and strict
# mode (README) closes where llhttp would, by refusing the next request.
KEEP_ALIVE_CASES = [
    pytest.param(
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {}, False, "http10_no_length",
        id="http10 keep-alive without a body length: Tornado keeps an HTTP/1.0 connection only "
           "with Content-Length, chunked or GET/HEAD; llhttp only reads Connection"),
    pytest.param(
        b"DELETE /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {}, False, "http10_no_length",
        id="http10 DELETE keep-alive, same rule"),
    pytest.param(
        b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n", {}, True,
        "connection_tokens",
        id="repeated Connection: close: Tornado compares the combined value 'close,close' with "
           "'close'; llhttp reads each token"),
    pytest.param(
        b"GET / HTTP/1.1\r\nConnection: close, keep-alive\r\n\r\n", {}, True, "connection_tokens",
        id="Connection: close, keep-alive: a token list is not 'close' for Tornado"),
    pytest.param(
        b"GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n", {}, True, "connection_tokens",
        id="Connection: Upgrade, close"),
    pytest.param(
        b"GET / HTTP/1.0\r\nConnection: keep-alive, Upgrade\r\n\r\n", {}, False, "connection_tokens",
        id="http10 Connection: keep-alive, Upgrade: Tornado wants exactly 'keep-alive'"),
    pytest.param(
        b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n", {}, False,
        "connection_tokens",
        id="http10 Connection: close, keep-alive: llhttp keeps an HTTP/1.0 connection on the "
           "keep-alive token and ignores close (found by fuzz_differential)"),
    pytest.param(
        b"GET / HTTP/1.1\r\n\r\n", {"no_keep_alive": True}, False, "no_keep_alive",
        id="the server's no_keep_alive option (configuration, not grammar)"),
]


@pytest.mark.parametrize("data,server,tornado_says,reason", KEEP_ALIVE_CASES)
def test_keep_alive_disagreements(data, server, tornado_says, reason):
    (a,), err_a = ours(data, **server)
    (b,), err_b = theirs(data)
    assert err_a is None and err_b is None
    for f in FIELDS[:-1]:
        assert a[f] == b[f], f
    assert a["keep_alive"] is tornado_says
    assert a["keep_alive"] == tornado_keep_alive(a, **server)
    assert b["keep_alive"] is (not tornado_says)
    assert keep_alive_reason(a, server) == reason


def compare(data, server, explained):
    """Disagreements between the two on one input, as strings; explained
    ones are counted in `explained` (reason -> count) instead."""
    a, err_a = ours(data, **server)
    b, err_b = theirs(data)
    problems = []
    for i, (x, y) in enumerate(zip(a, b)):
        for f in FIELDS:
            if x[f] == y[f]:
                continue
            if f == "keep_alive":
                why = keep_alive_reason(x, server)
                if why is not None and x[f] == tornado_keep_alive(x, server.get("no_keep_alive", False)):
                    explained[why] = explained.get(why, 0) + 1
                    continue
            problems.append("message %d %s: ours %r, llhttp %r" % (i, f, x[f], y[f]))
    if err_a is None and err_b is None and len(a) != len(b):
        # only when one side stopped after a message it does not keep alive
        # (its keep-alive decision, compared above, is the difference)
        shorter = a if len(a) < len(b) else b
        if not shorter or shorter[-1]["keep_alive"]:
            problems.append("framing: ours %d messages, llhttp %d" % (len(a), len(b)))
    return problems


# Requests beyond the corpus: what a proxy in front may forward.
EXTRA = [
    b"GET /a/b?c=d&e=f HTTP/1.1\r\nHost: h\r\nUser-Agent: x y\r\nAccept: */*\r\n\r\n",
    b"GET http://h:8080/p?q HTTP/1.1\r\nHost: h:8080\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 000003\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Spaces:   \r\nX-Tab:\tv\t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.0\r\nContent-Length: 2\r\nConnection: Keep-Alive\r\n\r\nokGET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    b"GET /%C3%A9 HTTP/1.1\r\nHost: h\r\nX: \xe9\xff\r\n\r\n",
    b"DELETE /x HTTP/1.1\r\nhost: h\r\nCONTENT-LENGTH: 0\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
]


def test_extra_requests_agree():
    explained = {}
    for data in EXTRA:
        a, err_a = ours(data)
        b, err_b = theirs(data)
        assert err_a is None and err_b is None, (data, err_a, err_b)
        assert a, data
        assert compare(data, {}, explained) == [], data
    assert explained == {}


def load_cases():
    with open(os.path.join(HERE, "http_corpus", "cases.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_corpus_both_accept_same_request(seed):
    cases = load_cases()
    if seed is not None:
        cases = harness.mutate(cases, 3000, seed)
    explained, problems, agreed = {}, [], 0
    for case in cases:
        data = case["raw"].encode("latin1")
        found = compare(data, case["server"], explained)
        problems += ["%s: %s" % (case["name"], p) for p in found]
        a, _ = ours(data, **case["server"])
        b, _ = theirs(data)
        agreed += min(len(a), len(b))
    assert problems == []
    # the comparison is not empty: many messages were accepted by both
    assert agreed >= (300 if seed is None else 400)
    assert set(explained) <= {"no_keep_alive", "http10_no_length", "connection_tokens"}


def test_judge_any_split_same_records():
    data = b"".join(EXTRA[4:7])
    whole = _core._llhttp_parse(data)
    assert whole[1] is None
    for n in (2, 3, 7, len(data)):
        assert _core._llhttp_parse(data, n) == whole


def test_llhttp_is_strict_build():
    # setup.py compiles Debian's llhttp sources with LLHTTP_STRICT_MODE=1;
    # a system libllhttp would be linked as built (then this is False).
    assert _core._llhttp_strict() is True
    # what strict mode adds over the default (tests/test_http_parser.py):
    # "\r\n\rX" ending a head and a missing CRLF after chunk data
    assert theirs(b"GET / HTTP/1.1\r\nHost: a\r\n\rXGET / HTTP/1.1\r\n\r\n")[1].startswith("HPE_STRICT")
