/* SPDX-License-Identifier: Apache-2.0 */
/*
 * login.c — POST /login (the sign-in form of /oauth/authorize) and
 * GET|POST /logout (issue 4 section 2).
 *
 * POST /login never trusts its hidden fields: the authorization request
 * they carry is checked again exactly as /oauth/authorize checked it, after
 * the CSRF double-submit check. A good password starts a browser session
 * (cookie tokend_session, __Host- over HTTPS, SameSite=Lax) and answers at
 * once with the 303 to the client carrying the code.
 *
 * The password never leaves the request body (wiped when the request
 * completes, server.c) except into tka_user_login; neither it nor the body
 * is logged. The log line names the user only once the account is known to
 * exist and the password was right (OK, DISABLED): a failed attempt's
 * username may be a password typed into the wrong field. The authority
 * audits failures with what it needs.
 *
 * /logout ends the browser session and revokes every token issued in it
 * (tka_session_end), clears the cookie, and either shows "You are signed
 * out." or, when asked with client_id and one of that client's registered
 * redirect URIs as post_logout_redirect_uri, sends the browser there (303).
 * Only a POST from our own page ends a session: its CSRF field, or an
 * Origin / Sec-Fetch-Site naming us. A GET, which any site can cause with a
 * link, or a POST without that proof, shows a page asking the user to
 * confirm, whose button makes that POST.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "http/internal.h"

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* How much longer than the absolute session timeout the cookie lives. */
#define SESSION_COOKIE_GRACE 86400

/* ---- the password check, off the request threads (workers.c) ----------------------- */

/* One sign-in attempt on its way through the pool. The request thread
 * fills it, suspends the connection and submits it; a pool thread runs
 * tka_user_login, wipes the password, records the result and resumes the
 * connection (its last touch); the request thread, called again by
 * libmicrohttpd, reads the result and frees it. */
struct srv_login_job {
    tka_authority *auth;
    struct MHD_Connection *conn;
    char user[TKS_ID_MAX + 1]; /* not NUL-terminated: user_len bytes */
    size_t user_len;           /* TKS_ID_MAX + 1: longer than any user (unknown) */
    char password[1025];
    size_t password_len;
    char ip[48];
    int64_t now;
    /* the form as the first pass parsed it: its strings point into the
     * request body, which form parsing decoded in place (so it is never
     * parsed twice) */
    srv_form form;
    /* the result */
    tka_login_result result;
    tks_user out;
    int64_t retry;
};

void srv_login_job_free(srv_conn *st)
{
    if (st->job != NULL) {
        OPENSSL_cleanse(st->job, sizeof *st->job);
        free(st->job);
        st->job = NULL;
    }
}

static void login_job_run(void *arg)
{
    struct srv_login_job *j = arg;
    j->result =
        tka_user_login(j->auth, j->user, j->user_len, j->password, j->password_len, j->ip, j->now, &j->out, &j->retry);
    OPENSSL_cleanse(j->password, sizeof j->password);
    MHD_resume_connection(j->conn);
}

/* Hands the password check to the pool and suspends the connection.
 * Returns 1 when queued; 0 when the pool is full (then *retry_after says
 * when to try again). */
static int login_queue(srv_conn *st, struct MHD_Connection *c, const srv_form *f, const char *user, size_t ul,
                       const char *pw, size_t pl, int64_t now, int64_t *retry_after)
{
    struct tkh_server *s = st->srv;
    *retry_after = 0;
    struct srv_login_job *j = calloc(1, sizeof *j);
    if (j == NULL || srv_pool_reserve(s->login_pool) != 0) {
        free(j);
        srv_pool_info pi;
        srv_pool_stats(s->login_pool, &pi);
        /* the queue drains at about 10 checks a second per thread */
        int64_t ra = pi.threads > 0 ? (int64_t)((pi.limit + pi.threads * 10 - 1) / (pi.threads * 10)) : 1;
        *retry_after = ra < 1 ? 1 : ra;
        return 0;
    }
    j->auth = s->auth;
    j->conn = c;
    /* ul <= TKS_ID_MAX + 1 (login_post): a name of TKS_ID_MAX + 1 bytes is
     * unknown, and still costs a check like any other */
    j->user_len = ul < sizeof j->user ? ul : sizeof j->user;
    memcpy(j->user, user, j->user_len);
    /* a password cut at 1025 bytes is still over the 1024 allowed */
    j->password_len = pl < sizeof j->password ? pl : sizeof j->password;
    memcpy(j->password, pw, j->password_len);
    snprintf(j->ip, sizeof j->ip, "%s", st->ip);
    j->now = now;
    j->form = *f;
    st->job = j;
    MHD_suspend_connection(c);
    srv_pool_submit(s->login_pool, login_job_run, j);
    return 1;
}

static const char damaged[] = "The sign-in form arrived damaged \u2014 go back and try again.";

/* ---- POST /login --------------------------------------------------------------------- */

static enum MHD_Result login_get(srv_conn *st, struct MHD_Connection *c)
{
    st->error = "invalid_request";
    return srv_page_message(st, c, MHD_HTTP_BAD_REQUEST, "Sign in from your application",
                            "This address receives the sign-in form. Open the application you want to use and sign "
                            "in from there.",
                            NULL, NULL);
}

static enum MHD_Result login_post(srv_conn *st, struct MHD_Connection *c, srv_authz *az)
{
    struct tkh_server *s = st->srv;
    srv_form f;
    enum srv_form_result fr = SRV_FORM_OK;
    if (st->job != NULL) {
        f = st->job->form; /* the second pass: parsed already */
    } else if (!srv_is_form(c)) {
        st->error = "invalid_request";
        srv_note(st, "the sign-in form is not application/x-www-form-urlencoded");
        return srv_page_message(st, c, MHD_HTTP_BAD_REQUEST, "Sign-in failed", damaged, NULL, NULL);
    } else {
        const char *bad = NULL;
        char empty[1] = "";
        fr = srv_form_parse(st->body != NULL ? st->body : empty, st->body_len, &f, &bad);
    }
    if (fr != SRV_FORM_OK) {
        st->error = "invalid_request";
        srv_note(st, "the sign-in form does not parse (%s)",
                 fr == SRV_FORM_DUPLICATE  ? "a repeated field"
                 : fr == SRV_FORM_TOO_MANY ? "too many fields"
                 : fr == SRV_FORM_NUL      ? "%00"
                                           : "a bad escape");
        return srv_page_message(st, c, MHD_HTTP_BAD_REQUEST, "Sign-in failed", damaged, NULL, NULL);
    }

    srv_authz_read(az, &f, NULL);
    if (srv_authz_check(st, az) != TKA_AZ_OK) {
        return srv_authz_fail(st, c, az, MHD_HTTP_SEE_OTHER);
    }

    size_t ul = 0;
    size_t pl = 0;
    const char *username = srv_form_get(&f, "username", &ul);
    const char *password = srv_form_get(&f, "password", &pl);
    if (!srv_csrf_ok(st, c, &f)) {
        st->error = "csrf";
        return srv_page_login(st, c, MHD_HTTP_FORBIDDEN, az,
                              "The sign-in form expired or was opened elsewhere \u2014 go back and try again.",
                              username, 0);
    }
    if (username == NULL || password == NULL) {
        st->error = "invalid_request";
        srv_note(st, "%s", username == NULL ? "no username" : "no password");
        return srv_page_login(st, c, MHD_HTTP_BAD_REQUEST, az, "Enter your username and your password.", username, 0);
    }

    tks_user user;
    memset(&user, 0, sizeof user);
    int64_t retry = 0;
    int64_t now = now_s();
    tka_login_result lr;
    if (st->job == NULL) {
        /* First pass: what is cheap here, the slow check in the pool
         * (SECURITY.md rule 21). A throttled attempt costs no hash. */
        /* A name longer than any user id is no user: one byte past the
         * limit keeps it unknown and keys its throttle counters the same
         * here and in the pool. */
        size_t uk = ul > TKS_ID_MAX + 1 ? TKS_ID_MAX + 1 : ul;
        retry = tka_login_wait(s->auth, username, uk, st->ip, now);
        if (retry < 0) {
            retry = 0;
            lr = TKA_LOGIN_ERROR; /* the failure counters cannot be read: fail closed */
        } else if (retry == 0) {
            if (login_queue(st, c, &f, username, uk, password, pl, now, &retry)) {
                return MHD_YES; /* suspended until the check is done */
            }
            st->error = "login_busy";
            srv_note(st, "sign-in refused: every password check is taken; retry after %" PRId64 "s", retry);
            return srv_page_login(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, az,
                                  "Too many people are signing in right now. Try again in a moment.", username, retry);
        } else {
            lr = TKA_LOGIN_THROTTLED;
        }
    } else {
        /* Second pass, after the pool resumed us: the form was read and
         * checked again above; the password was wiped in the pool. */
        lr = st->job->result;
        user = st->job->out;
        retry = st->job->retry;
        srv_login_job_free(st);
    }
    switch (lr) {
    case TKA_LOGIN_OK:
        break;
    case TKA_LOGIN_BAD:
        st->error = "login_failed";
        srv_note(st, "sign-in failed: unknown user or wrong password");
        return srv_page_login(st, c, MHD_HTTP_UNAUTHORIZED, az, "Wrong username or password.", username, 0);
    case TKA_LOGIN_DISABLED:
        snprintf(st->user, sizeof st->user, "%s", user.id);
        st->error = "account_disabled";
        srv_note(st, "sign-in refused: the account is disabled");
        return srv_page_login(st, c, MHD_HTTP_FORBIDDEN, az, "This account is disabled. Contact your administrator.",
                              username, 0);
    case TKA_LOGIN_THROTTLED: {
        if (retry < 1) {
            retry = 1;
        }
        char msg[128];
        snprintf(msg, sizeof msg, "Too many failed sign-ins. Wait %" PRId64 " second%s and try again.", retry,
                 retry == 1 ? "" : "s");
        st->error = "login_throttled";
        srv_note(st, "sign-in refused: too many failures; retry after %" PRId64 "s", retry);
        return srv_page_login(st, c, MHD_HTTP_TOO_MANY_REQUESTS, az, msg, username, retry);
    }
    case TKA_LOGIN_ERROR:
    default:
        st->error = "temporarily_unavailable";
        srv_note(st, "sign-in could not be checked: the store failed");
        return srv_page_login(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, az,
                              "Sign-in is unavailable right now. Try again in a minute.", username, 0);
    }

    snprintf(st->user, sizeof st->user, "%s", user.id);
    char cookie[TKA_COOKIE_LEN];
    char sid[TKS_SID_MAX + 1];
    memset(cookie, 0, sizeof cookie);
    memset(sid, 0, sizeof sid);
    tks_session se;
    memset(&se, 0, sizeof se);
    if (tka_session_create(s->auth, user.id, now, cookie, sid) != 0 ||
        tka_session_check(s->auth, cookie, strnlen(cookie, sizeof cookie), now, &se) != TKA_SESSION_OK) {
        OPENSSL_cleanse(cookie, sizeof cookie);
        st->error = "temporarily_unavailable";
        srv_note(st, "signed in, but the session could not be started");
        return srv_page_login(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, az,
                              "Sign-in is unavailable right now. Try again in a minute.", username, 0);
    }
    /* The cookie outlives the session by a day: a browser that comes back
     * after the absolute timeout still sends it, and hears why it has to
     * sign in again ("reached its 12-hour limit") instead of nothing. The
     * server, not the cookie, decides when a session ends. */
    const tka_config *ac = tka_get_config(s->auth);
    int64_t max_age = (ac != NULL && ac->session_max > 0 ? ac->session_max : 43200) + SESSION_COOKIE_GRACE;
    char set_cookie[TKA_COOKIE_LEN + 128];
    snprintf(set_cookie, sizeof set_cookie, "%s=%s; Path=/;%s HttpOnly; SameSite=Lax; Max-Age=%" PRId64,
             s->cookie_session, cookie, s->https ? " Secure;" : "", max_age);
    OPENSSL_cleanse(cookie, sizeof cookie);
    srv_note(st, "signed in; session %.64s", sid);
    enum MHD_Result res = srv_authz_finish(st, c, az, &se, MHD_HTTP_SEE_OTHER, set_cookie);
    OPENSSL_cleanse(set_cookie, sizeof set_cookie);
    OPENSSL_cleanse(&se, sizeof se);
    return res;
}

enum MHD_Result srv_handle_login(srv_conn *st, struct MHD_Connection *c)
{
    if (strcmp(st->method, "POST") != 0) {
        return login_get(st, c);
    }
    srv_authz *az = malloc(sizeof *az); /* about 7 KiB: the client record */
    if (az == NULL) {
        return MHD_NO;
    }
    enum MHD_Result res = login_post(st, c, az);
    OPENSSL_cleanse(az, sizeof *az);
    free(az);
    return res;
}

/* ---- GET|POST /logout -------------------------------------------------------------------- */

/* Is `uri` one of the space-separated `list`, exactly? */
static int listed(const char *list, const char *uri)
{
    size_t ul = strlen(uri);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, " ");
        if (n == ul && n > 0 && memcmp(p, uri, n) == 0) {
            return 1;
        }
        p += n;
    }
    return 0;
}

/* 303 to a registered post-logout URI with state; returns 0 (and why in
 * *skip) when there is none to go to. */
static int logout_redirect(srv_conn *st, struct MHD_Connection *c, const srv_form *f, const tka_hint *hint,
                           const char *clear, enum MHD_Result *res, const char **skip)
{
    struct tkh_server *s = st->srv;
    const char *uri = srv_form_get(f, "post_logout_redirect_uri", NULL);
    const char *cid = srv_form_get(f, "client_id", NULL);
    *skip = NULL;
    if (uri == NULL) {
        return 0;
    }
    /* RP-Initiated Logout 1.0 section 2: the client is the one the
     * id_token_hint was issued to, or client_id; both must agree. */
    if (hint != NULL && hint->client_id[0] != '\0') {
        if (cid != NULL && strcmp(cid, hint->client_id) != 0) {
            *skip = "post_logout_redirect_uri ignored: client_id differs from the id_token_hint's audience";
            return 0;
        }
        cid = hint->client_id;
    }
    if (cid == NULL || s->store == NULL || !tka_valid_id(cid, TKS_ID_MAX)) {
        *skip = cid == NULL ? "post_logout_redirect_uri ignored: no client_id"
                            : "post_logout_redirect_uri ignored: unknown client";
        return 0;
    }
    snprintf(st->client_id, sizeof st->client_id, "%s", cid);
    tks_client *cl = malloc(sizeof *cl);
    if (cl == NULL) {
        *skip = "post_logout_redirect_uri ignored: out of memory";
        return 0;
    }
    int ok = tks_client_get(s->store, cid, cl) == TKS_OK && !cl->disabled && listed(cl->redirect_uris, uri);
    OPENSSL_cleanse(cl, sizeof *cl);
    free(cl);
    if (!ok) {
        *skip = "post_logout_redirect_uri ignored: not a registered redirect URI of the client";
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)uri; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7F || *p == '#') {
            *skip = "post_logout_redirect_uri ignored: not usable in a Location header";
            return 0;
        }
    }
    srv_buf loc;
    srv_buf_heap(&loc, 8192u); /* as LOCATION_MAX in authorize.c */
    srv_buf_puts(&loc, uri);
    const char *state = srv_form_get(f, "state", NULL);
    if (state != NULL) {
        srv_buf_puts(&loc, strchr(uri, '?') != NULL ? "&state=" : "?state=");
        srv_buf_url(&loc, state, strlen(state));
    }
    if (loc.overflow || loc.p == NULL) {
        srv_buf_free(&loc);
        *skip = "post_logout_redirect_uri ignored: the state is too long";
        return 0;
    }
    srv_header h[3] = {
        {MHD_HTTP_HEADER_LOCATION, loc.p},
        {MHD_HTTP_HEADER_SET_COOKIE, clear},
        {"Referrer-Policy", "no-referrer"},
    };
    *res = srv_respond(st, c, MHD_HTTP_SEE_OTHER, NULL, NULL, 0, 1, SRV_CACHE_NO_STORE, h, 3);
    srv_buf_free(&loc);
    return 1;
}

static enum MHD_Result logout_unavailable(srv_conn *st, struct MHD_Connection *c, const char *note)
{
    st->error = "temporarily_unavailable";
    srv_note(st, "%s", note);
    return srv_page_message(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "Sign-out failed",
                            "We could not sign you out right now. Try again in a minute.", NULL, NULL);
}

/* Is this request from one of our own pages? A browser says so in Origin
 * (sent with every POST) or Sec-Fetch-Site; anything else, including no
 * header at all, is not proof. */
static int same_origin(const struct tkh_server *s, struct MHD_Connection *c)
{
    const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site != NULL && strcmp(site, "same-origin") == 0) {
        return 1;
    }
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin == NULL || s->base_url[0] == '\0') {
        return 0;
    }
    const char *host = strstr(s->base_url, "://");
    size_t n = host != NULL ? (size_t)(host + 3 - s->base_url) + strcspn(host + 3, "/") : 0;
    return n > 0 && strlen(origin) == n && strncmp(origin, s->base_url, n) == 0;
}

enum MHD_Result srv_handle_logout(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    int post = strcmp(st->method, "POST") == 0;
    srv_form f;
    const char *bad = NULL;
    enum srv_form_result fr;
    char empty[1] = "";
    if (post && st->body_len > 0) {
        fr = srv_is_form(c) ? srv_form_parse(st->body, st->body_len, &f, &bad) : SRV_FORM_BAD_ENCODING;
    } else if (!post && st->has_query) {
        fr = srv_form_parse(st->query, st->query_len, &f, &bad);
    } else {
        fr = srv_form_parse(empty, 0, &f, &bad);
    }
    const char *params_note = NULL;
    if (fr != SRV_FORM_OK) {
        /* Signing out must not depend on well-formed extras: sign out,
         * and redirect nowhere. */
        params_note = "logout parameters ignored: they do not parse";
        f.n = 0;
    }
    int has_csrf = post && srv_form_get(&f, "csrf", NULL) != NULL;
    if (has_csrf && !srv_csrf_ok(st, c, &f)) {
        st->error = "csrf";
        return srv_page_message(st, c, MHD_HTTP_FORBIDDEN, "Sign-out failed",
                                "The sign-out form expired or was opened elsewhere \u2014 go back and try again.", NULL,
                                NULL);
    }
    /* Ending a sign-in is a change another site must not make for the
     * user: a GET (a link, or a top-level navigation, which carries the
     * SameSite=Lax session cookie) or a POST without proof that it came
     * from our own page asks first (issue 8 section 3). */
    int confirmed = post && (has_csrf || same_origin(s, c));
    /* RP-Initiated Logout 1.0: an id_token_hint of ours names the sign-in
     * the application wants ended; when it is the browser's own, the
     * application has shown it holds that sign-in's ID token, and the user
     * is not asked again. */
    tka_hint hint;
    int have_hint = 0;
    const char *hint_text = srv_form_get(&f, "id_token_hint", NULL);
    if (hint_text != NULL) {
        char why[160];
        have_hint = tka_id_token_hint(s->auth, hint_text, strlen(hint_text), now_s(), &hint, why, sizeof why) == 0;
        if (!have_hint) {
            params_note = "id_token_hint ignored: not an ID token of ours";
        }
    }

    char what[160];
    size_t cl = 0;
    const char *cookie = srv_cookie(c, s->cookie_session, &cl);
    int64_t now = now_s();
    snprintf(what, sizeof what, "no session cookie");
    if (cookie != NULL) {
        tks_session se;
        memset(&se, 0, sizeof se);
        tka_session_result sr = tka_session_check(s->auth, cookie, cl, now, &se);
        if (sr == TKA_SESSION_ERROR) {
            return logout_unavailable(st, c, "the session could not be checked");
        }
        /* A session that timed out is ended already, but the tokens issued
         * in it live on: revoke them too when the authority names its sid. */
        if (se.sid[0] != '\0' && sr != TKA_SESSION_NONE) {
            snprintf(st->user, sizeof st->user, "%s", se.user_id);
            if (have_hint && strcmp(hint.sub, se.user_id) == 0 &&
                (hint.sid[0] == '\0' || strcmp(hint.sid, se.sid) == 0)) {
                confirmed = 1;
            }
            if (!confirmed) {
                OPENSSL_cleanse(&se, sizeof se);
                srv_note(st, "sign-out asked for without confirmation (%s): asking the user",
                         post ? "a POST from another site" : "a GET");
                return srv_page_logout_confirm(st, c, st->user, &f);
            }
            if (tka_session_end(s->auth, se.sid, "logout", now) != 0) {
                OPENSSL_cleanse(&se, sizeof se);
                return logout_unavailable(st, c, "the session could not be ended");
            }
            snprintf(what, sizeof what, "signed out: session %.64s ended, its tokens revoked", se.sid);
        } else {
            snprintf(what, sizeof what, "no active session to end");
        }
        OPENSSL_cleanse(&se, sizeof se);
    }

    char clear[160];
    srv_session_cookie_clear(s, clear, sizeof clear);
    enum MHD_Result res = MHD_NO;
    const char *skip = NULL;
    int redirected = logout_redirect(st, c, &f, have_hint ? &hint : NULL, clear, &res, &skip);
    srv_note(st, "%s%s%s", what, skip != NULL || params_note != NULL ? "; " : "",
             skip != NULL          ? skip
             : params_note != NULL ? params_note
                                   : "");
    if (redirected) {
        return res;
    }
    return srv_page_message(st, c, MHD_HTTP_OK, "You are signed out.",
                            "Applications you used through this sign-in can no longer act for you. Close this "
                            "window, or go back to an application to sign in again.",
                            skip != NULL ? "We did not send you back to the application: that return address is "
                                           "not registered for it."
                                         : NULL,
                            clear);
}
