/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_input.c — tk_input_diagnose (src/core/input.c): what was pasted
 * where a token was expected, and the same sentence through
 * tk_authz_parse when that input is sent as an Authorization header.
 *
 * One table: the input, the kind, the verdict, a piece the sentence must
 * hold (its position), and the repaired token (NULL: none offered). Every
 * input is copied into a heap buffer of exactly its length, so ASan
 * reports a read past it.
 */
#include <strings.h>

#include "testutil.h"

/* A token-shaped JWT (the diagnoser does not decode it). */
#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"

struct row {
    const char *name;
    const char *in;
    tk_input_kind kind;
    tk_reason reason;
    const char *says;  /* a piece of the sentence */
    const char *clean; /* the repaired token; NULL: none */
};

/* clang-format off */
static const struct row ROWS[] = {
    /* Nothing to say: left to the strict parsers. */
    {"bare token", JWT, TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"Bearer value", "Bearer " JWT, TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"empty", "", TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"Basic", "Basic dXNlcjpwYXNz", TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"two spaces after Bearer", "Bearer  " JWT, TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"two tokens", "Bearer " JWT " " JWT, TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"'=' inside a segment", "Bearer a=b", TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"Bearer alone", "Bearer", TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    {"longer scheme", "Bearerx abc", TK_INPUT_TOKEN, TK_REASON_VALID, "", NULL},
    /* The list. */
    {"quotes", "\"" JWT "\"", TK_INPUT_QUOTED, TK_REASON_MALFORMED_HEADER, "the token is in quotes (byte 0)", JWT},
    {"quotes after Bearer", "Bearer \"" JWT "\"", TK_INPUT_QUOTED, TK_REASON_MALFORMED_HEADER,
     "the token is in quotes (byte 0)", JWT},
    {"typographic quotes", "\xe2\x80\x9c" JWT "\xe2\x80\x9d", TK_INPUT_QUOTED, TK_REASON_MALFORMED_HEADER,
     "in quotes", JWT},
    {"BOM", "\xef\xbb\xbf" JWT, TK_INPUT_BOM, TK_REASON_MALFORMED_HEADER,
     "byte 0 is a UTF-8 byte order mark (EF BB BF)", JWT},
    {"BOM after Bearer", "Bearer \xef\xbb\xbf" JWT, TK_INPUT_BOM, TK_REASON_MALFORMED_HEADER,
     "byte 0 is a UTF-8 byte order mark (EF BB BF)", JWT},
    {"BOM before Bearer", "\xef\xbb\xbf" "Bearer " JWT, TK_INPUT_BOM, TK_REASON_MALFORMED_HEADER,
     "byte 0 is a UTF-8 byte order mark", JWT},
    {"no-break space", "eyJhbGciOiJIUzI1NiJ9.\xc2\xa0" "eyJzdWIiOiJ1In0.c2lnbmF0dXJl", TK_INPUT_INVISIBLE,
     TK_REASON_MALFORMED_HEADER, "byte 21 is a no-break space (C2 A0)", JWT},
    {"zero-width space", "eyJhbGciOiJIUzI1NiJ9\xe2\x80\x8b.eyJzdWIiOiJ1In0.c2lnbmF0dXJl", TK_INPUT_INVISIBLE,
     TK_REASON_MALFORMED_HEADER, "byte 20 is a zero-width space (E2 80 8B)", JWT},
    {"wrapped over 3 lines", "eyJhbGciOiJIUzI1NiJ9.eyJz\ndWIiOiJ1In0.c2ln\nbmF0dXJl", TK_INPUT_WRAPPED,
     TK_REASON_MALFORMED_HEADER, "the token is wrapped over 3 lines (the first line break is at byte 25)", JWT},
    {"wrapped, CRLF and indent", "eyJhbGciOiJIUzI1NiJ9.eyJz\r\n  dWIiOiJ1In0.c2lnbmF0dXJl", TK_INPUT_WRAPPED,
     TK_REASON_MALFORMED_HEADER, "wrapped over 2 lines", JWT},
    {"wrapped, bare CR", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJz\rdWIiOiJ1In0.c2lnbmF0dXJl", TK_INPUT_WRAPPED,
     TK_REASON_MALFORMED_HEADER, "wrapped over 2 lines (the first line break is at byte 25)", JWT},
    {"line break after", "Bearer " JWT "\r", TK_INPUT_WRAPPED, TK_REASON_MALFORMED_HEADER,
     "a line break at byte 49 ends the token", JWT},
    {"space inside", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIi OiJ1In0.c2lnbmF0dXJl", TK_INPUT_SPACE,
     TK_REASON_MALFORMED_HEADER, "a space at byte 29 inside the token", JWT},
    {"space inside after Bearer", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIi OiJ1In0.c2lnbmF0dXJl", TK_INPUT_SPACE,
     TK_REASON_MALFORMED_HEADER, "a space at byte 29 inside the token", JWT},
    {"space early in the header", "eyJhbG ciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl", TK_INPUT_SPACE,
     TK_REASON_MALFORMED_HEADER, "a space at byte 6", JWT},
    {"tab inside", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIi\tOiJ1In0.c2lnbmF0dXJl", TK_INPUT_SPACE,
     TK_REASON_MALFORMED_HEADER, "a tab at byte 29", JWT},
    {"%2E", "eyJhbGciOiJIUzI1NiJ9%2EeyJzdWIiOiJ1In0%2Ec2lnbmF0dXJl", TK_INPUT_PERCENT, TK_REASON_MALFORMED_HEADER,
     "'%2E' at byte 20: the token was percent-encoded (URL-decode it)", JWT},
    {"%2e after Bearer", "Bearer eyJhbGciOiJIUzI1NiJ9%2eeyJzdWIiOiJ1In0.c2lnbmF0dXJl", TK_INPUT_PERCENT,
     TK_REASON_MALFORMED_HEADER, "'%2e' at byte 20", JWT},
    {"%3D padding", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl%3D%3D", TK_INPUT_PERCENT,
     TK_REASON_MALFORMED_HEADER, "'%3D' at byte 49", JWT "=="},
    {"Bearer with no space", "Bearer" JWT, TK_INPUT_BEARER_NO_SPACE, TK_REASON_MALFORMED_HEADER,
     "no space after 'Bearer'", JWT},
    {"Bearer Bearer", "Bearer Bearer " JWT, TK_INPUT_BEARER_TWICE, TK_REASON_MALFORMED_HEADER,
     "'Bearer Bearer': the prefix is there twice", JWT},
    {"bearer BEARER", "bearer BEARER " JWT, TK_INPUT_BEARER_TWICE, TK_REASON_MALFORMED_HEADER, "twice", JWT},
    {"Bearer:", "Bearer: " JWT, TK_INPUT_BEARER_COLON, TK_REASON_MALFORMED_HEADER, "'Bearer:' has a colon", JWT},
    {"Cookie line", "Cookie: session=abc; access_token=" JWT "; theme=dark", TK_INPUT_COOKIE,
     TK_REASON_MALFORMED_HEADER, "the cookie 'access_token' holds the token", JWT},
    {"Cookie line without a JWT", "Cookie: session=abc", TK_INPUT_COOKIE, TK_REASON_MALFORMED_HEADER,
     "this is a Cookie header line, not an Authorization value", NULL},
    {"token response", "{\"access_token\": \"" JWT "\", \"token_type\": \"Bearer\", \"expires_in\": 900}",
     TK_INPUT_TOKEN_RESPONSE, TK_REASON_MALFORMED_HEADER,
     "this is a token response JSON: the token is its access_token member", JWT},
    {"token response after Bearer", "Bearer {\"token_type\":\"Bearer\",\n \"access_token\" : \"" JWT "\"}",
     TK_INPUT_TOKEN_RESPONSE, TK_REASON_MALFORMED_HEADER, "access_token member", JWT},
    {"other JSON", "{\"error\":\"invalid_client\"}", TK_INPUT_JSON, TK_REASON_MALFORMED_HEADER,
     "no access_token member", NULL},
    {"padding", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0=.c2lnbmF0dXJl", TK_INPUT_PADDING, TK_REASON_MALFORMED_TOKEN,
     "payload (segment 2): padding '=' at offset 36; JWS base64url carries no padding",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0=.c2lnbmF0dXJl"},
    {"padding at the end", "Bearer " JWT "==", TK_INPUT_PADDING, TK_REASON_MALFORMED_TOKEN,
     "signature (segment 3): padding '=' at offset 49", JWT "=="},
    {"header line", "Authorization: Bearer " JWT, TK_INPUT_HEADER_LINE, TK_REASON_MALFORMED_HEADER,
     "starts with 'Authorization:'", JWT},
    /* Several problems: the first is named, all are repaired. */
    {"BOM and quotes", "\xef\xbb\xbf\"" JWT "\"", TK_INPUT_BOM, TK_REASON_MALFORMED_HEADER, "byte 0", JWT},
    {"quotes and padding", "\"" JWT "=\"", TK_INPUT_QUOTED, TK_REASON_MALFORMED_HEADER, "quotes", JWT "="},
    {"Bearer Bearer and wrapped", "Bearer Bearer eyJhbGciOiJIUzI1NiJ9.\neyJzdWIiOiJ1In0.c2lnbmF0dXJl",
     TK_INPUT_BEARER_TWICE, TK_REASON_MALFORMED_HEADER, "twice", JWT},
    /* A problem then a byte nothing explains: named, but no repair offered. */
    {"quotes then a comma", "\"" JWT ",x\"", TK_INPUT_QUOTED, TK_REASON_MALFORMED_HEADER, "quotes", NULL},
};
/* clang-format on */

static char *dup_exact(const char *s, size_t n)
{
    char *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, s, n);
    return c;
}

static void test_input_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        const struct row *r = &ROWS[i];
        size_t n = strlen(r->in);
        char *in = dup_exact(r->in, n);
        char clean[TK_LIMIT_TOKEN_LEN + 1];
        tk_input_diag d;
        assert_int_equal(tk_input_diagnose(in, n, &d, clean, sizeof clean), TK_OK);
        if (d.kind != r->kind) {
            fail_msg("%s: kind %s, want %s (%s)", r->name, tk_input_kind_name(d.kind), tk_input_kind_name(r->kind),
                     d.verdict.detail);
        }
        tu_expect_reason(&d.verdict, r->reason, r->name);
        if (r->says[0]) {
            tu_expect_detail_has(&d.verdict, r->says, r->name);
        }
        /* /auth's error_description carries the sentence unchanged. */
        for (const char *q = d.verdict.detail; *q; q++) {
            if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
                fail_msg("%s: byte 0x%02x in the sentence: %s", r->name, (unsigned char)*q, d.verdict.detail);
            }
        }
        if (r->clean) {
            if (d.clean_len != strlen(r->clean) || strcmp(clean, r->clean) != 0) {
                fail_msg("%s: repaired to '%.*s', want '%s'", r->name, (int)d.clean_len, clean, r->clean);
            }
            /* what was repaired, for the tool to say ('=' padding is kept, not repaired) */
            if (d.kind != TK_INPUT_PADDING) {
                assert_true(d.repaired[0] != '\0');
            }
        } else if (d.clean_len != 0) {
            fail_msg("%s: offered '%s', want no repair", r->name, clean);
        }
        free(in);
    }
}

/* The same input as an Authorization header: tk_authz_parse refuses it
 * (never accepts a repaired token) with the diagnoser's very sentence. */
static void test_input_same_words_in_authz(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        const struct row *r = &ROWS[i];
        if (r->kind == TK_INPUT_TOKEN) {
            continue;
        }
        /* As the header value: "Bearer <paste>", unless it carries its own prefix. */
        char value[1024];
        int own = strncasecmp(r->in, "bearer", 6) == 0 || strncasecmp(r->in, "cookie:", 7) == 0 ||
                  strncasecmp(r->in, "authorization:", 14) == 0 ||
                  strncmp(r->in,
                          "\xef\xbb\xbf"
                          "Bearer",
                          9) == 0;
        snprintf(value, sizeof value, "%s%s", own ? "" : "Bearer ", r->in);
        size_t n = strlen(value);
        char *in = dup_exact(value, n);
        tk_input_diag d;
        assert_int_equal(tk_input_diagnose(in, n, &d, NULL, 0), TK_OK);
        const char *tok = NULL;
        size_t tok_len = 0;
        tk_verdict v;
        assert_int_equal(tk_authz_parse(in, n, &tok, &tok_len, &v), TK_OK);
        if (v.reason == TK_REASON_VALID) {
            /* only '=' padding at the very end passes the header grammar;
             * the token parser then says the same (test_input_padding_jws) */
            assert_int_equal(r->kind, TK_INPUT_PADDING);
        } else {
            assert_null(tok);
            tu_expect_reason(&v, r->reason, r->name);
            if (strcmp(v.detail, d.verdict.detail) != 0) {
                fail_msg("%s: authz says '%s', the diagnoser '%s'", r->name, v.detail, d.verdict.detail);
            }
            /* and the same words as the bare paste */
            tk_input_diag b;
            assert_int_equal(tk_input_diagnose(r->in, strlen(r->in), &b, NULL, 0), TK_OK);
            if (strcmp(b.verdict.detail, v.detail) != 0) {
                fail_msg("%s: the paste says '%s', the header '%s'", r->name, b.verdict.detail, v.detail);
            }
        }
        free(in);
    }
}

/* '=' padding is a token (base64url) problem: the token parser says it in
 * the diagnoser's words. */
static void test_input_padding_jws(void **state)
{
    (void)state;
    static const char *const toks[] = {
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0=.c2lnbmF0dXJl",
        JWT "==",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9=.e30.c2ln",
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        size_t n = strlen(toks[i]);
        tk_input_diag d;
        assert_int_equal(tk_input_diagnose(toks[i], n, &d, NULL, 0), TK_OK);
        assert_int_equal(d.kind, TK_INPUT_PADDING);
        tk_token *t = NULL;
        tk_verdict v;
        assert_int_equal(tk_token_parse(toks[i], n, NULL, &t, &v), TK_OK);
        assert_non_null(t);
        const tk_verdict *hv = tk_token_header_verdict(t);
        const tk_verdict *pv = tk_token_payload_verdict(t);
        const tk_verdict *got = hv->reason != TK_REASON_VALID ? hv : pv;
        tu_expect_reason(got, TK_REASON_MALFORMED_TOKEN, toks[i]);
        if (strcmp(got->detail, d.verdict.detail) != 0) {
            fail_msg("%s: jws says '%s', the diagnoser '%s'", toks[i], got->detail, d.verdict.detail);
        }
        tk_token_free(t);
    }
}

static void test_input_bounds(void **state)
{
    (void)state;
    tk_input_diag d;
    char small[8];
    /* arguments */
    assert_int_equal(tk_input_diagnose("x", 1, NULL, NULL, 0), TK_ERR_ARG);
    assert_int_equal(tk_input_diagnose(NULL, 1, &d, NULL, 0), TK_ERR_ARG);
    assert_int_equal(tk_input_diagnose(NULL, 0, &d, NULL, 0), TK_OK);
    assert_int_equal(d.kind, TK_INPUT_TOKEN);
    /* a buffer too small: the problem is named, no repair offered */
    const char *q = "\"" JWT "\"";
    assert_int_equal(tk_input_diagnose(q, strlen(q), &d, small, sizeof small), TK_OK);
    assert_int_equal(d.kind, TK_INPUT_QUOTED);
    assert_int_equal(d.clean_len, 0);
    assert_string_equal(small, "");
    /* NUL bytes are bytes like any other */
    static const char nul[] = "\"eyJ\0.a.b\"";
    assert_int_equal(tk_input_diagnose(nul, sizeof nul - 1, &d, NULL, 0), TK_OK);
    assert_int_equal(d.kind, TK_INPUT_QUOTED);
    /* every prefix of every row, at exact length */
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        size_t n = strlen(ROWS[i].in);
        for (size_t k = 0; k <= n; k++) {
            char *in = dup_exact(ROWS[i].in, k);
            char clean[TK_LIMIT_TOKEN_LEN + 1];
            assert_int_equal(tk_input_diagnose(in, k, &d, clean, sizeof clean), TK_OK);
            assert_true(d.clean_len < sizeof clean);
            assert_true(tu_printable(d.verdict.detail, strlen(d.verdict.detail)));
            free(in);
        }
    }
    /* a long paste: linear time */
    size_t big = 1u << 20;
    char *b = malloc(big);
    assert_non_null(b);
    memset(b, ' ', big);
    b[0] = '{';
    for (size_t i = 1; i + 16 < big; i += 16) {
        memcpy(b + i, "\"access_token\" ", 15);
    }
    double t0 = tu_now_ms();
    assert_int_equal(tk_input_diagnose(b, big, &d, NULL, 0), TK_OK);
    assert_true(tu_now_ms() - t0 < 2000.0);
    free(b);
    assert_string_equal(tk_input_kind_name(TK_INPUT_TOKEN_RESPONSE), "token_response");
    assert_string_equal(tk_input_kind_name(TK_INPUT_KIND_COUNT_), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_table),
        cmocka_unit_test(test_input_same_words_in_authz),
        cmocka_unit_test(test_input_padding_jws),
        cmocka_unit_test(test_input_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
