/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cookie.c — srv_cookie_find (src/http/cookie.c), the Cookie header
 * parser that decides which session and CSRF cookie a request carries.
 *
 * Input: byte 0 = length L of a name (L % 32), the next L bytes the name,
 * the rest the header value (in a block of exactly its length). The header
 * is searched for that name and for the names tokend uses. Invariants:
 *  - NULL comes with *value_len 0; a value lies inside the header and is
 *    cookie-octets only (RFC 6265 section 4.2.1);
 *  - differential, for names that are RFC 9110 tokens: a reference that
 *    finds occurrences by position instead of by splitting (the name with
 *    only whitespace between it and the previous ';' or the start, and only
 *    whitespace between it and a '=') agrees on found / not found, and on
 *    the exact slice: more than one occurrence is never found (fail closed).
 */
#include "fuzz.h"

#include "http/internal.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e);
}

static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The reference, by position. Returns the value or NULL. */
static const char *reference(const char *h, size_t len, const char *name, size_t nl, size_t *vl)
{
    *vl = 0;
    const char *found = NULL;
    int seen = 0;
    for (size_t p = 0; p + nl <= len; p++) {
        if (memcmp(h + p, name, nl) != 0) {
            continue;
        }
        size_t b = p;
        while (b > 0 && is_ows(h[b - 1])) {
            b--;
        }
        if (b > 0 && h[b - 1] != ';') {
            continue; /* inside another pair */
        }
        size_t q = p + nl;
        while (q < len && is_ows(h[q])) {
            q++;
        }
        if (q >= len || h[q] != '=') {
            continue; /* a longer name, or no '=' */
        }
        seen++;
        if (seen > 1) {
            *vl = 0;
            return NULL;
        }
        size_t vb = q + 1;
        const char *semi = memchr(h + vb, ';', len - vb);
        size_t ve = semi ? (size_t)(semi - h) : len;
        while (ve > vb && is_ows(h[ve - 1])) {
            ve--;
        }
        while (vb < ve && is_ows(h[vb])) {
            vb++;
        }
        if (ve - vb >= 2 && h[vb] == '"' && h[ve - 1] == '"') {
            vb++;
            ve--;
        }
        int ok = 1;
        for (size_t k = vb; k < ve; k++) {
            ok = ok && is_cookie_octet((unsigned char)h[k]);
        }
        if (ok) {
            found = h + vb;
            *vl = ve - vb;
        }
    }
    if (found == NULL) {
        *vl = 0;
    }
    return found;
}

static void check(const char *h, size_t len, const char *name, size_t nl)
{
    size_t vl = 99;
    const char *v = srv_cookie_find(h, len, name, nl, &vl);
    if (v == NULL) {
        FUZZ_CHECK(vl == 0, "NULL with value_len %zu", vl);
    } else {
        FUZZ_CHECK(nl > 0, "found a cookie with an empty name");
        FUZZ_CHECK(v >= h && vl <= len && (size_t)(v - h) <= len - vl, "value (%zu bytes at %td) outside the header",
                   vl, v - h);
        for (size_t i = 0; i < vl; i++) {
            FUZZ_CHECK(is_cookie_octet((unsigned char)v[i]), "value byte 0x%02x at %zu", (unsigned char)v[i], i);
        }
    }
    int token = nl > 0;
    for (size_t i = 0; i < nl; i++) {
        token = token && is_tchar((unsigned char)name[i]);
    }
    if (!token) {
        return;
    }
    size_t rl = 0;
    const char *r = reference(h, len, name, nl, &rl);
    FUZZ_CHECK(r == v && rl == vl, "cookie \"%.*s\": parser %s (at %td, %zu bytes), reference %s (at %td, %zu bytes)",
               (int)nl, name, v ? "found" : "none", v ? v - h : -1, vl, r ? "found" : "none", r ? r - h : -1, rl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"tokend_session", "tokend_csrf", "__Host-tokend_session", "__Host-tokend_csrf",
                                        "a"};
    if (size == 0) {
        return 0;
    }
    size_t nl = data[0] % 32u;
    if (nl > size - 1) {
        nl = size - 1;
    }
    char *name = fuzz_dup(data + 1, nl);
    char *h = fuzz_dup(data + 1 + nl, size - 1 - nl);
    size_t hl = size - 1 - nl;
    check(h, hl, name, nl);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        check(h, hl, names[i], strlen(names[i]));
    }
    free(h);
    free(name);
    return 0;
}
