/* SPDX-License-Identifier: Apache-2.0 */
/*
 * issuers.c — tokens of trusted external issuers at /auth (issue 10).
 *
 * A token's unverified iss only chooses where its keys come from: our key
 * ring for our issuer, a trusted issuer's key set (tk_keycache) for theirs.
 * Everything is then verified as for our own tokens, with the policy of
 * that issuer (audiences, algorithms, typ, leeway, required claims, the
 * claim that carries scopes and the one that names the subject). Any other
 * iss is wrong_issuer, naming the issuers that are trusted.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authority/internal.h"
#include "tokend/fetch.h"

#define TRUST_THREADS 2 /* a slow issuer holds up one of them, never all */
#define MAX_ITEMS TK_LIMIT_POLICY_ITEMS

/* One issuer's policy, with its lists split once. */
struct policy {
    char issuer[TK_LIMIT_URL_LEN + 1];
    char *strs; /* owned storage of the lists below */
    const char *aud[MAX_ITEMS];
    size_t n_aud;
    const char *req[MAX_ITEMS];
    size_t n_req;
    const char *scope_claims[4];
    size_t n_scope_claims;
    char scope_words[64]; /* "'scp'" or "'scope' or 'scp'", for explanations */
    char subject_claim[64];
    char typ[64];
    int64_t leeway;
    tk_fetch_options fetch;
    char ca_file[512];
};

struct tka_trust {
    tk_keycache *cache;
    struct policy *pol;
    size_t n;
    tk_fetch_options fetch;
    char ca_file[512];
    pthread_t th[TRUST_THREADS];
    size_t n_th;
    atomic_int stop;
};

void tka_trust_config_defaults(tka_trust_config *c)
{
    memset(c, 0, sizeof *c);
    tk_keycache_config kc;
    tk_keycache_config_defaults(&kc);
    c->min_ttl = kc.min_ttl;
    c->max_ttl = kc.max_ttl;
    c->default_ttl = kc.default_ttl;
    c->kid_cooldown = kc.kid_cooldown;
    c->max_stale = kc.max_stale;
    c->wait_ms = kc.wait_ms;
    c->fetch_timeout_ms = 5000;
    c->max_bytes = kc.body_cap;
    c->leeway = TK_LIMIT_LEEWAY_DEFAULT;
}

tk_keycache *tka_trust_cache(tka_trust *t)
{
    return t ? t->cache : NULL;
}

/* Splits a space-separated list into items (pointing into a copy kept in
 * *store at offset *used). Returns the count, or -1 past `cap` items. */
static long split(const char *list, char *store, size_t store_cap, size_t *used, const char **items, size_t cap)
{
    size_t n = 0;
    if (!list) {
        return 0;
    }
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t' && *e != ',') {
            e++;
        }
        size_t l = (size_t)(e - p);
        if (n == cap || *used + l + 1 > store_cap) {
            return -1;
        }
        memcpy(store + *used, p, l);
        store[*used + l] = '\0';
        items[n++] = store + *used;
        *used += l + 1;
        p = e;
    }
    return (long)n;
}

static void *maintainer(void *arg)
{
    tka_trust *t = arg;
    while (!atomic_load(&t->stop)) {
        int64_t ms = tk_keycache_maintain(t->cache, (int64_t)time(NULL));
        if (atomic_load(&t->stop)) {
            break;
        }
        tk_keycache_wait_work(t->cache, ms < 20 ? 20 : ms);
    }
    return NULL;
}

void tka_trust_close(tka_trust *t)
{
    if (!t) {
        return;
    }
    atomic_store(&t->stop, 1);
    for (size_t i = 0; i < t->n_th; i++) {
        tk_keycache_wake(t->cache);
        pthread_join(t->th[i], NULL);
    }
    tk_keycache_free(t->cache);
    for (size_t i = 0; i < t->n; i++) {
        free(t->pol[i].strs);
    }
    free(t->pol);
    free(t);
}

/* Why an issuer's jwks-file gave no usable key: what the document is, or
 * each key and why it was skipped ("key #1 (kid 'e1'): an encryption key"). */
static void jwks_file_why(const char *doc, size_t len, const tk_alg *algs, size_t n_algs, const char *issuer, char *err,
                          size_t err_cap)
{
    tk_jwks_skip skips[4];
    size_t n_skipped = 0;
    tk_keyset *ks = NULL;
    char why[256];
    size_t pos = 0;
    err[0] = '\0';
    if (tk_keyset_from_jwks_lenient(doc, len, algs, n_algs, &ks, skips, 4, &n_skipped, why, sizeof why) != TK_OK) {
        pos += (size_t)snprintf(err, err_cap, "issuer %s: its jwks-file is not a key set: %s", issuer, why);
    } else {
        pos += (size_t)snprintf(err, err_cap, "issuer %s: its jwks-file has no usable key%s", issuer,
                                n_skipped ? ":" : " ({\"keys\": []})");
        for (size_t i = 0; i < n_skipped && i < 4 && pos < err_cap; i++) {
            int w = snprintf(err + pos, err_cap - pos, "%s key #%zu%s%s%s: %s", i ? ";" : "", skips[i].index + 1,
                             skips[i].kid[0] ? " (kid '" : "", skips[i].kid, skips[i].kid[0] ? "')" : "", skips[i].why);
            pos += w > 0 ? (size_t)w : 0;
        }
        if (n_skipped > 4 && pos < err_cap) {
            snprintf(err + pos, err_cap - pos, "; and %zu more", n_skipped - 4);
        }
    }
    tk_keyset_free(ks);
}

int tka_trust_open(const tka_trust_config *cfg, const tka_issuer_policy *p, size_t n, tka_trust **out, char *err,
                   size_t err_cap)
{
    *out = NULL;
    if (n > TK_LIMIT_ISSUERS) {
        snprintf(err, err_cap, "%zu trusted issuers; at most %u", n, (unsigned)TK_LIMIT_ISSUERS);
        return -1;
    }
    tka_trust *t = calloc(1, sizeof *t);
    if (!t || !(t->pol = calloc(n ? n : 1, sizeof *t->pol))) {
        free(t);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    tk_fetch_options_defaults(&t->fetch);
    t->fetch.timeout_ms = cfg->fetch_timeout_ms;
    t->fetch.connect_timeout_ms = cfg->fetch_timeout_ms < 3000 ? cfg->fetch_timeout_ms : 3000;
    t->fetch.allow_http_loopback = cfg->allow_http_loopback;
    if (cfg->ca_file) {
        snprintf(t->ca_file, sizeof t->ca_file, "%s", cfg->ca_file);
        t->fetch.ca_file = t->ca_file;
    }
    tk_keycache_config kc;
    tk_keycache_config_defaults(&kc);
    kc.min_ttl = cfg->min_ttl;
    kc.max_ttl = cfg->max_ttl;
    kc.default_ttl = cfg->default_ttl;
    kc.kid_cooldown = cfg->kid_cooldown;
    kc.max_stale = cfg->max_stale;
    kc.wait_ms = cfg->wait_ms;
    kc.body_cap = cfg->max_bytes;
    kc.fetch = tk_fetch_https;
    kc.fetch_ud = &t->fetch;
    kc.log = cfg->log;
    kc.log_ud = cfg->log_ud;
    if (tk_keycache_new(&kc, &t->cache) != TK_OK) {
        snprintf(err, err_cap, "the issuer key cache settings are out of range (cache bounds, max bytes 64..64M)");
        tka_trust_close(t);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const tka_issuer_policy *ip = &p[i];
        struct policy *pol = &t->pol[i];
        t->n = i + 1;
        snprintf(pol->issuer, sizeof pol->issuer, "%s", ip->issuer ? ip->issuer : "");
        size_t cap = 4096 + (ip->audiences ? strlen(ip->audiences) : 0) +
                     (ip->required_claims ? strlen(ip->required_claims) : 0) +
                     (ip->scope_claims ? strlen(ip->scope_claims) : 0);
        size_t used = 0;
        pol->strs = malloc(cap);
        if (!pol->strs) {
            snprintf(err, err_cap, "out of memory");
            tka_trust_close(t);
            return -1;
        }
        const char *algs_s[MAX_ITEMS];
        long na = split(ip->audiences, pol->strs, cap, &used, pol->aud, MAX_ITEMS);
        long nr = split(ip->required_claims, pol->strs, cap, &used, pol->req, MAX_ITEMS);
        long ns = split(ip->scope_claims ? ip->scope_claims : "scope scp", pol->strs, cap, &used, pol->scope_claims, 4);
        long nal = split(ip->algorithms, pol->strs, cap, &used, algs_s, MAX_ITEMS);
        if (na < 0 || nr < 0 || ns <= 0 || nal < 0) {
            snprintf(err, err_cap,
                     "issuer %s: a list is too long (audience, required-claims, algorithms: %u items; "
                     "scope-claim: 1 to 4 names)",
                     pol->issuer, (unsigned)MAX_ITEMS);
            tka_trust_close(t);
            return -1;
        }
        pol->n_aud = (size_t)na;
        pol->n_req = (size_t)nr;
        pol->n_scope_claims = (size_t)ns;
        size_t wp = 0;
        for (size_t k = 0; k < pol->n_scope_claims; k++) {
            wp += (size_t)snprintf(pol->scope_words + wp, sizeof pol->scope_words - wp, "%s'%.20s'",
                                   k == 0 ? "" : (k + 1 == pol->n_scope_claims ? " or " : ", "), pol->scope_claims[k]);
            if (wp >= sizeof pol->scope_words) {
                wp = sizeof pol->scope_words - 1;
            }
        }
        tk_alg algs[TK_ALG_COUNT_];
        size_t n_algs = 0;
        for (long k = 0; k < nal; k++) {
            tk_alg a = tk_alg_from_name(algs_s[k], strlen(algs_s[k]));
            if (a == TK_ALG_UNSET || a == TK_ALG_HS256 || a == TK_ALG_HS384 || a == TK_ALG_HS512) {
                snprintf(err, err_cap,
                         "issuer %s: algorithms: '%.32s' is not allowed (RS256 RS384 RS512 PS256 PS384 PS512 ES256 "
                         "ES384 ES512 EdDSA; never none nor HS*, whose secret an issuer cannot publish)",
                         pol->issuer, algs_s[k]);
                tka_trust_close(t);
                return -1;
            }
            if (n_algs < TK_ALG_COUNT_) {
                algs[n_algs++] = a;
            }
        }
        snprintf(pol->subject_claim, sizeof pol->subject_claim, "%s", ip->subject_claim ? ip->subject_claim : "sub");
        snprintf(pol->typ, sizeof pol->typ, "%s", ip->require_typ ? ip->require_typ : "");
        pol->leeway = ip->leeway >= 0 ? ip->leeway : cfg->leeway;
        if (pol->leeway > TK_LIMIT_LEEWAY_MAX) {
            snprintf(err, err_cap, "issuer %s: leeway %llds is over %ds", pol->issuer, (long long)pol->leeway,
                     TK_LIMIT_LEEWAY_MAX);
            tka_trust_close(t);
            return -1;
        }
        pol->fetch = t->fetch;
        if (ip->ca_file) {
            snprintf(pol->ca_file, sizeof pol->ca_file, "%s", ip->ca_file);
            pol->fetch.ca_file = pol->ca_file;
        }
        tk_issuer_config ic;
        memset(&ic, 0, sizeof ic);
        ic.issuer = pol->issuer;
        ic.jwks_uri = ip->jwks_uri;
        ic.jwks_text = ip->jwks_text;
        ic.jwks_text_len = ip->jwks_text_len;
        ic.algs = algs;
        ic.algs_len = n_algs;
        ic.fetch_ud = &pol->fetch;
        tk_result rc = tk_keycache_add_issuer(t->cache, &ic);
        if (rc == TK_ERR_KEY && ip->jwks_text) {
            jwks_file_why(ip->jwks_text, ip->jwks_text_len, algs, n_algs, pol->issuer, err, err_cap);
            tka_trust_close(t);
            return -1;
        }
        if (rc != TK_OK) {
            snprintf(err, err_cap, "issuer %s: %s", pol->issuer,
                     rc == TK_ERR_KEY ? "its jwks-file has no usable key"
                     : rc == TK_ERR_LIMIT
                         ? "too many issuers"
                         : "refused: the issuer and jwks-uri must be https:// URLs of at most 512 bytes, "
                           "and each issuer may be trusted once");
            tka_trust_close(t);
            return -1;
        }
    }
    for (size_t i = 0; i < TRUST_THREADS && n > 0; i++) {
        if (pthread_create(&t->th[i], NULL, maintainer, t) != 0) {
            snprintf(err, err_cap, "cannot start the key set fetcher");
            tka_trust_close(t);
            return -1;
        }
        t->n_th++;
    }
    *out = t;
    return 0;
}

/* snprintf for explanations, cut at their buffer on purpose. */
static void say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static const struct policy *policy_of(const tka_trust *t, const char *iss)
{
    for (size_t i = 0; t && i < t->n; i++) {
        if (strcmp(t->pol[i].issuer, iss) == 0) {
            return &t->pol[i];
        }
    }
    return NULL;
}

/* Copies a claim into a header-safe buffer. */
static void copy_value(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in && in[i] && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[o] = '\0';
}

/* The scopes a foreign token grants, from its scope claims (strings of
 * space-separated scopes, or arrays of them), space-joined into out. */
static void granted_scopes(const struct policy *pol, const tk_token *t, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t k = 0; k < pol->n_scope_claims; k++) {
        const char *items[64];
        size_t n = tk_token_claim_strings(t, pol->scope_claims[k], items, 64);
        for (size_t i = 0; i < n && i < 64; i++) {
            size_t l = strlen(items[i]);
            if (o + l + 2 >= cap) {
                return;
            }
            if (o) {
                out[o++] = ' ';
            }
            memcpy(out + o, items[i], l);
            o += l;
            out[o] = '\0';
        }
    }
}

static int in_route(const tka_check *chk, const char *iss)
{
    if (!chk || chk->issuers_len == 0) {
        return 1;
    }
    for (size_t i = 0; i < chk->issuers_len; i++) {
        if (strcmp(chk->issuers[i], iss) == 0) {
            return 1;
        }
    }
    return 0;
}

static void route_list(const tka_check *chk, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < chk->issuers_len && o + 4 < cap; i++) {
        int w = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", chk->issuers[i]);
        if (w < 0) {
            break;
        }
        o += (size_t)w;
    }
}

static void own_identity(const tka_authority *a, const tk_token *t, tka_identity *id)
{
    id->foreign = 0;
    copy_value(id->issuer, sizeof id->issuer, a->cfg.issuer);
    copy_value(id->subject, sizeof id->subject, tk_token_claim_string(t, "sub"));
    copy_value(id->client_id, sizeof id->client_id, tk_token_claim_string(t, "client_id"));
    copy_value(id->scope, sizeof id->scope, tk_token_claim_string(t, "scope"));
}

static int validate_foreign(tka_authority *a, tka_trust *tr, const struct policy *pol, const tk_token *t,
                            const tka_check *chk, const char *default_aud, int64_t now, tk_verdict *v, tka_identity *id)
{
    const char *iss[1] = {pol->issuer};
    const char *route_aud[1] = {chk ? chk->audience : NULL};
    tk_policy p;
    tk_policy_init(&p, now);
    p.leeway = pol->leeway;
    p.issuers = iss;
    p.issuers_len = 1;
    const char *dflt[1] = {default_aud};
    if (route_aud[0]) {
        p.audiences = route_aud;
        p.audiences_len = 1;
    } else if (pol->n_aud > 0) {
        p.audiences = pol->aud;
        p.audiences_len = pol->n_aud;
    } else if (default_aud) {
        p.audiences = dflt;
        p.audiences_len = 1;
    } else {
        return 1; /* no audience: a token of this issuer would pass for any API */
    }
    p.typ = pol->typ[0] ? pol->typ : NULL;
    p.required = pol->req;
    p.required_len = pol->n_req;
    p.sigcache = a->sigcache;
    tk_result rc = tk_keycache_verify_token(tr->cache, pol->issuer, t, &p, now, v);
    if (rc != TK_OK) {
        return -1;
    }
    if (v->reason != TK_REASON_VALID) {
        return 0;
    }
    /* A jti revoked here by the operator (tokend revoke --jti) is refused
     * for a foreign token too. */
    const char *jti = tk_token_claim_string(t, "jti");
    char reason[TKS_REASON_MAX + 1] = "";
    int64_t at = 0;
    if (jti && tka_is_revoked(a, jti, NULL, reason, sizeof reason, &at, NULL)) {
        char when[32];
        tk_format_time(at, when, sizeof when);
        v->reason = TK_REASON_REVOKED;
        say(v->detail, sizeof v->detail, "jti revoked here at %s: %s (the token of %s is otherwise valid)", when,
            reason[0] ? reason : "no reason given", pol->issuer);
        return 0;
    }
    char scopes[TKS_LIST_MAX + 1];
    granted_scopes(pol, t, scopes, sizeof scopes);
    for (size_t i = 0; chk && i < chk->scopes_len; i++) {
        if (!tka_in_list(scopes, chk->scopes[i], strlen(chk->scopes[i]))) {
            v->reason = TK_REASON_INSUFFICIENT_SCOPE;
            if (scopes[0]) {
                say(v->detail, sizeof v->detail, "needs scope '%s'; this issuer puts scopes in %s, which has '%.160s'",
                    chk->scopes[i], pol->scope_words, scopes);
            } else {
                /* Where the token's scopes are, when they are in a claim the
                 * issuer's scope-claim does not name. */
                static const char *const others[] = {"scope", "scp", "roles", "scopes"};
                const char *found = NULL;
                char held[200];
                held[0] = '\0';
                for (size_t k = 0; k < 4 && !found; k++) {
                    int named = 0;
                    for (size_t c = 0; c < pol->n_scope_claims; c++) {
                        named |= strcmp(pol->scope_claims[c], others[k]) == 0;
                    }
                    const char *items[16];
                    size_t n = named ? 0 : tk_token_claim_strings(t, others[k], items, 16);
                    size_t o = 0;
                    for (size_t j = 0; j < n && j < 16; j++) {
                        int w = snprintf(held + o, sizeof held - o, "%s%s", j ? " " : "", items[j]);
                        if (w < 0 || (size_t)w >= sizeof held - o) {
                            break;
                        }
                        o += (size_t)w;
                    }
                    if (n > 0) {
                        found = others[k];
                    }
                }
                if (found) {
                    char shown[200];
                    copy_value(shown, sizeof shown, held);
                    say(v->detail, sizeof v->detail,
                        "needs scope '%s'; this issuer's scope-claim is %s, and the token has none there: it "
                        "carries its scopes in '%s' ('%s'): set scope-claim = %s in the issuer's section",
                        chk->scopes[i], pol->scope_words, found, shown, found);
                } else {
                    say(v->detail, sizeof v->detail,
                        "needs scope '%s'; this issuer puts scopes in %s, and the token has none (set "
                        "scope-claim in the issuer's section if its scopes travel in another claim)",
                        chk->scopes[i], pol->scope_words);
                }
            }
            return 0;
        }
    }
    id->foreign = 1;
    copy_value(id->issuer, sizeof id->issuer, pol->issuer);
    copy_value(id->subject, sizeof id->subject, tk_token_claim_string(t, pol->subject_claim));
    static const char *const cid_claims[] = {"client_id", "azp", "appid", "cid"};
    id->client_id[0] = '\0';
    for (size_t i = 0; i < 4 && !id->client_id[0]; i++) {
        copy_value(id->client_id, sizeof id->client_id, tk_token_claim_string(t, cid_claims[i]));
    }
    copy_value(id->scope, sizeof id->scope, scopes);
    return 0;
}

/* A token another issuer made fails on our keys: when its iss names
 * another issuer, that is the reason to give. */
static void untrusted_issuer(tka_authority *a, const char *tok, size_t len, tk_verdict *v)
{
    tk_token *t = NULL;
    tk_verdict pv;
    if (tk_token_parse(tok, len, NULL, &t, &pv) != TK_OK || !t) {
        return;
    }
    const char *iss = tk_token_claim_string(t, "iss");
    if (iss && strcmp(iss, a->cfg.issuer) != 0) {
        v->reason = TK_REASON_WRONG_ISSUER;
        say(v->detail, sizeof v->detail,
            "the token says it was issued by %.120s (not verified), which is not trusted here; this server "
            "trusts only its own tokens (%.120s): to accept it, start tokend serve with --trust-issuer %.120s",
            iss, a->cfg.issuer, iss);
    }
    tk_token_free(t);
}

int tka_validate_any(tka_authority *a, tka_trust *tr, const char *tok, size_t len, const tka_check *chk,
                     const char *default_aud, int64_t now, tk_verdict *v, tka_identity *id)
{
    memset(id, 0, sizeof *id);
    memset(v, 0, sizeof *v);
    v->reason = TK_REASON_UNAVAILABLE;
    size_t n_trusted = tr ? tr->n : 0;
    tka_check own_chk;
    if (chk) {
        own_chk = *chk;
    } else {
        memset(&own_chk, 0, sizeof own_chk);
    }
    if (!own_chk.audience) {
        own_chk.audience = default_aud;
    }
    if (n_trusted == 0 && own_chk.issuers_len == 0) {
        /* only our own tokens: the fast path, as before */
        if (!own_chk.audience) {
            return 1;
        }
        tk_token *t = NULL;
        if (tka_validate(a, tok, len, &own_chk, now, v, &t) != 0) {
            return -1;
        }
        if (v->reason == TK_REASON_VALID && t) {
            own_identity(a, t, id);
        }
        tk_token_free(t);
        if (v->reason == TK_REASON_UNKNOWN_KEY || v->reason == TK_REASON_BAD_SIGNATURE ||
            v->reason == TK_REASON_ALG_NOT_ALLOWED) {
            untrusted_issuer(a, tok, len, v); /* say "another issuer" when that is why */
        }
        return 0;
    }
    tk_token *t = NULL;
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result prc = tk_token_parse_with(tok, len, NULL, a->ring->verify, &t, v);
    pthread_rwlock_unlock(&a->ring_lock);
    if (prc != TK_OK) {
        return -1;
    }
    if (!t) {
        return 0; /* not a JWS: v says why */
    }
    int ret = 0;
    const char *iss = tk_token_claim_string(t, "iss");
    int ours = !iss || strcmp(iss, a->cfg.issuer) == 0;
    if (iss && !in_route(chk, iss)) {
        char lst[512];
        route_list(chk, lst, sizeof lst);
        v->reason = TK_REASON_WRONG_ISSUER;
        say(v->detail, sizeof v->detail,
            "the token says it was issued by %.120s (not verified); this route accepts tokens of %.200s only", iss,
            lst);
        goto out;
    }
    if (ours) {
        if (!own_chk.audience) {
            ret = 1;
            goto out;
        }
        ret = tka_validate_parsed(a, t, &own_chk, now, v);
        if (ret == 0 && v->reason == TK_REASON_VALID) {
            own_identity(a, t, id);
        }
        goto out;
    }
    const struct policy *pol = policy_of(tr, iss);
    if (!pol) {
        v->reason = TK_REASON_WRONG_ISSUER;
        char head[TK_LIMIT_DETAIL_LEN];
        say(head, sizeof head,
            "the token says it was issued by %.120s (not verified), which is not trusted here; trusted: %.120s "
            "(tokend's own)",
            iss, a->cfg.issuer);
        /* as many trusted issuers as fit, whole, then how many more */
        size_t used = strlen(head);
        size_t shown = 0;
        for (size_t i = 0; i < tr->n; i++) {
            size_t l = strlen(tr->pol[i].issuer);
            if (used + 2 + l + 16 >= sizeof head) {
                break;
            }
            say(head + used, sizeof head - used, ", %s", tr->pol[i].issuer);
            used += 2 + l;
            shown++;
        }
        if (shown < tr->n) {
            say(head + used, sizeof head - used, " and %zu more", tr->n - shown);
        }
        memcpy(v->detail, head, sizeof v->detail < sizeof head ? sizeof v->detail : sizeof head);
        v->detail[sizeof v->detail - 1] = '\0';
        goto out;
    }
    ret = validate_foreign(a, tr, pol, t, chk, default_aud, now, v, id);
out:
    tk_token_free(t);
    return ret;
}
