/* SPDX-License-Identifier: Apache-2.0 */
/*
 * users.c — `tokend user add|list|show|disable|enable|remove|passwd`: the
 * people who sign in. Passwords come from a prompt without echo or from
 * --password-file (use '-' for stdin), are hashed with Argon2id, and are
 * never printed or logged.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/serve.h"
#include "http/backchannel.h"

static void bcl_log(void *ud, const char *level, const char *msg)
{
    (void)ud;
    if (strcmp(level, "info") != 0) {
        fprintf(stderr, "tokend user: %s\n", msg);
    }
}

/* The settings `tokend user` reads: the store and keys; the issuer, public
 * URL and CA file of back-channel logout (disable, remove); the lifetimes
 * that bound the revocation of a user's sessions. */
static const enum cli_setting user_settings[] = {
    SET_CONFIG,     SET_DATA_DIR,      SET_STORE,   SET_STORE_PASSWORD_FILE, SET_MASTER_KEY_FILE, SET_ALG, SET_ISSUER,
    SET_PUBLIC_URL, SET_TRUST_CA_FILE, SET_MAX_TTL, SET_REFRESH_TTL,         SET_LEEWAY};

static void user_help(FILE *f)
{
    fputs("Usage: tokend user add NAME [--password-file FILE|-] [PROFILE]\n"
          "       tokend user set NAME PROFILE\n"
          "       tokend user passwd NAME [--password-file FILE|-]\n"
          "       tokend user list|show NAME|disable NAME|enable NAME|remove NAME [--json]\n"
          "       tokend user consents NAME [--revoke CLIENT | --revoke-all] [--json]\n"
          "\n"
          "Manages the people who sign in at /login. The password is read from a\n"
          "prompt without echo, or from --password-file (the first line; '-' reads\n"
          "stdin). It is hashed with Argon2id and never shown again. Removing a user\n"
          "removes their sessions and refresh tokens. 'consents' lists what the user\n"
          "allowed third-party applications (client add --consent); --revoke withdraws\n"
          "it, so the consent page shows again.\n"
          "\n"
          "PROFILE (the OpenID Connect standard claims; 'set' changes only those given,\n"
          "and an empty value clears one):\n"
          "  --name 'FULL NAME'  --given-name NAME  --family-name NAME\n"
          "  --preferred-username NAME  --email ADDR  --email-verified yes|no\n"
          "\n"
          "Settings (shared with tokend serve; --issuer or --public-url names the issuer of the\n"
          "logout tokens that disable and remove send):\n",
          f);
    cli_settings_help_of(f, user_settings, sizeof user_settings / sizeof user_settings[0]);
    fputs("\nExamples:\n"
          "  tokend user add alice                       # asks for the password twice\n"
          "  printf '%s\\n' \"$PW\" | tokend user add bob --password-file -\n"
          "  tokend user set alice --email alice@example.com --email-verified yes --name 'Alice Liddell'\n"
          "  tokend user disable bob\n"
          "  tokend user consents alice --revoke grafana\n",
          f);
}

/* Reads a password: from a file's first line, or a no-echo prompt. */
static int read_password(const char *file, char *buf, size_t cap, int confirm)
{
    buf[0] = '\0';
    if (file) {
        FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
        if (!f) {
            fprintf(stderr, "tokend user: cannot read %s\n", file);
            return -1;
        }
        char *r = fgets(buf, (int)cap, f);
        if (f != stdin) {
            fclose(f);
        }
        if (!r) {
            fprintf(stderr, "tokend user: %s holds no password\n", file);
            return -1;
        }
        buf[strcspn(buf, "\r\n")] = '\0';
        return 0;
    }
    if (!isatty(STDIN_FILENO)) {
        fprintf(stderr, "tokend user: no terminal for a password prompt; use --password-file FILE (or - for stdin)\n");
        return -1;
    }
    struct termios old, quiet;
    tcgetattr(STDIN_FILENO, &old);
    quiet = old;
    quiet.c_lflag &= (tcflag_t)~ECHO;
    char again[1024];
    int rc = -1;
    fprintf(stderr, "Password: ");
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    if (fgets(buf, (int)cap, stdin)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        rc = 0;
        if (confirm) {
            fprintf(stderr, "\nAgain: ");
            if (!fgets(again, sizeof again, stdin) || (again[strcspn(again, "\r\n")] = '\0', strcmp(again, buf) != 0)) {
                fprintf(stderr, "\ntokend user: the passwords differ");
                rc = -1;
            }
        }
    }
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fprintf(stderr, "\n");
    OPENSSL_cleanse(again, sizeof again);
    return rc;
}

static json_t *user_json(const tks_user *u)
{
    return json_pack("{s:s, s:b, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:b}", "user", u->id, "disabled", u->disabled,
                     "created_at", (json_int_t)u->created_at, "password_changed_at", (json_int_t)u->password_changed_at,
                     "name", u->name, "given_name", u->given_name, "family_name", u->family_name, "preferred_username",
                     u->preferred_username, "email", u->email, "email_verified", u->email_verified);
}

/* The profile options given on the command line; NULL when not given. */
struct profile_opts {
    const char *name, *given_name, *family_name, *preferred_username, *email, *email_verified;
    int any;
};

static int set_field(char *dst, size_t cap, const char *v, const char *what)
{
    if (!v) {
        return 0;
    }
    if (strlen(v) >= cap) {
        fprintf(stderr, "tokend user: --%s is longer than %zu bytes\n", what, cap - 1);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* Lays the options given over the profile in `u`. */
static int apply_profile(const struct profile_opts *o, tks_user *u)
{
    if (set_field(u->name, sizeof u->name, o->name, "name") ||
        set_field(u->given_name, sizeof u->given_name, o->given_name, "given-name") ||
        set_field(u->family_name, sizeof u->family_name, o->family_name, "family-name") ||
        set_field(u->preferred_username, sizeof u->preferred_username, o->preferred_username, "preferred-username") ||
        set_field(u->email, sizeof u->email, o->email, "email")) {
        return -1;
    }
    if (o->email_verified) {
        if (strcmp(o->email_verified, "yes") == 0) {
            u->email_verified = 1;
        } else if (strcmp(o->email_verified, "no") == 0) {
            u->email_verified = 0;
        } else {
            fprintf(stderr, "tokend user: --email-verified takes yes or no\n");
            return -1;
        }
    } else if (o->email) {
        u->email_verified = 0; /* a new address is not verified until said so */
    }
    return 0;
}

static void user_human(const tks_user *u)
{
    char c[32], p[32];
    tk_format_time(u->created_at, c, sizeof c);
    tk_format_time(u->password_changed_at, p, sizeof p);
    printf("%-24s %-8s created %s  password set %s", u->id, u->disabled ? "DISABLED" : "active", c, p);
    if (u->email[0]) {
        printf("  <%s>%s", u->email, u->email_verified ? " (verified)" : "");
    }
    if (u->name[0]) {
        printf("  %s", u->name);
    }
    printf("\n");
}

static int list_user(const tks_user *u, void *ud)
{
    json_t *arr = ud;
    if (arr) {
        json_array_append_new(arr, user_json(u));
    } else {
        user_human(u);
    }
    return 0;
}

static int print_consent(const tks_consent *k, void *ud)
{
    json_t *arr = ud;
    if (arr) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "client_id", k->client_id, "scope", k->scope,
                                             "granted_at", (json_int_t)k->granted_at));
    } else {
        char when[32];
        tk_format_time(k->granted_at, when, sizeof when);
        printf("%-24s allowed %s  scope: %s\n", k->client_id, when, k->scope);
    }
    return 0;
}

/* tokend user consents NAME [--revoke CLIENT | --revoke-all] */
static int user_consents(struct cli_settings *s, const char *name, const char *revoke, int revoke_all, int as_json)
{
    if (revoke && revoke_all) {
        fprintf(stderr, "tokend user consents: give --revoke CLIENT or --revoke-all, not both\n");
        return CLI_EXIT_USAGE;
    }
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    int status = CLI_EXIT_INVALID;
    if (cli_open_authority(s, "user", 0, "https://localhost", &store, &auth) != 0) {
        return CLI_EXIT_USAGE;
    }
    tks_user u;
    tks_result rc = tks_user_get(store, name, &u);
    OPENSSL_cleanse(u.pwhash, sizeof u.pwhash);
    if (rc != TKS_OK) {
        fprintf(stderr, "tokend user consents: %s\n", rc == TKS_NOT_FOUND ? "no such user" : tks_errmsg(store));
        goto out;
    }
    if (revoke || revoke_all) {
        int n = tka_consent_revoke(auth, name, revoke, (int64_t)time(NULL));
        if (n < 0) {
            fprintf(stderr, "tokend user consents: %s\n", tks_errmsg(store));
            goto out;
        }
        if (n == 0 && revoke) {
            fprintf(stderr, "tokend user consents: %s has not allowed '%s' anything\n", name, revoke);
            goto out;
        }
        if (as_json) {
            cli_print_json(json_pack("{s:s, s:i}", "user", name, "revoked", n));
        } else {
            printf("user %s: %d consent%s withdrawn; the consent page shows again next time\n", name, n,
                   n == 1 ? "" : "s");
        }
        status = CLI_EXIT_OK;
        goto out;
    }
    json_t *arr = as_json ? json_array() : NULL;
    if (tks_consent_list(store, name, print_consent, arr) != TKS_OK) {
        json_decref(arr);
        fprintf(stderr, "tokend user consents: %s\n", tks_errmsg(store));
        goto out;
    }
    if (arr) {
        cli_print_json(arr);
    }
    status = CLI_EXIT_OK;
out:
    tka_close(auth);
    tks_close(store);
    return status;
}

int cli_user(int argc, char **argv)
{
    struct option opts[SET_COUNT_ + 12];
    size_t n = cli_settings_options_of(opts, SET_COUNT_, user_settings, sizeof user_settings / sizeof user_settings[0]);
    opts[n++] = (struct option){"password-file", required_argument, NULL, 'p'};
    opts[n++] = (struct option){"name", required_argument, NULL, 'N'};
    opts[n++] = (struct option){"given-name", required_argument, NULL, 'G'};
    opts[n++] = (struct option){"family-name", required_argument, NULL, 'F'};
    opts[n++] = (struct option){"preferred-username", required_argument, NULL, 'U'};
    opts[n++] = (struct option){"email", required_argument, NULL, 'E'};
    opts[n++] = (struct option){"email-verified", required_argument, NULL, 'V'};
    opts[n++] = (struct option){"json", no_argument, NULL, 'J'};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n++] = (struct option){"revoke", required_argument, NULL, 'R'};
    opts[n++] = (struct option){"revoke-all", no_argument, NULL, 'A'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    const char *revoke = NULL;
    int revoke_all = 0;
    struct cli_settings s;
    memset(&s, 0, sizeof s);
    const char *pwfile = NULL;
    struct profile_opts po;
    memset(&po, 0, sizeof po);
    int as_json = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= CLI_SETTING_OPT_BASE) {
            cli_settings_flag(&s, c, optarg);
        } else if (c == 'p') {
            pwfile = optarg;
        } else if (strchr("NGFUEV", c) && c != 0) {
            const char **slot = c == 'N'   ? &po.name
                                : c == 'G' ? &po.given_name
                                : c == 'F' ? &po.family_name
                                : c == 'U' ? &po.preferred_username
                                : c == 'E' ? &po.email
                                           : &po.email_verified;
            *slot = optarg;
            po.any = 1;
        } else if (c == 'J') {
            as_json = 1;
        } else if (c == 'R') {
            revoke = optarg;
        } else if (c == 'A') {
            revoke_all = 1;
        } else if (c == 'h') {
            user_help(stdout);
            return CLI_EXIT_OK;
        } else {
            cli_option_hint("user", opts, argc, argv);
            fprintf(stderr, "Run 'tokend user --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        user_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *verb = argv[optind];
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    int need = strcmp(verb, "list") != 0;
    if ((need && !name) || optind + 1 + need != argc) {
        fprintf(stderr, "tokend user %s: %s\n", verb, need ? "takes one user name" : "takes no argument");
        return CLI_EXIT_USAGE;
    }
    if (cli_settings_finish(&s, "user") != 0) {
        cli_settings_free(&s);
        return CLI_EXIT_USAGE;
    }
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    int status = CLI_EXIT_USAGE;
    char pw[1024];
    char err[512];
    pw[0] = '\0';
    tks_user prof;
    memset(&prof, 0, sizeof prof);
    if (po.any && strcmp(verb, "add") != 0 && strcmp(verb, "set") != 0) {
        fprintf(stderr, "tokend user %s: the profile options belong to add and set\n", verb);
        goto out;
    }
    if (strcmp(verb, "add") == 0 &&
        (apply_profile(&po, &prof) != 0 || tka_profile_check(&prof, err, sizeof err) != 0)) {
        if (err[0]) {
            fprintf(stderr, "tokend user add: %s\n", err);
        }
        goto out;
    }
    if (strcmp(verb, "set") == 0) {
        if (!po.any) {
            fprintf(stderr, "tokend user set: give what to change (--name, --email, ...; see --help)\n");
            goto out;
        }
        if (cli_open_authority(&s, "user", 1, "https://localhost", &store, &auth) != 0) {
            goto out;
        }
        tks_result gr = tks_user_get(store, name, &prof);
        if (gr != TKS_OK) {
            fprintf(stderr, "tokend user set: %s\n", gr == TKS_NOT_FOUND ? "no such user" : tks_errmsg(store));
            status = CLI_EXIT_INVALID;
            goto out;
        }
        OPENSSL_cleanse(prof.pwhash, sizeof prof.pwhash);
        if (apply_profile(&po, &prof) != 0) {
            goto out;
        }
        if (tka_user_set_profile(auth, &prof, (int64_t)time(NULL), err, sizeof err) != 0) {
            fprintf(stderr, "tokend user set: %s\n", err);
            status = CLI_EXIT_INVALID;
            goto out;
        }
        if (as_json) {
            cli_print_json(user_json(&prof));
        } else {
            printf("user %s: profile set\n", name);
        }
        status = CLI_EXIT_OK;
        goto out;
    }
    if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0) {
        if (read_password(pwfile, pw, sizeof pw, pwfile == NULL) != 0) {
            goto out;
        }
        if (cli_open_authority(&s, "user", 1, "https://localhost", &store, &auth) != 0) {
            goto out;
        }
        int64_t now = (int64_t)time(NULL);
        int rc = verb[0] == 'a' ? tka_user_create_ex(auth, name, pw, strlen(pw), &prof, now, err, sizeof err)
                                : tka_user_set_password(auth, name, pw, strlen(pw), now, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "tokend user %s: %s\n", verb, err);
            status = CLI_EXIT_INVALID;
            goto out;
        }
        if (as_json) {
            cli_print_json(json_pack("{s:s, s:s}", "user", name, "result", verb[0] == 'a' ? "added" : "password set"));
        } else {
            printf("user %s %s\n", name, verb[0] == 'a' ? "added" : "has a new password");
        }
        status = CLI_EXIT_OK;
        goto out;
    }
    if (pwfile) {
        fprintf(stderr, "tokend user %s: --password-file belongs to add and passwd\n", verb);
        goto out;
    }
    if ((revoke || revoke_all) && strcmp(verb, "consents") != 0) {
        fprintf(stderr, "tokend user %s: --revoke and --revoke-all belong to consents\n", verb);
        goto out;
    }
    if (strcmp(verb, "consents") == 0) {
        status = user_consents(&s, name, revoke, revoke_all, as_json);
        goto out;
    }
    if (cli_open_store(&s, "user", 0, &store) != 0) {
        goto out;
    }
    status = CLI_EXIT_INVALID;
    tks_result rc = TKS_OK;
    tks_user u;
    if (strcmp(verb, "list") == 0) {
        json_t *arr = as_json ? json_array() : NULL;
        rc = tks_user_list(store, list_user, arr);
        if (arr) {
            cli_print_json(arr);
        }
    } else if (strcmp(verb, "show") == 0) {
        rc = tks_user_get(store, name, &u);
        if (rc == TKS_OK) {
            if (as_json) {
                cli_print_json(user_json(&u));
            } else {
                user_human(&u);
            }
        }
    } else if (strcmp(verb, "enable") == 0) {
        rc = tks_user_set_disabled(store, name, 0);
    } else if (strcmp(verb, "disable") == 0 || strcmp(verb, "remove") == 0) {
        /* Revoke every token of the user's sign-ins first: access tokens
         * would otherwise live until they expire. */
        rc = tks_user_get(store, name, &u);
        if (rc == TKS_OK) {
            tks_close(store);
            store = NULL;
            /* Logout tokens name the issuer: only a configured one will do. */
            const char *issuer = s.v[SET_ISSUER] ? s.v[SET_ISSUER] : s.v[SET_PUBLIC_URL];
            if (cli_open_authority(&s, "user", 0, issuer ? issuer : "https://localhost", &store, &auth) != 0) {
                status = CLI_EXIT_USAGE;
                goto out;
            }
            tkh_bcl *bcl = NULL;
            tkh_bcl_config bc;
            tkh_bcl_config_defaults(&bc);
            bc.ca_file = s.v[SET_TRUST_CA_FILE];
            bc.attempts = 3; /* after 1 and 2 seconds: an admin command waits at most ~20 s */
            bc.log = bcl_log;
            if (issuer && tkh_bcl_open(auth, store, &bc, &bcl) != 0) {
                bcl = NULL;
            }
            int revoked = tka_user_revoke_all(auth, name, "admin", (int64_t)time(NULL));
            if (bcl) {
                unsigned left = tkh_bcl_drain(bcl, 20000);
                tkh_bcl_counters k;
                tkh_bcl_counters_get(bcl, &k);
                if (!as_json && (k.delivered || k.failed || left)) {
                    printf("back-channel logout: %llu delivered, %llu failed%s\n", (unsigned long long)k.delivered,
                           (unsigned long long)(k.failed + left), left ? " (gave up waiting)" : "");
                }
                tkh_bcl_close(bcl);
            } else if (revoked > 0 && !as_json) {
                printf("back-channel logout not sent (if a client registered --backchannel-logout-uri, give "
                       "--issuer: logout tokens must name the server's issuer)\n");
            }
            if (revoked < 0) {
                fprintf(stderr, "tokend user %s: cannot revoke the user's tokens: %s\n", verb, tks_errmsg(store));
                goto out;
            }
            if (!as_json && revoked > 0) {
                printf("revoked the tokens of %d sign-in%s\n", revoked, revoked == 1 ? "" : "s");
            }
            rc = verb[0] == 'd' ? tks_user_set_disabled(store, name, 1) : tks_user_delete(store, name);
        }
    } else {
        fprintf(stderr,
                "tokend user: unknown verb '%s' (add, set, passwd, list, show, disable, enable, remove, consents)\n",
                verb);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (rc == TKS_OK && verb[0] != 'l' && verb[0] != 's') {
        if (as_json) {
            cli_print_json(json_pack("{s:s, s:s}", "user", name, "result", verb));
        } else {
            printf("user %s: %s\n", name, verb);
        }
    }
    if (rc == TKS_NOT_FOUND) {
        fprintf(stderr, "tokend user %s: no user '%s'\n", verb, name);
    } else if (rc != TKS_OK) {
        fprintf(stderr, "tokend user %s: %s\n", verb, tks_errmsg(store));
    } else {
        status = CLI_EXIT_OK;
    }
out:
    OPENSSL_cleanse(pw, sizeof pw);
    tka_close(auth);
    tks_close(store);
    cli_settings_free(&s);
    return status;
}
