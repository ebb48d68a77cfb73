# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the tokend end-to-end tests (stdlib + Debian's
python3-cryptography / python3-jwt / python3-jwcrypto only).

Every test_*.py in this directory does

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tokendtest as tt

and finds the binary in $TOKEND_BIN (set by CTest). Run one file by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_reasons.py
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time
import unittest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Default timeout of one tokend run (the binary is built with ASan/UBSan).
TIMEOUT = 30

ALL_ALGS = [
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
]

_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HASHLIB = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
EC_CRV = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
EC_SIZE = {"ES256": 32, "ES384": 48, "ES512": 66}
HS_LEN = {"HS256": 32, "HS384": 48, "HS512": 64}


# ---------------------------------------------------------------------------
# locating and running the binary

def tokend_bin():
    b = os.environ.get("TOKEND_BIN")
    if not b:
        for cand in ("build/dev/tokend", "build/h-e2e/tokend"):
            p = os.path.join(ROOT, cand)
            if os.access(p, os.X_OK):
                b = p
                break
    if not b or not os.access(b, os.X_OK):
        raise unittest.SkipTest("TOKEND_BIN is not set or not executable")
    return b


class Result:
    """Outcome of one tokend run: rc, stdout/stderr (text), elapsed seconds."""

    def __init__(self, args, rc, out, err, elapsed):
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err
        self.elapsed = elapsed

    @property
    def text(self):
        return self.out + self.err

    def __repr__(self):
        def cut(s):
            return s if len(s) < 3000 else s[:3000] + "...[cut]"
        shown = [a if len(a) < 200 else a[:200] + "...[%d bytes]" % len(a) for a in self.args]
        return "tokend %r -> rc=%s (%.2fs)\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            shown, self.rc, self.elapsed, cut(self.out), cut(self.err))


def run(*args, input=None, timeout=TIMEOUT, env=None):
    """Runs tokend with args. `input` may be str or bytes (stdin)."""
    args = [str(a) for a in args]
    if isinstance(input, str):
        input = input.encode()
    e = dict(os.environ)
    if env:
        e.update(env)
    t0 = time.monotonic()
    p = subprocess.run([tokend_bin()] + args, input=input if input is not None else b"",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=e)
    el = time.monotonic() - t0
    return Result(args, p.returncode, p.stdout.decode("utf-8", "replace"),
                  p.stderr.decode("utf-8", "replace"), el)


class Inspect:
    """Parsed `tokend inspect --json` output."""

    def __init__(self, res, obj):
        self.res = res
        self.obj = obj

    @property
    def rc(self):
        return self.res.rc

    @property
    def valid(self):
        return self.obj.get("valid")

    @property
    def signature(self):
        return self.obj.get("signature")

    @property
    def header(self):
        return self.obj.get("header")

    @property
    def payload(self):
        return self.obj.get("payload")

    @property
    def problems(self):
        return self.obj.get("problems") or []

    @property
    def codes(self):
        return [p.get("code") for p in self.problems]

    def problem(self, code):
        for p in self.problems:
            if p.get("code") == code:
                return p
        return None

    def __repr__(self):
        return repr(self.res)


def inspect_json(token, *flags, stdin=False, timeout=TIMEOUT):
    """Runs `tokend inspect --json FLAGS TOKEN` (or `-` with the token on
    stdin) and parses stdout as one JSON object. Raises AssertionError with the
    whole run when stdout is not one JSON object."""
    if stdin:
        res = run("inspect", "--json", *flags, "-", input=token, timeout=timeout)
    else:
        res = run("inspect", "--json", *flags, token, timeout=timeout)
    try:
        obj = json.loads(res.out)
    except ValueError as exc:
        raise AssertionError("stdout is not JSON (%s):\n%r" % (exc, res))
    if not isinstance(obj, dict):
        raise AssertionError("stdout is not a JSON object:\n%r" % (res,))
    return Inspect(res, obj)


# ---------------------------------------------------------------------------
# base64url and token assembly

def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(s):
    if isinstance(s, str):
        s = s.encode("ascii")
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def ec_public_jwk(pub):
    """The JWK members of an EC public key with both coordinates at the full
    size of the curve (RFC 7518 section 6.2.1.2). PyJWT 2.6's to_jwk drops
    leading zero bytes (about 1 key in 130), which tokend rightly refuses."""
    n = pub.public_numbers()
    crv, size = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}[pub.curve.name]
    return {"kty": "EC", "crv": crv, "x": b64u(n.x.to_bytes(size, "big")), "y": b64u(n.y.to_bytes(size, "big"))}


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def enc_part(part):
    """A header or payload: dict -> compact JSON; str/bytes -> raw bytes."""
    if isinstance(part, dict) or isinstance(part, list):
        return b64u_json(part)
    if isinstance(part, str):
        part = part.encode()
    return b64u(part)


def make_token(header, payload, signer=None, sig=None):
    """Compact JWS from a header and payload (dict or raw str/bytes).
    `signer(signing_input_bytes) -> sig bytes`; or `sig` as raw bytes; or
    neither for an empty signature."""
    si = enc_part(header) + "." + enc_part(payload)
    if signer is not None:
        sig = signer(si.encode("ascii"))
    return si + "." + (b64u(sig) if sig else "")


def split(token):
    return token.split(".")


# ---------------------------------------------------------------------------
# keys

class Key:
    """One key pair (or secret) with every representation the tests need."""

    def __init__(self, alg, priv, secret=None, kid=None):
        self.alg = alg
        self.priv = priv
        self.secret = secret
        self.kid = kid

    # -- signing --------------------------------------------------------
    def sign(self, msg, alg=None):
        return sign_raw(alg or self.alg, self, msg)

    def token(self, payload, header=None, alg=None, kid=False):
        h = {"alg": alg or self.alg, "typ": "JWT"}
        if kid is True and self.kid:
            h["kid"] = self.kid
        elif isinstance(kid, str):
            h["kid"] = kid
        if header:
            h.update(header)
        return make_token(h, payload, signer=lambda m: self.sign(m, alg or self.alg))

    # -- representations ------------------------------------------------
    @property
    def pub(self):
        return self.priv.public_key()

    def pub_pem(self):
        return self.pub.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo)

    def priv_pem(self):
        return self.priv.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def jwk(self, private=False, with_alg=True):
        """A JWK dict (public unless private=True) with alg and kid."""
        from jwcrypto import jwk as jwk_mod
        if self.secret is not None:
            d = {"kty": "oct", "k": b64u(self.secret)}
        else:
            k = jwk_mod.JWK.from_pyca(self.priv)
            d = json.loads(k.export(private_key=True)) if private else json.loads(k.export_public())
            d.pop("kid", None)
        if with_alg:
            d["alg"] = self.alg
        if self.kid:
            d["kid"] = self.kid
        return d


def new_key(alg, kid=None, rsa_bits=2048):
    if alg.startswith("HS"):
        return Key(alg, None, secret=os.urandom(HS_LEN[alg]), kid=kid)
    if alg[:2] in ("RS", "PS"):
        return Key(alg, rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits), kid=kid)
    if alg.startswith("ES"):
        return Key(alg, ec.generate_private_key(EC_CURVES[alg]()), kid=kid)
    if alg == "EdDSA":
        return Key(alg, ed25519.Ed25519PrivateKey.generate(), kid=kid)
    raise ValueError(alg)


def rsa_variant(key, alg, kid=None):
    """The same RSA private key bound to another RS*/PS* alg."""
    return Key(alg, key.priv, kid=kid)


def sign_raw(alg, key, msg):
    bits = alg[2:]
    if alg.startswith("HS"):
        return hmac.new(key.secret, msg, _HASHLIB[bits]).digest()
    if alg.startswith("RS"):
        return key.priv.sign(msg, padding.PKCS1v15(), _HASH[bits]())
    if alg.startswith("PS"):
        h = _HASH[bits]()
        return key.priv.sign(msg, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
    if alg.startswith("ES"):
        der = key.priv.sign(msg, ec.ECDSA(_HASH[bits]()))
        return der_to_raw(der, EC_SIZE[alg])
    if alg == "EdDSA":
        return key.priv.sign(msg)
    raise ValueError(alg)


def der_to_raw(der, size):
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(raw):
    n = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))


# ---------------------------------------------------------------------------
# files

class TempDir:
    """A temporary directory; write(name, data) returns the path."""

    def __init__(self):
        self._td = tempfile.TemporaryDirectory(prefix="tokend-e2e-")
        self.path = self._td.name

    def write(self, name, data, mode=0o600):
        p = os.path.join(self.path, name)
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def join(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        self._td.cleanup()


def key_flags(td, key, how="pem", name=None):
    """Command-line flags that give `key` (public part) to tokend inspect.
    how: "pem" (public PEM; HS: --secret-file), "privpem", "jwk" (public JWK
    with alg), "jwks" (a one-key JWKS)."""
    name = name or ("%s-%s" % (key.alg, how))
    if key.secret is not None and how in ("pem", "privpem", "secret"):
        return ["--secret-file", td.write(name + ".bin", key.secret)]
    if how == "pem":
        return ["--key", td.write(name + ".pem", key.pub_pem())]
    if how == "privpem":
        return ["--key", td.write(name + ".pem", key.priv_pem())]
    if how == "jwk":
        return ["--key", td.write(name + ".jwk", key.jwk(private=key.secret is not None))]
    if how == "jwks":
        return ["--jwks", td.write(name + ".jwks", {"keys": [key.jwk(private=key.secret is not None)]})]
    raise ValueError(how)


def claims(now=None, ttl=3600, **extra):
    """A valid claims set around `now` (default: the clock)."""
    now = int(time.time()) if now is None else now
    c = {"iss": "https://issuer.example", "sub": "user-1", "aud": "api",
         "iat": now, "exp": now + ttl, "jti": b64u(os.urandom(9))}
    for k, v in extra.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def main():
    """unittest.main() that exits non-zero on failure (the default)."""
    unittest.main(verbosity=2)
