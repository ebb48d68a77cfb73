/*
 * internal.h — what the authority's modules share: the authority struct,
 * the key ring snapshot, the revocation set and the throttle table.
 */
#ifndef TOKEND_AUTHORITY_INTERNAL_H
#define TOKEND_AUTHORITY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "authority/authority.h"

/* An immutable view of the key ring: what verifies, and what signs. Swapped
 * whole under ring_lock; readers hold the read lock while they use it. */
struct tka_ring {
    tk_keyset *verify; /* public keys: next, active, retired-but-verifying */
    tk_key *signer;    /* the active private key */
    char active_kid[TKS_ID_MAX + 1];
    int64_t active_since;
};

/* Revocations in memory: open hashing on (kind, value). */
struct tka_rev_entry {
    struct tka_rev_entry *next;
    enum tks_revocation_kind kind;
    int64_t revoked_at;
    int64_t until;
    char reason[TKS_REASON_MAX + 1];
    char value[]; /* NUL-terminated */
};

struct tka_revset {
    struct tka_rev_entry **buckets;
    size_t n_buckets;
    size_t count;
};

/* Failed-attempt throttling: a fixed table, so that an attacker spraying
 * ids or addresses cannot grow memory. */
#define TKA_THROTTLE_SLOTS 4096
struct tka_throttle_slot {
    uint64_t key_hash; /* 0: free */
    int64_t window_start;
    int64_t blocked_until;
    uint32_t failures;
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
    int64_t rev_seq;

    pthread_mutex_t thr_lock;
    struct tka_throttle_slot thr[TKA_THROTTLE_SLOTS];

    pthread_mutex_t maint_lock;
    int64_t last_purge;

    unsigned char dummy_hash[32]; /* compared against for unknown clients */

    _Atomic uint64_t n_issued_cc;
    _Atomic uint64_t n_auth_failed;
    _Atomic uint64_t n_auth_throttled;
    _Atomic uint64_t n_rotated;
    _Atomic uint64_t n_revocations;
};

/* seal.c: AES-256-GCM with the master key; AAD binds the sealed bytes to
 * what they belong to (the kid). */
int tka_seal(const unsigned char key[TKA_MASTER_KEY_LEN], const char *aad, const unsigned char *pt, size_t pt_len,
             unsigned char **out, size_t *out_len);
int tka_unseal(const unsigned char key[TKA_MASTER_KEY_LEN], const char *aad, const unsigned char *in, size_t in_len,
               unsigned char **out, size_t *out_len);
/* n random bytes as base64url into buf. */
int tka_random_b64(size_t n, char *buf, size_t cap);

/* keyring.c */
int tka_ring_load(tka_authority *a, int64_t now, char *err, size_t err_cap);
void tka_ring_free(struct tka_ring *r);

/* tokens.c */
int tka_revset_add(tka_authority *a, enum tks_revocation_kind kind, const char *value, const char *reason,
                   int64_t revoked_at, int64_t until);
int tka_revset_refresh(tka_authority *a, int64_t now);
void tka_revset_purge(tka_authority *a, int64_t now);
void tka_revset_free(struct tka_revset *s);

/* clients.c */
/* Is s a valid space-separated list of scope tokens (RFC 6749 section 3.3)? */
int tka_valid_scope_list(const char *s);

#endif
