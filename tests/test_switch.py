"""The drop-in switch: install/uninstall, what each component patches,
TORNADO_C_DISABLE, versions and --info."""

import textwrap

import pytest

import tornado.iostream
import tornado.tcpclient
import tornado.tcpserver

import tornado_c
from tornado_c import _core
from tornado_c import iostream as tci
from tornado_c._switch import COMPONENTS, disabled_from_env

from conftest import needs_test_api, run_python


def test_versions_report_linked_libraries():
    import tornado

    v = tornado_c.versions()
    assert v["tornado"] == tornado.version
    assert v["tornado_c"] == tornado_c.__version__
    assert v["libuv"].count(".") == 2 and v["libuv"] == _core.libuv_version()
    assert v["llhttp"].count(".") == 2


@needs_test_api()
def test_libuv_initialises():
    # libuv runs a timer on a private loop
    assert _core._uv_selftest() is True


@needs_test_api()
def test_llhttp_initialises():
    # llhttp parses one request
    assert _core._llhttp_selftest() is True


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("", set()),
        ("loop", {"loop"}),
        ("loop,http", {"loop", "http"}),
        (" Web , websocket ", {"web", "websocket"}),
        ("all", set(COMPONENTS)),
    ],
)
def test_disable_env_parsing(raw, expected):
    assert disabled_from_env({"TORNADO_C_DISABLE": raw}) == expected


def test_disable_env_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown component"):
        disabled_from_env({"TORNADO_C_DISABLE": "loop,iostreem"})


def test_install_patches_websocket_mask_and_uninstall_restores(clean_switch, monkeypatch):
    import tornado.util
    import tornado.websocket

    monkeypatch.delenv("TORNADO_C_DISABLE", raising=False)
    tornado_c.uninstall()
    original = tornado.websocket._websocket_mask
    assert original is not _core.websocket_mask

    active = tornado_c.install()
    assert "websocket" in active
    assert tornado.websocket._websocket_mask is _core.websocket_mask
    assert tornado.util._websocket_mask is _core.websocket_mask
    # idempotent
    assert tornado_c.install() == active
    assert tornado.websocket._websocket_mask is _core.websocket_mask

    tornado_c.uninstall()
    assert tornado.websocket._websocket_mask is original
    assert tornado.util._websocket_mask is original
    assert tornado_c.active() == set()
    tornado_c.uninstall()  # uninstall twice is harmless
    assert tornado.websocket._websocket_mask is original


def test_install_respects_disable_env(clean_switch, monkeypatch):
    import tornado.websocket

    tornado_c.uninstall()
    monkeypatch.setenv("TORNADO_C_DISABLE", "websocket")
    assert "websocket" not in tornado_c.install()
    assert tornado.websocket._websocket_mask is not _core.websocket_mask


def test_install_arguments_select_components(clean_switch, monkeypatch):
    import tornado.websocket

    monkeypatch.delenv("TORNADO_C_DISABLE", raising=False)
    tornado_c.uninstall()
    assert "websocket" not in tornado_c.install(websocket=False)
    assert tornado.websocket._websocket_mask is not _core.websocket_mask
    assert "websocket" in tornado_c.install(websocket=True)


def test_info_lists_every_component(clean_switch):
    text = tornado_c.info()
    for name in COMPONENTS:
        assert name in text
    assert "libuv" in text and "llhttp" in text


def test_install_patches_tcp_names_and_uninstall_restores(clean_switch, monkeypatch):
    monkeypatch.delenv("TORNADO_C_DISABLE", raising=False)
    tornado_c.uninstall()
    orig_server = tornado.tcpserver.IOStream
    orig_client = tornado.tcpclient.IOStream
    orig_iostream = tornado.iostream.IOStream
    assert orig_server is orig_client is orig_iostream

    assert "http" in tornado_c.install()
    assert tornado.tcpserver.IOStream is tci.IOStream
    assert tornado.tcpclient.IOStream is tci.IOStream
    # the class itself is not replaced: hand-made IOStream(sock) is upstream's
    assert tornado.iostream.IOStream is orig_iostream
    # TLS keeps upstream's class
    assert tornado.tcpserver.SSLIOStream is tornado.iostream.SSLIOStream
    tornado_c.install()  # idempotent
    assert tornado.tcpserver.IOStream is tci.IOStream

    tornado_c.uninstall()
    assert tornado.tcpserver.IOStream is orig_server
    assert tornado.tcpclient.IOStream is orig_client
    assert tornado.iostream.IOStream is orig_iostream
    tornado_c.uninstall()
    assert tornado.tcpserver.IOStream is orig_server


@pytest.mark.parametrize("how", ["env", "argument", "env-loop"])
def test_tcp_names_untouched_without_http(clean_switch, monkeypatch, how):
    tornado_c.uninstall()
    orig = tornado.tcpserver.IOStream
    monkeypatch.delenv("TORNADO_C_DISABLE", raising=False)
    if how == "env":
        monkeypatch.setenv("TORNADO_C_DISABLE", "http")
        active = tornado_c.install()
    elif how == "env-loop":  # http requires loop
        monkeypatch.setenv("TORNADO_C_DISABLE", "loop")
        active = tornado_c.install()
    else:
        active = tornado_c.install(http=False)
    assert "http" not in active
    assert tornado.tcpserver.IOStream is orig
    assert tornado.tcpclient.IOStream is orig


# ------------------------------------------- patching on import, not before

# Each runs in a fresh interpreter, where nothing of tornado is imported yet.
_PRELUDE = """
import importlib, sys, threading
import tornado_c
from tornado_c import _core, _switch

def tornado_modules():
    return {m for m in sys.modules if m == "tornado" or m.startswith("tornado.")}

def hooked():
    return sum(f is _switch._hook for f in sys.meta_path)
"""


def run_fresh(body):
    proc = run_python("-c", _PRELUDE + textwrap.dedent(body), env={"TORNADO_C_DISABLE": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ok", proc.stdout
    return proc


def test_install_imports_none_of_tornado_and_patches_each_module_on_import():
    run_fresh("""
        before = tornado_modules()
        assert tornado_c.install() == {"loop", "http", "web", "websocket"}
        assert tornado_modules() == before, tornado_modules() - before
        assert "tornado.websocket" not in sys.modules
        assert "tornado_c.httputil" not in sys.modules
        assert hooked() == 1
        assert not _core._web_headers_active()

        import tornado.httputil
        import tornado_c.httputil as chu
        # the name stays upstream's class, which now constructs C headers
        assert tornado.httputil.HTTPHeaders is chu._UpstreamHTTPHeaders
        assert type(tornado.httputil.HTTPHeaders()) is chu.HTTPHeaders
        assert _core._web_headers_active()

        import tornado.websocket
        import tornado.util
        assert tornado.websocket._websocket_mask is _core.websocket_mask
        assert tornado.util._websocket_mask is _core.websocket_mask
        import tornado.httpserver
        import tornado_c.httpserver as chs
        assert tornado.httpserver.HTTPServer.configured_class() is chs.HTTPServer
        import tornado.tcpclient
        import tornado.tcpserver
        import tornado.iostream
        import tornado_c.iostream as tci
        assert tornado.tcpclient.IOStream is tci.IOStream
        assert tornado.tcpserver.IOStream is tci.IOStream
        assert tornado.iostream.IOStream is not tci.IOStream
        # the module shows its real loader, not the hook's stand-in
        for name in ("tornado.websocket", "tornado.httpserver", "tornado.tcpclient"):
            mod = sys.modules[name]
            assert type(mod.__loader__).__name__ == "SourceFileLoader", mod.__loader__
            assert mod.__spec__.loader is mod.__loader__

        tornado_c.uninstall()
        assert hooked() == 0
        up_mask = tornado.util._websocket_mask
        assert up_mask is not _core.websocket_mask
        # tornado.websocket bound tornado.util's patched name: it gets
        # upstream's function back too
        assert tornado.websocket._websocket_mask is up_mask
        assert up_mask in (getattr(sys.modules.get("tornado.speedups"), "websocket_mask", None),
                           tornado.util._websocket_mask_python)
        assert tornado.httpserver.HTTPServer.configured_class() is tornado.httpserver.HTTPServer
        assert tornado.tcpclient.IOStream is tornado.iostream.IOStream
        assert tornado.tcpserver.IOStream is tornado.iostream.IOStream
        assert type(tornado.httputil.HTTPHeaders()) is tornado.httputil.HTTPHeaders
        assert "__new__" not in vars(tornado.httputil.HTTPHeaders)
        assert not _core._web_headers_active()
        print("ok")
    """)


def test_modules_imported_while_off_stay_upstream():
    run_fresh("""
        tornado_c.install()
        tornado_c.uninstall()
        import tornado.websocket, tornado.tcpclient, tornado.iostream
        assert tornado.websocket._websocket_mask is not _core.websocket_mask
        assert tornado.tcpclient.IOStream is tornado.iostream.IOStream
        tornado_c.install(http=False)
        assert hooked() == 1  # websocket still watches tornado.websocket's reloads
        assert tornado.websocket._websocket_mask is _core.websocket_mask
        assert tornado.tcpclient.IOStream is tornado.iostream.IOStream
        tornado_c.install(http=False, web=False, websocket=False)
        assert hooked() == 0  # loop patches no module
        assert tornado.websocket._websocket_mask is not _core.websocket_mask
        print("ok")
    """)


def test_install_and_uninstall_are_idempotent_with_one_hook():
    run_fresh("""
        tornado_c.install()
        tornado_c.install()
        assert hooked() == 1
        import tornado.websocket
        assert tornado.websocket._websocket_mask is _core.websocket_mask
        tornado_c.uninstall()
        tornado_c.uninstall()
        assert hooked() == 0
        assert tornado.websocket._websocket_mask is not _core.websocket_mask
        print("ok")
    """)


def test_tornado_lazy_submodule_attribute_gets_patched():
    # tornado/__init__.py imports most submodules on first attribute access
    run_fresh("""
        import tornado
        tornado_c.install()
        assert "tornado.tcpclient" not in sys.modules
        import tornado_c.iostream as tci
        assert tornado.tcpclient.IOStream is tci.IOStream
        assert tornado.util._websocket_mask is _core.websocket_mask
        from tornado import httpserver
        import tornado_c.httpserver as chs
        assert httpserver.HTTPServer.configured_class() is chs.HTTPServer
        # not tornado.websocket, under plain python as under tornado_c
        try:
            tornado.websocket
        except AttributeError:
            pass
        else:
            raise AssertionError("tornado.websocket without an import")
        print("ok")
    """)


def test_reload_is_patched_again_and_uninstall_restores():
    run_fresh("""
        tornado_c.install()
        import tornado.websocket, tornado.tcpserver, tornado.iostream, tornado.httpserver
        import tornado_c.iostream as tci
        importlib.reload(tornado.websocket)
        assert tornado.websocket._websocket_mask is _core.websocket_mask
        importlib.reload(tornado.tcpserver)
        assert tornado.tcpserver.IOStream is tci.IOStream
        # a reloaded tornado.httpserver is a new class that tornado_c's
        # HTTPServer does not derive from: it stays upstream's, and the
        # reload works
        importlib.reload(tornado.httpserver)
        assert tornado.httpserver.HTTPServer.configured_class() is tornado.httpserver.HTTPServer
        importlib.reload(tornado.util)
        assert tornado.util._websocket_mask is _core.websocket_mask
        # a reloaded tornado.httputil is a new class that tornado_c's is not
        # registered with: it stays upstream's, and the server builds
        # upstream's headers again
        import tornado.httputil, tornado_c.httputil
        assert type(tornado.httputil.HTTPHeaders()) is tornado_c.httputil.HTTPHeaders
        importlib.reload(tornado.httputil)
        assert type(tornado.httputil.HTTPHeaders()) is tornado.httputil.HTTPHeaders
        assert not _core._web_headers_active()
        tornado_c.uninstall()
        assert tornado.websocket._websocket_mask is not _core.websocket_mask
        assert tornado.util._websocket_mask is not _core.websocket_mask
        assert tornado.tcpserver.IOStream is tornado.iostream.IOStream
        print("ok")
    """)


def test_tornado_c_httpserver_imported_first():
    # tornado_c.httpserver imports tornado.httpserver before its own class
    # exists: the patch is applied when its import ends
    run_fresh("""
        tornado_c.install()
        import tornado_c.httpserver as chs
        import tornado.httpserver
        assert tornado.httpserver.HTTPServer.configured_class() is chs.HTTPServer
        tornado_c.uninstall()
        assert tornado.httpserver.HTTPServer.configured_class() is tornado.httpserver.HTTPServer
        print("ok")
    """)


def test_install_while_other_threads_import():
    run_fresh("""
        names = ["tornado.websocket", "tornado.tcpclient", "tornado.httpserver", "tornado.web"]
        go = threading.Event()
        errors = []

        def imp(name):
            go.wait()
            try:
                importlib.import_module(name)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=imp, args=(n,)) for n in names]
        for t in threads:
            t.start()
        go.set()
        tornado_c.install()
        for t in threads:
            t.join()
        assert not errors, errors
        import tornado.websocket, tornado.tcpclient, tornado.httpserver, tornado.util
        import tornado_c.iostream as tci, tornado_c.httpserver as chs
        assert tornado.websocket._websocket_mask is _core.websocket_mask
        assert tornado.util._websocket_mask is _core.websocket_mask
        assert tornado.tcpclient.IOStream is tci.IOStream
        assert tornado.httpserver.HTTPServer.configured_class() is chs.HTTPServer
        print("ok")
    """)


_WEB_APP = """
import sys
import tornado.web

class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("hi")

app = tornado.web.Application([("/", Hello)])
print(sorted(m for m in sys.modules if m == "tornado" or m.startswith("tornado.")))
print(tornado.websocket.WebSocketHandler)
"""


def test_app_that_forgot_an_import_fails_as_under_plain_python(tmp_path):
    # the app uses tornado.websocket without importing it: under plain
    # python that is an AttributeError, and now under tornado_c too
    app = tmp_path / "app.py"
    app.write_text(_WEB_APP)
    env = {"TORNADO_C_DISABLE": ""}
    plain = run_python(str(app), cwd=str(tmp_path), env=env)
    ours = run_python("-m", "tornado_c", str(app), cwd=str(tmp_path), env=env)
    assert plain.returncode == ours.returncode == 1
    assert "AttributeError: module 'tornado' has no attribute 'websocket'" in plain.stderr
    assert ours.stderr == plain.stderr
    # the same tornado modules were imported both ways
    assert ours.stdout == plain.stdout
    assert "tornado.web" in plain.stdout and "tornado.websocket" not in plain.stdout
