/*
 * test_store.c — the persistence contract (src/store/store.h) on the SQLite
 * backend.
 *
 * Every contract test runs twice: on "sqlite://:memory:" and on a file in a
 * fresh mkdtemp directory (STYLE.md: one test body per backend; PostgreSQL
 * joins the table when postgres.c exists). File-only tests cover what only a
 * file has: mode 0600 for new files, persistence across reopen, WAL, schema
 * versions a newer tokend wrote, values too long for our structs written by
 * something else, the busy timeout, and several threads and connections.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

/* ---- fixtures ------------------------------------------------------------ */

struct fixture {
    int on_file;
    char dir[64];
    char path[128];
    char url[160];
    tks_store *s;
};

static void tmpdir_make(struct fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/tokend-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/tokend.db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite://%s", f->path);
}

static void tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Opens the variant's store: memory, or a file in a fresh directory. */
static int store_setup(void **state)
{
    struct fixture *f = *state;
    if (f->on_file) {
        tmpdir_make(f);
    } else {
        snprintf(f->url, sizeof f->url, "sqlite://:memory:");
    }
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    assert_non_null(f->s);
    return 0;
}

static int store_teardown(void **state)
{
    struct fixture *f = *state;
    tks_close(f->s);
    f->s = NULL;
    if (f->on_file) {
        tmpdir_remove(f->dir);
    }
    return 0;
}

/* A fresh directory, nothing opened (file-only tests open themselves). */
static int dir_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->on_file = 1;
    tmpdir_make(f);
    *state = f;
    return 0;
}

static int dir_teardown(void **state)
{
    struct fixture *f = *state;
    tks_close(f->s);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static struct fixture MEMORY = {.on_file = 0};
static struct fixture ONFILE = {.on_file = 1};

/* A raw SQLite connection to a fixture's file, to look behind the store. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg ? msg : "?");
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void make_client(tks_client *c, const char *id)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->name, sizeof c->name, "Client %s", id);
    for (size_t i = 0; i < sizeof c->secret_hash; i++) {
        c->secret_hash[i] = (unsigned char)(i * 7 + (unsigned char)id[0]);
    }
    snprintf(c->scopes, sizeof c->scopes, "orders:read orders:write");
    snprintf(c->audiences, sizeof c->audiences, "https://api.example.com https://other.example.com");
    c->ttl = 900;
    c->disabled = 0;
    c->created_at = 1700000000;
}

static void assert_client_equal(const tks_client *a, const tks_client *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_memory_equal(a->secret_hash, b->secret_hash, sizeof a->secret_hash);
    assert_string_equal(a->scopes, b->scopes);
    assert_string_equal(a->audiences, b->audiences);
    assert_int_equal(a->ttl, b->ttl);
    assert_int_equal(a->disabled, b->disabled);
    assert_int_equal(a->created_at, b->created_at);
}

/* ---- opening ------------------------------------------------------------- */

static void expect_open_error(const char *url, const char *msg)
{
    static char sentinel;
    char err[256];
    memset(err, 'x', sizeof err);
    tks_store *s = (tks_store *)(void *)&sentinel; /* must be reset to NULL */
    assert_int_equal(tks_open(url, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
    assert_string_equal(err, msg);
}

static void test_url_schemes(void **state)
{
    (void)state;
    expect_open_error("mysql://localhost/tokend", "unknown store URL scheme (use sqlite://PATH)");
    expect_open_error("", "unknown store URL scheme (use sqlite://PATH)");
    expect_open_error("sqlite:tokend.db", "unknown store URL scheme (use sqlite://PATH)");
    expect_open_error("./tokend.db", "unknown store URL scheme (use sqlite://PATH)");
    expect_open_error("postgres://tokend@db.internal/tokend", "PostgreSQL support is not built yet");
    expect_open_error("postgresql://db.internal/tokend", "PostgreSQL support is not built yet");
    expect_open_error("sqlite://",
                      "the store URL sqlite:// has no path (use sqlite://PATH, e.g. sqlite://./tokend.db)");

    /* A URL may hold a password: it is never echoed. */
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open("mysql://admin:hunter2@db/x", &s, err, sizeof err), TKS_ERR);
    assert_null(strstr(err, "hunter2"));

    /* NULL url, no out, no error buffer: refused without crashing. */
    assert_int_equal(tks_open(NULL, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
    assert_int_equal(tks_open("sqlite://:memory:", NULL, err, sizeof err), TKS_ERR);
    assert_int_equal(tks_open("nope://", &s, NULL, 0), TKS_ERR);
    /* A tiny error buffer is truncated, still terminated. */
    char small[8];
    assert_int_equal(tks_open("nope://", &s, small, sizeof small), TKS_ERR);
    assert_string_equal(small, "unknown");

    /* The scheme is case-insensitive (RFC 3986 §3.1). */
    assert_int_equal(tks_open("SQLite://:memory:", &s, err, sizeof err), TKS_OK);
    tks_close(s);
    tks_close(NULL);
}

static void test_open_basics(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tks_schema_version(f->s), 1);
    assert_int_equal(tks_ping(f->s), TKS_OK);
    assert_string_equal(tks_errmsg(f->s), "no error");
    assert_non_null(tks_errmsg(NULL));
    assert_int_equal(tks_schema_version(NULL), 0);
    assert_int_equal(tks_ping(NULL), TKS_ERR);
}

/* ---- clients ------------------------------------------------------------- */

static void test_clients_crud(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_client c, got;
    make_client(&c, "orders-service");
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);

    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_client_get(s, "orders-service", &got), TKS_OK);
    assert_client_equal(&got, &c);

    /* Duplicate id. */
    tks_client dup;
    make_client(&dup, "orders-service");
    snprintf(dup.name, sizeof dup.name, "another");
    assert_int_equal(tks_client_insert(s, &dup), TKS_EXISTS);
    assert_int_equal(tks_client_get(s, "orders-service", &got), TKS_OK);
    assert_string_equal(got.name, c.name);

    /* Unknown, empty and impossible ids: not found, out zeroed. */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_client_get(s, "nobody", &got), TKS_NOT_FOUND);
    assert_int_equal(got.id[0], 0);
    assert_int_equal(got.ttl, 0);
    assert_int_equal(tks_client_get(s, "", &got), TKS_NOT_FOUND);
    char longid[200];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(tks_client_get(s, longid, &got), TKS_NOT_FOUND);
    /* Case matters. */
    assert_int_equal(tks_client_get(s, "Orders-Service", &got), TKS_NOT_FOUND);

    /* Disable and enable; any non-zero means disabled. */
    assert_int_equal(tks_client_set_disabled(s, "orders-service", 5), TKS_OK);
    assert_int_equal(tks_client_get(s, "orders-service", &got), TKS_OK);
    assert_int_equal(got.disabled, 1);
    assert_int_equal(tks_client_set_disabled(s, "orders-service", 0), TKS_OK);
    assert_int_equal(tks_client_get(s, "orders-service", &got), TKS_OK);
    assert_int_equal(got.disabled, 0);
    assert_int_equal(tks_client_set_disabled(s, "nobody", 1), TKS_NOT_FOUND);
    assert_int_equal(tks_client_set_disabled(s, longid, 1), TKS_NOT_FOUND);

    /* Inserted disabled. */
    tks_client d;
    make_client(&d, "disabled-one");
    d.disabled = 1;
    assert_int_equal(tks_client_insert(s, &d), TKS_OK);
    assert_int_equal(tks_client_get(s, "disabled-one", &got), TKS_OK);
    assert_int_equal(got.disabled, 1);

    /* Delete. */
    assert_int_equal(tks_client_delete(s, "orders-service"), TKS_OK);
    assert_int_equal(tks_client_get(s, "orders-service", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_client_delete(s, "orders-service"), TKS_NOT_FOUND);
    assert_int_equal(tks_client_delete(s, longid), TKS_NOT_FOUND);
    assert_int_equal(tks_client_get(s, "disabled-one", &got), TKS_OK);
    /* The id is free again. */
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);

    /* NULL arguments. */
    assert_int_equal(tks_client_insert(s, NULL), TKS_ERR);
    assert_int_equal(tks_client_get(s, NULL, &got), TKS_ERR);
    assert_int_equal(tks_client_get(s, "x", NULL), TKS_ERR);
    assert_int_equal(tks_client_get(NULL, "x", &got), TKS_ERR);
    assert_int_equal(tks_client_delete(s, NULL), TKS_ERR);
    assert_int_equal(tks_client_set_disabled(s, NULL, 1), TKS_ERR);
}

/* Values at their limit round-trip; one byte more is refused, not cut. */
static void test_client_limits(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_client c, got;
    make_client(&c, "x");
    memset(c.id, 'i', TKS_ID_MAX);
    c.id[TKS_ID_MAX] = '\0';
    memset(c.name, 'n', TKS_NAME_MAX);
    c.name[TKS_NAME_MAX] = '\0';
    memset(c.scopes, 's', TKS_LIST_MAX);
    c.scopes[TKS_LIST_MAX] = '\0';
    memset(c.audiences, 'a', TKS_LIST_MAX);
    c.audiences[TKS_LIST_MAX] = '\0';
    c.ttl = INT64_MAX;
    c.created_at = INT64_MIN;
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    assert_int_equal(tks_client_get(s, c.id, &got), TKS_OK);
    assert_client_equal(&got, &c);

    /* Fields with no NUL inside their array. */
    tks_client bad;
    make_client(&bad, "bad-name");
    memset(bad.name, 'n', sizeof bad.name);
    assert_int_equal(tks_client_insert(s, &bad), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "name"));
    make_client(&bad, "bad-scopes");
    memset(bad.scopes, 's', sizeof bad.scopes);
    assert_int_equal(tks_client_insert(s, &bad), TKS_ERR);
    make_client(&bad, "bad-aud");
    memset(bad.audiences, 'a', sizeof bad.audiences);
    assert_int_equal(tks_client_insert(s, &bad), TKS_ERR);
    make_client(&bad, "x");
    memset(bad.id, 'i', sizeof bad.id);
    assert_int_equal(tks_client_insert(s, &bad), TKS_ERR);
    make_client(&bad, "x");
    bad.id[0] = '\0';
    assert_int_equal(tks_client_insert(s, &bad), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "client id"));

    /* None of the refused ones was stored (or stored cut short). */
    assert_int_equal(tks_client_get(s, "bad-name", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_client_get(s, "bad-scopes", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_client_get(s, "bad-aud", &got), TKS_NOT_FOUND);
    char cut[TKS_ID_MAX + 1];
    memset(cut, 'i', TKS_ID_MAX);
    cut[TKS_ID_MAX] = '\0';
    assert_int_equal(tks_client_delete(s, cut), TKS_OK); /* the good one */
    assert_int_equal(tks_client_get(s, cut, &got), TKS_NOT_FOUND);
}

struct client_walk {
    tks_store *s;
    int n;
    int stop_after; /* 0 = never */
    char last[TKS_ID_MAX + 1];
    int out_of_order;
    int reentry_failed;
};

static int walk_client(const tks_client *c, void *ud)
{
    struct client_walk *w = ud;
    if (w->n > 0 && strcmp(c->id, w->last) <= 0) {
        w->out_of_order = 1;
    }
    snprintf(w->last, sizeof w->last, "%s", c->id);
    /* A callback may call back into the store (no lock is held). */
    tks_client again;
    if (tks_client_get(w->s, c->id, &again) != TKS_OK || strcmp(again.name, c->name) != 0) {
        w->reentry_failed = 1;
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static void test_client_list(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    struct client_walk w = {.s = s};
    assert_int_equal(tks_client_list(s, walk_client, &w), TKS_OK);
    assert_int_equal(w.n, 0);

    /* 70 clients (more than two pages), inserted out of order. */
    for (int i = 0; i < 70; i++) {
        tks_client c;
        char id[16];
        snprintf(id, sizeof id, "client-%02d", (i * 37) % 70);
        make_client(&c, id);
        assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    }
    memset(&w, 0, sizeof w);
    w.s = s;
    assert_int_equal(tks_client_list(s, walk_client, &w), TKS_OK);
    assert_int_equal(w.n, 70);
    assert_false(w.out_of_order);
    assert_false(w.reentry_failed);
    assert_string_equal(w.last, "client-69");

    /* Stop early, within the first page and exactly at a page end. */
    int stops[] = {1, 5, 32, 33};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        memset(&w, 0, sizeof w);
        w.s = s;
        w.stop_after = stops[i];
        assert_int_equal(tks_client_list(s, walk_client, &w), TKS_OK);
        assert_int_equal(w.n, stops[i]);
    }
    assert_int_equal(tks_client_list(s, NULL, NULL), TKS_ERR);
}

/* A callback that deletes as it goes sees every client once. */
static int delete_walk(const tks_client *c, void *ud)
{
    struct client_walk *w = ud;
    if (tks_client_delete(w->s, c->id) != TKS_OK) {
        w->reentry_failed = 1;
    }
    w->n++;
    return 0;
}

static void test_client_list_delete_during(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    for (int i = 0; i < 40; i++) {
        tks_client c;
        char id[16];
        snprintf(id, sizeof id, "c%03d", i);
        make_client(&c, id);
        assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    }
    struct client_walk w = {.s = s};
    assert_int_equal(tks_client_list(s, delete_walk, &w), TKS_OK);
    assert_int_equal(w.n, 40);
    assert_false(w.reentry_failed);
    memset(&w, 0, sizeof w);
    w.s = s;
    assert_int_equal(tks_client_list(s, walk_client, &w), TKS_OK);
    assert_int_equal(w.n, 0);
}

/* ---- signing keys -------------------------------------------------------- */

static void make_key(tks_key_row *k, const char *kid, int64_t created_at, enum tks_key_state st, unsigned char *sealed,
                     size_t sealed_len, char *jwk)
{
    memset(k, 0, sizeof *k);
    snprintf(k->kid, sizeof k->kid, "%s", kid);
    snprintf(k->alg, sizeof k->alg, "ES256");
    k->state = st;
    k->created_at = created_at;
    k->public_jwk = jwk;
    k->sealed = sealed;
    k->sealed_len = sealed_len;
}

#define MAX_SEEN 64

struct key_walk {
    int n;
    int stop_after;
    char kids[MAX_SEEN][TKS_ID_MAX + 1];
    tks_key_row copy[MAX_SEEN]; /* scalar fields only */
    char jwk[MAX_SEEN][64];
    unsigned char sealed[MAX_SEEN][16];
    size_t sealed_len[MAX_SEEN];
    int jwk_null[MAX_SEEN];
};

static int walk_key(const tks_key_row *k, void *ud)
{
    struct key_walk *w = ud;
    if (w->n < MAX_SEEN) {
        snprintf(w->kids[w->n], sizeof w->kids[w->n], "%s", k->kid);
        w->copy[w->n] = *k;
        w->copy[w->n].public_jwk = NULL;
        w->copy[w->n].sealed = NULL;
        w->jwk_null[w->n] = k->public_jwk == NULL;
        snprintf(w->jwk[w->n], sizeof w->jwk[w->n], "%s", k->public_jwk ? k->public_jwk : "");
        w->sealed_len[w->n] = k->sealed_len;
        memcpy(w->sealed[w->n], k->sealed, k->sealed_len < 16 ? k->sealed_len : 16);
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static int64_t generation(tks_store *s)
{
    int64_t g = -1;
    assert_int_equal(tks_key_generation(s, &g), TKS_OK);
    return g;
}

static void test_keys(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    unsigned char sealed[] = {0x00, 0x01, 0x00, 0xff, 0x10, 0x00}; /* binary, with NULs */
    char jwk[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"BB\"}";
    int64_t g0 = generation(s);

    /* Oldest first: by created_at, then by kid. */
    tks_key_row k;
    make_key(&k, "k-b", 200, TKS_KEY_ACTIVE, sealed, sizeof sealed, jwk);
    k.activated_at = 200;
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    int64_t g1 = generation(s);
    assert_true(g1 > g0);
    make_key(&k, "k-a", 200, TKS_KEY_NEXT, sealed, sizeof sealed, jwk);
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "k-c", 100, TKS_KEY_RETIRED, sealed, 1, NULL); /* no public part (HMAC) */
    k.retired_at = 150;
    k.verify_until = 500;
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "k-d", 300, TKS_KEY_NEXT, sealed, sizeof sealed, jwk);
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    int64_t g2 = generation(s);
    assert_true(g2 > g1);

    struct key_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 4);
    assert_string_equal(w->kids[0], "k-c");
    assert_string_equal(w->kids[1], "k-a");
    assert_string_equal(w->kids[2], "k-b");
    assert_string_equal(w->kids[3], "k-d");
    assert_true(w->jwk_null[0]);
    assert_int_equal(w->sealed_len[0], 1);
    assert_int_equal(w->copy[0].state, TKS_KEY_RETIRED);
    assert_int_equal(w->copy[0].retired_at, 150);
    assert_int_equal(w->copy[0].verify_until, 500);
    assert_false(w->jwk_null[2]);
    assert_string_equal(w->jwk[2], jwk);
    assert_int_equal(w->sealed_len[2], sizeof sealed);
    assert_memory_equal(w->sealed[2], sealed, sizeof sealed);
    assert_string_equal(w->copy[2].alg, "ES256");
    assert_int_equal(w->copy[2].state, TKS_KEY_ACTIVE);
    assert_int_equal(w->copy[2].activated_at, 200);
    assert_int_equal(w->copy[2].created_at, 200);

    /* Stop early. */
    memset(w, 0, sizeof *w);
    w->stop_after = 2;
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 2);

    /* Duplicate kid: TKS_EXISTS, generation unchanged. */
    make_key(&k, "k-a", 999, TKS_KEY_NEXT, sealed, sizeof sealed, jwk);
    assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
    assert_int_equal(generation(s), g2);

    /* State changes: next -> active -> active -> retired -> retired -> next. */
    assert_int_equal(tks_key_set_state(s, "k-a", TKS_KEY_ACTIVE, 1000, 0), TKS_OK);
    int64_t g3 = generation(s);
    assert_true(g3 > g2);
    memset(w, 0, sizeof *w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_string_equal(w->kids[1], "k-a");
    assert_int_equal(w->copy[1].state, TKS_KEY_ACTIVE);
    assert_int_equal(w->copy[1].activated_at, 1000);
    assert_int_equal(w->copy[1].retired_at, 0);
    assert_int_equal(w->copy[1].verify_until, 0);

    assert_int_equal(tks_key_set_state(s, "k-a", TKS_KEY_ACTIVE, 2000, 0), TKS_OK);
    assert_int_equal(tks_key_set_state(s, "k-a", TKS_KEY_RETIRED, 3000, 5000), TKS_OK);
    memset(w, 0, sizeof *w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->copy[1].state, TKS_KEY_RETIRED);
    assert_int_equal(w->copy[1].activated_at, 1000); /* the first activation */
    assert_int_equal(w->copy[1].retired_at, 3000);
    assert_int_equal(w->copy[1].verify_until, 5000);

    assert_int_equal(tks_key_set_state(s, "k-a", TKS_KEY_RETIRED, 3500, 6000), TKS_OK);
    memset(w, 0, sizeof *w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->copy[1].retired_at, 3000);
    assert_int_equal(w->copy[1].verify_until, 6000);

    assert_int_equal(tks_key_set_state(s, "k-a", TKS_KEY_NEXT, 4000, 0), TKS_OK);
    memset(w, 0, sizeof *w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->copy[1].state, TKS_KEY_NEXT);
    assert_int_equal(w->copy[1].activated_at, 0);
    assert_int_equal(w->copy[1].retired_at, 0);
    assert_int_equal(w->copy[1].verify_until, 0);
    int64_t g4 = generation(s);
    assert_true(g4 > g3);

    /* Unknown kid and bad state: no change, generation unchanged. */
    assert_int_equal(tks_key_set_state(s, "nope", TKS_KEY_ACTIVE, 1, 0), TKS_NOT_FOUND);
    assert_int_equal(tks_key_set_state(s, "k-a", (enum tks_key_state)7, 1, 0), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "state"));
    assert_int_equal(tks_key_delete(s, "nope"), TKS_NOT_FOUND);
    assert_int_equal(generation(s), g4);

    /* Delete. */
    assert_int_equal(tks_key_delete(s, "k-c"), TKS_OK);
    int64_t g5 = generation(s);
    assert_true(g5 > g4);
    memset(w, 0, sizeof *w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 3);
    assert_string_equal(w->kids[0], "k-a");
    assert_int_equal(tks_key_delete(s, "k-c"), TKS_NOT_FOUND);

    assert_int_equal(tks_key_list(s, NULL, NULL), TKS_ERR);
    assert_int_equal(tks_key_generation(s, NULL), TKS_ERR);
    int64_t junk = 42;
    assert_int_equal(tks_key_generation(NULL, &junk), TKS_ERR);
    assert_int_equal(junk, 0);
    free(w);
}

/* More keys than a page, all created in the same second: the (created_at,
 * kid) cursor must neither skip nor repeat. */
static void test_key_list_paging(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    unsigned char sealed[4] = {1, 2, 3, 4};
    for (int i = 39; i >= 0; i--) {
        tks_key_row k;
        char kid[16];
        snprintf(kid, sizeof kid, "key-%02d", i);
        make_key(&k, kid, i < 20 ? 5 : 6, TKS_KEY_RETIRED, sealed, sizeof sealed, NULL);
        assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    }
    struct key_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 40);
    for (int i = 0; i < 40; i++) {
        char kid[16];
        snprintf(kid, sizeof kid, "key-%02d", i);
        assert_string_equal(w->kids[i], kid);
    }
    free(w);
}

static void test_key_limits(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    unsigned char sealed[4] = {1, 2, 3, 4};
    int64_t g = generation(s);
    tks_key_row k;

    make_key(&k, "x", 1, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    memset(k.kid, 'k', sizeof k.kid); /* no NUL */
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "", 1, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "k", 1, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    k.alg[0] = '\0';
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "k", 1, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    memset(k.alg, 'A', sizeof k.alg);
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "k", 1, (enum tks_key_state)3, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "k", 1, TKS_KEY_NEXT, NULL, 0, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "k", 1, TKS_KEY_NEXT, sealed, 0, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    make_key(&k, "k", 1, TKS_KEY_NEXT, sealed, (size_t)1 << 20, NULL); /* over the limit: never read */
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    char *big = malloc(20000);
    assert_non_null(big);
    memset(big, 'j', 19999);
    big[19999] = '\0';
    make_key(&k, "k", 1, TKS_KEY_NEXT, sealed, sizeof sealed, big);
    assert_int_equal(tks_key_insert(s, &k), TKS_ERR);
    free(big);
    assert_int_equal(tks_key_insert(s, NULL), TKS_ERR);
    assert_int_equal(generation(s), g);

    /* A kid of exactly TKS_ID_MAX bytes is fine. */
    make_key(&k, "x", 1, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    memset(k.kid, 'k', TKS_ID_MAX);
    k.kid[TKS_ID_MAX] = '\0';
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    struct key_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 1);
    assert_int_equal(strlen(w->kids[0]), TKS_ID_MAX);
    free(w);
    char longkid[100];
    memset(longkid, 'k', sizeof longkid - 1);
    longkid[sizeof longkid - 1] = '\0';
    assert_int_equal(tks_key_set_state(s, longkid, TKS_KEY_ACTIVE, 1, 0), TKS_NOT_FOUND);
    assert_int_equal(tks_key_delete(s, longkid), TKS_NOT_FOUND);
}

static void test_key_row_clear(void **state)
{
    (void)state;
    tks_key_row k;
    memset(&k, 0x5a, sizeof k);
    k.public_jwk = malloc(8);
    assert_non_null(k.public_jwk);
    snprintf(k.public_jwk, 8, "{}");
    k.sealed = malloc(32);
    assert_non_null(k.sealed);
    memset(k.sealed, 0xee, 32);
    k.sealed_len = 32;
    tks_key_row_clear(&k);
    const unsigned char *p = (const unsigned char *)&k;
    for (size_t i = 0; i < sizeof k; i++) {
        assert_int_equal(p[i], 0);
    }
    tks_key_row_clear(&k); /* twice is fine */
    tks_key_row_clear(NULL);
}

/* ---- revocations --------------------------------------------------------- */

#define MAX_REV 2100

struct rev_walk {
    int n;
    int stop_after;
    tks_revocation r[MAX_REV];
    tks_store *s;
    int revoke_inside;
    int inner_failed;
};

static int walk_rev(const tks_revocation *r, void *ud)
{
    struct rev_walk *w = ud;
    if (w->n < MAX_REV) {
        w->r[w->n] = *r;
    }
    w->n++;
    if (w->revoke_inside) {
        w->revoke_inside = 0;
        if (tks_revoke(w->s, TKS_REVOKE_JTI, "added-inside", "admin", 1, 1000000) != TKS_OK) {
            w->inner_failed = 1;
        }
    }
    return w->stop_after && w->n >= w->stop_after;
}

static struct rev_walk *since(tks_store *s, int64_t after, int64_t now)
{
    struct rev_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->s = s;
    assert_int_equal(tks_revocations_since(s, after, now, walk_rev, w), TKS_OK);
    for (int i = 1; i < w->n && i < MAX_REV; i++) {
        assert_true(w->r[i].seq > w->r[i - 1].seq);
    }
    return w;
}

static void test_revocations(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "jti-a", "logout", 100, 1000), TKS_OK);
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "sid-s", "refresh_reuse", 110, 2000), TKS_OK);

    struct rev_walk *w = since(s, 0, 200);
    assert_int_equal(w->n, 2);
    assert_int_equal(w->r[0].kind, TKS_REVOKE_JTI);
    assert_string_equal(w->r[0].value, "jti-a");
    assert_string_equal(w->r[0].reason, "logout");
    assert_int_equal(w->r[0].revoked_at, 100);
    assert_int_equal(w->r[0].until, 1000);
    assert_int_equal(w->r[1].kind, TKS_REVOKE_SID);
    assert_string_equal(w->r[1].value, "sid-s");
    int64_t seq_a = w->r[0].seq, seq_s = w->r[1].seq;
    assert_true(seq_s > seq_a);
    free(w);

    /* Again, later and not extending: nothing changes. */
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "jti-a", "admin", 150, 900), TKS_OK);
    w = since(s, 0, 200);
    assert_int_equal(w->n, 2);
    assert_int_equal(w->r[0].seq, seq_a);
    assert_int_equal(w->r[0].revoked_at, 100);
    assert_int_equal(w->r[0].until, 1000);
    assert_string_equal(w->r[0].reason, "logout");
    free(w);

    /* Again, earlier: the earliest revoked_at is kept, same seq. */
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "jti-a", "admin", 90, 1000), TKS_OK);
    w = since(s, 0, 200);
    assert_int_equal(w->r[0].seq, seq_a);
    assert_int_equal(w->r[0].revoked_at, 90);
    free(w);

    /* Again, extending until: the max is kept and the row gets a new seq, so
     * a poller that has seen seq_s learns the new until. */
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "jti-a", "admin", 300, 1500), TKS_OK);
    w = since(s, seq_s, 200);
    assert_int_equal(w->n, 1);
    assert_string_equal(w->r[0].value, "jti-a");
    assert_true(w->r[0].seq > seq_s);
    assert_int_equal(w->r[0].revoked_at, 90);
    assert_int_equal(w->r[0].until, 1500);
    assert_string_equal(w->r[0].reason, "logout");
    int64_t seq_a2 = w->r[0].seq;
    free(w);
    w = since(s, 0, 200);
    assert_int_equal(w->n, 2); /* still one row per (kind, value) */
    assert_string_equal(w->r[0].value, "sid-s");
    free(w);

    /* The same value under the other kind is another revocation; no reason. */
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "jti-a", NULL, 400, 3000), TKS_OK);
    w = since(s, seq_a2, 500);
    assert_int_equal(w->n, 1);
    assert_int_equal(w->r[0].kind, TKS_REVOKE_SID);
    assert_string_equal(w->r[0].reason, "");
    free(w);

    /* Only what is still in force at now: until > now. */
    w = since(s, 0, 1500);
    assert_int_equal(w->n, 2);
    assert_string_equal(w->r[0].value, "sid-s");
    assert_string_equal(w->r[1].value, "jti-a");
    assert_int_equal(w->r[1].kind, TKS_REVOKE_SID);
    free(w);
    w = since(s, 0, 1499);
    assert_int_equal(w->n, 3);
    free(w);
    w = since(s, INT64_MAX, 0);
    assert_int_equal(w->n, 0);
    free(w);

    /* Purge what has passed (until <= now). */
    assert_int_equal(tks_revocations_purge(s, 1500), TKS_OK);
    w = since(s, 0, INT64_MIN);
    assert_int_equal(w->n, 2);
    free(w);
    assert_int_equal(tks_revocations_purge(s, 5000), TKS_OK);
    w = since(s, 0, INT64_MIN);
    assert_int_equal(w->n, 0);
    free(w);

    /* A purged value may be revoked again, with a fresh seq. */
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "jti-a", "admin", 6000, 7000), TKS_OK);
    w = since(s, 0, 6000);
    assert_int_equal(w->n, 1);
    assert_true(w->r[0].seq > seq_a2);
    free(w);
}

static void test_revocation_paging(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    for (int i = 0; i < 100; i++) {
        char v[32];
        snprintf(v, sizeof v, "jti-%03d", i);
        assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, v, "logout", 10, i % 2 ? 1000 : 50), TKS_OK);
    }
    struct rev_walk *w = since(s, 0, 100);
    assert_int_equal(w->n, 50); /* only the odd ones are still in force */
    for (int i = 0; i < 50; i++) {
        char v[32];
        snprintf(v, sizeof v, "jti-%03d", 2 * i + 1);
        assert_string_equal(w->r[i].value, v);
    }
    int64_t mid = w->r[24].seq;
    free(w);
    w = since(s, mid, 100);
    assert_int_equal(w->n, 25);
    free(w);

    /* Stop early. */
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->stop_after = 40;
    assert_int_equal(tks_revocations_since(s, 0, 0, walk_rev, w), TKS_OK);
    assert_int_equal(w->n, 40);
    free(w);

    /* A callback that revokes: no deadlock, and the new row (a higher seq)
     * still arrives in this listing. */
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->s = s;
    w->revoke_inside = 1;
    assert_int_equal(tks_revocations_since(s, 0, 100, walk_rev, w), TKS_OK);
    assert_false(w->inner_failed);
    assert_int_equal(w->n, 51);
    assert_string_equal(w->r[50].value, "added-inside");
    free(w);

    assert_int_equal(tks_revocations_since(s, 0, 0, NULL, NULL), TKS_ERR);
}

static void test_revocation_limits(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    char v[TKS_VALUE_MAX + 2];
    memset(v, 'v', TKS_VALUE_MAX);
    v[TKS_VALUE_MAX] = '\0';
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, v, "logout", 1, 100), TKS_OK);
    v[TKS_VALUE_MAX] = 'v';
    v[TKS_VALUE_MAX + 1] = '\0';
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, v, "logout", 1, 100), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "256"));
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "", "logout", 1, 100), TKS_ERR);
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, NULL, "logout", 1, 100), TKS_ERR);
    assert_int_equal(tks_revoke(s, (enum tks_revocation_kind)0, "x", "logout", 1, 100), TKS_ERR);
    assert_int_equal(tks_revoke(s, (enum tks_revocation_kind)3, "x", "logout", 1, 100), TKS_ERR);
    char reason[TKS_REASON_MAX + 2];
    memset(reason, 'r', TKS_REASON_MAX);
    reason[TKS_REASON_MAX] = '\0';
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "x", reason, 1, 100), TKS_OK);
    reason[TKS_REASON_MAX] = 'r';
    reason[TKS_REASON_MAX + 1] = '\0';
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "y", reason, 1, 100), TKS_ERR);

    struct rev_walk *w = since(s, 0, 0);
    assert_int_equal(w->n, 2);
    assert_int_equal(strlen(w->r[0].value), TKS_VALUE_MAX);
    assert_int_equal(strlen(w->r[1].reason), TKS_REASON_MAX);
    free(w);
    assert_int_equal(tks_revocations_purge(NULL, 0), TKS_ERR);
}

/* ---- audit --------------------------------------------------------------- */

struct audit_walk {
    int n;
    int stop_after;
    int64_t at[64];
    char kind[64][80];
    char client[64][80];
    char ip[64][80];
    char detail[64][600];
    int null_seen;
};

static int walk_audit(int64_t at, const char *kind, const char *client_id, const char *ip, const char *detail, void *ud)
{
    struct audit_walk *w = ud;
    if (kind == NULL || client_id == NULL || ip == NULL || detail == NULL) {
        w->null_seen = 1;
    } else if (w->n < 64) {
        w->at[w->n] = at;
        snprintf(w->kind[w->n], sizeof w->kind[w->n], "%s", kind);
        snprintf(w->client[w->n], sizeof w->client[w->n], "%s", client_id);
        snprintf(w->ip[w->n], sizeof w->ip[w->n], "%s", ip);
        snprintf(w->detail[w->n], sizeof w->detail[w->n], "%s", detail);
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static struct audit_walk *audit_list(tks_store *s, size_t limit, int stop_after)
{
    struct audit_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->stop_after = stop_after;
    assert_int_equal(tks_audit_list(s, limit, walk_audit, w), TKS_OK);
    assert_false(w->null_seen);
    return w;
}

static void test_audit(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    struct audit_walk *w = audit_list(s, 10, 0);
    assert_int_equal(w->n, 0);
    free(w);

    for (int i = 1; i <= 40; i++) {
        char client[16], detail[32];
        snprintf(client, sizeof client, "c%d", i);
        snprintf(detail, sizeof detail, "event %d", i);
        assert_int_equal(tks_audit(s, i, "client_auth_failed", client, "192.0.2.1", detail), TKS_OK);
    }
    /* Newest first, limited. */
    w = audit_list(s, 5, 0);
    assert_int_equal(w->n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(w->at[i], 40 - i);
    }
    assert_string_equal(w->kind[0], "client_auth_failed");
    assert_string_equal(w->client[0], "c40");
    assert_string_equal(w->ip[0], "192.0.2.1");
    assert_string_equal(w->detail[0], "event 40");
    free(w);

    /* More than a page, and more than there is. */
    w = audit_list(s, 35, 0);
    assert_int_equal(w->n, 35);
    assert_int_equal(w->at[34], 6);
    free(w);
    w = audit_list(s, 1000, 0);
    assert_int_equal(w->n, 40);
    assert_int_equal(w->at[39], 1);
    free(w);
    w = audit_list(s, 0, 0);
    assert_int_equal(w->n, 0);
    free(w);
    w = audit_list(s, 100, 3);
    assert_int_equal(w->n, 3);
    free(w);

    /* Newest means recorded last, whatever the clock said. */
    assert_int_equal(tks_audit(s, 5, "key_rotated", NULL, NULL, NULL), TKS_OK);
    w = audit_list(s, 1, 0);
    assert_int_equal(w->n, 1);
    assert_int_equal(w->at[0], 5);
    assert_string_equal(w->kind[0], "key_rotated");
    /* Absent values come back as "" (never NULL). */
    assert_string_equal(w->client[0], "");
    assert_string_equal(w->ip[0], "");
    assert_string_equal(w->detail[0], "");
    free(w);

    /* Limits. */
    char detail[TKS_DETAIL_MAX + 2];
    memset(detail, 'd', TKS_DETAIL_MAX);
    detail[TKS_DETAIL_MAX] = '\0';
    assert_int_equal(tks_audit(s, 50, "k", NULL, NULL, detail), TKS_OK);
    w = audit_list(s, 1, 0);
    assert_int_equal(strlen(w->detail[0]), TKS_DETAIL_MAX);
    free(w);
    detail[TKS_DETAIL_MAX] = 'd';
    detail[TKS_DETAIL_MAX + 1] = '\0';
    assert_int_equal(tks_audit(s, 51, "k", NULL, NULL, detail), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "detail"));
    char id[TKS_ID_MAX + 2];
    memset(id, 'i', TKS_ID_MAX + 1);
    id[TKS_ID_MAX + 1] = '\0';
    assert_int_equal(tks_audit(s, 51, "k", id, NULL, NULL), TKS_ERR);
    assert_int_equal(tks_audit(s, 51, "", NULL, NULL, NULL), TKS_ERR);
    assert_int_equal(tks_audit(s, 51, NULL, NULL, NULL, NULL), TKS_ERR);
    char ip[100];
    memset(ip, '1', sizeof ip - 1);
    ip[sizeof ip - 1] = '\0';
    assert_int_equal(tks_audit(s, 51, "k", NULL, ip, NULL), TKS_ERR);
    w = audit_list(s, 1, 0);
    assert_int_equal(w->at[0], 50); /* none of the refused ones was recorded */
    free(w);
    assert_int_equal(tks_audit_list(s, 1, NULL, NULL), TKS_ERR);
}

/* ---- error messages are per thread --------------------------------------- */

struct errmsg_arg {
    tks_store *s;
    char before[256];
    char after[256];
};

static void *errmsg_thread(void *p)
{
    struct errmsg_arg *a = p;
    snprintf(a->before, sizeof a->before, "%s", tks_errmsg(a->s));
    (void)tks_revoke(a->s, (enum tks_revocation_kind)9, "x", NULL, 0, 0);
    snprintf(a->after, sizeof a->after, "%s", tks_errmsg(a->s));
    return NULL;
}

static void test_errmsg_per_thread(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_client c;
    make_client(&c, "dup");
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    assert_int_equal(tks_client_insert(s, &c), TKS_EXISTS);
    assert_non_null(strstr(tks_errmsg(s), "already exists"));

    struct errmsg_arg a = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, errmsg_thread, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(a.before, "no error");
    assert_non_null(strstr(a.after, "revocation kind"));
    assert_non_null(strstr(tks_errmsg(s), "already exists")); /* ours is untouched */

    /* A second store in the same thread keeps its own message. */
    tks_store *other = NULL;
    char err[256];
    assert_int_equal(tks_open("sqlite://:memory:", &other, err, sizeof err), TKS_OK);
    assert_string_equal(tks_errmsg(other), "no error");
    assert_int_equal(tks_audit(other, 0, "", NULL, NULL, NULL), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(other), "audit kind"));
    assert_non_null(strstr(tks_errmsg(s), "already exists"));
    tks_close(other);
}

/* ---- file-only ----------------------------------------------------------- */

static int file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

static void test_file_mode_wal_reopen(void **state)
{
    struct fixture *f = *state;
    char err[256];
    mode_t old = umask(0); /* a careless open would now create 0644 or 0666 */
    tks_result r = tks_open(f->url, &f->s, err, sizeof err);
    umask(old);
    assert_int_equal(r, TKS_OK);
    tks_client c;
    make_client(&c, "persisted");
    assert_int_equal(tks_client_insert(f->s, &c), TKS_OK);
    assert_int_equal(tks_revoke(f->s, TKS_REVOKE_SID, "sid-1", "logout", 10, 1000), TKS_OK);
    unsigned char sealed[3] = {9, 8, 7};
    tks_key_row k;
    make_key(&k, "kid-1", 1, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(f->s, &k), TKS_OK);
    int64_t g = generation(f->s);
    assert_int_equal(tks_audit(f->s, 1, "client_created", "persisted", NULL, NULL), TKS_OK);

    assert_int_equal(file_mode(f->path), 0600);
    char side[200];
    snprintf(side, sizeof side, "%s-wal", f->path);
    assert_int_equal(file_mode(side), 0600);
    snprintf(side, sizeof side, "%s-shm", f->path);
    assert_int_equal(file_mode(side), 0600);

    /* WAL is on, as another connection sees it. */
    sqlite3 *db = raw_open(f->path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Reopen: everything is still there, nothing migrated twice. */
    tks_close(f->s);
    f->s = NULL;
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    assert_int_equal(tks_schema_version(f->s), 1);
    tks_client got;
    assert_int_equal(tks_client_get(f->s, "persisted", &got), TKS_OK);
    assert_client_equal(&got, &c);
    struct rev_walk *w = since(f->s, 0, 0);
    assert_int_equal(w->n, 1);
    assert_string_equal(w->r[0].value, "sid-1");
    free(w);
    struct key_walk *kw = calloc(1, sizeof *kw);
    assert_non_null(kw);
    assert_int_equal(tks_key_list(f->s, walk_key, kw), TKS_OK);
    assert_int_equal(kw->n, 1);
    assert_memory_equal(kw->sealed[0], sealed, sizeof sealed);
    free(kw);
    assert_int_equal(generation(f->s), g);
    struct audit_walk *aw = audit_list(f->s, 10, 0);
    assert_int_equal(aw->n, 1);
    free(aw);
    assert_int_equal(file_mode(f->path), 0600);
}

/* An existing file keeps the mode its owner gave it. */
static void test_existing_file_mode_kept(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_close(f->s);
    f->s = NULL;
    assert_int_equal(chmod(f->path, 0640), 0);
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    assert_int_equal(file_mode(f->path), 0640);
}

static void test_relative_path(void **state)
{
    struct fixture *f = *state;
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    char err[256];
    tks_result r = tks_open("sqlite://./relative.db", &f->s, err, sizeof err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, TKS_OK);
    char p[200];
    snprintf(p, sizeof p, "%s/relative.db", f->dir);
    assert_int_equal(file_mode(p), 0600);

    /* A path that looks like an SQLite URI is still a file name. */
    tks_store *odd = NULL;
    assert_int_equal(chdir(f->dir), 0);
    r = tks_open("sqlite://file:odd.db?mode=memory", &odd, err, sizeof err);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r, TKS_OK);
    assert_int_equal(tks_audit(odd, 1, "k", NULL, NULL, NULL), TKS_OK);
    tks_close(odd);
    snprintf(p, sizeof p, "%s/file:odd.db?mode=memory", f->dir);
    assert_int_equal(file_mode(p), 0600);
}

static void test_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "PRAGMA user_version = 999");
    sqlite3_close(db);
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open(f->url, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
    assert_string_equal(err, "the store is at schema 999; this tokend knows up to 1");

    /* Nothing was created in it on the way. */
    db = raw_open(f->path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_open_failures(void **state)
{
    struct fixture *f = *state;
    char err[256];
    tks_store *s = NULL;

    /* Not a database. */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) {
        fputs("this is not an SQLite database. ", fp);
    }
    fclose(fp);
    assert_int_equal(tks_open(f->url, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "not a database"));

    /* A directory that does not exist. */
    char url[300];
    snprintf(url, sizeof url, "sqlite://%s/missing/tokend.db", f->dir);
    assert_int_equal(tks_open(url, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
    assert_non_null(strstr(err, "cannot open the store"));
    assert_non_null(strstr(err, "No such file or directory"));

    /* A directory where the file should be. */
    snprintf(url, sizeof url, "sqlite://%s", f->dir);
    assert_int_equal(tks_open(url, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
}

/* Values written by something else that do not fit our structs: refused
 * with TKS_ERR, never truncated. */
static void test_overlong_stored_values(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_client c;
    make_client(&c, "good");
    assert_int_equal(tks_client_insert(f->s, &c), TKS_OK);

    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "INSERT INTO clients VALUES ('long-name', printf('%.200c', 'n'), zeroblob(32), '', '', 1, 0, 0)");
    raw_exec(db, "INSERT INTO clients VALUES ('nul-name', CAST(X'410042' AS TEXT), zeroblob(32), '', '', 1, 0, 0)");
    raw_exec(db, "INSERT INTO revocations (kind, value, reason, revoked_at, until)"
                 " VALUES (1, printf('%.300c', 'v'), 'admin', 0, 9999)");
    raw_exec(db, "INSERT INTO signing_keys (kid, alg, state, created_at, sealed)"
                 " VALUES (printf('%.65c', 'k'), 'ES256', 0, 0, X'01')");
    raw_exec(db, "INSERT INTO audit (at, kind, detail) VALUES (1, 'k', printf('%.600c', 'd'))");
    sqlite3_close(db);

    tks_client got;
    assert_int_equal(tks_client_get(f->s, "long-name", &got), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "clients.name"));
    assert_int_equal(got.id[0], 0);
    assert_int_equal(tks_client_get(f->s, "nul-name", &got), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "NUL"));
    assert_int_equal(tks_client_get(f->s, "good", &got), TKS_OK);

    struct client_walk w = {.s = f->s};
    assert_int_equal(tks_client_list(f->s, walk_client, &w), TKS_ERR);
    struct rev_walk *rw = calloc(1, sizeof *rw);
    assert_non_null(rw);
    assert_int_equal(tks_revocations_since(f->s, 0, 0, walk_rev, rw), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "revocations.value"));
    free(rw);
    struct key_walk *kw = calloc(1, sizeof *kw);
    assert_non_null(kw);
    assert_int_equal(tks_key_list(f->s, walk_key, kw), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "signing_keys.kid"));
    free(kw);
    struct audit_walk *aw = calloc(1, sizeof *aw);
    assert_non_null(aw);
    assert_int_equal(tks_audit_list(f->s, 10, walk_audit, aw), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "audit.detail"));
    free(aw);
}

/* The schema enforces what it can, and foreign keys are on: deleting a
 * client deletes its refresh tokens. */
static void test_schema_constraints(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_client c;
    make_client(&c, "fk-client");
    assert_int_equal(tks_client_insert(f->s, &c), TKS_OK);

    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "PRAGMA foreign_keys = ON");
    raw_exec(db, "INSERT INTO refresh_tokens (hash, sid, client_id, sub, created_at, expires_at)"
                 " VALUES (X'00', 'sid', 'fk-client', 'alice', 1, 2)");
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO clients VALUES ('short-hash', 'n', zeroblob(31), '', '', 1, 0, 0)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "INSERT INTO revocations (kind, value, reason, revoked_at, until) VALUES (7, 'v', '', 0, 1)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(tks_client_delete(f->s, "fk-client"), TKS_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM refresh_tokens", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'key_generation'", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- locking and concurrency ---------------------------------------------- */

struct holder {
    sqlite3 *db;
    long hold_ms;
};

static void *release_later(void *p)
{
    struct holder *h = p;
    sleep_ms(h->hold_ms);
    raw_exec(h->db, "COMMIT");
    return NULL;
}

/* Another process holding the write lock briefly: the store waits for it. */
static void test_busy_waits(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    struct holder h = {raw_open(f->path), 300};
    raw_exec(h.db, "BEGIN IMMEDIATE");
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_later, &h), 0);
    double t0 = now_ms();
    assert_int_equal(tks_revoke(f->s, TKS_REVOKE_JTI, "waited", "admin", 1, 100), TKS_OK);
    assert_true(now_ms() - t0 >= 250.0);
    assert_int_equal(pthread_join(t, NULL), 0);
    sqlite3_close(h.db);
}

/* Held for longer than the 5 s busy timeout: TKS_BUSY, not TKS_ERR. WAL
 * readers are not blocked by the writer meanwhile. */
static void test_busy_gives_tks_busy(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_client c;
    make_client(&c, "reader");
    assert_int_equal(tks_client_insert(f->s, &c), TKS_OK);
    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "BEGIN IMMEDIATE");
    double t0 = now_ms();
    tks_client got;
    assert_int_equal(tks_client_get(f->s, "reader", &got), TKS_OK);
    assert_true(now_ms() - t0 < 1000.0);
    t0 = now_ms();
    assert_int_equal(tks_revoke(f->s, TKS_REVOKE_JTI, "blocked", "admin", 1, 100), TKS_BUSY);
    double waited = now_ms() - t0;
    assert_true(waited >= 4500.0);
    assert_true(waited < 15000.0);
    assert_non_null(strstr(tks_errmsg(f->s), "locked"));
    raw_exec(db, "ROLLBACK");
    sqlite3_close(db);
    /* And afterwards it works. */
    assert_int_equal(tks_revoke(f->s, TKS_REVOKE_JTI, "blocked", "admin", 1, 100), TKS_OK);
}

#define THREADS 4
#define ROUNDS 500

struct worker {
    tks_store *shared; /* NULL: open an own connection to url */
    const char *url;
    pthread_barrier_t *barrier;
    int index;
    int failures;
    int busy;
    char first_error[320];
};

static void note_failure(struct worker *w, tks_store *s, tks_result r, const char *what)
{
    w->failures++;
    if (r == TKS_BUSY) {
        w->busy++;
    }
    if (w->first_error[0] == '\0') {
        snprintf(w->first_error, sizeof w->first_error, "%s: %d %s", what, (int)r, tks_errmsg(s));
    }
}

static void *work(void *p)
{
    struct worker *w = p;
    tks_store *s = w->shared;
    pthread_barrier_wait(w->barrier);
    if (s == NULL) {
        char err[256];
        tks_result r = tks_open(w->url, &s, err, sizeof err);
        if (r != TKS_OK) {
            w->failures++;
            snprintf(w->first_error, sizeof w->first_error, "open: %d %s", (int)r, err);
            return NULL;
        }
        tks_client c;
        make_client(&c, "shared-client");
        r = tks_client_insert(s, &c);
        if (r != TKS_OK && r != TKS_EXISTS) {
            note_failure(w, s, r, "client_insert");
        }
    }
    for (int i = 0; i < ROUNDS; i++) {
        char v[64];
        snprintf(v, sizeof v, "t%d-jti-%d", w->index, i);
        tks_result r = tks_revoke(s, TKS_REVOKE_JTI, v, "logout", 1000 + i, 100000);
        if (r != TKS_OK) {
            note_failure(w, s, r, "revoke");
        }
        tks_client c;
        r = tks_client_get(s, "shared-client", &c);
        if (r != TKS_OK || strcmp(c.name, "Client shared-client") != 0) {
            note_failure(w, s, r, "client_get");
        }
    }
    if (w->shared == NULL) {
        tks_close(s);
    }
    return NULL;
}

static void run_workers(struct fixture *f, int own_connections)
{
    char err[256];
    if (!own_connections) {
        tks_client c;
        make_client(&c, "shared-client");
        assert_int_equal(tks_client_insert(f->s, &c), TKS_OK);
    }

    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, THREADS), 0);
    struct worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].shared = own_connections ? NULL : f->s;
        w[i].url = f->url;
        w[i].barrier = &barrier;
        w[i].index = i;
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    pthread_barrier_destroy(&barrier);
    if (f->s == NULL) {
        assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    }
    for (int i = 0; i < THREADS; i++) {
        if (w[i].failures) {
            fail_msg("thread %d: %d failures (%d busy), first: %s", i, w[i].failures, w[i].busy, w[i].first_error);
        }
    }
    struct rev_walk *rw = since(f->s, 0, 0);
    assert_int_equal(rw->n, THREADS * ROUNDS);
    free(rw);
}

/* Several threads on one tks_store (the server's case). */
static void test_concurrent_shared_store(void **state)
{
    run_workers(*state, 0);
}

/* Several connections to one file (several processes' case); the store is
 * created while they open theirs, so migrations race too. */
static void test_concurrent_connections(void **state)
{
    run_workers(*state, 1);
}

/* Each contract test on both variants, named so a failure says which. */
/* clang-format off */
#define ON_MEMORY(t) {#t " (memory)", t, store_setup, store_teardown, &MEMORY}
#define ON_FILE(t) {#t " (file)", t, store_setup, store_teardown, &ONFILE}
/* clang-format on */
#define BOTH(t) ON_MEMORY(t), ON_FILE(t)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_schemes),
        cmocka_unit_test(test_key_row_clear),
        BOTH(test_open_basics),
        BOTH(test_clients_crud),
        BOTH(test_client_limits),
        BOTH(test_client_list),
        BOTH(test_client_list_delete_during),
        BOTH(test_keys),
        BOTH(test_key_list_paging),
        BOTH(test_key_limits),
        BOTH(test_revocations),
        BOTH(test_revocation_paging),
        BOTH(test_revocation_limits),
        BOTH(test_audit),
        BOTH(test_errmsg_per_thread),
#undef BOTH
        cmocka_unit_test_setup_teardown(test_file_mode_wal_reopen, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_existing_file_mode_kept, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_relative_path, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_open_failures, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_overlong_stored_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_schema_constraints, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_busy_waits, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_busy_gives_tks_busy, dir_setup, dir_teardown),
        cmocka_unit_test_prestate_setup_teardown(test_concurrent_shared_store, store_setup, store_teardown, &ONFILE),
        cmocka_unit_test_setup_teardown(test_concurrent_connections, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
