#!/usr/bin/env bash
# Shared set-up for the README's commands: system packages (Debian, apt-get when
# missing) and a local virtual environment with tornado_c installed.
# Source it:  . scripts/env.sh [extra]   (extra: "test" or "bench")
#
# Which Python: TC_PYTHON (default: python3).  Its virtual environment is
# TC_VENV, by default ./.venv for the default python3 and ./.venv-X.Y for any
# other interpreter (TC_PYTHON=python3.12 -> .venv-3.12), so every version
# has its own build of the extension.
#
# Sourcing it sets TC_ROOT, TC_VENV, TC_PY (the venv's python), TC_PYTHON, and
# the functions of scripts/lib.sh.
set -euo pipefail

TC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib.sh
. "$TC_ROOT/scripts/lib.sh"
TC_EXTRA="${1:-test}"
TC_PYTHON="${TC_PYTHON:-python3}"
tc_system_packages "$TC_EXTRA" "$TC_PYTHON"

problem="$(tc_python_problem "$TC_PYTHON")"
if [ -n "$problem" ]; then
    echo "error: $TC_PYTHON cannot build tornado_c: $problem" >&2
    exit 1
fi
if [ -z "${TC_VENV:-}" ]; then
    TC_VENV="$(tc_venv_for "$TC_PYTHON")"
fi
TC_PY="$TC_VENV/bin/python"
tc_make_venv "$TC_PYTHON" "$TC_VENV" "$TC_EXTRA"
# Run from outside the source tree so `import tornado_c` finds the installed build.
export TC_ROOT TC_VENV TC_PY TC_PYTHON
