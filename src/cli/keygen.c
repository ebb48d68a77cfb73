/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keygen.c — `tokend keygen`: a new signing key as a private JWK file
 * (created 0600, never overwritten without --force) and its public JWKS on
 * stdout, ready to publish.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/settings.h"

static void help(FILE *f)
{
    fputs("Usage: tokend keygen --alg ALG [--kid KID] [--out FILE] [--force]\n"
          "\n"
          "Generates a signing key. The private key is written as a JWK to FILE\n"
          "(mode 0600; default ./<kid>.jwk); the public key set (JWKS) is printed\n"
          "on stdout. HMAC secrets (HS*) have no public part: stdout gets {\"keys\":[]}.\n"
          "\n"
          "  --alg ALG     HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512\n"
          "                ES256 ES384 ES512 EdDSA  (ES256 or EdDSA recommended)\n"
          "  --kid KID     key id (default: the RFC 7638 thumbprint; random for HS*)\n"
          "  --out FILE    where to write the private JWK\n"
          "  --force       overwrite FILE if it exists\n"
          "\n"
          "Examples:\n"
          "  tokend keygen --alg ES256 --kid 2026-11 --out signing.jwk > jwks.json\n"
          "  tokend keygen --alg HS256 --out hs.jwk\n",
          f);
}

static int write_private(const char *path, const char *text, int force, char *err, size_t err_cap)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (force ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, 0600);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot create %s: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (use --force to overwrite)" : "");
        return -1;
    }
    size_t n = strlen(text);
    size_t off = 0;
    int rc = fchmod(fd, 0600);
    while (rc == 0 && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0) {
        rc = write(fd, "\n", 1) == 1 ? fsync(fd) : -1;
    }
    if (close(fd) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        snprintf(err, err_cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cli_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"alg", required_argument, NULL, 'a'}, {"kid", required_argument, NULL, 'k'},
                                         {"out", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    const char *alg_s = NULL;
    const char *kid = NULL;
    const char *out = NULL;
    int force = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            alg_s = optarg;
            break;
        case 'k':
            kid = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            help(stdout);
            return CLI_EXIT_OK;
        default:
            cli_option_hint("keygen", opts, argc, argv);
            fprintf(stderr, "Run 'tokend keygen --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc || !alg_s) {
        fprintf(stderr, "tokend keygen: %s\n\n", alg_s ? "unexpected argument" : "--alg is required");
        help(stderr);
        return CLI_EXIT_USAGE;
    }
    tk_alg alg = tk_alg_from_name(alg_s, strlen(alg_s));
    if (alg == TK_ALG_UNSET) {
        fprintf(stderr, "tokend keygen: unknown alg '%s' (names are case-sensitive, e.g. ES256, EdDSA)\n", alg_s);
        return CLI_EXIT_USAGE;
    }
    if (kid && (kid[0] == '\0' || strlen(kid) > TK_LIMIT_KID_LEN)) {
        fprintf(stderr, "tokend keygen: --kid must be 1 to %u bytes\n", TK_LIMIT_KID_LEN);
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_INVALID;
    tk_key *k = NULL;
    tk_keyset *ks = NULL;
    char *priv = NULL;
    char *jwks = NULL;
    char kidbuf[64];
    char path[TK_LIMIT_KID_LEN + 16];
    char err[512];
    tk_result rc = tk_key_generate(alg, kid, &k);
    if (rc != TK_OK) {
        fprintf(stderr, "tokend keygen: key generation failed: %s\n", tk_result_str(rc));
        goto out;
    }
    if (!kid) {
        /* Derive the kid from the public key; a secret gets a random one so
         * that nothing derived from it is published. */
        int bad = tk_key_kty(k)[0] == 'o' ? cli_random_id(12, kidbuf, sizeof kidbuf) != 0
                                          : tk_key_thumbprint(k, kidbuf, sizeof kidbuf) != TK_OK;
        if (bad || tk_key_set_kid(k, kidbuf) != TK_OK) {
            fprintf(stderr, "tokend keygen: cannot derive a kid\n");
            goto out;
        }
        kid = kidbuf;
    }
    if (!out) {
        snprintf(path, sizeof path, "%s.jwk", kid);
        if (strchr(kid, '/') || kid[0] == '.') {
            fprintf(stderr, "tokend keygen: the kid cannot name a file; give --out\n");
            status = CLI_EXIT_USAGE;
            goto out;
        }
        out = path;
    }
    rc = tk_key_to_jwk(k, 1, &priv);
    if (rc != TK_OK) {
        fprintf(stderr, "tokend keygen: cannot export the key: %s\n", tk_result_str(rc));
        goto out;
    }
    if (write_private(out, priv, force, err, sizeof err) != 0) {
        fprintf(stderr, "tokend keygen: %s\n", err);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    rc = tk_keyset_new(&ks);
    if (rc == TK_OK) {
        rc = tk_keyset_add(ks, k);
    }
    if (rc != TK_OK) {
        fprintf(stderr, "tokend keygen: %s\n", tk_result_str(rc));
        goto out;
    }
    const tk_key *kk = k;
    k = NULL; /* owned by ks now */
    rc = tk_keyset_to_jwks(ks, 0, &jwks);
    if (rc != TK_OK) {
        fprintf(stderr, "tokend keygen: %s\n", tk_result_str(rc));
        goto out;
    }
    printf("%s\n", jwks);
    fprintf(stderr, "tokend keygen: wrote the private %s key \"%s\" to %s (mode 0600)%s\n", tk_alg_name(alg), kid, out,
            tk_key_kty(kk)[0] == 'o' ? "; an HMAC secret has no public part to publish" : "");
    status = CLI_EXIT_OK;
out:
    if (priv) {
        cli_free_secret(priv, strlen(priv));
    }
    tk_free(jwks);
    tk_keyset_free(ks);
    tk_key_free(k);
    return status;
}
