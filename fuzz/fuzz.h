/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz.h — what the libFuzzer targets in fuzz/ share (header-only).
 *
 * A broken invariant is reported with FUZZ_CHECK: it prints the condition,
 * the place and a formatted explanation to stderr, then aborts, so libFuzzer
 * stops, saves the input as crash-<sha1> and prints its path. Sanitizer
 * reports (ASan, UBSan with -fno-sanitize-recover) end the run the same way.
 */
#ifndef TOKEND_FUZZ_H
#define TOKEND_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokend/tokend.h"

__attribute__((noreturn, format(printf, 4, 5))) static inline void fuzz_fail(const char *file, int line,
                                                                             const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "\n==== invariant broken: %s\n==== at %s:%d\n==== ", cond, file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                                         \
        }                                                                                                              \
    } while (0)

/* Known bugs, found and reported but not fixed yet (fuzz/README.md): a
 * target looks past bug `id` only when `id` is listed in the environment
 * variable TOKEND_FUZZ_KNOWN_BUGS (comma-separated), so that a long run can
 * go on finding others. By default (CI, scripts/fuzz.sh) every bug is
 * reported. Each id names its reproducers in fuzz/regressions/. */
static inline int fuzz_known_bug(const char *id)
{
    const char *env = getenv("TOKEND_FUZZ_KNOWN_BUGS");
    return env != NULL && strstr(env, id) != NULL;
}

/* A copy of p[0..n) in a heap block of exactly n bytes (one byte when n is
 * 0, never read), so that ASan reports a read past the length. Owned. */
static inline char *fuzz_dup(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    if (c == NULL) {
        abort();
    }
    if (n) {
        memcpy(c, p, n);
    }
    return c;
}

/* The verdict contract of tokend.h: a known reason, a NUL-terminated detail
 * of printable ASCII, empty exactly when VALID. */
static inline void fuzz_check_verdict(const tk_verdict *v, const char *what)
{
    FUZZ_CHECK(v->reason >= TK_REASON_VALID && v->reason < TK_REASON_COUNT_, "%s: reason %d out of range", what,
               (int)v->reason);
    size_t n = strnlen(v->detail, sizeof v->detail);
    FUZZ_CHECK(n < sizeof v->detail, "%s: detail not NUL-terminated", what);
    FUZZ_CHECK((v->reason == TK_REASON_VALID) == (n == 0), "%s: %s verdict with detail \"%s\"", what,
               tk_reason_code(v->reason), v->detail);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v->detail[i];
        FUZZ_CHECK(c >= 0x20 && c <= 0x7e, "%s: detail byte 0x%02x at %zu is not printable ASCII: %s", what, c, i,
                   v->detail);
    }
}

#endif
