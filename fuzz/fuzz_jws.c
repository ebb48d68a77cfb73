/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jws.c — tk_token_parse and tk_verify (src/core/jws.c, claims.c,
 * json.c, crypto.c) on arbitrary bytes, with a fixed key set: HS256, ES256
 * and EdDSA keys (RFC 7515 A.1, A.3 and RFC 8037 A.1, kids "hs", "es",
 * "ed") built once in LLVMFuzzerInitialize, so that seed tokens can carry
 * valid signatures.
 *
 * Two uses of each input:
 *
 * 1. The input is a token. tk_verify (which recognises headers written by
 *    tk_sign without parsing them, and reads simple payloads flat) must give
 *    the same verdict, reason and detail, as the staged tree path:
 *    tk_token_parse, tk_token_verify_signature, tk_token_check_claims.
 *
 * 2. The input is 4 control bytes and a payload (layout below). The payload
 *    is signed twice with the same key: by tk_sign, whose header tk_verify
 *    takes on its fast path, and by tk_sign_with_header with the same
 *    members in reverse order (same length, so every offset in a detail is
 *    the same), which takes the parse path. Under the same policy and the
 *    same, possibly lowered, tk_limits both must give the same reason AND
 *    the same detail text, and both must agree with the staged path of (1).
 *    A copy with one byte of the signing input changed is never VALID.
 *
 * Every verdict keeps the tokend.h contract (known reason, printable ASCII
 * detail, empty exactly when VALID); tk_verify returns an owned token
 * exactly when VALID; results other than TK_OK only for the policy whose
 * leeway is out of range, and then the verdict is UNAVAILABLE.
 *
 * Control bytes (use 2):
 *   c[0] bits 0-1 key (0 hs, 1 es, 2 ed, 3 hs); bits 2-3 typ (none, "JWT",
 *        "at+jwt", "JWT"); bits 4-5 policy (see POLICY below); bit 6 pass
 *        tk_limits built from c[1..3] (else NULL)
 *   c[1] token_len = c[1] * 32 (0 = default)
 *   c[2] header_len = (c[2] & 15) * 8, payload_len = (c[2] >> 4) * 64
 *   c[3] json_depth = c[3] & 7, json_members = c[3] >> 3 (0 = default)
 */
#include "fuzz.h"

#include "core/internal.h"

#define NOW 1700000000

static const char *const JWKS[3] = {
    "{\"kty\":\"oct\",\"kid\":\"hs\",\"alg\":\"HS256\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-"
    "EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}",
    "{\"kty\":\"EC\",\"kid\":\"es\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\"}",
    "{\"kty\":\"OKP\",\"kid\":\"ed\",\"crv\":\"Ed25519\",\"d\":\"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
};
static const char *const KIDS[3] = {"hs", "es", "ed"};

static tk_keyset *KS;
static const tk_key *KEYS[3];

static const char *const ISS[] = {"iss"};
static const char *const AUD[] = {"a", "orders:read"};
static const char *const SCOPE[] = {"orders:read"};
static const char *const REQ[] = {"sub"};

/* POLICY 0: test_json.c's (iss, aud, scope, sub, max_age); 1: only exp
 * optional, nothing else; 2: 0 plus typ "at+jwt"; 3: leeway out of range
 * (the verifier must fail closed). */
static void policy(unsigned which, tk_policy *p)
{
    tk_policy_init(p, NOW);
    if (which == 1) {
        p->require_exp = 0;
        return;
    }
    p->issuers = ISS;
    p->issuers_len = 1;
    p->audiences = AUD;
    p->audiences_len = 2;
    p->scopes = SCOPE;
    p->scopes_len = 1;
    p->required = REQ;
    p->required_len = 1;
    p->max_age = 3600;
    if (which == 2) {
        p->typ = "at+jwt";
    }
    if (which == 3) {
        p->leeway = TK_LIMIT_LEEWAY_MAX + 1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(tk_keyset_new(&KS) == TK_OK, "keyset");
    for (size_t i = 0; i < 3; i++) {
        tk_key *k = NULL;
        tk_result rc = tk_key_from_jwk(JWKS[i], strlen(JWKS[i]), TK_ALG_UNSET, &k);
        FUZZ_CHECK(rc == TK_OK, "key %s: %s", KIDS[i], tk_result_str(rc));
        FUZZ_CHECK(tk_keyset_add(KS, k) == TK_OK, "add %s", KIDS[i]);
        KEYS[i] = tk_keyset_find(KS, KIDS[i], strlen(KIDS[i]));
        FUZZ_CHECK(KEYS[i] != NULL && tk_key_can_sign(KEYS[i]), "find %s", KIDS[i]);
    }
    FUZZ_CHECK(tk_keyset_add_retired_kid(KS, "old") == TK_OK, "retired kid");
    return 0;
}

/* The staged tree path, verdict for verdict in tk_verify's order. Returns
 * the result tk_verify must return. */
static tk_result staged(const char *p, size_t n, const tk_policy *pol, const tk_limits *lim, tk_verdict *v)
{
    tk_token *t = NULL;
    tk_result rc = tk_token_parse(p, n, lim, &t, v);
    FUZZ_CHECK(rc == TK_OK, "tk_token_parse: %s", tk_result_str(rc));
    fuzz_check_verdict(v, "tk_token_parse");
    if (t == NULL) {
        return TK_OK; /* not a JWS: *v says why */
    }
    fuzz_check_verdict(tk_token_header_verdict(t), "header verdict");
    fuzz_check_verdict(tk_token_payload_verdict(t), "payload verdict");
    /* Tools read these whatever the verdict; they must not crash. */
    char *hj = NULL;
    char *pj = NULL;
    rc = tk_token_header_json(t, 1, &hj);
    FUZZ_CHECK(rc == TK_OK, "tk_token_header_json: %s", tk_result_str(rc));
    rc = tk_token_payload_json(t, 0, &pj);
    FUZZ_CHECK(rc == TK_OK, "tk_token_payload_json: %s", tk_result_str(rc));
    tk_free(hj);
    tk_free(pj);
    (void)tk_token_alg(t);
    (void)tk_token_kid(t);
    (void)tk_token_typ(t);
    (void)tk_token_claim_string(t, "sub");
    double d = 0;
    (void)tk_token_claim_number(t, "exp", &d);

    *v = *tk_token_header_verdict(t);
    if (v->reason == TK_REASON_VALID) {
        rc = tk_token_verify_signature(t, KS, v);
        if (rc == TK_OK && v->reason == TK_REASON_VALID) {
            *v = *tk_token_payload_verdict(t);
            if (v->reason == TK_REASON_VALID) {
                tk_verdict cv[4];
                size_t nc = 0;
                rc = tk_token_check_claims(t, pol, cv, 4, &nc);
                if (rc == TK_OK && nc > 0) {
                    *v = cv[0];
                }
                for (size_t i = 0; i < nc && i < 4; i++) {
                    fuzz_check_verdict(&cv[i], "claims problem");
                }
            }
        }
    }
    tk_token_free(t);
    return rc;
}

/* tk_verify on p with the contract checks; the verdict in *v. */
static tk_result verify(const char *what, const char *p, size_t n, const tk_policy *pol, const tk_limits *lim,
                        tk_verdict *v)
{
    tk_token *t = NULL;
    tk_result rc = tk_verify(p, n, KS, pol, lim, v, &t);
    fuzz_check_verdict(v, what);
    FUZZ_CHECK((t != NULL) == (v->reason == TK_REASON_VALID && rc == TK_OK), "%s: token returned with %s", what,
               tk_reason_code(v->reason));
    FUZZ_CHECK(rc == TK_OK || (rc == TK_ERR_ARG && pol->leeway > TK_LIMIT_LEEWAY_MAX), "%s: tk_verify returned %s",
               what, tk_result_str(rc));
    FUZZ_CHECK(rc == TK_OK || v->reason == TK_REASON_UNAVAILABLE, "%s: %s with %s", what, tk_result_str(rc),
               tk_reason_code(v->reason));
    if (t != NULL) {
        (void)tk_token_claim_string(t, "iss");
        tk_token_free(t);
    }
    return rc;
}

/* tk_verify's answer (rc, *v) against the staged tree path on p. */
static void check_staged(const char *what, const char *p, size_t n, const tk_policy *pol, const tk_limits *lim,
                         tk_result rc, const tk_verdict *v)
{
    tk_verdict sv;
    tk_result src = staged(p, n, pol, lim, &sv);
    FUZZ_CHECK(src == rc, "%s: tk_verify returned %s, the staged path %s", what, tk_result_str(rc), tk_result_str(src));
    if (rc == TK_OK) {
        FUZZ_CHECK(sv.reason == v->reason && strcmp(sv.detail, v->detail) == 0,
                   "%s: tk_verify says %s \"%s\", the staged tree path (tk_token_parse, tk_token_verify_signature, "
                   "tk_token_check_claims) %s \"%s\"",
                   what, tk_reason_code(v->reason), v->detail, tk_reason_code(sv.reason), sv.detail);
    }
}

/* Use 2: one payload, a fast-path header and a parse-path header. */
static void differential(const uint8_t *c, const unsigned char *payload, size_t n)
{
    static const char *const typs[4] = {NULL, "JWT", "at+jwt", "JWT"};
    size_t ki = (c[0] & 3u) == 3 ? 0 : (c[0] & 3u);
    size_t ti = (c[0] >> 2) & 3u;
    size_t ci = ti == 3 ? 1 : ti; /* which of the key's cached headers */
    const tk_key *k = KEYS[ki];
    const char *typ = typs[ti];
    tk_policy pol;
    policy((c[0] >> 4) & 3u, &pol);
    tk_limits lim;
    const tk_limits *limp = NULL;
    if (c[0] & 0x40u) {
        tk_limits_default(&lim);
        lim.token_len = (size_t)c[1] * 32;
        lim.header_len = (size_t)(c[2] & 15u) * 8;
        lim.payload_len = (size_t)(c[2] >> 4) * 64;
        lim.json_depth = c[3] & 7u;
        lim.json_members = c[3] >> 3;
        limp = &lim;
    }

    char *fast = NULL;
    size_t fast_len = 0;
    tk_result rc = tk_sign(k, typ, payload, n, &fast, &fast_len);
    FUZZ_CHECK(rc == TK_OK, "tk_sign: %s", tk_result_str(rc));
    /* The same members, reversed: {"typ":..,"kid":..,"alg":..}. */
    char hdr[128];
    int hl = typ ? snprintf(hdr, sizeof hdr, "{\"typ\":\"%s\",\"kid\":\"%s\",\"alg\":\"%s\"}", typ, KIDS[ki],
                            tk_alg_name(tk_key_alg(k)))
                 : snprintf(hdr, sizeof hdr, "{\"kid\":\"%s\",\"alg\":\"%s\"}", KIDS[ki], tk_alg_name(tk_key_alg(k)));
    FUZZ_CHECK(hl > 0 && (size_t)hl < sizeof hdr, "header");
    char *slow = NULL;
    size_t slow_len = 0;
    rc = tk_sign_with_header(k, hdr, (size_t)hl, payload, n, &slow, &slow_len);
    FUZZ_CHECK(rc == TK_OK, "tk_sign_with_header: %s", tk_result_str(rc));
    FUZZ_CHECK(fast_len == slow_len, "the reordered header changed the token length: %zu vs %zu", fast_len, slow_len);
    /* The premise: one header is the one the key caches, the other not. */
    const char *dot = memchr(fast, '.', fast_len);
    FUZZ_CHECK(dot != NULL, "no '.' in a signed token");
    size_t h_n = (size_t)(dot - fast);
    FUZZ_CHECK(k->hdr_b64[ci] != NULL && k->hdr_b64_len[ci] == h_n && memcmp(k->hdr_b64[ci], fast, h_n) == 0,
               "tk_sign's header is not the one the key caches for typ %s", typ ? typ : "(none)");
    FUZZ_CHECK(memcmp(fast, slow, h_n) != 0, "the reordered header is the cached one");

    tk_verdict vf;
    tk_verdict vs;
    tk_result rf = verify("fast-path header", fast, fast_len, &pol, limp, &vf);
    tk_result rs = verify("parse-path header", slow, slow_len, &pol, limp, &vs);
    FUZZ_CHECK(rf == rs && vf.reason == vs.reason && strcmp(vf.detail, vs.detail) == 0,
               "same payload, key, policy and limits; the header written by tk_sign gives %s \"%s\", "
               "the same members reordered give %s \"%s\"",
               tk_reason_code(vf.reason), vf.detail, tk_reason_code(vs.reason), vs.detail);
    check_staged("fast-path header", fast, fast_len, &pol, limp, rf, &vf);
    check_staged("parse-path header", slow, slow_len, &pol, limp, rs, &vs);

    /* Tampered: one byte of the signing input changed is never VALID. */
    size_t si = (size_t)((const char *)memchr(dot + 1, '.', fast_len - h_n - 1) - fast);
    size_t at = (n * 7 + c[1]) % si;
    if (fast[at] != '.') {
        char was = fast[at];
        fast[at] = was == 'A' ? 'B' : 'A';
        tk_verdict vt;
        tk_result trc = tk_verify(fast, fast_len, KS, &pol, limp, &vt, NULL);
        FUZZ_CHECK(vt.reason != TK_REASON_VALID, "a token with byte %zu changed (%s) verified (%s)", at,
                   tk_result_str(trc), vt.detail);
        fast[at] = was;
    }
    tk_free(fast);
    tk_free(slow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Use 1: the bytes as a token, in a block of exactly their length. */
    char *p = fuzz_dup(data, size);
    tk_policy pol;
    policy(0, &pol);
    tk_verdict v;
    tk_result rc = verify("input as a token", p, size, &pol, NULL, &v);
    check_staged("input as a token", p, size, &pol, NULL, rc, &v);
    free(p);
    /* Use 2. */
    if (size >= 4) {
        differential(data, data + 4, size - 4);
    }
    return 0;
}
