/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cookie.c — the request's Cookie header (RFC 6265 section 4.2.1, as user
 * agents write it per section 5.4), read strictly and without libmicrohttpd,
 * so that the parser that decides which session and CSRF cookie a request
 * carries is ours, bounded, and fuzzed (fuzz/fuzz_cookie.c).
 *
 *   cookie-string = cookie-pair *( ";" SP cookie-pair )
 *   cookie-pair   = cookie-name "=" cookie-value
 *   cookie-value  = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE )
 *   cookie-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
 *
 * Reading: the header is split at every ';'; optional whitespace (SP, HTAB)
 * around each pair, and around its '=', is tolerated, as browsers and
 * proxies produce it. Empty pieces (";;", a trailing ';') and pieces without
 * '=' name no cookie and are skipped. Names compare byte for byte (they are
 * case-sensitive). The header is never read past its length and may hold any
 * byte, NUL included.
 *
 * Only the pairs that carry the requested name are held to the grammar: a
 * value outside cookie-octet (after one pair of enclosing DQUOTEs is
 * removed) is refused. The other pairs belong to whatever else runs on the
 * host; reading them strictly would let any of them deny sign-in.
 *
 * Security choice: when the requested name appears more than once the answer
 * is NULL, "no such cookie". The session and CSRF cookies decide who a
 * request is and whether a form is genuine; two values for one name mean a
 * cookie was planted beside ours (a sibling subdomain, a path cookie, an
 * injected header), and which one other parsers pick differs (first, last).
 * An ambiguity is never resolved in the attacker's favour: the request gets
 * the treatment of one without the cookie (sign in again, a fresh CSRF
 * value). An occurrence counts even when its value is malformed, and names
 * are compared after trimming whitespace, so "a =x" collides with "a=y".
 */
#include <string.h>

#include "http/internal.h"

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int is_cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e);
}

const char *srv_cookie_find(const char *header, size_t len, const char *name, size_t name_len, size_t *value_len)
{
    *value_len = 0;
    if (header == NULL || name == NULL || name_len == 0) {
        return NULL;
    }
    const char *found = NULL;
    size_t found_len = 0;
    int seen = 0;
    size_t i = 0;
    while (i < len) {
        /* One piece: [b, e) up to the next ';' or the end, OWS trimmed. */
        size_t end = i;
        while (end < len && header[end] != ';') {
            end++;
        }
        size_t b = i;
        size_t e = end;
        i = end + 1;
        while (b < e && is_ows(header[b])) {
            b++;
        }
        while (e > b && is_ows(header[e - 1])) {
            e--;
        }
        const char *eq = b < e ? memchr(header + b, '=', e - b) : NULL;
        if (eq == NULL) {
            continue; /* empty, or no '=': names no cookie */
        }
        size_t ne = (size_t)(eq - header);
        while (ne > b && is_ows(header[ne - 1])) {
            ne--;
        }
        if (ne - b != name_len || memcmp(header + b, name, name_len) != 0) {
            continue;
        }
        seen++;
        if (seen > 1) {
            return NULL; /* the name twice: fail closed (see above) */
        }
        size_t vb = (size_t)(eq - header) + 1;
        while (vb < e && is_ows(header[vb])) {
            vb++;
        }
        size_t ve = e;
        if (ve - vb >= 2 && header[vb] == '"' && header[ve - 1] == '"') {
            vb++;
            ve--;
        }
        int ok = 1;
        for (size_t k = vb; k < ve; k++) {
            ok = ok && is_cookie_octet((unsigned char)header[k]);
        }
        /* A malformed value is no cookie of ours, but it was an occurrence:
         * keep scanning for a second one (found stays NULL). */
        if (ok) {
            found = header + vb;
            found_len = ve - vb;
        }
    }
    if (found != NULL) {
        *value_len = found_len;
    }
    return found;
}
