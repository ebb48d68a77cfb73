/* SPDX-License-Identifier: Apache-2.0 */
/*
 * version.c — the library's version at run time, and the rule by which
 * structs that callers fill in may grow without breaking the ABI (tokend.h,
 * "Conventions"): the caller's struct_size says how much of the struct it
 * knows; the library reads that much and defaults the rest. The approach
 * is the one of Linux's copy_struct_from_user (openat2, clone3): a bigger
 * struct than ours is fine when the part we do not know is all zero.
 */
#include <string.h>

#include "core/internal.h"
#include "core/version_gen.h"

const char *tk_version(void)
{
    return TKI_VERSION_STRING;
}

int tk_version_number(void)
{
    return TKI_VERSION_MAJOR * 1000000 + TKI_VERSION_MINOR * 1000 + TKI_VERSION_PATCH;
}

tk_result tki_struct_import(void *dst, size_t dst_size, size_t first_size, const void *src, size_t src_size)
{
    if (!dst || !src || first_size > dst_size || dst_size < sizeof(size_t)) {
        return TK_ERR_ARG;
    }
    size_t n = src_size == 0 ? first_size : src_size;
    if (n < first_size) {
        return TK_ERR_ARG; /* no layout older than the first one exists */
    }
    const unsigned char *s = src;
    for (size_t i = dst_size; i < n; i++) {
        if (s[i] != 0) {
            return TK_ERR_UNSUPPORTED; /* a member this library does not know is set */
        }
    }
    memcpy(dst, src, n < dst_size ? n : dst_size);
    memcpy(dst, &dst_size, sizeof dst_size); /* struct_size is the first member */
    return TK_OK;
}
