/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cookie.c — the Cookie header parser of the HTTP layer
 * (src/http/cookie.c, srv_cookie_find; RFC 6265 section 4.2.1).
 *
 * One table of header values, each with the cookie looked up and the value
 * it must yield (or none). Every header is copied into a heap buffer of
 * exactly its length (no NUL after it), so ASan reports any read past the
 * length given. srv_cookie() itself (the second Cookie header, the request
 * plumbing) is exercised through real HTTP by tests/e2e/test_signin_*.py.
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

struct row {
    const char *what;
    const char *header;
    size_t len; /* 0: strlen(header) */
    const char *name;
    const char *want; /* NULL: not found */
    size_t want_len;  /* 0: strlen(want) */
};

/* clang-format off */
#define FOUND(what, h, name, v) {what, h, 0, name, v, 0}
#define NONE(what, h, name) {what, h, 0, name, NULL, 0}
/* clang-format on */

static const struct row ROWS[] = {
    NONE("empty header", "", "a"),
    NONE("only whitespace", " \t ", "a"),
    NONE("only separators", ";;; ;", "a"),
    FOUND("one pair", "a=1", "a", "1"),
    FOUND("one-byte value", "a=x", "a", "x"),
    FOUND("one-byte name", "x=abc", "x", "abc"),
    NONE("other name", "b=1", "a"),
    FOUND("first of several", "a=1; b=2; c=3", "a", "1"),
    FOUND("middle of several", "a=1; b=2; c=3", "b", "2"),
    FOUND("last of several", "a=1; b=2; c=3", "c", "3"),
    FOUND("no space after ';'", "a=1;b=2", "b", "2"),
    FOUND("OWS around pairs", " \ta=1 ;\t b=2 \t", "b", "2"),
    FOUND("OWS around '='", "a = 1", "a", "1"),
    FOUND("tab before the value", "a=\t1", "a", "1"),
    FOUND("quoted value", "a=\"xyz\"", "a", "xyz"),
    FOUND("quoted empty value", "a=\"\"; b=1", "a", ""),
    FOUND("empty value", "a=; b=1", "a", ""),
    FOUND("empty value at the end", "b=1; a=", "a", ""),
    NONE("lone DQUOTE", "a=\"", "a"),
    NONE("unbalanced DQUOTE", "a=\"xyz", "a"),
    NONE("DQUOTE inside", "a=x\"y", "a"),
    NONE("space inside the value", "a=x y", "a"),
    NONE("comma inside the value", "a=x,y", "a"),
    NONE("backslash inside the value", "a=x\\y", "a"),
    NONE("control inside the value", "a=x\x01y", "a"),
    NONE("DEL inside the value", "a=x\x7fy", "a"),
    NONE("non-ASCII value", "a=caf\xc3\xa9", "a"),
    FOUND("'=' inside the value", "a=x=y", "a", "x=y"),
    FOUND("base64url value", "tokend_csrf=AZaz09-_", "tokend_csrf", "AZaz09-_"),
    FOUND("__Host- name", "__Host-tokend_session=s3ss10n; x=1", "__Host-tokend_session", "s3ss10n"),
    /* Names. */
    NONE("name is a prefix of another", "ab=1", "a"),
    FOUND("prefix, then the name", "ab=1; a=2", "a", "2"),
    FOUND("the name, then a longer one", "a=2; ab=1", "a", "2"),
    NONE("name is longer than the cookie's", "a=1", "ab"),
    NONE("name is a suffix of another", "ba=1", "a"),
    NONE("names are case-sensitive", "A=1", "a"),
    NONE("name inside a value", "b=a; c=1", "a"),
    /* Duplicates: fail closed. */
    NONE("duplicate", "a=1; a=2", "a"),
    NONE("duplicate, same value", "a=1; a=1", "a"),
    NONE("duplicate, far apart", "a=1; b=2; c=3; a=4", "a"),
    NONE("duplicate spelled with OWS", "a=1; a =2", "a"),
    NONE("duplicate with an empty value", "a=1; a=", "a"),
    NONE("duplicate with a malformed value", "a=1; a=x y", "a"),
    NONE("duplicate after a malformed value", "a=x y; a=1", "a"),
    FOUND("other names repeated", "b=1; b=2; a=3", "a", "3"),
    /* Pieces without '=' name no cookie. */
    NONE("no '='", "a", "a"),
    FOUND("no '=', then a pair", "a; a=1", "a", "1"),
    FOUND("a pair, then no '='", "a=1; b", "a", "1"),
    FOUND("trailing ';'", "a=1;", "a", "1"),
    FOUND("trailing '; '", "a=1; ", "a", "1"),
    FOUND("leading ';'", ";a=1", "a", "1"),
    FOUND("empty pieces", "b=2;; ;a=1", "a", "1"),
    FOUND("malformed others are skipped", "x=y z; \"q; a=1", "a", "1"),
    FOUND("a comma is no separator", "b=1, a=2; a2=3", "a2", "3"),
    NONE("comma-joined pairs", "a=1, a=2", "a"),
    /* NUL bytes: any byte may appear; none is a terminator. */
    {"NUL in another pair", "b=\0x; a=1", 9, "a", "1", 0},
    {"NUL before the name", "\0a=1", 4, "a", NULL, 0},
    {"NUL inside the value",
     "a=1\0"
     "2",
     5, "a", NULL, 0},
    {"NUL after the header", "a=1\0; a=2", 3, "a", "1", 0},
    {"length cuts a pair", "a=12; a=3", 4, "a", "12", 0},
    {"length cuts the name", "b=1; a=2", 6, "a", NULL, 0},
};

static void check_row(const struct row *r)
{
    size_t len = r->len ? r->len : strlen(r->header);
    /* Exactly len bytes on the heap (malloc(0) may return NULL: one byte,
     * never read). */
    char *h = malloc(len ? len : 1);
    assert_non_null(h);
    memcpy(h, r->header, len);
    size_t vl = 99;
    const char *v = srv_cookie_find(h, len, r->name, strlen(r->name), &vl);
    if (r->want == NULL) {
        if (v != NULL) {
            fail_msg("%s: found \"%.*s\", want none", r->what, (int)vl, v);
        }
        assert_int_equal(vl, 0);
    } else {
        size_t wl = r->want_len ? r->want_len : strlen(r->want);
        if (v == NULL) {
            fail_msg("%s: not found, want \"%s\"", r->what, r->want);
        }
        assert_true(v >= h && v + vl <= h + len); /* inside the header */
        if (vl != wl || memcmp(v, r->want, wl) != 0) {
            fail_msg("%s: found \"%.*s\", want \"%s\"", r->what, (int)vl, v, r->want);
        }
    }
    free(h);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        check_row(&ROWS[i]);
    }
}

static void test_arguments(void **state)
{
    (void)state;
    size_t vl = 99;
    assert_null(srv_cookie_find(NULL, 0, "a", 1, &vl));
    assert_int_equal(vl, 0);
    vl = 99;
    assert_null(srv_cookie_find("a=1", 3, "a", 0, &vl)); /* an empty name is never looked up */
    assert_int_equal(vl, 0);
    assert_null(srv_cookie_find("=1", 2, "", 0, &vl));
    assert_null(srv_cookie_find("a=1", 3, NULL, 0, &vl));
}

/* Sizes at and around what browsers send: a 4096-byte cookie (RFC 6265
 * section 6.1's minimum a user agent supports) at the very end of a header
 * of 50 other cookies, and the same header cut one byte short. */
static void test_limits(void **state)
{
    (void)state;
    size_t big = 4096;
    size_t cap = 50 * 16 + big + 64;
    char *h = malloc(cap);
    assert_non_null(h);
    size_t pos = 0;
    for (int i = 0; i < 50; i++) {
        pos += (size_t)snprintf(h + pos, cap - pos, "c%02d=v%02d; ", i, i);
    }
    memcpy(h + pos, "tokend_session=", 15);
    pos += 15;
    memset(h + pos, 'S', big);
    pos += big;
    char *exact = malloc(pos);
    assert_non_null(exact);
    memcpy(exact, h, pos);
    size_t vl = 0;
    const char *v = srv_cookie_find(exact, pos, "tokend_session", 14, &vl);
    assert_non_null(v);
    assert_int_equal(vl, big);
    assert_ptr_equal(v, exact + pos - big);
    v = srv_cookie_find(exact, pos - 1, "tokend_session", 14, &vl);
    assert_non_null(v);
    assert_int_equal(vl, big - 1);
    v = srv_cookie_find(exact, pos, "c49", 3, &vl);
    assert_non_null(v);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "v49", 3);
    /* Cut inside the name: no cookie. */
    v = srv_cookie_find(exact, pos - big - 2, "tokend_session", 14, &vl);
    assert_null(v);
    free(exact);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
