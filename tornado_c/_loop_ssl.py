"""TLS for the tornado_c event loop's stream transports.

TLS runs as asyncio does it: the stdlib's ``asyncio.sslproto.SSLProtocol``
(the TLS state machine every stdlib loop uses: handshake, shutdown, flow
control, timeouts, ``ssl.MemoryBIO`` in and out) is the protocol of the C
stream transport underneath, and wraps the application's protocol; the
application gets the ``_SSLProtocolTransport`` it creates.  SSLProtocol is a
``BufferedProtocol`` on Python >= 3.11, so the C transport reads straight into
its buffer.

Everything an application can observe (exceptions on handshake failure and
timeout, ``get_extra_info('ssl_object' | 'peercert' | 'cipher' |
'compression' | 'sslcontext')``, unclean shutdowns, the order of protocol
calls) is therefore the stdlib's own behaviour; this module only builds the
objects the way ``asyncio.base_events`` and ``asyncio.selector_events`` do.
"""

import functools
import sys

from asyncio import sslproto as _sslproto

try:
    import ssl as _ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _ssl = None

# 3.10's SSLProtocol has no ssl_shutdown_timeout (its create_connection has
# no such argument either).
_HAS_SHUTDOWN_TIMEOUT = sys.version_info >= (3, 11)


def _check_ssl_module():
    if _ssl is None:
        raise RuntimeError("Python ssl module is not available")


def _fast_path_usable():
    """The C steady-state path (csrc/loop/tls.c) knows the SSLProtocol of
    Python 3.11-3.13: check that this one has what it uses."""
    proto = getattr(_sslproto, "SSLProtocol", None)
    states = getattr(_sslproto, "SSLProtocolState", None)
    return (proto is not None and states is not None and hasattr(states, "WRAPPED")
            and hasattr(_sslproto, "_SSLProtocolTransport")
            and all(hasattr(proto, name) for name in (
                "get_buffer", "buffer_updated", "_write_appdata", "_do_read",
                "_do_write", "_process_outgoing", "_control_app_writing",
                "_control_ssl_reading", "_call_eof_received", "_start_shutdown",
                "_fatal_error", "_get_app_transport", "max_size")))


if _HAS_SHUTDOWN_TIMEOUT and _ssl is not None:
    _SSLAgain = (_ssl.SSLWantReadError, _ssl.SSLSyscallError)

    if _fast_path_usable():
        from tornado_c import _core

        _core._tls_init(_sslproto.SSLProtocol, _sslproto.SSLProtocolState, _ssl.SSLObject,
                        _SSLAgain)

        class _SSLProtocolTransport(_core.TLSAppTransportBase,
                                    _sslproto._SSLProtocolTransport):
            """The stdlib's application transport, write() in C."""

        class _SSLProtocol(_core.TLSProtocolBase, _sslproto.SSLProtocol):
            """The stdlib's SSLProtocol.  Its steady state (WRAPPED:
            receiving, decrypting, handing data to the application,
            encrypting and sending what it writes) runs in C
            (TLSProtocolBase, csrc/loop/tls.c) on the same attributes,
            calling the stdlib's methods for everything else."""

            def _get_app_transport(self):
                # the stdlib's, with the transport class above
                if self._app_transport is None:
                    if self._app_transport_created:
                        raise RuntimeError("Creating _SSLProtocolTransport twice")
                    self._app_transport = _SSLProtocolTransport(self._loop, self)
                    self._app_transport_created = True
                return self._app_transport
    else:  # pragma: no cover - an SSLProtocol we do not know
        _SSLProtocol = _sslproto.SSLProtocol
else:  # pragma: no cover - 3.10: the older SSLProtocol, used as it is
    _SSLProtocol = _sslproto.SSLProtocol


def ssl_protocol(loop, app_protocol, sslcontext, waiter, server_side=False,
                 server_hostname=None, ssl_handshake_timeout=None,
                 ssl_shutdown_timeout=None, call_connection_made=True):
    """A new SSLProtocol wrapping `app_protocol` (raises ValueError for a
    non-positive timeout, as the stdlib does)."""
    _check_ssl_module()
    kwargs = {"call_connection_made": call_connection_made,
              "ssl_handshake_timeout": ssl_handshake_timeout}
    if _HAS_SHUTDOWN_TIMEOUT:
        kwargs["ssl_shutdown_timeout"] = ssl_shutdown_timeout
    return _SSLProtocol(loop, app_protocol, sslcontext, waiter,
                        server_side, server_hostname, **kwargs)


async def start_ssl_transport(loop, transport, protocol_factory, ssl, server_hostname,
                              server_side, ssl_handshake_timeout, ssl_shutdown_timeout):
    """Start the C stream `transport` (connected, not started) under TLS:
    the application's protocol from `protocol_factory` behind an SSLProtocol.
    Waits for the handshake; returns (app transport, app protocol).  As
    asyncio's _create_connection_transport with ssl."""
    try:
        protocol = protocol_factory()
        waiter = loop.create_future()
        sslcontext = None if isinstance(ssl, bool) else ssl
        proto = ssl_protocol(loop, protocol, sslcontext, waiter, server_side=server_side,
                             server_hostname=server_hostname,
                             ssl_handshake_timeout=ssl_handshake_timeout,
                             ssl_shutdown_timeout=ssl_shutdown_timeout)
        transport._start(proto, None)
    except BaseException:
        transport._dispose()
        raise
    app_transport = proto._app_transport
    try:
        await waiter
    except BaseException:
        app_transport.close()
        waiter = None  # no cycle through the exception (as asyncio, gh-109534)
        raise
    return app_transport, protocol


class ServerProtocolFactory:
    """The protocol factory a TLS server's C listener calls per accepted
    connection: the application's protocol wrapped in a server-side
    SSLProtocol.  The handshake's outcome is handled as asyncio's
    _accept_connection2 does: on failure the transport is closed and the
    error reported to the exception handler in debug mode only."""

    __slots__ = ("_loop", "_factory", "_sslcontext", "_handshake_timeout",
                 "_shutdown_timeout")

    def __init__(self, loop, protocol_factory, sslcontext, ssl_handshake_timeout,
                 ssl_shutdown_timeout):
        _check_ssl_module()
        self._loop = loop
        self._factory = protocol_factory
        self._sslcontext = sslcontext
        self._handshake_timeout = ssl_handshake_timeout
        self._shutdown_timeout = ssl_shutdown_timeout

    def __call__(self):
        loop = self._loop
        protocol = self._factory()
        waiter = loop.create_future()
        proto = ssl_protocol(loop, protocol, self._sslcontext, waiter, server_side=True,
                             ssl_handshake_timeout=self._handshake_timeout,
                             ssl_shutdown_timeout=self._shutdown_timeout)
        waiter.add_done_callback(
            functools.partial(_server_handshake_done, loop, protocol, proto._app_transport))
        return proto


def _server_handshake_done(loop, protocol, app_transport, waiter):
    if waiter.cancelled():
        return
    exc = waiter.exception()
    if exc is None:
        return
    app_transport.close()
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):  # pragma: no cover
        raise exc
    if loop.get_debug():
        loop.call_exception_handler({
            "message": "Error on transport creation for incoming connection",
            "exception": exc,
            "protocol": protocol,
            "transport": app_transport,
        })


async def start_tls(loop, transport, protocol, sslcontext, *, server_side=False,
                    server_hostname=None, ssl_handshake_timeout=None,
                    ssl_shutdown_timeout=None):
    """loop.start_tls(), as asyncio.base_events does it."""
    _check_ssl_module()
    if not isinstance(sslcontext, _ssl.SSLContext):
        raise TypeError(
            f"sslcontext is expected to be an instance of ssl.SSLContext, "
            f"got {sslcontext!r}")
    if not getattr(transport, "_start_tls_compatible", False):
        raise TypeError(f"transport {transport!r} is not supported by start_tls()")
    waiter = loop.create_future()
    proto = ssl_protocol(loop, protocol, sslcontext, waiter, server_side, server_hostname,
                         ssl_handshake_timeout=ssl_handshake_timeout,
                         ssl_shutdown_timeout=ssl_shutdown_timeout,
                         call_connection_made=False)
    # Pause first so that the SSLProtocol gets no data before connection_made.
    transport.pause_reading()
    transport.set_protocol(proto)
    conmade_cb = loop.call_soon(proto.connection_made, transport)
    resume_cb = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        conmade_cb.cancel()
        resume_cb.cancel()
        raise
    return proto._app_transport
