# SPDX-License-Identifier: Apache-2.0
"""Messages that say which key and why, and claim messages that fit the
providers' shapes (issue 12, sections 2 and 4), through the real binary:
`tokend keygen`, `tokend sign`, `tokend inspect --key/--jwks/--secret-file`
and `/auth` of `tokend serve` for an issuer trusted with a jwks-file.

Each message is produced on purpose, as a new user meets it:

- a key refused for one reason names that reason and its numbers, and the
  key by kid or position ("key #2 (kid 'x')");
- a key set with an unusable key uses the rest and says what it skipped;
  a set with no usable key says so ("no usable key"), never "no key given";
- a document that is not a key set says what it is (metadata and its
  jwks_uri, an HTML page, a single JWK);
- --secret-file given a JWK says to pass it with --key;
- scopes carried in scp or roles are named where they are; expected values
  are printed whole; a time claim in milliseconds says so; a duplicate
  member is named as the issuer's bug, in the fix too; "two spaces between
  'a' and 'b'".
"""

import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

TD = None
ES = None       # the good signing key, kid "k1"
ENC = None      # the same kind of key marked "use": "enc", kid "e1"
RSA1024 = None  # a 1024-bit RSA key, kid "rsa1024"

ENTRA = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
ENTRA_OTHER = "https://login.microsoftonline.com/aaaaaaaa-86f1-41af-91ab-2d7cd011db47/v2.0"


def setUpModule():
    global TD, ES, ENC, RSA1024
    tt.tokend_bin()
    TD = tt.TempDir()
    ES = tt.new_key("ES256", kid="k1")
    ENC = tt.new_key("ES256", kid="e1")
    RSA1024 = tt.new_key("RS256", kid="rsa1024", rsa_bits=1024)


def tearDownModule():
    if TD:
        TD.cleanup()


def enc_jwk():
    d = ENC.jwk()
    d["use"] = "enc"
    d.pop("alg", None)
    return d


def claims(**kw):
    now = int(time.time())
    c = {"iss": "https://issuer.example", "sub": "alice", "aud": "api", "iat": now, "exp": now + 600}
    c.update(kw)
    return c


def inspect(token, *flags):
    return tt.run("inspect", *flags, token)


class KeyMessages(unittest.TestCase):
    def setUp(self):
        self.token = ES.token(claims(), kid=True)

    def test_rsa_1024_named_with_its_bits(self):
        """--key PEM, --key JWK, sign: "RSA key has 1024 bits; at least 2048"."""
        want = "RSA key has 1024 bits; at least 2048 are required"
        pem = TD.write("rsa1024.pub", RSA1024.pub_pem().decode())
        r = inspect(self.token, "--key", pem)
        self.assertEqual(r.rc, 2, r)
        self.assertIn(pem + ": the key was refused: " + want, r.err, r)
        jwk = TD.write("rsa1024.jwk", RSA1024.jwk())
        r = inspect(self.token, "--key", jwk)
        self.assertIn("the key (kid 'rsa1024') was refused: " + want, r.err, r)
        priv = TD.write("rsa1024.pem", RSA1024.priv_pem().decode())
        os.chmod(priv, 0o600)
        r = tt.run("sign", "--key", priv, "--alg", "RS256", "--sub", "x")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn(want, r.err, r)
        self.assertNotIn("malformed, RSA under 2048 bits", r.err, r)  # no catch-all list any more

    def test_short_hmac_secret_named(self):
        path = TD.write("short-hs.jwk", {"kty": "oct", "alg": "HS256", "kid": "h", "k": tt.b64u(b"0123456789abcdef")})
        r = inspect(self.token, "--key", path)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("HMAC secret has 16 bytes; HS256 needs at least 32", r.err, r)

    def test_encrypted_pem_named(self):
        from cryptography.hazmat.primitives import serialization
        pem = ES.priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(b"passphrase"))
        path = TD.write("enc.pem", pem.decode())
        r = inspect(self.token, "--key", path)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("the PEM key is encrypted (it needs a passphrase)", r.err, r)

    def test_jwks_with_one_bad_key_uses_the_rest(self):
        """One bad key no longer refuses the set: skipped, named, the rest used."""
        path = TD.write("mixed.jwks", {"keys": [RSA1024.jwk(), ES.jwk()]})
        for flag in ("--jwks", "--key"):
            with self.subTest(flag=flag):
                r = inspect(self.token, flag, path)
                self.assertEqual(r.rc, 0, r)
                self.assertIn("Signature: verified (ES256, kid \"k1\")", r.out, r)
                self.assertIn("skipped 1 unusable key, used the other 1: key #1 (kid 'rsa1024'): RSA key has 1024 "
                              "bits; at least 2048 are required", r.out, r)
                o = json.loads(tt.run("inspect", "--json", flag, path, self.token).out)
                self.assertTrue(o["valid"], o)
                self.assertIn("key #1 (kid 'rsa1024')", o["key_note"], o)

    def test_only_encryption_key_is_no_usable_key(self):
        """Not "no key given": a key was given, and it is an encryption key."""
        path = TD.write("enc.jwks", {"keys": [enc_jwk()]})
        for flag in ("--jwks", "--key"):
            with self.subTest(flag=flag):
                r = inspect(self.token, flag, path)
                self.assertEqual(r.rc, 1, r)
                self.assertNotIn("no key given", r.out, r)
                self.assertIn("Signature: NOT CHECKED: no usable key in %s: key #1 (kid 'e1'): an encryption key "
                              "(use \"enc\"), not a signature key" % path, r.out, r)
        single = TD.write("enc.jwk", enc_jwk())
        r = inspect(self.token, "--key", single)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("the key (kid 'e1') was refused: an encryption key (use \"enc\"), not a signature key", r.err, r)

    def test_no_key_given_only_when_none_was(self):
        r = inspect(self.token)
        self.assertIn("NOT CHECKED: no key given", r.out, r)

    def test_keygen_hmac_jwks_is_empty_and_says_why(self):
        """keygen --alg HS256 prints {"keys":[]}: given as a key set, say so."""
        jwk = os.path.join(TD.path, "hs.jwk")
        r = tt.run("keygen", "--alg", "HS256", "--kid", "h1", "--out", jwk)
        self.assertEqual(r.rc, 0, r)
        path = TD.write("hs.jwks", r.out)
        r = inspect(self.token, "--jwks", path)
        self.assertIn("the key set is empty", r.out, r)
        self.assertIn("give the secret's JWK file (--key FILE.jwk)", r.out, r)
        self.assertNotIn("no key given", r.out, r)

    def test_not_a_key_set_says_what_it_is(self):
        meta = TD.write("meta.json", {"issuer": "https://a.example", "jwks_uri": "https://a.example/keys",
                                      "token_endpoint": "https://a.example/token"})
        r = inspect(self.token, "--jwks", meta)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("this is OpenID/OAuth metadata, not a key set; its jwks_uri is https://a.example/keys", r.err, r)
        self.assertNotIn("not valid JSON", r.err, r)
        html = TD.write("page.html", "<!doctype html><html><body>Sign in</body></html>")
        r = inspect(self.token, "--jwks", html)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("this looks like an HTML or XML page", r.err, r)
        # a single JWK given to --jwks is read as the key it is
        one = TD.write("k1.jwk", ES.jwk())
        r = inspect(self.token, "--jwks", one)
        self.assertEqual(r.rc, 0, r)

    def test_secret_file_given_a_jwk(self):
        """keygen's JWK to --secret-file: "pass it with --key", not bad_signature."""
        jwk = os.path.join(TD.path, "h2.jwk")
        self.assertEqual(tt.run("keygen", "--alg", "HS256", "--kid", "h2", "--out", jwk).rc, 0)
        tok = tt.run("sign", "--key", jwk, "--sub", "x").out.strip()
        r = inspect(tok, "--secret-file", jwk)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("is a JWK (as 'tokend keygen' writes), not a raw secret: pass it with --key %s" % jwk, r.err, r)
        self.assertNotIn("bad_signature", r.out, r)
        r = inspect(tok, "--key", jwk)
        self.assertEqual(r.rc, 0, r)


class ClaimMessages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = TD.write("k1.jwks", {"keys": [ES.jwk()]})

    def problem(self, payload, *flags, header=None):
        r = tt.run("inspect", "--json", "--jwks", self.keys, *flags, ES.token(payload, header=header, kid=True))
        o = json.loads(r.out)
        self.assertFalse(o["valid"], o)
        return o["problems"]

    def test_scp_and_roles(self):
        for claim, value, shown in (("scp", "orders.read orders.write", "\"orders.read orders.write\""),
                                    ("scp", ["orders.read", "orders.write"], "[\"orders.read\", \"orders.write\"]"),
                                    ("roles", ["Orders.Write"], "[\"Orders.Write\"]")):
            with self.subTest(claim=claim, value=value):
                p = self.problem(claims(**{claim: value}), "--scope", "orders:write")
                self.assertEqual(p[0]["code"], "insufficient_scope", p)
                self.assertIn("the token has no \"scope\" claim: it carries its scopes in \"%s\" (%s)" % (claim, shown),
                              p[0]["message"], p)
                self.assertIn("tell the verifier to read that claim", p[0]["hint"], p)
                self.assertNotIn("Request a token with the scope", p[0]["hint"], p)

    def test_expected_issuer_not_cut(self):
        p = self.problem(claims(iss=ENTRA), "--iss", ENTRA_OTHER)
        self.assertEqual(p[0]["message"], "issuer is \"%s\"; expected \"%s\"" % (ENTRA, ENTRA_OTHER), p)

    def test_milliseconds(self):
        p = self.problem(claims(exp=1800000000000))
        self.assertEqual(p[0]["code"], "invalid_claim", p)
        self.assertIn("\"exp\" is 1800000000000: milliseconds instead of seconds?", p[0]["message"], p)

    def test_two_spaces(self):
        p = self.problem(claims(scope="a  b"))
        self.assertIn("two spaces between 'a' and 'b'", p[0]["message"], p)

    def test_duplicate_member(self):
        raw = '{"iss":"https://issuer.example","sub":"a","exp":%d,"sub":"b"}' % (int(time.time()) + 600)
        r = tt.run("inspect", "--jwks", self.keys, ES.token(raw, kid=True))
        self.assertIn("member \"sub\" appears twice", r.out, r)
        self.assertIn("fix: A bug of the issuer", r.out, r)


class AuthMessages(unittest.TestCase):
    """/auth of `tokend serve` for issuers trusted with a jwks-file."""

    ISS = "https://idp.example/tenant"

    @classmethod
    def setUpClass(cls):
        cls.dir = tt.TempDir()
        jwks = cls.dir.write("idp.jwks", {"keys": [enc_jwk(), RSA1024.jwk(), ES.jwk()]})
        cls.config = cls.dir.write("tokend.conf", "\n".join([
            "[issuer %s]" % cls.ISS,
            "jwks-file = %s" % jwks,
            "audience = api://orders",
            "scope-claim = scope",
            "",
        ]))
        cls.fx = st.ServerFixture(https=True, extra=["--config", cls.config], name="messages")
        cls.fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()
        cls.dir.cleanup()

    def auth(self, payload, scope=None):
        tok = ES.token(payload, kid=True)
        self.fx.sensitive.add(tok)
        params = {"aud": "api://orders"}
        if scope:
            params["scope"] = scope
        return self.fx.get("/auth", params=params, headers={"Authorization": "Bearer " + tok})

    def description(self, r):
        return st.parse_challenge(r.headers.get("WWW-Authenticate")).get("error_description") or ""

    def payload(self, **kw):
        now = int(time.time())
        c = {"iss": self.ISS, "sub": "alice", "aud": "api://orders", "iat": now, "exp": now + 600}
        c.update(kw)
        return c

    def test_skipped_keys_are_logged_and_the_rest_used(self):
        r = self.auth(self.payload(scope="orders.read"), scope="orders.read")
        self.assertEqual(r.status_code, 200, (r.headers, self.fx.stderr()[-2000:]))
        log = self.fx.stderr() + self.fx.log_text()
        self.assertIn("key #1 (kid 'e1'): an encryption key", log)
        self.assertIn("key #2 (kid 'rsa1024'): RSA key has 1024 bits; at least 2048 are required", log)

    def test_scopes_in_scp_named(self):
        r = self.auth(self.payload(scp="orders.read orders.write"), scope="orders.read")
        self.assertEqual(r.status_code, 403, r.headers)
        d = self.description(r)
        self.assertIn("it carries its scopes in 'scp' ('orders.read orders.write'): set scope-claim = scp", d)

    def test_two_spaces_and_milliseconds(self):
        r = self.auth(self.payload(scope="a  b"))
        self.assertEqual(r.status_code, 401, r.headers)
        self.assertIn("two spaces between 'a' and 'b'", self.description(r))
        r = self.auth(self.payload(exp=1800000000000))
        self.assertEqual(r.status_code, 401, r.headers)
        self.assertIn("milliseconds instead of seconds?", self.description(r))

    def test_jwks_file_without_usable_key_refused_at_start(self):
        jwks = self.dir.write("enc-only.jwks", {"keys": [enc_jwk()]})
        conf = self.dir.write("enc-only.conf", "[issuer https://enc.example]\njwks-file = %s\naudience = x\n" % jwks)
        fx = st.ServerFixture(https=True, extra=["--config", conf], name="enc-only")
        with self.assertRaises(AssertionError) as cm:
            fx.start()
        self.assertIn("its jwks-file has no usable key: key #1 (kid 'e1'): an encryption key (use \"enc\"), not a "
                      "signature key", str(cm.exception))
        fx.close(check=False)


if __name__ == "__main__":
    unittest.main()
