/* SPDX-License-Identifier: Apache-2.0 */
/*
 * serve.c — `tokend serve`: settings, TLS material, the store and master
 * key, the authority, the HTTP server, and the upkeep loop (key rotation,
 * revocations from other processes) until SIGINT or SIGTERM. Start-up
 * fails fast, with the reason, on any bad setting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/paths.h"
#include "cli/serve.h"
#include "http/backchannel.h"
#include "http/server.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

/* Where the key cache's warnings go: the server's log once it runs. */
static tkh_server *_Atomic trust_log_srv;
static void trust_log(void *ud, const char *level, const char *msg)
{
    (void)ud;
    tkh_server *srv = atomic_load(&trust_log_srv);
    if (srv) {
        tkh_log(srv, strcmp(level, "warn") == 0 ? "warning" : level, msg);
    } else {
        fprintf(stderr, "tokend serve: %s: %s\n", level, msg);
    }
}

static int duration_setting(const struct cli_settings *s, enum cli_setting k, int64_t lo, int64_t hi, int64_t *out)
{
    if (cli_parse_duration(s->v[k], out) != 0 || *out < lo || *out > hi) {
        char a[24], b[24];
        tk_format_duration(lo, a, sizeof a);
        tk_format_duration(hi, b, sizeof b);
        fprintf(stderr, "tokend serve: --%s takes a duration from %s to %s (got '%s')\n", cli_settings[k].flag,
                lo ? a : "0", b, s->v[k]);
        return -1;
    }
    return 0;
}

/* The trusted issuers: --trust-issuer URLs and [issuer URL] sections of
 * the config file, merged by URL. *out stays NULL when there are none. */
static int open_trust(const struct cli_settings *s, int64_t leeway, tka_trust **out)
{
    *out = NULL;
    const char *urls[TK_LIMIT_ISSUERS];
    size_t n = 0;
    char list[8192] = "";
    if (s->v[SET_TRUST_ISSUER]) {
        snprintf(list, sizeof list, "%s", s->v[SET_TRUST_ISSUER]);
        for (char *p = strtok(list, " \t,"); p; p = strtok(NULL, " \t,")) {
            if (n == TK_LIMIT_ISSUERS) {
                fprintf(stderr, "tokend serve: at most %u trusted issuers\n", (unsigned)TK_LIMIT_ISSUERS);
                return -1;
            }
            urls[n++] = p;
        }
    }
    for (size_t i = 0; i < s->n_issuers; i++) {
        int dup = 0;
        for (size_t j = 0; j < n; j++) {
            dup |= strcmp(urls[j], s->issuers[i].issuer) == 0;
        }
        if (!dup && n == TK_LIMIT_ISSUERS) {
            fprintf(stderr, "tokend serve: at most %u trusted issuers (--trust-issuer and [issuer] sections)\n",
                    (unsigned)TK_LIMIT_ISSUERS);
            return -1;
        }
        if (!dup) {
            urls[n++] = s->issuers[i].issuer;
        }
    }
    if (n == 0) {
        if (s->v[SET_TRUST_CA_FILE]) {
            fprintf(stderr, "tokend serve: --trust-ca-file is set but no issuer is trusted (--trust-issuer URL)\n");
            return -1;
        }
        return 0;
    }
    tka_trust_config tc;
    tka_trust_config_defaults(&tc);
    int64_t wait = 0, timeout = 0, max_bytes = 0;
    if (duration_setting(s, SET_ISSUER_CACHE_MIN, 0, 7 * 86400, &tc.min_ttl) != 0 ||
        duration_setting(s, SET_ISSUER_CACHE_MAX, 1, 30 * 86400, &tc.max_ttl) != 0 ||
        duration_setting(s, SET_ISSUER_KID_COOLDOWN, 0, 86400, &tc.kid_cooldown) != 0 ||
        duration_setting(s, SET_ISSUER_MAX_STALE, 0, 30 * 86400, &tc.max_stale) != 0 ||
        duration_setting(s, SET_ISSUER_FETCH_TIMEOUT, 1, 60, &timeout) != 0) {
        return -1;
    }
    /* the wait may be under a second: "250ms" */
    const char *w = s->v[SET_ISSUER_FETCH_WAIT];
    size_t wl = strlen(w);
    if (wl > 2 && strcmp(w + wl - 2, "ms") == 0) {
        char num[32];
        snprintf(num, sizeof num, "%.*s", (int)(wl - 2), w);
        if (cli_parse_int64(num, &wait) != 0 || wait < 0 || wait > 30000) {
            wait = -1;
        }
    } else if (cli_parse_duration(w, &wait) != 0 || wait < 0 || wait > 30) {
        wait = -1;
    } else {
        wait *= 1000;
    }
    if (wait < 0) {
        fprintf(stderr, "tokend serve: --issuer-fetch-wait takes 0ms to 30s, e.g. 1s or 250ms (got '%s')\n", w);
        return -1;
    }
    if (cli_parse_int64(s->v[SET_ISSUER_FETCH_MAX_BYTES], &max_bytes) != 0 || max_bytes < 1024 ||
        max_bytes > (int64_t)TK_LIMIT_JWK_LEN) {
        fprintf(stderr, "tokend serve: --issuer-fetch-max-bytes takes 1024 to %u\n", (unsigned)TK_LIMIT_JWK_LEN);
        return -1;
    }
    if (tc.max_ttl < tc.min_ttl) {
        fprintf(stderr, "tokend serve: --issuer-cache-max is shorter than --issuer-cache-min\n");
        return -1;
    }
    tc.default_ttl = 3600 < tc.min_ttl ? tc.min_ttl : (3600 > tc.max_ttl ? tc.max_ttl : 3600);
    tc.wait_ms = (unsigned)wait;
    tc.fetch_timeout_ms = (long)timeout * 1000;
    tc.max_bytes = (size_t)max_bytes;
    tc.ca_file = s->v[SET_TRUST_CA_FILE];
    tc.leeway = leeway; /* --leeway, already checked */
    tc.log = trust_log;
    if (tc.ca_file && access(tc.ca_file, R_OK) != 0) {
        fprintf(stderr, "tokend serve: --trust-ca-file %s: %s\n", tc.ca_file, strerror(errno));
        return -1;
    }
    tka_issuer_policy pol[TK_LIMIT_ISSUERS];
    char *texts[TK_LIMIT_ISSUERS] = {0};
    memset(pol, 0, sizeof pol);
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        tka_issuer_policy *p = &pol[i];
        p->issuer = urls[i];
        p->leeway = -1;
        const struct cli_issuer_section *sec = NULL;
        for (size_t j = 0; j < s->n_issuers; j++) {
            if (strcmp(s->issuers[j].issuer, urls[i]) == 0) {
                sec = &s->issuers[j];
            }
        }
        if (!sec) {
            continue;
        }
        const char *const *v = (const char *const *)sec->v;
        p->jwks_uri = v[ISK_JWKS_URI];
        p->audiences = v[ISK_AUDIENCE];
        p->algorithms = v[ISK_ALGORITHMS];
        p->require_typ = v[ISK_REQUIRE_TYP];
        p->required_claims = v[ISK_REQUIRED_CLAIMS];
        p->scope_claims = v[ISK_SCOPE_CLAIM];
        p->subject_claim = v[ISK_SUBJECT_CLAIM];
        p->ca_file = v[ISK_CA_FILE];
        if (v[ISK_DISCOVERY] && strcmp(v[ISK_DISCOVERY], "true") != 0 && strcmp(v[ISK_DISCOVERY], "false") != 0) {
            fprintf(stderr, "tokend serve: [issuer %s] discovery takes true or false\n", urls[i]);
            goto out;
        }
        if (v[ISK_DISCOVERY] && strcmp(v[ISK_DISCOVERY], "false") == 0 && !v[ISK_JWKS_URI] && !v[ISK_JWKS_FILE]) {
            fprintf(stderr, "tokend serve: [issuer %s] discovery = false needs jwks-uri or jwks-file\n", urls[i]);
            goto out;
        }
        if (v[ISK_JWKS_URI] && v[ISK_JWKS_FILE]) {
            fprintf(stderr, "tokend serve: [issuer %s] takes jwks-uri or jwks-file, not both\n", urls[i]);
            goto out;
        }
        if (v[ISK_LEEWAY] &&
            (cli_parse_duration(v[ISK_LEEWAY], &p->leeway) != 0 || p->leeway < 0 || p->leeway > TK_LIMIT_LEEWAY_MAX)) {
            fprintf(stderr, "tokend serve: [issuer %s] leeway takes 0 to %ds\n", urls[i], TK_LIMIT_LEEWAY_MAX);
            goto out;
        }
        if (p->ca_file && access(p->ca_file, R_OK) != 0) {
            fprintf(stderr, "tokend serve: [issuer %s] ca-file %s: %s\n", urls[i], p->ca_file, strerror(errno));
            goto out;
        }
        if (v[ISK_JWKS_FILE]) {
            char ferr[256];
            if (cli_read_file(v[ISK_JWKS_FILE], CLI_MAX_KEY_FILE, &texts[i], &p->jwks_text_len, ferr, sizeof ferr) !=
                0) {
                fprintf(stderr, "tokend serve: [issuer %s] jwks-file: %s\n", urls[i], ferr);
                goto out;
            }
            p->jwks_text = texts[i];
        }
    }
    char err[1024];
    if (tka_trust_open(&tc, pol, n, out, err, sizeof err) != 0) {
        fprintf(stderr, "tokend serve: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++) {
        free(texts[i]);
    }
    return rc;
}

/* The sd_notify protocol without libsystemd (sd_notify(3)): one datagram
 * to the AF_UNIX socket $NOTIFY_SOCKET names ('@' for the abstract
 * namespace), "READY=1" once tokend serves (the unit's Type=notify),
 * "STOPPING=1" when it stops. Nothing happens without $NOTIFY_SOCKET; a
 * failure is ignored: systemd then times the start out and says so. */
static void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = path != NULL ? strlen(path) : 0;
    if (len < 2 || len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) {
        return;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
    close(fd);
}

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_requested = 1; /* acted on by the main loop */
    } else {
        stop_requested = 1;
    }
}

/* SIGHUP: the log file reopened (logrotate), the certificate and key read
 * again from their files. A file that cannot be read keeps the old pair;
 * tkh_reload logs what happened either way. */
static void reload(tkh_server *srv, int insecure, const char *cert_path, const char *key_path)
{
    char *cert = NULL, *key = NULL;
    if (!insecure) {
        /* msg holds a whole path (at most 1023 bytes: cert_path, key_path in
         * cmd_serve) besides the words around it. */
        char err[320], msg[1024 + 160];
        size_t n = 0;
        unsigned mode = 0;
        if (cli_read_file(cert_path, 1024 * 1024, &cert, &n, err, sizeof err) != 0) {
            snprintf(msg, sizeof msg, "SIGHUP: TLS certificate: %s; still serving the old one", err);
            tkh_log(srv, "error", msg);
        } else if (cli_read_file(key_path, 1024 * 1024, &key, &n, err, sizeof err) != 0) {
            snprintf(msg, sizeof msg, "SIGHUP: TLS key: %s; still serving the old one", err);
            tkh_log(srv, "error", msg);
        } else if (cli_file_too_open(key_path, &mode)) {
            snprintf(msg, sizeof msg,
                     "SIGHUP: TLS key %s is readable by group or others (mode %04o); still serving the old one",
                     key_path, mode);
            tkh_log(srv, "error", msg);
            cli_free_secret(key, n);
            key = NULL;
        }
    }
    (void)tkh_reload(srv, key != NULL ? cert : NULL, key);
    if (key != NULL) {
        cli_free_secret(key, strlen(key));
    }
    free(cert);
}

static void serve_help(FILE *f)
{
    fputs("Usage: tokend serve [SETTINGS]\n"
          "\n"
          "Runs the OAuth 2.0 authorization server (client_credentials, revocation,\n"
          "introspection, JWKS, metadata) and the /auth validation endpoint for reverse\n"
          "proxies, over HTTPS.\n"
          "\n"
          "It also signs people in: users added with 'tokend user add' sign in at /login\n"
          "for clients with a redirect URI (authorization code with PKCE, rotating refresh\n"
          "tokens; docs/signin.md), and tokend is an OpenID Connect provider for them:\n"
          "discovery, ID tokens, userinfo, logout, consent (scope openid; docs/oidc.md).\n"
          "\n"
          "Every setting is a flag, a TOKEND_* environment variable or a line of the\n"
          "--config file (flag > environment > file > default). --print-config prints\n"
          "them all as a config file: those given as key = value, the others commented\n"
          "out with their defaults. Installed, tokend reads " TOKEND_SYSCONFDIR "/tokend.conf\n"
          "unless --config names another file.\n\n",
          f);
    cli_settings_help(f, 0);
    fputs("\nExamples:\n"
          "  tokend serve --dev                                   # HTTPS with a self-signed localhost certificate\n"
          "  tokend serve --tls-cert cert.pem --tls-key key.pem --listen 0.0.0.0:443 \\\n"
          "               --issuer https://auth.example.com --store sqlite:///var/lib/tokend/tokend.db\n"
          "  TOKEND_LISTEN=127.0.0.1:9000 tokend serve --insecure-http   # behind a TLS-terminating proxy\n",
          f);
}

/* Splits HOST:PORT or [V6]:PORT. */
static int parse_listen(const char *s, char *host, size_t host_cap, uint16_t *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= host_cap) {
            return -1;
        }
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= host_cap || colon == s) {
            return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    int64_t p = 0;
    if (cli_parse_int64(colon + 1, &p) != 0 || p < 0 || p > 65535) {
        return -1;
    }
    *port = (uint16_t)p;
    return 0;
}

static int is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
}

/* Binds and listens, so that the real port is known before the issuer is. */
static int bind_listen(const char *flag, const char *host, uint16_t port, uint16_t *bound, char *err, size_t err_cap)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int family;
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&ss;
    const char *h = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        family = AF_INET;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        family = AF_INET6;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else {
        snprintf(err, err_cap, "--%s host '%s' is not an IP address (or localhost)", flag, host);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, err_cap, "--%s: cannot listen on %s:%u: %s", flag, host, port, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        *bound = ntohs(family == AF_INET ? v4->sin_port : v6->sin6_port);
    }
    return fd;
}

/* ---- the banner: commands that run as printed ------------------------------------------ */

/* `v` as one shell word: as it is when it holds only characters no shell
 * treats specially, else in single quotes. */
static void shell_word(char *out, size_t cap, const char *v)
{
    int plain = v[0] != '\0';
    for (const char *p = v; *p != '\0'; p++) {
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:@%+=,-", *p) == NULL) {
            plain = 0;
            break;
        }
    }
    if (plain) {
        snprintf(out, cap, "%s", v);
        return;
    }
    size_t o = 0;
    if (o + 1 < cap) {
        out[o++] = '\'';
    }
    for (const char *p = v; *p != '\0' && o + 5 < cap; p++) {
        if (*p == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *p;
        }
    }
    if (o + 1 < cap) {
        out[o++] = '\'';
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* The directory of this executable, for an `export PATH=...` line that
 * makes the banner's `tokend ...` commands run this tokend in a new
 * terminal; "" when it is a system directory (on every PATH already). The
 * server's own $PATH says nothing about the user's other terminal. */
static void banner_bin_dir(char *out, size_t cap)
{
    static const char *const system_dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                              "/usr/bin",        "/sbin",          "/bin"};
    out[0] = '\0';
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        return;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL || slash == self) {
        return;
    }
    *slash = '\0';
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
        if (strcmp(self, system_dirs[i]) == 0) {
            return;
        }
    }
    snprintf(out, cap, "%s", self);
}

/* What `tokend client add` needs besides its own options to find the
 * server's store and master key: the settings that differ from their
 * defaults (a store URL with a password shows it redacted). */
static void banner_admin_flags(const struct cli_settings *s, char *out, size_t cap)
{
    static const enum cli_setting keys[] = {SET_CONFIG, SET_DATA_DIR, SET_STORE, SET_MASTER_KEY_FILE,
                                            SET_STORE_PASSWORD_FILE};
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = s->v[keys[i]];
        const char *def = cli_settings[keys[i]].def;
        if (v == NULL || (def != NULL && strcmp(v, def) == 0) ||
            (s->source[keys[i]] != NULL && strcmp(s->source[keys[i]], "default") == 0)) {
            continue;
        }
        char shown[1024];
        char word[2100];
        if (keys[i] == SET_STORE) {
            tks_url_redact(v, shown, sizeof shown);
        } else {
            snprintf(shown, sizeof shown, "%s", v);
        }
        shell_word(word, sizeof word, shown);
        int w = snprintf(out + o, cap - o, " --%s %s", cli_settings[keys[i]].flag, word);
        if (w < 0 || (size_t)w >= cap - o) {
            out[o] = '\0';
            return;
        }
        o += (size_t)w;
    }
}

/* "Try it": commands for another terminal, each one runnable as printed
 * in the order printed (tests/e2e/test_printed_commands.py runs them):
 * first into this directory (the store, master key and certificate paths
 * are relative to it) with this tokend on PATH, then a client (`web`, made
 * unless it exists), a token, /auth, inspect and discovery. */
static void print_try_it(const struct cli_settings *s, tks_store *store, const char *public_url, const char *cacert)
{
    char cwd[2048];
    char word[4200];
    printf("\nTry it in another terminal:\n");
    if (getcwd(cwd, sizeof cwd) != NULL) {
        shell_word(word, sizeof word, cwd);
        printf("  cd %s\n", word);
    }
    char dir[4096];
    banner_bin_dir(dir, sizeof dir);
    if (dir[0] != '\0') {
        shell_word(word, sizeof word, dir);
        printf("  export PATH=%s:\"$PATH\"   # this tokend\n", word);
    }
    char admin[4200];
    banner_admin_flags(s, admin, sizeof admin);
    char ca[sizeof word + 16] = "";
    if (cacert != NULL) {
        shell_word(word, sizeof word, cacert);
        snprintf(ca, sizeof ca, " --cacert %s", word);
    }
    tks_client cl;
    memset(&cl, 0, sizeof cl);
    int have_web = tks_client_get(store, "web", &cl) == TKS_OK;
    OPENSSL_cleanse(&cl, sizeof cl);
    if (have_web) {
        printf(
            "Get a token for the client web (it exists: SECRET is the secret 'tokend client add' printed for it):\n");
    } else {
        printf("Get a token:\n"
               "  tokend client add web%s --scope 'orders:read' --aud orders-api   # prints the client secret once\n",
               admin);
    }
    printf("  TOKEN=$(curl -s%s -u 'web:SECRET' -d grant_type=client_credentials %s/oauth/token | "
           "sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')   # the secret in place of SECRET\n"
           "Use it (the way nginx auth_request does):\n"
           "  curl -i%s -H \"Authorization: Bearer $TOKEN\" '%s/auth?aud=orders-api&scope=orders:read'\n"
           "Explain a rejected token:\n"
           "  tokend inspect%s --jwks %s/.well-known/jwks.json --aud orders-api \"$TOKEN\"\n"
           "Sign users in with OpenID Connect (docs/oidc.md); the provider's discovery document:\n"
           "  curl%s %s/.well-known/openid-configuration\n\n",
           ca, public_url, ca, public_url, ca, public_url, ca, public_url);
}

/* The path of a sqlite:// store URL, or NULL for another store. */
static const char *sqlite_path(const char *url)
{
    return strncmp(url, "sqlite://", 9) == 0 ? url + 9 : NULL;
}

/* Says where tokend's files are: the config file it read, the store and
 * the master key (and which of them this start made), and the directory
 * relative paths are in; run from a build tree with the default
 * --data-dir, that it is the current directory on purpose. */
static void print_files(const struct cli_settings *s, int store_new, int key_new)
{
    char store_shown[512];
    tks_url_redact(s->v[SET_STORE], store_shown, sizeof store_shown);
    const char *sq = sqlite_path(store_shown);
    const char *key = s->v[SET_MASTER_KEY_FILE];
    int relative = (sq != NULL && sq[0] != '/') || key[0] != '/';
    char cwd[2048];
    if (relative && getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(cwd, sizeof cwd, "?");
    }
    printf("tokend serve: ");
    if (!cli_installed() && strcmp(s->source[SET_DATA_DIR], "default") == 0) {
        printf("files in the current directory, %s (run from a build tree; --data-dir DIR for another): ",
               relative ? cwd : ".");
    } else if (relative) {
        printf("files relative to %s: ", cwd);
    }
    if (s->v[SET_CONFIG] != NULL) {
        printf("config %s, ", s->v[SET_CONFIG]);
    }
    printf("store %s%s, master key %s%s\n", sq != NULL ? sq : store_shown, store_new ? " (created)" : "", key,
           key_new ? " (created)" : "");
}

static char *read_text(const char *path, const char *what, int secret)
{
    char *buf = NULL;
    size_t n = 0;
    char err[320];
    if (cli_read_file(path, 1024 * 1024, &buf, &n, err, sizeof err) != 0) {
        fprintf(stderr, "tokend serve: %s: %s\n", what, err);
        return NULL;
    }
    unsigned mode = 0;
    if (secret && cli_file_too_open(path, &mode)) {
        fprintf(stderr, "tokend serve: %s %s is readable by group or others (mode %04o); run 'chmod 600 %s'\n", what,
                path, mode, path);
        cli_free_secret(buf, n);
        return NULL;
    }
    return buf;
}

int cli_serve(int argc, char **argv)
{
    struct option opts[SET_COUNT_ + 3];
    size_t n = cli_settings_options(opts, SET_COUNT_, 0);
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n++] = (struct option){"print-config", no_argument, NULL, 'P'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    struct cli_settings s;
    memset(&s, 0, sizeof s);
    int c;
    int print_config = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= CLI_SETTING_OPT_BASE) {
            cli_settings_flag(&s, c, optarg);
        } else if (c == 'h') {
            serve_help(stdout);
            return CLI_EXIT_OK;
        } else if (c == 'P') {
            print_config = 1;
        } else {
            cli_option_hint("serve", opts, argc, argv);
            fprintf(stderr, "Run 'tokend serve --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tokend serve: unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    int status = CLI_EXIT_USAGE;
    char *cert = NULL, *key = NULL;
    int fd = -1, admin_fd = -1;
    char admin_host[256];
    uint16_t admin_port = 0;
    tks_store *store = NULL;
    tka_authority *auth = NULL;
    tkh_server *srv = NULL;
    tka_trust *trust = NULL;
    tkh_bcl *bcl = NULL;
    char err[512];
    char host[256];
    uint16_t port = 0;
    if (cli_settings_finish(&s, "serve") != 0) {
        goto out;
    }
    if (print_config) {
        cli_settings_print_config(stdout, &s);
        status = CLI_EXIT_OK;
        goto out;
    }
    if (parse_listen(s.v[SET_LISTEN], host, sizeof host, &port) != 0) {
        fprintf(stderr, "tokend serve: --listen takes HOST:PORT or [IPV6]:PORT (got '%s')\n", s.v[SET_LISTEN]);
        goto out;
    }
    int admin_on = strcmp(s.v[SET_ADMIN_LISTEN], "off") != 0;
    if (admin_on && parse_listen(s.v[SET_ADMIN_LISTEN], admin_host, sizeof admin_host, &admin_port) != 0) {
        fprintf(stderr, "tokend serve: --admin-listen takes HOST:PORT, [IPV6]:PORT or off (got '%s')\n",
                s.v[SET_ADMIN_LISTEN]);
        goto out;
    }
    int insecure = cli_setting_bool(&s, SET_INSECURE_HTTP);
    int explain = 1;
    if (strcmp(s.v[SET_EXPLAIN], "bare") == 0) {
        explain = 0;
    } else if (strcmp(s.v[SET_EXPLAIN], "full") != 0) {
        fprintf(stderr, "tokend serve: --explain takes full or bare\n");
        goto out;
    }
    int64_t threads = 0, max_conn = 0;
    if (cli_parse_int64(s.v[SET_THREADS], &threads) != 0 || threads < 0 || threads > 256 ||
        cli_parse_int64(s.v[SET_MAX_CONNECTIONS], &max_conn) != 0 || max_conn < 1 || max_conn > 1000000) {
        fprintf(stderr, "tokend serve: --threads takes 0-256 and --max-connections 1-1000000\n");
        goto out;
    }
    int64_t per_ip = 0, req_timeout = 0, login_workers = 0, login_queue = 0;
    if (cli_parse_int64(s.v[SET_MAX_PER_IP], &per_ip) != 0 || per_ip < 0 || per_ip > 1000000) {
        fprintf(stderr, "tokend serve: --max-connections-per-ip takes 0-1000000 (0: no limit)\n");
        goto out;
    }
    if (cli_parse_duration(s.v[SET_REQUEST_TIMEOUT], &req_timeout) != 0 || req_timeout < 0 || req_timeout > 3600) {
        fprintf(stderr, "tokend serve: --request-timeout takes a duration of 0 to 1h (0: off), e.g. 30s\n");
        goto out;
    }
    if (cli_parse_int64(s.v[SET_LOGIN_WORKERS], &login_workers) != 0 || login_workers < 0 || login_workers > 256 ||
        cli_parse_int64(s.v[SET_LOGIN_QUEUE], &login_queue) != 0 || login_queue < 0 || login_queue > 65536) {
        fprintf(stderr, "tokend serve: --login-workers takes 0-256 (0: one per core) and --login-queue 0-65536\n");
        goto out;
    }
    int fwd_header = 0;
    if (strcmp(s.v[SET_FORWARDED_HEADER], "forwarded") == 0) {
        fwd_header = 1;
    } else if (strcmp(s.v[SET_FORWARDED_HEADER], "x-forwarded-for") != 0) {
        fprintf(stderr, "tokend serve: --forwarded-header takes x-forwarded-for or forwarded\n");
        goto out;
    }
    tka_config probe;
    if (cli_authority_config(&s, "serve", &probe) != 0) {
        goto out;
    }
    if (open_trust(&s, probe.leeway, &trust) != 0) {
        goto out;
    }
    /* TLS material. */
    char cert_path[1024], key_path[1024], fp[128] = "";
    int dev_created = 0;
    if (!insecure) {
        if (s.v[SET_TLS_CERT] || s.v[SET_TLS_KEY]) {
            if (!s.v[SET_TLS_CERT] || !s.v[SET_TLS_KEY]) {
                fprintf(stderr, "tokend serve: --tls-cert and --tls-key go together\n");
                goto out;
            }
            snprintf(cert_path, sizeof cert_path, "%s", s.v[SET_TLS_CERT]);
            snprintf(key_path, sizeof key_path, "%s", s.v[SET_TLS_KEY]);
        } else if (cli_setting_bool(&s, SET_DEV)) {
            if (serve_dev_cert(s.v[SET_DATA_DIR], cert_path, sizeof cert_path, key_path, sizeof key_path, fp, sizeof fp,
                               &dev_created, err, sizeof err) != 0) {
                fprintf(stderr, "tokend serve: %s\n", err);
                goto out;
            }
        } else {
            fprintf(stderr, "tokend serve: HTTPS needs --tls-cert and --tls-key; or --dev for a self-signed localhost "
                            "certificate; or --insecure-http for plain HTTP behind a TLS-terminating proxy\n");
            goto out;
        }
        cert = read_text(cert_path, "TLS certificate", 0);
        key = cert ? read_text(key_path, "TLS key", 1) : NULL;
        if (!cert || !key) {
            goto out;
        }
    } else if (!is_loopback(host)) {
        fprintf(stderr,
                "\n*** WARNING: tokend is serving PLAIN HTTP on %s, not loopback: tokens and client "
                "secrets cross the network in the clear. Put a TLS-terminating proxy in front, or use "
                "--tls-cert/--tls-key. ***\n\n",
                host);
    }
    char *sample_end = NULL;
    errno = 0;
    double sample = strtod(s.v[SET_LOG_SAMPLE_AUTH_OK], &sample_end);
    if (errno != 0 || sample_end == s.v[SET_LOG_SAMPLE_AUTH_OK] || *sample_end != '\0' || !(sample >= 0.0) ||
        sample > 1.0) {
        fprintf(stderr, "tokend serve: --log-sample-auth-ok takes a share from 0 to 1, e.g. 0.1 (got '%s')\n",
                s.v[SET_LOG_SAMPLE_AUTH_OK]);
        goto out;
    }
    if (s.v[SET_LOG]) { /* tkh_start opens it; a bad path is said here, plainly */
        int lfd = open(s.v[SET_LOG], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (lfd < 0) {
            fprintf(stderr, "tokend serve: cannot open the log %s: %s\n", s.v[SET_LOG], strerror(errno));
            goto out;
        }
        close(lfd);
    }
    uint16_t bound = port;
    fd = bind_listen("listen", host, port, &bound, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "tokend serve: %s\n", err);
        goto out;
    }
    uint16_t admin_bound = 0;
    if (admin_on) {
        admin_fd = bind_listen("admin-listen", admin_host, admin_port, &admin_bound, err, sizeof err);
        if (admin_fd < 0) {
            fprintf(stderr,
                    "tokend serve: %s (the admin listener, for /metrics: --admin-listen HOST:PORT for "
                    "another port, or off)\n",
                    err);
            goto out;
        }
        if (!is_loopback(admin_host)) {
            fprintf(stderr,
                    "tokend serve: warning: the admin listener on %s is plain HTTP and not on loopback: whoever "
                    "reaches it reads /metrics (keep it on a private network, or firewall it)\n",
                    admin_host);
        }
    }
    char url[512];
    int v6 = strchr(host, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%u", insecure ? "http" : "https", v6 ? "[" : "", host, v6 ? "]" : "", bound);
    const char *public_url = s.v[SET_PUBLIC_URL] ? s.v[SET_PUBLIC_URL] : url;
    const char *issuer = s.v[SET_ISSUER] ? s.v[SET_ISSUER] : public_url;
    /* PostgreSQL: a connection for every thread that may use the store at
     * once (request threads, password checks, upkeep and the watcher) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned ncores = cores > 0 && cores < 1024 ? (unsigned)cores : 1u; /* as the server counts them */
    unsigned workers = login_workers > 0 ? (unsigned)login_workers : ncores;
    unsigned reqs = threads > 0 ? (unsigned)threads : ncores;
    const char *db = sqlite_path(s.v[SET_STORE]);
    int store_new = db != NULL && access(db, F_OK) != 0;
    int key_new = access(s.v[SET_MASTER_KEY_FILE], F_OK) != 0;
    if (cli_open_store(&s, "serve", reqs + workers + 2, &store) != 0) {
        goto out;
    }
    if (cli_open_authority(&s, "serve", 1, issuer, &store, &auth) != 0) {
        goto out;
    }
    print_files(&s, store_new, key_new && access(s.v[SET_MASTER_KEY_FILE], F_OK) == 0);
    tkh_config hc;
    tkh_config_defaults(&hc);
    hc.listen_fd = fd;
    hc.admin_fd = admin_fd;
    hc.public_metrics = cli_setting_bool(&s, SET_PUBLIC_METRICS);
    hc.host = host;
    hc.port = bound;
    hc.tls_cert = cert;
    hc.tls_key = key;
    hc.insecure_http = insecure;
    hc.threads = (unsigned)threads;
    hc.max_connections = (unsigned)max_conn;
    hc.public_url = public_url;
    hc.explain = explain;
    hc.log_path = s.v[SET_LOG]; /* opened (O_APPEND) by tkh_start, reopened on SIGHUP */
    hc.log_sample_auth_ok = sample;
    hc.max_per_ip = (unsigned)per_ip;
    hc.request_timeout = (unsigned)req_timeout;
    hc.trusted_proxies = s.v[SET_TRUSTED_PROXY];
    hc.forwarded_header = fwd_header;
    hc.auth_audience = s.v[SET_AUTH_AUDIENCE];
    hc.trust = trust;
    tkh_bcl_config bc;
    tkh_bcl_config_defaults(&bc);
    bc.ca_file = s.v[SET_TRUST_CA_FILE];
    bc.log = trust_log;
    if (tkh_bcl_open(auth, store, &bc, &bcl) != 0) {
        fprintf(stderr, "tokend serve: cannot start the back-channel logout sender\n");
        goto out;
    }
    hc.bcl = bcl;
    hc.login_workers = (unsigned)login_workers;
    hc.login_queue = (unsigned)login_queue;
    if (tkh_start(auth, store, &hc, &srv, err, sizeof err) != 0) {
        if (!insecure) {
            fprintf(stderr, "tokend serve: %s (TLS certificate %s, key %s: are they PEM, and do they match?)\n", err,
                    cert_path, key_path);
        } else {
            fprintf(stderr, "tokend serve: %s\n", err);
        }
        goto out;
    }
    fd = -1; /* the server owns the sockets now */
    admin_fd = -1;
    atomic_store(&trust_log_srv, srv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    char store_shown[512];
    tks_url_redact(s.v[SET_STORE], store_shown, sizeof store_shown);
    printf("tokend serve: listening on %s (store %s, issuer %s)\n", public_url, store_shown, issuer);
    char metrics_url[600];
    if (admin_on) {
        int av6 = strchr(admin_host, ':') != NULL;
        snprintf(metrics_url, sizeof metrics_url, "http://%s%s%s:%u/metrics", av6 ? "[" : "", admin_host,
                 av6 ? "]" : "", tkh_admin_port(srv));
        printf("tokend serve: admin listener on %.*s (/metrics, /healthz, /readyz)%s\n",
               (int)(strlen(metrics_url) - strlen("/metrics")), metrics_url,
               hc.public_metrics ? "; /metrics is on the public listener too (--public-metrics)" : "");
    } else {
        snprintf(metrics_url, sizeof metrics_url, "%s/metrics", public_url);
        printf("tokend serve: no admin listener (--admin-listen off)%s\n",
               hc.public_metrics ? "; /metrics is on the public listener (--public-metrics)" : ", no /metrics");
    }
    if (trust) {
        char tl[1024];
        tk_keycache_issuer_list(tka_trust_cache(trust), tl, sizeof tl);
        printf("  /auth also accepts tokens of: %s (their key sets are being fetched; see %s "
               "tokend_issuer_*)\n",
               tl, metrics_url);
    }
    /* "tokend-dev.crt", not "./tokend-dev.crt": as README.md names it */
    const char *cert_shown = strncmp(cert_path, "./", 2) == 0 ? cert_path + 2 : cert_path;
    if (fp[0]) {
        printf("  development TLS certificate %s%s\n  SHA-256 fingerprint %s\n  (self-signed: for development "
               "only; clients must trust this file, e.g. curl --cacert %s)\n",
               cert_shown, dev_created ? " (new)" : "", fp, cert_shown);
    }
    print_try_it(&s, store, public_url, fp[0] ? cert_shown : NULL);
    char ready[700];
    snprintf(ready, sizeof ready, "READY=1\nSTATUS=listening on %s\nMAINPID=%ld", public_url, (long)getpid());
    notify_systemd(ready);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int64_t warned = 0;
    while (!stop_requested) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL); /* a signal cuts it short */
        if (reload_requested) {
            reload_requested = 0;
            reload(srv, insecure, cert_path, key_path);
        }
        int64_t now = (int64_t)time(NULL);
        /* A failed upkeep (the store unreachable) leaves the revocation set
         * and the key ring as they were; the next second tries again. Say
         * so, once a minute. */
        if (tka_maintain(auth, now) != 0 && now - warned >= 60) {
            char msg[320];
            snprintf(msg, sizeof msg, "upkeep failed (revocations or keys may be stale until it succeeds): %s",
                     tks_errmsg(store));
            tkh_log(srv, "warning", msg);
            warned = now;
        }
    }
    notify_systemd("STOPPING=1");
    printf("tokend serve: stopping\n");
    status = CLI_EXIT_OK;
out:
    atomic_store(&trust_log_srv, NULL);
    tkh_stop(srv);
    tkh_bcl_close(bcl); /* after the server: no request ends a sign-in any more */
    tka_trust_close(trust);
    if (fd >= 0) {
        close(fd);
    }
    if (admin_fd >= 0) {
        close(admin_fd);
    }
    tka_close(auth);
    tks_close(store);
    if (key) {
        cli_free_secret(key, strlen(key));
    }
    free(cert);
    cli_settings_free(&s);
    return status;
}
