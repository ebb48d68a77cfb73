/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_verdict.c — the reason-code table (DESIGN.md "Verdicts"), results,
 * and the formatting helpers used in verdict details (tk_format_time,
 * tk_format_duration, and the internal bounded appenders).
 *
 * Reason codes are public API: the table below is the contract (code,
 * RFC 6750 §3.1 error, HTTP status) written out independently of
 * verdict.c, so that a renamed code or a changed status fails here.
 */
#include <ctype.h>

#include "testutil.h"

#include "core/internal.h"

static const struct {
    tk_reason r;
    const char *code;
    const char *error; /* NULL: the answer carries no error attribute */
    int status;
} TABLE[] = {
    {TK_REASON_VALID, "valid", NULL, 200},
    {TK_REASON_MISSING_TOKEN, "missing_token", NULL, 401},
    {TK_REASON_WRONG_SCHEME, "wrong_scheme", "invalid_request", 400},
    {TK_REASON_MALFORMED_HEADER, "malformed_header", "invalid_request", 400},
    {TK_REASON_MALFORMED_TOKEN, "malformed_token", "invalid_token", 401},
    {TK_REASON_UNSUPPORTED_TOKEN_TYPE, "unsupported_token_type", "invalid_token", 401},
    {TK_REASON_ALG_NOT_ALLOWED, "alg_not_allowed", "invalid_token", 401},
    {TK_REASON_UNKNOWN_KEY, "unknown_key", "invalid_token", 401},
    {TK_REASON_BAD_SIGNATURE, "bad_signature", "invalid_token", 401},
    {TK_REASON_EXPIRED, "expired", "invalid_token", 401},
    {TK_REASON_NOT_YET_VALID, "not_yet_valid", "invalid_token", 401},
    {TK_REASON_ISSUED_IN_FUTURE, "issued_in_future", "invalid_token", 401},
    {TK_REASON_WRONG_ISSUER, "wrong_issuer", "invalid_token", 401},
    {TK_REASON_WRONG_AUDIENCE, "wrong_audience", "invalid_token", 401},
    {TK_REASON_WRONG_TOKEN_TYPE, "wrong_token_type", "invalid_token", 401},
    {TK_REASON_MISSING_CLAIM, "missing_claim", "invalid_token", 401},
    {TK_REASON_INVALID_CLAIM, "invalid_claim", "invalid_token", 401},
    {TK_REASON_REVOKED, "revoked", "invalid_token", 401},
    {TK_REASON_INSUFFICIENT_SCOPE, "insufficient_scope", "insufficient_scope", 403},
    {TK_REASON_UNAVAILABLE, "unavailable", NULL, 503},
    {TK_REASON_EMBEDDED_KEY, "embedded_key", "invalid_token", 401},
    {TK_REASON_TOO_OLD, "too_old", "invalid_token", 401},
};

static void test_table_covers_every_reason(void **state)
{
    (void)state;
    /* A reason appended to the enum must be added to this table too. */
    assert_int_equal(sizeof TABLE / sizeof TABLE[0], (size_t)TK_REASON_COUNT_);
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++) {
        assert_int_equal(TABLE[i].r, (tk_reason)i);
    }
}

static void test_reason_code_error_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++) {
        tk_reason r = TABLE[i].r;
        assert_string_equal(tk_reason_code(r), TABLE[i].code);
        const char *err = tk_reason_error(r);
        if (TABLE[i].error == NULL) {
            if (err != NULL) {
                fail_msg("%s: error \"%s\", want none", TABLE[i].code, err);
            }
        } else {
            assert_non_null(err);
            assert_string_equal(err, TABLE[i].error);
        }
        assert_int_equal(tk_reason_status(r), TABLE[i].status);
    }
}

static void test_codes_unique_lowercase(void **state)
{
    (void)state;
    for (unsigned i = 0; i < TK_REASON_COUNT_; i++) {
        const char *c = tk_reason_code((tk_reason)i);
        assert_non_null(c);
        assert_true(strlen(c) > 0);
        for (const char *p = c; *p; p++) {
            if (!(islower((unsigned char)*p) || *p == '_')) {
                fail_msg("code \"%s\" has character '%c'", c, *p);
            }
        }
        for (unsigned j = 0; j < i; j++) {
            if (strcmp(c, tk_reason_code((tk_reason)j)) == 0) {
                fail_msg("code \"%s\" used by reasons %u and %u", c, j, i);
            }
        }
    }
}

static void test_hints(void **state)
{
    (void)state;
    for (unsigned i = 0; i < TK_REASON_COUNT_; i++) {
        const char *h = tk_reason_hint((tk_reason)i);
        assert_non_null(h);
        if (strlen(h) < 10) {
            fail_msg("hint of %s is too short: \"%s\"", tk_reason_code((tk_reason)i), h);
        }
        if (!tu_printable(h, strlen(h))) {
            fail_msg("hint of %s is not printable ASCII: %s", tk_reason_code((tk_reason)i), h);
        }
    }
}

static void test_out_of_range_reason(void **state)
{
    (void)state;
    tk_reason bad = TK_REASON_COUNT_;
    assert_string_equal(tk_reason_code(bad), "unknown");
    assert_string_equal(tk_reason_error(bad), "invalid_token");
    assert_int_equal(tk_reason_status(bad), 401);
    assert_string_equal(tk_reason_hint(bad), "");
}

static void test_reason_from_code(void **state)
{
    (void)state;
    for (unsigned i = 0; i < TK_REASON_COUNT_; i++) {
        const char *c = tk_reason_code((tk_reason)i);
        tk_reason out = TK_REASON_COUNT_;
        assert_int_equal(tk_reason_from_code(c, strlen(c), &out), 1);
        assert_int_equal(out, (tk_reason)i);
    }
    static const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {"", 0},         {"unknown", 7},   {"EXPIRED", 7},  {"expire", 6},
        {"expiredd", 8}, {"expired\0", 8}, {" expired", 8}, {"Valid", 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_reason out = TK_REASON_REVOKED;
        if (tk_reason_from_code(bad[i].p, bad[i].n, &out) != 0) {
            fail_msg("\"%.*s\" parsed as a reason code", (int)bad[i].n, bad[i].p);
        }
        assert_int_equal(out, TK_REASON_REVOKED); /* untouched */
    }
    /* The length decides, not a NUL: "expiredXYZ" with length 7. */
    tk_reason out = TK_REASON_VALID;
    assert_int_equal(tk_reason_from_code("expiredXYZ", 7, &out), 1);
    assert_int_equal(out, TK_REASON_EXPIRED);
    assert_int_equal(tk_reason_from_code(NULL, 0, &out), 0);
    assert_int_equal(tk_reason_from_code("valid", 5, NULL), 0);
}

static void test_result_str(void **state)
{
    (void)state;
    static const tk_result all[] = {TK_OK,         TK_ERR_NOMEM, TK_ERR_ARG,  TK_ERR_KEY,  TK_ERR_UNSUPPORTED,
                                    TK_ERR_CRYPTO, TK_ERR_LIMIT, TK_ERR_JSON, TK_ERR_STATE};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *s = tk_result_str(all[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(s, tk_result_str(all[j]));
        }
    }
    assert_int_equal(TK_OK, 0);
    assert_non_null(tk_result_str((tk_result)99));
}

static void test_format_time(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *s;
    } rows[] = {
        {0, "1970-01-01T00:00:00Z"},
        {1, "1970-01-01T00:00:01Z"},
        {86399, "1970-01-01T23:59:59Z"},
        {951782400, "2000-02-29T00:00:00Z"}, /* leap day of a /400 year */
        {951868799, "2000-02-29T23:59:59Z"},
        {951868800, "2000-03-01T00:00:00Z"},
        {1300819380, "2011-03-22T18:43:00Z"}, /* RFC 7519 §3.1 exp */
        {1700000000, "2023-11-14T22:13:20Z"},
        {4107456000, "2100-02-28T00:00:00Z"},
        {4107542400, "2100-03-01T00:00:00Z"}, /* 2100 is not a leap year */
        {253402300799, "9999-12-31T23:59:59Z"},
        {-1, "out of range"},
        {253402300800, "out of range"},
        {INT64_MIN, "out of range"},
        {INT64_MAX, "out of range"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[32];
        memset(buf, 'x', sizeof buf);
        tk_format_time(rows[i].t, buf, sizeof buf);
        assert_string_equal(buf, rows[i].s);
    }
    /* Exactly 21 bytes suffice; a smaller buffer is cut, NUL-terminated. */
    char b21[21];
    tk_format_time(253402300799, b21, sizeof b21);
    assert_string_equal(b21, "9999-12-31T23:59:59Z");
    char b5[5];
    tk_format_time(0, b5, sizeof b5);
    assert_string_equal(b5, "1970");
    char b1[1] = {'x'};
    tk_format_time(0, b1, 0); /* cap 0: untouched */
    assert_int_equal(b1[0], 'x');
    tk_format_time(0, NULL, 32); /* no crash */
}

static void test_format_duration(void **state)
{
    (void)state;
    static const struct {
        int64_t s;
        const char *out;
    } rows[] = {
        {0, "0s"},
        {1, "1s"},
        {59, "59s"},
        {60, "1m"},
        {61, "1m1s"},
        {192, "3m12s"},
        {3599, "59m59s"},
        {3600, "1h"},
        {3660, "1h1m"},
        {3661, "1h1m"},
        {86399, "23h59m"},
        {86400, "1d"},
        {86400 + 3600, "1d1h"},
        {2 * 86400 + 3 * 3600 + 59, "2d3h"},
        {-1, "1s"},
        {-60, "1m"},
        {-(86400 + 3600), "1d1h"},
        {INT64_MAX, "106751991167300d15h"},
        {INT64_MIN, "106751991167300d15h"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[24];
        tk_format_duration(rows[i].s, buf, sizeof buf);
        if (strcmp(buf, rows[i].out) != 0) {
            fail_msg("tk_format_duration(%lld) = \"%s\", want \"%s\"", (long long)rows[i].s, buf, rows[i].out);
        }
    }
    char b3[3];
    tk_format_duration(3599, b3, sizeof b3);
    assert_string_equal(b3, "59");
    tk_format_duration(1, NULL, 24);
}

/* The internal detail writers: bounded, NUL-terminated, cut with "...". */
static void test_verdict_set_cuts_long_details(void **state)
{
    (void)state;
    tk_verdict v;
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tki_verdict_set(&v, TK_REASON_EXPIRED, "%s", big);
    assert_int_equal(v.reason, TK_REASON_EXPIRED);
    assert_int_equal(strlen(v.detail), TK_LIMIT_DETAIL_LEN - 1);
    assert_string_equal(v.detail + TK_LIMIT_DETAIL_LEN - 4, "...");
    /* Exactly fitting: not cut. */
    big[TK_LIMIT_DETAIL_LEN - 1] = '\0';
    tki_verdict_set(&v, TK_REASON_EXPIRED, "%s", big);
    assert_int_equal(strlen(v.detail), TK_LIMIT_DETAIL_LEN - 1);
    assert_int_equal(v.detail[TK_LIMIT_DETAIL_LEN - 2], 'y');
    tki_verdict_valid(&v);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_string_equal(v.detail, "");
}

static void test_append_escaped(void **state)
{
    (void)state;
    char buf[64];
    size_t pos = 0;
    tki_append_escaped(buf, sizeof buf, &pos, "a\"b\\c\x01\x7f\xc3\xa9\0z", 11, 64);
    assert_string_equal(buf, "a\\x22b\\x5cc\\x01\\x7f\\xc3\\xa9\\x00z");
    assert_int_equal(pos, strlen(buf));
    assert_true(tu_printable(buf, strlen(buf)));
    /* Cut at `max` source bytes, then "...". */
    pos = 0;
    tki_append_escaped(buf, sizeof buf, &pos, "abcdefgh", 8, 3);
    assert_string_equal(buf, "abc...");
    /* Never past cap, always NUL-terminated. */
    char small[8];
    pos = 0;
    tki_append_escaped(small, sizeof small, &pos, "\x01\x02\x03\x04", 4, 64);
    assert_true(pos < sizeof small);
    assert_int_equal(strlen(small), pos);
    /* Appending after existing text. */
    pos = 0;
    tki_appendf(buf, sizeof buf, &pos, "kid \"");
    tki_append_escaped(buf, sizeof buf, &pos, "k1", 2, 40);
    tki_appendf(buf, sizeof buf, &pos, "\" (%d)", 7);
    assert_string_equal(buf, "kid \"k1\" (7)");
    /* tki_appendf cut with "..." at cap. */
    char b10[10];
    pos = 0;
    tki_appendf(b10, sizeof b10, &pos, "%s", "0123456789abcdef");
    assert_int_equal(strlen(b10), 9);
    assert_string_equal(b10 + 6, "...");
    tki_appendf(b10, sizeof b10, &pos, "more");
    assert_int_equal(strlen(b10), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_covers_every_reason),
        cmocka_unit_test(test_reason_code_error_status),
        cmocka_unit_test(test_codes_unique_lowercase),
        cmocka_unit_test(test_hints),
        cmocka_unit_test(test_out_of_range_reason),
        cmocka_unit_test(test_reason_from_code),
        cmocka_unit_test(test_result_str),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_verdict_set_cuts_long_details),
        cmocka_unit_test(test_append_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
