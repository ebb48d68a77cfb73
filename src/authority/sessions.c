/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sessions.c — browser sessions after sign-in. The cookie value is 256
 * random bits; the store keeps its SHA-256 only, so a stolen database does
 * not hold live cookies. Each session has a public sid: the sid claim of
 * every token issued in it, so that logout revokes them all. Idle and
 * absolute timeouts end a session (tokens already issued live on until
 * they expire or are revoked).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authority/internal.h"

int tka_session_create(tka_authority *a, const char *user_id, int64_t now, char cookie[TKA_COOKIE_LEN],
                       char sid[TKS_SID_MAX + 1])
{
    tks_session s;
    memset(&s, 0, sizeof s);
    if (tka_random_b64(32, cookie, TKA_COOKIE_LEN) != 0 || tka_random_b64(18, s.sid, sizeof s.sid) != 0) {
        return -1;
    }
    tka_sha256(cookie, strlen(cookie), s.id_hash);
    snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
    s.created_at = now;
    s.last_seen = now;
    if (tks_session_insert(a->store, &s) != TKS_OK) {
        OPENSSL_cleanse(cookie, TKA_COOKIE_LEN);
        return -1;
    }
    snprintf(sid, TKS_SID_MAX + 1, "%s", s.sid);
    return 0;
}

tka_session_result tka_session_check(tka_authority *a, const char *cookie, size_t len, int64_t now, tks_session *out)
{
    memset(out, 0, sizeof *out);
    if (!cookie || len == 0 || len >= TKA_COOKIE_LEN) {
        return TKA_SESSION_NONE;
    }
    unsigned char h[32];
    tka_sha256(cookie, len, h);
    tks_result rc = tks_session_get(a->store, h, out);
    if (rc == TKS_NOT_FOUND) {
        return TKA_SESSION_NONE;
    }
    if (rc != TKS_OK) {
        return TKA_SESSION_ERROR;
    }
    if (out->ended_at) {
        return TKA_SESSION_ENDED;
    }
    /* The timeouts are decided from the stored times on every check, so
     * recording the end is bookkeeping: if it fails, the next check decides
     * the same again. */
    if (now >= out->created_at + a->cfg.session_max) {
        (void)tks_session_end(a->store, out->sid, now);
        return TKA_SESSION_EXPIRED;
    }
    if (now >= out->last_seen + a->cfg.session_idle) {
        (void)tks_session_end(a->store, out->sid, now);
        return TKA_SESSION_IDLE;
    }
    if (tka_is_revoked(a, NULL, out->sid, NULL, 0, NULL, NULL)) {
        return TKA_SESSION_ENDED;
    }
    /* A touch that fails leaves last_seen older: the session idles out
     * sooner, never later (fails safe). */
    (void)tks_session_touch(a->store, h, now);
    out->last_seen = now;
    return TKA_SESSION_OK;
}

int tka_session_end(tka_authority *a, const char *sid, const char *reason, int64_t now)
{
    /* Every token of this sign-in: access tokens live at most max_ttl,
     * refresh tokens refresh_ttl; revoke the sid until both are over. The
     * revocation first: it is what stops the tokens; then the session. */
    int64_t longest = a->cfg.refresh_ttl > a->cfg.max_ttl ? a->cfg.refresh_ttl : a->cfg.max_ttl;
    if (tka_revoke(a, TKS_REVOKE_SID, sid, reason, now, now + longest + a->cfg.leeway) != 0) {
        return -1;
    }
    tks_result rc = tks_session_end(a->store, sid, now);
    if (rc != TKS_OK && rc != TKS_NOT_FOUND) {
        return -1;
    }
    tka_signout_notify(a, sid, reason);
    return 0;
}

struct revoke_all {
    tka_authority *a;
    const char *reason;
    int64_t now;
    int64_t until;
    int n;
    int failed;
};

static int revoke_sid(const char *sid, void *ud)
{
    struct revoke_all *r = ud;
    if (tka_revoke(r->a, TKS_REVOKE_SID, sid, r->reason, r->now, r->until) != 0) {
        r->failed = 1;
        return 1;
    }
    tka_signout_notify(r->a, sid, r->reason);
    r->n++;
    return 0;
}

int tka_user_revoke_all(tka_authority *a, const char *id, const char *reason, int64_t now)
{
    int64_t longest = a->cfg.refresh_ttl > a->cfg.max_ttl ? a->cfg.refresh_ttl : a->cfg.max_ttl;
    struct revoke_all r = {a, reason, now, now + longest + a->cfg.leeway, 0, 0};
    if (tks_session_end_user(a->store, id, now, revoke_sid, &r) != TKS_OK || r.failed) {
        return -1;
    }
    return r.n;
}
