/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokend/fetch.h — libtokend_fetch: a tk_fetch_fn (tokend/keycache.h) over
 * libcurl, so that programs embedding libtokend can fetch issuers' metadata
 * and key sets without writing one. Kept out of libtokend itself, which
 * does no I/O. Link with -ltokend_fetch -ltokend -lcurl.
 *
 * Rules: https only, redirects only to https (at most 3), the body capped
 * at the cache's size (a longer body is an error, never cut short), a
 * connect and a total time-out, system CAs plus an optional CA file,
 * Cache-Control max-age read from the response.
 */
#ifndef TOKEND_FETCH_H
#define TOKEND_FETCH_H

#include "tokend/keycache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tk_fetch_options {
    size_t struct_size;      /* sizeof(tk_fetch_options), set by tk_fetch_options_defaults (tokend.h) */
    const char *ca_file;     /* PEM CA certificates trusted besides the system's; NULL: system only */
    long timeout_ms;         /* the whole fetch (5000) */
    long connect_timeout_ms; /* the TCP and TLS connection (3000) */
    const char *user_agent;  /* NULL: "tokend/<version>" */
    int allow_http_loopback; /* 1: http:// allowed to 127.0.0.1/[::1]/localhost (tests, sidecars); 0 */
} tk_fetch_options;

/* Fills the defaults below and struct_size. */
TK_API void tk_fetch_options_defaults(tk_fetch_options *o);

/* The tk_fetch_fn: `ud` is a tk_fetch_options (NULL: defaults; one whose
 * struct_size the library refuses makes every fetch fail with a message). Call
 * tk_fetch_global_init once before any thread uses it. */
TK_API int tk_fetch_https(void *ud, const char *url, size_t cap, tk_fetch_result *out);
TK_API int tk_fetch_global_init(void);
TK_API void tk_fetch_global_cleanup(void);

#ifdef __cplusplus
}
#endif

#endif
