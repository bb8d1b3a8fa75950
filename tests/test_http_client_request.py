"""The switched simple client's request side and its fast paths against
upstream's client.

Under the switch SimpleAsyncHTTPClient fetches with
tornado_c.simple_httpclient.HTTPClientConnection: a leaner run() (IP
literals connected without the resolver's executor hop), the request built
in C and sent with one write (_core.http_client_request), and the response
read by the C parser as the stream's consumer, the body appended in C to
the delegate's bytearray (or dropped for a redirect being followed).

A raw-socket server records the bytes of every request and answers with a
canned response chosen by the path; each fetch below runs through
upstream's client (asyncio loop, switch off) and through the switched one.
The request bytes, the response fields (code, reason, headers, body,
effective_url, the error's type and message), what the fetch raised, what
streaming_callback / header_callback received, and the request headers the
client left on the HTTPRequest must be equal.  Also the connection errors
(refused, unreachable) and the option checks (unknown method, body rules,
auth_mode).
"""

import asyncio
import gzip
import socket

import pytest

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

_core = pytest.importorskip("tornado_c._core")

GZ = gzip.compress(b"squeezed " * 200)

RESPONSES = {
    "/plain": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
    "/chunked": (b"HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"),
    "/close": b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
    "/big": b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + bytes(range(256)) * 1171
            + bytes(range(224)),
    # over the size whose bytes object the C reader allocates up front
    "/5m": b"HTTP/1.1 200 OK\r\nContent-Length: 5242880\r\n\r\n" + b"0123456789abcdef" * 327680,
    "/gzip": (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
              % len(GZ)) + GZ,
    "/redirect": b"HTTP/1.1 302 Found\r\nLocation: /plain\r\nContent-Length: 7\r\n\r\nignored",
    "/303": b"HTTP/1.1 303 See Other\r\nLocation: /chunked\r\nContent-Length: 0\r\n\r\n",
    "/404": b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
    "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
    "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this",
    "/bad": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "/hugehead": b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * 3000 + b"\r\n\r\n",
}


def _fetches(port):
    base = "http://127.0.0.1:%d" % port
    yield "get", dict(url=base + "/plain")
    yield "get-query", dict(url=base + "/plain?a=1&b=%20x")
    yield "get-localhost", dict(url="http://localhost:%d/plain" % port)
    yield "head", dict(url=base + "/head", method="HEAD")
    yield "post", dict(url=base + "/plain", method="POST", body=b"a=1&b=2")
    yield "post-str-body", dict(url=base + "/plain", method="POST", body="x\u00e9")
    yield "post-type", dict(url=base + "/plain", method="POST", body=b"{}",
                            headers={"Content-Type": "application/json"})
    yield "put-empty", dict(url=base + "/plain", method="PUT", body=b"")
    yield "delete", dict(url=base + "/plain", method="DELETE")
    yield "options", dict(url=base + "/plain", method="OPTIONS")
    yield "get-with-body", dict(url=base + "/plain", method="GET", body=b"xyz",
                                allow_nonstandard_methods=True)
    yield "post-no-body-chunked", dict(url=base + "/plain", method="POST",
                                       allow_nonstandard_methods=True)
    yield "custom-method", dict(url=base + "/plain", method="PROPFIND",
                                allow_nonstandard_methods=True)
    yield "unknown-method", dict(url=base + "/plain", method="PROPFIND")
    yield "get-body-refused", dict(url=base + "/plain", method="GET", body=b"x")
    yield "post-no-body-refused", dict(url=base + "/plain", method="POST")
    yield "headers", dict(url=base + "/plain", headers={
        "X-One": "1", "X-Latin": "caf\u00e9", "Connection": "keep-alive", "Host": "example",
        "User-Agent": "mine", "Accept-Encoding": "identity"})
    yield "header-bytes-value", dict(url=base + "/plain", headers={"X-B": b"bytes"})
    yield "header-crlf", dict(url=base + "/plain", headers={"X-Evil": "a\r\nb: c"})
    yield "header-not-latin1", dict(url=base + "/plain", headers={"X-U": "\u20ac"})
    yield "user-agent", dict(url=base + "/plain", user_agent="agent/1")
    yield "url-auth", dict(url="http://me:secret@127.0.0.1:%d/plain" % port)
    yield "url-user-only", dict(url="http://me@127.0.0.1:%d/plain" % port)
    yield "auth", dict(url=base + "/plain", auth_username="u", auth_password="p")
    yield "auth-no-password", dict(url=base + "/plain", auth_username="u")
    yield "auth-digest", dict(url=base + "/plain", auth_username="u", auth_password="p",
                              auth_mode="digest")
    yield "no-decompress", dict(url=base + "/plain", decompress_response=False)
    yield "chunked", dict(url=base + "/chunked")
    yield "close-delimited", dict(url=base + "/close")
    yield "big", dict(url=base + "/big")
    yield "5m", dict(url=base + "/5m")
    yield "gzip", dict(url=base + "/gzip")
    yield "gzip-off", dict(url=base + "/gzip", decompress_response=False)
    yield "redirect", dict(url=base + "/redirect")
    yield "redirect-not-followed", dict(url=base + "/redirect", follow_redirects=False)
    yield "redirect-303-post", dict(url=base + "/303", method="POST", body=b"q")
    yield "404", dict(url=base + "/404")
    yield "short-body", dict(url=base + "/short")
    yield "bad-chunk", dict(url=base + "/bad")
    yield "huge-head", dict(url=base + "/hugehead")
    yield "streaming", dict(url=base + "/big", streaming_callback=True)
    yield "streaming-chunked", dict(url=base + "/chunked", streaming_callback=True)
    yield "header-callback", dict(url=base + "/chunked", header_callback=True)
    # a client with defaults of its own (AsyncHTTPClient(defaults=...))
    yield "defaults", dict(url=base + "/plain", client="defaults")
    yield "defaults-overridden", dict(url=base + "/plain", client="defaults",
                                      user_agent="explicit", follow_redirects=True)
    yield "defaults-no-redirect", dict(url=base + "/redirect", client="defaults")
    yield "ipv4-only", dict(url=base + "/plain", allow_ipv6=False)
    yield "refused", dict(url="http://127.0.0.1:%d/plain" % _closed_port())
    # a listener whose accept queue is full: the connect hangs
    yield "connect-timeout", dict(url="http://127.0.0.1:%d/" % _full_port(), connect_timeout=0.3)
    yield "bad-scheme", dict(url="ftp://127.0.0.1:%d/plain" % port)


_CLOSED_PORT = []
_FULL = []


def _full_port():
    """A local port whose listener never accepts and whose accept queue is
    full, so that a new connect does not complete."""
    if not _FULL:
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        port = lst.getsockname()[1]
        _FULL.append(lst)
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            _FULL.append(c)
    return _FULL[0].getsockname()[1]


def _closed_port():
    """A local port nothing listens on (the same one for both clients)."""
    if not _CLOSED_PORT:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        _CLOSED_PORT.append(s.getsockname()[1])
        s.close()
    return _CLOSED_PORT[0]


async def _run_all():
    requests = []

    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                if name.strip().lower() == b"transfer-encoding":
                    chunked = True
            body = await reader.readexactly(length) if length else b""
            if chunked:
                body = await reader.readuntil(b"0\r\n\r\n")
            requests.append(head + body)
            path = head.split(b" ")[1].split(b"?")[0].decode()
            writer.write(RESPONSES.get(path, RESPONSES["/404"]))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SimpleAsyncHTTPClient(force_instance=True, max_header_size=2048)
    with_defaults = SimpleAsyncHTTPClient(
        force_instance=True,
        defaults=dict(user_agent="from-defaults", follow_redirects=False,
                      auth_username="du", auth_password="dp"))
    clients = {None: client, "defaults": with_defaults}
    results = {}
    try:
        for name, kw in _fetches(port):
            del requests[:]
            pieces = []
            kw = dict(kw, request_timeout=5)
            fetcher = clients[kw.pop("client", None)]
            if kw.get("streaming_callback"):
                kw["streaming_callback"] = pieces.append
            if kw.get("header_callback"):
                kw["header_callback"] = pieces.append
            req = HTTPRequest(**kw)
            try:
                resp = await fetcher.fetch(req, raise_error=False)
                err = resp.error
                out = {
                    "code": resp.code,
                    "reason": resp.reason,
                    "headers": list(resp.headers.get_all()),
                    "body": resp.body if err is None or isinstance(err, HTTPClientError)
                    else None,
                    "effective_url": resp.effective_url,
                    "error": None if err is None else (type(err).__name__, str(err)),
                }
            except Exception as e:
                out = {"raised": (type(e).__name__, str(e))}
            await asyncio.sleep(0.01)
            # what the client wrote (Host carries the port, the same for both)
            out["sent"] = list(requests)
            out["request_headers"] = list(req.headers.get_all())
            # streamed pieces: their concatenation (the split follows arrival)
            out["pieces"] = (b"".join(pieces) if kw.get("streaming_callback")
                             else list(pieces))
            results[name] = out
    finally:
        client.close()
        with_defaults.close()
        server.close()
        await server.wait_closed()
    return results, port


@pytest.fixture(scope="module")
def upstream():
    import tornado.simple_httpclient
    from tornado_c.simple_httpclient import HTTPClientConnection

    client = SimpleAsyncHTTPClient(force_instance=True)
    assert client._connection_class() is not HTTPClientConnection
    client.close()
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(_run_all())
    finally:
        loop.close()
        assert tornado.simple_httpclient


@pytest.fixture(scope="module")
def switched():
    import tornado_c
    from tornado_c.simple_httpclient import HTTPClientConnection

    from conftest import new_loop

    before = tornado_c.active()
    tornado_c.install()
    loop = new_loop("tornado_c")
    try:
        client = SimpleAsyncHTTPClient(force_instance=True)
        assert client._connection_class() is HTTPClientConnection
        client.close()
        return loop.run_until_complete(_run_all())
    finally:
        loop.close()
        tornado_c.uninstall()
        if before:
            tornado_c.install(**{n: (n in before) for n in ("loop", "http", "web", "websocket")})


def _names():
    return [name for name, _ in _fetches(0)]


def _normalise(out, port):
    # the two runs use different server ports
    text = repr(out).replace(str(port), "PORT")
    return text


@pytest.mark.parametrize("name", _names())
def test_same_as_upstream(name, upstream, switched):
    up, up_port = upstream
    sw, sw_port = switched
    assert _normalise(sw[name], sw_port) == _normalise(up[name], up_port)


def test_cases_reach_the_paths(upstream):
    """The list covers successes, HTTP errors, refused requests and
    connection errors (so the comparison above is not of empty results)."""
    up, _ = upstream
    assert up["get"]["code"] == 200 and up["get"]["sent"]
    assert up["chunked"]["body"] == b"abcdefgh"
    assert up["gzip"]["body"] == b"squeezed " * 200
    assert up["redirect"]["body"] == b"hello"
    assert up["404"]["error"][0] == "HTTPClientError"
    # errors other than HTTP ones are raised even with raise_error=False
    assert up["refused"]["raised"][0] == "ConnectionRefusedError"
    assert up["header-crlf"]["raised"][0] == "ValueError"
    assert up["huge-head"]["raised"][0] == "UnsatisfiableReadError"
    assert up["bad-chunk"]["raised"] == ("HTTPStreamClosedError", "Connection closed")
    assert up["big"]["body"] == RESPONSES["/big"].partition(b"\r\n\r\n")[2]
    assert len(up["5m"]["body"]) == 5 * 1024 * 1024
    assert up["streaming"]["pieces"] == RESPONSES["/big"].partition(b"\r\n\r\n")[2]
    assert "raised" in up["bad-scheme"]


def test_request_bytes_in_c():
    """_core.http_client_request gives upstream's bytes, and None for what it
    leaves to upstream's write_headers."""
    from tornado.httputil import HTTPHeaders

    h = HTTPHeaders()
    h.add("Host", "h")
    h.add("X-A", "1")
    h.add("X-A", "caf\u00e9")
    assert _core.http_client_request("GET", "/p?q", h, None) == (
        b"GET /p?q HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: caf\xe9\r\n\r\n")
    assert _core.http_client_request("POST", "/", h, b"body").endswith(b"\r\n\r\nbody")
    assert _core.http_client_request("POST", "/", h, bytearray(b"ba")).endswith(b"\r\n\r\nba")
    for bad in ("a\rb", "a\nb", "\u20ac"):
        h2 = HTTPHeaders({"X": bad})
        assert _core.http_client_request("GET", "/", h2, None) is None
    assert _core.http_client_request("GET", "/\n", h, None) is None
    assert _core.http_client_request("GET", "/", HTTPHeaders({"X": b"v"}), None) is None
    with pytest.raises(TypeError):
        _core.http_client_request("GET", "/", h)


def _parser_run(coro_fn):
    import tornado_c.loop

    loop = tornado_c.loop.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(), 10))
    finally:
        loop.close()


_BODY = bytes(range(256)) * 200
_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(_BODY)


@pytest.mark.parametrize("how", ["collect", "framing", "release", "bytearray", "split"])
def test_body_read_with_the_head(how):
    """read_head(..., prefetch=True) may take the body bytes that come in
    the head's read: read_body(stream, bytes) after framing(collect=True)
    returns them; otherwise framing(), read_body() with another sink and
    release() put them back in front of what the stream holds."""
    from tornado_c import iostream as tci

    async def go():
        a, b = socket.socketpair()
        stream = tci.IOStream(b)
        try:
            if how == "split":
                a.sendall(_HEAD + _BODY[:1000])
            else:
                a.sendall(_HEAD + _BODY + b"after")
            p = _core.HTTPClientParser()
            start_line, headers = await p.read_head(stream, 65536, True)
            assert (start_line.code, headers["Content-Length"]) == (200, str(len(_BODY)))
            if how == "release":
                p.release()
                return await stream.read_bytes(len(_BODY) + 5)
            kind, length, _ = p.framing(100 * 1024 * 1024, how != "framing")
            assert (kind, length) == ("fixed", len(_BODY))
            if how == "framing":
                return await stream.read_bytes(len(_BODY) + 5)
            if how == "bytearray":
                sink = bytearray()
                assert await p.read_body(stream, sink) is None
                return bytes(sink) + await stream.read_bytes(5)
            fut = p.read_body(stream, bytes)
            if how == "split":
                await asyncio.sleep(0.01)
                a.sendall(_BODY[1000:] + b"after")
            return await fut + await stream.read_bytes(5)
        finally:
            stream.close()
            a.close()

    assert _parser_run(go) == _BODY + b"after"
