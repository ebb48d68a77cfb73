/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_keycache.c — the key-set cache of trusted external issuers
 * (tokend/keycache.h, issue 10): discovery (OpenID Connect Discovery 1.0
 * §4, RFC 8414 §3), lifetimes from Cache-Control (RFC 9111 §5.2.2.1),
 * refresh ahead of expiry, one coalesced unknown-kid refetch per
 * cool-down, bounded waits (SECURITY.md rule 21), bounded staleness, the
 * lenient JWKS reader and the metadata parser.
 *
 * The network is a fake tk_fetch_fn serving in-memory documents per URL
 * (status, body, max-age, error, delay) and counting calls per URL, so
 * every fetch the cache makes is visible and time is the test's `now`.
 * The real fetcher (libtokend_fetch over libcurl) is exercised end to end
 * by tests/e2e/test_example_issuer.py.
 */
#include <pthread.h>
#include <stdatomic.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <jansson.h>

#include "testutil.h"

#include "tokend/keycache.h"

#define T0 1700000000LL
#define ISS "https://idp.test/tenant1"
#define OIDC_URL ISS "/.well-known/openid-configuration"
#define RFC8414_URL "https://idp.test/.well-known/oauth-authorization-server/tenant1"
#define JWKS_URL "https://idp.test/tenant1/keys"

/* ---- the fake fetcher ------------------------------------------------------ */

#define FK_DOCS 16

struct fk_doc {
    char url[512];
    long status;
    char *body; /* owned */
    size_t len;
    int64_t max_age;
    char error[128]; /* non-empty: the fetch fails with this */
    unsigned delay_ms;
    int calls;
};

struct fake {
    pthread_mutex_t mu;
    struct fk_doc docs[FK_DOCS];
    size_t n;
    int calls;     /* every call, served or not */
    int in_flight; /* calls running now */
    int max_in_flight;
    char down[128]; /* non-empty: every fetch fails with this */
};

static void fk_init(struct fake *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(pthread_mutex_init(&f->mu, NULL), 0);
}

static void fk_free(struct fake *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->docs[i].body);
    }
    pthread_mutex_destroy(&f->mu);
}

static struct fk_doc *fk_find(struct fake *f, const char *url)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->docs[i].url, url) == 0) {
            return &f->docs[i];
        }
    }
    return NULL;
}

/* Serves `body` at `url` with `status` and `max_age`, at once (replacing what was there). */
static void fk_set(struct fake *f, const char *url, long status, const char *body, int64_t max_age)
{
    pthread_mutex_lock(&f->mu);
    struct fk_doc *d = fk_find(f, url);
    if (!d) {
        assert_true(f->n < FK_DOCS);
        d = &f->docs[f->n++];
        snprintf(d->url, sizeof d->url, "%s", url);
    }
    free(d->body);
    d->body = strdup(body);
    assert_non_null(d->body);
    d->len = strlen(body);
    d->status = status;
    d->max_age = max_age;
    d->error[0] = '\0';
    d->delay_ms = 0;
    pthread_mutex_unlock(&f->mu);
}

static void fk_delay(struct fake *f, const char *url, unsigned ms)
{
    pthread_mutex_lock(&f->mu);
    struct fk_doc *d = fk_find(f, url);
    if (d) {
        d->delay_ms = ms;
    }
    pthread_mutex_unlock(&f->mu);
    assert_non_null(d);
}

/* Every fetch fails with `err` ("" to bring the provider back). */
static void fk_down(struct fake *f, const char *err)
{
    pthread_mutex_lock(&f->mu);
    snprintf(f->down, sizeof f->down, "%s", err);
    pthread_mutex_unlock(&f->mu);
}

static int fk_calls(struct fake *f, const char *url)
{
    pthread_mutex_lock(&f->mu);
    struct fk_doc *d = fk_find(f, url);
    int n = d ? d->calls : 0;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int fk_total(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->calls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* The tk_fetch_fn: unknown URLs answer 404. */
static int fk_fetch(void *ud, const char *url, size_t cap, tk_fetch_result *out)
{
    struct fake *f = ud;
    if (!f || !out->body || out->body_len != 0 || out->status != 0) {
        abort(); /* not a cmocka assertion: this may run on the maintainer thread */
    }
    long status = 404;
    char *body = NULL;
    size_t len = 0;
    int64_t max_age = -1;
    char err[128] = "";
    unsigned delay = 0;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    f->in_flight++;
    if (f->in_flight > f->max_in_flight) {
        f->max_in_flight = f->in_flight;
    }
    struct fk_doc *d = fk_find(f, url);
    if (d) {
        d->calls++;
        status = d->status;
        body = strdup(d->body ? d->body : "");
        len = d->len;
        max_age = d->max_age;
        snprintf(err, sizeof err, "%s", d->error);
        delay = d->delay_ms;
    } else {
        body = strdup("<html><body>Not Found</body></html>");
        len = strlen(body);
    }
    if (f->down[0]) {
        snprintf(err, sizeof err, "%s", f->down);
    }
    pthread_mutex_unlock(&f->mu);
    if (!body) {
        abort();
    }
    if (delay) {
        sleep_ms(delay);
    }
    int rc = 0;
    if (err[0]) {
        snprintf(out->error, sizeof out->error, "%s", err);
        rc = -1;
    } else if (len > cap) {
        snprintf(out->error, sizeof out->error, "the body is over %zu bytes: not read", cap);
        rc = -1;
    } else {
        memcpy(out->body, body, len);
        out->body_len = len;
        out->status = status;
        out->max_age = max_age;
    }
    free(body);
    pthread_mutex_lock(&f->mu);
    f->in_flight--;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* ---- keys, documents, tokens --------------------------------------------- */

static tk_key *g_es1, *g_es2, *g_es3; /* ES256, kids "es1", "es2", "es3" */
static tk_key *g_other_es1;           /* ES256 with kid "es1" too: another issuer's key */
static tk_key *g_rsa;                 /* RS256, kid "r1" */

static int group_setup(void **state)
{
    (void)state;
    if (tk_key_generate(TK_ALG_ES256, "es1", &g_es1) != TK_OK ||
        tk_key_generate(TK_ALG_ES256, "es2", &g_es2) != TK_OK ||
        tk_key_generate(TK_ALG_ES256, "es3", &g_es3) != TK_OK ||
        tk_key_generate(TK_ALG_ES256, "es1", &g_other_es1) != TK_OK ||
        tk_key_generate(TK_ALG_RS256, "r1", &g_rsa) != TK_OK) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tk_key_free(g_es1);
    tk_key_free(g_es2);
    tk_key_free(g_es3);
    tk_key_free(g_other_es1);
    tk_key_free(g_rsa);
    return 0;
}

/* The public JWK of k as a jansson object (owned). */
static json_t *jwk_obj(const tk_key *k, int with_private)
{
    char *s = NULL;
    assert_int_equal(tk_key_to_jwk(k, with_private, &s), TK_OK);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    tk_free(s);
    assert_non_null(o);
    return o;
}

/* {"keys":[...]} of the public parts of the given keys (NULL-terminated). Owned. */
static char *jwks_of(const tk_key *first, ...)
{
    json_t *keys = json_array();
    va_list ap;
    va_start(ap, first);
    for (const tk_key *k = first; k != NULL; k = va_arg(ap, const tk_key *)) {
        json_array_append_new(keys, jwk_obj(k, 0));
    }
    va_end(ap);
    json_t *doc = json_object();
    json_object_set_new(doc, "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_non_null(s);
    return s;
}

/* An empty key set document. */
#define JWKS_NONE "{\"keys\":[]}"

static char *metadata(const char *issuer, const char *jwks_uri)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:[s]}", "issuer", issuer, "jwks_uri", jwks_uri, "authorization_endpoint",
                          "https://idp.test/authorize", "id_token_signing_alg_values_supported", "ES256");
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(s);
    return s;
}

/* A JWT of `iss` signed by k, valid until T0 + 10 days. Owned (tk_free). */
static char *token(const tk_key *k, const char *iss)
{
    char payload[512];
    snprintf(payload, sizeof payload, "{\"iss\":\"%s\",\"sub\":\"alice\",\"aud\":\"api\",\"exp\":%lld}", iss,
             (long long)(T0 + 864000));
    char *tok = NULL;
    size_t len = 0;
    assert_int_equal(tk_sign(k, "JWT", (const unsigned char *)payload, strlen(payload), &tok, &len), TK_OK);
    return tok;
}

static tk_verdict verify_at(tk_keycache *c, const char *iss, const char *tok, int64_t now)
{
    tk_policy pol;
    tk_policy_init(&pol, now);
    const char *issuers[] = {iss};
    pol.issuers = issuers;
    pol.issuers_len = 1;
    tk_verdict v;
    assert_int_equal(tk_keycache_verify(c, iss, tok, strlen(tok), &pol, NULL, now, &v, NULL), TK_OK);
    tu_check_detail_shape(&v, "tk_keycache_verify");
    tu_expect_detail_printable(&v, "tk_keycache_verify");
    return v;
}

/* A cache over `f` with the defaults and these modes. */
static tk_keycache *cache_new(struct fake *f, int inline_fetch, unsigned wait_ms)
{
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = fk_fetch;
    cfg.fetch_ud = f;
    cfg.inline_fetch = inline_fetch;
    cfg.wait_ms = wait_ms;
    tk_keycache *c = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    assert_non_null(c);
    return c;
}

static void add_issuer(tk_keycache *c, const char *iss, const char *jwks_uri)
{
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = iss;
    ic.jwks_uri = jwks_uri;
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_OK);
}

static tk_keycache_status status_of(tk_keycache *c, const char *iss, int64_t now)
{
    tk_keycache_status st;
    assert_int_equal(tk_keycache_status_get(c, iss, now, &st), 1);
    return st;
}

static void expect_has(const char *hay, const char *needle, const char *what)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("%s: \"%s\" does not contain \"%s\"", what, hay, needle);
    }
}

/* ---- Cache-Control --------------------------------------------------------- */

static void test_cache_control_max_age(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int64_t want;
    } cases[] = {
        {"max-age=60", 60},
        {"public, max-age=300", 300},
        {"public, max-age=300, must-revalidate", 300},
        {"MAX-AGE=42", 42},
        {"max-age=0", 0},
        {"  max-age = 17 ", 17},
        {"max-age=\"120\"", 120}, /* quoted-string form (RFC 9111 section 5.2: recipients accept it) */
        {"no-store", 0},
        {"no-cache", 0},
        {"max-age=600, no-store", 0},
        {"private, no-cache, max-age=600", 0},
        {"s-maxage=600", -1},
        {"max-age", -1},
        {"max-age=", -1},
        {"max-age=abc", -1},
        {"max-age=-5", -1},
        {"max-age=6 0", 6}, /* the value ends at the space; "0" is a directive of no meaning */
        {"max-age=12x", -1},
        {"max-age=60, max-age=60", -1}, /* two max-age: ambiguous */
        {"max-age=60, max-age=120", -1},
        {"public", -1},
        {"", -1},
        {",,, ,", -1},
        {"must-revalidate, proxy-revalidate", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = tk_cache_control_max_age(cases[i].v, strlen(cases[i].v));
        if (got != cases[i].want) {
            fail_msg("tk_cache_control_max_age(\"%s\") = %lld, want %lld", cases[i].v, (long long)got,
                     (long long)cases[i].want);
        }
    }
    /* A value past any int64 is clamped, not wrapped: a large positive lifetime. */
    const char *huge = "max-age=99999999999999999999999999999999999999";
    int64_t h = tk_cache_control_max_age(huge, strlen(huge));
    assert_true(h >= 1000000000000LL);
    /* The length is honoured: no read past it, no NUL needed. */
    assert_int_equal(tk_cache_control_max_age("max-age=600", 9), 6);
    assert_int_equal(tk_cache_control_max_age("max-age=600", 0), -1);
    assert_int_equal(tk_cache_control_max_age(NULL, 5), -1);
}

/* ---- the metadata parser --------------------------------------------------- */

static void test_metadata_parse(void **state)
{
    (void)state;
    char uri[TK_LIMIT_URL_LEN + 1];
    char why[256];
    char *doc = metadata(ISS, JWKS_URL);
    assert_int_equal(tk_metadata_parse(doc, strlen(doc), ISS, uri, sizeof uri, why, sizeof why), TK_OK);
    assert_string_equal(uri, JWKS_URL);
    assert_int_equal(tk_metadata_parse(doc, strlen(doc), NULL, uri, sizeof uri, why, sizeof why), TK_OK);
    /* the issuer must be equal, to the trailing slash */
    assert_int_equal(tk_metadata_parse(doc, strlen(doc), ISS "/", uri, sizeof uri, why, sizeof why), TK_ERR_JSON);
    expect_has(why, "its issuer is \"" ISS "\", not \"" ISS "/\"", "issuer mismatch");
    assert_string_equal(uri, "");
    /* a jwks_uri that fits no buffer of `cap` bytes is refused, not cut */
    assert_int_equal(tk_metadata_parse(doc, strlen(doc), ISS, uri, 10, why, sizeof why), TK_ERR_JSON);
    free(doc);

    static const struct {
        const char *doc;
        const char *why;
    } bad[] = {
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"http://idp.test/keys\"}", "is not an https URL"},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://\"}", "is not an https URL"},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https:///keys\"}", "is not an https URL"},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://idp.test/a b\"}", "is not an https URL"},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"ftp://idp.test/keys\"}", "is not an https URL"},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":7}", "it has no \"jwks_uri\""},
        {"{\"issuer\":\"" ISS "\"}", "it has no \"jwks_uri\""},
        {"{\"jwks_uri\":\"" JWKS_URL "\"}", "it has no \"issuer\""},
        {"{\"keys\":[]}", "this is a key set (JWKS), not metadata"},
        {"<!DOCTYPE html><html><head><title>Sign in</title>", "HTML"},
        {"  \r\n<html>", "HTML"},
        {"not json", "not valid JSON"},
        {"[1,2]", "not valid JSON"},
        {"{\"issuer\":\"" ISS "\",\"issuer\":\"" ISS "\",\"jwks_uri\":\"" JWKS_URL "\"}", "not valid JSON"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tk_result rc = tk_metadata_parse(bad[i].doc, strlen(bad[i].doc), ISS, uri, sizeof uri, why, sizeof why);
        if (rc != TK_ERR_JSON) {
            fail_msg("metadata %s: %s, want TK_ERR_JSON", bad[i].doc, tk_result_str(rc));
        }
        expect_has(why, bad[i].why, bad[i].doc);
        assert_true(tu_printable(why, strlen(why)));
        assert_string_equal(uri, "");
    }
    /* `why` may be left out; a NULL document or buffer is an argument error */
    assert_int_equal(tk_metadata_parse("{}", 2, ISS, uri, sizeof uri, NULL, 0), TK_ERR_JSON);
    assert_int_equal(tk_metadata_parse(NULL, 2, ISS, uri, sizeof uri, why, sizeof why), TK_ERR_ARG);
    assert_int_equal(tk_metadata_parse("{}", 2, ISS, NULL, 0, why, sizeof why), TK_ERR_ARG);
}

/* A document of white space only, in a buffer of exactly its length (the
 * cache's fetch buffers are NUL-terminated, tk_metadata_parse's callers
 * need not be): fuzz_metadata found not_json reading the byte after it. */
static void test_metadata_whitespace_only_reads_inside_its_length(void **state)
{
    (void)state;
    static const char *const docs[] = {" ", "  ", "\r\n\t ", "\n"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        size_t n = strlen(docs[i]);
        char *exact = malloc(n);
        assert_non_null(exact);
        memcpy(exact, docs[i], n);
        char uri[64];
        char why[256];
        assert_int_equal(tk_metadata_parse(exact, n, ISS, uri, sizeof uri, why, sizeof why), TK_ERR_JSON);
        expect_has(why, "not valid JSON", "white space only");
        free(exact);
    }
    /* and the HTML guess still works on the same path */
    char *html = malloc(3);
    assert_non_null(html);
    memcpy(html, " <h", 3);
    char uri[64];
    char why[256];
    assert_int_equal(tk_metadata_parse(html, 3, ISS, uri, sizeof uri, why, sizeof why), TK_ERR_JSON);
    expect_has(why, "HTML", "HTML after white space");
    free(html);
}

/* ---- configuration --------------------------------------------------------- */

static void test_config_checks(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    assert_int_equal(cfg.min_ttl, 300);
    assert_int_equal(cfg.max_ttl, 86400);
    assert_int_equal(cfg.default_ttl, 3600);
    assert_int_equal(cfg.kid_cooldown, 30);
    assert_int_equal(cfg.wait_ms, 1000);
    assert_null(cfg.fetch);
    tk_keycache *c = NULL;
    cfg.max_ttl = 10; /* below min_ttl */
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_ERR_ARG);
    assert_null(c);
    assert_int_equal(tk_keycache_new(NULL, &c), TK_ERR_ARG);

    /* without a fetcher, only fixed key sets can be added */
    tk_keycache_config_defaults(&cfg);
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = ISS;
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_ARG);
    tk_keycache_free(c);

    c = cache_new(&f, 1, 0);
    /* not https: refused (RFC 8414 section 2, SECURITY.md rule 24) */
    ic.issuer = "http://idp.test";
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_ARG);
    ic.issuer = ISS;
    ic.jwks_uri = "http://idp.test/keys";
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_ARG);
    ic.jwks_uri = NULL;
    ic.issuer = "";
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_ARG);
    /* HS* algs and UNSET are never allowed for another issuer's keys */
    static const tk_alg hs[] = {TK_ALG_HS256, TK_ALG_HS384, TK_ALG_HS512, TK_ALG_UNSET, TK_ALG_COUNT_};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        tk_alg algs[2] = {TK_ALG_RS256, hs[i]};
        ic.issuer = ISS;
        ic.algs = algs;
        ic.algs_len = 2;
        if (tk_keycache_add_issuer(c, &ic) != TK_ERR_ARG) {
            fail_msg("algs with %s were accepted", tk_alg_name(hs[i]));
        }
    }
    ic.algs = NULL;
    ic.algs_len = 1;
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_ARG);
    ic.algs_len = 0;
    assert_int_equal(tk_keycache_count(c), 0);
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_OK);
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_ARG); /* duplicate */
    assert_int_equal(tk_keycache_count(c), 1);
    assert_int_equal(tk_keycache_has_issuer(c, ISS, strlen(ISS)), 1);
    assert_int_equal(tk_keycache_has_issuer(c, ISS "/", strlen(ISS) + 1), 0);
    assert_int_equal(tk_keycache_has_issuer(c, ISS, strlen(ISS) - 1), 0);
    assert_string_equal(tk_keycache_issuer_at(c, 0), ISS);
    assert_null(tk_keycache_issuer_at(c, 1));
    /* up to TK_LIMIT_ISSUERS */
    for (unsigned i = 1; i < TK_LIMIT_ISSUERS; i++) {
        char iss[64];
        snprintf(iss, sizeof iss, "https://idp%u.test", i);
        ic.issuer = iss;
        assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_OK);
    }
    ic.issuer = "https://one-too-many.test";
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_LIMIT);
    char list[128];
    tk_keycache_issuer_list(c, list, sizeof list);
    assert_true(strncmp(list, ISS ", https://idp1.test, ", strlen(ISS ", https://idp1.test, ")) == 0);
    assert_true(strlen(list) < sizeof list);
    /* nothing was fetched by adding issuers */
    assert_int_equal(fk_total(&f), 0);
    /* a token of an issuer not configured */
    char *tok = token(g_es1, "https://stranger.test");
    tk_verdict v = verify_at(c, "https://stranger.test", tok, T0);
    tu_expect_reason(&v, TK_REASON_WRONG_ISSUER, "unconfigured issuer");
    assert_int_equal(fk_total(&f), 0);
    tk_free(tok);
    tk_keycache_free(c);
    tk_keycache_free(NULL);
    fk_free(&f);
}

/* ---- discovery ------------------------------------------------------------- */

static void test_discovery_openid_configuration(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *md = metadata(ISS, JWKS_URL);
    char *jwks = jwks_of(g_es1, g_es2, NULL);
    fk_set(&f, OIDC_URL, 200, md, -1);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    tk_keycache *c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    tk_keycache_status st = status_of(c, ISS, T0);
    assert_int_equal(st.have_keys, 0);
    assert_string_equal(st.jwks_uri, "");

    char *t1 = token(g_es1, ISS);
    char *t2 = token(g_es2, ISS);
    tk_verdict v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "first token, discovered key set");
    v = verify_at(c, ISS, t2, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "second key of the set");
    assert_int_equal(fk_calls(&f, OIDC_URL), 1);
    assert_int_equal(fk_calls(&f, RFC8414_URL), 0);
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    st = status_of(c, ISS, T0);
    assert_int_equal(st.have_keys, 1);
    assert_string_equal(st.jwks_uri, JWKS_URL);
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.fetched_at, T0);
    assert_int_equal(st.fetch_ok, 1);
    assert_int_equal(st.fetch_failed, 0);
    assert_string_equal(st.last_error, "");

    /* An issuer with a trailing slash (Auth0's form): one slash in the well-known URL. */
    const char *auth0 = "https://tenant.eu.auth0.test/";
    char *md2 = metadata(auth0, "https://tenant.eu.auth0.test/.well-known/jwks.json");
    fk_set(&f, "https://tenant.eu.auth0.test/.well-known/openid-configuration", 200, md2, -1);
    fk_set(&f, "https://tenant.eu.auth0.test/.well-known/jwks.json", 200, jwks, -1);
    add_issuer(c, auth0, NULL);
    char *t3 = token(g_es1, auth0);
    v = verify_at(c, auth0, t3, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "issuer with a trailing slash");
    assert_int_equal(fk_calls(&f, "https://tenant.eu.auth0.test/.well-known/openid-configuration"), 1);

    tk_free(t1);
    tk_free(t2);
    tk_free(t3);
    free(md);
    free(md2);
    free(jwks);
    tk_keycache_free(c);
    fk_free(&f);
}

static void test_discovery_falls_back_to_rfc8414(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *md = metadata(ISS, JWKS_URL);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, OIDC_URL, 404, "<html>Not Found</html>", -1);
    fk_set(&f, RFC8414_URL, 200, md, -1);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    tk_keycache *c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    char *t1 = token(g_es1, ISS);
    tk_verdict v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "RFC 8414 metadata");
    assert_int_equal(fk_calls(&f, OIDC_URL), 1);
    assert_int_equal(fk_calls(&f, RFC8414_URL), 1);
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    assert_string_equal(status_of(c, ISS, T0).jwks_uri, JWKS_URL);
    tk_keycache_free(c);

    /* Neither is there: the explanation names both answers. */
    fk_set(&f, RFC8414_URL, 404, "nope", -1);
    c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "no metadata at all");
    tu_expect_detail_has(&v, ISS, "no metadata");
    tu_expect_detail_has(&v, "HTTP 404", "no metadata");
    tu_expect_detail_has(&v, RFC8414_URL, "no metadata");
    tk_keycache_free(c);

    /* A 500 of the OpenID configuration is not a "not there": no fallback. */
    fk_set(&f, OIDC_URL, 500, "oops", -1);
    fk_set(&f, RFC8414_URL, 200, md, -1);
    int before = fk_calls(&f, RFC8414_URL);
    c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "OpenID configuration answers 500");
    tu_expect_detail_has(&v, "HTTP 500", "OpenID configuration answers 500");
    assert_int_equal(fk_calls(&f, RFC8414_URL), before);
    tk_keycache_free(c);

    tk_free(t1);
    free(md);
    free(jwks);
    fk_free(&f);
}

static void test_discovery_refuses_wrong_metadata(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    fk_set(&f, "http://idp.test/tenant1/keys", 200, jwks, -1);
    char *t1 = token(g_es1, ISS);

    /* Metadata whose issuer is another one (OpenID Connect Discovery 1.0
     * section 4.3): a mix-up; its keys are not fetched. */
    char *md = metadata("https://evil.test/tenant1", JWKS_URL);
    fk_set(&f, OIDC_URL, 200, md, -1);
    tk_keycache *c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    tk_verdict v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "metadata of another issuer");
    tu_expect_detail_has(&v, "its issuer is \"https://evil.test/tenant1\", not \"" ISS "\"", "issuer mismatch");
    assert_int_equal(fk_calls(&f, JWKS_URL), 0);
    tk_keycache_status st = status_of(c, ISS, T0);
    expect_has(st.last_error, "its issuer is", "status last_error");
    assert_int_equal(st.fetch_failed, 1);
    assert_int_equal(st.failing_since, T0);
    assert_int_equal(st.have_keys, 0);
    tk_keycache_free(c);
    free(md);

    /* The trailing slash counts. */
    md = metadata(ISS "/", JWKS_URL);
    fk_set(&f, OIDC_URL, 200, md, -1);
    c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "issuer with a slash more");
    tu_expect_detail_has(&v, "to the trailing slash", "issuer with a slash more");
    tk_keycache_free(c);
    free(md);

    /* A jwks_uri that is not https: refused, never fetched. */
    md = metadata(ISS, "http://idp.test/tenant1/keys");
    fk_set(&f, OIDC_URL, 200, md, -1);
    c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "jwks_uri over http");
    tu_expect_detail_has(&v, "\"http://idp.test/tenant1/keys\" is not an https URL", "jwks_uri over http");
    assert_int_equal(fk_calls(&f, "http://idp.test/tenant1/keys"), 0);
    assert_int_equal(fk_calls(&f, JWKS_URL), 0);
    tk_keycache_free(c);
    free(md);

    /* The OpenID configuration URL serves an HTML login page. */
    fk_set(&f, OIDC_URL, 200, "<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>", -1);
    c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, NULL);
    v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "HTML metadata");
    tu_expect_detail_has(&v, "HTML", "HTML metadata");
    tu_expect_detail_has(&v, OIDC_URL, "HTML metadata");
    tk_keycache_free(c);

    tk_free(t1);
    free(jwks);
    fk_free(&f);
}

/* When the jwks_uri answers 404 the metadata is read again at once: the
 * provider may have moved its keys. */
static void test_jwks_404_rediscovers(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    const char *moved = "https://idp.test/tenant1/keys/v2";
    char *md = metadata(ISS, JWKS_URL);
    char *md2 = metadata(ISS, moved);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, OIDC_URL, 200, md, -1);
    fk_set(&f, JWKS_URL, 200, jwks, 1000);
    tk_keycache *c = cache_new(&f, 0, 0);
    add_issuer(c, ISS, NULL);
    (void)tk_keycache_maintain(c, T0);
    assert_string_equal(status_of(c, ISS, T0).jwks_uri, JWKS_URL);
    assert_int_equal(fk_calls(&f, OIDC_URL), 1);

    fk_set(&f, JWKS_URL, 404, "gone", -1);
    fk_set(&f, OIDC_URL, 200, md2, -1);
    fk_set(&f, moved, 200, jwks, 1000);
    (void)tk_keycache_maintain(c, T0 + 750); /* refresh ahead: 404 */
    tk_keycache_status st = status_of(c, ISS, T0 + 750);
    assert_int_equal(st.fetch_failed, 1);
    expect_has(st.last_error, "HTTP 404", "jwks 404");
    assert_int_equal(fk_calls(&f, OIDC_URL), 1);
    (void)tk_keycache_maintain(c, T0 + 760); /* the retry discovers again */
    st = status_of(c, ISS, T0 + 760);
    assert_string_equal(st.jwks_uri, moved);
    assert_int_equal(st.fetch_ok, 2);
    assert_int_equal(st.failing_since, 0);
    assert_int_equal(fk_calls(&f, OIDC_URL), 2);
    assert_int_equal(fk_calls(&f, moved), 1);
    tk_keycache_free(c);
    free(md);
    free(md2);
    free(jwks);
    fk_free(&f);
}

/* ---- lifetimes --------------------------------------------------------------- */

static void test_ttl_from_cache_control_clamped(void **state)
{
    (void)state;
    static const struct {
        int64_t max_age;
        int64_t ttl;
    } cases[] = {
        {-1, 3600},      /* none: default_ttl */
        {0, 300},        /* no-store / no-cache: min_ttl */
        {60, 300},       /* under min_ttl */
        {300, 300},      /* at min_ttl */
        {1234, 1234},    /* inside */
        {86400, 86400},  /* at max_ttl */
        {604800, 86400}, /* a week: max_ttl */
    };
    char *jwks = jwks_of(g_es1, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct fake f;
        fk_init(&f);
        fk_set(&f, JWKS_URL, 200, jwks, cases[i].max_age);
        tk_keycache *c = cache_new(&f, 0, 0);
        add_issuer(c, ISS, JWKS_URL);
        (void)tk_keycache_maintain(c, T0);
        tk_keycache_status st = status_of(c, ISS, T0);
        assert_int_equal(st.have_keys, 1);
        assert_int_equal(st.fetched_at, T0);
        if (st.expires_at != T0 + cases[i].ttl) {
            fail_msg("max-age %lld: expires after %lld s, want %lld", (long long)cases[i].max_age,
                     (long long)(st.expires_at - T0), (long long)cases[i].ttl);
        }
        assert_int_equal(st.stale_until, st.expires_at + 86400);
        /* a configured jwks_uri: nothing discovered */
        assert_int_equal(fk_total(&f), 1);
        assert_string_equal(st.jwks_uri, JWKS_URL);
        tk_keycache_free(c);
        fk_free(&f);
    }

    /* default_ttl is clamped as well */
    struct fake f;
    fk_init(&f);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = fk_fetch;
    cfg.fetch_ud = &f;
    cfg.default_ttl = 10;
    tk_keycache *c = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    add_issuer(c, ISS, JWKS_URL);
    (void)tk_keycache_maintain(c, T0);
    assert_int_equal(status_of(c, ISS, T0).expires_at, T0 + 300);
    tk_keycache_free(c);
    fk_free(&f);
    free(jwks);
}

static void test_refresh_ahead_at_three_quarters(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks1 = jwks_of(g_es1, NULL);
    char *jwks2 = jwks_of(g_es1, g_es2, NULL);
    fk_set(&f, JWKS_URL, 200, jwks1, 1000);
    tk_keycache *c = cache_new(&f, 0, 0);
    add_issuer(c, ISS, JWKS_URL);
    int64_t ms = tk_keycache_maintain(c, T0);
    assert_true(ms >= 0 && ms <= 1000);
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    /* nothing more until 3/4 of the lifetime */
    for (int64_t t = T0 + 1; t < T0 + 750; t += 37) {
        (void)tk_keycache_maintain(c, t);
    }
    (void)tk_keycache_maintain(c, T0 + 749);
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    /* the issuer published a second key meanwhile */
    fk_set(&f, JWKS_URL, 200, jwks2, 1000);
    char *t2 = token(g_es2, ISS);
    (void)tk_keycache_maintain(c, T0 + 750);
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    tk_keycache_status st = status_of(c, ISS, T0 + 750);
    assert_int_equal(st.fetched_at, T0 + 750);
    assert_int_equal(st.expires_at, T0 + 1750);
    assert_int_equal(st.keys, 2);
    /* the refreshed set is used before the old one would have expired */
    tk_verdict v = verify_at(c, ISS, t2, T0 + 751);
    tu_expect_reason(&v, TK_REASON_VALID, "key of the refreshed set");
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    /* and the next refresh is at 3/4 of the new lifetime */
    (void)tk_keycache_maintain(c, T0 + 750 + 749);
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    (void)tk_keycache_maintain(c, T0 + 750 + 750);
    assert_int_equal(fk_calls(&f, JWKS_URL), 3);
    tk_free(t2);
    free(jwks1);
    free(jwks2);
    tk_keycache_free(c);
    fk_free(&f);
}

/* ---- unknown kids and rotation ----------------------------------------------- */

static void test_unknown_kid_refetch_and_cooldown(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    tk_keycache *c = cache_new(&f, 1, 0);
    add_issuer(c, ISS, JWKS_URL);
    char *t1 = token(g_es1, ISS);
    char *t2 = token(g_es2, ISS);
    char *t3 = token(g_es3, ISS);
    tk_verdict v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "known kid");
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);

    /* an unknown kid: exactly one refetch */
    v = verify_at(c, ISS, t2, T0 + 100);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "unknown kid es2");
    tu_expect_detail_has(&v, "kid 'es2' is not in the key set of " ISS, "unknown kid es2");
    tu_expect_detail_has(&v, "refetched just now", "unknown kid es2");
    tu_expect_detail_has(&v, "keys 'es1'", "unknown kid es2");
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    assert_int_equal(status_of(c, ISS, T0 + 100).kid_refetches, 1);

    /* another unknown kid within the cool-down (30 s): no fetch */
    v = verify_at(c, ISS, t3, T0 + 110);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "unknown kid es3 in the cool-down");
    tu_expect_detail_has(&v, "kid 'es3'", "cool-down");
    tu_expect_detail_has(&v, "not refetched", "cool-down");
    tu_expect_detail_has(&v, "was 10s ago, cool-down 30s", "cool-down: how long ago");
    v = verify_at(c, ISS, t2, T0 + 129);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "unknown kid es2 in the cool-down");
    tu_expect_detail_has(&v, "not refetched", "cool-down");
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    tk_keycache_status st = status_of(c, ISS, T0 + 129);
    assert_int_equal(st.kid_refetches, 1);
    assert_int_equal(st.kid_refetch_denied, 2);
    /* known kids are served meanwhile without any fetch */
    v = verify_at(c, ISS, t1, T0 + 129);
    tu_expect_reason(&v, TK_REASON_VALID, "known kid in the cool-down");
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);

    /* after the cool-down: one refetch again */
    v = verify_at(c, ISS, t3, T0 + 130);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "after the cool-down");
    tu_expect_detail_has(&v, "refetched just now", "after the cool-down");
    assert_int_equal(fk_calls(&f, JWKS_URL), 3);
    assert_int_equal(status_of(c, ISS, T0 + 130).kid_refetches, 2);

    /* the refetch fails: the detail says so, not "refetched just now" */
    fk_down(&f, "connection reset by peer");
    v = verify_at(c, ISS, t2, T0 + 200);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "refetch failed");
    tu_expect_detail_has(&v, "a refetch just now failed: " JWKS_URL ": connection reset by peer", "refetch failed");
    assert_int_equal(fk_calls(&f, JWKS_URL), 4);
    fk_down(&f, "");

    /* a token without kid signed by a key not in the set: refused */
    char *nokid = NULL;
    size_t nl = 0;
    tk_key *anon = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, NULL, &anon), TK_OK);
    const char *payload = "{\"iss\":\"" ISS "\",\"exp\":1800000000}";
    assert_int_equal(tk_sign(anon, "JWT", (const unsigned char *)payload, strlen(payload), &nokid, &nl), TK_OK);
    v = verify_at(c, ISS, nokid, T0 + 201);
    assert_true(v.reason != TK_REASON_VALID);
    tk_key_free(anon);
    tk_free(nokid);

    tk_free(t1);
    tk_free(t2);
    tk_free(t3);
    free(jwks);
    tk_keycache_free(c);
    fk_free(&f);
}

static void test_rotation_new_kid_accepted_after_refetch(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *before = jwks_of(g_es1, NULL);
    char *after = jwks_of(g_es2, g_es1, NULL);
    char *rotated = jwks_of(g_es2, NULL);
    fk_set(&f, JWKS_URL, 200, before, 3600);
    char *t1 = token(g_es1, ISS);
    char *t2 = token(g_es2, ISS);

    /* inline (no threads) and with a maintainer's queue alike */
    for (int mode = 0; mode < 2; mode++) {
        fk_set(&f, JWKS_URL, 200, before, 3600);
        tk_keycache *c = cache_new(&f, 1, 0);
        add_issuer(c, ISS, JWKS_URL);
        if (mode == 1) {
            (void)tk_keycache_maintain(c, T0);
        }
        tk_verdict v = verify_at(c, ISS, t1, T0);
        tu_expect_reason(&v, TK_REASON_VALID, "before the rotation");
        int calls = fk_calls(&f, JWKS_URL);
        /* the issuer publishes es2 and signs with it */
        fk_set(&f, JWKS_URL, 200, after, 3600);
        v = verify_at(c, ISS, t2, T0 + 60);
        tu_expect_reason(&v, TK_REASON_VALID, "the new kid, after one refetch");
        assert_int_equal(fk_calls(&f, JWKS_URL), calls + 1);
        v = verify_at(c, ISS, t1, T0 + 61);
        tu_expect_reason(&v, TK_REASON_VALID, "the old key, still published");
        tk_keycache_status st = status_of(c, ISS, T0 + 61);
        assert_int_equal(st.keys, 2);
        assert_int_equal(st.fetched_at, T0 + 60);
        /* es1 retired; a refresh drops it */
        fk_set(&f, JWKS_URL, 200, rotated, 3600);
        (void)tk_keycache_maintain(c, T0 + 60 + 2700);
        v = verify_at(c, ISS, t1, T0 + 2800);
        tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "retired key");
        tu_expect_detail_has(&v, "keys 'es2'", "retired key");
        v = verify_at(c, ISS, t2, T0 + 2800);
        tu_expect_reason(&v, TK_REASON_VALID, "after the rotation");
        tk_keycache_free(c);
    }
    tk_free(t1);
    tk_free(t2);
    free(before);
    free(after);
    free(rotated);
    fk_free(&f);
}

/* ---- threads --------------------------------------------------------------- */

struct maint {
    tk_keycache *c;
    _Atomic int64_t now;
    atomic_int stop;
    pthread_t th;
};

static void *maintainer(void *arg)
{
    struct maint *m = arg;
    while (!atomic_load(&m->stop)) {
        int64_t ms = tk_keycache_maintain(m->c, atomic_load(&m->now));
        tk_keycache_wait_work(m->c, ms > 0 ? ms : 1);
    }
    return NULL;
}

static void maint_start(struct maint *m, tk_keycache *c, int64_t now)
{
    m->c = c;
    atomic_init(&m->now, now);
    atomic_init(&m->stop, 0);
    assert_int_equal(pthread_create(&m->th, NULL, maintainer, m), 0);
}

static void maint_stop(struct maint *m)
{
    atomic_store(&m->stop, 1);
    tk_keycache_wake(m->c);
    assert_int_equal(pthread_join(m->th, NULL), 0);
}

#define N_THREADS 8
#define N_VERIFIES 50
#define N_TOKENS 6

struct worker {
    tk_keycache *c;
    _Atomic int64_t *now;
    char **tokens; /* N_TOKENS: [0], [1] published; the rest not */
    unsigned seed;
    int bad; /* verdicts that were not the expected one */
    char first_bad[TK_LIMIT_DETAIL_LEN + 64];
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < N_VERIFIES; i++) {
        unsigned r = (unsigned)rand_r(&w->seed) % N_TOKENS;
        int64_t now = atomic_load(w->now);
        tk_policy pol;
        tk_policy_init(&pol, now);
        const char *issuers[] = {ISS};
        pol.issuers = issuers;
        pol.issuers_len = 1;
        tk_verdict v;
        tk_token *t = NULL;
        tk_result rc = tk_keycache_verify(w->c, ISS, w->tokens[r], strlen(w->tokens[r]), &pol, NULL, now, &v, &t);
        tk_reason want = r < 2 ? TK_REASON_VALID : TK_REASON_UNKNOWN_KEY;
        if (rc != TK_OK || v.reason != want || (want == TK_REASON_VALID) != (t != NULL)) {
            if (w->bad++ == 0) {
                snprintf(w->first_bad, sizeof w->first_bad, "token %u: %s %s", r, tk_reason_code(v.reason), v.detail);
            }
        }
        if (t) {
            const char *sub = tk_token_claim_string(t, "sub");
            if (!sub || strcmp(sub, "alice") != 0) {
                w->bad++;
            }
        }
        tk_token_free(t);
    }
    return NULL;
}

static void run_workers(tk_keycache *c, _Atomic int64_t *now, char **tokens, unsigned salt)
{
    pthread_t th[N_THREADS];
    struct worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].c = c;
        w[i].now = now;
        w[i].tokens = tokens;
        w[i].seed = salt * 131u + (unsigned)i;
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        if (w[i].bad) {
            fail_msg("thread %d: %d unexpected verdicts; the first: %s", i, w[i].bad, w[i].first_bad);
        }
    }
}

static void test_threads_one_fetch_per_cooldown(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *md = metadata(ISS, JWKS_URL);
    char *jwks = jwks_of(g_es1, g_es2, NULL);
    fk_set(&f, OIDC_URL, 200, md, -1);
    fk_set(&f, JWKS_URL, 200, jwks, 3600);
    fk_delay(&f, JWKS_URL, 20); /* long enough for the threads to pile up on a fetch */
    tk_keycache *c = cache_new(&f, 0, 5000);
    add_issuer(c, ISS, NULL);
    tk_key *unpublished[N_TOKENS - 2];
    char *tokens[N_TOKENS];
    tokens[0] = token(g_es1, ISS);
    tokens[1] = token(g_es2, ISS);
    for (int i = 0; i < N_TOKENS - 2; i++) {
        char kid[16];
        snprintf(kid, sizeof kid, "u%d", i);
        assert_int_equal(tk_key_generate(TK_ALG_ES256, kid, &unpublished[i]), TK_OK);
        tokens[2 + i] = token(unpublished[i], ISS);
    }
    struct maint m;
    maint_start(&m, c, T0);

    /* Window 1: the first fetch (discovery + key set) and one refetch for
     * the unknown kids, however many threads miss at once. */
    run_workers(c, &m.now, tokens, 1);
    assert_int_equal(fk_calls(&f, OIDC_URL), 1);
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    tk_keycache_status st = status_of(c, ISS, T0);
    assert_int_equal(st.kid_refetches, 1);
    assert_true(st.kid_refetch_denied > 0);

    /* Window 2, 30 s later: one more. */
    atomic_store(&m.now, T0 + 30);
    run_workers(c, &m.now, tokens, 2);
    assert_int_equal(fk_calls(&f, JWKS_URL), 3);
    /* Still within window 2. */
    atomic_store(&m.now, T0 + 59);
    run_workers(c, &m.now, tokens, 3);
    assert_int_equal(fk_calls(&f, JWKS_URL), 3);
    st = status_of(c, ISS, T0 + 59);
    assert_int_equal(st.kid_refetches, 2);
    assert_int_equal(st.fetch_ok, 3);
    maint_stop(&m);
    /* the fetcher never ran twice at once for the issuer */
    assert_int_equal(f.max_in_flight, 1);
    assert_int_equal(fk_calls(&f, OIDC_URL), 1);

    for (int i = 0; i < N_TOKENS; i++) {
        tk_free(tokens[i]);
    }
    for (int i = 0; i < N_TOKENS - 2; i++) {
        tk_key_free(unpublished[i]);
    }
    free(md);
    free(jwks);
    tk_keycache_free(c);
    fk_free(&f);
}

/* SECURITY.md rule 21: what waits for a fetch is bounded. */
static void test_wait_bound_on_slow_first_fetch(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    fk_delay(&f, JWKS_URL, 2000);
    tk_keycache *c = cache_new(&f, 0, 200);
    add_issuer(c, ISS, JWKS_URL);
    char *t1 = token(g_es1, ISS);
    struct maint m;
    maint_start(&m, c, T0);

    double t = tu_now_ms();
    tk_verdict v = verify_at(c, ISS, t1, T0);
    double took = tu_now_ms() - t;
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "slow first fetch");
    tu_expect_detail_has(&v, ISS, "slow first fetch");
    tu_expect_detail_has(&v, "did not arrive within 200 ms", "slow first fetch");
    if (took < 150 || took > 900) {
        fail_msg("verify waited %.0f ms for a fetch of 2000 ms with wait_ms 200", took);
    }
    /* a second caller meanwhile waits no longer, and starts no fetch */
    t = tu_now_ms();
    v = verify_at(c, ISS, t1, T0);
    took = tu_now_ms() - t;
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "slow first fetch, second caller");
    assert_true(took <= 900);
    maint_stop(&m); /* waits for the fetch to end */
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    v = verify_at(c, ISS, t1, T0 + 1);
    tu_expect_reason(&v, TK_REASON_VALID, "once the slow fetch arrived");
    tk_free(t1);
    free(jwks);
    tk_keycache_free(c);
    fk_free(&f);
}

/* The same bound for a refetch asked for by an unknown kid: over it the
 * answer is "unavailable" (503, retry), not a verdict on the token. */
static void test_wait_bound_on_slow_kid_refetch(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *before = jwks_of(g_es1, NULL);
    char *after = jwks_of(g_es1, g_es2, NULL);
    fk_set(&f, JWKS_URL, 200, before, -1);
    tk_keycache *c = cache_new(&f, 0, 200);
    add_issuer(c, ISS, JWKS_URL);
    (void)tk_keycache_maintain(c, T0);
    char *t2 = token(g_es2, ISS);
    fk_set(&f, JWKS_URL, 200, after, -1);
    fk_delay(&f, JWKS_URL, 1000);
    struct maint m;
    maint_start(&m, c, T0 + 10);
    double t = tu_now_ms();
    tk_verdict v = verify_at(c, ISS, t2, T0 + 10);
    double took = tu_now_ms() - t;
    if (took < 150 || took > 900) {
        fail_msg("verify waited %.0f ms for a refetch of 1000 ms with wait_ms 200", took);
    }
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "slow refetch for an unknown kid");
    tu_expect_detail_has(&v, "kid 'es2' is not in the key set of " ISS, "slow refetch");
    tu_expect_detail_has(&v, "a refetch is under way and did not finish within 200 ms; retry shortly", "slow refetch");
    maint_stop(&m);
    v = verify_at(c, ISS, t2, T0 + 11);
    tu_expect_reason(&v, TK_REASON_VALID, "once the refetch arrived");
    assert_int_equal(fk_calls(&f, JWKS_URL), 2);
    tk_keycache_free(c);

    /* wait_ms 0 with a maintainer: the refetch is queued, the caller does not wait */
    fk_set(&f, JWKS_URL, 200, before, -1);
    c = cache_new(&f, 0, 0);
    add_issuer(c, ISS, JWKS_URL);
    (void)tk_keycache_maintain(c, T0);
    fk_set(&f, JWKS_URL, 200, after, -1);
    v = verify_at(c, ISS, t2, T0 + 10);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "wait_ms 0, refetch queued");
    tu_expect_detail_has(&v, "did not finish within 0 ms", "wait_ms 0, refetch queued");
    assert_int_equal(fk_calls(&f, JWKS_URL), 3);
    assert_int_equal(tk_keycache_maintain(c, T0 + 10) >= 0, 1);
    assert_int_equal(fk_calls(&f, JWKS_URL), 4);
    v = verify_at(c, ISS, t2, T0 + 10);
    tu_expect_reason(&v, TK_REASON_VALID, "wait_ms 0, after the queued refetch");
    tk_free(t2);
    free(before);
    free(after);
    tk_keycache_free(c);
    fk_free(&f);
}

/* A fetcher that calls tk_keycache_wake while maintain is fetching, as a
 * server's shutdown may at any moment. */
static tk_keycache *g_wake_cache;

static int waking_fetch(void *ud, const char *url, size_t cap, tk_fetch_result *out)
{
    tk_keycache_wake(g_wake_cache);
    return fk_fetch(ud, url, cap, out);
}

/* A wake that lands while maintain runs is not lost: the maintainer's next
 * tk_keycache_wait_work returns at once (else a shutdown waits for it). */
static void test_wake_during_maintain_is_not_lost(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = waking_fetch;
    cfg.fetch_ud = &f;
    tk_keycache *c = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    g_wake_cache = c;
    add_issuer(c, ISS, JWKS_URL);
    (void)tk_keycache_maintain(c, T0);
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    double t = tu_now_ms();
    tk_keycache_wait_work(c, 3000);
    double took = tu_now_ms() - t;
    if (took > 500) {
        fail_msg("tk_keycache_wait_work slept %.0f ms after a wake during maintain", took);
    }
    /* and without a wake it does sleep */
    (void)tk_keycache_maintain(c, T0 + 1);
    assert_int_equal(fk_calls(&f, JWKS_URL), 1);
    t = tu_now_ms();
    tk_keycache_wait_work(c, 200);
    took = tu_now_ms() - t;
    assert_true(took >= 150);
    tk_keycache_free(c);
    free(jwks);
    fk_free(&f);
}

/* ---- failures ---------------------------------------------------------------- */

static void test_provider_down_serves_last_good_until_max_stale(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks = jwks_of(g_es1, NULL);
    fk_set(&f, JWKS_URL, 200, jwks, 600);
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = fk_fetch;
    cfg.fetch_ud = &f;
    cfg.max_stale = 1000;
    cfg.wait_ms = 0;
    tk_keycache *c = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    add_issuer(c, ISS, JWKS_URL);
    char *t1 = token(g_es1, ISS);
    (void)tk_keycache_maintain(c, T0);
    tk_keycache_status st = status_of(c, ISS, T0);
    assert_int_equal(st.expires_at, T0 + 600);
    assert_int_equal(st.stale_until, T0 + 1600);

    fk_down(&f, "connection refused");
    (void)tk_keycache_maintain(c, T0 + 450); /* refresh ahead fails */
    st = status_of(c, ISS, T0 + 450);
    assert_int_equal(st.fetch_failed, 1);
    assert_int_equal(st.failing_since, T0 + 450);
    expect_has(st.last_error, "connection refused", "last_error");
    expect_has(st.last_error, JWKS_URL, "last_error names the URL");
    assert_int_equal(st.expires_at, T0 + 600); /* unchanged */
    /* retries back off: 5, 10, 20 ... */
    int calls = fk_calls(&f, JWKS_URL);
    (void)tk_keycache_maintain(c, T0 + 454);
    assert_int_equal(fk_calls(&f, JWKS_URL), calls);
    (void)tk_keycache_maintain(c, T0 + 455);
    assert_int_equal(fk_calls(&f, JWKS_URL), calls + 1);
    (void)tk_keycache_maintain(c, T0 + 464);
    assert_int_equal(fk_calls(&f, JWKS_URL), calls + 1);
    (void)tk_keycache_maintain(c, T0 + 465);
    assert_int_equal(fk_calls(&f, JWKS_URL), calls + 2);

    static const int64_t served[] = {T0 + 500, T0 + 600, T0 + 601, T0 + 1200, T0 + 1600};
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++) {
        (void)tk_keycache_maintain(c, served[i]);
        tk_verdict v = verify_at(c, ISS, t1, served[i]);
        if (v.reason != TK_REASON_VALID) {
            fail_msg("at expires_at%+lld: %s %s, want valid (last good set)", (long long)(served[i] - T0 - 600),
                     tk_reason_code(v.reason), v.detail);
        }
    }
    (void)tk_keycache_maintain(c, T0 + 1601);
    tk_verdict v = verify_at(c, ISS, t1, T0 + 1601);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "past max_stale");
    tu_expect_detail_has(&v, "the key set of " ISS, "past max_stale: the issuer");
    tu_expect_detail_has(&v, "connection refused", "past max_stale: the error");
    tu_expect_detail_has(&v, "failing closed", "past max_stale");

    /* the provider comes back: served again at once after the next fetch */
    fk_down(&f, "");
    (void)tk_keycache_maintain(c, T0 + 2000);
    v = verify_at(c, ISS, t1, T0 + 2000);
    tu_expect_reason(&v, TK_REASON_VALID, "provider back");
    st = status_of(c, ISS, T0 + 2000);
    assert_int_equal(st.failing_since, 0);
    assert_string_equal(st.last_error, "");
    assert_int_equal(st.expires_at, T0 + 2600);
    tk_free(t1);
    free(jwks);
    tk_keycache_free(c);
    fk_free(&f);
}

/* A provider that is down from the start: its tokens are unavailable with
 * the reason, and the callers do not turn into a fetch per token (the
 * retry back-off holds for them as for the maintainer). */
static void test_first_fetch_fails(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    fk_down(&f, "Could not resolve host: idp.test");
    char *t1 = token(g_es1, ISS);
    for (int inl = 0; inl < 2; inl++) {
        tk_keycache *c = cache_new(&f, inl, 0);
        add_issuer(c, ISS, NULL);
        int calls = fk_total(&f);
        if (!inl) {
            (void)tk_keycache_maintain(c, T0);
        }
        tk_verdict v = verify_at(c, ISS, t1, T0);
        tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "down from the start");
        tu_expect_detail_has(&v, "the key set of " ISS " could not be fetched", "down from the start");
        tu_expect_detail_has(&v, "Could not resolve host", "down from the start");
        tu_expect_detail_has(&v, OIDC_URL, "down from the start");
        assert_int_equal(fk_total(&f), calls + 1);
        /* more tokens within the retry delay (5 s): no more fetches */
        for (int i = 0; i < 20; i++) {
            v = verify_at(c, ISS, t1, T0 + 4);
            tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "down, retry delay");
            if (!inl) {
                (void)tk_keycache_maintain(c, T0 + 4);
            }
        }
        if (fk_total(&f) != calls + 1) {
            fail_msg("%s: %d fetches within the retry delay of a failing issuer, want 0",
                     inl ? "inline_fetch" : "maintainer", fk_total(&f) - calls - 1);
        }
        /* after it: one more */
        if (!inl) {
            (void)tk_keycache_maintain(c, T0 + 5);
        }
        v = verify_at(c, ISS, t1, T0 + 5);
        tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "down, retried");
        assert_int_equal(fk_total(&f), calls + 2);
        tk_keycache_free(c);
    }
    tk_free(t1);
    fk_free(&f);
}

static void test_bad_documents_explained(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *t1 = token(g_es1, ISS);
    char *md = metadata(ISS, JWKS_URL);
    static const struct {
        long status;
        const char *body;
        const char *want;
    } cases[] = {
        {200, "<!doctype html><html><body>Welcome</body></html>", "HTML"},
        {200, "{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://idp.test/tenant1/real-keys\"}",
         "its jwks_uri is https://idp.test/tenant1/real-keys"},
        {200, "{\"kty\":\"EC\"}", "a single JWK"},
        {200, "{\"keys\":[]}", "no usable key"},
        {200, "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI\"}]}", "shared secret"},
        {503, "{\"keys\":[]}", "HTTP 503"},
        {200, "{\"keys\":", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fk_set(&f, JWKS_URL, cases[i].status, cases[i].body, -1);
        tk_keycache *c = cache_new(&f, 1, 0);
        add_issuer(c, ISS, JWKS_URL);
        tk_verdict v = verify_at(c, ISS, t1, T0);
        tu_expect_reason(&v, TK_REASON_UNAVAILABLE, cases[i].body);
        tu_expect_detail_has(&v, cases[i].want, cases[i].body);
        tu_expect_detail_has(&v, JWKS_URL, cases[i].body);
        tk_keycache_free(c);
    }
    /* a body over body_cap is an error, never cut short */
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = fk_fetch;
    cfg.fetch_ud = &f;
    cfg.inline_fetch = 1;
    cfg.wait_ms = 0;
    cfg.body_cap = 64;
    char *jwks = jwks_of(g_es1, NULL);
    assert_true(strlen(jwks) > 64);
    fk_set(&f, JWKS_URL, 200, jwks, -1);
    tk_keycache *c = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    add_issuer(c, ISS, JWKS_URL);
    tk_verdict v = verify_at(c, ISS, t1, T0);
    tu_expect_reason(&v, TK_REASON_UNAVAILABLE, "over body_cap");
    tu_expect_detail_has(&v, "over 64 bytes", "over body_cap");
    tk_keycache_free(c);
    free(jwks);
    free(md);
    tk_free(t1);
    fk_free(&f);
}

/* ---- fixed sets, several issuers ----------------------------------------- */

static void test_fixed_jwks_text_never_fetches(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    char *jwks = jwks_of(g_es1, NULL);
    tk_keycache *c = cache_new(&f, 1, 1000);
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = "internal-issuer"; /* not a URL: allowed with a fixed set */
    ic.jwks_text = jwks;
    ic.jwks_text_len = strlen(jwks);
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_OK);
    char *t1 = token(g_es1, "internal-issuer");
    char *t2 = token(g_es2, "internal-issuer");
    for (int64_t t = T0; t < T0 + 400000; t += 9999) {
        (void)tk_keycache_maintain(c, t);
        tk_verdict v = verify_at(c, "internal-issuer", t1, t);
        tu_expect_reason(&v, TK_REASON_VALID, "fixed set");
        v = verify_at(c, "internal-issuer", t2, t);
        tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "fixed set, unknown kid");
    }
    assert_int_equal(fk_total(&f), 0);
    tk_keycache_status st = status_of(c, "internal-issuer", T0);
    assert_int_equal(st.have_keys, 1);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.stale_until, INT64_MAX);
    assert_int_equal(st.kid_refetches, 0);
    assert_string_equal(st.jwks_uri, "");

    /* fixed text without a usable key, or not a key set: refused when added */
    ic.issuer = "internal-2";
    ic.jwks_text = JWKS_NONE;
    ic.jwks_text_len = strlen(JWKS_NONE);
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_KEY);
    ic.jwks_text = "<html>";
    ic.jwks_text_len = 6;
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_ERR_KEY);
    assert_int_equal(tk_keycache_count(c), 1);

    /* a cache without any fetcher serves fixed sets */
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    tk_keycache *c2 = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c2), TK_OK);
    ic.issuer = "internal-issuer";
    ic.jwks_text = jwks;
    ic.jwks_text_len = strlen(jwks);
    assert_int_equal(tk_keycache_add_issuer(c2, &ic), TK_OK);
    (void)tk_keycache_maintain(c2, T0);
    tk_verdict v = verify_at(c2, "internal-issuer", t1, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "fixed set, no fetcher");
    tk_keycache_free(c2);

    tk_free(t1);
    tk_free(t2);
    free(jwks);
    tk_keycache_free(c);
    fk_free(&f);
}

/* Two issuers publish the same kid: a token claiming issuer A but signed
 * with B's key is checked against A's key only. */
static void test_same_kid_two_issuers(void **state)
{
    (void)state;
    struct fake f;
    fk_init(&f);
    const char *a = "https://a.idp.test";
    const char *b = "https://b.idp.test";
    char *ja = jwks_of(g_es1, NULL);
    char *jb = jwks_of(g_other_es1, NULL);
    fk_set(&f, "https://a.idp.test/keys", 200, ja, -1);
    fk_set(&f, "https://b.idp.test/keys", 200, jb, -1);
    tk_keycache *c = cache_new(&f, 1, 0);
    add_issuer(c, a, "https://a.idp.test/keys");
    add_issuer(c, b, "https://b.idp.test/keys");
    char *ta = token(g_es1, a);
    char *tb = token(g_other_es1, b);
    char *forged = token(g_other_es1, a); /* kid es1, iss A, B's key */
    tk_verdict v = verify_at(c, a, ta, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "A's token");
    v = verify_at(c, b, tb, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "B's token");
    int calls = fk_total(&f);
    v = verify_at(c, a, forged, T0);
    tu_expect_reason(&v, TK_REASON_BAD_SIGNATURE, "A's iss, B's key under the same kid");
    assert_int_equal(fk_total(&f), calls); /* a bad signature asks for no refetch */
    /* and the other way round: B's token is not A's even through B's set when the
     * policy names A (the caller picked B's set, the iss check refuses it) */
    tk_policy pol;
    tk_policy_init(&pol, T0);
    const char *issuers[] = {a};
    pol.issuers = issuers;
    pol.issuers_len = 1;
    assert_int_equal(tk_keycache_verify(c, b, tb, strlen(tb), &pol, NULL, T0, &v, NULL), TK_OK);
    tu_expect_reason(&v, TK_REASON_WRONG_ISSUER, "B's token under A's policy");
    tk_free(ta);
    tk_free(tb);
    tk_free(forged);
    free(ja);
    free(jb);
    tk_keycache_free(c);
    fk_free(&f);
}

/* ---- the lenient JWKS reader ------------------------------------------------ */

/* The public JWK of a fresh RSA-1024 key, made with OpenSSL (tokend refuses
 * to make or load one). Owned. */
static char *rsa1024_jwk(const char *kid)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(pk);
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    unsigned char nb[256];
    unsigned char eb[16];
    int nl = BN_bn2bin(n, nb);
    int el = BN_bn2bin(e, eb);
    assert_int_equal(nl, 128);
    char *n64 = tu_b64(nb, (size_t)nl);
    char *e64 = tu_b64(eb, (size_t)el);
    char *s = malloc(512);
    assert_non_null(s);
    snprintf(s, 512, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}",
             kid, n64, e64);
    free(n64);
    free(e64);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
    return s;
}

/* The JWK of k without its "alg" member (with_private as tk_key_to_jwk). Owned. */
static char *jwk_without_alg(const tk_key *k, int with_private)
{
    json_t *o = jwk_obj(k, with_private);
    assert_int_equal(json_object_del(o, "alg"), 0);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_non_null(s);
    return s;
}

struct logbuf {
    int n;
    char level[8];
    char last[1024];
};

static void log_capture(void *ud, const char *level, const char *msg)
{
    struct logbuf *lb = ud;
    lb->n++;
    snprintf(lb->level, sizeof lb->level, "%s", level);
    snprintf(lb->last, sizeof lb->last, "%s", msg);
}

static void test_lenient_jwks_skips_and_names(void **state)
{
    (void)state;
    char *es1 = NULL;
    char *es2 = NULL;
    assert_int_equal(tk_key_to_jwk(g_es1, 0, &es1), TK_OK);
    assert_int_equal(tk_key_to_jwk(g_es2, 0, &es2), TK_OK);
    char *weak = rsa1024_jwk("weak");
    /* es3's public JWK as an encryption key */
    json_t *enc = jwk_obj(g_es3, 0);
    json_object_set_new(enc, "use", json_string("enc"));
    json_object_set_new(enc, "kid", json_string("enc1"));
    char *encs = json_dumps(enc, JSON_COMPACT);
    json_decref(enc);
    /* es2 again under kid es1 */
    json_t *dup = jwk_obj(g_es2, 0);
    json_object_set_new(dup, "kid", json_string("es1"));
    char *dups = json_dumps(dup, JSON_COMPACT);
    json_decref(dup);
    char doc[8192];
    snprintf(doc, sizeof doc,
             "{\"keys\":[%s,%s,"
             "{\"kty\":\"oct\",\"kid\":\"hmac\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI\"},"
             "{\"kty\":\"foo\",\"kid\":\"f\"},%s,%s,%s,\"a string\"]}",
             encs, es1, weak, dups, es2);
    static const struct {
        size_t index;
        const char *kid;
        const char *why;
    } want[] = {
        {0, "enc1", "an encryption key (use \"enc\")"},
        {2, "hmac", "a shared secret (kty oct)"},
        {3, "f", "kty \"foo\" is not supported"},
        {4, "weak", "RSA key has 1024 bits; at least 2048 are required"},
        {5, "es1", "another key of the set has the same kid"},
        {7, "", "not a JSON object"},
    };
    const size_t n_want = sizeof want / sizeof want[0];
    tk_keyset *ks = NULL;
    tk_jwks_skip skips[8];
    size_t n_skipped = 99;
    char why[256];
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), NULL, 0, &ks, skips, 8, &n_skipped, why, sizeof why),
                     TK_OK);
    assert_non_null(ks);
    assert_int_equal(n_skipped, n_want);
    for (size_t i = 0; i < n_want; i++) {
        if (skips[i].index != want[i].index || strcmp(skips[i].kid, want[i].kid) != 0 ||
            strstr(skips[i].why, want[i].why) == NULL) {
            fail_msg("skip %zu: key %zu '%s': %s; want key %zu '%s': %s", i, skips[i].index, skips[i].kid, skips[i].why,
                     want[i].index, want[i].kid, want[i].why);
        }
        assert_true(tu_printable(skips[i].why, strlen(skips[i].why)));
    }
    /* the rest is usable: es1 (the first of its kid) and es2 */
    assert_int_equal(tk_keyset_count(ks), 2);
    char *t1 = token(g_es1, ISS);
    char *t2 = token(g_es2, ISS);
    tk_verdict v = tu_verify_at(t1, strlen(t1), ks, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "es1 of the lenient set");
    v = tu_verify_at(t2, strlen(t2), ks, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "es2 of the lenient set");
    tk_keyset_free(ks);

    /* fewer slots than skips: the count is still all of them */
    tk_jwks_skip two[2];
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), NULL, 0, &ks, two, 2, &n_skipped, why, sizeof why),
                     TK_OK);
    assert_int_equal(n_skipped, n_want);
    assert_int_equal(two[1].index, 2);
    tk_keyset_free(ks);
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), NULL, 0, &ks, NULL, 0, NULL, NULL, 0), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 2);
    tk_keyset_free(ks);

    /* the same document through the cache: the status names the skipped keys */
    struct fake f;
    fk_init(&f);
    fk_set(&f, JWKS_URL, 200, doc, -1);
    struct logbuf lb = {0};
    tk_keycache_config cfg;
    tk_keycache_config_defaults(&cfg);
    cfg.fetch = fk_fetch;
    cfg.fetch_ud = &f;
    cfg.inline_fetch = 1;
    cfg.wait_ms = 0;
    cfg.log = log_capture;
    cfg.log_ud = &lb;
    tk_keycache *c = NULL;
    assert_int_equal(tk_keycache_new(&cfg, &c), TK_OK);
    add_issuer(c, ISS, JWKS_URL);
    v = verify_at(c, ISS, t2, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "es2 through the cache");
    tk_keycache_status st = status_of(c, ISS, T0);
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.skipped, n_want);
    expect_has(st.skipped_why, "key #1 (kid 'enc1'): an encryption key", "skipped_why");
    expect_has(st.skipped_why, "key #5 (kid 'weak'): RSA", "skipped_why");
    /* and the operator is told, once, naming the issuer */
    assert_int_equal(lb.n, 1);
    assert_string_equal(lb.level, "warn");
    expect_has(lb.last, "key set of " ISS ": 2 keys used, 6 skipped: key #1 (kid 'enc1')", "log line");
    tk_keycache_free(c);
    fk_free(&f);

    tk_free(t1);
    tk_free(t2);
    tk_free(es1);
    tk_free(es2);
    free(weak);
    free(encs);
    free(dups);
}

static void test_lenient_jwks_refuses_non_key_sets(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *why;
    } cases[] = {
        {"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"},
        {"\n\n  <html>", "HTML"},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"" JWKS_URL "\"}", "its jwks_uri is " JWKS_URL},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\"}", "a single JWK"},
        {"{\"keys\":{}}", "without a \"keys\" array"},
        {"{}", "without a \"keys\" array"},
        {"[]", "not valid JSON"},
        {"", "not valid JSON"},
        {"{\"keys\":[],\"keys\":[]}", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tk_keyset *ks = (tk_keyset *)1;
        char why[256];
        size_t n = 7;
        tk_result rc =
            tk_keyset_from_jwks_lenient(cases[i].doc, strlen(cases[i].doc), NULL, 0, &ks, NULL, 0, &n, why, sizeof why);
        if (rc != TK_ERR_JSON) {
            fail_msg("%s: %s, want TK_ERR_JSON", cases[i].doc, tk_result_str(rc));
        }
        assert_null(ks);
        assert_int_equal(n, 0);
        expect_has(why, cases[i].why, cases[i].doc);
        assert_true(tu_printable(why, strlen(why)));
    }
    /* more than TK_LIMIT_KEYSET_KEYS members */
    size_t cap = 16 + (TK_LIMIT_KEYSET_KEYS + 1) * 4;
    char *big = malloc(cap);
    assert_non_null(big);
    size_t pos = (size_t)snprintf(big, cap, "{\"keys\":[");
    for (unsigned i = 0; i <= TK_LIMIT_KEYSET_KEYS; i++) {
        pos += (size_t)snprintf(big + pos, cap - pos, "%s{}", i ? "," : "");
    }
    snprintf(big + pos, cap - pos, "]}");
    tk_keyset *ks = NULL;
    char why[256];
    assert_int_equal(tk_keyset_from_jwks_lenient(big, strlen(big), NULL, 0, &ks, NULL, 0, NULL, why, sizeof why),
                     TK_ERR_JSON);
    expect_has(why, "at most 64", "too many keys");
    free(big);
    assert_int_equal(tk_keyset_from_jwks_lenient(NULL, 0, NULL, 0, &ks, NULL, 0, NULL, why, sizeof why), TK_ERR_ARG);
    assert_int_equal(tk_keyset_from_jwks_lenient("{}", 2, NULL, 0, NULL, NULL, 0, NULL, why, sizeof why), TK_ERR_ARG);
    assert_int_equal(tk_keyset_from_jwks_lenient("{}", 2, NULL, 0, &ks, NULL, 1, NULL, why, sizeof why), TK_ERR_ARG);
}

static void test_lenient_jwks_algs(void **state)
{
    (void)state;
    char *es1 = NULL;
    assert_int_equal(tk_key_to_jwk(g_es1, 0, &es1), TK_OK);
    char *rsa = jwk_without_alg(g_rsa, 0);
    char doc[4096];
    snprintf(doc, sizeof doc, "{\"keys\":[%s,%s]}", es1, rsa);
    char why[256];
    tk_jwks_skip skips[4];
    size_t n = 0;

    /* algs {RS256}: the ES256 key is skipped and named */
    const tk_alg rs[] = {TK_ALG_RS256};
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), rs, 1, &ks, skips, 4, &n, why, sizeof why), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 1);
    assert_int_equal(n, 1);
    assert_string_equal(skips[0].kid, "es1");
    expect_has(skips[0].why, "alg ES256 is not allowed for this issuer (allowed: RS256)", "ES256 under {RS256}");
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "r1", 2)), TK_ALG_RS256);
    tk_keyset_free(ks);

    /* no algs: every asymmetric alg; the RSA key without alg is RS256 (OpenID Connect's) */
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), NULL, 0, &ks, skips, 4, &n, why, sizeof why), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 2);
    assert_int_equal(n, 0);
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "r1", 2)), TK_ALG_RS256);
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "es1", 3)), TK_ALG_ES256);
    tk_keyset_free(ks);

    /* algs {ES256, PS384, RS256}: the RSA key is bound to the first RSA alg, PS384 */
    const tk_alg mixed[] = {TK_ALG_ES256, TK_ALG_PS384, TK_ALG_RS256};
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), mixed, 3, &ks, skips, 4, &n, why, sizeof why),
                     TK_OK);
    assert_int_equal(tk_keyset_count(ks), 2);
    assert_int_equal(tk_key_alg(tk_keyset_find(ks, "r1", 2)), TK_ALG_PS384);
    tk_keyset_free(ks);

    /* algs {ES256}: the RSA key fits none, and is skipped */
    const tk_alg es[] = {TK_ALG_ES256};
    assert_int_equal(tk_keyset_from_jwks_lenient(doc, strlen(doc), es, 1, &ks, skips, 4, &n, why, sizeof why), TK_OK);
    assert_int_equal(tk_keyset_count(ks), 1);
    assert_int_equal(n, 1);
    assert_string_equal(skips[0].kid, "r1");
    expect_has(skips[0].why, "is not allowed for this issuer", "RSA under {ES256}");
    tk_keyset_free(ks);

    /* Through the cache: the bound alg is what the token must carry (rule 1). */
    struct fake f;
    fk_init(&f);
    fk_set(&f, JWKS_URL, 200, doc, -1);
    tk_keycache *c = cache_new(&f, 1, 0);
    tk_issuer_config ic;
    memset(&ic, 0, sizeof ic);
    ic.issuer = ISS;
    ic.jwks_uri = JWKS_URL;
    const tk_alg ps[] = {TK_ALG_PS256};
    ic.algs = ps;
    ic.algs_len = 1;
    assert_int_equal(tk_keycache_add_issuer(c, &ic), TK_OK);
    char *priv = jwk_without_alg(g_rsa, 1);
    tk_key *ps_signer = NULL;
    assert_int_equal(tk_key_from_jwk(priv, strlen(priv), TK_ALG_PS256, &ps_signer), TK_OK);
    char *t_ps = token(ps_signer, ISS);
    char *t_rs = token(g_rsa, ISS);
    char *t_es = token(g_es1, ISS);
    tk_verdict v = verify_at(c, ISS, t_ps, T0);
    tu_expect_reason(&v, TK_REASON_VALID, "PS256 with the RSA key bound to PS256");
    v = verify_at(c, ISS, t_rs, T0);
    tu_expect_reason(&v, TK_REASON_ALG_NOT_ALLOWED, "RS256 token, key bound to PS256");
    v = verify_at(c, ISS, t_es, T0);
    tu_expect_reason(&v, TK_REASON_UNKNOWN_KEY, "ES256 key skipped under {PS256}");
    tk_keycache_status st = status_of(c, ISS, T0);
    assert_int_equal(st.keys, 1);
    assert_int_equal(st.skipped, 1);
    expect_has(st.skipped_why, "key #1 (kid 'es1'): alg ES256 is not allowed", "status");
    tk_keycache_free(c);
    fk_free(&f);

    tk_free(t_ps);
    tk_free(t_rs);
    tk_free(t_es);
    tk_key_free(ps_signer);
    free(priv);
    free(rsa);
    tk_free(es1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_control_max_age),
        cmocka_unit_test(test_metadata_parse),
        cmocka_unit_test(test_metadata_whitespace_only_reads_inside_its_length),
        cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_discovery_openid_configuration),
        cmocka_unit_test(test_discovery_falls_back_to_rfc8414),
        cmocka_unit_test(test_discovery_refuses_wrong_metadata),
        cmocka_unit_test(test_jwks_404_rediscovers),
        cmocka_unit_test(test_ttl_from_cache_control_clamped),
        cmocka_unit_test(test_refresh_ahead_at_three_quarters),
        cmocka_unit_test(test_unknown_kid_refetch_and_cooldown),
        cmocka_unit_test(test_rotation_new_kid_accepted_after_refetch),
        cmocka_unit_test(test_threads_one_fetch_per_cooldown),
        cmocka_unit_test(test_wait_bound_on_slow_first_fetch),
        cmocka_unit_test(test_wait_bound_on_slow_kid_refetch),
        cmocka_unit_test(test_wake_during_maintain_is_not_lost),
        cmocka_unit_test(test_provider_down_serves_last_good_until_max_stale),
        cmocka_unit_test(test_first_fetch_fails),
        cmocka_unit_test(test_bad_documents_explained),
        cmocka_unit_test(test_fixed_jwks_text_never_fetches),
        cmocka_unit_test(test_same_kid_two_issuers),
        cmocka_unit_test(test_lenient_jwks_skips_and_names),
        cmocka_unit_test(test_lenient_jwks_refuses_non_key_sets),
        cmocka_unit_test(test_lenient_jwks_algs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
