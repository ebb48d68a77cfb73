/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c — JSON for token headers and payloads, through jansson.
 *
 * Invariants (SECURITY.md rules 2 and 5): duplicate member names are
 * rejected after escape processing (JSON_REJECT_DUPLICATES compares decoded
 * keys, so "\u0061lg" collides with "alg"); nesting depth and members per
 * object are bounded *before* jansson sees the text, so hostile input costs
 * one linear scan; \u0000 and invalid UTF-8 are rejected by jansson.
 */
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

/*
 * One pass over the text, tracking string state, that fails when nesting
 * exceeds max_depth or an object holds more than max_members members. Member
 * counting counts top-level commas of each open object, which is exact for
 * valid JSON and harmless for invalid JSON (jansson rejects it afterwards).
 */
static int prescan(const unsigned char *p, size_t n, size_t max_depth, size_t max_members, char *err, size_t err_cap)
{
    /* members[] holds the count for each open container; objects only. */
    size_t members[TK_LIMIT_JSON_DEPTH + 1];
    unsigned char is_obj[TK_LIMIT_JSON_DEPTH + 1];
    size_t depth = 0;
    int in_str = 0;
    if (max_depth > TK_LIMIT_JSON_DEPTH) {
        max_depth = TK_LIMIT_JSON_DEPTH;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (in_str) {
            /* Run to the closing quote; an escape skips one character
             * (\uXXXX digits are harmless). */
            while (i < n && p[i] != '"') {
                i += p[i] == '\\' ? 2 : 1;
            }
            in_str = 0;
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '{':
        case '[':
            if (depth >= max_depth) {
                snprintf(err, err_cap, "nesting deeper than %zu levels at offset %zu", max_depth, i);
                return 0;
            }
            depth++;
            members[depth] = 0;
            is_obj[depth] = (unsigned char)(c == '{');
            break;
        case '}':
        case ']':
            if (depth > 0) {
                depth--;
            }
            break;
        case ':':
            if (depth > 0 && is_obj[depth]) {
                members[depth]++;
                if (members[depth] > max_members) {
                    snprintf(err, err_cap, "more than %zu members in one object", max_members);
                    return 0;
                }
            }
            break;
        default:
            break;
        }
    }
    return 1;
}

json_t *tki_json_parse_object(const unsigned char *p, size_t n, size_t max_depth, size_t max_members, char *err,
                              size_t err_cap)
{
    err[0] = '\0';
    if (!prescan(p, n, max_depth, max_members, err, err_cap)) {
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        /* jansson quotes the offending source text: escape it, it is
         * attacker-controlled. */
        size_t pos = 0;
        size_t tl = strnlen(je.text, sizeof je.text);
        static const char dup[] = "duplicate object key near '";
        if (tl > sizeof dup && memcmp(je.text, dup, sizeof dup - 1) == 0 && je.text[tl - 1] == '\'') {
            /* SECURITY.md rule 2: parsers disagree on which value of a
             * duplicate wins, so it is refused; the writer is at fault. */
            const char *name = je.text + sizeof dup - 1;
            size_t nl = tl - sizeof dup;
            if (nl >= 2 && name[0] == '"' && name[nl - 1] == '"') {
                name++;
                nl -= 2;
            }
            tki_appendf(err, err_cap, &pos, "member \"");
            tki_append_escaped(err, err_cap, &pos, name, nl, 64);
            tki_appendf(err, err_cap, &pos,
                        "\" appears twice (line %d column %d): member names must be unique (RFC 7519 section 4; "
                        "parsers disagree on which value wins), so the issuer's JSON writer has a bug",
                        je.line, je.column);
            return NULL;
        }
        tki_appendf(err, err_cap, &pos, "invalid JSON at line %d column %d: ", je.line, je.column);
        tki_append_escaped(err, err_cap, &pos, je.text, tl, 80);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, err_cap, "JSON is not an object");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- the flat profile --------------------------------------------------------
 *
 *   object = ws "{" ws [ member *( ws "," ws member ) ] ws "}" ws
 *   member = str ws ":" ws value
 *   value  = str / int / "true" / "false" / "null" / "[" ws [ str *( ws "," ws str ) ] ws "]"
 *   str    = DQUOTE *( %x20-21 / %x23-5B / %x5D-7E ) DQUOTE   ; printable ASCII, no escapes
 *   int    = [ "-" ] ( "0" / %x31-39 *14DIGIT )               ; then a delimiter
 *
 * Every text this accepts is valid JSON that jansson parses to exactly the
 * same members and values: without escapes or non-ASCII bytes a string is
 * its bytes, so duplicate names are equal bytes; integers of 15 digits are
 * exact in int64 and double. Anything else (escapes, UTF-8, fractions,
 * exponents, nested objects, long integers, duplicates, too many members)
 * is not rejected here: it goes to jansson, whose verdict and message stand.
 * tests/unit/test_json.c checks the agreement on generated inputs.
 */

#define FLAT_MAX_ITEMS 256u

size_t tki_flat_size(size_t n)
{
    size_t members = n / 6 + 1; /* the shortest member, "":0, is 5 bytes + a comma */
    size_t items = n / 3 + 1;   /* the shortest item, "", is 2 bytes + a comma */
    if (members > TK_LIMIT_JSON_MEMBERS) {
        members = TK_LIMIT_JSON_MEMBERS;
    }
    if (items > FLAT_MAX_ITEMS) {
        items = FLAT_MAX_ITEMS;
    }
    return members * sizeof(struct tki_flat_member) + items * sizeof(tki_cv) + n + 1;
}

static size_t skip_ws(const unsigned char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    return i;
}

/* Scans a profile string at p[i] == '"'; returns the index after the
 * closing quote and its content span, or 0 when outside the profile. */
static size_t flat_str(const unsigned char *p, size_t n, size_t i, size_t *b, size_t *len)
{
    if (i >= n || p[i] != '"') {
        return 0;
    }
    size_t j = i + 1;
    while (j < n && p[j] >= 0x20 && p[j] <= 0x7e && p[j] != '"' && p[j] != '\\') {
        j++;
    }
    if (j >= n || p[j] != '"') {
        return 0; /* an escape, a control or non-ASCII byte, or no end */
    }
    *b = i + 1;
    *len = j - i - 1;
    return j + 1;
}

/* Copies a string value, NUL-terminated, into the table's string area. */
static const char *flat_copy(struct tki_flat *f, const unsigned char *p, size_t len)
{
    char *d = f->str + f->str_used;
    memcpy(d, p, len);
    d[len] = '\0';
    f->str_used += len + 1;
    return d;
}

static int is_delim(unsigned char c)
{
    return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int tki_flat_parse(const unsigned char *p, size_t n, size_t max_members, void *mem, struct tki_flat *f)
{
    size_t members = n / 6 + 1;
    size_t items = n / 3 + 1;
    if (members > TK_LIMIT_JSON_MEMBERS) {
        members = TK_LIMIT_JSON_MEMBERS;
    }
    if (items > FLAT_MAX_ITEMS) {
        items = FLAT_MAX_ITEMS;
    }
    if (max_members < members) {
        members = max_members;
    }
    unsigned char *base = mem;
    f->m = (struct tki_flat_member *)(void *)base;
    f->cap = members;
    f->n = 0;
    f->items = (tki_cv *)(void *)(base + (n / 6 + 1 > TK_LIMIT_JSON_MEMBERS ? TK_LIMIT_JSON_MEMBERS : n / 6 + 1) *
                                             sizeof(struct tki_flat_member));
    f->items_cap = items;
    f->n_items = 0;
    f->str = (char *)(f->items + items);
    f->str_cap = n + 1;
    f->str_used = 0;

    size_t i = skip_ws(p, n, 0);
    if (i >= n || p[i] != '{') {
        return 0;
    }
    i = skip_ws(p, n, i + 1);
    if (i < n && p[i] == '}') {
        return skip_ws(p, n, i + 1) == n;
    }
    for (;;) {
        size_t nb, nl;
        i = flat_str(p, n, i, &nb, &nl);
        if (!i || f->n == f->cap) {
            return 0;
        }
        for (size_t k = 0; k < f->n; k++) {
            if (f->m[k].name_len == nl && memcmp(f->m[k].name, p + nb, nl) == 0) {
                return 0; /* a duplicate: jansson rejects it and says so */
            }
        }
        struct tki_flat_member *m = &f->m[f->n];
        memset(m, 0, sizeof *m);
        m->name = (const char *)p + nb;
        m->name_len = nl;
        i = skip_ws(p, n, i);
        if (i >= n || p[i] != ':') {
            return 0;
        }
        i = skip_ws(p, n, i + 1);
        if (i >= n) {
            return 0;
        }
        unsigned char c = p[i];
        if (c == '"') {
            size_t vb, vl;
            i = flat_str(p, n, i, &vb, &vl);
            if (!i) {
                return 0;
            }
            m->v.type = TKI_CV_STRING;
            m->v.s = flat_copy(f, p + vb, vl);
            m->v.len = vl;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i + (c == '-');
            size_t d0 = j;
            int64_t v = 0;
            while (j < n && p[j] >= '0' && p[j] <= '9') {
                v = v * 10 + (p[j] - '0');
                j++;
                if (j - d0 > 15) {
                    return 0;
                }
            }
            if (j == d0 || (p[d0] == '0' && j - d0 > 1) || j >= n || !is_delim(p[j])) {
                return 0; /* no digits, a leading zero, a fraction or exponent */
            }
            m->v.type = TKI_CV_INT;
            m->v.i = c == '-' ? -v : v;
            m->v.d = (double)m->v.i;
            i = j;
        } else if (c == 't' && n - i >= 4 && memcmp(p + i, "true", 4) == 0) {
            m->v.type = TKI_CV_TRUE;
            i += 4;
        } else if (c == 'f' && n - i >= 5 && memcmp(p + i, "false", 5) == 0) {
            m->v.type = TKI_CV_FALSE;
            i += 5;
        } else if (c == 'n' && n - i >= 4 && memcmp(p + i, "null", 4) == 0) {
            m->v.type = TKI_CV_NULL;
            i += 4;
        } else if (c == '[') {
            m->v.type = TKI_CV_ARRAY;
            m->v.first = f->n_items;
            i = skip_ws(p, n, i + 1);
            if (i < n && p[i] == ']') {
                i++;
            } else {
                for (;;) {
                    size_t vb, vl;
                    i = flat_str(p, n, i, &vb, &vl);
                    if (!i || f->n_items == f->items_cap) {
                        return 0;
                    }
                    tki_cv *it = &f->items[f->n_items++];
                    memset(it, 0, sizeof *it);
                    it->type = TKI_CV_STRING;
                    it->s = flat_copy(f, p + vb, vl);
                    it->len = vl;
                    m->v.len++;
                    i = skip_ws(p, n, i);
                    if (i < n && p[i] == ',') {
                        i = skip_ws(p, n, i + 1);
                        continue;
                    }
                    if (i < n && p[i] == ']') {
                        i++;
                        break;
                    }
                    return 0;
                }
            }
        } else {
            return 0;
        }
        f->n++;
        i = skip_ws(p, n, i);
        if (i < n && p[i] == ',') {
            i = skip_ws(p, n, i + 1);
            continue;
        }
        if (i < n && p[i] == '}') {
            return skip_ws(p, n, i + 1) == n;
        }
        return 0;
    }
}

/* ---- one view over both forms ----------------------------------------------- */

static void cv_from_node(const json_t *j, tki_cv *out)
{
    memset(out, 0, sizeof *out);
    out->node = j;
    switch (json_typeof(j)) {
    case JSON_STRING:
        out->type = TKI_CV_STRING;
        out->s = json_string_value(j);
        out->len = json_string_length(j);
        break;
    case JSON_INTEGER:
        out->type = TKI_CV_INT;
        out->i = (int64_t)json_integer_value(j);
        out->d = (double)out->i;
        break;
    case JSON_REAL:
        out->type = TKI_CV_REAL;
        out->d = json_real_value(j);
        break;
    case JSON_TRUE:
        out->type = TKI_CV_TRUE;
        break;
    case JSON_FALSE:
        out->type = TKI_CV_FALSE;
        break;
    case JSON_NULL:
        out->type = TKI_CV_NULL;
        break;
    case JSON_ARRAY:
        out->type = TKI_CV_ARRAY;
        out->len = json_array_size(j);
        break;
    case JSON_OBJECT:
        out->type = TKI_CV_OBJECT;
        out->len = json_object_size(j);
        break;
    }
}

int tki_claims_get(const struct tki_claims *c, const char *name, tki_cv *out)
{
    memset(out, 0, sizeof *out);
    if (c->tree) {
        const json_t *j = json_object_get(c->tree, name);
        if (!j) {
            return 0;
        }
        cv_from_node(j, out);
        return 1;
    }
    if (c->flat) {
        size_t nl = strlen(name);
        for (size_t i = 0; i < c->flat->n; i++) {
            const struct tki_flat_member *m = &c->flat->m[i];
            if (m->name_len == nl && memcmp(m->name, name, nl) == 0) {
                *out = m->v;
                return 1;
            }
        }
    }
    return 0;
}

void tki_claims_item(const struct tki_claims *c, const tki_cv *arr, size_t i, tki_cv *out)
{
    memset(out, 0, sizeof *out);
    if (arr->type != TKI_CV_ARRAY || i >= arr->len) {
        return;
    }
    if (arr->node) {
        cv_from_node(json_array_get(arr->node, i), out);
    } else if (c->flat) {
        *out = c->flat->items[arr->first + i];
    }
}
