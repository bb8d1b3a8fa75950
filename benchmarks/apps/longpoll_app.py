"""Long polling: a plain Tornado application (run unmodified: ``python
longpoll_app.py`` for upstream Tornado, ``python -m tornado_c longpoll_app.py``
for tornado_c) for the connection-memory and wake-up benchmarks.

Once it listens it prints ``READY <port>`` on stdout.

  GET  /pid          a small JSON answer (a keep-alive request, or a probe)
  GET  /poll         waits on one shared asyncio Future, then answers with the
                     message the Future was resolved with (the long poll)
  POST /wake         resolves that Future (waking every waiting /poll at once),
                     puts a new one in its place; JSON: how many were waiting
  GET  /stats        JSON: waiting, woken, answered, closed-while-waiting, RSS
  POST /trim         gc.collect() and glibc malloc_trim(0)
  GET  /mem/types    JSON: live objects per type (gc.get_objects(), plus the
                     objects they refer to), count and sys.getsizeof() sum
  POST /mem/snap     tracemalloc: keep a snapshot (the server must run with
                     PYTHONTRACEMALLOC=N)
  GET  /mem/diff     tracemalloc: the biggest differences since /mem/snap, by
                     allocation site (?limit=N, ?key=lineno|filename)
"""

import argparse
import asyncio
import collections
import gc
import json
import os
import sys
import tracemalloc

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

# POST /trim: the robustness tests' app's handler (gc.collect + malloc_trim)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples"))
from robust_app import TrimHandler  # noqa: E402

STATE = {"future": None, "waiting": 0, "woken": 0, "answered": 0, "closed_waiting": 0}
SNAP = {}


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def _future():
    if STATE["future"] is None:
        STATE["future"] = asyncio.get_running_loop().create_future()
    return STATE["future"]


class PidHandler(tornado.web.RequestHandler):
    def get(self):
        self.write({"pid": os.getpid()})


class PollHandler(tornado.web.RequestHandler):
    async def get(self):
        STATE["waiting"] += 1
        try:
            message = await _future()
        finally:
            STATE["waiting"] -= 1
        STATE["woken"] += 1
        if not self.request.connection.stream.closed():
            self.write(message)
            STATE["answered"] += 1

    def on_connection_close(self):
        STATE["closed_waiting"] += 1


class WakeHandler(tornado.web.RequestHandler):
    def post(self):
        fut, STATE["future"] = _future(), None
        waiting = STATE["waiting"]
        fut.set_result({"wake": self.get_argument("msg", "news"), "pid": os.getpid()})
        self.write({"waiting": waiting})


class StatsHandler(tornado.web.RequestHandler):
    def get(self):
        self.write({k: v for k, v in STATE.items() if k != "future"}
                   | {"pid": os.getpid(), "rss_kib": _rss_kib()})


def _type_name(t):
    return "%s.%s" % (t.__module__, t.__qualname__)


class TypesHandler(tornado.web.RequestHandler):
    def get(self):
        gc.collect()
        counts = collections.Counter()
        sizes = collections.Counter()
        seen = set()
        objs = gc.get_objects()
        # the containers gc tracks, and one level of what they refer to
        # (untracked objects: bytes, str, ints, atomic dicts...)
        todo = list(objs)
        for o in objs:
            todo.extend(gc.get_referents(o))
        for o in todo:
            if id(o) in seen:
                continue
            seen.add(id(o))
            name = _type_name(type(o))
            counts[name] += 1
            try:
                sizes[name] += sys.getsizeof(o)
            except TypeError:
                pass
        del objs, todo, seen
        self.write({"types": {k: [counts[k], sizes[k]] for k in counts}})


class SnapHandler(tornado.web.RequestHandler):
    def post(self):
        if not tracemalloc.is_tracing():
            raise tornado.web.HTTPError(400, "run with PYTHONTRACEMALLOC=N")
        gc.collect()
        SNAP["snap"] = tracemalloc.take_snapshot()
        self.write({"ok": True})


class DiffHandler(tornado.web.RequestHandler):
    def get(self):
        if "snap" not in SNAP:
            raise tornado.web.HTTPError(400, "POST /mem/snap first")
        gc.collect()
        key = self.get_argument("key", "lineno")
        limit = int(self.get_argument("limit", "40"))
        now = tracemalloc.take_snapshot()
        filt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        diff = now.filter_traces(filt).compare_to(SNAP["snap"].filter_traces(filt), key)
        rows = [{"site": str(d.traceback), "size_diff": d.size_diff, "count_diff": d.count_diff}
                for d in diff[:limit]]
        total = sum(d.size_diff for d in diff)
        self.write({"total_size_diff": total, "rows": rows})


def make_app():
    return tornado.web.Application([
        (r"/pid", PidHandler),
        (r"/poll", PollHandler),
        (r"/wake", WakeHandler),
        (r"/stats", StatsHandler),
        (r"/trim", TrimHandler),
        (r"/mem/types", TypesHandler),
        (r"/mem/snap", SnapHandler),
        (r"/mem/diff", DiffHandler),
    ])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--address", default="127.0.0.1")
    args = p.parse_args()

    async def serve():
        sockets = tornado.netutil.bind_sockets(args.port, address=args.address, backlog=4096)
        server = tornado.httpserver.HTTPServer(make_app())
        server.add_sockets(sockets)
        sys.stdout.write("READY %d\n" % sockets[0].getsockname()[1])
        sys.stdout.flush()
        await asyncio.Event().wait()

    tornado.ioloop.IOLoop.current().run_sync(serve)


if __name__ == "__main__":
    main()
