"""What a request waiting in its handler keeps under the C server (issue 15):
the delegates that routed it are let go once the message is read (upstream
keeps them, unused, until the response ends), and nothing else changes --
the handler still learns of a client that goes away, and still answers."""

import asyncio
import gc

import tornado.web

from test_http_server import both, no_configure, serve, shutdown  # noqa: F401 (fixture)


def _app(events, fut_box):
    class Poll(tornado.web.RequestHandler):
        async def get(self):
            events.append("waiting")
            fut_box.append(asyncio.get_running_loop().create_future())
            msg = await fut_box[-1]
            self.write(msg)

        def on_connection_close(self):
            events.append("closed")

    return tornado.web.Application([("/poll", Poll)])


async def _waiting(cls):
    """A server of class cls and one client whose GET /poll waits in the
    handler: (server, reader, writer, events, futures)."""
    events, futs = [], []
    server, port = await serve(cls, _app(events, futs))
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
    while not futs:
        await asyncio.sleep(0.01)
    return server, r, w, events, futs


def _delegates():
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is tornado.web._HandlerDelegate)


def test_waiting_request_keeps_no_delegate():
    async def go(cls):
        server, r, w, events, futs = await _waiting(cls)
        kept = _delegates()
        futs[-1].set_result("news")
        data = await asyncio.wait_for(r.readuntil(b"news"), 5)
        w.close()
        await shutdown(server)
        return kept, data.split(b"\r\n")[0], events

    r = both(go)
    assert r["upstream"][0] == 1
    assert r["c"][0] == 0
    assert r["c"][1:] == r["upstream"][1:] == (b"HTTP/1.1 200 OK", ["waiting"])


def test_waiting_handler_told_of_close():
    async def go(cls):
        server, r, w, events, futs = await _waiting(cls)
        w.close()
        for _ in range(200):
            if "closed" in events:
                break
            await asyncio.sleep(0.01)
        futs[-1].set_result("late")
        await asyncio.sleep(0.05)
        await shutdown(server)
        return events

    r = both(go)
    assert r["c"] == r["upstream"] == ["waiting", "closed"]
