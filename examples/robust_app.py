"""A small Tornado app used by the robustness, multi-process and idle-connection
tests and benchmarks.  It is plain Tornado: run it with ``python robust_app.py``
for upstream Tornado, or ``python -m tornado_c robust_app.py`` for tornado_c.

Once it listens it prints ``READY <port>`` on stdout (in the process that bound
the socket) and, in every serving process, ``SERVING <pid>``.  SIGTERM stops a
serving process cleanly (exit status 0).

Endpoints:
  GET  /pid          JSON: pid, remote_ip, protocol, connection and loop types
  GET  /big?size=N   a streamed N-byte body (64 KiB chunks, flushed one by one;
                     &flush=0: one write of N bytes, then finish())
  GET  /block?s=F    blocks the whole process for F seconds (time.sleep)
  GET  /wait?s=F     answers after asyncio.sleep(F); counts on_connection_close
  POST /echo         JSON: length and sum of the received body bytes
  GET  /stats        JSON: streamed responses started/finished/aborted/active,
                     GET /pid requests served,
                     RSS, malloc in use / held from the OS (glibc), memory
                     traced by tracemalloc (when PYTHONTRACEMALLOC is set)
  POST /trim         gc.collect() and glibc malloc_trim(0), so that freed
                     memory goes back to the OS (for RSS-after-close checks)

Options: --port (0 = any free port), --idle-timeout, --body-timeout,
--mode single|fork|reuseport, --procs N (fork mode), --xheaders, --unix PATH.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time

import tornado.httpserver
import tornado.ioloop
import tornado.iostream
import tornado.netutil
import tornado.web

STATS = {"big_started": 0, "big_finished": 0, "big_aborted": 0,
         "wait_started": 0, "wait_finished": 0, "wait_conn_closed": 0,
         "pid_requests": 0}


def _rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _malloc_kib():
    """glibc's mallinfo2: (bytes handed out and not freed, bytes malloc holds
    from the OS) in KiB, or (None, None) off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        info = libc.mallinfo2
    except (OSError, AttributeError, TypeError):
        return None, None

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(f, ctypes.c_size_t) for f in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    info.restype = Mallinfo2
    m = info()
    return (m.uordblks + m.hblkhd) // 1024, (m.arena + m.hblkhd) // 1024


def _type_name(obj):
    t = type(obj)
    return "%s.%s" % (t.__module__, t.__qualname__)


class PidHandler(tornado.web.RequestHandler):
    def get(self):
        STATS["pid_requests"] += 1  # scripts/soak.py counts the requests served
        self.write(
            {
                "pid": os.getpid(),
                "remote_ip": self.request.remote_ip,
                "protocol": self.request.protocol,
                "connection": _type_name(self.request.connection),
                "loop": _type_name(asyncio.get_running_loop()),
            }
        )


class BigHandler(tornado.web.RequestHandler):
    async def get(self):
        size = int(self.get_argument("size", str(1 << 20)))
        chunk = b"x" * 65536
        STATS["big_started"] += 1
        if self.get_argument("flush", "1") == "0":
            # the whole body in one write; finish() does not wait for the
            # client, so this counts as finished once handed to the server
            self.write(b"y" * size)
            self.finish()
            STATS["big_finished"] += 1
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(size))
        sent = 0
        try:
            while sent < size:
                n = min(len(chunk), size - sent)
                self.write(chunk[:n])
                sent += n
                await self.flush()
        except tornado.iostream.StreamClosedError:
            STATS["big_aborted"] += 1
            return
        self.finish()
        STATS["big_finished"] += 1


class BlockHandler(tornado.web.RequestHandler):
    def get(self):
        time.sleep(float(self.get_argument("s", "1")))
        self.write({"pid": os.getpid()})


class WaitHandler(tornado.web.RequestHandler):
    """Answers after an asynchronous sleep; counts on_connection_close()."""

    async def get(self):
        STATS["wait_started"] += 1
        await asyncio.sleep(float(self.get_argument("s", "1")))
        STATS["wait_finished"] += 1
        if not self.request.connection.stream.closed():
            self.write({"pid": os.getpid()})

    def on_connection_close(self):
        STATS["wait_conn_closed"] += 1


class EchoHandler(tornado.web.RequestHandler):
    def post(self):
        body = self.request.body
        self.write({"length": len(body), "sum": sum(body)})


class StatsHandler(tornado.web.RequestHandler):
    def get(self):
        import tracemalloc

        active = STATS["big_started"] - STATS["big_finished"] - STATS["big_aborted"]
        in_use, from_os = _malloc_kib()
        traced = tracemalloc.get_traced_memory()[0] // 1024 if tracemalloc.is_tracing() else None
        self.write(dict(STATS, big_active=active, pid=os.getpid(),
                        rss_kib=_rss_kib(), malloc_in_use_kib=in_use,
                        malloc_from_os_kib=from_os, traced_kib=traced))


class TrimHandler(tornado.web.RequestHandler):
    def post(self):
        import ctypes
        import ctypes.util
        import gc

        gc.collect()
        trimmed = None
        libc = ctypes.util.find_library("c")
        if libc:
            try:
                trimmed = ctypes.CDLL(libc).malloc_trim(0)
            except AttributeError:  # not glibc
                pass
        self.write({"pid": os.getpid(), "malloc_trim": trimmed})


def make_app():
    return tornado.web.Application(
        [
            (r"/pid", PidHandler),
            (r"/big", BigHandler),
            (r"/block", BlockHandler),
            (r"/wait", WaitHandler),
            (r"/echo", EchoHandler),
            (r"/stats", StatsHandler),
            (r"/trim", TrimHandler),
        ]
    )


def _say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _serve_forever(server):
    """Run the current process's IOLoop until SIGTERM, then stop cleanly."""
    loop = tornado.ioloop.IOLoop.current()

    def on_term(*_):
        loop.add_callback_from_signal(_shutdown)

    def _shutdown():
        server.stop()
        loop.stop()

    signal.signal(signal.SIGTERM, on_term)
    _say("SERVING %d" % os.getpid())
    loop.start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--idle-timeout", type=float, default=None)
    p.add_argument("--body-timeout", type=float, default=None)
    p.add_argument("--mode", choices=("single", "fork", "reuseport"), default="single")
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--xheaders", action="store_true")
    p.add_argument("--unix", default=None)
    args = p.parse_args()

    kw = dict(
        idle_connection_timeout=args.idle_timeout,
        body_timeout=args.body_timeout,
        xheaders=args.xheaders,
    )
    if args.mode == "fork":
        # The deprecated bind()/start(n) path: bind in the parent, fork, and
        # create the IOLoop only in the children.  The parent ignores SIGTERM
        # so that a SIGTERM to the process group stops the children cleanly,
        # after which fork_processes() exits 0 in the parent.
        if not args.port:
            p.error("--mode fork needs an explicit --port")
        server = tornado.httpserver.HTTPServer(make_app(), **kw)
        server.bind(args.port, address=args.address)
        _say("READY %d" % args.port)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.start(args.procs)
        _serve_forever(server)
        return

    async def setup():
        server = tornado.httpserver.HTTPServer(make_app(), **kw)
        if args.unix:
            sock = tornado.netutil.bind_unix_socket(args.unix)
            server.add_socket(sock)
            _say("READY %s" % args.unix)
        else:
            socks = tornado.netutil.bind_sockets(
                args.port,
                address=args.address,
                family=socket.AF_INET,
                reuse_port=(args.mode == "reuseport"),
            )
            server.add_sockets(socks)
            _say("READY %d" % socks[0].getsockname()[1])
        return server

    loop = tornado.ioloop.IOLoop.current()
    server = loop.run_sync(setup)
    _serve_forever(server)


if __name__ == "__main__":
    main()
