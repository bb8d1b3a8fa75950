/* ws_load: a WebSocket echo load generator in C (a benchmark tool, not part
 * of the package; benchmarks/ws_echo.py compiles it with `cc -O2` at run
 * time).
 *
 * C connections to ws://HOST:PORT/PATH (from 127.0.0.1 .. 127.0.0.N when
 * --sources N is given, for runs with more connections than one source
 * address has ports), each one upgraded with a random Sec-WebSocket-Key
 * whose Sec-WebSocket-Accept is checked (SHA-1 + base64 below).  Then one
 * epoll loop on non-blocking sockets: every connection keeps --depth K
 * messages in flight (1 by default: send, wait for the whole echo, send
 * again); the masked client frame of --size S bytes (binary, or ASCII text
 * with --text) and the unmasked frame the server must send back are built
 * once.  Every byte received is compared with the expected echo stream
 * (memcmp against the prepared frame, in cache: cheap next to the server's
 * work), so a short, long or altered echo counts as an error.
 *
 * Phases: --warmup W seconds (not counted), then --duration D seconds
 * (counted), then no new messages: the messages in flight are awaited and
 * every connection sends a close frame and waits for the server's (up to
 * two seconds).  With --pid P the server's CPU time (utime + stime from
 * /proc/P/stat) is read at both ends of the counted window, so the figure
 * covers exactly the messages counted.
 *
 * Output (stdout, one JSON object): messages (echoes completed in the
 * window), messages_total (including warm-up and drain), errors, seconds,
 * msgs_per_s, connections, depth, size, loadgen_cpu_s (this process, in
 * the window), and with --pid server_cpu_s (split into server_user_s and
 * server_sys_s) and server_busy (server CPU / wall).  Exit status 1 if
 * any error was counted, 2 on bad arguments or a failed set-up (message on
 * stderr).
 *
 *   cc -O2 -o ws_load ws_load.c
 *   ./ws_load --port 8888 [--host 127.0.0.1] [--path /ws] [--conns 64]
 *       [--size 64] [--text] [--depth 1] [--warmup 1] [--duration 5]
 *       [--sources 1] [--pid SERVER_PID]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ SHA-1
 * (FIPS 180-4), only for checking Sec-WebSocket-Accept. */

typedef struct {
    uint32_t h[5];
    uint64_t total;
    unsigned char block[64];
    size_t used;
} sha1_ctx;

static uint32_t
rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void
sha1_block(sha1_ctx *c, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (int i = 16; i < 80; i++) {
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ cc ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ cc ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = rol32(b, 30);
        b = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

static void
sha1_init(sha1_ctx *c)
{
    static const uint32_t init[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu,
                                     0x10325476u, 0xC3D2E1F0u};
    memcpy(c->h, init, sizeof(init));
    c->total = 0;
    c->used = 0;
}

static void
sha1_update(sha1_ctx *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->total += len;
    while (len > 0) {
        size_t take = 64 - c->used;
        if (take > len) {
            take = len;
        }
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        len -= take;
        if (c->used == 64) {
            sha1_block(c, c->block);
            c->used = 0;
        }
    }
}

static void
sha1_final(sha1_ctx *c, unsigned char out[20])
{
    uint64_t bits = c->total * 8;
    unsigned char pad = 0x80;
    sha1_update(c, &pad, 1);
    pad = 0;
    while (c->used != 56) {
        sha1_update(c, &pad, 1);
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++) {
        len[i] = (unsigned char)(bits >> (56 - 8 * i));
    }
    sha1_update(c, len, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(c->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)c->h[i];
    }
}

static void
base64(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0;
    while (i + 3 <= n) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
        i += 3;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = '=';
    }
    *out = '\0';
}

/* ------------------------------------------------------------ options */

typedef struct {
    const char *host, *path;
    int port, conns, size, text, depth, sources, pid;
    double warmup, duration;
} options;

static void
usage(const char *msg)
{
    fprintf(stderr,
            "ws_load: %s\nusage: ws_load --port P [--host 127.0.0.1] [--path /ws] "
            "[--conns 64] [--size 64] [--text] [--depth 1] [--warmup 1] "
            "[--duration 5] [--sources 1] [--pid SERVER_PID]\n",
            msg);
    exit(2);
}

static long
int_arg(const char *name, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s wants an integer in [%ld, %ld], got %.40s", name, lo,
                 hi, v);
        usage(msg);
    }
    return x;
}

static double
float_arg(const char *name, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= 0) || x > 1e6) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s wants a number of seconds >= 0, got %.40s", name, v);
        usage(msg);
    }
    return x;
}

static void
parse_options(int argc, char **argv, options *o)
{
    o->host = "127.0.0.1";
    o->path = "/ws";
    o->port = 0;
    o->conns = 64;
    o->size = 64;
    o->text = 0;
    o->depth = 1;
    o->sources = 1;
    o->pid = 0;
    o->warmup = 1.0;
    o->duration = 5.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--text")) {
            o->text = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage(a[0] == '-' ? "an option is missing its value" : "unexpected argument");
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--host")) {
            o->host = v;
        } else if (!strcmp(a, "--path")) {
            o->path = v;
        } else if (!strcmp(a, "--port")) {
            o->port = (int)int_arg(a, v, 1, 65535);
        } else if (!strcmp(a, "--conns")) {
            o->conns = (int)int_arg(a, v, 1, 1000000);
        } else if (!strcmp(a, "--size")) {
            o->size = (int)int_arg(a, v, 0, 64 << 20);
        } else if (!strcmp(a, "--depth")) {
            o->depth = (int)int_arg(a, v, 1, 1024);
        } else if (!strcmp(a, "--sources")) {
            o->sources = (int)int_arg(a, v, 1, 250);
        } else if (!strcmp(a, "--pid")) {
            o->pid = (int)int_arg(a, v, 1, 1 << 30);
        } else if (!strcmp(a, "--warmup")) {
            o->warmup = float_arg(a, v);
        } else if (!strcmp(a, "--duration")) {
            o->duration = float_arg(a, v);
        } else {
            usage("unknown option");
        }
    }
    if (!o->port) {
        usage("--port is required");
    }
    if (strlen(o->path) > 1000 || strlen(o->host) > 255 || o->path[0] != '/') {
        usage("--path must start with / (and be < 1000 bytes), --host < 256 bytes");
    }
}

/* ------------------------------------------------------------ frames */

/* The client's masked frame of `size` payload bytes (the payload: ASCII
 * letters for text, a byte pattern for binary) and the unmasked frame the
 * server echoes.  Both malloc'ed; lengths in *flen, *elen. */
static void
build_frames(int size, int text, unsigned char **frame, size_t *flen, unsigned char **echo,
             size_t *elen)
{
    static const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = (size_t)size, hl;
    unsigned char head[10];
    head[0] = text ? 0x81 : 0x82;
    if (n < 126) {
        head[1] = (unsigned char)n;
        hl = 2;
    } else if (n <= 0xFFFF) {
        head[1] = 126;
        head[2] = (unsigned char)(n >> 8);
        head[3] = (unsigned char)n;
        hl = 4;
    } else {
        head[1] = 127;
        for (int i = 0; i < 8; i++) {
            head[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        }
        hl = 10;
    }
    unsigned char *f = malloc(hl + 4 + n), *e = malloc(hl + n);
    if (!f || !e) {
        fprintf(stderr, "ws_load: out of memory\n");
        exit(2);
    }
    memcpy(e, head, hl);
    memcpy(f, head, hl);
    f[1] |= 0x80; /* MASK bit */
    memcpy(f + hl, mask, 4);
    for (size_t i = 0; i < n; i++) {
        unsigned char b = text ? (unsigned char)('a' + i % 26) : (unsigned char)(i * 131 + 7);
        e[hl + i] = b;
        f[hl + 4 + i] = b ^ mask[i % 4];
    }
    *frame = f;
    *flen = hl + 4 + n;
    *echo = e;
    *elen = hl + n;
}

/* ------------------------------------------------------------ connections */

typedef struct {
    int fd;
    int dead;           /* 1 after an error or once closed */
    int closing;        /* our close frame is sent: read until EOF */
    int want_out;       /* EPOLLOUT is on */
    uint64_t to_send;   /* bytes of the frame stream not yet sent */
    uint64_t sent;      /* bytes of the frame stream sent so far */
    uint64_t received;  /* bytes of the echo stream received so far */
    uint64_t inflight;  /* messages sent (or queued) whose echo is not all here */
} conn;

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

/* CPU time of process `pid` in seconds: user (utime) into *user, system
 * (stime) into *sys_; 0, or -1 if /proc/PID/stat cannot be read. */
static int
proc_cpu(int pid, double *user, double *sys_)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) {
        return -1;
    }
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15) */
    unsigned long long ut = 0, stt = 0;
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) !=
        2) {
        return -1;
    }
    double tck = (double)sysconf(_SC_CLK_TCK);
    *user = (double)ut / tck;
    *sys_ = (double)stt / tck;
    return 0;
}

static int
read_some(int fd, char *buf, size_t cap)
{
    for (;;) {
        ssize_t k = recv(fd, buf, cap, 0);
        if (k >= 0 || errno != EINTR) {
            return (int)k;
        }
    }
}

/* Connect connection i (blocking), upgrade it, check the answer; the
 * socket is non-blocking on return.  -1 with a message on stderr. */
static int
open_conn(const options *o, int i, const struct sockaddr_in *srv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("ws_load: socket");
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (o->sources > 1) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(i % o->sources));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            perror("ws_load: bind to a 127.0.0.x source");
            goto fail;
        }
    }
    if (connect(fd, (const struct sockaddr *)srv, sizeof(*srv)) < 0) {
        perror("ws_load: connect");
        goto fail;
    }
    unsigned char raw[16];
    for (int k = 0; k < 16; k++) {
        raw[k] = (unsigned char)(rand() >> 7);
    }
    char key[32], accept[32], req[1400];
    base64(raw, 16, key);
    sha1_ctx c;
    unsigned char digest[20];
    sha1_init(&c);
    sha1_update(&c, key, strlen(key));
    sha1_update(&c, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    sha1_final(&c, digest);
    base64(digest, 20, accept);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     o->path, o->host, o->port, key);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        perror("ws_load: sending the upgrade request");
        goto fail;
    }
    /* read the answer's head byte by byte up to the blank line: nothing
     * after it may be taken (the server sends nothing before our frames) */
    char head[8192];
    size_t got = 0;
    while (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0) {
        if (got == sizeof(head) - 1) {
            fprintf(stderr, "ws_load: upgrade answer head over 8 KiB\n");
            goto fail;
        }
        int k = read_some(fd, head + got, 1);
        if (k <= 0) {
            fprintf(stderr, "ws_load: %s during the upgrade\n",
                    k == 0 ? "server closed the connection" : strerror(errno));
            goto fail;
        }
        got++;
    }
    head[got] = '\0';
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "ws_load: upgrade refused: %.200s\n", head);
        goto fail;
    }
    /* the Sec-WebSocket-Accept header (name case-insensitive) */
    const char *p = head, *value = NULL;
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (!strncasecmp(p, "Sec-WebSocket-Accept:", 21)) {
            value = p + 21;
            while (*value == ' ' || *value == '\t') {
                value++;
            }
            break;
        }
    }
    size_t al = strlen(accept);
    if (!value || strncmp(value, accept, al) != 0 ||
        (value[al] != '\r' && value[al] != ' ' && value[al] != '\t')) {
        fprintf(stderr, "ws_load: wrong or missing Sec-WebSocket-Accept (want %s): %.300s\n",
                accept, head);
        goto fail;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        perror("ws_load: fcntl");
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* ------------------------------------------------------------ the run */

typedef struct {
    const options *o;
    int ep;
    conn *cs;
    unsigned char *frames;  /* `depth` copies of the client frame back to back */
    size_t flen, fspan;     /* one frame; all the copies */
    unsigned char *echo;
    size_t elen;
    char *rbuf;
    size_t rcap;
    uint64_t completed;     /* echoes completed (all phases) */
    uint64_t errors;
    int live;               /* connections neither dead nor closed */
} run;

static void
conn_fail(run *r, conn *c, const char *what)
{
    if (c->dead) {
        return;
    }
    if (what) {
        r->errors++;
        if (r->errors <= 5) {
            fprintf(stderr, "ws_load: connection %d: %s\n", (int)(c - r->cs), what);
        }
    }
    c->dead = 1;
    r->live--;
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void
set_out(run *r, conn *c, int on)
{
    if (c->want_out == on) {
        return;
    }
    struct epoll_event ev;
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Send what is queued until done or the socket is full. */
static void
pump(run *r, conn *c)
{
    while (c->to_send > 0) {
        size_t off = (size_t)(c->sent % r->flen);
        size_t n = r->fspan - off;
        if (n > c->to_send) {
            n = (size_t)c->to_send;
        }
        ssize_t k = send(c->fd, r->frames + off, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out(r, c, 1);
                return;
            }
            conn_fail(r, c, strerror(errno));
            return;
        }
        c->sent += (uint64_t)k;
        c->to_send -= (uint64_t)k;
    }
    set_out(r, c, 0);
}

static void
queue_message(run *r, conn *c)
{
    c->to_send += r->flen;
    c->inflight++;
}

static void
send_close(run *r, conn *c)
{
    /* close 1000, masked with a zero mask */
    static const unsigned char frame[8] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    c->closing = 1;
    if (send(c->fd, frame, sizeof(frame), MSG_NOSIGNAL) != (ssize_t)sizeof(frame)) {
        conn_fail(r, c, NULL); /* it goes away either way */
    }
}

/* Bytes arrived: check them against the echo stream; each completed echo
 * is counted and (while `sending`) replaced by a new message. */
static void
on_input(run *r, conn *c, int sending)
{
    int k = read_some(c->fd, r->rbuf, r->rcap);
    if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        if (c->closing) {
            conn_fail(r, c, NULL);
        } else {
            conn_fail(r, c, strerror(errno));
        }
        return;
    }
    if (k == 0) {
        conn_fail(r, c, c->closing ? NULL : "server closed the connection");
        return;
    }
    if (c->closing) {
        return; /* the echoes are all in; this is the server's close frame */
    }
    size_t pos = 0, len = (size_t)k;
    uint64_t before = c->received / r->elen;
    while (pos < len) {
        size_t off = (size_t)(c->received % r->elen);
        size_t n = r->elen - off;
        if (n > len - pos) {
            n = len - pos;
        }
        if (memcmp(r->rbuf + pos, r->echo + off, n) != 0) {
            conn_fail(r, c, "echo differs from the message sent");
            return;
        }
        pos += n;
        c->received += n;
    }
    uint64_t done = c->received / r->elen - before;
    if (done > c->inflight) {
        conn_fail(r, c, "more echoed than was sent");
        return;
    }
    c->inflight -= done;
    r->completed += done;
    if (sending && done) {
        for (uint64_t i = 0; i < done; i++) {
            queue_message(r, c);
        }
        pump(r, c);
    }
}

/* Run the loop until `until` (seconds, CLOCK_MONOTONIC); with sending 0,
 * until nothing is in flight (or `until`). */
static void
loop_until(run *r, double until, int sending)
{
    struct epoll_event evs[256];
    for (;;) {
        double t = now();
        if (t >= until || r->live == 0) {
            return;
        }
        if (!sending) {
            int busy = 0;
            for (int i = 0; i < r->o->conns; i++) {
                conn *c = &r->cs[i];
                if (!c->dead && !c->closing && (c->inflight || c->to_send)) {
                    busy = 1;
                    break;
                }
            }
            if (!busy) {
                return;
            }
        }
        int ms = (int)((until - t) * 1000) + 1;
        int n = epoll_wait(r->ep, evs, 256, ms > 100 ? 100 : ms);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("ws_load: epoll_wait");
            exit(2);
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->dead) {
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                pump(r, c);
            }
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
                on_input(r, c, sending);
            }
        }
    }
}

int
main(int argc, char **argv)
{
    options o;
    parse_options(argc, argv, &o);
    srand((unsigned)(time(NULL) ^ getpid()));

    struct sockaddr_in srv;
    memset(&srv, 0, sizeof(srv));
    srv.sin_family = AF_INET;
    srv.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &srv.sin_addr) != 1) {
        usage("--host must be an IPv4 address");
    }

    run r;
    memset(&r, 0, sizeof(r));
    r.o = &o;
    unsigned char *one;
    build_frames(o.size, o.text, &one, &r.flen, &r.echo, &r.elen);
    r.fspan = r.flen * (size_t)o.depth;
    r.frames = malloc(r.fspan);
    r.rcap = 256 * 1024;
    r.rbuf = malloc(r.rcap);
    r.cs = calloc((size_t)o.conns, sizeof(conn));
    if (!r.frames || !r.rbuf || !r.cs) {
        fprintf(stderr, "ws_load: out of memory\n");
        return 2;
    }
    for (int i = 0; i < o.depth; i++) {
        memcpy(r.frames + (size_t)i * r.flen, one, r.flen);
    }
    free(one);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.ep < 0) {
        perror("ws_load: epoll_create1");
        return 2;
    }
    for (int i = 0; i < o.conns; i++) {
        conn *c = &r.cs[i];
        c->fd = open_conn(&o, i, &srv);
        if (c->fd < 0) {
            fprintf(stderr, "ws_load: connection %d of %d failed to open\n", i, o.conns);
            return 2;
        }
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(r.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            perror("ws_load: epoll_ctl");
            return 2;
        }
        r.live++;
    }
    for (int i = 0; i < o.conns; i++) {
        for (int k = 0; k < o.depth; k++) {
            queue_message(&r, &r.cs[i]);
        }
        pump(&r, &r.cs[i]);
    }

    double t0 = now();
    loop_until(&r, t0 + o.warmup, 1);
    uint64_t m0 = r.completed;
    double cpu0 = self_cpu();
    double u0 = 0, s0 = 0, u1 = 0, s1 = 0;
    int srv_ok = o.pid && proc_cpu(o.pid, &u0, &s0) == 0;
    double w0 = now();
    loop_until(&r, w0 + o.duration, 1);
    srv_ok = srv_ok && proc_cpu(o.pid, &u1, &s1) == 0;
    double w1 = now();
    double cpu1 = self_cpu();
    uint64_t messages = r.completed - m0;

    /* drain: no new messages, wait for the ones in flight, then close */
    loop_until(&r, w1 + 10.0, 0);
    for (int i = 0; i < o.conns; i++) {
        conn *c = &r.cs[i];
        if (!c->dead) {
            if (c->inflight || c->to_send) {
                conn_fail(&r, c, "echo still missing 10 s after the run");
            } else {
                send_close(&r, c);
            }
        }
    }
    loop_until(&r, now() + 2.0, 1); /* closing connections read until EOF */
    for (int i = 0; i < o.conns; i++) {
        if (!r.cs[i].dead) {
            conn_fail(&r, &r.cs[i], NULL);
        }
    }

    double secs = w1 - w0;
    printf("{\"messages\": %llu, \"messages_total\": %llu, \"errors\": %llu, "
           "\"seconds\": %.6f, \"msgs_per_s\": %.1f, \"connections\": %d, \"depth\": %d, "
           "\"size\": %d, \"text\": %s, \"loadgen_cpu_s\": %.3f",
           (unsigned long long)messages, (unsigned long long)r.completed,
           (unsigned long long)r.errors, secs, secs > 0 ? messages / secs : 0.0, o.conns,
           o.depth, o.size, o.text ? "true" : "false", cpu1 - cpu0);
    if (o.pid) {
        if (!srv_ok) {
            printf(", \"server_cpu_s\": null, \"server_busy\": null");
        } else {
            double cpu = (u1 - u0) + (s1 - s0);
            printf(", \"server_cpu_s\": %.3f, \"server_user_s\": %.3f, "
                   "\"server_sys_s\": %.3f, \"server_busy\": %.3f",
                   cpu, u1 - u0, s1 - s0, secs > 0 ? cpu / secs : 0.0);
        }
    }
    printf("}\n");
    return r.errors ? 1 : 0;
}
