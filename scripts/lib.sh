#!/usr/bin/env bash
# Shell functions shared by scripts/env.sh and scripts/test.sh: Debian
# packages, which Python versions tornado_c supports, finding them on this
# machine, and one virtual environment per version.  Source it (after setting
# TC_ROOT); it runs nothing by itself.

# The newest CPython release series we know of: test.sh looks for every
# version from requires-python's minimum up to this one and says which it
# could not find (newer ones are tested too when they are on PATH).
TC_NEWEST_KNOWN_PYTHON=15
# Looked for on PATH (python3.N) up to this minor version.
TC_PYTHON_SCAN_MAX=19

tc_need_debs() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# tc_system_packages EXTRA PY: the Debian packages the build (and, for EXTRA
# "test" or "bench", the tests or the benchmarks) need; python3-dev only when
# the interpreter PY has no C headers (pyenv and venv pythons ship theirs).
tc_system_packages() {
    local extra="$1" py="$2"
    local debs=(gcc pkg-config libuv1-dev zlib1g-dev node-llhttp)
    [ "$extra" = "bench" ] && debs+=(wrk util-linux)
    # libFuzzer for the parser's fuzz targets (a short run is part of the tests),
    # nginx for the tested deployment recipe (tests/tools/test_nginx_recipe.py)
    [ "$extra" = "test" ] && debs+=(clang libclang-rt-14-dev nginx)
    if ! "$py" -c 'import sysconfig,os,sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"],"Python.h")) else 1)' 2>/dev/null; then
        debs+=(python3-dev)
    fi
    tc_need_debs "${debs[@]}"
}

# The lowest Python version pyproject.toml admits ("3.11").
tc_min_python() {
    sed -n 's/^requires-python *= *">= *\([0-9][0-9.]*\)".*/\1/p' "$TC_ROOT/pyproject.toml"
}

# Prints why the interpreter $1 cannot build and test tornado_c, or nothing.
tc_python_problem() {
    "$1" - "$(tc_min_python)" <<'EOF' 2>&1 || true
import os, sys, sysconfig
low = tuple(int(x) for x in sys.argv[1].split("."))
if sys.implementation.name != "cpython":
    print("not CPython (%s)" % sys.implementation.name)
elif sys.version_info[:len(low)] < low:
    print("Python %d.%d is below requires-python >=%s" % (sys.version_info[:2] + (sys.argv[1],)))
else:
    try:
        import ensurepip, venv  # noqa: F401  (Debian ships them in python3.X-venv)
    except ImportError as exc:
        print("no venv/ensurepip module (%s)" % exc)
    else:
        inc = sysconfig.get_paths()["include"]
        if not os.path.exists(os.path.join(inc, "Python.h")):
            print("no C headers (%s/Python.h; Debian: python%d.%d-dev)"
                  % ((inc,) + sys.version_info[:2]))
EOF
}

# tc_make_venv PY VENV EXTRA: (re)create VENV from interpreter PY when missing
# or made by another Python version, then install tornado_c[EXTRA] into it.
tc_make_venv() {
    local base="$1" venv="$2" extra="$3"
    local want have
    want="$("$base" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
    if [ -x "$venv/bin/python" ]; then
        have="$("$venv/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' \
                2>/dev/null || echo broken)"
        if [ "$have" != "$want" ]; then
            echo "== $venv holds Python $have, not $want: recreating it"
            rm -rf "$venv"
        fi
    fi
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating virtual environment $venv (Python $want)"
        "$base" -m venv "$venv"
    fi
    echo "== installing tornado_c[$extra] into $venv"
    # The tests get the test build (its test-only entry points, see setup.py),
    # anything else the normal one; exported, so pytest sees it too and
    # tests/conftest.py refuses to run the tests on a build without them.
    export TORNADO_C_TEST=$([ "$extra" = test ] && echo 1 || echo 0)
    # pip's output (build warnings included) only when it fails
    local log rc=0
    log="$(mktemp)"
    { "$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel \
        && "$venv/bin/python" -m pip install -q "$TC_ROOT[$extra]"; } >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log"
        echo "pip install into $venv FAILED (exit $rc)"
    fi
    rm -f "$log"
    return "$rc"
}

# The minor version of interpreter $1 ("12" for 3.12), nothing if it won't run.
tc_python_minor() {
    "$1" -c 'import sys; print(sys.version_info[1])' 2>/dev/null </dev/null || true
}

# The virtual environment for interpreter $1: .venv for the default python3,
# .venv-X.Y for any other.
tc_venv_for() {
    if [ "$1" = "python3" ]; then
        echo "$TC_ROOT/.venv"
    else
        echo "$TC_ROOT/.venv-3.$(tc_python_minor "$1")"
    fi
}

# Candidate interpreters of Python 3.$1, best first: pyenv's installs
# (newest patch release first), then python3.$1 on PATH.
tc_python_candidates() {
    local minor="$1" root="${PYENV_ROOT:-$HOME/.pyenv}" dir
    if [ -d "$root/versions" ]; then
        # plain releases only (3.13.0, not 3.13.0t or 3.13-dev)
        for dir in $(ls -1 "$root/versions" 2>/dev/null | grep -E "^3\.$minor\.[0-9]+$" | sort -rV); do
            [ -x "$root/versions/$dir/bin/python3" ] && echo "$root/versions/$dir/bin/python3"
        done
    fi
    local onpath
    onpath="$(command -v "python3.$minor" 2>/dev/null || true)"
    [ -n "$onpath" ] && echo "$onpath"
    return 0
}

# tc_find_pythons: one line per supported minor version,
#   "<minor> use <interpreter>"         (the first candidate that can build tornado_c)
#   "<minor> unusable <reason>"         (found, but none of its candidates can)
#   "<minor> missing"                   (not found; only up to TC_NEWEST_KNOWN_PYTHON)
# The default python3 stands for its own minor version.
tc_find_pythons() {
    local low minor default_minor cand problem reason found
    low="$(tc_min_python)"
    low="${low#3.}"
    low="${low%%.*}"
    default_minor="$(tc_python_minor python3)"
    for minor in $(seq "$low" "$TC_PYTHON_SCAN_MAX"); do
        if [ "$minor" = "$default_minor" ] && [ -z "$(tc_python_problem python3)" ]; then
            echo "$minor use python3"
            continue
        fi
        found=0
        reason=""
        for cand in $(tc_python_candidates "$minor"); do
            # a pyenv shim for a version that is not selected fails to run
            [ "$(tc_python_minor "$cand")" = "$minor" ] || continue
            found=1
            problem="$(tc_python_problem "$cand")"
            if [ -z "$problem" ]; then
                echo "$minor use $cand"
                continue 2
            fi
            reason="${reason:+$reason; }$cand: $problem"
        done
        if [ "$found" = 1 ]; then
            echo "$minor unusable $reason"
        elif [ "$minor" -le "$TC_NEWEST_KNOWN_PYTHON" ]; then
            echo "$minor missing"
        fi
    done
}

# tc_counts LOG: "passed failed skipped" from the last summary line of LOG: pytest's
# ("1 failed, 106 passed, 29 skipped in 16.31s") or "gate: N passed, N failed,
# N skipped".  Errors count as failures.
tc_counts() {
    local line p f e s
    line="$(grep -E '^([a-z]+: )?[0-9]+ (passed|failed|skipped|errors?)|^=+ .*[0-9]+ (passed|failed|errors?).* =+$' "$1" \
            | tail -n 1 || true)"
    p="$(grep -oE '(^|[ ,:=])[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' | head -n 1 || true)"
    f="$(grep -oE '(^|[ ,:=])[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' | head -n 1 || true)"
    e="$(grep -oE '(^|[ ,:=])[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+' | head -n 1 || true)"
    s="$(grep -oE '(^|[ ,:=])[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' | head -n 1 || true)"
    echo "${p:-0} $(( ${f:-0} + ${e:-0} )) ${s:-0}"
}
