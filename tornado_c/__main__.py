"""python -m tornado_c: run a program with tornado_c installed first.

    python -m tornado_c app.py [args]       like ``python app.py [args]``
    python -m tornado_c -m pkg.mod [args]   like ``python -m pkg.mod [args]``
    python -m tornado_c -c CODE [args]      like ``python -c CODE [args]``
    python -m tornado_c --info              what is active, library versions

The program sees the same ``sys.argv``, ``__main__`` and ``sys.path[0]`` as it
would under plain ``python``; its exit code and tracebacks are its own (this
runner's frames are removed from tracebacks).
"""

import os
import runpy
import signal
import sys

USAGE = """usage: python -m tornado_c [--info] (script.py | -m module | -c code) [args ...]

Runs the program with tornado_c.install() applied first.
TORNADO_C_DISABLE=loop,http,web,websocket (any subset, or all) turns parts off."""

_OWN_FILES = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}


def _is_runner_frame(frame):
    name = frame.f_code.co_filename
    return name == "<frozen runpy>" or os.path.abspath(name) in _OWN_FILES


def _report(exc):
    """Print `exc` as the interpreter would for an uncaught exception, without
    this runner's frames, and exit the way the interpreter would."""
    tb = exc.__traceback__
    while tb is not None and _is_runner_frame(tb.tb_frame):
        tb = tb.tb_next
    exc.with_traceback(tb)  # the default hook prints exc.__traceback__
    sys.excepthook(type(exc), exc, tb)
    if isinstance(exc, KeyboardInterrupt):
        # CPython exits through SIGINT so the parent sees "killed by SIGINT".
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    sys.exit(1)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0

    import tornado_c

    if argv[0] == "--info":
        tornado_c.install()
        print(tornado_c.info())
        return 0

    if argv[0] == "-m":
        if len(argv) < 2:
            print("python -m tornado_c: -m needs a module name\n" + USAGE, file=sys.stderr)
            return 2
        mod = argv[1]
        sys.argv[:] = [mod] + argv[2:]  # run_module puts the file path in argv[0]

        def run():
            runpy.run_module(mod, run_name="__main__", alter_sys=True)

    elif argv[0] == "-c":
        if len(argv) < 2:
            print("python -m tornado_c: -c needs code\n" + USAGE, file=sys.stderr)
            return 2
        code = argv[1]
        sys.argv[:] = ["-c"] + argv[2:]
        sys.path[0] = ""

        def run():
            import __main__

            namespace = {"__name__": "__main__", "__builtins__": __builtins__}
            __main__.__dict__.clear()
            __main__.__dict__.update(namespace)
            exec(compile(code, "<string>", "exec"), __main__.__dict__)

    else:
        path = argv[0]
        if not os.path.exists(path):
            print(
                "%s: can't open file %r: [Errno 2] No such file or directory"
                % (sys.executable, os.path.abspath(path)),
                file=sys.stderr,
            )
            return 2
        sys.argv[:] = argv
        # As `python app.py` does: the script's folder comes first on sys.path.
        sys.path[0] = os.path.dirname(os.path.abspath(path))

        def run():
            runpy.run_path(path, run_name="__main__")

    tornado_c.install()
    try:
        run()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: B902 - reported like the interpreter does
        _report(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
