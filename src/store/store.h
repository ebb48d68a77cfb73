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
} tks_result;

typedef struct tks_store tks_store;

#define TKS_ID_MAX 64      /* client ids, kids (bytes, without NUL) */
#define TKS_NAME_MAX 128   /* client names */
#define TKS_LIST_MAX 2048  /* space-separated scope and audience lists */
#define TKS_VALUE_MAX 256  /* jti / sid values */
#define TKS_REASON_MAX 32  /* revocation reasons: logout, admin, refresh_reuse, ... */
#define TKS_DETAIL_MAX 512 /* audit details */

typedef struct tks_client {
    char id[TKS_ID_MAX + 1];
    char name[TKS_NAME_MAX + 1];
    unsigned char secret_hash[32];    /* SHA-256 of the secret */
    char scopes[TKS_LIST_MAX + 1];    /* scopes it may request, space-separated */
    char audiences[TKS_LIST_MAX + 1]; /* audiences it may request; the first is the default */
    int64_t ttl;                      /* access token lifetime, seconds */
    int disabled;
    int64_t created_at;
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

/* Opens (creating and migrating when needed) the store named by `url`.
 * On failure *out is NULL and err holds why. */
tks_result tks_open(const char *url, tks_store **out, char *err, size_t err_cap);
void tks_close(tks_store *s);
/* The last error message of this thread on this store (static storage). */
const char *tks_errmsg(tks_store *s);
/* The schema version the store is at. */
int tks_schema_version(tks_store *s);
/* A cheap round trip, for /readyz. */
tks_result tks_ping(tks_store *s);

/* Clients. */
tks_result tks_client_insert(tks_store *s, const tks_client *c);
tks_result tks_client_get(tks_store *s, const char *id, tks_client *out);
tks_result tks_client_set_disabled(tks_store *s, const char *id, int disabled);
tks_result tks_client_delete(tks_store *s, const char *id);
/* Calls fn for each client in id order; fn returns non-zero to stop. */
tks_result tks_client_list(tks_store *s, int (*fn)(const tks_client *c, void *ud), void *ud);

/* Signing keys. */
tks_result tks_key_insert(tks_store *s, const tks_key_row *k);
/* Calls fn for each key, oldest first. The row is valid during the call. */
tks_result tks_key_list(tks_store *s, int (*fn)(const tks_key_row *k, void *ud), void *ud);
/* Moves a key to `state` at `now`; retiring sets verify_until. */
tks_result tks_key_set_state(tks_store *s, const char *kid, enum tks_key_state state, int64_t now,
                             int64_t verify_until);
tks_result tks_key_delete(tks_store *s, const char *kid);
/* A number that changes whenever the key table changes (for pollers). */
tks_result tks_key_generation(tks_store *s, int64_t *out);
void tks_key_row_clear(tks_key_row *k);

/* Revocations. Revoking what is already revoked is TKS_OK. */
tks_result tks_revoke(tks_store *s, enum tks_revocation_kind kind, const char *value, const char *reason, int64_t now,
                      int64_t until);
/* Calls fn for each revocation with seq > since that is still in force at
 * `now`, in seq order. */
tks_result tks_revocations_since(tks_store *s, int64_t since, int64_t now, int (*fn)(const tks_revocation *r, void *ud),
                                 void *ud);
/* Deletes revocations whose `until` has passed. */
tks_result tks_revocations_purge(tks_store *s, int64_t now);

/* Audit events (kind: "client_auth_failed", "token_revoked", ...). */
tks_result tks_audit(tks_store *s, int64_t now, const char *kind, const char *client_id, const char *ip,
                     const char *detail);
/* Calls fn for the newest `limit` events, newest first. */
tks_result tks_audit_list(tks_store *s, size_t limit,
                          int (*fn)(int64_t at, const char *kind, const char *client_id, const char *ip,
                                    const char *detail, void *ud),
                          void *ud);

#endif
