"""Python functions with upstream's signatures that forward to C.

The ``web`` switch puts its C methods on upstream's classes.  A C
descriptor in a class dict is not a function: ``inspect.isfunction``,
``inspect.getmembers(cls, inspect.isfunction)`` and Tornado's own API
snapshot test (``tornado.test.api_test``) would see an attribute where
upstream has a method.  ``forwarder(orig, target)`` makes a plain function
with ``orig``'s parameters (names, kinds, defaults), name, qualified name,
module, docstring and annotations, whose body is one call of ``target``
(the C descriptor, called unbound with ``self`` first).  C code that finds
the forwarder on a handler's class treats it as its own method and calls C
directly (``_core._web_handler_use``), so only calls from Python pay the
one extra frame.
"""

import functools
import inspect


def forwarder(orig, target):
    sig = inspect.signature(orig, follow_wrapped=False)
    params = []
    call = []
    seen_star = False
    kinds = [p.kind for p in sig.parameters.values()]
    for i, p in enumerate(sig.parameters.values()):
        if p.kind == p.POSITIONAL_ONLY:
            params.append(p.name)
            call.append(p.name)
            if i + 1 == len(kinds) or kinds[i + 1] != p.POSITIONAL_ONLY:
                params.append("/")
        elif p.kind == p.POSITIONAL_OR_KEYWORD:
            params.append(p.name)
            call.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            params.append("*" + p.name)
            call.append("*" + p.name)
            seen_star = True
        elif p.kind == p.KEYWORD_ONLY:
            if not seen_star:
                params.append("*")
                seen_star = True
            params.append(p.name)
            call.append("%s=%s" % (p.name, p.name))
        else:
            params.append("**" + p.name)
            call.append("**" + p.name)
    src = "def %s(%s):\n    return _target(%s)\n" % (
        orig.__name__, ", ".join(params), ", ".join(call))
    ns = {}
    exec(compile(src, "<tornado_c forwarder of %s>" % orig.__qualname__, "exec"),
         {"_target": target, "__name__": orig.__module__}, ns)
    f = ns[orig.__name__]
    f.__defaults__ = orig.__defaults__
    f.__kwdefaults__ = orig.__kwdefaults__
    functools.update_wrapper(f, orig)
    f.__tornado_c_forwarder__ = True
    return f
