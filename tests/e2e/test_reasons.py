# SPDX-License-Identifier: Apache-2.0
"""Every reason code tokend can give offline, produced through
`tokend inspect --json`, with hostile tokens crafted here in Python.

Each case asserts: exit status 1, "valid": false, the expected code among
problems[].code and (for the main case of each code) that it is the FIRST
problem listed.

Not produced here, on purpose: `revoked` and `unavailable` are decided by
the server (authority layer: revocation cache, store down); they are covered
by the server tests later. (`too_old` is produced here through the
`--max-age` flag `tokend inspect` turned out to have; tests/unit covers
tk_policy.max_age as well.)
"""

import base64
import datetime
import json
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from jwcrypto import jwk as jc_jwk  # noqa: E402
from jwcrypto import jws as jc_jws  # noqa: E402

NOW = 1700000000  # 2023-11-14T22:13:20Z
ISS = "https://issuer.example"
AUD = "api"

# Codes not produced by this file (see the module docstring).
NOT_HERE = {"valid", "revoked", "unavailable"}

CLAIM_CODES = {"expired", "not_yet_valid", "issued_in_future", "wrong_issuer", "wrong_audience",
               "missing_claim", "invalid_claim", "insufficient_scope", "too_old"}

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

K = {}
TD = None
SEEN = set()


def setUpModule():
    global TD
    tt.tokend_bin()
    TD = tt.TempDir()
    K["hs"] = tt.new_key("HS256")
    K["hs_other"] = tt.new_key("HS256")
    K["es"] = tt.new_key("ES256", kid="es-1")
    K["es_other"] = tt.new_key("ES256", kid="es-2")
    K["rs"] = tt.new_key("RS256")
    K["ps"] = tt.rsa_variant(K["rs"], "PS256")
    K["ed"] = tt.new_key("EdDSA")
    K["hs_flags"] = ["--secret-file", TD.write("hs.bin", K["hs"].secret)]
    K["es_flags"] = ["--key", TD.write("es.pem", K["es"].pub_pem())]
    K["rs_pub_pem"] = TD.write("rsa_pub.pem", K["rs"].pub_pem())


def tearDownModule():
    if TD:
        TD.cleanup()


def C(**kw):
    """Valid claims at NOW (exp one hour later); kw overrides (None drops)."""
    d = {"iss": ISS, "aud": AUD}
    d.update(kw)
    return tt.claims(now=NOW, **d)


def hs_token(payload, header=None):
    return K["hs"].token(payload, header=header)


def raw_hs_token(header_bytes, payload_bytes, key="hs"):
    """HS256 token from exact header/payload bytes (for duplicate members,
    NUL bytes, invalid UTF-8 ...), correctly signed."""
    return tt.make_token(header_bytes, payload_bytes, signer=K[key].sign)


def raw_payload(fmt):
    """Payload JSON text with the standard claims; %s is replaced by extra
    members text (must start with a comma or be empty)."""
    return ('{"iss":"%s","aud":"%s","sub":"u","iat":%d' % (ISS, AUD, NOW)) + fmt + "}"


HS_HEADER = b'{"alg":"HS256","typ":"JWT"}'


class Base(unittest.TestCase):
    maxDiff = None

    def inspect(self, tok, *flags, key="hs", stdin=False, now=True):
        f = list(K[key + "_flags"]) if key else []
        if now:
            f += ["--now", str(NOW)]
        return tt.inspect_json(tok, *f, *flags, stdin=stdin)

    def expect(self, tok, code, *flags, first=True, key="hs", stdin=False, r=None):
        if r is None:
            r = self.inspect(tok, *flags, key=key, stdin=stdin)
        SEEN.add(code)
        self.assertEqual(r.rc, 1, r)
        self.assertIs(r.valid, False, r)
        self.assertIn(code, r.codes, r)
        if first:
            self.assertEqual(r.codes[0], code, r)
        for p in r.problems:
            self.assertIsInstance(p.get("message"), str, r)
            self.assertTrue(p.get("message"), r)
            self.assertIsInstance(p.get("hint"), str, r)
            self.assertTrue(p.get("hint"), r)
        return r

    def expect_valid(self, tok, *flags, key="hs", stdin=False):
        r = self.inspect(tok, *flags, key=key, stdin=stdin)
        self.assertEqual(r.rc, 0, r)
        self.assertIs(r.valid, True, r)
        self.assertEqual(r.signature, "verified", r)
        self.assertEqual(r.problems, [], r)
        return r


# ---------------------------------------------------------------------------
# the Authorization header

class AuthorizationHeader(Base):

    def test_missing_token(self):
        # Nothing at all on stdin: there is no token.
        self.expect("", "missing_token", stdin=True)

    def test_wrong_scheme(self):
        self.expect("Basic abc", "wrong_scheme")
        self.expect("Token " + hs_token(C()), "wrong_scheme")
        self.expect("Authorization: Basic dXNlcjpwYXNz", "wrong_scheme")
        self.expect("Basic dXNlcjpwYXNz\n", "wrong_scheme", stdin=True)

    def test_malformed_header(self):
        tok = hs_token(C())
        for v in ("Bearer  " + tok,                     # two spaces
                  'Bearer "' + tok + '"',               # quoted
                  "Bearer " + tok + " " + tok,          # two tokens
                  "Authorization: Bearer  " + tok):
            with self.subTest(v=v[:30]):
                self.expect(v, "malformed_header")

    def test_malformed_header_scheme_without_token(self):
        # The header value with its token missing is a malformed header, in
        # every form it may be pasted in (not "an opaque token named Bearer").
        for v in ("Authorization: Bearer", "Authorization: Bearer ", "Bearer ", "Bearer"):
            with self.subTest(v=v):
                self.expect(v, "malformed_header")

    def test_accepted_forms(self):
        tok = hs_token(C())
        for v in (tok, "Bearer " + tok, "Authorization: Bearer " + tok):
            with self.subTest(v=v[:25]):
                self.expect_valid(v)
                self.expect_valid(v + "\n", stdin=True)


# ---------------------------------------------------------------------------
# structure: malformed_token

SEGMENT_WORDS = {
    0: r"header|segment 1|first segment|1st segment|segment #1",
    1: r"payload|claims|segment 2|second segment|2nd segment|segment #2",
    2: r"signature|segment 3|third segment|3rd segment|segment #3",
}


class Structure(Base):

    def _assert_place(self, r, tok, seg, rel):
        """The malformed_token message names the segment and the offset
        (relative to the segment or to the whole token)."""
        msg = r.problem("malformed_token")["message"]
        self.assertRegex(msg.lower(), SEGMENT_WORDS[seg], r)
        absolute = sum(len(s) + 1 for s in tok.split(".")[:seg]) + rel
        nums = set(re.findall(r"\d+", msg))
        self.assertTrue({str(rel), str(absolute)} & nums,
                        "offset %d (absolute %d) not in %r" % (rel, absolute, msg))

    def _padded_token(self):
        """A valid token whose header segment length is 3 (mod 4) and whose
        payload segment length is 2 (mod 4), so that "=" / "==" padding
        gives a plausible length and the "=" itself is the offender."""
        for i in range(64):
            tok = hs_token(C(pad="x" * i), header={"kid": "k" * (i % 8)})
            h, p, _ = tok.split(".")
            if len(h) % 4 == 3 and len(p) % 4 == 2:
                return tok
        raise AssertionError("no suitable token")

    @staticmethod
    def _resign(h, p):
        """h.p with an HMAC over exactly those (possibly non-base64url)
        characters: what a buggy issuer that pads or uses '+' '/' sends. The
        signature is then genuine, so malformed_token is the only problem."""
        return h + "." + p + "." + tt.b64u(K["hs"].sign((h + "." + p).encode()))

    def test_malformed_token_padding_plus_slash(self):
        tok = self._padded_token()
        self.expect_valid(tok)
        h, p, s = tok.split(".")
        # '=' padding after the header segment
        bad = self._resign(h + "=", p)
        r = self.expect(bad, "malformed_token")
        self._assert_place(r, bad, 0, len(h))
        # '==' padding at the end of the payload
        bad = self._resign(h, p + "==")
        r = self.expect(bad, "malformed_token")
        self._assert_place(r, bad, 1, len(p))
        # '+' inside the payload segment, at offset 7
        bad = self._resign(h, p[:7] + "+" + p[8:])
        r = self.expect(bad, "malformed_token")
        self._assert_place(r, bad, 1, 7)
        # '/' inside the signature segment, at offset 5
        bad = h + "." + p + "." + s[:5] + "/" + s[6:]
        r = self.expect(bad, "malformed_token")
        self._assert_place(r, bad, 2, 5)
        # '+' inside the header segment, at offset 3
        bad = self._resign(h[:3] + "+" + h[4:], p)
        r = self.expect(bad, "malformed_token")
        self._assert_place(r, bad, 0, 3)

    def test_malformed_token_with_tampered_payload(self):
        # A payload segment mangled after signing ('+' from a URL decoder,
        # '=' padding added, emptied). docs/core.md fixes the order: the
        # payload is not decoded until the signature has passed, so
        # bad_signature comes first; inspect must still list the encoding
        # problem, with its place, since that is the root cause to fix.
        tok = self._padded_token()
        h, p, s = tok.split(".")
        for name, bad, rel in (("padding", h + "." + p + "==" + "." + s, len(p)),
                               ("plus", h + "." + p[:7] + "+" + p[8:] + "." + s, 7),
                               ("empty payload", h + ".." + s, None)):
            with self.subTest(case=name):
                r = self.expect(bad, "bad_signature")
                self.assertEqual(r.signature, "failed", r)
                self.assertIn("malformed_token", r.codes, r)
                if rel is not None:
                    self._assert_place(r, bad, 1, rel)

    def test_non_canonical_trailing_bits(self):
        # HS256 tag: 32 bytes -> 43 chars; the last char carries 4 data bits
        # and 2 unused bits that must be zero (rule 6).
        tok = hs_token(C())
        h, p, s = tok.split(".")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        i = alphabet.index(s[-1])
        self.assertEqual(i & 3, 0)
        bad = h + "." + p + "." + s[:-1] + alphabet[i | 1]
        self.assertEqual(tt.b64u_decode(bad.split(".")[2]), tt.b64u_decode(s))  # same bytes
        self.expect(bad, "malformed_token")

    def test_segment_counts(self):
        tok = hs_token(C())
        h, p, s = tok.split(".")
        for bad in (h + "." + p, h + "." + p + "." + s + "." + s, "..", self._resign(h, ""),
                    "." + p + "." + s):
            with self.subTest(bad=bad[:40]):
                self.expect(bad, "malformed_token")

    def test_opaque_token(self):
        r = self.inspect("tkr_" + tt.b64u(os.urandom(32)))
        self.assertEqual(r.rc, 1, r)
        self.assertIs(r.valid, False, r)
        self.assertIn(r.codes[0], ("malformed_token", "unsupported_token_type"), r)

    def test_header_not_json_or_not_object(self):
        for hb in (b"not json", b"[1,2]", b'"alg"', b'{"alg":"HS256"'):
            with self.subTest(h=hb):
                self.expect(raw_hs_token(hb, json.dumps(C()).encode()), "malformed_token")

    def test_duplicate_members(self):
        exp = NOW + 3600
        for extra in (',"exp":%d,"exp":%d' % (exp, exp + 10),
                      ',"exp":%d,"\\u0065xp":%d' % (exp, exp + 10),
                      ',"exp":%d,"exp":%d' % (exp, exp)):
            with self.subTest(payload=extra):
                tok = raw_hs_token(HS_HEADER, raw_payload(extra).encode())
                r = self.expect(tok, "malformed_token")
                self.assertEqual(r.signature, "verified", r)
        # in the header too, via an escaped name
        tok = raw_hs_token(b'{"alg":"HS256","\\u0061lg":"HS256"}', json.dumps(C()).encode())
        self.expect(tok, "malformed_token")

    def test_exp_1e400(self):
        tok = raw_hs_token(HS_HEADER, raw_payload(',"exp":1e400').encode())
        self.expect(tok, "malformed_token")

    def test_one_mebibyte_token_on_stdin(self):
        h = tt.b64u_json({"alg": "HS256", "typ": "JWT"})
        big = h + "." + "A" * (1 << 20) + "." + "A" * 43
        t0 = time.monotonic()
        r = self.expect(big, "malformed_token", stdin=True)
        self.assertLess(time.monotonic() - t0, 5.0, r)
        big = "Authorization: Bearer " + big + "\n"
        r = self.inspect(big, stdin=True)
        self.assertEqual(r.rc, 1, r)
        self.assertIs(r.valid, False, r)
        self.assertIn(r.codes[0], ("malformed_token", "malformed_header"), r)

    def test_just_over_the_size_limit(self):
        c = C(pad="x" * 8000)
        tok = hs_token(c)
        self.assertGreater(len(tok), 8192)
        self.expect(tok, "malformed_token")

    def test_deep_nesting(self):
        deep = '{"a":' * 10000 + "1" + "}" * 10000
        payload = raw_payload(',"exp":%d,"x":%s' % (NOW + 3600, deep)).encode()
        tok = raw_hs_token(HS_HEADER, payload)
        t0 = time.monotonic()
        r = self.expect(tok, "malformed_token", stdin=True)
        self.assertLess(time.monotonic() - t0, 5.0, r)
        # arrays, 10,000 deep
        deep = "[" * 10000 + "]" * 10000
        tok = raw_hs_token(HS_HEADER, raw_payload(',"exp":%d,"x":%s' % (NOW + 3600, deep)).encode())
        self.expect(tok, "malformed_token", stdin=True)
        # 3,000 deep: still within the token and payload size limits, so the
        # depth bound itself (not the size check) must stop it, before jansson
        deep = "[" * 3000 + "]" * 3000
        tok = raw_hs_token(HS_HEADER, ('{"x":%s}' % deep).encode())
        self.assertLess(len(tok), 8192)
        t0 = time.monotonic()
        r = self.expect(tok, "malformed_token", stdin=True)
        self.assertLess(time.monotonic() - t0, 5.0, r)
        self.assertRegex(r.problem("malformed_token")["message"].lower(), r"nest|depth|deep", r)
        # within the size limit but past the depth limit of 16
        deep = "[" * 40 + "]" * 40
        tok = raw_hs_token(HS_HEADER, raw_payload(',"exp":%d,"x":%s' % (NOW + 3600, deep)).encode())
        self.assertLess(len(tok), 8192)
        self.expect(tok, "malformed_token")

    def test_too_many_members(self):
        c = C()
        for i in range(70):
            c["m%d" % i] = i
        self.expect(hs_token(c), "malformed_token")

    def test_header_too_large(self):
        tok = hs_token(C(), header={"x": "y" * 1100})
        self.assertLess(len(tok), 8192)
        self.expect(tok, "malformed_token")

    def test_nul_and_invalid_utf8(self):
        exp = NOW + 3600
        cases = {
            "raw NUL": raw_payload(',"exp":%d,"name":"a' % exp).encode() [:-1] + b'\x00b"}',
            "escaped NUL": raw_payload(',"exp":%d,"name":"a\\u0000b"' % exp).encode(),
            "invalid UTF-8": raw_payload(',"exp":%d,"name":"' % exp).encode()[:-1] + b'\xff\xfe"}',
            "overlong UTF-8": raw_payload(',"exp":%d,"name":"' % exp).encode()[:-1] + b'\xc0\xaf"}',
            "lone surrogate": raw_payload(',"exp":%d,"name":"\\ud800"' % exp).encode(),
        }
        for name, payload in cases.items():
            with self.subTest(case=name):
                self.expect(raw_hs_token(HS_HEADER, payload), "malformed_token")

    def test_payload_not_an_object(self):
        for payload in (b"[1,2,3]", b"42", b'"a string"', b"null"):
            with self.subTest(payload=payload):
                r = self.expect(raw_hs_token(HS_HEADER, payload), "malformed_token")
                self.assertEqual(r.signature, "verified", r)

    def test_signed_non_json_payload(self):
        tok = raw_hs_token(HS_HEADER, b"hello, world")
        r = self.expect(tok, "malformed_token")
        self.assertEqual(r.signature, "verified", r)
        self.assertIsNone(r.payload, r)
        self.assertEqual(r.header, {"alg": "HS256", "typ": "JWT"}, r)


# ---------------------------------------------------------------------------
# unsupported_token_type

class Unsupported(Base):

    def test_unsupported_token_type_jwe(self):
        h = tt.b64u_json({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k"})
        jwe = ".".join([h] + [tt.b64u(os.urandom(n)) for n in (256, 12, 64, 16)])
        self.expect(jwe, "unsupported_token_type")
        self.expect("Bearer " + jwe, "unsupported_token_type", key="es")
        self.expect(jwe, "unsupported_token_type", key=None)

    def test_crit_b64_cty(self):
        c = C()
        for hdr in ({"crit": ["exp"], "exp": NOW + 3600},
                    {"crit": ["b64"], "b64": False},
                    {"b64": False},
                    {"crit": []},
                    {"cty": "JWT"}):
            with self.subTest(header=hdr):
                self.expect(hs_token(c, header=hdr), "unsupported_token_type")
        # b64 true (the default) is allowed
        self.expect_valid(hs_token(c, header={"b64": True}))


# ---------------------------------------------------------------------------
# algorithm and key

class AlgAndKey(Base):

    def test_alg_not_allowed_none(self):
        c = C()
        for alg in ("none", "None", "NONE", "nOnE"):
            tok = tt.make_token({"alg": alg, "typ": "JWT"}, c)  # empty signature
            self.assertTrue(tok.endswith("."))
            for key in ("hs", "es"):
                with self.subTest(alg=alg, key=key):
                    r = self.expect(tok, "alg_not_allowed", key=key)
                    self.assertNotEqual(r.signature, "verified", r)
            with self.subTest(alg=alg, key="rsa"):
                self.expect(tok, "alg_not_allowed", "--key", K["rs_pub_pem"], key=None)
            with self.subTest(alg=alg, key="jwks"):
                jwks = TD.write("none.jwks", {"keys": [K["es"].jwk()]})
                self.expect(tok, "alg_not_allowed", "--jwks", jwks, key=None)
        # none with a signature present is no better
        tok = tt.make_token({"alg": "none"}, c, sig=K["hs"].sign(b"x"))
        self.expect(tok, "alg_not_allowed")

    def test_alg_not_allowed_hs256_with_rsa_public_pem_as_secret(self):
        # The classic key-confusion attack: HMAC keyed with the PEM text of the
        # RSA public key the verifier trusts.
        with open(K["rs_pub_pem"], "rb") as f:
            pem = f.read()
        hs_pem = tt.Key("HS256", None, secret=pem)
        for alg in ("HS256", "HS384", "HS512"):
            with self.subTest(alg=alg):
                tok = tt.make_token({"alg": alg, "typ": "JWT"}, C(),
                                    signer=lambda m: tt.sign_raw(alg, hs_pem, m))
                r = self.expect(tok, "alg_not_allowed", "--key", K["rs_pub_pem"], key=None)
                self.assertNotEqual(r.signature, "verified", r)
        # same with the RSA public key as a JWK and as a JWKS member
        tok = tt.make_token({"alg": "HS256", "typ": "JWT"}, C(), signer=hs_pem.sign)
        jwk_path = TD.write("rs.jwk", K["rs"].jwk())
        self.expect(tok, "alg_not_allowed", "--key", jwk_path, key=None)
        jwks_path = TD.write("rs.jwks", {"keys": [K["rs"].jwk()]})
        self.expect(tok, "alg_not_allowed", "--jwks", jwks_path, key=None)

    def test_alg_not_allowed_key_type_mismatch(self):
        c = C()
        # EC P-256 key, token says ES384 / RS256 / HS256 / EdDSA
        for alg, signer in (("ES384", None), ("RS256", K["rs"].sign), ("HS256", K["hs"].sign),
                            ("EdDSA", K["ed"].sign), ("PS256", K["ps"].sign)):
            with self.subTest(key="es", alg=alg):
                tok = tt.make_token({"alg": alg}, c, signer=signer, sig=None if signer else b"\x01" * 96)
                self.expect(tok, "alg_not_allowed", key="es")
        # secret, token says RS256 / ES256 / EdDSA
        for alg, k in (("RS256", "rs"), ("ES256", "es"), ("EdDSA", "ed")):
            with self.subTest(key="secret", alg=alg):
                self.expect(K[k].token(c, alg=alg), "alg_not_allowed", key="hs")
        # RSA PEM (no alg) with an EC / HMAC / EdDSA token
        for alg, k in (("ES256", "es"), ("EdDSA", "ed")):
            with self.subTest(key="rsa pem", alg=alg):
                self.expect(K[k].token(c), "alg_not_allowed", "--key", K["rs_pub_pem"], key=None)
        # RSA JWK bound to RS256 by its "alg": a PS256 token by the same key
        jwk_rs256 = TD.write("rs256.jwk", dict(K["rs"].jwk(), alg="RS256"))
        self.expect(K["ps"].token(c), "alg_not_allowed", "--key", jwk_rs256, key=None)
        # secret JWK bound to HS256: an HS512 token with the same secret
        jwk_hs = TD.write("hs256.jwk", K["hs"].jwk(private=True))
        tok = tt.make_token({"alg": "HS512"}, c, signer=lambda m: tt.sign_raw("HS512", K["hs"], m))
        self.expect(tok, "alg_not_allowed", "--key", jwk_hs, key=None)

    def test_alg_not_allowed_unknown_names(self):
        c = C()
        for alg in ("hs256", "HS256 ", "HS1", "ES256K", "Ed25519", "RSA-OAEP", ""):
            with self.subTest(alg=alg):
                tok = tt.make_token({"alg": alg}, c, sig=K["hs"].sign(b"x"))
                r = self.inspect(tok)
                self.assertEqual(r.rc, 1, r)
                self.assertIs(r.valid, False, r)
                self.assertIn(r.codes[0], ("alg_not_allowed", "malformed_token") if alg == "" else
                              ("alg_not_allowed",), r)

    def test_unknown_key(self):
        ka = tt.new_key("ES256", kid="alpha-1")
        kb = tt.new_key("ES256", kid="beta-2")
        kc = tt.new_key("ES256", kid="gamma-3")
        jwks = TD.write("ab.jwks", {"keys": [ka.jwk(), kb.jwk()]})
        # kid known: valid
        self.expect_valid(kb.token(C(), kid=True), "--jwks", jwks, key=None)
        # kid unknown
        r = self.expect(kc.token(C(), kid=True), "unknown_key", "--jwks", jwks, key=None)
        msg = r.problem("unknown_key")["message"]
        self.assertIn("alpha-1", msg, r)
        self.assertIn("beta-2", msg, r)
        self.assertNotEqual(r.signature, "verified", r)

    def test_embedded_key_jwk(self):
        # Token signed by key A carrying A's public JWK in its header;
        # the verifier trusts key B. Made with jwcrypto.
        a = jc_jwk.JWK.generate(kty="EC", crv="P-256")
        pub_a = json.loads(a.export_public())
        payload = json.dumps(C())
        s = jc_jws.JWS(payload.encode())
        s.add_signature(a, protected=json.dumps({"alg": "ES256", "typ": "JWT", "jwk": pub_a}))
        tok = s.serialize(compact=True)
        r = self.expect(tok, "embedded_key", key="es")
        self.assertNotEqual(r.signature, "verified", r)
        # and even when the embedded key IS the trusted key
        pub_es = K["es"].jwk()
        tok = K["es"].token(C(), header={"jwk": pub_es})
        self.expect(tok, "embedded_key", key="es")

    def test_embedded_key_jku_x5u_x5c(self):
        k = K["es"]
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
        now = datetime.datetime(2023, 1, 1)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(k.pub).serial_number(1)
                .not_valid_before(now).not_valid_after(now.replace(year=2033))
                .sign(k.priv, hashes.SHA256()))
        der = cert.public_bytes(serialization.Encoding.DER)
        for extra in ({"jku": "https://attacker.example/jwks.json"},
                      {"x5u": "https://attacker.example/cert.pem"},
                      {"x5c": [base64.b64encode(der).decode()]},
                      {"jku": "file:///etc/passwd"}):
            with self.subTest(header=list(extra)[0]):
                self.expect(k.token(C(), header=extra), "embedded_key", key="es")


# ---------------------------------------------------------------------------
# signature

class Signature(Base):

    def test_bad_signature_one_char(self):
        tok = hs_token(C())
        h, p, s = tok.split(".")
        i = 10
        s2 = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
        r = self.expect(h + "." + p + "." + s2, "bad_signature")
        self.assertEqual(r.signature, "failed", r)
        # one char changed in the payload instead
        c2 = dict(C(), sub="admin")
        r = self.expect(h + "." + tt.b64u_json(c2) + "." + s, "bad_signature")
        self.assertEqual(r.signature, "failed", r)

    def test_bad_signature_first_even_when_claims_are_bad(self):
        # expired, wrong issuer, wrong audience -- but the signature fails:
        # bad_signature comes first and the token is not valid.
        c = C(exp=NOW - 7200, iss="https://evil.example", aud="other")
        tok = K["hs_other"].token(c)
        r = self.expect(tok, "bad_signature", "--iss", ISS, "--aud", AUD)
        self.assertEqual(r.signature, "failed", r)
        # inspect may still list the claim problems, but never as facts:
        # each one is marked unverified.
        for p in r.problems[1:]:
            if p["code"] in CLAIM_CODES:
                self.assertIs(p.get("unverified"), True, r)

    def test_bad_signature_variants(self):
        c = C()
        h = tt.b64u_json({"alg": "HS256", "typ": "JWT"})
        p = tt.b64u_json(c)
        full = K["hs"].sign((h + "." + p).encode())
        for name, sig in (("truncated tag", full[:16]), ("empty", b""), ("long tag", full + b"\0"),
                          ("other secret", K["hs_other"].sign((h + "." + p).encode()))):
            with self.subTest(case=name):
                self.expect(h + "." + p + "." + tt.b64u(sig), "bad_signature")

    def test_bad_signature_ecdsa(self):
        k = K["es"]
        c = C()
        h = tt.b64u_json({"alg": "ES256", "typ": "JWT"})
        p = tt.b64u_json(c)
        si = (h + "." + p).encode()
        raw = k.sign(si)
        self.expect_valid(h + "." + p + "." + tt.b64u(raw), key="es")
        n = P256_N.to_bytes(32, "big")
        one = (1).to_bytes(32, "big")
        for name, sig in (("r = s = 0", b"\0" * 64),
                          ("DER", tt.raw_to_der(raw)),
                          ("r = s = n", n + n),
                          ("r = n", n + raw[32:]),
                          ("r = s = 1", one + one),
                          ("63 bytes", raw[:63]),
                          ("65 bytes", raw + b"\0"),
                          ("other key", K["es_other"].sign(si))):
            with self.subTest(case=name):
                r = self.expect(h + "." + p + "." + tt.b64u(sig), "bad_signature", key="es")
                self.assertEqual(r.signature, "failed", r)

    def test_bad_signature_rsa_pss_salt(self):
        # PSS with a salt longer than the hash: OpenSSL would accept it unless
        # the salt length is pinned (rule 7).
        c = C()
        h = tt.b64u_json({"alg": "PS256", "typ": "JWT"})
        p = tt.b64u_json(c)
        si = (h + "." + p).encode()
        good = K["ps"].priv.sign(si, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        self.expect_valid(h + "." + p + "." + tt.b64u(good), "--key", K["rs_pub_pem"], key=None)
        for salt in (padding.PSS.MAX_LENGTH, 0, 20):
            with self.subTest(salt=salt):
                sig = K["ps"].priv.sign(si, padding.PSS(padding.MGF1(hashes.SHA256()), salt), hashes.SHA256())
                self.expect(h + "." + p + "." + tt.b64u(sig), "bad_signature", "--key", K["rs_pub_pem"], key=None)

    def test_bad_signature_eddsa(self):
        tok = K["ed"].token(C())
        h, p, s = tok.split(".")
        sig = bytearray(tt.b64u_decode(s))
        sig[5] ^= 1
        flags = ["--key", TD.write("ed.pem", K["ed"].pub_pem())]
        self.expect_valid(tok, *flags, key=None)
        self.expect(h + "." + p + "." + tt.b64u(bytes(sig)), "bad_signature", *flags, key=None)


# ---------------------------------------------------------------------------
# claims

class Claims(Base):

    def test_missing_claim(self):
        r = self.expect(hs_token(C(exp=None)), "missing_claim")
        self.assertIn("exp", r.problem("missing_claim")["message"], r)
        self.assertEqual(r.signature, "verified", r)

    def test_invalid_claim(self):
        for name, value in (("exp", str(NOW + 3600)), ("exp", True), ("exp", None), ("exp", [NOW + 3600]),
                            ("exp", {"t": NOW}), ("exp", -1), ("exp", 253402300800), ("exp", 1e20),
                            ("nbf", "yesterday"), ("iat", "now"), ("nbf", False)):
            with self.subTest(claim=name, value=value):
                c = C()
                c[name] = value
                r = self.expect(hs_token(c), "invalid_claim")
                self.assertIn(name, r.problem("invalid_claim")["message"], r)
        # aud of the wrong type, scope not per RFC 6749 §3.3
        for c, flags in ((C(aud=5), ["--aud", AUD]),
                         (C(aud=[AUD, 5]), ["--aud", AUD]),
                         (C(scope="orders:read  orders:write"), ["--scope", "orders:read"]),
                         (C(scope=" orders:read"), ["--scope", "orders:read"])):
            with self.subTest(claims=c):
                self.expect(hs_token(c), "invalid_claim", *flags, first=False)

    def test_numericdate_edges_valid(self):
        # fractions are allowed; the largest NumericDate is allowed
        self.expect_valid(hs_token(C(exp=NOW + 100.5, iat=NOW - 0.25)))
        self.expect_valid(hs_token(C(exp=253402300799)))

    def test_wrong_issuer(self):
        for iss in (ISS + "/", "https://ISSUER.example", "https://issuer.example.evil", ""):
            with self.subTest(iss=iss):
                r = self.expect(hs_token(C(iss=iss)), "wrong_issuer", "--iss", ISS)
                self.assertEqual(r.signature, "verified", r)
        self.expect_valid(hs_token(C()), "--iss", ISS)

    def test_wrong_audience(self):
        for aud in ("other", "API", "api2", "ap", ["other", "API"], ["a", "b", "api "]):
            with self.subTest(aud=aud):
                self.expect(hs_token(C(aud=aud)), "wrong_audience", "--aud", AUD)
        self.expect_valid(hs_token(C(aud=["x", AUD])), "--aud", AUD)
        self.expect_valid(hs_token(C(aud=AUD)), "--aud", AUD)

    def test_wrong_token_type(self):
        r = self.expect(hs_token(C()), "wrong_token_type", "--typ", "at+jwt")  # typ JWT
        self.assertEqual(r.signature, "verified", r)
        self.expect(hs_token(C(), header={"typ": "refresh+jwt"}), "wrong_token_type", "--typ", "at+jwt")
        tok = tt.make_token({"alg": "HS256"}, C(), signer=K["hs"].sign)  # no typ at all
        self.expect(tok, "wrong_token_type", "--typ", "at+jwt")
        for typ in ("at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"):
            with self.subTest(typ=typ):
                self.expect_valid(hs_token(C(), header={"typ": typ}), "--typ", "at+jwt")

    def test_insufficient_scope(self):
        c = C(scope="orders:read orders:writer")
        r = self.expect(hs_token(c), "insufficient_scope", "--scope", "orders:write")
        self.assertIn("orders:write", r.problem("insufficient_scope")["message"], r)
        self.expect(hs_token(C()), "insufficient_scope", "--scope", "orders:read")  # no scope claim
        self.expect(hs_token(c), "insufficient_scope", "--scope", "orders:read", "--scope", "admin")
        self.expect_valid(hs_token(c), "--scope", "orders:read", "--scope", "orders:writer")

    def test_expired(self):
        L = 30
        r = self.expect(hs_token(C(iat=NOW - 600, exp=NOW - L)), "expired", "--leeway", str(L))
        self.assertEqual(r.signature, "verified", r)
        self.expect_valid(hs_token(C(iat=NOW - 600, exp=NOW - L + 1)), "--leeway", str(L))
        # default leeway 60
        self.expect(hs_token(C(iat=NOW - 600, exp=NOW - 60)), "expired")
        self.expect_valid(hs_token(C(iat=NOW - 600, exp=NOW - 59)))
        # leeway 0
        self.expect(hs_token(C(iat=NOW - 600, exp=NOW)), "expired", "--leeway", "0")
        self.expect_valid(hs_token(C(iat=NOW - 600, exp=NOW + 1)), "--leeway", "0")

    def test_not_yet_valid(self):
        L = 30
        self.expect_valid(hs_token(C(nbf=NOW + L)), "--leeway", str(L))
        r = self.expect(hs_token(C(nbf=NOW + L + 1)), "not_yet_valid", "--leeway", str(L))
        self.assertEqual(r.signature, "verified", r)
        # a fraction is never rounded in the token's favour
        self.expect(hs_token(C(nbf=NOW + L + 0.5)), "not_yet_valid", "--leeway", str(L))
        self.expect_valid(hs_token(C(nbf=NOW + 60)))
        self.expect(hs_token(C(nbf=NOW + 61)), "not_yet_valid")

    def test_issued_in_future(self):
        L = 30
        self.expect_valid(hs_token(C(iat=NOW + L)), "--leeway", str(L))
        self.expect(hs_token(C(iat=NOW + L + 1)), "issued_in_future", "--leeway", str(L))
        self.expect(hs_token(C(iat=NOW + L + 0.5)), "issued_in_future", "--leeway", str(L))

    def test_too_old(self):
        # --max-age: too old when now >= iat + max_age + leeway (same rule as exp)
        L = 30
        r = self.expect(hs_token(C(iat=NOW - 3600)), "too_old", "--max-age", "30m")
        self.assertEqual(r.signature, "verified", r)
        self.expect(hs_token(C(iat=NOW - 1800 - L)), "too_old", "--max-age", "30m", "--leeway", str(L))
        self.expect_valid(hs_token(C(iat=NOW - 1800 - L + 1)), "--max-age", "30m", "--leeway", str(L))
        self.expect_valid(hs_token(C(iat=NOW - 600)), "--max-age", "30m")
        # without iat the age cannot be enforced
        r = self.expect(hs_token(C(iat=None)), "missing_claim", "--max-age", "30m")
        self.assertIn("iat", r.problem("missing_claim")["message"], r)
        # without --max-age, iat is optional
        self.expect_valid(hs_token(C(iat=None)))

    def test_every_problem_is_listed(self):
        c = C(iss="https://other.example", aud="other", exp=NOW - 3600, iat=NOW - 7200)
        r = self.inspect(hs_token(c), "--iss", ISS, "--aud", AUD, "--scope", "admin", "--typ", "at+jwt")
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.signature, "verified", r)
        for code in ("expired", "wrong_issuer", "wrong_audience", "insufficient_scope", "wrong_token_type"):
            self.assertIn(code, r.codes, r)


# ---------------------------------------------------------------------------
# no key

class NoKey(Base):

    def test_no_key_signature_not_checked(self):
        c = C()
        tok = hs_token(c)
        r = self.inspect(tok, key=None)
        self.assertEqual(r.rc, 1, r)
        self.assertIs(r.valid, False, r)
        self.assertEqual(r.signature, "not_checked", r)
        self.assertEqual(r.header, {"alg": "HS256", "typ": "JWT"}, r)
        self.assertEqual(r.payload, c, r)
        # claim problems of an unchecked token are marked unverified
        r = self.inspect(hs_token(C(exp=NOW - 3600, iat=NOW - 7200)), key=None)
        self.assertIn("expired", r.codes, r)
        for p in r.problems:
            if p["code"] in CLAIM_CODES:
                self.assertIs(p.get("unverified"), True, r)
        # the human output says so
        res = tt.run("inspect", "--now", str(NOW), tok)
        self.assertEqual(res.rc, 1, res)
        self.assertRegex(res.text.lower(), r"signature[^\n]*not (been )?(checked|verified)|"
                                            r"not (been )?(checked|verified)[^\n]*signature", res)

    def test_no_key_still_lists_structural_problems(self):
        self.expect(tt.make_token({"alg": "none"}, C()), "alg_not_allowed", key=None, first=False)
        r = self.expect(raw_hs_token(HS_HEADER, b"not json"), "malformed_token", key=None)
        self.assertEqual(r.signature, "not_checked", r)


# ---------------------------------------------------------------------------
# coverage: every reason code of tokend.h (except NOT_HERE) is produced above

class ZCoverage(unittest.TestCase):

    def test_every_reason_code_is_covered(self):
        hdr = os.path.join(tt.ROOT, "include", "tokend", "tokend.h")
        if not os.path.exists(hdr):
            self.skipTest("tokend.h not found")
        with open(hdr) as f:
            text = f.read()
        enum = text[text.index("typedef enum tk_reason"):]
        enum = enum[:enum.index("} tk_reason;")]
        codes = {m.lower() for m in re.findall(r"TK_REASON_([A-Z_]+?)\b", enum) if not m.endswith("_")}
        codes -= {"count"}
        wanted = codes - NOT_HERE
        self.assertTrue(wanted)
        # a test_<code>* method exists for each
        names = set()
        for obj in list(globals().values()):
            if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
                names |= {n for n in dir(obj) if n.startswith("test_")}
        for code in sorted(wanted):
            self.assertTrue(any(n.startswith("test_" + code) for n in names), "no test_%s*" % code)
        # and, when the whole file ran, each was actually produced
        if len(sys.argv) == 1:
            self.assertEqual(sorted(wanted - SEEN), [], "codes never produced")


if __name__ == "__main__":
    tt.main()
