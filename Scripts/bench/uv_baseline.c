/* Baseline for `lattica-bench uv`: the same two measurements in plain C on libuv.
 *
 * tcp_callback_gbps: one loop, client and server on 127.0.0.1; the client keeps writing
 *   CHUNK-byte buffers (uv_try_write first, uv_write of a copy when the kernel is full, at most
 *   HIGH bytes queued, refilled when the queue drains to LOW: the same policy as the Swift shell);
 *   the server counts and discards. Prints 1e9 bytes per second.
 * udp_callback_rtt_us: one loop, 64-byte datagram echoed by a server socket; the client sends the
 *   next one from its receive callback. Prints the median round trip in microseconds.
 *
 * Usage: uv_baseline [tcp_bytes] [udp_count] [chunk]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define HIGH (1 << 20)
#define LOW (256 << 10)

static uv_loop_t *loop;
static size_t total, chunk, sent, received, queued;
static char *payload;
static uint64_t start_ns;
static int writable = 1, finished;
static uv_tcp_t listener, client, server;
static char readbuf[65536];

static void alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b) { (void)h; (void)s; *b = uv_buf_init(readbuf, sizeof readbuf); }
static void close_noop(uv_handle_t *h) { (void)h; }

static void pump(void);

static void write_cb(uv_write_t *req, int status) {
    if (status < 0) { fprintf(stderr, "write: %s\n", uv_strerror(status)); exit(1); }
    queued -= (size_t)(uintptr_t)req->data;
    free(req);  /* request and its copied bytes are one allocation */
    if (!writable && queued <= LOW) { writable = 1; pump(); }
}

static void shutdown_cb(uv_shutdown_t *req, int status) { (void)status; free(req); uv_close((uv_handle_t *)&client, close_noop); }

static void pump(void) {
    while (writable && sent < total) {
        size_t off = 0;
        if (queued == 0) {
            uv_buf_t b = uv_buf_init(payload, (unsigned)chunk);
            int n = uv_try_write((uv_stream_t *)&client, &b, 1);
            if (n > 0) off = (size_t)n;
        }
        if (off < chunk) {
            size_t rest = chunk - off;
            uv_write_t *req = malloc(sizeof(uv_write_t) + rest);
            char *copy = (char *)(req + 1);
            memcpy(copy, payload + off, rest);
            req->data = (void *)(uintptr_t)rest;
            uv_buf_t b = uv_buf_init(copy, (unsigned)rest);
            uv_write(req, (uv_stream_t *)&client, &b, 1, write_cb);
            queued += rest;
            if (queued >= HIGH) writable = 0;
        }
        sent += chunk;
    }
    if (sent >= total && !finished) {
        finished = 1;
        uv_shutdown_t *req = malloc(sizeof *req);
        uv_shutdown(req, (uv_stream_t *)&client, shutdown_cb);
    }
}

static void server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    (void)b;
    if (n > 0) {
        received += (size_t)n;
        if (received >= total) {
            double secs = (double)(uv_hrtime() - start_ns) / 1e9;
            printf("tcp_callback_gbps %.3f GB/s\n", (double)total / secs / 1e9);
            uv_close((uv_handle_t *)s, close_noop);
        }
    }
}

static void on_connection(uv_stream_t *l, int status) {
    if (status < 0) exit(1);
    uv_tcp_init(loop, &server);
    uv_accept(l, (uv_stream_t *)&server);
    uv_tcp_nodelay(&server, 1);
    uv_close((uv_handle_t *)&listener, close_noop);
    uv_read_start((uv_stream_t *)&server, alloc_cb, server_read);
}

static void on_connect(uv_connect_t *req, int status) {
    if (status < 0) { fprintf(stderr, "connect: %s\n", uv_strerror(status)); exit(1); }
    (void)req;
    uv_tcp_nodelay(&client, 1);
    start_ns = uv_hrtime();
    pump();
}

/* ---- UDP ---- */
static uv_udp_t usrv, ucli;
static struct sockaddr_in srv_addr;
static size_t udp_count, udp_done;
static uint64_t *samples, sent_at;
static char udp_payload[64];

static void udp_send_now(uv_udp_t *h, const char *p, size_t n, const struct sockaddr *to) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_udp_try_send(h, &b, 1, to);
    if (r < 0) { fprintf(stderr, "udp send: %s\n", uv_strerror(r)); exit(1); }
}

static void srv_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags) {
    (void)flags;
    if (n < 0 || from == NULL) return;
    udp_send_now(h, b->base, (size_t)n, from);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void cli_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from, unsigned flags) {
    (void)b; (void)flags;
    if (n < 0 || from == NULL) return;
    samples[udp_done++] = uv_hrtime() - sent_at;
    if (udp_done == udp_count) {
        qsort(samples, udp_count, sizeof *samples, cmp_u64);
        double med = udp_count % 2 ? (double)samples[udp_count / 2]
                                   : (double)(samples[udp_count / 2 - 1] + samples[udp_count / 2]) / 2;
        printf("udp_callback_rtt_us %.2f us\n", med / 1e3);
        uv_close((uv_handle_t *)h, close_noop);
        uv_close((uv_handle_t *)&usrv, close_noop);
        return;
    }
    sent_at = uv_hrtime();
    udp_send_now(h, udp_payload, sizeof udp_payload, (const struct sockaddr *)&srv_addr);
}

int main(int argc, char **argv) {
    total = argc > 1 ? strtoull(argv[1], NULL, 10) : (1ull << 30);
    udp_count = argc > 2 ? strtoull(argv[2], NULL, 10) : 20000;
    chunk = argc > 3 ? strtoull(argv[3], NULL, 10) : (256 << 10);
    setvbuf(stdout, NULL, _IOLBF, 0);
    loop = uv_default_loop();
    payload = malloc(chunk);
    memset(payload, 0x5A, chunk);

    struct sockaddr_in any, bound;
    int len = sizeof bound;
    uv_ip4_addr("127.0.0.1", 0, &any);
    uv_tcp_init(loop, &listener);
    uv_tcp_bind(&listener, (const struct sockaddr *)&any, 0);
    uv_listen((uv_stream_t *)&listener, 511, on_connection);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &len);
    uv_tcp_init(loop, &client);
    uv_connect_t creq;
    uv_tcp_connect(&creq, &client, (const struct sockaddr *)&bound, on_connect);
    uv_run(loop, UV_RUN_DEFAULT);

    samples = malloc(udp_count * sizeof *samples);
    memset(udp_payload, 1, sizeof udp_payload);
    uv_udp_init(loop, &usrv);
    uv_udp_bind(&usrv, (const struct sockaddr *)&any, 0);
    len = sizeof srv_addr;
    uv_udp_getsockname(&usrv, (struct sockaddr *)&srv_addr, &len);
    uv_udp_recv_start(&usrv, alloc_cb, srv_recv);
    uv_udp_init(loop, &ucli);
    uv_udp_bind(&ucli, (const struct sockaddr *)&any, 0);
    uv_udp_recv_start(&ucli, alloc_cb, cli_recv);
    sent_at = uv_hrtime();
    udp_send_now(&ucli, udp_payload, sizeof udp_payload, (const struct sockaddr *)&srv_addr);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(samples);
    free(payload);
    return 0;
}
