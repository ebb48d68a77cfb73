/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c — the admin commands, on the same store and master key as the
 * server: `tokend client add|list|show|disable|enable|remove`,
 * `tokend revoke --jti|--sid|--token`, `tokend keys list|rotate`. Each takes
 * --json for scripts. A running server sees their changes within a second
 * (tka_maintain polls the store).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/serve.h"

int cli_authority_config(const struct cli_settings *s, const char *cmd, tka_config *c)
{
    tka_config_defaults(c);
    const char *alg = s->v[SET_ALG];
    c->alg = tk_alg_from_name(alg, strlen(alg));
    if (c->alg == TK_ALG_UNSET) {
        fprintf(stderr,
                "tokend %s: --alg %s: the server signs with ES256 (default), EdDSA, ES384, ES512, RS256/384/512, "
                "PS256/384/512, or HS256/384/512 when issuer and verifiers are one party\n",
                cmd, alg);
        return 2;
    }
    struct {
        enum cli_setting k;
        int64_t *dst;
    } durations[] = {{SET_ACCESS_TTL, &c->access_ttl},     {SET_MAX_TTL, &c->max_ttl},
                     {SET_ROTATE_EVERY, &c->rotate_every}, {SET_SESSION_IDLE, &c->session_idle},
                     {SET_SESSION_MAX, &c->session_max},   {SET_REFRESH_TTL, &c->refresh_ttl},
                     {SET_CODE_TTL, &c->code_ttl},         {SET_JWKS_MAX_AGE, &c->jwks_max_age},
                     {SET_MAX_STALE, &c->max_stale}};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        const char *v = s->v[durations[i].k];
        if (cli_parse_duration(v, durations[i].dst) != 0 ||
            (*durations[i].dst <= 0 && durations[i].k != SET_ROTATE_EVERY && durations[i].k != SET_JWKS_MAX_AGE) ||
            *durations[i].dst < 0) {
            fprintf(stderr, "tokend %s: --%s takes a duration such as 15m, 24h, 30d (got '%s')\n", cmd,
                    cli_settings[durations[i].k].flag, v);
            return 2;
        }
    }
    struct {
        enum cli_setting k;
        int64_t *dst;
    } keep[] = {{SET_AUDIT_RETENTION, &c->audit_retention},
                {SET_SESSION_RETENTION, &c->session_retention},
                {SET_REFRESH_GRACE, &c->refresh_grace}};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const char *v = s->v[keep[i].k];
        if (v == NULL) {
            continue; /* a command that does not take it: the default */
        }
        if (cli_parse_duration(v, keep[i].dst) != 0 || *keep[i].dst < 0 || *keep[i].dst > TKA_RETENTION_MAX) {
            fprintf(stderr, "tokend %s: --%s takes a duration from 0 to 3650d, such as 90d or 12h (got '%s')\n", cmd,
                    cli_settings[keep[i].k].flag, v);
            return 2;
        }
    }
    if (c->access_ttl > c->max_ttl) {
        fprintf(stderr, "tokend %s: --access-ttl is longer than --max-ttl\n", cmd);
        return 2;
    }
    if (cli_parse_int64(s->v[SET_LEEWAY], &c->leeway) != 0 || c->leeway < 0 || c->leeway > TK_LIMIT_LEEWAY_MAX) {
        fprintf(stderr, "tokend %s: --leeway takes 0 to %d seconds\n", cmd, TK_LIMIT_LEEWAY_MAX);
        return 2;
    }
    if (s->v[SET_AUTH_CACHE_SIZE] != NULL) { /* serve only */
        int64_t n = 0;
        if (cli_parse_int64(s->v[SET_AUTH_CACHE_SIZE], &n) != 0 || n < 0 || n > (int64_t)TK_LIMIT_SIGCACHE_ENTRIES) {
            fprintf(stderr, "tokend %s: --auth-cache-size takes 0 (no cache) to %u tokens\n", cmd,
                    (unsigned)TK_LIMIT_SIGCACHE_ENTRIES);
            return 2;
        }
        c->verify_cache = (size_t)n;
    }
    return 0;
}

static int count_one(const tks_key_row *k, void *ud)
{
    (void)k;
    *(int *)ud = 1;
    return 1;
}

int cli_open_store(const struct cli_settings *s, const char *cmd, unsigned pool, tks_store **store)
{
    char err[512], shown[512];
    *store = NULL;
    tks_open_opts o = {NULL, pool};
    char *pw = NULL;
    size_t pwl = 0;
    if (s->v[SET_STORE_PASSWORD_FILE] != NULL) {
        if (cli_read_file(s->v[SET_STORE_PASSWORD_FILE], 4096, &pw, &pwl, err, sizeof err) != 0) {
            fprintf(stderr, "tokend %s: --store-password-file: %s\n", cmd, err);
            return 2;
        }
        while (pwl > 0 && (pw[pwl - 1] == '\n' || pw[pwl - 1] == '\r')) {
            pw[--pwl] = '\0';
        }
        o.password = pw;
    }
    tks_result r = tks_open_ex(s->v[SET_STORE], &o, store, err, sizeof err);
    if (pw != NULL) {
        cli_free_secret(pw, pwl);
    }
    if (r != TKS_OK) {
        tks_url_redact(s->v[SET_STORE], shown, sizeof shown);
        /* an installed tokend run by hand, as someone else than the service */
        int installed_default =
            s->source[SET_STORE] != NULL && strcmp(s->source[SET_STORE], "default") == 0 && cli_installed();
        const char *how = strcmp(cmd, "serve") == 0 ? ": the service runs it (systemctl start tokend); "
                                                    : ": run the admin commands as the service's user, sudo -u "
                                                      "tokend tokend ...; ";
        fprintf(stderr, "tokend %s: cannot open the store %s: %s%s%s%s%s\n", cmd, shown, err,
                installed_default ? " (in the data directory " : "", installed_default ? s->v[SET_DATA_DIR] : "",
                installed_default ? how : "", installed_default ? "or give --data-dir DIR for files of your own)" : "");
        return 2;
    }
    return 0;
}

int cli_open_authority(const struct cli_settings *s, const char *cmd, int create_master, const char *issuer,
                       tks_store **store, tka_authority **auth)
{
    char err[512];
    tka_config c;
    *auth = NULL;
    if (cli_authority_config(s, cmd, &c) != 0) {
        return 2;
    }
    /* *store: already open (serve sizes the pool for its threads with
     * cli_open_store first), or NULL to open it here. Closed again (and
     * NULL) on failure. */
    if (*store == NULL && cli_open_store(s, cmd, 0, store) != 0) {
        return 2;
    }
    /* A new master key is made only for a store that holds no keys yet: a
     * store whose keys were sealed under another key needs that key, and a
     * fresh one would only be a useless file to back up. */
    int has_keys = 0;
    if (tks_key_list(*store, count_one, &has_keys) != TKS_OK) {
        fprintf(stderr, "tokend %s: cannot read the store: %s\n", cmd, tks_errmsg(*store));
        tks_close(*store);
        *store = NULL;
        return 2;
    }
    int created = 0;
    if (tka_master_key_load(s->v[SET_MASTER_KEY_FILE], create_master && !has_keys, c.master_key, &created, err,
                            sizeof err) != 0) {
        fprintf(stderr, "tokend %s: %s%s\n", cmd, err,
                has_keys ? " (the store already holds signing keys sealed under a master key: point "
                           "--master-key-file / TOKEND_MASTER_KEY_FILE at that key)"
                         : "");
        tks_close(*store);
        *store = NULL;
        return 2;
    }
    if (created) {
        fprintf(stderr,
                "tokend %s: created the master key %s (mode 0600): back it up; without it the signing keys "
                "in the store cannot be used\n",
                cmd, s->v[SET_MASTER_KEY_FILE]);
    }
    c.issuer = issuer;
    c.one_shot = strcmp(cmd, "serve") != 0;
    /* Admin commands do not look at the revocation set (tokend revoke asks
     * the store about its one value): at a million revocations, loading it
     * would be most of their time and memory. */
    c.lazy_revocations = c.one_shot;
    int rc = tka_open(*store, &c, (int64_t)time(NULL), auth, err, sizeof err);
    OPENSSL_cleanse(c.master_key, sizeof c.master_key);
    if (rc != 0) {
        fprintf(stderr, "tokend %s: %s\n", cmd, err);
        tks_close(*store);
        *store = NULL;
        return 2;
    }
    return 0;
}

/* The settings each admin command reads (its flags and its --help list
 * only these): the store, the master key and the alg of a first key (every
 * command that opens the authority may have to make one), and what its
 * work needs. */
#define STORE_SETTINGS SET_CONFIG, SET_DATA_DIR, SET_STORE, SET_STORE_PASSWORD_FILE, SET_MASTER_KEY_FILE, SET_ALG
static const enum cli_setting client_settings[] = {STORE_SETTINGS, SET_ACCESS_TTL, SET_MAX_TTL};
static const enum cli_setting revoke_settings[] = {STORE_SETTINGS, SET_MAX_TTL, SET_LEEWAY};
static const enum cli_setting keys_settings[] = {STORE_SETTINGS, SET_MAX_TTL, SET_LEEWAY, SET_JWKS_MAX_AGE};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The issuer for admin commands: configured, or a placeholder (they issue
 * nothing). */
static const char *admin_issuer(const struct cli_settings *s)
{
    return s->v[SET_ISSUER] ? s->v[SET_ISSUER] : "https://localhost";
}

static json_t *client_json(const tks_client *c)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:s, s:b, s:s, s:s, s:s, s:s, s:b}", "client_id", c->id,
                     "name", c->name, "scope", c->scopes, "aud", c->audiences, "ttl", (json_int_t)c->ttl, "disabled",
                     c->disabled, "created_at", (json_int_t)c->created_at, "redirect_uris", c->redirect_uris, "public",
                     c->is_public, "grant_types", c->grant_types, "serves", c->serves, "backchannel_logout_uri",
                     c->backchannel_logout_uri, "id_token_signed_response_alg",
                     c->id_token_alg[0] ? c->id_token_alg : "", "consent", c->consent);
}

static void client_human(const tks_client *c)
{
    char when[32], ttl[32];
    tk_format_time(c->created_at, when, sizeof when);
    tk_format_duration(c->ttl, ttl, sizeof ttl);
    /* Every client says what kind it is: a public one has no secret and
     * signs users in at its redirect URIs (with PKCE). */
    printf("%-24s %-8s %-12s ttl %-7s created %s\n  scope: %s\n  aud:   %s\n", c->id,
           c->disabled ? "DISABLED" : "active", c->is_public ? "public" : "confidential", ttl, when, c->scopes,
           c->audiences);
    if (c->serves[0]) {
        printf("  serves (may introspect tokens for): %s\n", c->serves);
    }
    if (c->redirect_uris[0]) {
        printf("  redirect URIs: %s\n  %s%s\n", c->redirect_uris,
               c->consent ? "third-party: users are asked for consent" : "first-party: no consent page",
               c->is_public ? "; public (PKCE, no secret)" : "");
    } else {
        printf("  redirect URIs: none (it signs no users in)\n");
    }
    if (c->grant_types[0]) {
        printf("  grants: %s\n", c->grant_types);
    }
    if (c->backchannel_logout_uri[0]) {
        printf("  back-channel logout: %s\n", c->backchannel_logout_uri);
    }
    if (c->id_token_alg[0]) {
        printf("  ID tokens signed with %s\n", c->id_token_alg);
    }
}

struct list_ctx {
    json_t *arr;
    int n;
};

static int list_client(const tks_client *c, void *ud)
{
    struct list_ctx *l = ud;
    if (l->arr) {
        json_array_append_new(l->arr, client_json(c));
    } else {
        client_human(c);
    }
    l->n++;
    return 0;
}

static void client_help(FILE *f)
{
    fputs("Usage: tokend client add NAME --scope SCOPE... --aud AUD... [--ttl DURATION]\n"
          "                             [--redirect-uri URI]... [--public] [--serves AUD]... [--json]\n"
          "                             [--consent] [--backchannel-logout-uri URI] [--id-token-alg ALG]\n"
          "       tokend client list|show ID|disable ID|enable ID|remove ID [--json]\n"
          "\n"
          "Manages OAuth clients. 'add' prints the client id and a new secret ONCE:\n"
          "only its hash is stored. NAME becomes the client id when it is made of\n"
          "A-Z a-z 0-9 . _ ~ - (else an id is made up). --scope and --aud may repeat or\n"
          "hold space-separated lists; the first audience is the default one.\n"
          "--serves AUD makes the client the resource server of AUD: it may then\n"
          "introspect tokens issued for AUD (RFC 7662); any client may introspect its own.\n"
          "OpenID Connect (docs/oidc.md): the scope 'openid' gets the client ID tokens;\n"
          "--consent marks a third-party application whose users are asked to allow it;\n"
          "--backchannel-logout-uri URI is sent a logout token when a sign-in ends;\n"
          "--id-token-alg ALG (id_token_signed_response_alg; default RS256) signs its ID tokens.\n"
          "\n"
          "Settings (shared with tokend serve; --ttl defaults to --access-ttl, at most --max-ttl):\n",
          f);
    cli_settings_help_of(f, client_settings, N_OF(client_settings));
    fputs("\nExamples:\n"
          "  tokend client add billing --scope 'invoices:read invoices:write' --aud billing-api\n"
          "  tokend client add web --scope orders:read --aud orders-api --ttl 5m --json\n"
          "  tokend client add spa --public --redirect-uri https://app.example/callback \\\n"
          "      --scope 'openid orders:read' --aud orders-api     # sign-in with PKCE, no secret\n"
          "  tokend client add orders-backend --scope orders:introspect --aud orders-api --serves orders-api\n"
          "  tokend client add grafana --redirect-uri https://grafana.example/login/generic_oauth \\\n"
          "      --scope 'openid profile email' --aud grafana        # OpenID Connect sign-in\n"
          "  tokend client disable web\n",
          f);
}

static int append_list(char *dst, size_t cap, const char *item)
{
    size_t n = strlen(dst);
    int w = snprintf(dst + n, cap - n, "%s%s", n ? " " : "", item);
    return (w < 0 || (size_t)w >= cap - n) ? -1 : 0;
}

int cli_client(int argc, char **argv)
{
    struct option opts[SET_COUNT_ + 12];
    size_t n = cli_settings_options_of(opts, SET_COUNT_, client_settings, N_OF(client_settings));
    opts[n++] = (struct option){"scope", required_argument, NULL, 's'};
    opts[n++] = (struct option){"aud", required_argument, NULL, 'a'};
    opts[n++] = (struct option){"ttl", required_argument, NULL, 't'};
    opts[n++] = (struct option){"redirect-uri", required_argument, NULL, 'r'};
    opts[n++] = (struct option){"public", no_argument, NULL, 'P'};
    opts[n++] = (struct option){"serves", required_argument, NULL, 'S'};
    opts[n++] = (struct option){"json", no_argument, NULL, 'j'};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n++] = (struct option){"consent", no_argument, NULL, 'C'};
    opts[n++] = (struct option){"backchannel-logout-uri", required_argument, NULL, 'B'};
    opts[n++] = (struct option){"id-token-alg", required_argument, NULL, 'A'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    struct cli_settings s;
    memset(&s, 0, sizeof s);
    tka_client_oidc oidc;
    memset(&oidc, 0, sizeof oidc);
    char scopes[TKS_LIST_MAX + 1] = "";
    char auds[TKS_LIST_MAX + 1] = "";
    char redirects[TKS_URIS_MAX + 1] = "";
    char serves[TKS_LIST_MAX + 1] = "";
    int is_public = 0;
    const char *ttl_s = NULL;
    int as_json = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= CLI_SETTING_OPT_BASE) {
            cli_settings_flag(&s, c, optarg);
        } else if (c == 's' || c == 'a') {
            if (append_list(c == 's' ? scopes : auds, sizeof scopes, optarg) != 0) {
                fprintf(stderr, "tokend client: the --%s list is too long\n", c == 's' ? "scope" : "aud");
                return CLI_EXIT_USAGE;
            }
        } else if (c == 't') {
            ttl_s = optarg;
        } else if (c == 'r') {
            if (append_list(redirects, sizeof redirects, optarg) != 0) {
                fprintf(stderr, "tokend client: too many --redirect-uri\n");
                return CLI_EXIT_USAGE;
            }
        } else if (c == 'P') {
            is_public = 1;
        } else if (c == 'S') {
            if (append_list(serves, sizeof serves, optarg) != 0) {
                fprintf(stderr, "tokend client: the --serves list is too long\n");
                return CLI_EXIT_USAGE;
            }
        } else if (c == 'j') {
            as_json = 1;
        } else if (c == 'C') {
            oidc.consent = 1;
        } else if (c == 'B') {
            oidc.backchannel_logout_uri = optarg;
        } else if (c == 'A') {
            oidc.id_token_alg = optarg;
        } else if (c == 'h') {
            client_help(stdout);
            return CLI_EXIT_OK;
        } else {
            cli_option_hint("client", opts, argc, argv);
            fprintf(stderr, "Run 'tokend client --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        client_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *verb = argv[optind];
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    int need_arg = strcmp(verb, "list") != 0;
    if ((need_arg && !arg) || optind + 1 + need_arg != argc) {
        fprintf(stderr, "tokend client %s: %s\n", verb, need_arg ? "takes one name or id" : "takes no argument");
        return CLI_EXIT_USAGE;
    }
    if (cli_settings_finish(&s, "client") != 0) {
        cli_settings_free(&s);
        return CLI_EXIT_USAGE;
    }
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    int status = CLI_EXIT_USAGE;
    if (strcmp(verb, "add") == 0) {
        int64_t ttl = 0;
        if (ttl_s && (cli_parse_duration(ttl_s, &ttl) != 0 || ttl <= 0)) {
            fprintf(stderr, "tokend client add: --ttl takes a duration such as 5m or 1h\n");
            goto out;
        }
        if (!auds[0]) {
            fprintf(stderr, "tokend client add: give at least one --aud (the API the tokens are for)\n");
            goto out;
        }
        if (cli_open_authority(&s, "client", 1, admin_issuer(&s), &store, &auth) != 0) {
            goto out;
        }
        tks_client cl;
        char secret[TKA_SECRET_TEXT_LEN];
        char err[256];
        if (tka_client_create_oidc(auth, NULL, arg, scopes, auds, ttl, redirects, is_public, serves, &oidc,
                                   (int64_t)time(NULL), &cl, secret, err, sizeof err) != 0) {
            fprintf(stderr, "tokend client add: %s\n", err);
            status = CLI_EXIT_INVALID;
            goto out;
        }
        if (as_json) {
            json_t *o = client_json(&cl);
            if (!cl.is_public) {
                json_object_set_new(o, "client_secret", json_string(secret));
            }
            cli_print_json(o);
        } else if (cl.is_public) {
            printf("client_id:     %s\n(public client: no secret; it signs users in with PKCE)\n", cl.id);
        } else {
            printf("client_id:     %s\nclient_secret: %s\n", cl.id, secret);
            fprintf(stderr,
                    "The secret is shown once; tokend keeps only its hash. Get a token with:\n"
                    "  curl -u '%s:<secret>' -d grant_type=client_credentials https://<tokend>/oauth/token\n",
                    cl.id);
        }
        OPENSSL_cleanse(secret, sizeof secret);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (scopes[0] || auds[0] || ttl_s || serves[0] || oidc.consent || oidc.backchannel_logout_uri ||
        oidc.id_token_alg) {
        fprintf(stderr,
                "tokend client %s: --scope, --aud, --ttl, --serves and the OpenID Connect options belong to "
                "'add'\n",
                verb);
        goto out;
    }
    if (cli_open_store(&s, "client", 0, &store) != 0) {
        goto out;
    }
    status = CLI_EXIT_INVALID;
    tks_result rc = TKS_OK;
    if (strcmp(verb, "list") == 0) {
        struct list_ctx l = {as_json ? json_array() : NULL, 0};
        rc = tks_client_list(store, list_client, &l);
        if (as_json) {
            cli_print_json(l.arr);
        } else if (l.n == 0) {
            printf("no clients; add one with: tokend client add NAME --scope SCOPE --aud AUD\n");
        }
    } else if (strcmp(verb, "show") == 0) {
        tks_client cl;
        rc = tks_client_get(store, arg, &cl);
        if (rc == TKS_OK) {
            if (as_json) {
                cli_print_json(client_json(&cl));
            } else {
                client_human(&cl);
            }
        }
    } else if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
        rc = tks_client_set_disabled(store, arg, verb[0] == 'd');
        if (rc == TKS_OK && !as_json) {
            printf("client %s %sd\n", arg, verb);
        }
    } else if (strcmp(verb, "remove") == 0) {
        rc = tks_client_delete(store, arg);
        if (rc == TKS_OK && !as_json) {
            printf("client %s removed\n", arg);
        }
    } else {
        fprintf(stderr, "tokend client: unknown verb '%s' (add, list, show, disable, enable, remove)\n", verb);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    if (rc == TKS_OK && as_json && verb[0] != 'l' && verb[0] != 's') {
        cli_print_json(json_pack("{s:s, s:s}", "client_id", arg, "result", verb));
    }
    if (rc == TKS_NOT_FOUND) {
        fprintf(stderr, "tokend client %s: no client '%s'\n", verb, arg);
    } else if (rc != TKS_OK) {
        fprintf(stderr, "tokend client %s: %s\n", verb, tks_errmsg(store));
    } else {
        status = CLI_EXIT_OK;
    }
out:
    tka_close(auth);
    tks_close(store);
    cli_settings_free(&s);
    return status;
}

/* ---- tokend revoke ---------------------------------------------------------------- */

static void revoke_help(FILE *f)
{
    fputs("Usage: tokend revoke (--jti JTI | --sid SID | --token TOKEN|- | --jti-file FILE|- | --sid-file FILE|-)\n"
          "                     [--reason WORD] [--json]\n"
          "\n"
          "Revokes an access token by its jti, every token of a session by its sid,\n"
          "or the token given (its signature is checked with the key ring first).\n"
          "--jti-file and --sid-file revoke many at once: one value per line (blank\n"
          "lines and lines starting with # are skipped, spaces around a value\n"
          "ignored; a value is 1-256 printable ASCII characters without spaces).\n"
          "The whole file is checked first: when a line is not valid, each such\n"
          "line is reported with its number and nothing is revoked. Valid files\n"
          "are written 1000 revocations per transaction; should the store fail\n"
          "part way, the batches written before stay revoked and running the same\n"
          "command again is safe.\n"
          "A running server rejects it as 'revoked' within a second. tokend does not\n"
          "keep the jtis of the access tokens it issues: a --jti it cannot know of is\n"
          "revoked ahead, with a note.\n"
          "\n"
          "Settings (shared with tokend serve; a revocation is kept --max-ttl + --leeway):\n",
          f);
    cli_settings_help_of(f, revoke_settings, N_OF(revoke_settings));
    fputs("\nExamples:\n"
          "  tokend revoke --jti 3ou0JWRWFRhO4qA3bfgnaA --reason admin\n"
          "  tokend revoke --token - < leaked-token.txt\n"
          "  tokend revoke --jti-file leaked-jtis.txt --reason leak\n"
          "  grep -o 'jti=[^ ]*' incident.log | cut -d= -f2 | tokend revoke --jti-file -\n",
          f);
}

/* tokend revoke --jti-file / --sid-file. */
#define REVOKE_FILE_MAX ((size_t)256 << 20) /* 256 MiB: about ten million jtis */
#define BAD_LINES_SHOWN 10

/* Splits buf (len bytes, NUL-terminated after them) into the values of its
 * lines, in place: vals[] point into buf. Reports the lines that are not
 * values; returns how many there were. */
static size_t parse_value_lines(char *buf, size_t len, const char *name, const char *what, const char **vals, size_t *n)
{
    size_t bad = 0;
    size_t line = 0;
    *n = 0;
    for (size_t at = 0; at < len;) {
        char *p = buf + at;
        char *nl = memchr(p, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - p) : len - at;
        at += ll + 1;
        line++;
        const char *why = NULL;
        if (memchr(p, '\0', ll)) {
            why = "holds a NUL byte";
        }
        while (ll > 0 && (p[ll - 1] == '\r' || p[ll - 1] == ' ' || p[ll - 1] == '\t')) {
            ll--;
        }
        while (ll > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            ll--;
        }
        if (!why && (ll == 0 || *p == '#')) {
            continue;
        }
        if (!why && ll > TKS_VALUE_MAX) {
            why = "is longer than 256 bytes";
        }
        for (size_t i = 0; !why && i < ll; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c <= 0x20 || c >= 0x7f) {
                why = c == ' ' || c == '\t' ? "holds a space (one value per line)"
                                            : "holds a character that is not printable ASCII";
            }
        }
        if (why) {
            if (bad < BAD_LINES_SHOWN) {
                fprintf(stderr, "tokend revoke: %s:%zu: not a %s: the line %s\n", name, line, what, why);
            }
            bad++;
            continue;
        }
        p[ll] = '\0';
        vals[(*n)++] = p;
    }
    if (bad > BAD_LINES_SHOWN) {
        fprintf(stderr, "tokend revoke: %s: ... and %zu more lines that are not a %s\n", name, bad - BAD_LINES_SHOWN,
                what);
    }
    return bad;
}

static int revoke_file(const struct cli_settings *s, enum tks_revocation_kind kind, const char *path,
                       const char *reason, int as_json)
{
    const char *what = kind == TKS_REVOKE_JTI ? "jti" : "sid";
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    char *buf = NULL;
    size_t len = 0;
    char err[512];
    if (strcmp(path, "-") == 0) {
        int trunc = 0;
        if (cli_read_stdin(REVOKE_FILE_MAX, &buf, &len, &trunc) != 0 || trunc) {
            fprintf(stderr, "tokend revoke: cannot read the %ss from stdin%s\n", what,
                    trunc ? ": more than 256 MiB" : "");
            free(buf);
            return CLI_EXIT_INVALID;
        }
    } else if (cli_read_file(path, REVOKE_FILE_MAX, &buf, &len, err, sizeof err) != 0) {
        fprintf(stderr, "tokend revoke: --%s-file: %s\n", what, err);
        return CLI_EXIT_INVALID;
    }
    size_t lines = 1;
    for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++) {
        lines++;
    }
    const char **vals = calloc(lines, sizeof *vals);
    if (!vals) {
        fprintf(stderr, "tokend revoke: out of memory\n");
        free(buf);
        return CLI_EXIT_INVALID;
    }
    size_t n = 0;
    int status = CLI_EXIT_INVALID;
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    size_t bad = parse_value_lines(buf, len, name, what, vals, &n);
    if (bad > 0) {
        fprintf(stderr, "tokend revoke: %zu line%s of %s %s not a %s: nothing was revoked\n", bad, bad == 1 ? "" : "s",
                name, bad == 1 ? "is" : "are", what);
        goto out;
    }
    if (cli_open_authority(s, "revoke", 0, admin_issuer(s), &store, &auth) != 0) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    const tka_config *cfg = tka_get_config(auth);
    int64_t now = (int64_t)time(NULL);
    int64_t until = now + cfg->max_ttl + cfg->leeway;
    size_t done = 0, added = 0;
    char when[32];
    tk_format_time(until, when, sizeof when);
    if (tka_revoke_many(auth, kind, vals, n, reason, now, until, &done, &added) != 0) {
        fprintf(stderr,
                "tokend revoke: %s; %zu of the %zu %ss were revoked before that and stay revoked: running the same "
                "command again is safe\n",
                tks_errmsg(store), done, n, what);
        goto out;
    }
    if (as_json) {
        cli_print_json(json_pack("{s:s, s:I, s:I, s:s, s:I}", "kind", what, "count", (json_int_t)n, "new",
                                 (json_int_t)added, "reason", reason, "until", (json_int_t)until));
    } else {
        printf("revoked %zu %ss (%s), %zu of them not revoked before; kept until %s\n", n, what, reason, added, when);
        if (n == 0) {
            fprintf(stderr, "tokend revoke: note: %s holds no %s\n", name, what);
        }
    }
    status = CLI_EXIT_OK;
out:
    tka_close(auth);
    tks_close(store);
    free(vals);
    free(buf);
    return status;
}

int cli_revoke(int argc, char **argv)
{
    struct option opts[SET_COUNT_ + 10];
    size_t n = cli_settings_options_of(opts, SET_COUNT_, revoke_settings, N_OF(revoke_settings));
    opts[n++] = (struct option){"jti", required_argument, NULL, 'j'};
    opts[n++] = (struct option){"sid", required_argument, NULL, 's'};
    opts[n++] = (struct option){"token", required_argument, NULL, 't'};
    opts[n++] = (struct option){"jti-file", required_argument, NULL, 'F'};
    opts[n++] = (struct option){"sid-file", required_argument, NULL, 'G'};
    opts[n++] = (struct option){"reason", required_argument, NULL, 'r'};
    opts[n++] = (struct option){"json", no_argument, NULL, 'J'};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    struct cli_settings s;
    memset(&s, 0, sizeof s);
    const char *jti = NULL, *sid = NULL, *token = NULL, *reason = "admin";
    const char *jti_file = NULL, *sid_file = NULL;
    int as_json = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= CLI_SETTING_OPT_BASE) {
            cli_settings_flag(&s, c, optarg);
        } else if (c == 'j') {
            jti = optarg;
        } else if (c == 's') {
            sid = optarg;
        } else if (c == 't') {
            token = optarg;
        } else if (c == 'F') {
            jti_file = optarg;
        } else if (c == 'G') {
            sid_file = optarg;
        } else if (c == 'r') {
            reason = optarg;
        } else if (c == 'J') {
            as_json = 1;
        } else if (c == 'h') {
            revoke_help(stdout);
            return CLI_EXIT_OK;
        } else {
            cli_option_hint("revoke", opts, argc, argv);
            fprintf(stderr, "Run 'tokend revoke --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc || (!!jti + !!sid + !!token + !!jti_file + !!sid_file) != 1) {
        fprintf(stderr, "tokend revoke: give exactly one of --jti, --sid, --token, --jti-file, --sid-file\n\n");
        revoke_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!tka_valid_id(reason, TKS_REASON_MAX)) {
        fprintf(stderr, "tokend revoke: --reason is one word of A-Z a-z 0-9 . _ ~ - (at most 32)\n");
        return CLI_EXIT_USAGE;
    }
    if (cli_settings_finish(&s, "revoke") != 0) {
        cli_settings_free(&s);
        return CLI_EXIT_USAGE;
    }
    if (jti_file || sid_file) {
        int st = revoke_file(&s, jti_file ? TKS_REVOKE_JTI : TKS_REVOKE_SID, jti_file ? jti_file : sid_file, reason,
                             as_json);
        cli_settings_free(&s);
        return st;
    }
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    char *input = NULL;
    size_t input_len = 0;
    int status = CLI_EXIT_USAGE;
    if (cli_open_authority(&s, "revoke", 0, admin_issuer(&s), &store, &auth) != 0) {
        goto out;
    }
    const tka_config *cfg = tka_get_config(auth);
    int64_t now = (int64_t)time(NULL);
    int64_t until = now + cfg->max_ttl + cfg->leeway;
    enum tks_revocation_kind kind = sid ? TKS_REVOKE_SID : TKS_REVOKE_JTI;
    const char *value = sid ? sid : jti;
    char jti_buf[TKS_VALUE_MAX + 1];
    status = CLI_EXIT_INVALID;
    if (token) {
        if (strcmp(token, "-") == 0) {
            int trunc = 0;
            if (cli_read_stdin(TK_LIMIT_TOKEN_LEN + 64, &input, &input_len, &trunc) != 0 || trunc) {
                fprintf(stderr, "tokend revoke: cannot read the token from stdin\n");
                goto out;
            }
            while (input_len > 0 &&
                   (input[input_len - 1] == '\n' || input[input_len - 1] == '\r' || input[input_len - 1] == ' ')) {
                input[--input_len] = '\0';
            }
            token = input;
        }
        tk_token *t = NULL;
        tk_verdict v;
        if (tk_token_parse(token, strlen(token), NULL, &t, &v) != TK_OK || !t) {
            fprintf(stderr, "tokend revoke: not a token: %s\n", v.detail);
            goto out;
        }
        char *jwks = NULL;
        tk_keyset *ks = NULL;
        int ok =
            tka_jwks(auth, &jwks) == 0 && tk_keyset_from_jwks(jwks, strlen(jwks), TK_ALG_UNSET, &ks, NULL) == TK_OK;
        tk_free(jwks);
        if (!ok || tk_token_verify_signature(t, ks, &v) != TK_OK || v.reason != TK_REASON_VALID) {
            fprintf(stderr, "tokend revoke: the token was not signed by this tokend's keys (%s: %s)\n",
                    tk_reason_code(v.reason), v.detail);
            tk_keyset_free(ks);
            tk_token_free(t);
            goto out;
        }
        tk_keyset_free(ks);
        const char *tj = tk_token_claim_string(t, "jti");
        double exp = 0;
        if (!tj || strlen(tj) > TKS_VALUE_MAX) {
            fprintf(stderr, "tokend revoke: the token has no usable jti\n");
            tk_token_free(t);
            goto out;
        }
        snprintf(jti_buf, sizeof jti_buf, "%s", tj);
        if (tk_token_claim_number(t, "exp", &exp) && exp > 0 && exp < (double)TK_LIMIT_NUMERICDATE_MAX) {
            until = (int64_t)exp + cfg->leeway;
        }
        tk_token_free(t);
        value = jti_buf;
    }
    /* What this tokend knows of the value, said before it is revoked: a
     * typo in --jti or --sid would otherwise look like a success. */
    tks_revocation prev;
    tks_result pr = tks_revocation_get(store, kind, value, now, &prev);
    if (pr != TKS_OK && pr != TKS_NOT_FOUND) {
        fprintf(stderr, "tokend revoke: %s\n", tks_errmsg(store));
        goto out;
    }
    int already = pr == TKS_OK;
    const char *prev_reason = prev.reason;
    int64_t prev_at = prev.revoked_at;
    char note[512] = "";
    const char *seen = "yes"; /* the token itself was given */
    char when[32];
    tk_format_time(until, when, sizeof when);
    if (already) {
        char at[32];
        tk_format_time(prev_at, at, sizeof at);
        snprintf(note, sizeof note, "%s %s was already revoked at %s (%s)", sid ? "sid" : "jti", value, at,
                 prev_reason);
        seen = "revoked";
    } else if (sid) {
        tks_session se;
        tks_result gr = tks_session_get_sid(store, sid, &se);
        seen = gr == TKS_OK ? "yes" : "no";
        if (gr != TKS_OK) {
            snprintf(note, sizeof note,
                     "no sign-in session with sid %s is in the store (a typo? an ended session may have been purged); "
                     "it is revoked ahead: tokens naming this sid are rejected until %s",
                     sid, when);
        }
    } else if (jti) {
        seen = "unknown";
        snprintf(note, sizeof note,
                 "no token with jti %s was seen here: tokend does not keep the jtis of the access tokens it issues, "
                 "so it cannot tell whether one exists (check for a typo); it is revoked ahead: a token with this "
                 "jti is rejected until %s",
                 jti, when);
    }
    if (tka_revoke(auth, kind, value, reason, now, until) != 0) {
        fprintf(stderr, "tokend revoke: %s\n", tks_errmsg(store));
        goto out;
    }
    if (as_json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "kind", sid ? "sid" : "jti", "value", value, "reason",
                              reason, "until", (json_int_t)until, "seen", seen);
        if (note[0]) {
            json_object_set_new(o, "note", json_string(note));
        }
        cli_print_json(o);
    } else {
        printf("revoked %s %s (%s); kept until %s\n", sid ? "sid" : "jti", value, reason, when);
        if (note[0]) {
            fprintf(stderr, "tokend revoke: note: %s\n", note);
        }
    }
    status = CLI_EXIT_OK;
out:
    cli_free_secret(input, input_len);
    tka_close(auth);
    tks_close(store);
    cli_settings_free(&s);
    return status;
}

/* ---- tokend keys ------------------------------------------------------------------- */

static void keys_help(FILE *f)
{
    fputs("Usage: tokend keys list|rotate [--json]\n"
          "\n"
          "The signing key ring: 'next' is published but does not sign yet, 'active'\n"
          "signs, 'retired' only verifies until every token it signed has expired.\n"
          "'rotate' makes next active, retires the active key and makes a new next.\n"
          "A running server picks the change up within a second.\n"
          "\n"
          "Settings (shared with tokend serve):\n",
          f);
    cli_settings_help_of(f, keys_settings, N_OF(keys_settings));
    fputs("\nExamples:\n  tokend keys list\n  tokend keys rotate --json\n", f);
}

static const char *state_name(enum tks_key_state st)
{
    return st == TKS_KEY_NEXT ? "next" : st == TKS_KEY_ACTIVE ? "active" : "retired";
}

static int list_key(const tks_key_row *k, void *ud)
{
    json_t *arr = ud;
    if (arr) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "kid", k->kid, "alg", k->alg,
                                             "state", state_name(k->state), "created_at", (json_int_t)k->created_at,
                                             "activated_at", (json_int_t)k->activated_at, "retired_at",
                                             (json_int_t)k->retired_at, "verify_until", (json_int_t)k->verify_until));
        return 0;
    }
    char c[32], u[32];
    tk_format_time(k->created_at, c, sizeof c);
    tk_format_time(k->verify_until, u, sizeof u);
    printf("%-18s %-6s %-8s created %s%s%s\n", k->kid, k->alg, state_name(k->state), c,
           k->state == TKS_KEY_RETIRED ? "  verifies until " : "", k->state == TKS_KEY_RETIRED ? u : "");
    return 0;
}

int cli_keys(int argc, char **argv)
{
    struct option opts[SET_COUNT_ + 4];
    size_t n = cli_settings_options_of(opts, SET_COUNT_, keys_settings, N_OF(keys_settings));
    opts[n++] = (struct option){"json", no_argument, NULL, 'J'};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    struct cli_settings s;
    memset(&s, 0, sizeof s);
    int as_json = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= CLI_SETTING_OPT_BASE) {
            cli_settings_flag(&s, c, optarg);
        } else if (c == 'J') {
            as_json = 1;
        } else if (c == 'h') {
            keys_help(stdout);
            return CLI_EXIT_OK;
        } else {
            cli_option_hint("keys", opts, argc, argv);
            fprintf(stderr, "Run 'tokend keys --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || (strcmp(argv[optind], "list") != 0 && strcmp(argv[optind], "rotate") != 0)) {
        keys_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_settings_finish(&s, "keys") != 0) {
        cli_settings_free(&s);
        return CLI_EXIT_USAGE;
    }
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    int status = CLI_EXIT_USAGE;
    if (cli_open_authority(&s, "keys", 1, admin_issuer(&s), &store, &auth) != 0) {
        goto out;
    }
    status = CLI_EXIT_INVALID;
    if (strcmp(argv[optind], "rotate") == 0) {
        char err[256];
        if (tka_rotate(auth, (int64_t)time(NULL), err, sizeof err) != 0) {
            fprintf(stderr, "tokend keys rotate: %s\n", err);
            goto out;
        }
        if (!as_json) {
            printf("rotated; the key ring is now:\n");
        }
    }
    json_t *arr = as_json ? json_array() : NULL;
    if (tka_keys_list(auth, list_key, arr) != 0) {
        json_decref(arr);
        fprintf(stderr, "tokend keys: %s\n", tks_errmsg(store));
        goto out;
    }
    if (arr) {
        cli_print_json(json_pack("{s:o}", "keys", arr));
    }
    status = CLI_EXIT_OK;
out:
    tka_close(auth);
    tks_close(store);
    cli_settings_free(&s);
    return status;
}
