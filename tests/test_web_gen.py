"""@gen.coroutine in C (csrc/web/gen.c, tornado_c/gen.py) against upstream's.

Each scenario decorates the same generator functions with upstream's
``tornado.gen.coroutine`` and with tornado_c's, runs them on an asyncio
loop, and records everything observable -- results, exceptions (type, args,
the user frames of their tracebacks, __context__), the order of side
effects relative to loop callbacks, contextvars -- the two records must be
equal (and each scenario also checks a few facts of its own, so two equally
wrong records do not pass).  Then: metadata, method binding, and the web
switch patching tornado.gen.coroutine and putting it back.
"""

import asyncio
import concurrent.futures
import contextvars
import datetime
import gc
import inspect
import subprocess
import sys
import textwrap
import traceback
import weakref

import pytest
from tornado import gen
from tornado.concurrent import Future

import tornado_c.gen as cgen

IMPLS = {"upstream": cgen._upstream_coroutine, "c": cgen.coroutine}

cv = contextvars.ContextVar("cv", default="unset")
UNKNOWN = object()  # yielded: its repr is in BadYieldError's message


def describe(exc):
    """What is observable of an exception, minus gen.py's own frames."""
    if exc is None:
        return None
    frames = [f.name for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.endswith(("tornado/gen.py", "asyncio/futures.py",
                                          "asyncio/tasks.py"))]
    return (type(exc).__name__, exc.args, frames, describe(exc.__context__))


def run(scenario, impl):
    log = []

    async def main():
        return await scenario(IMPLS[impl], log)

    result = asyncio.run(main())
    return result, log


def both(scenario):
    up = run(scenario, "upstream")
    c = run(scenario, "c")
    assert c == up
    return up


def done_future(value):
    f = Future()
    f.set_result(value)
    return f


def failed_future(exc):
    f = Future()
    f.set_exception(exc)
    return f


async def sc_done_futures(coroutine, log):
    @coroutine
    def f(n):
        total = 0
        for i in range(n):
            log.append(("before", i))
            total += yield done_future(i)
        return total

    fut = f(5)
    log.append(("called", fut.done()))
    return await fut


def test_done_futures_run_synchronously():
    result, log = both(sc_done_futures)
    assert result == 10
    # all five steps ran inside the call: the future is done when it returns
    assert log[-1] == ("called", True)


async def sc_first_step(coroutine, log):
    loop = asyncio.get_running_loop()

    @coroutine
    def g():
        log.append("step1")
        yield gen.moment
        log.append("step2")
        yield None
        log.append("step3")
        yield gen.sleep(0)
        log.append("step4")
        raise gen.Return("g-done")

    @coroutine
    def returns_at_once():
        log.append("immediate")
        return "x"
        yield  # a generator all the same

    loop.call_soon(log.append, "soon-before")
    fut = g()
    log.append(("after call", fut.done()))
    loop.call_soon(log.append, "soon-after")
    r2 = returns_at_once()
    log.append(("immediate done", r2.done(), r2.result()))
    r = await fut
    return r


def test_first_step_and_moment_order():
    result, log = both(sc_first_step)
    assert result == "g-done"
    assert log[:2] == ["step1", ("after call", False)]
    assert "soon-before" in log and log.index("soon-before") < log.index("step2")


async def sc_non_generators(coroutine, log):
    @coroutine
    def plain():
        log.append("plain")
        return 3

    @coroutine
    def ret():
        raise gen.Return(4)

    @coroutine
    def stop():
        raise StopIteration(5)

    @coroutine
    def ret_empty():
        raise gen.Return()

    @coroutine
    def fails():
        raise ValueError("nope")

    @coroutine
    def cancels():
        raise asyncio.CancelledError()

    @coroutine
    async def native():
        return 6

    out = []
    for fn in (plain, ret, stop, ret_empty, fails, cancels):
        f = fn()
        out.append((fn.__name__, f.done(), f.cancelled(),
                    None if f.cancelled() else describe(f.exception()),
                    None if f.cancelled() or f.exception() else f.result()))
    n = native()
    coro = n.result()
    out.append(("native", inspect.iscoroutine(coro), await coro))
    return out


def test_non_generator_functions():
    result, _ = both(sc_non_generators)
    assert [r[-1] for r in result[:4]] == [3, 4, 5, None]
    assert result[4][3][0] == "ValueError"
    assert result[5][2] is True


async def sc_exceptions(coroutine, log):
    @coroutine
    def inner(n):
        yield gen.sleep(0)
        if n:
            raise KeyError(n)
        return n

    @coroutine
    def catches():
        try:
            yield inner(1)
        except KeyError as e:
            log.append(("caught", e.args, describe(e)))
        try:
            yield failed_future(ZeroDivisionError("done-failed"))
        except ZeroDivisionError as e:
            log.append(("caught2", describe(e)))
            # a new exception raised here chains the caught one
            raise RuntimeError("wrapped")

    @coroutine
    def first_step_raises():
        log.append("fsr")
        raise IndexError("first")
        yield

    @coroutine
    def bad_yield():
        try:
            yield 42
        except gen.BadYieldError as e:
            log.append(("bad", type(e).__name__))
        try:
            yield UNKNOWN
        finally:
            log.append("finally")

    results = []
    for fn in (catches, first_step_raises, bad_yield):
        try:
            r = await fn()
        except Exception as e:
            results.append((fn.__name__, describe(e)))
        else:
            results.append((fn.__name__, r))
    return results


def test_exceptions_and_chaining():
    result, log = both(sc_exceptions)
    name, (typ, args, frames, context) = result[0]
    assert (typ, args, context[0]) == ("RuntimeError", ("wrapped",), "ZeroDivisionError")
    assert "catches" in frames
    assert result[1][1][0] == "IndexError"
    assert result[2][1][0] == "BadYieldError"
    assert ("bad", "BadYieldError") in log and "finally" in log


async def sc_multi(coroutine, log):
    @coroutine
    def child(x, fail=False):
        yield gen.sleep(0)
        log.append(("child", x))
        if fail:
            raise ValueError(x)
        return x * 2

    @coroutine
    def parent():
        a = yield [child(1), child(2), done_future(3)]
        b = yield {"x": child(3), "y": gen.sleep(0)}
        c = yield gen.multi([child(4), child(5)])
        try:
            yield [child(6, fail=True), child(7)]
        except ValueError as e:
            log.append(("multi failed", e.args))
        return a, b, c

    return await parent()


def test_lists_dicts_and_multi():
    result, log = both(sc_multi)
    assert result == ([2, 4, 3], {"x": 6, "y": None}, [8, 10])
    assert ("multi failed", (6,)) in log


async def sc_awaitables(coroutine, log):
    class MyFuture(asyncio.Future):
        pass

    async def native(x):
        await asyncio.sleep(0)
        return x + 1

    executor = concurrent.futures.ThreadPoolExecutor(1)

    @coroutine
    def g():
        a = yield native(1)
        b = yield executor.submit(lambda: "thread")
        f = MyFuture()
        asyncio.get_running_loop().call_soon(f.set_result, "sub")
        c = yield f
        d = yield asyncio.ensure_future(native(10))
        e = yield gen.with_timeout(datetime.timedelta(seconds=30), native(20))
        return a, b, c, d, e

    try:
        return await g()
    finally:
        executor.shutdown()


def test_awaitables_and_other_futures():
    result, _ = both(sc_awaitables)
    assert result == (2, "thread", "sub", 11, 21)


async def sc_contextvars(coroutine, log):
    @coroutine
    def g(name):
        log.append((name, "start", cv.get()))
        cv.set(name)
        yield gen.moment
        log.append((name, "after moment", cv.get()))
        yield gen.sleep(0)
        log.append((name, "after sleep", cv.get()))
        yield done_future(None)
        # woken from the executor's thread (IOLoop.add_callback there): the
        # step still runs in the call's context
        yield executor.submit(cv.get)
        log.append((name, "after thread", cv.get()))
        return cv.get()

    @coroutine
    def not_a_generator():
        cv.set("ng")
        return cv.get()

    executor = concurrent.futures.ThreadPoolExecutor(1)
    try:
        cv.set("outer")
        f1 = g("one")
        cv.set("outer2")  # after the call: g's copy does not see it
        f2 = g("two")
        return (await f1, await f2, await not_a_generator(), cv.get())
    finally:
        executor.shutdown()


def test_contextvars_per_call():
    result, log = both(sc_contextvars)
    assert result == ("one", "two", "ng", "outer2")
    assert ("one", "start", "outer") in log and ("two", "start", "outer2") in log
    assert ("one", "after sleep", "one") in log
    assert ("two", "after thread", "two") in log


async def sc_cancel(coroutine, log):
    @coroutine
    def g():
        try:
            yield gen.sleep(0)
            log.append("resumed")
            yield gen.sleep(0)
        except asyncio.CancelledError:
            log.append("cancel seen")
            raise
        return "finished"

    @coroutine
    def raises_cancel():
        yield gen.sleep(0)
        raise asyncio.CancelledError()

    f = g()
    f.cancel()  # the runner goes on; its result is dropped
    await asyncio.sleep(0.01)
    r = raises_cancel()
    try:
        await r
    except asyncio.CancelledError:
        log.append("r cancelled")
    return f.cancelled(), r.cancelled()


def test_cancellation():
    result, log = both(sc_cancel)
    assert result == (True, True)
    assert log == ["resumed", "r cancelled"]


def _base_exception_scenario(coroutine):
    @coroutine
    def g():
        raise KeyboardInterrupt("ki")
        yield

    with pytest.raises(KeyboardInterrupt):
        g()


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_base_exception_propagates_from_the_call(impl):
    async def main():
        _base_exception_scenario(IMPLS[impl])

    asyncio.run(main())


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_runner_lives_as_long_as_its_future(impl):
    coroutine = IMPLS[impl]

    async def main():
        ref = []

        @coroutine
        def g():
            f = Future()
            ref.append(weakref.ref(f))
            asyncio.get_running_loop().call_soon(later)
            return (yield f)

        def later():
            gc.collect()
            ref[0]().set_result("alive")

        return await asyncio.wait_for(asyncio.ensure_future(g()), 5)

    assert asyncio.run(main()) == "alive"


def test_metadata_and_binding():
    def f(a, b=2):
        """doc of f"""
        yield a

    up = cgen._upstream_coroutine(f)
    c = cgen.coroutine(f)
    for name in ("__name__", "__qualname__", "__doc__", "__module__", "__wrapped__",
                 "__tornado_coroutine__"):
        assert getattr(c, name) == getattr(up, name), name
    assert inspect.signature(c) == inspect.signature(up)
    # the decorator itself introspects as upstream's (API snapshot test)
    dec, up_dec = cgen.coroutine, cgen._upstream_coroutine
    assert (dec.__module__, dec.__qualname__, dec.__doc__) == (
        up_dec.__module__, up_dec.__qualname__, up_dec.__doc__)
    assert list(inspect.signature(dec).parameters) == list(inspect.signature(up_dec).parameters)
    assert gen.is_coroutine_function(c) and not gen.is_coroutine_function(f)
    assert weakref.ref(c)() is c

    class A:
        @cgen.coroutine
        def m(self, x):
            yield gen.moment
            return (self, x)

        sm = staticmethod(cgen.coroutine(lambda x: x))

    a = A()
    assert A.m is vars(A)["m"]

    async def calls():
        return await a.m(1), await A.m(a, 2), await a.sm(7)

    assert asyncio.run(calls()) == ((a, 1), (a, 2), 7)
    with pytest.raises(TypeError):
        cgen.coroutine(42)


def test_convert_yielded_registration_is_honoured():
    # in a fresh interpreter: a registration stays for the process
    code = textwrap.dedent("""
        import asyncio
        from tornado import gen
        from tornado.concurrent import Future
        import tornado_c.gen as cgen

        class Thing:
            pass

        class MyFuture(asyncio.Future):
            pass

        seen = []

        @gen.convert_yielded.register(Thing)
        def _(thing):
            seen.append("thing")
            f = Future()
            f.set_result("converted")
            return f

        @gen.convert_yielded.register(asyncio.Future)
        def _(fut):
            seen.append("future")
            return fut

        async def main(coroutine):
            @coroutine
            def g():
                a = yield Thing()
                f = Future()
                f.set_result("plain")
                b = yield f
                return a, b
            return await g()

        out = []
        for impl in (cgen._upstream_coroutine, cgen.coroutine):
            del seen[:]
            out.append((asyncio.run(main(impl)), list(seen)))
        assert out[0] == out[1] == ((("converted", "plain"), ["thing", "future"])), out
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip().splitlines()[-1:] == ["ok"], proc.stdout + proc.stderr


def test_switch_patches_tornado_gen_coroutine(clean_switch):
    clean_switch.uninstall()
    assert gen.coroutine is cgen._upstream_coroutine
    clean_switch.install(web=True)
    assert gen.coroutine is cgen.coroutine
    clean_switch.install(web=False)
    assert gen.coroutine is cgen._upstream_coroutine
    clean_switch.uninstall()
    assert gen.coroutine is cgen._upstream_coroutine


def test_switch_patches_on_import_for_later_decorations():
    code = textwrap.dedent("""
        import tornado_c
        tornado_c.install()
        from tornado import gen, testing
        import tornado_c.gen as cgen
        assert gen.coroutine is cgen.coroutine

        @gen.coroutine
        def g():
            yield gen.moment
            return 1

        assert type(g).__name__ == "_GenCoroutine"
        tornado_c.uninstall()
        assert gen.coroutine is cgen._upstream_coroutine
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip().splitlines()[-1:] == ["ok"], proc.stdout + proc.stderr
