/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokend/keycache.h — key sets of trusted issuers, fetched, cached and
 * refreshed by rules that never let them go stale silently (part of
 * libtokend; the core still does no I/O).
 *
 * A verifier that trusts tokens of other issuers (Auth0, Okta, Entra,
 * Keycloak, Google, ...) needs their published key sets (RFC 7517), found
 * through OpenID Connect Discovery 1.0 or RFC 8414 metadata, and kept
 * current while the issuer rotates its keys. This cache does that:
 *
 *  - Each issuer is added with its exact `iss`, and either a jwks_uri, a
 *    fixed JWKS text, or nothing (then its metadata is discovered at
 *    <issuer>/.well-known/openid-configuration, or, when that is missing,
 *    at the RFC 8414 address /.well-known/oauth-authorization-server<path>;
 *    the metadata's "issuer" must equal the configured one exactly).
 *  - A fetched key set lives for its Cache-Control max-age clamped to
 *    [min_ttl, max_ttl] (default_ttl without one), and is refreshed ahead of
 *    its expiry by tk_keycache_maintain.
 *  - A token whose kid is not in the set asks for one refetch, at most once
 *    per issuer per kid_cooldown; concurrent asks share that one fetch. A
 *    caller waits for it at most wait_ms.
 *  - When fetches fail, the last good set keeps serving until max_stale
 *    after it expired; past that, the issuer's tokens are `unavailable`,
 *    with the reason.
 *  - A key of the set that cannot be used (an encryption key, RSA under
 *    2048 bits, an HMAC secret, an alg not allowed) is skipped and
 *    reported; the rest of the set is used.
 *
 * The network is the caller's: a tk_fetch_fn gets a URL and fills a buffer.
 * libtokend_fetch (tokend/fetch.h) is one over libcurl. Fetches happen in
 * tk_keycache_maintain (call it from a thread of yours, or before each
 * verification when you have no threads: then set wait_ms to 0 and let
 * inline_fetch do the refetch on the calling thread).
 *
 * Threads: add the issuers first; after that every function may be called
 * from any thread at once, except tk_keycache_free. A verification holds a
 * reference to an immutable key set, so a refresh never blocks it.
 *
 * Time: `now` is Unix seconds from the caller, as everywhere in libtokend;
 * only the bounded waits (wait_ms) read CLOCK_MONOTONIC.
 */
#ifndef TOKEND_KEYCACHE_H
#define TOKEND_KEYCACHE_H

#include "tokend/tokend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a fetch returned. The cache provides `body` (cap bytes) and zeroes the rest. */
typedef struct tk_fetch_result {
    long status;     /* HTTP status; 0 when no response came */
    char *body;      /* the cache's buffer of `cap` bytes: the fetcher writes the body here */
    size_t body_len; /* bytes written */
    int64_t max_age; /* Cache-Control max-age in seconds; -1 without one; 0 for no-store / no-cache */
    char error[256]; /* when no usable response came: why ("timed out after 5 s", "body over 65536 bytes",
                        "redirect to http:// refused", a TLS error), printable, no secrets */
} tk_fetch_result;

/* Fetches `url` (https) into out->body (at most cap bytes: a longer body is
 * an error, not a truncation). Returns 0 when an HTTP response came (any
 * status), -1 with out->error otherwise. `ud` is the issuer's fetch_ud, or
 * the cache's when the issuer has none. Called without any lock held, at
 * most once at a time per issuer. */
typedef int (*tk_fetch_fn)(void *ud, const char *url, size_t cap, tk_fetch_result *out);

typedef struct tk_keycache_config {
    size_t struct_size;    /* sizeof(tk_keycache_config), set by tk_keycache_config_defaults (tokend.h) */
    int64_t min_ttl;       /* lower clamp of max-age, seconds (300) */
    int64_t max_ttl;       /* upper clamp (86400) */
    int64_t default_ttl;   /* without max-age (3600), then clamped */
    int64_t kid_cooldown;  /* one refetch per issuer per this, on unknown kids (30) */
    int64_t retry_min;     /* after a failed fetch, retry in this (5), doubling ... */
    int64_t retry_max;     /* ... up to this (300) */
    int64_t max_stale;     /* serve the last good set this long past its expiry (86400) */
    int64_t discovery_ttl; /* re-read the metadata this often (86400); at once when a jwks fetch fails with 404 */
    unsigned wait_ms;      /* longest wait of tk_keycache_verify for a fetch in progress (1000) */
    int inline_fetch;      /* 1: a caller that needs a fetch makes it on its own thread (no
                              maintainer thread); the fetch's own timeout bounds the wait */
    size_t body_cap;       /* biggest metadata or JWKS document, bytes (TK_LIMIT_JWK_LEN) */
    tk_fetch_fn fetch;     /* required unless every issuer has fixed JWKS text */
    void *fetch_ud;
    /* Told of fetch failures, recoveries and skipped keys (level "warn" or
     * "info"; one line naming the issuer; never key material). May be NULL. */
    void (*log)(void *ud, const char *level, const char *msg);
    void *log_ud;
} tk_keycache_config;

/* Fills the defaults above (fetch NULL) and struct_size. */
TK_API void tk_keycache_config_defaults(tk_keycache_config *c);

typedef struct tk_issuer_config {
    /* sizeof(tk_issuer_config), or 0 for the first layout (tokend.h): set
     * it when you use a member added after tokend 0.1. There are no
     * defaults to fill: zero every member you do not set. */
    size_t struct_size;
    const char *issuer;    /* exact iss (C string, required, https:// unless fixed jwks text) */
    const char *jwks_uri;  /* https URL of the JWKS; NULL: discover */
    const char *jwks_text; /* a fixed JWKS document (never fetched); NULL: fetch */
    size_t jwks_text_len;
    /* Algorithms the issuer's keys may use; empty: any asymmetric alg a key
     * declares. HS* and none are never allowed. A key without "alg" is bound
     * to the first allowed alg its type fits (RSA without any: RS256, the
     * alg OpenID Connect requires). */
    const tk_alg *algs;
    size_t algs_len;
    void *fetch_ud; /* per-issuer fetcher data (a CA file); NULL: the cache's */
} tk_issuer_config;

typedef struct tk_keycache tk_keycache;

TK_API TK_NODISCARD tk_result tk_keycache_new(const tk_keycache_config *cfg, tk_keycache **out);
/* Copies the config. TK_ERR_ARG for a duplicate or malformed issuer,
 * TK_ERR_LIMIT past TK_LIMIT_ISSUERS, TK_ERR_KEY when fixed JWKS text has no
 * usable key. Nothing is fetched here. */
TK_API TK_NODISCARD tk_result tk_keycache_add_issuer(tk_keycache *c, const tk_issuer_config *ic);
TK_API void tk_keycache_free(tk_keycache *c);

/* Makes the fetches that are due (first fetches, refresh ahead of expiry
 * at three quarters of the lifetime, retries, refetches asked for by
 * unknown kids), one issuer after another, and returns the milliseconds
 * until more work is due (at most 1000). Several threads may call it at
 * once: each due fetch is claimed by one of them, so a slow issuer holds
 * up only the thread fetching it. */
TK_API int64_t tk_keycache_maintain(tk_keycache *c, int64_t now);
/* Sleeps up to max_ms or until work is asked for (an unknown kid, a first
 * fetch) or tk_keycache_wake is called. For the maintainer thread. */
TK_API void tk_keycache_wait_work(tk_keycache *c, int64_t max_ms);
TK_API void tk_keycache_wake(tk_keycache *c);

/* 1 when `iss` (len bytes) is a configured issuer. */
TK_API int tk_keycache_has_issuer(const tk_keycache *c, const char *iss, size_t len);
/* Configured issuers, comma-separated, into buf (cut with "..."). */
TK_API void tk_keycache_issuer_list(const tk_keycache *c, char *buf, size_t cap);

/*
 * Verifies a token of a configured issuer: its key set (waiting up to
 * wait_ms for a first fetch, or for a refetch when the token's kid is not
 * in the set and the cool-down allows one), then tk_verify with `pol`
 * (whose `issuers` the caller sets, normally to this issuer). The verdict
 * names the issuer's side of things: for unknown_key the kids of the set,
 * when it was fetched and whether it was just refetched; for
 * `unavailable` why no usable set exists. Returns like tk_verify.
 */
TK_API TK_NODISCARD tk_result tk_keycache_verify(tk_keycache *c, const char *issuer, const char *tok, size_t len,
                                                 const tk_policy *pol, const tk_limits *lim, int64_t now, tk_verdict *v,
                                                 tk_token **out_token);

/* The same for a token already parsed with tk_token_parse (the caller read
 * its iss to pick the issuer): parses nothing again. */
TK_API TK_NODISCARD tk_result tk_keycache_verify_token(tk_keycache *c, const char *issuer, const tk_token *t,
                                                       const tk_policy *pol, int64_t now, tk_verdict *v);

/* What the cache knows of one issuer (for metrics, logs and tools). */
typedef struct tk_keycache_status {
    int have_keys;               /* a set was fetched (or given) at least once */
    int64_t fetched_at;          /* when the current set was fetched, 0 if never */
    int64_t expires_at;          /* when it is due to be replaced */
    int64_t stale_until;         /* when it stops being served */
    size_t keys;                 /* usable keys in it */
    size_t skipped;              /* keys of the set that were skipped */
    char skipped_why[256];       /* the first few skipped keys and why */
    char jwks_uri[512];          /* where the set comes from ("" for fixed text, or before discovery) */
    int64_t last_attempt;        /* last fetch attempt, 0 if none */
    int64_t failing_since;       /* first failed attempt since the last success, 0 when not failing */
    char last_error[256];        /* why the last attempt failed, "" when it did not */
    uint64_t fetch_ok;           /* fetches that gave a usable set */
    uint64_t fetch_failed;       /* fetches that did not */
    uint64_t kid_refetches;      /* refetches asked for by unknown kids */
    uint64_t kid_refetch_denied; /* unknown kids that found the cool-down running */
} tk_keycache_status;

/* Returns 1 and fills *st for a configured issuer, else 0. */
TK_API int tk_keycache_status_get(tk_keycache *c, const char *issuer, int64_t now, tk_keycache_status *st);
/* The number of issuers, and the issuer URL of the i-th (borrowed). */
TK_API size_t tk_keycache_count(const tk_keycache *c);
TK_API const char *tk_keycache_issuer_at(const tk_keycache *c, size_t i);

/* ---------------------------------------------------------------------------
 * The documents, parsed on their own (for tools, and for fuzzing).
 */
/* Reads OpenID Connect Discovery / RFC 8414 metadata: checks that its
 * "issuer" equals `issuer` (when non-NULL) and that jwks_uri is an https
 * URL, and copies it into jwks_uri (cap bytes). TK_OK, or TK_ERR_JSON with
 * `why` saying what is wrong ("not JSON: this looks like an HTML page",
 * "its issuer is X, not Y", "it has no jwks_uri"). */
TK_API TK_NODISCARD tk_result tk_metadata_parse(const char *doc, size_t len, const char *issuer, char *jwks_uri,
                                                size_t cap, char *why, size_t why_cap);

/* One key of a JWKS that could not be used, and why. */
typedef struct tk_jwks_skip {
    size_t index;                   /* position in "keys", from 0 */
    char kid[TK_LIMIT_KID_LEN + 1]; /* "" when it has none */
    char why[160]; /* "RSA key has 1024 bits; at least 2048 are required", "an encryption key (use \"enc\"), not a
                      signature key" */
} tk_jwks_skip;

/* Like tk_keyset_from_jwks, but a key that cannot be used is skipped and
 * reported in skips[0..cap) (*n_skipped counts them all) instead of
 * refusing the set; `algs` as in tk_issuer_config. A second key with the
 * kid of an earlier one is skipped too. Refused as a whole (TK_ERR_JSON
 * with `why`) only when the document is not a JWKS: not JSON, no "keys"
 * array, or more than TK_LIMIT_KEYSET_KEYS members. A set in which no key
 * is usable is TK_OK with an empty set. */
TK_API TK_NODISCARD tk_result tk_keyset_from_jwks_lenient(const char *json, size_t len, const tk_alg *algs,
                                                          size_t algs_len, tk_keyset **out, tk_jwks_skip *skips,
                                                          size_t cap, size_t *n_skipped, char *why, size_t why_cap);

/* A key set the caller holds (a file of its own, which may hold HMAC
 * secrets), read like tk_keyset_from_jwks with `alg` binding unbound keys
 * that fit it, except that a key that cannot be used is skipped and
 * reported in skips[0..cap) (*n_skipped counts them all: an encryption key,
 * RSA under 2048 bits, an unknown kty, a second key with an earlier kid)
 * instead of refusing the set, so the caller can use the rest and say what
 * it left out. Refused as a whole (TK_ERR_JSON, err->why naming what the
 * document is: an HTML page, OpenID metadata and its jwks_uri, a single
 * JWK) only when it is not a JWKS. A set in which no key is usable is TK_OK
 * with an empty set. `err` may be NULL. */
TK_API TK_NODISCARD tk_result tk_keyset_from_jwks_ex(const char *json, size_t len, tk_alg alg, tk_keyset **out,
                                                     tk_jwks_skip *skips, size_t cap, size_t *n_skipped,
                                                     tk_key_error *err);

/* Reads max-age from a Cache-Control header value: seconds, 0 for no-store
 * or no-cache, -1 when neither appears or the value is malformed. */
TK_API int64_t tk_cache_control_max_age(const char *value, size_t len);

#ifdef __cplusplus
}
#endif

#endif
