/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flat_agree.h — the contract between the flat claims reader
 * (tki_flat_parse, src/core/json.c) and jansson, written once for the unit
 * test (tests/unit/test_json.c) and the differential fuzz target
 * (fuzz/fuzz_json_flat.c): when the flat reader accepts a text, jansson
 * (with JSON_REJECT_DUPLICATES) parses it to an object with the same
 * members, in the same order, with the same values.
 */
#ifndef TOKEND_TESTS_FLAT_AGREE_H
#define TOKEND_TESTS_FLAT_AGREE_H

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "core/internal.h"

/* One flat value against the jansson node for it. */
static inline int flat_same_value(const struct tki_flat *f, const tki_cv *v, const json_t *j)
{
    switch (v->type) {
    case TKI_CV_STRING:
        return json_is_string(j) && json_string_length(j) == v->len &&
               memcmp(json_string_value(j), v->s, v->len) == 0 && v->s[v->len] == '\0';
    case TKI_CV_INT:
        return json_is_integer(j) && json_integer_value(j) == v->i && v->d == (double)v->i;
    case TKI_CV_TRUE:
        return json_is_true(j);
    case TKI_CV_FALSE:
        return json_is_false(j);
    case TKI_CV_NULL:
        return json_is_null(j);
    case TKI_CV_ARRAY:
        if (!json_is_array(j) || json_array_size(j) != v->len) {
            return 0;
        }
        for (size_t i = 0; i < v->len; i++) {
            if (!flat_same_value(f, &f->items[v->first + i], json_array_get(j, i))) {
                return 0;
            }
        }
        return 1;
    default:
        return 0; /* the flat form has no other types */
    }
}

/* For a text s[0..n) the flat reader accepted as *f: 1 when jansson agrees,
 * else 0 with what differs in why[0..cap). */
static inline int flat_agrees(const char *s, size_t n, const struct tki_flat *f, char *why, size_t cap)
{
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL || !json_is_object(j)) {
        snprintf(why, cap, "flat accepted what jansson rejects (%.80s)", j != NULL ? "not an object" : je.text);
        json_decref(j);
        return 0;
    }
    int ok = 1;
    if (json_object_size(j) != f->n) {
        snprintf(why, cap, "member count differs: jansson %zu, flat %zu", json_object_size(j), f->n);
        ok = 0;
    }
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach (j, key, val) {
        if (!ok) {
            break;
        }
        const struct tki_flat_member *m = &f->m[k];
        if (strlen(key) != m->name_len || memcmp(key, m->name, m->name_len) != 0) {
            snprintf(why, cap, "member %zu name differs", k);
            ok = 0;
        } else if (!flat_same_value(f, &m->v, val)) {
            snprintf(why, cap, "member \"%.64s\" value differs", key);
            ok = 0;
        }
        k++;
    }
    json_decref(j);
    return ok;
}

#endif
