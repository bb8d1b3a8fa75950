/* SHA-1 (FIPS 180-4), only for RequestHandler.compute_etag's default ETag:
 * not for anything that needs a cryptographic hash.  Pure C, no Python. */
#ifndef TC_WEB_SHA1_H
#define TC_WEB_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[5];
    uint64_t length;       /* bytes hashed so far */
    unsigned char block[64];
    size_t used;           /* bytes waiting in block */
} tc_sha1;

void tc_sha1_init(tc_sha1 *s);
void tc_sha1_update(tc_sha1 *s, const void *data, size_t n);
/* the 40 lowercase hex digits of the digest, and a NUL */
void tc_sha1_hex(tc_sha1 *s, char out[41]);

#endif /* TC_WEB_SHA1_H */
