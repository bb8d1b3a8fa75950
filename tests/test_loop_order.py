"""The order of callbacks around I/O, on both loops.

asyncio's round (BaseEventLoop._run_once): poll; then the callbacks queued
before the poll, then the I/O callbacks of that poll, then the expired
timers; what all of these queue waits for the next round (and its poll).
So a callback queued before an I/O event was seen runs before that event is
delivered, even when the event is caused by the code that queued it (a task
that writes a request and then starts the task that awaits the reply).

The tornado_c loop's transports call their protocols from inside libuv's
poll; when callbacks were queued before that poll they hold the delivery
back (the read, EOF or error, the write completion) and queue it behind
those callbacks, and the loop runs what the poll's I/O callbacks queue after
the timers of the same poll: the order is asyncio's on both loops.
"""

import asyncio
import socket
import time

import pytest

TIMEOUT = 15


class _Recorder(asyncio.Protocol):
    def __init__(self, loop, order):
        self.loop = loop
        self.order = order
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.order.append(("data", data))
        self.loop.call_soon(self.order.append, ("queued by data_received", data))


async def _connected_pair(loop, order):
    """Our transport on one end of a socketpair, the plain socket on the other."""
    ours, peer = socket.socketpair()
    tr, proto = await loop.create_connection(lambda: _Recorder(loop, order), sock=ours)
    return tr, proto, peer


@pytest.fixture
def order_loop(request):
    from conftest import new_loop

    lp = new_loop(request.param)
    lp.kind = request.param
    yield lp
    if not lp.is_closed():
        lp.run_until_complete(asyncio.sleep(0))
        lp.close()


@pytest.mark.parametrize("order_loop", ["asyncio", "tornado_c"], indirect=True)
def test_callbacks_queued_before_a_read_run_first(order_loop):
    loop = order_loop
    order = []

    async def main():
        tr, proto, peer = await _connected_pair(loop, order)
        await asyncio.sleep(0.01)
        got = loop.create_future()

        def queue_then_send():
            # the data is in our socket before the next poll; the callback
            # was queued before that poll
            loop.call_soon(order.append, "queued before the poll")
            peer.send(b"x")
            loop.call_later(0.05, got.set_result, None)

        loop.call_soon(queue_then_send)
        await got
        tr.close()
        peer.close()

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    assert order == ["queued before the poll", ("data", b"x"),
                     ("queued by data_received", b"x")]


@pytest.mark.parametrize("order_loop", ["asyncio", "tornado_c"], indirect=True)
def test_task_started_after_a_request_sees_the_reply(order_loop):
    # The pattern of a client: write a request, then start the task that
    # waits for the reply.  The reply cannot be delivered before that task
    # ran once (it is seen at the next poll at the earliest), even when the
    # peer answers at once.
    loop = order_loop

    async def main():
        ours, peer = socket.socketpair()
        waiting = {}

        class Client(asyncio.Protocol):
            def data_received(self, data):
                fut = waiting.pop("reply", None)
                if fut is None:
                    order.append(("reply before the waiter", data))
                else:
                    fut.set_result(data)

        order = []
        tr, _ = await loop.create_connection(Client, sock=ours)

        async def wait_reply():
            if order:  # the reply came first: do not wait for it
                return order[-1][1]
            waiting["reply"] = loop.create_future()
            return await waiting["reply"]

        replies = []
        for i in range(5):
            tr.write(b"%d" % i)
            # the peer answers before our loop polls again
            peer.send(peer.recv(16))
            time.sleep(0.001)
            replies.append(await loop.create_task(wait_reply()))
        tr.close()
        peer.close()
        return order, replies

    order, replies = loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    assert order == []
    assert replies == [b"%d" % i for i in range(5)]


@pytest.mark.parametrize("order_loop", ["asyncio", "tornado_c"], indirect=True)
def test_timer_and_read_of_one_poll_run_before_what_they_queue(order_loop):
    loop = order_loop
    order = []

    async def main():
        tr, proto, peer = await _connected_pair(loop, order)
        await asyncio.sleep(0.01)
        done = loop.create_future()

        def arm():
            loop.call_later(0.001, order.append, "timer")
            peer.send(b"y")
            time.sleep(0.01)  # both are due at the next poll
            loop.call_later(0.05, done.set_result, None)

        loop.call_soon(arm)
        await done
        tr.close()
        peer.close()

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    assert order == [("data", b"y"), "timer", ("queued by data_received", b"y")]


@pytest.mark.parametrize("order_loop", ["asyncio", "tornado_c"], indirect=True)
def test_datagram_task_started_after_a_request_sees_the_reply(order_loop):
    loop = order_loop

    class P(asyncio.DatagramProtocol):
        fut = None
        early = 0

        def datagram_received(self, data, addr):
            if self.fut is None or self.fut.done():
                P.early += 1
            else:
                self.fut.set_result(data)

    async def main():
        t1, p1 = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
        t2, p2 = await loop.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0))
        addr = t2.get_extra_info("sockname")

        async def wait():
            p2.fut = loop.create_future()
            return await p2.fut

        got = []
        for i in range(5):
            t1.sendto(b"%d" % i, addr)
            got.append(await loop.create_task(wait()))
        t1.close()
        t2.close()
        return got

    assert loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT)) == [
        b"%d" % i for i in range(5)]
    assert P.early == 0


class _BufferedRecorder(asyncio.BufferedProtocol):
    def __init__(self, loop, order):
        self.loop = loop
        self.order = order
        self.buf = bytearray(64)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        data = bytes(self.buf[:nbytes])
        self.order.append(("data", data))
        self.loop.call_soon(self.order.append, ("queued by data_received", data))

    def eof_received(self):
        self.order.append("eof")

    def connection_lost(self, exc):
        self.order.append(("lost", exc))


class _EofRecorder(_Recorder):
    def eof_received(self):
        self.order.append("eof")

    def connection_lost(self, exc):
        self.order.append(("lost", exc))


@pytest.mark.parametrize("order_loop", ["asyncio", "tornado_c"], indirect=True)
@pytest.mark.parametrize("proto", [_EofRecorder, _BufferedRecorder])
def test_data_and_eof_wait_for_callbacks_already_ready(order_loop, proto):
    # the held-back read of a Protocol and of a BufferedProtocol, then the
    # EOF and connection_lost, all behind the callbacks queued before them
    loop = order_loop
    order = []

    async def main():
        ours, peer = socket.socketpair()
        tr, _ = await loop.create_connection(lambda: proto(loop, order), sock=ours)
        await asyncio.sleep(0.01)
        done = loop.create_future()

        def queue_then_send():
            loop.call_soon(order.append, "queued before the data")
            peer.send(b"z")
            time.sleep(0.01)

        def queue_then_close():
            loop.call_soon(order.append, "queued before the EOF")
            peer.close()
            time.sleep(0.01)
            loop.call_later(0.05, done.set_result, None)

        loop.call_soon(queue_then_send)
        await asyncio.sleep(0.05)
        loop.call_soon(queue_then_close)
        await done
        tr.close()

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    assert order == ["queued before the data", ("data", b"z"), ("queued by data_received", b"z"),
                     "queued before the EOF", "eof", ("lost", None)]

