/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fetch_consumer.c — links libtokend_fetch (tokend/fetch.h) from an install:
 * pkg-config tokend_fetch, or find_package(tokend COMPONENTS fetch) and
 * tokend::fetch. No network: it sets the fetcher up, refuses a plain http://
 * URL to a remote host (the fetcher's own rule), and tears it down.
 */
#include <stdio.h>

#include <tokend/fetch.h>
#include <tokend/tokend.h>

int main(void)
{
    if (tk_fetch_global_init() != 0) {
        fprintf(stderr, "fetch_consumer: tk_fetch_global_init failed\n");
        return 1;
    }
    tk_fetch_options fo;
    tk_fetch_options_defaults(&fo);
    char body[1024];
    tk_fetch_result res = {.body = body};
    int r = tk_fetch_https(&fo, "http://example.com/jwks.json", sizeof body, &res);
    tk_fetch_global_cleanup();
    printf("libtokend_fetch: http://example.com/jwks.json: %d (%s)\n", r, res.error);
    return r == -1 && res.error[0] ? 0 : 1;
}
