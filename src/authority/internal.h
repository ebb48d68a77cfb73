/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — what the authority's modules share: the authority struct,
 * the key ring snapshot, the revocation set and the throttle table.
 */
#ifndef TOKEND_AUTHORITY_INTERNAL_H
#define TOKEND_AUTHORITY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "authority/authority.h"

/* Retired keys a ring keeps verifying, newest first. A retired key verifies
 * for max_ttl + leeway (a day by default), so this many rotations within a
 * day is far beyond any schedule; past it (a loop of `tokend keys rotate`)
 * the oldest leave the ring and are remembered as rotated out, so the ring
 * (next + active + retired) always fits a key set's TK_LIMIT_KEYSET_KEYS. */
#define TKA_RING_RETIRED_MAX 32u

/* An immutable view of the key ring: what verifies, and what signs. Swapped
 * whole under ring_lock; readers hold the read lock while they use it. */
#define TKA_ALGS_MAX 2u

struct tka_ring {
    tk_keyset *verify; /* public keys of every alg: next, active, retired-but-verifying */
    /* The active key of each alg the ring keeps (tka_ring_algs), in that
     * order: signers[0], of cfg.alg, signs access tokens. NULL when an alg
     * has none loaded. since[i]: when it became active. */
    tk_key *signers[TKA_ALGS_MAX];
    int64_t since[TKA_ALGS_MAX];
};

/* Revocations in memory (revset.c): a compact open-addressed table keyed by
 * 120 bits of a keyed SipHash-128 of (kind, value). */
#define TKA_REV_KEY_LEN 15
#define TKA_REV_HASH_KEY_LEN 16
#define TKA_REVSET_REASONS 255 /* distinct reason words kept; more read "other" */

struct tka_rev_slot {
    unsigned char key[TKA_REV_KEY_LEN];
    uint8_t reason;      /* index into tka_revset.reasons */
    uint32_t revoked_at; /* seconds since the epoch */
    uint32_t until;      /* purged once past; 0: the slot is empty */
};

struct tka_revset {
    struct tka_rev_slot *slots;
    size_t cap;   /* slots */
    size_t count; /* entries */
    unsigned char hash_key[TKA_REV_HASH_KEY_LEN];
    size_t n_reasons, last_reason;
    char reasons[TKA_REVSET_REASONS][TKS_REASON_MAX + 1];
};

struct tka_authority {
    tks_store *store;
    tka_config cfg;

    pthread_rwlock_t ring_lock;
    struct tka_ring *ring;
    int64_t key_generation;
    char gone_kids[16][TKS_ID_MAX + 1]; /* rotated out of the ring, newest last */
    size_t n_gone;

    pthread_rwlock_t rev_lock;
    struct tka_revset rev;
    unsigned char rev_hash_key[TKA_REV_HASH_KEY_LEN]; /* random, this process's */
    _Atomic int rev_loaded;                           /* the set holds the store's revocations (tokens.c rev_warm) */
    pthread_mutex_t rev_refresh_lock;                 /* one catch-up at a time */
    int64_t rev_cursor;                               /* tks_revocations_changed's position */
    _Atomic int64_t rev_fresh_at;                     /* when the set last caught up with the store */
    _Atomic int keys_changed;                         /* the store's watcher saw a key change elsewhere */
    _Atomic int watched;                              /* the store tells of changes made elsewhere (tks_watch) */
    struct tka_cache *cache;                          /* cache.c */
    /* Verified signatures (cfg.verify_cache), or NULL: set in every policy
     * validation builds, ours and trusted issuers'. Needs no invalidation:
     * an entry names the key by its public key, and the key is still
     * looked up in the current ring or key set on every call. */
    tk_sigcache *sigcache;

    pthread_mutex_t dummy_lock; /* making dummy_pwhash, once */

    pthread_mutex_t maint_lock;
    int64_t last_purge;
    int64_t last_store_purge;   /* the last pass of tka_purge */
    int purge_backlog;          /* the last pass stopped at its budget: the next runs a second later */
    int purge_next;             /* the kind the next pass starts with (round robin) */
    int64_t purge_revoked_from; /* revoked families are looked for from here (0: all) */

    pthread_mutex_t hook_lock; /* oidc.c: the sign-out hook */
    void (*signout_fn)(void *ud, const char *sid, const char *reason);
    void *signout_ud;

    unsigned char dummy_hash[32]; /* compared against for unknown clients */

    _Atomic uint64_t n_issued_cc;
    _Atomic uint64_t n_auth_failed;
    _Atomic uint64_t n_auth_throttled;
    _Atomic uint64_t n_rotated;
    _Atomic uint64_t n_revocations;
    _Atomic uint64_t n_issued_code;
    _Atomic uint64_t n_issued_refresh;
    _Atomic uint64_t n_refresh_reuse;
    _Atomic uint64_t n_logins;
    _Atomic uint64_t n_login_failed;
    _Atomic uint64_t n_login_throttled;
    _Atomic uint64_t n_codes;
    char dummy_pwhash[160]; /* verified against for unknown users */
};

/* seal.c: AES-256-GCM with the master key; AAD binds the sealed bytes to
 * what they belong to (the kid). */
int tka_seal(const unsigned char key[TKA_MASTER_KEY_LEN], const char *aad, const unsigned char *pt, size_t pt_len,
             unsigned char **out, size_t *out_len);
int tka_unseal(const unsigned char key[TKA_MASTER_KEY_LEN], const char *aad, const unsigned char *in, size_t in_len,
               unsigned char **out, size_t *out_len);
/* SHA-256 of what is stored hashed (secrets, cookies, codes, refresh
 * tokens); all 0xff on failure, which matches no stored hash. */
void tka_sha256(const void *p, size_t n, unsigned char out[32]);
/* n random bytes as base64url into buf. */
int tka_random_b64(size_t n, char *buf, size_t cap);

/* keyring.c. The algs the ring keeps a key pair for: cfg.alg (access
 * tokens), then cfg.id_token_alg when it differs (RS256, which OpenID
 * Connect requires for ID tokens). Returns how many (1 or 2). */
size_t tka_ring_algs(const tka_authority *a, tk_alg algs[TKA_ALGS_MAX]);
/* The active signing key for `alg` in the current ring, with the ring read
 * lock HELD on success (release with pthread_rwlock_unlock(&a->ring_lock));
 * NULL, lock released, when the ring keeps no key of that alg. */
const tk_key *tka_ring_signer_lock(tka_authority *a, tk_alg alg);
int tka_ring_load(tka_authority *a, int64_t now, char *err, size_t err_cap);
void tka_ring_free(struct tka_ring *r);

/* revset.c: the set itself, not thread-safe (see the comment there).
 * tka_rev_key: -1 for a value no revocation can have (empty, or longer
 * than TKS_VALUE_MAX). _put keeps the first reason, the earliest revoked_at
 * and the latest until of a known key; -1 when out of memory. _reserve
 * makes room for n entries at once; _get returns a borrowed slot (until the
 * next change), _del 1 when it removed one, _purge_expired how many it
 * removed (until <= now). */
void tka_revset_init(struct tka_revset *s, const unsigned char hash_key[TKA_REV_HASH_KEY_LEN]);
void tka_revset_free(struct tka_revset *s);
int tka_rev_key(const unsigned char hash_key[TKA_REV_HASH_KEY_LEN], enum tks_revocation_kind kind, const char *value,
                size_t len, unsigned char out[TKA_REV_KEY_LEN]);
int tka_revset_reserve(struct tka_revset *s, size_t n);
int tka_revset_put(struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN], const char *reason,
                   int64_t revoked_at, int64_t until);
/* A row of a load (tka_revset_put_batch): the reason already interned. */
struct tka_rev_row {
    unsigned char key[TKA_REV_KEY_LEN];
    uint8_t reason;
    int64_t revoked_at, until;
};
uint8_t tka_revset_intern(struct tka_revset *s, const char *reason);
int tka_revset_put_batch(struct tka_revset *s, const struct tka_rev_row *rows, size_t n);
const struct tka_rev_slot *tka_revset_get(const struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN]);
const char *tka_revset_reason(const struct tka_revset *s, const struct tka_rev_slot *e);
int tka_revset_del(struct tka_revset *s, const unsigned char key[TKA_REV_KEY_LEN]);
size_t tka_revset_purge_expired(struct tka_revset *s, int64_t now);
size_t tka_revset_bytes(const struct tka_revset *s);

/* tokens.c: the authority's set, under rev_lock. _add does nothing while the
 * set is not loaded (cfg.lazy_revocations: it is read whole from the store
 * on first use). */
int tka_revset_add(tka_authority *a, enum tks_revocation_kind kind, const char *value, const char *reason,
                   int64_t revoked_at, int64_t until);
int tka_revset_refresh(tka_authority *a, int64_t now);
void tka_revset_purge(tka_authority *a, int64_t now);

/* clients.c: failed-attempt throttling of `kind` 'c' (client
 * authentication) or 'u' (user sign-in), by address, by (identity,
 * address) and by identity, in the store; see the comment there. wait:
 * seconds, or -1 when the store cannot tell; fail: 0, -1 on a store
 * failure, or the seconds to wait when the counts before this failure
 * already called for a wait (a block from another instance that had not
 * reached this one): then answer as throttled. */
int64_t tka_throttle_wait(tka_authority *a, char kind, const char *id, size_t id_len, const char *ip, int64_t now);
int64_t tka_throttle_fail(tka_authority *a, char kind, const char *id, size_t id_len, const char *ip, int64_t now);
void tka_throttle_success(tka_authority *a, char kind, const char *id, size_t id_len, const char *ip, int64_t now);
/* cache.c: clients and failed-attempt counters in memory on a watched
 * store (see the comment there). tka_client_get is tks_client_get through
 * the cache. tka_cache_attempts_get: 0 and blocked_until[i] (present: bit
 * i set when key i has a counter) when the copy is trusted, else -1 (read
 * the store). _put records this instance's own counted failures (blocked_
 * until NULL) and blocks. */
int tka_cache_open(tka_authority *a);
void tka_cache_free(tka_authority *a);
tks_result tka_client_get(tka_authority *a, const char *id, tks_client *out);
void tka_cache_clients_changed(tka_authority *a);
int tka_cache_load_attempts(tka_authority *a, int64_t now);
int tka_cache_attempts_get(tka_authority *a, const uint64_t *keys, size_t n, int64_t *blocked_until, int *present);
void tka_cache_attempts_put(tka_authority *a, const uint64_t *keys, size_t n, const int64_t *blocked_until);
/* flow.c: RFC 7009 for refresh tokens (same returns as tka_revoke_token). */
int tka_revoke_refresh(tka_authority *a, const tks_client *client, const char *tok, size_t len, int64_t now);
/* tokens.c: signs an RFC 9068 access token for client (sub, sid may be NULL: then sub = client id, no sid). */
tka_grant_result tka_issue_access(tka_authority *a, const tks_client *c, const char *sub, const char *sid,
                                  const char *scope, const char *aud, int64_t now, tka_issued *out, char *why,
                                  size_t why_cap);
/* oidc.c: tells the sign-out hook (if any) that sign-in `sid` ended. */
void tka_signout_notify(tka_authority *a, const char *sid, const char *reason);
/* seal.c: is every item of the space-separated `asked` in `allowed`? When
 * not, the first one that is not goes into bad (may be NULL). */
int tka_list_subset(const char *asked, const char *allowed, char *bad, size_t bad_cap);
/* Is s a valid space-separated list of scope tokens (RFC 6749 section 3.3)? */
int tka_valid_scope_list(const char *s);

#endif
