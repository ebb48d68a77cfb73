/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_netaddr.c — client addresses (src/http/netaddr.c) and the
 * per-address connection counts (src/http/conns.c): IP and CIDR parsing,
 * the client behind trusted proxies read from X-Forwarded-For and
 * Forwarded (RFC 7239) the way an attacker would try to fool it, and the
 * open-addressing table that counts connections per address.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/internal.h"

static void addr(const char *text, unsigned char out[16])
{
    if (srv_addr_parse(text, strlen(text), out) != 0) {
        fail_msg("'%s' does not parse", text);
    }
}

static void test_addr_parse(void **state)
{
    (void)state;
    unsigned char a[16];
    char back[64];
    static const char *const good[] = {"127.0.0.1",        "203.0.113.9",         "0.0.0.0", "::1", "2001:db8::1",
                                       "::ffff:192.0.2.1", "2001:db8:0:0:0:0:0:2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(srv_addr_parse(good[i], strlen(good[i]), a), 0);
    }
    addr("203.0.113.9", a);
    srv_addr_format(a, back, sizeof back);
    assert_string_equal(back, "203.0.113.9");
    addr("::ffff:192.0.2.1", a); /* IPv4-mapped is IPv4 */
    srv_addr_format(a, back, sizeof back);
    assert_string_equal(back, "192.0.2.1");
    addr("2001:db8:0:0:0:0:0:2", a);
    srv_addr_format(a, back, sizeof back);
    assert_string_equal(back, "2001:db8::2");
    static const char *const bad[] = {
        "",          "1.2.3",      "1.2.3.4.5", "256.1.1.1",
        "01.2.3.4x", " 1.2.3.4",   "1.2.3.4 ",  "fe80::1%lo",
        "::g",       "1.2.3.4:80", "[::1]",     "unknown",
        "_hidden",   "1.2.3.-4",   "::1::",     "1234567890123456789012345678901234567890123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (srv_addr_parse(bad[i], strlen(bad[i]), a) == 0) {
            fail_msg("'%s' parsed", bad[i]);
        }
    }
    /* a NUL inside, and no NUL at the end: lengths are honoured */
    assert_int_not_equal(srv_addr_parse("1.2.3.4\0", 8, a), 0);
    assert_int_equal(srv_addr_parse("1.2.3.45", 7, a), 0);
    srv_addr_format(a, back, sizeof back);
    assert_string_equal(back, "1.2.3.4");
}

static void test_cidr(void **state)
{
    (void)state;
    srv_cidr list[4];
    size_t n = 0;
    char err[128];
    assert_int_equal(srv_cidr_list_parse("10.0.0.0/8, 192.0.2.7,2001:db8::/32", list, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    unsigned char a[16];
    addr("10.200.3.4", a);
    assert_true(srv_cidr_match(list, n, a));
    addr("11.0.0.1", a);
    assert_false(srv_cidr_match(list, n, a));
    addr("192.0.2.7", a);
    assert_true(srv_cidr_match(list, n, a));
    addr("192.0.2.8", a);
    assert_false(srv_cidr_match(list, n, a));
    addr("2001:db8:ffff::1", a);
    assert_true(srv_cidr_match(list, n, a));
    addr("2001:db9::1", a);
    assert_false(srv_cidr_match(list, n, a));
    /* an IPv4 range never matches an IPv6 address that is not mapped */
    assert_int_equal(srv_cidr_list_parse("0.0.0.0/0", list, 4, &n, err, sizeof err), 0);
    addr("2001:db8::1", a);
    assert_false(srv_cidr_match(list, n, a));
    addr("8.8.8.8", a);
    assert_true(srv_cidr_match(list, n, a));
    /* odd prefix lengths */
    assert_int_equal(srv_cidr_list_parse("172.16.0.0/12", list, 4, &n, err, sizeof err), 0);
    addr("172.31.255.255", a);
    assert_true(srv_cidr_match(list, n, a));
    addr("172.32.0.0", a);
    assert_false(srv_cidr_match(list, n, a));
    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10/8", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (srv_cidr_list_parse(bad[i], list, 4, &n, err, sizeof err) == 0) {
            fail_msg("'%s' parsed", bad[i]);
        }
    }
    assert_int_equal(srv_cidr_list_parse("1.1.1.1 2.2.2.2 3.3.3.3", list, 2, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 2"));
}

/* The client of one request: peer + header lines, with 127.0.0.0/8 and
 * 10.0.0.0/8 trusted. */
static int client(const char *peer, enum srv_fwd kind, const char *h1, const char *h2, char *out, size_t cap)
{
    srv_cidr trusted[2];
    size_t n = 0;
    char err[64];
    assert_int_equal(srv_cidr_list_parse("127.0.0.0/8,10.0.0.0/8", trusted, 2, &n, err, sizeof err), 0);
    const char *v[2] = {h1, h2};
    size_t l[2] = {h1 ? strlen(h1) : 0, h2 ? strlen(h2) : 0};
    unsigned char p[16], a[16];
    addr(peer, p);
    int rc = srv_client_addr(p, v, l, h2 ? 2 : h1 ? 1 : 0, kind, trusted, n, a);
    srv_addr_format(a, out, cap);
    return rc;
}

static void test_client_behind_proxies(void **state)
{
    (void)state;
    char ip[64];
    /* not from a trusted proxy: headers are never read */
    assert_int_equal(client("203.0.113.50", SRV_FWD_XFF, "198.51.100.1", NULL, ip, sizeof ip), 0);
    assert_string_equal(ip, "203.0.113.50");
    /* from a trusted proxy: the rightmost untrusted entry */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "203.0.113.9", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    /* a client forging its own prefix: never read */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "198.51.100.1, 203.0.113.9", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "garbage, 203.0.113.9", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    /* two proxies in a row: both skipped */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "1.2.3.4, 203.0.113.9, 10.1.1.1", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    /* several header lines are one list, the last line nearest */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "198.51.100.1", "203.0.113.9", ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "203.0.113.9", "10.0.0.2", ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    /* ports and brackets */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "203.0.113.9:4711", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "[2001:db8::7]:443", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "2001:db8::7");
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, " 2001:db8::7 ", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "2001:db8::7");
    /* garbage where it matters: the peer, and -1 (logged) */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "203.0.113.9, unknown", NULL, ip, sizeof ip), -1);
    assert_string_equal(ip, "127.0.0.1");
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "203.0.113.9, [::1", NULL, ip, sizeof ip), -1);
    assert_string_equal(ip, "127.0.0.1");
    /* no header, or only empty elements: the peer */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, NULL, NULL, ip, sizeof ip), 0);
    assert_string_equal(ip, "127.0.0.1");
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, " , ,", NULL, ip, sizeof ip), 0);
    assert_string_equal(ip, "127.0.0.1");
    /* every hop trusted: the leftmost */
    assert_int_equal(client("127.0.0.1", SRV_FWD_XFF, "10.0.0.9, 127.0.0.5", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "10.0.0.9");
    /* RFC 7239 */
    assert_int_equal(
        client("127.0.0.1", SRV_FWD_FORWARDED, "for=192.0.2.60;proto=http;by=203.0.113.43", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "192.0.2.60");
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "for=198.51.100.1, for=\"[2001:db8:cafe::17]:4711\"", NULL,
                            ip, sizeof ip),
                     1);
    assert_string_equal(ip, "2001:db8:cafe::17");
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "proto=https;For=\"203.0.113.9:80\"", NULL, ip, sizeof ip),
                     1);
    assert_string_equal(ip, "203.0.113.9");
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "for=unknown", NULL, ip, sizeof ip), -1);
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "by=1.2.3.4", NULL, ip, sizeof ip), -1);
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "for=\"1.2.3.4", NULL, ip, sizeof ip), -1);
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "for=\"1.2.\\3.4\"", NULL, ip, sizeof ip), -1);
    /* a comma inside quotes is not an element boundary */
    assert_int_equal(client("127.0.0.1", SRV_FWD_FORWARDED, "for=\"a,b\", for=203.0.113.9", NULL, ip, sizeof ip), 1);
    assert_string_equal(ip, "203.0.113.9");
}

/* The per-address counts: many addresses (colliding in the table), adds and
 * removes in any order; the counts stay exact and the limit holds. */
static void test_connection_counts(void **state)
{
    (void)state;
    struct tkh_server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->cfg.max_connections = 64;
    s->cfg.max_per_ip = 3;
    assert_int_equal(srv_conns_init(s), 0);
    enum { N = 100 };
    unsigned char a[N][16];
    for (int i = 0; i < N; i++) {
        char t[32];
        snprintf(t, sizeof t, "198.18.%d.%d", i / 200, i % 200 + 1);
        addr(t, a[i]);
    }
    /* three each are admitted, the fourth not */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            assert_true(srv_conns_admit(s, a[i]));
            assert_int_equal(srv_conns_add(s, a[i]), 1);
        }
    }
    for (int i = 0; i < N; i++) {
        assert_false(srv_conns_admit(s, a[i]));
    }
    /* remove in another order: each address frees up exactly when its
     * count drops below the limit, and others are not disturbed */
    for (int i = N - 1; i >= 0; i -= 2) {
        srv_conns_remove(s, a[i]);
        assert_true(srv_conns_admit(s, a[i]));
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(srv_conns_admit(s, a[i]), (N - 1 - i) % 2 == 0);
    }
    for (int i = 0; i < N; i++) {
        int left = (N - 1 - i) % 2 == 0 ? 2 : 3;
        for (int k = 0; k < left; k++) {
            srv_conns_remove(s, a[i]);
        }
    }
    for (size_t i = 0; i < s->ipc_cap; i++) {
        assert_int_equal(s->ipc[i].count, 0);
    }
    /* trusted proxies are neither limited nor counted */
    char err[64];
    assert_int_equal(srv_cidr_list_parse("198.18.0.0/16", s->trusted, SRV_TRUSTED_MAX, &s->n_trusted, err, sizeof err),
                     0);
    for (int k = 0; k < 10; k++) {
        assert_true(srv_conns_admit(s, a[0]));
        assert_int_equal(srv_conns_add(s, a[0]), 0);
    }
    /* no limit configured */
    s->n_trusted = 0;
    s->cfg.max_per_ip = 0;
    assert_true(srv_conns_admit(s, a[1]));
    assert_int_equal(srv_conns_add(s, a[1]), 0);
    srv_conns_free(s);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_client_behind_proxies),
        cmocka_unit_test(test_connection_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
