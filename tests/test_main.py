"""python -m tornado_c runs programs exactly as plain python would."""

import glob
import os
import shutil
import signal
import sys
import textwrap

import pytest

from conftest import run_python


@pytest.fixture
def script(tmp_path):
    def make(body, name="app.py"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return str(path)

    return make


def both(*args, cwd=None, env=None):
    """Run `args` with plain python and under python -m tornado_c."""
    plain = run_python(*args, cwd=cwd, env=env)
    ours = run_python("-m", "tornado_c", *args, cwd=cwd, env=env)
    return plain, ours


def test_argv_main_and_exit_code(script, tmp_path):
    path = script(
        """
        import sys, os
        print(repr(sys.argv))
        print(__name__)
        print(os.path.realpath(sys.path[0]))
        import tornado_c
        sys.stderr.write(",".join(sorted(tornado_c.active())) + "\\n")
        sys.exit(7)
        """
    )
    plain, ours = both(path, "a", "--b=c", cwd=str(tmp_path))
    assert ours.returncode == plain.returncode == 7
    assert ours.stdout == plain.stdout
    assert str(tmp_path) in ours.stdout
    assert "websocket" in ours.stderr
    assert plain.stderr.strip() == ""


def test_traceback_identical(script, tmp_path):
    path = script(
        """
        def inner():
            raise RuntimeError("boom")
        inner()
        """
    )
    plain, ours = both(path, cwd=str(tmp_path))
    assert plain.returncode == ours.returncode == 1
    assert ours.stderr == plain.stderr
    assert "tornado_c" not in ours.stderr and "runpy" not in ours.stderr


def test_module_mode(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text(
        "import sys\nprint(__name__, sys.argv[1:])\n"
        "print(sys.argv[0].endswith('mod.py'))\nraise SystemExit(3)\n"
    )
    plain, ours = both("-m", "pkg.mod", "x", "y", cwd=str(tmp_path))
    assert plain.returncode == ours.returncode == 3
    assert ours.stdout == plain.stdout == "__main__ ['x', 'y']\nTrue\n"


def test_dash_c(tmp_path):
    plain, ours = both("-c", "import sys; print(sys.argv, __name__)", "q", cwd=str(tmp_path))
    assert ours.stdout == plain.stdout
    assert ours.returncode == plain.returncode == 0


def test_missing_script(tmp_path):
    plain, ours = both(str(tmp_path / "nope.py"), cwd=str(tmp_path))
    assert plain.returncode == ours.returncode == 2
    assert "No such file or directory" in ours.stderr


def test_keyboard_interrupt_exit_status(script, tmp_path):
    path = script("raise KeyboardInterrupt\n")
    plain, ours = both(path, cwd=str(tmp_path))
    assert plain.returncode == ours.returncode == -signal.SIGINT
    assert ours.stderr == plain.stderr


def test_info_and_usage():
    out = run_python("-m", "tornado_c", "--info")
    assert out.returncode == 0
    assert "libuv" in out.stdout and "websocket" in out.stdout
    usage = run_python("-m", "tornado_c")
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_disable_env_reaches_program(script, tmp_path):
    path = script("import tornado_c; print(sorted(tornado_c.active()))\n")
    out = run_python("-m", "tornado_c", path, env={"TORNADO_C_DISABLE": "websocket"})
    assert "websocket" not in out.stdout and out.returncode == 0
    out = run_python("-m", "tornado_c", path, env={"TORNADO_C_DISABLE": "all"})
    assert out.stdout.strip() == "[]"
    bad = run_python("-m", "tornado_c", path, env={"TORNADO_C_DISABLE": "nonsense"})
    assert bad.returncode != 0 and "unknown component" in bad.stderr


@pytest.fixture
def unbuilt_tree(tmp_path):
    """A copy of the tornado_c package without its C extension, as in a
    repository that has not been built: the folder holding it."""
    import tornado_c

    pkg = tmp_path / "tornado_c"
    pkg.mkdir()
    for path in glob.glob(os.path.join(os.path.dirname(tornado_c.__file__), "*.py")):
        shutil.copy(path, pkg)
    return tmp_path


def check_unbuilt_message(proc, tree):
    assert proc.returncode == 1
    err = proc.stderr
    assert "ImportError: tornado_c's C extension, tornado_c._core, is not built in %s" % (
        tree / "tornado_c") in err
    assert "unbuilt source tree" in err
    # the two ways out
    assert "`python setup.py build_ext --inplace` or `pip install -e .` in %s;" % tree in err
    assert "start Python from another directory" in err
    assert "most likely due to a circular import" not in err


def test_unbuilt_source_tree_says_what_to_do(unbuilt_tree):
    # cwd first on sys.path: the unbuilt copy shadows the tornado_c under test
    proc = run_python("-c", "import tornado_c", cwd=str(unbuilt_tree))
    check_unbuilt_message(proc, unbuilt_tree)
    assert "found only" not in proc.stderr
    proc = run_python("-m", "tornado_c", "--info", cwd=str(unbuilt_tree))
    check_unbuilt_message(proc, unbuilt_tree)


def test_unbuilt_for_this_python_names_the_other_build(unbuilt_tree):
    other = unbuilt_tree / "tornado_c" / "_core.cpython-29-x86_64-linux-gnu.so"
    other.write_bytes(b"")
    proc = run_python("-c", "import tornado_c", cwd=str(unbuilt_tree))
    check_unbuilt_message(proc, unbuilt_tree)
    assert "(found only _core.cpython-29-x86_64-linux-gnu.so, built for another Python)" in (
        proc.stderr)


def test_a_broken_build_keeps_its_own_error(unbuilt_tree):
    # a _core file for this Python that cannot be loaded: its loader's error
    # is the one to see, not advice to build
    import importlib.machinery

    bad = unbuilt_tree / "tornado_c" / ("_core" + importlib.machinery.EXTENSION_SUFFIXES[0])
    bad.write_bytes(b"not an ELF file")
    proc = run_python("-c", "import tornado_c", cwd=str(unbuilt_tree))
    assert proc.returncode == 1
    assert "ImportError" in proc.stderr and "not built" not in proc.stderr
