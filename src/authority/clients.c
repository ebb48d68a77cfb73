/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clients.c — OAuth clients: creation with a one-time secret, and client
 * authentication (RFC 6749 section 2.3.1) with throttling of failures.
 *
 * Client secrets are 256 random bits with a recognisable prefix (so secret
 * scanners can spot leaks); the store keeps their SHA-256 only. Guessing a
 * 256-bit secret is hopeless, so a fast hash is safe and lets issuance run
 * at thousands of grants a second (DESIGN.md). The comparison is constant
 * time, and an unknown client costs the same hash and comparison as a
 * known one, so timing says nothing about which ids exist.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "authority/internal.h"

#define SECRET_PREFIX "tokend_cs_"

int tka_valid_id(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '~' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

int tka_valid_scope_list(const char *s)
{
    size_t n = strlen(s);
    if (n > TKS_LIST_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            if (i == 0 || i == n - 1 || s[i - 1] == ' ') {
                return 0;
            }
        } else if (c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e) {
            return 0;
        }
    }
    return 1;
}

/* One redirect URI: absolute, no fragment, printable ASCII; https, or http
 * on a loopback host, or a private-use scheme containing a dot (RFC 8252). */
static int valid_redirect(const char *u, size_t n)
{
    if (n == 0 || n > TKS_URI_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '"' || c == '<' || c == '>' || c == '\\') {
            return 0;
        }
    }
    if (n > 8 && strncmp(u, "https://", 8) == 0) {
        return 1;
    }
    static const char *const loop[] = {"http://localhost", "http://127.0.0.1", "http://[::1]"};
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(loop[i]);
        if (n > l && strncmp(u, loop[i], l) == 0 && (u[l] == ':' || u[l] == '/')) {
            return 1;
        }
    }
    const char *colon = memchr(u, ':', n);
    if (!colon || colon == u) {
        return 0;
    }
    int dot = 0;
    for (const char *p = u; p < colon; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+')) {
            return 0;
        }
        dot |= c == '.';
    }
    return dot && strncmp(u, "http:", 5) != 0 && strncmp(u, "javascript:", 11) != 0;
}

static int valid_redirect_list(const char *list)
{
    if (strlen(list) > TKS_URIS_MAX) {
        return 0;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!valid_redirect(p, n)) {
            return 0;
        }
        if (!e) {
            break;
        }
        p = e + 1;
    }
    return 1;
}

int tka_client_create(tka_authority *a, const char *id, const char *name, const char *scopes, const char *audiences,
                      int64_t ttl, int64_t now, tks_client *out, char *secret, char *err, size_t err_cap)
{
    return tka_client_create_ex(a, id, name, scopes, audiences, ttl, "", 0, NULL, now, out, secret, err, err_cap);
}

int tka_client_create_ex(tka_authority *a, const char *id, const char *name, const char *scopes, const char *audiences,
                         int64_t ttl, const char *redirect_uris, int is_public, const char *serves, int64_t now,
                         tks_client *out, char *secret, char *err, size_t err_cap)
{
    return tka_client_create_oidc(a, id, name, scopes, audiences, ttl, redirect_uris, is_public, serves, NULL, now, out,
                                  secret, err, err_cap);
}

/* A back-channel logout URI: https, or http to a loopback address (OpenID
 * Connect Back-Channel Logout 1.0 section 2.2), no fragment. */
static int valid_backchannel(const char *u)
{
    size_t n = strlen(u);
    return valid_redirect(u, n) && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

/* The OpenID Connect settings of a client being made (o may be NULL). */
static int oidc_settings(tka_authority *a, const tka_client_oidc *o, const char *redirect_uris, tks_client *out,
                         char *err, size_t err_cap)
{
    if (!o) {
        return 0;
    }
    const char *bcl = o->backchannel_logout_uri;
    if (bcl && bcl[0]) {
        if (!valid_backchannel(bcl)) {
            snprintf(err, err_cap,
                     "the back-channel logout URI must be https://..., or http:// to localhost, 127.0.0.1 or [::1], "
                     "without a fragment");
            return -1;
        }
        snprintf(out->backchannel_logout_uri, sizeof out->backchannel_logout_uri, "%s", bcl);
    }
    if (o->id_token_alg && o->id_token_alg[0]) {
        if (!tka_id_token_alg_ok(a, o->id_token_alg)) {
            tk_alg algs[2];
            size_t n = tka_id_token_algs(a, algs);
            snprintf(err, err_cap, "ID tokens here are signed with %s%s%s, not '%.16s'", tk_alg_name(algs[0]),
                     n > 1 ? " or " : "", n > 1 ? tk_alg_name(algs[1]) : "", o->id_token_alg);
            return -1;
        }
        snprintf(out->id_token_alg, sizeof out->id_token_alg, "%s", o->id_token_alg);
    }
    out->consent = o->consent ? 1 : 0;
    if ((out->consent || out->backchannel_logout_uri[0]) && !redirect_uris[0]) {
        snprintf(err, err_cap, "%s is for clients that sign users in: give the client a --redirect-uri",
                 out->consent ? "--consent" : "--backchannel-logout-uri");
        return -1;
    }
    return 0;
}

int tka_client_create_oidc(tka_authority *a, const char *id, const char *name, const char *scopes,
                           const char *audiences, int64_t ttl, const char *redirect_uris, int is_public,
                           const char *serves, const tka_client_oidc *oidc, int64_t now, tks_client *out, char *secret,
                           char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    char gen_id[32];
    if (!name || !name[0] || strlen(name) > TKS_NAME_MAX) {
        snprintf(err, err_cap, "a client needs a name of 1 to %d bytes", TKS_NAME_MAX);
        return -1;
    }
    if (!id) {
        if (tka_valid_id(name, TKS_ID_MAX)) {
            id = name;
        } else {
            if (tka_random_b64(12, gen_id + 3, sizeof gen_id - 3) != 0) {
                snprintf(err, err_cap, "no randomness");
                return -1;
            }
            memcpy(gen_id, "cl_", 3);
            id = gen_id;
        }
    }
    if (!tka_valid_id(id, TKS_ID_MAX)) {
        snprintf(err, err_cap, "client ids are 1 to %d of A-Z a-z 0-9 . _ ~ -", TKS_ID_MAX);
        return -1;
    }
    if (!scopes || !tka_valid_scope_list(scopes)) {
        snprintf(err, err_cap, "scopes must be space-separated scope tokens (RFC 6749 section 3.3)");
        return -1;
    }
    if (audiences) {
        /* Each audience must fit the aud of a code or refresh token. */
        for (const char *p = audiences; *p;) {
            const char *e = strchr(p, ' ');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n > TKS_ID_MAX * 2) {
                snprintf(err, err_cap, "an audience is at most %d bytes", TKS_ID_MAX * 2);
                return -1;
            }
            if (!e) {
                break;
            }
            p = e + 1;
        }
    }
    if (!audiences || !audiences[0] || !tka_valid_scope_list(audiences)) {
        snprintf(err, err_cap, "a client needs at least one audience (--aud), without spaces or quotes");
        return -1;
    }
    if (ttl <= 0) {
        ttl = a->cfg.access_ttl;
    }
    if (ttl > a->cfg.max_ttl) {
        snprintf(err, err_cap, "ttl %llds is longer than the maximum %llds", (long long)ttl, (long long)a->cfg.max_ttl);
        return -1;
    }
    if (!redirect_uris || !valid_redirect_list(redirect_uris)) {
        snprintf(err, err_cap,
                 "redirect URIs must be exact absolute URIs without fragments: https://..., "
                 "http://localhost..., http://127.0.0.1..., or a private-use scheme like "
                 "com.example.app:/cb");
        return -1;
    }
    if (serves && serves[0] && (!tka_valid_scope_list(serves) || strlen(serves) > TKS_LIST_MAX)) {
        snprintf(err, err_cap, "served audiences (--serves) must be space-separated, without quotes");
        return -1;
    }
    if (is_public && serves && serves[0]) {
        snprintf(err, err_cap,
                 "a public client cannot introspect (it has no secret): --serves needs a confidential "
                 "client");
        return -1;
    }
    if (is_public && !redirect_uris[0]) {
        snprintf(err, err_cap, "a public client signs users in: give it at least one --redirect-uri");
        return -1;
    }
    if (oidc_settings(a, oidc, redirect_uris, out, err, err_cap) != 0) {
        return -1;
    }
    char body[44]; /* 32 bytes in base64url: 43 characters */
    if (tka_random_b64(32, body, sizeof body) != 0) {
        snprintf(err, err_cap, "no randomness");
        return -1;
    }
    snprintf(secret, TKA_SECRET_TEXT_LEN, "%s%s", SECRET_PREFIX, body);
    OPENSSL_cleanse(body, sizeof body);
    snprintf(out->redirect_uris, sizeof out->redirect_uris, "%s", redirect_uris);
    out->is_public = is_public;
    snprintf(out->grant_types, sizeof out->grant_types, "%s",
             is_public          ? "authorization_code refresh_token"
             : redirect_uris[0] ? "client_credentials authorization_code refresh_token"
                                : "client_credentials");
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->scopes, sizeof out->scopes, "%s", scopes);
    snprintf(out->audiences, sizeof out->audiences, "%s", audiences);
    snprintf(out->serves, sizeof out->serves, "%s", serves ? serves : "");
    out->ttl = ttl;
    out->created_at = now;
    tka_sha256(secret, strlen(secret), out->secret_hash);
    if (is_public) {
        /* No secret: a hash of nothing anyone holds. */
        OPENSSL_cleanse(secret, TKA_SECRET_TEXT_LEN);
        secret[0] = '\0';
    }
    tks_result rc = tks_client_insert(a->store, out);
    if (rc != TKS_OK) {
        OPENSSL_cleanse(secret, TKA_SECRET_TEXT_LEN);
        snprintf(err, err_cap, "%s", rc == TKS_EXISTS ? "a client with that id exists" : tks_errmsg(a->store));
        return -1;
    }
    return 0;
}

/* ---- throttling ------------------------------------------------------------
 * SECURITY.md rule 22. Three counters per failed attempt, kept in the store
 * (tks_attempts_*) so that every instance on a shared store sees the same
 * counts: N instances do not give a guesser N times the attempts:
 *   A  the address;
 *   P  the pair (identity, address);
 *   I  the identity, from any address.
 * Before credentials are checked an attempt waits only for A and P: whoever
 * guesses from an address slows down exponentially there, and nobody at
 * another address can lock the owner of an identity out. I is never a
 * gate. It counts failures from everywhere; once it is past fail_free * 4
 * in the window (a guess spread over many addresses), each failure also
 * blocks its own address and pair at once, so every new address gets one
 * guess, then waits, instead of fail_free free ones. A success clears the
 * pair only: an address that failed against other identities stays slow.
 * A counter is a 64-bit hash; a collision only makes two keys share one.
 * Counting goes through the store, so it fails closed: a store that cannot
 * count answers 503, not "go ahead". */

static uint64_t key_hash2(char tag, const char *s, size_t n, const char *t, size_t m)
{
    /* FNV-1a, with a separator no id or address holds */
    uint64_t h = 1469598103934665603ull ^ (unsigned char)tag;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    }
    h = (h ^ 0xffu) * 1099511628211ull;
    for (size_t i = 0; i < m; i++) {
        h = (h ^ (unsigned char)t[i]) * 1099511628211ull;
    }
    /* the store keeps signed 64-bit keys: any value is fine, 0 included */
    return h;
}

struct throttle_keys {
    uint64_t addr, pair, ident;
};

static void throttle_keys(char kind, const char *id, size_t id_len, const char *ip, struct throttle_keys *k)
{
    size_t ipl = ip ? strlen(ip) : 0;
    if (!ip) {
        ip = "";
    }
    /* the tags keep client and user counters apart ('c' vs 'u') */
    k->addr = key_hash2((char)(kind ^ 0x20), "", 0, ip, ipl);
    k->pair = key_hash2(kind, id, id_len, ip, ipl);
    k->ident = key_hash2((char)(kind ^ 0x40), id, id_len, "", 0);
}

/* Seconds a key with `failures` failures, the last at `at`, waits after it. */
static int64_t wait_for(const tka_authority *a, uint32_t failures)
{
    if (failures <= (uint32_t)a->cfg.fail_free) {
        return 0;
    }
    uint32_t over = failures - (uint32_t)a->cfg.fail_free;
    int64_t wait = over >= 30 ? a->cfg.fail_max_wait : (int64_t)1 << (over - 1);
    return wait > a->cfg.fail_max_wait ? a->cfg.fail_max_wait : wait;
}

int64_t tka_throttle_wait(tka_authority *a, char kind, const char *id, size_t id_len, const char *ip, int64_t now)
{
    struct throttle_keys k;
    throttle_keys(kind, id, id_len, ip, &k);
    uint64_t keys[2] = {k.addr, k.pair};
    int64_t until[2] = {0, 0};
    int present = 0;
    if (tka_cache_attempts_get(a, keys, 2, until, &present) != 0 &&
        tks_attempts_get(a->store, keys, 2, until) != TKS_OK) {
        return -1;
    }
    int64_t w = (until[0] > until[1] ? until[0] : until[1]) - now;
    return w > 0 ? w : 0;
}

int64_t tka_throttle_fail(tka_authority *a, char kind, const char *id, size_t id_len, const char *ip, int64_t now)
{
    struct throttle_keys k;
    throttle_keys(kind, id, id_len, ip, &k);
    uint32_t everywhere = 0;
    if (tks_attempts_fail(a->store, &k.ident, 1, NULL, now, a->cfg.fail_window, &everywhere) != TKS_OK) {
        return -1;
    }
    /* Was a block in force, made by another instance, that our copy of the
     * counters had not received yet (it lags by milliseconds)? Then this
     * failure is answered as throttled, so that spreading guesses over
     * instances gains nothing. Read from the store: failures are rare. */
    uint64_t keys0[2] = {k.addr, k.pair};
    int64_t until0[2] = {0, 0};
    if (tks_attempts_get(a->store, keys0, 2, until0) != TKS_OK) {
        return -1;
    }
    int blocked = until0[0] > now || until0[1] > now;
    /* Under a distributed guess, this address's next try already waits. */
    uint32_t hot = everywhere > (uint32_t)a->cfg.fail_free * 4 ? (uint32_t)a->cfg.fail_free + 1 : 0;
    uint64_t keys[2] = {k.addr, k.pair};
    uint32_t least[2] = {hot, hot};
    uint32_t failures[2] = {0, 0};
    if (tks_attempts_fail(a->store, keys, 2, least, now, a->cfg.fail_window, failures) != TKS_OK) {
        return -1;
    }
    uint64_t counted[3] = {k.ident, k.addr, k.pair};
    tka_cache_attempts_put(a, counted, 3, NULL);
    int64_t until[2] = {0, 0};
    size_t n = 0;
    uint64_t block[2];
    int64_t late = 0;
    for (size_t i = 0; i < 2; i++) {
        int64_t w = wait_for(a, failures[i]);
        if (w > 0) {
            block[n] = keys[i];
            until[n] = now + w;
            n++;
        }
        if (blocked && w > late) {
            late = w;
        }
    }
    if (n == 0) {
        return 0;
    }
    if (tks_attempts_block(a->store, block, n, until) != TKS_OK) {
        return -1;
    }
    tka_cache_attempts_put(a, block, n, until);
    return blocked ? (late > 0 ? late : 1) : 0;
}

void tka_throttle_success(tka_authority *a, char kind, const char *id, size_t id_len, const char *ip, int64_t now)
{
    (void)now;
    struct throttle_keys k;
    throttle_keys(kind, id, id_len, ip, &k);
    /* Forgetting the pair is a courtesy to the owner; failing to forget it
     * only leaves them slower until the window passes (fails safe). With
     * a trusted copy of the counters that has none for the pair there is
     * nothing to forget: the usual success writes nothing. */
    int64_t until = 0;
    int present = 0;
    if (tka_cache_attempts_get(a, &k.pair, 1, &until, &present) == 0 && present == 0) {
        return;
    }
    (void)tks_attempts_clear(a->store, k.pair);
}

tka_auth_result tka_client_authenticate(tka_authority *a, const char *id, size_t id_len, const char *secret,
                                        size_t secret_len, const char *ip, int64_t now, tks_client *out,
                                        int64_t *retry_after, tka_auth_why *why)
{
    *retry_after = 0;
    if (why) {
        *why = TKA_AUTH_WHY_NONE;
    }
    memset(out, 0, sizeof *out);
    int64_t wait = tka_throttle_wait(a, 'c', id, id_len, ip, now);
    if (wait < 0) {
        return TKA_AUTH_ERROR; /* the counters cannot be read: fail closed */
    }
    if (wait > 0) {
        *retry_after = wait;
        atomic_fetch_add(&a->n_auth_throttled, 1);
        return TKA_AUTH_THROTTLED;
    }
    char idz[TKS_ID_MAX + 1];
    int found = 0;
    tks_result rc = TKS_NOT_FOUND;
    if (id_len > 0 && id_len <= TKS_ID_MAX && memchr(id, '\0', id_len) == NULL) {
        memcpy(idz, id, id_len);
        idz[id_len] = '\0';
        rc = tka_client_get(a, idz, out);
        if (rc == TKS_ERR || rc == TKS_BUSY) {
            return TKA_AUTH_ERROR;
        }
        found = rc == TKS_OK;
    }
    unsigned char h[32];
    tka_sha256(secret, secret_len, h);
    int match = CRYPTO_memcmp(h, found ? out->secret_hash : a->dummy_hash, 32) == 0;
    OPENSSL_cleanse(h, sizeof h);
    if (!found || !match) {
        int64_t counted = tka_throttle_fail(a, 'c', id, id_len, ip, now);
        atomic_fetch_add(&a->n_auth_failed, 1);
        /* A failed authentication is a security event: if it cannot be
         * recorded, the answer is 503, not a silent 401 (SECURITY.md rule
         * 20). The operator's log line says which of the two it was. */
        tks_result ar = tks_audit(a->store, now, "client_auth_failed", found ? out->id : NULL, ip,
                                  found ? "wrong secret" : "unknown client");
        memset(out, 0, sizeof *out);
        if (why) {
            *why = found ? TKA_AUTH_WHY_WRONG_SECRET : TKA_AUTH_WHY_UNKNOWN_CLIENT;
        }
        if (ar != TKS_OK || counted < 0) {
            return TKA_AUTH_ERROR;
        }
        if (counted > 0) {
            *retry_after = counted;
            atomic_fetch_add(&a->n_auth_throttled, 1);
            return TKA_AUTH_THROTTLED;
        }
        return TKA_AUTH_BAD;
    }
    tka_throttle_success(a, 'c', id, id_len, ip, now);
    if (out->disabled) {
        if (tks_audit(a->store, now, "client_auth_disabled", out->id, ip, "client is disabled") != TKS_OK) {
            return TKA_AUTH_ERROR;
        }
        return TKA_AUTH_DISABLED;
    }
    return TKA_AUTH_OK;
}
