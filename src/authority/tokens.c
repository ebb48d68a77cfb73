/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tokens.c — access tokens: issuance by grant (RFC 9068 JWTs), validation
 * with revocation, and revocation itself (RFC 7009), with the in-memory
 * revocation set that keeps the verify path free of store round trips.
 *
 * The revocation set (revset.c) holds every jti and sid revoked and not yet
 * past the expiry of the tokens they name (SECURITY.md rule 14: keyed on
 * jti and sid, never on the token text). It is read whole from the store
 * at start (or on first use, cfg.lazy_revocations) into a table sized once,
 * and caught up by tka_maintain() and the store's watcher from the store's
 * cursor, so a revocation made by another process arrives within a second;
 * one made here is visible at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authority/internal.h"

/* ---- the revocation set ------------------------------------------------------- */

int tka_revset_add(tka_authority *a, enum tks_revocation_kind kind, const char *value, const char *reason,
                   int64_t revoked_at, int64_t until)
{
    unsigned char key[TKA_REV_KEY_LEN];
    if (!atomic_load(&a->rev_loaded)) {
        return 0; /* lazy and not loaded yet: the store has it, the load will bring it */
    }
    if (tka_rev_key(a->rev_hash_key, kind, value, strlen(value), key) != 0) {
        return -1;
    }
    pthread_rwlock_wrlock(&a->rev_lock);
    int rc = tka_revset_put(&a->rev, key, reason, revoked_at, until);
    pthread_rwlock_unlock(&a->rev_lock);
    return rc;
}

void tka_revset_purge(tka_authority *a, int64_t now)
{
    pthread_rwlock_wrlock(&a->rev_lock);
    (void)tka_revset_purge_expired(&a->rev, now);
    pthread_rwlock_unlock(&a->rev_lock);
}

static int on_revocation(const tks_revocation *r, void *ud)
{
    tka_authority *a = ud;
    return tka_revset_add(a, r->kind, r->value, r->reason, r->revoked_at, r->until) != 0;
}

/* The first load: every revocation in force, read into a table of its own
 * (sized once from a count, so no row is moved twice and none is
 * allocated) that then replaces the empty one. With rev_refresh_lock held. */
#define LOAD_BATCH 256

struct load {
    struct tka_revset set;
    struct tka_rev_row rows[LOAD_BATCH];
    size_t n;
    int failed;
};

static int flush_loaded(struct load *l)
{
    if (l->n > 0 && tka_revset_put_batch(&l->set, l->rows, l->n) != 0) {
        l->failed = 1;
    }
    l->n = 0;
    return l->failed;
}

static int put_loaded(const tks_revocation *r, void *ud)
{
    struct load *l = ud;
    struct tka_rev_row *row = &l->rows[l->n];
    if (tka_rev_key(l->set.hash_key, r->kind, r->value, strlen(r->value), row->key) != 0) {
        return 0; /* the store never holds one (tks_revoke checks) */
    }
    row->reason = tka_revset_intern(&l->set, r->reason);
    row->revoked_at = r->revoked_at;
    row->until = r->until;
    return ++l->n == LOAD_BATCH ? flush_loaded(l) : 0;
}

static int rev_load_locked(tka_authority *a, int64_t now)
{
    size_t n = 0;
    if (tks_revocations_count(a->store, now, &n) != TKS_OK) {
        return -1;
    }
    struct load *l = calloc(1, sizeof *l);
    if (!l) {
        return -1;
    }
    tka_revset_init(&l->set, a->rev_hash_key);
    int64_t cursor = 0;
    if (tka_revset_reserve(&l->set, n + n / 64) != 0 ||
        tks_revocations_changed(a->store, &cursor, now, put_loaded, l) != TKS_OK || flush_loaded(l) != 0) {
        tka_revset_free(&l->set);
        free(l);
        return -1;
    }
    pthread_rwlock_wrlock(&a->rev_lock);
    struct tka_revset old = a->rev;
    a->rev = l->set;
    free(l);
    pthread_rwlock_unlock(&a->rev_lock);
    tka_revset_free(&old);
    a->rev_cursor = cursor;
    atomic_store(&a->rev_fresh_at, now);
    atomic_store(&a->rev_loaded, 1);
    return 0;
}

/* Loads the set when it is not loaded yet (cfg.lazy_revocations). */
static int rev_ensure(tka_authority *a, int64_t now)
{
    if (atomic_load(&a->rev_loaded)) {
        return 0;
    }
    pthread_mutex_lock(&a->rev_refresh_lock);
    int rc = atomic_load(&a->rev_loaded) ? 0 : rev_load_locked(a, now);
    pthread_mutex_unlock(&a->rev_refresh_lock);
    return rc;
}

int tka_revset_refresh(tka_authority *a, int64_t now)
{
    /* one catch-up at a time (maintenance and the store's watcher both
     * call this): the cursor moves only after its rows are in the set */
    pthread_mutex_lock(&a->rev_refresh_lock);
    int rc = 0;
    if (!atomic_load(&a->rev_loaded)) {
        rc = a->cfg.lazy_revocations ? 0 : rev_load_locked(a, now);
        pthread_mutex_unlock(&a->rev_refresh_lock);
        return rc;
    }
    int64_t cursor = a->rev_cursor;
    rc = tks_revocations_changed(a->store, &cursor, now, on_revocation, a) == TKS_OK ? 0 : -1;
    if (rc == 0) {
        a->rev_cursor = cursor;
        atomic_store(&a->rev_fresh_at, now);
    }
    pthread_mutex_unlock(&a->rev_refresh_lock);
    return rc;
}

int64_t tka_revocations_age(tka_authority *a, int64_t now)
{
    (void)rev_ensure(a, now); /* failing, the age says so */
    int64_t at = atomic_load(&a->rev_fresh_at);
    return now > at ? now - at : 0;
}

void tka_revocations_size(tka_authority *a, size_t *entries, size_t *bytes)
{
    pthread_rwlock_rdlock(&a->rev_lock);
    *entries = a->rev.count;
    *bytes = tka_revset_bytes(&a->rev);
    pthread_rwlock_unlock(&a->rev_lock);
}

int tka_is_revoked(tka_authority *a, const char *jti, const char *sid, char *reason, size_t reason_cap,
                   int64_t *revoked_at, int *by_sid)
{
    /* Not loaded and cannot be (lazy, the store is down): nothing is known
     * revoked here, and tka_revocations_age keeps validation failing
     * closed. */
    (void)rev_ensure(a, (int64_t)time(NULL));
    unsigned char kj[TKA_REV_KEY_LEN], ks[TKA_REV_KEY_LEN];
    int has_j = jti && tka_rev_key(a->rev_hash_key, TKS_REVOKE_JTI, jti, strlen(jti), kj) == 0;
    int has_s = sid && tka_rev_key(a->rev_hash_key, TKS_REVOKE_SID, sid, strlen(sid), ks) == 0;
    int hit = 0;
    pthread_rwlock_rdlock(&a->rev_lock);
    const struct tka_rev_slot *e = has_j ? tka_revset_get(&a->rev, kj) : NULL;
    int sid_hit = 0;
    if (!e && has_s) {
        e = tka_revset_get(&a->rev, ks);
        sid_hit = e != NULL;
    }
    if (e) {
        hit = 1;
        if (reason_cap) {
            snprintf(reason, reason_cap, "%s", tka_revset_reason(&a->rev, e));
        }
        if (revoked_at) {
            *revoked_at = (int64_t)e->revoked_at;
        }
        if (by_sid) {
            *by_sid = sid_hit;
        }
    }
    pthread_rwlock_unlock(&a->rev_lock);
    return hit;
}

/* Says why, in words, for the reason words tokend records. */
static const char *reason_words(const char *r, int by_sid)
{
    if (strcmp(r, "client") == 0) {
        return "revoked by its client (RFC 7009)";
    }
    if (strcmp(r, "admin") == 0) {
        return by_sid ? "session ended by an administrator" : "revoked by an administrator";
    }
    if (strcmp(r, "logout") == 0) {
        return "session ended by logout";
    }
    if (strcmp(r, "refresh_reuse") == 0) {
        return "refresh token reuse detected, session ended";
    }
    return NULL;
}

int tka_revoke(tka_authority *a, enum tks_revocation_kind kind, const char *value, const char *reason, int64_t now,
               int64_t until)
{
    if (!value || !value[0] || strlen(value) > TKS_VALUE_MAX) {
        return -1;
    }
    if (tks_revoke(a->store, kind, value, reason, now, until) != TKS_OK) {
        return -1;
    }
    atomic_fetch_add(&a->n_revocations, 1);
    /* In force from here, whatever follows: the store has it. */
    int rc = tka_revset_add(a, kind, value, reason, now, until);
    /* A revocation is a security event: its audit is checked too (SECURITY.md
     * rule 20). Failing here answers 503; repeating the revocation is
     * harmless (revoking what is revoked is TKS_OK). */
    if (tks_audit(a->store, now, kind == TKS_REVOKE_JTI ? "token_revoked" : "session_revoked", NULL, NULL, reason) !=
        TKS_OK) {
        rc = -1;
    }
    return rc;
}

int tka_revoke_many(tka_authority *a, enum tks_revocation_kind kind, const char *const *values, size_t n,
                    const char *reason, int64_t now, int64_t until, size_t *done, size_t *added)
{
    *done = 0;
    if (added) {
        *added = 0;
    }
    /* Every value checked before the first batch is written, as tka_revoke
     * checks its one: a bad value never leaves earlier batches behind. */
    for (size_t i = 0; i < n; i++) {
        if (!values[i] || !values[i][0] || strlen(values[i]) > TKS_VALUE_MAX) {
            return -1;
        }
    }
    for (size_t at = 0; at < n;) {
        size_t m = n - at < TKS_REVOKE_BATCH_MAX ? n - at : TKS_REVOKE_BATCH_MAX;
        size_t fresh = 0;
        if (tks_revoke_batch(a->store, kind, values + at, m, reason, now, until, &fresh) != TKS_OK) {
            return -1;
        }
        *done += m;
        if (added) {
            *added += fresh;
        }
        atomic_fetch_add(&a->n_revocations, m);
        int rc = 0;
        for (size_t i = at; i < at + m && rc == 0; i++) {
            rc = tka_revset_add(a, kind, values[i], reason, now, until);
        }
        at += m;
        /* One audit event a batch, checked (SECURITY.md rule 20); the batch
         * is in force whatever follows, and repeating it is harmless. */
        char detail[TKS_REASON_MAX + 32];
        snprintf(detail, sizeof detail, "%s x%zu", reason ? reason : "", m);
        if (tks_audit(a->store, now, kind == TKS_REVOKE_JTI ? "tokens_revoked" : "sessions_revoked", NULL, NULL,
                      detail) != TKS_OK ||
            rc != 0) {
            return -1;
        }
    }
    return 0;
}

/* ---- issuance ---------------------------------------------------------------------- */

void tka_issued_clear(tka_issued *i)
{
    if (i->access_token) {
        OPENSSL_cleanse(i->access_token, strlen(i->access_token));
        tk_free(i->access_token);
    }
    if (i->refresh_token) {
        OPENSSL_cleanse(i->refresh_token, strlen(i->refresh_token));
        free(i->refresh_token);
    }
    if (i->id_token) {
        OPENSSL_cleanse(i->id_token, strlen(i->id_token));
        tk_free(i->id_token);
    }
    memset(i, 0, sizeof *i);
}

tka_grant_result tka_issue_client_credentials(tka_authority *a, const tks_client *c, const char *scope,
                                              const char *audience, int64_t now, tka_issued *out, char *why,
                                              size_t why_cap)
{
    memset(out, 0, sizeof *out);
    /* Scope: what was asked, each item allowed; nothing asked = all. */
    if (scope && scope[0]) {
        if (!tka_valid_scope_list(scope)) {
            snprintf(why, why_cap, "scope is not space-separated scope tokens");
            return TKA_GRANT_INVALID_SCOPE;
        }
        const char *p = scope;
        while (*p) {
            const char *e = strchr(p, ' ');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (!tka_in_list(c->scopes, p, n)) {
                snprintf(why, why_cap, "scope \"%.*s\" is not allowed for this client", (int)(n > 64 ? 64 : n), p);
                return TKA_GRANT_INVALID_SCOPE;
            }
            if (!e) {
                break;
            }
            p = e + 1;
        }
        snprintf(out->scope, sizeof out->scope, "%s", scope);
    } else {
        snprintf(out->scope, sizeof out->scope, "%s", c->scopes);
    }
    /* Audience: the one asked for, if allowed; else the client's first. */
    char aud[TKS_LIST_MAX + 1];
    if (audience && audience[0]) {
        if (!tka_in_list(c->audiences, audience, strlen(audience))) {
            snprintf(why, why_cap, "audience \"%.64s\" is not allowed for this client", audience);
            return TKA_GRANT_INVALID_TARGET;
        }
        snprintf(aud, sizeof aud, "%s", audience);
    } else {
        const char *sp = strchr(c->audiences, ' ');
        size_t n = sp ? (size_t)(sp - c->audiences) : strlen(c->audiences);
        snprintf(aud, sizeof aud, "%.*s", (int)n, c->audiences);
    }
    return tka_issue_access(a, c, NULL, NULL, out->scope, aud, now, out, why, why_cap);
}

tka_grant_result tka_issue_access(tka_authority *a, const tks_client *c, const char *sub, const char *sid,
                                  const char *scope, const char *aud, int64_t now, tka_issued *out, char *why,
                                  size_t why_cap)
{
    if (scope != out->scope) {
        snprintf(out->scope, sizeof out->scope, "%s", scope);
    }
    if (tka_random_b64(16, out->jti, sizeof out->jti) != 0) {
        snprintf(why, why_cap, "no randomness");
        return TKA_GRANT_ERROR;
    }
    int64_t ttl = c->ttl > 0 ? c->ttl : a->cfg.access_ttl;
    /* Every value below was validated to need no JSON escaping: ids and
     * audiences by tka_valid_id / scope syntax, scopes by RFC 6749 syntax,
     * the issuer at tka_open, the jti and sid are base64url. */
    char sid_member[TKS_SID_MAX + 16] = "";
    if (sid) {
        snprintf(sid_member, sizeof sid_member, ",\"sid\":\"%s\"", sid);
    }
    char payload[3 * TKS_LIST_MAX + 640];
    int n = snprintf(payload, sizeof payload,
                     "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"jti\":\"%s\","
                     "\"client_id\":\"%s\",\"scope\":\"%s\"%s}",
                     a->cfg.issuer, sub ? sub : c->id, aud, (long long)(now + ttl), (long long)now, out->jti, c->id,
                     out->scope, sid_member);
    if (n < 0 || (size_t)n >= sizeof payload) {
        snprintf(why, why_cap, "claims too long");
        return TKA_GRANT_ERROR;
    }
    size_t tl = 0;
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result rc =
        tk_sign(a->ring->signers[0], "at+jwt", (const unsigned char *)payload, (size_t)n, &out->access_token, &tl);
    pthread_rwlock_unlock(&a->ring_lock);
    if (rc != TK_OK) {
        snprintf(why, why_cap, "signing failed: %s", tk_result_str(rc));
        return TKA_GRANT_ERROR;
    }
    out->expires_in = ttl;
    if (!sid) {
        atomic_fetch_add(&a->n_issued_cc, 1);
    }
    return TKA_GRANT_OK;
}

/* ---- validation ------------------------------------------------------------------------ */

/* The policy of our own access tokens (RFC 9068). */
static const char *const own_required[] = {"jti", "sub", "client_id"};
static void own_policy(tka_authority *a, const tka_check *chk, int64_t now, const char **iss, const char **aud,
                       tk_policy *pol)
{
    iss[0] = a->cfg.issuer;
    aud[0] = chk && chk->audience ? chk->audience : NULL;
    tk_policy_init(pol, now);
    pol->leeway = a->cfg.leeway;
    pol->issuers = iss;
    pol->issuers_len = 1;
    pol->audiences = aud;
    pol->audiences_len = aud[0] ? 1 : 0;
    pol->typ = "at+jwt";
    pol->required = own_required;
    pol->required_len = 3;
    pol->sigcache = a->sigcache;
}

static int after_signature(tka_authority *a, const tk_token *t, const tka_check *chk, int64_t now, tk_verdict *v);

int tka_validate(tka_authority *a, const char *tok, size_t len, const tka_check *chk, int64_t now, tk_verdict *v,
                 tk_token **out_token)
{
    if (out_token) {
        *out_token = NULL;
    }
    const char *iss[1], *aud[1];
    tk_policy pol;
    own_policy(a, chk, now, iss, aud, &pol);
    /* Scopes are checked after revocation: a revoked token is told so
     * (401), whatever scope it lacks. */
    tk_token *t = NULL;
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result rc = tk_verify(tok, len, a->ring->verify, &pol, NULL, v, &t);
    pthread_rwlock_unlock(&a->ring_lock);
    if (rc != TK_OK) {
        return -1; /* v is unavailable */
    }
    if (v->reason != TK_REASON_VALID) {
        return 0;
    }
    int r = after_signature(a, t, chk, now, v);
    if (r == 0 && v->reason == TK_REASON_VALID && out_token) {
        *out_token = t;
    } else {
        tk_token_free(t);
    }
    return r;
}

int tka_validate_parsed(tka_authority *a, const tk_token *t, const tka_check *chk, int64_t now, tk_verdict *v)
{
    const char *iss[1], *aud[1];
    tk_policy pol;
    own_policy(a, chk, now, iss, aud, &pol);
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result rc = tk_token_verify(t, a->ring->verify, &pol, v);
    pthread_rwlock_unlock(&a->ring_lock);
    if (rc != TK_OK) {
        return -1;
    }
    if (v->reason != TK_REASON_VALID) {
        return 0;
    }
    return after_signature(a, t, chk, now, v);
}

/* Revocation, then the required scopes, of a token whose signature and
 * claims passed (the caller keeps `t`). */
static int after_signature(tka_authority *a, const tk_token *t, const tka_check *chk, int64_t now, tk_verdict *v)
{
    const char *jti = tk_token_claim_string(t, "jti");
    const char *sid = tk_token_claim_string(t, "sid");
    char reason[TKS_REASON_MAX + 1] = "";
    int64_t at = 0;
    int by_sid = 0;
    int64_t age = tka_revocations_age(a, now);
    if (age > a->cfg.max_stale) {
        /* The revocation set has not caught up with the store for longer
         * than allowed: a revocation made through another instance or the
         * CLI could be missing. Fail closed (issue 9 section 3). A
         * revocation we do hold still says so below. */
        if (!tka_is_revoked(a, jti, sid, NULL, 0, NULL, NULL)) {
            char ago[32];
            tk_format_duration(age, ago, sizeof ago);
            v->reason = TK_REASON_UNAVAILABLE;
            snprintf(v->detail, sizeof v->detail,
                     "revocation list unavailable: last caught up with the store %s ago (more than %llds); "
                     "failing closed",
                     ago, (long long)a->cfg.max_stale);
            return 0;
        }
    }
    if (tka_is_revoked(a, jti, sid, reason, sizeof reason, &at, &by_sid)) {
        char when[32], ago[32];
        tk_format_time(at, when, sizeof when);
        tk_format_duration(now - at, ago, sizeof ago);
        const char *words = reason_words(reason, by_sid);
        v->reason = TK_REASON_REVOKED;
        if (words) {
            snprintf(v->detail, sizeof v->detail, "token revoked %s ago at %s: %s", ago, when, words);
        } else {
            snprintf(v->detail, sizeof v->detail, "token revoked %s ago at %s: %s%s", ago, when,
                     reason[0] ? reason : "no reason given", by_sid ? ", session ended" : "");
        }
        return 0;
    }
    if (chk && chk->scopes_len > 0) {
        tk_policy sp;
        tk_policy_init(&sp, now);
        sp.require_exp = 0;
        sp.scopes = chk->scopes;
        sp.scopes_len = chk->scopes_len;
        size_t n = 0;
        if (tk_token_check_claims(t, &sp, v, 1, &n) != TK_OK) {
            return -1;
        }
        if (n > 0) {
            return 0;
        }
        v->reason = TK_REASON_VALID;
        v->detail[0] = '\0';
    }
    return 0;
}

int tka_revoke_token(tka_authority *a, const tks_client *client, const char *tok, size_t len, int64_t now)
{
    if (len > 10 && memcmp(tok, "tokend_rt_", 10) == 0) {
        return tka_revoke_refresh(a, client, tok, len, now);
    }
    tk_token *t = NULL;
    tk_verdict v;
    if (tk_token_parse(tok, len, NULL, &t, &v) != TK_OK) {
        return -1;
    }
    if (!t) {
        return 0; /* not a JWT of ours: nothing to revoke (RFC 7009 section 2.2) */
    }
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result rc = tk_token_verify_signature(t, a->ring->verify, &v);
    pthread_rwlock_unlock(&a->ring_lock);
    int ret = 0;
    if (rc != TK_OK || v.reason != TK_REASON_VALID || tk_token_payload_verdict(t)->reason != TK_REASON_VALID) {
        goto out; /* not signed by us: nothing to revoke */
    }
    const char *cid = tk_token_claim_string(t, "client_id");
    const char *jti = tk_token_claim_string(t, "jti");
    double exp = 0;
    if (!cid || strcmp(cid, client->id) != 0) {
        ret = 1; /* another client's token: refused (RFC 7009 section 2.1) */
        goto out;
    }
    if (!jti || !tk_token_claim_number(t, "exp", &exp) || exp <= (double)now) {
        goto out; /* expired already: nothing left to revoke */
    }
    if (tka_revoke(a, TKS_REVOKE_JTI, jti, "client", now, (int64_t)exp + a->cfg.leeway) != 0) {
        ret = -1;
    }
out:
    tk_token_free(t);
    return ret;
}

/* ---- introspection (RFC 7662) ------------------------------------------------------------ */

/* May `caller` see what this token says? Its own token (client_id), or a
 * token for an audience the caller serves (tks_client.serves). */
static int visible_to(const tk_token *t, const tks_client *caller, int64_t now)
{
    const char *cid = tk_token_claim_string(t, "client_id");
    if (cid && strcmp(cid, caller->id) == 0) {
        return 1;
    }
    if (!caller->serves[0]) {
        return 0;
    }
    /* aud may be a string or an array: let the claims check decide */
    char list[TKS_LIST_MAX + 1];
    snprintf(list, sizeof list, "%s", caller->serves);
    const char *auds[TK_LIMIT_POLICY_ITEMS];
    size_t n = 0;
    for (char *p = list; *p && n < TK_LIMIT_POLICY_ITEMS;) {
        auds[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp) {
            break;
        }
        *sp = '\0';
        p = sp + 1;
    }
    tk_policy pol;
    tk_policy_init(&pol, now);
    pol.require_exp = 0;
    pol.audiences = auds;
    pol.audiences_len = n;
    tk_verdict v;
    size_t problems = 0;
    return tk_token_check_claims(t, &pol, &v, 1, &problems) == TK_OK && problems == 0;
}

int tka_introspect(tka_authority *a, const tks_client *caller, const char *tok, size_t len, int64_t now, tk_verdict *v,
                   tk_token **out_token, int *visible)
{
    *out_token = NULL;
    *visible = 0;
    tk_token *t = NULL;
    if (tka_validate(a, tok, len, NULL, now, v, &t) != 0) {
        return -1;
    }
    if (v->reason == TK_REASON_VALID) {
        *visible = t && visible_to(t, caller, now);
        if (*visible) {
            *out_token = t;
        } else {
            tk_token_free(t);
        }
        return 0;
    }
    /* Inactive. Its reason is told only to a caller who may see the token,
     * and that needs claims we can trust: a signature of ours. */
    tk_token *p = NULL;
    tk_verdict pv;
    if (tk_token_parse(tok, len, NULL, &p, &pv) != TK_OK) {
        return -1;
    }
    if (p) {
        pthread_rwlock_rdlock(&a->ring_lock);
        tk_result rc = tk_token_verify_signature(p, a->ring->verify, &pv);
        pthread_rwlock_unlock(&a->ring_lock);
        *visible = rc == TK_OK && pv.reason == TK_REASON_VALID &&
                   tk_token_payload_verdict(p)->reason == TK_REASON_VALID && visible_to(p, caller, now);
    }
    tk_token_free(p);
    return 0;
}
