/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokend.h — the whole public contract of libtokend.
 *
 * libtokend parses, signs and verifies JSON Web Tokens (RFC 7519) in JWS
 * compact form (RFC 7515), validates their claims against a policy, parses
 * the HTTP Authorization header (RFC 6750 §2.1), and explains every
 * rejection with a stable reason code.
 *
 * Conventions, stated once for every function below:
 *  - Buffers travel as pointer + length. Untrusted input is never assumed to
 *    be NUL-terminated. Strings documented as "C string" are NUL-terminated
 *    and trusted (configuration, not tokens).
 *  - Functions that can fail return tk_result (TK_OK == 0), are marked
 *    TK_NODISCARD, zero their out-parameters on entry and leave the caller's
 *    state unchanged on failure.
 *  - A token that fails a check is not a program error: the function returns
 *    TK_OK and fills a tk_verdict whose reason says why. Results other than
 *    TK_OK mean the program could not decide (out of memory, bad argument,
 *    unusable key material) and must be treated as a rejection (fail closed).
 *  - Objects returned through `**out` are owned by the caller and freed with
 *    their own *_free function; freeing NULL is a no-op. Strings returned as
 *    `char **out` are owned and freed with tk_free(). Pointers documented as
 *    "borrowed" stay valid until the object they came from is freed.
 *  - Time is never read from the clock: every check takes `now` (Unix
 *    seconds) from the caller.
 *  - Thread safety: keys, key sets, policies and parsed tokens are immutable
 *    once built and may be shared by any number of threads for reading
 *    (verification, export). Building or freeing one is not concurrent-safe.
 *  - The library never prints, exits or aborts.
 *  - Structs a caller fills in and passes (tk_policy, tk_limits, and in
 *    keycache.h and fetch.h tk_keycache_config, tk_issuer_config,
 *    tk_fetch_options) start with `size_t struct_size`, set to the
 *    caller's sizeof by their *_init / *_default(s) function. New members
 *    are only ever appended, so a program built against an older header
 *    keeps working with a newer library: the library reads the first
 *    struct_size bytes and gives every member after them its default.
 *    struct_size 0 means the first layout (tokend 0.1), for callers that
 *    zero the struct themselves. A struct_size larger than the library
 *    knows (a newer header, an older library) is accepted only when the
 *    bytes it does not know are zero; otherwise the call fails with
 *    TK_ERR_UNSUPPORTED rather than silently ignore a setting.
 *    Structs the library fills in (tk_verdict, tk_key_error,
 *    tk_input_diag, tk_jwks_skip, tk_keycache_status) are frozen: they
 *    never change, and more to say comes through new functions.
 *    tk_fetch_result is allocated by the library and may grow at its end.
 */
#ifndef TOKEND_H
#define TOKEND_H

#include <stddef.h>
#include <stdint.h>

#include "tokend/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TK_NODISCARD __attribute__((warn_unused_result))
#define TK_API __attribute__((visibility("default")))
#else
#define TK_NODISCARD
#define TK_API
#endif

/* The version of this header: "MAJOR.MINOR.PATCH", and as a number
 * MAJOR * 1000000 + MINOR * 1000 + PATCH. The build checks that they equal
 * the project's version. Compare with tk_version() / tk_version_number(),
 * the version of the library a program runs with. */
#define TK_VERSION "0.1.0"
#define TK_VERSION_NUMBER 1000

/* The version of the library: a static C string ("0.1.0") and its number
 * as TK_VERSION_NUMBER counts it. Thread-safe; never fails. */
TK_API const char *tk_version(void);
TK_API int tk_version_number(void);

/* ---------------------------------------------------------------------------
 * Results: program outcomes. Append only; never renumber.
 */
typedef enum tk_result {
    TK_OK = 0,
    TK_ERR_NOMEM = 1,         /* an allocation failed */
    TK_ERR_ARG = 2,           /* an argument is invalid (NULL, empty, out of range) */
    TK_ERR_KEY = 3,           /* key material unusable: malformed, too small, wrong type */
    TK_ERR_UNSUPPORTED = 4,   /* algorithm, curve or key type not supported */
    TK_ERR_CRYPTO = 5,        /* OpenSSL failed where it should not */
    TK_ERR_LIMIT = 6,         /* an input exceeds a documented limit */
    TK_ERR_JSON = 7,          /* a JSON document given to us (not a token) is malformed */
    TK_ERR_STATE = 8,         /* the object cannot do that (sign with a public key) */
    TK_ERR_KEY_EXPONENT = 9,  /* RSA public exponent e not odd, not > 1, or not < 2^64 */
    TK_ERR_KEY_MISMATCH = 10, /* a private key's private part does not belong to its public part */
} tk_result;

/* Static C string naming a result ("TK_ERR_KEY: ..."). Never NULL. */
TK_API const char *tk_result_str(tk_result r);

/* Frees a string returned by libtokend. NULL is a no-op. */
TK_API void tk_free(void *p);

/* ---------------------------------------------------------------------------
 * Verdicts. A reason code is public API: it appears in HTTP headers, logs and
 * docs/errors.md. Append only; never rename or renumber.
 */
typedef enum tk_reason {
    TK_REASON_VALID = 0,
    TK_REASON_MISSING_TOKEN,          /* no Authorization header */
    TK_REASON_WRONG_SCHEME,           /* Basic, Token, ... instead of Bearer */
    TK_REASON_MALFORMED_HEADER,       /* Authorization header not per RFC 6750 §2.1 */
    TK_REASON_MALFORMED_TOKEN,        /* segments, base64url, JSON, limits */
    TK_REASON_UNSUPPORTED_TOKEN_TYPE, /* a JWE, or a JWS extension we do not implement */
    TK_REASON_ALG_NOT_ALLOWED,        /* none, unknown alg, alg not the key's */
    TK_REASON_UNKNOWN_KEY,            /* kid not in the key set */
    TK_REASON_BAD_SIGNATURE,          /* tampered or signed by another key */
    TK_REASON_EXPIRED,
    TK_REASON_NOT_YET_VALID,
    TK_REASON_ISSUED_IN_FUTURE,
    TK_REASON_WRONG_ISSUER,
    TK_REASON_WRONG_AUDIENCE,
    TK_REASON_WRONG_TOKEN_TYPE, /* typ header not the expected one */
    TK_REASON_MISSING_CLAIM,    /* a required claim is absent */
    TK_REASON_INVALID_CLAIM,    /* a claim has the wrong type or range */
    TK_REASON_REVOKED,          /* decided by the authority, not the core */
    TK_REASON_INSUFFICIENT_SCOPE,
    TK_REASON_UNAVAILABLE,  /* a dependency is down: fail closed */
    TK_REASON_EMBEDDED_KEY, /* header carries jwk, jku, x5u or x5c */
    TK_REASON_TOO_OLD,      /* iat older than the policy's max age */
    TK_REASON_COUNT_        /* not a reason; keep last */
} tk_reason;

/* Stable lower-case code ("expired"). Static; "unknown" for out of range. */
TK_API const char *tk_reason_code(tk_reason r);
/* RFC 6750 §3.1 error ("invalid_token", "invalid_request",
 * "insufficient_scope") or NULL when the answer carries none. */
TK_API const char *tk_reason_error(tk_reason r);
/* HTTP status for the reason (200 for VALID). */
TK_API int tk_reason_status(tk_reason r);
/* One sentence on how to fix it, for people. Static. */
TK_API const char *tk_reason_hint(tk_reason r);
/* Parses a code back; returns 1 and sets *out when known, else 0. */
TK_API int tk_reason_from_code(const char *p, size_t len, tk_reason *out);

typedef struct tk_verdict {
    tk_reason reason;
    /* One line with the concrete values, NUL-terminated, printable ASCII
     * only (token-supplied text is escaped and cut). Empty when VALID. */
    char detail[TK_LIMIT_DETAIL_LEN];
} tk_verdict;

/* The hint for this verdict: tk_reason_hint(v->reason), except for cases
 * of a reason that need another fix (a duplicate member is the issuer's
 * bug, not a transport problem; scopes carried in "scp" or "roles" need the
 * verifier told, not another scope requested). Static; "" for NULL. */
TK_API const char *tk_verdict_hint(const tk_verdict *v);

/* ---------------------------------------------------------------------------
 * Algorithms (RFC 7518 §3.1, RFC 8037 §3.1). `none` does not exist here.
 */
typedef enum tk_alg {
    TK_ALG_UNSET = 0,
    TK_ALG_HS256,
    TK_ALG_HS384,
    TK_ALG_HS512,
    TK_ALG_RS256,
    TK_ALG_RS384,
    TK_ALG_RS512,
    TK_ALG_PS256,
    TK_ALG_PS384,
    TK_ALG_PS512,
    TK_ALG_ES256,
    TK_ALG_ES384,
    TK_ALG_ES512,
    TK_ALG_EDDSA,
    TK_ALG_COUNT_
} tk_alg;

/* "ES256"; NULL for TK_ALG_UNSET or out of range. */
TK_API const char *tk_alg_name(tk_alg alg);
/* Exact, case-sensitive match of a JWS alg name; TK_ALG_UNSET if none. */
TK_API tk_alg tk_alg_from_name(const char *p, size_t len);

/* ---------------------------------------------------------------------------
 * Keys. A key is bound to exactly one alg when it is built (SECURITY.md
 * rule 1); it verifies only tokens whose header alg equals it.
 *
 * `alg` arguments: for EC and Ed25519 keys the curve decides and `alg` may be
 * TK_ALG_UNSET (if given it must agree). RSA keys take an RS* or PS* alg and
 * HMAC secrets an HS* alg; a JWK's own "alg" member names it. An RSA or HMAC
 * key loaded with TK_ALG_UNSET and no "alg" member is *unbound*: it signs and
 * verifies nothing (TK_ERR_STATE, or alg_not_allowed in a key set) until
 * tk_key_bind_alg() binds it once. A non-UNSET `alg` argument that differs
 * from the JWK's own "alg" or the curve is TK_ERR_KEY.
 *
 * Every key is validated when it is built, from any source (SECURITY.md rule
 * 23). Refused with TK_ERR_KEY: RSA under 2048 bits, HMAC secrets shorter than
 * the hash output, EC points not on the curve, malformed material. Refused
 * with TK_ERR_KEY_EXPONENT: an RSA public exponent that is even, 1 (with e=1
 * every "signature" equal to the padded message verifies, so anyone can forge
 * one), or 2^64 or more. Refused with TK_ERR_KEY_MISMATCH: a private key whose
 * private part does not belong to its public part (RSA d, p, q not of n and
 * e; EC d times G not the point x, y; Ed25519 d not deriving x), which would
 * sign tokens that never verify.
 */
typedef struct tk_key tk_key;

TK_API TK_NODISCARD tk_result tk_key_generate(tk_alg alg, const char *kid, tk_key **out);
/* `kid` may be NULL. The secret is copied; the caller wipes its own copy. */
TK_API TK_NODISCARD tk_result tk_key_from_secret(const unsigned char *secret, size_t len, tk_alg alg, const char *kid,
                                                 tk_key **out);
/* PEM: PUBLIC KEY (SPKI), RSA PUBLIC KEY, PRIVATE KEY (PKCS#8), RSA/EC
 * PRIVATE KEY. Encrypted PEM is refused. Private keys are checked against
 * their public part (TK_ERR_KEY_MISMATCH), RSA exponents as above. */
TK_API TK_NODISCARD tk_result tk_key_from_pem(const char *pem, size_t len, tk_alg alg, const char *kid, tk_key **out);
/* One JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2): kty oct, RSA, EC, OKP
 * (Ed25519), public or private. A JWK with "use" other than "sig" or
 * "key_ops" without "verify"/"sign" is refused. A private RSA JWK may carry
 * d without p, q, dp, dq, qi (RFC 7518 §6.3.2): the factors are then
 * recovered from n, e and d, which proves that d belongs to them, and the
 * key is kept (and exported) with all of them. Multi-prime keys ("oth") are
 * TK_ERR_UNSUPPORTED. */
TK_API TK_NODISCARD tk_result tk_key_from_jwk(const char *json, size_t len, tk_alg alg, tk_key **out);
/* Why key material was refused, for people: the one check that failed,
 * with its numbers ("RSA key has 1024 bits; at least 2048 are required",
 * "an encryption key (use \"enc\"), not a signature key", "HMAC secret has
 * 16 bytes; HS256 needs at least 32", "the EC point (x, y) is not on the
 * curve P-256", "the PEM key is encrypted ..."). `why` is printable ASCII,
 * NUL-terminated, without key material; empty on TK_OK. `result` is the
 * function's own result. */
typedef struct tk_key_error {
    tk_result result;
    char why[TK_LIMIT_KEY_WHY_LEN];
} tk_key_error;
/* tk_key_from_jwk and tk_key_from_pem that also say why a key is refused.
 * `err` may be NULL (then they are exactly the functions above). */
TK_API TK_NODISCARD tk_result tk_key_from_jwk_ex(const char *json, size_t len, tk_alg alg, tk_key **out,
                                                 tk_key_error *err);
TK_API TK_NODISCARD tk_result tk_key_from_pem_ex(const char *pem, size_t len, tk_alg alg, const char *kid, tk_key **out,
                                                 tk_key_error *err);
/* JWK text of the key (compact JSON, members sorted). With `with_private`
 * zero, only the public part (for oct keys: TK_ERR_STATE, a secret has no
 * public part). Owned; free with tk_free (it is wiped first when private). */
TK_API TK_NODISCARD tk_result tk_key_to_jwk(const tk_key *k, int with_private, char **out);
/* Binds an unbound key (see above) to `alg`. TK_ERR_KEY when `alg` is not of
 * the key's family (RSA: RS*, PS*; oct: HS* with a secret at least as long as
 * the hash); TK_ERR_STATE when the key is already bound to another alg
 * (binding to the same alg again is TK_OK). */
TK_API TK_NODISCARD tk_result tk_key_bind_alg(tk_key *k, tk_alg alg);
/* Sets or replaces the kid (1..TK_LIMIT_KID_LEN bytes; NULL removes it).
 * Like binding, done before the key is shared or added to a key set. */
TK_API TK_NODISCARD tk_result tk_key_set_kid(tk_key *k, const char *kid);
/* The bound alg, or TK_ALG_UNSET for an unbound key. */
TK_API tk_alg tk_key_alg(const tk_key *k);
/* 1 when `alg` belongs to the family the key's type allows. */
TK_API int tk_key_alg_fits(const tk_key *k, tk_alg alg);
/* Borrowed C string or NULL when the key has no kid. */
TK_API const char *tk_key_kid(const tk_key *k);
/* 1 when the key can sign (private or secret). */
TK_API int tk_key_can_sign(const tk_key *k);
/* "oct", "RSA", "EC", "OKP". */
TK_API const char *tk_key_kty(const tk_key *k);
/* RFC 7638 JWK thumbprint, base64url of SHA-256, into buf (>= 44 bytes). */
TK_API TK_NODISCARD tk_result tk_key_thumbprint(const tk_key *k, char *buf, size_t cap);
/* Signs msg with the key's alg into an owned buffer in JWS form (ECDSA raw
 * r||s). Free *sig with tk_free. */
TK_API TK_NODISCARD tk_result tk_key_sign(const tk_key *k, const unsigned char *msg, size_t msg_len,
                                          unsigned char **sig, size_t *sig_len);
/* Verifies a JWS-form signature over msg with the key's alg: sets *valid to
 * 1 or 0. TK_OK with *valid == 0 for every malformed signature. */
TK_API TK_NODISCARD tk_result tk_key_verify(const tk_key *k, const unsigned char *msg, size_t msg_len,
                                            const unsigned char *sig, size_t sig_len, int *valid);
/* Wipes and frees. NULL is a no-op. */
TK_API void tk_key_free(tk_key *k);

/* ---------------------------------------------------------------------------
 * Key sets: the keys a verifier trusts, looked up by kid.
 */
typedef struct tk_keyset tk_keyset;

TK_API TK_NODISCARD tk_result tk_keyset_new(tk_keyset **out);
/* Takes ownership of `k` on TK_OK only. TK_ERR_ARG for a duplicate kid,
 * TK_ERR_LIMIT past TK_LIMIT_KEYSET_KEYS. */
TK_API TK_NODISCARD tk_result tk_keyset_add(tk_keyset *ks, tk_key *k);
/* Records a kid that was rotated out, so unknown_key can say so. */
TK_API TK_NODISCARD tk_result tk_keyset_add_retired_kid(tk_keyset *ks, const char *kid);
/* Parses {"keys": [...]}. `alg` binds members without their own alg whose
 * key type allows it (see tk_key_from_jwk); others stay as they are. Members of a kind we do not use (enc keys,
 * unknown kty) are skipped and counted in *skipped (may be NULL). A signature
 * key that is refused (TK_ERR_KEY, TK_ERR_KEY_EXPONENT, TK_ERR_KEY_MISMATCH)
 * refuses the whole set with that result: fail closed. */
TK_API TK_NODISCARD tk_result tk_keyset_from_jwks(const char *json, size_t len, tk_alg alg, tk_keyset **out,
                                                  size_t *skipped);
/* {"keys":[...]} of every key, public parts only unless with_private. oct
 * keys are left out of a public export. Owned; free with tk_free. */
TK_API TK_NODISCARD tk_result tk_keyset_to_jwks(const tk_keyset *ks, int with_private, char **out);
/* Moves every key and retired kid of `src` into `dst`; `src` is left empty.
 * All or nothing: TK_ERR_ARG (a kid in both) or TK_ERR_LIMIT leave both
 * unchanged. */
TK_API TK_NODISCARD tk_result tk_keyset_merge(tk_keyset *dst, tk_keyset *src);
TK_API size_t tk_keyset_count(const tk_keyset *ks);
/* Borrowed; NULL when i is out of range. */
TK_API const tk_key *tk_keyset_get(const tk_keyset *ks, size_t i);
/* Borrowed; NULL when no key has that kid. */
TK_API const tk_key *tk_keyset_find(const tk_keyset *ks, const char *kid, size_t kid_len);
TK_API void tk_keyset_free(tk_keyset *ks);

/* ---------------------------------------------------------------------------
 * Limits applied while parsing a token. Start from tk_limits_default();
 * values above the TK_LIMIT_* ceilings are clamped to them.
 */
typedef struct tk_limits {
    size_t struct_size; /* sizeof(tk_limits), set by tk_limits_default (see the conventions above) */
    size_t token_len;
    size_t header_len;
    size_t payload_len;
    size_t json_depth;
    size_t json_members;
} tk_limits;

/* Sets every member, struct_size included. */
TK_API void tk_limits_default(tk_limits *l);

/* ---------------------------------------------------------------------------
 * A cache of verified signatures, for a verifier that sees the same tokens
 * many times (a gateway: a proxy sends one token on every request of its
 * life). Give one to tk_verify / tk_token_verify through tk_policy.sigcache.
 *
 * It memoises one pure function: "these exact token bytes carry a valid
 * signature by this exact key" (RSA, EC, EdDSA; HMAC is as cheap as the
 * lookup and is never cached). An entry is keyed by SHA-256 over the key's
 * identity (a SHA-256 of its alg and public key, computed when the key is
 * loaded) and the whole token text, so:
 *  - a token differing in any byte, the signature included, never hits;
 *  - the key is still looked up by kid in the key set given to each call,
 *    so a key that left the set is unknown_key, and a kid now naming
 *    another key misses and is verified;
 *  - only what was verified is stored, once the whole verification (claims
 *    included) said VALID; no failure is ever cached;
 *  - everything else (header policy, payload, every claim at `now`) is
 *    checked on every call, hit or miss. The verdict is the same with or
 *    without a cache, only cheaper.
 * An entry lives until the token's exp plus the policy's leeway, at most
 * TK_LIMIT_SIGCACHE_TTL. Memory is bounded: `entries` slots (rounded up to
 * a multiple of 8) of 40 bytes, with CLOCK eviction inside sets of 8.
 *
 * Thread safety: one cache may be used by any number of threads at once.
 * Lookups take no lock (a sequence count per set); an insert that meets
 * another in the same set gives up, and the next call verifies again.
 */
typedef struct tk_sigcache tk_sigcache;
typedef struct tk_sigcache_stats {
    uint64_t hits;    /* signature checks skipped */
    uint64_t misses;  /* signature checks done (on a cacheable key) */
    uint64_t entries; /* slots in use (some may have expired, not yet purged) */
    uint64_t capacity;
} tk_sigcache_stats;
/* A cache of `entries` slots (1..TK_LIMIT_SIGCACHE_ENTRIES). */
TK_API TK_NODISCARD tk_result tk_sigcache_new(size_t entries, tk_sigcache **out);
/* Not concurrent with any use of the cache. */
TK_API void tk_sigcache_free(tk_sigcache *c);
TK_API void tk_sigcache_stats_get(const tk_sigcache *c, tk_sigcache_stats *out);
/* Frees the slots of entries expired at `now` (call now and then: an
 * insert also reuses expired slots). */
TK_API void tk_sigcache_purge(tk_sigcache *c, int64_t now);

/* ---------------------------------------------------------------------------
 * Claims policy. Start from tk_policy_init(); set what you need. The arrays
 * are borrowed for the duration of each call.
 */
typedef struct tk_policy {
    size_t struct_size;         /* sizeof(tk_policy), set by tk_policy_init (see the conventions above) */
    int64_t now;                /* Unix seconds */
    int64_t leeway;             /* seconds, 0..TK_LIMIT_LEEWAY_MAX; default 60 */
    int64_t max_age;            /* seconds since iat; 0 = no limit (then iat optional) */
    const char *const *issuers; /* one must equal iss exactly; none = no check */
    size_t issuers_len;
    const char *const *audiences; /* one must equal one aud value exactly */
    size_t audiences_len;
    const char *const *scopes; /* every one must be in the scope claim */
    size_t scopes_len;
    const char *typ;             /* expected typ header (e.g. "at+jwt"); NULL = no check.
                                    Compared case-insensitively, with or without the
                                    "application/" prefix (RFC 7515 §4.1.9). */
    const char *const *required; /* claim names that must be present */
    size_t required_len;
    int require_exp; /* default 1: a token without exp is missing_claim */
    /* tk_verify and tk_token_verify: skip the signature check of a token
     * whose signature this cache remembers (see tk_sigcache); NULL (the
     * default) = verify every time. Borrowed for the call. */
    tk_sigcache *sigcache;
} tk_policy;

/* Sets every member, struct_size included. */
TK_API void tk_policy_init(tk_policy *p, int64_t now);

/* ---------------------------------------------------------------------------
 * Parsed tokens.
 */
typedef struct tk_token tk_token;

/*
 * Splits and decodes a compact JWS and checks its header (structure and
 * header policy: SECURITY.md rules 2–6). `lim` may be NULL for defaults.
 *
 * When the input is not a JWS at all (wrong number of segments, too long, a
 * JWE) *out stays NULL and *v says why. Otherwise *out is a token and *v is
 * the first structural problem found (header first, then payload), or VALID.
 * A token whose header is unusable still exposes what could be decoded, so
 * that tools can show it.
 */
TK_API TK_NODISCARD tk_result tk_token_parse(const char *p, size_t len, const tk_limits *lim, tk_token **out,
                                             tk_verdict *v);
/* The same, faster for a verifier that parses many tokens: with `hint` (a
 * key set, borrowed for the call only; may be NULL), a header that
 * tk_sign wrote for one of its keys is recognised without a JSON parse, and
 * a payload in the simple profile most issuers write is read without
 * allocating (as tk_verify does). The result is the same token. */
TK_API TK_NODISCARD tk_result tk_token_parse_with(const char *p, size_t len, const tk_limits *lim,
                                                  const tk_keyset *hint, tk_token **out, tk_verdict *v);
/* Verdict of the header alone (VALID when the header is usable). Borrowed. */
TK_API const tk_verdict *tk_token_header_verdict(const tk_token *t);
/* Verdict of the payload alone (VALID when it is a JSON object within the
 * limits). Borrowed. */
TK_API const tk_verdict *tk_token_payload_verdict(const tk_token *t);
/* Checks the signature against the key set: key lookup by kid, alg binding,
 * signature. *v is VALID, or UNKNOWN_KEY, ALG_NOT_ALLOWED, BAD_SIGNATURE, or
 * the header's verdict when the header is unusable. */
TK_API TK_NODISCARD tk_result tk_token_verify_signature(const tk_token *t, const tk_keyset *ks, tk_verdict *v);
/* Checks the claims against the policy and writes the problems found, in
 * check order, into out[0..cap); *n is how many were found in all (0 =
 * valid; may exceed cap, then only the first cap are written). TK_ERR_ARG
 * for a policy out of range (leeway outside 0..TK_LIMIT_LEEWAY_MAX); then, to
 * fail closed, *n is 1 and out[0] (when cap > 0) is UNAVAILABLE; the same
 * with TK_ERR_ARG or TK_ERR_UNSUPPORTED for a struct_size the library
 * refuses (see the conventions above; tk_verify, tk_token_verify and the
 * parsers, for tk_limits, alike). Only
 * meaningful when the payload verdict is VALID. This does NOT check the
 * signature: report claims as facts only after it passed. */
TK_API TK_NODISCARD tk_result tk_token_check_claims(const tk_token *t, const tk_policy *pol, tk_verdict *out,
                                                    size_t cap, size_t *n);
/* Header and payload as JSON text (pretty when `pretty`), owned; NULL in *out
 * when that part could not be decoded. */
TK_API TK_NODISCARD tk_result tk_token_header_json(const tk_token *t, int pretty, char **out);
TK_API TK_NODISCARD tk_result tk_token_payload_json(const tk_token *t, int pretty, char **out);
/* Decoded payload bytes (borrowed; NULL when the segment did not decode). */
TK_API const unsigned char *tk_token_payload(const tk_token *t, size_t *len);
/* Header alg and kid as borrowed C strings, NULL when absent or not strings. */
TK_API const char *tk_token_alg(const tk_token *t);
TK_API const char *tk_token_kid(const tk_token *t);
TK_API const char *tk_token_typ(const tk_token *t);
/* A string claim as a borrowed C string; NULL when absent or not a string.
 * Strings never contain NUL (the parser rejects \u0000). */
TK_API const char *tk_token_claim_string(const tk_token *t, const char *name);
/* The strings of a claim that is a string (1) or an array (its string
 * items, in order; other items are left out). Up to cap borrowed pointers go
 * into out; returns how many there are in all (0 when absent). */
TK_API size_t tk_token_claim_strings(const tk_token *t, const char *name, const char **out, size_t cap);
/* A numeric claim: returns 1 and sets *out when present and a number. */
TK_API int tk_token_claim_number(const tk_token *t, const char *name, double *out);
TK_API void tk_token_free(tk_token *t);

/*
 * The one entry point from bytes to verdict: parse, header policy, key,
 * signature, payload, claims, in that order (SECURITY.md rule 8); stops at
 * the first problem. `ks` must not be NULL. On any result other than TK_OK
 * the verdict is UNAVAILABLE, never VALID. When `out_token` is non-NULL and
 * the token is VALID, the parsed token is returned there (owned).
 */
TK_API TK_NODISCARD tk_result tk_verify(const char *p, size_t len, const tk_keyset *ks, const tk_policy *pol,
                                        const tk_limits *lim, tk_verdict *v, tk_token **out_token);

/* The same checks as tk_verify, in the same order, on a token parsed by
 * tk_token_parse (for a caller that had to read a claim, such as iss, to
 * choose the key set): header verdict, signature, payload verdict, claims.
 * Until this returns VALID, every claim read from `t` is unverified. */
TK_API TK_NODISCARD tk_result tk_token_verify(const tk_token *t, const tk_keyset *ks, const tk_policy *pol,
                                              tk_verdict *v);

/* ---------------------------------------------------------------------------
 * Signing.
 */
/* Signs `payload` (any bytes; claims JSON for a JWT) with header
 * {"alg":<key alg>,"kid":<key kid, if any>,"typ":<typ, if non-NULL>}.
 * *out is an owned C string (the compact JWS); *out_len its length. */
TK_API TK_NODISCARD tk_result tk_sign(const tk_key *k, const char *typ, const unsigned char *payload,
                                      size_t payload_len, char **out, size_t *out_len);
/* Signs with a header given verbatim (no check that it names the key's alg).
 * For tools and tests that craft unusual tokens. */
TK_API TK_NODISCARD tk_result tk_sign_with_header(const tk_key *k, const char *header, size_t header_len,
                                                  const unsigned char *payload, size_t payload_len, char **out,
                                                  size_t *out_len);

/* ---------------------------------------------------------------------------
 * The Authorization header (RFC 6750 §2.1, RFC 7235 §2.1).
 *
 * `value` is the field value without the "Authorization:" name, or NULL when
 * the request had no such header. On VALID, *tok / *tok_len point into
 * `value` (borrowed). Verdicts: MISSING_TOKEN, WRONG_SCHEME,
 * MALFORMED_HEADER, and MALFORMED_TOKEN for '=' padding inside the token
 * (a base64url problem). A refused value that tk_input_diagnose recognises
 * (below) gets its sentence. Leading/trailing optional whitespace (SP, HTAB) around
 * the field value is allowed (RFC 7230 §3.2); inside, exactly one SP.
 */
TK_API TK_NODISCARD tk_result tk_authz_parse(const char *value, size_t len, const char **tok, size_t *tok_len,
                                             tk_verdict *v);

/* ---------------------------------------------------------------------------
 * Pasted input: what a person put where a token was expected.
 *
 * One diagnoser for tools (`tokend inspect`) and for the Authorization
 * header (tk_authz_parse runs it on a value it refuses), so that both name
 * the same problem with the same sentence. Kinds are stable (append only).
 */
typedef enum tk_input_kind {
    TK_INPUT_TOKEN = 0,       /* nothing recognised: a token as it is (or left to the strict parsers) */
    TK_INPUT_BOM,             /* a UTF-8 byte order mark (EF BB BF) */
    TK_INPUT_INVISIBLE,       /* another invisible character: no-break space, zero-width space... */
    TK_INPUT_QUOTED,          /* the token in quotes ("", '', or typographic ones) */
    TK_INPUT_WRAPPED,         /* line breaks inside or after the token */
    TK_INPUT_SPACE,           /* a space or tab inside one token */
    TK_INPUT_PERCENT,         /* percent-encoded (%2E for '.') */
    TK_INPUT_PADDING,         /* '=' padding at the end of a segment (a base64url problem) */
    TK_INPUT_TOKEN_RESPONSE,  /* a whole token response JSON; the token is its access_token */
    TK_INPUT_JSON,            /* another JSON document */
    TK_INPUT_COOKIE,          /* a "Cookie:" header line */
    TK_INPUT_HEADER_LINE,     /* "Authorization: ..." where only the value belongs */
    TK_INPUT_BEARER_NO_SPACE, /* "BearereyJ..." */
    TK_INPUT_BEARER_TWICE,    /* "Bearer Bearer <token>" */
    TK_INPUT_BEARER_COLON,    /* "Bearer: <token>" */
    TK_INPUT_KIND_COUNT_      /* not a kind; keep last */
} tk_input_kind;

typedef struct tk_input_diag {
    tk_input_kind kind; /* the first problem found */
    /* VALID for TK_INPUT_TOKEN; otherwise the verdict a validator gives
     * this input (MALFORMED_HEADER, or MALFORMED_TOKEN for padding) and
     * one sentence: what was found, where (bytes counted from the start of
     * the token, after 'Bearer '), and the fix. */
    tk_verdict verdict;
    size_t at;          /* offset of the problem in the input */
    size_t clean_len;   /* bytes of the repaired token in the caller's buffer; 0: none */
    char repaired[200]; /* what the repair did ("removed the quotes, URL-decoded it"), printable ASCII */
} tk_input_diag;

/* Diagnoses p[0..len) (untrusted, not NUL-terminated; a paste, or an
 * Authorization header value). Spaces and tabs around it are ignored.
 * When `clean` is not NULL and a token can be recovered, it is written
 * there (NUL-terminated, at most clean_cap - 1 bytes) with its length in
 * out->clean_len. A tool may go on with it and must say so; a validator
 * must not accept it (fail closed: SECURITY.md). No I/O, no allocation,
 * linear time. TK_ERR_ARG for a NULL out, or p NULL with len > 0. */
TK_API TK_NODISCARD tk_result tk_input_diagnose(const char *p, size_t len, tk_input_diag *out, char *clean,
                                                size_t clean_cap);
/* "bom", "quoted", "token_response"...: a stable name for the kind. */
TK_API const char *tk_input_kind_name(tk_input_kind k);

/* ---------------------------------------------------------------------------
 * base64url (RFC 4648 §5) without padding, canonical (SECURITY.md rule 6).
 */
/* Length of the encoding of n bytes. */
TK_API size_t tk_b64url_encoded_len(size_t n);
/* Encodes into out (cap >= tk_b64url_encoded_len(n) + 1; NUL-terminated). */
TK_API TK_NODISCARD tk_result tk_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap,
                                               size_t *out_len);
/* Decodes strictly. On a bad input returns TK_ERR_ARG and sets *bad_at to the
 * offset of the first offending character (or the length, when the length
 * itself is impossible). cap >= n * 3 / 4 + 1. */
TK_API TK_NODISCARD tk_result tk_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap,
                                               size_t *out_len, size_t *bad_at);

/* ---------------------------------------------------------------------------
 * Formatting helpers used by messages, exposed for tools.
 */
/* "2026-11-21T09:14:03Z" into buf (>= 21 bytes); "out of range" otherwise. */
TK_API void tk_format_time(int64_t t, char *buf, size_t cap);
/* "3h12m", "14m", "45s", "2d3h" (absolute value) into buf (>= 24 bytes). */
TK_API void tk_format_duration(int64_t secs, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
