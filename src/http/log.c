/*
 * log.c — the access log: one JSON object per line and per request (issue 3
 * section 6), joined to the response by its request id (SECURITY.md rule
 * 15: operators get the full verdict detail here).
 *
 * Never logged: tokens, secrets, passwords, the Authorization header, the
 * request URI (its query could carry anything), cookies or bodies. A token appears
 * only as its fingerprint (first 8 hex digits of its SHA-256).
 *
 * Each line is built in a stack buffer, then appended whole to one shared
 * buffer under a lock; the buffer goes to the file descriptor with write(2)
 * only ever at a line boundary: when the next line would not fit, every
 * 100 ms from a small flusher thread, and at stop. So the file only ever
 * grows by whole lines, and a kill -9 loses at most the last 100 ms of
 * lines, never leaves half of one (stdio would write a full buffer
 * wherever it ends, mid-line). No write(2) per request: that would cost
 * more than validating the token.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/internal.h"

/* Fixed fields about 300 bytes, client id and user 64 each and detail 384 bytes even if
 * every byte were escaped as \\u00XX: under 3.2 KiB. */
#define LOG_LINE_MAX 4096u
#define FLUSH_EVERY_MS 100
/* What the shared buffer holds between flushes: a hundred-odd lines. */
#define LOG_BUF_MAX (64u * 1024u)

/* RFC 3339 UTC with milliseconds; the seconds part is cached per thread. */
static void now_rfc3339(char out[32])
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    int ms = (int)(ts.tv_nsec / 1000000L) % 1000;
    memcpy(out, cached, 19);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

/* Writes the buffered lines; with log_lock held. A write error (a full
 * disk) drops what was buffered: the request path never waits on it. */
static void flush_locked(struct tkh_server *s)
{
    size_t off = 0;
    while (off < s->log_len) {
        ssize_t w = write(s->log_fd, s->log_buf + off, s->log_len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            atomic_fetch_add_explicit(&s->log_dropped, 1, memory_order_relaxed);
            break;
        }
        off += (size_t)w;
    }
    s->log_len = 0;
}

static void write_line(struct tkh_server *s, srv_buf *b, const char *rid)
{
    if (b->overflow) {
        /* cannot happen with LOG_LINE_MAX (every field is bounded); never
         * write a cut line that would not parse */
        srv_buf_fixed(b, b->p, b->cap);
        srv_buf_printf(b, "{\"rid\":\"%s\",\"truncated\":true}", rid);
    }
    srv_buf_putc(b, '\n');
    pthread_mutex_lock(&s->log_lock);
    if (s->log_len + b->len > LOG_BUF_MAX) {
        flush_locked(s);
    }
    memcpy(s->log_buf + s->log_len, b->p, b->len);
    s->log_len += b->len;
    pthread_mutex_unlock(&s->log_lock);
}

void srv_log_request(struct tkh_server *s, const srv_conn *st, uint64_t us)
{
    char mem[LOG_LINE_MAX];
    char ts[32];
    srv_buf b;
    srv_buf_fixed(&b, mem, sizeof mem);
    now_rfc3339(ts);
    /* Plain appends, not printf: this runs once per request. Every value
     * put unescaped here is ours (time, request id, method and route
     * names, numbers); the rest goes through srv_buf_json_str. */
    srv_buf_puts(&b, "{\"time\":\"");
    srv_buf_puts(&b, ts);
    srv_buf_puts(&b, "\",\"rid\":\"");
    srv_buf_puts(&b, st->rid);
    srv_buf_puts(&b, "\",\"ip\":");
    srv_buf_json_str(&b, st->ip, strlen(st->ip));
    if (strcmp(st->ip, st->peer_text) != 0) { /* named by a trusted proxy */
        srv_buf_puts(&b, ",\"peer\":");
        srv_buf_json_str(&b, st->peer_text, strlen(st->peer_text));
    }
    srv_buf_puts(&b, ",\"method\":\"");
    srv_buf_puts(&b, st->method);
    srv_buf_puts(&b, "\",\"route\":\"");
    srv_buf_puts(&b, srv_route_name(st->route));
    srv_buf_puts(&b, st->admin ? "\",\"listener\":\"admin\",\"status\":" : "\",\"status\":");
    srv_buf_u64(&b, st->status);
    srv_buf_puts(&b, ",\"latency_us\":");
    srv_buf_u64(&b, us);
    if (st->client_id[0] != '\0') {
        srv_buf_puts(&b, ",\"client_id\":");
        srv_buf_json_str(&b, st->client_id, strlen(st->client_id));
    }
    if (st->user[0] != '\0') {
        srv_buf_puts(&b, ",\"user\":");
        srv_buf_json_str(&b, st->user, strlen(st->user));
    }
    if (st->reason >= 0) {
        srv_buf_puts(&b, ",\"reason\":\"");
        srv_buf_puts(&b, tk_reason_code((tk_reason)st->reason));
        srv_buf_putc(&b, '"');
    }
    if (st->fp[0] != '\0') {
        srv_buf_puts(&b, ",\"token_fp\":\"");
        srv_buf_puts(&b, st->fp);
        srv_buf_putc(&b, '"');
    }
    if (st->error != NULL) {
        srv_buf_puts(&b, ",\"error\":");
        srv_buf_json_str(&b, st->error, strlen(st->error));
    }
    if (st->detail[0] != '\0') {
        srv_buf_puts(&b, ",\"detail\":");
        srv_buf_json_str(&b, st->detail, strnlen(st->detail, sizeof st->detail));
    }
    srv_buf_putc(&b, '}');
    write_line(s, &b, st->rid);
}

void srv_log_event(struct tkh_server *s, const char *level, const char *msg)
{
    char mem[LOG_LINE_MAX];
    char ts[32];
    srv_buf b;
    srv_buf_fixed(&b, mem, sizeof mem);
    now_rfc3339(ts);
    srv_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", ts, level);
    srv_buf_json_str(&b, msg, strlen(msg));
    srv_buf_putc(&b, '}');
    write_line(s, &b, "-");
}

static void *flusher(void *arg)
{
    struct tkh_server *s = arg;
    pthread_mutex_lock(&s->flush_lock);
    while (!s->flusher_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += FLUSH_EVERY_MS * 1000L * 1000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->flush_cond, &s->flush_lock, &until);
        pthread_mutex_lock(&s->log_lock);
        flush_locked(s);
        pthread_mutex_unlock(&s->log_lock);
    }
    pthread_mutex_unlock(&s->flush_lock);
    return NULL;
}

int srv_log_start(struct tkh_server *s)
{
    fflush(s->log); /* whatever stdio holds goes first */
    s->log_fd = fileno(s->log);
    s->log_buf = malloc(LOG_BUF_MAX);
    if (s->log_fd < 0 || s->log_buf == NULL) {
        free(s->log_buf);
        s->log_buf = NULL;
        return -1;
    }
    s->log_len = 0;
    if (pthread_mutex_init(&s->log_lock, NULL) != 0) {
        free(s->log_buf);
        s->log_buf = NULL;
        return -1;
    }
    if (pthread_mutex_init(&s->flush_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->log_lock);
        free(s->log_buf);
        s->log_buf = NULL;
        return -1;
    }
    if (pthread_cond_init(&s->flush_cond, NULL) != 0) {
        pthread_mutex_destroy(&s->flush_lock);
        pthread_mutex_destroy(&s->log_lock);
        free(s->log_buf);
        s->log_buf = NULL;
        return -1;
    }
    s->flusher_stop = 0;
    if (pthread_create(&s->flusher, NULL, flusher, s) != 0) {
        pthread_cond_destroy(&s->flush_cond);
        pthread_mutex_destroy(&s->flush_lock);
        pthread_mutex_destroy(&s->log_lock);
        free(s->log_buf);
        s->log_buf = NULL;
        return -1;
    }
    s->flusher_running = 1;
    return 0;
}

void srv_log_stop(struct tkh_server *s)
{
    if (!s->flusher_running) {
        return;
    }
    pthread_mutex_lock(&s->flush_lock);
    s->flusher_stop = 1;
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->flush_lock);
    pthread_join(s->flusher, NULL);
    s->flusher_running = 0;
    pthread_cond_destroy(&s->flush_cond);
    pthread_mutex_destroy(&s->flush_lock);
    pthread_mutex_lock(&s->log_lock);
    flush_locked(s);
    pthread_mutex_unlock(&s->log_lock);
    pthread_mutex_destroy(&s->log_lock);
    free(s->log_buf);
    s->log_buf = NULL;
}
