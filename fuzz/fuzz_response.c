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
    size_t max_header = 16 + (size_t)data[0] * 4; /* 16..1036 */
    if (data[0] == 255) {
        max_header = TC_HTTP_DEFAULT_MAX_HEADER_SIZE;
    }
    unsigned seed = data[1];
    unsigned long long max_body = (data[1] & 1) ? 64 : TC_HTTP_DEFAULT_MAX_BODY_SIZE;
    unsigned mode = FUZZ_CLIENT | ((data[1] & 2) ? FUZZ_REQUEST_HEAD : 0);
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    evlog whole = run_split(in, len, NULL, 0, max_header, max_body, 0, mode);

    size_t cuts[8];
    size_t n = 0;
    unsigned x = seed * 2654435761u + 1;
    for (; n < 8 && len; n++) {
        x = x * 1103515245u + 12345u;
        cuts[n] = (n ? cuts[n - 1] : 0) + (x >> 8) % (len / 4 + 2);
    }
    evlog split = run_split(in, len, cuts, n, max_header, max_body, 0, mode);
    if (split.len != whole.len || memcmp(split.buf, whole.buf, whole.len) != 0) {
        abort();
    }
    free(split.buf);

    if (len <= 512) {
        size_t *bytes = malloc((len + 1) * sizeof(size_t));
        for (size_t i = 0; i < len; i++) {
            bytes[i] = i + 1;
        }
        evlog one = run_split(in, len, bytes, len, max_header, max_body, 1, mode);
        if (one.len != whole.len || memcmp(one.buf, whole.buf, whole.len) != 0) {
            abort();
        }
        free(one.buf);
        free(bytes);
    }
    free(whole.buf);
    return 0;
}
