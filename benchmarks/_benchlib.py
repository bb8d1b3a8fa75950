"""What the loop benchmarks' processes share (loop_micro.py, loop_subprocess.py,
loop_tcp.py, loop_udp.py, callgrind_echo.py): which tornado_c they measure,
the three loops by name, and the stdin protocol of their echo servers.

Which tornado_c: the source tree when it holds a built extension (an in-place
build), otherwise the installed one (scripts/bench.sh installs it into .venv
and runs the benchmarks from outside the tree).  Child processes get the same
through child_env(), or through `sys.path.insert(0, HERE)` and new_loop() for
code run with ``python -c``.
"""

import glob
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = ROOT if glob.glob(os.path.join(ROOT, "tornado_c", "_core*.so")) else ""
LOOPS = ("asyncio", "uvloop", "tornado_c")


def use_source_tree():
    """Put the source tree first on sys.path if it holds a built extension."""
    if SRC and SRC not in sys.path:
        sys.path.insert(0, SRC)


def child_env(base=None, **extra):
    """An environment for child processes that import the same tornado_c."""
    env = dict(os.environ if base is None else base, **extra)
    if SRC:
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def new_loop(kind):
    """A new event loop: "asyncio" (the stdlib's selector loop), "uvloop" or
    "tornado_c"."""
    import asyncio

    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "tornado_c":
        use_source_tree()
        from tornado_c.loop import EventLoop

        return EventLoop()
    raise SystemExit("unknown loop %r" % kind)


def serve_stdin(loop):
    """The echo servers' control channel: each "t" read on stdin is answered
    with the process's CPU time on stdout; EOF resolves the returned future
    (the server then stops)."""
    stop = loop.create_future()
    fd = sys.stdin.fileno()

    def on_stdin():
        line = os.read(fd, 100)
        if not line:
            loop.remove_reader(fd)
            if not stop.done():
                stop.set_result(None)
            return
        for _ in range(line.count(b"t")):
            sys.stdout.write("%.6f\n" % time.process_time())
        sys.stdout.flush()

    loop.add_reader(fd, on_stdin)
    return stop
