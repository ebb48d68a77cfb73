/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authz.c — the Authorization request header for bearer tokens
 * (RFC 6750 section 2.1, RFC 7235 section 2.1, RFC 9110 section 11.6.2).
 *
 *   credentials = "Bearer" 1*SP b64token      ; we take exactly one SP
 *   b64token    = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
 *
 * The scheme compares case-insensitively. Optional whitespace around the
 * whole field value is part of HTTP framing and is allowed; anything else
 * that deviates is malformed_header, with the place named; what the paste
 * diagnoser (input.c) recognises is named in its words ('=' padding as
 * malformed_token: a base64url problem, not a header one).
 */
#include <string.h>
#include <strings.h>

#include "core/internal.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* b64token characters (RFC 6750 section 2.1), one lookup per byte: the
 * token is scanned on every request the proxy endpoint answers. */
/* clang-format off */
static const unsigned char B64TOKEN[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
/* clang-format on */

static int is_b64token_char(unsigned char c)
{
    return B64TOKEN[c];
}

/* RFC 9110 token characters, for the scheme: the b64token characters but
 * '/', and "!#$%&'*^`|". ('/' slipped through here until fuzz_authz found
 * "Ba/sic x" answered as wrong_scheme: see test_authz.c.) */
static int is_tchar(unsigned char c)
{
    return (is_b64token_char(c) && c != '/') || (c != '\0' && strchr("!#$%&'*^`|", c) != NULL);
}

static tk_result strict_parse(const char *value, size_t len, const char **tok, size_t *tok_len, tk_verdict *v)
{
    if (tok) {
        *tok = NULL;
    }
    if (tok_len) {
        *tok_len = 0;
    }
    if (!v) {
        return TK_ERR_ARG;
    }
    if (!tok || !tok_len) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "no decision: invalid arguments");
        return TK_ERR_ARG;
    }
    if (!value) {
        tki_verdict_set(v, TK_REASON_MISSING_TOKEN, "the request has no Authorization header");
        return TK_OK;
    }
    if (len > TK_LIMIT_AUTHZ_LEN) {
        tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "the Authorization header is %zu bytes; the limit is %u", len,
                        TK_LIMIT_AUTHZ_LEN);
        return TK_OK;
    }
    size_t b = 0;
    size_t e = len;
    while (b < e && is_ows(value[b])) {
        b++;
    }
    while (e > b && is_ows(value[e - 1])) {
        e--;
    }
    if (b == e) {
        tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                        "the Authorization header is empty; send 'Authorization: Bearer <token>'");
        return TK_OK;
    }
    /* The scheme: token characters up to the first space. */
    size_t s = b;
    while (s < e && value[s] != ' ' && value[s] != '\t') {
        s++;
    }
    size_t scheme_len = s - b;
    int is_bearer = scheme_len == 6 && strncasecmp(value + b, "Bearer", 6) == 0;
    if (s == e) {
        if (is_bearer) {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "'Bearer' is not followed by a token");
        } else if (memchr(value + b, '.', e - b)) {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                            "the header holds a bare token; put the scheme first: 'Bearer <token>'");
        } else {
            char shown[64];
            size_t pos = 0;
            tki_append_escaped(shown, sizeof shown, &pos, value + b, scheme_len, 24);
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                            "the header \"%s\" has no scheme and token; send 'Bearer <token>'", shown);
        }
        return TK_OK;
    }
    if (!is_bearer) {
        char shown[64];
        size_t pos = 0;
        int all_tchar = 1;
        for (size_t i = b; i < s; i++) {
            all_tchar = all_tchar && is_tchar((unsigned char)value[i]);
        }
        tki_append_escaped(shown, sizeof shown, &pos, value + b, scheme_len, 24);
        if (!all_tchar) {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "the scheme \"%s\" is not a valid auth-scheme name", shown);
        } else {
            tki_verdict_set(v, TK_REASON_WRONG_SCHEME, "the scheme is \"%s\"; this resource takes 'Bearer'", shown);
        }
        return TK_OK;
    }
    if (value[s] == '\t') {
        tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "a tab follows 'Bearer'; use exactly one space");
        return TK_OK;
    }
    size_t t0 = s + 1;
    if (t0 < e && is_ows(value[t0])) {
        tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                        "more than one space after 'Bearer' (offset %zu); use exactly one", t0);
        return TK_OK;
    }
    /* The b64token. */
    size_t i = t0;
    while (i < e && is_b64token_char((unsigned char)value[i])) {
        i++;
    }
    if (i == t0) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"') {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "the token is in quotes; send it bare");
        } else {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "byte 0x%02x at offset %zu cannot start a bearer token", c,
                            i);
        }
        return TK_OK;
    }
    while (i < e && value[i] == '=') {
        i++;
    }
    if (i != e) {
        unsigned char c = (unsigned char)value[i];
        if (c == ' ' || c == '\t') {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                            "whitespace at offset %zu inside the credentials: one header carries one token", i);
        } else if (c == ',') {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                            "',' at offset %zu: one Authorization header carries one bearer token", i);
        } else if (c == '"') {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "'\"' at offset %zu: the token is quoted; send it bare", i);
        } else if (c == '=') {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "'=' at offset %zu may only end a bearer token", i);
        } else if (value[i - 1] == '=') {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER, "'=' before offset %zu may only end a bearer token", i);
        } else {
            tki_verdict_set(v, TK_REASON_MALFORMED_HEADER,
                            "byte 0x%02x at offset %zu is not allowed in a bearer token (RFC 6750 section 2.1)", c, i);
        }
        return TK_OK;
    }
    *tok = value + t0;
    *tok_len = e - t0;
    tki_verdict_valid(v);
    return TK_OK;
}

/* A refused value is also shown to the paste diagnoser (input.c): when it
 * recognises what was pasted (quotes, a BOM, a Cookie line, 'Bearer:',
 * '=' padding...), its sentence replaces the grammar's, so that /auth and
 * `tokend inspect` say the same. It never turns a refusal into an
 * acceptance: the repaired token it can build is not even asked for. */
tk_result tk_authz_parse(const char *value, size_t len, const char **tok, size_t *tok_len, tk_verdict *v)
{
    tk_result rc = strict_parse(value, len, tok, tok_len, v);
    if (rc != TK_OK || !value || len > TK_LIMIT_AUTHZ_LEN ||
        (v->reason != TK_REASON_MALFORMED_HEADER && v->reason != TK_REASON_WRONG_SCHEME)) {
        return rc;
    }
    tk_input_diag d;
    if (tk_input_diagnose(value, len, &d, NULL, 0) == TK_OK && d.kind != TK_INPUT_TOKEN) {
        *v = d.verdict;
    }
    return rc;
}
