"""The write path of the C WebSocket protocol: broadcast without re-encoding
(_ws_build_message remembers the last unmasked frame of an immutable
message) and a broadcast through WebSocketHandler.write_message to several
clients, with and without compression, under the switch and upstream."""

import asyncio
import gc
import socket
import struct

import pytest

from tornado_c import _core


def parse_server_frames(data):
    out = []
    while data:
        first, ln = data[0], data[1] & 0x7F
        pos = 2
        if ln == 126:
            ln, = struct.unpack("!H", data[2:4])
            pos = 4
        elif ln == 127:
            ln, = struct.unpack("!Q", data[2:10])
            pos = 10
        assert not data[1] & 0x80  # server frames are not masked
        out.append((first, data[pos:pos + ln]))
        data = data[pos + ln:]
    return out


def test_same_message_same_frame():
    msg = "é broadcast " * 50
    a = _core._ws_build_message(msg, False, False)
    b = _core._ws_build_message(msg, False, False)
    assert a is b  # built once
    assert a[0] == b"\x81\x7e" + struct.pack("!H", len(msg.encode())) + msg.encode()
    data = b"\x00\x01" * 100
    c = _core._ws_build_message(data, True, False)
    assert c is _core._ws_build_message(data, True, False)
    assert c[0][0] == 0x82 and c[0][4:] == data


def test_cache_keyed_on_identity_and_binary():
    msg = "same text"
    a = _core._ws_build_message(msg, False, False)
    b = _core._ws_build_message(msg, True, False)  # binary flag differs
    assert a[0][0] == 0x81 and b[0][0] == 0x82
    assert _core._ws_build_message(msg, True, False) is b
    # an equal but distinct object is built again (identity, not equality)
    other = "".join(["same ", "text"])
    assert other == msg and other is not msg
    c = _core._ws_build_message(other, True, False)
    assert c is not b and c == b


def test_masked_frames_never_cached():
    msg = "client message"
    a = _core._ws_build_message(msg, False, True)
    b = _core._ws_build_message(msg, False, True)
    assert a is not b
    assert a[0][1] & 0x80 and b[0][1] & 0x80


def test_subclasses_not_cached():
    class S(str):
        pass

    s = S("subclassed")
    assert _core._ws_build_message(s, False, False) is not _core._ws_build_message(s, False, False)


def test_cache_keeps_message_alive_and_is_replaced():
    # the cached message is held (its identity cannot be reused while the
    # frame is remembered) and let go when another message replaces it
    msg = "x" * 1000 + "unique"
    first = _core._ws_build_message(msg, False, False)
    del msg
    gc.collect()
    msg2 = "y" * 1000
    second = _core._ws_build_message(msg2, False, False)
    assert second is not first
    assert first[0][4:] == b"x" * 1000 + b"unique"


def test_big_messages_not_kept():
    msg = b"z" * ((1 << 20) + 1)
    a = _core._ws_build_message(msg, True, False)
    assert _core._ws_build_message(msg, True, False) is not a


@pytest.fixture(params=["c", "upstream"])
def switch(request, clean_switch):
    clean_switch.uninstall()
    clean_switch.install(websocket=request.param == "c")
    return request.param


@pytest.mark.parametrize("compress", [False, True])
def test_broadcast_to_clients(switch, compress):
    import tornado.web
    import tornado.websocket

    clients = []
    n = 20

    class Member(tornado.websocket.WebSocketHandler):
        def get_compression_options(self):
            return {} if compress else None

        def open(self):
            clients.append(self)

    messages = ["chat line %d " % i * 30 for i in range(5)] + [b"\x00\xff" * 700, {"k": "v"}]

    async def main():
        app = tornado.web.Application([("/", Member)])
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        try:
            conns = [await tornado.websocket.websocket_connect(
                "ws://127.0.0.1:%d/" % port, compression_options={} if compress else None)
                for _ in range(n)]
            while len(clients) < n:
                await asyncio.sleep(0.01)
            for m in messages:
                futs = [c.write_message(m, binary=isinstance(m, bytes)) for c in clients]
                await asyncio.gather(*futs)
            want = [m if not isinstance(m, dict) else '{"k": "v"}' for m in messages]
            for conn in conns:
                got = [await conn.read_message() for _ in messages]
                assert got == want
                conn.close()
        finally:
            server.stop()

    asyncio.run(main())


def test_broadcast_frames_on_the_wire(clean_switch):
    # raw sockets: every client gets the same bytes, exactly the frames
    import tornado.web
    import tornado.websocket

    clean_switch.uninstall()
    clean_switch.install(websocket=True)
    clients = []

    class Member(tornado.websocket.WebSocketHandler):
        def open(self):
            clients.append(self)

    async def main():
        app = tornado.web.Application([("/", Member)])
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        socks = []
        try:
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", port))
                s.setblocking(False)
                await loop.sock_sendall(s, (
                    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += await loop.sock_recv(s, 4096)
                socks.append((s, buf.partition(b"\r\n\r\n")[2]))
            while len(clients) < 5:
                await asyncio.sleep(0.01)
            msgs = ["hello all", "hello all", b"bin", "é" * 100]
            for m in msgs:
                for c in clients:
                    c.write_message(m, binary=isinstance(m, bytes))
            want = b"".join(_core._ws_build_message(m, isinstance(m, bytes), False)[0] for m in msgs)
            for s, rest in socks:
                data = rest
                while len(data) < len(want):
                    data += await loop.sock_recv(s, 65536)
                assert data == want
                frames = parse_server_frames(data)
                assert [f[0] for f in frames] == [0x81, 0x81, 0x82, 0x81]
                s.close()
        finally:
            server.stop()

    asyncio.run(main())
