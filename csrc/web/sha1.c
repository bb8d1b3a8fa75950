/* SHA-1 as FIPS 180-4 section 6.1 describes it (see sha1.h). */
#include "web/sha1.h"

#include <string.h>

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

/* One 64-byte block.  The message schedule is kept as a ring of 16 words
 * (w[t] for t >= 16 overwrites w[t - 16], which no later round reads), and
 * the four kinds of round are four loops with no branch inside, five
 * rounds per pass with the variables renamed instead of moved: the same
 * arithmetic as the textbook 80-round loop, in about half the
 * instructions. */
#define SHA1_W(t) (w[(t) & 15] = ROTL(w[((t) + 13) & 15] ^ w[((t) + 8) & 15] ^      \
                                      w[((t) + 2) & 15] ^ w[(t) & 15], 1))
#define SHA1_ROUND(a, b, c, d, e, f, k, wt)                                           \
    do {                                                                              \
        e += ROTL(a, 5) + (f) + (k) + (wt);                                           \
        b = ROTL(b, 30);                                                              \
    } while (0)
/* rounds from..to-1 (multiples of 5, from >= 20: words from the schedule) */
#define SHA1_FIVE_BY_FIVE(from, to, F, k)                                             \
    for (t = (from); t < (to); t += 5) {                                              \
        SHA1_ROUND(a, b, c, d, e, F(b, c, d), k, SHA1_W(t));                          \
        SHA1_ROUND(e, a, b, c, d, F(a, b, c), k, SHA1_W(t + 1));                      \
        SHA1_ROUND(d, e, a, b, c, F(e, a, b), k, SHA1_W(t + 2));                      \
        SHA1_ROUND(c, d, e, a, b, F(d, e, a), k, SHA1_W(t + 3));                      \
        SHA1_ROUND(b, c, d, e, a, F(c, d, e), k, SHA1_W(t + 4));                      \
    }
#define F1(b, c, d) (d ^ (b & (c ^ d)))
#define F2(b, c, d) (b ^ c ^ d)
#define F3(b, c, d) ((b & c) | (d & (b | c)))

static void
compress(tc_sha1 *s, const unsigned char *p)
{
    uint32_t w[16], a, b, c, d, e;
    int t;
    for (t = 0; t < 16; t++) {
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    }
    a = s->h[0];
    b = s->h[1];
    c = s->h[2];
    d = s->h[3];
    e = s->h[4];
    for (t = 0; t < 15; t += 5) {
        SHA1_ROUND(a, b, c, d, e, F1(b, c, d), 0x5a827999u, w[t]);
        SHA1_ROUND(e, a, b, c, d, F1(a, b, c), 0x5a827999u, w[t + 1]);
        SHA1_ROUND(d, e, a, b, c, F1(e, a, b), 0x5a827999u, w[t + 2]);
        SHA1_ROUND(c, d, e, a, b, F1(d, e, a), 0x5a827999u, w[t + 3]);
        SHA1_ROUND(b, c, d, e, a, F1(c, d, e), 0x5a827999u, w[t + 4]);
    }
    /* rounds 15-19: the last one reading a loaded word, then the schedule */
    SHA1_ROUND(a, b, c, d, e, F1(b, c, d), 0x5a827999u, w[15]);
    SHA1_ROUND(e, a, b, c, d, F1(a, b, c), 0x5a827999u, SHA1_W(16));
    SHA1_ROUND(d, e, a, b, c, F1(e, a, b), 0x5a827999u, SHA1_W(17));
    SHA1_ROUND(c, d, e, a, b, F1(d, e, a), 0x5a827999u, SHA1_W(18));
    SHA1_ROUND(b, c, d, e, a, F1(c, d, e), 0x5a827999u, SHA1_W(19));
    SHA1_FIVE_BY_FIVE(20, 40, F2, 0x6ed9eba1u);
    SHA1_FIVE_BY_FIVE(40, 60, F3, 0x8f1bbcdcu);
    SHA1_FIVE_BY_FIVE(60, 80, F2, 0xca62c1d6u);
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

void
tc_sha1_init(tc_sha1 *s)
{
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
    s->h[4] = 0xc3d2e1f0;
    s->length = 0;
    s->used = 0;
}

void
tc_sha1_update(tc_sha1 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->length += n;
    if (s->used > 0) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used < 64) {
            return;
        }
        compress(s, s->block);
        s->used = 0;
    }
    while (n >= 64) {
        compress(s, p);
        p += 64;
        n -= 64;
    }
    memcpy(s->block, p, n);
    s->used = n;
}

void
tc_sha1_hex(tc_sha1 *s, char out[41])
{
    static const char digits[] = "0123456789abcdef";
    uint64_t bits = s->length * 8;
    unsigned char pad[72];
    size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
    memset(pad, 0, sizeof(pad));
    pad[0] = 0x80;
    for (int i = 0; i < 8; i++) {
        pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    }
    uint64_t keep = s->length;
    tc_sha1_update(s, pad, padlen + 8);
    s->length = keep;
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 8; j++) {
            out[8 * i + j] = digits[(s->h[i] >> (28 - 4 * j)) & 0xf];
        }
    }
    out[40] = '\0';
}
