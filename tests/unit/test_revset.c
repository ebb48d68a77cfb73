/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_revset.c — the compact revocation set (src/authority/revset.c):
 * add, lookup, the rules for a key seen twice, deletion and purge by
 * backward shift (runs that wrap around the end, forced with hand-made keys
 * in the smallest table), growth, the reason table, time clamping, and a
 * random walk checked against a plain list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authority/internal.h"

static const unsigned char HK[TKA_REV_HASH_KEY_LEN] = "0123456789abcdef";

/* A key whose home slot is chosen: its first 32 bits (native order, as
 * revset.c reads them) are `h`, the rest tell keys apart. */
static void key_at(unsigned char k[TKA_REV_KEY_LEN], uint32_t h, uint32_t tag)
{
    memset(k, 0, TKA_REV_KEY_LEN);
    memcpy(k, &h, sizeof h);
    memcpy(k + 4, &tag, sizeof tag);
    k[14] = 0x5a;
}

static void test_key(void **state)
{
    (void)state;
    unsigned char a[TKA_REV_KEY_LEN], b[TKA_REV_KEY_LEN], c[TKA_REV_KEY_LEN];
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, "abc", 3, a), 0);
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_SID, "abc", 3, b), 0);
    assert_memory_not_equal(a, b, TKA_REV_KEY_LEN); /* the kind is part of the key */
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, "abc", 3, c), 0);
    assert_memory_equal(a, c, TKA_REV_KEY_LEN);
    unsigned char hk2[TKA_REV_HASH_KEY_LEN];
    memcpy(hk2, HK, sizeof hk2);
    hk2[0] ^= 1;
    assert_int_equal(tka_rev_key(hk2, TKS_REVOKE_JTI, "abc", 3, c), 0);
    assert_memory_not_equal(a, c, TKA_REV_KEY_LEN); /* keyed */
    char v[TKS_VALUE_MAX + 1];
    memset(v, 'v', sizeof v);
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, v, TKS_VALUE_MAX, c), 0);
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, v, TKS_VALUE_MAX + 1, c), -1);
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, v, 0, c), -1);
}

static void test_put_get(void **state)
{
    (void)state;
    struct tka_revset s;
    tka_revset_init(&s, HK);
    unsigned char k[TKA_REV_KEY_LEN], other[TKA_REV_KEY_LEN];
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, "jti-1", 5, k), 0);
    assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, "jti-2", 5, other), 0);
    assert_null(tka_revset_get(&s, k)); /* empty, no table yet */
    assert_int_equal(tka_revset_del(&s, k), 0);
    assert_int_equal(tka_revset_put(&s, k, "logout", 100, 1000), 0);
    const struct tka_rev_slot *e = tka_revset_get(&s, k);
    assert_non_null(e);
    assert_string_equal(tka_revset_reason(&s, e), "logout");
    assert_int_equal(e->revoked_at, 100);
    assert_int_equal(e->until, 1000);
    assert_null(tka_revset_get(&s, other));
    assert_int_equal(s.count, 1);
    /* seen again: first reason, earliest revoked_at, latest until */
    assert_int_equal(tka_revset_put(&s, k, "admin", 150, 900), 0);
    e = tka_revset_get(&s, k);
    assert_string_equal(tka_revset_reason(&s, e), "logout");
    assert_int_equal(e->revoked_at, 100);
    assert_int_equal(e->until, 1000);
    assert_int_equal(tka_revset_put(&s, k, "admin", 90, 1500), 0);
    e = tka_revset_get(&s, k);
    assert_int_equal(e->revoked_at, 90);
    assert_int_equal(e->until, 1500);
    assert_int_equal(s.count, 1);
    /* no reason */
    assert_int_equal(tka_revset_put(&s, other, NULL, 5, 6), 0);
    assert_string_equal(tka_revset_reason(&s, tka_revset_get(&s, other)), "");
    /* times are clamped into 32 bits; until never 0 (an empty slot) */
    unsigned char t[TKA_REV_KEY_LEN];
    key_at(t, 7, 1);
    assert_int_equal(tka_revset_put(&s, t, "x", -5, INT64_MAX), 0);
    e = tka_revset_get(&s, t);
    assert_int_equal(e->revoked_at, 0);
    assert_int_equal(e->until, UINT32_MAX);
    key_at(t, 7, 2);
    assert_int_equal(tka_revset_put(&s, t, "x", INT64_MAX, -1), 0);
    e = tka_revset_get(&s, t);
    assert_non_null(e);
    assert_int_equal(e->revoked_at, UINT32_MAX);
    assert_int_equal(e->until, 1);
    assert_int_equal(tka_revset_del(&s, k), 1);
    assert_null(tka_revset_get(&s, k));
    assert_int_equal(tka_revset_del(&s, k), 0);
    assert_int_equal(s.count, 3);
    tka_revset_free(&s);
    tka_revset_free(&s); /* again: a no-op */
}

/* Keys that share a home slot, in runs that wrap past the last slot: each
 * deletion shifts the rest back so every remaining key is still found. */
static void test_collisions_and_wraparound(void **state)
{
    (void)state;
    struct tka_revset s;
    tka_revset_init(&s, HK);
    unsigned char k[40][TKA_REV_KEY_LEN];
    /* home = last slot (h = 2^32 - 1) for 0..9, home 0 for 10..19, home 1
     * for 20..29, the middle for 30..39: 40 keys in 64 slots, load 0.625 */
    for (uint32_t i = 0; i < 40; i++) {
        uint32_t h = i < 10 ? UINT32_MAX : i < 20 ? 0 : i < 30 ? (UINT32_MAX / 64) + 1 : UINT32_MAX / 2;
        key_at(k[i], h, i);
        assert_int_equal(tka_revset_put(&s, k[i], "admin", 10, 100 + i), 0);
    }
    assert_int_equal(s.cap, 64);
    assert_int_equal(s.count, 40);
    for (int i = 0; i < 40; i++) {
        assert_non_null(tka_revset_get(&s, k[i]));
    }
    /* delete in an order that punches holes at the head, middle and tail
     * of the wrapped runs */
    int order[] = {0, 15, 9, 10, 25, 5, 19, 20, 33, 1};
    for (size_t j = 0; j < sizeof order / sizeof order[0]; j++) {
        assert_int_equal(tka_revset_del(&s, k[order[j]]), 1);
        for (int i = 0; i < 40; i++) {
            int gone = 0;
            for (size_t m = 0; m <= j; m++) {
                gone |= order[m] == i;
            }
            if (gone) {
                assert_null(tka_revset_get(&s, k[i]));
            } else {
                const struct tka_rev_slot *e = tka_revset_get(&s, k[i]);
                assert_non_null(e);
                assert_int_equal(e->until, 100 + i);
            }
        }
    }
    assert_int_equal(s.count, 30);
    /* purge: until <= 120 goes (keys 0..20), the others stay findable */
    size_t before = s.count;
    size_t purged = tka_revset_purge_expired(&s, 120);
    assert_int_equal(s.count, before - purged);
    for (int i = 0; i < 40; i++) {
        const struct tka_rev_slot *e = tka_revset_get(&s, k[i]);
        if (i <= 20) {
            assert_null(e);
        } else {
            int gone = 0;
            for (size_t m = 0; m < sizeof order / sizeof order[0]; m++) {
                gone |= order[m] == i;
            }
            if (gone) {
                assert_null(e);
            } else {
                assert_non_null(e);
            }
        }
    }
    size_t left = s.count;
    assert_int_equal(tka_revset_purge_expired(&s, 1000), left);
    assert_int_equal(s.count, 0);
    for (size_t i = 0; i < s.cap; i++) {
        assert_int_equal(s.slots[i].until, 0);
    }
    tka_revset_free(&s);
}

static void test_growth_and_reserve(void **state)
{
    (void)state;
    struct tka_revset s;
    tka_revset_init(&s, HK);
    char v[32];
    unsigned char k[TKA_REV_KEY_LEN];
    for (int i = 0; i < 20000; i++) {
        snprintf(v, sizeof v, "jti-%d", i);
        assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, v, strlen(v), k), 0);
        assert_int_equal(tka_revset_put(&s, k, i % 2 ? "admin" : "logout", i, 100000 + i), 0);
        assert_true(s.count * 10 <= s.cap * 7); /* load <= 0.7 */
    }
    assert_int_equal(s.count, 20000);
    for (int i = 0; i < 20000; i++) {
        snprintf(v, sizeof v, "jti-%d", i);
        assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, v, strlen(v), k), 0);
        const struct tka_rev_slot *e = tka_revset_get(&s, k);
        assert_non_null(e);
        assert_int_equal(e->revoked_at, i);
        assert_string_equal(tka_revset_reason(&s, e), i % 2 ? "admin" : "logout");
        assert_int_equal(tka_rev_key(HK, TKS_REVOKE_SID, v, strlen(v), k), 0);
        assert_null(tka_revset_get(&s, k));
    }
    assert_int_equal(s.n_reasons, 2);
    assert_int_equal(tka_revset_bytes(&s), s.cap * 24);
    /* half expire */
    assert_int_equal(tka_revset_purge_expired(&s, 109999), 10000); /* until <= now goes */
    assert_int_equal(s.count, 10000);
    tka_revset_free(&s);

    /* reserve: one table, sized for n at a load of 0.65, no growth on the way */
    tka_revset_init(&s, HK);
    assert_int_equal(tka_revset_reserve(&s, 100000), 0);
    size_t cap = s.cap;
    assert_true(cap >= 100000 * 100 / 65 && cap <= 100000 * 100 / 65 + 2);
    for (int i = 0; i < 100000; i++) {
        snprintf(v, sizeof v, "r-%d", i);
        assert_int_equal(tka_rev_key(HK, TKS_REVOKE_SID, v, strlen(v), k), 0);
        assert_int_equal(tka_revset_put(&s, k, "logout", 1, 2), 0);
    }
    assert_int_equal(s.cap, cap);
    assert_int_equal(tka_revset_reserve(&s, 10), 0); /* smaller: nothing */
    assert_int_equal(s.cap, cap);
    tka_revset_free(&s);

    /* put_batch (the load): the same rules, repeats included, growing when
     * it must */
    tka_revset_init(&s, HK);
    static struct tka_rev_row rows[3000];
    for (int i = 0; i < 3000; i++) {
        snprintf(v, sizeof v, "b-%d", i % 2000);
        assert_int_equal(tka_rev_key(HK, TKS_REVOKE_JTI, v, strlen(v), rows[i].key), 0);
        rows[i].reason = tka_revset_intern(&s, i < 2000 ? "logout" : "admin");
        rows[i].revoked_at = i;
        rows[i].until = 10 + i;
    }
    assert_int_equal(tka_revset_put_batch(&s, rows, 256), 0);
    assert_int_equal(tka_revset_put_batch(&s, rows + 256, 3000 - 256), 0);
    assert_int_equal(s.count, 2000);
    const struct tka_rev_slot *e = tka_revset_get(&s, rows[5].key);
    assert_non_null(e);
    assert_string_equal(tka_revset_reason(&s, e), "logout");
    assert_int_equal(e->revoked_at, 5);
    assert_int_equal(e->until, 10 + 2005);
    tka_revset_free(&s);
}

static void test_reason_table(void **state)
{
    (void)state;
    struct tka_revset s;
    tka_revset_init(&s, HK);
    unsigned char k[TKA_REV_KEY_LEN];
    char r[16];
    for (uint32_t i = 0; i < TKA_REVSET_REASONS + 5; i++) {
        snprintf(r, sizeof r, "r%u", i);
        key_at(k, i * 7919u, i);
        assert_int_equal(tka_revset_put(&s, k, r, 1, 2), 0);
    }
    key_at(k, 0, 0);
    assert_string_equal(tka_revset_reason(&s, tka_revset_get(&s, k)), "r0");
    key_at(k, (TKA_REVSET_REASONS - 1) * 7919u, TKA_REVSET_REASONS - 1);
    assert_string_equal(tka_revset_reason(&s, tka_revset_get(&s, k)), "r254");
    /* past the table: "other" */
    key_at(k, TKA_REVSET_REASONS * 7919u, TKA_REVSET_REASONS);
    assert_string_equal(tka_revset_reason(&s, tka_revset_get(&s, k)), "other");
    /* a known reason still interns */
    key_at(k, 424242, 999);
    assert_int_equal(tka_revset_put(&s, k, "r3", 1, 2), 0);
    assert_string_equal(tka_revset_reason(&s, tka_revset_get(&s, k)), "r3");
    tka_revset_free(&s);
}

/* Random puts, deletes and purges in small tables (many collisions, runs
 * wrapping), checked against a plain list after every step. */
static void test_random_walk(void **state)
{
    (void)state;
    enum { N = 300 };
    struct {
        int in;
        uint32_t until;
        unsigned char k[TKA_REV_KEY_LEN];
    } ref[N];
    struct tka_revset s;
    tka_revset_init(&s, HK);
    srand(13);
    for (int i = 0; i < N; i++) {
        ref[i].in = 0;
        /* few distinct homes: long runs */
        key_at(ref[i].k, (uint32_t)(rand() % 8) * (UINT32_MAX / 8) + (uint32_t)(rand() % 3) * 0x7fffffffu, (uint32_t)i);
    }
    int64_t now = 0;
    for (int step = 0; step < 5000; step++) {
        int i = rand() % N;
        int op = rand() % 10;
        if (op < 6) {
            uint32_t until = (uint32_t)(now + 1 + rand() % 200);
            assert_int_equal(tka_revset_put(&s, ref[i].k, "admin", now, until), 0);
            if (!ref[i].in || until > ref[i].until) {
                ref[i].until = until;
            }
            ref[i].in = 1;
        } else if (op < 9) {
            assert_int_equal(tka_revset_del(&s, ref[i].k), ref[i].in);
            ref[i].in = 0;
        } else {
            now += rand() % 50;
            size_t expect = 0;
            for (int j = 0; j < N; j++) {
                if (ref[j].in && (int64_t)ref[j].until <= now) {
                    ref[j].in = 0;
                    expect++;
                }
            }
            assert_int_equal(tka_revset_purge_expired(&s, now), expect);
        }
        size_t count = 0;
        for (int j = 0; j < N; j++) {
            const struct tka_rev_slot *e = tka_revset_get(&s, ref[j].k);
            if (ref[j].in) {
                assert_non_null(e);
                assert_int_equal(e->until, ref[j].until);
                count++;
            } else {
                assert_null(e);
            }
        }
        assert_int_equal(s.count, count);
    }
    tka_revset_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_collisions_and_wraparound),
        cmocka_unit_test(test_growth_and_reserve),
        cmocka_unit_test(test_reason_table),
        cmocka_unit_test(test_random_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
