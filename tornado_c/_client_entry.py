"""Where a fetch enters the HTTP client, while the ``http`` component is on:
``AsyncHTTPClient.fetch`` and ``SimpleAsyncHTTPClient.fetch_impl``.

Both are upstream's code for every fetch but the most common one, which
they take a shorter way that leaves the same objects behind:

* `fetch`: a fetch of a URL string without keyword arguments makes its
  ``HTTPRequest`` from a copy of the attributes upstream's ``__init__``
  gives such a request (the URL, a new ``HTTPHeaders`` and the start time
  put in), while ``HTTPRequest.__init__`` and its ``headers`` / ``body``
  properties are upstream's;
* `fetch_impl`: a fetch that can start at once goes straight to its
  connection, without the round trip through ``queue`` and ``waiting``.

tests/test_http_client_fetch_impl.py compares them with upstream's.
"""

import functools
import time

from tornado import httpclient as _hc
from tornado import httputil
from tornado import simple_httpclient as _sc
from tornado.concurrent import (
    Future,
    future_set_exception_unless_cancelled,
    future_set_result_unless_cancelled,
)
from tornado.httpclient import HTTPRequest, _RequestProxy

from tornado_c import _httplog

_UPSTREAM_FETCH = _hc.AsyncHTTPClient.fetch
# what upstream's HTTPRequest(url=...) and _RequestProxy(request, defaults)
# run: while they are these, copies of the attributes they give stand for
# them
_REQUEST_INIT = HTTPRequest.__init__
_REQUEST_HEADERS = HTTPRequest.headers  # the property objects
_REQUEST_BODY = HTTPRequest.body
_PROXY_INIT = _RequestProxy.__init__
_object_new = object.__new__
_object_setattr = object.__setattr__
_request_attrs = None  # vars(HTTPRequest(url=...)) as upstream's __init__ leaves it


class AsyncHTTPClient:  # only to give fetch() upstream's qualified names
    def fetch(self, request, raise_error=True, **kwargs):
        """AsyncHTTPClient.fetch while the switch is on: upstream's, but
        a URL string without keyword arguments gets its HTTPRequest as a
        copy of the attributes upstream's __init__ gives one, with the URL,
        a new HTTPHeaders (what fetch() copies the request's empty headers
        into) and the start time put in, and its _RequestProxy as the two
        attributes its __init__ sets, while what they run is upstream's.
        Its closure's qualified name is upstream's (it shows in the
        IOLoop's log of a failed callback)."""
        global _request_attrs
        cls = HTTPRequest
        if (
            kwargs
            or type(request) is not str
            or self._closed
            or cls.__init__ is not _REQUEST_INIT
            or cls.headers is not _REQUEST_HEADERS
            or cls.body is not _REQUEST_BODY
            or cls.__new__ is not _object_new
            or cls.__setattr__ is not _object_setattr
            or _RequestProxy.__init__ is not _PROXY_INIT
            or _RequestProxy.__new__ is not _object_new
            or _RequestProxy.__setattr__ is not _object_setattr
        ):
            return _UPSTREAM_FETCH(self, request, raise_error, **kwargs)
        attrs = _request_attrs
        if attrs is None:
            attrs = _request_attrs = dict(HTTPRequest(url="").__dict__)
        attrs = attrs.copy()
        attrs["url"] = request
        attrs["_headers"] = httputil.HTTPHeaders()
        attrs["start_time"] = time.time()
        req = _object_new(cls)
        req.__dict__ = attrs
        request_proxy = _object_new(_RequestProxy)
        request_proxy.__dict__ = {"request": req, "defaults": self.defaults}
        future = Future()

        def handle_response(response):
            if response.error:
                if raise_error or not response._error_is_response_code:
                    future_set_exception_unless_cancelled(future, response.error)
                    return
            future_set_result_unless_cancelled(future, response)

        self.fetch_impl(request_proxy, handle_response)
        return future


_fetch = AsyncHTTPClient.fetch
del AsyncHTTPClient

_SAHC = _sc.SimpleAsyncHTTPClient
_UPSTREAM_FETCH_IMPL = _SAHC.fetch_impl
_UPSTREAM_PROCESS_QUEUE = _SAHC._process_queue
_UPSTREAM_HANDLE_REQUEST = _SAHC._handle_request
_UPSTREAM_REMOVE_TIMEOUT = _SAHC._remove_timeout
_PROXY_GETATTR = _RequestProxy.__getattr__
_ABSENT = object()


def _proxy_option(request, name, absent):
    """What getattr(request, name) gives for an exact _RequestProxy (its
    ``request`` and ``defaults`` alone) over an exact HTTPRequest that has
    `name` among its attributes, read as upstream's __getattr__ reads it
    (the request's value unless None, else the default) without its
    AttributeError round trip; `absent` for any other request or name."""
    if type(request) is not _RequestProxy or _RequestProxy.__getattr__ is not _PROXY_GETATTR:
        return absent
    proxy = request.__dict__
    inner = proxy.get("request")
    defaults = proxy.get("defaults", absent)
    if len(proxy) != 2 or type(inner) is not HTTPRequest or defaults is absent:
        return absent
    value = inner.__dict__.get(name, absent)
    if value is None and defaults is not None:
        return defaults.get(name, None)
    return value


def _fetch_impl(self, request, callback):
    """SimpleAsyncHTTPClient.fetch_impl while the switch is on.

    A fetch that starts at once (nothing queued, fewer than max_clients
    active), through upstream's _process_queue, _handle_request and
    _remove_timeout, with the request an exact _RequestProxy over an exact
    HTTPRequest: what upstream's fetch_impl and _process_queue leave for it
    -- the same ``active`` entry, release partial and connection call --
    without the round trip through ``queue`` and ``waiting`` (the entries
    upstream adds there are gone again before it calls the connection),
    its two timeout asserts read from the request and the defaults as
    _RequestProxy.__getattr__ reads them.  Every other fetch is upstream's
    (so is an assert that fails)."""
    cls = type(self)
    if (
        self.queue
        or len(self.active) >= self.max_clients
        or type(request) is not _RequestProxy
        or cls._process_queue is not _UPSTREAM_PROCESS_QUEUE
        or cls._handle_request is not _UPSTREAM_HANDLE_REQUEST
        or cls._remove_timeout is not _UPSTREAM_REMOVE_TIMEOUT
    ):
        return _UPSTREAM_FETCH_IMPL(self, request, callback)
    for name in ("connect_timeout", "request_timeout"):
        value = _proxy_option(request, name, _ABSENT)
        if value is None or value is _ABSENT:
            return _UPSTREAM_FETCH_IMPL(self, request, callback)
    key = object()
    self.active[key] = (request, callback)
    self._connection_class()(
        self,
        request,
        functools.partial(self._release_fetch, key),
        callback,
        self.max_buffer_size,
        self.tcp_client,
        self.max_header_size,
        self.max_body_size,
    )
    if self.queue:
        # a fetch made while this one was being handled queued itself:
        # the rest of upstream's _process_queue loop, then its log
        self._process_queue()
        if self.queue:
            _httplog.gen_log.debug(
                "max_clients limit reached, request queued. "
                "%d active, %d queued requests." % (len(self.active), len(self.queue))
            )
