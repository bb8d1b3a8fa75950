"""tornado_c: drop-in C acceleration for Tornado.

Use one of::

    python -m tornado_c app.py [args]
    python -m tornado_c -m pkg.module [args]

or call ``tornado_c.install()`` before the application starts its server.
``TORNADO_C_DISABLE=loop,http,web,websocket`` (any subset, or ``all``) turns
components off so a problem can be isolated.
"""


def _core_missing():
    """The ImportError to raise when ``tornado_c._core`` cannot be imported
    because it was never built next to this file (typically: Python started
    in the repository root, whose unbuilt ``tornado_c/`` shadows the
    installed package).  None when a build is there, so the original error
    (a broken build, a missing libuv) is the one worth seeing."""
    import glob
    import importlib.machinery
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(os.path.join(here, "_core" + suffix)):
            return None
    others = sorted(os.path.basename(p) for p in glob.glob(os.path.join(here, "_core.*")))
    found = " (found only %s, built for another Python)" % ", ".join(others) if others else ""
    msg = (
        "tornado_c's C extension, tornado_c._core, is not built in %s: this is an unbuilt "
        "source tree%s. Either build it in place: `python setup.py build_ext --inplace` "
        "or `pip install -e .` in %s; or start Python from another directory, so that "
        "the installed tornado_c is imported instead of this source tree."
        % (here, found, os.path.dirname(here))
    )
    return ImportError(msg, name="tornado_c._core", path=here)


try:
    from tornado_c import _core
except ImportError:
    _missing = _core_missing()
    if _missing is None:
        raise
    # from None: the original error blames a circular import
    raise _missing from None

from tornado_c._switch import active, components, disabled_from_env, install, uninstall

__version__ = _core.__version__

__all__ = [
    "install",
    "uninstall",
    "active",
    "components",
    "disabled_from_env",
    "versions",
    "info",
    "run",
]


def run(main, *, debug=None):
    """asyncio.run(main) on the tornado_c event loop (tornado_c.loop.run)."""
    from tornado_c.loop import run as _run

    return _run(main, debug=debug)


def versions():
    """Versions of everything tornado_c runs on."""
    import tornado

    return {
        "tornado_c": __version__,
        "tornado": tornado.version,
        "libuv": _core.libuv_version(),
        "llhttp": _core.llhttp_version(),
        "debug_build": bool(_core.DEBUG_BUILD),
    }


def info():
    """A human-readable report of versions and component states."""
    lines = ["tornado_c %s" % __version__]
    for key, value in versions().items():
        if key != "tornado_c":
            lines.append("  %-12s %s" % (key, value))
    try:
        off = disabled_from_env()
    except ValueError as exc:
        off = set()
        lines.append("  warning: %s" % exc)
    lines.append("components:")
    for name, comp in components().items():
        if comp.active:
            state = "active"
        elif not comp.available:
            state = "not in C yet (upstream Python used)"
        elif name in off:
            state = "disabled by TORNADO_C_DISABLE"
        else:
            state = "available, not installed"
        lines.append("  %-10s %-38s %s" % (name, state, comp.what))
    return "\n".join(lines)
