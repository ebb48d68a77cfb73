/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — definitions shared by the core modules and nothing else.
 * Symbols here are tki_* and hidden (-fvisibility=hidden); tests link the
 * static library and may use them.
 */
#ifndef TOKEND_CORE_INTERNAL_H
#define TOKEND_CORE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "tokend/tokend.h"

#if defined(__GNUC__)
#define TKI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TKI_PRINTF(a, b)
#endif

/* ---- version.c ---------------------------------------------------------- */
/* Where a struct ends at `member`, its last member in some version: the
 * size that version's callers pass, whatever members are appended later. */
#define TKI_SIZE_THROUGH(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))
/* The first published size of each versioned public struct (tokend 0.1):
 * what struct_size 0 stands for. Pinned to the last member of 0.1, so
 * that appending members does not move them; never change these. */
#define TKI_POLICY_SIZE_V1 TKI_SIZE_THROUGH(tk_policy, sigcache)
#define TKI_LIMITS_SIZE_V1 TKI_SIZE_THROUGH(tk_limits, json_members)
/*
 * Copies a caller's versioned struct (src, whose struct_size is src_size)
 * into dst (dst_size bytes, already filled with the defaults): the first
 * min(struct_size, dst_size) bytes, then sets dst's struct_size to
 * dst_size. struct_size 0 stands for first_size. TK_ERR_ARG when it is
 * smaller than first_size; TK_ERR_UNSUPPORTED when it is larger than
 * dst_size and a byte past dst_size is not zero (a member this library
 * does not know is set: refuse rather than ignore it).
 */
TK_NODISCARD tk_result tki_struct_import(void *dst, size_t dst_size, size_t first_size, const void *src,
                                         size_t src_size);

/* ---- verdict.c ---------------------------------------------------------- */
/* Sets v->reason and a printf-formatted detail (cut with "..." if long). */
void tki_verdict_set(tk_verdict *v, tk_reason r, const char *fmt, ...) TKI_PRINTF(3, 4);
void tki_verdict_valid(tk_verdict *v);
/* Appends `src[0..n)` to buf (at *pos, cap) as printable ASCII, escaping
 * quotes, backslashes, controls and bytes >= 0x7f as \xNN; at most `max`
 * source bytes, then "...". Always NUL-terminates when cap > 0. */
void tki_append_escaped(char *buf, size_t cap, size_t *pos, const char *src, size_t n, size_t max);
/* When `doc` (after white space) starts with '<', appends at *pos "not
 * JSON: this looks like an HTML or XML page (it starts with "...")" and
 * returns 1; else 0 (what a fetched document that should be JSON is). */
int tki_say_if_markup(const char *doc, size_t len, char *buf, size_t cap, size_t *pos);
/* Appends a printf-formatted piece at *pos (bounded). */
void tki_appendf(char *buf, size_t cap, size_t *pos, const char *fmt, ...) TKI_PRINTF(4, 5);
/* Why key material was refused: writes the reason into why[0..cap) only
 * when why is non-NULL and still empty, so the deepest check that failed
 * names itself and its callers' more general words do not overwrite it. */
void tki_why(char *why, size_t cap, const char *fmt, ...) TKI_PRINTF(3, 4);

/* ---- input.c ------------------------------------------------------------ */
/* The one sentence for '=' padding in segment `seg` (0-based) at `off` in
 * the token: jws.c and the paste diagnoser say it alike. */
void tki_say_padding(tk_verdict *v, size_t seg, size_t off);

/* ---- json.c ------------------------------------------------------------- */
/* Parses `p[0..n)` as one JSON object with duplicate members rejected and
 * the depth / member limits applied. On failure returns NULL and writes a
 * message ("line 1 column 8: ...") into err. */
json_t *tki_json_parse_object(const unsigned char *p, size_t n, size_t max_depth, size_t max_members, char *err,
                              size_t err_cap);

/*
 * A claim value, whichever representation it comes from: a jansson tree
 * (any JSON) or a flat table (the simple profile below). Strings are
 * NUL-terminated with no NUL inside; INT values also fill d.
 */
enum tki_cv_type {
    TKI_CV_ABSENT = 0,
    TKI_CV_STRING,
    TKI_CV_INT,
    TKI_CV_REAL,
    TKI_CV_TRUE,
    TKI_CV_FALSE,
    TKI_CV_NULL,
    TKI_CV_ARRAY,
    TKI_CV_OBJECT
};
typedef struct tki_cv {
    enum tki_cv_type type;
    const char *s;      /* STRING */
    size_t len;         /* STRING: bytes; ARRAY: items */
    int64_t i;          /* INT */
    double d;           /* INT, REAL */
    const json_t *node; /* tree form: the node (ARRAY items come from it) */
    size_t first;       /* flat form: index of the first ARRAY item */
} tki_cv;

/*
 * The flat form: a claims object in the simple profile that almost every
 * issuer writes (see json.c): members whose values are printable-ASCII
 * strings without escapes, integers of at most 15 digits, true, false,
 * null, or arrays of such strings.
 */
struct tki_flat_member {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    tki_cv v;
};
struct tki_flat {
    struct tki_flat_member *m;
    size_t n, cap;
    tki_cv *items;
    size_t n_items, items_cap;
    char *str; /* NUL-terminated copies of string values */
    size_t str_used, str_cap;
};
/* Bytes needed for a flat table of a payload of n bytes. */
size_t tki_flat_size(size_t n);
/* Lays a flat table out in mem (tki_flat_size(n) bytes) and parses p into
 * it. Returns 1 when p is a JSON object in the profile, with no duplicate
 * names and at most max_members members; 0 otherwise, and then the caller
 * parses it with jansson, which decides (and explains) everything else. */
int tki_flat_parse(const unsigned char *p, size_t n, size_t max_members, void *mem, struct tki_flat *out);

/* Claims of a token: exactly one of the two forms is set. */
struct tki_claims {
    const json_t *tree;
    const struct tki_flat *flat;
};
/* Looks a member up: 1 and *out filled when present, else 0 (ABSENT). */
int tki_claims_get(const struct tki_claims *c, const char *name, tki_cv *out);
/* Item i of an ARRAY value (i < arr->len). */
void tki_claims_item(const struct tki_claims *c, const tki_cv *arr, size_t i, tki_cv *out);

/* ---- crypto.c ----------------------------------------------------------- */
enum tki_kty { TKI_KTY_OCT = 1, TKI_KTY_RSA, TKI_KTY_EC, TKI_KTY_OKP };

struct tk_key {
    tk_alg alg; /* TK_ALG_UNSET when unbound (RSA, oct only) */
    enum tki_kty kty;
    char *kid;
    int can_sign;
    /* oct */
    unsigned char *secret;
    size_t secret_len;
    EVP_MD_CTX *hmac_in;  /* digest state after (K0 ^ ipad), copied per call */
    EVP_MD_CTX *hmac_out; /* digest state after (K0 ^ opad) */
    /* asymmetric */
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *vfy_tmpl;  /* verify-initialised with padding/md set; dup per call */
    int curve_nid;           /* EC only */
    size_t coord_len;        /* EC: bytes of one coordinate (32, 48, 66) */
    unsigned char order[66]; /* EC: group order, big-endian, coord_len bytes */
    int rsa_bits;
    EVP_MD *md; /* prefetched digest (NULL for EdDSA) */
    /* The base64url header segments tk_sign() writes for this key, with no
     * typ, typ "JWT" and typ "at+jwt": a token whose header segment equals
     * one of them byte for byte needs no JSON parse (see jws.c). Each is one
     * flat JSON object (depth 1) of hdr_members[i] members, so that the fast
     * path can apply the caller's tk_limits exactly as the parse would. */
    char *hdr_b64[3];
    size_t hdr_b64_len[3];
    size_t hdr_members[3];
    /* Identity for the signature cache (sigcache.c): SHA-256 of the alg
     * name, a NUL and the DER SubjectPublicKeyInfo, set when an asymmetric
     * key is bound to its alg; has_vid 0 for HMAC keys (never cached). */
    unsigned char vid[32];
    int has_vid;
};

/* The header tk_sign() writes: {"alg":..,"kid":..,"typ":..}, compact, in
 * that order. Owned; free(). NULL on allocation failure. */
char *tki_header_json(tk_alg alg, const char *kid, const char *typ);
extern const char *const tki_cached_typs[3];

enum tki_sig_fail { TKI_SIG_OK = 0, TKI_SIG_MISMATCH, TKI_SIG_LENGTH, TKI_SIG_RANGE };

/* Builds a key around an EVP_PKEY (takes ownership on TK_OK only) after
 * validating it (SECURITY.md rule 23; TK_ERR_KEY, TK_ERR_KEY_EXPONENT,
 * TK_ERR_KEY_MISMATCH). An RSA private key without its factors is replaced by
 * the complete key, and the given EVP_PKEY is then freed. */
tk_result tki_key_from_pkey(EVP_PKEY *pkey, tk_alg alg, const char *kid, tk_key **out);
/* The same, saying why a key is refused (tki_why) into why[0..cap). */
tk_result tki_key_from_pkey_why(EVP_PKEY *pkey, tk_alg alg, const char *kid, tk_key **out, char *why, size_t cap);
/* tk_key_from_secret, saying why a secret is refused (tki_why) into
 * why[0..cap) (why may be NULL). */
tk_result tki_key_from_secret_why(const unsigned char *secret, size_t len, tk_alg alg, const char *kid, tk_key **out,
                                  char *why, size_t why_cap);
tk_result tki_key_verify(const tk_key *k, const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                         size_t sig_len, enum tki_sig_fail *why);
size_t tki_alg_sig_len(tk_alg alg); /* fixed length for HS/ES/EdDSA, 0 for RSA */
int tki_alg_is_hmac(tk_alg a);
int tki_alg_is_rsa(tk_alg a);
int tki_alg_is_ec(tk_alg a);
tk_result tki_key_set_kid(tk_key *k, const char *kid);

/* ---- sigcache.c --------------------------------------------------------- */
/* Is the signature of token text tok[0..n) by key k remembered at `now`?
 * 1: yes (a hit); 0: no, and h holds the entry's key for
 * tki_sigcache_insert once the signature has verified; -1: k is not cached
 * (HMAC), h untouched. Counts hits and misses. */
int tki_sigcache_lookup(tk_sigcache *c, const tk_key *k, const char *tok, size_t n, int64_t now, unsigned char h[32]);
/* Remembers entry h (from a lookup that missed, whose signature then
 * verified) until `until`. Best effort: may store nothing. */
void tki_sigcache_insert(tk_sigcache *c, const unsigned char h[32], int64_t now, int64_t until);

/* ---- b64url.c ----------------------------------------------------------- */
/* Decoded length of a canonical encoding of n chars; (size_t)-1 when n % 4 == 1. */
size_t tki_b64url_decoded_len(size_t n);

/* ---- keyset.c ----------------------------------------------------------- */
struct tk_keyset {
    tk_key *keys[TK_LIMIT_KEYSET_KEYS];
    size_t n;
    char *retired[TK_LIMIT_KEYSET_KEYS];
    size_t n_retired;
};
int tki_keyset_is_retired(const tk_keyset *ks, const char *kid, size_t kid_len);

/* ---- jws.c -------------------------------------------------------------- */
struct tk_token {
    const char *raw; /* the token text (inside this allocation) */
    size_t raw_len;
    size_t signing_input_len; /* header.payload */
    size_t header_seg_len;    /* encoded header */
    json_t *header;
    json_t *payload;       /* tree form of the claims, or NULL */
    struct tki_flat *flat; /* flat form (tk_verify only), or NULL */
    struct tki_flat flat_store;
    void *flat_mem;               /* room for the flat table, tki_flat_size() bytes, or NULL */
    unsigned char *payload_bytes; /* NULL when the segment did not decode */
    size_t payload_len;
    unsigned char *pbuf; /* where the payload decodes to, pbuf_cap bytes */
    size_t pbuf_cap;
    unsigned char *sig;
    size_t sig_len;
    int sig_decoded;
    tk_alg alg;
    const char *alg_name; /* borrowed from header */
    const char *kid;
    size_t kid_len;
    const char *typ;
    tk_verdict header_v;
    tk_verdict payload_v;
};

#endif
