"""The drop-in switch: which C components exist, which are enabled, and
patching them into upstream Tornado (and out again).

Each component is a small object with ``available`` (is it built in C yet),
``enable()`` and ``disable()``.  ``install()`` enables the requested ones that
are available and not turned off by ``TORNADO_C_DISABLE``.

A component replaces names in upstream modules (``patches``: module name ->
the method that patches it).  It never imports those modules itself: an
upstream module the application has already imported is patched at once,
any other one right after the application imports it (``_ImportHook``, a
``sys.meta_path`` finder that is there only while some component is on), so
``install()`` adds none of Tornado's modules to ``sys.modules``, and an
application that forgot an import fails under tornado_c as it does under
plain Python.  A module that is reloaded (``importlib.reload``) is patched
again.  ``disable()`` puts every replaced object back.
"""

import importlib
import os
import sys
import threading

COMPONENTS = ("loop", "http", "web", "websocket")

# install()/uninstall()/register().  Held while waiting for a module another
# thread is importing, so patching (which runs inside imports) never takes it.
_lock = threading.RLock()
# The replaced attributes and the components' ``active`` flags.  Nothing is
# imported while it is held.
_patch_lock = threading.RLock()


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


class _PatchingLoader:
    """Stands in for a watched module's loader during its import: runs the
    real loader, then the patches.  Everything else is the real loader's."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module):
        # From here on the module and its spec show the real loader (code
        # that inspects __loader__ or __spec__.loader never sees this one).
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        self._loader.exec_module(module)
        self._hook.imported(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _ImportHook:
    """A ``sys.meta_path`` finder that finds nothing itself: for a watched
    module name it asks the finders after it, and wraps the loader of the
    spec they find so the watching components patch the module as soon as
    it has been executed (on import and on reload)."""

    def __init__(self):
        self._watchers = {}  # module name -> [component, ...]

    def find_spec(self, name, path=None, target=None):
        if name not in self._watchers:
            return None
        meta_path = list(sys.meta_path)
        try:
            later = meta_path[meta_path.index(self) + 1:]
        except ValueError:  # removed while an import was under way
            return None
        for finder in later:
            find_spec = getattr(finder, "find_spec", None)
            spec = None if find_spec is None else find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _PatchingLoader(spec.loader, self)
        return spec

    def imported(self, module):
        for component in list(self._watchers.get(module.__name__, ())):
            component.patch(module)

    def watch(self, name, component):
        """Called with _lock held."""
        watchers = self._watchers.get(name, [])
        if component not in watchers:
            # copy on write: find_spec() and imported() read without a lock
            self._watchers[name] = watchers + [component]
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def unwatch(self, name, component):
        """Called with _lock held."""
        watchers = [c for c in self._watchers.get(name, ()) if c is not component]
        if watchers:
            self._watchers[name] = watchers
        else:
            self._watchers.pop(name, None)
        if not self._watchers:
            while self in sys.meta_path:
                sys.meta_path.remove(self)


_hook = _ImportHook()


def _imported_module(name):
    """The module `name` if it has been imported, else None: an import that
    has not started is left to the application.  A module another thread is
    importing right now is waited for (import_module() returns it once that
    import is done; only if that import fails does it try once more)."""
    module = sys.modules.get(name)
    if module is None:
        return None
    if getattr(getattr(module, "__spec__", None), "_initializing", False):
        try:
            module = importlib.import_module(name)
        except ImportError:  # that import failed
            return None
    return module


class Component:
    """One switchable part.  Subclasses set name/what, and ``patches`` and/or
    ``_on``/``_off``."""

    name = ""
    what = ""
    available = True
    requires = ()  # other components that must be active for this one
    # upstream module name -> name of the method that patches it; the method
    # gets the module, imports what it needs, and calls self._replace()
    patches = {}

    def __init__(self):
        self.active = False
        # (id(obj), attribute) -> (obj, attribute, original, replacement)
        self._replaced = {}

    def enable(self):
        if self.active:
            return
        self._on()
        with _patch_lock:
            self.active = True
        try:
            for name in self.patches:
                _hook.watch(name, self)
            for name in self.patches:
                module = _imported_module(name)
                if module is not None:
                    self.patch(module)
        except BaseException:
            self.disable()
            raise

    def disable(self):
        if not self.active:
            return
        for name in self.patches:
            _hook.unwatch(name, self)
        with _patch_lock:
            self.active = False
            for obj, attr, original, _new in reversed(list(self._replaced.values())):
                setattr(obj, attr, original)
            self._replaced.clear()
        self._off()

    def patch(self, module):
        """Apply this component's patch to `module` (one of ``patches``)."""
        getattr(self, self.patches[module.__name__])(module)

    def _replace(self, *swaps):
        """Set each (obj, attribute, replacement), keeping the original for
        disable(); all or none, and none once the component is off.  An
        attribute that already holds its replacement keeps the original
        recorded when it was set (a module imported from an already patched
        one, e.g. ``tornado.websocket`` binding ``tornado.util``'s name, gets
        that one's original)."""
        with _patch_lock:
            if not self.active:
                return
            records = {}
            for obj, attr, new in swaps:
                key = (id(obj), attr)
                current = getattr(obj, attr)
                if current is new:
                    if key in self._replaced:
                        continue
                    current = next(
                        (orig for _o, _a, orig, repl in self._replaced.values() if repl is new),
                        current,
                    )
                records[key] = (obj, attr, current, new)
            for obj, attr, _current, new in records.values():
                setattr(obj, attr, new)
            self._replaced.update(records)

    def _on(self):
        pass

    def _off(self):
        pass


class WebSocketComponent(Component):
    """WebSocket framing in C.

    * ``_websocket_mask`` (``tornado.util`` and ``tornado.websocket``, which
      binds it at import time) -> the C mask.
    * ``WebSocketHandler.get_websocket_protocol`` and
      ``WebSocketClientConnection.get_websocket_protocol`` -> the same
      methods building ``tornado_c.websocket._CWebSocketProtocol13`` (a
      subclass of upstream's ``WebSocketProtocol13`` whose frames are parsed,
      unmasked, UTF-8 checked and built in C).  A handler or client class
      that overrides ``get_websocket_protocol`` keeps its own.
    """

    name = "websocket"
    what = "WebSocket framing, masking and UTF-8 checks in C (deflate: upstream's zlib)"
    patches = {"tornado.util": "_patch_mask", "tornado.websocket": "_patch_websocket"}

    def _patch_mask(self, module):
        from tornado_c._core import websocket_mask

        self._replace((module, "_websocket_mask", websocket_mask))

    def _patch_websocket(self, module):
        from tornado_c import websocket as ours

        self._patch_mask(module)
        handler = getattr(module, "WebSocketHandler", None)
        client = getattr(module, "WebSocketClientConnection", None)
        if handler is None or client is None:
            return
        if not issubclass(ours._CWebSocketProtocol13, module.WebSocketProtocol13):
            # tornado.websocket was reloaded: our class derives from the old
            # one, so the new module keeps its own protocol
            return
        self._replace(
            (handler, "get_websocket_protocol", ours._handler_get_websocket_protocol),
            (client, "get_websocket_protocol", ours._client_get_websocket_protocol),
        )


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
      returns (also what the simple HTTP client uses) is the C stream;
      tcpclient converts it with its ``start_tls`` for TLS.  Off the
      tornado_c loop the C class constructs upstream's IOStream, so the
      patch is inert there.
    * ``tornado.tcpserver.TCPServer._handle_connection`` -> one that gives a
      server with ``ssl_options`` the C stream with TLS inside it
      (``tornado_c.iostream._SSLIOStream``, the class ``start_tls`` gives);
      upstream's method otherwise (another loop, a replaced ``SSLIOStream``
      / ``ssl_wrap_socket`` in tornado.tcpserver, a context class that is
      not the stdlib's).

    Only those two module globals (and that method) are replaced, not
    ``tornado.iostream.IOStream`` itself: code that constructs
    ``IOStream(sock)`` by hand keeps upstream's class (and its Python hooks,
    which some code patches).  The C stream belongs here rather than with
    ``loop`` because it needs the tornado_c loop (``requires``) and it is
    what the C HTTP server's connections already are.

    * ``tornado.simple_httpclient.HTTP1Connection`` ->
      ``tornado_c.simple_httpclient.HTTP1ClientConnection``: the simple HTTP
      client (and the WebSocket client, which builds its connection the same
      way) parse response heads and decide the body framing in C
      (csrc/http/client.c).
    * ``SimpleAsyncHTTPClient._connection_class`` gives
      ``tornado_c.simple_httpclient.HTTPClientConnection``: upstream's
      per-fetch delegate with a leaner ``run()`` (the request written in
      one C-built write, IP literals connected without the resolver's
      executor hop).
    * ``SimpleAsyncHTTPClient.fetch_impl`` and ``AsyncHTTPClient.fetch``:
      upstream's, but the common fetch takes a shorter way to its
      connection (``tornado_c._client_entry``).
    """

    name = "http"
    what = "IOStream (TCPServer/TCPClient) and HTTP/1.1 server in C"
    requires = ("loop",)
    patches = {
        "tornado.httpserver": "_patch_httpserver",
        # tornado_c.httpserver imports tornado.httpserver: when it is the
        # first to, its HTTPServer does not exist yet when tornado.httpserver
        # has been executed, and the patch waits for the end of its import
        "tornado_c.httpserver": "_patch_httpserver",
        "tornado.tcpserver": "_patch_stream",
        "tornado.tcpclient": "_patch_stream",
        "tornado.simple_httpclient": "_patch_client",
        # these two import tornado.simple_httpclient: when one of them is the
        # first to, the patch waits for the end of its import
        "tornado_c.simple_httpclient": "_patch_client",
        "tornado_c._client_entry": "_patch_client",
    }
    # the keyword arguments configure() is given (none)
    _NO_KWARGS = {}

    def _patch_httpserver(self, _module):
        upstream = sys.modules.get("tornado.httpserver")
        ours = sys.modules.get("tornado_c.httpserver")
        if upstream is None:
            return
        if ours is None:
            ours = importlib.import_module("tornado_c.httpserver")
        HTTPServer = getattr(ours, "HTTPServer", None)
        if HTTPServer is None:  # tornado_c.httpserver is being imported
            return
        base = upstream.HTTPServer.configurable_base()
        if not issubclass(HTTPServer, base):
            # tornado.httpserver was reloaded: its new class is not the one
            # tornado_c's HTTPServer derives from, and cannot be configured
            # with it (so it stays upstream's, as the reload made it)
            return
        # what base.configure(HTTPServer) does, recorded for disable()
        self._replace(
            (base, "_Configurable__impl_class", HTTPServer),
            (base, "_Configurable__impl_kwargs", self._NO_KWARGS),
        )

    def _patch_stream(self, module):
        from tornado_c.iostream import IOStream, _tcpserver_handle_connection

        swaps = [(module, "IOStream", IOStream)]
        server = getattr(module, "TCPServer", None)
        if server is not None and module.__name__ == "tornado.tcpserver":
            upstream = server.__dict__.get("_handle_connection")
            if upstream is not None and not hasattr(upstream, "_tornado_c_upstream"):
                # with ssl_options: the C stream with TLS inside it
                swaps.append((server, "_handle_connection",
                              _tcpserver_handle_connection(upstream)))
        self._replace(*swaps)

    def _patch_client(self, _module):
        module = sys.modules.get("tornado.simple_httpclient")
        if module is None:
            return
        ours = []
        for name in ("tornado_c.simple_httpclient", "tornado_c._client_entry"):
            mod = sys.modules.get(name)
            if mod is None:
                mod = importlib.import_module(name)
            ours.append(mod)
        client_module, entry_module = ours
        HTTP1ClientConnection = getattr(client_module, "HTTP1ClientConnection", None)
        HTTPClientConnection = getattr(client_module, "HTTPClientConnection", None)
        _connection_class = getattr(client_module, "_connection_class", None)
        _fetch = getattr(entry_module, "_fetch", None)
        _fetch_impl = getattr(entry_module, "_fetch_impl", None)
        if None in (HTTP1ClientConnection, HTTPClientConnection, _connection_class, _fetch,
                    _fetch_impl):
            # one of ours is being imported (it imports
            # tornado.simple_httpclient): the patch waits for the end of
            # its import
            return
        if module.HTTP1Connection is not HTTP1ClientConnection.__base__:
            # tornado.http1connection was reloaded (or someone put their
            # own class there): ours derives from the old class, so the
            # module keeps what it has
            return
        swaps = [(module, "HTTP1Connection", HTTP1ClientConnection)]
        if module._HTTPConnection is HTTPClientConnection.__base__:
            # SimpleAsyncHTTPClient's per-fetch delegate (subclasses that
            # override _connection_class keep theirs)
            swaps.append((module.SimpleAsyncHTTPClient, "_connection_class", _connection_class))
            # a fetch that starts at once skips the queue round trip
            # (subclasses that override fetch_impl keep theirs)
            swaps.append((module.SimpleAsyncHTTPClient, "fetch_impl", _fetch_impl))
            # a URL string without options gets its HTTPRequest without
            # __init__ (on the base class: every client's fetch)
            swaps.append((module.AsyncHTTPClient, "fetch", _fetch))
        self._replace(*swaps)


class WebComponent(Component):
    """tornado.web's request path in C.  Now: ``HTTPHeaders``,
    ``HTTPServerRequest``, routing and the ``RequestHandler`` hot path.

    The name ``tornado.httputil.HTTPHeaders`` stays upstream's class, with
    its own members (so do its introspection and every name bound to it);
    while ``web`` is on the class wears ``tornado_c.httputil._SwitchedMeta``
    instead of ``ABCMeta``, whose C ``__call__`` makes ``HTTPHeaders(...)``
    of the class itself -- ``RequestHandler.clear()`` on every request,
    upstream's ``copy()`` and ``parse()`` (``HTTP1Connection``, the HTTP
    clients), WebSocket -- give ``tornado_c.httputil.HTTPHeaders`` (C); the
    C HTTP server builds its request headers in C straight from the parsed
    bytes.  A subclass of upstream's class stays upstream's Python.  Both
    kinds are one type for isinstance (see tornado_c/httputil.py).

    When ``tornado.web`` is imported, methods of upstream's
    ``RequestHandler`` (``__init__``, ``clear``, headers, status, ``write``,
    ``flush``, ``finish``, ETags, arguments, ``get_cookie``, ``set_cookie``,
    ``clear_cookie``, ``redirect``,
    ``write_error``, the access log...), ``Application.log_request`` and
    ``_HandlerDelegate.execute`` are replaced on the classes by C
    descriptors (tornado_c/_webhandler.py, csrc/web/handler*.c,
    execute.c); turning ``web`` off puts upstream's functions back.
    Overrides in subclasses are honoured; a handler whose prepare and verb
    method are plain functions runs without a coroutine, Future or Task.

    Routing and the request: ``tornado.routing.Router.start_request``
    (which ``Application`` and every ``RuleRouter`` inherit) becomes a C
    method that gives ``_core.RoutingDelegate``; its ``headers_received``
    builds upstream's ``HTTPServerRequest`` in C and walks
    ``find_handler`` in C through upstream's ``Application``,
    ``RuleRouter``, ``PathMatches``... down to an upstream
    ``_HandlerDelegate``.  A class (or object) with its own version of one
    of those methods gets it called, as upstream's code would (see
    csrc/web/web.h).

    When ``tornado.gen`` is imported, ``tornado.gen.coroutine`` becomes
    the C wrapper and runner (tornado_c/gen.py, csrc/web/gen.c) for
    functions decorated from then on.
    """

    name = "web"
    what = (
        "HTTPHeaders, HTTPServerRequest, routing, the RequestHandler hot path"
        " and @gen.coroutine in C"
    )
    patches = {
        "tornado.httputil": "_patch_httputil",
        "tornado.routing": "_patch_routing",
        "tornado.web": "_patch_web",
        "tornado.gen": "_patch_gen",
        "tornado.httpserver": "_patch_httpserver_web",
    }

    def _patch_httpserver_web(self, _module):
        """``HTTPServer.start_request`` (upstream's, not replaced) runs in C
        for the C server (csrc/web/routing.c), calling the Router's C
        ``start_request`` directly when it is the one put on ``Router``."""
        from tornado_c import _core

        hs = sys.modules.get("tornado.httpserver")
        if hs is None or getattr(hs, "HTTPServer", None) is None:
            return
        routing = sys.modules.get("tornado.routing")
        sr = None
        if routing is not None:
            f = routing.Router.__dict__.get("start_request")
            if getattr(f, "__tornado_c_forwarder__", False):
                sr = f
        _core._web_httpserver_setup(hs, sr)

    def _patch_httputil(self, module):
        from tornado_c import _core
        from tornado_c import httputil as ours

        # what HTTPServerRequest is built from (csrc/web/request.c)
        _core._web_request_setup(module)

        cls = module.HTTPHeaders
        if cls is not ours._UpstreamHTTPHeaders:
            # tornado.httputil was reloaded: its new class is not the one
            # ours is registered with, so it stays as the reload made it and
            # the server builds upstream's headers again
            _core._web_headers_activate(False)
            return
        self._replace((cls, "__class__", ours._SwitchedMeta))
        with _patch_lock:
            if self.active and type(cls) is ours._SwitchedMeta:
                _core._web_headers_activate(True)

    def _patch_routing(self, module):
        """``Router.start_request`` -> the C routing delegate
        (csrc/web/routing.c), which builds the request in C and walks
        ``find_handler`` in C while the objects on the way are upstream's."""
        from tornado_c import _core

        _core._web_routing_setup(module)
        router = module.Router
        original = router.__dict__["start_request"]
        if getattr(original, "__tornado_c_forwarder__", False):  # ours, from an earlier install
            original = original.__wrapped__
        code = getattr(original, "__code__", None)
        if (
            getattr(original, "__qualname__", None) != "Router.start_request"
            or getattr(original, "__module__", None) != module.__name__
            or getattr(code, "co_filename", None) != getattr(module, "__file__", None)
        ):
            # someone put their own start_request there before the switch
            # was turned on: theirs stays, and with it the Python path
            return
        # a function with upstream's signature forwarding to the C
        # descriptor, so the class dict still holds a function
        from tornado_c._forward import forwarder

        method = forwarder(original, _core._web_start_request(original))
        self._replace((router, "start_request", method))
        self._patch_httpserver_web(None)

    def _patch_web(self, module):
        from tornado_c import _core
        from tornado_c import _webhandler

        # Application, _ApplicationRouter, _HandlerDelegate as upstream
        # defines them (routing.c builds _HandlerDelegate objects); read
        # before the handler methods below replace any of them
        _core._web_app_setup(module)
        if module.RequestHandler is not _webhandler.RequestHandler:
            # tornado.web was reloaded: the C methods are bound to the class
            # they were set up with, so the new one stays upstream's
            return
        self._replace(*((cls, name, d) for (cls, name), d in _webhandler.methods().items()))

    def _patch_gen(self, module):
        # tornado.gen.coroutine becomes the C wrapper/runner: functions
        # decorated from now on (modules imported later, gen_test, locks and
        # queues at call time) get it; names bound before keep upstream's.
        from tornado_c import gen as ours

        if module.Return is not ours._set_up_with:
            # tornado.gen was reloaded: hand the C runner its new objects
            ours._setup(module)
        self._replace((module, "coroutine", ours.coroutine))

    def _off(self):
        from tornado_c import _core

        _core._web_headers_activate(False)


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
    register(WebComponent())
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
