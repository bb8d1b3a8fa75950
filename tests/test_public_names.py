"""tornado_c.<mod> exposes every public name of tornado.<mod>."""

import importlib

import pytest

from tornado_c._reexport import public_names

MODULES = ["web", "gen", "ioloop", "iostream", "httpserver", "httputil", "websocket"]

# Names tornado_c adds on top of upstream's, per module.
EXTRAS = {"websocket": {"websocket_mask", "websocket_mask_into"}}


@pytest.mark.parametrize("name", MODULES)
def test_same_public_names(name):
    upstream = importlib.import_module("tornado." + name)
    ours = importlib.import_module("tornado_c." + name)
    up_names = set(public_names(upstream))
    our_names = {n for n in vars(ours) if not n.startswith("_")}
    missing = up_names - our_names
    assert not missing, "missing from tornado_c.%s: %s" % (name, sorted(missing))
    extra = our_names - up_names - EXTRAS.get(name, set())
    assert not extra, "unexpected names in tornado_c.%s: %s" % (name, sorted(extra))


@pytest.mark.parametrize("name", MODULES)
def test_reexported_objects_are_usable(name):
    upstream = importlib.import_module("tornado." + name)
    ours = importlib.import_module("tornado_c." + name)
    for n in public_names(upstream):
        obj = getattr(ours, n)
        if isinstance(obj, type):
            # a class we replace must stay usable wherever upstream's is expected
            assert issubclass(obj, getattr(upstream, n)) or obj is getattr(upstream, n)
