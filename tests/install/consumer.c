/* SPDX-License-Identifier: Apache-2.0 */
/*
 * consumer.c — a program outside the tree that uses an installed libtokend:
 * the public headers and the library, found by pkg-config
 * (pkgconfig-consumer/Makefile) or by find_package(tokend)
 * (cmake-consumer/CMakeLists.txt); tests/install/test_install.sh builds and
 * runs it both ways.
 *
 * It makes an ES256 key, signs an access token, verifies it against the
 * public key set (VALID), then against a policy for another API (the reason
 * code, wrong_audience, with its detail). Prints what it found; exit 0 only
 * when both verdicts are the expected ones.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tokend/tokend.h>

static int verify(const char *tok, size_t tok_len, const tk_keyset *ks, const char *aud, int64_t now, tk_verdict *v)
{
    const char *iss[] = {"https://auth.example"};
    const char *auds[] = {aud};
    const char *scope[] = {"orders:read"};
    tk_policy pol;
    tk_policy_init(&pol, now);
    pol.issuers = iss;
    pol.issuers_len = 1;
    pol.audiences = auds;
    pol.audiences_len = 1;
    pol.scopes = scope;
    pol.scopes_len = 1;
    pol.typ = "at+jwt";
    return tk_verify(tok, tok_len, ks, &pol, NULL, v, NULL) == TK_OK ? 0 : -1;
}

int main(void)
{
    int rc = 1;
    tk_key *key = NULL;
    tk_keyset *ks = NULL;
    char *pub = NULL;
    char *tok = NULL;
    size_t tok_len = 0;
    char jwks[2048];
    char claims[256];
    int64_t now = (int64_t)time(NULL);
    tk_verdict v;

    if (tk_key_generate(TK_ALG_ES256, "install-test", &key) != TK_OK || tk_key_to_jwk(key, 0, &pub) != TK_OK) {
        fprintf(stderr, "consumer: cannot make a key\n");
        goto out;
    }
    int n = snprintf(jwks, sizeof jwks, "{\"keys\":[%s]}", pub);
    if (n < 0 || (size_t)n >= sizeof jwks || tk_keyset_from_jwks(jwks, (size_t)n, TK_ALG_UNSET, &ks, NULL) != TK_OK) {
        fprintf(stderr, "consumer: cannot load the key set\n");
        goto out;
    }
    n = snprintf(claims, sizeof claims,
                 "{\"iss\":\"https://auth.example\",\"sub\":\"alice\",\"aud\":\"orders-api\","
                 "\"scope\":\"orders:read\",\"iat\":%lld,\"exp\":%lld}",
                 (long long)now, (long long)now + 300);
    if (n < 0 || (size_t)n >= sizeof claims ||
        tk_sign(key, "at+jwt", (const unsigned char *)claims, (size_t)n, &tok, &tok_len) != TK_OK) {
        fprintf(stderr, "consumer: cannot sign\n");
        goto out;
    }
    printf("libtokend %s: signed an ES256 token of %zu bytes\n", TK_VERSION, tok_len);

    if (verify(tok, tok_len, ks, "orders-api", now, &v) != 0 || v.reason != TK_REASON_VALID) {
        fprintf(stderr, "consumer: expected valid, got %s: %s\n", tk_reason_code(v.reason), v.detail);
        goto out;
    }
    printf("orders-api: %s\n", tk_reason_code(v.reason));
    if (verify(tok, tok_len, ks, "billing-api", now, &v) != 0 || v.reason != TK_REASON_WRONG_AUDIENCE) {
        fprintf(stderr, "consumer: expected wrong_audience, got %s: %s\n", tk_reason_code(v.reason), v.detail);
        goto out;
    }
    printf("billing-api: %s (HTTP %d): %s\n", tk_reason_code(v.reason), tk_reason_status(v.reason), v.detail);
    rc = 0;
out:
    tk_free(tok);
    tk_free(pub);
    tk_keyset_free(ks);
    tk_key_free(key);
    return rc;
}
