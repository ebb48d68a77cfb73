# SPDX-License-Identifier: Apache-2.0
"""Protocol tests of user sign-in (issue 4 section 4): every error case of
the authorization endpoint (GET /oauth/authorize), the sign-in form (POST
/login), the authorization_code grant at /oauth/token, browser sessions and
/logout, against a real `tokend serve --dev` (HTTPS, so that the __Host-
cookies are the real ones).

What is where:
  Authorize      client / redirect URI / response_type / PKCE / scope errors
  LoginPage      the page, its form, headers and cookies; CSRF; failures
                 (same answer and similar time for unknown user and wrong
                 password); throttling; a good sign-in; the session cookie
  CodeExchange   the code grant: public client, a replayed (stolen) code,
                 wrong verifier, redirect URI off by one character, another
                 client's code, unknown client
  Logout         /logout asks "Sign out?" unless the POST proves it comes
                 from our page (csrf field, or Origin / Sec-Fetch-Site
                 same-origin); then it revokes the sign-in's tokens;
                 post_logout_redirect_uri only when registered
  ShortTimeouts  a second server with --session-idle 2s and --code-ttl 1s:
                 an expired session cookie gets the sign-in page saying so,
                 an expired code is invalid_grant

Run by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_signin_protocol.py
"""

import json
import os
import re
import statistics
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402

AUD = "orders-api"
SCOPE = "orders:read"
REDIRECT = "https://app.example/cb"
REDIRECT2 = "https://app.example/after-logout"
PASSWORD = "correct horse battery staple"


def assert_html_security(tc, r, https=True):
    """Issue 4 section 3: the headers every HTML page carries."""
    ct = r.headers.get("Content-Type", "")
    tc.assertTrue(ct.startswith("text/html"), "Content-Type %r" % ct)
    csp = r.headers.get("Content-Security-Policy")
    tc.assertTrue(csp, "no Content-Security-Policy: %r" % dict(r.headers))
    tc.assertIn("default-src 'none'", csp)
    xfo = r.headers.get("X-Frame-Options", "")
    tc.assertTrue(xfo.upper() == "DENY" or "frame-ancestors 'none'" in csp,
                  "neither X-Frame-Options DENY nor frame-ancestors 'none': %r / %r" % (xfo, csp))
    tc.assertEqual(r.headers.get("Referrer-Policy"), "no-referrer")
    tc.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
    tc.assertIn("no-store", r.headers.get("Cache-Control", ""))
    hsts = r.headers.get("Strict-Transport-Security")
    if https:
        tc.assertTrue(hsts, "no Strict-Transport-Security over HTTPS")
        m = re.search(r"max-age=(\d+)", hsts)
        tc.assertTrue(m and int(m.group(1)) > 0, hsts)
    page = st.parse_page(r.text)
    tc.assertEqual(page.scripts, 0, "a <script> in the page")
    tc.assertEqual(page.external, [], "the page loads something")
    return page


def assert_own_error_page(tc, r, bad_uri=None):
    """Our own 400 page: no redirect anywhere."""
    tc.assertEqual(r.status_code, 400, r.text[:1000])
    tc.assertNotIn("Location", r.headers)
    page = assert_html_security(tc, r)
    tc.assertTrue(page.text, "an empty page")
    if bad_uri:
        tc.assertNotIn('href="%s' % bad_uri, r.text)
        tc.assertNotIn('action="%s' % bad_uri, r.text)
        tc.assertNotIn("http-equiv", r.text.lower())  # no meta refresh either
    return page


def assert_redirect_error(tc, r, error, state, redirect=REDIRECT, issuer=None):
    """RFC 6749 section 4.1.2.1: 302 to the redirect URI with error and state
    (and iss, RFC 9207)."""
    tc.assertEqual(r.status_code, 302, r.text[:1000])
    loc = r.headers.get("Location", "")
    tc.assertEqual(st.strip_query(loc), redirect, loc)
    q = st.query_params(loc)
    tc.assertEqual(q.get("error"), error, loc)
    tc.assertEqual(q.get("state"), state, loc)
    tc.assertNotIn("code", q)
    if issuer:
        tc.assertEqual(q.get("iss"), issuer)
    desc = q.get("error_description", "")
    tc.assertRegex(desc, r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")  # RFC 6749 charset
    tc.assertIn("no-store", r.headers.get("Cache-Control", ""))
    return q


def assert_invalid_grant(tc, r, contains=None):
    tc.assertEqual(r.status_code, 400, r.text)
    tc.assertEqual(st.oauth_error(r), "invalid_grant", r.text)
    if contains:
        tc.assertRegex(r.json().get("error_description", ""), contains)


def assert_revoked(tc, fx, token):
    r = fx.auth(token, aud=AUD, scope=SCOPE)
    tc.assertEqual(r.status_code, 401, r.text)
    tc.assertEqual(r.headers.get("X-Auth-Reason"), "revoked", dict(r.headers))
    ch = st.parse_challenge(r.headers.get("WWW-Authenticate"))
    tc.assertEqual(ch.get("error"), "invalid_token")


def assert_valid(tc, fx, token):
    r = fx.auth(token, aud=AUD, scope=SCOPE)
    tc.assertEqual(r.status_code, 200, "%s %s" % (r.headers.get("X-Auth-Reason"), r.text))
    return r


class SignInCase(unittest.TestCase):
    """One server (HTTPS) for the test classes below, started once."""

    fx = None

    @classmethod
    def setUpClass(cls):
        if SignInCase.fx is None:
            fx = st.ServerFixture(https=True, name="signin")
            fx.start()
            SignInCase.fx = fx
            fx.issuer = fx.metadata()["issuer"]
            fx.add_user("alice", PASSWORD)
            fx.add_user("bob", PASSWORD)          # wrong-password and timing cases
            fx.add_user("mallory", PASSWORD)      # throttled on purpose
            fx.add_user("eve", PASSWORD)          # throttled on purpose (regression test)
            fx.add_user("oscar", PASSWORD)        # throttled on purpose (the metric)
            fx.add_user("carol", PASSWORD)        # logout cases
            fx.spa, _ = fx.add_signin_client("spa", [REDIRECT, REDIRECT2], SCOPE, AUD)
            fx.other, _ = fx.add_signin_client("other-spa", "https://other.example/cb", SCOPE, AUD)
            fx.web, fx.web_secret = fx.add_signin_client("web", "https://web.example/cb", SCOPE, AUD,
                                                         public=False)
        cls.fx = SignInCase.fx

    def browser(self, client_id=None, redirect_uri=REDIRECT, **kw):
        b = st.SignInBrowser(self.fx, client_id or self.fx.spa, redirect_uri, **kw)
        self.addCleanup(b.close)
        return b


# ---------------------------------------------------------------------------
# GET /oauth/authorize

class Authorize(SignInCase):
    def test_no_client_id_own_page(self):
        b = self.browser()
        r = b.authorize(client_id=None)
        assert_own_error_page(self, r, REDIRECT)

    def test_unknown_client_id_own_page(self):
        b = self.browser(client_id="no-such-client")
        r = b.authorize()
        page = assert_own_error_page(self, r, REDIRECT)
        self.assertIn("cannot", page.text.lower())

    def test_client_without_redirect_uris_own_page(self):
        # a confidential client without redirect URIs has none to trust
        cid, _ = self.fx.add_client("svc-" + st.random_state()[:6], SCOPE, AUD)
        b = self.browser(client_id=cid)
        assert_own_error_page(self, b.authorize(), REDIRECT)

    def test_redirect_uri_one_character_off_own_page(self):
        b = self.browser()
        variants = {
            "last character changed": st.one_char_off(REDIRECT),
            "one character appended": REDIRECT + "/",
            "one character removed": REDIRECT[:-1],
            "case of one character": REDIRECT.replace("app", "App", 1),
        }
        for what, uri in variants.items():
            with self.subTest(what, uri=uri):
                r = b.authorize(redirect_uri=uri)
                assert_own_error_page(self, r, uri)

    def test_redirect_uri_missing_with_several_registered_own_page(self):
        b = self.browser()
        assert_own_error_page(self, b.authorize(redirect_uri=None))

    def test_response_type_token_redirects_unsupported_response_type(self):
        b = self.browser()
        r = b.authorize(response_type="token")
        assert_redirect_error(self, r, "unsupported_response_type", b.state, issuer=self.fx.issuer)
        self.assertNotIn("#", r.headers["Location"])  # nothing in a fragment

    def test_response_type_missing_invalid_request(self):
        b = self.browser()
        assert_redirect_error(self, b.authorize(response_type=None), "invalid_request", b.state)

    def test_pkce_required_s256_only(self):
        b = self.browser()
        _, challenge = st.pkce_pair()
        cases = {
            "no code_challenge": dict(code_challenge=None),
            "no code_challenge, method S256": dict(code_challenge=None, code_challenge_method="S256"),
            "no code_challenge_method (plain by default)": dict(code_challenge_method=None),
            "code_challenge_method=plain": dict(code_challenge_method="plain"),
            "code_challenge_method=plain with a verifier-like challenge": dict(
                code_challenge=challenge, code_challenge_method="plain"),
            "code_challenge_method=s256 (case)": dict(code_challenge_method="s256"),
            "code_challenge too short": dict(code_challenge=challenge[:42]),
        }
        for what, over in cases.items():
            with self.subTest(what):
                r = b.authorize(**over)
                q = assert_redirect_error(self, r, "invalid_request", b.state, issuer=self.fx.issuer)
                self.assertTrue(q.get("error_description"), "no error_description")

    def test_scope_not_allowed_invalid_scope(self):
        b = self.browser()
        for scope in ("orders:write", "orders:read orders:admin"):
            with self.subTest(scope=scope):
                r = b.authorize(scope=scope)
                assert_redirect_error(self, r, "invalid_scope", b.state, issuer=self.fx.issuer)

    def test_state_returned_unchanged_when_odd(self):
        b = self.browser()
        state = "a b&c=d/é?%"
        r = b.authorize(response_type="token", state=state)
        q = assert_redirect_error(self, r, "unsupported_response_type", state)
        self.assertEqual(q["state"], state)

    def test_repeated_parameter_is_invalid_request(self):
        b = self.browser()
        from urllib.parse import urlencode
        q = urlencode(b.authorize_params()) + "&scope=orders%3Aread&scope=orders%3Aread"
        r = b.authorize(raw_query=q)
        assert_redirect_error(self, r, "invalid_request", b.state)

    def test_head_does_not_act(self):
        b = self.browser()
        r = b.s.head(b.authorize_url(), allow_redirects=False, timeout=st.HTTP_TIMEOUT)
        self.assertEqual(r.status_code, 405)


# ---------------------------------------------------------------------------
# the sign-in page and POST /login

class LoginPage(SignInCase):
    def test_login_page(self):
        b = self.browser()
        r = b.authorize()
        self.assertEqual(r.status_code, 200, r.text[:1000])
        page = assert_html_security(self, r)
        self.assertNotIn("<script", r.text.lower())
        form = st.login_form(page)
        self.assertEqual(form["method"], "post")
        names = {i["name"] for i in form["inputs"]}
        self.assertIn("username", names)
        self.assertIn("password", names)
        got = st.find_set_cookie(r, st.CSRF_COOKIE)
        self.assertIsNotNone(got, st.set_cookie_headers(r))
        value, attrs = got
        self.assertGreaterEqual(len(value), 32)
        # __Host- prefix rules (RFC 6265bis section 4.1.3.2) and our own
        self.assertIs(attrs.get("secure"), True, attrs)
        self.assertIs(attrs.get("httponly"), True, attrs)
        self.assertEqual(attrs.get("path"), "/", attrs)
        self.assertNotIn("domain", attrs)
        self.assertIn(str(attrs.get("samesite", "")).lower(), ("strict", "lax"), attrs)
        hidden = st.hidden_fields(form)
        self.assertIn(value, hidden.values(), "no hidden field carries the CSRF cookie's value")
        # the form goes to our own /login, and the password is never echoed
        self.assertTrue(st.urljoin(r.url, form["action"]).startswith(self.fx.url + "/"), form["action"])
        self.assertNotIn(PASSWORD, r.text)
        # the page names the client and says where the browser returns
        self.assertIn("spa", page.text)
        self.assertIn("app.example", page.text)
        # CSP form-action allows only us and the redirect URI's origin
        csp = r.headers["Content-Security-Policy"]
        self.assertRegex(csp, r"form-action 'self'( https://app\.example)?;")

    def test_get_login_is_a_page_not_an_action(self):
        b = self.browser()
        r = b.s.get(self.fx.url + "/login", allow_redirects=False, timeout=st.HTTP_TIMEOUT)
        self.assertEqual(r.status_code, 400)
        assert_html_security(self, r)

    def test_csrf_missing_or_wrong_403(self):
        def fresh():
            b = self.browser()
            _, form = b.login_page()
            return b, form

        cases = {}
        b, form = fresh()
        cases["field missing"] = b.post_login(form, "alice", PASSWORD, drop=("csrf",))
        b, form = fresh()
        real = st.hidden_fields(form)["csrf"]
        wrong = real[:-1] + ("A" if real[-1] != "A" else "B")
        cases["field wrong"] = b.post_login(form, "alice", PASSWORD, csrf=wrong)
        b, form = fresh()
        cases["field empty"] = b.post_login(form, "alice", PASSWORD, csrf="")
        b, form = fresh()
        b.s.cookies.clear()
        cases["cookie missing"] = b.post_login(form, "alice", PASSWORD)
        b, form = fresh()
        b.s.cookies.clear()
        b.s.cookies.set(st.CSRF_COOKIE, wrong, domain=st.urlsplit(self.fx.url).hostname, path="/", secure=True)
        cases["cookie wrong"] = b.post_login(form, "alice", PASSWORD)
        # another browser's form: its own cookie does not match
        b1, form1 = fresh()
        b2, _ = fresh()
        cases["form of another browser"] = b2.post_login(form1, "alice", PASSWORD)
        for what, r in cases.items():
            with self.subTest(what):
                self.assertEqual(r.status_code, 403, r.text[:1000])
                self.assertNotIn("Location", r.headers)
                assert_html_security(self, r)
                self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE), "a session for a failed CSRF check")
                self.assertNotIn(PASSWORD, r.text)

    def _fail(self, username, password):
        """One failed sign-in from a fresh browser and address: (response,
        seconds the POST took)."""
        b = self.browser()
        _, form = b.login_page()
        t0 = time.monotonic()
        r = b.post_login(form, username, password)
        return r, time.monotonic() - t0

    def test_wrong_password_and_unknown_user_same_answer_similar_time(self):
        # warm up: the first unknown user also makes the dummy hash
        self._fail("nobody-" + st.random_state(), "whatever-password")
        t_wrong, t_unknown = [], []
        texts = set()
        for i in range(3):
            rw, tw = self._fail("bob", "wrong password %d" % i)
            ru, tu = self._fail("nobody-" + st.random_state(), "wrong password %d" % i)
            t_wrong.append(tw)
            t_unknown.append(tu)
            for r in (rw, ru):
                self.assertEqual(r.status_code, 401, r.text[:1000])
                self.assertNotIn("Location", r.headers)
                self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE))
                assert_html_security(self, r)
                self.assertNotIn("wrong password %d" % i, r.text, "the password came back")
                texts.add(st.parse_page(r.text).text)
            self.assertEqual(rw.status_code, ru.status_code)
        self.assertEqual(len(texts), 1, "unknown user and wrong password read differently:\n%s" % "\n".join(texts))
        self.assertIn("Wrong username or password", texts.pop())
        mw, mu = statistics.median(t_wrong), statistics.median(t_unknown)
        self.assertLess(max(mw, mu) / min(mw, mu), 3.0,
                        "wrong password %r s vs unknown user %r s" % (t_wrong, t_unknown))

    def test_repeated_failures_throttled_429(self):
        """SECURITY.md rule 22: failures count by address and by (user,
        address); they hold back that address, never the user elsewhere."""
        b = self.browser()
        statuses = []
        r = None
        for i in range(14):
            _, form = b.login_page()
            r = b.post_login(form, "mallory", "not the password %d" % i)
            statuses.append(r.status_code)
            if r.status_code == 429:
                break
        self.assertEqual(r.status_code, 429, "no 429 after %d failures: %r" % (len(statuses), statuses))
        self.assertTrue(set(statuses[:-1]) <= {401}, statuses)
        self.assertGreaterEqual(len(statuses), 5, "throttled before the free failures were used: %r" % statuses)
        ra = r.headers.get("Retry-After")
        self.assertTrue(ra and ra.isdigit() and int(ra) >= 1, ra)
        page = assert_html_security(self, r)
        self.assertRegex(page.text, r"[Ww]ait \d+ seconds?")
        self.assertIsNotNone(st.login_form(page), "the throttled page still has the form")
        # one more failure once the wait is over blocks for 2 s (whole
        # seconds: the check below then runs well inside the block)
        time.sleep(int(ra) + 0.2)
        _, form = b.login_page()
        r = b.post_login(form, "mallory", "not the password either")
        self.assertEqual(r.status_code, 401, r.text[:500])
        # while throttled, even the right password does not sign in from
        # the address that failed
        _, form = b.login_page()
        r = b.post_login(form, "mallory", PASSWORD)
        self.assertEqual(r.status_code, 429, r.text[:500])
        self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE))
        self.assertNotIn("Location", r.headers)
        # ... nor another user from it (the address is a gate of its own)
        _, form = b.login_page()
        r = b.post_login(form, "alice", PASSWORD)
        self.assertEqual(r.status_code, 429, r.text[:500])
        # the user signs in from another address: the failures of someone
        # else do not lock them out
        b2 = self.browser()
        _, form = b2.login_page()
        r2 = b2.post_login(form, "mallory", PASSWORD)
        self.assertEqual(r2.status_code, 303, r2.text[:500])
        self.assertIsNotNone(st.find_set_cookie(r2, st.SESSION_COOKIE))

    def test_throttled_sign_ins_are_counted(self):
        """tokend_logins_total{result="throttled"} counts every 429 of
        POST /login (as it did before the password checks moved to the
        pool)."""
        fx = self.fx
        before = st.metric(fx.metrics(), "tokend_logins_total", result="throttled")
        b = self.browser()
        got = 0
        for i in range(16):
            _, form = b.login_page()
            r = b.post_login(form, "oscar", "counted guess %d" % i)
            self.assertIn(r.status_code, (401, 429), r.text[:300])
            got += r.status_code == 429
            if got == 2:
                break
        self.assertGreaterEqual(got, 2)
        after = st.metric(fx.metrics(), "tokend_logins_total", result="throttled")
        self.assertEqual(after - before, got, "%d sign-ins answered 429, the metric moved by %d"
                         % (got, after - before))

    def test_regression_failures_elsewhere_do_not_lock_a_user_out(self):
        """The old rule: enough wrong passwords for a user, from anywhere,
        refused that user's right password from every address."""
        attacker = self.browser()
        statuses = []
        for i in range(14):  # until a 429 (a slow machine may outwait short blocks)
            _, form = attacker.login_page()
            r = attacker.post_login(form, "eve", "guess %d" % i)
            statuses.append(r.status_code)
            self.assertIn(r.status_code, (401, 429), r.text[:300])
            if r.status_code == 429:
                break
        self.assertIn(429, statuses, statuses)
        owner = self.browser()
        got = owner.sign_in("eve", PASSWORD)
        self.assertTrue(got.get("code"), got["location"])

    def test_correct_login_303_with_code_state_iss_and_session_cookie(self):
        b = self.browser()
        _, form = b.login_page()
        r = b.post_login(form, "alice", PASSWORD)
        self.assertEqual(r.status_code, 303, r.text[:1000])
        loc = r.headers["Location"]
        self.assertEqual(st.strip_query(loc), REDIRECT)
        q = st.query_params(loc)
        self.assertTrue(q.get("code"), loc)
        self.assertGreaterEqual(len(q["code"]), 32)
        self.assertEqual(q.get("state"), b.state)
        self.assertEqual(q.get("iss"), self.fx.issuer)
        self.assertNotIn("error", q)
        self.assertIn("no-store", r.headers.get("Cache-Control", ""))
        self.assertEqual(r.headers.get("Referrer-Policy"), "no-referrer")
        got = st.find_set_cookie(r, st.SESSION_COOKIE)
        self.assertIsNotNone(got, st.set_cookie_headers(r))
        value, attrs = got
        self.assertGreaterEqual(len(value), 40)
        self.assertIs(attrs.get("httponly"), True, attrs)
        self.assertIs(attrs.get("secure"), True, attrs)
        self.assertEqual(str(attrs.get("samesite")).lower(), "lax", attrs)
        self.assertEqual(attrs.get("path"), "/", attrs)
        self.assertNotIn("domain", attrs)
        self.assertNotIn(value, self.fx.log_text(), "the session cookie was logged")
        self.assertNotIn(PASSWORD, self.fx.log_text(), "the password was logged")

    def test_second_authorize_with_the_cookie_gets_a_code_at_once(self):
        b = self.browser()
        first = b.sign_in("alice", PASSWORD)
        got = b.code_with_session()  # a new state and PKCE pair
        self.assertEqual(st.strip_query(got["location"]), REDIRECT)
        self.assertEqual(got.get("state"), b.state)
        self.assertEqual(got.get("iss"), self.fx.issuer)
        self.assertNotEqual(got["code"], first["code"])
        self.assertIsNone(st.find_set_cookie(got["response"], st.CSRF_COOKIE), "a sign-in page was served")
        # the code is good, and belongs to the same sign-in (sid)
        t1 = b.exchange(first["code"], first["verifier"]).json()
        t2 = b.exchange(got["code"], got["verifier"]).json()
        p1, p2 = st.jwt_parts(t1["access_token"])[1], st.jwt_parts(t2["access_token"])[1]
        self.assertEqual(p1["sid"], p2["sid"])
        self.assertEqual(p2["sub"], "alice")
        # errors still go back to the client with a session: no code then
        r = b.authorize(scope="orders:write")
        assert_redirect_error(self, r, "invalid_scope", b.state)

    def test_login_form_with_a_tampered_redirect_uri_does_not_redirect_there(self):
        b = self.browser()
        _, form = b.login_page()
        evil = "https://evil.example/cb"
        r = b.post_login(form, "alice", PASSWORD, extra={"redirect_uri": evil})
        self.assertNotIn(evil, r.headers.get("Location", ""))
        self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE))
        self.assertEqual(r.status_code, 400, r.text[:500])

    def test_login_form_with_plain_pkce_goes_back_with_invalid_request(self):
        b = self.browser()
        _, form = b.login_page()
        r = b.post_login(form, "alice", PASSWORD, extra={"code_challenge_method": "plain"})
        self.assertEqual(r.status_code, 303, r.text[:500])
        q = st.query_params(r.headers["Location"])
        self.assertEqual(q.get("error"), "invalid_request")
        self.assertNotIn("code", q)


# ---------------------------------------------------------------------------
# POST /oauth/token, grant_type=authorization_code

class CodeExchange(SignInCase):
    def test_public_client_exchange_with_client_id_only(self):
        b = self.browser()
        got = b.sign_in("alice", PASSWORD)
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("no-store", r.headers.get("Cache-Control", ""))
        o = r.json()
        self.assertEqual(o.get("token_type"), "Bearer")
        self.assertGreater(o.get("expires_in", 0), 0)
        self.assertEqual(o.get("scope"), SCOPE)
        self.assertTrue(o.get("refresh_token", "").startswith("tokend_rt_"), o)
        h, p = st.jwt_parts(o["access_token"])
        self.assertEqual(h.get("typ"), "at+jwt")
        self.assertEqual(p["sub"], "alice")
        self.assertEqual(p["client_id"], self.fx.spa)
        self.assertEqual(p["iss"], self.fx.issuer)
        self.assertTrue(p.get("sid"))
        self.assertEqual(p["aud"], AUD)
        r = assert_valid(self, self.fx, o["access_token"])
        self.assertEqual(r.headers.get("X-Auth-Subject"), "alice")
        log = self.fx.log_text()
        for secret in (got["code"], o["access_token"], o["refresh_token"], b.cookie()):
            self.assertNotIn(secret, log)

    def test_confidential_client_exchange_with_basic(self):
        b = self.browser(client_id=self.fx.web, redirect_uri="https://web.example/cb")
        got = b.sign_in("alice", PASSWORD)
        # its secret is required: client_id alone is not enough
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(st.oauth_error(r), "invalid_client")
        got = b.code_with_session()
        r = b.exchange(got["code"], got["verifier"], auth=(self.fx.web, self.fx.web_secret))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(st.jwt_parts(r.json()["access_token"])[1]["client_id"], self.fx.web)

    def test_stolen_code_replayed(self):
        b = self.browser()
        got = b.sign_in("alice", PASSWORD)
        r1 = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r1.status_code, 200, r1.text)
        t1 = r1.json()
        assert_valid(self, self.fx, t1["access_token"])
        # the thief (another address) replays the code: refused, and what
        # the first use got is revoked (RFC 6749 section 4.1.2)
        r2 = b.exchange(got["code"], got["verifier"], source_ip=st.fresh_ip())
        assert_invalid_grant(self, r2, r"already used")
        self.assertNotIn("access_token", r2.json())
        assert_revoked(self, self.fx, t1["access_token"])
        r3 = st.refresh_response(self.fx, t1["refresh_token"], client_id=self.fx.spa)
        assert_invalid_grant(self, r3)

    def test_wrong_code_verifier(self):
        b = self.browser()
        got = b.sign_in("alice", PASSWORD)
        other, _ = st.pkce_pair()
        r = b.exchange(got["code"], other)
        assert_invalid_grant(self, r, r"code_verifier|PKCE")
        self.assertNotIn("access_token", r.json())

    def test_missing_code_verifier(self):
        b = self.browser()
        got = b.sign_in("alice", PASSWORD)
        r = b.exchange(got["code"], None)
        self.assertEqual(r.status_code, 400, r.text)
        self.assertIn(st.oauth_error(r), ("invalid_grant", "invalid_request"), r.text)

    def test_redirect_uri_one_character_off(self):
        b = self.browser()
        for uri in (st.one_char_off(REDIRECT), REDIRECT + "/", REDIRECT2):
            with self.subTest(uri=uri):
                got = b.sign_in("alice", PASSWORD) if b.cookie() is None else b.code_with_session()
                r = b.exchange(got["code"], got["verifier"], redirect_uri=uri)
                assert_invalid_grant(self, r, r"redirect_uri")

    def test_code_of_another_client(self):
        b = self.browser()
        got = b.sign_in("alice", PASSWORD)
        r = b.exchange(got["code"], got["verifier"], client_id=self.fx.other, redirect_uri="https://other.example/cb")
        assert_invalid_grant(self, r)

    def test_failed_attempts_do_not_spend_the_code(self):
        # Someone who saw the code but has no verifier (the attacker PKCE is
        # for) is refused, and must not be able to spend it: otherwise the
        # legitimate exchange that follows looks like a replay, and revokes
        # the user's whole sign-in (sid) and ends the browser session.
        b = self.browser()
        b.sign_in("alice", PASSWORD)
        t = b.exchange(**self._code(b)).json()  # a token of the same sign-in
        got = b.code_with_session()
        wrong, _ = st.pkce_pair()
        assert_invalid_grant(self, b.exchange(got["code"], wrong, source_ip=st.fresh_ip()))
        assert_invalid_grant(self, b.exchange(got["code"], got["verifier"], client_id=self.fx.other,
                                              redirect_uri="https://other.example/cb", source_ip=st.fresh_ip()))
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, "the legitimate exchange after failed attempts: " + r.text)
        assert_valid(self, self.fx, t["access_token"])
        b.code_with_session()  # the browser session lives on

    @staticmethod
    def _code(b):
        got = b.code_with_session()
        return {"code": got["code"], "verifier": got["verifier"]}

    def test_unknown_code(self):
        b = self.browser()
        verifier, _ = st.pkce_pair()
        r = b.exchange(st.random_state() * 3, verifier)
        assert_invalid_grant(self, r)

    def test_unknown_client_id(self):
        b = self.browser()
        got = b.sign_in("alice", PASSWORD)
        r = b.exchange(got["code"], got["verifier"], client_id="no-such-client", source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(st.oauth_error(r), "invalid_client")


# ---------------------------------------------------------------------------
# /logout

class Logout(SignInCase):
    """Signing out ends a sign-in only when the user confirms (issue 8
    section 3): GET /logout, or a POST without proof that it comes from our
    own page, answers the "Sign out?" page; its form (csrf field matching
    the CSRF cookie) signs out, as does a POST with Origin or Sec-Fetch-Site
    saying same-origin."""

    def _signed_in(self):
        b = self.browser()
        t = b.tokens("carol", PASSWORD)
        assert_valid(self, self.fx, t["access_token"])
        return b, t

    def _assert_signed_out(self, b, t, r):
        cleared = st.find_set_cookie(r, st.SESSION_COOKIE)
        self.assertIsNotNone(cleared, "the session cookie is not cleared: %r" % st.set_cookie_headers(r))
        self.assertEqual(cleared[0], "")
        self.assertIn(str(cleared[1].get("max-age")), ("0", "-1"), cleared)
        assert_revoked(self, self.fx, t["access_token"])
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=self.fx.spa)
        assert_invalid_grant(self, r)
        # the browser (still holding the old cookie, as if it ignored the
        # clearing) gets the sign-in page, not a code
        b.s.cookies.set(st.SESSION_COOKIE, self._cookie, domain=st.urlsplit(self.fx.url).hostname, path="/",
                        secure=True)
        r = b.authorize()
        self.assertEqual(r.status_code, 200, r.headers.get("Location"))
        self.assertIn("signed out", st.parse_page(r.text).text.lower())

    def _assert_still_signed_in(self, b, t):
        """The sign-in lives: its access token passes, its refresh token
        refreshes (t takes the rotated one), the session cookie is kept."""
        assert_valid(self, self.fx, t["access_token"])
        self.assertIsNotNone(b.cookie(), "the session cookie is gone")
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=self.fx.spa)
        self.assertEqual(r.status_code, 200, r.text)
        t["refresh_token"] = r.json()["refresh_token"]

    def _assert_confirm_page(self, b, r, params=None):
        """The "Sign out?" page: a POST form to logout with the csrf field
        (= the CSRF cookie it sets) and the request's own parameters."""
        self.assertEqual(r.status_code, 200, r.text[:500])
        self.assertNotIn("Location", r.headers)
        page = assert_html_security(self, r)
        self.assertIn("<title>Sign out?</title>", r.text)
        self.assertIn("Sign out?", page.text)
        self.assertIn("carol", page.text)
        self.assertNotIn("You are signed out", page.text)
        form = st.logout_form(page)
        self.assertEqual(form["method"], "post")
        self.assertEqual(form["action"], "logout")
        self.assertRegex(r.text, r'<button type="submit">\s*Sign out\s*</button>')
        hidden = st.hidden_fields(form)
        self.assertEqual(set(hidden), {"csrf"} | set(params or {}), hidden)
        for k, v in (params or {}).items():
            self.assertEqual(hidden[k], v, k)
        got = st.find_set_cookie(r, st.CSRF_COOKIE)
        self.assertIsNotNone(got, "the confirmation page sets no CSRF cookie: %r" % st.set_cookie_headers(r))
        value, attrs = got
        self.assertEqual(hidden["csrf"], value)
        self.assertGreaterEqual(len(value), 32)
        self.assertIs(attrs.get("secure"), True, attrs)
        self.assertIs(attrs.get("httponly"), True, attrs)
        self.assertEqual(attrs.get("path"), "/", attrs)
        self.assertNotIn("domain", attrs)
        # nothing was ended by asking
        self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE), st.set_cookie_headers(r))
        return form

    def test_get_logout_asks_then_the_form_signs_out(self):
        b, t = self._signed_in()
        self._cookie = b.cookie()
        r = b.logout("GET")
        self._assert_confirm_page(b, r)
        self._assert_still_signed_in(b, t)
        # the user clicks "Sign out"
        r = b.confirm_logout(r)
        self.assertEqual(r.status_code, 200, r.text[:500])
        page = assert_html_security(self, r)
        self.assertIn("You are signed out.", page.text)
        self._assert_signed_out(b, t, r)

    def test_post_logout_with_the_csrf_field_signs_out(self):
        b, t = self._signed_in()
        self._cookie = b.cookie()
        # a POST without proof asks first, and its page's form signs out
        r = b.logout("POST")
        self._assert_confirm_page(b, r)
        self._assert_still_signed_in(b, t)
        csrf = b.cookie(st.CSRF_COOKIE)
        self.assertTrue(csrf)
        r = b.logout("POST", csrf=csrf)
        self.assertEqual(r.status_code, 200, r.text[:500])
        self.assertIn("You are signed out.", assert_html_security(self, r).text)
        self._assert_signed_out(b, t, r)

    def test_post_logout_from_our_origin_signs_out(self):
        for what, headers in (("Origin", {"Origin": None}), ("Sec-Fetch-Site", {"Sec-Fetch-Site": "same-origin"})):
            with self.subTest(what):
                b, t = self._signed_in()
                self._cookie = b.cookie()
                if "Origin" in headers:
                    headers = {"Origin": b.origin()}
                r = b.logout("POST", headers=headers)
                self.assertEqual(r.status_code, 200, r.text[:500])
                self.assertIn("You are signed out.", assert_html_security(self, r).text)
                self._assert_signed_out(b, t, r)

    def test_cross_site_get_does_not_sign_out(self):
        """A link or a top-level navigation from another site (a GET, which
        carries the SameSite=Lax session cookie) only shows the page."""
        for what, headers in (("no headers", None), ("cross-site", {"Sec-Fetch-Site": "cross-site"}),
                              ("evil origin", {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
                              ("even same-origin headers", {"Sec-Fetch-Site": "same-origin"})):
            with self.subTest(what):
                b, t = self._signed_in()
                r = b.logout("GET", headers=headers)
                self._assert_confirm_page(b, r)
                self._assert_still_signed_in(b, t)
                # the sign-in goes on: a code at once, no password
                b.code_with_session()

    def test_cross_site_post_without_proof_does_not_sign_out(self):
        cases = {
            "no proof": None,
            "Origin of another site": {"Origin": "https://evil.example"},
            "Origin null": {"Origin": "null"},
            "our host, other scheme": {"Origin": None},
            "our host, other port": {"Origin": None},
            "Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site"},
            "Sec-Fetch-Site same-site": {"Sec-Fetch-Site": "same-site"},
            "evil origin, cross-site": {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        }
        for what, headers in cases.items():
            with self.subTest(what):
                b, t = self._signed_in()
                if what == "our host, other scheme":
                    headers = {"Origin": b.origin().replace("https://", "http://")}
                elif what == "our host, other port":
                    headers = {"Origin": b.origin().rsplit(":", 1)[0] + ":1"}
                r = b.logout("POST", headers=headers, client_id=self.fx.spa, post_logout_redirect_uri=REDIRECT2)
                self._assert_confirm_page(b, r, {"client_id": self.fx.spa, "post_logout_redirect_uri": REDIRECT2})
                self._assert_still_signed_in(b, t)

    def test_post_logout_with_a_wrong_csrf_403_and_still_signed_in(self):
        b, t = self._signed_in()
        r = b.logout("POST", csrf="x" * 43)
        self.assertEqual(r.status_code, 403, r.text[:500])
        self._assert_still_signed_in(b, t)
        # with the CSRF cookie of the confirmation page, a field that does
        # not match it is still 403, whatever Origin says
        for headers in (None, {"Origin": b.origin()}, {"Sec-Fetch-Site": "same-origin"}):
            with self.subTest(headers=headers):
                page = b.logout("GET")
                self._assert_confirm_page(b, page)
                real = b.cookie(st.CSRF_COOKIE)
                wrong = real[:-1] + ("A" if real[-1] != "A" else "B")
                r = b.confirm_logout(page, headers=headers, csrf=wrong)
                self.assertEqual(r.status_code, 403, r.text[:500])
                self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE))
                self._assert_still_signed_in(b, t)
        # an empty field is no proof: refused, or asked again
        r = b.logout("POST", csrf="")
        if r.status_code != 403:
            self._assert_confirm_page(b, r)
        self._assert_still_signed_in(b, t)

    def test_post_logout_redirect_uri_registered(self):
        b, t = self._signed_in()
        self._cookie = b.cookie()
        params = dict(client_id=self.fx.spa, post_logout_redirect_uri=REDIRECT2, state="s1 2")
        r = b.logout("GET", **params)
        self._assert_confirm_page(b, r, params)
        self._assert_still_signed_in(b, t)
        r = b.confirm_logout(r)
        self.assertEqual(r.status_code, 303, r.text[:500])
        loc = r.headers["Location"]
        self.assertEqual(st.strip_query(loc), REDIRECT2)
        self.assertEqual(st.query_params(loc).get("state"), "s1 2")
        self._assert_signed_out(b, t, r)
        # a POST from our own origin goes there at once
        b, t = self._signed_in()
        self._cookie = b.cookie()
        r = b.logout("POST", headers={"Origin": b.origin()}, **params)
        self.assertEqual(r.status_code, 303, r.text[:500])
        self.assertEqual(st.strip_query(r.headers["Location"]), REDIRECT2)
        self._assert_signed_out(b, t, r)

    def test_post_logout_redirect_uri_not_registered_is_not_followed(self):
        cases = {
            "not registered": dict(client_id=self.fx.spa, post_logout_redirect_uri="https://evil.example/"),
            "one character off": dict(client_id=self.fx.spa, post_logout_redirect_uri=st.one_char_off(REDIRECT2)),
            "another client's": dict(client_id=self.fx.spa, post_logout_redirect_uri="https://other.example/cb"),
            "no client_id": dict(post_logout_redirect_uri=REDIRECT2),
            "unknown client": dict(client_id="no-such-client", post_logout_redirect_uri=REDIRECT2),
        }
        for what, params in cases.items():
            for method in ("GET", "POST"):
                with self.subTest(what, method=method):
                    b, t = self._signed_in()
                    r = b.logout(method, **params)
                    self._assert_confirm_page(b, r, params)
                    r = b.confirm_logout(r)
                    self.assertEqual(r.status_code, 200, r.text[:500])
                    self.assertNotIn("Location", r.headers)
                    page = assert_html_security(self, r)
                    self.assertIn("signed out", page.text.lower())
                    self.assertIn("not registered", page.text.lower())
                    # signing out happened all the same
                    assert_revoked(self, self.fx, t["access_token"])

    def test_logout_without_a_session_is_fine(self):
        b = self.browser()
        r = b.logout("GET")
        self.assertEqual(r.status_code, 200)
        page = assert_html_security(self, r)
        self.assertIn("You are signed out.", page.text)
        self.assertNotIn("Sign out?", page.text)
        # and a registered post_logout_redirect_uri is followed as before
        r = b.logout("GET", client_id=self.fx.spa, post_logout_redirect_uri=REDIRECT2, state="st")
        self.assertEqual(r.status_code, 303, r.text[:500])
        self.assertEqual(st.query_params(r.headers["Location"]).get("state"), "st")


# ---------------------------------------------------------------------------
# timeouts: a server of its own with --session-idle 2s and --code-ttl 1s

class UserProfile(SignInCase):
    """`tokend user add|set` with the profile a relying party is told about
    (OpenID Connect standard claims, store schema 4): stored, shown, checked,
    and a sign-in still works for a user that has one."""

    def test_profile_add_set_show(self):
        fx = self.fx
        name = "zoe-profile"
        r = fx.admin("user", "add", name, "--password-file", "-", "--email", "zoe@example.org",
                     "--name", "Zoë Ünal", "--email-verified", "yes", input=PASSWORD + "\n")
        self.assertEqual(r.rc, 0, r)
        r = fx.admin("user", "show", name, "--json")
        self.assertEqual(r.rc, 0, r)
        u = json.loads(r.out)
        self.assertEqual((u["email"], u["email_verified"], u["name"], u["given_name"]),
                         ("zoe@example.org", True, "Zoë Ünal", ""), u)
        # set changes only what it is given; a new address is not verified
        r = fx.admin("user", "set", name, "--given-name", "Zoë", "--email", "zoe@example.com", "--json")
        self.assertEqual(r.rc, 0, r)
        u = json.loads(fx.admin("user", "show", name, "--json").out)
        self.assertEqual((u["email"], u["email_verified"], u["name"], u["given_name"]),
                         ("zoe@example.com", False, "Zoë Ünal", "Zoë"), u)
        r = fx.admin("user", "show", name)
        self.assertIn("<zoe@example.com>", r.out, r)
        # clear errors, nothing changed
        for args, words in ((["--email", "not an address"], "is not an e-mail address"),
                            (["--name", "tab\there"], "without control characters"),
                            (["--email-verified", "maybe"], "takes yes or no"),
                            ([], "give what to change")):
            r = fx.admin("user", "set", name, *args)
            self.assertNotEqual(r.rc, 0, r)
            self.assertIn(words, r.err, r)
        r = fx.admin("user", "set", "nobody-here", "--name", "x")
        self.assertEqual(r.rc, 1, r)
        self.assertIn("no such user", r.err, r)
        r = fx.admin("user", "passwd", name, "--email", "a@b.c")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("belong to add and set", r.err, r)
        u2 = json.loads(fx.admin("user", "show", name, "--json").out)
        self.assertEqual(u2, u)
        # the user signs in as before
        b = self.browser()
        _, form = b.login_page()
        r = b.post_login(form, name, PASSWORD)
        self.assertEqual(r.status_code, 303, r.text[:300])


class UserInfo(SignInCase):
    """GET/POST /userinfo (OpenID Connect Core section 5.3): the claims the
    token's scopes release about the user who signed in, and every refusal
    as an RFC 6750 challenge with its reason code."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        fx = cls.fx
        cls.rp, _ = fx.add_signin_client("oidc-rp", REDIRECT, "openid profile email orders:read", AUD)
        fx.add_user("ui-dana", PASSWORD)
        r = fx.admin("user", "set", "ui-dana", "--name", "Dana Scully", "--given-name", "Dana",
                     "--family-name", "Scully", "--email", "dana@example.org", "--email-verified", "yes")
        assert r.rc == 0, r
        fx.add_user("ui-fox", PASSWORD)  # no profile at all

    def tokens(self, user, scope):
        b = st.SignInBrowser(self.fx, self.rp, REDIRECT, scope=scope)
        self.addCleanup(b.close)
        got = b.sign_in(user, PASSWORD)
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    def userinfo(self, token=None, method="GET", authorization=None):
        h = {}
        if authorization is not None:
            h["Authorization"] = authorization
        elif token is not None:
            h["Authorization"] = "Bearer " + token
        return self.fx.request(method, "/userinfo", headers=h)

    def test_claims_by_scope(self):
        full = self.tokens("ui-dana", "openid profile email")["access_token"]
        for method in ("GET", "POST"):
            r = self.userinfo(full, method)
            self.assertEqual(r.status_code, 200, r.text)
            self.assertEqual(r.headers.get("Content-Type"), "application/json")
            self.assertIn("no-store", r.headers.get("Cache-Control", ""))
            self.assertEqual(r.json(), {"sub": "ui-dana", "name": "Dana Scully", "given_name": "Dana",
                                        "family_name": "Scully", "email": "dana@example.org",
                                        "email_verified": True})
        only = self.tokens("ui-dana", "openid")["access_token"]
        self.assertEqual(self.userinfo(only).json(), {"sub": "ui-dana"})
        mail = self.tokens("ui-dana", "openid email")["access_token"]
        self.assertEqual(self.userinfo(mail).json(),
                         {"sub": "ui-dana", "email": "dana@example.org", "email_verified": True})
        # claims without a value are left out (section 5.3.2)
        bare = self.tokens("ui-fox", "openid profile email")["access_token"]
        self.assertEqual(self.userinfo(bare).json(), {"sub": "ui-fox"})
        m = self.fx.metadata()
        self.assertEqual(m.get("userinfo_endpoint"), self.fx.url + "/userinfo")

    def challenge(self, r, status, reason, error):
        self.assertEqual(r.status_code, status, r.text)
        self.assertEqual(r.headers.get("X-Auth-Reason"), reason, r.headers)
        ch = r.headers.get("WWW-Authenticate", "")
        self.assertTrue(ch.startswith("Bearer realm="), ch)
        if error:
            self.assertIn('error="%s"' % error, ch)
        return ch

    def test_refusals(self):
        # no token: a bare challenge (RFC 6750 section 3.1)
        ch = self.challenge(self.userinfo(), 401, "missing_token", None)
        self.assertNotIn("error=", ch)
        self.challenge(self.userinfo(authorization="Basic Zm9vOmJhcg=="), 400, "wrong_scheme", "invalid_request")
        # a token without openid
        t = self.tokens("ui-dana", "orders:read")["access_token"]
        ch = self.challenge(self.userinfo(t), 403, "insufficient_scope", "insufficient_scope")
        self.assertIn("openid", ch)
        # a client's own token (client_credentials), even with openid
        cid, secret = self.fx.add_client("ui-cc", "openid", AUD)
        t = self.fx.token(cid, secret, scope="openid")
        ch = self.challenge(self.userinfo(t), 401, "invalid_claim", "invalid_token")
        self.assertIn("not for a user who signed in", ch)
        # tampered, then revoked
        o = self.tokens("ui-dana", "openid profile")
        tok = o["access_token"]
        bad = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
        self.challenge(self.userinfo(bad), 401, "bad_signature", "invalid_token")
        r = self.fx.post("/oauth/revoke", data={"token": tok, "client_id": self.rp})
        self.assertEqual(r.status_code, 200, r.text)
        self.challenge(self.userinfo(tok), 401, "revoked", "invalid_token")
        # a user disabled after sign-in: every token of theirs is revoked
        self.fx.add_user("ui-gone", PASSWORD)
        t = self.tokens("ui-gone", "openid")["access_token"]
        self.assertEqual(self.userinfo(t).status_code, 200)
        self.assertEqual(self.fx.admin("user", "disable", "ui-gone").rc, 0)
        self.challenge(self.userinfo(t), 401, "revoked", "invalid_token")
        log = self.fx.log_text()
        self.assertNotIn(tok, log)


class ShortTimeouts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, extra=["--session-idle", "2s", "--session-max", "1h",
                                                     "--code-ttl", "1s"], name="signin-short")
        cls.fx.start()
        cls.fx.add_user("dave", PASSWORD)
        cls.cid, _ = cls.fx.add_signin_client("spa", REDIRECT, SCOPE, AUD)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def test_idle_session_cookie_gets_the_sign_in_page_saying_so(self):
        b = st.SignInBrowser(self.fx, self.cid, REDIRECT)
        self.addCleanup(b.close)
        b.sign_in("dave", PASSWORD)
        # still alive right away
        b.code_with_session()
        time.sleep(3.2)
        r = b.authorize()
        self.assertEqual(r.status_code, 200, "an idle session still got %s" % r.headers.get("Location"))
        page = assert_html_security(self, r)
        st.login_form(page)
        text = page.text
        self.assertRegex(text, r"[Ss]ession expired")
        self.assertIn("2 seconds of inactivity", text)
        self.assertIn("sign in again", text.lower())
        # and signing in again works
        _, form = b.login_page()
        r = b.post_login(form, "dave", PASSWORD)
        self.assertEqual(r.status_code, 303, r.text[:500])

    def test_expired_code_invalid_grant(self):
        b = st.SignInBrowser(self.fx, self.cid, REDIRECT)
        self.addCleanup(b.close)
        got = b.sign_in("dave", PASSWORD)
        time.sleep(2.2)  # codes live 1 s here; compared in whole seconds
        r = b.exchange(got["code"], got["verifier"])
        assert_invalid_grant(self, r, r"expired|unknown")


def tearDownModule():
    if SignInCase.fx is not None:
        SignInCase.fx.close()
        SignInCase.fx = None


if __name__ == "__main__":
    st.main()
