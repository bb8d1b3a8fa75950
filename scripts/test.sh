#!/usr/bin/env bash
# The README's test command (and CI's).  Installs what it needs, then, on every
# CPython that pyproject's requires-python admits and this machine has (the
# default python3, pyenv's versions, python3.N on PATH), in that version's own
# virtual environment (.venv for the default python3, .venv-3.N for the others)
# with tornado_c built for it:
#
#   the default python3 (the full suite):
#     1. tornado_c's own tests (pytest, all of tests/), against the installed build;
#     2. a short libFuzzer run of the HTTP request parser and chunked decoder
#        (fuzz/run.sh, TC_FUZZ_SECONDS per target, default 15; plain C, so once);
#     3. the compatibility gate: upstream Tornado's suite under tornado_c
#        (compat/gate.py, with compat/known_failures.txt), both configurations;
#     4. the reduced sanitizer run (scripts/sanitize.sh --quick: the HTTP,
#        stream, web and WebSocket tests and upstream's modules for them on
#        the ASan+UBSan build; the script says what it leaves out and why);
#   every other version (to keep CI's time in check; in a background job
#   started when the default version reaches its sanitizer step, so the two
#   run side by side, and its output shown after that step):
#     1. the tests of the parts that depend on the Python version: the loop,
#        the streams and the HTTP server (OTHER_TESTS: tests/test_loop_*,
#        test_stream_*, and the HTTP server's and parser's own tests, less a
#        few slow ones listed in SAME_ON_EVERY_VERSION), which include
#        CPython's own asyncio tests of that version;
#     2. the compatibility gate in the full-switch configuration (which runs
#        upstream's suite on our loop as well; the loop-only configuration
#        runs on the default python3).
#
# It says which versions it ran and which it could not find or use, and ends
# with a summary per version and a total line.  Exit status is non-zero if
# anything failed on any version.  Arguments go to the full pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
TC_ROOT="$(pwd)"
# shellcheck source=lib.sh
. scripts/lib.sh

started=$SECONDS
tc_system_packages test python3

# Which Python versions (see tc_find_pythons in lib.sh).
use_minor=() use_python=() absent=()
default_minor="" default_python=""
while read -r minor what rest; do
    case "$what" in
        use)
            # the default python3; failing that, the oldest usable version
            if [ "$rest" = "python3" ] || [ -z "$default_minor" ]; then
                default_minor="$minor" default_python="$rest"
            fi
            use_minor+=("$minor") use_python+=("$rest") ;;
        unusable) absent+=("Python 3.$minor: could not use: $rest") ;;
        missing) absent+=("Python 3.$minor: not found on this machine") ;;
    esac
done < <(tc_find_pythons)
if [ -z "$default_minor" ]; then
    echo "error: no Python >= $(tc_min_python) that can build tornado_c was found:" >&2
    printf '  %s\n' "${absent[@]}" >&2
    exit 1
fi
OTHERS="loop/stream/HTTP-server tests + gate (full switch)"
# Left out on the other versions: the slowest of those tests (about 4.5 of
# their 8.5 minutes), whose subject does not depend on the Python version --
# C code under load (4 GiB write, idle connections, memory, parser garbage)
# or upstream suites that the gate runs too.  They run on the default python3.
SAME_ON_EVERY_VERSION="test_idle_keepalive_connections or test_write_over_4_gib_arrives_whole"
SAME_ON_EVERY_VERSION+=" or test_upstream_suites_with_iostream_patched"
SAME_ON_EVERY_VERSION+=" or test_garbage_same_as_upstream or test_idle_memory_after_large_body"
# The test files run on the other versions.  Left out, for the same reason:
# the HTTP tests whose subject is C or bytes compared with upstream whatever
# the Python (the client's response grammar, llhttp as judge, strict mode,
# the log records' locations, memory per connection, the robustness
# scenarios against both servers); the HTTP server and parser tests stay.
OTHER_TESTS=("test_loop_*.py" "test_stream_*.py" test_http_server.py test_http_parser.py
             test_http_multiprocess.py)
other_tests=()
for pattern in "${OTHER_TESTS[@]}"; do
    # shellcheck disable=SC2206  # the pattern is meant to expand here
    other_tests+=("$TC_ROOT"/tests/$pattern)
done
echo "== Python versions (requires-python >=$(tc_min_python)):"
for i in "${!use_minor[@]}"; do
    if [ "${use_minor[$i]}" = "$default_minor" ]; then
        echo "   3.${use_minor[$i]}: ${use_python[$i]} -- full suite (the default)"
    else
        echo "   3.${use_minor[$i]}: ${use_python[$i]} -- $OTHERS"
    fi
done
for line in "${absent[@]}"; do
    echo "   $line"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
summary=()
total_passed=0
total_failed=0
total_skipped=0

# run_step NAME RC LOG: record one step's counts for the current version.
# A failed step (pytest exits 5 when it collected nothing) with no failed test
# counted still counts as one failure.
run_step() {
    local name="$1" rc="$2" log="$3" p f s
    read -r p f s <<<"$(tc_counts "$log")"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
    fi
    v_passed=$(( v_passed + p ))
    v_failed=$(( v_failed + f ))
    v_skipped=$(( v_skipped + s ))
    v_steps="${v_steps:+$v_steps; }$name $p passed, $f failed, $s skipped"
    [ "$rc" -eq 0 ] || v_ok=0
}

run_version() {
    local minor="$1" base="$2" mode="$3" venv py version log rc
    shift 3  # the rest: arguments for the full pytest run
    venv="$(tc_venv_for "$base")"
    py="$venv/bin/python"
    v_passed=0 v_failed=0 v_skipped=0 v_ok=1 v_steps=""
    echo
    echo "======== Python 3.$minor ($base): $mode"
    if ! tc_make_venv "$base" "$venv" test; then
        echo "installing tornado_c for Python 3.$minor FAILED"
        summary+=("Python 3.$minor ($base): installing tornado_c FAILED")
        total_failed=$(( total_failed + 1 ))
        status=1
        return
    fi
    version="$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
    # never import tornado_c from the source tree
    cd "$work"

    echo "== Python $version: tornado_c's own tests"
    log="$work/pytest-3.$minor.log"
    rc=0
    if [ "$mode" = "full" ]; then
        "$py" -m pytest -p no:cacheprovider -q "$TC_ROOT/tests" "$@" 2>&1 | tee "$log" || rc=$?
    else
        "$py" -m pytest -p no:cacheprovider -q "${other_tests[@]}" \
            -k "not ($SAME_ON_EVERY_VERSION)" 2>&1 | tee "$log" || rc=$?
    fi
    run_step pytest "$rc" "$log"

    if [ "$mode" = "full" ]; then
        echo "== fuzzing the HTTP request and response parsers, Tornado vs llhttp, the WebSocket frame parser and permessage-deflate (${TC_FUZZ_SECONDS:-15}s per target)"
        local fuzz_log="$work/fuzz.log"
        if sh "$TC_ROOT/fuzz/run.sh" "${TC_FUZZ_SECONDS:-15}" >"$fuzz_log" 2>&1; then
            grep -E "^== |^Done [0-9]+ runs" "$fuzz_log" || true
            echo "fuzz: $(grep -c '^== fuzz_' "$fuzz_log") passed, 0 failed" >"$work/fuzz-counts.log"
            run_step fuzz 0 "$work/fuzz-counts.log"
        else
            # the failing targets' reports, without libFuzzer's progress lines
            awk '/^== fuzz_/ { if (bad) printf "%s", sec; sec = ""; bad = 0 }
                 /^#[0-9]+[ \t]+(NEW|REDUCE|pulse|INITED)|^[ \t]+NEW_FUNC/ { next }
                 { sec = sec $0 "\n" }
                 /ERROR: |runtime error|^SUMMARY|^fuzz\/run.sh/ { bad = 1 }
                 END { if (bad) printf "%s", sec }' "$fuzz_log" | head -n 120
            for f in "$TC_ROOT"/fuzz/build/crash-* "$TC_ROOT"/fuzz/build/leak-* "$TC_ROOT"/fuzz/build/timeout-*; do
                [ -f "$f" ] && { echo "-- $f"; od -A x -c "$f" | head -n 40; }
            done
            echo "fuzzing FAILED (each target's start and end):"
            grep -E "^== fuzz_|^Done [0-9]+ runs|ERROR: libFuzzer|^SUMMARY|Test unit written" "$fuzz_log" || true
            echo "fuzz: 0 passed, 1 failed" >"$work/fuzz-counts.log"
            run_step fuzz 1 "$work/fuzz-counts.log"
        fi
    fi

    echo "== Python $version: compatibility gate: upstream Tornado's test suite under tornado_c"
    log="$work/gate-3.$minor.log"
    rc=0
    if [ "$mode" = "full" ]; then
        "$py" "$TC_ROOT/compat/gate.py" 2>&1 | tee "$log" || rc=$?
    else
        # the full switch only: it runs upstream's suite on our loop too
        "$py" "$TC_ROOT/compat/gate.py" --config full 2>&1 | tee "$log" || rc=$?
    fi
    run_step gate "$rc" "$log"

    if [ "$mode" = "full" ]; then
        # the other versions' legs run beside the sanitizer step (one CPU each)
        start_others
        echo "== Python $version: under ASan+UBSan (scripts/sanitize.sh --quick)"
        log="$work/sanitize.log"
        rc=0
        TC_SANITIZE_PYTHON="$py" bash "$TC_ROOT/scripts/sanitize.sh" --quick 2>&1 \
            | tee "$log" || rc=$?
        run_step sanitize "$rc" "$log"
    fi
    cd "$TC_ROOT"

    local verdict="ok"
    if [ "$v_ok" -ne 1 ]; then
        verdict="FAILED"
        status=1
    fi
    summary+=("Python $version ($mode): ran $(( v_passed + v_failed + v_skipped )): $v_passed passed, $v_failed failed, $v_skipped skipped ($v_steps) -> $verdict")
    total_passed=$(( total_passed + v_passed ))
    total_failed=$(( total_failed + v_failed ))
    total_skipped=$(( total_skipped + v_skipped ))
}

# The other versions, oldest first, one after the other, in a background job
# that the default version's run starts when it reaches its sanitizer step:
# both are mostly one process each and this machine kind has two CPUs, so the
# two run side by side (about 9 minutes saved of CI's 33).  The job's output
# goes to a file, shown after the sanitizer step; its counts and summary lines
# come back through another file.  (The venvs are built in the job: pip builds
# in build/temp.*-cpython-3N, per version, and the sanitizer build in
# build/sanitize-3.N, so the two do not share build folders.)  The job is a
# subshell whose commands are not its last (exec'd) one: bash gives them the
# default SIGINT disposition, not the SIG_IGN of a bare `cmd &`, which the
# KeyboardInterrupt tests of the loop and CPython's asyncio suites need.
others_pid=""
start_others() {
    (
        summary=() total_passed=0 total_failed=0 total_skipped=0 status=0
        for i in "${!use_minor[@]}"; do
            if [ "${use_minor[$i]}" != "$default_minor" ]; then
                run_version "${use_minor[$i]}" "${use_python[$i]}" "$OTHERS"
            fi
        done
        {
            printf 'o_total_passed=%d o_total_failed=%d o_total_skipped=%d o_status=%d\n' \
                "$total_passed" "$total_failed" "$total_skipped" "$status"
            printf '%s\n' "${summary[@]}"
        } >"$work/others.result"
    ) >"$work/others.log" 2>&1 </dev/null &
    others_pid=$!
}

# The default python3 first (the full suite), the others beside its last step.
run_version "$default_minor" "$default_python" full "$@"
if [ -z "$others_pid" ]; then
    start_others   # the full run ended before its sanitizer step
fi
wait "$others_pid" || true
cat "$work/others.log"
if [ -f "$work/others.result" ]; then
    {
        read -r counts
        eval "$counts"  # o_total_passed=N ... (numbers only, written above)
        while IFS= read -r line; do
            [ -n "$line" ] && summary+=("$line")
        done
    } <"$work/others.result"
    total_passed=$(( total_passed + o_total_passed ))
    total_failed=$(( total_failed + o_total_failed ))
    total_skipped=$(( total_skipped + o_total_skipped ))
    [ "$o_status" -eq 0 ] || status=1
elif [ "${#use_minor[@]}" -gt 1 ]; then
    echo "the other Python versions' run ended without a result"
    summary+=("other Python versions: the run ended without a result FAILED")
    total_failed=$(( total_failed + 1 ))
    status=1
fi

elapsed=$(( SECONDS - started ))
echo
echo "======== summary ($(( elapsed / 60 ))m$(( elapsed % 60 ))s)"
for line in "${summary[@]}" "${absent[@]}"; do
    echo "$line"
done
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
