# SPDX-License-Identifier: Apache-2.0
"""OpenID Connect relying parties off the shelf, against tokend, with a real
browser: openid-client 6 and oauth4webapi 3 (npm), each with its defaults.

    Node (tests/e2e/browser/oidc_openid_client.mjs, oidc_oauth4webapi.mjs):
    the relying party, its own web server on 127.0.0.1 (/cb, /logged-out)
      -> discovery at /.well-known/openid-configuration (HTTPS: Node trusts
         tokend's dev certificate through NODE_EXTRA_CA_CERTS)
      -> Chromium (headless, Debian's /usr/bin/chromium, playwright-core)
         opens the authorization URL (S256 PKCE, state, nonce, max_age),
         signs in on tokend's page, lands on the RP's /cb
      -> the library: state and iss of the response, the code grant, the
         ID token (signature against the JWKS, iss, aud, azp, exp, iat,
         nonce, auth_time against max_age; at_hash is checked here),
         userinfo (its sub must be the ID token's), a silent prompt=none
         request whose ID token it must refuse for an unexpected nonce (the
         negative control), refresh (a new ID token), then the
         end-session URL with id_token_hint, post_logout_redirect_uri and
         state, which Chromium follows: tokend signs the browser out without
         asking (the hint is its own sign-in's) and sends it back to the
         RP's /logged-out with the state
      -> the old tokens: refused at /userinfo (401) and at the token
         endpoint (invalid_grant), through the library and plainly.

Both scripts run at once, each with a client and a Chromium profile of its
own (same user, two sign-ins). Screenshots go to $TOKEND_TEST_OUTPUT or
build/test-output/oidc/LIBRARY/. The test FAILS when node, Chromium or
tests/e2e/browser/node_modules (with openid-client and oauth4webapi) is
missing: scripts/deps.sh installs Debian's chromium and runs `npm ci
--prefix tests/e2e/browser`.

Run by hand with

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_oidc_browser.py
"""

import hashlib
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "browser")
CHROMIUM = "/usr/bin/chromium"
# library -> its script
LIBS = {
    "openid-client": "oidc_openid_client.mjs",
    "oauth4webapi": "oidc_oauth4webapi.mjs",
}
AUD = "app-api"
SCOPE = "openid profile email"
USER = "alice"
FULL_NAME = "Alice Liddell"
EMAIL = "alice@example.org"
PASSWORD = "correct horse battery staple"
NODE_TIMEOUT = 90


def output_dir(lib):
    base = os.environ.get("TOKEND_TEST_OUTPUT") or os.path.join(tt.ROOT, "build", "test-output", "oidc")
    d = os.path.join(base, lib)
    os.makedirs(d, exist_ok=True)
    return d


def at_hash(access_token):
    """OpenID Connect Core section 3.1.3.6: base64url of the left half of
    the SHA-256 of the access token (the ID tokens here are RS256)."""
    return tt.b64u(hashlib.sha256(access_token.encode("ascii")).digest()[:16])


class RelyingParty:
    """One library's run: its client, its RP origin, its node process and
    what the script printed."""

    def __init__(self, fx, lib):
        self.lib = lib
        self.script = os.path.join(BROWSER_DIR, LIBS[lib])
        self.origin = "http://127.0.0.1:%d" % st.free_port()
        self.redirect_uri = self.origin + "/cb"
        self.post_logout_uri = self.origin + "/logged-out"
        self.client_id, _ = fx.add_signin_client("oidc-" + lib, [self.redirect_uri, self.post_logout_uri], SCOPE,
                                                 AUD)
        self.out_dir = output_dir(lib)
        for name in os.listdir(self.out_dir):
            if name.endswith(".png"):
                os.unlink(os.path.join(self.out_dir, name))
        self.proc = None
        self.res = None
        self.rc = None
        self.stderr = ""
        self.seconds = None

    def start(self, issuer, cert):
        cmd = ["node", self.script, "--issuer", issuer, "--client-id", self.client_id, "--rp", self.origin,
               "--out", self.out_dir, "--username", USER]
        env = dict(os.environ, SIGNIN_PASSWORD=PASSWORD, NODE_EXTRA_CA_CERTS=cert)
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NODE_OPTIONS"):
            env.pop(k, None)  # loopback only
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tt.ROOT)

    def wait(self, deadline):
        try:
            out, err = self.proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.seconds = time.monotonic() - self.t0
        self.rc = self.proc.returncode
        self.stderr = err.decode("utf-8", "replace")
        lines = [ln for ln in out.decode("utf-8", "replace").splitlines() if ln.startswith("{")]
        if not lines:
            raise AssertionError("%s printed no JSON (rc=%s)\n--- stdout ---\n%s\n--- stderr ---\n%s"
                                 % (os.path.basename(self.script), self.rc, out.decode("utf-8", "replace"),
                                    self.stderr))
        self.res = json.loads(lines[-1])
        self.secrets = self.res.pop("secrets", {})

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class OidcBrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # FAIL, not skip, when a piece is missing
        missing = st.browser_missing(BROWSER_DIR, CHROMIUM)
        for pkg in ("openid-client", "oauth4webapi"):
            if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", pkg)):
                missing.append("%s in tests/e2e/browser/node_modules (npm ci --prefix tests/e2e/browser)" % pkg)
        if missing:
            raise AssertionError("missing: %s; run scripts/deps.sh" % ", ".join(missing))

        cls.fx = st.ServerFixture(https=True, name="oidc-browser")
        cls.fx.start()
        cls.rps = {}
        try:
            cls._run_rps()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _run_rps(cls):
        fx = cls.fx
        r = fx.admin("user", "add", USER, "--password-file", "-", "--name", FULL_NAME, "--email", EMAIL,
                     input=PASSWORD + "\n")
        if r.rc != 0:
            raise AssertionError("user add failed:\n%r" % r)
        fx.sensitive.add(PASSWORD)
        cls.issuer = fx.metadata()["issuer"]
        for lib in LIBS:
            cls.rps[lib] = RelyingParty(fx, lib)
        t0 = time.monotonic()
        for rp in cls.rps.values():
            rp.start(cls.issuer, fx.cert)
        deadline = time.monotonic() + NODE_TIMEOUT
        for rp in cls.rps.values():
            rp.wait(deadline)
            fx.sensitive.update(v for v in rp.secrets.values() if v)
            for name, path in sorted(rp.res.get("screenshots", {}).items()):
                print("%s screenshot %s: %s" % (rp.lib, name, path), file=sys.stderr)
            print("%s: %.1f s" % (rp.lib, rp.seconds), file=sys.stderr)
        cls.node_seconds = time.monotonic() - t0

    @classmethod
    def tearDownClass(cls):
        for rp in getattr(cls, "rps", {}).values():
            rp.kill()
        cls.fx.close()

    def step(self, rp, name):
        s = rp.res.get("steps", {}).get(name)
        self.assertIsNotNone(s, "%s did not get to %s: %s\n%s" % (rp.lib, name, rp.res.get("error"),
                                                                  rp.stderr[-2000:]))
        self.assertNotIn("error", s, "%s complained at %s: %s" % (rp.lib, name, json.dumps(s.get("error"), indent=1)))
        return s

    # -- the whole flow ------------------------------------------------------------------
    def test_1_scripts_ran_to_the_end(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                self.assertTrue(rp.res.get("ok"), "%s failed: %s\nsteps: %s\n%s" % (
                    lib, rp.res.get("error"), json.dumps(rp.res.get("steps"), indent=1)[-4000:], rp.stderr[-3000:]))
                self.assertEqual(rp.rc, 0)
                self.assertEqual(rp.res.get("library"), lib)
                self.assertEqual(rp.res.get("csp_violations"), [], "tokend's pages broke their own CSP")
        self.assertLess(self.node_seconds, NODE_TIMEOUT)

    def test_2_discovery(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                s = self.step(rp, "discovery")
                self.assertEqual(s["issuer"], self.issuer)
                self.assertTrue(s["supports_pkce"], s)
                self.assertEqual(s["end_session_endpoint"], self.fx.url + "/logout")
                self.assertEqual(s["userinfo_endpoint"], self.fx.url + "/userinfo")

    def test_3_sign_in_in_the_browser(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                s = self.step(rp, "signin")
                self.assertTrue(s["url"].startswith(self.fx.url + "/oauth/authorize"), s["url"])
                self.assertEqual(s["button"], "Sign in")
                self.assertTrue(s["callback"]["url"].startswith(rp.redirect_uri), s)
                self.assertEqual(s["callback"]["params"], ["code", "iss", "state"])
                self.assertEqual(s["callback"]["iss"], self.issuer)

    def test_4a_id_token_validated_by_the_library(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                s = self.step(rp, "code_grant")
                self.assertEqual(s["token_type"].lower(), "bearer")
                self.assertTrue(s["has_refresh_token"], s)
                self.assertEqual(set(s["scope"].split()), set(SCOPE.split()))
                h = s["id_token_header"]
                self.assertEqual(h["alg"], "RS256", h)
                self.assertEqual(h.get("typ"), "JWT", h)
                self.assertTrue(h.get("kid"), h)
                c = s["claims"]
                self.assertEqual(c["iss"], self.issuer)
                self.assertEqual(c["sub"], USER)
                self.assertEqual(c["aud"], rp.client_id)
                self.assertEqual(c["azp"], rp.client_id)
                self.assertTrue(s["nonce_ok"], c)
                self.assertLessEqual(c["auth_time"], c["iat"])
                self.assertGreater(c["exp"], c["iat"])
                self.assertTrue(c.get("sid"), c)
                # the libraries leave at_hash to the RP in the code flow (Core
                # section 3.1.3.8: optional there): checked here
                self.assertEqual(c.get("at_hash"), at_hash(rp.secrets["access_token"]))
                self.assertEqual(c.get("amr"), ["pwd"])
                self.assertEqual(c.get("name"), FULL_NAME)
                self.assertEqual(c.get("email"), EMAIL)
                if lib == "oauth4webapi":
                    self.step(rp, "callback")
                    self.step(rp, "code_grant_signature")
        a, b = (rp.res["steps"]["code_grant"]["claims"]["sid"] for rp in self.rps.values())
        self.assertNotEqual(a, b, "two browsers, one sign-in?")

    def test_4b_the_library_refuses_an_unexpected_nonce(self):
        # The negative control: the same checks refuse an ID token whose
        # nonce is not the one the RP expects (here: a silent
        # re-authorization, prompt=none with the ID token as hint, whose
        # code the RP exchanges expecting another nonce).
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                s = self.step(rp, "silent")
                self.assertIsNone(s["oauth_error"], s)
                self.assertEqual(s["params"], ["code", "iss", "state"])
                w = rp.res["steps"].get("wrong_nonce")
                self.assertIsNotNone(w, rp.res.get("error"))
                self.assertTrue(w["threw"], "%s took an ID token with a nonce it did not expect" % lib)
                e = w["error"]
                if e.get("name") == "ClientError":
                    e = e.get("cause", {})  # openid-client wraps oauth4webapi's error
                self.assertEqual(e.get("code"), "OAUTH_JWT_CLAIM_COMPARISON_FAILED", w)
                self.assertEqual(e.get("message"), 'unexpected ID Token "nonce" claim value', w)
                self.assertEqual(e.get("cause", {}).get("claim"), "nonce", w)
                # the ID token it refused: the same sign-in (sid), a new nonce
                c = e["cause"].get("claims", {})
                self.assertEqual(c.get("sid"), rp.res["steps"]["code_grant"]["claims"]["sid"], e)
                self.assertTrue(c.get("nonce"), e)

    def test_5_userinfo(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                for name in ("userinfo", "userinfo_after_refresh"):
                    u = self.step(rp, name)
                    self.assertEqual(u.get("sub"), USER, u)
                    self.assertEqual(u.get("name"), FULL_NAME, u)
                    self.assertEqual(u.get("email"), EMAIL, u)
                    self.assertIn("email_verified", u)

    def test_6_refresh_gives_a_new_id_token(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                first = self.step(rp, "code_grant")["claims"]
                s = self.step(rp, "refresh")
                self.assertEqual(s["token_type"].lower(), "bearer")
                self.assertTrue(s["has_id_token"], s)
                self.assertTrue(s["new_refresh_token"], "the refresh token was not rotated")
                self.assertEqual(s["id_token_header"]["alg"], "RS256")
                c = s["claims"]
                self.assertIsNotNone(c, "the library kept no claims of the refreshed ID token")
                # OpenID Connect Core section 12.2
                for k in ("iss", "sub", "aud", "azp", "auth_time", "sid"):
                    self.assertEqual(c.get(k), first.get(k), k)
                self.assertNotIn("nonce", c)
                self.assertGreaterEqual(c["iat"], first["iat"])
                self.assertEqual(c.get("at_hash"), at_hash(rp.secrets["access_token_2"]))
                if lib == "oauth4webapi":
                    self.step(rp, "refresh_signature")

    def test_7_rp_initiated_logout(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                u = self.step(rp, "end_session_url")
                self.assertEqual(u["endpoint"], self.fx.url + "/logout")
                self.assertEqual(u["params"], ["client_id", "id_token_hint", "post_logout_redirect_uri", "state"])
                s = self.step(rp, "logout")
                self.assertFalse(s["asked"], "tokend asked 'Sign out?' although the id_token_hint is this sign-in's: %r"
                                 % s)
                self.assertTrue(s["back_at_rp"], s)
                self.assertEqual(s["params"], ["state"])
                self.assertTrue(s["state_ok"], s)
                self.assertNotIn(st.SESSION_COOKIE, s["cookies"])

    def test_8_old_tokens_refused(self):
        for lib, rp in self.rps.items():
            with self.subTest(lib=lib):
                a = self.step(rp, "after_logout")
                self.assertTrue(a["userinfo"]["threw"], a)
                self.assertEqual(a["userinfo"]["error"].get("status"), 401, a)
                self.assertTrue(a["refresh"]["threw"], a)
                self.assertEqual(a["refresh"]["error"].get("error"), "invalid_grant", a)
                self.assertEqual(a["userinfo_plain"]["status"], 401, a)
                self.assertTrue(a["userinfo_plain"]["www_authenticate"].startswith("Bearer "), a)
                self.assertEqual(a["refresh_plain"], {"status": 400, "error": "invalid_grant"})
                # and seen from here: every token of that sign-in is dead
                for k in ("access_token", "access_token_2"):
                    r = self.fx.get("/userinfo", headers={"Authorization": "Bearer " + rp.secrets[k]})
                    self.assertEqual(r.status_code, 401, "%s %s: %s" % (lib, k, r.text))
                    self.assertIn('error="invalid_token"', r.headers.get("WWW-Authenticate", ""))
                for k in ("refresh_token", "refresh_token_2"):
                    r = st.refresh_response(self.fx, rp.secrets[k], client_id=rp.client_id)
                    self.assertEqual(r.status_code, 400, r.text)
                    self.assertEqual(st.oauth_error(r), "invalid_grant")

    def test_9a_the_libraries_fetched_discovery_and_jwks(self):
        routes = [o.get("route") for o in self.fx.log_lines()]
        # one per library at least (Chromium asks for neither)
        self.assertGreaterEqual(routes.count("/.well-known/openid-configuration"), 2, routes)
        self.assertGreaterEqual(routes.count("/.well-known/jwks.json"), 2, routes)

    def test_9b_logs_hold_no_secrets(self):
        log = self.fx.log_text()
        for rp in self.rps.values():
            for k, v in rp.secrets.items():
                self.assertNotIn(v, log, k)
        self.assertNotIn(PASSWORD, log)
        for rp in self.rps.values():
            self.assertNotIn(PASSWORD, json.dumps(rp.res))


if __name__ == "__main__":
    st.main()
