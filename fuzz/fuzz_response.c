/* libFuzzer target: the response grammar, the parser in client mode
 * (csrc/http/parser.c, parser.h "Client mode").
 *
 * Input: 2 option bytes + the raw response bytes.  Byte 0: header limit
 * (16 + 4 * b, 255: the default); byte 1: bit 0 a 64-byte body limit, bit 1
 * the request was HEAD, all of it the split seed.  Checks, besides
 * ASan/UBSan: the events (heads with status code and reason, framing,
 * de-chunked body, completions, end of stream, the error and its message)
 * are identical whether the input is fed whole, cut at pseudo-random points,
 * or one byte at a time with a pause/resume before every call; execute()
 * never over-consumes.
 */
#include <stdint.h>

#include "common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    fuzz_split_check(data, size, FUZZ_CLIENT | ((data[1] & 2) ? FUZZ_REQUEST_HEAD : 0));
    return 0;
}
