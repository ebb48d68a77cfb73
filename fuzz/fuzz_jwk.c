/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jwk.c — key import (src/core/jwk.c, crypto.c): tk_key_from_jwk,
 * tk_keyset_from_jwks and tk_key_from_pem, each on the whole input.
 *
 * For every key that imports, whichever way:
 *  - it has a kty, an RFC 7638 thumbprint of 43 characters, and its alg (if
 *    bound) fits its type;
 *  - its public JWK (not for oct: a secret has no public part) re-imports
 *    as a key that cannot sign, with the same thumbprint, alg and kid;
 *  - when it has a private part: its private JWK re-imports with the same
 *    thumbprint, alg and kid; a fixed message signed with it verifies with
 *    the public part from the same import, and the same message with one bit
 *    changed does not; a token signed with tk_sign verifies (tk_verify,
 *    VALID) against a key set holding only that public part.
 * An RSA or oct key without an alg is bound first, to an alg of its family
 * chosen from the input's length. A failure of the signing round trip on an
 * imported private key means the import accepted a private part that does
 * not belong to its public part: a real finding (see fuzz/README.md).
 * tk_keyset_to_jwks of an imported set re-imports with the same count.
 */
#include "fuzz.h"

static const unsigned char MSG[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJmdXp6In0";
static const char CLAIMS[] = "{\"sub\":\"fuzz\",\"exp\":1700000600}";

/* An alg of k's family, or TK_ALG_UNSET when k is bound already. */
static tk_alg pick_alg(const tk_key *k, size_t salt)
{
    static const tk_alg rsa[] = {TK_ALG_RS256, TK_ALG_RS384, TK_ALG_RS512, TK_ALG_PS256, TK_ALG_PS384, TK_ALG_PS512};
    static const tk_alg hs[] = {TK_ALG_HS256, TK_ALG_HS384, TK_ALG_HS512};
    if (tk_key_alg(k) != TK_ALG_UNSET) {
        return TK_ALG_UNSET;
    }
    if (strcmp(tk_key_kty(k), "RSA") == 0) {
        return rsa[salt % 6];
    }
    FUZZ_CHECK(strcmp(tk_key_kty(k), "oct") == 0, "unbound %s key", tk_key_kty(k));
    for (size_t i = 0; i < 3; i++) {
        tk_alg a = hs[(salt + i) % 3];
        if (tk_key_alg_fits(k, a)) {
            return a;
        }
    }
    FUZZ_CHECK(0, "an oct key fits no HS alg");
}

/* Re-imports the JWK text `jwk` and checks it is `k` again. Owned. */
static tk_key *reimport(const tk_key *k, const char *jwk, int priv, tk_alg alg)
{
    tk_key *r = NULL;
    tk_result rc = tk_key_from_jwk(jwk, strlen(jwk), alg, &r);
    FUZZ_CHECK(rc == TK_OK, "the %s JWK of a %s key does not re-import (%s): %s", priv ? "private" : "public",
               tk_key_kty(k), tk_result_str(rc), jwk);
    FUZZ_CHECK(tk_key_can_sign(r) == priv, "re-imported %s JWK: can_sign %d", priv ? "private" : "public",
               tk_key_can_sign(r));
    char a[64];
    char b[64];
    FUZZ_CHECK(tk_key_thumbprint(k, a, sizeof a) == TK_OK && tk_key_thumbprint(r, b, sizeof b) == TK_OK, "thumbprint");
    FUZZ_CHECK(strcmp(a, b) == 0, "thumbprint %s became %s through the %s JWK %s", a, b, priv ? "private" : "public",
               jwk);
    FUZZ_CHECK(tk_key_alg(r) == (alg != TK_ALG_UNSET ? alg : tk_key_alg(k)), "alg %s became %s",
               tk_alg_name(tk_key_alg(k)), tk_alg_name(tk_key_alg(r)));
    const char *ka = tk_key_kid(k);
    const char *kb = tk_key_kid(r);
    FUZZ_CHECK((ka == NULL && kb == NULL) || (ka != NULL && kb != NULL && strcmp(ka, kb) == 0), "kid changed");
    return r;
}

static void check_key(const tk_key *k, size_t salt)
{
    const char *kty = tk_key_kty(k);
    FUZZ_CHECK(kty != NULL, "a key without kty");
    int oct = strcmp(kty, "oct") == 0;
    char tp[64];
    FUZZ_CHECK(tk_key_thumbprint(k, tp, sizeof tp) == TK_OK && strlen(tp) == 43, "thumbprint");
    FUZZ_CHECK(tk_key_alg(k) == TK_ALG_UNSET || tk_key_alg_fits(k, tk_key_alg(k)), "alg %s on a %s key",
               tk_alg_name(tk_key_alg(k)), kty);
    tk_alg bind = pick_alg(k, salt);

    /* The public part, as a key of its own (oct: the key itself). */
    tk_key *pub = NULL;
    char *pub_jwk = NULL;
    tk_result rc = tk_key_to_jwk(k, 0, &pub_jwk);
    if (oct) {
        FUZZ_CHECK(rc == TK_ERR_STATE, "public JWK of a secret: %s", tk_result_str(rc));
    } else {
        FUZZ_CHECK(rc == TK_OK, "public JWK of a %s key: %s", kty, tk_result_str(rc));
        pub = reimport(k, pub_jwk, 0, bind);
    }
    if (!tk_key_can_sign(k)) {
        tk_free(pub_jwk);
        tk_key_free(pub);
        return;
    }
    char *priv_jwk = NULL;
    rc = tk_key_to_jwk(k, 1, &priv_jwk);
    FUZZ_CHECK(rc == TK_OK, "private JWK of a %s key: %s", kty, tk_result_str(rc));
    /* The signer: the key itself when bound, else a copy bound to `bind`. */
    const tk_key *signer = k;
    tk_key *bound = NULL;
    if (bind != TK_ALG_UNSET) {
        rc = tk_key_from_jwk(priv_jwk, strlen(priv_jwk), bind, &bound);
        FUZZ_CHECK(rc == TK_OK, "the private JWK of an unbound %s key does not import bound to %s (%s)", kty,
                   tk_alg_name(bind), tk_result_str(rc));
        signer = bound;
    }
    const tk_key *verifier = oct ? signer : pub;

    unsigned char *sig = NULL;
    size_t sig_len = 0;
    int valid = -1;
    rc = tk_key_sign(signer, MSG, sizeof MSG - 1, &sig, &sig_len);
    if (rc == TK_OK) {
        rc = tk_key_verify(verifier, MSG, sizeof MSG - 1, sig, sig_len, &valid);
    }
    FUZZ_CHECK(sig != NULL, "%s %s key that imported with a private part cannot sign: %s", kty,
               tk_alg_name(tk_key_alg(signer)), tk_result_str(rc));
    FUZZ_CHECK(rc == TK_OK && valid == 1,
               "%s %s key: a signature by the private part does not verify with the public part from the same "
               "import (%s, valid %d): the private part does not belong to the public one. Public JWK: %s",
               kty, tk_alg_name(tk_key_alg(signer)), tk_result_str(rc), valid, pub_jwk ? pub_jwk : "(oct)");
    unsigned char bad[sizeof MSG - 1];
    memcpy(bad, MSG, sizeof bad);
    bad[salt % sizeof bad] ^= 1;
    valid = -1;
    rc = tk_key_verify(verifier, bad, sizeof bad, sig, sig_len, &valid);
    FUZZ_CHECK(rc == TK_OK && valid == 0, "%s key verified a changed message (%s, valid %d)", kty, tk_result_str(rc),
               valid);
    tk_free(sig);

    /* The private JWK re-imports as the same key. */
    tk_key *again = reimport(k, priv_jwk, 1, bind);
    tk_free(priv_jwk);

    /* And as a token, through tk_verify's key lookup and header cache, with
     * a key set holding only the public part (oct: the re-imported secret). */
    tk_key *in_set = oct ? again : pub;
    if (oct) {
        again = NULL;
    }
    pub = NULL;
    tk_keyset *ks = NULL;
    FUZZ_CHECK(tk_keyset_new(&ks) == TK_OK && tk_keyset_add(ks, in_set) == TK_OK, "keyset");
    char *tok = NULL;
    size_t tl = 0;
    rc = tk_sign(signer, "JWT", (const unsigned char *)CLAIMS, sizeof CLAIMS - 1, &tok, &tl);
    FUZZ_CHECK(rc == TK_OK, "tk_sign: %s", tk_result_str(rc));
    tk_policy pol;
    tk_policy_init(&pol, 1700000000);
    tk_verdict v;
    rc = tk_verify(tok, tl, ks, &pol, NULL, &v, NULL);
    FUZZ_CHECK(rc == TK_OK && v.reason == TK_REASON_VALID, "a token signed by the %s %s key does not verify: %s %s",
               kty, tk_alg_name(tk_key_alg(signer)), tk_reason_code(v.reason), v.detail);
    tk_free(tok);
    tk_keyset_free(ks);
    tk_key_free(again);
    tk_key_free(bound);
    tk_free(pub_jwk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = fuzz_dup(data, size);
    tk_key *k = NULL;
    if (tk_key_from_jwk(p, size, TK_ALG_UNSET, &k) == TK_OK) {
        check_key(k, size);
        tk_key_free(k);
    }
    tk_keyset *ks = NULL;
    size_t skipped = 0;
    if (tk_keyset_from_jwks(p, size, TK_ALG_UNSET, &ks, &skipped) == TK_OK) {
        size_t n = tk_keyset_count(ks);
        for (size_t i = 0; i < n; i++) {
            check_key(tk_keyset_get(ks, i), size + i);
        }
        char *out = NULL;
        FUZZ_CHECK(tk_keyset_to_jwks(ks, 1, &out) == TK_OK, "tk_keyset_to_jwks");
        tk_keyset *again = NULL;
        tk_result rc = tk_keyset_from_jwks(out, strlen(out), TK_ALG_UNSET, &again, NULL);
        FUZZ_CHECK(rc == TK_OK && tk_keyset_count(again) == n, "a key set of %zu keys re-imports as %s, %zu keys", n,
                   tk_result_str(rc), again ? tk_keyset_count(again) : 0);
        tk_keyset_free(again);
        tk_free(out);
        tk_keyset_free(ks);
    }
    if (tk_key_from_pem(p, size, TK_ALG_UNSET, "pem", &k) == TK_OK) {
        check_key(k, size);
        tk_key_free(k);
    }
    free(p);
    return 0;
}
