/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_authz.c — the Authorization request header (RFC 6750 §2.1,
 * RFC 7235 §2.1): tk_authz_parse.
 *
 * One table of header values with the verdict each must get and, for the
 * accepted ones, the exact token slice. Every value is copied into a heap
 * buffer of exactly its length (no NUL after it), so ASan reports any read
 * past the length the caller gave (tokend.h: untrusted input is never
 * assumed NUL-terminated).
 */
#include "testutil.h"

struct row {
    const char *name;
    const char *value; /* NULL: the request has no Authorization header */
    size_t len;        /* 0: strlen(value) */
    tk_reason want;
    size_t tok_off; /* for VALID: where the token starts in value */
    size_t tok_len;
};

/* clang-format off */
#define OK(name, v, off, tl) {name, v, 0, TK_REASON_VALID, off, tl}
#define BAD(name, v, r) {name, v, 0, r, 0, 0}
#define BADN(name, v, n, r) {name, v, n, r, 0, 0}
/* clang-format on */

static const struct row ROWS[] = {
    {"no header", NULL, 0, TK_REASON_MISSING_TOKEN, 0, 0},
    /* Accepted forms. */
    OK("canonical", "Bearer abc", 7, 3),
    OK("lower-case scheme", "bearer abc", 7, 3),
    OK("upper-case scheme", "BEARER abc", 7, 3),
    OK("mixed-case scheme", "BeArEr abc", 7, 3),
    OK("one-char token", "Bearer a", 7, 1),
    OK("leading SP", " Bearer abc", 8, 3),
    OK("leading HTAB", "\tBearer abc", 8, 3),
    OK("trailing SP", "Bearer abc ", 7, 3),
    OK("trailing HTAB", "Bearer abc\t", 7, 3),
    OK("OWS both sides", " \t Bearer abc \t ", 10, 3),
    OK("trailing padding", "Bearer abc==", 7, 5),
    OK("every b64token char", "Bearer aZ09-._~+/", 7, 10),
    OK("a JWT", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln", 7, 29),
    /* Missing token. */
    BAD("Bearer alone", "Bearer", TK_REASON_MALFORMED_HEADER),
    BAD("Bearer and a space", "Bearer ", TK_REASON_MALFORMED_HEADER),
    BAD("Bearer and spaces", "Bearer   ", TK_REASON_MALFORMED_HEADER),
    BADN("empty value", "", 0, TK_REASON_MALFORMED_HEADER),
    BAD("only whitespace", " \t ", TK_REASON_MALFORMED_HEADER),
    /* Other schemes. */
    BAD("Basic", "Basic dXNlcjpwYXNz", TK_REASON_WRONG_SCHEME),
    BAD("Token", "Token abc", TK_REASON_WRONG_SCHEME),
    BAD("JWT", "JWT abc", TK_REASON_WRONG_SCHEME),
    BAD("Digest", "Digest username=\"x\"", TK_REASON_WRONG_SCHEME),
    BAD("Bearer prefix of a longer scheme", "Bearerx abc", TK_REASON_WRONG_SCHEME),
    BAD("scheme shorter than Bearer", "Beare abc", TK_REASON_WRONG_SCHEME),
    /* Deviations inside the credentials. */
    BAD("two spaces", "Bearer  abc", TK_REASON_MALFORMED_HEADER),
    BAD("tab separator", "Bearer\tabc", TK_REASON_MALFORMED_HEADER),
    BAD("space then tab", "Bearer \tabc", TK_REASON_MALFORMED_HEADER),
    BAD("quoted token", "Bearer \"abc\"", TK_REASON_MALFORMED_HEADER),
    BAD("two tokens", "Bearer abc def", TK_REASON_MALFORMED_HEADER),
    BAD("comma list", "Bearer abc,def", TK_REASON_MALFORMED_HEADER),
    BAD("comma space list", "Bearer abc, Bearer def", TK_REASON_MALFORMED_HEADER),
    BAD("= inside", "Bearer a=b", TK_REASON_MALFORMED_HEADER),
    BAD("= first", "Bearer =abc", TK_REASON_MALFORMED_HEADER),
    BAD("quote after padding", "Bearer abc=\"", TK_REASON_MALFORMED_HEADER),
    BAD("comma first", "Bearer ,abc", TK_REASON_MALFORMED_HEADER),
    BAD("control byte",
        "Bearer ab\x01"
        "c",
        TK_REASON_MALFORMED_HEADER),
    BAD("DEL byte", "Bearer ab\x7f", TK_REASON_MALFORMED_HEADER),
    BAD("UTF-8 in token", "Bearer ab\xc3\xa9", TK_REASON_MALFORMED_HEADER),
    BAD("CR LF injection", "Bearer abc\r\nX-Evil: 1", TK_REASON_MALFORMED_HEADER),
    BADN("NUL inside token", "Bearer abc\0def", 14, TK_REASON_MALFORMED_HEADER),
    BADN("NUL at end", "Bearer abc\0", 11, TK_REASON_MALFORMED_HEADER),
    BADN("NUL first", "Bearer \0abc", 11, TK_REASON_MALFORMED_HEADER),
    BADN("NUL in scheme", "Bea\0rer abc", 11, TK_REASON_MALFORMED_HEADER),
    BAD("control in scheme", "Bea\x01rer abc", TK_REASON_MALFORMED_HEADER),
    /* Regression (fuzz_authz, fuzz/regressions/fuzz_authz/): '/' is a
     * b64token character but not an RFC 9110 tchar, so a scheme holding one
     * is not an auth-scheme at all; it was answered as wrong_scheme, telling
     * the client its (malformed) header merely named another scheme. */
    BAD("'/' in scheme", "Ba/sic abc", TK_REASON_MALFORMED_HEADER),
    BAD("'/' alone as scheme", "/ abc", TK_REASON_MALFORMED_HEADER),
    BAD("tchar-only other scheme", "!#$%&'*+-.^_`|~09Az abc", TK_REASON_WRONG_SCHEME),
    /* No scheme at all. */
    BAD("bare JWT", "eyJ.a.b", TK_REASON_MALFORMED_HEADER),
    BAD("bare opaque token", "abc", TK_REASON_MALFORMED_HEADER),
};

/* Stands for "not yet written" in out-parameters. */
static const char SENTINEL[] = "unset";

/* Runs tk_authz_parse on an exact-length heap copy of the row's value. */
static tk_verdict run(const struct row *r, const char **tok, size_t *tok_len, char **copy_out)
{
    tk_verdict v;
    memset(&v, 0x55, sizeof v);
    *copy_out = NULL;
    if (!r->value) {
        assert_int_equal(tk_authz_parse(NULL, 0, tok, tok_len, &v), TK_OK);
        return v;
    }
    size_t n = r->len ? r->len : strlen(r->value);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, r->value, n);
    assert_int_equal(tk_authz_parse(copy, n, tok, tok_len, &v), TK_OK);
    *copy_out = copy;
    return v;
}

static void test_authz_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        const struct row *r = &ROWS[i];
        const char *tok = SENTINEL;
        size_t tok_len = 99;
        char *copy = NULL;
        tk_verdict v = run(r, &tok, &tok_len, &copy);
        tu_expect_reason(&v, r->want, r->name);
        if (r->want == TK_REASON_VALID) {
            if (tok != copy + r->tok_off || tok_len != r->tok_len) {
                fail_msg("%s: token at %td len %zu, want %zu len %zu", r->name, tok - copy, tok_len, r->tok_off,
                         r->tok_len);
            }
        } else {
            /* Out-parameters are zeroed when there is no token. */
            assert_null(tok);
            assert_int_equal(tok_len, 0);
        }
        free(copy);
    }
}

/* tokend.h: a verdict detail is "printable ASCII only". The detail of a
 * rejected header goes into logs and, escaped, into the client's
 * error_description; a byte outside 0x20..0x7e there is a contract breach. */
static void test_authz_details_printable_ascii(void **state)
{
    (void)state;
    char failures[2048] = "";
    size_t nf = 0;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        const char *tok = NULL;
        size_t tok_len = 0;
        char *copy = NULL;
        tk_verdict v = run(&ROWS[i], &tok, &tok_len, &copy);
        free(copy);
        if (!tu_printable(v.detail, strlen(v.detail))) {
            size_t used = strlen(failures);
            snprintf(failures + used, sizeof failures - used, "\n  %s: %s", ROWS[i].name, v.detail);
            nf++;
        }
    }
    if (nf) {
        fail_msg("%zu verdict details are not printable ASCII:%s", nf, failures);
    }
}

static void test_authz_length_limit(void **state)
{
    (void)state;
    /* "Bearer " + token filling the whole limit: accepted. */
    size_t n = TK_LIMIT_AUTHZ_LEN;
    char *h = malloc(n + 1);
    assert_non_null(h);
    memcpy(h, "Bearer ", 7);
    memset(h + 7, 'a', n + 1 - 7);
    const char *tok = NULL;
    size_t tok_len = 0;
    tk_verdict v;
    assert_int_equal(tk_authz_parse(h, n, &tok, &tok_len, &v), TK_OK);
    tu_expect_reason(&v, TK_REASON_VALID, "header of exactly TK_LIMIT_AUTHZ_LEN");
    assert_ptr_equal(tok, h + 7);
    assert_int_equal(tok_len, n - 7);
    /* One byte more: refused before any parsing. */
    assert_int_equal(tk_authz_parse(h, n + 1, &tok, &tok_len, &v), TK_OK);
    tu_expect_reason(&v, TK_REASON_MALFORMED_HEADER, "header of TK_LIMIT_AUTHZ_LEN + 1");
    assert_null(tok);
    char num[32];
    snprintf(num, sizeof num, "%u", TK_LIMIT_AUTHZ_LEN);
    tu_expect_detail_has(&v, num, "limit named in the detail");
    /* Leading whitespace counts towards the limit too. */
    h[0] = ' ';
    memcpy(h + 1, "Bearer ", 7);
    assert_int_equal(tk_authz_parse(h, n + 1, &tok, &tok_len, &v), TK_OK);
    tu_expect_reason(&v, TK_REASON_MALFORMED_HEADER, "OWS pushing past the limit");
    free(h);
}

static void test_authz_details_name_the_problem(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        size_t len;
        const char *needle;
    } rows[] = {
        {"Basic dXNlcjpwYXNz", 0, "Basic"},
        {"Bearer  abc", 0, "space"},
        {"Bearer \"abc\"", 0, "quote"},
        {"Bearer abc,def", 0, "','"},
        {"Bearer abc def", 0, "offset 10"},
        {"Bearer ab\x01"
         "c",
         0, "0x01"},
        {"Bearer abc\0def", 14, "0x00"},
        {"eyJ.a.b", 0, "Bearer <token>"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = rows[i].len ? rows[i].len : strlen(rows[i].value);
        const char *tok = NULL;
        size_t tl = 0;
        tk_verdict v;
        assert_int_equal(tk_authz_parse(rows[i].value, n, &tok, &tl, &v), TK_OK);
        tu_expect_detail_has(&v, rows[i].needle, rows[i].value);
    }
    /* A long foreign scheme is escaped and cut, never copied whole. */
    char longv[400];
    memset(longv, 'X', 300);
    memcpy(longv + 300, " abc", 5);
    const char *tok = NULL;
    size_t tl = 0;
    tk_verdict v;
    assert_int_equal(tk_authz_parse(longv, strlen(longv), &tok, &tl, &v), TK_OK);
    tu_expect_reason(&v, TK_REASON_WRONG_SCHEME, "long scheme");
    assert_true(strlen(v.detail) < 200);
}

static void test_authz_bad_arguments(void **state)
{
    (void)state;
    const char *tok = SENTINEL;
    size_t tl = 5;
    tk_verdict v;
    assert_int_equal(tk_authz_parse("Bearer abc", 10, NULL, &tl, &v), TK_ERR_ARG);
    assert_int_equal(tl, 0);
    assert_int_equal(tk_authz_parse("Bearer abc", 10, &tok, NULL, &v), TK_ERR_ARG);
    assert_null(tok);
    assert_int_equal(tk_authz_parse("Bearer abc", 10, &tok, &tl, NULL), TK_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authz_table),
        cmocka_unit_test(test_authz_length_limit),
        cmocka_unit_test(test_authz_details_name_the_problem),
        cmocka_unit_test(test_authz_bad_arguments),
        cmocka_unit_test(test_authz_details_printable_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
