/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_verify_cache.c — validation with the verified-signature cache gives
 * the verdicts it gives without (issue 13 section 1), differentially: one
 * long mixed stream through the authority (tka_validate, and
 * tka_validate_any with trusted issuers), each request answered twice, with
 * the authority's cache and without it, in random order, on the same state.
 * The stream moves a virtual clock (tokens expire mid-stream), asks for
 * wrong audiences and missing scopes, revokes tokens, alters one signature
 * byte of tokens the cache holds, rotates the key ring twice, deletes a
 * retired key whose tokens are still cached, and swaps a trusted issuer's
 * key set for one where its kid names another key. Reason, detail, return
 * and identity must be byte-identical every time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "authority/internal.h" /* a->sigcache: the same authority with and without it */

#define T0 1800000000
#define POOL 48
#define EVENTS 5000

static char dir[64];
static char db_url[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tokend-vcache-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db_url, sizeof db_url, "sqlite://%s/t.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

struct tok {
    char *text;
    char jti[48];
    int foreign;
};

struct stream {
    tka_authority *a;
    tka_trust *tr;
    struct tok pool[POOL];
    size_t n;
    size_t compared;
    size_t seen[TK_REASON_COUNT_ + 1];
    uint64_t tamper_hits; /* cache hits during a tampered token's cached call */
};

static void add(struct stream *s, char *text, const char *jti, int foreign)
{
    size_t at = s->n < POOL ? s->n++ : rnd(POOL);
    if (s->pool[at].text) {
        tk_free(s->pool[at].text);
    }
    s->pool[at].text = text;
    snprintf(s->pool[at].jti, sizeof s->pool[at].jti, "%s", jti);
    s->pool[at].foreign = foreign;
}

static uint64_t hits(tka_authority *a)
{
    tka_counters c;
    tka_counters_get(a, &c);
    return c.verify_cache_hits;
}

/* One request, answered with the cache and without, in random order. */
static void compare(struct stream *s, const char *tok, const char *aud, const char *scope, int any, int64_t now,
                    int tampered)
{
    tk_sigcache *cache = s->a->sigcache;
    const char *sc[1] = {scope};
    tka_check chk = {aud, sc, scope ? 1u : 0u, NULL, 0};
    tk_verdict v[2];
    tka_identity id[2];
    int r[2];
    int first = (int)rnd(2);
    for (int k = 0; k < 2; k++) {
        int with = k == first;
        s->a->sigcache = with ? cache : NULL;
        uint64_t h0 = hits(s->a);
        memset(&v[with], 0xa5, sizeof v[with]);
        memset(&id[with], 0, sizeof id[with]);
        if (any) {
            r[with] = tka_validate_any(s->a, s->tr, tok, strlen(tok), &chk, "orders-api", now, &v[with], &id[with]);
        } else {
            r[with] = tka_validate(s->a, tok, strlen(tok), &chk, now, &v[with], NULL);
        }
        s->a->sigcache = cache;
        if (with && tampered) {
            s->tamper_hits += hits(s->a) - h0;
        }
    }
    assert_int_equal(r[0], r[1]);
    if (r[0] == 0) {
        if (v[0].reason != v[1].reason || strcmp(v[0].detail, v[1].detail) != 0) {
            fail_msg("verdicts differ at %lld: without cache %s '%s', with %s '%s'", (long long)now,
                     tk_reason_code(v[0].reason), v[0].detail, tk_reason_code(v[1].reason), v[1].detail);
        }
        assert_memory_equal(&id[0], &id[1], sizeof id[0]);
        s->seen[v[0].reason < TK_REASON_COUNT_ ? v[0].reason : TK_REASON_COUNT_]++;
    }
    s->compared++;
}

static char *alter_signature(const char *tok)
{
    char *t = strdup(tok);
    assert_non_null(t);
    char *sig = strrchr(t, '.') + 1;
    size_t k = rnd((unsigned)strlen(sig) - 1); /* not the last: its unused bits must stay zero */
    sig[k] = sig[k] == 'B' ? 'C' : 'B';
    return t;
}

static char *foreign_token(const tk_key *k, int n, int64_t now, char *jti, size_t jti_cap)
{
    snprintf(jti, jti_cap, "fj-%d", n);
    char claims[512];
    snprintf(claims, sizeof claims,
             "{\"iss\":\"https://ext.test/\",\"sub\":\"u%d\",\"aud\":\"api://orders\",\"exp\":%lld,\"iat\":%lld,"
             "\"azp\":\"spa\",\"jti\":\"%s\",\"scp\":\"orders:read\"}",
             n, (long long)(now + 120 + rnd(300)), (long long)now, jti);
    char *tok = NULL;
    size_t tl = 0;
    assert_int_equal(tk_sign(k, "JWT", (const unsigned char *)claims, strlen(claims), &tok, &tl), TK_OK);
    return tok;
}

static tka_trust *trust_of(const tk_key *const *keys, size_t n)
{
    char jwks[4096];
    size_t o = (size_t)snprintf(jwks, sizeof jwks, "{\"keys\":[");
    for (size_t i = 0; i < n; i++) {
        char *jwk = NULL;
        assert_int_equal(tk_key_to_jwk(keys[i], 0, &jwk), TK_OK);
        o += (size_t)snprintf(jwks + o, sizeof jwks - o, "%s%s", i ? "," : "", jwk);
        tk_free(jwk);
    }
    snprintf(jwks + o, sizeof jwks - o, "]}");
    tka_trust_config tc;
    tka_trust_config_defaults(&tc);
    tka_issuer_policy pol;
    memset(&pol, 0, sizeof pol);
    pol.issuer = "https://ext.test/";
    pol.jwks_text = jwks;
    pol.jwks_text_len = strlen(jwks);
    pol.audiences = "api://orders";
    pol.scope_claims = "scp";
    pol.leeway = -1;
    tka_trust *tr = NULL;
    char err[256];
    if (tka_trust_open(&tc, &pol, 1, &tr, err, sizeof err) != 0) {
        fail_msg("tka_trust_open: %s", err);
    }
    return tr;
}

struct kids {
    char retired[TKS_ID_MAX + 1];
};

static int find_retired(const tks_key_row *k, void *ud)
{
    struct kids *r = ud;
    if (k->state == TKS_KEY_RETIRED && strcmp(k->alg, "ES256") == 0) {
        snprintf(r->retired, sizeof r->retired, "%s", k->kid);
    }
    return 0;
}

static void test_differential(void **state)
{
    (void)state;
    char err[256];
    tks_store *st = NULL;
    assert_int_equal(tks_open(db_url, &st, err, sizeof err), TKS_OK);
    tka_config c;
    tka_config_defaults(&c);
    c.issuer = "https://auth.test";
    memset(c.master_key, 0x5c, sizeof c.master_key);
    c.rotate_every = 0;
    c.max_stale = INT64_MAX / 4;
    c.jwks_max_age = 0;
    c.id_token_alg = TK_ALG_UNSET;
    c.access_ttl = 300;
    c.max_ttl = 600;
    c.verify_cache = 64; /* small: hits, misses and evictions all happen */
    struct stream s;
    memset(&s, 0, sizeof s);
    if (tka_open(st, &c, T0, &s.a, err, sizeof err) != 0) {
        fail_msg("tka_open: %s", err);
    }
    assert_non_null(s.a->sigcache);
    tks_client svc, brief;
    char secret[TKA_SECRET_TEXT_LEN];
    assert_int_equal(tka_client_create(s.a, "svc", "svc", "orders:read orders:write", "orders-api billing-api", 0, T0,
                                       &svc, secret, err, sizeof err),
                     0);
    assert_int_equal(
        tka_client_create(s.a, "brief", "brief", "orders:read", "orders-api", 30, T0, &brief, secret, err, sizeof err),
        0);
    tk_key *fa = NULL, *fb = NULL, *fc = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "ext1", &fa), TK_OK);
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "ext1", &fb), TK_OK); /* ext1 again, another key */
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "ext2", &fc), TK_OK);
    const tk_key *set1[2] = {fa, fc};
    const tk_key *set2[2] = {fb, fc};
    tka_trust *tr1 = trust_of(set1, 2), *tr2 = trust_of(set2, 2);
    s.tr = tr1;

    static const char *const auds[] = {"orders-api", "orders-api", "orders-api", "billing-api", "other-api", NULL};
    static const char *const scopes[] = {NULL, NULL, "orders:read", "orders:write", "admin"};
    int64_t now = T0;
    int foreign_n = 0;
    for (int ev = 0; ev < EVENTS; ev++) {
        now += rnd(3);
        unsigned op = rnd(100);
        if (ev == 1200 || ev == 2600) {
            assert_int_equal(tka_rotate(s.a, now, err, sizeof err), 0);
        }
        if (ev == 1300) {
            /* The key retired at 1200 leaves the ring while tokens it signed
             * are alive and cached: from now on they are unknown_key. */
            struct kids k;
            memset(&k, 0, sizeof k);
            assert_int_equal(tka_keys_list(s.a, find_retired, &k), 0);
            assert_true(k.retired[0] != '\0');
            assert_int_equal(tks_key_delete(st, k.retired), TKS_OK);
            assert_int_equal(tka_ring_load(s.a, now, err, sizeof err), 0);
        }
        if (ev == 3400) {
            s.tr = tr2; /* the issuer's kid ext1 now names another key */
        }
        if (ev % 100 == 0) {
            (void)tka_maintain(s.a, now);
        }
        if (s.n < 8 || op < 6) {
            tka_issued is;
            char why[128];
            const tks_client *cl = rnd(4) == 0 ? &brief : &svc;
            const char *aud = cl == &svc && rnd(3) == 0 ? "billing-api" : NULL;
            assert_int_equal(tka_issue_client_credentials(s.a, cl, NULL, aud, now, &is, why, sizeof why), TKA_GRANT_OK);
            add(&s, is.access_token, is.jti, 0);
            is.access_token = NULL;
            tka_issued_clear(&is);
            if (rnd(2) == 0) {
                char jti[48];
                char *f = foreign_token(s.tr == tr1 && rnd(2) ? fa
                                        : rnd(2)              ? fb
                                                              : fc,
                                        foreign_n++, now, jti, sizeof jti);
                add(&s, f, jti, 1);
            }
            continue;
        }
        const struct tok *t = &s.pool[rnd((unsigned)s.n)];
        if (op < 9) {
            /* revoked mid-stream, while the cache may hold it */
            assert_int_equal(tka_revoke(s.a, TKS_REVOKE_JTI, t->jti, rnd(2) ? "admin" : "client", now, now + 900), 0);
            continue;
        }
        const char *aud = t->foreign && rnd(2) ? NULL : auds[rnd(6)];
        const char *scope = t->foreign ? (rnd(2) ? "orders:read" : NULL) : scopes[rnd(5)];
        if (op < 24) {
            /* one signature byte of a token the cache may hold */
            char *bad = alter_signature(t->text);
            compare(&s, bad, aud, scope, 1, now, 1);
            compare(&s, bad, aud, scope, 0, now, 1);
            free(bad);
            continue;
        }
        /* validated twice in a row too, so that the second one can hit */
        int any = t->foreign || rnd(2);
        compare(&s, t->text, aud, scope, any, now, 0);
        if (rnd(2)) {
            compare(&s, t->text, aud, scope, any, now + rnd(2), 0);
        }
    }

    tka_counters ctr;
    tka_counters_get(s.a, &ctr);
    print_message("%zu requests compared; cache: %llu hits, %llu misses, %llu entries\n", s.compared,
                  (unsigned long long)ctr.verify_cache_hits, (unsigned long long)ctr.verify_cache_misses,
                  (unsigned long long)ctr.verify_cache_entries);
    assert_true(s.compared > 5000);
    assert_true(ctr.verify_cache_hits > 500);
    assert_true(ctr.verify_cache_misses > 500);
    assert_true(ctr.verify_cache_entries <= 64);
    assert_int_equal(s.tamper_hits, 0);
    /* the stream was mixed: every kind of answer it aims at came up */
    const tk_reason want[] = {
        TK_REASON_VALID,   TK_REASON_EXPIRED,       TK_REASON_WRONG_AUDIENCE, TK_REASON_INSUFFICIENT_SCOPE,
        TK_REASON_REVOKED, TK_REASON_BAD_SIGNATURE, TK_REASON_UNKNOWN_KEY};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (s.seen[want[i]] == 0) {
            fail_msg("the stream never produced %s", tk_reason_code(want[i]));
        }
    }
    for (size_t i = 0; i < s.n; i++) {
        tk_free(s.pool[i].text);
    }
    tka_trust_close(tr1);
    tka_trust_close(tr2);
    tk_key_free(fa);
    tk_key_free(fb);
    tk_key_free(fc);
    tka_close(s.a);
    tks_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_differential, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
