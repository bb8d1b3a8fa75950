#!/usr/bin/env bash
# Shared set-up for the README's commands: system packages (Debian, apt-get when
# missing) and a local virtual environment (.venv) with tornado_c installed.
# Source it:  . scripts/env.sh [extra]   (extra: "test" or "bench")
set -euo pipefail

TC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TC_VENV="${TC_VENV:-$TC_ROOT/.venv}"
TC_PY="$TC_VENV/bin/python"
TC_EXTRA="${1:-test}"

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

debs=(gcc pkg-config libuv1-dev node-llhttp python3-dev)
[ "$TC_EXTRA" = "bench" ] && debs+=(wrk util-linux)
# libFuzzer for the parser's fuzz targets (a short run is part of the tests),
# nginx for the tested deployment recipe (tests/test_nginx_recipe.py)
[ "$TC_EXTRA" = "test" ] && debs+=(clang libclang-rt-14-dev nginx)
# python3-dev only matters for Debian's own python; a pyenv/venv python ships its headers.
if python3 -c 'import sysconfig,os,sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"],"Python.h")) else 1)'; then
    debs=("${debs[@]/python3-dev}")
fi
tc_need_debs ${debs[@]}

if [ ! -x "$TC_PY" ]; then
    echo "== creating virtual environment $TC_VENV"
    python3 -m venv "$TC_VENV"
fi
echo "== installing tornado_c[$TC_EXTRA] into $TC_VENV"
"$TC_PY" -m pip install -q --upgrade pip setuptools wheel >/dev/null
# The test command installs the test build (its test-only entry points, see
# setup.py), anything else the normal one; pytest reads it too (tests/conftest.py).
export TORNADO_C_TEST=$([ "$TC_EXTRA" = test ] && echo 1 || echo 0)
"$TC_PY" -m pip install -q "$TC_ROOT[$TC_EXTRA]"
# Run from outside the source tree so `import tornado_c` finds the installed build.
export TC_ROOT TC_VENV TC_PY
