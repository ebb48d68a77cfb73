/* SPDX-License-Identifier: Apache-2.0 */
/*
 * users.c — people who sign in: Argon2id password hashes (libsodium
 * crypto_pwhash_str, interactive limits), sign-in with throttling per
 * account and per address, and one answer for "no such user" and "wrong
 * password" that also costs the same time (an unknown user is verified
 * against a dummy hash).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "authority/internal.h"

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

static int hash_password(const char *pw, size_t len, char out[crypto_pwhash_STRBYTES])
{
    return crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

static int check_password_rules(const char *pw, size_t len, char *err, size_t err_cap)
{
    if (len < PASSWORD_MIN || len > PASSWORD_MAX) {
        snprintf(err, err_cap, "a password is %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
        return -1;
    }
    if (memchr(pw, '\0', len)) {
        snprintf(err, err_cap, "a password cannot contain a NUL byte");
        return -1;
    }
    return 0;
}

/* A profile field: valid UTF-8 without control characters (C0, DEL, C1),
 * at most TKS_PROFILE_MAX bytes. */
static int profile_text_ok(const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t n = strnlen(v, TKS_PROFILE_MAX + 1);
    if (n > TKS_PROFILE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4)) {
            return 0;
        }
        uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

/* An e-mail address as people type one: local@domain, printable ASCII in
 * the domain, no space anywhere, at most 254 bytes (RFC 5321 section
 * 4.5.3.1.3). Whether it is deliverable is the verifier's business. */
static int email_ok(const char *e)
{
    size_t n = strlen(e);
    const char *at = strrchr(e, '@');
    if (n < 3 || n > 254 || !at || at == e || at[1] == '\0' || strchr(e, '@') != at) {
        return 0;
    }
    for (const char *p = e; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7F || (p > at && c >= 0x80)) {
            return 0;
        }
    }
    return strchr(at + 1, '.') != NULL && at[strlen(at) - 1] != '.' && profile_text_ok(e);
}

int tka_profile_check(const tks_user *p, char *err, size_t err_cap)
{
    const struct {
        const char *v, *what;
    } f[] = {{p->name, "name"},
             {p->given_name, "given name"},
             {p->family_name, "family name"},
             {p->preferred_username, "preferred username"}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!profile_text_ok(f[i].v)) {
            snprintf(err, err_cap, "the %s must be UTF-8 without control characters, at most %d bytes", f[i].what,
                     TKS_PROFILE_MAX);
            return -1;
        }
    }
    if (p->email[0] && !email_ok(p->email)) {
        snprintf(err, err_cap, "'%.80s' is not an e-mail address (local@domain.tld, no spaces, at most 254 bytes)",
                 p->email);
        return -1;
    }
    if (p->email_verified && !p->email[0]) {
        snprintf(err, err_cap, "an e-mail address cannot be verified without one");
        return -1;
    }
    return 0;
}

int tka_user_set_profile(tka_authority *a, const tks_user *profile, int64_t now, char *err, size_t err_cap)
{
    if (tka_profile_check(profile, err, err_cap) != 0) {
        return -1;
    }
    tks_result rc = tks_user_set_profile(a->store, profile);
    if (rc != TKS_OK) {
        snprintf(err, err_cap, "%s", rc == TKS_NOT_FOUND ? "no such user" : tks_errmsg(a->store));
        return -1;
    }
    if (tks_audit(a->store, now, "user_profile_changed", NULL, NULL, profile->id) != TKS_OK) {
        snprintf(err, err_cap, "the profile was changed, but the audit event could not be recorded: %s",
                 tks_errmsg(a->store));
        return -1;
    }
    return 0;
}

int tka_user_create(tka_authority *a, const char *id, const char *password, size_t password_len, int64_t now, char *err,
                    size_t err_cap)
{
    return tka_user_create_ex(a, id, password, password_len, NULL, now, err, err_cap);
}

int tka_user_create_ex(tka_authority *a, const char *id, const char *password, size_t password_len,
                       const tks_user *profile, int64_t now, char *err, size_t err_cap)
{
    if (!id || !tka_valid_id(id, TKS_ID_MAX)) {
        snprintf(err, err_cap, "user names are 1 to %d of A-Z a-z 0-9 . _ ~ -", TKS_ID_MAX);
        return -1;
    }
    if (check_password_rules(password, password_len, err, err_cap) != 0) {
        return -1;
    }
    if (profile && tka_profile_check(profile, err, err_cap) != 0) {
        return -1;
    }
    tks_user u;
    if (profile) {
        u = *profile; /* the profile goes in with the user, in one row */
    } else {
        memset(&u, 0, sizeof u);
    }
    snprintf(u.id, sizeof u.id, "%s", id);
    char h[crypto_pwhash_STRBYTES];
    if (hash_password(password, password_len, h) != 0) {
        snprintf(err, err_cap, "cannot hash the password (out of memory?)");
        return -1;
    }
    snprintf(u.pwhash, sizeof u.pwhash, "%s", h);
    u.created_at = now;
    u.password_changed_at = now;
    tks_result rc = tks_user_insert(a->store, &u);
    OPENSSL_cleanse(h, sizeof h);
    if (rc != TKS_OK) {
        snprintf(err, err_cap, "%s", rc == TKS_EXISTS ? "a user with that name exists" : tks_errmsg(a->store));
        return -1;
    }
    if (tks_audit(a->store, now, "user_created", NULL, NULL, id) != TKS_OK) {
        snprintf(err, err_cap, "the user was created, but the audit event could not be recorded: %s",
                 tks_errmsg(a->store));
        return -1;
    }
    return 0;
}

int tka_user_set_password(tka_authority *a, const char *id, const char *password, size_t password_len, int64_t now,
                          char *err, size_t err_cap)
{
    if (check_password_rules(password, password_len, err, err_cap) != 0) {
        return -1;
    }
    char h[crypto_pwhash_STRBYTES];
    if (hash_password(password, password_len, h) != 0) {
        snprintf(err, err_cap, "cannot hash the password (out of memory?)");
        return -1;
    }
    tks_result rc = tks_user_set_password(a->store, id, h, now);
    OPENSSL_cleanse(h, sizeof h);
    if (rc != TKS_OK) {
        snprintf(err, err_cap, "%s", rc == TKS_NOT_FOUND ? "no such user" : tks_errmsg(a->store));
        return -1;
    }
    if (tks_audit(a->store, now, "password_changed", NULL, NULL, id) != TKS_OK) {
        snprintf(err, err_cap, "the password was changed, but the audit event could not be recorded: %s",
                 tks_errmsg(a->store));
        return -1;
    }
    return 0;
}

/* A hash to verify against when the user does not exist, made once. */
static const char *dummy_hash(tka_authority *a)
{
    pthread_mutex_lock(&a->dummy_lock);
    if (!a->dummy_pwhash[0]) {
        char pw[32];
        char h[crypto_pwhash_STRBYTES];
        randombytes_buf(pw, sizeof pw);
        if (hash_password(pw, sizeof pw, h) == 0) {
            snprintf(a->dummy_pwhash, sizeof a->dummy_pwhash, "%s", h);
        }
        sodium_memzero(pw, sizeof pw);
    }
    pthread_mutex_unlock(&a->dummy_lock);
    return a->dummy_pwhash;
}

int64_t tka_login_wait(tka_authority *a, const char *user, size_t user_len, const char *ip, int64_t now)
{
    int64_t wait = tka_throttle_wait(a, 'u', user, user_len, ip, now);
    if (wait > 0) {
        atomic_fetch_add(&a->n_login_throttled, 1);
    }
    return wait; /* -1: the counters cannot be read */
}

tka_login_result tka_user_login(tka_authority *a, const char *user, size_t user_len, const char *password,
                                size_t password_len, const char *ip, int64_t now, tks_user *out, int64_t *retry_after)
{
    *retry_after = 0;
    memset(out, 0, sizeof *out);
    int64_t wait = tka_throttle_wait(a, 'u', user, user_len, ip, now);
    if (wait < 0) {
        return TKA_LOGIN_ERROR; /* the counters cannot be read: fail closed */
    }
    if (wait > 0) {
        *retry_after = wait;
        atomic_fetch_add(&a->n_login_throttled, 1);
        return TKA_LOGIN_THROTTLED;
    }
    char idz[TKS_ID_MAX + 1];
    int found = 0;
    if (user_len > 0 && user_len <= TKS_ID_MAX && !memchr(user, '\0', user_len)) {
        memcpy(idz, user, user_len);
        idz[user_len] = '\0';
        tks_result rc = tks_user_get(a->store, idz, out);
        if (rc == TKS_ERR || rc == TKS_BUSY) {
            return TKA_LOGIN_ERROR;
        }
        found = rc == TKS_OK;
    }
    const char *h = found ? out->pwhash : dummy_hash(a);
    int ok = password_len <= PASSWORD_MAX && h[0] && crypto_pwhash_str_verify(h, password, password_len) == 0;
    OPENSSL_cleanse(out->pwhash, sizeof out->pwhash);
    /* Every outcome is a security event: if it cannot be recorded, the
     * answer is 503 and no session starts (SECURITY.md rule 20). */
    if (!found || !ok) {
        int64_t counted = tka_throttle_fail(a, 'u', user, user_len, ip, now);
        atomic_fetch_add(&a->n_login_failed, 1);
        tks_result ar = tks_audit(a->store, now, "login_failed", NULL, ip, found ? out->id : "unknown user");
        memset(out, 0, sizeof *out);
        if (ar != TKS_OK || counted < 0) {
            return TKA_LOGIN_ERROR;
        }
        if (counted > 0) { /* a block made elsewhere had not reached us yet */
            *retry_after = counted;
            atomic_fetch_add(&a->n_login_throttled, 1);
            return TKA_LOGIN_THROTTLED;
        }
        return TKA_LOGIN_BAD;
    }
    tka_throttle_success(a, 'u', user, user_len, ip, now);
    if (out->disabled) {
        return tks_audit(a->store, now, "login_disabled", NULL, ip, out->id) == TKS_OK ? TKA_LOGIN_DISABLED
                                                                                       : TKA_LOGIN_ERROR;
    }
    if (tks_audit(a->store, now, "login", NULL, ip, out->id) != TKS_OK) {
        return TKA_LOGIN_ERROR;
    }
    atomic_fetch_add(&a->n_logins, 1);
    return TKA_LOGIN_OK;
}

int tka_userinfo(tka_authority *a, const char *tok, size_t len, int64_t now, tk_verdict *v, tks_user *user, char *scope,
                 size_t scope_cap)
{
    memset(user, 0, sizeof *user);
    scope[0] = '\0';
    static const char *const need[] = {"openid"};
    tka_check chk = {NULL, need, 1, NULL, 0};
    tk_token *t = NULL;
    if (tka_validate(a, tok, len, &chk, now, v, &t) != 0) {
        return -1;
    }
    if (v->reason != TK_REASON_VALID) {
        return 0;
    }
    const char *sub = tk_token_claim_string(t, "sub");
    const char *sid = tk_token_claim_string(t, "sid");
    const char *sc = tk_token_claim_string(t, "scope");
    int ret = 0;
    if (!sub || !sid) {
        /* client_credentials: the subject is the client itself */
        v->reason = TK_REASON_INVALID_CLAIM;
        snprintf(v->detail, sizeof v->detail,
                 "the token was issued to client '%.64s' for itself (client_credentials), not for a user who signed "
                 "in: /userinfo describes users",
                 sub ? sub : "?");
        goto out;
    }
    tks_result rc = tks_user_get(a->store, sub, user);
    OPENSSL_cleanse(user->pwhash, sizeof user->pwhash);
    if (rc == TKS_NOT_FOUND) {
        v->reason = TK_REASON_INVALID_CLAIM;
        snprintf(v->detail, sizeof v->detail, "user '%.64s' (the token's sub) no longer exists", sub);
        goto out;
    }
    if (rc != TKS_OK) {
        ret = -1;
        goto out;
    }
    if (user->disabled) {
        v->reason = TK_REASON_REVOKED;
        snprintf(v->detail, sizeof v->detail, "user '%.64s' is disabled", sub);
        goto out;
    }
    snprintf(scope, scope_cap, "%s", sc ? sc : "");
out:
    if (v->reason != TK_REASON_VALID) {
        memset(user, 0, sizeof *user);
    }
    tk_token_free(t);
    return ret;
}
