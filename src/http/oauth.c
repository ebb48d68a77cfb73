/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oauth.c — the OAuth 2.0 endpoints: token (RFC 6749 sections 3.2, 4.1.3,
 * 4.4, 5.1, 5.2, 6), revocation (RFC 7009) and introspection (RFC 7662),
 * with client authentication client_secret_basic and client_secret_post
 * (RFC 6749 section 2.3.1) shared by all three, and public clients (id
 * only, "none") at the token and revocation endpoints.
 *
 * Bodies are application/x-www-form-urlencoded, parsed strictly by form.c.
 * Errors are RFC 6749 section 5.2 JSON objects; every response of these
 * endpoints carries Cache-Control: no-store (and Pragma: no-cache, RFC 6749
 * section 5.1). Grant types are dispatched through one table:
 * client_credentials, authorization_code (with the PKCE verifier) and
 * refresh_token (rotating).
 *
 * Secrets: the client secret never leaves this file except into
 * tka_client_authenticate; stack copies and the request body are wiped
 * after use. Tokens are logged only as fingerprints.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "http/internal.h"

#define CACHE SRV_CACHE_NO_STORE_PRAGMA

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static enum MHD_Result oauth_error(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *desc)
{
    return srv_respond_error(st, c, status, code, desc, CACHE, NULL, 0);
}

/* RFC 6749 section 5.2: invalid_client is 401 with a challenge naming the
 * scheme the client may use. */
static enum MHD_Result invalid_client(srv_conn *st, struct MHD_Connection *c, const char *desc)
{
    char chal[160];
    snprintf(chal, sizeof chal, "Basic realm=\"%s\", charset=\"UTF-8\"", st->srv->realm);
    srv_header h = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, chal};
    return srv_respond_error(st, c, MHD_HTTP_UNAUTHORIZED, "invalid_client", desc, CACHE, &h, 1);
}

/* Keeps a printable, bounded copy of a client id for the log line. */
static void note_client(srv_conn *st, const char *id, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o < sizeof st->client_id - 1; i++) {
        unsigned char ch = (unsigned char)id[i];
        st->client_id[o++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
    }
    st->client_id[o] = '\0';
}

/* ---- the form ---------------------------------------------------------------- */

/* Parses the body; on failure queues the error and returns 0 with *res. */
static int read_form(srv_conn *st, struct MHD_Connection *c, srv_form *f, enum MHD_Result *res)
{
    if (!srv_is_form(c)) {
        *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                           "the body must be application/x-www-form-urlencoded (RFC 6749 section 3.2)");
        return 0;
    }
    char empty[1] = "";
    char *body = st->body != NULL ? st->body : empty;
    const char *bad = NULL;
    enum srv_form_result r = srv_form_parse(body, st->body_len, f, &bad);
    switch (r) {
    case SRV_FORM_OK:
        return 1;
    case SRV_FORM_BAD_ENCODING:
        *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                           "the body is not valid form encoding: '%' must be followed by two hex digits");
        return 0;
    case SRV_FORM_NUL:
        *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "the body contains a NUL byte (%00)");
        return 0;
    case SRV_FORM_TOO_MANY:
        *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "too many parameters in the body");
        return 0;
    case SRV_FORM_DUPLICATE:
        break;
    }
    char desc[160];
    if (strcmp(bad, "resource") == 0) {
        /* RFC 8707 section 2: several resources are allowed by the spec,
         * one per token here */
        *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_target",
                           "this server issues a token for one resource at a time");
        return 0;
    }
    snprintf(desc, sizeof desc, "parameter \"%.40s\" appears more than once (RFC 6749 section 3.1)", bad);
    for (char *p = desc; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F) {
            *p = '?';
        }
    }
    *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", desc);
    return 0;
}

/* ---- client authentication (RFC 6749 section 2.3.1) ---------------------------------- */

/* A public client (RFC 6749 section 2.1) names itself with client_id and
 * no secret; PKCE, not a secret, protects its codes. Returns 1 with
 * *client filled, or 0 with the error queued. */
static int identify_public(srv_conn *st, struct MHD_Connection *c, const char *id, size_t id_len, tks_client *client,
                           enum MHD_Result *res)
{
    note_client(st, id, id_len);
    switch (tka_client_identify_public(st->srv->auth, id, id_len, client)) {
    case TKA_AUTH_OK:
        return 1;
    case TKA_AUTH_DISABLED:
        *res = invalid_client(st, c, "client is disabled");
        return 0;
    case TKA_AUTH_ERROR:
        *res = oauth_error(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                           "the client store is unavailable; retry later");
        return 0;
    case TKA_AUTH_BAD:
    case TKA_AUTH_THROTTLED:
    default:
        *res = invalid_client(st, c,
                              "no client_secret, and this is not a public client: authenticate with its secret "
                              "(client_secret_basic or client_secret_post)");
        return 0;
    }
}

/* Authenticates the client of this request: with its secret, or (when
 * allow_public) a public client by its id alone. Returns 1 with *client
 * filled, or 0 with the error queued and *res set. */
static int authenticate(srv_conn *st, struct MHD_Connection *c, const srv_form *f, int allow_public, tks_client *client,
                        enum MHD_Result *res)
{
    struct tkh_server *s = st->srv;
    const char *hv = NULL;
    size_t hl = 0;
    unsigned char basic[SRV_BASIC_MAX + 1];
    char id_buf[SRV_BASIC_MAX + 1];
    char secret_buf[SRV_BASIC_MAX + 1];
    const char *id = NULL;
    const char *secret = NULL;
    size_t id_len = 0;
    size_t secret_len = 0;
    int ok = 0;
    size_t body_id_len = 0;
    const char *body_id = srv_form_get(f, "client_id", &body_id_len);
    size_t body_secret_len = 0;
    const char *body_secret = srv_form_get(f, "client_secret", &body_secret_len);

    if (MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
                                      sizeof MHD_HTTP_HEADER_AUTHORIZATION - 1, &hv, &hl) == MHD_YES &&
        hv != NULL) {
        /* "Basic" 1*SP token68 (RFC 7617 section 2), scheme case-insensitive */
        while (hl > 0 && (hv[hl - 1] == ' ' || hv[hl - 1] == '\t')) {
            hl--;
        }
        if (hl < 6 || strncasecmp(hv, "Basic ", 6) != 0) {
            srv_note(st, "Authorization header with a scheme other than Basic");
            *res = invalid_client(st, c,
                                  "authenticate with HTTP Basic (client_secret_basic) or with client_id and "
                                  "client_secret in the body (client_secret_post)");
            goto out;
        }
        size_t at = 6;
        while (at < hl && hv[at] == ' ') {
            at++;
        }
        size_t n = srv_base64_decode(hv + at, hl - at, basic, sizeof basic);
        char *colon = n != (size_t)-1 ? memchr(basic, ':', n) : NULL;
        if (colon == NULL) {
            srv_note(st, "HTTP Basic credentials are not base64 of \"id:secret\"");
            *res = invalid_client(st, c, "the Basic credentials are not base64 of client_id:client_secret");
            goto out;
        }
        size_t cl = (size_t)(colon - (char *)basic);
        /* RFC 6749 section 2.3.1: both parts are form-urlencoded first */
        id_len = srv_form_decode((const char *)basic, cl, id_buf, sizeof id_buf);
        secret_len = srv_form_decode(colon + 1, n - cl - 1, secret_buf, sizeof secret_buf);
        if (id_len == (size_t)-1 || secret_len == (size_t)-1) {
            srv_note(st, "HTTP Basic credentials carry a bad percent-encoding");
            *res = invalid_client(st, c, "the Basic credentials are not correctly form-urlencoded");
            goto out;
        }
        id = id_buf;
        secret = secret_buf;
        if (body_secret != NULL) {
            *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                               "the client authenticated twice (HTTP Basic and client_secret in the body); use "
                               "one method (RFC 6749 section 2.3)");
            goto out;
        }
        if (body_id != NULL && (body_id_len != id_len || memcmp(body_id, id, id_len) != 0)) {
            *res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                               "client_id in the body differs from the one in the Basic credentials");
            goto out;
        }
        if (secret_len == 0 && allow_public) {
            /* "id:" — how some libraries send a public client's id */
            ok = identify_public(st, c, id, id_len, client, res);
            goto out;
        }
    } else if (body_id != NULL && body_secret != NULL) {
        id = body_id;
        id_len = body_id_len;
        secret = body_secret;
        secret_len = body_secret_len;
    } else if (body_id != NULL && allow_public) {
        ok = identify_public(st, c, body_id, body_id_len, client, res);
        goto out;
    } else if (body_id != NULL) {
        note_client(st, body_id, body_id_len);
        *res = invalid_client(st, c,
                              "no client_secret: introspection needs the credentials of a confidential client "
                              "(RFC 7662 section 2.1)");
        goto out;
    } else {
        *res = invalid_client(st, c,
                              "no client authentication: use HTTP Basic (client_secret_basic) or client_id and "
                              "client_secret in the body (client_secret_post)");
        goto out;
    }

    note_client(st, id, id_len);
    int64_t retry = 0;
    tka_auth_why why = TKA_AUTH_WHY_NONE;
    tka_auth_result ar =
        tka_client_authenticate(s->auth, id, id_len, secret, secret_len, st->ip, now_s(), client, &retry, &why);
    switch (ar) {
    case TKA_AUTH_OK:
        ok = 1;
        break;
    case TKA_AUTH_BAD:
        /* the operator's log says which; the client hears one answer */
        srv_note(st, "client authentication failed: %s",
                 why == TKA_AUTH_WHY_UNKNOWN_CLIENT ? "no client has this id" : "wrong secret for this client");
        *res = invalid_client(st, c, "client authentication failed");
        break;
    case TKA_AUTH_DISABLED:
        *res = invalid_client(st, c, "client is disabled");
        break;
    case TKA_AUTH_THROTTLED: {
        char ra[24];
        char desc[96];
        if (retry < 1) {
            retry = 1;
        }
        snprintf(ra, sizeof ra, "%" PRId64, retry);
        snprintf(desc, sizeof desc, "too many failed attempts; retry after %" PRId64 " second%s", retry,
                 retry == 1 ? "" : "s");
        srv_header h = {MHD_HTTP_HEADER_RETRY_AFTER, ra};
        *res = srv_respond_error(st, c, MHD_HTTP_TOO_MANY_REQUESTS, "invalid_client", desc, CACHE, &h, 1);
        break;
    }
    case TKA_AUTH_ERROR:
    default:
        srv_note(st, "client authentication could not be decided or recorded: %s", tks_errmsg(s->store));
        *res = oauth_error(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                           "the client store is unavailable; retry later");
        break;
    }
out:
    OPENSSL_cleanse(basic, sizeof basic);
    OPENSSL_cleanse(secret_buf, sizeof secret_buf);
    OPENSSL_cleanse(id_buf, sizeof id_buf);
    return ok;
}

/* ---- POST /oauth/token --------------------------------------------------------------- */

typedef enum MHD_Result (*grant_fn)(srv_conn *st, struct MHD_Connection *c, const srv_form *f,
                                    const tks_client *client);

/* The RFC 6749 section 5.1 answer for what the authority issued. */
static enum MHD_Result issued_response(srv_conn *st, struct MHD_Connection *c, tka_issued *iss)
{
    srv_buf b;
    srv_buf_heap(&b, 4u * TK_LIMIT_TOKEN_LEN);
    size_t tl = iss->access_token != NULL ? strlen(iss->access_token) : 0;
    srv_fingerprint(st, iss->access_token != NULL ? iss->access_token : "", tl);
    srv_buf_puts(&b, "{\"access_token\":");
    srv_buf_json_str(&b, iss->access_token != NULL ? iss->access_token : "", tl);
    srv_buf_printf(&b, ",\"token_type\":\"Bearer\",\"expires_in\":%" PRId64, iss->expires_in);
    if (iss->refresh_token != NULL) {
        srv_buf_puts(&b, ",\"refresh_token\":");
        srv_buf_json_str(&b, iss->refresh_token, strlen(iss->refresh_token));
    }
    if (iss->id_token != NULL) {
        srv_buf_puts(&b, ",\"id_token\":");
        srv_buf_json_str(&b, iss->id_token, strlen(iss->id_token));
    }
    if (iss->scope[0] != '\0') {
        srv_buf_puts(&b, ",\"scope\":");
        srv_buf_json_str(&b, iss->scope, strnlen(iss->scope, sizeof iss->scope));
    }
    srv_buf_putc(&b, '}');
    if (st->detail[0] == '\0') {
        srv_note(st, "issued jti %s, expires in %" PRId64 "s%s%s", iss->jti, iss->expires_in,
                 iss->refresh_token != NULL ? ", with a refresh token" : "",
                 iss->id_token != NULL ? ", with an ID token" : "");
    }
    tka_issued_clear(iss);
    if (b.overflow || b.p == NULL) {
        if (b.p != NULL) {
            OPENSSL_cleanse(b.p, b.len);
        }
        srv_buf_free(&b);
        return oauth_error(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", "token response too large");
    }
    size_t len = b.len;
    return srv_respond_owned(st, c, MHD_HTTP_OK, "application/json", b.p, len, CACHE, NULL, 0);
}

/* The RFC 6749 section 5.2 answer for a grant the authority refused. */
static enum MHD_Result grant_refused(srv_conn *st, struct MHD_Connection *c, tka_grant_result gr, const char *why)
{
    switch (gr) {
    case TKA_GRANT_INVALID_GRANT:
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_grant", why[0] ? why : "invalid grant");
    case TKA_GRANT_UNAUTHORIZED_CLIENT:
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "unauthorized_client",
                           why[0] ? why : "this client may not use this grant type");
    case TKA_GRANT_INVALID_SCOPE:
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_scope", why[0] ? why : "scope not allowed");
    case TKA_GRANT_INVALID_TARGET:
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_target", why[0] ? why : "audience not allowed");
    case TKA_GRANT_OK:
    case TKA_GRANT_ERROR:
    default:
        srv_note(st, "issuance failed: %s", why);
        return oauth_error(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                           "the token could not be issued; retry later");
    }
}

static enum MHD_Result grant_client_credentials(srv_conn *st, struct MHD_Connection *c, const srv_form *f,
                                                const tks_client *client)
{
    struct tkh_server *s = st->srv;
    if (client->is_public) {
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "unauthorized_client",
                           "a public client has no secret, so it cannot use client_credentials");
    }
    const char *scope = srv_form_get(f, "scope", NULL);
    const char *audience = srv_form_get(f, "audience", NULL);
    const char *resource = srv_form_get(f, "resource", NULL);
    if (audience != NULL && resource != NULL && strcmp(audience, resource) != 0) {
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                           "audience and resource name different targets; send one of them");
    }
    const char *target = audience != NULL ? audience : resource;
    tka_issued iss;
    memset(&iss, 0, sizeof iss);
    char why[256] = "";
    tka_grant_result gr = tka_issue_client_credentials(s->auth, client, scope, target, now_s(), &iss, why, sizeof why);
    if (gr != TKA_GRANT_OK) {
        tka_issued_clear(&iss);
        return grant_refused(st, c, gr, why);
    }
    return issued_response(st, c, &iss);
}

/* RFC 6749 section 4.1.3 with the PKCE verifier (RFC 7636 section 4.5). */
static enum MHD_Result grant_authorization_code(srv_conn *st, struct MHD_Connection *c, const srv_form *f,
                                                const tks_client *client)
{
    struct tkh_server *s = st->srv;
    size_t code_len = 0;
    size_t ver_len = 0;
    const char *code = srv_form_get(f, "code", &code_len);
    const char *redirect_uri = srv_form_get(f, "redirect_uri", NULL);
    const char *verifier = srv_form_get(f, "code_verifier", &ver_len);
    if (code == NULL) {
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "the code parameter is missing");
    }
    srv_fingerprint(st, code, code_len); /* replaced by the access token's when one is issued */
    if (verifier == NULL) {
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request",
                           "the code_verifier parameter is missing (PKCE, RFC 7636 section 4.5)");
    }
    tka_issued iss;
    memset(&iss, 0, sizeof iss);
    char why[256] = "";
    tka_grant_result gr = tka_issue_authorization_code(s->auth, client, code, code_len, redirect_uri, verifier, ver_len,
                                                       now_s(), &iss, why, sizeof why);
    if (gr != TKA_GRANT_OK) {
        tka_issued_clear(&iss);
        return grant_refused(st, c, gr, why);
    }
    return issued_response(st, c, &iss);
}

/* RFC 6749 section 6; the refresh token rotates (RFC 9700 section 4.14.2). */
static enum MHD_Result grant_refresh_token(srv_conn *st, struct MHD_Connection *c, const srv_form *f,
                                           const tks_client *client)
{
    struct tkh_server *s = st->srv;
    size_t rl = 0;
    const char *refresh = srv_form_get(f, "refresh_token", &rl);
    const char *scope = srv_form_get(f, "scope", NULL);
    if (refresh == NULL) {
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "the refresh_token parameter is missing");
    }
    srv_fingerprint(st, refresh, rl); /* replaced by the access token's when one is issued */
    char presented[sizeof st->fp];
    memcpy(presented, st->fp, sizeof presented);
    tka_issued iss;
    memset(&iss, 0, sizeof iss);
    char why[256] = "";
    tka_grant_result gr = tka_issue_refresh(s->auth, client, refresh, rl, scope, now_s(), &iss, why, sizeof why);
    if (gr != TKA_GRANT_OK) {
        tka_issued_clear(&iss);
        return grant_refused(st, c, gr, why);
    }
    srv_note(st, "refresh token %s rotated; issued jti %s, expires in %" PRId64 "s", presented, iss.jti,
             iss.expires_in);
    return issued_response(st, c, &iss);
}

static const struct grant {
    const char *name;
    grant_fn fn; /* NULL: known, not supported yet */
} grants[] = {
    {"client_credentials", grant_client_credentials},
    {"authorization_code", grant_authorization_code},
    {"refresh_token", grant_refresh_token},
};

enum MHD_Result srv_handle_token(srv_conn *st, struct MHD_Connection *c)
{
    srv_form f;
    enum MHD_Result res = MHD_NO;
    if (!read_form(st, c, &f, &res)) {
        return res;
    }
    tks_client client;
    if (!authenticate(st, c, &f, 1, &client, &res)) {
        return res;
    }
    size_t gl = 0;
    const char *gt = srv_form_get(&f, "grant_type", &gl);
    if (gt == NULL) {
        res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "the grant_type parameter is missing");
        goto out;
    }
    for (size_t i = 0; i < sizeof grants / sizeof grants[0]; i++) {
        if (strcmp(gt, grants[i].name) == 0) {
            if (grants[i].fn == NULL) {
                char desc[96];
                snprintf(desc, sizeof desc, "grant type \"%s\" is not supported yet", grants[i].name);
                res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "unsupported_grant_type", desc);
            } else {
                res = grants[i].fn(st, c, &f, &client);
            }
            goto out;
        }
    }
    res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "unsupported_grant_type",
                      "this server supports the grant types client_credentials, authorization_code and "
                      "refresh_token");
out:
    OPENSSL_cleanse(&client, sizeof client);
    return res;
}

/* ---- POST /oauth/revoke (RFC 7009) --------------------------------------------------- */

enum MHD_Result srv_handle_revoke(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    srv_form f;
    enum MHD_Result res = MHD_NO;
    if (!read_form(st, c, &f, &res)) {
        return res;
    }
    tks_client client;
    if (!authenticate(st, c, &f, 1, &client, &res)) {
        return res;
    }
    size_t tl = 0;
    const char *tok = srv_form_get(&f, "token", &tl);
    if (tok == NULL) {
        res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "the token parameter is missing");
        goto out;
    }
    /* token_type_hint is only a hint (RFC 7009 section 2.1): ignored */
    srv_fingerprint(st, tok, tl);
    int rc = tka_revoke_token(s->auth, &client, tok, tl, now_s());
    if (rc > 0) {
        res = oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "unauthorized_client",
                          "this token was issued to another client (RFC 7009 section 2.1)");
    } else if (rc < 0) {
        res = oauth_error(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                          "the revocation could not be stored; retry later");
    } else {
        res = srv_respond(st, c, MHD_HTTP_OK, NULL, NULL, 0, 1, CACHE, NULL, 0);
    }
out:
    OPENSSL_cleanse(&client, sizeof client);
    return res;
}

/* ---- POST /oauth/introspect (RFC 7662) ------------------------------------------------ */

static void put_str_claim(srv_buf *b, const tk_token *t, const char *name)
{
    const char *v = tk_token_claim_string(t, name);
    if (v != NULL) {
        srv_buf_printf(b, ",\"%s\":", name);
        srv_buf_json_str(b, v, strlen(v));
    }
}

static void put_num_claim(srv_buf *b, const tk_token *t, const char *name)
{
    double d = 0;
    if (tk_token_claim_number(t, name, &d) && d >= 0 && d <= (double)TK_LIMIT_NUMERICDATE_MAX) {
        srv_buf_printf(b, ",\"%s\":%" PRId64, name, (int64_t)d);
    }
}

enum MHD_Result srv_handle_introspect(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    srv_form f;
    enum MHD_Result res = MHD_NO;
    if (!read_form(st, c, &f, &res)) {
        return res;
    }
    tks_client client;
    if (!authenticate(st, c, &f, 0, &client, &res)) {
        return res;
    }
    size_t tl = 0;
    const char *tok = srv_form_get(&f, "token", &tl);
    if (tok == NULL) {
        OPENSSL_cleanse(&client, sizeof client);
        return oauth_error(st, c, MHD_HTTP_BAD_REQUEST, "invalid_request", "the token parameter is missing");
    }
    srv_fingerprint(st, tok, tl);
    tk_verdict v;
    memset(&v, 0, sizeof v);
    tk_token *t = NULL;
    int visible = 0;
    if (tka_introspect(s->auth, &client, tok, tl, now_s(), &v, &t, &visible) != 0) {
        v.reason = TK_REASON_UNAVAILABLE;
        if (v.detail[0] == '\0') {
            snprintf(v.detail, sizeof v.detail, "no decision: validation failed");
        }
    }
    OPENSSL_cleanse(&client, sizeof client);
    st->reason = (int)v.reason;
    srv_metrics_validation(&s->metrics, v.reason);
    if (v.detail[0] != '\0') {
        srv_note(st, "%s%s", v.detail, visible ? "" : " (not this caller's token: answered active=false)");
    } else if (!visible) {
        srv_note(st, "a valid token, but not this caller's: answered active=false");
    }
    if (v.reason == TK_REASON_UNAVAILABLE) {
        tk_token_free(t);
        return oauth_error(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                           "the token could not be checked now; retry later");
    }
    char mem[4 * TKS_LIST_MAX + 1024];
    srv_buf b;
    srv_buf_fixed(&b, mem, sizeof mem);
    if (v.reason != TK_REASON_VALID || t == NULL || !visible) {
        /* RFC 7662 section 2.2 says no more than active:false. Our `reason`
         * extension goes only to a caller who may see the token (its own,
         * or one for an audience it serves: section 4), and only when the
         * signature is ours: nobody learns anything from a token they
         * could not already read. */
        if (visible && v.reason != TK_REASON_VALID) {
            srv_buf_printf(&b, "{\"active\":false,\"reason\":\"%s\"}", tk_reason_code(v.reason));
        } else {
            srv_buf_puts(&b, "{\"active\":false}");
        }
        tk_token_free(t);
        return srv_respond(st, c, MHD_HTTP_OK, "application/json", b.p, b.len, 0, CACHE, NULL, 0);
    }
    srv_buf_puts(&b, "{\"active\":true");
    put_str_claim(&b, t, "scope");
    put_str_claim(&b, t, "client_id");
    put_str_claim(&b, t, "sub");
    put_str_claim(&b, t, "aud");
    put_str_claim(&b, t, "iss");
    put_num_claim(&b, t, "exp");
    put_num_claim(&b, t, "iat");
    put_num_claim(&b, t, "nbf");
    put_str_claim(&b, t, "jti");
    put_str_claim(&b, t, "sid");
    srv_buf_puts(&b, ",\"token_type\":\"Bearer\"}");
    tk_token_free(t);
    if (b.overflow) {
        return oauth_error(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", "introspection response too large");
    }
    return srv_respond(st, c, MHD_HTTP_OK, "application/json", b.p, b.len, 0, CACHE, NULL, 0);
}
