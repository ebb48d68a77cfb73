/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jwks.c — tk_keyset_from_jwks_lenient (tokend/keycache.h): the key
 * sets trusted issuers publish, read key by key, skipping (and naming) what
 * cannot be used.
 *
 * Input: one control byte, then the document. The control byte picks the
 * issuer's `algs` (bits 0-2, from a few lists, the first one empty: any
 * asymmetric alg) and how many skip slots the caller gives (bits 3-4: 0, 1,
 * 2 or 8).
 *
 * Invariants, for the chosen algs and for no algs:
 *  - the result is TK_OK (a set, `why` empty) or TK_ERR_JSON (no set, a
 *    printable `why`); *n_skipped counts every skip however few slots;
 *  - on TK_OK the document is an object with a "keys" array of at most
 *    TK_LIMIT_KEYSET_KEYS members (read here with jansson), and every
 *    member is either in the set or skipped: count + skipped == members;
 *  - the skips that fit are in order of their index, below the member
 *    count, with a non-empty printable `why` and a printable kid;
 *  - every key of the set is bound to an alg that is not HS*, fits the
 *    key, is in `algs` when algs are given, is not an oct key, and no two
 *    keys share a kid;
 *  - restricting algs never lets more keys in.
 */
#include <jansson.h>

#include "fuzz.h"

#include "tokend/keycache.h"

static const tk_alg RS[] = {TK_ALG_RS256};
static const tk_alg PS_RS[] = {TK_ALG_PS256, TK_ALG_RS256};
static const tk_alg EC[] = {TK_ALG_ES256, TK_ALG_ES384, TK_ALG_ES512};
static const tk_alg ED_ES[] = {TK_ALG_EDDSA, TK_ALG_ES256};
static const tk_alg ALL[] = {TK_ALG_RS384, TK_ALG_RS512, TK_ALG_PS384, TK_ALG_PS512, TK_ALG_ES384, TK_ALG_EDDSA};

static const struct {
    const tk_alg *algs;
    size_t n;
} ALGS[] = {
    {NULL, 0}, {RS, 1}, {PS_RS, 2}, {EC, 3}, {ED_ES, 2}, {ALL, 6}, {RS, 1}, {NULL, 0},
};

static const size_t SLOTS[] = {0, 1, 2, 8};

static void check_text(const char *s, size_t cap, int nonempty, const char *what)
{
    size_t n = strnlen(s, cap);
    FUZZ_CHECK(n < cap, "%s: not NUL-terminated", what);
    FUZZ_CHECK(!nonempty || n > 0, "%s: empty", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        FUZZ_CHECK(c >= 0x20 && c <= 0x7e, "%s: byte 0x%02x at %zu: %s", what, c, i, s);
    }
}

static int listed(const tk_alg *algs, size_t n, tk_alg a)
{
    for (size_t i = 0; i < n; i++) {
        if (algs[i] == a) {
            return 1;
        }
    }
    return 0;
}

/* Reads the document with the given algs and slots; checks it; returns the
 * number of keys in the set, or -1 when the document was refused. */
static long read_set(const char *doc, size_t len, const tk_alg *algs, size_t n_algs, size_t slots)
{
    tk_jwks_skip skips[8];
    memset(skips, 0x5a, sizeof skips);
    size_t n_skipped = 12345;
    char why[256];
    tk_keyset *ks = NULL;
    tk_result rc = tk_keyset_from_jwks_lenient(doc, len, algs, n_algs, &ks, slots ? skips : NULL, slots, &n_skipped,
                                               why, sizeof why);
    FUZZ_CHECK(rc == TK_OK || rc == TK_ERR_JSON, "tk_keyset_from_jwks_lenient: %s (%s)", tk_result_str(rc), why);
    check_text(why, sizeof why, rc != TK_OK, "why");
    if (rc != TK_OK) {
        FUZZ_CHECK(ks == NULL, "refused, but a set came back");
        FUZZ_CHECK(n_skipped == 0, "refused, with %zu skips", n_skipped);
        return -1;
    }
    FUZZ_CHECK(ks != NULL, "TK_OK without a set");
    FUZZ_CHECK(why[0] == '\0', "TK_OK with why \"%s\"", why);
    for (size_t i = slots; i < 8; i++) {
        const unsigned char *b = (const unsigned char *)&skips[i];
        for (size_t j = 0; j < sizeof skips[i]; j++) {
            FUZZ_CHECK(b[j] == 0x5a, "skip slot %zu written with %zu slots", i, slots);
        }
    }

    /* The members, read independently. */
    json_error_t je;
    json_t *o = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
    FUZZ_CHECK(json_is_object(o), "accepted what jansson does not read as an object");
    json_t *keys = json_object_get(o, "keys");
    FUZZ_CHECK(json_is_array(keys), "accepted without a keys array");
    size_t members = json_array_size(keys);
    FUZZ_CHECK(members <= TK_LIMIT_KEYSET_KEYS, "%zu members accepted", members);
    size_t n = tk_keyset_count(ks);
    FUZZ_CHECK(n + n_skipped == members, "%zu keys + %zu skipped != %zu members", n, n_skipped, members);

    for (size_t i = 0; i < n_skipped && i < slots; i++) {
        FUZZ_CHECK(skips[i].index < members, "skip of member %zu of %zu", skips[i].index, members);
        FUZZ_CHECK(i == 0 || skips[i].index > skips[i - 1].index, "skips out of order");
        check_text(skips[i].why, sizeof skips[i].why, 1, "skip why");
        check_text(skips[i].kid, sizeof skips[i].kid, 0, "skip kid");
    }

    for (size_t i = 0; i < n; i++) {
        const tk_key *k = tk_keyset_get(ks, i);
        tk_alg a = tk_key_alg(k);
        FUZZ_CHECK(a != TK_ALG_UNSET, "an unbound key in the set");
        FUZZ_CHECK(a != TK_ALG_HS256 && a != TK_ALG_HS384 && a != TK_ALG_HS512, "an %s key in the set", tk_alg_name(a));
        FUZZ_CHECK(strcmp(tk_key_kty(k), "oct") != 0, "an oct key in the set");
        FUZZ_CHECK(tk_key_alg_fits(k, a), "a %s key bound to %s", tk_key_kty(k), tk_alg_name(a));
        FUZZ_CHECK(n_algs == 0 || listed(algs, n_algs, a), "a key of %s, which algs do not list", tk_alg_name(a));
        const char *kid = tk_key_kid(k);
        if (kid) {
            FUZZ_CHECK(tk_keyset_find(ks, kid, strlen(kid)) == k, "two keys with kid %s", kid);
        }
    }
    json_decref(o);
    tk_keyset_free(ks);
    return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned ctl = data[0];
    char *p = fuzz_dup(data + 1, size - 1);
    size_t len = size - 1;
    size_t pick = ctl & 7u;
    size_t slots = SLOTS[(ctl >> 3) & 3u];
    long any = read_set(p, len, NULL, 0, 8);
    if (ALGS[pick].n > 0) {
        long some = read_set(p, len, ALGS[pick].algs, ALGS[pick].n, slots);
        FUZZ_CHECK((any < 0) == (some < 0), "refused with one algs list and not with another");
        FUZZ_CHECK(some <= any, "algs let in %ld keys, no algs %ld", some, any);
    } else if (slots != 8) {
        long again = read_set(p, len, NULL, 0, slots);
        FUZZ_CHECK(again == any, "%ld keys with %zu skip slots, %ld with 8", again, slots, any);
    }
    free(p);
    return 0;
}
