/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.c — the certificate and key HTTPS serves, replaceable while the
 * server runs (SIGHUP, issue 14 section 3).
 *
 * libmicrohttpd (0.9.75) builds one GnuTLS credential at start from
 * MHD_OPTION_HTTPS_MEM_CERT/KEY and never lets it change. Instead it is
 * given MHD_OPTION_HTTPS_CERT_CALLBACK: GnuTLS asks the callback for the
 * chain and key during each handshake, and the callback hands out the pair
 * that is current then. A reload parses the new pair completely (chain,
 * key, key matching the certificate, dates) before it becomes current, so
 * a bad file leaves the old pair in service. Connections already
 * established keep their session: nothing is restarted or dropped.
 *
 * A replaced pair is not freed at once: a handshake that picked it may
 * still be running. It is kept for a day (handshakes are bounded by the
 * request timeout) and freed at the next reload after that, or at stop.
 *
 * The callback gets only the GnuTLS session, no user pointer: servers
 * register here; with one (tokend serve) it is the one, with several in
 * one process the session's socket names the local port.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "http/internal.h"

#define TLS_CHAIN_MAX 16       /* certificates in a chain */
#define TLS_KEEP_RETIRED 86400 /* seconds a replaced pair stays allocated */
#define TLS_SERVERS_MAX 16     /* HTTPS servers in one process */

struct srv_tls {
    gnutls_pcert_st pcert[TLS_CHAIN_MAX];
    unsigned n;
    gnutls_privkey_t key;
    int64_t retired_at; /* monotonic seconds; 0 while current */
    struct srv_tls *next_retired;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tkh_server *reg[TLS_SERVERS_MAX];
static size_t n_reg;

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static void tls_free_one(struct srv_tls *t)
{
    if (t == NULL) {
        return;
    }
    for (unsigned i = 0; i < t->n; i++) {
        gnutls_pcert_deinit(&t->pcert[i]);
    }
    if (t->key != NULL) {
        gnutls_privkey_deinit(t->key);
    }
    free(t);
}

static uint16_t session_port(gnutls_session_t sess)
{
    int fd = gnutls_transport_get_int(sess);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)(void *)&ss, &sl) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    }
    return 0;
}

static int retrieve(gnutls_session_t sess, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct srv_tls *t = NULL;
    pthread_mutex_lock(&reg_lock);
    if (n_reg == 1) {
        t = atomic_load(&reg[0]->tls);
    } else if (n_reg > 1) {
        uint16_t port = session_port(sess);
        for (size_t i = 0; i < n_reg; i++) {
            if (reg[i]->port == port) {
                t = atomic_load(&reg[i]->tls);
            }
        }
    }
    pthread_mutex_unlock(&reg_lock);
    if (t == NULL) {
        return -1; /* the handshake fails: no certificate to offer */
    }
    *pcert = t->pcert;
    *pcert_length = t->n;
    *pkey = t->key;
    return 0;
}

void *srv_tls_callback(void)
{
    /* libmicrohttpd takes the function through a void * option */
    union {
        gnutls_certificate_retrieve_function2 *f;
        void *p;
    } u;
    u.f = retrieve;
    return u.p;
}

static int same_public_key(gnutls_pubkey_t a, gnutls_privkey_t key)
{
    gnutls_pubkey_t b = NULL;
    gnutls_datum_t da = {NULL, 0}, db = {NULL, 0};
    int same = 0;
    if (gnutls_pubkey_init(&b) == 0 && gnutls_pubkey_import_privkey(b, key, 0, 0) == 0 &&
        gnutls_pubkey_export2(a, GNUTLS_X509_FMT_DER, &da) == 0 &&
        gnutls_pubkey_export2(b, GNUTLS_X509_FMT_DER, &db) == 0) {
        same = da.size == db.size && memcmp(da.data, db.data, da.size) == 0;
    }
    gnutls_free(da.data);
    gnutls_free(db.data);
    if (b != NULL) {
        gnutls_pubkey_deinit(b);
    }
    return same;
}

static int check_dates(const gnutls_pcert_st *pc, char *err, size_t err_cap)
{
    gnutls_x509_crt_t crt = NULL;
    if (gnutls_pcert_export_x509((gnutls_pcert_st *)(uintptr_t)pc, &crt) != 0) {
        snprintf(err, err_cap, "the certificate cannot be read back");
        return -1;
    }
    time_t now = time(NULL);
    time_t from = gnutls_x509_crt_get_activation_time(crt);
    time_t until = gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    char when[32];
    struct tm tm;
    if (until != (time_t)-1 && now >= until) {
        gmtime_r(&until, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(err, err_cap, "the certificate expired at %s", when);
        return -1;
    }
    if (from != (time_t)-1 && now < from) {
        gmtime_r(&from, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(err, err_cap, "the certificate is not valid before %s", when);
        return -1;
    }
    return 0;
}

int srv_tls_load(struct tkh_server *s, const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                 int dates, char *err, size_t err_cap)
{
    if (cert_len > UINT32_MAX || key_len > UINT32_MAX) {
        snprintf(err, err_cap, "the certificate or key file is too big");
        return -1;
    }
    struct srv_tls *t = calloc(1, sizeof *t);
    if (t == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    gnutls_datum_t cd = {(unsigned char *)(uintptr_t)cert_pem, (unsigned)cert_len};
    gnutls_datum_t kd = {(unsigned char *)(uintptr_t)key_pem, (unsigned)key_len};
    unsigned n = TLS_CHAIN_MAX;
    int rc = gnutls_pcert_list_import_x509_raw(t->pcert, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || n == 0) {
        snprintf(err, err_cap, "the certificate chain is not usable PEM (at most %d certificates): %s", TLS_CHAIN_MAX,
                 rc < 0 ? gnutls_strerror(rc) : "no certificate");
        free(t);
        return -1;
    }
    t->n = n;
    rc = gnutls_privkey_init(&t->key);
    if (rc == 0) {
        rc = gnutls_privkey_import_x509_raw(t->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
    }
    if (rc < 0) {
        snprintf(err, err_cap, "the private key is not usable PEM: %s", gnutls_strerror(rc));
        tls_free_one(t);
        return -1;
    }
    if (!same_public_key(t->pcert[0].pubkey, t->key)) {
        snprintf(err, err_cap, "the private key does not belong to the certificate");
        tls_free_one(t);
        return -1;
    }
    if (dates && check_dates(&t->pcert[0], err, err_cap) != 0) {
        tls_free_one(t);
        return -1;
    }
    /* in service from the next handshake on */
    struct srv_tls *old = atomic_exchange(&s->tls, t);
    int64_t now = mono_s();
    pthread_mutex_lock(&reg_lock);
    if (old != NULL) {
        old->retired_at = now;
        old->next_retired = s->tls_retired;
        s->tls_retired = old;
    }
    /* pairs replaced long ago: no handshake can still be using them */
    for (struct srv_tls **pp = &s->tls_retired; *pp != NULL;) {
        struct srv_tls *r = *pp;
        if (now - r->retired_at > TLS_KEEP_RETIRED) {
            *pp = r->next_retired;
            tls_free_one(r);
        } else {
            pp = &r->next_retired;
        }
    }
    int known = 0;
    for (size_t i = 0; i < n_reg; i++) {
        known |= reg[i] == s;
    }
    if (!known) {
        if (n_reg == TLS_SERVERS_MAX) {
            pthread_mutex_unlock(&reg_lock);
            snprintf(err, err_cap, "too many HTTPS servers in one process (%d)", TLS_SERVERS_MAX);
            return -1;
        }
        reg[n_reg++] = s;
    }
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

void srv_tls_free(struct tkh_server *s)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < n_reg; i++) {
        if (reg[i] == s) {
            reg[i] = reg[--n_reg];
            break;
        }
    }
    struct srv_tls *r = s->tls_retired;
    s->tls_retired = NULL;
    pthread_mutex_unlock(&reg_lock);
    while (r != NULL) {
        struct srv_tls *next = r->next_retired;
        tls_free_one(r);
        r = next;
    }
    tls_free_one(atomic_exchange(&s->tls, NULL));
}
