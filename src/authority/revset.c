/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revset.c — the compact revocation set (issue 13 section 2): what the
 * verify path asks "is this jti (or sid) revoked?", in memory, at 24 bytes a
 * slot.
 *
 * An entry is keyed by 120 bits of SipHash-2-4-128 (libsodium's
 * crypto_shorthash_siphashx24) of (kind, value) under a key drawn at random
 * for each process, never by the value itself: values are up to 256 bytes,
 * the key is 15. Two different revoked values share a key with probability
 * about n^2 / 2^121 (1M entries: 4e-25), and a token that is not revoked is
 * taken for one with probability n / 2^120 per lookup (1M entries: 1e-30);
 * the secret hash key keeps anyone from choosing values that collide, or
 * that pile up in one run of slots. So the set answers exactly, for every
 * practical purpose, and SECURITY.md rule 14 holds: keyed on jti and sid.
 *
 * Times are kept as unsigned 32-bit seconds (until 2106): revoked_at
 * clamped into [0, 2^32 - 1] (it is only shown), until clamped into
 * [1, 2^32 - 1] (0 marks an empty slot; an until past 2106 is kept until
 * 2106, which only keeps a revocation longer). The reason is an index into
 * a table of the distinct reason words seen (logout, admin, client,
 * refresh_reuse and the operators' own), TKA_REVSET_REASONS at most.
 *
 * Open addressing with linear probing over any number of slots (the home
 * slot is a multiply-shift of the key's first 32 bits, so the table need not
 * be a power of two and can be sized to what it holds); the load stays at
 * most 0.7: past it the table grows to a load of 0.55. Entries leave by
 * backward-shift deletion, so there are no tombstones and a probe always
 * ends at the first empty slot. Not thread-safe: the authority holds
 * rev_lock around it (tokens.c).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "authority/internal.h"

_Static_assert(sizeof(struct tka_rev_slot) == 24, "a revocation slot is 24 bytes");
_Static_assert(crypto_shorthash_siphashx24_BYTES >= TKA_REV_KEY_LEN, "SipHash-128 gives 16 bytes");
_Static_assert(crypto_shorthash_siphashx24_KEYBYTES == TKA_REV_HASH_KEY_LEN, "SipHash takes a 16-byte key");

#define MIN_SLOTS 64u
#define MAX_SLOTS 0xffffffffu /* the home slot is computed in 32 bits */

void tka_revset_init(struct tka_revset *s, const unsigned char hash_key[TKA_REV_HASH_KEY_LEN])
{
    memset(s, 0, sizeof *s);
    memcpy(s->hash_key, hash_key, TKA_REV_HASH_KEY_LEN);
}

void tka_revset_free(struct tka_revset *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = 0;
    s->count = 0;
}

int tka_rev_key(const unsigned char hash_key[TKA_REV_HASH_KEY_LEN], enum tks_revocation_kind kind, const char *value,
                size_t len, unsigned char out[TKA_REV_KEY_LEN])
{
    if (len == 0 || len > TKS_VALUE_MAX) {
        return -1; /* the store holds no such value: it cannot be revoked */
    }
    unsigned char in[1 + TKS_VALUE_MAX];
    unsigned char h[crypto_shorthash_siphashx24_BYTES];
    in[0] = (unsigned char)kind;
    memcpy(in + 1, value, len);
    crypto_shorthash_siphashx24(h, in, 1 + len, hash_key);
    memcpy(out, h, TKA_REV_KEY_LEN);
    return 0;
}

static size_t home_of(const unsigned char key[TKA_REV_KEY_LEN], size_t cap)
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)(((uint64_t)h * (uint64_t)cap) >> 32);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t probe(const struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN])
{
    size_t i = home_of(key, s->cap);
    for (;;) {
        const struct tka_rev_slot *e = &s->slots[i];
        if (e->until == 0 || memcmp(e->key, key, TKA_REV_KEY_LEN) == 0) {
            return i;
        }
        i = i + 1 == s->cap ? 0 : i + 1;
    }
}

/* Moves every entry into a table of `cap` slots. */
static int rehash(struct tka_revset *s, size_t cap)
{
    if (cap < MIN_SLOTS) {
        cap = MIN_SLOTS;
    }
    if (cap > MAX_SLOTS || cap > SIZE_MAX / sizeof(struct tka_rev_slot) || cap * 7 / 10 < s->count) {
        return -1;
    }
    struct tka_rev_slot *old = s->slots;
    size_t old_cap = s->cap;
    struct tka_rev_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) {
        return -1;
    }
    s->slots = slots;
    s->cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].until != 0) {
            s->slots[probe(s, old[i].key)] = old[i];
        }
    }
    free(old);
    return 0;
}

/* Slots for n entries at load `num / den`. */
static size_t slots_for(size_t n, size_t num, size_t den)
{
    if (n > (SIZE_MAX - den) / den) {
        return SIZE_MAX;
    }
    return n * den / num + 1;
}

int tka_revset_reserve(struct tka_revset *s, size_t n)
{
    if (n <= s->count || (s->cap && n * 10 <= s->cap * 7)) {
        return 0;
    }
    /* a load of 0.65 once n are in: n/0.65 slots, a little room to grow */
    return rehash(s, slots_for(n, 13, 20));
}

static uint32_t clamp_time(int64_t t, uint32_t lo)
{
    if (t < (int64_t)lo) {
        return lo;
    }
    if (t > (int64_t)UINT32_MAX) {
        return UINT32_MAX;
    }
    return (uint32_t)t;
}

/* The index of reason r, added when new; TKA_REVSET_REASONS when the table
 * is full. */
uint8_t tka_revset_intern(struct tka_revset *s, const char *r)
{
    if (!r) {
        r = "";
    }
    if (s->last_reason < s->n_reasons && strcmp(s->reasons[s->last_reason], r) == 0) {
        return (uint8_t)s->last_reason;
    }
    for (size_t i = 0; i < s->n_reasons; i++) {
        if (strcmp(s->reasons[i], r) == 0) {
            s->last_reason = i;
            return (uint8_t)i;
        }
    }
    size_t n = strlen(r);
    if (s->n_reasons == TKA_REVSET_REASONS || n > TKS_REASON_MAX) {
        return TKA_REVSET_REASONS;
    }
    memcpy(s->reasons[s->n_reasons], r, n + 1);
    s->last_reason = s->n_reasons;
    return (uint8_t)s->n_reasons++;
}

static int put_slot(struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN], uint8_t reason, int64_t revoked_at,
                    int64_t until);

int tka_revset_put(struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN], const char *reason,
                   int64_t revoked_at, int64_t until)
{
    if (s->cap == 0 && rehash(s, MIN_SLOTS) != 0) {
        return -1;
    }
    return put_slot(s, key, tka_revset_intern(s, reason), revoked_at, until);
}

/* A load puts rows at random places in a table far larger than the caches:
 * each put is a cache miss. Their slots are fetched all at once first (the
 * misses overlap), then filled. */
int tka_revset_put_batch(struct tka_revset *s, const struct tka_rev_row *rows, size_t n)
{
    if (s->cap == 0 && rehash(s, MIN_SLOTS) != 0) {
        return -1;
    }
    if ((s->count + n) * 10 <= s->cap * 7) {
        for (size_t i = 0; i < n; i++) {
            __builtin_prefetch(&s->slots[home_of(rows[i].key, s->cap)], 1);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (put_slot(s, rows[i].key, rows[i].reason, rows[i].revoked_at, rows[i].until) != 0) {
            return -1;
        }
    }
    return 0;
}

static int put_slot(struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN], uint8_t reason, int64_t revoked_at,
                    int64_t until)
{
    size_t i = probe(s, key);
    struct tka_rev_slot *e = &s->slots[i];
    uint32_t u = clamp_time(until, 1);
    uint32_t at = clamp_time(revoked_at, 0);
    if (e->until != 0) {
        /* Known: as the store does, the first reason, the earliest
         * revoked_at and the latest until are kept. */
        if (u > e->until) {
            e->until = u;
        }
        if (at < e->revoked_at) {
            e->revoked_at = at;
        }
        return 0;
    }
    if ((s->count + 1) * 10 > s->cap * 7) {
        if (rehash(s, slots_for(s->count + 1, 11, 20)) != 0) {
            return -1;
        }
        i = probe(s, key);
        e = &s->slots[i];
    }
    memcpy(e->key, key, TKA_REV_KEY_LEN);
    e->reason = reason;
    e->revoked_at = at;
    e->until = u;
    s->count++;
    return 0;
}

const struct tka_rev_slot *tka_revset_get(const struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN])
{
    if (s->cap == 0) {
        return NULL;
    }
    const struct tka_rev_slot *e = &s->slots[probe(s, key)];
    return e->until != 0 ? e : NULL;
}

const char *tka_revset_reason(const struct tka_revset *s, const struct tka_rev_slot *e)
{
    return e->reason < s->n_reasons ? s->reasons[e->reason] : "other";
}

/* Empties slot i and shifts the entries after it that may move closer to
 * their home slot (Knuth's algorithm R for linear probing). */
static void remove_at(struct tka_revset *s, size_t i)
{
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = j + 1 == s->cap ? 0 : j + 1;
        struct tka_rev_slot *e = &s->slots[j];
        if (e->until == 0) {
            break;
        }
        size_t h = home_of(e->key, s->cap);
        /* e may fill the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            s->slots[hole] = *e;
            hole = j;
        }
    }
    memset(&s->slots[hole], 0, sizeof s->slots[hole]);
    s->count--;
}

int tka_revset_del(struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN])
{
    if (s->cap == 0) {
        return 0;
    }
    size_t i = probe(s, key);
    if (s->slots[i].until == 0) {
        return 0;
    }
    remove_at(s, i);
    return 1;
}

size_t tka_revset_purge_expired(struct tka_revset *s, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < s->cap;) {
        const struct tka_rev_slot *e = &s->slots[i];
        if (e->until != 0 && (int64_t)e->until <= now) {
            remove_at(s, i); /* slot i now holds an entry not yet looked at, or nothing */
            n++;
        } else {
            i++;
        }
    }
    return n;
}

size_t tka_revset_bytes(const struct tka_revset *s)
{
    return s->cap * sizeof(struct tka_rev_slot);
}
