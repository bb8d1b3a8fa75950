#!/usr/bin/env bash
# The README's test command: installs what it needs, then runs
#   1. tornado_c's own tests (pytest), against the installed build;
#   2. a short libFuzzer run of the HTTP request parser and chunked decoder
#      (fuzz/run.sh, TC_FUZZ_SECONDS per target, default 20);
#   3. the compatibility gate: upstream Tornado's suite under tornado_c
#      (compat/gate.py, with compat/known_failures.txt).
# Exit status is non-zero if either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh test

status=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"  # never import tornado_c from the source tree

echo "== tornado_c's own tests"
"$TC_PY" -m pytest -p no:cacheprovider -q "$TC_ROOT/tests" "$@" || status=1

echo "== fuzzing the HTTP parser (${TC_FUZZ_SECONDS:-20}s per target)"
fuzz_log="$work/fuzz.log"
if sh "$TC_ROOT/fuzz/run.sh" "${TC_FUZZ_SECONDS:-20}" >"$fuzz_log" 2>&1; then
    grep -E "^== |^Done [0-9]+ runs" "$fuzz_log" || true
else
    tail -n 60 "$fuzz_log"
    echo "fuzzing FAILED (full log above)"
    status=1
fi

echo "== compatibility gate: upstream Tornado's test suite under tornado_c"
"$TC_PY" "$TC_ROOT/compat/gate.py" || status=1

exit $status
