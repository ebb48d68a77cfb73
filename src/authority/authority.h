/*
 * authority.h — the OAuth 2.0 authority with no HTTP in it (DESIGN.md
 * "Layers"): clients and their authentication, the signing key ring,
 * token issuance by grant, validation with revocation, and throttling of
 * failed attempts. src/http/ translates requests into these calls and
 * their results into responses; src/cli/ uses them for admin commands.
 *
 * Thread safety: one tka_authority serves every server thread. Verification
 * reads an immutable snapshot of the key ring and a read-locked revocation
 * set, so it scales across cores; issuance, revocation and rotation take
 * short write locks.
 */
#ifndef TOKEND_AUTHORITY_H
#define TOKEND_AUTHORITY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "tokend/tokend.h"

typedef struct tka_authority tka_authority;

#define TKA_MASTER_KEY_LEN 32

typedef struct tka_config {
    const char *issuer;                           /* iss of every token, e.g. "https://auth.example"; required */
    tk_alg alg;                                   /* signing alg of new keys; default ES256 */
    int64_t access_ttl;                           /* default access token lifetime, seconds (900) */
    int64_t max_ttl;                              /* longest lifetime a client may be given (86400) */
    int64_t rotate_every;                         /* seconds between key rotations; 0 = only by command */
    int64_t leeway;                               /* for validation (60) */
    unsigned char master_key[TKA_MASTER_KEY_LEN]; /* seals private keys at rest */
    /* Throttling of failed client authentication: after `fail_free` failures
     * within `fail_window` seconds from one client id or one IP, further
     * attempts wait 2^(n - fail_free) seconds, at most fail_max_wait. */
    int fail_free;
    int64_t fail_window;
    int64_t fail_max_wait;
} tka_config;

/* Defaults for everything but issuer and master_key. */
void tka_config_defaults(tka_config *c);

/* Opens the authority on a store: loads (or, on a new store, creates) the
 * key ring, warms the revocation set. Borrows `store` for its lifetime.
 * Copies the config (and wipes nothing of the caller's). */
int tka_open(tks_store *store, const tka_config *cfg, int64_t now, tka_authority **out, char *err, size_t err_cap);
void tka_close(tka_authority *a);
const tka_config *tka_get_config(const tka_authority *a);

/* ---- master key --------------------------------------------------------- */
/* Reads the 32-byte master key from `path` (raw bytes, or 64 hex digits and
 * an optional newline). With `create` and no file, writes a new random one
 * (mode 0600, O_EXCL). Refuses a file readable by group or others. */
int tka_master_key_load(const char *path, int create, unsigned char key[TKA_MASTER_KEY_LEN], int *created, char *err,
                        size_t err_cap);

/* ---- keys ---------------------------------------------------------------- */
/* The public JWKS (next, active and still-verifying retired keys). Owned;
 * free with tk_free. */
int tka_jwks(tka_authority *a, char **out);
/* Rotation: next becomes active, active retires (verifying until the
 * longest token it could have signed has expired), a new next is made. */
int tka_rotate(tka_authority *a, int64_t now, char *err, size_t err_cap);
/* Periodic upkeep: rotates when due, drops retired keys past their time,
 * reloads keys and revocations changed by other processes. Call about once
 * a second. */
int tka_maintain(tka_authority *a, int64_t now);
/* Calls fn for every key (kid, alg, state, created, activated, retired,
 * verify_until). */
int tka_keys_list(tka_authority *a, int (*fn)(const tks_key_row *k, void *ud), void *ud);

/* ---- clients --------------------------------------------------------------- */
/* Creates a client with a fresh 256-bit secret: `secret` receives its text
 * (>= TKA_SECRET_TEXT_LEN bytes), shown once. `id` may be NULL (then made
 * up). Scopes and audiences are space-separated lists. */
#define TKA_SECRET_TEXT_LEN 64
int tka_client_create(tka_authority *a, const char *id, const char *name, const char *scopes, const char *audiences,
                      int64_t ttl, int64_t now, tks_client *out, char *secret, char *err, size_t err_cap);

typedef enum tka_auth_result {
    TKA_AUTH_OK = 0,
    TKA_AUTH_BAD = 1,       /* unknown client or wrong secret (not told apart) */
    TKA_AUTH_DISABLED = 2,  /* the client exists and is disabled */
    TKA_AUTH_THROTTLED = 3, /* too many failures: wait *retry_after seconds */
    TKA_AUTH_ERROR = 4,     /* the store failed: answer 503 */
} tka_auth_result;

/* Checks client credentials in constant time with respect to the secret;
 * counts failures per client id and per IP (throttling), and audits them. */
tka_auth_result tka_client_authenticate(tka_authority *a, const char *id, size_t id_len, const char *secret,
                                        size_t secret_len, const char *ip, int64_t now, tks_client *out,
                                        int64_t *retry_after);

/* ---- issuance --------------------------------------------------------------- */
typedef enum tka_grant_result {
    TKA_GRANT_OK = 0,
    TKA_GRANT_INVALID_SCOPE = 1,  /* asked for a scope the client may not have */
    TKA_GRANT_INVALID_TARGET = 2, /* asked for an audience the client may not have (RFC 8707) */
    TKA_GRANT_ERROR = 3,
} tka_grant_result;

typedef struct tka_issued {
    char *access_token; /* owned: tk_free */
    int64_t expires_in;
    char scope[TKS_LIST_MAX + 1];
    char jti[48];
} tka_issued;

/* client_credentials (RFC 6749 section 4.4): sub = client id. `scope` and
 * `audience` are what the request asked for (NULL: everything allowed /
 * the default audience). */
tka_grant_result tka_issue_client_credentials(tka_authority *a, const tks_client *c, const char *scope,
                                              const char *audience, int64_t now, tka_issued *out, char *why,
                                              size_t why_cap);
void tka_issued_clear(tka_issued *i);

/* ---- validation and revocation ------------------------------------------------ */
typedef struct tka_check {
    const char *audience;      /* required audience, or NULL */
    const char *const *scopes; /* required scopes */
    size_t scopes_len;
} tka_check;

/* Full validation of an access token issued here: signature with the key
 * ring, claims (iss, typ at+jwt, jti, sub, client_id, exp, aud), then
 * revocation, then the required scopes (so a revoked token is told it is
 * revoked, whatever scope it lacks). Returns 0 with the verdict in *v, or
 * -1 when the verifier failed (then *v is unavailable). On VALID and
 * out_token non-NULL, returns the parsed token (owned). */
int tka_validate(tka_authority *a, const char *tok, size_t len, const tka_check *chk, int64_t now, tk_verdict *v,
                 tk_token **out_token);
/* Revokes by jti or sid until `until`; visible to this process at once and
 * to others on their next tka_maintain. */
int tka_revoke(tka_authority *a, enum tks_revocation_kind kind, const char *value, const char *reason, int64_t now,
               int64_t until);
/* RFC 7009: revokes a token presented by `client`. Returns 0 when done or
 * when there is nothing to revoke (unknown, foreign or expired tokens: the
 * endpoint answers 200), 1 when the token is valid but was issued to
 * another client (refused: RFC 7009 section 2.1), -1 when the store failed
 * (503). */
int tka_revoke_token(tka_authority *a, const tks_client *client, const char *tok, size_t len, int64_t now);
/* Is this jti or sid revoked? Fills reason (and *revoked_at, *by_sid, each
 * may be NULL) when so. */
int tka_is_revoked(tka_authority *a, const char *jti, const char *sid, char *reason, size_t reason_cap,
                   int64_t *revoked_at, int *by_sid);

/* Is s a valid identifier (client id, reason word): 1..max of
 * A-Z a-z 0-9 . _ ~ - ? */
int tka_valid_id(const char *s, size_t max);

/* ---- counters for /metrics ------------------------------------------------------ */
typedef struct tka_counters {
    uint64_t issued_client_credentials;
    uint64_t client_auth_failed;
    uint64_t client_auth_throttled;
    uint64_t keys_rotated;
    uint64_t revocations;
} tka_counters;
void tka_counters_get(tka_authority *a, tka_counters *out);

#endif
