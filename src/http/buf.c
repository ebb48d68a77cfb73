/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c — bounded text buffers for responses and log lines, with JSON and
 * HTML escaping. Every buffer has its maximum from the start (STYLE.md
 * "Ownership and memory"): writing past it cuts the text and sets
 * `overflow`, which the caller checks once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

void srv_buf_fixed(srv_buf *b, char *mem, size_t cap)
{
    b->p = mem;
    b->len = 0;
    b->cap = cap;
    b->max = cap;
    b->heap = 0;
    b->overflow = 0;
    if (cap > 0) {
        mem[0] = '\0';
    }
}

void srv_buf_heap(srv_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->heap = 1;
    b->overflow = 0;
}

void srv_buf_free(srv_buf *b)
{
    if (b->heap) {
        free(b->p);
    }
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

/* Makes room for n more bytes plus the NUL; returns how many fit. */
static size_t reserve(srv_buf *b, size_t n)
{
    if (b->overflow) {
        return 0;
    }
    if (b->heap && b->len + n + 1 > b->cap && b->cap < b->max) {
        size_t want = b->cap ? b->cap : 256;
        while (want < b->len + n + 1 && want < b->max) {
            want = want > b->max / 2 ? b->max : want * 2;
        }
        if (want > b->max) {
            want = b->max;
        }
        char *np = realloc(b->p, want);
        if (np == NULL) {
            b->overflow = 1;
            return 0;
        }
        b->p = np;
        b->cap = want;
    }
    if (b->cap == 0) {
        b->overflow = 1;
        return 0;
    }
    size_t room = b->cap - 1 - b->len;
    if (n > room) {
        b->overflow = 1;
        return room;
    }
    return n;
}

void srv_buf_put(srv_buf *b, const char *s, size_t n)
{
    size_t k = reserve(b, n);
    if (k > 0) {
        memcpy(b->p + b->len, s, k);
        b->len += k;
    }
    if (b->p != NULL && b->cap > 0) {
        b->p[b->len] = '\0';
    }
}

void srv_buf_puts(srv_buf *b, const char *s)
{
    srv_buf_put(b, s, strlen(s));
}

void srv_buf_putc(srv_buf *b, char c)
{
    srv_buf_put(b, &c, 1);
}

void srv_buf_u64(srv_buf *b, uint64_t v)
{
    char d[21];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        srv_buf_putc(b, d[sizeof d - n + i]);
    }
}

void srv_buf_printf(srv_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->overflow = 1;
        return;
    }
    if ((size_t)n >= sizeof tmp) {
        /* Long output: format again straight into the buffer. */
        size_t k = reserve(b, (size_t)n);
        if (k < (size_t)n) {
            return;
        }
        va_start(ap, fmt);
        (void)vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return;
    }
    srv_buf_put(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 (RFC 3629: no
 * overlongs, no surrogates, at most U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80u) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

void srv_buf_json_str(srv_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    srv_buf_putc(b, '"');
    size_t run = 0; /* start of a run of bytes written as they are */
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(u + i, n - i);
            if (k > 0) {
                i += k;
                continue;
            }
        }
        srv_buf_put(b, s + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            srv_buf_put(b, e, 2);
        } else if (c == '\n') {
            srv_buf_put(b, "\\n", 2);
        } else if (c == '\t') {
            srv_buf_put(b, "\\t", 2);
        } else if (c >= 0x80) {
            srv_buf_put(b, "\\ufffd", 6);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15u]};
            srv_buf_put(b, e, 6);
        }
        i++;
        run = i;
    }
    srv_buf_put(b, s + run, n - run);
    srv_buf_putc(b, '"');
}

void srv_buf_html(srv_buf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            break;
        }
        if (e != NULL) {
            srv_buf_put(b, s + run, i - run);
            srv_buf_puts(b, e);
            run = i + 1;
        }
    }
    srv_buf_put(b, s + run, n - run);
}

void srv_buf_url(srv_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~') {
            continue;
        }
        srv_buf_put(b, s + run, i - run);
        char e[3] = {'%', hex[ch >> 4], hex[ch & 15u]};
        srv_buf_put(b, e, 3);
        run = i + 1;
    }
    srv_buf_put(b, s + run, n - run);
}
