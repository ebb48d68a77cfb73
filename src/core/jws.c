/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jws.c — compact JWS (RFC 7515 section 7.1) parsing, signature checking and
 * signing, and tk_verify(), the one entry point from bytes to verdict.
 *
 * Order of checks (SECURITY.md rule 8): size → segments → header base64url
 * → header JSON → header policy (alg, embedded keys, extensions) → key
 * lookup and alg binding → signature → payload → claims. The payload is not
 * even parsed by tk_verify() until the signature has passed, so a forged
 * token costs one header parse and one signature check.
 *
 * Every failure names the place: the segment, the offset in the token, the
 * JSON line and column.
 */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/internal.h"

/* The largest signature we accept: RSA-16384. */
#define SIG_MAX_BYTES (TK_LIMIT_RSA_MAX_BITS / 8)

static const char *const SEG_NAME[3] = {"header (segment 1)", "payload (segment 2)", "signature (segment 3)"};

static size_t lower_limit(size_t want, size_t ceiling)
{
    return (want == 0 || want > ceiling) ? ceiling : want;
}

void tk_limits_default(tk_limits *l)
{
    if (!l) {
        return;
    }
    l->struct_size = sizeof *l;
    l->token_len = TK_LIMIT_TOKEN_LEN;
    l->header_len = TK_LIMIT_HEADER_LEN;
    l->payload_len = TK_LIMIT_PAYLOAD_LEN;
    l->json_depth = TK_LIMIT_JSON_DEPTH;
    l->json_members = TK_LIMIT_JSON_MEMBERS;
}

/* The limits in force: the caller's (of any layout: tokend.h,
 * "Conventions"), clamped to the ceilings; the defaults for NULL. */
static tk_result effective_limits(const tk_limits *in_arg, tk_limits *o)
{
    tk_limits_default(o);
    if (!in_arg) {
        return TK_OK;
    }
    const tk_limits *in = in_arg;
    tk_limits local;
    if (in_arg->struct_size != sizeof *in_arg) {
        tk_limits_default(&local);
        tk_result r = tki_struct_import(&local, sizeof local, TKI_LIMITS_SIZE_V1, in_arg, in_arg->struct_size);
        if (r != TK_OK) {
            return r;
        }
        in = &local;
    }
    o->token_len = lower_limit(in->token_len, TK_LIMIT_TOKEN_LEN);
    o->header_len = lower_limit(in->header_len, TK_LIMIT_HEADER_LEN);
    o->payload_len = lower_limit(in->payload_len, TK_LIMIT_PAYLOAD_LEN);
    o->json_depth = lower_limit(in->json_depth, TK_LIMIT_JSON_DEPTH);
    o->json_members = lower_limit(in->json_members, TK_LIMIT_JSON_MEMBERS);
    return TK_OK;
}

/* Explains why tk_b64url_decode refused segment `seg` of a token. */
static void b64_problem(tk_verdict *v, int seg, size_t seg_off, const char *s, size_t n, size_t bad_at)
{
    const char *name = SEG_NAME[seg];
    if (bad_at >= n) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN,
                        "%s: %zu characters is not a possible base64url length (cut or extra character?)", name, n);
        return;
    }
    unsigned char c = (unsigned char)s[bad_at];
    size_t off = seg_off + bad_at;
    if (c == '=') {
        tki_say_padding(v, (size_t)seg, off); /* the paste diagnoser's words too */
    } else if (c == '+' || c == '/') {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN,
                        "%s: '%c' at offset %zu is base64, not base64url ('-' and '_' replace '+' and '/')", name, c,
                        off);
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "%s: whitespace at offset %zu; a token has none", name, off);
    } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN,
                        "%s: non-canonical base64url at offset %zu (unused trailing bits are not zero)", name, off);
    } else {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "%s: byte 0x%02x at offset %zu is not base64url", name, c, off);
    }
}

/* Decodes segment `seg` into `out` (cap bytes); 0 and a verdict on failure. */
static int decode_segment(tk_verdict *v, int seg, const char *tok, size_t off, size_t n, unsigned char *out, size_t cap,
                          size_t *out_len)
{
    size_t bad = 0;
    tk_result rc = tk_b64url_decode(tok + off, n, out, cap, out_len, &bad);
    if (rc == TK_OK) {
        return 1;
    }
    b64_problem(v, seg, off, tok + off, n, bad);
    return 0;
}

/* Header policy: SECURITY.md rules 1, 3 and 4. */
static void header_policy(tk_token *t)
{
    tk_verdict *v = &t->header_v;
    json_t *h = t->header;
    /* kid and typ first, so that tools can show them whatever follows. */
    json_t *kid = json_object_get(h, "kid");
    if (kid) {
        if (!json_is_string(kid) || json_string_length(kid) == 0 || json_string_length(kid) > TK_LIMIT_KID_LEN) {
            tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "header \"kid\" must be a string of 1 to %u bytes",
                            TK_LIMIT_KID_LEN);
            return;
        }
        t->kid = json_string_value(kid);
        t->kid_len = json_string_length(kid);
    }
    json_t *typ = json_object_get(h, "typ");
    if (typ) {
        if (!json_is_string(typ)) {
            tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "header \"typ\" is not a string");
            return;
        }
        t->typ = json_string_value(typ);
    }
    json_t *alg = json_object_get(h, "alg");
    if (!alg) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "header has no \"alg\" member (RFC 7515 section 4.1.1)");
        return;
    }
    if (!json_is_string(alg)) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "header \"alg\" is not a string");
        return;
    }
    const char *an = json_string_value(alg);
    size_t al = json_string_length(alg);
    t->alg_name = an;
    t->alg = tk_alg_from_name(an, al);
    if (t->alg == TK_ALG_UNSET) {
        char shown[96];
        size_t pos = 0;
        tki_append_escaped(shown, sizeof shown, &pos, an, al, 32);
        if (al == 4 && strncasecmp(an, "none", 4) == 0) {
            tki_verdict_set(v, TK_REASON_ALG_NOT_ALLOWED, "alg \"%s\" marks an unsigned token, which is never accepted",
                            shown);
        } else {
            tki_verdict_set(v, TK_REASON_ALG_NOT_ALLOWED,
                            "alg \"%s\" is not supported; tokend verifies HS256/384/512, RS256/384/512, "
                            "PS256/384/512, ES256/384/512 and EdDSA (names are case-sensitive)",
                            shown);
        }
        return;
    }
    static const char *const embedded[] = {"jwk", "jku", "x5u", "x5c"};
    for (size_t i = 0; i < 4; i++) {
        if (json_object_get(h, embedded[i])) {
            tki_verdict_set(v, TK_REASON_EMBEDDED_KEY,
                            "header carries \"%s\": a key named by the token itself is never used; keys come only "
                            "from the verifier's key set",
                            embedded[i]);
            return;
        }
    }
    if (json_object_get(h, "crit")) {
        tki_verdict_set(v, TK_REASON_UNSUPPORTED_TOKEN_TYPE,
                        "header has \"crit\": it demands JWS extensions, and tokend implements none (RFC 7515 "
                        "section 4.1.11)");
        return;
    }
    json_t *b64 = json_object_get(h, "b64");
    if (b64 && !json_is_true(b64)) {
        tki_verdict_set(v, TK_REASON_UNSUPPORTED_TOKEN_TYPE,
                        "header has \"b64\" other than true: unencoded payloads (RFC 7797) are not accepted");
        return;
    }
    if (json_object_get(h, "cty")) {
        tki_verdict_set(v, TK_REASON_UNSUPPORTED_TOKEN_TYPE,
                        "header has \"cty\": nested tokens and non-JWT payloads are not accepted");
        return;
    }
}

/* Decodes and parses the payload into t (payload_v says how it went). A
 * payload in the flat profile (json.c) is read without jansson when the
 * token has room for the table; everything else goes through jansson. */
static void parse_payload(tk_token *t, const tk_limits *lim, size_t off, size_t n, unsigned char *buf, size_t cap)
{
    tk_verdict *v = &t->payload_v;
    if (n == 0) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "payload (segment 2) is empty; a JWT carries a claims object");
        return;
    }
    if (n > tk_b64url_encoded_len(lim->payload_len)) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN,
                        "payload (segment 2) is %zu characters; the limit is %zu bytes decoded", n, lim->payload_len);
        return;
    }
    size_t len = 0;
    if (!decode_segment(v, 1, t->raw, off, n, buf, cap, &len)) {
        return;
    }
    buf[len] = '\0';
    t->payload_bytes = buf;
    t->payload_len = len;
    if (t->flat_mem && lim->json_depth >= 2 &&
        tki_flat_parse(buf, len, lim->json_members, t->flat_mem, &t->flat_store)) {
        t->flat = &t->flat_store;
        tki_verdict_valid(v);
        return;
    }
    char err[200];
    t->payload = tki_json_parse_object(buf, len, lim->json_depth, lim->json_members, err, sizeof err);
    if (!t->payload) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "payload (segment 2): %s", err);
        return;
    }
    tki_verdict_valid(v);
}

/* Depth of every header tk_sign() writes: one object of strings. */
#define KNOWN_HEADER_DEPTH 1u

/*
 * Looks the header segment up among the headers tk_sign() writes for the
 * keys of `ks`. On a byte-for-byte hit the header is known valid and its
 * alg, kid and typ are known, so it needs no decoding or JSON parse.
 *
 * One policy whichever path (SECURITY.md rule 5): the hit is taken only when
 * the caller's limits admit that header, as the full parse would: its
 * length (compared encoded, as parse() does), its depth and its member
 * count. Otherwise NULL, and the full parse gives the verdict, so both paths
 * agree reason and detail. The token length was checked before, and the
 * payload is parsed with the same limits on both paths.
 */
static const tk_key *cached_header(const tk_keyset *ks, const char *h, size_t h_n, const tk_limits *lim, size_t *which)
{
    if (h_n > tk_b64url_encoded_len(lim->header_len) || lim->json_depth < KNOWN_HEADER_DEPTH) {
        return NULL;
    }
    for (size_t i = 0; i < ks->n; i++) {
        const tk_key *k = ks->keys[i];
        for (size_t j = 0; j < 3; j++) {
            if (k->hdr_b64[j] && k->hdr_b64_len[j] == h_n && memcmp(k->hdr_b64[j], h, h_n) == 0) {
                if (k->hdr_members[j] > lim->json_members) {
                    return NULL;
                }
                *which = j;
                return k;
            }
        }
    }
    return NULL;
}

/*
 * The common parser. With `with_payload` zero the payload segment is only
 * located (tk_verify parses it after the signature). `ks` may be NULL; when
 * given, headers that its keys write are recognised without a parse.
 * Returns TK_OK with *out NULL and *v set when the input is not a JWS.
 */
static tk_result parse(const char *p, size_t len, const tk_limits *lim_in, const tk_keyset *ks, int with_payload,
                       tk_token **out, tk_verdict *v, size_t *pay_off, size_t *pay_len)
{
    tk_limits lim;
    *out = NULL;
    tki_verdict_valid(v);
    tk_result lr = effective_limits(lim_in, &lim);
    if (lr != TK_OK) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "no decision: the limits were not understood (%s)",
                        tk_result_str(lr));
        return lr;
    }
    if (len == 0) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "the token is empty");
        return TK_OK;
    }
    if (len > lim.token_len) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "the token is %zu bytes; the limit is %zu", len, lim.token_len);
        return TK_OK;
    }
    size_t dots[5];
    size_t nd = 0;
    const char *q = p;
    const char *end = p + len;
    while ((q = memchr(q, '.', (size_t)(end - q))) != NULL) {
        if (nd < 5) {
            dots[nd] = (size_t)(q - p);
        }
        nd++;
        q++;
    }
    if (nd == 0) {
        tki_verdict_set(v, TK_REASON_UNSUPPORTED_TOKEN_TYPE,
                        "not a JWT: no '.' separators (an opaque or reference token must be introspected by its "
                        "issuer, not decoded)");
        return TK_OK;
    }
    if (nd == 4) {
        tki_verdict_set(v, TK_REASON_UNSUPPORTED_TOKEN_TYPE,
                        "5 segments: this is a JWE (an encrypted token), not a signed JWT");
        return TK_OK;
    }
    if (nd != 2) {
        tki_verdict_set(v, TK_REASON_MALFORMED_TOKEN, "%zu segments; a signed JWT has 3 (header.payload.signature)",
                        nd + 1);
        return TK_OK;
    }
    size_t h_n = dots[0];
    size_t p_off = dots[0] + 1;
    size_t p_n = dots[1] - p_off;
    size_t s_off = dots[1] + 1;
    size_t s_n = len - s_off;
    /* Buffers sized by the segments themselves (each below its limit, or
     * the segment is refused before decoding). */
    size_t h_cap = h_n / 4 * 3 + 4;
    if (h_cap < TK_LIMIT_KID_LEN + 1) {
        h_cap = TK_LIMIT_KID_LEN + 1; /* room for a kid copied from a key */
    }
    size_t p_cap = p_n / 4 * 3 + 4;
    size_t s_cap = s_n / 4 * 3 + 4;
    /* tk_verify (ks given) reads simple payloads into a flat table. */
    size_t f_cap = ks ? tki_flat_size(p_cap) : 0;
    f_cap = (f_cap + 15) & ~(size_t)15;
    /* One allocation: the struct, the flat table (aligned, first), a copy
     * of the token, and the decode buffers. */
    size_t total = sizeof(tk_token) + f_cap + (len + 1) + h_cap + p_cap + s_cap;
    unsigned char *mem = malloc(total);
    if (!mem) {
        return TK_ERR_NOMEM;
    }
    tk_token *t = (tk_token *)(void *)mem;
    memset(t, 0, sizeof *t);
    t->flat_mem = f_cap ? mem + sizeof(tk_token) : NULL;
    char *raw = (char *)(mem + sizeof(tk_token) + f_cap);
    unsigned char *hbuf = (unsigned char *)raw + len + 1;
    unsigned char *pbuf = hbuf + h_cap;
    unsigned char *sbuf = pbuf + p_cap;
    memcpy(raw, p, len);
    raw[len] = '\0';
    t->raw = raw;
    t->raw_len = len;
    t->header_seg_len = h_n;
    t->pbuf = pbuf;
    t->pbuf_cap = p_cap;
    t->signing_input_len = dots[1];
    tki_verdict_valid(&t->header_v);
    t->payload_v.reason = TK_REASON_MALFORMED_TOKEN;
    memcpy(t->payload_v.detail, "payload not parsed", sizeof "payload not parsed");
    *out = t;
    *pay_off = p_off;
    *pay_len = p_n;

    /* Header. */
    size_t hl = 0;
    size_t which = 0;
    const tk_key *ck = NULL;
    if (ks) {
        ck = cached_header(ks, raw, h_n, &lim, &which);
    }
    if (ck) {
        t->alg = ck->alg;
        t->alg_name = tk_alg_name(ck->alg);
        t->typ = tki_cached_typs[which];
        if (ck->kid) {
            /* Copied: the token may outlive the key set. */
            t->kid_len = strlen(ck->kid);
            memcpy(hbuf, ck->kid, t->kid_len + 1);
            t->kid = (const char *)hbuf;
        }
    } else if (h_n == 0) {
        tki_verdict_set(&t->header_v, TK_REASON_MALFORMED_TOKEN, "header (segment 1) is empty");
    } else if (h_n > tk_b64url_encoded_len(lim.header_len)) {
        tki_verdict_set(&t->header_v, TK_REASON_MALFORMED_TOKEN,
                        "header (segment 1) is %zu characters; the limit is %zu bytes decoded", h_n, lim.header_len);
    } else if (decode_segment(&t->header_v, 0, raw, 0, h_n, hbuf, h_cap, &hl)) {
        char err[200];
        t->header = tki_json_parse_object(hbuf, hl, lim.json_depth, lim.json_members, err, sizeof err);
        if (!t->header) {
            tki_verdict_set(&t->header_v, TK_REASON_MALFORMED_TOKEN, "header (segment 1): %s", err);
        } else {
            header_policy(t);
        }
    }
    /* Signature bytes (also decoded when the header failed, for tools). */
    if (s_n > tk_b64url_encoded_len(SIG_MAX_BYTES)) {
        if (t->header_v.reason == TK_REASON_VALID) {
            tki_verdict_set(&t->header_v, TK_REASON_MALFORMED_TOKEN,
                            "signature (segment 3) is %zu characters, longer than any signature", s_n);
        }
    } else {
        tk_verdict sv;
        tki_verdict_valid(&sv);
        if (decode_segment(&sv, 2, raw, s_off, s_n, sbuf, s_cap, &t->sig_len)) {
            t->sig = sbuf;
            t->sig_decoded = 1;
        } else if (t->header_v.reason == TK_REASON_VALID) {
            t->header_v = sv;
        }
    }
    if (with_payload) {
        parse_payload(t, &lim, p_off, p_n, pbuf, p_cap);
    }
    *v = t->header_v.reason != TK_REASON_VALID ? t->header_v : t->payload_v;
    if (!with_payload && t->header_v.reason == TK_REASON_VALID) {
        tki_verdict_valid(v);
    }
    return TK_OK;
}

tk_result tk_token_parse(const char *p, size_t len, const tk_limits *lim, tk_token **out, tk_verdict *v)
{
    if (out) {
        *out = NULL;
    }
    if (!out || !v || (!p && len)) {
        return TK_ERR_ARG;
    }
    size_t po = 0, pl = 0;
    return parse(p ? p : "", len, lim, NULL, 1, out, v, &po, &pl);
}

tk_result tk_token_parse_with(const char *p, size_t len, const tk_limits *lim, const tk_keyset *hint, tk_token **out,
                              tk_verdict *v)
{
    if (out) {
        *out = NULL;
    }
    if (!out || !v || (!p && len)) {
        return TK_ERR_ARG;
    }
    size_t po = 0, pl = 0;
    return parse(p ? p : "", len, lim, hint, 1, out, v, &po, &pl);
}

void tk_token_free(tk_token *t)
{
    if (!t) {
        return;
    }
    json_decref(t->header);
    json_decref(t->payload);
    free(t);
}

const tk_verdict *tk_token_header_verdict(const tk_token *t)
{
    return t ? &t->header_v : NULL;
}

const tk_verdict *tk_token_payload_verdict(const tk_token *t)
{
    return t ? &t->payload_v : NULL;
}

const char *tk_token_alg(const tk_token *t)
{
    return t ? t->alg_name : NULL;
}

const char *tk_token_kid(const tk_token *t)
{
    return t ? t->kid : NULL;
}

const char *tk_token_typ(const tk_token *t)
{
    return t ? t->typ : NULL;
}

const unsigned char *tk_token_payload(const tk_token *t, size_t *len)
{
    if (len) {
        *len = t && t->payload_bytes ? t->payload_len : 0;
    }
    return t ? t->payload_bytes : NULL;
}

const char *tk_token_claim_string(const tk_token *t, const char *name)
{
    if (!t || !name) {
        return NULL;
    }
    struct tki_claims c = {t->payload, t->payload ? NULL : t->flat};
    tki_cv v;
    return tki_claims_get(&c, name, &v) && v.type == TKI_CV_STRING ? v.s : NULL;
}

size_t tk_token_claim_strings(const tk_token *t, const char *name, const char **out, size_t cap)
{
    if (!t || !name || (!out && cap)) {
        return 0;
    }
    struct tki_claims c = {t->payload, t->payload ? NULL : t->flat};
    tki_cv v;
    if (!tki_claims_get(&c, name, &v)) {
        return 0;
    }
    if (v.type == TKI_CV_STRING) {
        if (cap) {
            out[0] = v.s;
        }
        return 1;
    }
    if (v.type != TKI_CV_ARRAY) {
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        tki_cv it;
        tki_claims_item(&c, &v, i, &it);
        if (it.type == TKI_CV_STRING) {
            if (n < cap) {
                out[n] = it.s;
            }
            n++;
        }
    }
    return n;
}

int tk_token_claim_number(const tk_token *t, const char *name, double *out)
{
    if (!t || !name || !out) {
        return 0;
    }
    struct tki_claims c = {t->payload, t->payload ? NULL : t->flat};
    tki_cv v;
    if (!tki_claims_get(&c, name, &v) || (v.type != TKI_CV_INT && v.type != TKI_CV_REAL)) {
        return 0;
    }
    *out = v.d;
    return 1;
}

static tk_result dump(const json_t *j, int pretty, char **out)
{
    *out = NULL;
    if (!j) {
        return TK_OK;
    }
    /* ASCII only: token text can hold C1 controls and other bytes that
     * terminals act on; \uXXXX escapes are the same JSON. */
    *out = json_dumps(j, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_ENSURE_ASCII);
    return *out ? TK_OK : TK_ERR_NOMEM;
}

tk_result tk_token_header_json(const tk_token *t, int pretty, char **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (!t) {
        return TK_ERR_ARG;
    }
    if (t->header || t->alg == TK_ALG_UNSET) {
        return dump(t->header, pretty, out);
    }
    /* A header recognised from the key set was not parsed: do it now. */
    unsigned char buf[TK_LIMIT_HEADER_LEN + 4];
    size_t hl = 0;
    size_t bad = 0;
    if (tk_b64url_decode(t->raw, t->header_seg_len, buf, sizeof buf, &hl, &bad) != TK_OK) {
        return TK_ERR_STATE;
    }
    json_error_t je;
    json_t *h = json_loadb((const char *)buf, hl, JSON_REJECT_DUPLICATES, &je);
    if (!h) {
        return TK_ERR_STATE;
    }
    tk_result rc = dump(h, pretty, out);
    json_decref(h);
    return rc;
}

tk_result tk_token_payload_json(const tk_token *t, int pretty, char **out)
{
    if (!out) {
        return TK_ERR_ARG;
    }
    *out = NULL;
    if (!t) {
        return TK_ERR_ARG;
    }
    if (t->payload || !t->flat) {
        return dump(t->payload, pretty, out);
    }
    /* Read through the flat profile: let jansson build the tree now. */
    json_t *p = json_loadb((const char *)t->payload_bytes, t->payload_len, JSON_REJECT_DUPLICATES, NULL);
    if (!p) {
        return TK_ERR_STATE;
    }
    tk_result rc = dump(p, pretty, out);
    json_decref(p);
    return rc;
}

/* ---- signature ----------------------------------------------------------------- */

static void list_kids(char *buf, size_t cap, size_t *pos, const tk_keyset *ks)
{
    size_t shown = 0;
    for (size_t i = 0; i < ks->n; i++) {
        const char *kid = ks->keys[i]->kid;
        if (!kid) {
            continue;
        }
        tki_appendf(buf, cap, pos, "%s\"", shown ? ", " : "");
        tki_append_escaped(buf, cap, pos, kid, strlen(kid), 40);
        tki_appendf(buf, cap, pos, "\"");
        shown++;
    }
    if (shown == 0) {
        tki_appendf(buf, cap, pos, "none (the keys have no kid)");
    }
}

/* A signature check's use of the signature cache (tk_policy.sigcache):
 * `fresh` is the key whose signature was verified (not remembered), with
 * its cache entry `h`, to insert once the whole verdict is VALID. */
struct memo {
    tk_sigcache *c;
    int64_t now;
    const tk_key *fresh;
    unsigned char h[32];
};

static void check_with_key(const tk_token *t, const tk_key *k, tk_verdict *v, tk_result *rc, struct memo *m)
{
    char kidq[80] = "";
    size_t pos = 0;
    if (k->kid) {
        tki_appendf(kidq, sizeof kidq, &pos, " \"");
        tki_append_escaped(kidq, sizeof kidq, &pos, k->kid, strlen(k->kid), 40);
        tki_appendf(kidq, sizeof kidq, &pos, "\"");
    }
    if (k->alg == TK_ALG_UNSET) {
        const char *family = k->kty == TKI_KTY_RSA ? "RS256..RS512 or PS256..PS512" : "HS256..HS512";
        if (!tk_key_alg_fits(k, t->alg)) {
            tki_verdict_set(v, TK_REASON_ALG_NOT_ALLOWED,
                            "token alg %s cannot be verified by the key%s: it is an %s key, which may only verify %s",
                            tk_alg_name(t->alg), kidq, tk_key_kty(k), family);
        } else {
            tki_verdict_set(v, TK_REASON_ALG_NOT_ALLOWED,
                            "the key%s (%s) has no alg bound to it, so it verifies nothing; bind it to one of %s", kidq,
                            tk_key_kty(k), family);
        }
        return;
    }
    if (k->alg != t->alg) {
        tki_verdict_set(v, TK_REASON_ALG_NOT_ALLOWED, "token alg %s does not match the key%s, which is bound to %s",
                        tk_alg_name(t->alg), kidq, tk_alg_name(k->alg));
        return;
    }
    int cached = -1;
    if (m && m->c) {
        /* After the alg binding, as the check itself: what precedes (header
         * policy, key lookup by kid) ran on this call too. */
        cached = tki_sigcache_lookup(m->c, k, t->raw, t->raw_len, m->now, m->h);
        if (cached == 1) {
            tki_verdict_valid(v);
            return;
        }
    }
    enum tki_sig_fail why = TKI_SIG_MISMATCH;
    *rc = tki_key_verify(k, (const unsigned char *)t->raw, t->signing_input_len, t->sig, t->sig_len, &why);
    if (*rc != TK_OK) {
        return;
    }
    switch (why) {
    case TKI_SIG_OK:
        tki_verdict_valid(v);
        if (cached == 0) {
            m->fresh = k;
        }
        break;
    case TKI_SIG_LENGTH: {
        size_t want = tki_alg_sig_len(k->alg);
        if (want == 0) {
            want = (size_t)EVP_PKEY_get_size(k->pkey);
        }
        tki_verdict_set(v, TK_REASON_BAD_SIGNATURE, "%s signature must be %zu bytes%s; it is %zu%s",
                        tk_alg_name(k->alg), want, tki_alg_is_ec(k->alg) ? " (raw r||s)" : "", t->sig_len,
                        (tki_alg_is_ec(k->alg) && t->sig_len > 0 && t->sig[0] == 0x30) ? " (DER-encoded?)" : "");
        break;
    }
    case TKI_SIG_RANGE:
        tki_verdict_set(v, TK_REASON_BAD_SIGNATURE,
                        "%s signature has r or s equal to zero or not below the curve order: a forged signature",
                        tk_alg_name(k->alg));
        break;
    case TKI_SIG_MISMATCH:
        tki_verdict_set(v, TK_REASON_BAD_SIGNATURE,
                        "signature does not verify with the key%s (%s): the token was altered after signing, or "
                        "signed with another key",
                        kidq, tk_alg_name(k->alg));
        break;
    }
}

static tk_result verify_signature(const tk_token *t, const tk_keyset *ks, tk_verdict *v, struct memo *m);

tk_result tk_token_verify_signature(const tk_token *t, const tk_keyset *ks, tk_verdict *v)
{
    return verify_signature(t, ks, v, NULL);
}

static tk_result verify_signature(const tk_token *t, const tk_keyset *ks, tk_verdict *v, struct memo *m)
{
    if (!v) {
        return TK_ERR_ARG;
    }
    if (!t || !ks) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "no decision: no token or no key set");
        return TK_ERR_ARG;
    }
    tki_verdict_valid(v);
    if (t->header_v.reason != TK_REASON_VALID) {
        *v = t->header_v;
        return TK_OK;
    }
    tk_result rc = TK_OK;
    if (t->kid) {
        const tk_key *k = tk_keyset_find(ks, t->kid, t->kid_len);
        if (!k) {
            char *d = v->detail;
            size_t cap = sizeof v->detail;
            size_t pos = 0;
            v->reason = TK_REASON_UNKNOWN_KEY;
            d[0] = '\0';
            tki_appendf(d, cap, &pos, "kid \"");
            tki_append_escaped(d, cap, &pos, t->kid, t->kid_len, 40);
            tki_appendf(d, cap, &pos, "\" is not in the key set");
            if (tki_keyset_is_retired(ks, t->kid, t->kid_len)) {
                tki_appendf(d, cap, &pos, "; it was rotated out of the key ring");
            }
            tki_appendf(d, cap, &pos, "; known kids: ");
            list_kids(d, cap, &pos, ks);
            return TK_OK;
        }
        check_with_key(t, k, v, &rc, m);
        return rc;
    }
    /* No kid. With a single key there is no choice to make: check it, so
     * that an alg mismatch is explained against that key. */
    if (ks->n == 1) {
        check_with_key(t, ks->keys[0], v, &rc, m);
        return rc;
    }
    /* Otherwise the keys bound to the token's alg are the candidates. */
    size_t tried = 0;
    for (size_t i = 0; i < ks->n; i++) {
        const tk_key *k = ks->keys[i];
        if (k->alg != t->alg) {
            continue;
        }
        tried++;
        check_with_key(t, k, v, &rc, m);
        if (rc != TK_OK || v->reason == TK_REASON_VALID) {
            return rc;
        }
    }
    if (tried == 1) {
        return TK_OK; /* keep the precise verdict of the only candidate */
    }
    if (tried > 1) {
        tki_verdict_set(v, TK_REASON_BAD_SIGNATURE,
                        "the token has no kid and its signature verifies with none of the %zu %s keys", tried,
                        tk_alg_name(t->alg));
        return TK_OK;
    }
    if (ks->n == 0) {
        tki_verdict_set(v, TK_REASON_UNKNOWN_KEY, "the key set is empty: no key can verify this token");
        return TK_OK;
    }
    char *d = v->detail;
    size_t cap = sizeof v->detail;
    size_t pos = 0;
    v->reason = TK_REASON_ALG_NOT_ALLOWED;
    d[0] = '\0';
    tki_appendf(d, cap, &pos, "token alg %s matches no key; the keys are bound to ", tk_alg_name(t->alg));
    for (size_t i = 0; i < ks->n && i < 8; i++) {
        const tk_key *k = ks->keys[i];
        tki_appendf(d, cap, &pos, "%s%s", i ? ", " : "", k->alg ? tk_alg_name(k->alg) : "no alg");
        if (k->kid) {
            tki_appendf(d, cap, &pos, " (kid \"");
            tki_append_escaped(d, cap, &pos, k->kid, strlen(k->kid), 24);
            tki_appendf(d, cap, &pos, "\")");
        }
    }
    return TK_OK;
}

/* ---- the one-shot verifier --------------------------------------------------------- */

/* A token that is VALID and whose signature was verified on this call (not
 * remembered) goes into the signature cache, until its exp plus the leeway
 * (past that no call can find it VALID), at most TK_LIMIT_SIGCACHE_TTL. */
static void remember(const struct memo *m, const tk_token *t, const tk_policy *pol)
{
    if (!m->c || !m->fresh) {
        return;
    }
    int64_t until = m->now + TK_LIMIT_SIGCACHE_TTL;
    double exp = 0;
    if (tk_token_claim_number(t, "exp", &exp)) {
        /* VALID: exp is a NumericDate within [0, 253402300799] */
        int64_t e = (int64_t)exp;
        e += (double)e < exp ? 1 : 0; /* expired when now >= exp + leeway */
        e += pol->leeway;
        until = e < until ? e : until;
    }
    tki_sigcache_insert(m->c, m->h, m->now, until);
}

tk_result tk_verify(const char *p, size_t len, const tk_keyset *ks, const tk_policy *pol, const tk_limits *lim,
                    tk_verdict *v, tk_token **out_token)
{
    if (out_token) {
        *out_token = NULL;
    }
    if (!v) {
        return TK_ERR_ARG;
    }
    if (!ks || !pol || (!p && len)) {
        /* Fail closed even for a caller that only reads the verdict. */
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "no decision: the verifier was called with invalid arguments");
        return TK_ERR_ARG;
    }
    tk_token *t = NULL;
    size_t po = 0, pl = 0;
    tk_result rc = parse(p ? p : "", len, lim, ks, 0, &t, v, &po, &pl);
    if (rc != TK_OK || !t) {
        return rc;
    }
    if (v->reason != TK_REASON_VALID) {
        goto out;
    }
    struct memo m = {pol->sigcache, pol->now, NULL, {0}};
    rc = verify_signature(t, ks, v, &m);
    if (rc != TK_OK || v->reason != TK_REASON_VALID) {
        goto out;
    }
    /* Signature good: now the payload. */
    tk_limits el;
    rc = effective_limits(lim, &el); /* parse() accepted them already */
    if (rc != TK_OK) {
        goto out;
    }
    parse_payload(t, &el, po, pl, t->pbuf, t->pbuf_cap);
    if (t->payload_v.reason != TK_REASON_VALID) {
        *v = t->payload_v;
        goto out;
    }
    size_t n = 0;
    rc = tk_token_check_claims(t, pol, v, 1, &n);
    if (rc != TK_OK) {
        goto out;
    }
    if (n == 0) {
        tki_verdict_valid(v);
        remember(&m, t, pol);
        if (out_token) {
            *out_token = t;
            t = NULL;
        }
    }
out:
    tk_token_free(t);
    if (rc != TK_OK) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "the verifier failed: %s", tk_result_str(rc));
    }
    return rc;
}

tk_result tk_token_verify(const tk_token *t, const tk_keyset *ks, const tk_policy *pol, tk_verdict *v)
{
    if (!v) {
        return TK_ERR_ARG;
    }
    if (!t || !ks || !pol) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "no decision: the verifier was called with invalid arguments");
        return TK_ERR_ARG;
    }
    if (t->header_v.reason != TK_REASON_VALID) {
        *v = t->header_v;
        return TK_OK;
    }
    struct memo m = {pol->sigcache, pol->now, NULL, {0}};
    tk_result rc = verify_signature(t, ks, v, &m);
    if (rc != TK_OK || v->reason != TK_REASON_VALID) {
        goto out;
    }
    if (t->payload_v.reason != TK_REASON_VALID) {
        *v = t->payload_v;
        goto out;
    }
    size_t n = 0;
    rc = tk_token_check_claims(t, pol, v, 1, &n);
    if (rc == TK_OK && n == 0) {
        tki_verdict_valid(v);
        remember(&m, t, pol);
    }
out:
    if (rc != TK_OK) {
        tki_verdict_set(v, TK_REASON_UNAVAILABLE, "the verifier failed: %s", tk_result_str(rc));
    }
    return rc;
}

/* ---- signing ----------------------------------------------------------------------- */

tk_result tk_sign_with_header(const tk_key *k, const char *header, size_t header_len, const unsigned char *payload,
                              size_t payload_len, char **out, size_t *out_len)
{
    if (out) {
        *out = NULL;
    }
    if (out_len) {
        *out_len = 0;
    }
    if (!k || !header || !out || (!payload && payload_len)) {
        return TK_ERR_ARG;
    }
    if (header_len > TK_LIMIT_JWK_LEN || payload_len > TK_LIMIT_JWK_LEN) {
        return TK_ERR_LIMIT;
    }
    size_t hl = tk_b64url_encoded_len(header_len);
    size_t pl = tk_b64url_encoded_len(payload_len);
    size_t sl = tk_b64url_encoded_len(SIG_MAX_BYTES);
    size_t cap = hl + 1 + pl + 1 + sl + 1;
    char *s = malloc(cap);
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    size_t w = 0;
    tk_result rc = TK_ERR_NOMEM;
    if (!s) {
        goto out;
    }
    rc = tk_b64url_encode((const unsigned char *)header, header_len, s, cap, &w);
    if (rc != TK_OK) {
        goto out;
    }
    s[hl] = '.';
    rc = tk_b64url_encode(payload ? payload : (const unsigned char *)"", payload_len, s + hl + 1, cap - hl - 1, &w);
    if (rc != TK_OK) {
        goto out;
    }
    size_t si = hl + 1 + pl;
    rc = tk_key_sign(k, (const unsigned char *)s, si, &sig, &sig_len);
    if (rc != TK_OK) {
        goto out;
    }
    s[si] = '.';
    rc = tk_b64url_encode(sig, sig_len, s + si + 1, cap - si - 1, &w);
    if (rc != TK_OK) {
        goto out;
    }
    *out = s;
    if (out_len) {
        *out_len = si + 1 + w;
    }
    s = NULL;
out:
    free(s);
    free(sig);
    return rc;
}

char *tki_header_json(tk_alg alg, const char *kid, const char *typ)
{
    json_t *h = json_object();
    if (!h) {
        return NULL;
    }
    int ok = json_object_set_new(h, "alg", json_string(tk_alg_name(alg))) == 0;
    if (ok && kid) {
        ok = json_object_set_new(h, "kid", json_string(kid)) == 0;
    }
    if (ok && typ) {
        json_t *ts = json_string(typ);
        ok = ts && json_object_set_new(h, "typ", ts) == 0;
    }
    char *hs = ok ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    return hs;
}

tk_result tk_sign(const tk_key *k, const char *typ, const unsigned char *payload, size_t payload_len, char **out,
                  size_t *out_len)
{
    if (out) {
        *out = NULL;
    }
    if (out_len) {
        *out_len = 0;
    }
    if (!k || !out) {
        return TK_ERR_ARG;
    }
    if (k->alg == TK_ALG_UNSET || !k->can_sign) {
        return TK_ERR_STATE;
    }
    char *hs = tki_header_json(k->alg, k->kid, typ);
    if (!hs) {
        return TK_ERR_NOMEM;
    }
    tk_result rc = tk_sign_with_header(k, hs, strlen(hs), payload, payload_len, out, out_len);
    free(hs);
    return rc;
}
