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


# permessage-deflate parameters negotiated with websockets: a websockets
# client offering them to a Tornado server (upstream answers whatever is
# offered), and a websockets server imposing them on websocket_connect
DEFLATE_PARAMS = [
    dict(server_no_context_takeover=True),
    dict(client_no_context_takeover=True),
    dict(server_max_window_bits=10, client_max_window_bits=9),
    dict(server_no_context_takeover=True, client_no_context_takeover=True,
         server_max_window_bits=11, client_max_window_bits=12),
]


# upstream's answer leaves out the *_no_context_takeover flags it accepts
# (httputil._encode_header drops a parameter without a value), which
# websockets rightly refuses when it asked for server_no_context_takeover;
# the same with the C protocol (see test_deflate_server_no_context_refused)
CLIENT_PARAMS = [
    dict(client_no_context_takeover=True),
    dict(server_max_window_bits=10, client_max_window_bits=9),
    dict(client_no_context_takeover=True, server_max_window_bits=11, client_max_window_bits=12),
]


def test_deflate_server_no_context_refused(switch):
    import tornado.web
    import tornado.websocket
    from websockets.exceptions import NegotiationError
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    class Echo(tornado.websocket.WebSocketHandler):
        def get_compression_options(self):
            return {}

    async def main():
        app = tornado.web.Application([("/", Echo)])
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        try:
            with pytest.raises(NegotiationError):
                async with ws_connect(
                    "ws://127.0.0.1:%d/" % port, compression=None,
                    extensions=[ClientPerMessageDeflateFactory(server_no_context_takeover=True)],
                ):
                    pass
        finally:
            server.stop()

    asyncio.run(main())


@pytest.mark.parametrize("params", CLIENT_PARAMS, ids=lambda p: ",".join(sorted(p)))
def test_deflate_params_websockets_client(switch, params):
    import tornado.web
    import tornado.websocket
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    seen = {}

    class Echo(tornado.websocket.WebSocketHandler):
        def get_compression_options(self):
            return {"compression_level": 9, "mem_level": 7}

        def open(self):
            seen["comp"] = type(self.ws_connection._compressor).__name__

        def on_message(self, m):
            self.write_message(m, binary=isinstance(m, bytes))

    async def main():
        app = tornado.web.Application([("/", Echo)])
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        try:
            async with ws_connect(
                "ws://127.0.0.1:%d/" % port,
                extensions=[ClientPerMessageDeflateFactory(**params)],
                compression=None,
                max_size=None,
            ) as ws:
                ext = ws.protocol.extensions
                assert len(ext) == 1
                for key, value in params.items():
                    assert getattr(ext[0], {"server_max_window_bits": "remote_max_window_bits",
                                            "client_max_window_bits": "local_max_window_bits",
                                            "server_no_context_takeover": "remote_no_context_takeover",
                                            "client_no_context_takeover": "local_no_context_takeover",
                                            }[key]) == value
                for _ in range(2):  # context takeover shows on the second round
                    for m in MESSAGES:
                        await ws.send(m)
                        assert await ws.recv() == m
        finally:
            server.stop()
        want = "_WsDeflater" if switch == "c" else "_PerMessageDeflateCompressor"
        assert seen["comp"] == want

    asyncio.run(main())


@pytest.mark.parametrize("params", DEFLATE_PARAMS, ids=lambda p: ",".join(sorted(p)))
def test_deflate_params_websockets_server(switch, params):
    import tornado.websocket
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    async def handler(ws):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with ws_serve(handler, "127.0.0.1", 0, compression=None, max_size=None,
                            extensions=[ServerPerMessageDeflateFactory(**params)]) as server:
            port = server.sockets[0].getsockname()[1]
            conn = await tornado.websocket.websocket_connect(
                "ws://127.0.0.1:%d/" % port, compression_options={}, max_message_size=1 << 22)
            want = "_WsDeflater" if switch == "c" else "_PerMessageDeflateCompressor"
            assert type(conn.protocol._compressor).__name__ == want
            for _ in range(2):
                for m in MESSAGES:
                    await conn.write_message(m, binary=isinstance(m, bytes))
                    assert await conn.read_message() == m
            conn.close()

    asyncio.run(main())
