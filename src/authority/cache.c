/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cache.c — what client authentication reads on every token request, kept
 * in memory on a store that tells of changes made elsewhere (tks_watch:
 * PostgreSQL), so that issuing a token costs no round trip to the
 * database:
 *  - clients by id: an entry is used for at most CLIENT_TTL_MS, and none
 *    fetched before the store's watcher said "clients changed" (a client
 *    added, disabled or deleted at any instance or by the CLI) is used
 *    after it;
 *  - a copy of the live failed-attempt counters (key -> blocked_until),
 *    loaded each second and at once when any instance blocks a key, and
 *    added to as this instance counts failures and blocks.
 *
 * Invariants:
 *  - On a store without a watcher (SQLite) nothing is cached: its reads are
 *    in-process and cheap, and a change made by the CLI shows at once.
 *  - A client entry is tagged with the invalidation generation read before
 *    its fetch; one fetched across an invalidation is never used.
 *  - The counter copy is trusted only when it was loaded less than
 *    MIRROR_TRUST_MS ago and holds every live row (at most MIRROR_ROWS);
 *    otherwise throttling reads the store, as before. Blocks only grow, so
 *    this instance's own writes made while a load ran are merged into it.
 *  - What the copy can miss: a block made at another instance in the
 *    milliseconds before its notification arrives (at worst until the next
 *    load, a second, if notifications are lost). Meanwhile this instance
 *    may let one more attempt through; it fails, is counted in the store,
 *    and the count blocks the key here too. A success that does not see a
 *    counter another instance just made leaves it in place: the owner is
 *    slower, never the guesser faster.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authority/internal.h"

#define CLIENT_SLOTS 64
#define CLIENT_TTL_MS 1000
#define MIRROR_CAP 16384 /* slots, a power of two; at most half full */
#define MIRROR_ROWS (MIRROR_CAP / 2)
#define MIRROR_TRUST_MS 2000

struct client_slot {
    int used;
    int64_t at_ms;
    uint64_t gen;
    tks_client c;
};

struct mirror_slot {
    uint64_t key;
    int64_t blocked_until;
    int64_t local_ms; /* written by this instance at (ms), else 0 */
    int used;
};

struct mirror {
    size_t n;
    struct mirror_slot slot[MIRROR_CAP];
};

struct tka_cache {
    pthread_rwlock_t client_lock;
    _Atomic uint64_t client_gen;
    struct client_slot clients[CLIENT_SLOTS];

    pthread_rwlock_t mirror_lock;
    pthread_mutex_t load_lock; /* one load at a time */
    struct mirror *mirror;     /* NULL until the first load */
    int64_t mirror_at_ms;      /* when the load it came from began */
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static size_t client_slot_of(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    return (size_t)(mix(h) % CLIENT_SLOTS);
}

int tka_cache_open(tka_authority *a)
{
    struct tka_cache *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return -1;
    }
    pthread_rwlock_init(&c->client_lock, NULL);
    pthread_rwlock_init(&c->mirror_lock, NULL);
    pthread_mutex_init(&c->load_lock, NULL);
    a->cache = c;
    return 0;
}

void tka_cache_free(tka_authority *a)
{
    struct tka_cache *c = a->cache;
    if (c == NULL) {
        return;
    }
    pthread_rwlock_destroy(&c->client_lock);
    pthread_rwlock_destroy(&c->mirror_lock);
    pthread_mutex_destroy(&c->load_lock);
    free(c->mirror);
    OPENSSL_cleanse(c, sizeof *c); /* client secret hashes */
    free(c);
    a->cache = NULL;
}

/* ---- clients ------------------------------------------------------------------ */

tks_result tka_client_get(tka_authority *a, const char *id, tks_client *out)
{
    struct tka_cache *c = a->cache;
    if (c == NULL || !atomic_load(&a->watched)) {
        return tks_client_get(a->store, id, out);
    }
    struct client_slot *sl = &c->clients[client_slot_of(id)];
    uint64_t gen = atomic_load(&c->client_gen);
    int64_t now = mono_ms();
    pthread_rwlock_rdlock(&c->client_lock);
    int hit = sl->used && sl->gen == gen && now - sl->at_ms < CLIENT_TTL_MS && strcmp(sl->c.id, id) == 0;
    if (hit) {
        *out = sl->c;
    }
    pthread_rwlock_unlock(&c->client_lock);
    if (hit) {
        return TKS_OK;
    }
    tks_result rc = tks_client_get(a->store, id, out);
    if (rc == TKS_OK) {
        pthread_rwlock_wrlock(&c->client_lock);
        if (atomic_load(&c->client_gen) == gen) { /* no change was heard during the fetch */
            sl->c = *out;
            sl->gen = gen;
            sl->at_ms = now;
            sl->used = 1;
        }
        pthread_rwlock_unlock(&c->client_lock);
    }
    return rc;
}

void tka_cache_clients_changed(tka_authority *a)
{
    if (a->cache != NULL) {
        atomic_fetch_add(&a->cache->client_gen, 1);
    }
}

/* ---- failed-attempt counters ------------------------------------------------------- */

static struct mirror_slot *mirror_find(struct mirror *m, uint64_t key, int add)
{
    for (size_t i = (size_t)mix(key) & (MIRROR_CAP - 1), probes = 0; probes < MIRROR_CAP;
         i = (i + 1) & (MIRROR_CAP - 1), probes++) {
        struct mirror_slot *s = &m->slot[i];
        if (s->used && s->key == key) {
            return s;
        }
        if (!s->used) {
            if (!add || m->n >= MIRROR_ROWS) {
                return NULL;
            }
            s->used = 1;
            s->key = key;
            s->blocked_until = 0;
            s->local_ms = 0;
            m->n++;
            return s;
        }
    }
    return NULL;
}

static int mirror_trusted(const struct tka_cache *c, int64_t now_ms)
{
    return c->mirror != NULL && now_ms - c->mirror_at_ms < MIRROR_TRUST_MS;
}

struct load {
    struct mirror *m;
    size_t rows;
};

static int load_row(uint64_t key, int64_t blocked_until, void *ud)
{
    struct load *l = ud;
    l->rows++;
    struct mirror_slot *s = l->rows <= MIRROR_ROWS ? mirror_find(l->m, key, 1) : NULL;
    if (s != NULL && blocked_until > s->blocked_until) {
        s->blocked_until = blocked_until;
    }
    return l->rows > MIRROR_ROWS;
}

int tka_cache_load_attempts(tka_authority *a, int64_t now)
{
    struct tka_cache *c = a->cache;
    if (c == NULL || !atomic_load(&a->watched)) {
        return 0;
    }
    pthread_mutex_lock(&c->load_lock);
    int64_t began = mono_ms();
    struct load l = {calloc(1, sizeof(struct mirror)), 0};
    if (l.m == NULL) {
        pthread_mutex_unlock(&c->load_lock);
        return -1;
    }
    tks_result rc = tks_attempts_live(a->store, now, a->cfg.fail_window, MIRROR_ROWS + 1, load_row, &l);
    if (rc != TKS_OK || l.rows > MIRROR_ROWS) {
        /* unreadable, or more live counters than the copy holds: the
         * current copy ages out and throttling reads the store */
        free(l.m);
        pthread_mutex_unlock(&c->load_lock);
        return rc == TKS_OK ? 0 : -1;
    }
    pthread_rwlock_wrlock(&c->mirror_lock);
    struct mirror *old = c->mirror;
    for (size_t i = 0; old != NULL && i < MIRROR_CAP; i++) {
        const struct mirror_slot *o = &old->slot[i];
        if (o->used && o->local_ms >= began) { /* written here while the load ran */
            struct mirror_slot *s = mirror_find(l.m, o->key, 1);
            if (s != NULL) {
                s->blocked_until = o->blocked_until > s->blocked_until ? o->blocked_until : s->blocked_until;
                s->local_ms = o->local_ms;
            }
        }
    }
    c->mirror = l.m;
    c->mirror_at_ms = began;
    pthread_rwlock_unlock(&c->mirror_lock);
    pthread_mutex_unlock(&c->load_lock);
    free(old);
    return 0;
}

int tka_cache_attempts_get(tka_authority *a, const uint64_t *keys, size_t n, int64_t *blocked_until, int *present)
{
    struct tka_cache *c = a->cache;
    if (c == NULL || !atomic_load(&a->watched)) {
        return -1;
    }
    int ok = 0;
    pthread_rwlock_rdlock(&c->mirror_lock);
    if (mirror_trusted(c, mono_ms())) {
        ok = 1;
        *present = 0;
        for (size_t i = 0; i < n; i++) {
            const struct mirror_slot *s = mirror_find(c->mirror, keys[i], 0);
            blocked_until[i] = s != NULL ? s->blocked_until : 0;
            *present |= s != NULL ? 1 << i : 0;
        }
    }
    pthread_rwlock_unlock(&c->mirror_lock);
    return ok ? 0 : -1;
}

void tka_cache_attempts_put(tka_authority *a, const uint64_t *keys, size_t n, const int64_t *blocked_until)
{
    struct tka_cache *c = a->cache;
    if (c == NULL || !atomic_load(&a->watched)) {
        return;
    }
    int64_t now = mono_ms();
    pthread_rwlock_wrlock(&c->mirror_lock);
    for (size_t i = 0; c->mirror != NULL && i < n; i++) {
        struct mirror_slot *s = mirror_find(c->mirror, keys[i], 1);
        if (s == NULL) {
            c->mirror_at_ms = 0; /* full: no longer trusted until the next load */
            break;
        }
        if (blocked_until != NULL && blocked_until[i] > s->blocked_until) {
            s->blocked_until = blocked_until[i];
        }
        s->local_ms = now;
    }
    pthread_rwlock_unlock(&c->mirror_lock);
}
