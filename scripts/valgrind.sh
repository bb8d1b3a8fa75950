#!/usr/bin/env bash
# valgrind memcheck of a short tornado_c server session (issue 14).
#
#   bash scripts/valgrind.sh [ROUNDS]     (default 60 rounds: see below)
#
# - Builds the debug variant (TORNADO_C_DEBUG=1: -O0 -g, so valgrind's stacks
#   name our functions and lines) into build/valgrind-3.X/lib, next to a copy
#   of the package's Python files; the in-place and installed builds are left
#   alone.
# - Runs scripts/valgrind_session.py's server under
#   valgrind --leak-check=full with PYTHONMALLOC=malloc (every PyMem/PyObject
#   allocation is a malloc valgrind tracks; pymalloc's arenas would hide our
#   objects from it), the full switch on (C loop, HTTP server, web handler,
#   WebSocket).  The client runs in a normal interpreter: per round, six
#   keep-alive requests (GET, POST with a body, a chunked POST, a chunked
#   response, a 404, a 500), a 400 on a bad head, a client gone mid-body, and
#   every fifth round a WebSocket connect/echo (text and binary)/close; then
#   GET /quit stops the server, which exits normally so that valgrind's leak
#   check runs.
# - The interpreter does not free everything at exit, so valgrind reports
#   CPython's own "definitely lost" blocks too; the run fails when a
#   "definitely lost" record, or any memory error (invalid read/write, use of
#   uninitialised values, bad free), has our extension (_core.*.so) in its
#   stack (a frame in a csrc/ file or a tc_ function).  Every record is kept in the log ($TC_VALGRIND_LOG, default
#   build/valgrind-3.X/memcheck.log).
#
# TC_VALGRIND_PYTHON=/path/to/python: an interpreter with tornado installed
# (default: the test venv that scripts/test.sh makes).
set -euo pipefail
cd "$(dirname "$0")/.."
TC_ROOT="$(pwd)"
rounds="${1:-60}"

command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)"; exit 1; }
PY="${TC_VALGRIND_PYTHON:-}"
if [ -z "$PY" ]; then
    # shellcheck source=env.sh
    . scripts/env.sh test
    PY="$TC_PY"
fi
minor="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
build="$TC_ROOT/build/valgrind-$minor"
log="${TC_VALGRIND_LOG:-$build/memcheck.log}"

echo "== building the debug build into $build"
rm -rf "$build/lib"
mkdir -p "$build/lib"
cp -a "$TC_ROOT/tornado_c" "$build/lib/"
find "$build/lib" \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +
if ! TORNADO_C_DEBUG=1 "$PY" setup.py -q build_ext --build-temp "$build/temp" \
        --build-lib "$build/lib" >"$build/build.log" 2>&1; then
    cat "$build/build.log"
    echo "valgrind: building the debug build FAILED"
    exit 1
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export PYTHONPATH="$build/lib${PYTHONPATH:+:$PYTHONPATH}"
cd "$work"
where="$("$PY" -c 'import tornado_c._core as c; assert c.DEBUG_BUILD == 1; print(c.__file__)')"
case "$where" in
    "$build"/*) echo "== importing $where" ;;
    *) echo "valgrind: imported $where, not the debug build"; exit 1 ;;
esac

echo "== server under valgrind memcheck ($rounds client rounds)"
started=$SECONDS
PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite,possible --num-callers=40 --track-origins=no --fullpath-after= \
    --log-file="$log" "$PY" "$TC_ROOT/scripts/valgrind_session.py" server \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""
for _ in $(seq 1200); do
    port="$(sed -n 's/^READY //p' "$work/server.out")"
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    cat "$work/server.err"
    echo "valgrind: the server did not start"
    exit 1
fi
status=0
"$PY" "$TC_ROOT/scripts/valgrind_session.py" client "$port" "$rounds" || status=1
rc=0
wait "$server_pid" || rc=$?
server_pid=""
if [ "$rc" -ne 0 ] || ! grep -q STOPPED "$work/server.out"; then
    cat "$work/server.err"
    echo "valgrind: the server exited with status $rc"
    status=1
fi
echo "== memcheck ($(( SECONDS - started )) s), log: $log"
"$PY" - "$log" <<'EOF' || status=1
import re, sys

text = open(sys.argv[1]).read()
# one record per blank-line-separated block after the "==pid== " prefix
body = re.sub(r"^==\d+== ?", "", text, flags=re.M)
records = body.split("\n\n")
# a frame of ours: a source file under csrc/ (--fullpath-after= prints full
# paths), a tc_ function, or the .so itself (frames without line info)
ours = lambda r: re.search(r"/csrc/|\btc_\w+ \(|_core\.cpython[^ \n]*\.so", r) is not None
lost_ours = [r for r in records if "definitely lost" in r and "are definitely lost" in r and ours(r)]
errors_ours = [r for r in records
               if re.match(r"\s*(Invalid (read|write|free)|Conditional jump|Use of uninitialised"
                           r"|Mismatched free|Syscall param|Source and destination overlap)", r)
               and ours(r)]
possible_ours = [r for r in records if "are possibly lost" in r and ours(r)]
summary = re.search(r"LEAK SUMMARY:(.*?)\n\s*\n", body + "\n\n", re.S)
err_summary = re.search(r"ERROR SUMMARY: .*", body)
print("LEAK SUMMARY (whole process, CPython included):" + (summary.group(1).rstrip() if summary else " none"))
print(err_summary.group(0) if err_summary else "no ERROR SUMMARY")
print("records with our extension in the stack: definitely lost %d, possibly lost %d, "
      "memory errors %d" % (len(lost_ours), len(possible_ours), len(errors_ours)))
for r in (lost_ours + errors_ours)[:10]:
    print("----\n" + r.strip())
for r in possible_ours[:5]:
    print("---- (possibly lost, not a failure: listed for review)\n" + r.strip())
sys.exit(1 if lost_ours or errors_ours else 0)
EOF
echo "valgrind: $([ "$status" = 0 ] && echo ok || echo FAILED)"
exit $status
