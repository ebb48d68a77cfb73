/*
 * util.c — helpers shared by the sub-commands: bounded file and stdin
 * reading, durations, key file loading.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli/cli.h"

void cli_free_secret(char *p, size_t n)
{
    if (p) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

static int read_fd(int fd, size_t max, char **out, size_t *len, int *truncated)
{
    size_t cap = 4096;
    size_t n = 0;
    char *buf = malloc(cap + 1);
    *out = NULL;
    *len = 0;
    if (truncated) {
        *truncated = 0;
    }
    if (!buf) {
        return -1;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max) {
                if (truncated) {
                    *truncated = 1;
                }
                break;
            }
            size_t ncap = cap * 2;
            char *nb = malloc(ncap + 1);
            if (!nb) {
                cli_free_secret(buf, cap + 1);
                return -1;
            }
            memcpy(nb, buf, n);
            cli_free_secret(buf, cap + 1);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            cli_free_secret(buf, cap + 1);
            return -1;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    if (n > max) {
        if (truncated) {
            *truncated = 1;
        }
        n = max;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int cli_read_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int truncated = 0;
    int rc = read_fd(fd, max, out, len, &truncated);
    close(fd);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (truncated) {
        cli_free_secret(*out, *len);
        *out = NULL;
        *len = 0;
        snprintf(err, err_cap, "%s is larger than %zu bytes", path, max);
        return -1;
    }
    return 0;
}

int cli_read_stdin(size_t max, char **out, size_t *len, int *truncated)
{
    return read_fd(STDIN_FILENO, max, out, len, truncated);
}

int cli_parse_int64(const char *s, int64_t *out)
{
    if (!s || !*s) {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || !end || *end != '\0') {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int cli_parse_duration(const char *s, int64_t *out)
{
    if (!s || !*s) {
        return -1;
    }
    int64_t total = 0;
    const char *p = s;
    while (*p) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n > 100000000) {
                return -1;
            }
            n = n * 10 + (*p - '0');
            p++;
        }
        int64_t unit = 1;
        switch (*p) {
        case 'd':
            unit = 86400;
            p++;
            break;
        case 'h':
            unit = 3600;
            p++;
            break;
        case 'm':
            unit = 60;
            p++;
            break;
        case 's':
            p++;
            break;
        case '\0':
            break;
        default:
            return -1;
        }
        total += n * unit;
        if (total > TK_LIMIT_NUMERICDATE_MAX) {
            return -1;
        }
    }
    *out = total;
    return 0;
}

int64_t cli_now(void)
{
    return (int64_t)time(NULL);
}

int cli_file_too_open(const char *path, unsigned *mode)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0;
    }
    *mode = (unsigned)(st.st_mode & 07777);
    return (st.st_mode & 077) != 0;
}

const char *cli_key_error(tk_result r)
{
    switch (r) {
    case TK_ERR_KEY:
        return "the key was refused (malformed, RSA under 2048 bits, HMAC secret shorter than the hash, EC point "
               "not on the curve, encrypted PEM, or an alg that does not fit the key)";
    case TK_ERR_UNSUPPORTED:
        return "unsupported key type or curve (tokend uses RSA, EC P-256/P-384/P-521, Ed25519 and oct keys)";
    case TK_ERR_JSON:
        return "not valid JSON";
    case TK_ERR_LIMIT:
        return "too large";
    default:
        return tk_result_str(r);
    }
}

static int looks_like_json(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t') {
            continue;
        }
        return p[i] == '{';
    }
    return 0;
}

static void note_add(char *note, size_t cap, const char *text)
{
    size_t pos = strlen(note);
    if (pos + 3 >= cap) {
        return;
    }
    snprintf(note + pos, cap - pos, "%s%s", pos ? "; " : "", text);
}

void cli_adopt_key(tk_key *k, tk_alg alg_hint, const char *kid_hint, const char *what, char *note, size_t note_cap)
{
    char line[320];
    if (tk_key_alg(k) == TK_ALG_UNSET && alg_hint != TK_ALG_UNSET && tk_key_alg_fits(k, alg_hint) &&
        tk_key_bind_alg(k, alg_hint) == TK_OK && note_cap) {
        snprintf(line, sizeof line,
                 "the %s key in %s names no alg; it was bound to %s, the token's alg, which that key type allows",
                 tk_key_kty(k), what, tk_alg_name(alg_hint));
        note_add(note, note_cap, line);
    }
    if (!tk_key_kid(k) && kid_hint && tk_key_set_kid(k, kid_hint) == TK_OK && note_cap) {
        snprintf(line, sizeof line, "the key in %s has no kid; it was used for the token's kid \"%s\"", what, kid_hint);
        note_add(note, note_cap, line);
    }
}

int cli_load_key_file(const char *path, tk_alg alg_hint, const char *kid_hint, tk_keyset *ks, char *note,
                      size_t note_cap, char *err, size_t err_cap)
{
    char *buf = NULL;
    size_t n = 0;
    int ret = -1;
    tk_key *k = NULL;
    tk_keyset *loaded = NULL;
    if (note_cap) {
        note[0] = '\0';
    }
    if (cli_read_file(path, CLI_MAX_KEY_FILE, &buf, &n, err, err_cap) != 0) {
        return -1;
    }
    tk_result rc;
    if (looks_like_json(buf, n)) {
        if (strstr(buf, "\"keys\"")) {
            size_t skipped = 0;
            rc = tk_keyset_from_jwks(buf, n, alg_hint, &loaded, &skipped);
            if (rc != TK_OK) {
                snprintf(err, err_cap, "%s: JWKS refused: %s", path, cli_key_error(rc));
                goto out;
            }
            rc = tk_keyset_merge(ks, loaded);
            if (rc != TK_OK) {
                snprintf(err, err_cap, "%s: %s", path,
                         rc == TK_ERR_ARG ? "a key with the same kid is already loaded" : cli_key_error(rc));
                goto out;
            }
            ret = 0;
            goto out;
        }
        rc = tk_key_from_jwk(buf, n, TK_ALG_UNSET, &k);
    } else if (strstr(buf, "-----BEGIN")) {
        rc = tk_key_from_pem(buf, n, TK_ALG_UNSET, NULL, &k);
    } else {
        snprintf(err, err_cap, "%s is neither a PEM key nor a JWK (for a raw HMAC secret, use --secret-file)", path);
        goto out;
    }
    if (rc != TK_OK) {
        snprintf(err, err_cap, "%s: %s", path, cli_key_error(rc));
        goto out;
    }
    cli_adopt_key(k, alg_hint, kid_hint, path, note, note_cap);
    rc = tk_keyset_add(ks, k);
    if (rc != TK_OK) {
        snprintf(err, err_cap, "%s: %s", path,
                 rc == TK_ERR_ARG ? "a key with the same kid is already loaded" : cli_key_error(rc));
        goto out;
    }
    k = NULL;
    ret = 0;
out:
    tk_key_free(k);
    tk_keyset_free(loaded);
    cli_free_secret(buf, n);
    return ret;
}

int cli_random_id(size_t n, char *buf, size_t cap)
{
    unsigned char r[64];
    if (n > sizeof r || RAND_bytes(r, (int)n) != 1) {
        return -1;
    }
    return tk_b64url_encode(r, n, buf, cap, NULL) == TK_OK ? 0 : -1;
}

void cli_print_json(json_t *o)
{
    char *t = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (t) {
        printf("%s\n", t);
    }
    free(t);
    json_decref(o);
}
