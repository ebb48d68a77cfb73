# SPDX-License-Identifier: Apache-2.0
"""examples/validate_bearer: a complete C program that validates the bearer
token of a request with libtokend (tk_authz_parse, tk_keyset_from_jwks,
tk_policy, tk_verify), run on good and bad Authorization values.

Keys and tokens come from `tokend keygen` and `tokend sign`. The binary is
found next to TOKEND_BIN: <dir of TOKEND_BIN>/examples/validate_bearer (or
$VALIDATE_BEARER_BIN). Run by hand:

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_example_validate.py
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

ISS = "https://auth.example"
AUD = "orders-api"


def example_bin():
    b = os.environ.get("VALIDATE_BEARER_BIN")
    if not b:
        b = os.path.join(os.path.dirname(os.path.abspath(tt.tokend_bin())), "examples", "validate_bearer")
    if not os.access(b, os.X_OK):
        raise AssertionError("%s is not built (TOKEND_BUILD_EXAMPLES=OFF?)" % b)
    return b


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


class ValidateBearer(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-validate-")
        cls.jwks = cls.keygen("k1", "k1.jwk", "jwks.json")
        cls.keygen("k1", "impostor.jwk", "impostor.json")  # same kid, another key

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def keygen(cls, kid, out, jwks):
        r = subprocess.run([tt.tokend_bin(), "keygen", "--alg", "ES256", "--kid", kid, "--out",
                            os.path.join(cls.dir, out)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r
        path = os.path.join(cls.dir, jwks)
        with open(path, "w") as f:
            f.write(r.stdout)
        return path

    def sign(self, key="k1.jwk", aud=AUD, iss=ISS, scope="orders:read", exp="15m", now=None):
        args = [tt.tokend_bin(), "sign", "--key", os.path.join(self.dir, key), "--iss", iss, "--aud", aud,
                "--sub", "alice", "--scope", scope, "--exp", exp]
        if now is not None:
            args += ["--now", str(now)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r)
        return r.stdout.strip()

    def run_example(self, header=None, stdin=None, scopes=("orders:read",), jwks=None, extra=()):
        args = [example_bin(), "--jwks", jwks or self.jwks, "--iss", ISS, "--aud", AUD]
        for s in scopes:
            args += ["--scope", s]
        args += list(extra)
        if header is not None:
            args.append(header)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
        r = subprocess.run(args, input=stdin if stdin is not None else "", capture_output=True, text=True,
                           timeout=60, env=env)
        return r.returncode, r.stdout.splitlines(), r.stderr

    def refused(self, code, status, error, **kw):
        rc, out, err = self.run_example(**kw)
        self.assertEqual(rc, 1, (out, err))
        self.assertTrue(out[0].startswith(code + ": "), out)
        want = "status: %d WWW-Authenticate: Bearer" % status + (' error="%s"' % error if error else "")
        self.assertEqual(out[1], want, out)
        self.assertTrue(out[2].startswith("hint: ") and len(out[2]) > 20, out)
        return out

    def test_valid(self):
        tok = self.sign()
        rc, out, err = self.run_example("Bearer " + tok)
        self.assertEqual((rc, out), (0, ['valid sub=alice scope="orders:read"']), err)
        # from stdin, as a header line ends
        rc, out, err = self.run_example("-", stdin="Bearer %s\r\n" % tok)
        self.assertEqual((rc, out), (0, ['valid sub=alice scope="orders:read"']), err)

    def test_token_problems(self):
        now = int(time.time())
        out = self.refused("expired", 401, "invalid_token",
                           header="Bearer " + self.sign(now=now - 7200, exp="1h"))
        self.assertIn("expired", out[0])
        self.refused("wrong_audience", 401, "invalid_token", header="Bearer " + self.sign(aud="billing-api"))
        self.refused("wrong_issuer", 401, "invalid_token", header="Bearer " + self.sign(iss="https://evil.example"))
        self.refused("insufficient_scope", 403, "insufficient_scope",
                     header="Bearer " + self.sign(scope="orders:list"))
        self.refused("bad_signature", 401, "invalid_token", header="Bearer " + self.sign(key="impostor.jwk"))
        tok = self.sign()
        h, p, s = tok.split(".")
        none = b64({"alg": "none", "kid": "k1"}) + "." + p + "."
        self.refused("alg_not_allowed", 401, "invalid_token", header="Bearer " + none)
        self.refused("malformed_token", 401, "invalid_token", header="Bearer " + h + "." + p)

    def test_header_problems(self):
        tok = self.sign()
        self.refused("missing_token", 401, None, stdin="")
        self.refused("wrong_scheme", 400, "invalid_request", header="Basic Zm9vOmJhcg==")
        self.refused("malformed_header", 400, "invalid_request", header="Bearer  " + tok)
        out = self.refused("malformed_header", 400, "invalid_request", header='Bearer "%s"' % tok)
        self.assertIn("quotes", out[0])

    def test_setup_errors(self):
        rc, out, err = self.run_example(jwks=os.path.join(self.dir, "absent.json"), header="Bearer x")
        self.assertEqual(rc, 2)
        self.assertIn("cannot read", err)
        empty = os.path.join(self.dir, "empty.json")
        with open(empty, "w") as f:
            f.write('{"keys":[]}')
        rc, out, err = self.run_example(jwks=empty, header="Bearer x")
        self.assertEqual(rc, 2)
        self.assertIn("no signature key", err)
        notjson = os.path.join(self.dir, "page.html")
        with open(notjson, "w") as f:
            f.write("<html></html>")
        rc, out, err = self.run_example(jwks=notjson, header="Bearer x")
        self.assertEqual(rc, 2)
        self.assertIn("not a usable key set", err)
        r = subprocess.run([example_bin()], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: validate_bearer", r.stderr)


if __name__ == "__main__":
    tt.main()
