/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — `tokend`: dispatch to sub-commands. The library never prints;
 * every word the user reads comes from src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/settings.h"

static void usage(FILE *f)
{
    fputs("tokend " TK_VERSION " - issue, validate and explain bearer tokens (JWT)\n"
          "\n"
          "Usage: tokend COMMAND [OPTIONS]\n"
          "\n"
          "Commands:\n"
          "  inspect   decode a token, check it, and explain every problem\n"
          "  keygen    generate a signing key (private JWK file + public JWKS)\n"
          "  sign      sign a token with a key\n"
          "  serve     run the OAuth 2.0 server and the /auth endpoint for proxies\n"
          "  client    manage OAuth clients (add, list, show, disable, enable, remove)\n"
          "  keys      list or rotate the server's signing keys\n"
          "  revoke    revoke a token (by jti, sid, or the token itself)\n"
          "  user      manage the people who sign in (add, passwd, list, show, disable, enable, remove)\n"
          "\n"
          "Run 'tokend COMMAND --help' for the options of a command.\n"
          "\n"
          "Examples:\n"
          "  tokend keygen --alg ES256 --kid k1 --out k1.jwk > jwks.json\n"
          "  tokend sign --key k1.jwk --iss https://auth.example --aud api --sub alice --exp 15m > token\n"
          "  tokend inspect --jwks jwks.json --iss https://auth.example --aud api - < token\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    /* getopt_long names the program by argv[0] in its messages: make that
     * "tokend <command>". */
    static char prog[64];
    snprintf(prog, sizeof prog, "tokend %.40s", cmd);
    argv[1] = prog;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("tokend " TK_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "inspect") == 0) {
        return cli_inspect(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "keygen") == 0) {
        return cli_keygen(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "sign") == 0) {
        return cli_sign(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "serve") == 0) {
        return cli_serve(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "client") == 0) {
        return cli_client(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "keys") == 0) {
        return cli_keys(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "revoke") == 0) {
        return cli_revoke(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "user") == 0) {
        return cli_user(argc - 1, argv + 1);
    }
    static const char *const cmds[] = {"inspect", "keygen", "sign", "serve", "client", "keys", "revoke", "user"};
    const char *near = cli_nearest(cmd, strlen(cmd), cmds, sizeof cmds / sizeof cmds[0]);
    if (near) {
        fprintf(stderr, "tokend: unknown command '%s'; did you mean '%s'?\n\n", cmd, near);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    fprintf(stderr, "tokend: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
