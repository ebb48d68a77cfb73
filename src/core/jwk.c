/*
 * jwk.c — JSON Web Keys (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2) to and from
 * tk_key, and the JWK thumbprint (RFC 7638).
 *
 * Import is strict: members are base64url (canonical), EC coordinates and
 * Ed25519 keys have their exact lengths, and "use"/"key_ops" must allow
 * signatures. What the material means is checked for every source alike in
 * tki_key_from_pkey (crypto.c, SECURITY.md rule 23): RSA exponent and
 * modulus, EC points on the curve, a private part that matches the public
 * part. The Ed25519 check is here, because OpenSSL derives the public key
 * from d and never sees the JWK's x.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "core/internal.h"
#include "tokend/keycache.h"

/* Decodes member `name` of `o` (base64url) into a fresh buffer. Returns
 * TK_OK with *out NULL when absent and !required. */
static tk_result get_b64(const json_t *o, const char *name, int required, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    json_t *v = json_object_get(o, name);
    if (!v) {
        return required ? TK_ERR_KEY : TK_OK;
    }
    if (!json_is_string(v)) {
        return TK_ERR_KEY;
    }
    size_t n = json_string_length(v);
    size_t cap = n / 4 * 3 + 3;
    unsigned char *b = malloc(cap);
    if (!b) {
        return TK_ERR_NOMEM;
    }
    size_t bad;
    if (tk_b64url_decode(json_string_value(v), n, b, cap, out_len, &bad) != TK_OK || *out_len == 0) {
        OPENSSL_cleanse(b, cap);
        free(b);
        *out_len = 0;
        return TK_ERR_KEY;
    }
    *out = b;
    return TK_OK;
}

static void free_secret(unsigned char *p, size_t n)
{
    if (p) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

static const char *get_str(const json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static tk_result check_use(const json_t *o)
{
    json_t *use = json_object_get(o, "use");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
        return TK_ERR_KEY;
    }
    json_t *ops = json_object_get(o, "key_ops");
    if (ops) {
        if (!json_is_array(ops)) {
            return TK_ERR_KEY;
        }
        size_t i;
        json_t *op;
        int ok = 0;
        json_array_foreach (ops, i, op) {
            if (json_is_string(op) &&
                (strcmp(json_string_value(op), "verify") == 0 || strcmp(json_string_value(op), "sign") == 0)) {
                ok = 1;
            }
        }
        if (!ok) {
            return TK_ERR_KEY;
        }
    }
    return TK_OK;
}

static tk_result rsa_from_jwk(const json_t *o, EVP_PKEY **out)
{
    static const char *const names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const params[] = {OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
                                         OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
                                         OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
                                         OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    unsigned char *bytes[8] = {0};
    size_t lens[8] = {0};
    BIGNUM *bns[8] = {0};
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *ps = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    tk_result rc = TK_ERR_KEY;
    if (json_object_get(o, "oth")) {
        return TK_ERR_UNSUPPORTED; /* multi-prime RSA (RFC 7518 §6.3.2.7) */
    }
    for (size_t i = 0; i < 8; i++) {
        rc = get_b64(o, names[i], i < 2, &bytes[i], &lens[i]);
        if (rc != TK_OK) {
            goto out;
        }
    }
    /* CRT parameters come all together or not at all. */
    int crt = 0;
    for (size_t i = 3; i < 8; i++) {
        crt += bytes[i] != NULL;
    }
    if ((crt != 0 && crt != 5) || (crt && !bytes[2])) {
        rc = TK_ERR_KEY;
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    rc = TK_ERR_CRYPTO;
    for (size_t i = 0; i < 8; i++) {
        if (!bytes[i]) {
            continue;
        }
        bns[i] = i >= 2 ? BN_secure_new() : BN_new();
        if (!bns[i] || !BN_bin2bn(bytes[i], (int)lens[i], bns[i]) || !OSSL_PARAM_BLD_push_BN(bld, params[i], bns[i])) {
            goto out;
        }
    }
    ps = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!ps || !ctx || EVP_PKEY_fromdata_init(ctx) != 1) {
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, out, bytes[2] ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, ps) != 1) {
        rc = TK_ERR_KEY;
        goto out;
    }
    rc = TK_OK;
out:
    for (size_t i = 0; i < 8; i++) {
        free_secret(bytes[i], lens[i]);
        BN_clear_free(bns[i]);
    }
    OSSL_PARAM_free(ps);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

static tk_result ec_from_jwk(const json_t *o, EVP_PKEY **out)
{
    const char *crv = get_str(o, "crv");
    const char *group;
    size_t c;
    if (!crv) {
        return TK_ERR_KEY;
    }
    if (strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        c = 32;
    } else if (strcmp(crv, "P-384") == 0) {
        group = "secp384r1";
        c = 48;
    } else if (strcmp(crv, "P-521") == 0) {
        group = "secp521r1";
        c = 66;
    } else {
        return TK_ERR_UNSUPPORTED;
    }
    unsigned char *x = NULL, *y = NULL, *d = NULL;
    size_t xl = 0, yl = 0, dl = 0;
    unsigned char pub[1 + 2 * 66];
    BIGNUM *dbn = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *ps = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    tk_result rc = get_b64(o, "x", 1, &x, &xl);
    if (rc == TK_OK) {
        rc = get_b64(o, "y", 1, &y, &yl);
    }
    if (rc == TK_OK) {
        rc = get_b64(o, "d", 0, &d, &dl);
    }
    if (rc != TK_OK) {
        goto out;
    }
    /* RFC 7518 §6.2.1.2: coordinates are exactly the field size. */
    if (xl != c || yl != c || (d && dl != c)) {
        rc = TK_ERR_KEY;
        goto out;
    }
    pub[0] = 0x04;
    memcpy(pub + 1, x, c);
    memcpy(pub + 1 + c, y, c);
    bld = OSSL_PARAM_BLD_new();
    if (!bld) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    rc = TK_ERR_CRYPTO;
    if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * c)) {
        goto out;
    }
    if (d) {
        dbn = BN_secure_new();
        if (!dbn || !BN_bin2bn(d, (int)dl, dbn) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn)) {
            goto out;
        }
    }
    ps = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ps || !ctx || EVP_PKEY_fromdata_init(ctx) != 1) {
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, out, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, ps) != 1) {
        rc = TK_ERR_KEY; /* e.g. the point is not on the curve */
        goto out;
    }
    /* The point and d * G are checked in tki_key_from_pkey. */
    rc = TK_OK;
out:
    free(x);
    free(y);
    free_secret(d, dl);
    BN_clear_free(dbn);
    OSSL_PARAM_free(ps);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

static tk_result okp_from_jwk(const json_t *o, EVP_PKEY **out)
{
    const char *crv = get_str(o, "crv");
    if (!crv) {
        return TK_ERR_KEY;
    }
    if (strcmp(crv, "Ed25519") != 0) {
        return TK_ERR_UNSUPPORTED;
    }
    unsigned char *x = NULL, *d = NULL;
    size_t xl = 0, dl = 0;
    tk_result rc = get_b64(o, "x", 1, &x, &xl);
    if (rc == TK_OK) {
        rc = get_b64(o, "d", 0, &d, &dl);
    }
    if (rc != TK_OK) {
        goto out;
    }
    rc = TK_ERR_KEY;
    if (xl != 32 || (d && dl != 32)) {
        goto out;
    }
    if (d) {
        /* OpenSSL derives the public key from d (RFC 8032 §5.1.5): it must
         * be x, or the key signs tokens that x never verifies. */
        *out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, dl);
        unsigned char derived[32];
        size_t l = sizeof derived;
        if (!*out || EVP_PKEY_get_raw_public_key(*out, derived, &l) != 1 || l != 32) {
            EVP_PKEY_free(*out);
            *out = NULL;
            rc = TK_ERR_CRYPTO;
            goto out;
        }
        if (CRYPTO_memcmp(derived, x, 32) != 0) {
            EVP_PKEY_free(*out);
            *out = NULL;
            rc = TK_ERR_KEY_MISMATCH;
            goto out;
        }
    } else {
        *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
        if (!*out) {
            goto out;
        }
    }
    rc = TK_OK;
out:
    free(x);
    free_secret(d, dl);
    ERR_clear_error();
    return rc;
}

/* Builds a key from an already parsed JWK object. */
static tk_result key_from_jwk_obj(const json_t *o, tk_alg alg, tk_key **out)
{
    *out = NULL;
    const char *kty = get_str(o, "kty");
    if (!kty) {
        return TK_ERR_KEY;
    }
    tk_result rc = check_use(o);
    if (rc != TK_OK) {
        return rc;
    }
    json_t *alg_v = json_object_get(o, "alg");
    if (alg_v) {
        if (!json_is_string(alg_v)) {
            return TK_ERR_KEY;
        }
        tk_alg own = tk_alg_from_name(json_string_value(alg_v), json_string_length(alg_v));
        if (own == TK_ALG_UNSET) {
            return TK_ERR_UNSUPPORTED; /* e.g. an encryption alg: RSA-OAEP */
        }
        if (alg != TK_ALG_UNSET && alg != own) {
            return TK_ERR_KEY;
        }
        alg = own;
    }
    json_t *kid_v = json_object_get(o, "kid");
    const char *kid = NULL;
    if (kid_v) {
        if (!json_is_string(kid_v) || json_string_length(kid_v) == 0 || json_string_length(kid_v) > TK_LIMIT_KID_LEN) {
            return TK_ERR_KEY;
        }
        kid = json_string_value(kid_v);
    }
    if (strcmp(kty, "oct") == 0) {
        unsigned char *k = NULL;
        size_t kl = 0;
        rc = get_b64(o, "k", 1, &k, &kl);
        if (rc != TK_OK) {
            return rc;
        }
        rc = tk_key_from_secret(k, kl, alg, kid, out);
        free_secret(k, kl);
        if (rc == TK_ERR_ARG) {
            rc = TK_ERR_KEY; /* e.g. "alg": "RS256" on an oct key */
        }
        return rc;
    }
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "RSA") == 0) {
        rc = rsa_from_jwk(o, &pkey);
    } else if (strcmp(kty, "EC") == 0) {
        rc = ec_from_jwk(o, &pkey);
    } else if (strcmp(kty, "OKP") == 0) {
        rc = okp_from_jwk(o, &pkey);
    } else {
        rc = TK_ERR_UNSUPPORTED;
    }
    if (rc != TK_OK) {
        return rc;
    }
    rc = tki_key_from_pkey(pkey, alg, kid, out);
    if (rc != TK_OK) {
        EVP_PKEY_free(pkey);
    }
    return rc;
}

/* Parses a JWK or JWKS document (bounded like token JSON). */
static tk_result parse_doc(const char *json, size_t len, json_t **o)
{
    *o = NULL;
    if (!json || len == 0) {
        return TK_ERR_ARG;
    }
    if (len > TK_LIMIT_JWK_LEN) {
        return TK_ERR_LIMIT;
    }
    char err[160];
    *o = tki_json_parse_object((const unsigned char *)json, len, TK_LIMIT_JSON_DEPTH, TK_LIMIT_JSON_MEMBERS, err,
                               sizeof err);
    return *o ? TK_OK : TK_ERR_JSON;
}

tk_result tk_key_from_jwk(const char *json, size_t len, tk_alg alg, tk_key **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    json_t *o = NULL;
    tk_result rc = parse_doc(json, len, &o);
    if (rc != TK_OK) {
        return rc;
    }
    rc = key_from_jwk_obj(o, alg, out);
    json_decref(o);
    return rc;
}

/* ---- export ------------------------------------------------------------------ */

static int set_b64(json_t *o, const char *name, const unsigned char *b, size_t n)
{
    size_t cap = tk_b64url_encoded_len(n) + 1;
    char *s = malloc(cap);
    if (!s) {
        return 0;
    }
    int ok = tk_b64url_encode(b, n, s, cap, NULL) == TK_OK && json_object_set_new(o, name, json_string(s)) == 0;
    OPENSSL_cleanse(s, cap);
    free(s);
    return ok;
}

static int set_bn(json_t *o, const char *name, EVP_PKEY *pkey, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1) {
        return 0;
    }
    size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
    if (n == 0) {
        n = 1;
    }
    unsigned char *b = malloc(n);
    int ok = b && BN_bn2binpad(bn, b, (int)n) >= 0 && set_b64(o, name, b, n);
    if (b) {
        OPENSSL_cleanse(b, n);
    }
    free(b);
    BN_clear_free(bn);
    return ok;
}

static const char *ec_crv_name(const tk_key *k)
{
    switch (k->curve_nid) {
    case NID_X9_62_prime256v1:
        return "P-256";
    case NID_secp384r1:
        return "P-384";
    case NID_secp521r1:
        return "P-521";
    default:
        return NULL;
    }
}

/* The key's material members (no kid/alg/use): required members only when
 * `thumb` (RFC 7638 §3.2). */
static json_t *jwk_material(const tk_key *k, int with_private)
{
    json_t *o = json_object();
    int ok = o != NULL;
    if (!ok) {
        return NULL;
    }
    switch (k->kty) {
    case TKI_KTY_OCT:
        ok = json_object_set_new(o, "kty", json_string("oct")) == 0 && set_b64(o, "k", k->secret, k->secret_len);
        break;
    case TKI_KTY_RSA:
        ok = json_object_set_new(o, "kty", json_string("RSA")) == 0 &&
             set_bn(o, "n", k->pkey, OSSL_PKEY_PARAM_RSA_N, 0) && set_bn(o, "e", k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        if (ok && with_private) {
            ok = set_bn(o, "d", k->pkey, OSSL_PKEY_PARAM_RSA_D, 0);
            /* CRT members when the key has them. */
            if (ok && set_bn(o, "p", k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, 0)) {
                ok = set_bn(o, "q", k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, 0) &&
                     set_bn(o, "dp", k->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0) &&
                     set_bn(o, "dq", k->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0) &&
                     set_bn(o, "qi", k->pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
            }
        }
        break;
    case TKI_KTY_EC:
        ok = json_object_set_new(o, "kty", json_string("EC")) == 0 &&
             json_object_set_new(o, "crv", json_string(ec_crv_name(k))) == 0 &&
             set_bn(o, "x", k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, k->coord_len) &&
             set_bn(o, "y", k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, k->coord_len);
        if (ok && with_private) {
            ok = set_bn(o, "d", k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, k->coord_len);
        }
        break;
    case TKI_KTY_OKP: {
        unsigned char raw[32];
        size_t l = sizeof raw;
        ok = json_object_set_new(o, "kty", json_string("OKP")) == 0 &&
             json_object_set_new(o, "crv", json_string("Ed25519")) == 0 &&
             EVP_PKEY_get_raw_public_key(k->pkey, raw, &l) == 1 && set_b64(o, "x", raw, l);
        if (ok && with_private) {
            l = sizeof raw;
            ok = EVP_PKEY_get_raw_private_key(k->pkey, raw, &l) == 1 && set_b64(o, "d", raw, l);
        }
        OPENSSL_cleanse(raw, sizeof raw);
        break;
    }
    }
    ERR_clear_error();
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Dumps and wipes the JSON object (it may hold private members). */
static char *dump_wipe(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    /* jansson strings are copies; wipe the private ones before freeing. */
    const char *key;
    json_t *v;
    json_object_foreach (o, key, v) {
        if (json_is_string(v) && json_string_length(v) > 0) {
            OPENSSL_cleanse((void *)(uintptr_t)json_string_value(v), json_string_length(v));
        }
    }
    json_decref(o);
    return s;
}

tk_result tk_key_to_jwk(const tk_key *k, int with_private, char **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (!k) {
        return TK_ERR_ARG;
    }
    if (k->kty == TKI_KTY_OCT && !with_private) {
        return TK_ERR_STATE;
    }
    if (with_private && !k->can_sign) {
        return TK_ERR_STATE;
    }
    json_t *o = jwk_material(k, with_private);
    if (!o) {
        return TK_ERR_CRYPTO;
    }
    int ok = json_object_set_new(o, "use", json_string("sig")) == 0;
    if (ok && k->alg != TK_ALG_UNSET) {
        ok = json_object_set_new(o, "alg", json_string(tk_alg_name(k->alg))) == 0;
    }
    if (ok && k->kid) {
        ok = json_object_set_new(o, "kid", json_string(k->kid)) == 0;
    }
    if (!ok) {
        dump_wipe(o);
        return TK_ERR_NOMEM;
    }
    char *s = dump_wipe(o);
    if (!s) {
        return TK_ERR_NOMEM;
    }
    /* Hand out memory that tk_free (free) can release. jansson uses malloc
     * by default, and we never install other allocators. */
    *out = s;
    return TK_OK;
}

tk_result tk_key_thumbprint(const tk_key *k, char *buf, size_t cap)
{
    if (!k || !buf || cap < 44) {
        return TK_ERR_ARG;
    }
    buf[0] = '\0';
    /* RFC 7638 §3.2: the required members only, sorted, no whitespace. For
     * oct keys "k"; RSA "e","kty","n"; EC "crv","kty","x","y"; OKP
     * "crv","kty","x". jwk_material with no private part yields exactly
     * these, except for oct, which carries k anyway. */
    json_t *o = jwk_material(k, k->kty == TKI_KTY_OCT);
    if (!o) {
        return TK_ERR_CRYPTO;
    }
    char *s = dump_wipe(o);
    if (!s) {
        return TK_ERR_NOMEM;
    }
    unsigned char dg[32];
    unsigned int dl = 0;
    size_t sl = strlen(s);
    int ok = EVP_Digest(s, sl, dg, &dl, EVP_sha256(), NULL) == 1;
    OPENSSL_cleanse(s, sl);
    free(s);
    if (!ok) {
        return TK_ERR_CRYPTO;
    }
    return tk_b64url_encode(dg, dl, buf, cap, NULL);
}

tk_result tk_keyset_from_jwks(const char *json, size_t len, tk_alg alg, tk_keyset **out, size_t *skipped)
{
    if (skipped) {
        *skipped = 0;
    }
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    json_t *o = NULL;
    tk_result rc = parse_doc(json, len, &o);
    if (rc != TK_OK) {
        return rc;
    }
    tk_keyset *ks = NULL;
    rc = TK_ERR_JSON;
    json_t *keys = json_object_get(o, "keys");
    if (!json_is_array(keys)) {
        goto out;
    }
    if (json_array_size(keys) > TK_LIMIT_KEYSET_KEYS) {
        rc = TK_ERR_LIMIT;
        goto out;
    }
    rc = tk_keyset_new(&ks);
    if (rc != TK_OK) {
        goto out;
    }
    size_t i;
    json_t *m;
    json_array_foreach (keys, i, m) {
        if (!json_is_object(m)) {
            rc = TK_ERR_JSON;
            goto out;
        }
        tk_key *k = NULL;
        rc = key_from_jwk_obj(m, TK_ALG_UNSET, &k);
        const char *use = get_str(m, "use");
        if (rc == TK_ERR_UNSUPPORTED || (rc == TK_ERR_KEY && use && strcmp(use, "sig") != 0)) {
            /* An encryption key or a key type we do not use: skip it. */
            if (skipped) {
                (*skipped)++;
            }
            continue;
        }
        if (rc != TK_OK) {
            goto out;
        }
        if (k->alg == TK_ALG_UNSET && alg != TK_ALG_UNSET && tk_key_alg_fits(k, alg)) {
            rc = tk_key_bind_alg(k, alg);
            if (rc != TK_OK) {
                tk_key_free(k);
                goto out;
            }
        }
        rc = tk_keyset_add(ks, k);
        if (rc != TK_OK) {
            tk_key_free(k);
            goto out;
        }
    }
    *out = ks;
    ks = NULL;
    rc = TK_OK;
out:
    tk_keyset_free(ks);
    json_decref(o);
    return rc;
}

/* ---- key sets of other issuers: skip what cannot be used, say why ----------------- */

/* Bits of the RSA modulus as written in the JWK ("n"), 0 when unreadable. */
static size_t rsa_jwk_bits(const json_t *m)
{
    unsigned char *n = NULL;
    size_t len = 0;
    if (get_b64(m, "n", 1, &n, &len) != TK_OK || !n) {
        return 0;
    }
    size_t i = 0;
    while (i < len && n[i] == 0) {
        i++;
    }
    size_t bits = 0;
    if (i < len) {
        bits = (len - i) * 8;
        for (unsigned char top = n[i]; !(top & 0x80); top = (unsigned char)(top << 1)) {
            bits--;
        }
    }
    free(n);
    return bits;
}

static int alg_listed(const tk_alg *algs, size_t n, tk_alg a)
{
    for (size_t i = 0; i < n; i++) {
        if (algs[i] == a) {
            return 1;
        }
    }
    return 0;
}

/* Why the JWK `m` was not usable, in words, given what building it said. */
static void skip_reason(const json_t *m, tk_result rc, char *why, size_t cap)
{
    const char *kty = get_str(m, "kty");
    const char *use = get_str(m, "use");
    const char *alg = get_str(m, "alg");
    size_t pos = 0;
    why[0] = '\0';
    if (!kty) {
        tki_appendf(why, cap, &pos, "it has no kty");
    } else if (use && strcmp(use, "sig") != 0) {
        tki_appendf(why, cap, &pos, "an encryption key (use \"");
        tki_append_escaped(why, cap, &pos, use, strlen(use), 16);
        tki_appendf(why, cap, &pos, "\"), not a signature key");
    } else if (json_object_get(m, "use") && !use) {
        tki_appendf(why, cap, &pos, "its use is not a string");
    } else if (check_use(m) != TK_OK) {
        tki_appendf(why, cap, &pos, "its key_ops do not allow verify");
    } else if (alg && tk_alg_from_name(alg, strlen(alg)) == TK_ALG_UNSET) {
        tki_appendf(why, cap, &pos, "alg \"");
        tki_append_escaped(why, cap, &pos, alg, strlen(alg), 24);
        tki_appendf(why, cap, &pos, "\" is not a JWS signature alg");
    } else if (strcmp(kty, "oct") == 0) {
        tki_appendf(why, cap, &pos, "a shared secret (kty oct): never trusted from a published key set");
    } else if (strcmp(kty, "RSA") == 0) {
        size_t bits = rsa_jwk_bits(m);
        if (rc == TK_ERR_KEY_EXPONENT) {
            tki_appendf(why, cap, &pos, "its RSA exponent e is unusable (even, 1, or 2^64 or more)");
        } else if (rc == TK_ERR_UNSUPPORTED) {
            tki_appendf(why, cap, &pos, "a multi-prime RSA key (oth), which is not supported");
        } else if (bits > 0 && bits < (size_t)TK_LIMIT_RSA_MIN_BITS) {
            tki_appendf(why, cap, &pos, "RSA key has %zu bits, under the %d required", bits, TK_LIMIT_RSA_MIN_BITS);
        } else if (bits > (size_t)TK_LIMIT_RSA_MAX_BITS) {
            tki_appendf(why, cap, &pos, "RSA key has %zu bits, over the %d accepted", bits, TK_LIMIT_RSA_MAX_BITS);
        } else if (rc == TK_ERR_KEY_MISMATCH) {
            tki_appendf(why, cap, &pos, "its private part does not belong to its public part");
        } else {
            tki_appendf(why, cap, &pos,
                        "malformed RSA key (n and e must be base64url; the modulus must be odd, "
                        "and not a prime or a prime power)");
        }
    } else if (strcmp(kty, "EC") == 0) {
        const char *crv = get_str(m, "crv");
        if (rc == TK_ERR_UNSUPPORTED) {
            tki_appendf(why, cap, &pos, "EC curve \"");
            tki_append_escaped(why, cap, &pos, crv ? crv : "", crv ? strlen(crv) : 0, 24);
            tki_appendf(why, cap, &pos, "\" is not supported (P-256, P-384, P-521)");
        } else {
            tki_appendf(why, cap, &pos, "malformed EC key (x and y must be a point on %s)",
                        crv ? "its curve" : "a curve");
        }
    } else if (strcmp(kty, "OKP") == 0) {
        tki_appendf(why, cap, &pos,
                    rc == TK_ERR_UNSUPPORTED ? "OKP curve is not supported (Ed25519 only)" : "malformed OKP key");
    } else {
        tki_appendf(why, cap, &pos, "kty \"");
        tki_append_escaped(why, cap, &pos, kty, strlen(kty), 24);
        tki_appendf(why, cap, &pos, "\" is not supported");
    }
}

static void note_skip(tk_jwks_skip *skips, size_t cap, size_t *n, size_t index, const json_t *m, const char *why)
{
    if (*n < cap) {
        tk_jwks_skip *s = &skips[*n];
        memset(s, 0, sizeof *s);
        s->index = index;
        const char *kid = json_is_object(m) ? get_str(m, "kid") : NULL;
        if (kid) {
            size_t pos = 0;
            tki_append_escaped(s->kid, sizeof s->kid, &pos, kid, strlen(kid), 64);
        }
        snprintf(s->why, sizeof s->why, "%s", why);
    }
    (*n)++;
}

/* Names what a document that is not a JWKS is, when it can tell. */
static void not_a_jwks(const char *json, size_t len, const json_t *o, char *why, size_t cap)
{
    size_t pos = 0;
    if (!o) {
        if (tki_say_if_markup(json, len, why, cap, &pos)) {
            tki_appendf(why, cap, &pos, "; is the URL that of the key set?");
        } else if (len > TK_LIMIT_JWK_LEN) {
            tki_appendf(why, cap, &pos, "the document has %zu bytes; a key set may have at most %u", len,
                        (unsigned)TK_LIMIT_JWK_LEN);
        } else {
            tki_appendf(why, cap, &pos, "not valid JSON (or over the limits of %u members, depth %u)",
                        (unsigned)TK_LIMIT_JSON_MEMBERS, (unsigned)TK_LIMIT_JSON_DEPTH);
        }
        return;
    }
    const char *uri = get_str(o, "jwks_uri");
    if (uri) {
        tki_appendf(why, cap, &pos, "this is OpenID/OAuth metadata, not a key set; its jwks_uri is ");
        tki_append_escaped(why, cap, &pos, uri, strlen(uri), 160);
    } else if (get_str(o, "kty")) {
        tki_appendf(why, cap, &pos, "this is a single JWK, not a key set ({\"keys\": [...]})");
    } else {
        tki_appendf(why, cap, &pos, "a JSON object without a \"keys\" array: not a key set");
    }
}

tk_result tk_keyset_from_jwks_lenient(const char *json, size_t len, const tk_alg *algs, size_t algs_len,
                                      tk_keyset **out, tk_jwks_skip *skips, size_t cap, size_t *n_skipped, char *why,
                                      size_t why_cap)
{
    char dummy[8];
    if (!why || why_cap == 0) {
        why = dummy;
        why_cap = sizeof dummy;
    }
    why[0] = '\0';
    if (n_skipped) {
        *n_skipped = 0;
    }
    if (!out || !json || (cap > 0 && !skips) || (algs_len > 0 && !algs)) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    size_t skipped = 0;
    json_t *o = NULL;
    if (len > 0 && len <= TK_LIMIT_JWK_LEN) {
        char err[160];
        o = tki_json_parse_object((const unsigned char *)json, len, TK_LIMIT_JSON_DEPTH, TK_LIMIT_JSON_MEMBERS, err,
                                  sizeof err);
    }
    json_t *keys = o ? json_object_get(o, "keys") : NULL;
    if (!json_is_array(keys)) {
        not_a_jwks(json, len, o, why, why_cap);
        json_decref(o);
        return TK_ERR_JSON;
    }
    if (json_array_size(keys) > TK_LIMIT_KEYSET_KEYS) {
        snprintf(why, why_cap, "the key set has %zu keys; at most %u are read", json_array_size(keys),
                 (unsigned)TK_LIMIT_KEYSET_KEYS);
        json_decref(o);
        return TK_ERR_JSON;
    }
    tk_keyset *ks = NULL;
    tk_result rc = tk_keyset_new(&ks);
    if (rc != TK_OK) {
        json_decref(o);
        return rc;
    }
    size_t i;
    json_t *m;
    json_array_foreach (keys, i, m) {
        char w[160];
        if (!json_is_object(m)) {
            note_skip(skips, cap, &skipped, i, m, "not a JSON object");
            continue;
        }
        const char *kty = get_str(m, "kty");
        if (kty && strcmp(kty, "oct") == 0) {
            /* a shared secret is never a published key: HS* is not allowed for other issuers */
            skip_reason(m, TK_ERR_KEY, w, sizeof w);
            note_skip(skips, cap, &skipped, i, m, w);
            continue;
        }
        tk_key *k = NULL;
        rc = key_from_jwk_obj(m, TK_ALG_UNSET, &k);
        if (rc == TK_ERR_NOMEM || rc == TK_ERR_CRYPTO) {
            goto fail;
        }
        if (rc != TK_OK) {
            skip_reason(m, rc, w, sizeof w);
            note_skip(skips, cap, &skipped, i, m, w);
            continue;
        }
        if (k->alg == TK_ALG_UNSET) { /* RSA without "alg": the first allowed alg that fits, else RS256 */
            tk_alg bind = TK_ALG_RS256;
            for (size_t a = 0; a < algs_len; a++) {
                if (tk_key_alg_fits(k, algs[a])) {
                    bind = algs[a];
                    break;
                }
            }
            rc = tk_key_bind_alg(k, bind);
            if (rc != TK_OK) {
                tk_key_free(k);
                goto fail;
            }
        }
        if (algs_len > 0 && !alg_listed(algs, algs_len, k->alg)) {
            size_t pos = 0;
            w[0] = '\0';
            tki_appendf(w, sizeof w, &pos, "alg %s is not allowed for this issuer (allowed:", tk_alg_name(k->alg));
            for (size_t a = 0; a < algs_len; a++) {
                tki_appendf(w, sizeof w, &pos, " %s", tk_alg_name(algs[a]));
            }
            tki_appendf(w, sizeof w, &pos, ")");
            note_skip(skips, cap, &skipped, i, m, w);
            tk_key_free(k);
            continue;
        }
        if (k->kid && tk_keyset_find(ks, k->kid, strlen(k->kid))) {
            note_skip(skips, cap, &skipped, i, m, "another key of the set has the same kid");
            tk_key_free(k);
            continue;
        }
        rc = tk_keyset_add(ks, k);
        if (rc != TK_OK) {
            tk_key_free(k);
            goto fail;
        }
    }
    json_decref(o);
    *out = ks;
    if (n_skipped) {
        *n_skipped = skipped;
    }
    return TK_OK;
fail:
    json_decref(o);
    tk_keyset_free(ks);
    snprintf(why, why_cap, "%s", tk_result_str(rc));
    return rc;
}
