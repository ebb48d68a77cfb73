/* SPDX-License-Identifier: Apache-2.0 */
/*
 * inspect.c — `tokend inspect`: decode any token offline, run every check
 * that the given keys and flags allow, and explain every problem with its
 * reason code and a fix. Claims of a token whose signature was not verified
 * are shown, but their problems are marked unverified.
 *
 * Keys come from files, from a JWKS URL, or from the key set an issuer
 * publishes (--issuer URL, or --discover from the token's own iss), found
 * and fetched by the key cache (tokend/keycache.h) exactly as a verifier
 * that trusts that issuer finds it. Every fetch goes through one fetcher,
 * tk_fetch_https (tokend/fetch.h): https only, bounded size and time, the
 * system's CAs plus --cacert (or $CURL_CA_BUNDLE, else $SSL_CERT_FILE).
 * Nothing in a token chooses a URL unless --discover asks for it, and then
 * the output says so (SECURITY.md rule 24).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/settings.h"
#include "tokend/fetch.h"
#include "tokend/keycache.h"

#define MAX_LIST TK_LIMIT_POLICY_ITEMS
#define MAX_PROBLEMS (TK_LIMIT_PROBLEMS + 4)
/* A person waits for these fetches: longer than the server's defaults, so a
 * slow issuer still gets diagnosed, short enough to give up visibly. */
#define FETCH_TIMEOUT_MS 15000L
#define FETCH_CONNECT_TIMEOUT_MS 5000L
/* Fetches recorded for the output: discovery takes at most two, the key set
 * one, an unknown kid one more. */
#define MAX_FETCHES 8
/* Key-source details shown: kids listed, skipped keys described. */
#define MAX_KIDS 16
#define MAX_SKIPS 8
/* The claims --profile tokend requires besides --require's: those of the
 * server's own access tokens (authority/tokens.c, RFC 9068 §2.2). */
static const char *const profile_required[] = {"jti", "sub", "client_id"};
#define PROFILE_REQUIRED 3

struct problem {
    tk_verdict v;
    int unverified; /* a claim problem of a token whose signature did not pass */
};

/* One fetch the key cache made, as the output reports it. */
struct fetch_rec {
    char url[TK_LIMIT_URL_LEN + 64];
    long status;
    int64_t max_age;
    int failed;
};

/* Where the keys came from, when they were fetched (--jwks URL, --issuer,
 * --discover). Every string is printable ASCII. */
struct keysrc {
    const char *kind; /* NULL: nothing fetched; "jwks_url", "issuer", "discover" */
    char issuer[TK_LIMIT_URL_LEN + 1];
    char jwks_uri[TK_LIMIT_URL_LEN + 1];
    struct fetch_rec metadata[MAX_FETCHES]; /* the metadata fetches, in order */
    size_t n_metadata;
    size_t keys;
    char kids[MAX_KIDS][72];
    size_t n_kids;
    size_t skipped;
    char skips[MAX_SKIPS + 1][320]; /* one skipped key (or the cache's summary) per line */
    size_t n_skips;
    int64_t max_age; /* Cache-Control max-age of the key set; -1 without one */
    char lifetime[200];
    char notice[TK_LIMIT_URL_LEN + 200];
};

struct report {
    struct problem p[MAX_PROBLEMS];
    size_t n;
    const char *source;                 /* "bare token", "Authorization header value", ... */
    char source_buf[320];               /* the source, when the input was repaired to inspect it */
    char clean[TK_LIMIT_TOKEN_LEN + 1]; /* the token tk_input_diagnose recovered from the input */
    char key_note[1536];                /* how a key was bound, which keys of a set were skipped, for people */
    char sig_detail[TK_LIMIT_DETAIL_LEN];
    const char *signature;                   /* "verified", "failed", "not_checked" */
    char sig_reason[TK_LIMIT_URL_LEN + 320]; /* why not checked */
    struct keysrc ks;
    const char *profile; /* "tokend" under --profile tokend */
};

static void add(struct report *r, const tk_verdict *v, int unverified)
{
    if (r->n < MAX_PROBLEMS) {
        r->p[r->n].v = *v;
        r->p[r->n].unverified = unverified;
        r->n++;
    }
}

static void help(FILE *f)
{
    fputs("Usage: tokend inspect [--jwks FILE|URL] [--key FILE] [--secret-file FILE]\n"
          "                      [--issuer URL | --discover] [--cacert FILE]\n"
          "                      [--iss ISS] [--aud AUD] [--scope SCOPE]... [--typ TYP]\n"
          "                      [--require CLAIM]... [--profile tokend]\n"
          "                      [--leeway SECONDS] [--max-age DURATION] [--now UNIX_SECONDS]\n"
          "                      [--json] [TOKEN | -]\n"
          "\n"
          "Decodes a token and explains whether it is valid and, if not, exactly why.\n"
          "TOKEN may be a bare JWT, a 'Bearer <token>' value or a whole\n"
          "'Authorization: Bearer <token>' line; '-' (or no argument with a pipe)\n"
          "reads it from stdin, which keeps it out of your shell history.\n"
          "\n"
          "Keys (without one the signature is not checked and the token is never valid):\n"
          "  --jwks FILE|URL     a JWKS file or an https:// URL\n"
          "  --key FILE          a PEM key (public or private) or a JWK\n"
          "  --secret-file FILE  the raw HMAC secret (file bytes as they are)\n"
          "  --issuer URL        the key set the issuer URL publishes, found through its\n"
          "                      metadata (OpenID Connect Discovery, else RFC 8414) as a\n"
          "                      verifier that trusts URL finds it; iss must equal URL\n"
          "  --discover          the same from the token's own iss, which is not trusted\n"
          "                      by that: check that it is the issuer you expect\n"
          "  --cacert FILE       CA certificates trusted besides the system's, for every\n"
          "                      https fetch (default: $CURL_CA_BUNDLE, else $SSL_CERT_FILE)\n"
          "Checks:\n"
          "  --iss ISS           expected issuer (may repeat: any of them)\n"
          "  --aud AUD           expected audience (may repeat: any of them)\n"
          "  --scope SCOPE       a scope the token must carry (may repeat: all of them)\n"
          "  --typ TYP           expected header typ, e.g. at+jwt\n"
          "  --require CLAIM     a claim the token must carry, e.g. jti (may repeat)\n"
          "  --profile tokend    every check of tokend serve's /auth: typ at+jwt; jti, sub\n"
          "                      and client_id required; needs the server's issuer (--iss\n"
          "                      or --issuer) and the audience /auth checks (--aud)\n"
          "  --leeway SECONDS    clock skew allowed on exp/nbf/iat (default 60, max 300)\n"
          "  --max-age DURATION  refuse tokens issued longer ago than this\n"
          "  --now UNIX_SECONDS  check as of this time instead of the clock\n"
          "Output:\n"
          "  --json              one JSON object: valid, signature, header, payload, problems\n"
          "\n"
          "Revocation is never checked: inspect works offline, and a token that its\n"
          "issuer revoked still shows as VALID here. Without a key the result is at\n"
          "best UNVERIFIED.\n"
          "\n"
          "Exit status: 0 valid, 1 not valid or unverified, 2 usage error (or keys that\n"
          "cannot be read or fetched).\n"
          "\n"
          "Examples:\n"
          "  tokend inspect eyJhbGciOi...\n"
          "  pbpaste | tokend inspect --jwks https://auth.example/.well-known/jwks.json \\\n"
          "      --iss https://auth.example --aud orders-api --scope orders:read -\n"
          "  tokend inspect --issuer https://auth.example --aud orders-api - < token\n"
          "  tokend inspect --profile tokend --jwks https://auth.example/.well-known/jwks.json \\\n"
          "      --iss https://auth.example --aud orders-api - < token\n"
          "  tokend inspect --secret-file hs.key --json 'Authorization: Bearer eyJ...'\n",
          f);
}

/* ---- text from elsewhere ------------------------------------------------------ */

/* Copies at most `max` bytes of src into dst (cap bytes, NUL-terminated),
 * every byte outside printable ASCII as '?', "..." when cut: text from a
 * token or a server never reaches the terminal raw. */
static void printable(char *dst, size_t cap, const char *src, size_t max)
{
    size_t i = 0, o = 0;
    if (cap == 0) {
        return;
    }
    for (; src && src[i] && i < max && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[o] = '\0';
    if (src && src[i] && o + 4 < cap) {
        memcpy(dst + o, "...", 4);
    }
}

/* ---- UTF-8 on a terminal ------------------------------------------------------- */

/* 1 when the text output goes to a terminal whose locale's character set is
 * UTF-8 (set once by cli_inspect): text from the token (names, issuers,
 * audiences) is then shown as it is, not as \u00e9 or \xc3\xa9. Control
 * characters and invalid UTF-8 are escaped always, and --json is always
 * ASCII. */
static int utf8_out;

static int utf8_terminal(void)
{
    if (!isatty(STDOUT_FILENO)) {
        return 0;
    }
    /* Asked of the environment (LC_ALL, LC_CTYPE, LANG), then put back: the
     * rest of the command runs in the "C" locale. */
    int ok = 0;
    if (setlocale(LC_CTYPE, "")) {
        const char *cs = nl_langinfo(CODESET);
        ok = cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
    }
    (void)setlocale(LC_CTYPE, "C");
    return ok;
}

/* Whether a code point may reach the terminal raw: not a control (C0, DEL,
 * C1), not a line or paragraph separator, not a bidirectional control
 * (they reorder what is shown: "Trojan Source"), not a BOM, a surrogate or
 * beyond Unicode. */
static int showable(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) {
        return 0;
    }
    if (cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff) {
        return 0;
    }
    return !(cp >= 0xd800 && cp <= 0xdfff) && cp <= 0x10ffff;
}

/* The length of the well-formed UTF-8 sequence (of a code point >= 0x80) at
 * s[0..n), with its code point in *cp; 0 when it is not one (overlong,
 * surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c, min;
    if (n == 0 || s[0] < 0xc2 || s[0] > 0xf4) {
        return 0;
    }
    if (s[0] < 0xe0) {
        len = 2, c = s[0] & 0x1fu, min = 0x80;
    } else if (s[0] < 0xf0) {
        len = 3, c = s[0] & 0x0fu, min = 0x800;
    } else {
        len = 4, c = s[0] & 0x07u, min = 0x10000;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    *cp = c;
    return len;
}

static void put_utf8(uint32_t cp)
{
    if (cp < 0x800) {
        putchar((int)(0xc0 | (cp >> 6)));
    } else if (cp < 0x10000) {
        putchar((int)(0xe0 | (cp >> 12)));
        putchar((int)(0x80 | ((cp >> 6) & 0x3f)));
    } else {
        putchar((int)(0xf0 | (cp >> 18)));
        putchar((int)(0x80 | ((cp >> 12) & 0x3f)));
        putchar((int)(0x80 | ((cp >> 6) & 0x3f)));
    }
    putchar((int)(0x80 | (cp & 0x3f)));
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return 0;
        }
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 1;
}

/* Prints ASCII JSON text (from tk_token_*_json), with its \uXXXX escapes of
 * showable characters as UTF-8 when the terminal shows UTF-8. */
static void print_json_text(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        uint32_t cp, lo;
        if (s[i] != '\\') {
            putchar(s[i]);
            continue;
        }
        if (s[i + 1] != 'u') {
            putchar(s[i]); /* \" \\ \n ...: keep the pair together */
            if (s[i + 1]) {
                putchar(s[++i]);
            }
            continue;
        }
        size_t used = 0;
        if (utf8_out && hex4(s + i + 2, &cp)) {
            used = 6;
            if (cp >= 0xd800 && cp < 0xdc00 && s[i + 6] == '\\' && s[i + 7] == 'u' && hex4(s + i + 8, &lo) &&
                lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                used = 12;
            }
        }
        if (used && cp >= 0x80 && showable(cp)) {
            put_utf8(cp);
            i += used - 1;
        } else {
            putchar(s[i]);
        }
    }
}

/* Prints a verdict's detail, with its \xNN escapes of a showable UTF-8
 * character as that character when the terminal shows UTF-8 (the core
 * escapes every byte outside printable ASCII, and '"' and '\\' too, so a
 * raw backslash never comes from the token). */
static void print_detail(const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        unsigned char b[4];
        size_t nb = 0;
        while (utf8_out && nb < 4 && s[i + 4 * nb] == '\\' && s[i + 4 * nb + 1] == 'x' &&
               isxdigit((unsigned char)s[i + 4 * nb + 2]) && isxdigit((unsigned char)s[i + 4 * nb + 3])) {
            char h[3] = {s[i + 4 * nb + 2], s[i + 4 * nb + 3], '\0'};
            b[nb++] = (unsigned char)strtoul(h, NULL, 16);
        }
        uint32_t cp;
        size_t len = nb ? utf8_seq(b, nb, &cp) : 0;
        if (len && showable(cp)) {
            fwrite(b, 1, len, stdout);
            i += 4 * len - 1;
        } else {
            putchar(s[i]);
        }
    }
}

/* 1 when s is an https URL of printable ASCII without spaces, at most max bytes. */
static int clean_https_url(const char *s, size_t max)
{
    if (!s || strncmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/') {
        return 0;
    }
    size_t n = 0;
    for (; s[n]; n++) {
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || n >= max) {
            return 0;
        }
    }
    return 1;
}

/* ---- fetching ----------------------------------------------------------------- */

/*
 * The CA file for every fetch: --cacert, else $CURL_CA_BUNDLE, else
 * $SSL_CERT_FILE (the order of the curl tool; libcurl itself reads neither
 * variable). It is trusted besides the system's CAs. Returns 0 (with *file
 * NULL when none is named), or -1 with err when the named file cannot be
 * read: better said now than as a TLS error later.
 */
static int resolve_cafile(const char *flag, const char **file, const char **from, char *err, size_t err_cap)
{
    static const char *const envs[] = {"CURL_CA_BUNDLE", "SSL_CERT_FILE"};
    *file = NULL;
    *from = NULL;
    if (flag) {
        *file = flag;
        *from = "--cacert";
    } else {
        for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
            const char *v = getenv(envs[i]);
            if (v && *v) {
                *file = v;
                *from = envs[i];
                break;
            }
        }
    }
    if (!*file) {
        return 0;
    }
    struct stat st;
    int fd = open(*file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const char *why = fd < 0 ? strerror(errno) : "not a regular file";
        if (flag) {
            snprintf(err, err_cap, "--cacert %s: %s", *file, why);
        } else {
            snprintf(err, err_cap, "the CA file %s named by $%s: %s (unset it, or give --cacert FILE)", *file, *from,
                     why);
        }
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}

/* What to add to a failed fetch's message when it is about certificates. */
static const char *tls_hint(const char *error, const tk_fetch_options *fo)
{
    if (!strstr(error, "certificate") && !strstr(error, "SSL") && !strstr(error, "TLS")) {
        return "";
    }
    return fo->ca_file ? " (the CA file given was trusted too; is it the CA that signed this server's certificate?)"
                       : " (if this server's certificate is self-signed or from a private CA, pass that certificate "
                         "or CA with --cacert FILE, or set SSL_CERT_FILE)";
}

/* The key cache's fetcher: tk_fetch_https, recording what it fetched so
 * that inspect can say where the keys came from, and keeping a copy of the
 * last document that came with 200 (the key set, to list its kids). */
struct fetch_log {
    tk_fetch_options *fo;
    struct fetch_rec rec[MAX_FETCHES];
    size_t n;
    char *body;
    size_t body_len;
};

static int recording_fetch(void *ud, const char *url, size_t cap, tk_fetch_result *out)
{
    struct fetch_log *fl = ud;
    int rc = tk_fetch_https(fl->fo, url, cap, out);
    if (fl->n < MAX_FETCHES) {
        struct fetch_rec *f = &fl->rec[fl->n++];
        printable(f->url, sizeof f->url, url, TK_LIMIT_URL_LEN + 60);
        f->failed = rc != 0;
        f->status = rc == 0 ? out->status : 0;
        f->max_age = rc == 0 ? out->max_age : -1;
    }
    if (rc == 0 && out->status == 200 && out->body_len <= cap) {
        char *nb = realloc(fl->body, out->body_len + 1);
        if (nb) {
            memcpy(nb, out->body, out->body_len);
            nb[out->body_len] = '\0';
            fl->body = nb;
            fl->body_len = out->body_len;
        }
    }
    return rc;
}

/* Fetches url (a JWKS) into *out (owned, NUL-terminated). Returns 0, or -1
 * with one line in err naming the URL and why. */
static int fetch_url(tk_fetch_options *fo, const char *url, char **out, size_t *len, int64_t *max_age, char *err,
                     size_t err_cap)
{
    *out = NULL;
    *len = 0;
    *max_age = -1;
    char *buf = malloc(CLI_MAX_KEY_FILE + 1);
    if (!buf) {
        snprintf(err, err_cap, "%s: out of memory", url);
        return -1;
    }
    tk_fetch_result r;
    memset(&r, 0, sizeof r);
    r.body = buf;
    r.max_age = -1;
    if (tk_fetch_https(fo, url, CLI_MAX_KEY_FILE, &r) != 0) {
        r.error[sizeof r.error - 1] = '\0';
        snprintf(err, err_cap, "%s: %s%s", url, r.error[0] ? r.error : "the fetch failed", tls_hint(r.error, fo));
        free(buf);
        return -1;
    }
    if (r.status != 200) {
        snprintf(err, err_cap, "%s: HTTP status %ld", url, r.status);
        free(buf);
        return -1;
    }
    if (r.body_len == 0 || r.body_len > CLI_MAX_KEY_FILE) {
        snprintf(err, err_cap, "%s: empty response", url);
        free(buf);
        return -1;
    }
    buf[r.body_len] = '\0';
    *out = buf;
    *len = r.body_len;
    *max_age = r.max_age;
    return 0;
}

/* The kids of a key set into the key source (printable, the first MAX_KIDS). */
static void list_kids(const tk_keyset *ks, struct keysrc *src)
{
    src->keys = tk_keyset_count(ks);
    src->n_kids = 0;
    for (size_t i = 0; i < src->keys && src->n_kids < MAX_KIDS; i++) {
        const char *kid = tk_key_kid(tk_keyset_get(ks, i));
        printable(src->kids[src->n_kids++], sizeof src->kids[0], kid ? kid : "(no kid)", 64);
    }
}

/* The skipped keys of a set, one line each, into the key source. */
static void describe_skips(const tk_jwks_skip *skips, size_t n_skipped, struct keysrc *src)
{
    src->skipped = n_skipped;
    src->n_skips = 0;
    for (size_t i = 0; i < n_skipped && i < MAX_SKIPS; i++) {
        char name[120], why[sizeof skips[0].why];
        cli_key_name(name, sizeof name, skips[i].index, skips[i].kid);
        printable(why, sizeof why, skips[i].why, sizeof why);
        snprintf(src->skips[src->n_skips++], sizeof src->skips[0], "%s: %s", name, why);
    }
    if (n_skipped > MAX_SKIPS) {
        snprintf(src->skips[src->n_skips++], sizeof src->skips[0], "and %zu more", n_skipped - MAX_SKIPS);
    }
}

/* Algorithms a fetched set's keys may use: every asymmetric one (a
 * published set never holds a shared secret), the token's first, so that
 * an RSA key that names no alg is bound to the token's RS* or PS* alg, as
 * inspect does for keys given in files. Relies on the enum's order: HS*
 * before RS256, EdDSA last. */
static size_t fetched_set_algs(tk_alg hint, tk_alg *algs)
{
    size_t n = 0;
    if (hint >= TK_ALG_RS256 && hint < TK_ALG_COUNT_) {
        algs[n++] = hint;
    }
    for (int a = TK_ALG_RS256; a < TK_ALG_COUNT_; a++) {
        if ((tk_alg)a != hint) {
            algs[n++] = (tk_alg)a;
        }
    }
    return n;
}

/* The "issuer" of a metadata document, when it is a clean https URL. */
static void metadata_issuer(const char *doc, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *o = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL);
    const char *iss = json_string_value(json_object_get(o, "issuer"));
    if (iss && clean_https_url(iss, TK_LIMIT_URL_LEN) && strlen(iss) < cap) {
        memcpy(out, iss, strlen(iss) + 1);
    }
    json_decref(o);
}

/*
 * --jwks https://...: fetches the set and reads it leniently, as a verifier
 * of an external issuer does: a key that cannot be used is skipped and
 * reported, the rest is used. A document that is not a key set is refused
 * with what it is (an HTML page, metadata) and what to do instead. Returns
 * 0 with *out, or -1 after printing why on stderr.
 */
static int load_jwks_url(tk_fetch_options *fo, const char *url, tk_alg hint, tk_keyset **out, struct keysrc *src)
{
    char err[TK_LIMIT_URL_LEN + 600];
    char *buf = NULL;
    size_t len = 0;
    int64_t max_age = -1;
    int ret = -1;
    *out = NULL;
    if (fetch_url(fo, url, &buf, &len, &max_age, err, sizeof err) != 0) {
        fprintf(stderr, "tokend inspect: cannot fetch the JWKS: %s\n", err);
        return -1;
    }
    tk_alg algs[TK_ALG_COUNT_];
    size_t n_algs = fetched_set_algs(hint, algs);
    tk_jwks_skip skips[MAX_SKIPS];
    size_t n_skipped = 0;
    char why[256];
    tk_keyset *ks = NULL;
    tk_result rc =
        tk_keyset_from_jwks_lenient(buf, len, algs, n_algs, &ks, skips, MAX_SKIPS, &n_skipped, why, sizeof why);
    if (rc != TK_OK) {
        fprintf(stderr, "tokend inspect: the JWKS %s was refused: %s\n", url,
                rc == TK_ERR_JSON && why[0] ? why : cli_key_error(rc));
        char iss[TK_LIMIT_URL_LEN + 1];
        char uri[TK_LIMIT_URL_LEN + 1];
        char mwhy[8];
        if (rc == TK_ERR_JSON && tk_metadata_parse(buf, len, NULL, uri, sizeof uri, mwhy, sizeof mwhy) == TK_OK) {
            metadata_issuer(buf, len, iss, sizeof iss);
            fprintf(stderr,
                    "tokend inspect: hint: --jwks takes the key set itself: give --jwks %s, or --issuer %s to find "
                    "it through this metadata as a verifier does\n",
                    uri, iss[0] ? iss : "ISSUER");
        } else if (rc == TK_ERR_JSON) {
            fprintf(stderr, "tokend inspect: hint: --jwks takes the URL of the key set ({\"keys\": [...]}); "
                            "--issuer ISSUER finds it through the issuer's metadata\n");
        }
        goto out;
    }
    src->kind = "jwks_url";
    printable(src->jwks_uri, sizeof src->jwks_uri, url, TK_LIMIT_URL_LEN);
    list_kids(ks, src);
    describe_skips(skips, n_skipped, src);
    src->max_age = max_age;
    if (max_age < 0) {
        snprintf(src->lifetime, sizeof src->lifetime, "no Cache-Control max-age");
    } else if (max_age == 0) {
        snprintf(src->lifetime, sizeof src->lifetime, "Cache-Control no-store or no-cache");
    } else {
        char d[32];
        tk_format_duration(max_age, d, sizeof d);
        snprintf(src->lifetime, sizeof src->lifetime, "Cache-Control max-age=%lld (%s)", (long long)max_age, d);
    }
    if (tk_keyset_count(ks) == 0) {
        fprintf(stderr, "tokend inspect: the JWKS %s has no usable key (%zu skipped):\n", url, n_skipped);
        for (size_t i = 0; i < src->n_skips; i++) {
            fprintf(stderr, "  %s\n", src->skips[i]);
        }
        goto out;
    }
    *out = ks;
    ks = NULL;
    ret = 0;
out:
    tk_keyset_free(ks);
    free(buf);
    return ret;
}

/* ---- the key set of an issuer (--issuer, --discover) -------------------------- */

/*
 * Makes a key cache with the one issuer and fetches its key set as a
 * verifier that trusts it does (discovery, then the jwks_uri). Returns 0
 * with *out, -2 when the cache refuses the issuer URL itself, or -1 with
 * err when no usable key set could be fetched.
 */
static int issuer_fetch(const char *issuer, struct fetch_log *fl, int64_t now, tk_keycache **out, char *err,
                        size_t err_cap)
{
    *out = NULL;
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.inline_fetch = 1; /* no maintainer thread here: a fetch happens on this one */
    cfg.fetch = recording_fetch;
    cfg.fetch_ud = fl;
    tk_keycache *kc = NULL;
    if (tk_keycache_new(&cfg, &kc) != TK_OK) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = issuer;
    tk_result rc = tk_keycache_add_issuer(kc, &ic);
    if (rc != TK_OK) {
        tk_keycache_free(kc);
        if (rc == TK_ERR_ARG) {
            return -2;
        }
        snprintf(err, err_cap, "%s", tk_result_str(rc));
        return -1;
    }
    (void)tk_keycache_maintain(kc, now); /* the first fetch is due at once */
    tk_keycache_status st;
    if (!tk_keycache_status_get(kc, issuer, now, &st) || !st.have_keys) {
        char e[sizeof st.last_error];
        printable(e, sizeof e, st.last_error[0] ? st.last_error : "no key set arrived", sizeof e);
        snprintf(err, err_cap, "%s%s", e, tls_hint(e, fl->fo));
        tk_keycache_free(kc);
        return -1;
    }
    *out = kc;
    return 0;
}

/* Fills the key source from the cache's status and the fetches made. */
static void issuer_describe(tk_keycache *kc, const char *issuer, const struct fetch_log *fl,
                            const tk_keycache_config *cfg, int64_t now, struct keysrc *src)
{
    tk_keycache_status st;
    if (!tk_keycache_status_get(kc, issuer, now, &st)) {
        return;
    }
    printable(src->issuer, sizeof src->issuer, issuer, TK_LIMIT_URL_LEN);
    printable(src->jwks_uri, sizeof src->jwks_uri, st.jwks_uri, TK_LIMIT_URL_LEN);
    src->max_age = -1;
    src->n_metadata = 0;
    for (size_t i = 0; i < fl->n; i++) {
        const struct fetch_rec *f = &fl->rec[i];
        if (strcmp(f->url, src->jwks_uri) == 0) {
            if (!f->failed && f->status == 200) {
                src->max_age = f->max_age;
            }
            continue;
        }
        src->metadata[src->n_metadata++] = *f;
    }
    src->keys = st.keys;
    src->n_kids = 0;
    src->skipped = st.skipped;
    src->n_skips = 0;
    tk_keyset *ks = NULL;
    tk_jwks_skip skips[MAX_SKIPS];
    size_t n_skipped = 0;
    /* The set as the cache read it (the same reader and algs), for its kids
     * and one line per skipped key; the cache's own summary otherwise. */
    if (fl->body &&
        tk_keyset_from_jwks_lenient(fl->body, fl->body_len, NULL, 0, &ks, skips, MAX_SKIPS, &n_skipped, NULL, 0) ==
            TK_OK &&
        tk_keyset_count(ks) == st.keys && n_skipped == st.skipped) {
        list_kids(ks, src);
        describe_skips(skips, n_skipped, src);
    } else if (st.skipped) {
        printable(src->skips[src->n_skips++], sizeof src->skips[0], st.skipped_why, sizeof st.skipped_why);
    }
    src->keys = st.keys;
    tk_keyset_free(ks);
    int64_t ttl = st.expires_at - st.fetched_at;
    char d[32], until[32];
    tk_format_duration(ttl, d, sizeof d);
    tk_format_time(st.expires_at, until, sizeof until);
    if (src->max_age < 0) {
        snprintf(src->lifetime, sizeof src->lifetime, "no Cache-Control max-age: kept for the default %s, until %s", d,
                 until);
    } else if (src->max_age == 0) {
        snprintf(src->lifetime, sizeof src->lifetime,
                 "Cache-Control no-store or no-cache: kept for the minimum %s, until %s", d, until);
    } else if (src->max_age != ttl) {
        snprintf(src->lifetime, sizeof src->lifetime,
                 "Cache-Control max-age=%lld, clamped to %s (the cache keeps a set %llds to %llds), until %s",
                 (long long)src->max_age, d, (long long)cfg->min_ttl, (long long)cfg->max_ttl, until);
    } else {
        snprintf(src->lifetime, sizeof src->lifetime, "Cache-Control max-age=%lld: kept for %s, until %s",
                 (long long)src->max_age, d, until);
    }
}

/* Whether a verdict of tk_verify comes after its signature check passed
 * (parse, header policy, key, signature, payload, claims: SECURITY.md rule
 * 8). A malformed payload is checked after the signature; the same reason
 * for the structure, before it. */
static int after_signature(const tk_verdict *v, const tk_token *t)
{
    switch (v->reason) {
    case TK_REASON_VALID:
    case TK_REASON_EXPIRED:
    case TK_REASON_NOT_YET_VALID:
    case TK_REASON_ISSUED_IN_FUTURE:
    case TK_REASON_WRONG_ISSUER:
    case TK_REASON_WRONG_AUDIENCE:
    case TK_REASON_WRONG_TOKEN_TYPE:
    case TK_REASON_MISSING_CLAIM:
    case TK_REASON_INVALID_CLAIM:
    case TK_REASON_INSUFFICIENT_SCOPE:
    case TK_REASON_TOO_OLD:
        return 1;
    case TK_REASON_MALFORMED_TOKEN: {
        const tk_verdict *pv = tk_token_payload_verdict(t);
        return tk_token_header_verdict(t)->reason == TK_REASON_VALID && pv->reason == TK_REASON_MALFORMED_TOKEN &&
               strcmp(pv->detail, v->detail) == 0;
    }
    default:
        return 0;
    }
}

/* ---- input normalisation ---------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * People paste what they have: a bare token, a Bearer value, or a whole
 * header line. Sets *tok and *tok_len to the token to inspect (inside `in`),
 * or NULL when there is none, and records header problems in the report.
 */
static void find_token(const char *in, size_t n, struct report *r, const char **tok, size_t *tok_len)
{
    *tok = NULL;
    *tok_len = 0;
    size_t b = 0, e = n;
    while (b < e && is_space(in[b])) {
        b++;
    }
    while (e > b && is_space(in[e - 1])) {
        e--;
    }
    const char *p = in + b;
    size_t len = e - b;
    if (len == 0) {
        r->source = "empty input";
        return; /* reported as missing_token */
    }
    int header_line = len >= 14 && strncasecmp(p, "authorization:", 14) == 0;
    if (header_line) {
        p += 14;
        len -= 14;
        r->source = "an Authorization header line";
    }
    /* What was pasted, in the words /auth uses for the same bytes (one
     * diagnoser: tk_input_diagnose). The first problem is reported; the
     * token it recovers is inspected, and the source line says so. */
    tk_input_diag d;
    if (tk_input_diagnose(p, len, &d, r->clean, sizeof r->clean) != TK_OK) {
        return;
    }
    if (d.kind == TK_INPUT_PADDING && d.clean_len) {
        /* a token (base64url) problem: the token parser names it, in the
         * same words, with whatever else it finds */
        if (d.repaired[0]) {
            snprintf(r->source_buf, sizeof r->source_buf, "%s, inspected after repair (%s)",
                     r->source ? r->source : "a bare token", d.repaired);
            r->source = r->source_buf;
        } else if (!r->source) {
            r->source = "a bare token";
        }
        *tok = r->clean;
        *tok_len = d.clean_len;
        return;
    }
    if (d.kind != TK_INPUT_TOKEN && d.kind != TK_INPUT_PADDING) {
        add(r, &d.verdict, 0);
        if (!header_line) {
            switch (d.kind) {
            case TK_INPUT_TOKEN_RESPONSE:
            case TK_INPUT_JSON:
                r->source = "a JSON document";
                break;
            case TK_INPUT_COOKIE:
                r->source = "a Cookie header line";
                break;
            default:
                r->source =
                    len >= 6 && strncasecmp(p, "bearer", 6) == 0 ? "an Authorization header value" : "a bare token";
                break;
            }
        }
        if (d.clean_len) {
            snprintf(r->source_buf, sizeof r->source_buf, "%s, inspected after repair (%s)", r->source, d.repaired);
            r->source = r->source_buf;
            *tok = r->clean;
            *tok_len = d.clean_len;
        }
        return;
    }
    if (!header_line) {
        if (!memchr(p, ' ', len) && !memchr(p, '\t', len) && !(len == 6 && strncasecmp(p, "Bearer", 6) == 0)) {
            r->source = "a bare token";
            *tok = p;
            *tok_len = len;
            return;
        }
        r->source = "an Authorization header value";
    }
    tk_verdict v;
    if (tk_authz_parse(p, len, tok, tok_len, &v) != TK_OK) {
        return;
    }
    if (v.reason == TK_REASON_VALID) {
        return;
    }
    add(r, &v, 0);
    if (v.reason != TK_REASON_MALFORMED_HEADER) {
        *tok = NULL; /* another scheme: its credentials are not ours to decode */
        return;
    }
    /* Salvage the token from a malformed header so that it can still be
     * diagnosed: skip the scheme, spaces and quotes; stop at a separator. */
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    size_t s = i;
    while (s < len && p[s] != ' ' && p[s] != '\t') {
        s++;
    }
    if (s - i == 6 && strncasecmp(p + i, "Bearer", 6) == 0) {
        i = s;
    }
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '"')) {
        i++;
    }
    size_t j = i;
    while (j < len && !is_space(p[j]) && p[j] != '"' && p[j] != ',') {
        j++;
    }
    /* Only what can still be known: a salvaged piece that is not even
     * token-shaped would only add false follow-on problems. */
    if (j > i && memchr(p + i, '.', j - i)) {
        *tok = p + i;
        *tok_len = j - i;
    }
}

/* ---- output ------------------------------------------------------------------ */

static void print_time_line(const char *name, double val, int64_t now, int64_t leeway)
{
    int64_t t = (int64_t)val;
    char when[32], dur[32];
    if (!(val >= 0.0 && val <= (double)TK_LIMIT_NUMERICDATE_MAX)) {
        printf("  %-4s %g  (out of range)\n", name, val);
        return;
    }
    tk_format_time(t, when, sizeof when);
    tk_format_duration(t - now, dur, sizeof dur);
    char buf[96];
    int future = t > now;
    if (strcmp(name, "exp") == 0) {
        snprintf(buf, sizeof buf, future ? "expires in %s" : "expired %s ago%s", dur,
                 !future && now < t + leeway ? ", still accepted within the leeway" : "");
    } else if (strcmp(name, "nbf") == 0) {
        snprintf(buf, sizeof buf, future ? "not valid for another %s" : "valid since %s ago", dur);
    } else if (strcmp(name, "iat") == 0) {
        snprintf(buf, sizeof buf, future ? "issued %s in the future" : "issued %s ago", dur);
    } else {
        snprintf(buf, sizeof buf, future ? "in %s" : "%s ago", dur);
    }
    printf("  %-9s %s  (%s)\n", name, when, t == now ? "now" : buf);
}

/* Which discovery document a metadata URL is. */
static const char *metadata_kind(const char *url)
{
    return strstr(url, "/.well-known/oauth-authorization-server") ? " (RFC 8414 metadata)"
                                                                  : " (OpenID Connect Discovery)";
}

static void print_keysrc(const struct keysrc *s)
{
    if (!s->kind) {
        return;
    }
    if (strcmp(s->kind, "jwks_url") == 0) {
        printf("Keys: the JWKS at %s\n", s->jwks_uri);
    } else if (strcmp(s->kind, "issuer") == 0) {
        printf("Keys: the key set the issuer %s publishes (--issuer)\n", s->issuer);
    } else {
        printf("Keys: %s\n", s->notice);
    }
    for (size_t i = 0; i < s->n_metadata; i++) {
        const struct fetch_rec *f = &s->metadata[i];
        printf("  %-9s %s: ", i == 0 ? "metadata" : "", f->url);
        if (f->failed) {
            printf("no answer\n");
        } else {
            printf("HTTP %ld%s\n", f->status, f->status != 200 ? "" : metadata_kind(f->url));
        }
    }
    if (strcmp(s->kind, "jwks_url") != 0) {
        printf("  jwks_uri  %s\n", s->jwks_uri);
    }
    printf("  keys      %zu", s->keys);
    for (size_t i = 0; i < s->n_kids; i++) {
        printf("%s'%s'", i == 0 ? ": " : ", ", s->kids[i]);
    }
    printf("%s\n", s->keys > s->n_kids ? ", ..." : "");
    if (s->skipped) {
        printf("  skipped   %zu unusable key%s:\n", s->skipped, s->skipped == 1 ? "" : "s");
        for (size_t i = 0; i < s->n_skips; i++) {
            printf("            %s\n", s->skips[i]);
        }
    }
    printf("  lifetime  %s\n\n", s->lifetime);
}

static void print_human(const tk_token *t, const struct report *r, int64_t now, int64_t leeway, int valid)
{
    char *h = NULL, *pl = NULL;
    printf("Token: %s", r->source);
    if (t) {
        size_t plen = 0;
        (void)tk_token_payload(t, &plen);
    }
    printf("\n\n");
    if (t && tk_token_header_json(t, 1, &h) == TK_OK && h) {
        printf("Header\n");
        print_json_text(h);
        printf("\n\n");
    } else if (t) {
        printf("Header\n  (could not be decoded)\n\n");
    }
    if (t && tk_token_payload_json(t, 1, &pl) == TK_OK && pl) {
        printf("Payload\n");
        print_json_text(pl);
        printf("\n\n");
        static const char *const times[] = {"iat", "nbf", "exp", "auth_time"};
        char now_s[32];
        tk_format_time(now, now_s, sizeof now_s);
        printf("Times (now %s)\n", now_s);
        int any = 0;
        for (size_t i = 0; i < 4; i++) {
            double v;
            if (tk_token_claim_number(t, times[i], &v)) {
                print_time_line(times[i], v, now, leeway);
                any = 1;
            }
        }
        if (!any) {
            printf("  (no time claims)\n");
        }
        printf("\n");
    } else if (t) {
        size_t plen = 0;
        const unsigned char *pb = tk_token_payload(t, &plen);
        if (pb) {
            printf("Payload (not a JSON object, %zu bytes): ", plen);
            for (size_t i = 0; i < plen && i < 120; i++) {
                unsigned char c = pb[i];
                uint32_t cp;
                size_t len = utf8_out ? utf8_seq(pb + i, plen - i, &cp) : 0;
                if (c >= 0x20 && c < 0x7f) {
                    putchar(c);
                } else if (len && showable(cp)) {
                    fwrite(pb + i, 1, len, stdout);
                    i += len - 1;
                } else {
                    printf("\\x%02x", c);
                }
            }
            printf("%s\n\n", plen > 120 ? "..." : "");
        } else {
            printf("Payload\n  (could not be decoded)\n\n");
        }
    }
    tk_free(h);
    tk_free(pl);
    if (r->key_note[0]) {
        printf("Note: %s\n\n", r->key_note);
    }
    print_keysrc(&r->ks);
    if (r->profile) {
        printf("Profile: %s: the checks of tokend serve's /auth (typ at+jwt; jti, sub and client_id required; iss "
               "and aud)\n\n",
               r->profile);
    }
    if (strcmp(r->signature, "verified") == 0) {
        printf("Signature: verified%s\n\n", r->sig_detail);
    } else if (strcmp(r->signature, "failed") == 0) {
        printf("Signature: FAILED: it was checked with the key and does not match (see the problems below); claims "
               "are shown but not trusted\n\n");
    } else {
        printf("Signature: NOT CHECKED: %s\n\n", r->sig_reason);
    }
    if (valid) {
        printf("Result: VALID (revocation not checked: inspect works offline; the issuer may have revoked this "
               "token)\n");
        return;
    }
    if (r->n == 0) {
        printf("Result: UNVERIFIED: no problem found, but the signature was not checked, so the token cannot be "
               "trusted; give a key\n");
        return;
    }
    printf("Result: NOT VALID, %zu problem%s\n", r->n, r->n == 1 ? "" : "s");
    for (size_t i = 0; i < r->n; i++) {
        const struct problem *p = &r->p[i];
        printf("  [%s]%s ", tk_reason_code(p->v.reason), p->unverified ? " (unverified claim)" : "");
        print_detail(p->v.detail);
        printf("\n      fix: %s\n", tk_verdict_hint(&p->v));
    }
}

static json_t *parse_json_or_null(char *s)
{
    if (!s) {
        return json_null();
    }
    json_t *j = json_loads(s, 0, NULL);
    tk_free(s);
    return j ? j : json_null();
}

/* The key source as JSON: where the keys came from, as the human output says. */
static json_t *keysrc_json(const struct keysrc *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "source", json_string(s->kind));
    if (s->issuer[0]) {
        json_object_set_new(o, "issuer", json_string(s->issuer));
    }
    json_t *m = json_array();
    for (size_t i = 0; i < s->n_metadata; i++) {
        const struct fetch_rec *f = &s->metadata[i];
        json_t *e = json_object();
        json_object_set_new(e, "url", json_string(f->url));
        json_object_set_new(e, "status", f->failed ? json_null() : json_integer((json_int_t)f->status));
        json_array_append_new(m, e);
    }
    json_object_set_new(o, "metadata", m);
    json_object_set_new(o, "jwks_uri", json_string(s->jwks_uri));
    json_object_set_new(o, "keys", json_integer((json_int_t)s->keys));
    json_t *k = json_array();
    for (size_t i = 0; i < s->n_kids; i++) {
        json_array_append_new(k, json_string(s->kids[i]));
    }
    json_object_set_new(o, "kids", k);
    json_object_set_new(o, "skipped", json_integer((json_int_t)s->skipped));
    json_t *w = json_array();
    for (size_t i = 0; i < s->n_skips; i++) {
        json_array_append_new(w, json_string(s->skips[i]));
    }
    json_object_set_new(o, "skipped_why", w);
    json_object_set_new(o, "max_age", s->max_age >= 0 ? json_integer((json_int_t)s->max_age) : json_null());
    json_object_set_new(o, "lifetime", json_string(s->lifetime));
    if (s->notice[0]) {
        json_object_set_new(o, "notice", json_string(s->notice));
    }
    return o;
}

static void print_json(const tk_token *t, const struct report *r, int valid)
{
    json_t *o = json_object();
    char *h = NULL, *pl = NULL;
    if (t) {
        if (tk_token_header_json(t, 0, &h) != TK_OK) {
            h = NULL;
        }
        if (tk_token_payload_json(t, 0, &pl) != TK_OK) {
            pl = NULL;
        }
    }
    json_object_set_new(o, "valid", json_boolean(valid));
    json_object_set_new(o, "result", json_string(valid ? "valid" : r->n == 0 ? "unverified" : "not_valid"));
    json_object_set_new(o, "signature", json_string(r->signature));
    /* inspect is offline: a revocation at the issuer is never seen here. */
    json_object_set_new(o, "revocation", json_string("not_checked"));
    if (r->profile) {
        json_object_set_new(o, "profile", json_string(r->profile));
    }
    json_object_set_new(o, "header", parse_json_or_null(h));
    json_object_set_new(o, "payload", parse_json_or_null(pl));
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct problem *p = &r->p[i];
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(tk_reason_code(p->v.reason)));
        json_object_set_new(e, "message", json_string(p->v.detail));
        json_object_set_new(e, "hint", json_string(tk_verdict_hint(&p->v)));
        if (p->unverified) {
            json_object_set_new(e, "unverified", json_true());
        }
        json_array_append_new(arr, e);
    }
    json_object_set_new(o, "problems", arr);
    json_object_set_new(o, "source", json_string(r->source));
    if (strcmp(r->signature, "not_checked") == 0) {
        json_object_set_new(o, "signature_note", json_string(r->sig_reason));
    }
    if (r->key_note[0]) {
        json_object_set_new(o, "key_note", json_string(r->key_note));
    }
    if (r->ks.kind) {
        json_object_set_new(o, "key_source", keysrc_json(&r->ks));
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s) {
        printf("%s\n", s);
    }
    free(s);
    json_decref(o);
}

/* ---- the command ------------------------------------------------------------------ */

/* Why the signature could not be checked when no key was given: name the
 * ways to get one, the issuer's own when the token names an https one. */

/* A signature that did not pass: FAILED only when it was checked with a key
 * and does not match (bad_signature); with no key for the token's kid, or a
 * key that does not take the token's alg, it was never checked. */
static void signature_not_passed(struct report *r, const tk_verdict *v)
{
    add(r, v, 0);
    if (v->reason == TK_REASON_BAD_SIGNATURE) {
        r->signature = "failed";
        return;
    }
    r->signature = "not_checked";
    snprintf(r->sig_reason, sizeof r->sig_reason, "%s (%s, see the problems below); claims are shown but not trusted",
             v->reason == TK_REASON_UNKNOWN_KEY
                 ? "none of the keys given is the token's key, so there was nothing to check it with"
             : v->reason == TK_REASON_ALG_NOT_ALLOWED ? "the token's alg is not one its key may verify"
                                                      : "the token could not be checked",
             tk_reason_code(v->reason));
}

/* The signature line of a token whose signature passed: "verified (ES256,
 * kid "k1")", printable only. */
static void signature_verified(struct report *r, const tk_token *t)
{
    const char *kid = tk_token_kid(t);
    r->signature = "verified";
    snprintf(r->sig_detail, sizeof r->sig_detail, " (%s%s%s%s)", tk_token_alg(t), kid ? ", kid \"" : "", kid ? kid : "",
             kid ? "\"" : "");
    for (char *q = r->sig_detail; *q; q++) {
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) {
            *q = '?';
        }
    }
}

/* A claim name for --require: 1 to 64 bytes of printable ASCII. */
static int claim_name_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            return 0;
        }
    }
    return n > 0 && n <= 64;
}

static void no_key_reason(const tk_token *t, char *buf, size_t cap)
{
    const char *iss = t ? tk_token_claim_string(t, "iss") : NULL;
    if (iss && clean_https_url(iss, 200)) {
        snprintf(buf, cap,
                 "no key given, so nobody can tell whether this token is genuine (pass --jwks, --key or "
                 "--secret-file; or --issuer %s to fetch the key set of that issuer, if it is the one you trust; "
                 "--discover does the same from the token's own iss)",
                 iss);
    } else {
        snprintf(buf, cap,
                 "no key given, so nobody can tell whether this token is genuine "
                 "(pass --jwks, --key or --secret-file)");
    }
}

int cli_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"jwks", required_argument, NULL, 'j'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"secret-file", required_argument, NULL, 's'},
                                         {"issuer", required_argument, NULL, 'I'},
                                         {"discover", no_argument, NULL, 'D'},
                                         {"cacert", required_argument, NULL, 'C'},
                                         {"iss", required_argument, NULL, 'i'},
                                         {"aud", required_argument, NULL, 'a'},
                                         {"scope", required_argument, NULL, 'S'},
                                         {"typ", required_argument, NULL, 't'},
                                         {"leeway", required_argument, NULL, 'l'},
                                         {"now", required_argument, NULL, 'n'},
                                         {"max-age", required_argument, NULL, 'm'},
                                         {"require", required_argument, NULL, 'R'},
                                         {"profile", required_argument, NULL, 'P'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *jwks = NULL, *key = NULL, *secret = NULL, *typ = NULL, *issuer = NULL, *cacert = NULL;
    const char *iss[MAX_LIST], *aud[MAX_LIST], *scope[MAX_LIST], *require[MAX_LIST + PROFILE_REQUIRED];
    size_t n_iss = 0, n_aud = 0, n_scope = 0, n_require = 0;
    const char *profile = NULL;
    int64_t leeway = TK_LIMIT_LEEWAY_DEFAULT, now = cli_now(), max_age = 0;
    int as_json = 0, discover = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            jwks = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 's':
            secret = optarg;
            break;
        case 'I':
            issuer = optarg;
            break;
        case 'D':
            discover = 1;
            break;
        case 'C':
            cacert = optarg;
            break;
        case 'i':
        case 'a':
        case 'S':
        case 'R': {
            const char **list = c == 'i' ? iss : c == 'a' ? aud : c == 'S' ? scope : require;
            size_t *n = c == 'i' ? &n_iss : c == 'a' ? &n_aud : c == 'S' ? &n_scope : &n_require;
            if (c == 'R' && !claim_name_ok(optarg)) {
                fprintf(stderr, "tokend inspect: --require takes a claim name (1 to 64 printable ASCII "
                                "characters), e.g. --require jti\n");
                return CLI_EXIT_USAGE;
            }
            if (*n == MAX_LIST) {
                fprintf(stderr, "tokend inspect: at most %d of each list option\n", MAX_LIST);
                return CLI_EXIT_USAGE;
            }
            list[(*n)++] = optarg;
            break;
        }
        case 't':
            typ = optarg;
            break;
        case 'P':
            if (strcmp(optarg, "tokend") != 0) {
                fprintf(stderr, "tokend inspect: --profile takes tokend (the policy of tokend serve's /auth: typ "
                                "at+jwt; jti, sub and client_id required; iss and aud checked)\n");
                return CLI_EXIT_USAGE;
            }
            profile = optarg;
            break;
        case 'l':
            if (cli_parse_int64(optarg, &leeway) != 0 || leeway < 0 || leeway > TK_LIMIT_LEEWAY_MAX) {
                fprintf(stderr, "tokend inspect: --leeway takes 0 to %d seconds\n", TK_LIMIT_LEEWAY_MAX);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'n':
            if (cli_parse_int64(optarg, &now) != 0 || now < 0 || now > TK_LIMIT_NUMERICDATE_MAX) {
                fprintf(stderr, "tokend inspect: --now takes Unix seconds (0 to %lld)\n",
                        (long long)TK_LIMIT_NUMERICDATE_MAX);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'm':
            if (cli_parse_duration(optarg, &max_age) != 0 || max_age <= 0) {
                fprintf(stderr, "tokend inspect: --max-age takes a duration such as 1h or 3600\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case 'J':
            as_json = 1;
            break;
        case 'h':
            help(stdout);
            return CLI_EXIT_OK;
        default:
            cli_option_hint("inspect", opts, argc, argv);
            fprintf(stderr, "Run 'tokend inspect --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "tokend inspect: give one token (or '-' for stdin)\n");
        return CLI_EXIT_USAGE;
    }
    if (issuer && discover) {
        fprintf(stderr, "tokend inspect: give --issuer URL or --discover, not both\n");
        return CLI_EXIT_USAGE;
    }
    if ((issuer || discover) && (jwks || key || secret)) {
        fprintf(stderr,
                "tokend inspect: --%s fetches the issuer's own key set; give --jwks, --key or "
                "--secret-file without it\n",
                issuer ? "issuer" : "discover");
        return CLI_EXIT_USAGE;
    }
    if (issuer && n_iss) {
        fprintf(stderr, "tokend inspect: --issuer URL already requires the token's iss to be URL; drop --iss\n");
        return CLI_EXIT_USAGE;
    }
    if (issuer && strncmp(issuer, "https://", 8) != 0) {
        fprintf(stderr, "tokend inspect: --issuer takes the issuer's https:// URL, exactly as its tokens' iss "
                        "(metadata and keys are fetched over https only)\n");
        return CLI_EXIT_USAGE;
    }
    if (profile) {
        /* The policy of tokend serve's /auth (authority/tokens.c): it knows
         * its issuer and always has an audience, so the profile needs both
         * rather than guess them from the token it is checking. */
        if (typ && strcasecmp(typ, "at+jwt") != 0 && strcasecmp(typ, "application/at+jwt") != 0) {
            fprintf(stderr, "tokend inspect: --profile tokend requires typ at+jwt, as the server does; drop --typ\n");
            return CLI_EXIT_USAGE;
        }
        if (!issuer && n_iss == 0) {
            fprintf(stderr, "tokend inspect: --profile tokend checks iss as the server does: give the server's issuer "
                            "with --iss URL (its --issuer setting, else its public URL), or --issuer URL to fetch "
                            "its keys too\n");
            return CLI_EXIT_USAGE;
        }
        if (n_aud == 0) {
            fprintf(stderr, "tokend inspect: --profile tokend checks aud as /auth does, which always has one (its "
                            "?aud= or --auth-audience): give it with --aud AUD\n");
            return CLI_EXIT_USAGE;
        }
        typ = "at+jwt";
        for (size_t i = 0; i < PROFILE_REQUIRED; i++) {
            int have = 0;
            for (size_t j = 0; j < n_require; j++) {
                have = have || strcmp(require[j], profile_required[i]) == 0;
            }
            if (!have) {
                require[n_require++] = profile_required[i];
            }
        }
    }
    const char *arg = optind < argc ? argv[optind] : NULL;
    if (!arg && isatty(STDIN_FILENO)) {
        fprintf(stderr, "tokend inspect: no token given (pass it as an argument, or '-' to read stdin)\n\n");
        help(stderr);
        return CLI_EXIT_USAGE;
    }

    int status = CLI_EXIT_USAGE;
    char *input = NULL;
    size_t input_len = 0;
    int truncated = 0;
    tk_token *t = NULL;
    tk_keyset *ks = NULL;
    char *secret_buf = NULL;
    size_t secret_len = 0;
    char err[TK_LIMIT_URL_LEN + 800];
    int fetch_ready = 0;
    tk_fetch_options fo;
    struct fetch_log fl;
    tk_keycache *kc = NULL;
    const char *kc_issuer = NULL; /* the issuer whose key set the cache holds */
    memset(&fl, 0, sizeof fl);
    tk_fetch_options_defaults(&fo);
    fo.timeout_ms = FETCH_TIMEOUT_MS;
    fo.connect_timeout_ms = FETCH_CONNECT_TIMEOUT_MS;
    fl.fo = &fo;
    struct report *rp = calloc(1, sizeof *rp); /* large (key source lines): not on the stack */
    if (!rp) {
        fprintf(stderr, "tokend inspect: out of memory\n");
        return CLI_EXIT_USAGE;
    }
    struct report *const r = rp;
    r->signature = "not_checked";
    r->ks.max_age = -1;
    r->profile = profile;
    utf8_out = !as_json && utf8_terminal();

    if (!arg || strcmp(arg, "-") == 0) {
        if (cli_read_stdin(CLI_MAX_INPUT, &input, &input_len, &truncated) != 0) {
            fprintf(stderr, "tokend inspect: cannot read stdin\n");
            goto out;
        }
    } else {
        input_len = strlen(arg);
        input = malloc(input_len + 1);
        if (!input) {
            goto out;
        }
        memcpy(input, arg, input_len + 1);
    }

    const char *tok = NULL;
    size_t tok_len = 0;
    if (truncated) {
        tk_verdict v;
        v.reason = TK_REASON_MALFORMED_TOKEN;
        snprintf(v.detail, sizeof v.detail, "the input is larger than %u bytes; a token is at most %u", CLI_MAX_INPUT,
                 TK_LIMIT_TOKEN_LEN);
        add(r, &v, 0);
        r->source = "stdin";
    } else {
        find_token(input, input_len, r, &tok, &tok_len);
    }
    if (tok) {
        tk_verdict v;
        if (tk_token_parse(tok, tok_len, NULL, &t, &v) != TK_OK) {
            fprintf(stderr, "tokend inspect: out of memory\n");
            goto out;
        }
        if (!t) {
            add(r, &v, 0);
        }
    }
    if (!t && r->n == 0) {
        tk_verdict v;
        v.reason = TK_REASON_MISSING_TOKEN;
        snprintf(v.detail, sizeof v.detail, "%s",
                 input_len == 0 ? "the input is empty: there is no token to inspect"
                 : r->source && strcmp(r->source, "empty input") == 0
                     ? "the input holds only white space: there is no token to inspect"
                     : "no token found in the input");
        add(r, &v, 0);
    }
    if (!t) {
        snprintf(r->sig_reason, sizeof r->sig_reason, "%s",
                 input_len == 0 ? "the input is empty" : "there is no token to check (see the problems below)");
    }
    const int header_ok = t && tk_token_header_verdict(t)->reason == TK_REASON_VALID;

    /* --discover: the token's own iss names the issuer, only when asked, and
     * only an iss that --iss (when given) expects. */
    const char *token_iss = t ? tk_token_claim_string(t, "iss") : NULL;
    if (discover && header_ok) {
        int listed = n_iss == 0;
        for (size_t i = 0; token_iss && i < n_iss; i++) {
            listed = listed || strcmp(iss[i], token_iss) == 0;
        }
        if (!token_iss) {
            snprintf(r->sig_reason, sizeof r->sig_reason,
                     "--discover found no iss claim in the token to discover a key set from");
        } else if (!clean_https_url(token_iss, TK_LIMIT_URL_LEN)) {
            snprintf(r->sig_reason, sizeof r->sig_reason,
                     "--discover: the token's iss is not an https:// URL, so it names no key set to discover");
        } else if (!listed) {
            snprintf(r->sig_reason, sizeof r->sig_reason,
                     "--discover: the token's iss is not one of --iss, so its key set was not fetched");
        } else {
            kc_issuer = token_iss;
        }
    }
    if (issuer) {
        kc_issuer = issuer;
    }

    /* One fetcher for every fetch, with the CA file from --cacert or the
     * environment. */
    int https_jwks = jwks && strncmp(jwks, "https://", 8) == 0;
    if (https_jwks || kc_issuer) {
        const char *from = NULL;
        if (resolve_cafile(cacert, &fo.ca_file, &from, err, sizeof err) != 0) {
            fprintf(stderr, "tokend inspect: %s\n", err);
            goto out;
        }
        if (tk_fetch_global_init() != 0) {
            fprintf(stderr, "tokend inspect: cannot initialise libcurl\n");
            goto out;
        }
        fetch_ready = 1;
    }

    /* Keys. The token's alg may bind a key that names none, within the key
     * type's family (never across: an RSA key never verifies HS256). */
    tk_alg hint = TK_ALG_UNSET;
    if (t && tk_token_alg(t)) {
        hint = tk_alg_from_name(tk_token_alg(t), strlen(tk_token_alg(t)));
    }
    if (tk_keyset_new(&ks) != TK_OK) {
        goto out;
    }
    if (kc_issuer) {
        int rc = issuer_fetch(kc_issuer, &fl, now, &kc, err, sizeof err);
        char shown[TK_LIMIT_URL_LEN + 8];
        printable(shown, sizeof shown, kc_issuer, TK_LIMIT_URL_LEN);
        if (rc == -2 && issuer) {
            fprintf(stderr, "tokend inspect: --issuer %s is not an https:// URL of at most %u bytes\n", shown,
                    TK_LIMIT_URL_LEN);
            goto out;
        }
        if (rc == -2) {
            snprintf(r->sig_reason, sizeof r->sig_reason,
                     "--discover: the token's iss is not a usable https:// URL, so no key set was fetched");
            kc_issuer = NULL;
        } else if (rc != 0) {
            fprintf(stderr, "tokend inspect: cannot fetch the key set of %s%s: %s\n", shown,
                    issuer ? "" : " (the token's own iss, as --discover asked)", err);
            goto out;
        } else {
            r->ks.kind = issuer ? "issuer" : "discover";
            if (discover) {
                snprintf(r->ks.notice, sizeof r->ks.notice,
                         "discovered the key set from the token's own iss %s, as --discover asked; the iss is not "
                         "trusted by that: check it is the issuer you expect",
                         shown);
            }
        }
    }
    if (jwks) {
        tk_keyset *loaded = NULL;
        if (https_jwks) {
            if (load_jwks_url(&fo, jwks, hint, &loaded, &r->ks) != 0) {
                goto out;
            }
        } else if (strncmp(jwks, "http://", 7) == 0) {
            fprintf(stderr, "tokend inspect: refusing to fetch keys over plain http: use https\n");
            goto out;
        } else {
            /* A file is yours: it may hold HMAC secrets, which a published
             * set never does. A key of it that cannot be used is skipped and
             * named (in the note), the rest is used. */
            int lr = cli_load_key_file(jwks, hint, NULL, ks, r->key_note, sizeof r->key_note, err, sizeof err);
            if (lr < 0) {
                fprintf(stderr, "tokend inspect: %s\n", err);
                goto out;
            }
            if (lr > 0) {
                snprintf(r->sig_reason, sizeof r->sig_reason, "%.800s", err);
            }
        }
        if (loaded) {
            tk_result rc = tk_keyset_merge(ks, loaded);
            tk_keyset_free(loaded);
            if (rc != TK_OK) {
                fprintf(stderr, "tokend inspect: the JWKS %s was refused: %s\n", jwks, cli_key_error(rc));
                goto out;
            }
        }
    }
    const char *kid_hint = t ? tk_token_kid(t) : NULL;
    if (kid_hint) {
        for (const char *q = kid_hint; *q; q++) {
            if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f || *q == '"' || *q == '\\') {
                kid_hint = NULL; /* never echo odd bytes into a note; the key simply stays nameless */
                break;
            }
        }
    }
    if (key) {
        char kn[sizeof r->key_note];
        int lr = cli_load_key_file(key, hint, kid_hint, ks, kn, sizeof kn, err, sizeof err);
        if (lr < 0) {
            fprintf(stderr, "tokend inspect: %s\n", err);
            goto out;
        }
        if (lr > 0 && !r->sig_reason[0]) {
            snprintf(r->sig_reason, sizeof r->sig_reason, "%.800s", err);
        }
        size_t pos = strlen(r->key_note);
        if (kn[0] && pos + 3 < sizeof r->key_note) {
            if (pos) {
                memcpy(r->key_note + pos, "; ", 2);
                pos += 2;
            }
            size_t kl = strnlen(kn, sizeof kn);
            kl = kl < sizeof r->key_note - 1 - pos ? kl : sizeof r->key_note - 1 - pos; /* cut, never overrun */
            memcpy(r->key_note + pos, kn, kl);
            r->key_note[pos + kl] = '\0';
        }
    }
    if (secret) {
        unsigned mode = 0;
        if (cli_read_file(secret, TK_LIMIT_HMAC_KEY_MAX, &secret_buf, &secret_len, err, sizeof err) != 0) {
            fprintf(stderr, "tokend inspect: %s\n", err);
            goto out;
        }
        if (cli_secret_file_kind(secret_buf, secret_len, secret, err, sizeof err) != 0) {
            fprintf(stderr, "tokend inspect: %s\n", err);
            goto out;
        }
        if (cli_file_too_open(secret, &mode)) {
            fprintf(stderr, "tokend inspect: warning: %s is readable by group or others (mode %04o)\n", secret, mode);
        }
        tk_key *k = NULL;
        tk_result rc = tk_key_from_secret((const unsigned char *)secret_buf, secret_len, TK_ALG_UNSET, NULL, &k);
        if (rc != TK_OK) {
            fprintf(stderr,
                    "tokend inspect: %s: the secret is %zu bytes; HMAC secrets must be at least 32 (HS256), "
                    "48 (HS384) or 64 (HS512)\n",
                    secret, secret_len);
            goto out;
        }
        int kid_taken = kid_hint && tk_keyset_find(ks, kid_hint, strlen(kid_hint)) != NULL;
        cli_adopt_key(k, hint, kid_taken ? NULL : kid_hint, secret, r->key_note, sizeof r->key_note);
        if (secret_len > 0 && secret_buf[secret_len - 1] == '\n') {
            size_t pos = strlen(r->key_note);
            snprintf(r->key_note + pos, sizeof r->key_note - pos,
                     "%sthe secret file ends with a newline, which is part of the secret", pos ? "; " : "");
        }
        if (tk_keyset_add(ks, k) != TK_OK) {
            tk_key_free(k);
            goto out;
        }
    }

    /* The policy: with an issuer's key set, its iss is required (the
     * token's own under --discover, which only says it is self-consistent). */
    const char *const *pol_iss = iss;
    size_t n_pol_iss = n_iss;
    if (kc && issuer) {
        pol_iss = &issuer;
        n_pol_iss = 1;
    } else if (kc && n_iss == 0) {
        pol_iss = &kc_issuer;
        n_pol_iss = 1;
    }
    tk_policy pol;
    tk_policy_init(&pol, now);
    pol.leeway = leeway;
    pol.max_age = max_age;
    pol.issuers = pol_iss;
    pol.issuers_len = n_pol_iss;
    pol.audiences = aud;
    pol.audiences_len = n_aud;
    pol.scopes = scope;
    pol.scopes_len = n_scope;
    pol.typ = header_ok ? typ : NULL; /* a header that did not decode has no typ to compare */
    pol.required = require;
    pol.required_len = n_require;

    /* Signature. */
    tk_verdict kv; /* the key cache's verdict, when an issuer's set was used */
    memset(&kv, 0, sizeof kv);
    if (t) {
        const tk_verdict *hv = tk_token_header_verdict(t);
        if (hv->reason != TK_REASON_VALID) {
            add(r, hv, 0);
            snprintf(r->sig_reason, sizeof r->sig_reason, "the header is not usable (%s)", tk_reason_code(hv->reason));
        } else if (kc) {
            /* Exactly the verification of a verifier that trusts this
             * issuer, with its unknown-kid refetch and its explanations. */
            if (tk_keycache_verify(kc, kc_issuer, tok, tok_len, &pol, NULL, now, &kv, NULL) != TK_OK) {
                fprintf(stderr, "tokend inspect: the verifier failed: %s\n", kv.detail);
                goto out;
            }
            if (after_signature(&kv, t)) {
                signature_verified(r, t);
            } else {
                signature_not_passed(r, &kv);
            }
        } else if (tk_keyset_count(ks) == 0) {
            if (!r->sig_reason[0]) {
                no_key_reason(t, r->sig_reason, sizeof r->sig_reason);
            }
        } else {
            tk_verdict sv;
            if (tk_token_verify_signature(t, ks, &sv) != TK_OK) {
                fprintf(stderr, "tokend inspect: the verifier failed\n");
                goto out;
            }
            if (sv.reason == TK_REASON_VALID) {
                signature_verified(r, t);
            } else {
                signature_not_passed(r, &sv);
            }
        }
        /* Payload and claims. */
        const tk_verdict *pv = tk_token_payload_verdict(t);
        if (pv->reason != TK_REASON_VALID) {
            add(r, pv, 0);
        } else {
            tk_verdict cv[TK_LIMIT_PROBLEMS];
            size_t n = 0;
            if (tk_token_check_claims(t, &pol, cv, TK_LIMIT_PROBLEMS, &n) != TK_OK) {
                fprintf(stderr, "tokend inspect: the claims check failed\n");
                goto out;
            }
            int unverified = strcmp(r->signature, "verified") != 0;
            for (size_t i = 0; i < n && i < TK_LIMIT_PROBLEMS; i++) {
                add(r, &cv[i], unverified);
            }
        }
        if (kc && kv.reason != TK_REASON_VALID && r->n == 0) {
            add(r, &kv, 0); /* fail closed: the cache's verdict stands even if the checks here disagree */
        }
    }
    if (kc) {
        tk_keycache_config cfg;
        tk_keycache_config_defaults(&cfg);
        issuer_describe(kc, kc_issuer, &fl, &cfg, now, &r->ks);
    }
    int valid = strcmp(r->signature, "verified") == 0 && r->n == 0;
    if (as_json) {
        print_json(t, r, valid);
    } else {
        print_human(t, r, now, leeway, valid);
    }
    status = valid ? CLI_EXIT_OK : CLI_EXIT_INVALID;
out:
    tk_keycache_free(kc);
    free(fl.body);
    if (fetch_ready) {
        tk_fetch_global_cleanup();
    }
    tk_token_free(t);
    tk_keyset_free(ks);
    cli_free_secret(secret_buf, secret_len);
    cli_free_secret(input, input_len);
    free(rp);
    return status;
}
