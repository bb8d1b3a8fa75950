"""TCP and Unix-socket transports of the tornado_c event loop.

The methods that create stream transports and servers (create_connection,
create_server, create_unix_connection, create_unix_server,
connect_accepted_socket) live on ``StreamsMixin``, which
``tornado_c.loop.EventLoop`` inherits from.  The transports themselves
(``_core.StreamTransport``) and the listening side (``_core.Server``) are C
objects on libuv handles; this module does what asyncio does in Python around
them: argument checks, name resolution, creating and binding sockets, and the
coroutine methods of the server.

Sockets are created, configured and bound here exactly as asyncio does
(SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, error messages); libuv then takes
over the fd (the Python socket object is detach()ed when the transport or the
server closes, so the fd is closed once, by libuv).

TLS (ssl=...) is the stdlib's SSLProtocol on top of these transports (see
tornado_c._loop_ssl).
"""

import asyncio
import collections.abc
import errno
import functools
import itertools
import os
import socket
import stat
import sys

from asyncio import base_events as _base_events
from asyncio import staggered as _staggered
from asyncio import trsock as _trsock
from asyncio.log import logger

from tornado_c import _core
from tornado_c import _loop_ssl

_StreamTransport = _core.StreamTransport

# Where asyncio changed between the Python versions tornado_c supports
# (3.11+), these methods follow the running interpreter's stdlib:
# asyncio >= 3.12.1 makes wait_closed() wait for the connections even when
# called after close(); earlier versions return at once.
_WAIT_CLOSED_WAITS_AFTER_CLOSE = sys.version_info >= (3, 12, 1)
# 3.12: create_connection(all_errors=False).
_ALL_ERRORS = sys.version_info >= (3, 12)
# 3.13: Server.close_clients()/abort_clients(); create_server(keep_alive=None)
# and its skipping of addresses whose family is not enabled (EADDRNOTAVAIL);
# create_unix_server(cleanup_socket=True); bind errors say str(exc), not
# exc.strerror.
_PY313 = sys.version_info >= (3, 13)

_UNSET = object()


def _unexpected(method, name):
    return TypeError(f"{method}() got an unexpected keyword argument '{name}'")


def _bind_error_text(exc):
    return (str(exc) if _PY313 else exc.strerror).lower()

# start_tls() accepts these transports (asyncio's flag).
_StreamTransport._start_tls_compatible = True


class Server(_core.Server, asyncio.AbstractServer):
    """asyncio.Server on libuv listening handles (see csrc/loop/server.c)."""

    def __init__(self, loop, sockets, protocol_factory, backlog, live):
        # _core.Server.__new__ has opened the listening handles.
        self._waiters = []
        self._serving_forever_fut = None
        # [(path, inode)] of Unix sockets to remove on close (3.13 cleanup_socket)
        self._tc_unix_cleanup = []

    def __repr__(self):
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    def _wakeup(self):
        waiters = self._waiters
        self._waiters = None
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(waiter)

    def _start_serving(self):
        self._start_listening()

    @property
    def sockets(self):
        socks = self._sockets
        if socks is None:
            return ()
        return tuple(_trsock.TransportSocket(s) for s in socks)

    def close(self):
        if not self._close_listeners():
            return
        self._tc_remove_unix_sockets()
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if self._active_count == 0:
            self._wakeup()

    def _tc_remove_unix_sockets(self):
        cleanup, self._tc_unix_cleanup = self._tc_unix_cleanup, []
        for path, ino in cleanup:
            # only the file this server bound, not one that replaced it since
            try:
                if os.stat(path).st_ino == ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket %r: %r", path, err)

    def _tc_clients(self):
        """The open transports this server accepted."""
        loop = self.get_loop()
        return [obj for obj in list(loop._tc_live())
                if isinstance(obj, _StreamTransport) and obj._server is self]

    if _PY313:
        def close_clients(self):
            """Close every connection this server accepted (Python 3.13+)."""
            for transport in self._tc_clients():
                transport.close()

        def abort_clients(self):
            """Abort every connection this server accepted (Python 3.13+)."""
            for transport in self._tc_clients():
                transport.abort()

    async def start_serving(self):
        self._start_serving()
        # one loop iteration, as asyncio does
        await asyncio.sleep(0)

    async def serve_forever(self):
        if self._serving_forever_fut is not None:
            raise RuntimeError(
                f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self.get_loop().create_future()
        try:
            await self._serving_forever_fut
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self):
        if _WAIT_CLOSED_WAITS_AFTER_CLOSE:
            if self._waiters is None:
                return
        elif self._sockets is None or self._waiters is None:
            return
        waiter = self.get_loop().create_future()
        self._waiters.append(waiter)
        await waiter


def _check_stream_socket(sock):
    if sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A Stream Socket was expected, got {sock!r}")


class StreamsMixin:
    """TCP/Unix transport methods of the C event loop."""

    # -- bookkeeping -------------------------------------------------------

    def _tc_live(self):
        """The set of this loop's open transports and servers: closed (handles
        and fds released, no protocol calls) when the loop closes."""
        try:
            return self._tc_live_objs
        except AttributeError:
            live = self._tc_live_objs = set()
            return live

    def _tc_close_live(self):
        """Release the handles and fds of every transport and server still
        open on this loop (no protocol calls: asyncio leaves such transports
        to the garbage collector).  Called when the loop closes."""
        live = getattr(self, "_tc_live_objs", None)
        if live and not self.is_running() and not self.is_closed():
            for obj in list(live):
                obj._loop_closing()

    def close(self):
        self._tc_close_live()
        super().close()

    close._tc_closes_streams = True

    def __init_subclass__(cls, **kwargs):
        # EventLoop defines its own close() (calling _core.Loop.close
        # directly); make sure live transports are released first whatever
        # the subclass does.
        super().__init_subclass__(**kwargs)
        close = cls.__dict__.get("close")
        if close is not None and not getattr(close, "_tc_closes_streams", False):
            def close_wrapper(self, _close=close):
                self._tc_close_live()
                return _close(self)

            functools.update_wrapper(close_wrapper, close)
            close_wrapper._tc_closes_streams = True
            cls.close = close_wrapper

    async def _tc_ensure_resolved(self, address, *, family=0, type=socket.SOCK_STREAM,
                                  proto=0, flags=0):
        host, port = address[:2]
        info = _base_events._ipaddr_info(host, port, family, type, proto, *address[2:])
        if info is not None:
            return [info]
        return await self.getaddrinfo(host, port, family=family, type=type,
                                      proto=proto, flags=flags)

    async def _tc_start_transport(self, transport, protocol_factory):
        try:
            protocol = protocol_factory()
            waiter = self.create_future()
            transport._start(protocol, waiter)
        except BaseException:
            transport._dispose()
            raise
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    async def _tc_connect_sock(self, exceptions, addr_info, local_addr_infos=None):
        my_exceptions = []
        exceptions.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        transport = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        msg = (f"error while attempting to bind on address {laddr!r}: "
                               f"{_bind_error_text(exc)}")
                        my_exceptions.append(OSError(exc.errno, msg))
                else:
                    if my_exceptions:
                        raise my_exceptions.pop()
                    raise OSError(f"no matching local address with {family=} found")
            transport = _StreamTransport._open(self, sock, self._tc_live())
            fut = transport._connect(family, address)
            try:
                await fut
            except OSError as exc:
                raise OSError(exc.errno, f"Connect call failed {address}") from None
            return transport
        except OSError as exc:
            my_exceptions.append(exc)
            if transport is not None:
                transport._dispose()
            elif sock is not None:
                sock.close()
            raise
        except BaseException:
            if transport is not None:
                transport._dispose()
            elif sock is not None:
                sock.close()
            raise
        finally:
            exceptions = my_exceptions = None

    # -- public API --------------------------------------------------------

    async def create_connection(
            self, protocol_factory, host=None, port=None, *, ssl=None, family=0,
            proto=0, flags=0, sock=None, local_addr=None, server_hostname=None,
            ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
            happy_eyeballs_delay=None, interleave=None, all_errors=_UNSET):
        if all_errors is _UNSET:
            all_errors = False
        elif not _ALL_ERRORS:
            raise _unexpected("create_connection", "all_errors")
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")
        if server_hostname is None and ssl and not host:
            raise ValueError("You must set server_hostname when using ssl without a host")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if server_hostname is None and ssl:
            server_hostname = host
        if sock is not None:
            _base_events._check_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            infos = await self._tc_ensure_resolved(
                (host, port), family=family, type=socket.SOCK_STREAM, proto=proto,
                flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            if local_addr is not None:
                laddr_infos = await self._tc_ensure_resolved(
                    local_addr, family=family, type=socket.SOCK_STREAM, proto=proto,
                    flags=flags)
                if not laddr_infos:
                    raise OSError("getaddrinfo() returned empty list")
            else:
                laddr_infos = None
            if interleave:
                infos = _base_events._interleave_addrinfos(infos, interleave)
            exceptions = []
            transport = None
            if happy_eyeballs_delay is None:
                for addrinfo in infos:
                    try:
                        transport = await self._tc_connect_sock(exceptions, addrinfo,
                                                                laddr_infos)
                        break
                    except OSError:
                        continue
            else:
                # happy eyeballs (RFC 8305), as asyncio: the next address is
                # tried when the previous attempt failed or after the delay;
                # the first connection wins, the others are cancelled (a
                # cancelled attempt closes its transport).
                transport, _, _ = await _staggered.staggered_race(
                    (functools.partial(self._tc_connect_sock, exceptions, addrinfo,
                                       laddr_infos)
                     for addrinfo in infos),
                    happy_eyeballs_delay, loop=self)
            if transport is None:
                exceptions = [exc for sub in exceptions for exc in sub]
                try:
                    if all_errors:
                        raise ExceptionGroup("create_connection failed", exceptions)
                    if len(exceptions) == 1:
                        raise exceptions[0]
                    model = str(exceptions[0])
                    if all(str(exc) == model for exc in exceptions):
                        raise exceptions[0]
                    raise OSError("Multiple exceptions: {}".format(
                        ", ".join(str(exc) for exc in exceptions)))
                finally:
                    exceptions = None
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            _check_stream_socket(sock)
            sock.setblocking(False)
            transport = _StreamTransport._open(self, sock, self._tc_live())
        if ssl:
            return await _loop_ssl.start_ssl_transport(
                self, transport, protocol_factory, ssl, server_hostname, False,
                ssl_handshake_timeout, ssl_shutdown_timeout)
        return await self._tc_start_transport(transport, protocol_factory)

    async def connect_accepted_socket(self, protocol_factory, sock, *, ssl=None,
                                      ssl_handshake_timeout=None,
                                      ssl_shutdown_timeout=None):
        _check_stream_socket(sock)
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        _base_events._check_ssl_socket(sock)
        sock.setblocking(False)
        transport = _StreamTransport._open(self, sock, self._tc_live())
        if ssl:
            return await _loop_ssl.start_ssl_transport(
                self, transport, protocol_factory, ssl, "", True,
                ssl_handshake_timeout, ssl_shutdown_timeout)
        return await self._tc_start_transport(transport, protocol_factory)

    async def _tc_create_server_getaddrinfo(self, host, port, family, flags):
        infos = await self._tc_ensure_resolved((host, port), family=family,
                                               type=socket.SOCK_STREAM, flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def _tc_serve(self, sockets, protocol_factory, backlog, start_serving, ssl=None,
                        ssl_handshake_timeout=None, ssl_shutdown_timeout=None):
        if ssl is not None:
            protocol_factory = _loop_ssl.ServerProtocolFactory(
                self, protocol_factory, ssl, ssl_handshake_timeout, ssl_shutdown_timeout)
        for sock in sockets:
            sock.setblocking(False)
        server = Server(self, list(sockets), protocol_factory, backlog, self._tc_live())
        if start_serving:
            server._start_serving()
            await asyncio.sleep(0)
        if self.get_debug():
            logger.info("%r is serving", server)
        return server

    async def create_server(
            self, protocol_factory, host=None, port=None, *, family=socket.AF_UNSPEC,
            flags=socket.AI_PASSIVE, sock=None, backlog=100, ssl=None,
            reuse_address=None, reuse_port=None, keep_alive=_UNSET,
            ssl_handshake_timeout=None, ssl_shutdown_timeout=None, start_serving=True):
        if keep_alive is _UNSET:
            keep_alive = None
        elif not _PY313:
            raise _unexpected("create_server", "keep_alive")
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            _base_events._check_ssl_socket(sock)
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            sockets = []
            if host == "":
                hosts = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = host
            fs = [self._tc_create_server_getaddrinfo(h, port, family=family, flags=flags)
                  for h in hosts]
            infos = await asyncio.gather(*fs)
            infos = set(itertools.chain.from_iterable(infos))
            completed = False
            try:
                for res in infos:
                    af, socktype, proto, canonname, sa = res
                    try:
                        sock = socket.socket(af, socktype, proto)
                    except socket.error:
                        if self.get_debug():
                            logger.warning("create_server() failed to create "
                                           "socket.socket(%r, %r, %r)",
                                           af, socktype, proto, exc_info=True)
                        continue
                    sockets.append(sock)
                    if reuse_address:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                    if reuse_port:
                        _base_events._set_reuseport(sock)
                    if keep_alive:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                    if (_base_events._HAS_IPv6 and af == socket.AF_INET6 and
                            hasattr(socket, "IPPROTO_IPV6")):
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                    try:
                        sock.bind(sa)
                    except OSError as err:
                        msg = ("error while attempting to bind on address %r: %s"
                               % (sa, _bind_error_text(err)))
                        if _PY313 and err.errno == errno.EADDRNOTAVAIL:
                            # this address family is not enabled here: skip it
                            sockets.pop()
                            sock.close()
                            if self.get_debug():
                                logger.warning(msg)
                            continue
                        raise OSError(err.errno, msg) from None
                if _PY313 and not sockets:
                    raise OSError("could not bind on any address out of %r"
                                  % ([info[4] for info in infos],))
                completed = True
            finally:
                if not completed:
                    for sock in sockets:
                        sock.close()
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            _check_stream_socket(sock)
            sockets = [sock]
        return await self._tc_serve(sockets, protocol_factory, backlog, start_serving, ssl,
                                    ssl_handshake_timeout, ssl_shutdown_timeout)

    async def start_tls(self, transport, protocol, sslcontext, *, server_side=False,
                        server_hostname=None, ssl_handshake_timeout=None,
                        ssl_shutdown_timeout=None):
        return await _loop_ssl.start_tls(
            self, transport, protocol, sslcontext, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def create_unix_connection(
            self, protocol_factory, path=None, *, ssl=None, sock=None,
            server_hostname=None, ssl_handshake_timeout=None,
            ssl_shutdown_timeout=None):
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                # A Unix-domain connect() completes (or fails) at once; only a
                # full backlog gives EAGAIN, which the loop's sock_connect
                # handles by waiting.
                try:
                    sock.connect(path)
                except (BlockingIOError, InterruptedError):
                    await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)
        transport = _StreamTransport._open(self, sock, self._tc_live())
        if ssl:
            return await _loop_ssl.start_ssl_transport(
                self, transport, protocol_factory, ssl, server_hostname, False,
                ssl_handshake_timeout, ssl_shutdown_timeout)
        return await self._tc_start_transport(transport, protocol_factory)

    async def create_unix_server(
            self, protocol_factory, path=None, *, sock=None, backlog=100, ssl=None,
            ssl_handshake_timeout=None, ssl_shutdown_timeout=None, start_serving=True,
            cleanup_socket=_UNSET):
        if cleanup_socket is _UNSET:
            cleanup_socket = _PY313
        elif not _PY313:
            raise _unexpected("create_unix_server", "cleanup_socket")
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # abstract sockets (leading NUL) have no file to clean up
            if path[0] not in (0, "\x00"):
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    logger.error("Unable to check or remove stale UNIX socket %r: %r",
                                 path, err)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE,
                                  f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
        cleanup = []
        if cleanup_socket:
            bound = sock.getsockname()
            if bound and bound[0] not in (0, "\x00"):  # not an abstract socket
                try:
                    cleanup.append((bound, os.stat(bound).st_ino))
                except FileNotFoundError:
                    pass
        server = await self._tc_serve([sock], protocol_factory, backlog, start_serving, ssl,
                                      ssl_handshake_timeout, ssl_shutdown_timeout)
        server._tc_unix_cleanup = cleanup
        return server
