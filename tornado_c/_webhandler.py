"""The RequestHandler hot path in C: what the ``web`` switch component
installs on upstream's ``tornado.web`` classes (see csrc/web/handler.c).

``methods()`` gives ``{(class, attribute): C descriptor}``.  The switch sets
each one on upstream's class (``WebComponent._patch_web``) and puts
upstream's function back when ``web`` is turned off: the classes, their
names and everything the switch does not replace stay upstream's.  Each C
method keeps upstream's semantics on the instance's ordinary attributes and
calls a subclass's override of any method it would call itself.
"""

import datetime as _datetime
import hashlib as _hashlib
import logging as _logging
import numbers as _numbers

import tornado
import tornado.escape as _escape
import tornado.httputil as _httputil
import tornado.util as _util
import tornado.web as _web

from tornado_c import _core
from tornado_c import httputil as _ours_httputil  # noqa: F401  (sets up the C headers)

RequestHandler = _web.RequestHandler

# The functions upstream's class defines, by name (taken from the class
# dict at import time, before any replacement).
_originals = {
    name: RequestHandler.__dict__[name]
    for name in (
        "__init__",
        "clear",
        "set_header",
        "add_header",
        "clear_header",
        "_convert_header_value",
        "set_status",
        "get_status",
        "write",
        "flush",
        "finish",
        "compute_etag",
        "set_etag_header",
        "check_etag_header",
        "_should_not_send_content",
        "_clear_representation_headers",
        "_log",
        "_request_summary",
        "_break_cycles",
        "initialize",
        "set_default_headers",
        "on_finish",
    )
}
_originals["Application.log_request"] = _web.Application.__dict__["log_request"]

_descriptors = _core._web_handler_setup(
    {
        "RequestHandler": RequestHandler,
        "ObjectDict": _util.ObjectDict,
        "_UIModuleNamespace": _web._UIModuleNamespace,
        "responses": _httputil.responses,
        "server": "TornadoServer/%s" % tornado.version,
        "Integral": _numbers.Integral,
        "datetime": _datetime.datetime,
        "format_timestamp": _httputil.format_timestamp,
        "json_encode": _escape.json_encode,
        "Application": _web.Application,
        "ResponseStartLine": _httputil.ResponseStartLine,
        "Future": _web.Future,
        "sha1": _hashlib.sha1,
        "web_globals": _web.__dict__,
        "Logger": _logging.Logger,
        "originals": _originals,
    }
)


def methods():
    """{(class, attribute name): C descriptor} to install."""
    out = {}
    for key, d in _descriptors.items():
        cls, _, name = key.rpartition(".")
        out[(_web.Application if cls == "Application" else RequestHandler, name)] = d
    return out
