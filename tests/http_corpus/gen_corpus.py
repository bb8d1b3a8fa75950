"""Generate tests/http_corpus/cases.jsonl: hostile and edge-case raw requests.

Run:  python tests/http_corpus/gen_corpus.py   (rewrites cases.jsonl)

Each line is one JSON object: {"name": ..., "raw": <the request bytes as a
latin-1 string>, "server": {HTTPServer keyword arguments}}.  The expected
outcome is NOT stored: tests/test_http_parser.py sends every case to a real
upstream tornado HTTPServer and compares what it does with the verdict of the
C parser.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = "\r\n"


def req(method="GET", target="/", version="HTTP/1.1", headers=(), body="", host=True,
        close=True, eol=CRLF):
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append("Host: example.com")
    if close:
        lines.append("Connection: close")
    lines.extend(headers)
    return eol.join(lines) + eol + eol + body


def post(headers, body, **kw):
    return req("POST", "/echo", headers=headers, body=body, **kw)


def chunked(body, **kw):
    return post(["Transfer-Encoding: chunked"], body, **kw)


cases = []


def add(name, raw, **server):
    assert isinstance(raw, str)
    raw.encode("latin1")
    cases.append({"name": name, "raw": raw, "server": server})


# ------------------------------------------------------------- valid basics
add("get", req())
add("get keep-alive then close", req(close=False) + req())
add("head", req("HEAD"))
add("options star", req("OPTIONS", "*"))
add("absolute target", req("GET", "http://example.com/a?b=c"))
add("post content-length", post(["Content-Length: 5"], "hello"))
add("post content-length 0", post(["Content-Length: 0"], ""))
add("post chunked", chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
add("chunked uppercase hex", chunked("A\r\n0123456789\r\n0\r\n\r\n"))
add("chunked lowercase hex", chunked("a\r\n0123456789\r\n0\r\n\r\n"))
add("chunked leading zeros", chunked("0005\r\nhello\r\n000\r\n\r\n"))
add("chunked 62 hex digits", chunked("0" * 61 + "5\r\nhello\r\n0\r\n\r\n"))
add("chunked 63 hex digits", chunked("0" * 62 + "5\r\nhello\r\n0\r\n\r\n"))
add("chunked 80 hex digits", chunked("0" * 79 + "5\r\nhello\r\n0\r\n\r\n"))
add("te Chunked", post(["Transfer-Encoding: Chunked"], "2\r\nok\r\n0\r\n\r\n"))
add("te CHUNKED", post(["Transfer-Encoding: CHUNKED"], "2\r\nok\r\n0\r\n\r\n"))
add("te chunked trailing space", post(["Transfer-Encoding: chunked  "], "2\r\nok\r\n0\r\n\r\n"))
add("te chunked tab", post(["Transfer-Encoding:\tchunked"], "2\r\nok\r\n0\r\n\r\n"))
add("lf only", req(eol="\n"))
add("lf only post", post(["Content-Length: 2"], "ok", eol="\n"))
add("mixed eol", "GET / HTTP/1.1\nHost: a\r\nConnection: close\n\r\n")
add("end lf crlf", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\n\r\n")
add("end crlf lf", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\n")
add("leading crlf", "\r\n" + req())
add("leading lf", "\n" + req())
add("leading cr cr lf", "\r\r\n" + req())
add("leading two crlf", "\r\n\r\n" + req())
add("leading lf lf", "\n\n" + req())
add("start line trailing crs", "GET / HTTP/1.1\r\r\r\nHost: a\r\nConnection: close\r\n\r\n")
add("http10 no host", req(version="HTTP/1.0", host=False, close=False))
add("http10 keep-alive", req(version="HTTP/1.0", close=False, headers=["Connection: keep-alive"]) + req())
add("http10 keep-alive post cl", req("POST", version="HTTP/1.0", close=False,
    headers=["Connection: Keep-Alive", "Content-Length: 2"], body="ok") + req())
add("http10 keep-alive post no cl", req("POST", version="HTTP/1.0", close=False,
    headers=["Connection: keep-alive"]) + req())
add("http10 keep-alive delete", req("DELETE", version="HTTP/1.0", close=False,
    headers=["Connection: keep-alive"]) + req())
add("http10 close then more", req(version="HTTP/1.0", close=False) + req())
add("http11 pipelined 3", req(close=False) * 2 + req())
add("pipelined extra crlf", req(close=False) + "\r\n" + req())
add("pipelined two extra crlf", req(close=False) + "\r\n\r\n" + req())
add("pipelined after close ignored", req() + "garbage\r\n\r\n")
add("pipelined post then get", post(["Content-Length: 3"], "abc", close=False) + req())
add("pipelined chunked then get", chunked("3\r\nabc\r\n0\r\n\r\n", close=False) + req())
add("pipelined bad second", req(close=False) + "BAD\r\n\r\n")
add("connection Close", req(close=False, headers=["Connection: Close"]))
add("connection close,close", req(close=False, headers=["Connection: close", "Connection: close"]) + req())
add("connection close, keep-alive", req(close=False, headers=["Connection: close, keep-alive"]) + req())
add("connection keep-alive 1.1", req(close=False, headers=["Connection: keep-alive"]) + req())
add("http12 treated like 1.0", req(version="HTTP/1.2", close=False) + req())
add("http12 keep-alive", req(version="HTTP/1.2", close=False, headers=["Connection: keep-alive"]) + req())
add("http19", req(version="HTTP/1.9"))
add("expect 100-continue", post(["Content-Length: 2", "Expect: 100-continue"], "ok"))
add("expect 100-Continue", post(["Content-Length: 2", "Expect: 100-Continue"], "ok"))
add("expect twice", post(["Content-Length: 2", "Expect: 100-continue", "Expect: 100-continue"], "ok"))
add("expect and bad te", post(["Transfer-Encoding: gzip", "Expect: 100-continue"], "ok"))
add("latin1 header value", req(headers=["X-A: caf\xe9 \xff"]))
add("header value inner spaces", req(headers=["X-A: a  b\t c"]))
add("header empty value", req(headers=["X-A:"]))
add("header only spaces value", req(headers=["X-A:    "]))
add("header value colon", req(headers=["X-A: a:b:c"]))
add("header name all tchars", req(headers=["!#$%&'*+-.^_`|~09azAZ: v"]))
add("many headers", req(headers=[f"X-{i}: {i}" for i in range(200)]))
add("repeated header", req(headers=["X: a"] * 50))
add("long target", req(target="/" + "a" * 4000))
add("target high bytes", req(target="/\x80\xff\xe9"))
add("target query", req(target="/a?b=c&d=e"))
add("method lowercase", req("get"))
add("method FOO", req("FOO"))
add("method token chars", req("M!#$%&'*+-.^_`|~"))
add("method PATCH", post(["Content-Length: 1"], "x").replace("POST", "PATCH", 1))
add("method DELETE", req("DELETE"))
add("method PUT cl", req("PUT", headers=["Content-Length: 3"], body="abc"))

# ------------------------------------------------------------- start line
add("empty request line", "\r\nHost: a\r\n\r\n".replace("\r\nHost", "X\r\nHost", 0))
add("asdf", "asdf\r\n\r\n")
add("method comma", req("FOO,BAR"))
add("method empty", req(""))
add("double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n")
add("tab separator", "GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n")
add("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n")
add("leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n")
add("missing version", "GET /\r\nHost: a\r\n\r\n")
add("missing target", "GET HTTP/1.1\r\nHost: a\r\n\r\n")
add("http/2.0", req(version="HTTP/2.0"))
add("http/0.9", req(version="HTTP/0.9"))
add("http/1.10", req(version="HTTP/1.10"))
add("http/11", req(version="HTTP/11"))
add("lowercase http", req(version="http/1.1"))
add("version letters", req(version="HTTP/a.b"))
add("target space", req(target="/a b"))
add("target nul", req(target="/a\x00b"))
add("target del", req(target="/a\x7fb"))
add("target tab", req(target="/a\tb"))
add("start line bare cr", "GET / HTTP/1.1\rHost: a\r\n\r\n")
add("request line only cr", "GET / HTTP/1.1\r\r\n\r\n")
add("no host 1.1", req(host=False))
add("host with space", req(host=False, headers=["Host: foo bar"]))
add("host comma", req(host=False, headers=["Host: a,b"]))
add("two hosts", req(host=False, headers=["Host: a", "Host: b"]))
add("host bad char", req(host=False, headers=["Host: a/b"]))
add("host ipv6", req(host=False, headers=["Host: [::1]:80"]))
add("query too many args", req(target="/?" + "&".join(["a=b"] * 1001)))

# ------------------------------------------------------------- header lines
add("header name space", req(headers=["X A: b"]))
add("space before colon", req(headers=["X-A : b"]))
add("empty header name", req(headers=[": b"]))
add("header no colon", req(headers=["asdf"]))
add("header http10 no colon", "GET / HTTP/1.0\r\nasdf\r\n\r\n")
add("obs-fold space", req(headers=["X-A: a", " b"]))
add("obs-fold tab", req(headers=["X-A: a", "\tb"]))
add("first header folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n")
add("obs-fold te", post(["Transfer-Encoding:", " chunked"], "2\r\nok\r\n0\r\n\r\n"))
add("nul in value", req(headers=["X-A: a\x00b"]))
add("nul in name", req(headers=["X\x00A: b"]))
add("ctl in value", req(headers=["X-A: a\x01b"]))
add("del in value", req(headers=["X-A: a\x7fb"]))
add("vt in value", req(headers=["X-A: a\x0bb"]))
add("ff in value", req(headers=["X-A: a\x0cb"]))
add("value leading vt", req(headers=["X-A: \x0bb"]))
add("bare cr in value", req(headers=["X-A: a\rb"]))
add("bare cr line end", "GET / HTTP/1.1\r\nHost: a\rX-B: c\r\nConnection: close\r\n\r\n")
add("bare cr ends header block", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\rX: y\r\n\r\n")
add("crlf cr x smuggle", post(["Content-Length: 2", "\rX: y"], "ok"))
add("cr cr lf", "GET / HTTP/1.1\r\nHost: a\r\r\nConnection: close\r\n\r\n")
add("lone cr line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\nConnection: close\r\n\r\n")
add("header nbsp value", req(headers=["X-A: \xa0"]))
add("header 0x85 value", req(headers=["X-A: a\x85"]))
add("header name latin1", req(headers=["X\xe9: b"]))
add("header name at", req(headers=["X@Y: b"]))
add("header name paren", req(headers=["X(Y): b"]))
add("header name slash", req(headers=["X/Y: b"]))
add("header name quote", req(headers=['X"Y: b']))

# ------------------------------------------------------------- content-length
for name, value in [
    ("plus", "+1"), ("minus", "-1"), ("underscore", "1_0"), ("hex", "0x5"),
    ("float", "5.0"), ("empty", ""), ("space inside", "5 5"), ("nbsp", "5\xa0"),
    ("letters", "foo"), ("leading zeros", "0005"), ("huge", "9" * 30),
    ("list equal", "5,5"), ("list equal space", "5, 5"), ("list equal tab", "5,\t5"),
    ("list space before comma", "5 ,5"), ("list unequal", "5,6"), ("list nbsp", "5,\xa05"),
    ("list 0x85", "5,\x855"), ("list empty piece", "5,,5"), ("list trailing comma", "5,"),
    ("list leading comma", ",5"), ("list letters equal", "a,a"), ("list zeros", "05,05"),
    ("unicode digit", "\xb2"),
]:
    add("cl " + name, post([f"Content-Length: {value}"], "hello"))
add("cl duplicate equal", post(["Content-Length: 5", "Content-Length: 5"], "hello"))
add("cl duplicate unequal", post(["Content-Length: 5", "Content-Length: 6"], "hello!"))
add("cl too long default", post(["Content-Length: 104857601"], ""))
add("cl at max body", post(["Content-Length: 16"], "x" * 16), max_body_size=16)
add("cl over max body", post(["Content-Length: 17"], "x" * 17), max_body_size=16)
add("cl short body", post(["Content-Length: 10"], "abc"))
add("cl extra bytes", post(["Content-Length: 2"], "okXYZ\r\n\r\n", close=False))
add("cl on get", req(headers=["Content-Length: 3"], body="abc"))
add("te and cl", post(["Transfer-Encoding: chunked", "Content-Length: 2"], "2\r\nok\r\n0\r\n\r\n"))
add("cl and te", post(["Content-Length: 2", "Transfer-Encoding: chunked"], "2\r\nok\r\n0\r\n\r\n"))
add("bad cl and te", post(["Content-Length: x", "Transfer-Encoding: chunked"], "2\r\nok\r\n0\r\n\r\n"))
add("cl.te smuggle", post(["Content-Length: 6", "Transfer-Encoding: chunked"], "0\r\n\r\nX"))

# ------------------------------------------------------------- transfer-encoding
for name, value in [
    ("gzip", "gzip"), ("gzip, chunked", "gzip, chunked"), ("chunked, gzip", "chunked, gzip"),
    ("identity", "identity"), ("nbsp chunked", "\xa0chunked"), ("chunked nbsp", "chunked\xa0"),
    ("chunkedx", "chunkedx"), ("empty", ""), ("chunked;q", "chunked;q=1"), ("comma chunked", ",chunked"),
    ("chunked vt", "chunked\x0b"),
]:
    add("te " + name, post([f"Transfer-Encoding: {value}"], "2\r\nok\r\n0\r\n\r\n"))
add("te twice", post(["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], "2\r\nok\r\n0\r\n\r\n"))
add("te space before colon", post(["Transfer-Encoding : chunked"], "2\r\nok\r\n0\r\n\r\n"))
add("te underscore name", post(["Transfer_Encoding: chunked", "Content-Length: 13"], "2\r\nok\r\n0\r\n\r\n"))
add("http10 te gzip", req("POST", version="HTTP/1.0", close=False, headers=["Transfer-Encoding: gzip"]))
add("http10 te chunked", req("POST", version="HTTP/1.0", close=False,
    headers=["Transfer-Encoding: chunked"], body="2\r\nok\r\n0\r\n\r\n"))
add("http10 te gzip with cl", req("POST", version="HTTP/1.0", close=False,
    headers=["Transfer-Encoding: gzip", "Content-Length: 2"], body="ok"))
add("http10 te gzip no_keep_alive", req("POST", version="HTTP/1.0", close=False,
    headers=["Transfer-Encoding: gzip"]), no_keep_alive=True)
add("get te chunked", req(headers=["Transfer-Encoding: chunked"], body="0\r\n\r\n"))

# ------------------------------------------------------------- chunk framing
for name, body in [
    ("size plus", "+2\r\nok\r\n0\r\n\r\n"),
    ("size minus", "-2\r\nok\r\n0\r\n\r\n"),
    ("size 0x", "0x2\r\nok\r\n0\r\n\r\n"),
    ("size underscore", "1_a\r\n" + "x" * 26 + "\r\n0\r\n\r\n"),
    ("size leading space", " 2\r\nok\r\n0\r\n\r\n"),
    ("size trailing space", "2 \r\nok\r\n0\r\n\r\n"),
    ("size trailing tab", "2\t\r\nok\r\n0\r\n\r\n"),
    ("size empty", "\r\nok\r\n0\r\n\r\n"),
    ("size g", "g\r\nok\r\n0\r\n\r\n"),
    ("extension", "2;a=b\r\nok\r\n0\r\n\r\n"),
    ("extension on last", "2\r\nok\r\n0;a=b\r\n\r\n"),
    ("trailer", "2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"),
    ("missing crlf after data", "2\r\nokXX0\r\n\r\n"),
    ("data too long", "2\r\nokk\r\n0\r\n\r\n"),
    ("lf after data", "2\r\nok\n0\r\n\r\n"),
    ("cr only after data", "2\r\nok\r0\r\n\r\n"),
    ("lf only size line", "2\nok\r\n0\r\n\r\n"),
    ("lf only everything", "2\nok\n0\n\n"),
    ("last chunk lf", "2\r\nok\r\n0\n\r\n"),
    ("last chunk missing final crlf", "2\r\nok\r\n0\r\nXY"),
    ("last chunk bare", "2\r\nok\r\n0\r\n"),
    ("no last chunk", "2\r\nok\r\n"),
    ("size line 64 bytes", "0" * 61 + "2\r\nok\r\n0\r\n\r\n"),
    ("size line 65 bytes", "0" * 62 + "2\r\nok\r\n0\r\n\r\n"),
    ("size line long no crlf", "0" * 100),
    ("size line long garbage", "z" * 70 + "\r\n"),
    ("huge size", "f" * 20 + "\r\n" + "x" * 10),
    ("nul in size", "2\x00\r\nok\r\n0\r\n\r\n"),
    ("cr in size", "2\r\r\nok\r\n0\r\n\r\n"),
    ("many small chunks", "1\r\nx\r\n" * 100 + "0\r\n\r\n"),
    ("zero chunk then data", "0\r\n\r\nGARBAGE"),
]:
    add("chunk " + name, chunked(body))
add("chunked over max body", chunked("10\r\n" + "x" * 16 + "\r\n1\r\ny\r\n0\r\n\r\n"), max_body_size=16)
add("chunked at max body", chunked("10\r\n" + "x" * 16 + "\r\n0\r\n\r\n"), max_body_size=16)
add("chunked then pipelined", chunked("2\r\nok\r\n0\r\n\r\n", close=False) + "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")

# ------------------------------------------------------------- max_header_size
base = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX: "
for limit in (128, 256):
    for delta in (-2, -1, 0, 1, 2):
        # total head length = limit + delta
        pad = limit + delta - len(base) - 4
        add(f"head size {limit}{delta:+d}", base + "y" * pad + "\r\n\r\n", max_header_size=limit)
    add(f"head size {limit} lf end", base + "y" * (limit - len(base) - 2) + "\n\n", max_header_size=limit)
    add(f"head size {limit} leading crlf", "\r\n" * 4 + base + "y" * (limit - len(base) - 4 - 8) + "\r\n\r\n",
        max_header_size=limit)
    add(f"head size {limit} leading crlf over", "\r\n" * 5 + base + "y" * (limit - len(base) - 4 - 8) + "\r\n\r\n",
        max_header_size=limit)
    add(f"head size {limit} never ends", base + "y" * (2 * limit), max_header_size=limit)
add("head 64k default over", base + "y" * 70000 + "\r\n\r\n")
add("second head over limit", req(close=False) + base + "y" * 300 + "\r\n\r\n", max_header_size=128)

# ------------------------------------------------------------- no_keep_alive
add("no_keep_alive pipelined", req(close=False) + req(), no_keep_alive=True)

# ------------------------------------------------------------- byte sweeps
# Every byte value in a header value, a header name, the target, the method
# and a chunk size.
for b in range(256):
    c = chr(b)
    add(f"value byte {b:#04x}", req(headers=[f"X-A: a{c}b"]))
for b in range(256):
    c = chr(b)
    add(f"name byte {b:#04x}", req(headers=[f"X{c}A: b"]))
for b in range(256):
    c = chr(b)
    add(f"target byte {b:#04x}", f"GET /a{c}b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
for b in range(256):
    c = chr(b)
    add(f"method byte {b:#04x}", f"G{c}T / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
for b in range(256):
    c = chr(b)
    add(f"chunk size byte {b:#04x}", chunked(f"2{c}\r\nok\r\n0\r\n\r\n"))


def main():
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    with open(os.path.join(HERE, "cases.jsonl"), "w") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=True) + "\n")
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
