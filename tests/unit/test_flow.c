/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_flow.c — user sign-in in the authority: users and Argon2id, sign-in
 * throttling, sessions and their timeouts, the authorization request
 * checks, single-use codes with PKCE, refresh token rotation, reuse
 * detection, concurrent use, and logout revoking everything of a sign-in.
 */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "authority/authority.h"
#include "pgtest.h" /* tkt_store_url: a fresh PostgreSQL store under with_postgres.sh */

#define T0 1800000000

static char dir[64];
static char db_url[512];
static tks_store *store;
static tka_authority *auth;
static tks_client spa, svc;
static char svc_secret[TKA_SECRET_TEXT_LEN];
static tka_config base_cfg;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tokend-flow-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sqlite_url[128], err[512];
    snprintf(sqlite_url, sizeof sqlite_url, "sqlite://%s/t.db", dir);
    /* On PostgreSQL under tests/pg/with_postgres.sh (ctest unit/test_flow_pg). */
    if (tkt_store_url(db_url, sizeof db_url, sqlite_url, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(tks_open(db_url, &store, err, sizeof err), TKS_OK);
    tka_config c;
    tka_config_defaults(&c);
    c.issuer = "https://auth.test";
    memset(c.master_key, 7, sizeof c.master_key);
    c.rotate_every = 0;
    c.max_stale = INT64_MAX / 4;   /* a virtual clock, no maintenance: never stale here */
    c.id_token_alg = TK_ALG_ES256; /* ID tokens from the one ES256 ring: RSA keygen is slow under ASan */
    base_cfg = c;
    if (tka_open(store, &c, T0, &auth, err, sizeof err) != 0) {
        fail_msg("tka_open: %s", err);
    }
    char secret[TKA_SECRET_TEXT_LEN];
    assert_int_equal(tka_client_create_ex(auth, NULL, "spa", "orders:read orders:write", "orders-api", 0,
                                          "https://app.test/cb http://127.0.0.1:9999/cb", 1, NULL, T0, &spa, secret,
                                          err, sizeof err),
                     0);
    assert_string_equal(secret, "");
    assert_int_equal(tka_client_create_ex(auth, NULL, "svc", "orders:read", "orders-api", 0, "", 0, NULL, T0, &svc,
                                          svc_secret, err, sizeof err),
                     0);
    assert_int_equal(tka_user_create(auth, "alice", "correct horse", 13, T0, err, sizeof err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tka_close(auth);
    tks_close(store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A verifier and its S256 challenge, computed independently:
 * printf %s VERIFIER | openssl dgst -sha256 -binary | basenc --base64url */
static const char VERIFIER[] = "dBjftJeZ4CVP-mJ92K1bZ2Z3Fuq4zlEvXKKSyyOkUHU";
static const char CHALLENGE[] = "aybhzmJp0vGYZpbGuqUv9ihvYd3v5CbsGtKVpQYuwiY";

static tks_session sign_in(int64_t now, char cookie[TKA_COOKIE_LEN])
{
    tks_user u;
    int64_t wait = 0;
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.0.0.1", now, &u, &wait), TKA_LOGIN_OK);
    char sid[TKS_SID_MAX + 1];
    assert_int_equal(tka_session_create(auth, "alice", now, cookie, sid), 0);
    tks_session se;
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), now, &se), TKA_SESSION_OK);
    assert_string_equal(se.sid, sid);
    return se;
}

static void code_for(const tks_session *se, int64_t now, char code[TKA_CODE_LEN])
{
    tka_authz_request r = {"spa",  "https://app.test/cb",
                           "code", "orders:read",
                           "xyz",  CHALLENGE,
                           "S256", NULL,
                           NULL,   NULL,
                           NULL,   NULL,
                           NULL,   NULL};
    tks_client c;
    char redirect[TKS_URI_MAX + 1], scope[TKS_LIST_MAX + 1], why[200];
    assert_int_equal(tka_authorize_check(auth, &r, &c, redirect, scope, why, sizeof why), TKA_AZ_OK);
    assert_int_equal(tka_code_issue(auth, &c, se, redirect, CHALLENGE, scope, NULL, now, code), 0);
}

static void test_users_and_login(void **state)
{
    (void)state;
    char err[256];
    tks_user u;
    int64_t wait = 0;
    assert_int_not_equal(tka_user_create(auth, "alice", "another pass", 12, T0, err, sizeof err), 0);
    assert_int_not_equal(tka_user_create(auth, "bob", "short", 5, T0, err, sizeof err), 0);
    assert_int_not_equal(tka_user_create(auth, "b o b", "long enough", 11, T0, err, sizeof err), 0);
    tks_user stored;
    assert_int_equal(tks_user_get(store, "alice", &stored), TKS_OK);
    assert_int_equal(strncmp(stored.pwhash, "$argon2id$", 10), 0);
    assert_null(strstr(stored.pwhash, "correct horse"));
    /* Unknown user and wrong password: the same answer. */
    assert_int_equal(tka_user_login(auth, "alice", 5, "wrong horse", 11, "10.1.0.1", T0, &u, &wait), TKA_LOGIN_BAD);
    assert_int_equal(tka_user_login(auth, "mallory", 7, "wrong horse", 11, "10.1.0.2", T0, &u, &wait), TKA_LOGIN_BAD);
    /* Throttling per (account, address): after 6 failures from 10.2.0.1
     * the right password waits there... */
    for (int i = 0; i < 6; i++) {
        (void)tka_user_login(auth, "alice", 5, "nope nope", 9, "10.2.0.1", T0 + 10, &u, &wait);
    }
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.2.0.1", T0 + 10, &u, &wait),
                     TKA_LOGIN_THROTTLED);
    assert_true(wait >= 1);
    assert_int_equal(tka_login_wait(auth, "alice", 5, "10.2.0.1", T0 + 10), wait);
    /* ...and, regression (issue 8 section 3), not from another address:
     * someone guessing cannot lock alice out of her own account. */
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.3.0.1", T0 + 10, &u, &wait),
                     TKA_LOGIN_OK);
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.2.0.1", T0 + 2000, &u, &wait),
                     TKA_LOGIN_OK);
    /* Disabled accounts. */
    assert_int_equal(tks_user_set_disabled(store, "alice", 1), TKS_OK);
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.3.0.1", T0 + 2001, &u, &wait),
                     TKA_LOGIN_DISABLED);
    assert_int_equal(tks_user_set_disabled(store, "alice", 0), TKS_OK);
    tka_counters k;
    tka_counters_get(auth, &k);
    assert_true(k.login_failed >= 7);
    assert_true(k.login_throttled >= 1);
}

static void test_sessions(void **state)
{
    (void)state;
    char cookie[TKA_COOKIE_LEN];
    tks_session se = sign_in(T0, cookie);
    tks_session out;
    /* Idle: 30 minutes without use ends it. */
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), T0 + 1799, &out), TKA_SESSION_OK);
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), T0 + 1799 + 1800, &out), TKA_SESSION_IDLE);
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), T0 + 1799 + 1801, &out), TKA_SESSION_ENDED);
    /* Absolute: 12 hours, however active. */
    char c2[TKA_COOKIE_LEN];
    tks_session s2 = sign_in(T0, c2);
    for (int64_t t = T0; t < T0 + 43200; t += 1500) {
        assert_int_equal(tka_session_check(auth, c2, strlen(c2), t, &out), TKA_SESSION_OK);
    }
    assert_int_equal(tka_session_check(auth, c2, strlen(c2), T0 + 43200, &out), TKA_SESSION_EXPIRED);
    /* Unknown cookies. */
    assert_int_equal(tka_session_check(auth, "nope", 4, T0, &out), TKA_SESSION_NONE);
    assert_int_equal(tka_session_check(auth, NULL, 0, T0, &out), TKA_SESSION_NONE);
    (void)se;
    (void)s2;
}

static void test_authorize_checks(void **state)
{
    (void)state;
    tks_client c;
    char redirect[TKS_URI_MAX + 1], scope[TKS_LIST_MAX + 1], why[200];
    struct {
        tka_authz_request r;
        tka_authz_result want;
    } rows[] = {
        {{NULL, "https://app.test/cb", "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_BAD_CLIENT},
        {{"ghost", "https://app.test/cb", "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL,
          NULL},
         TKA_AZ_BAD_CLIENT},
        {{"spa", "https://app.test/cb2", "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL,
          NULL},
         TKA_AZ_BAD_REDIRECT},
        {{"spa", "https://app.test/c", "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_BAD_REDIRECT},
        {{"spa", "https://APP.test/cb", "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL,
          NULL},
         TKA_AZ_BAD_REDIRECT},
        {{"spa", NULL, "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_BAD_REDIRECT}, /* two registered */
        {{"spa", "https://app.test/cb", "token", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL,
          NULL},
         TKA_AZ_UNSUPPORTED_RESPONSE},
        {{"spa", "https://app.test/cb", NULL, NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_INVALID_REQUEST},
        {{"spa", "https://app.test/cb", "code", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_INVALID_REQUEST},
        {{"spa", "https://app.test/cb", "code", NULL, NULL, CHALLENGE, "plain", NULL, NULL, NULL, NULL, NULL, NULL,
          NULL},
         TKA_AZ_INVALID_REQUEST},
        {{"spa", "https://app.test/cb", "code", NULL, NULL, CHALLENGE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_INVALID_REQUEST},
        {{"spa", "https://app.test/cb", "code", NULL, NULL, "short", "S256", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_INVALID_REQUEST},
        {{"spa", "https://app.test/cb", "code", "orders:admin", NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL,
          NULL, NULL},
         TKA_AZ_INVALID_SCOPE},
        {{"spa", "https://app.test/cb", "code", NULL, NULL, CHALLENGE, "S256", "billing-api", NULL, NULL, NULL, NULL,
          NULL, NULL},
         TKA_AZ_INVALID_TARGET},
        {{"svc", NULL, "code", NULL, NULL, CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL, NULL},
         TKA_AZ_BAD_REDIRECT},
        {{"spa", "http://127.0.0.1:9999/cb", "code", NULL, "st", CHALLENGE, "S256", NULL, NULL, NULL, NULL, NULL, NULL,
          NULL},
         TKA_AZ_OK},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tka_authz_result got = tka_authorize_check(auth, &rows[i].r, &c, redirect, scope, why, sizeof why);
        if (got != rows[i].want) {
            fail_msg("row %zu: got %d, want %d (%s)", i, got, rows[i].want, why);
        }
    }
    assert_string_equal(scope, "orders:read orders:write");
    assert_string_equal(redirect, "http://127.0.0.1:9999/cb");
}

static void test_code_grant(void **state)
{
    (void)state;
    char cookie[TKA_COOKIE_LEN], code[TKA_CODE_LEN], why[256];
    tks_session se = sign_in(T0, cookie);
    code_for(&se, T0, code);
    tka_issued out;
    /* Wrong verifier, wrong redirect, another client. */
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb",
                                                  "dBjftJeZ4CVP-mJ92K1bZ2Z3Fuq4zlEvXKKSyyOkUHX", 43, T0 + 1, &out, why,
                                                  sizeof why),
                     TKA_GRANT_INVALID_GRANT);
    /* A wrong verifier does not spend the code (checked before redeeming); a new one anyway. */
    code_for(&se, T0, code);
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cbx", VERIFIER, 43,
                                                  T0 + 1, &out, why, sizeof why),
                     TKA_GRANT_INVALID_GRANT);
    code_for(&se, T0, code);
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 61, &out, why, sizeof why),
                     TKA_GRANT_INVALID_GRANT);
    assert_non_null(strstr(why, "expired"));

    code_for(&se, T0 + 100, code);
    tka_grant_result g = tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER,
                                                      43, T0 + 101, &out, why, sizeof why);
    if (g != TKA_GRANT_OK) {
        fail_msg("grant: %d %s", g, why);
    }
    assert_non_null(out.refresh_token);
    assert_int_equal(strncmp(out.refresh_token, "tokend_rt_", 10), 0);
    tk_token *t = NULL;
    tk_verdict v;
    assert_int_equal(tka_validate(auth, out.access_token, strlen(out.access_token), NULL, T0 + 102, &v, &t), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_string_equal(tk_token_claim_string(t, "sub"), "alice");
    assert_string_equal(tk_token_claim_string(t, "client_id"), "spa");
    assert_string_equal(tk_token_claim_string(t, "sid"), se.sid);
    tk_token_free(t);

    /* A stolen code replayed: refused, and what it gave is revoked. */
    tka_issued replay;
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 103, &replay, why, sizeof why),
                     TKA_GRANT_INVALID_GRANT);
    assert_non_null(strstr(why, "already used"));
    assert_int_equal(tka_validate(auth, out.access_token, strlen(out.access_token), NULL, T0 + 104, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    tka_issued_clear(&out);
}

struct race {
    const char *rt;
    int64_t now;
    tka_grant_result r;
    tka_issued out;
};

static void *use_refresh(void *p)
{
    struct race *x = p;
    char why[256];
    x->r = tka_issue_refresh(auth, &spa, x->rt, strlen(x->rt), NULL, x->now, &x->out, why, sizeof why);
    return NULL;
}

static void test_refresh_rotation_reuse_race(void **state)
{
    (void)state;
    char cookie[TKA_COOKIE_LEN], code[TKA_CODE_LEN], why[256];
    tks_session se = sign_in(T0, cookie);
    code_for(&se, T0, code);
    tka_issued first;
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 1, &first, why, sizeof why),
                     TKA_GRANT_OK);
    /* Rotation. */
    tka_issued second;
    assert_int_equal(tka_issue_refresh(auth, &spa, first.refresh_token, strlen(first.refresh_token), NULL, T0 + 10,
                                       &second, why, sizeof why),
                     TKA_GRANT_OK);
    assert_string_not_equal(second.refresh_token, first.refresh_token);
    /* Narrowing the scope is allowed, widening is not. */
    tka_issued narrow;
    assert_int_equal(tka_issue_refresh(auth, &svc, second.refresh_token, strlen(second.refresh_token), NULL, T0 + 11,
                                       &narrow, why, sizeof why),
                     TKA_GRANT_UNAUTHORIZED_CLIENT);
    /* Concurrent use of one token: exactly one wins, nothing revoked. */
    struct race a = {second.refresh_token, T0 + 20, 0, {0}}, b = {second.refresh_token, T0 + 20, 0, {0}};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, use_refresh, &a);
    pthread_create(&tb, NULL, use_refresh, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_true((a.r == TKA_GRANT_OK) != (b.r == TKA_GRANT_OK));
    struct race *win = a.r == TKA_GRANT_OK ? &a : &b;
    tk_verdict v;
    assert_int_equal(tka_validate(auth, win->out.access_token, strlen(win->out.access_token), NULL, T0 + 21, &v, NULL),
                     0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    /* Reuse later (outside the grace window): the whole family goes. */
    tka_issued reused;
    assert_int_equal(tka_issue_refresh(auth, &spa, first.refresh_token, strlen(first.refresh_token), NULL, T0 + 60,
                                       &reused, why, sizeof why),
                     TKA_GRANT_INVALID_GRANT);
    assert_non_null(strstr(why, "already used"));
    assert_int_equal(tka_validate(auth, win->out.access_token, strlen(win->out.access_token), NULL, T0 + 61, &v, NULL),
                     0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    assert_non_null(strstr(v.detail, "refresh token reuse"));
    tka_issued after;
    assert_int_equal(tka_issue_refresh(auth, &spa, win->out.refresh_token, strlen(win->out.refresh_token), NULL,
                                       T0 + 62, &after, why, sizeof why),
                     TKA_GRANT_INVALID_GRANT);
    tks_session out;
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), T0 + 63, &out), TKA_SESSION_ENDED);
    tka_counters k;
    tka_counters_get(auth, &k);
    assert_true(k.refresh_reuse >= 1);
    tka_issued_clear(&first);
    tka_issued_clear(&second);
    tka_issued_clear(&a.out);
    tka_issued_clear(&b.out);
}

static void test_logout_revokes_everything(void **state)
{
    (void)state;
    char cookie[TKA_COOKIE_LEN], code[TKA_CODE_LEN], why[256];
    tks_session se = sign_in(T0, cookie);
    code_for(&se, T0, code);
    tka_issued t;
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 1, &t, why, sizeof why),
                     TKA_GRANT_OK);
    assert_int_equal(tka_session_end(auth, se.sid, "logout", T0 + 5), 0);
    tk_verdict v;
    assert_int_equal(tka_validate(auth, t.access_token, strlen(t.access_token), NULL, T0 + 6, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    assert_non_null(strstr(v.detail, "logout"));
    tka_issued r;
    assert_int_equal(
        tka_issue_refresh(auth, &spa, t.refresh_token, strlen(t.refresh_token), NULL, T0 + 7, &r, why, sizeof why),
        TKA_GRANT_INVALID_GRANT);
    tks_session out;
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), T0 + 8, &out), TKA_SESSION_ENDED);
    /* RFC 7009 with a refresh token revokes its family. */
    char c2[TKA_COOKIE_LEN];
    tks_session s2 = sign_in(T0 + 10, c2);
    code_for(&s2, T0 + 10, code);
    tka_issued t2;
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 11, &t2, why, sizeof why),
                     TKA_GRANT_OK);
    assert_int_equal(tka_revoke_token(auth, &svc, t2.refresh_token, strlen(t2.refresh_token), T0 + 12), 1);
    assert_int_equal(tka_revoke_token(auth, &spa, t2.refresh_token, strlen(t2.refresh_token), T0 + 12), 0);
    assert_int_equal(tka_validate(auth, t2.access_token, strlen(t2.access_token), NULL, T0 + 13, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    tka_issued_clear(&t);
    tka_issued_clear(&t2);
}

static void test_disable_user_revokes(void **state)
{
    (void)state;
    char c1[TKA_COOKIE_LEN], c2[TKA_COOKIE_LEN], code[TKA_CODE_LEN], why[256];
    tks_session s1 = sign_in(T0, c1);
    tks_session s2 = sign_in(T0 + 1, c2);
    tka_issued t1, t2;
    code_for(&s1, T0, code);
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 2, &t1, why, sizeof why),
                     TKA_GRANT_OK);
    code_for(&s2, T0 + 1, code);
    assert_int_equal(tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER, 43,
                                                  T0 + 3, &t2, why, sizeof why),
                     TKA_GRANT_OK);
    assert_int_equal(tka_user_revoke_all(auth, "alice", "admin", T0 + 4), 2);
    tk_verdict v;
    assert_int_equal(tka_validate(auth, t1.access_token, strlen(t1.access_token), NULL, T0 + 5, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    assert_int_equal(tka_validate(auth, t2.access_token, strlen(t2.access_token), NULL, T0 + 5, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    tks_session out;
    assert_int_equal(tka_session_check(auth, c1, strlen(c1), T0 + 6, &out), TKA_SESSION_ENDED);
    assert_int_equal(tka_user_revoke_all(auth, "nobody", "admin", T0 + 7), 0);
    tka_issued_clear(&t1);
    tka_issued_clear(&t2);
}

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Asks A to authenticate svc from `ip` until it answers `want`, for at
 * most `limit` seconds; returns the seconds it took (-1: never). */
static double until_answer(const char *secret, const char *ip, tka_auth_result want, double limit)
{
    double t0 = mono_s();
    for (;;) {
        tks_client c;
        int64_t retry = 0;
        tka_auth_result r = tka_client_authenticate(auth, "svc", 3, secret, strlen(secret), ip, T0, &c, &retry, NULL);
        double took = mono_s() - t0;
        if (r == want) {
            return took;
        }
        if (took > limit) {
            print_message("still %d after %.3f s (want %d)\n", (int)r, took, (int)want);
            return -1;
        }
        struct timespec nap = {0, 2000000};
        nanosleep(&nap, NULL);
    }
}

/* Two instances on one store (B: another store handle and authority, as
 * another process would have). What B changes, A acts on within a second
 * at worst: on PostgreSQL, A caches clients and a copy of the failed-
 * attempt counters (authority/cache.c) and hears of B's changes by NOTIFY
 * in milliseconds; on SQLite, A reads the store each time. */
/* The sign-out hook: the sids it was told of. */
static char ended[4][TKS_SID_MAX + 1];
static int n_ended;
static void on_signout(void *ud, const char *sid, const char *reason)
{
    (void)ud;
    (void)reason;
    if (n_ended < 4) {
        snprintf(ended[n_ended++], sizeof ended[0], "%s", sid);
    }
}

/* The ID token's signature, with the published key set. */
static tk_token *verified_id_token(const char *tok, int64_t now)
{
    char *jwks = NULL;
    assert_int_equal(tka_jwks(auth, &jwks), 0);
    tk_keyset *ks = NULL;
    size_t skipped = 0;
    assert_int_equal(tk_keyset_from_jwks(jwks, strlen(jwks), TK_ALG_UNSET, &ks, &skipped), TK_OK);
    tk_free(jwks);
    const char *iss[] = {"https://auth.test"};
    const char *aud[] = {"rp"};
    tk_policy pol;
    tk_policy_init(&pol, now);
    pol.issuers = iss;
    pol.issuers_len = 1;
    pol.audiences = aud;
    pol.audiences_len = 1;
    pol.typ = "JWT";
    tk_verdict v;
    tk_token *t = NULL;
    assert_int_equal(tk_verify(tok, strlen(tok), ks, &pol, NULL, &v, &t), TK_OK);
    tk_keyset_free(ks);
    if (v.reason != TK_REASON_VALID) {
        fail_msg("ID token: %s", tk_reason_code(v.reason));
    }
    return t;
}

/* OpenID Connect Core section 3.1.3.6, computed here independently. */
static void expect_at_hash(const tk_token *t, const char *access_token)
{
    unsigned char h[32];
    unsigned int hl = 0;
    assert_int_equal(EVP_Digest(access_token, strlen(access_token), h, &hl, EVP_sha256(), NULL), 1);
    char want[64];
    assert_int_equal(tk_b64url_encode(h, 16, want, sizeof want, NULL), TK_OK);
    assert_string_equal(tk_token_claim_string(t, "at_hash"), want);
}

static void test_id_tokens(void **state)
{
    (void)state;
    char err[256], why[256], secret[TKA_SECRET_TEXT_LEN];
    tks_client rp;
    tka_client_oidc o = {NULL, NULL, 1};
    assert_int_equal(tka_client_create_oidc(auth, NULL, "rp", "openid profile email orders:read", "orders-api", 0,
                                            "https://rp.test/cb", 1, NULL, &o, T0, &rp, secret, err, sizeof err),
                     0);
    tks_user p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "alice");
    snprintf(p.name, sizeof p.name, "Alice Liddell");
    snprintf(p.email, sizeof p.email, "alice@example.com");
    p.email_verified = 1;
    assert_int_equal(tka_user_set_profile(auth, &p, T0, err, sizeof err), 0);
    tka_set_signout_hook(auth, on_signout, NULL);
    n_ended = 0;

    char cookie[TKA_COOKIE_LEN], code[TKA_CODE_LEN];
    tks_session se = sign_in(T0, cookie);
    /* Third-party: asked once, remembered for what was allowed, asked
     * again for more. */
    assert_int_equal(tka_consent_needed(auth, &rp, "alice", "openid email"), 1);
    assert_int_equal(tka_consent_grant(auth, &rp, "alice", "openid email", T0), 0);
    assert_int_equal(tka_consent_needed(auth, &rp, "alice", "email openid"), 0);
    assert_int_equal(tka_consent_needed(auth, &rp, "alice", "openid profile"), 1);
    assert_int_equal(tka_consent_needed(auth, &spa, "alice", "orders:read"), 0); /* first-party */

    assert_int_equal(tka_code_issue_nonce(auth, &rp, &se, "https://rp.test/cb", CHALLENGE, "openid email", NULL,
                                          "n-0S6_WzA2Mj", T0 + 5, code),
                     0);
    /* A nonce is single use per client. */
    char code2[TKA_CODE_LEN];
    assert_int_equal(tka_code_issue_nonce(auth, &rp, &se, "https://rp.test/cb", CHALLENGE, "openid email", NULL,
                                          "n-0S6_WzA2Mj", T0 + 6, code2),
                     1);
    tka_issued out;
    tka_grant_result g = tka_issue_authorization_code(auth, &rp, code, strlen(code), "https://rp.test/cb", VERIFIER, 43,
                                                      T0 + 7, &out, why, sizeof why);
    if (g != TKA_GRANT_OK) {
        fail_msg("grant: %s", why);
    }
    assert_non_null(out.id_token);
    tk_token *t = verified_id_token(out.id_token, T0 + 8);
    assert_string_equal(tk_token_alg(t), "ES256"); /* this test's id_token_alg (RS256 by default) */
    assert_string_equal(tk_token_claim_string(t, "sub"), "alice");
    assert_string_equal(tk_token_claim_string(t, "azp"), "rp");
    assert_string_equal(tk_token_claim_string(t, "nonce"), "n-0S6_WzA2Mj");
    assert_string_equal(tk_token_claim_string(t, "sid"), se.sid);
    assert_string_equal(tk_token_claim_string(t, "email"), "alice@example.com");
    assert_null(tk_token_claim_string(t, "name")); /* no profile scope */
    double at = 0, iat = 0, exp = 0;
    assert_true(tk_token_claim_number(t, "auth_time", &at) && tk_token_claim_number(t, "iat", &iat) &&
                tk_token_claim_number(t, "exp", &exp));
    assert_true(at == (double)T0 && iat == (double)(T0 + 7) && exp == (double)(T0 + 7 + 3600));
    expect_at_hash(t, out.access_token);
    tk_token_free(t);

    /* The hint: ours even once expired; not ours when tampered. */
    tka_hint hint;
    assert_int_equal(tka_id_token_hint(auth, out.id_token, strlen(out.id_token), T0 + 86400, &hint, why, sizeof why),
                     0);
    assert_string_equal(hint.sub, "alice");
    assert_string_equal(hint.client_id, "rp");
    assert_string_equal(hint.sid, se.sid);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", out.id_token);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(tka_id_token_hint(auth, bad, strlen(bad), T0 + 9, &hint, why, sizeof why), 1);
    assert_int_equal(tka_id_token_hint(auth, "garbage", 7, T0 + 9, &hint, why, sizeof why), 1);
    /* An ID token is not an access token. */
    tk_verdict v;
    assert_int_equal(tka_validate(auth, out.id_token, strlen(out.id_token), NULL, T0 + 9, &v, NULL), 0);
    assert_int_not_equal(v.reason, TK_REASON_VALID);

    /* Refresh (Core section 12.2): a new ID token, the same auth_time, no nonce. */
    tka_issued again;
    g = tka_issue_refresh(auth, &rp, out.refresh_token, strlen(out.refresh_token), NULL, T0 + 600, &again, why,
                          sizeof why);
    if (g != TKA_GRANT_OK) {
        fail_msg("refresh: %s", why);
    }
    t = verified_id_token(again.id_token, T0 + 601);
    assert_null(tk_token_claim_string(t, "nonce"));
    assert_true(tk_token_claim_number(t, "auth_time", &at) && at == (double)T0);
    expect_at_hash(t, again.access_token);
    tk_token_free(t);

    /* A logout token for back-channel logout (section 2.4). */
    char *lt = NULL;
    assert_int_equal(tka_logout_token(auth, &rp, "alice", se.sid, T0 + 700, &lt), 0);
    tk_token *l = NULL;
    assert_int_equal(tk_token_parse(lt, strlen(lt), NULL, &l, &v), TK_OK);
    assert_string_equal(tk_token_typ(l), "logout+jwt");
    assert_string_equal(tk_token_claim_string(l, "sid"), se.sid);
    assert_null(tk_token_claim_string(l, "nonce"));
    size_t pl = 0;
    const unsigned char *payload = tk_token_payload(l, &pl);
    assert_non_null(memmem(payload, pl, "http://schemas.openid.net/event/backchannel-logout", 50));
    tk_token_free(l);
    tk_free(lt);

    /* Logout tells the hook. */
    assert_int_equal(tka_session_end(auth, se.sid, "logout", T0 + 800), 0);
    assert_int_equal(n_ended, 1);
    assert_string_equal(ended[0], se.sid);
    tka_set_signout_hook(auth, NULL, NULL);
    assert_int_equal(tka_consent_revoke(auth, "alice", NULL, T0 + 900), 1);
    assert_int_equal(tka_consent_needed(auth, &rp, "alice", "openid"), 1);
    tka_issued_clear(&out);
    tka_issued_clear(&again);
}

static void test_oidc_request_checks(void **state)
{
    (void)state;
    tks_client c;
    char redirect[TKS_URI_MAX + 1], scope[TKS_LIST_MAX + 1], why[200];
    struct {
        const char *nonce, *prompt, *max_age;
        tka_authz_result want;
    } rows[] = {
        {"abc", "none", "0", TKA_AZ_OK},
        {NULL, "login consent", "3600", TKA_AZ_OK},
        {NULL, "select_account", NULL, TKA_AZ_OK},
        {"", NULL, NULL, TKA_AZ_INVALID_REQUEST},
        {"a\x01", NULL, NULL, TKA_AZ_INVALID_REQUEST},
        {NULL, "none login", NULL, TKA_AZ_INVALID_REQUEST},
        {NULL, "nonsense", NULL, TKA_AZ_INVALID_REQUEST},
        {NULL, NULL, "-1", TKA_AZ_INVALID_REQUEST},
        {NULL, NULL, "12345678901", TKA_AZ_INVALID_REQUEST},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        tka_authz_request r = {
            "spa",         "https://app.test/cb", "code",          NULL, NULL, CHALLENGE, "S256", NULL,
            rows[i].nonce, rows[i].prompt,        rows[i].max_age, NULL, NULL, NULL};
        tka_authz_result got = tka_authorize_check(auth, &r, &c, redirect, scope, why, sizeof why);
        if (got != rows[i].want) {
            fail_msg("row %zu: %d, want %d (%s)", i, got, rows[i].want, why);
        }
    }
    assert_string_equal(tka_authz_error(TKA_AZ_LOGIN_REQUIRED), "login_required");
    assert_string_equal(tka_authz_error(TKA_AZ_CONSENT_REQUIRED), "consent_required");
    assert_string_equal(tka_authz_error(TKA_AZ_ACCESS_DENIED), "access_denied");
}

static void test_second_instance_changes(void **state)
{
    (void)state;
    char err[512];
    tks_store *store_b = NULL;
    tka_authority *b = NULL;
    assert_int_equal(tks_open(db_url, &store_b, err, sizeof err), TKS_OK);
    tka_config c = base_cfg;
    assert_int_equal(tka_open(store_b, &c, T0, &b, err, sizeof err), 0);
    assert_int_equal(tka_maintain(auth, T0), 0); /* A loads its copy of the counters */

    /* cached at A, then disabled at B */
    assert_true(until_answer(svc_secret, "10.9.0.1", TKA_AUTH_OK, 0) >= 0);
    assert_int_equal(tks_client_set_disabled(store_b, "svc", 1), TKS_OK);
    double took = until_answer(svc_secret, "10.9.0.1", TKA_AUTH_DISABLED, 1.0);
    print_message("client disabled at B, refused at A after %.1f ms\n", took * 1000);
    assert_true(took >= 0);
    assert_int_equal(tks_client_set_disabled(store_b, "svc", 0), TKS_OK);
    assert_true(until_answer(svc_secret, "10.9.0.1", TKA_AUTH_OK, 1.0) >= 0);

    /* deleted and made again at B with a new secret: A takes the new one
     * and refuses the old one */
    tks_client again;
    char secret2[TKA_SECRET_TEXT_LEN];
    assert_int_equal(tks_client_delete(store_b, "svc"), TKS_OK);
    assert_int_equal(tka_client_create_ex(b, "svc", "svc", "orders:read", "orders-api", 0, "", 0, NULL, T0, &again,
                                          secret2, err, sizeof err),
                     0);
    assert_true(until_answer(secret2, "10.9.0.2", TKA_AUTH_OK, 1.0) >= 0);
    assert_true(until_answer(svc_secret, "10.9.0.3", TKA_AUTH_BAD, 0) >= 0);

    /* an address guessing at B is blocked at A too */
    assert_int_equal(tka_maintain(auth, T0), 0);
    tka_auth_result r = TKA_AUTH_BAD;
    for (int i = 0; i < 20 && r == TKA_AUTH_BAD; i++) {
        tks_client out;
        int64_t retry = 0;
        r = tka_client_authenticate(b, "svc", 3, "wrong", 5, "10.9.9.9", T0, &out, &retry, NULL);
    }
    assert_int_equal(r, TKA_AUTH_THROTTLED);
    took = until_answer(secret2, "10.9.9.9", TKA_AUTH_THROTTLED, 1.0);
    print_message("address blocked at B, throttled at A after %.1f ms\n", took * 1000);
    assert_true(took >= 0);
    assert_true(until_answer(secret2, "10.9.9.8", TKA_AUTH_OK, 0) >= 0); /* another address is not held back */
    memcpy(svc_secret, secret2, sizeof svc_secret);
    tka_close(b);
    tks_close(store_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_and_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorize_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_rotation_reuse_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logout_revokes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_user_revokes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_instance_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oidc_request_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
