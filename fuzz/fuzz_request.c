/* libFuzzer target: the request parser (csrc/http/parser.c).
 *
 * Input: 2 option bytes (header limit, split seed) + the raw request bytes.
 * Checks, besides ASan/UBSan: the events (heads, framing, de-chunked body,
 * completions, the error and its message) are identical whether the input is
 * fed whole, cut at pseudo-random points, or one byte at a time with a
 * pause/resume before every call; execute() never over-consumes.
 */
#include <stdint.h>

#include "common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    fuzz_split_check(data, size, 0);
    return 0;
}
