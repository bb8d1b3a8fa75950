"""Big and fragmented WebSocket messages across stream reads, and
max_message_size / max_buffer_size at their boundaries: tornado_c's C frame
reader (csrc/websocket/reader.c) against upstream's WebSocketProtocol13.

As tests/test_ws_protocol.py (whose client and app this reuses): the same
app runs under ``python -m tornado_c`` with every component and with
``TORNADO_C_DISABLE=websocket``; each case must give identical bytes back
and identical handler callbacks.  The cases here split headers and payloads
at awkward places (one byte, mid-length, mid-mask, odd chunk sizes), so a
frame reaches the reader in many stream reads.
"""

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_ws_protocol as wp  # noqa: E402
from test_ws_protocol import binary, close, cont, frame, ping, text  # noqa: E402

EXTRA = r'''
class Big(Echo):
    @property
    def max_message_size(self):
        return 16 << 20
    def on_message(self, m):
        # which reader runs: the C one is the stream's consumer (a C stream
        # attribute; upstream's reader leaves it False)
        key = self.cid + ":proto"
        if ":" not in EVENTS[key]:
            EVENTS[key] += ":consumer=%s" % getattr(self.ws_connection.stream, "_has_consumer", None)
        Echo.on_message(self, m)

class SmallBuffer(Echo):
    # a stream buffer smaller than the message limit: a frame that does not
    # fit fails as upstream's IOStream does ("Reached maximum read buffer size")
    @property
    def max_message_size(self):
        return 1 << 20
    def open(self):
        self.ws_connection.stream.max_buffer_size = 200000
        Echo.open(self)

'''

APP = wp.APP.replace("ROUTES = [", EXTRA + "ROUTES = [").replace(
    '("/small", Small),', '("/small", Small), ("/big", Big), ("/buf", SmallBuffer),'
)
assert "/big" in APP

_rnd = random.Random(12)
DATA_1M = bytes(_rnd.getrandbits(8) for _ in range(1 << 20))
TEXT_300K = ("naïve €uro 𝄞 " * 20000)[:100000].encode()  # multi-byte, ~300 KB


def pieces(data, size):
    """data cut into `size`-byte pieces, each sent after a short pause."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def header_split(fr):
    """A frame with a 64-bit length sent as 1 + 3 + 6 + 2 + 2 bytes of
    header (mid-length and mid-mask), then the payload in 4 pieces."""
    head, body = fr[:14], fr[14:]
    q = len(body) // 4 + 1
    return [head[:1], head[1:4], head[4:10], head[10:12], head[12:14]] + pieces(body, q)


BIG_FRAG = [b"a" * 100000, b"b" * 100001, b"c" * 99999]

CASES = {
    "big_1m_one_write": ("/big", [binary(DATA_1M) + close()]),
    "big_1m_odd_pieces": ("/big", [pieces(binary(DATA_1M), 7919) + [close()]]),
    "big_header_split": ("/big", [header_split(binary(DATA_1M[:70000])) + [close()]]),
    "big_text_pieces": ("/big", [pieces(text(TEXT_300K), 4099) + [close()]]),
    "big_text_split_in_char": (
        # the first piece ends inside a 4-byte character
        # (14 header bytes: 64-bit length and mask)
        "/big", [(lambda f, k: [f[:k], f[k:]])(text(TEXT_300K), 14 + TEXT_300K.index("𝄞".encode()) + 2)
                 + [close()]],
    ),
    "big_after_small_in_one_read": (
        "/big", [text("s1") + binary(DATA_1M[:200000]) + text("s2") + close()],
    ),
    "big_fragments_with_ping": (
        "/big",
        [pieces(binary(BIG_FRAG[0], fin=False) + ping(b"in") + cont(BIG_FRAG[1], fin=False)
                + cont(BIG_FRAG[2]) + close(), 5003)],
    ),
    "big_fragmented_text_split_char": (
        "/big",
        [pieces(text(TEXT_300K[:150001], fin=False) + cont(TEXT_300K[150001:]) + close(), 65536)],
    ),
    "many_small_fragments": (
        "/big", [b"".join([binary(b"x" * 10, fin=False)] + [cont(b"%d" % i, fin=False) for i in range(300)]
                          + [cont(b"end")]) + close()],
    ),
    "big_truncated_then_eof": ("/big", [binary(DATA_1M)[:500000]], True),
    # max_message_size = 1024 (/small)
    "limit_exact": ("/small", [binary(b"x" * 1024) + close()]),
    "limit_exact_pieces": ("/small", [pieces(binary(b"x" * 1024), 100) + [close()]]),
    "limit_one_over": ("/small", [binary(b"x" * 1025) + close()]),
    "limit_one_over_header_only": ("/small", [frame(0x82, b"", length=1025)[:8]]),
    "limit_fragments_exact": ("/small", [binary(b"x" * 512, fin=False) + cont(b"y" * 512) + close()]),
    "limit_fragments_one_over": ("/small", [binary(b"x" * 512, fin=False) + cont(b"y" * 513) + close()]),
    "limit_three_fragments_over": (
        "/small", [binary(b"x" * 400, fin=False) + cont(b"y" * 400, fin=False) + cont(b"z" * 225) + close()],
    ),
    "limit_after_message": ("/small", [binary(b"x" * 1024) + binary(b"x" * 1025) + close()]),
    "limit_control_inside_fragments": (
        "/small", [binary(b"x" * 1000, fin=False) + ping(b"p") + cont(b"y" * 24) + close()],
    ),
    # max_buffer_size = 200000 on the stream (/buf)
    "buffer_fits": ("/buf", [binary(DATA_1M[:150000]) + close()]),
    "buffer_overflow": ("/buf", [binary(DATA_1M[:300000]) + close()]),
}


@pytest.fixture(scope="module")
def servers():
    yield from wp.server_pair(APP, "_ws_big_app.py")


@pytest.mark.parametrize("name", list(CASES))
def test_case_same_as_upstream(servers, name):
    ref, ours = servers
    a = wp.run_case(ref.port, name, CASES[name])
    b = wp.run_case(ours.port, name, CASES[name])
    ea, eb = wp.events(ref.port, name), wp.events(ours.port, name)
    got_message = CASES[name][0] == "/big" and name != "big_truncated_then_eof"
    assert ea["proto"] == "WebSocketProtocol13" + (":consumer=False" if got_message else "")
    assert eb["proto"] == "_CWebSocketProtocol13" + (":consumer=True" if got_message else "")
    assert a[0] == b[0] == b"HTTP/1.1 101 Switching Protocols"
    assert a[2] == b[2], "bytes differ: upstream %d bytes %r, tornado_c %d bytes %r" % (
        len(a[2]), a[2][:100], len(b[2]), b[2][:100])
    assert ea["events"] == eb["events"]
    assert ea["closed"] and eb["closed"]


def _server_frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n <= 0xFFFF:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def test_expected_answers(servers):
    """Pinned answers, so that two equally wrong servers fail too."""
    _ref, ours = servers
    closing = b"\x88\x02\x03\xe8"
    too_big = b"\x88\x11\x03\xf1message too big"
    for name, want in {
        "big_1m_odd_pieces": _server_frame(2, DATA_1M) + closing,
        "big_fragments_with_ping": (b"\x8a\x02in" + _server_frame(2, b"".join(BIG_FRAG)) + closing),
        "big_text_pieces": _server_frame(1, TEXT_300K) + closing,
        "limit_exact": _server_frame(2, b"x" * 1024) + closing,
        "limit_fragments_exact": _server_frame(2, b"x" * 512 + b"y" * 512) + closing,
        "limit_one_over": too_big,
        "limit_one_over_header_only": too_big,
        "limit_fragments_one_over": too_big,
        "limit_after_message": _server_frame(2, b"x" * 1024) + too_big,
        "buffer_fits": _server_frame(2, DATA_1M[:150000]) + closing,
        "buffer_overflow": b"",
    }.items():
        got = wp.run_case(ours.port, name + "-pin", CASES[name])[2]
        assert got == want, "%s: %d bytes %r" % (name, len(got), got[:80])
