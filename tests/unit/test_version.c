/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_version.c — tk_version(), and the struct_size rule of the structs
 * callers fill in (tokend.h, "Conventions"): a caller built against another
 * header passes another size; the library reads what it knows, defaults
 * the rest, and refuses a member it does not know rather than ignore it.
 *
 * A "newer caller" is simulated by a struct that embeds ours and appends a
 * member, with struct_size covering both: zero there is accepted, anything
 * else is TK_ERR_UNSUPPORTED (and a verdict, when there is one, is
 * unavailable, never valid).
 */
#include "testutil.h"

#include "core/internal.h"
#include "tokend/fetch.h"
#include "tokend/keycache.h"

static const char P_OK[] = "{\"iss\":\"https://a.example\",\"exp\":2000000000}";

static void test_version(void **state)
{
    (void)state;
    assert_string_equal(tk_version(), TK_VERSION);
    assert_int_equal(tk_version_number(), TK_VERSION_NUMBER);
    int major = 0, minor = 0, patch = 0;
    assert_int_equal(sscanf(tk_version(), "%d.%d.%d", &major, &minor, &patch), 3);
    assert_int_equal(tk_version_number(), major * 1000000 + minor * 1000 + patch);
}

static void test_init_functions_set_struct_size(void **state)
{
    (void)state;
    tk_policy p;
    memset(&p, 0x5a, sizeof p);
    tk_policy_init(&p, 1);
    assert_int_equal(p.struct_size, sizeof p);
    tk_limits l;
    memset(&l, 0x5a, sizeof l);
    tk_limits_default(&l);
    assert_int_equal(l.struct_size, sizeof l);
    tk_keycache_config c;
    memset(&c, 0x5a, sizeof c);
    tk_keycache_config_defaults(&c);
    assert_int_equal(c.struct_size, sizeof c);
    tk_fetch_options o;
    memset(&o, 0x5a, sizeof o);
    tk_fetch_options_defaults(&o);
    assert_int_equal(o.struct_size, sizeof o);
}

/* The helper itself, table-driven. */
static void test_struct_import(void **state)
{
    (void)state;
    struct v2 {
        size_t struct_size;
        int64_t a;
        int64_t b; /* added in "v2" */
    };
    struct v3 {
        struct v2 v2;
        int64_t c; /* a member the library (v2) does not know */
    };
    const size_t first = offsetof(struct v2, b); /* the "v1" layout: struct_size and a */
    struct v3 in;
    struct v2 out;
    static const struct {
        size_t size;
        int64_t c;
        tk_result want;
        int64_t want_b; /* 99: the default */
    } rows[] = {
        {0, 0, TK_OK, 99},                             /* 0: the first layout; b keeps its default */
        {sizeof(size_t), 0, TK_ERR_ARG, 0},            /* smaller than the first layout */
        {sizeof(size_t) + 8, 0, TK_OK, 99},            /* exactly the first layout */
        {sizeof(struct v2), 0, TK_OK, 2},              /* ours */
        {sizeof(struct v3), 0, TK_OK, 2},              /* newer, the unknown member zero */
        {sizeof(struct v3), 7, TK_ERR_UNSUPPORTED, 0}, /* newer, the unknown member set */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        memset(&in, 0, sizeof in);
        in.v2.struct_size = rows[i].size;
        in.v2.a = 1;
        in.v2.b = 2;
        in.c = rows[i].c;
        memset(&out, 0, sizeof out);
        out.a = 98;
        out.b = 99;
        tk_result r = tki_struct_import(&out, sizeof out, first, &in, in.v2.struct_size);
        assert_int_equal(r, rows[i].want);
        if (r == TK_OK) {
            assert_int_equal(out.struct_size, sizeof out);
            assert_int_equal(out.a, 1);
            assert_int_equal(out.b, rows[i].want_b);
        }
    }
}

struct newer_policy {
    tk_policy p;
    int64_t future; /* what a later tokend might add */
};

static void test_policy_of_another_layout(void **state)
{
    (void)state;
    tk_keyset *ks = tu_keyset(tu_hs256("hs", 0), NULL);
    char *tok = tu_sign(tk_keyset_get(ks, 0), "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    size_t n = strlen(tok);
    tk_verdict v;

    /* A caller that zeroed the struct itself (struct_size 0): the first
     * layout, as good as tk_policy_init's. */
    tk_policy z;
    memset(&z, 0, sizeof z);
    z.now = 1000;
    z.require_exp = 1;
    assert_int_equal(tk_verify(tok, n, ks, &z, NULL, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_VALID, "struct_size 0");
    const char *iss[] = {"https://other.example"};
    z.issuers = iss;
    z.issuers_len = 1;
    assert_int_equal(tk_verify(tok, n, ks, &z, NULL, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_WRONG_ISSUER, "struct_size 0 still checks");

    /* A newer caller: its extra member zero is fine ... */
    struct newer_policy np;
    memset(&np, 0, sizeof np);
    tk_policy_init(&np.p, 1000);
    np.p.struct_size = sizeof np;
    assert_int_equal(tk_verify(tok, n, ks, &np.p, NULL, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_VALID, "newer layout, unknown member zero");
    np.p.issuers = iss;
    np.p.issuers_len = 1;
    assert_int_equal(tk_verify(tok, n, ks, &np.p, NULL, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_WRONG_ISSUER, "newer layout still checks");

    /* ... but a setting this library cannot apply is refused: fail closed. */
    np.p.issuers_len = 0;
    np.future = 1;
    assert_int_equal(tk_verify(tok, n, ks, &np.p, NULL, &v, NULL), TK_ERR_UNSUPPORTED);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "newer layout, unknown member set");
    tk_token *t = NULL;
    assert_int_equal(tk_token_parse(tok, n, NULL, &t, &v), TK_OK);
    size_t np_n = 0;
    tk_verdict out[2];
    assert_int_equal(tk_token_check_claims(t, &np.p, out, 2, &np_n), TK_ERR_UNSUPPORTED);
    assert_int_equal(np_n, 1);
    tu_expect_reason(&out[0], TK_REASON_UNAVAILABLE, "check_claims fails closed");
    assert_int_equal(tk_token_verify(t, ks, &np.p, &v), TK_ERR_UNSUPPORTED);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "tk_token_verify fails closed");
    tk_token_free(t);

    /* Smaller than any layout there ever was. */
    tk_policy_init(&z, 1000);
    z.struct_size = sizeof(size_t);
    assert_int_equal(tk_verify(tok, n, ks, &z, NULL, &v, NULL), TK_ERR_ARG);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "too small");
    free(tok);
    tk_keyset_free(ks);
}

static void test_limits_of_another_layout(void **state)
{
    (void)state;
    tk_keyset *ks = tu_keyset(tu_hs256("hs", 0), NULL);
    char *tok = tu_sign(tk_keyset_get(ks, 0), "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    size_t n = strlen(tok);
    tk_policy pol;
    tk_policy_init(&pol, 1000);
    tk_verdict v;
    struct {
        tk_limits l;
        size_t future;
    } nl;
    memset(&nl, 0, sizeof nl);
    tk_limits_default(&nl.l);
    nl.l.struct_size = sizeof nl;
    nl.l.token_len = 20; /* still applied */
    assert_int_equal(tk_verify(tok, n, ks, &pol, &nl.l, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "newer limits, applied");
    nl.future = 1;
    assert_int_equal(tk_verify(tok, n, ks, &pol, &nl.l, &v, NULL), TK_ERR_UNSUPPORTED);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "newer limits, unknown member set");
    tk_token *t = NULL;
    assert_int_equal(tk_token_parse(tok, n, &nl.l, &t, &v), TK_ERR_UNSUPPORTED);
    assert_null(t);
    /* Zeroed by the caller: the first layout; 0 means "the ceiling". */
    tk_limits z;
    memset(&z, 0, sizeof z);
    assert_int_equal(tk_verify(tok, n, ks, &pol, &z, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_VALID, "zeroed limits");
    free(tok);
    tk_keyset_free(ks);
}

static void test_keycache_configs_of_another_layout(void **state)
{
    (void)state;
    static const char JWKS[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e1\","
                               "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                               "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
    struct {
        tk_keycache_config c;
        int64_t future;
    } nc;
    memset(&nc, 0, sizeof nc);
    tk_keycache_config_defaults(&nc.c);
    nc.c.struct_size = sizeof nc;
    nc.future = 5;
    tk_keycache *kc = NULL;
    assert_int_equal(tk_keycache_new(&nc.c, &kc), TK_ERR_UNSUPPORTED);
    assert_null(kc);
    nc.future = 0;
    assert_int_equal(tk_keycache_new(&nc.c, &kc), TK_OK);
    assert_non_null(kc);

    /* tk_issuer_config has no init function: zeroed is the first layout. */
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = "https://fixed.example";
    ic.jwks_text = JWKS;
    ic.jwks_text_len = strlen(JWKS);
    assert_int_equal(tk_keycache_add_issuer(kc, &ic), TK_OK);
    struct {
        tk_issuer_config ic;
        void *future;
    } ni;
    memset(&ni, 0, sizeof ni);
    ni.ic = ic;
    ni.ic.issuer = "https://fixed2.example";
    ni.ic.struct_size = sizeof ni;
    ni.future = &ni;
    assert_int_equal(tk_keycache_add_issuer(kc, &ni.ic), TK_ERR_UNSUPPORTED);
    ni.future = NULL;
    assert_int_equal(tk_keycache_add_issuer(kc, &ni.ic), TK_OK);
    assert_int_equal(tk_keycache_count(kc), 2);
    tk_keycache_free(kc);
}

static void test_fetch_options_of_another_layout(void **state)
{
    (void)state;
    struct {
        tk_fetch_options o;
        long future;
    } no;
    memset(&no, 0, sizeof no);
    tk_fetch_options_defaults(&no.o);
    no.o.struct_size = sizeof no;
    no.future = 1;
    char body[64];
    tk_fetch_result r;
    memset(&r, 0, sizeof r);
    r.body = body;
    /* Refused before any network I/O, with a message. */
    assert_int_equal(tk_fetch_https(&no.o, "https://127.0.0.1:1/x", sizeof body, &r), -1);
    assert_non_null(strstr(r.error, "unknown layout"));
    assert_int_equal(r.status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_init_functions_set_struct_size),
        cmocka_unit_test(test_struct_import),
        cmocka_unit_test(test_policy_of_another_layout),
        cmocka_unit_test(test_limits_of_another_layout),
        cmocka_unit_test(test_keycache_configs_of_another_layout),
        cmocka_unit_test(test_fetch_options_of_another_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
