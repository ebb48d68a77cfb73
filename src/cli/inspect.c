/*
 * inspect.c — `tokend inspect`: decode any token offline, run every check
 * that the given keys and flags allow, and explain every problem with its
 * reason code and a fix. Claims of a token whose signature was not verified
 * are shown, but their problems are marked unverified.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"

#define MAX_LIST TK_LIMIT_POLICY_ITEMS
#define MAX_PROBLEMS (TK_LIMIT_PROBLEMS + 4)

struct problem {
    tk_verdict v;
    int unverified; /* a claim problem of a token whose signature did not pass */
};

struct report {
    struct problem p[MAX_PROBLEMS];
    size_t n;
    const char *source; /* "bare token", "Authorization header value", ... */
    char key_note[320]; /* how a key was bound, for people */
    char sig_detail[TK_LIMIT_DETAIL_LEN];
    const char *signature; /* "verified", "failed", "not_checked" */
    char sig_reason[160];  /* why not checked */
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
          "                      [--iss ISS] [--aud AUD] [--scope SCOPE]... [--typ TYP]\n"
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
          "Checks:\n"
          "  --iss ISS           expected issuer (may repeat: any of them)\n"
          "  --aud AUD           expected audience (may repeat: any of them)\n"
          "  --scope SCOPE       a scope the token must carry (may repeat: all of them)\n"
          "  --typ TYP           expected header typ, e.g. at+jwt\n"
          "  --leeway SECONDS    clock skew allowed on exp/nbf/iat (default 60, max 300)\n"
          "  --max-age DURATION  refuse tokens issued longer ago than this\n"
          "  --now UNIX_SECONDS  check as of this time instead of the clock\n"
          "Output:\n"
          "  --json              one JSON object: valid, signature, header, payload, problems\n"
          "\n"
          "Exit status: 0 valid, 1 not valid, 2 usage error.\n"
          "\n"
          "Examples:\n"
          "  tokend inspect eyJhbGciOi...\n"
          "  pbpaste | tokend inspect --jwks https://auth.example/.well-known/jwks.json \\\n"
          "      --iss https://auth.example --aud orders-api --scope orders:read -\n"
          "  tokend inspect --secret-file hs.key --json 'Authorization: Bearer eyJ...'\n",
          f);
}

/* ---- fetching a JWKS over https ------------------------------------------ */

struct fetch {
    char *buf;
    size_t len;
    int too_big;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    struct fetch *f = ud;
    size_t n = size * nmemb;
    if (f->len + n > CLI_MAX_KEY_FILE) {
        f->too_big = 1;
        return 0;
    }
    char *nb = realloc(f->buf, f->len + n + 1);
    if (!nb) {
        return 0;
    }
    f->buf = nb;
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    f->buf[f->len] = '\0';
    return n;
}

static int fetch_jwks(const char *url, char **out, size_t *len, char *err, size_t err_cap)
{
    struct fetch f = {NULL, 0, 0};
    char eb[CURL_ERROR_SIZE] = "";
    long code = 0;
    int ret = -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_cap, "cannot initialise libcurl");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, err_cap, "cannot initialise libcurl");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tokend/" TK_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (f.too_big) {
        snprintf(err, err_cap, "%s: the JWKS is larger than %u bytes", url, CLI_MAX_KEY_FILE);
    } else if (rc != CURLE_OK) {
        snprintf(err, err_cap, "%s: %s", url, eb[0] ? eb : curl_easy_strerror(rc));
    } else if (code != 200) {
        snprintf(err, err_cap, "%s: HTTP status %ld", url, code);
    } else if (!f.buf) {
        snprintf(err, err_cap, "%s: empty response", url);
    } else {
        *out = f.buf;
        *len = f.len;
        f.buf = NULL;
        ret = 0;
    }
out:
    free(f.buf);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    return ret;
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
    } else if (memchr(p, ' ', len) || memchr(p, '\t', len) || (len == 6 && strncasecmp(p, "Bearer", 6) == 0)) {
        r->source = "an Authorization header value";
    } else {
        r->source = "a bare token";
        *tok = p;
        *tok_len = len;
        return;
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
    if (j > i) {
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
        printf("Header\n%s\n\n", h);
    } else if (t) {
        printf("Header\n  (could not be decoded)\n\n");
    }
    if (t && tk_token_payload_json(t, 1, &pl) == TK_OK && pl) {
        printf("Payload\n%s\n\n", pl);
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
                if (c >= 0x20 && c < 0x7f) {
                    putchar(c);
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
    if (strcmp(r->signature, "verified") == 0) {
        printf("Signature: verified%s\n\n", r->sig_detail);
    } else if (strcmp(r->signature, "failed") == 0) {
        printf("Signature: FAILED (see the problems below); claims are shown but not trusted\n\n");
    } else {
        printf("Signature: NOT CHECKED: %s\n\n", r->sig_reason);
    }
    if (valid) {
        printf("Result: VALID\n");
        return;
    }
    printf("Result: NOT VALID, %zu problem%s\n", r->n, r->n == 1 ? "" : "s");
    for (size_t i = 0; i < r->n; i++) {
        const struct problem *p = &r->p[i];
        printf("  [%s]%s %s\n", tk_reason_code(p->v.reason), p->unverified ? " (unverified claim)" : "", p->v.detail);
        printf("      fix: %s\n", tk_reason_hint(p->v.reason));
    }
    if (r->n == 0) {
        printf("  the signature was not checked, so the token cannot be trusted; give a key\n");
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
    json_object_set_new(o, "signature", json_string(r->signature));
    json_object_set_new(o, "header", parse_json_or_null(h));
    json_object_set_new(o, "payload", parse_json_or_null(pl));
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct problem *p = &r->p[i];
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(tk_reason_code(p->v.reason)));
        json_object_set_new(e, "message", json_string(p->v.detail));
        json_object_set_new(e, "hint", json_string(tk_reason_hint(p->v.reason)));
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
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s) {
        printf("%s\n", s);
    }
    free(s);
    json_decref(o);
}

/* ---- the command ------------------------------------------------------------------ */

int cli_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"jwks", required_argument, NULL, 'j'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"secret-file", required_argument, NULL, 's'},
                                         {"iss", required_argument, NULL, 'i'},
                                         {"aud", required_argument, NULL, 'a'},
                                         {"scope", required_argument, NULL, 'S'},
                                         {"typ", required_argument, NULL, 't'},
                                         {"leeway", required_argument, NULL, 'l'},
                                         {"now", required_argument, NULL, 'n'},
                                         {"max-age", required_argument, NULL, 'm'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *jwks = NULL, *key = NULL, *secret = NULL, *typ = NULL;
    const char *iss[MAX_LIST], *aud[MAX_LIST], *scope[MAX_LIST];
    size_t n_iss = 0, n_aud = 0, n_scope = 0;
    int64_t leeway = TK_LIMIT_LEEWAY_DEFAULT, now = cli_now(), max_age = 0;
    int as_json = 0;
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
        case 'i':
        case 'a':
        case 'S': {
            const char **list = c == 'i' ? iss : c == 'a' ? aud : scope;
            size_t *n = c == 'i' ? &n_iss : c == 'a' ? &n_aud : &n_scope;
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
            fprintf(stderr, "Run 'tokend inspect --help' for the options.\n");
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "tokend inspect: give one token (or '-' for stdin)\n");
        return CLI_EXIT_USAGE;
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
    char *jwks_buf = NULL;
    size_t jwks_len = 0;
    char *secret_buf = NULL;
    size_t secret_len = 0;
    char err[512];
    struct report r;
    memset(&r, 0, sizeof r);
    r.signature = "not_checked";

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
        add(&r, &v, 0);
        r.source = "stdin";
    } else {
        find_token(input, input_len, &r, &tok, &tok_len);
    }
    if (tok) {
        tk_verdict v;
        if (tk_token_parse(tok, tok_len, NULL, &t, &v) != TK_OK) {
            fprintf(stderr, "tokend inspect: out of memory\n");
            goto out;
        }
        if (!t) {
            add(&r, &v, 0);
        }
    } else if (r.n == 0) {
        tk_verdict v;
        v.reason = TK_REASON_MISSING_TOKEN;
        snprintf(v.detail, sizeof v.detail, "no token found in the input");
        add(&r, &v, 0);
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
    if (jwks) {
        if (strncmp(jwks, "https://", 8) == 0) {
            if (fetch_jwks(jwks, &jwks_buf, &jwks_len, err, sizeof err) != 0) {
                fprintf(stderr, "tokend inspect: cannot fetch the JWKS: %s\n", err);
                goto out;
            }
        } else if (strncmp(jwks, "http://", 7) == 0) {
            fprintf(stderr, "tokend inspect: refusing to fetch keys over plain http: use https\n");
            goto out;
        } else if (cli_read_file(jwks, CLI_MAX_KEY_FILE, &jwks_buf, &jwks_len, err, sizeof err) != 0) {
            fprintf(stderr, "tokend inspect: %s\n", err);
            goto out;
        }
        tk_keyset *loaded = NULL;
        size_t skipped = 0;
        tk_result rc = tk_keyset_from_jwks(jwks_buf, jwks_len, hint, &loaded, &skipped);
        if (rc == TK_OK) {
            rc = tk_keyset_merge(ks, loaded);
        }
        tk_keyset_free(loaded);
        if (rc != TK_OK) {
            fprintf(stderr, "tokend inspect: the JWKS %s was refused: %s\n", jwks, cli_key_error(rc));
            goto out;
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
    if (key && cli_load_key_file(key, hint, kid_hint, ks, r.key_note, sizeof r.key_note, err, sizeof err) != 0) {
        fprintf(stderr, "tokend inspect: %s\n", err);
        goto out;
    }
    if (secret) {
        unsigned mode = 0;
        if (cli_read_file(secret, TK_LIMIT_HMAC_KEY_MAX, &secret_buf, &secret_len, err, sizeof err) != 0) {
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
        cli_adopt_key(k, hint, kid_taken ? NULL : kid_hint, secret, r.key_note, sizeof r.key_note);
        if (secret_len > 0 && secret_buf[secret_len - 1] == '\n') {
            size_t pos = strlen(r.key_note);
            snprintf(r.key_note + pos, sizeof r.key_note - pos,
                     "%sthe secret file ends with a newline, which is part of the secret", pos ? "; " : "");
        }
        if (tk_keyset_add(ks, k) != TK_OK) {
            tk_key_free(k);
            goto out;
        }
    }

    /* Signature. */
    if (t) {
        const tk_verdict *hv = tk_token_header_verdict(t);
        if (hv->reason != TK_REASON_VALID) {
            add(&r, hv, 0);
            snprintf(r.sig_reason, sizeof r.sig_reason, "the header is not usable (%s)", tk_reason_code(hv->reason));
        } else if (tk_keyset_count(ks) == 0) {
            snprintf(r.sig_reason, sizeof r.sig_reason,
                     "no key given, so nobody can tell whether this token is genuine "
                     "(pass --jwks, --key or --secret-file)");
        } else {
            tk_verdict sv;
            if (tk_token_verify_signature(t, ks, &sv) != TK_OK) {
                fprintf(stderr, "tokend inspect: the verifier failed\n");
                goto out;
            }
            if (sv.reason == TK_REASON_VALID) {
                const char *kid = tk_token_kid(t);
                r.signature = "verified";
                snprintf(r.sig_detail, sizeof r.sig_detail, " (%s%s%s%s)", tk_token_alg(t), kid ? ", kid \"" : "",
                         kid ? kid : "", kid ? "\"" : "");
                for (char *q = r.sig_detail; *q; q++) {
                    if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f) {
                        *q = '?';
                    }
                }
            } else {
                r.signature = "failed";
                add(&r, &sv, 0);
            }
        }
        /* Payload and claims. */
        const tk_verdict *pv = tk_token_payload_verdict(t);
        if (pv->reason != TK_REASON_VALID) {
            add(&r, pv, 0);
        } else {
            tk_policy pol;
            tk_policy_init(&pol, now);
            pol.leeway = leeway;
            pol.max_age = max_age;
            pol.issuers = iss;
            pol.issuers_len = n_iss;
            pol.audiences = aud;
            pol.audiences_len = n_aud;
            pol.scopes = scope;
            pol.scopes_len = n_scope;
            pol.typ = typ;
            tk_verdict cv[TK_LIMIT_PROBLEMS];
            size_t n = 0;
            if (tk_token_check_claims(t, &pol, cv, TK_LIMIT_PROBLEMS, &n) != TK_OK) {
                fprintf(stderr, "tokend inspect: the claims check failed\n");
                goto out;
            }
            int unverified = strcmp(r.signature, "verified") != 0;
            for (size_t i = 0; i < n && i < TK_LIMIT_PROBLEMS; i++) {
                add(&r, &cv[i], unverified);
            }
        }
    }
    int valid = strcmp(r.signature, "verified") == 0 && r.n == 0;
    if (as_json) {
        print_json(t, &r, valid);
    } else {
        print_human(t, &r, now, leeway, valid);
    }
    status = valid ? CLI_EXIT_OK : CLI_EXIT_INVALID;
out:
    tk_token_free(t);
    tk_keyset_free(ks);
    free(jwks_buf);
    cli_free_secret(secret_buf, secret_len);
    cli_free_secret(input, input_len);
    return status;
}
