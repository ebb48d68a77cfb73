/* SPDX-License-Identifier: Apache-2.0 */
/*
 * claims.c — JWT claims validation against a policy (RFC 7519 section 4.1,
 * RFC 9068 section 4, SECURITY.md rules 9–13).
 *
 * NumericDates are finite JSON numbers in [0, TK_LIMIT_NUMERICDATE_MAX];
 * fractions are rounded against the token (exp and max-age down, nbf and
 * iat-in-the-future up). All arithmetic is int64 on values that range check
 * has bounded, so nothing can overflow. Every problem found is reported, in
 * check order: time, issuer, audience, type, required claims, formats,
 * scope (the only 403 comes last, after every 401).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"

void tk_policy_init(tk_policy *p, int64_t now)
{
    if (!p) {
        return;
    }
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->now = now;
    p->leeway = TK_LIMIT_LEEWAY_DEFAULT;
    p->require_exp = 1;
}

struct sink {
    tk_verdict *out;
    size_t cap;
    size_t n;
    tk_verdict scratch;  /* takes the problems past cap */
    struct tki_claims c; /* the claims, in whichever form */
};

static tk_verdict *next(struct sink *s)
{
    tk_verdict *v = s->n < s->cap ? &s->out[s->n] : &s->scratch;
    s->n++;
    return v;
}

/* Quotes a token-supplied string into buf. */
static const char *q(char *buf, size_t cap, const char *s, size_t n)
{
    size_t pos = 0;
    buf[0] = '\0';
    tki_append_escaped(buf, cap, &pos, s, n, 64);
    return buf;
}

/* Quotes a token-supplied string into buf (cap bytes), cut to leave
 * `reserve` bytes of the detail for what follows (the expected values,
 * which are never cut), but never under 48 characters. */
static const char *qfit(char *buf, size_t cap, const char *s, size_t n, size_t reserve)
{
    size_t room = TK_LIMIT_DETAIL_LEN > reserve + 48 ? TK_LIMIT_DETAIL_LEN - reserve : 48;
    if (room < cap) {
        cap = room;
    }
    char big[4 * TK_LIMIT_DETAIL_LEN + 8];
    size_t pos = 0;
    big[0] = '\0';
    tki_append_escaped(big, sizeof big, &pos, s, n, TK_LIMIT_DETAIL_LEN);
    if (pos + 1 > cap) {
        size_t cut = cap - 4;
        for (size_t k = cut > 3 ? cut - 3 : 0; k < cut; k++) {
            if (big[k] == '\\') {
                cut = k; /* never split a \xNN escape */
                break;
            }
        }
        memcpy(big + cut, "...", 4);
    }
    size_t l = strnlen(big, cap - 1);
    memcpy(buf, big, l);
    buf[l] = '\0';
    return buf;
}

/* Renders a claim's JSON type for messages. */
static const char *json_kind(const tki_cv *v)
{
    switch (v->type) {
    case TKI_CV_OBJECT:
        return "an object";
    case TKI_CV_ARRAY:
        return "an array";
    case TKI_CV_STRING:
        return "a string";
    case TKI_CV_INT:
    case TKI_CV_REAL:
        return "a number";
    case TKI_CV_TRUE:
    case TKI_CV_FALSE:
        return "a boolean";
    case TKI_CV_NULL:
        return "null";
    case TKI_CV_ABSENT:
        break;
    }
    return "absent";
}

/* A NumericDate out of range that is a plausible date in milliseconds,
 * microseconds or nanoseconds: says so (the issuer wrote Date.now() or the
 * like). Returns 1 when it wrote the verdict. */
static int unit_mixup(struct sink *s, const char *name, double d, const char *shown)
{
    static const struct {
        double div;
        const char *unit;
    } units[] = {{1e3, "milliseconds"}, {1e6, "microseconds"}, {1e9, "nanoseconds"}};
    for (size_t u = 0; u < 3; u++) {
        double secs = d / units[u].div;
        if (secs >= 1e8 && secs <= 1e10) { /* 1973 .. 2286 */
            char when[32];
            tk_format_time((int64_t)secs, when, sizeof when);
            tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM,
                            "\"%s\" is %s: %s instead of seconds? (as %s it is %s); a NumericDate counts seconds "
                            "since 1970 (RFC 7519 section 2)",
                            name, shown, units[u].unit, units[u].unit, when);
            return 1;
        }
    }
    return 0;
}

/*
 * Reads NumericDate `name`. Returns 0 when absent, 1 when valid (floor and
 * ceil set), -1 when invalid (a problem is recorded).
 */
static int numeric_date(struct sink *s, const char *name, int64_t *lo, int64_t *hi)
{
    tki_cv cv;
    const tki_cv *v = &cv;
    if (!tki_claims_get(&s->c, name, &cv)) {
        return 0;
    }
    if (v->type == TKI_CV_INT) {
        int64_t i = v->i;
        if (i < 0 || i > TK_LIMIT_NUMERICDATE_MAX) {
            char shown[32];
            snprintf(shown, sizeof shown, "%lld", (long long)i);
            if (i > 0 && unit_mixup(s, name, (double)i, shown)) {
                return -1;
            }
            tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM, "\"%s\" is %lld, outside [0, %lld]", name, (long long)i,
                            (long long)TK_LIMIT_NUMERICDATE_MAX);
            return -1;
        }
        *lo = *hi = (int64_t)i;
        return 1;
    }
    if (v->type == TKI_CV_REAL) {
        double d = v->d;
        if (!isfinite(d) || d < 0.0 || d > (double)TK_LIMIT_NUMERICDATE_MAX) {
            char shown[48];
            snprintf(shown, sizeof shown, "%.17g", d);
            if (isfinite(d) && d > 0.0 && unit_mixup(s, name, d, shown)) {
                return -1;
            }
            tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM, "\"%s\" is %g, outside [0, %lld]", name, d,
                            (long long)TK_LIMIT_NUMERICDATE_MAX);
            return -1;
        }
        *lo = (int64_t)floor(d);
        *hi = (int64_t)ceil(d);
        return 1;
    }
    if (v->type == TKI_CV_STRING) {
        char b[100];
        tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM,
                        "\"%s\" is a string (\"%s\"), not a NumericDate (a JSON number of seconds since 1970)", name,
                        q(b, sizeof b, v->s, v->len));
        return -1;
    }
    tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM, "\"%s\" is %s, not a NumericDate (a JSON number)", name,
                    json_kind(v));
    return -1;
}

static int eq_str(const tki_cv *v, const char *want)
{
    size_t n = strlen(want);
    return v->type == TKI_CV_STRING && v->len == n && memcmp(v->s, want, n) == 0;
}

/* Appends `"a", "b"` from a policy list. */
static void append_list(char *d, size_t cap, size_t *pos, const char *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tki_appendf(d, cap, pos, "%s\"", i ? ", " : "");
        tki_append_escaped(d, cap, pos, items[i], strlen(items[i]), strlen(items[i])); /* never cut */
        tki_appendf(d, cap, pos, "\"");
    }
}

static void expected(char *d, size_t cap, size_t *pos, const char *const *items, size_t n)
{
    tki_appendf(d, cap, pos, n == 1 ? "; expected " : "; expected one of ");
    append_list(d, cap, pos, items, n);
}

static void check_times(const tk_policy *pol, struct sink *s)
{
    char when[32], dur[32], lw[32];
    int64_t now = pol->now;
    int64_t lee = pol->leeway;
    int64_t lo = 0, hi = 0;
    snprintf(lw, sizeof lw, "%llds", (long long)lee);

    int e = numeric_date(s, "exp", &lo, &hi);
    if (e == 0 && pol->require_exp) {
        tki_verdict_set(next(s), TK_REASON_MISSING_CLAIM,
                        "no \"exp\" claim: tokens without an expiry time are refused");
    } else if (e == 1 && now >= lo + lee) {
        tk_format_time(lo, when, sizeof when);
        tk_format_duration(now - lo, dur, sizeof dur);
        tki_verdict_set(next(s), TK_REASON_EXPIRED, "token expired %s ago at %s (leeway %s)", dur, when, lw);
    }
    if (numeric_date(s, "nbf", &lo, &hi) == 1 && now + lee < hi) {
        tk_format_time(hi, when, sizeof when);
        tk_format_duration(hi - now, dur, sizeof dur);
        tki_verdict_set(next(s), TK_REASON_NOT_YET_VALID,
                        "token is not valid before %s, %s from now (leeway %s); if it was just issued, the "
                        "issuer's clock is ahead of this host's",
                        when, dur, lw);
    }
    int i = numeric_date(s, "iat", &lo, &hi);
    if (i == 1 && hi > now + lee) {
        tk_format_time(hi, when, sizeof when);
        tk_format_duration(hi - now, dur, sizeof dur);
        tki_verdict_set(next(s), TK_REASON_ISSUED_IN_FUTURE,
                        "token was issued at %s, %s in the future (leeway %s): the issuer's clock is ahead of "
                        "this host's",
                        when, dur, lw);
    }
    if (pol->max_age > 0) {
        if (i == 0) {
            tki_verdict_set(next(s), TK_REASON_MISSING_CLAIM,
                            "no \"iat\" claim, needed to enforce the maximum token age");
        } else if (i == 1 && now >= lo + pol->max_age + lee) {
            char age[32];
            tk_format_time(lo, when, sizeof when);
            tk_format_duration(now - lo, dur, sizeof dur);
            tk_format_duration(pol->max_age, age, sizeof age);
            tki_verdict_set(next(s), TK_REASON_TOO_OLD,
                            "token was issued %s ago at %s; this service accepts tokens up to %s old (leeway %s)", dur,
                            when, age, lw);
        }
    }
}

static void check_issuer(const tk_policy *pol, struct sink *s)
{
    tki_cv iss;
    int present = tki_claims_get(&s->c, "iss", &iss);
    if (present && iss.type != TKI_CV_STRING) {
        tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM, "\"iss\" is %s, not a string", json_kind(&iss));
        return;
    }
    if (pol->issuers_len == 0) {
        return;
    }
    if (!present) {
        tki_verdict_set(next(s), TK_REASON_MISSING_CLAIM, "no \"iss\" claim; the issuer must be named");
        return;
    }
    for (size_t i = 0; i < pol->issuers_len; i++) {
        if (eq_str(&iss, pol->issuers[i])) {
            return;
        }
    }
    char want[TK_LIMIT_DETAIL_LEN];
    size_t wpos = 0;
    want[0] = '\0';
    expected(want, sizeof want, &wpos, pol->issuers, pol->issuers_len);
    char tv[TK_LIMIT_DETAIL_LEN];
    tk_verdict *v = next(s);
    size_t pos = 0;
    v->reason = TK_REASON_WRONG_ISSUER;
    v->detail[0] = '\0';
    tki_appendf(v->detail, sizeof v->detail, &pos, "issuer is \"%s\"%s", qfit(tv, sizeof tv, iss.s, iss.len, wpos + 16),
                want);
}

static void check_audience(const tk_policy *pol, struct sink *s)
{
    tki_cv aud;
    tki_cv a;
    char b[100];
    int present = tki_claims_get(&s->c, "aud", &aud);
    if (present) {
        int ok = aud.type == TKI_CV_STRING || (aud.type == TKI_CV_ARRAY && aud.len > 0);
        for (size_t i = 0; aud.type == TKI_CV_ARRAY && i < aud.len; i++) {
            tki_claims_item(&s->c, &aud, i, &a);
            ok = ok && a.type == TKI_CV_STRING;
        }
        if (!ok) {
            tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM,
                            "\"aud\" is %s; it must be a string or a non-empty array of strings", json_kind(&aud));
            return;
        }
    }
    if (pol->audiences_len == 0) {
        return;
    }
    if (!present) {
        tki_verdict_set(next(s), TK_REASON_MISSING_CLAIM, "no \"aud\" claim; the token must name its audience");
        return;
    }
    for (size_t k = 0; k < pol->audiences_len; k++) {
        if (eq_str(&aud, pol->audiences[k])) {
            return;
        }
        for (size_t i = 0; aud.type == TKI_CV_ARRAY && i < aud.len; i++) {
            tki_claims_item(&s->c, &aud, i, &a);
            if (eq_str(&a, pol->audiences[k])) {
                return;
            }
        }
    }
    char want[TK_LIMIT_DETAIL_LEN];
    size_t wpos = 0;
    want[0] = '\0';
    expected(want, sizeof want, &wpos, pol->audiences, pol->audiences_len);
    char tv[TK_LIMIT_DETAIL_LEN];
    tk_verdict *v = next(s);
    size_t pos = 0;
    v->reason = TK_REASON_WRONG_AUDIENCE;
    v->detail[0] = '\0';
    if (aud.type == TKI_CV_STRING) {
        tki_appendf(v->detail, sizeof v->detail, &pos, "audience is \"%s\"%s",
                    qfit(tv, sizeof tv, aud.s, aud.len, wpos + 16), want);
    } else {
        tki_appendf(v->detail, sizeof v->detail, &pos, "audience is [");
        for (size_t i = 0; i < aud.len; i++) {
            if (i == 8) {
                tki_appendf(v->detail, sizeof v->detail, &pos, ", ...");
                break;
            }
            tki_claims_item(&s->c, &aud, i, &a);
            tki_appendf(v->detail, sizeof v->detail, &pos, "%s\"%s\"", i ? ", " : "", q(b, sizeof b, a.s, a.len));
        }
        tki_appendf(v->detail, sizeof v->detail, &pos, "]");
        /* the token's list gives way to the expected values, which are never cut */
        if (pos + wpos >= sizeof v->detail && wpos + 8 < sizeof v->detail) {
            pos = sizeof v->detail - wpos - 5;
            memcpy(v->detail + pos, "...]", 5);
            pos += 4;
        }
        tki_appendf(v->detail, sizeof v->detail, &pos, "%s", want);
    }
}

/* RFC 7515 section 4.1.9: "application/" may be omitted; compare case-insensitively. */
static const char *strip_media(const char *s)
{
    return strncasecmp(s, "application/", 12) == 0 ? s + 12 : s;
}

static void check_typ(const tk_token *t, const tk_policy *pol, struct sink *s)
{
    if (!pol->typ) {
        return;
    }
    char b[100];
    if (!t->typ) {
        tki_verdict_set(next(s), TK_REASON_WRONG_TOKEN_TYPE, "token has no \"typ\" header; expected \"%s\"",
                        q(b, sizeof b, pol->typ, strlen(pol->typ)));
        return;
    }
    if (strcasecmp(strip_media(t->typ), strip_media(pol->typ)) != 0) {
        char w[100];
        tki_verdict_set(next(s), TK_REASON_WRONG_TOKEN_TYPE,
                        "token type (typ) is \"%s\"; expected \"%s\" (is it an ID token or another kind of token?)",
                        q(b, sizeof b, t->typ, strlen(t->typ)), q(w, sizeof w, pol->typ, strlen(pol->typ)));
    }
}

/* Scope syntax, RFC 6749 section 3.3: tokens of %x21 / %x23-5B / %x5D-7E joined by
 * single spaces. Returns 0 and the offset of the first bad byte. */
static int scope_syntax_ok(const char *p, size_t n, size_t *bad)
{
    if (n == 0) {
        *bad = 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == ' ') {
            if (i == 0 || i == n - 1 || p[i - 1] == ' ') {
                *bad = i;
                return 0;
            }
        } else if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) {
            *bad = i;
            return 0;
        }
    }
    return 1;
}

static int has_scope(const char *p, size_t n, const char *want)
{
    size_t wl = strlen(want);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != ' ') {
            j++;
        }
        if (j - i == wl && memcmp(p + i, want, wl) == 0) {
            return 1;
        }
        i = j + 1;
    }
    return 0;
}

static void check_formats(struct sink *s)
{
    static const char *const strings[] = {"sub", "client_id", "sid"};
    tki_cv v;
    for (size_t i = 0; i < 3; i++) {
        if (tki_claims_get(&s->c, strings[i], &v) && v.type != TKI_CV_STRING) {
            tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM, "\"%s\" is %s, not a string", strings[i], json_kind(&v));
        }
    }
    if (tki_claims_get(&s->c, "jti", &v) && (v.type != TKI_CV_STRING || v.len == 0 || v.len > TK_LIMIT_JTI_LEN)) {
        tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM, "\"jti\" must be a string of 1 to %u bytes",
                        TK_LIMIT_JTI_LEN);
    }
}

static void check_required(const tk_policy *pol, struct sink *s)
{
    char b[100];
    tki_cv v;
    for (size_t i = 0; i < pol->required_len; i++) {
        const char *name = pol->required[i];
        if (!tki_claims_get(&s->c, name, &v)) {
            size_t pos = 0;
            b[0] = '\0';
            tki_append_escaped(b, sizeof b, &pos, name, strlen(name), sizeof b); /* the policy's: never cut */
            tki_verdict_set(next(s), TK_REASON_MISSING_CLAIM, "no \"%s\" claim; this service requires it", b);
        }
    }
}

/* What is wrong at offset `bad` of a scope string that fails
 * scope_syntax_ok, in words: "two spaces between 'a' and 'b'". */
static void scope_syntax_why(const char *p, size_t n, size_t bad, char *d, size_t cap, size_t *pos)
{
    unsigned char c = (unsigned char)p[bad];
    if (c == ' ' && bad == 0) {
        tki_appendf(d, cap, pos, "it starts with a space");
        return;
    }
    if (c == ' ') {
        size_t end = bad; /* first space of the run */
        while (end > 0 && p[end - 1] == ' ') {
            end--;
        }
        size_t start = end;
        while (start > 0 && p[start - 1] != ' ') {
            start--;
        }
        size_t next = bad;
        while (next < n && p[next] == ' ') {
            next++;
        }
        if (next >= n) {
            tki_appendf(d, cap, pos, "it ends with %s", next - end > 1 ? "spaces" : "a space");
            return;
        }
        size_t stop = next;
        while (stop < n && p[stop] != ' ') {
            stop++;
        }
        static const char *const counts[] = {"", "", "two", "three", "four"};
        size_t k = next - end;
        tki_appendf(d, cap, pos, "%s%s spaces between '", k <= 4 ? counts[k] : "", k <= 4 ? "" : "many");
        tki_append_escaped(d, cap, pos, p + start, end - start, 40);
        tki_appendf(d, cap, pos, "' and '");
        tki_append_escaped(d, cap, pos, p + next, stop - next, 40);
        tki_appendf(d, cap, pos, "' (scopes are separated by exactly one space)");
        return;
    }
    if (c == '\t' || c == '\n' || c == '\r') {
        tki_appendf(d, cap, pos, "a %s at offset %zu (scopes are separated by one space)",
                    c == '\t' ? "tab" : "line break", bad);
    } else if (c == '"' || c == '\\') {
        tki_appendf(d, cap, pos, "'%c' at offset %zu is not allowed in a scope", c, bad);
    } else if (c > 0x7e) {
        tki_appendf(d, cap, pos, "byte 0x%02x at offset %zu: a scope is printable ASCII (no UTF-8)", c, bad);
    } else {
        tki_appendf(d, cap, pos, "control byte 0x%02x at offset %zu", c, bad);
    }
}

/* Claims in which issuers put scopes instead of "scope": Entra and Okta
 * "scp" (a string or an array), app roles in "roles", and "scopes". */
static const char *const OTHER_SCOPE_CLAIMS[] = {"scp", "roles", "scopes"};

/* When the token has no "scope" but one of the claims above, says where
 * its scopes are and what they hold. */
static void say_other_scopes(struct sink *s, char *d, size_t cap, size_t *pos)
{
    for (size_t k = 0; k < sizeof OTHER_SCOPE_CLAIMS / sizeof OTHER_SCOPE_CLAIMS[0]; k++) {
        tki_cv v;
        if (!tki_claims_get(&s->c, OTHER_SCOPE_CLAIMS[k], &v) || (v.type != TKI_CV_STRING && v.type != TKI_CV_ARRAY)) {
            continue;
        }
        tki_appendf(d, cap, pos, "; the token has no \"scope\" claim: it carries its scopes in \"%s\" (",
                    OTHER_SCOPE_CLAIMS[k]);
        if (v.type == TKI_CV_STRING) {
            tki_appendf(d, cap, pos, "\"");
            tki_append_escaped(d, cap, pos, v.s, v.len, 120);
            tki_appendf(d, cap, pos, "\"");
        } else {
            tki_appendf(d, cap, pos, "[");
            for (size_t i = 0; i < v.len && i < 8; i++) {
                tki_cv it;
                tki_claims_item(&s->c, &v, i, &it);
                tki_appendf(d, cap, pos, "%s", i ? ", " : "");
                if (it.type == TKI_CV_STRING) {
                    tki_appendf(d, cap, pos, "\"");
                    tki_append_escaped(d, cap, pos, it.s, it.len, 40);
                    tki_appendf(d, cap, pos, "\"");
                } else {
                    tki_appendf(d, cap, pos, "%s", json_kind(&it));
                }
            }
            tki_appendf(d, cap, pos, "%s]", v.len > 8 ? ", ..." : "");
        }
        tki_appendf(d, cap, pos, "), which this verifier does not read as scopes");
        return;
    }
    tki_appendf(d, cap, pos, "; the token has no scope claim");
}

static void check_scope(const tk_policy *pol, struct sink *s)
{
    tki_cv sc;
    char b[160];
    int present = tki_claims_get(&s->c, "scope", &sc);
    if (present) {
        size_t bad = 0;
        if (sc.type != TKI_CV_STRING) {
            tki_verdict_set(next(s), TK_REASON_INVALID_CLAIM,
                            "\"scope\" is %s; it must be one string of space-separated scopes (RFC 6749 section 3.3)",
                            json_kind(&sc));
            return;
        }
        if (!scope_syntax_ok(sc.s, sc.len, &bad)) {
            tk_verdict *v = next(s);
            size_t pos = 0;
            v->reason = TK_REASON_INVALID_CLAIM;
            v->detail[0] = '\0';
            tki_appendf(v->detail, sizeof v->detail, &pos,
                        "\"scope\" is not space-separated scope tokens (RFC 6749 section 3.3): ");
            if (sc.len == 0) {
                tki_appendf(v->detail, sizeof v->detail, &pos, "it is empty");
            } else {
                scope_syntax_why(sc.s, sc.len, bad, v->detail, sizeof v->detail, &pos);
            }
            tki_appendf(v->detail, sizeof v->detail, &pos, " in \"%s\"", q(b, sizeof b, sc.s, sc.len));
            return;
        }
    }
    if (pol->scopes_len == 0) {
        return;
    }
    tk_verdict *v = NULL;
    size_t pos = 0;
    size_t missing = 0;
    for (size_t i = 0; i < pol->scopes_len; i++) {
        if (present && has_scope(sc.s, sc.len, pol->scopes[i])) {
            continue;
        }
        if (!v) {
            v = next(s);
            v->reason = TK_REASON_INSUFFICIENT_SCOPE;
            v->detail[0] = '\0';
            tki_appendf(v->detail, sizeof v->detail, &pos, "needs scope ");
        }
        tki_appendf(v->detail, sizeof v->detail, &pos, "%s\"", missing ? ", " : "");
        tki_append_escaped(v->detail, sizeof v->detail, &pos, pol->scopes[i], strlen(pol->scopes[i]),
                           strlen(pol->scopes[i])); /* the policy's: never cut */
        tki_appendf(v->detail, sizeof v->detail, &pos, "\"");
        missing++;
    }
    if (v) {
        if (present) {
            tki_appendf(v->detail, sizeof v->detail, &pos, "; the token has \"%s\"", q(b, sizeof b, sc.s, sc.len));
        } else {
            say_other_scopes(s, v->detail, sizeof v->detail, &pos);
        }
    }
}

tk_result tk_token_check_claims(const tk_token *t, const tk_policy *pol_in, tk_verdict *out, size_t cap, size_t *n)
{
    if (!n) {
        return TK_ERR_ARG;
    }
    /* Until the checks have run, report one problem: a caller that only
     * looks at *n fails closed on an argument error. */
    *n = 1;
    if (out && cap > 0) {
        tki_verdict_set(&out[0], TK_REASON_UNAVAILABLE, "no decision: invalid arguments or policy");
    }
    if (!t || !pol_in || (!out && cap)) {
        return TK_ERR_ARG;
    }
    /* A policy of another layout (tokend.h, "Conventions") is read into
     * ours; members it does not have keep their defaults. */
    const tk_policy *pol = pol_in;
    tk_policy local;
    if (pol_in->struct_size != sizeof *pol_in) {
        tk_policy_init(&local, 0);
        tk_result r = tki_struct_import(&local, sizeof local, TKI_POLICY_SIZE_V1, pol_in, pol_in->struct_size);
        if (r != TK_OK) {
            return r;
        }
        pol = &local;
    }
    if (pol->leeway < 0 || pol->leeway > TK_LIMIT_LEEWAY_MAX || pol->max_age < 0 ||
        pol->max_age > TK_LIMIT_NUMERICDATE_MAX || pol->now < 0 || pol->now > TK_LIMIT_NUMERICDATE_MAX ||
        pol->issuers_len > TK_LIMIT_POLICY_ITEMS || pol->audiences_len > TK_LIMIT_POLICY_ITEMS ||
        pol->scopes_len > TK_LIMIT_POLICY_ITEMS || pol->required_len > TK_LIMIT_POLICY_ITEMS) {
        return TK_ERR_ARG;
    }
    if (!t->payload && !t->flat) {
        if (cap > 0) {
            out[0] = t->payload_v;
        }
        *n = 1;
        return TK_OK;
    }
    struct sink s = {out, cap, 0, {TK_REASON_VALID, ""}, {t->payload, t->payload ? NULL : t->flat}};
    check_times(pol, &s);
    check_issuer(pol, &s);
    check_audience(pol, &s);
    check_typ(t, pol, &s);
    check_required(pol, &s);
    check_formats(&s);
    check_scope(pol, &s);
    *n = s.n;
    return TK_OK;
}
