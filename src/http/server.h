/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h — the HTTP(S) front of `tokend serve` (DESIGN.md "Layers"):
 * libmicrohttpd with epoll and a thread pool, routing, request parsing with
 * limits, responses, TLS, metrics and the access log. It only translates
 * between HTTP and the authority (src/authority/authority.h).
 */
#ifndef TOKEND_HTTP_SERVER_H
#define TOKEND_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "authority/authority.h"
#include "store/store.h"

typedef struct tkh_server tkh_server;

typedef struct tkh_config {
    int listen_fd;             /* >= 0: an already bound, listening socket to serve on
                                  (then host/port only describe it); -1: bind host:port.
                                  tkh_start takes it over on success and leaves it to the
                                  caller on failure. */
    int admin_fd;              /* >= 0: an already bound, listening socket for the admin listener:
                                  plain HTTP, /metrics, /healthz and /readyz only (taken over
                                  like listen_fd); -1: none */
    int public_metrics;        /* 1: the public listener serves /metrics too (else 404) */
    const char *host;          /* listen address, "127.0.0.1" */
    uint16_t port;             /* 0: any free port (see tkh_port) */
    const char *tls_cert;      /* PEM text of the certificate chain; NULL with insecure_http */
    const char *tls_key;       /* PEM text of the private key */
    int insecure_http;         /* plain HTTP (only when asked for explicitly) */
    unsigned threads;          /* worker threads; 0 = number of cores */
    unsigned max_connections;  /* connection cap (default 1024) */
    unsigned conn_timeout;     /* idle seconds before a connection is closed (default 30) */
    size_t max_body;           /* request body limit, bytes (65536): more is 413 */
    size_t max_header;         /* request header block limit, bytes (16384): more is 431 */
    const char *realm;         /* WWW-Authenticate realm ("tokend") */
    const char *public_url;    /* base URL clients reach us at, for error_uri and metadata */
    int explain;               /* 1: error_description carries the verdict detail (SECURITY rule 15);
                                  0: the bare RFC 6750 error only */
    FILE *log;                 /* one JSON line per request; NULL = stderr (unless log_path) */
    const char *log_path;      /* the log file (O_APPEND, created 0640), reopened by tkh_reload; NULL: `log` */
    double log_sample_auth_ok; /* share of successful /auth answers logged, 0 to 1 (1); failures always are */
    /* Abuse limits (issue 8 section 2, SECURITY.md rules 18, 21, 22). */
    unsigned max_per_ip;         /* connections from one address (64); 0: no limit. Trusted proxies are exempt */
    unsigned request_timeout;    /* seconds to receive a whole request, head and body, from when the
                                    connection is ready for it (30); 0: libmicrohttpd's idle timer only */
    const char *trusted_proxies; /* IPs / CIDR ranges, comma- or space-separated, whose forwarding
                                    header names the client; NULL or "": none */
    int forwarded_header;        /* which header they set: 0 X-Forwarded-For, 1 Forwarded (RFC 7239) */
    const char *auth_audience;   /* the audience /auth requires when the query names none; NULL: the
                                    query must (SECURITY.md rule 25) */
    tka_trust *trust;            /* tokens of other issuers /auth accepts (borrowed until tkh_stop), or NULL */
    struct tkh_bcl *bcl;         /* back-channel logout sender, for /metrics (borrowed until tkh_stop), or NULL */
    unsigned login_workers;      /* threads checking passwords (Argon2id); 0: one per core */
    unsigned login_queue;        /* sign-ins that may wait for one (32); more are 503 + Retry-After */
} tkh_config;

/* Defaults: 127.0.0.1:8443, listen_fd -1, no admin listener (admin_fd -1),
 * /metrics not on the public listener, HTTPS, threads 0 (cores), 1024
 * connections, 64 per address, 30 s idle timeout and 30 s to receive a
 * request, body 64 KiB, header block 16 KiB, realm "tokend", explain 1,
 * log stderr with every line (sample 1), no trusted proxies, no default /auth audience, login workers
 * one per core with 32 waiting. */
void tkh_config_defaults(tkh_config *c);

/* Starts serving; returns once the socket listens. The strings of `cfg`
 * are copied (the caller may free and wipe its TLS key at once); `log`
 * is borrowed until tkh_stop and is flushed about every 100 ms (no write(2)
 * per request). Returns 0, or -1 with a message in err (port in use,
 * unusable certificate, ...). */
int tkh_start(tka_authority *a, tks_store *store, const tkh_config *cfg, tkh_server **out, char *err, size_t err_cap);
/* SIGHUP's work, for the main loop (never from a signal handler): reopens
 * the log file (log_path; logrotate's convention: the old file was renamed
 * and gets every line logged before the call, the new one every line
 * after), then, with HTTPS, replaces the certificate chain and key with
 * `cert_pem` / `key_pem` (NULL: not reloaded). Established connections
 * are not touched; new handshakes get the new pair. A pair that does not
 * parse, whose key does not match, or whose certificate is outside its
 * dates is refused and the old one stays. Each outcome is logged as an
 * event; returns 0 when everything asked for succeeded, else -1. */
int tkh_reload(tkh_server *s, const char *cert_pem, const char *key_pem);
/* Writes an event line ({"time", "level", "msg"}) to the access log. */
void tkh_log(tkh_server *s, const char *level, const char *msg);
/* The port actually bound (useful with port 0). */
uint16_t tkh_port(const tkh_server *s);
/* The admin listener's port; 0 when there is none. */
uint16_t tkh_admin_port(const tkh_server *s);
/* Stops accepting, lets requests in flight finish (at most 5 s), closes the
 * connections, flushes the log, frees. NULL is a no-op. */
void tkh_stop(tkh_server *s);

#endif
