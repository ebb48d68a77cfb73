/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_authz.c — tk_authz_parse (src/core/authz.c), the Authorization
 * request header of every /auth request (RFC 6750 section 2.1).
 *
 * The input is the field value, in a heap block of exactly its length.
 * Invariants:
 *  - the result is TK_OK and the verdict is VALID, MALFORMED_HEADER or
 *    WRONG_SCHEME, or MALFORMED_TOKEN for '=' padding inside the token (the
 *    paste diagnoser's word: fuzz_input), (MISSING_TOKEN only for a NULL
 *    value), with a detail of
 *    printable ASCII, empty exactly when VALID;
 *  - on VALID the token slice lies inside the input, is not empty, and is a
 *    b64token (RFC 6750: 1*b64token-char *"=");
 *  - WRONG_SCHEME only for another well-formed scheme: an RFC 9110 token
 *    that is not "Bearer" (anything else is MALFORMED_HEADER);
 *  - differential: an independent reading of the grammar (OWS, "Bearer" in
 *    any case, exactly one SP, the b64token, OWS, within the length limit)
 *    accepts exactly the same values and finds the same slice.
 */
#include <strings.h>

#include "fuzz.h"

static int is_b64token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/';
}

/* RFC 9110 section 5.6.2. */
static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The reference reading: 1 and the slice when `v` is acceptable. */
static int reference(const char *v, size_t n, size_t *off, size_t *len)
{
    if (n > TK_LIMIT_AUTHZ_LEN) {
        return 0;
    }
    size_t b = 0;
    size_t e = n;
    while (b < e && (v[b] == ' ' || v[b] == '\t')) {
        b++;
    }
    while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
        e--;
    }
    if (e - b < 8 || strncasecmp(v + b, "bearer", 6) != 0 || v[b + 6] != ' ') {
        return 0;
    }
    size_t t = b + 7;
    size_t i = t;
    while (i < e && is_b64token_char((unsigned char)v[i])) {
        i++;
    }
    if (i == t) {
        return 0;
    }
    while (i < e && v[i] == '=') {
        i++;
    }
    if (i != e) {
        return 0;
    }
    *off = t;
    *len = e - t;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = fuzz_dup(data, size);
    const char *tok = (const char *)1;
    size_t tl = 99;
    tk_verdict vd;
    memset(&vd, 0x41, sizeof vd);
    tk_result rc = tk_authz_parse(v, size, &tok, &tl, &vd);
    FUZZ_CHECK(rc == TK_OK, "tk_authz_parse returned %s", tk_result_str(rc));
    fuzz_check_verdict(&vd, "authz");
    FUZZ_CHECK(vd.reason == TK_REASON_VALID || vd.reason == TK_REASON_MALFORMED_HEADER ||
                   vd.reason == TK_REASON_WRONG_SCHEME ||
                   (vd.reason == TK_REASON_MALFORMED_TOKEN && strstr(vd.detail, "padding '='") != NULL),
               "verdict %s is not one tk_authz_parse may give for a present header", tk_reason_code(vd.reason));
    size_t ro = 0;
    size_t rl = 0;
    int ref = reference(v, size, &ro, &rl);
    if (vd.reason == TK_REASON_VALID) {
        FUZZ_CHECK(tok != NULL && tok >= v && tl > 0 && tl <= size && (size_t)(tok - v) <= size - tl,
                   "token slice (offset %td, %zu bytes) is not inside the %zu-byte value", tok ? tok - v : -1, tl,
                   size);
        for (size_t i = 0; i < tl; i++) {
            unsigned char c = (unsigned char)tok[i];
            FUZZ_CHECK(is_b64token_char(c) || (c == '=' && i > 0), "token byte 0x%02x at %zu", c, i);
        }
        FUZZ_CHECK(ref, "accepted a value the reference refuses");
        FUZZ_CHECK((size_t)(tok - v) == ro && tl == rl, "slice %td+%zu, reference %zu+%zu", tok - v, tl, ro, rl);
    } else {
        FUZZ_CHECK(tok == NULL && tl == 0, "a refusal left a token slice");
        FUZZ_CHECK(!ref, "refused (%s: %s) a value the reference accepts", tk_reason_code(vd.reason), vd.detail);
        /* WRONG_SCHEME is only for another well-formed scheme: a token
         * (RFC 9110 section 11.1) that is not "Bearer". */
        if (vd.reason == TK_REASON_WRONG_SCHEME) {
            size_t b = 0;
            while (b < size && (v[b] == ' ' || v[b] == '\t')) {
                b++;
            }
            size_t s = b;
            while (s < size && v[s] != ' ' && v[s] != '\t') {
                s++;
            }
            FUZZ_CHECK(s > b && !(s - b == 6 && strncasecmp(v + b, "bearer", 6) == 0), "wrong_scheme for Bearer");
            for (size_t i = b; i < s; i++) {
                FUZZ_CHECK(is_tchar((unsigned char)v[i]), "wrong_scheme, but byte 0x%02x at %zu is not a tchar: %s",
                           (unsigned char)v[i], i, vd.detail);
            }
        }
    }
    free(v);
    /* No header at all. */
    rc = tk_authz_parse(NULL, 0, &tok, &tl, &vd);
    FUZZ_CHECK(rc == TK_OK && vd.reason == TK_REASON_MISSING_TOKEN && tok == NULL, "NULL value: %s",
               tk_reason_code(vd.reason));
    return 0;
}
