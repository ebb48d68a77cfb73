/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h — what the files of src/http/ share: the server object, the
 * per-connection request state, bounded output buffers, the response
 * helpers, form parsing, metrics and the access log. Nothing here is used
 * outside src/http/ (server.h is the contract).
 *
 * Threading: libmicrohttpd runs a pool of worker threads, each with its own
 * epoll set; a connection lives on one worker for its whole life, so its
 * srv_conn is only ever touched by that thread. Shared state (metrics) is
 * atomic; the authority is thread-safe (authority.h).
 */
#ifndef TOKEND_HTTP_INTERNAL_H
#define TOKEND_HTTP_INTERNAL_H

#include <pthread.h>

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "http/server.h"

/* ---- limits of the HTTP layer (with the reason for each) ------------------ */

/* Form parameters in one OAuth request: a token request has about five. */
#define SRV_FORM_MAX_PARAMS 32u
/* The Basic credentials of a token request: a client id (<= 64 bytes) and a
 * 256-bit secret, both possibly percent-encoded (x3), plus room. */
#define SRV_BASIC_MAX 1024u
/* Required scopes of one /auth request (the core's policy list limit). */
#define SRV_AUTH_MAX_SCOPES 32u
/* The text of the `aud` and `scope` query parameters of /auth, together. */
#define SRV_AUTH_QUERY_MAX 2048u
/* A chunked body over max_body is read and thrown away up to this much, so
 * that the client can be told 413; past it the connection is cut. */
#define SRV_DISCARD_MAX (4u * 1024u * 1024u) /* bodies over the limit read and dropped before a 413 */
/* Retry-After of a 503 that names none, seconds: a store reconnects and a
 * password check frees up within a few. */
#define SRV_RETRY_AFTER_503 "2"
/* A graceful stop waits this long for requests in flight. */
#define SRV_STOP_WAIT_MS 5000u
/* Connections the admin listener holds at once: a scraper or two and a
 * health probe; more wait in the listen queue. */
#define SRV_ADMIN_MAX_CONNECTIONS 16u

/* ---- bounded output buffers ---------------------------------------------- */

/* A NUL-terminated text buffer that never grows past `max`. `heap` buffers
 * start small and realloc up to max; others write into caller memory of
 * `cap` (== max) bytes. On overflow the text is cut and `overflow` set, so
 * callers check once at the end. */
typedef struct srv_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
    int heap;
    int overflow;
} srv_buf;

void srv_buf_fixed(srv_buf *b, char *mem, size_t cap);
/* Heap buffer; p stays NULL until the first write. Free with srv_buf_free
 * or take p (owned, free()). */
void srv_buf_heap(srv_buf *b, size_t max);
void srv_buf_free(srv_buf *b);
void srv_buf_put(srv_buf *b, const char *s, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_putc(srv_buf *b, char c);
/* Appends an unsigned decimal (no printf: the access log writes a few per request). */
void srv_buf_u64(srv_buf *b, uint64_t v);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with quotes; bytes < 0x20, '"', '\\' and DEL
 * escaped, bytes >= 0x80 passed through when they form valid UTF-8 and
 * written as \ufffd otherwise, so the output is always valid JSON. */
void srv_buf_json_str(srv_buf *b, const char *s, size_t n);
/* HTML text with & < > " ' escaped. */
void srv_buf_html(srv_buf *b, const char *s, size_t n);
/* A URL query component: RFC 3986 unreserved characters as they are,
 * every other byte %XX (so a space is %20). */
void srv_buf_url(srv_buf *b, const char *s, size_t n);

/* ---- the server ----------------------------------------------------------- */

enum srv_route {
    SRV_ROUTE_TOKEN = 0,
    SRV_ROUTE_REVOKE,
    SRV_ROUTE_INTROSPECT,
    SRV_ROUTE_JWKS,
    SRV_ROUTE_METADATA,
    SRV_ROUTE_AUTH,
    SRV_ROUTE_ERRORS,
    SRV_ROUTE_HEALTHZ,
    SRV_ROUTE_READYZ,
    SRV_ROUTE_METRICS,
    SRV_ROUTE_AUTHORIZE, /* user sign-in (issue 4) */
    SRV_ROUTE_LOGIN,
    SRV_ROUTE_LOGOUT,
    SRV_ROUTE_USERINFO,    /* OpenID Connect Core section 5.3 */
    SRV_ROUTE_OIDC_CONFIG, /* OpenID Connect Discovery 1.0 */
    SRV_ROUTE_CONSENT,     /* the consent form of third-party clients */
    SRV_ROUTE_OTHER,       /* 404 */
    SRV_ROUTE_NONE,        /* libmicrohttpd answered before routing (e.g. 431) */
    SRV_ROUTE_COUNT_
};

/* The route pattern as logged and used as a metrics label. */
const char *srv_route_name(enum srv_route r);

/* Status codes that get their own metrics series; others count as "other". */
#define SRV_STATUS_SLOTS 19u

/* Latency histogram buckets, seconds (0.0001 .. 1), plus +Inf. */
#define SRV_HIST_BUCKETS 13u

typedef struct srv_metrics {
    _Atomic uint64_t validations[TK_REASON_COUNT_];
    _Atomic uint64_t requests[SRV_ROUTE_COUNT_][SRV_STATUS_SLOTS + 1];
    _Atomic uint64_t hist[SRV_ROUTE_COUNT_][SRV_HIST_BUCKETS + 1];
    _Atomic uint64_t hist_sum_us[SRV_ROUTE_COUNT_];
} srv_metrics;

struct srv_page;

/* ---- client addresses (netaddr.c) ---------------------------------------------- */

/* An address or prefix; IPv4 as IPv4-mapped IPv6, its prefix length + 96. */
typedef struct srv_cidr {
    unsigned char addr[16];
    unsigned bits;
} srv_cidr;

enum srv_fwd { SRV_FWD_XFF = 0, SRV_FWD_FORWARDED = 1 };

#define SRV_TRUSTED_MAX 32u

/* An IPv4 or IPv6 address from s[0..n) (no port, no brackets): 0 or -1. */
int srv_addr_parse(const char *s, size_t n, unsigned char out[16]);
void srv_addr_format(const unsigned char a[16], char *out, size_t cap);
void srv_addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16]);
/* "ADDR" or "ADDR/BITS" from s[0..n): 0 or -1. */
int srv_cidr_parse(const char *s, size_t n, srv_cidr *out);
/* A comma- or space-separated list (NUL-terminated); -1 with err on a bad item. */
int srv_cidr_list_parse(const char *s, srv_cidr *out, size_t cap, size_t *n, char *err, size_t err_cap);
int srv_cidr_match(const srv_cidr *list, size_t n, const unsigned char addr[16]);
/* The client of a request whose TCP peer is `peer` (see netaddr.c): the
 * peer itself unless it is a trusted proxy; then the rightmost address of
 * the forwarding header values (vals[i], lens[i], in order) that is not a
 * trusted proxy. Returns 1 when taken from a header, 0 when the peer, -1
 * when the header could not be read where it mattered (then the peer). */
int srv_client_addr(const unsigned char peer[16], const char *const *vals, const size_t *lens, size_t n_vals,
                    enum srv_fwd kind, const srv_cidr *trusted, size_t n_trusted, unsigned char out[16]);

/* ---- slow work off the request threads (workers.c) ------------------------------ */

typedef struct srv_pool srv_pool;
typedef void (*srv_job_fn)(void *arg);

typedef struct srv_pool_info {
    size_t threads, limit, running, waiting;
    uint64_t done, refused;
} srv_pool_info;

int srv_pool_start(srv_pool **out, unsigned threads, unsigned max_waiting);
/* Runs every job submitted, then stops the threads; later reservations
 * fail. The pool stays allocated (requests may still ask). NULL: no-op. */
void srv_pool_drain(srv_pool *p);
/* Drains and frees. NULL is a no-op. */
void srv_pool_stop(srv_pool *p);
/* Takes a place for a job: 0, or -1 when threads + max_waiting are taken. */
int srv_pool_reserve(srv_pool *p);
/* Queues fn(arg) on a place reserved before; never fails. */
void srv_pool_submit(srv_pool *p, srv_job_fn fn, void *arg);
/* Gives a reserved place back unused. */
void srv_pool_unreserve(srv_pool *p);
void srv_pool_stats(srv_pool *p, srv_pool_info *out);

/* One address's connection count (conns.c: open addressing). */
struct srv_ipc_slot {
    unsigned char addr[16];
    uint32_t count; /* 0: free */
};

typedef struct srv_conn srv_conn;

struct tkh_server {
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *admin_daemon; /* the admin listener (plain HTTP), or NULL */
    uint16_t admin_port;
    tka_authority *auth;
    tks_store *store;
    tkh_config cfg;
    uint16_t port;
    char *realm;    /* owned copy, quotes and backslashes removed */
    char *base_url; /* public URL without trailing '/', owned */
    char *metadata; /* RFC 8414 document, built once, owned */
    const char *tls_priorities;
    size_t metadata_len;
    int64_t started_at;
    EVP_MD *sha256; /* fetched once, for token fingerprints */

    /* user sign-in: cookie names (the __Host- prefix needs HTTPS, so plain
     * HTTP gets names without it) and whether we serve HTTPS (HSTS) */
    const char *cookie_session;
    const char *cookie_csrf;
    int https;

    /* /errors pages rendered once at start */
    struct srv_page *pages;
    size_t pages_len;
    char *errors_index;
    size_t errors_index_len;
    char *errors_list; /* the <ul> of every code, for the page of an unknown one */
    size_t errors_list_len;

    srv_metrics metrics;
    _Atomic long in_flight;

    /* access log (log.c): whole lines into two buffers in turn, written
     * by the flusher thread at line boundaries */
    FILE *log;                    /* without log_path: the stream written to (stderr) */
    char *log_path;               /* --log, reopened by srv_log_reopen (owned), or NULL */
    int log_fd;                   /* where lines go; swapped under write_lock */
    int log_fd_owned;             /* opened from log_path (closed at stop) */
    pthread_mutex_t log_lock;     /* the buffers and the flags below */
    pthread_mutex_t write_lock;   /* held while writing to log_fd (lock order: write_lock, log_lock) */
    pthread_cond_t flush_cond;    /* to the flusher: a buffer is full, or stop */
    pthread_cond_t log_room;      /* from the flusher: the full buffer is written */
    char *log_bufs[2];            /* LOG_BUF_MAX each */
    int log_act;                  /* the buffer lines go to */
    size_t log_len;               /* bytes in it */
    size_t log_full_len;          /* not 0: log_bufs[!log_act] holds that many bytes to write */
    _Atomic uint64_t log_dropped; /* writes lost to write errors */
    pthread_t flusher;
    int flusher_running;
    int flusher_stop;
    int log_sample_all;      /* every successful /auth line is logged */
    uint64_t log_sample_cut; /* else: one when a 64-bit draw is below this */

    /* TLS (tls.c): the certificate and key served, swapped on reload */
    struct srv_tls *_Atomic tls; /* the pair new handshakes get */
    struct srv_tls *tls_retired; /* replaced pairs, freed later (under tls.c's lock) */

    /* messages of libmicrohttpd while starting go here (for err) */
    char start_err[256];
    _Atomic int starting;

    /* client addresses: trusted proxies and their header */
    srv_cidr trusted[SRV_TRUSTED_MAX];
    size_t n_trusted;

    /* connections (conns.c): per-address counts, the registry, the sweeper */
    pthread_mutex_t ipc_lock;
    struct srv_ipc_slot *ipc;
    size_t ipc_cap;
    pthread_mutex_t conns_lock;
    pthread_cond_t sweep_cond;
    srv_conn *conns;
    pthread_t sweep_thread;
    int sweep_running;
    int sweep_stop;
    int conns_ready;
    _Atomic uint64_t n_refused_per_ip;
    _Atomic uint64_t n_cut_slow;

    /* password checks (workers.c) */
    srv_pool *login_pool;

    /* the audience /auth requires when its query names none (owned) */
    char *auth_audience;
    tka_trust *trust;    /* trusted issuers (borrowed), or NULL */
    struct tkh_bcl *bcl; /* back-channel logout sender (borrowed), or NULL */

    /* /readyz: the last write probe (monotonic ns) and its result */
    int ready_lock_init;
    pthread_mutex_t ready_lock;
    uint64_t ready_checked_ns;
    int ready_ok;
    char ready_why[160];
    _Atomic int ready_last;         /* ready_ok, for probes that find a check running */
    _Atomic uint64_t ready_last_ns; /* when it was decided */
};

/* One per TCP connection (allocated when it is accepted), reset for every
 * request on it. */
struct srv_login_job;

struct srv_conn {
    struct tkh_server *srv;
    char ip[48];        /* the client: the peer, or who a trusted proxy says it forwards */
    char peer_text[48]; /* the TCP peer, logged when it differs from ip */
    unsigned char peer[16];
    int peer_counted;          /* counted against the per-address limit */
    int admin;                 /* a connection to the admin listener */
    int fd;                    /* the socket (the sweeper only ever shutdown(2)s it) */
    srv_conn *prev, *next;     /* the registry (conns.c), under conns_lock */
    _Atomic int receiving;     /* a request is being received (the deadline runs) */
    _Atomic uint64_t ready_ns; /* since when */
    _Atomic int cut;           /* the sweeper cut this connection */
    struct srv_login_job *job; /* a password check in flight (login.c) */

    /* the current request */
    uint64_t t0_ns;
    char rid[17];
    int seen; /* the access handler has run for this request */
    int done; /* a response was queued */
    enum srv_route route;
    const char *method;
    unsigned status;
    int reason;      /* tk_reason of a token verdict, or -1 */
    char fp[9];      /* token fingerprint, "" when no token */
    int sampled_out; /* a successful /auth answer is not logged (--log-sample-auth-ok) */
    char client_id[TKS_ID_MAX + 1];
    char user[TKS_ID_MAX + 1]; /* the signed-in user, for the log ("" when none) */
    const char *error;         /* OAuth / HTTP error code answered, static */
    char detail[TK_LIMIT_DETAIL_LEN];

    /* the body of a POST */
    char *body;
    size_t body_len;
    size_t body_cap;
    int body_too_big;
    size_t discarded;

    /* the raw (still percent-encoded) query of the routes that parse it
     * strictly themselves (/oauth/authorize, /logout), copied when the
     * request line arrives: libmicrohttpd's own parse forgives bad escapes
     * and hides repeated parameters */
    char *query;
    size_t query_len;
    size_t query_cap;
    int has_query;
};

/* ---- responses ---------------------------------------------------------------- */

typedef struct srv_header {
    const char *name;
    const char *value;
} srv_header;

enum srv_cache { SRV_CACHE_NONE = 0, SRV_CACHE_NO_STORE, SRV_CACHE_NO_STORE_PRAGMA, SRV_CACHE_PUBLIC_300 };

/* Queues a response: body (may be empty) copied unless `persistent`
 * (then it must outlive the response); every response carries
 * X-Request-Id, and Content-Type when ctype is non-NULL. Records the
 * status in the connection for the log. */
enum MHD_Result srv_respond(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *ctype,
                            const char *body, size_t len, int persistent, enum srv_cache cache, const srv_header *hdrs,
                            size_t n_hdrs);
/* Takes ownership of a malloc'ed body (freed with free()). */
enum MHD_Result srv_respond_owned(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *ctype,
                                  char *body, size_t len, enum srv_cache cache, const srv_header *hdrs, size_t n_hdrs);
/* {"error": code, "error_description": desc} (desc may be NULL). */
enum MHD_Result srv_respond_error(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *desc, enum srv_cache cache, const srv_header *hdrs, size_t n_hdrs);
/* The bearer token of the request (RFC 6750 section 2.1; exactly one
 * Authorization header): 1 with *tok (borrowed from the request) and its
 * fingerprint noted, or 0 with the verdict that says what is wrong. */
int srv_bearer_token(srv_conn *st, struct MHD_Connection *c, const char **tok, size_t *tok_len, tk_verdict *v);
/* A token verdict as /auth answers it: the reason's status, X-Auth-Reason,
 * an RFC 6750 section 3 challenge (none for a 503), an empty body; the
 * detail goes to the log. */
enum MHD_Result srv_respond_verdict(srv_conn *st, struct MHD_Connection *c, const tk_verdict *v);
/* Records a detail line for the log (printf). */
void srv_note(srv_conn *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* First 8 hex digits of SHA-256(tok) into st->fp. */
void srv_fingerprint(srv_conn *st, const char *tok, size_t len);

/* ---- endpoints ------------------------------------------------------------------ */

enum MHD_Result srv_handle_token(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_revoke(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_introspect(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_auth(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_jwks(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_metadata(srv_conn *st, struct MHD_Connection *c);
/* /.well-known/openid-configuration: the same document. */
enum MHD_Result srv_handle_oidc_config(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_errors(srv_conn *st, struct MHD_Connection *c, const char *url);
enum MHD_Result srv_handle_healthz(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_readyz(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_metrics(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_authorize(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_login(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_logout(srv_conn *st, struct MHD_Connection *c);
enum MHD_Result srv_handle_userinfo(srv_conn *st, struct MHD_Connection *c);

/* Builds the RFC 8414 document into s->metadata. Returns 0 or -1. */
int srv_metadata_build(struct tkh_server *s);

/* ---- forms (application/x-www-form-urlencoded) and client credentials ---------- */

typedef struct srv_param {
    const char *name; /* decoded, NUL-terminated, inside the body buffer */
    size_t name_len;
    const char *value;
    size_t value_len;
} srv_param;

typedef struct srv_form {
    srv_param p[SRV_FORM_MAX_PARAMS];
    size_t n;
} srv_form;

enum srv_form_result {
    SRV_FORM_OK = 0,
    SRV_FORM_BAD_ENCODING, /* a '%' not followed by two hex digits */
    SRV_FORM_NUL,          /* %00 */
    SRV_FORM_DUPLICATE,    /* RFC 6749 section 3.1 */
    SRV_FORM_TOO_MANY,
};

/* Parses `buf[0..len)` in place (buf[len] must be writable: cap > len).
 * Pairs without a value, and empty pairs, are kept (value_len 0); callers
 * treat empty values as absent (RFC 6749 section 3.1). On DUPLICATE,
 * *bad names the repeated parameter (a pointer into buf). */
enum srv_form_result srv_form_parse(char *buf, size_t len, srv_form *f, const char **bad);
/* Like srv_form_parse, but a repeated parameter does not stop the parse:
 * the first occurrence is kept, the rest dropped, and DUPLICATE returned at
 * the end with *bad naming the first parameter that was repeated (so that
 * /oauth/authorize can still tell whether it may redirect the error). */
enum srv_form_result srv_form_parse_all(char *buf, size_t len, srv_form *f, const char **bad);
/* Content-Type is application/x-www-form-urlencoded (parameters allowed). */
int srv_is_form(struct MHD_Connection *c);
/* The value of `name`, or NULL when absent or empty. */
const char *srv_form_get(const srv_form *f, const char *name, size_t *len);
/* Decodes percent-encoding (and '+' as space) of in[0..n) into out (cap
 * >= n + 1, NUL-terminated). Returns the decoded length or (size_t)-1 on a
 * bad escape or %00. */
size_t srv_form_decode(const char *in, size_t n, char *out, size_t cap);
/* Strict base64 (RFC 4648 section 4, padded) of in[0..n) into out (cap >=
 * n / 4 * 3 + 1, NUL-terminated). Returns the length or (size_t)-1. */
size_t srv_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* ---- metrics and log ---------------------------------------------------------- */

void srv_metrics_request(srv_metrics *m, enum srv_route r, unsigned status, uint64_t us);
void srv_metrics_validation(srv_metrics *m, tk_reason r);

/* Writes the access log line of the request that just completed. */
void srv_log_request(struct tkh_server *s, const srv_conn *st, uint64_t us);
/* A line for events that are not requests (libmicrohttpd messages). */
void srv_log_event(struct tkh_server *s, const char *level, const char *msg);
/* Opens --log (or takes the stream) and starts the flusher; 0, or -1 with err. */
int srv_log_start(struct tkh_server *s, char *err, size_t err_cap);
/* Flushes to the current file, then opens log_path again (O_APPEND,
 * created 0640) and writes there from now on: 0; 1 when the log is not a
 * file; -1 with err when it cannot be opened (the old file stays). */
int srv_log_reopen(struct tkh_server *s, char *err, size_t err_cap);
void srv_log_stop(struct tkh_server *s);
/* 1 when a successful /auth request is left out of the log (--log-sample-auth-ok). */
int srv_log_sampled_out(struct tkh_server *s);

/* ---- TLS (tls.c) ---------------------------------------------------------------- */

struct srv_tls;
/* Parses a PEM certificate chain and its private key and makes them the
 * ones new handshakes get; the first call also registers the server with
 * the handshake callback. 0, or -1 with why in err (the served pair is
 * unchanged): unparsable, key not matching the certificate, or (with
 * check_dates) expired or not yet valid. */
int srv_tls_load(struct tkh_server *s, const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                 int check_dates, char *err, size_t err_cap);
/* The gnutls_certificate_retrieve_function2 handed to libmicrohttpd. */
void *srv_tls_callback(void);
/* Frees every pair (after the daemon stopped). */
void srv_tls_free(struct tkh_server *s);

/* ---- /errors pages -------------------------------------------------------------- */

/* Renders every section of the embedded docs/errors.md. Returns 0 or -1. */
int srv_pages_build(struct tkh_server *s);
void srv_pages_free(struct tkh_server *s);

/* ---- user sign-in: authorization requests, pages, cookies ---------------------- */

/* An authorization request (RFC 6749 section 4.1.1, RFC 7636), as received
 * in the query of /oauth/authorize or the hidden fields of the sign-in
 * form, and what tka_authorize_check made of it. The strings point into
 * the parsed query or body. */
typedef struct srv_authz {
    tka_authz_request req;
    tka_authz_result result;
    tks_client client; /* filled on OK and on every redirectable error */
    char redirect[TKS_URI_MAX + 1];
    char scope[TKS_LIST_MAX + 1]; /* granted */
    char why[256];
    /* found while reading: a repeated parameter, or audience and resource
     * naming different targets (invalid_request); problem_fatal is
     * BAD_CLIENT or BAD_REDIRECT when client_id or redirect_uri itself was
     * repeated (then nothing may be redirected), else TKA_AZ_OK */
    char problem[160];
    tka_authz_result problem_fatal;
} srv_authz;

/* Reads the request's parameters from a parsed query or form; `dup` is the
 * repeated parameter srv_form_parse_all reported, or NULL. */
void srv_authz_read(srv_authz *az, const srv_form *f, const char *dup);
/* Runs tka_authorize_check, after the problems found while reading: those
 * are invalid_request once the client and its redirect URI are known good. */
tka_authz_result srv_authz_check(srv_conn *st, srv_authz *az);
/* Answers a request srv_authz_check refused: our own 400 page while the
 * client or its redirect URI is not verified (nothing is redirected to an
 * unverified URI, RFC 6749 section 4.1.2.1), a 503 page when the check
 * failed before that, else `status` (302 for GET, 303 for POST) to the
 * client with error, error_description, state and iss (RFC 9207). */
enum MHD_Result srv_authz_fail(srv_conn *st, struct MHD_Connection *c, const srv_authz *az, unsigned status);
/* Issues a code for `session` and redirects to the client with code, state
 * and iss; extra Set-Cookie header when set_cookie is non-NULL. */
enum MHD_Result srv_authz_redirect_code(srv_conn *st, struct MHD_Connection *c, const srv_authz *az,
                                        const tks_session *session, unsigned status, const char *set_cookie);
/* After a sign-in, or with a session: the consent page when the client is
 * third-party and the user has not allowed these scopes (or the request
 * said prompt=consent), else srv_authz_redirect_code. */
enum MHD_Result srv_authz_finish(srv_conn *st, struct MHD_Connection *c, const srv_authz *az,
                                 const tks_session *session, unsigned status, const char *set_cookie);
/* The consent page of a third-party client (POST /consent answers it). */
enum MHD_Result srv_page_consent(srv_conn *st, struct MHD_Connection *c, const srv_authz *az, const char *user,
                                 const char *set_cookie);
/* POST /consent. */
enum MHD_Result srv_handle_consent(srv_conn *st, struct MHD_Connection *c);
/* Does the space-separated prompt parameter hold `what`? */
int srv_prompt_has(const srv_authz *az, const char *what);

/* HTML responses: text/html, Cache-Control: no-store (or the given cache
 * policy), and the security headers of every page (CSP with form-action
 * 'self' plus `form_origin` when non-NULL, X-Frame-Options, Referrer-Policy,
 * HSTS over HTTPS), plus `hdrs`. Takes ownership of a malloc'ed body. */
enum MHD_Result srv_respond_html(srv_conn *st, struct MHD_Connection *c, unsigned status, char *body, size_t len,
                                 enum srv_cache cache, const char *form_origin, const srv_header *hdrs, size_t n_hdrs);
/* The same for a body that outlives the response (static pages). */
enum MHD_Result srv_respond_html_static(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *body,
                                        size_t len, enum srv_cache cache);

/* The sign-in page for a checked request `az`, with an optional message
 * (plain text, escaped here) and the username to keep in its field. Sets
 * the CSRF cookie. retry_after > 0 adds Retry-After. */
enum MHD_Result srv_page_login(srv_conn *st, struct MHD_Connection *c, unsigned status, const srv_authz *az,
                               const char *message, const char *username, int64_t retry_after);
/* A page with a heading and one or two paragraphs (plain text, escaped);
 * `set_cookie` adds a Set-Cookie header when non-NULL. */
enum MHD_Result srv_page_message(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *title,
                                 const char *text, const char *text2, const char *set_cookie);
/* One thing a page states for whoever must find the request again (the
 * client id, the redirect URI received, the request id): a label and a
 * value, which may be untrusted bytes (shown escaped, control characters as
 * '?', cut after SRV_FACT_SHOWN bytes) or NULL (shown as "(none)"). */
typedef struct srv_fact {
    const char *label;
    const char *value;
} srv_fact;
#define SRV_FACT_SHOWN 512u
/* srv_page_message with a list of facts under the text, and a last small
 * paragraph `note` (plain text, escaped; may be NULL). */
enum MHD_Result srv_page_facts(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *title,
                               const char *text, const char *text2, const srv_fact *facts, size_t n_facts,
                               const char *note);
/* `in` for a log line or a page: at most `cap` - 1 bytes, control
 * characters and DEL as '?', "..." when cut. */
void srv_fact_copy(char *out, size_t cap, const char *in);

/* "Sign out?" with a button that POSTs to /logout with the CSRF field and
 * the request's client_id, post_logout_redirect_uri and state (from f).
 * Sets the CSRF cookie. */
enum MHD_Result srv_page_logout_confirm(srv_conn *st, struct MHD_Connection *c, const char *user, const srv_form *f);

/* The value of cookie `name` of this request (borrowed from the request,
 * not NUL-terminated, *len bytes), or NULL when the request has no such
 * cookie, an empty or malformed one, the name twice, or more than one
 * Cookie header (fail closed: see cookie.c). */
const char *srv_cookie(struct MHD_Connection *c, const char *name, size_t *len);
/* The value of cookie `name[0..name_len)` in the Cookie header value
 * `header[0..len)` (RFC 6265 section 4.2.1; any bytes, never read past len).
 * Returns a pointer into `header` (DQUOTEs around the value removed) and
 * *value_len (0 for an empty value); NULL with *value_len 0 when the name is
 * absent, appears more than once, or its value is not cookie-octets. Pure:
 * no allocation, no libmicrohttpd (cookie.c). */
const char *srv_cookie_find(const char *header, size_t len, const char *name, size_t name_len, size_t *value_len);
/* Does the form's csrf field equal the CSRF cookie (constant time)? */
int srv_csrf_ok(srv_conn *st, struct MHD_Connection *c, const srv_form *f);
/* The Set-Cookie value that ends the browser session cookie. */
void srv_session_cookie_clear(const struct tkh_server *s, char *out, size_t cap);

/* Monotonic clock in nanoseconds. */
uint64_t srv_now_ns(void);

/* Frees a password check the connection still holds (login.c). */
void srv_login_job_free(srv_conn *st);

/* ---- connection limits (conns.c) -------------------------------------------------- */

int srv_conns_init(struct tkh_server *s);
int srv_conns_start(struct tkh_server *s);
void srv_conns_stop(struct tkh_server *s);
void srv_conns_free(struct tkh_server *s);
/* May a connection from addr be accepted (per-address limit)? 1 or 0. */
int srv_conns_admit(struct tkh_server *s, const unsigned char addr[16]);
/* Counts a connection from addr; returns 1 when counted (remove it later). */
int srv_conns_add(struct tkh_server *s, const unsigned char addr[16]);
void srv_conns_remove(struct tkh_server *s, const unsigned char addr[16]);
void srv_conns_register(struct tkh_server *s, srv_conn *st);
void srv_conns_unregister(struct tkh_server *s, srv_conn *st);

#endif
