"""Child processes on the tornado_c event loop (subprocess_exec,
subprocess_shell, and through them asyncio.create_subprocess_exec/_shell).

The transport is asyncio's own ``asyncio.base_subprocess.BaseSubprocessTransport``
(the same class in 3.11, 3.12 and 3.13 but for send_signal(), which 3.13
sends with os.kill), so the protocol sees exactly what it sees on the stdlib
loop: the pipes are connected with the loop's connect_read_pipe /
connect_write_pipe (tornado_c._loop_pipes), pipe_data_received and
pipe_connection_lost are forwarded, process_exited() and connection_lost()
come in asyncio's order, and wait() returns once the process has exited and
every pipe is closed.  The child is started with ``subprocess.Popen``, which
gives the stdlib's argument checks and errors (FileNotFoundError for a missing
program, pass_fds, start_new_session, cwd, env, ...).

What differs from the stdlib loop is how the exit is noticed: no child
watcher and no SIGCHLD handler.  Each child gets a pidfd (Linux >= 5.3),
watched with add_reader; when it becomes readable the child is reaped with
waitpid(WNOHANG).  Where pidfd_open() is missing or refused (old kernel,
seccomp), a daemon thread blocks in waitpid() for that child, as asyncio's
ThreadedChildWatcher does.  If the Popen object reaped the child itself
first (send_signal() polls, close() polls, or the user called proc.wait()),
its returncode is reported instead of asyncio's 255.  Children still running
when the loop closes are handed to a reaper thread, so no zombie is left.
"""

import os
import subprocess
import sys
import threading

from asyncio import base_subprocess
from asyncio.log import logger

__all__ = ["SubprocessTransport", "SubprocessMixin"]

# 3.11's _UnixSelectorEventLoop._child_watcher_callback lets one more loop
# iteration pass before _process_exited ("Skip one iteration for callbacks
# to be executed"); 3.12 dropped that hop.  Follow the running stdlib.
_EXTRA_HOP = sys.version_info < (3, 12)

# Tests set this to False to exercise the thread fallback.
_USE_PIDFD = hasattr(os, "pidfd_open")


def _exit_code(status):
    return os.waitstatus_to_exitcode(status)


class _ExitWatch:
    """Notices the exit of one child and tells its transport.

    Lives in the loop's live set (StreamsMixin._tc_live) until the child is
    reaped, so that closing the loop hands the child to a reaper thread."""

    def __init__(self, loop, transport, proc):
        self._loop = loop
        self._transport = transport
        self._proc = proc
        self._pidfd = None
        self._thread = None
        self._live = loop._tc_live()
        self._live.add(self)
        pidfd = None
        if _USE_PIDFD:
            try:
                pidfd = os.pidfd_open(proc.pid)
            except OSError:
                pidfd = None
        if pidfd is not None:
            try:
                loop.add_reader(pidfd, self._pidfd_readable)
            except BaseException:
                os.close(pidfd)
                self._live.discard(self)
                raise
            self._pidfd = pidfd
        else:
            self._thread = threading.Thread(
                target=self._wait_in_thread, name="tornado_c-waitpid-%d" % proc.pid,
                daemon=True)
            self._thread.start()

    # -- pidfd ---------------------------------------------------------------

    def _pidfd_readable(self):
        proc = self._proc
        if proc.returncode is not None:
            returncode = proc.returncode  # Popen reaped it itself
        else:
            try:
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
            except ChildProcessError:
                returncode = self._status_lost()
            else:
                if pid == 0:
                    return  # not exited yet (spurious wakeup)
                returncode = _exit_code(status)
        self._release_pidfd()
        self._deliver(returncode)

    def _release_pidfd(self):
        pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)

    # -- thread fallback ---------------------------------------------------

    def _wait_in_thread(self):
        pid = self._proc.pid
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            returncode = None  # reaped elsewhere: resolved in the loop thread
        else:
            returncode = _exit_code(status)
        loop = self._loop
        if loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._thread_done, returncode)
        except RuntimeError:
            pass  # the loop closed meanwhile

    def _thread_done(self, returncode):
        # call_soon_threadsafe was the first of the hops to _process_exited
        if returncode is None:
            returncode = self._proc.returncode
            if returncode is None:
                returncode = self._status_lost()
        self._deliver(returncode, hopped=True)

    # -- common ------------------------------------------------------------

    def _status_lost(self):
        logger.warning("child process pid %d exit status already read: "
                       "will report returncode 255", self._proc.pid)
        return 255

    def _deliver(self, returncode, hopped=False):
        """transport._process_exited(returncode), as many loop iterations
        after the exit was noticed as on the stdlib loop."""
        self._live.discard(self)
        transport, self._transport = self._transport, None
        if transport is None:
            return
        loop = self._loop
        hops = (2 if _EXTRA_HOP else 1) - hopped
        if hops == 2:
            loop.call_soon(loop.call_soon, transport._process_exited, returncode)
        elif hops == 1:
            loop.call_soon(transport._process_exited, returncode)
        else:
            transport._process_exited(returncode)

    def _loop_closing(self):
        """The loop closes while the child runs: stop watching, and let a
        thread reap the child when it exits."""
        self._live.discard(self)
        self._transport = None
        if self._pidfd is None:
            return  # the waiting thread reaps it
        self._release_pidfd()
        proc = self._proc
        threading.Thread(target=_reap_quietly, args=(proc,),
                         name="tornado_c-reap-%d" % proc.pid, daemon=True).start()


def _reap_quietly(proc):
    try:
        proc.wait()
    except Exception:  # pragma: no cover - nothing left to tell anyone
        pass


class SubprocessTransport(base_subprocess.BaseSubprocessTransport):
    """asyncio.SubprocessTransport of the tornado_c loop."""

    def _start(self, args, shell, stdin, stdout, stderr, bufsize, **kwargs):
        self._proc = subprocess.Popen(
            args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
            universal_newlines=False, bufsize=bufsize, **kwargs)


def _format_stdio(value):
    if value == subprocess.PIPE:
        return "<pipe>"
    if value == subprocess.STDOUT:
        return "<stdout>"
    return repr(value)


def _check_popen_options(universal_newlines, bufsize, text, encoding, errors):
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


class SubprocessMixin:
    """subprocess_exec / subprocess_shell of the C event loop."""

    def _tc_log_subprocess(self, what, stdin, stdout, stderr):
        parts = [what]
        if stdin is not None:
            parts.append("stdin=%s" % _format_stdio(stdin))
        if stdout is not None and stderr == subprocess.STDOUT:
            parts.append("stdout=stderr=%s" % _format_stdio(stdout))
        else:
            if stdout is not None:
                parts.append("stdout=%s" % _format_stdio(stdout))
            if stderr is not None:
                parts.append("stderr=%s" % _format_stdio(stderr))
        logger.debug(" ".join(parts))

    async def _tc_spawn(self, protocol_factory, args, shell, what, stdin, stdout, stderr,
                        bufsize, kwargs):
        protocol = protocol_factory()
        debug = self.get_debug()
        if debug:
            # like asyncio: the program, never its arguments (secrets, size)
            self._tc_log_subprocess(what, stdin, stdout, stderr)
        self._check_closed()
        waiter = self.create_future()
        transport = SubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr,
                                        bufsize, waiter=waiter, extra=None, **kwargs)
        try:
            _ExitWatch(self, transport, transport._proc)
        except BaseException:
            transport.close()  # kills the child: nobody would notice its exit
            raise
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        if debug:
            logger.info("%s: %r", what, transport)
        return transport, protocol

    async def subprocess_exec(self, protocol_factory, program, *args,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=False,
                              shell=False, bufsize=0, encoding=None, errors=None,
                              text=None, **kwargs):
        """Run `program` with `args` (no shell); returns (transport, protocol)."""
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if shell:
            raise ValueError("shell must be False")
        _check_popen_options(universal_newlines, bufsize, text, encoding, errors)
        return await self._tc_spawn(protocol_factory, (program,) + args, False,
                                    "execute program %r" % (program,),
                                    stdin, stdout, stderr, bufsize, kwargs)

    async def subprocess_shell(self, protocol_factory, cmd, *,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=False,
                               shell=True, bufsize=0, encoding=None, errors=None,
                               text=None, **kwargs):
        """Run the shell command `cmd`; returns (transport, protocol)."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        if universal_newlines:
            raise ValueError("universal_newlines must be False")
        if not shell:
            raise ValueError("shell must be True")
        _check_popen_options(universal_newlines, bufsize, text, encoding, errors)
        return await self._tc_spawn(protocol_factory, cmd, True,
                                    "run shell command %r" % (cmd,),
                                    stdin, stdout, stderr, bufsize, kwargs)
