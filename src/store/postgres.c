/* SPDX-License-Identifier: Apache-2.0 */
/*
 * postgres.c — the PostgreSQL store backend (store.h, backend.h): one
 * database shared by several `tokend serve` instances ("postgres://...",
 * "postgresql://...", or libpq's key/value form "host=... dbname=...").
 *
 * Invariants:
 *  - A pool of connections (tksi_pg_open: `pool` of them, made on demand),
 *    each used by one operation at a time for the whole operation, so a
 *    multi-statement transaction runs on one connection. An operation that
 *    finds every connection busy waits up to POOL_WAIT_MS, then answers
 *    TKS_BUSY (503), never blocks for ever.
 *  - Every SQL text is a constant in SQL[] or MIGRATIONS[]; values are only
 *    ever bound as parameters. Statements are prepared per connection on
 *    first use. Results are read in binary: integers are BIGINT (8 bytes,
 *    network order), byte strings BYTEA, text TEXT.
 *  - Each session sets statement_timeout (STATEMENT_TIMEOUT_MS, 5 s): a stuck
 *    statement ends as TKS_BUSY instead of holding a server thread.
 *  - A connection that failed (server restarted, network cut) is dropped
 *    and made again by the next operation that needs one: recovery needs no
 *    restart. Lost connections, timeouts, serialization failures and "the
 *    database is starting up" are TKS_BUSY (retry, 503); a unique violation
 *    is TKS_EXISTS; a foreign-key violation TKS_NOT_FOUND (as SQLite).
 *  - Text keys (client ids, kids, user ids) are COLLATE "C": listings page
 *    bytewise, as the contract (backend.h) and SQLite do.
 *  - The schema is versioned in tokend_schema(version); MIGRATIONS[i] takes
 *    it from i to i + 1. All of it runs in one transaction under a
 *    transaction-level advisory lock, so instances starting together
 *    migrate once; a store newer than this binary is refused.
 *  - Single-use rows (codes, refresh tokens) are spent by UPDATE ... WHERE
 *    used_at = 0: under READ COMMITTED a concurrent second UPDATE waits for
 *    the first to commit and then finds the row used, so exactly one of N
 *    callers, on any connections of any processes, wins.
 *  - Revocations carry the id of the transaction that wrote them (xid8).
 *    Sequences are not assigned in commit order, so the catch-up
 *    (revocation_changes) does not page by seq alone: its position is the
 *    oldest transaction still running when it looked (pg_snapshot_xmin),
 *    and it returns every row written by that transaction or later. A row
 *    committed later always has a transaction id at or above that.
 *  - Every revocation, key change, client change and block of a guesser
 *    also sends NOTIFY tokend_changes ('r', 'k', 'c', 'b'; delivered at
 *    commit); tks_watch's thread LISTENs on a connection of its own and
 *    calls back, so other instances catch up in milliseconds.
 *  - Every write (each statement that changes rows, BEGIN and COMMIT) is a
 *    fault-injection write point (store.h), as in sqlite.c.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "store/backend.h"

#define POOL_DEFAULT 8
#define POOL_MAX 256
#define POOL_WAIT_MS 5000
/* milliseconds, as text for SET (a constant: nothing is formatted into SQL) */
#define STATEMENT_TIMEOUT_MS "5000"
#define IDLE_IN_TX_TIMEOUT_MS "10000"
#define CONNECT_TIMEOUT_S "5"
/* pg_advisory_xact_lock key of schema migrations: "tokend" in ASCII */
#define MIGRATION_LOCK "116111107101110100"
#define CHANNEL "tokend_changes"

/* ---- schema -------------------------------------------------------------- */

/* MIGRATIONS[i] moves the schema from version i to i + 1, as sqlite.c's do:
 * the same tables, columns and meaning, in PostgreSQL's words. Append only. */
static const char *const MIGRATIONS[] = {
    /* 1: the first schema. */
    "CREATE TABLE clients ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  secret_hash BYTEA NOT NULL CHECK (length(secret_hash) = 32),"
    "  scopes TEXT NOT NULL,"
    "  audiences TEXT NOT NULL,"
    "  ttl BIGINT NOT NULL,"
    "  disabled BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    "  created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE signing_keys ("
    "  kid TEXT COLLATE \"C\" PRIMARY KEY,"
    "  alg TEXT NOT NULL,"
    "  state BIGINT NOT NULL CHECK (state IN (0, 1, 2)),"
    "  created_at BIGINT NOT NULL,"
    "  activated_at BIGINT NOT NULL DEFAULT 0,"
    "  retired_at BIGINT NOT NULL DEFAULT 0,"
    "  verify_until BIGINT NOT NULL DEFAULT 0,"
    "  public_jwk TEXT,"
    "  sealed BYTEA NOT NULL"
    ");"
    "CREATE TABLE revocations ("
    "  seq BIGSERIAL PRIMARY KEY,"
    "  kind BIGINT NOT NULL CHECK (kind IN (1, 2)),"
    "  value TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  revoked_at BIGINT NOT NULL,"
    "  until BIGINT NOT NULL,"
    "  UNIQUE (kind, value)"
    ");"
    "CREATE INDEX revocations_until ON revocations (until);"
    "CREATE TABLE refresh_tokens ("
    "  hash BYTEA PRIMARY KEY,"
    "  sid TEXT NOT NULL,"
    "  client_id TEXT COLLATE \"C\" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  sub TEXT,"
    "  parent BYTEA,"
    "  created_at BIGINT NOT NULL,"
    "  used_at BIGINT NOT NULL DEFAULT 0,"
    "  expires_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);"
    "CREATE TABLE audit ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  at BIGINT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  client_id TEXT,"
    "  ip TEXT,"
    "  detail TEXT"
    ");"
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value BIGINT NOT NULL"
    ");"
    "INSERT INTO meta (key, value) VALUES ('key_generation', 0);",

    /* 2: user sign-in. refresh_tokens is rebuilt, as in sqlite.c: schema 1
     * never wrote refresh tokens; rows that fit the new table are kept. */
    "ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN is_public BIGINT NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1));"
    "ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT 'client_credentials';"
    "CREATE TABLE users ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  pwhash TEXT NOT NULL,"
    "  disabled BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    "  created_at BIGINT NOT NULL DEFAULT 0,"
    "  password_changed_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE sessions ("
    "  id_hash BYTEA PRIMARY KEY CHECK (length(id_hash) = 32),"
    "  sid TEXT UNIQUE NOT NULL,"
    "  user_id TEXT COLLATE \"C\" NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  created_at BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL,"
    "  ended_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX sessions_user ON sessions (user_id);"
    "CREATE TABLE codes ("
    "  hash BYTEA PRIMARY KEY CHECK (length(hash) = 32),"
    "  client_id TEXT COLLATE \"C\" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  user_id TEXT COLLATE \"C\" NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  sid TEXT NOT NULL,"
    "  redirect_uri TEXT NOT NULL,"
    "  challenge TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  audience TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  used_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX codes_client ON codes (client_id);"
    "CREATE INDEX codes_user ON codes (user_id);"
    "CREATE INDEX codes_expires ON codes (expires_at);"
    "ALTER TABLE refresh_tokens RENAME TO refresh_tokens_v1;"
    "DROP INDEX refresh_tokens_sid;"
    "CREATE TABLE refresh_tokens ("
    "  hash BYTEA PRIMARY KEY CHECK (length(hash) = 32),"
    "  parent BYTEA NOT NULL CHECK (length(parent) = 32),"
    "  sid TEXT NOT NULL,"
    "  client_id TEXT COLLATE \"C\" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  user_id TEXT COLLATE \"C\" NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  scope TEXT NOT NULL DEFAULT '',"
    "  audience TEXT NOT NULL DEFAULT '',"
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  used_at BIGINT NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, created_at, expires_at, used_at)"
    "  SELECT hash,"
    "    CASE WHEN length(parent) = 32 THEN parent ELSE decode(repeat('00', 32), 'hex') END,"
    "    sid, client_id, sub, created_at, expires_at, used_at"
    "  FROM refresh_tokens_v1"
    "  WHERE length(hash) = 32"
    "    AND sub IN (SELECT id FROM users) AND client_id IN (SELECT id FROM clients);"
    "DROP TABLE refresh_tokens_v1;"
    "CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);"
    "CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);"
    "CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);"
    "CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);",

    /* 3: as sqlite.c's 3 (introspection rights, the readiness probe, one
     * active and one next key, shared failed-attempt counters), plus the
     * transaction id of each revocation for the catch-up. */
    "ALTER TABLE clients ADD COLUMN serves TEXT NOT NULL DEFAULT '';"
    "INSERT INTO meta (key, value) VALUES ('write_probe', 0);"
    "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 1;"
    "CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 0;"
    "CREATE TABLE attempts ("
    "  key BIGINT PRIMARY KEY,"
    "  window_start BIGINT NOT NULL,"
    "  failures BIGINT NOT NULL,"
    "  blocked_until BIGINT NOT NULL DEFAULT 0"
    ");"
    "ALTER TABLE revocations ADD COLUMN txid XID8 NOT NULL DEFAULT pg_current_xact_id();"
    "CREATE INDEX revocations_txid ON revocations (txid);",

    /* 4: the users' profile, the OpenID Connect standard claims. */
    "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN given_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN family_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN preferred_username TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));",

    /* 5: as sqlite.c's 5 (OpenID Connect): one active and one next key per
     * alg, the nonce and auth_time of codes, auth_time of refresh tokens,
     * the clients' OpenID Connect settings, session_clients (backfilled
     * from the stored codes) and consents. */
    "DROP INDEX signing_keys_one_active;"
    "DROP INDEX signing_keys_one_next;"
    "CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 1;"
    "CREATE UNIQUE INDEX signing_keys_one_next_per_alg ON signing_keys (alg) WHERE state = 0;"
    "ALTER TABLE codes ADD COLUMN nonce TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE codes ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX codes_client_nonce ON codes (client_id, nonce) WHERE nonce <> '';"
    "ALTER TABLE refresh_tokens ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;"
    "CREATE TABLE session_clients ("
    "  sid TEXT NOT NULL,"
    "  client_id TEXT COLLATE \"C\" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  PRIMARY KEY (sid, client_id)"
    ");"
    "CREATE INDEX session_clients_client ON session_clients (client_id);"
    "INSERT INTO session_clients (sid, client_id) SELECT DISTINCT sid, client_id FROM codes;"
    "ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN consent BIGINT NOT NULL DEFAULT 0 CHECK (consent IN (0, 1));"
    "CREATE TABLE consents ("
    "  user_id TEXT COLLATE \"C\" NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  client_id TEXT COLLATE \"C\" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  scope TEXT NOT NULL,"
    "  granted_at BIGINT NOT NULL,"
    "  PRIMARY KEY (user_id, client_id)"
    ");"
    "CREATE INDEX consents_client ON consents (client_id);",

    /* 6: as sqlite.c's 6 (retention): the indexes the batched purges walk. */
    "CREATE INDEX audit_at ON audit (at);"
    "CREATE INDEX sessions_created ON sessions (created_at);"
    "CREATE INDEX revocations_revoked_at ON revocations (revoked_at);",
};

#define SCHEMA_LATEST ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* ---- statements ---------------------------------------------------------- */

enum stmt_id {
    ST_KEY_GENERATION,
    ST_KEY_GENERATION_BUMP,
    ST_WRITE_PROBE,
    ST_CLIENT_INSERT,
    ST_CLIENT_GET,
    ST_CLIENT_SET_DISABLED,
    ST_CLIENT_DELETE,
    ST_CLIENT_PAGE,
    ST_KEY_INSERT,
    ST_KEY_PAGE,
    ST_KEY_SET_STATE,
    ST_KEY_DELETE,
    ST_KEY_RETIRE_ACTIVE,
    ST_KEY_ACTIVATE_NEXT,
    ST_NOTIFY,
    ST_REVOCATION_TRY_INSERT,
    ST_REVOCATION_FIND,
    ST_REVOCATION_INSERT,
    ST_REVOCATION_DELETE,
    ST_REVOCATION_SET_REVOKED_AT,
    ST_REVOCATION_PAGE,
    ST_REVOCATION_XMIN,
    ST_REVOCATION_CHANGES,
    ST_REVOCATION_PURGE,
    ST_REVOCATION_INSERT_MANY,
    ST_REVOCATION_GET,
    ST_REVOCATION_COUNT,
    ST_ATTEMPT_FAIL,
    ST_ATTEMPT_BLOCK,
    ST_ATTEMPT_GET,
    ST_ATTEMPT_CLEAR,
    ST_ATTEMPT_PURGE,
    ST_ATTEMPT_LIVE,
    ST_AUDIT_INSERT,
    ST_AUDIT_PAGE,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_SET_PASSWORD,
    ST_USER_SET_DISABLED,
    ST_USER_SET_PROFILE,
    ST_USER_DELETE,
    ST_USER_PAGE,
    ST_SESSION_INSERT,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_END,
    ST_SESSION_SIDS_OF_USER,
    ST_SESSION_END_USER,
    ST_CODE_INSERT,
    ST_CODE_USE,
    ST_CODE_GET,
    ST_CODE_PURGE,
    ST_REFRESH_INSERT,
    ST_REFRESH_USE,
    ST_REFRESH_GET,
    ST_REFRESH_PURGE,
    ST_SESSION_GET_SID,
    ST_SESSION_CLIENT_ADD,
    ST_SESSION_CLIENT_PAGE,
    ST_CONSENT_PUT,
    ST_CONSENT_GET,
    ST_CONSENT_PAGE,
    ST_CONSENT_DELETE,
    ST_CONSENT_DELETE_ALL,
    ST_PURGE_REVOCATIONS,
    ST_PURGE_CODES,
    ST_PURGE_REFRESH,
    ST_PURGE_REFRESH_REVOKED,
    ST_PURGE_ATTEMPTS,
    ST_PURGE_AUDIT,
    ST_PURGE_SESSIONS,
    ST__COUNT
};

#define CLIENT_COLS                                                                                                    \
    "id, name, secret_hash, scopes, audiences, ttl, disabled, created_at, redirect_uris, is_public, grant_types, "     \
    "serves, backchannel_logout_uri, id_token_alg, consent"
#define KEY_COLS "kid, alg, state, created_at, activated_at, retired_at, verify_until, public_jwk, sealed"
#define REVOCATION_COLS "seq, kind, value, reason, revoked_at, until"
#define USER_COLS                                                                                                      \
    "id, pwhash, disabled, created_at, password_changed_at, name, given_name, family_name, preferred_username, "       \
    "email, "                                                                                                          \
    "email_verified"
#define SESSION_COLS "id_hash, sid, user_id, created_at, last_seen, ended_at"
#define CODE_COLS                                                                                                      \
    "hash, client_id, user_id, sid, redirect_uri, challenge, scope, audience, created_at, expires_at, used_at, "       \
    "nonce, auth_time"
#define REFRESH_COLS                                                                                                   \
    "hash, parent, sid, client_id, user_id, scope, audience, created_at, expires_at, used_at, auth_time"
#define CONSENT_COLS "user_id, client_id, scope, granted_at"

static const struct {
    const char *sql;
    int nparams;
} SQL[ST__COUNT] = {
    [ST_KEY_GENERATION] = {"SELECT value FROM meta WHERE key = 'key_generation'", 0},
    [ST_KEY_GENERATION_BUMP] = {"UPDATE meta SET value = value + 1 WHERE key = 'key_generation'", 0},
    [ST_WRITE_PROBE] = {"UPDATE meta SET value = $1 WHERE key = 'write_probe'", 1},
    [ST_CLIENT_INSERT] = {"INSERT INTO clients (" CLIENT_COLS
                          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                          15},
    [ST_CLIENT_GET] = {"SELECT " CLIENT_COLS " FROM clients WHERE id = $1", 1},
    [ST_CLIENT_SET_DISABLED] = {"UPDATE clients SET disabled = $2 WHERE id = $1", 2},
    [ST_CLIENT_DELETE] = {"DELETE FROM clients WHERE id = $1", 1},
    [ST_CLIENT_PAGE] = {"SELECT " CLIENT_COLS " FROM clients WHERE id > $1 ORDER BY id LIMIT $2", 2},
    [ST_KEY_INSERT] = {"INSERT INTO signing_keys (" KEY_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9},
    [ST_KEY_PAGE] = {"SELECT " KEY_COLS " FROM signing_keys"
                     " WHERE created_at > $1 OR (created_at = $1 AND kid > $2)"
                     " ORDER BY created_at, kid LIMIT $3",
                     3},
    /* As sqlite.c: activation keeps the first activated_at; retiring keeps
     * the first retired_at but takes the new verify_until. */
    [ST_KEY_SET_STATE] = {"UPDATE signing_keys SET"
                          " activated_at = CASE $2::bigint WHEN 0 THEN 0"
                          "   WHEN 1 THEN (CASE WHEN state = 1 THEN activated_at ELSE $3 END)"
                          "   ELSE activated_at END,"
                          " retired_at = CASE $2::bigint WHEN 2 THEN (CASE WHEN state = 2 THEN retired_at ELSE $3 END)"
                          "   ELSE 0 END,"
                          " verify_until = CASE $2::bigint WHEN 2 THEN $4 ELSE 0 END,"
                          " state = $2"
                          " WHERE kid = $1",
                          4},
    [ST_KEY_DELETE] = {"DELETE FROM signing_keys WHERE kid = $1", 1},
    [ST_KEY_RETIRE_ACTIVE] = {"UPDATE signing_keys SET state = 2, retired_at = $2, verify_until = $3"
                              " WHERE kid = $1 AND state = 1",
                              3},
    [ST_KEY_ACTIVATE_NEXT] = {"UPDATE signing_keys SET state = 1, activated_at = $2"
                              " WHERE kid = (SELECT kid FROM signing_keys WHERE state = 0 AND alg = $3"
                              "              AND created_at <= $1 ORDER BY created_at, kid LIMIT 1)",
                              3},
    [ST_NOTIFY] = {"SELECT pg_notify('" CHANNEL "', $1)", 1},
    /* A new revocation, or nothing when (kind, value) is revoked already. */
    [ST_REVOCATION_TRY_INSERT] = {"INSERT INTO revocations (kind, value, reason, revoked_at, until)"
                                  " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, value) DO NOTHING",
                                  5},
    [ST_REVOCATION_FIND] = {"SELECT seq, reason, revoked_at, until FROM revocations"
                            " WHERE kind = $1 AND value = $2 FOR UPDATE",
                            2},
    [ST_REVOCATION_INSERT] = {"INSERT INTO revocations (kind, value, reason, revoked_at, until)"
                              " VALUES ($1, $2, $3, $4, $5)",
                              5},
    [ST_REVOCATION_DELETE] = {"DELETE FROM revocations WHERE seq = $1", 1},
    [ST_REVOCATION_SET_REVOKED_AT] = {"UPDATE revocations SET revoked_at = $2 WHERE seq = $1", 2},
    [ST_REVOCATION_PAGE] = {"SELECT " REVOCATION_COLS " FROM revocations"
                            " WHERE seq > $1 AND until > $2 ORDER BY seq LIMIT $3",
                            3},
    [ST_REVOCATION_XMIN] = {"SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint", 0},
    [ST_REVOCATION_CHANGES] = {"SELECT " REVOCATION_COLS " FROM revocations"
                               " WHERE txid >= $1::text::xid8 AND seq > $2 AND until > $3 ORDER BY seq LIMIT $4",
                               4},
    [ST_REVOCATION_PURGE] = {"DELETE FROM revocations WHERE until <= $1", 1},
    /* tks_revoke_batch: the values as one text[] ('{"a","b"}'); what was
     * not inserted (revoked already, or a repeat) is returned missing. */
    [ST_REVOCATION_INSERT_MANY] = {"INSERT INTO revocations (kind, value, reason, revoked_at, until)"
                                   " SELECT $1::bigint, v, $3::text, $4::bigint, $5::bigint"
                                   " FROM unnest($2::text[]) AS v"
                                   " ON CONFLICT (kind, value) DO NOTHING RETURNING value",
                                   5},
    [ST_REVOCATION_GET] = {"SELECT " REVOCATION_COLS " FROM revocations"
                           " WHERE kind = $1 AND value = $2 AND until > $3",
                           3},
    [ST_REVOCATION_COUNT] = {"SELECT count(*) FROM revocations WHERE until > $1", 1},
    [ST_ATTEMPT_FAIL] = {"INSERT INTO attempts AS a (key, window_start, failures, blocked_until)"
                         " VALUES ($1, $2, greatest(1, $4::bigint), 0)"
                         " ON CONFLICT (key) DO UPDATE SET"
                         "  failures = CASE WHEN a.window_start + $3 <= $2 AND a.blocked_until <= $2"
                         "             THEN greatest(1, $4::bigint) ELSE greatest(a.failures + 1, $4::bigint) END,"
                         "  window_start = CASE WHEN a.window_start + $3 <= $2 AND a.blocked_until <= $2"
                         "                 THEN $2 ELSE a.window_start END"
                         " RETURNING failures",
                         4},
    [ST_ATTEMPT_BLOCK] = {"UPDATE attempts SET blocked_until = $2 WHERE key = $1 AND blocked_until < $2", 2},
    /* up to TKS_ATTEMPT_KEYS (3) keys in one round trip; unused ones repeat the first */
    [ST_ATTEMPT_GET] = {"SELECT key, blocked_until FROM attempts WHERE key IN ($1, $2, $3)", 3},
    [ST_ATTEMPT_CLEAR] = {"DELETE FROM attempts WHERE key = $1", 1},
    [ST_ATTEMPT_PURGE] = {"DELETE FROM attempts WHERE window_start + $2 <= $1 AND blocked_until <= $1", 2},
    [ST_ATTEMPT_LIVE] = {"SELECT key, blocked_until FROM attempts WHERE window_start + $2 > $1 OR blocked_until > $1"
                         " LIMIT $3",
                         3},
    [ST_AUDIT_INSERT] = {"INSERT INTO audit (at, kind, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5)", 5},
    [ST_AUDIT_PAGE] = {"SELECT id, at, kind, coalesce(client_id, ''), coalesce(ip, ''), coalesce(detail, '')"
                       " FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2",
                       2},
    [ST_USER_INSERT] = {"INSERT INTO users (" USER_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", 11},
    [ST_USER_SET_PROFILE] = {"UPDATE users SET name = $2, given_name = $3, family_name = $4, preferred_username = $5, "
                             "email = $6, email_verified = $7 WHERE id = $1",
                             7},
    [ST_USER_GET] = {"SELECT " USER_COLS " FROM users WHERE id = $1", 1},
    [ST_USER_SET_PASSWORD] = {"UPDATE users SET pwhash = $2, password_changed_at = $3 WHERE id = $1", 3},
    [ST_USER_SET_DISABLED] = {"UPDATE users SET disabled = $2 WHERE id = $1", 2},
    [ST_USER_DELETE] = {"DELETE FROM users WHERE id = $1", 1},
    [ST_USER_PAGE] = {"SELECT " USER_COLS " FROM users WHERE id > $1 ORDER BY id LIMIT $2", 2},
    [ST_SESSION_INSERT] = {"INSERT INTO sessions (" SESSION_COLS ") VALUES ($1, $2, $3, $4, $5, $6)", 6},
    [ST_SESSION_GET] = {"SELECT " SESSION_COLS " FROM sessions WHERE id_hash = $1", 1},
    [ST_SESSION_TOUCH] = {"UPDATE sessions SET last_seen = greatest(last_seen, $2) WHERE id_hash = $1", 2},
    [ST_SESSION_END] = {"UPDATE sessions SET ended_at = CASE WHEN ended_at = 0 THEN $2 ELSE ended_at END"
                        " WHERE sid = $1",
                        2},
    [ST_SESSION_SIDS_OF_USER] = {"SELECT sid FROM sessions WHERE user_id = $1 ORDER BY created_at", 1},
    [ST_SESSION_END_USER] = {"UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at = 0", 2},
    [ST_CODE_INSERT] = {"INSERT INTO codes (" CODE_COLS
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        13},
    [ST_CODE_USE] = {"UPDATE codes SET used_at = $2 WHERE hash = $1 AND used_at = 0"
                     " RETURNING pg_current_xact_id()::text",
                     2},
    [ST_CODE_GET] = {"SELECT " CODE_COLS " FROM codes WHERE hash = $1", 1},
    [ST_CODE_PURGE] = {"DELETE FROM codes WHERE expires_at < $1", 1},
    [ST_REFRESH_INSERT] = {"INSERT INTO refresh_tokens (" REFRESH_COLS
                           ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                           11},
    [ST_REFRESH_USE] = {"UPDATE refresh_tokens SET used_at = $2 WHERE hash = $1 AND used_at = 0"
                        " RETURNING pg_current_xact_id()::text",
                        2},
    [ST_REFRESH_GET] = {"SELECT " REFRESH_COLS " FROM refresh_tokens WHERE hash = $1", 1},
    [ST_REFRESH_PURGE] = {"DELETE FROM refresh_tokens WHERE expires_at < $1", 1},
    [ST_SESSION_GET_SID] = {"SELECT " SESSION_COLS " FROM sessions WHERE sid = $1", 1},
    [ST_SESSION_CLIENT_ADD] = {"INSERT INTO session_clients (sid, client_id) VALUES ($1, $2)"
                               " ON CONFLICT (sid, client_id) DO NOTHING",
                               2},
    [ST_SESSION_CLIENT_PAGE] = {"SELECT client_id FROM session_clients WHERE sid = $1 AND client_id > $2"
                                " ORDER BY client_id LIMIT $3",
                                3},
    [ST_CONSENT_PUT] = {"INSERT INTO consents (" CONSENT_COLS ") VALUES ($1, $2, $3, $4)"
                        " ON CONFLICT (user_id, client_id) DO UPDATE SET"
                        " scope = excluded.scope, granted_at = excluded.granted_at",
                        4},
    [ST_CONSENT_GET] = {"SELECT " CONSENT_COLS " FROM consents WHERE user_id = $1 AND client_id = $2", 2},
    [ST_CONSENT_PAGE] = {"SELECT " CONSENT_COLS " FROM consents WHERE user_id = $1 AND client_id > $2"
                         " ORDER BY client_id LIMIT $3",
                         3},
    [ST_CONSENT_DELETE] = {"DELETE FROM consents WHERE user_id = $1 AND client_id = $2", 2},
    [ST_CONSENT_DELETE_ALL] = {"DELETE FROM consents WHERE user_id = $1", 1},
/* Retention: each one statement (its own transaction), a bounded batch
 * found through an index (schema 6). The refresh and session purges also
 * delete the session_clients rows of sign-ins with neither a session nor
 * a refresh token left; the other parts of a statement see the rows as
 * they were before it, hence "not among those deleted". */
#define SC_GONE_REFRESH                                                                                                \
    " sc AS (DELETE FROM session_clients c WHERE c.sid IN (SELECT sid FROM gone)"                                      \
    " AND NOT EXISTS (SELECT 1 FROM sessions x WHERE x.sid = c.sid)"                                                   \
    " AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.sid = c.sid"                                              \
    " AND t.hash NOT IN (SELECT hash FROM gone)))"                                                                     \
    " SELECT count(*) FROM gone"
    [ST_PURGE_REVOCATIONS] = {"DELETE FROM revocations WHERE seq IN"
                              " (SELECT seq FROM revocations WHERE until <= $1 LIMIT $2)",
                              2},
    [ST_PURGE_CODES] = {"DELETE FROM codes WHERE hash IN (SELECT hash FROM codes WHERE expires_at < $1 LIMIT $2)", 2},
    [ST_PURGE_REFRESH] =
        {"WITH gone AS (DELETE FROM refresh_tokens WHERE hash IN"
         " (SELECT hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2) RETURNING hash, sid)," SC_GONE_REFRESH,
         2},
    [ST_PURGE_REFRESH_REVOKED] = {"WITH gone AS (DELETE FROM refresh_tokens WHERE hash IN"
                                  " (SELECT t.hash FROM revocations r JOIN refresh_tokens t ON t.sid = r.value"
                                  " WHERE r.kind = 2 AND r.revoked_at >= $1 AND r.revoked_at < $2 LIMIT $3)"
                                  " RETURNING hash, sid)," SC_GONE_REFRESH,
                                  3},
    [ST_PURGE_ATTEMPTS] = {"DELETE FROM attempts WHERE key IN (SELECT key FROM attempts"
                           " WHERE window_start + $3 <= $1 AND blocked_until <= $1 LIMIT $2)",
                           3},
    [ST_PURGE_AUDIT] = {"DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 LIMIT $2)", 2},
    [ST_PURGE_SESSIONS] = {"WITH gone AS (DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions"
                           " WHERE created_at < $1 AND ((ended_at <> 0 AND ended_at < $1) OR last_seen < $2"
                           " OR created_at < $3) LIMIT $4) RETURNING sid),"
                           " sc AS (DELETE FROM session_clients c WHERE c.sid IN (SELECT sid FROM gone)"
                           " AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.sid = c.sid))"
                           " SELECT count(*) FROM gone",
                           4},
};

/* ---- connections ---------------------------------------------------------- */

struct pgconn {
    PGconn *c;
    int busy;
    unsigned char prepared[ST__COUNT];
};

struct pg {
    char *conninfo;     /* the URL or key/value text: may hold a password, never printed */
    char *password;     /* from --store-password-file, or NULL */
    char *url_password; /* the password conninfo holds, or NULL: scrubbed from messages */
    pthread_mutex_t mu;
    pthread_cond_t freed;
    struct pgconn *conns;
    size_t n;

    /* tks_watch */
    pthread_mutex_t watch_mu;
    pthread_t watch_thread;
    int watching;
    _Atomic int watch_stop;
    void (*watch_fn)(int what, void *ud);
    void *watch_ud;
};

static struct pg *pg_of(tks_store *s)
{
    return (struct pg *)s->impl;
}

/* Replaces every occurrence of `secret` in msg with "***" (libpq may echo
 * parts of the connection string in its messages). */
static void scrub(char *msg, const char *secret)
{
    size_t n = secret != NULL ? strlen(secret) : 0;
    if (n == 0) {
        return;
    }
    char *from = msg;
    char *at;
    while ((at = strstr(from, secret)) != NULL) {
        size_t w = n < 3 ? n : 3; /* never longer than what it replaces */
        memset(at, '*', w);
        memmove(at + w, at + n, strlen(at + n) + 1);
        from = at + w; /* go on after it: a secret of stars must end too */
    }
}

static void scrub_all(const struct pg *p, char *msg)
{
    scrub(msg, p->password);
    scrub(msg, p->url_password);
}

/* A new session: libpq parses `conninfo` (URL or key/value); the password,
 * when given apart, overrides one there. NULL with a message on failure. */
static PGconn *connect_one(const struct pg *p, char *err, size_t err_cap)
{
    const char *keys[6];
    const char *vals[6];
    size_t n = 0;
    keys[n] = "dbname"; /* expanded: a URL or key/value text goes here */
    vals[n++] = p->conninfo;
    if (p->password != NULL) {
        keys[n] = "password";
        vals[n++] = p->password;
    }
    keys[n] = "connect_timeout";
    vals[n++] = CONNECT_TIMEOUT_S;
    keys[n] = "application_name";
    vals[n++] = "tokend";
    keys[n] = NULL;
    vals[n] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        snprintf(err, err_cap, "out of memory connecting to PostgreSQL");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host, port and user, never the password */
        snprintf(err, err_cap, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        /* one line: libpq's message has a newline and a tab in it */
        for (char *q = err; *q != '\0'; q++) {
            if (*q == '\n' || *q == '\t') {
                *q = ' ';
            }
        }
        for (size_t k = strlen(err); k > 0 && err[k - 1] == ' '; k--) {
            err[k - 1] = '\0';
        }
        scrub_all(p, err);
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET statement_timeout = " STATEMENT_TIMEOUT_MS ";"
                            "SET idle_in_transaction_session_timeout = " IDLE_IN_TX_TIMEOUT_MS ";"
                            "SET client_min_messages = warning");
    int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        snprintf(err, err_cap, "cannot configure the PostgreSQL session: %s", PQerrorMessage(c));
        scrub_all(p, err);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* An idle pooled session is quiet: the server says something unasked
 * mostly when it ends the session (a restart, a failover, an idle-session
 * killer: an error message, then EOF). One poll, no round trip; a session
 * with anything to read is replaced (a few milliseconds) rather than a
 * statement lost on it. */
static int idle_conn_alive(PGconn *c)
{
    struct pollfd fd = {.fd = PQsocket(c), .events = POLLIN};
    return fd.fd >= 0 && poll(&fd, 1, 0) == 0;
}

/* A connection for one operation: waits up to POOL_WAIT_MS for a free one,
 * connects when needed. NULL (and the result in *res) when none. */
static struct pgconn *acquire(tks_store *s, tks_result *res)
{
    struct pg *p = pg_of(s);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += POOL_WAIT_MS / 1000;
    pthread_mutex_lock(&p->mu);
    struct pgconn *pc = NULL;
    for (;;) {
        for (size_t i = 0; i < p->n; i++) {
            if (!p->conns[i].busy) {
                pc = &p->conns[i];
                break;
            }
        }
        if (pc != NULL) {
            break;
        }
        if (pthread_cond_timedwait(&p->freed, &p->mu, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->mu);
            tksi_seterr(s, "every PostgreSQL connection of this instance (%zu) stayed busy for %d ms", p->n,
                        POOL_WAIT_MS);
            *res = TKS_BUSY;
            return NULL;
        }
    }
    pc->busy = 1;
    pthread_mutex_unlock(&p->mu);
    if (pc->c != NULL && PQstatus(pc->c) == CONNECTION_OK && !idle_conn_alive(pc->c)) {
        PQfinish(pc->c);
        pc->c = NULL;
    }
    if (pc->c != NULL && PQstatus(pc->c) != CONNECTION_OK) {
        PQfinish(pc->c);
        pc->c = NULL;
    }
    if (pc->c == NULL) {
        char err[512];
        memset(pc->prepared, 0, sizeof pc->prepared);
        pc->c = connect_one(p, err, sizeof err);
        if (pc->c == NULL) {
            tksi_seterr(s, "%s", err);
            pthread_mutex_lock(&p->mu);
            pc->busy = 0;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->mu);
            *res = TKS_BUSY; /* unreachable or refusing: retry, 503 */
            return NULL;
        }
    }
    return pc;
}

static void release_conn(tks_store *s, struct pgconn *pc)
{
    struct pg *p = pg_of(s);
    /* a connection left inside a transaction (a failure midway) is rolled
     * back; one that broke is dropped and made again when next needed */
    if (pc->c != NULL && PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE) {
        PQclear(PQexec(pc->c, "ROLLBACK"));
    }
    if (pc->c != NULL && (PQstatus(pc->c) != CONNECTION_OK || PQtransactionStatus(pc->c) != PQTRANS_IDLE)) {
        PQfinish(pc->c);
        pc->c = NULL;
    }
    pthread_mutex_lock(&p->mu);
    pc->busy = 0;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

/* Maps a failed result to a store result and records why. */
static tks_result fail(tks_store *s, struct pgconn *pc, const PGresult *r, const char *what)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL) {
        msg = PQerrorMessage(pc->c);
    }
    if (PQstatus(pc->c) != CONNECTION_OK || state == NULL) {
        char m[256];
        snprintf(m, sizeof m, "%s", msg);
        scrub_all(pg_of(s), m);
        tksi_seterr(s, "%s: the connection to PostgreSQL was lost (%s)", what, m);
        return TKS_BUSY;
    }
    if (strcmp(state, "23505") == 0) {
        tksi_seterr(s, "%s: already exists", what);
        return TKS_EXISTS;
    }
    if (strcmp(state, "23503") == 0) {
        tksi_seterr(s, "%s: its user or client does not exist", what);
        return TKS_NOT_FOUND;
    }
    /* connection (08), timeouts and cancels (57014, 55P03), serialization
     * (40), shutting down or starting up (57P0x), too many connections
     * (53300): the database is there but cannot answer now */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "40", 2) == 0 || strncmp(state, "57", 2) == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "53300") == 0) {
        tksi_seterr(s, "%s: PostgreSQL is busy or unavailable (%s %s)", what, state, msg);
        return TKS_BUSY;
    }
    tksi_seterr(s, "%s: %s (SQLSTATE %s)", what, msg, state);
    return TKS_ERR;
}

/* ---- parameters ------------------------------------------------------------- */

#define MAX_PARAMS 16

struct params {
    const char *v[MAX_PARAMS];
    int len[MAX_PARAMS];
    int fmt[MAX_PARAMS];
    char num[MAX_PARAMS][24];
    int n;
};

static void p_text(struct params *a, const char *t)
{
    a->v[a->n] = t; /* NULL is SQL NULL */
    a->len[a->n] = 0;
    a->fmt[a->n] = 0;
    a->n++;
}

static void p_i64(struct params *a, int64_t x)
{
    snprintf(a->num[a->n], sizeof a->num[a->n], "%lld", (long long)x);
    p_text(a, a->num[a->n]);
}

static void p_blob(struct params *a, const void *b, size_t n)
{
    /* n is bounded by backend.h limits, far below INT_MAX */
    a->v[a->n] = (const char *)b;
    a->len[a->n] = (int)n;
    a->fmt[a->n] = 1;
    a->n++;
}

/* Runs statement `id` with parameters `a` on pc (preparing it on this
 * connection first when needed); binary results. On success *out holds
 * the result (PQclear it). `write`: a fault-injection write point. */
static tks_result exec_stmt(tks_store *s, struct pgconn *pc, enum stmt_id id, const struct params *a, int write,
                            const char *what, PGresult **out)
{
    *out = NULL;
    if (write && tksi_fault_hit(s, what)) {
        return TKS_ERR;
    }
    char name[16];
    snprintf(name, sizeof name, "tk%d", (int)id);
    if (!pc->prepared[id]) {
        PGresult *r = PQprepare(pc->c, name, SQL[id].sql, SQL[id].nparams, NULL);
        if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
            tks_result f = fail(s, pc, r, what);
            PQclear(r);
            return f;
        }
        PQclear(r);
        pc->prepared[id] = 1;
    }
    PGresult *r = PQexecPrepared(pc->c, name, a != NULL ? a->n : 0, a != NULL ? a->v : NULL, a != NULL ? a->len : NULL,
                                 a != NULL ? a->fmt : NULL, 1);
    ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        tks_result f = fail(s, pc, r, what);
        PQclear(r);
        return f;
    }
    *out = r;
    return TKS_OK;
}

/* The number of rows a write changed. */
static int changed(const PGresult *r)
{
    const char *t = PQcmdTuples((PGresult *)(uintptr_t)r);
    return t != NULL && t[0] != '\0' ? atoi(t) : 0;
}

/* BEGIN / COMMIT / ROLLBACK: write points too (but ROLLBACK). */
static tks_result simple(tks_store *s, struct pgconn *pc, const char *sql, const char *what)
{
    if (strcmp(sql, "ROLLBACK") != 0 && tksi_fault_hit(s, what)) {
        return TKS_ERR;
    }
    PGresult *r = PQexec(pc->c, sql);
    tks_result res = TKS_OK;
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        res = fail(s, pc, r, what);
    } else if (strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        /* COMMIT of a transaction that had failed answers ROLLBACK */
        tksi_seterr(s, "%s: PostgreSQL rolled the transaction back", what);
        res = TKS_ERR;
    }
    PQclear(r);
    return res;
}

static tks_result tx_begin(tks_store *s, struct pgconn *pc)
{
    return simple(s, pc, "BEGIN", "starting a transaction");
}

/* Commits when r is TKS_OK, else rolls back; returns the final result. */
static tks_result tx_end(tks_store *s, struct pgconn *pc, tks_result r)
{
    if (r == TKS_OK) {
        r = simple(s, pc, "COMMIT", "committing");
    }
    if (r != TKS_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE) {
        PQclear(PQexec(pc->c, "ROLLBACK"));
    }
    return r;
}

/* What became of transaction `xid` (decimal text) of a connection that
 * broke while its COMMIT was on the way: asked on a new session in the
 * same slot. PostgreSQL finishes a COMMIT it received even when the client
 * is gone, and aborts a transaction whose client went away before; one
 * still "in progress" after a second (no COMMIT arrived, the socket not
 * yet seen closed) has its old session ended, which settles it. TKS_OK:
 * committed; TKS_BUSY: rolled back; TKS_UNKNOWN: no answer. */
static tks_result commit_outcome(tks_store *s, struct pgconn *pc, const char *xid, int old_pid, const char *what)
{
    struct pg *p = pg_of(s);
    char pid[24];
    snprintf(pid, sizeof pid, "%d", old_pid);
    PQfinish(pc->c);
    memset(pc->prepared, 0, sizeof pc->prepared);
    char err[512];
    pc->c = connect_one(p, err, sizeof err);
    if (pc->c == NULL) {
        tksi_seterr(s, "%s: the answer to COMMIT was lost and PostgreSQL cannot be asked whether it took effect (%s)",
                    what, err);
        return TKS_UNKNOWN;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ended = 0;
    for (int round = 0;; round++) {
        const char *v[1] = {xid};
        PGresult *r = PQexecParams(pc->c, "SELECT pg_xact_status($1::xid8)", 1, NULL, v, NULL, NULL, 0);
        const char *st = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)
                             ? PQgetvalue(r, 0, 0)
                             : NULL;
        tks_result res = st == NULL                       ? TKS_UNKNOWN
                         : strcmp(st, "committed") == 0   ? TKS_OK
                         : strcmp(st, "aborted") == 0     ? TKS_BUSY
                         : strcmp(st, "in progress") == 0 ? TKS_ERR /* ask again */
                                                          : TKS_UNKNOWN;
        PQclear(r);
        if (res == TKS_BUSY) {
            tksi_seterr(s,
                        "%s: the connection to PostgreSQL was lost while committing; it rolled the transaction "
                        "back, so nothing was written",
                        what);
        }
        if (res != TKS_ERR) {
            if (res == TKS_UNKNOWN) {
                tksi_seterr(s, "%s: the answer to COMMIT was lost and PostgreSQL did not say whether it took effect",
                            what);
            }
            return res;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double waited = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
        if (waited > 1.0 && !ended && old_pid > 0) {
            const char *pv[1] = {pid};
            PQclear(PQexecParams(pc->c, "SELECT pg_terminate_backend($1::int, 1000)", 1, NULL, pv, NULL, NULL, 0));
            ended = 1;
        } else if (waited > 3.0) {
            tksi_seterr(s, "%s: the answer to COMMIT was lost and the transaction is still running after %.0f s", what,
                        waited);
            return TKS_UNKNOWN;
        }
        struct timespec nap = {0, round < 10 ? 5000000L : 50000000L};
        nanosleep(&nap, NULL);
    }
}

/* COMMIT of a single-use write whose transaction id is `xid`: when no
 * answer comes (the connection broke), commit_outcome asks what happened,
 * so that a token spent in the store is never reported as not spent. */
static tks_result commit_known(tks_store *s, struct pgconn *pc, const char *xid, const char *what)
{
    if (tksi_fault_hit(s, "committing")) {
        PQclear(PQexec(pc->c, "ROLLBACK"));
        return TKS_ERR;
    }
    int pid = PQbackendPID(pc->c); /* 0 once the connection is broken */
    PGresult *r = PQexec(pc->c, "COMMIT");
    if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK) {
        int committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
        PQclear(r);
        if (!committed) {
            tksi_seterr(s, "%s: PostgreSQL rolled the transaction back", what);
        }
        return committed ? TKS_OK : TKS_ERR;
    }
    int answered = r != NULL && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL && PQstatus(pc->c) == CONNECTION_OK;
    tks_result res = fail(s, pc, r, what);
    PQclear(r);
    if (answered) { /* an error answer: the transaction is over, not committed */
        if (PQtransactionStatus(pc->c) != PQTRANS_IDLE) {
            PQclear(PQexec(pc->c, "ROLLBACK"));
        }
        return res;
    }
    return commit_outcome(s, pc, xid, pid, what);
}

/* ---- reading values ------------------------------------------------------------ */

static int get_i64(tks_store *s, const PGresult *r, int row, int col, const char *what, int64_t *out)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) {
        tksi_seterr(s, "the store holds a %s that is not a BIGINT", what);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    *out = (int64_t)v;
    return 0;
}

/* A TEXT column into dst[cap] (NUL included); NULL reads as "" when
 * null_ok. Too long is an error, never cut. */
static int get_text(tks_store *s, const PGresult *r, int row, int col, const char *what, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (PQgetisnull(r, row, col)) {
        return 0;
    }
    int n = PQgetlength(r, row, col);
    const char *p = PQgetvalue(r, row, col);
    if (n < 0 || (size_t)n >= cap || memchr(p, '\0', (size_t)n) != NULL) {
        tksi_seterr(s, "the store holds a %s longer than %zu bytes", what, cap - 1);
        return -1;
    }
    memcpy(dst, p, (size_t)n);
    dst[n] = '\0';
    return 0;
}

static int get_blob_exact(tks_store *s, const PGresult *r, int row, int col, const char *what, unsigned char *dst,
                          size_t n)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != (int)n) {
        tksi_seterr(s, "the store holds a %s that is not %zu bytes", what, n);
        return -1;
    }
    memcpy(dst, PQgetvalue(r, row, col), n);
    return 0;
}

static int read_client(tks_store *s, const PGresult *r, int row, tks_client *c)
{
    int64_t disabled = 0, is_public = 0, consent = 0;
    if (get_text(s, r, row, 0, "clients.id", c->id, sizeof c->id) ||
        get_text(s, r, row, 1, "clients.name", c->name, sizeof c->name) ||
        get_blob_exact(s, r, row, 2, "clients.secret_hash", c->secret_hash, sizeof c->secret_hash) ||
        get_text(s, r, row, 3, "clients.scopes", c->scopes, sizeof c->scopes) ||
        get_text(s, r, row, 4, "clients.audiences", c->audiences, sizeof c->audiences) ||
        get_i64(s, r, row, 5, "clients.ttl", &c->ttl) || get_i64(s, r, row, 6, "clients.disabled", &disabled) ||
        get_i64(s, r, row, 7, "clients.created_at", &c->created_at) ||
        get_text(s, r, row, 8, "clients.redirect_uris", c->redirect_uris, sizeof c->redirect_uris) ||
        get_i64(s, r, row, 9, "clients.is_public", &is_public) ||
        get_text(s, r, row, 10, "clients.grant_types", c->grant_types, sizeof c->grant_types) ||
        get_text(s, r, row, 11, "clients.serves", c->serves, sizeof c->serves) ||
        get_text(s, r, row, 12, "clients.backchannel_logout_uri", c->backchannel_logout_uri,
                 sizeof c->backchannel_logout_uri) ||
        get_text(s, r, row, 13, "clients.id_token_alg", c->id_token_alg, sizeof c->id_token_alg) ||
        get_i64(s, r, row, 14, "clients.consent", &consent)) {
        return -1;
    }
    c->disabled = disabled != 0;
    c->is_public = is_public != 0;
    c->consent = consent != 0;
    return 0;
}

/* Fills k (zeroed by the caller); on failure k owns nothing. */
static int read_key(tks_store *s, const PGresult *r, int row, tks_key_row *k)
{
    int64_t state = 0;
    if (get_text(s, r, row, 0, "signing_keys.kid", k->kid, sizeof k->kid) ||
        get_text(s, r, row, 1, "signing_keys.alg", k->alg, sizeof k->alg) ||
        get_i64(s, r, row, 2, "signing_keys.state", &state) ||
        get_i64(s, r, row, 3, "signing_keys.created_at", &k->created_at) ||
        get_i64(s, r, row, 4, "signing_keys.activated_at", &k->activated_at) ||
        get_i64(s, r, row, 5, "signing_keys.retired_at", &k->retired_at) ||
        get_i64(s, r, row, 6, "signing_keys.verify_until", &k->verify_until)) {
        return -1;
    }
    if (state < TKS_KEY_NEXT || state > TKS_KEY_RETIRED) {
        tksi_seterr(s, "the store holds a signing key in unknown state %lld", (long long)state);
        return -1;
    }
    k->state = (enum tks_key_state)state;
    if (!PQgetisnull(r, row, 7)) {
        int n = PQgetlength(r, row, 7);
        const char *p = PQgetvalue(r, row, 7);
        if (n < 0 || (size_t)n > TKSI_JWK_MAX || memchr(p, '\0', (size_t)n) != NULL) {
            tksi_seterr(s, "the store holds a signing_keys.public_jwk that is unreadable or over %d bytes",
                        TKSI_JWK_MAX);
            return -1;
        }
        k->public_jwk = malloc((size_t)n + 1);
        if (k->public_jwk == NULL) {
            tksi_seterr(s, "out of memory reading a signing key");
            return -1;
        }
        memcpy(k->public_jwk, p, (size_t)n);
        k->public_jwk[n] = '\0';
    }
    int n = PQgetlength(r, row, 8);
    if (PQgetisnull(r, row, 8) || n < 1 || n > TKSI_SEALED_MAX) {
        tksi_seterr(s, "the store holds a signing_keys.sealed that is not 1 to %d bytes", TKSI_SEALED_MAX);
        tks_key_row_clear(k);
        return -1;
    }
    k->sealed = malloc((size_t)n);
    if (k->sealed == NULL) {
        tksi_seterr(s, "out of memory reading a signing key");
        tks_key_row_clear(k);
        return -1;
    }
    memcpy(k->sealed, PQgetvalue(r, row, 8), (size_t)n);
    k->sealed_len = (size_t)n;
    return 0;
}

static int read_revocation(tks_store *s, const PGresult *r, int row, tks_revocation *v)
{
    int64_t kind = 0;
    if (get_i64(s, r, row, 0, "revocations.seq", &v->seq) || get_i64(s, r, row, 1, "revocations.kind", &kind) ||
        get_text(s, r, row, 2, "revocations.value", v->value, sizeof v->value) ||
        get_text(s, r, row, 3, "revocations.reason", v->reason, sizeof v->reason) ||
        get_i64(s, r, row, 4, "revocations.revoked_at", &v->revoked_at) ||
        get_i64(s, r, row, 5, "revocations.until", &v->until)) {
        return -1;
    }
    if (kind != TKS_REVOKE_JTI && kind != TKS_REVOKE_SID) {
        tksi_seterr(s, "the store holds a revocation of unknown kind %lld", (long long)kind);
        return -1;
    }
    v->kind = (enum tks_revocation_kind)kind;
    return 0;
}

static int read_user(tks_store *s, const PGresult *r, int row, void *out)
{
    tks_user *u = out;
    int64_t disabled = 0, verified = 0;
    if (get_text(s, r, row, 0, "users.id", u->id, sizeof u->id) ||
        get_text(s, r, row, 1, "users.pwhash", u->pwhash, sizeof u->pwhash) ||
        get_i64(s, r, row, 2, "users.disabled", &disabled) ||
        get_i64(s, r, row, 3, "users.created_at", &u->created_at) ||
        get_i64(s, r, row, 4, "users.password_changed_at", &u->password_changed_at) ||
        get_text(s, r, row, 5, "users.name", u->name, sizeof u->name) ||
        get_text(s, r, row, 6, "users.given_name", u->given_name, sizeof u->given_name) ||
        get_text(s, r, row, 7, "users.family_name", u->family_name, sizeof u->family_name) ||
        get_text(s, r, row, 8, "users.preferred_username", u->preferred_username, sizeof u->preferred_username) ||
        get_text(s, r, row, 9, "users.email", u->email, sizeof u->email) ||
        get_i64(s, r, row, 10, "users.email_verified", &verified)) {
        return -1;
    }
    u->disabled = disabled != 0;
    u->email_verified = verified != 0;
    return 0;
}

static int read_session(tks_store *s, const PGresult *r, int row, void *out)
{
    tks_session *se = out;
    return get_blob_exact(s, r, row, 0, "sessions.id_hash", se->id_hash, sizeof se->id_hash) ||
                   get_text(s, r, row, 1, "sessions.sid", se->sid, sizeof se->sid) ||
                   get_text(s, r, row, 2, "sessions.user_id", se->user_id, sizeof se->user_id) ||
                   get_i64(s, r, row, 3, "sessions.created_at", &se->created_at) ||
                   get_i64(s, r, row, 4, "sessions.last_seen", &se->last_seen) ||
                   get_i64(s, r, row, 5, "sessions.ended_at", &se->ended_at)
               ? -1
               : 0;
}

static int read_code(tks_store *s, const PGresult *r, int row, void *out)
{
    tks_code *c = out;
    return get_blob_exact(s, r, row, 0, "codes.hash", c->hash, sizeof c->hash) ||
                   get_text(s, r, row, 1, "codes.client_id", c->client_id, sizeof c->client_id) ||
                   get_text(s, r, row, 2, "codes.user_id", c->user_id, sizeof c->user_id) ||
                   get_text(s, r, row, 3, "codes.sid", c->sid, sizeof c->sid) ||
                   get_text(s, r, row, 4, "codes.redirect_uri", c->redirect_uri, sizeof c->redirect_uri) ||
                   get_text(s, r, row, 5, "codes.challenge", c->challenge, sizeof c->challenge) ||
                   get_text(s, r, row, 6, "codes.scope", c->scope, sizeof c->scope) ||
                   get_text(s, r, row, 7, "codes.audience", c->audience, sizeof c->audience) ||
                   get_i64(s, r, row, 8, "codes.created_at", &c->created_at) ||
                   get_i64(s, r, row, 9, "codes.expires_at", &c->expires_at) ||
                   get_i64(s, r, row, 10, "codes.used_at", &c->used_at) ||
                   get_text(s, r, row, 11, "codes.nonce", c->nonce, sizeof c->nonce) ||
                   get_i64(s, r, row, 12, "codes.auth_time", &c->auth_time)
               ? -1
               : 0;
}

static int read_refresh(tks_store *s, const PGresult *r, int row, void *out)
{
    tks_refresh *t = out;
    return get_blob_exact(s, r, row, 0, "refresh_tokens.hash", t->hash, sizeof t->hash) ||
                   get_blob_exact(s, r, row, 1, "refresh_tokens.parent", t->parent, sizeof t->parent) ||
                   get_text(s, r, row, 2, "refresh_tokens.sid", t->sid, sizeof t->sid) ||
                   get_text(s, r, row, 3, "refresh_tokens.client_id", t->client_id, sizeof t->client_id) ||
                   get_text(s, r, row, 4, "refresh_tokens.user_id", t->user_id, sizeof t->user_id) ||
                   get_text(s, r, row, 5, "refresh_tokens.scope", t->scope, sizeof t->scope) ||
                   get_text(s, r, row, 6, "refresh_tokens.audience", t->audience, sizeof t->audience) ||
                   get_i64(s, r, row, 7, "refresh_tokens.created_at", &t->created_at) ||
                   get_i64(s, r, row, 8, "refresh_tokens.expires_at", &t->expires_at) ||
                   get_i64(s, r, row, 9, "refresh_tokens.used_at", &t->used_at) ||
                   get_i64(s, r, row, 10, "refresh_tokens.auth_time", &t->auth_time)
               ? -1
               : 0;
}

static int read_consent(tks_store *s, const PGresult *r, int row, void *out)
{
    tks_consent *c = out;
    return get_text(s, r, row, 0, "consents.user_id", c->user_id, sizeof c->user_id) ||
                   get_text(s, r, row, 1, "consents.client_id", c->client_id, sizeof c->client_id) ||
                   get_text(s, r, row, 2, "consents.scope", c->scope, sizeof c->scope) ||
                   get_i64(s, r, row, 3, "consents.granted_at", &c->granted_at)
               ? -1
               : 0;
}

static int read_client_id(tks_store *s, const PGresult *r, int row, void *out)
{
    tksi_client_id *c = out;
    return get_text(s, r, row, 0, "session_clients.client_id", c->id, sizeof c->id);
}

static int read_audit(tks_store *s, const PGresult *r, int row, tksi_audit_row *a)
{
    return get_i64(s, r, row, 0, "audit.id", &a->id) || get_i64(s, r, row, 1, "audit.at", &a->at) ||
                   get_text(s, r, row, 2, "audit.kind", a->kind, sizeof a->kind) ||
                   get_text(s, r, row, 3, "audit.client_id", a->client_id, sizeof a->client_id) ||
                   get_text(s, r, row, 4, "audit.ip", a->ip, sizeof a->ip) ||
                   get_text(s, r, row, 5, "audit.detail", a->detail, sizeof a->detail)
               ? -1
               : 0;
}

/* ---- the operations -------------------------------------------------------------- */

/* One statement, no transaction: its changed-row count in *n (may be NULL). */
static tks_result run1(tks_store *s, enum stmt_id id, const struct params *a, int write, const char *what, int *n)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    PGresult *res = NULL;
    r = exec_stmt(s, pc, id, a, write, what, &res);
    if (r == TKS_OK && n != NULL) {
        *n = changed(res);
    }
    PQclear(res);
    release_conn(s, pc);
    return r;
}

/* One statement keyed by its parameters, reading at most one row with
 * `reader`; TKS_NOT_FOUND when there is none. */
static tks_result get1(tks_store *s, enum stmt_id id, const struct params *a,
                       int (*reader)(tks_store *s, const PGresult *r, int row, void *out), void *out, const char *what)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    PGresult *res = NULL;
    r = exec_stmt(s, pc, id, a, 0, what, &res);
    if (r == TKS_OK) {
        r = PQntuples(res) == 0 ? TKS_NOT_FOUND : reader(s, res, 0, out) == 0 ? TKS_OK : TKS_ERR;
    }
    PQclear(res);
    release_conn(s, pc);
    return r;
}

/* A change by key that must match a row: TKS_NOT_FOUND when none did. */
static tks_result change1(tks_store *s, enum stmt_id id, const struct params *a, const char *what)
{
    int n = 0;
    tks_result r = run1(s, id, a, 1, what, &n);
    return r == TKS_OK && n == 0 ? TKS_NOT_FOUND : r;
}

static tks_result notify(tks_store *s, struct pgconn *pc, const char *what_changed);

/* run1 of a write that other instances must hear of (a client changed):
 * the statement and NOTIFY `what_changed` in one transaction. */
static tks_result run1_told(tks_store *s, enum stmt_id id, const struct params *a, const char *what,
                            const char *what_changed, int *n)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    PGresult *res = NULL;
    if (r == TKS_OK) {
        r = exec_stmt(s, pc, id, a, 1, what, &res);
    }
    if (r == TKS_OK && n != NULL) {
        *n = changed(res);
    }
    PQclear(res);
    if (r == TKS_OK) {
        r = notify(s, pc, what_changed);
    }
    r = tx_end(s, pc, r);
    release_conn(s, pc);
    return r;
}

static void pg_close(tks_store *s);

static tks_result pg_ping(tks_store *s)
{
    int64_t g = 0;
    return s->be->key_generation(s, &g);
}

static int read_generation(tks_store *s, const PGresult *r, int row, void *out)
{
    return get_i64(s, r, row, 0, "meta.key_generation", (int64_t *)out);
}

static tks_result pg_key_generation(tks_store *s, int64_t *out)
{
    tks_result r = get1(s, ST_KEY_GENERATION, NULL, read_generation, out, "reading the key generation");
    if (r == TKS_NOT_FOUND) {
        tksi_seterr(s, "reading the key generation: the store has no key_generation row");
        r = TKS_ERR;
    }
    return r;
}

static tks_result pg_probe_write(tks_store *s, int64_t now)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    int n = 0;
    tks_result r = run1(s, ST_WRITE_PROBE, &a, 1, "writing the readiness probe", &n);
    if (r == TKS_OK && n != 1) {
        tksi_seterr(s, "writing the readiness probe: the store has no write_probe row");
        r = TKS_ERR;
    }
    return r;
}

static tks_result pg_client_insert(tks_store *s, const tks_client *c)
{
    struct params a = {.n = 0};
    p_text(&a, c->id);
    p_text(&a, c->name);
    p_blob(&a, c->secret_hash, sizeof c->secret_hash);
    p_text(&a, c->scopes);
    p_text(&a, c->audiences);
    p_i64(&a, c->ttl);
    p_i64(&a, c->disabled != 0);
    p_i64(&a, c->created_at);
    p_text(&a, c->redirect_uris);
    p_i64(&a, c->is_public != 0);
    p_text(&a, c->grant_types);
    p_text(&a, c->serves);
    p_text(&a, c->backchannel_logout_uri);
    p_text(&a, c->id_token_alg);
    p_i64(&a, c->consent != 0);
    return run1_told(s, ST_CLIENT_INSERT, &a, "adding a client", "c", NULL);
}

static int read_client_v(tks_store *s, const PGresult *r, int row, void *out)
{
    return read_client(s, r, row, out);
}

static tks_result pg_client_get(tks_store *s, const char *id, tks_client *out)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    return get1(s, ST_CLIENT_GET, &a, read_client_v, out, "reading a client");
}

static tks_result pg_client_set_disabled(tks_store *s, const char *id, int disabled)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    p_i64(&a, disabled != 0);
    int n = 0;
    tks_result r = run1_told(s, ST_CLIENT_SET_DISABLED, &a, "disabling a client", "c", &n);
    return r == TKS_OK && n == 0 ? TKS_NOT_FOUND : r;
}

static tks_result pg_client_delete(tks_store *s, const char *id)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    int n = 0;
    tks_result r = run1_told(s, ST_CLIENT_DELETE, &a, "deleting a client", "c", &n);
    return r == TKS_OK && n == 0 ? TKS_NOT_FOUND : r;
}

/* A listing page: rows of `id` read with `reader` into rows[i * size]. */
static tks_result page(tks_store *s, enum stmt_id id, const struct params *a,
                       int (*reader)(tks_store *s, const PGresult *r, int row, void *out), void *rows, size_t size,
                       size_t cap, size_t *n, const char *what)
{
    *n = 0;
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    PGresult *res = NULL;
    r = exec_stmt(s, pc, id, a, 0, what, &res);
    if (r == TKS_OK) {
        int rows_n = PQntuples(res);
        for (int i = 0; i < rows_n && *n < cap; i++) {
            if (reader(s, res, i, (char *)rows + *n * size) != 0) {
                r = TKS_ERR;
                break;
            }
            (*n)++;
        }
    }
    PQclear(res);
    release_conn(s, pc);
    return r;
}

static tks_result pg_client_page(tks_store *s, const char *after, tks_client *rows, size_t cap, size_t *n)
{
    struct params a = {.n = 0};
    p_text(&a, after);
    p_i64(&a, (int64_t)cap);
    tks_result r = page(s, ST_CLIENT_PAGE, &a, read_client_v, rows, sizeof *rows, cap, n, "listing clients");
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

/* Sends the change notification inside the caller's transaction. */
static tks_result notify(tks_store *s, struct pgconn *pc, const char *what_changed)
{
    struct params a = {.n = 0};
    p_text(&a, what_changed);
    PGresult *res = NULL;
    tks_result r = exec_stmt(s, pc, ST_NOTIFY, &a, 0, "notifying other instances", &res);
    PQclear(res);
    return r;
}

/* A change to the key table, with the generation bumped and other
 * instances told, in one transaction. */
static tks_result key_change(tks_store *s, enum stmt_id id, const struct params *a, int must_match, const char *what)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    if (r == TKS_OK) {
        PGresult *res = NULL;
        r = exec_stmt(s, pc, id, a, 1, what, &res);
        if (r == TKS_OK && must_match && changed(res) == 0) {
            r = TKS_NOT_FOUND;
        }
        PQclear(res);
        if (r == TKS_OK) {
            r = exec_stmt(s, pc, ST_KEY_GENERATION_BUMP, NULL, 1, "bumping the key generation", &res);
            if (r == TKS_OK && changed(res) != 1) {
                tksi_seterr(s, "%s: the store has no key_generation row", what);
                r = TKS_ERR;
            }
            PQclear(res);
        }
        if (r == TKS_OK) {
            r = notify(s, pc, "k");
        }
        r = tx_end(s, pc, r);
    }
    release_conn(s, pc);
    return r;
}

static void key_params(struct params *a, const tks_key_row *k)
{
    p_text(a, k->kid);
    p_text(a, k->alg);
    p_i64(a, (int64_t)k->state);
    p_i64(a, k->created_at);
    p_i64(a, k->activated_at);
    p_i64(a, k->retired_at);
    p_i64(a, k->verify_until);
    p_text(a, k->public_jwk);
    p_blob(a, k->sealed, k->sealed_len);
}

static tks_result pg_key_insert(tks_store *s, const tks_key_row *k)
{
    struct params a = {.n = 0};
    key_params(&a, k);
    return key_change(s, ST_KEY_INSERT, &a, 0, "adding a signing key");
}

static int read_key_v(tks_store *s, const PGresult *r, int row, void *out)
{
    return read_key(s, r, row, out);
}

static tks_result pg_key_page(tks_store *s, int64_t after_created, const char *after_kid, tks_key_row *rows, size_t cap,
                              size_t *n)
{
    struct params a = {.n = 0};
    p_i64(&a, after_created);
    p_text(&a, after_kid);
    p_i64(&a, (int64_t)cap);
    tks_result r = page(s, ST_KEY_PAGE, &a, read_key_v, rows, sizeof *rows, cap, n, "listing signing keys");
    if (r != TKS_OK) {
        for (size_t i = 0; i < *n; i++) {
            tks_key_row_clear(&rows[i]);
        }
        *n = 0;
    }
    return r;
}

static tks_result pg_key_set_state(tks_store *s, const char *kid, enum tks_key_state state, int64_t now,
                                   int64_t verify_until)
{
    struct params a = {.n = 0};
    p_text(&a, kid);
    p_i64(&a, (int64_t)state);
    p_i64(&a, now);
    p_i64(&a, verify_until);
    return key_change(s, ST_KEY_SET_STATE, &a, 1, "changing a signing key's state");
}

static tks_result pg_key_delete(tks_store *s, const char *kid)
{
    struct params a = {.n = 0};
    p_text(&a, kid);
    return key_change(s, ST_KEY_DELETE, &a, 1, "deleting a signing key");
}

static tks_result pg_key_rotate(tks_store *s, const char *active_kid, int64_t next_born_by, int64_t now,
                                int64_t verify_until, const tks_key_row *k)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    PGresult *res = NULL;
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        p_text(&a, active_kid);
        p_i64(&a, now);
        p_i64(&a, verify_until);
        r = exec_stmt(s, pc, ST_KEY_RETIRE_ACTIVE, &a, 1, "retiring the active key", &res);
        if (r == TKS_OK && changed(res) == 0) {
            r = TKS_EXISTS; /* another instance rotated first */
        }
        PQclear(res);
    }
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        p_i64(&a, next_born_by);
        p_i64(&a, now);
        p_text(&a, k->alg); /* only the ring of the new key's alg turns */
        r = exec_stmt(s, pc, ST_KEY_ACTIVATE_NEXT, &a, 1, "activating the next key", &res);
        if (r == TKS_OK && changed(res) != 1) {
            r = TKS_NOT_FOUND; /* no next key published long enough */
        }
        PQclear(res);
    }
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        key_params(&a, k);
        r = exec_stmt(s, pc, ST_KEY_INSERT, &a, 1, "adding the new next key", &res);
        PQclear(res);
    }
    if (r == TKS_OK) {
        r = exec_stmt(s, pc, ST_KEY_GENERATION_BUMP, NULL, 1, "bumping the key generation", &res);
        PQclear(res);
    }
    if (r == TKS_OK) {
        r = notify(s, pc, "k");
    }
    r = tx_end(s, pc, r); /* TKS_EXISTS and TKS_NOT_FOUND roll back and come back as they are */
    release_conn(s, pc);
    return r;
}

static int read_revocation_v(tks_store *s, const PGresult *r, int row, void *out);

/* The revocation of (kind, value) already in the store, inside the
 * caller's transaction: the first reason and the earliest revoked_at kept,
 * a later until moving the row to a new seq and transaction id. */
static tks_result revise_revocation(tks_store *s, struct pgconn *pc, enum tks_revocation_kind kind, const char *value,
                                    int64_t now, int64_t until)
{
    PGresult *res = NULL;
    struct params a = {.n = 0};
    p_i64(&a, (int64_t)kind);
    p_text(&a, value);
    tks_result r = exec_stmt(s, pc, ST_REVOCATION_FIND, &a, 0, "looking up a revocation", &res);
    int64_t seq = 0, revoked_at = 0, old_until = 0;
    char first_reason[TKS_REASON_MAX + 1] = "";
    if (r == TKS_OK && PQntuples(res) == 1) {
        if (get_i64(s, res, 0, 0, "revocations.seq", &seq) ||
            get_text(s, res, 0, 1, "revocations.reason", first_reason, sizeof first_reason) ||
            get_i64(s, res, 0, 2, "revocations.revoked_at", &revoked_at) ||
            get_i64(s, res, 0, 3, "revocations.until", &old_until)) {
            r = TKS_ERR;
        }
    } else if (r == TKS_OK) {
        /* purged between the two statements: it is new again */
        tksi_seterr(s, "recording a revocation: the row vanished; retry");
        r = TKS_BUSY;
    }
    PQclear(res);
    if (r == TKS_OK && until > old_until) {
        struct params d = {.n = 0};
        p_i64(&d, seq);
        r = exec_stmt(s, pc, ST_REVOCATION_DELETE, &d, 1, "moving a revocation", &res);
        PQclear(res);
        if (r == TKS_OK) {
            struct params a2 = {.n = 0};
            p_i64(&a2, (int64_t)kind);
            p_text(&a2, value);
            p_text(&a2, first_reason);
            p_i64(&a2, now < revoked_at ? now : revoked_at);
            p_i64(&a2, until);
            r = exec_stmt(s, pc, ST_REVOCATION_INSERT, &a2, 1, "recording a revocation", &res);
            PQclear(res);
        }
    } else if (r == TKS_OK && now < revoked_at) {
        struct params u = {.n = 0};
        p_i64(&u, seq);
        p_i64(&u, now);
        r = exec_stmt(s, pc, ST_REVOCATION_SET_REVOKED_AT, &u, 1, "updating a revocation", &res);
        PQclear(res);
    }
    return r;
}

/* Revoking again keeps the first reason and the earliest revoked_at; when
 * it extends `until`, the row moves to a new seq (and a new transaction
 * id), as in sqlite.c. Concurrent revocations of one value meet in the
 * unique index: the loser's INSERT does nothing and it updates the row. */
static tks_result pg_revoke(tks_store *s, enum tks_revocation_kind kind, const char *value, const char *reason,
                            int64_t now, int64_t until)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    PGresult *res = NULL;
    int inserted = 0;
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        p_i64(&a, (int64_t)kind);
        p_text(&a, value);
        p_text(&a, reason);
        p_i64(&a, now);
        p_i64(&a, until);
        r = exec_stmt(s, pc, ST_REVOCATION_TRY_INSERT, &a, 1, "recording a revocation", &res);
        inserted = r == TKS_OK && changed(res) == 1;
        PQclear(res);
    }
    if (r == TKS_OK && !inserted) {
        r = revise_revocation(s, pc, kind, value, now, until);
    }
    if (r == TKS_OK) {
        r = notify(s, pc, "r");
    }
    r = tx_end(s, pc, r);
    release_conn(s, pc);
    return r;
}

/* values as a PostgreSQL array literal: {"v1","v2"}, '"' and '\' escaped.
 * Owned; NULL when out of memory. */
static char *text_array(const char *const *values, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++) {
        len += 3 + 2 * strlen(values[i]); /* bounded: n <= 1000, each <= TKS_VALUE_MAX */
    }
    char *out = malloc(len);
    if (out == NULL) {
        return NULL;
    }
    char *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        *p++ = '"';
        for (const char *c = values[i]; *c; c++) {
            if (*c == '"' || *c == '\\') {
                *p++ = '\\';
            }
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* One INSERT for the whole batch; the values it did not insert (revoked
 * already: rare) are revised one by one, as pg_revoke does, in the same
 * transaction. */
static tks_result pg_revoke_batch(tks_store *s, enum tks_revocation_kind kind, const char *const *values, size_t n,
                                  const char *reason, int64_t now, int64_t until, size_t *added)
{
    *added = 0;
    char *arr = text_array(values, n);
    const char **got = calloc(n, sizeof *got);
    if (arr == NULL || got == NULL) {
        free(arr);
        free(got);
        tksi_seterr(s, "out of memory revoking a batch");
        return TKS_ERR;
    }
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        free(arr);
        free(got);
        return r;
    }
    r = tx_begin(s, pc);
    PGresult *res = NULL;
    size_t n_got = 0;
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        p_i64(&a, (int64_t)kind);
        p_text(&a, arr);
        p_text(&a, reason);
        p_i64(&a, now);
        p_i64(&a, until);
        r = exec_stmt(s, pc, ST_REVOCATION_INSERT_MANY, &a, 1, "recording revocations", &res);
    }
    if (r == TKS_OK) {
        int rows = PQntuples(res);
        for (int i = 0; i < rows && n_got < n; i++) {
            got[n_got++] = PQgetvalue(res, i, 0); /* text, NUL-terminated, in res */
        }
        if (n_got < n) {
            qsort(got, n_got, sizeof *got, cmp_str);
            for (size_t i = 0; i < n && r == TKS_OK; i++) {
                if (bsearch(&values[i], got, n_got, sizeof *got, cmp_str) == NULL) {
                    r = revise_revocation(s, pc, kind, values[i], now, until);
                }
            }
        }
    }
    PQclear(res);
    if (r == TKS_OK) {
        r = notify(s, pc, "r");
    }
    r = tx_end(s, pc, r);
    release_conn(s, pc);
    free(arr);
    free(got);
    *added = r == TKS_OK ? n_got : 0;
    return r;
}

static tks_result pg_revocation_get(tks_store *s, enum tks_revocation_kind kind, const char *value, int64_t now,
                                    tks_revocation *out)
{
    struct params a = {.n = 0};
    p_i64(&a, (int64_t)kind);
    p_text(&a, value);
    p_i64(&a, now);
    return get1(s, ST_REVOCATION_GET, &a, read_revocation_v, out, "looking up a revocation");
}

static int read_count(tks_store *s, const PGresult *r, int row, void *out)
{
    return get_i64(s, r, row, 0, "count(revocations)", (int64_t *)out);
}

static tks_result pg_revocations_count(tks_store *s, int64_t now, size_t *n)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    int64_t c = 0;
    tks_result r = get1(s, ST_REVOCATION_COUNT, &a, read_count, &c, "counting revocations");
    if (r == TKS_OK && c < 0) {
        r = TKS_ERR;
    }
    *n = r == TKS_OK ? (size_t)c : 0;
    return r == TKS_NOT_FOUND ? TKS_ERR : r;
}

static int read_revocation_v(tks_store *s, const PGresult *r, int row, void *out)
{
    return read_revocation(s, r, row, out);
}

static tks_result pg_revocation_page(tks_store *s, int64_t after_seq, int64_t now, tks_revocation *rows, size_t cap,
                                     size_t *n)
{
    struct params a = {.n = 0};
    p_i64(&a, after_seq);
    p_i64(&a, now);
    p_i64(&a, (int64_t)cap);
    tks_result r =
        page(s, ST_REVOCATION_PAGE, &a, read_revocation_v, rows, sizeof *rows, cap, n, "listing revocations");
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result pg_revocation_changes(tks_store *s, int64_t cursor, int64_t after_key, int64_t now,
                                        tks_revocation *rows, size_t cap, size_t *n, int64_t *next_cursor,
                                        int64_t *last_key)
{
    /* The position first (an earlier snapshot than the rows': everything
     * it does not rule out is read below), from the first page only. */
    if (after_key == 0) {
        int64_t xmin = 0;
        tks_result r = get1(s, ST_REVOCATION_XMIN, NULL, read_generation, &xmin, "reading the oldest transaction");
        if (r != TKS_OK) {
            return r == TKS_NOT_FOUND ? TKS_ERR : r;
        }
        *next_cursor = xmin > cursor ? xmin : cursor;
    }
    struct params a = {.n = 0};
    p_i64(&a, cursor);
    p_i64(&a, after_key);
    p_i64(&a, now);
    p_i64(&a, (int64_t)cap);
    tks_result r = page(s, ST_REVOCATION_CHANGES, &a, read_revocation_v, rows, sizeof *rows, cap, n,
                        "catching up with revocations");
    if (r != TKS_OK) {
        *n = 0;
        return r;
    }
    *last_key = *n > 0 ? rows[*n - 1].seq : after_key;
    return TKS_OK;
}

static tks_result pg_revocations_purge(tks_store *s, int64_t now)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    return run1(s, ST_REVOCATION_PURGE, &a, 1, "purging revocations", NULL);
}

/* ---- failed-attempt counters -------------------------------------------------- */

static tks_result pg_attempts_fail(tks_store *s, const uint64_t *keys, size_t n, const uint32_t *at_least, int64_t now,
                                   int64_t window, uint32_t *failures)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    for (size_t i = 0; r == TKS_OK && i < n; i++) {
        struct params a = {.n = 0};
        p_i64(&a, (int64_t)keys[i]);
        p_i64(&a, now);
        p_i64(&a, window);
        p_i64(&a, (int64_t)at_least[i]);
        PGresult *res = NULL;
        r = exec_stmt(s, pc, ST_ATTEMPT_FAIL, &a, 1, "counting a failed attempt", &res);
        int64_t f = 0;
        if (r == TKS_OK && (PQntuples(res) != 1 || get_i64(s, res, 0, 0, "attempts.failures", &f) != 0)) {
            r = TKS_ERR;
        }
        PQclear(res);
        failures[i] = f < 0 ? 0 : f > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)f;
    }
    r = tx_end(s, pc, r);
    release_conn(s, pc);
    return r;
}

static tks_result pg_attempts_block(tks_store *s, const uint64_t *keys, size_t n, const int64_t *until)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    for (size_t i = 0; r == TKS_OK && i < n; i++) {
        struct params a = {.n = 0};
        p_i64(&a, (int64_t)keys[i]);
        p_i64(&a, until[i]);
        PGresult *res = NULL;
        r = exec_stmt(s, pc, ST_ATTEMPT_BLOCK, &a, 1, "blocking a guesser", &res);
        PQclear(res);
    }
    if (r == TKS_OK) {
        r = notify(s, pc, "b"); /* other instances refuse the key at once */
    }
    r = tx_end(s, pc, r);
    release_conn(s, pc);
    return r;
}

/* Runs `id` and calls fn(key, blocked_until, ud) for each row (non-zero
 * stops): the reads of pg_attempts_get and pg_attempts_live. */
static tks_result attempt_rows(tks_store *s, enum stmt_id id, const struct params *a,
                               int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    PGresult *res = NULL;
    r = exec_stmt(s, pc, id, a, 0, "reading failed attempts", &res);
    for (int row = 0; r == TKS_OK && row < PQntuples(res); row++) {
        int64_t key = 0, until = 0;
        if (get_i64(s, res, row, 0, "attempts.key", &key) != 0 ||
            get_i64(s, res, row, 1, "attempts.blocked_until", &until) != 0) {
            r = TKS_ERR;
            break;
        }
        if (fn((uint64_t)key, until, ud) != 0) {
            break;
        }
    }
    PQclear(res);
    release_conn(s, pc);
    return r;
}

static tks_result pg_attempts_get(tks_store *s, const uint64_t *keys, size_t n, int64_t *blocked_until)
{
    struct params a = {.n = 0};
    for (size_t i = 0; i < TKS_ATTEMPT_KEYS; i++) {
        p_i64(&a, (int64_t)keys[i < n ? i : 0]);
    }
    struct tksi_wanted w = {keys, n, blocked_until};
    return attempt_rows(s, ST_ATTEMPT_GET, &a, tksi_take_wanted, &w);
}

static tks_result pg_attempts_clear(tks_store *s, uint64_t key)
{
    struct params a = {.n = 0};
    p_i64(&a, (int64_t)key);
    return run1(s, ST_ATTEMPT_CLEAR, &a, 1, "clearing failed attempts", NULL);
}

static tks_result pg_attempts_live(tks_store *s, int64_t now, int64_t window, size_t max,
                                   int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    p_i64(&a, window);
    p_i64(&a, (int64_t)max);
    return attempt_rows(s, ST_ATTEMPT_LIVE, &a, fn, ud);
}

static tks_result pg_attempts_purge(tks_store *s, int64_t now, int64_t window)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    p_i64(&a, window);
    return run1(s, ST_ATTEMPT_PURGE, &a, 1, "purging failed attempts", NULL);
}

/* ---- audit, users, sessions ------------------------------------------------------ */

static tks_result pg_audit(tks_store *s, int64_t now, const char *kind, const char *client_id, const char *ip,
                           const char *detail)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    p_text(&a, kind);
    p_text(&a, client_id);
    p_text(&a, ip);
    p_text(&a, detail);
    return run1(s, ST_AUDIT_INSERT, &a, 1, "recording an audit event", NULL);
}

static int read_audit_v(tks_store *s, const PGresult *r, int row, void *out)
{
    return read_audit(s, r, row, out);
}

static tks_result pg_audit_page(tks_store *s, int64_t before_id, tksi_audit_row *rows, size_t cap, size_t *n)
{
    struct params a = {.n = 0};
    p_i64(&a, before_id);
    p_i64(&a, (int64_t)cap);
    tks_result r = page(s, ST_AUDIT_PAGE, &a, read_audit_v, rows, sizeof *rows, cap, n, "listing audit events");
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

/* The profile columns, in USER_COLS order. */
static void p_profile(struct params *a, const tks_user *u)
{
    p_text(a, u->name);
    p_text(a, u->given_name);
    p_text(a, u->family_name);
    p_text(a, u->preferred_username);
    p_text(a, u->email);
    p_i64(a, u->email_verified != 0);
}

static tks_result pg_user_insert(tks_store *s, const tks_user *u)
{
    struct params a = {.n = 0};
    p_text(&a, u->id);
    p_text(&a, u->pwhash);
    p_i64(&a, u->disabled != 0);
    p_i64(&a, u->created_at);
    p_i64(&a, u->password_changed_at);
    p_profile(&a, u);
    return run1(s, ST_USER_INSERT, &a, 1, "adding a user", NULL);
}

static tks_result pg_user_set_profile(tks_store *s, const tks_user *u)
{
    struct params a = {.n = 0};
    p_text(&a, u->id);
    p_profile(&a, u);
    return change1(s, ST_USER_SET_PROFILE, &a, "changing a user's profile");
}

static tks_result pg_user_get(tks_store *s, const char *id, tks_user *out)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    return get1(s, ST_USER_GET, &a, read_user, out, "reading a user");
}

static tks_result pg_user_set_password(tks_store *s, const char *id, const char *pwhash, int64_t now)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    p_text(&a, pwhash);
    p_i64(&a, now);
    return change1(s, ST_USER_SET_PASSWORD, &a, "changing a user's password");
}

static tks_result pg_user_set_disabled(tks_store *s, const char *id, int disabled)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    p_i64(&a, disabled != 0);
    return change1(s, ST_USER_SET_DISABLED, &a, "disabling a user");
}

static tks_result pg_user_delete(tks_store *s, const char *id)
{
    struct params a = {.n = 0};
    p_text(&a, id);
    return change1(s, ST_USER_DELETE, &a, "deleting a user");
}

static tks_result pg_user_page(tks_store *s, const char *after, tks_user *rows, size_t cap, size_t *n)
{
    struct params a = {.n = 0};
    p_text(&a, after);
    p_i64(&a, (int64_t)cap);
    tks_result r = page(s, ST_USER_PAGE, &a, read_user, rows, sizeof *rows, cap, n, "listing users");
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result pg_session_insert(tks_store *s, const tks_session *se)
{
    struct params a = {.n = 0};
    p_blob(&a, se->id_hash, sizeof se->id_hash);
    p_text(&a, se->sid);
    p_text(&a, se->user_id);
    p_i64(&a, se->created_at);
    p_i64(&a, se->last_seen);
    p_i64(&a, se->ended_at);
    return run1(s, ST_SESSION_INSERT, &a, 1, "adding a session", NULL);
}

static tks_result pg_session_get(tks_store *s, const unsigned char id_hash[32], tks_session *out)
{
    struct params a = {.n = 0};
    p_blob(&a, id_hash, 32);
    return get1(s, ST_SESSION_GET, &a, read_session, out, "reading a session");
}

static tks_result pg_session_touch(tks_store *s, const unsigned char id_hash[32], int64_t now)
{
    struct params a = {.n = 0};
    p_blob(&a, id_hash, 32);
    p_i64(&a, now);
    return change1(s, ST_SESSION_TOUCH, &a, "touching a session");
}

static tks_result pg_session_end(tks_store *s, const char *sid, int64_t now)
{
    struct params a = {.n = 0};
    p_text(&a, sid);
    p_i64(&a, now);
    return change1(s, ST_SESSION_END, &a, "ending a session");
}

static tks_result pg_session_end_user(tks_store *s, const char *user_id, int64_t now,
                                      int (*fn)(const char *sid, void *ud), void *ud)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    struct params a = {.n = 0};
    p_text(&a, user_id);
    PGresult *sids = NULL;
    r = exec_stmt(s, pc, ST_SESSION_SIDS_OF_USER, &a, 0, "listing a user's sessions", &sids);
    if (r == TKS_OK) {
        struct params e = {.n = 0};
        p_text(&e, user_id);
        p_i64(&e, now);
        PGresult *res = NULL;
        r = exec_stmt(s, pc, ST_SESSION_END_USER, &e, 1, "ending a user's sessions", &res);
        PQclear(res);
    }
    release_conn(s, pc); /* no connection held during the callbacks */
    for (int i = 0; r == TKS_OK && i < PQntuples(sids); i++) {
        char sid[TKS_SID_MAX + 1];
        if (PQgetlength(sids, i, 0) > TKS_SID_MAX || get_text(s, sids, i, 0, "sessions.sid", sid, sizeof sid) != 0) {
            continue; /* not a sid we wrote */
        }
        if (fn(sid, ud) != 0) {
            break;
        }
    }
    PQclear(sids);
    return r;
}

/* ---- single-use rows: codes and refresh tokens ----------------------------------- */

static tks_result insert_refresh(tks_store *s, struct pgconn *pc, const tks_refresh *t)
{
    struct params a = {.n = 0};
    p_blob(&a, t->hash, sizeof t->hash);
    p_blob(&a, t->parent, sizeof t->parent);
    p_text(&a, t->sid);
    p_text(&a, t->client_id);
    p_text(&a, t->user_id);
    p_text(&a, t->scope);
    p_text(&a, t->audience);
    p_i64(&a, t->created_at);
    p_i64(&a, t->expires_at);
    p_i64(&a, t->used_at);
    p_i64(&a, t->auth_time);
    PGresult *res = NULL;
    tks_result r = exec_stmt(s, pc, ST_REFRESH_INSERT, &a, 1, "adding a refresh token", &res);
    PQclear(res);
    return r;
}

/* As sqlite.c's use_once: marks `hash` used if unused, reads it back, and
 * when it was unused inserts `next`, in one transaction. */
static tks_result use_once(tks_store *s, enum stmt_id use, enum stmt_id get, const unsigned char hash[32], int64_t now,
                           const tks_refresh *next, int (*reader)(tks_store *s, const PGresult *r, int row, void *out),
                           void *out, const char *what)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    int was_unused = 0;
    char xid[24] = ""; /* of this transaction, when it spends the row */
    PGresult *res = NULL;
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        p_blob(&a, hash, 32);
        p_i64(&a, now);
        r = exec_stmt(s, pc, use, &a, 1, what, &res);
        was_unused = r == TKS_OK && changed(res) == 1;
        if (was_unused &&
            (PQntuples(res) != 1 || PQgetlength(res, 0, 0) < 1 || (size_t)PQgetlength(res, 0, 0) >= sizeof xid)) {
            tksi_seterr(s, "%s: PostgreSQL did not return the transaction id", what);
            r = TKS_ERR;
        } else if (was_unused) {
            memcpy(xid, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        }
        PQclear(res);
    }
    tks_result found = r;
    if (r == TKS_OK) {
        struct params a = {.n = 0};
        p_blob(&a, hash, 32);
        found = exec_stmt(s, pc, get, &a, 0, what, &res);
        if (found == TKS_OK) {
            found = PQntuples(res) == 0 ? TKS_NOT_FOUND : reader(s, res, 0, out) == 0 ? TKS_OK : TKS_ERR;
        }
        PQclear(res);
    }
    if (found == TKS_NOT_FOUND && was_unused) {
        tksi_seterr(s, "%s: the row vanished inside its transaction", what);
        found = TKS_ERR;
    }
    if (found == TKS_OK && was_unused && next != NULL) {
        found = insert_refresh(s, pc, next);
        if (found == TKS_NOT_FOUND || found == TKS_EXISTS) {
            found = TKS_ERR; /* its user or client went away, or a hash collision */
        }
    }
    /* Commit only what can be answered; TKS_NOT_FOUND changed nothing. A
     * spend is committed by commit_known: never reported lost if it took. */
    if (found == TKS_OK && was_unused) {
        r = commit_known(s, pc, xid, what);
    } else {
        r = tx_end(s, pc, found == TKS_OK || found == TKS_NOT_FOUND ? TKS_OK : found);
    }
    release_conn(s, pc);
    if (r != TKS_OK) {
        return r;
    }
    if (found != TKS_OK) {
        return found;
    }
    return was_unused ? TKS_OK : TKS_EXISTS;
}

/* The code and its session's client, in one transaction, as in sqlite.c
 * (write points: BEGIN, the code, the session's client, COMMIT). */
static tks_result pg_code_insert(tks_store *s, const tks_code *c)
{
    struct params a = {.n = 0};
    p_blob(&a, c->hash, sizeof c->hash);
    p_text(&a, c->client_id);
    p_text(&a, c->user_id);
    p_text(&a, c->sid);
    p_text(&a, c->redirect_uri);
    p_text(&a, c->challenge);
    p_text(&a, c->scope);
    p_text(&a, c->audience);
    p_i64(&a, c->created_at);
    p_i64(&a, c->expires_at);
    p_i64(&a, c->used_at);
    p_text(&a, c->nonce);
    p_i64(&a, c->auth_time);
    struct params b = {.n = 0};
    p_text(&b, c->sid);
    p_text(&b, c->client_id);
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = tx_begin(s, pc);
    PGresult *res = NULL;
    if (r == TKS_OK) {
        r = exec_stmt(s, pc, ST_CODE_INSERT, &a, 1, "adding an authorization code", &res);
        PQclear(res);
    }
    if (r == TKS_OK) {
        r = exec_stmt(s, pc, ST_SESSION_CLIENT_ADD, &b, 1, "recording the session's client", &res);
        PQclear(res);
    }
    r = tx_end(s, pc, r);
    release_conn(s, pc);
    return r;
}

static tks_result pg_code_exchange(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *first,
                                   tks_code *out)
{
    return use_once(s, ST_CODE_USE, ST_CODE_GET, hash, now, first, read_code, out, "redeeming an authorization code");
}

static tks_result pg_code_get(tks_store *s, const unsigned char hash[32], tks_code *out)
{
    struct params a = {.n = 0};
    p_blob(&a, hash, 32);
    return get1(s, ST_CODE_GET, &a, read_code, out, "reading an authorization code");
}

static tks_result pg_code_purge(tks_store *s, int64_t now)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    return run1(s, ST_CODE_PURGE, &a, 1, "purging authorization codes", NULL);
}

static tks_result pg_refresh_insert(tks_store *s, const tks_refresh *t)
{
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    r = insert_refresh(s, pc, t);
    release_conn(s, pc);
    return r;
}

static tks_result pg_refresh_rotate(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *next,
                                    tks_refresh *out)
{
    return use_once(s, ST_REFRESH_USE, ST_REFRESH_GET, hash, now, next, read_refresh, out, "using a refresh token");
}

static tks_result pg_refresh_get(tks_store *s, const unsigned char hash[32], tks_refresh *out)
{
    struct params a = {.n = 0};
    p_blob(&a, hash, 32);
    return get1(s, ST_REFRESH_GET, &a, read_refresh, out, "reading a refresh token");
}

static tks_result pg_refresh_purge(tks_store *s, int64_t now)
{
    struct params a = {.n = 0};
    p_i64(&a, now);
    return run1(s, ST_REFRESH_PURGE, &a, 1, "purging refresh tokens", NULL);
}

/* ---- schema 5: sessions by sid, their clients, consents -------------------------- */

static tks_result pg_session_get_sid(tks_store *s, const char *sid, tks_session *out)
{
    struct params a = {.n = 0};
    p_text(&a, sid);
    return get1(s, ST_SESSION_GET_SID, &a, read_session, out, "reading a session");
}

static tks_result pg_session_client_page(tks_store *s, const char *sid, const char *after, tksi_client_id *rows,
                                         size_t cap, size_t *n)
{
    struct params a = {.n = 0};
    p_text(&a, sid);
    p_text(&a, after);
    p_i64(&a, (int64_t)cap);
    tks_result r =
        page(s, ST_SESSION_CLIENT_PAGE, &a, read_client_id, rows, sizeof *rows, cap, n, "listing a session's clients");
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result pg_consent_put(tks_store *s, const tks_consent *c)
{
    struct params a = {.n = 0};
    p_text(&a, c->user_id);
    p_text(&a, c->client_id);
    p_text(&a, c->scope);
    p_i64(&a, c->granted_at);
    return run1(s, ST_CONSENT_PUT, &a, 1, "recording a consent", NULL);
}

static tks_result pg_consent_get(tks_store *s, const char *user_id, const char *client_id, tks_consent *out)
{
    struct params a = {.n = 0};
    p_text(&a, user_id);
    p_text(&a, client_id);
    return get1(s, ST_CONSENT_GET, &a, read_consent, out, "reading a consent");
}

static tks_result pg_consent_page(tks_store *s, const char *user_id, const char *after, tks_consent *rows, size_t cap,
                                  size_t *n)
{
    struct params a = {.n = 0};
    p_text(&a, user_id);
    p_text(&a, after);
    p_i64(&a, (int64_t)cap);
    tks_result r = page(s, ST_CONSENT_PAGE, &a, read_consent, rows, sizeof *rows, cap, n, "listing consents");
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result pg_consent_delete(tks_store *s, const char *user_id, const char *client_id, int *n)
{
    struct params a = {.n = 0};
    p_text(&a, user_id);
    if (client_id != NULL) {
        p_text(&a, client_id);
    }
    *n = 0;
    return run1(s, client_id != NULL ? ST_CONSENT_DELETE : ST_CONSENT_DELETE_ALL, &a, 1, "deleting consents", n);
}

/* ---- watching other instances (LISTEN / NOTIFY) ------------------------------------- */

static void *watcher(void *arg)
{
    tks_store *s = arg;
    struct pg *p = pg_of(s);
    PGconn *c = NULL;
    int missed = 0; /* changes may have been missed: tell the caller to catch up on everything */
    while (!atomic_load(&p->watch_stop)) {
        if (c == NULL) {
            char err[512];
            c = connect_one(p, err, sizeof err);
            if (c != NULL) {
                PGresult *r = PQexec(c, "LISTEN " CHANNEL);
                if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
                    PQfinish(c);
                    c = NULL;
                }
                PQclear(r);
            }
            if (c == NULL) {
                missed = 1;
                for (int i = 0; i < 4 && !atomic_load(&p->watch_stop); i++) {
                    struct timespec ts = {0, 250 * 1000 * 1000}; /* retry each second, stop within 0.25 s */
                    nanosleep(&ts, NULL);
                }
                continue;
            }
            if (missed) {
                p->watch_fn(TKS_CHANGE_ALL, p->watch_ud);
                missed = 0;
            }
        }
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        int pr = poll(&pfd, 1, 250);
        if (pr < 0 && errno != EINTR) {
            PQfinish(c);
            c = NULL;
            missed = 1;
            continue;
        }
        if (pr <= 0) {
            continue;
        }
        if (!PQconsumeInput(c)) {
            PQfinish(c);
            c = NULL;
            missed = 1;
            continue;
        }
        int what = 0;
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            char k = n->extra != NULL ? n->extra[0] : '\0';
            what |= k == 'k'   ? TKS_CHANGE_KEYS
                    : k == 'c' ? TKS_CHANGE_CLIENTS
                    : k == 'b' ? TKS_CHANGE_ATTEMPTS
                               : TKS_CHANGE_REVOCATIONS;
            PQfreemem(n);
        }
        if (what != 0) {
            p->watch_fn(what, p->watch_ud);
        }
    }
    if (c != NULL) {
        PQfinish(c);
    }
    return NULL;
}

static tks_result pg_watch(tks_store *s, void (*fn)(int what, void *ud), void *ud)
{
    struct pg *p = pg_of(s);
    pthread_mutex_lock(&p->watch_mu);
    if (p->watching) {
        atomic_store(&p->watch_stop, 1);
        pthread_join(p->watch_thread, NULL);
        p->watching = 0;
    }
    tks_result r = TKS_OK;
    if (fn != NULL) {
        p->watch_fn = fn;
        p->watch_ud = ud;
        atomic_store(&p->watch_stop, 0);
        if (pthread_create(&p->watch_thread, NULL, watcher, s) != 0) {
            tksi_seterr(s, "cannot start the thread that listens for changes");
            r = TKS_ERR;
        } else {
            p->watching = 1;
        }
    }
    pthread_mutex_unlock(&p->watch_mu);
    return r;
}

/* ---- retention ------------------------------------------------------------ */

static tks_result pg_purge_batch(tks_store *s, const tks_purge *p, size_t limit, size_t *n)
{
    struct params a = {.n = 0};
    int64_t lim = (int64_t)limit;
    enum stmt_id id;
    const char *what;
    int counts = 0; /* the statement answers SELECT count(*) */
    switch (p->kind) {
    case TKS_PURGE_REVOCATIONS:
        id = ST_PURGE_REVOCATIONS;
        what = "purging revocations";
        p_i64(&a, p->before);
        p_i64(&a, lim);
        break;
    case TKS_PURGE_CODES:
        id = ST_PURGE_CODES;
        what = "purging authorization codes";
        p_i64(&a, p->before);
        p_i64(&a, lim);
        break;
    case TKS_PURGE_REFRESH:
        id = ST_PURGE_REFRESH;
        what = "purging expired refresh tokens";
        counts = 1;
        p_i64(&a, p->before);
        p_i64(&a, lim);
        break;
    case TKS_PURGE_REFRESH_REVOKED:
        id = ST_PURGE_REFRESH_REVOKED;
        what = "purging refresh tokens of revoked sign-ins";
        counts = 1;
        p_i64(&a, p->from);
        p_i64(&a, p->before);
        p_i64(&a, lim);
        break;
    case TKS_PURGE_ATTEMPTS:
        id = ST_PURGE_ATTEMPTS;
        what = "purging failed attempts";
        p_i64(&a, p->before);
        p_i64(&a, lim);
        p_i64(&a, p->window);
        break;
    case TKS_PURGE_AUDIT:
        id = ST_PURGE_AUDIT;
        what = "purging audit events";
        p_i64(&a, p->before);
        p_i64(&a, lim);
        break;
    case TKS_PURGE_SESSIONS:
    default:
        id = ST_PURGE_SESSIONS;
        what = "purging ended sessions";
        counts = 1;
        p_i64(&a, p->before);
        p_i64(&a, p->before - p->idle);
        p_i64(&a, p->before - p->max_age);
        p_i64(&a, lim);
        break;
    }
    tks_result r = TKS_OK;
    struct pgconn *pc = acquire(s, &r);
    if (pc == NULL) {
        return r;
    }
    PGresult *res = NULL;
    r = exec_stmt(s, pc, id, &a, 1, what, &res);
    if (r == TKS_OK) {
        if (counts) {
            int64_t c = 0;
            if (PQntuples(res) != 1 || get_i64(s, res, 0, 0, what, &c) != 0 || c < 0) {
                tksi_seterr(s, "%s: an unexpected answer", what);
                r = TKS_ERR;
            } else {
                *n = (size_t)c;
            }
        } else {
            int c = changed(res);
            *n = c > 0 ? (size_t)c : 0;
        }
    }
    PQclear(res);
    release_conn(s, pc);
    return r;
}

static const tksi_backend PG_BACKEND = {
    .name = "postgres",
    .close = pg_close,
    .ping = pg_ping,
    .probe_write = pg_probe_write,
    .client_insert = pg_client_insert,
    .client_get = pg_client_get,
    .client_set_disabled = pg_client_set_disabled,
    .client_delete = pg_client_delete,
    .client_page = pg_client_page,
    .key_insert = pg_key_insert,
    .key_page = pg_key_page,
    .key_set_state = pg_key_set_state,
    .key_delete = pg_key_delete,
    .key_generation = pg_key_generation,
    .key_rotate = pg_key_rotate,
    .revoke = pg_revoke,
    .revoke_batch = pg_revoke_batch,
    .revocation_get = pg_revocation_get,
    .revocations_count = pg_revocations_count,
    .revocation_page = pg_revocation_page,
    .revocations_purge = pg_revocations_purge,
    .revocation_changes = pg_revocation_changes,
    .watch = pg_watch,
    .attempts_fail = pg_attempts_fail,
    .attempts_block = pg_attempts_block,
    .attempts_get = pg_attempts_get,
    .attempts_clear = pg_attempts_clear,
    .attempts_purge = pg_attempts_purge,
    .attempts_live = pg_attempts_live,
    .audit = pg_audit,
    .audit_page = pg_audit_page,
    .user_insert = pg_user_insert,
    .user_get = pg_user_get,
    .user_set_password = pg_user_set_password,
    .user_set_disabled = pg_user_set_disabled,
    .user_set_profile = pg_user_set_profile,
    .user_delete = pg_user_delete,
    .user_page = pg_user_page,
    .session_insert = pg_session_insert,
    .session_get = pg_session_get,
    .session_touch = pg_session_touch,
    .session_end = pg_session_end,
    .session_end_user = pg_session_end_user,
    .code_insert = pg_code_insert,
    .code_exchange = pg_code_exchange,
    .code_get = pg_code_get,
    .code_purge = pg_code_purge,
    .refresh_insert = pg_refresh_insert,
    .refresh_rotate = pg_refresh_rotate,
    .refresh_get = pg_refresh_get,
    .refresh_purge = pg_refresh_purge,
    .session_get_sid = pg_session_get_sid,
    .session_client_page = pg_session_client_page,
    .consent_put = pg_consent_put,
    .consent_get = pg_consent_get,
    .consent_page = pg_consent_page,
    .consent_delete = pg_consent_delete,
    .purge_batch = pg_purge_batch,
};

/* ---- opening and migrating ------------------------------------------------------- */

static void free_pg(struct pg *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (p->conns[i].c != NULL) {
            PQfinish(p->conns[i].c);
        }
    }
    free(p->conns);
    if (p->password != NULL) {
        memset(p->password, 0, strlen(p->password));
        free(p->password);
    }
    if (p->url_password != NULL) {
        memset(p->url_password, 0, strlen(p->url_password));
        free(p->url_password);
    }
    if (p->conninfo != NULL) {
        memset(p->conninfo, 0, strlen(p->conninfo));
        free(p->conninfo);
    }
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->watch_mu);
    free(p);
}

static void pg_close(tks_store *s)
{
    struct pg *p = pg_of(s);
    (void)pg_watch(s, NULL, NULL);
    free_pg(p);
    s->impl = NULL;
}

/* Runs simple SQL on c; 0, or -1 with the message in err. */
static int exec_simple(PGconn *c, const char *sql, const char *what, char *err, size_t err_cap)
{
    PGresult *r = PQexec(c, sql);
    int ok = r != NULL && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok) {
        const char *m = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        snprintf(err, err_cap, "%s: %s", what, m != NULL ? m : PQerrorMessage(c));
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* Brings the schema to `target`, all in one transaction under an advisory
 * lock (instances starting together wait for each other, then find the
 * work done). */
static tks_result migrate(PGconn *c, int target, int *version, char *err, size_t err_cap)
{
    if (exec_simple(c, "BEGIN", "starting the migration", err, err_cap) != 0 ||
        exec_simple(c, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", "locking for the migration", err, err_cap) !=
            0 ||
        exec_simple(c,
                    "CREATE TABLE IF NOT EXISTS tokend_schema (version BIGINT NOT NULL);"
                    "INSERT INTO tokend_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM tokend_schema)",
                    "creating the schema version table", err, err_cap) != 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        return TKS_ERR;
    }
    PGresult *r = PQexec(c, "SELECT version FROM tokend_schema");
    long long v = -1;
    if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
    PQclear(r);
    if (v < 0) {
        snprintf(err, err_cap, "the store's tokend_schema table is unreadable (not exactly one version row)");
        PQclear(PQexec(c, "ROLLBACK"));
        return TKS_ERR;
    }
    if (v > SCHEMA_LATEST) {
        snprintf(err, err_cap, "the store is at schema %lld; this tokend knows up to %d", v, SCHEMA_LATEST);
        PQclear(PQexec(c, "ROLLBACK"));
        return TKS_ERR;
    }
    if (v > target) {
        snprintf(err, err_cap, "the store is at schema %lld, past the %d asked for", v, target);
        PQclear(PQexec(c, "ROLLBACK"));
        return TKS_ERR;
    }
    for (long long i = v; i < target; i++) {
        char what[64];
        snprintf(what, sizeof what, "migrating the store to schema %lld", i + 1);
        if (exec_simple(c, MIGRATIONS[i], what, err, err_cap) != 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            return TKS_ERR;
        }
        char set[64];
        snprintf(set, sizeof set, "UPDATE tokend_schema SET version = %lld", i + 1); /* our own number */
        if (exec_simple(c, set, what, err, err_cap) != 0) {
            PQclear(PQexec(c, "ROLLBACK"));
            return TKS_ERR;
        }
    }
    if (exec_simple(c, "COMMIT", "committing the migration", err, err_cap) != 0) {
        return TKS_ERR;
    }
    *version = target;
    return TKS_OK;
}

tks_result tksi_pg_open_at(tks_store *s, const char *conninfo, const char *password, unsigned pool, int target,
                           char *err, size_t err_cap)
{
    char dummy[1];
    if (err == NULL || err_cap == 0) {
        err = dummy;
        err_cap = sizeof dummy;
    }
    if (target < 1 || target > SCHEMA_LATEST) {
        snprintf(err, err_cap, "no schema %d (this tokend knows 1 to %d)", target, SCHEMA_LATEST);
        return TKS_ERR;
    }
    if (!PQisthreadsafe()) {
        snprintf(err, err_cap, "this libpq was built without thread support");
        return TKS_ERR;
    }
    if (pool == 0) {
        pool = POOL_DEFAULT;
    }
    if (pool > POOL_MAX) {
        snprintf(err, err_cap, "a pool of %u connections is more than %d", pool, POOL_MAX);
        return TKS_ERR;
    }
    struct pg *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, err_cap, "out of memory opening the store");
        return TKS_ERR;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    pthread_mutex_init(&p->watch_mu, NULL);
    /* libpq knows the schemes in lower case only: "POSTGRES://" would be
     * read as key/value text (and its password echoed in the error) */
    p->conninfo = strdup(conninfo);
    if (p->conninfo != NULL) {
        char *sep = strstr(p->conninfo, "://");
        for (char *q = p->conninfo; sep != NULL && q < sep; q++) {
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        }
    }
    p->password = password != NULL ? strdup(password) : NULL;
    p->conns = calloc(pool, sizeof *p->conns);
    p->n = pool;
    if (p->conninfo == NULL || (password != NULL && p->password == NULL) || p->conns == NULL) {
        snprintf(err, err_cap, "out of memory opening the store");
        free_pg(p);
        return TKS_ERR;
    }
    /* A connection string that does not parse is a configuration error, not
     * an unreachable server: say so (without echoing it) and stop. */
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(p->conninfo, &perr);
    if (opts == NULL) {
        snprintf(err, err_cap, "the store URL is not a PostgreSQL connection string libpq understands%s",
                 perr != NULL && strstr(perr, "invalid connection option") != NULL ? " (an unknown option)" : "");
        PQfreemem(perr);
        free_pg(p);
        return TKS_ERR;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0') {
            p->url_password = strdup(o->val);
        }
    }
    PQconninfoFree(opts);
    /* The first connection migrates and then joins the pool. */
    PGconn *c = connect_one(p, err, err_cap);
    if (c == NULL) {
        free_pg(p);
        return TKS_BUSY;
    }
    int version = 0;
    tks_result r = migrate(c, target, &version, err, err_cap);
    scrub_all(p, err);
    if (r != TKS_OK) {
        PQfinish(c);
        free_pg(p);
        return r;
    }
    p->conns[0].c = c;
    s->be = &PG_BACKEND;
    s->impl = p;
    s->schema_version = version;
    return TKS_OK;
}

tks_result tksi_pg_open(tks_store *s, const char *conninfo, const char *password, unsigned pool, char *err,
                        size_t err_cap)
{
    return tksi_pg_open_at(s, conninfo, password, pool, SCHEMA_LATEST, err, err_cap);
}
