/* WebSocket component: masking now; framing, UTF-8 checks and deflate later.
 *
 * Contract for the rest of the extension:
 *   tc_ws_mask(mask, src, dst, len): dst[i] = src[i] ^ mask[i % 4], any
 *       alignment, dst may equal src (in place).
 */
#ifndef TC_WEBSOCKET_H
#define TC_WEBSOCKET_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

struct tc_state;

typedef struct tc_ws_state {
    int unused_; /* no per-module objects yet */
} tc_ws_state;

void tc_ws_mask(const uint8_t mask[4], const uint8_t *src, uint8_t *dst, size_t len);

int tc_ws_exec(PyObject *module, struct tc_state *st);
int tc_ws_traverse(struct tc_state *st, visitproc visit, void *arg);
void tc_ws_clear(struct tc_state *st);

#endif /* TC_WEBSOCKET_H */
