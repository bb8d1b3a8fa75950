"""WebSocket masking in C against the pure-Python reference and upstream's speedups."""

import os
import random

import pytest
from tornado.util import _websocket_mask_python as reference

from tornado_c import _core
from tornado_c.websocket import websocket_mask, websocket_mask_into

try:
    from tornado.speedups import websocket_mask as speedups_mask
except ImportError:  # pragma: no cover - wheel without speedups
    speedups_mask = None

MASKS = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"abcd", b"\x01\x80\x7f\xfe"]


@pytest.mark.parametrize("mask", MASKS)
def test_every_length_and_offset(mask):
    blob = os.urandom(300 + 64)
    for n in range(0, 301):
        for off in range(0, 33):
            data = blob[off:off + n]
            assert websocket_mask(mask, data) == reference(mask, data), (n, off)


def xor_reference(mask, data):
    """The mask as one big-integer XOR: the same result as upstream's
    byte-by-byte reference, fast enough for megabytes."""
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def test_random_large_sizes():
    rng = random.Random(1234)
    sample = os.urandom(1031)
    for mask in MASKS:
        assert xor_reference(mask, sample) == reference(mask, sample)
    for _ in range(40):
        n = rng.randrange(300, 3 * 1024 * 1024)
        mask = os.urandom(4)
        data = os.urandom(n)
        off = rng.randrange(0, 64)
        view = memoryview(data)[off:]
        expected = xor_reference(mask, bytes(view))
        assert websocket_mask(mask, view) == expected
        if speedups_mask is not None:
            assert speedups_mask(mask, bytes(view)) == expected


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "memoryview-slice"])
def test_input_kinds(kind):
    mask = b"\x12\x34\x56\x78"
    raw = os.urandom(1027)
    data = {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "memoryview": memoryview(raw),
        "memoryview-slice": memoryview(b"xyz" + raw)[3:],
    }[kind]
    out = websocket_mask(mask, data)
    assert type(out) is bytes
    assert out == reference(mask, raw)
    # masking twice gives the input back
    assert websocket_mask(mask, out) == raw


def test_mask_accepts_buffers():
    raw = os.urandom(100)
    for mask in (b"wxyz", bytearray(b"wxyz"), memoryview(b"__wxyz")[2:]):
        assert websocket_mask(mask, raw) == reference(b"wxyz", raw)


@pytest.mark.parametrize("bad", [b"", b"a", b"abc", b"abcde", b"abcdefgh"])
def test_wrong_mask_length_raises(bad):
    with pytest.raises(ValueError, match="exactly 4 bytes"):
        websocket_mask(bad, b"payload")
    with pytest.raises(ValueError, match="exactly 4 bytes"):
        websocket_mask_into(bad, bytearray(b"payload"))


def test_wrong_types_raise_typeerror():
    with pytest.raises(TypeError):
        websocket_mask("abcd", b"x")
    with pytest.raises(TypeError):
        websocket_mask(b"abcd", "text")
    with pytest.raises(TypeError):
        websocket_mask(b"abcd")
    with pytest.raises(TypeError):
        websocket_mask(b"abcd", b"x", b"y")


@pytest.mark.parametrize("n", [0, 1, 3, 15, 16, 17, 31, 64, 127, 128, 129, 1000, 65536 + 5])
def test_in_place(n):
    mask = os.urandom(4)
    raw = os.urandom(n + 16)
    for off in (0, 1, 2, 3, 5, 7, 8, 13):
        buf = bytearray(raw)
        view = memoryview(buf)[off:off + n]
        assert websocket_mask_into(mask, view) is None
        assert bytes(buf[off:off + n]) == reference(mask, raw[off:off + n])
        # bytes outside the view are untouched
        assert bytes(buf[:off]) == raw[:off]
        assert bytes(buf[off + n:]) == raw[off + n:]


def test_in_place_rejects_readonly():
    with pytest.raises(TypeError):
        websocket_mask_into(b"abcd", b"read-only bytes")
    with pytest.raises(TypeError):
        websocket_mask_into(b"abcd", memoryview(b"read-only"))


def test_kernel_name():
    assert _core.websocket_mask_impl() in ("word", "sse2")
