"""Build the single C extension ``tornado_c._core``.

libuv and llhttp come from the system, never from this repository:

* libuv: ``pkg-config libuv`` (Debian package ``libuv1-dev``).
* zlib (permessage-deflate): ``pkg-config zlib`` (Debian package
  ``zlib1g-dev``).
* llhttp: ``pkg-config libllhttp`` when the system ships it; otherwise the
  distribution's sources (Debian ``node-llhttp``: ``/usr/share/llhttp/*.c`` and
  ``/usr/share/include/llhttp/llhttp.h``) compiled and linked into the extension.
  ``TORNADO_C_LLHTTP_SRC=/path`` points at another llhttp source tree (a folder
  holding ``llhttp.h`` and ``api.c``/``http.c``/``llhttp.c``, or llhttp's own
  ``include/`` + ``src/`` layout).  Sources are compiled with
  ``LLHTTP_STRICT_MODE=1`` (``TC_LLHTTP_STRICT`` is then defined for our C):
  llhttp is the second judge of requests (csrc/http/judge.h), the strictest
  this version allows; a shared ``libllhttp`` is linked as the system built it.

Build variants (environment variables read at build time):

* ``TORNADO_C_DEBUG=1``: ``-O0 -g`` and ``TC_DEBUG`` (live handle counters).
* ``TORNADO_C_ASAN=1``: like DEBUG plus AddressSanitizer/UBSan.
* ``TORNADO_C_TEST=1``: the test build, what ``scripts/test.sh`` installs
  (combines with the two above): ``TC_TEST_API`` defined and the test-only
  sources (``csrc/*/test_*.c``) compiled in, adding entry points that exist
  only for tornado_c's own tests (``_core.HTTPRequestParser``,
  ``HTTPResponseWriter``, ``_test_stream_consumer``, ...; ``_core.TEST_API``
  is 1).  Without it (a user's ``pip install .``) none of that code is built.

A build of another variant is never taken for up to date: the variant is
recorded next to the objects and a change rebuilds everything (setuptools
itself only compares file times).
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def fail(msg):
    raise SystemExit("tornado_c build error: " + msg)


def pkg_config(name, *flags):
    if shutil.which("pkg-config") is None:
        return None
    try:
        out = subprocess.run(
            ["pkg-config", *flags, name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except subprocess.CalledProcessError:
        return None
    return out.split()


def find_libuv():
    if shutil.which("pkg-config") is None:
        fail("pkg-config not found: install the Debian package 'pkg-config' "
             "(apt-get install pkg-config libuv1-dev)")
    cflags = pkg_config("libuv", "--cflags")
    libs = pkg_config("libuv", "--libs")
    if cflags is None or libs is None:
        fail("libuv not found by pkg-config: install the Debian package "
             "'libuv1-dev' (apt-get install libuv1-dev)")
    version = pkg_config("libuv", "--modversion")
    major, minor = (int(x) for x in version[0].split(".")[:2])
    if (major, minor) < (1, 40):
        fail("libuv %s is too old; tornado_c needs libuv >= 1.40 "
             "(Debian package 'libuv1-dev')" % version[0])
    return cflags, libs


def find_zlib():
    cflags = pkg_config("zlib", "--cflags")
    libs = pkg_config("zlib", "--libs")
    if cflags is None or libs is None:
        fail("zlib not found by pkg-config: install the Debian package "
             "'zlib1g-dev' (apt-get install zlib1g-dev)")
    return cflags, libs


def find_llhttp():
    """Return (include_dirs, link_flags, sources_to_compile_or_None)."""
    override = os.environ.get("TORNADO_C_LLHTTP_SRC")
    if override:
        return llhttp_from_sources(override, "TORNADO_C_LLHTTP_SRC=" + override)
    cflags = pkg_config("libllhttp", "--cflags")
    libs = pkg_config("libllhttp", "--libs")
    if cflags is not None and libs is not None:
        incs = [f[2:] for f in cflags if f.startswith("-I")]
        return incs, libs, None
    if os.path.isdir("/usr/share/llhttp"):
        return llhttp_from_sources("/usr/share/llhttp", "Debian node-llhttp")
    fail("llhttp not found: install the Debian package 'node-llhttp' "
         "(apt-get install node-llhttp), or a distribution package that ships "
         "pkg-config 'libllhttp', or set TORNADO_C_LLHTTP_SRC to an llhttp "
         "source tree")


def llhttp_from_sources(root, what):
    root = os.path.abspath(root)
    src_dirs = [root, os.path.join(root, "src")]
    inc_dirs = [
        root,
        os.path.join(root, "include"),
        os.path.join(os.path.dirname(os.path.dirname(root)), "share", "include", "llhttp"),
        "/usr/share/include/llhttp",
    ]
    sources = []
    for d in src_dirs:
        found = [os.path.join(d, n) for n in ("api.c", "http.c", "llhttp.c")]
        if all(os.path.isfile(f) for f in found):
            sources = found
            break
    if not sources:
        fail("llhttp sources (api.c, http.c, llhttp.c) not found in %s (%s): "
             "install the Debian package 'node-llhttp' or fix "
             "TORNADO_C_LLHTTP_SRC" % (root, what))
    inc = next((d for d in inc_dirs if os.path.isfile(os.path.join(d, "llhttp.h"))), None)
    if inc is None:
        fail("llhttp.h not found for %s (%s): install the Debian package "
             "'node-llhttp'" % (root, what))
    return [inc], [], {"sources": sources, "include_dirs": [inc]}


def is_test_source(path):
    """Test-only C sources, compiled into the test build only."""
    return os.path.basename(path).startswith("test_")


class BuildExt(build_ext):
    """Compile the system's llhttp sources with their own flags (its generated
    code is not ours to hold to -Werror) and link the objects in; rebuild
    when the variant (TORNADO_C_TEST / _DEBUG / _ASAN, flags, sources)
    differs from the one that produced the extension file."""

    llhttp = None
    variant = ""

    def build_extension(self, ext):
        target = os.path.abspath(self.get_ext_fullpath(ext.name))
        stamp = os.path.join(self.build_temp, "variant-%s"
                             % hashlib.sha256(target.encode()).hexdigest()[:16])
        try:
            with open(stamp) as f:
                self.force = self.force or f.read() != self.variant
        except OSError:
            self.force = True
        if self.llhttp is not None:
            objects = self.compiler.compile(
                self.llhttp["sources"],
                output_dir=os.path.join(self.build_temp, "llhttp"),
                include_dirs=self.llhttp["include_dirs"],
                # the strictest llhttp this version allows (csrc/http/judge.h)
                macros=[("LLHTTP_STRICT_MODE", "1")],
                extra_postargs=["-O2", "-w"],
            )
            ext.extra_objects = list(ext.extra_objects or []) + objects
        super().build_extension(ext)
        with open(stamp, "w") as f:
            f.write(self.variant)


def main():
    uv_cflags, uv_libs = find_libuv()
    z_cflags, z_libs = find_zlib()
    ll_incs, ll_libs, ll_static = find_llhttp()

    debug = os.environ.get("TORNADO_C_DEBUG") == "1"
    asan = os.environ.get("TORNADO_C_ASAN") == "1"
    test = os.environ.get("TORNADO_C_TEST") == "1"
    cflags = ["-std=gnu11", "-Wall", "-Wextra", "-Werror",
              "-Wno-missing-field-initializers", "-Wno-cast-function-type"]
    ldflags = []
    macros = []
    if debug or asan:
        cflags += ["-O0", "-g", "-UNDEBUG"]
        macros.append(("TC_DEBUG", "1"))
    else:
        cflags += ["-O2"]
    if asan:
        cflags += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
        ldflags += ["-fsanitize=address,undefined"]

    if test:
        macros.append(("TC_TEST_API", "1"))
    if ll_static is not None:
        # llhttp compiled here, with LLHTTP_STRICT_MODE=1 (BuildExt); a
        # shared libllhttp is linked as the system built it
        macros.append(("TC_LLHTTP_STRICT", "1"))

    sources = sorted(f for f in glob.glob("csrc/*.c") + glob.glob("csrc/*/*.c")
                     if test or not is_test_source(f))
    include_dirs = ["csrc"] + ll_incs + [f[2:] for f in uv_cflags + z_cflags if f.startswith("-I")]
    libs = [f[2:] for f in uv_libs + z_libs if f.startswith("-l")]
    lib_dirs = [f[2:] for f in uv_libs + z_libs if f.startswith("-L")]
    libs += [f[2:] for f in ll_libs if f.startswith("-l")]
    lib_dirs += [f[2:] for f in ll_libs if f.startswith("-L")]

    ext = Extension(
        "tornado_c._core",
        sources=sources,
        include_dirs=include_dirs,
        libraries=libs,
        library_dirs=lib_dirs,
        define_macros=macros,
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*/*.h")),
    )
    BuildExt.llhttp = ll_static
    BuildExt.variant = repr((sorted(macros), sources, cflags, ldflags, ll_static))
    setup(ext_modules=[ext], cmdclass={"build_ext": BuildExt})


main()
