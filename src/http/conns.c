/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conns.c — what keeps one client from holding the server's connections
 * (SECURITY.md rule 18; issue 8 section 2):
 *
 *  - a per-address connection limit, checked when libmicrohttpd accepts
 *    (its accept policy callback) and counted while the connection lives.
 *    Trusted proxies are exempt: everyone behind them shares their address,
 *    and they hold their own limits. The check and the count are a few
 *    instructions apart, so with N worker threads accepting at once an
 *    address can briefly hold up to N connections over its limit: bounded.
 *
 *  - a deadline for receiving a whole request. libmicrohttpd's idle timer
 *    restarts on every byte, so a client sending a header byte every few
 *    seconds keeps its slot forever. Here every connection records when it
 *    became ready for a request (accepted, or its last response finished);
 *    a sweeper thread cuts (shutdown(2)) every connection that has not
 *    delivered a complete request, head and body, within request_timeout of
 *    that moment. shutdown, not close: the descriptor stays libmicrohttpd's,
 *    which sees the end of the stream and closes the connection itself. The
 *    registry lock is held while a descriptor is shut down, and a
 *    connection leaves the registry in libmicrohttpd's "closed"
 *    notification, which comes before it closes the descriptor, so a
 *    number the sweeper uses is never a reused descriptor.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http/internal.h"

/* ---- per-address counts: open addressing, backward-shift deletion --------------- */

static size_t ipc_index(const struct tkh_server *s, const unsigned char a[16])
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < 16; i++) {
        h = (h ^ a[i]) * 1099511628211ull;
    }
    return (size_t)(h & (s->ipc_cap - 1));
}

static struct srv_ipc_slot *ipc_find(struct tkh_server *s, const unsigned char a[16])
{
    for (size_t i = ipc_index(s, a), k = 0; k < s->ipc_cap; i = (i + 1) & (s->ipc_cap - 1), k++) {
        struct srv_ipc_slot *e = &s->ipc[i];
        if (e->count == 0) {
            return NULL;
        }
        if (memcmp(e->addr, a, 16) == 0) {
            return e;
        }
    }
    return NULL;
}

int srv_conns_init(struct tkh_server *s)
{
    /* at most max_connections live entries (plus the accept race): a table
     * of twice that, rounded up to a power of two, stays under half full */
    size_t want = (size_t)s->cfg.max_connections * 2u + 64u;
    s->ipc_cap = 64;
    while (s->ipc_cap < want) {
        s->ipc_cap *= 2;
    }
    s->ipc = calloc(s->ipc_cap, sizeof *s->ipc);
    if (s->ipc == NULL) {
        return -1;
    }
    if (pthread_mutex_init(&s->ipc_lock, NULL) != 0) {
        free(s->ipc);
        s->ipc = NULL;
        return -1;
    }
    if (pthread_mutex_init(&s->conns_lock, NULL) != 0 || pthread_cond_init(&s->sweep_cond, NULL) != 0) {
        pthread_mutex_destroy(&s->ipc_lock);
        free(s->ipc);
        s->ipc = NULL;
        return -1;
    }
    s->conns_ready = 1;
    return 0;
}

int srv_conns_admit(struct tkh_server *s, const unsigned char addr[16])
{
    if (s->cfg.max_per_ip == 0 || srv_cidr_match(s->trusted, s->n_trusted, addr)) {
        return 1;
    }
    pthread_mutex_lock(&s->ipc_lock);
    const struct srv_ipc_slot *e = ipc_find(s, addr);
    int ok = e == NULL || e->count < s->cfg.max_per_ip;
    pthread_mutex_unlock(&s->ipc_lock);
    if (!ok) {
        atomic_fetch_add_explicit(&s->n_refused_per_ip, 1, memory_order_relaxed);
    }
    return ok;
}

int srv_conns_add(struct tkh_server *s, const unsigned char addr[16])
{
    if (s->cfg.max_per_ip == 0 || srv_cidr_match(s->trusted, s->n_trusted, addr)) {
        return 0;
    }
    pthread_mutex_lock(&s->ipc_lock);
    struct srv_ipc_slot *e = ipc_find(s, addr);
    if (e == NULL) {
        size_t i = ipc_index(s, addr);
        while (s->ipc[i].count != 0) {
            i = (i + 1) & (s->ipc_cap - 1);
        }
        e = &s->ipc[i];
        memcpy(e->addr, addr, 16);
    }
    e->count++;
    pthread_mutex_unlock(&s->ipc_lock);
    return 1;
}

void srv_conns_remove(struct tkh_server *s, const unsigned char addr[16])
{
    pthread_mutex_lock(&s->ipc_lock);
    struct srv_ipc_slot *e = ipc_find(s, addr);
    if (e != NULL && --e->count == 0) {
        /* backward-shift deletion keeps every probe chain unbroken */
        size_t hole = (size_t)(e - s->ipc);
        size_t i = hole;
        for (;;) {
            i = (i + 1) & (s->ipc_cap - 1);
            if (s->ipc[i].count == 0) {
                break;
            }
            size_t home = ipc_index(s, s->ipc[i].addr);
            size_t mask = s->ipc_cap - 1;
            /* the entry at i may move into the hole when the hole lies on
             * its probe path from home to i */
            if (((i - home) & mask) >= ((i - hole) & mask)) {
                s->ipc[hole] = s->ipc[i];
                hole = i;
            }
        }
        memset(&s->ipc[hole], 0, sizeof s->ipc[hole]);
    }
    pthread_mutex_unlock(&s->ipc_lock);
}

/* ---- the registry and the request deadline ---------------------------------------- */

void srv_conns_register(struct tkh_server *s, srv_conn *st)
{
    pthread_mutex_lock(&s->conns_lock);
    st->prev = NULL;
    st->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = st;
    }
    s->conns = st;
    pthread_mutex_unlock(&s->conns_lock);
}

void srv_conns_unregister(struct tkh_server *s, srv_conn *st)
{
    pthread_mutex_lock(&s->conns_lock);
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else if (s->conns == st) {
        s->conns = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    st->prev = st->next = NULL;
    pthread_mutex_unlock(&s->conns_lock);
}

static void sweep(struct tkh_server *s)
{
    uint64_t now = srv_now_ns();
    uint64_t limit = (uint64_t)s->cfg.request_timeout * 1000000000u;
    pthread_mutex_lock(&s->conns_lock);
    for (srv_conn *st = s->conns; st != NULL; st = st->next) {
        if (!atomic_load_explicit(&st->receiving, memory_order_acquire) ||
            atomic_load_explicit(&st->cut, memory_order_relaxed)) {
            continue;
        }
        uint64_t since = atomic_load_explicit(&st->ready_ns, memory_order_relaxed);
        if (now > since && now - since > limit && st->fd >= 0) {
            atomic_store(&st->cut, 1);
            shutdown(st->fd, SHUT_RDWR);
            atomic_fetch_add_explicit(&s->n_cut_slow, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&s->conns_lock);
}

static void *sweeper(void *p)
{
    struct tkh_server *s = p;
    pthread_mutex_lock(&s->conns_lock);
    while (!s->sweep_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250L * 1000L * 1000L; /* a quarter second: cut within timeout + 0.25 s */
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->sweep_cond, &s->conns_lock, &until);
        if (s->sweep_stop) {
            break;
        }
        pthread_mutex_unlock(&s->conns_lock);
        sweep(s);
        pthread_mutex_lock(&s->conns_lock);
    }
    pthread_mutex_unlock(&s->conns_lock);
    return NULL;
}

int srv_conns_start(struct tkh_server *s)
{
    if (s->cfg.request_timeout == 0) {
        return 0;
    }
    s->sweep_stop = 0;
    if (pthread_create(&s->sweep_thread, NULL, sweeper, s) != 0) {
        return -1;
    }
    s->sweep_running = 1;
    return 0;
}

void srv_conns_stop(struct tkh_server *s)
{
    if (!s->conns_ready) {
        return;
    }
    if (s->sweep_running) {
        pthread_mutex_lock(&s->conns_lock);
        s->sweep_stop = 1;
        pthread_cond_signal(&s->sweep_cond);
        pthread_mutex_unlock(&s->conns_lock);
        pthread_join(s->sweep_thread, NULL);
        s->sweep_running = 0;
    }
}

void srv_conns_free(struct tkh_server *s)
{
    if (!s->conns_ready) {
        return;
    }
    srv_conns_stop(s);
    pthread_cond_destroy(&s->sweep_cond);
    pthread_mutex_destroy(&s->conns_lock);
    pthread_mutex_destroy(&s->ipc_lock);
    free(s->ipc);
    s->ipc = NULL;
    s->conns_ready = 0;
}
