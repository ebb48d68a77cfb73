/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_wycheproof.c — Project Wycheproof vectors through tk_key_verify().
 *
 * Every signature/MAC primitive tokend offers is run against the Wycheproof
 * files in TOKEND_VECTORS_DIR/wycheproof (see its README.md): ECDSA P1363
 * (ES256/384/512), Ed25519 (EdDSA), RSASSA-PKCS1-v1_5 (RS*), RSASSA-PSS
 * (PS*) and HMAC (HS*). Only the public API of tokend.h is used; jansson
 * reads the files and the hex is decoded here.
 *
 * A file passes when every `valid` vector verifies and every `invalid` one is
 * rejected (tk_key_verify gives TK_OK with valid == 0, or the group's key is
 * refused at load with TK_ERR_KEY). `acceptable` vectors may go either way;
 * the summary line says which way we went, tcId by tcId.
 *
 * Where JWS (RFC 7515/7518) or SECURITY.md rule 7 is stricter than the bare
 * primitive, a `valid` vector is NOT JWS-valid and must be rejected; such
 * vectors are counted as "skipped" (with the reason) and each one is still
 * checked to be rejected:
 *  - HMAC keys shorter than the hash output are refused by tk_key_from_secret
 *    with TK_ERR_KEY (SECURITY.md rule 7, RFC 7518 §3.2) — "key refused by
 *    policy";
 *  - HMAC tags truncated below the hash output (Wycheproof tagSize < hash
 *    size) are not JWS HS* tags (RFC 7518 §3.2 uses the full output) and must
 *    be rejected (rule 7: exact tag length);
 *  - RSA-PSS groups whose salt length differs from the hash length, whose
 *    MGF is not MGF1 or whose MGF1 hash differs from the message hash are not
 *    JWS PS* (RFC 7518 §3.5) and must be rejected (rule 7: salt pinned);
 *  - RSA keys under 2048 bits are refused at load (rule 7).
 * The per-file numbers are pinned in the table below, so that a truncated or
 * swapped vector file, a silently skipped group or a policy drift fails the
 * test instead of passing quietly. A missing vector file is a failure.
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

/* Failure lines printed per file before the rest are only counted. */
#define MAX_FAILURE_LINES 25

typedef enum wp_family {
    WP_ECDSA,
    WP_EDDSA,
    WP_RSA_PKCS1,
    WP_RSA_PSS,
    WP_HMAC,
} wp_family;

/* One vector file, what it tests, and the numbers we expect from it. */
typedef struct wp_file {
    const char *name;
    wp_family family;
    tk_alg alg;
    const char *sha; /* the group "sha" every group must carry */
    size_t hash_len; /* bytes of the hash output */
    /* Pinned expectations. */
    size_t n_tests;
    size_t valid_accepted;
    size_t invalid_rejected;
    size_t acceptable;
    size_t skip_short_key;  /* valid, HMAC key < hash output: refused at load */
    size_t skip_trunc_tag;  /* valid, HMAC tag truncated: rejected */
    size_t skip_pss_params; /* valid, PSS sLen/MGF not JWS: rejected */
    size_t skip_rsa_small;  /* valid, RSA key < 2048 bits: refused at load */
} wp_file;

static const wp_file wp_files[] = {
    {"ecdsa_secp256r1_sha256_p1363_test.json", WP_ECDSA, TK_ALG_ES256, "SHA-256", 32, 262, 173, 89, 0, 0, 0, 0, 0},
    {"ecdsa_secp384r1_sha384_p1363_test.json", WP_ECDSA, TK_ALG_ES384, "SHA-384", 48, 280, 193, 87, 0, 0, 0, 0, 0},
    {"ecdsa_secp521r1_sha512_p1363_test.json", WP_ECDSA, TK_ALG_ES512, "SHA-512", 64, 318, 231, 87, 0, 0, 0, 0, 0},
    {"ed25519_test.json", WP_EDDSA, TK_ALG_EDDSA, NULL, 0, 151, 88, 63, 0, 0, 0, 0, 0},
    {"rsa_signature_2048_sha256_test.json", WP_RSA_PKCS1, TK_ALG_RS256, "SHA-256", 32, 259, 9, 249, 1, 0, 0, 0, 0},
    {"rsa_signature_2048_sha384_test.json", WP_RSA_PKCS1, TK_ALG_RS384, "SHA-384", 48, 258, 7, 250, 1, 0, 0, 0, 0},
    {"rsa_signature_2048_sha512_test.json", WP_RSA_PKCS1, TK_ALG_RS512, "SHA-512", 64, 259, 8, 250, 1, 0, 0, 0, 0},
    {"rsa_pss_2048_sha256_mgf1_32_test.json", WP_RSA_PSS, TK_ALG_PS256, "SHA-256", 32, 108, 63, 45, 0, 0, 0, 0, 0},
    {"rsa_pss_2048_sha384_mgf1_48_test.json", WP_RSA_PSS, TK_ALG_PS384, "SHA-384", 48, 141, 95, 46, 0, 0, 0, 0, 0},
    {"rsa_pss_4096_sha512_mgf1_64_test.json", WP_RSA_PSS, TK_ALG_PS512, "SHA-512", 64, 179, 132, 47, 0, 0, 0, 0, 0},
    /* HMAC: each file has 6 groups: full key/full tag (27 valid, 54 invalid),
     * full key/half tag (27 + 54, all rejected), short key/full tag (3),
     * short key/half tag (3), 65-byte key/full tag (3), 65-byte key/half
     * tag (3). */
    {"hmac_sha256_test.json", WP_HMAC, TK_ALG_HS256, NULL, 32, 174, 30, 108, 0, 6, 30, 0, 0},
    {"hmac_sha384_test.json", WP_HMAC, TK_ALG_HS384, NULL, 48, 174, 30, 108, 0, 6, 30, 0, 0},
    {"hmac_sha512_test.json", WP_HMAC, TK_ALG_HS512, NULL, 64, 174, 30, 108, 0, 6, 30, 0, 0},
};

/* Why a whole group is outside JWS, and so must be rejected. */
typedef enum wp_policy {
    POL_NONE = 0,
    POL_SHORT_KEY,  /* HMAC key < hash output: tk_key_from_secret refuses */
    POL_TRUNC_TAG,  /* HMAC tag shorter than the hash output */
    POL_PSS_PARAMS, /* PSS salt length or MGF not the JWS ones */
    POL_RSA_SMALL,  /* RSA modulus < 2048 bits: refused at load */
} wp_policy;

typedef struct wp_tally {
    size_t total;
    size_t valid_accepted;
    size_t invalid_rejected;
    size_t acc_accepted;
    size_t acc_rejected;
    size_t skip_short_key;
    size_t skip_trunc_tag;
    size_t skip_pss_params;
    size_t skip_rsa_small;
    size_t failures;
    char acc_notes[2048]; /* "tcId 8 accepted; ..." */
} wp_tally;

/* ------------------------------------------------------------------------ */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes a hex string into a fresh buffer (at least one byte allocated, so
 * an empty input still gives a non-NULL pointer). Fails the test on bad hex. */
static unsigned char *hex_decode(const char *hex, size_t *out_len)
{
    size_t n = strlen(hex);
    assert_true(n % 2 == 0);
    unsigned char *buf = malloc(n / 2 + 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_val(hex[2 * i]);
        int lo = hex_val(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        buf[i] = (unsigned char)((hi << 4) | lo);
    }
    *out_len = n / 2;
    return buf;
}

static const char *obj_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_int_t obj_int(const json_t *o, const char *key, json_int_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *policy_name(wp_policy p)
{
    switch (p) {
    case POL_SHORT_KEY:
        return "HMAC key shorter than the hash output (SECURITY.md rule 7)";
    case POL_TRUNC_TAG:
        return "truncated HMAC tag (not a JWS tag)";
    case POL_PSS_PARAMS:
        return "PSS salt length / MGF not JWS";
    case POL_RSA_SMALL:
        return "RSA key under 2048 bits";
    case POL_NONE:
        break;
    }
    return "none";
}

static void record_failure(wp_tally *t, const char *file, json_int_t tc_id, const char *comment, const char *what)
{
    t->failures++;
    if (t->failures <= MAX_FAILURE_LINES) {
        printf("FAIL %s tcId %lld (%s): %s\n", file, (long long)tc_id, comment ? comment : "", what);
    }
}

static void append_note(wp_tally *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append_note(wp_tally *t, const char *fmt, ...)
{
    size_t used = strlen(t->acc_notes);
    if (used + 1 >= sizeof t->acc_notes) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(t->acc_notes + used, sizeof t->acc_notes - used, fmt, ap);
    va_end(ap);
}

/* The group-level policy decision for the asymmetric families. */
static wp_policy group_policy(const wp_file *f, const json_t *g)
{
    if (f->family == WP_RSA_PSS) {
        const char *sha = obj_str(g, "sha");
        const char *mgf = obj_str(g, "mgf");
        const char *mgf_sha = obj_str(g, "mgfSha");
        json_int_t slen = obj_int(g, "sLen", -1);
        if (mgf == NULL || strcmp(mgf, "MGF1") != 0 || mgf_sha == NULL || sha == NULL || strcmp(mgf_sha, sha) != 0 ||
            slen != (json_int_t)f->hash_len) {
            return POL_PSS_PARAMS;
        }
    }
    if (f->family == WP_RSA_PKCS1 || f->family == WP_RSA_PSS) {
        if (obj_int(g, "keySize", 0) < TK_LIMIT_RSA_MIN_BITS) {
            return POL_RSA_SMALL;
        }
    }
    return POL_NONE;
}

/*
 * Loads the group's public key: JWK when the group has one (publicKeyJwk, or
 * keyJwk in the PKCS#1 files), else the SPKI PEM. The alg is always passed
 * explicitly. When both forms exist, the PEM is loaded too and must give the
 * same RFC 7638 thumbprint (cross-checks the two loaders).
 */
static tk_result load_group_key(const wp_file *f, const json_t *g, tk_key **out, wp_tally *t)
{
    const json_t *jwk = json_object_get(g, "publicKeyJwk");
    if (!json_is_object(jwk)) {
        jwk = json_object_get(g, "keyJwk");
    }
    const char *pem = obj_str(g, "publicKeyPem");
    tk_result r;
    *out = NULL;
    if (json_is_object(jwk)) {
        char *txt = json_dumps(jwk, JSON_COMPACT);
        assert_non_null(txt);
        r = tk_key_from_jwk(txt, strlen(txt), f->alg, out);
        free(txt);
        if (r == TK_OK && pem != NULL) {
            tk_key *pk = NULL;
            tk_result rp = tk_key_from_pem(pem, strlen(pem), f->alg, NULL, &pk);
            char tp1[64] = {0};
            char tp2[64] = {0};
            if (rp != TK_OK) {
                record_failure(t, f->name, -1, "group key", "JWK loads but the same key as PEM does not");
            } else if (tk_key_thumbprint(*out, tp1, sizeof tp1) != TK_OK ||
                       tk_key_thumbprint(pk, tp2, sizeof tp2) != TK_OK || strcmp(tp1, tp2) != 0) {
                record_failure(t, f->name, -1, "group key", "JWK and PEM forms give different thumbprints");
            }
            tk_key_free(pk);
        }
    } else {
        assert_non_null(pem);
        r = tk_key_from_pem(pem, strlen(pem), f->alg, NULL, out);
    }
    if (r == TK_OK) {
        assert_non_null(*out);
        assert_int_equal(tk_key_alg(*out), f->alg);
    } else {
        assert_null(*out);
    }
    return r;
}

/*
 * Judges one vector: `accepted` is 1 when tk_key_verify said valid, `pol` the
 * reason, if any, why the vector's group is outside JWS.
 */
static void judge(const wp_file *f, wp_tally *t, const json_t *tc, wp_policy pol, int accepted)
{
    json_int_t tc_id = obj_int(tc, "tcId", -1);
    const char *comment = obj_str(tc, "comment");
    const char *result = obj_str(tc, "result");
    char what[160];
    assert_non_null(result);
    t->total++;

    if (strcmp(result, "acceptable") == 0) {
        if (accepted) {
            t->acc_accepted++;
        } else {
            t->acc_rejected++;
        }
        append_note(t, "%stcId %lld (%s) %s", t->acc_notes[0] ? "; " : "", (long long)tc_id, comment ? comment : "",
                    accepted ? "accepted" : "rejected");
        if (pol != POL_NONE && accepted) {
            (void)snprintf(what, sizeof what, "acceptable vector accepted although %s", policy_name(pol));
            record_failure(t, f->name, tc_id, comment, what);
        }
        return;
    }
    if (strcmp(result, "invalid") == 0) {
        if (accepted) {
            record_failure(t, f->name, tc_id, comment, "invalid vector ACCEPTED");
        } else {
            t->invalid_rejected++;
        }
        return;
    }
    assert_string_equal(result, "valid");
    if (pol == POL_NONE) {
        if (accepted) {
            t->valid_accepted++;
        } else {
            record_failure(t, f->name, tc_id, comment, "valid vector REJECTED");
        }
        return;
    }
    /* A valid primitive vector that JWS or our policy does not allow. */
    if (accepted) {
        (void)snprintf(what, sizeof what, "valid vector accepted although it must be rejected: %s", policy_name(pol));
        record_failure(t, f->name, tc_id, comment, what);
        return;
    }
    switch (pol) {
    case POL_SHORT_KEY:
        t->skip_short_key++;
        break;
    case POL_TRUNC_TAG:
        t->skip_trunc_tag++;
        break;
    case POL_PSS_PARAMS:
        t->skip_pss_params++;
        break;
    case POL_RSA_SMALL:
        t->skip_rsa_small++;
        break;
    case POL_NONE:
        break;
    }
}

/* Runs tk_key_verify on one vector; returns 1 when accepted. Any result other
 * than TK_OK is a contract violation (tokend.h: "TK_OK with *valid == 0 for
 * every malformed signature") and is recorded, then treated as a rejection. */
static int run_verify(const wp_file *f, wp_tally *t, const tk_key *k, const json_t *tc, const char *sig_field)
{
    const char *msg_hex = obj_str(tc, "msg");
    const char *sig_hex = obj_str(tc, sig_field);
    assert_non_null(msg_hex);
    assert_non_null(sig_hex);
    size_t msg_len = 0;
    size_t sig_len = 0;
    unsigned char *msg = hex_decode(msg_hex, &msg_len);
    unsigned char *sig = hex_decode(sig_hex, &sig_len);
    int valid = -1;
    tk_result r = tk_key_verify(k, msg, msg_len, sig, sig_len, &valid);
    free(msg);
    free(sig);
    if (r != TK_OK) {
        char what[160];
        (void)snprintf(what, sizeof what, "tk_key_verify returned %s (sig_len %zu), expected TK_OK with valid 0/1",
                       tk_result_str(r), sig_len);
        record_failure(t, f->name, obj_int(tc, "tcId", -1), obj_str(tc, "comment"), what);
        return 0;
    }
    if (valid != 0 && valid != 1) {
        record_failure(t, f->name, obj_int(tc, "tcId", -1), obj_str(tc, "comment"),
                       "tk_key_verify returned TK_OK but *valid is neither 0 nor 1");
        return 0;
    }
    return valid;
}

/* An asymmetric group: one key for all its tests. */
static void run_key_group(const wp_file *f, wp_tally *t, const json_t *g)
{
    const json_t *tests = json_object_get(g, "tests");
    assert_true(json_is_array(tests));
    if (f->sha != NULL) {
        const char *sha = obj_str(g, "sha");
        assert_non_null(sha);
        assert_string_equal(sha, f->sha);
    }
    wp_policy pol = group_policy(f, g);
    tk_key *k = NULL;
    tk_result r = load_group_key(f, g, &k, t);
    size_t i;
    const json_t *tc;

    if (r != TK_OK) {
        /* Refused at load: fine for the RSA size policy and for groups with
         * only invalid vectors (a bad key); a valid vector is a failure. */
        if (pol == POL_RSA_SMALL && r != TK_ERR_KEY) {
            char what[160];
            (void)snprintf(what, sizeof what, "small RSA key refused with %s, expected TK_ERR_KEY", tk_result_str(r));
            record_failure(t, f->name, -1, "group key", what);
        }
        json_array_foreach (tests, i, tc) {
            const char *result = obj_str(tc, "result");
            if (pol == POL_NONE && result != NULL && strcmp(result, "valid") == 0) {
                char what[200];
                (void)snprintf(what, sizeof what, "group key refused (%s), so a valid vector is rejected",
                               tk_result_str(r));
                record_failure(t, f->name, obj_int(tc, "tcId", -1), obj_str(tc, "comment"), what);
                t->total++;
                continue;
            }
            if (r != TK_ERR_KEY && result != NULL && strcmp(result, "invalid") == 0) {
                /* A bad key must be refused as TK_ERR_KEY, not another error. */
                char what[160];
                (void)snprintf(what, sizeof what, "group key refused with %s, expected TK_ERR_KEY", tk_result_str(r));
                record_failure(t, f->name, obj_int(tc, "tcId", -1), obj_str(tc, "comment"), what);
                t->total++;
                continue;
            }
            judge(f, t, tc, pol, 0);
        }
        return;
    }
    if (pol == POL_RSA_SMALL) {
        record_failure(t, f->name, -1, "group key", "RSA key under 2048 bits was loaded (rule 7 says refuse)");
    }
    json_array_foreach (tests, i, tc) {
        int accepted = run_verify(f, t, k, tc, "sig");
        judge(f, t, tc, pol, accepted);
    }
    tk_key_free(k);
}

/* An HMAC group: every test carries its own key. */
static void run_hmac_group(const wp_file *f, wp_tally *t, const json_t *g)
{
    const json_t *tests = json_object_get(g, "tests");
    assert_true(json_is_array(tests));
    json_int_t tag_bits = obj_int(g, "tagSize", -1);
    size_t i;
    const json_t *tc;

    json_array_foreach (tests, i, tc) {
        const char *key_hex = obj_str(tc, "key");
        assert_non_null(key_hex);
        size_t key_len = 0;
        unsigned char *key = hex_decode(key_hex, &key_len);
        wp_policy pol = POL_NONE;
        if (key_len < f->hash_len) {
            pol = POL_SHORT_KEY;
        } else if (tag_bits != (json_int_t)(f->hash_len * 8)) {
            pol = POL_TRUNC_TAG;
        }
        tk_key *k = NULL;
        tk_result r = tk_key_from_secret(key, key_len, f->alg, NULL, &k);
        free(key);
        if (pol == POL_SHORT_KEY) {
            /* The key must be refused; the vector is then rejected. */
            if (r != TK_ERR_KEY) {
                char what[200];
                (void)snprintf(what, sizeof what,
                               "HMAC key of %zu bytes (< %zu) gave %s, expected TK_ERR_KEY (SECURITY.md rule 7)",
                               key_len, f->hash_len, tk_result_str(r));
                record_failure(t, f->name, obj_int(tc, "tcId", -1), obj_str(tc, "comment"), what);
                tk_key_free(k);
                t->total++;
                continue;
            }
            assert_null(k);
            judge(f, t, tc, pol, 0);
            continue;
        }
        if (r != TK_OK) {
            char what[160];
            (void)snprintf(what, sizeof what, "HMAC key of %zu bytes refused with %s", key_len, tk_result_str(r));
            record_failure(t, f->name, obj_int(tc, "tcId", -1), obj_str(tc, "comment"), what);
            t->total++;
            continue;
        }
        assert_int_equal(tk_key_alg(k), f->alg);
        int accepted = run_verify(f, t, k, tc, "tag");
        judge(f, t, tc, pol, accepted);
        tk_key_free(k);
    }
}

static void run_file(void **state)
{
    const wp_file *f = *state;
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/wycheproof/%s", TOKEND_VECTORS_DIR, f->name);
    assert_true(n > 0 && (size_t)n < sizeof path);

    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (root == NULL) {
        /* A missing or unreadable vector file is a failure, never a skip. */
        fail_msg("cannot load vector file %s: %s (line %d)", path, err.text, err.line);
    }
    const json_t *groups = json_object_get(root, "testGroups");
    assert_true(json_is_array(groups));
    json_int_t declared = obj_int(root, "numberOfTests", -1);

    wp_tally *t = calloc(1, sizeof *t);
    assert_non_null(t);
    size_t gi;
    const json_t *g;
    json_array_foreach (groups, gi, g) {
        if (f->family == WP_HMAC) {
            run_hmac_group(f, t, g);
        } else {
            run_key_group(f, t, g);
        }
    }

    size_t skipped = t->skip_short_key + t->skip_trunc_tag + t->skip_pss_params + t->skip_rsa_small;
    printf("wycheproof %s (%s): %zu vectors: %zu valid accepted, %zu invalid rejected, "
           "%zu acceptable (accepted %zu / rejected %zu), %zu skipped",
           f->name, tk_alg_name(f->alg), t->total, t->valid_accepted, t->invalid_rejected,
           t->acc_accepted + t->acc_rejected, t->acc_accepted, t->acc_rejected, skipped);
    if (skipped != 0) {
        const char *sep = "";
        printf(" (valid primitive vectors that are not JWS-valid, each confirmed rejected: ");
        if (t->skip_short_key != 0) {
            printf("%s%zu key refused by policy [HMAC key < hash output, SECURITY.md rule 7]", sep, t->skip_short_key);
            sep = "; ";
        }
        if (t->skip_trunc_tag != 0) {
            printf("%s%zu truncated tag [JWS HS* uses the full HMAC output]", sep, t->skip_trunc_tag);
            sep = "; ";
        }
        if (t->skip_pss_params != 0) {
            printf("%s%zu PSS sLen/MGF not the JWS ones", sep, t->skip_pss_params);
            sep = "; ";
        }
        if (t->skip_rsa_small != 0) {
            printf("%s%zu RSA key < 2048 bits refused", sep, t->skip_rsa_small);
        }
        printf(")");
    }
    printf(", %zu failures\n", t->failures);
    if (t->acc_notes[0] != '\0') {
        printf("  acceptable: %s\n", t->acc_notes);
    }

    size_t failures = t->failures;
    wp_tally got = *t;
    free(t);
    json_decref(root);

    assert_int_equal(failures, 0);
    /* Every vector was judged, and the numbers are the pinned ones. */
    assert_int_equal(got.total, (size_t)declared);
    assert_int_equal(got.total, f->n_tests);
    assert_int_equal(got.valid_accepted, f->valid_accepted);
    assert_int_equal(got.invalid_rejected, f->invalid_rejected);
    assert_int_equal(got.acc_accepted + got.acc_rejected, f->acceptable);
    assert_int_equal(got.skip_short_key, f->skip_short_key);
    assert_int_equal(got.skip_trunc_tag, f->skip_trunc_tag);
    assert_int_equal(got.skip_pss_params, f->skip_pss_params);
    assert_int_equal(got.skip_rsa_small, f->skip_rsa_small);
}

/* Sanity of the policy itself, independent of the vector files: an HMAC key
 * one byte short of the hash output is refused, one of exactly the hash
 * output is accepted, and a tag one byte short is rejected. */
static void test_hmac_policy_edges(void **state)
{
    (void)state;
    static const struct {
        tk_alg alg;
        size_t hash_len;
    } cases[] = {{TK_ALG_HS256, 32}, {TK_ALG_HS384, 48}, {TK_ALG_HS512, 64}};
    unsigned char secret[64];
    memset(secret, 0x5a, sizeof secret);
    static const unsigned char msg[] = "eyJhbGciOiJIUzI1NiJ9.e30";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tk_key *k = NULL;
        assert_int_equal(tk_key_from_secret(secret, cases[i].hash_len - 1, cases[i].alg, NULL, &k), TK_ERR_KEY);
        assert_null(k);
        assert_int_equal(tk_key_from_secret(secret, cases[i].hash_len, cases[i].alg, NULL, &k), TK_OK);
        assert_non_null(k);
        unsigned char *tag = NULL;
        size_t tag_len = 0;
        assert_int_equal(tk_key_sign(k, msg, sizeof msg - 1, &tag, &tag_len), TK_OK);
        assert_int_equal(tag_len, cases[i].hash_len);
        int valid = -1;
        assert_int_equal(tk_key_verify(k, msg, sizeof msg - 1, tag, tag_len, &valid), TK_OK);
        assert_int_equal(valid, 1);
        valid = -1;
        assert_int_equal(tk_key_verify(k, msg, sizeof msg - 1, tag, tag_len - 1, &valid), TK_OK);
        assert_int_equal(valid, 0);
        valid = -1;
        assert_int_equal(tk_key_verify(k, msg, sizeof msg - 1, tag, 0, &valid), TK_OK);
        assert_int_equal(valid, 0);
        tk_free(tag);
        tk_key_free(k);
    }
}

int main(void)
{
    /* One cmocka test per vector file, so a failure names the file. */
    static struct CMUnitTest tests[sizeof wp_files / sizeof wp_files[0] + 1];
    size_t n = 0;
    for (size_t i = 0; i < sizeof wp_files / sizeof wp_files[0]; i++) {
        struct CMUnitTest t = cmocka_unit_test_prestate(run_file, (void *)(uintptr_t)&wp_files[i]);
        t.name = wp_files[i].name;
        tests[n++] = t;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hmac_policy_edges);
    return _cmocka_run_group_tests("wycheproof", tests, n, NULL, NULL);
}
