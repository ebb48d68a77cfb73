/* SPDX-License-Identifier: Apache-2.0 */
/*
 * authority.c — opening and closing the authority, its configuration and
 * its counters. The modules: keyring.c (keys), clients.c (clients and
 * throttling), tokens.c (issuance, validation, revocation), seal.c (keys at
 * rest and the master key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "authority/internal.h"

void tka_config_defaults(tka_config *c)
{
    memset(c, 0, sizeof *c);
    c->alg = TK_ALG_ES256;
    c->id_token_alg = TK_ALG_RS256;
    c->id_token_ttl = 3600;
    c->access_ttl = 900;
    c->max_ttl = 86400;
    c->rotate_every = 30 * 86400;
    c->jwks_max_age = 300;
    c->max_stale = 30;
    c->leeway = TK_LIMIT_LEEWAY_DEFAULT;
    c->fail_free = 5;
    c->fail_window = 300;
    c->fail_max_wait = 900;
    c->session_idle = 1800;
    c->session_max = 43200;
    c->refresh_ttl = 30 * 86400;
    c->code_ttl = 60;
    c->verify_cache = 100000;
    c->audit_retention = 90 * 86400;
    c->session_retention = 30 * 86400;
    c->refresh_grace = 86400;
}

/* The issuer goes into every token unescaped: allow only URL characters. */
static int valid_issuer(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 512 || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return 0;
        }
    }
    return 1;
}

/* The store's watcher thread (tks_watch): something changed elsewhere.
 * Revocations are caught up at once (that is the fan-out: a revocation at
 * one instance reaches /auth at every other in milliseconds); key changes
 * are reloaded by the next tka_maintain (within a second), which compares
 * key generations. */
static void on_store_change(int what, void *ud)
{
    tka_authority *a = ud;
    if (what & TKS_CHANGE_REVOCATIONS) {
        (void)tka_revset_refresh(a, (int64_t)time(NULL)); /* failing, maintenance tries again each second */
    }
    if (what & TKS_CHANGE_KEYS) {
        atomic_store(&a->keys_changed, 1);
    }
    if (what & TKS_CHANGE_CLIENTS) {
        tka_cache_clients_changed(a);
    }
    if (what & TKS_CHANGE_ATTEMPTS) {
        (void)tka_cache_load_attempts(a, (int64_t)time(NULL)); /* failing, the copy ages out: the store is read */
    }
}

int tka_open(tks_store *store, const tka_config *cfg, int64_t now, tka_authority **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (!cfg->issuer || !valid_issuer(cfg->issuer)) {
        snprintf(err, err_cap, "the issuer must be an http(s) URL of printable characters, without quotes");
        return -1;
    }
    if (!tk_alg_name(cfg->alg)) {
        snprintf(err, err_cap, "no signing alg configured");
        return -1;
    }
    if (cfg->access_ttl <= 0 || cfg->max_ttl < cfg->access_ttl || cfg->leeway < 0 ||
        cfg->leeway > TK_LIMIT_LEEWAY_MAX || cfg->fail_free < 0 || cfg->fail_window <= 0 || cfg->fail_max_wait <= 0 ||
        cfg->session_idle <= 0 || cfg->session_max < cfg->session_idle || cfg->refresh_ttl <= 0 || cfg->code_ttl <= 0 ||
        cfg->jwks_max_age < 0 || cfg->max_stale <= 0 || cfg->audit_retention < 0 ||
        cfg->audit_retention > TKA_RETENTION_MAX || cfg->session_retention < 0 ||
        cfg->session_retention > TKA_RETENTION_MAX || cfg->refresh_grace < 0 ||
        cfg->refresh_grace > TKA_RETENTION_MAX || cfg->verify_cache > TK_LIMIT_SIGCACHE_ENTRIES) {
        snprintf(err, err_cap,
                 "token lifetimes, leeway (0-%d s), throttling or retention (0-%d days) settings are out of range",
                 TK_LIMIT_LEEWAY_MAX, (int)(TKA_RETENTION_MAX / 86400));
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, err_cap, "libsodium failed to initialise");
        return -1;
    }
    tka_authority *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    a->store = store;
    a->cfg = *cfg;
    char *iss = strdup(cfg->issuer);
    if (!iss) {
        free(a);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    a->cfg.issuer = iss;
    pthread_rwlock_init(&a->ring_lock, NULL);
    pthread_rwlock_init(&a->rev_lock, NULL);
    pthread_mutex_init(&a->dummy_lock, NULL);
    pthread_mutex_init(&a->maint_lock, NULL);
    pthread_mutex_init(&a->hook_lock, NULL);
    pthread_mutex_init(&a->rev_refresh_lock, NULL);
    a->last_purge = now;
    a->last_store_purge = now;
    if (tka_cache_open(a) != 0) {
        snprintf(err, err_cap, "out of memory");
        tka_close(a);
        return -1;
    }
    if (!cfg->one_shot && cfg->verify_cache > 0 && tk_sigcache_new(cfg->verify_cache, &a->sigcache) != TK_OK) {
        snprintf(err, err_cap, "out of memory for the verify cache (%zu entries)", cfg->verify_cache);
        tka_close(a);
        return -1;
    }
    if (RAND_bytes(a->dummy_hash, sizeof a->dummy_hash) != 1 ||
        RAND_bytes(a->rev_hash_key, sizeof a->rev_hash_key) != 1) {
        snprintf(err, err_cap, "no randomness");
        tka_close(a);
        return -1;
    }
    if (tka_ring_load(a, now, err, err_cap) != 0) {
        tka_close(a);
        return -1;
    }
    tka_revset_init(&a->rev, a->rev_hash_key);
    /* Loads the revocation set (not with cfg.lazy_revocations). */
    if (tka_revset_refresh(a, now) != 0) {
        snprintf(err, err_cap, "cannot load revocations: %s", tks_errmsg(store));
        tka_close(a);
        return -1;
    }
    /* On a shared store (PostgreSQL), hear about revocations and key
     * changes made elsewhere as they commit, instead of a second later. */
    tks_result wr = cfg->one_shot ? TKS_NOT_FOUND : tks_watch(store, on_store_change, a);
    if (wr != TKS_OK && wr != TKS_NOT_FOUND) {
        snprintf(err, err_cap, "cannot watch the store for changes: %s", tks_errmsg(store));
        tka_close(a);
        return -1;
    }
    atomic_store(&a->watched, wr == TKS_OK);
    *out = a;
    return 0;
}

void tka_close(tka_authority *a)
{
    if (!a) {
        return;
    }
    (void)tks_watch(a->store, NULL, NULL); /* no callback into `a` after this */
    tka_cache_free(a);
    tk_sigcache_free(a->sigcache);
    tka_ring_free(a->ring);
    tka_revset_free(&a->rev);
    pthread_rwlock_destroy(&a->ring_lock);
    pthread_rwlock_destroy(&a->rev_lock);
    pthread_mutex_destroy(&a->dummy_lock);
    pthread_mutex_destroy(&a->maint_lock);
    pthread_mutex_destroy(&a->hook_lock);
    pthread_mutex_destroy(&a->rev_refresh_lock);
    free((void *)(uintptr_t)a->cfg.issuer);
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
}

const tka_config *tka_get_config(const tka_authority *a)
{
    return &a->cfg;
}

void tka_counters_get(tka_authority *a, tka_counters *out)
{
    out->issued_client_credentials = atomic_load(&a->n_issued_cc);
    out->client_auth_failed = atomic_load(&a->n_auth_failed);
    out->client_auth_throttled = atomic_load(&a->n_auth_throttled);
    out->keys_rotated = atomic_load(&a->n_rotated);
    out->revocations = atomic_load(&a->n_revocations);
    out->issued_authorization_code = atomic_load(&a->n_issued_code);
    out->issued_refresh_token = atomic_load(&a->n_issued_refresh);
    out->refresh_reuse = atomic_load(&a->n_refresh_reuse);
    out->logins = atomic_load(&a->n_logins);
    out->login_failed = atomic_load(&a->n_login_failed);
    out->login_throttled = atomic_load(&a->n_login_throttled);
    out->codes_issued = atomic_load(&a->n_codes);
    tk_sigcache_stats st;
    tk_sigcache_stats_get(a->sigcache, &st);
    out->verify_cache_hits = st.hits;
    out->verify_cache_misses = st.misses;
    out->verify_cache_entries = st.entries;
}
