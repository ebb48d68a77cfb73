/* SPDX-License-Identifier: Apache-2.0 */
/*
 * workers.c — a small pool of threads for slow work that must never run on
 * libmicrohttpd's request threads (SECURITY.md rule 21): Argon2id password
 * checks take tens of milliseconds and 64 MiB each.
 *
 * How a request uses it: it reserves a place (srv_pool_reserve: fails at
 * once when `threads + max_waiting` jobs are already in flight, and the
 * request answers 503 with Retry-After), suspends its connection, and
 * submits the job; the job's last act is to resume the connection, and the
 * request finishes on its own thread with the result. So at most
 * `threads` hashes run at a time (memory is bounded: threads x 64 MiB),
 * at most `threads + max_waiting` are in flight, running or waiting (when
 * every thread is busy, that is `max_waiting` waiting; a job not yet picked
 * up by an idle thread counts as waiting too), and request threads never
 * wait at all.
 *
 * The threads run under Linux's SCHED_IDLE policy: they get only CPU time
 * that the request threads leave unused, so under a sign-in flood at full
 * hashing capacity /auth keeps its latency (bench/signin_flood.py: its p99
 * within 2x of its p99 without the flood; nice +10, measured first, gave
 * 4-13x, since a niced thread still holds a core for whole scheduler
 * slices). The price is chosen knowingly: while validation keeps every
 * core busy, password checks wait, the queue fills, and sign-ins are
 * refused with 503 + Retry-After rather than slowing down validation for
 * every API behind the proxy. Where SCHED_IDLE is refused, nice +10.
 */
#define _GNU_SOURCE /* SCHED_IDLE; syscall(2), for the thread id setpriority(2) takes */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http/internal.h"

struct srv_job {
    srv_job_fn fn;
    void *arg;
};

struct srv_pool {
    pthread_mutex_t lock;
    pthread_cond_t more; /* jobs queued, or stopping */
    pthread_cond_t idle; /* a job finished (for stop) */
    struct srv_job *q;   /* ring of `cap` jobs */
    size_t cap, head, n;
    size_t reserved; /* places taken: reserved + queued + running */
    size_t running;
    size_t limit; /* threads + max_waiting */
    int stopping;
    pthread_t *threads;
    size_t n_threads;
    _Atomic uint64_t done;
    _Atomic uint64_t refused;
};

/* Best effort: an unchanged priority only means hashing competes evenly
 * with validation. */
static void lower_priority(void)
{
#ifdef SCHED_IDLE
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0) {
        return;
    }
#endif
#ifdef SYS_gettid
    /* Linux: a thread's nice value is its own */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
#endif
}

static void *worker(void *p)
{
    struct srv_pool *pool = p;
    lower_priority();
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->n == 0 && !pool->stopping) {
            pthread_cond_wait(&pool->more, &pool->lock);
        }
        if (pool->n == 0) { /* stopping, and nothing left to do */
            break;
        }
        struct srv_job j = pool->q[pool->head];
        pool->head = (pool->head + 1) % pool->cap;
        pool->n--;
        pool->running++;
        pthread_mutex_unlock(&pool->lock);
        j.fn(j.arg);
        atomic_fetch_add(&pool->done, 1);
        pthread_mutex_lock(&pool->lock);
        pool->running--;
        pool->reserved--;
        pthread_cond_broadcast(&pool->idle);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

int srv_pool_start(srv_pool **out, unsigned threads, unsigned max_waiting)
{
    *out = NULL;
    if (threads == 0 || threads > 256 || max_waiting > 65536) {
        return -1;
    }
    srv_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return -1;
    }
    p->limit = (size_t)threads + max_waiting;
    p->cap = p->limit;
    p->q = calloc(p->cap, sizeof *p->q);
    p->threads = calloc(threads, sizeof *p->threads);
    if (p->q == NULL || p->threads == NULL || pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->q);
        free(p->threads);
        free(p);
        return -1;
    }
    pthread_cond_init(&p->more, NULL);
    pthread_cond_init(&p->idle, NULL);
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            break;
        }
        p->n_threads++;
    }
    if (p->n_threads == 0) {
        srv_pool_stop(p);
        return -1;
    }
    *out = p;
    return 0;
}

void srv_pool_drain(srv_pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    /* reserved places belong to requests about to submit: let them */
    while (p->reserved > p->n + p->running) {
        pthread_cond_wait(&p->idle, &p->lock);
    }
    p->stopping = 1;
    pthread_cond_broadcast(&p->more);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->n_threads; i++) {
        pthread_join(p->threads[i], NULL);
    }
}

void srv_pool_stop(srv_pool *p)
{
    if (p == NULL) {
        return;
    }
    srv_pool_drain(p);
    pthread_cond_destroy(&p->more);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p->q);
    free(p);
}

int srv_pool_reserve(srv_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int ok = !p->stopping && p->reserved < p->limit;
    if (ok) {
        p->reserved++;
    }
    pthread_mutex_unlock(&p->lock);
    if (!ok) {
        atomic_fetch_add(&p->refused, 1);
    }
    return ok ? 0 : -1;
}

void srv_pool_submit(srv_pool *p, srv_job_fn fn, void *arg)
{
    pthread_mutex_lock(&p->lock);
    /* a reservation guarantees room: reserved <= limit == cap */
    p->q[(p->head + p->n) % p->cap] = (struct srv_job){fn, arg};
    p->n++;
    pthread_cond_signal(&p->more);
    pthread_cond_broadcast(&p->idle); /* a stop waiting for this submit */
    pthread_mutex_unlock(&p->lock);
}

void srv_pool_unreserve(srv_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->reserved--;
    pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->lock);
}

void srv_pool_stats(srv_pool *p, srv_pool_info *out)
{
    memset(out, 0, sizeof *out);
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    out->threads = p->n_threads;
    out->limit = p->limit;
    out->running = p->running;
    out->waiting = p->reserved - p->running;
    pthread_mutex_unlock(&p->lock);
    out->done = atomic_load(&p->done);
    out->refused = atomic_load(&p->refused);
}
