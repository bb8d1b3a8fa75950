#!/bin/sh
# Build and run the libFuzzer targets: the http parser (request, chunked),
# the WebSocket frame parser (ws_frame) and permessage-deflate's
# decompressing path (ws_deflate, linked with the system's zlib).
#
#   fuzz/run.sh [SECONDS]        (default 30 s per target)
#
# The parser cores (csrc/http/parser.c, response.c; csrc/websocket/frame.c)
# have no Python API, so the targets are plain C: clang with -fsanitize=fuzzer,address,undefined.
# Needs clang and libFuzzer (Debian: apt-get install -y clang
# libclang-rt-14-dev).  Corpora grow in fuzz/build/corpus/<target>; seeds
# come from fuzz/seeds/<target> (ws_frame, ws_deflate: committed in the repo).  Exit status is non-zero on any crash or
# failed check (the crashing input is left in fuzz/build/).  Seeds are made
# from the differential corpus by fuzz/make_seeds.py when python3 is there.
set -eu
SECS=${1:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC="$HERE/../csrc/http"
OUT="$HERE/build"
CC=${CC:-clang}
mkdir -p "$OUT"
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz/run.sh: $CC not found (apt-get install -y clang libclang-rt-14-dev)" >&2
    exit 2
fi
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wall -Wextra -Werror -I$SRC"
for t in request chunked; do
    "$CC" $CFLAGS "$HERE/fuzz_$t.c" "$SRC/parser.c" "$SRC/response.c" -o "$OUT/fuzz_$t"
done
"$CC" $CFLAGS -I"$HERE/../csrc" "$HERE/fuzz_ws_frame.c" "$HERE/../csrc/websocket/frame.c" \
    -o "$OUT/fuzz_ws_frame"
"$CC" $CFLAGS -I"$HERE/../csrc" "$HERE/fuzz_ws_deflate.c" "$HERE/../csrc/websocket/deflate.c" \
    -lz -o "$OUT/fuzz_ws_deflate"
if command -v python3 >/dev/null 2>&1; then
    python3 "$HERE/make_seeds.py" "$OUT/seeds"
fi
status=0
for t in request chunked ws_frame ws_deflate; do
    mkdir -p "$OUT/corpus/$t"
    seeds="$OUT/seeds/$t"
    [ -d "$seeds" ] || seeds="$HERE/seeds/$t"
    [ -d "$seeds" ] || seeds=""
    echo "== fuzz_$t for ${SECS}s"
    (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "./fuzz_$t" -max_total_time="$SECS" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 "corpus/$t" $seeds) || status=1
done
exit $status
