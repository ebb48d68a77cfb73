/* SPDX-License-Identifier: Apache-2.0 */
/*
 * devcert.c — `tokend serve --dev`: a self-signed certificate for localhost
 * and 127.0.0.1 (and ::1), kept in the data directory and reused, so that
 * HTTPS works out of the box in development. Never for production: the
 * banner says so and prints the fingerprint to pin.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/serve.h"

static int write_file(const char *path, BIO *bio, mode_t mode, char *err, size_t err_cap)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || n <= 0) {
        snprintf(err, err_cap, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    int ok = fchmod(fd, mode) == 0 && write(fd, data, (size_t)n) == (ssize_t)n;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        snprintf(err, err_cap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int make_cert(const char *cert_path, const char *key_path, char *err, size_t err_cap)
{
    int ret = -1;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_EXTENSION *ext = NULL;
    BIO *kb = BIO_new(BIO_s_mem());
    BIO *cb = BIO_new(BIO_s_mem());
    if (!pkey || !x || !kb || !cb) {
        snprintf(err, err_cap, "cannot make a development certificate");
        goto out;
    }
    X509_set_version(x, 2);
    unsigned char serial[16];
    ASN1_INTEGER_set_int64(X509_get_serialNumber(x), (int64_t)time(NULL));
    (void)serial;
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400L);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tokend development", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    static const char *const exts[][2] = {
        {"subjectAltName", "DNS:localhost,IP:127.0.0.1,IP:::1"},
        {"basicConstraints", "critical,CA:FALSE"},
        {"keyUsage", "critical,digitalSignature"},
        {"extendedKeyUsage", "serverAuth"},
    };
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        ext = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
        if (!ext || !X509_add_ext(x, ext, -1)) {
            snprintf(err, err_cap, "cannot add %s to the development certificate", exts[i][0]);
            goto out;
        }
        X509_EXTENSION_free(ext);
        ext = NULL;
    }
    if (!X509_sign(x, pkey, EVP_sha256()) || !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(cb, x)) {
        snprintf(err, err_cap, "cannot sign the development certificate");
        goto out;
    }
    if (write_file(key_path, kb, 0600, err, err_cap) != 0 || write_file(cert_path, cb, 0644, err, err_cap) != 0) {
        goto out;
    }
    ret = 0;
out:
    X509_EXTENSION_free(ext);
    BIO_free(kb);
    BIO_free(cb);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ret;
}

int serve_dev_cert(const char *dir, char *cert_path, size_t cert_cap, char *key_path, size_t key_cap, char *fingerprint,
                   size_t fp_cap, int *created, char *err, size_t err_cap)
{
    *created = 0;
    snprintf(cert_path, cert_cap, "%s/tokend-dev.crt", dir);
    snprintf(key_path, key_cap, "%s/tokend-dev.key", dir);
    struct stat st;
    if (stat(cert_path, &st) != 0 || stat(key_path, &st) != 0) {
        if (make_cert(cert_path, key_path, err, err_cap) != 0) {
            return -1;
        }
        *created = 1;
    }
    FILE *f = fopen(cert_path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) {
        fclose(f);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!x || !X509_digest(x, EVP_sha256(), md, &n)) {
        X509_free(x);
        snprintf(err, err_cap, "cannot read the development certificate %s", cert_path);
        return -1;
    }
    X509_free(x);
    size_t pos = 0;
    for (unsigned int i = 0; i < n && pos + 4 < fp_cap; i++) {
        pos += (size_t)snprintf(fingerprint + pos, fp_cap - pos, "%s%02X", i ? ":" : "", md[i]);
    }
    return 0;
}
