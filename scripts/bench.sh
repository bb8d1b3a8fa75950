#!/usr/bin/env bash
# The "main job": the same unmodified Tornado apps served by upstream Tornado
# and by tornado_c, side by side (req/s, latency, server CPU per request),
# plus the micro-benchmarks.  Works on a fresh Debian machine (as root, or with
# sudo): installs wrk and the build dependencies, builds tornado_c into .venv.
#
#   bash scripts/bench.sh [--quick] [--only hello,json,wsmask] [--out DIR] [...]
#
# Arguments go to benchmarks/run.py (see --help there).  Results land in
# benchmarks/results/ (latest.md, latest.json, latest.png, <timestamp>.json).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Relative --out paths stay relative to where this script was started.
export TC_BENCH_CWD="$PWD"
# shellcheck source=env.sh
. "$here/env.sh" bench

# Outside the source tree, so `import tornado_c` (in the runner's probes and
# in the servers) finds the installed build in .venv, not ./tornado_c.
cd /
exec "$TC_PY" "$TC_ROOT/benchmarks/run.py" "$@"
