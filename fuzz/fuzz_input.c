/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_input.c — tk_input_diagnose (src/core/input.c), the diagnoser of
 * pasted input, which tk_authz_parse also runs on every header value it
 * refuses (so every /auth request with a bad header reaches it).
 *
 * The input is the paste, in a heap block of exactly its length.
 * Invariants:
 *  - TK_OK; the verdict keeps tokend.h's contract; VALID exactly for kind
 *    TOKEN; otherwise MALFORMED_TOKEN exactly for PADDING, else
 *    MALFORMED_HEADER; the sentence has no '"' or '\' (it goes unchanged
 *    into an RFC 6750 error_description); `at` lies inside the input;
 *  - the repaired token fits the buffer (also one that is too small: never
 *    written past), is NUL-terminated at clean_len, is made of b64token
 *    characters only, and is offered only with a kind; diagnosing it again
 *    finds nothing left to repair but padding (or 'Bearer' glued to it);
 *  - without a buffer the kind and sentence are the same;
 *  - tk_authz_parse on the same bytes, when it refuses and the diagnoser
 *    names a kind, says the diagnoser's sentence, with its reason.
 */
#include "fuzz.h"

static int b64token_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_dup(data, size);
    static char clean[TK_LIMIT_TOKEN_LEN + 1];
    tk_input_diag d;
    memset(&d, 0x41, sizeof d);
    tk_result rc = tk_input_diagnose(in, size, &d, clean, sizeof clean);
    FUZZ_CHECK(rc == TK_OK, "tk_input_diagnose returned %s", tk_result_str(rc));
    FUZZ_CHECK((unsigned)d.kind < TK_INPUT_KIND_COUNT_, "kind %d", (int)d.kind);
    fuzz_check_verdict(&d.verdict, "input");
    FUZZ_CHECK((d.kind == TK_INPUT_TOKEN) == (d.verdict.reason == TK_REASON_VALID), "kind %s with verdict %s",
               tk_input_kind_name(d.kind), tk_reason_code(d.verdict.reason));
    if (d.kind != TK_INPUT_TOKEN) {
        FUZZ_CHECK(
            (d.kind == TK_INPUT_PADDING) == (d.verdict.reason == TK_REASON_MALFORMED_TOKEN) &&
                (d.verdict.reason == TK_REASON_MALFORMED_TOKEN || d.verdict.reason == TK_REASON_MALFORMED_HEADER),
            "kind %s with verdict %s", tk_input_kind_name(d.kind), tk_reason_code(d.verdict.reason));
        FUZZ_CHECK(d.at < size, "at %zu, input %zu bytes", d.at, size);
    }
    FUZZ_CHECK(!strchr(d.verdict.detail, '"') && !strchr(d.verdict.detail, '\\'), "quote or backslash: %s",
               d.verdict.detail);
    FUZZ_CHECK(d.clean_len < sizeof clean && clean[d.clean_len] == '\0', "clean_len %zu", d.clean_len);
    FUZZ_CHECK(d.clean_len == 0 || d.kind != TK_INPUT_TOKEN, "a repair offered with no problem named");
    for (size_t i = 0; i < d.clean_len; i++) {
        FUZZ_CHECK(b64token_char((unsigned char)clean[i]), "repaired token byte 0x%02x at %zu", (unsigned char)clean[i],
                   i);
    }
    FUZZ_CHECK(strnlen(d.repaired, sizeof d.repaired) < sizeof d.repaired, "repaired text not terminated");

    /* Repairs are complete. */
    if (d.clean_len) {
        char *again = fuzz_dup(clean, d.clean_len);
        tk_input_diag d2;
        FUZZ_CHECK(tk_input_diagnose(again, d.clean_len, &d2, NULL, 0) == TK_OK, "re-diagnosis failed");
        FUZZ_CHECK(d2.kind == TK_INPUT_TOKEN || d2.kind == TK_INPUT_PADDING || d2.kind == TK_INPUT_BEARER_NO_SPACE,
                   "the repaired token still has %s: %s", tk_input_kind_name(d2.kind), d2.verdict.detail);
        free(again);
    }

    /* No buffer, and a buffer one byte too small. */
    tk_input_diag dn;
    FUZZ_CHECK(tk_input_diagnose(in, size, &dn, NULL, 0) == TK_OK && dn.kind == d.kind && dn.clean_len == 0 &&
                   strcmp(dn.verdict.detail, d.verdict.detail) == 0,
               "without a buffer: %s / %s", tk_input_kind_name(dn.kind), dn.verdict.detail);
    if (d.clean_len) {
        size_t cap = d.clean_len; /* no room for the NUL */
        char *small = fuzz_dup(clean, cap);
        tk_input_diag ds;
        FUZZ_CHECK(tk_input_diagnose(in, size, &ds, small, cap) == TK_OK && ds.clean_len == 0 && small[0] == '\0',
                   "a buffer one byte short: %zu", ds.clean_len);
        free(small);
    }

    /* The same words through the Authorization header parser. */
    const char *tok = NULL;
    size_t tl = 0;
    tk_verdict v;
    FUZZ_CHECK(tk_authz_parse(in, size, &tok, &tl, &v) == TK_OK, "tk_authz_parse failed");
    if (size <= TK_LIMIT_AUTHZ_LEN && v.reason != TK_REASON_VALID && d.kind != TK_INPUT_TOKEN) {
        FUZZ_CHECK(v.reason == d.verdict.reason && strcmp(v.detail, d.verdict.detail) == 0,
                   "authz says %s '%s', the diagnoser %s '%s'", tk_reason_code(v.reason), v.detail,
                   tk_reason_code(d.verdict.reason), d.verdict.detail);
    }
    free(in);
    return 0;
}
