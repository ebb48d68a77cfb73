/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_faults.c — grants and security writes with the store failing
 * (SECURITY.md rules 19 and 20; issue 8 sections 1 and 5).
 *
 * The store's fault injection (store.h) fails write point number k: each
 * test runs a grant once per k, from the first write to past the last, so
 * every write of it has failed once (and, "sticky", every write after it,
 * as on a full disk). After each failure:
 *  - the grant answered TKA_GRANT_ERROR (503), never "invalid_grant";
 *  - the code or refresh token presented is untouched: still unused, with
 *    no successor stored, so the client's retry works;
 *  - a replay or reuse said "now revoked" only when the revocation, the
 *    session end and the audit event were all stored, and the revocation
 *    survives a restart.
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

#include "authority/internal.h" /* tka_sha256: rows are keyed by the SHA-256 of the text */
#include "pgtest.h"             /* tkt_store_url: a fresh PostgreSQL store under with_postgres.sh */

#define T0 1800000000

static char dir[64];
static char db_url[512];
static tks_store *store;
static tka_authority *auth;
static tks_client spa;

static const char VERIFIER[] = "dBjftJeZ4CVP-mJ92K1bZ2Z3Fuq4zlEvXKKSyyOkUHU";
static const char CHALLENGE[] = "aybhzmJp0vGYZpbGuqUv9ihvYd3v5CbsGtKVpQYuwiY";

static void open_authority(void)
{
    char err[256];
    tka_config c;
    tka_config_defaults(&c);
    c.issuer = "https://auth.test";
    memset(c.master_key, 9, sizeof c.master_key);
    c.rotate_every = 0;
    c.max_stale = INT64_MAX / 4;   /* a virtual clock, no maintenance: never stale here */
    c.id_token_alg = TK_ALG_UNSET; /* one ring: RSA key generation is slow under ASan */
    if (tka_open(store, &c, T0, &auth, err, sizeof err) != 0) {
        fail_msg("tka_open: %s", err);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tokend-faults-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char sqlite_url[128], err[512];
    snprintf(sqlite_url, sizeof sqlite_url, "sqlite://%s/t.db", dir);
    /* On PostgreSQL under tests/pg/with_postgres.sh (ctest unit/test_faults_pg). */
    if (tkt_store_url(db_url, sizeof db_url, sqlite_url, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(tks_open(db_url, &store, err, sizeof err), TKS_OK);
    open_authority();
    char secret[TKA_SECRET_TEXT_LEN];
    assert_int_equal(tka_client_create_ex(auth, NULL, "spa", "orders:read orders:write", "orders-api", 0,
                                          "https://app.test/cb", 1, NULL, T0, &spa, secret, err, sizeof err),
                     0);
    assert_int_equal(tka_user_create(auth, "alice", "correct horse", 13, T0, err, sizeof err), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tks_fault_disarm(store);
    tka_close(auth);
    tks_close(store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A restart: the authority and the store are closed and opened again, so
 * only what was committed remains. */
static void restart(void)
{
    char err[256];
    tka_close(auth);
    tks_close(store);
    assert_int_equal(tks_open(db_url, &store, err, sizeof err), TKS_OK);
    open_authority();
}

static tks_session new_session(int64_t now)
{
    char cookie[TKA_COOKIE_LEN], sid[TKS_SID_MAX + 1];
    assert_int_equal(tka_session_create(auth, "alice", now, cookie, sid), 0);
    tks_session se;
    assert_int_equal(tka_session_check(auth, cookie, strlen(cookie), now, &se), TKA_SESSION_OK);
    return se;
}

static void new_code(const tks_session *se, int64_t now, char code[TKA_CODE_LEN])
{
    assert_int_equal(tka_code_issue(auth, &spa, se, "https://app.test/cb", CHALLENGE, "orders:read", NULL, now, code),
                     0);
}

static tka_grant_result exchange(const char *code, int64_t now, tka_issued *out, char *why, size_t why_cap)
{
    return tka_issue_authorization_code(auth, &spa, code, strlen(code), "https://app.test/cb", VERIFIER,
                                        strlen(VERIFIER), now, out, why, why_cap);
}

static tka_grant_result refresh(const char *rt, int64_t now, const char *scope, tka_issued *out, char *why,
                                size_t why_cap)
{
    return tka_issue_refresh(auth, &spa, rt, strlen(rt), scope, now, out, why, why_cap);
}

/* The refresh token `rt` is unused and nothing names it as parent. */
static void assert_refresh_untouched(const char *rt)
{
    unsigned char h[32];
    tka_sha256(rt, strlen(rt), h);
    tks_refresh r;
    assert_int_equal(tks_refresh_get(store, h, &r), TKS_OK);
    assert_int_equal(r.used_at, 0);
}

static void assert_code_untouched(const char *code)
{
    unsigned char h[32];
    tka_sha256(code, strlen(code), h);
    tks_code c;
    assert_int_equal(tks_code_get(store, h, &c), TKS_OK);
    assert_int_equal(c.used_at, 0);
}

/* Runs `grant` with write point k failing (and every later one when
 * sticky), for k = 0, 1, ... until a run hits no fault. Each failed run
 * must be a 503 that left the credential untouched. Returns the number of
 * write points the successful run went through. */
typedef tka_grant_result (*grant_fn)(const char *cred, int64_t now, tka_issued *out, char *why, size_t why_cap);

static tka_grant_result do_exchange(const char *cred, int64_t now, tka_issued *out, char *why, size_t why_cap)
{
    return exchange(cred, now, out, why, why_cap);
}

static tka_grant_result do_refresh(const char *cred, int64_t now, tka_issued *out, char *why, size_t why_cap)
{
    return refresh(cred, now, NULL, out, why, why_cap);
}

static int64_t fail_each_write(grant_fn grant, const char *cred, int is_code, int sticky, int64_t now,
                               tka_issued *final)
{
    for (int64_t k = 0; k < 64; k++) {
        tka_issued out;
        char why[256] = "";
        tks_fault_arm(store, k, sticky);
        tka_grant_result g = grant(cred, now, &out, why, sizeof why);
        int64_t seen = tks_fault_points(store);
        tks_fault_disarm(store);
        if (seen <= k) { /* the fault was never reached: a clean run */
            assert_int_equal(g, TKA_GRANT_OK);
            *final = out;
            return seen;
        }
        if (g != TKA_GRANT_ERROR) {
            fail_msg("write point %lld failed, but the grant answered %d (%s)", (long long)k, (int)g, why);
        }
        assert_null(out.access_token);
        assert_null(out.refresh_token);
        assert_null(strstr(why, "revoked"));
        if (is_code) {
            assert_code_untouched(cred);
        } else {
            assert_refresh_untouched(cred);
        }
    }
    fail_msg("the grant never succeeded");
    return -1;
}

/* Issue 8 section 1: a refresh token used to be marked used before its
 * successor was stored, in separate transactions; a failure in between
 * lost the sign-in. Now each failure leaves it usable. */
static void test_refresh_fails_at_each_write(void **state)
{
    (void)state;
    for (int sticky = 0; sticky < 2; sticky++) {
        tks_session se = new_session(T0);
        char code[TKA_CODE_LEN];
        new_code(&se, T0, code);
        tka_issued first;
        int64_t points = fail_each_write(do_exchange, code, 1, sticky, T0 + 1, &first);
        assert_true(points >= 3); /* BEGIN, mark used, insert refresh, COMMIT */
        assert_non_null(first.refresh_token);
        char rt[128];
        snprintf(rt, sizeof rt, "%s", first.refresh_token);
        tka_issued_clear(&first);

        tka_issued next;
        points = fail_each_write(do_refresh, rt, 0, sticky, T0 + 10, &next);
        assert_true(points >= 3);
        /* the old token is now spent, its successor works */
        char why[256];
        tka_issued again;
        assert_int_equal(refresh(next.refresh_token, T0 + 20, NULL, &again, why, sizeof why), TKA_GRANT_OK);
        tka_issued_clear(&again);
        tka_issued_clear(&next);
    }
}

/* The same with the store failing at a restart in the middle: what was
 * committed survives, what was not never happened. */
static void test_refresh_failure_survives_restart(void **state)
{
    (void)state;
    tks_session se = new_session(T0);
    char code[TKA_CODE_LEN];
    new_code(&se, T0, code);
    char why[256];
    tka_issued first;
    assert_int_equal(exchange(code, T0 + 1, &first, why, sizeof why), TKA_GRANT_OK);
    char rt[128];
    snprintf(rt, sizeof rt, "%s", first.refresh_token);
    tka_issued_clear(&first);
    /* each write of the rotation fails in turn (and all after it), and the
     * server restarts after each failure */
    tka_issued out;
    for (int64_t k = 0;; k++) {
        assert_true(k < 64);
        tks_fault_arm(store, k, 1);
        tka_grant_result g = refresh(rt, T0 + 5, NULL, &out, why, sizeof why);
        int64_t seen = tks_fault_points(store);
        tks_fault_disarm(store);
        if (seen <= k) {
            assert_int_equal(g, TKA_GRANT_OK);
            break;
        }
        assert_int_equal(g, TKA_GRANT_ERROR);
        restart();
        assert_refresh_untouched(rt);
    }
    restart();
    tka_issued again;
    assert_int_equal(refresh(out.refresh_token, T0 + 6, NULL, &again, why, sizeof why), TKA_GRANT_OK);
    tka_issued_clear(&again);
    tka_issued_clear(&out);
}

/* Checks that fail leave the token usable without writing anything: a
 * scope it may not have, a disabled user. */
static void test_refused_refresh_spends_nothing(void **state)
{
    (void)state;
    tks_session se = new_session(T0);
    char code[TKA_CODE_LEN];
    new_code(&se, T0, code);
    char why[256];
    tka_issued first, out;
    assert_int_equal(exchange(code, T0 + 1, &first, why, sizeof why), TKA_GRANT_OK);
    char rt[128];
    snprintf(rt, sizeof rt, "%s", first.refresh_token);
    tka_issued_clear(&first);

    tks_fault_arm(store, 0, 1); /* any write would fail the test below */
    assert_int_equal(refresh(rt, T0 + 2, "orders:write", &out, why, sizeof why), TKA_GRANT_INVALID_SCOPE);
    assert_int_equal(tks_fault_points(store), 0);
    tks_fault_disarm(store);
    assert_refresh_untouched(rt);

    assert_int_equal(tks_user_set_disabled(store, "alice", 1), TKS_OK);
    tks_fault_arm(store, 0, 1);
    assert_int_equal(refresh(rt, T0 + 3, NULL, &out, why, sizeof why), TKA_GRANT_INVALID_GRANT);
    assert_string_equal(why, "the user's account is disabled");
    assert_int_equal(tks_fault_points(store), 0);
    tks_fault_disarm(store);
    assert_int_equal(tks_user_set_disabled(store, "alice", 0), TKS_OK);
    assert_refresh_untouched(rt);
    assert_int_equal(refresh(rt, T0 + 4, NULL, &out, why, sizeof why), TKA_GRANT_OK);
    tka_issued_clear(&out);
}

/* Issue 8 section 1: reuse detection said "every token of this sign-in is
 * now revoked" while ignoring whether that was stored. */
static void test_reuse_revocation_is_checked(void **state)
{
    (void)state;
    tks_session se = new_session(T0);
    char code[TKA_CODE_LEN];
    new_code(&se, T0, code);
    char why[256];
    tka_issued first, second, out;
    assert_int_equal(exchange(code, T0 + 1, &first, why, sizeof why), TKA_GRANT_OK);
    char stolen[128];
    snprintf(stolen, sizeof stolen, "%s", first.refresh_token);
    tka_issued_clear(&first);
    assert_int_equal(refresh(stolen, T0 + 2, NULL, &second, why, sizeof why), TKA_GRANT_OK);

    /* The thief replays the rotated token later; every write of the
     * revocation fails in turn. */
    int64_t k = 0;
    for (;; k++) {
        tks_fault_arm(store, k, 0);
        tka_grant_result g = refresh(stolen, T0 + 100, NULL, &out, why, sizeof why);
        int64_t seen = tks_fault_points(store);
        tks_fault_disarm(store);
        if (seen <= k) {
            assert_int_equal(g, TKA_GRANT_INVALID_GRANT);
            assert_non_null(strstr(why, "now revoked"));
            break;
        }
        assert_int_equal(g, TKA_GRANT_ERROR);
        assert_null(strstr(why, "now revoked"));
        assert_non_null(strstr(why, "failed"));
    }
    assert_true(k >= 3); /* revocation, session end, audit: each failed once */
    /* The family is revoked, and stays so after a restart. */
    restart();
    assert_true(tka_is_revoked(auth, NULL, se.sid, NULL, 0, NULL, NULL));
    assert_int_equal(refresh(second.refresh_token, T0 + 101, NULL, &out, why, sizeof why), TKA_GRANT_INVALID_GRANT);
    tka_issued_clear(&second);
}

/* The same for a replayed authorization code. */
static void test_code_replay_revocation_is_checked(void **state)
{
    (void)state;
    tks_session se = new_session(T0);
    char code[TKA_CODE_LEN];
    new_code(&se, T0, code);
    char why[256];
    tka_issued first, out;
    assert_int_equal(exchange(code, T0 + 1, &first, why, sizeof why), TKA_GRANT_OK);
    int64_t k = 0;
    for (;; k++) {
        tks_fault_arm(store, k, 1); /* a full disk: everything after fails */
        tka_grant_result g = exchange(code, T0 + 2, &out, why, sizeof why);
        int64_t seen = tks_fault_points(store);
        tks_fault_disarm(store);
        if (seen <= k) {
            assert_int_equal(g, TKA_GRANT_INVALID_GRANT);
            assert_non_null(strstr(why, "now revoked"));
            break;
        }
        assert_int_equal(g, TKA_GRANT_ERROR);
        assert_null(strstr(why, "now revoked"));
    }
    assert_true(k >= 2);
    restart();
    assert_true(tka_is_revoked(auth, NULL, se.sid, NULL, 0, NULL, NULL));
    tk_verdict v;
    assert_int_equal(tka_validate(auth, first.access_token, strlen(first.access_token), NULL, T0 + 3, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    tka_issued_clear(&first);
}

/* Failed sign-ins and client authentications are security events: when
 * their audit cannot be stored the answer is "unavailable" (503), not a
 * plain failure that leaves no trace. */
static void test_failed_attempts_audit_is_checked(void **state)
{
    (void)state;
    char err[256], secret[TKA_SECRET_TEXT_LEN];
    tks_client svc, got;
    assert_int_equal(tka_client_create(auth, NULL, "svc", "x", "api", 0, T0, &svc, secret, err, sizeof err), 0);
    int64_t wait = 0;
    tks_fault_arm(store, 0, 1);
    assert_int_equal(tka_client_authenticate(auth, "svc", 3, "tokend_cs_wrong", 15, "10.9.0.1", T0, &got, &wait, NULL),
                     TKA_AUTH_ERROR);
    tks_user u;
    assert_int_equal(tka_user_login(auth, "alice", 5, "wrong horse", 11, "10.9.0.1", T0, &u, &wait), TKA_LOGIN_ERROR);
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.9.0.2", T0, &u, &wait), TKA_LOGIN_ERROR);
    tks_fault_disarm(store);
    /* A revocation: every write failing in turn. Whatever failed, it either
     * says it failed, or it is in force (and then it says so only when
     * everything, the audit included, was stored). */
    int audit_only = 0; /* the audit failed after the revocation was stored */
    for (int64_t k = 0;; k++) {
        assert_true(k < 16);
        char jti[32];
        snprintf(jti, sizeof jti, "jti-%lld", (long long)k);
        tks_fault_arm(store, k, 0);
        int rc = tka_revoke(auth, TKS_REVOKE_JTI, jti, "admin", T0, T0 + 600);
        int64_t seen = tks_fault_points(store);
        tks_fault_disarm(store);
        if (seen <= k) {
            assert_int_equal(rc, 0);
            break;
        }
        assert_int_not_equal(rc, 0);
        /* in force or not, what the store holds survives a restart */
        int before = tka_is_revoked(auth, jti, NULL, NULL, 0, NULL, NULL);
        audit_only += before;
        restart();
        assert_int_equal(tka_is_revoked(auth, jti, NULL, NULL, 0, NULL, NULL), before);
    }
    assert_int_equal(audit_only, 1);
    assert_true(tka_is_revoked(auth, "jti-0", NULL, NULL, 0, NULL, NULL) == 0);
    assert_int_equal(tka_user_login(auth, "alice", 5, "correct horse", 13, "10.9.0.2", T0, &u, &wait), TKA_LOGIN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refresh_fails_at_each_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_failure_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_refresh_spends_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse_revocation_is_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_replay_revocation_is_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_attempts_audit_is_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
