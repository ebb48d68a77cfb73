/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_jws.c — compact JWS structure and header policy (RFC 7515 §7.1,
 * SECURITY.md rules 1–8), through tk_verify and tk_token_parse.
 *
 * Every non-claim reason code is produced on purpose: malformed_token
 * (sizes, segments, base64url, JSON, duplicates, depth, members, NUL,
 * UTF-8), unsupported_token_type (JWE, crit, b64, cty, opaque),
 * alg_not_allowed (none and friends, alg/key mismatch, key confusion,
 * unbound keys), embedded_key, unknown_key and bad_signature (ECDSA forms,
 * flipped bits). Each security rule has a named regression test with the
 * attack it stops and a check that the valid case still passes.
 *
 * RSA key generation is slow under ASan: one RSA key pair is generated
 * with OpenSSL for the whole file (and one more through tk_key_generate).
 */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "testutil.h"

#include "core/internal.h"

#define T 1700000000LL
#define P_OK "{\"exp\":1700003600,\"sub\":\"alice\"}"

static tk_key *g_hs;         /* HS256, kid "hs" */
static tk_key *g_es;         /* ES256, kid "es" */
static tk_key *g_rsa;        /* RS256 from g_rsa_priv_pem, kid "rsa" */
static tk_key *g_rsa_gen;    /* RS256 from tk_key_generate, kid "rsa-gen" */
static EVP_PKEY *g_rsa_pk;   /* the RSA key pair behind g_rsa */
static char *g_rsa_pub_pem;  /* SPKI */
static char *g_rsa_priv_pem; /* PKCS#8 */
static tk_keyset *g_ks;      /* public copies of hs, es, rsa */

static char *bio_string(BIO *b)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    assert_true(n > 0);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static int group_setup(void **state)
{
    (void)state;
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!pk) {
        return -1;
    }
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_PUBKEY(b, pk) != 1) {
        return -1;
    }
    g_rsa_pub_pem = bio_string(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) != 1) {
        return -1;
    }
    g_rsa_priv_pem = bio_string(b);
    BIO_free(b);
    g_rsa_pk = pk;

    g_hs = tu_hs256("hs", 0);
    if (tk_key_generate(TK_ALG_ES256, "es", &g_es) != TK_OK ||
        tk_key_from_pem(g_rsa_priv_pem, strlen(g_rsa_priv_pem), TK_ALG_RS256, "rsa", &g_rsa) != TK_OK ||
        tk_key_generate(TK_ALG_RS256, "rsa-gen", &g_rsa_gen) != TK_OK) {
        return -1;
    }
    g_ks = tu_keyset(tu_public_copy(g_hs), tu_public_copy(g_es), tu_public_copy(g_rsa), (tk_key *)NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tk_keyset_free(g_ks);
    tk_key_free(g_hs);
    tk_key_free(g_es);
    tk_key_free(g_rsa);
    tk_key_free(g_rsa_gen);
    free(g_rsa_pub_pem);
    free(g_rsa_priv_pem);
    EVP_PKEY_free(g_rsa_pk);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static tk_verdict verify_lim(const char *tok, size_t len, const tk_keyset *ks, const tk_limits *lim)
{
    tk_policy pol;
    tk_verdict v;
    tk_token *t = NULL;
    tk_policy_init(&pol, T);
    assert_int_equal(tk_verify(tok, len, ks, &pol, lim, &v, &t), TK_OK);
    if (v.reason == TK_REASON_VALID) {
        assert_non_null(t);
    } else {
        assert_null(t);
    }
    tk_token_free(t);
    return v;
}

static tk_verdict verify(const char *tok, const tk_keyset *ks)
{
    return verify_lim(tok, strlen(tok), ks, NULL);
}

static void expect_verify(const char *tok, const tk_keyset *ks, tk_reason want, const char *what)
{
    tk_verdict v = verify(tok, ks);
    tu_expect_reason(&v, want, what);
}

/* tk_token_parse: returns the overall verdict; *out the token or NULL. */
static tk_verdict parse_lim(const char *tok, size_t len, const tk_limits *lim, tk_token **out)
{
    tk_verdict v;
    *out = NULL;
    assert_int_equal(tk_token_parse(tok, len, lim, out, &v), TK_OK);
    return v;
}

/* The signature bytes of a compact token (owned). */
static unsigned char *get_sig(const char *tok, size_t *n)
{
    const char *dot = strrchr(tok, '.');
    assert_non_null(dot);
    return tu_unb64(dot + 1, strlen(dot + 1), n);
}

/* The token with its signature segment replaced by b64(sig). */
static char *with_sig(const char *tok, const unsigned char *sig, size_t n)
{
    const char *dot = strrchr(tok, '.');
    assert_non_null(dot);
    size_t pre = (size_t)(dot - tok) + 1;
    char *b = tu_b64(sig, n);
    char *out = malloc(pre + strlen(b) + 1);
    assert_non_null(out);
    memcpy(out, tok, pre);
    strcpy(out + pre, b);
    free(b);
    return out;
}

/* The token with its payload segment replaced by `seg` verbatim. */
static char *with_payload_seg(const char *tok, const char *seg)
{
    const char *d1 = strchr(tok, '.');
    const char *d2 = strrchr(tok, '.');
    assert_true(d1 && d2 && d1 != d2);
    size_t a = (size_t)(d1 - tok) + 1;
    size_t n = a + strlen(seg) + strlen(d2) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    memcpy(out, tok, a);
    snprintf(out + a, n - a, "%s%s", seg, d2);
    return out;
}

/* "h_seg.p_seg.sig" where sig is the key's signature over "h_seg.p_seg":
 * lets a test sign segments that tk_sign would never produce. */
static char *sign_segments(const tk_key *k, const char *h_seg, const char *p_seg)
{
    size_t n = strlen(h_seg) + strlen(p_seg) + 2;
    char *si = malloc(n);
    assert_non_null(si);
    snprintf(si, n, "%s.%s", h_seg, p_seg);
    unsigned char *sig = NULL;
    size_t sl = 0;
    assert_int_equal(tk_key_sign(k, (const unsigned char *)si, strlen(si), &sig, &sl), TK_OK);
    char *sb = tu_b64(sig, sl);
    size_t m = strlen(si) + strlen(sb) + 2;
    char *out = malloc(m);
    assert_non_null(out);
    snprintf(out, m, "%s.%s", si, sb);
    tk_free(sig);
    free(sb);
    free(si);
    return out;
}

/* ---- size and segments --------------------------------------------------- */

static void test_empty_token(void **state)
{
    (void)state;
    tk_verdict v = verify_lim("", 0, g_ks, NULL);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "empty token");
    tu_expect_detail_has(&v, "empty", "empty token detail");
    v = verify_lim(NULL, 0, g_ks, NULL);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "NULL token");
    tk_token *t = NULL;
    v = parse_lim("", 0, NULL, &t);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "parse empty");
    assert_null(t);
}

/* Rule 5: the size is checked before anything is decoded. */
static void test_token_length_limit(void **state)
{
    (void)state;
    /* A valid token of exactly TK_LIMIT_TOKEN_LEN bytes. */
    char *tok = NULL;
    char *payload = malloc(7000);
    assert_non_null(payload);
    for (size_t pad = 5900; pad < 6200 && !tok; pad++) {
        int w = snprintf(payload, 7000, "{\"exp\":1700003600,\"pad\":\"%*s\"}", (int)pad, "");
        assert_true(w > 0);
        char *cand = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", payload);
        if (strlen(cand) == TK_LIMIT_TOKEN_LEN) {
            tok = cand;
        } else {
            free(cand);
        }
    }
    free(payload);
    assert_non_null(tok);
    expect_verify(tok, g_ks, TK_REASON_VALID, "token of exactly the limit");
    /* One byte more: refused with the sizes named. */
    size_t n = strlen(tok);
    char *longer = malloc(n + 2);
    assert_non_null(longer);
    memcpy(longer, tok, n);
    longer[n] = 'A';
    longer[n + 1] = '\0';
    tk_verdict v = verify(longer, g_ks);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "limit + 1");
    tu_expect_detail_has(&v, "8193", "length named");
    tu_expect_detail_has(&v, "8192", "limit named");
    tk_token *t = NULL;
    v = parse_lim(longer, n + 1, NULL, &t);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "parse limit + 1");
    assert_null(t);
    free(longer);
    free(tok);
}

static void test_huge_token_rejected_fast(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    big[100] = '.';
    big[n / 2] = '.';
    double t0 = tu_now_ms();
    tk_verdict v = verify_lim(big, n, g_ks, NULL);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "1 MiB token");
    /* All dots: still refused on size, before counting segments. */
    memset(big, '.', n);
    v = verify_lim(big, n, g_ks, NULL);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "1 MiB of dots");
    tk_token *t = NULL;
    v = parse_lim(big, n, NULL, &t);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "parse 1 MiB");
    assert_null(t);
    double ms = tu_now_ms() - t0;
    if (ms > 100.0) {
        fail_msg("rejecting three 1 MiB tokens took %.1f ms", ms);
    }
    free(big);
}

static void test_segment_counts(void **state)
{
    (void)state;
    static const struct {
        const char *tok;
        tk_reason want;
        int has_token; /* tk_token_parse returns a token object */
        const char *needle;
    } rows[] = {
        /* No dot at all: an opaque token, not a JWT. */
        {"abc", TK_REASON_UNSUPPORTED_TOKEN_TYPE, 0, "opaque"},
        {"eyJhbGciOiJIUzI1NiJ9", TK_REASON_UNSUPPORTED_TOKEN_TYPE, 0, "opaque"},
        {"a.b", TK_REASON_MALFORMED_TOKEN, 0, "2 segments"},
        {".", TK_REASON_MALFORMED_TOKEN, 0, "2 segments"},
        {"a.b.c.d", TK_REASON_MALFORMED_TOKEN, 0, "4 segments"},
        /* Five segments: a JWE. */
        {"eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", TK_REASON_UNSUPPORTED_TOKEN_TYPE, 0, "JWE"},
        {"....", TK_REASON_UNSUPPORTED_TOKEN_TYPE, 0, "JWE"},
        {"a.b.c.d.e.f", TK_REASON_MALFORMED_TOKEN, 0, "6 segments"},
        {"a.b.c.d.e.f.g", TK_REASON_MALFORMED_TOKEN, 0, "7 segments"},
        /* Three empty segments: a JWS shape with an empty header. */
        {"..", TK_REASON_MALFORMED_TOKEN, 1, "header"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_verdict v = verify(rows[i].tok, g_ks);
        tu_expect_reason(&v, rows[i].want, rows[i].tok);
        tu_expect_detail_has(&v, rows[i].needle, rows[i].tok);
        tk_token *t = NULL;
        v = parse_lim(rows[i].tok, strlen(rows[i].tok), NULL, &t);
        tu_expect_reason(&v, rows[i].want, rows[i].tok);
        if (rows[i].has_token) {
            assert_non_null(t);
        } else {
            assert_null(t);
        }
        tk_token_free(t);
    }
}

/* ---- JSON ---------------------------------------------------------------- */

static void test_header_not_a_json_object(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "not json",
        "[1,2]",
        "null",
        "\"alg\"",
        "42",
        "{",
        "{\"alg\":\"HS256\"",
        "",
        "{\"alg\":\"HS256\"}x",
        "{\"alg\":\"HS256\",}",
        "{'alg':'HS256'}",
        "{\"alg\":\"HS256\"}{}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *tok = tu_sign(g_hs, headers[i], P_OK);
        expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, headers[i]);
        tk_token *t = NULL;
        tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
        tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, headers[i]);
        assert_non_null(t);
        tu_expect_reason(tk_token_header_verdict(t), TK_REASON_MALFORMED_TOKEN, headers[i]);
        tu_expect_detail_has(tk_token_header_verdict(t), "header", headers[i]);
        /* The payload is still decoded, for tools. */
        tu_expect_reason(tk_token_payload_verdict(t), TK_REASON_VALID, headers[i]);
        char *pj = NULL;
        assert_int_equal(tk_token_payload_json(t, 0, &pj), TK_OK);
        assert_non_null(pj);
        tk_free(pj);
        tk_token_free(t);
        free(tok);
    }
}

static void test_payload_not_a_json_object(void **state)
{
    (void)state;
    static const char *const payloads[] = {"[1]", "null", "\"s\"", "42", "not json", "", "{", "{}x", "true"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", payloads[i]);
        /* The signature is good; the payload is parsed after it. */
        expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, payloads[i]);
        tk_token *t = NULL;
        tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
        tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, payloads[i]);
        assert_non_null(t);
        tu_expect_reason(tk_token_header_verdict(t), TK_REASON_VALID, payloads[i]);
        tu_expect_detail_has(tk_token_payload_verdict(t), "payload", payloads[i]);
        tk_token_free(t);
        free(tok);
    }
}

/* Rule 2. Attack: a verifier that keeps the first "alg" and a library that
 * keeps the last disagree about which algorithm protects the token; with
 * "\u0061lg" the duplicate even hides from a byte-level search. */
static void test_rule2_duplicate_members_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *h;
        const char *p;
    } rows[] = {
        {"{\"alg\":\"HS256\",\"alg\":\"HS256\"}", P_OK},
        {"{\"alg\":\"HS256\",\"\\u0061lg\":\"HS256\"}", P_OK},
        {"{\"\\u0061lg\":\"none\",\"alg\":\"HS256\"}", P_OK},
        {"{\"alg\":\"HS256\",\"kid\":\"hs\",\"kid\":\"other\"}", P_OK},
        {"{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"exp\":1700003600,\"exp\":1}"},
        {"{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"exp\":1700003600,\"\\u0065xp\":1}"},
        {"{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"exp\":1700003600,\"sub\":\"a\",\"s\\u0075b\":\"b\"}"},
        {"{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"exp\":1700003600,\"a\":{\"b\":1,\"b\":2}}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *tok = tu_sign(g_hs, rows[i].h, rows[i].p);
        expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, rows[i].h);
        tk_token *t = NULL;
        tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
        tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, rows[i].p);
        tk_token_free(t);
        free(tok);
    }
    /* The valid case: same names at different levels are not duplicates. */
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"exp\":1700003600,\"a\":{\"b\":1},\"b\":2}");
    expect_verify(tok, g_ks, TK_REASON_VALID, "nested same names");
    free(tok);
}

/* Payload {"exp":..,"n":[[...]]} of JSON depth d (d >= 2). */
static char *deep_payload(size_t d, char open, char close)
{
    size_t n = 32 + 2 * d;
    char *p = malloc(n);
    assert_non_null(p);
    size_t w = (size_t)snprintf(p, n, "{\"exp\":1700003600,\"n\":");
    for (size_t i = 0; i + 1 < d; i++) {
        p[w++] = open;
    }
    for (size_t i = 0; i + 1 < d; i++) {
        p[w++] = close;
    }
    p[w++] = '}';
    p[w] = '\0';
    return p;
}

/* Rule 5: JSON depth <= 16, configurable downward. */
static void test_json_depth_limit(void **state)
{
    (void)state;
    for (int obj = 0; obj < 2; obj++) {
        for (size_t d = 2; d <= 18; d++) {
            char *p = obj ? NULL : deep_payload(d, '[', ']');
            if (obj) {
                /* {"exp":..,"n":{"n":{...{}...}}} */
                size_t n = 32 + 6 * d;
                p = malloc(n);
                assert_non_null(p);
                size_t w = (size_t)snprintf(p, n, "{\"exp\":1700003600,\"n\":");
                for (size_t i = 0; i + 2 < d; i++) {
                    w += (size_t)snprintf(p + w, n - w, "{\"n\":");
                }
                w += (size_t)snprintf(p + w, n - w, "{}");
                for (size_t i = 0; i + 2 < d; i++) {
                    p[w++] = '}';
                }
                p[w++] = '}';
                p[w] = '\0';
            }
            char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", p);
            tk_verdict v = verify(tok, g_ks);
            tu_expect_reason(&v, d <= TK_LIMIT_JSON_DEPTH ? TK_REASON_VALID : TK_REASON_MALFORMED_TOKEN, p);
            if (d > TK_LIMIT_JSON_DEPTH) {
                tu_expect_detail_has(&v, "nesting", p);
            }
            /* Lowered to 4. */
            tk_limits lim;
            tk_limits_default(&lim);
            lim.json_depth = 4;
            v = verify_lim(tok, strlen(tok), g_ks, &lim);
            tu_expect_reason(&v, d <= 4 ? TK_REASON_VALID : TK_REASON_MALFORMED_TOKEN, p);
            free(tok);
            free(p);
        }
    }
    /* The header is bounded the same way. */
    for (size_t d = 15; d <= 17; d++) {
        char h[128];
        size_t w = (size_t)snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"hs\",\"x\":");
        for (size_t i = 0; i + 1 < d; i++) {
            h[w++] = '[';
        }
        for (size_t i = 0; i + 1 < d; i++) {
            h[w++] = ']';
        }
        h[w++] = '}';
        h[w] = '\0';
        char *tok = tu_sign(g_hs, h, P_OK);
        expect_verify(tok, g_ks, d <= 16 ? TK_REASON_VALID : TK_REASON_MALFORMED_TOKEN, h);
        free(tok);
    }
}

/* Payload with `members` members in the top object (or in a nested one). */
static char *wide_payload(size_t members, int nested)
{
    size_t n = 64 + members * 16;
    char *p = malloc(n);
    assert_non_null(p);
    size_t w = (size_t)snprintf(p, n, nested ? "{\"exp\":1700003600,\"o\":{" : "{\"exp\":1700003600");
    size_t others = nested ? members : members - 1;
    for (size_t i = 0; i < others; i++) {
        w += (size_t)snprintf(p + w, n - w, "%s\"m%zu\":%zu", (nested && i == 0) ? "" : ",", i, i);
    }
    snprintf(p + w, n - w, nested ? "}}" : "}");
    return p;
}

/* Rule 5: at most 64 members per object, configurable downward. */
static void test_json_member_limit(void **state)
{
    (void)state;
    static const struct {
        size_t members;
        int nested;
        tk_reason want;
    } rows[] = {
        {63, 0, TK_REASON_VALID}, {64, 0, TK_REASON_VALID},           {65, 0, TK_REASON_MALFORMED_TOKEN},
        {64, 1, TK_REASON_VALID}, {65, 1, TK_REASON_MALFORMED_TOKEN}, {200, 0, TK_REASON_MALFORMED_TOKEN},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *p = wide_payload(rows[i].members, rows[i].nested);
        char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", p);
        tk_verdict v = verify(tok, g_ks);
        tu_expect_reason(&v, rows[i].want, p);
        if (rows[i].want != TK_REASON_VALID) {
            tu_expect_detail_has(&v, "members", p);
        }
        free(tok);
        free(p);
    }
    /* Lowered to 10. */
    tk_limits lim;
    tk_limits_default(&lim);
    lim.json_members = 10;
    for (size_t m = 9; m <= 11; m++) {
        char *p = wide_payload(m, 0);
        char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", p);
        tk_verdict v = verify_lim(tok, strlen(tok), g_ks, &lim);
        tu_expect_reason(&v, m <= 10 ? TK_REASON_VALID : TK_REASON_MALFORMED_TOKEN, p);
        free(tok);
        free(p);
    }
    /* Header with 65 members. */
    char h[1024];
    size_t w = (size_t)snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"hs\"");
    for (size_t i = 0; i < 63; i++) {
        w += (size_t)snprintf(h + w, sizeof h - w, ",\"h%zu\":0", i);
    }
    snprintf(h + w, sizeof h - w, "}");
    char *tok = tu_sign(g_hs, h, P_OK);
    expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, "header with 65 members");
    free(tok);
}

/* Rule 5. Attack: a payload nested thousands deep exhausts the stack of a
 * recursive parser; it must be refused in one linear scan. */
static void test_deep_nesting_rejected_fast(void **state)
{
    (void)state;
    double t0 = tu_now_ms();
    /* 10,000 deep does not even fit the size limits. */
    char *p = deep_payload(10000, '[', ']');
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", p);
    expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, "10,000 deep");
    tk_token *t = NULL;
    tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "parse 10,000 deep");
    tk_token_free(t);
    free(tok);
    free(p);
    /* 3,000 deep fits the size limits: refused by depth. */
    p = deep_payload(3000, '[', ']');
    tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", p);
    assert_true(strlen(tok) <= TK_LIMIT_TOKEN_LEN);
    v = verify(tok, g_ks);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "3,000 deep");
    tu_expect_detail_has(&v, "nesting", "3,000 deep");
    free(tok);
    free(p);
    /* The JSON module directly: 10,000 and 100,000 deep, closed or not. */
    size_t big = 100000;
    unsigned char *s = malloc(2 * big + 8);
    assert_non_null(s);
    for (size_t depth = 10000; depth <= big; depth *= 10) {
        for (int closed = 0; closed < 2; closed++) {
            size_t w = 0;
            s[w++] = '{';
            memcpy(s + w, "\"a\":", 4);
            w += 4;
            for (size_t i = 0; i < depth; i++) {
                s[w++] = '[';
            }
            if (closed) {
                for (size_t i = 0; i < depth; i++) {
                    s[w++] = ']';
                }
                s[w++] = '}';
            }
            char err[200];
            json_t *j = tki_json_parse_object(s, w, TK_LIMIT_JSON_DEPTH, TK_LIMIT_JSON_MEMBERS, err, sizeof err);
            assert_null(j);
            if (strstr(err, "nesting") == NULL) {
                fail_msg("depth %zu: error \"%s\"", depth, err);
            }
        }
    }
    free(s);
    double ms = tu_now_ms() - t0;
    if (ms > 500.0) {
        fail_msg("deep nesting took %.1f ms", ms);
    }
}

/* NUL bytes, \u0000 and invalid UTF-8 in JSON are malformed_token. */
static void test_nul_and_invalid_utf8(void **state)
{
    (void)state;
#define LIT(s) s, sizeof(s) - 1
    static const struct {
        const char *name;
        const char *p;
        size_t n;
    } bad[] = {
        {"raw NUL in a string", LIT("{\"exp\":1700003600,\"a\":\"x\0y\"}")},
        {"raw NUL after the object", LIT("{\"exp\":1700003600}\0")},
        {"raw NUL between members", LIT("{\"exp\":1700003600,\0\"a\":1}")},
        {"escaped NUL", LIT("{\"exp\":1700003600,\"a\":\"\\u0000\"}")},
        {"escaped NUL in a name", LIT("{\"exp\":1700003600,\"a\\u0000b\":1}")},
        {"C3 28", LIT("{\"exp\":1700003600,\"a\":\"\xc3\x28\"}")},
        {"overlong slash", LIT("{\"exp\":1700003600,\"a\":\"\xc0\xaf\"}")},
        {"lone continuation", LIT("{\"exp\":1700003600,\"a\":\"\x80\"}")},
        {"FF byte", LIT("{\"exp\":1700003600,\"a\":\"\xff\"}")},
        {"UTF-8 surrogate", LIT("{\"exp\":1700003600,\"a\":\"\xed\xa0\x80\"}")},
        {"lone surrogate escape", LIT("{\"exp\":1700003600,\"a\":\"\\ud800\"}")},
        {"truncated sequence", LIT("{\"exp\":1700003600,\"a\":\"\xe2\x82\"}")},
    };
#undef LIT
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = bad[i].n;
        char *tok = tu_sign_n(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", bad[i].p, n);
        expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, bad[i].name);
        tk_token *t = NULL;
        tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
        tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, bad[i].name);
        tu_expect_reason(tk_token_payload_verdict(t), TK_REASON_MALFORMED_TOKEN, bad[i].name);
        tk_token_free(t);
        free(tok);
    }
    /* Valid UTF-8, escaped or raw, including a surrogate pair. */
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}",
                        "{\"exp\":1700003600,\"a\":\"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00 \xf0\x9f\x98\x80\"}");
    expect_verify(tok, g_ks, TK_REASON_VALID, "valid UTF-8");
    free(tok);
    /* NUL in the header. */
    static const char hdr_nul[] = "{\"alg\":\"HS256\",\"kid\":\"hs\"}\0";
    char *hb = tu_b64(hdr_nul, sizeof hdr_nul - 1);
    char *pb = tu_b64(P_OK, strlen(P_OK));
    tok = sign_segments(g_hs, hb, pb);
    expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, "NUL after the header object");
    free(tok);
    free(hb);
    free(pb);
}

/* ---- header policy --------------------------------------------------------- */

static void test_alg_missing_or_not_a_string(void **state)
{
    (void)state;
    static const char *const headers[] = {
        "{}",
        "{\"typ\":\"JWT\",\"kid\":\"hs\"}",
        "{\"alg\":123,\"kid\":\"hs\"}",
        "{\"alg\":null,\"kid\":\"hs\"}",
        "{\"alg\":true,\"kid\":\"hs\"}",
        "{\"alg\":[\"HS256\"],\"kid\":\"hs\"}",
        "{\"alg\":{\"name\":\"HS256\"},\"kid\":\"hs\"}",
        "{\"ALG\":\"HS256\",\"kid\":\"hs\"}",
        /* Other typed header members. */
        "{\"alg\":\"HS256\",\"kid\":5}",
        "{\"alg\":\"HS256\",\"kid\":\"\"}",
        "{\"alg\":\"HS256\",\"kid\":\"hs\",\"typ\":7}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *tok = tu_sign(g_hs, headers[i], P_OK);
        expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, headers[i]);
        free(tok);
    }
}

/* Rule 1. Attack (CVE-2015-9235 and kin): a token that says "alg":"none"
 * and carries no signature, or a variant spelling that a lax comparison
 * maps to a real algorithm, must never verify: the alg comes from the key. */
static void test_rule1_alg_none_and_variants(void **state)
{
    (void)state;
    static const char *const algs[] = {"none",   "None",     "NONE",   "nOnE",    "",
                                       "HS256 ", " HS256",   "hs256",  "HS-256",  "HS 256",
                                       "HS2560", "RSA-OAEP", "ES256K", "ed25519", "HS256\\u0000"};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char h[96];
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"hs\"}", algs[i]);
        /* With a correct HMAC over the content... */
        char *tok = tu_sign(g_hs, h, P_OK);
        tk_verdict v = verify(tok, g_ks);
        /* "\u0000" inside a string is malformed JSON before it is an alg. */
        tk_reason want = strstr(algs[i], "\\u0000") ? TK_REASON_MALFORMED_TOKEN : TK_REASON_ALG_NOT_ALLOWED;
        tu_expect_reason(&v, want, h);
        /* ...and with no signature at all. */
        const char *dot = strrchr(tok, '.');
        tok[dot - tok + 1] = '\0';
        v = verify(tok, g_ks);
        tu_expect_reason(&v, want, h);
        if (strcmp(algs[i], "none") == 0 || strcmp(algs[i], "NONE") == 0) {
            tu_expect_detail_has(&v, "never accepted", h);
        }
        free(tok);
        /* Without a kid too. */
        snprintf(h, sizeof h, "{\"alg\":\"%s\"}", algs[i]);
        tok = tu_sign(g_hs, h, P_OK);
        expect_verify(tok, g_ks, want, h);
        free(tok);
    }
    /* The valid case: the key's own alg. */
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_VALID, "HS256");
    free(tok);
}

/* Rule 3. Attack (CVE-2018-0114 and kin): the token names its own key
 * (jwk) or where to fetch it (jku, x5u, x5c); a verifier that uses it
 * accepts any token the attacker signs. Refused even when the embedded key
 * is the trusted one and the signature is valid. */
static void test_rule3_embedded_key_headers(void **state)
{
    (void)state;
    char *es_jwk = NULL;
    assert_int_equal(tk_key_to_jwk(g_es, 0, &es_jwk), TK_OK);
    tk_key *attacker = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, NULL, &attacker), TK_OK);
    char *att_jwk = NULL;
    assert_int_equal(tk_key_to_jwk(attacker, 0, &att_jwk), TK_OK);
    const char *values[4] = {es_jwk, "\"https://attacker.example/jwks.json\"", "\"https://attacker.example/c.pem\"",
                             "[\"MIIBszCCAVmgAwIBAgIUQ==\"]"};
    static const char *const names[4] = {"jwk", "jku", "x5u", "x5c"};
    for (size_t i = 0; i < 4; i++) {
        char h[1024];
        /* Signed by the trusted key, which the kid names. */
        snprintf(h, sizeof h, "{\"alg\":\"ES256\",\"kid\":\"es\",\"%s\":%s}", names[i], values[i]);
        char *tok = tu_sign(g_es, h, P_OK);
        tk_verdict v = verify(tok, g_ks);
        tu_expect_reason(&v, TK_REASON_EMBEDDED_KEY, h);
        tu_expect_detail_has(&v, names[i], h);
        free(tok);
        /* Signed by the attacker, whose key rides along, no kid. */
        snprintf(h, sizeof h, "{\"alg\":\"ES256\",\"%s\":%s}", names[i], i == 0 ? att_jwk : values[i]);
        tok = tu_sign(attacker, h, P_OK);
        expect_verify(tok, g_ks, TK_REASON_EMBEDDED_KEY, h);
        tk_token *t = NULL;
        v = parse_lim(tok, strlen(tok), NULL, &t);
        tu_expect_reason(&v, TK_REASON_EMBEDDED_KEY, h);
        tk_token_free(t);
        free(tok);
    }
    /* The valid case: the same token without the member. */
    char *tok = tu_sign(g_es, "{\"alg\":\"ES256\",\"kid\":\"es\"}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_VALID, "ES256 with kid");
    free(tok);
    tk_free(es_jwk);
    tk_free(att_jwk);
    tk_key_free(attacker);
}

/* Rule 4. Attack: "crit" demands semantics we do not implement (ignoring
 * them is what RFC 7515 §4.1.11 forbids); "b64":false changes what was
 * signed; "cty" smuggles a nested token past the checks of the outer one. */
static void test_rule4_jws_extensions_refused(void **state)
{
    (void)state;
    static const char *const extra[] = {
        "\"crit\":[\"exp\"]", "\"crit\":[]",       "\"crit\":\"b64\"", "\"crit\":[\"b64\"],\"b64\":true",
        "\"b64\":false",      "\"b64\":\"false\"", "\"b64\":0",        "\"b64\":null",
        "\"b64\":\"true\"",   "\"cty\":\"JWT\"",   "\"cty\":\"json\"", "\"cty\":\"\"",
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"hs\",%s}", extra[i]);
        char *tok = tu_sign(g_hs, h, P_OK);
        expect_verify(tok, g_ks, TK_REASON_UNSUPPORTED_TOKEN_TYPE, h);
        free(tok);
    }
    /* The valid case: b64 true alone is the default spelled out. */
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\",\"b64\":true}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_VALID, "b64 true");
    free(tok);
}

static void test_unknown_kid(void **state)
{
    (void)state;
    tk_keyset *ks = tu_keyset(tu_public_copy(g_hs), tu_public_copy(g_es), tu_public_copy(g_rsa), (tk_key *)NULL);
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"old-2024\"}", P_OK);
    tk_verdict v = verify(tok, ks);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "unknown kid");
    tu_expect_detail_has(&v, "\"old-2024\"", "the token's kid");
    tu_expect_detail_has(&v, "\"hs\"", "known kid hs");
    tu_expect_detail_has(&v, "\"es\"", "known kid es");
    tu_expect_detail_has(&v, "\"rsa\"", "known kid rsa");
    assert_null(strstr(v.detail, "rotated"));
    /* Once recorded as retired, the detail says it was rotated out. */
    assert_int_equal(tk_keyset_add_retired_kid(ks, "old-2024"), TK_OK);
    v = verify(tok, ks);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "retired kid");
    tu_expect_detail_has(&v, "rotated out", "retired kid");
    free(tok);
    tk_keyset_free(ks);

    /* kid length: 128 bytes is a kid, 129 is malformed. */
    char kid[140];
    char h[200];
    memset(kid, 'k', TK_LIMIT_KID_LEN);
    kid[TK_LIMIT_KID_LEN] = '\0';
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    tok = tu_sign(g_hs, h, P_OK);
    expect_verify(tok, g_ks, TK_REASON_UNKNOWN_KEY, "kid of 128 bytes, not in set");
    tk_key *k128 = tu_hs256(kid, 0);
    tk_keyset *ks128 = tu_keyset(k128, (tk_key *)NULL);
    expect_verify(tok, ks128, TK_REASON_VALID, "kid of 128 bytes, in set");
    tk_keyset_free(ks128);
    free(tok);
    kid[TK_LIMIT_KID_LEN] = 'k';
    kid[TK_LIMIT_KID_LEN + 1] = '\0';
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    tok = tu_sign(g_hs, h, P_OK);
    expect_verify(tok, g_ks, TK_REASON_MALFORMED_TOKEN, "kid of 129 bytes");
    free(tok);

    /* Keys without kids: the detail says so. */
    tk_keyset *nokid = tu_keyset(tu_hs256(NULL, 0), (tk_key *)NULL);
    tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"x\"}", P_OK);
    v = verify(tok, nokid);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "kid against kid-less keys");
    tu_expect_detail_has(&v, "no kid", "kid-less keys");
    free(tok);
    tk_keyset_free(nokid);

    /* An empty key set knows no key. */
    tk_keyset *empty = NULL;
    assert_int_equal(tk_keyset_new(&empty), TK_OK);
    tok = tu_sign(g_hs, "{\"alg\":\"HS256\"}", P_OK);
    expect_verify(tok, empty, TK_REASON_UNKNOWN_KEY, "empty key set, no kid");
    free(tok);
    tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    expect_verify(tok, empty, TK_REASON_UNKNOWN_KEY, "empty key set, kid");
    free(tok);
    tk_keyset_free(empty);
}

/* The list of known kids is cut, never overflows: 64 keys with 100-byte
 * kids do not fit TK_LIMIT_DETAIL_LEN. */
static void test_unknown_kid_detail_is_bounded(void **state)
{
    (void)state;
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    for (size_t i = 0; i < TK_LIMIT_KEYSET_KEYS; i++) {
        char kid[101];
        snprintf(kid, sizeof kid, "%03zu", i);
        memset(kid + 3, 'x', 97);
        kid[100] = '\0';
        assert_int_equal(tk_keyset_add(ks, tu_hs256(kid, (unsigned char)i)), TK_OK);
    }
    char kid[TK_LIMIT_KID_LEN + 1];
    memset(kid, 'q', TK_LIMIT_KID_LEN);
    kid[TK_LIMIT_KID_LEN] = '\0';
    char h[256];
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    char *tok = tu_sign(g_hs, h, P_OK);
    tk_verdict v = verify(tok, ks);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "many long kids");
    size_t n = strlen(v.detail);
    assert_true(n < TK_LIMIT_DETAIL_LEN);
    /* Cut with an ellipsis (limits.h), here inside the last quoted kid. */
    if (strstr(v.detail + n - 8, "...") == NULL) {
        fail_msg("a cut detail must end with an ellipsis (limits.h): %s", v.detail);
    }
    tu_expect_detail_has(&v, "\"000xxx", "first known kid shown (cut)");
    free(tok);
    tk_keyset_free(ks);
}

/* Rule 1: the token's alg must equal the alg the key is bound to. */
static void test_rule1_alg_differs_from_key(void **state)
{
    (void)state;
    /* An HS256 token naming the ES256 key's kid. */
    tk_key *hs_as_es = tu_hs256("es", 0x11);
    char *tok = tu_sign(hs_as_es, "{\"alg\":\"HS256\",\"kid\":\"es\"}", P_OK);
    tk_verdict v = verify(tok, g_ks);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "HS256 token, ES256 key");
    tu_expect_detail_has(&v, "HS256", "token alg");
    tu_expect_detail_has(&v, "ES256", "key alg");
    free(tok);
    tk_key_free(hs_as_es);
    /* An ES384 token naming the ES256 key's kid. */
    tk_key *es384 = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES384, "es", &es384), TK_OK);
    tok = tu_sign(es384, "{\"alg\":\"ES384\",\"kid\":\"es\"}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_ALG_NOT_ALLOWED, "ES384 token, ES256 key");
    free(tok);
    /* An RS256 token naming the HMAC key. */
    tok = tu_sign(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"hs\"}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_ALG_NOT_ALLOWED, "RS256 token, HS256 key");
    free(tok);
    /* A PS256 token naming the RS256 key: same key type, other alg. */
    tk_key *ps = NULL;
    assert_int_equal(tk_key_from_pem(g_rsa_priv_pem, strlen(g_rsa_priv_pem), TK_ALG_PS256, "rsa", &ps), TK_OK);
    tok = tu_sign(ps, "{\"alg\":\"PS256\",\"kid\":\"rsa\"}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_ALG_NOT_ALLOWED, "PS256 token, RS256 key");
    free(tok);
    tk_key_free(ps);
    tk_key_free(es384);
}

/* Rule 1. Attack (CVE-2016-10555, CVE-2017-11424 and kin): the attacker
 * takes the verifier's public RSA key in PEM form and uses it as an HMAC
 * secret; a verifier that lets the token pick HS256 "verifies" it with the
 * public key. The key is bound to RS256, so the token is refused. */
static void test_rule1_key_confusion_rsa_pem_as_hmac_secret(void **state)
{
    (void)state;
    const unsigned char *pem = (const unsigned char *)g_rsa_pub_pem;
    size_t pem_len = strlen(g_rsa_pub_pem);
    tk_key *forger = NULL;
    assert_int_equal(tk_key_from_secret(pem, pem_len, TK_ALG_HS256, "rsa", &forger), TK_OK);
    /* With the RSA key's kid. */
    char *tok = tu_sign(forger, "{\"alg\":\"HS256\",\"kid\":\"rsa\"}", P_OK);
    tk_verdict v = verify(tok, g_ks);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "PEM-as-secret HS256, kid rsa");
    free(tok);
    /* Without a kid, against a key set holding only the RSA key. */
    tk_keyset *rsa_only = tu_keyset(tu_public_copy(g_rsa), (tk_key *)NULL);
    tok = tu_sign(forger, "{\"alg\":\"HS256\"}", P_OK);
    v = verify(tok, rsa_only);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "PEM-as-secret HS256, no kid");
    tu_expect_detail_has(&v, "RS256", "the key's alg is named");
    free(tok);
    /* Claiming RS256 while carrying an HMAC tag: a bad signature. */
    tok = tu_sign(forger, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", P_OK);
    expect_verify(tok, rsa_only, TK_REASON_BAD_SIGNATURE, "HMAC tag under RS256");
    free(tok);
    /* An unbound RSA key (loaded from PEM without alg) does not help. */
    tk_key *unbound = NULL;
    assert_int_equal(tk_key_from_pem(g_rsa_pub_pem, pem_len, TK_ALG_UNSET, "rsa", &unbound), TK_OK);
    tk_keyset *ks_unbound = tu_keyset(unbound, (tk_key *)NULL);
    tok = tu_sign(forger, "{\"alg\":\"HS256\",\"kid\":\"rsa\"}", P_OK);
    expect_verify(tok, ks_unbound, TK_REASON_ALG_NOT_ALLOWED, "PEM-as-secret vs unbound RSA key, kid");
    free(tok);
    tok = tu_sign(forger, "{\"alg\":\"HS256\"}", P_OK);
    expect_verify(tok, ks_unbound, TK_REASON_ALG_NOT_ALLOWED, "PEM-as-secret vs unbound RSA key, no kid");
    free(tok);
    tk_keyset_free(ks_unbound);
    /* The valid case: a real RS256 token. */
    tok = tu_sign(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", P_OK);
    expect_verify(tok, g_ks, TK_REASON_VALID, "RS256 with kid");
    free(tok);
    tok = tu_sign(g_rsa, "{\"alg\":\"RS256\"}", P_OK);
    expect_verify(tok, rsa_only, TK_REASON_VALID, "RS256 without kid");
    free(tok);
    tk_keyset_free(rsa_only);
    tk_key_free(forger);
}

/* ---- signatures ------------------------------------------------------------ */

static void curve_order(int nid, unsigned char *out, size_t c)
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(nid);
    assert_non_null(g);
    assert_true(BN_bn2binpad(EC_GROUP_get0_order(g), out, (int)c) == (int)c);
    EC_GROUP_free(g);
}

/* out = n - v (big-endian, c bytes), for the other valid form of s. */
static void sub_from_order(const unsigned char *n, const unsigned char *v, unsigned char *out, size_t c)
{
    int borrow = 0;
    for (size_t i = c; i-- > 0;) {
        int d = (int)n[i] - (int)v[i] - borrow;
        borrow = d < 0;
        out[i] = (unsigned char)(d < 0 ? d + 256 : d);
    }
}

static char *der_signature_token(const char *tok, const unsigned char *sig, size_t c)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    assert_non_null(es);
    BIGNUM *r = BN_bin2bn(sig, (int)c, NULL);
    BIGNUM *s = BN_bin2bn(sig + c, (int)c, NULL);
    assert_true(r && s && ECDSA_SIG_set0(es, r, s) == 1);
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    assert_true(dl > 0);
    char *out = with_sig(tok, der, (size_t)dl);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return out;
}

/* Rule 7. Attack (CVE-2022-21449, "psychic signatures"): r = s = 0 or
 * values not below the curve order must never verify; a DER signature or
 * one of the wrong length is not a JWS ECDSA signature. */
static void test_rule7_ecdsa_signature_forms(void **state)
{
    (void)state;
    static const struct {
        tk_alg alg;
        int nid;
        size_t c;
    } curves[] = {
        {TK_ALG_ES256, NID_X9_62_prime256v1, 32}, {TK_ALG_ES384, NID_secp384r1, 48}, {TK_ALG_ES512, NID_secp521r1, 66}};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t c = curves[ci].c;
        tk_key *k = NULL;
        assert_int_equal(tk_key_generate(curves[ci].alg, "ec", &k), TK_OK);
        tk_keyset *ks = tu_keyset(tu_public_copy(k), (tk_key *)NULL);
        char h[64];
        snprintf(h, sizeof h, "{\"alg\":\"%s\",\"kid\":\"ec\"}", tk_alg_name(curves[ci].alg));
        char *tok = tu_sign(k, h, P_OK);
        expect_verify(tok, ks, TK_REASON_VALID, "genuine ECDSA");
        size_t sl = 0;
        unsigned char *sig = get_sig(tok, &sl);
        assert_int_equal(sl, 2 * c);
        unsigned char n[66];
        curve_order(curves[ci].nid, n, c);
        unsigned char buf[4 * 66 + 8];
        struct {
            const char *name;
            int r_mode; /* 0 keep, 1 zero, 2 = n, 3 = all ff, 4 = n + 1 */
            int s_mode;
        } forms[] = {
            {"r = 0", 1, 0},     {"s = 0", 0, 1},       {"r = s = 0", 1, 1},   {"r = n", 2, 0},     {"s = n", 0, 2},
            {"r = s = n", 2, 2}, {"r = 2^k - 1", 3, 0}, {"s = 2^k - 1", 0, 3}, {"r = n + 1", 4, 0}, {"s = n + 1", 0, 4},
        };
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            memcpy(buf, sig, 2 * c);
            int modes[2] = {forms[f].r_mode, forms[f].s_mode};
            for (size_t half = 0; half < 2; half++) {
                unsigned char *x = buf + half * c;
                switch (modes[half]) {
                case 1:
                    memset(x, 0, c);
                    break;
                case 2:
                    memcpy(x, n, c);
                    break;
                case 3:
                    memset(x, 0xff, c);
                    break;
                case 4:
                    memcpy(x, n, c);
                    for (size_t i = c; i-- > 0;) {
                        x[i] = (unsigned char)(x[i] + 1u);
                        if (x[i] != 0) {
                            break;
                        }
                    }
                    break;
                default:
                    break;
                }
            }
            char *forged = with_sig(tok, buf, 2 * c);
            tk_verdict v = verify(forged, ks);
            tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, forms[f].name);
            free(forged);
        }
        /* DER instead of raw r||s. */
        char *der = der_signature_token(tok, sig, c);
        tk_verdict v = verify(der, ks);
        tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "DER signature");
        tu_expect_detail_has(&v, "DER", "DER named");
        free(der);
        /* Wrong lengths: one byte short, one byte long, empty, doubled. */
        size_t lens[] = {2 * c - 1, 2 * c + 1, 0, 4 * c};
        for (size_t i = 0; i < 4; i++) {
            memset(buf, 0, sizeof buf);
            memcpy(buf, sig, lens[i] < 2 * c ? lens[i] : 2 * c);
            char *forged = with_sig(tok, buf, lens[i]);
            v = verify(forged, ks);
            tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "wrong-length ECDSA signature");
            free(forged);
        }
        /* The other valid form (r, n - s) verifies: this is why revocation
         * is keyed on jti and sid, never on the token string (rule 14). */
        memcpy(buf, sig, c);
        sub_from_order(n, sig + c, buf + c, c);
        char *twin = with_sig(tok, buf, 2 * c);
        assert_string_not_equal(twin, tok);
        expect_verify(twin, ks, TK_REASON_VALID, "ECDSA (r, n - s)");
        free(twin);
        free(sig);
        free(tok);
        tk_keyset_free(ks);
        tk_key_free(k);
    }
    /* P-256 only: ES256 signature of 63 and 65 bytes, as the brief names. */
    char *tok = tu_sign(g_es, "{\"alg\":\"ES256\",\"kid\":\"es\"}", P_OK);
    size_t sl = 0;
    unsigned char *sig = get_sig(tok, &sl);
    char *t63 = with_sig(tok, sig, 63);
    expect_verify(t63, g_ks, TK_REASON_BAD_SIGNATURE, "63-byte ES256");
    unsigned char sig65[65];
    memcpy(sig65, sig, 64);
    sig65[64] = 0;
    char *t65 = with_sig(tok, sig65, 65);
    tk_verdict v = verify(t65, g_ks);
    tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "65-byte ES256");
    tu_expect_detail_has(&v, "64", "expected length named");
    free(t63);
    free(t65);
    free(sig);
    free(tok);
}

/* A PS256 signature over `msg` made by OpenSSL with the given salt length
 * and MGF1 digest. */
static unsigned char *pss_sign(const char *msg, int salt, const EVP_MD *mgf1, size_t *sl)
{
    unsigned char dg[32];
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(msg, strlen(msg), dg, &dl, EVP_sha256(), NULL), 1);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(g_rsa_pk, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_sign_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, salt), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(c, mgf1), 1);
    *sl = 0;
    assert_int_equal(EVP_PKEY_sign(c, NULL, sl, dg, dl), 1);
    unsigned char *sig = malloc(*sl);
    assert_non_null(sig);
    assert_int_equal(EVP_PKEY_sign(c, sig, sl, dg, dl), 1);
    EVP_PKEY_CTX_free(c);
    return sig;
}

/* Rule 7. Attack: OpenSSL's PSS verification accepts any salt length by
 * default; RFC 7518 §3.5 fixes it to the hash length, and a verifier that
 * accepts others accepts signatures no JWS signer makes. */
static void test_rule7_pss_salt_length_pinned(void **state)
{
    (void)state;
    tk_key *ps = NULL;
    assert_int_equal(tk_key_from_pem(g_rsa_pub_pem, strlen(g_rsa_pub_pem), TK_ALG_PS256, "ps", &ps), TK_OK);
    tk_keyset *ks = tu_keyset(ps, (tk_key *)NULL);
    static const char hdr[] = "{\"alg\":\"PS256\",\"kid\":\"ps\"}";
    char *hb = tu_b64(hdr, strlen(hdr));
    char *pb = tu_b64(P_OK, strlen(P_OK));
    char si[256];
    snprintf(si, sizeof si, "%s.%s", hb, pb);
    static const struct {
        int salt;
        int sha1_mgf;
        tk_reason want;
    } rows[] = {
        {32, 0, TK_REASON_VALID},
        {0, 0, TK_REASON_BAD_SIGNATURE},
        {20, 0, TK_REASON_BAD_SIGNATURE},
        {31, 0, TK_REASON_BAD_SIGNATURE},
        {33, 0, TK_REASON_BAD_SIGNATURE},
        {64, 0, TK_REASON_BAD_SIGNATURE},
        {RSA_PSS_SALTLEN_MAX, 0, TK_REASON_BAD_SIGNATURE},
        {32, 1, TK_REASON_BAD_SIGNATURE},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t sl = 0;
        unsigned char *sig = pss_sign(si, rows[i].salt, rows[i].sha1_mgf ? EVP_sha1() : EVP_sha256(), &sl);
        char *sb = tu_b64(sig, sl);
        char tok[1024];
        snprintf(tok, sizeof tok, "%s.%s", si, sb);
        char what[64];
        snprintf(what, sizeof what, "PSS salt %d%s", rows[i].salt, rows[i].sha1_mgf ? ", MGF1-SHA1" : "");
        expect_verify(tok, ks, rows[i].want, what);
        free(sb);
        free(sig);
    }
    free(hb);
    free(pb);
    tk_keyset_free(ks);
}

/* Rule 7: HMAC tags and RSA signatures have exact lengths. Attack: a
 * verifier that compares only the first bytes of a truncated tag lets an
 * attacker forge it byte by byte. */
static void test_rule7_exact_signature_lengths(void **state)
{
    (void)state;
    const tk_key *keys[2] = {g_hs, g_rsa};
    const char *hdrs[2] = {"{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"alg\":\"RS256\",\"kid\":\"rsa\"}"};
    for (size_t ki = 0; ki < 2; ki++) {
        char *tok = tu_sign(keys[ki], hdrs[ki], P_OK);
        expect_verify(tok, g_ks, TK_REASON_VALID, hdrs[ki]);
        size_t sl = 0;
        unsigned char *sig = get_sig(tok, &sl);
        unsigned char *longer = calloc(sl + 2, 1);
        assert_non_null(longer);
        /* Truncated: the first half, and all but the last byte. */
        size_t cuts[3] = {sl / 2, sl - 1, 1};
        for (size_t c = 0; c < 3; c++) {
            char *bad = with_sig(tok, sig, cuts[c]);
            tk_verdict v = verify(bad, g_ks);
            tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "truncated signature");
            free(bad);
        }
        /* Extended: a trailing byte, and a leading zero byte. */
        memcpy(longer, sig, sl);
        char *bad = with_sig(tok, longer, sl + 1);
        expect_verify(bad, g_ks, TK_REASON_BAD_SIGNATURE, "signature with a trailing byte");
        free(bad);
        longer[0] = 0;
        memcpy(longer + 1, sig, sl);
        bad = with_sig(tok, longer, sl + 1);
        expect_verify(bad, g_ks, TK_REASON_BAD_SIGNATURE, "signature with a leading zero");
        free(bad);
        free(longer);
        free(sig);
        free(tok);
    }
}

/* One key of each alg, with a second key of the same alg for "signed by
 * another key" checks. RSA keys come from the file's one RSA key pair. */
static tk_key *key_for(tk_alg a, const char *kid)
{
    tk_key *k = NULL;
    if (tki_alg_is_rsa(a)) {
        assert_int_equal(tk_key_from_pem(g_rsa_priv_pem, strlen(g_rsa_priv_pem), a, kid, &k), TK_OK);
    } else {
        assert_int_equal(tk_key_generate(a, kid, &k), TK_OK);
    }
    return k;
}

/* A bit flipped anywhere in the signature or the payload: bad_signature. */
static void test_flipped_bits(void **state)
{
    (void)state;
    for (tk_alg a = TK_ALG_HS256; a < TK_ALG_COUNT_; a = (tk_alg)(a + 1)) {
        tk_key *k = key_for(a, "k");
        tk_keyset *ks = tu_keyset(tu_public_copy(k), (tk_key *)NULL);
        char *tok = NULL;
        size_t tl = 0;
        assert_int_equal(tk_sign(k, NULL, (const unsigned char *)P_OK, strlen(P_OK), &tok, &tl), TK_OK);
        expect_verify(tok, ks, TK_REASON_VALID, tk_alg_name(a));
        size_t sl = 0;
        unsigned char *sig = get_sig(tok, &sl);
        size_t where[3] = {0, sl / 2, sl - 1};
        for (size_t w = 0; w < 3; w++) {
            for (unsigned bit = 0; bit < 8; bit += 7) {
                sig[where[w]] = (unsigned char)(sig[where[w]] ^ (1u << bit));
                char *bad = with_sig(tok, sig, sl);
                tk_verdict v = verify(bad, ks);
                if (v.reason != TK_REASON_BAD_SIGNATURE) {
                    fail_msg("%s: signature byte %zu bit %u flipped: %s (%s)", tk_alg_name(a), where[w], bit,
                             tk_reason_code(v.reason), v.detail);
                }
                free(bad);
                sig[where[w]] = (unsigned char)(sig[where[w]] ^ (1u << bit));
            }
        }
        /* Payload: "alice" becomes "clice", still valid JSON. */
        char p[] = P_OK;
        char *alice = strstr(p, "alice");
        alice[0] = (char)(alice[0] ^ 2);
        char *pb = tu_b64(p, strlen(p));
        char *bad = with_payload_seg(tok, pb);
        expect_verify(bad, ks, TK_REASON_BAD_SIGNATURE, "payload bit flipped");
        free(bad);
        free(pb);
        free(sig);
        free(tok);
        tk_keyset_free(ks);
        tk_key_free(k);
    }
}

/* Rule 8. Attack: an error path that reports "expired" (or any claim) for
 * a forged token lets an attacker probe claims and confuses operators;
 * signature first, and when it fails that is the whole verdict. */
static void test_rule8_signature_verdict_wins(void **state)
{
    (void)state;
    static const char *const payloads[] = {
        "{\"exp\":1000,\"sub\":\"alice\"}",
        "{\"sub\":\"alice\"}",
        "{\"exp\":1700003600,\"nbf\":1800000000}",
        "not even json",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", payloads[i]);
        size_t sl = 0;
        unsigned char *sig = get_sig(tok, &sl);
        sig[3] = (unsigned char)(sig[3] ^ 0x10u);
        char *bad = with_sig(tok, sig, sl);
        tk_verdict v = verify(bad, g_ks);
        tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, payloads[i]);
        assert_null(strstr(v.detail, "expire"));
        assert_null(strstr(v.detail, "payload"));
        /* Signed by another key: same verdict. */
        tk_key *other = tu_hs256("hs", 0x42);
        char *tok2 = tu_sign(other, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", payloads[i]);
        expect_verify(tok2, g_ks, TK_REASON_BAD_SIGNATURE, payloads[i]);
        /* Unknown kid beats the claims as well. */
        char *tok3 = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"zz\"}", payloads[i]);
        expect_verify(tok3, g_ks, TK_REASON_UNKNOWN_KEY, payloads[i]);
        free(tok3);
        free(tok2);
        tk_key_free(other);
        free(bad);
        free(sig);
        free(tok);
    }
    /* The valid case: a good signature, then the claims speak. */
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", "{\"exp\":1000}");
    expect_verify(tok, g_ks, TK_REASON_EXPIRED, "expired with a good signature");
    free(tok);
}

/* Sign and verify with every alg; the public half verifies, another key of
 * the same alg does not. */
static void test_roundtrip_every_alg(void **state)
{
    (void)state;
    static const size_t sig_len[TK_ALG_COUNT_] = {
        [TK_ALG_HS256] = 32,  [TK_ALG_HS384] = 48,  [TK_ALG_HS512] = 64,  [TK_ALG_RS256] = 256, [TK_ALG_RS384] = 256,
        [TK_ALG_RS512] = 256, [TK_ALG_PS256] = 256, [TK_ALG_PS384] = 256, [TK_ALG_PS512] = 256, [TK_ALG_ES256] = 64,
        [TK_ALG_ES384] = 96,  [TK_ALG_ES512] = 132, [TK_ALG_EDDSA] = 64,
    };
    const char *payload = "{\"exp\":1700003600,\"sub\":\"alice\",\"scope\":\"a b\"}";
    for (tk_alg a = TK_ALG_HS256; a < TK_ALG_COUNT_; a = (tk_alg)(a + 1)) {
        char kid[32];
        snprintf(kid, sizeof kid, "k-%s", tk_alg_name(a));
        tk_key *k = key_for(a, kid);
        assert_int_equal(tk_key_alg(k), a);
        assert_int_equal(tk_key_can_sign(k), 1);
        assert_string_equal(tk_key_kid(k), kid);
        char *tok = NULL;
        size_t tl = 0;
        assert_int_equal(tk_sign(k, "at+jwt", (const unsigned char *)payload, strlen(payload), &tok, &tl), TK_OK);
        assert_int_equal(strlen(tok), tl);
        tk_keyset *ks = tu_keyset(tu_public_copy(k), (tk_key *)NULL);
        tk_policy pol;
        tk_policy_init(&pol, T);
        pol.typ = "at+jwt";
        tk_verdict v;
        tk_token *t = NULL;
        assert_int_equal(tk_verify(tok, tl, ks, &pol, NULL, &v, &t), TK_OK);
        tu_expect_reason(&v, TK_REASON_VALID, tk_alg_name(a));
        assert_non_null(t);
        assert_string_equal(tk_token_alg(t), tk_alg_name(a));
        assert_string_equal(tk_token_kid(t), kid);
        assert_string_equal(tk_token_typ(t), "at+jwt");
        size_t pl = 0;
        const unsigned char *pp = tk_token_payload(t, &pl);
        assert_int_equal(pl, strlen(payload));
        assert_memory_equal(pp, payload, pl);
        tk_token_free(t);
        /* The signature length of the alg. */
        size_t sl = 0;
        unsigned char *sig = get_sig(tok, &sl);
        assert_int_equal(sl, sig_len[a]);
        free(sig);
        /* tk_key_sign / tk_key_verify directly. */
        unsigned char *s2 = NULL;
        size_t s2l = 0;
        assert_int_equal(tk_key_sign(k, (const unsigned char *)"msg", 3, &s2, &s2l), TK_OK);
        int valid = -1;
        assert_int_equal(tk_key_verify(tk_keyset_get(ks, 0), (const unsigned char *)"msg", 3, s2, s2l, &valid), TK_OK);
        assert_int_equal(valid, 1);
        assert_int_equal(tk_key_verify(tk_keyset_get(ks, 0), (const unsigned char *)"msh", 3, s2, s2l, &valid), TK_OK);
        assert_int_equal(valid, 0);
        assert_int_equal(tk_key_verify(tk_keyset_get(ks, 0), (const unsigned char *)"msg", 3, s2, s2l - 1, &valid),
                         TK_OK);
        assert_int_equal(valid, 0);
        tk_free(s2);
        /* Another key of the same alg, same kid: bad_signature. */
        tk_key *other = NULL;
        if (tki_alg_is_rsa(a)) {
            char *jwk = NULL;
            assert_int_equal(tk_key_to_jwk(g_rsa_gen, 0, &jwk), TK_OK);
            assert_int_equal(tk_key_from_jwk(jwk, strlen(jwk), TK_ALG_UNSET, &other), TK_OK);
            tk_free(jwk);
            assert_int_equal(tk_key_alg(other), TK_ALG_RS256);
            if (a != TK_ALG_RS256) {
                /* Bound already: rebuild unbound from the public PEM-less JWK. */
                tk_key_free(other);
                other = NULL;
                char *j2 = NULL;
                assert_int_equal(tk_key_to_jwk(g_rsa_gen, 0, &j2), TK_OK);
                char *alg_member = strstr(j2, "\"alg\":\"RS256\",");
                assert_non_null(alg_member);
                memmove(alg_member, alg_member + 14, strlen(alg_member + 14) + 1);
                assert_int_equal(tk_key_from_jwk(j2, strlen(j2), a, &other), TK_OK);
                tk_free(j2);
            }
        } else {
            assert_int_equal(tk_key_generate(a, NULL, &other), TK_OK);
        }
        assert_int_equal(tk_key_set_kid(other, kid), TK_OK);
        tk_keyset *ks_other = tu_keyset(other, (tk_key *)NULL);
        assert_int_equal(tk_verify(tok, tl, ks_other, &pol, NULL, &v, NULL), TK_OK);
        tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "signed with another key");
        tk_keyset_free(ks_other);
        tk_keyset_free(ks);
        free(tok);
        tk_key_free(k);
    }
}

/* A token without kid is tried against every key bound to its alg. */
static void test_no_kid_several_keys(void **state)
{
    (void)state;
    tk_key *a = tu_hs256(NULL, 1);
    tk_key *b = tu_hs256(NULL, 2);
    tk_key *e = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, NULL, &e), TK_OK);
    tk_keyset *ks = tu_keyset(tu_public_copy(a), tu_public_copy(b), tu_public_copy(e), (tk_key *)NULL);
    char *tok = tu_sign(b, "{\"alg\":\"HS256\"}", P_OK);
    expect_verify(tok, ks, TK_REASON_VALID, "second HS256 key");
    free(tok);
    tok = tu_sign(a, "{\"alg\":\"HS256\"}", P_OK);
    expect_verify(tok, ks, TK_REASON_VALID, "first HS256 key");
    free(tok);
    tok = tu_sign(e, "{\"alg\":\"ES256\"}", P_OK);
    expect_verify(tok, ks, TK_REASON_VALID, "ES256 key");
    free(tok);
    /* Signed by a key not in the set: none of the candidates verifies. */
    tk_key *d = tu_hs256(NULL, 3);
    tok = tu_sign(d, "{\"alg\":\"HS256\"}", P_OK);
    tk_verdict v = verify(tok, ks);
    tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "no candidate verifies");
    tu_expect_detail_has(&v, "2", "number of candidates");
    /* One candidate only: its precise verdict. */
    tk_keyset *one = tu_keyset(tu_public_copy(a), (tk_key *)NULL);
    v = verify(tok, one);
    tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "single candidate");
    free(tok);
    /* No key of the token's alg at all. */
    tk_key *ed = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_EDDSA, NULL, &ed), TK_OK);
    tok = tu_sign(ed, "{\"alg\":\"EdDSA\"}", P_OK);
    v = verify(tok, ks);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "no EdDSA key");
    tu_expect_detail_has(&v, "EdDSA", "token alg named");
    free(tok);
    tk_key_free(ed);
    tk_keyset_free(one);
    tk_keyset_free(ks);
    tk_key_free(a);
    tk_key_free(b);
    tk_key_free(d);
    tk_key_free(e);
}

/* An RSA key loaded without alg verifies nothing until bound, once. */
static void test_unbound_rsa_key(void **state)
{
    (void)state;
    size_t pub_len = strlen(g_rsa_pub_pem);
    tk_key *k = NULL;
    assert_int_equal(tk_key_from_pem(g_rsa_pub_pem, pub_len, TK_ALG_UNSET, "rsa", &k), TK_OK);
    assert_int_equal(tk_key_alg(k), TK_ALG_UNSET);
    assert_int_equal(tk_key_alg_fits(k, TK_ALG_RS256), 1);
    assert_int_equal(tk_key_alg_fits(k, TK_ALG_PS512), 1);
    assert_int_equal(tk_key_alg_fits(k, TK_ALG_HS256), 0);
    assert_int_equal(tk_key_alg_fits(k, TK_ALG_ES256), 0);
    tk_keyset *ks = tu_keyset(k, (tk_key *)NULL);
    char *tok = tu_sign(g_rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", P_OK);
    tk_verdict v = verify(tok, ks);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "unbound RSA key");
    tu_expect_detail_has(&v, "no alg bound", "unbound said");
    int valid = -1;
    assert_int_equal(tk_key_verify(k, (const unsigned char *)"m", 1, (const unsigned char *)"s", 1, &valid),
                     TK_ERR_STATE);
    assert_int_equal(valid, 0);
    tk_keyset_free(ks);

    /* Binding: wrong family refused and nothing changes; then once only. */
    assert_int_equal(tk_key_from_pem(g_rsa_pub_pem, pub_len, TK_ALG_UNSET, "rsa", &k), TK_OK);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_HS256), TK_ERR_KEY);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_ES256), TK_ERR_KEY);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_EDDSA), TK_ERR_KEY);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_UNSET), TK_ERR_ARG);
    assert_int_equal(tk_key_alg(k), TK_ALG_UNSET);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_RS256), TK_OK);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_RS256), TK_OK);
    assert_int_equal(tk_key_bind_alg(k, TK_ALG_PS256), TK_ERR_STATE);
    assert_int_not_equal(tk_key_bind_alg(k, TK_ALG_HS256), TK_OK);
    assert_int_equal(tk_key_alg(k), TK_ALG_RS256);
    ks = tu_keyset(k, (tk_key *)NULL);
    expect_verify(tok, ks, TK_REASON_VALID, "bound to RS256");
    free(tok);
    tok = tu_sign(g_rsa, "{\"alg\":\"RS256\"}", P_OK);
    expect_verify(tok, ks, TK_REASON_VALID, "bound to RS256, no kid");
    free(tok);
    tk_keyset_free(ks);

    /* An unbound private key signs nothing. */
    tk_key *priv = NULL;
    assert_int_equal(tk_key_from_pem(g_rsa_priv_pem, strlen(g_rsa_priv_pem), TK_ALG_UNSET, NULL, &priv), TK_OK);
    char *out = NULL;
    size_t ol = 0;
    assert_int_equal(tk_sign(priv, NULL, (const unsigned char *)"{}", 2, &out, &ol), TK_ERR_STATE);
    assert_null(out);
    unsigned char *sig = NULL;
    size_t sl = 0;
    assert_int_equal(tk_key_sign(priv, (const unsigned char *)"m", 1, &sig, &sl), TK_ERR_STATE);
    assert_null(sig);
    tk_key_free(priv);

    /* The same for HMAC secrets: the secret length limits the family. */
    tk_key *oct = NULL;
    assert_int_equal(tk_key_from_secret(TU_SECRET32, 32, TK_ALG_UNSET, "o", &oct), TK_OK);
    assert_int_equal(tk_key_alg(oct), TK_ALG_UNSET);
    assert_int_equal(tk_key_bind_alg(oct, TK_ALG_HS384), TK_ERR_KEY);
    assert_int_equal(tk_key_bind_alg(oct, TK_ALG_RS256), TK_ERR_KEY);
    assert_int_equal(tk_key_bind_alg(oct, TK_ALG_HS256), TK_OK);
    assert_int_equal(tk_key_bind_alg(oct, TK_ALG_HS512), TK_ERR_STATE);
    tk_key_free(oct);
}

/* Rule 5: the limits can be lowered, never raised. */
static void test_limits_lowered(void **state)
{
    (void)state;
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    size_t n = strlen(tok);
    assert_true(n > 100);
    tk_limits lim;
    tk_limits_default(&lim);
    assert_int_equal(lim.token_len, TK_LIMIT_TOKEN_LEN);
    assert_int_equal(lim.header_len, TK_LIMIT_HEADER_LEN);
    assert_int_equal(lim.payload_len, TK_LIMIT_PAYLOAD_LEN);
    assert_int_equal(lim.json_depth, TK_LIMIT_JSON_DEPTH);
    assert_int_equal(lim.json_members, TK_LIMIT_JSON_MEMBERS);
    lim.token_len = 100;
    tk_verdict v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "token_len 100");
    tu_expect_detail_has(&v, "limit is 100", "lowered limit named");
    lim.token_len = n;
    v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_VALID, "token_len = length");
    lim.token_len = n - 1;
    v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "token_len = length - 1");
    tk_token *t = NULL;
    v = parse_lim(tok, n, &lim, &t);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "parse, token_len = length - 1");
    assert_null(t);
    /* Payload: P_OK is 32 bytes. */
    tk_limits_default(&lim);
    lim.payload_len = strlen(P_OK) - 3;
    v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "payload_len too small");
    tu_expect_detail_has(&v, "payload", "payload limit");
    lim.payload_len = strlen(P_OK);
    v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_VALID, "payload_len = length");
    free(tok);
    /* Raised values are clamped to the ceilings. */
    tk_limits_default(&lim);
    lim.token_len = (size_t)1 << 30;
    size_t big = TK_LIMIT_TOKEN_LEN + 1;
    char *junk = malloc(big);
    assert_non_null(junk);
    memset(junk, 'a', big);
    junk[10] = '.';
    junk[20] = '.';
    v = verify_lim(junk, big, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "raised token_len is clamped");
    tu_expect_detail_has(&v, "8192", "the ceiling applies");
    free(junk);
}

/* Rule 5: a lowered header_len applies to every header, including the
 * headers tk_sign writes for keys of the verifying key set. */
static void test_limits_lowered_header_len(void **state)
{
    (void)state;
    /* {"alg":"HS256","kid":"hs"} is 26 bytes. */
    char *tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    size_t n = strlen(tok);
    tk_limits lim;
    tk_limits_default(&lim);
    lim.header_len = 25;
    tk_token *t = NULL;
    tk_verdict v = parse_lim(tok, n, &lim, &t);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "tk_token_parse, header_len 25");
    tu_expect_detail_has(&v, "header", "header limit");
    tk_token_free(t);
    lim.header_len = 26;
    v = parse_lim(tok, n, &lim, &t);
    tu_expect_reason(&v, TK_REASON_VALID, "tk_token_parse, header_len 26");
    tk_token_free(t);
    v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_VALID, "tk_verify, header_len 26");
    lim.header_len = 25;
    v = verify_lim(tok, n, g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "tk_verify, header_len 25 (header written by tk_sign)");
    free(tok);
    /* The same header by hand (member order differs from tk_sign's). */
    tok = tu_sign(g_hs, "{\"kid\":\"hs\",\"alg\":\"HS256\"}", P_OK);
    v = verify_lim(tok, strlen(tok), g_ks, &lim);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "tk_verify, header_len 25 (hand-written header)");
    free(tok);
}

/* A public copy of k whose cached headers are dropped (internal.h), so that
 * tk_verify takes the full parse for every header: the reference path. */
static tk_key *without_known_headers(const tk_key *k)
{
    tk_key *c = tu_public_copy(k);
    for (size_t i = 0; i < 3; i++) {
        free(c->hdr_b64[i]);
        c->hdr_b64[i] = NULL;
        c->hdr_b64_len[i] = 0;
    }
    return c;
}

static void expect_same_verdict(const tk_verdict *a, const tk_verdict *b, const char *what, const char *field,
                                size_t value)
{
    if (a->reason != b->reason || strcmp(a->detail, b->detail) != 0) {
        fail_msg("%s, %s = %zu: fast path gave %s (\"%s\"), the parse path %s (\"%s\")", what, field, value,
                 tk_reason_code(a->reason), a->detail, tk_reason_code(b->reason), b->detail);
    }
}

/*
 * Rule 5, one policy whichever path. Attack: the headers tk_sign() writes are
 * recognised byte for byte and not parsed (jws.c); that path skipped the
 * caller's tk_limits, so a verifier that lowered json_members (or any limit)
 * accepted tokens that tk_token_parse, with the same limits, refused. Each
 * limit is now lowered step by step around the token's own sizes, and
 * tk_verify through the fast path must give the verdict of tk_verify through
 * the full parse and of tk_token_parse, reason and detail alike.
 */
static void test_fast_path_applies_caller_limits(void **state)
{
    (void)state;
    tk_key *nokid = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_HS256, NULL, &nokid), TK_OK);
    const tk_key *signers[3] = {g_hs, g_es, nokid};
    /* typ: none, "JWT", "at+jwt": the three headers cached per key. */
    static const char *const typs[3] = {NULL, "JWT", "at+jwt"};
    size_t fast_hits = 0;
    for (size_t si = 0; si < 3; si++) {
        tk_keyset *fast = tu_keyset(tu_public_copy(signers[si]), (tk_key *)NULL);
        tk_keyset *slow = tu_keyset(without_known_headers(signers[si]), (tk_key *)NULL);
        for (size_t ti = 0; ti < 3; ti++) {
            char *tok = NULL;
            size_t n = 0;
            assert_int_equal(tk_sign(signers[si], typs[ti], (const unsigned char *)P_OK, strlen(P_OK), &tok, &n),
                             TK_OK);
            /* The header really is one the fast path knows. */
            size_t h_n = (size_t)(strchr(tok, '.') - tok);
            const tk_key *fk = tk_keyset_get(fast, 0);
            assert_int_equal(fk->hdr_b64_len[ti], h_n);
            assert_memory_equal(fk->hdr_b64[ti], tok, h_n);
            /* And each key set takes the path it is meant to: a token read
             * through the fast path has no parsed header. */
            tk_policy pol;
            tk_verdict dv;
            tk_token *ft = NULL;
            tk_token *st = NULL;
            tk_policy_init(&pol, T);
            assert_int_equal(tk_verify(tok, n, fast, &pol, NULL, &dv, &ft), TK_OK);
            tu_expect_reason(&dv, TK_REASON_VALID, "fast path, default limits");
            assert_int_equal(tk_verify(tok, n, slow, &pol, NULL, &dv, &st), TK_OK);
            tu_expect_reason(&dv, TK_REASON_VALID, "parse path, default limits");
            assert_null(ft->header);
            assert_non_null(st->header);
            tk_token_free(ft);
            tk_token_free(st);
            size_t members = fk->hdr_members[ti];
            size_t hdr_len = (h_n * 3) / 4;
            const char *what = tk_alg_name(tk_key_alg(signers[si]));
            for (size_t field = 0; field < 5; field++) {
                /* Values 1, 2, ... and around the token's own size. */
                size_t own = field == 0   ? n
                             : field == 1 ? hdr_len
                             : field == 2 ? strlen(P_OK)
                             : field == 3 ? 1
                                          : members;
                size_t values[12] = {1, 2, 3, 4, own > 2 ? own - 2 : 1, own > 1 ? own - 1 : 1, own, own + 1, own + 2};
                static const char *const names[5] = {"token_len", "header_len", "payload_len", "json_depth",
                                                     "json_members"};
                for (size_t vi = 0; vi < 9; vi++) {
                    tk_limits lim;
                    tk_limits_default(&lim);
                    size_t *f[5] = {&lim.token_len, &lim.header_len, &lim.payload_len, &lim.json_depth,
                                    &lim.json_members};
                    *f[field] = values[vi];
                    tk_verdict a = verify_lim(tok, n, fast, &lim);
                    tk_verdict b = verify_lim(tok, n, slow, &lim);
                    expect_same_verdict(&a, &b, what, names[field], values[vi]);
                    /* tk_token_parse with the same limits: the same verdict
                     * (the signature is good and the claims are valid). */
                    tk_token *t = NULL;
                    tk_verdict c = parse_lim(tok, n, &lim, &t);
                    tk_token_free(t);
                    expect_same_verdict(&a, &c, what, names[field], values[vi]);
                    if (a.reason == TK_REASON_VALID) {
                        fast_hits++;
                    }
                    /* Below the member count of the known header: refused. */
                    if (field == 4 && values[vi] < members) {
                        tu_expect_reason(&a, TK_REASON_MALFORMED_TOKEN, "json_members below the header's");
                        tu_expect_detail_has(&a, "header (segment 1): more than", "the header is named");
                    }
                }
            }
            tk_free(tok);
        }
        tk_keyset_free(fast);
        tk_keyset_free(slow);
    }
    assert_true(fast_hits > 0); /* the valid case still passes */
    tk_key_free(nokid);
}

/* Rule 6 inside a token: the place of a base64url problem is named. */
static void test_base64url_problems_in_segments(void **state)
{
    (void)state;
    char *hb = tu_b64("{\"alg\":\"HS256\",\"kid\":\"hs\"}", 26);
    char *pb = tu_b64(P_OK, strlen(P_OK));
    char *good = sign_segments(g_hs, hb, pb);
    expect_verify(good, g_ks, TK_REASON_VALID, "hand-assembled token");
    size_t hl = strlen(hb);
    size_t pl = strlen(pb);
    size_t n = strlen(good);
    static const struct {
        int seg;          /* 0 header, 1 payload, 2 signature */
        const char *edit; /* "=": append '=', "+": first char '+', " ": mid char ' ', "A": append 'A' */
        const char *needle;
    } rows[] = {
        {0, "=", "padding"}, {0, "+", "'+'"}, {0, " ", "whitespace"}, {0, "A", "possible base64url length"},
        {1, "=", "padding"}, {1, "/", "'/'"}, {1, " ", "whitespace"}, {1, "A", "possible base64url length"},
        {2, "=", "padding"}, {2, "+", "'+'"}, {2, " ", "whitespace"}, {2, "!", "0x21"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t start = rows[i].seg == 0 ? 0 : rows[i].seg == 1 ? hl + 1 : hl + pl + 2;
        size_t len = rows[i].seg == 0 ? hl : rows[i].seg == 1 ? pl : n - hl - pl - 2;
        char *tok = malloc(n + 2);
        assert_non_null(tok);
        if (rows[i].edit[0] == '=' || rows[i].edit[0] == 'A') {
            /* Insert at the end of the segment. */
            memcpy(tok, good, start + len);
            tok[start + len] = rows[i].edit[0];
            memcpy(tok + start + len + 1, good + start + len, n - start - len + 1);
        } else {
            memcpy(tok, good, n + 1);
            tok[start + (rows[i].edit[0] == ' ' ? len / 2 : 0)] = rows[i].edit[0];
        }
        /* A segment with length % 4 == 1 needs a length that allows it. */
        if (rows[i].edit[0] == 'A' && (len + 1) % 4 != 1) {
            free(tok);
            continue;
        }
        tk_token *t = NULL;
        tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
        tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, tok);
        tu_expect_detail_has(&v, rows[i].seg == 0 ? "header" : rows[i].seg == 1 ? "payload" : "signature", tok);
        tu_expect_detail_has(&v, rows[i].needle, tok);
        tk_token_free(t);
        /* tk_verify: header and signature problems are found at parse; a
         * payload problem breaks the signature first (rule 8). */
        v = verify(tok, g_ks);
        tu_expect_reason(&v, rows[i].seg == 1 ? TK_REASON_BAD_SIGNATURE : TK_REASON_MALFORMED_TOKEN, tok);
        free(tok);
    }
    /* Non-canonical trailing bits in the signature (32 bytes: 43 chars,
     * 2 unused bits). */
    char *tok = malloc(n + 1);
    assert_non_null(tok);
    memcpy(tok, good, n + 1);
    char last = tok[n - 1];
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t idx = (size_t)(strchr(alpha, last) - alpha);
    tok[n - 1] = alpha[idx | 1u];
    tk_verdict v = verify(tok, g_ks);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "non-canonical signature");
    tu_expect_detail_has(&v, "non-canonical", "non-canonical named");
    free(tok);
    /* Non-canonical payload, signed as such by the key holder: still
     * malformed (one byte string, one encoding). 25 bytes encode to 34
     * characters, the last carrying 4 unused bits. */
    const char *p25 = "{\"exp\":1700003600,\"a\":12}";
    assert_int_equal(strlen(p25), 25);
    char *pnc = tu_b64(p25, 25);
    assert_int_equal(strlen(pnc), 34);
    tok = sign_segments(g_hs, hb, pnc);
    expect_verify(tok, g_ks, TK_REASON_VALID, "canonical 25-byte payload");
    free(tok);
    idx = (size_t)(strchr(alpha, pnc[33]) - alpha);
    assert_int_equal(idx & 15u, 0);
    pnc[33] = alpha[idx | 1u];
    tok = sign_segments(g_hs, hb, pnc);
    v = verify(tok, g_ks);
    tu_expect_reason(&v, TK_REASON_MALFORMED_TOKEN, "non-canonical payload, validly signed");
    tu_expect_detail_has(&v, "non-canonical", "non-canonical payload named");
    free(tok);
    free(pnc);
    free(good);
    free(hb);
    free(pb);
}

/* tk_token_parse keeps what it could decode, for tools. */
static void test_parse_exposes_parts(void **state)
{
    (void)state;
    char *tok = tu_sign(g_hs, "{\"alg\":\"none\",\"kid\":\"hs\",\"typ\":\"JWT\"}", P_OK);
    tk_token *t = NULL;
    tk_verdict v = parse_lim(tok, strlen(tok), NULL, &t);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "alg none");
    assert_non_null(t);
    assert_string_equal(tk_token_alg(t), "none");
    /* kid and typ are present strings: exposed even though the header is
     * unusable (tokend.h: tk_token_parse exposes what could be decoded). */
    if (tk_token_kid(t) == NULL || tk_token_typ(t) == NULL) {
        fail_msg("header {alg:none, kid:hs, typ:JWT}: tk_token_kid %s, tk_token_typ %s (want \"hs\", \"JWT\")",
                 tk_token_kid(t) ? tk_token_kid(t) : "NULL", tk_token_typ(t) ? tk_token_typ(t) : "NULL");
    }
    assert_string_equal(tk_token_kid(t), "hs");
    assert_string_equal(tk_token_typ(t), "JWT");
    char *hj = NULL;
    assert_int_equal(tk_token_header_json(t, 0, &hj), TK_OK);
    assert_non_null(hj);
    assert_non_null(strstr(hj, "none"));
    tk_free(hj);
    char *pj = NULL;
    assert_int_equal(tk_token_payload_json(t, 1, &pj), TK_OK);
    assert_non_null(strstr(pj, "alice"));
    tk_free(pj);
    size_t pl = 0;
    assert_memory_equal(tk_token_payload(t, &pl), P_OK, strlen(P_OK));
    assert_int_equal(pl, strlen(P_OK));
    assert_string_equal(tk_token_claim_string(t, "sub"), "alice");
    /* Signature check on it returns the header's verdict. */
    assert_int_equal(tk_token_verify_signature(t, g_ks, &v), TK_OK);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "verify_signature of alg none");
    tk_token_free(t);
    free(tok);
    /* And a good token through the split API. */
    tok = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"hs\"}", P_OK);
    v = parse_lim(tok, strlen(tok), NULL, &t);
    tu_expect_reason(&v, TK_REASON_VALID, "good token");
    assert_int_equal(tk_token_verify_signature(t, g_ks, &v), TK_OK);
    tu_expect_reason(&v, TK_REASON_VALID, "good signature");
    tk_token_free(t);
    free(tok);
    tk_token_free(NULL);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    tk_policy pol;
    tk_policy_init(&pol, T);
    tk_verdict v;
    tk_token *t = NULL;
    assert_int_equal(tk_verify("a.b.c", 5, NULL, &pol, NULL, &v, &t), TK_ERR_ARG);
    assert_int_equal(tk_verify("a.b.c", 5, g_ks, NULL, NULL, &v, &t), TK_ERR_ARG);
    assert_int_equal(tk_verify("a.b.c", 5, g_ks, &pol, NULL, NULL, &t), TK_ERR_ARG);
    assert_int_equal(tk_verify(NULL, 5, g_ks, &pol, NULL, &v, &t), TK_ERR_ARG);
    assert_null(t);
    assert_int_equal(tk_token_parse("a.b.c", 5, NULL, NULL, &v), TK_ERR_ARG);
    assert_int_equal(tk_token_parse("a.b.c", 5, NULL, &t, NULL), TK_ERR_ARG);
    assert_int_equal(tk_token_parse(NULL, 5, NULL, &t, &v), TK_ERR_ARG);
    char *out = NULL;
    assert_int_equal(tk_sign(NULL, NULL, NULL, 0, &out, NULL), TK_ERR_ARG);
    /* A public key cannot sign. */
    tk_key *pub = tu_public_copy(g_es);
    assert_int_equal(tk_sign(pub, NULL, (const unsigned char *)"{}", 2, &out, NULL), TK_ERR_STATE);
    assert_null(out);
    tk_key_free(pub);
}

/* tokend.h: "printable ASCII only" for every verdict detail. */
static void test_jws_details_printable_ascii(void **state)
{
    (void)state;
    char *hb = tu_b64("{\"alg\":\"HS256\",\"kid\":\"hs\"}", 26);
    char *pb = tu_b64(P_OK, strlen(P_OK));
    char *good = sign_segments(g_hs, hb, pb);
    size_t hl = strlen(hb);
    char toks[8][512];
    size_t nt = 0;
    /* Padding in the header segment. */
    snprintf(toks[nt++], sizeof toks[0], "%s=%s", hb, good + hl);
    /* No alg. */
    char *t1 = tu_sign(g_hs, "{\"kid\":\"hs\"}", P_OK);
    snprintf(toks[nt++], sizeof toks[0], "%s", t1);
    /* crit. */
    char *t2 = tu_sign(g_hs, "{\"alg\":\"HS256\",\"crit\":[\"x\"]}", P_OK);
    snprintf(toks[nt++], sizeof toks[0], "%s", t2);
    /* Token-supplied text: alg, kid and JSON errors with UTF-8 and controls. */
    char *t3 = tu_sign(g_hs, "{\"alg\":\"\\u00e9\\u0001\"}", P_OK);
    snprintf(toks[nt++], sizeof toks[0], "%s", t3);
    char *t4 = tu_sign(g_hs, "{\"alg\":\"HS256\",\"kid\":\"\\u00e9\\n\"}", P_OK);
    snprintf(toks[nt++], sizeof toks[0], "%s", t4);
    char *t5 = tu_sign(g_hs, "{\"alg\":\"HS256\",\xc3\xa9}", P_OK);
    snprintf(toks[nt++], sizeof toks[0], "%s", t5);
    char failures[2048] = "";
    size_t nf = 0;
    for (size_t i = 0; i < nt; i++) {
        tk_verdict v = verify(toks[i], g_ks);
        assert_int_not_equal(v.reason, TK_REASON_VALID);
        if (!tu_printable(v.detail, strlen(v.detail))) {
            size_t used = strlen(failures);
            snprintf(failures + used, sizeof failures - used, "\n  %s: %s", tk_reason_code(v.reason), v.detail);
            nf++;
        }
    }
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    free(t5);
    free(good);
    free(hb);
    free(pb);
    if (nf) {
        fail_msg("%zu token verdict details are not printable ASCII:%s", nf, failures);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_token),
        cmocka_unit_test(test_token_length_limit),
        cmocka_unit_test(test_huge_token_rejected_fast),
        cmocka_unit_test(test_segment_counts),
        cmocka_unit_test(test_header_not_a_json_object),
        cmocka_unit_test(test_payload_not_a_json_object),
        cmocka_unit_test(test_rule2_duplicate_members_rejected),
        cmocka_unit_test(test_json_depth_limit),
        cmocka_unit_test(test_json_member_limit),
        cmocka_unit_test(test_deep_nesting_rejected_fast),
        cmocka_unit_test(test_nul_and_invalid_utf8),
        cmocka_unit_test(test_alg_missing_or_not_a_string),
        cmocka_unit_test(test_rule1_alg_none_and_variants),
        cmocka_unit_test(test_rule3_embedded_key_headers),
        cmocka_unit_test(test_rule4_jws_extensions_refused),
        cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_unknown_kid_detail_is_bounded),
        cmocka_unit_test(test_rule1_alg_differs_from_key),
        cmocka_unit_test(test_rule1_key_confusion_rsa_pem_as_hmac_secret),
        cmocka_unit_test(test_rule7_ecdsa_signature_forms),
        cmocka_unit_test(test_rule7_pss_salt_length_pinned),
        cmocka_unit_test(test_rule7_exact_signature_lengths),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_rule8_signature_verdict_wins),
        cmocka_unit_test(test_roundtrip_every_alg),
        cmocka_unit_test(test_no_kid_several_keys),
        cmocka_unit_test(test_unbound_rsa_key),
        cmocka_unit_test(test_limits_lowered),
        cmocka_unit_test(test_limits_lowered_header_len),
        cmocka_unit_test(test_fast_path_applies_caller_limits),
        cmocka_unit_test(test_base64url_problems_in_segments),
        cmocka_unit_test(test_parse_exposes_parts),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_jws_details_printable_ascii),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
