/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_json_flat.c — differential: the flat claims reader (tki_flat_parse,
 * src/core/json.c) against jansson, the contract tests/unit/test_json.c
 * checks on generated texts, here on whatever libFuzzer makes.
 *
 * The input is the payload text. Invariants, with test_json.c's comparison
 * rules unchanged (check_agreement and same_value):
 *  - the flat reader declines, or jansson (JSON_REJECT_DUPLICATES) accepts
 *    the text as an object with the same members, in the same order, with
 *    the same values: strings byte for byte and NUL-terminated, integers
 *    equal as int64 and as double, true/false/null, arrays item for item;
 *  - the table fits the tki_flat_size(n) bytes it is given (a heap block of
 *    exactly that size) and never holds more than max_members members;
 *  - max_members is a hard cap: an accepted object of m members is declined
 *    with max_members m - 1 and read identically with max_members m;
 *  - tki_json_parse_object (the path jansson takes) accepts what the flat
 *    reader accepts, within the default limits.
 */
#include "fuzz.h"

#include "core/internal.h"
#include "flat_agree.h"

/* The table from parsing s[0..n) with `max_members`, in a fresh heap block
 * of exactly tki_flat_size(n) bytes (*mem, owned); 1 when accepted. */
static int flat(const unsigned char *s, size_t n, size_t max_members, void **mem, struct tki_flat *f)
{
    *mem = malloc(tki_flat_size(n));
    FUZZ_CHECK(*mem != NULL, "out of memory");
    memset(f, 0, sizeof *f);
    return tki_flat_parse(s, n, max_members, *mem, f);
}

/* The agreement test_json.c checks (flat_agree.h), for one accepted table. */
static void check_agreement(const unsigned char *s, size_t n, const struct tki_flat *f)
{
    char why[128];
    FUZZ_CHECK(flat_agrees((const char *)s, n, f, why, sizeof why), "%s", why);
}

/* Two tables read the same members and values. */
static void check_same_table(const struct tki_flat *a, const struct tki_flat *b)
{
    FUZZ_CHECK(a->n == b->n, "member count %zu vs %zu under a looser cap", a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const tki_cv *x = &a->m[i].v;
        const tki_cv *y = &b->m[i].v;
        FUZZ_CHECK(a->m[i].name == b->m[i].name && a->m[i].name_len == b->m[i].name_len, "member %zu name moved", i);
        FUZZ_CHECK(x->type == y->type && x->len == y->len && x->i == y->i, "member %zu value differs", i);
        if (x->type == TKI_CV_STRING) {
            FUZZ_CHECK(memcmp(x->s, y->s, x->len + 1) == 0, "member %zu string differs", i);
        }
        if (x->type == TKI_CV_ARRAY) {
            for (size_t k = 0; k < x->len; k++) {
                const tki_cv *p = &a->items[x->first + k];
                const tki_cv *q = &b->items[y->first + k];
                FUZZ_CHECK(p->len == q->len && memcmp(p->s, q->s, p->len + 1) == 0, "member %zu item %zu differs", i,
                           k);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* json.c takes the payload from a buffer one byte longer (the NUL the
     * decoder writes); the reader must not need it: exact size here. */
    unsigned char *s = (unsigned char *)fuzz_dup(data, size);
    void *mem = NULL;
    struct tki_flat f;
    int accepted = flat(s, size, TK_LIMIT_JSON_MEMBERS, &mem, &f);
    if (accepted) {
        FUZZ_CHECK(f.n <= TK_LIMIT_JSON_MEMBERS, "%zu members read flat", f.n);
        check_agreement(s, size, &f);
        /* The path tk_token_parse takes agrees that this is an object. */
        char err[200];
        json_t *o = tki_json_parse_object(s, size, TK_LIMIT_JSON_DEPTH, TK_LIMIT_JSON_MEMBERS, err, sizeof err);
        FUZZ_CHECK(o != NULL, "flat accepted what tki_json_parse_object refuses: %s", err);
        json_decref(o);
        /* max_members is exact. */
        void *mem2 = NULL;
        struct tki_flat g;
        FUZZ_CHECK(flat(s, size, f.n, &mem2, &g) == 1, "declined with max_members = its %zu members", f.n);
        check_same_table(&f, &g);
        free(mem2);
        if (f.n > 0) {
            FUZZ_CHECK(flat(s, size, f.n - 1, &mem2, &g) == 0, "accepted %zu members with max_members %zu", f.n,
                       f.n - 1);
            free(mem2);
        }
    }
    free(mem);
    free(s);
    return 0;
}
