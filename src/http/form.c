/* SPDX-License-Identifier: Apache-2.0 */
/*
 * form.c — strict application/x-www-form-urlencoded parsing for the OAuth
 * endpoints (RFC 6749 appendix B, WHATWG URL "application/x-www-form-
 * urlencoded parser"), and strict base64 for HTTP Basic credentials
 * (RFC 7617, RFC 4648 section 4).
 *
 * Strict means: a '%' must be followed by two hex digits, %00 is refused
 * (values become C strings), a parameter may appear only once (RFC 6749
 * section 3.1), and the number of parameters is bounded. Decoding is done
 * in place: the decoded text is never longer than the encoded one.
 */
#include <string.h>
#include <strings.h>

#include "http/internal.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

size_t srv_form_decode(const char *in, size_t n, char *out, size_t cap)
{
    if (cap < n + 1) {
        return (size_t)-1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (n - i < 3) {
                return (size_t)-1;
            }
            int hi = hexval(in[i + 1]);
            int lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return (size_t)-1;
            }
            c = (char)(unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '\0') {
            return (size_t)-1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return o;
}

/* Decodes buf[start..end) in place to buf[start..), NUL-terminated; the NUL
 * lands at most on buf[end], the separator that ended the field. */
static enum srv_form_result decode_field(char *buf, size_t start, size_t end, size_t *out_len)
{
    size_t o = start;
    for (size_t i = start; i < end; i++) {
        char c = buf[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (end - i < 3) {
                return SRV_FORM_BAD_ENCODING;
            }
            int hi = hexval(buf[i + 1]);
            int lo = hexval(buf[i + 2]);
            if (hi < 0 || lo < 0) {
                return SRV_FORM_BAD_ENCODING;
            }
            if (hi == 0 && lo == 0) {
                return SRV_FORM_NUL;
            }
            c = (char)(unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '\0') {
            return SRV_FORM_NUL;
        }
        buf[o++] = c;
    }
    buf[o] = '\0';
    *out_len = o - start;
    return SRV_FORM_OK;
}

static enum srv_form_result parse(char *buf, size_t len, srv_form *f, const char **bad, int keep_going)
{
    f->n = 0;
    *bad = NULL;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && buf[end] != '&') {
            end++;
        }
        if (end == i) { /* an empty pair ("a=1&&b=2"): skipped, as browsers do */
            i = end + 1;
            continue;
        }
        if (f->n == SRV_FORM_MAX_PARAMS) {
            return SRV_FORM_TOO_MANY;
        }
        size_t eq = i;
        while (eq < end && buf[eq] != '=') {
            eq++;
        }
        srv_param *p = &f->p[f->n];
        size_t nl = 0;
        size_t vl = 0;
        enum srv_form_result r = decode_field(buf, i, eq, &nl);
        if (r != SRV_FORM_OK) {
            return r;
        }
        p->name = buf + i;
        p->name_len = nl;
        if (eq < end) {
            r = decode_field(buf, eq + 1, end, &vl);
            if (r != SRV_FORM_OK) {
                return r;
            }
            p->value = buf + eq + 1;
        } else {
            /* no '=': the NUL written by decode_field sits at buf[end] or
             * inside the name, so point the empty value at it */
            p->value = p->name + nl;
        }
        p->value_len = vl;
        int dup = 0;
        for (size_t k = 0; k < f->n; k++) {
            if (f->p[k].name_len == nl && memcmp(f->p[k].name, p->name, nl) == 0) {
                if (*bad == NULL) {
                    *bad = f->p[k].name;
                }
                dup = 1;
                break;
            }
        }
        if (dup && !keep_going) {
            return SRV_FORM_DUPLICATE;
        }
        if (!dup) {
            f->n++;
        }
        i = end + 1;
    }
    return *bad != NULL ? SRV_FORM_DUPLICATE : SRV_FORM_OK;
}

enum srv_form_result srv_form_parse(char *buf, size_t len, srv_form *f, const char **bad)
{
    return parse(buf, len, f, bad, 0);
}

enum srv_form_result srv_form_parse_all(char *buf, size_t len, srv_form *f, const char **bad)
{
    return parse(buf, len, f, bad, 1);
}

int srv_is_form(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    static const char want[] = "application/x-www-form-urlencoded";
    if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0) {
        return 0;
    }
    char next = ct[sizeof want - 1];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

const char *srv_form_get(const srv_form *f, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < f->n; i++) {
        if (f->p[i].name_len == nl && memcmp(f->p[i].name, name, nl) == 0) {
            if (f->p[i].value_len == 0) {
                break; /* RFC 6749 section 3.1: no value = omitted */
            }
            if (len != NULL) {
                *len = f->p[i].value_len;
            }
            return f->p[i].value;
        }
    }
    if (len != NULL) {
        *len = 0;
    }
    return NULL;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

size_t srv_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || cap < n / 4 * 3 + 1) {
        return (size_t)-1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (size_t k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0) {
                return (size_t)-1; /* data after '=' */
            }
            v[k] = b64val(c);
            if (v[k] < 0) {
                return (size_t)-1;
            }
        }
        unsigned w = ((unsigned)v[0] << 18) | ((unsigned)v[1] << 12) | ((unsigned)v[2] << 6) | (unsigned)v[3];
        /* canonical: the bits under the padding are zero */
        if ((pad == 1 && (w & 0xFFu) != 0) || (pad == 2 && (w & 0xFFFFu) != 0)) {
            return (size_t)-1;
        }
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2) {
            out[o++] = (unsigned char)(w >> 8);
        }
        if (pad < 1) {
            out[o++] = (unsigned char)w;
        }
    }
    out[o] = '\0';
    return o;
}
