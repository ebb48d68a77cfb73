/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/verify.c — single-thread verifications per second of a realistic
 * RFC 9068 access token, tokend side by side with its peers in one run.
 *
 * Implementations compared, for HS256, RS256, PS256, ES256 and EdDSA:
 *  - tokend:      tk_verify() with a key set and a policy (issuer, audience,
 *                 typ at+jwt, a required scope, now = iat + 60): the full
 *                 production check, bytes to verdict.
 *  - raw OpenSSL: the cryptographic operation alone over the same signing
 *                 input, key parsed once, signature decoded once (ES256 still
 *                 converts r||s to DER on every call: that is inherent).
 *                 This is the ceiling a JWT verifier can approach.
 *  - libjwt:      Debian's libjwt 1.x used the documented way: jwt_decode()
 *                 with the PEM key bytes on every call, then alg, exp, iss and
 *                 aud read back. libjwt 1.x refuses typ "at+jwt", so it gets
 *                 the same claims under typ "JWT".
 *  - cjose:       Debian's cjose: cjose_jws_import + cjose_jws_verify with a
 *                 JWK built once, then the payload parsed with jansson to
 *                 check typ, alg, exp, iss and aud as a real user must.
 *
 * Every implementation must accept the token, and reject it with one
 * signature character changed, before anything is timed; otherwise the
 * benchmark stops with a message and exit status 1.
 *
 * Timing. On the shared VMs this runs on, the speed of a core drifts by up
 * to 2x within seconds (co-tenants, frequency), so rates taken a second
 * apart cannot be compared. Hence: a warm-up, then R short rounds per
 * algorithm (default 50 rounds of 20 ms per implementation for --seconds 1),
 * each round running every implementation back to back in a rotating order.
 *  - The ratio columns and the PASS/MISS lines are the MEDIAN over the rounds
 *    of tokend's rate divided by the peer's rate in the same round: paired
 *    measurements cancel the drift (repeat runs agree within ~1%).
 *  - The rate columns are the BEST round (--median for the median): they
 *    show the order of magnitude and move with the machine's mood.
 * Rates count per second of this thread's CPU time (--wall for wall-clock),
 * so time the scheduler gives to other processes is not charged to anyone.
 * The program exits 0 whatever the rates are: it is a benchmark, not a test.
 *
 * Absolute rates depend on the machine: DESIGN.md quotes one core verifying
 * RSA-2048 ≈ 61 k/s, P-256 ≈ 16 k/s, Ed25519 ≈ 11 k/s; the shared VM this
 * was written on gave `openssl speed` 28 k/s, 7.8 k/s and 4.2 k/s. Compare
 * ratios, not rates, across machines.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjose/cjose.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "tokend/tokend.h"

#ifndef BENCH_LIBJWT_VERSION
#define BENCH_LIBJWT_VERSION "1.x"
#endif

/* ---------------------------------------------------------------------------
 * The token. Fixed times so that every run verifies the same bytes' shape;
 * the verifiers are told that "now" is one minute after issue.
 */
#define BENCH_IAT 1767225600LL /* 2026-01-01T00:00:00Z */
#define BENCH_NOW (BENCH_IAT + 60)
#define BENCH_TTL 900LL /* 15 min, DESIGN.md default */
#define BENCH_ISS "https://auth.example.com/"
#define BENCH_AUD "https://api.example.com/orders"
#define BENCH_SCOPE "orders:read"

#define MAX_ROUNDS 200
#define SIG_MAX 1024 /* decoded signature bytes; RSA-2048 needs 256 */

enum impl { IMPL_TOKEND, IMPL_RAW, IMPL_LIBJWT, IMPL_CJOSE, IMPL_COUNT };

static const char *const impl_names[IMPL_COUNT] = {"tokend", "raw OpenSSL", "libjwt", "cjose"};

typedef struct bench_case {
    const char *name; /* JWS alg name */
    tk_alg alg;
    int selected;

    /* The token every implementation but libjwt verifies (typ at+jwt) and
     * the libjwt one (same claims, typ JWT). Owned C strings. */
    char *token;
    size_t token_len;
    char *token_jwt;
    size_t token_jwt_len;

    /* tokend */
    tk_keyset *ks;
    tk_policy pol;

    /* raw OpenSSL */
    size_t signing_input_len; /* header.payload, a prefix of token */
    unsigned char sig[SIG_MAX];
    size_t sig_len;
    EVP_PKEY *pkey;   /* public key, asymmetric algs */
    EVP_MAC_CTX *mac; /* HMAC context keyed once, HS256 */
    const EVP_MD *md; /* NULL for EdDSA */
    int pss;
    int ecdsa_half; /* bytes of r (and of s) for ES*, else 0 */

    /* libjwt */
    jwt_alg_t jwt_alg;
    unsigned char *jwt_key; /* PEM public key or HMAC secret */
    size_t jwt_key_len;

    /* cjose */
    cjose_jwk_t *jwk;
    const char *cjose_alg;

    /* results */
    int avail[IMPL_COUNT];
    const char *na_why[IMPL_COUNT];
    size_t batch[IMPL_COUNT];
    double rates[IMPL_COUNT][MAX_ROUNDS];
    double rate[IMPL_COUNT];      /* best or median of the rounds */
    double ratio[IMPL_COUNT];     /* median over rounds of tokend's rate / this one's, same round */
    double raw_ratio[IMPL_COUNT]; /* the same for raw OpenSSL: the ceiling of any verifier */
} bench_case;

static bench_case cases[] = {
    {.name = "HS256", .alg = TK_ALG_HS256}, {.name = "RS256", .alg = TK_ALG_RS256},
    {.name = "PS256", .alg = TK_ALG_PS256}, {.name = "ES256", .alg = TK_ALG_ES256},
    {.name = "EdDSA", .alg = TK_ALG_EDDSA},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static const char *const pol_issuers[] = {BENCH_ISS};
static const char *const pol_audiences[] = {BENCH_AUD};
static const char *const pol_scopes[] = {BENCH_SCOPE};

/* ---------------------------------------------------------------------------
 * Small helpers.
 */
static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench/verify: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void die_ssl(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    die(what, e ? buf : "(no OpenSSL error queued)");
}

static void die_tk(const char *what, tk_result r)
{
    die(what, tk_result_str(r));
}

/* The clock rates are measured against. By default the CPU time of this
 * thread: on a shared machine (CI, VMs, a build next door) wall time counts
 * every slice the scheduler gives to someone else, which made single rounds
 * up to 10x slower here. --wall switches to CLOCK_MONOTONIC. */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* base64url without padding (RFC 4648 §5); our own so that the raw peer's
 * set-up does not depend on the code under test. Returns 0 on a bad input. */
static int b64url_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }
    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }
    if (ch == '-') {
        return 62;
    }
    if (ch == '_') {
        return 63;
    }
    return -1;
}

static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *out_len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0) {
            return 0;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) {
                return 0;
            }
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1u;
        }
    }
    *out_len = o;
    return 1;
}

static char *pem_of(EVP_PKEY *pkey, int private_part, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        die_ssl("BIO_new");
    }
    int ok =
        private_part ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, pkey);
    if (!ok) {
        die_ssl("PEM encoding of a generated key");
    }
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0) {
        die_ssl("BIO_get_mem_data");
    }
    char *copy = malloc((size_t)n + 1);
    if (copy == NULL) {
        die("out of memory", NULL);
    }
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return copy;
}

/* ---------------------------------------------------------------------------
 * The four verifiers. Each returns 1 when it accepts c's token, 0 otherwise.
 */
static int op_tokend(bench_case *c)
{
    tk_verdict v;
    tk_result r = tk_verify(c->token, c->token_len, c->ks, &c->pol, NULL, &v, NULL);
    return r == TK_OK && v.reason == TK_REASON_VALID;
}

static int raw_hmac(bench_case *c)
{
    unsigned char tag[EVP_MAX_MD_SIZE];
    size_t tag_len = 0;
    /* NULL key: re-initialise with the key set once at start-up. */
    if (!EVP_MAC_init(c->mac, NULL, 0, NULL) ||
        !EVP_MAC_update(c->mac, (const unsigned char *)c->token, c->signing_input_len) ||
        !EVP_MAC_final(c->mac, tag, &tag_len, sizeof tag)) {
        return 0;
    }
    return tag_len == c->sig_len && CRYPTO_memcmp(tag, c->sig, tag_len) == 0;
}

/* JWS ECDSA signatures are r||s (RFC 7518 §3.4); OpenSSL wants DER. */
static int raw_ecdsa_to_der(const bench_case *c, unsigned char *der, size_t cap, size_t *der_len)
{
    size_t half = (size_t)c->ecdsa_half;
    if (c->sig_len != 2 * half) {
        return 0;
    }
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(c->sig, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(c->sig + half, (int)half, NULL);
    int ok = 0;
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    int need = i2d_ECDSA_SIG(es, NULL);
    if (need <= 0 || (size_t)need > cap) {
        goto out;
    }
    unsigned char *p = der;
    *der_len = (size_t)i2d_ECDSA_SIG(es, &p);
    ok = 1;
out:
    ECDSA_SIG_free(es);
    return ok;
}

static int raw_pkey(bench_case *c)
{
    unsigned char der[160];
    const unsigned char *sig = c->sig;
    size_t sig_len = c->sig_len;
    if (c->ecdsa_half) {
        if (!raw_ecdsa_to_der(c, der, sizeof der, &sig_len)) {
            return 0;
        }
        sig = der;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = 0;
    if (ctx == NULL || EVP_DigestVerifyInit(ctx, &pctx, c->md, NULL, c->pkey) != 1) {
        goto out;
    }
    if (c->pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                   EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
        goto out;
    }
    ok = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)c->token, c->signing_input_len) == 1;
out:
    EVP_MD_CTX_free(ctx);
    return ok;
}

static int op_raw(bench_case *c)
{
    return c->mac ? raw_hmac(c) : raw_pkey(c);
}

static int op_libjwt(bench_case *c)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, c->token_jwt, c->jwt_key, (int)c->jwt_key_len) != 0) {
        return 0;
    }
    int ok = 0;
    if (jwt_get_alg(jwt) != c->jwt_alg) {
        goto out;
    }
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= BENCH_NOW) {
        goto out;
    }
    const char *iss = jwt_get_grant(jwt, "iss");
    const char *aud = jwt_get_grant(jwt, "aud");
    ok = iss != NULL && aud != NULL && strcmp(iss, BENCH_ISS) == 0 && strcmp(aud, BENCH_AUD) == 0;
out:
    jwt_free(jwt);
    return ok;
}

static int op_cjose(bench_case *c)
{
    cjose_err err;
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    json_t *claims = NULL;
    int ok = 0;
    cjose_jws_t *jws = cjose_jws_import(c->token, c->token_len, &err);
    if (jws == NULL || !cjose_jws_verify(jws, c->jwk, &err)) {
        goto out;
    }
    cjose_header_t *hdr = cjose_jws_get_protected(jws);
    const char *alg = cjose_header_get(hdr, CJOSE_HDR_ALG, &err);
    const char *typ = cjose_header_get(hdr, "typ", &err);
    if (alg == NULL || strcmp(alg, c->cjose_alg) != 0 || typ == NULL || strcmp(typ, "at+jwt") != 0) {
        goto out;
    }
    if (!cjose_jws_get_plaintext(jws, &pt, &pt_len, &err)) { /* borrowed from jws */
        goto out;
    }
    json_error_t jerr;
    claims = json_loadb((const char *)pt, pt_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(claims)) {
        goto out;
    }
    json_t *exp = json_object_get(claims, "exp");
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *aud = json_string_value(json_object_get(claims, "aud"));
    ok = json_is_integer(exp) && json_integer_value(exp) > BENCH_NOW && iss != NULL && aud != NULL &&
         strcmp(iss, BENCH_ISS) == 0 && strcmp(aud, BENCH_AUD) == 0;
out:
    json_decref(claims);
    cjose_jws_release(jws);
    return ok;
}

typedef int (*op_fn)(bench_case *c);
static const op_fn ops[IMPL_COUNT] = {op_tokend, op_raw, op_libjwt, op_cjose};

/* ---------------------------------------------------------------------------
 * Set-up.
 */
static void make_payload(char *buf, size_t cap, size_t *len)
{
    /* RFC 9068 §2.2 claims plus the usual OIDC session extras: 11 claims. */
    int n = snprintf(buf, cap,
                     "{\"iss\":\"%s\",\"sub\":\"5ba552d67fb24a1c\",\"aud\":\"%s\","
                     "\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,"
                     "\"jti\":\"dbe39bf3a3ba4238a513f51d6e1691c4\",\"client_id\":\"s6BhdRkqt3\","
                     "\"scope\":\"openid profile orders:read orders:write\","
                     "\"sid\":\"8f5d1c7a-4b2e-4e0f-9c1d-2a6b3e4f5a6b\",\"auth_time\":%lld}",
                     BENCH_ISS, BENCH_AUD, BENCH_IAT + BENCH_TTL, BENCH_IAT, BENCH_IAT, BENCH_IAT - 300);
    if (n <= 0 || (size_t)n >= cap) {
        die("payload does not fit", NULL);
    }
    *len = (size_t)n;
}

static EVP_PKEY *keygen(tk_alg alg)
{
    EVP_PKEY *k = NULL;
    switch (alg) {
    case TK_ALG_RS256:
    case TK_ALG_PS256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case TK_ALG_ES256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case TK_ALG_EDDSA:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    default:
        break;
    }
    if (k == NULL) {
        die_ssl("key generation");
    }
    return k;
}

/* --foreign-header: see setup_case. */
static int foreign_header = 0;

static void setup_case(bench_case *c, const unsigned char *payload, size_t payload_len)
{
    char kid[32];
    snprintf(kid, sizeof kid, "bench-%s", c->name);
    tk_key *sk = NULL;    /* signs */
    tk_key *vk = NULL;    /* verifies, goes into the key set */
    char *pub_jwk = NULL; /* for cjose */
    tk_result r;
    int symmetric = c->alg == TK_ALG_HS256;
    unsigned char secret[32];

    if (symmetric) {
        if (RAND_bytes(secret, sizeof secret) != 1) {
            die_ssl("RAND_bytes");
        }
        r = tk_key_from_secret(secret, sizeof secret, c->alg, kid, &sk);
        if (r != TK_OK) {
            die_tk("tk_key_from_secret (sign)", r);
        }
        r = tk_key_from_secret(secret, sizeof secret, c->alg, kid, &vk);
        if (r != TK_OK) {
            die_tk("tk_key_from_secret (verify)", r);
        }
        /* raw: an HMAC context keyed once */
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        c->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                               OSSL_PARAM_construct_end()};
        if (c->mac == NULL || !EVP_MAC_init(c->mac, secret, sizeof secret, params)) {
            die_ssl("HMAC context");
        }
        /* libjwt: the secret bytes */
        c->jwt_key = malloc(sizeof secret);
        if (c->jwt_key == NULL) {
            die("out of memory", NULL);
        }
        memcpy(c->jwt_key, secret, sizeof secret);
        c->jwt_key_len = sizeof secret;
        /* cjose: an oct JWK */
        cjose_err err;
        c->jwk = cjose_jwk_create_oct_spec(secret, sizeof secret, &err);
        if (c->jwk == NULL) {
            die("cjose_jwk_create_oct_spec", err.message);
        }
        OPENSSL_cleanse(secret, sizeof secret);
    } else {
        EVP_PKEY *gen = keygen(c->alg);
        size_t priv_len = 0;
        size_t pub_len = 0;
        char *priv_pem = pem_of(gen, 1, &priv_len);
        char *pub_pem = pem_of(gen, 0, &pub_len);
        EVP_PKEY_free(gen);

        r = tk_key_from_pem(priv_pem, priv_len, c->alg, kid, &sk);
        if (r != TK_OK) {
            die_tk("tk_key_from_pem (private)", r);
        }
        r = tk_key_from_pem(pub_pem, pub_len, c->alg, kid, &vk);
        if (r != TK_OK) {
            die_tk("tk_key_from_pem (public)", r);
        }
        r = tk_key_to_jwk(sk, 0, &pub_jwk);
        if (r != TK_OK) {
            die_tk("tk_key_to_jwk", r);
        }
        OPENSSL_cleanse(priv_pem, priv_len);
        free(priv_pem);

        /* raw: the public key parsed once */
        BIO *bio = BIO_new_mem_buf(pub_pem, (int)pub_len);
        c->pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (c->pkey == NULL) {
            die_ssl("PEM_read_bio_PUBKEY");
        }
        c->md = c->alg == TK_ALG_EDDSA ? NULL : EVP_sha256();
        c->pss = c->alg == TK_ALG_PS256;
        c->ecdsa_half = c->alg == TK_ALG_ES256 ? 32 : 0;

        /* libjwt: the PEM bytes, handed over on every decode */
        c->jwt_key = (unsigned char *)pub_pem;
        c->jwt_key_len = pub_len;

        /* cjose: a JWK built once, from tokend's public JWK export */
        cjose_err err;
        c->jwk = cjose_jwk_import(pub_jwk, strlen(pub_jwk), &err);
        if (c->jwk == NULL) {
            c->avail[IMPL_CJOSE] = -1;
            c->na_why[IMPL_CJOSE] = "cjose 0.6 cannot import this key type (no OKP/Ed25519)";
        }
    }

    /* The tokens, signed by tokend. With --foreign-header the at+jwt token
     * carries the same header members in another order and spacing, as
     * another issuer would write them, so that a verifier cannot recognise
     * the exact bytes tk_sign writes and must decode and parse the header. */
    if (foreign_header) {
        char hdr[200];
        int hn = snprintf(hdr, sizeof hdr, "{\"typ\": \"at+jwt\", \"kid\": \"%s\", \"alg\": \"%s\"}", kid, c->name);
        if (hn <= 0 || (size_t)hn >= sizeof hdr) {
            die("header does not fit", NULL);
        }
        r = tk_sign_with_header(sk, hdr, (size_t)hn, payload, payload_len, &c->token, &c->token_len);
    } else {
        r = tk_sign(sk, "at+jwt", payload, payload_len, &c->token, &c->token_len);
    }
    if (r != TK_OK) {
        die_tk("tk_sign (at+jwt)", r);
    }
    r = tk_sign(sk, "JWT", payload, payload_len, &c->token_jwt, &c->token_jwt_len);
    if (r != TK_OK) {
        die_tk("tk_sign (JWT)", r);
    }
    tk_key_free(sk);
    tk_free(pub_jwk);

    r = tk_keyset_new(&c->ks);
    if (r != TK_OK) {
        die_tk("tk_keyset_new", r);
    }
    r = tk_keyset_add(c->ks, vk);
    if (r != TK_OK) {
        die_tk("tk_keyset_add", r);
    }
    tk_policy_init(&c->pol, BENCH_NOW);
    c->pol.issuers = pol_issuers;
    c->pol.issuers_len = 1;
    c->pol.audiences = pol_audiences;
    c->pol.audiences_len = 1;
    c->pol.scopes = pol_scopes;
    c->pol.scopes_len = 1;
    c->pol.typ = "at+jwt";

    /* raw: signing input and decoded signature, once */
    const char *dot2 = NULL;
    const char *dot1 = memchr(c->token, '.', c->token_len);
    if (dot1 != NULL) {
        dot2 = memchr(dot1 + 1, '.', c->token_len - (size_t)(dot1 + 1 - c->token));
    }
    if (dot2 == NULL) {
        die("tk_sign produced no compact JWS", c->token);
    }
    c->signing_input_len = (size_t)(dot2 - c->token);
    const char *sig64 = dot2 + 1;
    if (!b64url_decode(sig64, c->token_len - c->signing_input_len - 1, c->sig, sizeof c->sig, &c->sig_len)) {
        die("signature segment is not base64url", sig64);
    }

    /* libjwt: does this release know the alg? */
    c->jwt_alg = jwt_str_alg(c->name);
    if (c->jwt_alg == JWT_ALG_INVAL) {
        c->avail[IMPL_LIBJWT] = -1;
        c->na_why[IMPL_LIBJWT] = "libjwt " BENCH_LIBJWT_VERSION " does not know this alg";
    }
    c->cjose_alg = c->name;
    for (int i = 0; i < IMPL_COUNT; i++) {
        c->avail[i] = c->avail[i] == 0;
    }
}

/* Flips one character inside the signature segment of *tok (a private
 * copy) so that the decoded signature changes. */
static char *tampered_copy(const char *tok, size_t len)
{
    char *t = malloc(len + 1);
    if (t == NULL) {
        die("out of memory", NULL);
    }
    memcpy(t, tok, len + 1);
    char *last_dot = strrchr(t, '.');
    if (last_dot == NULL || strlen(last_dot) < 8) {
        die("token has no signature to tamper with", NULL);
    }
    last_dot[5] = last_dot[5] == 'A' ? 'B' : 'A';
    return t;
}

/* Every implementation accepts the real token and rejects a tampered one,
 * or the numbers would mean nothing. */
static void check_case(bench_case *c)
{
    for (int i = 0; i < IMPL_COUNT; i++) {
        if (!c->avail[i]) {
            continue;
        }
        if (!ops[i](c)) {
            char msg[600];
            if (i == IMPL_TOKEND) {
                tk_verdict v;
                tk_result r = tk_verify(c->token, c->token_len, c->ks, &c->pol, NULL, &v, NULL);
                snprintf(msg, sizeof msg, "%s: tokend says %s / %s (%s)", c->name, tk_result_str(r),
                         tk_reason_code(v.reason), v.detail);
            } else {
                snprintf(msg, sizeof msg, "%s: %s rejected the valid token", c->name, impl_names[i]);
            }
            die("a verifier does not accept the benchmark token", msg);
        }
    }

    /* Tampered signature: everyone must say no. */
    char *good = c->token;
    char *good_jwt = c->token_jwt;
    c->token = tampered_copy(good, c->token_len);
    c->token_jwt = tampered_copy(good_jwt, c->token_jwt_len);
    c->sig[c->sig_len / 2] ^= 0x01;
    for (int i = 0; i < IMPL_COUNT; i++) {
        if (c->avail[i] && ops[i](c)) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s: %s accepted a token with a tampered signature", c->name, impl_names[i]);
            die("a verifier does not check the signature", msg);
        }
    }
    tk_verdict v;
    tk_result r = tk_verify(c->token, c->token_len, c->ks, &c->pol, NULL, &v, NULL);
    if (r != TK_OK || v.reason != TK_REASON_BAD_SIGNATURE) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s: tokend says %s / %s (%s) for a tampered signature", c->name, tk_result_str(r),
                 tk_reason_code(v.reason), v.detail);
        die("unexpected verdict", msg);
    }
    c->sig[c->sig_len / 2] ^= 0x01;
    free(c->token);
    free(c->token_jwt);
    c->token = good;
    c->token_jwt = good_jwt;
}

static void free_case(bench_case *c)
{
    tk_free(c->token);
    tk_free(c->token_jwt);
    tk_keyset_free(c->ks);
    EVP_PKEY_free(c->pkey);
    EVP_MAC_CTX_free(c->mac);
    if (c->jwt_key != NULL) {
        OPENSSL_cleanse(c->jwt_key, c->jwt_key_len);
        free(c->jwt_key);
    }
    cjose_jwk_release(c->jwk);
}

/* ---------------------------------------------------------------------------
 * Timing.
 */

/* Runs op for about `seconds`, reading the clock once per batch; returns the
 * rate in verifications per second. Every call must accept. */
static double run_for(bench_case *c, int impl, double seconds)
{
    op_fn op = ops[impl];
    size_t batch = c->batch[impl];
    uint64_t n = 0;
    uint64_t ok = 0;
    double t0 = now_sec();
    double t;
    do {
        for (size_t i = 0; i < batch; i++) {
            ok += (uint64_t)op(c);
        }
        n += batch;
        t = now_sec();
    } while (t - t0 < seconds);
    if (ok != n) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s rejected the token during timing", c->name, impl_names[impl]);
        die("verifier failed while timing", msg);
    }
    return (double)n / (t - t0);
}

/* Warm-up that also sizes the batch so that one batch lasts about 0.5 ms
 * (clock reads then cost well under 0.1 % even for HS256). */
static void warm_up(bench_case *c, int impl, double seconds)
{
    c->batch[impl] = 1;
    double rate = run_for(c, impl, seconds);
    double b = rate * 0.0005;
    c->batch[impl] = b < 1.0 ? 1 : (size_t)b;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best (default) or median of the rounds. Interference from other work
 * only ever slows a round down, so the best round is the closest estimate of
 * what the code costs; the median says what a busy machine gets. */
static int use_median = 0;

static double median_of(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
}

static double summarise(const double *v, int n)
{
    if (use_median) {
        return median_of(v, n);
    }
    double best = v[0];
    for (int i = 1; i < n; i++) {
        best = v[i] > best ? v[i] : best;
    }
    return best;
}

static void measure_case(bench_case *c, double seconds, int rounds)
{
    double warm = seconds / 10.0;
    if (warm > 0.2) {
        warm = 0.2;
    }
    for (int i = 0; i < IMPL_COUNT; i++) {
        if (c->avail[i]) {
            warm_up(c, i, warm);
        }
    }
    double per_round = seconds / (double)rounds;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < IMPL_COUNT; k++) {
            int i = (k + r) % IMPL_COUNT; /* rotate who goes first */
            if (c->avail[i]) {
                c->rates[i][r] = run_for(c, i, per_round);
            }
        }
    }
    for (int i = 0; i < IMPL_COUNT; i++) {
        c->rate[i] = c->avail[i] ? summarise(c->rates[i], rounds) : 0.0;
        c->ratio[i] = 0.0;
        if (c->avail[i]) {
            double q[MAX_ROUNDS];
            for (int r = 0; r < rounds; r++) {
                q[r] = c->rates[IMPL_TOKEND][r] / c->rates[i][r];
            }
            c->ratio[i] = median_of(q, rounds);
            for (int r = 0; r < rounds; r++) {
                q[r] = c->rates[IMPL_RAW][r] / c->rates[i][r];
            }
            c->raw_ratio[i] = median_of(q, rounds);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Report.
 */
static void fmt_rate(char *buf, size_t cap, const bench_case *c, int impl)
{
    if (!c->avail[impl]) {
        snprintf(buf, cap, "n/a");
    } else {
        snprintf(buf, cap, "%.0f", c->rate[impl]);
    }
}

static void fmt_ratio(char *buf, size_t cap, const bench_case *c, int impl)
{
    if (!c->avail[impl]) {
        snprintf(buf, cap, "n/a");
    } else {
        snprintf(buf, cap, "%.2fx", c->ratio[impl]);
    }
}

static void print_rounds(int rounds)
{
    for (size_t k = 0; k < N_CASES; k++) {
        const bench_case *c = &cases[k];
        if (!c->selected) {
            continue;
        }
        for (int i = 0; i < IMPL_COUNT; i++) {
            if (!c->avail[i]) {
                continue;
            }
            printf("%-6s %-12s", c->name, impl_names[i]);
            for (int r = 0; r < rounds; r++) {
                printf(" %.0f", c->rates[i][r]);
            }
            printf("\n");
        }
    }
    printf("\n");
}

static void print_table(void)
{
    printf("%-6s | %10s | %13s | %9s | %9s | %10s | %13s | %12s\n", "alg", "tokend/s", "raw OpenSSL/s", "libjwt/s",
           "cjose/s", "tokend÷raw", "tokend÷libjwt", "tokend÷cjose");
    printf("-------+------------+---------------+-----------+-----------+------------+---------------+-----"
           "---------\n");
    for (size_t k = 0; k < N_CASES; k++) {
        const bench_case *c = &cases[k];
        if (!c->selected) {
            continue;
        }
        char r[IMPL_COUNT][32];
        char q[IMPL_COUNT][32];
        for (int i = 0; i < IMPL_COUNT; i++) {
            fmt_rate(r[i], sizeof r[i], c, i);
            fmt_ratio(q[i], sizeof q[i], c, i);
        }
        /* Same widths as the header: there "÷" takes two bytes but one
         * column, so the header strings fill them exactly. */
        printf("%-6s | %10s | %13s | %9s | %9s | %10s | %13s | %12s\n", c->name, r[IMPL_TOKEND], r[IMPL_RAW],
               r[IMPL_LIBJWT], r[IMPL_CJOSE], q[IMPL_RAW], q[IMPL_LIBJWT], q[IMPL_CJOSE]);
    }
}

static void verdict_line(const bench_case *c, int peer, double want, const char *label)
{
    if (!c->avail[peer]) {
        printf("%-6s tokend >= %5.2fx %-12s: n/a   (%s)\n", c->name, want, label, c->na_why[peer]);
        return;
    }
    double got = c->ratio[peer];
    printf("%-6s tokend >= %5.2fx %-12s: %6.2fx  %s", c->name, want, label, got, got >= want ? "PASS" : "MISS");
    if (peer != IMPL_RAW) {
        /* No verifier beats the bare crypto: this is the most one can get. */
        printf("   (raw OpenSSL itself: %.2fx)", c->raw_ratio[peer]);
    }
    printf("\n");
}

static void print_verdicts(void)
{
    printf("\nTargets (median of per-round paired ratios):\n");
    for (size_t k = 0; k < N_CASES; k++) {
        const bench_case *c = &cases[k];
        if (!c->selected || !c->avail[IMPL_TOKEND]) {
            continue;
        }
        if (c->alg == TK_ALG_HS256) {
            verdict_line(c, IMPL_CJOSE, 1.5, "cjose");
        } else {
            verdict_line(c, IMPL_RAW, 0.90, "raw OpenSSL");
            verdict_line(c, IMPL_LIBJWT, 10.0, "libjwt");
        }
    }
}

static void print_load(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    char buf[128];
    if (f != NULL && fgets(buf, sizeof buf, f) != NULL) {
        buf[strcspn(buf, "\n")] = '\0';
        printf("load average: %s (other work on the machine makes every column noisier)\n", buf);
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: verify [--seconds S] [--rounds N] [--median] [--wall] [--verbose]\n"
            "              [--alg HS256|RS256|PS256|ES256|EdDSA] [--impl tokend|raw|libjwt|cjose]\n"
            "              [--foreign-header]\n"
            "  --seconds S  measured time per algorithm and implementation (default 1.0)\n"
            "  --rounds N   interleaved rounds that time is split into (default 50, max %d)\n"
            "  --median     report the median of the rounds instead of the best\n"
            "  --wall       measure wall-clock time instead of this thread's CPU time\n"
            "  --verbose    print every round's rate\n"
            "  --alg ALG    run only this algorithm\n"
            "  --impl NAME  time only tokend, raw, libjwt or cjose (for profiling)\n"
            "  --foreign-header  sign the at+jwt token with a header written as another issuer\n"
            "               would (same members, other order), not byte-identical to tk_sign's\n",
            MAX_ROUNDS);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    int rounds = 50;
    int verbose = 0;
    const char *only = NULL;
    int only_impl = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--median") == 0) {
            use_median = 1;
            continue;
        }
        if (strcmp(argv[i], "--wall") == 0) {
            bench_clock = CLOCK_MONOTONIC;
            continue;
        }
        if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
            continue;
        }
        if (strcmp(argv[i], "--foreign-header") == 0) {
            foreign_header = 1;
            continue;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--seconds") == 0) {
            char *end = NULL;
            seconds = strtod(argv[++i], &end);
            if (end == NULL || *end != '\0' || !(seconds >= 0.01 && seconds <= 600.0)) {
                fprintf(stderr, "verify: --seconds wants a number in [0.01, 600]\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--rounds") == 0) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (end == NULL || *end != '\0' || n < 1 || n > MAX_ROUNDS) {
                fprintf(stderr, "verify: --rounds wants an integer in [1, %d]\n", MAX_ROUNDS);
                return 2;
            }
            rounds = (int)n;
        } else if (strcmp(argv[i], "--alg") == 0) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--impl") == 0) {
            const char *name = argv[++i];
            for (int k = 0; k < IMPL_COUNT; k++) {
                if (strcmp(name, impl_names[k]) == 0 || (k == IMPL_RAW && strcmp(name, "raw") == 0)) {
                    only_impl = k;
                }
            }
            if (only_impl < 0) {
                fprintf(stderr, "verify: unknown --impl %s (tokend, raw, libjwt, cjose)\n", name);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }

    size_t selected = 0;
    for (size_t k = 0; k < N_CASES; k++) {
        cases[k].selected = only == NULL || strcmp(only, cases[k].name) == 0;
        selected += (size_t)cases[k].selected;
    }
    if (selected == 0) {
        fprintf(stderr, "verify: unknown --alg %s (HS256, RS256, PS256, ES256, EdDSA)\n", only);
        return 2;
    }

    unsigned char payload[1024];
    size_t payload_len = 0;
    make_payload((char *)payload, sizeof payload, &payload_len);

    printf("tokend verify benchmark: tokend %s, %s, libjwt %s, cjose %s, jansson %s\n", TK_VERSION,
           OpenSSL_version(OPENSSL_VERSION), BENCH_LIBJWT_VERSION, CJOSE_VERSION, jansson_version_str());
    printf("token: RFC 9068 access token, 11 claims, %zu-byte payload, header alg/kid/typ \"at+jwt\"%s\n", payload_len,
           foreign_header ? ",\n       header written as a foreign issuer would (--foreign-header)"
                          : " as tk_sign writes it");
    printf("  tokend:      tk_verify, full policy: sig, typ at+jwt, iss, aud, exp/nbf/iat, scope %s\n", BENCH_SCOPE);
    printf("  raw OpenSSL: the crypto alone over the signing input, key parsed once (HS256: one HMAC,\n"
           "               key set once; ES256 includes r||s -> DER; PS256 saltlen = digest length)\n");
    printf("  libjwt:      jwt_decode with the PEM/secret each call, then alg, exp, iss, aud;\n"
           "               same claims but typ \"JWT\" (libjwt 1.x refuses typ \"at+jwt\")\n");
    printf("  cjose:       cjose_jws_import + cjose_jws_verify (JWK built once) + get_plaintext,\n"
           "               jansson parse, then typ, alg, exp, iss, aud\n");
    printf("timing: single thread, %.2f s per cell after a %.2f s warm-up, split into %d interleaved rounds\n"
           "        of %.1f ms per implementation (order rotates each round). Rate columns: the %s round,\n"
           "        in verifications per %s.\n"
           "        Ratio columns and targets: the MEDIAN over rounds of tokend's rate / the peer's rate\n"
           "        in the same round (paired, so the drift of a shared machine cancels out).\n",
           seconds, seconds / 10.0 > 0.2 ? 0.2 : seconds / 10.0, rounds, 1000.0 * seconds / (double)rounds,
           use_median ? "MEDIAN" : "BEST",
           bench_clock == CLOCK_MONOTONIC ? "wall-clock second"
                                          : "second of this thread's CPU time (--wall: wall clock)");
    print_load();

    for (size_t k = 0; k < N_CASES; k++) {
        bench_case *c = &cases[k];
        if (!c->selected) {
            continue;
        }
        setup_case(c, payload, payload_len);
        check_case(c);
        for (int i = 0; only_impl >= 0 && i < IMPL_COUNT; i++) {
            if (i != only_impl && c->avail[i]) {
                c->avail[i] = 0;
                c->na_why[i] = "not run (--impl)";
            }
        }
        printf("%-6s token %zu bytes (libjwt's %zu); every implementation accepts it and rejects a "
               "tampered signature\n",
               c->name, c->token_len, c->token_jwt_len);
        fflush(stdout);
    }
    printf("\n");
    for (size_t k = 0; k < N_CASES; k++) {
        if (cases[k].selected) {
            measure_case(&cases[k], seconds, rounds);
        }
    }
    if (verbose) {
        print_rounds(rounds);
    }
    print_table();
    print_verdicts();
    for (size_t k = 0; k < N_CASES; k++) {
        if (cases[k].selected) {
            free_case(&cases[k]);
        }
    }
    return 0;
}
