"""Canned HTTP responses for the client-side differential tests
(tests/test_http_client_grammar.py) and the response-parser fuzz seeds
(fuzz/make_seeds.py).

Each case is a dict:
    name            unique, readable
    data            the bytes the raw server writes before closing
    method          "GET" (default) or "HEAD": the request the client sends
    max_header_size client's max_header_size (None: upstream's default)
    max_body_size   client's max_body_size (None: upstream's default)
    pieces          None, or the sizes the server writes the data in (with a
                    short pause between writes: a slow trickle)

Valid, odd and hostile responses: every status-line shape, header-line
shape, framing (Content-Length, chunked, until close, HEAD/204/304, 1xx),
framing conflicts, limits, and every truncation point of a few responses
(the server closing early).
"""

CRLF = b"\r\n"


def _case(name, data, **kw):
    c = {"name": name, "data": data, "method": "GET", "max_header_size": None,
         "max_body_size": None, "pieces": None}
    c.update(kw)
    return c


def _resp(status=b"HTTP/1.1 200 OK", headers=(), body=b"", eol=CRLF):
    out = status + eol
    for h in headers:
        out += h + eol
    return out + eol + body


def _chunked(pieces, last=b"0\r\n\r\n"):
    out = b""
    for p in pieces:
        out += b"%x\r\n" % len(p) + p + CRLF
    return out + last


def cases():
    out = []
    add = out.append

    # ---- status lines
    reasons = [b"OK", b"", b"Custom Reason With Spaces", b"tab\there", b"latin1 \xe9\xff",
               b" leading space", b"trailing space ", b"x" * 300]
    for code in (200, 201, 203, 206, 299, 300, 301, 302, 303, 307, 308, 400, 401, 403,
                 404, 405, 418, 500, 502, 503, 599, 600, 999, 0, 199):
        add(_case("status %d" % code, _resp(b"HTTP/1.1 %03d Whatever" % code,
                                            [b"Content-Length: 3"], b"abc")))
    for i, r in enumerate(reasons):
        add(_case("reason %d" % i, _resp(b"HTTP/1.1 200 " + r, [b"Content-Length: 2"], b"ok")))
        add(_case("reason 404 %d" % i, _resp(b"HTTP/1.1 404 " + r, [b"Content-Length: 0"])))
    for v in (b"HTTP/1.0", b"HTTP/1.1", b"HTTP/1.9", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/3.0",
              b"http/1.1", b"HTTP/1.10", b"HTTP/11", b"HTTPS/1.1", b"ICY", b"HTTP/1.x"):
        add(_case("version %r" % v, _resp(v + b" 200 OK", [b"Content-Length: 2"], b"ok")))
    bad_status = [b"HTTP/1.1 200", b"HTTP/1.1 20 OK", b"HTTP/1.1 2000 OK", b"HTTP/1.1  200 OK",
                  b"HTTP/1.1 200  OK", b"HTTP/1.1 abc OK", b"HTTP/1.1\t200 OK", b" HTTP/1.1 200 OK",
                  b"HTTP/1.1 200 O\x00K", b"HTTP/1.1 200 O\x7fK", b"HTTP/1.1 200 OK\r\r",
                  b"HTTP/1.1 200 O\rK", b"", b"garbage", b"HTTP/1.1 -20 OK", b"HTTP/1.1 +20 OK",
                  b"HTTP/1.1 \xd9\xa1\xd9\xa2\xd9\xa3 OK"]
    for i, s in enumerate(bad_status):
        add(_case("bad status %d" % i, _resp(s, [b"Content-Length: 2"], b"ok")))

    # ---- header lines
    hdr_sets = {
        "many": [b"X-H%d: v%d" % (i, i) for i in range(60)] + [b"Content-Length: 1"],
        "dup": [b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"set-cookie: c=3", b"Content-Length: 1"],
        "case": [b"cOnTeNt-TyPe: text/plain", b"CONTENT-LENGTH: 1"],
        "empty value": [b"X-Empty:", b"X-Empty2:   ", b"Content-Length: 1"],
        "spaces": [b"X-A:    spaced   ", b"X-B:\ttabbed\t", b"Content-Length: 1"],
        "inner ws": [b"X-A: a  b\tc", b"Content-Length: 1"],
        "latin1 value": [b"X-A: caf\xe9 \xff", b"Content-Length: 1"],
        "colon in value": [b"Location: http://x:80/a:b", b"Content-Length: 1"],
        "no space": [b"X-A:b", b"Content-Length:1"],
        "folded": [b"X-A: a", b" continued", b"Content-Length: 1"],
        "folded tab": [b"X-A: a", b"\tcontinued", b"Content-Length: 1"],
        "no colon": [b"X-A a", b"Content-Length: 1"],
        "space in name": [b"X A: a", b"Content-Length: 1"],
        "space before colon": [b"X-A : a", b"Content-Length: 1"],
        "empty name": [b": a", b"Content-Length: 1"],
        "nul in value": [b"X-A: a\x00b", b"Content-Length: 1"],
        "ctl in value": [b"X-A: a\x01b", b"Content-Length: 1"],
        "del in value": [b"X-A: a\x7fb", b"Content-Length: 1"],
        "cr in value": [b"X-A: a\rb", b"Content-Length: 1"],
        "latin1 name": [b"X-\xe9: a", b"Content-Length: 1"],
        "bracket name": [b"X[1]: a", b"Content-Length: 1"],
        "token chars name": [b"!#$%&'*+-.^_`|~09azAZ: v", b"Content-Length: 1"],
        "gzip encoding": [b"Content-Encoding: gzip", b"Content-Length: 1"],
    }
    for name, hs in hdr_sets.items():
        add(_case("headers " + name, _resp(headers=hs, body=b"Z")))
        add(_case("headers lf " + name, _resp(headers=hs, body=b"Z", eol=b"\n")))
    add(_case("mixed eol", b"HTTP/1.1 200 OK\nA: 1\r\nB: 2\nContent-Length: 1\r\n\nZ"))
    add(_case("leading blank lines", b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nZ"))
    add(_case("leading lf", b"\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nZ"))
    add(_case("head end lf cr lf", b"HTTP/1.1 200 OK\nContent-Length: 1\n\r\nZ"))
    add(_case("head end cr cr lf", b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\r\n\r\nZ"))

    # ---- Content-Length
    for size in (0, 1, 100, 5000, 70000, 300000):
        add(_case("cl %d" % size, _resp(headers=[b"Content-Length: %d" % size],
                                        body=bytes(i % 251 for i in range(size)))))
    for v in (b"5, 5", b"5,5", b"5,\t5", b"5 ,5", b"5, 6", b"5,,5", b",5", b"5,", b"abc", b"+5",
              b"-5", b"0x5", b"5.0", b"", b"05", b"99999999999999999999999", b"\xd9\xa5"):
        add(_case("cl value %r" % v, _resp(headers=[b"Content-Length: " + v], body=b"hello")))
    add(_case("cl two lines equal", _resp(headers=[b"Content-Length: 5", b"X: 1",
                                                   b"content-length: 5"], body=b"hello")))
    add(_case("cl two lines unequal", _resp(headers=[b"Content-Length: 5",
                                                     b"Content-Length: 4"], body=b"hello")))
    add(_case("cl shorter than body", _resp(headers=[b"Content-Length: 3"], body=b"hello")))

    # ---- chunked
    for name, pieces in {"one": [b"hello"], "several": [b"a", b"bc", b"def" * 10],
                         "big": [b"x" * 70000, b"y" * 3], "many small": [b"z"] * 300,
                         "empty": []}.items():
        add(_case("chunked " + name, _resp(headers=[b"Transfer-Encoding: chunked"],
                                           body=_chunked(pieces))))
    chunk_bodies = {
        "upper hex": b"A\r\n0123456789\r\n0\r\n\r\n",
        "leading zeros": b"0005\r\nhello\r\n0\r\n\r\n",
        "bad size": b"Z\r\nhello\r\n0\r\n\r\n",
        "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
        "0x size": b"0x5\r\nhello\r\n0\r\n\r\n",
        "extension": b"5;a=b\r\nhello\r\n0\r\n\r\n",
        "space after size": b"5 \r\nhello\r\n0\r\n\r\n",
        "empty size": b"\r\nhello\r\n0\r\n\r\n",
        "lf only size": b"5\nhello\r\n0\r\n\r\n",
        "missing crlf": b"5\r\nhelloX0\r\n\r\n",
        "lf after data": b"5\r\nhello\n0\r\n\r\n",
        "trailer": b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
        "last not crlf": b"5\r\nhello\r\n0\r\nXY",
        "huge size": b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        "long size line": b"1" * 70 + b"\r\n",
        "long zeros line": b"0" * 62 + b"5\r\nhello\r\n0\r\n\r\n",
        "body after": b"5\r\nhello\r\n0\r\n\r\nEXTRA",
    }
    for name, body in chunk_bodies.items():
        add(_case("chunked " + name, _resp(headers=[b"Transfer-Encoding: chunked"], body=body)))
    for v in (b"gzip", b"chunked, chunked", b"Chunked", b"CHUNKED", b"identity", b"chunked,",
              b" chunked", b"gzip, chunked", b"chunke\xe9"):
        add(_case("te %r" % v, _resp(headers=[b"Transfer-Encoding: " + v], body=_chunked([b"hi"]))))
    add(_case("te two lines", _resp(headers=[b"Transfer-Encoding: chunked",
                                             b"Transfer-Encoding: chunked"], body=_chunked([b"hi"]))))
    add(_case("cl and te", _resp(headers=[b"Content-Length: 7", b"Transfer-Encoding: chunked"],
                                 body=_chunked([b"hi"]))))
    add(_case("te and cl", _resp(headers=[b"Transfer-Encoding: chunked", b"Content-Length: 7"],
                                 body=_chunked([b"hi"]))))

    # ---- until close
    for size in (0, 1, 5000, 200000):
        add(_case("until close %d" % size, _resp(body=b"u" * size)))
    add(_case("until close 1.0", _resp(b"HTTP/1.0 200 OK", body=b"old")))

    # ---- responses without a body
    for code in (204, 304):
        for hs in ([], [b"Content-Length: 0"], [b"Content-Length: 5"], [b"Content-Length: x"],
                   [b"Transfer-Encoding: chunked"], [b"Transfer-Encoding: gzip"],
                   [b"Content-Length: 5", b"Transfer-Encoding: chunked"]):
            body = b"hello" if hs else b""
            add(_case("%d %r" % (code, hs), _resp(b"HTTP/1.1 %d X" % code, hs, body)))
    for hs, body in (([b"Content-Length: 5"], b"hello"), ([b"Transfer-Encoding: chunked"], b""),
                     ([b"Transfer-Encoding: gzip"], b""), ([], b"ignored"),
                     ([b"Content-Length: x"], b""), ([b"Content-Length: 5, 6"], b"")):
        add(_case("HEAD %r" % hs, _resp(headers=hs, body=body), method="HEAD"))

    # ---- 1xx
    final = _resp(headers=[b"Content-Length: 4"], body=b"done")
    add(_case("100 then 200", _resp(b"HTTP/1.1 100 Continue") + final))
    add(_case("102 103 then 200", _resp(b"HTTP/1.1 102 Processing") +
              _resp(b"HTTP/1.1 103 Early Hints", [b"Link: </a>; rel=preload"]) + final))
    add(_case("101 then close", _resp(b"HTTP/1.1 101 Switching Protocols", [b"Upgrade: x"])))
    add(_case("100 only", _resp(b"HTTP/1.1 100 Continue")))
    add(_case("100 with cl", _resp(b"HTTP/1.1 100 Continue", [b"Content-Length: 0"]) + final))
    add(_case("100 with te", _resp(b"HTTP/1.1 100 Continue", [b"Transfer-Encoding: chunked"]) + final))
    add(_case("10 x 1xx", _resp(b"HTTP/1.1 100 Continue") * 10 + final))
    add(_case("11 x 1xx", _resp(b"HTTP/1.1 100 Continue") * 11 + final))
    add(_case("1xx then bad", _resp(b"HTTP/1.1 100 Continue") + b"HTTP/1.1 2 OK\r\n\r\n"))
    add(_case("1xx HEAD", _resp(b"HTTP/1.1 100 Continue") + final, method="HEAD"))
    add(_case("1xx big heads", (_resp(b"HTTP/1.1 103 Hints", [b"X: " + b"h" * 150])) * 3 + final,
              max_header_size=200))

    # ---- limits
    big = _resp(headers=[b"X: " + b"a" * 200], body=b"")
    add(_case("head over limit", big, max_header_size=100))
    add(_case("head over limit no end", big[:150], max_header_size=100))
    add(_case("head at limit", _resp(headers=[b"X: " + b"a" * 79]), max_header_size=100))
    add(_case("head one over limit", _resp(headers=[b"X: " + b"a" * 80]), max_header_size=100))
    add(_case("head default limit", _resp(headers=[b"X: " + b"a" * 70000])))
    for n in (9, 10, 11):
        add(_case("cl body limit %d" % n, _resp(headers=[b"Content-Length: %d" % n], body=b"b" * n),
                  max_body_size=10))
        add(_case("chunked body limit %d" % n, _resp(headers=[b"Transfer-Encoding: chunked"],
                                                     body=_chunked([b"b" * (n - 4), b"b" * 4])),
                  max_body_size=10))
        add(_case("close body limit %d" % n, _resp(body=b"b" * n), max_body_size=10))
    add(_case("close body limit big", _resp(body=b"b" * 300000), max_body_size=100000))
    add(_case("chunk line limit", _resp(headers=[b"Transfer-Encoding: chunked"],
                                        body=b"0" * 61 + b"5\r\nhello\r\n0\r\n\r\n")))

    # ---- redirects (not followed here: follow_redirects=False)
    for code in (301, 302, 303, 307, 308):
        add(_case("redirect %d" % code, _resp(b"HTTP/1.1 %d Moved" % code,
                                              [b"Location: /elsewhere", b"Content-Length: 0"])))

    # ---- early close: every cut of a few responses
    full_cl = _resp(headers=[b"Content-Length: 10", b"X: y"], body=b"0123456789")
    for i in range(0, len(full_cl), 3):
        add(_case("cut cl at %d" % i, full_cl[:i]))
    full_ch = _resp(headers=[b"Transfer-Encoding: chunked"], body=_chunked([b"abc", b"defg"]))
    for i in range(0, len(full_ch)):
        add(_case("cut chunked at %d" % i, full_ch[:i]))
    full_1xx = _resp(b"HTTP/1.1 100 Continue") + _resp(headers=[b"Content-Length: 2"], body=b"ok")
    for i in range(0, len(full_1xx), 4):
        add(_case("cut 1xx at %d" % i, full_1xx[:i]))

    # ---- slow trickle
    add(_case("trickle cl", full_cl, pieces=[1] * len(full_cl)))
    add(_case("trickle chunked", full_ch, pieces=[1] * len(full_ch)))
    add(_case("trickle 1xx", full_1xx, pieces=[3] * (len(full_1xx) // 3 + 1)))
    add(_case("trickle until close", _resp(body=b"slow body"), pieces=[2] * 20))
    add(_case("trickle bad chunk", _resp(headers=[b"Transfer-Encoding: chunked"],
                                         body=b"5\r\nhelloXX"), pieces=[1] * 60))

    names = [c["name"] for c in out]
    assert len(names) == len(set(names)), "duplicate case names"
    return out
