/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.c — one table of settings for `tokend serve` and the admin
 * commands: --flag, TOKEND_* environment variable, config file key, default.
 * Installed or run from a build tree is decided here, at run time, from
 * where the executable is: it chooses the default config file and where
 * the files go (docs/operations.md "Running as a service").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/paths.h"
#include "cli/settings.h"
#include "store/store.h"

const struct cli_setting_def cli_settings[SET_COUNT_] = {
    [SET_CONFIG] = {"config", "TOKEND_CONFIG", NULL, 0, 1, "config file of 'key = value' lines (keys as the flags)"},
    [SET_LISTEN] = {"listen", "TOKEND_LISTEN", "127.0.0.1:8443", 0, 0, "address and port to listen on (HOST:PORT)"},
    [SET_ADMIN_LISTEN] = {"admin-listen", "TOKEND_ADMIN_LISTEN", "127.0.0.1:8444", 0, 0,
                          "the admin listener, plain HTTP: /metrics, /healthz, /readyz (HOST:PORT, or off)"},
    [SET_PUBLIC_METRICS] = {"public-metrics", "TOKEND_PUBLIC_METRICS", NULL, 1, 0,
                            "serve /metrics on the public listener too (else only on the admin listener)"},
    [SET_DATA_DIR] = {"data-dir", "TOKEND_DATA_DIR", NULL, 0, 1,
                      "where tokend keeps its files: the SQLite store, the master key, --dev's certificate"},
    [SET_STORE] = {"store", "TOKEND_STORE", NULL, 0, 1,
                   "store URL: sqlite://PATH, or postgres://USER@HOST:PORT/DB?sslmode=... (several instances)"},
    [SET_MASTER_KEY_FILE] = {"master-key-file", "TOKEND_MASTER_KEY_FILE", NULL, 0, 1,
                             "32-byte key sealing private keys at rest; created 0600 on first run"},
    [SET_ISSUER] = {"issuer", "TOKEND_ISSUER", NULL, 0, 1, "iss of issued tokens (default: the public URL)"},
    [SET_PUBLIC_URL] = {"public-url", "TOKEND_PUBLIC_URL", NULL, 0, 0,
                        "URL clients reach the server at (default: from --listen)"},
    [SET_TLS_CERT] = {"tls-cert", "TOKEND_TLS_CERT", NULL, 0, 0, "PEM certificate chain for HTTPS"},
    [SET_TLS_KEY] = {"tls-key", "TOKEND_TLS_KEY", NULL, 0, 0, "PEM private key for HTTPS (mode 0600)"},
    [SET_DEV] = {"dev", "TOKEND_DEV", NULL, 1, 0,
                 "development mode: make a self-signed certificate for localhost if none is given"},
    [SET_INSECURE_HTTP] = {"insecure-http", "TOKEND_INSECURE_HTTP", NULL, 1, 0,
                           "serve plain HTTP (loud warning unless on loopback)"},
    [SET_ALG] = {"alg", "TOKEND_ALG", "ES256", 0, 1,
                 "signing alg of new keys: ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256, "
                 "PS384, PS512, or HS256, HS384, HS512 when issuer and verifiers are one party"},
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
    [SET_AUDIT_RETENTION] = {"audit-retention", "TOKEND_AUDIT_RETENTION", "90d", 0, 0,
                             "how long audit events are kept (0: for ever)"},
    [SET_SESSION_RETENTION] = {"session-retention", "TOKEND_SESSION_RETENTION", "30d", 0, 0,
                               "how long ended browser sessions are kept (0: for ever)"},
    [SET_REFRESH_GRACE] = {"refresh-grace", "TOKEND_REFRESH_GRACE", "1d", 0, 0,
                           "how long refresh tokens of an expired or revoked sign-in are kept"},
    [SET_THREADS] = {"threads", "TOKEND_THREADS", "0", 0, 0, "worker threads (0: one per core)"},
    [SET_MAX_CONNECTIONS] = {"max-connections", "TOKEND_MAX_CONNECTIONS", "1024", 0, 0, "connection cap"},
    [SET_EXPLAIN] = {"explain", "TOKEND_EXPLAIN", "full", 0, 0,
                     "what rejected clients are told: full (reason and description) or bare (RFC 6750 error)"},
    [SET_LOG] = {"log", "TOKEND_LOG", NULL, 0, 0, "request log file, reopened on SIGHUP (default: stderr)"},
    [SET_LOG_SAMPLE_AUTH_OK] = {"log-sample-auth-ok", "TOKEND_LOG_SAMPLE_AUTH_OK", "1", 0, 0,
                                "share of successful /auth answers logged, 0 to 1 (failures always are)"},
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
    [SET_TRUST_ISSUER] = {"trust-issuer", "TOKEND_TRUST_ISSUER", NULL, 0, 0,
                          "an issuer whose tokens /auth accepts (repeatable; its keys found by discovery; settings "
                          "in an [issuer URL] config section)"},
    [SET_TRUST_CA_FILE] = {"trust-ca-file", "TOKEND_TRUST_CA_FILE", NULL, 0, 0,
                           "PEM CA certificates for fetching issuers' documents, besides the system's"},
    [SET_ISSUER_CACHE_MIN] = {"issuer-cache-min", "TOKEND_ISSUER_CACHE_MIN", "5m", 0, 0,
                              "shortest life of a fetched key set (its Cache-Control max-age is clamped)"},
    [SET_ISSUER_CACHE_MAX] = {"issuer-cache-max", "TOKEND_ISSUER_CACHE_MAX", "24h", 0, 0,
                              "longest life of a fetched key set (1h without max-age)"},
    [SET_ISSUER_KID_COOLDOWN] = {"issuer-kid-cooldown", "TOKEND_ISSUER_KID_COOLDOWN", "30s", 0, 0,
                                 "at most one refetch per issuer per this, for tokens with an unknown kid"},
    [SET_ISSUER_MAX_STALE] = {"issuer-max-stale", "TOKEND_ISSUER_MAX_STALE", "24h", 0, 0,
                              "when fetches fail, the last good key set serves this long past its expiry"},
    [SET_ISSUER_FETCH_WAIT] = {"issuer-fetch-wait", "TOKEND_ISSUER_FETCH_WAIT", "1s", 0, 0,
                               "longest a request waits for a key set fetch"},
    [SET_ISSUER_FETCH_TIMEOUT] = {"issuer-fetch-timeout", "TOKEND_ISSUER_FETCH_TIMEOUT", "5s", 0, 0,
                                  "time-out of one fetch of an issuer's metadata or key set"},
    [SET_ISSUER_FETCH_MAX_BYTES] = {"issuer-fetch-max-bytes", "TOKEND_ISSUER_FETCH_MAX_BYTES", "65536", 0, 0,
                                    "biggest metadata or key set document read (at most 65536)"},
    [SET_AUTH_CACHE_SIZE] = {"auth-cache-size", "TOKEND_AUTH_CACHE_SIZE", "100000", 0, 0,
                             "tokens whose verified signature validation remembers (40 bytes each; 0: none); a "
                             "repeated token skips only its signature check"},
};

const char *const cli_issuer_keys[ISK_COUNT_] = {
    [ISK_JWKS_URI] = "jwks-uri",       [ISK_JWKS_FILE] = "jwks-file",
    [ISK_DISCOVERY] = "discovery",     [ISK_AUDIENCE] = "audience",
    [ISK_ALGORITHMS] = "algorithms",   [ISK_REQUIRE_TYP] = "require-typ",
    [ISK_LEEWAY] = "leeway",           [ISK_REQUIRED_CLAIMS] = "required-claims",
    [ISK_SCOPE_CLAIM] = "scope-claim", [ISK_SUBJECT_CLAIM] = "subject-claim",
    [ISK_CA_FILE] = "ca-file",
};

/* Appends a repeated list setting ("a" then "b" gives "a b"). */
static int append_item(struct cli_settings *s, int k, const char *val)
{
    const char *cur = s->v[k];
    size_t n = (cur ? strlen(cur) + 1 : 0) + strlen(val) + 1;
    char *m = malloc(n);
    if (!m) {
        return -1;
    }
    snprintf(m, n, "%s%s%s", cur ? cur : "", cur ? " " : "", val);
    free(s->owned[k]);
    s->owned[k] = m;
    s->v[k] = m;
    return 0;
}

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
    if (k == SET_TRUST_ISSUER && s->v[k] && s->source[k] && strcmp(s->source[k], "flag") == 0) {
        (void)append_item(s, k, arg); /* repeatable: --trust-issuer A --trust-issuer B */
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
        if (*p == '[') {
            /* [issuer https://...]: the settings of one trusted issuer follow */
            char *e = p + strlen(p) - 1;
            if (*e != ']' || strncmp(p, "[issuer ", 8) != 0) {
                fprintf(stderr, "tokend %s: %s:%d: expected a section [issuer https://...]\n", cmd, path, lineno);
                rc = 2;
                break;
            }
            *e = '\0';
            char *url = trim(p + 8);
            if (!*url || s->n_issuers == CLI_MAX_ISSUER_SECTIONS) {
                fprintf(stderr, "tokend %s: %s:%d: %s\n", cmd, path, lineno,
                        *url ? "too many [issuer] sections (32)" : "the section names no issuer");
                rc = 2;
                break;
            }
            for (size_t i = 0; i < s->n_issuers; i++) {
                if (strcmp(s->issuers[i].issuer, url) == 0) {
                    fprintf(stderr, "tokend %s: %s:%d: issuer %s has a section already (line %d)\n", cmd, path, lineno,
                            url, s->issuers[i].line);
                    rc = 2;
                    break;
                }
            }
            if (rc) {
                break;
            }
            struct cli_issuer_section *sec = &s->issuers[s->n_issuers];
            memset(sec, 0, sizeof *sec);
            sec->issuer = strdup(url);
            sec->line = lineno;
            if (!sec->issuer) {
                rc = 2;
                break;
            }
            s->n_issuers++;
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
        /* a comment after the value: "audience = api://x   # the orders API" */
        for (char *h = val; *h; h++) {
            if (*h == '#' && (h == val || h[-1] == ' ' || h[-1] == '\t')) {
                *h = '\0';
                val = trim(val);
                break;
            }
        }
        if (s->n_issuers > 0) {
            struct cli_issuer_section *sec = &s->issuers[s->n_issuers - 1];
            int ik = -1;
            for (int i = 0; i < ISK_COUNT_; i++) {
                if (strcmp(cli_issuer_keys[i], key) == 0) {
                    ik = i;
                }
            }
            const char *near = ik < 0 ? cli_nearest(key, strlen(key), cli_issuer_keys, ISK_COUNT_) : NULL;
            if (near) {
                fprintf(stderr, "tokend %s: %s:%d: unknown setting '%s' in the section of %s; did you mean '%s'?\n",
                        cmd, path, lineno, key, sec->issuer, near);
                rc = 2;
                break;
            }
            if (ik < 0) {
                fprintf(stderr,
                        "tokend %s: %s:%d: unknown setting '%s' in the section of %s (jwks-uri, jwks-file, "
                        "discovery, audience, algorithms, require-typ, leeway, required-claims, scope-claim, "
                        "subject-claim, ca-file; server settings go before the first section)\n",
                        cmd, path, lineno, key, sec->issuer);
                rc = 2;
                break;
            }
            free(sec->v[ik]);
            sec->v[ik] = strdup(val);
            if (!sec->v[ik]) {
                rc = 2;
                break;
            }
            continue;
        }
        int k = -1;
        for (int i = 0; i < SET_COUNT_; i++) {
            if (strcmp(cli_settings[i].flag, key) == 0) {
                k = i;
                break;
            }
        }
        if (k < 0 || k == SET_CONFIG) {
            const char *names[SET_COUNT_];
            for (int i = 0; i < SET_COUNT_; i++) {
                names[i] = i == SET_CONFIG ? NULL : cli_settings[i].flag;
            }
            const char *near = cli_nearest(key, strlen(key), names, SET_COUNT_);
            if (near) {
                fprintf(stderr, "tokend %s: %s:%d: unknown setting '%s'; did you mean '%s'?\n", cmd, path, lineno, key,
                        near);
            } else {
                fprintf(stderr, "tokend %s: %s:%d: unknown setting '%s' (see tokend serve --help)\n", cmd, path, lineno,
                        key);
            }
            rc = 2;
            break;
        }
        if (k == SET_TRUST_ISSUER && (!s->v[k] || strcmp(s->source[k], "config") == 0)) {
            if (append_item(s, k, val) != 0) { /* repeatable in the file too */
                rc = 2;
                break;
            }
            s->source[k] = "config";
            continue;
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

extern char **environ;
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb);

/* A TOKEND_* variable that is not a setting but a couple of edits from one
 * is a typo that would otherwise be ignored without a word. */
static void warn_env_typos(const char *cmd)
{
    const char *names[SET_COUNT_];
    for (int i = 0; i < SET_COUNT_; i++) {
        names[i] = cli_settings[i].env;
    }
    for (char **e = environ; e && *e; e++) {
        size_t len = strcspn(*e, "=");
        if (strncmp(*e, "TOKEND_", 7) != 0 || len > 63) {
            continue;
        }
        int known = 0;
        for (int i = 0; i < SET_COUNT_ && !known; i++) {
            known = strlen(names[i]) == len && strncmp(names[i], *e, len) == 0;
        }
        /* names are long and share the prefix: only 1 or 2 edits count */
        const char *near = NULL;
        size_t best = 3;
        for (int i = 0; i < SET_COUNT_ && !known; i++) {
            size_t d = edit_distance(*e, len, names[i], strlen(names[i]));
            if (d < best) {
                best = d;
                near = names[i];
            }
        }
        if (!known && near) {
            fprintf(stderr, "tokend %s: warning: %.*s is not a setting; did you mean %s?\n", cmd, (int)len, *e, near);
        }
    }
}

int cli_installed(void)
{
#if TOKEND_INSTALLED_DEFAULTS
    return 1;
#else
    /* The directory the executable is in, as the kernel knows it (links
     * resolved): a symbolic link in /usr/local/bin to a build tree's
     * tokend is still the build tree's. */
    static const char *const system_dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",  "/usr/bin",
                                              "/sbin",           "/bin",           TOKEND_BINDIR};
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return 0;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL) {
        return 0;
    }
    *slash = '\0';
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
        if (strcmp(self, system_dirs[i]) == 0) {
            return 1;
        }
    }
    return 0;
#endif
}

const char *cli_system_config(void)
{
    return TOKEND_SYSCONFDIR "/tokend.conf";
}

/* A default that is a file in --data-dir: prefix + DATA_DIR/name
 * ("sqlite://./tokend.db", "/var/lib/tokend/tokend.master.key"). */
static int in_data_dir(struct cli_settings *s, enum cli_setting k, const char *prefix, const char *name)
{
    if (s->v[k]) {
        return 0;
    }
    const char *dir = s->v[SET_DATA_DIR];
    size_t dl = strlen(dir);
    const char *sep = dl > 0 && dir[dl - 1] == '/' ? "" : "/";
    size_t n = strlen(prefix) + dl + strlen(sep) + strlen(name) + 1;
    char *v = malloc(n);
    if (!v) {
        return -1;
    }
    snprintf(v, n, "%s%s%s%s", prefix, dir, sep, name);
    free(s->owned[k]);
    s->owned[k] = v;
    s->v[k] = v;
    s->source[k] = "default";
    return 0;
}

int cli_settings_finish(struct cli_settings *s, const char *cmd_name)
{
    warn_env_typos(cmd_name);
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
    if (!s->v[SET_CONFIG] && cli_installed() && access(cli_system_config(), F_OK) == 0) {
        s->v[SET_CONFIG] = cli_system_config();
        s->source[SET_CONFIG] = "default";
    }
    if (s->v[SET_CONFIG]) {
        int rc = read_config(s, s->v[SET_CONFIG], cmd_name);
        if (rc != 0) {
            return rc;
        }
    }
    if (!s->v[SET_DATA_DIR]) {
        s->v[SET_DATA_DIR] = cli_installed() ? TOKEND_STATEDIR : ".";
        s->source[SET_DATA_DIR] = "default";
    }
    if (in_data_dir(s, SET_STORE, "sqlite://", "tokend.db") != 0 ||
        in_data_dir(s, SET_MASTER_KEY_FILE, "", "tokend.master.key") != 0) {
        fprintf(stderr, "tokend %s: out of memory\n", cmd_name);
        return 2;
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
    for (size_t i = 0; i < s->n_issuers; i++) {
        free(s->issuers[i].issuer);
        for (int k = 0; k < ISK_COUNT_; k++) {
            free(s->issuers[i].v[k]);
        }
    }
    s->n_issuers = 0;
}

static void help_line(FILE *f, int k);

void cli_settings_help(FILE *f, int admin)
{
    for (int k = 0; k < SET_COUNT_; k++) {
        if (admin && !cli_settings[k].admin) {
            continue;
        }
        help_line(f, k);
    }
}

/* Writes `text` as "# " comment lines of at most about 76 columns. */
static void comment_wrapped(FILE *f, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t take = strlen(p);
        if (take > 74) {
            take = 74;
            while (take > 20 && p[take] != ' ') {
                take--;
            }
            if (p[take] != ' ') {
                take = 74;
            }
        }
        fprintf(f, "# %.*s\n", (int)take, p);
        p += take;
        while (*p == ' ') {
            p++;
        }
    }
}

void cli_settings_print_config(FILE *f, const struct cli_settings *s)
{
    fprintf(f,
            "# tokend.conf: the settings of `tokend serve` and of the admin commands\n"
            "# (tokend client, keys, revoke, user), one `key = value` a line, keys as\n"
            "# the flag names. A flag beats the environment (TOKEND_*), which beats\n"
            "# this file, which beats the default. Every setting is listed with its\n"
            "# help; those left at their default are commented out.\n"
            "#\n"
            "# An installed tokend reads %s when no --config or\n"
            "# TOKEND_CONFIG names another file. `tokend serve --print-config` prints\n"
            "# this file for the settings it is given (docs/operations.md).\n"
            "#\n"
            "# To serve, tokend needs at least tls-cert and tls-key (or insecure-http\n"
            "# behind a TLS-terminating proxy), and the issuer or public-url its\n"
            "# clients know it by.\n",
            cli_system_config());
    for (int k = 0; k < SET_COUNT_; k++) {
        const struct cli_setting_def *d = &cli_settings[k];
        if (k == SET_CONFIG) {
            continue; /* a config file does not name another */
        }
        fputs("\n", f);
        comment_wrapped(f, d->help);
        const char *v = s->v[k];
        char shown[1024];
        if (v && k == SET_STORE) {
            tks_url_redact(v, shown, sizeof shown);
            v = shown;
        }
        int set = s->source[k] && strcmp(s->source[k], "default") != 0 && v;
        if (d->is_bool) {
            fprintf(f, "%s%s = %s\n", set ? "" : "#", d->flag,
                    cli_setting_bool(s, (enum cli_setting)k) ? "true" : "false");
        } else if (set || v) {
            fprintf(f, "%s%s = %s\n", set ? "" : "#", d->flag, v);
        } else {
            fprintf(f, "#%s =\n", d->flag);
        }
    }
    fputs("\n# Issuers whose tokens /auth accepts, each in a section of its own after\n"
          "# the settings above (docs/issuers.md):\n"
          "#[issuer https://tenant.example.com/]\n",
          f);
    for (int i = 0; i < ISK_COUNT_; i++) {
        fprintf(f, "#%s =\n", cli_issuer_keys[i]);
    }
}

int cli_setting_bool(const struct cli_settings *s, enum cli_setting k)
{
    return s->v[k] && strcmp(s->v[k], "1") == 0;
}

size_t cli_settings_options_of(struct option *opts, size_t cap, const enum cli_setting *which, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        enum cli_setting k = which[i];
        opts[o].name = cli_settings[k].flag;
        opts[o].has_arg = cli_settings[k].is_bool ? no_argument : required_argument;
        opts[o].flag = NULL;
        opts[o].val = CLI_SETTING_OPT_BASE + (int)k;
        o++;
    }
    return o;
}

/* The default as --help says it: the table's, or for the settings whose
 * default is worked out at run time (the files in --data-dir), how. */
static const char *default_shown(int k)
{
    switch (k) {
    case SET_DATA_DIR:
        return TOKEND_STATEDIR " installed, . (the current directory) run from a build tree";
    case SET_STORE:
        return "sqlite://DATA_DIR/tokend.db";
    case SET_MASTER_KEY_FILE:
        return "DATA_DIR/tokend.master.key";
    default:
        return cli_settings[k].def;
    }
}

static void help_line(FILE *f, int k)
{
    char flag[48];
    snprintf(flag, sizeof flag, "--%s%s", cli_settings[k].flag, cli_settings[k].is_bool ? "" : " V");
    const char *def = default_shown(k);
    fprintf(f, "  %-24s %s\n  %-24s env %s%s%s\n", flag, cli_settings[k].help, "", cli_settings[k].env,
            def ? ", default " : "", def ? def : "");
}

void cli_settings_help_of(FILE *f, const enum cli_setting *which, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        help_line(f, (int)which[i]);
    }
}

/* Optimal string alignment distance (insertions, deletions, substitutions,
 * adjacent transpositions), for names of at most 63 bytes. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[64][64];
    if (la > 63 || lb > 63) {
        return (size_t)-1;
    }
    for (size_t i = 0; i <= la; i++) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= lb; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) {
                v = d[i][j - 1] + 1;
            }
            if (d[i - 1][j - 1] + cost < v) {
                v = d[i - 1][j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v) {
                v = d[i - 2][j - 2] + 1;
            }
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *cli_nearest(const char *s, size_t s_len, const char *const *names, size_t n)
{
    /* A typo is a couple of edits; more than a third of the name is another word. */
    size_t limit = s_len / 3 > 2 ? s_len / 3 : 2;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) {
            continue;
        }
        size_t d = edit_distance(s, s_len, names[i], strlen(names[i]));
        if (d < best_d && d < s_len) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

void cli_option_hint(const char *cmd, const struct option *opts, int argc, char **argv)
{
    if (optind < 1 || optind > argc) {
        return;
    }
    const char *arg = argv[optind - 1];
    if (!arg || strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        return;
    }
    const char *name = arg + 2;
    size_t len = strcspn(name, "=");
    const char *names[160];
    size_t n = 0;
    for (const struct option *o = opts; o->name && n < sizeof names / sizeof names[0]; o++) {
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) {
            return; /* a known flag without its value: getopt_long said so */
        }
        if (strncmp(o->name, name, len) == 0) {
            return; /* an ambiguous abbreviation: getopt_long listed the choices */
        }
        names[n++] = o->name;
    }
    const char *best = cli_nearest(name, len, names, n);
    if (best) {
        fprintf(stderr, "tokend %s: did you mean --%s?\n", cmd, best);
        return;
    }
    for (int k = 0; k < SET_COUNT_; k++) {
        if (strlen(cli_settings[k].flag) == len && strncmp(cli_settings[k].flag, name, len) == 0) {
            fprintf(stderr, "tokend %s: --%s is a setting of tokend serve; tokend %s does not use it\n", cmd,
                    cli_settings[k].flag, cmd);
            return;
        }
    }
}
