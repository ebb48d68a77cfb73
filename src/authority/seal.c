/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seal.c — private keys at rest (DESIGN.md "Keys"): AES-256-GCM under the
 * master key, with the kid as additional authenticated data so that a
 * sealed key moved to another row does not open. Layout: nonce (12) ||
 * ciphertext || tag (16). Also the master key file itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "authority/internal.h"

#define NONCE_LEN 12
#define TAG_LEN 16

int tka_seal(const unsigned char key[TKA_MASTER_KEY_LEN], const char *aad, const unsigned char *pt, size_t pt_len,
             unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (pt_len > (1u << 20)) {
        return -1;
    }
    size_t total = NONCE_LEN + pt_len + TAG_LEN;
    unsigned char *buf = malloc(total);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    int ok = buf && c && RAND_bytes(buf, NONCE_LEN) == 1 &&
             EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, buf) == 1 &&
             EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_EncryptUpdate(c, buf + NONCE_LEN, &len, pt, (int)pt_len) == 1 &&
             EVP_EncryptFinal_ex(c, buf + NONCE_LEN + len, &len) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, buf + NONCE_LEN + pt_len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = total;
    return 0;
}

int tka_unseal(const unsigned char key[TKA_MASTER_KEY_LEN], const char *aad, const unsigned char *in, size_t in_len,
               unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (in_len < NONCE_LEN + TAG_LEN || in_len > (1u << 20)) {
        return -1;
    }
    size_t pt_len = in_len - NONCE_LEN - TAG_LEN;
    unsigned char *pt = malloc(pt_len + 1);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    int ok = pt && c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
             EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
             EVP_DecryptUpdate(c, pt, &len, in + NONCE_LEN, (int)pt_len) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(uintptr_t)(in + in_len - TAG_LEN)) == 1 &&
             EVP_DecryptFinal_ex(c, pt + len, &len) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        if (pt) {
            OPENSSL_cleanse(pt, pt_len + 1);
        }
        free(pt);
        return -1;
    }
    pt[pt_len] = 0;
    *out = pt;
    *out_len = pt_len;
    return 0;
}

void tka_sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int l = 0;
    if (EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) != 1) {
        memset(out, 0xff, 32); /* never equal to a stored hash by accident */
    }
}

int tka_in_list(const char *list, const char *want, size_t wl)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == wl && memcmp(p, want, wl) == 0) {
            return 1;
        }
        if (!e) {
            break;
        }
        p = e + 1;
    }
    return 0;
}

int tka_list_subset(const char *asked, const char *allowed, char *bad, size_t bad_cap)
{
    const char *p = asked;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!tka_in_list(allowed, p, n)) {
            if (bad) {
                snprintf(bad, bad_cap, "%.*s", (int)(n > 64 ? 64 : n), p);
            }
            return 0;
        }
        if (!e) {
            break;
        }
        p = e + 1;
    }
    return 1;
}

int tka_random_b64(size_t n, char *buf, size_t cap)
{
    unsigned char r[64];
    if (n > sizeof r || RAND_bytes(r, (int)n) != 1) {
        return -1;
    }
    int rc = tk_b64url_encode(r, n, buf, cap, NULL) == TK_OK ? 0 : -1;
    OPENSSL_cleanse(r, sizeof r);
    return rc;
}

static int hexval(int c)
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

static int write_new_key(const char *path, unsigned char key[TKA_MASTER_KEY_LEN], char *err, size_t err_cap)
{
    static const char hex[] = "0123456789abcdef";
    char text[2 * TKA_MASTER_KEY_LEN + 1];
    if (RAND_bytes(key, TKA_MASTER_KEY_LEN) != 1) {
        snprintf(err, err_cap, "no randomness for a master key");
        return -1;
    }
    for (size_t i = 0; i < TKA_MASTER_KEY_LEN; i++) {
        text[2 * i] = hex[key[i] >> 4];
        text[2 * i + 1] = hex[key[i] & 15];
    }
    text[2 * TKA_MASTER_KEY_LEN] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot create the master key file %s: %s", path, strerror(errno));
        OPENSSL_cleanse(text, sizeof text);
        return -1;
    }
    int ok = fchmod(fd, 0600) == 0 && write(fd, text, sizeof text) == (ssize_t)sizeof text && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    OPENSSL_cleanse(text, sizeof text);
    if (!ok) {
        snprintf(err, err_cap, "cannot write the master key file %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int tka_master_key_load(const char *path, int create, unsigned char key[TKA_MASTER_KEY_LEN], int *created, char *err,
                        size_t err_cap)
{
    *created = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT && create) {
            if (write_new_key(path, key, err, err_cap) != 0) {
                return -1;
            }
            *created = 1;
            return 0;
        }
        snprintf(err, err_cap, "cannot read the master key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, err_cap, "the master key file %s is readable by group or others (mode %04o); run 'chmod 600 %s'",
                 path, (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot open the master key file %s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char buf[2 * TKA_MASTER_KEY_LEN + 4];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    int rc = -1;
    if (n == TKA_MASTER_KEY_LEN) {
        memcpy(key, buf, TKA_MASTER_KEY_LEN);
        rc = 0;
    } else if (n == 2 * TKA_MASTER_KEY_LEN || (n == 2 * TKA_MASTER_KEY_LEN + 1 && buf[n - 1] == '\n')) {
        rc = 0;
        for (size_t i = 0; i < TKA_MASTER_KEY_LEN; i++) {
            int h = hexval(buf[2 * i]), l = hexval(buf[2 * i + 1]);
            if (h < 0 || l < 0) {
                rc = -1;
                break;
            }
            key[i] = (unsigned char)(h << 4 | l);
        }
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (rc != 0) {
        OPENSSL_cleanse(key, TKA_MASTER_KEY_LEN);
        snprintf(err, err_cap, "the master key file %s must hold 32 raw bytes or 64 hex digits", path);
    }
    return rc;
}
