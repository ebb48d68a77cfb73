/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sqlite.c — the SQLite 3 store backend (store.h, backend.h): the default,
 * zero set-up store of one tokend process ("sqlite://PATH").
 *
 * Invariants:
 *  - One connection per tks_store, used only with `mu` held, for a whole
 *    operation: that is what makes a multi-statement transaction atomic when
 *    several server threads share the store (SQLITE_OPEN_FULLMUTEX alone
 *    serialises single calls, not transactions; it stays as a second line).
 *  - Every SQL text is a constant in SQL[] or MIGRATIONS[]; values are only
 *    ever bound (SECURITY.md, STYLE.md). Statements are prepared once and
 *    reset after each use.
 *  - Writes that span statements run in BEGIN IMMEDIATE, so they take the
 *    write lock up front (the busy handler can wait for it; a read lock
 *    upgraded later could fail with SQLITE_BUSY without waiting).
 *  - Other processes on the same file (the CLI next to the server) are
 *    waited for up to BUSY_MS; SQLITE_BUSY / SQLITE_LOCKED then become
 *    TKS_BUSY (retry, or answer 503), never TKS_ERR.
 *  - A new database file is created 0600 before SQLite opens it (SQLite gives
 *    its -wal and -shm files the mode of the database file). The journal is
 *    WAL with synchronous=NORMAL: a power cut may lose the last commits, never
 *    consistency. Foreign keys are enforced; deleted rows are overwritten
 *    (secure_delete) so a deleted sealed key does not linger in free pages.
 *  - The schema is versioned by PRAGMA user_version: MIGRATIONS[i] takes the
 *    store from version i to i + 1 in one transaction, setting user_version
 *    itself. A store at a newer version than this binary knows is refused.
 *  - Values read back are checked against the limits of store.h / backend.h
 *    (and for a NUL byte) before they are copied: too long is TKS_ERR.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/backend.h"

#define BUSY_MS 5000

/* ---- schema -------------------------------------------------------------- */

/* MIGRATIONS[i] moves the schema from version i to i + 1. Append only: a
 * migration that has shipped is never edited. Each one ends by setting
 * user_version (a constant here, so nothing is ever formatted into SQL). */
static const char *const MIGRATIONS[] = {
    /* 1: the first schema. */
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
    "PRAGMA user_version = 1;",

    /* 2: user sign-in (authorization code + PKCE, rotating refresh tokens,
     * browser sessions). refresh_tokens is rebuilt: it gains user_id (a
     * foreign key to the new users table), scope and audience, and its
     * hashes become exactly 32 bytes. Schema 1 never wrote refresh tokens;
     * rows something else put there are carried over only if they fit the
     * new table, which needs their user to exist: the users table is new,
     * so in practice none does, and dropping them only means signing in
     * again. */
    "ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN is_public INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1));"
    "ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT 'client_credentials';"
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  pwhash TEXT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    "  created_at INTEGER NOT NULL DEFAULT 0,"
    "  password_changed_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE sessions ("
    "  id_hash BLOB PRIMARY KEY NOT NULL CHECK (typeof(id_hash) = 'blob' AND length(id_hash) = 32),"
    "  sid TEXT UNIQUE NOT NULL,"
    "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  ended_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX sessions_user ON sessions (user_id);"
    "CREATE TABLE codes ("
    "  hash BLOB PRIMARY KEY NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
    "  client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  sid TEXT NOT NULL,"
    "  redirect_uri TEXT NOT NULL,"
    "  challenge TEXT NOT NULL,"
    "  scope TEXT NOT NULL,"
    "  audience TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX codes_client ON codes (client_id);"
    "CREATE INDEX codes_user ON codes (user_id);"
    "CREATE INDEX codes_expires ON codes (expires_at);"
    "ALTER TABLE refresh_tokens RENAME TO refresh_tokens_v1;"
    "DROP INDEX refresh_tokens_sid;"
    "CREATE TABLE refresh_tokens ("
    "  hash BLOB PRIMARY KEY NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
    "  parent BLOB NOT NULL CHECK (typeof(parent) = 'blob' AND length(parent) = 32),"
    "  sid TEXT NOT NULL,"
    "  client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  scope TEXT NOT NULL DEFAULT '',"
    "  audience TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO refresh_tokens (hash, parent, sid, client_id, user_id, created_at, expires_at, used_at)"
    "  SELECT hash,"
    "    CASE WHEN typeof(parent) = 'blob' AND length(parent) = 32 THEN parent ELSE zeroblob(32) END,"
    "    sid, client_id, sub, created_at, expires_at, used_at"
    "  FROM refresh_tokens_v1"
    "  WHERE typeof(hash) = 'blob' AND length(hash) = 32"
    "    AND sub IN (SELECT id FROM users) AND client_id IN (SELECT id FROM clients);"
    "DROP TABLE refresh_tokens_v1;"
    "CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);"
    "CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);"
    "CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);"
    "CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);"
    "PRAGMA user_version = 2;",

    /* 3: fail-closed writes and introspection rights. clients.serves: the
     * audiences a client serves as a resource server (it may introspect
     * tokens issued for them, RFC 7662 section 4). meta.write_probe: the row
     * /readyz writes to learn that the store can still commit. */
    "ALTER TABLE clients ADD COLUMN serves TEXT NOT NULL DEFAULT '';"
    "INSERT INTO meta (key, value) VALUES ('write_probe', 0);"
    /* One active key and one next key at most, whoever writes: two
     * instances starting on an empty store cannot both create one. */
    "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 1;"
    "CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 0;"
    /* Failed-attempt counters shared by every process (store.h). */
    "CREATE TABLE attempts ("
    "  key INTEGER PRIMARY KEY,"
    "  window_start INTEGER NOT NULL,"
    "  failures INTEGER NOT NULL,"
    "  blocked_until INTEGER NOT NULL DEFAULT 0"
    ");"
    "PRAGMA user_version = 3;",

    /* 4: the users' profile, the OpenID Connect standard claims. */
    "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN given_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN family_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN preferred_username TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));"
    "PRAGMA user_version = 4;",

    /* 5: OpenID Connect. One active and one next key per alg (each alg has
     * its own ring: an ES256 ring and an RS256 ring side by side). */
    "DROP INDEX signing_keys_one_active;"
    "DROP INDEX signing_keys_one_next;"
    "CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE state = 1;"
    "CREATE UNIQUE INDEX signing_keys_one_next_per_alg ON signing_keys (alg) WHERE state = 0;"
    /* The nonce of the authorization request (single use per client among
     * stored codes; '' = none, never in conflict) and auth_time. */
    "ALTER TABLE codes ADD COLUMN nonce TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE codes ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX codes_client_nonce ON codes (client_id, nonce) WHERE nonce <> '';"
    "ALTER TABLE refresh_tokens ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;"
    /* The clients that were issued a code in a session, for back-channel
     * logout. No foreign key to sessions: a code may name a sid that has
     * no row (the authority's business, as for codes). */
    "CREATE TABLE session_clients ("
    "  sid TEXT NOT NULL,"
    "  client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  PRIMARY KEY (sid, client_id)"
    ");"
    "CREATE INDEX session_clients_client ON session_clients (client_id);"
    /* the codes already stored were issued in their sessions too */
    "INSERT INTO session_clients (sid, client_id) SELECT DISTINCT sid, client_id FROM codes;"
    "ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE clients ADD COLUMN consent INTEGER NOT NULL DEFAULT 0 CHECK (consent IN (0, 1));"
    /* What each user allowed each third-party client. */
    "CREATE TABLE consents ("
    "  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,"
    "  scope TEXT NOT NULL,"
    "  granted_at INTEGER NOT NULL,"
    "  PRIMARY KEY (user_id, client_id)"
    ");"
    "CREATE INDEX consents_client ON consents (client_id);"
    "PRAGMA user_version = 5;",

    /* 6: retention (issue 13 section 3). What the batched purges walk:
     * audit events by time, sessions by start (every session has ended by
     * start + --session-max), revocations by when they were made (the
     * revoked refresh families). */
    "CREATE INDEX audit_at ON audit (at);"
    "CREATE INDEX sessions_created ON sessions (created_at);"
    "CREATE INDEX revocations_revoked_at ON revocations (revoked_at);"
    "PRAGMA user_version = 6;",
};

#define SCHEMA_LATEST ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

/* ---- statements ---------------------------------------------------------- */

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
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
    ST_REVOCATION_FIND,
    ST_REVOCATION_INSERT,
    ST_REVOCATION_DELETE,
    ST_REVOCATION_SET_REVOKED_AT,
    ST_REVOCATION_PAGE,
    ST_REVOCATION_PURGE,
    ST_REVOCATION_MAX_SEQ,
    ST_REVOCATION_GET,
    ST_REVOCATION_COUNT,
    ST_KEY_RETIRE_ACTIVE,
    ST_KEY_ACTIVATE_NEXT,
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
    ST_PURGE_REVOCATIONS,
    ST_PURGE_CODES,
    ST_PURGE_REFRESH,
    ST_PURGE_REFRESH_REVOKED,
    ST_PURGE_ATTEMPTS,
    ST_PURGE_AUDIT,
    ST_PURGE_SESSIONS,
    ST_PURGE_SESSION_CLIENTS,
    ST_CONSENT_PUT,
    ST_CONSENT_GET,
    ST_CONSENT_PAGE,
    ST_CONSENT_DELETE,
    ST_CONSENT_DELETE_ALL,
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

static const char *const SQL[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_KEY_GENERATION] = "SELECT value FROM meta WHERE key = 'key_generation'",
    [ST_KEY_GENERATION_BUMP] = "UPDATE meta SET value = value + 1 WHERE key = 'key_generation'",
    [ST_WRITE_PROBE] = "UPDATE meta SET value = ?1 WHERE key = 'write_probe'",
    [ST_CLIENT_INSERT] = "INSERT INTO clients (" CLIENT_COLS
                         ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    [ST_CLIENT_GET] = "SELECT " CLIENT_COLS " FROM clients WHERE id = ?1",
    [ST_CLIENT_SET_DISABLED] = "UPDATE clients SET disabled = ?2 WHERE id = ?1",
    [ST_CLIENT_DELETE] = "DELETE FROM clients WHERE id = ?1",
    [ST_CLIENT_PAGE] = "SELECT " CLIENT_COLS " FROM clients WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_KEY_INSERT] = "INSERT INTO signing_keys (" KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_KEY_PAGE] = "SELECT " KEY_COLS " FROM signing_keys"
                    " WHERE created_at > ?1 OR (created_at = ?1 AND kid > ?2)"
                    " ORDER BY created_at, kid LIMIT ?3",
    /* Activation keeps the first activated_at; retiring keeps the first
     * retired_at but takes the new verify_until; back to next clears both. */
    [ST_KEY_SET_STATE] = "UPDATE signing_keys SET"
                         " activated_at = CASE ?2 WHEN 0 THEN 0"
                         "   WHEN 1 THEN (CASE WHEN state = 1 THEN activated_at ELSE ?3 END)"
                         "   ELSE activated_at END,"
                         " retired_at = CASE ?2 WHEN 2 THEN (CASE WHEN state = 2 THEN retired_at ELSE ?3 END)"
                         "   ELSE 0 END,"
                         " verify_until = CASE ?2 WHEN 2 THEN ?4 ELSE 0 END,"
                         " state = ?2"
                         " WHERE kid = ?1",
    [ST_KEY_DELETE] = "DELETE FROM signing_keys WHERE kid = ?1",
    [ST_REVOCATION_FIND] = "SELECT seq, reason, revoked_at, until FROM revocations WHERE kind = ?1 AND value = ?2",
    [ST_REVOCATION_INSERT] = "INSERT INTO revocations (kind, value, reason, revoked_at, until)"
                             " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_REVOCATION_DELETE] = "DELETE FROM revocations WHERE seq = ?1",
    [ST_REVOCATION_SET_REVOKED_AT] = "UPDATE revocations SET revoked_at = ?2 WHERE seq = ?1",
    [ST_REVOCATION_PAGE] = "SELECT " REVOCATION_COLS " FROM revocations"
                           " WHERE seq > ?1 AND until > ?2 ORDER BY seq LIMIT ?3",
    [ST_REVOCATION_PURGE] = "DELETE FROM revocations WHERE until <= ?1",
    [ST_REVOCATION_MAX_SEQ] = "SELECT coalesce(max(seq), 0) FROM revocations",
    [ST_REVOCATION_GET] = "SELECT " REVOCATION_COLS " FROM revocations WHERE kind = ?1 AND value = ?2 AND until > ?3",
    [ST_REVOCATION_COUNT] = "SELECT count(*) FROM revocations WHERE until > ?1",
    /* tks_key_rotate: retire ?1 only if it is still the active key... */
    [ST_KEY_RETIRE_ACTIVE] = "UPDATE signing_keys SET state = 2, retired_at = ?2, verify_until = ?3"
                             " WHERE kid = ?1 AND state = 1",
    /* ...and activate the oldest next key born at or before ?1 */
    [ST_KEY_ACTIVATE_NEXT] = "UPDATE signing_keys SET state = 1, activated_at = ?2"
                             " WHERE kid = (SELECT kid FROM signing_keys WHERE state = 0 AND alg = ?3"
                             "              AND created_at <= ?1 ORDER BY created_at, kid LIMIT 1)",
    /* One failure on ?1 at ?2 (window ?3, at least ?4): a counter whose
     * window has passed and that blocks nothing starts over. */
    [ST_ATTEMPT_FAIL] =
        "INSERT INTO attempts (key, window_start, failures, blocked_until) VALUES (?1, ?2, max(1, ?4), 0)"
        " ON CONFLICT (key) DO UPDATE SET"
        "  failures = CASE WHEN window_start + ?3 <= ?2 AND blocked_until <= ?2 THEN max(1, ?4)"
        "             ELSE max(failures + 1, ?4) END,"
        "  window_start = CASE WHEN window_start + ?3 <= ?2 AND blocked_until <= ?2 THEN ?2"
        "                 ELSE window_start END"
        " RETURNING failures",
    [ST_ATTEMPT_BLOCK] = "UPDATE attempts SET blocked_until = ?2 WHERE key = ?1 AND blocked_until < ?2",
    /* up to TKS_ATTEMPT_KEYS (3) keys in one statement; unused ones repeat the first */
    [ST_ATTEMPT_GET] = "SELECT key, blocked_until FROM attempts WHERE key IN (?1, ?2, ?3)",
    [ST_ATTEMPT_CLEAR] = "DELETE FROM attempts WHERE key = ?1",
    [ST_ATTEMPT_PURGE] = "DELETE FROM attempts WHERE window_start + ?2 <= ?1 AND blocked_until <= ?1",
    [ST_ATTEMPT_LIVE] = "SELECT key, blocked_until FROM attempts WHERE window_start + ?2 > ?1 OR blocked_until > ?1"
                        " LIMIT ?3",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (at, kind, client_id, ip, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_AUDIT_PAGE] = "SELECT id, at, kind, client_id, ip, detail FROM audit"
                      " WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    [ST_USER_INSERT] = "INSERT INTO users (" USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_USER_SET_PROFILE] = "UPDATE users SET name = ?2, given_name = ?3, family_name = ?4, preferred_username = ?5, "
                            "email = ?6, email_verified = ?7 WHERE id = ?1",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [ST_USER_SET_PASSWORD] = "UPDATE users SET pwhash = ?2, password_changed_at = ?3 WHERE id = ?1",
    [ST_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE id = ?1",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [ST_USER_PAGE] = "SELECT " USER_COLS " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE id_hash = ?1",
    [ST_SESSION_SIDS_OF_USER] = "SELECT sid FROM sessions WHERE user_id = ?1 ORDER BY created_at",
    [ST_SESSION_END_USER] = "UPDATE sessions SET ended_at = ?2 WHERE user_id = ?1 AND ended_at = 0",
    /* Requests of one session may finish out of order: last_seen never goes back. */
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen = max(last_seen, ?2) WHERE id_hash = ?1",
    /* Matches an ended session too (so that it is not "not found") but keeps
     * its first ended_at. */
    [ST_SESSION_END] = "UPDATE sessions SET ended_at = CASE WHEN ended_at = 0 THEN ?2 ELSE ended_at END"
                       " WHERE sid = ?1",
    [ST_CODE_INSERT] = "INSERT INTO codes (" CODE_COLS ")"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    /* The single-use guard: of any number of concurrent redeems, only one
     * finds used_at = 0 (writes are serialised by SQLite's write lock). */
    [ST_CODE_USE] = "UPDATE codes SET used_at = ?2 WHERE hash = ?1 AND used_at = 0",
    [ST_CODE_GET] = "SELECT " CODE_COLS " FROM codes WHERE hash = ?1",
    [ST_CODE_PURGE] = "DELETE FROM codes WHERE expires_at < ?1",
    [ST_REFRESH_INSERT] = "INSERT INTO refresh_tokens (" REFRESH_COLS ")"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_REFRESH_USE] = "UPDATE refresh_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at = 0",
    [ST_REFRESH_GET] = "SELECT " REFRESH_COLS " FROM refresh_tokens WHERE hash = ?1",
    [ST_REFRESH_PURGE] = "DELETE FROM refresh_tokens WHERE expires_at < ?1",
    [ST_SESSION_GET_SID] = "SELECT " SESSION_COLS " FROM sessions WHERE sid = ?1",
    [ST_SESSION_CLIENT_ADD] = "INSERT INTO session_clients (sid, client_id) VALUES (?1, ?2)"
                              " ON CONFLICT (sid, client_id) DO NOTHING",
    [ST_SESSION_CLIENT_PAGE] = "SELECT client_id FROM session_clients WHERE sid = ?1 AND client_id > ?2"
                               " ORDER BY client_id LIMIT ?3",
    [ST_CONSENT_PUT] = "INSERT INTO consents (" CONSENT_COLS ") VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT (user_id, client_id) DO UPDATE SET"
                       " scope = excluded.scope, granted_at = excluded.granted_at",
    [ST_CONSENT_GET] = "SELECT " CONSENT_COLS " FROM consents WHERE user_id = ?1 AND client_id = ?2",
    [ST_CONSENT_PAGE] = "SELECT " CONSENT_COLS " FROM consents WHERE user_id = ?1 AND client_id > ?2"
                        " ORDER BY client_id LIMIT ?3",
    [ST_CONSENT_DELETE] = "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
    [ST_CONSENT_DELETE_ALL] = "DELETE FROM consents WHERE user_id = ?1",
    /* retention: each a bounded batch found through an index (schema 6) */
    [ST_PURGE_REVOCATIONS] = "DELETE FROM revocations WHERE seq IN"
                             " (SELECT seq FROM revocations WHERE until <= ?1 LIMIT ?2)",
    [ST_PURGE_CODES] = "DELETE FROM codes WHERE rowid IN (SELECT rowid FROM codes WHERE expires_at < ?1 LIMIT ?2)",
    [ST_PURGE_REFRESH] = "DELETE FROM refresh_tokens WHERE rowid IN"
                         " (SELECT rowid FROM refresh_tokens WHERE expires_at < ?1 LIMIT ?2) RETURNING sid",
    [ST_PURGE_REFRESH_REVOKED] = "DELETE FROM refresh_tokens WHERE rowid IN"
                                 " (SELECT t.rowid FROM revocations r JOIN refresh_tokens t ON t.sid = r.value"
                                 " WHERE r.kind = 2 AND r.revoked_at >= ?1 AND r.revoked_at < ?2 LIMIT ?3)"
                                 " RETURNING sid",
    [ST_PURGE_ATTEMPTS] = "DELETE FROM attempts WHERE key IN (SELECT key FROM attempts"
                          " WHERE window_start + ?3 <= ?1 AND blocked_until <= ?1 LIMIT ?2)",
    [ST_PURGE_AUDIT] = "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 LIMIT ?2)",
    /* created_at < ?1 first: the index range; the rest decides */
    [ST_PURGE_SESSIONS] = "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions WHERE created_at < ?1"
                          " AND ((ended_at <> 0 AND ended_at < ?1) OR last_seen < ?2 OR created_at < ?3) LIMIT ?4)"
                          " RETURNING sid",
    [ST_PURGE_SESSION_CLIENTS] = "DELETE FROM session_clients WHERE sid = ?1"
                                 " AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE sid = ?1)"
                                 " AND NOT EXISTS (SELECT 1 FROM sessions WHERE sid = ?1)",
};

struct sq {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *st[ST__COUNT]; /* prepared on first use */
};

static struct sq *sq_of(tks_store *s)
{
    return (struct sq *)s->impl;
}

static void lock(struct sq *q)
{
    pthread_mutex_lock(&q->mu);
}

static void unlock(struct sq *q)
{
    pthread_mutex_unlock(&q->mu);
}

/* Maps a SQLite failure to a result and records why (with q->mu held, so
 * sqlite3_errmsg is this operation's). */
static tks_result fail(tks_store *s, struct sq *q, int rc, const char *what)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        tksi_seterr(s, "%s: the database is locked by another writer (waited %d ms)", what, BUSY_MS);
        return TKS_BUSY;
    }
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        tksi_seterr(s, "%s: already exists", what);
        return TKS_EXISTS;
    }
    /* Only inserts into sessions, codes, refresh_tokens, session_clients
     * and consents can break a foreign key (deletes cascade): the row names
     * a user or client that is not (or no longer) there. */
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        tksi_seterr(s, "%s: its user or client does not exist", what);
        return TKS_NOT_FOUND;
    }
    tksi_seterr(s, "%s: %s", what, sqlite3_errmsg(q->db));
    return TKS_ERR;
}

static tks_result prep(tks_store *s, struct sq *q, enum stmt_id id, sqlite3_stmt **out)
{
    *out = NULL;
    if (q->st[id] == NULL) {
        int rc = sqlite3_prepare_v3(q->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &q->st[id], NULL);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(q->st[id]);
            q->st[id] = NULL;
            return fail(s, q, rc, "preparing a statement");
        }
    }
    *out = q->st[id];
    return TKS_OK;
}

static void release(sqlite3_stmt *st)
{
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* ---- binding: the first failure sticks ---------------------------------- */

struct binder {
    sqlite3_stmt *st;
    int rc;
};

static void b_text(struct binder *b, int i, const char *p)
{
    if (b->rc == SQLITE_OK) {
        b->rc = p ? sqlite3_bind_text(b->st, i, p, -1, SQLITE_STATIC) : sqlite3_bind_null(b->st, i);
    }
}

static void b_blob(struct binder *b, int i, const void *p, size_t n)
{
    if (b->rc == SQLITE_OK) {
        /* n is bounded by backend.h limits, far below INT_MAX. */
        b->rc = sqlite3_bind_blob(b->st, i, p, (int)n, SQLITE_STATIC);
    }
}

static void b_i64(struct binder *b, int i, int64_t v)
{
    if (b->rc == SQLITE_OK) {
        b->rc = sqlite3_bind_int64(b->st, i, (sqlite3_int64)v);
    }
}

/* Steps a statement that returns no rows (a write, BEGIN or COMMIT: each a
 * write point of store.h's fault injection), then resets it. */
static tks_result run(tks_store *s, struct sq *q, sqlite3_stmt *st, int bind_rc, const char *what)
{
    if (tksi_fault_hit(s, what)) {
        release(st);
        return TKS_ERR;
    }
    int rc = bind_rc;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    tks_result r = TKS_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_OK) {
        r = fail(s, q, rc, what);
    }
    release(st);
    return r;
}

/* Runs a constant statement with no parameters. */
static tks_result run_id(tks_store *s, struct sq *q, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st;
    tks_result r = prep(s, q, id, &st);
    if (r != TKS_OK) {
        return r;
    }
    return run(s, q, st, SQLITE_OK, what);
}

/* ---- transactions --------------------------------------------------------- */

static tks_result tx_begin(tks_store *s, struct sq *q)
{
    return run_id(s, q, ST_BEGIN, "starting a transaction");
}

/* Commits when r is TKS_OK, else rolls back; returns the final result. */
static tks_result tx_end(tks_store *s, struct sq *q, tks_result r)
{
    if (r == TKS_OK) {
        r = run_id(s, q, ST_COMMIT, "committing");
    }
    /* Some failures (I/O, full disk) roll back by themselves. */
    if (r != TKS_OK && !sqlite3_get_autocommit(q->db)) {
        sqlite3_stmt *st;
        if (prep(s, q, ST_ROLLBACK, &st) == TKS_OK) {
            sqlite3_step(st);
            release(st);
        }
    }
    return r;
}

/* ---- reading columns, with limits ---------------------------------------- */

/* Copies a TEXT column into dst[cap] (NUL included); NULL reads as "". */
static int col_text(tks_store *s, sqlite3_stmt *st, int col, const char *what, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        return 0;
    }
    const unsigned char *p = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (p == NULL || n < 0) {
        tksi_seterr(s, "out of memory reading %s", what);
        return -1;
    }
    size_t len = (size_t)n;
    if (len >= cap) {
        tksi_seterr(s, "the store holds a %s of %zu bytes, over the limit of %zu (refusing to truncate it)", what, len,
                    cap - 1);
        return -1;
    }
    if (memchr(p, '\0', len) != NULL) {
        tksi_seterr(s, "the store holds a %s with a NUL byte in it", what);
        return -1;
    }
    memcpy(dst, p, len);
    dst[len] = '\0';
    return 0;
}

static int col_i64(tks_store *s, sqlite3_stmt *st, int col, const char *what, int64_t *out)
{
    *out = 0;
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER) {
        tksi_seterr(s, "the store holds a %s that is not an integer", what);
        return -1;
    }
    *out = (int64_t)sqlite3_column_int64(st, col);
    return 0;
}

/* Copies a BLOB column of exactly n bytes into dst. */
static int col_blob_exact(tks_store *s, sqlite3_stmt *st, int col, const char *what, unsigned char *dst, size_t n)
{
    /* The type first: it is undefined after a conversion. */
    int type = sqlite3_column_type(st, col);
    const void *p = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (type != SQLITE_BLOB || p == NULL || len < 0 || (size_t)len != n) {
        tksi_seterr(s, "the store holds a %s that is not %zu bytes", what, n);
        return -1;
    }
    memcpy(dst, p, n);
    return 0;
}

static int read_client(tks_store *s, sqlite3_stmt *st, tks_client *c)
{
    int64_t disabled = 0, is_public = 0, consent = 0;
    if (col_text(s, st, 0, "clients.id", c->id, sizeof c->id) || //
        col_text(s, st, 1, "clients.name", c->name, sizeof c->name) ||
        col_text(s, st, 3, "clients.scopes", c->scopes, sizeof c->scopes) ||
        col_text(s, st, 4, "clients.audiences", c->audiences, sizeof c->audiences) ||
        col_i64(s, st, 5, "clients.ttl", &c->ttl) || //
        col_i64(s, st, 6, "clients.disabled", &disabled) || col_i64(s, st, 7, "clients.created_at", &c->created_at) ||
        col_text(s, st, 8, "clients.redirect_uris", c->redirect_uris, sizeof c->redirect_uris) ||
        col_i64(s, st, 9, "clients.is_public", &is_public) ||
        col_text(s, st, 10, "clients.grant_types", c->grant_types, sizeof c->grant_types) ||
        col_text(s, st, 11, "clients.serves", c->serves, sizeof c->serves) ||
        col_text(s, st, 12, "clients.backchannel_logout_uri", c->backchannel_logout_uri,
                 sizeof c->backchannel_logout_uri) ||
        col_text(s, st, 13, "clients.id_token_alg", c->id_token_alg, sizeof c->id_token_alg) ||
        col_i64(s, st, 14, "clients.consent", &consent)) {
        return -1;
    }
    c->disabled = disabled != 0;
    c->is_public = is_public != 0;
    c->consent = consent != 0;
    /* The type first: it is undefined after a conversion. */
    int type = sqlite3_column_type(st, 2);
    const void *h = sqlite3_column_blob(st, 2);
    int n = sqlite3_column_bytes(st, 2);
    if (type != SQLITE_BLOB || h == NULL || n != (int)sizeof c->secret_hash) {
        tksi_seterr(s, "the store holds a clients.secret_hash that is not %zu bytes", sizeof c->secret_hash);
        return -1;
    }
    memcpy(c->secret_hash, h, sizeof c->secret_hash);
    return 0;
}

/* Fills k (zeroed by the caller); on failure k owns nothing. */
static int read_key(tks_store *s, sqlite3_stmt *st, tks_key_row *k)
{
    int64_t state = 0;
    if (col_text(s, st, 0, "signing_keys.kid", k->kid, sizeof k->kid) ||
        col_text(s, st, 1, "signing_keys.alg", k->alg, sizeof k->alg) ||
        col_i64(s, st, 2, "signing_keys.state", &state) ||
        col_i64(s, st, 3, "signing_keys.created_at", &k->created_at) ||
        col_i64(s, st, 4, "signing_keys.activated_at", &k->activated_at) ||
        col_i64(s, st, 5, "signing_keys.retired_at", &k->retired_at) ||
        col_i64(s, st, 6, "signing_keys.verify_until", &k->verify_until)) {
        return -1;
    }
    if (state < TKS_KEY_NEXT || state > TKS_KEY_RETIRED) {
        tksi_seterr(s, "the store holds a signing key in unknown state %lld", (long long)state);
        return -1;
    }
    k->state = (enum tks_key_state)state;

    if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
        const unsigned char *p = sqlite3_column_text(st, 7);
        int n = sqlite3_column_bytes(st, 7);
        if (p == NULL || n < 0 || (size_t)n > TKSI_JWK_MAX || memchr(p, '\0', (size_t)n) != NULL) {
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

    int type = sqlite3_column_type(st, 8);
    const void *b = sqlite3_column_blob(st, 8);
    int n = sqlite3_column_bytes(st, 8);
    if (type != SQLITE_BLOB || b == NULL || n < 1 || n > TKSI_SEALED_MAX) {
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
    memcpy(k->sealed, b, (size_t)n);
    k->sealed_len = (size_t)n;
    return 0;
}

static int read_revocation(tks_store *s, sqlite3_stmt *st, tks_revocation *r)
{
    int64_t kind = 0;
    if (col_i64(s, st, 0, "revocations.seq", &r->seq) || //
        col_i64(s, st, 1, "revocations.kind", &kind) ||
        col_text(s, st, 2, "revocations.value", r->value, sizeof r->value) ||
        col_text(s, st, 3, "revocations.reason", r->reason, sizeof r->reason) ||
        col_i64(s, st, 4, "revocations.revoked_at", &r->revoked_at) ||
        col_i64(s, st, 5, "revocations.until", &r->until)) {
        return -1;
    }
    if (kind != TKS_REVOKE_JTI && kind != TKS_REVOKE_SID) {
        tksi_seterr(s, "the store holds a revocation of unknown kind %lld", (long long)kind);
        return -1;
    }
    r->kind = (enum tks_revocation_kind)kind;
    return 0;
}

static int read_user(tks_store *s, sqlite3_stmt *st, tks_user *u)
{
    int64_t disabled = 0, verified = 0;
    if (col_text(s, st, 0, "users.id", u->id, sizeof u->id) || //
        col_text(s, st, 1, "users.pwhash", u->pwhash, sizeof u->pwhash) ||
        col_i64(s, st, 2, "users.disabled", &disabled) || //
        col_i64(s, st, 3, "users.created_at", &u->created_at) ||
        col_i64(s, st, 4, "users.password_changed_at", &u->password_changed_at) ||
        col_text(s, st, 5, "users.name", u->name, sizeof u->name) ||
        col_text(s, st, 6, "users.given_name", u->given_name, sizeof u->given_name) ||
        col_text(s, st, 7, "users.family_name", u->family_name, sizeof u->family_name) ||
        col_text(s, st, 8, "users.preferred_username", u->preferred_username, sizeof u->preferred_username) ||
        col_text(s, st, 9, "users.email", u->email, sizeof u->email) ||
        col_i64(s, st, 10, "users.email_verified", &verified)) {
        return -1;
    }
    u->disabled = disabled != 0;
    u->email_verified = verified != 0;
    return 0;
}

static int read_session(tks_store *s, sqlite3_stmt *st, tks_session *se)
{
    if (col_blob_exact(s, st, 0, "sessions.id_hash", se->id_hash, sizeof se->id_hash) ||
        col_text(s, st, 1, "sessions.sid", se->sid, sizeof se->sid) ||
        col_text(s, st, 2, "sessions.user_id", se->user_id, sizeof se->user_id) ||
        col_i64(s, st, 3, "sessions.created_at", &se->created_at) ||
        col_i64(s, st, 4, "sessions.last_seen", &se->last_seen) ||
        col_i64(s, st, 5, "sessions.ended_at", &se->ended_at)) {
        return -1;
    }
    return 0;
}

static int read_code(tks_store *s, sqlite3_stmt *st, tks_code *c)
{
    if (col_blob_exact(s, st, 0, "codes.hash", c->hash, sizeof c->hash) ||
        col_text(s, st, 1, "codes.client_id", c->client_id, sizeof c->client_id) ||
        col_text(s, st, 2, "codes.user_id", c->user_id, sizeof c->user_id) ||
        col_text(s, st, 3, "codes.sid", c->sid, sizeof c->sid) ||
        col_text(s, st, 4, "codes.redirect_uri", c->redirect_uri, sizeof c->redirect_uri) ||
        col_text(s, st, 5, "codes.challenge", c->challenge, sizeof c->challenge) ||
        col_text(s, st, 6, "codes.scope", c->scope, sizeof c->scope) ||
        col_text(s, st, 7, "codes.audience", c->audience, sizeof c->audience) ||
        col_i64(s, st, 8, "codes.created_at", &c->created_at) ||
        col_i64(s, st, 9, "codes.expires_at", &c->expires_at) || //
        col_i64(s, st, 10, "codes.used_at", &c->used_at) ||
        col_text(s, st, 11, "codes.nonce", c->nonce, sizeof c->nonce) ||
        col_i64(s, st, 12, "codes.auth_time", &c->auth_time)) {
        return -1;
    }
    return 0;
}

static int read_refresh(tks_store *s, sqlite3_stmt *st, tks_refresh *r)
{
    if (col_blob_exact(s, st, 0, "refresh_tokens.hash", r->hash, sizeof r->hash) ||
        col_blob_exact(s, st, 1, "refresh_tokens.parent", r->parent, sizeof r->parent) ||
        col_text(s, st, 2, "refresh_tokens.sid", r->sid, sizeof r->sid) ||
        col_text(s, st, 3, "refresh_tokens.client_id", r->client_id, sizeof r->client_id) ||
        col_text(s, st, 4, "refresh_tokens.user_id", r->user_id, sizeof r->user_id) ||
        col_text(s, st, 5, "refresh_tokens.scope", r->scope, sizeof r->scope) ||
        col_text(s, st, 6, "refresh_tokens.audience", r->audience, sizeof r->audience) ||
        col_i64(s, st, 7, "refresh_tokens.created_at", &r->created_at) ||
        col_i64(s, st, 8, "refresh_tokens.expires_at", &r->expires_at) ||
        col_i64(s, st, 9, "refresh_tokens.used_at", &r->used_at) ||
        col_i64(s, st, 10, "refresh_tokens.auth_time", &r->auth_time)) {
        return -1;
    }
    return 0;
}

static int read_consent(tks_store *s, sqlite3_stmt *st, tks_consent *c)
{
    if (col_text(s, st, 0, "consents.user_id", c->user_id, sizeof c->user_id) ||
        col_text(s, st, 1, "consents.client_id", c->client_id, sizeof c->client_id) ||
        col_text(s, st, 2, "consents.scope", c->scope, sizeof c->scope) ||
        col_i64(s, st, 3, "consents.granted_at", &c->granted_at)) {
        return -1;
    }
    return 0;
}

static int read_audit(tks_store *s, sqlite3_stmt *st, tksi_audit_row *a)
{
    if (col_i64(s, st, 0, "audit.id", &a->id) || //
        col_i64(s, st, 1, "audit.at", &a->at) || //
        col_text(s, st, 2, "audit.kind", a->kind, sizeof a->kind) ||
        col_text(s, st, 3, "audit.client_id", a->client_id, sizeof a->client_id) ||
        col_text(s, st, 4, "audit.ip", a->ip, sizeof a->ip) ||
        col_text(s, st, 5, "audit.detail", a->detail, sizeof a->detail)) {
        return -1;
    }
    return 0;
}

/* ---- the backend --------------------------------------------------------- */

static void sq_close(tks_store *s)
{
    struct sq *q = sq_of(s);
    for (size_t i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(q->st[i]);
    }
    sqlite3_close(q->db);
    pthread_mutex_destroy(&q->mu);
    free(q);
    s->impl = NULL;
}

/* Reads meta.key_generation; with q->mu held. */
static tks_result read_generation(tks_store *s, struct sq *q, int64_t *out, const char *what)
{
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_KEY_GENERATION, &st);
    if (r != TKS_OK) {
        return r;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (col_i64(s, st, 0, "meta.key_generation", out) != 0) {
            r = TKS_ERR;
        }
    } else if (rc == SQLITE_DONE) {
        tksi_seterr(s, "%s: the store has no key_generation row", what);
        r = TKS_ERR;
    } else {
        r = fail(s, q, rc, what);
    }
    release(st);
    return r;
}

static tks_result sq_ping(tks_store *s)
{
    struct sq *q = sq_of(s);
    int64_t g = 0;
    lock(q);
    tks_result r = read_generation(s, q, &g, "ping");
    unlock(q);
    return r;
}

static tks_result sq_probe_write(tks_store *s, int64_t now)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_WRITE_PROBE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        r = run(s, q, st, b.rc, "writing the readiness probe");
        if (r == TKS_OK && sqlite3_changes(q->db) != 1) {
            tksi_seterr(s, "writing the readiness probe: the store has no write_probe row");
            r = TKS_ERR;
        }
    }
    unlock(q);
    return r;
}

static tks_result sq_key_generation(tks_store *s, int64_t *out)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = read_generation(s, q, out, "reading the key generation");
    unlock(q);
    return r;
}

static tks_result sq_client_insert(tks_store *s, const tks_client *c)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_CLIENT_INSERT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, c->id);
        b_text(&b, 2, c->name);
        b_blob(&b, 3, c->secret_hash, sizeof c->secret_hash);
        b_text(&b, 4, c->scopes);
        b_text(&b, 5, c->audiences);
        b_i64(&b, 6, c->ttl);
        b_i64(&b, 7, c->disabled != 0);
        b_i64(&b, 8, c->created_at);
        b_text(&b, 9, c->redirect_uris);
        b_i64(&b, 10, c->is_public != 0);
        b_text(&b, 11, c->grant_types);
        b_text(&b, 12, c->serves);
        b_text(&b, 13, c->backchannel_logout_uri);
        b_text(&b, 14, c->id_token_alg);
        b_i64(&b, 15, c->consent != 0);
        r = run(s, q, st, b.rc, "adding a client");
    }
    unlock(q);
    return r;
}

static tks_result sq_client_get(tks_store *s, const char *id, tks_client *out)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_CLIENT_GET, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, id);
        int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
        if (rc == SQLITE_ROW) {
            r = read_client(s, st, out) == 0 ? TKS_OK : TKS_ERR;
        } else if (rc == SQLITE_DONE) {
            r = TKS_NOT_FOUND;
        } else {
            r = fail(s, q, rc, "reading a client");
        }
        release(st);
    }
    unlock(q);
    return r;
}

/* Runs an UPDATE / DELETE keyed by one text id (and optionally an integer
 * ?2); TKS_NOT_FOUND when no row matched. With q->mu held. */
static tks_result change_by_id(tks_store *s, struct sq *q, enum stmt_id id, const char *key, int has_arg, int64_t arg,
                               const char *what)
{
    sqlite3_stmt *st;
    tks_result r = prep(s, q, id, &st);
    if (r != TKS_OK) {
        return r;
    }
    struct binder b = {st, SQLITE_OK};
    b_text(&b, 1, key);
    if (has_arg) {
        b_i64(&b, 2, arg);
    }
    r = run(s, q, st, b.rc, what);
    if (r == TKS_OK && sqlite3_changes(q->db) == 0) {
        r = TKS_NOT_FOUND;
    }
    return r;
}

static tks_result sq_client_set_disabled(tks_store *s, const char *id, int disabled)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = change_by_id(s, q, ST_CLIENT_SET_DISABLED, id, 1, disabled != 0, "disabling a client");
    unlock(q);
    return r;
}

static tks_result sq_client_delete(tks_store *s, const char *id)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = change_by_id(s, q, ST_CLIENT_DELETE, id, 0, 0, "deleting a client");
    unlock(q);
    return r;
}

static tks_result sq_client_page(tks_store *s, const char *after, tks_client *rows, size_t cap, size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_CLIENT_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, after);
        b_i64(&b, 2, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (read_client(s, st, &rows[*n]) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing clients");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

/* Changes the key table and bumps key_generation, in one transaction. */
static tks_result key_change(tks_store *s, struct sq *q, sqlite3_stmt *st, int bind_rc, int must_match,
                             const char *what)
{
    tks_result r = tx_begin(s, q);
    if (r != TKS_OK) {
        release(st);
        return r;
    }
    r = run(s, q, st, bind_rc, what);
    if (r == TKS_OK && must_match && sqlite3_changes(q->db) == 0) {
        r = TKS_NOT_FOUND;
    }
    if (r == TKS_OK) {
        r = run_id(s, q, ST_KEY_GENERATION_BUMP, "bumping the key generation");
        if (r == TKS_OK && sqlite3_changes(q->db) != 1) {
            tksi_seterr(s, "%s: the store has no key_generation row", what);
            r = TKS_ERR;
        }
    }
    return tx_end(s, q, r);
}

static tks_result sq_key_insert(tks_store *s, const tks_key_row *k)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_KEY_INSERT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, k->kid);
        b_text(&b, 2, k->alg);
        b_i64(&b, 3, (int64_t)k->state);
        b_i64(&b, 4, k->created_at);
        b_i64(&b, 5, k->activated_at);
        b_i64(&b, 6, k->retired_at);
        b_i64(&b, 7, k->verify_until);
        b_text(&b, 8, k->public_jwk);
        b_blob(&b, 9, k->sealed, k->sealed_len);
        r = key_change(s, q, st, b.rc, 0, "adding a signing key");
    }
    unlock(q);
    return r;
}

static tks_result sq_key_page(tks_store *s, int64_t after_created, const char *after_kid, tks_key_row *rows, size_t cap,
                              size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_KEY_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, after_created);
        b_text(&b, 2, after_kid);
        b_i64(&b, 3, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (read_key(s, st, &rows[*n]) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing signing keys");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        for (size_t i = 0; i < *n; i++) {
            tks_key_row_clear(&rows[i]);
        }
        *n = 0;
    }
    return r;
}

static tks_result sq_key_set_state(tks_store *s, const char *kid, enum tks_key_state state, int64_t now,
                                   int64_t verify_until)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_KEY_SET_STATE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, kid);
        b_i64(&b, 2, (int64_t)state);
        b_i64(&b, 3, now);
        b_i64(&b, 4, verify_until);
        r = key_change(s, q, st, b.rc, 1, "changing a signing key's state");
    }
    unlock(q);
    return r;
}

static tks_result sq_key_delete(tks_store *s, const char *kid)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_KEY_DELETE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, kid);
        r = key_change(s, q, st, b.rc, 1, "deleting a signing key");
    }
    unlock(q);
    return r;
}

/* The existing revocation of (kind, value), if any. With q->mu held. */
struct found_revocation {
    int found;
    int64_t seq, revoked_at, until;
    char reason[TKS_REASON_MAX + 1];
};

static tks_result find_revocation(tks_store *s, struct sq *q, enum tks_revocation_kind kind, const char *value,
                                  struct found_revocation *f)
{
    memset(f, 0, sizeof *f);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_FIND, &st);
    if (r != TKS_OK) {
        return r;
    }
    struct binder b = {st, SQLITE_OK};
    b_i64(&b, 1, (int64_t)kind);
    b_text(&b, 2, value);
    int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
    if (rc == SQLITE_ROW) {
        f->found = 1;
        if (col_i64(s, st, 0, "revocations.seq", &f->seq) ||
            col_text(s, st, 1, "revocations.reason", f->reason, sizeof f->reason) ||
            col_i64(s, st, 2, "revocations.revoked_at", &f->revoked_at) ||
            col_i64(s, st, 3, "revocations.until", &f->until)) {
            r = TKS_ERR;
        }
    } else if (rc != SQLITE_DONE) {
        r = fail(s, q, rc, "looking up a revocation");
    }
    release(st);
    return r;
}

static tks_result insert_revocation(tks_store *s, struct sq *q, enum tks_revocation_kind kind, const char *value,
                                    const char *reason, int64_t revoked_at, int64_t until)
{
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_INSERT, &st);
    if (r != TKS_OK) {
        return r;
    }
    struct binder b = {st, SQLITE_OK};
    b_i64(&b, 1, (int64_t)kind);
    b_text(&b, 2, value);
    b_text(&b, 3, reason);
    b_i64(&b, 4, revoked_at);
    b_i64(&b, 5, until);
    return run(s, q, st, b.rc, "recording a revocation");
}

static tks_result seq_change(tks_store *s, struct sq *q, enum stmt_id id, int64_t seq, int has_arg, int64_t arg,
                             const char *what)
{
    sqlite3_stmt *st;
    tks_result r = prep(s, q, id, &st);
    if (r != TKS_OK) {
        return r;
    }
    struct binder b = {st, SQLITE_OK};
    b_i64(&b, 1, seq);
    if (has_arg) {
        b_i64(&b, 2, arg);
    }
    return run(s, q, st, b.rc, what);
}

/* Revoking again keeps the first reason and the earliest revoked_at. When it
 * extends `until`, the row moves to a new seq, so that caches polling with
 * tks_revocations_since learn the new `until` instead of dropping the
 * revocation early. One revocation inside the caller's transaction (q->mu
 * held); *inserted: 1 when (kind, value) was not in the store. */
static tks_result revoke_one(tks_store *s, struct sq *q, enum tks_revocation_kind kind, const char *value,
                             const char *reason, int64_t now, int64_t until, int *inserted)
{
    struct found_revocation f;
    tks_result r = find_revocation(s, q, kind, value, &f);
    *inserted = 0;
    if (r == TKS_OK && !f.found) {
        r = insert_revocation(s, q, kind, value, reason, now, until);
        *inserted = r == TKS_OK;
    } else if (r == TKS_OK && until > f.until) {
        int64_t first = now < f.revoked_at ? now : f.revoked_at;
        r = seq_change(s, q, ST_REVOCATION_DELETE, f.seq, 0, 0, "moving a revocation");
        if (r == TKS_OK) {
            r = insert_revocation(s, q, kind, value, f.reason, first, until);
        }
    } else if (r == TKS_OK && now < f.revoked_at) {
        r = seq_change(s, q, ST_REVOCATION_SET_REVOKED_AT, f.seq, 1, now, "updating a revocation");
    }
    return r;
}

static tks_result sq_revoke(tks_store *s, enum tks_revocation_kind kind, const char *value, const char *reason,
                            int64_t now, int64_t until)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = tx_begin(s, q);
    if (r == TKS_OK) {
        int inserted = 0;
        r = revoke_one(s, q, kind, value, reason, now, until, &inserted);
        r = tx_end(s, q, r);
    }
    unlock(q);
    return r;
}

/* The batch in one transaction: with the statements prepared once, a row
 * costs one indexed lookup and one insert (about 100,000 a second). */
static tks_result sq_revoke_batch(tks_store *s, enum tks_revocation_kind kind, const char *const *values, size_t n,
                                  const char *reason, int64_t now, int64_t until, size_t *added)
{
    struct sq *q = sq_of(s);
    size_t fresh = 0;
    lock(q);
    tks_result r = tx_begin(s, q);
    if (r == TKS_OK) {
        for (size_t i = 0; i < n && r == TKS_OK; i++) {
            int inserted = 0;
            r = revoke_one(s, q, kind, values[i], reason, now, until, &inserted);
            fresh += (size_t)inserted;
        }
        r = tx_end(s, q, r);
    }
    unlock(q);
    *added = r == TKS_OK ? fresh : 0;
    return r;
}

static tks_result sq_revocation_get(tks_store *s, enum tks_revocation_kind kind, const char *value, int64_t now,
                                    tks_revocation *out)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_GET, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, (int64_t)kind);
        b_text(&b, 2, value);
        b_i64(&b, 3, now);
        int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
        if (rc == SQLITE_ROW) {
            r = read_revocation(s, st, out) != 0 ? TKS_ERR : TKS_OK;
        } else if (rc == SQLITE_DONE) {
            r = TKS_NOT_FOUND;
        } else {
            r = fail(s, q, rc, "looking up a revocation");
        }
        release(st);
    }
    unlock(q);
    return r;
}

static tks_result sq_revocations_count(tks_store *s, int64_t now, size_t *n)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_COUNT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
        int64_t c = 0;
        if (rc == SQLITE_ROW) {
            if (col_i64(s, st, 0, "count(revocations)", &c) != 0 || c < 0) {
                r = TKS_ERR;
            }
        } else {
            r = fail(s, q, rc, "counting revocations");
        }
        *n = r == TKS_OK ? (size_t)c : 0;
        release(st);
    }
    unlock(q);
    return r;
}

static tks_result sq_revocation_page(tks_store *s, int64_t after_seq, int64_t now, tks_revocation *rows, size_t cap,
                                     size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, after_seq);
        b_i64(&b, 2, now);
        b_i64(&b, 3, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (read_revocation(s, st, &rows[*n]) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing revocations");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result sq_revocation_max_seq(tks_store *s, int64_t *out)
{
    struct sq *q = sq_of(s);
    *out = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_MAX_SEQ, &st);
    if (r == TKS_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (col_i64(s, st, 0, "max(revocations.seq)", out) != 0) {
                r = TKS_ERR;
            }
        } else {
            r = fail(s, q, rc, "reading the newest revocation");
        }
        release(st);
    }
    unlock(q);
    return r;
}

/* One writer at a time (BEGIN IMMEDIATE holds the write lock from the
 * first statement to the commit), so seq is assigned in commit order here:
 * the position is the highest seq seen, and rows page by seq. */
static tks_result sq_revocation_changes(tks_store *s, int64_t cursor, int64_t after_key, int64_t now,
                                        tks_revocation *rows, size_t cap, size_t *n, int64_t *next_cursor,
                                        int64_t *last_key)
{
    /* The new position is the highest seq committed before the rows are
     * read (store.c keeps the first page's): every row at or below it is
     * delivered by this listing, and a writer elsewhere that commits later
     * gets a higher seq. */
    int64_t max_seq = 0;
    tks_result r = sq_revocation_max_seq(s, &max_seq);
    if (r != TKS_OK) {
        return r;
    }
    *next_cursor = max_seq > cursor ? max_seq : cursor;
    int64_t from = after_key > cursor ? after_key : cursor;
    r = sq_revocation_page(s, from, now, rows, cap, n);
    if (r != TKS_OK) {
        return r;
    }
    *last_key = *n > 0 ? rows[*n - 1].seq : from;
    return TKS_OK;
}

static tks_result sq_revocations_purge(tks_store *s, int64_t now)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REVOCATION_PURGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        r = run(s, q, st, b.rc, "purging revocations");
    }
    unlock(q);
    return r;
}

static tks_result sq_audit(tks_store *s, int64_t now, const char *kind, const char *client_id, const char *ip,
                           const char *detail)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_AUDIT_INSERT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        b_text(&b, 2, kind);
        b_text(&b, 3, client_id);
        b_text(&b, 4, ip);
        b_text(&b, 5, detail);
        r = run(s, q, st, b.rc, "recording an audit event");
    }
    unlock(q);
    return r;
}

static tks_result sq_audit_page(tks_store *s, int64_t before_id, tksi_audit_row *rows, size_t cap, size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_AUDIT_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, before_id);
        b_i64(&b, 2, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (read_audit(s, st, &rows[*n]) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing audit events");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

/* ---- users --------------------------------------------------------------- */

static tks_result sq_user_insert(tks_store *s, const tks_user *u)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_USER_INSERT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, u->id);
        b_text(&b, 2, u->pwhash);
        b_i64(&b, 3, u->disabled != 0);
        b_i64(&b, 4, u->created_at);
        b_i64(&b, 5, u->password_changed_at);
        b_text(&b, 6, u->name);
        b_text(&b, 7, u->given_name);
        b_text(&b, 8, u->family_name);
        b_text(&b, 9, u->preferred_username);
        b_text(&b, 10, u->email);
        b_i64(&b, 11, u->email_verified != 0);
        r = run(s, q, st, b.rc, "adding a user");
    }
    unlock(q);
    return r;
}

static tks_result sq_user_set_profile(tks_store *s, const tks_user *u)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_USER_SET_PROFILE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, u->id);
        b_text(&b, 2, u->name);
        b_text(&b, 3, u->given_name);
        b_text(&b, 4, u->family_name);
        b_text(&b, 5, u->preferred_username);
        b_text(&b, 6, u->email);
        b_i64(&b, 7, u->email_verified != 0);
        r = run(s, q, st, b.rc, "changing a user's profile");
        if (r == TKS_OK && sqlite3_changes(q->db) == 0) {
            r = TKS_NOT_FOUND;
        }
    }
    unlock(q);
    return r;
}

/* Reads the one row a statement keyed by ?1 (already bound) returns, with
 * `reader`; TKS_NOT_FOUND when there is none. Resets st. With q->mu held. */
static tks_result get_one(tks_store *s, struct sq *q, sqlite3_stmt *st, int bind_rc,
                          int (*reader)(tks_store *s, sqlite3_stmt *st, void *out), void *out, const char *what)
{
    tks_result r = TKS_OK;
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(st) : bind_rc;
    if (rc == SQLITE_ROW) {
        r = reader(s, st, out) == 0 ? TKS_OK : TKS_ERR;
    } else if (rc == SQLITE_DONE) {
        r = TKS_NOT_FOUND;
    } else {
        r = fail(s, q, rc, what);
    }
    release(st);
    return r;
}

static int read_user_v(tks_store *s, sqlite3_stmt *st, void *out)
{
    return read_user(s, st, out);
}

static int read_session_v(tks_store *s, sqlite3_stmt *st, void *out)
{
    return read_session(s, st, out);
}

static int read_code_v(tks_store *s, sqlite3_stmt *st, void *out)
{
    return read_code(s, st, out);
}

static int read_refresh_v(tks_store *s, sqlite3_stmt *st, void *out)
{
    return read_refresh(s, st, out);
}

static tks_result sq_user_get(tks_store *s, const char *id, tks_user *out)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_USER_GET, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, id);
        r = get_one(s, q, st, b.rc, read_user_v, out, "reading a user");
    }
    unlock(q);
    return r;
}

static tks_result sq_user_set_password(tks_store *s, const char *id, const char *pwhash, int64_t now)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_USER_SET_PASSWORD, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, id);
        b_text(&b, 2, pwhash);
        b_i64(&b, 3, now);
        r = run(s, q, st, b.rc, "changing a user's password");
        if (r == TKS_OK && sqlite3_changes(q->db) == 0) {
            r = TKS_NOT_FOUND;
        }
    }
    unlock(q);
    return r;
}

static tks_result sq_user_set_disabled(tks_store *s, const char *id, int disabled)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = change_by_id(s, q, ST_USER_SET_DISABLED, id, 1, disabled != 0, "disabling a user");
    unlock(q);
    return r;
}

/* Sessions, codes and refresh tokens of the user go with it (ON DELETE
 * CASCADE, in the same statement). */
static tks_result sq_user_delete(tks_store *s, const char *id)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = change_by_id(s, q, ST_USER_DELETE, id, 0, 0, "deleting a user");
    unlock(q);
    return r;
}

static tks_result sq_user_page(tks_store *s, const char *after, tks_user *rows, size_t cap, size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_USER_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, after);
        b_i64(&b, 2, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (read_user(s, st, &rows[*n]) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing users");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

/* ---- sessions ------------------------------------------------------------ */

static tks_result sq_session_insert(tks_store *s, const tks_session *se)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_SESSION_INSERT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_blob(&b, 1, se->id_hash, sizeof se->id_hash);
        b_text(&b, 2, se->sid);
        b_text(&b, 3, se->user_id);
        b_i64(&b, 4, se->created_at);
        b_i64(&b, 5, se->last_seen);
        b_i64(&b, 6, se->ended_at);
        r = run(s, q, st, b.rc, "adding a session");
    }
    unlock(q);
    return r;
}

/* Reads the one row whose 32-byte hash key is `hash` (sessions, codes,
 * refresh tokens). */
static tks_result get_by_hash(tks_store *s, enum stmt_id id, const unsigned char hash[32],
                              int (*reader)(tks_store *s, sqlite3_stmt *st, void *out), void *out, const char *what)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, id, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_blob(&b, 1, hash, 32);
        r = get_one(s, q, st, b.rc, reader, out, what);
    }
    unlock(q);
    return r;
}

static tks_result sq_session_get(tks_store *s, const unsigned char id_hash[32], tks_session *out)
{
    return get_by_hash(s, ST_SESSION_GET, id_hash, read_session_v, out, "reading a session");
}

static tks_result sq_session_touch(tks_store *s, const unsigned char id_hash[32], int64_t now)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_SESSION_TOUCH, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_blob(&b, 1, id_hash, 32);
        b_i64(&b, 2, now);
        r = run(s, q, st, b.rc, "touching a session");
        if (r == TKS_OK && sqlite3_changes(q->db) == 0) {
            r = TKS_NOT_FOUND;
        }
    }
    unlock(q);
    return r;
}

static tks_result sq_session_end(tks_store *s, const char *sid, int64_t now)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = change_by_id(s, q, ST_SESSION_END, sid, 1, now, "ending a session");
    unlock(q);
    return r;
}

static tks_result sq_session_end_user(tks_store *s, const char *user_id, int64_t now,
                                      int (*fn)(const char *sid, void *ud), void *ud)
{
    struct sq *q = sq_of(s);
    char(*sids)[TKS_SID_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_SESSION_SIDS_OF_USER, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, user_id);
        int rc = b.rc;
        while (r == TKS_OK && (rc == SQLITE_OK || rc == SQLITE_ROW)) {
            rc = sqlite3_step(st);
            if (rc != SQLITE_ROW) {
                break;
            }
            const unsigned char *v = sqlite3_column_text(st, 0);
            size_t vl = (size_t)sqlite3_column_bytes(st, 0);
            if (!v || vl > TKS_SID_MAX) {
                continue; /* not a sid we wrote */
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                void *nb = realloc(sids, ncap * sizeof *sids);
                if (!nb) {
                    r = fail(s, q, SQLITE_NOMEM, "listing a user's sessions");
                    break;
                }
                sids = nb;
                cap = ncap;
            }
            memcpy(sids[n], v, vl);
            sids[n][vl] = '\0';
            n++;
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing a user's sessions");
        }
        release(st);
    }
    if (r == TKS_OK) {
        r = prep(s, q, ST_SESSION_END_USER, &st);
        if (r == TKS_OK) {
            struct binder b = {st, SQLITE_OK};
            b_text(&b, 1, user_id);
            b_i64(&b, 2, now);
            r = run(s, q, st, b.rc, "ending a user's sessions");
        }
    }
    unlock(q);
    for (size_t i = 0; r == TKS_OK && i < n; i++) {
        if (fn(sids[i], ud) != 0) {
            break;
        }
    }
    free(sids);
    return r;
}

/* ---- single-use rows: codes and refresh tokens ----------------------------- */

static tks_result insert_refresh(tks_store *s, struct sq *q, const tks_refresh *rt);

/* Marks the row `hash` used at `now` if it is unused, reads it back and,
 * when it was unused, inserts `next` (the refresh token that replaces it;
 * NULL: none), in one BEGIN IMMEDIATE transaction (so the row read is the
 * row marked, no purge or delete on another connection comes in between,
 * and a grant is spent only together with what replaces it):
 *   UPDATE changed 1 row  -> TKS_OK, *out holds the row (used_at = now);
 *   UPDATE changed none   -> the row exists: TKS_EXISTS, *out holds it with
 *                            the first used_at; else TKS_NOT_FOUND.
 * Of any number of concurrent calls, on this connection (q->mu) or on others
 * (the write lock), exactly one sees the UPDATE change the row. If the row
 * cannot be read back or `next` cannot be stored, nothing is committed: the
 * row stays unused. */
static tks_result use_once(tks_store *s, enum stmt_id use, enum stmt_id get, const unsigned char hash[32], int64_t now,
                           const tks_refresh *next, int (*reader)(tks_store *s, sqlite3_stmt *st, void *out), void *out,
                           const char *what)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = tx_begin(s, q);
    if (r != TKS_OK) {
        unlock(q);
        return r;
    }
    sqlite3_stmt *st;
    int changed = 0;
    r = prep(s, q, use, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_blob(&b, 1, hash, 32);
        b_i64(&b, 2, now);
        r = run(s, q, st, b.rc, what);
        changed = r == TKS_OK ? sqlite3_changes(q->db) : 0;
    }
    if (r == TKS_OK) {
        r = prep(s, q, get, &st);
    }
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_blob(&b, 1, hash, 32);
        r = get_one(s, q, st, b.rc, reader, out, what);
    }
    tks_result found = r; /* TKS_OK, TKS_NOT_FOUND or a failure */
    if (found == TKS_NOT_FOUND && changed != 0) {
        tksi_seterr(s, "%s: the row vanished inside its transaction", what);
        found = TKS_ERR;
    }
    if (found == TKS_OK && changed == 1 && next != NULL) {
        found = insert_refresh(s, q, next);
        if (found == TKS_NOT_FOUND || found == TKS_EXISTS) {
            /* its user or client went away, or a hash collision: either
             * way nothing may be spent */
            found = TKS_ERR;
        }
    }
    /* Commit only what can be answered; TKS_NOT_FOUND changed nothing. */
    r = tx_end(s, q, found == TKS_OK || found == TKS_NOT_FOUND ? TKS_OK : found);
    unlock(q);
    if (r != TKS_OK) {
        return r;
    }
    if (found != TKS_OK) {
        return found;
    }
    return changed == 1 ? TKS_OK : TKS_EXISTS;
}

/* Runs a DELETE ... WHERE expires_at < ?1. */
static tks_result purge_before(tks_store *s, enum stmt_id id, int64_t now, const char *what)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, id, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        r = run(s, q, st, b.rc, what);
    }
    unlock(q);
    return r;
}

/* The code and its session's client, in one transaction: a failure of
 * either stores neither. Write points: BEGIN, the code, the session's
 * client, COMMIT. */
static tks_result sq_code_insert(tks_store *s, const tks_code *c)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = tx_begin(s, q);
    if (r != TKS_OK) {
        unlock(q);
        return r;
    }
    sqlite3_stmt *st;
    r = prep(s, q, ST_CODE_INSERT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_blob(&b, 1, c->hash, sizeof c->hash);
        b_text(&b, 2, c->client_id);
        b_text(&b, 3, c->user_id);
        b_text(&b, 4, c->sid);
        b_text(&b, 5, c->redirect_uri);
        b_text(&b, 6, c->challenge);
        b_text(&b, 7, c->scope);
        b_text(&b, 8, c->audience);
        b_i64(&b, 9, c->created_at);
        b_i64(&b, 10, c->expires_at);
        b_i64(&b, 11, c->used_at);
        b_text(&b, 12, c->nonce);
        b_i64(&b, 13, c->auth_time);
        r = run(s, q, st, b.rc, "adding an authorization code");
    }
    if (r == TKS_OK) {
        r = prep(s, q, ST_SESSION_CLIENT_ADD, &st);
    }
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, c->sid);
        b_text(&b, 2, c->client_id);
        r = run(s, q, st, b.rc, "recording the session's client");
    }
    r = tx_end(s, q, r);
    unlock(q);
    return r;
}

static tks_result sq_code_exchange(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *first,
                                   tks_code *out)
{
    return use_once(s, ST_CODE_USE, ST_CODE_GET, hash, now, first, read_code_v, out, "redeeming an authorization code");
}

static tks_result sq_code_get(tks_store *s, const unsigned char hash[32], tks_code *out)
{
    return get_by_hash(s, ST_CODE_GET, hash, read_code_v, out, "reading an authorization code");
}

static tks_result sq_code_purge(tks_store *s, int64_t now)
{
    return purge_before(s, ST_CODE_PURGE, now, "purging authorization codes");
}

/* Inserts one refresh token row; with q->mu held. */
static tks_result insert_refresh(tks_store *s, struct sq *q, const tks_refresh *rt)
{
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_REFRESH_INSERT, &st);
    if (r != TKS_OK) {
        return r;
    }
    struct binder b = {st, SQLITE_OK};
    b_blob(&b, 1, rt->hash, sizeof rt->hash);
    b_blob(&b, 2, rt->parent, sizeof rt->parent);
    b_text(&b, 3, rt->sid);
    b_text(&b, 4, rt->client_id);
    b_text(&b, 5, rt->user_id);
    b_text(&b, 6, rt->scope);
    b_text(&b, 7, rt->audience);
    b_i64(&b, 8, rt->created_at);
    b_i64(&b, 9, rt->expires_at);
    b_i64(&b, 10, rt->used_at);
    b_i64(&b, 11, rt->auth_time);
    return run(s, q, st, b.rc, "adding a refresh token");
}

static tks_result sq_refresh_insert(tks_store *s, const tks_refresh *rt)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = insert_refresh(s, q, rt);
    unlock(q);
    return r;
}

static tks_result sq_refresh_rotate(tks_store *s, const unsigned char hash[32], int64_t now, const tks_refresh *next,
                                    tks_refresh *out)
{
    return use_once(s, ST_REFRESH_USE, ST_REFRESH_GET, hash, now, next, read_refresh_v, out, "using a refresh token");
}

static tks_result sq_refresh_get(tks_store *s, const unsigned char hash[32], tks_refresh *out)
{
    return get_by_hash(s, ST_REFRESH_GET, hash, read_refresh_v, out, "reading a refresh token");
}

static tks_result sq_refresh_purge(tks_store *s, int64_t now)
{
    return purge_before(s, ST_REFRESH_PURGE, now, "purging refresh tokens");
}

/* ---- schema 5: sessions by sid, their clients, consents ------------------------ */

static tks_result sq_session_get_sid(tks_store *s, const char *sid, tks_session *out)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_SESSION_GET_SID, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, sid);
        r = get_one(s, q, st, b.rc, read_session_v, out, "reading a session");
    }
    unlock(q);
    return r;
}

static tks_result sq_session_client_page(tks_store *s, const char *sid, const char *after, tksi_client_id *rows,
                                         size_t cap, size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_SESSION_CLIENT_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, sid);
        b_text(&b, 2, after);
        b_i64(&b, 3, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (col_text(s, st, 0, "session_clients.client_id", rows[*n].id, sizeof rows[*n].id) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing a session's clients");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result sq_consent_put(tks_store *s, const tks_consent *c)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_CONSENT_PUT, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, c->user_id);
        b_text(&b, 2, c->client_id);
        b_text(&b, 3, c->scope);
        b_i64(&b, 4, c->granted_at);
        r = run(s, q, st, b.rc, "recording a consent");
    }
    unlock(q);
    return r;
}

static int read_consent_v(tks_store *s, sqlite3_stmt *st, void *out)
{
    return read_consent(s, st, out);
}

static tks_result sq_consent_get(tks_store *s, const char *user_id, const char *client_id, tks_consent *out)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_CONSENT_GET, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, user_id);
        b_text(&b, 2, client_id);
        r = get_one(s, q, st, b.rc, read_consent_v, out, "reading a consent");
    }
    unlock(q);
    return r;
}

static tks_result sq_consent_page(tks_store *s, const char *user_id, const char *after, tks_consent *rows, size_t cap,
                                  size_t *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_CONSENT_PAGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, user_id);
        b_text(&b, 2, after);
        b_i64(&b, 3, (int64_t)cap);
        int rc = b.rc;
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW && *n < cap) {
                if (read_consent(s, st, &rows[*n]) != 0) {
                    r = TKS_ERR;
                    break;
                }
                (*n)++;
            }
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "listing consents");
        }
        release(st);
    }
    unlock(q);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static tks_result sq_consent_delete(tks_store *s, const char *user_id, const char *client_id, int *n)
{
    struct sq *q = sq_of(s);
    *n = 0;
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, client_id != NULL ? ST_CONSENT_DELETE : ST_CONSENT_DELETE_ALL, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, user_id);
        if (client_id != NULL) {
            b_text(&b, 2, client_id);
        }
        r = run(s, q, st, b.rc, "deleting consents");
        if (r == TKS_OK) {
            *n = sqlite3_changes(q->db);
        }
    }
    unlock(q);
    return r;
}

/* ---- key rotation -------------------------------------------------------- */

/* Runs a constant statement bound by the caller; returns rows changed in *n. */
static tks_result run_changes(tks_store *s, struct sq *q, sqlite3_stmt *st, int bind_rc, const char *what, int *n)
{
    tks_result r = run(s, q, st, bind_rc, what);
    *n = r == TKS_OK ? sqlite3_changes(q->db) : 0;
    return r;
}

static tks_result sq_key_rotate(tks_store *s, const char *active_kid, int64_t next_born_by, int64_t now,
                                int64_t verify_until, const tks_key_row *k)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = tx_begin(s, q);
    if (r != TKS_OK) {
        unlock(q);
        return r;
    }
    sqlite3_stmt *st;
    int n = 0;
    r = prep(s, q, ST_KEY_RETIRE_ACTIVE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, active_kid);
        b_i64(&b, 2, now);
        b_i64(&b, 3, verify_until);
        r = run_changes(s, q, st, b.rc, "retiring the active key", &n);
        if (r == TKS_OK && n == 0) {
            r = TKS_EXISTS; /* another process rotated first */
        }
    }
    if (r == TKS_OK) {
        r = prep(s, q, ST_KEY_ACTIVATE_NEXT, &st);
    }
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, next_born_by);
        b_i64(&b, 2, now);
        b_text(&b, 3, k->alg); /* only the ring of the new key's alg turns */
        r = run_changes(s, q, st, b.rc, "activating the next key", &n);
        if (r == TKS_OK && n != 1) {
            r = TKS_NOT_FOUND; /* no next key published long enough */
        }
    }
    if (r == TKS_OK) {
        r = prep(s, q, ST_KEY_INSERT, &st);
    }
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_text(&b, 1, k->kid);
        b_text(&b, 2, k->alg);
        b_i64(&b, 3, (int64_t)k->state);
        b_i64(&b, 4, k->created_at);
        b_i64(&b, 5, k->activated_at);
        b_i64(&b, 6, k->retired_at);
        b_i64(&b, 7, k->verify_until);
        b_text(&b, 8, k->public_jwk);
        b_blob(&b, 9, k->sealed, k->sealed_len);
        r = run(s, q, st, b.rc, "adding the new next key");
    }
    if (r == TKS_OK) {
        r = run_id(s, q, ST_KEY_GENERATION_BUMP, "bumping the key generation");
    }
    /* commits on TKS_OK; anything else (TKS_EXISTS, TKS_NOT_FOUND included)
     * rolls back and comes back as it was */
    r = tx_end(s, q, r);
    unlock(q);
    return r;
}

/* ---- failed-attempt counters ----------------------------------------------- */

static tks_result sq_attempts_fail(tks_store *s, const uint64_t *keys, size_t n, const uint32_t *at_least, int64_t now,
                                   int64_t window, uint32_t *failures)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = tx_begin(s, q);
    for (size_t i = 0; r == TKS_OK && i < n; i++) {
        if (tksi_fault_hit(s, "counting a failed attempt")) {
            r = TKS_ERR;
            break;
        }
        sqlite3_stmt *st;
        r = prep(s, q, ST_ATTEMPT_FAIL, &st);
        if (r != TKS_OK) {
            break;
        }
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, (int64_t)keys[i]);
        b_i64(&b, 2, now);
        b_i64(&b, 3, window);
        b_i64(&b, 4, (int64_t)at_least[i]);
        int64_t f = 0;
        int rc = b.rc == SQLITE_OK ? sqlite3_step(st) : b.rc;
        if (rc == SQLITE_ROW) {
            if (col_i64(s, st, 0, "attempts.failures", &f) != 0) {
                r = TKS_ERR;
            }
            rc = sqlite3_step(st);
        }
        if (r == TKS_OK && rc != SQLITE_DONE) {
            r = fail(s, q, rc, "counting a failed attempt");
        }
        release(st);
        failures[i] = f < 0 ? 0 : f > UINT32_MAX ? UINT32_MAX : (uint32_t)f;
    }
    r = tx_end(s, q, r);
    unlock(q);
    return r;
}

static tks_result sq_attempts_block(tks_store *s, const uint64_t *keys, size_t n, const int64_t *until)
{
    struct sq *q = sq_of(s);
    lock(q);
    tks_result r = tx_begin(s, q);
    for (size_t i = 0; r == TKS_OK && i < n; i++) {
        sqlite3_stmt *st;
        r = prep(s, q, ST_ATTEMPT_BLOCK, &st);
        if (r == TKS_OK) {
            struct binder b = {st, SQLITE_OK};
            b_i64(&b, 1, (int64_t)keys[i]);
            b_i64(&b, 2, until[i]);
            r = run(s, q, st, b.rc, "blocking a guesser");
        }
    }
    r = tx_end(s, q, r);
    unlock(q);
    return r;
}

/* Steps the bound statement st (its binding result rc) and calls fn(key,
 * blocked_until, ud) for each row (non-zero stops): the reads of
 * sq_attempts_get and sq_attempts_live. Releases st. */
static tks_result attempt_rows(tks_store *s, struct sq *q, sqlite3_stmt *st, int rc,
                               int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud)
{
    tks_result r = TKS_OK;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        int64_t key = 0, until = 0;
        if (col_i64(s, st, 0, "attempts.key", &key) != 0 || col_i64(s, st, 1, "attempts.blocked_until", &until)) {
            r = TKS_ERR;
            break;
        }
        if (fn((uint64_t)key, until, ud) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (r == TKS_OK && rc != SQLITE_DONE) {
        r = fail(s, q, rc, "reading failed attempts");
    }
    release(st);
    return r;
}

static tks_result sq_attempts_get(tks_store *s, const uint64_t *keys, size_t n, int64_t *blocked_until)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_ATTEMPT_GET, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        for (size_t i = 0; i < TKS_ATTEMPT_KEYS; i++) {
            b_i64(&b, (int)i + 1, (int64_t)keys[i < n ? i : 0]);
        }
        struct tksi_wanted w = {keys, n, blocked_until};
        r = attempt_rows(s, q, st, b.rc, tksi_take_wanted, &w);
    }
    unlock(q);
    return r;
}

static tks_result sq_attempts_clear(tks_store *s, uint64_t key)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_ATTEMPT_CLEAR, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, (int64_t)key);
        r = run(s, q, st, b.rc, "clearing failed attempts");
    }
    unlock(q);
    return r;
}

static tks_result sq_attempts_live(tks_store *s, int64_t now, int64_t window, size_t max,
                                   int (*fn)(uint64_t key, int64_t blocked_until, void *ud), void *ud)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_ATTEMPT_LIVE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        b_i64(&b, 2, window);
        b_i64(&b, 3, (int64_t)max);
        r = attempt_rows(s, q, st, b.rc, fn, ud);
    }
    unlock(q);
    return r;
}

static tks_result sq_attempts_purge(tks_store *s, int64_t now, int64_t window)
{
    struct sq *q = sq_of(s);
    lock(q);
    sqlite3_stmt *st;
    tks_result r = prep(s, q, ST_ATTEMPT_PURGE, &st);
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        b_i64(&b, 1, now);
        b_i64(&b, 2, window);
        r = run(s, q, st, b.rc, "purging failed attempts");
    }
    unlock(q);
    return r;
}

/* ---- retention ------------------------------------------------------------ */

struct sid_list {
    char (*v)[TKS_SID_MAX + 1];
    size_t n;
};

static int sid_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Steps a DELETE ... RETURNING sid, keeping each sid (those longer than a
 * sid can be are not kept: their clients rows stay, harmlessly). */
static tks_result run_returning_sids(tks_store *s, struct sq *q, sqlite3_stmt *st, int bind_rc, struct sid_list *out,
                                     size_t cap, size_t *rows, const char *what)
{
    *rows = 0;
    if (tksi_fault_hit(s, what)) {
        release(st);
        return TKS_ERR;
    }
    int rc = bind_rc;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
            break;
        }
        (*rows)++;
        const unsigned char *v = sqlite3_column_text(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        if (v != NULL && len > 0 && len <= TKS_SID_MAX && out->n < cap) {
            memcpy(out->v[out->n], v, (size_t)len);
            out->v[out->n][len] = '\0';
            out->n++;
        }
    }
    tks_result r = TKS_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        r = fail(s, q, rc, what);
    }
    release(st);
    return r;
}

/* The sign-ins whose refresh tokens or session just went: their
 * session_clients rows go once neither is left. */
static tks_result drop_session_clients(tks_store *s, struct sq *q, struct sid_list *l)
{
    if (l->n == 0) {
        return TKS_OK;
    }
    qsort(l->v, l->n, sizeof l->v[0], sid_cmp);
    tks_result r = TKS_OK;
    for (size_t i = 0; r == TKS_OK && i < l->n; i++) {
        if (i > 0 && strcmp(l->v[i], l->v[i - 1]) == 0) {
            continue;
        }
        sqlite3_stmt *st;
        r = prep(s, q, ST_PURGE_SESSION_CLIENTS, &st);
        if (r == TKS_OK) {
            struct binder b = {st, SQLITE_OK};
            b_text(&b, 1, l->v[i]);
            r = run(s, q, st, b.rc, "purging the clients of ended sign-ins");
        }
    }
    return r;
}

static tks_result sq_purge_batch(tks_store *s, const tks_purge *p, size_t limit, size_t *n)
{
    struct sq *q = sq_of(s);
    enum stmt_id id;
    const char *what;
    int returns_sids = 0;
    switch (p->kind) {
    case TKS_PURGE_REVOCATIONS:
        id = ST_PURGE_REVOCATIONS;
        what = "purging revocations";
        break;
    case TKS_PURGE_CODES:
        id = ST_PURGE_CODES;
        what = "purging authorization codes";
        break;
    case TKS_PURGE_REFRESH:
        id = ST_PURGE_REFRESH;
        what = "purging expired refresh tokens";
        returns_sids = 1;
        break;
    case TKS_PURGE_REFRESH_REVOKED:
        id = ST_PURGE_REFRESH_REVOKED;
        what = "purging refresh tokens of revoked sign-ins";
        returns_sids = 1;
        break;
    case TKS_PURGE_ATTEMPTS:
        id = ST_PURGE_ATTEMPTS;
        what = "purging failed attempts";
        break;
    case TKS_PURGE_AUDIT:
        id = ST_PURGE_AUDIT;
        what = "purging audit events";
        break;
    case TKS_PURGE_SESSIONS:
    default:
        id = ST_PURGE_SESSIONS;
        what = "purging ended sessions";
        returns_sids = 1;
        break;
    }
    struct sid_list l = {NULL, 0};
    if (returns_sids) {
        l.v = malloc(limit * sizeof l.v[0]);
        if (l.v == NULL) {
            tksi_seterr(s, "%s: out of memory", what);
            return TKS_ERR;
        }
    }
    lock(q);
    tks_result r = returns_sids ? tx_begin(s, q) : TKS_OK;
    sqlite3_stmt *st = NULL;
    if (r == TKS_OK) {
        r = prep(s, q, id, &st);
    }
    if (r == TKS_OK) {
        struct binder b = {st, SQLITE_OK};
        int64_t lim = (int64_t)limit;
        switch (p->kind) {
        case TKS_PURGE_REFRESH_REVOKED:
            b_i64(&b, 1, p->from);
            b_i64(&b, 2, p->before);
            b_i64(&b, 3, lim);
            break;
        case TKS_PURGE_ATTEMPTS:
            b_i64(&b, 1, p->before);
            b_i64(&b, 2, lim);
            b_i64(&b, 3, p->window);
            break;
        case TKS_PURGE_SESSIONS:
            b_i64(&b, 1, p->before);
            b_i64(&b, 2, p->before - p->idle);
            b_i64(&b, 3, p->before - p->max_age);
            b_i64(&b, 4, lim);
            break;
        default:
            b_i64(&b, 1, p->before);
            b_i64(&b, 2, lim);
            break;
        }
        if (returns_sids) {
            r = run_returning_sids(s, q, st, b.rc, &l, limit, n, what);
            if (r == TKS_OK) {
                r = drop_session_clients(s, q, &l);
            }
        } else {
            r = run(s, q, st, b.rc, what);
            *n = r == TKS_OK ? (size_t)sqlite3_changes(q->db) : 0;
        }
    }
    if (returns_sids) {
        r = tx_end(s, q, r);
    }
    unlock(q);
    free(l.v);
    if (r != TKS_OK) {
        *n = 0;
    }
    return r;
}

static const tksi_backend SQLITE_BACKEND = {
    .name = "sqlite",
    .close = sq_close,
    .ping = sq_ping,
    .probe_write = sq_probe_write,
    .client_insert = sq_client_insert,
    .client_get = sq_client_get,
    .client_set_disabled = sq_client_set_disabled,
    .client_delete = sq_client_delete,
    .client_page = sq_client_page,
    .key_insert = sq_key_insert,
    .key_page = sq_key_page,
    .key_set_state = sq_key_set_state,
    .key_delete = sq_key_delete,
    .key_generation = sq_key_generation,
    .key_rotate = sq_key_rotate,
    .attempts_fail = sq_attempts_fail,
    .attempts_block = sq_attempts_block,
    .attempts_get = sq_attempts_get,
    .attempts_clear = sq_attempts_clear,
    .attempts_purge = sq_attempts_purge,
    .attempts_live = sq_attempts_live,
    .revoke = sq_revoke,
    .revoke_batch = sq_revoke_batch,
    .revocation_get = sq_revocation_get,
    .revocations_count = sq_revocations_count,
    .revocation_page = sq_revocation_page,
    .revocations_purge = sq_revocations_purge,
    .revocation_changes = sq_revocation_changes,
    .watch = NULL,
    .audit = sq_audit,
    .audit_page = sq_audit_page,
    .user_insert = sq_user_insert,
    .user_get = sq_user_get,
    .user_set_password = sq_user_set_password,
    .user_set_disabled = sq_user_set_disabled,
    .user_set_profile = sq_user_set_profile,
    .user_delete = sq_user_delete,
    .user_page = sq_user_page,
    .session_insert = sq_session_insert,
    .session_get = sq_session_get,
    .session_touch = sq_session_touch,
    .session_end = sq_session_end,
    .session_end_user = sq_session_end_user,
    .code_insert = sq_code_insert,
    .code_exchange = sq_code_exchange,
    .code_get = sq_code_get,
    .code_purge = sq_code_purge,
    .refresh_insert = sq_refresh_insert,
    .refresh_rotate = sq_refresh_rotate,
    .refresh_get = sq_refresh_get,
    .refresh_purge = sq_refresh_purge,
    .session_get_sid = sq_session_get_sid,
    .session_client_page = sq_session_client_page,
    .consent_put = sq_consent_put,
    .consent_get = sq_consent_get,
    .consent_page = sq_consent_page,
    .consent_delete = sq_consent_delete,
    .purge_batch = sq_purge_batch,
};

/* ---- opening and migrating ------------------------------------------------ */

/* Runs a one-row pragma (constant text) and reads its first column. */
static int pragma_value(sqlite3 *db, const char *sql, int64_t *ival, char *text, size_t text_cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (ival != NULL) {
                *ival = (int64_t)sqlite3_column_int64(st, 0);
            }
            if (text != NULL) {
                const unsigned char *p = sqlite3_column_text(st, 0);
                snprintf(text, text_cap, "%s", p ? (const char *)p : "");
            }
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_ERROR;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static tks_result open_result(int rc)
{
    int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? TKS_BUSY : TKS_ERR;
}

/* Brings the schema to `target` (SCHEMA_LATEST but in tests), one
 * transaction per migration. The version is re-read inside each transaction:
 * another process may have migrated the store meanwhile. */
static tks_result migrate(sqlite3 *db, int target, int *version, char *err, size_t err_cap)
{
    int64_t v = 0;
    int rc = pragma_value(db, "PRAGMA user_version", &v, NULL, 0);
    if (rc != SQLITE_OK) {
        snprintf(err, err_cap, "reading the store's schema version: %s", sqlite3_errmsg(db));
        return open_result(rc);
    }
    for (;;) {
        if (v < 0 || v > SCHEMA_LATEST) {
            snprintf(err, err_cap, "the store is at schema %lld; this tokend knows up to %d", (long long)v,
                     SCHEMA_LATEST);
            return TKS_ERR;
        }
        if (v > target) {
            snprintf(err, err_cap, "the store is at schema %lld, past the %d asked for", (long long)v, target);
            return TKS_ERR;
        }
        if (v == target) {
            *version = (int)v;
            return TKS_OK;
        }
        int64_t want = v + 1;
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            rc = pragma_value(db, "PRAGMA user_version", &v, NULL, 0);
        }
        if (rc == SQLITE_OK && v == want - 1) {
            rc = sqlite3_exec(db, MIGRATIONS[v], NULL, NULL, NULL);
            if (rc == SQLITE_OK) {
                rc = pragma_value(db, "PRAGMA user_version", &v, NULL, 0);
            }
            if (rc == SQLITE_OK && v != want) {
                snprintf(err, err_cap, "schema migration %lld did not set user_version", (long long)want);
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                return TKS_ERR;
            }
        }
        /* else another process moved the version: commit nothing, look again. */
        if (rc == SQLITE_OK) {
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        if (rc != SQLITE_OK) {
            /* Take the message before ROLLBACK replaces it. */
            snprintf(err, err_cap, "migrating the store to schema %lld: %s", (long long)want, sqlite3_errmsg(db));
            if (!sqlite3_get_autocommit(db)) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            }
            return open_result(rc);
        }
    }
}

/* Creates the database file 0600 if it does not exist (an existing file
 * keeps its mode). umask can only remove bits from 0600. */
static int create_file(const char *path, char *err, size_t err_cap)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot open the store %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

/* Connection settings; on failure err says why. */
static tks_result configure(sqlite3 *db, const char *path, int in_memory, char *err, size_t err_cap)
{
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_MS);
    /* Hardening for a database file someone else may have edited
     * (https://sqlite.org/security.html). */
#ifdef SQLITE_DBCONFIG_DEFENSIVE
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#endif
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
#endif

    char mode[16] = "";
    int rc = pragma_value(db, "PRAGMA journal_mode = WAL", NULL, mode, sizeof mode);
    if (rc != SQLITE_OK) {
        snprintf(err, err_cap, "cannot open the store %s: %s", path, sqlite3_errmsg(db));
        return open_result(rc);
    }
    if (!in_memory && strcmp(mode, "wal") != 0) {
        snprintf(err, err_cap, "cannot switch the store %s to WAL mode (journal_mode is %s)", path, mode);
        return TKS_ERR;
    }
    rc = sqlite3_exec(db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;", NULL,
                      NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, err_cap, "configuring the store %s: %s", path, sqlite3_errmsg(db));
        return open_result(rc);
    }
    int64_t fk = 0;
    if (pragma_value(db, "PRAGMA foreign_keys", &fk, NULL, 0) != SQLITE_OK || fk != 1) {
        snprintf(err, err_cap, "this SQLite library does not enforce foreign keys");
        return TKS_ERR;
    }
    return TKS_OK;
}

tks_result tksi_sqlite_open(tks_store *s, const char *path, char *err, size_t err_cap)
{
    return tksi_sqlite_open_at(s, path, SCHEMA_LATEST, err, err_cap);
}

tks_result tksi_sqlite_open_at(tks_store *s, const char *path, int target, char *err, size_t err_cap)
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
    if (!sqlite3_threadsafe()) {
        snprintf(err, err_cap, "this SQLite library was built without thread support");
        return TKS_ERR;
    }
    int in_memory = strcmp(path, ":memory:") == 0;
    if (!in_memory && create_file(path, err, err_cap) != 0) {
        return TKS_ERR;
    }
    struct sq *q = calloc(1, sizeof *q);
    if (q == NULL) {
        snprintf(err, err_cap, "out of memory opening the store");
        return TKS_ERR;
    }
    if (pthread_mutex_init(&q->mu, NULL) != 0) {
        free(q);
        snprintf(err, err_cap, "cannot create a mutex for the store");
        return TKS_ERR;
    }
    int version = 0;
    tks_result r = TKS_ERR;
    /* PATH is a file name, never an SQLite URI (Debian builds SQLite with
     * SQLITE_USE_URI, which would read "file:x?mode=ro" as one): "./" keeps
     * a path that starts with "file:" literal. */
    char *name = NULL;
    if (strncmp(path, "file:", 5) == 0) {
        size_t n = strlen(path);
        name = malloc(n + 3);
        if (name == NULL) {
            snprintf(err, err_cap, "out of memory opening the store");
            goto out;
        }
        memcpy(name, "./", 2);
        memcpy(name + 2, path, n + 1);
    }
    int rc = sqlite3_open_v2(name ? name : path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    free(name);
    if (rc != SQLITE_OK) {
        snprintf(err, err_cap, "cannot open the store %s: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        goto out;
    }
    r = configure(q->db, path, in_memory, err, err_cap);
    if (r == TKS_OK) {
        r = migrate(q->db, target, &version, err, err_cap);
    }
    if (r == TKS_OK) {
        s->be = &SQLITE_BACKEND;
        s->impl = q;
        s->schema_version = version;
    }
out:
    if (r != TKS_OK) {
        sqlite3_close(q->db);
        pthread_mutex_destroy(&q->mu);
        free(q);
    }
    return r;
}
