/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h — tokend's persistence, behind one interface (DESIGN.md "Layers").
 *
 * A backend is chosen by URL when the store is opened: "sqlite://PATH"
 * (sqlite.c, the default "sqlite://./tokend.db") and, later, "postgres://..."
 * (postgres.c). Nothing above this header knows which one is in use.
 *
 * What is stored, and how (SECURITY.md rule 16):
 *  - clients: the secret only as SHA-256 (client secrets are 256-bit random
 *    values, so a fast hash is safe: there is nothing to brute-force);
 *  - signing keys: the private JWK sealed with AES-256-GCM under the master
 *    key (the store sees only the sealed bytes), the public JWK in clear;
 *  - refresh tokens: hash only, with family (sid), parent and used-at;
 *  - revocations: by jti or sid, with reason and the time after which the
 *    token would have expired anyway (then the row may be purged);
 *  - audit events.
 *
 * Thread safety: one tks_store may be used from any number of threads; the
 * backend serialises what it must. Every function returns a tks_result;
 * TKS_ERR comes with a message from tks_errmsg() (never holding secrets).
 * Times are Unix seconds.
 */
#ifndef TOKEND_STORE_H
#define TOKEND_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef enum tks_result {
    TKS_OK = 0,
    TKS_NOT_FOUND = 1, /* no such row */
    TKS_EXISTS = 2,    /* unique key taken (client id, kid) */
    TKS_ERR = 3,       /* the backend failed: see tks_errmsg() */
    TKS_BUSY = 4,      /* the backend is locked or unreachable: retry, or answer 503 */
    /* The answer to a COMMIT was lost and the backend could not be asked
     * afterwards whether it took effect: it may have. Only the single-use
     * writes (tks_code_exchange, tks_refresh_rotate) return it; answer 503
     * and do not claim that nothing was spent. */
    TKS_UNKNOWN = 5,
} tks_result;

typedef struct tks_store tks_store;

#define TKS_ID_MAX 64      /* client ids, kids (bytes, without NUL) */
#define TKS_NAME_MAX 128   /* client names */
#define TKS_LIST_MAX 2048  /* space-separated scope and audience lists */
#define TKS_VALUE_MAX 256  /* jti / sid values */
#define TKS_REASON_MAX 32  /* revocation reasons: logout, admin, refresh_reuse, ... */
#define TKS_DETAIL_MAX 512 /* audit details */

#define TKS_URI_MAX 512    /* one redirect URI */
#define TKS_URIS_MAX 2048  /* space-separated redirect URIs */
#define TKS_PWHASH_MAX 255 /* an Argon2id hash string (crypto_pwhash_STRBYTES is 128) */
#define TKS_SID_MAX 64     /* session ids (sid claim) */
#define TKS_NONCE_MAX 255  /* OpenID Connect nonce */

typedef struct tks_client {
    char id[TKS_ID_MAX + 1];
    char name[TKS_NAME_MAX + 1];
    unsigned char secret_hash[32];    /* SHA-256 of the secret; unused for public clients */
    char scopes[TKS_LIST_MAX + 1];    /* scopes it may request, space-separated */
    char audiences[TKS_LIST_MAX + 1]; /* audiences it may request; the first is the default */
    int64_t ttl;                      /* access token lifetime, seconds */
    int disabled;
    int64_t created_at;
    /* Schema 2: user sign-in (authorization code + PKCE, RFC 6749 section
     * 4.1, RFC 7636). */
    char redirect_uris[TKS_URIS_MAX + 1]; /* exact URIs, space-separated; "" = none */
    int is_public;                        /* no secret; PKCE required */
    char grant_types[128];                /* space-separated: client_credentials authorization_code refresh_token */
    /* Schema 3: audiences this client serves as a resource server. It may
     * introspect tokens issued for them (RFC 7662 section 4), as well as
     * its own; space-separated, "" = none. */
    char serves[TKS_LIST_MAX + 1];
    /* Schema 5: OpenID Connect. The back-channel logout URI ("" = none;
     * OpenID Back-Channel Logout 1.0), the alg of its ID tokens ("" =
     * RS256, the default of OpenID Connect Dynamic Client Registration),
     * and whether it is a third-party application whose users are asked
     * for consent (0: first-party, no consent page). */
    char backchannel_logout_uri[TKS_URI_MAX + 1];
    char id_token_alg[16];
    int consent;
} tks_client;

enum tks_key_state { TKS_KEY_NEXT = 0, TKS_KEY_ACTIVE = 1, TKS_KEY_RETIRED = 2 };

typedef struct tks_key_row {
    char kid[TKS_ID_MAX + 1];
    char alg[16];
    enum tks_key_state state;
    int64_t created_at;
    int64_t activated_at;  /* 0 until active */
    int64_t retired_at;    /* 0 until retired */
    int64_t verify_until;  /* a retired key verifies until then; 0 = not retired */
    char *public_jwk;      /* owned by the row (tks_key_row_clear) */
    unsigned char *sealed; /* AES-256-GCM sealed private JWK, owned */
    size_t sealed_len;
} tks_key_row;

enum tks_revocation_kind { TKS_REVOKE_JTI = 1, TKS_REVOKE_SID = 2 };

typedef struct tks_revocation {
    int64_t seq; /* increasing per store: lets caches fetch what is new */
    enum tks_revocation_kind kind;
    char value[TKS_VALUE_MAX + 1];
    char reason[TKS_REASON_MAX + 1];
    int64_t revoked_at;
    int64_t until; /* after this the token has expired anyway */
} tks_revocation;

/* Opens (creating and migrating when needed) the store named by `url`:
 * "sqlite://PATH", or PostgreSQL as "postgres://user@host:port/db?..."
 * ("postgresql://" too) or libpq's key/value form ("host=... dbname=...").
 * On failure *out is NULL and err holds why (never the URL: it may hold a
 * password). An unreachable PostgreSQL is TKS_BUSY. */
tks_result tks_open(const char *url, tks_store **out, char *err, size_t err_cap);

typedef struct tks_open_opts {
    const char *password; /* PostgreSQL: overrides one in the URL (e.g. from a file); NULL: none */
    unsigned pool;        /* PostgreSQL: connections at most (0: 8); size it for the server's threads */
} tks_open_opts;
tks_result tks_open_ex(const char *url, const tks_open_opts *opts, tks_store **out, char *err, size_t err_cap);
/* The store URL for messages, with any password replaced by "***"
 * (postgres://user:***@host/db, password=*** in key/value form). */
void tks_url_redact(const char *url, char *out, size_t cap);
/* "sqlite" or "postgres" (the backend in use). */
const char *tks_backend_name(tks_store *s);
void tks_close(tks_store *s);
/* The last error message of this thread on this store (static storage). */
const char *tks_errmsg(tks_store *s);
/* The schema version the store is at. */
int tks_schema_version(tks_store *s);
/* A cheap round trip, for /readyz. */
tks_result tks_ping(tks_store *s);
/* A real write, committed (for /readyz: a store that reads but cannot
 * write cannot sign anyone in or revoke anything). */
tks_result tks_probe_write(tks_store *s, int64_t now);

/* ---- fault injection (tests only) ----------------------------------------
 * Every write a backend makes (each statement that changes rows, and each
 * BEGIN and COMMIT) is a numbered "write point". Armed with `nth`, the store
 * fails write point number nth (0 = the next one) with TKS_ERR ("injected
 * fault"), and every later one too when `sticky`. A failure inside a
 * transaction rolls the whole transaction back, as a real I/O error would.
 * The fault tests use this to fail each write of a grant in turn (SECURITY.md
 * rules 19 and 20). Nothing in the server arms it. */
void tks_fault_arm(tks_store *s, int64_t nth, int sticky);
void tks_fault_disarm(tks_store *s);
/* Write points seen since the last arm (whether or not they failed). */
int64_t tks_fault_points(tks_store *s);

/* Clients. */
tks_result tks_client_insert(tks_store *s, const tks_client *c);
tks_result tks_client_get(tks_store *s, const char *id, tks_client *out);
tks_result tks_client_set_disabled(tks_store *s, const char *id, int disabled);
tks_result tks_client_delete(tks_store *s, const char *id);
/* Calls fn for each client in id order; fn returns non-zero to stop. */
tks_result tks_client_list(tks_store *s, int (*fn)(const tks_client *c, void *ud), void *ud);

/* Signing keys. */
/* TKS_EXISTS when the kid is taken, or when a key of the same alg is
 * already in k->state and that state is active or next (one active and
 * one next key per alg: schema 5; one in all before). */
tks_result tks_key_insert(tks_store *s, const tks_key_row *k);
/* Calls fn for each key, oldest first. The row is valid during the call. */
tks_result tks_key_list(tks_store *s, int (*fn)(const tks_key_row *k, void *ud), void *ud);
/* Moves a key to `state` at `now`; retiring sets verify_until. */
tks_result tks_key_set_state(tks_store *s, const char *kid, enum tks_key_state state, int64_t now,
                             int64_t verify_until);
tks_result tks_key_delete(tks_store *s, const char *kid);
/* One rotation of the key ring, in one transaction, decided once however
 * many instances try at the same moment: when `active_kid` is still the
 * active key and the oldest next key was created at or before
 * `next_born_by` (published long enough for every JWKS cache to hold it),
 * the active key retires (verifying until `verify_until`), that next key
 * becomes active and `new_next` is stored as the next one. Only keys of
 * new_next->alg take part (each alg has its own ring: schema 5). TKS_OK:
 * rotated; TKS_EXISTS: `active_kid` is no longer the active key (another
 * instance rotated first): nothing changed; TKS_NOT_FOUND: no next key old
 * enough: nothing changed. */
tks_result tks_key_rotate(tks_store *s, const char *active_kid, int64_t next_born_by, int64_t now, int64_t verify_until,
                          const tks_key_row *new_next);
/* A number that changes whenever the key table changes (for pollers). */
tks_result tks_key_generation(tks_store *s, int64_t *out);
void tks_key_row_clear(tks_key_row *k);

/* Revocations. Revoking what is already revoked is TKS_OK. */
tks_result tks_revoke(tks_store *s, enum tks_revocation_kind kind, const char *value, const char *reason, int64_t now,
                      int64_t until);
/* tks_revoke of n values (1 to TKS_REVOKE_BATCH_MAX, each 1 to TKS_VALUE_MAX
 * bytes; repeats allowed) of one kind, in one transaction: all or none.
 * *added: how many (kind, value) were not in the store before. */
#define TKS_REVOKE_BATCH_MAX 1000
tks_result tks_revoke_batch(tks_store *s, enum tks_revocation_kind kind, const char *const *values, size_t n,
                            const char *reason, int64_t now, int64_t until, size_t *added);
/* The revocation of (kind, value) in force at `now` (until > now), or
 * TKS_NOT_FOUND: one indexed lookup, for who needs one answer. */
tks_result tks_revocation_get(tks_store *s, enum tks_revocation_kind kind, const char *value, int64_t now,
                              tks_revocation *out);
/* How many revocations are in force at `now` (to size a cache). */
tks_result tks_revocations_count(tks_store *s, int64_t now, size_t *n);
/* Calls fn for each revocation with seq > since that is still in force at
 * `now`, in seq order. */
tks_result tks_revocations_since(tks_store *s, int64_t since, int64_t now, int (*fn)(const tks_revocation *r, void *ud),
                                 void *ud);
/* The catch-up of a revocation cache: every revocation in force at `now`
 * that was added or changed since the position *cursor names (0: from the
 * start), each at least once, in no particular order; *cursor then names
 * the new position. Unlike seq order, this is safe with writers on other
 * connections whose commits land out of seq order (PostgreSQL sequences
 * do): the cursor only moves past what can no longer change. The cursor is
 * opaque: a value this function returned, or 0. Rows are read in pages of
 * TKSI_REV_PAGE (4096), one statement each; fn runs outside the store's
 * locks and may call the store. */
tks_result tks_revocations_changed(tks_store *s, int64_t *cursor, int64_t now,
                                   int (*fn)(const tks_revocation *r, void *ud), void *ud);
/* Deletes revocations whose `until` has passed. */
tks_result tks_revocations_purge(tks_store *s, int64_t now);

/* Changes made through other connections (other tokend instances, the
 * admin CLI), as they commit: `fn` is called from a thread of the store's
 * own, soon after a revocation, a signing key, a client or a block of
 * failed attempts changes anywhere, with
 * what changed (TKS_CHANGE_*); the caller then catches up (it is a hint,
 * never the data). Returns TKS_OK when the backend delivers them (then
 * also after a lost connection comes back, with TKS_CHANGE_ALL, since
 * changes may have been missed), TKS_NOT_FOUND when it cannot (SQLite: a
 * single process; callers poll). fn NULL stops watching: when it returns,
 * fn is not running and will not be called again (call it before freeing
 * what ud points to). The thread also stops in tks_close. */
enum {
    TKS_CHANGE_REVOCATIONS = 1,
    TKS_CHANGE_KEYS = 2,
    TKS_CHANGE_CLIENTS = 4,  /* a client was added, disabled, enabled or deleted */
    TKS_CHANGE_ATTEMPTS = 8, /* a failed-attempt counter now blocks a key */
    TKS_CHANGE_ALL = 15,
};
tks_result tks_watch(tks_store *s, void (*fn)(int what, void *ud), void *ud);

/* ---- users, sessions, codes and refresh tokens (schema 2) -------------------- */

#define TKS_PROFILE_MAX 256 /* a name or an e-mail address, bytes of UTF-8 */

typedef struct tks_user {
    char id[TKS_ID_MAX + 1];         /* the login name */
    char pwhash[TKS_PWHASH_MAX + 1]; /* Argon2id string (libsodium crypto_pwhash_str) */
    int disabled;
    int64_t created_at;
    int64_t password_changed_at;
    /* Profile (schema 4): the OpenID Connect standard claims of the user
     * ("" when not set), released by the scopes a client was granted. */
    char name[TKS_PROFILE_MAX + 1];
    char given_name[TKS_PROFILE_MAX + 1];
    char family_name[TKS_PROFILE_MAX + 1];
    char preferred_username[TKS_PROFILE_MAX + 1];
    char email[TKS_PROFILE_MAX + 1];
    int email_verified;
} tks_user;

tks_result tks_user_insert(tks_store *s, const tks_user *u);
tks_result tks_user_get(tks_store *s, const char *id, tks_user *out);
tks_result tks_user_set_password(tks_store *s, const char *id, const char *pwhash, int64_t now);
tks_result tks_user_set_disabled(tks_store *s, const char *id, int disabled);
/* Replaces the profile fields of the user `u->id` with those of `u`. */
tks_result tks_user_set_profile(tks_store *s, const tks_user *u);
/* Deleting a user deletes their sessions, codes and refresh tokens. */
tks_result tks_user_delete(tks_store *s, const char *id);
tks_result tks_user_list(tks_store *s, int (*fn)(const tks_user *u, void *ud), void *ud);

/* A browser session: the cookie value is stored only as its SHA-256. */
typedef struct tks_session {
    unsigned char id_hash[32];
    char sid[TKS_SID_MAX + 1]; /* public id: the sid claim of tokens issued in it */
    char user_id[TKS_ID_MAX + 1];
    int64_t created_at;
    int64_t last_seen;
    int64_t ended_at; /* 0 while active */
} tks_session;

tks_result tks_session_insert(tks_store *s, const tks_session *se);
tks_result tks_session_get(tks_store *s, const unsigned char id_hash[32], tks_session *out);
/* Updates last_seen (for the idle timeout). */
tks_result tks_session_touch(tks_store *s, const unsigned char id_hash[32], int64_t now);
/* Ends the session with that sid (logout, timeout, admin). */
tks_result tks_session_end(tks_store *s, const char *sid, int64_t now);

/* Every session of a user (for disabling or removing them): ends the ones
 * still active at `now`, then calls fn with each sid (active or not: tokens
 * issued in an idle-ended session may still be alive). No lock is held
 * during the calls. */
tks_result tks_session_end_user(tks_store *s, const char *user_id, int64_t now, int (*fn)(const char *sid, void *ud),
                                void *ud);
/* A session by its public id (schema 5): for logout by id_token_hint. */
tks_result tks_session_get_sid(tks_store *s, const char *sid, tks_session *out);
/* Every client that was issued a code in session `sid` (schema 5), in id
 * order, for back-channel logout. No lock is held during the calls. */
tks_result tks_session_clients(tks_store *s, const char *sid, int (*fn)(const char *client_id, void *ud), void *ud);

/* ---- consent (schema 5) ---------------------------------------------------
 * What a user allowed a third-party client: the scopes granted, remembered
 * per (user, client); a new grant replaces the old one. */
typedef struct tks_consent {
    char user_id[TKS_ID_MAX + 1];
    char client_id[TKS_ID_MAX + 1];
    char scope[TKS_LIST_MAX + 1];
    int64_t granted_at;
} tks_consent;

tks_result tks_consent_put(tks_store *s, const tks_consent *c);
tks_result tks_consent_get(tks_store *s, const char *user_id, const char *client_id, tks_consent *out);
/* Every consent of a user, in client id order. */
tks_result tks_consent_list(tks_store *s, const char *user_id, int (*fn)(const tks_consent *c, void *ud), void *ud);
/* Deletes the user's consent for `client_id`, or every one when NULL;
 * *n (may be NULL) gets how many were deleted (0 is TKS_OK). */
tks_result tks_consent_delete(tks_store *s, const char *user_id, const char *client_id, int *n);

typedef struct tks_refresh tks_refresh;

/* An authorization code: single use, stored as its SHA-256. */
typedef struct tks_code {
    unsigned char hash[32];
    char client_id[TKS_ID_MAX + 1];
    char user_id[TKS_ID_MAX + 1];
    char sid[TKS_SID_MAX + 1];
    char redirect_uri[TKS_URI_MAX + 1];
    char challenge[64]; /* PKCE S256 code_challenge (base64url of SHA-256: 43 chars) */
    char scope[TKS_LIST_MAX + 1];
    char audience[TKS_ID_MAX * 2 + 1];
    int64_t created_at;
    int64_t expires_at;
    int64_t used_at; /* 0 until redeemed */
    /* Schema 5 (OpenID Connect): the nonce of the authorization request
     * ("" = none), unique per client among stored codes, and when the
     * user signed in (the session's start: auth_time). */
    char nonce[TKS_NONCE_MAX + 1];
    int64_t auth_time;
} tks_code;

/* Stores a code, and records that its client took part in its session
 * (tks_session_clients), in one transaction. TKS_EXISTS when a stored code
 * of the same client has the same non-empty nonce (a nonce is single use). */
tks_result tks_code_insert(tks_store *s, const tks_code *c);
/* Redeems a code atomically: TKS_OK when it was unused (now marked used at
 * `now`); TKS_EXISTS when it had been used already (replay: *out says by
 * whom, so that the tokens issued from it can be revoked); TKS_NOT_FOUND.
 * Exactly one of two concurrent redeems gets TKS_OK. */
tks_result tks_code_redeem(tks_store *s, const unsigned char hash[32], int64_t now, tks_code *out);
/* Redeems a code and stores the first refresh token of its sign-in in ONE
 * transaction (SECURITY.md rule 19): `first` may be NULL (a client that
 * does not refresh). Results as tks_code_redeem; on TKS_EXISTS,
 * TKS_NOT_FOUND and every failure but TKS_UNKNOWN nothing is written, so a
 * failure leaves the code usable. A COMMIT whose answer is lost is asked
 * about on a new connection (PostgreSQL: pg_xact_status): committed is
 * TKS_OK, rolled back a failure, and only when that cannot be learned
 * TKS_UNKNOWN. */
tks_result tks_code_exchange(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *first,
                             tks_code *out);
/* Looks a code up without using it (to check it before redeeming). */
tks_result tks_code_get(tks_store *s, const unsigned char hash[32], tks_code *out);
/* Deletes codes that expired before `now`. */
tks_result tks_code_purge(tks_store *s, int64_t now);

/* A refresh token: opaque, stored as its SHA-256, in a family (sid). */
struct tks_refresh {
    unsigned char hash[32];
    unsigned char parent[32]; /* the token it replaced; all zero for the first */
    char sid[TKS_SID_MAX + 1];
    char client_id[TKS_ID_MAX + 1];
    char user_id[TKS_ID_MAX + 1];
    char scope[TKS_LIST_MAX + 1];
    char audience[TKS_ID_MAX * 2 + 1];
    int64_t created_at;
    int64_t expires_at;
    int64_t used_at;   /* 0 until rotated */
    int64_t auth_time; /* schema 5: when the user signed in (ID tokens issued on refresh) */
};

tks_result tks_refresh_insert(tks_store *s, const tks_refresh *r);
/* Marks a refresh token used, atomically: TKS_OK when it was unused;
 * TKS_EXISTS when it had been used (reuse: *out holds the row, its sid
 * names the family to revoke); TKS_NOT_FOUND. Exactly one of two
 * concurrent uses gets TKS_OK. */
tks_result tks_refresh_use(tks_store *s, const unsigned char hash[32], int64_t now, tks_refresh *out);
/* Rotation in ONE transaction (SECURITY.md rule 19): marks `hash` used at
 * `now` if it is unused and inserts `next`, the token that replaces it
 * (NULL: none, which is tks_refresh_use). TKS_OK: rotated (*out holds the
 * old row); TKS_EXISTS: it had been used already (*out holds the row with
 * its first used_at); TKS_NOT_FOUND. On anything but TKS_OK and
 * TKS_UNKNOWN nothing is written: the presented token stays usable (a lost
 * COMMIT answer as tks_code_exchange). Of N concurrent rotations of one
 * token exactly one gets TKS_OK. */
tks_result tks_refresh_rotate(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *next,
                              tks_refresh *out);
/* Looks a refresh token up without using it (for revocation, RFC 7009). */
tks_result tks_refresh_get(tks_store *s, const unsigned char hash[32], tks_refresh *out);
/* Deletes refresh tokens that expired before `now`. */
tks_result tks_refresh_purge(tks_store *s, int64_t now);

/* ---- failed-attempt counters (schema 3) --------------------------------------
 * Shared by every process on the store, so that N instances do not give a
 * guesser N times the attempts. A counter is keyed by a 64-bit hash (the
 * authority's: address, identity, or both) and counts failures in a window
 * of `window` seconds from its first failure; a counter whose window has
 * passed and that blocks nothing starts over. */
#define TKS_ATTEMPT_KEYS 3
/* Counts one failure on each of keys[0..n) (n <= TKS_ATTEMPT_KEYS) at
 * `now`, at least at_least[i] (NULL: 0), atomically per key, in one
 * transaction; failures[i] gets the count. */
tks_result tks_attempts_fail(tks_store *s, const uint64_t *keys, size_t n, const uint32_t *at_least, int64_t now,
                             int64_t window, uint32_t *failures);
/* Raises the blocked-until time of keys[i] to until[i] (never lowers it). */
tks_result tks_attempts_block(tks_store *s, const uint64_t *keys, size_t n, const int64_t *until);
/* blocked_until[i] of keys[0..n) (0 when none), in one read. */
tks_result tks_attempts_get(tks_store *s, const uint64_t *keys, size_t n, int64_t *blocked_until);
/* Forgets a counter (a success clears its (identity, address) pair). */
tks_result tks_attempts_clear(tks_store *s, uint64_t key);
/* Deletes counters whose window has passed and that block nothing. */
tks_result tks_attempts_purge(tks_store *s, int64_t now, int64_t window);
/* Every counter still live at `now` (its window not passed, or blocking),
 * at most `max` of them, in one read: fn(key, blocked_until, ud) for each
 * (non-zero stops). For a copy in memory (authority/cache.c). */
tks_result tks_attempts_live(tks_store *s, int64_t now, int64_t window, size_t max,
                             int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud);

/* ---- retention: purges in batches (issue 13 section 3) -----------------------
 * Each call deletes at most `limit` rows (1 to TKS_PURGE_LIMIT_MAX) of
 * one kind, in one short transaction, and sets *n to how many it deleted:
 * fewer than `limit` means none are left for now. A caller loops, pausing
 * between batches, so that no purge holds the store for long (SQLite has
 * one writer; PostgreSQL rows stay locked until commit). Nothing deleted
 * here can make a credential valid again: only rows that can no longer be
 * used, or whose record has outlived its retention. */
#define TKS_PURGE_LIMIT_MAX 10000
typedef enum tks_purge_kind {
    TKS_PURGE_REVOCATIONS = 1, /* revocations whose `until` <= before (the token expired anyway) */
    TKS_PURGE_CODES,           /* authorization codes that expired before `before` */
    TKS_PURGE_REFRESH,         /* refresh tokens that expired before `before` (a family expires whole) */
    TKS_PURGE_REFRESH_REVOKED, /* every refresh token of a family (sid) revoked in [from, before) */
    TKS_PURGE_ATTEMPTS,        /* failed-attempt counters whose `window` passed by `before`, blocking nothing */
    TKS_PURGE_AUDIT,           /* audit events recorded before `before` */
    /* sessions that ended before `before`: ended_at set and earlier, or
     * idle since before - `idle`, or started before - `max_age` (then the
     * timeouts ended them however they were last seen) */
    TKS_PURGE_SESSIONS,
} tks_purge_kind;
typedef struct tks_purge {
    tks_purge_kind kind;
    int64_t before;
    int64_t from;    /* TKS_PURGE_REFRESH_REVOKED */
    int64_t window;  /* TKS_PURGE_ATTEMPTS */
    int64_t idle;    /* TKS_PURGE_SESSIONS */
    int64_t max_age; /* TKS_PURGE_SESSIONS */
} tks_purge;
/* The sessions' clients (tks_session_clients) of a sign-in go when neither
 * its session nor any refresh token of its family is left, with whichever
 * of the two goes last (REFRESH, REFRESH_REVOKED, SESSIONS). Consents go
 * with their user or client (foreign keys). */
tks_result tks_purge_batch(tks_store *s, const tks_purge *p, size_t limit, size_t *n);

/* Audit events (kind: "client_auth_failed", "token_revoked", ...). */
tks_result tks_audit(tks_store *s, int64_t now, const char *kind, const char *client_id, const char *ip,
                     const char *detail);
/* Calls fn for the newest `limit` events, newest first. */
tks_result tks_audit_list(tks_store *s, size_t limit,
                          int (*fn)(int64_t at, const char *kind, const char *client_id, const char *ip,
                                    const char *detail, void *ud),
                          void *ud);

#endif
