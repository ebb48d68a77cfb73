/* SPDX-License-Identifier: Apache-2.0 */
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
static tk_result get_b64(const json_t *o, const char *name, int required, unsigned char **out, size_t *out_len,
                         char *why, size_t why_cap)
{
    *out = NULL;
    *out_len = 0;
    json_t *v = json_object_get(o, name);
    if (!v) {
        if (required) {
            tki_why(why, why_cap, "member \"%s\" is missing", name);
        }
        return required ? TK_ERR_KEY : TK_OK;
    }
    if (!json_is_string(v)) {
        tki_why(why, why_cap, "member \"%s\" is not a string", name);
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
        if (n == 0) {
            tki_why(why, why_cap, "member \"%s\" is empty", name);
        } else {
            tki_why(why, why_cap, "member \"%s\" is not canonical base64url (bad at offset %zu; no padding, no + or /)",
                    name, bad);
        }
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

static tk_result check_use(const json_t *o, char *why, size_t why_cap)
{
    json_t *use = json_object_get(o, "use");
    if (use && !json_is_string(use)) {
        tki_why(why, why_cap, "its \"use\" is not a string");
        return TK_ERR_KEY;
    }
    if (use && strcmp(json_string_value(use), "sig") != 0) {
        char u[40];
        size_t pos = 0;
        u[0] = '\0';
        tki_append_escaped(u, sizeof u, &pos, json_string_value(use), json_string_length(use), 16);
        tki_why(why, why_cap, "an %s key (use \"%s\"), not a signature key",
                strcmp(json_string_value(use), "enc") == 0 ? "encryption" : "other", u);
        return TK_ERR_KEY;
    }
    json_t *ops = json_object_get(o, "key_ops");
    if (ops) {
        if (!json_is_array(ops)) {
            tki_why(why, why_cap, "its \"key_ops\" is not an array");
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
            tki_why(why, why_cap, "its \"key_ops\" allow neither \"verify\" nor \"sign\" (an encryption key?)");
            return TK_ERR_KEY;
        }
    }
    return TK_OK;
}

static tk_result rsa_from_jwk(const json_t *o, EVP_PKEY **out, char *why, size_t why_cap)
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
        tki_why(why, why_cap, "a multi-prime RSA key (\"oth\"), which is not supported");
        return TK_ERR_UNSUPPORTED; /* multi-prime RSA (RFC 7518 §6.3.2.7) */
    }
    for (size_t i = 0; i < 8; i++) {
        rc = get_b64(o, names[i], i < 2, &bytes[i], &lens[i], why, why_cap);
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
        tki_why(why, why_cap, "p, q, dp, dq and qi must come all together, and with d (RFC 7518 section 6.3.2)");
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
        tki_why(why, why_cap, "n and e do not form an RSA key");
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

static tk_result ec_from_jwk(const json_t *o, EVP_PKEY **out, char *why, size_t why_cap)
{
    const char *crv = get_str(o, "crv");
    const char *group;
    size_t c;
    if (!crv) {
        tki_why(why, why_cap, "an EC key needs a \"crv\" string (P-256, P-384, P-521)");
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
        char cv[40];
        size_t pos = 0;
        cv[0] = '\0';
        tki_append_escaped(cv, sizeof cv, &pos, crv, strlen(crv), 24);
        tki_why(why, why_cap, "EC curve \"%s\" is not supported (P-256, P-384, P-521)", cv);
        return TK_ERR_UNSUPPORTED;
    }
    unsigned char *x = NULL, *y = NULL, *d = NULL;
    size_t xl = 0, yl = 0, dl = 0;
    unsigned char pub[1 + 2 * 66];
    BIGNUM *dbn = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *ps = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    tk_result rc = get_b64(o, "x", 1, &x, &xl, why, why_cap);
    if (rc == TK_OK) {
        rc = get_b64(o, "y", 1, &y, &yl, why, why_cap);
    }
    if (rc == TK_OK) {
        rc = get_b64(o, "d", 0, &d, &dl, why, why_cap);
    }
    if (rc != TK_OK) {
        goto out;
    }
    /* RFC 7518 §6.2.1.2: coordinates are exactly the field size. */
    if (xl != c || yl != c || (d && dl != c)) {
        const char *m = xl != c ? "x" : yl != c ? "y" : "d";
        tki_why(why, why_cap, "member \"%s\" has %zu bytes; %s needs exactly %zu (RFC 7518 section 6.2.1.2)", m,
                xl != c   ? xl
                : yl != c ? yl
                          : dl,
                crv, c);
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
        tki_why(why, why_cap, "the EC point (x, y) is not on the curve %s", crv);
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

static tk_result okp_from_jwk(const json_t *o, EVP_PKEY **out, char *why, size_t why_cap)
{
    const char *crv = get_str(o, "crv");
    if (!crv) {
        tki_why(why, why_cap, "an OKP key needs a \"crv\" string (Ed25519)");
        return TK_ERR_KEY;
    }
    if (strcmp(crv, "Ed25519") != 0) {
        char cv[40];
        size_t pos = 0;
        cv[0] = '\0';
        tki_append_escaped(cv, sizeof cv, &pos, crv, strlen(crv), 24);
        tki_why(why, why_cap, "OKP curve \"%s\" is not supported (Ed25519 only%s)", cv,
                strncmp(crv, "X", 1) == 0 ? "; X25519 and X448 are for encryption" : "");
        return TK_ERR_UNSUPPORTED;
    }
    unsigned char *x = NULL, *d = NULL;
    size_t xl = 0, dl = 0;
    tk_result rc = get_b64(o, "x", 1, &x, &xl, why, why_cap);
    if (rc == TK_OK) {
        rc = get_b64(o, "d", 0, &d, &dl, why, why_cap);
    }
    if (rc != TK_OK) {
        goto out;
    }
    rc = TK_ERR_KEY;
    if (xl != 32 || (d && dl != 32)) {
        tki_why(why, why_cap, "member \"%s\" has %zu bytes; Ed25519 needs exactly 32", xl != 32 ? "x" : "d",
                xl != 32 ? xl : dl);
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
            tki_why(why, why_cap,
                    "private key does not match its public key: d does not derive x, so its signatures "
                    "would never verify");
            EVP_PKEY_free(*out);
            *out = NULL;
            rc = TK_ERR_KEY_MISMATCH;
            goto out;
        }
    } else {
        *out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl);
        if (!*out) {
            tki_why(why, why_cap, "x is not an Ed25519 public key");
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

/* Builds a key from an already parsed JWK object; says why it is refused
 * into why[0..why_cap) (may be NULL). */
static tk_result key_from_jwk_obj(const json_t *o, tk_alg alg, tk_key **out, char *why, size_t why_cap)
{
    *out = NULL;
    const char *kty = get_str(o, "kty");
    if (!kty) {
        tki_why(why, why_cap, "it has no \"kty\" string (RSA, EC, OKP or oct)");
        return TK_ERR_KEY;
    }
    tk_result rc = check_use(o, why, why_cap);
    if (rc != TK_OK) {
        return rc;
    }
    json_t *alg_v = json_object_get(o, "alg");
    if (alg_v) {
        if (!json_is_string(alg_v)) {
            tki_why(why, why_cap, "its \"alg\" is not a string");
            return TK_ERR_KEY;
        }
        tk_alg own = tk_alg_from_name(json_string_value(alg_v), json_string_length(alg_v));
        if (own == TK_ALG_UNSET) {
            char a[40];
            size_t pos = 0;
            a[0] = '\0';
            tki_append_escaped(a, sizeof a, &pos, json_string_value(alg_v), json_string_length(alg_v), 24);
            tki_why(why, why_cap, "alg \"%s\" is not a JWS signature alg (an encryption key?)", a);
            return TK_ERR_UNSUPPORTED; /* e.g. an encryption alg: RSA-OAEP */
        }
        if (alg != TK_ALG_UNSET && alg != own) {
            tki_why(why, why_cap, "the key names alg %s, not %s", tk_alg_name(own), tk_alg_name(alg));
            return TK_ERR_KEY;
        }
        alg = own;
    }
    json_t *kid_v = json_object_get(o, "kid");
    const char *kid = NULL;
    if (kid_v) {
        if (!json_is_string(kid_v) || json_string_length(kid_v) == 0 || json_string_length(kid_v) > TK_LIMIT_KID_LEN) {
            tki_why(why, why_cap, "its \"kid\" must be a string of 1 to %u bytes", TK_LIMIT_KID_LEN);
            return TK_ERR_KEY;
        }
        kid = json_string_value(kid_v);
    }
    if (strcmp(kty, "oct") == 0) {
        unsigned char *k = NULL;
        size_t kl = 0;
        rc = get_b64(o, "k", 1, &k, &kl, why, why_cap);
        if (rc != TK_OK) {
            return rc;
        }
        rc = tki_key_from_secret_why(k, kl, alg, kid, out, why, why_cap);
        free_secret(k, kl);
        if (rc == TK_ERR_ARG) {
            rc = TK_ERR_KEY; /* e.g. "alg": "RS256" on an oct key */
        }
        return rc;
    }
    EVP_PKEY *pkey = NULL;
    if (strcmp(kty, "RSA") == 0) {
        rc = rsa_from_jwk(o, &pkey, why, why_cap);
    } else if (strcmp(kty, "EC") == 0) {
        rc = ec_from_jwk(o, &pkey, why, why_cap);
    } else if (strcmp(kty, "OKP") == 0) {
        rc = okp_from_jwk(o, &pkey, why, why_cap);
    } else {
        char t[40];
        size_t pos = 0;
        t[0] = '\0';
        tki_append_escaped(t, sizeof t, &pos, kty, strlen(kty), 24);
        tki_why(why, why_cap, "kty \"%s\" is not supported (RSA, EC, OKP, oct)", t);
        rc = TK_ERR_UNSUPPORTED;
    }
    if (rc != TK_OK) {
        return rc;
    }
    rc = tki_key_from_pkey_why(pkey, alg, kid, out, why, why_cap);
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
    return tk_key_from_jwk_ex(json, len, alg, out, NULL);
}

/* Names what a document that is not a JWKS is, when it can tell (o: the
 * parsed object, or NULL when it did not parse). */
static void not_a_jwks(const char *json, size_t len, const json_t *o, char *why, size_t cap);

tk_result tk_key_from_jwk_ex(const char *json, size_t len, tk_alg alg, tk_key **out, tk_key_error *err)
{
    char *why = err ? err->why : NULL;
    size_t why_cap = err ? sizeof err->why : 0;
    if (err) {
        memset(err, 0, sizeof *err);
    }
    tk_result rc = TK_ERR_ARG;
    json_t *o = NULL;
    if (out) {
        *out = NULL;
        rc = parse_doc(json, len, &o);
    }
    if (rc == TK_OK && json_is_array(json_object_get(o, "keys"))) {
        tki_why(why, why_cap, "this is a key set ({\"keys\": [...]}), not a single JWK");
        rc = TK_ERR_KEY;
    } else if (rc == TK_OK) {
        rc = key_from_jwk_obj(o, alg, out, why, why_cap);
    } else if (rc == TK_ERR_JSON || rc == TK_ERR_LIMIT) {
        not_a_jwks(json, len, NULL, why, why_cap);
    }
    json_decref(o);
    if (err) {
        err->result = rc;
        if (rc != TK_OK && !err->why[0]) {
            snprintf(err->why, sizeof err->why, "%s", tk_result_str(rc));
        }
    }
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
        rc = key_from_jwk_obj(m, TK_ALG_UNSET, &k, NULL, 0);
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

/* ---- key sets that skip what cannot be used, and say why ---------------------------- */

static int alg_listed(const tk_alg *algs, size_t n, tk_alg a)
{
    for (size_t i = 0; i < n; i++) {
        if (algs[i] == a) {
            return 1;
        }
    }
    return 0;
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

static void not_a_jwks(const char *json, size_t len, const json_t *o, char *why, size_t cap)
{
    size_t pos = 0;
    if (!why || cap == 0 || why[0]) {
        return;
    }
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
    } else if (get_str(o, "issuer") &&
               (json_object_get(o, "token_endpoint") || json_object_get(o, "authorization_endpoint"))) {
        tki_appendf(why, cap, &pos, "this is OpenID/OAuth metadata without a jwks_uri, not a key set");
    } else if (get_str(o, "kty")) {
        tki_appendf(why, cap, &pos, "this is a single JWK, not a key set ({\"keys\": [...]})");
    } else {
        tki_appendf(why, cap, &pos, "a JSON object without a \"keys\" array: not a key set");
    }
}

/* Reads a JWKS, skipping (and saying why) every key that cannot be used.
 * `published`: the set of another issuer (no shared secrets; `algs` filter
 * and bind as tk_keyset_from_jwks_lenient says). Else a set the caller
 * holds: oct keys allowed, unbound keys bound to `hint` when it fits. */
static tk_result jwks_read(const char *json, size_t len, int published, tk_alg hint, const tk_alg *algs,
                           size_t algs_len, tk_keyset **out, tk_jwks_skip *skips, size_t cap, size_t *n_skipped,
                           char *why, size_t why_cap)
{
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
        char w[TK_LIMIT_KEY_WHY_LEN];
        w[0] = '\0';
        if (!json_is_object(m)) {
            note_skip(skips, cap, &skipped, i, m, "not a JSON object");
            continue;
        }
        const char *kty = get_str(m, "kty");
        if (published && kty && strcmp(kty, "oct") == 0) {
            /* a shared secret is never a published key: HS* is not allowed for other issuers */
            note_skip(skips, cap, &skipped, i, m, "a shared secret (kty oct): never trusted from a published key set");
            continue;
        }
        tk_key *k = NULL;
        rc = key_from_jwk_obj(m, TK_ALG_UNSET, &k, w, sizeof w);
        if (rc == TK_ERR_NOMEM || rc == TK_ERR_CRYPTO) {
            goto fail;
        }
        if (rc != TK_OK) {
            if (!w[0]) {
                snprintf(w, sizeof w, "%s", tk_result_str(rc));
            }
            note_skip(skips, cap, &skipped, i, m, w);
            continue;
        }
        if (published && k->alg == TK_ALG_UNSET) { /* RSA without "alg": the first allowed alg that fits, else RS256 */
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
        } else if (!published && k->alg == TK_ALG_UNSET && hint != TK_ALG_UNSET && tk_key_alg_fits(k, hint)) {
            rc = tk_key_bind_alg(k, hint);
            if (rc != TK_OK) {
                tk_key_free(k);
                goto fail;
            }
        }
        if (published && algs_len > 0 && !alg_listed(algs, algs_len, k->alg)) {
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
    return jwks_read(json, len, 1, TK_ALG_UNSET, algs, algs_len, out, skips, cap, n_skipped, why, why_cap);
}

tk_result tk_keyset_from_jwks_ex(const char *json, size_t len, tk_alg alg, tk_keyset **out, tk_jwks_skip *skips,
                                 size_t cap, size_t *n_skipped, tk_key_error *err)
{
    char dummy[8];
    char *why = err ? err->why : dummy;
    size_t why_cap = err ? sizeof err->why : sizeof dummy;
    if (err) {
        memset(err, 0, sizeof *err);
    }
    why[0] = '\0';
    if (n_skipped) {
        *n_skipped = 0;
    }
    tk_result rc = TK_ERR_ARG;
    if (out && json && (cap == 0 || skips)) {
        rc = jwks_read(json, len, 0, alg, NULL, 0, out, skips, cap, n_skipped, why, why_cap);
    } else if (out) {
        *out = NULL;
    }
    if (err) {
        err->result = rc;
        if (rc != TK_OK && !err->why[0]) {
            snprintf(err->why, sizeof err->why, "%s", tk_result_str(rc));
        }
    }
    return rc;
}
