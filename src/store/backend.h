/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backend.h — the private seam between store.c and one storage backend
 * (sqlite.c now, postgres.c later). Nothing outside src/store/ includes it.
 *
 * Division of work:
 *  - store.c owns everything that must be the same for every backend: URL
 *    dispatch, argument checks (NULLs, lengths, enums), zeroing of
 *    out-parameters, per-thread error messages, and the callback loops of the
 *    list functions.
 *  - A backend only moves rows. Its functions are called with arguments that
 *    store.c has already checked (strings NUL-terminated and within the
 *    limits of store.h or of this header), and it checks every value it
 *    reads back against the same limits (a too-long value is TKS_ERR, never
 *    truncated: the store may have been written by something else).
 *  - List functions are paged: the backend fills up to `cap` rows after a
 *    cursor and returns; store.c calls the user's callback with no backend
 *    lock held. So a callback may be slow or call back into the store, and
 *    each row is delivered at most once, in order, even if the table changes
 *    during the listing (the listing is not a snapshot).
 *  - On any result other than TKS_OK / TKS_NOT_FOUND the backend has called
 *    tksi_seterr() with a message that holds no secret.
 */
#ifndef TOKEND_STORE_BACKEND_H
#define TOKEND_STORE_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Limits of values that store.h does not bound itself. */
#define TKSI_JWK_MAX 16384    /* a public JWK: RSA-4096 is ~0.8 KiB; room for x5c-free extras */
#define TKSI_SEALED_MAX 16384 /* a sealed private JWK: RSA-4096 private JWK is ~3.2 KiB plus GCM framing */
#define TKSI_ALG_MAX 15       /* tks_key_row.alg is char[16] */
#define TKSI_KIND_MAX 64      /* audit event kinds: short snake_case names */
#define TKSI_IP_MAX 64        /* an IPv6 address with zone id fits (INET6_ADDRSTRLEN is 46) */
#define TKSI_PAGE 32          /* rows per page of a list function (a page of clients is ~140 KiB) */
#define TKSI_REV_PAGE 4096    /* rows per page of the revocation catch-up (1.3 MiB): a million rows load in 245 reads */

/* An audit event as a backend returns it; `id` is the paging cursor (it
 * grows with insertion order, so "newest" means "recorded last"). */
typedef struct tksi_audit_row {
    int64_t id;
    int64_t at;
    char kind[TKSI_KIND_MAX + 1];
    char client_id[TKS_ID_MAX + 1];
    char ip[TKSI_IP_MAX + 1];
    char detail[TKS_DETAIL_MAX + 1];
} tksi_audit_row;

/* A client id as the paged listing of tks_session_clients returns it. */
typedef struct tksi_client_id {
    char id[TKS_ID_MAX + 1];
} tksi_client_id;

/* One backend: what store.c calls. Strings are NUL-terminated and within
 * limits; `rows` of a *_page function has room for `cap` (>= 1) rows, all
 * zeroed by the caller; *n is the number filled (fewer than cap: the end). */
typedef struct tksi_backend {
    const char *name; /* "sqlite", for messages */
    void (*close)(tks_store *s);
    tks_result (*ping)(tks_store *s);
    /* Commits one small write (meta.write_probe = now). */
    tks_result (*probe_write)(tks_store *s, int64_t now);

    tks_result (*client_insert)(tks_store *s, const tks_client *c);
    tks_result (*client_get)(tks_store *s, const char *id, tks_client *out);
    tks_result (*client_set_disabled)(tks_store *s, const char *id, int disabled);
    tks_result (*client_delete)(tks_store *s, const char *id);
    /* Clients with id > after (bytewise), in id order; after "" = from the start. */
    tks_result (*client_page)(tks_store *s, const char *after, tks_client *rows, size_t cap, size_t *n);

    /* k->public_jwk may be NULL (HMAC keys have no public part). */
    tks_result (*key_insert)(tks_store *s, const tks_key_row *k);
    /* Keys after (after_created, after_kid) in (created_at, kid) order; start
     * with (INT64_MIN, ""). Filled rows own their buffers (tks_key_row_clear). */
    tks_result (*key_page)(tks_store *s, int64_t after_created, const char *after_kid, tks_key_row *rows, size_t cap,
                           size_t *n);
    tks_result (*key_set_state)(tks_store *s, const char *kid, enum tks_key_state state, int64_t now,
                                int64_t verify_until);
    tks_result (*key_delete)(tks_store *s, const char *kid);
    tks_result (*key_generation)(tks_store *s, int64_t *out);
    /* store.h tks_key_rotate; new_next->public_jwk may be NULL. */
    tks_result (*key_rotate)(tks_store *s, const char *active_kid, int64_t next_born_by, int64_t now,
                             int64_t verify_until, const tks_key_row *new_next);

    /* reason is never NULL here (store.c passes "" for none). */
    tks_result (*revoke)(tks_store *s, enum tks_revocation_kind kind, const char *value, const char *reason,
                         int64_t now, int64_t until);
    /* store.h tks_revoke_batch: n in 1..TKS_REVOKE_BATCH_MAX, values
     * checked; reason never NULL. */
    tks_result (*revoke_batch)(tks_store *s, enum tks_revocation_kind kind, const char *const *values, size_t n,
                               const char *reason, int64_t now, int64_t until, size_t *added);
    /* store.h tks_revocation_get (out zeroed by store.c) and tks_revocations_count. */
    tks_result (*revocation_get)(tks_store *s, enum tks_revocation_kind kind, const char *value, int64_t now,
                                 tks_revocation *out);
    tks_result (*revocations_count)(tks_store *s, int64_t now, size_t *n);
    /* Revocations with seq > after_seq and until > now, in seq order. */
    tks_result (*revocation_page)(tks_store *s, int64_t after_seq, int64_t now, tks_revocation *rows, size_t cap,
                                  size_t *n);
    tks_result (*revocations_purge)(tks_store *s, int64_t now);
    /* Catch-up (store.h tks_revocations_changed): up to `cap` revocations in
     * force at `now` at or after position `cursor`, in the backend's own
     * order, after the row (after_key) of the previous page (after_key 0:
     * the first page); *next_cursor is the position the whole listing
     * moves the cursor to (set on the first page, kept on the others), and
     * *last_key the paging key of the last row filled. */
    tks_result (*revocation_changes)(tks_store *s, int64_t cursor, int64_t after_key, int64_t now, tks_revocation *rows,
                                     size_t cap, size_t *n, int64_t *next_cursor, int64_t *last_key);
    /* NULL when the backend cannot watch (store.h tks_watch; fn NULL: stop). */
    tks_result (*watch)(tks_store *s, void (*fn)(int what, void *ud), void *ud);

    /* store.h failed-attempt counters; n is 1..TKS_ATTEMPT_KEYS; at_least
     * never NULL here (store.c passes zeros). */
    tks_result (*attempts_fail)(tks_store *s, const uint64_t *keys, size_t n, const uint32_t *at_least, int64_t now,
                                int64_t window, uint32_t *failures);
    tks_result (*attempts_block)(tks_store *s, const uint64_t *keys, size_t n, const int64_t *until);
    tks_result (*attempts_get)(tks_store *s, const uint64_t *keys, size_t n, int64_t *blocked_until);
    tks_result (*attempts_clear)(tks_store *s, uint64_t key);
    tks_result (*attempts_purge)(tks_store *s, int64_t now, int64_t window);
    tks_result (*attempts_live)(tks_store *s, int64_t now, int64_t window, size_t max,
                                int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud);

    /* client_id, ip and detail may be NULL (stored as absent). */
    tks_result (*audit)(tks_store *s, int64_t now, const char *kind, const char *client_id, const char *ip,
                        const char *detail);
    /* Events with id < before_id, newest first; start with INT64_MAX.
     * Absent client_id / ip / detail come back as "". */
    tks_result (*audit_page)(tks_store *s, int64_t before_id, tksi_audit_row *rows, size_t cap, size_t *n);

    /* Schema 2. An insert whose user or client does not exist is
     * TKS_NOT_FOUND (with a message); a taken key is TKS_EXISTS. */
    tks_result (*user_insert)(tks_store *s, const tks_user *u);
    tks_result (*user_get)(tks_store *s, const char *id, tks_user *out);
    tks_result (*user_set_password)(tks_store *s, const char *id, const char *pwhash, int64_t now);
    tks_result (*user_set_disabled)(tks_store *s, const char *id, int disabled);
    tks_result (*user_set_profile)(tks_store *s, const tks_user *u);
    tks_result (*user_delete)(tks_store *s, const char *id);
    /* Users with id > after (bytewise), in id order; after "" = from the start. */
    tks_result (*user_page)(tks_store *s, const char *after, tks_user *rows, size_t cap, size_t *n);

    tks_result (*session_insert)(tks_store *s, const tks_session *se);
    tks_result (*session_get)(tks_store *s, const unsigned char id_hash[32], tks_session *out);
    /* last_seen = max(last_seen, now); TKS_NOT_FOUND for an unknown session. */
    tks_result (*session_touch)(tks_store *s, const unsigned char id_hash[32], int64_t now);
    /* Sets ended_at = now unless already ended (the first end is kept);
     * TKS_NOT_FOUND for an unknown sid. now > 0. */
    tks_result (*session_end)(tks_store *s, const char *sid, int64_t now);

    /* Inserts the code and its (sid, client_id) into session_clients
     * (an existing pair is kept) in one transaction. */
    tks_result (*code_insert)(tks_store *s, const tks_code *c);
    /* Atomic (see store.h); now > 0, so a used row never reads as unused.
     * *out is filled on TKS_OK and TKS_EXISTS. */
    tks_result (*session_end_user)(tks_store *s, const char *user_id, int64_t now, int (*fn)(const char *sid, void *ud),
                                   void *ud);
    /* Marks the code used and inserts `first` (may be NULL) in one
     * transaction; see tks_code_exchange. */
    tks_result (*code_exchange)(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *first,
                                tks_code *out);
    tks_result (*code_get)(tks_store *s, const unsigned char hash[32], tks_code *out);
    tks_result (*code_purge)(tks_store *s, int64_t now);

    tks_result (*refresh_insert)(tks_store *s, const tks_refresh *r);
    /* As code_exchange: marks used and inserts `next` (may be NULL). */
    tks_result (*refresh_rotate)(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *next,
                                 tks_refresh *out);
    tks_result (*refresh_get)(tks_store *s, const unsigned char hash[32], tks_refresh *out);
    tks_result (*refresh_purge)(tks_store *s, int64_t now);

    /* Schema 5. */
    tks_result (*session_get_sid)(tks_store *s, const char *sid, tks_session *out);
    /* Client ids recorded for `sid` (by code_insert) with id > after
     * (bytewise), in id order; after "" = from the start. */
    tks_result (*session_client_page)(tks_store *s, const char *sid, const char *after, tksi_client_id *rows,
                                      size_t cap, size_t *n);
    /* An upsert: a user or client that does not exist is TKS_NOT_FOUND. */
    tks_result (*consent_put)(tks_store *s, const tks_consent *c);
    tks_result (*consent_get)(tks_store *s, const char *user_id, const char *client_id, tks_consent *out);
    /* The user's consents with client_id > after (bytewise), in client id
     * order; after "" = from the start. */
    tks_result (*consent_page)(tks_store *s, const char *user_id, const char *after, tks_consent *rows, size_t cap,
                               size_t *n);
    /* client_id NULL: every consent of the user; *n gets the rows deleted. */
    tks_result (*consent_delete)(tks_store *s, const char *user_id, const char *client_id, int *n);

    /* Schema 6: one batch of a purge (store.h); `p` and 1 <= limit <=
     * TKS_PURGE_LIMIT_MAX checked. */
    tks_result (*purge_batch)(tks_store *s, const tks_purge *p, size_t limit, size_t *n);
} tksi_backend;

/* An open store. Owned by store.c; `impl` belongs to the backend. */
struct tks_store {
    const tksi_backend *be;
    void *impl;
    uint64_t id;        /* unique per tks_open in this process: keys the error slots */
    int schema_version; /* set by the backend's open */
    /* fault injection (store.h): the write point to fail + 1; 0 = disarmed
     * (so a zeroed store is disarmed) */
    _Atomic int64_t fault_at;
    _Atomic int64_t fault_seen;
    _Atomic int fault_sticky;
};

/* Backend constructors. Each fills s->be, s->impl and s->schema_version, or
 * returns non-OK with a message in err (and leaves nothing to free). */
tks_result tksi_sqlite_open(tks_store *s, const char *path, char *err, size_t err_cap);
/* For tests only: as tksi_sqlite_open, but migrates no further than schema
 * `target` (a store already past it is refused). The store is then only good
 * for tks_close: statements are written for the latest schema. This is how a
 * test makes a store "as an older tokend left it" with the shipped
 * migrations themselves. */
tks_result tksi_sqlite_open_at(tks_store *s, const char *path, int target, char *err, size_t err_cap);

/* Called by a backend before each write point (store.h, fault injection):
 * non-zero means "fail this write" (the message is set already). */
int tksi_fault_hit(tks_store *s, const char *what);

/* The PostgreSQL backend: `conninfo` is a postgres:// URL or libpq
 * key/value text (it may hold a password; never printed), `password`
 * (may be NULL) overrides one there, `pool` connections at most (0: 8).
 * An unreachable server is TKS_BUSY. _at migrates no further than schema
 * `target`, for tests, as tksi_sqlite_open_at. */
tks_result tksi_pg_open(tks_store *s, const char *conninfo, const char *password, unsigned pool, char *err,
                        size_t err_cap);
tks_result tksi_pg_open_at(tks_store *s, const char *conninfo, const char *password, unsigned pool, int target,
                           char *err, size_t err_cap);

/* Records the calling thread's last error on s (see tks_errmsg). */
void tksi_seterr(tks_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* tks_attempts_get in both backends: a row callback (key, blocked_until)
 * that fills blocked_until[i] of the keys asked for. */
struct tksi_wanted {
    const uint64_t *keys;
    size_t n;
    int64_t *blocked_until;
};
int tksi_take_wanted(uint64_t key, int64_t blocked_until, void *ud);

#endif
