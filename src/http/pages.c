/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pages.c — the HTML of user sign-in (issue 4): the sign-in page, the
 * message pages (authorization errors, signed out, failures), the security
 * headers every HTML page carries, and the cookies (browser session, CSRF
 * double-submit).
 *
 * Pages are plain HTML with their CSS inline in a <style> element: no
 * external assets, no JavaScript, readable on a phone. Every byte that
 * comes from a request, a client registration or the authority is
 * HTML-escaped (srv_buf_html).
 *
 * Security headers (issue 4 section 3): Content-Security-Policy
 * "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ...;
 * frame-ancestors 'none'; base-uri 'none'", X-Frame-Options: DENY,
 * Referrer-Policy: no-referrer, X-Content-Type-Options: nosniff (added by
 * srv_respond for every typed body), Cache-Control: no-store, and
 * Strict-Transport-Security over HTTPS.
 *
 * form-action: Chromium and Safari check it against the redirect a form
 * submission ends in, not only against the form's action
 * (w3c/webappsec-csp#8). POST /login ends in a 303 to the client's
 * redirect URI, so the sign-in page names that URI's origin beside 'self'.
 * It was checked against the client's registration before the page was
 * rendered, and it is printed on the page anyway.
 *
 * CSRF (double submit): the page sets the cookie tokend_csrf (with the
 * __Host- prefix over HTTPS; SameSite=Strict, HttpOnly) and carries the
 * same value in a hidden field; POST /login compares the two in constant
 * time. A valid cookie already present is kept, so that two tabs with the
 * sign-in page both work.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "http/internal.h"

#define PAGE_MAX (64u * 1024u)
#define CSRF_BYTES 32u
#define CSRF_LEN 43u        /* base64url of 32 bytes, no padding */
#define USERNAME_SHOWN 256u /* a username kept in its field, at most */
#define SCOPES_SHOWN 64u    /* scopes listed on the page, at most */
#define HTML_CTYPE "text/html; charset=utf-8"

static const char css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font:17px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#1d1d1f;"
    "background:#f3f4f6}"
    "main{max-width:26rem;margin:2rem auto;padding:1.5rem 1.25rem;background:#fff;border-radius:12px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.12)}"
    "@media (max-width:30rem){main{margin:0;max-width:none;border-radius:0;box-shadow:none;min-height:100vh}}"
    "h1{font-size:1.5rem;margin:0 0 1rem}"
    "p{margin:.5rem 0}"
    ".client{overflow-wrap:anywhere}"
    "ul.scopes{margin:.25rem 0 1rem;padding-left:1.25rem}"
    "code{font:15px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f1f3;padding:0 .25em;"
    "border-radius:4px;overflow-wrap:anywhere}"
    ".msg{padding:.75rem 1rem;border-radius:8px;background:#fdecea;border:1px solid #f5c2bd;color:#611a15;"
    "margin:1rem 0}"
    "label{display:block;font-weight:600;margin:1rem 0 .35rem}"
    "input[type=text],input[type=password]{display:block;width:100%;font-size:1.1rem;padding:.75rem .8rem;"
    "border:1px solid #8a8a8e;border-radius:8px;background:#fff;color:inherit}"
    "input:focus,button:focus{outline:3px solid #7aa7ff;outline-offset:1px}"
    "button{display:block;width:100%;margin-top:1.5rem;font-size:1.1rem;font-weight:600;padding:.8rem;"
    "border:0;border-radius:8px;background:#1a56db;color:#fff;cursor:pointer}"
    "button:hover{background:#1646b8}"
    ".small{font-size:.9rem;color:#55555a;margin-top:1.25rem;overflow-wrap:anywhere}"
    "dl.facts{margin:1rem 0;padding:.75rem 1rem;border-radius:8px;background:#f6f6f8;border:1px solid #e2e2e6}"
    "dl.facts dt{font-size:.9rem;color:#55555a}dl.facts dd{margin:0 0 .5rem;overflow-wrap:anywhere}"
    "dl.facts dd:last-child{margin-bottom:0}";

/* ---- security headers ------------------------------------------------------------ */

/* The CSP source expression for the origin of an absolute URI
 * ("https://app.example:8443"), or its scheme ("com.example.app:") when it
 * has no authority or one CSP cannot name. Returns 0 when the URI has no
 * usable scheme. Only characters that are safe in a header come out. */
static int uri_origin(const char *uri, char *out, size_t cap)
{
    size_t i = 0;
    if (!((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z'))) {
        return 0;
    }
    while ((uri[i] >= 'a' && uri[i] <= 'z') || (uri[i] >= 'A' && uri[i] <= 'Z') || (uri[i] >= '0' && uri[i] <= '9') ||
           uri[i] == '+' || uri[i] == '-' || uri[i] == '.') {
        i++;
    }
    if (uri[i] != ':' || i + 4 > cap || i > 32) {
        return 0;
    }
    size_t o = 0;
    for (size_t k = 0; k < i; k++) {
        char ch = uri[k];
        out[o++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    out[o++] = ':';
    out[o] = '\0';
    if (uri[i + 1] != '/' || uri[i + 2] != '/') {
        return 1; /* scheme-source */
    }
    const char *auth = uri + i + 3;
    size_t al = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t k = 0; k < al; k++) {
        if (auth[k] == '@') {
            at = auth + k;
        }
    }
    if (at != NULL) { /* userinfo is not part of the origin */
        al -= (size_t)(at + 1 - auth);
        auth = at + 1;
    }
    if (al == 0 || o + 2 + al + 1 > cap) {
        return 1;
    }
    for (size_t k = 0; k < al; k++) {
        char ch = auth[k];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '-' || ch == ':';
        if (!ok) {
            return 1; /* an IPv6 literal or an odd host: the scheme alone */
        }
    }
    out[o++] = '/';
    out[o++] = '/';
    memcpy(out + o, auth, al);
    out[o + al] = '\0';
    return 1;
}

#define MAX_HTML_HEADERS 8u

static enum MHD_Result html_respond(srv_conn *st, struct MHD_Connection *c, unsigned status, char *owned,
                                    const char *persistent, size_t len, enum srv_cache cache, const char *form_origin,
                                    const srv_header *hdrs, size_t n_hdrs)
{
    char csp[TKS_URI_MAX + 256];
    char origin[TKS_URI_MAX + 1];
    const char *extra = "";
    if (form_origin != NULL && uri_origin(form_origin, origin, sizeof origin)) {
        extra = origin;
    }
    snprintf(csp, sizeof csp,
             "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'%s%s; frame-ancestors 'none'; "
             "base-uri 'none'",
             extra[0] != '\0' ? " " : "", extra);
    srv_header h[MAX_HTML_HEADERS + 4];
    size_t n = 0;
    h[n++] = (srv_header){"Content-Security-Policy", csp};
    h[n++] = (srv_header){"X-Frame-Options", "DENY"};
    h[n++] = (srv_header){"Referrer-Policy", "no-referrer"};
    if (st->srv->https) {
        h[n++] = (srv_header){"Strict-Transport-Security", "max-age=31536000"};
    }
    for (size_t i = 0; i < n_hdrs && i < MAX_HTML_HEADERS; i++) {
        h[n++] = hdrs[i];
    }
    if (owned != NULL) {
        return srv_respond_owned(st, c, status, HTML_CTYPE, owned, len, cache, h, n);
    }
    return srv_respond(st, c, status, HTML_CTYPE, persistent, len, 1, cache, h, n);
}

enum MHD_Result srv_respond_html(srv_conn *st, struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                 enum srv_cache cache, const char *form_origin, const srv_header *hdrs, size_t n_hdrs)
{
    return html_respond(st, c, status, body, NULL, len, cache, form_origin, hdrs, n_hdrs);
}

enum MHD_Result srv_respond_html_static(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *body,
                                        size_t len, enum srv_cache cache)
{
    return html_respond(st, c, status, NULL, body, len, cache, NULL, NULL, 0);
}

/* ---- cookies ------------------------------------------------------------------------ */

static enum MHD_Result count_cookie_headers(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                            const char *value, size_t value_size)
{
    (void)kind;
    (void)value;
    (void)value_size;
    if (key_size == sizeof MHD_HTTP_HEADER_COOKIE - 1 && strcasecmp(key, MHD_HTTP_HEADER_COOKIE) == 0) {
        (*(int *)cls)++;
    }
    return MHD_YES;
}

/* Our own parser (cookie.c) over the raw header, not libmicrohttpd's
 * lenient cookie table: a repeated name or a second Cookie header is no
 * cookie at all. */
const char *srv_cookie(struct MHD_Connection *c, const char *name, size_t *len)
{
    *len = 0;
    int n_headers = 0;
    (void)MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_cookie_headers, &n_headers);
    if (n_headers != 1) {
        return NULL;
    }
    const char *h = NULL;
    size_t hl = 0;
    if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE, sizeof MHD_HTTP_HEADER_COOKIE - 1, &h,
                                      &hl) != MHD_YES ||
        h == NULL) {
        return NULL;
    }
    size_t vl = 0;
    const char *v = srv_cookie_find(h, hl, name, strlen(name), &vl);
    if (v == NULL || vl == 0) {
        return NULL;
    }
    *len = vl;
    return v;
}

void srv_session_cookie_clear(const struct tkh_server *s, char *out, size_t cap)
{
    snprintf(out, cap, "%s=; Path=/;%s HttpOnly; SameSite=Lax; Max-Age=0", s->cookie_session,
             s->https ? " Secure;" : "");
}

static int is_b64url(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '_')) {
            return 0;
        }
    }
    return 1;
}

/* The CSRF value for a page: the request's cookie when it is one of ours,
 * else 32 fresh random bytes. Returns 0 or -1. */
static int csrf_value(struct MHD_Connection *c, const struct tkh_server *s, char out[CSRF_LEN + 1])
{
    size_t vl = 0;
    const char *v = srv_cookie(c, s->cookie_csrf, &vl);
    if (v != NULL && vl == CSRF_LEN && is_b64url(v, vl)) {
        memcpy(out, v, CSRF_LEN);
        out[CSRF_LEN] = '\0';
        return 0;
    }
    unsigned char raw[CSRF_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        return -1;
    }
    size_t ol = 0;
    tk_result r = tk_b64url_encode(raw, sizeof raw, out, CSRF_LEN + 1, &ol);
    OPENSSL_cleanse(raw, sizeof raw);
    return r == TK_OK && ol == CSRF_LEN ? 0 : -1;
}

/* The Set-Cookie value that hands a form's CSRF value to the browser. */
static void csrf_cookie(const struct tkh_server *s, const char *csrf, char *out, size_t cap)
{
    snprintf(out, cap, "%s=%s; Path=/;%s HttpOnly; SameSite=Strict", s->cookie_csrf, csrf, s->https ? " Secure;" : "");
}

int srv_csrf_ok(srv_conn *st, struct MHD_Connection *c, const srv_form *f)
{
    size_t cl = 0;
    size_t fl = 0;
    const char *cv = srv_cookie(c, st->srv->cookie_csrf, &cl);
    const char *fv = srv_form_get(f, "csrf", &fl);
    if (cv == NULL || fv == NULL) {
        srv_note(st, "CSRF check failed: %s", cv == NULL ? "no CSRF cookie" : "no csrf field in the form");
        return 0;
    }
    if (cl != fl || cl != CSRF_LEN || CRYPTO_memcmp(cv, fv, cl) != 0) {
        srv_note(st, "CSRF check failed: the csrf field does not match the cookie");
        return 0;
    }
    return 1;
}

/* ---- page frame ------------------------------------------------------------------------ */

static void head(srv_buf *b, const char *title)
{
    srv_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta name=\"referrer\" content=\"no-referrer\">\n<title>");
    srv_buf_html(b, title, strlen(title));
    srv_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", css);
}

static void tail(srv_buf *b)
{
    srv_buf_puts(b, "</main>\n</body>\n</html>\n");
}

static void para(srv_buf *b, const char *cls, const char *text)
{
    if (text == NULL || text[0] == '\0') {
        return;
    }
    if (cls != NULL) {
        srv_buf_printf(b, "<p class=\"%s\">", cls);
    } else {
        srv_buf_puts(b, "<p>");
    }
    srv_buf_html(b, text, strlen(text));
    srv_buf_puts(b, "</p>\n");
}

static enum MHD_Result page_failed(srv_conn *st, struct MHD_Connection *c, srv_buf *b)
{
    srv_buf_free(b);
    static const char fallback[] = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                                   "<title>Server error</title></head><body><p>The page could not be built. "
                                   "Try again in a minute.</p></body></html>\n";
    st->error = "server_error";
    return srv_respond_html_static(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, fallback, sizeof fallback - 1,
                                   SRV_CACHE_NO_STORE);
}

/* Sends a page that holds a form: `b` (tail() written), with the CSRF
 * cookie of `csrf`, which is wiped here, beside `extra_cookie` and a
 * Retry-After of `retry_after` seconds when set. */
static enum MHD_Result send_form_page(srv_conn *st, struct MHD_Connection *c, unsigned status, srv_buf *b,
                                      char csrf[CSRF_LEN + 1], const char *form_origin, const char *extra_cookie,
                                      int64_t retry_after)
{
    if (b->overflow || b->p == NULL) {
        OPENSSL_cleanse(csrf, CSRF_LEN + 1);
        return page_failed(st, c, b);
    }
    char cookie[CSRF_LEN + 1 + 96];
    csrf_cookie(st->srv, csrf, cookie, sizeof cookie);
    OPENSSL_cleanse(csrf, CSRF_LEN + 1);
    srv_header h[3];
    size_t n = 0;
    h[n++] = (srv_header){MHD_HTTP_HEADER_SET_COOKIE, cookie};
    if (extra_cookie != NULL) {
        h[n++] = (srv_header){MHD_HTTP_HEADER_SET_COOKIE, extra_cookie};
    }
    char ra[24];
    if (retry_after > 0) {
        snprintf(ra, sizeof ra, "%" PRId64, retry_after);
        h[n++] = (srv_header){MHD_HTTP_HEADER_RETRY_AFTER, ra};
    }
    size_t len = b->len;
    enum MHD_Result r = srv_respond_html(st, c, status, b->p, len, SRV_CACHE_NO_STORE, form_origin, h, n);
    OPENSSL_cleanse(cookie, sizeof cookie);
    return r;
}

void srv_fact_copy(char *out, size_t cap, const char *in)
{
    if (cap == 0) {
        return;
    }
    size_t n = strlen(in);
    size_t keep = n < cap ? n : (cap > 4 ? cap - 4 : cap - 1);
    /* never cut a UTF-8 sequence in two */
    while (keep < n && keep > 0 && ((unsigned char)in[keep] & 0xC0) == 0x80) {
        keep--;
    }
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[i] = ch < 0x20 || ch == 0x7F ? '?' : (char)ch;
    }
    out[keep] = '\0';
    if (keep < n && cap > 4) {
        memcpy(out + keep, "...", 4);
    }
}

static enum MHD_Result message_page(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *title,
                                    const char *text, const char *text2, const srv_fact *facts, size_t n_facts,
                                    const char *note, const char *set_cookie)
{
    srv_buf b;
    srv_buf_heap(&b, PAGE_MAX);
    head(&b, title);
    srv_buf_puts(&b, "<h1>");
    srv_buf_html(&b, title, strlen(title));
    srv_buf_puts(&b, "</h1>\n");
    para(&b, NULL, text);
    para(&b, NULL, text2);
    if (n_facts > 0) {
        srv_buf_puts(&b, "<dl class=\"facts\">\n");
        for (size_t i = 0; i < n_facts; i++) {
            srv_buf_puts(&b, "<dt>");
            srv_buf_html(&b, facts[i].label, strlen(facts[i].label));
            srv_buf_puts(&b, "</dt><dd>");
            if (facts[i].value == NULL) {
                srv_buf_puts(&b, "<em>(none)</em>");
            } else {
                char v[SRV_FACT_SHOWN + 4];
                srv_fact_copy(v, sizeof v, facts[i].value);
                srv_buf_puts(&b, "<code>");
                srv_buf_html(&b, v, strlen(v));
                srv_buf_puts(&b, "</code>");
            }
            srv_buf_puts(&b, "</dd>\n");
        }
        srv_buf_puts(&b, "</dl>\n");
    }
    para(&b, "small", note);
    tail(&b);
    if (b.overflow || b.p == NULL) {
        return page_failed(st, c, &b);
    }
    srv_header h = {MHD_HTTP_HEADER_SET_COOKIE, set_cookie};
    size_t len = b.len;
    return srv_respond_html(st, c, status, b.p, len, SRV_CACHE_NO_STORE, NULL, &h, set_cookie != NULL ? 1 : 0);
}

enum MHD_Result srv_page_message(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *title,
                                 const char *text, const char *text2, const char *set_cookie)
{
    return message_page(st, c, status, title, text, text2, NULL, 0, NULL, set_cookie);
}

enum MHD_Result srv_page_facts(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *title,
                               const char *text, const char *text2, const srv_fact *facts, size_t n_facts,
                               const char *note)
{
    return message_page(st, c, status, title, text, text2, facts, n_facts, note, NULL);
}

/* ---- the sign-in page ------------------------------------------------------------------- */

static void hidden(srv_buf *b, const char *name, const char *value)
{
    if (value == NULL) {
        return;
    }
    srv_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    srv_buf_html(b, value, strlen(value));
    srv_buf_puts(b, "\">\n");
}

/* The host (authority) of a URI for people, or the URI itself. */
static void uri_host(srv_buf *b, const char *uri)
{
    const char *p = strstr(uri, "://");
    if (p == NULL) {
        srv_buf_html(b, uri, strlen(uri));
        return;
    }
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at != NULL) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    srv_buf_html(b, p, n);
}

static void scope_list(srv_buf *b, const char *scope)
{
    size_t shown = 0;
    const char *p = scope;
    srv_buf_puts(b, "<ul class=\"scopes\">\n");
    while (*p != '\0') {
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, " ");
        if (n == 0) {
            break;
        }
        if (shown == SCOPES_SHOWN) {
            srv_buf_puts(b, "<li>and more</li>\n");
            break;
        }
        srv_buf_puts(b, "<li><code>");
        srv_buf_html(b, p, n);
        srv_buf_puts(b, "</code></li>\n");
        shown++;
        p += n;
    }
    if (shown == 0) {
        srv_buf_puts(b, "<li>no particular permission (sign-in only)</li>\n");
    }
    srv_buf_puts(b, "</ul>\n");
}

/* The authorization request, carried through a form (checked again when
 * the form comes back). */
static void authz_hidden(srv_buf *b, const srv_authz *az)
{
    const tka_authz_request *r = &az->req;
    hidden(b, "client_id", r->client_id);
    hidden(b, "redirect_uri", r->redirect_uri);
    hidden(b, "response_type", r->response_type);
    hidden(b, "scope", r->scope);
    hidden(b, "state", r->state);
    hidden(b, "code_challenge", r->code_challenge);
    hidden(b, "code_challenge_method", r->code_challenge_method);
    hidden(b, "audience", r->audience);
    hidden(b, "nonce", r->nonce);
    hidden(b, "prompt", r->prompt);
    hidden(b, "max_age", r->max_age);
    hidden(b, "login_hint", r->login_hint);
    hidden(b, "id_token_hint", r->id_token_hint);
    hidden(b, "ui_locales", r->ui_locales);
}

static void client_name(srv_buf *b, const tks_client *cl)
{
    if (cl->name[0] != '\0' && strcmp(cl->name, cl->id) != 0) {
        srv_buf_puts(b, "<strong>");
        srv_buf_html(b, cl->name, strnlen(cl->name, sizeof cl->name));
        srv_buf_puts(b, "</strong> (<code>");
        srv_buf_html(b, cl->id, strnlen(cl->id, sizeof cl->id));
        srv_buf_puts(b, "</code>)");
    } else {
        srv_buf_puts(b, "<strong><code>");
        srv_buf_html(b, cl->id, strnlen(cl->id, sizeof cl->id));
        srv_buf_puts(b, "</code></strong>");
    }
}

enum MHD_Result srv_page_login(srv_conn *st, struct MHD_Connection *c, unsigned status, const srv_authz *az,
                               const char *message, const char *username, int64_t retry_after)
{
    struct tkh_server *s = st->srv;
    char csrf[CSRF_LEN + 1];
    if (csrf_value(c, s, csrf) != 0) {
        st->error = "server_error";
        return srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is unavailable",
                                "The sign-in form could not be prepared. Try again in a minute.", NULL, NULL);
    }
    const tks_client *cl = &az->client;
    srv_buf b;
    srv_buf_heap(&b, PAGE_MAX);
    head(&b, "Sign in");
    srv_buf_puts(&b, "<h1>Sign in</h1>\n<p class=\"client\">");
    client_name(&b, cl);
    srv_buf_puts(&b, " asks to use your account. It will be allowed:</p>\n");
    scope_list(&b, az->scope);
    if (message != NULL && message[0] != '\0') {
        srv_buf_puts(&b, "<p class=\"msg\" role=\"alert\">");
        srv_buf_html(&b, message, strlen(message));
        srv_buf_puts(&b, "</p>\n");
    }
    /* Relative to where the page is served (/oauth/authorize or /login),
     * so that it also works behind a path prefix. */
    srv_buf_printf(&b, "<form method=\"post\" action=\"%s\">\n",
                   st->route == SRV_ROUTE_AUTHORIZE ? "../login" : "login");
    hidden(&b, "csrf", csrf);
    authz_hidden(&b, az);
    int have_user = username != NULL && username[0] != '\0';
    srv_buf_puts(&b, "<label for=\"username\">Username</label>\n"
                     "<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" "
                     "autocapitalize=\"none\" autocorrect=\"off\" spellcheck=\"false\" required");
    if (have_user) {
        srv_buf_puts(&b, " value=\"");
        srv_buf_html(&b, username, strnlen(username, USERNAME_SHOWN));
        srv_buf_puts(&b, "\">\n");
    } else {
        srv_buf_puts(&b, " autofocus>\n");
    }
    srv_buf_printf(&b,
                   "<label for=\"password\">Password</label>\n"
                   "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" "
                   "required%s>\n"
                   "<button type=\"submit\">Sign in</button>\n</form>\n",
                   have_user ? " autofocus" : "");
    srv_buf_puts(&b, "<p class=\"small\">After signing in you return to <strong>");
    uri_host(&b, az->redirect);
    srv_buf_puts(&b, "</strong>.</p>\n");
    tail(&b);
    return send_form_page(st, c, status, &b, csrf, az->redirect, NULL, retry_after);
}

/* ---- consent ------------------------------------------------------------------------------ */

/* What a scope lets the application do, in words (OpenID Connect Core
 * section 5.4 for the standard ones). */
static void scope_words(srv_buf *b, const char *p, size_t n)
{
    static const struct {
        const char *scope, *words;
    } known[] = {
        {"openid", "Know who you are: your account's identifier on this server"},
        {"profile", "See your name and username"},
        {"email", "See your e-mail address and whether it was verified"},
        {"offline_access", "Keep acting for you while you are away"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strlen(known[i].scope) == n && memcmp(known[i].scope, p, n) == 0) {
            srv_buf_puts(b, known[i].words);
            srv_buf_puts(b, " (<code>");
            srv_buf_html(b, p, n);
            srv_buf_puts(b, "</code>)");
            return;
        }
    }
    srv_buf_puts(b, "Use the permission <code>");
    srv_buf_html(b, p, n);
    srv_buf_puts(b, "</code> of its API for you");
}

enum MHD_Result srv_page_consent(srv_conn *st, struct MHD_Connection *c, const srv_authz *az, const char *user,
                                 const char *set_cookie)
{
    struct tkh_server *s = st->srv;
    char csrf[CSRF_LEN + 1];
    if (csrf_value(c, s, csrf) != 0) {
        st->error = "server_error";
        return srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is unavailable",
                                "The consent form could not be prepared. Try again in a minute.", NULL, set_cookie);
    }
    srv_buf b;
    srv_buf_heap(&b, PAGE_MAX);
    head(&b, "Allow access?");
    srv_buf_puts(&b, "<h1>Allow access?</h1>\n<p class=\"client\">");
    client_name(&b, &az->client);
    srv_buf_puts(&b, " is an application of another party. It asks to act for <strong>");
    srv_buf_html(&b, user, strnlen(user, USERNAME_SHOWN));
    srv_buf_puts(&b, "</strong> and would be allowed to:</p>\n<ul class=\"scopes\">\n");
    size_t shown = 0;
    for (const char *p = az->scope; *p != '\0';) {
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, " ");
        if (n == 0) {
            break;
        }
        srv_buf_puts(&b, "<li>");
        scope_words(&b, p, n);
        srv_buf_puts(&b, "</li>\n");
        shown++;
        p += n;
    }
    if (shown == 0) {
        srv_buf_puts(&b, "<li>Know that you signed in</li>\n");
    }
    srv_buf_printf(&b, "</ul>\n<form method=\"post\" action=\"%s\">\n",
                   st->route == SRV_ROUTE_AUTHORIZE ? "../consent" : "consent");
    hidden(&b, "csrf", csrf);
    authz_hidden(&b, az);
    srv_buf_puts(&b, "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n"
                     "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n"
                     "</form>\n<p class=\"small\">You return to <strong>");
    uri_host(&b, az->redirect);
    srv_buf_puts(&b, "</strong> either way. Your answer is remembered; an administrator can withdraw it "
                     "(<code>tokend user consents</code>).</p>\n");
    tail(&b);
    return send_form_page(st, c, MHD_HTTP_OK, &b, csrf, az->redirect, set_cookie, 0);
}

/* ---- confirming a sign-out ---------------------------------------------------------------- */

static void hidden_n(srv_buf *b, const char *name, const char *value, size_t n)
{
    srv_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    srv_buf_html(b, value, n);
    srv_buf_puts(b, "\">\n");
}

enum MHD_Result srv_page_logout_confirm(srv_conn *st, struct MHD_Connection *c, const char *user, const srv_form *f)
{
    struct tkh_server *s = st->srv;
    char csrf[CSRF_LEN + 1];
    if (csrf_value(c, s, csrf) != 0) {
        st->error = "server_error";
        return srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-out is unavailable",
                                "The sign-out form could not be prepared. Try again in a minute.", NULL, NULL);
    }
    srv_buf b;
    srv_buf_heap(&b, PAGE_MAX);
    head(&b, "Sign out?");
    srv_buf_puts(&b, "<h1>Sign out?</h1>\n<p>");
    if (user != NULL && user[0] != '\0') {
        srv_buf_puts(&b, "You are signed in as <strong>");
        srv_buf_html(&b, user, strnlen(user, USERNAME_SHOWN));
        srv_buf_puts(&b, "</strong>. ");
    }
    srv_buf_puts(&b, "Signing out ends this sign-in: the applications you used through it can no longer act for "
                     "you.</p>\n<form method=\"post\" action=\"logout\">\n");
    hidden(&b, "csrf", csrf);
    static const char *const keep[] = {"client_id", "post_logout_redirect_uri", "state", "id_token_hint"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        size_t n = 0;
        const char *v = srv_form_get(f, keep[i], &n);
        if (v != NULL) {
            hidden_n(&b, keep[i], v, n);
        }
    }
    srv_buf_puts(&b, "<button type=\"submit\">Sign out</button>\n</form>\n"
                     "<p class=\"small\">If you did not ask to sign out, close this page: nothing changes.</p>\n");
    tail(&b);
    return send_form_page(st, c, MHD_HTTP_OK, &b, csrf, NULL, NULL, 0);
}
