/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authorize.c — GET /oauth/authorize, the authorization endpoint (RFC 6749
 * section 4.1.1 with PKCE, RFC 7636, and the iss response parameter, RFC
 * 9207), and what POST /login shares with it: reading and checking an
 * authorization request, and the redirects back to the client.
 *
 * The query is parsed strictly from its raw text (server.c keeps it): a bad
 * escape or %00 is refused, and a repeated parameter is invalid_request
 * (RFC 6749 section 3.1). Unknown parameters are ignored (same section).
 *
 * Where errors go (RFC 6749 section 4.1.2.1): while the client or its
 * redirect URI is not verified, on our own page (400) and never to the URI;
 * once both are, back to the client with error, error_description, state
 * and iss.
 *
 * Then the browser session: a valid session cookie gets a code at once
 * (302 to the client); anything else gets the sign-in page, with a message
 * that says why when a session ended.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "http/internal.h"

/* A Location header: the redirect URI and the response parameters (a state
 * of 1024 bytes, the most the authority accepts, percent-encoded, fits).
 * Bounded well below what the connection's memory pool holds for the
 * response head, so an absurd state gets a page, not a cut connection. */
#define LOCATION_MAX 8192u

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---- reading and checking a request ------------------------------------------------ */

static const char *const az_params[] = {
    "client_id",  "redirect_uri", "response_type", "scope",  "state",   "code_challenge", "code_challenge_method",
    "audience",   "resource",     "nonce",         "prompt", "max_age", "login_hint",     "id_token_hint",
    "ui_locales",
};

void srv_authz_read(srv_authz *az, const srv_form *f, const char *dup)
{
    memset(az, 0, sizeof *az);
    az->req.client_id = srv_form_get(f, "client_id", NULL);
    az->req.redirect_uri = srv_form_get(f, "redirect_uri", NULL);
    az->req.response_type = srv_form_get(f, "response_type", NULL);
    az->req.scope = srv_form_get(f, "scope", NULL);
    az->req.state = srv_form_get(f, "state", NULL);
    az->req.code_challenge = srv_form_get(f, "code_challenge", NULL);
    az->req.code_challenge_method = srv_form_get(f, "code_challenge_method", NULL);
    const char *audience = srv_form_get(f, "audience", NULL);
    const char *resource = srv_form_get(f, "resource", NULL);
    az->req.audience = audience != NULL ? audience : resource;
    az->req.nonce = srv_form_get(f, "nonce", NULL);
    az->req.prompt = srv_form_get(f, "prompt", NULL);
    az->req.max_age = srv_form_get(f, "max_age", NULL);
    az->req.login_hint = srv_form_get(f, "login_hint", NULL);
    az->req.id_token_hint = srv_form_get(f, "id_token_hint", NULL);
    az->req.ui_locales = srv_form_get(f, "ui_locales", NULL);
    if (dup != NULL) {
        /* Only the parameters of the request matter; others are ignored,
         * repeated or not. */
        for (size_t i = 0; i < sizeof az_params / sizeof az_params[0]; i++) {
            if (strcmp(dup, az_params[i]) == 0) {
                snprintf(az->problem, sizeof az->problem, "parameter %s appears more than once (RFC 6749 section 3.1)",
                         az_params[i]);
                az->problem_fatal = strcmp(dup, "client_id") == 0      ? TKA_AZ_BAD_CLIENT
                                    : strcmp(dup, "redirect_uri") == 0 ? TKA_AZ_BAD_REDIRECT
                                                                       : TKA_AZ_OK;
                break;
            }
        }
    }
    if (az->problem[0] == '\0' && audience != NULL && resource != NULL && strcmp(audience, resource) != 0) {
        snprintf(az->problem, sizeof az->problem, "audience and resource name different targets; send one of them");
    }
}

tka_authz_result srv_authz_check(srv_conn *st, srv_authz *az)
{
    struct tkh_server *s = st->srv;
    if (az->req.client_id != NULL) {
        size_t o = 0;
        for (const char *p = az->req.client_id; *p != '\0' && o < sizeof st->client_id - 1; p++) {
            unsigned char ch = (unsigned char)*p;
            st->client_id[o++] = ch >= 0x20 && ch < 0x7F ? (char)ch : '?';
        }
        st->client_id[o] = '\0';
    }
    if (az->problem_fatal != TKA_AZ_OK) {
        az->result = az->problem_fatal;
        snprintf(az->why, sizeof az->why, "%s", az->problem);
        return az->result;
    }
    az->result = tka_authorize_check(s->auth, &az->req, &az->client, az->redirect, az->scope, az->why, sizeof az->why);
    if (az->result != TKA_AZ_BAD_CLIENT && az->result != TKA_AZ_BAD_REDIRECT && az->problem[0] != '\0') {
        /* the redirect URI is good: the request's own problem goes back to
         * the client, before anything the authority found */
        az->result = TKA_AZ_INVALID_REQUEST;
        snprintf(az->why, sizeof az->why, "%s", az->problem);
    }
    if (az->result != TKA_AZ_OK && az->why[0] != '\0') {
        srv_note(st, "%s", az->why);
    }
    return az->result;
}

/* ---- redirects ------------------------------------------------------------------------ */

/* Starts a Location with the redirect URI (its fragment dropped: RFC 6749
 * section 3.1.2 allows none). Returns 0, or -1 when the URI holds bytes
 * that cannot go into a header. */
static int location_start(srv_buf *b, const char *redirect, char *sep)
{
    size_t n = strcspn(redirect, "#");
    if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)redirect[i];
        if (ch <= 0x20 || ch >= 0x7F) {
            return -1;
        }
    }
    srv_buf_put(b, redirect, n);
    *sep = memchr(redirect, '?', n) != NULL ? '&' : '?';
    return 0;
}

static void location_param(srv_buf *b, char *sep, const char *name, const char *value)
{
    if (value == NULL) {
        return;
    }
    srv_buf_putc(b, *sep);
    srv_buf_puts(b, name);
    srv_buf_putc(b, '=');
    srv_buf_url(b, value, strlen(value));
    *sep = '&';
}

static const char *issuer(const struct tkh_server *s)
{
    const tka_config *ac = tka_get_config(s->auth);
    return ac != NULL && ac->issuer != NULL ? ac->issuer : s->base_url;
}

static enum MHD_Result bad_redirect_uri(srv_conn *st, struct MHD_Connection *c)
{
    st->error = "server_error";
    srv_note(st, "the registered redirect URI cannot be used in a Location header");
    return srv_page_message(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "This sign-in request cannot be completed",
                            "The application's registered return address is not a usable URI.",
                            "Tell the application's administrator; we will not redirect you there.", NULL);
}

static enum MHD_Result send_redirect(srv_conn *st, struct MHD_Connection *c, unsigned status, srv_buf *loc,
                                     const char *set_cookie)
{
    if (loc->overflow || loc->p == NULL) {
        srv_buf_free(loc);
        st->error = "server_error";
        return srv_page_message(st, c, MHD_HTTP_BAD_REQUEST, "This sign-in request cannot be completed",
                                "The request is too long to send back to the application (its state parameter?).", NULL,
                                set_cookie);
    }
    srv_header h[3];
    size_t n = 0;
    h[n++] = (srv_header){MHD_HTTP_HEADER_LOCATION, loc->p};
    h[n++] = (srv_header){"Referrer-Policy", "no-referrer"};
    if (set_cookie != NULL) {
        h[n++] = (srv_header){MHD_HTTP_HEADER_SET_COOKIE, set_cookie};
    }
    enum MHD_Result r = srv_respond(st, c, status, NULL, NULL, 0, 1, SRV_CACHE_NO_STORE, h, n);
    OPENSSL_cleanse(loc->p, loc->len); /* it may hold a code */
    srv_buf_free(loc);
    return r;
}

static enum MHD_Result redirect_error(srv_conn *st, struct MHD_Connection *c, const srv_authz *az, unsigned status,
                                      const char *error, const char *desc, const char *set_cookie)
{
    srv_buf loc;
    srv_buf_heap(&loc, LOCATION_MAX);
    char sep = '?';
    if (location_start(&loc, az->redirect, &sep) != 0) {
        srv_buf_free(&loc);
        return bad_redirect_uri(st, c);
    }
    location_param(&loc, &sep, "error", error);
    if (desc != NULL && desc[0] != '\0') {
        /* RFC 6749 section 4.1.2.1: %x20-21 / %x23-5B / %x5D-7E */
        char clean[256];
        size_t k = 0;
        for (const char *p = desc; *p != '\0' && k < sizeof clean - 1; p++) {
            unsigned char ch = (unsigned char)*p;
            clean[k++] = ch == '"' ? '\'' : ch == '\\' ? '/' : (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
        }
        clean[k] = '\0';
        location_param(&loc, &sep, "error_description", clean);
    }
    location_param(&loc, &sep, "state", az->req.state);
    location_param(&loc, &sep, "iss", issuer(st->srv));
    st->error = error;
    return send_redirect(st, c, status, &loc, set_cookie);
}

enum MHD_Result srv_authz_redirect_code(srv_conn *st, struct MHD_Connection *c, const srv_authz *az,
                                        const tks_session *session, unsigned status, const char *set_cookie)
{
    struct tkh_server *s = st->srv;
    char code[TKA_CODE_LEN];
    memset(code, 0, sizeof code);
    int ci = tka_code_issue_nonce(s->auth, &az->client, session, az->redirect, az->req.code_challenge, az->scope,
                                  az->req.audience, az->req.nonce, now_s(), code);
    if (ci == 1) {
        srv_note(st, "nonce reused");
        return redirect_error(st, c, az, status, "invalid_request",
                              "this nonce was already used in an authorization request of this client: send a new "
                              "random nonce with every request (OpenID Connect Core section 15.5.2)",
                              set_cookie);
    }
    if (ci != 0 || code[0] == '\0') {
        srv_note(st, "the authorization code could not be issued");
        return redirect_error(st, c, az, status, "server_error",
                              "the authorization code could not be issued; try again", set_cookie);
    }
    srv_buf loc;
    srv_buf_heap(&loc, LOCATION_MAX);
    char sep = '?';
    if (location_start(&loc, az->redirect, &sep) != 0) {
        OPENSSL_cleanse(code, sizeof code);
        srv_buf_free(&loc);
        return bad_redirect_uri(st, c);
    }
    location_param(&loc, &sep, "code", code);
    location_param(&loc, &sep, "state", az->req.state);
    location_param(&loc, &sep, "iss", issuer(s));
    srv_fingerprint(st, code, strnlen(code, sizeof code));
    OPENSSL_cleanse(code, sizeof code);
    if (st->detail[0] == '\0') {
        srv_note(st, "code issued (scope \"%.200s\")", az->scope);
    }
    return send_redirect(st, c, status, &loc, set_cookie);
}

/* Our own error page: the client or its redirect URI is not verified, so
 * nothing goes back to it (RFC 6749 section 4.1.2.1). It names what was
 * received (client id, redirect URI) and the request id, so that whoever
 * the user tells finds the request in the log, whose line carries the same
 * (client id and request id as fields, the redirect URI in the detail). */
static enum MHD_Result unverified_page(srv_conn *st, struct MHD_Connection *c, const srv_authz *az)
{
    int bad_client = az->result == TKA_AZ_BAD_CLIENT;
    char why[sizeof az->why];
    snprintf(why, sizeof why, "%s",
             az->why[0] != '\0' ? az->why
             : bad_client       ? "the application (client_id) is unknown"
                                : "the return address (redirect_uri) is not registered for it");
    size_t wl = strlen(why);
    while (wl > 0 && (why[wl - 1] == '.' || why[wl - 1] == ' ')) {
        why[--wl] = '\0';
    }
    const char *uri = az->req.redirect_uri;
    char uri_shown[SRV_FACT_SHOWN + 4];
    srv_fact_copy(uri_shown, 200, uri != NULL ? uri : "(none)");
    srv_note(st, "%s; redirect_uri received: %s", why, uri_shown);
    char text[sizeof why + TKS_ID_MAX + 160];
    if (bad_client && az->req.client_id != NULL && az->problem_fatal == TKA_AZ_OK) {
        char id[TKS_ID_MAX + 4];
        srv_fact_copy(id, sizeof id, az->req.client_id);
        snprintf(text, sizeof text,
                 "The application that sent you here made a request we cannot accept: %s (client_id \u201c%s\u201d).",
                 why, id);
    } else {
        snprintf(text, sizeof text, "The application that sent you here made a request we cannot accept: %s.", why);
    }
    srv_fact facts[] = {
        {"Application (client_id)", az->req.client_id},
        {"Return address received (redirect_uri)", uri},
        {"Request id", st->rid},
    };
    st->error = bad_client ? "invalid_client" : "invalid_redirect_uri";
    return srv_page_facts(st, c, MHD_HTTP_BAD_REQUEST, "This sign-in request cannot be completed", text,
                          "We will not send you back to the application, because its return address could not be "
                          "verified. Go back to the application and try again, or tell its developers.",
                          facts, sizeof facts / sizeof facts[0],
                          "Whoever runs this sign-in service finds this request in its log under the request id.");
}

enum MHD_Result srv_authz_fail(srv_conn *st, struct MHD_Connection *c, const srv_authz *az, unsigned status)
{
    if (az->result == TKA_AZ_BAD_CLIENT || az->result == TKA_AZ_BAD_REDIRECT) {
        return unverified_page(st, c, az);
    }
    if (az->redirect[0] == '\0') {
        /* failed before the redirect URI was known (the store is down) */
        st->error = "temporarily_unavailable";
        return srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is unavailable",
                                "Sign-in is unavailable right now. Try again in a minute.", NULL, NULL);
    }
    const char *err = tka_authz_error(az->result);
    return redirect_error(st, c, az, status, err != NULL ? err : "server_error", az->why, NULL);
}

/* ---- GET /oauth/authorize ---------------------------------------------------------------- */

/* "30 minutes", "1 hour", "90 seconds" */
static void duration_words(char *out, size_t cap, int64_t secs)
{
    if (secs > 0 && secs % 3600 == 0) {
        snprintf(out, cap, "%" PRId64 " hour%s", secs / 3600, secs == 3600 ? "" : "s");
    } else if (secs > 0 && secs % 60 == 0) {
        snprintf(out, cap, "%" PRId64 " minute%s", secs / 60, secs == 60 ? "" : "s");
    } else {
        snprintf(out, cap, "%" PRId64 " second%s", secs, secs == 1 ? "" : "s");
    }
}

/* "12-hour", "90-minute" */
static void duration_adjective(char *out, size_t cap, int64_t secs)
{
    if (secs > 0 && secs % 3600 == 0) {
        snprintf(out, cap, "%" PRId64 "-hour", secs / 3600);
    } else if (secs > 0 && secs % 60 == 0) {
        snprintf(out, cap, "%" PRId64 "-minute", secs / 60);
    } else {
        snprintf(out, cap, "%" PRId64 "-second", secs);
    }
}

/* Why a session that tka_session_check calls ENDED ended, for people. It
 * only says ENDED once a session was ended, whatever ended it: a timeout
 * seen by an earlier request, logout, or a revocation of its sid. */
static void ended_message(struct tkh_server *s, const tks_session *se, const tka_config *ac, char *msg, size_t cap)
{
    char reason[TKS_REASON_MAX + 1] = "";
    char d[48];
    if (se->sid[0] != '\0' && tka_is_revoked(s->auth, NULL, se->sid, reason, sizeof reason, NULL, NULL)) {
        if (strcmp(reason, "logout") == 0) {
            snprintf(msg, cap, "You signed out. Sign in again to continue.");
        } else if (strcmp(reason, "refresh_reuse") == 0 || strcmp(reason, "code_replay") == 0) {
            snprintf(msg, cap,
                     "Your sign-in was ended to protect your account: a one-time token was used twice. Sign in "
                     "again to continue.");
        } else if (strcmp(reason, "admin") == 0) {
            snprintf(msg, cap, "An administrator ended your session. Sign in again to continue.");
        } else if (strcmp(reason, "client") == 0) {
            snprintf(msg, cap, "An application ended your session. Sign in again to continue.");
        } else {
            snprintf(msg, cap, "Your session was ended. Sign in again to continue.");
        }
        return;
    }
    int64_t idle = ac != NULL && ac->session_idle > 0 ? ac->session_idle : 1800;
    int64_t max = ac != NULL && ac->session_max > 0 ? ac->session_max : 43200;
    if (se->ended_at > 0 && se->ended_at >= se->created_at + max) {
        duration_adjective(d, sizeof d, max);
        snprintf(msg, cap, "Your session reached its %s limit \u2014 sign in again.", d);
    } else if (se->ended_at > 0 && se->ended_at >= se->last_seen + idle) {
        duration_words(d, sizeof d, idle);
        snprintf(msg, cap, "Your session expired after %s of inactivity \u2014 sign in again.", d);
    } else {
        snprintf(msg, cap, "You signed out. Sign in again to continue.");
    }
}

int srv_prompt_has(const srv_authz *az, const char *what)
{
    return az->req.prompt != NULL && tka_in_list(az->req.prompt, what, strlen(what));
}

/* Why a valid session is not enough for this request, or NULL: prompt=login
 * or select_account, a max_age it is older than (0: always), or an
 * id_token_hint naming another user. */
static const char *reauth_needed(const srv_authz *az, const tks_session *se, const char *hint_sub)
{
    if (srv_prompt_has(az, "login") || srv_prompt_has(az, "select_account")) {
        return "prompt asks for a new sign-in";
    }
    if (az->req.max_age != NULL) {
        int64_t max = strtoll(az->req.max_age, NULL, 10);
        if (now_s() - se->created_at > max || max == 0) {
            return "the sign-in is older than max_age";
        }
    }
    if (hint_sub[0] != '\0' && strcmp(hint_sub, se->user_id) != 0) {
        return "id_token_hint names another user than the one signed in";
    }
    return NULL;
}

enum MHD_Result srv_authz_finish(srv_conn *st, struct MHD_Connection *c, const srv_authz *az,
                                 const tks_session *session, unsigned status, const char *set_cookie)
{
    struct tkh_server *s = st->srv;
    int need = tka_consent_needed(s->auth, &az->client, session->user_id, az->scope);
    if (need < 0) {
        srv_note(st, "the consent could not be read");
        return redirect_error(st, c, az, status, "temporarily_unavailable",
                              "the store is unavailable; try again in a minute", set_cookie);
    }
    if (srv_prompt_has(az, "consent")) {
        need = 1; /* Core section 3.1.2.1: asked for, so asked, first-party or not */
    }
    if (!need) {
        return srv_authz_redirect_code(st, c, az, session, status, set_cookie);
    }
    if (srv_prompt_has(az, "none")) {
        srv_note(st, "prompt=none, but the user has not allowed these scopes to this client");
        return redirect_error(st, c, az, status, "consent_required",
                              "the user has not allowed this application these scopes", set_cookie);
    }
    srv_note(st, "asking for consent (scope \"%.200s\")", az->scope);
    return srv_page_consent(st, c, az, session->user_id, set_cookie);
}

/* ---- POST /consent ---------------------------------------------------------------------- */

enum MHD_Result srv_handle_consent(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    srv_form f;
    const char *bad = NULL;
    char empty[1] = "";
    enum srv_form_result fr = srv_is_form(c)
                                  ? srv_form_parse(st->body != NULL ? st->body : empty, st->body_len, &f, &bad)
                                  : SRV_FORM_BAD_ENCODING;
    if (fr != SRV_FORM_OK) {
        st->error = "invalid_request";
        srv_note(st, "the consent form does not parse");
        return srv_page_message(st, c, MHD_HTTP_BAD_REQUEST, "This request cannot be completed",
                                "The form arrived damaged. Go back to the application and try again.", NULL, NULL);
    }
    srv_authz *az = malloc(sizeof *az);
    if (az == NULL) {
        return MHD_NO;
    }
    enum MHD_Result res;
    srv_authz_read(az, &f, NULL);
    if (srv_authz_check(st, az) != TKA_AZ_OK) {
        res = srv_authz_fail(st, c, az, MHD_HTTP_SEE_OTHER);
        goto out;
    }
    if (!srv_csrf_ok(st, c, &f)) {
        st->error = "csrf";
        res = srv_page_message(st, c, MHD_HTTP_FORBIDDEN, "This request cannot be completed",
                               "The form expired or was opened elsewhere \u2014 go back to the application and try "
                               "again.",
                               NULL, NULL);
        goto out;
    }
    size_t cl = 0;
    const char *cookie = srv_cookie(c, s->cookie_session, &cl);
    tks_session se;
    memset(&se, 0, sizeof se);
    tka_session_result sr = cookie != NULL ? tka_session_check(s->auth, cookie, cl, now_s(), &se) : TKA_SESSION_NONE;
    if (sr != TKA_SESSION_OK) {
        OPENSSL_cleanse(&se, sizeof se);
        if (sr == TKA_SESSION_ERROR) {
            st->error = "temporarily_unavailable";
            res = srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is unavailable",
                                   "Sign-in is unavailable right now. Try again in a minute.", NULL, NULL);
            goto out;
        }
        srv_note(st, "consent form without a session: sign in first");
        res = srv_page_login(st, c, MHD_HTTP_OK, az, "Your session ended \u2014 sign in again.", NULL, 0);
        goto out;
    }
    snprintf(st->user, sizeof st->user, "%s", se.user_id);
    const char *decision = srv_form_get(&f, "decision", NULL);
    if (decision == NULL || strcmp(decision, "allow") != 0) {
        OPENSSL_cleanse(&se, sizeof se);
        srv_note(st, "the user denied consent");
        az->result = TKA_AZ_ACCESS_DENIED;
        snprintf(az->why, sizeof az->why, "the user did not allow this application access");
        res = srv_authz_fail(st, c, az, MHD_HTTP_SEE_OTHER);
        goto out;
    }
    if (tka_consent_grant(s->auth, &az->client, se.user_id, az->scope, now_s()) != 0) {
        OPENSSL_cleanse(&se, sizeof se);
        st->error = "temporarily_unavailable";
        srv_note(st, "the consent could not be stored");
        res = srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is unavailable",
                               "Your answer could not be saved. Try again in a minute.", NULL, NULL);
        goto out;
    }
    srv_note(st, "consent given (scope \"%.200s\")", az->scope);
    res = srv_authz_redirect_code(st, c, az, &se, MHD_HTTP_SEE_OTHER, NULL);
    OPENSSL_cleanse(&se, sizeof se);
out:
    OPENSSL_cleanse(az, sizeof *az);
    free(az);
    return res;
}

enum MHD_Result srv_handle_authorize(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    srv_form f;
    f.n = 0;
    const char *dup = NULL;
    if (st->has_query) {
        enum srv_form_result r = srv_form_parse_all(st->query, st->query_len, &f, &dup);
        const char *bad = r == SRV_FORM_BAD_ENCODING ? "a '%' in the query is not followed by two hex digits"
                          : r == SRV_FORM_NUL        ? "the query contains a NUL byte (%00)"
                          : r == SRV_FORM_TOO_MANY   ? "the query has too many parameters"
                                                     : NULL;
        if (bad != NULL) {
            char text[160];
            snprintf(text, sizeof text, "The application that sent you here made a request we cannot read: %s.", bad);
            st->error = "invalid_request";
            srv_note(st, "%s", bad);
            return srv_page_message(st, c, MHD_HTTP_BAD_REQUEST, "This sign-in request cannot be completed", text,
                                    "We will not send you back to the application, because we could not read its "
                                    "return address. Go back to the application and try again.",
                                    NULL);
        }
    }
    srv_authz *az = malloc(sizeof *az); /* about 7 KiB: the client record */
    if (az == NULL) {
        return MHD_NO;
    }
    srv_authz_read(az, &f, dup);
    enum MHD_Result res;
    if (srv_authz_check(st, az) != TKA_AZ_OK) {
        res = srv_authz_fail(st, c, az, MHD_HTTP_FOUND);
        goto out;
    }
    /* id_token_hint (OpenID Connect Core section 3.1.2.1): who the client
     * believes is signed in; one we did not sign is refused. */
    char hint_sub[TKS_ID_MAX + 1] = "";
    if (az->req.id_token_hint != NULL) {
        tka_hint hint;
        if (tka_id_token_hint(s->auth, az->req.id_token_hint, strlen(az->req.id_token_hint), now_s(), &hint, az->why,
                              sizeof az->why) != 0) {
            az->result = TKA_AZ_INVALID_REQUEST;
            srv_note(st, "%s", az->why);
            res = srv_authz_fail(st, c, az, MHD_HTTP_FOUND);
            goto out;
        }
        snprintf(hint_sub, sizeof hint_sub, "%s", hint.sub);
    }

    size_t cl = 0;
    const char *cookie = srv_cookie(c, s->cookie_session, &cl);
    tks_session se;
    memset(&se, 0, sizeof se);
    tka_session_result sr = cookie != NULL ? tka_session_check(s->auth, cookie, cl, now_s(), &se) : TKA_SESSION_NONE;
    const tka_config *ac = tka_get_config(s->auth);
    char msg[192];
    char d[48];
    msg[0] = '\0';
    switch (sr) {
    case TKA_SESSION_OK: {
        snprintf(st->user, sizeof st->user, "%s", se.user_id);
        const char *again = reauth_needed(az, &se, hint_sub);
        if (again == NULL) {
            res = srv_authz_finish(st, c, az, &se, MHD_HTTP_FOUND, NULL);
            OPENSSL_cleanse(&se, sizeof se);
            goto out;
        }
        srv_note(st, "%s", again);
        snprintf(msg, sizeof msg, "%s",
                 srv_prompt_has(az, "login") ? "The application asks you to sign in again."
                 : hint_sub[0] != '\0' && strcmp(hint_sub, se.user_id) != 0
                     ? "The application asks for another account: sign in with it."
                     : "The application asks you to confirm it is you: sign in again.");
        break;
    }
    case TKA_SESSION_IDLE:
        duration_words(d, sizeof d, ac != NULL && ac->session_idle > 0 ? ac->session_idle : 1800);
        snprintf(msg, sizeof msg, "Your session expired after %s of inactivity \u2014 sign in again.", d);
        srv_note(st, "session ended by the idle timeout");
        break;
    case TKA_SESSION_EXPIRED:
        duration_adjective(d, sizeof d, ac != NULL && ac->session_max > 0 ? ac->session_max : 43200);
        snprintf(msg, sizeof msg, "Your session reached its %s limit \u2014 sign in again.", d);
        srv_note(st, "session ended by the absolute timeout");
        break;
    case TKA_SESSION_ENDED:
        ended_message(s, &se, ac, msg, sizeof msg);
        srv_note(st, "session ended before (timeout, sign-out or revocation)");
        break;
    case TKA_SESSION_ERROR:
        OPENSSL_cleanse(&se, sizeof se);
        st->error = "temporarily_unavailable";
        srv_note(st, "the session could not be checked");
        res = srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-in is unavailable",
                               "Sign-in is unavailable right now. Try again in a minute.", NULL, NULL);
        goto out;
    case TKA_SESSION_NONE:
    default:
        break;
    }
    OPENSSL_cleanse(&se, sizeof se);
    if (srv_prompt_has(az, "none")) {
        /* OpenID Connect Core section 3.1.2.6: no page may be shown */
        az->result = TKA_AZ_LOGIN_REQUIRED;
        snprintf(az->why, sizeof az->why, "%s",
                 sr == TKA_SESSION_OK ? "prompt=none, but the user must sign in again (max_age, prompt or "
                                        "id_token_hint)"
                                      : "prompt=none, and the user is not signed in");
        srv_note(st, "%s", az->why);
        res = srv_authz_fail(st, c, az, MHD_HTTP_FOUND);
        goto out;
    }
    res = srv_page_login(st, c, MHD_HTTP_OK, az, msg, hint_sub[0] != '\0' ? hint_sub : az->req.login_hint, 0);
out:
    OPENSSL_cleanse(az, sizeof *az);
    free(az);
    return res;
}
