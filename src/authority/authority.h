/* SPDX-License-Identifier: Apache-2.0 */
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
#include "tokend/keycache.h"
#include "tokend/tokend.h"

typedef struct tka_authority tka_authority;

#define TKA_MASTER_KEY_LEN 32

typedef struct tka_config {
    const char *issuer; /* iss of every token, e.g. "https://auth.example"; required */
    tk_alg alg;         /* signing alg of new keys; default ES256 */
    /* A second key ring for ID tokens (OpenID Connect Core section 15.1:
     * RS256 must be offered), kept beside cfg.alg's when it differs; rotated
     * with it and published in the JWKS. TK_ALG_UNSET: none. Default RS256. */
    tk_alg id_token_alg;
    int64_t id_token_ttl; /* ID token lifetime, seconds (3600) */
    int64_t access_ttl;   /* default access token lifetime, seconds (900) */
    int64_t max_ttl;      /* longest lifetime a client may be given (86400) */
    int64_t rotate_every; /* seconds between key rotations; 0 = only by command */
    int64_t jwks_max_age; /* how long verifiers may cache the JWKS (300): a next key is published that long
                             before it may become active, so no cache ever meets an unknown kid */
    int64_t max_stale;    /* validation fails closed (unavailable) once the revocation set has not caught up
                             with the store for this long (30): a revocation made elsewhere could be missing */
    int64_t leeway;       /* for validation (60) */
    unsigned char master_key[TKA_MASTER_KEY_LEN]; /* seals private keys at rest */
    /* Throttling of failed client authentication and sign-in (SECURITY.md
     * rule 22): after `fail_free` failures within `fail_window` seconds from
     * one address, or for one client id or user from one address, further
     * attempts from there wait 2^(n - fail_free) seconds, at most
     * fail_max_wait. Correct credentials from another address are never
     * held back; see clients.c for how spread-out guessing slows down. */
    int fail_free;
    int64_t fail_window;
    int64_t fail_max_wait;
    /* User sign-in (issue 4). */
    int64_t session_idle; /* browser session idle timeout (1800) */
    int64_t session_max;  /* browser session absolute timeout (43200) */
    int64_t refresh_ttl;  /* refresh token lifetime (2592000: 30 days) */
    int64_t code_ttl;     /* authorization code lifetime (60) */
    /* Retention (issue 13 section 3; tka_maintain purges in batches). */
    int64_t audit_retention;   /* audit events are kept this long (7776000: 90 days); 0: for ever */
    int64_t session_retention; /* ended sessions are kept this long (2592000: 30 days); 0: for ever */
    int64_t refresh_grace;     /* refresh tokens of an ended family (expired or revoked) are kept this
                                  long, so that presenting one is still explained (86400: 1 day) */
    /* A command that does one thing and exits (the admin CLI): no thread
     * watching the store for changes made elsewhere, nothing cached. */
    int one_shot;
    /* Validation remembers the signatures it verified, for this many tokens
     * (tk_sigcache: 40 bytes each; a repeated token then skips its
     * signature check, everything else is checked every time); 0 = none.
     * Default 100000. Our own tokens and trusted issuers' alike. */
    size_t verify_cache;
    /* The revocation set is read from the store on first use (tka_is_revoked,
     * tka_revocations_age, hence validation) instead of at tka_open: for
     * commands that never look at it (issue 13 section 2: at a million
     * revocations, loading them is most of an admin command's time and
     * memory). Until then revocations made here are only written to the
     * store. */
    int lazy_revocations;
} tka_config;

/* The longest retention setting: ten years. */
#define TKA_RETENTION_MAX ((int64_t)3650 * 86400)

/* Defaults for everything but issuer and master_key. */
void tka_config_defaults(tka_config *c);

/* Opens the authority on a store: loads (or, on a new store, creates) the
 * key ring, warms the revocation set. Borrows `store` for its lifetime.
 * Copies the config (and wipes nothing of the caller's). */
int tka_open(tks_store *store, const tka_config *cfg, int64_t now, tka_authority **out, char *err, size_t err_cap);
void tka_close(tka_authority *a);
const tka_config *tka_get_config(const tka_authority *a);

/* Is `want` (wl bytes) one of the space-separated items of `list`? */
int tka_in_list(const char *list, const char *want, size_t wl);

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
 * longest token it could have signed has expired), a new next is made;
 * once, however many instances on one store try at the same moment. The
 * next key becomes active only after it has been published for
 * jwks_max_age. Returns 0 when rotated, 1 when not now (err says why and
 * when: the next key is too young, or another instance just rotated), -1
 * on failure. */
int tka_rotate(tka_authority *a, int64_t now, char *err, size_t err_cap);
/* Periodic upkeep: rotates when due, drops retired keys past their time,
 * reloads keys and revocations changed by other processes, and about once
 * a minute purges what is past its use or retention (tka_purge). Call
 * about once a second. */
int tka_maintain(tka_authority *a, int64_t now);
/* One purge pass (tka_maintain runs it): expired codes, revocations and
 * failed-attempt counters; refresh tokens of families that expired or were
 * revoked more than refresh_grace ago; audit events older than
 * audit_retention; sessions ended more than session_retention ago. In
 * batches of TKA_PURGE_BATCH rows, one short transaction each, with a
 * pause between them, for at most TKA_PURGE_BUDGET_MS in all. Returns 1
 * when the budget ran out with rows left (call again soon), 0 when all is
 * purged, -1 when a purge failed (the rest still ran; the next pass tries
 * again). */
#define TKA_PURGE_BATCH 1000
#define TKA_PURGE_BUDGET_MS 200
#define TKA_PURGE_PAUSE_MS 5
int tka_purge(tka_authority *a, int64_t now);
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

/* The same, for clients of the authorization code flow, and resource
 * servers: `serves` (space-separated audiences, or NULL/"") names the APIs
 * this client runs; it may introspect tokens issued for them (RFC 7662
 * section 4), as well as its own. `redirect_uris`
 * (space-separated, exact; https, or http on localhost/127.0.0.1/[::1], or a
 * private-use scheme with a dot as RFC 8252 has native apps use) and
 * `is_public` (no secret: `secret` gets ""; PKCE protects the flow).
 * Grant types: client_credentials for confidential clients, plus
 * authorization_code and refresh_token when redirect URIs are given. */
int tka_client_create_ex(tka_authority *a, const char *id, const char *name, const char *scopes, const char *audiences,
                         int64_t ttl, const char *redirect_uris, int is_public, const char *serves, int64_t now,
                         tks_client *out, char *secret, char *err, size_t err_cap);

/* The OpenID Connect settings of a client (each may be NULL / 0). */
typedef struct tka_client_oidc {
    const char *backchannel_logout_uri; /* https, or http to loopback */
    const char *id_token_alg;           /* id_token_signed_response_alg: one of tka_id_token_algs */
    int consent;                        /* third-party: ask the user (consent page) */
} tka_client_oidc;
int tka_client_create_oidc(tka_authority *a, const char *id, const char *name, const char *scopes,
                           const char *audiences, int64_t ttl, const char *redirect_uris, int is_public,
                           const char *serves, const tka_client_oidc *oidc, int64_t now, tks_client *out, char *secret,
                           char *err, size_t err_cap);

typedef enum tka_auth_result {
    TKA_AUTH_OK = 0,
    TKA_AUTH_BAD = 1,       /* unknown client or wrong secret (not told apart) */
    TKA_AUTH_DISABLED = 2,  /* the client exists and is disabled */
    TKA_AUTH_THROTTLED = 3, /* too many failures: wait *retry_after seconds */
    TKA_AUTH_ERROR = 4,     /* the store failed: answer 503 */
} tka_auth_result;

/* For the operator's log only (the client hears one generic answer):
 * which failure TKA_AUTH_BAD was. */
typedef enum tka_auth_why {
    TKA_AUTH_WHY_NONE = 0,
    TKA_AUTH_WHY_UNKNOWN_CLIENT = 1,
    TKA_AUTH_WHY_WRONG_SECRET = 2,
} tka_auth_why;

/* Checks client credentials in constant time with respect to the secret;
 * counts failures by address and by (client id, address) (throttling), and
 * audits them: a failure whose audit cannot be stored is TKA_AUTH_ERROR.
 * `why` (may be NULL) tells a bad secret from an unknown client. */
tka_auth_result tka_client_authenticate(tka_authority *a, const char *id, size_t id_len, const char *secret,
                                        size_t secret_len, const char *ip, int64_t now, tks_client *out,
                                        int64_t *retry_after, tka_auth_why *why);

/* ---- issuance --------------------------------------------------------------- */
typedef enum tka_grant_result {
    TKA_GRANT_OK = 0,
    TKA_GRANT_INVALID_SCOPE = 1,  /* asked for a scope the client may not have */
    TKA_GRANT_INVALID_TARGET = 2, /* asked for an audience the client may not have (RFC 8707) */
    TKA_GRANT_ERROR = 3,
    TKA_GRANT_INVALID_GRANT = 4,       /* bad, expired, replayed or foreign code or refresh token */
    TKA_GRANT_UNAUTHORIZED_CLIENT = 5, /* the client may not use this grant type */
} tka_grant_result;

typedef struct tka_issued {
    char *refresh_token; /* owned (tka_issued_clear), or NULL when none was issued */
    char *id_token;      /* owned: tk_free; NULL unless the scope holds openid */
    char *access_token;  /* owned: tk_free */
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
    const char *const *issuers; /* tka_validate_any: the issuers this route accepts (exact); none = every trusted one */
    size_t issuers_len;
} tka_check;

/* Full validation of an access token issued here: signature with the key
 * ring, claims (iss, typ at+jwt, jti, sub, client_id, exp, aud), then
 * revocation, then the required scopes (so a revoked token is told it is
 * revoked, whatever scope it lacks). Returns 0 with the verdict in *v, or
 * -1 when the verifier failed (then *v is unavailable). On VALID and
 * out_token non-NULL, returns the parsed token (owned). */
int tka_validate(tka_authority *a, const char *tok, size_t len, const tka_check *chk, int64_t now, tk_verdict *v,
                 tk_token **out_token);
/* The same for a token parsed with tk_token_parse (borrowed): signature
 * with the key ring, claims, revocation, scopes. */
int tka_validate_parsed(tka_authority *a, const tk_token *t, const tka_check *chk, int64_t now, tk_verdict *v);

/* ---- trusted issuers (issuers.c) -------------------------------------------------
 * Tokens of other issuers (Auth0, Okta, Entra, Keycloak, Google, ...) that
 * /auth accepts, each with its own policy, their key sets kept by a
 * tk_keycache (tokend/keycache.h) fetched by two maintainer threads. */
typedef struct tka_trust tka_trust;

typedef struct tka_issuer_policy {
    const char *issuer;    /* exact iss */
    const char *jwks_uri;  /* NULL: discover */
    const char *jwks_text; /* a fixed JWKS (read from a file by the caller), or NULL */
    size_t jwks_text_len;
    const char *audiences;       /* space-separated; used when the route names none */
    const char *algorithms;      /* space-separated alg names; NULL: what the keys declare */
    const char *require_typ;     /* NULL: typ not checked */
    int64_t leeway;              /* < 0: the server's */
    const char *required_claims; /* space-separated, besides exp */
    const char *scope_claims;    /* space-separated among scope, scp, roles (or any name); NULL: "scope scp" */
    const char *subject_claim;   /* NULL: "sub" */
    const char *ca_file;         /* NULL: the trust-wide one */
} tka_issuer_policy;

typedef struct tka_trust_config {
    int64_t min_ttl, max_ttl, default_ttl; /* key set lifetime bounds (tk_keycache_config) */
    int64_t kid_cooldown;
    int64_t max_stale;
    unsigned wait_ms;        /* longest wait of a request for a fetch */
    long fetch_timeout_ms;   /* one fetch */
    size_t max_bytes;        /* biggest document */
    const char *ca_file;     /* CA file besides the system's, for every issuer without its own */
    int64_t leeway;          /* default leeway */
    int allow_http_loopback; /* tests only: http:// to loopback allowed */
    void (*log)(void *ud, const char *level, const char *msg);
    void *log_ud;
} tka_trust_config;

void tka_trust_config_defaults(tka_trust_config *c);
/* Checks every policy (err names the issuer and the setting), builds the
 * cache and starts its maintainer threads; the first fetches start at once. */
int tka_trust_open(const tka_trust_config *cfg, const tka_issuer_policy *p, size_t n, tka_trust **out, char *err,
                   size_t err_cap);
void tka_trust_close(tka_trust *t);
/* The cache (for metrics and status). */
tk_keycache *tka_trust_cache(tka_trust *t);

/* Who a valid token speaks for, for the headers /auth sends. */
typedef struct tka_identity {
    int foreign; /* issued by a trusted issuer, not by us */
    char issuer[TK_LIMIT_URL_LEN + 1];
    char subject[TKS_VALUE_MAX + 1];
    char client_id[TKS_VALUE_MAX + 1];
    char scope[TKS_LIST_MAX + 1];
} tka_identity;

/* /auth's validation: our own tokens as tka_validate; tokens whose iss is a
 * trusted issuer with that issuer's key set and policy; any other iss is
 * wrong_issuer, naming the issuers trusted. `tr` may be NULL. Returns 0 with
 * the verdict (and *id on VALID), 1 when no audience applies to this token
 * (neither the route, the issuer's policy nor chk_default_aud names one:
 * answer 400), -1 when the verifier failed (*v unavailable). */
int tka_validate_any(tka_authority *a, tka_trust *tr, const char *tok, size_t len, const tka_check *chk,
                     const char *default_aud, int64_t now, tk_verdict *v, tka_identity *id);

/* RFC 7662 for an authenticated `caller`: validates the token (no
 * audience or scope required) and decides whether the caller may see it
 * (section 4): its own token (client_id), or a token for an audience it
 * serves (tks_client.serves). *visible is set for valid tokens and for
 * inactive ones whose signature is ours (then the reason may be told);
 * never for a token whose signature failed. On VALID and visible,
 * *out_token is the parsed token (owned). Returns 0, or -1 when the
 * verifier failed (answer 503). */
int tka_introspect(tka_authority *a, const tks_client *caller, const char *tok, size_t len, int64_t now, tk_verdict *v,
                   tk_token **out_token, int *visible);
/* Revokes by jti or sid until `until`; visible to this process at once and
 * to others on their next tka_maintain. */
int tka_revoke(tka_authority *a, enum tks_revocation_kind kind, const char *value, const char *reason, int64_t now,
               int64_t until);
/* RFC 7009: revokes a token presented by `client`: an access token by its
 * jti; a refresh token (tokend_rt_...) by its whole family (sid). Returns 0 when done or
 * when there is nothing to revoke (unknown, foreign or expired tokens: the
 * endpoint answers 200), 1 when the token is valid but was issued to
 * another client (refused: RFC 7009 section 2.1), -1 when the store failed
 * (503). */
int tka_revoke_token(tka_authority *a, const tks_client *client, const char *tok, size_t len, int64_t now);
/* Revokes n values of one kind at once (tokend revoke --jti-file): in
 * store transactions of TKS_REVOKE_BATCH_MAX, each with one audit event
 * ("tokens_revoked" / "sessions_revoked", detail "REASON xN"). Values must
 * be 1 to TKS_VALUE_MAX bytes, all checked first: one that is not writes
 * nothing. *done: how many were written (all of them on success; on a
 * store failure the batches committed before it, which stay revoked);
 * *added (may be NULL): how many were not revoked before. Returns 0, or
 * -1 (tks_errmsg says why). */
int tka_revoke_many(tka_authority *a, enum tks_revocation_kind kind, const char *const *values, size_t n,
                    const char *reason, int64_t now, int64_t until, size_t *done, size_t *added);
/* Entries in the revocation set and the bytes its table takes (0, 0 while
 * it is not loaded). */
void tka_revocations_size(tka_authority *a, size_t *entries, size_t *bytes);
/* Seconds since the revocation set last caught up with the store (0 when
 * it just did). Beyond cfg.max_stale, validation answers unavailable. */
int64_t tka_revocations_age(tka_authority *a, int64_t now);
/* Is this jti or sid revoked? Fills reason (and *revoked_at, *by_sid, each
 * may be NULL) when so. */
int tka_is_revoked(tka_authority *a, const char *jti, const char *sid, char *reason, size_t reason_cap,
                   int64_t *revoked_at, int *by_sid);

/* ---- users (issue 4) ---------------------------------------------------------- */
/* Passwords are hashed with Argon2id (libsodium crypto_pwhash_str,
 * interactive limits) and never logged. Ids are login names. */
int tka_user_create(tka_authority *a, const char *id, const char *password, size_t password_len, int64_t now, char *err,
                    size_t err_cap);
int tka_user_set_password(tka_authority *a, const char *id, const char *password, size_t password_len, int64_t now,
                          char *err, size_t err_cap);
/* The same as tka_user_create, with the profile fields of `profile` (its
 * id, password hash and times are ignored) stored in the same row. */
int tka_user_create_ex(tka_authority *a, const char *id, const char *password, size_t password_len,
                       const tks_user *profile, int64_t now, char *err, size_t err_cap);
/* Checks the profile fields of `p`: names UTF-8 without control characters
 * and at most TKS_PROFILE_MAX bytes, an e-mail address that looks like one,
 * email_verified only with an address. 0, or -1 with err. */
int tka_profile_check(const tks_user *p, char *err, size_t err_cap);
/* OpenID Connect Core section 5.3: validates an access token of ours that
 * grants `openid` and was issued for a user who signed in, and returns that
 * user (password hash wiped) and the token's scope. 0 with the verdict
 * (invalid_claim for a client's own token or a user who is gone, revoked
 * for a disabled user), -1 when the verifier or the store failed. */
int tka_userinfo(tka_authority *a, const char *tok, size_t len, int64_t now, tk_verdict *v, tks_user *user, char *scope,
                 size_t scope_cap);
/* Replaces the profile of the user profile->id (checked as above), audited. */
int tka_user_set_profile(tka_authority *a, const tks_user *profile, int64_t now, char *err, size_t err_cap);

typedef enum tka_login_result {
    TKA_LOGIN_OK = 0,
    TKA_LOGIN_BAD = 1,       /* unknown user or wrong password: one message, similar time */
    TKA_LOGIN_DISABLED = 2,  /* right password, disabled account */
    TKA_LOGIN_THROTTLED = 3, /* too many failures for this account or address: wait *retry_after */
    TKA_LOGIN_ERROR = 4,     /* the store failed */
} tka_login_result;

/* Checks a sign-in; throttles failures by address and by (account,
 * address), and audits every outcome (an audit that cannot be stored is
 * TKA_LOGIN_ERROR). An unknown user costs one Argon2id verification like a
 * known one, so this is slow (tens of milliseconds, 64 MiB): never call it
 * on a request thread (SECURITY.md rule 21). The pwhash of *out is wiped. */
tka_login_result tka_user_login(tka_authority *a, const char *user, size_t user_len, const char *password,
                                size_t password_len, const char *ip, int64_t now, tks_user *out, int64_t *retry_after);

/* The cheap part of tka_user_login, for the request thread before the
 * attempt is queued for hashing: seconds to wait, 0 when it may go on. A
 * wait is a throttled attempt and is counted as one. */
int64_t tka_login_wait(tka_authority *a, const char *user, size_t user_len, const char *ip, int64_t now);

/* Ends every session of a user and revokes every token issued in them
 * (for disabling or removing an account). Returns how many sign-ins were
 * revoked, or -1. */
int tka_user_revoke_all(tka_authority *a, const char *id, const char *reason, int64_t now);

/* ---- browser sessions ------------------------------------------------------------ */
#define TKA_COOKIE_LEN 64 /* text of a session cookie value, with its NUL */

/* Starts a session for a signed-in user: `cookie` gets the value for the
 * __Host-tokend_session cookie (256 random bits; stored only hashed) and
 * `sid` its public id. */
int tka_session_create(tka_authority *a, const char *user_id, int64_t now, char cookie[TKA_COOKIE_LEN],
                       char sid[TKS_SID_MAX + 1]);

typedef enum tka_session_result {
    TKA_SESSION_OK = 0,
    TKA_SESSION_NONE = 1,    /* no cookie, or not one of ours */
    TKA_SESSION_IDLE = 2,    /* ended by the idle timeout */
    TKA_SESSION_EXPIRED = 3, /* ended by the absolute timeout */
    TKA_SESSION_ENDED = 4,   /* logged out or revoked */
    TKA_SESSION_ERROR = 5,
} tka_session_result;

/* Checks a session cookie value; on OK refreshes its idle clock. *out is
 * filled for OK and also for IDLE, EXPIRED and ENDED (so that logout and
 * the sign-in page can name the session). A timed-out session is ended; tokens already issued in it live on
 * (only logout, an admin or refresh token reuse revoke them). */
tka_session_result tka_session_check(tka_authority *a, const char *cookie, size_t len, int64_t now, tks_session *out);
/* Ends the session with this sid and revokes every token issued in it
 * (access and refresh), for `reason` ("logout", "admin"). */
int tka_session_end(tka_authority *a, const char *sid, const char *reason, int64_t now);

/* ---- the authorization endpoint (RFC 6749 section 4.1, RFC 7636) --------------------- */
typedef struct tka_authz_request {
    const char *client_id;
    const char *redirect_uri; /* may be NULL when the client has exactly one */
    const char *response_type;
    const char *scope;
    const char *state;
    const char *code_challenge;
    const char *code_challenge_method;
    const char *audience; /* "audience" or "resource" parameter, or NULL */
    /* OpenID Connect Core section 3.1.2.1 (NULL when absent) */
    const char *nonce;
    const char *prompt;  /* space-separated: none, login, consent, select_account */
    const char *max_age; /* seconds, as sent */
    const char *login_hint;
    const char *id_token_hint;
    const char *ui_locales; /* tolerated: the pages are in English */
} tka_authz_request;

typedef enum tka_authz_result {
    TKA_AZ_OK = 0,
    /* Not safe to redirect: show our own error page (RFC 6749 4.1.2.1). */
    TKA_AZ_BAD_CLIENT = 1,   /* missing, unknown or disabled client_id */
    TKA_AZ_BAD_REDIRECT = 2, /* redirect_uri missing, not registered, or differs */
    /* Redirect back to the client with ?error=...: */
    TKA_AZ_INVALID_REQUEST = 3,      /* PKCE missing or not S256, malformed parameters */
    TKA_AZ_UNSUPPORTED_RESPONSE = 4, /* response_type other than code */
    TKA_AZ_INVALID_SCOPE = 5,
    TKA_AZ_UNAUTHORIZED_CLIENT = 6, /* client may not use authorization_code */
    TKA_AZ_INVALID_TARGET = 7,
    TKA_AZ_ERROR = 8, /* server_error */
    /* OpenID Connect Core section 3.1.2.6 */
    TKA_AZ_LOGIN_REQUIRED = 9,
    TKA_AZ_CONSENT_REQUIRED = 10,
    TKA_AZ_INTERACTION_REQUIRED = 11,
    TKA_AZ_ACCESS_DENIED = 12, /* the user declined consent */
} tka_authz_result;

/* The RFC 6749 error string for a redirectable result ("invalid_request"). */
const char *tka_authz_error(tka_authz_result r);

/* Validates an authorization request. On OK (and on every redirectable
 * error) *client is filled and `redirect` holds the redirect URI to use;
 * `scope` the granted scope; `why` a sentence for people. */
tka_authz_result tka_authorize_check(tka_authority *a, const tka_authz_request *r, tks_client *client,
                                     char redirect[TKS_URI_MAX + 1], char scope[TKS_LIST_MAX + 1], char *why,
                                     size_t why_cap);

/* Issues a single-use code (lives cfg.code_ttl) bound to client, redirect
 * URI, PKCE challenge, user and session. `code` gets its text. */
#define TKA_CODE_LEN 64
int tka_code_issue(tka_authority *a, const tks_client *client, const tks_session *session, const char *redirect,
                   const char *challenge, const char *scope, const char *audience, int64_t now,
                   char code[TKA_CODE_LEN]);
/* The same, with the OpenID Connect nonce of the request (NULL: none). 0,
 * -1 on a failure, 1 when this client already has a stored code with that
 * nonce (a nonce is single use: invalid_request). auth_time is the
 * session's start. */
int tka_code_issue_nonce(tka_authority *a, const tks_client *client, const tks_session *session, const char *redirect,
                         const char *challenge, const char *scope, const char *audience, const char *nonce, int64_t now,
                         char code[TKA_CODE_LEN]);

/* ---- OpenID Connect (oidc.c) -------------------------------------------------------- */
/* The alg of the client's ID tokens: its id_token_signed_response_alg, else
 * cfg.id_token_alg (RS256), else cfg.alg. */
tk_alg tka_id_token_alg(const tka_authority *a, const tks_client *c);
/* The algs ID tokens can be signed with here (the ring's, without HS*):
 * id_token_signing_alg_values_supported. Returns how many. */
size_t tka_id_token_algs(const tka_authority *a, tk_alg algs[2]);
int tka_id_token_alg_ok(const tka_authority *a, const char *name);
/* An ID token (Core sections 2, 3.1.3.6, 5.4) for user u (as the grant
 * read it): iss sub aud exp iat auth_time nonce azp sid at_hash amr, and
 * the profile and email claims the scope releases. *out owned (tk_free). */
tka_grant_result tka_issue_id_token(tka_authority *a, const tks_client *c, const tks_user *u, const char *sid,
                                    const char *scope, const char *nonce, int64_t auth_time, const char *access_token,
                                    int64_t now, char **out, char *why, size_t why_cap);
typedef struct tka_hint {
    char sub[TKS_ID_MAX + 1];
    char client_id[TKS_ID_MAX + 1]; /* its aud */
    char sid[TKS_SID_MAX + 1];      /* "" when it had none */
} tka_hint;
/* Checks an id_token_hint: an ID token this server signed (expired or
 * not). 0 with *out, 1 when it is not one (why says why). */
int tka_id_token_hint(tka_authority *a, const char *hint, size_t len, int64_t now, tka_hint *out, char *why,
                      size_t why_cap);
/* A back-channel logout token (typ logout+jwt) for client c and sign-in
 * sid, signed like its ID tokens. 0 with *out owned (tk_free), or -1. */
int tka_logout_token(tka_authority *a, const tks_client *c, const char *user_id, const char *sid, int64_t now,
                     char **out);
/* Consent of third-party clients (tks_client.consent): 1 when the user must
 * be asked for `scope`, 0 when not (first-party, or every scope was
 * allowed before), -1 when the store failed. */
int tka_consent_needed(tka_authority *a, const tks_client *c, const char *user_id, const char *scope);
/* Remembers that the user allowed `scope` (added to what was allowed
 * before), audited. 0 or -1. */
int tka_consent_grant(tka_authority *a, const tks_client *c, const char *user_id, const char *scope, int64_t now);
/* Forgets the user's consent for client_id (NULL: every client), audited;
 * returns how many, or -1. */
int tka_consent_revoke(tka_authority *a, const char *user_id, const char *client_id, int64_t now);
/* Called (from the thread that ended it) whenever a sign-in ends here:
 * logout, refresh token reuse, code replay, a client revoking its refresh
 * token, an administrator. For back-channel logout. fn must be quick (queue
 * the work); set it before serving and clear it (NULL) only once no
 * request runs. */
void tka_set_signout_hook(tka_authority *a, void (*fn)(void *ud, const char *sid, const char *reason), void *ud);

/* grant_type=authorization_code: redeems the code (single use; a replay
 * revokes everything issued from it, RFC 6749 section 4.1.2), checks the
 * redirect URI and the PKCE verifier, and issues an access token (sub =
 * user, sid = session) and, when the client may refresh, a refresh token. */
tka_grant_result tka_issue_authorization_code(tka_authority *a, const tks_client *client, const char *code,
                                              size_t code_len, const char *redirect_uri, const char *verifier,
                                              size_t verifier_len, int64_t now, tka_issued *out, char *why,
                                              size_t why_cap);

/* grant_type=refresh_token: rotates the refresh token (a new one replaces
 * it). Presenting one that was already used revokes the whole family (sid)
 * and says so. Two concurrent uses of one token: exactly one succeeds. */
tka_grant_result tka_issue_refresh(tka_authority *a, const tks_client *client, const char *refresh, size_t len,
                                   const char *scope, int64_t now, tka_issued *out, char *why, size_t why_cap);

/* For public clients (no secret; PKCE protects them): looks the client up
 * by id. TKA_AUTH_BAD unless it exists and is public. */
tka_auth_result tka_client_identify_public(tka_authority *a, const char *id, size_t id_len, tks_client *out);

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
    uint64_t issued_authorization_code;
    uint64_t issued_refresh_token;
    uint64_t refresh_reuse;
    uint64_t logins;
    uint64_t login_failed;
    uint64_t login_throttled;
    uint64_t codes_issued;
    /* the verified-signature cache (cfg.verify_cache); all 0 without one */
    uint64_t verify_cache_hits;
    uint64_t verify_cache_misses;
    uint64_t verify_cache_entries;
} tka_counters;
void tka_counters_get(tka_authority *a, tka_counters *out);

#endif
