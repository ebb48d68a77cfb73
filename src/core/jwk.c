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
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include "core/internal.h"

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
