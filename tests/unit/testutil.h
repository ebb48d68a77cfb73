/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testutil.h — small helpers shared by the core unit tests (header-only).
 *
 * Every helper fails the running cmocka test on an unexpected result, so the
 * tests themselves read as tables of inputs and expected verdicts. Tokens are
 * built through the public API (tk_sign_with_header, tk_b64url_encode), so a
 * test can craft any header or payload, including hostile ones.
 */
#ifndef TOKEND_TESTUTIL_H
#define TOKEND_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tokend/tokend.h"

/* A fixed 32-byte HMAC secret (HS256 minimum). */
static const unsigned char TU_SECRET32[32] = {
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
};

/* Milliseconds on the monotonic clock, for "rejected quickly" checks. */
static inline double tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* 1 when every byte of s[0..n) is printable ASCII (0x20..0x7e). */
static inline int tu_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* A verdict detail is NUL-terminated inside the array, empty when VALID,
 * otherwise non-empty. (Printable ASCII is checked separately, so that a
 * failure of that contract is reported by its own test.) */
static inline void tu_check_detail_shape(const tk_verdict *v, const char *what)
{
    size_t n = strnlen(v->detail, sizeof v->detail);
    if (n == sizeof v->detail) {
        fail_msg("%s: verdict detail is not NUL-terminated", what);
    }
    if (v->reason == TK_REASON_VALID && n != 0) {
        fail_msg("%s: VALID verdict with a detail: %s", what, v->detail);
    }
    if (v->reason != TK_REASON_VALID && n == 0) {
        fail_msg("%s: %s verdict with an empty detail", what, tk_reason_code(v->reason));
    }
}

/* Fails with a readable message when the reason is not the wanted one. */
static inline void tu_expect_reason(const tk_verdict *v, tk_reason want, const char *what)
{
    if (v->reason != want) {
        fail_msg("%s: got %s (\"%s\"), want %s", what, tk_reason_code(v->reason), v->detail, tk_reason_code(want));
    }
    tu_check_detail_shape(v, what);
}

/* Fails unless the verdict detail contains `needle`. */
static inline void tu_expect_detail_has(const tk_verdict *v, const char *needle, const char *what)
{
    if (strstr(v->detail, needle) == NULL) {
        fail_msg("%s: detail \"%s\" does not contain \"%s\"", what, v->detail, needle);
    }
}

/* Fails unless the verdict detail is printable ASCII (tokend.h contract). */
static inline void tu_expect_detail_printable(const tk_verdict *v, const char *what)
{
    size_t n = strnlen(v->detail, sizeof v->detail);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v->detail[i];
        if (c < 0x20 || c > 0x7e) {
            fail_msg("%s: %s detail has byte 0x%02x at %zu (not printable ASCII): %s", what, tk_reason_code(v->reason),
                     c, i, v->detail);
        }
    }
}

/* base64url of p[0..n) as an owned C string. */
static inline char *tu_b64(const void *p, size_t n)
{
    size_t cap = tk_b64url_encoded_len(n) + 1;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t w = 0;
    assert_int_equal(tk_b64url_encode((const unsigned char *)p, n, s, cap, &w), TK_OK);
    assert_int_equal(w, cap - 1);
    return s;
}

/* Decodes a base64url string (asserted canonical) into an owned buffer. */
static inline unsigned char *tu_unb64(const char *s, size_t n, size_t *out_len)
{
    size_t cap = n / 4 * 3 + 3;
    unsigned char *b = malloc(cap);
    size_t bad = 0;
    assert_non_null(b);
    assert_int_equal(tk_b64url_decode(s, n, b, cap, out_len, &bad), TK_OK);
    return b;
}

/* "b64(h).b64(p).sig" with explicit lengths; `sig` is taken verbatim. */
static inline char *tu_join(const char *h, size_t hl, const char *p, size_t pl, const char *sig)
{
    char *hb = tu_b64(h, hl);
    char *pb = tu_b64(p, pl);
    size_t n = strlen(hb) + strlen(pb) + strlen(sig) + 3;
    char *t = malloc(n);
    assert_non_null(t);
    snprintf(t, n, "%s.%s.%s", hb, pb, sig);
    free(hb);
    free(pb);
    return t;
}

/* Signs payload p[0..pl) under the verbatim header h (C string) with k. */
/* Not inlined: inlined at -O2, GCC 12 takes the token for a pointer to the
 * local `out` and warns of a dangling pointer where the caller writes to
 * it (-Wdangling-pointer, a false positive that -Werror made fatal in the
 * release build). */
__attribute__((noinline)) static char *tu_sign_n(const tk_key *k, const char *h, const char *p, size_t pl)
{
    char *out = NULL;
    size_t len = 0;
    tk_result rc = tk_sign_with_header(k, h, strlen(h), (const unsigned char *)p, pl, &out, &len);
    if (rc != TK_OK) {
        fail_msg("tk_sign_with_header(%s): %s", h, tk_result_str(rc));
    }
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

static inline char *tu_sign(const tk_key *k, const char *h, const char *p)
{
    return tu_sign_n(k, h, p, strlen(p));
}

/* An HS256 key on TU_SECRET32 (or a variant of it when `variant` != 0). */
static inline tk_key *tu_hs256(const char *kid, unsigned char variant)
{
    unsigned char s[32];
    memcpy(s, TU_SECRET32, sizeof s);
    s[0] ^= variant;
    tk_key *k = NULL;
    assert_int_equal(tk_key_from_secret(s, sizeof s, TK_ALG_HS256, kid, &k), TK_OK);
    assert_non_null(k);
    return k;
}

/* A key set holding the given keys (NULL-terminated list; takes them). */
static inline tk_keyset *tu_keyset(tk_key *first, ...)
{
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    va_list ap;
    va_start(ap, first);
    for (tk_key *k = first; k != NULL; k = va_arg(ap, tk_key *)) {
        assert_int_equal(tk_keyset_add(ks, k), TK_OK);
    }
    va_end(ap);
    return ks;
}

/* A public-only copy of k (through its public JWK); for oct keys a copy. */
static inline tk_key *tu_public_copy(const tk_key *k)
{
    char *jwk = NULL;
    tk_key *pub = NULL;
    int is_oct = strcmp(tk_key_kty(k), "oct") == 0;
    assert_int_equal(tk_key_to_jwk(k, is_oct, &jwk), TK_OK);
    assert_int_equal(tk_key_from_jwk(jwk, strlen(jwk), TK_ALG_UNSET, &pub), TK_OK);
    tk_free(jwk);
    assert_non_null(pub);
    assert_int_equal(tk_key_alg(pub), tk_key_alg(k));
    return pub;
}

/* tk_verify with a policy at `now` and default limits. */
static inline tk_verdict tu_verify_at(const char *tok, size_t len, const tk_keyset *ks, int64_t now)
{
    tk_policy pol;
    tk_verdict v;
    tk_policy_init(&pol, now);
    assert_int_equal(tk_verify(tok, len, ks, &pol, NULL, &v, NULL), TK_OK);
    return v;
}

#endif
