/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_claims.c — JWT claims against a policy (RFC 7519 §4.1, RFC 9068 §4,
 * SECURITY.md rules 9–13): every claims reason code produced on purpose,
 * the time boundaries exactly at the leeway, fractional dates rounded
 * against the token, type and range checks, and the reporting of several
 * problems at once.
 *
 * Tokens are real HS256 tokens built with tk_sign. Each case runs twice:
 * tk_token_parse + tk_token_check_claims (all problems), and tk_verify
 * (first problem only), and the two must agree.
 */
#include "testutil.h"

#define T 1700000000LL /* 2023-11-14T22:13:20Z */
#define T_ISO "2023-11-14T22:13:20Z"

static tk_key *g_key;   /* signs; owned by g_ks */
static tk_keyset *g_ks; /* verifies */

static int group_setup(void **state)
{
    (void)state;
    g_key = tu_hs256("k1", 0);
    g_ks = tu_keyset(g_key, (tk_key *)NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tk_keyset_free(g_ks);
    return 0;
}

static char *mk(const char *typ, const char *payload)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(tk_sign(g_key, typ, (const unsigned char *)payload, strlen(payload), &out, &len), TK_OK);
    return out;
}

/*
 * All problems of `payload` (signed with header typ `typ`, NULL = none)
 * under `pol`, into out[0..cap); returns how many. Cross-checks tk_verify:
 * VALID exactly when there is no problem, else the first problem verbatim.
 */
static size_t claims(const char *typ, const char *payload, const tk_policy *pol, tk_verdict *out, size_t cap)
{
    assert_true(cap >= 1);
    char *tok = mk(typ, payload);
    tk_token *t = NULL;
    tk_verdict pv;
    assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &pv), TK_OK);
    assert_non_null(t);
    tu_expect_reason(&pv, TK_REASON_VALID, payload);
    size_t n = 99;
    assert_int_equal(tk_token_check_claims(t, pol, out, cap, &n), TK_OK);
    for (size_t i = 0; i < n && i < cap; i++) {
        tu_check_detail_shape(&out[i], payload);
    }
    tk_verdict v;
    tk_token *vt = NULL;
    assert_int_equal(tk_verify(tok, strlen(tok), g_ks, pol, NULL, &v, &vt), TK_OK);
    if (n == 0) {
        tu_expect_reason(&v, TK_REASON_VALID, payload);
        assert_non_null(vt);
    } else {
        tu_expect_reason(&v, out[0].reason, payload);
        assert_string_equal(v.detail, out[0].detail);
        assert_null(vt);
    }
    tk_token_free(vt);
    tk_token_free(t);
    free(tok);
    return n;
}

/* Exactly one problem `want` (or none when want is VALID); returns it. */
static tk_verdict one(const char *typ, const char *payload, const tk_policy *pol, tk_reason want)
{
    tk_verdict out[TK_LIMIT_PROBLEMS];
    memset(out, 0, sizeof out);
    size_t n = claims(typ, payload, pol, out, TK_LIMIT_PROBLEMS);
    if (want == TK_REASON_VALID) {
        if (n != 0) {
            fail_msg("%s: want valid, got %zu problems, first %s (%s)", payload, n, tk_reason_code(out[0].reason),
                     out[0].detail);
        }
        return out[0];
    }
    if (n != 1 || out[0].reason != want) {
        fail_msg("%s: want exactly %s, got %zu problems, first %s (%s)", payload, tk_reason_code(want), n,
                 n ? tk_reason_code(out[0].reason) : "-", n ? out[0].detail : "");
    }
    return out[0];
}

static tk_policy at(int64_t now, int64_t leeway)
{
    tk_policy p;
    tk_policy_init(&p, now);
    p.leeway = leeway;
    return p;
}

/* ------------------------------------------------------------------------ */

static void test_policy_defaults(void **state)
{
    (void)state;
    tk_policy p;
    memset(&p, 0x7f, sizeof p);
    tk_policy_init(&p, 42);
    assert_int_equal(p.now, 42);
    assert_int_equal(p.leeway, TK_LIMIT_LEEWAY_DEFAULT);
    assert_int_equal(p.leeway, 60);
    assert_int_equal(p.max_age, 0);
    assert_int_equal(p.require_exp, 1);
    assert_null(p.typ);
    assert_int_equal(p.issuers_len + p.audiences_len + p.scopes_len + p.required_len, 0);
}

static void test_valid_access_token(void **state)
{
    (void)state;
    static const char *const iss[] = {"https://issuer.example"};
    static const char *const aud[] = {"api"};
    static const char *const scopes[] = {"orders:write", "orders:read"};
    static const char *const req[] = {"sub", "jti", "client_id"};
    tk_policy p = at(T, 60);
    p.issuers = iss;
    p.issuers_len = 1;
    p.audiences = aud;
    p.audiences_len = 1;
    p.scopes = scopes;
    p.scopes_len = 2;
    p.required = req;
    p.required_len = 3;
    p.typ = "at+jwt";
    p.max_age = 3600;
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"iss\":\"https://issuer.example\",\"sub\":\"user-1\",\"aud\":\"api\",\"exp\":%lld,\"nbf\":%lld,"
             "\"iat\":%lld,\"jti\":\"id-1\",\"client_id\":\"c1\",\"scope\":\"orders:read orders:write\","
             "\"sid\":\"s1\"}",
             T + 900, T, T);
    one("at+jwt", payload, &p, TK_REASON_VALID);

    /* tk_verify hands out the token on VALID; its claims are readable. */
    char *tok = mk("at+jwt", payload);
    tk_verdict v;
    tk_token *t = NULL;
    assert_int_equal(tk_verify(tok, strlen(tok), g_ks, &p, NULL, &v, &t), TK_OK);
    tu_expect_reason(&v, TK_REASON_VALID, "full token");
    assert_non_null(t);
    assert_string_equal(tk_token_claim_string(t, "sub"), "user-1");
    assert_null(tk_token_claim_string(t, "exp"));
    assert_null(tk_token_claim_string(t, "nope"));
    double exp = 0;
    assert_int_equal(tk_token_claim_number(t, "exp", &exp), 1);
    assert_true(exp == (double)(T + 900));
    assert_int_equal(tk_token_claim_number(t, "sub", &exp), 0);
    assert_string_equal(tk_token_typ(t), "at+jwt");
    assert_string_equal(tk_token_kid(t), "k1");
    assert_string_equal(tk_token_alg(t), "HS256");
    tk_token_free(t);
    free(tok);
}

/* Rule 10: expired when now >= exp + leeway. */
static void test_exp_at_leeway_boundary(void **state)
{
    (void)state;
    static const struct {
        int64_t now;
        int64_t leeway;
        tk_reason want;
    } rows[] = {
        {T + 59, 60, TK_REASON_VALID},      {T + 60, 60, TK_REASON_EXPIRED}, {T - 1, 0, TK_REASON_VALID},
        {T, 0, TK_REASON_EXPIRED},          {T + 299, 300, TK_REASON_VALID}, {T + 300, 300, TK_REASON_EXPIRED},
        {T + 86400, 60, TK_REASON_EXPIRED},
    };
    char payload[64];
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", T);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_policy p = at(rows[i].now, rows[i].leeway);
        one(NULL, payload, &p, rows[i].want);
    }
    /* The detail names the time, how long ago, and the leeway. */
    tk_policy p = at(T + 60, 60);
    tk_verdict v = one(NULL, payload, &p, TK_REASON_EXPIRED);
    tu_expect_detail_has(&v, T_ISO, "expired detail has the ISO time");
    tu_expect_detail_has(&v, "1m ago", "expired detail says how long ago");
    tu_expect_detail_has(&v, "(leeway 60s)", "expired detail has the leeway");
    p = at(T + 3 * 60 + 12, 0);
    v = one(NULL, payload, &p, TK_REASON_EXPIRED);
    tu_expect_detail_has(&v, "3m12s ago", "expired detail duration");
    /* exp 0 is a valid NumericDate, long expired. */
    p = at(T, 60);
    v = one(NULL, "{\"exp\":0}", &p, TK_REASON_EXPIRED);
    tu_expect_detail_has(&v, "1970-01-01T00:00:00Z", "exp 0");
}

/* Rule 10: not yet valid when now + leeway < nbf. */
static void test_nbf_at_leeway_boundary(void **state)
{
    (void)state;
    static const struct {
        int64_t now;
        int64_t leeway;
        tk_reason want;
    } rows[] = {
        {T - 60, 60, TK_REASON_VALID},   {T - 61, 60, TK_REASON_NOT_YET_VALID},
        {T, 0, TK_REASON_VALID},         {T - 1, 0, TK_REASON_NOT_YET_VALID},
        {T - 300, 300, TK_REASON_VALID}, {T - 301, 300, TK_REASON_NOT_YET_VALID},
    };
    char payload[80];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"nbf\":%lld}", T + 3600, T);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_policy p = at(rows[i].now, rows[i].leeway);
        one(NULL, payload, &p, rows[i].want);
    }
    tk_policy p = at(T - 61, 60);
    tk_verdict v = one(NULL, payload, &p, TK_REASON_NOT_YET_VALID);
    tu_expect_detail_has(&v, T_ISO, "nbf detail has the ISO time");
    tu_expect_detail_has(&v, "1m1s from now", "nbf detail says how far");
    tu_expect_detail_has(&v, "clock", "nbf detail hints at clock skew");
}

/* Rule 10: issued in the future when iat > now + leeway. */
static void test_iat_at_leeway_boundary(void **state)
{
    (void)state;
    static const struct {
        int64_t now;
        int64_t leeway;
        tk_reason want;
    } rows[] = {
        {T - 60, 60, TK_REASON_VALID},          {T - 61, 60, TK_REASON_ISSUED_IN_FUTURE}, {T, 0, TK_REASON_VALID},
        {T - 1, 0, TK_REASON_ISSUED_IN_FUTURE}, {T + 1000, 0, TK_REASON_VALID},
    };
    char payload[80];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"iat\":%lld}", T + 3600, T);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_policy p = at(rows[i].now, rows[i].leeway);
        one(NULL, payload, &p, rows[i].want);
    }
    tk_policy p = at(T - 120, 60);
    tk_verdict v = one(NULL, payload, &p, TK_REASON_ISSUED_IN_FUTURE);
    tu_expect_detail_has(&v, T_ISO, "iat detail has the ISO time");
    tu_expect_detail_has(&v, "2m in the future", "iat detail says how far");
}

/* Rule 9: fractions are never rounded in the token's favour. Attack: a
 * token with exp 1000.9 must not live until 1001, nor one with nbf 1000.1
 * become valid at 1000. */
static void test_fractional_dates_rounded_against_token(void **state)
{
    (void)state;
    tk_policy p = at(1000, 0);
    tk_verdict v = one(NULL, "{\"exp\":1000.9}", &p, TK_REASON_EXPIRED);
    tu_expect_detail_has(&v, "1970-01-01T00:16:40Z", "exp 1000.9 is treated as 1000");
    p = at(999, 0);
    one(NULL, "{\"exp\":1000.9}", &p, TK_REASON_VALID);

    p = at(1000, 0);
    v = one(NULL, "{\"exp\":2000,\"nbf\":1000.1}", &p, TK_REASON_NOT_YET_VALID);
    tu_expect_detail_has(&v, "1970-01-01T00:16:41Z", "nbf 1000.1 is treated as 1001");
    p = at(1001, 0);
    one(NULL, "{\"exp\":2000,\"nbf\":1000.1}", &p, TK_REASON_VALID);

    p = at(1000, 0);
    one(NULL, "{\"exp\":2000,\"iat\":1000.1}", &p, TK_REASON_ISSUED_IN_FUTURE);
    p = at(1001, 0);
    one(NULL, "{\"exp\":2000,\"iat\":1000.1}", &p, TK_REASON_VALID);

    /* Realistic magnitudes (the fraction survives in a double). */
    char payload[96];
    snprintf(payload, sizeof payload, "{\"exp\":%lld.9}", T);
    p = at(T, 0);
    one(NULL, payload, &p, TK_REASON_EXPIRED);
    p = at(T - 1, 0);
    one(NULL, payload, &p, TK_REASON_VALID);
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"nbf\":%lld.1}", T + 100, T);
    p = at(T, 0);
    one(NULL, payload, &p, TK_REASON_NOT_YET_VALID);

    /* Max age counts from iat rounded down: iat T-100+0.9 with max_age 100
     * is too old at T. */
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"iat\":%lld.9}", T + 100, T - 100);
    p = at(T, 0);
    p.max_age = 100;
    one(NULL, payload, &p, TK_REASON_TOO_OLD);
    p.now = T - 1;
    one(NULL, payload, &p, TK_REASON_VALID);

    /* Integral reals behave like integers. */
    p = at(T, 0);
    snprintf(payload, sizeof payload, "{\"exp\":%lld.0}", T);
    one(NULL, payload, &p, TK_REASON_EXPIRED);
}

/* Rule 9: a NumericDate is a finite JSON number in [0, 253402300799]. */
static void test_numericdate_types_and_range(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"1700003600\"", "\"\"",         "true",
        "false",          "null",         "[]",
        "[1700003600]",   "{}",           "-1",
        "-0.5",           "253402300800", "253402300799.5",
        "1e300",          "-1e300",       "9007199254740993",
    };
    static const char *const names[] = {"exp", "nbf", "iat"};
    tk_policy p = at(T, 60);
    for (size_t c = 0; c < 3; c++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char payload[128];
            if (c == 0) {
                snprintf(payload, sizeof payload, "{\"exp\":%s}", bad[i]);
            } else {
                snprintf(payload, sizeof payload, "{\"exp\":%lld,\"%s\":%s}", T + 3600, names[c], bad[i]);
            }
            tk_verdict v = one(NULL, payload, &p, TK_REASON_INVALID_CLAIM);
            char quoted[8];
            snprintf(quoted, sizeof quoted, "\"%s\"", names[c]);
            tu_expect_detail_has(&v, quoted, payload);
        }
    }
    /* The string case says so. */
    tk_verdict v = one(NULL, "{\"exp\":\"1700003600\"}", &p, TK_REASON_INVALID_CLAIM);
    tu_expect_detail_has(&v, "string", "exp as a string");
    v = one(NULL, "{\"exp\":null}", &p, TK_REASON_INVALID_CLAIM);
    tu_expect_detail_has(&v, "null", "exp null");
    v = one(NULL, "{\"exp\":253402300800}", &p, TK_REASON_INVALID_CLAIM);
    tu_expect_detail_has(&v, "253402300800", "exp out of range names the value");

    /* The limits themselves are fine. */
    one(NULL, "{\"exp\":253402300799}", &p, TK_REASON_VALID);
    one(NULL, "{\"exp\":253402300799.0}", &p, TK_REASON_VALID);
    one(NULL, "{\"exp\":1e10}", &p, TK_REASON_VALID);
    one(NULL, "{\"exp\":253402300799,\"nbf\":0,\"iat\":0}", &p, TK_REASON_VALID);
    one(NULL, "{\"exp\":253402300799,\"nbf\":-0.0}", &p, TK_REASON_VALID);
}

static void test_missing_exp(void **state)
{
    (void)state;
    tk_policy p = at(T, 60);
    tk_verdict v = one(NULL, "{\"sub\":\"x\"}", &p, TK_REASON_MISSING_CLAIM);
    tu_expect_detail_has(&v, "\"exp\"", "missing exp named");
    one(NULL, "{}", &p, TK_REASON_MISSING_CLAIM);
    p.require_exp = 0;
    one(NULL, "{\"sub\":\"x\"}", &p, TK_REASON_VALID);
    one(NULL, "{}", &p, TK_REASON_VALID);
    /* require_exp off does not excuse an invalid exp. */
    one(NULL, "{\"exp\":\"soon\"}", &p, TK_REASON_INVALID_CLAIM);
}

/* Rule 11: iss equals a configured issuer exactly. */
static void test_issuer(void **state)
{
    (void)state;
    static const char *const one_iss[] = {"https://a.example"};
    static const char *const two_iss[] = {"https://b.example", "https://a.example"};
    static const char *const other_two[] = {"https://b.example", "https://c.example"};
    static const struct {
        const char *iss; /* JSON value, NULL = absent */
        const char *const *list;
        size_t n;
        tk_reason want;
    } rows[] = {
        {"\"https://a.example\"", one_iss, 1, TK_REASON_VALID},
        {"\"https://a.example\"", two_iss, 2, TK_REASON_VALID},
        {"\"https://a.example/\"", one_iss, 1, TK_REASON_WRONG_ISSUER},
        {"\"https://A.example\"", one_iss, 1, TK_REASON_WRONG_ISSUER},
        {"\"https://a.exampl\"", one_iss, 1, TK_REASON_WRONG_ISSUER},
        {"\"\"", one_iss, 1, TK_REASON_WRONG_ISSUER},
        {"\"https://a.example\"", other_two, 2, TK_REASON_WRONG_ISSUER},
        {NULL, one_iss, 1, TK_REASON_MISSING_CLAIM},
        {NULL, NULL, 0, TK_REASON_VALID},
        {"\"anything\"", NULL, 0, TK_REASON_VALID},
        {"42", one_iss, 1, TK_REASON_INVALID_CLAIM},
        {"42", NULL, 0, TK_REASON_INVALID_CLAIM},
        {"[\"https://a.example\"]", one_iss, 1, TK_REASON_INVALID_CLAIM},
        {"null", one_iss, 1, TK_REASON_INVALID_CLAIM},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char payload[160];
        if (rows[i].iss) {
            snprintf(payload, sizeof payload, "{\"exp\":%lld,\"iss\":%s}", T + 60, rows[i].iss);
        } else {
            snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
        }
        tk_policy p = at(T, 0);
        p.issuers = rows[i].list;
        p.issuers_len = rows[i].n;
        one(NULL, payload, &p, rows[i].want);
    }
    /* Details: present and expected values. */
    char payload[96];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"iss\":\"https://evil.example\"}", T + 60);
    tk_policy p = at(T, 0);
    p.issuers = one_iss;
    p.issuers_len = 1;
    tk_verdict v = one(NULL, payload, &p, TK_REASON_WRONG_ISSUER);
    tu_expect_detail_has(&v, "https://evil.example", "present issuer");
    tu_expect_detail_has(&v, "https://a.example", "expected issuer");
    p.issuers = two_iss;
    p.issuers_len = 2;
    v = one(NULL, payload, &p, TK_REASON_WRONG_ISSUER);
    tu_expect_detail_has(&v, "one of", "several expected");
    tu_expect_detail_has(&v, "https://b.example", "first expected");
    tu_expect_detail_has(&v, "https://a.example", "second expected");
}

/* Rule 11: aud is a string or a non-empty array of strings; one value
 * equals an expected audience exactly (no prefix, no wildcard, case). */
static void test_audience(void **state)
{
    (void)state;
    static const char *const api[] = {"api"};
    static const char *const two[] = {"web", "api"};
    static const struct {
        const char *aud; /* JSON, NULL = absent */
        const char *const *list;
        size_t n;
        tk_reason want;
    } rows[] = {
        {"\"api\"", api, 1, TK_REASON_VALID},
        {"[\"api\"]", api, 1, TK_REASON_VALID},
        {"[\"x\",\"api\"]", api, 1, TK_REASON_VALID},
        {"\"api\"", two, 2, TK_REASON_VALID},
        {"[\"web\"]", two, 2, TK_REASON_VALID},
        {"\"API\"", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"\"ap\"", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"\"api2\"", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"\"api \"", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"\"*\"", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"\"\"", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"[\"x\",\"y\"]", api, 1, TK_REASON_WRONG_AUDIENCE},
        {"[]", api, 1, TK_REASON_INVALID_CLAIM},
        {"[]", NULL, 0, TK_REASON_INVALID_CLAIM},
        {"[\"api\",1]", api, 1, TK_REASON_INVALID_CLAIM},
        {"[\"api\",null]", api, 1, TK_REASON_INVALID_CLAIM},
        {"[[\"api\"]]", api, 1, TK_REASON_INVALID_CLAIM},
        {"42", api, 1, TK_REASON_INVALID_CLAIM},
        {"{\"api\":true}", api, 1, TK_REASON_INVALID_CLAIM},
        {"true", NULL, 0, TK_REASON_INVALID_CLAIM},
        {NULL, api, 1, TK_REASON_MISSING_CLAIM},
        {NULL, NULL, 0, TK_REASON_VALID},
        {"\"other\"", NULL, 0, TK_REASON_VALID},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char payload[160];
        if (rows[i].aud) {
            snprintf(payload, sizeof payload, "{\"exp\":%lld,\"aud\":%s}", T + 60, rows[i].aud);
        } else {
            snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
        }
        tk_policy p = at(T, 0);
        p.audiences = rows[i].list;
        p.audiences_len = rows[i].n;
        one(NULL, payload, &p, rows[i].want);
    }
    char payload[128];
    tk_policy p = at(T, 0);
    p.audiences = api;
    p.audiences_len = 1;
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"aud\":\"API\"}", T + 60);
    tk_verdict v = one(NULL, payload, &p, TK_REASON_WRONG_AUDIENCE);
    tu_expect_detail_has(&v, "\"API\"", "present audience");
    tu_expect_detail_has(&v, "\"api\"", "expected audience");
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"aud\":[\"billing\",\"web\"]}", T + 60);
    v = one(NULL, payload, &p, TK_REASON_WRONG_AUDIENCE);
    tu_expect_detail_has(&v, "billing", "present audience list");
    tu_expect_detail_has(&v, "web", "present audience list");
    tu_expect_detail_has(&v, "\"api\"", "expected audience");
}

/* Rule 13 / RFC 9068 §2.1: typ compared case-insensitively, with or
 * without "application/"; anything else is another kind of token. */
static void test_typ(void **state)
{
    (void)state;
    static const struct {
        const char *typ; /* header typ, NULL = absent */
        const char *want_typ;
        tk_reason want;
    } rows[] = {
        {"at+jwt", "at+jwt", TK_REASON_VALID},
        {"AT+JWT", "at+jwt", TK_REASON_VALID},
        {"application/at+jwt", "at+jwt", TK_REASON_VALID},
        {"Application/AT+JWT", "at+jwt", TK_REASON_VALID},
        {"at+jwt", "application/at+jwt", TK_REASON_VALID},
        {"JWT", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"jwt", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"application/jwt", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"at+jwt ", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"at+jw", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"application/application/at+jwt", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"logout+jwt", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"", "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {NULL, "at+jwt", TK_REASON_WRONG_TOKEN_TYPE},
        {"JWT", NULL, TK_REASON_VALID},
        {NULL, NULL, TK_REASON_VALID},
    };
    char payload[64];
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_policy p = at(T, 0);
        p.typ = rows[i].want_typ;
        tk_verdict v = one(rows[i].typ, payload, &p, rows[i].want);
        if (rows[i].want == TK_REASON_WRONG_TOKEN_TYPE) {
            tu_expect_detail_has(&v, "at+jwt", "expected typ named");
        }
    }
    tk_policy p = at(T, 0);
    p.typ = "at+jwt";
    tk_verdict v = one("JWT", payload, &p, TK_REASON_WRONG_TOKEN_TYPE);
    tu_expect_detail_has(&v, "\"JWT\"", "present typ named");
    v = one(NULL, payload, &p, TK_REASON_WRONG_TOKEN_TYPE);
    tu_expect_detail_has(&v, "no \"typ\"", "absent typ said");
}

static void test_required_claims(void **state)
{
    (void)state;
    static const char *const req[] = {"sub", "client_id"};
    tk_policy p = at(T, 0);
    p.required = req;
    p.required_len = 2;
    char payload[128];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"sub\":\"u\",\"client_id\":\"c\"}", T + 60);
    one(NULL, payload, &p, TK_REASON_VALID);
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"client_id\":\"c\"}", T + 60);
    tk_verdict v = one(NULL, payload, &p, TK_REASON_MISSING_CLAIM);
    tu_expect_detail_has(&v, "\"sub\"", "missing claim named");
    /* Both missing: two problems, in the order of the policy. */
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
    tk_verdict out[4];
    assert_int_equal(claims(NULL, payload, &p, out, 4), 2);
    assert_int_equal(out[0].reason, TK_REASON_MISSING_CLAIM);
    tu_expect_detail_has(&out[0], "\"sub\"", "first missing");
    assert_int_equal(out[1].reason, TK_REASON_MISSING_CLAIM);
    tu_expect_detail_has(&out[1], "\"client_id\"", "second missing");
    /* Present with a null value is present: not missing, but invalid. */
    static const char *const req_jti[] = {"jti"};
    p.required = req_jti;
    p.required_len = 1;
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
    one(NULL, payload, &p, TK_REASON_MISSING_CLAIM);
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"jti\":null}", T + 60);
    one(NULL, payload, &p, TK_REASON_INVALID_CLAIM);
}

/* Rule 13: jti is 1..256 bytes. */
static void test_jti_and_string_claims(void **state)
{
    (void)state;
    tk_policy p = at(T, 0);
    char jti[300];
    char payload[512];
    static const struct {
        size_t len;
        tk_reason want;
    } rows[] = {{0, TK_REASON_INVALID_CLAIM},
                {1, TK_REASON_VALID},
                {255, TK_REASON_VALID},
                {TK_LIMIT_JTI_LEN, TK_REASON_VALID},
                {TK_LIMIT_JTI_LEN + 1, TK_REASON_INVALID_CLAIM},
                {290, TK_REASON_INVALID_CLAIM}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        memset(jti, 'j', rows[i].len);
        jti[rows[i].len] = '\0';
        snprintf(payload, sizeof payload, "{\"exp\":%lld,\"jti\":\"%s\"}", T + 60, jti);
        tk_verdict v = one(NULL, payload, &p, rows[i].want);
        if (rows[i].want != TK_REASON_VALID) {
            tu_expect_detail_has(&v, "jti", "jti named");
        }
    }
    /* Multi-byte UTF-8: 256 bytes is the limit, not 256 characters. */
    memset(jti, 0, sizeof jti);
    for (size_t i = 0; i < 128; i++) {
        memcpy(jti + 2 * i, "\xc3\xa9", 2);
    }
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"jti\":\"%s\"}", T + 60, jti);
    one(NULL, payload, &p, TK_REASON_VALID);
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"jti\":\"%sx\"}", T + 60, jti);
    one(NULL, payload, &p, TK_REASON_INVALID_CLAIM);

    static const char *const bad[] = {"\"jti\":5",          "\"jti\":null", "\"jti\":[\"a\"]",
                                      "\"sub\":1",          "\"sub\":{}",   "\"client_id\":[]",
                                      "\"client_id\":true", "\"sid\":null", "\"sid\":7"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(payload, sizeof payload, "{\"exp\":%lld,%s}", T + 60, bad[i]);
        one(NULL, payload, &p, TK_REASON_INVALID_CLAIM);
    }
}

/* Rule 12: RFC 6749 §3.3 syntax, exact matches. */
static void test_scope(void **state)
{
    (void)state;
    static const char *const ab[] = {"a", "b"};
    static const char *const ow[] = {"orders:write"};
    static const char *const owr[] = {"orders:writer"};
    static const char *const a[] = {"a"};
    static const struct {
        const char *scope; /* JSON, NULL = absent */
        const char *const *need;
        size_t n;
        tk_reason want;
    } rows[] = {
        {"\"a b\"", ab, 2, TK_REASON_VALID},
        {"\"b a\"", ab, 2, TK_REASON_VALID},
        {"\"x a y b z\"", ab, 2, TK_REASON_VALID},
        {"\"a\"", a, 1, TK_REASON_VALID},
        {"\"a\"", ab, 2, TK_REASON_INSUFFICIENT_SCOPE},
        {"\"orders:write\"", ow, 1, TK_REASON_VALID},
        {"\"orders:writer\"", ow, 1, TK_REASON_INSUFFICIENT_SCOPE},
        {"\"orders:write\"", owr, 1, TK_REASON_INSUFFICIENT_SCOPE},
        {"\"orders\"", ow, 1, TK_REASON_INSUFFICIENT_SCOPE},
        {"\"ab\"", a, 1, TK_REASON_INSUFFICIENT_SCOPE},
        {"\"A\"", a, 1, TK_REASON_INSUFFICIENT_SCOPE},
        {NULL, a, 1, TK_REASON_INSUFFICIENT_SCOPE},
        {NULL, NULL, 0, TK_REASON_VALID},
        {"\"anything goes\"", NULL, 0, TK_REASON_VALID},
        /* Syntax (checked even when no scope is required). */
        {"\"a  b\"", ab, 2, TK_REASON_INVALID_CLAIM},
        {"\" a\"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"a \"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\" \"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"\"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"a\\tb\"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"a\\\"b\"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"a\\\\b\"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"a \\u00e9\"", a, 1, TK_REASON_INVALID_CLAIM},
        {"\"a  b\"", NULL, 0, TK_REASON_INVALID_CLAIM},
        {"[\"a\",\"b\"]", ab, 2, TK_REASON_INVALID_CLAIM},
        {"42", a, 1, TK_REASON_INVALID_CLAIM},
        {"null", NULL, 0, TK_REASON_INVALID_CLAIM},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char payload[160];
        if (rows[i].scope) {
            snprintf(payload, sizeof payload, "{\"exp\":%lld,\"scope\":%s}", T + 60, rows[i].scope);
        } else {
            snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
        }
        tk_policy p = at(T, 0);
        p.scopes = rows[i].need;
        p.scopes_len = rows[i].n;
        one(NULL, payload, &p, rows[i].want);
    }
    /* insufficient_scope names what was needed and what the token has. */
    tk_policy p = at(T, 0);
    p.scopes = owr;
    p.scopes_len = 1;
    char payload[128];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"scope\":\"orders:write orders:read\"}", T + 60);
    tk_verdict v = one(NULL, payload, &p, TK_REASON_INSUFFICIENT_SCOPE);
    tu_expect_detail_has(&v, "\"orders:writer\"", "needed scope");
    tu_expect_detail_has(&v, "orders:write orders:read", "present scopes");
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 60);
    v = one(NULL, payload, &p, TK_REASON_INSUFFICIENT_SCOPE);
    tu_expect_detail_has(&v, "no scope", "absent scope said");
    /* Several missing scopes: one problem naming all. */
    p.scopes = ab;
    p.scopes_len = 2;
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"scope\":\"c\"}", T + 60);
    v = one(NULL, payload, &p, TK_REASON_INSUFFICIENT_SCOPE);
    tu_expect_detail_has(&v, "\"a\", \"b\"", "both missing scopes");
    /* The only 403 of the claims checks. */
    assert_int_equal(tk_reason_status(v.reason), 403);
}

static void test_max_age(void **state)
{
    (void)state;
    char payload[96];
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"iat\":%lld}", T + 3600, T - 100);
    tk_policy p = at(T, 0);
    p.max_age = 100;
    tk_verdict v = one(NULL, payload, &p, TK_REASON_TOO_OLD);
    tu_expect_detail_has(&v, "1m40s ago", "age");
    tu_expect_detail_has(&v, "2023-11-14T22:11:40Z", "iat time");
    tu_expect_detail_has(&v, "up to 1m40s", "max age");
    p.now = T - 1;
    one(NULL, payload, &p, TK_REASON_VALID);
    p.max_age = 101;
    p.now = T;
    one(NULL, payload, &p, TK_REASON_VALID);
    /* Much older with the default leeway. */
    p = at(T + 10000, 60);
    p.max_age = 100;
    snprintf(payload, sizeof payload, "{\"exp\":%lld,\"iat\":%lld}", T + 20000, T - 100);
    one(NULL, payload, &p, TK_REASON_TOO_OLD);
    /* max_age needs iat. */
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", T + 3600);
    p = at(T, 0);
    p.max_age = 100;
    v = one(NULL, payload, &p, TK_REASON_MISSING_CLAIM);
    tu_expect_detail_has(&v, "\"iat\"", "missing iat named");
    /* max_age 0: no limit, iat optional. */
    p.max_age = 0;
    one(NULL, payload, &p, TK_REASON_VALID);
}

/* A policy outside its documented range is a program error, not a verdict. */
static void test_policy_out_of_range(void **state)
{
    (void)state;
    static const char *const many[TK_LIMIT_POLICY_ITEMS + 1] = {"x"};
    char *tok = mk(NULL, "{\"exp\":1700003600}");
    tk_token *t = NULL;
    tk_verdict pv;
    assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &pv), TK_OK);
    struct {
        const char *name;
        tk_policy p;
        tk_result want;
    } rows[8];
    size_t nr = 0;
    rows[nr].name = "leeway 301";
    rows[nr].p = at(T, TK_LIMIT_LEEWAY_MAX + 1);
    rows[nr++].want = TK_ERR_ARG;
    rows[nr].name = "leeway -1";
    rows[nr].p = at(T, -1);
    rows[nr++].want = TK_ERR_ARG;
    rows[nr].name = "leeway 300";
    rows[nr].p = at(T, TK_LIMIT_LEEWAY_MAX);
    rows[nr++].want = TK_OK;
    rows[nr].name = "leeway 0";
    rows[nr].p = at(T, 0);
    rows[nr++].want = TK_OK;
    rows[nr].name = "now -1";
    rows[nr].p = at(-1, 60);
    rows[nr++].want = TK_ERR_ARG;
    rows[nr].name = "max_age -1";
    rows[nr].p = at(T, 60);
    rows[nr].p.max_age = -1;
    rows[nr++].want = TK_ERR_ARG;
    rows[nr].name = "33 issuers";
    rows[nr].p = at(T, 60);
    rows[nr].p.issuers = many;
    rows[nr].p.issuers_len = TK_LIMIT_POLICY_ITEMS + 1;
    rows[nr++].want = TK_ERR_ARG;
    rows[nr].name = "now at the NumericDate ceiling";
    rows[nr].p = at(TK_LIMIT_NUMERICDATE_MAX, 300);
    rows[nr++].want = TK_OK;
    for (size_t i = 0; i < nr; i++) {
        tk_verdict out[4];
        size_t n = 77;
        tk_result rc = tk_token_check_claims(t, &rows[i].p, out, 4, &n);
        if (rc != rows[i].want) {
            fail_msg("%s: check_claims gave %s", rows[i].name, tk_result_str(rc));
        }
        if (rc != TK_OK) {
            /* Fail closed: an argument error still reports one problem. */
            assert_int_equal(n, 1);
            assert_int_equal(out[0].reason, TK_REASON_UNAVAILABLE);
        }
        /* tk_verify fails closed the same way. */
        tk_verdict v;
        tk_token *vt = NULL;
        rc = tk_verify(tok, strlen(tok), g_ks, &rows[i].p, NULL, &v, &vt);
        if (rows[i].want != TK_OK) {
            assert_int_equal(rc, rows[i].want);
            /* Fails closed: "the verifier failed", never a verdict on the token. */
            tu_expect_reason(&v, TK_REASON_UNAVAILABLE, rows[i].name);
            assert_null(vt);
        }
        tk_token_free(vt);
    }
    size_t n = 0;
    tk_policy p = at(T, 60);
    assert_int_equal(tk_token_check_claims(t, NULL, NULL, 0, &n), TK_ERR_ARG);
    assert_int_equal(tk_token_check_claims(NULL, &p, NULL, 0, &n), TK_ERR_ARG);
    assert_int_equal(tk_token_check_claims(t, &p, NULL, 0, NULL), TK_ERR_ARG);
    assert_int_equal(tk_token_check_claims(t, &p, NULL, 3, &n), TK_ERR_ARG);
    tk_token_free(t);
    free(tok);
}

/* Every problem is reported, in check order; *n counts them all even when
 * the caller's array is smaller. */
static void test_multiple_problems_in_order(void **state)
{
    (void)state;
    static const char *const iss[] = {"https://good.example"};
    static const char *const aud[] = {"api"};
    static const char *const req[] = {"sub"};
    static const char *const scopes[] = {"read"};
    static const tk_reason order[] = {
        TK_REASON_EXPIRED,       TK_REASON_NOT_YET_VALID,  TK_REASON_ISSUED_IN_FUTURE,
        TK_REASON_WRONG_ISSUER,  TK_REASON_WRONG_AUDIENCE, TK_REASON_WRONG_TOKEN_TYPE,
        TK_REASON_MISSING_CLAIM, TK_REASON_INVALID_CLAIM,  TK_REASON_INSUFFICIENT_SCOPE,
    };
    const size_t total = sizeof order / sizeof order[0];
    tk_policy p = at(T, 60);
    p.issuers = iss;
    p.issuers_len = 1;
    p.audiences = aud;
    p.audiences_len = 1;
    p.required = req;
    p.required_len = 1;
    p.scopes = scopes;
    p.scopes_len = 1;
    p.typ = "at+jwt";
    char payload[256];
    snprintf(payload, sizeof payload,
             "{\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld,\"iss\":\"https://evil.example\",\"aud\":\"other\","
             "\"jti\":\"\",\"scope\":\"write\"}",
             T - 1000, T + 1000, T + 1000);
    tk_verdict out[TK_LIMIT_PROBLEMS];
    size_t n = claims("JWT", payload, &p, out, TK_LIMIT_PROBLEMS);
    assert_int_equal(n, total);
    for (size_t i = 0; i < total; i++) {
        if (out[i].reason != order[i]) {
            fail_msg("problem %zu is %s (%s), want %s", i, tk_reason_code(out[i].reason), out[i].detail,
                     tk_reason_code(order[i]));
        }
    }

    /* A smaller array: the first `cap` written, the rest counted only. */
    char *tok = mk("JWT", payload);
    tk_token *t = NULL;
    tk_verdict pv;
    assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &pv), TK_OK);
    tk_verdict small[4];
    memset(small, 0, sizeof small);
    small[3].reason = TK_REASON_REVOKED;
    strcpy(small[3].detail, "sentinel");
    n = 0;
    assert_int_equal(tk_token_check_claims(t, &p, small, 3, &n), TK_OK);
    assert_int_equal(n, total);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(small[i].reason, order[i]);
        assert_string_equal(small[i].detail, out[i].detail);
    }
    assert_int_equal(small[3].reason, TK_REASON_REVOKED);
    assert_string_equal(small[3].detail, "sentinel");
    /* No array at all: just the count. */
    n = 0;
    assert_int_equal(tk_token_check_claims(t, &p, NULL, 0, &n), TK_OK);
    assert_int_equal(n, total);
    /* tk_verify stops at the first. */
    tk_verdict v;
    assert_int_equal(tk_verify(tok, strlen(tok), g_ks, &p, NULL, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_EXPIRED, "tk_verify reports the first problem");
    tk_token_free(t);
    free(tok);
}

/* A payload that is not a claims object: check_claims passes on the
 * payload's own verdict. */
static void test_claims_of_undecodable_payload(void **state)
{
    (void)state;
    char *tok = mk(NULL, "[1,2]");
    tk_token *t = NULL;
    tk_verdict pv;
    assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &pv), TK_OK);
    assert_non_null(t);
    tu_expect_reason(&pv, TK_REASON_MALFORMED_TOKEN, "payload array");
    tk_policy p = at(T, 60);
    tk_verdict out[2];
    size_t n = 0;
    assert_int_equal(tk_token_check_claims(t, &p, out, 2, &n), TK_OK);
    assert_int_equal(n, 1);
    tu_expect_reason(&out[0], TK_REASON_MALFORMED_TOKEN, "claims of a payload array");
    tk_token_free(t);
    free(tok);
}

/* tokend.h: every verdict detail is printable ASCII. One payload per
 * claims reason; token-supplied text (here UTF-8 and control characters)
 * must come out escaped. */
static void test_claims_details_printable_ascii(void **state)
{
    (void)state;
    static const char *const iss[] = {"https://good.example"};
    static const char *const aud[] = {"api"};
    static const char *const req[] = {"sub"};
    static const char *const scopes[] = {"read"};
    static const struct {
        const char *name;
        const char *typ;
        const char *payload;
    } rows[] = {
        {"expired", NULL, "{\"exp\":1000}"},
        {"not_yet_valid", NULL, "{\"exp\":253402300799,\"nbf\":253402300000}"},
        {"issued_in_future", NULL, "{\"exp\":253402300799,\"iat\":253402300000}"},
        {"wrong_issuer", NULL, "{\"exp\":253402300799,\"iss\":\"\\u00e9vil\\u0001\"}"},
        {"wrong_audience", NULL, "{\"exp\":253402300799,\"aud\":[\"\\u00e9\",\"\\u0007\"]}"},
        {"wrong_token_type", "\xc3\xa9+jwt", "{\"exp\":253402300799}"},
        {"missing_claim", NULL, "{\"exp\":253402300799,\"aud\":\"api\"}"},
        {"invalid_claim exp", NULL, "{\"exp\":\"\\u00e9\\n\"}"},
        {"invalid_claim scope syntax", NULL, "{\"exp\":253402300799,\"scope\":\"a  b\"}"},
        {"invalid_claim scope type", NULL, "{\"exp\":253402300799,\"scope\":[\"a\"]}"},
        {"insufficient_scope", NULL, "{\"exp\":253402300799,\"scope\":\"\\u00e9crire\"}"},
        {"too_old", NULL, "{\"exp\":253402300799,\"iat\":1000}"},
    };
    char failures[3072] = "";
    size_t nf = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_policy p = at(T, 60);
        p.max_age = 3600;
        p.typ = "at+jwt";
        p.issuers = iss;
        p.issuers_len = 1;
        p.audiences = aud;
        p.audiences_len = 1;
        p.required = req;
        p.required_len = 1;
        p.scopes = scopes;
        p.scopes_len = 1;
        char *tok = mk(rows[i].typ ? rows[i].typ : "at+jwt", rows[i].payload);
        tk_token *t = NULL;
        tk_verdict pv;
        assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &pv), TK_OK);
        tk_verdict out[TK_LIMIT_PROBLEMS];
        size_t n = 0;
        assert_int_equal(tk_token_check_claims(t, &p, out, TK_LIMIT_PROBLEMS, &n), TK_OK);
        assert_true(n > 0);
        for (size_t k = 0; k < n && k < TK_LIMIT_PROBLEMS; k++) {
            if (!tu_printable(out[k].detail, strlen(out[k].detail))) {
                size_t used = strlen(failures);
                snprintf(failures + used, sizeof failures - used, "\n  %s -> %s: %s", rows[i].name,
                         tk_reason_code(out[k].reason), out[k].detail);
                nf++;
            }
        }
        tk_token_free(t);
        free(tok);
    }
    if (nf) {
        fail_msg("%zu claims verdict details are not printable ASCII:%s", nf, failures);
    }
}

/* ---- messages of issue 12: each one produced on purpose --------------------- */

static void expect_msg(const tk_verdict *v, const char *needle, const char *hint_needle)
{
    if (!strstr(v->detail, needle)) {
        fail_msg("detail \"%s\" does not contain \"%s\"", v->detail, needle);
    }
    if (hint_needle && !strstr(tk_verdict_hint(v), hint_needle)) {
        fail_msg("hint \"%s\" does not contain \"%s\"", tk_verdict_hint(v), hint_needle);
    }
}

/* Scopes in scp (Entra, Okta: string or array) or roles: the token is told
 * where its scopes are and what they hold, not "request the scope". */
static void test_scope_in_other_claim(void **state)
{
    (void)state;
    static const char *const need[] = {"orders:write"};
    tk_policy p = at(T, 60);
    p.scopes = need;
    p.scopes_len = 1;
    tk_verdict v =
        one(NULL, "{\"exp\":1800000000,\"scp\":\"orders.read orders.write\"}", &p, TK_REASON_INSUFFICIENT_SCOPE);
    expect_msg(&v,
               "needs scope \"orders:write\"; the token has no \"scope\" claim: it carries its scopes in \"scp\" "
               "(\"orders.read orders.write\"), which this verifier does not read as scopes",
               "tell the verifier to read that claim");
    v = one(NULL, "{\"exp\":1800000000,\"scp\":[\"orders.read\",\"orders.write\"]}", &p, TK_REASON_INSUFFICIENT_SCOPE);
    expect_msg(&v, "it carries its scopes in \"scp\" ([\"orders.read\", \"orders.write\"])", "scope-claim");
    v = one(NULL, "{\"exp\":1800000000,\"roles\":[\"Orders.Write\"]}", &p, TK_REASON_INSUFFICIENT_SCOPE);
    expect_msg(&v, "it carries its scopes in \"roles\" ([\"Orders.Write\"])", NULL);
    /* no scopes anywhere: the usual words and hint */
    v = one(NULL, "{\"exp\":1800000000}", &p, TK_REASON_INSUFFICIENT_SCOPE);
    expect_msg(&v, "needs scope \"orders:write\"; the token has no scope claim", "Request a token with the scope");
    /* a long required scope is never cut */
    static const char *const longs[] = {"https://graph.example.com/very/long/resource/identifier/orders.readwrite.all"};
    p.scopes = longs;
    v = one(NULL, "{\"exp\":1800000000,\"scope\":\"a\"}", &p, TK_REASON_INSUFFICIENT_SCOPE);
    expect_msg(&v, longs[0], NULL);
}

/* "two spaces between 'a' and 'b'", and the other syntax faults by name. */
static void test_scope_syntax_words(void **state)
{
    (void)state;
    static const struct {
        const char *scope;
        const char *want;
    } rows[] = {
        {"\"a  b\"", "two spaces between 'a' and 'b'"},
        {"\"orders:read   orders:write\"", "three spaces between 'orders:read' and 'orders:write'"},
        {"\" a\"", "it starts with a space"},
        {"\"a \"", "it ends with a space"},
        {"\"a  \"", "it ends with spaces"},
        {"\"a\\tb\"", "a tab at offset 1"},
        {"\"a\\\"b\"", "'\"' at offset 1 is not allowed in a scope"},
        {"\"caf\\u00e9\"", "byte 0xc3 at offset 3: a scope is printable ASCII"},
        {"\"\"", "it is empty"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char payload[200];
        snprintf(payload, sizeof payload, "{\"exp\":1800000000,\"scope\":%s}", rows[i].scope);
        tk_policy p = at(T, 60);
        tk_verdict v = one(NULL, payload, &p, TK_REASON_INVALID_CLAIM);
        expect_msg(&v, rows[i].want, NULL);
        expect_msg(&v, "(RFC 6749 section 3.3)", NULL);
    }
    tk_policy p = at(T, 60);
    tk_verdict v = one(NULL, "{\"exp\":1800000000,\"scope\":\"a  b\"}", &p, TK_REASON_INVALID_CLAIM);
    expect_msg(&v, "two spaces", "exactly one space");
}

/* A NumericDate 1000 times too large: milliseconds (and us, ns). */
static void test_time_claim_units(void **state)
{
    (void)state;
    static const struct {
        const char *payload;
        const char *want;
    } rows[] = {
        {"{\"exp\":1800000000000}", "\"exp\" is 1800000000000: milliseconds instead of seconds? (as milliseconds it "
                                    "is 2027-01-15T08:00:00Z)"},
        {"{\"exp\":1800000000,\"iat\":1700000000000}", "\"iat\" is 1700000000000: milliseconds instead of seconds?"},
        {"{\"exp\":1800000000,\"nbf\":1.7e12}", "\"nbf\" is 1700000000000: milliseconds instead of seconds?"},
        {"{\"exp\":1800000000000000}", "microseconds instead of seconds?"},
        {"{\"exp\":1800000000000000000}", "nanoseconds instead of seconds?"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_policy p = at(T, 60);
        tk_verdict v = one(NULL, rows[i].payload, &p, TK_REASON_INVALID_CLAIM);
        expect_msg(&v, rows[i].want, "not milliseconds");
    }
    /* out of range but no unit fits: the plain range message */
    tk_policy p = at(T, 60);
    tk_verdict v = one(NULL, "{\"exp\":50000000000000}", &p, TK_REASON_INVALID_CLAIM);
    expect_msg(&v, "outside [0, 253402300799]", "fix the issuer");
}

/* Expected values are never cut: an Entra issuer whole, beside the token's. */
static void test_expected_values_not_cut(void **state)
{
    (void)state;
    static const char *const iss[] = {"https://login.microsoftonline.com/aaaaaaaa-86f1-41af-91ab-2d7cd011db47/v2.0"};
    tk_policy p = at(T, 60);
    p.issuers = iss;
    p.issuers_len = 1;
    tk_verdict v = one(NULL,
                       "{\"exp\":1800000000,\"iss\":\"https://login.microsoftonline.com/"
                       "72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0\"}",
                       &p, TK_REASON_WRONG_ISSUER);
    assert_string_equal(v.detail, "issuer is \"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/"
                                  "v2.0\"; expected \"https://login.microsoftonline.com/"
                                  "aaaaaaaa-86f1-41af-91ab-2d7cd011db47/v2.0\"");
    /* a token value long enough to fill the detail gives way to the expected one */
    char payload[1200];
    char longiss[700];
    memset(longiss, 'x', sizeof longiss - 1);
    longiss[sizeof longiss - 1] = '\0';
    snprintf(payload, sizeof payload, "{\"exp\":1800000000,\"iss\":\"%s\"}", longiss);
    v = one(NULL, payload, &p, TK_REASON_WRONG_ISSUER);
    expect_msg(&v, "...\"; expected \"https://login.microsoftonline.com/aaaaaaaa-86f1-41af-91ab-2d7cd011db47/v2.0\"",
               NULL);
    /* audiences too */
    static const char *const aud[] = {"api://11111111-2222-3333-4444-555555555555/orders-service-production"};
    p = at(T, 60);
    p.audiences = aud;
    p.audiences_len = 1;
    v = one(NULL, "{\"exp\":1800000000,\"aud\":[\"a\",\"b\"]}", &p, TK_REASON_WRONG_AUDIENCE);
    expect_msg(&v,
               "audience is [\"a\", \"b\"]; expected \"api://11111111-2222-3333-4444-555555555555/"
               "orders-service-production\"",
               NULL);
}

/* A duplicate member: refused, named, and the fix says it is the issuer's bug. */
static void test_duplicate_member_is_issuer_bug(void **state)
{
    (void)state;
    static const char payload[] = "{\"sub\":\"a\",\"exp\":1800000000,\"sub\":\"b\"}";
    char *tok = tu_sign(g_key, "{\"alg\":\"HS256\",\"kid\":\"k1\"}", payload);
    tk_token *t = NULL;
    tk_verdict v;
    assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &v), TK_OK);
    const tk_verdict *pv = tk_token_payload_verdict(t);
    tu_expect_reason(pv, TK_REASON_MALFORMED_TOKEN, payload);
    expect_msg(pv, "payload (segment 2): member \"sub\" appears twice (line 1 column", "A bug of the issuer");
    tk_token_free(t);
    free(tok);
    /* other malformed tokens keep the usual hint */
    tk_verdict other = {TK_REASON_MALFORMED_TOKEN, "the token is empty"};
    assert_string_equal(tk_verdict_hint(&other), tk_reason_hint(TK_REASON_MALFORMED_TOKEN));
    assert_string_equal(tk_verdict_hint(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_defaults),
        cmocka_unit_test(test_valid_access_token),
        cmocka_unit_test(test_exp_at_leeway_boundary),
        cmocka_unit_test(test_nbf_at_leeway_boundary),
        cmocka_unit_test(test_iat_at_leeway_boundary),
        cmocka_unit_test(test_fractional_dates_rounded_against_token),
        cmocka_unit_test(test_numericdate_types_and_range),
        cmocka_unit_test(test_missing_exp),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_typ),
        cmocka_unit_test(test_required_claims),
        cmocka_unit_test(test_jti_and_string_claims),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_policy_out_of_range),
        cmocka_unit_test(test_multiple_problems_in_order),
        cmocka_unit_test(test_claims_of_undecodable_payload),
        cmocka_unit_test(test_claims_details_printable_ascii),
        cmocka_unit_test(test_scope_in_other_claim),
        cmocka_unit_test(test_scope_syntax_words),
        cmocka_unit_test(test_time_claim_units),
        cmocka_unit_test(test_expected_values_not_cut),
        cmocka_unit_test(test_duplicate_member_is_issuer_bug),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
