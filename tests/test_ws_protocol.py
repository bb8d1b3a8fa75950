"""Frame-level WebSocket conformance: tornado_c's C framing against upstream's.

The same small app runs twice under ``python -m tornado_c``: once with every
component (the ``websocket`` component installs the C frame reader/writer)
and once with ``TORNADO_C_DISABLE=websocket`` (upstream's
``WebSocketProtocol13``, the reference).  A raw-socket client sends each case
-- valid and invalid frames: framing and lengths, ping/pong, reserved bits,
opcodes, fragmentation, UTF-8 (valid, invalid, split across frames), size
limits, close codes, permessage-deflate (negotiation parameters, context
takeover, levels, limits after decompression, a zip bomb) -- reads every
byte the server sends
back until it closes the connection, then fetches the handler's callbacks
(open, on_message, on_ping, on_pong, on_close with close_code/close_reason).
Both servers must give identical bytes and identical callbacks; a few cases
also pin the expected answer so that two equally broken servers fail too.
"""

import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serverproc import ServerProc  # noqa: E402

APP = r'''
import asyncio, json, sys
import tornado.web, tornado.websocket
from tornado.ioloop import IOLoop

EVENTS = {}
CLOSED = {}

class Echo(tornado.websocket.WebSocketHandler):
    compress = False
    def check_origin(self, origin):
        return True
    def get_compression_options(self):
        return {} if self.compress else None
    def _ev(self, *ev):
        EVENTS.setdefault(self.cid, []).append(list(ev))
    def open(self):
        self.cid = self.get_argument("id")
        CLOSED[self.cid] = False
        EVENTS[self.cid] = []
        EVENTS[self.cid + ":proto"] = type(self.ws_connection).__name__
        EVENTS[self.cid + ":comp"] = [type(self.ws_connection._compressor).__name__,
                                      type(self.ws_connection._decompressor).__name__]
        self._ev("open")
    def on_message(self, m):
        self._ev("message", type(m).__name__, m if isinstance(m, str) else m.hex())
        if isinstance(m, str) and m.startswith("close:"):
            _, code, reason = m.split(":", 2)
            self.close(int(code) if code else None, reason or None)
        elif isinstance(m, str) and m.startswith("ping:"):
            self.ping(m[5:].encode())
        elif isinstance(m, str) and m.startswith("dict:"):
            self.write_message({"k": m[5:]})
        else:
            self.write_message(m, binary=isinstance(m, bytes))
    def on_ping(self, data):
        self._ev("ping", data.hex())
    def on_pong(self, data):
        self._ev("pong", data.hex())
    def on_close(self):
        self._ev("close", self.close_code, self.close_reason)
        CLOSED[self.cid] = True

class Compressed(Echo):
    compress = True

class Deflate9(Echo):
    def get_compression_options(self):
        return {"compression_level": 9, "mem_level": 9}

class Deflate1(Echo):
    def get_compression_options(self):
        return {"compression_level": 1, "mem_level": 1}

class Deflate0(Echo):
    def get_compression_options(self):
        return {"compression_level": 0}

class DeflateBadLevel(Echo):
    def get_compression_options(self):
        return {"compression_level": 42}

class SmallDeflate(Compressed):
    @property
    def max_message_size(self):
        return 1024

class Small(Echo):
    @property
    def max_message_size(self):
        return 1024

class Async(Echo):
    async def on_message(self, m):
        await asyncio.sleep(0.01)
        Echo.on_message(self, m)

class Events(tornado.web.RequestHandler):
    async def get(self):
        cid = self.get_argument("id")
        for _ in range(500 if self.get_argument("wait", "1") == "1" else 0):
            if CLOSED.get(cid):
                break
            await asyncio.sleep(0.01)
        self.write(json.dumps({"events": EVENTS.get(cid), "closed": CLOSED.get(cid),
                               "proto": EVENTS.get(cid + ":proto"),
                               "comp": EVENTS.get(cid + ":comp")}))

ROUTES = [("/ws", Echo), ("/deflate", Compressed), ("/small", Small),
          ("/async", Async), ("/events", Events),
          ("/deflate9", Deflate9), ("/deflate1", Deflate1),
          ("/deflate0", Deflate0), ("/deflate_badlevel", DeflateBadLevel),
          ("/small_deflate", SmallDeflate)]
'''

# The end of every test app here: serve ROUTES on a free port, say READY.
SERVE = r'''
async def main():
    app = tornado.web.Application(ROUTES)
    server = app.listen(0, "127.0.0.1")
    port = list(server._sockets.values())[0].getsockname()[1]
    print("READY %d" % port, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
'''
APP += SERVE

MASK = b"\x37\xfa\x21\x3d"


def frame(first, payload=b"", mask=MASK, length=None, ext=None):
    """A client frame; `ext` forces the length encoding (7, 16 or 64)."""
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if ext is None:
        ext = 7 if n < 126 else 16 if n <= 0xFFFF else 64
    if ext == 7:
        head = struct.pack("BB", first, n | mbit)
    elif ext == 16:
        head = struct.pack("!BBH", first, 126 | mbit, n)
    else:
        head = struct.pack("!BBQ", first, 127 | mbit, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def text(s, fin=True, rsv=0):
    return frame((0x80 if fin else 0) | rsv | 1, s.encode() if isinstance(s, str) else s)


def binary(b, fin=True, rsv=0):
    return frame((0x80 if fin else 0) | rsv | 2, b)


def cont(b, fin=True, rsv=0):
    return frame((0x80 if fin else 0) | rsv | 0, b.encode() if isinstance(b, str) else b)


def close(code=1000, reason=b""):
    return frame(0x88, b"" if code is None else struct.pack("!H", code) + reason)


def ping(b=b""):
    return frame(0x89, b)


def pong(b=b""):
    return frame(0x8A, b)


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_seq(messages, persistent=True, wbits=15, level=6, final=False):
    """Payloads of successive compressed messages (a client compressor with
    or without context takeover; final: end each with a final block)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = []
    for m in messages:
        if not persistent:
            c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
        if final:
            out.append(c.compress(m) + c.flush(zlib.Z_FINISH))
            c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
            continue
        d = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert d.endswith(b"\x00\x00\xff\xff")
        out.append(d[:-4])
    return out


def ztext(payloads):
    return b"".join(text(p, rsv=0x40) for p in payloads)


BIG = bytes(range(256)) * 274  # 70144 bytes: 64-bit length
REPEAT = [b"the same message, again and again " * 4] * 3

# name -> (path, chunks (bytes, or a list sent one by one), end with EOF
# instead of waiting for the server to close)
CASES = {
    "text": ("/ws", [text("hello") + close()]),
    "binary": ("/ws", [binary(bytes(range(256))) + close()]),
    "empty": ("/ws", [text("") + binary(b"") + close()]),
    "dict": ("/ws", [text("dict:v") + close()]),
    "len125": ("/ws", [binary(b"a" * 125) + close()]),
    "len126": ("/ws", [binary(b"b" * 126) + close()]),
    "len65535": ("/ws", [binary(b"c" * 65535) + close()]),
    "len64bit": ("/ws", [binary(BIG) + close()]),
    "len_nonminimal": ("/ws", [frame(0x82, b"abc", ext=64) + frame(0x81, b"xy", ext=16) + close()]),
    "unmasked": ("/ws", [frame(0x81, b"plain", mask=None) + close()]),
    "pipelined": ("/ws", [b"".join(text("m%d" % i) for i in range(50)) + close()]),
    # frames queued in the C reader ahead of a verdict (handed out one by
    # one, the verdict after the last of them)
    "pipelined_then_rsv2": ("/ws", [b"".join(text("q%d" % i) for i in range(20)) + text("r", rsv=0x20) + close()]),
    "pipelined_then_too_big": ("/small", [b"".join(binary(b"%d" % i) for i in range(12)) + binary(b"x" * 1025) + close()]),
    "pipelined_then_close": ("/ws", [b"".join(binary(b"c%d" % i) for i in range(10)) + close(1001) + text("after")]),
    "bytewise": ("/ws", [list(bytes([b]) for b in text("slow") + binary(b"\x00" * 130) + close())]),
    "ping": ("/ws", [ping(b"abc") + close()]),
    "ping_empty": ("/ws", [ping() + close()]),
    "ping125": ("/ws", [ping(b"p" * 125) + close()]),
    "ping126": ("/ws", [frame(0x89, b"p" * 126)]),
    "pong_unsolicited": ("/ws", [pong(b"u") + close()]),
    "server_ping": ("/ws", [text("ping:srv") + pong(b"srv") + close()]),
    "many_pings": ("/ws", [b"".join(ping(b"%d" % i) for i in range(20)) + close()]),
    "frag_text": ("/ws", [text("hel", fin=False) + cont("lo") + close()]),
    "frag_binary3": ("/ws", [binary(b"a", fin=False) + cont(b"b", fin=False) + cont(b"c") + close()]),
    "frag_ping_inside": ("/ws", [text("a", fin=False) + ping(b"x") + cont("b") + close()]),
    "frag_empty_parts": ("/ws", [text("", fin=False) + cont("", fin=False) + cont("") + close()]),
    "cont_without_start": ("/ws", [cont("x") + close()]),
    "new_msg_in_frag": ("/ws", [text("a", fin=False) + text("b") + close()]),
    "ping_not_fin": ("/ws", [frame(0x09, b"x") + close()]),
    "close_not_fin": ("/ws", [frame(0x08, b"") + close()]),
    "rsv1": ("/ws", [text("r", rsv=0x40) + close()]),
    "rsv2": ("/ws", [text("r", rsv=0x20) + close()]),
    "rsv3": ("/ws", [text("r", rsv=0x10) + close()]),
    "rsv_on_ping": ("/ws", [frame(0xC9, b"") + close()]),
    "opcode3": ("/ws", [frame(0x83, b"x") + close()]),
    "opcode7": ("/ws", [frame(0x87, b"") + close()]),
    "opcode11": ("/ws", [frame(0x8B, b"x") + close()]),
    "opcode15": ("/ws", [frame(0x8F, b"") + close()]),
    "opcode3_fragmented": ("/ws", [frame(0x03, b"x") + cont("y") + close()]),
    "utf8_valid": ("/ws", [text("κόσμε €𝄞") + close()]),
    "utf8_invalid_ff": ("/ws", [text(b"ab\xff") + close()]),
    "utf8_overlong": ("/ws", [text(b"\xc0\x80") + close()]),
    "utf8_surrogate": ("/ws", [text(b"\xed\xa0\x80") + close()]),
    "utf8_too_high": ("/ws", [text(b"\xf4\x90\x80\x80") + close()]),
    "utf8_truncated": ("/ws", [text(b"ok\xe2\x82") + close()]),
    "utf8_split_frames": ("/ws", [text(b"a\xe2", fin=False) + cont(b"\x82", fin=False) + cont(b"\xacz") + close()]),
    "utf8_invalid_first_fragment": ("/ws", [text(b"\xff", fin=False) + cont(b"fine") + close()]),
    "utf8_binary_not_checked": ("/ws", [binary(b"\xff\xfe") + close()]),
    "close_empty": ("/ws", [close(None)]),
    "close_code": ("/ws", [close(1001)]),
    "close_reason": ("/ws", [close(4000, "bye é".encode())]),
    "close_one_byte": ("/ws", [frame(0x88, b"\x03")]),
    "close_bad_reason": ("/ws", [close(1000, b"\xff")]),
    "close_then_more": ("/ws", [close(1000) + text("after")]),
    "server_close": ("/ws", [text("close:4001:done"), close(4001)]),
    "server_close_nocode": ("/ws", [text("close::"), close(None)]),
    "limit_ok": ("/small", [binary(b"x" * 1024) + close()]),
    "limit_over": ("/small", [binary(b"x" * 1025) + close()]),
    "limit_header_only": ("/small", [frame(0x82, b"", length=1 << 20)[:4]]),
    "limit_fragments": ("/small", [binary(b"x" * 600, fin=False) + cont(b"y" * 600) + close()]),
    "limit_ping_counts_fragments": ("/small", [binary(b"x" * 1000, fin=False) + ping(b"p" * 30) + close()]),
    "limit_huge_64bit": ("/ws", [frame(0x82, b"", length=(1 << 63) + 5)[:10]]),
    "truncated_header": ("/ws", [b"\x81"], True),
    "truncated_length": ("/ws", [b"\x82\xfe\x01"], True),
    "truncated_mask": ("/ws", [b"\x82\x85\x01\x02"], True),
    "truncated_payload": ("/ws", [binary(b"12345")[:-2]], True),
    "eof_after_message": ("/ws", [text("last")], True),
    "async_order": ("/async", [b"".join(text("a%d" % i) for i in range(5)) + close()]),
    "async_pipelined": ("/async", [b"".join(text("p%d" % i) for i in range(30)) + close()]),
    "deflate_text": ("/deflate", [text(deflate(b"hello hello hello"), rsv=0x40) + close()]),
    "deflate_uncompressed_frame": ("/deflate", [text("plain") + close()]),
    "deflate_binary_big": ("/deflate", [binary(deflate(BIG), rsv=0x40) + close()]),
    "deflate_fragmented": (
        "/deflate",
        [(lambda d: text(d[:5], fin=False, rsv=0x40) + cont(d[5:]))(deflate(b"fragmented " * 20)) + close()],
    ),
    "deflate_rsv1_on_continuation": ("/deflate", [text("a", fin=False) + cont("b", rsv=0x40) + close()]),
    "deflate_rsv2": ("/deflate", [text("a", rsv=0x20) + close()]),
    "deflate_rsv1_ping": ("/deflate", [frame(0xC9, b"") + close()]),
    "deflate_garbage": ("/deflate", [text(b"\xff\xff\xff\xff", rsv=0x40) + close()]),
    "deflate_invalid_utf8": ("/deflate", [text(deflate(b"\xff"), rsv=0x40) + close()]),
    "deflate_server_close": ("/deflate", [text(deflate(b"close:4002:z"), rsv=0x40), close(4002)]),
    # permessage-deflate: negotiation (the offers are in OFFERS below),
    # context takeover both ways, levels, limits after decompression
    "pmd_context_takeover": ("/deflate", [ztext(deflate_seq(REPEAT)) + close()]),
    "pmd_server_no_context": ("/deflate", [ztext(deflate_seq(REPEAT)) + close()]),
    "pmd_client_no_context": ("/deflate", [ztext(deflate_seq(REPEAT, persistent=False)) + close()]),
    "pmd_server_wbits10": ("/deflate", [ztext(deflate_seq(REPEAT)) + binary(deflate(BIG), rsv=0x40) + close()]),
    "pmd_client_wbits9": ("/deflate", [ztext(deflate_seq(REPEAT + [BIG], wbits=9)) + close()]),
    "pmd_client_wbits_novalue": ("/deflate", [ztext(deflate_seq(REPEAT)) + close()]),
    "pmd_all_four": ("/deflate", [ztext(deflate_seq(REPEAT, persistent=False, wbits=12)) + close()]),
    "pmd_server_wbits8": ("/deflate", [ztext(deflate_seq(REPEAT)) + close()]),
    "pmd_server_wbits8_no_context": ("/deflate", [ztext(deflate_seq(REPEAT)) + close()]),
    "pmd_client_wbits8": ("/deflate", [ztext(deflate_seq(REPEAT, wbits=9)) + close()]),
    "pmd_wbits16": ("/deflate", [close()]),
    "pmd_wbits_not_int": ("/deflate", [close()]),
    "pmd_unknown_param": ("/deflate", [close()]),
    "pmd_second_offer": ("/deflate", [ztext(deflate_seq(REPEAT)) + close()]),
    "pmd_other_extension_only": ("/deflate", [text("plain") + close()]),
    "pmd_level9": ("/deflate9", [ztext(deflate_seq(REPEAT + [BIG])) + close()]),
    "pmd_level1": ("/deflate1", [ztext(deflate_seq(REPEAT + [BIG])) + close()]),
    "pmd_level0_small": ("/deflate0", [ztext(deflate_seq([b"tiny", b"x" * 300])) + close()]),
    "pmd_bad_level": ("/deflate_badlevel", [close()]),
    "pmd_bad_level_no_context": ("/deflate_badlevel", [ztext(deflate_seq([b"a"])) + close()]),
    "pmd_empty_message": ("/deflate", [ztext(deflate_seq([b"", b"", b"x"])) + close()]),
    "pmd_unicode": ("/deflate", [ztext(deflate_seq(["κόσμε €𝄞 ".encode() * 40])) + close()]),
    "pmd_dict": ("/deflate", [ztext(deflate_seq([b"dict:value"])) + close()]),
    "pmd_binary_frag3": (
        "/deflate",
        [(lambda d: binary(d[:3], fin=False, rsv=0x40) + cont(d[3:9], fin=False) + cont(d[9:]))(
            deflate(bytes(range(256)) * 8)) + close()],
    ),
    "pmd_frag_ping_inside": (
        "/deflate",
        [(lambda d: text(d[:4], fin=False, rsv=0x40) + ping(b"in") + cont(d[4:]))(
            deflate(b"interleaved " * 10)) + close()],
    ),
    "pmd_compressed_ping": ("/deflate", [frame(0xC9, deflate(b"zipped")) + close()]),
    "pmd_final_block": ("/deflate", [ztext(deflate_seq([b"one", b"two"], final=True)) + close()]),
    "pmd_garbage_after_valid": ("/deflate", [ztext(deflate_seq([b"ok"])) + text(b"\x07\xff\x00", rsv=0x40) + close()]),
    "pmd_limit_exact": ("/small_deflate", [ztext(deflate_seq([b"a" * 1024])) + close()]),
    "pmd_limit_after_decompress": ("/small_deflate", [ztext(deflate_seq([b"a" * 128, b"a" * 1025])) + close()]),
    "pmd_limit_compressed_too_big": ("/small_deflate", [text(bytes(range(256)) * 5, rsv=0x40) + close()]),
    "pmd_limit_fragmented": (
        "/small_deflate",
        [(lambda d: text(d[:10], fin=False, rsv=0x40) + cont(d[10:]))(deflate(b"b" * 5000)) + close()],
    ),
    "pmd_bomb": ("/deflate", [binary(deflate(bytes(16 << 20)), rsv=0x40) + close()]),
}

# the Sec-WebSocket-Extensions offer of a case (default for the deflate
# paths: "permessage-deflate")
OFFERS = {
    "pmd_server_no_context": "permessage-deflate; server_no_context_takeover",
    "pmd_client_no_context": "permessage-deflate; client_no_context_takeover",
    "pmd_server_wbits10": "permessage-deflate; server_max_window_bits=10",
    "pmd_client_wbits9": "permessage-deflate; client_max_window_bits=9",
    "pmd_client_wbits_novalue": "permessage-deflate; client_max_window_bits",
    "pmd_all_four": ("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                     "server_max_window_bits=11; client_max_window_bits=12"),
    "pmd_server_wbits8": "permessage-deflate; server_max_window_bits=8",
    "pmd_server_wbits8_no_context": "permessage-deflate; server_max_window_bits=8; server_no_context_takeover",
    "pmd_client_wbits8": "permessage-deflate; client_max_window_bits=8",
    "pmd_wbits16": "permessage-deflate; client_max_window_bits=16",
    "pmd_wbits_not_int": "permessage-deflate; server_max_window_bits=ten",
    "pmd_unknown_param": "permessage-deflate; foo=1",
    "pmd_second_offer": "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=12",
    "pmd_other_extension_only": "x-webkit-deflate-frame",
    "pmd_bad_level_no_context": "permessage-deflate; server_no_context_takeover",
}

# negotiation failures: the server gives up during the handshake
NO_OPEN = {"pmd_server_wbits8", "pmd_wbits16", "pmd_wbits_not_int", "pmd_unknown_param",
           "pmd_bad_level", "pmd_server_wbits8_no_context", "pmd_bad_level_no_context"}

# a few cases with their known answers (server frames are unmasked)
EXPECTED_BYTES = {
    "text": b"\x81\x05hello\x88\x02\x03\xe8",
    "ping": b"\x8a\x03abc\x88\x02\x03\xe8",
    "rsv1": b"",
    "limit_over": b"\x88\x11\x03\xf1message too big",
    "close_reason": b"\x88\x02\x0f\xa0",
    "close_empty": b"\x88\x00",
    "utf8_invalid_ff": b"",
}


def handshake(path, cid, offer):
    ext = b"Sec-WebSocket-Extensions: " + offer.encode() + b"\r\n" if offer else b""
    return (
        b"GET " + path.encode() + b"?id=" + cid.encode() + b" HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + ext + b"\r\n"
    )


# Cases after which the server waits for more bytes (a frame header cut
# short) and neither side closes: what the server sent within QUIET_WAIT
# seconds of silence is compared, instead of waiting for the 20 s timeout.
WAITING = {"limit_header_only"}
QUIET_WAIT = 2


def run_case(port, name, case):
    path, chunks = case[0], case[1]
    eof = len(case) > 2 and case[2]
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    offer = OFFERS.get(name.split("-")[0])
    if offer is None and ("deflate" in path):
        offer = "permessage-deflate"
    s.sendall(handshake(path, name, offer))
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            d = s.recv(65536)
        except OSError:
            d = b""
        if not d:  # the server gave up during the handshake
            s.close()
            return buf, [], b""
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    ext = [l for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-extensions")]
    got = [rest]
    if name in WAITING:
        s.settimeout(QUIET_WAIT)
    if not status.startswith(b"HTTP/1.1 101"):
        # an HTTP error answer on a kept-alive connection: take its body
        s.settimeout(0.5)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got.append(d)
        except OSError:
            pass
        s.close()
        return status, ext, b"".join(got)

    def reader():
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                got.append(d)
        except OSError:  # reset after the server aborted: what came is kept
            return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for chunk in chunks:
            for piece in chunk if isinstance(chunk, list) else [chunk]:
                s.sendall(piece)
                if isinstance(chunk, list):
                    time.sleep(0.002)
            time.sleep(0.05)  # let the server answer each chunk on its own
        if eof:
            time.sleep(0.2)
            s.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server closed first (abort)
    t.join(20)
    assert not t.is_alive(), "server did not close the connection"
    s.close()
    return status, ext, b"".join(got)


def events(port, cid, wait=True):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"GET /events?id=" + cid.encode() + (b"" if wait else b"&wait=0") +
              b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    return json.loads(data.partition(b"\r\n\r\n")[2])


def server_pair(app_source, suffix):
    """Yield (upstream's protocol, ours): the app in two server processes,
    one with the websocket component off."""
    fd, app = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(app_source)
    ref = ServerProc("tornado_c", app=app, env={"TORNADO_C_DISABLE": "websocket"})
    try:
        ours = ServerProc("tornado_c", app=app)
    except BaseException:
        ref.cleanup()
        raise
    yield ref, ours
    ref.cleanup()
    ours.cleanup()
    os.unlink(app)


@pytest.fixture(scope="module")
def servers():
    yield from server_pair(APP, "_ws_app.py")


@pytest.mark.parametrize("name", list(CASES))
def test_case_same_as_upstream(servers, name):
    ref, ours = servers
    a = run_case(ref.port, name, CASES[name])
    b = run_case(ours.port, name, CASES[name])
    if name in NO_OPEN:
        assert a == b
        assert not a[0].startswith(b"HTTP/1.1 101")
        ea, eb = events(ref.port, name, False), events(ours.port, name, False)
        assert ea["events"] is None and eb["events"] is None
        return
    ea, eb = events(ref.port, name), events(ours.port, name)
    assert ea["proto"] == "WebSocketProtocol13"
    assert eb["proto"] == "_CWebSocketProtocol13"
    assert a[0] == b[0] == b"HTTP/1.1 101 Switching Protocols"
    assert a[1] == b[1]
    assert a[2] == b[2], "bytes differ: upstream %r, tornado_c %r" % (a[2][:200], b[2][:200])
    assert ea["events"] == eb["events"]
    assert ea["closed"] and eb["closed"]
    if a[1]:  # permessage-deflate negotiated: zlib from C, upstream's Python objects
        assert eb["comp"] == ["_WsDeflater", "_WsInflater"]
        assert ea["comp"] == ["_PerMessageDeflateCompressor", "_PerMessageDeflateDecompressor"]
    else:
        assert ea["comp"] == eb["comp"] == ["NoneType", "NoneType"]
    if name in EXPECTED_BYTES:
        assert b[2] == EXPECTED_BYTES[name]


def test_expected_callbacks(servers):
    _ref, ours = servers
    # pins a few callback sequences (both servers were compared above)
    for name, want in {
        "frag_text": [["open"], ["message", "str", "hello"], ["close", 1000, None]],
        "utf8_split_frames": [["open"], ["message", "str", "a€z"], ["close", 1000, None]],
        "utf8_invalid_first_fragment": [["open"], ["close", None, None]],
        "close_reason": [["open"], ["close", 4000, "bye é"]],
        "limit_ping_counts_fragments": [["open"], ["close", None, None]],
        "server_ping": [["open"], ["message", "str", "ping:srv"], ["pong", b"srv".hex()], ["close", 1000, None]],
    }.items():
        run_case(ours.port, name + "-pin", CASES[name])
        assert events(ours.port, name + "-pin")["events"] == want, name
