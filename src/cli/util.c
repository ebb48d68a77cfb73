/* SPDX-License-Identifier: Apache-2.0 */
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
#include "tokend/keycache.h"

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
        return "the key was refused";
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

void cli_key_name(char *buf, size_t cap, size_t index, const char *kid)
{
    char k[80];
    size_t o = 0;
    for (size_t i = 0; kid && kid[i] && o + 4 < sizeof k; i++) {
        unsigned char c = (unsigned char)kid[i];
        k[o++] = c >= 0x20 && c < 0x7f && c != '\'' ? (char)c : '?';
    }
    k[o] = '\0';
    if (o) {
        snprintf(buf, cap, "key #%zu (kid '%s')", index + 1, k);
    } else {
        snprintf(buf, cap, "key #%zu", index + 1);
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

/* What kind of JSON document a key file holds: 2 a key set ("keys" is an
 * array), 1 a single JWK ("kty"), 0 something else (or not JSON). */
static int json_key_kind(const char *buf, size_t n, char *kid, size_t kid_cap)
{
    kid[0] = '\0';
    json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
    int kind = 0;
    if (json_is_array(json_object_get(o, "keys"))) {
        kind = 2;
    } else if (json_object_get(o, "kty")) {
        kind = 1;
        const char *k = json_string_value(json_object_get(o, "kid"));
        if (k) {
            snprintf(kid, kid_cap, "%s", k);
        }
    }
    json_decref(o);
    return kind;
}

/* The skipped keys of a set, one "key #N (kid 'x'): why" each, joined by
 * "; " into out. */
static void skips_text(const tk_jwks_skip *skips, size_t n_skipped, size_t shown, char *out, size_t cap)
{
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n_skipped && i < shown; i++) {
        char name[120];
        cli_key_name(name, sizeof name, skips[i].index, skips[i].kid);
        int w = snprintf(out + pos, cap - pos, "%s%s: %s", i ? "; " : "", name, skips[i].why);
        if (w < 0 || (size_t)w >= cap - pos) {
            return;
        }
        pos += (size_t)w;
    }
    if (n_skipped > shown) {
        snprintf(out + pos, cap - pos, "; and %zu more", n_skipped - shown);
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
    tk_key_error ke;
    memset(&ke, 0, sizeof ke);
    if (note_cap) {
        note[0] = '\0';
    }
    if (cli_read_file(path, CLI_MAX_KEY_FILE, &buf, &n, err, err_cap) != 0) {
        return -1;
    }
    tk_result rc;
    if (looks_like_json(buf, n)) {
        char kid[TK_LIMIT_KID_LEN + 1];
        int kind = json_key_kind(buf, n, kid, sizeof kid);
        if (kind != 1) {
            /* A key set: a key that cannot be used is skipped and named, the
             * rest is used. Anything else: say what the document is. */
            tk_jwks_skip skips[8];
            size_t n_skipped = 0;
            rc = tk_keyset_from_jwks_ex(buf, n, alg_hint, &loaded, skips, 8, &n_skipped, &ke);
            if (rc != TK_OK) {
                snprintf(err, err_cap, "%s: not a key: %s", path, ke.why);
                goto out;
            }
            char text[1200];
            skips_text(skips, n_skipped, 8, text, sizeof text);
            if (tk_keyset_count(loaded) == 0) {
                if (n_skipped == 0) {
                    snprintf(err, err_cap,
                             "%s: the key set is empty ({\"keys\": []}), as 'tokend keygen --alg HS*' prints it: an "
                             "HMAC secret has no public part; give the secret's JWK file (--key FILE.jwk)",
                             path);
                } else {
                    snprintf(err, err_cap, "no usable key in %s: %s", path, text);
                }
                ret = 1;
                goto out;
            }
            if (n_skipped && note_cap) {
                char line[1400];
                snprintf(line, sizeof line, "%s: skipped %zu unusable key%s, used the other %zu: %s", path, n_skipped,
                         n_skipped == 1 ? "" : "s", tk_keyset_count(loaded), text);
                note_add(note, note_cap, line);
            }
            if (tk_keyset_count(loaded) == 1) {
                cli_adopt_key((tk_key *)(uintptr_t)tk_keyset_get(loaded, 0), TK_ALG_UNSET, kid_hint, path, note,
                              note_cap);
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
        rc = tk_key_from_jwk_ex(buf, n, TK_ALG_UNSET, &k, &ke);
        if (rc != TK_OK) {
            if (kid[0]) {
                snprintf(err, err_cap, "%s: the key (kid '%s') was refused: %s", path, kid, ke.why);
            } else {
                snprintf(err, err_cap, "%s: the key was refused: %s", path, ke.why);
            }
            goto out;
        }
    } else if (strstr(buf, "-----BEGIN")) {
        rc = tk_key_from_pem_ex(buf, n, TK_ALG_UNSET, NULL, &k, &ke);
        if (rc != TK_OK) {
            snprintf(err, err_cap, "%s: the key was refused: %s", path, ke.why);
            goto out;
        }
    } else {
        size_t i = 0;
        while (i < n && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) {
            i++;
        }
        if (i < n && buf[i] == '<' &&
            tk_keyset_from_jwks_ex(buf, n, TK_ALG_UNSET, &loaded, NULL, 0, NULL, &ke) != TK_OK) {
            snprintf(err, err_cap, "%s: not a key: %s", path, ke.why); /* an HTML page saved as a key set */
        } else {
            snprintf(err, err_cap, "%s is neither a PEM key nor a JWK (for a raw HMAC secret, use --secret-file)",
                     path);
        }
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

int cli_secret_file_kind(const char *buf, size_t n, const char *path, char *err, size_t err_cap)
{
    if (looks_like_json(buf, n)) {
        char kid[TK_LIMIT_KID_LEN + 1];
        int kind = json_key_kind(buf, n, kid, sizeof kid);
        if (kind == 1) {
            snprintf(err, err_cap,
                     "%s is a JWK (as 'tokend keygen' writes), not a raw secret: pass it with --key %s "
                     "(--secret-file takes the secret's bytes as they are)",
                     path, path);
            return -1;
        }
        if (kind == 2) {
            snprintf(err, err_cap, "%s is a key set (JWKS), not a raw secret: pass it with --jwks %s", path, path);
            return -1;
        }
    }
    if (strstr(buf, "-----BEGIN")) { /* cli_read_file NUL-terminates */
        snprintf(err, err_cap, "%s is a PEM key, not a raw secret: pass it with --key %s", path, path);
        return -1;
    }
    return 0;
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
