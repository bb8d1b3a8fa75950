/* llhttp as the second judge of a request stream.  Pure C (no Python API):
 * the server's strict mode (server.c), its Python wrapper _core.HTTPJudge
 * for strict mode on upstream's Python connections (judge_py.c), the test
 * build's _core._llhttp_parse (test_api.c) and the differential fuzz target
 * (fuzz/fuzz_differential.c) use it.
 *
 * The request grammar is Tornado's (parser.h says why it is not llhttp's).
 * llhttp -- the system's, linked as it is, never vendored; setup.py compiles
 * Debian's sources with LLHTTP_STRICT_MODE=1, the strictest this version
 * allows, and no lenient flag is ever set here -- is an independent
 * reading of the same bytes:
 *
 *  - strict mode: the server feeds the judge exactly the bytes its own
 *    parser consumed, in the same order, and refuses a request (upstream's
 *    400 and close) when llhttp rejects them or frames them differently (a
 *    head or a message ending at another byte than Tornado's);
 *  - differential testing: with a record buffer the judge logs what llhttp
 *    parsed (below), which the tests and the fuzz target compare with what
 *    Tornado's grammar parsed.
 *
 * Upgrade requests (llhttp pauses with HPE_PAUSED_UPGRADE after a request
 * carrying Upgrade + Connection: upgrade, or a CONNECT): the judge resumes
 * and goes on as Tornado does, which treats the next bytes as the next
 * request unless the application detached the stream (then nothing more is
 * fed).
 */
#ifndef TC_HTTP_JUDGE_H
#define TC_HTTP_JUDGE_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parser.h"

/* The record log (when a tc_http_buf is given): records of one tag byte, a
 * 4-byte little-endian length and that many bytes.  Tags, in the order of a
 * message:
 *   'm' method   'u' target   'V' version ("HTTP/x.y", at the end of the head)
 *   'f' header name           'v' header value (possibly empty or absent)
 *   'H' end of head (empty)   'b' body bytes (pieces merged)
 *   'E' message complete: one byte, llhttp_should_keep_alive()
 * Spans llhttp reports in pieces are merged into one record. */
#define TC_HTTP_JUDGE_REC_HDR 5

typedef struct tc_http_judge {
    llhttp_t ll;
    uint64_t heads;      /* heads llhttp completed */
    uint64_t messages;   /* messages llhttp completed */
    int in_message;      /* between on_message_begin and on_message_complete */
    int keep_alive;      /* llhttp_should_keep_alive() at the last completion */
    int failed;          /* llhttp stopped with an error: dead */
    int nomem;           /* the record buffer could not grow */
    tc_http_buf *rec;    /* borrowed, or NULL: no record */
    char open_tag;       /* tag of the record still being extended, or 0 */
    size_t open_at;      /* offset of that record's header in *rec */
} tc_http_judge;

/* True when llhttp was compiled with LLHTTP_STRICT_MODE (setup.py sets
 * TC_LLHTTP_STRICT for our sources when it compiles llhttp so). */
int tc_http_judge_strict_build(void);

/* rec: NULL, or a buffer (owned by the caller) the judge appends to. */
void tc_http_judge_init(tc_http_judge *j, tc_http_buf *rec);

/* Feeds len bytes.  Returns HPE_OK (0), or the llhttp error it stopped with
 * (the judge is dead after one; later calls return the same error).
 * HPE_USER means the record buffer could not grow (j->nomem). */
int tc_http_judge_feed(tc_http_judge *j, const char *data, size_t len);

/* "HPE_NAME: reason" of the last error (a static or llhttp-owned string
 * copied into buf, NUL-terminated, truncated to cap). */
void tc_http_judge_describe(const tc_http_judge *j, char *buf, size_t cap);

/* Strict mode's verdict after the judge was fed every byte Tornado's
 * grammar consumed so far.  `heads`: request heads Tornado's grammar has
 * accepted; `messages`: messages it has completed; `msg_complete`: the
 * last byte fed ended a message for Tornado.  NULL: go on (llhttp agrees,
 * or it failed inside a head and Tornado's end of that head decides, so a
 * head Tornado rejects keeps Tornado's error); else why the request is
 * refused: a static string, or buf (llhttp's error, see describe) of
 * capacity cap.  One rule for both servers: the C server (server.c) and
 * upstream's Python connection behind TLS (judge_py.c, httpserver.py). */
const char *tc_http_judge_verdict(const tc_http_judge *j, uint64_t heads, uint64_t messages,
                                  int msg_complete, char *buf, size_t cap);

#endif /* TC_HTTP_JUDGE_H */
