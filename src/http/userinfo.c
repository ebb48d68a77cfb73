/* SPDX-License-Identifier: Apache-2.0 */
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
#include <time.h>

#include "http/internal.h"

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
    tks_user u;
    memset(&u, 0, sizeof u);
    char scope[TKS_LIST_MAX + 1] = "";
    const char *tok = NULL;
    size_t tok_len = 0;
    if (srv_bearer_token(st, c, &tok, &tok_len, &v) &&
        tka_userinfo(s->auth, tok, tok_len, (int64_t)time(NULL), &v, &u, scope, sizeof scope) != 0) {
        v.reason = TK_REASON_UNAVAILABLE;
        if (v.detail[0] == '\0') {
            snprintf(v.detail, sizeof v.detail, "no decision: the store could not be read");
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
    if (tka_in_list(scope, "profile", 7)) {
        member(&b, "name", u.name);
        member(&b, "given_name", u.given_name);
        member(&b, "family_name", u.family_name);
        member(&b, "preferred_username", u.preferred_username);
    }
    if (tka_in_list(scope, "email", 5) && u.email[0] != '\0') {
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
