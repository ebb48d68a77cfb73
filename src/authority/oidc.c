/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oidc.c — what OpenID Connect adds to the authority: ID tokens (OpenID
 * Connect Core 1.0 sections 2 and 3.1.3.6), id_token_hint checks, logout
 * tokens (OpenID Connect Back-Channel Logout 1.0 section 2.4), remembered
 * consent, and the hook that tells the server a sign-in ended.
 *
 * Invariants:
 *  - An ID token is issued only with an access token, from a code or a
 *    refresh token whose scope holds "openid"; its at_hash binds the two.
 *  - The nonce of the authorization request is copied from the code,
 *    never taken from the token request.
 *  - An id_token_hint is believed only when our key ring verifies it and
 *    its iss is ours; its expiry does not matter (Core section 3.1.2.1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authority/internal.h"

#define BACKCHANNEL_EVENT "http://schemas.openid.net/event/backchannel-logout"
#define LOGOUT_TOKEN_TTL 120

tk_alg tka_id_token_alg(const tka_authority *a, const tks_client *c)
{
    if (c && c->id_token_alg[0]) {
        return tk_alg_from_name(c->id_token_alg, strlen(c->id_token_alg));
    }
    return a->cfg.id_token_alg != TK_ALG_UNSET ? a->cfg.id_token_alg : a->cfg.alg;
}

size_t tka_id_token_algs(const tka_authority *a, tk_alg algs[TKA_ALGS_MAX])
{
    tk_alg all[TKA_ALGS_MAX];
    size_t n = tka_ring_algs(a, all), k = 0;
    /* A shared secret cannot sign for a relying party: it would have to
     * hold our key to verify (Core section 10.1 keys HS* to the client's
     * own secret, which tokend does not keep). */
    for (size_t i = 0; i < n; i++) {
        const char *name = tk_alg_name(all[i]);
        if (name && strncmp(name, "HS", 2) != 0) {
            algs[k++] = all[i];
        }
    }
    return k;
}

int tka_id_token_alg_ok(const tka_authority *a, const char *name)
{
    tk_alg want = tk_alg_from_name(name, strlen(name));
    tk_alg algs[TKA_ALGS_MAX];
    size_t n = tka_id_token_algs(a, algs);
    for (size_t i = 0; want != TK_ALG_UNSET && i < n; i++) {
        if (algs[i] == want) {
            return 1;
        }
    }
    return 0;
}

/* Core section 3.1.3.6: the base64url of the left half of the hash of the
 * access token's ASCII, with the hash of the ID token's alg (SHA-512 for
 * EdDSA over Ed25519). */
static int at_hash(tk_alg alg, const char *access_token, char *out, size_t cap)
{
    const EVP_MD *md = NULL;
    switch (alg) {
    case TK_ALG_HS384:
    case TK_ALG_RS384:
    case TK_ALG_PS384:
    case TK_ALG_ES384:
        md = EVP_sha384();
        break;
    case TK_ALG_HS512:
    case TK_ALG_RS512:
    case TK_ALG_PS512:
    case TK_ALG_ES512:
    case TK_ALG_EDDSA:
        md = EVP_sha512();
        break;
    default:
        md = EVP_sha256();
        break;
    }
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned int hl = 0;
    if (EVP_Digest(access_token, strlen(access_token), h, &hl, md, NULL) != 1) {
        return -1;
    }
    return tk_b64url_encode(h, hl / 2, out, cap, NULL) == TK_OK ? 0 : -1;
}

static int set_str(json_t *o, const char *name, const char *v)
{
    return json_object_set_new(o, name, json_string(v)) == 0 ? 0 : -1;
}

static int set_int(json_t *o, const char *name, int64_t v)
{
    return json_object_set_new(o, name, json_integer((json_int_t)v)) == 0 ? 0 : -1;
}

/* The standard claims the scope releases (Core section 5.4); empty ones
 * are left out. */
static int profile_claims(json_t *o, const tks_user *u, const char *scope)
{
    int rc = 0;
    if (tka_in_list(scope, "profile", 7)) {
        const char *names[] = {"name", "given_name", "family_name", "preferred_username"};
        const char *vals[] = {u->name, u->given_name, u->family_name, u->preferred_username};
        for (size_t i = 0; i < 4; i++) {
            if (vals[i][0]) {
                rc |= set_str(o, names[i], vals[i]);
            }
        }
    }
    if (tka_in_list(scope, "email", 5) && u->email[0]) {
        rc |= set_str(o, "email", u->email);
        rc |= json_object_set_new(o, "email_verified", json_boolean(u->email_verified));
    }
    return rc;
}

/* Signs `claims` with the active key of `alg` and header typ `typ`. */
static tka_grant_result sign_claims(tka_authority *a, tk_alg alg, const char *typ, json_t *claims, char **out,
                                    char *why, size_t why_cap)
{
    char *payload = json_dumps(claims, JSON_COMPACT);
    if (!payload) {
        snprintf(why, why_cap, "out of memory");
        return TKA_GRANT_ERROR;
    }
    const tk_key *k = tka_ring_signer_lock(a, alg);
    if (!k) {
        free(payload);
        snprintf(why, why_cap, "no %s signing key: this server keeps %s keys; register the client with one of them",
                 tk_alg_name(alg) ? tk_alg_name(alg) : "such", tk_alg_name(a->cfg.alg));
        return TKA_GRANT_ERROR;
    }
    size_t tl = 0;
    tk_result rc = tk_sign(k, typ, (const unsigned char *)payload, strlen(payload), out, &tl);
    pthread_rwlock_unlock(&a->ring_lock);
    OPENSSL_cleanse(payload, strlen(payload));
    free(payload);
    if (rc != TK_OK) {
        snprintf(why, why_cap, "signing failed: %s", tk_result_str(rc));
        return TKA_GRANT_ERROR;
    }
    return TKA_GRANT_OK;
}

tka_grant_result tka_issue_id_token(tka_authority *a, const tks_client *c, const tks_user *u, const char *sid,
                                    const char *scope, const char *nonce, int64_t auth_time, const char *access_token,
                                    int64_t now, char **out, char *why, size_t why_cap)
{
    *out = NULL;
    tk_alg alg = tka_id_token_alg(a, c);
    char ah[96];
    json_t *o = json_object();
    json_t *amr = json_array();
    int bad = !o || !amr || at_hash(alg, access_token, ah, sizeof ah) != 0;
    if (!bad) {
        bad |= set_str(o, "iss", a->cfg.issuer);
        bad |= set_str(o, "sub", u->id);
        bad |= set_str(o, "aud", c->id);
        bad |= set_int(o, "exp", now + a->cfg.id_token_ttl);
        bad |= set_int(o, "iat", now);
        bad |= set_int(o, "auth_time", auth_time > 0 ? auth_time : now);
        if (nonce && nonce[0]) {
            bad |= set_str(o, "nonce", nonce);
        }
        bad |= set_str(o, "azp", c->id);
        if (sid && sid[0]) {
            bad |= set_str(o, "sid", sid);
        }
        bad |= set_str(o, "at_hash", ah);
        /* Every sign-in here checks a password (RFC 8176 "pwd"). */
        bad |= json_array_append_new(amr, json_string("pwd")) != 0;
        bad |= json_object_set(o, "amr", amr) != 0;
        bad |= profile_claims(o, u, scope);
    }
    json_decref(amr);
    tka_grant_result g = TKA_GRANT_ERROR;
    if (bad) {
        snprintf(why, why_cap, "cannot build the ID token's claims");
    } else {
        g = sign_claims(a, alg, "JWT", o, out, why, why_cap);
    }
    json_decref(o);
    return g;
}

int tka_id_token_hint(tka_authority *a, const char *hint, size_t len, int64_t now, tka_hint *out, char *why,
                      size_t why_cap)
{
    (void)now;
    memset(out, 0, sizeof *out);
    tk_token *t = NULL;
    tk_verdict v;
    if (tk_token_parse(hint, len, NULL, &t, &v) != TK_OK || !t) {
        snprintf(why, why_cap, "id_token_hint is not a JWT");
        return 1;
    }
    /* The hint may have expired: judge it at the time it was issued, so
     * that only the signature, iss and typ matter. */
    double iat = 0;
    if (!tk_token_claim_number(t, "iat", &iat) || iat < 0 || iat > 4e12) {
        tk_token_free(t);
        snprintf(why, why_cap, "id_token_hint has no iat: not an ID token of ours");
        return 1;
    }
    const char *iss[1] = {a->cfg.issuer};
    tk_policy pol;
    tk_policy_init(&pol, (int64_t)iat);
    pol.issuers = iss;
    pol.issuers_len = 1;
    pol.typ = "JWT";
    pthread_rwlock_rdlock(&a->ring_lock);
    tk_result rc = tk_token_verify(t, a->ring->verify, &pol, &v);
    pthread_rwlock_unlock(&a->ring_lock);
    if (rc != TK_OK || v.reason != TK_REASON_VALID) {
        tk_token_free(t);
        snprintf(why, why_cap, "id_token_hint was not issued by this server (%s)",
                 rc == TK_OK ? tk_reason_code(v.reason) : "unavailable");
        return 1;
    }
    const char *sub = tk_token_claim_string(t, "sub");
    const char *aud = tk_token_claim_string(t, "aud");
    const char *sid = tk_token_claim_string(t, "sid");
    if (!sub || !aud || strlen(sub) > TKS_ID_MAX || strlen(aud) > TKS_ID_MAX || (sid && strlen(sid) > TKS_SID_MAX)) {
        tk_token_free(t);
        snprintf(why, why_cap, "id_token_hint lacks sub or aud");
        return 1;
    }
    snprintf(out->sub, sizeof out->sub, "%s", sub);
    snprintf(out->client_id, sizeof out->client_id, "%s", aud);
    snprintf(out->sid, sizeof out->sid, "%s", sid ? sid : "");
    tk_token_free(t);
    return 0;
}

int tka_logout_token(tka_authority *a, const tks_client *c, const char *user_id, const char *sid, int64_t now,
                     char **out)
{
    *out = NULL;
    char jti[48];
    if (tka_random_b64(16, jti, sizeof jti) != 0) {
        return -1;
    }
    json_t *o = json_object();
    json_t *events = json_object();
    int bad = !o || !events;
    if (!bad) {
        bad |= set_str(o, "iss", a->cfg.issuer);
        if (user_id && user_id[0]) {
            bad |= set_str(o, "sub", user_id);
        }
        bad |= set_str(o, "aud", c->id);
        bad |= set_int(o, "iat", now);
        bad |= set_int(o, "exp", now + LOGOUT_TOKEN_TTL);
        bad |= set_str(o, "jti", jti);
        bad |= set_str(o, "sid", sid);
        bad |= json_object_set_new(events, BACKCHANNEL_EVENT, json_object()) != 0;
        bad |= json_object_set(o, "events", events) != 0;
    }
    json_decref(events);
    char why[160];
    int rc = -1;
    if (!bad && sign_claims(a, tka_id_token_alg(a, c), "logout+jwt", o, out, why, sizeof why) == TKA_GRANT_OK) {
        rc = 0;
    }
    json_decref(o);
    return rc;
}

/* ---- consent ------------------------------------------------------------------------- */

int tka_consent_needed(tka_authority *a, const tks_client *c, const char *user_id, const char *scope)
{
    if (!c->consent) {
        return 0; /* first-party: no page */
    }
    tks_consent k;
    tks_result rc = tks_consent_get(a->store, user_id, c->id, &k);
    if (rc == TKS_NOT_FOUND) {
        return 1;
    }
    if (rc != TKS_OK) {
        return -1;
    }
    /* Remembered when every scope asked for now was allowed before. */
    return tka_list_subset(scope, k.scope, NULL, 0) ? 0 : 1;
}

int tka_consent_grant(tka_authority *a, const tks_client *c, const char *user_id, const char *scope, int64_t now)
{
    tks_consent k;
    memset(&k, 0, sizeof k);
    snprintf(k.user_id, sizeof k.user_id, "%s", user_id);
    snprintf(k.client_id, sizeof k.client_id, "%s", c->id);
    /* A new grant adds to what was allowed before (the page lists only the
     * scopes asked for now). */
    tks_consent old;
    tks_result rc = tks_consent_get(a->store, user_id, c->id, &old);
    if (rc != TKS_OK && rc != TKS_NOT_FOUND) {
        return -1;
    }
    snprintf(k.scope, sizeof k.scope, "%s", scope);
    if (rc == TKS_OK) {
        const char *p = old.scope;
        while (*p) {
            const char *e = strchr(p, ' ');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            size_t have = strlen(k.scope);
            if (n > 0 && !tka_in_list(k.scope, p, n) && have + 1 + n < sizeof k.scope) {
                snprintf(k.scope + have, sizeof k.scope - have, "%s%.*s", have ? " " : "", (int)n, p);
            }
            if (!e) {
                break;
            }
            p = e + 1;
        }
    }
    k.granted_at = now;
    if (tks_consent_put(a->store, &k) != TKS_OK ||
        tks_audit(a->store, now, "consent_granted", c->id, NULL, user_id) != TKS_OK) {
        return -1;
    }
    return 0;
}

int tka_consent_revoke(tka_authority *a, const char *user_id, const char *client_id, int64_t now)
{
    int n = 0;
    if (tks_consent_delete(a->store, user_id, client_id, &n) != TKS_OK ||
        (n > 0 && tks_audit(a->store, now, "consent_revoked", client_id, NULL, user_id) != TKS_OK)) {
        return -1;
    }
    return n;
}

/* ---- the end of a sign-in ------------------------------------------------------------------- */

void tka_set_signout_hook(tka_authority *a, void (*fn)(void *ud, const char *sid, const char *reason), void *ud)
{
    pthread_mutex_lock(&a->hook_lock);
    a->signout_ud = ud;
    a->signout_fn = fn;
    pthread_mutex_unlock(&a->hook_lock);
}

void tka_signout_notify(tka_authority *a, const char *sid, const char *reason)
{
    pthread_mutex_lock(&a->hook_lock);
    void (*fn)(void *, const char *, const char *) = a->signout_fn;
    void *ud = a->signout_ud;
    pthread_mutex_unlock(&a->hook_lock);
    if (fn) {
        fn(ud, sid, reason);
    }
}
