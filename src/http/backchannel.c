/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backchannel.c — sends OpenID Connect Back-Channel Logout tokens (see
 * backchannel.h).
 *
 * The sign-out hook only queues the sid (it runs on a request thread, or
 * in an admin command); a sender thread (of cfg.senders, so that a
 * receiver that hangs delays no other) then looks up the clients of
 * that sign-in, makes one logout token per client (tka_logout_token) and
 * POSTs it as `logout_token` (section 2.5). A 2xx answer is a delivery;
 * anything else (a refused connection, a time-out, 4xx, 5xx) is tried
 * again after 1, 2, 4, 8 and 16 seconds, with the same token (its jti lets
 * the receiver see a repeat), then given up, logged and counted.
 *
 * URIs were checked when the client was registered: https, or http to a
 * loopback address. Redirects are not followed (section 2.5 says nothing of
 * them, and a logout token must not go where it was not registered to go).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "http/backchannel.h"

struct job {
    struct job *next;
    int expand; /* 1: a sid to expand into deliveries; 0: a delivery */
    char sid[TKS_SID_MAX + 1];
    char client_id[TKS_ID_MAX + 1];
    char uri[TKS_URI_MAX + 1];
    char *token; /* the logout token, owned (tk_free) */
    unsigned attempt;
    int64_t next_ms;
};

struct tkh_bcl {
    tka_authority *auth;
    tks_store *store;
    tkh_bcl_config cfg;
    pthread_t threads[16];
    unsigned n_threads;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a job was queued, or stop */
    pthread_cond_t idle; /* a job was finished */
    struct job *head, *tail;
    unsigned queued;
    unsigned busy; /* threads working on a job outside the queue */
    _Atomic int stop;
    uint64_t delivered, retried, failed;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(tkh_bcl *b, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(tkh_bcl *b, const char *level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->cfg.log) {
        b->cfg.log(b->cfg.log_ud, level, msg);
    }
}

void tkh_bcl_config_defaults(tkh_bcl_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 5000;
    c->attempts = 6;
    c->queue_max = 1024;
    c->senders = 4;
}

static void job_free(struct job *j)
{
    if (j->token) {
        OPENSSL_cleanse(j->token, strlen(j->token));
        tk_free(j->token);
    }
    free(j);
}

/* Appends j to the queue (lock held). */
static void append_locked(tkh_bcl *b, struct job *j)
{
    j->next = NULL;
    if (b->tail) {
        b->tail->next = j;
    } else {
        b->head = j;
    }
    b->tail = j;
    b->queued++;
}

/* Queues new work j (lock held); drops it when the queue is full. */
static void enqueue_locked(tkh_bcl *b, struct job *j)
{
    if (b->queued >= b->cfg.queue_max) {
        b->failed++;
        job_free(j);
        return;
    }
    append_locked(b, j);
    pthread_cond_signal(&b->wake);
}

static void on_signout(void *ud, const char *sid, const char *reason)
{
    (void)reason;
    tkh_bcl *b = ud;
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        return;
    }
    j->expand = 1;
    snprintf(j->sid, sizeof j->sid, "%s", sid);
    pthread_mutex_lock(&b->lock);
    int dropped = b->queued >= b->cfg.queue_max;
    enqueue_locked(b, j);
    pthread_mutex_unlock(&b->lock);
    if (dropped) {
        say(b, "warning", "back-channel logout of sign-in %s dropped: %u deliveries are already waiting", sid,
            b->cfg.queue_max);
    }
}

struct expand {
    char ids[64][TKS_ID_MAX + 1];
    size_t n;
    size_t left_out; /* clients past the 64 a sign-in is told to */
};

static int collect_client(const char *client_id, void *ud)
{
    struct expand *e = ud;
    if (e->n < sizeof e->ids / sizeof e->ids[0]) {
        snprintf(e->ids[e->n++], sizeof e->ids[0], "%s", client_id);
    } else {
        e->left_out++;
    }
    return 0;
}

/* A sign-in ended: one delivery per client of it that asked for them. */
static void expand(tkh_bcl *b, const struct job *j)
{
    struct expand e;
    e.n = 0;
    e.left_out = 0;
    if (tks_session_clients(b->store, j->sid, collect_client, &e) != TKS_OK) {
        pthread_mutex_lock(&b->lock);
        b->failed++;
        pthread_mutex_unlock(&b->lock);
        say(b, "warning", "back-channel logout of sign-in %s: its clients could not be read: %s", j->sid,
            tks_errmsg(b->store));
        return;
    }
    if (e.left_out > 0) {
        say(b, "warning", "back-channel logout of sign-in %s: %zu of its applications are past the 64 told", j->sid,
            e.left_out);
    }
    tks_session se;
    char user[TKS_ID_MAX + 1] = "";
    if (tks_session_get_sid(b->store, j->sid, &se) == TKS_OK) {
        snprintf(user, sizeof user, "%s", se.user_id);
    }
    OPENSSL_cleanse(&se, sizeof se);
    tks_client *cl = malloc(sizeof *cl);
    if (!cl) {
        return;
    }
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < e.n; i++) {
        if (tks_client_get(b->store, e.ids[i], cl) != TKS_OK || cl->disabled || !cl->backchannel_logout_uri[0]) {
            continue;
        }
        struct job *d = calloc(1, sizeof *d);
        if (!d || tka_logout_token(b->auth, cl, user, j->sid, now, &d->token) != 0) {
            free(d);
            pthread_mutex_lock(&b->lock);
            b->failed++;
            pthread_mutex_unlock(&b->lock);
            say(b, "warning", "back-channel logout to client %s: the logout token could not be made", cl->id);
            continue;
        }
        snprintf(d->sid, sizeof d->sid, "%s", j->sid);
        snprintf(d->client_id, sizeof d->client_id, "%s", cl->id);
        snprintf(d->uri, sizeof d->uri, "%s", cl->backchannel_logout_uri);
        d->next_ms = mono_ms();
        pthread_mutex_lock(&b->lock);
        enqueue_locked(b, d);
        pthread_mutex_unlock(&b->lock);
    }
    OPENSSL_cleanse(cl, sizeof *cl);
    free(cl);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Aborts a POST in flight once the sender is told to stop. */
static int until_stopped(void *ud, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void)dlt;
    (void)dln;
    (void)ult;
    (void)uln;
    const tkh_bcl *b = ud;
    return atomic_load(&b->stop) ? 1 : 0;
}

/* One POST: 0 on a 2xx answer, else -1 with why. */
static int post(tkh_bcl *b, const struct job *d, char *why, size_t why_cap)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    char *enc = curl_easy_escape(h, d->token, 0);
    size_t bl = enc ? strlen(enc) + 16 : 0;
    char *body = enc ? malloc(bl) : NULL;
    if (!body) {
        curl_free(enc);
        curl_easy_cleanup(h);
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    snprintf(body, bl, "logout_token=%s", enc);
    curl_free(enc);
    char err[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    curl_easy_setopt(h, CURLOPT_URL, d->uri);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, b->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, b->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tokend-backchannel-logout");
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, until_stopped);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, b);
    if (b->cfg.ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, b->cfg.ca_file);
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (rc != CURLE_OK) {
        snprintf(why, why_cap, "%s", err[0] ? err : curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(why, why_cap, "answered HTTP %ld", status);
        return -1;
    }
    return 0;
}

static void deliver(tkh_bcl *b, struct job *d)
{
    char why[CURL_ERROR_SIZE + 32];
    int ok = post(b, d, why, sizeof why) == 0;
    d->attempt++;
    pthread_mutex_lock(&b->lock);
    if (ok) {
        b->delivered++;
    } else if (d->attempt >= b->cfg.attempts) {
        b->failed++;
    } else {
        b->retried++;
    }
    pthread_mutex_unlock(&b->lock);
    if (ok) {
        job_free(d);
        return;
    }
    if (d->attempt >= b->cfg.attempts) {
        say(b, "warning", "back-channel logout of sign-in %s to client %s (%s) failed %u times, last: %s; given up",
            d->sid, d->client_id, d->uri, d->attempt, why);
        job_free(d);
        return;
    }
    int64_t wait = (int64_t)1000 << (d->attempt - 1 < 10 ? d->attempt - 1 : 10);
    say(b, "info", "back-channel logout of sign-in %s to client %s: %s; retrying in %" PRId64 "s", d->sid, d->client_id,
        why, wait / 1000);
    d->next_ms = mono_ms() + wait;
    pthread_mutex_lock(&b->lock);
    append_locked(b, d); /* enqueue_locked's bound is for new work, not retries */
    pthread_mutex_unlock(&b->lock);
}

static void *run(void *arg)
{
    tkh_bcl *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!atomic_load(&b->stop)) {
        int64_t now = mono_ms();
        struct job *prev = NULL, *j = b->head;
        int64_t soonest = now + 1000;
        while (j && !j->expand && j->next_ms > now) {
            soonest = j->next_ms < soonest ? j->next_ms : soonest;
            prev = j;
            j = j->next;
        }
        if (!j) {
            pthread_cond_broadcast(&b->idle);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t w = soonest - now;
            ts.tv_sec += w / 1000;
            ts.tv_nsec += (long)(w % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&b->wake, &b->lock, &ts);
            continue;
        }
        if (prev) {
            prev->next = j->next;
        } else {
            b->head = j->next;
        }
        if (b->tail == j) {
            b->tail = prev;
        }
        b->queued--;
        b->busy++;
        pthread_mutex_unlock(&b->lock);
        if (j->expand) {
            expand(b, j);
            job_free(j);
        } else {
            deliver(b, j);
        }
        pthread_mutex_lock(&b->lock);
        b->busy--;
        pthread_cond_broadcast(&b->idle);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int tkh_bcl_open(tka_authority *a, tks_store *store, const tkh_bcl_config *cfg, tkh_bcl **out)
{
    *out = NULL;
    tkh_bcl *b = calloc(1, sizeof *b);
    if (!b) {
        return -1;
    }
    b->auth = a;
    b->store = store;
    b->cfg = *cfg;
    if (b->cfg.attempts == 0) {
        b->cfg.attempts = 1;
    }
    unsigned want = b->cfg.senders == 0 ? 1 : b->cfg.senders > 16 ? 16 : b->cfg.senders;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    pthread_cond_init(&b->idle, NULL);
    while (b->n_threads < want && pthread_create(&b->threads[b->n_threads], NULL, run, b) == 0) {
        b->n_threads++;
    }
    if (b->n_threads == 0) {
        pthread_cond_destroy(&b->idle);
        pthread_cond_destroy(&b->wake);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return -1;
    }
    tka_set_signout_hook(a, on_signout, b);
    *out = b;
    return 0;
}

unsigned tkh_bcl_drain(tkh_bcl *b, int64_t max_ms)
{
    int64_t end = mono_ms() + max_ms;
    pthread_mutex_lock(&b->lock);
    while ((b->queued > 0 || b->busy) && mono_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&b->idle, &b->lock, &ts);
    }
    unsigned left = b->queued + b->busy;
    pthread_mutex_unlock(&b->lock);
    return left;
}

void tkh_bcl_counters_get(tkh_bcl *b, tkh_bcl_counters *out)
{
    pthread_mutex_lock(&b->lock);
    out->delivered = b->delivered;
    out->retried = b->retried;
    out->failed = b->failed;
    out->pending = b->queued + b->busy;
    pthread_mutex_unlock(&b->lock);
}

void tkh_bcl_close(tkh_bcl *b)
{
    if (!b) {
        return;
    }
    tka_set_signout_hook(b->auth, NULL, NULL);
    pthread_mutex_lock(&b->lock);
    atomic_store(&b->stop, 1);
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->lock);
    for (unsigned i = 0; i < b->n_threads; i++) {
        pthread_join(b->threads[i], NULL);
    }
    unsigned dropped = 0;
    while (b->head) {
        struct job *j = b->head;
        b->head = j->next;
        job_free(j);
        dropped++;
    }
    if (dropped) {
        say(b, "warning", "%u back-channel logout deliveries not made before stopping", dropped);
    }
    pthread_cond_destroy(&b->idle);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
