/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_keys.c — keys and key sets: JWK (RFC 7517 §4, RFC 7518 §6,
 * RFC 8037 §2) import and export for every kty, the RFC 7638 thumbprint,
 * PEM formats, the material tokend refuses (SECURITY.md rule 7: RSA under
 * 2048 bits, HMAC secrets shorter than the hash, EC points off the curve;
 * rule 23: RSA exponents, private parts that do not match the public part),
 * key/alg agreement (rule 1), JWKS parsing and the key set operations.
 *
 * One RSA-2048 key pair is generated with OpenSSL for the whole file (RSA
 * key generation is slow under ASan); the PEM encodings are made by
 * OpenSSL's encoders so the test does not depend on tokend's own export.
 */
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <jansson.h>

#include "testutil.h"
#include "tokend/keycache.h"

static EVP_PKEY *g_rsa_pk;  /* RSA-2048 key pair */
static EVP_PKEY *g_ec_pk;   /* P-256 key pair */
static EVP_PKEY *g_ed_pk;   /* Ed25519 key pair */
static char *g_rsa_pkcs8;   /* PEM "PRIVATE KEY" of g_rsa_pk */
static EVP_PKEY *g_rsa2_pk; /* another RSA-2048 key pair (parts to mix up) */

/* ---- helpers ------------------------------------------------------------- */

/* PEM text of pk via OpenSSL's encoder: structure "SubjectPublicKeyInfo",
 * "PrivateKeyInfo" or "type-specific" (PKCS#1 / SEC1). Owned. */
static char *pem_of(EVP_PKEY *pk, int selection, const char *structure)
{
    OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(pk, selection, "PEM", structure, NULL);
    assert_non_null(ctx);
    unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, &len), 1);
    OSSL_ENCODER_CTX_free(ctx);
    char *s = malloc(len + 1);
    assert_non_null(s);
    memcpy(s, data, len);
    s[len] = '\0';
    OPENSSL_free(data);
    return s;
}

static char *bio_to_string(BIO *b)
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

static tk_result from_pem(const char *pem, tk_alg alg, tk_key **out)
{
    return tk_key_from_pem(pem, strlen(pem), alg, "pem", out);
}

/* tk_key_from_jwk on a jansson object. */
static tk_result from_json(const json_t *o, tk_alg alg, tk_key **out)
{
    char *s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    tk_result rc = tk_key_from_jwk(s, strlen(s), alg, out);
    free(s);
    return rc;
}

/* The key's JWK as a jansson object. */
static json_t *jwk_obj(const tk_key *k, int priv)
{
    char *s = NULL;
    assert_int_equal(tk_key_to_jwk(k, priv, &s), TK_OK);
    json_t *o = json_loads(s, 0, NULL);
    assert_non_null(o);
    tk_free(s);
    return o;
}

static void set_b64(json_t *o, const char *name, const unsigned char *b, size_t n)
{
    char *s = tu_b64(b, n);
    assert_int_equal(json_object_set_new(o, name, json_string(s)), 0);
    free(s);
}

/* Decodes member `name` of o (owned bytes). */
static unsigned char *get_b64(const json_t *o, const char *name, size_t *n)
{
    const char *s = json_string_value(json_object_get(o, name));
    assert_non_null(s);
    return tu_unb64(s, strlen(s), n);
}

/* A public RSA JWK {"kty":"RSA","n":..,"e":..} of an OpenSSL key. */
static json_t *rsa_public_jwk(EVP_PKEY *pk)
{
    json_t *o = json_object();
    assert_non_null(o);
    json_object_set_new(o, "kty", json_string("RSA"));
    static const char *const names[2] = {"n", "e"};
    static const char *const params[2] = {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E};
    for (size_t i = 0; i < 2; i++) {
        BIGNUM *bn = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(pk, params[i], &bn), 1);
        unsigned char buf[1024];
        int n = BN_bn2bin(bn, buf);
        assert_true(n > 0);
        set_b64(o, names[i], buf, (size_t)n);
        BN_free(bn);
    }
    return o;
}

/* {"keys":[...]} of the given members (not taken). Owned. */
static char *jwks_of(json_t *const *keys, size_t n)
{
    json_t *arr = json_array();
    assert_non_null(arr);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(json_array_append(arr, keys[i]), 0);
    }
    json_t *doc = json_object();
    assert_non_null(doc);
    json_object_set_new(doc, "keys", arr);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_non_null(s);
    return s;
}

static void expect_jwk(const json_t *o, tk_alg alg, tk_result want, const char *what)
{
    tk_key *k = (tk_key *)NULL;
    tk_result rc = from_json(o, alg, &k);
    if (rc != want) {
        char *s = json_dumps(o, JSON_COMPACT);
        fail_msg("%s: tk_key_from_jwk gave %s, want %s; JWK %.200s", what, tk_result_str(rc), tk_result_str(want),
                 s ? s : "?");
    }
    if (want == TK_OK) {
        assert_non_null(k);
    } else {
        assert_null(k);
    }
    tk_key_free(k);
}

static int group_setup(void **state)
{
    (void)state;
    g_rsa_pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    g_ec_pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    g_ed_pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    g_rsa2_pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!g_rsa_pk || !g_ec_pk || !g_ed_pk || !g_rsa2_pk) {
        return -1;
    }
    g_rsa_pkcs8 = pem_of(g_rsa_pk, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(g_rsa_pk);
    EVP_PKEY_free(g_ec_pk);
    EVP_PKEY_free(g_ed_pk);
    EVP_PKEY_free(g_rsa2_pk);
    free(g_rsa_pkcs8);
    return 0;
}

/* One private key of each alg (RSA from the file's key pair). */
static tk_key *make_key(tk_alg a, const char *kid)
{
    tk_key *k = NULL;
    if (a >= TK_ALG_RS256 && a <= TK_ALG_PS512) {
        assert_int_equal(tk_key_from_pem(g_rsa_pkcs8, strlen(g_rsa_pkcs8), a, kid, &k), TK_OK);
    } else {
        assert_int_equal(tk_key_generate(a, kid, &k), TK_OK);
    }
    return k;
}

/* ---- JWK round trips --------------------------------------------------------- */

static void test_jwk_roundtrip_every_kty(void **state)
{
    (void)state;
    static const struct {
        tk_alg alg;
        const char *kty;
        const char *crv;
        const char *const priv_members[6];
    } rows[] = {
        {TK_ALG_HS256, "oct", NULL, {"k"}},
        {TK_ALG_HS384, "oct", NULL, {"k"}},
        {TK_ALG_HS512, "oct", NULL, {"k"}},
        {TK_ALG_RS256, "RSA", NULL, {"d", "p", "q", "dp", "dq", "qi"}},
        {TK_ALG_PS384, "RSA", NULL, {"d", "p", "q", "dp", "dq", "qi"}},
        {TK_ALG_ES256, "EC", "P-256", {"d"}},
        {TK_ALG_ES384, "EC", "P-384", {"d"}},
        {TK_ALG_ES512, "EC", "P-521", {"d"}},
        {TK_ALG_EDDSA, "OKP", "Ed25519", {"d"}},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *name = tk_alg_name(rows[i].alg);
        tk_key *k = make_key(rows[i].alg, "k1");
        assert_string_equal(tk_key_kty(k), rows[i].kty);
        char tp[64];
        assert_int_equal(tk_key_thumbprint(k, tp, sizeof tp), TK_OK);
        assert_int_equal(strlen(tp), 43);

        /* Private export: compact, sorted, with every private member. */
        char *priv = NULL;
        assert_int_equal(tk_key_to_jwk(k, 1, &priv), TK_OK);
        json_t *po = json_loads(priv, 0, NULL);
        assert_non_null(po);
        assert_string_equal(json_string_value(json_object_get(po, "kty")), rows[i].kty);
        assert_string_equal(json_string_value(json_object_get(po, "alg")), name);
        assert_string_equal(json_string_value(json_object_get(po, "kid")), "k1");
        assert_string_equal(json_string_value(json_object_get(po, "use")), "sig");
        if (rows[i].crv) {
            assert_string_equal(json_string_value(json_object_get(po, "crv")), rows[i].crv);
        }
        for (size_t m = 0; m < 6 && rows[i].priv_members[m]; m++) {
            if (!json_is_string(json_object_get(po, rows[i].priv_members[m]))) {
                fail_msg("%s private JWK lacks \"%s\": %s", name, rows[i].priv_members[m], priv);
            }
        }
        char *sorted = json_dumps(po, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(sorted, priv);
        free(sorted);
        json_decref(po);

        /* Import it back: same key, same export. */
        tk_key *k2 = NULL;
        assert_int_equal(tk_key_from_jwk(priv, strlen(priv), TK_ALG_UNSET, &k2), TK_OK);
        assert_int_equal(tk_key_alg(k2), rows[i].alg);
        assert_string_equal(tk_key_kid(k2), "k1");
        assert_int_equal(tk_key_can_sign(k2), 1);
        char *priv2 = NULL;
        assert_int_equal(tk_key_to_jwk(k2, 1, &priv2), TK_OK);
        assert_string_equal(priv2, priv);
        char tp2[64];
        assert_int_equal(tk_key_thumbprint(k2, tp2, sizeof tp2), TK_OK);
        assert_string_equal(tp2, tp);

        tk_key *verifier = k2;
        tk_key *pub_key = NULL;
        if (strcmp(rows[i].kty, "oct") == 0) {
            /* A secret has no public part. */
            char *none = NULL;
            assert_int_equal(tk_key_to_jwk(k, 0, &none), TK_ERR_STATE);
            assert_null(none);
        } else {
            char *pub = NULL;
            assert_int_equal(tk_key_to_jwk(k, 0, &pub), TK_OK);
            json_t *pubo = json_loads(pub, 0, NULL);
            assert_non_null(pubo);
            for (size_t m = 0; m < 6 && rows[i].priv_members[m]; m++) {
                assert_null(json_object_get(pubo, rows[i].priv_members[m]));
            }
            json_decref(pubo);
            assert_int_equal(tk_key_from_jwk(pub, strlen(pub), TK_ALG_UNSET, &pub_key), TK_OK);
            assert_int_equal(tk_key_can_sign(pub_key), 0);
            assert_int_equal(tk_key_alg(pub_key), rows[i].alg);
            char *pub2 = NULL;
            assert_int_equal(tk_key_to_jwk(pub_key, 0, &pub2), TK_OK);
            assert_string_equal(pub2, pub);
            char tp3[64];
            assert_int_equal(tk_key_thumbprint(pub_key, tp3, sizeof tp3), TK_OK);
            assert_string_equal(tp3, tp);
            /* A public key has no private JWK. */
            char *none = NULL;
            assert_int_equal(tk_key_to_jwk(pub_key, 1, &none), TK_ERR_STATE);
            assert_null(none);
            tk_free(pub2);
            tk_free(pub);
            verifier = pub_key;
        }
        /* The imported private key signs; the (public) copy verifies. */
        unsigned char *sig = NULL;
        size_t sl = 0;
        assert_int_equal(tk_key_sign(k2, (const unsigned char *)"hello", 5, &sig, &sl), TK_OK);
        int valid = 0;
        assert_int_equal(tk_key_verify(verifier, (const unsigned char *)"hello", 5, sig, sl, &valid), TK_OK);
        assert_int_equal(valid, 1);
        assert_int_equal(tk_key_verify(k, (const unsigned char *)"hello", 5, sig, sl, &valid), TK_OK);
        assert_int_equal(valid, 1);
        tk_free(sig);
        tk_free(priv2);
        tk_free(priv);
        tk_key_free(pub_key);
        tk_key_free(k2);
        tk_key_free(k);
    }
}

/* RFC 7518 §6.3.2: the CRT members are optional (all or none). */
static void test_rsa_private_jwk_without_crt(void **state)
{
    (void)state;
    tk_key *k = make_key(TK_ALG_RS256, "r");
    json_t *o = jwk_obj(k, 1);
    static const char *const crt[] = {"p", "q", "dp", "dq", "qi"};
    for (size_t i = 0; i < 5; i++) {
        json_object_del(o, crt[i]);
    }
    tk_key *k2 = NULL;
    assert_int_equal(from_json(o, TK_ALG_UNSET, &k2), TK_OK);
    assert_int_equal(tk_key_can_sign(k2), 1);
    unsigned char *sig = NULL;
    size_t sl = 0;
    assert_int_equal(tk_key_sign(k2, (const unsigned char *)"m", 1, &sig, &sl), TK_OK);
    int valid = 0;
    assert_int_equal(tk_key_verify(k, (const unsigned char *)"m", 1, sig, sl, &valid), TK_OK);
    assert_int_equal(valid, 1);
    tk_free(sig);
    tk_key_free(k2);
    /* Some CRT members but not all: refused. */
    json_t *partial = jwk_obj(k, 1);
    json_object_del(partial, "qi");
    expect_jwk(partial, TK_ALG_UNSET, TK_ERR_KEY, "RSA JWK missing qi only");
    json_decref(partial);
    partial = jwk_obj(k, 1);
    json_object_del(partial, "d");
    expect_jwk(partial, TK_ALG_UNSET, TK_ERR_KEY, "RSA JWK with CRT but no d");
    json_decref(partial);
    json_decref(o);
    tk_key_free(k);
}

/* RFC 7638 §3.1: the example RSA key and its thumbprint. */
static void test_thumbprint_rfc7638(void **state)
{
    (void)state;
    static const char jwk[] =
        "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQM"
        "icAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G"
        "_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
    static const char want[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    tk_key *k = NULL;
    assert_int_equal(tk_key_from_jwk(jwk, sizeof jwk - 1, TK_ALG_UNSET, &k), TK_OK);
    assert_int_equal(tk_key_alg(k), TK_ALG_RS256);
    assert_string_equal(tk_key_kid(k), "2011-04-29");
    char tp[44];
    assert_int_equal(tk_key_thumbprint(k, tp, sizeof tp), TK_OK);
    assert_string_equal(tp, want);
    /* Optional members (alg, kid) do not change it. */
    json_t *o = json_loads(jwk, 0, NULL);
    json_object_del(o, "alg");
    json_object_del(o, "kid");
    tk_key *bare = NULL;
    assert_int_equal(from_json(o, TK_ALG_UNSET, &bare), TK_OK);
    assert_int_equal(tk_key_alg(bare), TK_ALG_UNSET);
    char tp2[44];
    assert_int_equal(tk_key_thumbprint(bare, tp2, sizeof tp2), TK_OK);
    assert_string_equal(tp2, want);
    /* Buffer: 44 bytes needed (43 + NUL). */
    char small[43];
    assert_int_equal(tk_key_thumbprint(k, small, sizeof small), TK_ERR_ARG);
    assert_int_equal(tk_key_thumbprint(NULL, tp, sizeof tp), TK_ERR_ARG);
    json_decref(o);
    tk_key_free(bare);
    tk_key_free(k);
}

/* ---- material that is refused ---------------------------------------------- */

/* Rule 7. Attack: a 1024-bit RSA key can be factored by a determined
 * attacker; tokens "signed" by it prove nothing. Refused in every form. */
static void test_rule7_rsa_1024_refused(void **state)
{
    (void)state;
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(small);
    char *spki = pem_of(small, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    char *pkcs8 = pem_of(small, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
    char *pkcs1 = pem_of(small, EVP_PKEY_PUBLIC_KEY, "type-specific");
    const char *pems[3] = {spki, pkcs8, pkcs1};
    for (size_t i = 0; i < 3; i++) {
        tk_key *k = NULL;
        assert_int_equal(from_pem(pems[i], TK_ALG_UNSET, &k), TK_ERR_KEY);
        assert_null(k);
        assert_int_equal(from_pem(pems[i], TK_ALG_RS256, &k), TK_ERR_KEY);
        assert_int_equal(from_pem(pems[i], TK_ALG_PS256, &k), TK_ERR_KEY);
        assert_null(k);
    }
    json_t *o = rsa_public_jwk(small);
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "RSA-1024 JWK");
    expect_jwk(o, TK_ALG_RS256, TK_ERR_KEY, "RSA-1024 JWK, RS256");
    json_decref(o);
    /* The valid case: 2048 bits. */
    o = rsa_public_jwk(g_rsa_pk);
    expect_jwk(o, TK_ALG_RS256, TK_OK, "RSA-2048 JWK");
    json_decref(o);
    free(spki);
    free(pkcs8);
    free(pkcs1);
    EVP_PKEY_free(small);
}

/* Rule 7. Attack: a short HMAC secret can be brute-forced offline from one
 * token; the secret must be at least as long as the hash output. */
static void test_rule7_hmac_secret_lengths(void **state)
{
    (void)state;
    unsigned char secret[TK_LIMIT_HMAC_KEY_MAX + 1];
    for (size_t i = 0; i < sizeof secret; i++) {
        secret[i] = (unsigned char)(i * 7u + 3u);
    }
    static const struct {
        tk_alg alg;
        size_t len;
        tk_result want;
    } rows[] = {
        {TK_ALG_HS256, 0, TK_ERR_KEY},
        {TK_ALG_HS256, 1, TK_ERR_KEY},
        {TK_ALG_HS256, 31, TK_ERR_KEY},
        {TK_ALG_HS256, 32, TK_OK},
        {TK_ALG_HS384, 32, TK_ERR_KEY},
        {TK_ALG_HS384, 47, TK_ERR_KEY},
        {TK_ALG_HS384, 48, TK_OK},
        {TK_ALG_HS512, 63, TK_ERR_KEY},
        {TK_ALG_HS512, 64, TK_OK},
        {TK_ALG_HS256, TK_LIMIT_HMAC_KEY_MAX, TK_OK},
        {TK_ALG_HS256, TK_LIMIT_HMAC_KEY_MAX + 1, TK_ERR_KEY},
        {TK_ALG_UNSET, 31, TK_ERR_KEY},
        {TK_ALG_UNSET, 32, TK_OK},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_key *k = NULL;
        tk_result rc = tk_key_from_secret(secret, rows[i].len, rows[i].alg, "h", &k);
        if (rc != rows[i].want) {
            fail_msg("secret of %zu bytes for %s: %s", rows[i].len, rows[i].alg ? tk_alg_name(rows[i].alg) : "(unset)",
                     tk_result_str(rc));
        }
        if (rc == TK_OK) {
            assert_int_equal(tk_key_alg(k), rows[i].alg);
        } else {
            assert_null(k);
        }
        tk_key_free(k);
        /* The same through an oct JWK with its own alg. */
        if (rows[i].alg != TK_ALG_UNSET && rows[i].len > 0 && rows[i].len <= TK_LIMIT_HMAC_KEY_MAX) {
            json_t *o = json_object();
            json_object_set_new(o, "kty", json_string("oct"));
            json_object_set_new(o, "alg", json_string(tk_alg_name(rows[i].alg)));
            set_b64(o, "k", secret, rows[i].len);
            expect_jwk(o, TK_ALG_UNSET, rows[i].want, "oct JWK");
            json_decref(o);
        }
    }
    /* An oct JWK of 32 bytes bound through the alg argument. */
    json_t *o = json_object();
    json_object_set_new(o, "kty", json_string("oct"));
    set_b64(o, "k", secret, 32);
    expect_jwk(o, TK_ALG_HS384, TK_ERR_KEY, "32-byte oct JWK as HS384");
    expect_jwk(o, TK_ALG_HS256, TK_OK, "32-byte oct JWK as HS256");
    json_decref(o);
    /* Non-HMAC algs for a secret, and NULL. */
    tk_key *k = NULL;
    assert_int_not_equal(tk_key_from_secret(secret, 32, TK_ALG_RS256, NULL, &k), TK_OK);
    assert_null(k);
    assert_int_not_equal(tk_key_from_secret(secret, 64, TK_ALG_ES256, NULL, &k), TK_OK);
    assert_int_equal(tk_key_from_secret(NULL, 32, TK_ALG_HS256, NULL, &k), TK_ERR_ARG);
}

/* Rule 7 / invalid-curve attacks: a point that is not on the curve lets an
 * attacker learn about a private key in ECDH, and marks a forged JWK. */
static void test_ec_points_and_coordinates(void **state)
{
    (void)state;
    static const struct {
        tk_alg alg;
        size_t c;
    } curves[] = {{TK_ALG_ES256, 32}, {TK_ALG_ES384, 48}, {TK_ALG_ES512, 66}};
    for (size_t ci = 0; ci < 3; ci++) {
        tk_key *k = make_key(curves[ci].alg, NULL);
        size_t c = curves[ci].c;
        json_t *pub = jwk_obj(k, 0);
        expect_jwk(pub, TK_ALG_UNSET, TK_OK, "genuine EC public JWK");
        size_t yl = 0;
        unsigned char *y = get_b64(pub, "y", &yl);
        assert_int_equal(yl, c);
        /* y with its last bit flipped: not on the curve. */
        y[c - 1] = (unsigned char)(y[c - 1] ^ 1u);
        json_t *o = json_deep_copy(pub);
        set_b64(o, "y", y, c);
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "y modified");
        json_decref(o);
        y[c - 1] = (unsigned char)(y[c - 1] ^ 1u);
        /* x one byte short, one byte long (leading zero), both zero. */
        size_t xl = 0;
        unsigned char *x = get_b64(pub, "x", &xl);
        unsigned char longer[70] = {0};
        memcpy(longer + 1, x, c);
        o = json_deep_copy(pub);
        set_b64(o, "x", x + 1, c - 1);
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "x one byte short");
        set_b64(o, "x", longer, c + 1);
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "x one byte long");
        unsigned char zero[66] = {0};
        set_b64(o, "x", zero, c);
        set_b64(o, "y", zero, c);
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "the point (0, 0)");
        json_decref(o);
        /* Members missing, or not canonical base64url. */
        o = json_deep_copy(pub);
        json_object_del(o, "y");
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "no y");
        json_decref(o);
        o = json_deep_copy(pub);
        json_object_del(o, "crv");
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "no crv");
        json_decref(o);
        o = json_deep_copy(pub);
        char padded[200];
        snprintf(padded, sizeof padded, "%s=", json_string_value(json_object_get(pub, "x")));
        json_object_set_new(o, "x", json_string(padded));
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "x with padding");
        json_decref(o);
        /* Another curve's name on these coordinates. */
        o = json_deep_copy(pub);
        json_object_set_new(o, "crv", json_string(ci == 0 ? "P-384" : "P-256"));
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "crv of another size");
        json_object_set_new(o, "crv", json_string("secp256k1"));
        expect_jwk(o, TK_ALG_UNSET, TK_ERR_UNSUPPORTED, "crv secp256k1");
        json_decref(o);
        /* A private part that does not match the public part. */
        tk_key *other = make_key(curves[ci].alg, NULL);
        json_t *mine = jwk_obj(k, 1);
        json_t *theirs = jwk_obj(other, 1);
        json_object_set(mine, "d", json_object_get(theirs, "d"));
        expect_jwk(mine, TK_ALG_UNSET, TK_ERR_KEY_MISMATCH, "d of another key");
        json_decref(mine);
        json_decref(theirs);
        tk_key_free(other);
        free(x);
        free(y);
        json_decref(pub);
        tk_key_free(k);
    }
}

static void test_okp(void **state)
{
    (void)state;
    tk_key *k = make_key(TK_ALG_EDDSA, NULL);
    json_t *pub = jwk_obj(k, 0);
    expect_jwk(pub, TK_ALG_UNSET, TK_OK, "Ed25519 public");
    expect_jwk(pub, TK_ALG_EDDSA, TK_OK, "Ed25519 public, EdDSA");
    expect_jwk(pub, TK_ALG_ES256, TK_ERR_KEY, "Ed25519 public, ES256");
    unsigned char x57[57];
    memset(x57, 0x42, sizeof x57);
    json_t *o = json_object();
    json_object_set_new(o, "kty", json_string("OKP"));
    json_object_set_new(o, "crv", json_string("Ed448"));
    set_b64(o, "x", x57, 57);
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_UNSUPPORTED, "Ed448");
    json_object_set_new(o, "crv", json_string("X25519"));
    set_b64(o, "x", x57, 32);
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_UNSUPPORTED, "X25519");
    json_decref(o);
    o = json_deep_copy(pub);
    size_t xl = 0;
    unsigned char *x = get_b64(pub, "x", &xl);
    set_b64(o, "x", x, 31);
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "Ed25519 x of 31 bytes");
    json_object_del(o, "x");
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "Ed25519 without x");
    json_decref(o);
    /* d of another key. */
    tk_key *other = make_key(TK_ALG_EDDSA, NULL);
    json_t *mine = jwk_obj(k, 1);
    json_t *theirs = jwk_obj(other, 1);
    json_object_set(mine, "d", json_object_get(theirs, "d"));
    expect_jwk(mine, TK_ALG_UNSET, TK_ERR_KEY_MISMATCH, "Ed25519 d of another key");
    json_decref(mine);
    json_decref(theirs);
    tk_key_free(other);
    free(x);
    json_decref(pub);
    tk_key_free(k);
}

/* RFC 7517 §4.2, §4.3: keys for encryption are not signature keys. */
static void test_use_and_key_ops(void **state)
{
    (void)state;
    tk_key *k = make_key(TK_ALG_ES256, "e");
    json_t *pub = jwk_obj(k, 0);
    json_object_del(pub, "use");
    static const struct {
        const char *member;
        const char *json;
        tk_result want;
    } rows[] = {
        {"use", "\"sig\"", TK_OK},
        {"use", "\"enc\"", TK_ERR_KEY},
        {"use", "\"\"", TK_ERR_KEY},
        {"use", "\"SIG\"", TK_ERR_KEY},
        {"use", "1", TK_ERR_KEY},
        {"key_ops", "[\"verify\"]", TK_OK},
        {"key_ops", "[\"sign\",\"verify\"]", TK_OK},
        {"key_ops", "[\"encrypt\"]", TK_ERR_KEY},
        {"key_ops", "[\"encrypt\",\"decrypt\",\"wrapKey\"]", TK_ERR_KEY},
        {"key_ops", "[]", TK_ERR_KEY},
        {"key_ops", "\"verify\"", TK_ERR_KEY},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *o = json_deep_copy(pub);
        json_object_set_new(o, rows[i].member, json_loads(rows[i].json, JSON_DECODE_ANY, NULL));
        expect_jwk(o, TK_ALG_UNSET, rows[i].want, rows[i].json);
        json_decref(o);
    }
    expect_jwk(pub, TK_ALG_UNSET, TK_OK, "neither use nor key_ops");
    json_decref(pub);
    tk_key_free(k);
}

/* Rule 1: a JWK's own alg must fit its key type and agree with the caller. */
static void test_rule1_alg_member_must_fit_key(void **state)
{
    (void)state;
    tk_key *ec = make_key(TK_ALG_ES256, NULL);
    tk_key *ed = make_key(TK_ALG_EDDSA, NULL);
    json_t *ecj = jwk_obj(ec, 0);
    json_t *edj = jwk_obj(ed, 0);
    json_t *rsaj = rsa_public_jwk(g_rsa_pk);
    json_t *octj = json_object();
    json_object_set_new(octj, "kty", json_string("oct"));
    set_b64(octj, "k", TU_SECRET32, 32);
    json_object_del(ecj, "alg");
    json_object_del(edj, "alg");
    static const struct {
        int which;              /* 0 EC P-256, 1 Ed25519, 2 RSA, 3 oct */
        const char *alg_member; /* NULL: absent; "5": a number */
        tk_alg arg;
        tk_result want;
    } rows[] = {
        {0, "ES256", TK_ALG_UNSET, TK_OK},
        {0, NULL, TK_ALG_ES256, TK_OK},
        {0, NULL, TK_ALG_UNSET, TK_OK},
        {0, "RS256", TK_ALG_UNSET, TK_ERR_KEY},
        {0, "ES384", TK_ALG_UNSET, TK_ERR_KEY},
        {0, "HS256", TK_ALG_UNSET, TK_ERR_KEY},
        {0, "EdDSA", TK_ALG_UNSET, TK_ERR_KEY},
        {0, NULL, TK_ALG_ES384, TK_ERR_KEY},
        {0, NULL, TK_ALG_RS256, TK_ERR_KEY},
        {0, "ES256", TK_ALG_ES384, TK_ERR_KEY},
        {1, "EdDSA", TK_ALG_UNSET, TK_OK},
        {1, "ES256", TK_ALG_UNSET, TK_ERR_KEY},
        {2, "RS256", TK_ALG_UNSET, TK_OK},
        {2, "PS512", TK_ALG_UNSET, TK_OK},
        {2, NULL, TK_ALG_PS256, TK_OK},
        {2, "RS256", TK_ALG_PS256, TK_ERR_KEY},
        {2, "ES256", TK_ALG_UNSET, TK_ERR_KEY},
        {2, "HS256", TK_ALG_UNSET, TK_ERR_KEY},
        {2, NULL, TK_ALG_HS256, TK_ERR_KEY},
        {2, "RSA-OAEP", TK_ALG_UNSET, TK_ERR_UNSUPPORTED},
        {2, "none", TK_ALG_UNSET, TK_ERR_UNSUPPORTED},
        {2, "5", TK_ALG_UNSET, TK_ERR_KEY},
        {3, "HS256", TK_ALG_UNSET, TK_OK},
        {3, "RS256", TK_ALG_UNSET, TK_ERR_KEY},
        {3, "ES256", TK_ALG_UNSET, TK_ERR_KEY},
        {3, NULL, TK_ALG_RS256, TK_ERR_KEY},
    };
    json_t *base[4] = {ecj, edj, rsaj, octj};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        json_t *o = json_deep_copy(base[rows[i].which]);
        if (rows[i].alg_member) {
            json_object_set_new(
                o, "alg", strcmp(rows[i].alg_member, "5") == 0 ? json_integer(5) : json_string(rows[i].alg_member));
        }
        char what[96];
        snprintf(what, sizeof what, "row %zu: alg member %s, argument %s", i,
                 rows[i].alg_member ? rows[i].alg_member : "(none)",
                 rows[i].arg ? tk_alg_name(rows[i].arg) : "(unset)");
        expect_jwk(o, rows[i].arg, rows[i].want, what);
        json_decref(o);
    }
    for (size_t i = 0; i < 4; i++) {
        json_decref(base[i]);
    }
    tk_key_free(ec);
    tk_key_free(ed);
}

static void test_jwk_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        tk_result want;
    } rows[] = {
        {"not json", TK_ERR_JSON},
        {"[]", TK_ERR_JSON},
        {"{\"kty\":\"oct\",\"kty\":\"oct\",\"k\":\"AAAA\"}", TK_ERR_JSON},
        {"{}", TK_ERR_KEY},
        {"{\"kty\":5}", TK_ERR_KEY},
        {"{\"kty\":\"XYZ\"}", TK_ERR_UNSUPPORTED},
        {"{\"kty\":\"RSA\",\"e\":\"AQAB\"}", TK_ERR_KEY},
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\"}", TK_ERR_KEY},
        {"{\"kty\":\"oct\",\"k\":\"\"}", TK_ERR_KEY},
        {"{\"kty\":\"oct\",\"k\":5}", TK_ERR_KEY},
        {"{\"kty\":\"oct\"}", TK_ERR_KEY},
        {"{\"kty\":\"oct\",\"k\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}", TK_ERR_KEY},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\"}", TK_ERR_KEY},
        {"{\"kty\":\"OKP\"}", TK_ERR_KEY},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_key *k = NULL;
        tk_result rc = tk_key_from_jwk(rows[i].json, strlen(rows[i].json), TK_ALG_UNSET, &k);
        if (rc != rows[i].want) {
            fail_msg("%s: %s, want %s", rows[i].json, tk_result_str(rc), tk_result_str(rows[i].want));
        }
        assert_null(k);
    }
    tk_key *k = NULL;
    assert_int_equal(tk_key_from_jwk("", 0, TK_ALG_UNSET, &k), TK_ERR_ARG);
    assert_int_equal(tk_key_from_jwk(NULL, 5, TK_ALG_UNSET, &k), TK_ERR_ARG);
    assert_int_equal(tk_key_from_jwk("{}", 2, TK_ALG_UNSET, NULL), TK_ERR_ARG);
    /* Size limit: one byte past TK_LIMIT_JWK_LEN. */
    size_t n = TK_LIMIT_JWK_LEN + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"kty\":\"oct\",\"k\":\"", 18);
    big[n - 2] = '"';
    big[n - 1] = '}';
    assert_int_equal(tk_key_from_jwk(big, n, TK_ALG_UNSET, &k), TK_ERR_LIMIT);
    free(big);
}

static void test_kid_rules(void **state)
{
    (void)state;
    char kid[TK_LIMIT_KID_LEN + 2];
    memset(kid, 'k', sizeof kid);
    kid[TK_LIMIT_KID_LEN] = '\0';
    tk_key *k = NULL;
    assert_int_equal(tk_key_from_secret(TU_SECRET32, 32, TK_ALG_HS256, kid, &k), TK_OK);
    assert_string_equal(tk_key_kid(k), kid);
    json_t *o = jwk_obj(k, 1);
    expect_jwk(o, TK_ALG_UNSET, TK_OK, "JWK kid of 128 bytes");
    kid[TK_LIMIT_KID_LEN] = 'k';
    kid[TK_LIMIT_KID_LEN + 1] = '\0';
    json_object_set_new(o, "kid", json_string(kid));
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "JWK kid of 129 bytes");
    json_object_set_new(o, "kid", json_string(""));
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "JWK kid empty");
    json_object_set_new(o, "kid", json_integer(5));
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY, "JWK kid a number");
    json_decref(o);
    assert_int_equal(tk_key_set_kid(k, kid), TK_ERR_ARG);
    assert_int_equal(tk_key_set_kid(k, ""), TK_ERR_ARG);
    assert_int_equal(tk_key_set_kid(k, "new"), TK_OK);
    assert_string_equal(tk_key_kid(k), "new");
    assert_int_equal(tk_key_set_kid(k, NULL), TK_OK);
    assert_null(tk_key_kid(k));
    tk_key_free(k);
    tk_key *g = NULL;
    assert_int_not_equal(tk_key_from_secret(TU_SECRET32, 32, TK_ALG_HS256, kid, &g), TK_OK);
    assert_null(g);
}

static void test_generate_and_alg_fits(void **state)
{
    (void)state;
    for (tk_alg a = TK_ALG_HS256; a < TK_ALG_COUNT_; a = (tk_alg)(a + 1)) {
        if (a >= TK_ALG_RS256 && a <= TK_ALG_PS512 && a != TK_ALG_PS256) {
            continue; /* one RSA keygen is enough under ASan */
        }
        tk_key *k = NULL;
        assert_int_equal(tk_key_generate(a, "g", &k), TK_OK);
        assert_int_equal(tk_key_alg(k), a);
        assert_int_equal(tk_key_can_sign(k), 1);
        assert_int_equal(tk_key_alg_fits(k, a), 1);
        assert_int_equal(tk_key_alg_fits(k, TK_ALG_UNSET), 0);
        for (tk_alg b = TK_ALG_HS256; b < TK_ALG_COUNT_; b = (tk_alg)(b + 1)) {
            int same_family = (a <= TK_ALG_HS512 && b <= TK_ALG_HS512 && b <= a) ||
                              (a >= TK_ALG_RS256 && a <= TK_ALG_PS512 && b >= TK_ALG_RS256 && b <= TK_ALG_PS512) ||
                              a == b;
            if (tk_key_alg_fits(k, b) != same_family) {
                fail_msg("%s key: tk_key_alg_fits(%s) = %d", tk_alg_name(a), tk_alg_name(b), tk_key_alg_fits(k, b));
            }
        }
        tk_key_free(k);
    }
    tk_key *k = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_UNSET, NULL, &k), TK_ERR_ARG);
    assert_int_equal(tk_key_generate(TK_ALG_COUNT_, NULL, &k), TK_ERR_ARG);
    assert_null(k);
    assert_null(tk_alg_name(TK_ALG_UNSET));
    assert_null(tk_alg_name(TK_ALG_COUNT_));
    for (tk_alg a = TK_ALG_HS256; a < TK_ALG_COUNT_; a = (tk_alg)(a + 1)) {
        const char *n = tk_alg_name(a);
        assert_int_equal(tk_alg_from_name(n, strlen(n)), a);
    }
    assert_int_equal(tk_alg_from_name("none", 4), TK_ALG_UNSET);
    assert_int_equal(tk_alg_from_name("hs256", 5), TK_ALG_UNSET);
    assert_int_equal(tk_alg_from_name("HS256", 4), TK_ALG_UNSET);
    assert_int_equal(tk_alg_from_name("HS2560", 6), TK_ALG_UNSET);
    assert_int_equal(tk_alg_from_name("HS256xyz", 5), TK_ALG_HS256);
    assert_int_equal(tk_alg_from_name(NULL, 0), TK_ALG_UNSET);
}

/* The HMAC is computed by tokend itself (precomputed inner and outer
 * states); it must equal OpenSSL's HMAC() for every key length around the
 * block sizes (keys longer than a block are hashed first, RFC 2104 §2) and
 * every message length, on keys bound at creation and bound later. */
static void test_hmac_matches_openssl(void **state)
{
    (void)state;
    static const size_t key_lens[] = {32, 48, 63, 64, 65, 127, 128, 129, 200, TK_LIMIT_HMAC_KEY_MAX};
    static const size_t msg_lens[] = {0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 1000};
    static const tk_alg algs[] = {TK_ALG_HS256, TK_ALG_HS384, TK_ALG_HS512};
    unsigned char key[TK_LIMIT_HMAC_KEY_MAX];
    unsigned char msg[1000];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (unsigned char)(i * 31u + 7u);
    }
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (unsigned char)(i * 13u + 1u);
    }
    for (size_t a = 0; a < 3; a++) {
        const EVP_MD *md = a == 0 ? EVP_sha256() : a == 1 ? EVP_sha384() : EVP_sha512();
        for (size_t ki = 0; ki < sizeof key_lens / sizeof key_lens[0]; ki++) {
            size_t kl = key_lens[ki];
            if (kl < (size_t)EVP_MD_get_size(md)) {
                continue;
            }
            tk_key *bound = NULL;
            tk_key *late = NULL;
            assert_int_equal(tk_key_from_secret(key, kl, algs[a], NULL, &bound), TK_OK);
            assert_int_equal(tk_key_from_secret(key, kl, TK_ALG_UNSET, NULL, &late), TK_OK);
            assert_int_equal(tk_key_bind_alg(late, algs[a]), TK_OK);
            for (size_t mi = 0; mi < sizeof msg_lens / sizeof msg_lens[0]; mi++) {
                unsigned char want[EVP_MAX_MD_SIZE];
                unsigned int wl = 0;
                assert_non_null(HMAC(md, key, (int)kl, msg, msg_lens[mi], want, &wl));
                const tk_key *ks[2] = {bound, late};
                for (size_t b = 0; b < 2; b++) {
                    unsigned char *sig = NULL;
                    size_t sl = 0;
                    assert_int_equal(tk_key_sign(ks[b], msg, msg_lens[mi], &sig, &sl), TK_OK);
                    if (sl != wl || memcmp(sig, want, wl) != 0) {
                        fail_msg("%s, key %zu bytes, message %zu bytes: HMAC differs from OpenSSL's",
                                 tk_alg_name(algs[a]), kl, msg_lens[mi]);
                    }
                    int valid = 0;
                    assert_int_equal(tk_key_verify(ks[b], msg, msg_lens[mi], want, wl, &valid), TK_OK);
                    assert_int_equal(valid, 1);
                    tk_free(sig);
                }
            }
            tk_key_free(bound);
            tk_key_free(late);
        }
    }
}

/* ---- PEM ------------------------------------------------------------------------- */

static void test_pem_formats(void **state)
{
    (void)state;
    EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    assert_non_null(ec384);
    static const struct {
        int key; /* 0 RSA, 1 EC P-256, 2 Ed25519, 3 EC P-384 */
        int selection;
        const char *structure;
        const char *label;
        tk_alg arg;
        tk_alg want_alg;
        int can_sign;
    } rows[] = {
        {0, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", "BEGIN PUBLIC KEY", TK_ALG_RS256, TK_ALG_RS256, 0},
        {0, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", "BEGIN PUBLIC KEY", TK_ALG_UNSET, TK_ALG_UNSET, 0},
        {0, EVP_PKEY_PUBLIC_KEY, "type-specific", "BEGIN RSA PUBLIC KEY", TK_ALG_PS256, TK_ALG_PS256, 0},
        {0, EVP_PKEY_KEYPAIR, "PrivateKeyInfo", "BEGIN PRIVATE KEY", TK_ALG_RS384, TK_ALG_RS384, 1},
        {0, EVP_PKEY_KEYPAIR, "type-specific", "BEGIN RSA PRIVATE KEY", TK_ALG_RS256, TK_ALG_RS256, 1},
        {1, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", "BEGIN PUBLIC KEY", TK_ALG_UNSET, TK_ALG_ES256, 0},
        {1, EVP_PKEY_KEYPAIR, "PrivateKeyInfo", "BEGIN PRIVATE KEY", TK_ALG_ES256, TK_ALG_ES256, 1},
        {1, EVP_PKEY_KEYPAIR, "type-specific", "BEGIN EC PRIVATE KEY", TK_ALG_UNSET, TK_ALG_ES256, 1},
        {3, EVP_PKEY_KEYPAIR, "type-specific", "BEGIN EC PRIVATE KEY", TK_ALG_UNSET, TK_ALG_ES384, 1},
        {2, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", "BEGIN PUBLIC KEY", TK_ALG_UNSET, TK_ALG_EDDSA, 0},
        {2, EVP_PKEY_KEYPAIR, "PrivateKeyInfo", "BEGIN PRIVATE KEY", TK_ALG_EDDSA, TK_ALG_EDDSA, 1},
    };
    EVP_PKEY *pks[4] = {g_rsa_pk, g_ec_pk, g_ed_pk, ec384};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *pem = pem_of(pks[rows[i].key], rows[i].selection, rows[i].structure);
        if (strstr(pem, rows[i].label) == NULL) {
            fail_msg("row %zu: OpenSSL wrote %.40s, expected %s", i, pem, rows[i].label);
        }
        tk_key *k = NULL;
        tk_result rc = from_pem(pem, rows[i].arg, &k);
        if (rc != TK_OK) {
            fail_msg("row %zu (%s): %s", i, rows[i].label, tk_result_str(rc));
        }
        assert_int_equal(tk_key_alg(k), rows[i].want_alg);
        assert_int_equal(tk_key_can_sign(k), rows[i].can_sign);
        assert_string_equal(tk_key_kid(k), "pem");
        tk_key_free(k);
        free(pem);
    }
    /* A private PEM signs what the public PEM verifies. */
    char *sec1 = pem_of(g_ec_pk, EVP_PKEY_KEYPAIR, "type-specific");
    char *spki = pem_of(g_ec_pk, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    tk_key *priv = NULL;
    tk_key *pub = NULL;
    assert_int_equal(from_pem(sec1, TK_ALG_UNSET, &priv), TK_OK);
    assert_int_equal(from_pem(spki, TK_ALG_UNSET, &pub), TK_OK);
    unsigned char *sig = NULL;
    size_t sl = 0;
    assert_int_equal(tk_key_sign(priv, (const unsigned char *)"m", 1, &sig, &sl), TK_OK);
    int valid = 0;
    assert_int_equal(tk_key_verify(pub, (const unsigned char *)"m", 1, sig, sl, &valid), TK_OK);
    assert_int_equal(valid, 1);
    char t1[44];
    char t2[44];
    assert_int_equal(tk_key_thumbprint(priv, t1, sizeof t1), TK_OK);
    assert_int_equal(tk_key_thumbprint(pub, t2, sizeof t2), TK_OK);
    assert_string_equal(t1, t2);
    tk_free(sig);
    tk_key_free(priv);
    tk_key_free(pub);
    /* Alg arguments that do not fit the key. */
    tk_key *k = NULL;
    assert_int_equal(from_pem(sec1, TK_ALG_ES384, &k), TK_ERR_KEY);
    assert_int_equal(from_pem(sec1, TK_ALG_RS256, &k), TK_ERR_KEY);
    assert_int_equal(from_pem(g_rsa_pkcs8, TK_ALG_ES256, &k), TK_ERR_KEY);
    assert_int_equal(from_pem(g_rsa_pkcs8, TK_ALG_HS256, &k), TK_ERR_KEY);
    assert_null(k);
    free(sec1);
    free(spki);
    EVP_PKEY_free(ec384);
}

/* Encrypted PEM is refused (keys at rest are protected by file mode), and
 * so is anything that is not a key we use. */
static void test_pem_refused(void **state)
{
    (void)state;
    tk_key *k = NULL;
    /* Encrypted PKCS#8. */
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, g_rsa_pk, EVP_aes_256_cbc(), "secret", 6, NULL, NULL), 1);
    char *enc8 = bio_to_string(b);
    BIO_free(b);
    assert_non_null(strstr(enc8, "ENCRYPTED PRIVATE KEY"));
    assert_int_equal(from_pem(enc8, TK_ALG_UNSET, &k), TK_ERR_KEY);
    assert_int_equal(from_pem(enc8, TK_ALG_RS256, &k), TK_ERR_KEY);
    assert_null(k);
    free(enc8);
    /* Encrypted traditional (Proc-Type: 4,ENCRYPTED). */
    b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, g_ec_pk, EVP_aes_128_cbc(),
                                                          (const unsigned char *)"secret", 6, NULL, NULL),
                     1);
    char *enct = bio_to_string(b);
    BIO_free(b);
    assert_non_null(strstr(enct, "ENCRYPTED"));
    assert_int_equal(from_pem(enct, TK_ALG_UNSET, &k), TK_ERR_KEY);
    assert_null(k);
    free(enct);
    /* Not keys, or keys of kinds we do not use. */
    static const char *const junk[] = {
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "not a pem at all",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_int_equal(from_pem(junk[i], TK_ALG_UNSET, &k), TK_ERR_KEY);
        assert_null(k);
    }
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x);
    char *xp = pem_of(x, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    assert_int_equal(from_pem(xp, TK_ALG_UNSET, &k), TK_ERR_UNSUPPORTED);
    free(xp);
    EVP_PKEY_free(x);
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    assert_non_null(k1);
    char *k1p = pem_of(k1, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    assert_int_equal(from_pem(k1p, TK_ALG_UNSET, &k), TK_ERR_UNSUPPORTED);
    free(k1p);
    EVP_PKEY_free(k1);
    assert_int_equal(tk_key_from_pem("", 0, TK_ALG_UNSET, NULL, &k), TK_ERR_ARG);
    assert_int_equal(tk_key_from_pem(NULL, 10, TK_ALG_UNSET, NULL, &k), TK_ERR_ARG);
    size_t n = TK_LIMIT_JWK_LEN + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'A', n);
    assert_int_equal(tk_key_from_pem(big, n, TK_ALG_UNSET, NULL, &k), TK_ERR_LIMIT);
    free(big);
}

/* ---- SECURITY.md rule 23: keys that cannot be forged ---------------------------- */

enum { RSA_N, RSA_E, RSA_D, RSA_P, RSA_Q, RSA_DP, RSA_DQ, RSA_QI, RSA_PARTS };
static const char *const RSA_JWK_NAMES[RSA_PARTS] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
static const char *const RSA_PARAMS[RSA_PARTS] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                                  OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                                  OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                                  OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};

/* Every part of an OpenSSL RSA key pair (owned). */
static void rsa_parts(EVP_PKEY *pk, BIGNUM *v[RSA_PARTS])
{
    for (size_t i = 0; i < RSA_PARTS; i++) {
        v[i] = NULL;
        assert_int_equal(EVP_PKEY_get_bn_param(pk, RSA_PARAMS[i], &v[i]), 1);
    }
}

static void rsa_parts_free(BIGNUM *v[RSA_PARTS])
{
    for (size_t i = 0; i < RSA_PARTS; i++) {
        BN_clear_free(v[i]);
        v[i] = NULL;
    }
}

/* An OpenSSL key of the non-NULL parts. EVP_PKEY_fromdata checks nothing,
 * which is how a bad key is made here. */
static EVP_PKEY *rsa_from_parts(BIGNUM *const v[RSA_PARTS])
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    for (size_t i = 0; i < RSA_PARTS; i++) {
        if (v[i]) {
            assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, RSA_PARAMS[i], v[i]), 1);
        }
    }
    OSSL_PARAM *ps = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    assert_non_null(ps);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &pk, v[RSA_D] ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, ps), 1);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(ps);
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

static void set_bn_member(json_t *o, const char *name, const BIGNUM *bn)
{
    unsigned char buf[1100];
    int n = BN_num_bytes(bn);
    if (n == 0) {
        n = 1; /* zero is one 0x00 byte */
    }
    assert_true((size_t)n <= sizeof buf);
    assert_true(BN_bn2binpad(bn, buf, n) == n);
    set_b64(o, name, buf, (size_t)n);
}

/* A JWK of the non-NULL parts. */
static json_t *rsa_jwk_from_parts(BIGNUM *const v[RSA_PARTS])
{
    json_t *o = json_object();
    assert_non_null(o);
    json_object_set_new(o, "kty", json_string("RSA"));
    for (size_t i = 0; i < RSA_PARTS; i++) {
        if (v[i]) {
            set_bn_member(o, RSA_JWK_NAMES[i], v[i]);
        }
    }
    return o;
}

/*
 * Every way an RSA key reaches tokend must give `want`: the JWK (with and
 * without an alg), a JWKS holding it next to a good key (the whole set is
 * refused with the key's result), and PEM: SPKI and PKCS#1 public for a
 * public key, PKCS#8 and PKCS#1 private for a private one.
 */
static void expect_rsa_everywhere(BIGNUM *const v[RSA_PARTS], tk_result want, const char *what)
{
    char label[160];
    json_t *o = rsa_jwk_from_parts(v);
    snprintf(label, sizeof label, "%s (JWK)", what);
    expect_jwk(o, TK_ALG_UNSET, want, label);
    snprintf(label, sizeof label, "%s (JWK as PS256)", what);
    expect_jwk(o, TK_ALG_PS256, want, label);

    json_t *good = rsa_public_jwk(g_rsa2_pk);
    json_object_set_new(good, "kid", json_string("good"));
    json_object_set_new(o, "kid", json_string("bad"));
    json_t *members[2] = {good, o};
    char *doc = jwks_of(members, 2);
    tk_keyset *ks = NULL;
    size_t skipped = 9;
    tk_result rc = tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_RS256, &ks, &skipped);
    if (rc != want) {
        fail_msg("%s (JWKS): %s, want %s", what, tk_result_str(rc), tk_result_str(want));
    }
    if (want == TK_OK) {
        assert_int_equal(tk_keyset_count(ks), 2);
        assert_int_equal(skipped, 0);
    } else {
        assert_null(ks);
    }
    tk_keyset_free(ks);
    free(doc);
    json_decref(good);
    json_decref(o);

    EVP_PKEY *pk = rsa_from_parts(v);
    int priv = v[RSA_D] != NULL;
    const char *const structures[2] = {priv ? "PrivateKeyInfo" : "SubjectPublicKeyInfo", "type-specific"};
    for (size_t i = 0; i < 2; i++) {
        char *pem = pem_of(pk, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, structures[i]);
        tk_key *k = NULL;
        rc = from_pem(pem, TK_ALG_RS256, &k);
        if (rc != want) {
            fail_msg("%s (PEM %s): %s, want %s", what, structures[i], tk_result_str(rc), tk_result_str(want));
        }
        if (want == TK_OK) {
            assert_int_equal(tk_key_can_sign(k), priv);
        } else {
            assert_null(k);
        }
        tk_key_free(k);
        free(pem);
    }
    EVP_PKEY_free(pk);
}

/* The new results name what is wrong, for the people who read them. */
static void test_rule23_result_strings(void **state)
{
    (void)state;
    const char *e = tk_result_str(TK_ERR_KEY_EXPONENT);
    const char *m = tk_result_str(TK_ERR_KEY_MISMATCH);
    assert_non_null(strstr(e, "RSA public exponent"));
    assert_non_null(strstr(e, "odd and greater than 1"));
    assert_non_null(strstr(m, "private key does not match its public key"));
    assert_string_not_equal(e, tk_result_str(TK_ERR_KEY));
    assert_string_not_equal(m, tk_result_str(TK_ERR_KEY));
    assert_string_not_equal(e, m);
    assert_string_not_equal(e, tk_result_str((tk_result)99));
    assert_int_equal(TK_ERR_KEY_EXPONENT, 9); /* appended, never renumbered */
    assert_int_equal(TK_ERR_KEY_MISMATCH, 10);
}

/* A random prime of `bits` bits (OpenSSL's generator). */
static BIGNUM *prime_of(int bits)
{
    BIGNUM *p = BN_new();
    assert_non_null(p);
    assert_int_equal(BN_generate_prime_ex(p, bits, 0, NULL, NULL, NULL), 1);
    return p;
}

/* The modulus of the RSA key fuzz_jwk found (fuzz/regressions/fuzz_jwk/
 * crash-7502e6f7…): a composite that some Miller-Rabin bases factor, so
 * OpenSSL's check, with random bases, accepted it on one import and refused
 * it on the next. */
static const char FUZZ_N[] =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-"
    "pCgNMsD1W_YpRPOwEWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg"
    "665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRW"
    "yuXpoQ";

/*
 * Rule 23, the modulus. A prime n gives d = e^-1 mod (n - 1) to anyone, a
 * prime power p^k too (phi = p^(k-1)(p - 1)), and a small factor makes n
 * easy to split: each is refused in every form (SP 800-56B §6.4.2.2, the
 * enhanced Miller-Rabin test of FIPS 186-4 C.3.2). The verdict depends on n
 * alone: the same modulus imported again and again gets the same answer.
 */
static void test_rule23_rsa_modulus(void **state)
{
    (void)state;
    BIGNUM *v[RSA_PARTS];
    rsa_parts(g_rsa_pk, v);
    BIGNUM *pub[RSA_PARTS] = {NULL};
    pub[RSA_E] = v[RSA_E];
    BN_CTX *ctx = BN_CTX_new();
    assert_non_null(ctx);

    BIGNUM *p = prime_of(2048);
    pub[RSA_N] = p;
    expect_rsa_everywhere(pub, TK_ERR_KEY, "n prime");
    BN_free(p);

    BIGNUM *sq = BN_new();
    p = prime_of(1025);
    assert_int_equal(BN_sqr(sq, p, ctx), 1);
    pub[RSA_N] = sq;
    expect_rsa_everywhere(pub, TK_ERR_KEY, "n = p^2");
    BIGNUM *cube = BN_new();
    BN_free(p);
    p = prime_of(700);
    assert_int_equal(BN_sqr(sq, p, ctx), 1);
    assert_int_equal(BN_mul(cube, sq, p, ctx), 1);
    pub[RSA_N] = cube;
    expect_rsa_everywhere(pub, TK_ERR_KEY, "n = p^3");
    BN_free(p);

    static const BN_ULONG small[] = {3, 5, 751};
    BIGNUM *with_small = BN_new();
    p = prime_of(2040);
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        assert_non_null(BN_copy(with_small, p));
        assert_int_equal(BN_mul_word(with_small, small[i]), 1);
        pub[RSA_N] = with_small;
        char what[48];
        snprintf(what, sizeof what, "n with the factor %lu", (unsigned long)small[i]);
        expect_rsa_everywhere(pub, TK_ERR_KEY, what);
    }
    BN_free(p);

    BIGNUM *even = BN_dup(v[RSA_N]);
    assert_int_equal(BN_add_word(even, 1), 1);
    pub[RSA_N] = even;
    expect_rsa_everywhere(pub, TK_ERR_KEY, "n even");

    pub[RSA_N] = v[RSA_N];
    expect_rsa_everywhere(pub, TK_OK, "a real modulus");

    /* the same answer every time, for a real modulus and for the one the
     * fuzzer found (accepted: composite, not a prime power) */
    char jwk[700];
    snprintf(jwk, sizeof jwk, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}", FUZZ_N);
    for (int i = 0; i < 50; i++) {
        tk_key *k = NULL;
        assert_int_equal(tk_key_from_jwk(jwk, strlen(jwk), i % 2 ? TK_ALG_PS256 : TK_ALG_UNSET, &k), TK_OK);
        tk_key_free(k);
    }
    BN_free(sq);
    BN_free(cube);
    BN_free(with_small);
    BN_free(even);
    BN_CTX_free(ctx);
    rsa_parts_free(v);
}

/*
 * Rule 23. Attack: with e = 1 an RSA "signature" is s^1 mod n = s, so the
 * PKCS#1 encoding of any message is a valid signature and anyone forges
 * tokens without the private key; an even e has no private exponent at all,
 * and an e past 2^64 is one OpenSSL refuses to verify with for large n.
 * Every public-key form is refused with TK_ERR_KEY_EXPONENT; e = 3 and
 * 65537 still load (the valid cases), and so does the largest e allowed.
 */
static void test_rule23_rsa_public_exponent(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *e_hex; /* NULL: e = n + n_plus */
        unsigned n_plus;
        tk_result want;
    } rows[] = {
        {"e=1", "01", 0, TK_ERR_KEY_EXPONENT},
        {"e=0", "00", 0, TK_ERR_KEY_EXPONENT},
        {"e=2 (even)", "02", 0, TK_ERR_KEY_EXPONENT},
        {"e=65536 (even)", "010000", 0, TK_ERR_KEY_EXPONENT},
        {"e=2^64+1", "010000000000000001", 0, TK_ERR_KEY_EXPONENT},
        {"e=n", NULL, 0, TK_ERR_KEY_EXPONENT},
        {"e=n+2", NULL, 2, TK_ERR_KEY_EXPONENT},
        {"e=3", "03", 0, TK_OK},
        {"e=17", "11", 0, TK_OK},
        {"e=65537", "010001", 0, TK_OK},
        {"e=2^64-1 (the largest allowed)", "FFFFFFFFFFFFFFFF", 0, TK_OK},
    };
    BIGNUM *v[RSA_PARTS];
    rsa_parts(g_rsa_pk, v);
    BIGNUM *pub[RSA_PARTS] = {v[RSA_N], NULL};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        BIGNUM *e = NULL;
        if (rows[i].e_hex) {
            assert_true(BN_hex2bn(&e, rows[i].e_hex) > 0);
        } else {
            e = BN_dup(v[RSA_N]);
            assert_non_null(e);
            assert_int_equal(BN_add_word(e, rows[i].n_plus), 1);
        }
        pub[RSA_E] = e;
        expect_rsa_everywhere(pub, rows[i].want, rows[i].what);
        BN_free(e);
    }
    /* e absent or empty in a JWK: malformed. */
    json_t *o = rsa_public_jwk(g_rsa_pk);
    json_object_del(o, "e");
    expect_jwk(o, TK_ALG_RS256, TK_ERR_KEY, "e absent");
    json_object_set_new(o, "e", json_string(""));
    expect_jwk(o, TK_ALG_RS256, TK_ERR_KEY, "e empty");
    json_object_set_new(o, "e", json_integer(65537));
    expect_jwk(o, TK_ALG_RS256, TK_ERR_KEY, "e a number");
    json_decref(o);
    /* Private keys are held to the same rule, whatever their d says: the
     * exponent is checked first and named. */
    static const char *const bad_e[] = {"01", "02"};
    for (size_t i = 0; i < 2; i++) {
        BIGNUM *e = NULL;
        assert_true(BN_hex2bn(&e, bad_e[i]) > 0);
        BIGNUM *priv[RSA_PARTS];
        memcpy(priv, v, sizeof priv);
        priv[RSA_E] = e;
        expect_rsa_everywhere(priv, TK_ERR_KEY_EXPONENT, bad_e[i][1] == '1' ? "private, e=1" : "private, e=2");
        BN_free(e);
    }
    rsa_parts_free(v);

    /* A real key pair with e = 3 signs tokens that verify. */
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    BIGNUM *three = BN_new();
    EVP_PKEY *pk3 = NULL;
    assert_non_null(c);
    assert_non_null(three);
    assert_int_equal(BN_set_word(three, 3), 1);
    assert_int_equal(EVP_PKEY_keygen_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(c, three), 1);
    assert_int_equal(EVP_PKEY_generate(c, &pk3), 1);
    rsa_parts(pk3, v);
    expect_rsa_everywhere(v, TK_OK, "key pair with e=3");
    char *pem = pem_of(pk3, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
    tk_key *k = NULL;
    assert_int_equal(from_pem(pem, TK_ALG_RS256, &k), TK_OK);
    tk_key *pub3 = tu_public_copy(k);
    tk_keyset *ks = tu_keyset(pub3, (tk_key *)NULL);
    char *tok = tu_sign(k, "{\"alg\":\"RS256\",\"kid\":\"pem\"}", "{\"exp\":1700003600}");
    tk_verdict vd = tu_verify_at(tok, strlen(tok), ks, 1700000000);
    tu_expect_reason(&vd, TK_REASON_VALID, "e=3 key");
    free(tok);
    tk_keyset_free(ks);
    tk_key_free(k);
    free(pem);
    rsa_parts_free(v);
    EVP_PKEY_free(pk3);
    BN_free(three);
    EVP_PKEY_CTX_free(c);
}

/*
 * Rule 23, the reproduced attack end to end. A token "signed" for an e = 1
 * key: its signature is just the EMSA-PKCS1-v1_5 encoding of the signing
 * input (RFC 8017 §9.2), made without any private key. OpenSSL's primitive
 * accepts it, which is why the key must be refused when it is loaded; the
 * token then never verifies, from a JWK, a JWKS or a PEM, and against the
 * genuine key with the same n it is bad_signature.
 */
static void test_rule23_token_forged_for_e1_key_is_never_valid(void **state)
{
    (void)state;
    static const unsigned char sha256_digest_info[19] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                         0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    const char *h = "{\"alg\":\"RS256\",\"kid\":\"e1\"}";
    const char *p = "{\"exp\":1700003600,\"sub\":\"admin\",\"scope\":\"everything\"}";
    char *hb = tu_b64(h, strlen(h));
    char *pb = tu_b64(p, strlen(p));
    char si[256];
    snprintf(si, sizeof si, "%s.%s", hb, pb);
    unsigned char em[256]; /* the modulus size of an RSA-2048 key */
    unsigned char *dg = em + sizeof em - 32;
    em[0] = 0x00;
    em[1] = 0x01;
    memset(em + 2, 0xff, sizeof em - 3 - 19 - 32);
    em[sizeof em - 52] = 0x00;
    memcpy(em + sizeof em - 51, sha256_digest_info, 19);
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(si, strlen(si), dg, &dl, EVP_sha256(), NULL), 1);
    char *sb = tu_b64(em, sizeof em);
    char tok[1024];
    snprintf(tok, sizeof tok, "%s.%s", si, sb);

    /* The forgery is real: OpenSSL verifies it with (n, e = 1). */
    BIGNUM *v[RSA_PARTS];
    rsa_parts(g_rsa_pk, v);
    BIGNUM *one = BN_new();
    assert_int_equal(BN_set_word(one, 1), 1);
    BIGNUM *pub[RSA_PARTS] = {v[RSA_N], one};
    EVP_PKEY *e1 = rsa_from_parts(pub);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, e1, NULL);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_verify_init(c), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING), 1);
    assert_int_equal(EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_verify(c, em, sizeof em, dg, 32), 1);
    EVP_PKEY_CTX_free(c);

    /* tokend refuses the key in every form, so nothing can verify with it. */
    json_t *o = rsa_jwk_from_parts(pub);
    json_object_set_new(o, "alg", json_string("RS256"));
    json_object_set_new(o, "kid", json_string("e1"));
    expect_jwk(o, TK_ALG_UNSET, TK_ERR_KEY_EXPONENT, "e=1 JWK");
    json_t *members[1] = {o};
    char *doc = jwks_of(members, 1);
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, NULL), TK_ERR_KEY_EXPONENT);
    assert_null(ks);
    char *spki = pem_of(e1, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    tk_key *k = NULL;
    assert_int_equal(from_pem(spki, TK_ALG_RS256, &k), TK_ERR_KEY_EXPONENT);
    assert_null(k);

    /* Against the genuine key (same n, e = 65537, same kid): not valid. */
    json_t *genuine = rsa_public_jwk(g_rsa_pk);
    json_object_set_new(genuine, "alg", json_string("RS256"));
    json_object_set_new(genuine, "kid", json_string("e1"));
    assert_int_equal(from_json(genuine, TK_ALG_UNSET, &k), TK_OK);
    ks = tu_keyset(k, (tk_key *)NULL);
    tk_verdict vd = tu_verify_at(tok, strlen(tok), ks, 1700000000);
    tu_expect_reason(&vd, TK_REASON_BAD_SIGNATURE, "token forged for e=1, genuine key");
    tk_keyset_free(ks);

    json_decref(genuine);
    free(spki);
    free(doc);
    json_decref(o);
    EVP_PKEY_free(e1);
    BN_free(one);
    rsa_parts_free(v);
    free(sb);
    free(hb);
    free(pb);
}

/* DER of a PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2) with the CRT members
 * zero, as some tools write a key that has only d; PEM-armoured. Owned. */
static char *pkcs1_private_pem_d_only(const BIGNUM *n, const BIGNUM *e, const BIGNUM *d)
{
    unsigned char body[2048];
    size_t w = 0;
    const BIGNUM *ints[9] = {NULL, n, e, d, NULL, NULL, NULL, NULL, NULL};
    for (size_t i = 0; i < 9; i++) {
        unsigned char v[600];
        size_t vl = 1;
        v[0] = 0;
        if (ints[i] && !BN_is_zero(ints[i])) {
            vl = (size_t)BN_num_bytes(ints[i]);
            v[0] = 0;
            assert_true(BN_bn2bin(ints[i], v + 1) == (int)vl);
            vl++; /* a leading zero keeps it positive */
        }
        body[w++] = 0x02;
        if (vl < 128) {
            body[w++] = (unsigned char)vl;
        } else {
            body[w++] = 0x82;
            body[w++] = (unsigned char)(vl >> 8);
            body[w++] = (unsigned char)vl;
        }
        memcpy(body + w, v, vl);
        w += vl;
    }
    unsigned char der[2100];
    size_t dw = 0;
    der[dw++] = 0x30;
    der[dw++] = 0x82;
    der[dw++] = (unsigned char)(w >> 8);
    der[dw++] = (unsigned char)w;
    memcpy(der + dw, body, w);
    dw += w;
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_true(PEM_write_bio(b, "RSA PRIVATE KEY", "", der, (long)dw) > 0);
    char *s = bio_to_string(b);
    BIO_free(b);
    return s;
}

/* Signs with k and verifies with the public part of `pub_of`. */
static void expect_signs_verifiably(const tk_key *k, EVP_PKEY *pub_of, const char *what)
{
    json_t *o = rsa_public_jwk(pub_of);
    tk_key *pub = NULL;
    assert_int_equal(from_json(o, tk_key_alg(k), &pub), TK_OK);
    unsigned char *sig = NULL;
    size_t sl = 0;
    assert_int_equal(tk_key_sign(k, (const unsigned char *)"m", 1, &sig, &sl), TK_OK);
    int valid = 0;
    assert_int_equal(tk_key_verify(pub, (const unsigned char *)"m", 1, sig, sl, &valid), TK_OK);
    if (!valid) {
        fail_msg("%s: the key's signature does not verify with its public key", what);
    }
    tk_free(sig);
    tk_key_free(pub);
    json_decref(o);
}

/*
 * Rule 23. Attack (of the availability kind): a private RSA key whose d does
 * not belong to n and e loads, signs, and every token it signs fails
 * verification everywhere; worse, nothing says why. Refused with
 * TK_ERR_KEY_MISMATCH from a JWK (with and without p, q, dp, dq, qi) and
 * from PEM. A JWK with d alone gets its factors recovered (which proves d);
 * d + lambda(n) is the same private key and is accepted.
 */
static void test_rule23_rsa_private_part_must_match(void **state)
{
    (void)state;
    BIGNUM *v[RSA_PARTS];
    BIGNUM *w[RSA_PARTS];
    rsa_parts(g_rsa_pk, v);
    rsa_parts(g_rsa2_pk, w);
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *lambda = BN_new();
    BIGNUM *pm1 = BN_new();
    BIGNUM *qm1 = BN_new();
    BIGNUM *g = BN_new();
    BIGNUM *d_plus_lambda = BN_new();
    BIGNUM *d_plus_2 = BN_dup(v[RSA_D]);
    BIGNUM *d_one = BN_new();
    assert_true(ctx && lambda && pm1 && qm1 && g && d_plus_lambda && d_plus_2 && d_one);
    assert_int_equal(BN_sub(pm1, v[RSA_P], BN_value_one()), 1);
    assert_int_equal(BN_sub(qm1, v[RSA_Q], BN_value_one()), 1);
    assert_int_equal(BN_gcd(g, pm1, qm1, ctx), 1);
    assert_int_equal(BN_mul(lambda, pm1, qm1, ctx), 1);
    assert_int_equal(BN_div(lambda, NULL, lambda, g, ctx), 1);
    assert_int_equal(BN_add(d_plus_lambda, v[RSA_D], lambda), 1);
    assert_int_equal(BN_add_word(d_plus_2, 2), 1);
    assert_int_equal(BN_set_word(d_one, 1), 1);

    struct row {
        const char *what;
        BIGNUM *d; /* the d to use */
        int crt;   /* 0: none, 1: this key's, 2: the other key's */
        tk_result want;
    } rows[] = {
        {"genuine, with p, q, dp, dq, qi", v[RSA_D], 1, TK_OK},
        {"genuine, d alone", v[RSA_D], 0, TK_OK},
        {"d + lambda(n), d alone (the same key)", d_plus_lambda, 0, TK_OK},
        {"d + lambda(n), with p, q, dp, dq, qi", d_plus_lambda, 1, TK_OK},
        {"d of another key, d alone", w[RSA_D], 0, TK_ERR_KEY_MISMATCH},
        {"d of another key, with this key's p, q, dp, dq, qi", w[RSA_D], 1, TK_ERR_KEY_MISMATCH},
        {"genuine d, with another key's p, q, dp, dq, qi", v[RSA_D], 2, TK_ERR_KEY_MISMATCH},
        {"d + 2, d alone", d_plus_2, 0, TK_ERR_KEY_MISMATCH},
        {"d + 2, with p, q, dp, dq, qi", d_plus_2, 1, TK_ERR_KEY_MISMATCH},
        {"d = 1, d alone", d_one, 0, TK_ERR_KEY_MISMATCH},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        BIGNUM *parts[RSA_PARTS] = {v[RSA_N], v[RSA_E], rows[i].d, NULL};
        for (size_t j = RSA_P; j < RSA_PARTS && rows[i].crt; j++) {
            parts[j] = rows[i].crt == 1 ? v[j] : w[j];
        }
        if (rows[i].crt) {
            expect_rsa_everywhere(parts, rows[i].want, rows[i].what);
        } else {
            /* OpenSSL cannot write PEM without the CRT members: JWK only
             * (the PEM form with zeros follows below). */
            json_t *o = rsa_jwk_from_parts(parts);
            expect_jwk(o, TK_ALG_RS256, rows[i].want, rows[i].what);
            json_decref(o);
        }
        if (rows[i].want == TK_OK) {
            json_t *o = rsa_jwk_from_parts(parts);
            tk_key *k = NULL;
            assert_int_equal(from_json(o, TK_ALG_RS256, &k), TK_OK);
            expect_signs_verifiably(k, g_rsa_pk, rows[i].what);
            /* A key given with d alone is kept with its factors. */
            json_t *back = jwk_obj(k, 1);
            for (size_t j = RSA_P; j <= RSA_Q; j++) {
                const char *got = json_string_value(json_object_get(back, RSA_JWK_NAMES[j]));
                assert_non_null(got);
            }
            size_t pl = 0;
            size_t ql = 0;
            unsigned char *p = get_b64(back, "p", &pl);
            unsigned char *q = get_b64(back, "q", &ql);
            BIGNUM *bp = BN_bin2bn(p, (int)pl, NULL);
            BIGNUM *bq = BN_bin2bn(q, (int)ql, NULL);
            assert_true((BN_cmp(bp, v[RSA_P]) == 0 && BN_cmp(bq, v[RSA_Q]) == 0) ||
                        (BN_cmp(bp, v[RSA_Q]) == 0 && BN_cmp(bq, v[RSA_P]) == 0));
            BN_free(bp);
            BN_free(bq);
            free(p);
            free(q);
            json_decref(back);
            tk_key_free(k);
            json_decref(o);
        }
    }

    /* PEM with d and zeros for the CRT members: recovered when d is right,
     * refused when it is not. */
    char *pem = pkcs1_private_pem_d_only(v[RSA_N], v[RSA_E], v[RSA_D]);
    tk_key *k = NULL;
    tk_result rc = from_pem(pem, TK_ALG_RS256, &k);
    if (rc != TK_OK) {
        fail_msg("PKCS#1 PEM with d alone: %s", tk_result_str(rc));
    }
    expect_signs_verifiably(k, g_rsa_pk, "PKCS#1 PEM with d alone");
    tk_key_free(k);
    free(pem);
    pem = pkcs1_private_pem_d_only(v[RSA_N], v[RSA_E], w[RSA_D]);
    k = NULL;
    assert_int_equal(from_pem(pem, TK_ALG_RS256, &k), TK_ERR_KEY_MISMATCH);
    assert_null(k);
    free(pem);

    /* Multi-prime keys ("oth", RFC 7518 §6.3.2.7) are not supported. */
    json_t *o = rsa_jwk_from_parts(v);
    json_object_set_new(o, "oth", json_array());
    expect_jwk(o, TK_ALG_RS256, TK_ERR_UNSUPPORTED, "oth");
    json_decref(o);

    BN_free(d_one);
    BN_free(d_plus_2);
    BN_free(d_plus_lambda);
    BN_free(g);
    BN_free(qm1);
    BN_free(pm1);
    BN_free(lambda);
    BN_CTX_free(ctx);
    rsa_parts_free(w);
    rsa_parts_free(v);
}

/* An EC key pair made of the public point of `pub` and the d of `priv`. */
static EVP_PKEY *ec_mixed(EVP_PKEY *pub, EVP_PKEY *priv)
{
    char group[64];
    size_t gl = 0;
    unsigned char point[1 + 2 * 66];
    size_t pl = 0;
    BIGNUM *d = NULL;
    assert_int_equal(EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl), 1);
    assert_int_equal(EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &pl), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(priv, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, pl), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d), 1);
    OSSL_PARAM *ps = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;
    assert_non_null(ps);
    assert_non_null(c);
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &pk, EVP_PKEY_KEYPAIR, ps), 1);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(ps);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return pk;
}

/*
 * Rule 23 for EC and Ed25519. Attack: a private key whose d does not
 * belong to its public point signs tokens that the published key never
 * verifies. The JWK paths compared d with x, y (and x) before; a PEM private
 * key (SEC1 or PKCS#8, which carry the public point next to d) was not
 * checked at all. Both are TK_ERR_KEY_MISMATCH now; genuine keys load.
 */
static void test_rule23_ec_and_ed25519_private_part_must_match(void **state)
{
    (void)state;
    static const char *const curves[] = {"P-256", "P-384", "P-521"};
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        EVP_PKEY *b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        assert_non_null(a);
        assert_non_null(b);
        EVP_PKEY *mixed = ec_mixed(a, b);
        EVP_PKEY *same = ec_mixed(a, a);
        static const char *const structures[2] = {"PrivateKeyInfo", "type-specific"};
        for (size_t s = 0; s < 2; s++) {
            char *bad = pem_of(mixed, EVP_PKEY_KEYPAIR, structures[s]);
            char *good = pem_of(same, EVP_PKEY_KEYPAIR, structures[s]);
            tk_key *k = NULL;
            tk_result rc = from_pem(bad, TK_ALG_UNSET, &k);
            if (rc != TK_ERR_KEY_MISMATCH) {
                fail_msg("%s PEM %s with d of another key: %s", curves[i], structures[s], tk_result_str(rc));
            }
            assert_null(k);
            assert_int_equal(from_pem(good, TK_ALG_UNSET, &k), TK_OK);
            assert_int_equal(tk_key_can_sign(k), 1);
            tk_key_free(k);
            free(bad);
            free(good);
        }
        EVP_PKEY_free(mixed);
        EVP_PKEY_free(same);
        EVP_PKEY_free(a);
        EVP_PKEY_free(b);
    }
    /* JWK: d of another key, for EC and Ed25519; the genuine ones load. */
    static const tk_alg algs[] = {TK_ALG_ES256, TK_ALG_ES384, TK_ALG_ES512, TK_ALG_EDDSA};
    for (size_t i = 0; i < 4; i++) {
        tk_key *k = make_key(algs[i], "k");
        tk_key *other = make_key(algs[i], "k");
        json_t *mine = jwk_obj(k, 1);
        json_t *theirs = jwk_obj(other, 1);
        expect_jwk(mine, TK_ALG_UNSET, TK_OK, "genuine private JWK");
        json_object_set(mine, "d", json_object_get(theirs, "d"));
        expect_jwk(mine, TK_ALG_UNSET, TK_ERR_KEY_MISMATCH, tk_alg_name(algs[i]));
        /* In a JWKS the whole set is refused with the same result. */
        json_t *members[2] = {theirs, mine};
        json_object_set_new(mine, "kid", json_string("mine"));
        char *doc = jwks_of(members, 2);
        tk_keyset *ks = NULL;
        assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, NULL), TK_ERR_KEY_MISMATCH);
        assert_null(ks);
        free(doc);
        json_decref(mine);
        json_decref(theirs);
        tk_key_free(other);
        tk_key_free(k);
    }
}

/* ---- key sets ---------------------------------------------------------------------- */

static void test_jwks_skips_foreign_keys(void **state)
{
    (void)state;
    tk_key *ec = make_key(TK_ALG_ES256, "a");
    json_t *good = jwk_obj(ec, 0);
    json_t *enc = rsa_public_jwk(g_rsa_pk);
    json_object_set_new(enc, "use", json_string("enc"));
    json_object_set_new(enc, "kid", json_string("b"));
    json_t *unknown = json_loads("{\"kty\":\"XYZ\",\"kid\":\"c\"}", 0, NULL);
    json_t *oaep = rsa_public_jwk(g_rsa_pk);
    json_object_set_new(oaep, "alg", json_string("RSA-OAEP-256"));
    json_object_set_new(oaep, "kid", json_string("d"));
    json_t *k1 = json_deep_copy(good);
    json_object_set_new(k1, "crv", json_string("secp256k1"));
    json_object_set_new(k1, "kid", json_string("e"));
    json_object_del(k1, "alg");
    json_t *x25519 = json_loads(
        "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", 0, NULL);
    json_t *all[] = {good, enc, unknown, oaep, k1, x25519};
    char *doc = jwks_of(all, 6);
    tk_keyset *ks = NULL;
    size_t skipped = 99;
    /* Under ASan, LeakSanitizer also checks that skipping a member frees
     * everything it allocated (a JWKS comes from the network). */
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, &skipped), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 1);
    assert_int_equal(skipped, 5);
    assert_non_null(tk_keyset_find(ks, "a", 1));
    assert_null(tk_keyset_find(ks, "b", 1));
    /* The key set verifies the sig key's tokens. */
    char *tok = tu_sign(ec, "{\"alg\":\"ES256\",\"kid\":\"a\"}", "{\"exp\":1700003600}");
    tk_verdict v = tu_verify_at(tok, strlen(tok), ks, 1700000000);
    tu_expect_reason(&v, TK_REASON_VALID, "key from JWKS");
    free(tok);
    tk_keyset_free(ks);
    free(doc);
    /* skipped may be NULL. */
    doc = jwks_of(all, 6);
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, NULL), TK_OK);
    tk_keyset_free(ks);
    free(doc);

    /* A broken signature key is an error, not a skip (fail closed). */
    json_t *broken = json_deep_copy(good);
    json_object_set_new(broken, "x", json_string("AAAA"));
    json_t *with_broken[] = {good, broken};
    doc = jwks_of(with_broken, 2);
    ks = (tk_keyset *)NULL;
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, &skipped), TK_ERR_KEY);
    assert_null(ks);
    free(doc);
    json_decref(broken);

    /* A duplicate kid. */
    json_t *dup[] = {good, good};
    doc = jwks_of(dup, 2);
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, &skipped), TK_ERR_ARG);
    assert_null(ks);
    free(doc);

    /* The alg argument binds members that have no alg of their own. */
    json_t *rsa_noalg = rsa_public_jwk(g_rsa_pk);
    json_object_set_new(rsa_noalg, "kid", json_string("r"));
    json_t *mixed[] = {good, rsa_noalg};
    doc = jwks_of(mixed, 2);
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_PS256, &ks, &skipped), TK_OK);
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "r", 1)), TK_ALG_PS256);
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "a", 1)), TK_ALG_ES256);
    tk_keyset_free(ks);
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, &skipped), TK_OK);
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "r", 1)), TK_ALG_UNSET);
    tk_keyset_free(ks);
    free(doc);
    json_decref(rsa_noalg);

    /* Documents that are not JWKS. */
    static const char *const bad_docs[] = {"not json",        "[]", "{}", "{\"keys\":{}}", "{\"keys\":[1]}",
                                           "{\"keys\":\"x\"}"};
    for (size_t i = 0; i < sizeof bad_docs / sizeof bad_docs[0]; i++) {
        tk_result rc = tk_keyset_from_jwks(bad_docs[i], strlen(bad_docs[i]), TK_ALG_UNSET, &ks, &skipped);
        if (rc != TK_ERR_JSON) {
            fail_msg("%s: %s", bad_docs[i], tk_result_str(rc));
        }
        assert_null(ks);
    }
    assert_int_equal(tk_keyset_from_jwks("{\"keys\":[]}", 11, TK_ALG_UNSET, &ks, &skipped), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 0);
    tk_keyset_free(ks);
    for (size_t i = 0; i < 6; i++) {
        json_decref(all[i]);
    }
    tk_key_free(ec);
}

static void test_jwks_key_count_limit(void **state)
{
    (void)state;
    tk_key *ec = make_key(TK_ALG_ES256, NULL);
    json_t *pub = jwk_obj(ec, 0);
    json_t *many[TK_LIMIT_KEYSET_KEYS + 1];
    for (size_t i = 0; i < TK_LIMIT_KEYSET_KEYS + 1; i++) {
        many[i] = pub;
    }
    char *doc = jwks_of(many, TK_LIMIT_KEYSET_KEYS);
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, NULL), TK_OK);
    assert_int_equal(tk_keyset_count(ks), TK_LIMIT_KEYSET_KEYS);
    /* Adding one more by hand: the limit. */
    tk_key *extra = make_key(TK_ALG_ES256, NULL);
    assert_int_equal(tk_keyset_add(ks, extra), TK_ERR_LIMIT);
    tk_key_free(extra);
    tk_keyset_free(ks);
    free(doc);
    doc = jwks_of(many, TK_LIMIT_KEYSET_KEYS + 1);
    ks = NULL;
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, NULL), TK_ERR_LIMIT);
    assert_null(ks);
    free(doc);
    json_decref(pub);
    tk_key_free(ec);
}

static void test_keyset_add_and_find(void **state)
{
    (void)state;
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 0);
    tk_key *a = tu_hs256("a", 1);
    tk_key *a2 = tu_hs256("a", 2);
    tk_key *n1 = tu_hs256(NULL, 3);
    tk_key *n2 = tu_hs256(NULL, 4);
    assert_int_equal(tk_keyset_add(ks, a), TK_OK);
    /* Duplicate kid: refused, not taken. */
    assert_int_equal(tk_keyset_add(ks, a2), TK_ERR_ARG);
    tk_key_free(a2);
    /* The same key twice. */
    assert_int_equal(tk_keyset_add(ks, a), TK_ERR_ARG);
    /* Several keys without kid are fine. */
    assert_int_equal(tk_keyset_add(ks, n1), TK_OK);
    assert_int_equal(tk_keyset_add(ks, n2), TK_OK);
    assert_int_equal(tk_keyset_add(ks, NULL), TK_ERR_ARG);
    assert_int_equal(tk_keyset_add(NULL, a), TK_ERR_ARG);
    assert_int_equal(tk_keyset_count(ks), 3);
    assert_ptr_equal(tk_keyset_get(ks, 0), a);
    assert_null(tk_keyset_get(ks, 3));
    /* find compares the given bytes exactly (no NUL needed). */
    assert_ptr_equal(tk_keyset_find(ks, "abc", 1), a);
    assert_null(tk_keyset_find(ks, "ab", 2));
    assert_null(tk_keyset_find(ks, "", 0));
    assert_null(tk_keyset_find(ks, NULL, 0));
    /* Retired kids. */
    assert_int_equal(tk_keyset_add_retired_kid(ks, "old"), TK_OK);
    assert_int_equal(tk_keyset_add_retired_kid(ks, ""), TK_ERR_ARG);
    assert_int_equal(tk_keyset_add_retired_kid(ks, NULL), TK_ERR_ARG);
    char kid[TK_LIMIT_KID_LEN + 2];
    memset(kid, 'k', sizeof kid);
    kid[TK_LIMIT_KID_LEN + 1] = '\0';
    assert_int_equal(tk_keyset_add_retired_kid(ks, kid), TK_ERR_ARG);
    assert_null(tk_keyset_find(ks, "old", 3));
    tk_keyset_free(ks);
    tk_keyset_free(NULL);
    tk_key_free(NULL);
}

static tk_keyset *keyset_of_n(size_t n, const char *prefix)
{
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    for (size_t i = 0; i < n; i++) {
        char kid[32];
        snprintf(kid, sizeof kid, "%s%zu", prefix, i);
        assert_int_equal(tk_keyset_add(ks, tu_hs256(kid, (unsigned char)i)), TK_OK);
    }
    return ks;
}

static void test_keyset_merge(void **state)
{
    (void)state;
    tk_keyset *dst = keyset_of_n(2, "d");
    tk_keyset *src = keyset_of_n(2, "s");
    assert_int_equal(tk_keyset_add_retired_kid(src, "gone"), TK_OK);
    assert_int_equal(tk_keyset_merge(dst, src), TK_OK);
    assert_int_equal(tk_keyset_count(dst), 4);
    assert_int_equal(tk_keyset_count(src), 0);
    assert_non_null(tk_keyset_find(dst, "s1", 2));
    /* The retired kid moved too. */
    tk_key *signer = tu_hs256("gone", 9);
    char *tok = tu_sign(signer, "{\"alg\":\"HS256\",\"kid\":\"gone\"}", "{\"exp\":1700003600}");
    tk_verdict v = tu_verify_at(tok, strlen(tok), dst, 1700000000);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "retired kid after merge");
    tu_expect_detail_has(&v, "rotated out", "retired kid after merge");
    free(tok);
    tk_key_free(signer);
    tk_keyset_free(src);

    /* A kid in both: nothing moves. */
    src = keyset_of_n(3, "s");
    tk_keyset *clash = keyset_of_n(1, "d");
    assert_int_equal(tk_keyset_merge(dst, clash), TK_ERR_ARG);
    assert_int_equal(tk_keyset_count(dst), 4);
    assert_int_equal(tk_keyset_count(clash), 1);
    tk_keyset_free(clash);
    /* "s0", "s1" clash, "s2" does not: still all or nothing. */
    assert_int_equal(tk_keyset_merge(dst, src), TK_ERR_ARG);
    assert_int_equal(tk_keyset_count(dst), 4);
    assert_int_equal(tk_keyset_count(src), 3);
    tk_keyset_free(src);

    /* Past the limit: nothing moves. */
    tk_keyset *big = keyset_of_n(TK_LIMIT_KEYSET_KEYS - 3, "b");
    assert_int_equal(tk_keyset_merge(dst, big), TK_ERR_LIMIT);
    assert_int_equal(tk_keyset_count(dst), 4);
    assert_int_equal(tk_keyset_count(big), TK_LIMIT_KEYSET_KEYS - 3);
    tk_keyset_free(big);
    big = keyset_of_n(TK_LIMIT_KEYSET_KEYS - 4, "b");
    assert_int_equal(tk_keyset_merge(dst, big), TK_OK);
    assert_int_equal(tk_keyset_count(dst), TK_LIMIT_KEYSET_KEYS);
    tk_keyset_free(big);

    assert_int_equal(tk_keyset_merge(dst, dst), TK_ERR_ARG);
    assert_int_equal(tk_keyset_merge(dst, NULL), TK_ERR_ARG);
    assert_int_equal(tk_keyset_merge(NULL, dst), TK_ERR_ARG);
    tk_keyset_free(dst);
}

static void test_export_rules(void **state)
{
    (void)state;
    tk_key *hs = tu_hs256("hs", 0);
    tk_key *es = make_key(TK_ALG_ES256, "es");
    tk_key *es_pub = NULL;
    json_t *pj = jwk_obj(es, 0);
    json_object_set_new(pj, "kid", json_string("es-pub"));
    assert_int_equal(from_json(pj, TK_ALG_UNSET, &es_pub), TK_OK);
    json_decref(pj);
    /* A public key has no private export; a secret no public one. */
    char *s = NULL;
    assert_int_equal(tk_key_to_jwk(es_pub, 1, &s), TK_ERR_STATE);
    assert_null(s);
    assert_int_equal(tk_key_to_jwk(hs, 0, &s), TK_ERR_STATE);
    assert_null(s);
    assert_int_equal(tk_key_to_jwk(NULL, 0, &s), TK_ERR_ARG);
    assert_int_equal(tk_key_to_jwk(hs, 1, NULL), TK_ERR_ARG);

    tk_keyset *ks = tu_keyset(hs, es, es_pub, (tk_key *)NULL);
    /* Public JWKS: no secrets, no private members, oct left out. */
    assert_int_equal(tk_keyset_to_jwks(ks, 0, &s), TK_OK);
    json_t *doc = json_loads(s, 0, NULL);
    assert_non_null(doc);
    json_t *keys = json_object_get(doc, "keys");
    assert_int_equal(json_array_size(keys), 2);
    for (size_t i = 0; i < json_array_size(keys); i++) {
        json_t *k = json_array_get(keys, i);
        assert_string_equal(json_string_value(json_object_get(k, "kty")), "EC");
        assert_null(json_object_get(k, "d"));
        assert_null(json_object_get(k, "k"));
    }
    json_decref(doc);
    tk_free(s);
    /* The public JWKS reads back into a key set of public keys. */
    assert_int_equal(tk_keyset_to_jwks(ks, 0, &s), TK_OK);
    tk_keyset *back = NULL;
    assert_int_equal(tk_keyset_from_jwks(s, strlen(s), TK_ALG_UNSET, &back, NULL), TK_OK);
    assert_int_equal(tk_keyset_count(back), 2);
    assert_int_equal(tk_key_can_sign(tk_keyset_find(back, "es", 2)), 0);
    tk_keyset_free(back);
    tk_free(s);
    /* Private JWKS: everything, private parts where there are any. */
    assert_int_equal(tk_keyset_to_jwks(ks, 1, &s), TK_OK);
    doc = json_loads(s, 0, NULL);
    keys = json_object_get(doc, "keys");
    assert_int_equal(json_array_size(keys), 3);
    assert_non_null(json_object_get(json_array_get(keys, 0), "k"));
    assert_non_null(json_object_get(json_array_get(keys, 1), "d"));
    assert_null(json_object_get(json_array_get(keys, 2), "d"));
    json_decref(doc);
    tk_free(s);
    tk_keyset_free(ks);
}

/* ---- why a key is refused (issue 12): one check, its numbers --------------- */

/* The public JWK of an RSA key of `bits` bits, with kid. Owned. */
static char *rsa_pub_jwk_bits(int bits, const char *kid)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    assert_non_null(pk);
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    unsigned char nb[512];
    unsigned char eb[16];
    int nl = BN_bn2bin(n, nb);
    int el = BN_bn2bin(e, eb);
    char *n64 = tu_b64(nb, (size_t)nl);
    char *e64 = tu_b64(eb, (size_t)el);
    char *s = malloc(1200);
    assert_non_null(s);
    snprintf(s, 1200, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", kid, n64, e64);
    free(n64);
    free(e64);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
    return s;
}

/* The public JWK of g_ec_pk with the members of `extra` (JSON members,
 * "" for none) set over its own. Owned. */
static char *ec_pub_jwk(const char *extra)
{
    tk_key *k = NULL;
    char *pem = pem_of(g_ec_pk, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    assert_int_equal(tk_key_from_pem(pem, strlen(pem), TK_ALG_UNSET, NULL, &k), TK_OK);
    free(pem);
    char *j = NULL;
    assert_int_equal(tk_key_to_jwk(k, 0, &j), TK_OK);
    tk_key_free(k);
    json_t *o = json_loads(j, 0, NULL);
    tk_free(j);
    char over[256];
    snprintf(over, sizeof over, "{%s}", extra);
    json_t *x = json_loads(over, 0, NULL);
    assert_non_null(o);
    assert_non_null(x);
    assert_int_equal(json_object_update(o, x), 0);
    const char *name;
    json_t *v;
    json_object_foreach (x, name, v) {
        if (json_is_null(v)) {
            json_object_del(o, name); /* null removes the member */
        }
    }
    json_decref(x);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void expect_jwk_why(const char *jwk, tk_result want, const char *why)
{
    tk_key *k = NULL;
    tk_key_error err;
    tk_result rc = tk_key_from_jwk_ex(jwk, strlen(jwk), TK_ALG_UNSET, &k, &err);
    if (rc != want || err.result != want || !strstr(err.why, why)) {
        fail_msg("%.120s: %s (%s); want %s (%s)", jwk, tk_result_str(rc), err.why, tk_result_str(want), why);
    }
    assert_null(k);
    assert_true(tu_printable(err.why, strlen(err.why)));
    /* the plain function refuses it the same way */
    assert_int_equal(tk_key_from_jwk(jwk, strlen(jwk), TK_ALG_UNSET, &k), want);
}

static void test_key_error_names_the_check(void **state)
{
    (void)state;
    char *rsa1024 = rsa_pub_jwk_bits(1024, "rsa1024");
    expect_jwk_why(rsa1024, TK_ERR_KEY, "RSA key has 1024 bits; at least 2048 are required");
    free(rsa1024);
    char *enc = ec_pub_jwk("\"use\":\"enc\"");
    expect_jwk_why(enc, TK_ERR_KEY, "an encryption key (use \"enc\"), not a signature key");
    free(enc);
    char *ops = ec_pub_jwk("\"key_ops\":[\"encrypt\"],\"use\":null");
    expect_jwk_why(ops, TK_ERR_KEY, "allow neither \"verify\" nor \"sign\"");
    free(ops);
    char *es384 = ec_pub_jwk("\"alg\":\"ES384\"");
    expect_jwk_why(es384, TK_ERR_KEY, "alg ES384 does not fit a P-256 key, which signs with ES256");
    free(es384);
    char *oaep = ec_pub_jwk("\"alg\":\"ECDH-ES\"");
    expect_jwk_why(oaep, TK_ERR_UNSUPPORTED, "alg \"ECDH-ES\" is not a JWS signature alg");
    free(oaep);
    /* 16 bytes where HS256 needs 32 */
    expect_jwk_why("{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZg\"}", TK_ERR_KEY,
                   "HMAC secret has 16 bytes; HS256 needs at least 32");
    expect_jwk_why("{\"kty\":\"oct\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZg\"}", TK_ERR_KEY,
                   "HMAC secret has 16 bytes; at least 32 are required");
    expect_jwk_why("{\"kty\":\"oct\",\"alg\":\"RS256\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}",
                   TK_ERR_KEY, "alg RS256 does not fit an oct key");
    /* a point off the curve: x and y of the right length, y wrong */
    expect_jwk_why("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                   "\"y\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                   TK_ERR_KEY, "the EC point (x, y) is not on the curve P-256");
    expect_jwk_why("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQ\",\"y\":\"AQ\"}", TK_ERR_KEY,
                   "member \"x\" has 1 bytes; P-256 needs exactly 32");
    expect_jwk_why("{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AQ\",\"y\":\"AQ\"}", TK_ERR_UNSUPPORTED,
                   "EC curve \"secp256k1\" is not supported (P-256, P-384, P-521)");
    expect_jwk_why("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AQ\"}", TK_ERR_UNSUPPORTED,
                   "X25519 and X448 are for encryption");
    expect_jwk_why("{\"kty\":\"RSA\",\"e\":\"AQAB\"}", TK_ERR_KEY, "member \"n\" is missing");
    expect_jwk_why("{\"kty\":\"RSA\",\"n\":\"a+b\",\"e\":\"AQAB\"}", TK_ERR_KEY,
                   "member \"n\" is not canonical base64url (bad at offset 1");
    expect_jwk_why("{\"kty\":\"XYZ\"}", TK_ERR_UNSUPPORTED, "kty \"XYZ\" is not supported");
    expect_jwk_why("{\"n\":\"AQAB\"}", TK_ERR_KEY, "it has no \"kty\"");
    expect_jwk_why("{\"keys\":[]}", TK_ERR_KEY, "this is a key set ({\"keys\": [...]}), not a single JWK");
    expect_jwk_why("<html>", TK_ERR_JSON, "this looks like an HTML or XML page");
    /* e = 3 is fine; e = 1 and even e are refused with their value */
    char *e1 = rsa_pub_jwk_bits(2048, "e1");
    char *p = strstr(e1, "\"e\":\"AQAB\"");
    assert_non_null(p);
    memcpy(p, "\"e\":\"AQ\"  ", 10);
    expect_jwk_why(e1, TK_ERR_KEY_EXPONENT,
                   "RSA exponent e is 1; it must be odd, greater than 1 and below 2^64 "
                   "(with e=1 anyone can forge a signature)");
    free(e1);
}

static void test_key_error_pem(void **state)
{
    (void)state;
    static const struct {
        const char *pem;
        const char *why;
    } rows[] = {
        {"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED "
         "PRIVATE KEY-----\n",
         "the PEM key is encrypted (it needs a passphrase)"},
        {"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA "
         "PRIVATE KEY-----\n",
         "the PEM key is encrypted"},
        {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "this PEM is a certificate, not a key"},
        {"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "or its base64 is damaged"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tk_key *k = NULL;
        tk_key_error err;
        assert_int_equal(tk_key_from_pem_ex(rows[i].pem, strlen(rows[i].pem), TK_ALG_UNSET, NULL, &k, &err),
                         TK_ERR_KEY);
        if (!strstr(err.why, rows[i].why)) {
            fail_msg("row %zu: %s; want %s", i, err.why, rows[i].why);
        }
        assert_int_equal(err.result, TK_ERR_KEY);
    }
    /* an RSA-1024 SPKI PEM: the bits */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(small);
    char *pem = pem_of(small, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
    tk_key *k = NULL;
    tk_key_error err;
    assert_int_equal(tk_key_from_pem_ex(pem, strlen(pem), TK_ALG_UNSET, NULL, &k, &err), TK_ERR_KEY);
    assert_string_equal(err.why, "RSA key has 1024 bits; at least 2048 are required");
    free(pem);
    EVP_PKEY_free(small);
    /* the good key: TK_OK and an empty why */
    assert_int_equal(tk_key_from_pem_ex(g_rsa_pkcs8, strlen(g_rsa_pkcs8), TK_ALG_RS256, "k", &k, &err), TK_OK);
    assert_string_equal(err.why, "");
    assert_int_equal(err.result, TK_OK);
    tk_key_free(k);
}

/* A key set given by its holder: unusable keys are skipped and named, the
 * rest is used (one bad key no longer refuses the set). */
static void test_jwks_ex_skips_and_names(void **state)
{
    (void)state;
    char *good = ec_pub_jwk("\"kid\":\"ec1\"");
    char *enc = ec_pub_jwk("\"kid\":\"e1\",\"use\":\"enc\"");
    char *weak = rsa_pub_jwk_bits(1024, "rsa1024");
    char doc[8192];
    snprintf(
        doc, sizeof doc,
        "{\"keys\":[%s,%s,%s,{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\"}]}",
        enc, weak, good);
    tk_keyset *ks = NULL;
    tk_jwks_skip skips[4];
    size_t n = 0;
    tk_key_error err;
    assert_int_equal(tk_keyset_from_jwks_ex(doc, strlen(doc), TK_ALG_HS256, &ks, skips, 4, &n, &err), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 2); /* ec1 and the HMAC secret (a file of yours may hold one) */
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "h", 1)), TK_ALG_HS256);
    assert_int_equal(n, 2);
    assert_int_equal(skips[0].index, 0);
    assert_string_equal(skips[0].kid, "e1");
    assert_string_equal(skips[0].why, "an encryption key (use \"enc\"), not a signature key");
    assert_int_equal(skips[1].index, 1);
    assert_string_equal(skips[1].kid, "rsa1024");
    assert_string_equal(skips[1].why, "RSA key has 1024 bits; at least 2048 are required");
    tk_keyset_free(ks);
    /* the strict reader still refuses the whole set (fail closed) */
    assert_int_equal(tk_keyset_from_jwks(doc, strlen(doc), TK_ALG_UNSET, &ks, NULL), TK_ERR_KEY);
    assert_null(ks);
    /* only an encryption key: TK_OK, an empty set, the skip says why */
    snprintf(doc, sizeof doc, "{\"keys\":[%s]}", enc);
    assert_int_equal(tk_keyset_from_jwks_ex(doc, strlen(doc), TK_ALG_UNSET, &ks, skips, 4, &n, &err), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 0);
    assert_int_equal(n, 1);
    tk_keyset_free(ks);
    /* documents that are not key sets say what they are */
    static const struct {
        const char *doc;
        const char *why;
    } not_sets[] = {
        {"{\"issuer\":\"https://a.example\",\"jwks_uri\":\"https://a.example/keys\"}",
         "this is OpenID/OAuth metadata, not a key set; its jwks_uri is https://a.example/keys"},
        {"{\"issuer\":\"https://a.example\",\"token_endpoint\":\"https://a.example/t\"}",
         "OpenID/OAuth metadata without a jwks_uri"},
        {"<!doctype html><html>", "not JSON: this looks like an HTML or XML page"},
        {"{\"kty\":\"oct\",\"k\":\"AA\"}", "this is a single JWK, not a key set"},
        {"{\"keys\":", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof not_sets / sizeof not_sets[0]; i++) {
        assert_int_equal(
            tk_keyset_from_jwks_ex(not_sets[i].doc, strlen(not_sets[i].doc), TK_ALG_UNSET, &ks, skips, 4, &n, &err),
            TK_ERR_JSON);
        assert_null(ks);
        if (!strstr(err.why, not_sets[i].why)) {
            fail_msg("%s: %s; want %s", not_sets[i].doc, err.why, not_sets[i].why);
        }
    }
    free(good);
    free(enc);
    free(weak);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwk_roundtrip_every_kty),
        cmocka_unit_test(test_rsa_private_jwk_without_crt),
        cmocka_unit_test(test_thumbprint_rfc7638),
        cmocka_unit_test(test_rule7_rsa_1024_refused),
        cmocka_unit_test(test_rule7_hmac_secret_lengths),
        cmocka_unit_test(test_ec_points_and_coordinates),
        cmocka_unit_test(test_okp),
        cmocka_unit_test(test_use_and_key_ops),
        cmocka_unit_test(test_rule1_alg_member_must_fit_key),
        cmocka_unit_test(test_jwk_malformed),
        cmocka_unit_test(test_kid_rules),
        cmocka_unit_test(test_generate_and_alg_fits),
        cmocka_unit_test(test_hmac_matches_openssl),
        cmocka_unit_test(test_pem_formats),
        cmocka_unit_test(test_pem_refused),
        cmocka_unit_test(test_rule23_result_strings),
        cmocka_unit_test(test_rule23_rsa_public_exponent),
        cmocka_unit_test(test_rule23_rsa_modulus),
        cmocka_unit_test(test_rule23_token_forged_for_e1_key_is_never_valid),
        cmocka_unit_test(test_rule23_rsa_private_part_must_match),
        cmocka_unit_test(test_rule23_ec_and_ed25519_private_part_must_match),
        cmocka_unit_test(test_jwks_skips_foreign_keys),
        cmocka_unit_test(test_jwks_key_count_limit),
        cmocka_unit_test(test_keyset_add_and_find),
        cmocka_unit_test(test_keyset_merge),
        cmocka_unit_test(test_export_rules),
        cmocka_unit_test(test_key_error_names_the_check),
        cmocka_unit_test(test_key_error_pem),
        cmocka_unit_test(test_jwks_ex_skips_and_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
