# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the OAuth 2.0 endpoints of `tokend serve` (issue 3
sections 3 and 7): the token endpoint (RFC 6749, client_credentials, both
client authentication methods, every section 5.2 error), RFC 9068 access
tokens verified by PyJWT's PyJWKClient against our JWKS, a real OAuth
client library (requests-oauthlib), revocation (RFC 7009), introspection
(RFC 7662), the JWKS and RFC 8414 metadata documents, 404 and 405.

Every case runs through the real curl binary and through python3-requests,
over HTTPS with the --dev certificate, against the real binary.
"""

import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

import jwt  # noqa: E402

TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "scope"}


class OAuthEndpoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # leeway 0: a 1 s token is expired one second after its exp
        cls.fx = st.ServerFixture(https=True, settings={"TOKEND_LEEWAY": "0"}, name="oauth")
        cls.fx.start()
        fx = cls.fx
        cls.cid, cls.secret = fx.add_client("svc", "orders:read orders:write", "orders-api billing-api")
        cls.other_id, cls.other_secret = fx.add_client("other", "orders:read", "orders-api")
        cls.off_id, cls.off_secret = fx.add_client("off", "orders:read", "orders-api")
        r = fx.admin("client", "disable", cls.off_id)
        assert r.rc == 0, r
        # wrong secrets are sent for this one only (throttling counts per id)
        cls.ws_id, cls.ws_secret = fx.add_client("wrongsecret", "orders:read", "orders-api")
        cls.short_id, cls.short_secret = fx.add_client("short", "orders:read", "orders-api", ttl="1s")

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    # -- helpers -------------------------------------------------------------
    def both(self, path, curl_args, req_kwargs, source_ip=None):
        """The same request through curl and requests: [(name, response)]."""
        fx = self.fx
        c = fx.curl(path, *curl_args, source_ip=source_ip)
        self.assertEqual(c.rc, 0, c)
        r = fx.post(path, source_ip=source_ip, **req_kwargs)
        return [("curl", c), ("requests", r)]

    def hdr(self, resp, name):
        if isinstance(resp, st.CurlResponse):
            return resp.header(name)
        return resp.headers.get(name)

    def assertOAuthError(self, resp, status, code, www_basic=False):
        self.assertEqual(resp.status_code, status, resp.text if hasattr(resp, "text") else resp)
        self.assertTrue((self.hdr(resp, "Content-Type") or "").startswith("application/json"), resp)
        body = resp.json()
        self.assertEqual(body.get("error"), code, body)
        self.assertTrue(set(body) <= {"error", "error_description", "error_uri"}, body)
        if "error_description" in body:
            # printable ASCII; the stricter RFC 6749 section 5.2 character
            # set is test_error_description_charset's (one failure per bug)
            self.assertRegex(body["error_description"], r"^[\x20-\x7e]*$")
        self.assertEqual(self.hdr(resp, "Cache-Control"), "no-store")
        self.assertTrue(self.hdr(resp, "X-Request-Id"))
        if www_basic:
            ch = st.parse_challenge(self.hdr(resp, "WWW-Authenticate"))
            self.assertEqual(ch.scheme, "Basic", ch)
            self.assertIn("realm", ch.params, ch)
        return body

    def assertTokenResponse(self, resp, scope=None):
        self.assertEqual(resp.status_code, 200, resp.text if hasattr(resp, "text") else resp)
        self.assertEqual(self.hdr(resp, "Cache-Control"), "no-store")
        self.assertEqual(self.hdr(resp, "Pragma"), "no-cache")
        self.assertTrue((self.hdr(resp, "Content-Type") or "").startswith("application/json"))
        body = resp.json()
        self.assertEqual(set(body), TOKEN_FIELDS, body)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertIsInstance(body["expires_in"], int)
        self.assertGreater(body["expires_in"], 0)
        if scope is not None:
            self.assertEqual(body["scope"], scope)
        self.fx.sensitive.add(body["access_token"])
        return body

    # -- the token endpoint: success ----------------------------------------
    def test_token_client_secret_basic(self):
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=client_credentials"],
                                    {"data": {"grant_type": "client_credentials"}, "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                body = self.assertTokenResponse(resp, scope="orders:read orders:write")
                self.assertEqual(body["expires_in"], 900)  # the default 15m

    def test_token_client_secret_post(self):
        form = {"grant_type": "client_credentials", "client_id": self.cid, "client_secret": self.secret}
        for name, resp in self.both("/oauth/token",
                                    ["-d", "grant_type=client_credentials", "-d", "client_id=" + self.cid,
                                     "--data-urlencode", "client_secret=" + self.secret],
                                    {"data": form}):
            with self.subTest(via=name):
                self.assertTokenResponse(resp, scope="orders:read orders:write")

    def test_token_basic_with_matching_client_id_in_body(self):
        # RFC 6749 section 2.3.1 allows client_id in the body with Basic
        r = self.fx.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": self.cid},
                         auth=(self.cid, self.secret))
        self.assertTokenResponse(r)

    def test_token_scope_subset_and_audience(self):
        fx = self.fx
        r = fx.token_response(self.cid, self.secret, scope="orders:read", audience="billing-api")
        body = self.assertTokenResponse(r, scope="orders:read")
        _, claims = st.jwt_parts(body["access_token"])
        self.assertEqual(claims["aud"], "billing-api")
        self.assertEqual(claims["scope"], "orders:read")
        # RFC 8707 resource works like audience
        r = fx.token_response(self.cid, self.secret, resource="billing-api")
        _, claims = st.jwt_parts(self.assertTokenResponse(r)["access_token"])
        self.assertEqual(claims["aud"], "billing-api")
        # without a target: the client's first audience
        _, claims = st.jwt_parts(fx.token(self.cid, self.secret))
        self.assertEqual(claims["aud"], "orders-api")

    def test_token_is_rfc9068_jwt_verified_by_pyjwkclient(self):
        fx = self.fx
        r = fx.token_response(self.cid, self.secret, method="post")
        body = self.assertTokenResponse(r)
        tok = body["access_token"]
        header, claims = st.jwt_parts(tok)
        self.assertEqual(header.get("typ"), "at+jwt")
        self.assertEqual(header.get("alg"), "ES256")
        self.assertTrue(header.get("kid"))
        for c in ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"):
            self.assertIn(c, claims)
        self.assertEqual(claims["client_id"], self.cid)
        self.assertEqual(claims["sub"], self.cid)
        self.assertEqual(claims["scope"], body["scope"])
        self.assertEqual(claims["exp"] - claims["iat"], body["expires_in"])
        self.assertLessEqual(abs(claims["iat"] - time.time()), 30)
        self.assertGreaterEqual(len(claims["jti"]), 16)
        meta = fx.get("/.well-known/oauth-authorization-server").json()
        self.assertEqual(claims["iss"], meta["issuer"])
        # PyJWT's own JWKS client, over HTTPS, trusting only the dev certificate
        jwks_client = fx.jwks_client()
        key = jwks_client.get_signing_key_from_jwt(tok)
        self.assertEqual(key.key_id, header["kid"])
        verified = jwt.decode(tok, key.key, algorithms=["ES256"], audience="orders-api", issuer=meta["issuer"],
                              options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]})
        self.assertEqual(verified, claims)
        # and a tampered payload does not verify
        h, p, s = tok.split(".")
        p2 = tt.b64u_json(dict(claims, scope="orders:admin"))
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(h + "." + p2 + "." + s, key.key, algorithms=["ES256"], audience="orders-api")
        # two tokens never share a jti
        _, c2 = st.jwt_parts(fx.token(self.cid, self.secret))
        self.assertNotEqual(c2["jti"], claims["jti"])

    def test_requests_oauthlib_fetch_token(self):
        from oauthlib.oauth2 import BackendApplicationClient
        from requests_oauthlib import OAuth2Session
        fx = self.fx
        meta = fx.get("/.well-known/oauth-authorization-server").json()
        for include_client_id in (False, True):  # client_secret_basic, client_secret_post
            with self.subTest(include_client_id=include_client_id):
                oauth = OAuth2Session(client=BackendApplicationClient(client_id=self.cid))
                oauth.trust_env = False
                tok = oauth.fetch_token(token_url=meta["token_endpoint"], client_id=self.cid,
                                        client_secret=self.secret, include_client_id=include_client_id,
                                        verify=fx.cert, timeout=st.HTTP_TIMEOUT)
                fx.sensitive.add(tok["access_token"])
                self.assertEqual(tok["token_type"], "Bearer")
                self.assertEqual(tok["scope"], ["orders:read", "orders:write"])
                self.assertGreater(tok["expires_in"], 0)
                # the session then calls a protected resource: our /auth
                r = oauth.get(fx.url + "/auth", params={"aud": "orders-api", "scope": "orders:read"},
                              verify=fx.cert, timeout=st.HTTP_TIMEOUT)
                self.assertEqual(r.status_code, 200, r.headers)
                self.assertEqual(r.headers.get("X-Auth-Subject"), self.cid)

    # -- the token endpoint: RFC 6749 section 5.2 errors -----------------------
    def test_invalid_client_wrong_secret(self):
        ip = st.fresh_ip()
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.ws_id, "tokend_cs_wrong"),
                                     "-d", "grant_type=client_credentials"],
                                    {"data": {"grant_type": "client_credentials"},
                                     "auth": (self.ws_id, "tokend_cs_wrong")}, source_ip=ip):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)

    def test_invalid_client_wrong_secret_post(self):
        ip = st.fresh_ip()
        form = {"grant_type": "client_credentials", "client_id": self.ws_id, "client_secret": "nope"}
        for name, resp in self.both("/oauth/token",
                                    ["-d", "grant_type=client_credentials", "-d", "client_id=" + self.ws_id,
                                     "-d", "client_secret=nope"], {"data": form}, source_ip=ip):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)

    def test_invalid_client_unknown_client(self):
        ip = st.fresh_ip()
        for name, resp in self.both("/oauth/token",
                                    ["-u", "nobody:whatever", "-d", "grant_type=client_credentials"],
                                    {"data": {"grant_type": "client_credentials"}, "auth": ("nobody", "whatever")},
                                    source_ip=ip):
            with self.subTest(via=name):
                body = self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)
                # the same answer as a wrong secret: no client enumeration
                self.assertEqual(body.get("error_description"), "client authentication failed")

    def test_invalid_client_disabled(self):
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.off_id, self.off_secret),
                                     "-d", "grant_type=client_credentials"],
                                    {"data": {"grant_type": "client_credentials"},
                                     "auth": (self.off_id, self.off_secret)}):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)

    def test_invalid_client_no_credentials(self):
        for name, resp in self.both("/oauth/token", ["-d", "grant_type=client_credentials"],
                                    {"data": {"grant_type": "client_credentials"}}):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)
        # client_id alone (a "public client"): also invalid_client
        r = self.fx.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": self.cid})
        self.assertOAuthError(r, 401, "invalid_client", www_basic=True)

    def test_invalid_client_other_scheme_or_bad_basic(self):
        for authz in ("Bearer abc.def.ghi", "Basic !!!notbase64", "Basic " + tt.b64u("no-colon")):
            with self.subTest(authz=authz):
                r = self.fx.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 headers={"Authorization": authz})
                self.assertOAuthError(r, 401, "invalid_client", www_basic=True)

    def test_invalid_request_both_auth_methods(self):
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=client_credentials",
                                     "-d", "client_secret=" + self.secret],
                                    {"data": {"grant_type": "client_credentials", "client_secret": self.secret},
                                     "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 400, "invalid_request")

    def test_invalid_request_basic_and_different_client_id(self):
        r = self.fx.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": self.other_id},
                         auth=(self.cid, self.secret))
        self.assertOAuthError(r, 400, "invalid_request")

    def test_invalid_request_duplicate_parameter(self):
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=client_credentials",
                                     "-d", "grant_type=client_credentials"],
                                    {"data": [("grant_type", "client_credentials"),
                                              ("grant_type", "client_credentials")],
                                     "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                body = self.assertOAuthError(resp, 400, "invalid_request")
                self.assertIn("grant_type", body.get("error_description", ""))
        r = self.fx.post("/oauth/token", data=[("grant_type", "client_credentials"), ("scope", "orders:read"),
                                               ("scope", "orders:write")], auth=(self.cid, self.secret))
        self.assertOAuthError(r, 400, "invalid_request")

    def test_invalid_request_missing_grant_type(self):
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.cid, self.secret), "-d", "scope=orders:read"],
                                    {"data": {"scope": "orders:read"}, "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 400, "invalid_request")

    def test_invalid_request_not_a_form(self):
        r = self.fx.post("/oauth/token", json={"grant_type": "client_credentials"}, auth=(self.cid, self.secret))
        self.assertOAuthError(r, 400, "invalid_request")
        r = self.fx.post("/oauth/token", data="grant_type=client_credentials&scope=%zz",
                         headers={"Content-Type": "application/x-www-form-urlencoded"},
                         auth=(self.cid, self.secret))
        self.assertOAuthError(r, 400, "invalid_request")

    def test_invalid_scope(self):
        for name, resp in self.both("/oauth/token",
                                    ["-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=client_credentials",
                                     "--data-urlencode", "scope=orders:read orders:admin"],
                                    {"data": {"grant_type": "client_credentials",
                                              "scope": "orders:read orders:admin"},
                                     "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                body = self.assertOAuthError(resp, 400, "invalid_scope")
                self.assertIn("orders:admin", body.get("error_description", ""))

    def test_unsupported_grant_type(self):
        # authorization_code and refresh_token are supported since user
        # sign-in (test_signin_*.py); sent without their parameters they
        # are invalid_request.
        for grant in ("authorization_code", "refresh_token"):
            for name, resp in self.both("/oauth/token",
                                        ["-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=" + grant],
                                        {"data": {"grant_type": grant}, "auth": (self.cid, self.secret)}):
                with self.subTest(grant=grant, via=name):
                    self.assertOAuthError(resp, 400, "invalid_request")
        for grant in ("password", "urn:ietf:params:oauth:grant-type:jwt-bearer", "nonsense"):
            for name, resp in self.both("/oauth/token",
                                        ["-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=" + grant,
                                         "-d", "username=u", "-d", "password=p", "-d", "code=c"],
                                        {"data": {"grant_type": grant, "username": "u", "password": "p",
                                                  "code": "c"},
                                         "auth": (self.cid, self.secret)}):
                with self.subTest(grant=grant, via=name):
                    self.assertOAuthError(resp, 400, "unsupported_grant_type")

    def test_invalid_target(self):
        for param in ("audience", "resource"):
            for name, resp in self.both("/oauth/token",
                                        ["-u", "%s:%s" % (self.cid, self.secret),
                                         "-d", "grant_type=client_credentials", "-d", param + "=payments-api"],
                                        {"data": {"grant_type": "client_credentials", param: "payments-api"},
                                         "auth": (self.cid, self.secret)}):
                with self.subTest(param=param, via=name):
                    body = self.assertOAuthError(resp, 400, "invalid_target")
                    self.assertIn("payments-api", body.get("error_description", ""))

    def test_error_description_charset(self):
        """RFC 6749 section 5.2: error_description MUST NOT include
        characters outside %x20-21 / %x23-5B / %x5D-7E, i.e. no '"' and no
        '\\'. Every error of the three endpoints is checked."""
        fx = self.fx
        auth = (self.cid, self.secret)
        cc = {"grant_type": "client_credentials"}
        cases = [
            ("wrong secret", "/oauth/token", {"data": cc, "auth": (self.ws_id, "bad")}),
            ("unknown client", "/oauth/token", {"data": cc, "auth": ("nobody", "bad")}),
            ("disabled", "/oauth/token", {"data": cc, "auth": (self.off_id, self.off_secret)}),
            ("no credentials", "/oauth/token", {"data": cc}),
            ("public client", "/oauth/token", {"data": dict(cc, client_id=self.cid)}),
            ("other scheme", "/oauth/token", {"data": cc, "headers": {"Authorization": "Bearer x"}}),
            ("both methods", "/oauth/token", {"data": dict(cc, client_secret=self.secret), "auth": auth}),
            ("two client ids", "/oauth/token", {"data": dict(cc, client_id=self.other_id), "auth": auth}),
            ("duplicate", "/oauth/token", {"data": [("grant_type", "client_credentials")] * 2, "auth": auth}),
            ("missing grant_type", "/oauth/token", {"data": {"scope": "orders:read"}, "auth": auth}),
            ("not a form", "/oauth/token", {"json": cc, "auth": auth}),
            ("invalid_scope", "/oauth/token", {"data": dict(cc, scope="orders:admin"), "auth": auth}),
            ("password", "/oauth/token", {"data": {"grant_type": "password"}, "auth": auth}),
            ("authorization_code", "/oauth/token", {"data": {"grant_type": "authorization_code"}, "auth": auth}),
            ("refresh_token", "/oauth/token", {"data": {"grant_type": "refresh_token"}, "auth": auth}),
            ("invalid_target", "/oauth/token", {"data": dict(cc, audience="payments-api"), "auth": auth}),
            ("two resources", "/oauth/token", {"data": [("grant_type", "client_credentials"),
                                                        ("resource", "a"), ("resource", "b")], "auth": auth}),
            ("revoke: no token", "/oauth/revoke", {"data": {}, "auth": auth}),
            ("revoke: no auth", "/oauth/revoke", {"data": {"token": "x"}}),
            ("introspect: no token", "/oauth/introspect", {"data": {}, "auth": auth}),
            ("introspect: no auth", "/oauth/introspect", {"data": {"token": "x"}}),
        ]
        ip = st.fresh_ip()
        bad = []
        for what, path, kw in cases:
            r = fx.post(path, source_ip=ip, **kw)
            self.assertIn(r.status_code, (400, 401), (what, r.text))
            d = r.json().get("error_description", "")
            if not re.match(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$", d):
                bad.append("%s (%s %d %s): %r" % (what, path, r.status_code, r.json().get("error"), d))
        self.assertEqual(bad, [], "error_description outside the RFC 6749 section 5.2 character set "
                                  "(no '\"' or '\\\\' allowed):\n  " + "\n  ".join(bad))

    def test_token_endpoint_get_is_405(self):
        c = self.fx.curl("/oauth/token")
        r = self.fx.get("/oauth/token")
        for name, resp in (("curl", c), ("requests", r)):
            with self.subTest(via=name):
                self.assertEqual(resp.status_code, 405)
                self.assertEqual(self.hdr(resp, "Allow"), "POST")

    # -- revocation (RFC 7009) -----------------------------------------------
    def test_revoke_unknown_tokens_is_200(self):
        fx = self.fx
        key = tt.new_key("ES256", kid="not-ours")
        foreign = key.token(tt.claims(), header={"typ": "at+jwt"}, kid=True)
        for tok in ("garbage", "a.b.c", foreign):
            for name, resp in self.both("/oauth/revoke",
                                        ["-u", "%s:%s" % (self.cid, self.secret), "--data-urlencode",
                                         "token=" + tok, "-d", "token_type_hint=access_token"],
                                        {"data": {"token": tok, "token_type_hint": "access_token"},
                                         "auth": (self.cid, self.secret)}):
                with self.subTest(token=tok[:20], via=name):
                    self.assertEqual(resp.status_code, 200, resp.text)
                    self.assertEqual(resp.content, b"")
                    self.assertEqual(self.hdr(resp, "Cache-Control"), "no-store")
        # unknown token_type_hint values are only hints (RFC 7009 section 2.1)
        r = fx.post("/oauth/revoke", data={"token": "garbage", "token_type_hint": "refresh_token"},
                    auth=(self.cid, self.secret))
        self.assertEqual(r.status_code, 200)

    def test_revoke_own_token(self):
        fx = self.fx
        tok = fx.token(self.cid, self.secret)
        tok2 = fx.token(self.cid, self.secret)
        self.assertEqual(fx.auth(tok, aud="orders-api").status_code, 200)
        c = fx.curl("/oauth/revoke", "-u", "%s:%s" % (self.cid, self.secret), "--data-urlencode", "token=" + tok)
        self.assertEqual(c.status_code, 200, c)
        self.assertEqual(c.header("Cache-Control"), "no-store")
        r = fx.auth(tok, aud="orders-api")
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "revoked")
        # client_secret_post, through requests
        r = fx.post("/oauth/revoke", data={"token": tok2, "client_id": self.cid, "client_secret": self.secret})
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(fx.auth(tok2, aud="orders-api").headers.get("X-Auth-Reason"), "revoked")
        # revoking again is fine (RFC 7009: idempotent from the client's view)
        self.assertEqual(fx.revoke(self.cid, self.secret, tok).status_code, 200)

    def test_revoke_another_clients_token_is_refused(self):
        fx = self.fx
        tok = fx.token(self.other_id, self.other_secret)
        for name, resp in self.both("/oauth/revoke",
                                    ["-u", "%s:%s" % (self.cid, self.secret), "--data-urlencode", "token=" + tok],
                                    {"data": {"token": tok}, "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 400, "unauthorized_client")
        # still valid
        self.assertEqual(fx.auth(tok, aud="orders-api").status_code, 200)

    def test_revoke_needs_client_auth(self):
        fx = self.fx
        tok = fx.token(self.cid, self.secret)
        for name, resp in self.both("/oauth/revoke", ["--data-urlencode", "token=" + tok], {"data": {"token": tok}}):
            with self.subTest(via=name):
                self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)
        ip = st.fresh_ip()
        r = fx.revoke(self.ws_id, "wrong", tok, source_ip=ip)
        self.assertOAuthError(r, 401, "invalid_client", www_basic=True)
        self.assertEqual(fx.auth(tok, aud="orders-api").status_code, 200, "an unauthenticated revocation must do nothing")
        # missing token parameter
        r = fx.post("/oauth/revoke", data={}, auth=(self.cid, self.secret))
        self.assertOAuthError(r, 400, "invalid_request")
        self.assertEqual(fx.get("/oauth/revoke").status_code, 405)

    # -- introspection (RFC 7662) ----------------------------------------------
    def test_introspect_active_token(self):
        fx = self.fx
        tok = fx.token(self.cid, self.secret, scope="orders:read")
        _, claims = st.jwt_parts(tok)
        # its own client sees what the token says (RFC 7662 section 2.2)
        for name, resp in self.both("/oauth/introspect",
                                    ["-u", "%s:%s" % (self.cid, self.secret),
                                     "--data-urlencode", "token=" + tok],
                                    {"data": {"token": tok}, "auth": (self.cid, self.secret)}):
            with self.subTest(via=name):
                self.assertEqual(resp.status_code, 200, resp.text)
                self.assertEqual(self.hdr(resp, "Cache-Control"), "no-store")
                self.assertTrue(self.hdr(resp, "Content-Type").startswith("application/json"))
                body = resp.json()
                self.assertIs(body["active"], True)
                for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
                    self.assertEqual(body.get(k), claims[k], k)
                self.assertEqual(body.get("token_type"), "Bearer")
        # client_secret_post works too
        r = fx.post("/oauth/introspect", data={"token": tok, "client_id": self.cid, "client_secret": self.secret})
        self.assertIs(r.json().get("active"), True)
        self.assertEqual(r.json().get("jti"), claims["jti"])

    def test_introspect_another_clients_token_is_inactive(self):
        """RFC 7662 section 4: a client that neither owns the token nor
        serves its audience learns nothing, not even that it is valid."""
        fx = self.fx
        tok = fx.token(self.cid, self.secret, scope="orders:read")
        self.assertEqual(fx.auth(tok, aud="orders-api").status_code, 200)  # valid
        for name, resp in self.both("/oauth/introspect",
                                    ["-u", "%s:%s" % (self.other_id, self.other_secret),
                                     "--data-urlencode", "token=" + tok],
                                    {"data": {"token": tok}, "auth": (self.other_id, self.other_secret)}):
            with self.subTest(via=name):
                self.assertEqual(resp.status_code, 200, resp.text)
                self.assertEqual(self.hdr(resp, "Cache-Control"), "no-store")
                self.assertEqual(resp.json(), {"active": False})
                if name == "requests":
                    line = fx.log_for(resp.headers["X-Request-Id"])
                    self.assertIn("not this caller's", line.get("detail", ""), line)
        # nor of another client's inactive token: no reason either
        dead = fx.token(self.cid, self.secret)
        self.assertEqual(fx.revoke(self.cid, self.secret, dead).status_code, 200)
        self.assertEqual(fx.introspect(self.other_id, self.other_secret, dead).json(), {"active": False})
        self.assertEqual(fx.introspect(self.cid, self.secret, dead).json(), {"active": False, "reason": "revoked"})

    def test_introspect_inactive_tokens(self):
        fx = self.fx
        revoked = fx.token(self.cid, self.secret)
        self.assertEqual(fx.revoke(self.cid, self.secret, revoked).status_code, 200)
        expired = fx.token(self.short_id, self.short_secret)
        _, c = st.jwt_parts(expired)
        self.assertEqual(c["exp"] - c["iat"], 1)
        key = tt.new_key("ES256", kid="not-ours")
        foreign = key.token(tt.claims(client_id=self.cid), header={"typ": "at+jwt"}, kid=True)
        h, p, s = revoked.split(".")
        tampered = h + "." + tt.b64u_json(dict(st.jwt_parts(revoked)[1], scope="orders:admin")) + "." + s
        time.sleep(max(0.0, c["exp"] + 1.1 - time.time()))
        # (token, its client's credentials, reason told to that client or
        # None). A reason goes only to a caller who may see the token, and
        # only when its signature is ours (RFC 7662 section 4).
        cases = [(revoked, (self.cid, self.secret), "revoked"),
                 (expired, (self.short_id, self.short_secret), "expired"),
                 ("garbage", (self.cid, self.secret), None),            # unsupported_token_type
                 ("a.b.c", (self.cid, self.secret), None),              # malformed_token
                 (foreign, (self.cid, self.secret), None),              # unknown_key
                 (tampered, (self.cid, self.secret), None)]             # bad_signature
        for tok, (cid, secret), reason in cases:
            for name, resp in self.both("/oauth/introspect",
                                        ["-u", "%s:%s" % (cid, secret), "--data-urlencode", "token=" + tok],
                                        {"data": {"token": tok}, "auth": (cid, secret)}):
                with self.subTest(token=tok[:12], reason=reason, via=name):
                    self.assertEqual(resp.status_code, 200, resp.text)
                    self.assertEqual(self.hdr(resp, "Cache-Control"), "no-store")
                    body = resp.json()
                    # nothing but active:false and, for the caller who may
                    # see the token, the reason code
                    self.assertEqual(body, {"active": False, "reason": reason} if reason else {"active": False})
        # the operator's log still has the real reason of each
        for tok, want in (("a.b.c", "malformed_token"), (foreign, "unknown_key"), (tampered, "bad_signature"),
                          ("garbage", "unsupported_token_type")):
            with self.subTest(log=want):
                r = fx.introspect(self.cid, self.secret, tok)
                self.assertEqual(fx.log_for(r.headers["X-Request-Id"]).get("reason"), want)
        # another client never hears the reason of my expired token
        self.assertEqual(fx.introspect(self.cid, self.secret, expired).json(), {"active": False})

    def test_introspect_own_expired_token_says_expired(self):
        fx = self.fx
        tok = fx.token(self.short_id, self.short_secret)
        exp = st.jwt_parts(tok)[1]["exp"]
        self.assertIs(fx.introspect(self.short_id, self.short_secret, tok).json()["active"], True)
        time.sleep(max(0.0, exp + 1.1 - time.time()))
        r = fx.introspect(self.short_id, self.short_secret, tok)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json(), {"active": False, "reason": "expired"})

    def test_introspect_by_resource_server(self):
        """A client made with --serves orders-api may introspect tokens
        issued for orders-api (of any client), and no others."""
        fx = self.fx
        rs_id, rs_secret = fx.add_client("orders-backend", "orders:introspect", "orders-api", serves="orders-api")
        shown = json.loads(fx.admin("client", "show", rs_id, "--json").out)
        self.assertEqual(shown.get("serves"), "orders-api", shown)
        listed = {o["client_id"]: o for o in json.loads(fx.admin("client", "list", "--json").out)}
        self.assertEqual(listed[rs_id].get("serves"), "orders-api", listed[rs_id])
        self.assertFalse(listed[self.cid].get("serves"), listed[self.cid])
        bill_id, bill_secret = fx.add_client("billing-only", "orders:read", "billing-api")
        orders_tok = fx.token(self.other_id, self.other_secret)  # aud orders-api
        _, claims = st.jwt_parts(orders_tok)
        self.assertEqual(claims["aud"], "orders-api")
        billing_tok = fx.token(bill_id, bill_secret)             # aud billing-api
        self.assertEqual(st.jwt_parts(billing_tok)[1]["aud"], "billing-api")
        for name, resp in self.both("/oauth/introspect",
                                    ["-u", "%s:%s" % (rs_id, rs_secret), "--data-urlencode", "token=" + orders_tok],
                                    {"data": {"token": orders_tok}, "auth": (rs_id, rs_secret)}):
            with self.subTest(via=name):
                self.assertEqual(resp.status_code, 200, resp.text)
                body = resp.json()
                self.assertIs(body.get("active"), True, body)
                for k in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
                    self.assertEqual(body.get(k), claims[k], k)
        self.assertEqual(fx.introspect(rs_id, rs_secret, billing_tok).json(), {"active": False})
        # its own tokens it sees as any client does
        own = fx.token(rs_id, rs_secret)
        self.assertIs(fx.introspect(rs_id, rs_secret, own).json().get("active"), True)
        # an inactive token for orders-api: the resource server hears why
        self.assertEqual(fx.revoke(self.other_id, self.other_secret, orders_tok).status_code, 200)
        self.assertEqual(fx.introspect(rs_id, rs_secret, orders_tok).json(), {"active": False, "reason": "revoked"})
        # ... but not for billing-api
        self.assertEqual(fx.revoke(bill_id, bill_secret, billing_tok).status_code, 200)
        self.assertEqual(fx.introspect(rs_id, rs_secret, billing_tok).json(), {"active": False})

    def test_introspect_by_resource_server_expired_token(self):
        """The reason of an expired token for an audience the caller serves
        is told as for its own (the signature is ours)."""
        fx = self.fx
        rs_id, rs_secret = fx.add_client("orders-backend-2", "orders:introspect", "orders-api", serves="orders-api")
        tok = fx.token(self.short_id, self.short_secret)  # aud orders-api, 1 s
        exp = st.jwt_parts(tok)[1]["exp"]
        self.assertIs(fx.introspect(rs_id, rs_secret, tok).json().get("active"), True)
        time.sleep(max(0.0, exp + 1.1 - time.time()))
        self.assertEqual(fx.introspect(rs_id, rs_secret, tok).json(), {"active": False, "reason": "expired"})

    def test_public_client_cannot_introspect(self):
        fx = self.fx
        pub_id, _ = fx.add_signin_client("pub-spa", "https://app.example/cb", "orders:read", "orders-api")
        tok = fx.token(self.cid, self.secret)
        ip = st.fresh_ip()
        for data, auth in (({"token": tok, "client_id": pub_id}, None), ({"token": tok}, (pub_id, "")),
                           ({"token": tok, "client_id": pub_id, "client_secret": ""}, None)):
            with self.subTest(data=sorted(data), basic=auth is not None):
                r = fx.post("/oauth/introspect", source_ip=ip, data=data, auth=auth)
                body = self.assertOAuthError(r, 401, "invalid_client", www_basic=True)
                self.assertNotIn("active", body)

    def test_serves_on_a_public_client_is_refused(self):
        fx = self.fx
        r = fx.admin("client", "add", "pub-rs", "--public", "--redirect-uri", "https://app.example/cb",
                     "--scope", "orders:read", "--aud", "orders-api", "--serves", "orders-api", "--json")
        self.assertNotEqual(r.rc, 0, r)
        self.assertIn("--serves", r.err)
        self.assertIn("public", r.err)
        listed = json.loads(fx.admin("client", "list", "--json").out)
        self.assertNotIn("pub-rs", [o["client_id"] for o in listed])

    def test_introspect_needs_client_auth(self):
        fx = self.fx
        tok = fx.token(self.cid, self.secret)
        for name, resp in self.both("/oauth/introspect", ["--data-urlencode", "token=" + tok],
                                    {"data": {"token": tok}}):
            with self.subTest(via=name):
                body = self.assertOAuthError(resp, 401, "invalid_client", www_basic=True)
                self.assertNotIn("active", body)
        r = fx.introspect(self.ws_id, "wrong", tok, source_ip=st.fresh_ip())
        self.assertOAuthError(r, 401, "invalid_client", www_basic=True)
        r = fx.introspect(self.off_id, self.off_secret, tok)
        self.assertOAuthError(r, 401, "invalid_client", www_basic=True)
        r = fx.post("/oauth/introspect", data={}, auth=(self.cid, self.secret))
        self.assertOAuthError(r, 400, "invalid_request")
        self.assertEqual(fx.get("/oauth/introspect").status_code, 405)

    # -- discovery documents ---------------------------------------------------
    def test_jwks(self):
        fx = self.fx
        c = fx.curl("/.well-known/jwks.json")
        r = fx.get("/.well-known/jwks.json")
        for name, resp in (("curl", c), ("requests", r)):
            with self.subTest(via=name):
                self.assertEqual(resp.status_code, 200)
                cc = self.hdr(resp, "Cache-Control") or ""
                self.assertRegex(cc, r"(^|[ ,])max-age=\d+")
                self.assertNotIn("no-store", cc)
                self.assertTrue((self.hdr(resp, "Content-Type") or "").startswith(
                    ("application/jwk-set+json", "application/json")))
                keys = resp.json()["keys"]
                # per alg, the active key and the next one (published before
                # it signs): ES256 for access tokens, RS256 for ID tokens
                kids = [k["kid"] for k in keys]
                self.assertEqual(len(set(kids)), len(kids))
                self.assertEqual(sorted(k.get("alg") for k in keys), ["ES256", "ES256", "RS256", "RS256"])
                for k in keys:
                    if k["alg"] == "ES256":
                        self.assertEqual(k["kty"], "EC")
                        self.assertEqual(k["crv"], "P-256")
                    else:
                        self.assertEqual(k["kty"], "RSA")
                        self.assertGreaterEqual(len(tt.b64u_decode(k["n"])) * 8, 2048)
                    self.assertEqual(k.get("use"), "sig")
                    for private in ("d", "p", "q", "dp", "dq", "qi", "k"):
                        self.assertNotIn(private, k)
        kid, _ = st.jwt_parts(fx.token(self.cid, self.secret))[0]["kid"], None
        self.assertIn(kid, [k["kid"] for k in r.json()["keys"]])
        self.assertEqual(fx.post("/.well-known/jwks.json", data="x").status_code, 405)

    def test_metadata_rfc8414(self):
        fx = self.fx
        c = fx.curl("/.well-known/oauth-authorization-server")
        r = fx.get("/.well-known/oauth-authorization-server")
        for name, resp in (("curl", c), ("requests", r)):
            with self.subTest(via=name):
                self.assertEqual(resp.status_code, 200)
                self.assertTrue((self.hdr(resp, "Content-Type") or "").startswith("application/json"))
                m = resp.json()
                self.assertEqual(m["issuer"], fx.url)
                self.assertEqual(m["token_endpoint"], fx.url + "/oauth/token")
                self.assertEqual(m["jwks_uri"], fx.url + "/.well-known/jwks.json")
                self.assertEqual(m["revocation_endpoint"], fx.url + "/oauth/revoke")
                self.assertEqual(m["introspection_endpoint"], fx.url + "/oauth/introspect")
                self.assertIn("client_credentials", m["grant_types_supported"])
                self.assertNotIn("password", m["grant_types_supported"])
                self.assertIn("response_types_supported", m)
                # "none": public clients (PKCE) authenticate by client_id
                # alone at the token and revocation endpoints; never at
                # introspection.
                for k in ("token_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"):
                    self.assertEqual(sorted(m[k]), ["client_secret_basic", "client_secret_post", "none"], k)
                self.assertEqual(sorted(m["introspection_endpoint_auth_methods_supported"]),
                                 ["client_secret_basic", "client_secret_post"])
                # RFC 8414 section 2: no query or fragment in the issuer
                self.assertNotIn("?", m["issuer"])
                self.assertNotIn("#", m["issuer"])
        m = r.json()
        _, claims = st.jwt_parts(fx.token(self.cid, self.secret))
        self.assertEqual(claims["iss"], m["issuer"])
        # every advertised URL answers on this server
        self.assertEqual(fx.session().get(m["jwks_uri"], timeout=st.HTTP_TIMEOUT).status_code, 200)
        self.assertEqual(fx.session().post(m["token_endpoint"], data={"grant_type": "client_credentials"},
                                           auth=(self.cid, self.secret),
                                           timeout=st.HTTP_TIMEOUT).status_code, 200)
        if "service_documentation" in m:
            self.assertEqual(fx.session().get(m["service_documentation"], timeout=st.HTTP_TIMEOUT).status_code,
                             200)

    # -- misc ------------------------------------------------------------------
    def test_not_found_and_method_not_allowed(self):
        fx = self.fx
        for path in ("/", "/nope", "/oauth", "/oauth/token/", "/.well-known/", "/auth/x", "/AUTH"):
            c = fx.curl(path)
            r = fx.get(path)
            for name, resp in (("curl", c), ("requests", r)):
                with self.subTest(path=path, via=name):
                    self.assertEqual(resp.status_code, 404)
                    self.assertTrue(self.hdr(resp, "X-Request-Id"))
        for method, path, allow in (("GET", "/oauth/token", "POST"), ("PUT", "/oauth/token", "POST"),
                                    ("DELETE", "/oauth/revoke", "POST"), ("GET", "/oauth/introspect", "POST"),
                                    ("POST", "/.well-known/jwks.json", "GET"),
                                    ("POST", "/.well-known/oauth-authorization-server", "GET"),
                                    ("POST", "/healthz", "GET"), ("PUT", "/readyz", "GET")):
            c = fx.curl(path, "-X", method)
            r = fx.request(method, path)
            for name, resp in (("curl", c), ("requests", r)):
                with self.subTest(method=method, path=path, via=name):
                    self.assertEqual(resp.status_code, 405)
                    self.assertIn(allow, self.hdr(resp, "Allow") or "")

    def test_nul_in_path_is_not_truncated(self):
        """A percent-encoded NUL must not cut the path short: /healthz%00x
        is not /healthz (C-string truncation after URL decoding)."""
        fx = self.fx
        got = {}
        for path in ("/healthz%00x", "/errors/expired%00", "/errors/expired%00.html", "/auth%00",
                     "/.well-known/jwks.json%00.txt"):
            got[path] = fx.get(path).status_code
        wrong = {p: s for p, s in got.items() if s not in (400, 404)}
        self.assertEqual(wrong, {}, "paths with %00 must get 404 (or 400), not be routed as the path before "
                                    "the NUL")

    def test_health_and_ready(self):
        for path, text in (("/healthz", "ok"), ("/readyz", "ready")):
            c = self.fx.curl(path)
            r = self.fx.get(path)
            for name, resp in (("curl", c), ("requests", r)):
                with self.subTest(path=path, via=name):
                    self.assertEqual(resp.status_code, 200)
                    self.assertEqual(resp.text.strip(), text)

    def test_plain_http_to_https_port_fails(self):
        # an HTTPS server does not answer plain HTTP with a token or a 200
        import requests
        url = self.fx.url.replace("https://", "http://") + "/healthz"
        s = requests.Session()
        s.trust_env = False
        try:
            r = s.get(url, timeout=10)
            self.assertNotEqual(r.status_code, 200)
        except requests.exceptions.RequestException:
            pass


if __name__ == "__main__":
    st.main()
