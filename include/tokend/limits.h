/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokend/limits.h — every size and time bound of libtokend, with the reason
 * for its value. Callers may lower these through tk_limits (tokend.h); they
 * can never be raised past the values here.
 */
#ifndef TOKEND_LIMITS_H
#define TOKEND_LIMITS_H

/* A whole compact JWS. Real access tokens are 300 B – 2 KiB; 8 KiB is also
 * the header-line limit of common proxies, so a longer token could not travel
 * in an Authorization header anyway (SECURITY.md rule 5). */
#define TK_LIMIT_TOKEN_LEN 8192u

/* Decoded JOSE header. Ours carry alg, typ, kid (< 100 B); 1 KiB leaves room
 * for foreign issuers while keeping hostile headers cheap to reject. */
#define TK_LIMIT_HEADER_LEN 1024u

/* Decoded payload: 6 KiB covers claim sets with long scope lists. */
#define TK_LIMIT_PAYLOAD_LEN 6144u

/* JSON nesting depth of header and payload. Claim sets are flat with the odd
 * nested object (cnf, act); 16 bounds the recursion of every walker. */
#define TK_LIMIT_JSON_DEPTH 16u

/* Members per JSON object. RFC 9068 tokens carry about ten. */
#define TK_LIMIT_JSON_MEMBERS 64u

/* Leeway for time claims, seconds: default and ceiling (rule 10). */
#define TK_LIMIT_LEEWAY_DEFAULT 60
#define TK_LIMIT_LEEWAY_MAX 300

/* A NumericDate must lie in [0, 253402300799] (9999-12-31T23:59:59Z), so
 * every arithmetic on it fits an int64 with room to spare (rule 9). */
#define TK_LIMIT_NUMERICDATE_MAX 253402300799LL

/* jti length in bytes (rule 13). */
#define TK_LIMIT_JTI_LEN 256u

/* Human description of a verdict, including the NUL. Long enough for the
 * list of known kids; anything longer is cut with an ellipsis. */
#define TK_LIMIT_DETAIL_LEN 384u

/* Why a key was refused (tk_key_error), including the NUL: one line with
 * the check that failed and its numbers. */
#define TK_LIMIT_KEY_WHY_LEN 256u

/* Keys in one key set: a ring holds next, active and a few retired keys;
 * public JWKS endpoints rarely publish more than ten. */
#define TK_LIMIT_KEYSET_KEYS 64u

/* A JWK or JWKS document (a 4096-bit RSA private JWK is about 3.2 KiB). */
#define TK_LIMIT_JWK_LEN (64u * 1024u)

/* A kid, in bytes. */
#define TK_LIMIT_KID_LEN 128u

/* A whole Authorization header value (RFC 6750 §2.1): the token plus the
 * scheme and a space. */
#define TK_LIMIT_AUTHZ_LEN (TK_LIMIT_TOKEN_LEN + 64u)

/* Problems one inspect run reports; more would repeat each other. */
#define TK_LIMIT_PROBLEMS 16u

/* Policy lists (issuers, audiences, scopes, required claims). */
#define TK_LIMIT_POLICY_ITEMS 32u

/* RSA modulus sizes we accept: at least 2048 bits (rule 7), at most 16384
 * so that a hostile key cannot make one verify cost seconds. */
#define TK_LIMIT_RSA_MIN_BITS 2048
#define TK_LIMIT_RSA_MAX_BITS 16384

/* RSA public exponent e: odd, greater than 1 (rule 23; e=1 makes every
 * signature forgeable, an even e has no inverse d), and below 2^64. The upper
 * bound is OpenSSL's own for moduli over 3072 bits (OPENSSL_RSA_MAX_PUBEXP_BITS:
 * it fails every verification with a longer e), so one bound for every size
 * keeps "a key that loads is a key that can verify". FIPS 186-5 §A.1.1 would
 * allow up to 2^256, but deployed keys use 65537 (17 bits) or 3; a long e also
 * makes each verification slower, up to the cost of a signature. */
#define TK_LIMIT_RSA_MAX_EXPONENT_BITS 64

/* HMAC keys: at least the hash output size (rule 7), at most 1 KiB. */
#define TK_LIMIT_HMAC_KEY_MAX 1024u

/* Trusted issuers in one key cache (tokend/keycache.h): each holds a key
 * set and its fetch state; a gateway trusts a handful. */
#define TK_LIMIT_ISSUERS 32u

/* An issuer URL or a jwks_uri, in bytes. */
#define TK_LIMIT_URL_LEN 512u

/* Members of an issuer's metadata document (Keycloak's has about 70). */
#define TK_LIMIT_METADATA_MEMBERS 256u

/* A signature cache (tk_sigcache): at most 2^24 slots (640 MiB; 100000,
 * tokend serve's default, is 4 MiB), and an entry lives at most a day
 * past being stored, however far away the token's exp (a token that is
 * still in use is then verified once more). */
#define TK_LIMIT_SIGCACHE_ENTRIES (1u << 24)
#define TK_LIMIT_SIGCACHE_TTL 86400

#endif
