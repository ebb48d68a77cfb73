/* SPDX-License-Identifier: Apache-2.0 */
/*
 * validate_bearer.c — validates the bearer token of one HTTP request with
 * libtokend, as an API would: the Authorization header value, a key set
 * (JWKS file), and a policy (issuer, audience, scopes). Prints the verdict
 * and, when the token is refused, its reason code, the detail, the HTTP
 * answer an API gives (RFC 6750 §3) and the hint for the caller.
 *
 *   validate_bearer --jwks FILE --iss ISSUER --aud AUDIENCE [--scope SCOPE]...
 *                   [--typ TYP] [--now UNIX_SECONDS] [HEADER_VALUE | -]
 *
 * HEADER_VALUE is the Authorization field value ("Bearer eyJ..."); '-' (the
 * default) reads it from stdin, one line; empty stdin stands for a request
 * without the header. Output, on stdout:
 *
 *   valid sub=alice scope="orders:read"
 *   expired: token expired 3m12s ago at 2026-11-21T09:14:03Z (leeway 60s)
 *   status: 401 WWW-Authenticate: Bearer error="invalid_token"
 *   hint: Get a new access token (refresh it) before it expires; ...
 *
 * Exit status: 0 valid, 1 refused, 2 usage or set-up error (a JWKS that
 * cannot be read or used: then every token would be refused, so say so).
 *
 * Everything here is public API (tokend/tokend.h), linked with -ltokend.
 * The key set and policy are built once and could be shared by any number
 * of threads; a real server would keep them for its whole life.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokend/tokend.h"

#define MAX_SCOPES 16
/* An Authorization line longer than the longest token plus "Bearer " is
 * refused by the parser anyway; read a little more so that it can say so. */
#define HEADER_CAP (TK_LIMIT_TOKEN_LEN + 64)

static void usage(void)
{
    fputs("usage: validate_bearer --jwks FILE --iss ISSUER --aud AUDIENCE [--scope SCOPE]...\n"
          "                       [--typ TYP] [--now UNIX_SECONDS] [HEADER_VALUE | -]\n"
          "  HEADER_VALUE is the Authorization value ('Bearer eyJ...'); '-' reads one line of stdin\n",
          stderr);
}

/* Reads a whole file of at most `max` bytes. Returns an owned buffer or NULL. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f) || n > max;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Prints s as printable ASCII: a claim is the token's text, not ours. */
static void print_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        putchar(*p >= 0x20 && *p < 0x7f && *p != '"' ? *p : '?');
    }
}

int main(int argc, char **argv)
{
    const char *jwks_path = NULL, *iss = NULL, *aud = NULL, *typ = NULL, *header_arg = "-";
    const char *scopes[MAX_SCOPES];
    size_t n_scopes = 0;
    int64_t now = (int64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--jwks") == 0 && val) {
            jwks_path = val;
        } else if (strcmp(a, "--iss") == 0 && val) {
            iss = val;
        } else if (strcmp(a, "--aud") == 0 && val) {
            aud = val;
        } else if (strcmp(a, "--typ") == 0 && val) {
            typ = val;
        } else if (strcmp(a, "--scope") == 0 && val && n_scopes < MAX_SCOPES) {
            scopes[n_scopes++] = val;
        } else if (strcmp(a, "--now") == 0 && val) {
            now = strtoll(val, NULL, 10);
        } else if (a[0] != '-' || strcmp(a, "-") == 0) {
            header_arg = a;
            continue;
        } else {
            usage();
            return 2;
        }
        i++;
    }
    if (!jwks_path || !iss || !aud) {
        usage();
        return 2;
    }

    int rc = 2;
    char *jwks = NULL;
    char *header = NULL;
    tk_keyset *ks = NULL;
    tk_token *tok = NULL;

    /* The key set: a JWKS the operator gave. One unusable signature key
     * refuses the whole set (fail closed): better no start than a verifier
     * that silently trusts fewer keys than configured. */
    size_t jwks_len = 0;
    jwks = read_file(jwks_path, TK_LIMIT_JWK_LEN, &jwks_len);
    if (!jwks) {
        fprintf(stderr, "validate_bearer: cannot read %s (or it is over %u bytes)\n", jwks_path, TK_LIMIT_JWK_LEN);
        goto out;
    }
    size_t skipped = 0;
    tk_result r = tk_keyset_from_jwks(jwks, jwks_len, TK_ALG_UNSET, &ks, &skipped);
    if (r != TK_OK) {
        fprintf(stderr, "validate_bearer: %s is not a usable key set: %s\n", jwks_path, tk_result_str(r));
        goto out;
    }
    if (tk_keyset_count(ks) == 0) {
        fprintf(stderr, "validate_bearer: %s has no signature key (%zu skipped)\n", jwks_path, skipped);
        goto out;
    }

    /* The request's Authorization value; NULL when it had none. */
    const char *value = NULL;
    size_t value_len = 0;
    if (strcmp(header_arg, "-") == 0) {
        header = malloc(HEADER_CAP);
        if (!header) {
            goto out;
        }
        if (fgets(header, HEADER_CAP, stdin)) {
            value_len = strcspn(header, "\r\n");
            value = header;
        }
    } else {
        value = header_arg;
        value_len = strlen(header_arg);
    }

    /* The policy: who may have issued it, for which API, with what scopes. */
    tk_policy pol;
    tk_policy_init(&pol, now);
    const char *issuers[] = {iss};
    const char *audiences[] = {aud};
    pol.issuers = issuers;
    pol.issuers_len = 1;
    pol.audiences = audiences;
    pol.audiences_len = 1;
    pol.scopes = scopes;
    pol.scopes_len = n_scopes;
    pol.typ = typ;

    /* Header, then token: the first problem found is the verdict. */
    tk_verdict v;
    const char *t = NULL;
    size_t t_len = 0;
    r = tk_authz_parse(value, value_len, &t, &t_len, &v);
    if (r == TK_OK && v.reason == TK_REASON_VALID) {
        r = tk_verify(t, t_len, ks, &pol, NULL, &v, &tok);
    }
    if (r != TK_OK) {
        /* The verifier could not decide: that is a refusal too (v says
         * unavailable), never a pass. */
        fprintf(stderr, "validate_bearer: %s\n", tk_result_str(r));
    }
    if (r == TK_OK && v.reason == TK_REASON_VALID) {
        const char *sub = tk_token_claim_string(tok, "sub");
        const char *scope = tk_token_claim_string(tok, "scope");
        fputs("valid sub=", stdout);
        print_safe(sub ? sub : "");
        fputs(" scope=\"", stdout);
        print_safe(scope ? scope : "");
        fputs("\"\n", stdout);
        rc = 0;
        goto out;
    }
    printf("%s: %s\n", tk_reason_code(v.reason), v.detail);
    const char *error = tk_reason_error(v.reason);
    if (error) {
        printf("status: %d WWW-Authenticate: Bearer error=\"%s\"\n", tk_reason_status(v.reason), error);
    } else {
        printf("status: %d WWW-Authenticate: Bearer\n", tk_reason_status(v.reason));
    }
    printf("hint: %s\n", tk_verdict_hint(&v));
    rc = 1;
out:
    tk_token_free(tok);
    tk_keyset_free(ks);
    free(header);
    free(jwks);
    return rc;
}
