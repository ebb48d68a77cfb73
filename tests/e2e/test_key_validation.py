# SPDX-License-Identifier: Apache-2.0
"""Keys that cannot be forged (SECURITY.md rule 23), through the real binary.

An RSA key with e = 1 makes every "signature" the padded message itself:
s^1 mod n = s, so anyone forges a token without a private key. The token
built here is exactly that forgery (EMSA-PKCS1-v1_5 of the signing input,
RFC 8017 §9.2). `tokend inspect` must refuse such a key however it is given
(--key JWK, --key PEM, --jwks) and say why, and so never call the token
valid. Other exponents that are not odd and greater than 1 are refused the
same way.

A private key whose d does not belong to its public part signs tokens that
never verify; `tokend sign --key` must refuse it with a message that says
so (RSA with and without p, q, dp, dq, qi, RSA PEM, EC, Ed25519).

Each refusal has its valid case next to it: the genuine key still loads,
signs, and verifies.
"""

import base64
import hashlib
import os
import sys
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

EXPONENT_MSG = "it must be odd, greater than 1 and below 2^64"
MISMATCH_MSG = "private key does not match its public key"

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")

TD = None
RSA = None


def setUpModule():
    global TD, RSA
    tt.tokend_bin()
    TD = tt.TempDir()
    RSA = tt.new_key("RS256", kid="e1")


def tearDownModule():
    if TD:
        TD.cleanup()


# ---------------------------------------------------------------------------
# DER by hand: the cryptography package refuses to build keys this broken.

def der_len(n):
    if n < 128:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def der_int(v):
    return der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def pem(label, body):
    b64 = base64.b64encode(body).decode("ascii")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def spki_pem(n, e):
    rsa_pub = der(0x30, der_int(n) + der_int(e))
    alg = der(0x30, der(0x06, RSA_ENCRYPTION_OID) + b"\x05\x00")
    return pem("PUBLIC KEY", der(0x30, alg + der(0x03, b"\x00" + rsa_pub)))


def pkcs1_public_pem(n, e):
    return pem("RSA PUBLIC KEY", der(0x30, der_int(n) + der_int(e)))


def pkcs1_private_pem(n, e, d, p, q, dp, dq, qi):
    return pem("RSA PRIVATE KEY", der(0x30, b"".join(der_int(v) for v in (0, n, e, d, p, q, dp, dq, qi))))


def b64u_int(v):
    return tt.b64u(v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big"))


def forged_rs256_token(kid, n_bytes, claims):
    """A token "signed" for an e = 1 key: the signature is the PKCS#1 v1.5
    encoding of the signing input, computed without any private key."""
    si = tt.enc_part({"alg": "RS256", "kid": kid}) + "." + tt.enc_part(claims)
    t = SHA256_DIGEST_INFO + hashlib.sha256(si.encode("ascii")).digest()
    em = b"\x00\x01" + b"\xff" * (n_bytes - 3 - len(t)) + b"\x00" + t
    return si + "." + tt.b64u(em)


def assert_not_valid(test, r):
    test.assertNotEqual(r.rc, 0, r)
    test.assertNotRegex(r.out, r'"valid"\s*:\s*true', r)
    said = (r.out.upper().replace("INVALID", "").replace("NOT VALID", "").replace("NOT_VALID", "")
            .replace('"VALID": FALSE', ""))
    test.assertNotIn("VALID", said, r)


# ---------------------------------------------------------------------------

class ExponentOne(unittest.TestCase):
    """The reproduced bug: tokend inspect called a token forged for an e = 1
    key VALID."""

    def setUp(self):
        nums = RSA.pub.public_numbers()
        self.n = nums.n
        self.n_bytes = (nums.n.bit_length() + 7) // 8
        self.token = forged_rs256_token("e1", self.n_bytes, tt.claims())

    def jwk(self, e):
        return {"kty": "RSA", "n": b64u_int(self.n), "e": b64u_int(e), "alg": "RS256", "kid": "e1"}

    def test_inspect_refuses_e1_in_every_form(self):
        forms = {
            "--key JWK": ["--key", TD.write("e1.jwk", self.jwk(1))],
            "--jwks": ["--jwks", TD.write("e1.jwks", {"keys": [self.jwk(1)]})],
            "--jwks, next to a good key": ["--jwks", TD.write("e1-mixed.jwks", {"keys": [
                dict(tt.new_key("ES256", kid="es").jwk()), self.jwk(1)]})],
            "--key SPKI PEM": ["--key", TD.write("e1.pem", spki_pem(self.n, 1))],
            "--key PKCS#1 PEM": ["--key", TD.write("e1-pkcs1.pem", pkcs1_public_pem(self.n, 1))],
        }
        for name, flags in forms.items():
            for json_flag in ([], ["--json"]):
                with self.subTest(form=name, json=bool(json_flag)):
                    r = tt.run("inspect", *json_flag, *flags, self.token)
                    assert_not_valid(self, r)
                    if name.startswith("--jwks"):
                        # A key of a set that cannot be used is skipped and
                        # named (issue 12): the token is judged without it,
                        # so it is never valid, and the output says why.
                        self.assertEqual(r.rc, 1, r)
                        said = r.out
                    else:
                        self.assertEqual(r.rc, 2, r)  # the one key given is unusable: no verdict at all
                        said = r.err
                    if name.startswith("--jwks"):
                        self.assertIn("(kid 'e1'): RSA exponent", said, r)  # which key of the set
                    self.assertIn("RSA exponent e is 1; " + EXPONENT_MSG, said, r)
                    self.assertIn("e=1 anyone can forge", said, r)

    def test_other_exponents_refused(self):
        for e in (0, 2, 65536, 2 ** 64 + 1, self.n, self.n + 2):
            with self.subTest(e=e if e < 2 ** 70 else "n-sized"):
                r = tt.run("inspect", "--key", TD.write("bad-e.jwk", self.jwk(e)), self.token)
                assert_not_valid(self, r)
                self.assertIn(EXPONENT_MSG, r.err, r)
                r = tt.run("inspect", "--key", TD.write("bad-e.pem", spki_pem(self.n, e)), self.token)
                assert_not_valid(self, r)
                self.assertIn(EXPONENT_MSG, r.err, r)

    def test_genuine_key_still_valid_and_the_forgery_is_bad_signature(self):
        flags = ["--key", TD.write("genuine.jwk", self.jwk(65537))]
        good = RSA.token(tt.claims(), kid=True)
        r = tt.inspect_json(good, *flags)
        self.assertEqual(r.rc, 0, r)
        self.assertIs(r.valid, True, r)
        r = tt.inspect_json(self.token, *flags)
        self.assertEqual(r.rc, 1, r)
        self.assertIs(r.valid, False, r)
        self.assertEqual(r.codes[0], "bad_signature", r)
        # e = 3 is odd and greater than 1: a public key with it loads.
        r = tt.inspect_json(self.token, "--key", TD.write("e3.jwk", self.jwk(3)))
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(r.codes[0], "bad_signature", r)


class PrivateKeyMismatch(unittest.TestCase):
    """A private key whose d is not its public key's: refused by sign."""

    def sign(self, path, *flags):
        return tt.run("sign", "--key", path, "--iss", "https://issuer.example", "--aud", "api", "--sub", "alice",
                      *flags)

    def expect_refused(self, path, *flags):
        r = self.sign(path, *flags)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), "", r)  # no token
        self.assertIn(MISMATCH_MSG, r.err, r)
        self.assertIn(path, r.err, r)  # which key
        return r

    def expect_signs(self, path, pub_jwk, *flags):
        r = self.sign(path, *flags)
        self.assertEqual(r.rc, 0, r)
        tok = r.out.strip()
        v = tt.inspect_json(tok, "--key", TD.write("verify.jwk", pub_jwk))
        self.assertEqual(v.rc, 0, v)
        self.assertIs(v.valid, True, v)

    def test_rsa_jwk_with_d_of_another_key(self):
        key = tt.new_key("RS256", kid="r1")
        other = tt.new_key("RS256", kid="r1").jwk(private=True)
        crt = ("p", "q", "dp", "dq", "qi")
        for with_crt in (True, False):
            with self.subTest(with_crt=with_crt):
                priv = key.jwk(private=True)
                if not with_crt:
                    for m in crt:
                        del priv[m]
                self.expect_signs(TD.write("rsa-good.jwk", priv), key.jwk())
                priv["d"] = other["d"]
                self.expect_refused(TD.write("rsa-mismatch.jwk", priv))

    def test_rsa_pem_with_d_of_another_key(self):
        key = tt.new_key("RS256")
        o = tt.new_key("RS256").priv.private_numbers()
        k = key.priv.private_numbers()
        n, e = k.public_numbers.n, k.public_numbers.e
        good = pkcs1_private_pem(n, e, k.d, k.p, k.q, k.dmp1, k.dmq1, k.iqmp)
        # A PEM names no alg: --alg binds it.
        self.expect_signs(TD.write("rsa-good.pem", good), key.jwk(), "--alg", "RS256")
        bad = pkcs1_private_pem(n, e, o.d, k.p, k.q, k.dmp1, k.dmq1, k.iqmp)
        self.expect_refused(TD.write("rsa-mismatch.pem", bad), "--alg", "RS256")

    def test_ec_and_ed25519_jwk_with_d_of_another_key(self):
        for alg in ("ES256", "ES384", "ES512", "EdDSA"):
            with self.subTest(alg=alg):
                key = tt.new_key(alg, kid="k1")
                priv = key.jwk(private=True)
                self.expect_signs(TD.write("good.jwk", priv), key.jwk())
                priv["d"] = tt.new_key(alg).jwk(private=True)["d"]
                self.expect_refused(TD.write("mismatch.jwk", priv))


if __name__ == "__main__":
    tt.main()
