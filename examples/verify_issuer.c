/* SPDX-License-Identifier: Apache-2.0 */
/*
 * verify_issuer.c — validates the bearer tokens of one trusted external
 * issuer (Auth0, Okta, Entra ID, Keycloak, Google, ...) with libtokend's
 * key-set cache (tokend/keycache.h) and libtokend_fetch (tokend/fetch.h).
 *
 *   verify_issuer ISSUER_URL [--ca-file FILE] [--aud AUD] [--jwks-uri URL] [--status]
 *
 * Reads tokens from stdin, one per line, and prints one line for each:
 * "valid sub=<sub>" or "<reason code>: <detail>". The issuer's key set is
 * found through its metadata (<issuer>/.well-known/openid-configuration,
 * or the RFC 8414 address), fetched on first use, refreshed ahead of its
 * expiry and refetched when a token names a kid the set does not have
 * (once per cool-down). There are no threads here: the cache fetches on
 * the calling thread (inline_fetch = 1, wait_ms = 0), and
 * tk_keycache_maintain runs before each token to make the refreshes that
 * are due. A server would run tk_keycache_maintain on a thread of its own
 * instead (examples/README.md).
 *
 * --ca-file adds PEM CA certificates to the system's (a private CA);
 * --aud requires that audience (without it, any audience of the issuer is
 * accepted: say which API the tokens are for); --jwks-uri skips discovery;
 * --status prints what the cache knows of the issuer to stderr after each
 * token.
 *
 * Exit status: 0 when every token was valid, 1 when one was not, 2 on a
 * usage or set-up error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokend/fetch.h"
#include "tokend/keycache.h"

/* A line longer than the longest token tokend reads is refused unread. */
#define LINE_CAP (TK_LIMIT_TOKEN_LEN + 2)

static void usage(void)
{
    fprintf(stderr, "usage: verify_issuer ISSUER_URL [--ca-file FILE] [--aud AUD] [--jwks-uri URL] [--status]\n"
                    "  reads tokens from stdin, one per line; prints \"valid sub=...\" or \"<reason>: <detail>\"\n");
}

/* The cache's operator messages: fetch failures, recoveries, skipped keys. */
static void on_log(void *ud, const char *level, const char *msg)
{
    (void)ud;
    fprintf(stderr, "verify_issuer: %s: %s\n", level, msg);
}

/* Prints s as printable ASCII (a claim is the issuer's text, not ours). */
static void print_safe(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        fputc(*p >= 0x20 && *p < 0x7f ? *p : '?', f);
    }
}

static void print_status(tk_keycache *c, const char *issuer, int64_t now)
{
    tk_keycache_status st;
    if (!tk_keycache_status_get(c, issuer, now, &st)) {
        return;
    }
    fprintf(stderr,
            "status: keys=%zu skipped=%zu fetched_at=%lld ttl=%lld expires_in=%lld stale_until=%lld "
            "fetch_ok=%llu fetch_failed=%llu kid_refetches=%llu jwks_uri=%s",
            st.keys, st.skipped, (long long)st.fetched_at, (long long)(st.expires_at - st.fetched_at),
            (long long)(st.expires_at - now), (long long)st.stale_until, (unsigned long long)st.fetch_ok,
            (unsigned long long)st.fetch_failed, (unsigned long long)st.kid_refetches,
            st.jwks_uri[0] ? st.jwks_uri : "-");
    if (st.last_error[0]) {
        fprintf(stderr, " last_error=%s", st.last_error);
    }
    if (st.skipped) {
        fprintf(stderr, " skipped_why=%s", st.skipped_why);
    }
    fputc('\n', stderr);
}

/* Reads one line into buf (cap bytes) without its line end. Returns its
 * length, -1 at the end of input, or -2 for a line longer than cap - 2
 * (read to its end and dropped). */
static long read_line(FILE *in, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, in)) {
        return -1;
    }
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] != '\n' && !feof(in)) {
        int ch;
        do {
            ch = fgetc(in);
        } while (ch != '\n' && ch != EOF);
        return -2;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
    return (long)n;
}

int main(int argc, char **argv)
{
    const char *issuer = NULL;
    const char *ca_file = NULL;
    const char *aud = NULL;
    const char *jwks_uri = NULL;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ca-file") == 0 && i + 1 < argc) {
            ca_file = argv[++i];
        } else if (strcmp(argv[i], "--aud") == 0 && i + 1 < argc) {
            aud = argv[++i];
        } else if (strcmp(argv[i], "--jwks-uri") == 0 && i + 1 < argc) {
            jwks_uri = argv[++i];
        } else if (strcmp(argv[i], "--status") == 0) {
            status = 1;
        } else if (argv[i][0] != '-' && !issuer) {
            issuer = argv[i];
        } else {
            usage();
            return 2;
        }
    }
    if (!issuer) {
        usage();
        return 2;
    }
    if (!aud) {
        fprintf(stderr, "verify_issuer: no --aud: tokens of %s for any audience are accepted\n", issuer);
    }
    if (tk_fetch_global_init() != 0) {
        fprintf(stderr, "verify_issuer: libcurl could not be initialised\n");
        return 2;
    }

    int rc = 2;
    tk_keycache *cache = NULL;
    char *line = NULL;
    tk_fetch_options fo;
    tk_fetch_options_defaults(&fo);
    fo.ca_file = ca_file;

    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = tk_fetch_https;
    cfg.fetch_ud = &fo;
    cfg.inline_fetch = 1; /* no maintainer thread: fetch on this one */
    cfg.wait_ms = 0;
    cfg.log = on_log;
    tk_result r = tk_keycache_new(&cfg, &cache);
    if (r != TK_OK) {
        fprintf(stderr, "verify_issuer: %s\n", tk_result_str(r));
        goto out;
    }
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = issuer;
    ic.jwks_uri = jwks_uri;
    r = tk_keycache_add_issuer(cache, &ic);
    if (r != TK_OK) {
        fprintf(stderr, "verify_issuer: %s: %s (the issuer and --jwks-uri must be https:// URLs)\n", issuer,
                tk_result_str(r));
        goto out;
    }
    line = malloc(LINE_CAP);
    if (!line) {
        fprintf(stderr, "verify_issuer: out of memory\n");
        goto out;
    }

    rc = 0;
    long n;
    while ((n = read_line(stdin, line, LINE_CAP)) != -1) {
        if (n == 0) {
            continue;
        }
        int64_t now = (int64_t)time(NULL);
        /* The refreshes that are due (first fetch, refresh ahead, retries). */
        (void)tk_keycache_maintain(cache, now);
        if (n == -2) {
            printf("%s: the line is longer than %u bytes, the most a token may have\n",
                   tk_reason_code(TK_REASON_MALFORMED_TOKEN), (unsigned)TK_LIMIT_TOKEN_LEN);
            rc = 1;
            fflush(stdout);
            continue;
        }
        tk_policy pol;
        tk_policy_init(&pol, now);
        const char *issuers[] = {issuer};
        pol.issuers = issuers;
        pol.issuers_len = 1;
        const char *audiences[] = {aud};
        if (aud) {
            pol.audiences = audiences;
            pol.audiences_len = 1;
        }
        tk_verdict v;
        tk_token *t = NULL;
        r = tk_keycache_verify(cache, issuer, line, (size_t)n, &pol, NULL, now, &v, &t);
        if (r != TK_OK) {
            /* a program error (out of memory): no verdict on the token */
            printf("%s: %s\n", tk_reason_code(TK_REASON_UNAVAILABLE), tk_result_str(r));
            rc = 1;
        } else if (v.reason == TK_REASON_VALID) {
            const char *sub = tk_token_claim_string(t, "sub");
            fputs("valid sub=", stdout);
            print_safe(stdout, sub ? sub : "(none)");
            fputc('\n', stdout);
        } else {
            printf("%s: %s\n", tk_reason_code(v.reason), v.detail);
            rc = 1;
        }
        tk_token_free(t);
        fflush(stdout);
        if (status) {
            print_status(cache, issuer, now);
        }
    }
out:
    free(line);
    tk_keycache_free(cache);
    tk_fetch_global_cleanup();
    return rc;
}
