/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.c — keys and the JWS signature primitives (RFC 7518 §3, RFC 8037
 * §3.1). The only module that calls OpenSSL's signature and MAC APIs.
 *
 * Invariants:
 *  - A usable key is bound to exactly one alg (SECURITY.md rule 1); every
 *    sign or verify uses the key's alg, never a caller-supplied one.
 *  - Everything that can be prepared once is prepared when the key is bound:
 *    the digest is fetched, the HMAC context is keyed, and a verify context
 *    with padding, digest and PSS salt length pinned is built. Each call then
 *    duplicates the prepared context, so a key is safe to share read-only
 *    between threads.
 *  - Signature bytes are checked before OpenSSL sees them (rule 7): HMAC tags
 *    and ECDSA r||s by exact length, ECDSA r and s in [1, n-1], RSA by the
 *    modulus length. PSS verifies with salt length = hash length only.
 *  - Every key is validated once, when it is built, whatever its source
 *    (rule 23, tki_key_from_pkey): RSA at least 2048 bits, e odd, > 1 and
 *    < 2^64, n passing OpenSSL's public-key check; EC points on the curve;
 *    and a private part that belongs to the public part (RSA d and factors,
 *    EC d * G, Ed25519 d). A key that fails is never built, so no later code
 *    needs to ask.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/internal.h"

struct alg_row {
    const char *name;
    enum tki_kty kty;
    const char *md;   /* OpenSSL digest name; NULL for EdDSA */
    size_t sig_len;   /* fixed signature length, 0 for RSA */
    int curve_nid;    /* EC only */
    size_t coord_len; /* EC only */
    int pss;          /* RSA-PSS */
};

static const struct alg_row ALGS[TK_ALG_COUNT_] = {
    [TK_ALG_UNSET] = {NULL, 0, NULL, 0, 0, 0, 0},
    [TK_ALG_HS256] = {"HS256", TKI_KTY_OCT, "SHA256", 32, 0, 0, 0},
    [TK_ALG_HS384] = {"HS384", TKI_KTY_OCT, "SHA384", 48, 0, 0, 0},
    [TK_ALG_HS512] = {"HS512", TKI_KTY_OCT, "SHA512", 64, 0, 0, 0},
    [TK_ALG_RS256] = {"RS256", TKI_KTY_RSA, "SHA256", 0, 0, 0, 0},
    [TK_ALG_RS384] = {"RS384", TKI_KTY_RSA, "SHA384", 0, 0, 0, 0},
    [TK_ALG_RS512] = {"RS512", TKI_KTY_RSA, "SHA512", 0, 0, 0, 0},
    [TK_ALG_PS256] = {"PS256", TKI_KTY_RSA, "SHA256", 0, 0, 0, 1},
    [TK_ALG_PS384] = {"PS384", TKI_KTY_RSA, "SHA384", 0, 0, 0, 1},
    [TK_ALG_PS512] = {"PS512", TKI_KTY_RSA, "SHA512", 0, 0, 0, 1},
    [TK_ALG_ES256] = {"ES256", TKI_KTY_EC, "SHA256", 64, NID_X9_62_prime256v1, 32, 0},
    [TK_ALG_ES384] = {"ES384", TKI_KTY_EC, "SHA384", 96, NID_secp384r1, 48, 0},
    [TK_ALG_ES512] = {"ES512", TKI_KTY_EC, "SHA512", 132, NID_secp521r1, 66, 0},
    [TK_ALG_EDDSA] = {"EdDSA", TKI_KTY_OKP, NULL, 64, 0, 0, 0},
};

static const struct alg_row *alg_row(tk_alg a)
{
    if ((unsigned)a == 0 || (unsigned)a >= TK_ALG_COUNT_) {
        return NULL;
    }
    return &ALGS[a];
}

const char *tk_alg_name(tk_alg alg)
{
    const struct alg_row *r = alg_row(alg);
    return r ? r->name : NULL;
}

tk_alg tk_alg_from_name(const char *p, size_t len)
{
    if (!p) {
        return TK_ALG_UNSET;
    }
    for (unsigned i = 1; i < TK_ALG_COUNT_; i++) {
        if (strlen(ALGS[i].name) == len && memcmp(ALGS[i].name, p, len) == 0) {
            return (tk_alg)i;
        }
    }
    return TK_ALG_UNSET;
}

int tki_alg_is_hmac(tk_alg a)
{
    const struct alg_row *r = alg_row(a);
    return r && r->kty == TKI_KTY_OCT;
}

int tki_alg_is_rsa(tk_alg a)
{
    const struct alg_row *r = alg_row(a);
    return r && r->kty == TKI_KTY_RSA;
}

int tki_alg_is_ec(tk_alg a)
{
    const struct alg_row *r = alg_row(a);
    return r && r->kty == TKI_KTY_EC;
}

size_t tki_alg_sig_len(tk_alg a)
{
    const struct alg_row *r = alg_row(a);
    return r ? r->sig_len : 0;
}

void tk_free(void *p)
{
    free(p);
}

/* ---- key objects ---------------------------------------------------------- */

void tk_key_free(tk_key *k)
{
    if (!k) {
        return;
    }
    if (k->secret) {
        OPENSSL_cleanse(k->secret, k->secret_len);
        free(k->secret);
    }
    EVP_MD_CTX_free(k->hmac_in);
    EVP_MD_CTX_free(k->hmac_out);
    EVP_PKEY_CTX_free(k->vfy_tmpl);
    EVP_PKEY_free(k->pkey);
    for (size_t i = 0; i < 3; i++) {
        free(k->hdr_b64[i]);
    }
    EVP_MD_free(k->md);
    free(k->kid);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

tk_result tki_key_set_kid(tk_key *k, const char *kid)
{
    if (!kid) {
        return TK_OK;
    }
    size_t n = strlen(kid);
    if (n == 0 || n > TK_LIMIT_KID_LEN) {
        return TK_ERR_ARG;
    }
    char *c = malloc(n + 1);
    if (!c) {
        return TK_ERR_NOMEM;
    }
    memcpy(c, kid, n + 1);
    free(k->kid);
    k->kid = c;
    return TK_OK;
}

static tk_result key_headers(tk_key *k);

tk_result tk_key_set_kid(tk_key *k, const char *kid)
{
    if (!k) {
        return TK_ERR_ARG;
    }
    if (!kid) {
        free(k->kid);
        k->kid = NULL;
    } else {
        tk_result rc = tki_key_set_kid(k, kid);
        if (rc != TK_OK) {
            return rc;
        }
    }
    return key_headers(k);
}

int tk_key_alg_fits(const tk_key *k, tk_alg alg)
{
    const struct alg_row *r = alg_row(alg);
    if (!k || !r || r->kty != k->kty) {
        return 0;
    }
    switch (k->kty) {
    case TKI_KTY_OCT:
        return k->secret_len >= r->sig_len;
    case TKI_KTY_RSA:
        return 1;
    case TKI_KTY_EC:
        return r->curve_nid == k->curve_nid;
    case TKI_KTY_OKP:
        return 1;
    }
    return 0;
}

/* The key's identity for the signature cache (internal.h): its alg and
 * its public key, whatever the kid or the key set it sits in. */
static tk_result key_identity(tk_key *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k->pkey, &der);
    if (n <= 0) {
        return TK_ERR_CRYPTO;
    }
    const char *name = tk_alg_name(k->alg);
    EVP_MD *sha = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = sha && ctx && EVP_DigestInit_ex(ctx, sha, NULL) == 1 &&
             EVP_DigestUpdate(ctx, name, strlen(name) + 1) == 1 && EVP_DigestUpdate(ctx, der, (size_t)n) == 1 &&
             EVP_DigestFinal_ex(ctx, k->vid, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(sha);
    OPENSSL_free(der);
    k->has_vid = ok;
    return ok ? TK_OK : TK_ERR_CRYPTO;
}

/* Prepares the per-alg state once the alg is known. */
static tk_result key_prepare(tk_key *k)
{
    const struct alg_row *r = alg_row(k->alg);
    tk_result rc = TK_ERR_CRYPTO;
    if (!r) {
        return TK_ERR_STATE;
    }
    if (r->md) {
        k->md = EVP_MD_fetch(NULL, r->md, NULL);
        if (!k->md) {
            goto out;
        }
    }
    if (k->kty == TKI_KTY_OCT) {
        /* HMAC (RFC 2104) with the keyed inner and outer digest states
         * computed once: each tag then costs two context copies instead of
         * re-keying, and the key bytes are not touched again. */
        unsigned char k0[128];
        unsigned char pad[128];
        size_t block = (size_t)EVP_MD_get_block_size(k->md);
        if (block == 0 || block > sizeof k0) {
            goto out;
        }
        memset(k0, 0, sizeof k0);
        if (k->secret_len > block) {
            unsigned int l = 0;
            if (EVP_Digest(k->secret, k->secret_len, k0, &l, k->md, NULL) != 1) {
                goto out;
            }
        } else {
            memcpy(k0, k->secret, k->secret_len);
        }
        k->hmac_in = EVP_MD_CTX_new();
        k->hmac_out = EVP_MD_CTX_new();
        int ok = k->hmac_in && k->hmac_out;
        for (size_t i = 0; i < block; i++) {
            pad[i] = (unsigned char)(k0[i] ^ 0x36);
        }
        ok = ok && EVP_DigestInit_ex(k->hmac_in, k->md, NULL) == 1 && EVP_DigestUpdate(k->hmac_in, pad, block) == 1;
        for (size_t i = 0; i < block; i++) {
            pad[i] = (unsigned char)(k0[i] ^ 0x5c);
        }
        ok = ok && EVP_DigestInit_ex(k->hmac_out, k->md, NULL) == 1 && EVP_DigestUpdate(k->hmac_out, pad, block) == 1;
        OPENSSL_cleanse(k0, sizeof k0);
        OPENSSL_cleanse(pad, sizeof pad);
        if (!ok) {
            goto out;
        }
    }
    if (k->kty != TKI_KTY_OCT && key_identity(k) != TK_OK) {
        goto out;
    }
    if (k->kty == TKI_KTY_RSA || k->kty == TKI_KTY_EC) {
        k->vfy_tmpl = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
        if (!k->vfy_tmpl || EVP_PKEY_verify_init(k->vfy_tmpl) != 1) {
            goto out;
        }
        if (k->kty == TKI_KTY_RSA) {
            int pad = r->pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
            if (EVP_PKEY_CTX_set_rsa_padding(k->vfy_tmpl, pad) != 1) {
                goto out;
            }
        }
        if (EVP_PKEY_CTX_set_signature_md(k->vfy_tmpl, k->md) != 1) {
            goto out;
        }
        if (r->pss) {
            /* Salt length pinned to the hash length (RFC 7518 §3.5); AUTO
             * would accept any salt. MGF1 uses the same hash. */
            if (EVP_PKEY_CTX_set_rsa_pss_saltlen(k->vfy_tmpl, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                EVP_PKEY_CTX_set_rsa_mgf1_md(k->vfy_tmpl, k->md) != 1) {
                goto out;
            }
        }
    }
    rc = TK_OK;
out:
    if (rc != TK_OK) {
        ERR_clear_error();
    }
    return rc;
}

const char *const tki_cached_typs[3] = {NULL, "JWT", "at+jwt"};

/* Recomputes the header segments tk_sign() would write for this key (see
 * internal.h). Called whenever alg or kid change, before the key is shared. */
static tk_result key_headers(tk_key *k)
{
    for (size_t i = 0; i < 3; i++) {
        free(k->hdr_b64[i]);
        k->hdr_b64[i] = NULL;
        k->hdr_b64_len[i] = 0;
        k->hdr_members[i] = 0;
    }
    if (k->alg == TK_ALG_UNSET) {
        return TK_OK;
    }
    for (size_t i = 0; i < 3; i++) {
        char *h = tki_header_json(k->alg, k->kid, tki_cached_typs[i]);
        if (!h) {
            return TK_ERR_NOMEM;
        }
        size_t hl = strlen(h);
        size_t cap = tk_b64url_encoded_len(hl) + 1;
        k->hdr_b64[i] = malloc(cap);
        if (!k->hdr_b64[i] ||
            tk_b64url_encode((const unsigned char *)h, hl, k->hdr_b64[i], cap, &k->hdr_b64_len[i]) != TK_OK) {
            free(h);
            return TK_ERR_NOMEM;
        }
        free(h);
        /* alg, then kid and typ when present (tki_header_json). */
        k->hdr_members[i] = (size_t)1 + (k->kid ? 1u : 0u) + (tki_cached_typs[i] ? 1u : 0u);
    }
    return TK_OK;
}

tk_result tk_key_bind_alg(tk_key *k, tk_alg alg)
{
    if (!k || !alg_row(alg)) {
        return TK_ERR_ARG;
    }
    if (k->alg != TK_ALG_UNSET) {
        return k->alg == alg ? TK_OK : TK_ERR_STATE;
    }
    if (!tk_key_alg_fits(k, alg)) {
        return TK_ERR_KEY;
    }
    k->alg = alg;
    tk_result rc = key_prepare(k);
    if (rc == TK_OK) {
        rc = key_headers(k);
    }
    if (rc != TK_OK) {
        k->alg = TK_ALG_UNSET;
        EVP_MD_free(k->md);
        k->md = NULL;
        EVP_MD_CTX_free(k->hmac_in);
        k->hmac_in = NULL;
        EVP_MD_CTX_free(k->hmac_out);
        k->hmac_out = NULL;
        EVP_PKEY_CTX_free(k->vfy_tmpl);
        k->vfy_tmpl = NULL;
        k->has_vid = 0;
    }
    return rc;
}

tk_alg tk_key_alg(const tk_key *k)
{
    return k ? k->alg : TK_ALG_UNSET;
}

const char *tk_key_kid(const tk_key *k)
{
    return k ? k->kid : NULL;
}

int tk_key_can_sign(const tk_key *k)
{
    return k ? k->can_sign : 0;
}

const char *tk_key_kty(const tk_key *k)
{
    if (!k) {
        return NULL;
    }
    switch (k->kty) {
    case TKI_KTY_OCT:
        return "oct";
    case TKI_KTY_RSA:
        return "RSA";
    case TKI_KTY_EC:
        return "EC";
    case TKI_KTY_OKP:
        return "OKP";
    }
    return NULL;
}

static int pkey_has_private(EVP_PKEY *pkey, int base)
{
    BIGNUM *bn = NULL;
    int has = 0;
    if (base == EVP_PKEY_RSA) {
        has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
    } else if (base == EVP_PKEY_EC) {
        has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
    } else if (base == EVP_PKEY_ED25519) {
        unsigned char buf[32];
        size_t l = sizeof buf;
        has = EVP_PKEY_get_raw_private_key(pkey, buf, &l) == 1;
        OPENSSL_cleanse(buf, sizeof buf);
    }
    BN_clear_free(bn);
    ERR_clear_error();
    return has;
}

static tk_alg alg_for_curve(int nid)
{
    for (unsigned i = 1; i < TK_ALG_COUNT_; i++) {
        if (ALGS[i].kty == TKI_KTY_EC && ALGS[i].curve_nid == nid) {
            return (tk_alg)i;
        }
    }
    return TK_ALG_UNSET;
}

/* ---- key validation (SECURITY.md rule 23) ------------------------------------ */

/* The modulus check of SP 800-56B rev. 2 §6.4.2.2 (as OpenSSL's
 * EVP_PKEY_public_check does it outside FIPS): n odd, without a prime
 * factor up to 751, and, by the enhanced Miller-Rabin test of FIPS 186-4
 * C.3.2, proven composite and not a power of a prime. A prime or prime
 * power n would let anyone compute d: every base calls a prime "probably
 * prime" and exposes a factor of a prime power, so they are refused
 * whatever the bases. The bases here are derived from n (SHA-512 of a
 * label, n and a counter) instead of drawn at random as OpenSSL does: a
 * modulus for which some bases expose a factor was, with OpenSSL's check,
 * accepted by one import and refused by the next (found by fuzz_jwk); here
 * one modulus always gets the same verdict. */
#define RSA_MODULUS_ROUNDS 64

static int mr_base(const unsigned char *nb, size_t nlen, int round, const BIGNUM *n_minus_3, BIGNUM *b, BN_CTX *ctx)
{
    static const char label[] = "tokend RSA modulus test base";
    unsigned char md[64];
    unsigned char ctr[4] = {(unsigned char)(round >> 24), (unsigned char)(round >> 16), (unsigned char)(round >> 8),
                            (unsigned char)round};
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    int ok = h != NULL && EVP_DigestInit_ex(h, EVP_sha512(), NULL) == 1 &&
             EVP_DigestUpdate(h, label, sizeof label) == 1 && EVP_DigestUpdate(h, nb, nlen) == 1 &&
             EVP_DigestUpdate(h, ctr, sizeof ctr) == 1 && EVP_DigestFinal_ex(h, md, NULL) == 1;
    EVP_MD_CTX_free(h);
    /* b = 2 + (digest mod (n - 3)), in [2, n - 2] */
    return ok && BN_bin2bn(md, sizeof md, b) != NULL && BN_nnmod(b, b, n_minus_3, ctx) == 1 && BN_add_word(b, 2) == 1;
}

static tk_result rsa_modulus_check(const BIGNUM *n)
{
    tk_result rc = TK_ERR_NOMEM;
    unsigned char nb[TK_LIMIT_RSA_MAX_BITS / 8];
    BN_CTX *ctx = BN_CTX_new();
    BN_MONT_CTX *mont = BN_MONT_CTX_new();
    if (ctx == NULL || mont == NULL) {
        goto out;
    }
    BN_CTX_start(ctx);
    BIGNUM *w1 = BN_CTX_get(ctx);
    BIGNUM *n3 = BN_CTX_get(ctx);
    BIGNUM *m = BN_CTX_get(ctx);
    BIGNUM *b = BN_CTX_get(ctx);
    BIGNUM *z = BN_CTX_get(ctx);
    BIGNUM *x = BN_CTX_get(ctx);
    BIGNUM *g = BN_CTX_get(ctx);
    if (g == NULL) {
        goto out;
    }
    rc = TK_ERR_KEY;
    if (!BN_is_odd(n) || BN_num_bits(n) < 64 || BN_num_bytes(n) > (int)sizeof nb) {
        goto out;
    }
    for (BN_ULONG d = 3; d <= 751; d += 2) {
        BN_ULONG r = BN_mod_word(n, d);
        if (r == 0 || r == (BN_ULONG)-1) {
            goto out;
        }
    }
    size_t nlen = (size_t)BN_bn2bin(n, nb);
    int s = 1;
    if (BN_copy(w1, n) == NULL || BN_sub_word(w1, 1) != 1 || BN_copy(n3, n) == NULL || BN_sub_word(n3, 3) != 1) {
        goto out;
    }
    while (!BN_is_bit_set(w1, s)) {
        s++;
    }
    if (BN_rshift(m, w1, s) != 1 || BN_MONT_CTX_set(mont, n, ctx) != 1) {
        goto out;
    }
    for (int round = 0; round < RSA_MODULUS_ROUNDS; round++) {
        if (!mr_base(nb, nlen, round, n3, b, ctx) || BN_gcd(g, b, n, ctx) != 1) {
            goto out;
        }
        if (!BN_is_one(g)) {
            goto out; /* a factor */
        }
        if (BN_mod_exp_mont(z, b, m, n, ctx, mont) != 1) {
            goto out;
        }
        if (BN_is_one(z) || BN_cmp(z, w1) == 0) {
            continue; /* this base says "probably prime" */
        }
        int liar = 0;
        int sqrt_of_one = 0;
        for (int j = 1; j < s && !liar && !sqrt_of_one; j++) {
            if (BN_copy(x, z) == NULL || BN_mod_sqr(z, x, n, ctx) != 1) {
                goto out;
            }
            liar = BN_cmp(z, w1) == 0;
            sqrt_of_one = BN_is_one(z); /* x: a square root of 1 other than +-1 */
        }
        if (liar) {
            continue;
        }
        if (!sqrt_of_one) { /* z = b^((n-1)/2) */
            if (BN_copy(x, z) == NULL || BN_mod_sqr(z, x, n, ctx) != 1) {
                goto out;
            }
            if (!BN_is_one(z) && BN_copy(x, z) == NULL) { /* x = b^(n-1), not 1 */
                goto out;
            }
        }
        /* proven composite: a factor in gcd(x - 1, n) means a structure
         * (a prime power among others) no RSA modulus has */
        if (BN_sub_word(x, 1) != 1 || BN_gcd(g, x, n, ctx) != 1) {
            goto out;
        }
        rc = BN_is_one(g) ? TK_OK : TK_ERR_KEY;
        goto out;
    }
    /* every base said "probably prime" */
out:
    if (ctx != NULL) {
        BN_CTX_end(ctx);
    }
    BN_CTX_free(ctx);
    BN_MONT_CTX_free(mont);
    OPENSSL_cleanse(nb, sizeof nb);
    return rc;
}

/* The RSA public part: the exponent (limits.h has the reasons for its
 * bounds), then the modulus (rsa_modulus_check). */
static tk_result rsa_check_public(EVP_PKEY *pkey, char *why, size_t why_cap)
{
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    tk_result rc = TK_ERR_KEY;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        goto out;
    }
    /* With e = 1, s^e mod n = s: the PKCS#1 or PSS encoding of any message
     * is its own signature. An even e has no inverse modulo lambda(n). */
    if (BN_is_negative(e) || !BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > TK_LIMIT_RSA_MAX_EXPONENT_BITS ||
        BN_cmp(e, n) >= 0) {
        rc = TK_ERR_KEY_EXPONENT;
        if (BN_num_bits(e) <= TK_LIMIT_RSA_MAX_EXPONENT_BITS && !BN_is_negative(e)) {
            char *dec = BN_bn2dec(e);
            tki_why(why, why_cap, "RSA exponent e is %s; it must be odd, greater than 1 and below 2^64%s",
                    dec ? dec : "?", BN_is_one(e) ? " (with e=1 anyone can forge a signature)" : " (65537 is usual)");
            OPENSSL_free(dec);
        } else {
            tki_why(why, why_cap, "RSA exponent e has %d bits; it must be odd, greater than 1 and below 2^64",
                    BN_num_bits(e));
        }
        goto out;
    }
    rc = rsa_modulus_check(n);
    if (rc == TK_ERR_KEY) {
        tki_why(why, why_cap,
                "RSA modulus n is not a product of distinct large primes (it is even, has a small factor, or is a "
                "prime or prime power)");
    }
out:
    BN_free(n);
    BN_free(e);
    return rc;
}

/* Bases g = 2, 3, ... tried when recovering the factors of n. A right d
 * fails for a random base with probability at most 1/2, so a right d that
 * fails them all is about a 2^-128 event (and is refused: fail closed). A
 * wrong d is usually shown wrong by the first base. */
#define RECOVER_TRIES 128u

/*
 * Recovers the prime factors of n from n, e and d (NIST SP 800-56B rev. 2
 * Appendix C.2; Boneh, "Twenty years of attacks on the RSA cryptosystem",
 * §1). Write k = d*e - 1 = 2^t * r with r odd. When d belongs to (n, e), k is
 * a multiple of lambda(n), so g^k = 1 for every g coprime to n, and for at
 * least half of the g the sequence g^r, g^2r, ..., g^k reaches 1 through a
 * square root of 1 other than +-1, say y; then gcd(y - 1, n) is p. When d
 * does not belong, g^k != 1 for almost every g, which ends the search at
 * once. Returns 1 with p > q and p * q = n, else 0.
 */
static int rsa_recover_factors(const BIGNUM *n, const BIGNUM *e, const BIGNUM *d, BIGNUM *p, BIGNUM *q, BN_CTX *ctx)
{
    int found = 0;
    BN_CTX_start(ctx);
    BIGNUM *k = BN_CTX_get(ctx);
    BIGNUM *r = BN_CTX_get(ctx);
    BIGNUM *y = BN_CTX_get(ctx);
    BIGNUM *x = BN_CTX_get(ctx);
    BIGNUM *g = BN_CTX_get(ctx);
    BIGNUM *nm1 = BN_CTX_get(ctx);
    BIGNUM *rem = BN_CTX_get(ctx);
    if (!rem || !BN_mul(k, d, e, ctx) || !BN_sub_word(k, 1) || !BN_copy(nm1, n) || !BN_sub_word(nm1, 1)) {
        goto out;
    }
    if (BN_is_zero(k) || BN_is_negative(k) || BN_is_odd(k)) {
        goto out; /* lambda(n) is even, so k must be too */
    }
    int t = 0;
    while (!BN_is_bit_set(k, t)) {
        t++;
    }
    if (!BN_rshift(r, k, t)) {
        goto out;
    }
    BN_set_flags(r, BN_FLG_CONSTTIME); /* derived from d */
    for (BN_ULONG base = 2; base < 2 + RECOVER_TRIES; base++) {
        if (!BN_set_word(g, base) || !BN_mod_exp(y, g, r, n, ctx)) {
            goto out;
        }
        if (BN_is_one(y) || BN_cmp(y, nm1) == 0) {
            continue; /* g^r = +-1: this base says nothing */
        }
        int trivial = 0;
        for (int j = 0; j < t; j++) {
            if (!BN_mod_sqr(x, y, n, ctx)) {
                goto out;
            }
            if (BN_is_one(x)) {
                /* y is a square root of 1 other than +-1. */
                if (!BN_sub_word(y, 1) || !BN_gcd(p, y, n, ctx) || !BN_div(q, rem, n, p, ctx)) {
                    goto out;
                }
                found = BN_is_zero(rem) && !BN_is_one(p) && !BN_is_one(q);
                if (found && BN_cmp(p, q) < 0) {
                    BN_swap(p, q);
                }
                goto out;
            }
            if (BN_cmp(x, nm1) == 0) {
                trivial = 1;
                break;
            }
            if (!BN_copy(y, x)) {
                goto out;
            }
        }
        if (!trivial) {
            goto out; /* g^k != 1: d does not belong to (n, e) */
        }
    }
out:
    BN_CTX_end(ctx);
    return found;
}

/* An RSA key pair with every CRT member, from n, e, d and the factors. */
static tk_result rsa_from_factors(const BIGNUM *n, const BIGNUM *e, const BIGNUM *d, const BIGNUM *p, const BIGNUM *q,
                                  BN_CTX *ctx, EVP_PKEY **out)
{
    *out = NULL;
    tk_result rc = TK_ERR_CRYPTO;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *ps = NULL;
    EVP_PKEY_CTX *pc = NULL;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx);
    BIGNUM *dp = BN_CTX_get(ctx);
    BIGNUM *dq = BN_CTX_get(ctx);
    BIGNUM *qi = BN_CTX_get(ctx);
    BIGNUM *ds = BN_CTX_get(ctx); /* d in secure memory, like the others */
    if (!ds || !BN_copy(ds, d) || !BN_sub(t, p, BN_value_one()) || !BN_mod(dp, d, t, ctx) ||
        !BN_sub(t, q, BN_value_one()) || !BN_mod(dq, d, t, ctx)) {
        goto out;
    }
    if (!BN_mod_inverse(qi, q, p, ctx)) {
        rc = TK_ERR_KEY_MISMATCH; /* p and q share a factor: not primes */
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, ds) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qi)) {
        goto out;
    }
    ps = OSSL_PARAM_BLD_to_param(bld);
    pc = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!ps || !pc || EVP_PKEY_fromdata_init(pc) != 1 || EVP_PKEY_fromdata(pc, out, EVP_PKEY_KEYPAIR, ps) != 1) {
        goto out;
    }
    rc = TK_OK;
out:
    OSSL_PARAM_free(ps); /* the secret members sit in secure memory, which is wiped */
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pc);
    BN_CTX_end(ctx);
    return rc;
}

/*
 * The RSA private part must belong to the public part, or the key signs
 * tokens that never verify. OpenSSL's pairwise check (RSA_check_key's tests:
 * p and q prime, n = p*q, d*e = 1 mod lcm(p-1, q-1), and the CRT members)
 * needs the factors; a key with d alone (a JWK may omit them, RFC 7518
 * §6.3.2; a PKCS#1 file may hold zeros) gets them recovered from n, e, d
 * first, and is then replaced by the complete key in *completed (owned).
 */
static tk_result rsa_check_private(EVP_PKEY *pkey, EVP_PKEY **completed)
{
    BIGNUM *n = NULL, *e = NULL, *d = NULL, *p = NULL, *q = NULL;
    BN_CTX *ctx = NULL;
    EVP_PKEY_CTX *c = NULL;
    EVP_PKEY *check = pkey;
    tk_result rc = TK_ERR_KEY;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &d) != 1) {
        goto out;
    }
    int have_p = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, &p) == 1 && !BN_is_zero(p);
    int have_q = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, &q) == 1 && !BN_is_zero(q);
    if (!have_p && !have_q) {
        BN_clear_free(p);
        BN_clear_free(q);
        p = BN_secure_new();
        q = BN_secure_new();
        ctx = BN_CTX_secure_new();
        if (!p || !q || !ctx) {
            rc = TK_ERR_NOMEM;
            goto out;
        }
        if (!rsa_recover_factors(n, e, d, p, q, ctx)) {
            rc = TK_ERR_KEY_MISMATCH;
            goto out;
        }
        rc = rsa_from_factors(n, e, d, p, q, ctx, completed);
        if (rc != TK_OK) {
            goto out;
        }
        check = *completed;
    }
    c = EVP_PKEY_CTX_new_from_pkey(NULL, check, NULL);
    if (!c) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    rc = EVP_PKEY_pairwise_check(c) == 1 ? TK_OK : TK_ERR_KEY_MISMATCH;
out:
    if (rc != TK_OK) {
        EVP_PKEY_free(*completed);
        *completed = NULL;
    }
    EVP_PKEY_CTX_free(c);
    BN_CTX_free(ctx);
    BN_free(n);
    BN_free(e);
    BN_clear_free(d);
    BN_clear_free(p);
    BN_clear_free(q);
    return rc;
}

/* Every key, from any source (JWK, JWKS, PEM, generated), is checked here
 * before it is used: RSA as above; EC points on the curve (not the point at
 * infinity, of the group's order) and d * G equal to them; Ed25519 d deriving
 * the public key. `*completed` may receive a replacement (see
 * rsa_check_private). */
static tk_result pkey_validate(EVP_PKEY *pkey, int base, int priv, EVP_PKEY **completed, const char *curve, char *why,
                               size_t why_cap)
{
    *completed = NULL;
    tk_result rc = TK_OK;
    if (base == EVP_PKEY_RSA) {
        rc = rsa_check_public(pkey, why, why_cap);
        if (rc == TK_OK && priv) {
            rc = rsa_check_private(pkey, completed);
            if (rc == TK_ERR_KEY_MISMATCH) {
                tki_why(why, why_cap,
                        "private key does not match its public key: d (and p, q) does not belong to n and e, "
                        "so its signatures would never verify");
            }
        }
    } else {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!c) {
            rc = TK_ERR_NOMEM;
        } else if (base == EVP_PKEY_EC && EVP_PKEY_public_check(c) != 1) {
            rc = TK_ERR_KEY;
            tki_why(why, why_cap, "the EC point (x, y) is not on the curve %s", curve ? curve : "of the key");
        } else if (priv && EVP_PKEY_pairwise_check(c) != 1) {
            rc = TK_ERR_KEY_MISMATCH;
            tki_why(why, why_cap,
                    "private key does not match its public key: d does not belong to the point (x, y), so its "
                    "signatures would never verify");
        }
        EVP_PKEY_CTX_free(c);
    }
    ERR_clear_error();
    return rc;
}

tk_result tki_key_from_pkey(EVP_PKEY *pkey, tk_alg alg, const char *kid, tk_key **out)
{
    return tki_key_from_pkey_why(pkey, alg, kid, out, NULL, 0);
}

/* "P-256" for the curves we use, else OpenSSL's name. */
static const char *curve_label(int nid, const char *gname)
{
    switch (nid) {
    case NID_X9_62_prime256v1:
        return "P-256";
    case NID_secp384r1:
        return "P-384";
    case NID_secp521r1:
        return "P-521";
    default:
        return gname;
    }
}

tk_result tki_key_from_pkey_why(EVP_PKEY *pkey, tk_alg alg, const char *kid, tk_key **out, char *why, size_t why_cap)
{
    *out = NULL;
    const char *curve = NULL;
    tk_result rc = TK_ERR_KEY;
    EC_GROUP *group = NULL;
    EVP_PKEY *completed = NULL; /* an RSA key completed with its factors */
    tk_key *k = calloc(1, sizeof *k);
    if (!k) {
        return TK_ERR_NOMEM;
    }
    if (alg != TK_ALG_UNSET && !alg_row(alg)) {
        rc = TK_ERR_ARG;
        goto out;
    }
    int base = EVP_PKEY_get_base_id(pkey);
    tk_alg natural = TK_ALG_UNSET;
    if (base == EVP_PKEY_RSA) {
        k->kty = TKI_KTY_RSA;
        k->rsa_bits = EVP_PKEY_get_bits(pkey);
        if (k->rsa_bits < TK_LIMIT_RSA_MIN_BITS) {
            tki_why(why, why_cap, "RSA key has %d bits; at least %d are required", k->rsa_bits, TK_LIMIT_RSA_MIN_BITS);
            rc = TK_ERR_KEY;
            goto out;
        }
        if (k->rsa_bits > TK_LIMIT_RSA_MAX_BITS) {
            tki_why(why, why_cap, "RSA key has %d bits; at most %d are accepted", k->rsa_bits, TK_LIMIT_RSA_MAX_BITS);
            rc = TK_ERR_KEY;
            goto out;
        }
        if (alg != TK_ALG_UNSET && !tki_alg_is_rsa(alg)) {
            tki_why(why, why_cap, "alg %s does not fit an RSA key (RS256, RS384, RS512, PS256, PS384, PS512)",
                    tk_alg_name(alg));
            rc = TK_ERR_KEY;
            goto out;
        }
    } else if (base == EVP_PKEY_EC) {
        char gname[64];
        size_t glen = 0;
        k->kty = TKI_KTY_EC;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, gname, sizeof gname, &glen) != 1) {
            tki_why(why, why_cap, "the EC key has no named curve (explicit curve parameters are not accepted)");
            rc = TK_ERR_KEY;
            goto out;
        }
        int nid = OBJ_sn2nid(gname);
        if (nid == NID_undef) {
            nid = EC_curve_nist2nid(gname);
        }
        natural = alg_for_curve(nid);
        curve = curve_label(nid, gname);
        if (natural == TK_ALG_UNSET) {
            tki_why(why, why_cap, "EC curve %s is not supported (P-256, P-384, P-521)", curve);
            rc = TK_ERR_UNSUPPORTED;
            goto out;
        }
        k->curve_nid = nid;
        k->coord_len = ALGS[natural].coord_len;
        group = EC_GROUP_new_by_curve_name(nid);
        if (!group || BN_bn2binpad(EC_GROUP_get0_order(group), k->order, (int)k->coord_len) < 0) {
            rc = TK_ERR_CRYPTO;
            goto out;
        }
    } else if (base == EVP_PKEY_ED25519) {
        k->kty = TKI_KTY_OKP;
        natural = TK_ALG_EDDSA;
        curve = "Ed25519";
    } else {
        const char *tn = EVP_PKEY_get0_type_name(pkey);
        tki_why(why, why_cap, "key type %s is not supported (RSA, EC P-256/P-384/P-521, Ed25519; oct for HMAC)",
                tn ? tn : "unknown");
        rc = TK_ERR_UNSUPPORTED;
        goto out;
    }
    if (natural != TK_ALG_UNSET) {
        if (alg != TK_ALG_UNSET && alg != natural) {
            tki_why(why, why_cap, "alg %s does not fit a%s %s key, which signs with %s", tk_alg_name(alg),
                    natural == TK_ALG_EDDSA ? "n" : "", curve, tk_alg_name(natural));
            rc = TK_ERR_KEY;
            goto out;
        }
        alg = natural;
    }
    k->can_sign = pkey_has_private(pkey, base);
    rc = pkey_validate(pkey, base, k->can_sign, &completed, curve, why, why_cap);
    if (rc != TK_OK) {
        goto out;
    }
    rc = tki_key_set_kid(k, kid);
    if (rc != TK_OK) {
        goto out;
    }
    k->pkey = completed ? completed : pkey;
    if (alg != TK_ALG_UNSET) {
        rc = tk_key_bind_alg(k, alg);
        if (rc != TK_OK) {
            k->pkey = NULL;
            goto out;
        }
    }
    *out = k;
    k = NULL;
    if (completed) {
        EVP_PKEY_free(pkey); /* ours on TK_OK, and replaced */
        completed = NULL;
    }
    rc = TK_OK;
out:
    EVP_PKEY_free(completed);
    EC_GROUP_free(group);
    tk_key_free(k);
    ERR_clear_error();
    return rc;
}

tk_result tk_key_from_secret(const unsigned char *secret, size_t len, tk_alg alg, const char *kid, tk_key **out)
{
    return tki_key_from_secret_why(secret, len, alg, kid, out, NULL, 0);
}

tk_result tki_key_from_secret_why(const unsigned char *secret, size_t len, tk_alg alg, const char *kid, tk_key **out,
                                  char *why, size_t why_cap)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (!secret) {
        return TK_ERR_ARG;
    }
    if (alg != TK_ALG_UNSET && !tki_alg_is_hmac(alg)) {
        tki_why(why, why_cap, "alg %s does not fit an oct key (a shared secret: HS256, HS384, HS512)",
                tk_alg_name(alg));
        return TK_ERR_ARG;
    }
    if (len > TK_LIMIT_HMAC_KEY_MAX) {
        tki_why(why, why_cap, "HMAC secret has %zu bytes; at most %u are accepted", len, TK_LIMIT_HMAC_KEY_MAX);
        return TK_ERR_KEY;
    }
    if (alg != TK_ALG_UNSET && len < ALGS[alg].sig_len) {
        tki_why(why, why_cap, "HMAC secret has %zu bytes; %s needs at least %zu (its hash size)", len, tk_alg_name(alg),
                ALGS[alg].sig_len);
        return TK_ERR_KEY;
    }
    if (len < 32) {
        tki_why(why, why_cap, "HMAC secret has %zu bytes; at least 32 are required (HS256; HS384 48, HS512 64)", len);
        return TK_ERR_KEY;
    }
    tk_result rc = TK_ERR_NOMEM;
    tk_key *k = calloc(1, sizeof *k);
    if (!k) {
        return TK_ERR_NOMEM;
    }
    k->kty = TKI_KTY_OCT;
    k->can_sign = 1;
    k->secret = malloc(len);
    if (!k->secret) {
        goto out;
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    rc = tki_key_set_kid(k, kid);
    if (rc != TK_OK) {
        goto out;
    }
    if (alg != TK_ALG_UNSET) {
        rc = tk_key_bind_alg(k, alg);
        if (rc != TK_OK) {
            goto out;
        }
    }
    *out = k;
    k = NULL;
    rc = TK_OK;
out:
    tk_key_free(k);
    return rc;
}

tk_result tk_key_generate(tk_alg alg, const char *kid, tk_key **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    const struct alg_row *r = alg_row(alg);
    if (!r) {
        return TK_ERR_ARG;
    }
    if (r->kty == TKI_KTY_OCT) {
        unsigned char secret[64];
        if (RAND_bytes(secret, (int)r->sig_len) != 1) {
            return TK_ERR_CRYPTO;
        }
        tk_result rc = tk_key_from_secret(secret, r->sig_len, alg, kid, out);
        OPENSSL_cleanse(secret, sizeof secret);
        return rc;
    }
    EVP_PKEY *pkey = NULL;
    if (r->kty == TKI_KTY_RSA) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    } else if (r->kty == TKI_KTY_EC) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", OBJ_nid2sn(r->curve_nid));
    } else {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
    if (!pkey) {
        ERR_clear_error();
        return TK_ERR_CRYPTO;
    }
    tk_result rc = tki_key_from_pkey(pkey, alg, kid, out);
    if (rc != TK_OK) {
        EVP_PKEY_free(pkey);
    }
    return rc;
}

static int pem_refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* encrypted PEM is refused: keys are protected by file mode */
}

static int mem_has(const char *p, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++) {
        if (memcmp(p + i, needle, l) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Why OpenSSL read no key from the PEM text. */
static void pem_unreadable_why(const char *pem, size_t len, char *why, size_t cap)
{
    if (mem_has(pem, len, "ENCRYPTED")) {
        tki_why(why, cap,
                "the PEM key is encrypted (it needs a passphrase); tokend reads only plain keys: decrypt it "
                "(openssl pkey -in FILE -out key.pem) and protect the file by its mode (0600)");
    } else if (mem_has(pem, len, "-----BEGIN CERTIFICATE-----")) {
        tki_why(why, cap,
                "this PEM is a certificate, not a key: take its public key with 'openssl x509 -pubkey -noout -in "
                "FILE'");
    } else if (!mem_has(pem, len, "-----BEGIN ")) {
        tki_why(why, cap, "no PEM block (-----BEGIN ...-----) in it");
    } else {
        tki_why(why, cap,
                "the PEM block is not a key tokend reads (PUBLIC KEY, RSA PUBLIC KEY, PRIVATE KEY, RSA PRIVATE KEY, "
                "EC PRIVATE KEY), or its base64 is damaged");
    }
}

tk_result tk_key_from_pem(const char *pem, size_t len, tk_alg alg, const char *kid, tk_key **out)
{
    return tk_key_from_pem_ex(pem, len, alg, kid, out, NULL);
}

tk_result tk_key_from_pem_ex(const char *pem, size_t len, tk_alg alg, const char *kid, tk_key **out, tk_key_error *err)
{
    char *why = err ? err->why : NULL;
    size_t why_cap = err ? sizeof err->why : 0;
    if (err) {
        memset(err, 0, sizeof *err);
    }
    tk_result rc = TK_ERR_ARG;
    if (!out) {
        goto done;
    }
    *out = NULL;
    if (!pem || len == 0) {
        tki_why(why, why_cap, "the key text is empty");
        goto done;
    }
    if (len > TK_LIMIT_JWK_LEN) {
        tki_why(why, why_cap, "the key text has %zu bytes; at most %u are read", len, (unsigned)TK_LIMIT_JWK_LEN);
        rc = TK_ERR_LIMIT;
        goto done;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = TK_ERR_NOMEM;
        goto done;
    }
    EVP_PKEY *pkey = NULL;
    int is_private = 0;
    /* Decide by the label, so that a private key is never mistaken for a
     * public one and vice versa. */
    for (size_t i = 0; i + 11 <= len; i++) {
        if (memcmp(pem + i, "PRIVATE KEY", 11) == 0) {
            is_private = 1;
            break;
        }
    }
    if (is_private) {
        pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_refuse_passphrase, NULL);
    } else {
        /* SPKI "PUBLIC KEY" and PKCS#1 "RSA PUBLIC KEY" alike. */
        OSSL_DECODER_CTX *dctx =
            OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
        if (dctx && OSSL_DECODER_from_bio(dctx, bio) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        OSSL_DECODER_CTX_free(dctx);
    }
    BIO_free(bio);
    if (!pkey) {
        ERR_clear_error();
        pem_unreadable_why(pem, len, why, why_cap);
        rc = TK_ERR_KEY;
        goto done;
    }
    rc = tki_key_from_pkey_why(pkey, alg, kid, out, why, why_cap);
    if (rc != TK_OK) {
        EVP_PKEY_free(pkey);
    }
done:
    if (err) {
        err->result = rc;
        if (rc != TK_OK && !err->why[0]) {
            snprintf(err->why, sizeof err->why, "%s", tk_result_str(rc));
        }
    }
    return rc;
}

/* ---- signatures ------------------------------------------------------------ */

static int hmac_compute(const tk_key *k, const unsigned char *msg, size_t len, unsigned char *tag, size_t *tag_len)
{
    unsigned char inner[EVP_MAX_MD_SIZE];
    unsigned int il = 0;
    unsigned int tl = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = c && EVP_MD_CTX_copy_ex(c, k->hmac_in) == 1 && EVP_DigestUpdate(c, msg, len) == 1 &&
             EVP_DigestFinal_ex(c, inner, &il) == 1 && EVP_MD_CTX_copy_ex(c, k->hmac_out) == 1 &&
             EVP_DigestUpdate(c, inner, il) == 1 && EVP_DigestFinal_ex(c, tag, &tl) == 1;
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(inner, sizeof inner);
    *tag_len = tl;
    return ok;
}

/* Writes a DER INTEGER for the unsigned big-endian value v[0..n). */
static size_t der_int(unsigned char *o, const unsigned char *v, size_t n)
{
    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    size_t pad = (v[0] & 0x80) ? 1 : 0;
    size_t p = 0;
    o[p++] = 0x02;
    o[p++] = (unsigned char)(n + pad); /* n <= 66, fits short form */
    if (pad) {
        o[p++] = 0;
    }
    memcpy(o + p, v, n);
    return p + n;
}

/* Raw r||s (each c bytes) to a DER ECDSA-Sig-Value. out >= 2 * c + 12. */
static size_t ecdsa_raw_to_der(const unsigned char *sig, size_t c, unsigned char *out)
{
    unsigned char body[2 * 66 + 8];
    size_t b = der_int(body, sig, c);
    b += der_int(body + b, sig + c, c);
    size_t p = 0;
    out[p++] = 0x30;
    if (b >= 128) {
        out[p++] = 0x81;
    }
    out[p++] = (unsigned char)b;
    memcpy(out + p, body, b);
    return p + b;
}

/* 1 when the big-endian value v (c bytes) is in [1, order - 1]. */
static int ec_scalar_in_range(const unsigned char *v, const unsigned char *order, size_t c)
{
    int nonzero = 0;
    for (size_t i = 0; i < c; i++) {
        nonzero |= v[i];
    }
    return nonzero && memcmp(v, order, c) < 0;
}

tk_result tki_key_verify(const tk_key *k, const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                         size_t sig_len, enum tki_sig_fail *why)
{
    *why = TKI_SIG_MISMATCH;
    const struct alg_row *r = alg_row(k->alg);
    if (!r) {
        return TK_ERR_STATE;
    }
    tk_result rc = TK_OK;
    switch (k->kty) {
    case TKI_KTY_OCT: {
        unsigned char tag[EVP_MAX_MD_SIZE];
        size_t tl = 0;
        if (sig_len != r->sig_len) {
            *why = TKI_SIG_LENGTH;
            return TK_OK;
        }
        if (!hmac_compute(k, msg, msg_len, tag, &tl)) {
            rc = TK_ERR_CRYPTO;
        } else if (tl == sig_len && CRYPTO_memcmp(tag, sig, sig_len) == 0) {
            *why = TKI_SIG_OK;
        }
        OPENSSL_cleanse(tag, sizeof tag);
        break;
    }
    case TKI_KTY_RSA:
    case TKI_KTY_EC: {
        unsigned char der[2 * 66 + 16];
        unsigned char dg[EVP_MAX_MD_SIZE];
        unsigned int dl = 0;
        const unsigned char *s = sig;
        size_t sl = sig_len;
        if (k->kty == TKI_KTY_RSA) {
            if (sig_len != (size_t)EVP_PKEY_get_size(k->pkey)) {
                *why = TKI_SIG_LENGTH;
                return TK_OK;
            }
        } else {
            if (sig_len != 2 * k->coord_len) {
                *why = TKI_SIG_LENGTH;
                return TK_OK;
            }
            if (!ec_scalar_in_range(sig, k->order, k->coord_len) ||
                !ec_scalar_in_range(sig + k->coord_len, k->order, k->coord_len)) {
                *why = TKI_SIG_RANGE;
                return TK_OK;
            }
            sl = ecdsa_raw_to_der(sig, k->coord_len, der);
            s = der;
        }
        if (EVP_Digest(msg, msg_len, dg, &dl, k->md, NULL) != 1) {
            rc = TK_ERR_CRYPTO;
            break;
        }
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_dup(k->vfy_tmpl);
        if (!c) {
            rc = TK_ERR_NOMEM;
            break;
        }
        if (EVP_PKEY_verify(c, s, sl, dg, dl) == 1) {
            *why = TKI_SIG_OK;
        }
        EVP_PKEY_CTX_free(c);
        break;
    }
    case TKI_KTY_OKP: {
        if (sig_len != r->sig_len) {
            *why = TKI_SIG_LENGTH;
            return TK_OK;
        }
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (!c) {
            rc = TK_ERR_NOMEM;
            break;
        }
        if (EVP_DigestVerifyInit_ex(c, NULL, NULL, NULL, NULL, k->pkey, NULL) != 1) {
            rc = TK_ERR_CRYPTO;
        } else if (EVP_DigestVerify(c, sig, sig_len, msg, msg_len) == 1) {
            *why = TKI_SIG_OK;
        }
        EVP_MD_CTX_free(c);
        break;
    }
    }
    if (*why != TKI_SIG_OK) {
        ERR_clear_error();
    }
    return rc;
}

tk_result tk_key_verify(const tk_key *k, const unsigned char *msg, size_t msg_len, const unsigned char *sig,
                        size_t sig_len, int *valid)
{
    if (valid) {
        *valid = 0;
    }
    if (!k || !valid || (!msg && msg_len) || (!sig && sig_len)) {
        return TK_ERR_ARG;
    }
    if (k->alg == TK_ALG_UNSET) {
        return TK_ERR_STATE;
    }
    enum tki_sig_fail why;
    tk_result rc = tki_key_verify(k, msg ? msg : (const unsigned char *)"", msg_len,
                                  sig ? sig : (const unsigned char *)"", sig_len, &why);
    if (rc == TK_OK) {
        *valid = why == TKI_SIG_OK;
    }
    return rc;
}

static tk_result sign_pkey(const tk_key *k, const struct alg_row *r, const unsigned char *msg, size_t msg_len,
                           unsigned char **sig, size_t *sig_len)
{
    tk_result rc = TK_ERR_CRYPTO;
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    unsigned char *der = NULL;
    size_t der_len = 0;
    unsigned char *res = NULL;
    ECDSA_SIG *es = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (!c || EVP_PKEY_sign_init(c) != 1) {
        goto out;
    }
    if (k->kty == TKI_KTY_RSA) {
        if (EVP_PKEY_CTX_set_rsa_padding(c, r->pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) != 1) {
            goto out;
        }
    }
    if (EVP_PKEY_CTX_set_signature_md(c, k->md) != 1) {
        goto out;
    }
    if (r->pss && (EVP_PKEY_CTX_set_rsa_pss_saltlen(c, RSA_PSS_SALTLEN_DIGEST) != 1 ||
                   EVP_PKEY_CTX_set_rsa_mgf1_md(c, k->md) != 1)) {
        goto out;
    }
    if (EVP_Digest(msg, msg_len, dg, &dl, k->md, NULL) != 1) {
        goto out;
    }
    if (EVP_PKEY_sign(c, NULL, &der_len, dg, dl) != 1) {
        goto out;
    }
    der = malloc(der_len);
    if (!der) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    if (EVP_PKEY_sign(c, der, &der_len, dg, dl) != 1) {
        goto out;
    }
    if (k->kty == TKI_KTY_RSA) {
        *sig = der;
        *sig_len = der_len;
        der = NULL;
        rc = TK_OK;
        goto out;
    }
    /* ECDSA: DER to the JWS form, r||s each padded to the coordinate size. */
    const unsigned char *pp = der;
    es = d2i_ECDSA_SIG(NULL, &pp, (long)der_len);
    if (!es) {
        goto out;
    }
    res = malloc(2 * k->coord_len);
    if (!res) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    if (BN_bn2binpad(ECDSA_SIG_get0_r(es), res, (int)k->coord_len) < 0 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), res + k->coord_len, (int)k->coord_len) < 0) {
        goto out;
    }
    *sig = res;
    *sig_len = 2 * k->coord_len;
    res = NULL;
    rc = TK_OK;
out:
    free(res);
    free(der);
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(c);
    ERR_clear_error();
    return rc;
}

tk_result tk_key_sign(const tk_key *k, const unsigned char *msg, size_t msg_len, unsigned char **sig, size_t *sig_len)
{
    if (sig) {
        *sig = NULL;
    }
    if (sig_len) {
        *sig_len = 0;
    }
    if (!k || !sig || !sig_len || (!msg && msg_len)) {
        return TK_ERR_ARG;
    }
    if (!msg) {
        msg = (const unsigned char *)"";
    }
    const struct alg_row *r = alg_row(k->alg);
    if (!r || !k->can_sign) {
        return TK_ERR_STATE;
    }
    if (k->kty == TKI_KTY_OCT) {
        unsigned char *t = malloc(EVP_MAX_MD_SIZE);
        size_t tl = 0;
        if (!t) {
            return TK_ERR_NOMEM;
        }
        if (!hmac_compute(k, msg, msg_len, t, &tl)) {
            free(t);
            ERR_clear_error();
            return TK_ERR_CRYPTO;
        }
        *sig = t;
        *sig_len = tl;
        return TK_OK;
    }
    if (k->kty == TKI_KTY_OKP) {
        tk_result rc = TK_ERR_CRYPTO;
        unsigned char *s = malloc(64);
        size_t sl = 64;
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (!s || !c) {
            rc = TK_ERR_NOMEM;
        } else if (EVP_DigestSignInit_ex(c, NULL, NULL, NULL, NULL, k->pkey, NULL) == 1 &&
                   EVP_DigestSign(c, s, &sl, msg, msg_len) == 1) {
            *sig = s;
            *sig_len = sl;
            s = NULL;
            rc = TK_OK;
        }
        EVP_MD_CTX_free(c);
        free(s);
        ERR_clear_error();
        return rc;
    }
    return sign_pkey(k, r, msg, msg_len, sig, sig_len);
}
