# SPDX-License-Identifier: Apache-2.0
"""Behaviour of the `tokend` command line: help, usage errors and exit
statuses, keygen files, sign options, and the human output of inspect."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

NOW = 1700000000  # 2023-11-14T22:13:20Z
ISS = "https://issuer.example"

TD = None
HS = None


def setUpModule():
    global TD, HS
    tt.tokend_bin()
    TD = tt.TempDir()
    HS = tt.new_key("HS256")


def tearDownModule():
    if TD:
        TD.cleanup()


PRIVATE_MEMBERS = {
    "EC": {"d"},
    "OKP": {"d"},
    "RSA": {"d", "p", "q", "dp", "dq", "qi"},
    "oct": {"k"},
}


class Help(unittest.TestCase):

    def test_help_of_each_command(self):
        for cmd in ([], ["inspect"], ["keygen"], ["sign"]):
            with self.subTest(cmd=cmd):
                r = tt.run(*cmd, "--help")
                self.assertEqual(r.rc, 0, r)
                if cmd:
                    self.assertIn("Example", r.out, r)
                    self.assertIn(cmd[0], r.out, r)
                else:
                    for sub in ("inspect", "keygen", "sign"):
                        self.assertIn(sub, r.out, r)

    def test_inspect_help_names_every_flag(self):
        r = tt.run("inspect", "--help")
        for flag in ("--jwks", "--key", "--secret-file", "--iss", "--aud", "--scope", "--typ",
                     "--leeway", "--now", "--json"):
            self.assertIn(flag, r.out, r)

    def test_keygen_and_sign_help_name_their_flags(self):
        r = tt.run("keygen", "--help")
        for flag in ("--alg", "--kid", "--out"):
            self.assertIn(flag, r.out, r)
        r = tt.run("sign", "--help")
        for flag in ("--key", "--claims", "--exp", "--iss", "--aud", "--sub", "--scope", "--typ"):
            self.assertIn(flag, r.out, r)


class UsageErrors(unittest.TestCase):

    def test_usage_errors_exit_2(self):
        tok = HS.token(tt.claims(now=NOW))
        out = TD.join("usage.jwk")
        cases = [
            [],
            ["frobnicate"],
            ["inspect", "--bogus", tok],
            ["inspect", "--leeway", "abc", tok],
            ["inspect", "--leeway", "-5", tok],
            ["inspect", "--leeway", "1000", tok],  # above the 300 s ceiling
            ["inspect", "--now", "yesterday", tok],
            ["inspect", "--json", tok, tok],        # two tokens
            ["inspect", "--key"],                   # missing value
            ["keygen"],
            ["keygen", "--alg", "none", "--out", out],
            ["keygen", "--alg", "HS1", "--out", out],
            ["keygen", "--alg", "es256", "--out", out],
            ["sign"],
            ["sign", "--key", TD.write("k.jwk", HS.jwk(private=True)), "--exp", "15x"],
            ["sign", "--key", TD.join("k.jwk"), "--exp", "-5m"],
            ["sign", "--key", TD.join("k.jwk"), "--claims", "{not json"],
            ["sign", "--key", TD.join("k.jwk"), "--claims", "[1,2]"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = tt.run(*args)
                self.assertEqual(r.rc, 2, r)
                self.assertTrue(r.err.strip(), "a usage error says something on stderr: %r" % r)
                self.assertFalse(os.path.exists(out), r)

    def test_unusable_inputs_fail_closed(self):
        # Not "valid", never exit 0, and no network for a non-https JWKS URL.
        tok = HS.token(tt.claims())
        for flags in (["--key", TD.join("does-not-exist.pem")],
                      ["--secret-file", TD.join("does-not-exist.bin")],
                      ["--jwks", TD.join("does-not-exist.jwks")],
                      ["--key", TD.write("garbage.pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")],
                      ["--jwks", TD.write("garbage.jwks", b"{\"keys\": 5}")],
                      ["--jwks", "http://127.0.0.1:9/jwks.json"],
                      ["--secret-file", TD.write("short.bin", b"short secret")],  # < 32 bytes
                      ["--key", TD.write("enc.jwk", dict(HS.jwk(private=True), use="enc"))],
                      ["--key", TD.write("rsa1024.pem", tt.new_key("RS256", rsa_bits=1024).pub_pem())]):
            with self.subTest(flags=flags):
                t0 = time.monotonic()
                r = tt.run("inspect", "--json", *flags, tok)
                self.assertNotEqual(r.rc, 0, r)
                self.assertIn(r.rc, (1, 2), r)
                self.assertNotRegex(r.out, r'"valid"\s*:\s*true', r)
                self.assertLess(time.monotonic() - t0, 10, r)

    def test_jwks_https_certificate_is_verified(self):
        # An https JWKS endpoint with a self-signed certificate serving the
        # very key that signed the token: tokend must refuse the connection
        # (certificate verification on), so the token is not valid.
        import datetime
        import http.server
        import ssl
        import threading
        import urllib.request
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID

        es = tt.new_key("ES256", kid="tls-1")
        jwks = json.dumps({"keys": [es.jwk()]}).encode()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        t0 = datetime.datetime(2023, 1, 1)
        import ipaddress
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(es.pub)
                .serial_number(7).not_valid_before(t0).not_valid_after(t0.replace(year=2040))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                               critical=False)
                .sign(es.priv, hashes.SHA256()))
        certf = TD.write("tls-cert.pem", cert.public_bytes(serialization.Encoding.PEM))
        keyf = TD.write("tls-key.pem", es.priv_pem())

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(jwks)))
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certf, keyf)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        try:
            url = "https://127.0.0.1:%d/jwks.json" % srv.server_address[1]
            # the server works (for a client that skips verification)
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE
            with urllib.request.urlopen(url, context=insecure, timeout=10) as f:
                self.assertEqual(json.loads(f.read())["keys"][0]["kid"], "tls-1")
            tok = es.token(tt.claims(), kid=True)
            r = tt.run("inspect", "--json", "--jwks", url, tok, timeout=60)
            self.assertIn(r.rc, (1, 2), r)
            self.assertNotRegex(r.out, r'"valid"\s*:\s*true', r)
            self.assertNotRegex(r.out, r'"signature"\s*:\s*"verified"', r)
        finally:
            srv.shutdown()
            srv.server_close()

    def test_jwks_skips_members_it_does_not_use(self):
        # Encryption keys ("use": "enc", an RSA-OAEP alg) and unknown key
        # types in a JWKS are skipped, not fatal; the signing key still
        # verifies. (Run under ASan: a leak on the skip path aborts tokend.)
        es = tt.new_key("ES256", kid="sig-1")
        enc = tt.new_key("ES384", kid="enc-1")
        rsa_enc = dict(tt.new_key("RS256", rsa_bits=2048).jwk(), alg="RSA-OAEP", kid="enc-2")
        for name, extra in (("use enc", [dict(enc.jwk(), use="enc")]),
                            ("alg RSA-OAEP", [rsa_enc]),
                            ("unknown kty", [{"kty": "XYZ", "kid": "odd"}]),
                            ("all", [dict(enc.jwk(), use="enc"), rsa_enc, {"kty": "XYZ", "kid": "odd"}])):
            with self.subTest(case=name):
                path = TD.write("skip.jwks", {"keys": extra + [es.jwk()]})
                r = tt.inspect_json(es.token(tt.claims(), kid=True), "--jwks", path)
                self.assertEqual(r.rc, 0, r)
                self.assertIs(r.valid, True, r)

    def test_sign_with_public_key_fails(self):
        es = tt.new_key("ES256")
        r = tt.run("sign", "--key", TD.write("pub.jwk", es.jwk()), "--exp", "5m")
        self.assertNotEqual(r.rc, 0, r)
        self.assertNotRegex(r.out, r"^[\w-]+\.[\w-]+\.[\w-]*\s*$", r)


class Keygen(unittest.TestCase):

    def _keygen(self, alg, out, kid=None, umask=None):
        args = [tt.tokend_bin(), "keygen", "--alg", alg, "--out", out]
        if kid:
            args += ["--kid", kid]
        old = os.umask(umask) if umask is not None else None
        try:
            p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        finally:
            if old is not None:
                os.umask(old)
        return p

    def test_keygen_file_mode_and_private_jwk(self):
        for alg in tt.ALL_ALGS:
            with self.subTest(alg=alg):
                out = TD.join("kg-%s.jwk" % alg)
                p = self._keygen(alg, out, kid="kg-" + alg, umask=0)
                self.assertEqual(p.returncode, 0, p)
                self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
                with open(out) as f:
                    priv = json.load(f)
                kty = priv.get("kty")
                self.assertIn(kty, PRIVATE_MEMBERS, priv)
                self.assertTrue(PRIVATE_MEMBERS[kty] <= set(priv), "not a private JWK: %s" % sorted(priv))
                self.assertEqual(priv.get("alg"), alg)
                self.assertEqual(priv.get("kid"), "kg-" + alg)
                if alg.startswith("ES"):
                    self.assertEqual(priv.get("crv"), tt.EC_CRV[alg])
                if alg == "EdDSA":
                    self.assertEqual(priv.get("crv"), "Ed25519")
                if alg.startswith("HS"):
                    self.assertGreaterEqual(len(tt.b64u_decode(priv["k"])), tt.HS_LEN[alg])
                    continue
                jwks = json.loads(p.stdout)
                self.assertEqual(len(jwks["keys"]), 1, jwks)
                pub = jwks["keys"][0]
                self.assertFalse(set(pub) & {"d", "p", "q", "dp", "dq", "qi", "k"}, pub)
                for m in set(priv) - PRIVATE_MEMBERS[kty] - {"key_ops"}:
                    self.assertEqual(pub.get(m), priv[m], "member %s" % m)

    def test_keygen_keys_differ(self):
        a, b = TD.join("a.jwk"), TD.join("b.jwk")
        self.assertEqual(self._keygen("ES256", a).returncode, 0)
        self.assertEqual(self._keygen("ES256", b).returncode, 0)
        with open(a) as fa, open(b) as fb:
            self.assertNotEqual(json.load(fa)["d"], json.load(fb)["d"])

    def test_keygen_never_overwrites_or_follows_links(self):
        # An existing file is kept unless --force; with --force the result is
        # still 0600 even when the old file was world-readable; a symlink is
        # not followed (no key material written through it).
        out = TD.write("existing.jwk", b"old contents\n", mode=0o644)
        p = self._keygen("ES256", out)
        self.assertNotEqual(p.returncode, 0, p)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"old contents\n")
        p = subprocess.run([tt.tokend_bin(), "keygen", "--alg", "ES256", "--out", out, "--force"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p)
        self.assertEqual(stat.S_IMODE(os.stat(out).st_mode), 0o600)
        with open(out) as f:
            self.assertIn("d", json.load(f))
        target = TD.join("link-target.jwk")
        link = TD.join("link.jwk")
        os.symlink(target, link)
        for extra in ([], ["--force"]):
            with self.subTest(extra=extra):
                p = subprocess.run([tt.tokend_bin(), "keygen", "--alg", "ES256", "--out", link] + extra,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                self.assertNotEqual(p.returncode, 0, p)
                self.assertFalse(os.path.exists(target), p)

    def test_keygen_hs_stdout_has_no_secret(self):
        out = TD.join("hs-secret.jwk")
        p = self._keygen("HS256", out)
        self.assertEqual(p.returncode, 0, p)
        with open(out) as f:
            k = json.load(f)["k"]
        self.assertNotIn(k.encode(), p.stdout + p.stderr)


class Sign(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.key = TD.join("sign-es.jwk")
        r = tt.run("keygen", "--alg", "ES256", "--kid", "s-1", "--out", cls.key)
        cls.kg = r
        cls.jwks = TD.write("sign-es.jwks", r.out) if r.rc == 0 else None

    def setUp(self):
        self.assertEqual(self.kg.rc, 0, self.kg)

    def _sign(self, *args, input=None):
        r = tt.run("sign", "--key", self.key, *args, input=input)
        self.assertEqual(r.rc, 0, r)
        tok = r.out.strip()
        self.assertRegex(tok, r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
        h, p, _ = tok.split(".")
        return tok, json.loads(tt.b64u_decode(h)), json.loads(tt.b64u_decode(p))

    def test_sign_defaults_and_durations(self):
        for dur, secs in (("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800)):
            with self.subTest(exp=dur):
                t0 = int(time.time())
                tok, h, c = self._sign("--exp", dur)
                self.assertEqual(h.get("alg"), "ES256")
                self.assertEqual(h.get("kid"), "s-1")
                self.assertEqual(h.get("typ"), "JWT")
                self.assertTrue(t0 - 1 <= c["iat"] <= int(time.time()) + 1, c)
                self.assertEqual(c["exp"] - c["iat"], secs, c)
                self.assertTrue(c.get("jti"), c)

    def test_sign_now_and_compound_duration(self):
        _, _, c = self._sign("--now", str(NOW), "--exp", "1h30m")
        self.assertEqual(c["iat"], NOW, c)
        self.assertEqual(c["exp"], NOW + 5400, c)

    def test_sign_flags_win_over_claims(self):
        claims = {"iss": "from-claims", "sub": "from-claims", "iat": NOW - 10, "jti": "given-jti", "x": 1}
        _, _, c = self._sign("--now", str(NOW), "--claims", json.dumps(claims), "--iss", ISS, "--sub", "flag-sub",
                             "--exp", "5m")
        self.assertEqual(c["iss"], ISS, c)
        self.assertEqual(c["sub"], "flag-sub", c)
        self.assertEqual(c["iat"], NOW - 10, c)   # kept from the claims
        self.assertEqual(c["jti"], "given-jti", c)
        self.assertEqual(c["x"], 1, c)
        _, _, c = self._sign("--aud", "a1", "--aud", "a2", "--exp", "5m")
        self.assertEqual(c["aud"], ["a1", "a2"], c)

    def test_sign_refuses_exposed_key_file(self):
        exposed = TD.join("exposed.jwk")
        with open(self.key, "rb") as f:
            data = f.read()
        TD.write("exposed.jwk", data, mode=0o644)
        r = tt.run("sign", "--key", exposed, "--exp", "5m")
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(r.out.strip(), "", r)

    def test_sign_rsa_pem_needs_alg(self):
        rsa = tt.new_key("RS256")
        pem = TD.write("sign-rsa.pem", rsa.priv_pem())
        r = tt.run("sign", "--key", pem, "--exp", "5m")
        self.assertEqual(r.rc, 2, r)
        self.assertEqual(r.out.strip(), "", r)

    def test_sign_jti_unique(self):
        _, _, a = self._sign("--exp", "5m")
        _, _, b = self._sign("--exp", "5m")
        self.assertNotEqual(a["jti"], b["jti"])

    def test_sign_claims_json_and_stdin(self):
        extra = {"client_id": "cli-7", "roles": ["a", "b"], "n": 3}
        _, h, c = self._sign("--claims", json.dumps(extra), "--exp", "10m", "--iss", ISS,
                             "--aud", "api", "--sub", "u-1", "--scope", "read", "--typ", "at+jwt")
        self.assertEqual(h["typ"], "at+jwt")
        for k, v in dict(extra, iss=ISS, aud="api", sub="u-1", scope="read").items():
            self.assertIn(c.get(k), (v, [v]) if k == "aud" else (v,), c)
        _, _, c = self._sign("--claims", "-", "--exp", "10m", input=json.dumps(extra))
        for k, v in extra.items():
            self.assertEqual(c.get(k), v, c)

    def test_sign_then_inspect(self):
        tok, _, _ = self._sign("--exp", "15m", "--iss", ISS, "--aud", "api", "--scope", "read")
        r = tt.inspect_json(tok, "--jwks", self.jwks, "--iss", ISS, "--aud", "api", "--scope", "read")
        self.assertEqual(r.rc, 0, r)
        self.assertIs(r.valid, True, r)
        self.assertEqual(r.signature, "verified", r)
        r = tt.inspect_json(tok, "--key", self.key, "--aud", "api")
        self.assertEqual(r.rc, 0, r)
        # later than exp + leeway: expired
        r = tt.inspect_json(tok, "--jwks", self.jwks, "--now", str(int(time.time()) + 3600))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("expired", r.codes, r)


class InspectOutput(unittest.TestCase):

    def _tok(self, **kw):
        d = {"iss": ISS}
        d.update(kw)
        return HS.token(tt.claims(now=NOW, **d))

    def _flags(self):
        return ["--secret-file", TD.write("hs.bin", HS.secret), "--now", str(NOW)]

    def test_json_shape(self):
        r = tt.inspect_json(self._tok(), *self._flags())
        self.assertEqual(r.rc, 0, r)
        self.assertTrue({"valid", "signature", "header", "payload", "problems"} <= set(r.obj), r)
        self.assertIsInstance(r.header, dict)
        self.assertIsInstance(r.payload, dict)
        self.assertIsInstance(r.obj["problems"], list)
        # exactly one JSON document on stdout
        json.loads(r.res.out)

    def test_human_valid(self):
        tok = self._tok()  # iat NOW, exp NOW + 3600
        r = tt.run("inspect", *self._flags(), tok)
        self.assertEqual(r.rc, 0, r)
        out = r.out
        # header and payload pretty-printed: one member per indented line
        self.assertRegex(out, r'\n[ \t]+"alg": "HS256",?\n', r)
        self.assertRegex(out, r'\n[ \t]+"typ": "JWT",?\n', r)
        self.assertRegex(out, r'\n[ \t]+"iss": "https://issuer.example",?\n', r)
        self.assertRegex(out, r'\n[ \t]+"sub": "user-1",?\n', r)
        # time claims as UTC ISO-8601, with relative text
        self.assertIn("2023-11-14T23:13:20Z", out, r)   # exp
        self.assertIn("2023-11-14T22:13:20Z", out, r)   # iat
        self.assertRegex(out.lower(), r"expires in 1h", r)
        self.assertRegex(out.lower(), r"verified", r)

    def test_human_problems(self):
        tok = self._tok(exp=NOW - 192, iat=NOW - 3600, aud="other")  # expired 3m12s ago
        r = tt.run("inspect", *self._flags(), "--aud", "api", tok)
        self.assertEqual(r.rc, 1, r)
        out = r.text
        self.assertIn("2023-11-14T22:10:08Z", out, r)
        self.assertRegex(out.lower(), r"expired[^\n]*\b3m12s ago", r)
        j = tt.inspect_json(tok, *self._flags(), "--aud", "api")
        self.assertEqual(set(j.codes), {"expired", "wrong_audience"}, j)
        for p in j.problems:
            self.assertIn(p["code"], out, r)
            self.assertIn(p["hint"], out, r)
            self.assertIn(p["message"], out, r)

    def test_human_not_yet_valid_relative(self):
        tok = self._tok(nbf=NOW + 7200)
        r = tt.run("inspect", *self._flags(), tok)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("2023-11-15T00:13:20Z", r.out, r)
        self.assertIn("not_yet_valid", r.out, r)

    def test_exit_codes(self):
        tok = self._tok()
        self.assertEqual(tt.run("inspect", *self._flags(), tok).rc, 0)
        self.assertEqual(tt.run("inspect", *self._flags(), "--aud", "nope", tok).rc, 1)
        self.assertEqual(tt.run("inspect", "--now", str(NOW), tok).rc, 1)  # no key
        self.assertEqual(tt.run("inspect", *self._flags(), "--leeway", "x", tok).rc, 2)
        # same with --json
        self.assertEqual(tt.run("inspect", "--json", *self._flags(), tok).rc, 0)
        self.assertEqual(tt.run("inspect", "--json", *self._flags(), "--iss", "x", tok).rc, 1)

    def test_clock_is_used_without_now(self):
        now = int(time.time())
        tok = HS.token(tt.claims(now=now))
        flags = ["--secret-file", TD.write("hs.bin", HS.secret)]
        self.assertEqual(tt.run("inspect", *flags, tok).rc, 0)
        old = HS.token(tt.claims(now=now - 7200))  # expired an hour ago
        r = tt.inspect_json(old, *flags)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("expired", r.codes, r)

    def test_human_output_escapes_control_characters(self):
        # Token-supplied text must not reach the terminal raw: in the payload,
        # in the header, and in messages that quote token values.
        # (C0 controls only: a C1 CSI U+009B is shown raw inside pretty JSON,
        # which is valid JSON; see the report of the e2e helper.)
        evil = "evil\u001b[31mred\u0007\u001b]0;title\u0007"
        for tok, flags in ((HS.token(tt.claims(now=NOW, sub=evil)), []),
                           (HS.token(tt.claims(now=NOW, iss=evil)), ["--iss", ISS]),
                           (HS.token(tt.claims(now=NOW), header={"kid": evil, "typ": evil}), ["--typ", "at+jwt"]),
                           (tt.make_token({"alg": evil}, tt.claims(now=NOW), sig=b"x" * 32), [])):
            for json_flag in ([], ["--json"]):
                with self.subTest(flags=flags, json=json_flag):
                    r = tt.run("inspect", *json_flag, *self._flags(), *flags, tok)
                    for ch in ("\x1b", "\x07"):
                        self.assertNotIn(ch, r.out + r.err, r)



# ---------------------------------------------------------------------------
# issue 12 section 5: inspect's summary says exactly what was checked

def run_on_terminal(args, lang):
    """Runs tokend on a pseudo-terminal (stdout is a tty) with LANG=lang and
    no other locale variable; returns (rc, output bytes)."""
    import pty
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANG"}
    env["LANG"] = lang
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            os.execve(tt.tokend_bin(), [tt.tokend_bin()] + list(args), env)
        finally:
            os._exit(127)
    out = b""
    while True:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out


class Summary(unittest.TestCase):

    def _key(self):
        return ["--secret-file", TD.write("hs.bin", HS.secret), "--now", str(NOW)]

    def test_no_key_is_unverified_not_zero_problems(self):
        tok = HS.token(tt.claims(now=NOW))
        r = tt.run("inspect", "--now", str(NOW), tok)
        self.assertEqual(r.rc, 1, r)
        self.assertIn("Result: UNVERIFIED", r.out, r)
        self.assertNotIn("0 problems", r.out, r)
        j = tt.inspect_json(tok, "--now", str(NOW))
        self.assertEqual((j.obj["result"], j.obj["valid"], j.signature), ("unverified", False, "not_checked"), j)
        # with a problem it is NOT VALID, and the problem is counted
        r = tt.run("inspect", "--now", str(NOW), HS.token(tt.claims(now=NOW - 7200)))
        self.assertIn("Result: NOT VALID, 1 problem", r.out, r)

    def test_valid_says_revocation_was_not_checked(self):
        tok = HS.token(tt.claims(now=NOW))
        r = tt.run("inspect", *self._key(), tok)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Result: VALID (revocation not checked: inspect works offline", r.out, r)
        j = tt.inspect_json(tok, *self._key())
        self.assertEqual((j.obj["result"], j.obj["revocation"]), ("valid", "not_checked"), j)

    def test_failed_only_when_a_verification_ran(self):
        tok = HS.token(tt.claims(now=NOW), kid=True) if HS.kid else HS.token(tt.claims(now=NOW), header={"kid": "h1"})
        # checked with the right kind of key and wrong bytes: FAILED
        other = tt.new_key("HS256")
        bad = ["--secret-file", TD.write("other.bin", other.secret), "--now", str(NOW)]
        r = tt.run("inspect", *bad, tok)
        self.assertIn("Signature: FAILED: it was checked with the key and does not match", r.out, r)
        self.assertEqual(tt.inspect_json(tok, *bad).signature, "failed")
        # no key with the token's kid: not checked
        ec_key = tt.new_key("ES256", kid="e1")
        jwks = TD.write("e1.jwks", json.dumps({"keys": [ec_key.jwk()]}))
        r = tt.run("inspect", "--jwks", jwks, "--now", str(NOW), tok)
        self.assertIn("Signature: NOT CHECKED: none of the keys given is the token's key", r.out, r)
        j = tt.inspect_json(tok, "--jwks", jwks, "--now", str(NOW))
        self.assertEqual((j.signature, j.codes[0]), ("not_checked", "unknown_key"), j)
        self.assertIn("none of the keys given", j.obj["signature_note"], j)
        # a key that does not take the token's alg: not checked
        pem = TD.write("e1.pem", ec_key.pub_pem())
        r = tt.run("inspect", "--key", pem, "--now", str(NOW), tok)
        self.assertIn("Signature: NOT CHECKED: the token's alg is not one its key may verify", r.out, r)
        j = tt.inspect_json(tok, "--key", pem, "--now", str(NOW))
        self.assertEqual((j.signature, j.codes[0]), ("not_checked", "alg_not_allowed"), j)

    def test_empty_input_says_so(self):
        for data, words in ((b"", "the input is empty"), (b"  \n\t\n", "only white space")):
            with self.subTest(data=data):
                r = tt.run("inspect", "-", input=data)
                self.assertEqual(r.rc, 1, r)
                self.assertIn(words, r.out, r)
                self.assertNotRegex(r.out, r"NOT CHECKED: *\n", r)
        # no token in the input at all (another scheme): said, never blank
        r = tt.run("inspect", "Basic dXNlcjpwYXNz")
        self.assertRegex(r.out, r"Signature: NOT CHECKED: there is no token to check", r)

    def test_require_claim(self):
        tok = HS.token(tt.claims(now=NOW))  # no client_id
        j = tt.inspect_json(tok, *self._key(), "--require", "client_id", "--require", "sub")
        self.assertEqual(j.codes, ["missing_claim"], j)
        self.assertIn('"client_id"', j.problems[0]["message"], j)
        r = tt.run("inspect", *self._key(), "--require", "", tok)
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--require takes a claim name", r.err, r)

    def test_utf8_shown_on_a_utf8_terminal(self):
        tok = HS.token(tt.claims(now=NOW, sub="Jos\u00e9 \u65e5\u672c \U0001f600", iss="https://\u00e9.example",
                                 name="x\u0007y\u202ez\u0085"))
        args = ["inspect", *self._key(), "--iss", ISS, tok]
        rc, out = run_on_terminal(args, "C.UTF-8")
        text = out.decode("utf-8")
        self.assertEqual(rc, 1, text)
        self.assertIn('"sub": "Jos\u00e9 \u65e5\u672c \U0001f600"', text)
        self.assertIn('issuer is "https://\u00e9.example"', text)   # in a problem's message too
        # control characters (C0, C1) and bidi controls stay escaped
        self.assertIn(r'"name": "x\u0007y\u202Ez\u0085"', text)
        for ch in ("\x07", "\u202e", "\u0085", "\x1b"):
            self.assertNotIn(ch, text)
        # not a UTF-8 locale: escaped as before
        rc, out = run_on_terminal(args, "C")
        text = out.decode("ascii")
        self.assertIn(r'"sub": "Jos\u00E9', text)
        self.assertIn(r'issuer is "https://\xc3\xa9.example"', text)
        # not a terminal (a pipe), even with a UTF-8 locale: escaped
        r = tt.run(*args, env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        self.assertIn(r'"sub": "Jos\u00E9', r.out, r)
        # --json is ASCII on a terminal too
        rc, out = run_on_terminal(args + ["--json"], "C.UTF-8")
        out.decode("ascii")
        self.assertIn(rb'jos\u00e9', out.lower())


# ---------------------------------------------------------------------------
# issue 12 section 5: flags, settings and the admin commands

class Flags(unittest.TestCase):

    def test_unknown_flag_suggests_the_nearest(self):
        for args, want in ((["inspect", "--jwsk", "x", "t"], "did you mean --jwks?"),
                           (["inspect", "--requier", "jti", "t"], "did you mean --require?"),
                           (["sign", "--clams", "{}"], "did you mean --claims?"),
                           (["keygen", "--kdi", "x"], "did you mean --kid?"),
                           (["serve", "--levway", "3"], "did you mean --leeway?"),
                           (["revoke", "--jit", "x"], "did you mean --jti?"),
                           (["client", "list", "--stroe", "x"], "did you mean --store?"),
                           (["revoke", "--session-idle", "5m", "--jti", "x"],
                            "--session-idle is a setting of tokend serve; tokend revoke does not use it")):
            with self.subTest(args=args):
                r = tt.run(*args)
                self.assertEqual(r.rc, 2, r)
                self.assertIn(want, r.err, r)
        r = tt.run("inspcet", "t")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("unknown command 'inspcet'; did you mean 'inspect'?", r.err, r)
        # nothing close: no guess
        r = tt.run("inspect", "--frobnicate", "t")
        self.assertNotIn("did you mean", r.err, r)

    def test_unknown_setting_in_file_and_environment(self):
        d = tt.TempDir()
        try:
            env = {"TOKEND_STORE": "sqlite://" + d.join("t.db"), "TOKEND_MASTER_KEY_FILE": d.join("m.key")}
            conf = d.write("c.conf", "leewey = 30\n")
            r = tt.run("client", "list", "--config", conf, env=env)
            self.assertEqual(r.rc, 2, r)
            self.assertIn("unknown setting 'leewey'; did you mean 'leeway'?", r.err, r)
            conf = d.write("i.conf", "[issuer https://idp.example]\naudeince = x\n")
            r = tt.run("client", "list", "--config", conf, env=env)
            self.assertIn("did you mean 'audience'?", r.err, r)
            r = tt.run("client", "list", env=dict(env, TOKEND_MAX_TTTL="1h"))
            self.assertEqual(r.rc, 0, r)
            self.assertIn("TOKEND_MAX_TTTL is not a setting; did you mean TOKEND_MAX_TTL?", r.err, r)
        finally:
            d.cleanup()

    def test_admin_help_lists_only_the_settings_used(self):
        want = {"client": {"--store", "--master-key-file", "--alg", "--access-ttl", "--max-ttl"},
                "revoke": {"--store", "--max-ttl", "--leeway"},
                "keys": {"--store", "--jwks-max-age", "--max-ttl"},
                "user": {"--store", "--issuer", "--public-url", "--trust-ca-file", "--refresh-ttl"}}
        never = {"--listen", "--session-idle", "--code-ttl", "--threads", "--rotate-every", "--tls-cert"}
        for cmd, flags in want.items():
            with self.subTest(cmd=cmd):
                r = tt.run(cmd, "--help")
                self.assertEqual(r.rc, 0, r)
                for f in flags:
                    self.assertIn(f + " V", r.out, r)
                for f in never:
                    self.assertNotIn(f + " ", r.out, r)
        self.assertNotIn("--access-ttl", tt.run("revoke", "--help").out)
        self.assertNotIn("--issuer", tt.run("keys", "--help").out)

    def test_serve_help_lists_every_alg_that_works(self):
        r = tt.run("serve", "--help")
        self.assertIn("sign in", r.out, r)
        self.assertIn("OpenID Connect", r.out, r)
        line = [ln for ln in r.out.splitlines() if ln.lstrip().startswith("--alg ")][0]
        listed = [a for a in ("ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384",
                              "PS512", "HS256", "HS384", "HS512")
                  if a in r.out[r.out.index(line):r.out.index("env TOKEND_ALG")]]
        self.assertEqual(len(listed), 13, line)
        for alg in listed:  # each one makes a key ring
            with self.subTest(alg=alg):
                d = tt.TempDir()
                try:
                    env = {"TOKEND_STORE": "sqlite://" + d.join("t.db"), "TOKEND_MASTER_KEY_FILE": d.join("m.key")}
                    k = tt.run("keys", "list", "--alg", alg, "--json", env=env, timeout=60)
                    self.assertEqual(k.rc, 0, k)
                    self.assertIn(alg, {x["alg"] for x in json.loads(k.out)["keys"]}, k)
                finally:
                    d.cleanup()


class Admin(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = tt.TempDir()
        cls.env = {"TOKEND_STORE": "sqlite://" + cls.d.join("t.db"), "TOKEND_MASTER_KEY_FILE": cls.d.join("m.key")}

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def run_admin(self, *args):
        return tt.run(*args, env=self.env)

    def test_revoke_unknown_jti_says_nothing_was_seen(self):
        r = self.run_admin("revoke", "--jti", "never-issued-1")
        self.assertEqual(r.rc, 0, r)  # recorded anyway: a jti may be revoked ahead
        self.assertIn("revoked jti never-issued-1", r.out, r)
        self.assertIn("no token with jti never-issued-1 was seen here", r.err, r)
        self.assertIn("revoked ahead", r.err, r)
        r = self.run_admin("revoke", "--jti", "never-issued-1", "--json")
        o = json.loads(r.out)
        self.assertEqual(o["seen"], "revoked", o)
        self.assertIn("already revoked", o["note"], o)
        o = json.loads(self.run_admin("revoke", "--jti", "never-issued-2", "--json").out)
        self.assertEqual(o["seen"], "unknown", o)
        r = self.run_admin("revoke", "--sid", "no-such-sid")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("no sign-in session with sid no-such-sid is in the store", r.err, r)

    def test_client_list_shows_public_clients_and_redirect_uris(self):
        r = self.run_admin("client", "add", "spa", "--public", "--redirect-uri", "https://app.example/cb",
                           "--scope", "openid", "--aud", "api")
        self.assertEqual(r.rc, 0, r)
        r = self.run_admin("client", "add", "svc", "--scope", "x", "--aud", "api")
        self.assertEqual(r.rc, 0, r)
        out = self.run_admin("client", "list").out
        self.assertRegex(out, r"spa +active +public ", out)
        self.assertRegex(out, r"svc +active +confidential ", out)
        self.assertIn("redirect URIs: https://app.example/cb", out)
        self.assertIn("redirect URIs: none", out)


# ---------------------------------------------------------------------------
# the config file and the systemd unit of an installed tokend (issue 14 section 3)

PACKAGING = os.path.join(tt.ROOT, "packaging")
STATEDIR = "/var/lib/tokend"  # StateDirectory=tokend of packaging/tokend.service


def clean_env(**over):
    """The environment without any TOKEND_* setting."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("TOKEND_")}
    e.update(over)
    return e


def print_config(*args, env=None, cwd=None):
    p = subprocess.run([tt.tokend_bin(), "serve", "--print-config"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env or clean_env(), cwd=cwd or TD.path, timeout=tt.TIMEOUT)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class ServiceFiles(unittest.TestCase):

    def test_packaged_config_is_the_printed_example(self):
        """packaging/tokend.conf is `tokend serve --print-config --data-dir
        /var/lib/tokend`: it lists every setting with its help and default,
        and never drifts from the settings table."""
        rc, out, err = print_config("--data-dir", STATEDIR)
        self.assertEqual(rc, 0, err)
        with open(os.path.join(PACKAGING, "tokend.conf"), encoding="utf-8") as f:
            packaged = f.read()
        self.assertEqual(packaged, out, "packaging/tokend.conf is out of date: regenerate it with\n"
                         "  env -i build/dev/tokend serve --print-config --data-dir %s > packaging/tokend.conf"
                         % STATEDIR)

    def test_example_lists_every_setting_of_help(self):
        rc, out, _ = print_config()
        self.assertEqual(rc, 0)
        helped = re.findall(r"^  --([a-z0-9-]+)", tt.run("serve", "--help").out, re.M)
        settings_part, issuer_part = out.split("\n# Issuers whose tokens")
        keys = re.findall(r"^#?([a-z0-9-]+) =", settings_part, re.M)
        self.assertEqual(sorted(set(helped) - {"config"}), sorted(keys))
        self.assertEqual(len(keys), len(set(keys)))
        self.assertIn("\n#[issuer https://", issuer_part)
        # run from a build tree: the files in the current directory
        self.assertIn("\n#data-dir = .\n", out)
        self.assertIn("\n#store = sqlite://./tokend.db\n", out)
        self.assertIn("\n#master-key-file = ./tokend.master.key\n", out)
        self.assertIn("\n#admin-listen = 127.0.0.1:8444\n", out)
        self.assertIn("\n#public-metrics = false\n", out)

    def test_example_reads_back(self):
        """Every commented default, uncommented, is a valid config file that
        prints the same values back as set."""
        with open(os.path.join(PACKAGING, "tokend.conf"), encoding="utf-8") as f:
            text = f.read()
        settings_part = text.split("\n# Issuers whose tokens")[0]
        lines = [ln[1:] for ln in settings_part.splitlines() if re.match(r"^#[a-z0-9-]+ = \S", ln)]
        self.assertGreater(len(lines), 30)
        conf = TD.join("uncommented.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("data-dir = %s\n" % STATEDIR + "\n".join(lines) + "\n")
        rc, out, err = print_config("--config", conf)
        self.assertEqual(rc, 0, err)
        for ln in lines:
            with self.subTest(line=ln):
                # false is a flag's default: shown commented out either way
                shown = "#" + ln if ln.endswith(" = false") else ln
                self.assertTrue("\n" + shown + "\n" in out, "%r not printed back" % shown)

    def test_set_values_are_printed_uncommented(self):
        conf = TD.join("some.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("leeway = 30\nstore = postgres://tokend:hunter2@db.example/tokend\n")
        rc, out, err = print_config("--config", conf, "--access-ttl", "5m",
                                    env=clean_env(TOKEND_ADMIN_LISTEN="127.0.0.1:9100", TOKEND_DEV="1"))
        self.assertEqual(rc, 0, err)
        for ln in ("leeway = 30", "access-ttl = 5m", "admin-listen = 127.0.0.1:9100", "dev = true",
                   "#listen = 127.0.0.1:8443"):
            self.assertIn("\n" + ln + "\n", out)
        self.assertNotIn("hunter2", out)  # a password in the store URL is not printed
        self.assertIn("\nstore = postgres://tokend:", out)

    def test_unit_file(self):
        with open(os.path.join(PACKAGING, "tokend.service"), encoding="utf-8") as f:
            template = f.read()
        # as the .deb installs it (CMake fills in the paths of the prefix;
        # tests/install/test_install.sh checks another prefix's)
        unit = template.replace("@CMAKE_INSTALL_FULL_BINDIR@", "/usr/bin").replace("@TOKEND_CONF_DIR@", "/etc/tokend")
        self.assertNotRegex(unit, r"@[A-Z_]+@")
        for line in ("Type=notify", "ExecStart=/usr/bin/tokend serve --config /etc/tokend/tokend.conf",
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "User=tokend", "Group=tokend", "StateDirectory=tokend", "StateDirectoryMode=0750",
                     "ConfigurationDirectory=tokend", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                     "NoNewPrivileges=yes", "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
                     "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
            self.assertIn("\n" + line + "\n", unit)
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("no systemd-analyze")
        # verify it with this build's tokend in place of /usr/bin/tokend
        path = TD.join("tokend.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(unit.replace("/usr/bin/tokend", os.path.abspath(tt.tokend_bin())))
        p = subprocess.run([analyze, "verify", "--man=no", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        self.assertEqual(p.stdout.decode().strip(), "")


if __name__ == "__main__":
    tt.main()
