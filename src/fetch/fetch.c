/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fetch.c — libtokend_fetch: tk_fetch_https, the libcurl fetcher of issuer
 * metadata and key sets (tokend/fetch.h). One easy handle per fetch: the
 * cache fetches each issuer at most once at a time and rarely, so a handle
 * pool would save nothing worth its state.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "tokend/fetch.h"

/* The first published size of tk_fetch_options (tokend 0.1): what
 * struct_size 0 stands for. Never change it; new members go after. */
#define FETCH_OPTIONS_SIZE_V1 sizeof(tk_fetch_options)

void tk_fetch_options_defaults(tk_fetch_options *o)
{
    if (!o) {
        return;
    }
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->timeout_ms = 5000;
    o->connect_timeout_ms = 3000;
}

int tk_fetch_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void tk_fetch_global_cleanup(void)
{
    curl_global_cleanup();
}

struct sink {
    tk_fetch_result *r;
    size_t cap;
    int too_big;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (n > s->cap - s->r->body_len) {
        s->too_big = 1;
        return 0; /* aborts the transfer: never a cut-short body */
    }
    memcpy(s->r->body + s->r->body_len, p, n);
    s->r->body_len += n;
    return n;
}

/* Keeps Cache-Control of the last response (a redirect starts a new one). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        s->r->max_age = -1;
        s->r->body_len = 0;
    } else if (n > 14 && strncasecmp(p, "cache-control:", 14) == 0) {
        /* libcurl hands over the whole header line, CRLF included: the value is without it */
        size_t vl = n - 14;
        while (vl > 0 && (p[14 + vl - 1] == '\r' || p[14 + vl - 1] == '\n')) {
            vl--;
        }
        int64_t ma = tk_cache_control_max_age(p + 14, vl);
        if (ma >= 0 && (s->r->max_age < 0 || ma < s->r->max_age)) {
            s->r->max_age = ma; /* two Cache-Control lines: the shorter life wins */
        }
    }
    return n;
}

static int loopback_http(const char *url)
{
    static const char *const ok[] = {"http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:",
                                     "http://localhost/", "http://[::1]:",     "http://[::1]/"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (strncmp(url, ok[i], strlen(ok[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

int tk_fetch_https(void *ud, const char *url, size_t cap, tk_fetch_result *out)
{
    /* The caller's options, of any layout (tokend.h, "Conventions"): read
     * what it has, default the rest; refuse a member we do not know. */
    tk_fetch_options opts;
    tk_fetch_options_defaults(&opts);
    const tk_fetch_options *in = ud;
    if (!out || !url || !out->body) {
        return -1;
    }
    out->status = 0;
    out->body_len = 0;
    out->max_age = -1;
    out->error[0] = '\0';
    if (in) {
        size_t n = in->struct_size == 0 ? FETCH_OPTIONS_SIZE_V1 : in->struct_size;
        int unknown = n < FETCH_OPTIONS_SIZE_V1;
        for (size_t i = sizeof opts; !unknown && i < n; i++) {
            unknown = ((const unsigned char *)in)[i] != 0;
        }
        if (unknown) {
            snprintf(out->error, sizeof out->error,
                     "tk_fetch_options of an unknown layout (struct_size %zu; this libtokend_fetch knows %zu)",
                     in->struct_size, sizeof opts);
            return -1;
        }
        memcpy(&opts, in, n < sizeof opts ? n : sizeof opts);
        opts.struct_size = sizeof opts;
    }
    const tk_fetch_options *o = &opts;
    int plain = strncmp(url, "http://", 7) == 0;
    if (strncmp(url, "https://", 8) != 0 && !(plain && o->allow_http_loopback && loopback_http(url))) {
        snprintf(out->error, sizeof out->error, "only https:// URLs are fetched");
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(out->error, sizeof out->error, "cannot initialise libcurl");
        return -1;
    }
    struct sink s = {out, cap, 0};
    char eb[CURL_ERROR_SIZE] = "";
    char ua[64];
    snprintf(ua, sizeof ua, "tokend/%s", TK_VERSION);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, plain ? "http" : "https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 5000L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, eb);
    curl_easy_setopt(c, CURLOPT_USERAGENT, o->user_agent ? o->user_agent : ua);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, ""); /* what libcurl can decode; the cap applies after */
    if (o->ca_file) {
        /* the file is added to the system's CAs, not put in their place */
        curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
        curl_easy_setopt(c, CURLOPT_CAPATH, X509_get_default_cert_dir()); /* OpenSSL's system directory */
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int ret = -1;
    if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(out->error, sizeof out->error, "the body is over %zu bytes: not read", cap);
    } else if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        snprintf(out->error, sizeof out->error, "redirected to a URL that is not https://: refused");
    } else if (rc == CURLE_TOO_MANY_REDIRECTS) {
        snprintf(out->error, sizeof out->error, "more than 3 redirects");
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(out->error, sizeof out->error, "no complete answer within %ld ms",
                 o->timeout_ms > 0 ? o->timeout_ms : 5000L);
    } else if (rc != CURLE_OK) {
        size_t n = strlen(eb[0] ? eb : curl_easy_strerror(rc));
        n = n < sizeof out->error - 1 ? n : sizeof out->error - 1;
        memcpy(out->error, eb[0] ? eb : curl_easy_strerror(rc), n);
        out->error[n] = '\0';
    } else {
        out->status = code;
        ret = 0;
    }
    if (ret != 0) {
        out->body_len = 0;
    }
    curl_easy_cleanup(c);
    return ret;
}
