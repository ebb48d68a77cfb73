/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_b64url.c — base64url (RFC 4648 §5) without padding, canonical only
 * (SECURITY.md rule 6).
 *
 * Round trips for every length 0..64 and for pseudo-random bytes; the RFC
 * 4648 §10 vectors; every way to be non-canonical (padding, the base64
 * alphabet, whitespace, NUL, impossible lengths, non-zero unused bits) with
 * the exact offset reported in bad_at; capacity limits in both directions.
 */
#include "testutil.h"

#include "core/internal.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of an alphabet character (the test's own table, not the code's). */
static unsigned b64val(char c)
{
    const char *p = strchr(ALPHABET, c);
    assert_non_null(p);
    return (unsigned)(p - ALPHABET);
}

/* xorshift32: deterministic "random" bytes, so a failure is reproducible. */
static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* Encodes `in`, checks the encoding's shape, decodes it back, compares. */
static void roundtrip(const unsigned char *in, size_t n)
{
    size_t want = tk_b64url_encoded_len(n);
    char enc[200];
    size_t enc_len = 99;
    assert_true(want + 1 <= sizeof enc);
    /* Exactly the documented capacity suffices. */
    assert_int_equal(tk_b64url_encode(in, n, enc, want + 1, &enc_len), TK_OK);
    assert_int_equal(enc_len, want);
    assert_int_equal(strlen(enc), want);
    assert_int_not_equal(want % 4, 1);
    for (size_t i = 0; i < enc_len; i++) {
        assert_non_null(strchr(ALPHABET, enc[i]));
    }
    unsigned char dec[160];
    size_t dec_len = 99;
    size_t bad = 99;
    size_t need = tki_b64url_decoded_len(enc_len);
    assert_int_equal(need, n);
    /* Exactly n bytes of room suffice to decode. */
    assert_int_equal(tk_b64url_decode(enc, enc_len, n ? dec : NULL, n, &dec_len, &bad), TK_OK);
    assert_int_equal(dec_len, n);
    if (n) {
        assert_memory_equal(dec, in, n);
    }
}

static void test_encoded_len_table(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        size_t len;
    } rows[] = {
        {0, 0},   {1, 2},   {2, 3},   {3, 4},   {4, 6},     {5, 7},       {6, 8},
        {32, 43}, {48, 64}, {64, 86}, {66, 88}, {132, 176}, {1024, 1366}, {8192, 10923},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(tk_b64url_encoded_len(rows[i].n), rows[i].len);
    }
    /* And the internal inverse: n % 4 == 1 is impossible. */
    static const struct {
        size_t n;
        size_t len;
    } inv[] = {{0, 0}, {1, (size_t)-1}, {2, 1}, {3, 2}, {4, 3}, {5, (size_t)-1}, {6, 4}, {7, 5}, {8, 6}, {43, 32}};
    for (size_t i = 0; i < sizeof inv / sizeof inv[0]; i++) {
        assert_int_equal(tki_b64url_decoded_len(inv[i].n), inv[i].len);
    }
}

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } rows[] = {
        {"", 0, ""},
        {"f", 1, "Zg"},
        {"fo", 2, "Zm8"},
        {"foo", 3, "Zm9v"},
        {"foob", 4, "Zm9vYg"},
        {"fooba", 5, "Zm9vYmE"},
        {"foobar", 6, "Zm9vYmFy"},
        /* The two characters that differ from base64: '-' and '_'. */
        {"\xfb\xff", 2, "-_8"},
        {"\xfb\xff\xbf", 3, "-_-_"},
        /* NUL bytes are data like any other. */
        {"\0", 1, "AA"},
        {"\0\0\0", 3, "AAAA"},
        {"a\0b", 3, "YQBi"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char enc[32];
        size_t w = 0;
        assert_int_equal(tk_b64url_encode((const unsigned char *)rows[i].in, rows[i].n, enc, sizeof enc, &w), TK_OK);
        assert_string_equal(enc, rows[i].out);
        unsigned char dec[32];
        size_t dl = 0;
        size_t bad = 0;
        assert_int_equal(tk_b64url_decode(rows[i].out, strlen(rows[i].out), dec, sizeof dec, &dl, &bad), TK_OK);
        assert_int_equal(dl, rows[i].n);
        assert_memory_equal(dec, rows[i].in, rows[i].n);
    }
}

static void test_roundtrip_lengths_0_to_64(void **state)
{
    (void)state;
    unsigned char buf[64];
    for (size_t n = 0; n <= 64; n++) {
        for (size_t i = 0; i < n; i++) {
            buf[i] = (unsigned char)(i * 37u + n);
        }
        roundtrip(buf, n);
        memset(buf, 0x00, n);
        roundtrip(buf, n);
        memset(buf, 0xff, n);
        roundtrip(buf, n);
    }
}

static void test_roundtrip_random(void **state)
{
    (void)state;
    uint32_t seed = 0x9e3779b9u;
    unsigned char buf[120];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = rng_next(&seed) % (sizeof buf + 1);
        for (size_t i = 0; i < n; i++) {
            buf[i] = (unsigned char)rng_next(&seed);
        }
        roundtrip(buf, n);
    }
    /* Every byte value in every position of a 3-byte group. */
    for (unsigned v = 0; v < 256; v++) {
        for (size_t pos = 0; pos < 3; pos++) {
            unsigned char b[3] = {0x5a, 0xa5, 0x3c};
            b[pos] = (unsigned char)v;
            roundtrip(b, 3);
            roundtrip(b, pos + 1);
        }
    }
}

/* Canonical rejects with the exact offset of the first offending character
 * (or the length when the length itself is impossible). */
static void test_decode_rejects_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *in;
        size_t n; /* 0: strlen */
        size_t bad_at;
    } rows[] = {
        /* Padding '=' (RFC 7515 §2: no padding). */
        {"padding ==", "QQ==", 0, 2},
        {"padding =", "QUE=", 0, 3},
        {"padding after group", "Zm9v=", 0, 4},
        {"lone padding", "=", 0, 0},
        {"padding mid", "Zm=9", 0, 2},
        /* base64 alphabet, not base64url. */
        {"plus", "+_8", 0, 0},
        {"slash", "-/8", 0, 1},
        {"plus late", "Zm9vY+", 0, 5},
        /* Whitespace anywhere. */
        {"leading space", " Zm9v", 0, 0},
        {"trailing space", "Zm9v ", 0, 4},
        {"inner LF", "Zm\n9v", 0, 2},
        {"inner CRLF", "Zm9v\r\nYg", 0, 4},
        {"inner tab", "Zm\t9v", 0, 2},
        /* NUL bytes (explicit lengths). */
        {"NUL inside",
         "Zm\0"
         "9v",
         5, 2},
        {"NUL at end", "Zm9v\0", 5, 4},
        {"NUL only", "\0", 1, 0},
        /* Other bytes. */
        {"dot", "a.b", 0, 1},
        {"high byte", "Zm9\x80", 0, 3},
        {"percent", "%%", 0, 0},
        /* Impossible lengths: n % 4 == 1, reported at the length. */
        {"one char", "A", 0, 1},
        {"five chars", "AAAAA", 0, 5},
        {"nine chars", "Zm9vYmFyZ", 0, 9},
        /* Non-zero unused bits: 2-char tail (4 unused bits). */
        {"QR for 0x41", "QR", 0, 1},
        {"Q_ for 0x41", "Q_", 0, 1},
        {"tail after group", "Zm9vQR", 0, 5},
        /* 3-char tail (2 unused bits): "QUE" is 0x41 0x41, "QUF" is not. */
        {"QUF", "QUF", 0, 2},
        {"QUH", "QUH", 0, 2},
        {"3-tail after group", "Zm9vQUF", 0, 6},
        /* The alphabet check comes first: a bad char beats a bad length. */
        {"bad char and bad length", "AA=AA", 0, 2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = rows[i].n ? rows[i].n : strlen(rows[i].in);
        unsigned char out[16];
        size_t out_len = 77;
        size_t bad = 77;
        tk_result rc = tk_b64url_decode(rows[i].in, n, out, sizeof out, &out_len, &bad);
        if (rc != TK_ERR_ARG || bad != rows[i].bad_at) {
            fail_msg("%s: rc %d bad_at %zu, want TK_ERR_ARG at %zu", rows[i].name, (int)rc, bad, rows[i].bad_at);
        }
        assert_int_equal(out_len, 0);
    }
}

/* Every last character after "Q" (2-char tail) and "QU" (3-char tail):
 * exactly those with zero unused bits are accepted, so each byte string has
 * one encoding (SECURITY.md rule 6). */
static void test_trailing_bits_exhaustive(void **state)
{
    (void)state;
    for (size_t i = 0; i < 64; i++) {
        char c = ALPHABET[i];
        unsigned v = b64val(c);
        char two[3] = {'Q', c, '\0'};
        char three[4] = {'Q', 'U', c, '\0'};
        unsigned char out[4];
        size_t ol = 0;
        size_t bad = 99;
        tk_result rc = tk_b64url_decode(two, 2, out, sizeof out, &ol, &bad);
        if ((v & 15u) == 0) {
            assert_int_equal(rc, TK_OK);
            assert_int_equal(ol, 1);
            assert_int_equal(out[0], (unsigned char)(0x40u | (v >> 4)));
        } else {
            assert_int_equal(rc, TK_ERR_ARG);
            assert_int_equal(bad, 1);
        }
        rc = tk_b64url_decode(three, 3, out, sizeof out, &ol, &bad);
        if ((v & 3u) == 0) {
            assert_int_equal(rc, TK_OK);
            assert_int_equal(ol, 2);
        } else {
            assert_int_equal(rc, TK_ERR_ARG);
            assert_int_equal(bad, 2);
        }
    }
}

static void test_capacity_limits(void **state)
{
    (void)state;
    unsigned char out[8];
    size_t ol = 9;
    size_t bad = 9;
    /* Decode: "Zm9vYmFy" is 6 bytes. */
    assert_int_equal(tk_b64url_decode("Zm9vYmFy", 8, out, 5, &ol, &bad), TK_ERR_LIMIT);
    assert_int_equal(ol, 0);
    assert_int_equal(tk_b64url_decode("Zm9vYmFy", 8, out, 6, &ol, &bad), TK_OK);
    assert_int_equal(ol, 6);
    assert_int_equal(tk_b64url_decode("Zm9vYg", 6, out, 3, &ol, &bad), TK_ERR_LIMIT);
    assert_int_equal(tk_b64url_decode("Zm9vYg", 6, out, 4, &ol, &bad), TK_OK);
    assert_int_equal(tk_b64url_decode("Zg", 2, out, 0, &ol, &bad), TK_ERR_LIMIT);
    /* Empty input: nothing to write, any capacity. */
    assert_int_equal(tk_b64url_decode("", 0, out, 0, &ol, &bad), TK_OK);
    assert_int_equal(ol, 0);
    assert_int_equal(tk_b64url_decode(NULL, 0, NULL, 0, &ol, &bad), TK_OK);

    /* Encode: needs encoded_len + 1 for the NUL. */
    char enc[16];
    size_t w = 9;
    assert_int_equal(tk_b64url_encode((const unsigned char *)"foobar", 6, enc, 8, &w), TK_ERR_LIMIT);
    assert_int_equal(w, 0);
    assert_int_equal(tk_b64url_encode((const unsigned char *)"foobar", 6, enc, 9, &w), TK_OK);
    assert_string_equal(enc, "Zm9vYmFy");
    assert_int_equal(tk_b64url_encode((const unsigned char *)"f", 1, enc, 2, &w), TK_ERR_LIMIT);
    assert_int_equal(tk_b64url_encode((const unsigned char *)"f", 1, enc, 3, &w), TK_OK);
    assert_string_equal(enc, "Zg");
    assert_int_equal(tk_b64url_encode(NULL, 0, enc, 0, &w), TK_ERR_LIMIT);
    assert_int_equal(tk_b64url_encode(NULL, 0, enc, 1, &w), TK_OK);
    assert_string_equal(enc, "");
    assert_int_equal(w, 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char enc[8];
    unsigned char out[8];
    size_t w = 5;
    size_t bad = 5;
    assert_int_equal(tk_b64url_encode(NULL, 3, enc, sizeof enc, &w), TK_ERR_ARG);
    assert_int_equal(w, 0);
    assert_int_equal(tk_b64url_encode((const unsigned char *)"abc", 3, NULL, 8, &w), TK_ERR_ARG);
    w = 5;
    assert_int_equal(tk_b64url_decode(NULL, 4, out, sizeof out, &w, &bad), TK_ERR_ARG);
    assert_int_equal(w, 0);
    assert_int_equal(tk_b64url_decode("Zm9v", 4, NULL, 8, &w, &bad), TK_ERR_ARG);
    /* Optional out-parameters may be NULL. */
    assert_int_equal(tk_b64url_encode((const unsigned char *)"abc", 3, enc, sizeof enc, NULL), TK_OK);
    assert_int_equal(tk_b64url_decode("Zm9v", 4, out, sizeof out, NULL, NULL), TK_OK);
    assert_int_equal(tk_b64url_decode("Zm9", 3, out, sizeof out, NULL, NULL), TK_ERR_ARG);
}

/* The input is read only within [in, in + n): a heap copy without a NUL
 * would make ASan report any over-read. */
static void test_no_read_past_length(void **state)
{
    (void)state;
    static const char *const inputs[] = {"Zm9vYmFy", "Zm9vYg", "Zm9vYmE", "QR", "QUF", "A", "Zm9v="};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = strlen(inputs[i]);
        char *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, inputs[i], n);
        unsigned char out[8];
        size_t ol = 0;
        size_t bad = 0;
        tk_result rc = tk_b64url_decode(copy, n, out, sizeof out, &ol, &bad);
        assert_true(rc == TK_OK || rc == TK_ERR_ARG);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoded_len_table),         cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_roundtrip_lengths_0_to_64), cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_decode_rejects_table),      cmocka_unit_test(test_trailing_bits_exhaustive),
        cmocka_unit_test(test_capacity_limits),           cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_no_read_past_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
