/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keycache.c — key sets of trusted issuers (tokend/keycache.h): discovery,
 * fetch through the caller's tk_fetch_fn, lifetimes from Cache-Control,
 * refresh ahead of expiry, one coalesced refetch per cool-down on unknown
 * kids, bounded staleness, and explanations that name the issuer's side.
 *
 * Locking: one mutex guards the fetch state of every issuer; it is never
 * held during a fetch or a signature check. A verification takes a
 * reference to the issuer's current key set (an immutable snapshot, freed
 * by its last holder), so a refresh swaps the pointer and never waits for
 * readers. Two condition variables: `work` wakes the maintainer thread,
 * `done` wakes requests waiting for a fetch to finish.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/internal.h"
#include "tokend/keycache.h"

/* An immutable key set with the facts its explanations need. */
struct kc_set {
    atomic_int refs;
    tk_keyset *ks;
    int64_t fetched_at;
    uint64_t gen; /* the issuer's fetch generation that made it */
};

struct kc_issuer {
    char issuer[TK_LIMIT_URL_LEN + 1];
    size_t issuer_len;
    char jwks_uri_cfg[TK_LIMIT_URL_LEN + 1]; /* configured; "" = discover */
    int fixed;                               /* fixed JWKS text: never fetched */
    tk_alg algs[TK_ALG_COUNT_];
    size_t n_algs;
    void *fetch_ud;
    /* under c->mu */
    struct kc_set *set;
    char jwks_uri[TK_LIMIT_URL_LEN + 1]; /* in use (configured or discovered) */
    int64_t discovered_at;
    int rediscover;
    int64_t expires_at;
    int64_t next_due; /* when maintain should fetch; 0 = at once */
    int64_t retry_delay;
    int fetching;
    int wanted;
    int64_t last_kid_refetch; /* 0 = never */
    uint64_t gen;             /* completed fetch attempts */
    int64_t last_attempt;
    int64_t failing_since;
    char last_error[256];
    size_t skipped;
    char skipped_why[256];
    size_t n_keys;
    uint64_t fetch_ok, fetch_failed, kid_refetches, kid_denied;
};

struct tk_keycache {
    tk_keycache_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_cond_t done;
    int work_pending;
    size_t n;
    struct kc_issuer *iss[TK_LIMIT_ISSUERS];
};

void tk_keycache_config_defaults(tk_keycache_config *c)
{
    if (!c) {
        return;
    }
    memset(c, 0, sizeof *c);
    c->struct_size = sizeof *c;
    c->min_ttl = 300;
    c->max_ttl = 86400;
    c->default_ttl = 3600;
    c->kid_cooldown = 30;
    c->retry_min = 5;
    c->retry_max = 300;
    c->max_stale = 86400;
    c->discovery_ttl = 86400;
    c->wait_ms = 1000;
    c->body_cap = TK_LIMIT_JWK_LEN;
}

/* snprintf without the compiler's truncation guesses: every message here
 * is cut at its buffer on purpose. */
static void msgf(char *buf, size_t cap, const char *fmt, ...) TKI_PRINTF(3, 4);
static void msgf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* ---- sets ---------------------------------------------------------------------------- */

static struct kc_set *set_ref(struct kc_set *s)
{
    if (s) {
        atomic_fetch_add(&s->refs, 1);
    }
    return s;
}

static void set_unref(struct kc_set *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        tk_keyset_free(s->ks);
        free(s);
    }
}

/* The kids of a set, quoted, for explanations. */
static void list_kids(const tk_keyset *ks, char *buf, size_t cap)
{
    size_t pos = 0;
    buf[0] = '\0';
    size_t n = tk_keyset_count(ks);
    if (n == 0) {
        tki_appendf(buf, cap, &pos, "none");
        return;
    }
    for (size_t i = 0; i < n && i < 8; i++) {
        const char *kid = tk_key_kid(tk_keyset_get(ks, i));
        tki_appendf(buf, cap, &pos, "%s'", i ? ", " : "");
        if (kid) {
            tki_append_escaped(buf, cap, &pos, kid, strlen(kid), 64);
        } else {
            tki_appendf(buf, cap, &pos, "(no kid)");
        }
        tki_appendf(buf, cap, &pos, "'");
    }
    if (n > 8) {
        tki_appendf(buf, cap, &pos, " and %zu more", n - 8);
    }
}

/* ---- Cache-Control ------------------------------------------------------------------- */

int64_t tk_cache_control_max_age(const char *v, size_t len)
{
    if (!v) {
        return -1;
    }
    int64_t found = -1;
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',' || v[i] == '\r' || v[i] == '\n')) {
            i++;
        }
        size_t s = i;
        while (i < len && v[i] != '=' && v[i] != ',' && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n') {
            i++;
        }
        size_t nl = i - s;
        while (i < len && (v[i] == ' ' || v[i] == '\t')) {
            i++;
        }
        const char *val = NULL;
        size_t vl = 0;
        if (i < len && v[i] == '=') {
            i++;
            while (i < len && (v[i] == ' ' || v[i] == '\t')) {
                i++;
            }
            int quoted = i < len && v[i] == '"';
            if (quoted) {
                i++;
            }
            val = v + i;
            while (i < len && (quoted ? v[i] != '"'
                                      : (v[i] != ',' && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n'))) {
                i++;
            }
            vl = (size_t)(v + i - val);
            if (quoted && i < len) {
                i++;
            }
        }
        /* skip the rest of the directive (trailing blanks; anything malformed) up to the next comma */
        while (i < len && v[i] != ',') {
            i++;
        }
        if ((nl == 8 && strncasecmp(v + s, "no-store", 8) == 0) ||
            (nl == 8 && strncasecmp(v + s, "no-cache", 8) == 0)) {
            return 0;
        }
        if (nl == 7 && strncasecmp(v + s, "max-age", 7) == 0) {
            if (!val || vl == 0) {
                return -1;
            }
            int64_t n = 0;
            for (size_t k = 0; k < vl; k++) {
                if (val[k] < '0' || val[k] > '9') {
                    return -1;
                }
                if (n < 1000000000000LL) {
                    n = n * 10 + (val[k] - '0');
                }
            }
            if (found >= 0) {
                return -1; /* two max-age directives: ambiguous (RFC 9111 section 4.2.1) */
            }
            found = n;
        }
    }
    return found;
}

/* ---- metadata -------------------------------------------------------------------------- */

static int https_url(const char *u)
{
    if (strncmp(u, "https://", 8) != 0 || u[8] == '\0' || u[8] == '/') {
        return 0;
    }
    for (const char *p = u; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\' || *p == '<' ||
            *p == '>') {
            return 0; /* never valid in a URL; and these would break a log line or a metrics label */
        }
    }
    return 1;
}

/* Describes a document that is not JSON. */
static void not_json(const char *doc, size_t len, char *why, size_t cap)
{
    size_t pos = 0;
    why[0] = '\0';
    if (len == 0) {
        tki_appendf(why, cap, &pos, "the document is empty");
    } else if (!tki_say_if_markup(doc, len, why, cap, &pos)) {
        tki_appendf(why, cap, &pos, "not valid JSON, or over the limits (%u bytes, %u members)",
                    (unsigned)TK_LIMIT_JWK_LEN, (unsigned)TK_LIMIT_METADATA_MEMBERS);
    }
}

tk_result tk_metadata_parse(const char *doc, size_t len, const char *issuer, char *jwks_uri, size_t cap, char *why,
                            size_t why_cap)
{
    char dummy[8];
    if (!why || why_cap == 0) {
        why = dummy;
        why_cap = sizeof dummy;
    }
    why[0] = '\0';
    if (!doc || !jwks_uri || cap == 0) {
        return TK_ERR_ARG;
    }
    jwks_uri[0] = '\0';
    json_t *o = NULL;
    if (len > 0 && len <= TK_LIMIT_JWK_LEN) {
        char err[160];
        o = tki_json_parse_object((const unsigned char *)doc, len, TK_LIMIT_JSON_DEPTH, TK_LIMIT_METADATA_MEMBERS, err,
                                  sizeof err);
    }
    if (!o) {
        not_json(doc, len, why, why_cap);
        return TK_ERR_JSON;
    }
    tk_result rc = TK_ERR_JSON;
    size_t pos = 0;
    json_t *iv = json_object_get(o, "issuer");
    json_t *uv = json_object_get(o, "jwks_uri");
    if (json_is_array(json_object_get(o, "keys"))) {
        tki_appendf(why, why_cap, &pos, "this is a key set (JWKS), not metadata");
        goto out;
    }
    if (!json_is_string(iv)) {
        tki_appendf(why, why_cap, &pos, "it has no \"issuer\": not OpenID/OAuth metadata");
        goto out;
    }
    if (issuer && strcmp(json_string_value(iv), issuer) != 0) {
        /* OpenID Connect Discovery 1.0 section 4.3, RFC 8414 section 3.3 */
        tki_appendf(why, why_cap, &pos, "its issuer is \"");
        tki_append_escaped(why, why_cap, &pos, json_string_value(iv), json_string_length(iv), 120);
        tki_appendf(why, why_cap, &pos, "\", not \"");
        tki_append_escaped(why, why_cap, &pos, issuer, strlen(issuer), 120);
        tki_appendf(why, why_cap, &pos, "\" (they must be equal, to the trailing slash)");
        goto out;
    }
    if (!json_is_string(uv)) {
        tki_appendf(why, why_cap, &pos, "it has no \"jwks_uri\": the issuer publishes no key set");
        goto out;
    }
    const char *u = json_string_value(uv);
    if (json_string_length(uv) > TK_LIMIT_URL_LEN || json_string_length(uv) >= cap || !https_url(u)) {
        tki_appendf(why, why_cap, &pos, "its jwks_uri \"");
        tki_append_escaped(why, why_cap, &pos, u, json_string_length(uv), 120);
        tki_appendf(why, why_cap, &pos, "\" is not an https URL of at most %u bytes", (unsigned)TK_LIMIT_URL_LEN);
        goto out;
    }
    memcpy(jwks_uri, u, json_string_length(uv) + 1);
    rc = TK_OK;
out:
    json_decref(o);
    return rc;
}

/* ---- the cache --------------------------------------------------------------------------- */

/* The first published sizes of the config structs (tokend 0.1): what
 * struct_size 0 stands for (tokend.h, "Conventions"), pinned to their last
 * member in 0.1 (TKI_SIZE_THROUGH). Never change them. */
#define KC_CONFIG_SIZE_V1 TKI_SIZE_THROUGH(tk_keycache_config, log_ud)
#define KC_ISSUER_SIZE_V1 TKI_SIZE_THROUGH(tk_issuer_config, fetch_ud)

tk_result tk_keycache_new(const tk_keycache_config *cfg_in, tk_keycache **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (!cfg_in) {
        return TK_ERR_ARG;
    }
    tk_keycache_config local;
    tk_keycache_config_defaults(&local);
    tk_result ir = tki_struct_import(&local, sizeof local, KC_CONFIG_SIZE_V1, cfg_in, cfg_in->struct_size);
    if (ir != TK_OK) {
        return ir;
    }
    const tk_keycache_config *cfg = &local;
    if (cfg->min_ttl < 0 || cfg->max_ttl < cfg->min_ttl || cfg->kid_cooldown < 0 || cfg->retry_min < 1 ||
        cfg->retry_max < cfg->retry_min || cfg->max_stale < 0 || cfg->discovery_ttl < 1 || cfg->body_cap < 64 ||
        cfg->body_cap > 64u * 1024 * 1024) {
        return TK_ERR_ARG;
    }
    tk_keycache *c = calloc(1, sizeof *c);
    if (!c) {
        return TK_ERR_NOMEM;
    }
    c->cfg = *cfg;
    pthread_condattr_t ca;
    int ok = pthread_condattr_init(&ca) == 0;
    if (ok) {
        (void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    }
    if (!ok || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return TK_ERR_NOMEM;
    }
    if (pthread_cond_init(&c->work, &ca) != 0 || pthread_cond_init(&c->done, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return TK_ERR_NOMEM;
    }
    pthread_condattr_destroy(&ca);
    *out = c;
    return TK_OK;
}

void tk_keycache_free(tk_keycache *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        set_unref(c->iss[i]->set);
        free(c->iss[i]);
    }
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct kc_issuer *find(const tk_keycache *c, const char *iss, size_t len)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->iss[i]->issuer_len == len && memcmp(c->iss[i]->issuer, iss, len) == 0) {
            return c->iss[i];
        }
    }
    return NULL;
}

/* Builds a set from a JWKS document; on failure `err` says why. */
static tk_result build_set(const struct kc_issuer *is, const char *doc, size_t len, int64_t now, uint64_t gen,
                           struct kc_set **out, size_t *skipped, char *skipped_why, size_t sw_cap, char *err,
                           size_t err_cap)
{
    *out = NULL;
    tk_jwks_skip skips[4];
    size_t n_skipped = 0;
    tk_keyset *ks = NULL;
    char why[256];
    tk_result rc =
        tk_keyset_from_jwks_lenient(doc, len, is->algs, is->n_algs, &ks, skips, 4, &n_skipped, why, sizeof why);
    if (rc != TK_OK) {
        msgf(err, err_cap, "%s", why);
        return rc;
    }
    size_t pos = 0;
    skipped_why[0] = '\0';
    for (size_t i = 0; i < n_skipped && i < 4; i++) {
        tki_appendf(skipped_why, sw_cap, &pos, "%skey #%zu", i ? "; " : "", skips[i].index + 1);
        if (skips[i].kid[0]) {
            tki_appendf(skipped_why, sw_cap, &pos, " (kid '%s')", skips[i].kid);
        }
        tki_appendf(skipped_why, sw_cap, &pos, ": %s", skips[i].why);
    }
    if (n_skipped > 4) {
        tki_appendf(skipped_why, sw_cap, &pos, "; and %zu more", n_skipped - 4);
    }
    *skipped = n_skipped;
    if (tk_keyset_count(ks) == 0) {
        msgf(err, err_cap, "the key set has no usable key%s%s", n_skipped ? " (skipped: " : "",
             n_skipped ? skipped_why : "");
        if (n_skipped && strlen(err) + 2 < err_cap) {
            strcat(err, ")");
        }
        tk_keyset_free(ks);
        return TK_ERR_KEY;
    }
    struct kc_set *s = calloc(1, sizeof *s);
    if (!s) {
        tk_keyset_free(ks);
        return TK_ERR_NOMEM;
    }
    atomic_init(&s->refs, 1);
    s->ks = ks;
    s->fetched_at = now;
    s->gen = gen;
    *out = s;
    return TK_OK;
}

tk_result tk_keycache_add_issuer(tk_keycache *c, const tk_issuer_config *ic_in)
{
    if (!c || !ic_in) {
        return TK_ERR_ARG;
    }
    tk_issuer_config local;
    memset(&local, 0, sizeof local);
    tk_result ir = tki_struct_import(&local, sizeof local, KC_ISSUER_SIZE_V1, ic_in, ic_in->struct_size);
    if (ir != TK_OK) {
        return ir;
    }
    const tk_issuer_config *ic = &local;
    if (!ic->issuer || ic->algs_len > TK_ALG_COUNT_ || (ic->algs_len && !ic->algs)) {
        return TK_ERR_ARG;
    }
    size_t len = strlen(ic->issuer);
    if (len == 0 || len > TK_LIMIT_URL_LEN || find(c, ic->issuer, len)) {
        return TK_ERR_ARG;
    }
    if (!ic->jwks_text && !https_url(ic->issuer)) {
        return TK_ERR_ARG; /* discovery and key sets travel over https only */
    }
    if (ic->jwks_uri && (strlen(ic->jwks_uri) > TK_LIMIT_URL_LEN || !https_url(ic->jwks_uri))) {
        return TK_ERR_ARG;
    }
    if (!ic->jwks_text && !c->cfg.fetch) {
        return TK_ERR_ARG;
    }
    for (size_t i = 0; i < ic->algs_len; i++) {
        tk_alg a = ic->algs[i];
        if (a <= TK_ALG_UNSET || a >= TK_ALG_COUNT_ || a == TK_ALG_HS256 || a == TK_ALG_HS384 || a == TK_ALG_HS512) {
            return TK_ERR_ARG;
        }
    }
    if (c->n >= TK_LIMIT_ISSUERS) {
        return TK_ERR_LIMIT;
    }
    struct kc_issuer *is = calloc(1, sizeof *is);
    if (!is) {
        return TK_ERR_NOMEM;
    }
    memcpy(is->issuer, ic->issuer, len + 1);
    is->issuer_len = len;
    if (ic->jwks_uri) {
        msgf(is->jwks_uri_cfg, sizeof is->jwks_uri_cfg, "%s", ic->jwks_uri);
        msgf(is->jwks_uri, sizeof is->jwks_uri, "%s", ic->jwks_uri);
    }
    for (size_t i = 0; i < ic->algs_len; i++) {
        is->algs[i] = ic->algs[i];
    }
    is->n_algs = ic->algs_len;
    is->fetch_ud = ic->fetch_ud ? ic->fetch_ud : c->cfg.fetch_ud;
    is->retry_delay = c->cfg.retry_min;
    if (ic->jwks_text) {
        char err[256];
        is->fixed = 1;
        tk_result rc = build_set(is, ic->jwks_text, ic->jwks_text_len, 0, 0, &is->set, &is->skipped, is->skipped_why,
                                 sizeof is->skipped_why, err, sizeof err);
        if (rc != TK_OK) {
            free(is);
            return rc == TK_ERR_NOMEM ? rc : TK_ERR_KEY;
        }
        is->n_keys = tk_keyset_count(is->set->ks);
        is->expires_at = INT64_MAX;
        if (is->skipped && c->cfg.log) {
            char msg[TK_LIMIT_URL_LEN + 400];
            msgf(msg, sizeof msg, "key set of %s (fixed text): %zu keys used, %zu skipped: %s", is->issuer, is->n_keys,
                 is->skipped, is->skipped_why);
            c->cfg.log(c->cfg.log_ud, "warn", msg);
        }
    }
    pthread_mutex_lock(&c->mu);
    c->iss[c->n++] = is;
    pthread_mutex_unlock(&c->mu);
    return TK_OK;
}

int tk_keycache_has_issuer(const tk_keycache *c, const char *iss, size_t len)
{
    return c && iss && find(c, iss, len) != NULL;
}

size_t tk_keycache_count(const tk_keycache *c)
{
    return c ? c->n : 0;
}

const char *tk_keycache_issuer_at(const tk_keycache *c, size_t i)
{
    return c && i < c->n ? c->iss[i]->issuer : NULL;
}

void tk_keycache_issuer_list(const tk_keycache *c, char *buf, size_t cap)
{
    size_t pos = 0;
    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; c && i < c->n; i++) {
        tki_appendf(buf, cap, &pos, "%s%s", i ? ", " : "", c->iss[i]->issuer);
    }
}

/* ---- fetching ------------------------------------------------------------------------------ */

/* One GET into a fresh buffer; 0 with the body, or -1 with err. */
static int get(tk_keycache *c, struct kc_issuer *is, const char *url, char **body, size_t *len, int64_t *max_age,
               long *status, char *err, size_t err_cap)
{
    *body = NULL;
    *len = 0;
    *status = 0;
    size_t cap = c->cfg.body_cap;
    char *buf = malloc(cap + 1);
    if (!buf) {
        msgf(err, err_cap, "out of memory");
        return -1;
    }
    tk_fetch_result r;
    memset(&r, 0, sizeof r);
    r.body = buf;
    r.max_age = -1;
    int rc = c->cfg.fetch(is->fetch_ud, url, cap, &r);
    r.error[sizeof r.error - 1] = '\0';
    if (rc != 0) {
        msgf(err, err_cap, "%s: %s", url, r.error[0] ? r.error : "the fetch failed");
        free(buf);
        return -1;
    }
    if (r.body_len > cap) {
        msgf(err, err_cap, "%s: the body is over %zu bytes", url, cap);
        free(buf);
        return -1;
    }
    *status = r.status;
    buf[r.body_len] = '\0';
    *body = buf;
    *len = r.body_len;
    *max_age = r.max_age;
    return 0;
}

/* The RFC 8414 section 3.1 address: the well-known part goes between the
 * host and the issuer's path. */
static void rfc8414_url(const char *issuer, char *out, size_t cap)
{
    const char *host = issuer + 8;
    const char *path = strchr(host, '/');
    if (!path) {
        msgf(out, cap, "%s/.well-known/oauth-authorization-server", issuer);
        return;
    }
    size_t pl = strlen(path);
    while (pl > 0 && path[pl - 1] == '/') {
        pl--;
    }
    msgf(out, cap, "%.*s/.well-known/oauth-authorization-server%.*s", (int)(path - issuer), issuer, (int)pl, path);
}

/* Discovers the jwks_uri: OpenID Connect Discovery first, RFC 8414 when the
 * former is not there. */
static int discover(tk_keycache *c, struct kc_issuer *is, char *uri, size_t cap, char *err, size_t err_cap)
{
    char url[2 * TK_LIMIT_URL_LEN + 64];
    size_t il = is->issuer_len;
    while (il > 0 && is->issuer[il - 1] == '/') {
        il--;
    }
    msgf(url, sizeof url, "%.*s/.well-known/openid-configuration", (int)il, is->issuer);
    char *body = NULL;
    size_t len = 0;
    int64_t ma = -1;
    long status = 0;
    if (get(c, is, url, &body, &len, &ma, &status, err, err_cap) != 0) {
        return -1;
    }
    if (status == 404 || status == 410) {
        free(body);
        char first[64];
        msgf(first, sizeof first, "HTTP %ld", status);
        rfc8414_url(is->issuer, url, sizeof url);
        if (get(c, is, url, &body, &len, &ma, &status, err, err_cap) != 0) {
            return -1;
        }
        if (status != 200) {
            msgf(err, err_cap, "discovery found no metadata: the OpenID configuration answered %s and %s HTTP %ld",
                 first, url, status);
            free(body);
            return -1;
        }
    } else if (status != 200) {
        msgf(err, err_cap, "discovery: %s answered HTTP %ld", url, status);
        free(body);
        return -1;
    }
    char why[256];
    if (tk_metadata_parse(body, len, is->issuer, uri, cap, why, sizeof why) != TK_OK) {
        msgf(err, err_cap, "discovery: the metadata at %s: %s", url, why);
        free(body);
        return -1;
    }
    free(body);
    return 0;
}

static int64_t clamp_ttl(const tk_keycache_config *cfg, int64_t max_age)
{
    int64_t t = max_age >= 0 ? max_age : cfg->default_ttl;
    if (t < cfg->min_ttl) {
        t = cfg->min_ttl;
    }
    if (t > cfg->max_ttl) {
        t = cfg->max_ttl;
    }
    return t < 1 ? 1 : t;
}

static void log_event(tk_keycache *c, const char *level, const char *msg)
{
    if (c->cfg.log) {
        c->cfg.log(c->cfg.log_ud, level, msg);
    }
}

/* Fetches the issuer's set (discovering first when needed) and installs
 * the outcome. Called with is->fetching set, without the lock. */
static void fetch_issuer(tk_keycache *c, struct kc_issuer *is, int64_t now)
{
    char err[512] = "";
    char uri[TK_LIMIT_URL_LEN + 1];
    struct kc_set *fresh = NULL;
    size_t skipped = 0;
    char skipped_why[256] = "";
    int64_t ttl = 0;
    int discovered = 0;

    pthread_mutex_lock(&c->mu);
    int need_discovery =
        !is->jwks_uri_cfg[0] && (!is->jwks_uri[0] || is->rediscover || now - is->discovered_at >= c->cfg.discovery_ttl);
    msgf(uri, sizeof uri, "%s", is->jwks_uri);
    uint64_t gen = is->gen + 1;
    pthread_mutex_unlock(&c->mu);

    int ok = 0;
    if (need_discovery) {
        char known[TK_LIMIT_URL_LEN + 1];
        memcpy(known, uri, sizeof known);
        if (discover(c, is, uri, sizeof uri, err, sizeof err) != 0) {
            if (!known[0]) {
                goto done;
            }
            /* the metadata is unreachable but the key set's address is
             * known: refresh the keys from there meanwhile */
            memcpy(uri, known, sizeof uri);
            err[0] = '\0';
        } else {
            discovered = 1;
        }
    }
    char *body = NULL;
    size_t len = 0;
    int64_t ma = -1;
    long status = 0;
    if (get(c, is, uri, &body, &len, &ma, &status, err, sizeof err) != 0) {
        goto done;
    }
    if (status != 200) {
        msgf(err, sizeof err, "%s answered HTTP %ld", uri, status);
        free(body);
        goto done;
    }
    char why[256];
    tk_result rc =
        build_set(is, body, len, now, gen, &fresh, &skipped, skipped_why, sizeof skipped_why, why, sizeof why);
    free(body);
    if (rc != TK_OK) {
        msgf(err, sizeof err, "the key set at %s: %s", uri, why);
        goto done;
    }
    ttl = clamp_ttl(&c->cfg, ma);
    ok = 1;
done:;
    char msg[1024], skip_msg[600];
    msg[0] = skip_msg[0] = '\0';
    struct kc_set *replaced = NULL; /* freed once the lock is released */
    pthread_mutex_lock(&c->mu);
    is->gen = gen;
    is->last_attempt = now;
    is->fetching = 0;
    if (discovered) {
        msgf(is->jwks_uri, sizeof is->jwks_uri, "%s", uri);
        is->discovered_at = now;
        is->rediscover = 0;
    }
    if (ok) {
        struct kc_set *old = is->set;
        is->set = fresh;
        is->n_keys = tk_keyset_count(fresh->ks);
        is->expires_at = now + ttl;
        is->next_due = now + (ttl * 3 / 4 > 0 ? ttl * 3 / 4 : 1);
        is->retry_delay = c->cfg.retry_min;
        is->skipped = skipped;
        msgf(is->skipped_why, sizeof is->skipped_why, "%s", skipped_why);
        if (is->failing_since) {
            msgf(msg, sizeof msg, "key set of %s fetched again after failing since %lld: %zu keys", is->issuer,
                 (long long)is->failing_since, is->n_keys);
        }
        is->failing_since = 0;
        is->last_error[0] = '\0';
        is->fetch_ok++;
        replaced = old;
        if (skipped) {
            msgf(skip_msg, sizeof skip_msg, "key set of %s: %zu keys used, %zu skipped: %s", is->issuer, is->n_keys,
                 skipped, skipped_why);
        }
    } else {
        if (!is->failing_since) {
            is->failing_since = now;
        }
        msgf(is->last_error, sizeof is->last_error, "%s", err);
        is->fetch_failed++;
        is->next_due = now + is->retry_delay;
        is->retry_delay = is->retry_delay * 2 > c->cfg.retry_max ? c->cfg.retry_max : is->retry_delay * 2;
        if (strstr(err, "HTTP 404") && !is->jwks_uri_cfg[0]) {
            is->rediscover = 1; /* the jwks_uri may have moved */
        }
        if (is->set) {
            char when[24];
            tk_format_time(is->set->fetched_at, when, sizeof when);
            msgf(msg, sizeof msg, "key set of %s could not be fetched: %s; serving the one fetched at %s%s", is->issuer,
                 err, when, now > is->expires_at ? " (past its expiry)" : "");
        } else {
            msgf(msg, sizeof msg, "key set of %s could not be fetched: %s; its tokens are refused until it is",
                 is->issuer, err);
        }
    }
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->mu);
    set_unref(replaced);
    if (skip_msg[0]) {
        log_event(c, "warn", skip_msg);
    }
    if (msg[0]) {
        log_event(c, ok ? "info" : "warn", msg);
    }
}

int64_t tk_keycache_maintain(tk_keycache *c, int64_t now)
{
    if (!c) {
        return 1000;
    }
    int64_t next = 1000;
    for (size_t i = 0; i < c->n; i++) {
        struct kc_issuer *is = c->iss[i];
        pthread_mutex_lock(&c->mu);
        int due = !is->fixed && !is->fetching && (is->wanted || now >= is->next_due);
        if (due) {
            is->fetching = 1;
            is->wanted = 0;
        }
        pthread_mutex_unlock(&c->mu);
        if (due) {
            fetch_issuer(c, is, now);
        }
        pthread_mutex_lock(&c->mu);
        if (!is->fixed && !is->fetching) {
            int64_t ms = is->wanted ? 0 : (is->next_due - now) * 1000;
            if (ms < next) {
                next = ms < 0 ? 0 : ms;
            }
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    /* work_pending is left as it is (tk_keycache_wait_work clears it): a
     * wake that came while this ran must not be lost */
    for (size_t i = 0; i < c->n; i++) {
        if (c->iss[i]->wanted) {
            c->work_pending = 1;
            next = 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return next;
}

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void tk_keycache_wait_work(tk_keycache *c, int64_t max_ms)
{
    if (!c || max_ms <= 0) {
        return;
    }
    struct timespec ts;
    deadline_after(&ts, max_ms);
    pthread_mutex_lock(&c->mu);
    while (!c->work_pending) {
        if (pthread_cond_timedwait(&c->work, &c->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    c->work_pending = 0;
    pthread_mutex_unlock(&c->mu);
}

void tk_keycache_wake(tk_keycache *c)
{
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->work_pending = 1;
    pthread_cond_broadcast(&c->work);
    pthread_mutex_unlock(&c->mu);
}

/* Asks for a fetch of `is` and waits until its generation passes `gen` or
 * the wait bound ends. Called and returns with c->mu held. With
 * inline_fetch, the first caller makes the fetch itself. */
static void want_and_wait(tk_keycache *c, struct kc_issuer *is, uint64_t gen, int64_t now)
{
    if (!is->fetching) {
        is->wanted = 1;
    }
    if (c->cfg.inline_fetch) {
        if (!is->fetching) {
            is->fetching = 1;
            is->wanted = 0;
            pthread_mutex_unlock(&c->mu);
            fetch_issuer(c, is, now);
            pthread_mutex_lock(&c->mu);
            return;
        }
    } else {
        c->work_pending = 1;
        pthread_cond_broadcast(&c->work);
    }
    if (c->cfg.wait_ms == 0) {
        return;
    }
    struct timespec ts;
    deadline_after(&ts, c->cfg.inline_fetch ? 60000 : (int64_t)c->cfg.wait_ms);
    while (is->gen <= gen) {
        if (pthread_cond_timedwait(&c->done, &c->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
}

/* Why the issuer has no usable set; c->mu held. */
static void explain_unavailable(const tk_keycache *c, const struct kc_issuer *is, int64_t now, tk_verdict *v)
{
    char ago[24];
    if (!is->set) {
        if (is->last_error[0]) {
            tk_format_duration(now - is->failing_since, ago, sizeof ago);
            tki_verdict_set(v, TK_REASON_UNAVAILABLE,
                            "the key set of %s could not be fetched (failing for %s): %s; its tokens are refused "
                            "until it is",
                            is->issuer, ago, is->last_error);
        } else {
            tki_verdict_set(v, TK_REASON_UNAVAILABLE,
                            "the key set of %s is being fetched for the first time and did not arrive within %u ms; "
                            "retry shortly",
                            is->issuer, c->cfg.wait_ms);
        }
        return;
    }
    char when[24], fail[24];
    tk_format_time(is->set->fetched_at, when, sizeof when);
    tk_format_duration(is->failing_since ? now - is->failing_since : 0, fail, sizeof fail);
    tk_format_duration(c->cfg.max_stale, ago, sizeof ago);
    tki_verdict_set(v, TK_REASON_UNAVAILABLE,
                    "the key set of %s could not be fetched for %s (%s); the one fetched at %s is more than %s past "
                    "its expiry, so it is no longer trusted: failing closed",
                    is->issuer, fail, is->last_error[0] ? is->last_error : "no error recorded", when, ago);
}

tk_result tk_keycache_verify_token(tk_keycache *c, const char *issuer, const tk_token *t, const tk_policy *pol,
                                   int64_t now, tk_verdict *v)
{
    if (!v) {
        return TK_ERR_ARG;
    }
    memset(v, 0, sizeof *v);
    v->reason = TK_REASON_UNAVAILABLE;
    if (!c || !issuer || !t || !pol) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "no decision: bad argument");
        return TK_ERR_ARG;
    }
    struct kc_issuer *is = find(c, issuer, strlen(issuer));
    if (!is) {
        tki_verdict_set(v, TK_REASON_WRONG_ISSUER, "%s is not a trusted issuer", issuer);
        return TK_OK;
    }
    if (tk_token_header_verdict(t)->reason != TK_REASON_VALID) {
        *v = *tk_token_header_verdict(t); /* no key set needed to say so */
        return TK_OK;
    }
    pthread_mutex_lock(&c->mu);
    if (!is->set) {
        /* A first fetch (or one under way) is waited for; after a failed
         * one the retry back-off binds callers as it binds maintain, or
         * every token of a failing issuer would ask for a fetch of its own. */
        if (is->fetching || now >= is->next_due) {
            want_and_wait(c, is, is->gen, now);
        }
    } else if (!is->fixed && now >= is->expires_at && !is->fetching && now >= is->next_due) {
        is->wanted = 1; /* expired: ask for a fetch, serve the last good set meanwhile */
        c->work_pending = 1;
        pthread_cond_broadcast(&c->work);
    }
    if (!is->set || (!is->fixed && now > is->expires_at + c->cfg.max_stale)) {
        explain_unavailable(c, is, now, v);
        pthread_mutex_unlock(&c->mu);
        return TK_OK;
    }
    struct kc_set *s = set_ref(is->set);
    pthread_mutex_unlock(&c->mu);

    tk_result rc = tk_token_verify(t, s->ks, pol, v);
    if (rc != TK_OK || v->reason != TK_REASON_UNKNOWN_KEY || is->fixed) {
        set_unref(s);
        return rc;
    }

    /* The kid is not in the set: perhaps the issuer rotated. One refetch
     * per cool-down, shared by everyone who misses meanwhile. */
    int refetched = 0;
    int pending = 0; /* the refetch did not finish within wait_ms */
    char refetch_err[256] = "";
    int64_t last_refetch = 0;
    pthread_mutex_lock(&c->mu);
    if (is->set == s) {
        uint64_t gen0 = is->gen;
        if (is->fetching) {
            refetched = 1; /* one is on its way: wait for it */
            want_and_wait(c, is, gen0, now);
        } else if (is->last_kid_refetch == 0 || now - is->last_kid_refetch >= c->cfg.kid_cooldown) {
            is->last_kid_refetch = now;
            is->kid_refetches++;
            refetched = 1;
            want_and_wait(c, is, gen0, now);
        } else {
            is->kid_denied++;
            last_refetch = is->last_kid_refetch;
        }
        if (refetched && is->gen == gen0) {
            pending = 1; /* SECURITY.md rule 21: over the bound, unavailable */
        } else if (refetched && is->set == s && is->last_error[0]) {
            msgf(refetch_err, sizeof refetch_err, "%s", is->last_error);
        }
    } else {
        refetched = 1; /* replaced while we verified */
    }
    struct kc_set *s2 = set_ref(is->set);
    pthread_mutex_unlock(&c->mu);
    if (s2 && s2 != s) {
        rc = tk_token_verify(t, s2->ks, pol, v);
        if (rc != TK_OK || v->reason != TK_REASON_UNKNOWN_KEY) {
            set_unref(s);
            set_unref(s2);
            return rc;
        }
    }
    const struct kc_set *used = s2 ? s2 : s;
    /* The detail, with the issuer's side of things. */
    const char *kid = tk_token_kid(t);
    char kids[256], ago[24];
    list_kids(used->ks, kids, sizeof kids);
    tk_format_duration(now - used->fetched_at, ago, sizeof ago);
    char kidq[96];
    size_t kp = 0;
    kidq[0] = '\0';
    if (kid) {
        tki_append_escaped(kidq, sizeof kidq, &kp, kid, strlen(kid), 64);
    }
    char tail[320];
    if (pending) {
        msgf(tail, sizeof tail, "a refetch is under way and did not finish within %u ms", c->cfg.wait_ms);
    } else if (refetch_err[0]) {
        msgf(tail, sizeof tail, "a refetch just now failed: %s", refetch_err);
    } else if (refetched) {
        msgf(tail, sizeof tail, "refetched just now");
    } else {
        char since[24], cool[24];
        tk_format_duration(now - last_refetch, since, sizeof since);
        tk_format_duration(c->cfg.kid_cooldown, cool, sizeof cool);
        msgf(tail, sizeof tail, "not refetched: the last refetch for an unknown kid was %s ago, cool-down %s", since,
             cool);
    }
    if (pending) {
        /* the set may be about to gain the kid: no verdict on the token yet */
        tki_verdict_set(v, TK_REASON_UNAVAILABLE,
                        "kid '%s' is not in the key set of %s (fetched %s ago: keys %s) and %s; retry shortly",
                        kid ? kidq : "(none)", is->issuer, ago, kids, tail);
    } else if (kid) {
        tki_verdict_set(v, TK_REASON_UNKNOWN_KEY,
                        "kid '%s' is not in the key set of %s (fetched %s ago, %s; keys %s): the token may come "
                        "from another tenant or environment of this provider, or its key is not published yet",
                        kidq, is->issuer, ago, tail, kids);
    } else {
        char core[TK_LIMIT_DETAIL_LEN];
        msgf(core, sizeof core, "%s", v->detail);
        tki_verdict_set(v, TK_REASON_UNKNOWN_KEY, "%s (key set of %s, fetched %s ago: keys %s)", core, is->issuer, ago,
                        kids);
    }
    set_unref(s);
    set_unref(s2);
    return TK_OK;
}

tk_result tk_keycache_verify(tk_keycache *c, const char *issuer, const char *tok, size_t len, const tk_policy *pol,
                             const tk_limits *lim, int64_t now, tk_verdict *v, tk_token **out_token)
{
    if (out_token) {
        *out_token = NULL;
    }
    if (!v) {
        return TK_ERR_ARG;
    }
    tk_token *t = NULL;
    tk_result rc = tk_token_parse(tok, len, lim, &t, v);
    if (rc != TK_OK || !t) {
        if (rc != TK_OK) {
            tki_verdict_set(v, TK_REASON_UNAVAILABLE, "the verifier failed: %s", tk_result_str(rc));
        }
        return rc;
    }
    rc = tk_keycache_verify_token(c, issuer, t, pol, now, v);
    if (rc == TK_OK && v->reason == TK_REASON_VALID && out_token) {
        *out_token = t;
        t = NULL;
    }
    tk_token_free(t);
    return rc;
}

int tk_keycache_status_get(tk_keycache *c, const char *issuer, int64_t now, tk_keycache_status *st)
{
    if (!c || !issuer || !st) {
        return 0;
    }
    memset(st, 0, sizeof *st);
    struct kc_issuer *is = find(c, issuer, strlen(issuer));
    if (!is) {
        return 0;
    }
    (void)now;
    pthread_mutex_lock(&c->mu);
    st->have_keys = is->set != NULL;
    st->fetched_at = is->set ? is->set->fetched_at : 0;
    st->expires_at = is->set ? is->expires_at : 0;
    st->stale_until = is->set ? (is->fixed ? INT64_MAX : is->expires_at + c->cfg.max_stale) : 0;
    st->keys = is->n_keys;
    st->skipped = is->skipped;
    msgf(st->skipped_why, sizeof st->skipped_why, "%s", is->skipped_why);
    msgf(st->jwks_uri, sizeof st->jwks_uri, "%s", is->jwks_uri);
    st->last_attempt = is->last_attempt;
    st->failing_since = is->failing_since;
    msgf(st->last_error, sizeof st->last_error, "%s", is->last_error);
    st->fetch_ok = is->fetch_ok;
    st->fetch_failed = is->fetch_failed;
    st->kid_refetches = is->kid_refetches;
    st->kid_refetch_denied = is->kid_denied;
    pthread_mutex_unlock(&c->mu);
    return 1;
}
