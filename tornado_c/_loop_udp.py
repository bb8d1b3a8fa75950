"""Datagram endpoints (UDP and Unix datagram sockets) of the tornado_c loop.

``DatagramMixin.create_datagram_endpoint`` does what asyncio's
``BaseEventLoop.create_datagram_endpoint`` does (argument checks, name
resolution, creating, configuring, binding and connecting the socket) for
the running Python's version; the transport is ``_core.DatagramTransport``
(csrc/loop/udp.c), which reads and sends on the socket in C.
"""

import os
import socket
import stat
import sys

from asyncio import base_events as _base_events
from asyncio import trsock as _trsock
from asyncio.log import logger

from tornado_c import _core

_DatagramTransport = _core.DatagramTransport

# 3.13 accepts any non-stream socket with sock=; 3.10-3.12 only SOCK_DGRAM.
_ANY_DGRAM_SOCK = sys.version_info >= (3, 13)
# 3.10 still takes reuse_address= (and refuses a true value); 3.11 removed it.
_HAS_REUSE_ADDRESS_ARG = sys.version_info < (3, 11)
_unset = object()


def _transport_extra(sock):
    extra = {"socket": _trsock.TransportSocket(sock)}
    try:
        extra["sockname"] = sock.getsockname()
    except OSError:
        extra["sockname"] = None
    try:
        extra["peername"] = sock.getpeername()
    except OSError:
        extra["peername"] = None
    return extra


class DatagramMixin:
    """create_datagram_endpoint() of the C event loop."""

    async def _tc_create_datagram_endpoint(self, protocol_factory, local_addr, remote_addr,
                                           family, proto, flags, reuse_port,
                                           allow_broadcast, sock):
        if sock is not None:
            if _ANY_DGRAM_SOCK:
                if sock.type == socket.SOCK_STREAM:
                    raise ValueError(f"A datagram socket was expected, got {sock!r}")
            elif sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if (local_addr or remote_addr or family or proto or flags or reuse_port
                    or allow_broadcast):
                opts = dict(local_addr=local_addr, remote_addr=remote_addr, family=family,
                            proto=proto, flags=flags, reuse_port=reuse_port,
                            allow_broadcast=allow_broadcast)
                problems = ", ".join(f"{k}={v}" for k, v in opts.items() if v)
                raise ValueError(
                    f"socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})")
            sock.setblocking(False)
            r_addr = None
        else:
            if not (local_addr or remote_addr):
                if family == 0:
                    raise ValueError("unexpected address family")
                addr_pairs_info = (((family, proto), (None, None)),)
            elif hasattr(socket, "AF_UNIX") and family == socket.AF_UNIX:
                for addr in (local_addr, remote_addr):
                    if addr is not None and not isinstance(addr, str):
                        raise TypeError("string is expected")
                if local_addr and local_addr[0] not in (0, "\x00"):
                    try:
                        if stat.S_ISSOCK(os.stat(local_addr).st_mode):
                            os.remove(local_addr)
                    except FileNotFoundError:
                        pass
                    except OSError as err:
                        logger.error("Unable to check or remove stale UNIX socket %r: %r",
                                     local_addr, err)
                addr_pairs_info = (((family, proto), (local_addr, remote_addr)),)
            else:
                # join the addresses by (family, protocol), in order
                addr_infos = {}
                for idx, addr in ((0, local_addr), (1, remote_addr)):
                    if addr is not None:
                        if not (isinstance(addr, tuple) and len(addr) == 2):
                            raise TypeError("2-tuple is expected")
                        infos = await self._tc_ensure_resolved(
                            addr, family=family, type=socket.SOCK_DGRAM, proto=proto,
                            flags=flags)
                        if not infos:
                            raise OSError("getaddrinfo() returned empty list")
                        for fam, _, pro, _, address in infos:
                            key = (fam, pro)
                            if key not in addr_infos:
                                addr_infos[key] = [None, None]
                            addr_infos[key][idx] = address
                addr_pairs_info = [
                    (key, addr_pair) for key, addr_pair in addr_infos.items()
                    if not ((local_addr and addr_pair[0] is None) or
                            (remote_addr and addr_pair[1] is None))]
                if not addr_pairs_info:
                    raise ValueError("can not get address information")
            exceptions = []
            for ((family, proto), (local_address, remote_address)) in addr_pairs_info:
                sock = None
                r_addr = None
                try:
                    sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
                    if reuse_port:
                        _base_events._set_reuseport(sock)
                    if allow_broadcast:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                    sock.setblocking(False)
                    if local_addr:
                        sock.bind(local_address)
                    if remote_addr:
                        if not allow_broadcast:
                            await self.sock_connect(sock, remote_address)
                        r_addr = remote_address
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    exceptions.append(exc)
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                else:
                    break
            else:
                raise exceptions[0]

        protocol = protocol_factory()
        waiter = self.create_future()
        try:
            transport = _DatagramTransport._open(self, sock, r_addr, _transport_extra(sock),
                                                 self._tc_live())
        except BaseException:
            sock.close()
            raise
        try:
            transport._start(protocol, waiter)
        except BaseException:
            transport._dispose()
            raise
        if self.get_debug():
            if local_addr:
                logger.info("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                            local_addr, remote_addr, transport, protocol)
            else:
                logger.debug("Datagram endpoint remote_addr=%r created: (%r, %r)",
                             remote_addr, transport, protocol)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        return transport, protocol

    if _HAS_REUSE_ADDRESS_ARG:
        async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                           remote_addr=None, *, family=0, proto=0, flags=0,
                                           reuse_address=_unset, reuse_port=None,
                                           allow_broadcast=None, sock=None):
            """Create a datagram connection (Python 3.10 signature)."""
            if reuse_address is not _unset and sock is None:
                if reuse_address:
                    raise ValueError("Passing `reuse_address=True` is no longer supported, "
                                     "as the usage of SO_REUSEPORT in UDP poses a significant "
                                     "security concern.")
                import warnings

                warnings.warn("The *reuse_address* parameter has been deprecated as of "
                              "3.5.10 and is scheduled for removal in 3.11.",
                              DeprecationWarning, stacklevel=2)
            return await self._tc_create_datagram_endpoint(
                protocol_factory, local_addr, remote_addr, family, proto, flags, reuse_port,
                allow_broadcast, sock)
    else:
        async def create_datagram_endpoint(self, protocol_factory, local_addr=None,
                                           remote_addr=None, *, family=0, proto=0, flags=0,
                                           reuse_port=None, allow_broadcast=None, sock=None):
            """Create a datagram connection: a (transport, protocol) pair on a UDP
            or Unix datagram socket, as asyncio's create_datagram_endpoint."""
            return await self._tc_create_datagram_endpoint(
                protocol_factory, local_addr, remote_addr, family, proto, flags, reuse_port,
                allow_broadcast, sock)
