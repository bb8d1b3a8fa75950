"""Memory of idle WebSocket connections, and the callback frame loop that
made it smaller (docs/memory.md, "WebSocket connections").

* test_idle_objects_*: the same app under tornado_c with the websocket
  component off (upstream's WebSocketProtocol13) and on; 40 idle
  connections each; the server counts the coroutines and pending Futures
  alive per connection.  Ours waits for frames without a coroutine or a
  Future of its own: only upstream's own chain (the handler Task's
  _execute, get, accept_connection, _accept_connection) is left.
* test_frame_loop_same_as_upstream: what the frame loop's rewrite from a
  coroutine to callbacks must keep -- on_message order, async on_message
  back-pressure, context variables set in open() seen by on_message,
  the handler Task cancelled while the connection is open, get() returning
  only after on_close -- compared with upstream's protocol event by event.
* test_idle_memory_vs_upstream: RSS per idle WebSocket connection, upstream
  Tornado vs tornado_c in the same run (benchmarks/ws_big.py's idle
  scenario, 2,000 connections): a ratio, not a number of this machine.
"""

import json
import os
import socket
import struct
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))
from test_ws_protocol import SERVE, server_pair  # noqa: E402

APP = r'''
import asyncio, collections, contextvars, gc, json
import tornado.web, tornado.websocket

VAR = contextvars.ContextVar("var", default="unset")
EVENTS = {}
OPEN = set()

class WS(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True
    def _ev(self, *ev):
        EVENTS[self.cid].append(list(ev))
    async def get(self, *args, **kwargs):
        self.cid = self.get_argument("id", "")
        EVENTS[self.cid] = []
        VAR.set("get")
        await super().get(*args, **kwargs)
        self._ev("get returned", self.close_code, VAR.get())  # what on_message set
    def open(self):
        self.task = asyncio.current_task()
        OPEN.add(self)
        self._ev("open", VAR.get())
        VAR.set("open")
    def on_message(self, m):
        self._ev("message", m, VAR.get())
        VAR.set(m)
        if m == "cancel":
            asyncio.get_running_loop().call_soon(self.task.cancel)
        elif m == "close":
            self.close(4000, "bye")
        else:
            self.write_message(m)
    def on_close(self):
        OPEN.discard(self)
        self._ev("close", self.close_code, self.close_reason, VAR.get())

class AsyncWS(WS):
    async def on_message(self, m):
        self._ev("start", m, VAR.get())
        await asyncio.sleep(0.02)
        self._ev("end", m)
        WS.on_message(self, m)

class Events(tornado.web.RequestHandler):
    async def get(self):
        cid = self.get_argument("id")
        for _ in range(300):
            evs = EVENTS.get(cid) or []
            if evs and evs[-1][0] == "get returned":
                break
            await asyncio.sleep(0.01)
        self.write(json.dumps(EVENTS.get(cid)))

class Objects(tornado.web.RequestHandler):
    def get(self):
        gc.collect()
        coros = collections.Counter()
        pending = 0
        for o in gc.get_objects():
            if type(o).__name__ == "coroutine":
                coros[o.cr_code.co_name] += 1
            elif isinstance(o, asyncio.Future) and not o.done():
                pending += 1
        self.write(json.dumps({"open": len(OPEN), "coroutines": coros, "pending": pending,
                               "proto": sorted({type(h.ws_connection).__name__ for h in OPEN})}))

ROUTES = [("/ws", WS), ("/async", AsyncWS), ("/events", Events), ("/objects", Objects)]
''' + SERVE

MASK = b"\x11\x22\x33\x44"


def masked(first, payload):
    n = len(payload)
    head = bytes([first, 0x80 | n]) if n < 126 else bytes([first, 0xFE]) + struct.pack("!H", n)
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def connect(port, path, cid):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET " + path.encode() + b"?id=" + cid.encode() + b" HTTP/1.1\r\n"
              b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        assert d, "closed during the handshake"
        buf += d
    assert buf.startswith(b"HTTP/1.1 101"), buf[:80]
    return s, buf.partition(b"\r\n\r\n")[2]


def read_all(s, rest):
    """Everything the server sends until it closes (or resets)."""
    chunks = [rest]
    try:
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass  # reset after an abort: what came is kept
    s.close()
    return b"".join(chunks)


def http_json(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s, b"")
    return json.loads(data.partition(b"\r\n\r\n")[2])


@pytest.fixture(scope="module")
def servers():
    yield from server_pair(APP, "_ws_mem_app.py")


IDLE = 40


def _idle_objects(port):
    socks = [connect(port, "/ws", "idle%d" % i)[0] for i in range(IDLE)]
    try:
        deadline = time.monotonic() + 10
        while True:
            info = http_json(port, "/objects")
            if info["open"] == IDLE or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert info["open"] == IDLE, info
        # the idle connections still work
        s = socks[0]
        s.sendall(masked(0x81, b"still here"))
        assert s.recv(100) == b"\x81\x0astill here"
    finally:
        for s in socks:
            s.close()
    return info


FRAME_LOOP = ("_receive_frame_loop", "_receive_frames_c", "_receive_frames_py", "_receive_frame",
              "_read_bytes")


def test_idle_objects_no_frame_loop_coroutine(servers):
    ref, ours = servers
    a, b = _idle_objects(ref.port), _idle_objects(ours.port)
    assert a["proto"] == ["WebSocketProtocol13"] and b["proto"] == ["_CWebSocketProtocol13"]
    # upstream's protocol waits in its own coroutines for each connection
    assert a["coroutines"].get("_receive_frame_loop", 0) >= IDLE, a
    # ours: none of them, and no more Futures waiting than upstream has
    assert not any(b["coroutines"].get(name) for name in FRAME_LOOP), b
    up_coros = sum(a["coroutines"].values())
    our_coros = sum(b["coroutines"].values())
    assert our_coros <= up_coros - 2 * IDLE, (a, b)
    assert b["pending"] <= a["pending"], (a, b)


def _session(port, path, cid, messages, wait=0.0):
    s, rest = connect(port, path, cid)
    for m in messages:
        s.sendall(masked(0x81, m.encode()))
        if wait:
            time.sleep(wait)
    if "cancel" not in messages and "close" not in messages:
        s.sendall(masked(0x88, struct.pack("!H", 1000)))
    data = read_all(s, rest)
    return data, http_json(port, "/events?id=" + cid)


@pytest.mark.parametrize("path,messages,wait", [
    ("/ws", ["a", "b", "c"], 0.0),
    ("/ws", ["a", "close"], 0.05),
    ("/ws", ["a", "cancel"], 0.05),
    ("/async", ["one", "two", "three"], 0.0),   # back to back: back-pressure keeps the order
    ("/async", ["x", "cancel"], 0.0),
])
def test_frame_loop_same_as_upstream(servers, path, messages, wait):
    ref, ours = servers
    cid = "%s-%s" % (path.strip("/"), "-".join(messages))
    a = _session(ref.port, path, cid, messages, wait)
    b = _session(ours.port, path, cid, messages, wait)
    assert a == b
    events = b[1]
    assert events[0] == ["open", "get"]
    assert events[-1][0] == "get returned"  # get() waits until the end, as upstream
    assert [e for e in events if e[0] == "close"], events
    if path == "/async" and "cancel" not in messages:
        # each on_message finished before the next started
        kinds = [e[0] for e in events if e[0] in ("start", "end")]
        assert kinds == ["start", "end"] * len(messages), events


N_IDLE = 2000
# tornado_c / upstream RSS per idle WebSocket connection.  Measured with
# these 2,000 connections: 0.753x on main's build before the callback frame
# loop, 0.701x after (twice, 13.92 vs 9.77 KiB); at 5,000: 0.79x -> 0.74x
# (docs/memory.md).  The bound fails main's build and leaves the current one
# ~4% of room (RSS without a trim moved by less than 0.1% between runs).
IDLE_RATIO = 0.73


def test_idle_memory_vs_upstream():
    import ws_big

    hard = ws_big.raise_nofile()
    if hard < N_IDLE + 200:
        pytest.skip("fd hard limit %d" % hard)
    up = ws_big.scenario_idle("upstream", N_IDLE, 2)
    tc = ws_big.scenario_idle("tornado_c", N_IDLE, 2)
    msg = "kB per idle WebSocket connection (n=%d): upstream %.2f, tornado_c %.2f" % (
        N_IDLE, up["kb_per_conn"], tc["kb_per_conn"])
    for r in (up, tc):
        assert r["held_by_server"] >= N_IDLE, (r, msg)
    assert up["kb_per_conn"] > 0, msg
    assert tc["kb_per_conn"] <= IDLE_RATIO * up["kb_per_conn"], msg
