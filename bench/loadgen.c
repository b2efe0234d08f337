/*
 * Pipelined load generator for the echo protocol (4-byte big-endian length + payload), in C on
 * epoll: the second load generator of the socket benchmark, of a different make than
 * bench/loadgen.ts (Bun), so that a result one of them sees alone can be told from a property of
 * the server. Same scenarios, same checks, same output.
 *
 * One thread, level-triggered epoll, non-blocking sockets with TCP_NODELAY. Each connection keeps
 * `--inflight` requests outstanding: every read's complete replies are verified and answered with
 * as many new requests, in one write (`writev` when the burst wraps around the ring). Request `s`
 * carries `s` (u32 BE) in its first 4 payload bytes and pattern `s % inflight` after it; the replies
 * of a read are compared byte for byte with the requests in flight, so a reply that is lost,
 * reordered, cut or corrupted is caught. Latency is the time from the write of a request to the
 * read of its reply (one clock reading per read and one per write burst), kept in a log-linear
 * histogram (1/64 relative precision, 0.1 us units), the same as bench/loadgen.ts.
 *
 * Build: `gcc -O2 -o loadgen-c bench/loadgen.c` (bench/run.ts builds it with Debian's gcc).
 * Usage: `loadgen-c --port 7000 [--host 127.0.0.1] [--connections 50] [--inflight 16]
 *   [--payload 64] [--duration 5] [--warmup 1] [--json]`
 *
 * With `--json` it prints one JSON object as its last line, and `#window-start` / `#window-end`
 * lines when the measured window opens and closes. Its own CPU use over the window is reported as a
 * percentage of one core. Exits 2 when a reply is wrong or a connection drops during the run, 64 on
 * bad arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define HEADER 4

static const char *host = "127.0.0.1";
static int port = 7000;
static int connections = 50;
static int inflight = 16;
static long payload = 64;
static double duration = 5;
static double warmup = 1;
static int json = 0;
static long frame_size;

static void fail(const char *format, ...) {
  va_list args;
  va_start(args, format);
  fputs("loadgen-c: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(2);
}

static void usage(const char *message) {
  fprintf(stderr, "loadgen-c: %s\n", message);
  exit(64);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_seconds(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

/* --- latency histogram: log-linear buckets of 0.1 us, exact below 128, then 64 per power of two --- */

#define SUB 64
#define BUCKETS (128 + 26 * SUB)
static double histogram[BUCKETS];
static double latency_sum = 0;
static double latency_max = 0;
static const double UNIT_MS = 1e-4;

static int bucket_of(uint32_t units) {
  if (units < 128) return (int)units;
  int e = 31 - __builtin_clz(units);
  int shift = e - 6;
  return 128 + (e - 7) * SUB + (int)((units >> shift) - SUB);
}

static double value_of(int bucket) {
  if (bucket < 128) return bucket;
  int e = (bucket - 128) / SUB + 7;
  int shift = e - 6;
  int mantissa = (bucket - 128) % SUB + SUB;
  /* The middle of the bucket. */
  return mantissa * ldexp(1, shift) + ldexp(1, shift - 1);
}

static void record(double ms) {
  double u = round(ms / UNIT_MS);
  uint32_t units = u < 0 ? 0 : u > 0x7fffffff ? 0x7fffffff : (uint32_t)u;
  histogram[bucket_of(units)]++;
  latency_sum += ms;
  if (ms > latency_max) latency_max = ms;
}

static double percentile(double total, double p) {
  double want = ceil(total * p);
  double seen = 0;
  for (int b = 0; b < BUCKETS; b++) {
    seen += histogram[b];
    if (seen >= want && histogram[b] > 0) return value_of(b) * UNIT_MS;
  }
  return latency_max;
}

/* --- connections ---------------------------------------------------------------------------------- */

enum { WARMUP, MEASURE, DONE };
static int phase = WARMUP;
static long long received = 0;
static long long reads = 0;

typedef struct {
  int fd;
  /* Next sequence number to send, and the next one expected back. */
  uint32_t send_seq;
  uint32_t recv_seq;
  double *sent_at;
  /* The requests in flight, slot `seq % inflight`: the replies must be exactly these bytes. */
  uint8_t *ring;
  /* Replies read and not yet verified: acc[0, acc_length). */
  uint8_t *acc;
  long acc_capacity;
  long acc_length;
  /* Bytes the socket did not take: pending[head, tail). */
  uint8_t *pending;
  long pending_capacity;
  long head;
  long tail;
  int want_out;
} Conn;

static Conn *conns;
static int epoll_fd;

static void slot_template(uint8_t *frame, int k) {
  frame[0] = (uint8_t)(payload >> 24);
  frame[1] = (uint8_t)(payload >> 16);
  frame[2] = (uint8_t)(payload >> 8);
  frame[3] = (uint8_t)payload;
  memset(frame + HEADER, 0, 4);
  for (long j = 8; j < frame_size; j++) frame[j] = (uint8_t)((k * 31 + j * 7) & 0xff);
}

static void watch_out(Conn *c, int on) {
  if (c->want_out == on) return;
  c->want_out = on;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
}

static void append_pending(Conn *c, const uint8_t *bytes, long size) {
  long live = c->tail - c->head;
  if (c->tail + size > c->pending_capacity) {
    if (live + size <= c->pending_capacity) {
      memmove(c->pending, c->pending + c->head, live);
    } else {
      long capacity = c->pending_capacity * 2;
      if (capacity < live + size) capacity = live + size;
      if (capacity < 4096) capacity = 4096;
      uint8_t *grown = malloc(capacity);
      if (grown == NULL) fail("out of memory");
      memcpy(grown, c->pending + c->head, live);
      free(c->pending);
      c->pending = grown;
      c->pending_capacity = capacity;
    }
    c->head = 0;
    c->tail = live;
  }
  memcpy(c->pending + c->tail, bytes, size);
  c->tail += size;
}

static void on_close(Conn *c, const char *why) {
  if (phase != DONE) fail("connection closed by the server during the run%s%s", why[0] ? ": " : "", why);
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Writes `iov`; what the socket does not take waits in `pending` for EPOLLOUT. */
static void write_out(Conn *c, struct iovec *iov, int count) {
  long total = 0;
  for (int i = 0; i < count; i++) total += iov[i].iov_len;
  long written = 0;
  if (c->tail == c->head) {
    written = writev(c->fd, iov, count);
    if (written < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) on_close(c, strerror(errno));
      written = 0;
    }
  }
  if (written == total) return;
  for (int i = 0; i < count; i++) {
    long len = iov[i].iov_len;
    if (written >= len) {
      written -= len;
      continue;
    }
    append_pending(c, (uint8_t *)iov[i].iov_base + written, len - written);
    written = 0;
  }
  watch_out(c, 1);
}

/* Sends `n` requests in one write; `now` is their send time. */
static void send_requests(Conn *c, int n, double now) {
  int first = c->send_seq % inflight;
  for (int i = 0; i < n; i++) {
    uint32_t seq = c->send_seq + i;
    int slot = seq % inflight;
    uint8_t *at = c->ring + slot * frame_size + HEADER;
    at[0] = seq >> 24;
    at[1] = seq >> 16;
    at[2] = seq >> 8;
    at[3] = seq;
    c->sent_at[slot] = now;
  }
  c->send_seq += n;
  struct iovec iov[2];
  if (first + n <= inflight) {
    iov[0].iov_base = c->ring + first * frame_size;
    iov[0].iov_len = n * frame_size;
    write_out(c, iov, 1);
  } else {
    iov[0].iov_base = c->ring + first * frame_size;
    iov[0].iov_len = (inflight - first) * frame_size;
    iov[1].iov_base = c->ring;
    iov[1].iov_len = (n - (inflight - first)) * frame_size;
    write_out(c, iov, 2);
  }
}

static void flush_pending(Conn *c) {
  long queued = c->tail - c->head;
  if (queued > 0) {
    long written = write(c->fd, c->pending + c->head, queued);
    if (written < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) on_close(c, strerror(errno));
      return;
    }
    c->head += written;
  }
  if (c->head == c->tail) {
    c->head = c->tail = 0;
    watch_out(c, 0);
  }
}

/* Says what is wrong with the first wrong reply among `n`, and stops. */
static void explain(Conn *c, int n) {
  for (int i = 0; i < n; i++) {
    const uint8_t *at = c->acc + (long)i * frame_size;
    uint32_t seq = c->recv_seq + i;
    int slot = seq % inflight;
    uint32_t length = (uint32_t)at[0] << 24 | at[1] << 16 | at[2] << 8 | at[3];
    if (length != payload) fail("reply %u: length %u, expected %ld", seq, length, payload);
    uint32_t got = (uint32_t)at[4] << 24 | at[5] << 16 | at[6] << 8 | at[7];
    if (got != seq) fail("reply %u: carries sequence number %u (lost or reordered reply)", seq, got);
    if (memcmp(at, c->ring + slot * frame_size, frame_size) != 0) fail("reply %u: payload differs from the request", seq);
  }
  fail("replies differ from the requests");
}

static void on_readable(Conn *c) {
  long got = read(c->fd, c->acc + c->acc_length, c->acc_capacity - c->acc_length);
  if (got == 0) {
    on_close(c, "");
    return;
  }
  if (got < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) on_close(c, strerror(errno));
    return;
  }
  double now = now_ms();
  reads++;
  c->acc_length += got;
  int n = (int)(c->acc_length / frame_size);
  uint32_t outstanding = c->send_seq - c->recv_seq;
  if ((uint32_t)n > outstanding) fail("%d replies in one read, but %u in flight", n, outstanding);
  if (n > 0) {
    /* The replies are the requests in flight, in order: compare them with the ring in one or two pieces. */
    int first = c->recv_seq % inflight;
    int in_ring = n < inflight - first ? n : inflight - first;
    int differs = memcmp(c->acc, c->ring + first * frame_size, in_ring * frame_size) != 0;
    if (!differs && in_ring < n) {
      differs = memcmp(c->acc + in_ring * frame_size, c->ring, (n - in_ring) * frame_size) != 0;
    }
    if (differs) explain(c, n);
    if (phase == MEASURE) {
      for (int i = 0; i < n; i++) record(now - c->sent_at[(first + i) % inflight]);
      received += n;
    }
    c->recv_seq += n;
    long used = (long)n * frame_size;
    c->acc_length -= used;
    if (c->acc_length > 0) memmove(c->acc, c->acc + used, c->acc_length);
    if (phase != DONE) send_requests(c, n, now);
  }
}

static void connect_all(void) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &address.sin_addr) != 1) usage("--host must be an IPv4 address");
  for (int i = 0; i < connections; i++) {
    Conn *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) fail("socket: %s", strerror(errno));
    if (connect(c->fd, (struct sockaddr *)&address, sizeof address) != 0) {
      fail("connect to %s:%d: %s", host, port, strerror(errno));
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->ring = malloc(inflight * frame_size);
    c->sent_at = calloc(inflight, sizeof(double));
    c->acc_capacity = 2 * inflight * frame_size;
    if (c->acc_capacity < 64 * 1024) c->acc_capacity = 64 * 1024;
    c->acc = malloc(c->acc_capacity);
    if (c->ring == NULL || c->sent_at == NULL || c->acc == NULL) fail("out of memory");
    for (int k = 0; k < inflight; k++) slot_template(c->ring + k * frame_size, k);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0) fail("epoll_ctl: %s", strerror(errno));
  }
}

/* Runs the event loop until `until` (ms, monotonic). */
static void loop_until(double until) {
  struct epoll_event events[256];
  for (;;) {
    double left = until - now_ms();
    if (left <= 0) return;
    int ready = epoll_wait(epoll_fd, events, 256, (int)ceil(left < 1 ? 1 : left));
    if (ready < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < ready; i++) {
      Conn *c = events[i].data.ptr;
      if (events[i].events & EPOLLOUT) flush_pending(c);
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}

static const char *arg(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) usage("a value is missing after an option");
  return argv[++*i];
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *name = argv[i];
    if (strcmp(name, "--host") == 0) host = arg(argc, argv, &i);
    else if (strcmp(name, "--port") == 0) port = atoi(arg(argc, argv, &i));
    else if (strcmp(name, "--connections") == 0) connections = atoi(arg(argc, argv, &i));
    else if (strcmp(name, "--inflight") == 0) inflight = atoi(arg(argc, argv, &i));
    else if (strcmp(name, "--payload") == 0) payload = atol(arg(argc, argv, &i));
    else if (strcmp(name, "--duration") == 0) duration = atof(arg(argc, argv, &i));
    else if (strcmp(name, "--warmup") == 0) warmup = atof(arg(argc, argv, &i));
    else if (strcmp(name, "--json") == 0) json = 1;
    else {
      fprintf(stderr, "loadgen-c: unknown option %s\n", name);
      exit(64);
    }
  }
  if (port <= 0 || port > 65535) usage("--port must be a port number");
  if (connections < 1) usage("--connections must be >= 1");
  if (inflight < 1) usage("--inflight must be >= 1");
  if (payload < 8 || payload > (1 << 24)) usage("--payload must be 8 .. 16 MiB");
  if (!(duration > 0) || !(warmup >= 0)) usage("--duration must be > 0, --warmup >= 0");
  frame_size = HEADER + payload;

  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < (rlim_t)connections + 64) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  epoll_fd = epoll_create1(0);
  if (epoll_fd < 0) fail("epoll_create1: %s", strerror(errno));
  conns = calloc(connections, sizeof(Conn));
  if (conns == NULL) fail("out of memory");

  double connect_start = now_ms();
  connect_all();
  double connect_ms = now_ms() - connect_start;
  for (int i = 0; i < connections; i++) send_requests(&conns[i], inflight, now_ms());
  loop_until(now_ms() + warmup * 1e3);

  phase = MEASURE;
  memset(histogram, 0, sizeof histogram);
  latency_sum = 0;
  latency_max = 0;
  received = 0;
  long long reads_before = reads;
  if (json) {
    puts("#window-start");
    fflush(stdout);
  }
  double cpu0 = cpu_seconds();
  double t0 = now_ms();
  loop_until(t0 + duration * 1e3);
  double seconds = (now_ms() - t0) / 1e3;
  double cpu = cpu_seconds() - cpu0;
  phase = DONE;
  long long window_reads = reads - reads_before;
  if (json) {
    puts("#window-end");
    fflush(stdout);
  }
  for (int i = 0; i < connections; i++) {
    /* A reset, as bench/loadgen.ts's `terminate`: nothing lingers in TIME_WAIT. */
    struct linger hard = {.l_onoff = 1, .l_linger = 0};
    setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close(conns[i].fd);
  }

  double total = (double)received;
  double mean = received > 0 ? latency_sum / total : 0;
  double p50 = percentile(total, 0.5), p99 = percentile(total, 0.99), p999 = percentile(total, 0.999);
  double rate = total / seconds;
  double mb = total * frame_size / seconds / 1e6;
  double cpu_percent = cpu / seconds * 100;
  if (json) {
    printf(
      "{\"host\":\"%s\",\"port\":%d,\"connections\":%d,\"inflight\":%d,\"payload\":%ld,\"duration\":%.3f,"
      "\"warmup\":%g,\"connectMs\":%.0f,\"messages\":%lld,\"messagesPerSec\":%.0f,\"mbPerSec\":%.1f,"
      "\"latencyMs\":{\"mean\":%.4f,\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f},"
      "\"loadgenCpuPercent\":%.1f,\"repliesPerRead\":%.2f,\"failures\":0}\n",
      host, port, connections, inflight, payload, seconds, warmup, connect_ms, received, rate, mb, mean, p50, p99, p999,
      latency_max, cpu_percent, total / (window_reads > 0 ? window_reads : 1));
  } else {
    printf(
      "%d conn x %d in flight x %ld B to %s:%d, %.1f s: %.3f M msg/s, %.1f MB/s, latency p50 %.3f ms p99 %.3f ms "
      "p99.9 %.3f ms max %.3f ms, loadgen CPU %.1f%% of one core\n",
      connections, inflight, payload, host, port, seconds, rate / 1e6, mb, p50, p99, p999, latency_max, cpu_percent);
  }
  return 0;
}
