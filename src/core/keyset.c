/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyset.c — the keys a verifier trusts, looked up by kid, plus the kids
 * that were rotated out (so that unknown_key can say so). A fixed-size
 * array: key sets are small (TK_LIMIT_KEYSET_KEYS) and lookups are a few
 * short memcmp calls, faster than hashing at this size.
 */
#include <string.h>

#include "core/internal.h"

tk_result tk_keyset_new(tk_keyset **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = calloc(1, sizeof **out);
    return *out ? TK_OK : TK_ERR_NOMEM;
}

void tk_keyset_free(tk_keyset *ks)
{
    if (!ks) {
        return;
    }
    for (size_t i = 0; i < ks->n; i++) {
        tk_key_free(ks->keys[i]);
    }
    for (size_t i = 0; i < ks->n_retired; i++) {
        free(ks->retired[i]);
    }
    free(ks);
}

tk_result tk_keyset_add(tk_keyset *ks, tk_key *k)
{
    if (!ks || !k) {
        return TK_ERR_ARG;
    }
    if (ks->n >= TK_LIMIT_KEYSET_KEYS) {
        return TK_ERR_LIMIT;
    }
    for (size_t i = 0; i < ks->n; i++) {
        const char *a = ks->keys[i]->kid;
        if (ks->keys[i] == k || (a && k->kid && strcmp(a, k->kid) == 0)) {
            return TK_ERR_ARG;
        }
    }
    ks->keys[ks->n++] = k;
    return TK_OK;
}

tk_result tk_keyset_add_retired_kid(tk_keyset *ks, const char *kid)
{
    if (!ks || !kid || !kid[0] || strlen(kid) > TK_LIMIT_KID_LEN) {
        return TK_ERR_ARG;
    }
    if (ks->n_retired >= TK_LIMIT_KEYSET_KEYS) {
        return TK_ERR_LIMIT;
    }
    size_t n = strlen(kid);
    char *c = malloc(n + 1);
    if (!c) {
        return TK_ERR_NOMEM;
    }
    memcpy(c, kid, n + 1);
    ks->retired[ks->n_retired++] = c;
    return TK_OK;
}

int tki_keyset_is_retired(const tk_keyset *ks, const char *kid, size_t kid_len)
{
    for (size_t i = 0; i < ks->n_retired; i++) {
        if (strlen(ks->retired[i]) == kid_len && memcmp(ks->retired[i], kid, kid_len) == 0) {
            return 1;
        }
    }
    return 0;
}

tk_result tk_keyset_merge(tk_keyset *dst, tk_keyset *src)
{
    if (!dst || !src || dst == src) {
        return TK_ERR_ARG;
    }
    if (dst->n + src->n > TK_LIMIT_KEYSET_KEYS || dst->n_retired + src->n_retired > TK_LIMIT_KEYSET_KEYS) {
        return TK_ERR_LIMIT;
    }
    for (size_t i = 0; i < src->n; i++) {
        const char *kid = src->keys[i]->kid;
        if (kid && tk_keyset_find(dst, kid, strlen(kid))) {
            return TK_ERR_ARG;
        }
    }
    for (size_t i = 0; i < src->n; i++) {
        dst->keys[dst->n++] = src->keys[i];
    }
    for (size_t i = 0; i < src->n_retired; i++) {
        dst->retired[dst->n_retired++] = src->retired[i];
    }
    src->n = 0;
    src->n_retired = 0;
    return TK_OK;
}

size_t tk_keyset_count(const tk_keyset *ks)
{
    return ks ? ks->n : 0;
}

const tk_key *tk_keyset_get(const tk_keyset *ks, size_t i)
{
    return ks && i < ks->n ? ks->keys[i] : NULL;
}

const tk_key *tk_keyset_find(const tk_keyset *ks, const char *kid, size_t kid_len)
{
    if (!ks || !kid) {
        return NULL;
    }
    for (size_t i = 0; i < ks->n; i++) {
        const char *a = ks->keys[i]->kid;
        if (a && strlen(a) == kid_len && memcmp(a, kid, kid_len) == 0) {
            return ks->keys[i];
        }
    }
    return NULL;
}

tk_result tk_keyset_to_jwks(const tk_keyset *ks, int with_private, char **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (!ks) {
        return TK_ERR_ARG;
    }
    json_t *arr = json_array();
    json_t *doc = json_object();
    tk_result rc = TK_ERR_NOMEM;
    if (!arr || !doc) {
        goto out;
    }
    for (size_t i = 0; i < ks->n; i++) {
        const tk_key *k = ks->keys[i];
        if (!with_private && k->kty == TKI_KTY_OCT) {
            continue;
        }
        char *s = NULL;
        rc = tk_key_to_jwk(k, with_private && k->can_sign, &s);
        if (rc != TK_OK) {
            goto out;
        }
        json_t *j = json_loads(s, 0, NULL);
        tk_free(s);
        if (!j || json_array_append_new(arr, j) != 0) {
            rc = TK_ERR_NOMEM;
            goto out;
        }
    }
    if (json_object_set(doc, "keys", arr) != 0) {
        rc = TK_ERR_NOMEM;
        goto out;
    }
    *out = json_dumps(doc, JSON_COMPACT);
    rc = *out ? TK_OK : TK_ERR_NOMEM;
out:
    json_decref(arr);
    json_decref(doc);
    return rc;
}
