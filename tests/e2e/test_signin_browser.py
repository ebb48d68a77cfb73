# SPDX-License-Identifier: Apache-2.0
"""A real browser through user sign-in, end to end (issue 4 section 4).

    Chromium (headless, Debian's /usr/bin/chromium, driven by playwright-core
    from tests/e2e/browser/signin.mjs)
      -> the test client app (Python http.server on 127.0.0.1): index page
         with a "Sign in" link to /oauth/authorize carrying S256 PKCE
         parameters computed here
      -> tokend's sign-in page (HTTPS, --dev)          screenshot login.png
      -> POST /login -> 303 back to the app's /cb with code, state, iss
      -> the app (server side, in Python) checks state and iss, exchanges
         the code with its verifier as a public client, then calls
         /api/orders behind nginx auth_request -> tokend /auth: 200
      -> an authorization request with a bad redirect_uri: our own error
         page, no redirect                              screenshot error.png
      -> /logout asks "Sign out?"                       screenshot logout-confirm.png
      -> a click on its "Sign out" button (a POST of the form): the same
         access token is then 401 `revoked` at /auth (directly and through
         nginx), the refresh token invalid_grant.     screenshot signed-out.png

Screenshots go to $TOKEND_TEST_OUTPUT or build/test-output/signin/ (the
paths are printed). The test FAILS when node, Chromium, nginx or
tests/e2e/browser/node_modules is missing: scripts/deps.sh installs Debian's
chromium and nginx-light and runs `npm ci --prefix tests/e2e/browser`.

Run by hand with

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_signin_browser.py
"""

import html
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "browser")
SCRIPT = os.path.join(BROWSER_DIR, "signin.mjs")
CHROMIUM = "/usr/bin/chromium"
AUD = "orders-api"
SCOPE = "orders:read"
USER = "alice"
PASSWORD = "correct horse battery staple"
NODE_TIMEOUT = 120


def output_dir():
    d = os.environ.get("TOKEND_TEST_OUTPUT") or os.path.join(tt.ROOT, "build", "test-output", "signin")
    os.makedirs(d, exist_ok=True)
    return d


NGINX_CONF = r"""
%(user)s
worker_processes 1;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;

events { worker_connections 64; }

http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;
    default_type application/json;

    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;

        auth_request_set $auth_subject $upstream_http_x_auth_subject;
        auth_request_set $auth_reason $upstream_http_x_auth_reason;

        # the protected resource: a static file (no `return` here: nginx
        # would run it before auth_request)
        location /api/ {
            auth_request /_auth;
            error_page 401 = @unauth;
            error_page 403 = @forbidden;
            alias %(dir)s/www/;
            add_header X-Auth-Subject $auth_subject always;
        }

        # tokend over HTTPS, its dev certificate trusted for "localhost"
        location = /_auth {
            internal;
            proxy_pass https://127.0.0.1:%(tokend_port)d/auth?aud=%(aud)s&scope=%(scope)s;
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate %(cert)s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }

        location @unauth {
            add_header X-Auth-Reason $auth_reason always;
            return 401;
        }

        location @forbidden {
            add_header X-Auth-Reason $auth_reason always;
            return 403;
        }
    }
}
"""


# ---------------------------------------------------------------------------
# the test client app

class ClientApp(st.ClientAppBase):
    """A public client of the authorization code flow, run in this process:
    GET / shows a "Sign in" link with fresh PKCE and state; GET /cb checks
    state and iss, exchanges the code with the verifier (server side), calls
    the resource behind nginx, and shows what happened. The tokens stay
    here (self.tokens) for the test; the page shows no token."""

    def __init__(self, fx, resource_url, issuer):
        self.fx = fx
        self.resource_url = resource_url
        self.issuer = issuer
        super().__init__("test client", fx.verify)

    def authorize_url(self, **over):
        return self.authorization_request(self.fx.url, SCOPE, **over)

    def index(self):
        return ('<h1>Test client</h1><p><a id="signin" href="%s">Sign in</a></p>'
                % html.escape(self.authorize_url(), quote=True))

    def callback(self, query):
        q, res, verifier = self.read_callback(query, self.issuer)
        status = "-"
        if "code" in q and verifier:
            r = self.exchange(self.fx.url, q["code"], verifier)
            res["token_status"] = r.status_code
            if r.status_code == 200:
                t = r.json()
                self.fx.sensitive.update(v for k, v in t.items() if k.endswith("_token"))
                with self.lock:
                    self.tokens.append(t)
                res["token_type"] = t.get("token_type")
                res["scope"] = t.get("scope")
                res["has_refresh_token"] = "refresh_token" in t
                res["sub"] = st.jwt_parts(t["access_token"])[1].get("sub")
                rr = self.http.get(self.resource_url, timeout=st.HTTP_TIMEOUT,
                                   headers={"Authorization": "Bearer " + t["access_token"]})
                status = str(rr.status_code)
                res["resource_status"] = rr.status_code
                res["resource_subject"] = rr.headers.get("X-Auth-Subject")
                res["resource_body"] = rr.text[:500]
            else:
                res["token_error"] = r.text[:500]
        with self.lock:
            self.results.append(res)
        return ('<h1>Back at the test client</h1><p>Resource: <span id="status">%s</span></p>'
                '<pre id="result">%s</pre>' % (status, html.escape(json.dumps(res, indent=1))))


# ---------------------------------------------------------------------------

class BrowserSignIn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # FAIL, not skip, when a piece is missing
        missing = st.browser_missing(BROWSER_DIR, CHROMIUM)
        if missing:
            raise AssertionError("missing: %s; run scripts/deps.sh" % ", ".join(missing))

        cls.out_dir = output_dir()
        for name in ("login.png", "error.png", "signed-in.png", "logout-confirm.png", "signed-out.png"):
            p = os.path.join(cls.out_dir, name)
            if os.path.exists(p):
                os.unlink(p)
        cls.fx = st.ServerFixture(https=True, name="signin-browser")
        cls.fx.start()
        cls.nginx = None
        cls.app = None
        try:
            cls._start_rest()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start_rest(cls):
        fx = cls.fx
        fx.add_user(USER, PASSWORD)
        issuer = fx.metadata()["issuer"]

        d = os.path.join(fx.td, "nginx")
        os.makedirs(os.path.join(d, "www"), exist_ok=True)
        with open(os.path.join(d, "www", "orders"), "w") as f:
            f.write('{"orders":[{"id":1,"item":"tea"}]}\n')
        port = st.free_port()
        conf = NGINX_CONF % {"user": "user root;" if os.geteuid() == 0 else "", "dir": d, "port": port,
                             "tokend_port": fx.port, "cert": fx.cert, "aud": AUD, "scope": SCOPE}
        cls.nginx = st.Nginx(d, conf, port).start()
        cls.resource_url = "http://127.0.0.1:%d/api/orders" % port

        cls.app = ClientApp(fx, cls.resource_url, issuer).start()
        cls.app.client_id, _ = fx.add_signin_client("test-client", cls.app.redirect_uri, SCOPE, AUD)

        bad_redirect = cls.app.redirect_uri + "x"
        cls.error_url = cls.app.authorize_url(redirect_uri=bad_redirect)
        cls.bad_redirect = bad_redirect
        cmd = ["node", SCRIPT, "--app", cls.app.url, "--tokend", fx.url, "--error-url", cls.error_url,
               "--out", cls.out_dir, "--username", USER]
        env = dict(os.environ, SIGNIN_PASSWORD=PASSWORD)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=NODE_TIMEOUT, env=env,
                           cwd=tt.ROOT)
        cls.node_stderr = p.stderr.decode("utf-8", "replace")
        lines = [ln for ln in p.stdout.decode("utf-8", "replace").splitlines() if ln.startswith("{")]
        if not lines:
            raise AssertionError("signin.mjs printed no JSON (rc=%d)\n--- stdout ---\n%s\n--- stderr ---\n%s"
                                 % (p.returncode, p.stdout.decode("utf-8", "replace"), cls.node_stderr))
        cls.res = json.loads(lines[-1])
        cls.node_rc = p.returncode
        for name, path in sorted(cls.res.get("screenshots", {}).items()):
            print("screenshot %s: %s" % (name, path), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "app", None) is not None:
            cls.app.close()
        if getattr(cls, "nginx", None) is not None:
            cls.nginx.stop()
        cls.fx.close()

    def step(self, name):
        s = self.res.get("steps", {}).get(name)
        self.assertIsNotNone(s, "signin.mjs did not get to %s: %s\n%s" % (
            name, self.res.get("error"), self.node_stderr[-2000:]))
        return s

    def assert_png(self, name):
        p = self.res.get("screenshots", {}).get(name)
        self.assertTrue(p, "no %s screenshot" % name)
        self.assertTrue(os.path.isfile(p), p)
        with open(p, "rb") as f:
            head = f.read(8)
        self.assertEqual(head, b"\x89PNG\r\n\x1a\n", p)
        self.assertGreater(os.path.getsize(p), 2000, "%s is nearly empty" % p)
        self.assertEqual(os.path.dirname(os.path.abspath(p)), os.path.abspath(self.out_dir))

    # -- what the browser saw ------------------------------------------------------------
    def test_1_script_ran_to_the_end(self):
        self.assertTrue(self.res.get("ok"), "signin.mjs failed: %s\n%s" % (self.res.get("error"),
                                                                          self.node_stderr[-3000:]))
        self.assertEqual(self.node_rc, 0)
        self.assertEqual(self.res.get("csp_violations"), [], "the pages broke their own CSP")

    def test_2_login_page(self):
        s = self.step("login_page")
        self.assertTrue(s["url"].startswith(self.fx.url + "/oauth/authorize"), s["url"])
        self.assertEqual(s["scripts"], 0)
        self.assertTrue(s["csrf_field"], s["forms"])
        self.assertIn("Sign in", s["h1"])
        self.assertIn("test-client", s["text"])
        self.assert_png("login")

    def test_3_signed_in_and_resource_reached(self):
        s = self.step("callback")
        self.assertTrue(s["url"].startswith(self.app.redirect_uri), s["url"])
        self.assertTrue(s["has_code"] and s["has_state"] and s["has_iss"], s)
        r = s["result"]
        self.assertIsNone(r.get("error"), r)
        self.assertTrue(r["state_ok"], r)
        self.assertTrue(r["iss_ok"], r)
        self.assertEqual(r.get("token_status"), 200, r)
        self.assertEqual(r.get("token_type"), "Bearer")
        self.assertTrue(r.get("has_refresh_token"), r)
        self.assertEqual(r.get("sub"), USER)
        self.assertEqual(s["resource_status"], "200", r)
        self.assertEqual(r.get("resource_status"), 200, "%r\n%s" % (r, self.nginx.error_log()))
        self.assertEqual(r.get("resource_subject"), USER)
        self.assertIn('"item":"tea"', r.get("resource_body", ""))
        cookies = {c["name"]: c for c in self.step("cookies")}
        c = cookies.get(st.SESSION_COOKIE)
        self.assertIsNotNone(c, cookies)
        self.assertTrue(c["httpOnly"] and c["secure"], c)
        self.assertEqual(c["sameSite"], "Lax")
        self.assertEqual(c["path"], "/")
        self.assertTrue(c["hostOnly"])
        self.assert_png("signed-in")

    def test_4_error_page(self):
        s = self.step("error_page")
        self.assertEqual(s["status"], 400, s)
        self.assertTrue(s["url"].startswith(self.fx.url + "/oauth/authorize"), "the browser left: %s" % s["url"])
        self.assertEqual(s["scripts"], 0)
        self.assertIn("cannot", s["text"].lower())
        h = s["headers"]
        self.assertIn("frame-ancestors 'none'", h.get("content-security-policy", ""))
        self.assertEqual(h.get("x-frame-options"), "DENY")
        self.assertEqual(h.get("referrer-policy"), "no-referrer")
        self.assertIn("max-age=", h.get("strict-transport-security", ""))
        # no navigation ever reached the unregistered URI
        for n in self.res.get("navigations", []):
            self.assertFalse(n["url"].startswith(self.bad_redirect), n)
        self.assert_png("error")

    def test_5_logout_asks_first(self):
        s = self.step("logout_confirm")
        self.assertEqual(s["status"], 200, s)
        self.assertTrue(s["url"].startswith(self.fx.url + "/logout"), s["url"])
        self.assertEqual(s["title"], "Sign out?")
        self.assertIn("Sign out?", s["h1"])
        self.assertEqual(s["scripts"], 0)
        forms = [f for f in s["forms"] if f["action"] == self.fx.url + "/logout"]
        self.assertEqual(len(forms), 1, s["forms"])
        self.assertEqual(forms[0]["method"], "post")
        self.assertIn({"name": "csrf", "type": "hidden"}, forms[0]["fields"])
        # asking signed nothing out
        self.assertIn(st.SESSION_COOKIE, s["cookies"])
        self.assertIn(st.CSRF_COOKIE, s["cookies"])
        self.assert_png("logout-confirm")

    def test_5_logout_revokes_the_tokens(self):
        s = self.step("logout")
        self.assertEqual(s["status"], 200, s)
        self.assertEqual(s["method"], "POST", s)
        self.assertIn("signed out", s["text"].lower())
        self.assertNotIn("Sign out?", s["text"])
        self.assertNotIn(st.SESSION_COOKIE, self.step("cookies_after_logout"))
        self.assertEqual(len(self.app.tokens), 1, "the app holds %d token sets" % len(self.app.tokens))
        t = self.app.tokens[0]
        # the same access token: revoked at /auth ...
        r = self.fx.auth(t["access_token"], aud=AUD, scope=SCOPE)
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "revoked")
        # ... and so through nginx
        rr = self.app.http.get(self.resource_url, headers={"Authorization": "Bearer " + t["access_token"]},
                               timeout=st.HTTP_TIMEOUT)
        self.assertEqual(rr.status_code, 401, rr.text)
        self.assertEqual(rr.headers.get("X-Auth-Reason"), "revoked")
        self.assertNotIn("tea", rr.text)
        # the refresh token: invalid_grant
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=self.app.client_id)
        self.assertEqual(r.status_code, 400, r.text)
        self.assertEqual(st.oauth_error(r), "invalid_grant")
        self.assert_png("signed-out")

    def test_6_sign_in_again_needs_the_password(self):
        s = self.step("after_logout")
        self.assertTrue(s["url"].startswith(self.fx.url + "/oauth/authorize"), s["url"])
        self.assertTrue(s["login_form"], s)
        self.assertEqual(len(self.app.tokens), 1, "a code was issued after logout")

    def test_7_logs_hold_no_secrets(self):
        log = self.fx.log_text()
        for t in self.app.tokens:
            for k in ("access_token", "refresh_token"):
                self.assertNotIn(t[k], log)
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(PASSWORD, json.dumps(self.res))


if __name__ == "__main__":
    st.main()
