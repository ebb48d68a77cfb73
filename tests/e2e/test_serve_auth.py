# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of GET /auth, the validation endpoint for reverse
proxies (issue 3 sections 3 and 7): identity headers on success; RFC 6750
section 3 challenges (parsed strictly) with our X-Auth-Reason on failure;
request ids joined to the access log; --explain bare; the /errors/<code>
pages error_uri points to; revocation seen at once (/oauth/revoke) and
within about two seconds (`tokend revoke` in another process); the same
answers with and without the verify cache (--auth-cache-size 0).
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

AUD = "orders-api"


class AuthBase(unittest.TestCase):
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, settings={"TOKEND_LEEWAY": "0"}, extra=cls.EXTRA,
                                  name=cls.__name__)
        cls.fx.start()
        fx = cls.fx
        cls.cid, cls.secret = fx.add_client("svc", "orders:read orders:write", "orders-api billing-api")
        cls.short_id, cls.short_secret = fx.add_client("short", "orders:read", AUD, ttl="1s")
        cls.token = fx.token(cls.cid, cls.secret)
        # a 1 s token for the expiry cases: it is expired when they run
        cls.expiring = fx.token(cls.short_id, cls.short_secret)
        cls.expiring_exp = st.jwt_parts(cls.expiring)[1]["exp"]

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def expired_token(self):
        time.sleep(max(0.0, self.expiring_exp + 1.2 - time.time()))
        return self.expiring

    def tampered(self):
        h, p, s = self.token.split(".")
        sig = bytearray(tt.b64u_decode(s))
        sig[5] ^= 0x01
        return h + "." + p + "." + tt.b64u(bytes(sig))

    def foreign(self):
        key = tt.new_key("ES256", kid="not-our-kid")
        c = tt.claims(iss=self.fx.url, aud=AUD, client_id="x", scope="orders:read")
        return key.token(c, header={"typ": "at+jwt"}, kid=True)

    def alg_none(self):
        h, p, _ = self.token.split(".")
        hdr = st.jwt_parts(self.token)[0]
        return tt.b64u_json(dict(hdr, alg="none")) + "." + p + "."

    # (name, kwargs for fx.auth, status, RFC 6750 error, reason)
    def failure_cases(self):
        t = self.token
        return [
            ("wrong scheme", {"authorization": "Basic " + t, "aud": AUD}, 400, "invalid_request", "wrong_scheme"),
            ("token scheme", {"authorization": "Token " + t, "aud": AUD}, 400, "invalid_request", "wrong_scheme"),
            ("no space", {"authorization": "Bearer", "aud": AUD}, 400, "invalid_request", "malformed_header"),
            ("two spaces", {"authorization": "Bearer  " + t, "aud": AUD}, 400, "invalid_request", "malformed_header"),
            ("two tokens", {"authorization": "Bearer " + t + " " + t, "aud": AUD}, 400, "invalid_request", "malformed_header"),
            ("quoted", {"authorization": 'Bearer "' + t + '"', "aud": AUD}, 400, "invalid_request", "malformed_header"),
            ("malformed token", {"authorization": "Bearer e30.e30", "aud": AUD}, 401, "invalid_token", "malformed_token"),
            ("header not json", {"authorization": "Bearer Zm9v.e30.AAAA", "aud": AUD}, 401, "invalid_token",
             "malformed_token"),
            ("opaque", {"token": "opaque-reference-token", "aud": AUD}, 401, "invalid_token", "unsupported_token_type"),
            ("alg none", {"token": self.alg_none(), "aud": AUD}, 401, "invalid_token", "alg_not_allowed"),
            ("unknown key", {"token": self.foreign(), "aud": AUD}, 401, "invalid_token", "unknown_key"),
            ("bad signature", {"token": self.tampered(), "aud": AUD}, 401, "invalid_token", "bad_signature"),
            ("wrong audience", {"token": t, "aud": "payments-api"}, 401, "invalid_token", "wrong_audience"),
            ("missing scope", {"token": t, "aud": AUD, "scope": "orders:admin"}, 403, "insufficient_scope",
             "insufficient_scope"),
            ("missing one of two scopes", {"token": t, "aud": AUD, "scope": "orders:read orders:delete"}, 403,
             "insufficient_scope", "insufficient_scope"),
            ("expired", {"token": self.expired_token(), "aud": AUD}, 401, "invalid_token", "expired"),
        ]

    def assertChallenge(self, r, status, error, reason, explain=True):
        """Checks a failed /auth answer per RFC 6750 section 3; returns the
        parsed challenge."""
        fx = self.fx
        self.assertEqual(r.status_code, status, r.headers)
        self.assertEqual(r.content, b"", "an /auth answer has an empty body")
        self.assertEqual(r.headers.get("X-Auth-Reason"), reason)
        self.assertTrue(r.headers.get("X-Request-Id"))
        for h in ("X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope"):
            self.assertNotIn(h, r.headers)
        raw = r.headers.get("WWW-Authenticate")
        ch = st.parse_challenge(raw)
        self.assertEqual(ch.scheme, "Bearer", raw)
        self.assertEqual(ch.get("realm"), "tokend", raw)
        self.assertEqual(ch.order[0], "realm", raw)
        self.assertEqual(ch.get("error"), error, raw)
        self.assertIn(ch.get("error"), st.RFC6750_ERRORS)
        allowed = {"realm", "error", "error_description", "error_uri", "scope"}
        self.assertTrue(set(ch.params) <= allowed, raw)
        if explain:
            d = ch.get("error_description")
            self.assertTrue(d, raw)
            self.assertRegex(d, r"^[\x20\x21\x23-\x5b\x5d-\x7e]+$")
        else:
            self.assertNotIn("error_description", ch.params, raw)
        uri = ch.get("error_uri")
        self.assertEqual(uri, fx.url + "/errors/" + reason, raw)
        self.assertRegex(uri, r"^[\x20\x21\x23-\x5b\x5d-\x7e]+$")
        return ch


class AuthEndpoint(AuthBase):
    def test_valid_token(self):
        fx = self.fx
        # (no aud at all: AuthAudienceRequired and AuthDefaultAudience)
        for kw in ({"aud": AUD}, {"aud": AUD, "scope": "orders:read"},
                   {"aud": AUD, "scope": "orders:read orders:write"}, {"aud": AUD, "scope": "orders:read,orders:write"}):
            with self.subTest(**kw):
                r = fx.auth(self.token, **kw)
                self.assertEqual(r.status_code, 200, r.headers)
                self.assertEqual(r.content, b"")
                self.assertEqual(r.headers.get("Content-Length"), "0")
                self.assertEqual(r.headers.get("X-Auth-Subject"), self.cid)
                self.assertEqual(r.headers.get("X-Auth-Client-Id"), self.cid)
                self.assertEqual(r.headers.get("X-Auth-Scope"), "orders:read orders:write")
                self.assertNotIn("WWW-Authenticate", r.headers)
                self.assertNotIn("X-Auth-Reason", r.headers)
                self.assertTrue(r.headers.get("X-Request-Id"))
        # case-insensitive scheme (RFC 7235 section 2.1)
        r = fx.auth(authorization="bearer " + self.token, aud=AUD)
        self.assertEqual(r.status_code, 200)
        # forward-auth proxies send the original method
        for method in ("HEAD", "POST", "PUT", "DELETE"):
            with self.subTest(method=method):
                self.assertEqual(fx.auth(self.token, aud=AUD, method=method).status_code, 200)
        # and through curl
        c = fx.curl("/auth?aud=orders-api&scope=orders:read", "-H", "Authorization: Bearer " + self.token)
        self.assertEqual(c.status_code, 200, c)
        self.assertEqual(c.header("X-Auth-Subject"), self.cid)
        self.assertEqual(c.header("X-Auth-Client-Id"), self.cid)
        self.assertEqual(c.header("X-Auth-Scope"), "orders:read orders:write")
        self.assertEqual(c.content, b"")

    def test_no_token_is_bare_challenge(self):
        fx = self.fx
        r = fx.auth(aud=AUD)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.content, b"")
        # RFC 6750 section 3.1: no error attributes when no token was sent
        self.assertEqual(r.headers.get("WWW-Authenticate"), 'Bearer realm="tokend"')
        self.assertEqual(r.headers.get("X-Auth-Reason"), "missing_token")
        c = fx.curl("/auth?aud=orders-api")
        self.assertEqual(c.status_code, 401)
        self.assertEqual(c.headers_all("WWW-Authenticate"), ['Bearer realm="tokend"'])
        self.assertEqual(c.header("X-Auth-Reason"), "missing_token")

    def test_failures_rfc6750(self):
        fx = self.fx
        for name, kw, status, error, reason in self.failure_cases():
            with self.subTest(case=name):
                r = fx.auth(**kw)
                self.assertChallenge(r, status, error, reason)

    def test_failures_through_curl(self):
        fx = self.fx
        for name, kw, status, error, reason in self.failure_cases():
            with self.subTest(case=name):
                q = []
                if kw.get("aud"):
                    q.append("aud=" + kw["aud"])
                if kw.get("scope"):
                    q.append("scope=" + kw["scope"].replace(" ", "%20"))
                authz = kw.get("authorization") or "Bearer " + kw["token"]
                c = fx.curl("/auth" + ("?" + "&".join(q) if q else ""), "-H", "Authorization: " + authz)
                self.assertEqual(c.rc, 0, c)
                self.assertEqual(c.status_code, status, c)
                self.assertEqual(c.header("X-Auth-Reason"), reason, c)
                self.assertEqual(len(c.headers_all("WWW-Authenticate")), 1, c)
                ch = st.parse_challenge(c.header("WWW-Authenticate"))
                self.assertEqual(ch.get("error"), error)
                self.assertEqual(ch.get("error_uri"), fx.url + "/errors/" + reason)
                self.assertEqual(c.content, b"")

    def test_descriptions_name_the_values(self):
        fx = self.fx
        ch = self.assertChallenge(fx.auth(self.token, aud="payments-api"), 401, "invalid_token", "wrong_audience")
        self.assertIn("payments-api", ch.get("error_description"))
        ch = self.assertChallenge(fx.auth(self.token, aud=AUD, scope="orders:admin"), 403, "insufficient_scope",
                                  "insufficient_scope")
        self.assertIn("orders:admin", ch.get("error_description"))
        ch = self.assertChallenge(fx.auth(self.foreign(), aud=AUD), 401, "invalid_token", "unknown_key")
        self.assertIn("not-our-kid", ch.get("error_description"))
        ch = self.assertChallenge(fx.auth(self.expired_token(), aud=AUD), 401, "invalid_token", "expired")
        self.assertIn("expired", ch.get("error_description"))
        # SECURITY.md rule 15: claims of a token whose signature failed are
        # never described
        h, p, s = self.token.split(".")
        claims = dict(st.jwt_parts(self.token)[1], aud="evil-aud-marker", sub="evil-sub-marker")
        forged = h + "." + tt.b64u_json(claims) + "." + s
        r = fx.auth(forged, aud=AUD)
        ch = self.assertChallenge(r, 401, "invalid_token", "bad_signature")
        self.assertNotIn("evil", r.headers.get("WWW-Authenticate"))

    def test_description_quotes_are_escaped(self):
        # a kid with '"' and '\' must not break the quoted-string
        fx = self.fx
        key = tt.new_key("ES256", kid='we"ird\\kid')
        tok = key.token(tt.claims(iss=fx.url, aud=AUD), header={"typ": "at+jwt"}, kid=True)
        r = fx.auth(tok, aud=AUD)
        ch = self.assertChallenge(r, 401, "invalid_token", "unknown_key")
        self.assertNotIn('"', ch.get("error_description"))

    def test_several_authorization_headers(self):
        import http.client
        import ssl
        fx = self.fx
        ctx = ssl.create_default_context(cafile=fx.cert)
        conn = http.client.HTTPSConnection("127.0.0.1", fx.port, context=ctx, timeout=st.HTTP_TIMEOUT)
        try:
            conn.putrequest("GET", "/auth?aud=" + AUD)
            conn.putheader("Authorization", "Bearer " + self.token)
            conn.putheader("Authorization", "Bearer " + self.token)
            conn.endheaders()
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 400)
            self.assertEqual(r.getheader("X-Auth-Reason"), "malformed_header")
            ch = st.parse_challenge(r.getheader("WWW-Authenticate"))
            self.assertEqual(ch.get("error"), "invalid_request")
        finally:
            conn.close()

    def test_request_id_on_every_response_and_in_the_log(self):
        fx = self.fx
        responses = [
            ("/auth", 200, "valid", fx.auth(self.token, aud=AUD)),
            ("/auth", 401, "missing_token", fx.auth(aud=AUD)),
            ("/auth", 401, "bad_signature", fx.auth(self.tampered(), aud=AUD)),
            ("/auth", 403, "insufficient_scope", fx.auth(self.token, aud=AUD, scope="orders:admin")),
            ("/oauth/token", 200, None, fx.token_response(self.cid, self.secret)),
            ("/oauth/token", 400, None, fx.token_response(self.cid, self.secret, scope="nope")),
            ("/.well-known/jwks.json", 200, None, fx.get("/.well-known/jwks.json")),
            ("/errors/{code}", 200, None, fx.get("/errors/expired")),
            ("other", 404, None, fx.get("/nope")),
            ("/healthz", 200, None, fx.get("/healthz")),
        ]
        fx.sensitive.add(responses[4][3].json()["access_token"])
        rids = set()
        for route, status, reason, r in responses:
            with self.subTest(route=route, status=status):
                self.assertEqual(r.status_code, status)
                rid = r.headers.get("X-Request-Id")
                self.assertRegex(rid or "", r"^[0-9A-Za-z_-]{8,64}$")
                self.assertNotIn(rid, rids, "request ids are unique")
                rids.add(rid)
                line = fx.log_for(rid)
                self.assertEqual(line.get("route"), route, line)
                self.assertEqual(line.get("status"), status, line)
                if reason:
                    self.assertEqual(line.get("reason"), reason, line)
        # the operator's log has the full detail the client may not get
        r = fx.auth(self.token, aud="payments-api")
        line = fx.log_for(r.headers["X-Request-Id"])
        self.assertEqual(line.get("reason"), "wrong_audience")
        self.assertIn("payments-api", line.get("detail", ""))
        self.assertEqual(line.get("token_fp"), st.fingerprint(self.token))
        # curl sees the id too
        c = fx.curl("/auth?aud=" + AUD)
        self.assertEqual(fx.log_for(c.header("X-Request-Id")).get("status"), 401)

    def test_error_pages(self):
        fx = self.fx
        codes = ["missing_token", "wrong_scheme", "malformed_header", "malformed_token", "unsupported_token_type",
                 "alg_not_allowed", "unknown_key", "bad_signature", "expired", "not_yet_valid",
                 "issued_in_future", "wrong_issuer", "wrong_audience", "wrong_token_type", "missing_claim",
                 "invalid_claim", "revoked", "insufficient_scope", "unavailable"]
        for code in codes:
            with self.subTest(code=code):
                r = fx.get("/errors/" + code)
                self.assertEqual(r.status_code, 200)
                self.assertTrue(r.headers.get("Content-Type", "").startswith("text/html"))
                self.assertIn("<h1><code>%s</code></h1>" % code, r.text)
        c = fx.curl("/errors/expired")
        self.assertEqual(c.status_code, 200)
        self.assertIn("<h1><code>expired</code></h1>", c.text)
        # the index
        r = fx.get("/errors/")
        self.assertEqual(r.status_code, 200)
        self.assertIn("expired", r.text)
        for bad in ("nope", "expired/x", "..", "%2e%2e", "EXPIRED", "expired.html", "expired%2500"):
            with self.subTest(bad=bad):
                r = fx.get("/errors/" + bad)
                self.assertEqual(r.status_code, 404, r.text[:200])
        self.assertEqual(fx.curl("/errors/no_such_code").status_code, 404)
        # every error_uri a challenge points to resolves
        for name, kw, status, error, reason in self.failure_cases():
            uri = st.parse_challenge(fx.auth(**kw).headers["WWW-Authenticate"]).get("error_uri")
            with self.subTest(uri=uri):
                r = fx.session().get(uri, timeout=st.HTTP_TIMEOUT)
                self.assertEqual(r.status_code, 200)
                self.assertIn("<h1><code>%s</code></h1>" % reason, r.text)

    def test_revocation_seen_at_once(self):
        fx = self.fx
        tok = fx.token(self.cid, self.secret)
        self.assertEqual(fx.auth(tok, aud=AUD).status_code, 200)
        self.assertIs(fx.introspect(self.cid, self.secret, tok).json()["active"], True)
        r = fx.revoke(self.cid, self.secret, tok)
        self.assertEqual(r.status_code, 200)
        # the very next request, no waiting
        r = fx.auth(tok, aud=AUD)
        ch = self.assertChallenge(r, 401, "invalid_token", "revoked")
        self.assertIn("revoked", ch.get("error_description"))
        self.assertEqual(fx.introspect(self.cid, self.secret, tok).json(), {"active": False, "reason": "revoked"})
        # another token of the same client is untouched
        self.assertEqual(fx.auth(self.token, aud=AUD).status_code, 200)

    def test_cli_revoke_seen_within_two_seconds(self):
        fx = self.fx
        for how in ("jti", "token"):
            with self.subTest(how=how):
                tok = fx.token(self.cid, self.secret)
                self.assertEqual(fx.auth(tok, aud=AUD).status_code, 200)
                if how == "jti":
                    res = fx.admin("revoke", "--jti", st.jwt_parts(tok)[1]["jti"], "--reason", "admin", "--json")
                else:
                    res = fx.admin("revoke", "--token", "-", "--json", input=tok)
                self.assertEqual(res.rc, 0, res)
                t0 = time.monotonic()
                r, waited = st.wait_for(lambda: fx.auth(tok, aud=AUD).headers.get("X-Auth-Reason") == "revoked", 6.0,
                                        interval=0.05)
                self.assertTrue(r, "the running server did not see `tokend revoke` within 6 s")
                self.assertLessEqual(time.monotonic() - t0, 2.5,
                                     "the running server saw `tokend revoke` only after %.1f s" % waited)
                r = fx.auth(tok, aud=AUD)
                self.assertChallenge(r, 401, "invalid_token", "revoked")
                self.assertEqual(fx.introspect(self.cid, self.secret, tok).json().get("reason"), "revoked")


    def test_cli_revoke_jti_file(self):
        """Issue 13 section 2: `tokend revoke --jti-file FILE|-`: the file is
        checked whole (bad lines reported by number, nothing revoked), then
        revoked; a running server sees it within a second or two."""
        fx = self.fx
        toks = [fx.token(self.cid, self.secret) for _ in range(5)]
        jtis = [st.jwt_parts(t)[1]["jti"] for t in toks]
        path = os.path.join(fx.td, "jtis.txt")
        with open(path, "w") as f:
            f.write("# leaked on 2026-12-01\n\n%s\n  %s  \r\nnot one\n%s\n\x01x\n" % tuple(jtis[:3]))
        res = fx.admin("revoke", "--jti-file", path)
        self.assertEqual(res.rc, 1, res)
        self.assertIn("jtis.txt:5: not a jti: the line holds a space", res.err)
        self.assertIn("jtis.txt:7: not a jti: the line holds a character that is not printable ASCII", res.err)
        self.assertIn("2 lines of %s are not a jti: nothing was revoked" % path, res.err)
        self.assertNotIn(":6:", res.err)
        for t in toks[:3]:
            self.assertEqual(fx.auth(t, aud=AUD).status_code, 200, "a file with bad lines revoked something")
        with open(path, "w") as f:
            f.write("# leaked on 2026-12-01\n\n%s\n  %s  \r\n%s\n%s" % (jtis[0], jtis[1], jtis[2], jtis[0]))
        res = fx.admin("revoke", "--jti-file", path, "--reason", "leak", "--json")
        self.assertEqual(res.rc, 0, res)
        out = json.loads(res.out)
        self.assertEqual((out["kind"], out["count"], out["new"], out["reason"]), ("jti", 4, 3, "leak"))
        # stdin, and one already revoked
        res = fx.admin("revoke", "--jti-file", "-", input="%s\n%s\n" % (jtis[3], jtis[0]))
        self.assertEqual(res.rc, 0, res)
        self.assertIn("revoked 2 jtis (admin), 1 of them not revoked before", res.out)
        for t in toks[:4]:
            r, _ = st.wait_for(lambda: fx.auth(t, aud=AUD).headers.get("X-Auth-Reason") == "revoked", 6.0,
                               interval=0.05)
            self.assertTrue(r, "the running server did not see `tokend revoke --jti-file` within 6 s")
        ch = self.assertChallenge(fx.auth(toks[0], aud=AUD), 401, "invalid_token", "revoked")
        self.assertIn("leak", ch.get("error_description"))
        self.assertEqual(fx.auth(toks[4], aud=AUD).status_code, 200)
        # sids too; one source at a time; an unreadable file
        res = fx.admin("revoke", "--sid-file", "-", "--json", input="sid-one\nsid-two\n")
        self.assertEqual(res.rc, 0, res)
        self.assertEqual(json.loads(res.out)["kind"], "sid")
        res = fx.admin("revoke", "--jti", "x", "--jti-file", path)
        self.assertEqual(res.rc, 2, res)
        res = fx.admin("revoke", "--jti-file", os.path.join(fx.td, "missing.txt"))
        self.assertEqual(res.rc, 1, res)
        self.assertIn("cannot open", res.err)

class AuthAudienceRequired(AuthBase):
    """SECURITY.md rule 25: without ?aud= and without --auth-audience, /auth
    never says "valid" (any token of ours would pass for any API): 400,
    text/plain saying how to configure it, X-Auth-Reason audience_required,
    no challenge (not a token problem)."""

    def assertAudienceRequired(self, r):
        self.assertEqual(r.status_code, 400, r.headers)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"), r.headers)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "audience_required")
        self.assertNotIn("WWW-Authenticate", r.headers)
        for h in ("X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope"):
            self.assertNotIn(h, r.headers)
        # the body tells the proxy's operator both ways out
        self.assertIn("?aud=", r.text)
        self.assertIn("--auth-audience", r.text)
        line = self.fx.log_for(r.headers["X-Request-Id"])
        self.assertEqual(line.get("status"), 400, line)
        self.assertEqual(line.get("error"), "audience_required", line)

    def test_no_aud_is_400_even_for_a_valid_token(self):
        fx = self.fx
        for kw in ({"token": self.token}, {"token": self.token, "scope": "orders:read"}, {},
                   {"token": self.tampered()}):
            with self.subTest(kw=sorted(kw)):
                self.assertAudienceRequired(fx.auth(**kw))
        for method in ("POST", "PUT"):
            with self.subTest(method=method):
                self.assertAudienceRequired(fx.auth(self.token, method=method))
        c = fx.curl("/auth", "-H", "Authorization: Bearer " + self.token)
        self.assertEqual(c.status_code, 400, c)
        self.assertEqual(c.header("X-Auth-Reason"), "audience_required", c)
        self.assertEqual(c.headers_all("WWW-Authenticate"), [], c)
        self.assertIn("--auth-audience", c.text)

    def test_empty_aud_is_400(self):
        fx = self.fx
        self.assertAudienceRequired(fx.auth(self.token, aud=""))
        self.assertAudienceRequired(fx.get("/auth?aud=", headers={"Authorization": "Bearer " + self.token}))
        self.assertAudienceRequired(fx.get("/auth?aud=&scope=orders:read",
                                           headers={"Authorization": "Bearer " + self.token}))
        # and the same request with the audience passes
        self.assertEqual(fx.auth(self.token, aud=AUD).status_code, 200)


class AuthDefaultAudience(AuthBase):
    """--auth-audience AUD: the audience /auth requires when the query
    names none; ?aud= in the query overrides it."""
    EXTRA = ("--auth-audience", AUD)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.billing_id, cls.billing_secret = cls.fx.add_client("billing", "orders:read", "billing-api")
        cls.billing = cls.fx.token(cls.billing_id, cls.billing_secret)

    def test_default_audience_accepts_its_tokens(self):
        fx = self.fx
        for kw in ({}, {"scope": "orders:read"}, {"aud": ""}):
            with self.subTest(**kw):
                r = fx.auth(self.token, **kw)
                self.assertEqual(r.status_code, 200, r.headers)
                self.assertEqual(r.headers.get("X-Auth-Subject"), self.cid)
                self.assertNotIn("X-Auth-Reason", r.headers)
        c = fx.curl("/auth", "-H", "Authorization: Bearer " + self.token)
        self.assertEqual(c.status_code, 200, c)
        self.assertEqual(c.header("X-Auth-Client-Id"), self.cid)

    def test_default_audience_rejects_other_audiences(self):
        fx = self.fx
        r = fx.auth(self.billing)
        ch = self.assertChallenge(r, 401, "invalid_token", "wrong_audience")
        self.assertIn(AUD, ch.get("error_description"))
        line = fx.log_for(r.headers["X-Request-Id"])
        self.assertEqual(line.get("reason"), "wrong_audience", line)
        # the other checks still run with the default audience
        self.assertChallenge(fx.auth(self.token, scope="orders:admin"), 403, "insufficient_scope",
                             "insufficient_scope")
        self.assertChallenge(fx.auth(self.tampered()), 401, "invalid_token", "bad_signature")
        self.assertChallenge(fx.auth(self.expired_token()), 401, "invalid_token", "expired")
        r = fx.auth()
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.headers.get("WWW-Authenticate"), 'Bearer realm="tokend"')

    def test_query_aud_overrides_the_default(self):
        fx = self.fx
        r = fx.auth(self.billing, aud="billing-api")
        self.assertEqual(r.status_code, 200, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Client-Id"), self.billing_id)
        # a token for the default audience only is wrong for the one asked for
        short = fx.token(self.short_id, self.short_secret)
        self.assertEqual(fx.auth(short).status_code, 200)
        ch = self.assertChallenge(fx.auth(short, aud="billing-api"), 401, "invalid_token", "wrong_audience")
        self.assertIn("billing-api", ch.get("error_description"))
        self.assertChallenge(fx.auth(self.token, aud="payments-api"), 401, "invalid_token", "wrong_audience")

    def test_default_audience_from_the_environment(self):
        # TOKEND_AUTH_AUDIENCE is the same setting
        fx = st.ServerFixture(https=False, settings={"TOKEND_AUTH_AUDIENCE": "billing-api"}, name="env-aud")
        try:
            fx.start()
            cid, secret = fx.add_client("envbilling", "orders:read", "billing-api")
            r = fx.auth(fx.token(cid, secret))
            self.assertEqual(r.status_code, 200, r.headers)
            orders_id, orders_secret = fx.add_client("envorders", "orders:read", "orders-api")
            r = fx.auth(fx.token(orders_id, orders_secret))
            self.assertEqual(r.status_code, 401, r.headers)
            self.assertEqual(r.headers.get("X-Auth-Reason"), "wrong_audience")
        finally:
            fx.close()


class AuthCacheOff(AuthBase):
    """The verify cache changes no answer (issue 13 section 1): two servers
    on one store, the default --auth-cache-size and --auth-cache-size 0,
    answer every case alike, the cached one asked twice (its second answer
    skips the signature check), also after a revocation."""
    SETTINGS = {"TOKEND_LEEWAY": "0", "TOKEND_ISSUER": "https://auth.e2e.test"}

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, settings=cls.SETTINGS, name="cache-on")
        cls.fx.start()
        cls.off = st.ServerFixture(https=True, settings=cls.SETTINGS, extra=("--auth-cache-size", "0"),
                                   td=cls.fx.td, name="cache-off")
        try:
            cls.off.start()
        except BaseException:
            cls.fx.close()
            raise
        fx = cls.fx
        cls.cid, cls.secret = fx.add_client("svc", "orders:read orders:write", "orders-api billing-api")
        cls.short_id, cls.short_secret = fx.add_client("short", "orders:read", AUD, ttl="1s")
        cls.token = fx.token(cls.cid, cls.secret)
        cls.expiring = fx.token(cls.short_id, cls.short_secret)
        cls.expiring_exp = st.jwt_parts(cls.expiring)[1]["exp"]

    @classmethod
    def tearDownClass(cls):
        try:
            cls.off.close()
        finally:
            cls.fx.close()

    @staticmethod
    def answer(r):
        h = {k: r.headers.get(k) for k in ("X-Auth-Reason", "WWW-Authenticate", "X-Auth-Subject", "X-Auth-Client-Id",
                                           "X-Auth-Scope", "X-Auth-Issuer")}
        # error_uri names each server's own URL
        for srv in (AuthCacheOff.fx, AuthCacheOff.off):
            if h["WWW-Authenticate"]:
                h["WWW-Authenticate"] = h["WWW-Authenticate"].replace(srv.url, "URL")
        return r.status_code, r.content, h

    def metric(self, fx, name):
        return fx.metrics().get((name, frozenset()), 0.0)

    def test_same_answers_with_and_without_the_cache(self):
        fx, off = self.fx, self.off
        cases = [("valid", {"token": self.token, "aud": AUD}),
                 ("valid with scope", {"token": self.token, "aud": AUD, "scope": "orders:read"})]
        cases += [(name, kw) for name, kw, _, _, _ in self.failure_cases()]
        cases.insert(0, ("valid, first", {"token": self.token, "aud": AUD, "scope": "orders:write"}))
        for name, kw in cases:
            with self.subTest(case=name):
                first = self.answer(fx.auth(**kw))
                again = self.answer(fx.auth(**kw))
                plain = self.answer(off.auth(**kw))
                self.assertEqual(first, plain)
                self.assertEqual(again, plain)
        self.assertGreater(self.metric(fx, "tokend_auth_cache_hits_total"), 0)
        self.assertGreater(self.metric(fx, "tokend_auth_cache_entries"), 0)
        for m in ("tokend_auth_cache_hits_total", "tokend_auth_cache_misses_total", "tokend_auth_cache_entries"):
            self.assertEqual(self.metric(off, m), 0, m)

    def test_revoked_while_cached(self):
        fx, off = self.fx, self.off
        tok = fx.token(self.cid, self.secret)
        for _ in range(2):
            self.assertEqual(fx.auth(tok, aud=AUD).status_code, 200)
            self.assertEqual(off.auth(tok, aud=AUD).status_code, 200)
        hits = self.metric(fx, "tokend_auth_cache_hits_total")
        self.assertEqual(fx.revoke(self.cid, self.secret, tok).status_code, 200)
        r, _ = st.wait_for(lambda: off.auth(tok, aud=AUD).headers.get("X-Auth-Reason") == "revoked", 6.0,
                           interval=0.05)
        self.assertTrue(r, "the cache-less server did not see the revocation")
        on, plain = self.answer(fx.auth(tok, aud=AUD)), self.answer(off.auth(tok, aud=AUD))
        self.assertEqual(on[0], 401)
        self.assertEqual(on[2]["X-Auth-Reason"], "revoked")
        self.assertEqual(on[:2], plain[:2])
        self.assertEqual(on[2]["X-Auth-Reason"], plain[2]["X-Auth-Reason"])
        # the signature check was skipped, the revocation was not
        self.assertGreater(self.metric(fx, "tokend_auth_cache_hits_total"), hits)


class AuthExplainBare(AuthBase):
    """--explain bare: the bare RFC 6750 error (SECURITY.md rule 15), the
    same error code and X-Auth-Reason, no error_description."""
    EXTRA = ("--explain", "bare")

    def test_bare_failures(self):
        fx = self.fx
        for name, kw, status, error, reason in self.failure_cases():
            with self.subTest(case=name):
                r = fx.auth(**kw)
                self.assertChallenge(r, status, error, reason, explain=False)
        r = fx.auth(aud=AUD)
        self.assertEqual(r.headers.get("WWW-Authenticate"), 'Bearer realm="tokend"')

    def test_bare_log_keeps_the_detail(self):
        fx = self.fx
        r = fx.auth(self.token, aud="payments-api")
        self.assertNotIn("payments-api", r.headers.get("WWW-Authenticate"))
        line = fx.log_for(r.headers["X-Request-Id"])
        self.assertEqual(line.get("reason"), "wrong_audience")
        self.assertIn("payments-api", line.get("detail", ""))

    def test_bare_valid(self):
        r = self.fx.auth(self.token, aud=AUD, scope="orders:read")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers.get("X-Auth-Subject"), self.cid)


if __name__ == "__main__":
    st.main()
