# SPDX-License-Identifier: Apache-2.0
"""Refresh tokens of user sign-in (issue 4 sections 2 and 4), against a real
`tokend serve --dev`:

  - rotation: every use answers a new refresh token and a new access token
    of the same sign-in (sid); the spent one no longer works;
  - reuse of a rotated token after the 2-second grace for concurrent use
    revokes the whole family: its access tokens get 401 `revoked` at /auth,
    the newest refresh token is invalid_grant, the browser session ends,
    and tokend_refresh_reuse_total counts it;
  - a spent token presented again within the grace is invalid_grant, and
    the family lives on (two racing requests of one client are a retry,
    not a theft);
  - concurrent use of one refresh token from two connections (two
    requests.Session objects released together by a barrier): exactly one
    200 and one 400 invalid_grant, never a 5xx;
  - /oauth/revoke of a refresh token revokes its family (public client by
    client_id, confidential client with its secret), and refuses another
    client's token.

Each test signs in afresh, so each has a family (sid) of its own.

Run by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_signin_refresh.py
"""

import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402

AUD = "orders-api"
SCOPE = "orders:read"
REDIRECT = "https://app.example/cb"
WEB_REDIRECT = "https://web.example/cb"
PASSWORD = "correct horse battery staple"
GRACE = 2  # seconds: flow.c REUSE_GRACE


def audit_kinds(fx):
    """The kinds of the audit events in the server's SQLite store."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % fx.store_path, uri=True, timeout=10)
    try:
        return [row[0] for row in db.execute("SELECT kind FROM audit")]
    finally:
        db.close()


def assert_revoked(tc, fx, token):
    r = fx.auth(token, aud=AUD, scope=SCOPE)
    tc.assertEqual(r.status_code, 401, r.text)
    tc.assertEqual(r.headers.get("X-Auth-Reason"), "revoked", dict(r.headers))


def assert_valid(tc, fx, token):
    r = fx.auth(token, aud=AUD, scope=SCOPE)
    tc.assertEqual(r.status_code, 200, "%s %s" % (r.headers.get("X-Auth-Reason"), r.text))


def assert_invalid_grant(tc, r, contains=None):
    tc.assertEqual(r.status_code, 400, r.text)
    tc.assertEqual(st.oauth_error(r), "invalid_grant", r.text)
    tc.assertNotIn("access_token", r.json())
    if contains:
        tc.assertRegex(r.json().get("error_description", ""), contains)


class Refresh(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, name="signin-refresh")
        cls.fx.start()
        cls.fx.add_user("alice", PASSWORD)
        cls.spa, _ = cls.fx.add_signin_client("spa", REDIRECT, SCOPE, AUD)
        cls.other, _ = cls.fx.add_signin_client("other", "https://other.example/cb", SCOPE, AUD)
        cls.web, cls.web_secret = cls.fx.add_signin_client("web", WEB_REDIRECT, SCOPE, AUD, public=False)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def sign_in(self, client_id=None, redirect=REDIRECT, auth=None):
        """A fresh sign-in (own browser, own sid): (browser, token JSON)."""
        b = st.SignInBrowser(self.fx, client_id or self.spa, redirect)
        self.addCleanup(b.close)
        got = b.sign_in("alice", PASSWORD)
        r = b.exchange(got["code"], got["verifier"], auth=auth)
        self.assertEqual(r.status_code, 200, r.text)
        t = r.json()
        self.assertTrue(t.get("refresh_token", "").startswith("tokend_rt_"), t)
        return b, t

    def refresh(self, token, **kw):
        kw.setdefault("client_id", self.spa)
        return st.refresh_response(self.fx, token, **kw)

    def rotate(self, token, **kw):
        r = self.refresh(token, **kw)
        self.assertEqual(r.status_code, 200, r.text)
        return r.json()

    # -- rotation -------------------------------------------------------------------
    def test_rotation(self):
        _, t = self.sign_in()
        sid = st.jwt_parts(t["access_token"])[1]["sid"]
        chain = [t]
        for _ in range(3):
            chain.append(self.rotate(chain[-1]["refresh_token"]))
        refresh = [c["refresh_token"] for c in chain]
        access = [c["access_token"] for c in chain]
        self.assertEqual(len(set(refresh)), len(refresh), "a refresh token came back")
        self.assertEqual(len(set(access)), len(access))
        for c in chain[1:]:
            self.assertEqual(c["token_type"], "Bearer")
            self.assertEqual(c["scope"], SCOPE)
            p = st.jwt_parts(c["access_token"])[1]
            self.assertEqual(p["sub"], "alice")
            self.assertEqual(p["sid"], sid, "rotation left the sign-in")
            self.assertEqual(p["client_id"], self.spa)
        for a in access:
            assert_valid(self, self.fx, a)
        # the spent one no longer works (within the grace: just refused)
        assert_invalid_grant(self, self.refresh(refresh[-2]))
        # a narrower scope is allowed, a wider one is not
        r = self.refresh(refresh[-1], scope="orders:write")
        self.assertEqual(r.status_code, 400, r.text)
        self.assertEqual(st.oauth_error(r), "invalid_scope")

    def test_refresh_of_another_client_or_unknown(self):
        _, t = self.sign_in()
        assert_invalid_grant(self, self.refresh(t["refresh_token"], client_id=self.other))
        assert_invalid_grant(self, self.refresh("tokend_rt_" + "A" * 43))
        assert_invalid_grant(self, self.refresh("not-a-refresh-token"))
        # none of that spent or revoked the real one: a token presented by a
        # client it was not issued to is refused without being used up
        # (RFC 6749 section 6 checks the binding; the legitimate client's
        # next use is not a "reuse")
        self.rotate(t["refresh_token"])

    # -- reuse ----------------------------------------------------------------------------
    def test_reuse_after_the_grace_revokes_the_family(self):
        b, t0 = self.sign_in()
        before = st.metric(self.fx.metrics(), "tokend_refresh_reuse_total")
        t1 = self.rotate(t0["refresh_token"])
        used_at = time.monotonic()
        t2 = self.rotate(t1["refresh_token"])
        for t in (t0, t1, t2):
            assert_valid(self, self.fx, t["access_token"])
        time.sleep(max(0.0, GRACE + 1.2 - (time.monotonic() - used_at)))
        # an attacker replays the first refresh token, spent >2 s ago
        r = self.refresh(t0["refresh_token"], source_ip=st.fresh_ip())
        assert_invalid_grant(self, r, r"already used")
        self.assertRegex(r.json()["error_description"], r"revoked")
        # every access token of the family is revoked, and the newest
        # refresh token (the legitimate client's) is refused
        for t in (t0, t1, t2):
            assert_revoked(self, self.fx, t["access_token"])
        assert_invalid_grant(self, self.refresh(t2["refresh_token"]))
        # the browser session it came from is over: no code without signing in
        r = b.authorize()
        self.assertEqual(r.status_code, 200, "the session still gives codes: %s" % r.headers.get("Location"))
        st.login_form(st.parse_page(r.text))
        after = st.metric(self.fx.metrics(), "tokend_refresh_reuse_total")
        self.assertGreaterEqual(after, before + 1)
        # and an audit event says so (read from the store: no CLI lists it)
        self.assertIn("refresh_reuse", audit_kinds(self.fx))

    def test_spent_token_within_the_grace_does_not_revoke(self):
        _, t0 = self.sign_in()
        r1 = self.refresh(t0["refresh_token"])
        t_used = time.monotonic()
        self.assertEqual(r1.status_code, 200, r1.text)
        t1 = r1.json()
        r2 = self.refresh(t0["refresh_token"])  # a retry of the same client
        took = time.monotonic() - t_used
        assert_invalid_grant(self, r2)
        if took >= GRACE - 0.5:
            self.skipTest("the retry came %.1f s later: too slow to be inside the grace" % took)
        assert_valid(self, self.fx, t1["access_token"])
        self.rotate(t1["refresh_token"])

    # -- concurrency ------------------------------------------------------------------------
    def _race(self, token, n=2):
        """n requests with the same refresh token, each on its own
        connection, released together: the responses."""
        barrier = threading.Barrier(n)
        out = [None] * n
        sessions = [st.new_session(self.fx.verify, st.fresh_ip()) for _ in range(n)]
        for s in sessions:  # connect (TLS handshake) before the race
            s.get(self.fx.url + "/healthz", timeout=st.HTTP_TIMEOUT)

        def go(i):
            try:
                barrier.wait(timeout=30)
                out[i] = st.refresh_response(self.fx, token, client_id=self.spa, session=sessions[i])
            except Exception as e:  # reported below
                out[i] = e

        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        for s in sessions:
            s.close()
        for o in out:
            if isinstance(o, Exception) or o is None:
                raise AssertionError("a racing request failed: %r" % (o,))
        return out

    def test_concurrent_use_exactly_one_wins(self):
        _, t = self.sign_in()
        token = t["refresh_token"]
        for round_ in range(5):
            with self.subTest(round=round_):
                rs = self._race(token)
                codes = sorted(r.status_code for r in rs)
                for r in rs:
                    self.assertLess(r.status_code, 500, r.text)
                self.assertEqual(codes, [200, 400], [(r.status_code, r.text) for r in rs])
                win = next(r for r in rs if r.status_code == 200)
                lose = next(r for r in rs if r.status_code == 400)
                self.assertEqual(st.oauth_error(lose), "invalid_grant", lose.text)
                token = win.json()["refresh_token"]
                assert_valid(self, self.fx, win.json()["access_token"])
        # the losers were retries within the grace: the family lives on
        t = self.rotate(token)
        assert_valid(self, self.fx, t["access_token"])

    def test_concurrent_use_by_four(self):
        _, t = self.sign_in()
        rs = self._race(t["refresh_token"], n=4)
        for r in rs:
            self.assertLess(r.status_code, 500, r.text)
        self.assertEqual(sorted(r.status_code for r in rs), [200, 400, 400, 400],
                         [(r.status_code, r.text) for r in rs])
        for r in rs:
            if r.status_code == 400:
                self.assertEqual(st.oauth_error(r), "invalid_grant")

    # -- /oauth/revoke ---------------------------------------------------------------------------
    def test_revoke_refresh_token_public_client(self):
        _, t0 = self.sign_in()
        t1 = self.rotate(t0["refresh_token"])
        r = self.fx.post("/oauth/revoke", data={"token": t1["refresh_token"], "client_id": self.spa,
                                                "token_type_hint": "refresh_token"})
        self.assertEqual(r.status_code, 200, r.text)
        assert_invalid_grant(self, self.refresh(t1["refresh_token"]))
        for t in (t0, t1):
            assert_revoked(self, self.fx, t["access_token"])
        # revoking again, or an unknown token, is fine (RFC 7009 section 2.2)
        r = self.fx.post("/oauth/revoke", data={"token": t1["refresh_token"], "client_id": self.spa})
        self.assertEqual(r.status_code, 200, r.text)
        r = self.fx.post("/oauth/revoke", data={"token": "tokend_rt_" + "B" * 43, "client_id": self.spa})
        self.assertEqual(r.status_code, 200, r.text)

    def test_revoke_refresh_token_confidential_client(self):
        auth = (self.web, self.web_secret)
        _, t = self.sign_in(client_id=self.web, redirect=WEB_REDIRECT, auth=auth)
        r = self.fx.revoke(self.web, self.web_secret, t["refresh_token"])
        self.assertEqual(r.status_code, 200, r.text)
        assert_invalid_grant(self, st.refresh_response(self.fx, t["refresh_token"], auth=auth))
        assert_revoked(self, self.fx, t["access_token"])

    def test_revoke_another_clients_refresh_token_refused(self):
        _, t = self.sign_in()
        r = self.fx.post("/oauth/revoke", data={"token": t["refresh_token"], "client_id": self.other})
        self.assertEqual(r.status_code, 400, r.text)
        self.assertEqual(st.oauth_error(r), "unauthorized_client")
        # still alive
        assert_valid(self, self.fx, t["access_token"])
        self.rotate(t["refresh_token"])


if __name__ == "__main__":
    st.main()
