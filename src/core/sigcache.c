/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigcache.c — the cache of verified signatures (tk_sigcache in tokend.h):
 * a memo of "token text T carries a valid signature by key K", for a
 * gateway that sees each token many times.
 *
 * Invariants:
 *  - An entry's key is SHA-256(K's identity || T): the identity (vid, set
 *    when the key is loaded) is a SHA-256 of K's alg and public key, and T
 *    is the whole token text, signature included. A hit therefore stands
 *    for a verification that would succeed again: signature verification
 *    is a pure function of (alg, public key, bytes). Nothing else about
 *    the token is remembered: jws.c still parses it and checks its header,
 *    key lookup, payload and claims on every call.
 *  - Only verified signatures are inserted (jws.c, once the verdict is
 *    VALID); a failure is never stored.
 *  - Bounded: n_sets sets of WAYS slots, allocated once. A full set evicts
 *    by CLOCK (a reference bit per slot, set on a hit, cleared as the hand
 *    passes); an expired slot is reused first.
 *  - No lock: each set has a sequence count (a seqlock, H.-J. Boehm, "Can
 *    seqlocks get along with programming language memory models?", 2012).
 *    Readers never write unless a slot's reference bit is clear; a reader
 *    that meets a writer calls it a miss (and the caller verifies). A
 *    writer takes the count from even to odd with a CAS and gives up when
 *    another writer holds it: inserting is best effort.
 *  - Counters are striped by thread so that hits on one hot token from
 *    many threads do not all write one cache line.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/internal.h"

#define WAYS 8u
#define STRIPES 16u

struct slot {
    /* the entry's key (SHA-256) as 4 words; until == 0: empty */
    _Atomic uint64_t h[4];
    _Atomic int64_t until;
};

struct set {
    _Atomic uint32_t seq;  /* odd while a writer is in the set */
    _Atomic uint32_t refs; /* CLOCK reference bits, bit i for slot i */
    uint32_t hand;         /* written under seq only */
    struct slot slot[WAYS];
};

struct stripe {
    _Atomic uint64_t hits;
    _Atomic uint64_t misses;
    char pad[64 - 2 * sizeof(uint64_t)];
};

struct tk_sigcache {
    struct set *sets;
    size_t n_sets;
    EVP_MD *sha256;
    _Atomic uint64_t entries;
    struct stripe stripe[STRIPES];
};

tk_result tk_sigcache_new(size_t entries, tk_sigcache **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (entries == 0 || entries > TK_LIMIT_SIGCACHE_ENTRIES) {
        return TK_ERR_ARG;
    }
    tk_sigcache *c = calloc(1, sizeof *c);
    if (!c) {
        return TK_ERR_NOMEM;
    }
    c->n_sets = (entries + WAYS - 1) / WAYS;
    c->sets = calloc(c->n_sets, sizeof *c->sets);
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!c->sets || !c->sha256) {
        tk_result rc = c->sets ? TK_ERR_CRYPTO : TK_ERR_NOMEM;
        tk_sigcache_free(c);
        return rc;
    }
    *out = c;
    return TK_OK;
}

void tk_sigcache_free(tk_sigcache *c)
{
    if (!c) {
        return;
    }
    free(c->sets);
    EVP_MD_free(c->sha256);
    free(c);
}

/* This thread's counter stripe. pthread_self() differs between live
 * threads; only the spread matters, not the exact mapping. */
static struct stripe *stripe_of(tk_sigcache *c)
{
    uint64_t x = (uint64_t)(uintptr_t)pthread_self();
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 29;
    return &c->stripe[x % STRIPES];
}

void tk_sigcache_stats_get(const tk_sigcache *c, tk_sigcache_stats *out)
{
    if (!out) {
        return;
    }
    memset(out, 0, sizeof *out);
    if (!c) {
        return;
    }
    for (size_t i = 0; i < STRIPES; i++) {
        out->hits += atomic_load_explicit(&c->stripe[i].hits, memory_order_relaxed);
        out->misses += atomic_load_explicit(&c->stripe[i].misses, memory_order_relaxed);
    }
    out->entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
    out->capacity = (uint64_t)c->n_sets * WAYS;
}

static void words(const unsigned char h[32], uint64_t w[4])
{
    memcpy(w, h, 32);
}

static struct set *set_of(tk_sigcache *c, const uint64_t w[4])
{
    return &c->sets[w[0] % c->n_sets]; /* w[0] is uniform: a SHA-256 */
}

int tki_sigcache_lookup(tk_sigcache *c, const tk_key *k, const char *tok, size_t n, int64_t now, unsigned char h[32])
{
    if (!c || !k->has_vid) {
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, c->sha256, NULL) == 1 && EVP_DigestUpdate(ctx, k->vid, 32) == 1 &&
             EVP_DigestUpdate(ctx, tok, n) == 1 && EVP_DigestFinal_ex(ctx, h, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return -1; /* no hash: verify, and remember nothing */
    }
    uint64_t w[4];
    words(h, w);
    struct set *s = set_of(c, w);
    int hit = 0;
    uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
    unsigned at = 0;
    if (!(s1 & 1u)) {
        for (unsigned i = 0; i < WAYS && !hit; i++) {
            struct slot *sl = &s->slot[i];
            if (atomic_load_explicit(&sl->h[0], memory_order_relaxed) != w[0]) {
                continue;
            }
            hit = atomic_load_explicit(&sl->h[1], memory_order_relaxed) == w[1] &&
                  atomic_load_explicit(&sl->h[2], memory_order_relaxed) == w[2] &&
                  atomic_load_explicit(&sl->h[3], memory_order_relaxed) == w[3] &&
                  atomic_load_explicit(&sl->until, memory_order_relaxed) > now;
            at = i;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) != s1) {
            hit = 0; /* a writer was in the set: what was read may be torn */
        }
    }
    struct stripe *st = stripe_of(c);
    if (hit) {
        uint32_t bit = 1u << at;
        if (!(atomic_load_explicit(&s->refs, memory_order_relaxed) & bit)) {
            atomic_fetch_or_explicit(&s->refs, bit, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&st->hits, 1, memory_order_relaxed);
        return 1;
    }
    atomic_fetch_add_explicit(&st->misses, 1, memory_order_relaxed);
    return 0;
}

/* Takes set s for writing; 0 when another writer has it. */
static int set_enter(struct set *s, uint32_t *seq)
{
    uint32_t v = atomic_load_explicit(&s->seq, memory_order_relaxed);
    if ((v & 1u) ||
        !atomic_compare_exchange_strong_explicit(&s->seq, &v, v + 1, memory_order_acquire, memory_order_relaxed)) {
        return 0;
    }
    atomic_thread_fence(memory_order_release); /* seq odd before any slot write */
    *seq = v;
    return 1;
}

static void set_leave(struct set *s, uint32_t seq)
{
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

static void slot_write(struct slot *sl, const uint64_t w[4], int64_t until)
{
    for (size_t i = 0; i < 4; i++) {
        atomic_store_explicit(&sl->h[i], w[i], memory_order_relaxed);
    }
    atomic_store_explicit(&sl->until, until, memory_order_relaxed);
}

void tki_sigcache_insert(tk_sigcache *c, const unsigned char h[32], int64_t now, int64_t until)
{
    if (!c || until <= now) {
        return;
    }
    uint64_t w[4];
    words(h, w);
    struct set *s = set_of(c, w);
    uint32_t seq = 0;
    if (!set_enter(s, &seq)) {
        return;
    }
    int victim = -1;
    int fresh = 0; /* the victim slot was empty */
    for (unsigned i = 0; i < WAYS; i++) {
        struct slot *sl = &s->slot[i];
        int64_t u = atomic_load_explicit(&sl->until, memory_order_relaxed);
        int same = u != 0;
        for (size_t j = 0; j < 4 && same; j++) {
            same = atomic_load_explicit(&sl->h[j], memory_order_relaxed) == w[j];
        }
        if (same) {
            victim = (int)i; /* there already (another thread's insert): refresh it */
            fresh = 0;
            break;
        }
        if (victim < 0 && u == 0) {
            victim = (int)i;
            fresh = 1;
        } else if (victim < 0 && u <= now) {
            victim = (int)i;
        }
    }
    if (victim < 0) {
        /* CLOCK: the first slot from the hand whose bit is clear, clearing
         * bits on the way (at most one full turn, then the hand's slot). */
        for (unsigned step = 0; step <= WAYS; step++) {
            unsigned i = s->hand % WAYS;
            uint32_t bit = 1u << i;
            s->hand = (i + 1) % WAYS;
            if (!(atomic_fetch_and_explicit(&s->refs, ~bit, memory_order_relaxed) & bit)) {
                victim = (int)i;
                break;
            }
        }
        if (victim < 0) {
            victim = (int)s->hand;
        }
    }
    atomic_fetch_and_explicit(&s->refs, ~(1u << victim), memory_order_relaxed);
    slot_write(&s->slot[victim], w, until);
    set_leave(s, seq);
    if (fresh) {
        atomic_fetch_add_explicit(&c->entries, 1, memory_order_relaxed);
    }
}

void tk_sigcache_purge(tk_sigcache *c, int64_t now)
{
    if (!c) {
        return;
    }
    static const uint64_t zero[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < c->n_sets; i++) {
        struct set *s = &c->sets[i];
        uint32_t seq = 0;
        if (!set_enter(s, &seq)) {
            continue; /* busy: the next purge */
        }
        for (unsigned j = 0; j < WAYS; j++) {
            int64_t u = atomic_load_explicit(&s->slot[j].until, memory_order_relaxed);
            if (u != 0 && u <= now) {
                slot_write(&s->slot[j], zero, 0);
                atomic_fetch_sub_explicit(&c->entries, 1, memory_order_relaxed);
            }
        }
        set_leave(s, seq);
    }
}
