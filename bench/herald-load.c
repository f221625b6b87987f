/* herald-load — single-threaded epoll load client for Herald and nginx+nchan.
 *
 * Opens N subscribers (WebSocket or SSE) spread round-robin over C channels,
 * publishes over HTTP/1.1 keep-alive connections, and measures deliveries,
 * end-to-end latency (publish timestamp carried in the payload), connection
 * set-up time, and optionally the server's CPU time and RSS read from /proc.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---------- options ---------- */

enum target
{
  TARGET_HERALD,
  TARGET_NCHAN
};
enum transport
{
  TRANSPORT_WS,
  TRANSPORT_SSE
};

static struct
{
  enum target target;
  enum transport transport;
  char host[64];
  int port;
  int subscribers;
  int channels;
  double publish_rate;
  double duration;
  int payload_size;
  const char *api_key;
  bool connect_only;
  bool broadcast;
  bool deflate; /* ws: offer permessage-deflate, inflate RSV1 messages */
  int publishers;
  int pipeline;
  int connect_concurrency;
  double connect_timeout;
  double drain;
  double settle;
  long window;
  const char *channel_prefix;
  struct in_addr source_addrs[256];
  int n_source_addrs;
  pid_t server_pids[16];
  int n_server_pids;
  bool verbose;
} opt = {
  .target = TARGET_HERALD,
  .transport = TRANSPORT_WS,
  .host = "127.0.0.1",
  .port = 8080,
  .subscribers = 100,
  .channels = 1,
  .publish_rate = 0,
  .duration = 10,
  .payload_size = 100,
  .api_key = "benchkey",
  .publishers = 4,
  .pipeline = 1,
  .connect_concurrency = 256,
  .connect_timeout = 60,
  .drain = 2,
  .settle = 0.3,
  .window = 0,
  .channel_prefix = "bench-",
};

/* ---------- time, stats ---------- */

static inline uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Latency histogram: 1 µs buckets below 100 ms, 100 µs buckets up to 10 s,
 * then one overflow bucket. */
#define H_FINE 100000
#define H_COARSE 99000
#define H_BUCKETS (H_FINE + H_COARSE + 1)
static uint32_t *hist;
static uint64_t hist_count;
static uint64_t lat_max_us;

static void
hist_add (uint64_t lat_ns)
{
  uint64_t us = lat_ns / 1000;
  size_t b;

  if (us < H_FINE)
    b = us;
  else if (us < H_FINE + (uint64_t)H_COARSE * 100)
    b = H_FINE + (us - H_FINE) / 100;
  else
    b = H_BUCKETS - 1;
  hist[b]++;
  hist_count++;
  if (us > lat_max_us)
    lat_max_us = us;
}

static double
hist_pct_ms (double pct)
{
  uint64_t want, seen = 0;

  if (hist_count == 0)
    return 0;
  want = (uint64_t)(pct / 100.0 * (double)hist_count);
  if (want >= hist_count)
    want = hist_count - 1;
  for (size_t b = 0; b < H_BUCKETS; b++)
    {
      seen += hist[b];
      if (seen > want)
        {
          if (b < H_FINE)
            return (double)b / 1000.0;
          return (double)(H_FINE + (b - H_FINE) * 100) / 1000.0;
        }
    }
  return (double)lat_max_us / 1000.0;
}

static struct
{
  uint64_t deliveries;
  uint64_t expected; /* deliveries owed for messages published */
  uint64_t publishes_sent;
  uint64_t publishes_ok;
  uint64_t publish_errors;
  uint64_t errors;
  uint64_t disconnects;
  uint64_t connect_failures;
  uint64_t stalls;
  uint64_t pub_reconnects;
  int subs_ready;
  int subs_open;
  int subs_started;
  int pubs_ready;
} st;

/* ---------- /proc sampling ---------- */

static double
server_cpu_s (void)
{
  static long tck;
  double total = 0;

  if (!tck)
    tck = sysconf (_SC_CLK_TCK);
  for (int i = 0; i < opt.n_server_pids; i++)
    {
      char path[64], buf[1024];
      unsigned long long ut = 0, stime = 0;
      FILE *f;
      char *p;

      snprintf (path, sizeof path, "/proc/%d/stat", (int)opt.server_pids[i]);
      f = fopen (path, "r");
      if (!f)
        continue;
      if (!fgets (buf, sizeof buf, f))
        buf[0] = 0;
      fclose (f);
      p = strrchr (buf, ')');
      if (!p)
        continue;
      /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
       * majflt cmajflt utime(14) stime(15) */
      if (sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) == 2)
        total += (double)(ut + stime) / (double)tck;
    }
  return total;
}

static long
server_rss_kb (void)
{
  long total = 0;

  for (int i = 0; i < opt.n_server_pids; i++)
    {
      char path[64], line[256];
      FILE *f;

      snprintf (path, sizeof path, "/proc/%d/status", (int)opt.server_pids[i]);
      f = fopen (path, "r");
      if (!f)
        continue;
      while (fgets (line, sizeof line, f))
        if (strncmp (line, "VmRSS:", 6) == 0)
          total += strtol (line + 6, NULL, 10);
      fclose (f);
    }
  return total;
}

static double
self_cpu_s (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec
         + ru.ru_stime.tv_usec / 1e6;
}

/* ---------- connections ---------- */

enum kind
{
  KIND_SUB,
  KIND_PUB
};

enum state
{
  ST_CONNECTING,
  ST_HANDSHAKE,       /* request sent, waiting for response headers */
  ST_WAIT_CONNECTED,  /* herald ws: waiting for {"type":"connected"} */
  ST_WAIT_SUBSCRIBED, /* herald ws: waiting for {"type":"subscribed"} */
  ST_READY,
  ST_CLOSED
};

typedef struct conn
{
  int fd;
  uint8_t kind;
  uint8_t state;
  uint8_t chunked;     /* SSE body uses chunked transfer encoding */
  uint8_t chunk_state; /* 0 size line, 1 data, 2 CRLF after data */
  int idx;
  int channel;
  uint64_t received;
  size_t chunk_left;
  /* raw input remainder */
  char *in;
  uint32_t in_len, in_cap;
  /* SSE: decoded (de-chunked) partial line */
  char *line;
  uint32_t line_len, line_cap;
  /* pending output */
  char *out;
  uint32_t out_len, out_off, out_cap;
  /* publisher */
  int inflight;
  uint8_t close_after;           /* server said Connection: close */
  uint32_t owed_head, owed_tail; /* ring of deliveries owed per request */
  uint32_t *owed;
} conn;

static int epfd;
static conn *subs;
static conn *pubs;
static struct sockaddr_in server_addr;
static char scratch[1 << 16];
static char *padding;
static volatile sig_atomic_t stop_flag;
static uint64_t last_delivery_ns;
static int *channel_subs; /* ready subscribers per channel */
static int *sub_order;    /* for broadcast check */

static void
die (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  fprintf (stderr, "herald-load: ");
  vfprintf (stderr, fmt, ap);
  fprintf (stderr, "\n");
  va_end (ap);
  exit (2);
}

static void
vlog (const char *fmt, ...)
{
  va_list ap;

  if (!opt.verbose)
    return;
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  fputc ('\n', stderr);
  va_end (ap);
}

static void
buf_append (char **buf, uint32_t *len, uint32_t *cap, const char *data, size_t n)
{
  if (*len + n > *cap)
    {
      uint32_t nc = *cap ? *cap : 256;
      while (nc < *len + n)
        nc *= 2;
      *buf = realloc (*buf, nc);
      if (!*buf)
        die ("out of memory");
      *cap = nc;
    }
  memcpy (*buf + *len, data, n);
  *len += (uint32_t)n;
}

static void
ep_mod (conn *c, uint32_t events)
{
  struct epoll_event ev = { .events = events, .data.ptr = c };

  epoll_ctl (epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
conn_close (conn *c, bool counted_error)
{
  if (c->state == ST_CLOSED)
    return;
  if (c->kind == KIND_SUB)
    {
      if (c->state == ST_READY)
        {
          channel_subs[c->channel]--;
          st.subs_ready--;
          st.disconnects++;
        }
      st.subs_open--;
    }
  else if (c->state == ST_READY)
    st.pubs_ready--;
  if (counted_error)
    st.errors++;
  epoll_ctl (epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close (c->fd);
  c->fd = -1;
  c->state = ST_CLOSED;
  free (c->in);
  free (c->line);
  free (c->out);
  c->in = c->line = c->out = NULL;
  c->in_len = c->in_cap = c->line_len = c->line_cap = 0;
  c->out_len = c->out_off = c->out_cap = 0;
}

/* Write now; keep what the socket did not take and ask for EPOLLOUT. */
static void
conn_send (conn *c, const char *data, size_t n)
{
  if (c->out_len == c->out_off)
    {
      ssize_t w = send (c->fd, data, n, MSG_NOSIGNAL);
      if (w < 0)
        {
          if (errno != EAGAIN)
            {
              conn_close (c, true);
              return;
            }
          w = 0;
        }
      if ((size_t)w == n)
        return;
      data += w;
      n -= (size_t)w;
      c->out_len = c->out_off = 0;
    }
  buf_append (&c->out, &c->out_len, &c->out_cap, data, n);
  ep_mod (c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
}

static void
conn_flush (conn *c)
{
  while (c->out_off < c->out_len)
    {
      ssize_t w = send (c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
      if (w < 0)
        {
          if (errno == EAGAIN)
            return;
          conn_close (c, true);
          return;
        }
      c->out_off += (uint32_t)w;
    }
  c->out_len = c->out_off = 0;
  ep_mod (c, EPOLLIN | EPOLLRDHUP);
}

static int
conn_open (conn *c, int n)
{
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  struct epoll_event ev;

  if (fd < 0)
    {
      if (errno == EMFILE || errno == ENFILE)
        die ("socket: %s (raise ulimit -n)", strerror (errno));
      return -1;
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.n_source_addrs > 0)
    {
      struct sockaddr_in src = { .sin_family = AF_INET };
      src.sin_addr = opt.source_addrs[n % opt.n_source_addrs];
      setsockopt (fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind (fd, (struct sockaddr *)&src, sizeof src) < 0)
        {
          close (fd);
          return -1;
        }
    }
  if (connect (fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0 && errno != EINPROGRESS)
    {
      close (fd);
      return -1;
    }
  c->fd = fd;
  c->state = ST_CONNECTING;
  ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = c;
  epoll_ctl (epfd, EPOLL_CTL_ADD, fd, &ev);
  return 0;
}

/* ---------- small parsers ---------- */

/* Value of a JSON string member "key" in [p, p+n), copied into out. */
static bool
json_str (const char *p, size_t n, const char *key, char *out, size_t outsz)
{
  char pat[32];
  int pl = snprintf (pat, sizeof pat, "\"%s\"", key);
  const char *q = memmem (p, n, pat, (size_t)pl), *end = p + n;
  size_t i = 0;

  if (!q)
    return false;
  q += pl;
  while (q < end && (*q == ' ' || *q == ':'))
    q++;
  if (q >= end || *q != '"')
    return false;
  q++;
  while (q < end && *q != '"' && i + 1 < outsz)
    out[i++] = *q++;
  out[i] = 0;
  return true;
}

/* A delivered payload: count it and record latency from its "t" member. */
static void
delivery (conn *c, const char *p, size_t n)
{
  const char *q = memmem (p, n, "\"t\":", 4);
  uint64_t now = now_ns ();

  c->received++;
  st.deliveries++;
  last_delivery_ns = now;
  if (q)
    {
      uint64_t t = strtoull (q + 4, NULL, 10);
      if (t > 0 && t <= now)
        hist_add (now - t);
    }
}

/* Parse response head in [buf, buf+n). Returns header length or 0 if
 * incomplete; sets *status, *clen (-1 none), *chunked. */
static size_t
http_head (const char *buf, size_t n, int *status, long *clen, bool *chunked, bool *close_after)
{
  const char *end = memmem (buf, n, "\r\n\r\n", 4);
  const char *p;

  if (!end)
    return 0;
  *status = 0;
  *clen = -1;
  *chunked = false;
  if (close_after)
    *close_after = false;
  if (n > 12 && strncmp (buf, "HTTP/1.", 7) == 0)
    *status = atoi (buf + 9);
  for (p = memchr (buf, '\n', (size_t)(end - buf)); p && p < end;
       p = memchr (p, '\n', (size_t)(end - p)))
    {
      p++;
      if (strncasecmp (p, "content-length:", 15) == 0)
        *clen = strtol (p + 15, NULL, 10);
      else if (strncasecmp (p, "transfer-encoding:", 18) == 0)
        {
          const char *eol = memchr (p, '\r', (size_t)(end - p) + 1);
          if (eol && memmem (p, (size_t)(eol - p), "chunked", 7))
            *chunked = true;
        }
      else if (close_after && strncasecmp (p, "connection:", 11) == 0)
        {
          const char *eol = memchr (p, '\r', (size_t)(end - p) + 1);
          if (eol && memmem (p, (size_t)(eol - p), "close", 5))
            *close_after = true;
        }
    }
  return (size_t)(end - buf) + 4;
}

/* ---------- WebSocket ---------- */

static void
ws_send_text (conn *c, const char *text, size_t n)
{
  char frame[512];
  uint32_t mask;
  size_t h = 0;

  if (n > sizeof frame - 8)
    return;
  frame[h++] = (char)0x81;
  frame[h++] = (char)(0x80 | n);
  if (n >= 126)
    {
      frame[1] = (char)(0x80 | 126);
      frame[h++] = (char)(n >> 8);
      frame[h++] = (char)(n & 0xff);
    }
  mask = (uint32_t)random ();
  memcpy (frame + h, &mask, 4);
  for (size_t i = 0; i < n; i++)
    frame[h + 4 + i] = text[i] ^ ((char *)&mask)[i & 3];
  conn_send (c, frame, h + 4 + n);
}

static void
ws_send_control (conn *c, int opcode, const char *payload, size_t n)
{
  char frame[2 + 4 + 125];
  uint32_t mask = (uint32_t)random ();

  if (n > 125)
    n = 125;
  frame[0] = (char)(0x80 | opcode);
  frame[1] = (char)(0x80 | n);
  memcpy (frame + 2, &mask, 4);
  for (size_t i = 0; i < n; i++)
    frame[6 + i] = payload[i] ^ ((char *)&mask)[i & 3];
  conn_send (c, frame, 6 + n);
}

static void
sub_became_ready (conn *c)
{
  c->state = ST_READY;
  channel_subs[c->channel]++;
  st.subs_ready++;
}

static void
ws_text (conn *c, const char *p, size_t n)
{
  char type[32];

  if (opt.target == TARGET_NCHAN)
    {
      if (c->state == ST_READY)
        delivery (c, p, n);
      return;
    }
  if (!json_str (p, n, "type", type, sizeof type))
    {
      st.errors++;
      return;
    }
  if (strcmp (type, "message") == 0)
    {
      if (c->state == ST_READY)
        delivery (c, p, n);
    }
  else if (strcmp (type, "connected") == 0 && c->state == ST_WAIT_CONNECTED)
    {
      char req[300];
      int l = snprintf (req, sizeof req, "{\"type\":\"subscribe\",\"channel\":\"%s%d\"}",
                        opt.channel_prefix, c->channel);
      c->state = ST_WAIT_SUBSCRIBED;
      ws_send_text (c, req, (size_t)l);
    }
  else if (strcmp (type, "subscribed") == 0 && c->state == ST_WAIT_SUBSCRIBED)
    sub_became_ready (c);
  else if (strcmp (type, "ping") == 0)
    ws_send_text (c, "{\"type\":\"pong\"}", 15);
  else if (strcmp (type, "error") == 0)
    {
      st.errors++;
      vlog ("sub %d: error frame: %.*s", c->idx, (int)n, p);
    }
}

/* A permessage-deflate message (no context takeover: each one stands
 * alone) inflated into a static buffer; NULL on error. */
static const char *
ws_inflate (const char *p, size_t n, size_t *out_len)
{
  static z_stream z;
  static bool ready;
  static unsigned char out[1 << 20];
  static const unsigned char tail[4] = { 0x00, 0x00, 0xff, 0xff };
  int r;

  if (!ready)
    {
      if (inflateInit2 (&z, -15) != Z_OK)
        return NULL;
      ready = true;
    }
  inflateReset (&z);
  z.next_in = (unsigned char *)p;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = sizeof out;
  r = inflate (&z, Z_SYNC_FLUSH);
  if (r == Z_OK || r == Z_BUF_ERROR)
    {
      z.next_in = (unsigned char *)tail;
      z.avail_in = sizeof tail;
      r = inflate (&z, Z_SYNC_FLUSH);
    }
  if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
    return NULL;
  *out_len = sizeof out - z.avail_out;
  return (const char *)out;
}

/* Consume complete frames from buf; returns bytes consumed. */
static size_t
ws_parse (conn *c, const char *buf, size_t n)
{
  size_t off = 0;

  while (n - off >= 2 && c->state != ST_CLOSED)
    {
      const unsigned char *b = (const unsigned char *)buf + off;
      int opcode = b[0] & 0x0f;
      bool masked = b[1] & 0x80;
      uint64_t len = b[1] & 0x7f;
      size_t h = 2;

      if (len == 126)
        {
          if (n - off < 4)
            break;
          len = ((uint64_t)b[2] << 8) | b[3];
          h = 4;
        }
      else if (len == 127)
        {
          if (n - off < 10)
            break;
          len = 0;
          for (int i = 0; i < 8; i++)
            len = (len << 8) | b[2 + i];
          h = 10;
        }
      if (masked)
        h += 4; /* servers must not mask; tolerate by skipping the key */
      if (len > (1u << 26))
        {
          conn_close (c, true);
          break;
        }
      if (n - off < h + len)
        break;
      switch (opcode)
        {
        case 0x0: /* continuation: counted with the first fragment */
          break;
        case 0x1:
        case 0x2:
          if (b[0] & 0x40) /* RSV1: compressed */
            {
              size_t m;
              const char *text = ws_inflate (buf + off + h, (size_t)len, &m);
              if (text)
                ws_text (c, text, m);
              else
                st.errors++;
            }
          else
            ws_text (c, buf + off + h, (size_t)len);
          break;
        case 0x8:
          vlog ("sub %d: close frame", c->idx);
          conn_close (c, false);
          return n;
        case 0x9:
          ws_send_control (c, 0xA, buf + off + h, (size_t)len);
          break;
        default:
          break;
        }
      off += h + (size_t)len;
    }
  return off;
}

/* ---------- SSE ---------- */

static void
sse_line (conn *c, const char *l, size_t n)
{
  if (n && l[n - 1] == '\r')
    n--;
  if (n >= 5 && memcmp (l, "data:", 5) == 0)
    {
      const char *p = l + 5;
      size_t m = n - 5;
      if (opt.target == TARGET_HERALD)
        {
          char type[32];
          if (json_str (p, m, "type", type, sizeof type) && strcmp (type, "message") != 0)
            return;
        }
      delivery (c, p, m);
    }
}

static void
sse_bytes (conn *c, const char *p, size_t n)
{
  while (n > 0)
    {
      const char *nl = memchr (p, '\n', n);
      if (!nl)
        {
          buf_append (&c->line, &c->line_len, &c->line_cap, p, n);
          return;
        }
      if (c->line_len)
        {
          buf_append (&c->line, &c->line_len, &c->line_cap, p, (size_t)(nl - p));
          sse_line (c, c->line, c->line_len);
          c->line_len = 0;
        }
      else
        sse_line (c, p, (size_t)(nl - p));
      n -= (size_t)(nl - p) + 1;
      p = nl + 1;
    }
}

/* Consume body bytes, de-chunking when needed; returns bytes consumed. */
static size_t
sse_parse (conn *c, const char *buf, size_t n)
{
  size_t off = 0;

  if (!c->chunked)
    {
      sse_bytes (c, buf, n);
      return n;
    }
  while (off < n)
    {
      if (c->chunk_state == 0)
        {
          const char *nl = memchr (buf + off, '\n', n - off);
          if (!nl)
            break;
          c->chunk_left = strtoul (buf + off, NULL, 16);
          off = (size_t)(nl - buf) + 1;
          if (c->chunk_left == 0)
            {
              conn_close (c, false); /* end of stream */
              return n;
            }
          c->chunk_state = 1;
        }
      else if (c->chunk_state == 1)
        {
          size_t take = n - off < c->chunk_left ? n - off : c->chunk_left;
          sse_bytes (c, buf + off, take);
          off += take;
          c->chunk_left -= take;
          if (c->chunk_left == 0)
            c->chunk_state = 2;
        }
      else
        {
          const char *nl = memchr (buf + off, '\n', n - off);
          if (!nl)
            break;
          off = (size_t)(nl - buf) + 1;
          c->chunk_state = 0;
        }
    }
  return off;
}

/* ---------- subscriber ---------- */

static void
sub_send_request (conn *c)
{
  char req[1024], key[25];
  unsigned char raw[16];
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const char *ext;
  int l;

  if (opt.transport == TRANSPORT_WS)
    {
      int k = 0;
      if (getrandom (raw, sizeof raw, 0) != sizeof raw)
        for (int i = 0; i < 16; i++)
          raw[i] = (unsigned char)random ();
      for (int i = 0; i < 15; i += 3)
        {
          uint32_t v = ((uint32_t)raw[i] << 16) | ((uint32_t)raw[i + 1] << 8) | raw[i + 2];
          key[k++] = b64[(v >> 18) & 63];
          key[k++] = b64[(v >> 12) & 63];
          key[k++] = b64[(v >> 6) & 63];
          key[k++] = b64[v & 63];
        }
      key[k++] = b64[raw[15] >> 2];
      key[k++] = b64[(raw[15] & 3) << 4];
      key[k++] = '=';
      key[k++] = '=';
      key[k] = 0;
      ext = opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                          "client_no_context_takeover; server_no_context_takeover\r\n"
                        : "";
      if (opt.target == TARGET_HERALD)
        l = snprintf (req, sizeof req,
                      "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n%s\r\n",
                      opt.host, opt.port, key, ext);
      else
        l = snprintf (req, sizeof req,
                      "GET /sub/%s%d HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                      "Sec-WebSocket-Version: 13\r\n%s\r\n",
                      opt.channel_prefix, c->channel, opt.host, opt.port, key, ext);
    }
  else if (opt.target == TARGET_HERALD)
    l = snprintf (req, sizeof req,
                  "GET /events?channel=%s%d HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                  opt.channel_prefix, c->channel, opt.host, opt.port);
  else
    l = snprintf (req, sizeof req,
                  "GET /sub/%s%d HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                  opt.channel_prefix, c->channel, opt.host, opt.port);
  c->state = ST_HANDSHAKE;
  conn_send (c, req, (size_t)l);
}

/* Parse the subscriber's input (buf may be scratch or c->in); returns used. */
static size_t
sub_parse (conn *c, const char *buf, size_t n)
{
  size_t off = 0;

  if (c->state == ST_HANDSHAKE)
    {
      int status;
      long clen;
      bool chunked;
      size_t h = http_head (buf, n, &status, &clen, &chunked, NULL);

      if (!h)
        {
          if (n > 16384)
            conn_close (c, true);
          return 0;
        }
      if ((opt.transport == TRANSPORT_WS && status != 101)
          || (opt.transport == TRANSPORT_SSE && status != 200))
        {
          vlog ("sub %d: handshake status %d", c->idx, status);
          st.connect_failures++;
          conn_close (c, true);
          return n;
        }
      off = h;
      c->chunked = chunked;
      if (opt.transport == TRANSPORT_WS && opt.target == TARGET_HERALD)
        c->state = ST_WAIT_CONNECTED;
      else
        sub_became_ready (c);
    }
  if (c->state == ST_CLOSED)
    return n;
  if (opt.transport == TRANSPORT_WS)
    off += ws_parse (c, buf + off, n - off);
  else
    off += sse_parse (c, buf + off, n - off);
  return off;
}

static void
sub_readable (conn *c)
{
  for (;;)
    {
      ssize_t r = recv (c->fd, scratch, sizeof scratch, 0);
      size_t used;

      if (r == 0)
        {
          vlog ("sub %d: EOF", c->idx);
          if (c->state != ST_READY)
            st.connect_failures++;
          conn_close (c, c->state != ST_READY);
          return;
        }
      if (r < 0)
        {
          if (errno == EAGAIN)
            return;
          if (c->state != ST_READY)
            st.connect_failures++;
          conn_close (c, true);
          return;
        }
      if (c->in_len == 0)
        {
          used = sub_parse (c, scratch, (size_t)r);
          if (c->state != ST_CLOSED && used < (size_t)r)
            buf_append (&c->in, &c->in_len, &c->in_cap, scratch + used, (size_t)r - used);
        }
      else
        {
          buf_append (&c->in, &c->in_len, &c->in_cap, scratch, (size_t)r);
          used = sub_parse (c, c->in, c->in_len);
          if (c->state != ST_CLOSED)
            {
              memmove (c->in, c->in + used, c->in_len - used);
              c->in_len -= (uint32_t)used;
              if (c->in_len == 0 && c->in_cap > 4096)
                {
                  free (c->in);
                  c->in = NULL;
                  c->in_cap = 0;
                }
            }
        }
      if (c->state == ST_CLOSED || (size_t)r < sizeof scratch)
        return;
    }
}

/* ---------- publisher ---------- */

/* Requests that failed will never be delivered: stop waiting for them. */
static void
owed_forget (conn *c, int count)
{
  for (int i = 0; i < count; i++)
    {
      uint32_t owe = c->owed[(c->owed_head + (uint32_t)i) % (uint32_t)opt.pipeline];
      st.expected -= owe < st.expected ? owe : st.expected;
    }
}

static uint64_t pub_seq;
static int pub_rr_channel;

static void
pub_send_one (conn *c)
{
  char body[8192], req[9000];
  int bl, rl, ch = pub_rr_channel++ % opt.channels;
  uint64_t t = now_ns ();
  uint64_t seq = pub_seq++;
  int pad = opt.payload_size - 40;
  const char *path;

  if (pad < 0)
    pad = 0;
  if (pad > 7000)
    pad = 7000;
  if (opt.target == TARGET_HERALD)
    {
      if (opt.broadcast)
        bl = snprintf (body, sizeof body,
                       "{\"data\":{\"t\":%" PRIu64 ",\"s\":%" PRIu64 ",\"p\":\"%.*s\"}}", t, seq,
                       pad, padding);
      else
        bl = snprintf (body, sizeof body,
                       "{\"channel\":\"%s%d\",\"data\":{\"t\":%" PRIu64 ",\"s\":%" PRIu64
                       ",\"p\":\"%.*s\"}}",
                       opt.channel_prefix, ch, t, seq, pad, padding);
      path = opt.broadcast ? "/api/broadcast" : "/api/publish";
      rl = snprintf (req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     path, opt.host, opt.port, opt.api_key, bl, body);
    }
  else
    {
      if (opt.broadcast)
        ch = 0;
      bl = snprintf (body, sizeof body, "{\"t\":%" PRIu64 ",\"s\":%" PRIu64 ",\"p\":\"%.*s\"}", t,
                     seq, pad, padding);
      rl = snprintf (req, sizeof req,
                     "POST /pub/%s%d HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     opt.channel_prefix, ch, opt.host, opt.port, bl, body);
    }
  if (opt.broadcast)
    st.expected += (uint64_t)st.subs_ready;
  else
    st.expected += (uint64_t)channel_subs[ch];
  st.publishes_sent++;
  c->inflight++;
  conn_send (c, req, (size_t)rl);
}

/* Returns bytes consumed from responses. */
static size_t
pub_parse (conn *c, const char *buf, size_t n)
{
  size_t off = 0;

  while (off < n && c->inflight > 0)
    {
      int status;
      long clen;
      bool chunked;
      bool close_after;
      size_t h = http_head (buf + off, n - off, &status, &clen, &chunked, &close_after);
      size_t body;

      if (!h)
        break;
      if (chunked)
        {
          /* walk chunks until the 0-size one */
          size_t p = off + h;
          bool done = false;
          for (;;)
            {
              const char *nl = memchr (buf + p, '\n', n - p);
              unsigned long sz;
              if (!nl)
                break;
              sz = strtoul (buf + p, NULL, 16);
              p = (size_t)(nl - buf) + 1;
              if (sz == 0)
                {
                  const char *e = memmem (buf + p - 2, n - p + 2, "\r\n\r\n", 4);
                  if (!e && n - p >= 2 && buf[p] == '\r')
                    e = buf + p - 2;
                  if (!e)
                    break;
                  p = (size_t)(e - buf) + 4;
                  done = true;
                  break;
                }
              if (n - p < sz + 2)
                break;
              p += sz + 2;
            }
          if (!done)
            break;
          body = p - off - h;
        }
      else
        {
          body = clen > 0 ? (size_t)clen : 0;
          if (n - off < h + body)
            break;
        }
      if (status >= 200 && status < 300)
        st.publishes_ok++;
      else
        {
          st.publish_errors++;
          owed_forget (c, 1);
          vlog ("publish status %d: %.*s", status, (int)(h + body), buf + off);
        }
      c->inflight--;
      c->owed_head++;
      off += h + body;
      if (close_after)
        {
          c->close_after = 1;
          break;
        }
    }
  return off;
}

/* The server closed (or will close) the keep-alive connection: requests
 * still in flight are lost; open a new connection. */
static void
pub_reconnect (conn *c)
{
  if (c->inflight > 0)
    {
      st.publish_errors += (uint64_t)c->inflight;
      owed_forget (c, c->inflight);
    }
  conn_close (c, false);
  c->inflight = 0;
  c->owed_head = c->owed_tail = 0;
  c->close_after = 0;
  st.pub_reconnects++;
  if (conn_open (c, c->idx) < 0)
    st.errors++;
}

static void
pub_readable (conn *c)
{
  for (;;)
    {
      ssize_t r = recv (c->fd, scratch, sizeof scratch, 0);
      size_t used;

      if (r <= 0)
        {
          if (r < 0 && errno == EAGAIN)
            return;
          vlog ("publisher %d closed by server with %d in flight", c->idx, c->inflight);
          pub_reconnect (c);
          return;
        }
      buf_append (&c->in, &c->in_len, &c->in_cap, scratch, (size_t)r);
      used = pub_parse (c, c->in, c->in_len);
      memmove (c->in, c->in + used, c->in_len - used);
      c->in_len -= (uint32_t)used;
      if (c->close_after)
        {
          pub_reconnect (c);
          return;
        }
      if ((size_t)r < sizeof scratch)
        return;
    }
}

/* ---------- main loop ---------- */

static void
on_signal (int sig)
{
  stop_flag = 1;
}

static void
parse_url (const char *url)
{
  const char *p = url;
  const char *colon;
  size_t hl;

  if (strncmp (p, "http://", 7) == 0)
    p += 7;
  colon = strchr (p, ':');
  if (!colon)
    die ("--url needs http://HOST:PORT");
  hl = (size_t)(colon - p);
  if (hl >= sizeof opt.host)
    die ("host too long");
  memcpy (opt.host, p, hl);
  opt.host[hl] = 0;
  opt.port = atoi (colon + 1);
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons ((uint16_t)opt.port);
  if (inet_pton (AF_INET, opt.host, &server_addr.sin_addr) != 1)
    die ("--url host must be an IPv4 address");
}

static void
usage (void)
{
  puts ("usage: herald-load [options]\n"
        "  --target herald|nchan      server kind (herald)\n"
        "  --url http://HOST:PORT     server address (http://127.0.0.1:8080)\n"
        "  --transport ws|sse         subscriber transport (ws)\n"
        "  --subscribers N            subscriber connections (100)\n"
        "  --channels C               channels, subscribers spread round-robin (1)\n"
        "  --publish-rate R           messages/s in total, 0 = flat out (0)\n"
        "  --duration S               measured publishing window, seconds (10)\n"
        "  --payload-size B           approximate payload bytes (100)\n"
        "  --api-key K                herald API key (benchkey)\n"
        "  --broadcast                herald: POST /api/broadcast; nchan: one channel\n"
        "  --deflate                  ws: offer permessage-deflate (no context takeover)\n"
        "  --connect-only             open the subscribers, print 'ready', hold for --duration\n"
        "  --source-addrs A,B,...     bind connections to these source IPv4 addresses\n"
        "  --publishers P             publisher connections (4)\n"
        "  --pipeline D               requests in flight per publisher connection (1)\n"
        "  --window W                 flat out: max deliveries owed before publishing pauses\n"
        "                             (default 4 x subscribers)\n"
        "  --connect-concurrency K    handshakes in flight while connecting (256)\n"
        "  --connect-timeout S        give up waiting for subscribers after S (60)\n"
        "  --drain S                  wait for late deliveries after publishing (2)\n"
        "  --server-pid PID[,PID...]  sample these processes' CPU and RSS from /proc\n"
        "  --channel-prefix P         channel name prefix (bench-)\n"
        "  --verbose");
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "target", required_argument, NULL, 't' },
    { "url", required_argument, NULL, 'u' },
    { "transport", required_argument, NULL, 'T' },
    { "subscribers", required_argument, NULL, 'n' },
    { "channels", required_argument, NULL, 'c' },
    { "publish-rate", required_argument, NULL, 'r' },
    { "duration", required_argument, NULL, 'd' },
    { "payload-size", required_argument, NULL, 'p' },
    { "api-key", required_argument, NULL, 'k' },
    { "connect-only", no_argument, NULL, 'C' },
    { "broadcast", no_argument, NULL, 'B' },
    { "deflate", no_argument, NULL, 'Z' },
    { "source-addrs", required_argument, NULL, 's' },
    { "publishers", required_argument, NULL, 'P' },
    { "pipeline", required_argument, NULL, 'D' },
    { "window", required_argument, NULL, 'w' },
    { "connect-concurrency", required_argument, NULL, 'K' },
    { "connect-timeout", required_argument, NULL, 'O' },
    { "drain", required_argument, NULL, 'R' },
    { "server-pid", required_argument, NULL, 'S' },
    { "channel-prefix", required_argument, NULL, 'X' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int o;
  struct epoll_event *events;
  int max_events = 1024;
  uint64_t t_connect_start, t_connected = 0, t_run_start = 0, t_run_end = 0, t_end = 0;
  double cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0;
  long rss_base = 0, rss_loaded = 0;
  int next_sub = 0;
  enum
  {
    PH_CONNECT,
    PH_SETTLE,
    PH_RUN,
    PH_DRAIN,
    PH_HOLD,
    PH_DONE
  } phase
      = PH_CONNECT;
  uint64_t phase_t = 0;
  uint64_t publish_credit_t0 = 0;
  uint64_t last_progress_check = 0, last_progress_deliveries = 0;
  int complete = 0;

  parse_url ("http://127.0.0.1:8080");
  while ((o = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
    {
      switch (o)
        {
        case 't':
          if (strcmp (optarg, "herald") == 0)
            opt.target = TARGET_HERALD;
          else if (strcmp (optarg, "nchan") == 0)
            opt.target = TARGET_NCHAN;
          else
            die ("--target herald|nchan");
          break;
        case 'u':
          parse_url (optarg);
          break;
        case 'T':
          if (strcmp (optarg, "ws") == 0)
            opt.transport = TRANSPORT_WS;
          else if (strcmp (optarg, "sse") == 0)
            opt.transport = TRANSPORT_SSE;
          else
            die ("--transport ws|sse");
          break;
        case 'n':
          opt.subscribers = atoi (optarg);
          break;
        case 'c':
          opt.channels = atoi (optarg);
          break;
        case 'r':
          opt.publish_rate = atof (optarg);
          break;
        case 'd':
          opt.duration = atof (optarg);
          break;
        case 'p':
          opt.payload_size = atoi (optarg);
          break;
        case 'k':
          opt.api_key = optarg;
          break;
        case 'C':
          opt.connect_only = true;
          break;
        case 'B':
          opt.broadcast = true;
          break;
        case 'Z':
          opt.deflate = true;
          break;
        case 's':
          {
            char *dup = strdup (optarg), *save = NULL;
            for (char *tok = strtok_r (dup, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
              {
                if (opt.n_source_addrs >= 256)
                  die ("too many source addresses");
                if (inet_pton (AF_INET, tok, &opt.source_addrs[opt.n_source_addrs++]) != 1)
                  die ("bad source address %s", tok);
              }
            free (dup);
          }
          break;
        case 'P':
          opt.publishers = atoi (optarg);
          break;
        case 'D':
          opt.pipeline = atoi (optarg);
          break;
        case 'w':
          opt.window = atol (optarg);
          break;
        case 'K':
          opt.connect_concurrency = atoi (optarg);
          break;
        case 'O':
          opt.connect_timeout = atof (optarg);
          break;
        case 'R':
          opt.drain = atof (optarg);
          break;
        case 'S':
          {
            char *dup = strdup (optarg), *save = NULL;
            for (char *tok = strtok_r (dup, ",", &save); tok; tok = strtok_r (NULL, ",", &save))
              if (opt.n_server_pids < 16)
                opt.server_pids[opt.n_server_pids++] = atoi (tok);
            free (dup);
          }
          break;
        case 'X':
          opt.channel_prefix = optarg;
          break;
        case 'v':
          opt.verbose = true;
          break;
        case 'h':
          usage ();
          return 0;
        default:
          usage ();
          return 2;
        }
    }
  if (opt.subscribers < 0 || opt.channels < 1 || opt.publishers < 1 || opt.pipeline < 1)
    die ("bad counts");
  if (opt.broadcast && opt.target == TARGET_NCHAN)
    opt.channels = 1;
  if (opt.window <= 0)
    opt.window = 4L * (opt.subscribers > 0 ? opt.subscribers : 1);

  {
    struct rlimit rl;
    getrlimit (RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit (RLIMIT_NOFILE, &rl);
    if ((rlim_t)opt.subscribers + (rlim_t)opt.publishers + 16 > rl.rlim_cur)
      fprintf (stderr, "herald-load: warning: fd limit %lu is below %d connections\n",
               (unsigned long)rl.rlim_cur, opt.subscribers + opt.publishers);
  }
  signal (SIGPIPE, SIG_IGN);
  signal (SIGINT, on_signal);
  signal (SIGTERM, on_signal);
  srandom ((unsigned)now_ns ());
  setvbuf (stdout, NULL, _IOLBF, 0);

  hist = calloc (H_BUCKETS, sizeof *hist);
  subs = calloc ((size_t)opt.subscribers + 1, sizeof *subs);
  pubs = calloc ((size_t)opt.publishers, sizeof *pubs);
  channel_subs = calloc ((size_t)opt.channels, sizeof *channel_subs);
  padding = malloc (8192);
  sub_order = NULL;
  if (!hist || !subs || !pubs || !channel_subs || !padding)
    die ("out of memory");
  for (int i = 0; i < 8192; i++)
    padding[i] = (char)('a' + i % 26);
  events = calloc ((size_t)max_events, sizeof *events);
  epfd = epoll_create1 (EPOLL_CLOEXEC);

  for (int i = 0; i < opt.subscribers; i++)
    {
      subs[i].fd = -1;
      subs[i].kind = KIND_SUB;
      subs[i].idx = i;
      subs[i].channel = i % opt.channels;
      subs[i].state = ST_CLOSED;
    }
  for (int i = 0; i < opt.publishers; i++)
    {
      pubs[i].fd = -1;
      pubs[i].kind = KIND_PUB;
      pubs[i].idx = i;
      pubs[i].state = ST_CLOSED;
      pubs[i].owed = calloc ((size_t)opt.pipeline, sizeof (uint32_t));
    }

  if (opt.n_server_pids)
    rss_base = server_rss_kb ();
  t_connect_start = now_ns ();
  if (!opt.connect_only)
    for (int i = 0; i < opt.publishers; i++)
      if (conn_open (&pubs[i], i) < 0)
        die ("cannot connect publisher: %s", strerror (errno));

  while (phase != PH_DONE)
    {
      uint64_t now = now_ns ();
      int timeout = 50, n;

      /* start more subscriber connections, bounded by concurrency */
      if (phase == PH_CONNECT)
        {
          int pending = st.subs_open - st.subs_ready;
          while (next_sub < opt.subscribers && pending < opt.connect_concurrency)
            {
              conn *c = &subs[next_sub];
              if (conn_open (c, next_sub) == 0)
                {
                  st.subs_open++;
                  pending++;
                }
              else
                {
                  st.connect_failures++;
                  st.errors++;
                }
              st.subs_started++;
              next_sub++;
            }
          if (next_sub >= opt.subscribers && st.subs_open == st.subs_ready
              && (opt.connect_only || st.pubs_ready == opt.publishers))
            {
              t_connected = now;
              phase = PH_SETTLE;
              phase_t = now;
              fprintf (stderr, "herald-load: %d/%d subscribers ready in %.3f s\n", st.subs_ready,
                       opt.subscribers, (now - t_connect_start) / 1e9);
            }
          else if (now - t_connect_start > (uint64_t)(opt.connect_timeout * 1e9))
            {
              t_connected = now;
              phase = PH_SETTLE;
              phase_t = now;
              fprintf (stderr, "herald-load: connect timeout: %d/%d subscribers ready\n",
                       st.subs_ready, opt.subscribers);
            }
        }
      else if (phase == PH_SETTLE
               && now - phase_t >= (uint64_t)((opt.connect_only ? 1.0 : opt.settle) * 1e9))
        {
          if (opt.connect_only)
            {
              rss_loaded = server_rss_kb ();
              printf ("ready %d connect_s=%.3f\n", st.subs_ready,
                      (t_connected - t_connect_start) / 1e9);
              phase = PH_HOLD;
            }
          else
            {
              phase = PH_RUN;
              st.deliveries = 0;
              st.expected = 0;
              memset (hist, 0, H_BUCKETS * sizeof *hist);
              hist_count = 0;
              lat_max_us = 0;
              for (int i = 0; i < opt.subscribers; i++)
                subs[i].received = 0;
            }
          phase_t = now;
          publish_credit_t0 = now;
          t_run_start = now;
          last_progress_check = now;
          last_progress_deliveries = 0;
          cpu0 = server_cpu_s ();
          self0 = self_cpu_s ();
        }
      else if (phase == PH_RUN && now - phase_t >= (uint64_t)(opt.duration * 1e9))
        {
          t_run_end = now;
          phase = PH_DRAIN;
          phase_t = now;
        }
      else if (phase == PH_DRAIN)
        {
          bool all_in = st.deliveries >= st.expected;
          for (int i = 0; i < opt.publishers; i++)
            if (pubs[i].inflight)
              all_in = false;
          if (all_in || now - phase_t >= (uint64_t)(opt.drain * 1e9))
            {
              t_end = now;
              phase = PH_DONE;
            }
        }
      else if (phase == PH_HOLD && now - phase_t >= (uint64_t)(opt.duration * 1e9))
        {
          t_end = now;
          phase = PH_DONE;
        }
      if (stop_flag && phase != PH_DONE)
        {
          if (!t_run_start)
            t_run_start = now;
          if (!t_run_end)
            t_run_end = now;
          t_end = now;
          phase = PH_DONE;
        }
      if (phase == PH_DONE)
        break;

      /* publishing */
      if (phase == PH_RUN)
        {
          uint64_t allowed = UINT64_MAX;
          bool window_full;

          if (opt.publish_rate > 0)
            allowed = (uint64_t)((double)(now - publish_credit_t0) / 1e9 * opt.publish_rate) + 1;
          /* flat out: end-to-end window so queues stay bounded on both sides */
          window_full = opt.publish_rate <= 0 && st.subs_ready > 0 && st.expected > st.deliveries
                        && st.expected - st.deliveries >= (uint64_t)opt.window;
          if (window_full && now - last_progress_check > 1000000000ull)
            {
              if (st.deliveries == last_progress_deliveries)
                {
                  st.stalls++; /* deliveries lost: forget what is owed */
                  st.expected = st.deliveries;
                  window_full = false;
                }
              last_progress_check = now;
              last_progress_deliveries = st.deliveries;
            }
          for (int i = 0; i < opt.publishers && !window_full && st.publishes_sent < allowed; i++)
            {
              conn *c = &pubs[i];
              while (c->state == ST_READY && c->inflight < opt.pipeline
                     && st.publishes_sent < allowed && !window_full)
                {
                  pub_send_one (c);
                  window_full = opt.publish_rate <= 0 && st.subs_ready > 0
                                && st.expected > st.deliveries
                                && st.expected - st.deliveries >= (uint64_t)opt.window;
                }
            }
          if (opt.publish_rate > 0)
            timeout = 1;
          else
            timeout = 10;
        }

      n = epoll_wait (epfd, events, max_events, timeout);
      if (n < 0 && errno != EINTR)
        die ("epoll_wait: %s", strerror (errno));
      for (int i = 0; i < n; i++)
        {
          conn *c = events[i].data.ptr;
          uint32_t ev = events[i].events;

          if (c->state == ST_CLOSED)
            continue;
          if (c->state == ST_CONNECTING && !(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            continue; /* stale event for a connection reopened in this batch */
          if (c->state == ST_CONNECTING)
            {
              int err = 0;
              socklen_t l = sizeof err;
              getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
              if (err || (ev & (EPOLLERR | EPOLLHUP)))
                {
                  vlog ("%s %d: connect: %s", c->kind == KIND_SUB ? "sub" : "pub", c->idx,
                        strerror (err));
                  if (c->kind == KIND_SUB)
                    st.connect_failures++;
                  conn_close (c, true);
                  continue;
                }
              ep_mod (c, EPOLLIN | EPOLLRDHUP);
              if (c->kind == KIND_SUB)
                sub_send_request (c);
              else
                {
                  c->state = ST_READY;
                  st.pubs_ready++;
                }
              continue;
            }
          if ((ev & EPOLLOUT) && c->out_len > c->out_off)
            conn_flush (c);
          if (c->state == ST_CLOSED)
            continue;
          if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            {
              if (c->kind == KIND_SUB)
                sub_readable (c);
              else
                pub_readable (c);
            }
        }
    }

  cpu1 = server_cpu_s ();
  self1 = self_cpu_s ();
  if (!t_end)
    t_end = now_ns ();

  if (opt.broadcast || opt.channels == 1)
    {
      /* every subscriber still connected should have every message */
      uint64_t want = st.publishes_ok;
      for (int i = 0; i < opt.subscribers; i++)
        if (subs[i].received >= want && want > 0)
          complete++;
    }

  {
    double run_s = t_run_end > t_run_start ? (t_run_end - t_run_start) / 1e9 : 0;
    double win_s = t_end > t_run_start ? (t_end - t_run_start) / 1e9 : 0;
    double scpu = cpu1 - cpu0;
    double ccpu = self1 - self0;

    printf ("RESULT target=%s transport=%s subscribers=%d channels=%d connected=%d"
            " connect_s=%.3f deliveries=%" PRIu64 " expected=%" PRIu64 " publishes=%" PRIu64
            " publish_errors=%" PRIu64 " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
            " errors=%" PRIu64 " connect_failures=%" PRIu64 " disconnects=%" PRIu64
            " stalls=%" PRIu64 " pub_reconnects=%" PRIu64
            " complete=%d duration_s=%.3f window_s=%.3f",
            opt.target == TARGET_HERALD ? "herald" : "nchan",
            opt.transport == TRANSPORT_WS ? "ws" : "sse", opt.subscribers, opt.channels,
            st.subs_ready, (t_connected - t_connect_start) / 1e9, st.deliveries, st.expected,
            st.publishes_ok, st.publish_errors, hist_pct_ms (50), hist_pct_ms (90),
            hist_pct_ms (99), lat_max_us / 1000.0, st.errors, st.connect_failures, st.disconnects,
            st.stalls, st.pub_reconnects, complete, run_s, win_s);
    printf (" deliveries_per_s=%.0f publishes_per_s=%.0f client_cpu_s=%.3f client_cpu_pct=%.1f",
            win_s > 0 ? st.deliveries / win_s : 0, win_s > 0 ? st.publishes_ok / win_s : 0, ccpu,
            win_s > 0 ? 100 * ccpu / win_s : 0);
    if (opt.n_server_pids)
      {
        printf (" server_cpu_s=%.3f server_cpu_pct=%.1f deliveries_per_cpu_s=%.0f"
                " publishes_per_cpu_s=%.0f rss_base_kb=%ld rss_kb=%ld",
                scpu, win_s > 0 ? 100 * scpu / win_s : 0, scpu > 0 ? st.deliveries / scpu : 0,
                scpu > 0 ? st.publishes_ok / scpu : 0, rss_base,
                opt.connect_only ? rss_loaded : server_rss_kb ());
        if (opt.connect_only && st.subs_ready > 0)
          printf (" rss_per_conn_b=%.0f", (double)(rss_loaded - rss_base) * 1024.0 / st.subs_ready);
      }
    printf ("\n");
  }
  return 0;
}
