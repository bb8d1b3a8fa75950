"""Helper for the tornado_c.<module> faces: copy an upstream module's public names."""

import importlib


def public_names(module):
    """The public names of a module: its __all__ if it has one, else every
    name without a leading underscore."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted(names)


def reexport(namespace, upstream_name):
    """Fill `namespace` (a module's globals) with upstream's public names.

    Names the tornado_c module defines itself afterwards win; this only
    provides the ones not (yet) accelerated.
    """
    upstream = importlib.import_module(upstream_name)
    for name in public_names(upstream):
        namespace.setdefault(name, getattr(upstream, name))
    return upstream
