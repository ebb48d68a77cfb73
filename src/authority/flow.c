/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flow.c — user sign-in for apps: the authorization endpoint's checks
 * (RFC 6749 section 4.1, PKCE S256 only per RFC 7636 and RFC 9700),
 * single-use authorization codes, and the authorization_code and
 * refresh_token grants with refresh token rotation.
 *
 * Invariants:
 *  - A redirect URI is used only when it equals one the client registered,
 *    byte for byte; otherwise nothing redirects.
 *  - Codes and refresh tokens are stored as SHA-256 only, and redeemed by an
 *    atomic conditional update, so that exactly one of two concurrent uses
 *    wins.
 *  - A code presented twice revokes what was issued with it (RFC 6749
 *    section 4.1.2). A refresh token presented after it was rotated revokes
 *    its whole family (sid), unless the first use was within a 2-second
 *    grace window: two requests racing from the same client are a retry,
 *    not a theft, and the loser just gets invalid_grant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authority/internal.h"

#define REFRESH_PREFIX "tokend_rt_"
#define REUSE_GRACE 2

static size_t count_items(const char *list)
{
    size_t n = 0;
    for (const char *p = list; *p;) {
        n++;
        const char *e = strchr(p, ' ');
        if (!e) {
            break;
        }
        p = e + 1;
    }
    return n;
}

static void first_item(const char *list, char *out, size_t cap)
{
    const char *sp = strchr(list, ' ');
    size_t n = sp ? (size_t)(sp - list) : strlen(list);
    snprintf(out, cap, "%.*s", (int)n, list);
}

const char *tka_authz_error(tka_authz_result r)
{
    switch (r) {
    case TKA_AZ_INVALID_REQUEST:
        return "invalid_request";
    case TKA_AZ_UNSUPPORTED_RESPONSE:
        return "unsupported_response_type";
    case TKA_AZ_INVALID_SCOPE:
        return "invalid_scope";
    case TKA_AZ_UNAUTHORIZED_CLIENT:
        return "unauthorized_client";
    case TKA_AZ_INVALID_TARGET:
        return "invalid_target";
    case TKA_AZ_ERROR:
        return "server_error";
    case TKA_AZ_LOGIN_REQUIRED:
        return "login_required";
    case TKA_AZ_CONSENT_REQUIRED:
        return "consent_required";
    case TKA_AZ_INTERACTION_REQUIRED:
        return "interaction_required";
    case TKA_AZ_ACCESS_DENIED:
        return "access_denied";
    default:
        return "invalid_request";
    }
}

/* RFC 7636 section 4.1: 43..128 unreserved characters. */
static int valid_pkce_text(const char *s, size_t n)
{
    if (n < 43 || n > 128) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '~')) {
            return 0;
        }
    }
    return 1;
}

/* No control characters, at most `max` bytes. */
static int plain_text(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char ch = (unsigned char)s[n];
        if (ch < 0x20 || ch == 0x7f || n >= max) {
            return 0;
        }
    }
    return 1;
}

/* The OpenID Connect parameters (Core section 3.1.2.1); what they do is
 * the endpoint's business (src/http/authorize.c). */
static tka_authz_result oidc_check(const tka_authz_request *r, char *why, size_t why_cap)
{
    if (r->nonce && (!r->nonce[0] || !plain_text(r->nonce, TKS_NONCE_MAX))) {
        snprintf(why, why_cap, "nonce must be 1 to %d bytes without control characters", TKS_NONCE_MAX);
        return TKA_AZ_INVALID_REQUEST;
    }
    if (r->prompt) {
        const char *p = r->prompt;
        size_t items = 0;
        int none = 0;
        while (*p) {
            const char *e = strchr(p, ' ');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (!tka_in_list("none login consent select_account", p, n)) {
                snprintf(why, why_cap, "prompt value \"%.*s\" is unknown (none, login, consent, select_account)",
                         (int)(n > 32 ? 32 : n), p);
                return TKA_AZ_INVALID_REQUEST;
            }
            none |= n == 4 && memcmp(p, "none", 4) == 0;
            items++;
            if (!e) {
                break;
            }
            p = e + 1;
        }
        if (none && items > 1) {
            snprintf(why, why_cap, "prompt=none cannot be combined with other prompt values");
            return TKA_AZ_INVALID_REQUEST;
        }
    }
    if (r->max_age) {
        size_t n = strlen(r->max_age);
        if (n == 0 || n > 10 || strspn(r->max_age, "0123456789") != n) {
            snprintf(why, why_cap, "max_age must be a number of seconds");
            return TKA_AZ_INVALID_REQUEST;
        }
    }
    if ((r->login_hint && !plain_text(r->login_hint, TKS_PROFILE_MAX)) ||
        (r->ui_locales && !plain_text(r->ui_locales, 256))) {
        snprintf(why, why_cap, "login_hint and ui_locales must be short text");
        return TKA_AZ_INVALID_REQUEST;
    }
    if (r->id_token_hint && (!r->id_token_hint[0] || !plain_text(r->id_token_hint, 8192))) {
        snprintf(why, why_cap, "id_token_hint is not an ID token");
        return TKA_AZ_INVALID_REQUEST;
    }
    return TKA_AZ_OK;
}

tka_authz_result tka_authorize_check(tka_authority *a, const tka_authz_request *r, tks_client *client,
                                     char redirect[TKS_URI_MAX + 1], char scope[TKS_LIST_MAX + 1], char *why,
                                     size_t why_cap)
{
    memset(client, 0, sizeof *client);
    redirect[0] = '\0';
    scope[0] = '\0';
    if (!r->client_id || !tka_valid_id(r->client_id, TKS_ID_MAX)) {
        snprintf(why, why_cap, "the request names no valid client_id");
        return TKA_AZ_BAD_CLIENT;
    }
    tks_result rc = tks_client_get(a->store, r->client_id, client);
    if (rc == TKS_ERR || rc == TKS_BUSY) {
        snprintf(why, why_cap, "the store is unavailable");
        return TKA_AZ_ERROR;
    }
    if (rc != TKS_OK || client->disabled) {
        snprintf(why, why_cap, "%s", rc == TKS_OK ? "this client is disabled" : "no such client");
        memset(client, 0, sizeof *client);
        return TKA_AZ_BAD_CLIENT;
    }
    /* The redirect URI: registered, exactly. */
    if (!r->redirect_uri || !r->redirect_uri[0]) {
        if (count_items(client->redirect_uris) != 1) {
            snprintf(why, why_cap, "redirect_uri is required: this client has %s",
                     client->redirect_uris[0] ? "several registered" : "none registered");
            return TKA_AZ_BAD_REDIRECT;
        }
        first_item(client->redirect_uris, redirect, TKS_URI_MAX + 1);
    } else {
        size_t n = strlen(r->redirect_uri);
        if (n > TKS_URI_MAX || !tka_in_list(client->redirect_uris, r->redirect_uri, n)) {
            snprintf(why, why_cap, "redirect_uri is not one this client registered (they must match exactly)");
            return TKA_AZ_BAD_REDIRECT;
        }
        snprintf(redirect, TKS_URI_MAX + 1, "%s", r->redirect_uri);
    }
    /* From here on, errors go back to the client's redirect URI. */
    if (!tka_in_list(client->grant_types, "authorization_code", 18)) {
        snprintf(why, why_cap, "this client may not use the authorization code flow");
        return TKA_AZ_UNAUTHORIZED_CLIENT;
    }
    if (!r->response_type || !r->response_type[0]) {
        snprintf(why, why_cap, "response_type is required (code)");
        return TKA_AZ_INVALID_REQUEST;
    }
    if (strcmp(r->response_type, "code") != 0) {
        snprintf(why, why_cap, "only response_type=code is supported");
        return TKA_AZ_UNSUPPORTED_RESPONSE;
    }
    if (!r->code_challenge || !r->code_challenge[0]) {
        snprintf(why, why_cap, "PKCE is required: send code_challenge and code_challenge_method=S256");
        return TKA_AZ_INVALID_REQUEST;
    }
    if (!r->code_challenge_method || strcmp(r->code_challenge_method, "S256") != 0) {
        snprintf(why, why_cap, "code_challenge_method must be S256 (plain is not accepted)");
        return TKA_AZ_INVALID_REQUEST;
    }
    if (strlen(r->code_challenge) != 43 || !valid_pkce_text(r->code_challenge, 43)) {
        snprintf(why, why_cap, "code_challenge must be the base64url SHA-256 of the verifier (43 characters)");
        return TKA_AZ_INVALID_REQUEST;
    }
    if (r->state && strlen(r->state) > 1024) {
        snprintf(why, why_cap, "state is longer than 1024 bytes");
        return TKA_AZ_INVALID_REQUEST;
    }
    if (r->scope && r->scope[0]) {
        char bad[80];
        if (!tka_valid_scope_list(r->scope)) {
            snprintf(why, why_cap, "scope is not space-separated scope tokens");
            return TKA_AZ_INVALID_SCOPE;
        }
        if (!tka_list_subset(r->scope, client->scopes, bad, sizeof bad)) {
            snprintf(why, why_cap, "scope \"%s\" is not allowed for this client", bad);
            return TKA_AZ_INVALID_SCOPE;
        }
        snprintf(scope, TKS_LIST_MAX + 1, "%s", r->scope);
    } else {
        snprintf(scope, TKS_LIST_MAX + 1, "%s", client->scopes);
    }
    if (r->audience && r->audience[0] && !tka_in_list(client->audiences, r->audience, strlen(r->audience))) {
        snprintf(why, why_cap, "audience \"%.64s\" is not allowed for this client", r->audience);
        return TKA_AZ_INVALID_TARGET;
    }
    return oidc_check(r, why, why_cap);
}

int tka_code_issue(tka_authority *a, const tks_client *client, const tks_session *session, const char *redirect,
                   const char *challenge, const char *scope, const char *audience, int64_t now, char code[TKA_CODE_LEN])
{
    return tka_code_issue_nonce(a, client, session, redirect, challenge, scope, audience, NULL, now, code) == 0 ? 0
                                                                                                                : -1;
}

int tka_code_issue_nonce(tka_authority *a, const tks_client *client, const tks_session *session, const char *redirect,
                         const char *challenge, const char *scope, const char *audience, const char *nonce, int64_t now,
                         char code[TKA_CODE_LEN])
{
    tks_code c;
    memset(&c, 0, sizeof c);
    if (tka_random_b64(32, code, TKA_CODE_LEN) != 0) {
        return -1;
    }
    tka_sha256(code, strlen(code), c.hash);
    snprintf(c.client_id, sizeof c.client_id, "%s", client->id);
    snprintf(c.user_id, sizeof c.user_id, "%s", session->user_id);
    snprintf(c.sid, sizeof c.sid, "%s", session->sid);
    snprintf(c.redirect_uri, sizeof c.redirect_uri, "%s", redirect);
    snprintf(c.challenge, sizeof c.challenge, "%s", challenge);
    snprintf(c.scope, sizeof c.scope, "%s", scope);
    if (audience && audience[0]) {
        snprintf(c.audience, sizeof c.audience, "%s", audience);
    } else {
        first_item(client->audiences, c.audience, sizeof c.audience);
    }
    c.created_at = now;
    c.expires_at = now + a->cfg.code_ttl;
    c.auth_time = session->created_at;
    if (nonce && strlen(nonce) > TKS_NONCE_MAX) {
        OPENSSL_cleanse(code, TKA_CODE_LEN);
        return -1;
    }
    snprintf(c.nonce, sizeof c.nonce, "%s", nonce ? nonce : "");
    tks_result rc = tks_code_insert(a->store, &c);
    if (rc != TKS_OK) {
        OPENSSL_cleanse(code, TKA_CODE_LEN);
        return rc == TKS_EXISTS && c.nonce[0] ? 1 : -1;
    }
    atomic_fetch_add(&a->n_codes, 1);
    return 0;
}

/* A new refresh token of family `sid` replacing `parent` (NULL: the first
 * of the family): its text in *out (owned) and its row in *row, NOT stored
 * yet: the grant stores it in the same transaction that spends what it
 * replaces. */
static int make_refresh(const tks_client *client, const char *user, const char *sid, const char *scope,
                        const char *audience, const unsigned char *parent, int64_t expires, int64_t auth_time,
                        int64_t now, char **out, tks_refresh *row)
{
    char body[48];
    if (tka_random_b64(32, body, sizeof body) != 0) {
        return -1;
    }
    size_t n = strlen(REFRESH_PREFIX) + strlen(body) + 1;
    char *t = malloc(n);
    if (!t) {
        OPENSSL_cleanse(body, sizeof body);
        return -1;
    }
    snprintf(t, n, "%s%s", REFRESH_PREFIX, body);
    OPENSSL_cleanse(body, sizeof body);
    memset(row, 0, sizeof *row);
    tka_sha256(t, strlen(t), row->hash);
    if (parent) {
        memcpy(row->parent, parent, 32);
    }
    snprintf(row->sid, sizeof row->sid, "%s", sid);
    snprintf(row->client_id, sizeof row->client_id, "%s", client->id);
    snprintf(row->user_id, sizeof row->user_id, "%s", user);
    snprintf(row->scope, sizeof row->scope, "%s", scope);
    snprintf(row->audience, sizeof row->audience, "%s", audience);
    row->created_at = now;
    row->expires_at = expires;
    row->auth_time = auth_time;
    *out = t;
    return 0;
}

/* The user behind a code or refresh token must still be able to sign in:
 * 1 yes (*u is the user, its password hash wiped), 0 no (why says so), -1
 * the store failed. */
static int user_ok(tka_authority *a, const char *user, tks_user *u, char *why, size_t why_cap)
{
    tks_result rc = tks_user_get(a->store, user, u);
    OPENSSL_cleanse(u->pwhash, sizeof u->pwhash);
    if (rc == TKS_OK && !u->disabled) {
        return 1;
    }
    if (rc != TKS_OK && rc != TKS_NOT_FOUND) {
        snprintf(why, why_cap, "the store is unavailable (reading the user): %s", tks_errmsg(a->store));
        return -1;
    }
    snprintf(why, why_cap, "%s", rc == TKS_OK ? "the user's account is disabled" : "the user no longer exists");
    return 0;
}

/* How long a sid revocation must last: every token of the sign-in, access
 * (max_ttl) and refresh (refresh_ttl), has expired by then. */
static int64_t family_until(const tka_authority *a, int64_t now)
{
    int64_t longest = a->cfg.refresh_ttl > a->cfg.max_ttl ? a->cfg.refresh_ttl : a->cfg.max_ttl;
    return now + longest + a->cfg.leeway;
}

/* RFC 6749 section 4.1.2: a code presented again may have been stolen:
 * revoke everything issued with it, and audit. Each write is checked
 * (SECURITY.md rule 20): the client is told its sign-in was revoked only
 * when it was. */
static tka_grant_result code_replayed(tka_authority *a, const tks_code *c, int64_t now, char *why, size_t why_cap)
{
    if (tka_revoke(a, TKS_REVOKE_SID, c->sid, "code_replay", now, family_until(a, now)) != 0 ||
        tks_audit(a->store, now, "code_replay", c->client_id, NULL, c->user_id) != TKS_OK) {
        snprintf(why, why_cap, "authorization code was already used, and revoking its tokens failed: %s",
                 tks_errmsg(a->store));
        return TKA_GRANT_ERROR;
    }
    tka_signout_notify(a, c->sid, "code_replay");
    snprintf(why, why_cap, "authorization code was already used; the tokens issued with it are now revoked");
    return TKA_GRANT_INVALID_GRANT;
}

/* A refresh token presented after it was rotated. Within REUSE_GRACE of
 * the first use by the same client it is a concurrent retry: refused,
 * nothing revoked. After that someone else holds a copy: the whole family
 * is revoked, its session ended and the event audited, each write checked. */
static tka_grant_result refresh_reused(tka_authority *a, const tks_refresh *r, int64_t now, char *why, size_t why_cap)
{
    if (now - r->used_at <= REUSE_GRACE) {
        snprintf(why, why_cap,
                 "refresh token was used moments ago by a concurrent request; use the token that request "
                 "received");
        return TKA_GRANT_INVALID_GRANT;
    }
    if (tka_session_end(a, r->sid, "refresh_reuse", now) != 0 ||
        tks_audit(a->store, now, "refresh_reuse", r->client_id, NULL, r->sid) != TKS_OK) {
        snprintf(why, why_cap, "refresh token was already used, and revoking its sign-in failed: %s",
                 tks_errmsg(a->store));
        return TKA_GRANT_ERROR;
    }
    atomic_fetch_add(&a->n_refresh_reuse, 1);
    snprintf(why, why_cap,
             "refresh token was already used: every token of this sign-in is now revoked, as it may have been "
             "stolen; sign in again");
    return TKA_GRANT_INVALID_GRANT;
}

/* A spend (code exchange, refresh rotation) the store failed: nothing was
 * written, or, when the answer to its COMMIT was lost and could not be
 * asked for, it may have been: the log must not say otherwise. */
static tka_grant_result spend_failed(tka_authority *a, tks_result rc, const char *thing, char *why, size_t why_cap)
{
    if (rc == TKS_UNKNOWN) {
        snprintf(why, why_cap, "the store did not confirm the write, so the %s may have been spent: %s", thing,
                 tks_errmsg(a->store));
    } else {
        snprintf(why, why_cap, "the store is unavailable (the %s was not spent): %s", thing, tks_errmsg(a->store));
    }
    return TKA_GRANT_ERROR;
}

/* Checks shared by both grants before anything is spent: the sign-in is
 * not revoked (else "<ended> (<reason>)<then>") and its user may still
 * sign in (then *u is that user, for the ID token). */
static tka_grant_result family_ok(tka_authority *a, const char *sid, const char *user, tks_user *u, const char *ended,
                                  const char *then, char *why, size_t why_cap)
{
    char reason[TKS_REASON_MAX + 1] = "";
    if (tka_is_revoked(a, NULL, sid, reason, sizeof reason, NULL, NULL)) {
        snprintf(why, why_cap, "%s (%s)%s", ended, reason[0] ? reason : "revoked", then);
        return TKA_GRANT_INVALID_GRANT;
    }
    int ok = user_ok(a, user, u, why, why_cap);
    return ok > 0 ? TKA_GRANT_OK : ok == 0 ? TKA_GRANT_INVALID_GRANT : TKA_GRANT_ERROR;
}

tka_grant_result tka_issue_authorization_code(tka_authority *a, const tks_client *client, const char *code,
                                              size_t code_len, const char *redirect_uri, const char *verifier,
                                              size_t verifier_len, int64_t now, tka_issued *out, char *why,
                                              size_t why_cap)
{
    memset(out, 0, sizeof *out);
    if (!tka_in_list(client->grant_types, "authorization_code", 18)) {
        snprintf(why, why_cap, "this client may not use the authorization_code grant");
        return TKA_GRANT_UNAUTHORIZED_CLIENT;
    }
    if (!code || code_len == 0 || code_len > 128) {
        snprintf(why, why_cap, "code is missing");
        return TKA_GRANT_INVALID_GRANT;
    }
    tks_code c;
    unsigned char h[32];
    tka_sha256(code, code_len, h);
    /* Check everything before spending the code: a wrong attempt by
     * someone who saw the code but holds no verifier must not use it up
     * (and so revoke the real client's sign-in as a "replay"). */
    tks_result rc = tks_code_get(a->store, h, &c);
    if (rc == TKS_NOT_FOUND) {
        snprintf(why, why_cap, "unknown authorization code");
        return TKA_GRANT_INVALID_GRANT;
    }
    if (rc != TKS_OK) {
        snprintf(why, why_cap, "the store is unavailable: %s", tks_errmsg(a->store));
        return TKA_GRANT_ERROR;
    }
    if (strcmp(c.client_id, client->id) != 0) {
        snprintf(why, why_cap, "the code was issued to another client");
        return TKA_GRANT_INVALID_GRANT;
    }
    if (c.used_at != 0) {
        return code_replayed(a, &c, now, why, why_cap);
    }
    if (now >= c.expires_at) {
        snprintf(why, why_cap, "authorization code expired (codes live %llds): start the sign-in again",
                 (long long)a->cfg.code_ttl);
        return TKA_GRANT_INVALID_GRANT;
    }
    if (redirect_uri && redirect_uri[0] ? strcmp(redirect_uri, c.redirect_uri) != 0
                                        : count_items(client->redirect_uris) != 1) {
        snprintf(why, why_cap, "redirect_uri differs from the one the code was issued for");
        return TKA_GRANT_INVALID_GRANT;
    }
    if (!verifier || !valid_pkce_text(verifier, verifier_len)) {
        snprintf(why, why_cap, "code_verifier is missing or malformed (43 to 128 unreserved characters)");
        return TKA_GRANT_INVALID_GRANT;
    }
    unsigned char vh[32];
    char vb[48];
    tka_sha256(verifier, verifier_len, vh);
    if (tk_b64url_encode(vh, 32, vb, sizeof vb, NULL) != TK_OK || strlen(c.challenge) != 43 ||
        CRYPTO_memcmp(vb, c.challenge, 43) != 0) {
        snprintf(why, why_cap, "code_verifier does not match the code_challenge (PKCE)");
        return TKA_GRANT_INVALID_GRANT;
    }
    tks_user user;
    tka_grant_result g = family_ok(a, c.sid, c.user_id, &user, "the sign-in session ended",
                                   " before the code was redeemed", why, why_cap);
    if (g != TKA_GRANT_OK) {
        return g;
    }
    /* Everything is checked: make what the grant gives, then spend the code
     * and store the refresh token in one transaction. */
    g = tka_issue_access(a, client, c.user_id, c.sid, c.scope, c.audience, now, out, why, why_cap);
    if (g != TKA_GRANT_OK) {
        tka_issued_clear(out);
        return g;
    }
    tks_refresh first;
    int refresh = tka_in_list(client->grant_types, "refresh_token", 13);
    if (tka_in_list(c.scope, "openid", 6)) {
        g = tka_issue_id_token(a, client, &user, c.sid, c.scope, c.nonce, c.auth_time, out->access_token, now,
                               &out->id_token, why, why_cap);
        if (g != TKA_GRANT_OK) {
            tka_issued_clear(out);
            return g;
        }
    }
    if (refresh && make_refresh(client, c.user_id, c.sid, c.scope, c.audience, NULL, now + a->cfg.refresh_ttl,
                                c.auth_time, now, &out->refresh_token, &first) != 0) {
        tka_issued_clear(out);
        snprintf(why, why_cap, "no randomness or memory for the refresh token");
        return TKA_GRANT_ERROR;
    }
    tks_code spent;
    rc = tks_code_exchange(a->store, h, now, refresh ? &first : NULL, &spent);
    if (rc != TKS_OK) {
        tka_issued_clear(out);
        if (rc == TKS_EXISTS) { /* redeemed by a concurrent request since we looked */
            return code_replayed(a, &spent, now, why, why_cap);
        }
        if (rc == TKS_NOT_FOUND) {
            snprintf(why, why_cap, "unknown authorization code");
            return TKA_GRANT_INVALID_GRANT;
        }
        return spend_failed(a, rc, "code", why, why_cap);
    }
    atomic_fetch_add(&a->n_issued_code, 1);
    return TKA_GRANT_OK;
}

tka_grant_result tka_issue_refresh(tka_authority *a, const tks_client *client, const char *refresh, size_t len,
                                   const char *scope, int64_t now, tka_issued *out, char *why, size_t why_cap)
{
    memset(out, 0, sizeof *out);
    if (!tka_in_list(client->grant_types, "refresh_token", 13)) {
        snprintf(why, why_cap, "this client may not use the refresh_token grant");
        return TKA_GRANT_UNAUTHORIZED_CLIENT;
    }
    size_t pl = strlen(REFRESH_PREFIX);
    if (!refresh || len <= pl || len > 128 || memcmp(refresh, REFRESH_PREFIX, pl) != 0) {
        snprintf(why, why_cap, "not a tokend refresh token");
        return TKA_GRANT_INVALID_GRANT;
    }
    unsigned char h[32];
    tka_sha256(refresh, len, h);
    tks_refresh r;
    /* Look before using: another client presenting this token must not
     * spend it (and so make the owner's next use look like reuse). */
    tks_result rc = tks_refresh_get(a->store, h, &r);
    if (rc == TKS_NOT_FOUND) {
        snprintf(why, why_cap, "unknown refresh token");
        return TKA_GRANT_INVALID_GRANT;
    }
    if (rc != TKS_OK) {
        snprintf(why, why_cap, "the store is unavailable: %s", tks_errmsg(a->store));
        return TKA_GRANT_ERROR;
    }
    if (strcmp(r.client_id, client->id) != 0) {
        snprintf(why, why_cap, "the refresh token was issued to another client");
        return TKA_GRANT_INVALID_GRANT;
    }
    if (r.used_at != 0) {
        return refresh_reused(a, &r, now, why, why_cap);
    }
    if (now >= r.expires_at) {
        snprintf(why, why_cap, "refresh token expired: sign in again");
        return TKA_GRANT_INVALID_GRANT;
    }
    tks_user user;
    tka_grant_result g =
        family_ok(a, r.sid, r.user_id, &user, "this sign-in was ended", ": sign in again", why, why_cap);
    if (g != TKA_GRANT_OK) {
        return g;
    }
    char granted[TKS_LIST_MAX + 1];
    snprintf(granted, sizeof granted, "%s", r.scope);
    if (scope && scope[0]) {
        char bad[80];
        if (!tka_valid_scope_list(scope) || !tka_list_subset(scope, r.scope, bad, sizeof bad)) {
            snprintf(why, why_cap, "scope may only narrow what was granted (%s)", r.scope);
            return TKA_GRANT_INVALID_SCOPE;
        }
        snprintf(granted, sizeof granted, "%s", scope);
    }
    /* Everything is checked: make the new tokens, then spend the old one and
     * store its successor in one transaction. The family keeps its original
     * end: rotation does not extend it. */
    g = tka_issue_access(a, client, r.user_id, r.sid, granted, r.audience, now, out, why, why_cap);
    if (g != TKA_GRANT_OK) {
        tka_issued_clear(out);
        return g;
    }
    /* OpenID Connect Core section 12.2: a refresh of an openid grant
     * brings a new ID token, with the original auth_time and no nonce. */
    if (tka_in_list(granted, "openid", 6)) {
        g = tka_issue_id_token(a, client, &user, r.sid, granted, NULL, r.auth_time, out->access_token, now,
                               &out->id_token, why, why_cap);
        if (g != TKA_GRANT_OK) {
            tka_issued_clear(out);
            return g;
        }
    }
    tks_refresh next;
    if (make_refresh(client, r.user_id, r.sid, r.scope, r.audience, h, r.expires_at, r.auth_time, now,
                     &out->refresh_token, &next) != 0) {
        tka_issued_clear(out);
        snprintf(why, why_cap, "no randomness or memory for the refresh token");
        return TKA_GRANT_ERROR;
    }
    tks_refresh old;
    rc = tks_refresh_rotate(a->store, h, now, &next, &old);
    if (rc != TKS_OK) {
        tka_issued_clear(out);
        if (rc == TKS_EXISTS) { /* rotated by a concurrent request since we looked */
            return refresh_reused(a, &old, now, why, why_cap);
        }
        if (rc == TKS_NOT_FOUND) {
            snprintf(why, why_cap, "unknown refresh token");
            return TKA_GRANT_INVALID_GRANT;
        }
        return spend_failed(a, rc, "refresh token", why, why_cap);
    }
    atomic_fetch_add(&a->n_issued_refresh, 1);
    return TKA_GRANT_OK;
}

tka_auth_result tka_client_identify_public(tka_authority *a, const char *id, size_t id_len, tks_client *out)
{
    memset(out, 0, sizeof *out);
    char idz[TKS_ID_MAX + 1];
    if (id_len == 0 || id_len > TKS_ID_MAX || memchr(id, '\0', id_len)) {
        return TKA_AUTH_BAD;
    }
    memcpy(idz, id, id_len);
    idz[id_len] = '\0';
    tks_result rc = tka_client_get(a, idz, out);
    if (rc == TKS_ERR || rc == TKS_BUSY) {
        return TKA_AUTH_ERROR;
    }
    if (rc != TKS_OK || !out->is_public) {
        memset(out, 0, sizeof *out);
        return TKA_AUTH_BAD;
    }
    return out->disabled ? TKA_AUTH_DISABLED : TKA_AUTH_OK;
}

int tka_revoke_refresh(tka_authority *a, const tks_client *client, const char *tok, size_t len, int64_t now)
{
    unsigned char h[32];
    tka_sha256(tok, len, h);
    tks_refresh r;
    tks_result rc = tks_refresh_get(a->store, h, &r);
    if (rc == TKS_NOT_FOUND) {
        return 0;
    }
    if (rc != TKS_OK) {
        return -1;
    }
    if (strcmp(r.client_id, client->id) != 0) {
        return 1;
    }
    /* RFC 7009 section 2.1: revoking a refresh token also invalidates the
     * access tokens of the same grant: the whole family. */
    return tka_session_end(a, r.sid, "client", now) == 0 ? 0 : -1;
}
