"""_execute of coroutine handlers in C (csrc/web/execute_coro.c's _WebExecute)
against upstream's Python _execute.

Handlers whose prepare or verb method is a coroutine function run in an
asyncio Task in both; under the switch the Task's coroutine is the C
object.  Each scenario serves the same requests with the ``web`` switch off
and on and compares the responses, the hook calls and what the handlers saw
(current_task(), contextvars, cancellation, timeouts) and the log records;
then the C coroutine's own protocol (send/throw/close, repr, registration).
"""

import asyncio
import collections.abc
import contextvars
import gc
import sys
import weakref

import pytest
import tornado.web
from tornado import gen

from tornado_c import _core

from test_web_handler import MODES, compare, recording_base, serve, set_mode


@pytest.fixture(autouse=True)
def switch_off(clean_switch):
    clean_switch.uninstall()
    yield clean_switch


def _serve_modes(switch, make_app, reqs, tasks):
    """compare()'s runs, plus (done, cancelled) of the Tasks in `tasks`."""
    got = {}
    for mode in MODES:
        tasks.clear()
        set_mode(switch, mode)
        calls = []
        results, records = serve(make_app(calls), reqs)
        got[mode] = (results, calls, records, [(t.done(), t.cancelled()) for t in tasks])
    switch.uninstall()
    return got


def test_async_prepare_and_get_outcomes(switch_off):
    """prepare async or sync, get async: normal, HTTPError, Exception,
    Finish, finish() in prepare, write_error failing, 405, path arguments,
    a non-awaitable returned, auto-finish off."""

    def make_app(calls):
        Base = recording_base(calls)

        def outcome(self, where):
            what = self.get_argument(where, "")
            calls.append((where, what))
            if what == "http":
                raise tornado.web.HTTPError(403, "log %s", "msg", reason="Nope")
            if what == "boom":
                raise KeyError("boom")
            if what == "Finish":
                raise tornado.web.Finish("finished")
            if what == "finish":
                self.finish("by hand")

        class AsyncBoth(Base):
            async def prepare(self):
                await asyncio.sleep(0)
                outcome(self, "prepare")

            async def get(self, *args, **kwargs):
                calls.append(("get", args, kwargs, self.path_args, self.path_kwargs))
                await asyncio.sleep(0)
                outcome(self, "what")
                if self.get_argument("noauto", None):
                    self._auto_finish = False
                    self.write("noauto")
                    self.finish()
                    return
                self.write("async %r" % (args,))

            async def post(self, *args):
                await asyncio.sleep(0)
                self.write({"body": self.request.body.decode("latin1"),
                            "args": sorted(self.request.arguments)})

        class SyncPrepare(Base):
            def prepare(self):
                outcome(self, "prepare")

            async def get(self):
                outcome(self, "what")
                self.write("sync prepare")

        class AsyncPrepareSyncGet(Base):
            async def prepare(self):
                await asyncio.sleep(0)
                outcome(self, "prepare")

            def get(self):
                outcome(self, "what")
                self.write("async prepare, sync get")

        class ReturnsNonAwaitable(Base):
            async def prepare(self):
                pass

            def get(self):
                return 42

        class GenGet(Base):
            @gen.coroutine
            def get(self):
                yield gen.moment
                outcome(self, "what")
                self.write("gen")

        return tornado.web.Application([
            (r"/both/(\w*)", AsyncBoth), (r"/named/(?P<n>\w*)", AsyncBoth),
            (r"/syncprep", SyncPrepare), (r"/prep", AsyncPrepareSyncGet),
            (r"/nonaw", ReturnsNonAwaitable), (r"/gen", GenGet)])

    reqs = []
    for path in ("/both/a", "/syncprep", "/prep", "/gen"):
        reqs.append(("GET", path, None, None))
        for where in ("prepare", "what"):
            if path == "/gen" and where == "prepare":
                continue
            for what in ("http", "boom", "Finish", "finish"):
                reqs.append(("GET", "%s?%s=%s" % (path, where, what), None, None))
        reqs.append(("GET", path + "?what=boom&bad_write_error=1", None, None))
    reqs += [("GET", "/both/a?noauto=1", None, None),
             ("GET", "/named/x", None, None),
             ("GET", "/both/%FF", None, None),
             ("DELETE", "/both/a", None, None),
             ("PROPFIND", "/both/a", None, None),
             ("POST", "/both/a?q=1", {"Content-Type": "application/x-www-form-urlencoded"},
              b"a=1&b=2"),
             ("POST", "/both/a", {"Content-Type": "multipart/form-data; boundary=x"},
              b"garbage"),
             ("GET", "/nonaw", None, None)]
    compare(switch_off, make_app, reqs)


def test_current_task_and_context(switch_off):
    """current_task() is one Task from prepare to get, listed by all_tasks();
    a contextvar set in prepare is seen in get and not outside; the Task
    ends done (not cancelled) and is released."""
    var = contextvars.ContextVar("v", default="outer")
    seen = []
    refs = []

    class H(tornado.web.RequestHandler):
        async def prepare(self):
            self.t = asyncio.current_task()
            var.set("from prepare")
            await asyncio.sleep(0)

        async def get(self):
            t = asyncio.current_task()
            refs.append(weakref.ref(t))
            seen.append((t is self.t, t is not None, t in asyncio.all_tasks(),
                         var.get(), t.done(), t.cancelled(),
                         isinstance(t, asyncio.Task)))
            await asyncio.sleep(0)
            self.write(var.get())

    for mode in MODES:
        set_mode(switch_off, mode)
        seen.clear()
        app = tornado.web.Application([(r"/", H)])
        results, records = serve(app, [("GET", "/", None, None)] * 2)
        assert var.get() == "outer"
        assert seen == [(True, True, True, "from prepare", False, False, True)] * 2, mode
        assert results[0][-2:] == [("write", b"from prepare"), ("finish",)] or any(
            e[0] == "headers" and e[3] == b"from prepare" for e in results[0]), results
    switch_off.uninstall()
    gc.collect()
    assert [r() for r in refs] == [None] * 4


def test_c_coroutine_is_the_task_coro(switch_off):
    """Under the switch the Task runs the C coroutine: a collections.abc
    Coroutine asyncio accepts, named RequestHandler._execute, with cr_running
    while it runs and cr_await while it waits, spent after the end."""
    got = {}

    class H(tornado.web.RequestHandler):
        async def get(self):
            coro = asyncio.current_task().get_coro()
            got["coro"] = coro
            got["type"] = type(coro)
            got["abc"] = isinstance(coro, collections.abc.Coroutine)
            got["iscoroutine"] = asyncio.iscoroutine(coro)
            got["name"] = (coro.__name__, coro.__qualname__)
            got["running"] = coro.cr_running
            got["await_in_step"] = coro.cr_await
            got["frame"] = coro.cr_frame
            got["repr"] = repr(coro)
            got["task_repr"] = repr(asyncio.current_task())
            fut = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(
                lambda: got.setdefault("waiting", (coro.cr_running, coro.cr_await)))
            asyncio.get_running_loop().call_later(0.01, fut.set_result, None)
            await fut
            self.write("ok")

    set_mode(switch_off, "c")
    serve(tornado.web.Application([(r"/", H)]), [("GET", "/", None, None)])
    switch_off.uninstall()
    coro = got["coro"]
    assert got["type"] is _core._WebExecute
    assert got["abc"] and got["iscoroutine"]
    assert got["name"] == ("_execute", "RequestHandler._execute")
    assert got["running"] is True and got["frame"] is None
    assert getattr(got["await_in_step"], "__qualname__", "").endswith("H.get")  # get()
    assert "RequestHandler._execute coroutine of <" in got["repr"]
    assert "coro=<RequestHandler._execute() running>" in got["task_repr"]
    running, awaiting = got["waiting"]
    assert running is False and awaiting is not None  # the get() coroutine
    # spent: as a finished coroutine
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        coro.send(None)
    with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
        coro.throw(ValueError("x"))
    assert coro.close() is None
    assert "done" in repr(coro)
    with pytest.raises(TypeError):
        _core._WebExecute()


def test_cancel_task_while_awaiting(switch_off):
    """The handler's Task cancelled while get() awaits (what an app does from
    on_connection_close): send_error(500), on_finish, the Task cancelled, no
    error logged; a write_error that fails then logs upstream's record."""
    tasks = []

    def make_app(calls):
        Base = recording_base(calls)

        class H(Base):
            async def get(self):
                t = asyncio.current_task()
                tasks.append(t)
                asyncio.get_running_loop().call_soon(t.cancel)
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError as e:
                    calls.append(("cancelled", type(e).__name__, t.cancelling()))
                    raise

        class Finished(Base):
            async def get(self):
                t = asyncio.current_task()
                tasks.append(t)
                self.finish("done first")
                t.cancel()
                await asyncio.sleep(10)

        class Swallow(Base):
            async def get(self):
                t = asyncio.current_task()
                tasks.append(t)
                t.cancel()
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    t.uncancel()
                    calls.append("uncancelled")
                raise asyncio.CancelledError()

        return tornado.web.Application([(r"/", H), (r"/finished", Finished),
                                        (r"/swallow", Swallow)])

    reqs = [("GET", "/", None, None), ("GET", "/?bad_write_error=1", None, None),
            ("GET", "/finished", None, None), ("GET", "/swallow", None, None)]
    got = _serve_modes(switch_off, make_app, reqs, tasks)
    assert got["c"] == got["upstream"]
    assert got["c"][3] == [(True, True), (True, True), (True, True), (True, False)]


def test_cancel_on_connection_close_real_server(switch_off):
    """Over a real connection: the client goes away while get() awaits, the
    handler's on_connection_close cancels its Task."""
    calls = []
    tasks = []

    class H(tornado.web.RequestHandler):
        async def get(self):
            self.task = asyncio.current_task()
            tasks.append(self.task)
            calls.append("get")
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                calls.append(("cancelled", self.task.cancelling()))
                raise

        def on_connection_close(self):
            calls.append("on_connection_close")
            self.task.cancel()

        def on_finish(self):
            calls.append(("on_finish", self.get_status()))

    got = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        calls.clear()
        loop = asyncio.new_event_loop()
        try:
            async def run():
                app = tornado.web.Application([(r"/", H)])
                server = app.listen(0, "127.0.0.1")
                port = list(server._sockets.values())[0].getsockname()[1]
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                for _ in range(200):
                    if calls:
                        break
                    await asyncio.sleep(0.01)
                w.transport.abort()
                for _ in range(200):
                    if any(isinstance(c, tuple) and c[0] == "on_finish" for c in calls):
                        break
                    await asyncio.sleep(0.01)
                server.stop()
                await asyncio.sleep(0)

            tasks.clear()
            loop.run_until_complete(run())
            task = tasks[0]
            got[mode] = (list(calls), task.done(), task.cancelled())
        finally:
            loop.close()
    switch_off.uninstall()
    assert got["c"] == got["upstream"]
    assert got["c"][0][:3] == ["get", "on_connection_close", ("cancelled", 1)]


def test_asyncio_timeout_in_get(switch_off):
    """asyncio.timeout() inside get works on the handler's Task: TimeoutError
    becomes a logged 500; a timeout caught in get lets it answer."""
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.timeout is 3.11+")

    def make_app(calls):
        Base = recording_base(calls)

        class T(Base):
            async def get(self):
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(5)

        class Caught(Base):
            async def get(self):
                try:
                    async with asyncio.timeout(0.01):
                        await asyncio.sleep(5)
                except TimeoutError:
                    calls.append(("timeout caught", asyncio.current_task().cancelling()))
                self.write("answered")

        class WaitFor(Base):
            async def get(self):
                try:
                    await asyncio.wait_for(asyncio.sleep(5), 0.01)
                except asyncio.TimeoutError:
                    calls.append("wait_for timed out")
                self.write("wait_for")

        return tornado.web.Application([(r"/t", T), (r"/c", Caught), (r"/w", WaitFor)])

    compare(switch_off, make_app, [("GET", "/t", None, None), ("GET", "/c", None, None),
                                   ("GET", "/w", None, None)])


def _serve_real(app, raw_requests):
    """Each raw request on its own connection to a real server (Connection:
    close); what came back, Date headers masked."""
    import re

    out = []
    loop = asyncio.new_event_loop()

    async def run():
        server = app.listen(0, "127.0.0.1")
        port = list(server._sockets.values())[0].getsockname()[1]
        for raw in raw_requests:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            for piece in raw:
                w.write(piece)
                await w.drain()
                await asyncio.sleep(0.01)
            data = await asyncio.wait_for(r.read(), 5)
            w.close()
            out.append(re.sub(rb"Date: [^\r]*", b"Date: <date>", data))
        server.stop()
        await asyncio.sleep(0)

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    return out


def test_stream_request_body_async(switch_off):
    """@stream_request_body with async prepare, an async data_received and an
    async put, over a real connection (chunked and sized bodies)."""

    def make_app(calls):
        Base = recording_base(calls)

        @tornado.web.stream_request_body
        class S(Base):
            async def prepare(self):
                calls.append(("prepare", asyncio.current_task() is not None))
                self.chunks = []
                await asyncio.sleep(0)

            async def data_received(self, chunk):
                await asyncio.sleep(0)
                calls.append(("chunk", chunk))
                self.chunks.append(chunk)
                if chunk == b"bad":
                    raise ValueError("bad chunk")

            async def put(self):
                await asyncio.sleep(0)
                self.write(b"|".join(self.chunks))

        return tornado.web.Application([(r"/s", S)])

    head = b"PUT /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    reqs = [[head + b"Content-Length: 3\r\n\r\n", b"abc"],
            [head + b"Transfer-Encoding: chunked\r\n\r\n", b"2\r\nab\r\n", b"1\r\nc\r\n",
             b"0\r\n\r\n"],
            [head + b"Content-Length: 3\r\n\r\n", b"bad"]]
    got = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        calls = []
        got[mode] = (_serve_real(make_app(calls), reqs), calls)
    switch_off.uninstall()
    assert got["c"] == got["upstream"]
    assert got["c"][0][0].endswith(b"abc") and got["c"][0][1].endswith(b"ab|c")


def test_base_exception_reaches_loop_exception_handler(switch_off):
    """A BaseException that _execute does not catch ends the Task with it;
    upstream's done callback passes it to the loop's exception handler: the
    same here, once, with the same exception."""

    class Stop(BaseException):
        pass

    seen = []

    class H(tornado.web.RequestHandler):
        async def get(self):
            asyncio.get_running_loop().set_exception_handler(
                lambda loop, ctx: seen.append((type(ctx.get("exception")).__name__,
                                               ctx["message"].startswith("Exception in callback"))))
            self.t = asyncio.current_task()
            self.finish("before")
            await asyncio.sleep(0)
            raise Stop("stop")

    got = {}
    for mode in MODES:
        set_mode(switch_off, mode)
        seen.clear()
        results, records = serve(tornado.web.Application([(r"/", H)]),
                                 [("GET", "/", None, None)])
        got[mode] = (results, records, list(seen))
    switch_off.uninstall()
    assert got["c"] == got["upstream"]
    assert got["c"][2] == [("Stop", True)]


def test_handler_objects_released(switch_off):
    """No handler, Task or coroutine outlives its request under the switch
    (the set of running Tasks lets each go as its coroutine ends)."""
    refs = []

    class H(tornado.web.RequestHandler):
        async def prepare(self):
            await asyncio.sleep(0)

        async def get(self):
            t = asyncio.current_task()
            refs.append((weakref.ref(self), weakref.ref(t)))
            if self.get_argument("boom", None):
                raise ValueError("x")
            self.write("x")

    set_mode(switch_off, "c")
    serve(tornado.web.Application([(r"/", H)]),
          [("GET", "/", None, None), ("GET", "/?boom=1", None, None)])
    switch_off.uninstall()
    gc.collect()
    assert len(refs) == 2
    assert all(h() is None and t() is None for h, t in refs)


def test_unusual_awaitables(switch_off):
    """What prepare/get return is awaited as `await` does: an object with
    __await__, a Future, a @types.coroutine generator, and the TypeErrors of
    objects that cannot be awaited."""
    import types

    class Awaitable:
        def __init__(self, v):
            self.v = v

        def __await__(self):
            yield from asyncio.sleep(0).__await__()
            return self.v

    class BadAwait:
        def __await__(self):
            return 42

    @types.coroutine
    def legacy():
        yield None
        return "legacy"

    def make_app(calls):
        Base = recording_base(calls)

        class H(Base):
            async def prepare(self):
                calls.append(await Awaitable("prepared"))

            def get(self):
                kind = self.get_argument("k")
                self.write(kind)
                if kind == "aw":
                    return Awaitable(1)
                if kind == "fut":
                    f = asyncio.get_running_loop().create_future()
                    asyncio.get_running_loop().call_soon(f.set_result, 2)
                    return f
                if kind == "legacy":
                    return legacy()
                if kind == "bad":
                    return BadAwait()
                if kind == "int":
                    return 3

        return tornado.web.Application([(r"/", H)])

    compare(switch_off, make_app, [("GET", "/?k=" + k, None, None)
                                   for k in ("aw", "fut", "legacy", "bad", "int")])


def test_plain_functions_returning_awaitables(switch_off):
    """A plain-function prepare/get returning an awaitable, and @gen.coroutine
    get (the C wrapper is not a Python function): the rest of _execute runs
    in a Task (the C coroutine under the switch, _webhandler._resume's steps):
    outcomes, cancellation of that Task, current_task() in the awaited
    coroutine, and a Task that ends with a BaseException."""
    tasks = []

    class Stop(BaseException):
        pass

    def make_app(calls):
        Base = recording_base(calls)

        class Prep(Base):
            def prepare(self):
                what = self.get_argument("prepare", "")
                calls.append(("prepare", what))
                return self.real_prepare(what)

            async def real_prepare(self, what):
                tasks.append(asyncio.current_task())
                await asyncio.sleep(0)
                if what == "boom":
                    raise ValueError("prepare boom")
                if what == "finish":
                    self.finish("from prepare")
                if what == "cancel":
                    asyncio.current_task().cancel()
                    await asyncio.sleep(1)

            def get(self):
                what = self.get_argument("what", "")
                calls.append(("get", what))
                return self.real_get(what)

            async def real_get(self, what):
                t = asyncio.current_task()
                calls.append(("same task", t is tasks[-1] if tasks else None))
                await asyncio.sleep(0)
                if what == "http":
                    raise tornado.web.HTTPError(409)
                if what == "cancel":
                    t.cancel()
                    await asyncio.sleep(1)
                if what == "stop":
                    asyncio.get_running_loop().set_exception_handler(
                        lambda loop, ctx: calls.append(
                            ("loop handler", type(ctx.get("exception")).__name__)))
                    self.finish("stopping")
                    raise Stop()
                self.write("got")

        class Gen(Base):
            @gen.coroutine
            def get(self):
                tasks.append(asyncio.current_task())
                calls.append(("gen task", asyncio.current_task() is not None))
                yield gen.moment
                if self.get_argument("what", "") == "boom":
                    raise KeyError("gen boom")
                self.write("gen")

        return tornado.web.Application([(r"/p", Prep), (r"/g", Gen)])

    reqs = [("GET", "/p", None, None), ("GET", "/p?prepare=boom", None, None),
            ("GET", "/p?prepare=finish", None, None), ("GET", "/p?prepare=cancel", None, None),
            ("GET", "/p?what=http", None, None), ("GET", "/p?what=cancel", None, None),
            ("GET", "/p?what=stop", None, None),
            ("GET", "/g", None, None), ("GET", "/g?what=boom", None, None)]
    got = _serve_modes(switch_off, make_app, reqs, tasks)
    assert got["c"][0] == got["upstream"][0]
    assert got["c"][1] == got["upstream"][1]
    assert got["c"][2] == got["upstream"][2]
    assert got["c"][3] == got["upstream"][3]
    assert ("loop handler", "Stop") in got["c"][1]
