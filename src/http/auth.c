/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth.c — GET /auth, the validation endpoint for reverse proxies (nginx
 * auth_request, Traefik ForwardAuth, Envoy ext_authz HTTP). The hot path.
 *
 * Input: the Authorization header (RFC 6750 section 2.1), and from the
 * query the required audience (`aud`, once; else the server's
 * --auth-audience; with neither the answer is 400, never "valid": SECURITY.md
 * rule 25) and scopes (`scope`, space- or comma-separated, repeatable).
 * Output, with an EMPTY body for every token verdict (nginx auth_request
 * wants none; DESIGN.md):
 *  - valid: 200 with X-Auth-Subject, X-Auth-Client-Id, X-Auth-Scope;
 *  - otherwise the verdict's status (400/401/403/503) with an RFC 6750
 *    section 3 challenge, and X-Auth-Reason: <code>.
 * What the client is told follows SECURITY.md rule 15: error_description
 * only when cfg->explain; the access log always gets the full detail.
 *
 * Nothing here allocates: buffers are on the stack and the response body
 * is static. libmicrohttpd copies header values into the response.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/internal.h"

/* The verdict's detail as an RFC 6750 section 3 error_description:
 * %x20-21 / %x23-5B / %x5D-7E only. The core escapes token bytes as \xNN;
 * here that becomes %NN (a '"' inside would end the quoted string), other
 * quotes become apostrophes. */
static void description(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in[i] != '\0' && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch == '\\') {
            if (in[i + 1] == 'x' && in[i + 2] != '\0' && in[i + 3] != '\0') {
                out[o++] = '%';
                i++; /* the two hex digits follow as they are */
                continue;
            }
            out[o++] = '/';
        } else if (ch == '"') {
            out[o++] = '\'';
        } else if (ch < 0x20 || ch >= 0x7F) {
            out[o++] = '?';
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

/* ---- the query ------------------------------------------------------------ */

struct query {
    char buf[SRV_AUTH_QUERY_MAX];
    size_t used;
    const char *aud;
    const char *scopes[SRV_AUTH_MAX_SCOPES];
    size_t n_scopes;
    const char *issuers[SRV_AUTH_MAX_SCOPES];
    size_t n_issuers;
    const char *bad; /* why the query is unusable, static */
};

static char *query_copy(struct query *q, const char *v, size_t n)
{
    if (n >= sizeof q->buf - q->used) {
        q->bad = "the aud and scope query parameters are too long";
        return NULL;
    }
    char *d = q->buf + q->used;
    memcpy(d, v, n);
    d[n] = '\0';
    q->used += n + 1;
    return d;
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                 const char *value, size_t value_size)
{
    struct query *q = cls;
    (void)kind;
    if (value == NULL || value_size == 0) {
        return MHD_YES;
    }
    if (key_size == 3 && memcmp(key, "aud", 3) == 0) {
        if (q->aud != NULL) {
            q->bad = "aud is given more than once in the query";
            return MHD_NO;
        }
        q->aud = query_copy(q, value, value_size);
        return q->aud != NULL ? MHD_YES : MHD_NO;
    }
    if (key_size == 3 && memcmp(key, "iss", 3) == 0) {
        if (q->n_issuers == SRV_AUTH_MAX_SCOPES) {
            q->bad = "too many iss in the query";
            return MHD_NO;
        }
        const char *d = query_copy(q, value, value_size);
        if (d == NULL) {
            return MHD_NO;
        }
        q->issuers[q->n_issuers++] = d;
        return MHD_YES;
    }
    if (key_size == 5 && memcmp(key, "scope", 5) == 0) {
        char *d = query_copy(q, value, value_size);
        if (d == NULL) {
            return MHD_NO;
        }
        char *p = d;
        while (*p != '\0') {
            while (*p == ' ' || *p == ',') {
                *p++ = '\0';
            }
            if (*p == '\0') {
                break;
            }
            if (q->n_scopes == SRV_AUTH_MAX_SCOPES) {
                q->bad = "too many scopes in the query";
                return MHD_NO;
            }
            q->scopes[q->n_scopes++] = p;
            while (*p != '\0' && *p != ' ' && *p != ',') {
                p++;
            }
        }
    }
    return MHD_YES;
}

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

int srv_bearer_token(srv_conn *st, struct MHD_Connection *c, const char **tok, size_t *tok_len, tk_verdict *v)
{
    *tok = NULL;
    *tok_len = 0;
    memset(v, 0, sizeof *v);
    int n_authz = 0;
    (void)MHD_get_connection_values_n(c, MHD_HEADER_KIND, count_authz, &n_authz);
    const char *hv = NULL;
    size_t hl = 0;
    if (n_authz > 0) {
        (void)MHD_lookup_connection_value_n(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION,
                                            sizeof MHD_HTTP_HEADER_AUTHORIZATION - 1, &hv, &hl);
    }
    if (n_authz > 1) {
        v->reason = TK_REASON_MALFORMED_HEADER;
        snprintf(v->detail, sizeof v->detail, "%d Authorization headers; send exactly one", n_authz);
        return 0;
    }
    if (tk_authz_parse(hv, hv != NULL ? hl : 0, tok, tok_len, v) != TK_OK) {
        v->reason = TK_REASON_UNAVAILABLE;
        snprintf(v->detail, sizeof v->detail, "no decision: the Authorization header could not be parsed");
        return 0;
    }
    if (v->reason != TK_REASON_VALID) {
        return 0;
    }
    if (!st->sampled_out) { /* else only when the answer turns out to be logged */
        srv_fingerprint(st, *tok, *tok_len);
    }
    return 1;
}

/* ---- the endpoint -------------------------------------------------------------- */

static enum MHD_Result audience_required(srv_conn *st, struct MHD_Connection *c)
{
    /* SECURITY.md rule 25: without an audience any token would pass for
     * any API, so a proxy config that dropped ?aud= (or an empty variable)
     * must not fail open. Not a token problem: no challenge; the proxy's
     * operator reads the body or the log. */
    static const char why[] =
        "/auth needs the audience of the API it protects: add ?aud=<audience> to the URL the proxy calls "
        "(nginx: proxy_pass http://tokend/auth?aud=orders-api;), or start tokend serve with "
        "--auth-audience <audience> (for a trusted issuer: audience = ... in its [issuer] section)\n";
    st->error = "audience_required";
    srv_note(st, "no audience: the query has no aud, tokend serve has no --auth-audience, and the token's issuer "
                 "has no audience setting");
    srv_header h = {"X-Auth-Reason", "audience_required"};
    return srv_respond(st, c, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", why, sizeof why - 1, 1,
                       SRV_CACHE_NO_STORE, &h, 1);
}

enum MHD_Result srv_handle_auth(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    tk_verdict v;
    memset(&v, 0, sizeof v);
    v.reason = TK_REASON_UNAVAILABLE;

    struct query q;
    q.used = 0;
    q.aud = NULL;
    q.n_scopes = 0;
    q.n_issuers = 0;
    q.bad = NULL;
    (void)MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, query_arg, &q);
    if (q.bad != NULL) {
        /* the proxy's configuration is wrong, not the token */
        st->error = "bad_query";
        srv_note(st, "%s", q.bad);
        return srv_respond(st, c, MHD_HTTP_BAD_REQUEST, NULL, NULL, 0, 1, SRV_CACHE_NO_STORE, NULL, 0);
    }
    if (q.aud == NULL && s->auth_audience == NULL && s->trust == NULL) {
        return audience_required(st, c);
    }

    /* drawn first, so that an answer left out of the log costs no fingerprint */
    st->sampled_out = srv_log_sampled_out(s);
    tka_identity id;
    int no_aud = 0;
    id.foreign = 0;
    const char *tok = NULL;
    size_t tok_len = 0;
    if (srv_bearer_token(st, c, &tok, &tok_len, &v)) {
        tka_check chk = {q.aud, q.scopes, q.n_scopes, q.issuers, q.n_issuers};
        int r = tka_validate_any(s->auth, s->trust, tok, tok_len, &chk, s->auth_audience, (int64_t)time(NULL), &v, &id);
        if (r == 1) {
            no_aud = 1;
        } else if (r != 0) {
            v.reason = TK_REASON_UNAVAILABLE;
            if (v.detail[0] == '\0') {
                snprintf(v.detail, sizeof v.detail, "no decision: validation failed");
            }
        }
    }
    if (no_aud) {
        return audience_required(st, c);
    }
    if (st->sampled_out && v.reason != TK_REASON_VALID && tok != NULL) {
        srv_fingerprint(st, tok, tok_len); /* a failure is always logged */
    }
    st->reason = (int)v.reason;
    srv_metrics_validation(&s->metrics, v.reason);

    if (v.reason == TK_REASON_VALID) {
        srv_header h[4];
        size_t n = 0;
        if (id.subject[0] != '\0') {
            h[n++] = (srv_header){"X-Auth-Subject", id.subject};
        }
        if (id.client_id[0] != '\0') {
            h[n++] = (srv_header){"X-Auth-Client-Id", id.client_id};
            size_t cl = strnlen(id.client_id, sizeof st->client_id - 1);
            memcpy(st->client_id, id.client_id, cl);
            st->client_id[cl] = '\0';
        }
        if (id.scope[0] != '\0') {
            h[n++] = (srv_header){"X-Auth-Scope", id.scope};
        }
        h[n++] = (srv_header){"X-Auth-Issuer", id.issuer};
        return srv_respond(st, c, MHD_HTTP_OK, NULL, NULL, 0, 1, SRV_CACHE_NO_STORE, h, n);
    }
    return srv_respond_verdict(st, c, &v);
}

enum MHD_Result srv_respond_verdict(srv_conn *st, struct MHD_Connection *c, const tk_verdict *v)
{
    struct tkh_server *s = st->srv;
    if (v->detail[0] != '\0') {
        srv_note(st, "%s", v->detail);
    }

    const char *code = tk_reason_code(v->reason);
    const char *err = tk_reason_error(v->reason);
    unsigned status = (unsigned)tk_reason_status(v->reason);
    char chal[TK_LIMIT_DETAIL_LEN + 512];
    srv_buf b;
    srv_buf_fixed(&b, chal, sizeof chal);
    srv_header h[2];
    size_t n = 0;
    h[n++] = (srv_header){"X-Auth-Reason", code};
    if (v->reason != TK_REASON_UNAVAILABLE) { /* a 503 is not a challenge */
        srv_buf_printf(&b, "Bearer realm=\"%s\"", s->realm);
        /* RFC 6750 section 3.1: no error attributes when no token was sent */
        if (err != NULL && v->reason != TK_REASON_MISSING_TOKEN) {
            srv_buf_printf(&b, ", error=\"%s\"", err);
            if (s->cfg.explain && v->detail[0] != '\0') {
                char desc[TK_LIMIT_DETAIL_LEN];
                description(desc, sizeof desc, v->detail);
                srv_buf_printf(&b, ", error_description=\"%s\"", desc);
            }
            if (s->base_url[0] != '\0') {
                srv_buf_printf(&b, ", error_uri=\"%s/errors/%s\"", s->base_url, code);
            }
        }
        if (!b.overflow) {
            h[n++] = (srv_header){MHD_HTTP_HEADER_WWW_AUTHENTICATE, chal};
        }
    }
    return srv_respond(st, c, status, NULL, NULL, 0, 1, SRV_CACHE_NO_STORE, h, n);
}
