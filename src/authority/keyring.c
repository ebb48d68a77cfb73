/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyring.c — the signing key ring (DESIGN.md "Keys"): states next →
 * active → retired → gone. A new key is published (JWKS) one rotation
 * before it signs; a retired key verifies until the longest token it could
 * have signed has expired, then leaves the ring and is remembered as
 * "rotated out" for unknown_key messages.
 *
 * The ring keeps one such sequence per alg (tka_ring_algs): cfg.alg signs
 * access tokens, and RS256 beside it signs ID tokens (OpenID Connect Core
 * section 15.1); each alg rotates on its own clock, every key is in one
 * JWKS.
 *
 * The store holds every key, the private part sealed under the master key.
 * The ring in memory is an immutable snapshot (struct tka_ring) rebuilt
 * from the store whenever the store's key generation changes, so that
 * `tokend keys rotate` in another process reaches a running server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "authority/internal.h"

void tka_ring_free(struct tka_ring *r)
{
    if (!r) {
        return;
    }
    tk_keyset_free(r->verify);
    for (size_t i = 0; i < TKA_ALGS_MAX; i++) {
        tk_key_free(r->signers[i]);
    }
    free(r);
}

size_t tka_ring_algs(const tka_authority *a, tk_alg algs[TKA_ALGS_MAX])
{
    size_t n = 0;
    algs[n++] = a->cfg.alg;
    if (a->cfg.id_token_alg != TK_ALG_UNSET && a->cfg.id_token_alg != a->cfg.alg) {
        algs[n++] = a->cfg.id_token_alg;
    }
    return n;
}

/* The position of `alg` in tka_ring_algs, or -1. */
static int alg_index(const tka_authority *a, tk_alg alg)
{
    tk_alg algs[TKA_ALGS_MAX];
    size_t n = tka_ring_algs(a, algs);
    for (size_t i = 0; i < n; i++) {
        if (algs[i] == alg) {
            return (int)i;
        }
    }
    return -1;
}

static int alg_index_name(const tka_authority *a, const char *name)
{
    tk_alg alg = tk_alg_from_name(name, strlen(name));
    return alg == TK_ALG_UNSET ? -1 : alg_index(a, alg);
}

const tk_key *tka_ring_signer_lock(tka_authority *a, tk_alg alg)
{
    int i = alg_index(a, alg);
    pthread_rwlock_rdlock(&a->ring_lock);
    const tk_key *k = i >= 0 && a->ring ? a->ring->signers[i] : NULL;
    if (!k) {
        pthread_rwlock_unlock(&a->ring_lock);
    }
    return k;
}

/* Generates a key and seals its private part into *row (owned: clear it),
 * not stored. */
static int build_key(tka_authority *a, tk_alg alg, enum tks_key_state state, int64_t now, tks_key_row *row, char *err,
                     size_t err_cap)
{
    tk_key *k = NULL;
    char *priv = NULL;
    char *pub = NULL;
    memset(row, 0, sizeof *row);
    int ret = -1;
    char kid[48];
    if (tk_key_generate(alg, NULL, &k) != TK_OK || tk_key_thumbprint(k, kid, sizeof kid) != TK_OK) {
        snprintf(err, err_cap, "cannot generate a %s key", tk_alg_name(alg));
        goto out;
    }
    kid[16] = '\0'; /* 96 bits of the RFC 7638 thumbprint name the key */
    int secret = strcmp(tk_key_kty(k), "oct") == 0;
    if (secret && tka_random_b64(12, kid, sizeof kid) != 0) {
        /* An HMAC key's thumbprint is a hash of the secret: name it at random. */
        snprintf(err, err_cap, "no randomness");
        goto out;
    }
    if (tk_key_set_kid(k, kid) != TK_OK || tk_key_to_jwk(k, 1, &priv) != TK_OK) {
        snprintf(err, err_cap, "cannot export the new key");
        goto out;
    }
    if (secret) {
        /* Nothing public about a secret: record what it is, not what it holds. */
        char desc[160];
        snprintf(desc, sizeof desc, "{\"alg\":\"%s\",\"kid\":\"%s\",\"kty\":\"oct\",\"use\":\"sig\"}", tk_alg_name(alg),
                 kid);
        pub = strdup(desc);
    } else if (tk_key_to_jwk(k, 0, &pub) != TK_OK) {
        pub = NULL;
    }
    if (!pub) {
        snprintf(err, err_cap, "cannot export the new key");
        goto out;
    }
    if (tka_seal(a->cfg.master_key, kid, (const unsigned char *)priv, strlen(priv), &row->sealed, &row->sealed_len) !=
        0) {
        snprintf(err, err_cap, "cannot seal the new key");
        goto out;
    }
    snprintf(row->kid, sizeof row->kid, "%s", kid);
    snprintf(row->alg, sizeof row->alg, "%s", tk_alg_name(alg));
    row->state = state;
    row->created_at = now;
    row->activated_at = state == TKS_KEY_ACTIVE ? now : 0;
    row->public_jwk = pub;
    pub = NULL;
    ret = 0;
out:
    if (ret != 0) {
        tks_key_row_clear(row);
    }
    if (priv) {
        OPENSSL_cleanse(priv, strlen(priv));
    }
    tk_free(priv);
    tk_free(pub);
    tk_key_free(k);
    return ret;
}

/* Generates a key and stores it in `state`. Returns 0, 1 when another
 * process stored one of that alg in that state first (one active and one
 * next per alg at most: schema 5), or -1. */
static int make_key(tka_authority *a, tk_alg alg, enum tks_key_state state, int64_t now, char *err, size_t err_cap)
{
    tks_key_row row;
    if (build_key(a, alg, state, now, &row, err, err_cap) != 0) {
        return -1;
    }
    tks_result rc = tks_key_insert(a->store, &row);
    tks_key_row_clear(&row);
    if (rc == TKS_EXISTS) {
        return 1;
    }
    if (rc != TKS_OK) {
        snprintf(err, err_cap, "cannot store the new key: %s", tks_errmsg(a->store));
        return -1;
    }
    return 0;
}

struct scan {
    tka_authority *a;
    int64_t now;
    struct tka_ring *ring;
    size_t n_retired; /* retired keys still verifying (the counting pass) */
    size_t skip;      /* the oldest of them left out of this ring */
    /* per alg, in tka_ring_algs order */
    int have_active[TKA_ALGS_MAX], have_next[TKA_ALGS_MAX];
    char next_kid[TKA_ALGS_MAX][TKS_ID_MAX + 1];
    char err[256];
    int failed;
};

/* A key that is not in this ring (too old for it, or unloadable): tokens
 * it signed are told it was rotated out. */
static void leave_out(struct scan *s, const char *kid)
{
    if (tk_keyset_add_retired_kid(s->ring->verify, kid) != TK_OK) {
        /* the list of rotated-out kids is full: such a token is then just
         * "unknown_key" without the words "rotated out" */
    }
}

static int scan_row(const tks_key_row *k, void *ud)
{
    struct scan *s = ud;
    if (k->state == TKS_KEY_RETIRED && k->verify_until <= s->now) {
        return 0; /* past its time: tka_maintain removes it */
    }
    if (k->state == TKS_KEY_RETIRED && !s->ring) {
        s->n_retired++;
    }
    if (k->state == TKS_KEY_RETIRED && s->ring && s->skip > 0) {
        /* More retired keys than a ring holds (rotations in quick
         * succession): the oldest leave the ring first; tka_maintain
         * deletes them from the store. Rows come oldest first. */
        s->skip--;
        leave_out(s, k->kid);
        return 0;
    }
    /* A key of an alg the ring no longer keeps (the server was started with
     * another --alg) still verifies what it signed; it signs nothing. */
    int ai = alg_index_name(s->a, k->alg);
    if (ai >= 0 && k->state == TKS_KEY_ACTIVE) {
        s->have_active[ai] = 1;
    } else if (ai >= 0 && k->state == TKS_KEY_NEXT) {
        s->have_next[ai] = 1;
        snprintf(s->next_kid[ai], sizeof s->next_kid[ai], "%s", k->kid);
    }
    if (!s->ring) {
        return 0; /* counting pass */
    }
    tk_key *pub = NULL;
    int secret = strncmp(k->alg, "HS", 2) == 0;
    if (secret) {
        /* HMAC: the secret itself verifies; unseal it for every state. */
        unsigned char *raw = NULL;
        size_t raw_len = 0;
        if (tka_unseal(s->a->cfg.master_key, k->kid, k->sealed, k->sealed_len, &raw, &raw_len) != 0) {
            snprintf(s->err, sizeof s->err,
                     "the master key does not open signing key %s: is TOKEND_MASTER_KEY_FILE the file this store "
                     "was created with?",
                     k->kid);
            s->failed = 1;
            return 1;
        }
        tk_result r = tk_key_from_jwk((const char *)raw, raw_len, TK_ALG_UNSET, &pub);
        OPENSSL_cleanse(raw, raw_len);
        free(raw);
        if (r != TK_OK) {
            pub = NULL;
        }
    }
    if ((!secret && tk_key_from_jwk(k->public_jwk, strlen(k->public_jwk), TK_ALG_UNSET, &pub) != TK_OK) || !pub ||
        tk_keyset_add(s->ring->verify, pub) != TK_OK) {
        tk_key_free(pub);
        if (k->state != TKS_KEY_ACTIVE || ai < 0) {
            /* Nothing about a key that no longer (or not yet) signs may stop
             * the server: left out, its tokens fail closed (unknown_key). */
            leave_out(s, k->kid);
            return 0;
        }
        snprintf(s->err, sizeof s->err, "the stored public key %s does not load", k->kid);
        s->failed = 1;
        return 1;
    }
    if (k->state == TKS_KEY_ACTIVE && ai >= 0) {
        unsigned char *priv = NULL;
        size_t priv_len = 0;
        if (tka_unseal(s->a->cfg.master_key, k->kid, k->sealed, k->sealed_len, &priv, &priv_len) != 0) {
            snprintf(s->err, sizeof s->err,
                     "the master key does not open signing key %s: is TOKEND_MASTER_KEY_FILE the file this store "
                     "was created with?",
                     k->kid);
            s->failed = 1;
            return 1;
        }
        tk_key *signer = NULL;
        tk_result rc = tk_key_from_jwk((const char *)priv, priv_len, TK_ALG_UNSET, &signer);
        OPENSSL_cleanse(priv, priv_len);
        free(priv);
        if (rc != TK_OK || !tk_key_can_sign(signer)) {
            tk_key_free(signer);
            snprintf(s->err, sizeof s->err, "the sealed private key %s does not load", k->kid);
            s->failed = 1;
            return 1;
        }
        tk_key_free(s->ring->signers[ai]);
        s->ring->signers[ai] = signer;
        s->ring->since[ai] = k->activated_at;
    }
    return 0;
}

/* Makes sure the store has an active and a next key. */
static int ensure_keys(tka_authority *a, int64_t now, char *err, size_t err_cap)
{
    struct scan s;
    memset(&s, 0, sizeof s);
    s.a = a;
    s.now = now;
    if (tks_key_list(a->store, scan_row, &s) != TKS_OK) {
        snprintf(err, err_cap, "cannot list signing keys: %s", tks_errmsg(a->store));
        return -1;
    }
    /* Several instances may start together on an empty store: what another
     * one created first (TKS_EXISTS) is as good as our own. A store made
     * before the ID token ring (schema 4) gains its RS256 keys here; the
     * first one signs at once, as the first key of a new store does. */
    tk_alg algs[TKA_ALGS_MAX];
    size_t n = tka_ring_algs(a, algs);
    for (size_t i = 0; i < n; i++) {
        if (!s.have_active[i] && s.have_next[i]) {
            tks_result rc = tks_key_set_state(a->store, s.next_kid[i], TKS_KEY_ACTIVE, now, 0);
            if (rc != TKS_OK && rc != TKS_EXISTS) {
                snprintf(err, err_cap, "cannot activate key %s: %s", s.next_kid[i], tks_errmsg(a->store));
                return -1;
            }
            s.have_active[i] = 1;
            s.have_next[i] = rc == TKS_EXISTS;
        }
        if (!s.have_active[i] && make_key(a, algs[i], TKS_KEY_ACTIVE, now, err, err_cap) < 0) {
            return -1;
        }
        if (!s.have_next[i] && make_key(a, algs[i], TKS_KEY_NEXT, now, err, err_cap) < 0) {
            return -1;
        }
    }
    return 0;
}

int tka_ring_load(tka_authority *a, int64_t now, char *err, size_t err_cap)
{
    if (ensure_keys(a, now, err, err_cap) != 0) {
        return -1;
    }
    int64_t gen = 0;
    if (tks_key_generation(a->store, &gen) != TKS_OK) {
        snprintf(err, err_cap, "cannot read the key generation: %s", tks_errmsg(a->store));
        return -1;
    }
    struct scan s;
    memset(&s, 0, sizeof s);
    s.a = a;
    s.now = now;
    if (tks_key_list(a->store, scan_row, &s) != TKS_OK) { /* counting pass */
        snprintf(err, err_cap, "cannot list signing keys: %s", tks_errmsg(a->store));
        return -1;
    }
    s.skip = s.n_retired > TKA_RING_RETIRED_MAX ? s.n_retired - TKA_RING_RETIRED_MAX : 0;
    memset(s.have_active, 0, sizeof s.have_active);
    memset(s.have_next, 0, sizeof s.have_next);
    s.ring = calloc(1, sizeof *s.ring);
    if (!s.ring || tk_keyset_new(&s.ring->verify) != TK_OK) {
        tka_ring_free(s.ring);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    if (tks_key_list(a->store, scan_row, &s) != TKS_OK || s.failed || !s.ring->signers[0]) {
        snprintf(err, err_cap, "%s", s.failed ? s.err : "no active signing key could be loaded");
        tka_ring_free(s.ring);
        return -1;
    }
    for (size_t i = 0; i < a->n_gone; i++) {
        if (tk_keyset_add_retired_kid(s.ring->verify, a->gone_kids[i]) != TK_OK) {
            break;
        }
    }
    pthread_rwlock_wrlock(&a->ring_lock);
    struct tka_ring *old = a->ring;
    a->ring = s.ring;
    a->key_generation = gen;
    pthread_rwlock_unlock(&a->ring_lock);
    tka_ring_free(old);
    return 0;
}

int tka_jwks(tka_authority *a, char **out)
{
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result rc = tk_keyset_to_jwks(a->ring->verify, 0, out);
    pthread_rwlock_unlock(&a->ring_lock);
    return rc == TK_OK ? 0 : -1;
}

struct rot {
    const char *alg;
    char active[TKS_ID_MAX + 1];
    char next[TKS_ID_MAX + 1];
    int64_t next_created;
};

static int find_states(const tks_key_row *k, void *ud)
{
    struct rot *r = ud;
    if (strcmp(k->alg, r->alg) != 0) {
        return 0;
    }
    if (k->state == TKS_KEY_ACTIVE) {
        snprintf(r->active, sizeof r->active, "%s", k->kid);
    } else if (k->state == TKS_KEY_NEXT) {
        snprintf(r->next, sizeof r->next, "%s", k->kid);
        r->next_created = k->created_at;
    }
    return 0;
}

/* The rotation of one alg's ring, prepared (its new next key made: the
 * slow part, RSA) before any ring is rotated, so that the rings of all algs
 * rotate within moments of each other. */
struct prep {
    struct rot r;
    tks_key_row next;
    int ready; /* 1: next built; 0: not now (why in err) */
    char err[256];
};

/* 0 prepared (p->ready) or not now (!p->ready, p->err), -1 failed. */
static int prepare_alg(tka_authority *a, tk_alg alg, int64_t now, struct prep *p, char *err, size_t err_cap)
{
    memset(p, 0, sizeof *p);
    p->r.alg = tk_alg_name(alg);
    if (tks_key_list(a->store, find_states, &p->r) != TKS_OK || !p->r.active[0] || !p->r.next[0]) {
        snprintf(err, err_cap, "cannot find the active and next %s keys: %s", p->r.alg, tks_errmsg(a->store));
        return -1;
    }
    /* A verifier may cache the JWKS for jwks_max_age: a key published
     * later than that ago may be missing from its copy, and a token it
     * signed would be unknown_key there. So the next key waits. */
    if (p->r.next_created + a->cfg.jwks_max_age > now) {
        char ago[32], left[32];
        tk_format_duration(now - p->r.next_created, ago, sizeof ago);
        tk_format_duration(p->r.next_created + a->cfg.jwks_max_age - now, left, sizeof left);
        char why[sizeof p->err];
        snprintf(why, sizeof why,
                 "not now: the next %s key %s was published %s ago; it can sign in %s, once every JWKS cache "
                 "(max-age %llds) holds it",
                 p->r.alg, p->r.next, ago, left, (long long)a->cfg.jwks_max_age);
        memcpy(p->err, why, sizeof why);
        return 0;
    }
    if (build_key(a, alg, TKS_KEY_NEXT, now, &p->next, err, err_cap) != 0) {
        return -1;
    }
    p->ready = 1;
    return 0;
}

/* Rotates a prepared ring. 0 rotated, 2 not now because the ring changed
 * meanwhile (reload it), -1 failed. */
static int rotate_alg(tka_authority *a, struct prep *p, int64_t now, char *err, size_t err_cap)
{
    /* A token signed by the retiring key lives at most max_ttl, plus the
     * leeway verifiers allow. */
    int64_t verify_until = now + a->cfg.max_ttl + a->cfg.leeway;
    tks_result rc = tks_key_rotate(a->store, p->r.active, now - a->cfg.jwks_max_age, now, verify_until, &p->next);
    if (rc == TKS_EXISTS || rc == TKS_NOT_FOUND) {
        /* another instance rotated between our look and our rotation */
        snprintf(err, err_cap, "not now: the %s key ring changed meanwhile (another instance rotated it)", p->r.alg);
        return 2;
    }
    if (rc != TKS_OK) {
        snprintf(err, err_cap, "cannot rotate the %s keys: %s", p->r.alg, tks_errmsg(a->store));
        return -1;
    }
    atomic_fetch_add(&a->n_rotated, 1);
    if (tks_audit(a->store, now, "key_rotated", NULL, NULL, p->r.next) != TKS_OK) {
        snprintf(err, err_cap, "the keys rotated (%s signs now), but the audit event could not be recorded: %s",
                 p->r.next, tks_errmsg(a->store));
        return -1;
    }
    return 0;
}

/* Rotates the ring of every alg whose bit is set in `which` (bit i: the
 * i-th of tka_ring_algs), then reloads the ring. 0 when at least one
 * rotated, 1 when none could now (err says why, for the first), -1 on a
 * failure. */
static int rotate_locked(tka_authority *a, unsigned which, int64_t now, char *err, size_t err_cap)
{
    if (ensure_keys(a, now, err, err_cap) != 0) {
        return -1;
    }
    tk_alg algs[TKA_ALGS_MAX];
    size_t n = tka_ring_algs(a, algs);
    struct prep p[TKA_ALGS_MAX];
    size_t np = 0;
    int rotated = 0, changed = 0, failed = 0, told = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        if (!(which & (1u << i))) {
            continue;
        }
        if (prepare_alg(a, algs[i], now, &p[np], err, err_cap) != 0) {
            failed = 1;
        } else if (!p[np].ready && !told) {
            told = 1;
            snprintf(err, err_cap, "%s", p[np].err);
        }
        np += p[np].ready || failed ? 1 : 0;
    }
    /* In ring order: whoever loses the first ring to another instance
     * leaves the rest to it too, so that N instances rotating at once make
     * one rotation of every ring, all by one of them. */
    int lost = 0;
    for (size_t i = 0; i < np; i++) {
        char e[256];
        int rc = p[i].ready && !failed && !lost ? rotate_alg(a, &p[i], now, e, sizeof e) : 1;
        lost |= rc == 2;
        tks_key_row_clear(&p[i].next);
        rotated |= rc == 0;
        changed |= rc == 0 || rc == 2;
        if (rc < 0) {
            failed = 1;
            snprintf(err, err_cap, "%s", e);
        } else if (rc == 2 && !told) {
            told = 1;
            snprintf(err, err_cap, "%s", e);
        }
    }
    char e[256];
    if (changed && tka_ring_load(a, now, e, sizeof e) != 0) {
        snprintf(err, err_cap, "%s", e);
        return -1;
    }
    return failed ? -1 : rotated ? 0 : 1;
}

int tka_rotate(tka_authority *a, int64_t now, char *err, size_t err_cap)
{
    pthread_mutex_lock(&a->maint_lock);
    int rc = rotate_locked(a, ~0u, now, err, err_cap);
    pthread_mutex_unlock(&a->maint_lock);
    return rc;
}

/* Retired keys to delete: past their time, or (oldest first) beyond what a
 * ring holds. At most 16 a run: maintenance runs every second. */
struct expired {
    char kids[16][TKS_ID_MAX + 1];
    size_t n;
    int64_t now;
    size_t verifying; /* retired keys still in their time, seen so far */
    size_t excess;    /* how many of those to delete (second pass) */
};

static int count_verifying(const tks_key_row *k, void *ud)
{
    struct expired *e = ud;
    e->verifying += k->state == TKS_KEY_RETIRED && k->verify_until > e->now;
    return 0;
}

static int find_expired(const tks_key_row *k, void *ud)
{
    struct expired *e = ud;
    if (k->state != TKS_KEY_RETIRED || e->n == 16) {
        return 0;
    }
    if (k->verify_until <= e->now) {
        snprintf(e->kids[e->n++], sizeof e->kids[0], "%s", k->kid);
    } else if (e->excess > 0) {
        e->excess--;
        snprintf(e->kids[e->n++], sizeof e->kids[0], "%s", k->kid);
    }
    return 0;
}

static void remember_gone(tka_authority *a, const char *kid)
{
    if (a->n_gone == 16) {
        memmove(a->gone_kids[0], a->gone_kids[1], sizeof a->gone_kids[0] * 15);
        a->n_gone = 15;
    }
    snprintf(a->gone_kids[a->n_gone++], sizeof a->gone_kids[0], "%s", kid);
}

int tka_maintain(tka_authority *a, int64_t now)
{
    if (pthread_mutex_trylock(&a->maint_lock) != 0) {
        return 0; /* someone else is at it */
    }
    char err[256];
    int rc = 0;
    int reload = 0;
    int64_t gen = 0;
    if (atomic_exchange(&a->keys_changed, 0) ||
        (tks_key_generation(a->store, &gen) == TKS_OK && gen != a->key_generation)) {
        reload = 1;
    }
    struct expired e;
    memset(&e, 0, sizeof e);
    e.now = now;
    if (tks_key_list(a->store, count_verifying, &e) == TKS_OK) {
        e.excess = e.verifying > TKA_RING_RETIRED_MAX ? e.verifying - TKA_RING_RETIRED_MAX : 0;
    }
    if (tks_key_list(a->store, find_expired, &e) == TKS_OK) {
        for (size_t i = 0; i < e.n; i++) {
            if (tks_key_delete(a->store, e.kids[i]) == TKS_OK) {
                remember_gone(a, e.kids[i]);
                /* Not a security event: the key no longer verified anything
                 * (past its time, or already left out of the ring). A lost
                 * audit row is retried by nothing and harms nothing. */
                (void)tks_audit(a->store, now, "key_removed", NULL, NULL, e.kids[i]);
                reload = 1;
            }
        }
    }
    unsigned due = 0;
    pthread_rwlock_rdlock(&a->ring_lock);
    for (size_t i = 0; a->ring && i < TKA_ALGS_MAX; i++) {
        if (a->ring->signers[i] && a->ring->since[i] + a->cfg.rotate_every <= now) {
            due |= 1u << i;
        }
    }
    pthread_rwlock_unlock(&a->ring_lock);
    if (a->cfg.rotate_every > 0 && due) {
        /* 1 (not now: the next key is still young, or another instance
         * rotated) is no failure: the next second looks again */
        int rr = rotate_locked(a, due, now, err, sizeof err);
        rc = rr < 0 ? -1 : rc;
        if (rr == 0) {
            reload = 0; /* rotate_locked loaded the new ring */
        }
    }
    if (reload && tka_ring_load(a, now, err, sizeof err) != 0) {
        rc = -1;
    }
    if (tka_revset_refresh(a, now) != 0) {
        rc = -1;
    }
    if (tka_cache_load_attempts(a, now) != 0) {
        rc = -1;
    }
    int minute = now - a->last_purge >= 60;
    if (minute) {
        /* In memory, once a minute: the revocation set's purge scans it
         * under its write lock, which validation waits for. */
        tk_sigcache_purge(a->sigcache, now);
        tka_revset_purge(a, now);
        a->last_purge = now;
    }
    if (minute || (a->purge_backlog && now != a->last_store_purge)) {
        /* Purges only delete what can no longer be used, or records past
         * their retention (retention.c); one that fails runs again a
         * minute later, and nothing becomes valid meanwhile. A pass that
         * ran out of time goes on a second later. */
        a->purge_backlog = tka_purge(a, now) == 1;
        a->last_store_purge = now;
    }
    pthread_mutex_unlock(&a->maint_lock);
    return rc;
}

int tka_keys_list(tka_authority *a, int (*fn)(const tks_key_row *k, void *ud), void *ud)
{
    return tks_key_list(a->store, fn, ud) == TKS_OK ? 0 : -1;
}
