#!/bin/sh
# Build and run the libFuzzer targets: the http parser (request, chunked,
# response: the client-mode grammar), Tornado's grammar against llhttp
# (differential), the WebSocket frame parser (ws_frame) and
# permessage-deflate's decompressing path (ws_deflate, linked with the
# system's zlib).
#
#   fuzz/run.sh [SECONDS] [TARGET...]   (default 30 s per target, all targets)
#
# The parser cores (csrc/http/parser.c, response.c, judge.c;
# csrc/websocket/frame.c, deflate.c) have no Python API, so the targets are plain C:
# clang with -fsanitize=fuzzer,address,undefined.  Needs clang and libFuzzer
# (Debian: apt-get install -y clang libclang-rt-14-dev) and, for
# differential, llhttp's sources (Debian node-llhttp: /usr/share/llhttp, or
# TORNADO_C_LLHTTP_SRC as for setup.py), compiled here with
# LLHTTP_STRICT_MODE=1 as setup.py does.  Seeds are fuzz/seeds/<target>
# (kept in the repository; regenerate with fuzz/make_seeds.py), new inputs
# grow in fuzz/build/corpus/<target> (merge the interesting ones into
# fuzz/seeds with -merge=1, see fuzz/README.md).  Exit status is non-zero on
# any crash or failed check (the crashing input is left in fuzz/build/).
set -eu
SECS=${1:-30}
[ $# -gt 0 ] && shift
TARGETS=${*:-request chunked response differential ws_frame ws_deflate}
HERE=$(cd "$(dirname "$0")" && pwd)
CSRC="$HERE/../csrc"
SRC="$CSRC/http"
OUT="$HERE/build"
CC=${CC:-clang}
mkdir -p "$OUT"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz/run.sh: $CC not found (apt-get install -y clang libclang-rt-14-dev)" >&2
    exit 2
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-g -O1 -fsanitize=fuzzer $SAN -Wall -Wextra -Werror -I$SRC -I$CSRC"
LLSRC=${TORNADO_C_LLHTTP_SRC:-/usr/share/llhttp}
LLINC=""
for d in "$LLSRC" "$LLSRC/../include" "$LLSRC/../include/llhttp" /usr/share/include/llhttp; do
    if [ -f "$d/llhttp.h" ]; then LLINC="$d"; break; fi
done
for t in $TARGETS; do
    case $t in
    request|chunked|response)
        "$CC" $CFLAGS "$HERE/fuzz_$t.c" "$SRC/parser.c" "$SRC/response.c" -o "$OUT/fuzz_$t" ;;
    ws_frame)
        "$CC" $CFLAGS "$HERE/fuzz_ws_frame.c" "$CSRC/websocket/frame.c" -o "$OUT/fuzz_ws_frame" ;;
    ws_deflate)
        "$CC" $CFLAGS "$HERE/fuzz_ws_deflate.c" "$CSRC/websocket/deflate.c" -lz \
            -o "$OUT/fuzz_ws_deflate" ;;
    differential)
        if [ -z "$LLINC" ] || [ ! -f "$LLSRC/llhttp.c" ]; then
            echo "fuzz/run.sh: llhttp sources not found in $LLSRC (apt-get install node-llhttp)" >&2
            exit 2
        fi
        mkdir -p "$OUT/llhttp"
        for f in api http llhttp; do
            "$CC" -c -g -O1 -fsanitize=fuzzer-no-link $SAN -w -DLLHTTP_STRICT_MODE=1 \
                -I"$LLINC" "$LLSRC/$f.c" -o "$OUT/llhttp/$f.o"
        done
        "$CC" $CFLAGS -DTC_LLHTTP_STRICT=1 -I"$LLINC" "$HERE/fuzz_differential.c" \
            "$SRC/judge.c" "$SRC/parser.c" "$SRC/response.c" \
            "$OUT/llhttp/api.o" "$OUT/llhttp/http.o" "$OUT/llhttp/llhttp.o" \
            -o "$OUT/fuzz_differential" ;;
    *)
        echo "fuzz/run.sh: unknown target $t" >&2
        exit 2 ;;
    esac
done
status=0
for t in $TARGETS; do
    mkdir -p "$OUT/corpus/$t"
    seeds="$HERE/seeds/$t"
    [ -d "$seeds" ] || seeds=""
    echo "== fuzz_$t for ${SECS}s"
    (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "./fuzz_$t" -max_total_time="$SECS" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 "corpus/$t" $seeds) || status=1
done
exit $status
