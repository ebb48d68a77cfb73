/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_rfc_examples.c — the worked examples of the JOSE RFCs, end to end
 * through the token-level API.
 *
 * - RFC 7515 Appendix A.1 (HS256), A.2 (RS256), A.3 (ES256), A.4 (ES512) and
 *   RFC 8037 Appendix A.4 (Ed25519): data files tests/vectors/rfc*.json hold
 *   the RFC's JWK and compact serialization, copied exactly. Each token must
 *   parse, verify against a key set built from the RFC's JWK, and turn into
 *   bad_signature when one character of the signature segment, or separately
 *   of the payload segment, is changed (base64url kept canonical).
 *   Deterministic examples (HS256, RS256, Ed25519) must also be reproduced by
 *   tk_key_sign. A.1–A.3 carry exp 1300819380 (2011): claims are checked with
 *   a clock set before it, and found expired after it.
 * - The JOSE cookbook (RFC 7520 §4.1–4.4, RFC 8037 A.4) in
 *   TOKEND_VECTORS_DIR/jose-cookbook: every compact serialization verifies
 *   with its key (alg from input.alg); RFC 7797 `b64: false` is refused by
 *   tk_token_parse as unsupported_token_type (SECURITY.md rule 4).
 *
 * Only the public API of tokend.h is used; jansson reads the data files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "tokend/tokend.h"

#ifndef TOKEND_VECTORS_DIR
#error "TOKEND_VECTORS_DIR must be defined (tests/CMakeLists.txt)"
#endif
#ifndef TOKEND_TEST_DATA_DIR
#error "TOKEND_TEST_DATA_DIR must be defined (tests/CMakeLists.txt)"
#endif

/* RFC 7515 A.1–A.3 claims set: {"iss":"joe","exp":1300819380,...}. */
#define RFC7515_EXP 1300819380

/* ------------------------------------------------------------------------ */
/* Helpers */

static json_t *load_json(const char *dir, const char *name)
{
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof path);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        /* A missing data file is a failure, never a skip. */
        fail_msg("cannot load %s: %s (line %d)", path, err.text, err.line);
    }
    return root;
}

static const char *get_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) {
        fail_msg("member \"%s\" missing or not a string", key);
    }
    return json_string_value(v);
}

static tk_alg alg_from(const char *name)
{
    tk_alg a = tk_alg_from_name(name, strlen(name));
    assert_int_not_equal(a, TK_ALG_UNSET);
    return a;
}

/* tk_key_from_jwk on a JSON object (serialized compactly). */
static tk_key *key_from_jwk_obj(const json_t *jwk, tk_alg alg_arg)
{
    char *txt = json_dumps(jwk, JSON_COMPACT);
    assert_non_null(txt);
    tk_key *k = NULL;
    tk_result r = tk_key_from_jwk(txt, strlen(txt), alg_arg, &k);
    if (r != TK_OK) {
        fail_msg("tk_key_from_jwk(%s, alg %s) = %s", txt, alg_arg ? tk_alg_name(alg_arg) : "UNSET", tk_result_str(r));
    }
    free(txt);
    assert_non_null(k);
    return k;
}

/* A key set holding a copy of `jwk` loaded with `alg_arg`. */
static tk_keyset *keyset_of(const json_t *jwk, tk_alg alg_arg)
{
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    assert_non_null(ks);
    tk_key *k = key_from_jwk_obj(jwk, alg_arg);
    assert_int_equal(tk_keyset_add(ks, k), TK_OK); /* ks owns k now */
    assert_int_equal(tk_keyset_count(ks), 1);
    return ks;
}

/* Base64url-decodes `n` chars with tk_b64url_decode into a fresh buffer
 * (malloc'd: free with free()). */
static unsigned char *b64_decode(const char *in, size_t n, size_t *out_len)
{
    unsigned char *buf = malloc(n * 3 / 4 + 2);
    assert_non_null(buf);
    size_t bad_at = 0;
    tk_result r = tk_b64url_decode(in, n, buf, n * 3 / 4 + 1, out_len, &bad_at);
    if (r != TK_OK) {
        fail_msg("tk_b64url_decode failed at offset %zu: %s", bad_at, tk_result_str(r));
    }
    return buf;
}

/* Splits a compact JWS at its two dots; fails the test unless there are
 * exactly two. */
static void split3(const char *jws, size_t len, size_t *dot1, size_t *dot2)
{
    const char *p1 = memchr(jws, '.', len);
    assert_non_null(p1);
    *dot1 = (size_t)(p1 - jws);
    const char *p2 = memchr(p1 + 1, '.', len - *dot1 - 1);
    assert_non_null(p2);
    *dot2 = (size_t)(p2 - jws);
    assert_null(memchr(p2 + 1, '.', len - *dot2 - 1));
}

static int b64_value(char c)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = strchr(alphabet, c);
    assert_true(c != '\0' && p != NULL);
    return (int)(p - alphabet);
}

static char b64_char(int v)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_true(v >= 0 && v < 64);
    return alphabet[v];
}

/*
 * Returns a copy of `jws` with one character changed in the middle of the
 * segment [from, to): its 6-bit value gets its lowest bit flipped, so exactly
 * one bit of the decoded bytes changes. The last character of a segment is
 * never touched (its unused trailing bits must stay zero), so the result is
 * still canonical base64url.
 */
static char *flip_one_char(const char *jws, size_t len, size_t from, size_t to)
{
    assert_true(to > from + 1);
    size_t pos = from + (to - from) / 2;
    assert_true(pos < to - 1);
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, jws, len);
    copy[len] = '\0';
    copy[pos] = b64_char(b64_value(copy[pos]) ^ 1);
    assert_true(copy[pos] != jws[pos]);
    return copy;
}

/* Parses and checks the signature against ks; returns the verdict reason of
 * tk_token_verify_signature. The header must be usable. */
static tk_reason parse_and_verify_sig(const char *jws, size_t len, const tk_keyset *ks)
{
    tk_token *t = NULL;
    tk_verdict v;
    memset(&v, 0xa5, sizeof v);
    assert_int_equal(tk_token_parse(jws, len, NULL, &t, &v), TK_OK);
    assert_non_null(t);
    const tk_verdict *hv = tk_token_header_verdict(t);
    assert_non_null(hv);
    if (hv->reason != TK_REASON_VALID) {
        fail_msg("header verdict %s: %s", tk_reason_code(hv->reason), hv->detail);
    }
    memset(&v, 0xa5, sizeof v);
    assert_int_equal(tk_token_verify_signature(t, ks, &v), TK_OK);
    tk_token_free(t);
    return v.reason;
}

static void expect_reason(tk_reason got, tk_reason want, const char *what)
{
    if (got != want) {
        fail_msg("%s: got %s, want %s", what, tk_reason_code(got), tk_reason_code(want));
    }
}

/*
 * The checks every example gets:
 *  - tk_key_verify on the signing input with the decoded signature;
 *  - parse + tk_token_verify_signature with a key set → valid;
 *  - one character changed in the signature, then in the payload → bad_signature;
 *  - when deterministic, tk_key_sign reproduces the signature;
 *  - the parse verdict is valid for a claims-set payload, and the payload
 *    verdict is not for a text payload;
 *  - the decoded payload equals `payload` when given.
 */
static void check_example(const char *label, const json_t *jwk, tk_alg alg_arg, tk_alg want_alg, const char *jws,
                          int deterministic, int json_payload, const char *payload)
{
    size_t len = strlen(jws);
    size_t dot1 = 0;
    size_t dot2 = 0;
    split3(jws, len, &dot1, &dot2);

    /* The key as the RFC gives it, bound to the expected alg. */
    tk_key *k = key_from_jwk_obj(jwk, alg_arg);
    assert_int_equal(tk_key_alg(k), want_alg);

    /* Primitive level. */
    size_t sig_len = 0;
    unsigned char *sig = b64_decode(jws + dot2 + 1, len - dot2 - 1, &sig_len);
    int valid = -1;
    assert_int_equal(tk_key_verify(k, (const unsigned char *)jws, dot2, sig, sig_len, &valid), TK_OK);
    if (valid != 1) {
        fail_msg("%s: tk_key_verify rejects the RFC signature", label);
    }
    if (deterministic) {
        unsigned char *mine = NULL;
        size_t mine_len = 0;
        assert_int_equal(tk_key_can_sign(k), 1);
        assert_int_equal(tk_key_sign(k, (const unsigned char *)jws, dot2, &mine, &mine_len), TK_OK);
        assert_int_equal(mine_len, sig_len);
        if (memcmp(mine, sig, sig_len) != 0) {
            fail_msg("%s: tk_key_sign does not reproduce the RFC signature", label);
        }
        tk_free(mine);
    }
    free(sig);
    tk_key_free(k);

    /* Token level. */
    tk_keyset *ks = keyset_of(jwk, alg_arg);
    expect_reason(parse_and_verify_sig(jws, len, ks), TK_REASON_VALID, label);

    tk_token *t = NULL;
    tk_verdict v;
    assert_int_equal(tk_token_parse(jws, len, NULL, &t, &v), TK_OK);
    assert_non_null(t);
    /* A JSON-object payload is a usable token; a text payload (A.4, the
     * cookbook) is a valid JWS whose payload is not a claims set. */
    const tk_verdict *pv = tk_token_payload_verdict(t);
    assert_non_null(pv);
    if (json_payload) {
        expect_reason(v.reason, TK_REASON_VALID, label);
        expect_reason(pv->reason, TK_REASON_VALID, label);
    } else {
        assert_int_not_equal(pv->reason, TK_REASON_VALID);
        expect_reason(tk_token_header_verdict(t)->reason, TK_REASON_VALID, label);
    }
    const char *alg_name = tk_token_alg(t);
    assert_non_null(alg_name);
    assert_string_equal(alg_name, tk_alg_name(want_alg));
    if (payload != NULL) {
        size_t plen = 0;
        const unsigned char *p = tk_token_payload(t, &plen);
        assert_non_null(p);
        assert_int_equal(plen, strlen(payload));
        assert_memory_equal(p, payload, plen);
    }
    tk_token_free(t);

    /* One character of the signature changed. */
    char *bad = flip_one_char(jws, len, dot2 + 1, len);
    char what[128];
    (void)snprintf(what, sizeof what, "%s with a changed signature character", label);
    expect_reason(parse_and_verify_sig(bad, len, ks), TK_REASON_BAD_SIGNATURE, what);
    free(bad);

    /* One character of the payload changed. Whatever the payload now decodes
     * to, the signature check must say bad_signature. */
    bad = flip_one_char(jws, len, dot1 + 1, dot2);
    (void)snprintf(what, sizeof what, "%s with a changed payload character", label);
    expect_reason(parse_and_verify_sig(bad, len, ks), TK_REASON_BAD_SIGNATURE, what);
    free(bad);

    tk_keyset_free(ks);
}

/* ------------------------------------------------------------------------ */
/* RFC 7515 Appendix A and RFC 8037 Appendix A.4 */

typedef struct rfc_example {
    const char *file; /* in TOKEND_TEST_DATA_DIR */
    tk_alg alg;       /* the alg the key must end up bound to */
    int jwt_payload;  /* payload is the RFC 7515 A.1–A.3 claims set */
} rfc_example;

static const rfc_example rfc_examples[] = {
    {"rfc7515_a1.json", TK_ALG_HS256, 1}, {"rfc7515_a2.json", TK_ALG_RS256, 1}, {"rfc7515_a3.json", TK_ALG_ES256, 1},
    {"rfc7515_a4.json", TK_ALG_ES512, 0}, {"rfc8037_a4.json", TK_ALG_EDDSA, 0},
};

static void run_rfc_example(const rfc_example *ex)
{
    json_t *root = load_json(TOKEND_TEST_DATA_DIR, ex->file);
    const json_t *jwk = json_object_get(root, "jwk");
    assert_true(json_is_object(jwk));
    const char *jws = get_str(root, "compact");
    tk_alg file_alg = alg_from(get_str(root, "alg"));
    assert_int_equal(file_alg, ex->alg);
    /* RFC 7515 A.1/A.2 JWKs have no alg: the caller names it. EC and OKP
     * keys take theirs from the curve (argument left UNSET). */
    const json_t *arg = json_object_get(root, "key_alg_arg");
    tk_alg alg_arg = json_is_string(arg) ? alg_from(json_string_value(arg)) : TK_ALG_UNSET;
    int deterministic = json_is_true(json_object_get(root, "deterministic"));

    check_example(ex->file, jwk, alg_arg, ex->alg, jws, deterministic, ex->jwt_payload, NULL);

    /* An EC/OKP key given its alg explicitly agrees with the curve. */
    if (alg_arg == TK_ALG_UNSET) {
        tk_key *k = key_from_jwk_obj(jwk, ex->alg);
        assert_int_equal(tk_key_alg(k), ex->alg);
        tk_key_free(k);
    }

    if (ex->jwt_payload) {
        /* The claims of a 2011 token: valid before exp, expired after. The
         * full pipeline (tk_verify) puts the signature before the claims. */
        tk_keyset *ks = keyset_of(jwk, alg_arg);
        size_t len = strlen(jws);
        tk_policy pol;
        tk_verdict v;
        tk_token *out = NULL;

        tk_policy_init(&pol, RFC7515_EXP - 600);
        assert_int_equal(tk_verify(jws, len, ks, &pol, NULL, &v, &out), TK_OK);
        if (v.reason != TK_REASON_VALID) {
            fail_msg("%s: tk_verify before exp: %s (%s)", ex->file, tk_reason_code(v.reason), v.detail);
        }
        assert_non_null(out);
        const char *iss = tk_token_claim_string(out, "iss");
        assert_non_null(iss);
        assert_string_equal(iss, "joe");
        double exp = 0;
        assert_int_equal(tk_token_claim_number(out, "exp", &exp), 1);
        assert_true(exp == (double)RFC7515_EXP);
        tk_verdict problems[TK_LIMIT_PROBLEMS];
        size_t n = 99;
        assert_int_equal(tk_token_check_claims(out, &pol, problems, TK_LIMIT_PROBLEMS, &n), TK_OK);
        assert_int_equal(n, 0);
        tk_token_free(out);
        out = NULL;

        tk_policy_init(&pol, RFC7515_EXP + 3600);
        assert_int_equal(tk_verify(jws, len, ks, &pol, NULL, &v, &out), TK_OK);
        expect_reason(v.reason, TK_REASON_EXPIRED, "RFC 7515 token an hour after exp");
        tk_token_free(out);
        out = NULL;

        /* A changed signature wins over the (expired) claims. */
        size_t dot1 = 0;
        size_t dot2 = 0;
        split3(jws, len, &dot1, &dot2);
        char *bad = flip_one_char(jws, len, dot2 + 1, len);
        assert_int_equal(tk_verify(bad, len, ks, &pol, NULL, &v, &out), TK_OK);
        expect_reason(v.reason, TK_REASON_BAD_SIGNATURE, "expired RFC 7515 token with a changed signature");
        assert_null(out);
        free(bad);
        tk_keyset_free(ks);
    }
    json_decref(root);
}

static void test_rfc7515_a1_hs256(void **state)
{
    (void)state;
    run_rfc_example(&rfc_examples[0]);
}

static void test_rfc7515_a2_rs256(void **state)
{
    (void)state;
    run_rfc_example(&rfc_examples[1]);
}

static void test_rfc7515_a3_es256(void **state)
{
    (void)state;
    run_rfc_example(&rfc_examples[2]);
}

static void test_rfc7515_a4_es512(void **state)
{
    (void)state;
    run_rfc_example(&rfc_examples[3]);
}

static void test_rfc8037_a4_ed25519(void **state)
{
    (void)state;
    run_rfc_example(&rfc_examples[4]);
}

/* The public half of each asymmetric RFC key, exported and reloaded, still
 * verifies the RFC token (a verifier never needs the private part). */
static void test_rfc_public_jwk_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 1; i < sizeof rfc_examples / sizeof rfc_examples[0]; i++) {
        json_t *root = load_json(TOKEND_TEST_DATA_DIR, rfc_examples[i].file);
        const json_t *jwk = json_object_get(root, "jwk");
        const json_t *arg = json_object_get(root, "key_alg_arg");
        tk_alg alg_arg = json_is_string(arg) ? alg_from(json_string_value(arg)) : TK_ALG_UNSET;
        const char *jws = get_str(root, "compact");

        tk_key *k = key_from_jwk_obj(jwk, alg_arg);
        char *pub = NULL;
        assert_int_equal(tk_key_to_jwk(k, 0, &pub), TK_OK);
        assert_non_null(pub);
        assert_null(strstr(pub, "\"d\""));
        tk_key *pk = NULL;
        assert_int_equal(tk_key_from_jwk(pub, strlen(pub), rfc_examples[i].alg, &pk), TK_OK);
        assert_int_equal(tk_key_alg(pk), rfc_examples[i].alg);
        assert_int_equal(tk_key_can_sign(pk), 0);

        tk_keyset *ks = NULL;
        assert_int_equal(tk_keyset_new(&ks), TK_OK);
        assert_int_equal(tk_keyset_add(ks, pk), TK_OK);
        expect_reason(parse_and_verify_sig(jws, strlen(jws), ks), TK_REASON_VALID, rfc_examples[i].file);
        tk_keyset_free(ks);
        tk_free(pub);
        tk_key_free(k);
        json_decref(root);
    }
}

/* ------------------------------------------------------------------------ */
/* JOSE cookbook: RFC 7520 §4.1–4.4, RFC 8037 A.4 */

static void run_cookbook(const char *file)
{
    json_t *root = load_json(TOKEND_VECTORS_DIR "/jose-cookbook", file);
    const json_t *input = json_object_get(root, "input");
    assert_true(json_is_object(input));
    const json_t *jwk = json_object_get(input, "key");
    assert_true(json_is_object(jwk));
    tk_alg alg = alg_from(get_str(input, "alg"));
    const char *payload = get_str(input, "payload");
    const json_t *output = json_object_get(root, "output");
    const char *jws = get_str(output, "compact");
    int deterministic = json_is_true(json_object_get(root, "reproducible"));

    /* The signing input given in the file is the first two segments. */
    const json_t *signing = json_object_get(root, "signing");
    const char *sig_input = get_str(signing, "sig-input");
    assert_int_equal(strncmp(jws, sig_input, strlen(sig_input)), 0);
    assert_int_equal(jws[strlen(sig_input)], '.');

    check_example(file, jwk, alg, alg, jws, deterministic, 0, payload);

    /* Our own header + the cookbook payload: tk_sign_with_header with the
     * file's protected header reproduces the whole compact form. */
    if (deterministic) {
        const char *prot = get_str(signing, "protected_b64u");
        size_t hlen = 0;
        unsigned char *hdr = b64_decode(prot, strlen(prot), &hlen);
        tk_key *k = key_from_jwk_obj(jwk, alg);
        char *out = NULL;
        size_t out_len = 0;
        assert_int_equal(tk_sign_with_header(k, (const char *)hdr, hlen, (const unsigned char *)payload,
                                             strlen(payload), &out, &out_len),
                         TK_OK);
        assert_non_null(out);
        assert_int_equal(out_len, strlen(jws));
        assert_string_equal(out, jws);
        tk_free(out);
        tk_key_free(k);
        free(hdr);
    }
    json_decref(root);
}

static void test_cookbook_4_1_rs256(void **state)
{
    (void)state;
    run_cookbook("jws_4_1.rsa_v15_signature.json");
}

static void test_cookbook_4_2_ps384(void **state)
{
    (void)state;
    run_cookbook("jws_4_2.rsa-pss_signature.json");
}

static void test_cookbook_4_3_es512(void **state)
{
    (void)state;
    run_cookbook("jws_4_3.ecdsa_signature.json");
}

static void test_cookbook_4_4_hs256(void **state)
{
    (void)state;
    run_cookbook("jws_4_4.hmac-sha2_integrity_protection.json");
}

static void test_cookbook_curve25519(void **state)
{
    (void)state;
    run_cookbook("curve25519_jws.json");
}

/* Parses `jws` and expects unsupported_token_type, both from tk_token_parse
 * and from the full pipeline. */
static void expect_unsupported(const char *jws, const tk_keyset *ks, const char *what)
{
    size_t len = strlen(jws);
    tk_token *t = NULL;
    tk_verdict v;
    assert_int_equal(tk_token_parse(jws, len, NULL, &t, &v), TK_OK);
    expect_reason(v.reason, TK_REASON_UNSUPPORTED_TOKEN_TYPE, what);
    tk_token_free(t);

    tk_policy pol;
    tk_policy_init(&pol, 1700000000);
    pol.require_exp = 0;
    tk_token *out = NULL;
    assert_int_equal(tk_verify(jws, len, ks, &pol, NULL, &v, &out), TK_OK);
    expect_reason(v.reason, TK_REASON_UNSUPPORTED_TOKEN_TYPE, what);
    assert_null(out);
}

/*
 * RFC 7797 (b64: false) is a JWS extension tokend does not implement
 * (SECURITY.md rule 4): the token is refused by the parser whatever the
 * payload segment holds. The file has no compact form ("$.02" contains a
 * dot), so three are built: the detached form (empty payload segment), the
 * payload base64url-encoded, and with the RFC's full header (with crit).
 */
static void test_cookbook_rfc7797_b64_false(void **state)
{
    (void)state;
    json_t *root = load_json(TOKEND_VECTORS_DIR "/jose-cookbook", "rfc7797_4.2.hmac-sha2_b64_false.json");
    const json_t *input = json_object_get(root, "input");
    const json_t *signing = json_object_get(root, "signing");
    const char *prot = get_str(signing, "protected_b64u");
    const char *sig = get_str(signing, "sig");
    const char *payload = get_str(input, "payload");
    tk_keyset *ks = keyset_of(json_object_get(input, "key"), alg_from(get_str(input, "alg")));

    char jws[512];
    int n = snprintf(jws, sizeof jws, "%s..%s", prot, sig);
    assert_true(n > 0 && (size_t)n < sizeof jws);
    expect_unsupported(jws, ks, "RFC 7797 b64:false, detached payload");

    char pay_b64[64];
    size_t pay_b64_len = 0;
    assert_int_equal(
        tk_b64url_encode((const unsigned char *)payload, strlen(payload), pay_b64, sizeof pay_b64, &pay_b64_len),
        TK_OK);
    n = snprintf(jws, sizeof jws, "%s.%s.%s", prot, pay_b64, sig);
    assert_true(n > 0 && (size_t)n < sizeof jws);
    expect_unsupported(jws, ks, "RFC 7797 b64:false, payload base64url-encoded");

    /* The header of RFC 7797 §4.2 itself, with "crit":["b64"]. */
    char *hdr_json = json_dumps(json_object_get(signing, "protected"), JSON_COMPACT);
    assert_non_null(hdr_json);
    assert_non_null(strstr(hdr_json, "\"crit\""));
    char hdr_b64[256];
    size_t hdr_b64_len = 0;
    assert_int_equal(
        tk_b64url_encode((const unsigned char *)hdr_json, strlen(hdr_json), hdr_b64, sizeof hdr_b64, &hdr_b64_len),
        TK_OK);
    free(hdr_json);
    n = snprintf(jws, sizeof jws, "%s.%s.%s", hdr_b64, pay_b64, sig);
    assert_true(n > 0 && (size_t)n < sizeof jws);
    expect_unsupported(jws, ks, "RFC 7797 b64:false with crit");
    n = snprintf(jws, sizeof jws, "%s..%s", hdr_b64, sig);
    assert_true(n > 0 && (size_t)n < sizeof jws);
    expect_unsupported(jws, ks, "RFC 7797 b64:false with crit, detached payload");

    tk_keyset_free(ks);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7515_a1_hs256),    cmocka_unit_test(test_rfc7515_a2_rs256),
        cmocka_unit_test(test_rfc7515_a3_es256),    cmocka_unit_test(test_rfc7515_a4_es512),
        cmocka_unit_test(test_rfc8037_a4_ed25519),  cmocka_unit_test(test_rfc_public_jwk_roundtrip),
        cmocka_unit_test(test_cookbook_4_1_rs256),  cmocka_unit_test(test_cookbook_4_2_ps384),
        cmocka_unit_test(test_cookbook_4_3_es512),  cmocka_unit_test(test_cookbook_4_4_hs256),
        cmocka_unit_test(test_cookbook_curve25519), cmocka_unit_test(test_cookbook_rfc7797_b64_false),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
