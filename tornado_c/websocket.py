"""tornado_c.websocket: the public names of ``tornado.websocket`` plus the C mask.

``websocket_mask(mask, data) -> bytes`` has the signature of upstream's
``tornado.util._websocket_mask`` / ``tornado.speedups.websocket_mask``, but a
mask that is not exactly 4 bytes raises ValueError (upstream's C speedup read
past a short mask).  ``websocket_mask_into(mask, buffer)`` masks a writable
buffer (bytearray, writable memoryview) in place.
"""

from tornado_c._core import websocket_mask, websocket_mask_into  # noqa: F401
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.websocket")
