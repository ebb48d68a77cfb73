/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgtest.h — unit tests on PostgreSQL (issue 9; tests/pg/README.md).
 *
 * Under tests/pg/with_postgres.sh, TOKEND_TEST_PG_URL names a database of a
 * throwaway server whose public schema the store's role owns. A test that
 * wants a fresh, empty store there drops and re-creates that schema first:
 * everything a store made goes with it. Header-only (static inline), for
 * test_store.c, test_faults.c and test_flow.c.
 */
#ifndef TOKEND_TESTS_PGTEST_H
#define TOKEND_TESTS_PGTEST_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>

/* The database to test on, or NULL: not under with_postgres.sh. */
static inline const char *tkt_pg_url(void)
{
    const char *u = getenv("TOKEND_TEST_PG_URL");
    return u != NULL && u[0] != '\0' ? u : NULL;
}

/* Drops and re-creates the public schema of `url`'s database. A lock held
 * by a connection a failed test left open fails it after 10 s instead of
 * hanging. 0, or -1 with why in err. */
static inline int tkt_pg_reset(const char *url, char *err, size_t err_cap)
{
    int rc = -1;
    PGresult *r = NULL;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, err_cap, "connecting to TOKEND_TEST_PG_URL: %s", PQerrorMessage(c));
        goto out;
    }
    r = PQexec(c, "SET client_min_messages = warning; SET lock_timeout = '10s';"
                  " DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, err_cap, "resetting the public schema: %s", PQresultErrorMessage(r));
        goto out;
    }
    rc = 0;
out:
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* The store URL of a test: a freshly emptied PostgreSQL database under
 * with_postgres.sh, else `sqlite_url`. Written to out; 0, or -1 with why in
 * err. */
static inline int tkt_store_url(char *out, size_t out_cap, const char *sqlite_url, char *err, size_t err_cap)
{
    const char *pg = tkt_pg_url();
    if (pg == NULL) {
        snprintf(out, out_cap, "%s", sqlite_url);
        return 0;
    }
    if (tkt_pg_reset(pg, err, err_cap) != 0) {
        return -1;
    }
    snprintf(out, out_cap, "%s", pg);
    return 0;
}

#endif
