"""tornado_c.websocket: the public names of ``tornado.websocket``, the C mask,
and the C-framed protocol the ``websocket`` switch component installs.

``websocket_mask(mask, data) -> bytes`` has the signature of upstream's
``tornado.util._websocket_mask`` / ``tornado.speedups.websocket_mask``, but a
mask that is not exactly 4 bytes raises ValueError (upstream's C speedup read
past a short mask).  ``websocket_mask_into(mask, buffer)`` masks a writable
buffer (bytearray, writable memoryview) in place.

``_CWebSocketProtocol13`` (private; see the comment above it) is upstream's
``WebSocketProtocol13`` with frames parsed, unmasked, UTF-8 checked and built
in C (csrc/websocket/frame.c).
"""

from tornado_c._core import websocket_mask, websocket_mask_into  # noqa: F401
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.websocket")

# ---------------------------------------------------------------- protocol
#
# tornado.websocket.WebSocketProtocol13 with its frame reader and writer in
# C (csrc/websocket/frame.c, frame_py.c).  Installed by the ``websocket``
# switch component through WebSocketHandler.get_websocket_protocol and
# WebSocketClientConnection.get_websocket_protocol (see tornado_c/_switch.py);
# everything else -- the handshake, compression negotiation, close(),
# pinging, _run_callback's back-pressure -- is upstream's, inherited.
#
# Reading: upstream awaits stream.read_bytes() three or four times per frame
# (header, extended length, mask, payload).  Here the bytes are taken from
# the stream as they come (read_bytes(n, partial=True): whatever is buffered,
# at least what the next step needs), kept in one bytearray, and
# _ws_parse_frame() looks at it: it returns the verdict upstream reaches at
# each step (abort on reserved bits or a long control frame after the first
# two bytes, close 1009 after the length and before any payload is read),
# or how many bytes the next step needs, or a whole frame with its payload
# unmasked.  Frames already buffered are handled without awaiting the
# stream.  The checks upstream makes after the payload (fragmentation
# rules, opcodes, UTF-8) are made at the same point, in the same order.
#
# permessage-deflate: the framing (RSV1) and the (de)compression are C, on
# the system's zlib (csrc/websocket/deflate.c): _create_compressors makes
# _core._ws_deflater / _ws_inflater objects after upstream's checks, with
# upstream's negotiation results (see _create_compressors below).  A message
# is compressed straight into its frame, and decompressed (bounded by
# max_message_size) straight into its str/bytes.

import asyncio as _asyncio
import contextvars as _contextvars
import sys as _sys

from tornado import web as _tweb
from tornado import websocket as _tws
from tornado.concurrent import Future as _Future
from tornado.concurrent import future_add_done_callback as _future_add_done_callback
from tornado.concurrent import future_set_result_unless_cancelled as _future_set_result_unless_cancelled
from tornado.gen import convert_yielded as _convert_yielded
from tornado.escape import json_encode as _json_encode
from tornado.escape import utf8 as _utf8
from tornado.iostream import StreamClosedError as _StreamClosedError

import zlib as _zlib

from tornado_c._core import (
    Stream as _Stream,
    _WS_PARSE_RSV1_OK,
    _ws_build_frame,
    _ws_build_message,
    _ws_decode_text,
    _ws_deflater,
    _ws_frame_header,
    _ws_inflater,
    _ws_parse_frame,
    _ws_current_context,
    _ws_reader,
    _WsDeflater,
    _WsInflater,
)
from tornado.iostream import StreamBufferFullError as _StreamBufferFullError
from tornado.log import gen_log as _gen_log

# bytes asked from the stream when the next step needs fewer (the stream's
# default read_chunk_size): a burst of small frames comes in one call
_READ_AHEAD = 65536
_MAX_HEADER = 14  # 2 + 8 (64-bit length) + 4 (mask)
# an unmasked bytes message at least this long is written as its header and
# then the message object itself (the stream references it): no copy of the
# payload into a frame, which costs more than the second write from here up
_WRITE_SPLIT = 16384
# the C IOStream's write (a subclass that overrides write() is not given
# _write_frame, which would bypass it)
_C_STREAM_WRITE = _Stream.write


def _write_future(fut):
    """Upstream's write_message wraps the stream's write Future in a Task
    that turns StreamClosedError into WebSocketClosedError; a plain Future
    chained by a done callback gives the same results for less (and when
    the write is already done, the stream's Future itself)."""
    if fut.done() and fut.exception() is None:
        # written at once: the stream's own Future (done, result None; not
        # cancelled, nobody else has seen it yet) serves
        return fut
    out = _Future()

    def done(f):
        if out.done():
            return
        if f.cancelled():
            out.cancel()
            return
        exc = f.exception()
        if exc is None:
            out.set_result(None)
        elif isinstance(exc, _StreamClosedError):
            err = _tws.WebSocketClosedError()
            err.__context__ = exc
            out.set_exception(err)
        else:
            out.set_exception(exc)

    fut.add_done_callback(done)
    return out


def _check_wbits(max_wbits):
    # upstream's _PerMessageDeflate{Compressor,Decompressor}.__init__ check
    if max_wbits is None:
        max_wbits = _zlib.MAX_WBITS
    if not (8 <= max_wbits <= _zlib.MAX_WBITS):
        raise ValueError(
            "Invalid max_wbits value %r; allowed range 8-%d" % (max_wbits, _zlib.MAX_WBITS)
        )
    return max_wbits


def _deflate_levels(compression_options):
    """(compression_level, mem_level) as upstream's compressor picks them."""
    if compression_options is None or "compression_level" not in compression_options:
        level = _tweb.GZipContentEncoding.GZIP_LEVEL
    else:
        level = compression_options["compression_level"]
    if compression_options is None or "mem_level" not in compression_options:
        mem_level = 8
    else:
        mem_level = compression_options["mem_level"]
    return level, mem_level


_ALLOWED_DEFLATE_PARAMS = frozenset((
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
))


class _CWebSocketProtocol13(_tws.WebSocketProtocol13):
    """WebSocketProtocol13 whose frames are parsed and built in C."""

    def _create_compressors(self, side, agreed_parameters, compression_options=None):
        # upstream's _create_compressors, with C objects in place of its
        # _PerMessageDeflate* ones: the same checks in the same order, the
        # same zlib parameters.  Settings only Python understands (a
        # max_message_size that is not an int >= 0, levels that are not
        # ints of C's int range) keep upstream's objects, errors and all.
        levels = _deflate_levels(compression_options)
        max_size = self.params.max_message_size
        if type(max_size) is not int or max_size < 0 or any(
            type(v) is not int or not -(1 << 31) <= v < (1 << 31) for v in levels
        ):
            return super()._create_compressors(side, agreed_parameters, compression_options)
        for key in agreed_parameters:
            if key not in _ALLOWED_DEFLATE_PARAMS:
                raise ValueError("unsupported compression parameter %r" % key)
        other_side = "client" if (side == "server") else "server"
        opts = self._get_compressor_options(side, agreed_parameters, compression_options)
        self._compressor = _ws_deflater(
            opts["persistent"], _check_wbits(opts["max_wbits"]), levels[0], levels[1]
        )
        opts = self._get_compressor_options(other_side, agreed_parameters, compression_options)
        self._decompressor = _ws_inflater(
            opts["persistent"], _check_wbits(opts["max_wbits"]), max_size,
            _tws._DecompressTooLargeError,
        )

    def _write_frame(self, fin, opcode, data, flags=0):
        if opcode & 0x8:
            # All control frames MUST have a payload length of 125
            # bytes or less and MUST NOT be fragmented.
            if not fin:
                raise ValueError("control frames may not be fragmented")
            if len(data) > 125:
                raise ValueError("control frame payloads may not exceed 125 bytes")
        frame = _ws_build_frame((0x80 if fin else 0) | opcode | flags, data, self.mask_outgoing)
        self._wire_bytes_out += len(frame)
        return self.stream.write(frame)

    def write_message(self, message, binary=False):
        cls = type(message)
        if cls is not str and cls is not bytes and isinstance(message, dict):
            # (str and bytes, the common case, skip the isinstance call)
            message = _json_encode(message)
            cls = type(message)
        if cls is not str and cls is not bytes:
            # upstream's path: utf8() gives its TypeError for other types;
            # the frame is still built in C
            return super().write_message(message, binary=binary)
        compressor = self._compressor
        if compressor is None:
            if cls is bytes and len(message) >= _WRITE_SPLIT and not self.mask_outgoing:
                # a big binary message: its header, then the bytes object
                # itself (no copy into a frame)
                n = len(message)
                header = _ws_frame_header(0x82 if binary else 0x81, n)
                self._message_bytes_out += n
                self._wire_bytes_out += len(header) + n
                stream = self.stream
                try:
                    if type(stream).write is _C_STREAM_WRITE:
                        # the C IOStream: header and payload in one system
                        # call (one TCP segment, not the header alone)
                        fut = stream._write_frame(header, message)
                    else:
                        stream.write(header)
                        fut = stream.write(message)
                except _StreamClosedError:
                    raise _tws.WebSocketClosedError()
                if fut.done() and fut.exception() is None:
                    return fut
                return _write_future(fut)
            frame, n = _ws_build_message(message, binary, self.mask_outgoing)
        elif type(compressor) is _WsDeflater:
            # compressed straight into the frame (RSV1 set)
            frame, n = compressor.frame(message, binary, self.mask_outgoing)
        else:
            return super().write_message(message, binary=binary)
        self._message_bytes_out += n
        self._wire_bytes_out += len(frame)
        try:
            fut = self.stream.write(frame)
        except _StreamClosedError:
            raise _tws.WebSocketClosedError()
        if fut.done() and fut.exception() is None:
            return fut  # written at once (see _write_future)
        return _write_future(fut)

    def _handle_message(self, opcode, data):
        if self._frame_compressed and not self.client_terminated and (opcode == 1 or opcode == 2):
            decompressor = self._decompressor
            if type(decompressor) is _WsInflater:
                # upstream's decompress, UTF-8 check and on_message, with the
                # message decompressed straight into its str or bytes
                try:
                    data = decompressor.message(data, opcode == 1)
                except _tws._DecompressTooLargeError:
                    self.close(1009, "message too big after decompression")
                    self._abort()
                    return None
                self._message_bytes_in += decompressor.last_size
                if data is None:  # text that is not UTF-8
                    self._abort()
                    return None
                return self._run_callback(self.handler.on_message, data)
        if self.client_terminated or self._frame_compressed or opcode != 1:
            return super()._handle_message(opcode, data)
        # uncompressed text: UTF-8 checked and decoded in C (ASCII copied)
        self._message_bytes_in += len(data)
        text = _ws_decode_text(data)
        if text is None:
            self._abort()
            return None
        return self._run_callback(self.handler.on_message, text)

    def _receive_frame_loop(self):
        # upstream's is a coroutine that its _accept_connection awaits (and
        # WebSocketClientConnection runs through add_callback): any
        # awaitable that is done when the loop ends does.  On the C
        # IOStream it is a Future and the frames come to _frames() by
        # callback: no coroutine and no Future wait per idle connection.
        max_size = self.params.max_message_size
        if type(max_size) is not int or max_size < 0:
            # an unusual setting (None, float, negative): upstream's reader
            # compares it as Python does
            return super()._receive_frame_loop()
        reader = _ws_reader(
            self.stream,
            _WS_PARSE_RSV1_OK if self._decompressor is not None else 0,
            max_size,
            self.stream.max_buffer_size,
        )
        if reader is not None:
            return self._frames_start(reader)
        return self._receive_frames_py(max_size)

    async def _receive_frames_py(self, max_size):
        """The frame loop on a stream that is not the C IOStream (TLS, the
        loop component off): bytes from read_bytes(), frames parsed in C."""
        stream = self.stream
        handler = self.handler
        buf = b""  # bytes from the stream; the next frame starts at buf[pos]
        pos = 0
        try:
            work = 0  # upstream's _YIELD_THRESHOLD accounting
            # read once: the handshake (which creates any decompressor) and
            # the module's constants are settled before this loop starts
            decompressor = self._decompressor
            parse_flags = _WS_PARSE_RSV1_OK if decompressor is not None else 0
            frame_cost = _tws._FRAME_YIELD_COST
            threshold = _tws._YIELD_THRESHOLD
            while not self.client_terminated:
                fragments = self._fragmented_message_buffer
                if pos == len(buf):
                    r = 2  # what the parser says of no bytes: a header needs 2
                else:
                    r = _ws_parse_frame(
                        buf,
                        pos,
                        parse_flags,
                        0 if fragments is None else len(fragments),
                        max_size,
                    )
                if type(r) is int:
                    if r <= 0:
                        if r == -2:
                            self.close(1009, "message too big")
                        self._abort()
                        continue
                    # the next step needs r bytes from pos
                    have = len(buf) - pos
                    if r <= _MAX_HEADER or not have:
                        # a header (take whatever is buffered: often several
                        # whole frames), or a payload none of which is here
                        data = await stream.read_bytes(
                            _READ_AHEAD if r <= _MAX_HEADER else r - have,
                            partial=r <= _MAX_HEADER,
                        )
                        buf = b"".join((memoryview(buf)[pos:], data)) if have else data
                        pos = 0
                        continue
                    # the header is here with part of the payload: wait for
                    # the rest in the stream's buffer, as upstream does, and
                    # unmask from both pieces (no joining copy)
                    rest = await stream.read_bytes(r - have)
                    r = _ws_parse_frame(
                        buf,
                        pos,
                        parse_flags,
                        0 if fragments is None else len(fragments),
                        max_size,
                        rest,
                    )
                    buf = b""
                    pos = 0
                    first, data, frame_len = r
                else:
                    first, data, frame_len = r
                    pos += frame_len
                self._wire_bytes_in += frame_len
                opcode = first & 0x0F
                if decompressor is not None and opcode != 0:
                    self._frame_compressed = bool(first & 0x40)
                if first & 0x80 and fragments is None and not self._frame_compressed and (
                    opcode == 1 or opcode == 2
                ):
                    # a whole uncompressed message: upstream's
                    # _handle_message + _run_callback, inline
                    self._message_bytes_in += len(data)
                    if opcode == 1:
                        data = _ws_decode_text(data)  # UTF-8 checked in C
                        if data is None:
                            self._abort()
                            continue
                    try:
                        result = handler.on_message(data)
                    except (Exception, _asyncio.CancelledError):
                        handler.log_exception(*_sys.exc_info())
                        self._abort()
                        continue
                    if result is not None:
                        await self._callback_done(result)
                else:
                    handled = self._frame_rules(first, opcode, data, fragments)
                    if handled is not None:
                        await handled
                work += frame_cost + frame_len
                if work >= threshold:
                    work = 0
                    await _asyncio.sleep(0)
        except _StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    # ------------------------------------------------ frames by callback
    #
    # The C IOStream's frame loop: upstream's _receive_frame_loop (and the
    # coroutine this was before) as callbacks, so that an idle connection
    # waits with nothing but the reader holding a bound method -- no
    # coroutine, no Future per wait (docs/memory.md, "WebSocket").  What
    # each frame does, and in which order, is the coroutine's:
    #   * frames come one at a time from reader.read(cb, ctx): a whole
    #     frame, a verdict, None (the stream closed), or cb itself, which
    #     the reader calls later (from the loop, call_soon: where an awaited
    #     Future would have woken the coroutine) with one of those;
    #   * an on_message (on_ping, on_pong) that returns an awaitable holds
    #     the next frame back until it is done (upstream's back-pressure):
    #     _callback_done's Future calls _frames_resume;
    #   * after _YIELD_THRESHOLD bytes of work the loop yields once
    #     (upstream's asyncio.sleep(0)): call_soon(_frames);
    #   * the end (close frame handled, abort, stream closed, an error)
    #     detaches the reader, calls handler.on_ws_connection_close as
    #     upstream's finally does, and resolves the Future
    #     _receive_frame_loop returned (with the error, if one escaped, as
    #     the coroutine raised it).  Cancelling that Future (the handler's
    #     Task cancelled while it waits in _accept_connection) ends the loop
    #     the same way, before the CancelledError reaches
    #     accept_connection, in upstream's order (_FramesDone.cancel).
    # Every callback runs in the Context _receive_frame_loop was called in:
    # inside a Task (the handler's, on a server) that Task's own Context,
    # where upstream's coroutine ran (context variables set in prepare() or
    # open() are seen by on_message, what on_message sets by the next one
    # and by the Task once get() resumes); from a plain callback (a
    # client's) a copy, as upstream's new Task has.
    #
    # State: the slots below (not the instance dict: upstream's protocol
    # has 29 attributes, one short of CPython's limit for dicts sharing
    # their keys with the class; four more made each dict 1.5 KB).

    __slots__ = (
        "_frame_reader",  # the WSReader, None once the loop ended
        "_frame_ctx",  # the Context every step runs in
        "_frame_work",  # upstream's `work` (the yield threshold)
        "_frames_done",  # the _FramesDone _receive_frame_loop returned
    )

    def _frames_start(self, reader):
        self._frame_reader = reader
        self._frame_work = 0
        done = self._frames_done = _FramesDone(self)
        if _asyncio.current_task() is not None:
            # upstream's frame loop runs in the Task that awaits it (the
            # handler's, on a server): its steps run in that Task's own
            # Context, and what on_message sets the Task sees afterwards
            self._frame_ctx = _ws_current_context()
            self._frames()
        else:
            # a plain callback (a client's add_callback): upstream runs the
            # loop as a new Task, in a copy of the context
            self._frame_ctx = ctx = _contextvars.copy_context()
            ctx.run(self._frames)
        return done

    def _frames_resume(self, _future):
        # an awaitable on_message (on_ping, on_pong) is done
        self._frames()

    def _frames_resume_yield(self, _future):
        # ... and the yield threshold was reached with that frame
        _asyncio.get_running_loop().call_soon(self._frames, context=self._frame_ctx)

    def _frames(self, item=None):
        """Handle frames until one has to be waited for (see above).  Called
        with no item to ask the reader for the next one, or by the reader
        with the one it waited for."""
        reader = self._frame_reader
        if reader is None:
            return  # the loop ended while this call was scheduled
        handler = self.handler
        work = self._frame_work
        frame_cost = _tws._FRAME_YIELD_COST
        threshold = _tws._YIELD_THRESHOLD
        cb = self._frames
        try:
            while not self.client_terminated:
                if item is None:
                    item = reader.read(cb, self._frame_ctx)
                    if item is cb:
                        # nothing yet: the reader calls us with the frame
                        self._frame_work = work
                        return
                    if item is None:
                        # the stream closed: upstream's read_bytes raised
                        # StreamClosedError
                        self._abort()
                        break
                elif type(item) is not tuple and type(item) is not int:
                    # from the reader's callback: what the awaited read
                    # raised (MemoryError).  (None, the stream closed, came
                    # as item None: read() above says so again.)
                    raise item
                if type(item) is int:
                    if item == -2:
                        self.close(1009, "message too big")
                    elif item == -3:
                        self._read_buffer_full()
                    self._abort()
                    break
                first, data, frame_len = item
                # drop the frame before waiting for the next: a big payload
                # must not stay alive while its successor arrives
                item = None
                self._wire_bytes_in += frame_len
                pending = None
                if (first == 0x82 or first == 0x81) and self._fragmented_message_buffer is None:
                    # a whole uncompressed text or binary message (FIN, no
                    # RSV bit): upstream's _handle_message + _run_callback,
                    # inline
                    if self._decompressor is not None:
                        self._frame_compressed = False
                    self._message_bytes_in += len(data)
                    if first == 0x81:
                        data = _ws_decode_text(data)  # UTF-8 checked in C
                        if data is None:
                            self._abort()
                            break
                    try:
                        result = handler.on_message(data)
                    except (Exception, _asyncio.CancelledError):
                        handler.log_exception(*_sys.exc_info())
                        self._abort()
                        break
                    data = None
                    if result is not None:
                        pending = self._callback_done(result)
                else:
                    opcode = first & 0x0F
                    if self._decompressor is not None and opcode != 0:
                        self._frame_compressed = bool(first & 0x40)
                    # (a whole uncompressed data message never comes here:
                    # the parser lets no RSV bit but RSV1 through; if one
                    # did, _frame_rules would still handle it right)
                    pending = self._frame_rules(
                        first, opcode, data, self._fragmented_message_buffer
                    )
                    data = None
                work += frame_cost + frame_len
                yield_now = work >= threshold
                if yield_now:
                    work = 0
                if pending is not None:
                    # upstream awaits it (then yields if due)
                    self._frame_work = work
                    pending.add_done_callback(
                        self._frames_resume_yield if yield_now else self._frames_resume,
                        context=self._frame_ctx,
                    )
                    return
                if yield_now:
                    # upstream's asyncio.sleep(0): the next frame is
                    # handled from the loop, after its other callbacks
                    self._frame_work = 0
                    if not reader.read_soon(cb, self._frame_ctx):
                        _asyncio.get_running_loop().call_soon(self._frames, context=self._frame_ctx)
                    return
        except _StreamClosedError:
            # (a pong or close frame written to a closed stream) upstream's
            # loop catches it
            self._abort()
        except BaseException as e:
            self._frames_end(e)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            return
        self._frames_end(None)

    def _frames_end(self, exc):
        """The frame loop ended (exc: the exception that ended it, or None):
        upstream's finally, then the Future _receive_frame_loop returned."""
        reader = self._frame_reader
        if reader is None:
            return
        self._frame_reader = None
        reader.detach()
        self._frames_closed(exc)

    def _frames_closed(self, exc=None):
        done = self._frames_done
        try:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)
        except BaseException as e:
            if exc is not None and e.__context__ is None:
                e.__context__ = exc
            exc = e
        if done.done():
            # cancelled: the CancelledError is on its way to
            # accept_connection; an error in on_close has nowhere to go
            if exc is not None:
                _asyncio.get_running_loop().call_exception_handler({
                    "message": "WebSocket on_close failed after cancellation",
                    "exception": exc,
                })
            return
        if exc is None:
            done.set_result(None)
        elif isinstance(exc, _asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise exc

    def _read_buffer_full(self):
        """A frame longer than the stream's max_buffer_size: what upstream's
        IOStream does when read_bytes() for it overflows the buffer."""
        _gen_log.error("Reached maximum read buffer size")
        exc = _StreamBufferFullError("Reached maximum read buffer size")
        _gen_log.warning("error on read: %s" % exc)
        self.stream.close(exc_info=exc)

    def _frame_rules(self, first, opcode, data, fragments):
        """Upstream's _receive_frame after the payload: control and
        fragmentation rules, then _handle_message for a final frame."""
        fin = first & 0x80
        if opcode & 0x8:
            # control frames may be interleaved with the fragments of a data
            # message and must not be fragmented
            if not fin:
                self._abort()
                return None
        elif opcode == 0:  # continuation frame
            if fragments is None:
                self._abort()  # nothing to continue
                return None
            fragments.extend(data)
            if fin:
                opcode = self._fragmented_message_opcode
                data = bytes(fragments)
                self._fragmented_message_buffer = None
        else:  # start of a new data message
            if fragments is not None:
                self._abort()  # the old one is not finished
                return None
            if not fin:
                self._fragmented_message_opcode = opcode
                self._fragmented_message_buffer = bytearray(data)
        if fin:
            return self._handle_message(opcode, data)
        return None

    def _callback_done(self, result):
        """The second half of upstream's _run_callback for a callback that
        returned an awaitable: a Future done when it is (errors logged and
        the connection aborted), never raising."""
        done_future = _Future()

        def on_done(f):
            try:
                f.result()
            except (Exception, _asyncio.CancelledError):
                self.handler.log_exception(*_sys.exc_info())
                self._abort()
            _future_set_result_unless_cancelled(done_future, None)

        _future_add_done_callback(_convert_yielded(result), on_done)
        return done_future


class _FramesDone(_Future):
    """The Future _receive_frame_loop returns on the C IOStream, done when
    the frame loop ends.  Its cancel() -- the handler's Task cancelled while
    _accept_connection awaits it -- ends the loop first: no frame is
    handled after it, and on_ws_connection_close runs ahead of the Task's
    CancelledError, as in upstream's coroutine (its finally, then the
    exception).  (A subclass rather than a done callback: no callback list
    and Context per connection.)"""

    __slots__ = ("_protocol",)

    def __init__(self, protocol):
        super().__init__()
        self._protocol = protocol

    def cancel(self, msg=None):
        p = self._protocol
        if not self.done() and p._frame_reader is not None:
            reader = p._frame_reader
            p._frame_reader = None
            reader.detach()
            # scheduled before super().cancel() wakes the Task
            self.get_loop().call_soon(p._frames_closed, context=p._frame_ctx)
        return super().cancel(msg=msg)


def _handler_get_websocket_protocol(self):
    # upstream's WebSocketHandler.get_websocket_protocol with the C protocol
    websocket_version = self.request.headers.get("Sec-WebSocket-Version")
    if websocket_version == "13":
        params = _tws._WebSocketParams(
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_message_size=self.max_message_size,
            compression_options=self.get_compression_options(),
        )
        return _CWebSocketProtocol13(self, False, params)
    return None


def _client_get_websocket_protocol(self):
    # upstream's WebSocketClientConnection.get_websocket_protocol
    return _CWebSocketProtocol13(self, mask_outgoing=True, params=self.params)
