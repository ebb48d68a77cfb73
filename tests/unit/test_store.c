/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store.c — the persistence contract (src/store/store.h) on every
 * backend.
 *
 * Every contract test runs three times (STYLE.md: one test body per
 * backend): on "sqlite://:memory:", on a file in a fresh mkdtemp directory,
 * and on PostgreSQL when TOKEND_TEST_PG_URL names a database (ctest's
 * unit/test_store_pg runs this binary under tests/pg/with_postgres.sh,
 * which starts a throwaway server; without the variable the PostgreSQL
 * variants are skipped). Each PostgreSQL test gets a fresh, empty store:
 * the public schema is dropped and created again first.
 *
 * SQLite-only tests cover what only a file has: mode 0600 for new files,
 * persistence across reopen, WAL, schema versions a newer tokend wrote,
 * values too long for our structs written by something else, the busy
 * timeout, the migration test hook. PostgreSQL-only tests cover its schema
 * version record, a newer schema refused, first opens racing (the advisory
 * lock) and the upgrade from the previous schema. Races between threads,
 * connections and processes run on the file and on PostgreSQL.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS: shared memory for the racing processes */
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "pgtest.h"
#include "store/backend.h" /* tksi_sqlite_open_at, tksi_pg_open_at: the migration test hooks */
#include "store/store.h"

/* The latest schema this tokend knows (sqlite.c and postgres.c alike). */
#define SCHEMA_LATEST 6

/* ---- fixtures ------------------------------------------------------------ */

struct fixture {
    int on_file;
    int on_pg;
    void (*fn)(void **state); /* PostgreSQL variants: the test body (pg_run) */
    char dir[64];
    char path[128];
    char url[512];
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

/* ---- PostgreSQL ---------------------------------------------------------- */

/* A raw libpq connection as the store's role, to look behind the store. */
static PGconn *pg_raw(void)
{
    PGconn *c = PQconnectdb(tkt_pg_url());
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("connecting to TOKEND_TEST_PG_URL: %s", PQerrorMessage(c));
    }
    return c;
}

static void pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        fail_msg("%s: %s", sql, msg);
    }
    PQclear(r);
}

/* The first column of the first row of a query, as an integer. */
static int64_t pg_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQgetisnull(r, 0, 0)) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        fail_msg("%s: no value (%s)", sql, msg);
    }
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* An empty store: everything the backend made goes with the schema. */
static void pg_reset(void)
{
    char err[512];
    if (tkt_pg_reset(tkt_pg_url(), err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
}

/* Opens the variant's store: memory, a file in a fresh directory, or a
 * fresh schema on PostgreSQL (nothing when no server is given: pg_run
 * skips the test). */
static int store_setup(void **state)
{
    struct fixture *f = *state;
    if (f->on_pg) {
        if (tkt_pg_url() == NULL) {
            return 0;
        }
        pg_reset();
        snprintf(f->url, sizeof f->url, "%s", tkt_pg_url());
    } else if (f->on_file) {
        tmpdir_make(f);
    } else {
        snprintf(f->url, sizeof f->url, "sqlite://:memory:");
    }
    char err[256];
    tks_result r = tks_open(f->url, &f->s, err, sizeof err);
    if (r != TKS_OK) {
        fail_msg("tks_open: %d %s", (int)r, err);
    }
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

/* PostgreSQL's dir_setup: an empty schema, nothing opened. */
static int pg_empty_setup(void **state)
{
    struct fixture *f = *state;
    f->s = NULL;
    if (tkt_pg_url() != NULL) {
        pg_reset();
        snprintf(f->url, sizeof f->url, "%s", tkt_pg_url());
    }
    return 0;
}

static int pg_empty_teardown(void **state)
{
    struct fixture *f = *state;
    tks_close(f->s);
    f->s = NULL;
    return 0;
}

/* The body of every PostgreSQL variant: skipped without a server. (cmocka
 * 1.1 counts a skip() in a setup function as an error, so it is here.) */
static void pg_run(void **state)
{
    struct fixture *f = *state;
    if (tkt_pg_url() == NULL) {
        print_message("TOKEND_TEST_PG_URL is not set (tests/pg/with_postgres.sh sets it)\n");
        skip();
    }
    f->fn(state);
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

/* The first column of the first row of a query. */
static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The columns of clients in schema 1 (raw inserts name them, so they keep
 * working whatever columns later schemas add). */
#define CLIENT1_COLS "id, name, secret_hash, scopes, audiences, ttl, disabled, created_at"

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
    snprintf(c->grant_types, sizeof c->grant_types, "client_credentials");
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
    assert_string_equal(a->redirect_uris, b->redirect_uris);
    assert_int_equal(a->is_public, b->is_public);
    assert_string_equal(a->grant_types, b->grant_types);
    assert_string_equal(a->backchannel_logout_uri, b->backchannel_logout_uri);
    assert_string_equal(a->id_token_alg, b->id_token_alg);
    assert_int_equal(a->consent, b->consent);
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
#define UNKNOWN_SCHEME "unknown store URL scheme (use sqlite://PATH or postgres://USER@HOST:PORT/DB)"
    expect_open_error("mysql://localhost/tokend", UNKNOWN_SCHEME);
    expect_open_error("", UNKNOWN_SCHEME);
    expect_open_error("sqlite:tokend.db", UNKNOWN_SCHEME);
    expect_open_error("./tokend.db", UNKNOWN_SCHEME);
#undef UNKNOWN_SCHEME
    expect_open_error("sqlite://",
                      "the store URL sqlite:// has no path (use sqlite://PATH, e.g. sqlite://./tokend.db)");

    /* A URL may hold a password: it is never echoed. */
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open("mysql://admin:hunter2@db/x", &s, err, sizeof err), TKS_ERR);
    assert_null(strstr(err, "hunter2"));
    /* PostgreSQL, in each of its forms, with no server there (port 1 on
     * loopback refuses): TKS_BUSY, the password never echoed. (The forms
     * against a real server: test_pg_url_forms.) */
    const char *unreachable[] = {
        "postgres://tokend:hunter2@127.0.0.1:1/tokend?sslmode=disable",
        "postgresql://tokend:hunter2@127.0.0.1:1/tokend?sslmode=disable",
        "host=127.0.0.1 port=1 dbname=tokend user=tokend password=hunter2 sslmode=disable",
    };
    for (size_t i = 0; i < sizeof unreachable / sizeof unreachable[0]; i++) {
        s = (tks_store *)(void *)err;
        assert_int_equal(tks_open(unreachable[i], &s, err, sizeof err), TKS_BUSY);
        assert_null(s);
        assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
        assert_null(strstr(err, "hunter2"));
    }

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
    assert_int_equal(tks_schema_version(f->s), SCHEMA_LATEST);
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
    make_key(&k, "k-d", 300, TKS_KEY_RETIRED, sealed, sizeof sealed, jwk);
    k.retired_at = 310;
    k.verify_until = 900;
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    int64_t g2 = generation(s);
    assert_true(g2 > g1);
    /* Schema 3: one active key and one next key at most, whoever writes. */
    make_key(&k, "k-e", 400, TKS_KEY_ACTIVE, sealed, sizeof sealed, jwk);
    assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
    make_key(&k, "k-e", 400, TKS_KEY_NEXT, sealed, sizeof sealed, jwk);
    assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
    assert_int_equal(generation(s), g2);

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

    /* A second active key is refused... */
    assert_int_equal(tks_key_set_state(s, "k-a", TKS_KEY_ACTIVE, 1000, 0), TKS_EXISTS);
    /* State changes: next -> active -> active -> retired -> retired -> next
     * (k-b, the active key, retired first). */
    assert_int_equal(tks_key_set_state(s, "k-b", TKS_KEY_RETIRED, 900, 950), TKS_OK);
    g2 = generation(s);
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

/* tks_key_rotate: one transaction, decided once: a rotation based on a stale
 * view of the ring, or with a next key younger than the cut-off, changes
 * nothing. */
static void test_key_rotate(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    unsigned char sealed[4] = {1, 2, 3, 4};
    tks_key_row k;
    make_key(&k, "act", 100, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    k.activated_at = 100;
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "nxt", 200, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    int64_t g = generation(s);
    tks_key_row n1;
    make_key(&n1, "new1", 500, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    /* the next key is too young for the cut-off */
    assert_int_equal(tks_key_rotate(s, "act", 199, 500, 900, &n1), TKS_NOT_FOUND);
    /* a stale view: "nxt" is not the active key */
    assert_int_equal(tks_key_rotate(s, "nxt", 500, 500, 900, &n1), TKS_EXISTS);
    assert_int_equal(generation(s), g);
    /* every write point failing in turn changes nothing either */
    for (int64_t p = 0;; p++) {
        assert_true(p < 16);
        tks_fault_arm(s, p, 0);
        tks_result r = tks_key_rotate(s, "act", 200, 500, 900, &n1);
        int64_t seen = tks_fault_points(s);
        tks_fault_disarm(s);
        if (seen <= p) {
            assert_int_equal(r, TKS_OK);
            break;
        }
        assert_int_equal(r, TKS_ERR);
        assert_int_equal(generation(s), g);
    }
    assert_true(generation(s) > g);
    struct key_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 3);
    assert_string_equal(w->kids[0], "act");
    assert_int_equal(w->copy[0].state, TKS_KEY_RETIRED);
    assert_int_equal(w->copy[0].retired_at, 500);
    assert_int_equal(w->copy[0].verify_until, 900);
    assert_string_equal(w->kids[1], "nxt");
    assert_int_equal(w->copy[1].state, TKS_KEY_ACTIVE);
    assert_int_equal(w->copy[1].activated_at, 500);
    assert_string_equal(w->kids[2], "new1");
    assert_int_equal(w->copy[2].state, TKS_KEY_NEXT);
    free(w);
    /* the same rotation again (another instance, same view): nothing */
    tks_key_row n2;
    make_key(&n2, "new2", 501, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_rotate(s, "act", 600, 501, 900, &n2), TKS_EXISTS);
    /* right after a rotation the new next key is too young */
    assert_int_equal(tks_key_rotate(s, "nxt", 499, 501, 900, &n2), TKS_NOT_FOUND);
    assert_int_equal(tks_key_rotate(s, "nxt", 500, 501, 900, &n2), TKS_OK);
}

/* The failed-attempt counters: windows, at-least, blocking that only
 * rises, clearing, purging. */
static void test_attempts(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    uint64_t keys[3] = {1, 0x8000000000000001ull, 0}; /* any 64-bit value, 0 and "negative" included */
    uint32_t f[3];
    int64_t until[3];
    assert_int_equal(tks_attempts_fail(s, keys, 3, NULL, 100, 300, f), TKS_OK);
    assert_int_equal(f[0], 1);
    assert_int_equal(f[1], 1);
    assert_int_equal(f[2], 1);
    uint32_t least[3] = {0, 6, 0};
    assert_int_equal(tks_attempts_fail(s, keys, 3, least, 110, 300, f), TKS_OK);
    assert_int_equal(f[0], 2);
    assert_int_equal(f[1], 6);
    assert_int_equal(tks_attempts_get(s, keys, 3, until), TKS_OK);
    assert_int_equal(until[0], 0);
    int64_t b[2] = {200, 150};
    assert_int_equal(tks_attempts_block(s, keys, 2, b), TKS_OK);
    int64_t lower[1] = {120};
    assert_int_equal(tks_attempts_block(s, keys, 1, lower), TKS_OK); /* never lowered */
    assert_int_equal(tks_attempts_get(s, keys, 3, until), TKS_OK);
    assert_int_equal(until[0], 200);
    assert_int_equal(until[1], 150);
    assert_int_equal(until[2], 0);
    /* the window has passed, but key 0 still blocks: it keeps counting */
    assert_int_equal(tks_attempts_fail(s, keys, 1, NULL, 199, 50, f), TKS_OK);
    assert_int_equal(f[0], 3);
    /* key 1: window passed and no longer blocking: starts over */
    assert_int_equal(tks_attempts_fail(s, keys + 1, 1, NULL, 500, 50, f), TKS_OK);
    assert_int_equal(f[0], 1);
    assert_int_equal(tks_attempts_clear(s, keys[0]), TKS_OK);
    assert_int_equal(tks_attempts_get(s, keys, 1, until), TKS_OK);
    assert_int_equal(until[0], 0);
    /* purge what can no longer matter */
    assert_int_equal(tks_attempts_purge(s, 10000, 300), TKS_OK);
    assert_int_equal(tks_attempts_fail(s, keys + 2, 1, NULL, 10001, 300, f), TKS_OK);
    assert_int_equal(f[0], 1);
    assert_int_equal(tks_attempts_fail(s, keys, 0, NULL, 1, 300, f), TKS_ERR);
    assert_int_equal(tks_attempts_fail(s, keys, 4, NULL, 1, 300, f), TKS_ERR);
    assert_int_equal(tks_attempts_get(s, keys, 1, NULL), TKS_ERR);
}

struct live_rows {
    size_t n, stop_at;
    uint64_t key[8];
    int64_t until[8];
};

static int live_row(uint64_t key, int64_t blocked_until, void *ud)
{
    struct live_rows *l = ud;
    if (l->n < 8) {
        l->key[l->n] = key;
        l->until[l->n] = blocked_until;
    }
    l->n++;
    return l->stop_at != 0 && l->n >= l->stop_at;
}

static int64_t live_until(const struct live_rows *l, uint64_t key)
{
    for (size_t i = 0; i < l->n && i < 8; i++) {
        if (l->key[i] == key) {
            return l->until[i];
        }
    }
    return -1; /* not listed */
}

/* tks_attempts_live: the counters a copy in memory needs (window not
 * passed, or blocking), no more than asked, and a callback that stops. */
static void test_attempts_live(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    uint64_t keys[3] = {7, 0x8000000000000007ull, 9};
    uint32_t f[3];
    assert_int_equal(tks_attempts_fail(s, keys, 3, NULL, 100, 60, f), TKS_OK);
    int64_t b[1] = {1000};
    assert_int_equal(tks_attempts_block(s, keys + 1, 1, b), TKS_OK);
    struct live_rows l = {0};
    assert_int_equal(tks_attempts_live(s, 150, 60, 100, live_row, &l), TKS_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(live_until(&l, keys[0]), 0);
    assert_int_equal(live_until(&l, keys[1]), 1000);
    assert_int_equal(live_until(&l, keys[2]), 0);
    /* windows passed: only the blocking key is live */
    memset(&l, 0, sizeof l);
    assert_int_equal(tks_attempts_live(s, 160, 60, 100, live_row, &l), TKS_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(live_until(&l, keys[1]), 1000);
    /* nothing once the block has passed too */
    memset(&l, 0, sizeof l);
    assert_int_equal(tks_attempts_live(s, 1000, 60, 100, live_row, &l), TKS_OK);
    assert_int_equal(l.n, 0);
    /* at most max rows; a callback that stops is not called again */
    memset(&l, 0, sizeof l);
    assert_int_equal(tks_attempts_live(s, 150, 60, 2, live_row, &l), TKS_OK);
    assert_int_equal(l.n, 2);
    memset(&l, 0, sizeof l);
    l.stop_at = 1;
    assert_int_equal(tks_attempts_live(s, 150, 60, 100, live_row, &l), TKS_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(tks_attempts_live(s, 150, 60, 0, live_row, &l), TKS_ERR);
    assert_int_equal(tks_attempts_live(s, 150, 60, 10, NULL, &l), TKS_ERR);
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

/* The catch-up (tks_revocations_changed): everything from the start, then
 * at least what changed, each row in force at least once, the cursor moving
 * only when the caller took everything. */
struct changed_walk {
    int n;
    int stop_after;
    char seen[128][TKS_VALUE_MAX + 1];
    int64_t until[128];
};

static int walk_changed(const tks_revocation *r, void *ud)
{
    struct changed_walk *w = ud;
    if (w->n < 128) {
        snprintf(w->seen[w->n], sizeof w->seen[0], "%s", r->value);
        w->until[w->n] = r->until;
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static int changed_has(const struct changed_walk *w, const char *value, int64_t until)
{
    for (int i = 0; i < w->n && i < 128; i++) {
        if (strcmp(w->seen[i], value) == 0 && (until == 0 || w->until[i] == until)) {
            return 1;
        }
    }
    return 0;
}

static void test_revocations_changed(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    int64_t cursor = 0;
    struct changed_walk w;
    memset(&w, 0, sizeof w);
    assert_int_equal(tks_revocations_changed(s, &cursor, 100, walk_changed, &w), TKS_OK);
    assert_int_equal(w.n, 0);
    for (int i = 0; i < 70; i++) { /* more than a page */
        char v[32];
        snprintf(v, sizeof v, "c-%02d", i);
        assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, v, "admin", 10, 1000), TKS_OK);
    }
    memset(&w, 0, sizeof w);
    assert_int_equal(tks_revocations_changed(s, &cursor, 100, walk_changed, &w), TKS_OK);
    assert_int_equal(w.n, 70);
    assert_true(changed_has(&w, "c-00", 1000) && changed_has(&w, "c-69", 1000));
    int64_t after_all = cursor;
    /* nothing new: nothing (or only what the backend cannot rule out yet) */
    memset(&w, 0, sizeof w);
    assert_int_equal(tks_revocations_changed(s, &cursor, 100, walk_changed, &w), TKS_OK);
    assert_true(w.n <= 70);
    /* new and extended rows arrive */
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "c-new", "logout", 20, 2000), TKS_OK);
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "c-05", "admin", 20, 3000), TKS_OK);
    memset(&w, 0, sizeof w);
    assert_int_equal(tks_revocations_changed(s, &cursor, 100, walk_changed, &w), TKS_OK);
    assert_true(changed_has(&w, "c-new", 2000));
    assert_true(changed_has(&w, "c-05", 3000));
    /* a caller that stops early keeps its cursor */
    int64_t before = after_all;
    memset(&w, 0, sizeof w);
    w.stop_after = 1;
    assert_int_equal(tks_revocations_changed(s, &before, 100, walk_changed, &w), TKS_OK);
    assert_int_equal(before, after_all);
    /* only what is in force at now */
    int64_t fresh = 0;
    memset(&w, 0, sizeof w);
    assert_int_equal(tks_revocations_changed(s, &fresh, 1500, walk_changed, &w), TKS_OK);
    assert_int_equal(w.n, 2);
    assert_int_equal(tks_revocations_changed(s, NULL, 0, walk_changed, &w), TKS_ERR);
    assert_int_equal(tks_revocations_changed(s, &fresh, 0, NULL, NULL), TKS_ERR);
}

/* tks_revoke_batch (issue 13 section 2): tks_revoke's rules for each value,
 * in one transaction; values with the characters a PostgreSQL array
 * literal escapes; repeats; limits; tks_revocation_get and _count. */
static void test_revoke_batch(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    size_t added = 99;
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "old", "logout", 50, 1000), TKS_OK);
    const char *v1[] = {"b-1", "b-2", "old", "b-1", "q\"uo\\te,{x} NULL", "NULL"};
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_JTI, v1, 6, "admin", 100, 2000, &added), TKS_OK);
    assert_int_equal(added, 4); /* b-1, b-2, the quoted one, NULL: old was there, b-1 repeats */
    size_t n = 0;
    assert_int_equal(tks_revocations_count(s, 100, &n), TKS_OK);
    assert_int_equal(n, 5);
    assert_int_equal(tks_revocations_count(s, 1000, &n), TKS_OK);
    assert_int_equal(n, 5); /* old moved on to 2000 */
    assert_int_equal(tks_revocations_count(s, 2000, &n), TKS_OK);
    assert_int_equal(n, 0);

    tks_revocation r;
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "q\"uo\\te,{x} NULL", 100, &r), TKS_OK);
    assert_string_equal(r.value, "q\"uo\\te,{x} NULL");
    assert_string_equal(r.reason, "admin");
    assert_int_equal(r.kind, TKS_REVOKE_JTI);
    assert_int_equal(r.revoked_at, 100);
    assert_int_equal(r.until, 2000);
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "NULL", 100, &r), TKS_OK);
    /* old: the first reason and revoked_at, the later until */
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "old", 100, &r), TKS_OK);
    assert_string_equal(r.reason, "logout");
    assert_int_equal(r.revoked_at, 50);
    assert_int_equal(r.until, 2000);
    int64_t seq_old = r.seq;
    /* not in force, another kind, unknown, too long: not found */
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "b-1", 2000, &r), TKS_NOT_FOUND);
    assert_int_equal(r.value[0], '\0');
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_SID, "b-1", 100, &r), TKS_NOT_FOUND);
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "nope", 100, &r), TKS_NOT_FOUND);
    char longv[TKS_VALUE_MAX + 2];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, longv, 100, &r), TKS_NOT_FOUND);
    assert_int_equal(tks_revocation_get(s, (enum tks_revocation_kind)7, "b-1", 100, &r), TKS_ERR);

    /* again, earlier and extending: earliest revoked_at, new until, new seq */
    const char *v2[] = {"old"};
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_JTI, v2, 1, "admin", 40, 3000, &added), TKS_OK);
    assert_int_equal(added, 0);
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "old", 100, &r), TKS_OK);
    assert_int_equal(r.revoked_at, 40);
    assert_int_equal(r.until, 3000);
    assert_true(r.seq > seq_old);

    /* limits: nothing of a refused batch is written */
    const char *bad[] = {"fine", longv};
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, bad, 2, "admin", 100, 2000, &added), TKS_ERR);
    assert_int_equal(tks_revocation_get(s, TKS_REVOKE_SID, "fine", 100, &r), TKS_NOT_FOUND);
    const char *empty[] = {""};
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, empty, 1, "admin", 100, 2000, &added), TKS_ERR);
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, v2, 0, "admin", 100, 2000, &added), TKS_ERR);
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, v2, 1, "admin", 100, 2000, NULL), TKS_ERR);
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, NULL, 1, "admin", 100, 2000, &added), TKS_ERR);
    assert_int_equal(tks_revoke_batch(s, (enum tks_revocation_kind)0, v2, 1, "admin", 100, 2000, &added), TKS_ERR);
    assert_int_equal(
        tks_revoke_batch(s, TKS_REVOKE_SID, v2, 1, "a-reason-longer-than-thirty-two-bytes", 100, 2000, &added),
        TKS_ERR);

    /* the largest batch, then the catch-up reads it all */
    static char vals[TKS_REVOKE_BATCH_MAX + 1][16];
    static const char *ptrs[TKS_REVOKE_BATCH_MAX + 1];
    for (int i = 0; i <= TKS_REVOKE_BATCH_MAX; i++) {
        snprintf(vals[i], sizeof vals[i], "big-%04d", i);
        ptrs[i] = vals[i];
    }
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, ptrs, TKS_REVOKE_BATCH_MAX + 1, "admin", 100, 2000, &added),
                     TKS_ERR);
    assert_int_equal(tks_revoke_batch(s, TKS_REVOKE_SID, ptrs, TKS_REVOKE_BATCH_MAX, "admin", 100, 2000, &added),
                     TKS_OK);
    assert_int_equal(added, TKS_REVOKE_BATCH_MAX);
    assert_int_equal(tks_revocations_count(s, 100, &n), TKS_OK);
    assert_int_equal(n, 5 + TKS_REVOKE_BATCH_MAX);
    struct rev_walk *w = since(s, 0, 100);
    assert_int_equal(w->n, 5 + TKS_REVOKE_BATCH_MAX);
    free(w);
}

/* A batch is one transaction: a failure at any write point leaves none of
 * it in the store. */
static void test_revoke_batch_all_or_none(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "there", "logout", 50, 1000), TKS_OK);
    const char *v[] = {"t-1", "there", "t-2"};
    size_t added = 0, n = 0;
    int64_t k = 0;
    for (;; k++) {
        assert_true(k < 32);
        tks_fault_arm(s, k, 0);
        tks_result r = tks_revoke_batch(s, TKS_REVOKE_JTI, v, 3, "admin", 100, 2000, &added);
        int64_t seen = tks_fault_points(s);
        tks_fault_disarm(s);
        if (seen <= k) {
            assert_int_equal(r, TKS_OK);
            assert_int_equal(added, 2);
            break;
        }
        assert_int_equal(r, TKS_ERR);
        assert_int_equal(added, 0);
        assert_int_equal(tks_revocations_count(s, 100, &n), TKS_OK);
        assert_int_equal(n, 1);
        tks_revocation got;
        assert_int_equal(tks_revocation_get(s, TKS_REVOKE_JTI, "there", 100, &got), TKS_OK);
        assert_int_equal(got.until, 1000);
    }
    assert_true(k >= 3);
    assert_int_equal(tks_revocations_count(s, 100, &n), TKS_OK);
    assert_int_equal(n, 3);
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

/* ---- schema 2: clients' sign-in fields ------------------------------------ */

static void test_client_signin_fields(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_client c, got;
    make_client(&c, "spa");
    snprintf(c.redirect_uris, sizeof c.redirect_uris, "https://app.example.com/cb http://127.0.0.1:8080/cb");
    c.is_public = 7; /* any non-zero */
    snprintf(c.grant_types, sizeof c.grant_types, "authorization_code refresh_token");
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    assert_int_equal(tks_client_get(s, "spa", &got), TKS_OK);
    c.is_public = 1;
    assert_client_equal(&got, &c);

    /* Confidential, no redirect URIs: "" and 0 come back as such. */
    tks_client d;
    make_client(&d, "svc");
    assert_int_equal(tks_client_insert(s, &d), TKS_OK);
    assert_int_equal(tks_client_get(s, "svc", &got), TKS_OK);
    assert_client_equal(&got, &d);
    assert_string_equal(got.redirect_uris, "");
    assert_int_equal(got.is_public, 0);

    /* The listing carries them too. */
    struct client_walk w = {.s = s};
    assert_int_equal(tks_client_list(s, walk_client, &w), TKS_OK);
    assert_int_equal(w.n, 2);

    /* At the limit; one byte more (no NUL in the array) is refused. */
    make_client(&c, "full");
    memset(c.redirect_uris, 'u', TKS_URIS_MAX);
    c.redirect_uris[TKS_URIS_MAX] = '\0';
    memset(c.grant_types, 'g', sizeof c.grant_types - 1);
    c.grant_types[sizeof c.grant_types - 1] = '\0';
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    assert_int_equal(tks_client_get(s, "full", &got), TKS_OK);
    assert_client_equal(&got, &c);
    make_client(&c, "bad-uris");
    memset(c.redirect_uris, 'u', sizeof c.redirect_uris);
    assert_int_equal(tks_client_insert(s, &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "redirect URI"));
    make_client(&c, "bad-grants");
    memset(c.grant_types, 'g', sizeof c.grant_types);
    assert_int_equal(tks_client_insert(s, &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "grant type"));
    assert_int_equal(tks_client_get(s, "bad-uris", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_client_get(s, "bad-grants", &got), TKS_NOT_FOUND);
}

/* ---- users ---------------------------------------------------------------- */

#define PWHASH "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGg"

static void make_user(tks_user *u, const char *id)
{
    memset(u, 0, sizeof *u);
    snprintf(u->id, sizeof u->id, "%s", id);
    snprintf(u->pwhash, sizeof u->pwhash, "%s", PWHASH);
    u->created_at = 1700000000;
    u->password_changed_at = 1700000001;
    snprintf(u->name, sizeof u->name, "%s Liddell", id);
    snprintf(u->email, sizeof u->email, "%s@example.com", id);
    u->email_verified = 1;
}

static void assert_user_equal(const tks_user *a, const tks_user *b)
{
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->pwhash, b->pwhash);
    assert_int_equal(a->disabled, b->disabled);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->password_changed_at, b->password_changed_at);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->given_name, b->given_name);
    assert_string_equal(a->family_name, b->family_name);
    assert_string_equal(a->preferred_username, b->preferred_username);
    assert_string_equal(a->email, b->email);
    assert_int_equal(a->email_verified, b->email_verified);
}

static void test_users_crud(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_user u, got;
    make_user(&u, "alice");
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_user_equal(&got, &u);

    /* Duplicate id. */
    tks_user dup;
    make_user(&dup, "alice");
    snprintf(dup.pwhash, sizeof dup.pwhash, "other");
    assert_int_equal(tks_user_insert(s, &dup), TKS_EXISTS);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_string_equal(got.pwhash, PWHASH);

    /* Unknown, empty, impossible, other case: not found, out zeroed. */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_user_get(s, "bob", &got), TKS_NOT_FOUND);
    assert_int_equal(got.id[0], 0);
    assert_int_equal(got.pwhash[0], 0);
    assert_int_equal(got.created_at, 0);
    assert_int_equal(tks_user_get(s, "", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_user_get(s, "Alice", &got), TKS_NOT_FOUND);
    char longid[200];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(tks_user_get(s, longid, &got), TKS_NOT_FOUND);

    /* The profile (schema 4): replaced as a whole, UTF-8 kept as is. */
    tks_user p;
    make_user(&p, "alice");
    snprintf(p.name, sizeof p.name, "Zoë Ünal");
    snprintf(p.given_name, sizeof p.given_name, "Zoë");
    snprintf(p.family_name, sizeof p.family_name, "Ünal");
    snprintf(p.preferred_username, sizeof p.preferred_username, "zoe");
    snprintf(p.email, sizeof p.email, "zoe@example.org");
    p.email_verified = 0;
    assert_int_equal(tks_user_set_profile(s, &p), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_user_equal(&got, &p);
    make_user(&p, "bob");
    assert_int_equal(tks_user_set_profile(s, &p), TKS_NOT_FOUND);
    make_user(&p, "alice");
    memset(p.email, 'e', sizeof p.email); /* not terminated within its field */
    assert_int_equal(tks_user_set_profile(s, &p), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "profile field"));
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_string_equal(got.email, "zoe@example.org");
    make_user(&p, "alice");
    assert_int_equal(tks_user_set_profile(s, &p), TKS_OK);

    /* A new password. */
    assert_int_equal(tks_user_set_password(s, "alice", "$argon2id$new", 1800000000), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_string_equal(got.pwhash, "$argon2id$new");
    assert_int_equal(got.password_changed_at, 1800000000);
    assert_int_equal(got.created_at, 1700000000);
    assert_int_equal(tks_user_set_password(s, "bob", "$argon2id$new", 1), TKS_NOT_FOUND);
    assert_int_equal(tks_user_set_password(s, longid, "$argon2id$new", 1), TKS_NOT_FOUND);
    assert_int_equal(tks_user_set_password(s, "alice", "", 1), TKS_ERR);
    assert_int_equal(tks_user_set_password(s, "alice", NULL, 1), TKS_ERR);
    char pw[TKS_PWHASH_MAX + 2];
    memset(pw, 'p', TKS_PWHASH_MAX + 1);
    pw[TKS_PWHASH_MAX + 1] = '\0';
    assert_int_equal(tks_user_set_password(s, "alice", pw, 1), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "password hash"));
    pw[TKS_PWHASH_MAX] = '\0';
    assert_int_equal(tks_user_set_password(s, "alice", pw, 2), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_string_equal(got.pwhash, pw);

    /* Disable and enable; any non-zero means disabled. */
    assert_int_equal(tks_user_set_disabled(s, "alice", 9), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_int_equal(got.disabled, 1);
    assert_int_equal(tks_user_set_disabled(s, "alice", 0), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_OK);
    assert_int_equal(got.disabled, 0);
    assert_int_equal(tks_user_set_disabled(s, "bob", 1), TKS_NOT_FOUND);
    make_user(&u, "dis");
    u.disabled = 3;
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    assert_int_equal(tks_user_get(s, "dis", &got), TKS_OK);
    assert_int_equal(got.disabled, 1);

    /* Delete. */
    assert_int_equal(tks_user_delete(s, "alice"), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_user_delete(s, "alice"), TKS_NOT_FOUND);
    assert_int_equal(tks_user_delete(s, longid), TKS_NOT_FOUND);
    assert_int_equal(tks_user_get(s, "dis", &got), TKS_OK);

    /* Limits: at the limit round-trips, no NUL in the array or empty is refused. */
    make_user(&u, "x");
    memset(u.id, 'i', TKS_ID_MAX);
    u.id[TKS_ID_MAX] = '\0';
    memset(u.pwhash, 'h', TKS_PWHASH_MAX);
    u.pwhash[TKS_PWHASH_MAX] = '\0';
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    assert_int_equal(tks_user_get(s, u.id, &got), TKS_OK);
    assert_user_equal(&got, &u);
    make_user(&u, "x");
    memset(u.id, 'i', sizeof u.id);
    assert_int_equal(tks_user_insert(s, &u), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "user id"));
    make_user(&u, "");
    assert_int_equal(tks_user_insert(s, &u), TKS_ERR);
    make_user(&u, "nohash");
    u.pwhash[0] = '\0';
    assert_int_equal(tks_user_insert(s, &u), TKS_ERR);
    make_user(&u, "longhash");
    memset(u.pwhash, 'h', sizeof u.pwhash);
    assert_int_equal(tks_user_insert(s, &u), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "password hash"));
    assert_int_equal(tks_user_get(s, "nohash", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_user_get(s, "longhash", &got), TKS_NOT_FOUND);

    /* NULL arguments. */
    assert_int_equal(tks_user_insert(s, NULL), TKS_ERR);
    assert_int_equal(tks_user_insert(NULL, &u), TKS_ERR);
    assert_int_equal(tks_user_get(s, NULL, &got), TKS_ERR);
    assert_int_equal(tks_user_get(s, "x", NULL), TKS_ERR);
    assert_int_equal(tks_user_get(NULL, "x", &got), TKS_ERR);
    assert_int_equal(tks_user_set_password(s, NULL, "h", 1), TKS_ERR);
    assert_int_equal(tks_user_set_disabled(s, NULL, 1), TKS_ERR);
    assert_int_equal(tks_user_delete(s, NULL), TKS_ERR);
    assert_int_equal(tks_user_list(s, NULL, NULL), TKS_ERR);
    assert_int_equal(tks_user_list(NULL, NULL, NULL), TKS_ERR);
}

struct user_walk {
    tks_store *s;
    int n;
    int stop_after;
    int delete_each;
    char last[TKS_ID_MAX + 1];
    int out_of_order;
    int inner_failed;
};

static int walk_user(const tks_user *u, void *ud)
{
    struct user_walk *w = ud;
    if (w->n > 0 && strcmp(u->id, w->last) <= 0) {
        w->out_of_order = 1;
    }
    snprintf(w->last, sizeof w->last, "%s", u->id);
    tks_user again;
    if (strcmp(u->pwhash, PWHASH) != 0 || tks_user_get(w->s, u->id, &again) != TKS_OK) {
        w->inner_failed = 1;
    }
    if (w->delete_each && tks_user_delete(w->s, u->id) != TKS_OK) {
        w->inner_failed = 1;
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static void test_user_list(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    struct user_walk w = {.s = s};
    assert_int_equal(tks_user_list(s, walk_user, &w), TKS_OK);
    assert_int_equal(w.n, 0);
    for (int i = 0; i < 70; i++) {
        tks_user u;
        char id[16];
        snprintf(id, sizeof id, "user-%02d", (i * 37) % 70);
        make_user(&u, id);
        assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    }
    memset(&w, 0, sizeof w);
    w.s = s;
    assert_int_equal(tks_user_list(s, walk_user, &w), TKS_OK);
    assert_int_equal(w.n, 70);
    assert_false(w.out_of_order);
    assert_false(w.inner_failed);
    assert_string_equal(w.last, "user-69");
    int stops[] = {1, 32, 33};
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        memset(&w, 0, sizeof w);
        w.s = s;
        w.stop_after = stops[i];
        assert_int_equal(tks_user_list(s, walk_user, &w), TKS_OK);
        assert_int_equal(w.n, stops[i]);
    }
    /* Deleting from the callback: each user seen once, none left. */
    memset(&w, 0, sizeof w);
    w.s = s;
    w.delete_each = 1;
    assert_int_equal(tks_user_list(s, walk_user, &w), TKS_OK);
    assert_int_equal(w.n, 70);
    assert_false(w.inner_failed);
    memset(&w, 0, sizeof w);
    w.s = s;
    assert_int_equal(tks_user_list(s, walk_user, &w), TKS_OK);
    assert_int_equal(w.n, 0);
}

/* ---- sessions, codes, refresh tokens ---------------------------------------- */

/* A 32-byte hash that differs for every seed. */
static void fill_hash(unsigned char h[32], int seed)
{
    for (int i = 0; i < 32; i++) {
        h[i] = (unsigned char)(seed * 31 + i * 7 + 1);
    }
    uint32_t v = (uint32_t)seed;
    memcpy(h, &v, sizeof v);
}

/* Two clients and two users for the sign-in tests. */
static void signin_base(tks_store *s)
{
    tks_client c;
    make_client(&c, "app");
    snprintf(c.redirect_uris, sizeof c.redirect_uris, "https://app.example.com/cb");
    c.is_public = 1;
    snprintf(c.grant_types, sizeof c.grant_types, "authorization_code refresh_token");
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    make_client(&c, "other-app");
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    tks_user u;
    make_user(&u, "alice");
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    make_user(&u, "bob");
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
}

static void make_session(tks_session *se, int seed, const char *sid, const char *user)
{
    memset(se, 0, sizeof *se);
    fill_hash(se->id_hash, seed);
    snprintf(se->sid, sizeof se->sid, "%s", sid);
    snprintf(se->user_id, sizeof se->user_id, "%s", user);
    se->created_at = 1000;
    se->last_seen = 1000;
}

static void assert_session_equal(const tks_session *a, const tks_session *b)
{
    assert_memory_equal(a->id_hash, b->id_hash, sizeof a->id_hash);
    assert_string_equal(a->sid, b->sid);
    assert_string_equal(a->user_id, b->user_id);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->last_seen, b->last_seen);
    assert_int_equal(a->ended_at, b->ended_at);
}

static void test_sessions(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_session se, got;
    make_session(&se, 1, "sid-1", "alice");
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_session_equal(&got, &se);

    /* The cookie hash and the sid are each unique. */
    tks_session dup;
    make_session(&dup, 1, "sid-other", "alice");
    assert_int_equal(tks_session_insert(s, &dup), TKS_EXISTS);
    make_session(&dup, 2, "sid-1", "bob");
    assert_int_equal(tks_session_insert(s, &dup), TKS_EXISTS);
    /* A user that does not exist. */
    make_session(&dup, 3, "sid-3", "mallory");
    assert_int_equal(tks_session_insert(s, &dup), TKS_NOT_FOUND);
    assert_non_null(strstr(tks_errmsg(s), "does not exist"));

    /* Unknown: not found, out zeroed. */
    unsigned char other[32];
    fill_hash(other, 99);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_session_get(s, other, &got), TKS_NOT_FOUND);
    assert_int_equal(got.sid[0], 0);
    assert_int_equal(got.last_seen, 0);

    /* Touch: last_seen moves forward only. */
    assert_int_equal(tks_session_touch(s, se.id_hash, 1500), TKS_OK);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_int_equal(got.last_seen, 1500);
    assert_int_equal(tks_session_touch(s, se.id_hash, 1400), TKS_OK);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_int_equal(got.last_seen, 1500);
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(tks_session_touch(s, other, 1500), TKS_NOT_FOUND);

    /* End by sid: the first end is kept; ending again is fine. */
    assert_int_equal(tks_session_end(s, "sid-1", 2000), TKS_OK);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_int_equal(got.ended_at, 2000);
    assert_int_equal(tks_session_end(s, "sid-1", 3000), TKS_OK);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_int_equal(got.ended_at, 2000);
    assert_int_equal(tks_session_end(s, "sid-unknown", 3000), TKS_NOT_FOUND);
    assert_int_equal(tks_session_end(s, "", 3000), TKS_NOT_FOUND);
    char longsid[100];
    memset(longsid, 's', sizeof longsid - 1);
    longsid[sizeof longsid - 1] = '\0';
    assert_int_equal(tks_session_end(s, longsid, 3000), TKS_NOT_FOUND);
    /* 0 would mean "still active". */
    make_session(&se, 4, "sid-4", "bob");
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    assert_int_equal(tks_session_end(s, "sid-4", 0), TKS_ERR);
    assert_int_equal(tks_session_end(s, "sid-4", -5), TKS_ERR);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_int_equal(got.ended_at, 0);
    /* An ended session is still there (the authority tells "ended" from
     * "unknown"); inserted ended is kept as such. */
    make_session(&se, 5, "sid-5", "bob");
    se.ended_at = 77;
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_session_equal(&got, &se);

    /* Limits. */
    make_session(&se, 6, "x", "alice");
    memset(se.sid, 's', TKS_SID_MAX);
    se.sid[TKS_SID_MAX] = '\0';
    memset(se.user_id, 'u', TKS_ID_MAX); /* a user id at the limit ... */
    se.user_id[TKS_ID_MAX] = '\0';
    tks_user u;
    make_user(&u, se.user_id); /* ... that exists */
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_OK);
    assert_session_equal(&got, &se);
    make_session(&se, 7, "x", "alice");
    memset(se.sid, 's', sizeof se.sid);
    assert_int_equal(tks_session_insert(s, &se), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "sid"));
    make_session(&se, 7, "", "alice");
    assert_int_equal(tks_session_insert(s, &se), TKS_ERR);
    make_session(&se, 7, "sid-7", "");
    assert_int_equal(tks_session_insert(s, &se), TKS_ERR);
    make_session(&se, 7, "sid-7", "alice");
    memset(se.user_id, 'u', sizeof se.user_id);
    assert_int_equal(tks_session_insert(s, &se), TKS_ERR);
    assert_int_equal(tks_session_get(s, se.id_hash, &got), TKS_NOT_FOUND);

    /* NULL arguments. */
    assert_int_equal(tks_session_insert(s, NULL), TKS_ERR);
    assert_int_equal(tks_session_get(s, NULL, &got), TKS_ERR);
    assert_int_equal(tks_session_get(s, other, NULL), TKS_ERR);
    assert_int_equal(tks_session_get(NULL, other, &got), TKS_ERR);
    assert_int_equal(tks_session_touch(s, NULL, 1), TKS_ERR);
    assert_int_equal(tks_session_end(s, NULL, 1), TKS_ERR);
    assert_int_equal(tks_session_end(NULL, "sid-1", 1), TKS_ERR);
}

static void make_code(tks_code *c, int seed, const char *client, const char *user, const char *sid)
{
    memset(c, 0, sizeof *c);
    fill_hash(c->hash, seed);
    snprintf(c->client_id, sizeof c->client_id, "%s", client);
    snprintf(c->user_id, sizeof c->user_id, "%s", user);
    snprintf(c->sid, sizeof c->sid, "%s", sid);
    snprintf(c->redirect_uri, sizeof c->redirect_uri, "https://app.example.com/cb");
    snprintf(c->challenge, sizeof c->challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    snprintf(c->scope, sizeof c->scope, "openid orders:read");
    snprintf(c->audience, sizeof c->audience, "https://api.example.com");
    c->created_at = 1000;
    c->expires_at = 1060;
}

static void assert_code_equal(const tks_code *a, const tks_code *b)
{
    assert_memory_equal(a->hash, b->hash, sizeof a->hash);
    assert_string_equal(a->client_id, b->client_id);
    assert_string_equal(a->user_id, b->user_id);
    assert_string_equal(a->sid, b->sid);
    assert_string_equal(a->redirect_uri, b->redirect_uri);
    assert_string_equal(a->challenge, b->challenge);
    assert_string_equal(a->scope, b->scope);
    assert_string_equal(a->audience, b->audience);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->used_at, b->used_at);
    assert_string_equal(a->nonce, b->nonce);
    assert_int_equal(a->auth_time, b->auth_time);
}

static void test_codes(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_code c, got;
    make_code(&c, 1, "app", "alice", "sid-1");
    assert_int_equal(tks_code_insert(s, &c), TKS_OK);

    /* First redeem: OK, the row with used_at = now. */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_code_redeem(s, c.hash, 1010, &got), TKS_OK);
    c.used_at = 1010;
    assert_code_equal(&got, &c);
    /* Again (a replay): EXISTS, the row says when it was first used. */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_code_redeem(s, c.hash, 1020, &got), TKS_EXISTS);
    assert_code_equal(&got, &c);
    assert_int_equal(tks_code_redeem(s, c.hash, 5000, &got), TKS_EXISTS);
    assert_int_equal(got.used_at, 1010);

    /* Unknown: NOT_FOUND, out zeroed. */
    unsigned char other[32];
    fill_hash(other, 99);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_code_redeem(s, other, 1010, &got), TKS_NOT_FOUND);
    assert_int_equal(got.client_id[0], 0);
    assert_int_equal(got.used_at, 0);
    assert_int_equal(got.hash[0], 0);

    /* Expiry is the authority's business: an expired code still redeems
     * (so that it can say "expired" rather than "unknown"). */
    tks_code old;
    make_code(&old, 2, "app", "bob", "sid-2");
    assert_int_equal(tks_code_insert(s, &old), TKS_OK);
    assert_int_equal(tks_code_redeem(s, old.hash, 99999, &got), TKS_OK);
    assert_int_equal(got.expires_at, 1060);
    assert_int_equal(got.used_at, 99999);

    /* now must be positive: used_at 0 means unused. */
    tks_code fresh;
    make_code(&fresh, 3, "app", "alice", "sid-1");
    assert_int_equal(tks_code_insert(s, &fresh), TKS_OK);
    assert_int_equal(tks_code_redeem(s, fresh.hash, 0, &got), TKS_ERR);
    assert_int_equal(tks_code_redeem(s, fresh.hash, -1, &got), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "positive"));
    assert_int_equal(tks_code_redeem(s, fresh.hash, 1, &got), TKS_OK);

    /* Duplicate hash; unknown client or user. */
    assert_int_equal(tks_code_insert(s, &c), TKS_EXISTS);
    tks_code bad;
    make_code(&bad, 10, "nobody", "alice", "sid-1");
    assert_int_equal(tks_code_insert(s, &bad), TKS_NOT_FOUND);
    make_code(&bad, 11, "app", "nobody", "sid-1");
    assert_int_equal(tks_code_insert(s, &bad), TKS_NOT_FOUND);
    assert_int_equal(tks_code_redeem(s, bad.hash, 1, &got), TKS_NOT_FOUND);

    /* Purge: expires_at < now goes, used or not; == now stays. */
    tks_code p1, p2, p3;
    make_code(&p1, 20, "app", "alice", "sid-1");
    p1.expires_at = 2000;
    make_code(&p2, 21, "app", "alice", "sid-1");
    p2.expires_at = 2001;
    make_code(&p3, 22, "app", "alice", "sid-1");
    p3.expires_at = 3000;
    assert_int_equal(tks_code_insert(s, &p1), TKS_OK);
    assert_int_equal(tks_code_insert(s, &p2), TKS_OK);
    assert_int_equal(tks_code_insert(s, &p3), TKS_OK);
    assert_int_equal(tks_code_purge(s, 2001), TKS_OK);
    assert_int_equal(tks_code_redeem(s, c.hash, 1, &got), TKS_NOT_FOUND);  /* used, expired 1060 */
    assert_int_equal(tks_code_redeem(s, p1.hash, 1, &got), TKS_NOT_FOUND); /* unused, expired */
    assert_int_equal(tks_code_redeem(s, p2.hash, 1, &got), TKS_OK);
    assert_int_equal(tks_code_redeem(s, p3.hash, 1, &got), TKS_OK);
    assert_int_equal(tks_code_purge(s, INT64_MAX), TKS_OK);
    assert_int_equal(tks_code_redeem(s, p3.hash, 1, &got), TKS_NOT_FOUND);
    assert_int_equal(tks_code_purge(NULL, 1), TKS_ERR);

    /* Limits: every text at its limit round-trips ... */
    tks_code big;
    make_code(&big, 30, "app", "alice", "x");
    memset(big.sid, 's', TKS_SID_MAX);
    big.sid[TKS_SID_MAX] = '\0';
    memset(big.redirect_uri, 'r', TKS_URI_MAX);
    big.redirect_uri[TKS_URI_MAX] = '\0';
    memset(big.challenge, 'c', sizeof big.challenge - 1);
    big.challenge[sizeof big.challenge - 1] = '\0';
    memset(big.scope, 'o', TKS_LIST_MAX);
    big.scope[TKS_LIST_MAX] = '\0';
    memset(big.audience, 'a', sizeof big.audience - 1);
    big.audience[sizeof big.audience - 1] = '\0';
    assert_int_equal(tks_code_insert(s, &big), TKS_OK);
    assert_int_equal(tks_code_redeem(s, big.hash, 7, &got), TKS_OK);
    big.used_at = 7;
    assert_code_equal(&got, &big);
    /* ... one byte more (no NUL in the array) or an empty id is refused. */
    struct {
        size_t off, len;
        const char *msg;
    } fields[] = {
        {offsetof(tks_code, client_id), sizeof big.client_id, "client id"},
        {offsetof(tks_code, user_id), sizeof big.user_id, "user id"},
        {offsetof(tks_code, sid), sizeof big.sid, "sid"},
        {offsetof(tks_code, redirect_uri), sizeof big.redirect_uri, "redirect URI"},
        {offsetof(tks_code, challenge), sizeof big.challenge, "challenge"},
        {offsetof(tks_code, scope), sizeof big.scope, "scope"},
        {offsetof(tks_code, audience), sizeof big.audience, "audience"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        make_code(&bad, 40 + (int)i, "app", "alice", "sid-1");
        memset((char *)&bad + fields[i].off, 'z', fields[i].len);
        assert_int_equal(tks_code_insert(s, &bad), TKS_ERR);
        assert_non_null(strstr(tks_errmsg(s), fields[i].msg));
        assert_int_equal(tks_code_redeem(s, bad.hash, 1, &got), TKS_NOT_FOUND);
    }
    make_code(&bad, 50, "", "alice", "sid-1");
    assert_int_equal(tks_code_insert(s, &bad), TKS_ERR);
    make_code(&bad, 51, "app", "", "sid-1");
    assert_int_equal(tks_code_insert(s, &bad), TKS_ERR);
    make_code(&bad, 52, "app", "alice", "");
    assert_int_equal(tks_code_insert(s, &bad), TKS_ERR);
    /* An empty redirect URI, challenge, scope or audience is the authority's call. */
    make_code(&bad, 53, "app", "alice", "sid-1");
    bad.redirect_uri[0] = bad.challenge[0] = bad.scope[0] = bad.audience[0] = '\0';
    assert_int_equal(tks_code_insert(s, &bad), TKS_OK);
    assert_int_equal(tks_code_redeem(s, bad.hash, 1, &got), TKS_OK);
    assert_string_equal(got.redirect_uri, "");

    /* NULL arguments. */
    assert_int_equal(tks_code_insert(s, NULL), TKS_ERR);
    assert_int_equal(tks_code_insert(NULL, &c), TKS_ERR);
    assert_int_equal(tks_code_redeem(s, NULL, 1, &got), TKS_ERR);
    assert_int_equal(tks_code_redeem(s, c.hash, 1, NULL), TKS_ERR);
    assert_int_equal(tks_code_redeem(NULL, c.hash, 1, &got), TKS_ERR);
}

static void make_refresh(tks_refresh *r, int seed, int parent_seed, const char *sid, const char *client,
                         const char *user)
{
    memset(r, 0, sizeof *r);
    fill_hash(r->hash, seed);
    if (parent_seed >= 0) {
        fill_hash(r->parent, parent_seed);
    }
    snprintf(r->sid, sizeof r->sid, "%s", sid);
    snprintf(r->client_id, sizeof r->client_id, "%s", client);
    snprintf(r->user_id, sizeof r->user_id, "%s", user);
    snprintf(r->scope, sizeof r->scope, "openid orders:read");
    snprintf(r->audience, sizeof r->audience, "https://api.example.com");
    r->created_at = 1000;
    r->expires_at = 1000 + 86400;
}

static void assert_refresh_equal(const tks_refresh *a, const tks_refresh *b)
{
    assert_memory_equal(a->hash, b->hash, sizeof a->hash);
    assert_memory_equal(a->parent, b->parent, sizeof a->parent);
    assert_string_equal(a->sid, b->sid);
    assert_string_equal(a->client_id, b->client_id);
    assert_string_equal(a->user_id, b->user_id);
    assert_string_equal(a->scope, b->scope);
    assert_string_equal(a->audience, b->audience);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->used_at, b->used_at);
    assert_int_equal(a->auth_time, b->auth_time);
}

static void test_refresh_tokens(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    static const unsigned char zero[32];

    /* A family: the first token, then its rotation. */
    tks_refresh r1, r2, got;
    make_refresh(&r1, 1, -1, "sid-1", "app", "alice");
    assert_int_equal(tks_refresh_insert(s, &r1), TKS_OK);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_get(s, r1.hash, &got), TKS_OK);
    assert_refresh_equal(&got, &r1);
    assert_memory_equal(got.parent, zero, sizeof zero);

    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_use(s, r1.hash, 2000, &got), TKS_OK);
    r1.used_at = 2000;
    assert_refresh_equal(&got, &r1);
    make_refresh(&r2, 2, 1, "sid-1", "app", "alice");
    r2.created_at = 2000;
    assert_int_equal(tks_refresh_insert(s, &r2), TKS_OK);
    assert_int_equal(tks_refresh_get(s, r2.hash, &got), TKS_OK);
    assert_refresh_equal(&got, &r2);
    assert_memory_equal(got.parent, r1.hash, 32);
    /* get does not use it. */
    assert_int_equal(got.used_at, 0);
    assert_int_equal(tks_refresh_get(s, r2.hash, &got), TKS_OK);
    assert_int_equal(got.used_at, 0);

    /* Reuse of the rotated one: EXISTS, with the row (its sid names the
     * family to revoke) and the first used_at. */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_use(s, r1.hash, 3000, &got), TKS_EXISTS);
    assert_refresh_equal(&got, &r1);
    assert_string_equal(got.sid, "sid-1");
    assert_int_equal(tks_refresh_get(s, r1.hash, &got), TKS_OK);
    assert_int_equal(got.used_at, 2000);

    /* Unknown: NOT_FOUND, out zeroed. */
    unsigned char other[32];
    fill_hash(other, 99);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_use(s, other, 1, &got), TKS_NOT_FOUND);
    assert_int_equal(got.sid[0], 0);
    assert_int_equal(got.hash[0], 0);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_get(s, other, &got), TKS_NOT_FOUND);
    assert_int_equal(got.sid[0], 0);

    /* No expiry check in use; now must be positive. */
    assert_int_equal(tks_refresh_use(s, r2.hash, 0, &got), TKS_ERR);
    assert_int_equal(tks_refresh_get(s, r2.hash, &got), TKS_OK);
    assert_int_equal(got.used_at, 0);
    assert_int_equal(tks_refresh_use(s, r2.hash, INT64_MAX, &got), TKS_OK);
    assert_int_equal(got.used_at, INT64_MAX);

    /* Duplicate hash; unknown client or user. */
    assert_int_equal(tks_refresh_insert(s, &r1), TKS_EXISTS);
    tks_refresh bad;
    make_refresh(&bad, 10, -1, "sid-1", "nobody", "alice");
    assert_int_equal(tks_refresh_insert(s, &bad), TKS_NOT_FOUND);
    make_refresh(&bad, 11, -1, "sid-1", "app", "nobody");
    assert_int_equal(tks_refresh_insert(s, &bad), TKS_NOT_FOUND);
    assert_int_equal(tks_refresh_get(s, bad.hash, &got), TKS_NOT_FOUND);

    /* Purge: expires_at < now. */
    tks_refresh p1, p2;
    make_refresh(&p1, 20, -1, "sid-2", "app", "bob");
    p1.expires_at = 5000;
    make_refresh(&p2, 21, -1, "sid-2", "app", "bob");
    p2.expires_at = 5001;
    assert_int_equal(tks_refresh_insert(s, &p1), TKS_OK);
    assert_int_equal(tks_refresh_insert(s, &p2), TKS_OK);
    assert_int_equal(tks_refresh_purge(s, 5001), TKS_OK);
    assert_int_equal(tks_refresh_get(s, p1.hash, &got), TKS_NOT_FOUND);
    assert_int_equal(tks_refresh_get(s, p2.hash, &got), TKS_OK);
    assert_int_equal(tks_refresh_get(s, r1.hash, &got), TKS_OK); /* expires 87400 */
    assert_int_equal(tks_refresh_purge(s, INT64_MAX), TKS_OK);
    assert_int_equal(tks_refresh_get(s, r1.hash, &got), TKS_NOT_FOUND);
    assert_int_equal(tks_refresh_get(s, p2.hash, &got), TKS_NOT_FOUND);
    assert_int_equal(tks_refresh_purge(NULL, 1), TKS_ERR);

    /* Limits. */
    tks_refresh big;
    make_refresh(&big, 30, 29, "x", "app", "alice");
    memset(big.sid, 's', TKS_SID_MAX);
    big.sid[TKS_SID_MAX] = '\0';
    memset(big.scope, 'o', TKS_LIST_MAX);
    big.scope[TKS_LIST_MAX] = '\0';
    memset(big.audience, 'a', sizeof big.audience - 1);
    big.audience[sizeof big.audience - 1] = '\0';
    assert_int_equal(tks_refresh_insert(s, &big), TKS_OK);
    assert_int_equal(tks_refresh_get(s, big.hash, &got), TKS_OK);
    assert_refresh_equal(&got, &big);
    struct {
        size_t off, len;
        const char *msg;
    } fields[] = {
        {offsetof(tks_refresh, sid), sizeof big.sid, "sid"},
        {offsetof(tks_refresh, client_id), sizeof big.client_id, "client id"},
        {offsetof(tks_refresh, user_id), sizeof big.user_id, "user id"},
        {offsetof(tks_refresh, scope), sizeof big.scope, "scope"},
        {offsetof(tks_refresh, audience), sizeof big.audience, "audience"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        make_refresh(&bad, 40 + (int)i, -1, "sid-1", "app", "alice");
        memset((char *)&bad + fields[i].off, 'z', fields[i].len);
        assert_int_equal(tks_refresh_insert(s, &bad), TKS_ERR);
        assert_non_null(strstr(tks_errmsg(s), fields[i].msg));
        assert_int_equal(tks_refresh_get(s, bad.hash, &got), TKS_NOT_FOUND);
    }
    make_refresh(&bad, 50, -1, "", "app", "alice");
    assert_int_equal(tks_refresh_insert(s, &bad), TKS_ERR);
    make_refresh(&bad, 51, -1, "sid", "", "alice");
    assert_int_equal(tks_refresh_insert(s, &bad), TKS_ERR);
    make_refresh(&bad, 52, -1, "sid", "app", "");
    assert_int_equal(tks_refresh_insert(s, &bad), TKS_ERR);

    /* NULL arguments. */
    assert_int_equal(tks_refresh_insert(s, NULL), TKS_ERR);
    assert_int_equal(tks_refresh_insert(NULL, &r1), TKS_ERR);
    assert_int_equal(tks_refresh_use(s, NULL, 1, &got), TKS_ERR);
    assert_int_equal(tks_refresh_use(s, r1.hash, 1, NULL), TKS_ERR);
    assert_int_equal(tks_refresh_use(NULL, r1.hash, 1, &got), TKS_ERR);
    assert_int_equal(tks_refresh_get(s, NULL, &got), TKS_ERR);
    assert_int_equal(tks_refresh_get(s, r1.hash, NULL), TKS_ERR);
    assert_int_equal(tks_refresh_get(NULL, r1.hash, &got), TKS_ERR);
}

/* Deleting a user deletes their sessions, codes and refresh tokens;
 * deleting a client deletes its codes and refresh tokens (sessions belong
 * to users, not clients). Nobody else's rows go. */
static void test_cascades(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_session sa, sb;
    make_session(&sa, 1, "sid-a", "alice");
    make_session(&sb, 2, "sid-b", "bob");
    assert_int_equal(tks_session_insert(s, &sa), TKS_OK);
    assert_int_equal(tks_session_insert(s, &sb), TKS_OK);
    /* Codes and tokens of each user with each client. */
    const char *users[] = {"alice", "bob"};
    const char *clients[] = {"app", "other-app"};
    for (int u = 0; u < 2; u++) {
        for (int c = 0; c < 2; c++) {
            tks_code code;
            make_code(&code, 10 + u * 2 + c, clients[c], users[u], u ? "sid-b" : "sid-a");
            assert_int_equal(tks_code_insert(s, &code), TKS_OK);
            tks_refresh rt;
            make_refresh(&rt, 20 + u * 2 + c, -1, u ? "sid-b" : "sid-a", clients[c], users[u]);
            assert_int_equal(tks_refresh_insert(s, &rt), TKS_OK);
        }
    }
    unsigned char h[32];
    tks_code cg;
    tks_refresh rg;
    tks_session sg;

    assert_int_equal(tks_user_delete(s, "alice"), TKS_OK);
    assert_int_equal(tks_session_get(s, sa.id_hash, &sg), TKS_NOT_FOUND);
    assert_int_equal(tks_session_end(s, "sid-a", 5), TKS_NOT_FOUND);
    assert_int_equal(tks_session_get(s, sb.id_hash, &sg), TKS_OK);
    for (int c = 0; c < 2; c++) {
        fill_hash(h, 20 + c); /* alice's tokens */
        assert_int_equal(tks_refresh_get(s, h, &rg), TKS_NOT_FOUND);
        fill_hash(h, 22 + c); /* bob's */
        assert_int_equal(tks_refresh_get(s, h, &rg), TKS_OK);
    }

    assert_int_equal(tks_client_delete(s, "other-app"), TKS_OK);
    fill_hash(h, 23); /* bob's token for other-app */
    assert_int_equal(tks_refresh_get(s, h, &rg), TKS_NOT_FOUND);
    fill_hash(h, 22); /* bob's token for app */
    assert_int_equal(tks_refresh_get(s, h, &rg), TKS_OK);
    assert_int_equal(tks_session_get(s, sb.id_hash, &sg), TKS_OK);

    /* Codes, checked last (redeeming marks them): only bob's for app is left. */
    for (int i = 0; i < 4; i++) {
        fill_hash(h, 10 + i);
        assert_int_equal(tks_code_redeem(s, h, 9, &cg), i == 2 ? TKS_OK : TKS_NOT_FOUND);
        if (i == 2) {
            assert_string_equal(cg.client_id, "app");
            assert_string_equal(cg.user_id, "bob");
        }
    }
}

/* Exactly one of several concurrent redeems / uses of a code or refresh
 * token gets TKS_OK; the others get TKS_EXISTS with the winner's used_at.
 * Each racer offers its own successor (the first refresh token of the
 * sign-in for a code, the next one for a refresh token: tks_code_exchange,
 * tks_refresh_rotate): exactly the winner's is stored, so a family never
 * forks.
 * In memory: threads on one store (one connection, its mutex). On a file
 * and on PostgreSQL: two connections (two tks_open), two threads on each
 * (SQLite's write lock or PostgreSQL's row locks between the connections,
 * the mutex within each). test_single_use_race_processes races processes. */
#define RACE_THREADS 4
#define RACE_ROWS 300

struct racer {
    tks_store *s;
    int idx;
    pthread_barrier_t *barrier;
    int64_t now;
    tks_result code_r[RACE_ROWS];
    int64_t code_used[RACE_ROWS];
    int code_bad_row;
    tks_result ref_r[RACE_ROWS];
    int64_t ref_used[RACE_ROWS];
    int ref_bad_row;
    char first_error[320];
};

static void *race(void *p)
{
    struct racer *w = p;
    for (int i = 0; i < RACE_ROWS; i++) {
        /* All threads start on each row together, so every row is raced
         * (without this, one connection runs ahead while the other backs
         * off in SQLite's busy handler, and only loses). */
        pthread_barrier_wait(w->barrier);
        unsigned char h[32];
        tks_code c;
        fill_hash(h, 1000 + i);
        tks_refresh succ;
        make_refresh(&succ, 20000 + i * RACE_THREADS + w->idx, -1, "sid-race", "app", "alice");
        w->code_r[i] = tks_code_exchange(w->s, h, w->now, &succ, &c);
        w->code_used[i] = c.used_at;
        if ((w->code_r[i] == TKS_OK || w->code_r[i] == TKS_EXISTS) &&
            (memcmp(c.hash, h, 32) != 0 || strcmp(c.user_id, "alice") != 0)) {
            w->code_bad_row = 1;
        }
        if (w->code_r[i] != TKS_OK && w->code_r[i] != TKS_EXISTS && w->first_error[0] == '\0') {
            snprintf(w->first_error, sizeof w->first_error, "code %d: %d %s", i, (int)w->code_r[i], tks_errmsg(w->s));
        }
        pthread_barrier_wait(w->barrier);
        tks_refresh r;
        fill_hash(h, 5000 + i);
        make_refresh(&succ, 40000 + i * RACE_THREADS + w->idx, 5000 + i, "sid-race", "app", "alice");
        w->ref_r[i] = tks_refresh_rotate(w->s, h, w->now, &succ, &r);
        w->ref_used[i] = r.used_at;
        if ((w->ref_r[i] == TKS_OK || w->ref_r[i] == TKS_EXISTS) &&
            (memcmp(r.hash, h, 32) != 0 || strcmp(r.sid, "sid-race") != 0)) {
            w->ref_bad_row = 1;
        }
        if (w->ref_r[i] != TKS_OK && w->ref_r[i] != TKS_EXISTS && w->first_error[0] == '\0') {
            snprintf(w->first_error, sizeof w->first_error, "refresh %d: %d %s", i, (int)w->ref_r[i], tks_errmsg(w->s));
        }
    }
    return NULL;
}

static void check_race(tks_store *s, struct racer *w, int which)
{
    for (int i = 0; i < RACE_ROWS; i++) {
        int winners = 0;
        int64_t winner_now = 0;
        for (int t = 0; t < RACE_THREADS; t++) {
            tks_result r = which ? w[t].ref_r[i] : w[t].code_r[i];
            if (r == TKS_OK) {
                winners++;
                winner_now = w[t].now;
            } else if (r != TKS_EXISTS) {
                fail_msg("%s %d, thread %d: %d (%s)", which ? "refresh" : "code", i, t, (int)r, w[t].first_error);
            }
            /* the successor this racer offered is stored iff it won */
            unsigned char h[32];
            tks_refresh got;
            fill_hash(h, (which ? 40000 : 20000) + i * RACE_THREADS + t);
            assert_int_equal(tks_refresh_get(s, h, &got), r == TKS_OK ? TKS_OK : TKS_NOT_FOUND);
        }
        if (winners != 1) {
            fail_msg("%s %d: %d winners", which ? "refresh" : "code", i, winners);
        }
        /* Everyone, winner and losers, sees the winner's used_at. */
        for (int t = 0; t < RACE_THREADS; t++) {
            assert_int_equal(which ? w[t].ref_used[i] : w[t].code_used[i], winner_now);
        }
    }
}

static void test_single_use_race(void **state)
{
    struct fixture *f = *state;
    signin_base(f->s);
    for (int i = 0; i < RACE_ROWS; i++) {
        tks_code c;
        make_code(&c, 1000 + i, "app", "alice", "sid-race");
        assert_int_equal(tks_code_insert(f->s, &c), TKS_OK);
        tks_refresh r;
        make_refresh(&r, 5000 + i, -1, "sid-race", "app", "alice");
        assert_int_equal(tks_refresh_insert(f->s, &r), TKS_OK);
    }
    tks_store *second = f->s;
    if (f->on_file || f->on_pg) {
        char err[256];
        assert_int_equal(tks_open(f->url, &second, err, sizeof err), TKS_OK);
    }
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, RACE_THREADS), 0);
    struct racer *w = calloc(RACE_THREADS, sizeof *w);
    assert_non_null(w);
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        w[i].s = i % 2 ? second : f->s;
        w[i].idx = i;
        w[i].barrier = &barrier;
        w[i].now = 100 + i; /* tells whose used_at a row holds */
        assert_int_equal(pthread_create(&t[i], NULL, race, &w[i]), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    pthread_barrier_destroy(&barrier);
    if (second != f->s) {
        tks_close(second);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        assert_false(w[i].code_bad_row);
        assert_false(w[i].ref_bad_row);
    }
    check_race(f->s, w, 0);
    check_race(f->s, w, 1);
    /* The race was real: both connections (on a file; threads 0 and 2 use
     * the first, 1 and 3 the second) won some rows. */
    int won_by[RACE_THREADS] = {0};
    for (int i = 0; i < RACE_ROWS; i++) {
        for (int k = 0; k < RACE_THREADS; k++) {
            won_by[k] += (w[k].code_r[i] == TKS_OK) + (w[k].ref_r[i] == TKS_OK);
        }
    }
    print_message("rows won per thread: %d %d %d %d\n", won_by[0], won_by[1], won_by[2], won_by[3]);
    assert_true(won_by[0] + won_by[2] > 0);
    assert_true(won_by[1] + won_by[3] > 0);
    free(w);
}

/* The same race between processes (several tokend instances on one
 * store): RACE_THREADS processes each open the store by URL and race on
 * every row, in step (a process-shared barrier); exactly one wins each row
 * and exactly its successor is stored. The parent closes its store before
 * forking (no connection crosses a fork) and checks after. */
struct proc_race {
    pthread_barrier_t barrier;
    struct racer w[RACE_THREADS];
    int open_failed[RACE_THREADS];
};

static void test_single_use_race_processes(void **state)
{
    struct fixture *f = *state;
    signin_base(f->s);
    for (int i = 0; i < RACE_ROWS; i++) {
        tks_code c;
        make_code(&c, 1000 + i, "app", "alice", "sid-race");
        assert_int_equal(tks_code_insert(f->s, &c), TKS_OK);
        tks_refresh r;
        make_refresh(&r, 5000 + i, -1, "sid-race", "app", "alice");
        assert_int_equal(tks_refresh_insert(f->s, &r), TKS_OK);
    }
    tks_close(f->s);
    f->s = NULL;

    struct proc_race *pr = mmap(NULL, sizeof *pr, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(pr != MAP_FAILED);
    memset(pr, 0, sizeof *pr);
    pthread_barrierattr_t ba;
    assert_int_equal(pthread_barrierattr_init(&ba), 0);
    assert_int_equal(pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED), 0);
    assert_int_equal(pthread_barrier_init(&pr->barrier, &ba, RACE_THREADS), 0);
    pthread_barrierattr_destroy(&ba);
    fflush(NULL);
    pid_t pids[RACE_THREADS];
    for (int k = 0; k < RACE_THREADS; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            alarm(120); /* a racer that died would leave the others at the barrier */
            struct racer *w = &pr->w[k];
            char err[256];
            tks_store *s = NULL;
            if (tks_open(f->url, &s, err, sizeof err) != TKS_OK) {
                pr->open_failed[k] = 1;
                snprintf(w->first_error, sizeof w->first_error, "open: %s", err);
            }
            w->s = s; /* NULL after a failed open: every call fails, the barrier still holds */
            w->idx = k;
            w->barrier = &pr->barrier;
            w->now = 100 + k;
            race(w);
            tks_close(s);
            _exit(0);
        }
    }
    for (int k = 0; k < RACE_THREADS; k++) {
        int st = 0;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fail_msg("racer process %d: status %#x", k, st);
        }
    }
    pthread_barrier_destroy(&pr->barrier);

    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    for (int k = 0; k < RACE_THREADS; k++) {
        if (pr->open_failed[k]) {
            fail_msg("racer process %d: %s", k, pr->w[k].first_error);
        }
        assert_false(pr->w[k].code_bad_row);
        assert_false(pr->w[k].ref_bad_row);
    }
    check_race(f->s, pr->w, 0);
    check_race(f->s, pr->w, 1);
    int won_by[RACE_THREADS] = {0};
    int racing = 0;
    for (int k = 0; k < RACE_THREADS; k++) {
        for (int i = 0; i < RACE_ROWS; i++) {
            won_by[k] += (pr->w[k].code_r[i] == TKS_OK) + (pr->w[k].ref_r[i] == TKS_OK);
        }
        racing += won_by[k] > 0;
    }
    print_message("rows won per process: %d %d %d %d\n", won_by[0], won_by[1], won_by[2], won_by[3]);
    assert_true(racing >= 2); /* the race was real */
    munmap(pr, sizeof *pr);
}

/* Rotation and exchange write the successor with the spend, or nothing:
 * a failure at any write point (store.h fault injection) leaves the row
 * unused and the successor absent; a token cannot replace itself. */
static void test_grant_writes_are_one_transaction(void **state)
{
    struct fixture *f = *state;
    signin_base(f->s);
    tks_refresh old, next, got;
    make_refresh(&old, 700, -1, "sid-tx", "app", "alice");
    assert_int_equal(tks_refresh_insert(f->s, &old), TKS_OK);
    make_refresh(&next, 701, 700, "sid-tx", "app", "alice");
    assert_int_equal(tks_refresh_rotate(f->s, old.hash, 5, &old, &got), TKS_ERR);
    int64_t k = 0;
    for (;; k++) {
        assert_true(k < 16);
        tks_fault_arm(f->s, k, 0);
        tks_result r = tks_refresh_rotate(f->s, old.hash, 5, &next, &got);
        int64_t seen = tks_fault_points(f->s);
        tks_fault_disarm(f->s);
        if (seen <= k) {
            assert_int_equal(r, TKS_OK);
            break;
        }
        assert_int_equal(r, TKS_ERR);
        assert_non_null(strstr(tks_errmsg(f->s), "injected fault"));
        assert_int_equal(tks_refresh_get(f->s, old.hash, &got), TKS_OK);
        assert_int_equal(got.used_at, 0);
        assert_int_equal(tks_refresh_get(f->s, next.hash, &got), TKS_NOT_FOUND);
    }
    assert_int_equal(k, 4); /* BEGIN, mark used, insert successor, COMMIT */
    assert_int_equal(tks_refresh_get(f->s, next.hash, &got), TKS_OK);
    assert_memory_equal(got.parent, old.hash, 32);
    /* used already: nothing more is written */
    tks_refresh other;
    make_refresh(&other, 702, 700, "sid-tx", "app", "alice");
    assert_int_equal(tks_refresh_rotate(f->s, old.hash, 6, &other, &got), TKS_EXISTS);
    assert_int_equal(got.used_at, 5);
    assert_int_equal(tks_refresh_get(f->s, other.hash, &got), TKS_NOT_FOUND);

    /* A code and the first refresh token of its sign-in. */
    tks_code c, cg;
    make_code(&c, 710, "app", "alice", "sid-tx2");
    assert_int_equal(tks_code_insert(f->s, &c), TKS_OK);
    tks_refresh first;
    make_refresh(&first, 711, -1, "sid-tx2", "app", "alice");
    tks_fault_arm(f->s, 2, 0); /* the insert of the refresh token */
    assert_int_equal(tks_code_exchange(f->s, c.hash, 7, &first, &cg), TKS_ERR);
    tks_fault_disarm(f->s);
    assert_int_equal(tks_code_get(f->s, c.hash, &cg), TKS_OK);
    assert_int_equal(cg.used_at, 0);
    assert_int_equal(tks_refresh_get(f->s, first.hash, &got), TKS_NOT_FOUND);
    assert_int_equal(tks_code_exchange(f->s, c.hash, 7, &first, &cg), TKS_OK);
    assert_int_equal(tks_refresh_get(f->s, first.hash, &got), TKS_OK);
    /* A successor whose user is gone is no successor: nothing is spent. */
    tks_code c3;
    make_code(&c3, 720, "app", "alice", "sid-tx3");
    assert_int_equal(tks_code_insert(f->s, &c3), TKS_OK);
    make_refresh(&first, 721, -1, "sid-tx3", "app", "nobody");
    assert_int_equal(tks_code_exchange(f->s, c3.hash, 8, &first, &cg), TKS_ERR);
    assert_int_equal(tks_code_get(f->s, c3.hash, &cg), TKS_OK);
    assert_int_equal(cg.used_at, 0);
    /* The readiness probe writes, and fails with the store. */
    assert_int_equal(tks_probe_write(f->s, 9), TKS_OK);
    tks_fault_arm(f->s, 0, 1);
    assert_int_equal(tks_probe_write(f->s, 10), TKS_ERR);
    tks_fault_disarm(f->s);
}

/* ---- schema 5: OpenID Connect ------------------------------------------------ */

/* Each alg has its own key ring: one active and one next key per alg (an
 * ES256 ring and an RS256 ring side by side), and rotating one ring never
 * touches the other. */
static void test_key_rings_per_alg(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    unsigned char sealed[4] = {1, 2, 3, 4};
    tks_key_row k;
    /* The ES256 next key is the oldest next key of all: a rotation of the
     * RS256 ring that looked at every alg would pick it. */
    make_key(&k, "es-act", 10, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    k.activated_at = 10;
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "es-nxt", 50, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "rs-act", 100, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    snprintf(k.alg, sizeof k.alg, "RS256");
    k.activated_at = 100;
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "rs-nxt", 150, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    snprintf(k.alg, sizeof k.alg, "RS256");
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    int64_t g = generation(s);

    /* A second active or next key of one alg is refused, whoever writes. */
    const char *algs[] = {"ES256", "RS256"};
    for (size_t i = 0; i < 2; i++) {
        make_key(&k, "dup-act", 300, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
        snprintf(k.alg, sizeof k.alg, "%s", algs[i]);
        assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
        make_key(&k, "dup-nxt", 300, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
        snprintf(k.alg, sizeof k.alg, "%s", algs[i]);
        assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
    }
    assert_int_equal(tks_key_set_state(s, "rs-nxt", TKS_KEY_ACTIVE, 300, 0), TKS_EXISTS);
    assert_int_equal(tks_key_set_state(s, "es-nxt", TKS_KEY_ACTIVE, 300, 0), TKS_EXISTS);
    assert_int_equal(generation(s), g);
    /* A third alg starts a ring of its own; retired keys are not limited. */
    make_key(&k, "ed-act", 300, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    snprintf(k.alg, sizeof k.alg, "EdDSA");
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    for (int i = 0; i < 2; i++) {
        make_key(&k, i ? "rs-old-2" : "rs-old-1", 5 + i, TKS_KEY_RETIRED, sealed, sizeof sealed, NULL);
        snprintf(k.alg, sizeof k.alg, "RS256");
        k.verify_until = 1000;
        assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    }

    /* Rotating the RS256 ring turns only it. */
    tks_key_row n;
    make_key(&n, "rs-new", 400, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    snprintf(n.alg, sizeof n.alg, "RS256");
    assert_int_equal(tks_key_rotate(s, "rs-act", 300, 400, 900, &n), TKS_OK);
    struct key_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    assert_int_equal(w->n, 8);
    int seen = 0;
    for (int i = 0; i < w->n; i++) {
        const tks_key_row *r = &w->copy[i];
        if (strcmp(r->kid, "es-act") == 0) {
            assert_int_equal(r->state, TKS_KEY_ACTIVE);
            assert_int_equal(r->activated_at, 10);
            seen |= 1;
        } else if (strcmp(r->kid, "es-nxt") == 0) {
            assert_int_equal(r->state, TKS_KEY_NEXT);
            assert_int_equal(r->activated_at, 0);
            seen |= 2;
        } else if (strcmp(r->kid, "rs-act") == 0) {
            assert_int_equal(r->state, TKS_KEY_RETIRED);
            assert_int_equal(r->retired_at, 400);
            assert_int_equal(r->verify_until, 900);
            seen |= 4;
        } else if (strcmp(r->kid, "rs-nxt") == 0) {
            assert_int_equal(r->state, TKS_KEY_ACTIVE);
            assert_int_equal(r->activated_at, 400);
            seen |= 8;
        } else if (strcmp(r->kid, "rs-new") == 0) {
            assert_int_equal(r->state, TKS_KEY_NEXT);
            assert_string_equal(r->alg, "RS256");
            seen |= 16;
        }
    }
    assert_int_equal(seen, 31);
    free(w);

    /* The RS256 ring's next key is too young; the old ES256 next key does
     * not stand in for it. Nothing changes. */
    g = generation(s);
    tks_key_row n2;
    make_key(&n2, "rs-new-2", 500, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    snprintf(n2.alg, sizeof n2.alg, "RS256");
    assert_int_equal(tks_key_rotate(s, "rs-nxt", 399, 500, 900, &n2), TKS_NOT_FOUND);
    assert_int_equal(generation(s), g);
    /* The ES256 ring turns on its own. */
    make_key(&n2, "es-new", 500, TKS_KEY_NEXT, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_rotate(s, "es-act", 300, 500, 900, &n2), TKS_OK);
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    assert_int_equal(tks_key_list(s, walk_key, w), TKS_OK);
    int active = 0, next = 0;
    for (int i = 0; i < w->n; i++) {
        const tks_key_row *r = &w->copy[i];
        if (strcmp(r->kid, "es-nxt") == 0) {
            assert_int_equal(r->state, TKS_KEY_ACTIVE);
        }
        if (strcmp(r->kid, "rs-nxt") == 0) {
            assert_int_equal(r->state, TKS_KEY_ACTIVE); /* untouched */
            assert_int_equal(r->activated_at, 400);
        }
        active += r->state == TKS_KEY_ACTIVE;
        next += r->state == TKS_KEY_NEXT;
    }
    assert_int_equal(active, 3); /* ES256, RS256, EdDSA */
    assert_int_equal(next, 2);   /* ES256, RS256 */
    free(w);
}

/* Schema 5's client settings: back-channel logout URI, ID token alg,
 * consent; stored, read, listed, bounded. */
struct oidc_client_walk {
    int n;
    tks_client rp;
};

static int walk_oidc_client(const tks_client *c, void *ud)
{
    struct oidc_client_walk *w = ud;
    if (strcmp(c->id, "rp") == 0) {
        w->rp = *c;
    }
    w->n++;
    return 0;
}

static void test_client_oidc_fields(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_client c, got;
    make_client(&c, "rp");
    snprintf(c.backchannel_logout_uri, sizeof c.backchannel_logout_uri, "https://rp.example.com/backchannel");
    snprintf(c.id_token_alg, sizeof c.id_token_alg, "ES256");
    c.consent = 9; /* any non-zero */
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    c.consent = 1;
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_client_get(s, "rp", &got), TKS_OK);
    assert_client_equal(&got, &c);

    /* Not set: "", "" and 0. */
    tks_client d;
    make_client(&d, "first-party");
    assert_int_equal(tks_client_insert(s, &d), TKS_OK);
    assert_int_equal(tks_client_get(s, "first-party", &got), TKS_OK);
    assert_client_equal(&got, &d);
    assert_string_equal(got.backchannel_logout_uri, "");
    assert_string_equal(got.id_token_alg, "");
    assert_int_equal(got.consent, 0);

    /* The listing carries them. */
    struct oidc_client_walk w;
    memset(&w, 0, sizeof w);
    assert_int_equal(tks_client_list(s, walk_oidc_client, &w), TKS_OK);
    assert_int_equal(w.n, 2);
    assert_client_equal(&w.rp, &c);

    /* At the limit; one byte more is refused. */
    make_client(&c, "full");
    memset(c.backchannel_logout_uri, 'b', TKS_URI_MAX);
    c.backchannel_logout_uri[TKS_URI_MAX] = '\0';
    memset(c.id_token_alg, 'a', sizeof c.id_token_alg - 1);
    c.id_token_alg[sizeof c.id_token_alg - 1] = '\0';
    assert_int_equal(tks_client_insert(s, &c), TKS_OK);
    assert_int_equal(tks_client_get(s, "full", &got), TKS_OK);
    assert_client_equal(&got, &c);
    make_client(&c, "bad-bcl");
    memset(c.backchannel_logout_uri, 'b', sizeof c.backchannel_logout_uri);
    assert_int_equal(tks_client_insert(s, &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "back-channel logout URI"));
    make_client(&c, "bad-alg");
    memset(c.id_token_alg, 'a', sizeof c.id_token_alg);
    assert_int_equal(tks_client_insert(s, &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "ID token alg"));
    assert_int_equal(tks_client_get(s, "bad-bcl", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_client_get(s, "bad-alg", &got), TKS_NOT_FOUND);
}

/* The clients recorded for a session, as tks_session_clients lists them. */
struct sid_clients {
    tks_store *s;
    int n;
    int stop_after;
    char ids[64][TKS_ID_MAX + 1];
    int reentry_failed;
};

static int walk_sid_client(const char *client_id, void *ud)
{
    struct sid_clients *w = ud;
    if (w->n < 64) {
        snprintf(w->ids[w->n], sizeof w->ids[w->n], "%s", client_id);
    }
    /* no lock is held: the callback may use the store */
    tks_client c;
    if (w->s != NULL && tks_client_get(w->s, client_id, &c) != TKS_OK) {
        w->reentry_failed = 1;
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static struct sid_clients *sid_clients(tks_store *s, const char *sid)
{
    struct sid_clients *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->s = s;
    assert_int_equal(tks_session_clients(s, sid, walk_sid_client, w), TKS_OK);
    assert_false(w->reentry_failed);
    return w;
}

/* The nonce of a code: stored and read back with auth_time, single use
 * per client (a replayed authorization request), free for other clients,
 * and "" never conflicts. */
static void test_code_nonce(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_code c, got;
    make_code(&c, 1, "app", "alice", "sid-1");
    snprintf(c.nonce, sizeof c.nonce, "n-0S6_WzA2Mj");
    c.auth_time = 990;
    assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_code_get(s, c.hash, &got), TKS_OK);
    assert_code_equal(&got, &c);

    /* The same nonce for the same client: refused, nothing stored. */
    tks_code d;
    make_code(&d, 2, "app", "bob", "sid-2");
    snprintf(d.nonce, sizeof d.nonce, "%s", c.nonce);
    assert_int_equal(tks_code_insert(s, &d), TKS_EXISTS);
    assert_int_equal(tks_code_get(s, d.hash, &got), TKS_NOT_FOUND);
    struct sid_clients *w = sid_clients(s, "sid-2");
    assert_int_equal(w->n, 0);
    free(w);
    /* Another client may use it. */
    make_code(&d, 3, "other-app", "alice", "sid-1");
    snprintf(d.nonce, sizeof d.nonce, "%s", c.nonce);
    assert_int_equal(tks_code_insert(s, &d), TKS_OK);
    /* Empty nonces never conflict. */
    for (int i = 0; i < 3; i++) {
        make_code(&d, 4 + i, "app", "alice", "sid-1");
        assert_int_equal(tks_code_insert(s, &d), TKS_OK);
        assert_int_equal(tks_code_get(s, d.hash, &got), TKS_OK);
        assert_string_equal(got.nonce, "");
        assert_int_equal(got.auth_time, 0);
    }

    /* Redeem and exchange return them, the first time and on replay. */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_code_redeem(s, c.hash, 1010, &got), TKS_OK);
    c.used_at = 1010;
    assert_code_equal(&got, &c);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_code_exchange(s, c.hash, 1020, NULL, &got), TKS_EXISTS);
    assert_code_equal(&got, &c);
    /* A used code still holds its nonce; purged, the nonce is free again. */
    make_code(&d, 10, "app", "alice", "sid-1");
    snprintf(d.nonce, sizeof d.nonce, "%s", c.nonce);
    assert_int_equal(tks_code_insert(s, &d), TKS_EXISTS);
    assert_int_equal(tks_code_purge(s, INT64_MAX), TKS_OK);
    assert_int_equal(tks_code_insert(s, &d), TKS_OK);

    /* At the limit; one byte more is refused. */
    tks_code big;
    make_code(&big, 20, "app", "alice", "sid-1");
    memset(big.nonce, 'n', TKS_NONCE_MAX);
    big.nonce[TKS_NONCE_MAX] = '\0';
    big.auth_time = INT64_MAX;
    assert_int_equal(tks_code_insert(s, &big), TKS_OK);
    assert_int_equal(tks_code_get(s, big.hash, &got), TKS_OK);
    assert_code_equal(&got, &big);
    make_code(&d, 21, "app", "alice", "sid-1");
    memset(d.nonce, 'n', sizeof d.nonce);
    assert_int_equal(tks_code_insert(s, &d), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "nonce"));
    assert_int_equal(tks_code_get(s, d.hash, &got), TKS_NOT_FOUND);
}

/* tks_code_insert records the session's client; tks_session_clients lists
 * them once each, in id order, page after page, with no lock held. */
static void test_session_clients(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_client cl;
    make_client(&cl, "zeta");
    assert_int_equal(tks_client_insert(s, &cl), TKS_OK);
    make_client(&cl, "mid");
    assert_int_equal(tks_client_insert(s, &cl), TKS_OK);
    struct sid_clients *w = sid_clients(s, "sid-1");
    assert_int_equal(w->n, 0);
    free(w);

    const char *order[] = {"zeta", "other-app", "app", "app", "zeta"};
    for (int i = 0; i < 5; i++) {
        tks_code c;
        make_code(&c, 1 + i, order[i], "alice", "sid-1");
        assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    }
    tks_code c;
    make_code(&c, 10, "mid", "bob", "sid-2");
    assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    w = sid_clients(s, "sid-1");
    assert_int_equal(w->n, 3);
    assert_string_equal(w->ids[0], "app");
    assert_string_equal(w->ids[1], "other-app");
    assert_string_equal(w->ids[2], "zeta");
    free(w);
    w = sid_clients(s, "sid-2");
    assert_int_equal(w->n, 1);
    assert_string_equal(w->ids[0], "mid");
    free(w);
    /* Redeemed and purged codes do not take their session's clients. */
    assert_int_equal(tks_code_purge(s, INT64_MAX), TKS_OK);
    w = sid_clients(s, "sid-2");
    assert_int_equal(w->n, 1);
    free(w);
    /* Stop early. */
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->stop_after = 2;
    assert_int_equal(tks_session_clients(s, "sid-1", walk_sid_client, w), TKS_OK);
    assert_int_equal(w->n, 2);
    free(w);
    /* A deleted client goes from every session. */
    assert_int_equal(tks_client_delete(s, "zeta"), TKS_OK);
    w = sid_clients(s, "sid-1");
    assert_int_equal(w->n, 2);
    assert_string_equal(w->ids[1], "other-app");
    free(w);
    /* Unknown sids, and sids no session can have: none. */
    const char *none[] = {"sid-unknown", "", "sid-1 "};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        w = sid_clients(s, none[i]);
        assert_int_equal(w->n, 0);
        free(w);
    }
    char longsid[TKS_SID_MAX + 2];
    memset(longsid, 's', sizeof longsid - 1);
    longsid[sizeof longsid - 1] = '\0';
    w = sid_clients(s, longsid);
    assert_int_equal(w->n, 0);
    free(w);

    /* More clients than a page, inserted out of order. */
    for (int i = 0; i < 45; i++) {
        char id[16];
        snprintf(id, sizeof id, "rp-%02d", (i * 7) % 45);
        make_client(&cl, id);
        assert_int_equal(tks_client_insert(s, &cl), TKS_OK);
        make_code(&c, 100 + i, id, "alice", "sid-many");
        assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    }
    w = sid_clients(s, "sid-many");
    assert_int_equal(w->n, 45);
    for (int i = 0; i < 45; i++) {
        char id[16];
        snprintf(id, sizeof id, "rp-%02d", i);
        assert_string_equal(w->ids[i], id);
    }
    free(w);

    assert_int_equal(tks_session_clients(s, NULL, walk_sid_client, NULL), TKS_ERR);
    assert_int_equal(tks_session_clients(s, "sid-1", NULL, NULL), TKS_ERR);
    assert_int_equal(tks_session_clients(NULL, "sid-1", walk_sid_client, NULL), TKS_ERR);
}

/* A failure at any write point of tks_code_insert (BEGIN, the code, the
 * session's client, COMMIT) stores neither the code nor its session's
 * client. */
static void test_code_insert_is_one_transaction(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_code c, got;
    make_code(&c, 800, "app", "alice", "sid-f");
    snprintf(c.nonce, sizeof c.nonce, "nonce-f");
    for (int sticky = 0; sticky < 2; sticky++) {
        int64_t k = 0;
        for (;; k++) {
            assert_true(k < 16);
            tks_fault_arm(s, k, sticky);
            tks_result r = tks_code_insert(s, &c);
            int64_t seen = tks_fault_points(s);
            tks_fault_disarm(s);
            if (seen <= k) {
                assert_int_equal(r, TKS_OK);
                break;
            }
            assert_int_equal(r, TKS_ERR);
            assert_non_null(strstr(tks_errmsg(s), "injected fault"));
            assert_int_equal(tks_code_get(s, c.hash, &got), TKS_NOT_FOUND);
            struct sid_clients *w = sid_clients(s, c.sid);
            assert_int_equal(w->n, 0);
            free(w);
        }
        assert_int_equal(k, 4); /* BEGIN, the code, the session's client, COMMIT */
        assert_int_equal(tks_code_get(s, c.hash, &got), TKS_OK);
        assert_code_equal(&got, &c);
        struct sid_clients *w = sid_clients(s, c.sid);
        assert_int_equal(w->n, 1);
        assert_string_equal(w->ids[0], "app");
        free(w);
        assert_int_equal(tks_code_purge(s, INT64_MAX), TKS_OK);
        assert_int_equal(tks_client_delete(s, "app"), TKS_OK); /* takes its session_clients row */
        w = sid_clients(s, c.sid);
        assert_int_equal(w->n, 0);
        free(w);
        tks_client cl;
        make_client(&cl, "app");
        assert_int_equal(tks_client_insert(s, &cl), TKS_OK);
    }
    /* A code refused by the store (an unknown user) records no client. */
    make_code(&c, 801, "other-app", "nobody", "sid-g");
    assert_int_equal(tks_code_insert(s, &c), TKS_NOT_FOUND);
    struct sid_clients *w = sid_clients(s, "sid-g");
    assert_int_equal(w->n, 0);
    free(w);
}

/* auth_time of refresh tokens: stored by insert, by the exchange of a code
 * (`first`) and by rotation (`next`), and returned by every read. */
static void test_refresh_auth_time(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_code c, cg;
    make_code(&c, 1, "app", "alice", "sid-1");
    c.auth_time = 900;
    assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    tks_refresh first, next, got;
    make_refresh(&first, 2, -1, "sid-1", "app", "alice");
    first.auth_time = 900;
    assert_int_equal(tks_code_exchange(s, c.hash, 1000, &first, &cg), TKS_OK);
    assert_int_equal(cg.auth_time, 900);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_get(s, first.hash, &got), TKS_OK);
    assert_refresh_equal(&got, &first);

    make_refresh(&next, 3, 2, "sid-1", "app", "alice");
    next.created_at = 2000;
    next.auth_time = 901; /* whatever `next` says is stored */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_rotate(s, first.hash, 2000, &next, &got), TKS_OK);
    first.used_at = 2000;
    assert_refresh_equal(&got, &first); /* the old row */
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_rotate(s, first.hash, 2100, &next, &got), TKS_EXISTS);
    assert_refresh_equal(&got, &first);
    assert_int_equal(tks_refresh_get(s, next.hash, &got), TKS_OK);
    assert_refresh_equal(&got, &next);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_refresh_use(s, next.hash, 3000, &got), TKS_OK);
    next.used_at = 3000;
    assert_refresh_equal(&got, &next);

    tks_refresh r;
    make_refresh(&r, 4, -1, "sid-2", "app", "bob");
    r.auth_time = INT64_MAX;
    assert_int_equal(tks_refresh_insert(s, &r), TKS_OK);
    assert_int_equal(tks_refresh_get(s, r.hash, &got), TKS_OK);
    assert_refresh_equal(&got, &r);
    make_refresh(&r, 5, -1, "sid-2", "app", "bob");
    assert_int_equal(tks_refresh_insert(s, &r), TKS_OK);
    assert_int_equal(tks_refresh_get(s, r.hash, &got), TKS_OK);
    assert_int_equal(got.auth_time, 0);
}

/* A session by its public id. */
static void test_session_get_sid(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_session se, other, got;
    make_session(&se, 1, "sid-1", "alice");
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    make_session(&other, 2, "sid-2", "bob");
    other.ended_at = 1500;
    assert_int_equal(tks_session_insert(s, &other), TKS_OK);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_session_get_sid(s, "sid-1", &got), TKS_OK);
    assert_session_equal(&got, &se);
    /* ended sessions too (the authority tells "ended" from "unknown") */
    assert_int_equal(tks_session_get_sid(s, "sid-2", &got), TKS_OK);
    assert_session_equal(&got, &other);
    assert_int_equal(tks_session_end(s, "sid-1", 2000), TKS_OK);
    assert_int_equal(tks_session_get_sid(s, "sid-1", &got), TKS_OK);
    assert_int_equal(got.ended_at, 2000);

    char longsid[TKS_SID_MAX + 2];
    memset(longsid, 's', sizeof longsid - 1);
    longsid[sizeof longsid - 1] = '\0';
    const char *none[] = {"sid-3", "", "SID-1", longsid};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        memset(&got, 0x55, sizeof got);
        assert_int_equal(tks_session_get_sid(s, none[i], &got), TKS_NOT_FOUND);
        assert_int_equal(got.sid[0], 0);
        assert_int_equal(got.created_at, 0);
    }
    assert_int_equal(tks_session_get_sid(s, NULL, &got), TKS_ERR);
    assert_int_equal(tks_session_get_sid(s, "sid-1", NULL), TKS_ERR);
    assert_int_equal(tks_session_get_sid(NULL, "sid-1", &got), TKS_ERR);
}

/* Consents: put (an upsert), get, list in client id order, delete one or
 * all; they go with their user or client. */
struct consent_walk {
    tks_store *s;
    int n;
    int stop_after;
    tks_consent c[64];
    int reentry_failed;
};

static int walk_consent(const tks_consent *c, void *ud)
{
    struct consent_walk *w = ud;
    if (w->n < 64) {
        w->c[w->n] = *c;
    }
    tks_consent again;
    if (tks_consent_get(w->s, c->user_id, c->client_id, &again) != TKS_OK) {
        w->reentry_failed = 1;
    }
    w->n++;
    return w->stop_after && w->n >= w->stop_after;
}

static struct consent_walk *consents(tks_store *s, const char *user_id)
{
    struct consent_walk *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->s = s;
    assert_int_equal(tks_consent_list(s, user_id, walk_consent, w), TKS_OK);
    assert_false(w->reentry_failed);
    return w;
}

static void make_consent(tks_consent *c, const char *user, const char *client, const char *scope, int64_t at)
{
    memset(c, 0, sizeof *c);
    snprintf(c->user_id, sizeof c->user_id, "%s", user);
    snprintf(c->client_id, sizeof c->client_id, "%s", client);
    snprintf(c->scope, sizeof c->scope, "%s", scope);
    c->granted_at = at;
}

static void assert_consent_equal(const tks_consent *a, const tks_consent *b)
{
    assert_string_equal(a->user_id, b->user_id);
    assert_string_equal(a->client_id, b->client_id);
    assert_string_equal(a->scope, b->scope);
    assert_int_equal(a->granted_at, b->granted_at);
}

static void test_consents(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_consent c, got;
    make_consent(&c, "alice", "other-app", "openid profile", 100);
    assert_int_equal(tks_consent_put(s, &c), TKS_OK);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_consent_get(s, "alice", "other-app", &got), TKS_OK);
    assert_consent_equal(&got, &c);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(tks_consent_get(s, "alice", "app", &got), TKS_NOT_FOUND);
    assert_int_equal(got.scope[0], 0);
    assert_int_equal(got.granted_at, 0);
    assert_int_equal(tks_consent_get(s, "bob", "other-app", &got), TKS_NOT_FOUND);

    /* A new grant replaces the old one. */
    make_consent(&c, "alice", "other-app", "openid", 200);
    assert_int_equal(tks_consent_put(s, &c), TKS_OK);
    assert_int_equal(tks_consent_get(s, "alice", "other-app", &got), TKS_OK);
    assert_consent_equal(&got, &c);

    /* Listed in client id order, per user. */
    tks_consent a2, b1;
    make_consent(&a2, "alice", "app", "", 150);
    assert_int_equal(tks_consent_put(s, &a2), TKS_OK);
    make_consent(&b1, "bob", "app", "openid email", 160);
    assert_int_equal(tks_consent_put(s, &b1), TKS_OK);
    struct consent_walk *w = consents(s, "alice");
    assert_int_equal(w->n, 2);
    assert_consent_equal(&w->c[0], &a2);
    assert_consent_equal(&w->c[1], &c);
    free(w);
    w = consents(s, "bob");
    assert_int_equal(w->n, 1);
    assert_consent_equal(&w->c[0], &b1);
    free(w);
    w = consents(s, "carol");
    assert_int_equal(w->n, 0);
    free(w);
    w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->s = s;
    w->stop_after = 1;
    assert_int_equal(tks_consent_list(s, "alice", walk_consent, w), TKS_OK);
    assert_int_equal(w->n, 1);
    free(w);

    /* A user or client that does not exist. */
    make_consent(&c, "alice", "nobody", "openid", 1);
    assert_int_equal(tks_consent_put(s, &c), TKS_NOT_FOUND);
    make_consent(&c, "nobody", "app", "openid", 1);
    assert_int_equal(tks_consent_put(s, &c), TKS_NOT_FOUND);
    assert_non_null(strstr(tks_errmsg(s), "does not exist"));

    /* Delete one, then all of a user's; nobody else's go. */
    int n = -1;
    assert_int_equal(tks_consent_delete(s, "alice", "app", &n), TKS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tks_consent_get(s, "alice", "app", &got), TKS_NOT_FOUND);
    n = -1;
    assert_int_equal(tks_consent_delete(s, "alice", "app", &n), TKS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(tks_consent_put(s, &a2), TKS_OK);
    n = -1;
    assert_int_equal(tks_consent_delete(s, "alice", NULL, &n), TKS_OK);
    assert_int_equal(n, 2);
    w = consents(s, "alice");
    assert_int_equal(w->n, 0);
    free(w);
    assert_int_equal(tks_consent_get(s, "bob", "app", &got), TKS_OK);
    n = -1;
    assert_int_equal(tks_consent_delete(s, "alice", NULL, &n), TKS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(tks_consent_delete(s, "bob", "app", NULL), TKS_OK);
    assert_int_equal(tks_consent_get(s, "bob", "app", &got), TKS_NOT_FOUND);
    n = -1;
    assert_int_equal(tks_consent_delete(s, "", NULL, &n), TKS_OK);
    assert_int_equal(n, 0);

    /* They go with their user, and with their client. */
    assert_int_equal(tks_consent_put(s, &b1), TKS_OK);
    make_consent(&c, "alice", "other-app", "openid", 300);
    assert_int_equal(tks_consent_put(s, &c), TKS_OK);
    make_consent(&c, "bob", "other-app", "openid", 300);
    assert_int_equal(tks_consent_put(s, &c), TKS_OK);
    assert_int_equal(tks_user_delete(s, "bob"), TKS_OK);
    assert_int_equal(tks_consent_get(s, "bob", "app", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_consent_get(s, "alice", "other-app", &got), TKS_OK);
    assert_int_equal(tks_client_delete(s, "other-app"), TKS_OK);
    assert_int_equal(tks_consent_get(s, "alice", "other-app", &got), TKS_NOT_FOUND);

    /* More than a page, inserted out of order. */
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "tp-%02d", (i * 13) % 40);
        tks_client cl;
        make_client(&cl, id);
        assert_int_equal(tks_client_insert(s, &cl), TKS_OK);
        make_consent(&c, "alice", id, "openid", i);
        assert_int_equal(tks_consent_put(s, &c), TKS_OK);
    }
    w = consents(s, "alice");
    assert_int_equal(w->n, 40);
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "tp-%02d", i);
        assert_string_equal(w->c[i].client_id, id);
    }
    free(w);

    /* Limits. */
    make_consent(&c, "alice", "app", "", 1);
    memset(c.scope, 'o', TKS_LIST_MAX);
    c.scope[TKS_LIST_MAX] = '\0';
    assert_int_equal(tks_consent_put(s, &c), TKS_OK);
    assert_int_equal(tks_consent_get(s, "alice", "app", &got), TKS_OK);
    assert_consent_equal(&got, &c);
    memset(c.scope, 'o', sizeof c.scope);
    assert_int_equal(tks_consent_put(s, &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(s), "scope"));
    make_consent(&c, "", "app", "", 1);
    assert_int_equal(tks_consent_put(s, &c), TKS_ERR);
    make_consent(&c, "alice", "", "", 1);
    assert_int_equal(tks_consent_put(s, &c), TKS_ERR);
    make_consent(&c, "alice", "app", "", 1);
    memset(c.client_id, 'c', sizeof c.client_id);
    assert_int_equal(tks_consent_put(s, &c), TKS_ERR);
    char longid[TKS_ID_MAX + 2];
    memset(longid, 'u', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(tks_consent_get(s, longid, "app", &got), TKS_NOT_FOUND);
    assert_int_equal(tks_consent_get(s, "alice", longid, &got), TKS_NOT_FOUND);
    w = consents(s, longid);
    assert_int_equal(w->n, 0);
    free(w);

    /* NULL arguments. */
    assert_int_equal(tks_consent_put(s, NULL), TKS_ERR);
    assert_int_equal(tks_consent_put(NULL, &c), TKS_ERR);
    assert_int_equal(tks_consent_get(s, NULL, "app", &got), TKS_ERR);
    assert_int_equal(tks_consent_get(s, "alice", NULL, &got), TKS_ERR);
    assert_int_equal(tks_consent_get(s, "alice", "app", NULL), TKS_ERR);
    assert_int_equal(tks_consent_list(s, NULL, walk_consent, NULL), TKS_ERR);
    assert_int_equal(tks_consent_list(s, "alice", NULL, NULL), TKS_ERR);
    n = -1;
    assert_int_equal(tks_consent_delete(s, NULL, NULL, &n), TKS_ERR);
    assert_int_equal(n, 0);
    assert_int_equal(tks_consent_delete(NULL, "alice", NULL, NULL), TKS_ERR);
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
    assert_int_equal(tks_schema_version(f->s), SCHEMA_LATEST);
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
    assert_string_equal(err, "the store is at schema 999; this tokend knows up to 6");

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
    raw_exec(db, "INSERT INTO clients (" CLIENT1_COLS ")"
                 " VALUES ('long-name', printf('%.200c', 'n'), zeroblob(32), '', '', 1, 0, 0)");
    raw_exec(db, "INSERT INTO clients (" CLIENT1_COLS ")"
                 " VALUES ('nul-name', CAST(X'410042' AS TEXT), zeroblob(32), '', '', 1, 0, 0)");
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

/* The same for the schema-2 tables. A redeem or use whose row cannot be
 * read back leaves the row unused (nothing is committed). */
static void test_overlong_stored_values_2(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    signin_base(f->s);
    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "INSERT INTO clients (" CLIENT1_COLS ", grant_types)"
                 " VALUES ('long-grants', 'n', zeroblob(32), '', '', 1, 0, 0, printf('%.128c', 'g'))");
    raw_exec(db, "INSERT INTO clients (" CLIENT1_COLS ", redirect_uris)"
                 " VALUES ('long-uris', 'n', zeroblob(32), '', '', 1, 0, 0, printf('%.2049c', 'u'))");
    raw_exec(db, "INSERT INTO users (id, pwhash) VALUES ('long-hash', printf('%.256c', 'h'))");
    raw_exec(db, "INSERT INTO sessions (id_hash, sid, user_id, created_at, last_seen)"
                 " VALUES (zeroblob(32), printf('%.65c', 's'), 'alice', 1, 1)");
    raw_exec(db, "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience,"
                 " created_at, expires_at)"
                 " VALUES (zeroblob(32), 'app', 'alice', 's', '', '', '', printf('%.129c', 'a'), 1, 2)");
    raw_exec(db, "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, scope, created_at, expires_at)"
                 " VALUES (zeroblob(32), zeroblob(32), 's', 'app', 'alice', printf('%.2049c', 'o'), 1, 2)");
    raw_exec(db, "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience,"
                 " created_at, expires_at)"
                 " VALUES (X'"
                 "0101010101010101010101010101010101010101010101010101010101010101"
                 "', 'app', 'alice', 's', CAST(X'410042' AS TEXT), '', '', '', 1, 2)");
    static const unsigned char zero[32];
    unsigned char ones[32];
    memset(ones, 1, sizeof ones);

    tks_client c;
    assert_int_equal(tks_client_get(f->s, "long-grants", &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "clients.grant_types"));
    assert_int_equal(tks_client_get(f->s, "long-uris", &c), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "clients.redirect_uris"));
    tks_user u;
    memset(&u, 0x55, sizeof u);
    assert_int_equal(tks_user_get(f->s, "long-hash", &u), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "users.pwhash"));
    assert_int_equal(u.id[0], 0);
    struct user_walk uw = {.s = f->s};
    assert_int_equal(tks_user_list(f->s, walk_user, &uw), TKS_ERR);
    tks_session se;
    assert_int_equal(tks_session_get(f->s, zero, &se), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "sessions.sid"));
    assert_int_equal(se.user_id[0], 0);

    tks_code code;
    memset(&code, 0x55, sizeof code);
    assert_int_equal(tks_code_redeem(f->s, zero, 9, &code), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "codes.audience"));
    assert_int_equal(code.client_id[0], 0);
    assert_int_equal(code.used_at, 0);
    assert_int_equal(tks_code_redeem(f->s, ones, 9, &code), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "NUL"));
    tks_refresh rt;
    assert_int_equal(tks_refresh_use(f->s, zero, 9, &rt), TKS_ERR);
    assert_non_null(strstr(tks_errmsg(f->s), "refresh_tokens.scope"));
    assert_int_equal(tks_refresh_get(f->s, zero, &rt), TKS_ERR);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM codes WHERE used_at <> 0"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM refresh_tokens WHERE used_at <> 0"), 0);
    sqlite3_close(db);
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
    raw_exec(db, "INSERT INTO users (id, pwhash) VALUES ('alice', 'h')");
    raw_exec(db, "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, created_at, expires_at)"
                 " VALUES (zeroblob(32), zeroblob(32), 'sid', 'fk-client', 'alice', 1, 2)");
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO clients (" CLIENT1_COLS ")"
                                      " VALUES ('short-hash', 'n', zeroblob(31), '', '', 1, 0, 0)",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    /* Hashes are 32 bytes; flags are 0 or 1; a user or client must exist. */
    const char *refused[] = {
        "INSERT INTO sessions (id_hash, sid, user_id, created_at, last_seen) VALUES (zeroblob(31), 's', 'alice', 1, 1)",
        "INSERT INTO sessions (id_hash, sid, user_id, created_at, last_seen) VALUES ('text', 's', 'alice', 1, 1)",
        "INSERT INTO sessions (id_hash, sid, user_id, created_at, last_seen) VALUES (zeroblob(32), 's', 'bob', 1, 1)",
        "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience, created_at,"
        " expires_at) VALUES (zeroblob(33), 'fk-client', 'alice', 's', '', '', '', '', 1, 2)",
        "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience, created_at,"
        " expires_at) VALUES (zeroblob(32), 'nobody', 'alice', 's', '', '', '', '', 1, 2)",
        "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, created_at, expires_at)"
        " VALUES (zeroblob(32), zeroblob(31), 'sid', 'fk-client', 'alice', 1, 2)",
        "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, created_at, expires_at)"
        " VALUES (randomblob(32), zeroblob(32), 'sid', 'fk-client', 'bob', 1, 2)",
        "INSERT INTO users (id, pwhash, disabled) VALUES ('carol', 'h', 2)",
        "UPDATE clients SET is_public = 2",
        "UPDATE clients SET consent = 2",
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ('bob', 'fk-client', '', 1)",
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ('alice', 'nobody', '', 1)",
        "INSERT INTO session_clients (sid, client_id) VALUES ('sid', 'nobody')",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (sqlite3_exec(db, refused[i], NULL, NULL, NULL) == SQLITE_OK) {
            fail_msg("accepted: %s", refused[i]);
        }
    }
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

/* ---- schema 1 -> 2 ------------------------------------------------------- */

/* Schema 1 exactly as tokend 0.x shipped it (MIGRATIONS[0] of src/store/
 * sqlite.c at the time), frozen here: the test below checks that the
 * shipped migration still creates exactly this, so a store "as an older
 * tokend left it" is what the migration test starts from. */
static const char SCHEMA_1[] =
    "CREATE TABLE clients ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL,"
    "  secret_hash BLOB(32) NOT NULL CHECK (typeof(secret_hash) = 'blob' AND length(secret_hash) = 32),"
    "  scopes TEXT NOT NULL,"
    "  audiences TEXT NOT NULL,"
    "  ttl INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE signing_keys ("
    "  kid TEXT PRIMARY KEY NOT NULL,"
    "  alg TEXT NOT NULL,"
    "  state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),"
    "  created_at INTEGER NOT NULL,"
    "  activated_at INTEGER NOT NULL DEFAULT 0,"
    "  retired_at INTEGER NOT NULL DEFAULT 0,"
    "  verify_until INTEGER NOT NULL DEFAULT 0,"
    "  public_jwk TEXT,"
    "  sealed BLOB NOT NULL"
    ");"
    "CREATE TABLE revocations ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
    "  value TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  revoked_at INTEGER NOT NULL,"
    "  until INTEGER NOT NULL,"
    "  UNIQUE (kind, value)"
    ");"
    "CREATE INDEX revocations_until ON revocations (until);"
    "CREATE TABLE refresh_tokens ("
    "  hash BLOB PRIMARY KEY NOT NULL,"
    "  sid TEXT NOT NULL,"
    "  client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  sub TEXT,"
    "  parent BLOB,"
    "  created_at INTEGER NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0,"
    "  expires_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);"
    "CREATE TABLE audit ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  client_id TEXT,"
    "  ip TEXT,"
    "  detail TEXT"
    ");"
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value INTEGER NOT NULL"
    ");"
    "INSERT INTO meta (key, value) VALUES ('key_generation', 0);"
    "PRAGMA user_version = 1;";

static uint64_t hook_ids = (uint64_t)1 << 62; /* far from tks_open's store ids */

/* Opens PATH migrated no further than `target` (tksi_sqlite_open_at). */
static tks_store *open_at(const char *path, int target, char *err, size_t err_cap)
{
    tks_store *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->id = hook_ids++;
    if (tksi_sqlite_open_at(s, path, target, err, err_cap) != TKS_OK) {
        free(s);
        return NULL;
    }
    return s;
}

/* The schema of a file as text: one line per object, in name order. */
static char *schema_dump(const char *path)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT type || '|' || name || '|' || tbl_name || '|' || coalesce(sql, '')"
                                        " FROM sqlite_schema ORDER BY name",
                                        -1, &st, NULL),
                     SQLITE_OK);
    size_t cap = 65536, len = 0;
    char *out = calloc(1, cap);
    assert_non_null(out);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        int n = snprintf(out + len, cap - len, "%s\n", line);
        assert_true(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* What a schema-1 store holds, written with schema-1 columns only. */
static void fill_schema_1(const char *path)
{
    sqlite3 *db = raw_open(path);
    raw_exec(db, "PRAGMA foreign_keys = ON");
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 1);
    raw_exec(
        db, "INSERT INTO clients (" CLIENT1_COLS ")"
            " VALUES ('orders', 'Orders', zeroblob(32), 'orders:read', 'https://api.example.com', 900, 0, 1700000000)");
    raw_exec(db, "INSERT INTO clients (" CLIENT1_COLS ")"
                 " VALUES ('billing', 'Billing', randomblob(32), '', '', 60, 1, 1700000001)");
    raw_exec(db, "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, public_jwk, sealed)"
                 " VALUES ('kid-1', 'ES256', 1, 10, 11, '{\"kty\":\"EC\"}', X'00010203')");
    raw_exec(db, "UPDATE meta SET value = 5 WHERE key = 'key_generation'");
    raw_exec(db, "INSERT INTO revocations (kind, value, reason, revoked_at, until)"
                 " VALUES (2, 'sid-old', 'logout', 100, 4000000000)");
    raw_exec(db,
             "INSERT INTO audit (at, kind, client_id, ip, detail) VALUES (7, 'client_created', 'orders', NULL, 'x')");
    /* A refresh token: schema 1 never wrote one, and its sub names no user
     * of the schema-2 users table (which the migration creates empty). */
    raw_exec(db, "INSERT INTO refresh_tokens (hash, sid, client_id, sub, parent, created_at, expires_at)"
                 " VALUES (zeroblob(32), 'sid-r', 'orders', 'alice', NULL, 1, 4000000000)");
    sqlite3_close(db);
}

/* Opens a filled schema-1 store with tks_open and checks that it migrated
 * in place with everything in it. */
static void check_migrated(const char *url, const char *path)
{
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open(url, &s, err, sizeof err), TKS_OK);
    assert_int_equal(tks_schema_version(s), SCHEMA_LATEST);

    /* Clients: their fields, and the defaults of the new columns. */
    tks_client c;
    assert_int_equal(tks_client_get(s, "orders", &c), TKS_OK);
    assert_string_equal(c.serves, ""); /* schema 3 */
    assert_string_equal(c.name, "Orders");
    assert_string_equal(c.scopes, "orders:read");
    assert_string_equal(c.audiences, "https://api.example.com");
    assert_int_equal(c.ttl, 900);
    assert_int_equal(c.disabled, 0);
    assert_int_equal(c.created_at, 1700000000);
    static const unsigned char zero[32];
    assert_memory_equal(c.secret_hash, zero, 32);
    assert_string_equal(c.redirect_uris, "");
    assert_int_equal(c.is_public, 0);
    assert_string_equal(c.grant_types, "client_credentials");
    assert_int_equal(tks_client_get(s, "billing", &c), TKS_OK);
    assert_int_equal(c.disabled, 1);
    assert_int_equal(c.ttl, 60);
    assert_string_equal(c.grant_types, "client_credentials");
    struct client_walk w = {.s = s};
    assert_int_equal(tks_client_list(s, walk_client, &w), TKS_OK);
    assert_int_equal(w.n, 2);
    assert_false(w.reentry_failed);

    /* Keys, key generation, revocations, audit: untouched. */
    assert_int_equal(generation(s), 5);
    struct key_walk *kw = calloc(1, sizeof *kw);
    assert_non_null(kw);
    assert_int_equal(tks_key_list(s, walk_key, kw), TKS_OK);
    assert_int_equal(kw->n, 1);
    assert_string_equal(kw->kids[0], "kid-1");
    assert_int_equal(kw->sealed_len[0], 4);
    assert_string_equal(kw->jwk[0], "{\"kty\":\"EC\"}");
    free(kw);
    struct rev_walk *rw = since(s, 0, 0);
    assert_int_equal(rw->n, 1);
    assert_string_equal(rw->r[0].value, "sid-old");
    free(rw);
    struct audit_walk *aw = audit_list(s, 10, 0);
    assert_int_equal(aw->n, 1);
    assert_string_equal(aw->kind[0], "client_created");
    free(aw);

    /* The schema-1 refresh token had no user to belong to: not carried. */
    tks_refresh rt;
    assert_int_equal(tks_refresh_get(s, zero, &rt), TKS_NOT_FOUND);

    /* The new tables work, with the migrated clients. */
    tks_user u;
    make_user(&u, "alice");
    assert_int_equal(tks_user_insert(s, &u), TKS_OK);
    tks_session se;
    make_session(&se, 1, "sid-1", "alice");
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    tks_code code, cg;
    make_code(&code, 2, "orders", "alice", "sid-1");
    assert_int_equal(tks_code_insert(s, &code), TKS_OK);
    assert_int_equal(tks_code_redeem(s, code.hash, 5, &cg), TKS_OK);
    make_refresh(&rt, 3, -1, "sid-1", "orders", "alice");
    assert_int_equal(tks_refresh_insert(s, &rt), TKS_OK);
    tks_refresh rg;
    assert_int_equal(tks_refresh_use(s, rt.hash, 5, &rg), TKS_OK);
    assert_int_equal(tks_client_delete(s, "orders"), TKS_OK);
    assert_int_equal(tks_refresh_get(s, rt.hash, &rg), TKS_NOT_FOUND);
    tks_close(s);

    /* Consistent, and reopening migrates nothing again. */
    sqlite3 *db = raw_open(path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'refresh_tokens_v1'"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'refresh_tokens_sid'"), 1);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_LATEST);
    sqlite3_close(db);
    assert_int_equal(tks_open(url, &s, err, sizeof err), TKS_OK);
    assert_int_equal(tks_schema_version(s), SCHEMA_LATEST);
    assert_int_equal(tks_client_get(s, "billing", &c), TKS_OK);
    assert_int_equal(tks_user_get(s, "alice", &u), TKS_OK);
    tks_close(s);
}

static void test_migration_1_to_2(void **state)
{
    struct fixture *f = *state;
    char err[256];

    /* A schema-1 store made by the shipped migration itself ... */
    tks_store *s1 = open_at(f->path, 1, err, sizeof err);
    if (s1 == NULL) {
        fail_msg("open_at 1: %s", err);
    }
    assert_int_equal(tks_schema_version(s1), 1);
    tks_close(s1);
    /* ... is schema 1 as it shipped. */
    char frozen[200], frozen_url[220];
    snprintf(frozen, sizeof frozen, "%s/frozen.db", f->dir);
    snprintf(frozen_url, sizeof frozen_url, "sqlite://%s", frozen);
    sqlite3 *db = raw_open(frozen);
    raw_exec(db, SCHEMA_1);
    sqlite3_close(db);
    char *a = schema_dump(f->path), *b = schema_dump(frozen);
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "table|refresh_tokens|refresh_tokens|CREATE TABLE refresh_tokens (  hash BLOB"));
    assert_null(strstr(a, "users"));
    free(a);
    free(b);

    /* Both migrate in place, keeping their data. */
    fill_schema_1(f->path);
    check_migrated(f->url, f->path);
    fill_schema_1(frozen);
    check_migrated(frozen_url, frozen);
    assert_int_equal(file_mode(f->path), 0600);
}

/* The test hook itself: a store past the target, or a target that is no
 * schema, is refused. */
static void test_open_at_refusals(void **state)
{
    struct fixture *f = *state;
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_close(f->s);
    f->s = NULL;
    assert_null(open_at(f->path, 1, err, sizeof err));
    assert_string_equal(err, "the store is at schema 6, past the 1 asked for");
    assert_null(open_at(f->path, 4, err, sizeof err));
    assert_string_equal(err, "the store is at schema 6, past the 4 asked for");
    assert_null(open_at(f->path, 0, err, sizeof err));
    assert_string_equal(err, "no schema 0 (this tokend knows 1 to 6)");
    assert_null(open_at(f->path, SCHEMA_LATEST + 1, err, sizeof err));
    tks_store *s2 = open_at(f->path, SCHEMA_LATEST, err, sizeof err);
    assert_non_null(s2);
    assert_int_equal(tks_schema_version(s2), SCHEMA_LATEST);
    tks_close(s2);
}

/* ---- schema 4 -> 5 ------------------------------------------------------- */

/* A store at schema 4, holding a client, a user, codes, a refresh token and
 * a key ring (written with schema-4 columns, as tokend left it), is
 * upgraded in place: every row reads back with the defaults of the new
 * columns, the stored codes' clients are recorded for their sessions, and
 * the per-alg key rings and the new tables work. */
static void test_migration_4_to_5(void **state)
{
    struct fixture *f = *state;
    char err[256];
    tks_store *s4 = open_at(f->path, 4, err, sizeof err);
    if (s4 == NULL) {
        fail_msg("open_at 4: %s", err);
    }
    assert_int_equal(tks_schema_version(s4), 4);
    tks_close(s4);
    sqlite3 *db = raw_open(f->path);
    raw_exec(db, "PRAGMA foreign_keys = ON");
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_table_info('clients') WHERE name = 'consent'"), 0);
    raw_exec(db, "INSERT INTO clients (" CLIENT1_COLS ", redirect_uris, is_public, grant_types, serves)"
                 " VALUES ('app', 'App', zeroblob(32), 'openid', 'https://api.example.com', 900, 0, 1700000000,"
                 " 'https://app.example.com/cb', 1, 'authorization_code refresh_token', 'https://api.example.com')");
    raw_exec(db, "INSERT INTO users (id, pwhash, created_at, name, email, email_verified)"
                 " VALUES ('alice', '" PWHASH "', 1, 'Alice', 'alice@example.com', 1)");
    /* two codes of one client and session: the nonce index takes both "" */
    raw_exec(db, "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience,"
                 " created_at, expires_at) VALUES"
                 " (X'0202020202020202020202020202020202020202020202020202020202020202', 'app', 'alice', 'sid-old',"
                 "  'https://app.example.com/cb', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'openid',"
                 "  'https://api.example.com', 1000, 4000000000),"
                 " (X'0404040404040404040404040404040404040404040404040404040404040404', 'app', 'alice', 'sid-old',"
                 "  '', '', '', '', 1000, 4000000000)");
    raw_exec(db, "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, scope, audience, created_at,"
                 " expires_at) VALUES"
                 " (X'0303030303030303030303030303030303030303030303030303030303030303', zeroblob(32), 'sid-old',"
                 "  'app', 'alice', 'openid', 'https://api.example.com', 1000, 4000000000)");
    raw_exec(db, "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, sealed) VALUES"
                 " ('es-act', 'ES256', 1, 10, 11, X'01'), ('es-nxt', 'ES256', 0, 20, 0, X'02')");
    /* schema 4: one active key in all */
    assert_int_not_equal(sqlite3_exec(db,
                                      "INSERT INTO signing_keys (kid, alg, state, created_at, sealed)"
                                      " VALUES ('rs-act', 'RS256', 1, 30, X'03')",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_store *s = f->s;
    assert_int_equal(tks_schema_version(s), SCHEMA_LATEST);
    tks_client cl;
    assert_int_equal(tks_client_get(s, "app", &cl), TKS_OK);
    assert_string_equal(cl.name, "App");
    assert_string_equal(cl.redirect_uris, "https://app.example.com/cb");
    assert_int_equal(cl.is_public, 1);
    assert_string_equal(cl.serves, "https://api.example.com");
    assert_string_equal(cl.backchannel_logout_uri, "");
    assert_string_equal(cl.id_token_alg, "");
    assert_int_equal(cl.consent, 0);
    tks_user u;
    assert_int_equal(tks_user_get(s, "alice", &u), TKS_OK);
    assert_string_equal(u.email, "alice@example.com");
    unsigned char h[32];
    memset(h, 2, sizeof h);
    tks_code code;
    assert_int_equal(tks_code_get(s, h, &code), TKS_OK);
    assert_string_equal(code.sid, "sid-old");
    assert_string_equal(code.scope, "openid");
    assert_int_equal(code.expires_at, 4000000000);
    assert_string_equal(code.nonce, "");
    assert_int_equal(code.auth_time, 0);
    assert_int_equal(tks_code_redeem(s, h, 2000, &code), TKS_OK);
    assert_string_equal(code.nonce, "");
    memset(h, 3, sizeof h);
    tks_refresh rt;
    assert_int_equal(tks_refresh_get(s, h, &rt), TKS_OK);
    assert_string_equal(rt.scope, "openid");
    assert_int_equal(rt.auth_time, 0);
    struct sid_clients *w = sid_clients(s, "sid-old");
    assert_int_equal(w->n, 1);
    assert_string_equal(w->ids[0], "app");
    free(w);

    /* Schema 5 works on it: a second ring, a nonce, a consent. */
    unsigned char sealed[1] = {3};
    tks_key_row k;
    make_key(&k, "rs-act", 30, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    snprintf(k.alg, sizeof k.alg, "RS256");
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "es-act-2", 40, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
    tks_code c;
    make_code(&c, 5, "app", "alice", "sid-new");
    snprintf(c.nonce, sizeof c.nonce, "n-1");
    c.auth_time = 1234;
    assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    make_code(&c, 6, "app", "alice", "sid-new");
    snprintf(c.nonce, sizeof c.nonce, "n-1");
    assert_int_equal(tks_code_insert(s, &c), TKS_EXISTS);
    tks_consent cs, got;
    make_consent(&cs, "alice", "app", "openid", 7);
    assert_int_equal(tks_consent_put(s, &cs), TKS_OK);
    assert_int_equal(tks_consent_get(s, "alice", "app", &got), TKS_OK);
    tks_close(s);
    f->s = NULL;

    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), SCHEMA_LATEST);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"), 0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'signing_keys_one_%'"), 2);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'signing_keys_one_active'"), 0);
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

/* ---- PostgreSQL-only -------------------------------------------------------- */

/* postgres.c records the schema version in tokend_schema, one row. */
#define PG_VERSION_GET "SELECT version FROM tokend_schema"
#define PG_VERSION_SET_999 "UPDATE tokend_schema SET version = 999"
#define PG_VERSION_ROWS "SELECT count(*) FROM tokend_schema"

/* A new store is at the latest schema, and says so in the database. */
static void test_pg_schema_version(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tks_schema_version(f->s), SCHEMA_LATEST);
    PGconn *c = pg_raw();
    assert_int_equal(pg_int(c, PG_VERSION_GET), SCHEMA_LATEST);
    PQfinish(c);
    /* Opening again migrates nothing and keeps the data. */
    tks_client cl, got;
    make_client(&cl, "kept");
    assert_int_equal(tks_client_insert(f->s, &cl), TKS_OK);
    tks_store *again = NULL;
    char err[256];
    assert_int_equal(tks_open(f->url, &again, err, sizeof err), TKS_OK);
    assert_int_equal(tks_schema_version(again), SCHEMA_LATEST);
    assert_int_equal(tks_client_get(again, "kept", &got), TKS_OK);
    tks_close(again);
}

/* A store a newer tokend migrated is refused, with a message that says so
 * (the same words as on SQLite), and left as it was. */
static void test_pg_newer_schema_refused(void **state)
{
    struct fixture *f = *state;
    tks_client cl;
    make_client(&cl, "from-the-future");
    assert_int_equal(tks_client_insert(f->s, &cl), TKS_OK);
    tks_close(f->s);
    f->s = NULL;
    PGconn *c = pg_raw();
    pg_exec(c, PG_VERSION_SET_999);
    char err[256];
    tks_store *s = NULL;
    assert_int_equal(tks_open(f->url, &s, err, sizeof err), TKS_ERR);
    assert_null(s);
    assert_string_equal(err, "the store is at schema 999; this tokend knows up to 6");
    assert_int_equal(pg_int(c, PG_VERSION_GET), 999);
    assert_int_equal(pg_int(c, "SELECT count(*) FROM clients"), 1);
    PQfinish(c);
}

/* Several processes open the same empty database at the same moment (a
 * fleet starting): all succeed, and the schema is made once (the backend
 * serialises migrations with an advisory lock). */
#define FIRST_OPENERS 4

struct first_open {
    pthread_barrier_t barrier;
    tks_result r[FIRST_OPENERS];
    int version[FIRST_OPENERS];
    char err[FIRST_OPENERS][256];
};

static void test_pg_concurrent_first_open(void **state)
{
    struct fixture *f = *state;
    struct first_open *fo = mmap(NULL, sizeof *fo, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(fo != MAP_FAILED);
    memset(fo, 0, sizeof *fo);
    pthread_barrierattr_t ba;
    assert_int_equal(pthread_barrierattr_init(&ba), 0);
    assert_int_equal(pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED), 0);
    assert_int_equal(pthread_barrier_init(&fo->barrier, &ba, FIRST_OPENERS), 0);
    pthread_barrierattr_destroy(&ba);
    fflush(NULL);
    pid_t pids[FIRST_OPENERS];
    for (int k = 0; k < FIRST_OPENERS; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            alarm(60);
            tks_store *s = NULL;
            pthread_barrier_wait(&fo->barrier);
            fo->r[k] = tks_open(f->url, &s, fo->err[k], sizeof fo->err[k]);
            fo->version[k] = tks_schema_version(s);
            /* and it works */
            char jti[32];
            snprintf(jti, sizeof jti, "first-open-%d", k);
            if (fo->r[k] == TKS_OK && tks_revoke(s, TKS_REVOKE_JTI, jti, "admin", 1, 100) != TKS_OK) {
                fo->r[k] = TKS_ERR;
                snprintf(fo->err[k], sizeof fo->err[k], "revoke: %s", tks_errmsg(s));
            }
            tks_close(s);
            _exit(0);
        }
    }
    for (int k = 0; k < FIRST_OPENERS; k++) {
        int st = 0;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    for (int k = 0; k < FIRST_OPENERS; k++) {
        if (fo->r[k] != TKS_OK) {
            fail_msg("opener %d: %d %s", k, (int)fo->r[k], fo->err[k]);
        }
        assert_int_equal(fo->version[k], SCHEMA_LATEST);
    }
    pthread_barrier_destroy(&fo->barrier);
    munmap(fo, sizeof *fo);
    char err[256];
    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    struct rev_walk *w = since(f->s, 0, 0);
    assert_int_equal(w->n, FIRST_OPENERS);
    free(w);
    PGconn *c = pg_raw();
    assert_int_equal(pg_int(c, PG_VERSION_GET), SCHEMA_LATEST);
    /* Made once: one version row, and each migration's own rows once. */
    assert_int_equal(pg_int(c, PG_VERSION_ROWS), 1);
    assert_int_equal(pg_int(c, "SELECT count(*) FROM meta"), 2); /* key_generation (1), write_probe (3) */
    PQfinish(c);
}

/* Opens url migrated no further than `target` (tksi_pg_open_at, as
 * open_at for SQLite). */
static tks_store *pg_open_at(const char *url, int target, char *err, size_t err_cap)
{
    tks_store *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->id = hook_ids++;
    if (tksi_pg_open_at(s, url, NULL, 0, target, err, err_cap) != TKS_OK) {
        free(s);
        return NULL;
    }
    return s;
}

/* The store URL in each form store.h accepts reaches the server:
 * postgres://, postgresql://, the scheme in capitals (RFC 3986 section 3.1:
 * case-insensitive, as for sqlite://), and libpq's key/value form (here over
 * the Unix socket of TOKEND_TEST_PG_ADMIN). A wrong password is TKS_ERR or
 * TKS_BUSY and never echoed, in any form. */
static void conninfo_value(const char *conninfo, const char *key, char *out, size_t cap)
{
    const char *p = strstr(conninfo, key);
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, " ");
    assert_true(n < cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* err with every occurrence of secret replaced by "***" (for our own
 * failure messages). */
static void hide(char *err, const char *secret)
{
    size_t n = strlen(secret);
    char *p;
    while (n > 0 && (p = strstr(err, secret)) != NULL) {
        memmove(p + 3, p + n, strlen(p + n) + 1);
        memcpy(p, "***", 3);
    }
}

static void test_pg_url_forms(void **state)
{
    struct fixture *f = *state;
    const char *url = f->url;
    assert_int_equal(strncmp(url, "postgres://", 11), 0);
    const char *admin = getenv("TOKEND_TEST_PG_ADMIN");
    assert_non_null(admin);
    char host[256], port[16];
    conninfo_value(admin, "host=", host, sizeof host);
    conninfo_value(admin, "port=", port, sizeof port);
    /* the password and the database of the URL */
    const char *at = strchr(url + 11, '@');
    const char *colon = strchr(url + 11, ':');
    assert_true(at != NULL && colon != NULL && colon < at);
    char password[128];
    assert_true((size_t)(at - colon - 1) < sizeof password);
    memcpy(password, colon + 1, (size_t)(at - colon - 1));
    password[at - colon - 1] = '\0';
    const char *slash = strchr(at, '/');
    assert_non_null(slash);
    char db[128];
    size_t n = strcspn(slash + 1, "?");
    assert_true(n < sizeof db);
    memcpy(db, slash + 1, n);
    db[n] = '\0';

    char problems[2048] = "";
    size_t used = 0;
    char forms[4][600];
    snprintf(forms[0], sizeof forms[0], "%s", url);
    snprintf(forms[1], sizeof forms[1], "postgresql://%s", url + 11);
    snprintf(forms[2], sizeof forms[2], "POSTGRES://%s", url + 11);
    snprintf(forms[3], sizeof forms[3], "host=%s port=%s dbname=%s user=tokend", host, port, db);
    for (int i = 0; i < 4; i++) {
        tks_store *s = NULL;
        char err[256];
        tks_result r = tks_open(forms[i], &s, err, sizeof err);
        char shown[600];
        tks_url_redact(forms[i], shown, sizeof shown);
        if (r != TKS_OK) {
            int leaked = strstr(err, password) != NULL;
            hide(err, password);
            used += (size_t)snprintf(problems + used, sizeof problems - used, "\n  %s: %d %s%s", shown, (int)r, err,
                                     leaked ? " (the message held the password)" : "");
            assert_true(used < sizeof problems);
            continue;
        }
        assert_string_equal(tks_backend_name(s), "postgres");
        assert_int_equal(tks_ping(s), TKS_OK);
        tks_client c;
        assert_int_equal(tks_client_get(s, "nobody", &c), TKS_NOT_FOUND);
        tks_close(s);
    }

    /* A wrong password: refused, never echoed. */
    char bad[4][600];
    snprintf(bad[0], sizeof bad[0], "postgres://tokend:hunter2%s", at);
    snprintf(bad[1], sizeof bad[1], "postgresql://tokend:hunter2%s", at);
    snprintf(bad[2], sizeof bad[2], "POSTGRES://tokend:hunter2%s", at);
    snprintf(bad[3], sizeof bad[3], "host=127.0.0.1 port=%s dbname=%s user=tokend password=hunter2 sslmode=disable",
             port, db);
    for (int i = 0; i < 4; i++) {
        char err[256];
        tks_store *s = NULL;
        tks_result r = tks_open(bad[i], &s, err, sizeof err);
        char shown[600];
        tks_url_redact(bad[i], shown, sizeof shown);
        if (s != NULL || (r != TKS_ERR && r != TKS_BUSY) || strstr(err, "hunter2") != NULL) {
            hide(err, "hunter2");
            used += (size_t)snprintf(problems + used, sizeof problems - used, "\n  wrong password, %s: %d %s%s", shown,
                                     (int)r, err, strstr(err, "***") ? " (the message held the password)" : "");
            assert_true(used < sizeof problems);
            tks_close(s);
        }
    }
    if (used > 0) {
        fail_msg("store URL forms:%s", problems);
    }
}

/* A store made at every earlier schema by the shipped migrations (through
 * the hook) is upgraded in place by tks_open; the hook refuses a store
 * past its target, and a target that is no schema. */
static void test_pg_upgrade_each_version(void **state)
{
    struct fixture *f = *state;
    char err[256];
    for (int v = 1; v < SCHEMA_LATEST; v++) {
        pg_reset();
        tks_store *old = pg_open_at(f->url, v, err, sizeof err);
        if (old == NULL) {
            fail_msg("open at %d: %s", v, err);
        }
        assert_int_equal(tks_schema_version(old), v);
        tks_close(old);
        PGconn *c = pg_raw();
        assert_int_equal(pg_int(c, PG_VERSION_GET), v);
        tks_store *s = NULL;
        assert_int_equal(tks_open(f->url, &s, err, sizeof err), TKS_OK);
        assert_int_equal(tks_schema_version(s), SCHEMA_LATEST);
        assert_int_equal(pg_int(c, PG_VERSION_GET), SCHEMA_LATEST);
        assert_int_equal(pg_int(c, PG_VERSION_ROWS), 1);
        PQfinish(c);
        tks_close(s);
        assert_null(pg_open_at(f->url, v, err, sizeof err));
        char want[80];
        snprintf(want, sizeof want, "the store is at schema %d, past the %d asked for", SCHEMA_LATEST, v);
        assert_string_equal(err, want);
    }
    assert_null(pg_open_at(f->url, 0, err, sizeof err));
    assert_string_equal(err, "no schema 0 (this tokend knows 1 to 6)");
    assert_null(pg_open_at(f->url, SCHEMA_LATEST + 1, err, sizeof err));
    tks_store *s = pg_open_at(f->url, SCHEMA_LATEST, err, sizeof err);
    assert_non_null(s);
    tks_close(s);
}

/* A store at schema 2, holding one of everything (written by raw SQL with
 * that schema's columns, as an older tokend left it), is upgraded in place
 * by tks_open, through every later schema, with everything in it. */
static void test_pg_upgrade_from_previous(void **state)
{
    struct fixture *f = *state;
    char err[256];
    tks_store *old = pg_open_at(f->url, 2, err, sizeof err);
    if (old == NULL) {
        fail_msg("open at %d: %s", 2, err);
    }
    tks_close(old);
    PGconn *c = pg_raw();
    /* Schema 2 has no clients.serves (schema 3 adds it). */
    assert_int_equal(pg_int(c, "SELECT count(*) FROM information_schema.columns"
                               " WHERE table_schema = current_schema() AND table_name = 'clients'"
                               " AND column_name = 'serves'"),
                     0);
    pg_exec(c, "INSERT INTO clients (id, name, secret_hash, scopes, audiences, ttl, disabled, created_at,"
               " redirect_uris, is_public, grant_types) VALUES"
               " ('app', 'App', decode(repeat('ab', 32), 'hex'), 'openid orders:read', 'https://api.example.com',"
               "  900, 0, 1700000000, 'https://app.example.com/cb', 1, 'authorization_code refresh_token'),"
               " ('billing', 'Billing', decode(repeat('00', 32), 'hex'), '', '', 60, 1, 1700000001, '', 0,"
               "  'client_credentials')");
    pg_exec(c, "INSERT INTO users (id, pwhash, disabled, created_at, password_changed_at)"
               " VALUES ('alice', '" PWHASH "', 0, 1700000000, 1700000001)");
    pg_exec(c, "INSERT INTO sessions (id_hash, sid, user_id, created_at, last_seen, ended_at)"
               " VALUES (decode(repeat('01', 32), 'hex'), 'sid-old', 'alice', 1000, 1100, 0)");
    pg_exec(c, "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience,"
               " created_at, expires_at, used_at) VALUES (decode(repeat('02', 32), 'hex'), 'app', 'alice',"
               " 'sid-old', 'https://app.example.com/cb', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',"
               " 'openid', 'https://api.example.com', 1000, 4000000000, 0)");
    pg_exec(c, "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, scope, audience, created_at,"
               " expires_at, used_at) VALUES (decode(repeat('03', 32), 'hex'), decode(repeat('00', 32), 'hex'),"
               " 'sid-old', 'app', 'alice', 'openid', 'https://api.example.com', 1000, 4000000000, 0)");
    pg_exec(c, "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, public_jwk, sealed)"
               " VALUES ('kid-1', 'ES256', 1, 10, 11, '{\"kty\":\"EC\"}', '\\x00010203')");
    pg_exec(c, "UPDATE meta SET value = 5 WHERE key = 'key_generation'");
    pg_exec(c, "INSERT INTO revocations (kind, value, reason, revoked_at, until)"
               " VALUES (2, 'sid-gone', 'logout', 100, 4000000000)");
    pg_exec(c, "INSERT INTO audit (at, kind, client_id, ip, detail) VALUES (7, 'client_created', 'app', NULL, 'x')");

    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_store *s = f->s;
    assert_int_equal(tks_schema_version(s), SCHEMA_LATEST);
    assert_int_equal(pg_int(c, PG_VERSION_GET), SCHEMA_LATEST);
    PQfinish(c);

    tks_client cl;
    assert_int_equal(tks_client_get(s, "app", &cl), TKS_OK);
    assert_string_equal(cl.name, "App");
    assert_string_equal(cl.redirect_uris, "https://app.example.com/cb");
    assert_int_equal(cl.is_public, 1);
    assert_string_equal(cl.grant_types, "authorization_code refresh_token");
    assert_string_equal(cl.serves, "");                 /* schema 3's default */
    assert_string_equal(cl.backchannel_logout_uri, ""); /* schema 5's defaults */
    assert_string_equal(cl.id_token_alg, "");
    assert_int_equal(cl.consent, 0);
    assert_int_equal(cl.ttl, 900);
    assert_int_equal(cl.secret_hash[0], 0xab);
    assert_int_equal(tks_client_get(s, "billing", &cl), TKS_OK);
    assert_int_equal(cl.disabled, 1);
    tks_user u;
    assert_int_equal(tks_user_get(s, "alice", &u), TKS_OK);
    assert_string_equal(u.email, ""); /* schema 4: no profile yet */
    assert_string_equal(u.name, "");
    assert_int_equal(u.email_verified, 0);
    assert_string_equal(u.pwhash, PWHASH);
    unsigned char h[32];
    memset(h, 1, sizeof h);
    tks_session se;
    assert_int_equal(tks_session_get(s, h, &se), TKS_OK);
    assert_string_equal(se.sid, "sid-old");
    assert_int_equal(se.last_seen, 1100);
    memset(h, 2, sizeof h);
    tks_code code;
    assert_int_equal(tks_code_redeem(s, h, 2000, &code), TKS_OK);
    assert_string_equal(code.sid, "sid-old");
    assert_string_equal(code.nonce, "");
    assert_int_equal(code.auth_time, 0);
    memset(h, 3, sizeof h);
    tks_refresh rt;
    assert_int_equal(tks_refresh_use(s, h, 2000, &rt), TKS_OK);
    assert_string_equal(rt.scope, "openid");
    assert_int_equal(rt.auth_time, 0);
    /* schema 5 recorded the stored code's client for its session */
    struct sid_clients *scw = sid_clients(s, "sid-old");
    assert_int_equal(scw->n, 1);
    assert_string_equal(scw->ids[0], "app");
    free(scw);
    assert_int_equal(generation(s), 5);
    struct key_walk *kw = calloc(1, sizeof *kw);
    assert_non_null(kw);
    assert_int_equal(tks_key_list(s, walk_key, kw), TKS_OK);
    assert_int_equal(kw->n, 1);
    assert_string_equal(kw->kids[0], "kid-1");
    assert_int_equal(kw->sealed_len[0], 4);
    assert_string_equal(kw->jwk[0], "{\"kty\":\"EC\"}");
    free(kw);
    struct rev_walk *rw = since(s, 0, 0);
    assert_int_equal(rw->n, 1);
    assert_string_equal(rw->r[0].value, "sid-gone");
    free(rw);
    /* the catch-up sees the old revocation (schema 3 gave it a txid) */
    struct changed_walk cw;
    memset(&cw, 0, sizeof cw);
    int64_t cursor = 0;
    assert_int_equal(tks_revocations_changed(s, &cursor, 0, walk_changed, &cw), TKS_OK);
    assert_true(changed_has(&cw, "sid-gone", 4000000000));
    struct audit_walk *aw = audit_list(s, 10, 0);
    assert_int_equal(aw->n, 1);
    assert_string_equal(aw->kind[0], "client_created");
    free(aw);
    /* and schema 3 works on it */
    make_client(&cl, "after-upgrade");
    snprintf(cl.serves, sizeof cl.serves, "https://api.example.com");
    assert_int_equal(tks_client_insert(s, &cl), TKS_OK);
    tks_client got;
    assert_int_equal(tks_client_get(s, "after-upgrade", &got), TKS_OK);
    assert_string_equal(got.serves, "https://api.example.com");
    assert_int_equal(tks_probe_write(s, 9), TKS_OK);
}

/* A store at schema 4 with a key ring, a client and codes (raw SQL with
 * schema-4 columns) is upgraded to 5: the rows read back with the new
 * columns' defaults, the key rings become per alg, the stored codes'
 * clients are recorded for their sessions. */
static void test_pg_upgrade_from_4(void **state)
{
    struct fixture *f = *state;
    char err[256];
    tks_store *old = pg_open_at(f->url, 4, err, sizeof err);
    if (old == NULL) {
        fail_msg("open at 4: %s", err);
    }
    tks_close(old);
    PGconn *c = pg_raw();
    assert_int_equal(pg_int(c, PG_VERSION_GET), 4);
    pg_exec(c, "INSERT INTO clients (id, name, secret_hash, scopes, audiences, ttl, disabled, created_at,"
               " redirect_uris, is_public, grant_types, serves) VALUES"
               " ('app', 'App', decode(repeat('ab', 32), 'hex'), 'openid', 'https://api.example.com',"
               "  900, 0, 1700000000, 'https://app.example.com/cb', 1, 'authorization_code', 'https://x')");
    pg_exec(c, "INSERT INTO users (id, pwhash, name, email, email_verified)"
               " VALUES ('alice', '" PWHASH "', 'Alice', 'alice@example.com', 1)");
    pg_exec(c,
            "INSERT INTO codes (hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience,"
            " created_at, expires_at) VALUES"
            " (decode(repeat('02', 32), 'hex'), 'app', 'alice', 'sid-old', 'https://app.example.com/cb',"
            "  'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'openid', 'https://api.example.com', 1000, 4000000000),"
            " (decode(repeat('04', 32), 'hex'), 'app', 'alice', 'sid-old', '', '', '', '', 1000, 4000000000)");
    pg_exec(c, "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, scope, audience, created_at,"
               " expires_at) VALUES (decode(repeat('03', 32), 'hex'), decode(repeat('00', 32), 'hex'),"
               " 'sid-old', 'app', 'alice', 'openid', 'https://api.example.com', 1000, 4000000000)");
    pg_exec(c, "INSERT INTO signing_keys (kid, alg, state, created_at, activated_at, sealed) VALUES"
               " ('es-act', 'ES256', 1, 10, 11, '\\x01'), ('es-nxt', 'ES256', 0, 20, 0, '\\x02')");
    PGresult *res = PQexec(c, "INSERT INTO signing_keys (kid, alg, state, created_at, sealed)"
                              " VALUES ('rs-act', 'RS256', 1, 30, '\\x03')");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR); /* schema 4: one active key in all */
    PQclear(res);

    assert_int_equal(tks_open(f->url, &f->s, err, sizeof err), TKS_OK);
    tks_store *s = f->s;
    assert_int_equal(tks_schema_version(s), SCHEMA_LATEST);
    assert_int_equal(pg_int(c, PG_VERSION_GET), SCHEMA_LATEST);
    assert_int_equal(pg_int(c, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'signing_keys_one_%'"), 2);
    assert_int_equal(pg_int(c, "SELECT count(*) FROM pg_indexes WHERE indexname = 'signing_keys_one_active'"), 0);
    PQfinish(c);
    tks_client cl;
    assert_int_equal(tks_client_get(s, "app", &cl), TKS_OK);
    assert_string_equal(cl.name, "App");
    assert_string_equal(cl.serves, "https://x");
    assert_string_equal(cl.backchannel_logout_uri, "");
    assert_string_equal(cl.id_token_alg, "");
    assert_int_equal(cl.consent, 0);
    tks_user u;
    assert_int_equal(tks_user_get(s, "alice", &u), TKS_OK);
    assert_string_equal(u.email, "alice@example.com");
    unsigned char h[32];
    memset(h, 2, sizeof h);
    tks_code code;
    assert_int_equal(tks_code_get(s, h, &code), TKS_OK);
    assert_string_equal(code.sid, "sid-old");
    assert_string_equal(code.scope, "openid");
    assert_string_equal(code.nonce, "");
    assert_int_equal(code.auth_time, 0);
    assert_int_equal(tks_code_redeem(s, h, 2000, &code), TKS_OK);
    memset(h, 3, sizeof h);
    tks_refresh rt;
    assert_int_equal(tks_refresh_get(s, h, &rt), TKS_OK);
    assert_int_equal(rt.auth_time, 0);
    struct sid_clients *w = sid_clients(s, "sid-old");
    assert_int_equal(w->n, 1);
    assert_string_equal(w->ids[0], "app");
    free(w);

    unsigned char sealed[1] = {3};
    tks_key_row k;
    make_key(&k, "rs-act", 30, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    snprintf(k.alg, sizeof k.alg, "RS256");
    assert_int_equal(tks_key_insert(s, &k), TKS_OK);
    make_key(&k, "es-act-2", 40, TKS_KEY_ACTIVE, sealed, sizeof sealed, NULL);
    assert_int_equal(tks_key_insert(s, &k), TKS_EXISTS);
    tks_code nc;
    make_code(&nc, 5, "app", "alice", "sid-new");
    snprintf(nc.nonce, sizeof nc.nonce, "n-1");
    assert_int_equal(tks_code_insert(s, &nc), TKS_OK);
    make_code(&nc, 6, "app", "alice", "sid-new");
    snprintf(nc.nonce, sizeof nc.nonce, "n-1");
    assert_int_equal(tks_code_insert(s, &nc), TKS_EXISTS);
    tks_consent cs, got;
    make_consent(&cs, "alice", "app", "openid", 7);
    assert_int_equal(tks_consent_put(s, &cs), TKS_OK);
    assert_int_equal(tks_consent_get(s, "alice", "app", &got), TKS_OK);
}

/* ---- retention: batched purges (issue 13 section 3) ------------------------------ */

static int count_audit(int64_t at, const char *kind, const char *client_id, const char *ip, const char *detail,
                       void *ud)
{
    (void)at;
    (void)kind;
    (void)client_id;
    (void)ip;
    (void)detail;
    (*(int *)ud)++;
    return 0;
}

static int audit_rows(tks_store *s)
{
    int n = 0;
    assert_int_equal(tks_audit_list(s, 100000, count_audit, &n), TKS_OK);
    return n;
}

static int sid_client_count(tks_store *s, const char *sid)
{
    struct sid_clients *w = sid_clients(s, sid);
    int n = w->n;
    free(w);
    return n;
}

static size_t purge(tks_store *s, tks_purge_kind kind, int64_t from, int64_t before, size_t limit)
{
    tks_purge p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.from = from;
    p.before = before;
    p.window = 300;
    p.idle = 600;
    p.max_age = 43200;
    size_t n = 12345;
    assert_int_equal(tks_purge_batch(s, &p, limit, &n), TKS_OK);
    return n;
}

static void test_purge_arguments(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    tks_purge p;
    memset(&p, 0, sizeof p);
    p.kind = TKS_PURGE_AUDIT;
    p.before = 100;
    size_t n = 7;
    assert_int_equal(tks_purge_batch(NULL, &p, 10, &n), TKS_ERR);
    assert_int_equal(n, 0);
    assert_int_equal(tks_purge_batch(s, NULL, 10, &n), TKS_ERR);
    assert_int_equal(tks_purge_batch(s, &p, 10, NULL), TKS_ERR);
    assert_int_equal(tks_purge_batch(s, &p, 0, &n), TKS_ERR);
    assert_int_equal(tks_purge_batch(s, &p, TKS_PURGE_LIMIT_MAX + 1, &n), TKS_ERR);
    assert_int_equal(tks_purge_batch(s, &p, TKS_PURGE_LIMIT_MAX, &n), TKS_OK);
    p.kind = (tks_purge_kind)0;
    assert_int_equal(tks_purge_batch(s, &p, 10, &n), TKS_ERR);
    p.kind = (tks_purge_kind)(TKS_PURGE_SESSIONS + 1);
    assert_int_equal(tks_purge_batch(s, &p, 10, &n), TKS_ERR);
    p.kind = TKS_PURGE_SESSIONS;
    p.before = INT64_MAX; /* before - idle must not overflow */
    assert_int_equal(tks_purge_batch(s, &p, 10, &n), TKS_ERR);
    p.before = 100;
    p.idle = -1;
    assert_int_equal(tks_purge_batch(s, &p, 10, &n), TKS_ERR);
    p.idle = 600;
    assert_int_equal(tks_purge_batch(s, &p, 10, &n), TKS_OK);
    assert_int_equal(n, 0);
    /* every kind runs on an empty store */
    for (int k = TKS_PURGE_REVOCATIONS; k <= TKS_PURGE_SESSIONS; k++) {
        assert_int_equal(purge(s, (tks_purge_kind)k, 0, 1000, 5), 0);
    }
}

/* Audit events older than the retention go, a batch at a time; the
 * young ones stay. */
static void test_purge_audit_batches(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    for (int i = 1; i <= 25; i++) {
        assert_int_equal(tks_audit(s, i, "login_failed", NULL, "192.0.2.1", "old"), TKS_OK);
    }
    for (int i = 0; i < 5; i++) {
        assert_int_equal(tks_audit(s, 1000 + i, "login", NULL, "192.0.2.1", "young"), TKS_OK);
    }
    assert_int_equal(audit_rows(s), 30);
    assert_int_equal(purge(s, TKS_PURGE_AUDIT, 0, 26, 10), 10);
    assert_int_equal(audit_rows(s), 20);
    assert_int_equal(purge(s, TKS_PURGE_AUDIT, 0, 26, 10), 10);
    assert_int_equal(purge(s, TKS_PURGE_AUDIT, 0, 26, 10), 5); /* fewer than asked: done */
    assert_int_equal(purge(s, TKS_PURGE_AUDIT, 0, 26, 10), 0);
    assert_int_equal(audit_rows(s), 5);
    /* at < before, strictly */
    assert_int_equal(purge(s, TKS_PURGE_AUDIT, 0, 1000, 10), 0);
    assert_int_equal(purge(s, TKS_PURGE_AUDIT, 0, 1001, 10), 1);
    assert_int_equal(audit_rows(s), 4);
}

/* Codes, revocations and attempt counters: what expired goes. */
static void test_purge_codes_revocations_attempts(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    for (int i = 0; i < 7; i++) {
        tks_code c;
        make_code(&c, 100 + i, "app", "alice", "sid-c");
        c.expires_at = i < 5 ? 1060 : 5000;
        assert_int_equal(tks_code_insert(s, &c), TKS_OK);
    }
    assert_int_equal(purge(s, TKS_PURGE_CODES, 0, 1060, 10), 0); /* expires_at < before */
    assert_int_equal(purge(s, TKS_PURGE_CODES, 0, 1061, 3), 3);
    assert_int_equal(purge(s, TKS_PURGE_CODES, 0, 1061, 3), 2);
    assert_int_equal(purge(s, TKS_PURGE_CODES, 0, 1061, 3), 0);
    tks_code got;
    unsigned char h[32];
    fill_hash(h, 105);
    assert_int_equal(tks_code_get(s, h, &got), TKS_OK);

    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "j-1", "admin", 100, 2000), TKS_OK);
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "s-1", "logout", 100, 2000), TKS_OK);
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "j-2", "admin", 100, 3000), TKS_OK);
    assert_int_equal(purge(s, TKS_PURGE_REVOCATIONS, 0, 1999, 10), 0);
    assert_int_equal(purge(s, TKS_PURGE_REVOCATIONS, 0, 2000, 10), 2); /* until <= before */
    assert_int_equal(purge(s, TKS_PURGE_REVOCATIONS, 0, 5000, 10), 1);

    uint64_t keys[3] = {11, 12, 13};
    uint32_t f[3];
    assert_int_equal(tks_attempts_fail(s, keys, 3, NULL, 1000, 300, f), TKS_OK);
    int64_t until[1] = {2000};
    assert_int_equal(tks_attempts_block(s, keys, 1, until), TKS_OK); /* key 11 blocks until 2000 */
    assert_int_equal(purge(s, TKS_PURGE_ATTEMPTS, 0, 1299, 10), 0);  /* window 300 not over */
    assert_int_equal(purge(s, TKS_PURGE_ATTEMPTS, 0, 1300, 10), 2);
    assert_int_equal(purge(s, TKS_PURGE_ATTEMPTS, 0, 2000, 10), 1);
}

/* Refresh tokens: an expired family goes after the grace the caller puts
 * in `before`; a revoked family goes whole, used and unused tokens alike;
 * a live family keeps every row (reuse detection needs the used ones).
 * The clients of a sign-in go with the last of its session and tokens. */
static void test_purge_refresh_families(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    /* sid-a: no session row, three rotations, expires at 5000 */
    for (int i = 0; i < 3; i++) {
        tks_refresh r;
        make_refresh(&r, 10 + i, i ? 9 + i : -1, "sid-a", "app", "alice");
        r.expires_at = 5000;
        r.used_at = i < 2 ? 1100 + i : 0;
        assert_int_equal(tks_refresh_insert(s, &r), TKS_OK);
    }
    /* sid-b: a session, two tokens, revoked at 2000 */
    tks_session se;
    make_session(&se, 1, "sid-b", "bob");
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    for (int i = 0; i < 2; i++) {
        tks_refresh r;
        make_refresh(&r, 20 + i, i ? 19 + i : -1, "sid-b", "app", "bob");
        r.expires_at = 90000;
        assert_int_equal(tks_refresh_insert(s, &r), TKS_OK);
    }
    /* sid-c: alive, not revoked; a jti revocation that happens to read
     * "sid-c" is not a family's */
    tks_refresh rc;
    make_refresh(&rc, 30, -1, "sid-c", "app", "alice");
    rc.expires_at = 90000;
    assert_int_equal(tks_refresh_insert(s, &rc), TKS_OK);
    assert_int_equal(tks_revoke(s, TKS_REVOKE_JTI, "sid-c", "admin", 2000, 90000), TKS_OK);
    /* each sign-in had a code: its clients are recorded */
    const char *sids[] = {"sid-a", "sid-b", "sid-c"};
    for (int i = 0; i < 3; i++) {
        tks_code c;
        make_code(&c, 200 + i, "app", "alice", sids[i]);
        assert_int_equal(tks_code_insert(s, &c), TKS_OK);
        assert_int_equal(sid_client_count(s, sids[i]), 1);
    }
    assert_int_equal(tks_revoke(s, TKS_REVOKE_SID, "sid-b", "logout", 2000, 90000), TKS_OK);

    /* expired: expires_at < before */
    assert_int_equal(purge(s, TKS_PURGE_REFRESH, 0, 5000, 10), 0);
    assert_int_equal(purge(s, TKS_PURGE_REFRESH, 0, 5001, 2), 2);
    assert_int_equal(sid_client_count(s, "sid-a"), 1); /* a token of sid-a is left */
    assert_int_equal(purge(s, TKS_PURGE_REFRESH, 0, 5001, 2), 1);
    assert_int_equal(sid_client_count(s, "sid-a"), 0); /* no session, no token: gone */
    tks_refresh got;
    unsigned char h[32];
    fill_hash(h, 12);
    assert_int_equal(tks_refresh_get(s, h, &got), TKS_NOT_FOUND);

    /* revoked: revoked_at in [from, before) */
    assert_int_equal(purge(s, TKS_PURGE_REFRESH_REVOKED, 0, 2000, 10), 0);
    assert_int_equal(purge(s, TKS_PURGE_REFRESH_REVOKED, 2001, 3000, 10), 0);
    assert_int_equal(purge(s, TKS_PURGE_REFRESH_REVOKED, 0, 2001, 10), 2);
    fill_hash(h, 20);
    assert_int_equal(tks_refresh_get(s, h, &got), TKS_NOT_FOUND);
    assert_int_equal(sid_client_count(s, "sid-b"), 1); /* its session is still there */
    assert_int_equal(purge(s, TKS_PURGE_REFRESH_REVOKED, 0, 2001, 10), 0);

    /* the live family is untouched */
    assert_int_equal(tks_refresh_get(s, rc.hash, &got), TKS_OK);
    assert_int_equal(sid_client_count(s, "sid-c"), 1);

    /* the session goes (ended at 2000, before 2050): its clients with it */
    assert_int_equal(tks_session_end(s, "sid-b", 2000), TKS_OK);
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 2050, 10), 1);
    assert_int_equal(sid_client_count(s, "sid-b"), 0);
}

/* Sessions: ended (explicitly, by the idle timeout or by the absolute
 * one) before `before`; a session whose sign-in still has refresh tokens
 * goes too, but keeps its clients until the tokens go. */
static void test_purge_sessions(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_session se, got;
    make_session(&se, 1, "s1", "alice"); /* seen at 1900, logged out at 2000 */
    se.last_seen = 1900;
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    assert_int_equal(tks_session_end(s, "s1", 2000), TKS_OK);
    make_session(&se, 2, "s2", "alice"); /* last seen 1500: idle (600) at 2100 */
    se.last_seen = 1500;
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    make_session(&se, 3, "s3", "bob"); /* seen at 43900: ends at start + 43200 = 44200 */
    se.last_seen = 43900;
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    make_session(&se, 4, "s4", "bob"); /* started 3000, logged out at 3500 */
    se.created_at = 3000;
    se.last_seen = 3000;
    assert_int_equal(tks_session_insert(s, &se), TKS_OK);
    assert_int_equal(tks_session_end(s, "s4", 3500), TKS_OK);
    /* s3's sign-in has a refresh token and a client */
    tks_refresh r;
    make_refresh(&r, 50, -1, "s3", "app", "bob");
    r.expires_at = 90000;
    assert_int_equal(tks_refresh_insert(s, &r), TKS_OK);
    tks_code c;
    make_code(&c, 60, "app", "bob", "s3");
    assert_int_equal(tks_code_insert(s, &c), TKS_OK);

    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 2000, 10), 0);
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 2050, 10), 1); /* s1 */
    assert_int_equal(tks_session_get_sid(s, "s1", &got), TKS_NOT_FOUND);
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 2100, 10), 0); /* s2 idle until 2100 */
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 2101, 10), 1);
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 44000, 10), 1); /* s4 */
    assert_int_equal(tks_session_get_sid(s, "s3", &got), TKS_OK);
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 44201, 10), 1); /* s3: 1000 + 43200 */
    assert_int_equal(tks_session_get_sid(s, "s3", &got), TKS_NOT_FOUND);
    assert_int_equal(sid_client_count(s, "s3"), 1); /* its refresh token lives on */
    assert_int_equal(purge(s, TKS_PURGE_REFRESH, 0, 90001, 10), 1);
    assert_int_equal(sid_client_count(s, "s3"), 0);
    assert_int_equal(purge(s, TKS_PURGE_SESSIONS, 0, 1000000, 10), 0);
    /* consents go with their user (a foreign key), not by retention */
    tks_consent cs;
    make_consent(&cs, "alice", "app", "openid", 7);
    assert_int_equal(tks_consent_put(s, &cs), TKS_OK);
    assert_int_equal(tks_user_delete(s, "alice"), TKS_OK);
    assert_int_equal(tks_consent_get(s, "alice", "app", &cs), TKS_NOT_FOUND);
}

/* A purge is a write: an injected fault fails the batch and deletes nothing. */
static void test_purge_fault(void **state)
{
    tks_store *s = ((struct fixture *)*state)->s;
    signin_base(s);
    tks_refresh r;
    make_refresh(&r, 70, -1, "sid-f", "app", "alice");
    r.expires_at = 5000;
    assert_int_equal(tks_refresh_insert(s, &r), TKS_OK);
    tks_purge p;
    memset(&p, 0, sizeof p);
    p.kind = TKS_PURGE_REFRESH;
    p.before = 6000;
    for (int64_t nth = 0; nth < 3; nth++) {
        tks_fault_arm(s, nth, 0);
        size_t n = 9;
        tks_result res = tks_purge_batch(s, &p, 10, &n);
        int64_t seen = tks_fault_points(s);
        tks_fault_disarm(s);
        if (nth >= seen) {
            break; /* past the last write point: that run succeeded */
        }
        assert_int_equal(res, TKS_ERR);
        assert_int_equal(n, 0);
        tks_refresh got;
        assert_int_equal(tks_refresh_get(s, r.hash, &got), TKS_OK);
    }
    (void)purge(s, TKS_PURGE_REFRESH, 0, 6000, 10);
    tks_refresh got;
    assert_int_equal(tks_refresh_get(s, r.hash, &got), TKS_NOT_FOUND);
}

/* Each contract test on every backend, named so a failure says which. A
 * PostgreSQL variant carries its body in its fixture (pg_run skips it when
 * no server is given); the compound literals live as long as main. */
/* clang-format off */
#define ON_MEMORY(t) {#t " (memory)", t, store_setup, store_teardown, &MEMORY}
#define ON_FILE(t) {#t " (file)", t, store_setup, store_teardown, &ONFILE}
#define ON_PG(t) {#t " (pg)", pg_run, store_setup, store_teardown, &(struct fixture){.on_pg = 1, .fn = t}}
#define ON_PG_EMPTY(t) {#t " (pg)", pg_run, pg_empty_setup, pg_empty_teardown, &(struct fixture){.on_pg = 1, .fn = t}}
/* clang-format on */
#define ALL(t) ON_MEMORY(t), ON_FILE(t), ON_PG(t)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_schemes),
        cmocka_unit_test(test_key_row_clear),
        ALL(test_open_basics),
        ALL(test_clients_crud),
        ALL(test_client_limits),
        ALL(test_client_list),
        ALL(test_client_list_delete_during),
        ALL(test_keys),
        ALL(test_key_list_paging),
        ALL(test_key_limits),
        ALL(test_revocations),
        ALL(test_revocation_paging),
        ALL(test_revocation_limits),
        ALL(test_revoke_batch),
        ALL(test_revoke_batch_all_or_none),
        ALL(test_audit),
        ALL(test_errmsg_per_thread),
        ALL(test_client_signin_fields),
        ALL(test_users_crud),
        ALL(test_user_list),
        ALL(test_sessions),
        ALL(test_codes),
        ALL(test_refresh_tokens),
        ALL(test_cascades),
        ALL(test_single_use_race),
        ALL(test_grant_writes_are_one_transaction),
        ALL(test_revocations_changed),
        ALL(test_key_rotate),
        ALL(test_attempts),
        ALL(test_attempts_live),
        ALL(test_key_rings_per_alg),
        ALL(test_client_oidc_fields),
        ALL(test_code_nonce),
        ALL(test_session_clients),
        ALL(test_code_insert_is_one_transaction),
        ALL(test_refresh_auth_time),
        ALL(test_session_get_sid),
        ALL(test_consents),
        ALL(test_purge_arguments),
        ALL(test_purge_audit_batches),
        ALL(test_purge_codes_revocations_attempts),
        ALL(test_purge_refresh_families),
        ALL(test_purge_sessions),
        ALL(test_purge_fault),
#undef ALL
        /* several connections and processes: a file and PostgreSQL */
        ON_FILE(test_single_use_race_processes),
        ON_PG(test_single_use_race_processes),
        ON_FILE(test_concurrent_shared_store),
        ON_PG(test_concurrent_shared_store),
        cmocka_unit_test_setup_teardown(test_concurrent_connections, dir_setup, dir_teardown),
        ON_PG_EMPTY(test_concurrent_connections),
        /* SQLite only */
        cmocka_unit_test_setup_teardown(test_file_mode_wal_reopen, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_existing_file_mode_kept, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_relative_path, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_open_failures, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_overlong_stored_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_overlong_stored_values_2, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_schema_constraints, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_migration_1_to_2, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_open_at_refusals, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_migration_4_to_5, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_busy_waits, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_busy_gives_tks_busy, dir_setup, dir_teardown),
        /* PostgreSQL only */
        ON_PG(test_pg_url_forms),
        ON_PG(test_pg_schema_version),
        ON_PG(test_pg_newer_schema_refused),
        ON_PG_EMPTY(test_pg_concurrent_first_open),
        ON_PG_EMPTY(test_pg_upgrade_each_version),
        ON_PG_EMPTY(test_pg_upgrade_from_previous),
        ON_PG_EMPTY(test_pg_upgrade_from_4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
