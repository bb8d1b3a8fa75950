"""Real asyncio libraries over TLS on both loops: aiohttp (client and server,
HTTPS) and websockets (wss).  Skipped when the library is not installed (they
are in the `test` extra)."""

import asyncio
import socket

import pytest

from test_loop_tcp import loop, run  # noqa: F401  (the both-loops fixture)
from test_loop_tls import HOST, client_ctx, server_ctx


def test_aiohttp_https_client_and_server(loop):
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    async def hello(request):
        body = await request.read()
        return web.Response(text="hello %s %d %s" % (request.method, len(body),
                                                      request.secure))

    async def stream(request):
        resp = web.StreamResponse()
        await resp.prepare(request)
        for i in range(100):
            await resp.write(b"%06d" % i * 1000)
        await resp.write_eof()
        return resp

    async def main():
        app = web.Application()
        app.router.add_get("/", hello)
        app.router.add_post("/", hello)
        app.router.add_get("/stream", stream)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx())
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        url = "https://127.0.0.1:%d" % port
        results = []
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/", ssl=client_ctx(),
                                   server_hostname=HOST) as resp:
                results.append((resp.status, await resp.text()))
            async with session.post(url + "/", data=b"z" * 200000, ssl=client_ctx(),
                                    server_hostname=HOST) as resp:
                results.append((resp.status, await resp.text()))
            async with session.get(url + "/stream", ssl=client_ctx(),
                                   server_hostname=HOST) as resp:
                body = await resp.read()
                results.append((resp.status, len(body), body[:12]))
            # a certificate the client does not trust
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(url + "/", ssl=True)
        await runner.cleanup()
        return results

    results = run(loop, main())
    assert results == [(200, "hello GET 0 True"), (200, "hello POST 200000 True"),
                       (200, 600000, b"000000000000")]


def test_websockets_wss(loop):
    pytest.importorskip("websockets", minversion="13")
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        got = []
        async with serve(echo, "127.0.0.1", port, ssl=server_ctx()):
            async with connect("wss://127.0.0.1:%d" % port, ssl=client_ctx(),
                               server_hostname=HOST) as ws:
                for msg in ("text", b"\x00binary" * 1000, "last"):
                    await ws.send(msg)
                    got.append(await ws.recv())
        return got

    assert run(loop, main()) == ["text", b"\x00binary" * 1000, "last"]
