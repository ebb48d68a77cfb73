/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netaddr.c — client addresses: IP and CIDR parsing, and the address of
 * the client behind a trusted reverse proxy (SECURITY.md rule 22).
 *
 * Addresses are kept as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 * so one comparison serves both families; a /n IPv4 prefix is /(96 + n).
 *
 * Forwarding headers are believed only when the TCP peer is a configured
 * trusted proxy, and then only as far as the proxies' own additions go: the
 * list is read from the right (the hop nearest to us), skipping addresses
 * that are trusted proxies themselves; the first one that is not is the
 * client. Whatever a client wrote into its own X-Forwarded-For stands to
 * the left of that and is never read. An entry that does not parse, where
 * we would have to read it, makes the answer the peer itself: a proxy that
 * writes garbage is misconfigured, and the failure is visible (all its
 * clients share one address) rather than exploitable.
 *
 * Input is untrusted bytes with a length; nothing here assumes a NUL and
 * nothing allocates. Fuzzed by fuzz/fuzz_forwarded.c.
 */
#include <arpa/inet.h>
#include <string.h>

#include "http/internal.h"

/* Longest text of an address we parse (an IPv6 address with an embedded
 * IPv4 part is 45 bytes). */
#define ADDR_TEXT_MAX 45u

int srv_addr_parse(const char *s, size_t n, unsigned char out[16])
{
    char buf[ADDR_TEXT_MAX + 1];
    if (n == 0 || n > ADDR_TEXT_MAX || memchr(s, '\0', n) != NULL) {
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct in_addr v4;
    if (memchr(s, ':', n) == NULL) {
        if (inet_pton(AF_INET, buf, &v4) != 1) {
            return -1;
        }
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return 0;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, buf, &v6) != 1) {
        return -1;
    }
    memcpy(out, &v6, 16);
    return 0;
}

static int is_v4_mapped(const unsigned char a[16])
{
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

void srv_addr_format(const unsigned char a[16], char *out, size_t cap)
{
    if (cap == 0) {
        return;
    }
    const char *r =
        is_v4_mapped(a) ? inet_ntop(AF_INET, a + 12, out, (socklen_t)cap) : inet_ntop(AF_INET6, a, out, (socklen_t)cap);
    if (r == NULL) {
        out[0] = '\0';
    }
}

void srv_addr_from_sockaddr(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa == NULL) {
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &in4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(out, &in6->sin6_addr, 16);
    }
}

int srv_cidr_parse(const char *s, size_t n, srv_cidr *out)
{
    memset(out, 0, sizeof *out);
    const char *slash = memchr(s, '/', n);
    size_t an = slash != NULL ? (size_t)(slash - s) : n;
    if (srv_addr_parse(s, an, out->addr) != 0) {
        return -1;
    }
    int v4 = memchr(s, ':', an) == NULL;
    unsigned max = v4 ? 32u : 128u;
    unsigned bits = max;
    if (slash != NULL) {
        size_t dn = n - an - 1;
        if (dn == 0 || dn > 3) {
            return -1;
        }
        bits = 0;
        for (size_t i = 0; i < dn; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9') {
                return -1;
            }
            bits = bits * 10u + (unsigned)(c - '0');
        }
        if (bits > max) {
            return -1;
        }
    }
    out->bits = v4 ? bits + 96u : bits;
    /* clear the host part, so that matching compares prefixes only */
    for (unsigned i = out->bits; i < 128u; i++) {
        out->addr[i / 8u] &= (unsigned char)~(0x80u >> (i % 8u));
    }
    return 0;
}

int srv_cidr_list_parse(const char *s, srv_cidr *out, size_t cap, size_t *n, char *err, size_t err_cap)
{
    *n = 0;
    size_t len = strlen(s);
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ',' || s[i] == ' ')) {
            i++;
        }
        size_t start = i;
        while (i < len && s[i] != ',' && s[i] != ' ') {
            i++;
        }
        if (i == start) {
            break;
        }
        if (*n == cap) {
            snprintf(err, err_cap, "more than %zu trusted proxy ranges", cap);
            return -1;
        }
        if (srv_cidr_parse(s + start, i - start, &out[*n]) != 0) {
            snprintf(err, err_cap, "'%.*s' is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)",
                     (int)(i - start > 64 ? 64 : i - start), s + start);
            return -1;
        }
        (*n)++;
    }
    return 0;
}

int srv_cidr_match(const srv_cidr *list, size_t n, const unsigned char addr[16])
{
    for (size_t k = 0; k < n; k++) {
        unsigned bits = list[k].bits;
        size_t whole = bits / 8u;
        if (memcmp(list[k].addr, addr, whole) != 0) {
            continue;
        }
        unsigned rest = bits % 8u;
        if (rest != 0) {
            unsigned char mask = (unsigned char)(0xffu << (8u - rest));
            if ((list[k].addr[whole] & mask) != (addr[whole] & mask)) {
                continue;
            }
        }
        return 1;
    }
    return 0;
}

/* ---- forwarding headers ------------------------------------------------------ */

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

/* One X-Forwarded-For entry: "addr", "v4:port", "[v6]" or "[v6]:port",
 * with optional whitespace around it. */
static int xff_entry(const char *p, size_t n, unsigned char out[16])
{
    while (n > 0 && ows(p[0])) {
        p++;
        n--;
    }
    while (n > 0 && ows(p[n - 1])) {
        n--;
    }
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (close == NULL) {
            return -1;
        }
        size_t rest = n - (size_t)(close - p) - 1;
        if (rest != 0 && close[1] != ':') {
            return -1;
        }
        return srv_addr_parse(p + 1, (size_t)(close - p) - 1, out);
    }
    const char *colon = memchr(p, ':', n);
    if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon - p) - 1) == NULL) {
        n = (size_t)(colon - p); /* IPv4 with a port */
    }
    return srv_addr_parse(p, n, out);
}

/* The for= value of one Forwarded element (RFC 7239 section 4): a token or
 * a quoted-string holding an address, "[v6]" and an optional port. */
static int forwarded_element(const char *p, size_t n, unsigned char out[16])
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (ows(p[i]) || p[i] == ';')) {
            i++;
        }
        size_t name = i;
        while (i < n && p[i] != '=' && p[i] != ';') {
            i++;
        }
        if (i >= n || p[i] != '=') {
            return -1;
        }
        size_t name_len = i - name;
        i++;
        const char *v = p + i;
        size_t vl;
        if (i < n && p[i] == '"') {
            const char *q = memchr(p + i + 1, '"', n - i - 1);
            if (q == NULL) {
                return -1;
            }
            v = p + i + 1;
            vl = (size_t)(q - v);
            if (memchr(v, '\\', vl) != NULL) {
                return -1; /* no address needs an escape */
            }
            i = (size_t)(q - p) + 1;
        } else {
            size_t s = i;
            while (i < n && p[i] != ';' && !ows(p[i])) {
                i++;
            }
            vl = i - s;
        }
        if (name_len == 3 && (p[name] | 0x20) == 'f' && (p[name + 1] | 0x20) == 'o' && (p[name + 2] | 0x20) == 'r') {
            return xff_entry(v, vl, out);
        }
    }
    return -1; /* no for= */
}

int srv_client_addr(const unsigned char peer[16], const char *const *vals, const size_t *lens, size_t n_vals,
                    enum srv_fwd kind, const srv_cidr *trusted, size_t n_trusted, unsigned char out[16])
{
    memcpy(out, peer, 16);
    if (n_trusted == 0 || !srv_cidr_match(trusted, n_trusted, peer)) {
        return 0;
    }
    int found = 0;
    /* Header lines in order form one list (RFC 9110 section 5.3): walk the
     * last line first, each from its right end. */
    for (size_t h = n_vals; h-- > 0;) {
        const char *p = vals[h];
        size_t end = lens[h];
        while (end > 0) {
            size_t start = end;
            int quoted = 0;
            /* the element's start: the comma before it, outside quotes */
            while (start > 0) {
                char c = p[start - 1];
                if (c == '"') {
                    quoted = !quoted;
                } else if (c == ',' && !quoted) {
                    break;
                }
                start--;
            }
            size_t en = end - start;
            size_t k = 0;
            while (k < en && ows(p[start + k])) {
                k++;
            }
            if (k < en) { /* not an empty element */
                unsigned char a[16];
                int rc = kind == SRV_FWD_FORWARDED ? forwarded_element(p + start, en, a) : xff_entry(p + start, en, a);
                if (rc != 0) {
                    memcpy(out, peer, 16);
                    return -1;
                }
                memcpy(out, a, 16);
                found = 1;
                if (!srv_cidr_match(trusted, n_trusted, a)) {
                    return 1;
                }
            }
            end = start > 0 ? start - 1 : 0;
        }
    }
    /* every hop was a trusted proxy: the leftmost is the origin */
    return found ? 1 : 0;
}
