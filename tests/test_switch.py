"""The drop-in switch: install/uninstall, TORNADO_C_DISABLE, versions and --info."""

import pytest

import tornado_c
from tornado_c import _core
from tornado_c._switch import COMPONENTS, disabled_from_env

from conftest import needs_test_api


def test_versions_report_linked_libraries():
    import tornado

    v = tornado_c.versions()
    assert v["tornado"] == tornado.version
    assert v["tornado_c"] == tornado_c.__version__
    assert v["libuv"].count(".") == 2 and v["libuv"] == _core.libuv_version()
    assert v["llhttp"].count(".") == 2


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
