"""tornado_c.httputil: the public names of ``tornado.httputil``, with
``HTTPHeaders`` in C.

``HTTPHeaders`` here is a Python class over ``_core.HTTPHeaders``
(csrc/web/): the C base implements every method upstream's class defines
itself (and ``get``), with Tornado 6.6.1's results and errors;
``collections.abc``'s ``MutableMapping`` supplies the rest (``keys``/
``items``/``values`` views, ``pop``, ``popitem``, ``setdefault``, ``update``,
``clear``, ``__eq__``), as it does for upstream's.

The ``web`` switch component leaves the name ``tornado.httputil.HTTPHeaders``
bound to upstream's class, with all its members, and has it wear
``_SwitchedMeta`` meanwhile: calling upstream's class itself then gives this
class's objects (``RequestHandler.clear()``, ``HTTP1Connection``'s
``HTTPHeaders.parse()``, the HTTP clients...), and the C HTTP server builds
its request headers in C.  A subclass of upstream's class stays upstream's.

One type for ``isinstance``: the C base is registered as a virtual subclass
of upstream's class, and this class's metaclass counts upstream's class and
its subclasses as its own.  Pickles name ``tornado.httputil.HTTPHeaders``
with upstream's state, so they load as upstream's class where tornado_c is
off or not installed, and as this class where the switch is on.
"""

import abc as _abc
import collections.abc as _cabc
import copy as _copy

import tornado.httputil as _hu

from tornado_c import _core
from tornado_c._reexport import reexport as _reexport

_upstream = _reexport(globals(), "tornado.httputil")

_UpstreamHTTPHeaders = _hu.HTTPHeaders
# upstream's parse: the function under its classmethod
_upstream_parse = _UpstreamHTTPHeaders.__dict__["parse"].__func__


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

    def __deepcopy__(self, memo):
        # what copy.deepcopy does with the pickle state, keeping the class
        # (__reduce_ex__ names tornado.httputil.HTTPHeaders, for pickles)
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        new.__setstate__(_copy.deepcopy(self.__reduce_ex__(4)[2], memo))
        return new


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


class _SwitchedMeta(_abc.ABCMeta):
    """The metaclass upstream's HTTPHeaders wears while the web switch is on
    (its class dict, bases and everything else stay as they are): calling
    upstream's class itself gives C headers; its subclasses are made as
    upstream's (see _core._web_headers_call)."""

    __call__ = _core._web_instancemethod(_core._web_headers_call)


_core._web_headers_setup(
    HTTPHeaders,
    _UpstreamHTTPHeaders,
    _hu.HTTPInputError,
    _hu._normalize_header,
    _check_add,
    _hu,
    _upstream_parse,
)

# what the C routing delegate builds HTTPServerRequest from (csrc/web/request.c)
_core._web_request_setup(_hu)
