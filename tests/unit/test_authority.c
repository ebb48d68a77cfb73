/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_authority.c — the authority layer on a real SQLite store: key ring
 * (creation, sealing, rotation, reload across "processes"), clients and
 * their authentication with throttling, client_credentials issuance,
 * validation with revocation, and RFC 7009 revocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "authority/internal.h" /* TKA_RING_RETIRED_MAX */

#define T0 1800000000

static char dir[64];
static char db_url[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tokend-auth-XXXXXX");
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

static void config(tka_config *c, unsigned char fill)
{
    tka_config_defaults(c);
    c->issuer = "https://auth.test";
    memset(c->master_key, fill, sizeof c->master_key);
    c->rotate_every = 0;
    /* These tests move a virtual clock without running maintenance: the
     * revocation set never goes stale here (test_revocations_go_stale
     * checks that part), and keys may rotate back to back unless a test
     * says otherwise (test_next_key_waits_for_the_jwks_caches). */
    c->max_stale = INT64_MAX / 4;
    c->jwks_max_age = 0;
    /* One ring (ES256) unless a test asks for the RS256 ring of ID tokens
     * (test_keyring_two_algs): RSA key generation is slow under ASan. */
    c->id_token_alg = TK_ALG_UNSET;
}

static tka_authority *open_auth(tks_store **s, unsigned char fill, int64_t now)
{
    char err[256];
    assert_int_equal(tks_open(db_url, s, err, sizeof err), TKS_OK);
    tka_config c;
    config(&c, fill);
    tka_authority *a = NULL;
    if (tka_open(*s, &c, now, &a, err, sizeof err) != 0) {
        fail_msg("tka_open: %s", err);
    }
    return a;
}

struct count {
    int next, active, retired;
    char active_kid[TKS_ID_MAX + 1];
};

/* Does `needle` occur in the n bytes at p? */
static int contains(const unsigned char *p, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++) {
        if (memcmp(p + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

static int count_keys(const tks_key_row *k, void *ud)
{
    struct count *c = ud;
    c->next += k->state == TKS_KEY_NEXT;
    c->active += k->state == TKS_KEY_ACTIVE;
    c->retired += k->state == TKS_KEY_RETIRED;
    if (k->state == TKS_KEY_ACTIVE) {
        snprintf(c->active_kid, sizeof c->active_kid, "%s", k->kid);
    }
    /* The private part is never stored in clear. */
    assert_false(contains(k->sealed, k->sealed_len, "\"d\""));
    assert_null(strstr(k->public_jwk, "\"d\""));
    return 0;
}

static void issue(tka_authority *a, const tks_client *c, const char *scope, int64_t now, tka_issued *out)
{
    char why[128];
    tka_grant_result r = tka_issue_client_credentials(a, c, scope, NULL, now, out, why, sizeof why);
    if (r != TKA_GRANT_OK) {
        fail_msg("issuance failed: %s", why);
    }
}

struct per_alg {
    int es_active, es_next, rs_active, rs_next, retired;
};

static int count_per_alg(const tks_key_row *k, void *ud)
{
    struct per_alg *c = ud;
    int es = strcmp(k->alg, "ES256") == 0;
    c->es_active += es && k->state == TKS_KEY_ACTIVE;
    c->es_next += es && k->state == TKS_KEY_NEXT;
    c->rs_active += !es && k->state == TKS_KEY_ACTIVE;
    c->rs_next += !es && k->state == TKS_KEY_NEXT;
    c->retired += k->state == TKS_KEY_RETIRED;
    return 0;
}

/* The ES256 ring of access tokens and the RS256 ring of ID tokens, side by
 * side on one store: each with its active and next key, both published,
 * both rotated; a second authority on the same store adds nothing. */
static void test_keyring_two_algs(void **state)
{
    (void)state;
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open(db_url, &s, err, sizeof err), TKS_OK);
    tka_config c;
    config(&c, 0x22);
    c.id_token_alg = TK_ALG_RS256;
    tka_authority *a = NULL, *b = NULL;
    if (tka_open(s, &c, T0, &a, err, sizeof err) != 0 || tka_open(s, &c, T0, &b, err, sizeof err) != 0) {
        fail_msg("tka_open: %s", err);
    }
    struct per_alg n = {0};
    assert_int_equal(tka_keys_list(a, count_per_alg, &n), 0);
    assert_true(n.es_active == 1 && n.es_next == 1 && n.rs_active == 1 && n.rs_next == 1 && n.retired == 0);
    char *jwks = NULL;
    assert_int_equal(tka_jwks(a, &jwks), 0);
    assert_non_null(strstr(jwks, "\"RS256\""));
    assert_non_null(strstr(jwks, "\"ES256\""));
    tk_free(jwks);
    tk_alg algs[2];
    assert_int_equal(tka_id_token_algs(a, algs), 2);
    assert_true(tka_id_token_alg_ok(a, "RS256") && tka_id_token_alg_ok(a, "ES256") && !tka_id_token_alg_ok(a, "PS256"));
    assert_int_equal(tka_rotate(a, T0 + 10, err, sizeof err), 0);
    memset(&n, 0, sizeof n);
    assert_int_equal(tka_keys_list(a, count_per_alg, &n), 0);
    assert_true(n.es_active == 1 && n.es_next == 1 && n.rs_active == 1 && n.rs_next == 1 && n.retired == 2);
    tka_close(b);
    tka_close(a);
    tks_close(s);
}

static void test_keyring(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x11, T0);
    struct count c = {0};
    assert_int_equal(tka_keys_list(a, count_keys, &c), 0);
    assert_int_equal(c.active, 1);
    assert_int_equal(c.next, 1);
    char *jwks = NULL;
    assert_int_equal(tka_jwks(a, &jwks), 0);
    assert_non_null(strstr(jwks, "\"ES256\""));
    assert_null(strstr(jwks, "\"d\""));
    tk_free(jwks);

    /* A token signed now keeps verifying after a rotation. */
    tks_client cl;
    char secret[TKA_SECRET_TEXT_LEN], err[256];
    assert_int_equal(
        tka_client_create(a, NULL, "svc", "orders:read", "orders-api", 0, T0, &cl, secret, err, sizeof err), 0);
    tka_issued before;
    issue(a, &cl, NULL, T0, &before);
    char old_kid[TKS_ID_MAX + 1];
    snprintf(old_kid, sizeof old_kid, "%s", c.active_kid);
    assert_int_equal(tka_rotate(a, T0 + 10, err, sizeof err), 0);
    struct count c2 = {0};
    assert_int_equal(tka_keys_list(a, count_keys, &c2), 0);
    assert_int_equal(c2.active, 1);
    assert_int_equal(c2.next, 1);
    assert_int_equal(c2.retired, 1);
    assert_string_not_equal(c2.active_kid, old_kid);
    tk_verdict v;
    assert_int_equal(tka_validate(a, before.access_token, strlen(before.access_token), NULL, T0 + 20, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);

    /* Another process (a second authority on the same store) sees the
     * rotation after tka_maintain. */
    tks_store *s2 = NULL;
    tka_authority *b = open_auth(&s2, 0x11, T0 + 20);
    /* Twice: after one rotation the new active key is the next key `a`
     * already publishes and verifies with; after two it is one `a` never saw. */
    assert_int_equal(tka_rotate(b, T0 + 29, err, sizeof err), 0);
    assert_int_equal(tka_rotate(b, T0 + 30, err, sizeof err), 0);
    tka_issued after;
    issue(b, &cl, NULL, T0 + 30, &after);
    assert_int_equal(tka_validate(a, after.access_token, strlen(after.access_token), NULL, T0 + 31, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_UNKNOWN_KEY); /* not reloaded yet */
    assert_int_equal(tka_maintain(a, T0 + 31), 0);
    assert_int_equal(tka_validate(a, after.access_token, strlen(after.access_token), NULL, T0 + 32, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);

    /* Once the retired key's time is up it leaves the ring, and a token it
     * signed is unknown_key, "rotated out". The first token's key retired at
     * T0+10 with max_ttl 86400 + leeway 60. */
    int64_t later = T0 + 10 + 86400 + 60 + 1;
    assert_int_equal(tka_maintain(a, later), 0);
    assert_int_equal(tka_validate(a, before.access_token, strlen(before.access_token), NULL, later, &v, NULL), 0);
    assert_true(v.reason == TK_REASON_UNKNOWN_KEY || v.reason == TK_REASON_EXPIRED);
    if (v.reason == TK_REASON_UNKNOWN_KEY) {
        assert_non_null(strstr(v.detail, "rotated out"));
    }
    tka_issued_clear(&before);
    tka_issued_clear(&after);
    tka_close(b);
    tks_close(s2);
    tka_close(a);
    tks_close(s);

    /* The wrong master key cannot open the store's signing key. */
    tks_store *s3 = NULL;
    assert_int_equal(tks_open(db_url, &s3, err, sizeof err), TKS_OK);
    tka_config cfg;
    config(&cfg, 0x22);
    tka_authority *bad = NULL;
    assert_int_not_equal(tka_open(s3, &cfg, T0, &bad, err, sizeof err), 0);
    assert_null(bad);
    assert_non_null(strstr(err, "master key"));
    tks_close(s3);
}

/* Regression (issue 8 section 4): the 63rd `keys rotate` within the
 * retention window failed, and then the server refused to start (the ring
 * outgrew a key set's 64 keys). Now the oldest retired keys leave the ring,
 * still named as rotated out, and nothing stops a start. */
static void test_keyring_many_rotations(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x11, T0);
    tks_client cl;
    char secret[TKA_SECRET_TEXT_LEN], err[256];
    assert_int_equal(
        tka_client_create(a, NULL, "svc", "orders:read", "orders-api", 0, T0, &cl, secret, err, sizeof err), 0);
    tka_issued first, last;
    issue(a, &cl, NULL, T0, &first);
    for (int i = 0; i < 80; i++) {
        if (tka_rotate(a, T0 + 1 + i, err, sizeof err) != 0) {
            fail_msg("rotation %d: %s", i + 1, err);
        }
    }
    issue(a, &cl, NULL, T0 + 100, &last);
    /* The server starts (a second authority opens the store). */
    tks_store *s2 = NULL;
    tka_authority *b = open_auth(&s2, 0x11, T0 + 100);
    tk_verdict v;
    assert_int_equal(tka_validate(b, last.access_token, strlen(last.access_token), NULL, T0 + 101, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_int_equal(tka_validate(b, first.access_token, strlen(first.access_token), NULL, T0 + 101, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_UNKNOWN_KEY);
    assert_non_null(strstr(v.detail, "rotated out"));
    /* The JWKS holds the ring: next, active and at most the retired cap. */
    char *jwks = NULL;
    assert_int_equal(tka_jwks(b, &jwks), 0);
    size_t n = 0;
    for (const char *p = jwks; (p = strstr(p, "\"kid\"")) != NULL; p++) {
        n++;
    }
    assert_int_equal(n, TKA_RING_RETIRED_MAX + 2);
    tk_free(jwks);
    /* Maintenance deletes what left the ring from the store. */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(tka_maintain(b, T0 + 102 + i), 0);
    }
    struct count c = {0};
    assert_int_equal(tka_keys_list(b, count_keys, &c), 0);
    assert_int_equal(c.retired, (int)TKA_RING_RETIRED_MAX);
    assert_int_equal(tka_validate(b, last.access_token, strlen(last.access_token), NULL, T0 + 111, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    tka_issued_clear(&first);
    tka_issued_clear(&last);
    tka_close(b);
    tks_close(s2);
    tka_close(a);
    tks_close(s);
}

/* Regression (issue 9 section 2): two `keys rotate` in a row activated a
 * key published a moment before, which no verifier caching the JWKS had
 * seen. Now the next key signs only after it has been published for
 * jwks_max_age; a second instance rotating at the same moment changes
 * nothing. */
static void test_next_key_waits_for_the_jwks_caches(void **state)
{
    (void)state;
    char err[256];
    tks_store *s = NULL, *s2 = NULL;
    assert_int_equal(tks_open(db_url, &s, err, sizeof err), TKS_OK);
    assert_int_equal(tks_open(db_url, &s2, err, sizeof err), TKS_OK);
    tka_config c;
    config(&c, 0x11);
    c.jwks_max_age = 300;
    tka_authority *a = NULL, *b = NULL;
    assert_int_equal(tka_open(s, &c, T0, &a, err, sizeof err), 0);
    assert_int_equal(tka_open(s2, &c, T0, &b, err, sizeof err), 0);
    /* the next key made at start is too young */
    assert_int_equal(tka_rotate(a, T0 + 10, err, sizeof err), 1);
    assert_non_null(strstr(err, "not now"));
    assert_non_null(strstr(err, "4m50s"));
    /* once it has been published for 300 s it may sign */
    assert_int_equal(tka_rotate(a, T0 + 300, err, sizeof err), 0);
    /* b rotating from its stale view at the same moment changes nothing */
    assert_int_equal(tka_rotate(b, T0 + 300, err, sizeof err), 1);
    /* and a second rotation right after is refused: the new next is young */
    assert_int_equal(tka_rotate(a, T0 + 301, err, sizeof err), 1);
    struct count k = {0};
    assert_int_equal(tka_keys_list(a, count_keys, &k), 0);
    assert_int_equal(k.active, 1);
    assert_int_equal(k.next, 1);
    assert_int_equal(k.retired, 1);
    tka_close(b);
    tka_close(a);
    tks_close(s2);
    tks_close(s);
}

/* Issue 9 section 3: when the revocation set cannot catch up with the
 * store for longer than max_stale, a token that would be valid gets
 * `unavailable` (a revocation made elsewhere could be missing); one we
 * know is revoked still says revoked; catching up makes it valid again. */
static void test_revocations_go_stale(void **state)
{
    (void)state;
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open(db_url, &s, err, sizeof err), TKS_OK);
    tka_config c;
    config(&c, 0x11);
    c.max_stale = 30;
    tka_authority *a = NULL;
    assert_int_equal(tka_open(s, &c, T0, &a, err, sizeof err), 0);
    tks_client cl;
    char secret[TKA_SECRET_TEXT_LEN];
    assert_int_equal(tka_client_create(a, NULL, "svc", "x", "api", 0, T0, &cl, secret, err, sizeof err), 0);
    tka_issued t1, t2;
    issue(a, &cl, NULL, T0, &t1);
    issue(a, &cl, NULL, T0, &t2);
    assert_int_equal(tka_revoke(a, TKS_REVOKE_JTI, t2.jti, "admin", T0, T0 + 3600), 0);
    tk_verdict v;
    assert_int_equal(tka_validate(a, t1.access_token, strlen(t1.access_token), NULL, T0 + 30, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_int_equal(tka_validate(a, t1.access_token, strlen(t1.access_token), NULL, T0 + 31, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_UNAVAILABLE);
    assert_non_null(strstr(v.detail, "failing closed"));
    assert_int_equal(tka_validate(a, t2.access_token, strlen(t2.access_token), NULL, T0 + 31, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    /* (a store that cannot be read keeps it stale: the PostgreSQL fault
     * tests stop the database to show that) */
    assert_int_equal(tka_maintain(a, T0 + 41), 0);
    assert_int_equal(tka_validate(a, t1.access_token, strlen(t1.access_token), NULL, T0 + 41, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    tka_issued_clear(&t1);
    tka_issued_clear(&t2);
    tka_close(a);
    tks_close(s);
}

static int count_bulk_audits(int64_t at, const char *kind, const char *client_id, const char *ip, const char *detail,
                             void *ud)
{
    (void)at;
    (void)client_id;
    (void)ip;
    if (strcmp(kind, "tokens_revoked") == 0 && strcmp(detail, "bulk x1000") == 0) {
        (*(int *)ud)++;
    }
    return 0;
}

/* Issue 13 section 2: tka_revoke_many in batches; an authority opened
 * with lazy_revocations reads the set only when first asked, and then
 * answers as an eager one does. */
static void test_revoke_many_and_lazy_set(void **state)
{
    (void)state;
    char err[256];
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x22, T0);
    tks_client cl;
    char secret[TKA_SECRET_TEXT_LEN];
    assert_int_equal(tka_client_create(a, NULL, "svc", "x", "api", 0, T0, &cl, secret, err, sizeof err), 0);
    tka_issued t;
    issue(a, &cl, NULL, T0, &t);
    enum { N = 2500 };
    static char vals[N][sizeof t.jti];
    static const char *ptrs[N];
    for (int i = 0; i < N; i++) {
        snprintf(vals[i], sizeof vals[i], "m-%05d", i);
        ptrs[i] = vals[i];
    }
    snprintf(vals[N - 1], sizeof vals[N - 1], "%s", t.jti);
    size_t done = 0, added = 0, entries = 0, bytes = 0;
    assert_int_equal(tka_revoke_many(a, TKS_REVOKE_JTI, ptrs, N, "bulk", T0, T0 + 3600, &done, &added), 0);
    assert_int_equal(done, N);
    assert_int_equal(added, N);
    tka_revocations_size(a, &entries, &bytes);
    assert_int_equal(entries, N);
    assert_true(bytes >= entries * 24 && bytes <= entries * 24 * 100 / 55 + 64 * 24);
    char reason[TKS_REASON_MAX + 1];
    int64_t at = 0;
    int by_sid = 1;
    assert_true(tka_is_revoked(a, "m-00007", NULL, reason, sizeof reason, &at, &by_sid));
    assert_string_equal(reason, "bulk");
    assert_int_equal(at, T0);
    assert_int_equal(by_sid, 0);
    assert_false(tka_is_revoked(a, "m-99999", "m-00007", NULL, 0, NULL, NULL)); /* a sid is another kind */
    tk_verdict v;
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), NULL, T0 + 1, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    assert_non_null(strstr(v.detail, "bulk"));
    /* again: nothing new, and one audit event a batch */
    assert_int_equal(tka_revoke_many(a, TKS_REVOKE_JTI, ptrs, 1000, "bulk", T0, T0 + 3600, &done, &added), 0);
    assert_int_equal(added, 0);
    int audits = 0;
    assert_int_equal(tks_audit_list(s, 100, count_bulk_audits, &audits), TKS_OK);
    assert_int_equal(audits, 3); /* 1000 + 1000 (+ 500) the first time, 1000 the second */

    /* another authority on the store loads them all at open */
    tks_store *s2 = NULL;
    tka_authority *b = open_auth(&s2, 0x22, T0);
    tka_revocations_size(b, &entries, &bytes);
    assert_int_equal(entries, N);
    tka_close(b);
    tks_close(s2);

    /* a lazy one reads nothing until asked */
    assert_int_equal(tks_open(db_url, &s2, err, sizeof err), TKS_OK);
    tka_config c;
    config(&c, 0x22);
    c.lazy_revocations = 1;
    c.one_shot = 1;
    assert_int_equal(tka_open(s2, &c, T0, &b, err, sizeof err), 0);
    tka_revocations_size(b, &entries, &bytes);
    assert_int_equal(entries, 0);
    assert_int_equal(bytes, 0);
    assert_int_equal(tka_revoke(b, TKS_REVOKE_SID, "lazy-sid", "admin", T0, T0 + 3600), 0); /* store only */
    tka_revocations_size(b, &entries, &bytes);
    assert_int_equal(entries, 0);
    assert_true(tka_is_revoked(b, NULL, "lazy-sid", reason, sizeof reason, NULL, &by_sid));
    assert_int_equal(by_sid, 1);
    tka_revocations_size(b, &entries, &bytes);
    assert_int_equal(entries, N + 1);
    tka_close(b);
    /* validation loads it too, and is not taken for stale */
    assert_int_equal(tka_open(s2, &c, T0, &b, err, sizeof err), 0);
    assert_int_equal(tka_validate(b, t.access_token, strlen(t.access_token), NULL, T0 + 1, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    tka_close(b);
    tks_close(s2);

    tka_issued_clear(&t);
    tka_close(a);
    tks_close(s);
}

static void test_clients_and_throttling(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x11, T0);
    tks_client cl, got;
    char secret[TKA_SECRET_TEXT_LEN], err[256];
    assert_int_equal(tka_client_create(a, NULL, "billing", "invoices:read invoices:write", "billing-api other-api", 300,
                                       T0, &cl, secret, err, sizeof err),
                     0);
    assert_string_equal(cl.id, "billing");
    assert_int_equal(strncmp(secret, "tokend_cs_", 10), 0);
    assert_int_equal(strlen(secret), 10 + 43);
    /* Duplicate id. */
    char s2[TKA_SECRET_TEXT_LEN];
    assert_int_not_equal(tka_client_create(a, NULL, "billing", "x", "y", 0, T0, &got, s2, err, sizeof err), 0);
    /* Bad inputs. */
    assert_int_not_equal(tka_client_create(a, NULL, "x", "a  b", "api", 0, T0, &got, s2, err, sizeof err), 0);
    assert_int_not_equal(tka_client_create(a, NULL, "x", "a", "", 0, T0, &got, s2, err, sizeof err), 0);
    assert_int_not_equal(tka_client_create(a, NULL, "x", "a", "api", 86401, T0, &got, s2, err, sizeof err), 0);

    int64_t wait = 0;
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "10.0.0.1", T0, &got, &wait, NULL),
        TKA_AUTH_OK);
    assert_string_equal(got.id, "billing");
    /* One byte off, shorter, unknown id: all TKA_AUTH_BAD alike. */
    char wrong[TKA_SECRET_TEXT_LEN];
    snprintf(wrong, sizeof wrong, "%s", secret);
    wrong[20] ^= 1;
    assert_int_equal(tka_client_authenticate(a, "billing", 7, wrong, strlen(wrong), "10.0.0.2", T0, &got, &wait, NULL),
                     TKA_AUTH_BAD);
    assert_int_equal(tka_client_authenticate(a, "billing", 7, secret, 5, "10.0.0.3", T0, &got, &wait, NULL),
                     TKA_AUTH_BAD);
    assert_int_equal(tka_client_authenticate(a, "nobody", 6, secret, strlen(secret), "10.0.0.4", T0, &got, &wait, NULL),
                     TKA_AUTH_BAD);
    /* An id with a NUL inside never matches. */
    assert_int_equal(
        tka_client_authenticate(a, "billing\0x", 9, secret, strlen(secret), "10.0.0.5", T0, &got, &wait, NULL),
        TKA_AUTH_BAD);

    /* Throttling: after fail_free (5) failures from one IP, it waits, and
     * the wait grows. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(
            tka_client_authenticate(a, "billing", 7, wrong, strlen(wrong), "192.0.2.9", T0 + 1000, &got, &wait, NULL),
            TKA_AUTH_BAD);
    }
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, wrong, strlen(wrong), "192.0.2.9", T0 + 1000, &got, &wait, NULL),
        TKA_AUTH_BAD);
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "192.0.2.9", T0 + 1000, &got, &wait, NULL),
        TKA_AUTH_THROTTLED);
    assert_true(wait >= 1);
    /* Regression (issue 8 section 3): six wrong secrets from one address
     * used to lock the client out everywhere for up to 15 minutes. The
     * owner, presenting the right secret from another address, is never
     * held back by someone else's failures. */
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "198.51.100.1", T0 + 1000, &got, &wait, NULL),
        TKA_AUTH_OK);
    /* Regression: invented client ids from one address used to lock out
     * every client at that address; now they slow down that address only
     * (here it is 192.0.2.9, already slow), not the clients themselves. */
    for (int i = 0; i < 8; i++) {
        char id[16];
        snprintf(id, sizeof id, "made-up-%d", i);
        (void)tka_client_authenticate(a, id, strlen(id), wrong, strlen(wrong), "203.0.113.7", T0 + 1000, &got, &wait,
                                      NULL);
    }
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "203.0.113.7", T0 + 1000, &got, &wait, NULL),
        TKA_AUTH_THROTTLED);
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "198.51.100.1", T0 + 1000, &got, &wait, NULL),
        TKA_AUTH_OK);
    /* After the wait, the right secret works from the throttled address. */
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "192.0.2.9", T0 + 2000, &got, &wait, NULL),
        TKA_AUTH_OK);
    /* The operator learns which failure it was; the client does not. */
    tka_auth_why why = TKA_AUTH_WHY_NONE;
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, wrong, strlen(wrong), "10.1.0.1", T0 + 3000, &got, &wait, &why),
        TKA_AUTH_BAD);
    assert_int_equal(why, TKA_AUTH_WHY_WRONG_SECRET);
    assert_int_equal(
        tka_client_authenticate(a, "nobody", 6, wrong, strlen(wrong), "10.1.0.1", T0 + 3000, &got, &wait, &why),
        TKA_AUTH_BAD);
    assert_int_equal(why, TKA_AUTH_WHY_UNKNOWN_CLIENT);
    tka_counters k;
    tka_counters_get(a, &k);
    assert_true(k.client_auth_failed >= 9);
    assert_true(k.client_auth_throttled >= 2);

    /* Disabled clients. */
    assert_int_equal(tks_client_set_disabled(s, "billing", 1), TKS_OK);
    assert_int_equal(
        tka_client_authenticate(a, "billing", 7, secret, strlen(secret), "198.51.100.1", T0 + 2001, &got, &wait, NULL),
        TKA_AUTH_DISABLED);
    tka_close(a);
    tks_close(s);
}

/* A guess spread over many addresses (a botnet against one client id): once
 * the id has failed fail_free * 4 times in the window, every further failure
 * blocks its own address at once, so each new address gets one guess; the
 * owner at an address of its own still gets in. */
static void test_throttle_distributed(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x13, T0);
    tks_client cl, got;
    char secret[TKA_SECRET_TEXT_LEN], err[256];
    assert_int_equal(tka_client_create(a, NULL, "svc", "x", "api", 0, T0, &cl, secret, err, sizeof err), 0);
    char wrong[TKA_SECRET_TEXT_LEN];
    snprintf(wrong, sizeof wrong, "%s", secret);
    wrong[15] ^= 1;
    int64_t wait = 0;
    char ip[32];
    /* 21 addresses, one failure each: the first 20 leave their address
     * free (1 failure < fail_free); the 21st makes the id hot, and its
     * address waits at once. */
    for (int i = 0; i < 21; i++) {
        snprintf(ip, sizeof ip, "198.18.0.%d", i + 1);
        assert_int_equal(tka_client_authenticate(a, "svc", 3, wrong, strlen(wrong), ip, T0, &got, &wait, NULL),
                         TKA_AUTH_BAD);
    }
    assert_int_equal(tka_client_authenticate(a, "svc", 3, secret, strlen(secret), "198.18.0.1", T0, &got, &wait, NULL),
                     TKA_AUTH_OK);
    assert_int_equal(tka_client_authenticate(a, "svc", 3, secret, strlen(secret), "198.18.0.21", T0, &got, &wait, NULL),
                     TKA_AUTH_THROTTLED);
    /* A new address now gets one guess, then waits. */
    assert_int_equal(tka_client_authenticate(a, "svc", 3, wrong, strlen(wrong), "198.18.1.1", T0, &got, &wait, NULL),
                     TKA_AUTH_BAD);
    assert_int_equal(tka_client_authenticate(a, "svc", 3, wrong, strlen(wrong), "198.18.1.1", T0, &got, &wait, NULL),
                     TKA_AUTH_THROTTLED);
    assert_true(wait >= 1);
    /* The owner, elsewhere, with the right secret: never held back. */
    assert_int_equal(tka_client_authenticate(a, "svc", 3, secret, strlen(secret), "192.0.2.200", T0, &got, &wait, NULL),
                     TKA_AUTH_OK);
    tka_close(a);
    tks_close(s);
}

static void test_issue_validate_revoke(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x11, T0);
    tks_client cl, other;
    char secret[TKA_SECRET_TEXT_LEN], err[256];
    assert_int_equal(tka_client_create(a, NULL, "web", "orders:read orders:write", "orders-api billing-api", 0, T0, &cl,
                                       secret, err, sizeof err),
                     0);
    assert_int_equal(
        tka_client_create(a, NULL, "other", "orders:read", "orders-api", 0, T0, &other, secret, err, sizeof err), 0);
    char why[128];
    tka_issued t;
    assert_int_equal(tka_issue_client_credentials(a, &cl, "orders:admin", NULL, T0, &t, why, sizeof why),
                     TKA_GRANT_INVALID_SCOPE);
    assert_int_equal(tka_issue_client_credentials(a, &cl, "orders:read", "evil-api", T0, &t, why, sizeof why),
                     TKA_GRANT_INVALID_TARGET);
    assert_int_equal(tka_issue_client_credentials(a, &cl, "orders:read", "billing-api", T0, &t, why, sizeof why),
                     TKA_GRANT_OK);
    assert_string_equal(t.scope, "orders:read");
    assert_int_equal(t.expires_in, 900);

    /* The token is an RFC 9068 access token. */
    tk_token *tok = NULL;
    tk_verdict v;
    tka_check chk = {"billing-api", NULL, 0, NULL, 0};
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), &chk, T0 + 1, &v, &tok), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_string_equal(tk_token_typ(tok), "at+jwt");
    assert_string_equal(tk_token_claim_string(tok, "iss"), "https://auth.test");
    assert_string_equal(tk_token_claim_string(tok, "sub"), "web");
    assert_string_equal(tk_token_claim_string(tok, "client_id"), "web");
    assert_string_equal(tk_token_claim_string(tok, "jti"), t.jti);
    tk_token_free(tok);

    /* Wrong audience, missing scope, expiry. */
    tka_check other_aud = {"orders-api", NULL, 0, NULL, 0};
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), &other_aud, T0 + 1, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_WRONG_AUDIENCE);
    const char *need[] = {"orders:write"};
    tka_check scope_chk = {NULL, need, 1, NULL, 0};
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), &scope_chk, T0 + 1, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_INSUFFICIENT_SCOPE);
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), NULL, T0 + 900 + 60, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_EXPIRED);

    /* RFC 7009: another client may not revoke it; its own client may. */
    assert_int_equal(tka_revoke_token(a, &other, t.access_token, strlen(t.access_token), T0 + 2), 1);
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), NULL, T0 + 2, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_int_equal(tka_revoke_token(a, &cl, "not-a-token", 11, T0 + 2), 0);
    assert_int_equal(tka_revoke_token(a, &cl, t.access_token, strlen(t.access_token), T0 + 2), 0);
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), NULL, T0 + 3, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    /* Revoked is reported before a missing scope (401 before 403). */
    assert_int_equal(tka_validate(a, t.access_token, strlen(t.access_token), &scope_chk, T0 + 3, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);

    /* A revocation made by another process arrives with tka_maintain. */
    tka_issued t2;
    issue(a, &cl, NULL, T0 + 4, &t2);
    tks_store *s2 = NULL;
    tka_authority *b = open_auth(&s2, 0x11, T0 + 4);
    assert_int_equal(tka_revoke(b, TKS_REVOKE_JTI, t2.jti, "admin", T0 + 5, T0 + 5000), 0);
    assert_int_equal(tka_validate(a, t2.access_token, strlen(t2.access_token), NULL, T0 + 5, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_int_equal(tka_maintain(a, T0 + 6), 0);
    assert_int_equal(tka_validate(a, t2.access_token, strlen(t2.access_token), NULL, T0 + 6, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    assert_non_null(strstr(v.detail, "admin"));

    /* A restart keeps the revocation. */
    tka_close(a);
    tks_close(s);
    a = open_auth(&s, 0x11, T0 + 7);
    assert_int_equal(tka_validate(a, t2.access_token, strlen(t2.access_token), NULL, T0 + 7, &v, NULL), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);

    tka_issued_clear(&t);
    tka_issued_clear(&t2);
    tka_close(b);
    tks_close(s2);
    tka_close(a);
    tks_close(s);
}

static void test_master_key_file(void **state)
{
    (void)state;
    char path[128], err[256];
    unsigned char k1[TKA_MASTER_KEY_LEN], k2[TKA_MASTER_KEY_LEN];
    int created = 0;
    snprintf(path, sizeof path, "%s/master.key", dir);
    assert_int_not_equal(tka_master_key_load(path, 0, k1, &created, err, sizeof err), 0);
    assert_int_equal(tka_master_key_load(path, 1, k1, &created, err, sizeof err), 0);
    assert_int_equal(created, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(tka_master_key_load(path, 1, k2, &created, err, sizeof err), 0);
    assert_int_equal(created, 0);
    assert_memory_equal(k1, k2, sizeof k1);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_not_equal(tka_master_key_load(path, 1, k2, &created, err, sizeof err), 0);
    assert_non_null(strstr(err, "chmod 600"));
}

/* ---- trusted external issuers (issues.c) ---------------------------------------------- */

static char *sign_ext(const tk_key *k, const char *claims)
{
    char *tok = NULL;
    size_t tl = 0;
    assert_int_equal(tk_sign(k, "JWT", (const unsigned char *)claims, strlen(claims), &tok, &tl), TK_OK);
    return tok;
}

static int any(tka_authority *a, tka_trust *tr, const char *tok, const char *aud, const char *scope,
               const char *route_iss, int64_t now, tk_verdict *v, tka_identity *id)
{
    const char *sc[1] = {scope};
    const char *is[1] = {route_iss};
    tka_check chk = {aud, sc, scope ? 1 : 0, is, route_iss ? 1 : 0};
    return tka_validate_any(a, tr, tok, strlen(tok), &chk, NULL, now, v, id);
}

static void test_trusted_issuers(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x11, T0);
    char err[256], secret[TKA_SECRET_TEXT_LEN];
    tks_client cl;
    assert_int_equal(
        tka_client_create(a, NULL, "svc", "orders:read", "orders-api", 0, T0, &cl, secret, err, sizeof err), 0);
    tka_issued own;
    issue(a, &cl, NULL, T0, &own);

    tk_key *ext = NULL, *impostor = NULL;
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "ext1", &ext), TK_OK);
    assert_int_equal(tk_key_generate(TK_ALG_ES256, "ext1", &impostor), TK_OK);
    char *jwk = NULL;
    assert_int_equal(tk_key_to_jwk(ext, 0, &jwk), TK_OK);
    char jwks[2048];
    snprintf(jwks, sizeof jwks, "{\"keys\":[%s]}", jwk);
    tk_free(jwk);

    tka_trust_config tc;
    tka_trust_config_defaults(&tc);
    tka_issuer_policy pol[2];
    memset(pol, 0, sizeof pol);
    pol[0].issuer = "https://ext.test/";
    pol[0].jwks_text = jwks;
    pol[0].jwks_text_len = strlen(jwks);
    pol[0].audiences = "api://orders";
    pol[0].scope_claims = "scp";
    pol[0].leeway = -1;
    pol[1].issuer = "https://other.test/";
    pol[1].jwks_text = jwks;
    pol[1].jwks_text_len = strlen(jwks);
    pol[1].leeway = -1;
    tka_trust *tr = NULL;
    if (tka_trust_open(&tc, pol, 2, &tr, err, sizeof err) != 0) {
        fail_msg("tka_trust_open: %s", err);
    }
    char claims[512];
    snprintf(claims, sizeof claims,
             "{\"iss\":\"https://ext.test/\",\"sub\":\"alice\",\"aud\":\"api://orders\",\"exp\":%d,"
             "\"azp\":\"spa\",\"jti\":\"j-ext\",\"scp\":[\"Orders.Read\",\"Orders.Write\"]}",
             T0 + 600);
    char *good = sign_ext(ext, claims);
    char *forged = sign_ext(impostor, claims);
    snprintf(claims, sizeof claims,
             "{\"iss\":\"https://evil.test/\",\"sub\":\"alice\",\"aud\":\"api://orders\",\"exp\":%d}", T0 + 600);
    char *evil = sign_ext(ext, claims);
    snprintf(claims, sizeof claims, "{\"iss\":\"https://other.test/\",\"sub\":\"bob\",\"aud\":\"x\",\"exp\":%d}",
             T0 + 600);
    char *other = sign_ext(ext, claims);

    tk_verdict v;
    tka_identity id;
    /* the issuer's audience applies when the route names none; scopes from scp (an array) */
    assert_int_equal(any(a, tr, good, NULL, "Orders.Read", NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_true(id.foreign);
    assert_string_equal(id.issuer, "https://ext.test/");
    assert_string_equal(id.subject, "alice");
    assert_string_equal(id.client_id, "spa");
    assert_string_equal(id.scope, "Orders.Read Orders.Write");
    /* a scope it lacks: the explanation names the claim and what it has */
    assert_int_equal(any(a, tr, good, NULL, "Orders.Admin", NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_INSUFFICIENT_SCOPE);
    assert_non_null(strstr(v.detail, "'scp'"));
    assert_non_null(strstr(v.detail, "Orders.Write"));
    /* the route's audience wins */
    assert_int_equal(any(a, tr, good, "billing", NULL, NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_WRONG_AUDIENCE);
    /* the same kid from another key: bad signature, never accepted */
    assert_int_equal(any(a, tr, forged, NULL, NULL, NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_BAD_SIGNATURE);
    /* expired, by the issuer's leeway (the server's: 60 s) */
    assert_int_equal(any(a, tr, good, NULL, NULL, NULL, T0 + 600 + 61, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_EXPIRED);
    /* an issuer nobody trusts: named, with the trusted ones */
    assert_int_equal(any(a, tr, evil, NULL, NULL, NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_WRONG_ISSUER);
    assert_non_null(strstr(v.detail, "https://evil.test/"));
    assert_non_null(strstr(v.detail, "https://ext.test/, https://other.test/"));
    /* a route for our own tokens only */
    assert_int_equal(any(a, tr, good, NULL, NULL, "https://auth.test", T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_WRONG_ISSUER);
    assert_non_null(strstr(v.detail, "this route accepts tokens of https://auth.test only"));
    /* no audience from the route, the issuer or a default: the caller answers 400 */
    assert_int_equal(any(a, tr, other, NULL, NULL, NULL, T0 + 1, &v, &id), 1);
    assert_int_equal(any(a, tr, other, "x", NULL, NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_string_equal(id.client_id, "");
    /* our own tokens, beside them */
    assert_int_equal(any(a, tr, own.access_token, "orders-api", NULL, NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_VALID);
    assert_false(id.foreign);
    assert_string_equal(id.issuer, "https://auth.test");
    assert_string_equal(id.client_id, cl.id);
    assert_int_equal(any(a, tr, own.access_token, NULL, NULL, NULL, T0 + 1, &v, &id), 1);
    /* a jti revoked here is refused for a foreign token too */
    assert_int_equal(tka_revoke(a, TKS_REVOKE_JTI, "j-ext", "stolen", T0 + 2, T0 + 3600), 0);
    assert_int_equal(any(a, tr, good, NULL, NULL, NULL, T0 + 3, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_REVOKED);
    /* with nothing trusted, a foreign token is told how to trust its issuer */
    assert_int_equal(any(a, NULL, other, "x", NULL, NULL, T0 + 1, &v, &id), 0);
    assert_int_equal(v.reason, TK_REASON_WRONG_ISSUER);
    assert_non_null(strstr(v.detail, "--trust-issuer https://other.test/"));

    /* bad policies are refused with the issuer and the setting named */
    tka_trust *bad = NULL;
    pol[0].algorithms = "HS256";
    assert_int_not_equal(tka_trust_open(&tc, pol, 1, &bad, err, sizeof err), 0);
    assert_non_null(strstr(err, "HS256"));
    assert_null(bad);
    pol[0].algorithms = NULL;
    pol[0].issuer = "http://plain.test/";
    pol[0].jwks_text = NULL;
    assert_int_not_equal(tka_trust_open(&tc, pol, 1, &bad, err, sizeof err), 0);
    assert_non_null(strstr(err, "http://plain.test/"));

    tk_free(good);
    tk_free(forged);
    tk_free(evil);
    tk_free(other);
    tk_key_free(ext);
    tk_key_free(impostor);
    tka_trust_close(tr);
    tka_issued_clear(&own);
    tka_close(a);
    tks_close(s);
}

/* ---- user profiles (OpenID Connect standard claims) -------------------------------- */

static void test_profile_check(void **state)
{
    (void)state;
    char err[256];
    tks_user p;
    memset(&p, 0, sizeof p);
    assert_int_equal(tka_profile_check(&p, err, sizeof err), 0); /* all empty is fine */
    snprintf(p.name, sizeof p.name, "Zoë Ünal 山田");
    snprintf(p.email, sizeof p.email, "zoë@example.org"); /* UTF-8 in the local part */
    p.email_verified = 1;
    assert_int_equal(tka_profile_check(&p, err, sizeof err), 0);
    static const char *const bad_names[] = {
        "tab\there", "nul\x7f",          "\xc3", /* cut sequence */
        "\xc0\xaf",  "\xed\xa0\x80",             /* overlong '/', a surrogate */
        "\xc2\x85",  "\xf4\x90\x80\x80",         /* C1 NEL, past U+10FFFF */
    };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        tks_user q = p;
        snprintf(q.given_name, sizeof q.given_name, "%s", bad_names[i]);
        assert_int_equal(tka_profile_check(&q, err, sizeof err), -1);
        assert_non_null(strstr(err, "given name"));
    }
    static const char *const bad_emails[] = {"alice",         "@example.org",   "alice@",          "a b@example.org",
                                             "alice@example", "alice@example.", "a@b@example.org", "alice@exämple.org"};
    for (size_t i = 0; i < sizeof bad_emails / sizeof bad_emails[0]; i++) {
        tks_user q = p;
        snprintf(q.email, sizeof q.email, "%s", bad_emails[i]);
        assert_int_equal(tka_profile_check(&q, err, sizeof err), -1);
        assert_non_null(strstr(err, "not an e-mail address"));
    }
    tks_user q = p;
    q.email[0] = '\0';
    assert_int_equal(tka_profile_check(&q, err, sizeof err), -1); /* verified, but no address */
    memset(q.family_name, 'x', TKS_PROFILE_MAX);
    q.family_name[TKS_PROFILE_MAX] = '\0';
    q.email_verified = 0;
    assert_int_equal(tka_profile_check(&q, err, sizeof err), 0); /* exactly the limit */
}

static int count_audit(int64_t at, const char *kind, const char *client_id, const char *ip, const char *detail,
                       void *ud)
{
    (void)at;
    (void)kind;
    (void)client_id;
    (void)ip;
    (void)detail;
    (*(int *)ud)++;
    return 0;
}

static int audit_rows(tks_store *s)
{
    int n = 0;
    assert_int_equal(tks_audit_list(s, 1000000, count_audit, &n), TKS_OK);
    return n;
}

/* Retention (issue 13 section 3): a pass purges in batches within its
 * budget, says when rows are left, and a retention of 0 keeps everything. */
static void test_purge_passes(void **state)
{
    (void)state;
    tks_store *s = NULL;
    tka_authority *a = open_auth(&s, 0x61, T0);
    int young = audit_rows(s);
    const int old = 2 * TKA_PURGE_BATCH + 500;
    for (int i = 0; i < old; i++) {
        assert_int_equal(tks_audit(s, T0 - 91 * 86400 + i, "login_failed", NULL, "192.0.2.7", "x"), TKS_OK);
    }
    assert_int_equal(audit_rows(s), young + old);
    int passes = 0;
    int r;
    do {
        r = tka_purge(a, T0);
        assert_true(r == 0 || r == 1);
        passes++;
    } while (r == 1 && passes < 100);
    assert_int_equal(r, 0);
    assert_int_equal(audit_rows(s), young);
    tka_close(a);

    /* --audit-retention 0: kept for ever */
    char err[256];
    tka_config c;
    config(&c, 0x61);
    c.audit_retention = 0;
    assert_int_equal(tka_open(s, &c, T0, &a, err, sizeof err), 0);
    assert_int_equal(tks_audit(s, 1, "login_failed", NULL, NULL, "ancient"), TKS_OK);
    assert_int_equal(tka_purge(a, T0), 0);
    assert_int_equal(audit_rows(s), young + 1);
    tka_close(a);
    /* out of range: refused */
    c.audit_retention = TKA_RETENTION_MAX + 1;
    assert_int_equal(tka_open(s, &c, T0, &a, err, sizeof err), -1);
    c.audit_retention = 0;
    c.refresh_grace = -1;
    assert_int_equal(tka_open(s, &c, T0, &a, err, sizeof err), -1);
    tks_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keyring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_two_algs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_many_rotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_key_waits_for_the_jwks_caches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocations_go_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_many_and_lazy_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_and_throttling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throttle_distributed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_validate_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_issuers, setup, teardown),
        cmocka_unit_test(test_profile_check),
        cmocka_unit_test_setup_teardown(test_purge_passes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
