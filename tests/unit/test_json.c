/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_json.c — the JSON module: limits before jansson, and the flat
 * profile's agreement with jansson.
 *
 * The flat reader (json.c) may only ever say "this is a claims object, and
 * here are its members" for texts on which jansson says exactly the same;
 * on everything else it must step aside. These tests hold it to that on
 * hand-picked edge cases and on hundreds of thousands of generated and
 * mutated texts: whenever the flat reader accepts, jansson (with duplicate
 * rejection) must accept too and yield the same members with the same
 * values, in the same order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"
#include "flat_agree.h"

static unsigned char flat_mem[64 * 1024];

static int flat(const char *s, size_t n, struct tki_flat *f)
{
    assert_true(tki_flat_size(n) <= sizeof flat_mem);
    return tki_flat_parse((const unsigned char *)s, n, TK_LIMIT_JSON_MEMBERS, flat_mem, f);
}

/* The contract, for one text: returns 1 when the flat reader accepted. */
static int check_agreement(const char *s, size_t n)
{
    struct tki_flat f;
    if (!flat(s, n, &f)) {
        return 0;
    }
    char why[128];
    if (!flat_agrees(s, n, &f, why, sizeof why)) {
        fail_msg("%s for \"%.*s\"", why, (int)n, s);
    }
    return 1;
}

static void test_profile_accepts(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "{}",
        " { } ",
        "{\"a\":1}",
        "{\"a\":-1,\"b\":0,\"c\":-0}",
        ("{\"iss\":\"https://auth.example\",\"exp\":1700000000,\"aud\":[\"a\",\"b\"],\"x\":[],\"t\":true,\"f\":false,"
         "\"n\":null}"),
        "{\"a\" : \"b\" ,\n\t\"c\"\r: [ \"d\" , \"e\" ] }",
        "{\"\":\"\"}",
        "{\"a\":999999999999999}",
        "{\"a\":-999999999999999}",
        "{\"a\":\"/ ~!#$%&'()*+,-.:;<=>?@[]^_`{|}\"}",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!check_agreement(yes[i], strlen(yes[i]))) {
            fail_msg("flat should read %s", yes[i]);
        }
    }
}

static void test_profile_steps_aside(void **state)
{
    (void)state;
    /* Valid JSON outside the profile, or invalid JSON: never read flat. */
    static const char *const no[] = {
        "",
        "[]",
        "\"a\"",
        "{",
        "{\"a\":1",
        "{\"a\":1}x",
        "{\"a\":1,}",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1 2}",
        "{\"a\":\"\\u0061\"}",     /* escape */
        "{\"\\u0061\":1}",         /* escaped name */
        "{\"a\":\"\\\"\"}",        /* escaped quote */
        "{\"a\":\"caf\xc3\xa9\"}", /* UTF-8 */
        "{\"a\":\"\x7f\"}",        /* DEL */
        "{\"a\":\"\x1f\"}",        /* control */
        "{\"a\":1.5}",             /* fraction */
        "{\"a\":1e3}",             /* exponent */
        "{\"a\":1E3}",
        "{\"a\":01}", /* leading zero */
        "{\"a\":-}",
        "{\"a\":--1}",
        "{\"a\":+1}",
        "{\"a\":1000000000000000}", /* 16 digits */
        "{\"a\":{}}",               /* nested object */
        "{\"a\":[1]}",              /* array of a non-string */
        "{\"a\":[\"b\",]}",
        "{\"a\":[[\"b\"]]}",
        "{\"a\":1,\"a\":2}", /* duplicate */
        "{\"a\":tru}",
        "{\"a\":True}",
        "{\"a\":nul}",
        "{'a':1}",
        "{\"a\":1}\x00",
        "\xef\xbb\xbf{\"a\":1}", /* BOM */
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        size_t n = strlen(no[i]);
        if (i == 34) {
            n = 8; /* the NUL case: length includes the NUL */
        }
        struct tki_flat f;
        if (flat(no[i], n, &f)) {
            fail_msg("flat should step aside for case %zu: %s", i, no[i]);
        }
    }
}

static void test_member_limit(void **state)
{
    (void)state;
    char buf[2048];
    size_t pos = 0;
    buf[pos++] = '{';
    for (int i = 0; i < 65; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s\"m%d\":%d", i ? "," : "", i, i);
    }
    buf[pos++] = '}';
    struct tki_flat f;
    assert_false(flat(buf, pos, &f)); /* 65 members: jansson's path refuses */
    /* 64 members fit. */
    pos = 0;
    buf[pos++] = '{';
    for (int i = 0; i < 64; i++) {
        pos += (size_t)snprintf(buf + pos, sizeof buf - pos, "%s\"m%d\":%d", i ? "," : "", i, i);
    }
    buf[pos++] = '}';
    assert_true(check_agreement(buf, pos));
}

/* ---- generated texts ----------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void put(char *b, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n < cap) {
        memcpy(b + *pos, s, n);
        *pos += n;
    }
}

static void gen_ws(char *b, size_t cap, size_t *pos)
{
    static const char *const ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    put(b, cap, pos, ws[rnd(7)]);
}

static void gen_string(char *b, size_t cap, size_t *pos)
{
    static const char *const pieces[] = {"a",    "iss",  "exp",     "orders:read", " ",        "-",    "_",
                                         "\\\"", "\\\\", "\\u0041", "\\u00e9",     "\xc3\xa9", "\x7f", "\x01",
                                         "/",    "\\/",  "\\n",     "~",           "{",        "}"};
    put(b, cap, pos, "\"");
    int n = (int)rnd(4);
    for (int i = 0; i < n; i++) {
        put(b, cap, pos, rnd(4) ? pieces[rnd(7)] : pieces[rnd(20)]);
    }
    put(b, cap, pos, "\"");
}

static void gen_number(char *b, size_t cap, size_t *pos)
{
    static const char *const nums[] = {
        "0",   "-0",  "1", "17", "1700000000", "999999999999999",     "1000000000000000",    "-5",    "01",
        "1.5", "1e3", "-", "2.", ".5",         "9223372036854775807", "9223372036854775808", "1e400", "-1700000000"};
    put(b, cap, pos, nums[rnd(18)]);
}

static void gen_value(char *b, size_t cap, size_t *pos, int depth)
{
    switch (rnd(depth > 2 ? 6 : 8)) {
    case 0:
    case 1:
        gen_string(b, cap, pos);
        break;
    case 2:
    case 3:
        gen_number(b, cap, pos);
        break;
    case 4: {
        static const char *const lits[] = {"true", "false", "null", "tru", "nulll"};
        put(b, cap, pos, lits[rnd(5)]);
        break;
    }
    case 5:
    case 6: {
        put(b, cap, pos, "[");
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            if (i) {
                put(b, cap, pos, ",");
            }
            gen_ws(b, cap, pos);
            if (rnd(5)) {
                gen_string(b, cap, pos);
            } else {
                gen_value(b, cap, pos, depth + 1);
            }
            gen_ws(b, cap, pos);
        }
        put(b, cap, pos, "]");
        break;
    }
    default: {
        put(b, cap, pos, "{");
        int n = (int)rnd(3);
        for (int i = 0; i < n; i++) {
            if (i) {
                put(b, cap, pos, ",");
            }
            gen_string(b, cap, pos);
            put(b, cap, pos, ":");
            gen_value(b, cap, pos, depth + 1);
        }
        put(b, cap, pos, "}");
        break;
    }
    }
}

static size_t gen_object(char *b, size_t cap)
{
    static const char *const names[] = {"\"iss\"", "\"sub\"", "\"aud\"",   "\"exp\"", "\"iat\"",
                                        "\"nbf\"", "\"jti\"", "\"scope\"", "\"a\"",   "\"\\u0065xp\""};
    size_t pos = 0;
    gen_ws(b, cap, &pos);
    put(b, cap, &pos, "{");
    int n = (int)rnd(8);
    for (int i = 0; i < n; i++) {
        if (i) {
            put(b, cap, &pos, ",");
        }
        gen_ws(b, cap, &pos);
        if (rnd(3)) {
            put(b, cap, &pos, names[rnd(10)]);
        } else {
            gen_string(b, cap, &pos);
        }
        gen_ws(b, cap, &pos);
        put(b, cap, &pos, ":");
        gen_ws(b, cap, &pos);
        gen_value(b, cap, &pos, 1);
        gen_ws(b, cap, &pos);
    }
    put(b, cap, &pos, "}");
    gen_ws(b, cap, &pos);
    return pos;
}

static void test_generated_agree(void **state)
{
    (void)state;
    char buf[4096];
    size_t accepted = 0, total = 0;
    for (int i = 0; i < 150000; i++) {
        size_t n = gen_object(buf, sizeof buf);
        /* Sometimes mutate: flip, drop or insert one byte. */
        uint32_t m = rnd(4);
        if (m == 1 && n > 0) {
            buf[rnd((uint32_t)n)] = (char)rnd(256);
        } else if (m == 2 && n > 1) {
            size_t at = rnd((uint32_t)n);
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
        } else if (m == 3 && n + 1 < sizeof buf) {
            size_t at = rnd((uint32_t)n + 1);
            memmove(buf + at + 1, buf + at, n - at);
            static const char ins[] = "\",:{}[]0-. \\\"e";
            buf[at] = ins[rnd(sizeof ins - 1)];
            n++;
        }
        accepted += (size_t)check_agreement(buf, n);
        total++;
    }
    /* The generator must exercise both sides of the contract. */
    print_message("flat profile: %zu of %zu generated texts read flat, all agreeing with jansson\n", accepted, total);
    assert_true(accepted > total / 20);
    assert_true(accepted < total);
}

/* The same claims, read flat by tk_verify and as a tree by tk_token_parse,
 * give the same verdict, detail for detail. */
static void test_verdicts_agree(void **state)
{
    (void)state;
    static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";
    tk_key *k = NULL;
    tk_keyset *ks = NULL;
    assert_int_equal(tk_key_from_secret(secret, sizeof secret, TK_ALG_HS256, "k", &k), TK_OK);
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    assert_int_equal(tk_keyset_add(ks, k), TK_OK);
    static const char *const iss[] = {"iss"};
    static const char *const aud[] = {"a", "orders:read"};
    static const char *const scope[] = {"orders:read"};
    static const char *const req[] = {"sub"};
    tk_policy pol;
    tk_policy_init(&pol, 1700000000);
    pol.issuers = iss;
    pol.issuers_len = 1;
    pol.audiences = aud;
    pol.audiences_len = 2;
    pol.scopes = scope;
    pol.scopes_len = 1;
    pol.required = req;
    pol.required_len = 1;
    pol.max_age = 3600;
    char buf[4096];
    size_t flat_read = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = gen_object(buf, sizeof buf);
        struct tki_flat f;
        if (!flat(buf, n, &f)) {
            continue;
        }
        flat_read++;
        char *tok = NULL;
        size_t tl = 0;
        assert_int_equal(tk_sign(k, "JWT", (const unsigned char *)buf, n, &tok, &tl), TK_OK);
        tk_verdict vf;
        assert_int_equal(tk_verify(tok, tl, ks, &pol, NULL, &vf, NULL), TK_OK);
        tk_token *t = NULL;
        tk_verdict vt;
        assert_int_equal(tk_token_parse(tok, tl, NULL, &t, &vt), TK_OK);
        assert_non_null(t);
        tk_verdict cv[16];
        size_t nc = 0;
        assert_int_equal(tk_token_verify_signature(t, ks, &vt), TK_OK);
        assert_int_equal(vt.reason, TK_REASON_VALID);
        assert_int_equal(tk_token_check_claims(t, &pol, cv, 16, &nc), TK_OK);
        tk_verdict want = vt;
        if (nc > 0) {
            want = cv[0];
        }
        if (want.reason != vf.reason || strcmp(want.detail, vf.detail) != 0) {
            fail_msg("flat and tree disagree on %.*s: %s '%s' vs %s '%s'", (int)n, buf, tk_reason_code(vf.reason),
                     vf.detail, tk_reason_code(want.reason), want.detail);
        }
        tk_token_free(t);
        tk_free(tok);
    }
    assert_true(flat_read > 500);
    tk_keyset_free(ks);
}

static void test_limits_before_jansson(void **state)
{
    (void)state;
    char err[200];
    char deep[64];
    memset(deep, '[', 17);
    memset(deep + 17, ']', 17);
    char doc[80];
    int n = snprintf(doc, sizeof doc, "{\"a\":%.*s}", 34, deep);
    /* 18 levels: the object plus 17 arrays. */
    assert_null(tki_json_parse_object((const unsigned char *)doc, (size_t)n, 16, 64, err, sizeof err));
    assert_non_null(strstr(err, "nesting deeper than 16"));
    json_t *ok = tki_json_parse_object((const unsigned char *)"{\"a\":[[[]]]}", 12, 16, 64, err, sizeof err);
    assert_non_null(ok);
    json_decref(ok);
    /* A quote inside a string does not confuse the depth count. */
    static const char quoted[] = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[\"}";
    ok = tki_json_parse_object((const unsigned char *)quoted, sizeof quoted - 1, 16, 64, err, sizeof err);
    assert_non_null(ok);
    json_decref(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_accepts), cmocka_unit_test(test_profile_steps_aside),
        cmocka_unit_test(test_member_limit),    cmocka_unit_test(test_generated_agree),
        cmocka_unit_test(test_verdicts_agree),  cmocka_unit_test(test_limits_before_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
