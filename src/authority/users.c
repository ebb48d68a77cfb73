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

int tka_user_create(tka_authority *a, const char *id, const char *password, size_t password_len, int64_t now, char *err,
                    size_t err_cap)
{
    if (!id || !tka_valid_id(id, TKS_ID_MAX)) {
        snprintf(err, err_cap, "user names are 1 to %d of A-Z a-z 0-9 . _ ~ -", TKS_ID_MAX);
        return -1;
    }
    if (check_password_rules(password, password_len, err, err_cap) != 0) {
        return -1;
    }
    tks_user u;
    memset(&u, 0, sizeof u);
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
