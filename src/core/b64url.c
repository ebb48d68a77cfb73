/* SPDX-License-Identifier: Apache-2.0 */
/*
 * b64url.c — base64url without padding (RFC 4648 §5, RFC 7515 §2), strict.
 *
 * Canonical form only (SECURITY.md rule 6): no '=', no '+' or '/', no
 * whitespace, and the unused low bits of the last character must be zero, so
 * that every byte string has exactly one accepted encoding.
 */
#include <string.h>

#include "core/internal.h"

static const char ENC[64] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for alphabet characters, 0xff otherwise. */
/* clang-format off */
static const unsigned char DEC[256] = {
#define X 0xff
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, 62,  X,  X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61,  X,  X,  X,  X,  X,  X,
     X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,  X,  X,  X,  X, 63,
     X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
#undef X
};
/* clang-format on */

size_t tk_b64url_encoded_len(size_t n)
{
    return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

size_t tki_b64url_decoded_len(size_t n)
{
    if (n % 4 == 1) {
        return (size_t)-1;
    }
    return (n / 4) * 3 + ((n % 4) ? (n % 4) - 1 : 0);
}

tk_result tk_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap, size_t *out_len)
{
    if (out_len) {
        *out_len = 0;
    }
    if ((!in && n) || !out || n > ((size_t)-1 / 4) - 4) {
        return TK_ERR_ARG;
    }
    size_t need = tk_b64url_encoded_len(n);
    if (cap < need + 1) {
        return TK_ERR_LIMIT;
    }
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = ENC[(v >> 18) & 63];
        out[o++] = ENC[(v >> 12) & 63];
        out[o++] = ENC[(v >> 6) & 63];
        out[o++] = ENC[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = ENC[(v >> 18) & 63];
        out[o++] = ENC[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = ENC[(v >> 18) & 63];
        out[o++] = ENC[(v >> 12) & 63];
        out[o++] = ENC[(v >> 6) & 63];
    }
    out[o] = '\0';
    if (out_len) {
        *out_len = o;
    }
    return TK_OK;
}

/* Offset of the first character outside the alphabet in s[0..n), or n. */
static size_t first_bad(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n && DEC[s[i]] != 0xff) {
        i++;
    }
    return i;
}

tk_result tk_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *out_len, size_t *bad_at)
{
    if (out_len) {
        *out_len = 0;
    }
    if (bad_at) {
        *bad_at = 0;
    }
    if ((!in && n) || (!out && n)) {
        return TK_ERR_ARG;
    }
    const unsigned char *s = (const unsigned char *)in;
    size_t need = tki_b64url_decoded_len(n);
    if (need == (size_t)-1) {
        /* Name a bad character if there is one; else the length is wrong. */
        if (bad_at) {
            *bad_at = first_bad(s, n);
        }
        return TK_ERR_ARG;
    }
    if (cap < need) {
        return TK_ERR_LIMIT;
    }
    /* One pass: decode four characters at a time; a character outside the
     * alphabet has the 0x80 bit set in DEC, caught by OR-ing the group. */
    size_t o = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        unsigned a = DEC[s[i]], b = DEC[s[i + 1]], c = DEC[s[i + 2]], d = DEC[s[i + 3]];
        if ((a | b | c | d) & 0x80u) {
            if (bad_at) {
                *bad_at = i + first_bad(s + i, 4);
            }
            return TK_ERR_ARG;
        }
        uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    size_t rest = n - i;
    if (rest > 0 && first_bad(s + i, rest) != rest) {
        if (bad_at) {
            *bad_at = i + first_bad(s + i, rest);
        }
        return TK_ERR_ARG;
    }
    if (rest == 2) {
        uint32_t v = ((uint32_t)DEC[s[i]] << 18) | ((uint32_t)DEC[s[i + 1]] << 12);
        if (v & 0xffffu) { /* low 4 bits of the 2nd char must be zero */
            if (bad_at) {
                *bad_at = i + 1;
            }
            return TK_ERR_ARG;
        }
        out[o++] = (unsigned char)(v >> 16);
    } else if (rest == 3) {
        uint32_t v = ((uint32_t)DEC[s[i]] << 18) | ((uint32_t)DEC[s[i + 1]] << 12) | ((uint32_t)DEC[s[i + 2]] << 6);
        if (v & 0xffu) { /* low 2 bits of the 3rd char must be zero */
            if (bad_at) {
                *bad_at = i + 2;
            }
            return TK_ERR_ARG;
        }
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
    }
    if (out_len) {
        *out_len = o;
    }
    return TK_OK;
}
