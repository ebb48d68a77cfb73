/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c — the access log: one JSON object per line and per request (issue 3
 * section 6), joined to the response by its request id (SECURITY.md rule
 * 15: operators get the full verdict detail here).
 *
 * Never logged: tokens, secrets, passwords, the Authorization header, the
 * request URI (its query could carry anything), cookies or bodies. A token appears
 * only as its fingerprint (first 8 hex digits of its SHA-256).
 *
 * Each line is built in a stack buffer, then appended whole, under a lock,
 * to the active one of two 64 KiB buffers. A request thread never calls
 * write(2): when the active buffer is full it hands it to the flusher
 * thread and goes on filling the other; the flusher writes a full buffer
 * at once, and whatever is buffered every 100 ms, always at line
 * boundaries. So the file only ever grows by whole lines, and a kill -9
 * loses at most the last 100 ms of lines, never leaves half of one. (Only
 * when both buffers are full, a disk slower than the requests, does a
 * request thread wait for the flusher: lines are never dropped for speed.)
 *
 * --log FILE is opened O_APPEND, 0640, and reopened by srv_log_reopen
 * (SIGHUP, logrotate's convention): what was logged before goes to the
 * old file, whole, before the new one is used. --log-sample-auth-ok
 * leaves out a share of the successful /auth lines (failures never).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
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

/* Writes len bytes at p to fd, whole; with write_lock held. A write error
 * (a full disk) drops what was left of the buffer and counts it: the file
 * still only ever grows by whole lines as long as writes succeed. */
static void write_all(struct tkh_server *s, const char *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(s->log_fd, p + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            atomic_fetch_add_explicit(&s->log_dropped, 1, memory_order_relaxed);
            break;
        }
        off += (size_t)w;
    }
}

/* Hands the active buffer (not empty) over to be written and makes the
 * other one active (log_lock held; no buffer waiting to be written). */
static void hand_over_locked(struct tkh_server *s)
{
    s->log_full_len = s->log_len;
    s->log_act ^= 1;
    s->log_len = 0;
}

/* Writes what is buffered, oldest first: the full buffer if one waits,
 * then the active one (swapped out, so request threads go on filling the
 * other). With write_lock held, log_lock not held; write(2) runs with
 * log_lock released. At most `rounds` buffers, so that a busy server
 * cannot keep the caller here. */
static void drain(struct tkh_server *s, int rounds)
{
    pthread_mutex_lock(&s->log_lock);
    for (int i = 0; i < rounds; i++) {
        if (s->log_full_len == 0) {
            if (s->log_len == 0) {
                break;
            }
            hand_over_locked(s);
        }
        const char *p = s->log_bufs[s->log_act ^ 1];
        size_t len = s->log_full_len;
        pthread_mutex_unlock(&s->log_lock);
        write_all(s, p, len);
        pthread_mutex_lock(&s->log_lock);
        s->log_full_len = 0;
        pthread_cond_broadcast(&s->log_room);
    }
    pthread_mutex_unlock(&s->log_lock);
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
    while (s->log_len + b->len > LOG_BUF_MAX) {
        if (s->log_full_len == 0) {
            /* hand the active buffer to the flusher and fill the other (it
             * is not empty: a line is far shorter than a buffer) */
            hand_over_locked(s);
            pthread_cond_signal(&s->flush_cond);
            break;
        }
        /* both full: the disk is slower than the requests. Wait for the
         * flusher rather than lose lines (never happens at loopback rates:
         * a 64 KiB write takes tens of microseconds). */
        pthread_cond_signal(&s->flush_cond);
        pthread_cond_wait(&s->log_room, &s->log_lock);
    }
    memcpy(s->log_bufs[s->log_act] + s->log_len, b->p, b->len);
    s->log_len += b->len;
    pthread_mutex_unlock(&s->log_lock);
}

int srv_log_sampled_out(struct tkh_server *s)
{
    if (s->log_sample_all) {
        return 0;
    }
    /* xorshift64*, per thread: sampling needs no secret randomness */
    static _Thread_local uint64_t x;
    if (x == 0) {
        x = srv_now_ns() ^ (uint64_t)(uintptr_t)&x ^ 0x9E3779B97F4A7C15u;
        if (x == 0) {
            x = 1;
        }
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (x * 0x2545F4914F6CDD1Du) >= s->log_sample_cut;
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
    pthread_mutex_lock(&s->log_lock);
    while (!s->flusher_stop) {
        if (s->log_full_len == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += FLUSH_EVERY_MS * 1000L * 1000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->flush_cond, &s->log_lock, &until);
        }
        pthread_mutex_unlock(&s->log_lock);
        pthread_mutex_lock(&s->write_lock);
        drain(s, 2);
        pthread_mutex_unlock(&s->write_lock);
        pthread_mutex_lock(&s->log_lock);
    }
    pthread_mutex_unlock(&s->log_lock);
    return NULL;
}

static int open_log(const char *path, char *err, size_t err_cap)
{
    /* O_APPEND: several writers (a logrotate copytruncate, another
     * process) never overwrite each other; 0640: the log names users and
     * addresses */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot open the log %s: %s", path, strerror(errno));
    }
    return fd;
}

int srv_log_start(struct tkh_server *s, char *err, size_t err_cap)
{
    double rate = s->cfg.log_sample_auth_ok;
    if (!(rate >= 0.0 && rate <= 1.0)) { /* NaN too */
        snprintf(err, err_cap, "the /auth sample rate must be from 0 to 1");
        return -1;
    }
    s->log_sample_all = rate >= 1.0;
    /* 2^64 * rate, without overflowing at rate 1 (handled above) */
    s->log_sample_cut = (uint64_t)(rate * 18446744073709551616.0);
    if (s->cfg.log_path != NULL && s->cfg.log_path[0] != '\0') {
        s->log_path = strdup(s->cfg.log_path);
        if (s->log_path == NULL) {
            snprintf(err, err_cap, "out of memory");
            return -1;
        }
        s->log_fd = open_log(s->log_path, err, err_cap);
        if (s->log_fd < 0) {
            return -1;
        }
        s->log_fd_owned = 1;
    } else {
        fflush(s->log); /* whatever stdio holds goes first */
        s->log_fd = fileno(s->log);
        if (s->log_fd < 0) {
            snprintf(err, err_cap, "the log stream has no file descriptor");
            return -1;
        }
    }
    s->log_bufs[0] = malloc(LOG_BUF_MAX);
    s->log_bufs[1] = malloc(LOG_BUF_MAX);
    if (s->log_bufs[0] == NULL || s->log_bufs[1] == NULL) {
        snprintf(err, err_cap, "out of memory");
        goto fail;
    }
    s->log_len = 0;
    s->log_act = 0;
    s->log_full_len = 0;
    if (pthread_mutex_init(&s->log_lock, NULL) != 0) {
        goto fail_msg;
    }
    if (pthread_mutex_init(&s->write_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->log_lock);
        goto fail_msg;
    }
    if (pthread_cond_init(&s->flush_cond, NULL) != 0) {
        pthread_mutex_destroy(&s->write_lock);
        pthread_mutex_destroy(&s->log_lock);
        goto fail_msg;
    }
    if (pthread_cond_init(&s->log_room, NULL) != 0) {
        pthread_cond_destroy(&s->flush_cond);
        pthread_mutex_destroy(&s->write_lock);
        pthread_mutex_destroy(&s->log_lock);
        goto fail_msg;
    }
    s->flusher_stop = 0;
    if (pthread_create(&s->flusher, NULL, flusher, s) != 0) {
        pthread_cond_destroy(&s->log_room);
        pthread_cond_destroy(&s->flush_cond);
        pthread_mutex_destroy(&s->write_lock);
        pthread_mutex_destroy(&s->log_lock);
        goto fail_msg;
    }
    s->flusher_running = 1;
    return 0;
fail_msg:
    snprintf(err, err_cap, "cannot start the log flusher thread");
fail:
    free(s->log_bufs[0]);
    free(s->log_bufs[1]);
    s->log_bufs[0] = s->log_bufs[1] = NULL;
    if (s->log_fd_owned) {
        close(s->log_fd);
        s->log_fd_owned = 0;
    }
    s->log_fd = -1;
    return -1;
}

int srv_log_reopen(struct tkh_server *s, char *err, size_t err_cap)
{
    if (!s->flusher_running || s->log_path == NULL) {
        snprintf(err, err_cap, "the log is not a file (--log): nothing to reopen");
        return 1;
    }
    int fd = open_log(s->log_path, err, err_cap);
    if (fd < 0) {
        return -1; /* the old file stays in use */
    }
    /* What was logged before the signal goes to the old file, whole; what
     * comes after, to the new one. write_lock: no flush is under way. */
    pthread_mutex_lock(&s->write_lock);
    drain(s, 2);
    int old = s->log_fd;
    s->log_fd = fd;
    pthread_mutex_unlock(&s->write_lock);
    close(old);
    return 0;
}

void srv_log_stop(struct tkh_server *s)
{
    if (!s->flusher_running) {
        return;
    }
    pthread_mutex_lock(&s->log_lock);
    s->flusher_stop = 1;
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->log_lock);
    pthread_join(s->flusher, NULL);
    s->flusher_running = 0;
    pthread_mutex_lock(&s->write_lock);
    drain(s, 2);
    pthread_mutex_unlock(&s->write_lock);
    pthread_cond_destroy(&s->log_room);
    pthread_cond_destroy(&s->flush_cond);
    pthread_mutex_destroy(&s->write_lock);
    pthread_mutex_destroy(&s->log_lock);
    free(s->log_bufs[0]);
    free(s->log_bufs[1]);
    s->log_bufs[0] = s->log_bufs[1] = NULL;
    if (s->log_fd_owned) {
        close(s->log_fd);
        s->log_fd_owned = 0;
    }
    s->log_fd = -1;
    free(s->log_path);
    s->log_path = NULL;
}
