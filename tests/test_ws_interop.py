"""Interoperability of the WebSocket protocol with the ``websockets`` library
(PyPI): a Tornado server with a websockets client, and websocket_connect
against a websockets server -- with the ``websocket`` component on (C
framing) and off (upstream), compression off and on."""

import asyncio

import pytest

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402

MESSAGES = ["", "hello", "κόσμε €𝄞" * 50, b"", b"\x00\xff" * 40000, "x" * 70000]


@pytest.fixture(params=["c", "upstream"])
def switch(request, clean_switch):
    clean_switch.uninstall()
    clean_switch.install(websocket=request.param == "c")
    return request.param


def _proto_name(switch):
    return "_CWebSocketProtocol13" if switch == "c" else "WebSocketProtocol13"


@pytest.mark.parametrize("compress", [False, True])
def test_tornado_server_websockets_client(switch, compress):
    import tornado.web
    import tornado.websocket

    seen = {}

    class Echo(tornado.websocket.WebSocketHandler):
        def get_compression_options(self):
            return {} if compress else None

        def open(self):
            seen["proto"] = type(self.ws_connection).__name__

        def on_message(self, m):
            self.write_message(m, binary=isinstance(m, bytes))

        def on_ping(self, data):
            seen.setdefault("pings", []).append(data)

        def on_close(self):
            seen["close"] = (self.close_code, self.close_reason)
            seen["closed"].set()

    async def main():
        seen["closed"] = asyncio.Event()
        app = tornado.web.Application([("/", Echo)])
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        try:
            async with ws_connect(
                "ws://127.0.0.1:%d/" % port,
                compression="deflate" if compress else None,
                max_size=None,
            ) as ws:
                assert (ws.protocol.extensions != []) == compress
                for m in MESSAGES:
                    await ws.send(m)
                    assert await ws.recv() == m
                # a fragmented message
                await ws.send(iter(["frag", "ment", "ed"]))
                assert await ws.recv() == "fragmented"
                await asyncio.wait_for(await ws.ping(b"pp"), 10)
                await ws.close(4005, "done here")
            await asyncio.wait_for(seen["closed"].wait(), 10)
        finally:
            server.stop()
        assert seen["proto"] == _proto_name(switch)
        assert seen["pings"] == [b"pp"]
        assert seen["close"] == (4005, "done here")

    asyncio.run(main())


@pytest.mark.parametrize("compress", [False, True])
def test_websocket_connect_to_websockets_server(switch, compress):
    import tornado.websocket

    got = {"pongs": []}

    async def handler(ws):
        async for m in ws:
            if m == "close-me":
                await ws.close(4010, "server says bye")
                return
            await ws.send(m)

    async def main():
        async with ws_serve(
            handler, "127.0.0.1", 0, compression="deflate" if compress else None, max_size=None
        ) as server:
            port = server.sockets[0].getsockname()[1]
            conn = await tornado.websocket.websocket_connect(
                "ws://127.0.0.1:%d/" % port,
                compression_options={} if compress else None,
                max_message_size=1 << 22,
            )
            got["proto"] = type(conn.protocol).__name__
            conn.on_pong = lambda data: got["pongs"].append(data)
            for m in MESSAGES:
                await conn.write_message(m, binary=isinstance(m, bytes))
                assert await conn.read_message() == m
            await conn.write_message({"a": [1, 2]})
            assert await conn.read_message() == '{"a": [1, 2]}'
            conn.ping(b"hi")
            await conn.write_message("close-me")
            assert await conn.read_message() is None
            assert (conn.close_code, conn.close_reason) == (4010, "server says bye")

    asyncio.run(main())
    assert got["proto"] == _proto_name(switch)
    assert got["pongs"] == [b"hi"]
