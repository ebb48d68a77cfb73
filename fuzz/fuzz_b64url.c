/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_b64url.c — tk_b64url_decode / tk_b64url_encode (src/core/b64url.c),
 * the first thing every token byte goes through.
 *
 * The input is used twice, as text to decode and as bytes to encode.
 * Invariants:
 *  - canonical form (SECURITY.md rule 6): a text that decodes re-encodes to
 *    exactly itself, so every byte string has one accepted spelling;
 *  - a refusal is TK_ERR_ARG with bad_at <= n, and every character before
 *    bad_at is in the base64url alphabet (it names the first offender); a
 *    length of 1 mod 4 is always refused;
 *  - encode then decode gives the bytes back, and the encoding has the
 *    length tk_b64url_encoded_len() promises;
 *  - buffers of exactly the documented size are enough, one byte less is
 *    TK_ERR_LIMIT, and nothing is read or written outside them (ASan: every
 *    buffer is a heap block of exactly its capacity).
 */
#include "fuzz.h"

static int in_alphabet(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The decoded length of n characters, or SIZE_MAX when n % 4 == 1. */
static size_t decoded_len(size_t n)
{
    if (n % 4 == 1) {
        return SIZE_MAX;
    }
    return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

static void decode_text(const char *in, size_t n)
{
    size_t need = decoded_len(n);
    size_t cap = need == SIZE_MAX ? n : need;
    unsigned char *out = malloc(cap ? cap : 1);
    FUZZ_CHECK(out != NULL, "out of memory");
    size_t out_len = 99;
    size_t bad = 99;
    tk_result rc = tk_b64url_decode(in, n, out, cap, &out_len, &bad);
    if (rc != TK_OK) {
        FUZZ_CHECK(rc == TK_ERR_ARG, "decode of %zu chars with cap %zu: %s", n, cap, tk_result_str(rc));
        FUZZ_CHECK(out_len == 0, "refused decode left out_len %zu", out_len);
        FUZZ_CHECK(bad <= n, "bad_at %zu past the length %zu", bad, n);
        for (size_t i = 0; i < bad; i++) {
            FUZZ_CHECK(in_alphabet((unsigned char)in[i]), "bad_at %zu, but byte 0x%02x at %zu is the first offender",
                       bad, (unsigned char)in[i], i);
        }
        free(out);
        return;
    }
    FUZZ_CHECK(need != SIZE_MAX, "accepted %zu chars (1 mod 4)", n);
    FUZZ_CHECK(out_len == need, "decoded %zu bytes, expected %zu", out_len, need);
    FUZZ_CHECK(bad == 0, "accepted with bad_at %zu", bad);
    /* Canonical: the only encoding of these bytes is the input itself. */
    size_t ecap = tk_b64url_encoded_len(out_len) + 1;
    char *enc = malloc(ecap);
    FUZZ_CHECK(enc != NULL, "out of memory");
    size_t el = 0;
    FUZZ_CHECK(tk_b64url_encode(out, out_len, enc, ecap, &el) == TK_OK, "re-encode failed");
    FUZZ_CHECK(el == n && memcmp(enc, in, n) == 0, "accepted a non-canonical text of %zu chars (re-encodes to %zu)", n,
               el);
    free(enc);
    /* One byte less room is refused before anything is written. */
    if (need > 0) {
        unsigned char *small = malloc(need - 1 ? need - 1 : 1);
        FUZZ_CHECK(small != NULL, "out of memory");
        FUZZ_CHECK(tk_b64url_decode(in, n, small, need - 1, &out_len, &bad) == TK_ERR_LIMIT,
                   "decode into %zu bytes (need %zu) was not TK_ERR_LIMIT", need - 1, need);
        free(small);
    }
    free(out);
}

static void encode_bytes(const unsigned char *in, size_t n)
{
    size_t el = tk_b64url_encoded_len(n);
    FUZZ_CHECK(el == (n * 4 + 2) / 3, "encoded_len(%zu) = %zu", n, el);
    char *enc = malloc(el + 1);
    FUZZ_CHECK(enc != NULL, "out of memory");
    size_t w = 0;
    FUZZ_CHECK(tk_b64url_encode(in, n, enc, el + 1, &w) == TK_OK, "encode of %zu bytes failed", n);
    FUZZ_CHECK(w == el && enc[el] == '\0', "encode wrote %zu chars, promised %zu", w, el);
    for (size_t i = 0; i < el; i++) {
        FUZZ_CHECK(in_alphabet((unsigned char)enc[i]), "encode produced byte 0x%02x", (unsigned char)enc[i]);
    }
    /* No room for the NUL: refused. */
    char *small = malloc(el ? el : 1);
    FUZZ_CHECK(small != NULL, "out of memory");
    FUZZ_CHECK(tk_b64url_encode(in, n, small, el, &w) == TK_ERR_LIMIT, "encode into %zu bytes was not TK_ERR_LIMIT",
               el);
    free(small);
    /* And back. */
    unsigned char *dec = malloc(n ? n : 1);
    FUZZ_CHECK(dec != NULL, "out of memory");
    size_t dl = 0;
    size_t bad = 0;
    tk_result rc = tk_b64url_decode(enc, el, dec, n, &dl, &bad);
    FUZZ_CHECK(rc == TK_OK, "decode of our own encoding failed: %s at %zu", tk_result_str(rc), bad);
    FUZZ_CHECK(dl == n && (n == 0 || memcmp(dec, in, n) == 0), "round trip changed %zu bytes into %zu", n, dl);
    free(dec);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_text((const char *)data, size);
    encode_bytes(data, size);
    return 0;
}
