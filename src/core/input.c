/* SPDX-License-Identifier: Apache-2.0 */
/*
 * input.c — what a person pasted where a token was expected: one diagnoser
 * for `tokend inspect` (a paste) and `/auth` (an Authorization header value
 * that tk_authz_parse refused), so that both name the same problem with
 * the same words.
 *
 * It recognises the ways a token gets wrapped or damaged on its way from
 * the issuer to the header: a byte order mark or another invisible
 * character, quotes, line breaks, spaces, percent-encoding, '=' padding, a
 * whole token response (JSON), a Cookie line, the header's name pasted into
 * its value, and 'Bearer' without its space, twice or with a colon.
 *
 * Invariants: no I/O, no allocation; one pass over the input plus one
 * bounded search for "access_token"; every position in a sentence counts
 * bytes from the start of the token (after 'Bearer ', when there is one),
 * so a paste and the same text sent as 'Bearer <paste>' read the same. The
 * sentences are printable ASCII without '"' or '\', so that /auth's
 * error_description carries them unchanged (RFC 6750 section 3).
 * Anything not recognised is left to the strict parsers (kind TOKEN).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"

/* Repairs, in the order the "repaired" text lists them. */
enum {
    R_INVISIBLE = 1u << 0,
    R_PREFIX = 1u << 1,
    R_COOKIE = 1u << 2,
    R_JSON = 1u << 3,
    R_QUOTES = 1u << 4,
    R_LINES = 1u << 5,
    R_SPACES = 1u << 6,
    R_PERCENT = 1u << 7,
};

static const char *const REPAIR_TEXT[] = {
    "removed invisible characters",
    "took the token after the prefix",
    "took the token from the cookie",
    "took the access_token member",
    "removed the quotes",
    "joined the lines",
    "removed the spaces",
    "URL-decoded it",
};

struct ctx {
    tk_input_diag *d;
    char *clean;
    size_t cap;
    size_t n;
    int ok; /* the clean token can still be built */
    unsigned repairs;
};

static void emit(struct ctx *c, char ch)
{
    if (!c->clean || c->n + 1 >= c->cap) {
        c->ok = 0;
        return;
    }
    c->clean[c->n++] = ch;
}

/* Records the first problem found; later ones only repair. */
static void found(struct ctx *c, tk_input_kind k, tk_reason r, size_t at, const char *fmt, ...) TKI_PRINTF(5, 6);
static void found(struct ctx *c, tk_input_kind k, tk_reason r, size_t at, const char *fmt, ...)
{
    if (c->d->kind != TK_INPUT_TOKEN) {
        return;
    }
    char buf[TK_LIMIT_DETAIL_LEN];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (w < 0) {
        buf[0] = '\0';
    }
    c->d->kind = k;
    c->d->at = at;
    tki_verdict_set(&c->d->verdict, r, "%s", buf);
}

void tki_say_padding(tk_verdict *v, size_t seg, size_t off)
{
    static const char *const names[3] = {"header (segment 1)", "payload (segment 2)", "signature (segment 3)"};
    if (seg < 3) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN,
                        "%s: padding '=' at offset %zu; JWS base64url carries no padding (RFC 7515 section 2)",
                        names[seg], off);
    } else {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN,
                        "segment %zu: padding '=' at offset %zu; JWS base64url carries no padding (RFC 7515 section 2)",
                        seg + 1, off);
    }
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_b64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~' || c == '+' || c == '/';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int has_prefix_ci(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && strncasecmp(p, lit, l) == 0;
}

/* Characters a copy from a web page, a chat or an editor adds, which
 * nobody sees. */
static const struct {
    const char *bytes;
    size_t n;
    const char *name;
} INVISIBLE[] = {
    {"\xef\xbb\xbf", 3, "a UTF-8 byte order mark (EF BB BF)"},
    {"\xc2\xa0", 2, "a no-break space (C2 A0)"},
    {"\xc2\xad", 2, "a soft hyphen (C2 AD)"},
    {"\xe2\x80\x8b", 3, "a zero-width space (E2 80 8B)"},
    {"\xe2\x80\x8c", 3, "a zero-width non-joiner (E2 80 8C)"},
    {"\xe2\x80\x8d", 3, "a zero-width joiner (E2 80 8D)"},
    {"\xe2\x81\xa0", 3, "a word joiner (E2 81 A0)"},
};

/* Length of the invisible character at p (0: none); *which its row. */
static size_t invisible_at(const char *p, size_t n, size_t *which)
{
    for (size_t i = 0; i < sizeof INVISIBLE / sizeof INVISIBLE[0]; i++) {
        if (n >= INVISIBLE[i].n && memcmp(p, INVISIBLE[i].bytes, INVISIBLE[i].n) == 0) {
            *which = i;
            return INVISIBLE[i].n;
        }
    }
    return 0;
}

static void say_invisible(struct ctx *c, size_t which, size_t at, size_t pos)
{
    if (which == 0) {
        found(c, TK_INPUT_BOM, TK_REASON_MALFORMED_HEADER, at,
              "byte %zu is %s, which some editors write at the start of a file: remove it", pos, INVISIBLE[which].name);
    } else {
        found(c, TK_INPUT_INVISIBLE, TK_REASON_MALFORMED_HEADER, at,
              "byte %zu is %s, an invisible character a copy from a web page or chat adds: remove it", pos,
              INVISIBLE[which].name);
    }
    c->repairs |= R_INVISIBLE;
}

/* Length of an opening or closing quote at p: ASCII or typographic. */
static size_t quote_at(const char *p, size_t n)
{
    if (n >= 1 && (p[0] == '"' || p[0] == '\'')) {
        return 1;
    }
    if (n >= 3 && (unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x80 &&
        ((unsigned char)p[2] >= 0x98 && (unsigned char)p[2] <= 0x9d)) {
        return 3; /* U+2018..U+201D */
    }
    return 0;
}

/*
 * The token itself, p[t..e): quotes around it, then every byte. The first
 * problem found is the kind (when none was found before); every problem is
 * repaired into the clean token. A byte that no rule explains stops the
 * scan: with no kind yet, the strict parsers say what it is; after one, no
 * clean token is offered (what it would be is not known).
 */
static void token_part(struct ctx *c, const char *p, size_t t, size_t e)
{
    const size_t base = t;
    size_t q = quote_at(p + t, e - t);
    if (q) {
        found(c, TK_INPUT_QUOTED, TK_REASON_MALFORMED_HEADER, t,
              "the token is in quotes (byte %zu): send it bare, without quotes", t - base);
        c->repairs |= R_QUOTES;
        t += q;
        size_t cq = e > t ? (p[e - 1] == '"' || p[e - 1] == '\'' ? 1 : 0) : 0;
        if (!cq && e - t >= 3 && quote_at(p + e - 3, 3) == 3) {
            cq = 3;
        }
        e -= cq;
    }
    /* Dots, literal or percent-encoded: a space is taken as damage inside
     * one token only when the whole has a JWT's two. */
    size_t dots = 0;
    size_t breaks = 0;
    for (size_t i = t; i < e; i++) {
        if (p[i] == '.') {
            dots++;
        } else if (p[i] == '%' && e - i >= 3 && p[i + 1] == '2' && (p[i + 2] == 'E' || p[i + 2] == 'e')) {
            dots++;
        } else if (p[i] == '\n' || (p[i] == '\r' && (i + 1 == e || p[i + 1] != '\n'))) {
            breaks++;
        }
    }
    size_t seg = 0;
    size_t i = t;
    while (i < e) {
        unsigned char ch = (unsigned char)p[i];
        size_t pos = i - base;
        size_t which = 0;
        size_t k = 0;
        if (is_b64url(ch)) {
            seg += ch == '.';
            emit(c, (char)ch);
            i++;
            continue;
        }
        if (ch == '=') {
            size_t r = i;
            while (r < e && p[r] == '=') {
                r++;
            }
            if (r != e && p[r] != '.') {
                goto stop; /* '=' inside a segment: not padding */
            }
            if (c->d->kind == TK_INPUT_TOKEN) {
                c->d->kind = TK_INPUT_PADDING;
                c->d->at = i;
                tki_say_padding(&c->d->verdict, seg, pos);
            }
            /* Kept: whether the issuer signed it padded or it was padded
             * on the way is not known, so removing it could make a
             * signature fail or pass falsely. The token parser names it. */
            while (i < r) {
                emit(c, '=');
                i++;
            }
            continue;
        }
        if (ch == '\r' || ch == '\n') {
            size_t r = i;
            while (r < e && (p[r] == '\r' || p[r] == '\n' || is_ows(p[r]))) {
                r++;
            }
            if (r == e) {
                found(c, TK_INPUT_WRAPPED, TK_REASON_MALFORMED_HEADER, i,
                      "a line break at byte %zu ends the token: trim it (a file saved with a final newline or "
                      "Windows line endings)",
                      pos);
            } else {
                found(c, TK_INPUT_WRAPPED, TK_REASON_MALFORMED_HEADER, i,
                      "the token is wrapped over %zu lines (the first line break is at byte %zu): join the lines; "
                      "a token has no line breaks",
                      breaks + 1, pos);
            }
            c->repairs |= R_LINES;
            i = r;
            continue;
        }
        if (is_ows((char)ch)) {
            if (dots != 2) {
                goto stop; /* two tokens, or not a JWT: the strict parser says which */
            }
            found(c, TK_INPUT_SPACE, TK_REASON_MALFORMED_HEADER, i,
                  "a %s at byte %zu inside the token: remove it; a token has no white space",
                  ch == ' ' ? "space" : "tab", pos);
            c->repairs |= R_SPACES;
            while (i < e && is_ows(p[i])) {
                i++;
            }
            continue;
        }
        if (ch == '%' && e - i >= 3 && hexval((unsigned char)p[i + 1]) >= 0 && hexval((unsigned char)p[i + 2]) >= 0) {
            unsigned char dec = (unsigned char)(hexval((unsigned char)p[i + 1]) * 16 + hexval((unsigned char)p[i + 2]));
            if (!is_b64url(dec) && dec != '=') {
                goto stop;
            }
            found(c, TK_INPUT_PERCENT, TK_REASON_MALFORMED_HEADER, i,
                  "'%%%c%c' at byte %zu: the token was percent-encoded (URL-decode it)", p[i + 1], p[i + 2], pos);
            c->repairs |= R_PERCENT;
            seg += dec == '.';
            emit(c, (char)dec);
            i += 3;
            continue;
        }
        k = invisible_at(p + i, e - i, &which);
        if (k) {
            say_invisible(c, which, i, pos);
            i += k;
            continue;
        }
        goto stop;
    }
    return;
stop:
    c->ok = 0;
}

/* Whether p[0..n) starts like a JWT: its first word has a '.' or starts
 * with "eyJ" (base64url of '{"'). */
static int looks_like_jwt(const char *p, size_t n)
{
    if (n >= 3 && memcmp(p, "eyJ", 3) == 0) {
        return 1;
    }
    for (size_t i = 0; i < n && !is_ows(p[i]); i++) {
        if (p[i] == '.') {
            return 1;
        }
    }
    return 0;
}

/* A first word that may be another auth-scheme (Basic, DPoP, Token...):
 * short, letters, digits, '-' and '_', and not the start of a JWT. */
static int plausible_scheme(const char *p, size_t n)
{
    if (n == 0 || n > 20 || looks_like_jwt(p, n)) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_')) {
            return 0;
        }
    }
    return 1;
}

/* A whole JSON document: a token response points at its access_token. */
static void json_doc(struct ctx *c, const char *p, size_t b, size_t e)
{
    static const char key[] = "\"access_token\"";
    const size_t kl = sizeof key - 1;
    for (size_t i = b; i + kl <= e; i++) {
        if (p[i] != '"' || memcmp(p + i, key, kl) != 0) {
            continue;
        }
        size_t j = i + kl;
        while (j < e && (is_ows(p[j]) || p[j] == '\r' || p[j] == '\n')) {
            j++;
        }
        if (j >= e || p[j] != ':') {
            continue;
        }
        j++;
        while (j < e && (is_ows(p[j]) || p[j] == '\r' || p[j] == '\n')) {
            j++;
        }
        found(c, TK_INPUT_TOKEN_RESPONSE, TK_REASON_MALFORMED_HEADER, b,
              "this is a token response JSON: the token is its access_token member; send only that");
        c->repairs |= R_JSON;
        size_t s = j + 1;
        size_t v = s;
        while (v < e && p[v] != '"' && p[v] != '\\') {
            v++;
        }
        if (j >= e || p[j] != '"' || v >= e || p[v] != '"' || v == s) {
            c->ok = 0;
            return;
        }
        token_part(c, p, s, v);
        return;
    }
    found(c, TK_INPUT_JSON, TK_REASON_MALFORMED_HEADER, b,
          "this is a JSON document with no access_token member, not a token");
    c->ok = 0;
}

/* A "Cookie:" line: name the cookie that holds a JWT, if one does. */
static void cookie_line(struct ctx *c, const char *p, size_t at, size_t b, size_t e)
{
    size_t i = b;
    while (i < e) {
        while (i < e && (is_ows(p[i]) || p[i] == ';')) {
            i++;
        }
        size_t n0 = i;
        while (i < e && p[i] != '=' && p[i] != ';') {
            i++;
        }
        size_t n1 = i;
        if (i >= e || p[i] != '=') {
            continue;
        }
        size_t v0 = ++i;
        while (i < e && p[i] != ';') {
            i++;
        }
        size_t v1 = i;
        while (v1 > v0 && is_ows(p[v1 - 1])) {
            v1--;
        }
        size_t dots = 0;
        for (size_t k = v0; k < v1; k++) {
            dots += p[k] == '.';
        }
        if (dots >= 2 && n1 > n0) {
            /* printable, and no quote or backslash: the sentence goes
             * unchanged into an error_description */
            char name[40];
            size_t nl = n1 - n0 < sizeof name - 4 ? n1 - n0 : sizeof name - 4;
            for (size_t k = 0; k < nl; k++) {
                unsigned char ch = (unsigned char)p[n0 + k];
                name[k] = ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '\'' ? (char)ch : '?';
            }
            memcpy(name + nl, nl < n1 - n0 ? "..." : "", nl < n1 - n0 ? 4 : 1);
            found(c, TK_INPUT_COOKIE, TK_REASON_MALFORMED_HEADER, at,
                  "this is a Cookie header line, not an Authorization value: the cookie '%s' holds the token; "
                  "send it as 'Bearer <token>'",
                  name);
            c->repairs |= R_COOKIE;
            token_part(c, p, v0, v1);
            return;
        }
    }
    found(c, TK_INPUT_COOKIE, TK_REASON_MALFORMED_HEADER, at,
          "this is a Cookie header line, not an Authorization value: send the token as 'Bearer <token>'");
    c->ok = 0;
}

const char *tk_input_kind_name(tk_input_kind k)
{
    static const char *const names[TK_INPUT_KIND_COUNT_] = {
        [TK_INPUT_TOKEN] = "token",
        [TK_INPUT_BOM] = "bom",
        [TK_INPUT_INVISIBLE] = "invisible",
        [TK_INPUT_QUOTED] = "quoted",
        [TK_INPUT_WRAPPED] = "wrapped",
        [TK_INPUT_SPACE] = "space",
        [TK_INPUT_PERCENT] = "percent_encoded",
        [TK_INPUT_PADDING] = "padding",
        [TK_INPUT_TOKEN_RESPONSE] = "token_response",
        [TK_INPUT_JSON] = "json",
        [TK_INPUT_COOKIE] = "cookie",
        [TK_INPUT_HEADER_LINE] = "header_line",
        [TK_INPUT_BEARER_NO_SPACE] = "bearer_no_space",
        [TK_INPUT_BEARER_TWICE] = "bearer_twice",
        [TK_INPUT_BEARER_COLON] = "bearer_colon",
    };
    return (unsigned)k < TK_INPUT_KIND_COUNT_ ? names[k] : "unknown";
}

tk_result tk_input_diagnose(const char *p, size_t len, tk_input_diag *out, char *clean, size_t clean_cap)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    out->kind = TK_INPUT_TOKEN;
    tki_verdict_valid(&out->verdict);
    if (clean && clean_cap) {
        clean[0] = '\0';
    }
    if (!p && len) {
        return TK_ERR_ARG;
    }
    if (!p) {
        p = ""; /* no arithmetic on a null pointer */
    }
    struct ctx c = {out, clean_cap ? clean : NULL, clean_cap, 0, 1, 0};
    size_t b = 0;
    size_t e = len;
    while (b < e && is_ows(p[b])) {
        b++;
    }
    while (e > b && is_ows(p[e - 1])) {
        e--;
    }
    /* Invisible characters before anything else (a BOM from a file). */
    size_t which = 0;
    size_t k = 0;
    while (b < e && (k = invisible_at(p + b, e - b, &which)) != 0) {
        say_invisible(&c, which, b, b);
        b += k;
        while (b < e && is_ows(p[b])) {
            b++;
        }
    }
    if (has_prefix_ci(p + b, e - b, "authorization:")) {
        found(&c, TK_INPUT_HEADER_LINE, TK_REASON_MALFORMED_HEADER, b,
              "the value starts with 'Authorization:', the header's name: send only 'Bearer <token>' as its value");
        c.repairs |= R_PREFIX;
        b += 14;
        while (b < e && is_ows(p[b])) {
            b++;
        }
    }
    if (has_prefix_ci(p + b, e - b, "cookie:")) {
        cookie_line(&c, p, b, b + 7, e);
        goto done;
    }
    if (b < e && p[b] == '{') {
        json_doc(&c, p, b, e);
        goto done;
    }
    size_t t = b;
    if (has_prefix_ci(p + b, e - b, "bearer")) {
        size_t s = b + 6;
        if (s < e && p[s] == ':') {
            found(&c, TK_INPUT_BEARER_COLON, TK_REASON_MALFORMED_HEADER, b,
                  "'Bearer:' has a colon: the value is 'Bearer', one space and the token, without ':'");
            s++;
            while (s < e && is_ows(p[s])) {
                s++;
            }
        } else if (s < e && is_ows(p[s])) {
            if ((p[s] == '\t' || (s + 1 < e && is_ows(p[s + 1]))) && out->kind == TK_INPUT_TOKEN) {
                goto done; /* a tab or two spaces: tk_authz_parse says so */
            }
            while (s < e && is_ows(p[s])) {
                s++;
            }
            if (has_prefix_ci(p + s, e - s, "bearer") && (s + 6 == e || is_ows(p[s + 6]) || p[s + 6] == ':')) {
                found(&c, TK_INPUT_BEARER_TWICE, TK_REASON_MALFORMED_HEADER, s,
                      "'Bearer Bearer': the prefix is there twice (it was added to a value that already had it); "
                      "send it once");
                s += 6;
                while (s < e && (is_ows(p[s]) || p[s] == ':')) {
                    s++;
                }
            }
        } else if (s < e && looks_like_jwt(p + s, e - s)) {
            found(&c, TK_INPUT_BEARER_NO_SPACE, TK_REASON_MALFORMED_HEADER, b,
                  "no space after 'Bearer': put exactly one space between 'Bearer' and the token");
        } else {
            goto done; /* 'Bearer' alone, or a longer scheme name */
        }
        if (out->kind != TK_INPUT_TOKEN) {
            c.repairs |= R_PREFIX;
        }
        t = s;
    } else {
        size_t w = b;
        while (w < e && !is_ows(p[w])) {
            w++;
        }
        if (w < e && plausible_scheme(p + b, w - b)) {
            goto done; /* another scheme (Basic, DPoP...): tk_authz_parse says so */
        }
    }
    if (t < e && p[t] == '{') {
        json_doc(&c, p, t, e);
    } else {
        token_part(&c, p, t, e);
    }
done:
    if (out->kind != TK_INPUT_TOKEN && c.ok && c.clean && c.n > 0) {
        clean[c.n] = '\0';
        out->clean_len = c.n;
        size_t pos = 0;
        for (size_t i = 0; i < sizeof REPAIR_TEXT / sizeof REPAIR_TEXT[0]; i++) {
            if (c.repairs & (1u << i)) {
                tki_appendf(out->repaired, sizeof out->repaired, &pos, "%s%s", pos ? ", " : "", REPAIR_TEXT[i]);
            }
        }
    } else if (c.clean) {
        clean[0] = '\0';
    }
    return TK_OK;
}
