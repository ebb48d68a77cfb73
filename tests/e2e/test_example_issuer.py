# SPDX-License-Identifier: Apache-2.0
"""examples/verify_issuer end to end: the key-set cache of a trusted issuer
(tokend/keycache.h) over the real fetcher (libtokend_fetch, libcurl, TLS).

A throwaway CA and a leaf for 127.0.0.1 are made with /usr/bin/openssl in a
temporary directory; a small HTTPS server on 127.0.0.1:0 serves an issuer's
OpenID configuration and JWKS (with Cache-Control), counts the requests per
path and can change its keys between tokens. Tokens are signed with PyJWT.
The example reads tokens one per line and answers one line each, so the
test talks to it line by line.

The binary is found next to TOKEND_BIN: <dir of TOKEND_BIN>/examples/
verify_issuer (or $VERIFY_ISSUER_BIN). Run by hand:

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_example_issuer.py
"""

import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

OPENSSL = "/usr/bin/openssl"


def example_bin():
    b = os.environ.get("VERIFY_ISSUER_BIN")
    if not b:
        b = os.path.join(os.path.dirname(os.path.abspath(tt.tokend_bin())), "examples", "verify_issuer")
    if not os.access(b, os.X_OK):
        raise unittest.SkipTest("%s is not built (TOKEND_BUILD_EXAMPLES=OFF?)" % b)
    return b


def make_ca_and_leaf(d):
    """A CA and a leaf for 127.0.0.1 / localhost signed by it; returns (ca.pem, leaf.pem, leaf.key)."""
    def run(*args):
        subprocess.run([OPENSSL] + list(args), cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=verify_issuer test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
        "-out", "leaf.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")
    return (os.path.join(d, "ca.pem"), os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key"))


class Key:
    """A signing key with a kid, its public JWK, and PyJWT signing."""

    def __init__(self, alg, kid):
        self.alg = alg
        self.kid = kid
        if alg.startswith("RS"):
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.priv.public_key()))
        else:
            self.priv = ec.generate_private_key(ec.SECP256R1())
            j = tt.ec_public_jwk(self.priv.public_key())
        j.update({"kid": kid, "use": "sig", "alg": alg})
        self.jwk = j

    def sign(self, claims, kid=None):
        return jwt.encode(claims, self.priv, algorithm=self.alg, headers={"kid": kid or self.kid})


class Issuer:
    """The HTTPS server of one or more issuers under path prefixes."""

    def __init__(self, leaf, key):
        self.lock = threading.Lock()
        self.docs = {}  # path -> (status, body bytes, headers)
        self.hits = {}
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                    status, body, headers = outer.docs.get(self.path, (404, b"<html>not found</html>", {}))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(leaf, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.base = "https://127.0.0.1:%d" % self.srv.server_address[1]
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()

    def serve(self, path, obj, status=200, headers=None):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        with self.lock:
            self.docs[path] = (status, body, h)

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class Example:
    """verify_issuer running, fed one token at a time."""

    def __init__(self, *args):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        self.p = subprocess.Popen([example_bin()] + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        self.err_lines = []
        self.t = threading.Thread(target=self._drain, daemon=True)
        self.t.start()

    def _drain(self):
        for line in self.p.stderr:
            self.err_lines.append(line.rstrip("\n"))

    def check(self, token):
        self.p.stdin.write(token + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("verify_issuer ended; stderr:\n" + "\n".join(self.err_lines))
        return line.rstrip("\n")

    def status(self):
        """The last --status line (stderr is read on a thread: wait for it)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [ln for ln in self.err_lines if ln.startswith("status: ")]
            if lines and getattr(self, "_seen", 0) < len(lines):
                self._seen = len(lines)
                return dict(kv.split("=", 1) for kv in lines[-1][len("status: "):].split(" ") if "=" in kv)
            time.sleep(0.02)
        raise AssertionError("no status line; stderr:\n" + "\n".join(self.err_lines))

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=60)
        self.t.join(timeout=10)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


class ExampleIssuer(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tokend-example-")
        cls.ca, leaf, leaf_key = make_ca_and_leaf(cls.dir)
        cls.k1 = Key("RS256", "rsa-1")
        cls.k2 = Key("ES256", "ec-2")
        cls.stranger = Key("RS256", "not-published")
        cls.srv = Issuer(leaf, leaf_key)
        cls.iss = cls.srv.base + "/tenant"
        cls.srv.serve("/tenant/.well-known/openid-configuration",
                      {"issuer": cls.iss, "jwks_uri": cls.iss + "/keys",
                       "id_token_signing_alg_values_supported": ["RS256", "ES256"]})

    def setUp(self):
        self.srv.serve("/tenant/keys", {"keys": [self.k1.jwk]},
                       headers={"Cache-Control": "public, max-age=600, must-revalidate"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def claims(self, iss=None, **kw):
        now = int(time.time())
        c = {"iss": iss or self.iss, "sub": "alice", "aud": "api", "iat": now, "exp": now + 600}
        c.update(kw)
        return c

    def test_valid_expired_unknown_key_rotation(self):
        md0 = self.srv.count("/tenant/.well-known/openid-configuration")
        keys0 = self.srv.count("/tenant/keys")
        ex = Example(self.iss, "--ca-file", self.ca, "--aud", "api", "--status")
        try:
            # valid: discovery, then the key set
            out = ex.check(self.k1.sign(self.claims()))
            self.assertEqual(out, "valid sub=alice")
            self.assertEqual(self.srv.count("/tenant/.well-known/openid-configuration"), md0 + 1)
            self.assertEqual(self.srv.count("/tenant/keys"), keys0 + 1)
            st = ex.status()
            self.assertEqual(st["keys"], "1", st)
            self.assertEqual(st["jwks_uri"], self.iss + "/keys", st)
            # Cache-Control: public, max-age=600 gives the set 600 s
            self.assertEqual(st["ttl"], "600", st)

            # expired (past the 60 s leeway)
            now = int(time.time())
            out = ex.check(self.k1.sign(self.claims(iat=now - 4000, exp=now - 3600)))
            self.assertTrue(out.startswith("expired: "), out)
            ex.status()

            # wrong audience, wrong issuer claim
            out = ex.check(self.k1.sign(self.claims(aud="other-api")))
            self.assertTrue(out.startswith("wrong_audience: "), out)
            ex.status()
            out = ex.check(self.k1.sign(self.claims(iss=self.srv.base + "/other")))
            self.assertTrue(out.startswith("wrong_issuer: "), out)
            ex.status()
            # HS256 under the RSA key's kid: the alg comes from the key
            out = ex.check(jwt.encode(self.claims(), "s" * 32, algorithm="HS256", headers={"kid": "rsa-1"}))
            self.assertTrue(out.startswith("alg_not_allowed: "), out)
            ex.status()
            self.assertEqual(self.srv.count("/tenant/keys"), keys0 + 1)

            # rotation: the issuer publishes ec-2 and signs with it; one refetch
            self.srv.serve("/tenant/keys", {"keys": [self.k2.jwk, self.k1.jwk]},
                           headers={"Cache-Control": "public, max-age=600"})
            out = ex.check(self.k2.sign(self.claims(sub="bob")))
            self.assertEqual(out, "valid sub=bob")
            self.assertEqual(self.srv.count("/tenant/keys"), keys0 + 2)
            st = ex.status()
            self.assertEqual(st["keys"], "2", st)
            self.assertEqual(st["kid_refetches"], "1", st)
            # max-age as the last directive of the header line: 600 s as well
            self.assertEqual(st["ttl"], "600", st)

            # an unknown kid within the 30 s cool-down: unknown_key, no fetch
            out = ex.check(self.stranger.sign(self.claims()))
            self.assertTrue(out.startswith("unknown_key: kid 'not-published' is not in the key set of %s"
                                           % self.iss), out)
            self.assertIn("not refetched", out)
            self.assertIn("'ec-2', 'rsa-1'", out)
            self.assertEqual(self.srv.count("/tenant/keys"), keys0 + 2)
            ex.status()

            # garbage
            out = ex.check("a.b.c")
            self.assertTrue(out.startswith("malformed_token: "), out)
            out = ex.check("opaque-reference-token")
            self.assertTrue(out.startswith("unsupported_token_type: "), out)
            ex.status()
        finally:
            rc = ex.close()
        self.assertEqual(rc, 1, "\n".join(ex.err_lines))  # some tokens were not valid
        self.assertEqual(self.srv.count("/tenant/.well-known/openid-configuration"), md0 + 1)

    def test_unknown_kid_refetches_once(self):
        ex = Example(self.iss, "--ca-file", self.ca, "--aud", "api")
        try:
            before = self.srv.count("/tenant/keys")
            out = ex.check(self.stranger.sign(self.claims()))
            self.assertTrue(out.startswith("unknown_key: kid 'not-published' is not in the key set of %s"
                                           % self.iss), out)
            self.assertIn("refetched just now", out)
            # the first fetch, then one refetch for the unknown kid
            self.assertEqual(self.srv.count("/tenant/keys"), before + 2)
            out = ex.check(self.stranger.sign(self.claims(), kid="another-one"))
            self.assertTrue(out.startswith("unknown_key: "), out)
            self.assertIn("not refetched", out)
            self.assertEqual(self.srv.count("/tenant/keys"), before + 2)
        finally:
            ex.close()

    def test_tls_needs_the_ca(self):
        # Without --ca-file the server's certificate is not trusted: no keys,
        # tokens are unavailable (never valid), and the reason says why.
        ex = Example(self.iss, "--aud", "api")
        try:
            out = ex.check(self.k1.sign(self.claims()))
            self.assertTrue(out.startswith("unavailable: the key set of %s could not be fetched" % self.iss), out)
            self.assertRegex(out, r"(?i)certificate|SSL")
        finally:
            self.assertEqual(ex.close(), 1)

    def test_metadata_of_another_issuer_refused(self):
        self.srv.serve("/mixup/.well-known/openid-configuration",
                       {"issuer": self.iss, "jwks_uri": self.iss + "/keys"})
        mixup = self.srv.base + "/mixup"
        ex = Example(mixup, "--ca-file", self.ca, "--aud", "api")
        try:
            out = ex.check(self.k1.sign(self.claims(iss=mixup)))
            self.assertTrue(out.startswith("unavailable: "), out)
            self.assertIn('its issuer is "%s", not "%s"' % (self.iss, mixup), out)
        finally:
            ex.close()

    def test_cache_control_lifetimes(self):
        # The lifetime the fetcher reads from Cache-Control, clamped by the
        # cache to [300, 86400] s, 3600 s without one. The directive is the
        # last one of its header line on purpose (libcurl passes the CRLF).
        for name, header, ttl in (("max-age-last", "max-age=1200", "1200"),
                                  ("no-store", "no-store", "300"),
                                  ("short", "public, max-age=5", "300"),
                                  ("long", "max-age=31536000", "86400"),
                                  ("none", None, "3600")):
            with self.subTest(case=name):
                prefix = "/ttl-" + name
                iss = self.srv.base + prefix
                self.srv.serve(prefix + "/.well-known/openid-configuration", {"issuer": iss, "jwks_uri": iss + "/k"})
                self.srv.serve(prefix + "/k", {"keys": [self.k1.jwk]},
                               headers={"Cache-Control": header} if header else {})
                ex = Example(iss, "--ca-file", self.ca, "--aud", "api", "--status")
                try:
                    self.assertEqual(ex.check(self.k1.sign(self.claims(iss=iss))), "valid sub=alice")
                    st = ex.status()
                    self.assertEqual(st["ttl"], ttl, st)
                finally:
                    self.assertEqual(ex.close(), 0)

    def test_usage(self):
        r = subprocess.run([example_bin()], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("usage: verify_issuer", r.stderr)
        r = subprocess.run([example_bin(), "http://insecure.test"], input="", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("https://", r.stderr)


if __name__ == "__main__":
    tt.main()
