"""The loggers the C HTTP server logs through (csrc/http/server_py.c imports
``app_log`` and ``gen_log`` from here), and tornado_c's code that stands for
upstream's with it.

A record logged from C would otherwise carry the location of the nearest
Python frame (the loop's ``run_forever``), not the line of Tornado that logs
the same message upstream.  These two objects stand for ``tornado.log``'s
loggers: a message that upstream's ``tornado/http1connection.py``,
``tornado/iostream.py`` or ``tornado/simple_httpclient.py`` logs gets that
call's file, line and function in its record; anything else is logged as
is.  The locations are read from upstream's source (``ast``) when the first
record is logged, so they follow the installed Tornado.
"""

import ast
import importlib.util
import logging
import sys

from tornado.log import app_log as _app_log, gen_log as _gen_log

_MODULES = ("tornado.http1connection", "tornado.iostream", "tornado.simple_httpclient")
_LOGGER_NAMES = {"app_log": _app_log.name, "gen_log": _gen_log.name}
_sites = None  # (logger name, format) -> (pathname, lineno, function); prefixes apart


def _scan(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    exact, prefix = {}, []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            name = func
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = child.name
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and isinstance(child.func.value, ast.Name)
                    and child.func.value.id in _LOGGER_NAMES and child.args):
                logger = _LOGGER_NAMES[child.func.value.id]
                first = child.args[0]
                where = (path, child.lineno, func)
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    exact.setdefault((logger, first.value), where)
                elif (isinstance(first, ast.BinOp) and isinstance(first.op, ast.Mod)
                      and isinstance(first.left, ast.Constant)
                      and isinstance(first.left.value, str)):
                    # "text %s" % value: the message is formatted before the call
                    head = first.left.value.split("%", 1)[0]
                    if head:
                        prefix.append((logger, head, where))
            visit(child, name)

    visit(tree, None)
    return exact, prefix


def _load_sites():
    exact, prefix = {}, []
    for mod in _MODULES:
        try:
            spec = importlib.util.find_spec(mod)
            e, p = _scan(spec.origin)
        except (OSError, SyntaxError, AttributeError, ImportError, ValueError):
            continue  # no source: records keep the C caller's location
        for k, v in e.items():
            exact.setdefault(k, v)
        prefix += p
    return exact, prefix


def _site(logger, msg):
    global _sites
    if _sites is None:
        _sites = _load_sites()
    exact, prefix = _sites
    if not isinstance(msg, str):
        return None
    where = exact.get((logger.name, msg))
    if where is None:
        for name, head, w in prefix:
            if name == logger.name and msg.startswith(head):
                return w
    return where


class _UpstreamSiteLogger:
    """``debug``/``info``/``error``/``warning`` of one of tornado.log's loggers, the
    record located at upstream's logging call for the same message."""

    __slots__ = ("_logger",)

    def __init__(self, logger):
        self._logger = logger

    def _log(self, level, msg, args, exc_info):
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        where = _site(logger, msg)
        if where is None:
            logger.log(level, msg, *args, exc_info=exc_info, stacklevel=3)
            return
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
        else:
            exc_info = None
        record = logger.makeRecord(logger.name, level, where[0], where[1], msg, args,
                                   exc_info, where[2])
        logger.handle(record)

    def debug(self, msg, *args, exc_info=None):
        self._log(logging.DEBUG, msg, args, exc_info)

    def info(self, msg, *args, exc_info=None):
        self._log(logging.INFO, msg, args, exc_info)

    def warning(self, msg, *args, exc_info=None):
        self._log(logging.WARNING, msg, args, exc_info)

    def error(self, msg, *args, exc_info=None):
        self._log(logging.ERROR, msg, args, exc_info)

    def __getattr__(self, name):
        return getattr(self._logger, name)


app_log = _UpstreamSiteLogger(_app_log)
gen_log = _UpstreamSiteLogger(_gen_log)
