"""Signals: Ctrl-C interrupts a running loop with KeyboardInterrupt, and
add_signal_handler works (each case in a subprocess, on both loops)."""
import os
import subprocess
import sys
import textwrap

from conftest import tornado_c_parent

ROOT = tornado_c_parent()  # the tornado_c under test, installed or in-tree

PRELUDE = """
import asyncio, os, signal, sys, threading, time
sys.path.insert(0, %r)
from tornado_c.loop import EventLoop
def make():
    return asyncio.SelectorEventLoop() if sys.argv[1] == "asyncio" else EventLoop()
""" % ROOT


def run_child(kind, body, timeout=20):
    code = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code, kind], capture_output=True,
                          text=True, timeout=timeout)
    return proc


def test_sigint_while_idle_raises_keyboard_interrupt(loop_kind):
    proc = run_child(loop_kind, """
        loop = make()
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            loop.run_forever()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", time.monotonic() - t0 < 5)
        loop.close()
    """)
    assert proc.stdout.strip() == "KeyboardInterrupt True", proc.stderr


def test_sigint_from_a_callback_raises(loop_kind):
    proc = run_child(loop_kind, """
        loop = make()
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        try:
            loop.run_forever()
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        # the loop still works afterwards
        print(loop.run_until_complete(asyncio.sleep(0.01, "again")))
        loop.close()
    """)
    assert proc.stdout.split() == ["KeyboardInterrupt", "again"], proc.stderr


def test_sigint_in_run_until_complete_of_a_sleeping_task(loop_kind):
    proc = run_child(loop_kind, """
        loop = make()
        async def main():
            await asyncio.sleep(30)
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            loop.run_until_complete(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """)
    assert proc.stdout.strip() == "KeyboardInterrupt", proc.stderr


def test_sigint_under_runner_cancels_main_task(loop_kind):
    # asyncio.Runner installs its own SIGINT handler: the main task is
    # cancelled and KeyboardInterrupt raised at the end
    proc = run_child(loop_kind, """
        async def main():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                print("cancelled")
                raise
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            with asyncio.Runner(loop_factory=make) as runner:
                runner.run(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """)
    assert proc.stdout.split() == ["cancelled", "KeyboardInterrupt"], proc.stderr


def test_add_remove_signal_handler(loop_kind):
    proc = run_child(loop_kind, """
        loop = make()
        got = []
        loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        loop.call_later(0.5, loop.stop)
        loop.run_forever()
        print(got)
        print(loop.remove_signal_handler(signal.SIGUSR1), loop.remove_signal_handler(signal.SIGUSR1))
        print(signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL)
        try:
            loop.add_signal_handler(signal.SIGKILL, print)
        except RuntimeError as e:
            print("RuntimeError")
        try:
            loop.add_signal_handler("x", print)
        except TypeError:
            print("TypeError")
        loop.close()
    """)
    assert proc.stdout.split("\n")[:5] == ["['usr1']", "True False", "True",
                                          "RuntimeError", "TypeError"], proc.stderr


def test_python_signal_handler_runs_while_loop_blocks(loop_kind):
    # tornado.process.Subprocess relies on a plain signal.signal() handler
    # running while the loop sleeps in its poll
    proc = run_child(loop_kind, """
        loop = make()
        def handler(signum, frame):
            loop.call_soon_threadsafe(loop.stop)
            print("handled")
        signal.signal(signal.SIGUSR2, handler)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR2)).start()
        guard = loop.call_later(5, loop.stop)
        t0 = time.monotonic()
        loop.run_forever()
        print(time.monotonic() - t0 < 2)
        loop.close()
    """)
    assert proc.stdout.split() == ["handled", "True"], proc.stderr


def test_exception_from_python_signal_handler_leaves_run_forever(loop_kind):
    proc = run_child(loop_kind, """
        loop = make()
        def handler(signum, frame):
            raise ValueError("from handler")
        signal.signal(signal.SIGUSR1, handler)
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        guard = loop.call_later(5, loop.stop)
        try:
            loop.run_forever()
        except ValueError as exc:
            print("ValueError", exc)
        guard.cancel()
        loop.close()
    """)
    assert proc.stdout.strip() == "ValueError from handler", proc.stderr
