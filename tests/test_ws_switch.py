"""The ``websocket`` switch component installs the C protocol through
get_websocket_protocol (server and client) and restores upstream's."""

import tornado.websocket as tws

from tornado_c import websocket as ours

ORIG_HANDLER = tws.WebSocketHandler.__dict__["get_websocket_protocol"]
ORIG_CLIENT = tws.WebSocketClientConnection.__dict__["get_websocket_protocol"]


def _current():
    return (tws.WebSocketHandler.__dict__["get_websocket_protocol"],
            tws.WebSocketClientConnection.__dict__["get_websocket_protocol"])


def test_install_and_uninstall(clean_switch):
    clean_switch.uninstall()
    assert _current() == (ORIG_HANDLER, ORIG_CLIENT)
    assert "websocket" in clean_switch.install()
    assert _current() == (ours._handler_get_websocket_protocol, ours._client_get_websocket_protocol)
    clean_switch.uninstall()
    assert _current() == (ORIG_HANDLER, ORIG_CLIENT)


def test_disabled_by_argument_and_env(clean_switch, monkeypatch):
    clean_switch.uninstall()
    assert "websocket" not in clean_switch.install(websocket=False)
    assert _current() == (ORIG_HANDLER, ORIG_CLIENT)
    clean_switch.uninstall()
    monkeypatch.setenv("TORNADO_C_DISABLE", "websocket")
    assert "websocket" not in clean_switch.install()
    assert _current() == (ORIG_HANDLER, ORIG_CLIENT)


def test_protocol_objects(clean_switch):
    clean_switch.uninstall()
    clean_switch.install()

    class Req:
        headers = {"Sec-WebSocket-Version": "13"}

    class H:
        request = Req()
        ping_interval = None
        ping_timeout = None
        max_message_size = 123

        def get_compression_options(self):
            return None

    p = tws.WebSocketHandler.get_websocket_protocol(H())
    assert type(p) is ours._CWebSocketProtocol13
    assert isinstance(p, tws.WebSocketProtocol13)
    assert p.mask_outgoing is False and p.params.max_message_size == 123
    Req.headers = {"Sec-WebSocket-Version": "8"}
    assert tws.WebSocketHandler.get_websocket_protocol(H()) is None

    class C:
        params = tws._WebSocketParams()

    p = tws.WebSocketClientConnection.get_websocket_protocol(C())
    assert type(p) is ours._CWebSocketProtocol13 and p.mask_outgoing is True


def test_subclass_override_kept(clean_switch):
    clean_switch.uninstall()
    clean_switch.install()

    class Mine(tws.WebSocketHandler):
        def get_websocket_protocol(self):
            return "mine"

    assert Mine.get_websocket_protocol(object()) == "mine"
