/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors_page.h — docs/errors.md, embedded in the binary at build time by
 * cmake/embed.cmake (generated errors_md.c), served as HTML at /errors/.
 */
#ifndef TOKEND_HTTP_ERRORS_PAGE_H
#define TOKEND_HTTP_ERRORS_PAGE_H

#include <stddef.h>

/* The bytes of docs/errors.md (followed by a NUL not counted in the length). */
extern const char tkh_errors_md[];
extern const size_t tkh_errors_md_len;

#endif
