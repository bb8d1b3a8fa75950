"""Differential test of whole responses: tests/realistic_app.py, unmodified,
under upstream Tornado (``python realistic_app.py``), under the full switch
(``python -m tornado_c realistic_app.py``) and under the switch with
``TORNADO_C_DISABLE=web``.  The same raw HTTP requests (raw sockets, some on
keep-alive connections, some one a connection, HTTP/1.0 and 1.1) go to each;
the status lines, headers (in order), bodies and the log records must be
identical once the values that must differ are normalised:

* ``Date`` and ``Expires`` headers and ``expires=`` in Set-Cookie: the clock.
* Signed cookie values (``set_signed_cookie``): their timestamp field and the
  signature over it; the test checks each with ``decode_signed_value`` and
  keeps the name and value.
* XSRF tokens in bodies (``xsrf_form_html``) and a new ``_xsrf`` cookie:
  version 2 tokens carry a random mask (and a new token is random); the test
  unmasks them and compares the token itself when it came from the request's
  cookie.
* ``Etag`` of a response whose body held such a token: the test checks it is
  the SHA-1 of that side's body, then compares the rest.
* gzip bodies: the gzip header's MTIME field (bytes 4-7) is the clock; the test
  compares the decompressed bytes, and the compressed bytes with MTIME zeroed
  when the content held nothing random.
* ``at 0x...`` addresses in the repr() of a log record's arguments.
* The request time in the access log message (``... 0.52ms``) and its
  argument.
* The traceback of a logged exception is compared by its frames in the
  application's file: methods of tornado.web that are C under the switch
  (``set_header``, ``redirect``, ``finish``...) have no Python frame, so an
  exception they raise ends at the application's call (README, known
  differences of the C RequestHandler path).

Every other byte is compared.  Each request also has the status upstream must
give, so the app itself is checked to do what it is meant to.
"""

import binascii
import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import tornado_c_parent

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "realistic_app.py")
sys.path.insert(0, HERE)
import realistic_app  # noqa: E402  (the secret; nothing of it runs here)

HOST = "app.test"
XSRF = "0123456789abcdef"  # a version-1 (plain hex) xsrf token the client owns
XSRF_COOKIE = "_xsrf=" + XSRF
MODES = {
    "tornado_c": {},
    "tornado_c_web_off": {"TORNADO_C_DISABLE": "web"},
}


# --------------------------------------------------------------------------
# requests


def _signed(name, value):
    from tornado.web import create_signed_value

    return create_signed_value(realistic_app.COOKIE_SECRET, name, value).decode()


USER_COOKIE = "user=" + _signed("user", "alice")
TAMPERED_COOKIE = "user=" + _signed("user", "alice")[:-4] + "0000"


def multipart(fields, files, boundary="----diffboundary42"):
    out = []
    for k, v in fields:
        out.append("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                   % (boundary, k, v))
    body = "".join(out).encode()
    for name, filename, ctype, data in files:
        head = "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n" % (
            boundary, name, filename)
        if ctype:
            head += "Content-Type: %s\r\n" % ctype
        body += head.encode() + b"\r\n" + data + b"\r\n"
    body += ("--%s--\r\n" % boundary).encode()
    return "multipart/form-data; boundary=%s" % boundary, body


def R(method, path, status, headers=(), body=b"", version="HTTP/1.1", close=False,
      chunked_body=None):
    """One raw request and the status upstream must answer."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, path, version)]
    if not any(h.lower().startswith("host:") for h in headers):
        lines.append("Host: " + HOST)
    lines += list(headers)
    if chunked_body is not None:
        lines.append("Transfer-Encoding: chunked")
        body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunked_body) + b"0\r\n\r\n"
    elif body or method in ("POST", "PUT"):
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return {"raw": raw, "method": method, "status": status, "label": "%s %s" % (method, path)}


GZ = "Accept-Encoding: gzip"
JSON_ACCEPT = "Accept: application/json"


def conversations():
    """[(app index, [requests]), ...]: each list is one connection."""
    ctype_mp, body_mp = multipart(
        [("_xsrf", XSRF), ("a", "form-a"), ("title", "caf\u00e9")],
        [("upload", "hello.txt", "text/plain", b"hello file\n" * 3),
         ("upload", "data.bin", "application/octet-stream", bytes(range(256))),
         ("other", "r\u00e9sum\u00e9.txt", None, b"no content type")])
    x = ["Cookie: " + XSRF_COOKIE, "X-Xsrftoken: " + XSRF]
    form = "Content-Type: application/x-www-form-urlencoded"
    jsonct = "Content-Type: application/json"
    keep = [
        # pages and templates
        R("GET", "/", 200),
        R("GET", "/", 200, [GZ]),
        R("GET", "/?title=%3Cscript%3E&item=a&item=%3Cb%3E&item=%C3%A9", 200),
        R("GET", "/?lang=fr_FR", 200, ["Cookie: " + USER_COOKIE]),
        R("GET", "/", 200, ["Cookie: " + XSRF_COOKIE + "; " + USER_COOKIE, GZ]),
        R("GET", "/?title=x", 200, ["Cookie: " + TAMPERED_COOKIE]),
        R("GET", "/login?next=%2Fprofile", 200),
        R("GET", "/login", 200, ["Cookie: " + XSRF_COOKIE]),
        # login flow with xsrf
        R("POST", "/login", 403, [form], "name=alice"),
        R("POST", "/login", 403, [form, "Cookie: " + XSRF_COOKIE], "name=alice&_xsrf=bad"),
        R("POST", "/login", 302, [form, "Cookie: " + XSRF_COOKIE],
          "name=alice&next=%2Fprofile&_xsrf=" + XSRF),
        R("POST", "/login", 302, [form] + x, "name=b%C3%B6b"),
        R("POST", "/login", 400, [form] + x, "nothing=1"),
        R("GET", "/logout", 302, ["Cookie: " + USER_COOKIE]),
        R("GET", "/profile", 302),
        R("GET", "/profile?x=1", 302),
        R("HEAD", "/profile", 405),
        R("POST", "/profile", 403, x),
        R("GET", "/profile", 200, ["Cookie: " + USER_COOKIE + "; theme=light"]),
        R("GET", "/profile", 302, ["Cookie: " + TAMPERED_COOKIE]),
        R("POST", "/profile", 200, ["X-Xsrftoken: " + XSRF,
                                     "Cookie: %s; %s" % (XSRF_COOKIE, USER_COOKIE)]),
        # cookies
        R("GET", "/cookies", 200),
        R("GET", "/cookies?theme=a%20b", 500, ["Cookie: old=1; theme=x; \u00e9=1".encode(
            "utf-8").decode("latin-1")]),
        R("GET", "/cookies", 200, ["Cookie: bad cookie; prefs=garbage"]),
    ]
    errors = [
        R("GET", "/error/418", 418),
        R("GET", "/error/418", 418, [JSON_ACCEPT]),
        R("GET", "/error/503", 503),
        R("GET", "/error/599", 599),
        R("GET", "/error/404", 404, [JSON_ACCEPT]),
        R("GET", "/error/400", 400, [GZ]),
        R("GET", "/error/9999", 9999),
        R("GET", "/crash", 500),
        R("GET", "/crash", 500, [JSON_ACCEPT]),
        R("POST", "/crash", 500, x),
        R("GET", "/finish", 200),
        R("GET", "/finish?empty=1", 201),
        R("GET", "/nowhere", 404),
        R("GET", "/nowhere", 404, [JSON_ACCEPT]),
        R("DELETE", "/crash", 405, x),
        R("PATCH", "/", 405, x),
        R("BREW", "/", 405),
        R("GET", "/error/abc", 404),
        R("GET", "/items/%FF", 400),
        R("GET", "/items/%FF", 400, [JSON_ACCEPT]),
    ]
    async_ = [
        R("GET", "/async-prepare", 200),
        R("GET", "/async-prepare?deny=1", 403),
        R("GET", "/gen", 200),
        R("POST", "/gen", 409, x),
        R("GET", "/slow", 200),
        R("GET", "/slow", 200, [GZ]),
        # the error after flush() finishes the response; the connection stays
        R("GET", "/crash-after-flush", 200),
        R("GET", "/gen", 200),
    ]
    args = [
        R("GET", "/items/caf%C3%A9", 200),
        R("GET", "/items/%E2%98%83.json", 200),
        R("GET", "/items/a%20b+c", 200),
        R("GET", "/items/%2Fslash", 200),
        R("GET", "/args?a=1&a=2&s=%20padded%20&need=x", 200),
        R("GET", "/args?need=%C3%A9&b=&c", 200),
        R("GET", "/args", 400),
        R("GET", "/args", 400, [JSON_ACCEPT]),
        R("GET", "/args?need=a%00b", 200),
        R("POST", "/args?a=q", 200, [form] + x, "a=1&a=2&b=%C3%A9&c=+x+&_xsrf=" + XSRF),
        R("POST", "/args", 200, ["Content-Type: " + ctype_mp, "Cookie: " + XSRF_COOKIE],
          body_mp),
        R("POST", "/args", 403, ["Content-Type: " + ctype_mp], body_mp),
        R("POST", "/args", 200, ["Content-Type: text/plain"] + x, "a=not-parsed"),
        R("POST", "/args", 400, ["Content-Type: multipart/form-data"] + x, "broken"),
        R("POST", "/args", 200, [form] + x, chunked_body=[b"a=chunk", b"ed&b=2"]),
        # JSON in and out
        R("POST", "/json", 200, [jsonct] + x, json.dumps({"b": [1, 2], "a": "\u00e9"})),
        R("POST", "/json", 200, [jsonct, GZ] + x, json.dumps({"k": "v" * 2000})),
        R("POST", "/json", 400, [jsonct] + x, "{not json"),
        R("POST", "/json", 200, [jsonct] + x, "[1, 2, 3]"),
        R("PUT", "/json", 500, x, "x"),
    ]
    verbs = [
        R("GET", "/verbs", 200),
        R("HEAD", "/verbs", 200),
        R("OPTIONS", "/verbs", 204),
        R("DELETE", "/verbs", 202, x),
        R("DELETE", "/verbs", 403),
        R("HEAD", "/", 405),
        R("OPTIONS", "/", 405),
        R("GET", "/chunked", 200),
        R("GET", "/chunked?n=5", 200, [GZ]),
        R("GET", "/chunked?n=0", 200),
        R("GET", "/status?code=299&reason=Custom%20Reason", 299),
        R("GET", "/status?code=201", 201),
        R("GET", "/status?code=499", 499),
        R("GET", "/status?code=204", 500),
        R("GET", "/status?code=304", 500),
        R("GET", "/status?code=600", 600),
        R("GET", "/status?code=200&reason=bad%0D%0Areason", 200),
        R("GET", "/status?code=200&reason=%3Cb%3E", 200),
        R("GET", "/headers", 200),
        R("GET", "/headers?bad=newline", 500),
        R("GET", "/etag", 200),
        R("GET", "/etag", 304, ['If-None-Match: "%s"' % ETAG]),
        R("GET", "/etag", 304, ['If-None-Match: "x", W/"%s"' % ETAG]),
        R("GET", "/etag", 304, ["If-None-Match: *"]),
        R("GET", "/etag", 200, ['If-None-Match: "nope"', GZ]),
        R("GET", "/noetag", 200, ["If-None-Match: *"]),
        R("GET", "/redirect", 302),
        R("GET", "/redirect?kind=perm", 301),
        R("GET", "/redirect?kind=303", 303),
        R("GET", "/old/some/where?q=1", 301),
        R("GET", "/perm", 301),
        R("GET", "/unicode", 200),
        R("GET", "/clear", 200),
    ]
    static = [
        R("GET", "/static/logo.txt", 200),
        R("GET", "/static/logo.txt?v=abc", 200),
        R("HEAD", "/static/logo.txt", 200),
        R("GET", "/static/logo.txt", 304, ['If-None-Match: "%s"' % STATIC_ETAG]),
        R("GET", "/static/logo.txt", 304, ["If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT"]),
        R("GET", "/static/logo.txt", 200, ["If-Modified-Since: Sun, 01 Jan 2023 00:00:00 GMT"]),
        R("GET", "/static/logo.txt", 206, ["Range: bytes=0-9"]),
        R("GET", "/static/logo.txt", 206, ["Range: bytes=-5"]),
        R("GET", "/static/logo.txt", 206, ["Range: bytes=100-"]),
        R("GET", "/static/logo.txt", 416, ["Range: bytes=99999-"]),
        R("GET", "/static/logo.txt", 416, ["Range: bytes=5-2"]),
        R("GET", "/static/logo.txt", 200, ["Range: chars=1-2"]),
        R("GET", "/static/big.txt", 200, [GZ]),
        R("GET", "/static/big.txt", 206, [GZ, "Range: bytes=1000-1999"]),
        R("GET", "/static/entry.css", 200),
        R("GET", "/static/missing.txt", 404),
        R("GET", "/static/../realistic_secret", 403),
        R("GET", "/static/", 403),
        R("GET", "/files/logo.txt", 200),
        R("GET", "/files/sub/", 403),
        R("GET", "/files/sub/inner.html", 200),
        R("POST", "/static/logo.txt", 405, x),
    ]
    stream = [
        R("PUT", "/stream", 200, x, b"s" * 70000),
        R("POST", "/stream", 200, x, chunked_body=[b"a" * 10, b"b" * 5000, b"c"]),
        R("PUT", "/stream", 200, x, b""),
    ]
    second = [
        R("GET", "/ping", 200),
        R("GET", "/special/abc%20d", 200),
        R("GET", "/gone", 410),
        R("GET", "/nothing", 404),
        R("POST", "/nothing", 404, [], "x"),
        R("HEAD", "/ping", 405),
    ]
    probe = [
        R("GET", "/request", 200),
        R("GET", "/request?a=1&a=2&b=%20c%20&e=&f&g=%E2%98%83;h=1", 200,
          ["Cookie: x=1; y=\"quoted\"; z=; =bad; w=a=b", "Accept-Language: fr-FR,fr;q=0.9,en;q=0.8",
           "X-Forwarded-For: 10.0.0.1", "X-Multi: 1", "X-Multi: 2", "x-multi: 3"]),
        R("POST", "/request?q=1", 200, [form], "a=1&a=%FF&b=+x+"),
        R("POST", "/request", 200, ["Content-Type: application/x-www-form-urlencoded; charset=utf-8"],
          "z=1&y=2"),
        R("PUT", "/request", 200, ["Content-Type: text/plain"], "raw body \u00e9"),
        R("DELETE", "/request", 200),
        R("PATCH", "/request", 200, [form], "p=1"),
        R("GET", "http://other.example:8080/request?abs=1", 404),
        R("GET", "/request", 200, ["Host: [::1]:8080"]),
        R("GET", "/request", 200, ["Host: example.com:80", "Accept-Language: zz"]),
        R("GET", "/request", 200, ["Expect: 100-continue"]),
        R("POST", "/request", 200, [form, "Expect: 100-continue"], "e=1"),
        R("GET", "/request", 200, ["X-Long: " + "v" * 5000]),
        R("GET", "/request/../request", 404),
        R("GET", "//request", 404),
        R("GET", "/request?%zz=1&a=%", 200),
        R("GET", "/request", 200, version="HTTP/1.0"),
    ]
    misc = [R("GET", "/misc?case=" + c, st) for c, st in (
        ("write-after-finish", 200), ("finish-twice", 200), ("dict-twice", 200),
        ("finish-dict", 200), ("finish-bytes", 200), ("bytes-header", 200),
        ("unicode-header", 500), ("ctype", 200), ("cookies", 200),
        ("bad-cookie-name", 500), ("custom-etag", 200), ("redirect-unicode", 302),
        ("redirect-abs", 307), ("redirect-bad-status", 500), ("send-error-kwargs", 402),
        ("error-in-write-error", 410), ("render-string", 200), ("locale", 200),
        ("set-status-str", 418), ("nope", 400))]
    misc += [R("GET", "/misc?case=odd-reasons&which=" + w, 200)
             for w in ("snow", "empty", "tab", "latin")]
    misc += [
        R("GET", "/misc?case=template-module", 200),
        R("GET", "/configured", 200),
        R("GET", "/configured?fail=big", 200),
        R("GET", "/configured?fail=big", 200, [GZ]),
        R("GET", "/configured?fail=prepare", 500),
        R("GET", "/configured?fail=on_finish", 200),
        R("PROPFIND", "/configured", 207, x),
        R("GET", "/gone", 410),
        R("POST", "/gone", 410, x),
        R("GET", "/misc?case=cookies&bad=1", 500),
        R("GET", "/misc?case=custom-etag", 304, ['If-None-Match: "custom"']),
        R("GET", "/misc?case=current-user", 200, ["Cookie: " + USER_COOKIE]),
        R("GET", "/misc?case=locale&lang=de_DE", 200, ["Accept-Language: es"]),
        R("POST", "/misc?case=body-args", 200, [form] + x, "a=+1+&a=&b=%E2%98%83&_xsrf=" + XSRF),
        R("POST", "/misc?case=body-args", 400, [form] + x, "a=%FF"),
        R("GET", "/misc", 400),
    ]
    convs = [(0, probe), (0, misc), (0, keep), (0, errors), (0, async_), (0, args), (0, verbs), (0, static),
             (0, stream), (1, second)]
    # one request a connection: Connection: close, HTTP/1.0 with and without
    # keep-alive
    singles = [
        R("GET", "/", 200, close=True),
        R("GET", "/chunked", 200, close=True),
        R("GET", "/chunked", 200, version="HTTP/1.0"),
        R("GET", "/gen", 200, version="HTTP/1.0"),
        R("GET", "/static/logo.txt", 200, version="HTTP/1.0"),
        R("GET", "/error/418", 418, version="HTTP/1.0"),
        R("GET", "/crash-after-flush", 200, close=True),
        R("GET", "/redirect?kind=late", 200, close=True),
        R("POST", "/json", 200, [jsonct] + x, "{}", close=True),
        R("GET", "/ping", 200, close=True),
        R("GET", "/nothing", 404, version="HTTP/1.0"),
        # refused before its body was read: the server closes the connection
        R("PUT", "/stream", 403, [], b"no xsrf"),
        # two Host headers: refused by the HTTP layer, no handler runs
        R("GET", "/request", 400, ["Host: a.test", "Host: b.test"]),
    ]
    for r in singles:
        convs.append((1 if r["label"].split()[1] in ("/ping", "/nothing") else 0, [r]))
    # HTTP/1.0 keep-alive: two requests on one connection
    convs.append((0, [R("GET", "/verbs", 200, ["Connection: keep-alive"], version="HTTP/1.0"),
                      R("GET", "/etag", 200, ["Connection: keep-alive"], version="HTTP/1.0")]))
    # a pipelined pair on one connection
    convs.append((0, [R("GET", "/verbs", 200), R("GET", "/unicode", 200)], ))
    return convs


STATIC_BODY = b"logo: " + b"0123456789" * 20 + b"\n"
STATIC_ETAG = hashlib.sha512(STATIC_BODY).hexdigest()
ETAG = hashlib.sha1(b"content that has an etag " * 3).hexdigest()
STATIC_MTIME = 1704067200 - 3600  # 2023-12-31 23:00 UTC


def make_static(root):
    files = {
        "logo.txt": STATIC_BODY,
        "big.txt": b"".join(b"line %05d of a big static file\n" % i for i in range(3000)),
        "entry.css": b"li { margin: 0 }\n",
        "sub/inner.html": b"<p>inner</p>\n",
    }
    for name, data in files.items():
        path = os.path.join(root, "static", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (STATIC_MTIME, STATIC_MTIME))
    with open(os.path.join(root, "realistic_secret"), "wb") as f:
        f.write(b"secret")
    return os.path.join(root, "static")


# --------------------------------------------------------------------------
# client


def _fill(sock, buf, enough):
    """Receive until enough(buf) or EOF: (buf, True if enough)."""
    while not enough(buf):
        data = sock.recv(65536)
        if not data:
            return buf, False
        buf += data
    return buf, True


def _read_eof(sock, buf):
    try:
        buf, _ = _fill(sock, buf, lambda b: False)
    except OSError:
        pass
    return buf


def read_response(sock, buf, method, until_eof=False):
    """(response dict, leftover bytes).  The body's framing follows the
    headers: none for HEAD/1xx/204/304, chunked, Content-Length, or up to
    EOF."""
    interim = []
    while True:
        buf, ok = _fill(sock, buf, lambda b: b"\r\n\r\n" in b)
        if not ok:
            return {"incomplete_head": buf, "interim": interim}, b""
        head, _, buf = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 100"):
            break
        interim.append(head)  # 100-continue, then the response
    lines = head.split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    headers = []
    for line in lines[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k, v.strip()))
    lower = {k.lower(): v for k, v in headers}
    code = int(status_line.split()[1])
    resp = {"status_line": status_line, "headers": headers, "chunks": None}
    if interim:
        resp["interim"] = interim
    if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
        resp["body"] = b""
    elif lower.get("transfer-encoding", "").lower() == "chunked":
        chunks, body = [], b""
        while True:
            buf, ok = _fill(sock, buf, lambda b: b"\r\n" in b)
            if ok:
                size_line, _, buf = buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                buf, ok = _fill(sock, buf, lambda b: len(b) >= size + 2)
            if not ok:
                resp["truncated"] = buf
                break
            chunks.append(size)
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                break
        resp["body"] = body
        resp["chunks"] = chunks
    elif "content-length" in lower:
        n = int(lower["content-length"])
        buf, ok = _fill(sock, buf, lambda b: len(b) >= n)
        if not ok:
            resp["truncated"] = True
        resp["body"], buf = buf[:n], buf[n:]
    else:
        resp["body"], buf = _read_eof(sock, buf), b""
        resp["chunks"] = "eof"
    if until_eof:
        resp["after"], buf = _read_eof(sock, buf), b""
    return resp, buf


def run_conversations(ports, convs):
    results = []
    for app_index, reqs in convs:
        sock = socket.create_connection(("127.0.0.1", ports[app_index]), timeout=15)
        try:
            buf = b""
            pipelined = len(reqs) == 2 and reqs[0]["label"] == "GET /verbs" and \
                reqs[1]["label"] == "GET /unicode"
            if pipelined:
                sock.sendall(reqs[0]["raw"] + reqs[1]["raw"])
            broken = None
            for i, r in enumerate(reqs):
                if broken:
                    resp = {"error": "not sent: " + broken}
                else:
                    last = i == len(reqs) - 1
                    closing = (b"Connection: close" in r["raw"]
                               or (b"HTTP/1.0" in r["raw"].split(b"\r\n")[0]
                                   and b"keep-alive" not in r["raw"]))
                    single = len(reqs) == 1
                    try:
                        if not pipelined:
                            sock.sendall(r["raw"])
                        resp, buf = read_response(sock, buf, r["method"],
                                                  until_eof=last and (closing or single))
                    except OSError as exc:
                        broken = "%s after %s" % (type(exc).__name__, r["label"])
                        resp = {"error": type(exc).__name__}
                resp["label"] = r["label"]
                resp["expect"] = r["status"]
                results.append(resp)
        finally:
            sock.close()
    return results


# --------------------------------------------------------------------------
# normalisation

SIGNED_RE = re.compile(r"2\|1:0\|10:(\d{10})\|(\d+):([^|]*)\|(\d+):([^|;]*)\|([0-9a-f]{64})")
XSRF_V2_RE = re.compile(rb"2\|([0-9a-f]{8})\|([0-9a-f]+)\|(\d+)")
DATE_RE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


def _norm_signed(text):
    from tornado.web import decode_signed_value

    def sub(m):
        name = m.group(3)
        value = decode_signed_value(realistic_app.COOKIE_SECRET, name, m.group(0))
        assert value is not None, "bad signature in %r" % m.group(0)
        return "2|1:0|10:<ts>|%s:%s|%s:%s|<sig>" % (m.group(2), name, m.group(4), m.group(5))

    return SIGNED_RE.sub(sub, text)


def _norm_xsrf_body(body):
    """Unmask version-2 xsrf tokens; the token itself is kept when it is the
    client's, replaced by <new token> otherwise (a random token)."""
    found = []

    def sub(m):
        mask = binascii.a2b_hex(m.group(1))
        masked = binascii.a2b_hex(m.group(2))
        token = bytes(b ^ mask[i % 4] for i, b in enumerate(masked)).hex()
        found.append(token)
        shown = token if token == XSRF else "<new token>"
        return ("2|<mask>|%s|<ts>" % shown).encode()

    return XSRF_V2_RE.sub(sub, body), bool(found)


def normalise(resp):
    if "status_line" not in resp:
        return resp
    out = {"status_line": resp["status_line"], "chunks": resp["chunks"]}
    for k in ("truncated", "after", "interim"):
        if k in resp:
            out[k] = resp[k]
    headers = []
    lower = {k.lower(): v for k, v in resp["headers"]}
    body = resp["body"]
    random_body = False
    if lower.get("content-encoding") == "gzip" and body:
        raw = gzip.decompress(body)
        plain, random_body = _norm_xsrf_body(raw)
        out["gunzipped"] = plain
        out["body"] = (body[:4] + b"\0\0\0\0" + body[8:]) if not random_body else "<random>"
        etag_source = raw
    else:
        out["body"], random_body = _norm_xsrf_body(body)
        etag_source = body
    for k, v in resp["headers"]:
        kl = k.lower()
        if kl in ("date", "expires"):
            assert DATE_RE.fullmatch(v), (k, v)
            v = "<date>"
        elif kl == "set-cookie":
            v = _norm_signed(v)
            v = re.sub(r"expires=" + DATE_RE.pattern, "expires=<date>", v)
            m = re.match(r'_xsrf=("?)2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+\1;', v)
            if m:
                v = "_xsrf=<new token>;" + v[m.end():]
        elif kl == "etag" and random_body:
            assert v == '"%s"' % hashlib.sha1(etag_source).hexdigest(), v
            v = "<sha1 of body>"
        headers.append((k, v))
    out["headers"] = headers
    return out


ACCESS_RE = re.compile(r" \d+\.\d\dms$")
ADDRESS_RE = re.compile(r" at 0x[0-9a-f]+")  # repr() of an object without its own


def normalise_log(rec):
    rec = dict(rec)
    if rec["name"] == "tornado.access":
        rec["message"] = ACCESS_RE.sub(" <t>ms", rec["message"])
        if rec["args"]:
            rec["args"] = rec["args"][:-1] + ["<t>"]
    if rec["exc"]:
        # the frames of the application's own code; tornado.web's methods that
        # are C under the switch have no Python frame (see README)
        rec["exc"] = dict(rec["exc"], frames=[f for f in rec["exc"]["frames"]
                                              if f[0] == "realistic_app.py"])
    rec["message"] = _norm_signed(rec["message"])
    rec["args"] = [ADDRESS_RE.sub(" at 0x?", _norm_signed(a)) for a in rec["args"]] \
        if isinstance(rec["args"], list) else rec["args"]
    return rec


# --------------------------------------------------------------------------
# running the app


def run_app(mode, static_root, tmpdir):
    log_path = os.path.join(tmpdir, "%s.log" % mode)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tornado_c_parent(), HERE,
                                                   env.get("PYTHONPATH")) if p)
    env.pop("TORNADO_C_DISABLE", None)
    env["PYTHONHASHSEED"] = "0"
    if mode == "upstream":
        cmd = [sys.executable, APP, static_root, log_path]
    else:
        cmd = [sys.executable, "-m", "tornado_c", APP, static_root, log_path]
        env.update(MODES[mode])
    stderr_path = os.path.join(tmpdir, "%s.stderr" % mode)
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                                cwd=tmpdir, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("READY "):
            proc.kill()
            proc.wait()
            with open(stderr_path) as f:
                raise AssertionError("%s did not start: %r\n%s" % (mode, line, f.read()))
        ports = [int(p) for p in line.split()[1:]]
        responses = run_conversations(ports, conversations())
        time.sleep(0.2)  # the last log records
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
    with open(log_path) as f:
        logs = [json.loads(line) for line in f]
    with open(stderr_path) as f:
        stderr = f.read()
    return {"responses": responses, "logs": logs, "stderr": stderr}


@pytest.fixture(scope="module")
def runs():
    with tempfile.TemporaryDirectory() as tmpdir:
        static = make_static(tmpdir)
        yield {mode: run_app(mode, static, tmpdir) for mode in ("upstream", *MODES)}


def test_upstream_answers_as_the_app_means(runs):
    """The reference itself: every request got the status it was written for
    (so the app exercises what it claims to), over 100 requests."""
    resp = runs["upstream"]["responses"]
    assert len(resp) >= 100
    wrong = [(r["label"], r.get("status_line"), r["expect"]) for r in resp
             if "status_line" not in r or int(r["status_line"].split()[1]) != r["expect"]]
    assert not wrong
    names = {rec["name"] for rec in runs["upstream"]["logs"]}
    assert {"tornado.access", "tornado.application", "tornado.general", "app",
            "app.custom"} <= names
    # the pieces the normalisation is about were really there
    allh = [(k.lower(), v) for r in resp for k, v in r.get("headers", ())]
    assert any(k == "set-cookie" and v.startswith('user="2|1:0|') for k, v in allh)
    assert any(k == "content-encoding" and v == "gzip" for k, v in allh)
    assert any(k == "content-range" for k, v in allh)
    assert runs["upstream"]["stderr"] == ""


@pytest.mark.parametrize("mode", list(MODES))
def test_responses_identical(runs, mode):
    up = [normalise(r) for r in runs["upstream"]["responses"]]
    got = [normalise(r) for r in runs[mode]["responses"]]
    assert len(got) == len(up)
    diffs = []
    for a, b, raw in zip(up, got, runs["upstream"]["responses"]):
        if a != b:
            diffs.append((raw["label"], {k: (a.get(k), b.get(k)) for k in set(a) | set(b)
                                         if a.get(k) != b.get(k)}))
    assert not diffs, "\n".join(repr(d) for d in diffs)


@pytest.mark.parametrize("mode", list(MODES))
def test_log_records_identical(runs, mode):
    up = [normalise_log(r) for r in runs["upstream"]["logs"]]
    got = [normalise_log(r) for r in runs[mode]["logs"]]
    if up != got:
        import difflib

        diff = difflib.unified_diff([json.dumps(r, sort_keys=True) for r in up],
                                    [json.dumps(r, sort_keys=True) for r in got],
                                    "upstream", mode, lineterm="", n=1)
        raise AssertionError("\n".join(diff))
    assert runs[mode]["stderr"] == ""
