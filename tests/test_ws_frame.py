"""The C frame parser, frame builder and UTF-8 validator (csrc/websocket/
frame.c) against small Python models of upstream's rules."""

import os
import random
import struct

import pytest

from tornado_c import _core



def parse(buf, flags, frag_len, max_size):
    # the frame at a random offset of a larger buffer gives the same answer
    r = _core._ws_parse_frame(buf, 0, flags, frag_len, max_size)
    pre = os.urandom(3)
    r2 = _core._ws_parse_frame(pre + bytes(buf), 3, flags, frag_len, max_size)
    assert r == r2
    return r


RSV1_OK = _core._WS_PARSE_RSV1_OK
MAX = 10 * 1024 * 1024


def model(buf, rsv1_ok, frag_len, max_size):
    """What upstream's _receive_frame decides from the bytes in buf."""
    if len(buf) < 2:
        return 2
    first, second = buf[0], buf[1]
    opcode = first & 0xF
    reserved = first & 0x70
    if rsv1_ok and opcode != 0:
        reserved &= ~0x40
    if reserved:
        return -1
    n = second & 0x7F
    if opcode & 8 and n >= 126:
        return -1
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return 4
        n = struct.unpack("!H", buf[2:4])[0]
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return 10
        n = struct.unpack("!Q", buf[2:10])[0]
        pos = 10
    if n + frag_len > max_size:
        return -2
    mask = None
    if second & 0x80:
        if len(buf) < pos + 4:
            return pos + 4
        mask = buf[pos : pos + 4]
        pos += 4
    if len(buf) < pos + n:
        return pos + n
    data = bytes(buf[pos : pos + n])
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return (first, data, pos + n)


def random_frame(rng):
    first = rng.randrange(256)
    n = rng.choice([0, 1, 5, 125, 126, 127, 300, 65535, 65536, 70000, rng.randrange(2000)])
    masked = rng.random() < 0.7
    enc = rng.choice(["min", "16", "64"])
    if enc == "min":
        enc = "7" if n < 126 else "16" if n <= 0xFFFF else "64"
    if enc == "7" and n >= 126 or enc == "16" and n > 0xFFFF:
        enc = "64"
    mb = 0x80 if masked else 0
    if enc == "7":
        head = bytes([first, n | mb])
    elif enc == "16":
        head = bytes([first, 126 | mb]) + struct.pack("!H", n)
    else:
        head = bytes([first, 127 | mb]) + struct.pack("!Q", n)
    if masked:
        head += os.urandom(4)
    return head + os.urandom(n)


def test_parse_matches_model_random_frames_and_prefixes():
    rng = random.Random(1234)
    for _ in range(400):
        frame = random_frame(rng) + rng.choice([b"", b"\x81\x00", os.urandom(3)])
        rsv1_ok = rng.random() < 0.5
        frag = rng.choice([0, 0, 10, 5000])
        max_size = rng.choice([MAX, 100, 1024, 0, 70000])
        cuts = {0, 1, 2, 3, 4, 9, 10, 13, 14, len(frame), rng.randrange(len(frame) + 1)}
        for cut in sorted(c for c in cuts if c <= len(frame)):
            buf = bytearray(frame[:cut])
            assert parse(buf, RSV1_OK if rsv1_ok else 0, frag, max_size) == model(
                buf, rsv1_ok, frag, max_size
            ), (frame[:16].hex(), cut, rsv1_ok, frag, max_size)


def test_parse_edges():
    # 64-bit length with the top bit set: too big, decided from the header
    assert parse(b"\x82\x7f\x80" + b"\x00" * 7, 0, 0, MAX) == -2
    # frag_len + length overflowing 64 bits
    assert parse(b"\x82\x7f" + b"\xff" * 8, 0, (1 << 64) - 1, (1 << 64) - 1) == -2
    # close with a 126 length: abort on the first two bytes
    assert parse(b"\x88\x7e", 0, 0, MAX) == -1
    # RSV1 on a continuation frame even with compression
    assert parse(b"\x40\x00", RSV1_OK, 0, MAX) == -1
    assert parse(b"\xc1\x00", RSV1_OK, 0, MAX) == (0xC1, b"", 2)
    assert parse(b"\xc1\x00", 0, 0, MAX) == -1
    # the buffer is not changed, any buffer type works
    buf = bytearray(b"\x81\x82abcd\x00\x00")
    before = bytes(buf)
    assert parse(memoryview(buf), 0, 0, MAX) == (0x81, bytes([ord("a"), ord("b")]), 8)
    assert bytes(buf) == before
    with pytest.raises(OverflowError):
        parse(b"", 0, -1, MAX)
    with pytest.raises(ValueError):
        _core._ws_parse_frame(b"ab", 3, 0, 0, MAX)
    with pytest.raises(ValueError):
        _core._ws_parse_frame(b"ab", -1, 0, 0, MAX)
    with pytest.raises(TypeError):
        parse("str", 0, 0, MAX)


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 100000])
def test_build_roundtrip(mask, n):
    data = os.urandom(n)
    frame = _core._ws_build_frame(0x82, data, mask)
    assert parse(frame, 0, 0, 1 << 30) == (0x82, data, len(frame))
    assert (frame[1] & 0x80 != 0) == mask
    expect_len = 2 + (0 if n < 126 else 2 if n <= 0xFFFF else 8) + (4 if mask else 0) + n
    assert len(frame) == expect_len
    if not mask:
        assert frame[2 + (len(frame) - 2 - n) :] == data


def test_build_message():
    f, n = _core._ws_build_message("héllo", False, False)
    assert f == b"\x81\x06h\xc3\xa9llo" and n == 6
    f, n = _core._ws_build_message(b"\x00", True, False)
    assert f == b"\x82\x01\x00" and n == 1
    f, n = _core._ws_build_message("x" * 200, False, True)
    assert parse(f, 0, 0, MAX) == (0x81, b"x" * 200, len(f)) and n == 200
    with pytest.raises(TypeError):
        _core._ws_build_message(bytearray(b"x"), True, False)
    with pytest.raises(UnicodeEncodeError):
        _core._ws_build_message("\ud800", False, False)
    with pytest.raises(ValueError):
        _core._ws_build_frame(256, b"", False)


UTF8_CASES = [
    b"", b"ascii only", "κόσμε".encode(), "€𝄞".encode(), b"\xc2\x80", b"\xdf\xbf",
    b"\xe0\xa0\x80", b"\xef\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf",
    b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe", b"\xe2\x82", b"a\xc3",
    b"12345678\xc3\xa9" + b"x" * 20, b"x" * 15 + b"\xff", b"\xed\x9f\xbf", b"\xee\x80\x80",
]


def _valid(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_utf8_matches_python_decode_whole_and_split():
    rng = random.Random(99)
    cases = list(UTF8_CASES)
    for _ in range(3000):
        parts = [rng.choice(UTF8_CASES + [os.urandom(rng.randrange(6)), chr(rng.randrange(0x110000)).encode("utf-8", "surrogatepass")]) for _ in range(rng.randrange(1, 5))]
        cases.append(b"".join(parts))
    for b in cases:
        want = _valid(b)
        text = _core._ws_decode_text(b)
        assert (text is not None) == want, b
        if want:
            assert text == b.decode("utf-8")
        assert (_core._ws_utf8_feed(0, b) == 0) == want, b
        # the same verdict whatever the split (fragments)
        for cut in range(len(b) + 1):
            st = _core._ws_utf8_feed(0, b[:cut])
            st = _core._ws_utf8_feed(st, b[cut:])
            assert (st == 0) == want, (b, cut)


@pytest.mark.parametrize("masked", [False, True])
def test_parse_with_rest_in_more(masked):
    # a frame whose header and first payload bytes are in buf and whose rest
    # came from read_bytes(rest): same frame as parsed whole, any split
    rng = random.Random(7)
    for n in (1, 5, 126, 1000, 70000):
        data = os.urandom(n)
        frame = _core._ws_build_frame(0x82, data, masked)
        whole = _core._ws_parse_frame(frame, 0, 0, 0, MAX)
        hl = len(frame) - n
        cuts = {hl, hl + 1, hl + 3, len(frame) - 1, rng.randrange(hl, len(frame))}
        for cut in sorted(c for c in cuts if hl <= c < len(frame)):
            pre = b"zz"
            buf = pre + frame[:cut]
            need = _core._ws_parse_frame(buf, 2, 0, 0, MAX)
            assert need == len(frame)
            got = _core._ws_parse_frame(buf, 2, 0, 0, MAX, frame[cut:])
            assert got == whole, (n, cut)
    frame = _core._ws_build_frame(0x82, b"abcdef", masked)
    hl = len(frame) - 6
    with pytest.raises(ValueError):  # more too short
        _core._ws_parse_frame(frame[: hl + 1], 0, 0, 0, MAX, frame[hl + 1 : -1])
    with pytest.raises(ValueError):  # more too long
        _core._ws_parse_frame(frame[: hl + 1], 0, 0, 0, MAX, frame[hl + 1 :] + b"x")
    with pytest.raises(ValueError):  # header not whole in buf
        _core._ws_parse_frame(frame[:1], 0, 0, 0, MAX, frame[1:])
    with pytest.raises(ValueError):  # a whole frame already
        _core._ws_parse_frame(frame, 0, 0, 0, MAX, b"")
    with pytest.raises(ValueError):  # an abort verdict
        _core._ws_parse_frame(b"\xf1\x05", 0, 0, 0, MAX, b"12345")
