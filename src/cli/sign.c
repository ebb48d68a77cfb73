/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sign.c — `tokend sign`: a signed JWT from a private key and claims, with
 * iat, jti and exp filled in, for tests, scripts and debugging.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/settings.h"

#define MAX_AUD 32

static void help(FILE *f)
{
    fputs("Usage: tokend sign --key FILE [--claims JSON|-] [--exp DURATION] [--iss ISS]\n"
          "                   [--aud AUD]... [--sub SUB] [--scope SCOPE] [--typ TYP]\n"
          "                   [--alg ALG] [--kid KID] [--now UNIX_SECONDS]\n"
          "\n"
          "Prints a signed JWT (compact JWS) on stdout. Claims come from --claims (a\n"
          "JSON object, or '-' to read it from stdin) and the flags, which win.\n"
          "iat is set to now and jti to a random id unless the claims have them;\n"
          "exp is now + DURATION (default 15m unless the claims carry exp).\n"
          "\n"
          "  --key FILE       private JWK (from 'tokend keygen') or private PEM;\n"
          "                   must not be readable by group or others\n"
          "  --claims JSON    claims object, or '-' for stdin\n"
          "  --exp DURATION   lifetime: 30s, 15m, 1h, 2d, 1h30m, or seconds\n"
          "  --iss, --sub, --scope   set those claims; --aud may repeat (array)\n"
          "  --typ TYP        header typ (default JWT; at+jwt for RFC 9068 access tokens)\n"
          "  --alg ALG        alg for a key that names none (an RSA PEM: RS256, PS256, ...)\n"
          "  --kid KID        kid to put in the header (default: the key's)\n"
          "  --now SECONDS    the time to sign at (default: the clock)\n"
          "\n"
          "Examples:\n"
          "  tokend sign --key k1.jwk --iss https://auth.example --aud api --sub alice \\\n"
          "      --scope 'orders:read' --typ at+jwt --exp 15m\n"
          "  echo '{\"sub\":\"svc-42\",\"tenant\":\"acme\"}' | tokend sign --key k1.jwk --claims -\n",
          f);
}

static int set_str(json_t *o, const char *k, const char *v)
{
    return json_object_set_new(o, k, json_string(v)) == 0 ? 0 : -1;
}

int cli_sign(int argc, char **argv)
{
    static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
                                         {"claims", required_argument, NULL, 'c'},
                                         {"exp", required_argument, NULL, 'e'},
                                         {"iss", required_argument, NULL, 'i'},
                                         {"aud", required_argument, NULL, 'a'},
                                         {"sub", required_argument, NULL, 's'},
                                         {"scope", required_argument, NULL, 'S'},
                                         {"typ", required_argument, NULL, 't'},
                                         {"alg", required_argument, NULL, 'A'},
                                         {"kid", required_argument, NULL, 'K'},
                                         {"now", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *key_path = NULL, *claims_s = NULL, *exp_s = NULL, *iss = NULL, *sub = NULL, *scope = NULL;
    const char *typ = "JWT", *alg_s = NULL, *kid = NULL, *now_s = NULL;
    const char *aud[MAX_AUD];
    size_t n_aud = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_path = optarg;
            break;
        case 'c':
            claims_s = optarg;
            break;
        case 'e':
            exp_s = optarg;
            break;
        case 'i':
            iss = optarg;
            break;
        case 'a':
            if (n_aud == MAX_AUD) {
                fprintf(stderr, "tokend sign: at most %d --aud\n", MAX_AUD);
                return CLI_EXIT_USAGE;
            }
            aud[n_aud++] = optarg;
            break;
        case 's':
            sub = optarg;
            break;
        case 'S':
            scope = optarg;
            break;
        case 't':
            typ = optarg;
            break;
        case 'A':
            alg_s = optarg;
            break;
        case 'K':
            kid = optarg;
            break;
        case 'n':
            now_s = optarg;
            break;
        case 'h':
            help(stdout);
            return CLI_EXIT_OK;
        default:
            cli_option_hint("sign", opts, argc, argv);
            fprintf(stderr, "Run 'tokend sign --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc || !key_path) {
        fprintf(stderr, "tokend sign: %s\n\n", key_path ? "unexpected argument" : "--key is required");
        help(stderr);
        return CLI_EXIT_USAGE;
    }
    int64_t now = cli_now();
    int64_t ttl = 15 * 60;
    if (now_s && (cli_parse_int64(now_s, &now) != 0 || now < 0 || now > TK_LIMIT_NUMERICDATE_MAX)) {
        fprintf(stderr, "tokend sign: --now takes Unix seconds\n");
        return CLI_EXIT_USAGE;
    }
    if (exp_s && (cli_parse_duration(exp_s, &ttl) != 0 || ttl <= 0)) {
        fprintf(stderr, "tokend sign: --exp takes a duration such as 30s, 15m, 1h, 2d\n");
        return CLI_EXIT_USAGE;
    }
    tk_alg alg = TK_ALG_UNSET;
    if (alg_s) {
        alg = tk_alg_from_name(alg_s, strlen(alg_s));
        if (alg == TK_ALG_UNSET) {
            fprintf(stderr, "tokend sign: unknown alg '%s'\n", alg_s);
            return CLI_EXIT_USAGE;
        }
    }
    unsigned mode = 0;
    if (cli_file_too_open(key_path, &mode)) {
        fprintf(stderr, "tokend sign: %s is readable by group or others (mode %04o); run 'chmod 600 %s'\n", key_path,
                mode, key_path);
        return CLI_EXIT_USAGE;
    }

    int status = CLI_EXIT_USAGE;
    tk_keyset *ks = NULL;
    json_t *claims = NULL;
    char *stdin_buf = NULL;
    size_t stdin_len = 0;
    char *payload = NULL;
    char *token = NULL;
    char err[512], note[256];
    if (tk_keyset_new(&ks) != TK_OK) {
        goto out;
    }
    if (cli_load_key_file(key_path, alg, NULL, ks, note, sizeof note, err, sizeof err) != 0) {
        fprintf(stderr, "tokend sign: %s\n", err);
        goto out;
    }
    if (tk_keyset_count(ks) != 1) {
        fprintf(stderr, "tokend sign: %s holds %zu keys; give a file with exactly one\n", key_path,
                tk_keyset_count(ks));
        goto out;
    }
    tk_key *k = (tk_key *)(uintptr_t)tk_keyset_get(ks, 0);
    if (!tk_key_can_sign(k)) {
        fprintf(stderr, "tokend sign: %s holds a public key; signing needs the private key\n", key_path);
        goto out;
    }
    if (tk_key_alg(k) == TK_ALG_UNSET) {
        fprintf(stderr, "tokend sign: the %s key names no alg; pass --alg (e.g. %s)\n", tk_key_kty(k),
                tk_key_kty(k)[0] == 'R' ? "RS256 or PS256" : "HS256");
        goto out;
    }
    if (alg != TK_ALG_UNSET && alg != tk_key_alg(k)) {
        fprintf(stderr, "tokend sign: the key is bound to %s, not %s\n", tk_alg_name(tk_key_alg(k)), alg_s);
        goto out;
    }
    if (kid && tk_key_set_kid(k, kid) != TK_OK) {
        fprintf(stderr, "tokend sign: --kid must be 1 to %u bytes\n", TK_LIMIT_KID_LEN);
        goto out;
    }
    if (claims_s) {
        const char *text = claims_s;
        size_t len = strlen(claims_s);
        if (strcmp(claims_s, "-") == 0) {
            int trunc = 0;
            if (cli_read_stdin(TK_LIMIT_PAYLOAD_LEN, &stdin_buf, &stdin_len, &trunc) != 0 || trunc) {
                fprintf(stderr, "tokend sign: cannot read claims from stdin (at most %u bytes)\n",
                        TK_LIMIT_PAYLOAD_LEN);
                goto out;
            }
            text = stdin_buf;
            len = stdin_len;
        }
        json_error_t je;
        claims = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!claims || !json_is_object(claims)) {
            fprintf(stderr, "tokend sign: --claims is not a JSON object%s%s\n", claims ? "" : ": ",
                    claims ? "" : je.text);
            goto out;
        }
    } else {
        claims = json_object();
    }
    if (!claims) {
        goto out;
    }
    status = CLI_EXIT_INVALID;
    char jti[32];
    if ((iss && set_str(claims, "iss", iss)) || (sub && set_str(claims, "sub", sub)) ||
        (scope && set_str(claims, "scope", scope))) {
        goto out;
    }
    if (n_aud == 1 && set_str(claims, "aud", aud[0])) {
        goto out;
    }
    if (n_aud > 1) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n_aud; i++) {
            json_array_append_new(arr, json_string(aud[i]));
        }
        if (!arr || json_object_set_new(claims, "aud", arr) != 0) {
            goto out;
        }
    }
    if (!json_object_get(claims, "iat") && json_object_set_new(claims, "iat", json_integer(now)) != 0) {
        goto out;
    }
    if (exp_s || !json_object_get(claims, "exp")) {
        if (json_object_set_new(claims, "exp", json_integer(now + ttl)) != 0) {
            goto out;
        }
    }
    if (!json_object_get(claims, "jti")) {
        if (cli_random_id(16, jti, sizeof jti) != 0 || set_str(claims, "jti", jti)) {
            goto out;
        }
    }
    payload = json_dumps(claims, JSON_COMPACT);
    if (!payload) {
        goto out;
    }
    size_t tl = 0;
    tk_result rc = tk_sign(k, typ[0] ? typ : NULL, (const unsigned char *)payload, strlen(payload), &token, &tl);
    if (rc != TK_OK) {
        fprintf(stderr, "tokend sign: signing failed: %s\n", tk_result_str(rc));
        goto out;
    }
    printf("%s\n", token);
    status = CLI_EXIT_OK;
out:
    if (token) {
        cli_free_secret(token, strlen(token));
    }
    free(payload);
    json_decref(claims);
    cli_free_secret(stdin_buf, stdin_len);
    tk_keyset_free(ks);
    return status;
}
