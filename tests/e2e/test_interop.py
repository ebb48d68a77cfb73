# SPDX-License-Identifier: Apache-2.0
"""Interoperability of tokend with PyJWT and jwcrypto, both directions, for
every algorithm tokend supports.

  * tokens signed by PyJWT / jwcrypto verify in `tokend inspect --json`
    (valid true, exit 0) with the key given as PEM (public and private), as a
    JWK, as a JWKS, and with --iss / --aud / --scope policy flags;
  * tokens made by `tokend keygen` + `tokend sign` verify in PyJWT and in
    jwcrypto with the public key taken from the JWKS keygen printed (HS*: from
    the private JWK file), and carry the claims asked for.
"""

import json
import os
import stat
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

import jwt as pyjwt  # noqa: E402  (python3-jwt, PyJWT 2.6)
from jwcrypto import jwk as jc_jwk  # noqa: E402
from jwcrypto import jwt as jc_jwt  # noqa: E402

ISS = "https://issuer.example"
AUD = "api"
POLICY = ["--iss", ISS, "--aud", AUD, "--scope", "orders:read", "--scope", "orders:write"]

KEYS = {}
TD = None


def setUpModule():
    global TD
    tt.tokend_bin()  # skip early when there is no binary
    TD = tt.TempDir()
    rsa_key = tt.new_key("RS256")  # one RSA key for all six RSA algs (keygen is slow)
    for alg in tt.ALL_ALGS:
        if alg[:2] in ("RS", "PS"):
            KEYS[alg] = tt.rsa_variant(rsa_key, alg, kid="kid-" + alg)
        else:
            KEYS[alg] = tt.new_key(alg, kid="kid-" + alg)


def tearDownModule():
    if TD:
        TD.cleanup()


def std_claims(**extra):
    c = tt.claims(iss=ISS, aud=AUD, scope="orders:read orders:write profile")
    c.update(extra)
    return c


def pyjwt_key(key):
    return key.secret if key.secret is not None else key.priv


class Base(unittest.TestCase):
    maxDiff = None

    def assertValid(self, r, expect_payload=None):
        self.assertEqual(r.rc, 0, r)
        self.assertIs(r.valid, True, r)
        self.assertEqual(r.signature, "verified", r)
        self.assertEqual(r.problems, [], r)
        if expect_payload is not None:
            self.assertEqual(r.payload, expect_payload, r)


# ---------------------------------------------------------------------------
# foreign libraries sign, tokend verifies

class PyJWTSignsTokendVerifies(Base):

    def _token(self, alg, kid=False, **extra):
        c = std_claims(**extra)
        headers = {"kid": KEYS[alg].kid} if kid else None
        tok = pyjwt.encode(c, pyjwt_key(KEYS[alg]), algorithm=alg, headers=headers)
        return tok, c

    def test_public_pem_or_secret_file(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                tok, c = self._token(alg)
                r = tt.inspect_json(tok, *tt.key_flags(TD, KEYS[alg], "pem"), *POLICY)
                self.assertValid(r, c)
                self.assertEqual(r.header.get("alg"), alg, r)

    def test_private_pem(self):
        for alg in tt.ALL_ALGS:
            if alg.startswith("HS"):
                continue
            with self.subTest(alg=alg):
                tok, c = self._token(alg)
                r = tt.inspect_json(tok, *tt.key_flags(TD, KEYS[alg], "privpem"), *POLICY)
                self.assertValid(r, c)

    def test_jwk(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                tok, c = self._token(alg)
                r = tt.inspect_json(tok, *tt.key_flags(TD, KEYS[alg], "jwk"), *POLICY)
                self.assertValid(r, c)

    def test_jwks_with_every_key(self):
        keys = [KEYS[a].jwk(private=KEYS[a].secret is not None) for a in tt.ALL_ALGS]
        path = TD.write("all.jwks", {"keys": keys})
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                tok, c = self._token(alg, kid=True)
                r = tt.inspect_json(tok, "--jwks", path, *POLICY)
                self.assertValid(r, c)
                self.assertEqual(r.header.get("kid"), KEYS[alg].kid, r)

    def test_bearer_forms(self):
        tok, c = self._token("ES256")
        flags = tt.key_flags(TD, KEYS["ES256"], "pem")
        for form in (tok, "Bearer " + tok, "Authorization: Bearer " + tok):
            with self.subTest(form=form[:22]):
                self.assertValid(tt.inspect_json(form, *flags, *POLICY), c)
            with self.subTest(form=form[:22], stdin=True):
                self.assertValid(tt.inspect_json(form + "\n", *flags, *POLICY, stdin=True), c)

    def test_policy_flags_are_enforced(self):
        # The same tokens that pass above must fail when the policy differs:
        # proves --iss / --aud / --scope are actually applied.
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                tok, _ = self._token(alg)
                flags = tt.key_flags(TD, KEYS[alg], "jwk")
                cases = [
                    (["--iss", ISS + "/other", "--aud", AUD], "wrong_issuer"),
                    (["--iss", ISS, "--aud", "other-api"], "wrong_audience"),
                    (["--iss", ISS, "--aud", AUD, "--scope", "admin"], "insufficient_scope"),
                ]
                for pol, code in cases:
                    r = tt.inspect_json(tok, *flags, *pol)
                    self.assertEqual(r.rc, 1, r)
                    self.assertIs(r.valid, False, r)
                    self.assertEqual(r.signature, "verified", r)
                    self.assertEqual(r.codes, [code], r)

    def test_audience_array(self):
        tok = pyjwt.encode(std_claims(aud=["other", AUD]), pyjwt_key(KEYS["EdDSA"]), algorithm="EdDSA")
        self.assertValid(tt.inspect_json(tok, *tt.key_flags(TD, KEYS["EdDSA"], "jwk"), *POLICY))


class JwcryptoSignsTokendVerifies(Base):

    def _token(self, alg, header=None):
        key = KEYS[alg]
        jk = jc_jwk.JWK(**key.jwk(private=True))
        c = std_claims()
        h = {"alg": alg, "typ": "JWT", "kid": key.kid}
        if header:
            h.update(header)
        t = jc_jwt.JWT(header=h, claims=c)
        t.make_signed_token(jk)
        return t.serialize(), c

    def test_every_alg_jwk(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                tok, c = self._token(alg)
                r = tt.inspect_json(tok, *tt.key_flags(TD, KEYS[alg], "jwk"), *POLICY)
                self.assertValid(r, c)

    def test_every_alg_pem(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                tok, c = self._token(alg)
                r = tt.inspect_json(tok, *tt.key_flags(TD, KEYS[alg], "pem"), *POLICY)
                self.assertValid(r, c)

    def test_typ_at_jwt(self):
        tok, c = self._token("ES256", header={"typ": "at+jwt"})
        r = tt.inspect_json(tok, *tt.key_flags(TD, KEYS["ES256"], "jwk"), *POLICY, "--typ", "at+jwt")
        self.assertValid(r, c)


# ---------------------------------------------------------------------------
# tokend signs, foreign libraries verify

class TokendSignsForeignVerifies(Base):

    @classmethod
    def setUpClass(cls):
        cls.made = {}
        for alg in tt.ALL_ALGS:
            out = TD.join("tokend-%s.jwk" % alg)
            r = tt.run("keygen", "--alg", alg, "--kid", "tk-" + alg, "--out", out, timeout=60)
            cls.made[alg] = (r, out)

    def _keygen(self, alg):
        r, out = self.made[alg]
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(os.path.exists(out), r)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600, r)
        with open(out) as f:
            priv = json.load(f)
        self.assertEqual(priv.get("alg"), alg, priv)
        self.assertEqual(priv.get("kid"), "tk-" + alg, priv)
        if alg.startswith("HS"):
            self.assertEqual(priv.get("kty"), "oct")
            self.assertGreaterEqual(len(tt.b64u_decode(priv["k"])), tt.HS_LEN[alg])
            return priv, priv, out
        self.assertIn("d", priv, "keygen wrote no private member")
        jwks = json.loads(r.out)
        self.assertIsInstance(jwks.get("keys"), list, r)
        self.assertEqual(len(jwks["keys"]), 1, r)
        pub = jwks["keys"][0]
        for m in ("d", "p", "q", "dp", "dq", "qi", "k"):
            self.assertNotIn(m, pub, "private member %r in the public JWKS" % m)
        self.assertEqual(pub.get("alg"), alg, pub)
        self.assertEqual(pub.get("kid"), "tk-" + alg, pub)
        self.assertEqual(pub.get("kty"), priv.get("kty"))
        return priv, pub, out

    def _sign(self, keyfile, *extra):
        r = tt.run("sign", "--key", keyfile, "--iss", ISS, "--aud", AUD, "--sub", "user-9",
                   "--scope", "orders:read", "--exp", "15m", *extra)
        self.assertEqual(r.rc, 0, r)
        tok = r.out.strip()
        self.assertEqual(tok.count("."), 2, r)
        return tok

    def _check_claims(self, c, t0, t1):
        self.assertEqual(c["iss"], ISS)
        self.assertIn(c["aud"], (AUD, [AUD]), c)
        self.assertEqual(c["sub"], "user-9")
        self.assertEqual(c["scope"], "orders:read")
        self.assertIsInstance(c["iat"], int)
        self.assertGreaterEqual(c["iat"], t0 - 1)
        self.assertLessEqual(c["iat"], t1 + 1)
        self.assertEqual(c["exp"] - c["iat"], 900, c)
        self.assertIsInstance(c["jti"], str)
        self.assertTrue(1 <= len(c["jti"]) <= 256, c)

    def test_pyjwt_verifies(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                priv, pub, keyfile = self._keygen(alg)
                t0 = int(time.time())
                tok = self._sign(keyfile)
                t1 = int(time.time())
                h = pyjwt.get_unverified_header(tok)
                self.assertEqual(h.get("alg"), alg, h)
                self.assertEqual(h.get("kid"), "tk-" + alg, h)
                self.assertEqual(h.get("typ"), "JWT", h)
                key = pyjwt.PyJWK(pub).key
                c = pyjwt.decode(tok, key, algorithms=[alg], audience=AUD, issuer=ISS,
                                 options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
                self._check_claims(c, t0, t1)
                # the same key through jwt.algorithms
                algo = pyjwt.algorithms.get_default_algorithms()[alg]
                key2 = algo.from_jwk(json.dumps(pub))
                pyjwt.decode(tok, key2, algorithms=[alg], audience=AUD, issuer=ISS)
                # and a tampered token must not verify in PyJWT (sanity of the check)
                hd, pl, sg = tok.split(".")
                bad = hd + "." + tt.b64u(json.dumps(dict(c, sub="admin")).encode()) + "." + sg
                with self.assertRaises(pyjwt.InvalidSignatureError):
                    pyjwt.decode(bad, key, algorithms=[alg], audience=AUD, issuer=ISS)

    def test_jwcrypto_verifies(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                priv, pub, keyfile = self._keygen(alg)
                t0 = int(time.time())
                tok = self._sign(keyfile)
                t1 = int(time.time())
                k = jc_jwk.JWK(**pub)
                t = jc_jwt.JWT(jwt=tok, key=k, algs=[alg],
                               check_claims={"iss": ISS, "aud": AUD, "sub": "user-9", "exp": None,
                                             "iat": None, "jti": None})
                self._check_claims(json.loads(t.claims), t0, t1)
                self.assertEqual(json.loads(t.header).get("alg"), alg)

    def test_typ_flag(self):
        priv, pub, keyfile = self._keygen("ES256")
        tok = self._sign(keyfile, "--typ", "at+jwt")
        self.assertEqual(pyjwt.get_unverified_header(tok).get("typ"), "at+jwt")
        pyjwt.decode(tok, pyjwt.PyJWK(pub).key, algorithms=["ES256"], audience=AUD, issuer=ISS)

    def test_tokend_verifies_its_own(self):
        # keygen's public JWKS given back to inspect, and the private JWK too.
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                priv, pub, keyfile = self._keygen(alg)
                tok = self._sign(keyfile)
                if alg.startswith("HS"):
                    flags = ["--key", keyfile]
                else:
                    flags = ["--jwks", TD.write("pub-%s.jwks" % alg, {"keys": [pub]})]
                r = tt.inspect_json(tok, *flags, "--iss", ISS, "--aud", AUD, "--scope", "orders:read")
                self.assertValid(r)
                r = tt.inspect_json(tok, "--key", keyfile, "--iss", ISS, "--aud", AUD)
                self.assertValid(r)

    def test_sign_with_rsa_pem_and_alg(self):
        # An RSA PEM names no alg: `tokend sign --alg` binds it.
        key = KEYS["RS256"]
        pem = TD.write("sign-rsa.pem", key.priv_pem())
        for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"):
            with self.subTest(alg=alg):
                t0 = int(time.time())
                tok = self._sign(pem, "--alg", alg)
                t1 = int(time.time())
                self.assertEqual(pyjwt.get_unverified_header(tok).get("alg"), alg)
                c = pyjwt.decode(tok, key.pub, algorithms=[alg], audience=AUD, issuer=ISS)
                self._check_claims(c, t0, t1)
                jc_jwt.JWT(jwt=tok, key=jc_jwk.JWK(**dict(key.jwk(), alg=alg)), algs=[alg])

    def test_sign_with_pem_keys(self):
        # --key FILE may be a PEM private key: EC and Ed25519 keys carry their alg.
        for alg in ("ES256", "ES384", "ES512", "EdDSA"):
            with self.subTest(alg=alg):
                key = KEYS[alg]
                pem = TD.write("sign-%s.pem" % alg, key.priv_pem())
                t0 = int(time.time())
                tok = self._sign(pem)
                t1 = int(time.time())
                self.assertEqual(pyjwt.get_unverified_header(tok).get("alg"), alg)
                c = pyjwt.decode(tok, key.pub, algorithms=[alg], audience=AUD, issuer=ISS)
                self._check_claims(c, t0, t1)


if __name__ == "__main__":
    tt.main()
