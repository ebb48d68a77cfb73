/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_metadata.c — tk_metadata_parse (OpenID Connect Discovery 1.0 §4,
 * RFC 8414 §3) and tk_cache_control_max_age (RFC 9111 §5.2) on the same
 * bytes: the documents and header values a trusted issuer's server sends.
 *
 * Invariants:
 *  - tk_metadata_parse is TK_OK or TK_ERR_JSON; `why` is printable ASCII,
 *    NUL-terminated inside its buffer (checked with small buffers and a
 *    guard behind them), empty exactly on TK_OK; on TK_ERR_JSON jwks_uri is
 *    "", on TK_OK it is an https URL of printable ASCII without spaces that
 *    fits TK_LIMIT_URL_LEN;
 *  - the issuer check is exact equality: when the document parses without
 *    an expected issuer, it parses with its own "issuer" (read here with
 *    jansson) to the same jwks_uri, and is refused, naming the issuer, with
 *    that issuer plus "/" and with the fixed issuer when they differ;
 *  - a jwks_uri buffer one byte too small refuses the document (never a
 *    cut URL); exactly large enough accepts it;
 *  - tk_cache_control_max_age is -1, 0, or a positive count of seconds
 *    below 10^13; a positive one comes from a "max-age" directive; it reads
 *    only `len` bytes (the input is an exact-size heap copy).
 */
#include <strings.h>

#include <jansson.h>

#include "fuzz.h"

#include "tokend/keycache.h"

#define FIXED_ISSUER "https://idp.test/tenant1"

static void check_why(const char *why, size_t cap, const char *what)
{
    size_t n = strnlen(why, cap);
    FUZZ_CHECK(n < cap, "%s: why not NUL-terminated in %zu bytes", what, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)why[i];
        FUZZ_CHECK(c >= 0x20 && c <= 0x7e, "%s: why byte 0x%02x at %zu: %s", what, c, i, why);
    }
}

static void check_uri(const char *uri, size_t cap)
{
    size_t n = strnlen(uri, cap);
    FUZZ_CHECK(n < cap && n <= TK_LIMIT_URL_LEN, "jwks_uri of %zu bytes", n);
    FUZZ_CHECK(n > 8 && strncmp(uri, "https://", 8) == 0 && uri[8] != '/', "jwks_uri \"%s\" is not https", uri);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)uri[i];
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "jwks_uri byte 0x%02x at %zu", c, i);
    }
}

/* tk_metadata_parse with `issuer`; checks the contract and returns the result. */
static tk_result parse(const char *doc, size_t len, const char *issuer, char *uri, size_t uri_cap)
{
    char why[256];
    tk_result rc = tk_metadata_parse(doc, len, issuer, uri, uri_cap, why, sizeof why);
    FUZZ_CHECK(rc == TK_OK || rc == TK_ERR_JSON, "tk_metadata_parse: %s", tk_result_str(rc));
    check_why(why, sizeof why, "metadata");
    if (rc == TK_OK) {
        FUZZ_CHECK(why[0] == '\0', "TK_OK with why \"%s\"", why);
        check_uri(uri, uri_cap);
    } else {
        FUZZ_CHECK(why[0] != '\0', "TK_ERR_JSON without why");
        FUZZ_CHECK(uri[0] == '\0', "refused, but jwks_uri \"%s\" was written", uri);
    }
    return rc;
}

static void check_metadata(const char *doc, size_t len)
{
    char uri[TK_LIMIT_URL_LEN + 1];
    tk_result any = parse(doc, len, NULL, uri, sizeof uri);
    char fixed_uri[TK_LIMIT_URL_LEN + 1];
    tk_result fixed = parse(doc, len, FIXED_ISSUER, fixed_uri, sizeof fixed_uri);
    FUZZ_CHECK(fixed != TK_OK || any == TK_OK, "accepted with an issuer, refused without one");

    /* A small why buffer is respected, and cut, not overrun. */
    char small[16 + 8];
    memset(small, 0x5a, sizeof small);
    char u2[TK_LIMIT_URL_LEN + 1];
    size_t why_cap = 1 + len % 16;
    tk_result rc = tk_metadata_parse(doc, len, FIXED_ISSUER, u2, sizeof u2, small, why_cap);
    FUZZ_CHECK(rc == fixed, "the result depends on the size of why: %s, %s", tk_result_str(rc), tk_result_str(fixed));
    check_why(small, why_cap, "small why");
    for (size_t i = why_cap; i < sizeof small; i++) {
        FUZZ_CHECK((unsigned char)small[i] == 0x5a, "why written past its %zu bytes", why_cap);
    }

    if (any != TK_OK) {
        return;
    }
    if (fixed == TK_OK) {
        FUZZ_CHECK(strcmp(uri, fixed_uri) == 0, "jwks_uri %s with the issuer, %s without", fixed_uri, uri);
    }
    /* The jwks_uri is never cut to fit. */
    size_t ul = strlen(uri);
    char *exact = fuzz_dup(uri, ul + 1);
    rc = tk_metadata_parse(doc, len, NULL, exact, ul + 1, NULL, 0);
    FUZZ_CHECK(rc == TK_OK && strcmp(exact, uri) == 0, "jwks_uri refused in a buffer of exactly its size");
    rc = tk_metadata_parse(doc, len, NULL, exact, ul, NULL, 0);
    FUZZ_CHECK(rc == TK_ERR_JSON, "jwks_uri of %zu bytes accepted in a buffer of %zu", ul, ul);
    free(exact);

    /* The document's own issuer, read independently. */
    json_error_t je;
    json_t *o = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
    FUZZ_CHECK(json_is_object(o), "tk_metadata_parse accepted what jansson does not read as an object");
    json_t *iv = json_object_get(o, "issuer");
    FUZZ_CHECK(json_is_string(iv), "accepted without a string issuer");
    const char *own = json_string_value(iv);
    size_t own_len = json_string_length(iv);
    FUZZ_CHECK(strlen(own) == own_len, "an issuer with a NUL byte was accepted");
    rc = parse(doc, len, own, u2, sizeof u2);
    FUZZ_CHECK(rc == TK_OK && strcmp(u2, uri) == 0, "refused with its own issuer");
    FUZZ_CHECK((fixed == TK_OK) == (strcmp(own, FIXED_ISSUER) == 0), "issuer \"%s\": %s with " FIXED_ISSUER, own,
               tk_result_str(fixed));
    char *longer = malloc(own_len + 2);
    FUZZ_CHECK(longer != NULL, "malloc");
    memcpy(longer, own, own_len);
    longer[own_len] = '/';
    longer[own_len + 1] = '\0';
    char why[256];
    rc = tk_metadata_parse(doc, len, longer, u2, sizeof u2, why, sizeof why);
    FUZZ_CHECK(rc == TK_ERR_JSON && strstr(why, "its issuer is") != NULL,
               "accepted for the issuer with a slash more (%s): %s", tk_result_str(rc), why);
    free(longer);
    json_decref(o);
}

static int has_max_age(const char *p, size_t n)
{
    for (size_t i = 0; i + 7 <= n; i++) {
        if (strncasecmp(p + i, "max-age", 7) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_cache_control(const char *p, size_t n)
{
    int64_t a = tk_cache_control_max_age(p, n);
    FUZZ_CHECK(a >= -1 && a < 10000000000000LL, "max-age %lld", (long long)a);
    FUZZ_CHECK(a <= 0 || has_max_age(p, n), "max-age %lld from a value without max-age", (long long)a);
    FUZZ_CHECK(tk_cache_control_max_age(p, n) == a, "not deterministic");
    /* A prefix is read as its own value, within its own bounds. */
    if (n > 0) {
        int64_t b = tk_cache_control_max_age(p, n - 1);
        FUZZ_CHECK(b >= -1, "max-age %lld of a prefix", (long long)b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = fuzz_dup(data, size);
    check_metadata(p, size);
    check_cache_control(p, size);
    free(p);
    return 0;
}
