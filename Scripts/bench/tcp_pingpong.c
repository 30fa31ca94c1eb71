/* The floor under our round-trip figure: 64 bytes back and forth over loopback TCP between two
 * threads of one process, in plain C, each thread waiting in epoll_wait. "blocking" sleeps in
 * epoll (what a loop without busy polling pays: two thread wake-ups per round trip); "polling"
 * calls epoll_wait with a zero timeout in a loop (what busy polling approaches).
 * Prints: c_tcp_pingpong_blocking_us <median>  and  c_tcp_pingpong_polling_us <median>.
 * Build: gcc -O2 -pthread -o tcp_pingpong tcp_pingpong.c */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { N = 20000, SIZE = 64 };
static int server_fd, polling;

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void read_exactly(int ep, int fd, char *buf) {
    int got = 0;
    while (got < SIZE) {
        struct epoll_event e;
        if (epoll_wait(ep, &e, 1, polling ? 0 : -1) < 0) { perror("epoll_wait"); exit(1); }
        ssize_t n = recv(fd, buf + got, SIZE - got, MSG_DONTWAIT);
        if (n > 0) got += n;
        else if (n == 0) { fprintf(stderr, "peer closed\n"); exit(1); }
    }
}

static int watch(int fd) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return ep;
}

static void *echo(void *arg) {
    (void)arg;
    char buf[SIZE];
    int ep = watch(server_fd);
    for (int i = 0; i < N; i++) {
        read_exactly(ep, server_fd, buf);
        if (send(server_fd, buf, SIZE, 0) != SIZE) { perror("send"); exit(1); }
    }
    close(ep);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double run(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (bind(l, (void *)&sa, sizeof sa) || listen(l, 1) || getsockname(l, (void *)&sa, &len)) { perror("listen"); exit(1); }
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, (void *)&sa, sizeof sa)) { perror("connect"); exit(1); }
    server_fd = accept(l, NULL, NULL);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    pthread_create(&t, NULL, echo, NULL);
    static double samples[N];
    char buf[SIZE] = {0};
    int ep = watch(client);
    for (int i = 0; i < N; i++) {
        double t0 = now_us();
        if (send(client, buf, SIZE, 0) != SIZE) { perror("send"); exit(1); }
        read_exactly(ep, client, buf);
        samples[i] = now_us() - t0;
    }
    pthread_join(t, NULL);
    close(ep); close(client); close(server_fd); close(l);
    qsort(samples, N, sizeof(double), cmp);
    return samples[N / 2];
}

int main(void) {
    polling = 0;
    printf("c_tcp_pingpong_blocking_us %.2f\n", run());
    polling = 1;
    printf("c_tcp_pingpong_polling_us %.2f\n", run());
    return 0;
}
