/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c — counters for /metrics (Prometheus text exposition format
 * 0.0.4), and the /healthz and /readyz probes.
 *
 * Counters are relaxed atomics, bumped on the request path without a lock;
 * a scrape reads them one by one, so a scrape taken under load may be a few
 * requests apart between series, which Prometheus tolerates. A histogram's
 * _count is the sum of its buckets, so those always agree.
 */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "http/backchannel.h"
#include "http/internal.h"

/* Statuses with their own series; everything else is counted as "other". */
static const unsigned status_slots[SRV_STATUS_SLOTS] = {0,   200, 204, 301, 302, 303, 304, 400, 401, 403,
                                                        404, 405, 411, 413, 415, 429, 431, 500, 503};

/* Upper bounds of the latency buckets, microseconds (0.0001 s .. 1 s). */
static const uint64_t bucket_us[SRV_HIST_BUCKETS] = {100,   250,   500,    1000,   2500,   5000,   10000,
                                                     25000, 50000, 100000, 250000, 500000, 1000000};
static const char *const bucket_le[SRV_HIST_BUCKETS] = {
    "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"};

void srv_metrics_request(srv_metrics *m, enum srv_route r, unsigned status, uint64_t us)
{
    if ((unsigned)r >= SRV_ROUTE_COUNT_) {
        r = SRV_ROUTE_NONE;
    }
    size_t slot = SRV_STATUS_SLOTS; /* other */
    for (size_t i = 0; i < SRV_STATUS_SLOTS; i++) {
        if (status_slots[i] == status) {
            slot = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&m->requests[r][slot], 1, memory_order_relaxed);
    size_t b = SRV_HIST_BUCKETS; /* +Inf */
    for (size_t i = 0; i < SRV_HIST_BUCKETS; i++) {
        if (us <= bucket_us[i]) {
            b = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&m->hist[r][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->hist_sum_us[r], us, memory_order_relaxed);
}

void srv_metrics_validation(srv_metrics *m, tk_reason r)
{
    if ((unsigned)r < TK_REASON_COUNT_) {
        atomic_fetch_add_explicit(&m->validations[r], 1, memory_order_relaxed);
    }
}

static uint64_t get(_Atomic uint64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void help(srv_buf *b, const char *name, const char *type, const char *text)
{
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* OpenID Connect Back-Channel Logout deliveries. */
static void backchannel_metrics(struct tkh_server *s, srv_buf *b)
{
    if (s->bcl == NULL) {
        return;
    }
    tkh_bcl_counters k;
    tkh_bcl_counters_get(s->bcl, &k);
    help(b, "tokend_backchannel_logout_total", "counter",
         "Back-channel logout deliveries by outcome: delivered (2xx), retry (an attempt failed and will be made "
         "again), failed (given up after every attempt, or dropped).");
    srv_buf_printf(b,
                   "tokend_backchannel_logout_total{result=\"delivered\"} %" PRIu64 "\n"
                   "tokend_backchannel_logout_total{result=\"retry\"} %" PRIu64 "\n"
                   "tokend_backchannel_logout_total{result=\"failed\"} %" PRIu64 "\n",
                   k.delivered, k.retried, k.failed);
    help(b, "tokend_backchannel_logout_pending", "gauge", "Back-channel logout deliveries waiting to be made.");
    srv_buf_printf(b, "tokend_backchannel_logout_pending %" PRIu64 "\n", k.pending);
}

/* The key sets of trusted issuers (issue 10): fetches, age, keys,
 * refetches for unknown kids, and whether a stale set is being served. */
static void issuer_metrics(struct tkh_server *s, srv_buf *b)
{
    tk_keycache *kc = tka_trust_cache(s->trust);
    size_t n = tk_keycache_count(kc);
    if (n == 0) {
        return;
    }
    int64_t now = (int64_t)time(NULL);
    tk_keycache_status st[TK_LIMIT_ISSUERS];
    const char *iss[TK_LIMIT_ISSUERS];
    for (size_t i = 0; i < n && i < TK_LIMIT_ISSUERS; i++) {
        iss[i] = tk_keycache_issuer_at(kc, i);
        (void)tk_keycache_status_get(kc, iss[i], now, &st[i]);
    }
    /* issuer URLs are https URLs of printable ASCII without spaces (checked
     * when configured); a '"' or '\\' would still break the label: none pass */
    help(b, "tokend_issuer_fetches_total", "counter", "Key set fetches of trusted issuers, by result.");
    for (size_t i = 0; i < n; i++) {
        srv_buf_printf(b, "tokend_issuer_fetches_total{issuer=\"%s\",result=\"ok\"} %" PRIu64 "\n", iss[i],
                       st[i].fetch_ok);
        srv_buf_printf(b, "tokend_issuer_fetches_total{issuer=\"%s\",result=\"error\"} %" PRIu64 "\n", iss[i],
                       st[i].fetch_failed);
    }
    help(b, "tokend_issuer_keyset_age_seconds", "gauge",
         "Seconds since the key set in use was fetched (-1: none yet).");
    for (size_t i = 0; i < n; i++) {
        srv_buf_printf(b, "tokend_issuer_keyset_age_seconds{issuer=\"%s\"} %" PRId64 "\n", iss[i],
                       st[i].have_keys ? (st[i].fetched_at ? now - st[i].fetched_at : 0) : (int64_t)-1);
    }
    help(b, "tokend_issuer_keys", "gauge", "Usable keys in the key set in use (skipped ones not counted).");
    for (size_t i = 0; i < n; i++) {
        srv_buf_printf(b, "tokend_issuer_keys{issuer=\"%s\"} %zu\n", iss[i], st[i].keys);
    }
    help(b, "tokend_issuer_keys_skipped", "gauge", "Keys of the key set in use that could not be used.");
    for (size_t i = 0; i < n; i++) {
        srv_buf_printf(b, "tokend_issuer_keys_skipped{issuer=\"%s\"} %zu\n", iss[i], st[i].skipped);
    }
    help(b, "tokend_issuer_kid_refetches_total", "counter",
         "Refetches asked for by tokens with a kid not in the set, and those refused by the cool-down.");
    for (size_t i = 0; i < n; i++) {
        srv_buf_printf(b, "tokend_issuer_kid_refetches_total{issuer=\"%s\",result=\"fetched\"} %" PRIu64 "\n", iss[i],
                       st[i].kid_refetches);
        srv_buf_printf(b, "tokend_issuer_kid_refetches_total{issuer=\"%s\",result=\"cooldown\"} %" PRIu64 "\n", iss[i],
                       st[i].kid_refetch_denied);
    }
    help(b, "tokend_issuer_keyset_stale", "gauge",
         "1 while the key set is served past its expiry because fetches fail; 2 once past --issuer-max-stale "
         "(its tokens are refused).");
    for (size_t i = 0; i < n; i++) {
        int stale = st[i].have_keys && now > st[i].expires_at ? (now > st[i].stale_until ? 2 : 1) : 0;
        srv_buf_printf(b, "tokend_issuer_keyset_stale{issuer=\"%s\"} %d\n", iss[i], stale);
    }
}

enum MHD_Result srv_handle_metrics(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    srv_metrics *m = &s->metrics;
    tka_counters ac;
    memset(&ac, 0, sizeof ac);
    tka_counters_get(s->auth, &ac);

    srv_buf b;
    srv_buf_heap(&b, 1024u * 1024u);
    help(&b, "tokend_tokens_issued_total", "counter", "Access tokens issued, by grant type.");
    srv_buf_printf(&b, "tokend_tokens_issued_total{grant=\"client_credentials\"} %" PRIu64 "\n",
                   ac.issued_client_credentials);
    srv_buf_printf(&b, "tokend_tokens_issued_total{grant=\"authorization_code\"} %" PRIu64 "\n",
                   ac.issued_authorization_code);
    srv_buf_printf(&b, "tokend_tokens_issued_total{grant=\"refresh_token\"} %" PRIu64 "\n", ac.issued_refresh_token);
    help(&b, "tokend_authorization_codes_issued_total", "counter", "Authorization codes issued by /oauth/authorize.");
    srv_buf_printf(&b, "tokend_authorization_codes_issued_total %" PRIu64 "\n", ac.codes_issued);
    help(&b, "tokend_refresh_reuse_total", "counter",
         "Refresh tokens presented again after rotation (each revoked its whole family).");
    srv_buf_printf(&b, "tokend_refresh_reuse_total %" PRIu64 "\n", ac.refresh_reuse);
    help(&b, "tokend_logins_total", "counter", "User sign-ins, by result.");
    srv_buf_printf(&b, "tokend_logins_total{result=\"ok\"} %" PRIu64 "\n", ac.logins);
    srv_buf_printf(&b, "tokend_logins_total{result=\"failed\"} %" PRIu64 "\n", ac.login_failed);
    srv_buf_printf(&b, "tokend_logins_total{result=\"throttled\"} %" PRIu64 "\n", ac.login_throttled);
    help(&b, "tokend_validations_total", "counter",
         "Token validations by /auth and /oauth/introspect, by result and reason code.");
    for (unsigned r = 0; r < TK_REASON_COUNT_; r++) {
        srv_buf_printf(&b, "tokend_validations_total{result=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                       r == TK_REASON_VALID ? "valid" : "invalid", tk_reason_code((tk_reason)r),
                       get(&m->validations[r]));
    }
    help(&b, "tokend_client_auth_failures_total", "counter", "Failed client authentications.");
    srv_buf_printf(&b, "tokend_client_auth_failures_total %" PRIu64 "\n", ac.client_auth_failed);
    help(&b, "tokend_client_auth_throttled_total", "counter",
         "Client authentications refused because of earlier failures (429).");
    srv_buf_printf(&b, "tokend_client_auth_throttled_total %" PRIu64 "\n", ac.client_auth_throttled);
    help(&b, "tokend_keys_rotated_total", "counter", "Signing key rotations.");
    srv_buf_printf(&b, "tokend_keys_rotated_total %" PRIu64 "\n", ac.keys_rotated);
    help(&b, "tokend_revocations_total", "counter", "Tokens or sessions revoked.");
    srv_buf_printf(&b, "tokend_revocations_total %" PRIu64 "\n", ac.revocations);
    help(&b, "tokend_auth_cache_hits_total", "counter",
         "Validations whose signature check was skipped: the token's signature by that key was verified before "
         "(--auth-cache-size).");
    srv_buf_printf(&b, "tokend_auth_cache_hits_total %" PRIu64 "\n", ac.verify_cache_hits);
    help(&b, "tokend_auth_cache_misses_total", "counter",
         "Validations that checked a signature the cache did not hold (HMAC tokens are never cached).");
    srv_buf_printf(&b, "tokend_auth_cache_misses_total %" PRIu64 "\n", ac.verify_cache_misses);
    help(&b, "tokend_auth_cache_entries", "gauge", "Verified signatures the cache holds (expired ones until purged).");
    srv_buf_printf(&b, "tokend_auth_cache_entries %" PRIu64 "\n", ac.verify_cache_entries);

    help(&b, "tokend_http_requests_total", "counter", "HTTP requests by route pattern and status.");
    for (unsigned r = 0; r < SRV_ROUTE_COUNT_; r++) {
        for (size_t i = 0; i <= SRV_STATUS_SLOTS; i++) {
            uint64_t v = get(&m->requests[r][i]);
            if (v == 0) {
                continue;
            }
            if (i == SRV_STATUS_SLOTS) {
                srv_buf_printf(&b, "tokend_http_requests_total{route=\"%s\",status=\"other\"} %" PRIu64 "\n",
                               srv_route_name((enum srv_route)r), v);
            } else {
                srv_buf_printf(&b, "tokend_http_requests_total{route=\"%s\",status=\"%u\"} %" PRIu64 "\n",
                               srv_route_name((enum srv_route)r), status_slots[i], v);
            }
        }
    }
    help(&b, "tokend_http_request_duration_seconds", "histogram",
         "Time from the request line to the last byte of the response, by route pattern.");
    for (unsigned r = 0; r < SRV_ROUTE_COUNT_; r++) {
        uint64_t counts[SRV_HIST_BUCKETS + 1];
        uint64_t total = 0;
        for (size_t i = 0; i <= SRV_HIST_BUCKETS; i++) {
            counts[i] = get(&m->hist[r][i]);
            total += counts[i];
        }
        if (total == 0) {
            continue;
        }
        const char *rn = srv_route_name((enum srv_route)r);
        uint64_t cum = 0;
        for (size_t i = 0; i < SRV_HIST_BUCKETS; i++) {
            cum += counts[i];
            srv_buf_printf(&b, "tokend_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %" PRIu64 "\n", rn,
                           bucket_le[i], cum);
        }
        srv_buf_printf(&b, "tokend_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", rn,
                       total);
        uint64_t sum_us = get(&m->hist_sum_us[r]);
        srv_buf_printf(&b, "tokend_http_request_duration_seconds_sum{route=\"%s\"} %" PRIu64 ".%06" PRIu64 "\n", rn,
                       sum_us / 1000000u, sum_us % 1000000u);
        srv_buf_printf(&b, "tokend_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n", rn, total);
    }
    help(&b, "tokend_connections_refused_total", "counter",
         "Connections refused at accept because their address holds --max-connections-per-ip already.");
    srv_buf_printf(&b, "tokend_connections_refused_total %" PRIu64 "\n", get(&s->n_refused_per_ip));
    help(&b, "tokend_connections_cut_total", "counter",
         "Connections cut because a request did not arrive within --request-timeout (slow or stalled clients).");
    srv_buf_printf(&b, "tokend_connections_cut_total %" PRIu64 "\n", get(&s->n_cut_slow));
    srv_pool_info pi;
    srv_pool_stats(s->login_pool, &pi);
    help(&b, "tokend_password_checks", "gauge", "Password checks (Argon2id) running and waiting for a thread.");
    srv_buf_printf(&b, "tokend_password_checks{state=\"running\"} %zu\n", pi.running);
    srv_buf_printf(&b, "tokend_password_checks{state=\"waiting\"} %zu\n", pi.waiting);
    help(&b, "tokend_password_checks_total", "counter",
         "Password checks done, and refused with 503 because --login-workers and --login-queue were all taken.");
    srv_buf_printf(&b, "tokend_password_checks_total{result=\"done\"} %" PRIu64 "\n", pi.done);
    srv_buf_printf(&b, "tokend_password_checks_total{result=\"refused\"} %" PRIu64 "\n", pi.refused);
    issuer_metrics(s, &b);
    backchannel_metrics(s, &b);
    help(&b, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, seconds.");
    srv_buf_printf(&b, "process_start_time_seconds %" PRId64 "\n", s->started_at);

    if (b.overflow || b.p == NULL) {
        srv_buf_free(&b);
        return srv_respond(st, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "metrics unavailable\n",
                           20, 1, SRV_CACHE_NO_STORE, NULL, 0);
    }
    size_t len = b.len;
    return srv_respond_owned(st, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b.p, len,
                             SRV_CACHE_NO_STORE, NULL, 0);
}

enum MHD_Result srv_handle_healthz(srv_conn *st, struct MHD_Connection *c)
{
    return srv_respond(st, c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3, 1, SRV_CACHE_NO_STORE, NULL, 0);
}

static int find_active(const tks_key_row *k, void *ud)
{
    if (k->state == TKS_KEY_ACTIVE) {
        *(int *)ud = 1;
    }
    return 0;
}

/* What the server needs to do its work: a store that commits writes (a
 * store that only reads cannot sign anyone in, rotate a refresh token or
 * record a revocation) and an active signing key. Checked at most once a
 * second, whatever the probe rate: a flood of /readyz costs one small
 * write a second. */
static int readiness(struct tkh_server *s, char *why, size_t why_cap)
{
    if (s->store != NULL) {
        tks_result r = tks_probe_write(s->store, (int64_t)time(NULL));
        if (r != TKS_OK) {
            const char *e = tks_errmsg(s->store);
            snprintf(why, why_cap, "the store cannot commit a write (%s)", e != NULL && e[0] != '\0' ? e : "no detail");
            return 0;
        }
    }
    int active = 0;
    if (tka_keys_list(s->auth, find_active, &active) != 0 || !active) {
        snprintf(why, why_cap, "no active signing key");
        return 0;
    }
    /* validation fails closed past max_stale: so is readiness */
    const tka_config *ac = tka_get_config(s->auth);
    int64_t age = tka_revocations_age(s->auth, (int64_t)time(NULL));
    if (ac != NULL && age > ac->max_stale) {
        snprintf(why, why_cap, "the revocation list last caught up with the store %llds ago (--max-stale %llds)",
                 (long long)age, (long long)ac->max_stale);
        return 0;
    }
    why[0] = '\0';
    return 1;
}

enum MHD_Result srv_handle_readyz(srv_conn *st, struct MHD_Connection *c)
{
    struct tkh_server *s = st->srv;
    uint64_t now = srv_now_ns();
    char msg[200];
    int ok;
    /* One check at a time: a probe that finds another check running (a
     * write can wait up to the store's busy timeout) answers with the last
     * result instead of queueing behind it, so probes never pile up on the
     * request threads. */
    if (pthread_mutex_trylock(&s->ready_lock) == 0) {
        if (s->ready_checked_ns == 0 || now - s->ready_checked_ns >= 1000000000u) {
            s->ready_ok = readiness(s, s->ready_why, sizeof s->ready_why);
            s->ready_checked_ns = srv_now_ns();
            atomic_store(&s->ready_last, s->ready_ok);
            atomic_store(&s->ready_last_ns, s->ready_checked_ns);
        }
        ok = s->ready_ok;
        snprintf(msg, sizeof msg, "not ready: %s\n", s->ready_why);
        pthread_mutex_unlock(&s->ready_lock);
    } else {
        /* the last result stands while it is fresh; a check that has been
         * running for a second or more means a store too slow to rely on */
        uint64_t at = atomic_load(&s->ready_last_ns);
        ok = atomic_load(&s->ready_last) && now - at < 2000000000u;
        snprintf(msg, sizeof msg, "not ready: %s\n",
                 ok ? ""
                    : "the store is slow to commit a write (a readiness check has been running for over a second)");
    }
    if (ok) {
        return srv_respond(st, c, MHD_HTTP_OK, "text/plain; charset=utf-8", "ready\n", 6, 1, SRV_CACHE_NO_STORE, NULL,
                           0);
    }
    srv_note(st, "%.*s", (int)(strlen(msg) - 1), msg);
    return srv_respond(st, c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", msg, strlen(msg), 0,
                       SRV_CACHE_NO_STORE, NULL, 0);
}
