/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_forwarded.c — the client address behind trusted proxies
 * (src/http/netaddr.c): X-Forwarded-For and Forwarded (RFC 7239) values,
 * IP and CIDR parsing. These headers come from anyone; only the peer
 * decides whether they are read.
 *
 * Input: byte 0 chooses the mode (bit 0: Forwarded instead of
 * X-Forwarded-For; bit 1: parse the rest as a --trusted-proxy list
 * instead), the rest is the header value, split into header lines at '\n'
 * (each line in a block of exactly its length). Trusted: 127.0.0.0/8,
 * 10.0.0.0/8 and ::1. Invariants:
 *  - from an untrusted peer the answer is the peer, and 0, whatever the
 *    header says;
 *  - from a trusted peer: 0 (the peer: nothing usable), 1 (an address the
 *    header holds) or -1 (then the peer); never anything else;
 *  - an address that comes back formats and parses back to itself;
 *  - a CIDR list that parses has at most its capacity of ranges, each
 *    matching its own base address, with no host bits set.
 */
#include "fuzz.h"

#include "http/internal.h"

static srv_cidr trusted[3];
static size_t n_trusted;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[128];
    if (srv_cidr_list_parse("127.0.0.0/8,10.0.0.0/8,::1", trusted, 3, &n_trusted, err, sizeof err) != 0) {
        abort();
    }
    return 0;
}

static void addr_of(const char *text, unsigned char out[16])
{
    if (srv_addr_parse(text, strlen(text), out) != 0) {
        abort();
    }
}

static void check_roundtrip(const unsigned char a[16])
{
    char text[64];
    unsigned char back[16];
    srv_addr_format(a, text, sizeof text);
    FUZZ_CHECK(srv_addr_parse(text, strlen(text), back) == 0 && memcmp(back, a, 16) == 0,
               "address %s does not parse back to itself", text);
}

static void cidr_mode(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL) {
        abort();
    }
    memcpy(s, data, size);
    s[size] = '\0'; /* the list parser takes a C string (a setting) */
    srv_cidr list[4];
    size_t n = 99;
    char err[160];
    if (srv_cidr_list_parse(s, list, 4, &n, err, sizeof err) == 0) {
        FUZZ_CHECK(n <= 4, "%zu ranges in a list of 4", n);
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(list[i].bits <= 128, "prefix length %u", list[i].bits);
            FUZZ_CHECK(srv_cidr_match(&list[i], 1, list[i].addr), "range %zu does not match its base", i);
            for (unsigned b = list[i].bits; b < 128; b++) {
                FUZZ_CHECK((list[i].addr[b / 8] & (0x80u >> (b % 8))) == 0, "host bit %u set in range %zu", b, i);
            }
        }
    } else {
        FUZZ_CHECK(err[0] != '\0', "a refused list without a reason");
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) {
        return 0;
    }
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode & 2) {
        cidr_mode(data, size);
        return 0;
    }
    enum srv_fwd kind = (mode & 1) ? SRV_FWD_FORWARDED : SRV_FWD_XFF;
    /* header lines, each in a block of its exact length */
    const char *vals[8];
    size_t lens[8];
    char *blocks[8];
    size_t n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < 8; i++) {
        if (i == size || data[i] == '\n') {
            blocks[n] = fuzz_dup(data + start, i - start);
            vals[n] = blocks[n];
            lens[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    unsigned char peer[16], out[16];
    /* an untrusted peer: the header is never read */
    addr_of("203.0.113.50", peer);
    int rc = srv_client_addr(peer, vals, lens, n, kind, trusted, n_trusted, out);
    FUZZ_CHECK(rc == 0 && memcmp(out, peer, 16) == 0, "an untrusted peer's header was read (rc %d)", rc);
    /* a trusted one */
    addr_of("127.0.0.1", peer);
    rc = srv_client_addr(peer, vals, lens, n, kind, trusted, n_trusted, out);
    FUZZ_CHECK(rc >= -1 && rc <= 1, "rc %d", rc);
    if (rc <= 0) {
        FUZZ_CHECK(memcmp(out, peer, 16) == 0, "rc %d but not the peer", rc);
    } else {
        check_roundtrip(out);
    }
    for (size_t i = 0; i < n; i++) {
        free(blocks[i]);
    }
    return 0;
}
