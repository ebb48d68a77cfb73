/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wellknown.c — the documents a client discovers us by: the JWKS (RFC 7517
 * section 5) and the authorization server metadata (RFC 8414 section 2),
 * which is also the OpenID Provider metadata (OpenID Connect Discovery 1.0
 * section 3): one document at both addresses, so the two never disagree.
 *
 * The metadata is built once at start from the issuer and the public URL
 * (it cannot change while serving); the JWKS is asked of the authority on
 * every request, since keys rotate, and may be cached by clients for five
 * minutes (a new key is published before it signs: DESIGN.md "Tokens").
 */
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "http/internal.h"

enum MHD_Result srv_handle_jwks(srv_conn *st, struct MHD_Connection *c)
{
    char *jwks = NULL;
    if (tka_jwks(st->srv->auth, &jwks) != 0 || jwks == NULL) {
        tk_free(jwks);
        return srv_respond_error(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable",
                                 "the key set is unavailable; retry later", SRV_CACHE_NO_STORE, NULL, 0);
    }
    /* tk_free is not free(): let MHD call it when the response is gone */
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(strlen(jwks), jwks, tk_free);
    if (r == NULL) {
        tk_free(jwks);
        return MHD_NO;
    }
    enum MHD_Result res = MHD_NO;
    /* Verifiers may cache the set this long: the key ring publishes a new
     * key at least this long before it signs (tka_rotate). */
    const tka_config *ac = tka_get_config(st->srv->auth);
    char cc[48];
    snprintf(cc, sizeof cc, "public, max-age=%lld", (long long)(ac != NULL ? ac->jwks_max_age : 0));
    int ok = MHD_add_response_header(r, "X-Request-Id", st->rid) == MHD_YES &&
             MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/jwk-set+json") == MHD_YES &&
             MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc) == MHD_YES &&
             MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (ok) {
        res = MHD_queue_response(c, MHD_HTTP_OK, r);
    }
    MHD_destroy_response(r);
    if (res == MHD_YES) {
        st->status = MHD_HTTP_OK;
        st->done = 1;
    }
    return res;
}

static void member(srv_buf *b, const char *name, const char *value, int first)
{
    srv_buf_printf(b, "%s\n  \"%s\": ", first ? "" : ",", name);
    srv_buf_json_str(b, value, strlen(value));
}

static void member_url(srv_buf *b, const char *base, const char *name, const char *path)
{
    srv_buf_printf(b, ",\n  \"%s\": ", name);
    char url[1024];
    snprintf(url, sizeof url, "%s%s", base, path);
    srv_buf_json_str(b, url, strlen(url));
}

int srv_metadata_build(struct tkh_server *s)
{
    const tka_config *ac = tka_get_config(s->auth);
    const char *issuer = ac != NULL && ac->issuer != NULL ? ac->issuer : s->base_url;
    const char *base = s->base_url;
    srv_buf b;
    srv_buf_heap(&b, 16u * 1024u);
    srv_buf_putc(&b, '{');
    member(&b, "issuer", issuer, 1);
    member_url(&b, base, "authorization_endpoint", "/oauth/authorize");
    member_url(&b, base, "token_endpoint", "/oauth/token");
    member_url(&b, base, "revocation_endpoint", "/oauth/revoke");
    member_url(&b, base, "introspection_endpoint", "/oauth/introspect");
    member_url(&b, base, "userinfo_endpoint", "/userinfo"); /* OpenID Connect Core section 5.3 */
    member_url(&b, base, "jwks_uri", "/.well-known/jwks.json");
    member_url(&b, base, "end_session_endpoint", "/logout");
    srv_buf_puts(&b, ",\n  \"grant_types_supported\": [\"client_credentials\", \"authorization_code\", "
                     "\"refresh_token\"]"
                     ",\n  \"response_types_supported\": [\"code\"]"
                     ",\n  \"response_modes_supported\": [\"query\"]"
                     ",\n  \"code_challenge_methods_supported\": [\"S256\"]"
                     ",\n  \"authorization_response_iss_parameter_supported\": true"
                     ",\n  \"token_endpoint_auth_methods_supported\": [\"client_secret_basic\", "
                     "\"client_secret_post\", \"none\"]"
                     ",\n  \"revocation_endpoint_auth_methods_supported\": [\"client_secret_basic\", "
                     "\"client_secret_post\", \"none\"]"
                     ",\n  \"introspection_endpoint_auth_methods_supported\": [\"client_secret_basic\", "
                     "\"client_secret_post\"]"
                     /* OpenID Connect Discovery 1.0 section 3 */
                     ",\n  \"scopes_supported\": [\"openid\", \"profile\", \"email\"]"
                     ",\n  \"claims_supported\": [\"iss\", \"sub\", \"aud\", \"exp\", \"iat\", \"auth_time\", "
                     "\"nonce\", \"azp\", \"sid\", \"at_hash\", \"amr\", \"name\", \"given_name\", \"family_name\", "
                     "\"preferred_username\", \"email\", \"email_verified\"]"
                     ",\n  \"subject_types_supported\": [\"public\"]"
                     ",\n  \"prompt_values_supported\": [\"none\", \"login\", \"consent\", \"select_account\"]"
                     ",\n  \"ui_locales_supported\": [\"en\"]"
                     ",\n  \"claims_parameter_supported\": false"
                     ",\n  \"request_parameter_supported\": false"
                     ",\n  \"request_uri_parameter_supported\": false"
                     ",\n  \"backchannel_logout_supported\": true"
                     ",\n  \"backchannel_logout_session_supported\": true");
    tk_alg algs[2];
    size_t na = tka_id_token_algs(s->auth, algs);
    srv_buf_puts(&b, ",\n  \"id_token_signing_alg_values_supported\": [");
    for (size_t i = 0; i < na; i++) {
        srv_buf_printf(&b, "%s\"%s\"", i ? ", " : "", tk_alg_name(algs[i]));
    }
    srv_buf_puts(&b, "]");
    member_url(&b, base, "service_documentation", "/errors/");
    srv_buf_puts(&b, "\n}\n");
    if (b.overflow || b.p == NULL) {
        srv_buf_free(&b);
        return -1;
    }
    s->metadata = b.p;
    s->metadata_len = b.len;
    return 0;
}

enum MHD_Result srv_handle_oidc_config(srv_conn *st, struct MHD_Connection *c)
{
    return srv_handle_metadata(st, c);
}

enum MHD_Result srv_handle_metadata(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    return srv_respond(st, c, MHD_HTTP_OK, "application/json", s->metadata, s->metadata_len, 1, SRV_CACHE_PUBLIC_300,
                       NULL, 0);
}
