"""Debug build (TORNADO_C_DEBUG=1): every libuv handle the loop opens is
closed again.  Skipped on a release build: this file builds nothing."""
import asyncio
import gc
import socket

import pytest

from tornado_c import _core

pytestmark = pytest.mark.skipif(not _core.DEBUG_BUILD, reason="not a TC_DEBUG build")


def counts():
    gc.collect()
    return _core._debug_counts()


def test_handles_return_to_zero_after_close():
    from tornado_c.loop import EventLoop

    base = counts()
    loops = [EventLoop() for _ in range(3)]
    assert counts()["handles"] > base["handles"]
    a, b = socket.socketpair()
    for lp in loops:
        lp.add_reader(a.fileno(), lambda: None)
        lp.call_later(10, print)
        lp.call_soon(lp.stop)
        lp.run_forever()
        lp.run_until_complete(asyncio.sleep(0.001))
    for lp in loops:
        lp.close()
    a.close()
    b.close()
    assert counts() == base


def test_handles_return_to_zero_without_close():
    from tornado_c.loop import EventLoop

    base = counts()
    lp = EventLoop()
    lp.call_soon(lp.stop)
    lp.run_forever()
    with pytest.warns(ResourceWarning):
        del lp
        gc.collect()
    assert counts() == base


def test_datagram_and_tls_handles_return_to_zero():
    import os
    import ssl

    import tornado.test

    from tornado_c.loop import EventLoop

    d = os.path.dirname(tornado.test.__file__)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(os.path.join(d, "test.crt"), os.path.join(d, "test.key"))
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    base = counts()
    lp = EventLoop()
    idle = counts()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, tr):
            self.tr = tr

        def datagram_received(self, data, addr):
            self.tr.sendto(data, addr)

    async def main():
        str_, _ = await lp.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        got = lp.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.set_result(data)

        ctr, _ = await lp.create_datagram_endpoint(
            Client, remote_addr=str_.get_extra_info("sockname"))
        ctr.sendto(b"x")
        assert await got == b"x"
        assert counts()["handles"] == idle["handles"] + 2
        ctr.close()
        str_.close()

        async def handle(reader, writer):
            writer.write(await reader.read(5))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=cctx)
        writer.write(b"hello")
        assert await reader.read() == b"hello"
        writer.close()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)
        assert counts() == idle

    lp.run_until_complete(main())
    # a datagram endpoint left open is released by close()
    lp.run_until_complete(lp.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                      local_addr=("127.0.0.1", 0)))
    lp.close()
    assert counts() == base
