"""tornado_c.iostream: the public names of ``tornado.iostream``.

Nothing of this module is accelerated in C yet, so every name is upstream's
object itself; accelerated names replace them here as they land.
"""

from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.iostream")
