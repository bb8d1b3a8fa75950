"""tornado_c.httputil: the public names of ``tornado.httputil``, with
``HTTPHeaders`` in C.

``HTTPHeaders`` is a Python class over ``_core.HTTPHeaders`` (csrc/web/): the
C base implements every method upstream's class defines itself (and
``get``), with Tornado 6.6.1's results and errors; ``collections.abc``'s
``MutableMapping`` supplies the rest (``keys``/``items``/``values`` views,
``pop``, ``popitem``, ``setdefault``, ``update``, ``clear``, ``__eq__``), as it
does for upstream's.  The ``web`` switch component binds
``tornado.httputil.HTTPHeaders`` to it, so ``RequestHandler``'s response
headers and the clients' headers are C ones, and the C HTTP server builds
request headers as it.

Both classes stay one type for ``isinstance``/``issubclass``, whichever of
them a name holds: the C base is registered as a virtual subclass of
upstream's class, and this class's metaclass counts upstream's class and its
subclasses as its own.  Pickles name ``tornado.httputil.HTTPHeaders`` with
upstream's state, so they load as upstream's class where tornado_c is not
installed, and upstream's pickles load as this class where it is.

The class reports itself as ``tornado.httputil.HTTPHeaders`` (its
``__module__`` and ``__qualname__``), the name it is used under.
"""

import abc as _abc
import collections.abc as _cabc
import copy as _copy

import tornado.httputil as _hu

from tornado_c import _core
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.httputil")

# upstream's own class, even if this module is imported (or reloaded) while
# the switch has bound the module's name to ours
_UpstreamHTTPHeaders = getattr(_hu.HTTPHeaders, "_tornado_c_upstream", _hu.HTTPHeaders)


class _HeadersMeta(_abc.ABCMeta):
    """ABCMeta that also counts upstream's HTTPHeaders (and its subclasses)
    as subclasses of ours.  Only real subclassing of upstream's class is
    checked here (its MRO), never upstream's ABC registry, which holds our
    base: no check goes round in a circle."""

    def __subclasscheck__(cls, subclass):
        if cls is HTTPHeaders and _UpstreamHTTPHeaders in getattr(subclass, "__mro__", ()):
            return True
        return super().__subclasscheck__(subclass)


class HTTPHeaders(_core.HTTPHeaders, _cabc.MutableMapping, metaclass=_HeadersMeta):
    # deliberately no __slots__: instances take attributes as upstream's do
    __doc__ = _UpstreamHTTPHeaders.__doc__
    _tornado_c_upstream = _UpstreamHTTPHeaders

    def __deepcopy__(self, memo):
        # what copy.deepcopy does with upstream's pickle state, keeping the
        # class: __reduce_ex__ names the class tornado.httputil.HTTPHeaders
        # is bound to (for pickles), which may be upstream's
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        new.__setstate__(_copy.deepcopy(self.__reduce_ex__(4)[2], memo))
        return new


HTTPHeaders.__module__ = "tornado.httputil"
HTTPHeaders.__qualname__ = "HTTPHeaders"
_UpstreamHTTPHeaders.register(_core.HTTPHeaders)


def _check_add(name, value, chars_are_bytes):
    """add()'s checks for what the C code does not take itself (values that
    are bytes, str subclasses, other types): upstream's own expressions, so
    the same errors.  Returns the normalized name."""
    if not _hu._ABNF.field_name.fullmatch(name):
        raise _hu.HTTPInputError("Invalid header name %r" % name)
    if chars_are_bytes:
        if not _hu._ABNF.field_value.fullmatch(_hu.to_unicode(value)):
            raise _hu.HTTPInputError("Invalid header value %r" % value)
    elif _hu._FORBIDDEN_HEADER_CHARS_RE.search(value):
        raise _hu.HTTPInputError("Invalid header value %r" % value)
    return _hu._normalize_header(name)


def _reduce_upstream(headers):
    """Pickling an instance of upstream's class while the switch binds
    tornado.httputil.HTTPHeaders to ours (pickle finds classes by name):
    the same pickle upstream makes, naming the class bound now."""
    return (HTTPHeaders, (), dict(vars(headers)))


_core._web_headers_setup(
    HTTPHeaders,
    _UpstreamHTTPHeaders,
    _hu.HTTPInputError,
    _hu._normalize_header,
    _check_add,
    _hu,
)
