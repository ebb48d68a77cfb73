/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verdict.c — the table of reason codes: code, RFC 6750 error, HTTP status
 * and a hint, named once here (DESIGN.md "Verdicts"), plus the bounded
 * formatting of verdict details. docs/errors.md explains each code at length.
 */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

struct reason_row {
    const char *code;
    const char *error; /* RFC 6750 section 3.1, or NULL */
    int status;
    const char *hint;
};

static const struct reason_row REASONS[TK_REASON_COUNT_] = {
    [TK_REASON_VALID] = {"valid", NULL, 200, "Nothing to fix."},
    [TK_REASON_MISSING_TOKEN] = {"missing_token", NULL, 401,
                                 "Send the access token as 'Authorization: Bearer <token>'."},
    [TK_REASON_WRONG_SCHEME] = {"wrong_scheme", "invalid_request", 400,
                                "Use the Bearer scheme: 'Authorization: Bearer <token>' (not Basic, Token or JWT)."},
    [TK_REASON_MALFORMED_HEADER] = {"malformed_header", "invalid_request", 400,
                                    "Send exactly 'Bearer', one space, and the token as issued: no quotes, no "
                                    "extra spaces, no second token."},
    [TK_REASON_MALFORMED_TOKEN] = {"malformed_token", "invalid_token", 401,
                                   "Send the token exactly as the issuer returned it; it was cut, re-encoded or "
                                   "is not a JWT."},
    [TK_REASON_UNSUPPORTED_TOKEN_TYPE] = {"unsupported_token_type", "invalid_token", 401,
                                          "Send a signed JWT access token (three segments); encrypted or "
                                          "opaque tokens and JWS extensions are not accepted here."},
    [TK_REASON_ALG_NOT_ALLOWED] = {"alg_not_allowed", "invalid_token", 401,
                                   "Sign with the algorithm the verifier's key is bound to; 'none' is never "
                                   "accepted."},
    [TK_REASON_UNKNOWN_KEY] = {"unknown_key", "invalid_token", 401,
                               "Get a new token from the issuer, or refresh the verifier's JWKS if the key was "
                               "just rotated."},
    [TK_REASON_BAD_SIGNATURE] = {"bad_signature", "invalid_token", 401,
                                 "The token was altered or signed with another key: use the token as issued and "
                                 "check that issuer and verifier share the key."},
    [TK_REASON_EXPIRED] = {"expired", "invalid_token", 401,
                           "Get a new access token (refresh it) before it expires; check the clocks if it was "
                           "just issued."},
    [TK_REASON_NOT_YET_VALID] = {"not_yet_valid", "invalid_token", 401,
                                 "Wait until the token's nbf time, or fix the clock of the issuer or the "
                                 "verifier (NTP)."},
    [TK_REASON_ISSUED_IN_FUTURE] = {"issued_in_future", "invalid_token", 401,
                                    "The issuer's clock is ahead of the verifier's: synchronise both with NTP."},
    [TK_REASON_WRONG_ISSUER] = {"wrong_issuer", "invalid_token", 401,
                                "Get the token from the issuer this service trusts, or configure the verifier "
                                "with the exact issuer string (scheme, host, trailing slash)."},
    [TK_REASON_WRONG_AUDIENCE] = {"wrong_audience", "invalid_token", 401,
                                  "Request the token for this API's audience (the 'audience' or 'resource' "
                                  "parameter at the token endpoint)."},
    [TK_REASON_WRONG_TOKEN_TYPE] = {"wrong_token_type", "invalid_token", 401,
                                    "Send an access token (typ at+jwt); ID tokens and refresh tokens are not "
                                    "access tokens."},
    [TK_REASON_MISSING_CLAIM] = {"missing_claim", "invalid_token", 401,
                                 "The issuer must include this claim; tokens without it are refused."},
    [TK_REASON_INVALID_CLAIM] = {"invalid_claim", "invalid_token", 401,
                                 "The issuer put a value of the wrong type or range in this claim; fix the "
                                 "issuer."},
    [TK_REASON_REVOKED] = {"revoked", "invalid_token", 401,
                           "This token was revoked (logout, admin action, or refresh token reuse): sign in "
                           "again to get a new one."},
    [TK_REASON_INSUFFICIENT_SCOPE] = {"insufficient_scope", "insufficient_scope", 403,
                                      "Request a token with the scope this resource needs (the 'scope' "
                                      "parameter), if the client is allowed it."},
    [TK_REASON_UNAVAILABLE] = {"unavailable", NULL, 503,
                               "A service needed to decide is down; retry later. Operators: check /readyz and "
                               "the log."},
    [TK_REASON_EMBEDDED_KEY] = {"embedded_key", "invalid_token", 401,
                                "Do not put jwk, jku, x5u or x5c in the token header: the verifier only uses "
                                "keys it is configured with; name the key with kid."},
    [TK_REASON_TOO_OLD] = {"too_old", "invalid_token", 401,
                           "The token was issued too long ago for this service: get a fresh one."},
};

const char *tk_reason_code(tk_reason r)
{
    if ((unsigned)r >= TK_REASON_COUNT_) {
        return "unknown";
    }
    return REASONS[r].code;
}

const char *tk_reason_error(tk_reason r)
{
    if ((unsigned)r >= TK_REASON_COUNT_) {
        return "invalid_token";
    }
    return REASONS[r].error;
}

int tk_reason_status(tk_reason r)
{
    if ((unsigned)r >= TK_REASON_COUNT_) {
        return 401;
    }
    return REASONS[r].status;
}

const char *tk_reason_hint(tk_reason r)
{
    if ((unsigned)r >= TK_REASON_COUNT_) {
        return "";
    }
    return REASONS[r].hint;
}

/* Verdicts whose fix differs from their reason's usual one, told apart by
 * words of the detail that only that case writes (claims.c, json.c). */
static const struct {
    tk_reason reason;
    const char *marker;
    const char *hint;
} SPECIFIC_HINTS[] = {
    {TK_REASON_MALFORMED_TOKEN, " appears twice (line ",
     "A bug of the issuer, not of this request: it wrote the same member twice in one JSON object. Fix the "
     "issuer's token writer or claim mapping so that each member appears once; resending the token cannot help."},
    {TK_REASON_INSUFFICIENT_SCOPE, "it carries its scopes in \"",
     "The issuer puts the scopes in another claim than 'scope' (RFC 9068 section 2.2.3): tell the verifier to read "
     "that claim (tokend serve: scope-claim in the issuer's section; tokend inspect and tk_policy read 'scope' "
     "only), or have the issuer write 'scope'. Requesting another scope does not help."},
    {TK_REASON_INVALID_CLAIM, " instead of seconds? (as ",
     "Fix the issuer: NumericDate claims (exp, nbf, iat) count seconds since 1970, not milliseconds (divide by "
     "1000)."},
    {TK_REASON_INVALID_CLAIM, "spaces between '",
     "Fix the issuer: scopes in 'scope' are separated by exactly one space, with none before or after "
     "(RFC 6749 section 3.3)."},
};

const char *tk_verdict_hint(const tk_verdict *v)
{
    if (!v) {
        return "";
    }
    for (size_t i = 0; i < sizeof SPECIFIC_HINTS / sizeof SPECIFIC_HINTS[0]; i++) {
        if (v->reason == SPECIFIC_HINTS[i].reason && strnlen(v->detail, sizeof v->detail) < sizeof v->detail &&
            strstr(v->detail, SPECIFIC_HINTS[i].marker)) {
            return SPECIFIC_HINTS[i].hint;
        }
    }
    return tk_reason_hint(v->reason);
}

int tk_reason_from_code(const char *p, size_t len, tk_reason *out)
{
    if (!p || !out) {
        return 0;
    }
    for (unsigned i = 0; i < TK_REASON_COUNT_; i++) {
        if (strlen(REASONS[i].code) == len && memcmp(REASONS[i].code, p, len) == 0) {
            *out = (tk_reason)i;
            return 1;
        }
    }
    return 0;
}

const char *tk_result_str(tk_result r)
{
    switch (r) {
    case TK_OK:
        return "ok";
    case TK_ERR_NOMEM:
        return "out of memory";
    case TK_ERR_ARG:
        return "invalid argument";
    case TK_ERR_KEY:
        return "key material rejected";
    case TK_ERR_UNSUPPORTED:
        return "unsupported algorithm or key type";
    case TK_ERR_CRYPTO:
        return "cryptographic library failure";
    case TK_ERR_LIMIT:
        return "input exceeds a limit";
    case TK_ERR_JSON:
        return "malformed JSON";
    case TK_ERR_STATE:
        return "operation not possible for this object";
    case TK_ERR_KEY_EXPONENT:
        return "RSA public exponent e refused: it must be odd and greater than 1 (with e=1 anyone can forge a "
               "signature) and below 2^64";
    case TK_ERR_KEY_MISMATCH:
        return "private key does not match its public key: d does not belong to the public part (RSA n and e, "
               "EC x and y, Ed25519 x), so its signatures would never verify";
    }
    return "unknown result";
}

void tki_appendf(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    if (cap == 0 || *pos >= cap - 1) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (w < 0) {
        buf[*pos] = '\0';
        return;
    }
    size_t ws = (size_t)w;
    if (ws >= cap - *pos) {
        *pos = cap - 1;
        if (cap >= 4) {
            memcpy(buf + cap - 4, "...", 4);
        }
    } else {
        *pos += ws;
    }
}

void tki_why(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0 || why[0] != '\0') {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    if (w < 0) {
        why[0] = '\0';
    } else if ((size_t)w >= cap && cap >= 4) {
        memcpy(why + cap - 4, "...", 4);
    }
}

void tki_append_escaped(char *buf, size_t cap, size_t *pos, const char *src, size_t n, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    if (cap == 0) {
        return;
    }
    size_t p = *pos;
    size_t take = n < max ? n : max;
    for (size_t i = 0; i < take && p + 5 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[p++] = (char)c;
        } else {
            buf[p++] = '\\';
            buf[p++] = 'x';
            buf[p++] = hex[c >> 4];
            buf[p++] = hex[c & 15];
        }
    }
    if (take < n && p + 4 < cap) {
        memcpy(buf + p, "...", 3);
        p += 3;
    }
    buf[p] = '\0';
    *pos = p;
}

void tki_verdict_valid(tk_verdict *v)
{
    v->reason = TK_REASON_VALID;
    v->detail[0] = '\0';
}

void tki_verdict_set(tk_verdict *v, tk_reason r, const char *fmt, ...)
{
    v->reason = r;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    if (w < 0) {
        v->detail[0] = '\0';
    } else if ((size_t)w >= sizeof v->detail) {
        memcpy(v->detail + sizeof v->detail - 4, "...", 4);
    }
}

int tki_say_if_markup(const char *doc, size_t len, char *buf, size_t cap, size_t *pos)
{
    size_t i = 0;
    while (i < len && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\r' || doc[i] == '\n')) {
        i++;
    }
    if (i >= len || doc[i] != '<') {
        return 0;
    }
    tki_appendf(buf, cap, pos, "not JSON: this looks like an HTML or XML page (it starts with \"");
    tki_append_escaped(buf, cap, pos, doc + i, len - i, 24);
    tki_appendf(buf, cap, pos, "\")");
    return 1;
}
