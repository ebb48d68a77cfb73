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
        tki_appendf(err, err_cap, &pos, "invalid JSON at line %d column %d: ", je.line, je.column);
        tki_append_escaped(err, err_cap, &pos, je.text, strnlen(je.text, sizeof je.text), 80);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, err_cap, "JSON is not an object");
        json_decref(j);
        return NULL;
    }
    return j;
}
