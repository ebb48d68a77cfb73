/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_form.c — the form and Basic-credential parsers of the HTTP layer
 * (src/http/form.c): srv_form_parse, srv_form_parse_all, srv_form_decode,
 * srv_base64_decode, on request bodies and queries as they arrive.
 *
 * The input is the body. Invariants:
 *  - the parsers write only inside buf[0..len] (the one byte past the body
 *    that the contract makes writable; ASan: a block of exactly len + 1);
 *  - every returned name and value lies inside that buffer, is NUL-
 *    terminated at its length and holds no NUL before it; the result is one
 *    of the enum's values; no more than SRV_FORM_MAX_PARAMS parameters;
 *  - differential: a plain reading (split at '&', skip empty pairs, split at
 *    the first '=', srv_form_decode each side, first duplicate wins) finds
 *    the same parameters and the same outcome, in the same order;
 *  - srv_form_get finds each parameter (NULL for an empty value);
 *  - srv_form_decode needs cap n + 1 and writes at most that; with cap n it
 *    refuses without writing; the result is at most n bytes;
 *  - srv_base64_decode writes at most n / 4 * 3 + 1 bytes, and what it
 *    accepts is canonical: OpenSSL's encoding of the result is the input.
 */
#include <openssl/evp.h>

#include "fuzz.h"

#include "http/internal.h"

/* The reference: the outcome and parameters of a plain reading. */
struct ref_param {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
};

static enum srv_form_result reference(const char *in, size_t len, int keep_going, struct ref_param *out, size_t *n,
                                      int *bad_dup)
{
    *n = 0;
    *bad_dup = -1;
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(in + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - in) : len;
        if (end == i) {
            i = end + 1;
            continue;
        }
        if (*n == SRV_FORM_MAX_PARAMS) {
            return SRV_FORM_TOO_MANY;
        }
        const char *eq = memchr(in + i, '=', end - i);
        size_t ne = eq ? (size_t)(eq - in) : end;
        struct ref_param *p = &out[*n];
        p->name = malloc(ne - i + 1);
        p->value = malloc(eq ? end - ne : 1);
        FUZZ_CHECK(p->name && p->value, "out of memory");
        p->name_len = srv_form_decode(in + i, ne - i, p->name, ne - i + 1);
        p->value_len = 0;
        p->value[0] = '\0';
        if (eq) {
            p->value_len = srv_form_decode(eq + 1, end - ne - 1, p->value, end - ne);
        }
        if (p->name_len == (size_t)-1 || p->value_len == (size_t)-1) {
            free(p->name);
            free(p->value);
            return SRV_FORM_BAD_ENCODING; /* or SRV_FORM_NUL: the same to srv_form_decode */
        }
        int dup = 0;
        for (size_t k = 0; k < *n; k++) {
            if (out[k].name_len == p->name_len && memcmp(out[k].name, p->name, p->name_len) == 0) {
                if (*bad_dup < 0) {
                    *bad_dup = (int)k;
                }
                dup = 1;
                break;
            }
        }
        if (dup) {
            free(p->name);
            free(p->value);
            if (!keep_going) {
                return SRV_FORM_DUPLICATE;
            }
        } else {
            (*n)++;
        }
        i = end + 1;
    }
    return *bad_dup >= 0 ? SRV_FORM_DUPLICATE : SRV_FORM_OK;
}

static void inside(const char *what, const char *buf, size_t len, const char *s, size_t n)
{
    FUZZ_CHECK(s >= buf && n <= len && (size_t)(s - buf) <= len - n, "%s (%zu bytes at %td) outside the buffer", what,
               n, s - buf);
    FUZZ_CHECK(s[n] == '\0', "%s not NUL-terminated at its length", what);
    FUZZ_CHECK(memchr(s, '\0', n) == NULL, "%s holds a NUL", what);
}

static void check_parse(const uint8_t *data, size_t size, int keep_going)
{
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    if (size) {
        memcpy(buf, data, size);
    }
    buf[size] = 'X'; /* writable, but not a NUL the parser could rely on */
    srv_form f;
    const char *bad = NULL;
    enum srv_form_result r = keep_going ? srv_form_parse_all(buf, size, &f, &bad) : srv_form_parse(buf, size, &f, &bad);
    FUZZ_CHECK(r >= SRV_FORM_OK && r <= SRV_FORM_TOO_MANY, "result %d", (int)r);
    FUZZ_CHECK(f.n <= SRV_FORM_MAX_PARAMS, "%zu parameters", f.n);
    /* *bad names a repeated parameter on DUPLICATE; srv_form_parse sets it
     * for nothing else (srv_form_parse_all may have, before a later error). */
    FUZZ_CHECK(r != SRV_FORM_DUPLICATE || bad != NULL, "DUPLICATE without bad");
    FUZZ_CHECK(keep_going || r == SRV_FORM_DUPLICATE || bad == NULL, "result %d with bad set", (int)r);

    struct ref_param ref[SRV_FORM_MAX_PARAMS];
    size_t rn = 0;
    int rdup = -1;
    enum srv_form_result rr = reference((const char *)data, size, keep_going, ref, &rn, &rdup);
    if (rr == SRV_FORM_BAD_ENCODING) {
        FUZZ_CHECK(r == SRV_FORM_BAD_ENCODING || r == SRV_FORM_NUL, "reference: bad encoding; parser: %d", (int)r);
    } else {
        FUZZ_CHECK(r == rr, "parser %d, reference %d", (int)r, (int)rr);
    }
    if (r == SRV_FORM_OK || (r == SRV_FORM_DUPLICATE && keep_going)) {
        FUZZ_CHECK(f.n == rn, "%zu parameters, reference %zu", f.n, rn);
        for (size_t i = 0; i < f.n; i++) {
            const srv_param *p = &f.p[i];
            inside("name", buf, size, p->name, p->name_len);
            inside("value", buf, size, p->value, p->value_len);
            FUZZ_CHECK(p->name_len == ref[i].name_len && memcmp(p->name, ref[i].name, p->name_len) == 0,
                       "parameter %zu name differs from the reference", i);
            FUZZ_CHECK(p->value_len == ref[i].value_len && memcmp(p->value, ref[i].value, p->value_len) == 0,
                       "parameter %zu value differs from the reference", i);
            size_t gl = 99;
            const char *g = srv_form_get(&f, p->name, &gl);
            if (p->value_len == 0) {
                FUZZ_CHECK(g == NULL && gl == 0, "srv_form_get of an empty parameter");
            } else {
                FUZZ_CHECK(g == p->value && gl == p->value_len, "srv_form_get found another value");
            }
        }
    }
    if (r == SRV_FORM_DUPLICATE) {
        FUZZ_CHECK(rdup >= 0 && (size_t)rdup < f.n && bad == f.p[rdup].name, "bad does not name parameter %d", rdup);
    }
    for (size_t i = 0; i < rn; i++) {
        free(ref[i].name);
        free(ref[i].value);
    }
    free(buf);
}

static void check_decode(const char *in, size_t n)
{
    char *out = malloc(n + 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t r = srv_form_decode(in, n, out, n + 1);
    if (r != (size_t)-1) {
        FUZZ_CHECK(r <= n && out[r] == '\0' && memchr(out, '\0', r) == NULL, "decoded %zu of %zu bytes", r, n);
    }
    free(out);
    char *small = malloc(n ? n : 1);
    FUZZ_CHECK(small != NULL, "out of memory");
    FUZZ_CHECK(srv_form_decode(in, n, small, n) == (size_t)-1, "decode with cap n accepted");
    free(small);
}

static void check_base64(const char *in, size_t n)
{
    size_t cap = n / 4 * 3 + 1;
    unsigned char *out = malloc(cap);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t r = srv_base64_decode(in, n, out, cap);
    if (r != (size_t)-1) {
        FUZZ_CHECK(r < cap && out[r] == '\0', "base64 decoded %zu bytes into %zu", r, cap);
        /* Canonical: the standard encoding of the result is the input. */
        unsigned char *enc = malloc(n + 1);
        FUZZ_CHECK(enc != NULL, "out of memory");
        int el = EVP_EncodeBlock(enc, out, (int)r);
        FUZZ_CHECK(el >= 0 && (size_t)el == n && memcmp(enc, in, n) == 0,
                   "accepted base64 that is not the canonical encoding of its %zu bytes", r);
        free(enc);
    }
    free(out);
    if (cap > 1) {
        unsigned char *small = malloc(cap - 1);
        FUZZ_CHECK(small != NULL, "out of memory");
        FUZZ_CHECK(srv_base64_decode(in, n, small, cap - 1) == (size_t)-1, "base64 with cap %zu accepted", cap - 1);
        free(small);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size, 0);
    check_parse(data, size, 1);
    char *in = fuzz_dup(data, size);
    check_decode(in, size);
    check_base64(in, size);
    free(in);
    return 0;
}
