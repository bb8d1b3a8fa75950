"""The RequestHandler hot path in C: what the ``web`` switch component
installs on upstream's ``tornado.web`` classes (see csrc/web/handler.c).

``methods()`` gives ``{(class, attribute): C descriptor}``.  The switch sets
each one on upstream's class (``WebComponent._patch_web``) and puts
upstream's function back when ``web`` is turned off: the classes, their
names and everything the switch does not replace stay upstream's.  Each C
method keeps upstream's semantics on the instance's ordinary attributes and
calls a subclass's override of any method it would call itself.
"""

import asyncio as _asyncio
import collections.abc as _collections_abc
import datetime as _datetime
import dis as _dis
import http.cookies as _http_cookies
import logging as _logging
import numbers as _numbers
import sys as _sys

import tornado
import tornado.escape as _escape
import tornado.gen as _gen
from tornado.concurrent import future_set_result_unless_cancelled as _future_set_result_unless_cancelled
import tornado.httputil as _httputil
import tornado.util as _util
import tornado.web as _web

from tornado_c import _core
from tornado_c import _forward
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
        "_cross_origin_protection",
        "decode_argument",
        "_get_arguments",
        "_get_argument",
        "get_argument",
        "get_query_argument",
        "get_body_argument",
        "get_arguments",
        "get_query_arguments",
        "get_body_arguments",
        "get_cookie",
        "set_cookie",
        "clear_cookie",
        "redirect",
        "write_error",
        "send_error",
        "log_exception",
        "_handle_request_exception",
        "prepare",
        "_execute",
    )
}
_originals["Application.log_request"] = _web.Application.__dict__["log_request"]
_originals["_HandlerDelegate.execute"] = _web._HandlerDelegate.__dict__["execute"]
_originals["HTTPServerRequest._parse_body"] = _httputil.HTTPServerRequest.__dict__["_parse_body"]


def _log_result(f):
    # what upstream's execute adds to the Future of _execute
    return f.cancelled() or f.result()


def _start_upstream(delegate, transforms):
    """The end of upstream's _HandlerDelegate.execute, for a handler whose
    instance has an _execute of its own."""
    fut = _gen.convert_yielded(
        delegate.handler._execute(transforms, *delegate.path_args, **delegate.path_kwargs)
    )
    fut.add_done_callback(_log_result)
    return delegate.handler._prepared_future


async def _resume(self, result, after_prepare):
    """Upstream's RequestHandler._execute from its first ``await`` on, for
    the synchronous path (csrc/web/execute.c) when prepare() or the method
    returned an awaitable: ``after_prepare`` says which."""
    try:
        result = await result
        if after_prepare:
            if self._prepared_future is not None:
                _future_set_result_unless_cancelled(self._prepared_future, None)
            if self._finished:
                return
            method = getattr(self, self.request.method.lower())
            result = method(*self.path_args, **self.path_kwargs)
            if result is not None:
                result = await result
        if self._auto_finish and not self._finished:
            self.finish()
    except (Exception, _asyncio.CancelledError) as e:
        task = _asyncio.current_task()
        if isinstance(e, _asyncio.CancelledError) and task is not None and task.cancelling():
            result = None
            if not self._finished:
                try:
                    self.send_error(500)
                except Exception:
                    _web.app_log.error("Exception in exception handler", exc_info=True)
            raise
        try:
            self._handle_request_exception(e)
        except Exception:
            _web.app_log.error("Exception in exception handler", exc_info=True)
        finally:
            result = None
    finally:
        if self._prepared_future is not None and not self._prepared_future.done():
            self._prepared_future.set_result(None)


def _start_resume(handler, result, after_prepare):
    fut = _gen.convert_yielded(_resume(handler, result, after_prepare))
    fut.add_done_callback(_log_result)


_log_lines = {}


def _log_from(logger, where, msg, after):
    """``logger.error(msg, exc_info=True)`` as upstream's function ``where``
    logs it: the record's pathname, lineno and funcName are those of the
    line of ``where`` that logs ``msg`` first after naming ``after`` (the
    method whose exception it logs): what findCaller gives upstream.  C
    calls this while handling an error (csrc/web/handler_error.c), with the
    exception to log as sys.exc_info()."""
    Logger = _logging.Logger
    t = type(logger)
    if not (t.error is Logger.error and t._log is Logger._log
            and t.findCaller is Logger.findCaller):
        return logger.error(msg, exc_info=True)
    code = where.__code__
    lineno = _log_lines.get((code, msg, after))
    if lineno is None:
        lineno = code.co_firstlineno
        seen = False
        for ins in _dis.get_instructions(code):
            if ins.argval == after:
                seen = True
            elif seen and ins.argval == msg and ins.positions and ins.positions.lineno:
                lineno = ins.positions.lineno
                break
        _log_lines[(code, msg, after)] = lineno
    # Logger.error, then Logger._log with the place given rather than found
    if not logger.isEnabledFor(_logging.ERROR):
        return
    record = logger.makeRecord(logger.name, _logging.ERROR, code.co_filename, lineno, msg, (),
                               _sys.exc_info(), code.co_name, None, None)
    logger.handle(record)


# _execute of coroutine handlers (csrc/web/execute_coro.c) is this coroutine type
_collections_abc.Coroutine.register(_core._WebExecute)

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
        "ResponseStartLine.__new__": _httputil.ResponseStartLine.__dict__["__new__"],
        "Future": _web.Future,
        "web_globals": _web.__dict__,
        "Logger": _logging.Logger,
        "_HandlerDelegate": _web._HandlerDelegate,
        "_ArgDefaultMarker": _web._ArgDefaultMarker,
        "_ARG_DEFAULT": _web._ARG_DEFAULT,
        "MissingArgumentError": _web.MissingArgumentError,
        "HTTPError": _web.HTTPError,
        "CancelledError": _asyncio.CancelledError,
        "_get_running_loop": _asyncio._get_running_loop,
        "_start_resume": _start_resume,
        "_start_upstream": _start_upstream,
        "_log_result": _log_result,
        "BaseEventLoop.get_task_factory": _asyncio.BaseEventLoop.get_task_factory,
        "_UIModuleNamespace.__init__": _web._UIModuleNamespace.__dict__["__init__"],
        "Logger.isEnabledFor": _logging.Logger.__dict__["isEnabledFor"],
        "HTTPError.get_message": _web.HTTPError.__dict__["get_message"],
        "_log_from": _log_from,
        "originals": _originals,
        "http.cookies": _http_cookies,
        "timezone.utc": _datetime.timezone.utc,
    }
)


# Each C descriptor goes on the class inside a forwarder: a plain function
# with upstream's signature (see tornado_c/_forward.py), which C recognises
# as its own method.
_forwarders = {
    key: _forward.forwarder(_originals[key], d) for key, d in _descriptors.items()
}
_core._web_handler_use(_forwarders)


def methods():
    """{(class, attribute name): function forwarding to C} to install."""
    out = {}
    for key, f in _forwarders.items():
        cls, _, name = key.rpartition(".")
        owner = {"Application": _web.Application, "_HandlerDelegate": _web._HandlerDelegate}
        out[(owner.get(cls, RequestHandler), name)] = f
    return out
