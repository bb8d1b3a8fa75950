"""The tornado_c asyncio event loop.

``EventLoop`` is an ``asyncio.AbstractEventLoop`` whose scheduling core
(call_soon, call_later, call_at, timers, add_reader/add_writer and the
iteration loop) is ``tornado_c._core.Loop``, written in C on libuv.  The
parts that are plain coroutines or bookkeeping (executors, getaddrinfo,
sock_* helpers, exception handlers, async generator hooks, signal handlers)
are here.

``EventLoopPolicy`` makes asyncio create this loop everywhere
(``asyncio.set_event_loop_policy(tornado_c.loop.EventLoopPolicy())``), and
``tornado_c.run(main)`` is the ``asyncio.run`` equivalent.
"""

import asyncio
import concurrent.futures
import contextvars
import errno
import os
import signal
import socket
import sys
import threading
import warnings
import weakref

from asyncio import base_events as _base_events
from asyncio import coroutines, format_helpers, futures, tasks
from asyncio.log import logger

from tornado_c import _core
from tornado_c._loop_pipes import PipesMixin
from tornado_c._loop_sendfile import SendfileMixin, check_nonblocking_socket
from tornado_c._loop_streams import StreamsMixin
from tornado_c._loop_subprocess import SubprocessMixin
from tornado_c._loop_udp import DatagramMixin

__all__ = ["EventLoop", "EventLoopPolicy", "new_event_loop", "run"]

_DEBUG_STACK_DEPTH = 10

# Where asyncio's behaviour changed between the Python versions tornado_c
# supports (3.11+), this loop does what the running interpreter's asyncio does.
_PY312 = sys.version_info >= (3, 12)
# 3.12: a custom exception handler runs in the contextvars context of the
# task, future or handle the error came from.
_HANDLER_IN_OBJECT_CONTEXT = _PY312
# 3.12: shutdown_default_executor(timeout=None).
_EXECUTOR_SHUTDOWN_TIMEOUT = _PY312


def _object_context(context):
    """The contextvars.Context of the task, future or handle an exception
    handler's `context` dict is about (as asyncio 3.12+ looks it up), or None."""
    thing = context.get("task")
    if thing is None:
        thing = context.get("future")
    if thing is None:
        thing = context.get("handle")
    get_context = getattr(thing, "get_context", None) if thing is not None else None
    ctx = get_context() if get_context is not None else None
    return ctx if ctx is not None and hasattr(ctx, "run") else None


def _handle_repr(self):
    if self._repr is not None:
        return self._repr
    info = [type(self).__name__]
    if self._cancelled:
        info.append("cancelled")
    if isinstance(self, _core.TimerHandle):
        info.insert(2 if self._cancelled else 1, "when=%s" % (self._when,))
    if self._callback is not None:
        info.append(format_helpers._format_callback_source(self._callback, self._args))
    tb = self._source_traceback
    if tb:
        frame = tb[-1]
        info.append("created at %s:%s" % (frame[0], frame[1]))
    return "<%s>" % " ".join(info)


def _timer_eq(self, other):
    if isinstance(other, _core.TimerHandle):
        return (self._when == other._when and self._callback == other._callback
                and self._args == other._args and self._cancelled == other._cancelled)
    return NotImplemented


def _timer_cmp(op):
    def method(self, other):
        if isinstance(other, _core.TimerHandle):
            return op(self._when, other._when)
        return NotImplemented
    return method


_core.Handle.__repr__ = _handle_repr
_core.TimerHandle.__eq__ = _timer_eq
_core.TimerHandle.__hash__ = lambda self: hash(self._when)
_core.TimerHandle.__lt__ = _timer_cmp(lambda a, b: a < b)
_core.TimerHandle.__le__ = _timer_cmp(lambda a, b: a <= b)
_core.TimerHandle.__gt__ = _timer_cmp(lambda a, b: a > b)
_core.TimerHandle.__ge__ = _timer_cmp(lambda a, b: a >= b)


def _is_ip_literal(host):
    if not isinstance(host, (str, bytes)):
        return False
    if isinstance(host, bytes):
        host = host.decode("idna")
    host = host.partition("%")[0]
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return True
        except (OSError, ValueError):
            pass
    return False


def _sighandler_noop(signum, frame):
    """Python-level handler of signals handled by add_signal_handler: the
    signal number reaches the loop through the wakeup fd."""


# _core.Loop comes first among the bases.  Every call of a C method on the
# loop (call_soon, call_later, time, create_future...) checks that the loop is
# a _core.Loop by walking type(loop).__mro__ until it meets it, so its place
# there is paid on each call (five mixins ahead of it cost about 20
# instructions per call).  The order changes no lookup: the mixins define no
# name _core.Loop defines except StreamsMixin.close, and EventLoop defines its
# own close(), which calls _core.Loop.close.  asyncio.AbstractEventLoop stays
# last: its methods are the abstract ones the others implement.
class EventLoop(_core.Loop, StreamsMixin, DatagramMixin, PipesMixin, SubprocessMixin,
                SendfileMixin, asyncio.AbstractEventLoop):
    """asyncio event loop on libuv (C core in tornado_c._core.Loop)."""

    def __init__(self):
        self._exception_handler = None
        self._task_factory = None
        self._default_executor = None
        self._executor_shutdown_called = False
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self._signal_handlers = {}
        self._wakeup_saved = None
        self.slow_callback_duration = 0.1
        self._ssock, self._csock = socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._set_signal_fd(self._ssock.fileno())
        self._set_debug_flag(coroutines._is_debug_mode())

    def __repr__(self):
        return "<%s running=%s closed=%s debug=%s>" % (
            type(self).__name__, self.is_running(), self.is_closed(), self.get_debug())

    def __del__(self, _warn=warnings.warn):
        if not self.is_closed():
            _warn("unclosed event loop %r" % (self,), ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # -- running ----------------------------------------------------------

    def _check_closed(self):
        if self.is_closed():
            raise RuntimeError("Event loop is closed")

    def _check_running(self):
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(_DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    def run_forever(self):
        """Run until stop() is called."""
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self.get_debug())
        old_agen_hooks = sys.get_asyncgen_hooks()
        wakeup = None
        main = threading.current_thread() is threading.main_thread()
        try:
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                                   finalizer=self._asyncgen_finalizer_hook)
            asyncio._set_running_loop(self)
            if main and not self._signal_handlers:
                # libuv retries epoll_wait on EINTR: signals must reach the
                # loop through the wakeup fd (Ctrl-C -> KeyboardInterrupt).
                try:
                    wakeup = signal.set_wakeup_fd(self._csock.fileno(),
                                                  warn_on_full_buffer=False)
                except ValueError:
                    wakeup = None
            self._run_forever_c()
        finally:
            if wakeup is not None and not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(wakeup)
                except ValueError:
                    pass
            asyncio._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future):
        """Run until the future (or coroutine, wrapped in a Task) is done and
        return its result or raise its exception."""
        self._check_closed()
        self._check_running()
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            future._log_destroy_pending = False
        future.add_done_callback(_stop_loop_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()  # the caller gets it: do not log it again
            raise
        finally:
            future.remove_done_callback(_stop_loop_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def close(self):
        """Close the loop: drop pending callbacks, free libuv resources and
        shut the default executor down (without waiting)."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        if self.get_debug():
            logger.debug("Close %r", self)
        if not sys.is_finalizing():
            for sig in list(getattr(self, "_signal_handlers", ())):
                self.remove_signal_handler(sig)
        _core.Loop.close(self)
        for sock in (getattr(self, "_ssock", None), getattr(self, "_csock", None)):
            if sock is not None:
                sock.close()
        self._executor_shutdown_called = True
        executor = getattr(self, "_default_executor", None)
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    # -- futures and tasks --------------------------------------------------

    def create_future(self):
        return futures.Future(loop=self)

    # Task creation is the running Python's own: asyncio's create_task()
    # changed in nearly every release (the context= argument in 3.11, names
    # set on factory-made tasks in 3.13.0, every keyword passed on to the
    # factory or Task -- eager_start= among them -- in 3.13.3 and 3.14), and
    # BaseEventLoop's methods only use _check_closed() and _task_factory,
    # which this loop has.
    create_task = _base_events.BaseEventLoop.create_task
    set_task_factory = _base_events.BaseEventLoop.set_task_factory
    get_task_factory = _base_events.BaseEventLoop.get_task_factory

    # -- debug ------------------------------------------------------------

    def set_debug(self, enabled):
        self._set_debug_flag(enabled)
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _check_callback(self, callback, method):
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with %s()" % method)
        if not callable(callback):
            raise TypeError("a callable object was expected by %s(), got %r" % (method, callback))

    def _log_slow_callback(self, handle, dt):
        from asyncio.base_events import _format_handle

        logger.warning("Executing %s took %.3f seconds", _format_handle(handle), dt)

    # -- exception handling -----------------------------------------------

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError("A callable object or None is expected, got %r" % (handler,))
        self._exception_handler = handler

    def default_exception_handler(self, context):
        """Log `context` to the 'asyncio' logger, as asyncio's loops do."""
        message = context.get("message") or "Unhandled exception in event loop"
        exc = context.get("exception")
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else False
        lines = [message]
        for key in sorted(context):
            if key in ("message", "exception"):
                continue
            value = context[key]
            if key == "source_traceback":
                import traceback

                value = ("Object created at (most recent call last):\n"
                         + "".join(traceback.format_list(value)).rstrip())
            elif key == "handle_traceback":
                import traceback

                value = ("Handle created at (most recent call last):\n"
                         + "".join(traceback.format_list(value)).rstrip())
            else:
                value = repr(value)
            lines.append("%s: %s" % (key, value))
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            if _HANDLER_IN_OBJECT_CONTEXT:
                ctx = _object_context(context)
                if ctx is not None:
                    ctx.run(handler, self, context)
                else:
                    handler(self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler",
                    "exception": exc,
                    "context": context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler while handling "
                             "an unexpected error in custom exception handler",
                             exc_info=True)

    # -- async generators ---------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen):
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen):
        if self._asyncgens_shutdown_called:
            warnings.warn("asynchronous generator %r was scheduled after "
                          "loop.shutdown_asyncgens() call" % (agen,),
                          ResourceWarning, source=self)
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self):
        """Close every async generator still alive on this loop."""
        self._asyncgens_shutdown_called = True
        if not self._asyncgens:
            return
        gens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(*[g.aclose() for g in gens], return_exceptions=True)
        for result, agen in zip(results, gens):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    "message": "an error occurred during closing of "
                               "asynchronous generator %r" % (agen,),
                    "exception": result,
                    "asyncgen": agen,
                })

    # -- executors ----------------------------------------------------------

    def run_in_executor(self, executor, func, *args):
        self._check_closed()
        if self.get_debug() and (coroutines.iscoroutine(func)
                                 or coroutines.iscoroutinefunction(func)):
            raise TypeError("coroutines cannot be used with run_in_executor()")
        if executor is None:
            executor = self._default_executor
            if executor is None:
                if self._executor_shutdown_called:
                    raise RuntimeError("Executor shutdown has been called")
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def _shutdown_default_executor(self, timeout=None):
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()

        def shutdown():
            try:
                executor.shutdown(wait=True)
            except Exception as exc:
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_exc_unless_done, done, exc)
            else:
                if not self.is_closed():
                    self.call_soon_threadsafe(_set_result_unless_done, done, None)

        thread = threading.Thread(target=shutdown)
        thread.start()
        try:
            if timeout is None:
                await done
            else:
                await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            warnings.warn("The executor did not finishing joining its threads within "
                          "%s seconds." % (timeout,), RuntimeWarning, stacklevel=3)
            executor.shutdown(wait=False)
        else:
            thread.join()

    if _EXECUTOR_SHUTDOWN_TIMEOUT:
        async def shutdown_default_executor(self, timeout=None):
            """Shut the default executor down, waiting for its threads (in a
            helper thread, so the loop keeps running) at most `timeout`
            seconds, then warn and stop waiting (asyncio 3.13 semantics)."""
            await self._shutdown_default_executor(timeout)
    else:
        async def shutdown_default_executor(self):
            """Shut the default executor down, waiting for its threads (in a
            helper thread, so the loop keeps running)."""
            await self._shutdown_default_executor()

    # -- DNS ---------------------------------------------------------------

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        return await self.run_in_executor(None, socket.getaddrinfo, host, port,
                                          family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    # -- sockets -------------------------------------------------------------

    def _sock_io(self, fut, func, *args):
        if fut.done():
            return
        try:
            result = func(*args)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    async def _sock_wait(self, sock, writer, func, *args):
        fut = self.create_future()
        fd = sock.fileno()
        # Done callbacks run later: when a cancelled wait's callback runs, a
        # new wait on the same fd may have replaced its reader/writer, which
        # must stay (asyncio checks the handle it registered).
        owners = self.__dict__.setdefault("_tc_sock_waits", {})
        key = (fd, writer)

        def done(f):
            if owners.get(key) is f:
                del owners[key]
                if writer:
                    self.remove_writer(fd)
                else:
                    self.remove_reader(fd)

        if writer:
            self.add_writer(fd, self._sock_io, fut, func, *args)
        else:
            self.add_reader(fd, self._sock_io, fut, func, *args)
        owners[key] = fut
        fut.add_done_callback(done)
        return await fut

    async def sock_recv(self, sock, n):
        check_nonblocking_socket(sock)
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, False, sock.recv, n)

    async def sock_recv_into(self, sock, buf):
        check_nonblocking_socket(sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, False, sock.recv_into, buf)

    async def sock_recvfrom(self, sock, bufsize):
        check_nonblocking_socket(sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        # the method is looked up at each try, as asyncio does
        return await self._sock_wait(sock, False, lambda: sock.recvfrom(bufsize))

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        check_nonblocking_socket(sock)
        nbytes = nbytes or len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, False, lambda: sock.recvfrom_into(buf, nbytes))

    async def sock_sendto(self, sock, data, address):
        check_nonblocking_socket(sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, True, lambda: sock.sendto(data, address))

    async def sock_sendall(self, sock, data):
        check_nonblocking_socket(sock)
        view = memoryview(data).cast("B")
        total = len(view)
        sent = 0
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            pass
        while sent < total:
            try:
                n = await self._sock_wait(sock, True, sock.send, view[sent:])
            except (BlockingIOError, InterruptedError):  # pragma: no cover
                continue
            sent += n
        return None

    async def sock_connect(self, sock, address):
        check_nonblocking_socket(sock)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_ip_literal(address[0]):
            infos = await self.getaddrinfo(*address[:2], family=sock.family,
                                           type=sock.type, proto=sock.proto)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            address = infos[0][4]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass

        def check():
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                raise OSError(err, "Connect call failed %s" % (address,))

        await self._sock_wait(sock, True, check)

    async def sock_accept(self, sock):
        check_nonblocking_socket(sock)

        def accept():
            conn, addr = sock.accept()
            conn.setblocking(False)
            return conn, addr

        try:
            return accept()
        except (BlockingIOError, InterruptedError):
            pass
        return await self._sock_wait(sock, False, accept)

    # -- signals -------------------------------------------------------------

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError("sig must be an int, not %r" % (sig,))
        if sig not in signal.valid_signals():
            raise ValueError("invalid signal number %s" % (sig,))

    def add_signal_handler(self, sig, callback, *args):
        """Run callback(*args) in the loop when signal `sig` arrives
        (main thread only, as asyncio's Unix loops)."""
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        try:
            signal.set_wakeup_fd(self._csock.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        self._signal_handlers[sig] = (callback, args, contextvars.copy_context())
        try:
            signal.signal(sig, _sighandler_noop)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    logger.info("set_wakeup_fd(-1) failed: %s", nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError("sig %s cannot be caught" % (sig,))
            raise

    def remove_signal_handler(self, sig):
        """Remove the handler of `sig`; True if there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError("sig %s cannot be caught" % (sig,))
            raise
        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                logger.info("set_wakeup_fd(-1) failed: %s", exc)
        return True

    def _handle_signal_bytes(self, data):
        """Called by the C core with the bytes read from the wakeup socket."""
        for signum in data:
            entry = self._signal_handlers.get(signum)
            if entry is not None:
                callback, args, context = entry
                self.call_soon(callback, *args, context=context)


def _stop_loop_cb(fut):
    if not fut.cancelled():
        if isinstance(fut.exception(), (SystemExit, KeyboardInterrupt)):
            return  # run_forever() is already on its way out with it
    futures._get_loop(fut).stop()


def _set_result_unless_done(fut, value):
    if not fut.done():
        fut.set_result(value)


def _set_exc_unless_done(fut, exc):
    if not fut.done():
        fut.set_exception(exc)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """asyncio event loop policy whose loops are tornado_c EventLoops."""

    _loop_factory = EventLoop

    def __repr__(self):
        return "<tornado_c.loop.EventLoopPolicy>"


def new_event_loop():
    """A new tornado_c EventLoop."""
    return EventLoop()


def run(main, *, debug=None):
    """Like asyncio.run(main), on a tornado_c EventLoop."""
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
