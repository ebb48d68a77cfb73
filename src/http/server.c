/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c — the libmicrohttpd daemons of `tokend serve`: start and stop,
 * per-connection state, routing, limits, request ids and the response
 * helpers every endpoint uses. Two daemons share the callbacks: the public
 * listener, and the admin listener (plain HTTP, /metrics, /healthz and
 * /readyz only; its connections are marked admin and routed by
 * restrict_route).
 *
 * How a request flows through libmicrohttpd (0.9.75):
 *  1. the URI log callback (request line parsed): the request's state is
 *     reset, its clock started and its id drawn; MHD then always reports
 *     the request's completion, even when MHD itself answers (431);
 *  2. the access handler, first call (headers parsed): routing and the
 *     limits that can be judged from the headers (431, 413). Nothing else
 *     is queued here: a reply queued on the first call turns keep-alive off
 *     (DESIGN.md, measured: about 4x slower);
 *  3. further calls with body data: accumulated up to max_body;
 *  4. the last call (no more data): the endpoint runs and queues its reply;
 *  5. the completion callback: metrics and the access log line.
 * State lives in one srv_conn per TCP connection (a connection carries one
 * request at a time), so the hot path allocates nothing of its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "http/internal.h"

void tkh_config_defaults(tkh_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_fd = -1;
    c->admin_fd = -1;
    c->host = "127.0.0.1";
    c->port = 8443;
    c->threads = 0;
    c->max_connections = 1024;
    c->conn_timeout = 30;
    c->max_body = 64u * 1024u;
    c->max_header = 16u * 1024u;
    c->realm = "tokend";
    c->explain = 1;
    c->max_per_ip = 64;
    c->request_timeout = 30;
    c->login_workers = 0;
    c->login_queue = 32;
    c->log_sample_auth_ok = 1.0;
}

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- request ids ------------------------------------------------------------
 * 64 bits per request from a per-thread splitmix64 sequence seeded from the
 * CSPRNG: no lock, no syscall, unique within a thread (splitmix64 is a
 * bijection of its counter), and unguessable enough that ids do not reveal
 * request rates. */
static _Thread_local uint64_t rid_state;
static _Thread_local int rid_seeded;

static void request_id(char out[17])
{
    static const char hex[] = "0123456789abcdef";
    if (!rid_seeded) {
        unsigned char seed[8];
        if (RAND_bytes(seed, sizeof seed) == 1) {
            memcpy(&rid_state, seed, sizeof rid_state);
        } else {
            rid_state = srv_now_ns() ^ (uint64_t)(uintptr_t)&rid_state;
        }
        rid_seeded = 1;
    }
    rid_state += 0x9E3779B97F4A7C15u;
    uint64_t z = rid_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[z & 15u];
        z >>= 4;
    }
    out[16] = '\0';
}

void srv_fingerprint(srv_conn *st, const char *tok, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;
    /* The digest is fetched once at start: SHA256() looks it up per call. */
    if (EVP_Digest(tok, len, md, &mdl, st->srv->sha256, NULL) != 1 || mdl < 4) {
        memcpy(st->fp, "????????", 9);
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        st->fp[2 * i] = hex[md[i] >> 4];
        st->fp[2 * i + 1] = hex[md[i] & 15u];
    }
    st->fp[8] = '\0';
}

void srv_note(srv_conn *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(st->detail, sizeof st->detail, fmt, ap);
    va_end(ap);
    if (n < 0) {
        st->detail[0] = '\0';
    }
}

/* ---- routes ------------------------------------------------------------------ */

enum { M_GET = 1, M_POST = 2, M_ANY = 4 };

static const struct route {
    const char *path;
    enum srv_route id;
    int methods;
} routes[] = {
    {"/auth", SRV_ROUTE_AUTH, M_ANY}, /* forward-auth proxies send the original method */
    {"/oauth/token", SRV_ROUTE_TOKEN, M_POST},
    {"/oauth/introspect", SRV_ROUTE_INTROSPECT, M_POST},
    {"/oauth/revoke", SRV_ROUTE_REVOKE, M_POST},
    {"/.well-known/jwks.json", SRV_ROUTE_JWKS, M_GET},
    {"/.well-known/oauth-authorization-server", SRV_ROUTE_METADATA, M_GET},
    {"/healthz", SRV_ROUTE_HEALTHZ, M_GET},
    {"/readyz", SRV_ROUTE_READYZ, M_GET},
    {"/metrics", SRV_ROUTE_METRICS, M_GET},
    {"/oauth/authorize", SRV_ROUTE_AUTHORIZE, M_GET},
    {"/login", SRV_ROUTE_LOGIN, M_GET | M_POST},
    {"/logout", SRV_ROUTE_LOGOUT, M_GET | M_POST},
    {"/userinfo", SRV_ROUTE_USERINFO, M_GET | M_POST},
    {"/.well-known/openid-configuration", SRV_ROUTE_OIDC_CONFIG, M_GET},
    {"/consent", SRV_ROUTE_CONSENT, M_POST},
    {"/errors", SRV_ROUTE_ERRORS, M_GET}, /* last: also the prefix "/errors/" */
};

const char *srv_route_name(enum srv_route r)
{
    static const char *const names[SRV_ROUTE_COUNT_] = {
        [SRV_ROUTE_TOKEN] = "/oauth/token",
        [SRV_ROUTE_REVOKE] = "/oauth/revoke",
        [SRV_ROUTE_INTROSPECT] = "/oauth/introspect",
        [SRV_ROUTE_JWKS] = "/.well-known/jwks.json",
        [SRV_ROUTE_METADATA] = "/.well-known/oauth-authorization-server",
        [SRV_ROUTE_AUTH] = "/auth",
        [SRV_ROUTE_ERRORS] = "/errors/{code}",
        [SRV_ROUTE_HEALTHZ] = "/healthz",
        [SRV_ROUTE_READYZ] = "/readyz",
        [SRV_ROUTE_METRICS] = "/metrics",
        [SRV_ROUTE_AUTHORIZE] = "/oauth/authorize",
        [SRV_ROUTE_LOGIN] = "/login",
        [SRV_ROUTE_LOGOUT] = "/logout",
        [SRV_ROUTE_USERINFO] = "/userinfo",
        [SRV_ROUTE_OIDC_CONFIG] = "/.well-known/openid-configuration",
        [SRV_ROUTE_CONSENT] = "/consent",
        [SRV_ROUTE_OTHER] = "other",
        [SRV_ROUTE_NONE] = "-",
    };
    return (unsigned)r < SRV_ROUTE_COUNT_ ? names[r] : "-";
}

static const struct route *find_route(const char *url)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(url, routes[i].path) == 0) {
            return &routes[i];
        }
    }
    if (strncmp(url, "/errors/", 8) == 0) {
        return &routes[sizeof routes / sizeof routes[0] - 1];
    }
    return NULL;
}

/* A static name for the log: the request's method is not kept. */
static const char *method_name(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(m, known[i]) == 0) {
            return known[i];
        }
    }
    return "other";
}

static int method_bits(const char *m, enum srv_route r)
{
    if (strcmp(m, "GET") == 0) {
        return M_GET;
    }
    if (strcmp(m, "HEAD") == 0) {
        /* the sign-in routes act on GET (issue a code, end a session):
         * a HEAD must not do that behind a HEAD's back */
        return r == SRV_ROUTE_AUTHORIZE || r == SRV_ROUTE_LOGIN || r == SRV_ROUTE_LOGOUT ? 0 : M_GET;
    }
    if (strcmp(m, "POST") == 0) {
        return M_POST;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------------------ */

/* libmicrohttpd takes `void *` even for bodies it only reads. */
static void *unconst(const void *p)
{
    union {
        const void *c;
        void *v;
    } u = {.c = p};
    return u.v;
}

static enum MHD_Result queue(srv_conn *st, struct MHD_Connection *c, unsigned status, struct MHD_Response *r,
                             const char *ctype, enum srv_cache cache, const srv_header *hdrs, size_t n_hdrs)
{
    if (r == NULL) {
        return MHD_NO;
    }
    int ok = MHD_add_response_header(r, "X-Request-Id", st->rid) == MHD_YES;
    if (ok && ctype != NULL) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) == MHD_YES &&
             MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES;
    }
    if (ok && cache != SRV_CACHE_NONE) {
        const char *v = cache == SRV_CACHE_PUBLIC_300 ? "public, max-age=300" : "no-store";
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, v) == MHD_YES;
        if (ok && cache == SRV_CACHE_NO_STORE_PRAGMA) {
            ok = MHD_add_response_header(r, MHD_HTTP_HEADER_PRAGMA, "no-cache") == MHD_YES;
        }
    }
    int has_retry = 0;
    for (size_t i = 0; ok && i < n_hdrs; i++) {
        ok = MHD_add_response_header(r, hdrs[i].name, hdrs[i].value) == MHD_YES;
        has_retry |= strcasecmp(hdrs[i].name, MHD_HTTP_HEADER_RETRY_AFTER) == 0;
    }
    /* Every 503 says when to come back (RFC 9110 section 10.2.3): what was
     * unavailable (the store, a password check) is worth a retry soon. */
    if (ok && status == MHD_HTTP_SERVICE_UNAVAILABLE && !has_retry) {
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, SRV_RETRY_AFTER_503) == MHD_YES;
    }
    enum MHD_Result res = MHD_NO;
    if (ok) {
        res = MHD_queue_response(c, status, r);
    }
    MHD_destroy_response(r);
    if (res == MHD_YES) {
        st->status = status;
        st->done = 1;
        atomic_store_explicit(&st->receiving, 0, memory_order_relaxed);
    }
    return res;
}

enum MHD_Result srv_respond(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *ctype,
                            const char *body, size_t len, int persistent, enum srv_cache cache, const srv_header *hdrs,
                            size_t n_hdrs)
{
    if (body == NULL) {
        body = "";
        len = 0;
        persistent = 1;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, unconst(body), persistent ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_COPY);
    return queue(st, c, status, r, ctype, cache, hdrs, n_hdrs);
}

enum MHD_Result srv_respond_owned(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *ctype,
                                  char *body, size_t len, enum srv_cache cache, const srv_header *hdrs, size_t n_hdrs)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    return queue(st, c, status, r, ctype, cache, hdrs, n_hdrs);
}

enum MHD_Result srv_respond_error(srv_conn *st, struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *desc, enum srv_cache cache, const srv_header *hdrs, size_t n_hdrs)
{
    char mem[1024];
    srv_buf b;
    srv_buf_fixed(&b, mem, sizeof mem);
    srv_buf_puts(&b, "{\"error\":");
    srv_buf_json_str(&b, code, strlen(code));
    if (desc != NULL && desc[0] != '\0') {
        /* RFC 6749 section 5.2: error_description is %x20-21 / %x23-5B /
         * %x5D-7E, so no quote and no backslash. */
        char clean[512];
        size_t k = 0;
        for (const char *p = desc; *p && k < sizeof clean - 1; p++) {
            unsigned char ch = (unsigned char)*p;
            clean[k++] = ch == '"' ? '\'' : ch == '\\' ? '/' : (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
        }
        clean[k] = '\0';
        srv_buf_puts(&b, ",\"error_description\":");
        srv_buf_json_str(&b, clean, k);
    }
    srv_buf_puts(&b, "}");
    if (b.overflow) { /* a description this long is a bug; still answer */
        srv_buf_fixed(&b, mem, sizeof mem);
        srv_buf_puts(&b, "{\"error\":");
        srv_buf_json_str(&b, code, strlen(code));
        srv_buf_puts(&b, "}");
    }
    st->error = code;
    if (desc != NULL && st->detail[0] == '\0') {
        srv_note(st, "%s", desc);
    }
    return srv_respond(st, c, status, "application/json", b.p, b.len, 0, cache, hdrs, n_hdrs);
}

/* ---- connection and request life cycle ------------------------------------------- */

/* libmicrohttpd's accept policy: the per-address connection limit. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct tkh_server *s = cls;
    (void)addrlen;
    unsigned char a[16];
    srv_addr_from_sockaddr(addr, a);
    return srv_conns_admit(s, a) ? MHD_YES : MHD_NO;
}

static void connection_event(struct tkh_server *s, int admin, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        srv_conn *st = calloc(1, sizeof *st);
        if (st == NULL) {
            return; /* the request callbacks then close the connection */
        }
        st->srv = s;
        st->admin = admin;
        st->fd = -1;
        snprintf(st->ip, sizeof st->ip, "-");
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci != NULL && ci->client_addr != NULL) {
            srv_addr_from_sockaddr(ci->client_addr, st->peer);
            srv_addr_format(st->peer, st->ip, sizeof st->ip);
        }
        memcpy(st->peer_text, st->ip, sizeof st->ip);
        /* the admin listener has a small connection cap of its own and no
         * per-address limit: a scraper never takes a client's place */
        st->peer_counted = admin ? 0 : srv_conns_add(s, st->peer);
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (fi != NULL) {
            st->fd = fi->connect_fd;
        }
        atomic_init(&st->receiving, 1);
        atomic_init(&st->ready_ns, srv_now_ns());
        atomic_init(&st->cut, 0);
        srv_conns_register(s, st);
        *socket_context = st;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        srv_conn *st = *socket_context;
        if (st != NULL) {
            /* libmicrohttpd closes the socket after this returns: leave the
             * registry first (conns.c) */
            srv_conns_unregister(s, st);
            if (st->peer_counted) {
                srv_conns_remove(s, st->peer);
            }
            srv_login_job_free(st);
            free(st->body);
            free(st->query);
            free(st);
        }
        *socket_context = NULL;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    connection_event(cls, 0, c, socket_context, toe);
}

static void on_admin_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe)
{
    connection_event(cls, 1, c, socket_context, toe);
}

/* The client's address for this request: the peer, unless the peer is a
 * trusted proxy (then its forwarding header says; netaddr.c). */
struct fwd_values {
    const char *name;
    size_t name_len;
    const char *v[8];
    size_t l[8];
    size_t n;
    int too_many;
};

static enum MHD_Result collect_fwd(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    struct fwd_values *f = cls;
    (void)kind;
    if (key_size == f->name_len && strncasecmp(key, f->name, key_size) == 0 && value != NULL) {
        if (f->n == sizeof f->v / sizeof f->v[0]) {
            f->too_many = 1;
            return MHD_NO;
        }
        f->v[f->n] = value;
        f->l[f->n] = value_size;
        f->n++;
    }
    return MHD_YES;
}

static void client_address(struct tkh_server *s, srv_conn *st, struct MHD_Connection *c)
{
    memcpy(st->ip, st->peer_text, sizeof st->ip);
    if (s->n_trusted == 0 || !srv_cidr_match(s->trusted, s->n_trusted, st->peer)) {
        return;
    }
    struct fwd_values f;
    memset(&f, 0, sizeof f);
    f.name = s->cfg.forwarded_header ? "Forwarded" : "X-Forwarded-For";
    f.name_len = strlen(f.name);
    (void)MHD_get_connection_values_n(c, MHD_HEADER_KIND, collect_fwd, &f);
    unsigned char a[16];
    int rc = f.too_many
                 ? -1
                 : srv_client_addr(st->peer, f.v, f.l, f.n, s->cfg.forwarded_header ? SRV_FWD_FORWARDED : SRV_FWD_XFF,
                                   s->trusted, s->n_trusted, a);
    if (rc > 0) {
        srv_addr_format(a, st->ip, sizeof st->ip);
    } else if (rc < 0) {
        srv_note(st, "the %s header from trusted proxy %s does not parse: the proxy's own address is used", f.name,
                 st->peer_text);
    }
}

static int hexdigit(char c);

/* Is the raw path p[0..n) (percent-encoded) one of the routes that parse
 * their query themselves? Decoded as unescape() does, so "/oauth/%61uthorize"
 * routes and parses alike. */
static int wants_raw_query(const char *p, size_t n)
{
    char d[32];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o == sizeof d - 1) {
            return 0;
        }
        int h = p[i] == '%' && i + 2 < n ? hexdigit(p[i + 1]) : -1;
        int l = h >= 0 ? hexdigit(p[i + 2]) : -1;
        if (h >= 0 && l >= 0 && (h | l) != 0) {
            d[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            d[o++] = p[i];
        }
    }
    d[o] = '\0';
    return strcmp(d, "/oauth/authorize") == 0 || strcmp(d, "/logout") == 0;
}

/* Keeps the raw query of /oauth/authorize and /logout (see srv_conn). A
 * query too long for the header limit is left out: the head gets 431. */
static void keep_query(struct tkh_server *s, srv_conn *st, const char *uri)
{
    size_t n = strnlen(uri, s->cfg.max_header + 1);
    const char *q = memchr(uri, '?', n);
    if (q == NULL || !wants_raw_query(uri, (size_t)(q - uri))) {
        return;
    }
    q++;
    size_t ql = n - (size_t)(q - uri);
    const char *hash = memchr(q, '#', ql); /* a fragment is not sent by browsers; never part of the query */
    if (hash != NULL) {
        ql = (size_t)(hash - q);
    }
    if (ql > s->cfg.max_header) {
        return;
    }
    if (ql + 1 > st->query_cap) {
        char *nq = realloc(st->query, ql + 1);
        if (nq == NULL) {
            return;
        }
        st->query = nq;
        st->query_cap = ql + 1;
    }
    memcpy(st->query, q, ql);
    st->query[ql] = '\0';
    st->query_len = ql;
    st->has_query = 1;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct tkh_server *s = cls;
    /* never logged: query strings may carry anything */
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci == NULL || ci->socket_context == NULL) {
        return NULL;
    }
    srv_conn *st = ci->socket_context;
    st->t0_ns = srv_now_ns();
    request_id(st->rid);
    st->seen = 0;
    st->done = 0;
    st->route = SRV_ROUTE_NONE;
    st->method = "-";
    st->status = 0;
    st->reason = -1;
    st->fp[0] = '\0';
    st->sampled_out = 0;
    st->client_id[0] = '\0';
    st->user[0] = '\0';
    st->error = NULL;
    st->detail[0] = '\0';
    st->body_len = 0;
    st->body_too_big = 0;
    st->discarded = 0;
    st->query_len = 0;
    st->has_query = 0;
    if (uri != NULL) {
        keep_query(s, st, uri);
    }
    atomic_fetch_add_explicit(&s->in_flight, 1, memory_order_relaxed);
    return st;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    struct tkh_server *s = cls;
    srv_conn *st = *req_cls;
    *req_cls = NULL;
    if (st == NULL) {
        return;
    }
    if (!st->done) {
        /* libmicrohttpd answered itself (431, 400), or the client left */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        st->status = ci != NULL ? ci->http_status : 0;
        if (st->detail[0] == '\0') {
            srv_note(st, "%s",
                     toe == MHD_REQUEST_TERMINATED_COMPLETED_OK      ? "answered by libmicrohttpd"
                     : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "connection timed out"
                     : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT    ? "client closed the connection"
                     : toe == MHD_REQUEST_TERMINATED_READ_ERROR      ? "read error"
                     : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "server shutting down"
                     : toe == MHD_REQUEST_TERMINATED_WITH_ERROR      ? "request rejected by libmicrohttpd"
                                                                     : "request ended");
        }
    }
    if (atomic_load(&st->cut) && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        srv_note(st, "the request did not arrive within %us: connection cut (a slow or stalled client)",
                 s->cfg.request_timeout);
    }
    uint64_t now_ns = srv_now_ns();
    uint64_t us = (now_ns - st->t0_ns) / 1000u;
    srv_metrics_request(&s->metrics, st->route, st->status, us);
    /* sampling leaves out successful /auth answers only: every failure,
     * and every other route, is logged */
    if (!(st->sampled_out && st->route == SRV_ROUTE_AUTH && st->status == MHD_HTTP_OK)) {
        srv_log_request(s, st, us);
    }
    /* the connection is ready for its next request: the deadline restarts */
    atomic_store_explicit(&st->ready_ns, now_ns, memory_order_relaxed);
    atomic_store_explicit(&st->receiving, 1, memory_order_release);
    srv_login_job_free(st); /* a check the request did not come back for */
    if (st->body_len > 0) { /* it may hold a client secret */
        OPENSSL_cleanse(st->body, st->body_len);
    }
    if (st->body_cap > 16u * 1024u) { /* keep small buffers for the next request */
        free(st->body);
        st->body = NULL;
        st->body_cap = 0;
    }
    st->body_len = 0;
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_relaxed);
}

/* Appends body bytes, growing the buffer up to max_body (+1 for the NUL
 * the form parser writes). */
static int body_append(srv_conn *st, size_t max, const char *p, size_t n)
{
    if (st->body_too_big || n > max - st->body_len) {
        st->body_too_big = 1;
        st->discarded += n;
        return st->discarded <= SRV_DISCARD_MAX;
    }
    if (st->body_len + n + 1 > st->body_cap) {
        size_t want = st->body_cap ? st->body_cap : 1024;
        while (want < st->body_len + n + 1) {
            want *= 2;
        }
        if (want > max + 1) {
            want = max + 1;
        }
        /* not realloc: the old buffer may hold part of a client secret */
        char *nb = malloc(want);
        if (nb == NULL) {
            return 0;
        }
        if (st->body != NULL) {
            memcpy(nb, st->body, st->body_len);
            OPENSSL_cleanse(st->body, st->body_cap);
            free(st->body);
        }
        st->body = nb;
        st->body_cap = want;
    }
    memcpy(st->body + st->body_len, p, n);
    st->body_len += n;
    st->body[st->body_len] = '\0';
    return 1;
}

/* Strict Content-Length (digits only); 1 and *out when present. */
static int content_length(struct MHD_Connection *c, uint64_t *out)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL) {
        return 0;
    }
    uint64_t n = 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > UINT64_MAX / 10 - 10) {
            n = UINT64_MAX;
            break;
        }
        n = n * 10 + (uint64_t)(*v - '0');
    }
    *out = n;
    return 1;
}

static enum MHD_Result dispatch(srv_conn *st, struct MHD_Connection *c, const char *url)
{
    switch (st->route) {
    case SRV_ROUTE_TOKEN:
        return srv_handle_token(st, c);
    case SRV_ROUTE_REVOKE:
        return srv_handle_revoke(st, c);
    case SRV_ROUTE_INTROSPECT:
        return srv_handle_introspect(st, c);
    case SRV_ROUTE_JWKS:
        return srv_handle_jwks(st, c);
    case SRV_ROUTE_METADATA:
        return srv_handle_metadata(st, c);
    case SRV_ROUTE_AUTH:
        return srv_handle_auth(st, c);
    case SRV_ROUTE_USERINFO:
        return srv_handle_userinfo(st, c);
    case SRV_ROUTE_OIDC_CONFIG:
        return srv_handle_oidc_config(st, c);
    case SRV_ROUTE_CONSENT:
        return srv_handle_consent(st, c);
    case SRV_ROUTE_ERRORS:
        return srv_handle_errors(st, c, url);
    case SRV_ROUTE_HEALTHZ:
        return srv_handle_healthz(st, c);
    case SRV_ROUTE_READYZ:
        return srv_handle_readyz(st, c);
    case SRV_ROUTE_METRICS:
        return srv_handle_metrics(st, c);
    case SRV_ROUTE_AUTHORIZE:
        return srv_handle_authorize(st, c);
    case SRV_ROUTE_LOGIN:
        return srv_handle_login(st, c);
    case SRV_ROUTE_LOGOUT:
        return srv_handle_logout(st, c);
    case SRV_ROUTE_OTHER:
    case SRV_ROUTE_NONE:
    case SRV_ROUTE_COUNT_:
        break;
    }
    return srv_respond_error(st, c, MHD_HTTP_NOT_FOUND, "not_found", NULL, SRV_CACHE_NONE, NULL, 0);
}

/* Which listener serves what (issue 14 section 3): the admin listener
 * only /metrics, /healthz and /readyz; the public one everything but
 * /metrics, unless public_metrics. A route a listener does not serve is
 * an unknown path there (404). */
static void restrict_route(const struct tkh_server *s, srv_conn *st)
{
    if (st->admin) {
        if (st->route != SRV_ROUTE_METRICS && st->route != SRV_ROUTE_HEALTHZ && st->route != SRV_ROUTE_READYZ) {
            st->route = SRV_ROUTE_OTHER;
            srv_note(st, "the admin listener serves /metrics, /healthz and /readyz only");
        }
    } else if (st->route == SRV_ROUTE_METRICS && !s->cfg.public_metrics) {
        st->route = SRV_ROUTE_OTHER;
        srv_note(st, "/metrics is served on the admin listener (--admin-listen); --public-metrics serves it here too");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct tkh_server *s = cls;
    srv_conn *st = *req_cls;
    (void)version;
    if (st == NULL) {
        return MHD_NO; /* no state (out of memory when the connection came) */
    }
    if (!st->seen) {
        st->seen = 1;
        const struct route *rt = find_route(url);
        st->route = rt != NULL ? rt->id : SRV_ROUTE_OTHER;
        restrict_route(s, st);
        st->method = method_name(method);
        client_address(s, st, c);
        /* SECURITY.md rule 18: the header block is bounded (issue 3 section 6) */
        const union MHD_ConnectionInfo *hi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        if (hi != NULL && hi->header_size > s->cfg.max_header) {
            srv_note(st, "request header block is %zu bytes; the limit is %zu", hi->header_size, s->cfg.max_header);
            return srv_respond_error(st, c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "header_too_large", NULL,
                                     SRV_CACHE_NONE, NULL, 0);
        }
        uint64_t cl = 0;
        if (content_length(c, &cl) && cl > s->cfg.max_body) {
            srv_note(st, "request body is %" PRIu64 " bytes; the limit is %zu", cl, s->cfg.max_body);
            const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
            if (cl > SRV_DISCARD_MAX || (expect != NULL && strcasecmp(expect, "100-continue") == 0)) {
                /* Too much to drain, or the client waits for our word
                 * before sending it: answer from the head alone. */
                return srv_respond_error(st, c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", NULL, SRV_CACHE_NONE,
                                         NULL, 0);
            }
            /* Read and drop a moderately large body before answering 413:
             * closing with the body unread resets the connection, and a
             * TLS client then never reads the answer (RFC 9112 section 9.6). */
            st->body_too_big = 1;
        }
        return MHD_YES;
    }
    if (st->done) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->route == SRV_ROUTE_TOKEN || st->route == SRV_ROUTE_REVOKE || st->route == SRV_ROUTE_INTROSPECT ||
            st->route == SRV_ROUTE_LOGIN || st->route == SRV_ROUTE_LOGOUT || st->route == SRV_ROUTE_CONSENT) {
            return body_append(st, s->cfg.max_body, upload_data, n) ? MHD_YES : MHD_NO;
        }
        /* other routes take no body: read and drop it, within the same bound */
        st->discarded += n;
        if (st->discarded > s->cfg.max_body) {
            st->body_too_big = 1;
        }
        return st->discarded <= SRV_DISCARD_MAX ? MHD_YES : MHD_NO;
    }
    /* the whole request is here: its deadline (conns.c) no longer runs */
    atomic_store_explicit(&st->receiving, 0, memory_order_relaxed);
    if (st->body_too_big) {
        srv_note(st, "request body is over the limit of %zu bytes", s->cfg.max_body);
        return srv_respond_error(st, c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large", NULL, SRV_CACHE_NONE, NULL, 0);
    }
    const struct route *rt = st->route == SRV_ROUTE_OTHER ? NULL : find_route(url);
    if (rt != NULL && rt->methods != M_ANY && (method_bits(method, rt->id) & rt->methods) == 0) {
        int no_head = rt->id == SRV_ROUTE_AUTHORIZE || rt->id == SRV_ROUTE_LOGIN || rt->id == SRV_ROUTE_LOGOUT;
        srv_header allow = {"Allow", rt->methods == M_POST             ? "POST"
                                     : rt->methods == M_GET && no_head ? "GET"
                                     : rt->methods == M_GET            ? "GET, HEAD"
                                     : no_head                         ? "GET, POST"
                                                                       : "GET, HEAD, POST"};
        srv_note(st, "method %s not allowed", st->method);
        return srv_respond_error(st, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL, SRV_CACHE_NONE, &allow,
                                 1);
    }
    return dispatch(st, c, url);
}

/* ---- percent-decoding ---------------------------------------------------------------- */

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes %XX in the path and query values in place, except %00: a NUL
 * would cut the C string short, so "/healthz%00x" would route as
 * "/healthz". Left encoded, it matches no route and no value. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *str)
{
    (void)cls;
    (void)c;
    char *w = str;
    for (const char *r = str; *r; r++) {
        int h = r[0] == '%' ? hexdigit(r[1]) : -1;
        int l = h >= 0 ? hexdigit(r[2]) : -1;
        if (h >= 0 && l >= 0 && (h | l) != 0) {
            *w++ = (char)(h << 4 | l);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - str);
}

/* ---- libmicrohttpd's own messages -------------------------------------------------- */

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct tkh_server *s = cls;
    char msg[512];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0) {
        return;
    }
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r')) {
        msg[--len] = '\0';
    }
    if (atomic_load(&s->starting)) {
        /* returned to the caller through err: not logged twice */
        snprintf(s->start_err, sizeof s->start_err, "%.200s", msg);
        return;
    }
    srv_log_event(s, "warning", msg);
}

/* ---- start and stop ------------------------------------------------------------------ */

struct listen_addr {
    struct sockaddr_storage ss;
    int v6;
};

static int resolve(const char *host, uint16_t port, struct listen_addr *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    char h[256];
    size_t hl = host != NULL ? strlen(host) : 0;
    if (hl == 0 || hl >= sizeof h) {
        snprintf(err, err_cap, "invalid listen address \"%s\"", host != NULL ? host : "");
        return -1;
    }
    memcpy(h, host, hl + 1);
    if (h[0] == '[' && h[hl - 1] == ']') { /* "[::1]" */
        memmove(h, h + 1, hl - 2);
        h[hl - 2] = '\0';
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(h, NULL, &hints, &res);
    if (rc != 0) {
        hints.ai_flags = AI_PASSIVE; /* a name such as "localhost" */
        rc = getaddrinfo(h, NULL, &hints, &res);
    }
    if (rc != 0 || res == NULL) {
        snprintf(err, err_cap, "cannot resolve listen address \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    int ok = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET && ai->ai_addrlen <= sizeof out->ss) {
            memcpy(&out->ss, ai->ai_addr, ai->ai_addrlen);
            ((struct sockaddr_in *)(void *)&out->ss)->sin_port = htons(port);
            out->v6 = 0;
            ok = 0;
            break;
        }
        if (ai->ai_family == AF_INET6 && ai->ai_addrlen <= sizeof out->ss) {
            memcpy(&out->ss, ai->ai_addr, ai->ai_addrlen);
            ((struct sockaddr_in6 *)(void *)&out->ss)->sin6_port = htons(port);
            out->v6 = 1;
            ok = 0;
            break;
        }
    }
    freeaddrinfo(res);
    if (ok != 0) {
        snprintf(err, err_cap, "listen address \"%s\" is neither IPv4 nor IPv6", host);
    }
    return ok;
}

/* Copies a config string for a quoted-string header parameter: printable
 * ASCII only, without '"' and '\\'. */
static char *header_safe_dup(const char *v, const char *def)
{
    if (v == NULL || v[0] == '\0') {
        v = def;
    }
    size_t n = strlen(v);
    char *d = malloc(n + 1);
    if (d == NULL) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch >= 0x20 && ch < 0x7F && ch != '"' && ch != '\\') {
            d[o++] = (char)ch;
        }
    }
    d[o] = '\0';
    return d;
}

static void server_free(tkh_server *s)
{
    if (s == NULL) {
        return;
    }
    srv_pool_stop(s->login_pool);
    s->login_pool = NULL;
    srv_conns_free(s);
    if (s->ready_lock_init) {
        pthread_mutex_destroy(&s->ready_lock);
    }
    srv_tls_free(s);
    srv_log_stop(s);
    srv_pages_free(s);
    EVP_MD_free(s->sha256);
    free(s->realm);
    free(s->base_url);
    free(s->metadata);
    free(s->auth_audience);
    free(s);
}

/* The admin listener: a second daemon on cfg->admin_fd, plain HTTP, one
 * thread, a few connections, the same request callbacks (connections
 * marked admin: restrict_route), on a duplicate of cfg->admin_fd (tkh_start
 * closes the original once everything has started). */
static int start_admin(tkh_server *s, const tkh_config *cfg, size_t pool, char *err, size_t err_cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(cfg->admin_fd, (struct sockaddr *)(void *)&ss, &sl) != 0) {
        snprintf(err, err_cap, "the admin listening socket is unusable: %s", strerror(errno));
        return -1;
    }
    int fd = fcntl(cfg->admin_fd, F_DUPFD_CLOEXEC, 3); /* as for listen_fd: the caller keeps its own on failure */
    if (fd < 0) {
        snprintf(err, err_cap, "cannot duplicate the admin listening socket: %s", strerror(errno));
        return -1;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    atomic_store(&s->starting, 1);
    s->start_err[0] = '\0';
    s->admin_daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, SRV_ADMIN_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.conn_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_CONNECTION, on_admin_connection, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, s, MHD_OPTION_END);
    atomic_store(&s->starting, 0);
    if (s->admin_daemon == NULL) {
        snprintf(err, err_cap, "cannot serve the admin listener: %s",
                 s->start_err[0] != '\0' ? s->start_err : "libmicrohttpd failed to start");
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->admin_daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->admin_port = di != NULL ? di->port : 0;
    return 0;
}

int tkh_start(tka_authority *a, tks_store *store, const tkh_config *cfg, tkh_server **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (err_cap > 0) {
        err[0] = '\0';
    }
    if (a == NULL || cfg == NULL) {
        snprintf(err, err_cap, "tkh_start: no authority or no configuration");
        return -1;
    }
    if (!cfg->insecure_http && (cfg->tls_cert == NULL || cfg->tls_key == NULL)) {
        snprintf(err, err_cap, "HTTPS needs a certificate and a private key (or plain HTTP, asked for explicitly)");
        return -1;
    }
    if (!cfg->insecure_http && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
        snprintf(err, err_cap, "this libmicrohttpd was built without TLS support");
        return -1;
    }
    if (!cfg->insecure_http && !MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK)) {
        snprintf(err, err_cap, "this libmicrohttpd cannot take a certificate callback (needed to reload it)");
        return -1;
    }
    tkh_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    s->auth = a;
    s->store = store;
    s->cfg = *cfg;
    s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (s->sha256 == NULL) {
        free(s);
        snprintf(err, err_cap, "no SHA-256 in this OpenSSL");
        return -1;
    }
    tkh_config def;
    tkh_config_defaults(&def);
    if (s->cfg.max_body == 0) {
        s->cfg.max_body = def.max_body;
    }
    if (s->cfg.max_header == 0) {
        s->cfg.max_header = def.max_header;
    }
    if (s->cfg.max_connections == 0) {
        s->cfg.max_connections = def.max_connections;
    }
    if (s->cfg.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.threads = n > 0 && n < 1024 ? (unsigned)n : 1u;
    }
    s->log = cfg->log != NULL ? cfg->log : stderr;
    s->started_at = (int64_t)time(NULL);
    s->realm = header_safe_dup(cfg->realm, "tokend");
    const tka_config *acfg = tka_get_config(a);
    const char *base = cfg->public_url != NULL && cfg->public_url[0] != '\0' ? cfg->public_url
                       : acfg != NULL && acfg->issuer != NULL                ? acfg->issuer
                                                                             : "";
    s->base_url = header_safe_dup(base, "");
    if (s->realm == NULL || s->base_url == NULL) {
        snprintf(err, err_cap, "out of memory");
        goto fail;
    }
    for (size_t n = strlen(s->base_url); n > 0 && s->base_url[n - 1] == '/'; n--) {
        s->base_url[n - 1] = '\0';
    }
    if (cfg->trusted_proxies != NULL && cfg->trusted_proxies[0] != '\0') {
        char why[160];
        if (srv_cidr_list_parse(cfg->trusted_proxies, s->trusted, SRV_TRUSTED_MAX, &s->n_trusted, why, sizeof why) !=
            0) {
            snprintf(err, err_cap, "trusted proxies: %s", why);
            goto fail;
        }
    }
    s->cfg.trusted_proxies = NULL; /* parsed; the caller's string is not kept */
    s->cfg.auth_audience = NULL;
    s->trust = cfg->trust;
    s->bcl = cfg->bcl;
    if (cfg->auth_audience != NULL && cfg->auth_audience[0] != '\0') {
        s->auth_audience = strdup(cfg->auth_audience);
        if (s->auth_audience == NULL) {
            snprintf(err, err_cap, "out of memory");
            goto fail;
        }
    }
    if (pthread_mutex_init(&s->ready_lock, NULL) != 0) {
        snprintf(err, err_cap, "out of memory");
        goto fail;
    }
    s->ready_lock_init = 1;
    if (srv_conns_init(s) != 0) {
        snprintf(err, err_cap, "out of memory for the connection table");
        goto fail;
    }
    /* one password check per core by default (--login-workers 0), whatever
     * --threads says: each holds 64 MiB while it runs */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = s->cfg.login_workers != 0   ? s->cfg.login_workers
                       : cores > 0 && cores < 1024 ? (unsigned)cores
                                                   : 1u;
    if (srv_pool_start(&s->login_pool, workers, s->cfg.login_queue) != 0) {
        snprintf(err, err_cap, "cannot start %u password-checking threads", workers);
        goto fail;
    }
    if (srv_metadata_build(s) != 0 || srv_pages_build(s) != 0) {
        snprintf(err, err_cap, "out of memory building the static documents");
        goto fail;
    }
    int log_started = srv_log_start(s, err, err_cap);
    s->cfg.log_path = NULL; /* srv_log_start kept a copy; the caller's strings are not kept */
    s->cfg.tls_cert = NULL;
    s->cfg.tls_key = NULL;
    if (log_started != 0) {
        goto fail;
    }
    s->https = !cfg->insecure_http;
    if (s->https) {
        s->cookie_session = "__Host-tokend_session";
        s->cookie_csrf = "__Host-tokend_csrf";
    } else {
        /* Browsers drop __Host- cookies and Secure cookies over plain HTTP. */
        s->cookie_session = "tokend_session";
        s->cookie_csrf = "tokend_csrf";
        srv_log_event(s, "warning",
                      "plain HTTP: the sign-in cookies are named tokend_session and tokend_csrf, without the "
                      "__Host- prefix and without Secure (browsers refuse both over HTTP): serve HTTPS before "
                      "real users sign in");
    }

    if (!cfg->insecure_http) {
        /* dates unchecked at start: an expired certificate is the
         * operator's to notice (clients will say so), as before */
        if (srv_tls_load(s, cfg->tls_cert, strlen(cfg->tls_cert), cfg->tls_key, strlen(cfg->tls_key), 0, err,
                         err_cap) != 0) {
            goto fail;
        }
    }
    struct listen_addr la;
    memset(&la, 0, sizeof la);
    int fd = -1; /* our duplicate of cfg->listen_fd, handed to libmicrohttpd */
    if (cfg->listen_fd >= 0) {
        /* libmicrohttpd closes the socket it was given when it fails to
         * start (0.9.75), and the caller keeps cfg->listen_fd on failure:
         * so it gets a duplicate, and the original is closed on success. */
        socklen_t sl = sizeof la.ss;
        if (getsockname(cfg->listen_fd, (struct sockaddr *)(void *)&la.ss, &sl) != 0) {
            snprintf(err, err_cap, "the listening socket is unusable: %s", strerror(errno));
            goto fail;
        }
        la.v6 = la.ss.ss_family == AF_INET6;
        fd = fcntl(cfg->listen_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            snprintf(err, err_cap, "cannot duplicate the listening socket: %s", strerror(errno));
            goto fail;
        }
    } else if (resolve(cfg->host, cfg->port, &la, err, err_cap) != 0) {
        goto fail;
    }
    /* ITC: for quiesce and resume; suspend/resume: sign-ins wait for their
     * password check off the request threads (workers.c) */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (la.v6) {
        flags |= MHD_USE_IPv6;
    }
    struct MHD_OptionItem opts[8];
    size_t n = 0;
    if (!cfg->insecure_http) {
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, srv_tls_callback()};
        s->tls_priorities = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, unconst(s->tls_priorities)};
    }
    if (fd >= 0) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, fd, NULL};
    } else {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &la.ss};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    /* The connection's memory pool holds the request head, libmicrohttpd's
     * parse of it and the response head. Sized so that a head just over
     * max_header still fits (then the access handler answers 431 with our
     * headers); a head too big for the pool gets libmicrohttpd's own 431. */
    size_t pool = s->cfg.max_header + 4u * 1024u;
    atomic_store(&s->starting, 1);
    s->daemon = MHD_start_daemon(flags, cfg->port, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                                 s, MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads, MHD_OPTION_CONNECTION_LIMIT,
                                 s->cfg.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.conn_timeout,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
                                 s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                 s, MHD_OPTION_UNESCAPE_CALLBACK, unescape, s, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    atomic_store(&s->starting, 0);
    if (s->daemon == NULL) {
        snprintf(err, err_cap, "cannot serve on %s port %u: %s", cfg->host != NULL ? cfg->host : "-",
                 (unsigned)cfg->port, s->start_err[0] != '\0' ? s->start_err : "libmicrohttpd failed to start");
        goto fail; /* fd: libmicrohttpd closes it (on the paths measured; at worst one fd leaks) */
    }
    if (s->start_err[0] != '\0') { /* a warning while starting (the start itself succeeded) */
        srv_log_event(s, "warning", s->start_err);
    }
    if (cfg->admin_fd >= 0 && start_admin(s, cfg, pool, err, err_cap) != 0) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        goto fail; /* cfg->listen_fd and cfg->admin_fd stay the caller's */
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di != NULL ? di->port : cfg->port;
    if (srv_conns_start(s) != 0) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
        if (s->admin_daemon != NULL) {
            MHD_stop_daemon(s->admin_daemon);
            s->admin_daemon = NULL;
        }
        snprintf(err, err_cap, "cannot start the connection sweeper thread");
        goto fail; /* cfg->listen_fd and cfg->admin_fd stay the caller's, as on every failure */
    }
    /* Started: the daemons listen on duplicates; the caller's sockets are
     * ours to close, here and only here. */
    if (cfg->listen_fd >= 0) {
        close(cfg->listen_fd);
    }
    if (cfg->admin_fd >= 0) {
        close(cfg->admin_fd);
    }
    *out = s;
    return 0;
fail:
    server_free(s);
    return -1;
}

int tkh_reload(tkh_server *s, const char *cert_pem, const char *key_pem)
{
    if (s == NULL) {
        return -1;
    }
    int rc = 0;
    char why[320];
    char msg[400];
    int lr = srv_log_reopen(s, why, sizeof why);
    if (lr == 0) {
        srv_log_event(s, "info", "log file reopened (SIGHUP)");
    } else if (lr < 0) {
        snprintf(msg, sizeof msg, "SIGHUP: %s; still writing to the file open before", why);
        srv_log_event(s, "error", msg);
        rc = -1;
    }
    if (s->https && cert_pem != NULL && key_pem != NULL) {
        if (srv_tls_load(s, cert_pem, strlen(cert_pem), key_pem, strlen(key_pem), 1, why, sizeof why) == 0) {
            srv_log_event(s, "info", "TLS certificate and key reloaded (SIGHUP): new connections get them");
        } else {
            snprintf(msg, sizeof msg, "SIGHUP: the new TLS certificate was refused (%s); still serving the old one",
                     why);
            srv_log_event(s, "error", msg);
            rc = -1;
        }
    }
    return rc;
}

void tkh_log(tkh_server *s, const char *level, const char *msg)
{
    if (s != NULL) {
        srv_log_event(s, level, msg);
    }
}

uint16_t tkh_port(const tkh_server *s)
{
    return s != NULL ? s->port : 0;
}

uint16_t tkh_admin_port(const tkh_server *s)
{
    return s != NULL ? s->admin_port : 0;
}

void tkh_stop(tkh_server *s)
{
    if (s == NULL) {
        return;
    }
    /* Sign-ins waiting for a password check finish first: libmicrohttpd
     * must not stop with a connection suspended. */
    srv_pool_drain(s->login_pool);
    srv_conns_stop(s);
    if (s->admin_daemon != NULL) {
        /* scrapes and probes: nothing worth waiting for */
        MHD_stop_daemon(s->admin_daemon);
        s->admin_daemon = NULL;
    }
    if (s->daemon != NULL) {
        /* Stop accepting, let requests in flight finish (idle keep-alive
         * connections are then closed by MHD_stop_daemon). */
        MHD_socket ls = MHD_quiesce_daemon(s->daemon);
        if (ls != MHD_INVALID_SOCKET) {
            close(ls);
        }
        for (unsigned waited = 0; waited < SRV_STOP_WAIT_MS; waited += 10) {
            if (atomic_load(&s->in_flight) <= 0) {
                break;
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
    server_free(s);
}
