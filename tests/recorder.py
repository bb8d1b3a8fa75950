"""The recording protocol the transport tests share (test_loop_tcp.py,
test_loop_tls.py): every protocol call lands in `events`, received bytes in
`data`; futures for connection_made / connection_lost / eof_received, and
wait_bytes(n) until n bytes have arrived."""

import asyncio


class Recorder(asyncio.Protocol):
    """Records the protocol calls; echoes what it receives if echo=True;
    eof_received() returns eof_keep_open; pause_writing/resume_writing are
    recorded ("pause", "resume") only with flow=True."""

    def __init__(self, loop, echo=False, eof_keep_open=False, flow=False):
        self.events = []
        self.flow = flow
        self.data = bytearray()
        self.echo = echo
        self.eof_keep_open = eof_keep_open
        self.transport = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.got_eof = loop.create_future()
        self.waiters = []

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport
        self.made.set_result(None)

    def data_received(self, data):
        assert isinstance(data, bytes)
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.echo:
            self.transport.write(data)
        self._check()

    def eof_received(self):
        self.events.append("eof")
        if not self.got_eof.done():
            self.got_eof.set_result(None)
        return self.eof_keep_open

    def pause_writing(self):
        if self.flow:
            self.events.append("pause")

    def resume_writing(self):
        if self.flow:
            self.events.append("resume")

    def connection_lost(self, exc):
        # a second call is recorded (tests compare `events`) and, as any
        # protocol error, reaches the loop's exception handler here
        self.events.append(("lost", type(exc).__name__ if exc else None))
        self.lost.set_result(exc)

    async def wait_bytes(self, n):
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((n, fut))
        self._check()
        await fut

    def _check(self):
        for n, fut in list(self.waiters):
            if len(self.data) >= n and not fut.done():
                fut.set_result(None)
                self.waiters.remove((n, fut))
