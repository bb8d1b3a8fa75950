"""The idle (header) timeout of the C server's connections: one list and one
timer per (loop, timeout) for all waiting connections (csrc/http/idle.c),
against upstream's per-read timeout."""

import asyncio

from test_http_server import both, no_configure, serve, shutdown  # noqa: F401 (fixture)

import tornado_c.loop


async def _client(port, delay, requests, gap=0.15):
    """After `delay`, one connection sending `requests` keep-alive requests
    `gap` apart; returns how long after its last response the server
    closed it."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(delay)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        buf = b""
        for i in range(requests):
            if i:
                await asyncio.sleep(gap)
            w.write(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            while b"hello /%d" % i not in buf:
                chunk = await asyncio.wait_for(r.read(65536), 5)
                assert chunk, "closed while active (request %d)" % i
                buf += chunk
        last = loop.time()
        rest = await asyncio.wait_for(r.read(), 5)
        assert rest == b""
        return loop.time() - last
    finally:
        w.close()


def test_idle_timeouts_per_connection_and_server():
    # two servers with different timeouts on one loop; connections whose
    # waits start at different times; one kept busy past its server's
    # timeout: each is closed its own timeout after its last response
    async def go(cls):
        s1, p1 = await serve(cls, idle_connection_timeout=0.4)
        s2, p2 = await serve(cls, idle_connection_timeout=0.8)
        try:
            return await asyncio.gather(
                _client(p1, 0, 1), _client(p1, 0.1, 1), _client(p1, 0.25, 1),
                _client(p1, 0, 5), _client(p2, 0, 1), _client(p2, 0.2, 2))
        finally:
            await shutdown(s1)
            await shutdown(s2)

    r = both(go)
    for name, idles in r.items():
        for idle, timeout in zip(idles, (0.4, 0.4, 0.4, 0.4, 0.8, 0.8)):
            assert timeout - 0.05 < idle < timeout + 0.6, (name, idles)


def test_idle_list_holds_no_timer_once_connections_close():
    # after the last connection closes, the server's loop has no idle timer
    # pending (the list's timer is cancelled with it)
    async def go():
        from tornado_c import httpserver as chs

        s, p = await serve(chs.HTTPServer, idle_connection_timeout=3600)
        r, w = await asyncio.open_connection("127.0.0.1", p)
        w.write(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        await r.readuntil(b"hello /1")
        with_conn = _pending_timers(asyncio.get_running_loop())
        w.close()
        await shutdown(s)
        await asyncio.sleep(0.05)
        return with_conn, _pending_timers(asyncio.get_running_loop())

    loop = tornado_c.loop.new_event_loop()
    try:
        with_conn, pending = loop.run_until_complete(go())
    finally:
        loop.close()
    assert (with_conn, pending) == (1, 0)


def _pending_timers(loop):
    """TimerHandles held by the live idle lists of `loop` and not cancelled
    (other tests' loops may have left theirs)"""
    import gc

    from tornado_c import _core

    lists = [il for il in gc.get_objects() if type(il) is _core._HTTPIdleList
             and any(o is loop for o in gc.get_referents(il))]
    return sum(1 for il in lists for o in gc.get_referents(il)
               if type(o).__name__ == "TimerHandle" and not o.cancelled())
