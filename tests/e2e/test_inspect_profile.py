# SPDX-License-Identifier: Apache-2.0
"""`tokend inspect --profile tokend` agrees with the server (issue 12,
section 5): for the same token and the server's own key set, inspect's
verdict is /auth's verdict. Tokens the server would never issue (no jti,
no client_id, typ JWT, another issuer...) are signed here with the
server's own signing key, unsealed from its store with its master key, so
that the server's signature check passes and its claim policy decides.

Run by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_inspect_profile.py
"""

import json
import os
import sqlite3
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

AUD = "orders-api"


def server_signing_key(fx):
    """The active ES256 key of the server's ring, as a tt.Key: the sealed
    private JWK (nonce 12 || ciphertext || tag, AAD = kid; src/authority/
    seal.c) opened with the master key."""
    with open(fx.master_key, "rb") as f:
        mk = f.read()
    if len(mk) != 32:
        mk = bytes.fromhex(mk.decode().strip())
    db = sqlite3.connect(fx.store_path)
    try:
        kid, sealed = db.execute("SELECT kid, sealed FROM signing_keys WHERE state = 1 AND alg = 'ES256'").fetchone()
    finally:
        db.close()
    jwk = json.loads(AESGCM(mk).decrypt(sealed[:12], sealed[12:], kid.encode()))
    x = int.from_bytes(tt.b64u_decode(jwk["x"]), "big")
    y = int.from_bytes(tt.b64u_decode(jwk["y"]), "big")
    d = int.from_bytes(tt.b64u_decode(jwk["d"]), "big")
    priv = ec.EllipticCurvePrivateNumbers(d, ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())).private_key()
    return tt.Key("ES256", priv, kid=kid)


class Profile(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True)
        cls.fx.start()
        cls.td = tt.TempDir()
        cls.client_id, cls.secret = cls.fx.add_client("svc", "orders:read", AUD)
        cls.issued = cls.fx.token(cls.client_id, cls.secret)
        meta = cls.fx.get("/.well-known/openid-configuration").json()
        cls.issuer = meta["issuer"]
        cls.jwks = cls.td.write("jwks.json", cls.fx.get("/.well-known/jwks.json").content)
        cls.key = server_signing_key(cls.fx)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()
        cls.td.cleanup()

    def claims(self, **over):
        """The claims the server puts in its access tokens, changed by `over`
        (a value None drops the claim)."""
        now = int(time.time())
        c = {"iss": self.issuer, "sub": self.client_id, "aud": AUD, "exp": now + 600, "iat": now,
             "jti": tt.b64u(os.urandom(16)), "client_id": self.client_id, "scope": "orders:read"}
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def forge(self, header=None, **over):
        h = {"typ": "at+jwt"}
        h.update(header or {})
        return self.key.token(self.claims(**over), header=h, kid=True)

    def verdicts(self, tok, aud=AUD, scope=None, extra=()):
        """(/auth's verdict, inspect's verdict): each ("valid", None) or
        ("invalid", reason code); inspect's code is its first problem."""
        r = self.fx.auth(tok, aud=aud, scope=scope)
        self.assertIn(r.status_code, (200, 401, 403), r.text)
        server = ("valid", None) if r.status_code == 200 else ("invalid", r.headers.get("X-Auth-Reason"))
        flags = ["--profile", "tokend", "--jwks", self.jwks, "--iss", self.issuer, "--aud", aud]
        if scope:
            flags += ["--scope", scope]
        i = tt.inspect_json(tok, *flags, *extra)
        self.assertIn(i.rc, (0, 1), i)
        self.assertEqual(i.obj.get("profile"), "tokend", i)
        mine = ("valid", None) if i.valid else ("invalid", i.codes[0] if i.codes else None)
        return server, mine, i

    def test_same_verdict_as_auth(self):
        tampered = self.issued[:-4] + ("AAAA" if not self.issued.endswith("AAAA") else "BBBB")
        other = tt.new_key("ES256", kid="not-the-servers")
        cases = {
            "as issued": (self.issued, {}),
            "forged like issued": (self.forge(), {}),
            "no jti": (self.forge(jti=None), {}),
            "no sub": (self.forge(sub=None), {}),
            "no client_id": (self.forge(client_id=None), {}),
            "typ JWT": (self.forge(header={"typ": "JWT"}), {}),
            "no typ": (self.key.token(self.claims(), kid=True), {}),
            "another issuer": (self.forge(iss="https://elsewhere.example"), {}),
            "another audience": (self.issued, {"aud": "billing-api"}),
            "expired": (self.forge(exp=int(time.time()) - 3600, iat=int(time.time()) - 4000), {}),
            "not yet valid": (self.forge(nbf=int(time.time()) + 3600), {}),
            "scope missing": (self.issued, {"scope": "orders:write"}),
            "tampered signature": (tampered, {}),
            "unknown kid": (other.token(self.claims(), header={"typ": "at+jwt"}, kid=True), {}),
            "jti empty string": (self.forge(jti=""), {}),
        }
        for name, (tok, kw) in cases.items():
            with self.subTest(case=name):
                server, mine, i = self.verdicts(tok, **kw)
                self.assertEqual(mine, server, i)
        # the cases above did differ: the policy was really exercised
        self.assertEqual(self.verdicts(self.forge(jti=None))[0], ("invalid", "missing_claim"))
        self.assertEqual(self.verdicts(self.forge(header={"typ": "JWT"}))[0], ("invalid", "wrong_token_type"))

    def test_without_profile_the_same_token_looks_valid(self):
        # What the profile is for: a token without jti passes a bare check.
        tok = self.forge(jti=None)
        i = tt.inspect_json(tok, "--jwks", self.jwks, "--iss", self.issuer, "--aud", AUD)
        self.assertIs(i.valid, True, i)
        i = tt.inspect_json(tok, "--jwks", self.jwks, "--iss", self.issuer, "--aud", AUD, "--require", "jti")
        self.assertEqual(i.codes, ["missing_claim"], i)
        self.assertIn('"jti"', i.problems[0]["message"], i)

    def test_with_the_servers_jwks_url(self):
        # The key set fetched from the running server, as a user would.
        url = self.fx.url + "/.well-known/jwks.json"
        for tok, want in ((self.issued, True), (self.forge(client_id=None), False)):
            i = tt.inspect_json(tok, "--profile", "tokend", "--jwks", url, "--cacert", self.fx.cert,
                                "--iss", self.issuer, "--aud", AUD)
            self.assertIs(i.valid, want, i)

    def test_valid_says_revocation_not_checked(self):
        # inspect is offline: a token the server revoked still passes here,
        # and inspect says that it could not know.
        tok = self.fx.token(self.client_id, self.secret)
        r = self.fx.admin("revoke", "--jti", st.jwt_parts(tok)[1]["jti"])
        self.assertEqual(r.rc, 0, r)
        got, _ = st.wait_for(lambda: self.fx.auth(tok, aud=AUD).headers.get("X-Auth-Reason") == "revoked" or None, 10)
        self.assertIs(got, True)
        res = tt.run("inspect", "--profile", "tokend", "--jwks", self.jwks, "--iss", self.issuer, "--aud", AUD, tok)
        self.assertEqual(res.rc, 0, res)
        self.assertIn("Result: VALID (revocation not checked", res.out, res)
        i = tt.inspect_json(tok, "--profile", "tokend", "--jwks", self.jwks, "--iss", self.issuer, "--aud", AUD)
        self.assertEqual(i.obj["revocation"], "not_checked", i)
        self.assertEqual(i.obj["result"], "valid", i)

    def test_profile_needs_issuer_and_audience(self):
        tok = self.issued
        r = tt.run("inspect", "--profile", "tokend", "--jwks", self.jwks, "--aud", AUD, tok)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--iss URL", r.err, r)
        r = tt.run("inspect", "--profile", "tokend", "--jwks", self.jwks, "--iss", self.issuer, tok)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--aud AUD", r.err, r)
        r = tt.run("inspect", "--profile", "tokend", "--typ", "JWT", "--jwks", self.jwks, "--iss", self.issuer,
                   "--aud", AUD, tok)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("typ at+jwt", r.err, r)
        r = tt.run("inspect", "--profile", "auth0", tok)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--profile takes tokend", r.err, r)


if __name__ == "__main__":
    st.main()
