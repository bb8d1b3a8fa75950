"""The drop-in switch: which C components exist, which are enabled, and
patching them into upstream Tornado (and out again).

Each component is a small object with ``available`` (is it built in C yet),
``enable()`` and ``disable()``.  ``install()`` enables the requested ones that
are available and not turned off by ``TORNADO_C_DISABLE``.
"""

import os
import threading

COMPONENTS = ("loop", "http", "web", "websocket")

_lock = threading.RLock()


def disabled_from_env(environ=None):
    """Parse TORNADO_C_DISABLE=loop,http,... into a set of component names."""
    environ = os.environ if environ is None else environ
    raw = environ.get("TORNADO_C_DISABLE", "")
    names = {p.strip().lower() for p in raw.replace(";", ",").split(",") if p.strip()}
    if "all" in names:
        return set(COMPONENTS)
    unknown = names - set(COMPONENTS)
    if unknown:
        raise ValueError(
            "TORNADO_C_DISABLE: unknown component(s) %s; known: %s"
            % (", ".join(sorted(unknown)), ", ".join(COMPONENTS))
        )
    return names


class Component:
    """One switchable part.  Subclasses set name/what and implement _on/_off."""

    name = ""
    what = ""
    available = True
    requires = ()  # other components that must be active for this one

    def __init__(self):
        self.active = False

    def enable(self):
        if not self.active:
            self._on()
            self.active = True

    def disable(self):
        if self.active:
            self._off()
            self.active = False

    def _on(self):
        raise NotImplementedError

    def _off(self):
        raise NotImplementedError


class WebSocketComponent(Component):
    name = "websocket"
    what = "WebSocket masking in C (framing, UTF-8 and deflate later)"

    def __init__(self):
        super().__init__()
        self._saved = None

    def _on(self):
        import tornado.util
        import tornado.websocket

        from tornado_c._core import websocket_mask

        # tornado.websocket binds _websocket_mask at import time, so both
        # names must be replaced.
        self._saved = (tornado.util._websocket_mask, tornado.websocket._websocket_mask)
        tornado.util._websocket_mask = websocket_mask
        tornado.websocket._websocket_mask = websocket_mask

    def _off(self):
        import tornado.util
        import tornado.websocket

        tornado.util._websocket_mask, tornado.websocket._websocket_mask = self._saved
        self._saved = None


class LoopComponent(Component):
    """asyncio's event loop policy -> tornado_c.loop.EventLoopPolicy, so every
    IOLoop(), asyncio.new_event_loop() and asyncio.run() gets the C loop."""

    name = "loop"
    what = "asyncio event loop on libuv"

    def __init__(self):
        super().__init__()
        self._saved = None

    def _on(self):
        import asyncio.events

        from tornado_c.loop import EventLoopPolicy

        # the policy object itself (None = asyncio's default, created lazily)
        self._saved = asyncio.events._event_loop_policy
        asyncio.set_event_loop_policy(EventLoopPolicy())

    def _off(self):
        import asyncio

        asyncio.set_event_loop_policy(self._saved)
        self._saved = None


class HTTPComponent(Component):
    """The server path: the C IOStream and the C HTTP server.

    * tornado.httpserver.HTTPServer.configure(tornado_c.httpserver.HTTPServer):
      every HTTPServer (Application.listen, tornado.testing, ...) serves its
      connections in C when it runs on the tornado_c loop.
    * ``tornado.tcpserver.IOStream`` and ``tornado.tcpclient.IOStream`` ->
      ``tornado_c.iostream.IOStream``: the plain (non-TLS) stream a
      ``TCPServer.handle_stream`` receives and the one ``TCPClient.connect()``
      returns (also what the simple HTTP client uses) is the C stream.  TLS
      keeps upstream's ``SSLIOStream`` (tcpserver builds it directly;
      tcpclient converts with ``start_tls``).  Off the tornado_c loop the C
      class constructs upstream's IOStream, so the patch is inert there.

    Only those two module globals are replaced, not
    ``tornado.iostream.IOStream`` itself: code that constructs
    ``IOStream(sock)`` by hand keeps upstream's class (and its Python hooks,
    which some code patches).  The C stream belongs here rather than with
    ``loop`` because it needs the tornado_c loop (``requires``) and it is
    what the C HTTP server's connections already are.
    """

    name = "http"
    what = "IOStream (TCPServer/TCPClient) and HTTP/1.1 server in C"
    requires = ("loop",)

    # (module, global name) patched to tornado_c.iostream.IOStream
    STREAM_NAMES = (("tornado.tcpserver", "IOStream"), ("tornado.tcpclient", "IOStream"))

    def __init__(self):
        super().__init__()
        self._saved = None
        self._saved_streams = None

    def _on(self):
        import importlib

        import tornado.httpserver

        from tornado_c.httpserver import HTTPServer
        from tornado_c.iostream import IOStream

        base = tornado.httpserver.HTTPServer
        saved = (base._Configurable__impl_class, base._Configurable__impl_kwargs)
        streams = []
        for modname, attr in self.STREAM_NAMES:
            mod = importlib.import_module(modname)
            streams.append((mod, attr, mod.__dict__[attr]))
        base.configure(HTTPServer)
        for mod, attr, _old in streams:
            setattr(mod, attr, IOStream)
        self._saved = saved
        self._saved_streams = streams

    def _off(self):
        import tornado.httpserver

        base = tornado.httpserver.HTTPServer
        base._Configurable__impl_class, base._Configurable__impl_kwargs = self._saved
        for mod, attr, old in self._saved_streams:
            setattr(mod, attr, old)
        self._saved = None
        self._saved_streams = None


class NotYetComponent(Component):
    """A component whose C implementation has not landed: never active."""

    available = False

    def __init__(self, name, what):
        super().__init__()
        self.name = name
        self.what = what

    def enable(self):  # nothing in C to switch on yet
        pass


_components = {}


def register(component):
    """Register (or replace) a component object by its name."""
    with _lock:
        old = _components.get(component.name)
        if old is not None and old.active:
            old.disable()
        _components[component.name] = component


def _default_components():
    register(LoopComponent())
    register(HTTPComponent())
    register(NotYetComponent("web", "HTTPHeaders, request lifecycle, routing, gen runner"))
    register(WebSocketComponent())


_default_components()


def components():
    return dict(_components)


def install(loop=True, http=True, web=True, websocket=True):
    """Enable every requested C component that exists and is not disabled by
    TORNADO_C_DISABLE.  Idempotent.  Returns the set of active components."""
    wanted = {"loop": loop, "http": http, "web": web, "websocket": websocket}
    off = disabled_from_env()
    with _lock:
        for name in COMPONENTS:
            comp = _components[name]
            ok = wanted[name] and name not in off and comp.available
            ok = ok and all(
                _components[r].available and wanted[r] and r not in off
                for r in comp.requires
            )
            if ok:
                comp.enable()
            else:
                comp.disable()
        return active()


def uninstall():
    """Disable every component, restoring upstream Tornado's own objects."""
    with _lock:
        for name in reversed(COMPONENTS):
            _components[name].disable()


def active():
    return {name for name, comp in _components.items() if comp.active}
