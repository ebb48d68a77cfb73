/*
 * settings.c — one table of settings for `tokend serve` and the admin
 * commands: --flag, TOKEND_* environment variable, config file key, default.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/settings.h"

const struct cli_setting_def cli_settings[SET_COUNT_] = {
    [SET_CONFIG] = {"config", "TOKEND_CONFIG", NULL, 0, 1, "config file of 'key = value' lines (keys as the flags)"},
    [SET_LISTEN] = {"listen", "TOKEND_LISTEN", "127.0.0.1:8443", 0, 0, "address and port to listen on (HOST:PORT)"},
    [SET_STORE] = {"store", "TOKEND_STORE", "sqlite://./tokend.db", 0, 1,
                   "store URL: sqlite://PATH, or postgres://USER@HOST:PORT/DB?sslmode=... (several instances)"},
    [SET_MASTER_KEY_FILE] = {"master-key-file", "TOKEND_MASTER_KEY_FILE", "./tokend.master.key", 0, 1,
                             "32-byte key sealing private keys at rest; created 0600 on first run"},
    [SET_DATA_DIR] = {"data-dir", "TOKEND_DATA_DIR", ".", 0, 0, "where --dev keeps its self-signed certificate"},
    [SET_ISSUER] = {"issuer", "TOKEND_ISSUER", NULL, 0, 1, "iss of issued tokens (default: the public URL)"},
    [SET_PUBLIC_URL] = {"public-url", "TOKEND_PUBLIC_URL", NULL, 0, 0,
                        "URL clients reach the server at (default: from --listen)"},
    [SET_TLS_CERT] = {"tls-cert", "TOKEND_TLS_CERT", NULL, 0, 0, "PEM certificate chain for HTTPS"},
    [SET_TLS_KEY] = {"tls-key", "TOKEND_TLS_KEY", NULL, 0, 0, "PEM private key for HTTPS (mode 0600)"},
    [SET_DEV] = {"dev", "TOKEND_DEV", NULL, 1, 0,
                 "development mode: make a self-signed certificate for localhost if none is given"},
    [SET_INSECURE_HTTP] = {"insecure-http", "TOKEND_INSECURE_HTTP", NULL, 1, 0,
                           "serve plain HTTP (loud warning unless on loopback)"},
    [SET_ALG] = {"alg", "TOKEND_ALG", "ES256", 0, 1, "signing alg of new keys: ES256, EdDSA, RS256, PS256"},
    [SET_ACCESS_TTL] = {"access-ttl", "TOKEND_ACCESS_TTL", "15m", 0, 1, "default access token lifetime"},
    [SET_MAX_TTL] = {"max-ttl", "TOKEND_MAX_TTL", "24h", 0, 1, "longest access token lifetime a client may have"},
    [SET_ROTATE_EVERY] = {"rotate-every", "TOKEND_ROTATE_EVERY", "30d", 0, 1,
                          "signing key rotation period (0: only 'tokend keys rotate')"},
    [SET_LEEWAY] = {"leeway", "TOKEND_LEEWAY", "60", 0, 1, "clock skew allowed when validating, seconds (max 300)"},
    [SET_SESSION_IDLE] = {"session-idle", "TOKEND_SESSION_IDLE", "30m", 0, 1, "browser session idle timeout"},
    [SET_SESSION_MAX] = {"session-max", "TOKEND_SESSION_MAX", "12h", 0, 1, "browser session absolute timeout"},
    [SET_REFRESH_TTL] = {"refresh-ttl", "TOKEND_REFRESH_TTL", "30d", 0, 1,
                         "refresh token family lifetime (rotation does not extend it)"},
    [SET_CODE_TTL] = {"code-ttl", "TOKEND_CODE_TTL", "60s", 0, 1, "authorization code lifetime"},
    [SET_THREADS] = {"threads", "TOKEND_THREADS", "0", 0, 0, "worker threads (0: one per core)"},
    [SET_MAX_CONNECTIONS] = {"max-connections", "TOKEND_MAX_CONNECTIONS", "1024", 0, 0, "connection cap"},
    [SET_EXPLAIN] = {"explain", "TOKEND_EXPLAIN", "full", 0, 0,
                     "what rejected clients are told: full (reason and description) or bare (RFC 6750 error)"},
    [SET_LOG] = {"log", "TOKEND_LOG", NULL, 0, 0, "request log file (default: stderr)"},
    [SET_MAX_PER_IP] = {"max-connections-per-ip", "TOKEND_MAX_CONNECTIONS_PER_IP", "64", 0, 0,
                        "connections one client address may hold (0: no limit; trusted proxies are exempt)"},
    [SET_REQUEST_TIMEOUT] = {"request-timeout", "TOKEND_REQUEST_TIMEOUT", "30s", 0, 0,
                             "time to receive a whole request, head and body, once a connection is ready for it"},
    [SET_TRUSTED_PROXY] = {"trusted-proxy", "TOKEND_TRUSTED_PROXY", NULL, 0, 0,
                           "proxies (IPs or CIDR ranges, comma-separated) whose forwarding header names the client"},
    [SET_FORWARDED_HEADER] = {"forwarded-header", "TOKEND_FORWARDED_HEADER", "x-forwarded-for", 0, 0,
                              "the header trusted proxies set: x-forwarded-for or forwarded (RFC 7239)"},
    [SET_AUTH_AUDIENCE] = {"auth-audience", "TOKEND_AUTH_AUDIENCE", NULL, 0, 0,
                           "audience /auth requires when the proxy's query names none (?aud=...)"},
    [SET_LOGIN_WORKERS] = {"login-workers", "TOKEND_LOGIN_WORKERS", "0", 0, 0,
                           "threads checking passwords (Argon2id, 64 MiB each; 0: one per core)"},
    [SET_LOGIN_QUEUE] = {"login-queue", "TOKEND_LOGIN_QUEUE", "32", 0, 0,
                         "sign-ins that may wait for a password check; more get 503 with Retry-After"},
    [SET_STORE_PASSWORD_FILE] = {"store-password-file", "TOKEND_STORE_PASSWORD_FILE", NULL, 0, 1,
                                 "file holding the PostgreSQL password (or use the URL, or PGPASSFILE)"},
    [SET_JWKS_MAX_AGE] = {"jwks-max-age", "TOKEND_JWKS_MAX_AGE", "5m", 0, 1,
                          "how long verifiers may cache the JWKS; a new key is published that long before it signs"},
    [SET_MAX_STALE] = {"max-stale", "TOKEND_MAX_STALE", "30s", 0, 0,
                       "validation fails closed when revocations have not been caught up with the store for this long"},
};

size_t cli_settings_options(struct option *opts, size_t cap, int admin)
{
    size_t n = 0;
    for (int k = 0; k < SET_COUNT_ && n < cap; k++) {
        if (admin && !cli_settings[k].admin) {
            continue;
        }
        opts[n].name = cli_settings[k].flag;
        opts[n].has_arg = cli_settings[k].is_bool ? no_argument : required_argument;
        opts[n].flag = NULL;
        opts[n].val = CLI_SETTING_OPT_BASE + k;
        n++;
    }
    return n;
}

void cli_settings_flag(struct cli_settings *s, int val, const char *arg)
{
    int k = val - CLI_SETTING_OPT_BASE;
    if (k < 0 || k >= SET_COUNT_) {
        return;
    }
    s->v[k] = cli_settings[k].is_bool ? "1" : arg;
    s->source[k] = "flag";
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    char *e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) {
        *--e = '\0';
    }
    return p;
}

static int read_config(struct cli_settings *s, const char *path, const char *cmd)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tokend %s: cannot read the config file %s: %s\n", cmd, path, strerror(errno));
        return 2;
    }
    char line[1024];
    int lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "tokend %s: %s:%d: line too long\n", cmd, path, lineno);
            rc = 2;
            break;
        }
        char *p = trim(line);
        if (!*p || *p == '#') {
            continue;
        }
        char *eq = strchr(p, '=');
        if (!eq) {
            fprintf(stderr, "tokend %s: %s:%d: expected 'key = value'\n", cmd, path, lineno);
            rc = 2;
            break;
        }
        *eq = '\0';
        char *key = trim(p);
        char *val = trim(eq + 1);
        int k = -1;
        for (int i = 0; i < SET_COUNT_; i++) {
            if (strcmp(cli_settings[i].flag, key) == 0) {
                k = i;
                break;
            }
        }
        if (k < 0 || k == SET_CONFIG) {
            fprintf(stderr, "tokend %s: %s:%d: unknown setting '%s' (see tokend serve --help)\n", cmd, path, lineno,
                    key);
            rc = 2;
            break;
        }
        if (s->v[k]) {
            continue; /* a flag or the environment already set it */
        }
        if (cli_settings[k].is_bool && strcmp(val, "true") != 0 && strcmp(val, "false") != 0 && strcmp(val, "1") != 0 &&
            strcmp(val, "0") != 0) {
            fprintf(stderr, "tokend %s: %s:%d: %s takes true or false\n", cmd, path, lineno, key);
            rc = 2;
            break;
        }
        free(s->owned[k]);
        s->owned[k] = strdup(cli_settings[k].is_bool ? ((val[0] == 't' || val[0] == '1') ? "1" : "") : val);
        if (!s->owned[k]) {
            rc = 2;
            break;
        }
        s->v[k] = s->owned[k][0] || !cli_settings[k].is_bool ? s->owned[k] : NULL;
        s->source[k] = "config";
    }
    fclose(f);
    return rc;
}

int cli_settings_finish(struct cli_settings *s, const char *cmd_name)
{
    for (int k = 0; k < SET_COUNT_; k++) {
        if (s->v[k]) {
            continue;
        }
        const char *e = getenv(cli_settings[k].env);
        if (e && *e) {
            if (cli_settings[k].is_bool) {
                if (strcmp(e, "1") == 0 || strcmp(e, "true") == 0) {
                    s->v[k] = "1";
                    s->source[k] = "env";
                } else if (strcmp(e, "0") != 0 && strcmp(e, "false") != 0) {
                    fprintf(stderr, "tokend %s: %s takes 1/true or 0/false\n", cmd_name, cli_settings[k].env);
                    return 2;
                }
            } else {
                s->v[k] = e;
                s->source[k] = "env";
            }
        }
    }
    if (s->v[SET_CONFIG]) {
        int rc = read_config(s, s->v[SET_CONFIG], cmd_name);
        if (rc != 0) {
            return rc;
        }
    }
    for (int k = 0; k < SET_COUNT_; k++) {
        if (!s->v[k] && cli_settings[k].def) {
            s->v[k] = cli_settings[k].def;
            s->source[k] = "default";
        }
    }
    return 0;
}

void cli_settings_free(struct cli_settings *s)
{
    for (int k = 0; k < SET_COUNT_; k++) {
        free(s->owned[k]);
        s->owned[k] = NULL;
    }
}

void cli_settings_help(FILE *f, int admin)
{
    for (int k = 0; k < SET_COUNT_; k++) {
        if (admin && !cli_settings[k].admin) {
            continue;
        }
        char flag[48];
        snprintf(flag, sizeof flag, "--%s%s", cli_settings[k].flag, cli_settings[k].is_bool ? "" : " V");
        fprintf(f, "  %-24s %s\n  %-24s env %s%s%s\n", flag, cli_settings[k].help, "", cli_settings[k].env,
                cli_settings[k].def ? ", default " : "", cli_settings[k].def ? cli_settings[k].def : "");
    }
}

int cli_setting_bool(const struct cli_settings *s, enum cli_setting k)
{
    return s->v[k] && strcmp(s->v[k], "1") == 0;
}
