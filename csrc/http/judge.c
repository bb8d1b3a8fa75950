/* llhttp as the second judge of a request stream: see judge.h. */
#include "http/judge.h"

#include <stdio.h>
#include <string.h>

int
tc_http_judge_strict_build(void)
{
#if defined(TC_LLHTTP_STRICT) && TC_LLHTTP_STRICT
    return 1;
#else
    return 0;
#endif
}

static tc_http_judge *
judge_of(llhttp_t *ll)
{
    return (tc_http_judge *)ll->data;
}

static void
put_len(unsigned char *h, uint32_t n)
{
    h[1] = (unsigned char)n;
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)(n >> 16);
    h[4] = (unsigned char)(n >> 24);
}

/* Append to the record of `tag`: extends the open record of the same tag,
 * else starts a new one.  0, or -1 (nomem; the callback then fails and
 * llhttp stops with HPE_USER). */
static int
rec_add(tc_http_judge *j, char tag, const char *at, size_t len)
{
    tc_http_buf *b = j->rec;
    if (b == NULL) {
        return 0;
    }
    if (j->open_tag != tag) {
        unsigned char hdr[TC_HTTP_JUDGE_REC_HDR] = {(unsigned char)tag, 0, 0, 0, 0};
        if (tc_http_buf_append(b, (const char *)hdr, sizeof(hdr)) < 0) {
            goto nomem;
        }
        j->open_tag = tag;
        j->open_at = b->len - TC_HTTP_JUDGE_REC_HDR;
    }
    size_t have = b->len - j->open_at - TC_HTTP_JUDGE_REC_HDR;
    if (len == 0) {
        return 0;
    }
    if (have + len > UINT32_MAX || tc_http_buf_append(b, at, len) < 0) {
        goto nomem;
    }
    put_len((unsigned char *)b->data + j->open_at, (uint32_t)(have + len));
    return 0;
nomem:
    j->nomem = 1;
    return -1;
}

/* A record complete in one call (closes any open one). */
static int
rec_one(tc_http_judge *j, char tag, const char *at, size_t len)
{
    j->open_tag = 0;
    if (rec_add(j, tag, at, len) < 0) {
        return -1;
    }
    j->open_tag = 0;
    return 0;
}

static int
on_message_begin(llhttp_t *ll)
{
    judge_of(ll)->in_message = 1;
    return 0;
}

static int
on_method(llhttp_t *ll, const char *at, size_t len)
{
    return rec_add(judge_of(ll), 'm', at, len);
}

static int
on_url(llhttp_t *ll, const char *at, size_t len)
{
    return rec_add(judge_of(ll), 'u', at, len);
}

static int
on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    return rec_add(judge_of(ll), 'f', at, len);
}

static int
on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    return rec_add(judge_of(ll), 'v', at, len);
}

/* A span is over: the next piece of the same kind starts a new record
 * (two header names in a row, an empty value between them). */
static int
on_span_complete(llhttp_t *ll)
{
    judge_of(ll)->open_tag = 0;
    return 0;
}

static int
on_headers_complete(llhttp_t *ll)
{
    tc_http_judge *j = judge_of(ll);
    j->heads++;
    if (j->rec != NULL) {
        char v[32];
        int n = snprintf(v, sizeof(v), "HTTP/%u.%u", (unsigned)ll->http_major,
                         (unsigned)ll->http_minor);
        if (rec_one(j, 'V', v, (size_t)n) < 0 || rec_one(j, 'H', NULL, 0) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
on_body(llhttp_t *ll, const char *at, size_t len)
{
    return rec_add(judge_of(ll), 'b', at, len);
}

static int
on_message_complete(llhttp_t *ll)
{
    tc_http_judge *j = judge_of(ll);
    j->messages++;
    j->in_message = 0;
    j->keep_alive = llhttp_should_keep_alive(ll);
    char ka = (char)(j->keep_alive ? 1 : 0);
    return rec_one(j, 'E', &ka, 1);
}

static const llhttp_settings_t judge_settings = {
    .on_message_begin = on_message_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_span_complete,
    .on_header_value_complete = on_span_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void
tc_http_judge_init(tc_http_judge *j, tc_http_buf *rec)
{
    memset(j, 0, sizeof(*j));
    llhttp_init(&j->ll, HTTP_REQUEST, &judge_settings);
    j->ll.data = j;
    j->rec = rec;
}

int
tc_http_judge_feed(tc_http_judge *j, const char *data, size_t len)
{
    if (j->failed) {
        return (int)llhttp_get_errno(&j->ll);
    }
    while (1) {
        llhttp_errno_t err = llhttp_execute(&j->ll, data, len);
        if (err == HPE_PAUSED_UPGRADE) {
            /* the upgrade request is complete; Tornado reads on from the
             * byte after it (when nothing detached the stream) */
            const char *pos = llhttp_get_error_pos(&j->ll);
            llhttp_resume_after_upgrade(&j->ll);
            size_t used = pos != NULL ? (size_t)(pos - data) : len;
            data += used;
            len -= used;
            if (len == 0) {
                return HPE_OK;
            }
            continue;
        }
        if (err != HPE_OK) {
            j->failed = 1;
        }
        return (int)err;
    }
}

void
tc_http_judge_describe(const tc_http_judge *j, char *buf, size_t cap)
{
    if (cap == 0) {
        return;
    }
    llhttp_errno_t err = llhttp_get_errno(&j->ll);
    const char *reason = j->nomem ? "out of memory" : llhttp_get_error_reason(&j->ll);
    snprintf(buf, cap, "%s: %s", llhttp_errno_name(err), reason ? reason : "");
}

const char *
tc_http_judge_verdict(const tc_http_judge *j, uint64_t heads, uint64_t messages,
                      int msg_complete, char *buf, size_t cap)
{
    if (j->failed) {
        if (heads == messages) {
            /* inside a head (or before one): Tornado's grammar speaks first,
             * at its end, so its own error message wins when it has one */
            return NULL;
        }
        tc_http_judge_describe(j, buf, cap);
        return buf;
    }
    if (j->heads != heads) {
        return "llhttp ends the request head at another byte";
    }
    if (msg_complete && (j->messages != messages || j->in_message)) {
        return "llhttp ends the message at another byte";
    }
    return NULL;
}
