"""tornado_c._httplog: the records the C HTTP server logs carry the location
(file, line, function) of upstream's logging call for the same message, as
under upstream (tests/test_web_app_differential.py compares a whole app's
records; this checks each message and the fallbacks)."""

import logging
import os
import sys

import pytest

import tornado.http1connection
import tornado.iostream
from tornado_c import _httplog


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def captured():
    h = Capture()
    loggers = [logging.getLogger("tornado.general"), logging.getLogger("tornado.application")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(h)
        lg.setLevel(logging.DEBUG)
    yield h.records
    for lg, level in zip(loggers, old):
        lg.removeHandler(h)
        lg.setLevel(level)


def upstream_line(module, needle, logger="gen_log"):
    """(path, line, function) of the line of `module` holding `needle` in a
    `logger.` call: found by reading the text, not by the module's ast."""
    path = module.__file__
    func = None
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            stripped = line.strip()
            if stripped.startswith(("def ", "async def ")):
                func = stripped.split("def ", 1)[1].split("(", 1)[0]
            if needle in line and logger + "." in line:
                return path, i, func
    raise AssertionError("%r not in %s" % (needle, path))


@pytest.mark.parametrize("call, needle, module", [
    (("info", "Malformed HTTP message from %s: %s", "ctx", ValueError("x")),
     '"Malformed HTTP message from %s: %s"', tornado.http1connection),
    (("info", "Timeout reading body from %s", "ctx"),
     '"Timeout reading body from %s"', tornado.http1connection),
    (("info", "Unsatisfiable read, closing connection: too big"),
     '"Unsatisfiable read, closing connection', tornado.iostream),
])
def test_records_at_upstreams_call(captured, call, needle, module):
    level, msg, *args = call
    getattr(_httplog.gen_log, level)(msg, *args)
    (rec,) = captured
    path, line, func = upstream_line(module, needle)
    assert (rec.pathname, rec.lineno, rec.funcName) == (path, line, func)
    assert rec.name == "tornado.general" and rec.levelname == "INFO"
    assert rec.msg == msg and rec.args == tuple(args)
    assert rec.getMessage() == msg % tuple(args) if args else rec.getMessage() == msg


def test_exc_info_true_and_uncaught_site(captured):
    try:
        raise KeyError("k")
    except KeyError:
        _httplog.gen_log.error("Uncaught exception", exc_info=True)
    (rec,) = captured
    path, line, func = upstream_line(tornado.http1connection, '"Uncaught exception"')
    assert (rec.pathname, rec.lineno, rec.funcName) == (path, line, func)
    assert rec.exc_info[0] is KeyError and rec.levelname == "ERROR"


def test_message_without_upstream_site_is_logged_at_the_caller(captured):
    _httplog.app_log.error("Uncaught exception", exc_info=(ValueError, ValueError("v"), None))
    _httplog.gen_log.info("something tornado does not log %d", 5)
    a, b = captured
    here = os.path.abspath(__file__)
    assert a.name == "tornado.application" and os.path.abspath(a.pathname) == here
    assert a.exc_info[0] is ValueError
    assert b.getMessage() == "something tornado does not log 5"
    assert os.path.abspath(b.pathname) == here
    assert b.funcName == "test_message_without_upstream_site_is_logged_at_the_caller"


def test_disabled_level_builds_no_record(captured):
    logging.getLogger("tornado.general").setLevel(logging.WARNING)
    _httplog.gen_log.info("Timeout reading body from %s", "ctx")
    assert captured == []


def test_other_attributes_are_the_loggers():
    assert _httplog.gen_log.name == "tornado.general"
    assert _httplog.app_log.isEnabledFor == logging.getLogger("tornado.application").isEnabledFor


def test_the_c_server_logs_through_it(tmp_path):
    """The C HTTP server logs through these objects: a server under the full
    switch (``python -m tornado_c``) answers a request with two Host headers
    400 and the record is located at upstream's call."""
    from conftest import run_python

    script = tmp_path / "malformed.py"
    script.write_text(r"""
import asyncio, logging, socket, sys
import tornado.web
from tornado.httpserver import HTTPServer
recs = []
class H(logging.Handler):
    def emit(self, r): recs.append(r)
logging.getLogger("tornado.general").addHandler(H())
logging.getLogger("tornado.general").setLevel(logging.INFO)
async def main():
    srv = HTTPServer(tornado.web.Application([]))
    sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(8)
    sock.setblocking(False)
    srv.add_sockets([sock])
    r, w = await asyncio.open_connection(*sock.getsockname())
    w.write(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    print(await asyncio.wait_for(r.read(), 30))
    w.close()
    srv.stop()
asyncio.run(main())
(rec,) = [r for r in recs if r.msg.startswith("Malformed")]
mod = sys.modules.get("tornado_c._httplog")
print(rec.funcName, rec.pathname.endswith("http1connection.py"),
      mod is not None and mod._sites is not None)
""")
    p = run_python("-m", "tornado_c", str(script), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-3:] == ["_read_message_inner", "True", "True"], p.stdout
