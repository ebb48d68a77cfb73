/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c — the front of tokend's persistence (store.h): picks a backend by
 * URL and gives every backend the same contract.
 *
 * Invariants:
 *  - Every tks_* function checks its arguments here, once, so a backend sees
 *    only NUL-terminated strings within the limits of store.h / backend.h
 *    and valid enum values. Out-parameters are zeroed on entry.
 *  - A value that would not fit is refused (TKS_ERR), never truncated. An id
 *    that cannot exist (empty or longer than its limit) is TKS_NOT_FOUND on
 *    lookups: no row can hold it, and callers pass ids that came off the wire.
 *  - Callbacks of the list functions run with no backend lock held: rows are
 *    fetched a page at a time (backend.h), so a callback may be slow or call
 *    back into the store without deadlocking it.
 *  - Error messages are kept per thread and per store (tks_errmsg), and never
 *    hold a secret: a store URL may carry a password, so it is never echoed.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "store/backend.h"

/* ---- per-thread error messages ----------------------------------------- */

/* A thread keeps the last message of each of the last few stores it used;
 * a server has one store, the CLI at most two (migrations, copies). */
#define ERR_SLOTS 4
#define ERR_MAX 256

struct err_slot {
    uint64_t store_id; /* 0 = free; store ids start at 1 and are never reused */
    char msg[ERR_MAX];
};

static _Thread_local struct err_slot err_slots[ERR_SLOTS];
static _Thread_local unsigned err_victim;
static atomic_uint_fast64_t next_store_id = 1;

static struct err_slot *err_slot_of(const tks_store *s, int create)
{
    for (size_t i = 0; i < ERR_SLOTS; i++) {
        if (err_slots[i].store_id == s->id) {
            return &err_slots[i];
        }
    }
    if (!create) {
        return NULL;
    }
    for (size_t i = 0; i < ERR_SLOTS; i++) {
        if (err_slots[i].store_id == 0) {
            err_slots[i].store_id = s->id;
            return &err_slots[i];
        }
    }
    struct err_slot *e = &err_slots[err_victim % ERR_SLOTS];
    err_victim++;
    e->store_id = s->id;
    return e;
}

void tksi_seterr(tks_store *s, const char *fmt, ...)
{
    struct err_slot *e = err_slot_of(s, 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

const char *tks_errmsg(tks_store *s)
{
    if (s == NULL) {
        return "no store (tks_open failed or was not called)";
    }
    const struct err_slot *e = err_slot_of(s, 0);
    return e ? e->msg : "no error";
}

/* ---- argument checks ----------------------------------------------------- */

/* 1 when p is a C string of 1..max bytes (reads at most max + 1 bytes). */
static int str_ok(const char *p, size_t max)
{
    if (p == NULL) {
        return 0;
    }
    size_t n = strnlen(p, max + 1);
    return n >= 1 && n <= max;
}

/* 1 when p is NULL or a C string of at most max bytes. */
static int opt_str_ok(const char *p, size_t max)
{
    return p == NULL || strnlen(p, max + 1) <= max;
}

/* 1 when the array field a[cap] holds a NUL (so its string fits). */
static int field_ok(const char *a, size_t cap)
{
    return strnlen(a, cap) < cap;
}

static int key_state_ok(enum tks_key_state st)
{
    int v = (int)st;
    return v >= TKS_KEY_NEXT && v <= TKS_KEY_RETIRED;
}

static int revocation_kind_ok(enum tks_revocation_kind k)
{
    int v = (int)k;
    return v == TKS_REVOKE_JTI || v == TKS_REVOKE_SID;
}

/* Writes the open error, if the caller gave room for one. */
static void open_err(char *err, size_t err_cap, const char *msg)
{
    if (err != NULL && err_cap > 0) {
        snprintf(err, err_cap, "%s", msg);
    }
}

/* ---- opening ------------------------------------------------------------- */

static int has_scheme(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    return strncasecmp(url, scheme, n) == 0;
}

/* libpq's key/value form: no scheme, and a keyword=value pair. */
static int is_pg_keyvalue(const char *url)
{
    return strstr(url, "://") == NULL && strchr(url, '=') != NULL;
}

tks_result tks_open(const char *url, tks_store **out, char *err, size_t err_cap)
{
    return tks_open_ex(url, NULL, out, err, err_cap);
}

tks_result tks_open_ex(const char *url, const tks_open_opts *opts, tks_store **out, char *err, size_t err_cap)
{
    if (err != NULL && err_cap > 0) {
        err[0] = '\0';
    }
    if (out == NULL) {
        open_err(err, err_cap, "tks_open: no place to put the store");
        return TKS_ERR;
    }
    *out = NULL;
    if (url == NULL) {
        open_err(err, err_cap, "no store URL (use sqlite://PATH or postgres://USER@HOST:PORT/DB)");
        return TKS_ERR;
    }
    int pg = has_scheme(url, "postgres://") || has_scheme(url, "postgresql://") || is_pg_keyvalue(url);
    if (!pg && !has_scheme(url, "sqlite://")) {
        open_err(err, err_cap, "unknown store URL scheme (use sqlite://PATH or postgres://USER@HOST:PORT/DB)");
        return TKS_ERR;
    }
    const char *path = url + strlen("sqlite://");
    if (!pg && path[0] == '\0') {
        open_err(err, err_cap, "the store URL sqlite:// has no path (use sqlite://PATH, e.g. sqlite://./tokend.db)");
        return TKS_ERR;
    }
    tks_store *s = calloc(1, sizeof *s);
    if (s == NULL) {
        open_err(err, err_cap, "out of memory opening the store");
        return TKS_ERR;
    }
    s->id = atomic_fetch_add(&next_store_id, 1);
    tks_result r =
        pg ? tksi_pg_open(s, url, opts != NULL ? opts->password : NULL, opts != NULL ? opts->pool : 0, err, err_cap)
           : tksi_sqlite_open(s, path, err, err_cap);
    if (r != TKS_OK) {
        free(s);
        return r;
    }
    *out = s;
    return TKS_OK;
}

void tks_url_redact(const char *url, char *out, size_t cap)
{
    if (cap == 0) {
        return;
    }
    out[0] = '\0';
    if (url == NULL) {
        return;
    }
    const char *scheme = strstr(url, "://");
    if (scheme != NULL) {
        /* scheme://user:password@host...: the userinfo ends at the last '@'
         * before the path */
        const char *auth = scheme + 3;
        size_t hostpart = strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *p = auth; p < auth + hostpart; p++) {
            if (*p == '@') {
                at = p;
            }
        }
        const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon != NULL) {
            snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
        } else {
            snprintf(out, cap, "%s", url);
        }
        /* ...and a password=... in the query */
        char *q = strstr(out, "password=");
        if (q != NULL) {
            size_t keep = (size_t)(q - out) + 9;
            size_t rest = strcspn(q + 9, "&");
            memmove(out + keep + 3, q + 9 + rest, strlen(q + 9 + rest) + 1);
            if (keep + 3 < cap) {
                memcpy(out + keep, "***", 3);
            }
        }
        return;
    }
    /* key/value: password=value or password='quoted value' */
    size_t o = 0;
    const char *p = url;
    while (*p != '\0' && o + 1 < cap) {
        if (strncmp(p, "password", 8) == 0 && (p == url || p[-1] == ' ')) {
            const char *e = p + 8;
            while (*e == ' ') {
                e++;
            }
            if (*e == '=') {
                e++;
                while (*e == ' ') {
                    e++;
                }
                if (*e == '\'') {
                    for (e++; *e != '\0' && *e != '\''; e++) {
                        if (*e == '\\' && e[1] != '\0') {
                            e++;
                        }
                    }
                    if (*e == '\'') {
                        e++;
                    }
                } else {
                    e += strcspn(e, " ");
                }
                int w = snprintf(out + o, cap - o, "password=***");
                o += w > 0 && (size_t)w < cap - o ? (size_t)w : cap - o - 1;
                p = e;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
}

const char *tks_backend_name(tks_store *s)
{
    return s != NULL && s->be != NULL ? s->be->name : "none";
}

void tks_close(tks_store *s)
{
    if (s == NULL) {
        return;
    }
    s->be->close(s);
    free(s);
}

int tks_schema_version(tks_store *s)
{
    return s ? s->schema_version : 0;
}

tks_result tks_ping(tks_store *s)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->ping(s);
}

tks_result tks_probe_write(tks_store *s, int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->probe_write(s, now);
}

/* ---- fault injection ------------------------------------------------------- */

void tks_fault_arm(tks_store *s, int64_t nth, int sticky)
{
    if (s == NULL) {
        return;
    }
    atomic_store(&s->fault_seen, 0);
    atomic_store(&s->fault_sticky, sticky != 0);
    atomic_store(&s->fault_at, nth < 0 ? 0 : nth + 1);
}

void tks_fault_disarm(tks_store *s)
{
    if (s != NULL) {
        atomic_store(&s->fault_at, 0);
    }
}

int64_t tks_fault_points(tks_store *s)
{
    return s != NULL ? atomic_load(&s->fault_seen) : 0;
}

int tksi_fault_hit(tks_store *s, const char *what)
{
    int64_t at = atomic_load_explicit(&s->fault_at, memory_order_relaxed) - 1;
    if (at < 0) {
        return 0;
    }
    int64_t n = atomic_fetch_add(&s->fault_seen, 1);
    if (n == at || (n > at && atomic_load(&s->fault_sticky))) {
        tksi_seterr(s, "%s: injected fault (write point %lld)", what, (long long)n);
        return 1;
    }
    return 0;
}

/* ---- clients ------------------------------------------------------------- */

tks_result tks_client_insert(tks_store *s, const tks_client *c)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (c == NULL) {
        tksi_seterr(s, "tks_client_insert: no client");
        return TKS_ERR;
    }
    if (!field_ok(c->id, sizeof c->id) || c->id[0] == '\0') {
        tksi_seterr(s, "client id must be 1 to %d bytes", TKS_ID_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->name, sizeof c->name)) {
        tksi_seterr(s, "client name longer than %d bytes", TKS_NAME_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->scopes, sizeof c->scopes) || !field_ok(c->audiences, sizeof c->audiences)) {
        tksi_seterr(s, "client scope or audience list longer than %d bytes", TKS_LIST_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->redirect_uris, sizeof c->redirect_uris)) {
        tksi_seterr(s, "client redirect URI list longer than %d bytes", TKS_URIS_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->grant_types, sizeof c->grant_types)) {
        tksi_seterr(s, "client grant type list longer than %zu bytes", sizeof c->grant_types - 1);
        return TKS_ERR;
    }
    if (!field_ok(c->serves, sizeof c->serves)) {
        tksi_seterr(s, "client served audience list longer than %d bytes", TKS_LIST_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->backchannel_logout_uri, sizeof c->backchannel_logout_uri)) {
        tksi_seterr(s, "client back-channel logout URI longer than %d bytes", TKS_URI_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->id_token_alg, sizeof c->id_token_alg)) {
        tksi_seterr(s, "client ID token alg longer than %zu bytes", sizeof c->id_token_alg - 1);
        return TKS_ERR;
    }
    return s->be->client_insert(s, c);
}

tks_result tks_client_get(tks_store *s, const char *id, tks_client *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL || out == NULL) {
        tksi_seterr(s, "tks_client_get: NULL argument");
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    tks_result r = s->be->client_get(s, id, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_client_set_disabled(tks_store *s, const char *id, int disabled)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL) {
        tksi_seterr(s, "tks_client_set_disabled: no client id");
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->client_set_disabled(s, id, disabled != 0);
}

tks_result tks_client_delete(tks_store *s, const char *id)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL) {
        tksi_seterr(s, "tks_client_delete: no client id");
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->client_delete(s, id);
}

tks_result tks_client_list(tks_store *s, int (*fn)(const tks_client *c, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (fn == NULL) {
        tksi_seterr(s, "tks_client_list: no callback");
        return TKS_ERR;
    }
    tks_client *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing clients");
        return TKS_ERR;
    }
    char after[TKS_ID_MAX + 1] = "";
    tks_result r = TKS_OK;
    for (;;) {
        size_t n = 0;
        memset(rows, 0, TKSI_PAGE * sizeof *rows);
        r = s->be->client_page(s, after, rows, TKSI_PAGE, &n);
        if (r != TKS_OK || n == 0) {
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(&rows[i], ud) != 0;
        }
        if (stop || n < TKSI_PAGE) {
            break;
        }
        /* The cursor must move forward, or a broken backend would loop us. */
        if (strcmp(rows[n - 1].id, after) <= 0) {
            tksi_seterr(s, "client listing did not advance");
            r = TKS_ERR;
            break;
        }
        memcpy(after, rows[n - 1].id, sizeof after);
    }
    free(rows);
    return r;
}

/* ---- signing keys -------------------------------------------------------- */

/* The checks every key row written gets (insert and rotation). */
static int key_row_ok(tks_store *s, const tks_key_row *k)
{
    if (!field_ok(k->kid, sizeof k->kid) || k->kid[0] == '\0') {
        tksi_seterr(s, "kid must be 1 to %d bytes", TKS_ID_MAX);
        return 0;
    }
    if (!field_ok(k->alg, sizeof k->alg) || k->alg[0] == '\0') {
        tksi_seterr(s, "key alg must be 1 to %d bytes", TKSI_ALG_MAX);
        return 0;
    }
    if (!key_state_ok(k->state)) {
        tksi_seterr(s, "unknown key state %d", (int)k->state);
        return 0;
    }
    if (!opt_str_ok(k->public_jwk, TKSI_JWK_MAX)) {
        tksi_seterr(s, "public JWK longer than %d bytes", TKSI_JWK_MAX);
        return 0;
    }
    if (k->sealed == NULL || k->sealed_len == 0 || k->sealed_len > TKSI_SEALED_MAX) {
        tksi_seterr(s, "sealed private key must be 1 to %d bytes", TKSI_SEALED_MAX);
        return 0;
    }
    return 1;
}

tks_result tks_key_insert(tks_store *s, const tks_key_row *k)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (k == NULL) {
        tksi_seterr(s, "tks_key_insert: no key");
        return TKS_ERR;
    }
    if (!key_row_ok(s, k)) {
        return TKS_ERR;
    }
    return s->be->key_insert(s, k);
}

static void clear_rows(tks_key_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tks_key_row_clear(&rows[i]);
    }
}

tks_result tks_key_list(tks_store *s, int (*fn)(const tks_key_row *k, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (fn == NULL) {
        tksi_seterr(s, "tks_key_list: no callback");
        return TKS_ERR;
    }
    tks_key_row *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing keys");
        return TKS_ERR;
    }
    int64_t after_created = INT64_MIN;
    char after_kid[TKS_ID_MAX + 1] = "";
    tks_result r = TKS_OK;
    for (;;) {
        size_t n = 0;
        r = s->be->key_page(s, after_created, after_kid, rows, TKSI_PAGE, &n);
        if (r != TKS_OK || n == 0) {
            clear_rows(rows, TKSI_PAGE);
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(&rows[i], ud) != 0;
        }
        const tks_key_row *last = &rows[n - 1];
        int advanced =
            last->created_at > after_created || (last->created_at == after_created && strcmp(last->kid, after_kid) > 0);
        after_created = last->created_at;
        memcpy(after_kid, last->kid, sizeof after_kid);
        clear_rows(rows, n);
        if (stop || n < TKSI_PAGE) {
            break;
        }
        if (!advanced) {
            tksi_seterr(s, "key listing did not advance");
            r = TKS_ERR;
            break;
        }
    }
    free(rows);
    return r;
}

tks_result tks_key_set_state(tks_store *s, const char *kid, enum tks_key_state state, int64_t now, int64_t verify_until)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (kid == NULL) {
        tksi_seterr(s, "tks_key_set_state: no kid");
        return TKS_ERR;
    }
    if (!key_state_ok(state)) {
        tksi_seterr(s, "unknown key state %d", (int)state);
        return TKS_ERR;
    }
    if (!str_ok(kid, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->key_set_state(s, kid, state, now, verify_until);
}

tks_result tks_key_delete(tks_store *s, const char *kid)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (kid == NULL) {
        tksi_seterr(s, "tks_key_delete: no kid");
        return TKS_ERR;
    }
    if (!str_ok(kid, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->key_delete(s, kid);
}

tks_result tks_key_generation(tks_store *s, int64_t *out)
{
    if (out != NULL) {
        *out = 0;
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (out == NULL) {
        tksi_seterr(s, "tks_key_generation: no place for the result");
        return TKS_ERR;
    }
    tks_result r = s->be->key_generation(s, out);
    if (r != TKS_OK) {
        *out = 0;
    }
    return r;
}

void tks_key_row_clear(tks_key_row *k)
{
    if (k == NULL) {
        return;
    }
    free(k->public_jwk);
    if (k->sealed != NULL) {
        OPENSSL_cleanse(k->sealed, k->sealed_len);
        free(k->sealed);
    }
    OPENSSL_cleanse(k, sizeof *k);
}

/* ---- revocations --------------------------------------------------------- */

tks_result tks_revoke(tks_store *s, enum tks_revocation_kind kind, const char *value, const char *reason, int64_t now,
                      int64_t until)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (!revocation_kind_ok(kind)) {
        tksi_seterr(s, "unknown revocation kind %d", (int)kind);
        return TKS_ERR;
    }
    if (!str_ok(value, TKS_VALUE_MAX)) {
        tksi_seterr(s, "revoked value must be 1 to %d bytes", TKS_VALUE_MAX);
        return TKS_ERR;
    }
    if (!opt_str_ok(reason, TKS_REASON_MAX)) {
        tksi_seterr(s, "revocation reason longer than %d bytes", TKS_REASON_MAX);
        return TKS_ERR;
    }
    return s->be->revoke(s, kind, value, reason ? reason : "", now, until);
}

tks_result tks_revoke_batch(tks_store *s, enum tks_revocation_kind kind, const char *const *values, size_t n,
                            const char *reason, int64_t now, int64_t until, size_t *added)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (added == NULL || values == NULL || n == 0 || n > TKS_REVOKE_BATCH_MAX) {
        tksi_seterr(s, "tks_revoke_batch: 1 to %d values and a place for the count", TKS_REVOKE_BATCH_MAX);
        return TKS_ERR;
    }
    *added = 0;
    if (!revocation_kind_ok(kind)) {
        tksi_seterr(s, "unknown revocation kind %d", (int)kind);
        return TKS_ERR;
    }
    for (size_t i = 0; i < n; i++) {
        if (!str_ok(values[i], TKS_VALUE_MAX)) {
            tksi_seterr(s, "revoked value %zu of the batch must be 1 to %d bytes", i + 1, TKS_VALUE_MAX);
            return TKS_ERR;
        }
    }
    if (!opt_str_ok(reason, TKS_REASON_MAX)) {
        tksi_seterr(s, "revocation reason longer than %d bytes", TKS_REASON_MAX);
        return TKS_ERR;
    }
    tks_result r = s->be->revoke_batch(s, kind, values, n, reason ? reason : "", now, until, added);
    if (r != TKS_OK) {
        *added = 0;
    }
    return r;
}

tks_result tks_revocation_get(tks_store *s, enum tks_revocation_kind kind, const char *value, int64_t now,
                              tks_revocation *out)
{
    if (s == NULL || out == NULL) {
        return TKS_ERR;
    }
    memset(out, 0, sizeof *out);
    if (!revocation_kind_ok(kind)) {
        tksi_seterr(s, "unknown revocation kind %d", (int)kind);
        return TKS_ERR;
    }
    if (!str_ok(value, TKS_VALUE_MAX)) {
        return TKS_NOT_FOUND; /* no revocation has such a value */
    }
    tks_result r = s->be->revocation_get(s, kind, value, now, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_revocations_count(tks_store *s, int64_t now, size_t *n)
{
    if (s == NULL || n == NULL) {
        return TKS_ERR;
    }
    *n = 0;
    return s->be->revocations_count(s, now, n);
}

tks_result tks_revocations_since(tks_store *s, int64_t since, int64_t now, int (*fn)(const tks_revocation *r, void *ud),
                                 void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (fn == NULL) {
        tksi_seterr(s, "tks_revocations_since: no callback");
        return TKS_ERR;
    }
    tks_revocation *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing revocations");
        return TKS_ERR;
    }
    int64_t after = since;
    tks_result r = TKS_OK;
    for (;;) {
        size_t n = 0;
        memset(rows, 0, TKSI_PAGE * sizeof *rows);
        r = s->be->revocation_page(s, after, now, rows, TKSI_PAGE, &n);
        if (r != TKS_OK || n == 0) {
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(&rows[i], ud) != 0;
        }
        if (stop || n < TKSI_PAGE) {
            break;
        }
        if (rows[n - 1].seq <= after) {
            tksi_seterr(s, "revocation listing did not advance");
            r = TKS_ERR;
            break;
        }
        after = rows[n - 1].seq;
    }
    free(rows);
    return r;
}

tks_result tks_key_rotate(tks_store *s, const char *active_kid, int64_t next_born_by, int64_t now, int64_t verify_until,
                          const tks_key_row *new_next)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (!str_ok(active_kid, TKS_ID_MAX) || new_next == NULL || new_next->state != TKS_KEY_NEXT) {
        tksi_seterr(s, "tks_key_rotate: no active kid, or the new key is not a next key");
        return TKS_ERR;
    }
    if (!key_row_ok(s, new_next)) {
        return TKS_ERR;
    }
    return s->be->key_rotate(s, active_kid, next_born_by, now, verify_until, new_next);
}

/* ---- failed-attempt counters ------------------------------------------------ */

static int attempts_args_ok(tks_store *s, const void *keys, size_t n, const void *out, const char *fn)
{
    if (keys == NULL || out == NULL || n == 0 || n > TKS_ATTEMPT_KEYS) {
        tksi_seterr(s, "%s: 1 to %d keys and a place for the results", fn, TKS_ATTEMPT_KEYS);
        return 0;
    }
    return 1;
}

tks_result tks_attempts_fail(tks_store *s, const uint64_t *keys, size_t n, const uint32_t *at_least, int64_t now,
                             int64_t window, uint32_t *failures)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (!attempts_args_ok(s, keys, n, failures, "tks_attempts_fail")) {
        return TKS_ERR;
    }
    memset(failures, 0, n * sizeof *failures);
    if (window <= 0) {
        tksi_seterr(s, "tks_attempts_fail: the window must be positive");
        return TKS_ERR;
    }
    uint32_t zeros[TKS_ATTEMPT_KEYS] = {0};
    return s->be->attempts_fail(s, keys, n, at_least != NULL ? at_least : zeros, now, window, failures);
}

tks_result tks_attempts_block(tks_store *s, const uint64_t *keys, size_t n, const int64_t *until)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (!attempts_args_ok(s, keys, n, until, "tks_attempts_block")) {
        return TKS_ERR;
    }
    return s->be->attempts_block(s, keys, n, until);
}

tks_result tks_attempts_get(tks_store *s, const uint64_t *keys, size_t n, int64_t *blocked_until)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (!attempts_args_ok(s, keys, n, blocked_until, "tks_attempts_get")) {
        return TKS_ERR;
    }
    memset(blocked_until, 0, n * sizeof *blocked_until);
    tks_result r = s->be->attempts_get(s, keys, n, blocked_until);
    if (r != TKS_OK) {
        memset(blocked_until, 0, n * sizeof *blocked_until);
    }
    return r;
}

tks_result tks_attempts_clear(tks_store *s, uint64_t key)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->attempts_clear(s, key);
}

tks_result tks_attempts_purge(tks_store *s, int64_t now, int64_t window)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->attempts_purge(s, now, window);
}

int tksi_take_wanted(uint64_t key, int64_t blocked_until, void *ud)
{
    struct tksi_wanted *w = ud;
    for (size_t i = 0; i < w->n; i++) {
        if (w->keys[i] == key) {
            w->blocked_until[i] = blocked_until;
        }
    }
    return 0;
}

tks_result tks_attempts_live(tks_store *s, int64_t now, int64_t window, size_t max,
                             int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud)
{
    if (s == NULL || fn == NULL || max == 0 || max > INT64_MAX) {
        if (s != NULL) {
            tksi_seterr(s, "tks_attempts_live: no callback or no room");
        }
        return TKS_ERR;
    }
    return s->be->attempts_live(s, now, window, max, fn, ud);
}

tks_result tks_revocations_changed(tks_store *s, int64_t *cursor, int64_t now,
                                   int (*fn)(const tks_revocation *r, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (cursor == NULL || fn == NULL) {
        tksi_seterr(s, "tks_revocations_changed: NULL argument");
        return TKS_ERR;
    }
    tks_revocation *rows = calloc(TKSI_REV_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing revocations");
        return TKS_ERR;
    }
    int64_t next = *cursor;
    int64_t after = 0;
    tks_result r = TKS_OK;
    for (int first = 1;; first = 0) {
        size_t n = 0;
        int64_t page_next = *cursor;
        int64_t last = after;
        /* not cleared between pages (1.3 MiB): backends fill every field */
        r = s->be->revocation_changes(s, *cursor, after, now, rows, TKSI_REV_PAGE, &n, &page_next, &last);
        if (r != TKS_OK) {
            break;
        }
        if (first) {
            next = page_next;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(&rows[i], ud) != 0;
        }
        if (stop) {
            /* the caller did not take everything: do not move past it */
            next = *cursor;
            break;
        }
        if (n < TKSI_REV_PAGE) {
            break;
        }
        if (last == after) {
            tksi_seterr(s, "revocation catch-up did not advance");
            r = TKS_ERR;
            break;
        }
        after = last;
    }
    free(rows);
    if (r == TKS_OK) {
        *cursor = next;
    }
    return r;
}

tks_result tks_watch(tks_store *s, void (*fn)(int what, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (s->be->watch == NULL) {
        return TKS_NOT_FOUND;
    }
    return s->be->watch(s, fn, ud);
}

tks_result tks_revocations_purge(tks_store *s, int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->revocations_purge(s, now);
}

tks_result tks_purge_batch(tks_store *s, const tks_purge *p, size_t limit, size_t *n)
{
    if (n != NULL) {
        *n = 0;
    }
    if (s == NULL || p == NULL || n == NULL) {
        return TKS_ERR;
    }
    if (limit == 0 || limit > TKS_PURGE_LIMIT_MAX || p->kind < TKS_PURGE_REVOCATIONS || p->kind > TKS_PURGE_SESSIONS) {
        tksi_seterr(s, "purge: a kind from store.h and 1 to %d rows", TKS_PURGE_LIMIT_MAX);
        return TKS_ERR;
    }
    /* the session bounds are before - idle and before - max_age: keep the
     * arithmetic in range (times are Unix seconds, durations a few years) */
    const int64_t big = (int64_t)1 << 40;
    if (p->before < -big || p->before > big || p->from < -big || p->from > big || p->window < 0 || p->window > big ||
        p->idle < 0 || p->idle > big || p->max_age < 0 || p->max_age > big) {
        tksi_seterr(s, "purge: a time or duration out of range");
        return TKS_ERR;
    }
    return s->be->purge_batch(s, p, limit, n);
}

/* ---- users --------------------------------------------------------------- */

/* The profile fields are NUL-terminated within their arrays. */
static int profile_ok(tks_store *s, const tks_user *u)
{
    const char *const f[] = {u->name, u->given_name, u->family_name, u->preferred_username, u->email};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (memchr(f[i], '\0', TKS_PROFILE_MAX + 1) == NULL) {
            tksi_seterr(s, "a profile field is longer than %d bytes", TKS_PROFILE_MAX);
            return 0;
        }
    }
    return 1;
}

tks_result tks_user_insert(tks_store *s, const tks_user *u)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (u == NULL) {
        tksi_seterr(s, "tks_user_insert: no user");
        return TKS_ERR;
    }
    if (!field_ok(u->id, sizeof u->id) || u->id[0] == '\0') {
        tksi_seterr(s, "user id must be 1 to %d bytes", TKS_ID_MAX);
        return TKS_ERR;
    }
    if (!field_ok(u->pwhash, sizeof u->pwhash) || u->pwhash[0] == '\0') {
        tksi_seterr(s, "password hash must be 1 to %d bytes", TKS_PWHASH_MAX);
        return TKS_ERR;
    }
    if (!profile_ok(s, u)) {
        return TKS_ERR;
    }
    return s->be->user_insert(s, u);
}

tks_result tks_user_set_profile(tks_store *s, const tks_user *u)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (u == NULL) {
        tksi_seterr(s, "tks_user_set_profile: no user");
        return TKS_ERR;
    }
    if (!profile_ok(s, u)) {
        return TKS_ERR;
    }
    if (!field_ok(u->id, sizeof u->id) || u->id[0] == '\0') {
        return TKS_NOT_FOUND;
    }
    return s->be->user_set_profile(s, u);
}

tks_result tks_user_get(tks_store *s, const char *id, tks_user *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL || out == NULL) {
        tksi_seterr(s, "tks_user_get: NULL argument");
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    tks_result r = s->be->user_get(s, id, out);
    if (r != TKS_OK) {
        OPENSSL_cleanse(out, sizeof *out);
    }
    return r;
}

tks_result tks_user_set_password(tks_store *s, const char *id, const char *pwhash, int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL) {
        tksi_seterr(s, "tks_user_set_password: no user id");
        return TKS_ERR;
    }
    if (!str_ok(pwhash, TKS_PWHASH_MAX)) {
        tksi_seterr(s, "password hash must be 1 to %d bytes", TKS_PWHASH_MAX);
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->user_set_password(s, id, pwhash, now);
}

tks_result tks_user_set_disabled(tks_store *s, const char *id, int disabled)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL) {
        tksi_seterr(s, "tks_user_set_disabled: no user id");
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->user_set_disabled(s, id, disabled != 0);
}

tks_result tks_user_delete(tks_store *s, const char *id)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id == NULL) {
        tksi_seterr(s, "tks_user_delete: no user id");
        return TKS_ERR;
    }
    if (!str_ok(id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->user_delete(s, id);
}

tks_result tks_user_list(tks_store *s, int (*fn)(const tks_user *u, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (fn == NULL) {
        tksi_seterr(s, "tks_user_list: no callback");
        return TKS_ERR;
    }
    tks_user *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing users");
        return TKS_ERR;
    }
    char after[TKS_ID_MAX + 1] = "";
    tks_result r = TKS_OK;
    for (;;) {
        size_t n = 0;
        OPENSSL_cleanse(rows, TKSI_PAGE * sizeof *rows);
        r = s->be->user_page(s, after, rows, TKSI_PAGE, &n);
        if (r != TKS_OK || n == 0) {
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(&rows[i], ud) != 0;
        }
        if (stop || n < TKSI_PAGE) {
            break;
        }
        if (strcmp(rows[n - 1].id, after) <= 0) {
            tksi_seterr(s, "user listing did not advance");
            r = TKS_ERR;
            break;
        }
        memcpy(after, rows[n - 1].id, sizeof after);
    }
    /* Password hashes are not secrets, but they are what an offline guesser
     * needs: do not leave them in freed memory. */
    OPENSSL_cleanse(rows, TKSI_PAGE * sizeof *rows);
    free(rows);
    return r;
}

/* ---- sessions ------------------------------------------------------------ */

tks_result tks_session_insert(tks_store *s, const tks_session *se)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (se == NULL) {
        tksi_seterr(s, "tks_session_insert: no session");
        return TKS_ERR;
    }
    if (!field_ok(se->sid, sizeof se->sid) || se->sid[0] == '\0') {
        tksi_seterr(s, "session sid must be 1 to %d bytes", TKS_SID_MAX);
        return TKS_ERR;
    }
    if (!field_ok(se->user_id, sizeof se->user_id) || se->user_id[0] == '\0') {
        tksi_seterr(s, "session user id must be 1 to %d bytes", TKS_ID_MAX);
        return TKS_ERR;
    }
    return s->be->session_insert(s, se);
}

tks_result tks_session_get(tks_store *s, const unsigned char id_hash[32], tks_session *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id_hash == NULL || out == NULL) {
        tksi_seterr(s, "tks_session_get: NULL argument");
        return TKS_ERR;
    }
    tks_result r = s->be->session_get(s, id_hash, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_session_touch(tks_store *s, const unsigned char id_hash[32], int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (id_hash == NULL) {
        tksi_seterr(s, "tks_session_touch: no session id hash");
        return TKS_ERR;
    }
    return s->be->session_touch(s, id_hash, now);
}

tks_result tks_session_end(tks_store *s, const char *sid, int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (sid == NULL) {
        tksi_seterr(s, "tks_session_end: no sid");
        return TKS_ERR;
    }
    /* ended_at 0 means "active": ending at 0 would end nothing. */
    if (now <= 0) {
        tksi_seterr(s, "tks_session_end: the time must be positive (got %lld)", (long long)now);
        return TKS_ERR;
    }
    if (!str_ok(sid, TKS_SID_MAX)) {
        return TKS_NOT_FOUND;
    }
    return s->be->session_end(s, sid, now);
}

tks_result tks_session_get_sid(tks_store *s, const char *sid, tks_session *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (sid == NULL || out == NULL) {
        tksi_seterr(s, "tks_session_get_sid: NULL argument");
        return TKS_ERR;
    }
    if (!str_ok(sid, TKS_SID_MAX)) {
        return TKS_NOT_FOUND;
    }
    tks_result r = s->be->session_get_sid(s, sid, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_session_clients(tks_store *s, const char *sid, int (*fn)(const char *client_id, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (sid == NULL || fn == NULL) {
        tksi_seterr(s, "tks_session_clients: NULL argument");
        return TKS_ERR;
    }
    if (!str_ok(sid, TKS_SID_MAX)) {
        return TKS_OK; /* no session can have that sid: no client took part in it */
    }
    tksi_client_id *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing a session's clients");
        return TKS_ERR;
    }
    char after[TKS_ID_MAX + 1] = "";
    tks_result r = TKS_OK;
    for (;;) {
        size_t n = 0;
        memset(rows, 0, TKSI_PAGE * sizeof *rows);
        r = s->be->session_client_page(s, sid, after, rows, TKSI_PAGE, &n);
        if (r != TKS_OK || n == 0) {
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(rows[i].id, ud) != 0;
        }
        if (stop || n < TKSI_PAGE) {
            break;
        }
        if (strcmp(rows[n - 1].id, after) <= 0) {
            tksi_seterr(s, "session client listing did not advance");
            r = TKS_ERR;
            break;
        }
        memcpy(after, rows[n - 1].id, sizeof after);
    }
    free(rows);
    return r;
}

/* ---- consent --------------------------------------------------------------- */

tks_result tks_consent_put(tks_store *s, const tks_consent *c)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (c == NULL) {
        tksi_seterr(s, "tks_consent_put: no consent");
        return TKS_ERR;
    }
    if (!field_ok(c->user_id, sizeof c->user_id) || c->user_id[0] == '\0' ||
        !field_ok(c->client_id, sizeof c->client_id) || c->client_id[0] == '\0') {
        tksi_seterr(s, "consent user id and client id must be 1 to %d bytes", TKS_ID_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->scope, sizeof c->scope)) {
        tksi_seterr(s, "consent scope longer than %d bytes", TKS_LIST_MAX);
        return TKS_ERR;
    }
    return s->be->consent_put(s, c);
}

tks_result tks_consent_get(tks_store *s, const char *user_id, const char *client_id, tks_consent *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (user_id == NULL || client_id == NULL || out == NULL) {
        tksi_seterr(s, "tks_consent_get: NULL argument");
        return TKS_ERR;
    }
    if (!str_ok(user_id, TKS_ID_MAX) || !str_ok(client_id, TKS_ID_MAX)) {
        return TKS_NOT_FOUND;
    }
    tks_result r = s->be->consent_get(s, user_id, client_id, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_consent_list(tks_store *s, const char *user_id, int (*fn)(const tks_consent *c, void *ud), void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (user_id == NULL || fn == NULL) {
        tksi_seterr(s, "tks_consent_list: NULL argument");
        return TKS_ERR;
    }
    if (!str_ok(user_id, TKS_ID_MAX)) {
        return TKS_OK; /* no such user, so no consent */
    }
    tks_consent *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing consents");
        return TKS_ERR;
    }
    char after[TKS_ID_MAX + 1] = "";
    tks_result r = TKS_OK;
    for (;;) {
        size_t n = 0;
        memset(rows, 0, TKSI_PAGE * sizeof *rows);
        r = s->be->consent_page(s, user_id, after, rows, TKSI_PAGE, &n);
        if (r != TKS_OK || n == 0) {
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            stop = fn(&rows[i], ud) != 0;
        }
        if (stop || n < TKSI_PAGE) {
            break;
        }
        if (strcmp(rows[n - 1].client_id, after) <= 0) {
            tksi_seterr(s, "consent listing did not advance");
            r = TKS_ERR;
            break;
        }
        memcpy(after, rows[n - 1].client_id, sizeof after);
    }
    free(rows);
    return r;
}

tks_result tks_consent_delete(tks_store *s, const char *user_id, const char *client_id, int *n)
{
    int dummy = 0;
    if (n == NULL) {
        n = &dummy;
    }
    *n = 0;
    if (s == NULL) {
        return TKS_ERR;
    }
    if (user_id == NULL) {
        tksi_seterr(s, "tks_consent_delete: no user id");
        return TKS_ERR;
    }
    /* an id no row can hold: nothing to delete */
    if (!str_ok(user_id, TKS_ID_MAX) || (client_id != NULL && !str_ok(client_id, TKS_ID_MAX))) {
        return TKS_OK;
    }
    tks_result r = s->be->consent_delete(s, user_id, client_id, n);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

/* ---- authorization codes --------------------------------------------------- */

tks_result tks_code_insert(tks_store *s, const tks_code *c)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (c == NULL) {
        tksi_seterr(s, "tks_code_insert: no code");
        return TKS_ERR;
    }
    if (!field_ok(c->client_id, sizeof c->client_id) || c->client_id[0] == '\0' ||
        !field_ok(c->user_id, sizeof c->user_id) || c->user_id[0] == '\0') {
        tksi_seterr(s, "code client id and user id must be 1 to %d bytes", TKS_ID_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->sid, sizeof c->sid) || c->sid[0] == '\0') {
        tksi_seterr(s, "code sid must be 1 to %d bytes", TKS_SID_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->redirect_uri, sizeof c->redirect_uri)) {
        tksi_seterr(s, "code redirect URI longer than %d bytes", TKS_URI_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->challenge, sizeof c->challenge)) {
        tksi_seterr(s, "code challenge longer than %zu bytes", sizeof c->challenge - 1);
        return TKS_ERR;
    }
    if (!field_ok(c->scope, sizeof c->scope)) {
        tksi_seterr(s, "code scope longer than %d bytes", TKS_LIST_MAX);
        return TKS_ERR;
    }
    if (!field_ok(c->audience, sizeof c->audience)) {
        tksi_seterr(s, "code audience longer than %zu bytes", sizeof c->audience - 1);
        return TKS_ERR;
    }
    if (!field_ok(c->nonce, sizeof c->nonce)) {
        tksi_seterr(s, "code nonce longer than %d bytes", TKS_NONCE_MAX);
        return TKS_ERR;
    }
    return s->be->code_insert(s, c);
}

/* The checks every refresh row written gets (insert and rotation). */
static int refresh_row_ok(tks_store *s, const tks_refresh *r)
{
    if (!field_ok(r->sid, sizeof r->sid) || r->sid[0] == '\0') {
        tksi_seterr(s, "refresh token sid must be 1 to %d bytes", TKS_SID_MAX);
        return 0;
    }
    if (!field_ok(r->client_id, sizeof r->client_id) || r->client_id[0] == '\0' ||
        !field_ok(r->user_id, sizeof r->user_id) || r->user_id[0] == '\0') {
        tksi_seterr(s, "refresh token client id and user id must be 1 to %d bytes", TKS_ID_MAX);
        return 0;
    }
    if (!field_ok(r->scope, sizeof r->scope)) {
        tksi_seterr(s, "refresh token scope longer than %d bytes", TKS_LIST_MAX);
        return 0;
    }
    if (!field_ok(r->audience, sizeof r->audience)) {
        tksi_seterr(s, "refresh token audience longer than %zu bytes", sizeof r->audience - 1);
        return 0;
    }
    return 1;
}

tks_result tks_code_exchange(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *first,
                             tks_code *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (hash == NULL || out == NULL) {
        tksi_seterr(s, "tks_code_exchange: NULL argument");
        return TKS_ERR;
    }
    /* used_at 0 means "unused": redeeming at 0 would leave it redeemable. */
    if (now <= 0) {
        tksi_seterr(s, "tks_code_exchange: the time must be positive (got %lld)", (long long)now);
        return TKS_ERR;
    }
    if (first != NULL && !refresh_row_ok(s, first)) {
        return TKS_ERR;
    }
    tks_result r = s->be->code_exchange(s, hash, now, first, out);
    if (r != TKS_OK && r != TKS_EXISTS) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_code_redeem(tks_store *s, const unsigned char hash[32], int64_t now, tks_code *out)
{
    return tks_code_exchange(s, hash, now, NULL, out);
}

tks_result tks_code_purge(tks_store *s, int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->code_purge(s, now);
}

/* ---- refresh tokens ------------------------------------------------------ */

tks_result tks_refresh_insert(tks_store *s, const tks_refresh *r)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (r == NULL) {
        tksi_seterr(s, "tks_refresh_insert: no refresh token");
        return TKS_ERR;
    }
    if (!refresh_row_ok(s, r)) {
        return TKS_ERR;
    }
    return s->be->refresh_insert(s, r);
}

tks_result tks_refresh_rotate(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *next,
                              tks_refresh *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (hash == NULL || out == NULL) {
        tksi_seterr(s, "tks_refresh_rotate: NULL argument");
        return TKS_ERR;
    }
    /* used_at 0 means "unused": using at 0 would leave it usable. */
    if (now <= 0) {
        tksi_seterr(s, "tks_refresh_rotate: the time must be positive (got %lld)", (long long)now);
        return TKS_ERR;
    }
    if (next != NULL && (!refresh_row_ok(s, next) || memcmp(next->hash, hash, 32) == 0)) {
        if (memcmp(next->hash, hash, 32) == 0) {
            tksi_seterr(s, "tks_refresh_rotate: a token cannot replace itself");
        }
        return TKS_ERR;
    }
    tks_result r = s->be->refresh_rotate(s, hash, now, next, out);
    if (r != TKS_OK && r != TKS_EXISTS) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_refresh_use(tks_store *s, const unsigned char hash[32], int64_t now, tks_refresh *out)
{
    return tks_refresh_rotate(s, hash, now, NULL, out);
}

tks_result tks_session_end_user(tks_store *s, const char *user_id, int64_t now, int (*fn)(const char *sid, void *ud),
                                void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (user_id == NULL || fn == NULL) {
        tksi_seterr(s, "tks_session_end_user: NULL argument");
        return TKS_ERR;
    }
    if (now <= 0) {
        tksi_seterr(s, "tks_session_end_user: the time must be positive (got %lld)", (long long)now);
        return TKS_ERR;
    }
    return s->be->session_end_user(s, user_id, now, fn, ud);
}

tks_result tks_code_get(tks_store *s, const unsigned char hash[32], tks_code *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (hash == NULL || out == NULL) {
        tksi_seterr(s, "tks_code_get: NULL argument");
        return TKS_ERR;
    }
    tks_result r = s->be->code_get(s, hash, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_refresh_get(tks_store *s, const unsigned char hash[32], tks_refresh *out)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (s == NULL) {
        return TKS_ERR;
    }
    if (hash == NULL || out == NULL) {
        tksi_seterr(s, "tks_refresh_get: NULL argument");
        return TKS_ERR;
    }
    tks_result r = s->be->refresh_get(s, hash, out);
    if (r != TKS_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

tks_result tks_refresh_purge(tks_store *s, int64_t now)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    return s->be->refresh_purge(s, now);
}

/* ---- audit --------------------------------------------------------------- */

tks_result tks_audit(tks_store *s, int64_t now, const char *kind, const char *client_id, const char *ip,
                     const char *detail)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (!str_ok(kind, TKSI_KIND_MAX)) {
        tksi_seterr(s, "audit kind must be 1 to %d bytes", TKSI_KIND_MAX);
        return TKS_ERR;
    }
    if (!opt_str_ok(client_id, TKS_ID_MAX)) {
        tksi_seterr(s, "audit client id longer than %d bytes", TKS_ID_MAX);
        return TKS_ERR;
    }
    if (!opt_str_ok(ip, TKSI_IP_MAX)) {
        tksi_seterr(s, "audit ip longer than %d bytes", TKSI_IP_MAX);
        return TKS_ERR;
    }
    if (!opt_str_ok(detail, TKS_DETAIL_MAX)) {
        tksi_seterr(s, "audit detail longer than %d bytes", TKS_DETAIL_MAX);
        return TKS_ERR;
    }
    return s->be->audit(s, now, kind, client_id, ip, detail);
}

tks_result tks_audit_list(tks_store *s, size_t limit,
                          int (*fn)(int64_t at, const char *kind, const char *client_id, const char *ip,
                                    const char *detail, void *ud),
                          void *ud)
{
    if (s == NULL) {
        return TKS_ERR;
    }
    if (fn == NULL) {
        tksi_seterr(s, "tks_audit_list: no callback");
        return TKS_ERR;
    }
    if (limit == 0) {
        return TKS_OK;
    }
    tksi_audit_row *rows = calloc(TKSI_PAGE, sizeof *rows);
    if (rows == NULL) {
        tksi_seterr(s, "out of memory listing audit events");
        return TKS_ERR;
    }
    int64_t before = INT64_MAX;
    size_t left = limit;
    tks_result r = TKS_OK;
    while (left > 0) {
        size_t cap = left < TKSI_PAGE ? left : TKSI_PAGE;
        size_t n = 0;
        memset(rows, 0, TKSI_PAGE * sizeof *rows);
        r = s->be->audit_page(s, before, rows, cap, &n);
        if (r != TKS_OK || n == 0) {
            break;
        }
        int stop = 0;
        for (size_t i = 0; i < n && !stop; i++) {
            const tksi_audit_row *a = &rows[i];
            stop = fn(a->at, a->kind, a->client_id, a->ip, a->detail, ud) != 0;
        }
        left -= n;
        if (stop || n < cap) {
            break;
        }
        if (rows[n - 1].id >= before) {
            tksi_seterr(s, "audit listing did not advance");
            r = TKS_ERR;
            break;
        }
        before = rows[n - 1].id;
    }
    free(rows);
    return r;
}
