/*
 * userinfo.c — GET/POST /userinfo (OpenID Connect Core 1.0 section 5.3):
 * the claims about the signed-in user that the access token's scopes
 * release (section 5.4): `sub` always; `profile`: name, given_name,
 * family_name, preferred_username; `email`: email, email_verified. A claim
 * without a value is left out (section 5.3.2). The token travels in the
 * Authorization header (RFC 6750 section 2.1); a refusal is an RFC 6750
 * challenge with our reason code, as at /auth.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/internal.h"

static enum MHD_Result count_authz(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    (void)value;
    (void)value_size;
    if (key_size == sizeof MHD_HTTP_HEADER_AUTHORIZATION - 1 && strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION) == 0) {
        (*(int *)cls)++;
    }
    return MHD_YES;
}

/* Is `w` one of the space-separated scopes? */
static int granted(const char *scope, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = scope; *p;) {
        while (*p == ' ') {
            p++;
        }
        const char *e = p;
        while (*e && *e != ' ') {
            e++;
        }
        if ((size_t)(e - p) == wl && memcmp(p, w, wl) == 0) {
            return 1;
        }
        p = e;
    }
    return 0;
}

static void member(srv_buf *b, const char *name, const char *value)
{
    if (value[0] == '\0') {
        return;
    }
    srv_buf_printf(b, ",\"%s\":", name);
    srv_buf_json_str(b, value, strlen(value));
}

enum MHD_Result srv_handle_userinfo(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    tk_verdict v;
    memset(&v, 0, sizeof v);
    int n_authz = 0;
    (void)MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_authz, &n_authz);
    const char *hv = NULL;
    size_t hl = 0;
    if (n_authz > 0) {
        (void)MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
                                            sizeof MHD_HTTP_HEADER_AUTHORIZATION - 1, &hv, &hl);
    }
    tks_user u;
    memset(&u, 0, sizeof u);
    char scope[TKS_LIST_MAX + 1] = "";
    if (n_authz > 1) {
        v.reason = TK_REASON_MALFORMED_HEADER;
        snprintf(v.detail, sizeof v.detail, "%d Authorization headers; send exactly one", n_authz);
    } else {
        const char *tok = NULL;
        size_t tok_len = 0;
        if (tk_authz_parse(hv, hv != NULL ? hl : 0, &tok, &tok_len, &v) != TK_OK) {
            v.reason = TK_REASON_UNAVAILABLE;
            snprintf(v.detail, sizeof v.detail, "no decision: the Authorization header could not be parsed");
        } else if (v.reason == TK_REASON_VALID) {
            srv_fingerprint(st, tok, tok_len);
            if (tka_userinfo(s->auth, tok, tok_len, (int64_t)time(NULL), &v, &u, scope, sizeof scope) != 0) {
                v.reason = TK_REASON_UNAVAILABLE;
                if (v.detail[0] == '\0') {
                    snprintf(v.detail, sizeof v.detail, "no decision: the store could not be read");
                }
            }
        }
    }
    st->reason = (int)v.reason;
    if (v.reason != TK_REASON_VALID) {
        return srv_respond_verdict(st, c, &v);
    }
    srv_buf b;
    srv_buf_heap(&b, 8192);
    srv_buf_puts(&b, "{\"sub\":");
    srv_buf_json_str(&b, u.id, strlen(u.id));
    if (granted(scope, "profile")) {
        member(&b, "name", u.name);
        member(&b, "given_name", u.given_name);
        member(&b, "family_name", u.family_name);
        member(&b, "preferred_username", u.preferred_username);
    }
    if (granted(scope, "email") && u.email[0] != '\0') {
        member(&b, "email", u.email);
        srv_buf_printf(&b, ",\"email_verified\":%s", u.email_verified ? "true" : "false");
    }
    srv_buf_putc(&b, '}');
    if (b.overflow || b.p == NULL) {
        srv_buf_free(&b);
        return srv_respond_error(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", "userinfo too large",
                                 SRV_CACHE_NO_STORE, NULL, 0);
    }
    srv_note(st, "userinfo of %s for scope '%s'", u.id, scope);
    size_t len = b.len;
    return srv_respond_owned(st, c, MHD_HTTP_OK, "application/json", b.p, len, SRV_CACHE_NO_STORE, NULL, 0);
}
