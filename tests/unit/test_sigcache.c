/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sigcache.c — the verified-signature cache (tk_sigcache): a hit
 * skips only the signature check, so every verdict is the one without the
 * cache; a token differing in one signature byte never hits; a kid that
 * names another key, or a key that left the set, is decided on the set of
 * the call; failures are never stored; memory is bounded; threads share it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tokend/tokend.h"

#define NOW 1800000000
#define EXP (NOW + 900)

static const char *const ISS[1] = {"https://auth.test"};
static const char *const AUD[1] = {"orders-api"};
static const char *const OTHER_AUD[1] = {"billing-api"};

static void policy(tk_policy *p, int64_t now, tk_sigcache *c)
{
    tk_policy_init(p, now);
    p->issuers = ISS;
    p->issuers_len = 1;
    p->audiences = AUD;
    p->audiences_len = 1;
    p->typ = "at+jwt";
    p->sigcache = c;
}

static char *sign(const tk_key *k, const char *jti, int64_t exp)
{
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"iss\":\"https://auth.test\",\"sub\":\"svc\",\"aud\":\"orders-api\",\"exp\":%lld,\"iat\":%d,"
             "\"jti\":\"%s\"}",
             (long long)exp, NOW - 10, jti);
    char *tok = NULL;
    size_t n = 0;
    assert_int_equal(tk_sign(k, "at+jwt", (const unsigned char *)claims, strlen(claims), &tok, &n), TK_OK);
    return tok;
}

/* The public half of k in a key set of its own. */
static tk_keyset *set_of(const tk_key *k)
{
    char *jwk = NULL;
    assert_int_equal(tk_key_to_jwk(k, 0, &jwk), TK_OK);
    tk_key *pub = NULL;
    assert_int_equal(tk_key_from_jwk(jwk, strlen(jwk), TK_ALG_UNSET, &pub), TK_OK);
    tk_free(jwk);
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    assert_int_equal(tk_keyset_add(ks, pub), TK_OK);
    return ks;
}

/* One signature character changed, still canonical base64url. */
static char *alter_signature(const char *tok)
{
    char *t = strdup(tok);
    assert_non_null(t);
    char *sig = strrchr(t, '.') + 1;
    size_t k = strlen(sig) / 2;
    sig[k] = sig[k] == 'B' ? 'C' : 'B';
    return t;
}

/* Verifies with and without the cache: the same result and verdict. */
static tk_reason both(const char *tok, const tk_keyset *ks, int64_t now, tk_sigcache *c, const char *const *aud,
                      tk_verdict *out)
{
    tk_policy p0, p1;
    policy(&p0, now, NULL);
    policy(&p1, now, c);
    if (aud) {
        p0.audiences = p1.audiences = aud;
    }
    tk_verdict v0, v1;
    tk_result r0 = tk_verify(tok, strlen(tok), ks, &p0, NULL, &v0, NULL);
    tk_result r1 = tk_verify(tok, strlen(tok), ks, &p1, NULL, &v1, NULL);
    assert_int_equal(r0, r1);
    assert_int_equal(v0.reason, v1.reason);
    assert_string_equal(v0.detail, v1.detail);
    if (out) {
        *out = v1;
    }
    return v1.reason;
}

static tk_sigcache_stats stats(const tk_sigcache *c)
{
    tk_sigcache_stats st;
    tk_sigcache_stats_get(c, &st);
    return st;
}

static void test_new_bounds(void **state)
{
    (void)state;
    tk_sigcache *c = (tk_sigcache *)(uintptr_t)1;
    assert_int_equal(tk_sigcache_new(0, &c), TK_ERR_ARG);
    assert_null(c);
    assert_int_equal(tk_sigcache_new(TK_LIMIT_SIGCACHE_ENTRIES + 1u, &c), TK_ERR_ARG);
    assert_int_equal(tk_sigcache_new(1, NULL), TK_ERR_ARG);
    assert_int_equal(tk_sigcache_new(1, &c), TK_OK);
    assert_int_equal(stats(c).capacity, 8); /* one set */
    tk_sigcache_free(c);
    assert_int_equal(tk_sigcache_new(100000, &c), TK_OK);
    assert_int_equal(stats(c).capacity, 100000);
    tk_sigcache_free(c);
    tk_sigcache_free(NULL);
    tk_sigcache_stats st;
    tk_sigcache_stats_get(NULL, &st);
    assert_int_equal(st.entries, 0);
    tk_sigcache_purge(NULL, NOW);
}

/* A repeated token hits; the hit changes no verdict at any time of its
 * life; one altered signature byte never hits. For each asymmetric alg. */
static void test_hit_and_tamper(void **state)
{
    (void)state;
    const tk_alg algs[] = {TK_ALG_ES256, TK_ALG_EDDSA, TK_ALG_PS256, TK_ALG_RS256};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        tk_sigcache *c = NULL;
        assert_int_equal(tk_sigcache_new(64, &c), TK_OK);
        tk_key *k = NULL;
        assert_int_equal(tk_key_generate(algs[i], "k1", &k), TK_OK);
        tk_keyset *ks = set_of(k);
        char *tok = sign(k, "j1", EXP);
        char *bad = alter_signature(tok);

        assert_int_equal(both(tok, ks, NOW, c, NULL, NULL), TK_REASON_VALID);
        assert_int_equal(stats(c).misses, 1);
        assert_int_equal(stats(c).entries, 1);
        assert_int_equal(both(tok, ks, NOW + 1, c, NULL, NULL), TK_REASON_VALID);
        assert_int_equal(stats(c).hits, 1);
        /* Attack: a token whose signature differs in one byte from a cached
         * one must not ride on its entry. */
        uint64_t hits = stats(c).hits;
        assert_int_equal(both(bad, ks, NOW + 1, c, NULL, NULL), TK_REASON_BAD_SIGNATURE);
        assert_int_equal(stats(c).hits, hits);
        assert_int_equal(stats(c).entries, 1);
        /* claims are still checked on a hit */
        assert_int_equal(both(tok, ks, NOW + 1, c, OTHER_AUD, NULL), TK_REASON_WRONG_AUDIENCE);
        assert_int_equal(both(tok, ks, EXP + 60, c, NULL, NULL), TK_REASON_EXPIRED);
        assert_int_equal(both(tok, ks, EXP + 59, c, NULL, NULL), TK_REASON_VALID);
        assert_int_equal(both(tok, ks, NOW - 10 - 61, c, NULL, NULL), TK_REASON_ISSUED_IN_FUTURE);
        tk_free(tok);
        free(bad);
        tk_keyset_free(ks);
        tk_key_free(k);
        tk_sigcache_free(c);
    }
}

/* HMAC tokens are never cached: the lookup would cost what the check does. */
static void test_hmac_not_cached(void **state)
{
    (void)state;
    tk_sigcache *c = NULL;
    assert_int_equal(tk_sigcache_new(64, &c), TK_OK);
    tk_key *k = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_HS256, "h1", &k), TK_OK);
    tk_keyset *ks = NULL;
    assert_int_equal(tk_keyset_new(&ks), TK_OK);
    char *jwk = NULL;
    assert_int_equal(tk_key_to_jwk(k, 1, &jwk), TK_OK);
    tk_key *v = NULL;
    assert_int_equal(tk_key_from_jwk(jwk, strlen(jwk), TK_ALG_UNSET, &v), TK_OK);
    tk_free(jwk);
    assert_int_equal(tk_keyset_add(ks, v), TK_OK);
    char *tok = sign(k, "j1", EXP);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(both(tok, ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    }
    tk_sigcache_stats st = stats(c);
    assert_true(st.hits == 0 && st.misses == 0 && st.entries == 0);
    tk_free(tok);
    tk_keyset_free(ks);
    tk_key_free(k);
    tk_sigcache_free(c);
}

/* The key set of each call decides which key a kid names: the same kid
 * now naming another key misses (bad_signature); a set without the kid is
 * unknown_key; the same key loaded again (a reloaded ring) still hits. */
static void test_key_changes(void **state)
{
    (void)state;
    tk_sigcache *c = NULL;
    assert_int_equal(tk_sigcache_new(64, &c), TK_OK);
    tk_key *k = NULL, *other = NULL, *k2 = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "k1", &k), TK_OK);
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "k1", &other), TK_OK); /* same kid, another key */
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "k2", &k2), TK_OK);
    tk_keyset *ks = set_of(k);
    tk_keyset *reloaded = set_of(k);
    tk_keyset *swapped = set_of(other);
    tk_keyset *gone = set_of(k2);
    char *tok = sign(k, "j1", EXP);
    assert_int_equal(both(tok, ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(both(tok, ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(stats(c).hits, 1);
    assert_int_equal(both(tok, swapped, NOW, c, NULL, NULL), TK_REASON_BAD_SIGNATURE);
    assert_int_equal(stats(c).hits, 1);
    tk_verdict v;
    assert_int_equal(both(tok, gone, NOW, c, NULL, &v), TK_REASON_UNKNOWN_KEY);
    assert_int_equal(both(tok, reloaded, NOW, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(stats(c).hits, 2);
    /* tk_token_verify (a token parsed first) uses the cache alike */
    tk_token *t = NULL;
    assert_int_equal(tk_token_parse(tok, strlen(tok), NULL, &t, &v), TK_OK);
    tk_policy p;
    policy(&p, NOW, c);
    assert_int_equal(tk_token_verify(t, reloaded, &p, &v), TK_OK);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_int_equal(stats(c).hits, 3);
    assert_int_equal(tk_token_verify(t, swapped, &p, &v), TK_OK);
    assert_int_equal(v.reason, TK_REASON_BAD_SIGNATURE);
    tk_token_free(t);
    tk_free(tok);
    tk_keyset_free(ks);
    tk_keyset_free(reloaded);
    tk_keyset_free(swapped);
    tk_keyset_free(gone);
    tk_key_free(k);
    tk_key_free(other);
    tk_key_free(k2);
    tk_sigcache_free(c);
}

/* Only VALID verdicts are stored; an entry lasts until exp + leeway. */
static void test_failures_not_cached_and_expiry(void **state)
{
    (void)state;
    tk_sigcache *c = NULL;
    assert_int_equal(tk_sigcache_new(64, &c), TK_OK);
    tk_key *k = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "k1", &k), TK_OK);
    tk_keyset *ks = set_of(k);
    char *tok = sign(k, "j1", EXP);
    assert_int_equal(both(tok, ks, NOW, c, OTHER_AUD, NULL), TK_REASON_WRONG_AUDIENCE);
    assert_int_equal(both(tok, ks, EXP + 60, c, NULL, NULL), TK_REASON_EXPIRED);
    assert_int_equal(stats(c).entries, 0);
    assert_int_equal(stats(c).hits, 0);
    assert_int_equal(both(tok, ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(stats(c).entries, 1);
    /* the last second it is valid hits; purged after, and a miss */
    assert_int_equal(both(tok, ks, EXP + 59, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(stats(c).hits, 1);
    tk_sigcache_purge(c, EXP + 59);
    assert_int_equal(stats(c).entries, 1);
    tk_sigcache_purge(c, EXP + 60);
    assert_int_equal(stats(c).entries, 0);
    assert_int_equal(both(tok, ks, EXP + 59, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(stats(c).hits, 1);
    tk_free(tok);
    tk_keyset_free(ks);
    tk_key_free(k);
    tk_sigcache_free(c);
}

/* Bounded: a cache of 8 slots holds at most 8 of 200 tokens, and answers
 * every one of them right. */
static void test_bounded(void **state)
{
    (void)state;
    tk_sigcache *c = NULL;
    assert_int_equal(tk_sigcache_new(8, &c), TK_OK);
    tk_key *k = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_EDDSA, "k1", &k), TK_OK);
    tk_keyset *ks = set_of(k);
    char *toks[200];
    for (int i = 0; i < 200; i++) {
        char jti[16];
        snprintf(jti, sizeof jti, "j%d", i);
        toks[i] = sign(k, jti, EXP);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 200; i++) {
            assert_int_equal(both(toks[(i * 7 + round) % 200], ks, NOW, c, NULL, NULL), TK_REASON_VALID);
            assert_true(stats(c).entries <= 8);
        }
    }
    assert_int_equal(stats(c).entries, 8);
    /* a hot token stays (CLOCK keeps what is used) */
    uint64_t h0 = stats(c).hits;
    assert_int_equal(both(toks[0], ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    assert_int_equal(both(toks[0], ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    for (int i = 1; i < 5; i++) {
        assert_int_equal(both(toks[i], ks, NOW, c, NULL, NULL), TK_REASON_VALID);
        assert_int_equal(both(toks[0], ks, NOW, c, NULL, NULL), TK_REASON_VALID);
    }
    assert_true(stats(c).hits >= h0 + 5);
    for (int i = 0; i < 200; i++) {
        tk_free(toks[i]);
    }
    tk_keyset_free(ks);
    tk_key_free(k);
    tk_sigcache_free(c);
}

struct worker {
    const tk_keyset *ks;
    tk_sigcache *c;
    char **toks;
    char **bad;
    int n;
    int seed;
    int wrong;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    tk_policy p;
    policy(&p, NOW, w->c);
    for (int i = 0; i < 3000; i++) {
        int j = (i * 13 + w->seed) % w->n;
        int tamper = i % 5 == 0;
        const char *t = tamper ? w->bad[j] : w->toks[j];
        tk_verdict v;
        if (tk_verify(t, strlen(t), w->ks, &p, NULL, &v, NULL) != TK_OK ||
            v.reason != (tamper ? TK_REASON_BAD_SIGNATURE : TK_REASON_VALID)) {
            w->wrong++;
        }
    }
    return NULL;
}

/* Threads sharing a small cache (inserts and lookups racing in each set):
 * never a wrong verdict. */
static void test_threads(void **state)
{
    (void)state;
    tk_sigcache *c = NULL;
    assert_int_equal(tk_sigcache_new(16, &c), TK_OK);
    tk_key *k = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_EDDSA, "k1", &k), TK_OK);
    tk_keyset *ks = set_of(k);
    enum { N = 24, T = 4 };
    char *toks[N], *bad[N];
    for (int i = 0; i < N; i++) {
        char jti[16];
        snprintf(jti, sizeof jti, "j%d", i);
        toks[i] = sign(k, jti, EXP);
        bad[i] = alter_signature(toks[i]);
    }
    struct worker w[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){ks, c, toks, bad, N, i * 5, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].wrong, 0);
    }
    tk_sigcache_stats st = stats(c);
    assert_true(st.hits > 0);
    assert_true(st.entries <= 16);
    for (int i = 0; i < N; i++) {
        tk_free(toks[i]);
        free(bad[i]);
    }
    tk_keyset_free(ks);
    tk_key_free(k);
    tk_sigcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bounds),
        cmocka_unit_test(test_hit_and_tamper),
        cmocka_unit_test(test_hmac_not_cached),
        cmocka_unit_test(test_key_changes),
        cmocka_unit_test(test_failures_not_cached_and_expiry),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
