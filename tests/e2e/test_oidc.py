# SPDX-License-Identifier: Apache-2.0
"""OpenID Connect provider tests against a real `tokend serve --dev`
(HTTPS), with a relying party written with Debian's python3-authlib and
every ID token checked by independent verifiers (PyJWT and jwcrypto).

What is where:
  Discovery     /.well-known/openid-configuration is the RFC 8414 document
                and has what OpenID Connect Discovery 1.0 section 3 asks
  IdToken       authlib's OAuth2Session does the code flow with PKCE and a
                nonce; authlib's CodeIDToken validates the claims; then each
                claim of OIDC Core sections 2 and 3.1.3.7 is checked again by
                hand, the signature by PyJWT and by jwcrypto with the JWKS,
                at_hash recomputed; the refresh grant's ID token; an ES256
                client; profile/email claims only with their scopes; userinfo;
                an ID token is not an access token at /auth
  Consent       shown for a third-party client (--consent), not for a
                first-party one; deny, allow, remembered, listed, revoked,
                prompt=consent, prompt=none without consent
  Errors        prompt=none without a session, max_age=0, prompt=login, a
                reused nonce, a code exchanged by another client,
                id_token_hint of another user or of nobody, logout with
                id_token_hint
  BackChannel   a relying party on 127.0.0.1 receives logout tokens (OIDC
                Back-Channel Logout 1.0 section 2.4) on logout, on refresh
                token reuse and on `tokend user disable --issuer`; a receiver
                answering 500 twice gets the token on the third attempt; one
                that always fails is tried 6 times over 31 s, then given up,
                counted and logged (the longest test here)

Run by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_oidc.py
"""

import base64
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import time
import unittest
from urllib.parse import parse_qs, urljoin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402

AUD = "orders-api"
API_SCOPE = "orders:read"
REDIRECT = "https://rp.example/cb"
AFTER_LOGOUT = "https://rp.example/bye"
PASSWORD = "correct horse battery staple"
OIDC_SCOPES = "openid profile email " + API_SCOPE
BCL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def at_hash(access_token, alg):
    """OIDC Core section 3.1.3.6: left half of the hash of the ASCII."""
    h = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    d = h(access_token.encode("ascii")).digest()
    return b64u(d[:len(d) // 2])


def new_nonce():
    return st.tt.b64u(os.urandom(16))


# ---------------------------------------------------------------------------
# a back-channel logout receiver (the relying party's side)

class BclReceiver:
    """http.server on 127.0.0.1: POST /bcl/NAME records the form body; the
    answer is the next status of plan[NAME] (the last one repeats; 200 when
    no plan)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.got = {}    # name -> [(monotonic time, status answered, form dict, headers)]
        self.plan = {}
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode("ascii", "replace")
                name = self.path.rsplit("/", 1)[-1]
                with rx.cond:
                    plan = rx.plan.get(name, [200])
                    status = plan.pop(0) if len(plan) > 1 else plan[0]
                    rx.got.setdefault(name, []).append(
                        (time.monotonic(), status, {k: v for k, v in parse_qs(body).items()},
                         dict(self.headers)))
                    rx.cond.notify_all()
                if status == "hang":  # read it, then answer nothing for longer than tokend waits
                    time.sleep(7)
                    status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = "http://127.0.0.1:%d/bcl/" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def uri(self, name, plan=None):
        if plan:
            self.plan[name] = list(plan)
        return self.base + name

    def wait(self, name, count=1, timeout=10.0):
        """The requests NAME received once there are `count` (or after
        timeout)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.got.get(name, [])) < count and time.monotonic() < deadline:
                self.cond.wait(0.1)
            return list(self.got.get(name, []))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# the server, shared by every class

class OidcCase(unittest.TestCase):
    fx = None

    @classmethod
    def setUpClass(cls):
        if OidcCase.fx is not None:
            return
        fx = st.ServerFixture(https=True, name="oidc")
        fx.start()
        OidcCase.fx = fx
        fx.meta = fx.metadata()
        fx.issuer = fx.meta["issuer"]
        fx.rx = BclReceiver()
        for u in ("alice", "bob", "carol", "dave", "erin", "frank"):
            fx.add_user(u, PASSWORD)
        r = fx.admin("user", "set", "alice", "--name", "Alice Liddell", "--given-name", "Alice",
                     "--email", "alice@example.com", "--email-verified", "yes")
        assert r.rc == 0, r
        fx.rp = cls.add_client(fx, "rp")
        fx.rp2 = cls.add_client(fx, "rp2")
        fx.es = cls.add_client(fx, "rp-es", "--id-token-alg", "ES256")
        fx.third = cls.add_client(fx, "Photo Printer", "--consent")
        fx.api_only, _ = fx.add_signin_client("api-only", REDIRECT, API_SCOPE, AUD)
        fx.jwks = fx.get("/.well-known/jwks.json").json()

    @staticmethod
    def add_client(fx, name, *extra):
        args = ["client", "add", name, "--json", "--public", "--redirect-uri", REDIRECT,
                "--redirect-uri", AFTER_LOGOUT, "--aud", AUD]
        for s in OIDC_SCOPES.split():
            args += ["--scope", s]
        r = fx.admin(*(args + list(extra)))
        if r.rc != 0:
            raise AssertionError("client add failed:\n%r" % r)
        return json.loads(r.out)["client_id"]

    # -- helpers -------------------------------------------------------------
    def browser(self, client_id=None, scope="openid " + API_SCOPE):
        b = st.SignInBrowser(self.fx, client_id or self.fx.rp, REDIRECT, scope=scope)
        self.addCleanup(b.close)
        return b

    def sign_in(self, b, user="alice", **over):
        """Signs in (nonce sent) and exchanges the code: the token JSON,
        with the nonce and the sign-in's wall time."""
        over.setdefault("nonce", new_nonce())
        t0 = time.time()
        got = b.sign_in(user, PASSWORD, **over)
        self.assertIn("code", got, got["location"])
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)
        o = r.json()
        o["_nonce"] = over["nonce"]
        o["_t0"] = t0
        self.fx.sensitive.add(o["id_token"])
        return o

    def verify_pyjwt(self, token, client_id, alg="RS256", **opts):
        import jwt
        key = self.fx.jwks_client().get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=[alg], audience=client_id, issuer=self.fx.issuer,
                          options={"require": ["iss", "sub", "aud", "exp", "iat"], **opts})

    def verify_jwcrypto(self, token, alg="RS256"):
        from jwcrypto import jwk, jws
        ks = jwk.JWKSet.from_json(json.dumps(self.fx.get("/.well-known/jwks.json").json()))
        obj = jws.JWS()
        obj.deserialize(token)
        kid = obj.jose_header.get("kid")
        key = ks.get_key(kid)
        self.assertIsNotNone(key, "kid %r is not in the JWKS" % kid)
        obj.verify(key, alg=alg)  # raises InvalidJWSSignature
        return json.loads(obj.payload)

    def check_id_token(self, tok, client_id, access_token, nonce=None, alg="RS256", t0=None):
        """OIDC Core sections 2 and 3.1.3.7, every claim, independently."""
        h, c = st.jwt_parts(tok)
        self.assertEqual(h.get("typ"), "JWT", h)
        self.assertEqual(h.get("alg"), alg, h)
        kids = {k.get("kid"): k for k in self.fx.get("/.well-known/jwks.json").json()["keys"]}
        self.assertIn(h.get("kid"), kids, "kid not in the JWKS")
        self.assertEqual(kids[h["kid"]].get("alg", alg), alg)
        self.assertEqual(self.verify_pyjwt(tok, client_id, alg), c)
        self.assertEqual(self.verify_jwcrypto(tok, alg), c)
        now = time.time()
        self.assertEqual(c["iss"], self.fx.issuer)
        self.assertEqual(c["iss"], self.fx.meta["issuer"])
        aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
        self.assertIn(client_id, aud)
        self.assertEqual(c.get("azp"), client_id)  # section 2: azp when present is the client
        self.assertIsInstance(c["sub"], str)
        self.assertTrue(0 < len(c["sub"]) <= 255)
        self.assertGreater(c["exp"], now)
        self.assertLessEqual(c["iat"], now + 1)
        self.assertIsInstance(c["auth_time"], int)
        self.assertLessEqual(c["auth_time"], c["iat"])
        if t0 is not None:
            self.assertGreaterEqual(c["auth_time"], int(t0) - 1)
            self.assertLessEqual(c["auth_time"], now + 1)
        if nonce is None:
            self.assertNotIn("nonce", c)
        else:
            self.assertEqual(c.get("nonce"), nonce)
        self.assertTrue(c.get("sid"), "no sid (Front/Back-Channel Logout)")
        _, ac = st.jwt_parts(access_token)
        self.assertEqual(c["sid"], ac.get("sid"))
        self.assertEqual(c["sub"], ac.get("sub"))
        self.assertEqual(c.get("at_hash"), at_hash(access_token, alg))
        return h, c


# ---------------------------------------------------------------------------

class Discovery(OidcCase):
    def test_openid_configuration_equals_rfc8414_metadata(self):
        r = self.fx.get("/.well-known/openid-configuration")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        m = r.json()
        self.assertEqual(m, self.fx.metadata())
        self.assertEqual(m["issuer"], self.fx.url)
        for k, path in (("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                        ("userinfo_endpoint", "/userinfo"), ("jwks_uri", "/.well-known/jwks.json"),
                        ("end_session_endpoint", "/logout")):
            self.assertEqual(m.get(k), self.fx.url + path, k)
        self.assertIn("openid", m["scopes_supported"])
        for c in ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
                  "name", "email", "email_verified"):
            self.assertIn(c, m["claims_supported"])
        self.assertIn("RS256", m["id_token_signing_alg_values_supported"])
        self.assertIn("ES256", m["id_token_signing_alg_values_supported"])
        self.assertNotIn("none", m["id_token_signing_alg_values_supported"])
        self.assertEqual(m["subject_types_supported"], ["public"])
        self.assertEqual(m["response_types_supported"], ["code"])
        self.assertEqual(m["code_challenge_methods_supported"], ["S256"])
        self.assertTrue(m.get("backchannel_logout_supported"))
        self.assertTrue(m.get("backchannel_logout_session_supported"))
        # every advertised ID token alg has a key in the JWKS
        algs = {k.get("alg") for k in self.fx.get(m["jwks_uri"].replace(self.fx.url, "")).json()["keys"]}
        for a in m["id_token_signing_alg_values_supported"]:
            self.assertIn(a, algs)


class IdToken(OidcCase):
    def test_authlib_relying_party_code_flow(self):
        """A relying party with authlib: OAuth2Session makes the request
        (PKCE S256, state, nonce) and redeems the code; CodeIDToken
        validates the ID token with the JWKS; then every claim again."""
        from authlib.integrations.requests_client import OAuth2Session
        from authlib.jose import JsonWebKey, jwt
        from authlib.oidc.core import CodeIDToken

        fx = self.fx
        rp = OAuth2Session(fx.rp, scope="openid profile email", redirect_uri=REDIRECT,
                           code_challenge_method="S256", token_endpoint_auth_method="none")
        rp.trust_env = False
        rp.verify = fx.cert
        self.addCleanup(rp.close)
        verifier = st.tt.b64u(os.urandom(40))
        nonce = new_nonce()
        url, state = rp.create_authorization_url(fx.meta["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce)
        # the user's browser
        b = self.browser()
        r = b.s.get(url, allow_redirects=False, timeout=st.HTTP_TIMEOUT)
        self.assertEqual(r.status_code, 200, r.text[:500])
        b.last_page_url = url
        t0 = time.time()
        r = b.post_login(st.login_form(st.parse_page(r.text)), "alice", PASSWORD)
        self.assertIn(r.status_code, (302, 303), r.text[:500])
        loc = r.headers["Location"]
        q = st.query_params(loc)
        self.assertEqual(q.get("state"), state)
        self.assertEqual(q.get("iss"), fx.issuer)  # RFC 9207
        token = rp.fetch_token(fx.meta["token_endpoint"], authorization_response=loc, code_verifier=verifier)
        fx.sensitive.update([token["access_token"], token["refresh_token"], token["id_token"]])
        self.assertEqual(token["token_type"].lower(), "bearer")
        keys = JsonWebKey.import_key_set(fx.get("/.well-known/jwks.json").json())
        claims = jwt.decode(token["id_token"], keys, claims_cls=CodeIDToken,
                            claims_options={"iss": {"essential": True, "value": fx.issuer}},
                            claims_params={"nonce": nonce, "client_id": fx.rp,
                                           "access_token": token["access_token"]})
        claims.validate()  # iss, sub, aud, exp, iat, auth_time, nonce, azp, at_hash
        self.assertEqual(claims["sub"], "alice")
        self.assertEqual(claims.header["alg"], "RS256")
        self.check_id_token(token["id_token"], fx.rp, token["access_token"], nonce=nonce, t0=t0)
        # profile and email were asked for: their claims are there
        self.assertEqual(claims["name"], "Alice Liddell")
        self.assertEqual(claims["email"], "alice@example.com")
        self.assertIs(claims["email_verified"], True)
        # the RP's userinfo call
        ui = rp.get(fx.meta["userinfo_endpoint"])
        self.assertEqual(ui.status_code, 200, ui.text)
        self.assertEqual(ui.json()["sub"], claims["sub"])
        self.assertEqual(ui.json()["email"], "alice@example.com")

    def test_every_claim_and_refresh_id_token(self):
        b = self.browser()
        t = self.sign_in(b, "bob")
        _, c = self.check_id_token(t["id_token"], self.fx.rp, t["access_token"], nonce=t["_nonce"], t0=t["_t0"])
        self.assertEqual(c["sub"], "bob")
        # no profile/email scope: no such claims (bob has no profile anyway)
        for k in ("name", "email", "email_verified"):
            self.assertNotIn(k, c)
        time.sleep(1.1)  # so that a new iat shows
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=self.fx.rp)
        self.assertEqual(r.status_code, 200, r.text)
        t2 = r.json()
        self.assertIn("id_token", t2)
        self.fx.sensitive.add(t2["id_token"])
        _, c2 = self.check_id_token(t2["id_token"], self.fx.rp, t2["access_token"], nonce=None)
        # OIDC Core section 12.2
        self.assertEqual(c2["sub"], c["sub"])
        self.assertEqual(c2["auth_time"], c["auth_time"])
        self.assertEqual(c2["sid"], c["sid"])
        self.assertGreater(c2["iat"], c["iat"])
        self.assertNotIn("nonce", c2)

    def test_profile_and_email_claims_only_with_their_scopes(self):
        for scope, want, absent in (("openid", (), ("name", "given_name", "email", "email_verified")),
                                    ("openid profile", ("name", "given_name"), ("email", "email_verified")),
                                    ("openid email", ("email", "email_verified"), ("name", "given_name"))):
            with self.subTest(scope):
                b = self.browser(scope=scope)
                t = self.sign_in(b, "alice")
                _, c = self.check_id_token(t["id_token"], self.fx.rp, t["access_token"], nonce=t["_nonce"])
                for k in want:
                    self.assertIn(k, c)
                for k in absent:
                    self.assertNotIn(k, c)
                ui = self.fx.get("/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
                self.assertEqual(ui.status_code, 200, ui.text)
                for k in want:
                    self.assertEqual(ui.json().get(k), c[k])
                for k in absent:
                    self.assertNotIn(k, ui.json())

    def test_es256_client_gets_es256_id_tokens(self):
        b = self.browser(client_id=self.fx.es)
        t = self.sign_in(b, "alice")
        self.check_id_token(t["id_token"], self.fx.es, t["access_token"], nonce=t["_nonce"], alg="ES256")
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=self.fx.es)
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(st.jwt_parts(r.json()["id_token"])[0]["alg"], "ES256")

    def test_no_id_token_without_openid(self):
        b = self.browser(scope=API_SCOPE)
        got = b.sign_in("alice", PASSWORD)
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)
        self.assertNotIn("id_token", r.json())
        # and its access token does not open /userinfo (openid is needed)
        ui = self.fx.get("/userinfo", headers={"Authorization": "Bearer " + r.json()["access_token"]})
        self.assertIn(ui.status_code, (401, 403), ui.text)
        ch = st.parse_challenge(ui.headers.get("WWW-Authenticate"))
        self.assertEqual(ch.get("error"), "insufficient_scope" if ui.status_code == 403 else "invalid_token")

    def test_userinfo(self):
        b = self.browser(scope="openid profile email")
        t = self.sign_in(b, "alice")
        for method in ("GET", "POST"):
            ui = self.fx.request(method, "/userinfo", headers={"Authorization": "Bearer " + t["access_token"]})
            self.assertEqual(ui.status_code, 200, ui.text)
            o = ui.json()
            self.assertEqual(o["sub"], "alice")
            self.assertEqual(o["name"], "Alice Liddell")
            self.assertEqual(o["email"], "alice@example.com")
            self.assertIs(o["email_verified"], True)
        ui = self.fx.get("/userinfo")
        self.assertEqual(ui.status_code, 401, ui.text)

    def test_id_token_is_not_an_access_token(self):
        b = self.browser()
        t = self.sign_in(b, "alice")
        # for the API's audience it fails on aud; for its own client's on typ
        r = self.fx.auth(t["id_token"], aud=AUD)
        self.assertEqual(r.status_code, 401, r.text)
        r = self.fx.auth(t["id_token"], aud=self.fx.rp)
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "wrong_token_type", dict(r.headers))
        ui = self.fx.get("/userinfo", headers={"Authorization": "Bearer " + t["id_token"]})
        self.assertEqual(ui.status_code, 401, ui.text)
        # the access token itself works
        self.assertEqual(self.fx.auth(t["access_token"], aud=AUD, scope=API_SCOPE).status_code, 200)


# ---------------------------------------------------------------------------

def consent_page(tc, r):
    tc.assertEqual(r.status_code, 200, "%s %s" % (r.headers.get("Location"), r.text[:500]))
    page = st.parse_page(r.text)
    tc.assertIn("Allow access?", page.text)
    for f in page.forms:
        if any(i["name"] == "decision" for i in f["inputs"]):
            return page, f
    raise AssertionError("no consent form: %r" % page.text[:500])


def decide(b, form, decision):
    data = st.hidden_fields(form)
    data["decision"] = decision
    action = urljoin(b.last_page_url, form["action"])
    return b.s.post(action, data=data, allow_redirects=False, timeout=st.HTTP_TIMEOUT)


class Consent(OidcCase):
    SCOPE = "openid email " + API_SCOPE

    def consents(self, user):
        r = self.fx.admin("user", "consents", user, "--json")
        self.assertEqual(r.rc, 0, r)
        return json.loads(r.out)

    def test_first_party_no_page(self):
        b = self.browser()
        got = b.sign_in("carol", PASSWORD, nonce=new_nonce())
        self.assertIn("code", got)
        # ...unless the application asks (OpenID Connect Core 3.1.2.1)
        r = b.authorize(nonce=new_nonce(), prompt="consent")
        page, cf = consent_page(self, r)
        r = decide(b, cf, "allow")
        self.assertIn("code", st.query_params(r.headers["Location"]))

    def test_third_party_deny_allow_remember_revoke(self):
        fx = self.fx
        b = self.browser(client_id=fx.third, scope=self.SCOPE)
        _, form = b.login_page(nonce=new_nonce())
        r = b.post_login(form, "dave", PASSWORD)
        page, cf = consent_page(self, r)
        self.assertIn("Photo Printer", page.text)
        self.assertIn("dave", page.text)
        for words in ("Know who you are", "e-mail address", "orders:read"):
            self.assertIn(words, page.text)
        # Deny
        r = decide(b, cf, "deny")
        self.assertIn(r.status_code, (302, 303))
        q = st.query_params(r.headers["Location"])
        self.assertEqual(q.get("error"), "access_denied", q)
        self.assertEqual(q.get("state"), b.state)
        self.assertEqual(q.get("iss"), fx.issuer)
        self.assertNotIn("code", q)
        self.assertEqual([c for c in self.consents("dave") if c.get("client_id") == fx.third], [])
        # prompt=none: no consent yet
        r = b.authorize(prompt="none", nonce=new_nonce())
        self.assertEqual(r.status_code, 302, r.text[:300])
        self.assertEqual(st.query_params(r.headers["Location"]).get("error"), "consent_required")
        # again, with the session: the page without the password; Allow
        r = b.authorize(nonce=new_nonce())
        _, cf = consent_page(self, r)
        r = decide(b, cf, "allow")
        self.assertIn(r.status_code, (302, 303), r.text[:300])
        got = b.redirect_result(r)
        self.assertIn("code", got, got["location"])
        self.assertEqual(got["state"], b.state)
        t = b.exchange(got["code"], got["verifier"])
        self.assertEqual(t.status_code, 200, t.text)
        self.assertIn("id_token", t.json())
        # remembered: next time straight to the code, and prompt=none works
        self.assertIn("code", b.code_with_session(nonce=new_nonce()))
        self.assertIn("code", b.code_with_session(nonce=new_nonce(), prompt="none"))
        # a narrower scope is covered by what was allowed
        self.assertIn("code", b.code_with_session(nonce=new_nonce(), scope="openid"))
        # a wider one asks again
        r = b.authorize(nonce=new_nonce(), scope=self.SCOPE + " profile")
        consent_page(self, r)
        # listed
        mine = [c for c in self.consents("dave") if c.get("client_id") == fx.third]
        self.assertEqual(len(mine), 1, self.consents("dave"))
        self.assertEqual(set(mine[0].get("scope", "").split()), set(self.SCOPE.split()))
        # prompt=consent shows it again
        r = b.authorize(nonce=new_nonce(), prompt="consent")
        consent_page(self, r)
        # revoked: the page shows again
        r = fx.admin("user", "consents", "dave", "--revoke", fx.third)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([c for c in self.consents("dave") if c.get("client_id") == fx.third], [])
        r = b.authorize(nonce=new_nonce())
        consent_page(self, r)
        r = b.authorize(nonce=new_nonce(), prompt="none")
        self.assertEqual(st.query_params(r.headers["Location"]).get("error"), "consent_required")
        # revoking what is not there fails
        r = fx.admin("user", "consents", "dave", "--revoke", fx.third)
        self.assertNotEqual(r.rc, 0, r)


# ---------------------------------------------------------------------------

class Errors(OidcCase):
    def assert_redirect_error(self, r, error, b, contains=None):
        self.assertEqual(r.status_code, 302, r.text[:500])
        loc = r.headers["Location"]
        self.assertEqual(st.strip_query(loc), REDIRECT)
        q = st.query_params(loc)
        self.assertEqual(q.get("error"), error, loc)
        self.assertEqual(q.get("state"), b.state, loc)
        self.assertEqual(q.get("iss"), self.fx.issuer, loc)
        self.assertNotIn("code", q)
        if contains:
            self.assertIn(contains, q.get("error_description", ""), loc)
        return q

    def test_prompt_none_without_a_session_login_required(self):
        b = self.browser()
        r = b.authorize(prompt="none", nonce=new_nonce())
        self.assert_redirect_error(r, "login_required", b)

    def test_unknown_prompt_and_bad_max_age_invalid_request(self):
        b = self.browser()
        for over in ({"prompt": "sometimes"}, {"prompt": "none login"}, {"max_age": "-1"}, {"max_age": "soon"}):
            with self.subTest(**over):
                self.assert_redirect_error(b.authorize(**over), "invalid_request", b)

    def test_max_age_0_signs_in_again_with_fresh_auth_time(self):
        b = self.browser()
        t = self.sign_in(b, "erin")
        _, c1 = st.jwt_parts(t["id_token"])
        time.sleep(1.1)
        # a signed-in user gets the sign-in page again
        r, form = b.login_page(max_age="0", nonce=new_nonce())
        nonce = st.query_params(b.last_page_url)["nonce"]
        t0 = time.time()
        r = b.post_login(form, "erin", PASSWORD)
        got = b.redirect_result(r)
        self.assertIn("code", got, got["location"])
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)
        t2 = r.json()
        _, c2 = self.check_id_token(t2["id_token"], self.fx.rp, t2["access_token"], nonce=nonce, t0=t0)
        self.assertGreater(c2["auth_time"], c1["auth_time"])
        self.assertGreaterEqual(c2["auth_time"], int(t0))
        # a generous max_age: the session is enough
        self.assertIn("code", b.code_with_session(max_age="3600", nonce=new_nonce()))

    def test_prompt_login_shows_the_sign_in_page(self):
        b = self.browser()
        self.sign_in(b, "erin")
        b.login_page(prompt="login", nonce=new_nonce())
        # prompt=none and a live session: a code at once
        self.assertIn("code", b.code_with_session(prompt="none", nonce=new_nonce()))

    def test_reused_nonce_invalid_request(self):
        b = self.browser()
        nonce = new_nonce()
        self.sign_in(b, "erin", nonce=nonce)
        r = b.authorize(nonce=nonce)
        self.assert_redirect_error(r, "invalid_request", b, contains="nonce")
        # another client may use the same nonce
        b2 = self.browser(client_id=self.fx.rp2)
        self.assertIn("code", b2.sign_in("erin", PASSWORD, nonce=nonce))

    def test_code_exchanged_by_another_client_invalid_grant(self):
        b = self.browser()
        got = b.sign_in("erin", PASSWORD, nonce=new_nonce())
        r = b.exchange(got["code"], got["verifier"], client_id=self.fx.rp2)
        self.assertEqual(r.status_code, 400, r.text)
        self.assertEqual(st.oauth_error(r), "invalid_grant", r.text)
        # and it did not spend the code
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)

    def test_id_token_hint_of_another_user(self):
        other = self.browser()
        bob = self.sign_in(other, "bob")
        b = self.browser()
        alice = self.sign_in(b, "alice")
        # her own hint: a code at once
        self.assertIn("code", b.code_with_session(id_token_hint=alice["id_token"], nonce=new_nonce()))
        # bob's: the sign-in page, naming him
        r, form = b.login_page(id_token_hint=bob["id_token"], nonce=new_nonce())
        self.assertIn("bob", r.text)
        r = b.authorize(id_token_hint=bob["id_token"], prompt="none", nonce=new_nonce())
        self.assert_redirect_error(r, "login_required", b)

    def test_garbage_id_token_hint_invalid_request(self):
        b = self.browser()
        _, c = st.jwt_parts(self.sign_in(b, "alice")["id_token"])
        key = st.tt.new_key("RS256", kid="forged")
        forged = key.token(c, kid=True)
        for what, hint in (("not a JWT", "garbage"), ("three dots", "a.b.c"), ("forged", forged)):
            with self.subTest(what):
                r = b.authorize(id_token_hint=hint, nonce=new_nonce())
                self.assert_redirect_error(r, "invalid_request", b)

    def test_logout_with_id_token_hint_no_question(self):
        b = self.browser()
        t = self.sign_in(b, "frank")
        state = st.random_state()
        r = b.logout("GET", id_token_hint=t["id_token"], post_logout_redirect_uri=AFTER_LOGOUT, state=state)
        self.assertEqual(r.status_code, 303, r.text[:500])
        loc = r.headers["Location"]
        self.assertEqual(st.strip_query(loc), AFTER_LOGOUT)
        self.assertEqual(st.query_params(loc).get("state"), state)
        # signed out: tokens revoked, the session is gone
        a = self.fx.auth(t["access_token"], aud=AUD, scope=API_SCOPE)
        self.assertEqual(a.status_code, 401)
        self.assertEqual(a.headers.get("X-Auth-Reason"), "revoked")
        b.login_page(nonce=new_nonce())

    def test_logout_with_another_sign_ins_hint_asks(self):
        b = self.browser()
        old = self.sign_in(b, "frank")
        # a second sign-in of the same user: the old hint names another sid
        b.login_page(prompt="login", nonce=new_nonce())
        b2 = self.browser()
        self.sign_in(b2, "frank")
        r = b2.logout("GET", id_token_hint=old["id_token"], post_logout_redirect_uri=AFTER_LOGOUT)
        self.assertEqual(r.status_code, 200, r.text[:300])
        self.assertIn("Sign out?", st.parse_page(r.text).text)


# ---------------------------------------------------------------------------

class BackChannel(OidcCase):
    def bcl_client(self, name, plan=None):
        uri = self.fx.rx.uri(name, plan)
        return self.add_client(self.fx, "bcl-" + name, "--backchannel-logout-uri", uri)

    def counters(self):
        m = self.fx.metrics()
        return {k: st.metric(m, "tokend_backchannel_logout_total", result=k) for k in ("delivered", "retry", "failed")}

    def check_logout_token(self, form, client_id, sub, sid):
        """Back-Channel Logout 1.0 section 2.4, independently verified."""
        self.assertEqual(list(form), ["logout_token"], form)
        self.assertEqual(len(form["logout_token"]), 1)
        tok = form["logout_token"][0]
        h, c = st.jwt_parts(tok)
        self.assertEqual(h.get("typ"), "logout+jwt")
        self.assertEqual(self.verify_pyjwt(tok, client_id, h["alg"], require=["iss", "aud", "iat", "jti"]), c)
        self.assertEqual(self.verify_jwcrypto(tok, h["alg"]), c)
        self.assertEqual(c["iss"], self.fx.issuer)
        aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
        self.assertIn(client_id, aud)
        self.assertLessEqual(c["iat"], time.time() + 1)
        self.assertGreater(c["iat"], time.time() - 120)
        self.assertTrue(c.get("jti"))
        self.assertEqual(c.get("sid"), sid)
        self.assertEqual(c.get("sub"), sub)
        self.assertEqual(c.get("events"), {BCL_EVENT: {}})
        self.assertNotIn("nonce", c)  # section 2.4: prohibited
        return c

    def test_logout_sends_a_logout_token(self):
        cid = self.bcl_client("logout")
        b = self.browser(client_id=cid)
        t = self.sign_in(b, "alice")
        _, idc = st.jwt_parts(t["id_token"])
        before = self.counters()
        # the "Sign out?" page's form (POST with its CSRF field)
        r = b.logout("GET")
        self.assertEqual(r.status_code, 200)
        r = b.confirm_logout(r)
        self.assertEqual(r.status_code, 200, r.text[:300])
        got = self.fx.rx.wait("logout", 1, timeout=10)
        self.assertEqual(len(got), 1, got)
        _, status, form, headers = got[0]
        self.assertTrue(headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"))
        self.check_logout_token(form, cid, "alice", idc["sid"])
        after, _ = st.wait_for(lambda: (lambda c: c if c["delivered"] > before["delivered"] else None)(
            self.counters()), 5)
        self.assertIsNotNone(after)
        self.assertEqual(after["delivered"] - before["delivered"], 1)
        time.sleep(0.5)
        self.assertEqual(len(self.fx.rx.got["logout"]), 1)  # once

    def test_logout_with_id_token_hint_sends_a_logout_token(self):
        cid = self.bcl_client("hint")
        b = self.browser(client_id=cid)
        t = self.sign_in(b, "bob")
        r = b.logout("GET", id_token_hint=t["id_token"])
        self.assertEqual(r.status_code, 200, r.text[:300])
        self.assertIn("You are signed out.", st.parse_page(r.text).text)
        got = self.fx.rx.wait("hint", 1)
        self.assertEqual(len(got), 1)
        self.check_logout_token(got[0][2], cid, "bob", st.jwt_parts(t["id_token"])[1]["sid"])

    def test_failing_receiver_retried_then_delivered(self):
        cid = self.bcl_client("flaky", plan=[500, 500, 200])
        b = self.browser(client_id=cid)
        t = self.sign_in(b, "carol")
        before = self.counters()
        r = b.logout("GET", id_token_hint=t["id_token"])
        self.assertEqual(r.status_code, 200)
        got = self.fx.rx.wait("flaky", 3, timeout=15)
        self.assertEqual([g[1] for g in got], [500, 500, 200])
        gaps = [got[i + 1][0] - got[i][0] for i in range(2)]
        self.assertGreaterEqual(gaps[0], 0.9, gaps)   # 1 s
        self.assertLess(gaps[0], 2.0, gaps)
        self.assertGreaterEqual(gaps[1], 1.9, gaps)   # then 2 s
        self.assertLess(gaps[1], 3.5, gaps)
        # the same token each time (its jti lets the receiver see a repeat)
        self.assertEqual(len({g[2]["logout_token"][0] for g in got}), 1)
        self.check_logout_token(got[2][2], cid, "carol", st.jwt_parts(t["id_token"])[1]["sid"])
        after, _ = st.wait_for(lambda: (lambda c: c if c["delivered"] > before["delivered"] else None)(
            self.counters()), 5)
        self.assertEqual(after["retry"] - before["retry"], 2)
        self.assertEqual(after["delivered"] - before["delivered"], 1)
        self.assertEqual(after["failed"], before["failed"])

    def test_z_always_failing_receiver_retried_then_given_up(self):
        """6 attempts, 1, 2, 4, 8 and 16 s apart (31 s: the longest test
        here), then result="failed" and a warning in the log. Named to run
        last in its class, so that its retries fall into no other test's
        counter deltas."""
        cid = self.bcl_client("down", plan=[503])
        b = self.browser(client_id=cid)
        t = self.sign_in(b, "dave")
        before = self.counters()
        b.logout("GET", id_token_hint=t["id_token"])
        got = self.fx.rx.wait("down", 6, timeout=45)
        self.assertEqual([g[1] for g in got], [503] * 6)
        gaps = [got[i + 1][0] - got[i][0] for i in range(5)]
        for gap, want in zip(gaps, (1, 2, 4, 8, 16)):
            self.assertGreaterEqual(gap, want - 0.1, gaps)
            self.assertLess(gap, want + 1.5, gaps)
        self.assertEqual(len({g[2]["logout_token"][0] for g in got}), 1)
        after, _ = st.wait_for(lambda: (lambda c: c if c["failed"] > before["failed"] else None)(
            self.counters()), 5)
        self.assertIsNotNone(after, self.counters())
        self.assertEqual(after["failed"] - before["failed"], 1)
        self.assertEqual(after["retry"] - before["retry"], 5)
        self.assertEqual(after["delivered"], before["delivered"])
        time.sleep(1.5)
        self.assertEqual(len(self.fx.rx.got["down"]), 6)  # given up: no 7th
        log = self.fx.log_text()
        self.assertRegex(log, r"back-channel logout of sign-in \S+ to client %s: answered HTTP 503; retrying in 1s"
                         % cid)
        self.assertRegex(log, r"back-channel logout of sign-in \S+ to client %s \(%s\) failed 6 times, last: "
                         r"answered HTTP 503; given up" % (cid, re.escape(self.fx.rx.base + "down")))

    def test_refresh_token_reuse_sends_a_logout_token(self):
        cid = self.bcl_client("reuse")
        b = self.browser(client_id=cid)
        t = self.sign_in(b, "erin")
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=cid)
        self.assertEqual(r.status_code, 200, r.text)
        time.sleep(3.1)  # past flow.c's 2-second grace for concurrent use
        r = st.refresh_response(self.fx, t["refresh_token"], client_id=cid)
        self.assertEqual(r.status_code, 400, r.text)
        self.assertEqual(st.oauth_error(r), "invalid_grant")
        got = self.fx.rx.wait("reuse", 1)
        self.assertEqual(len(got), 1)
        self.check_logout_token(got[0][2], cid, "erin", st.jwt_parts(t["id_token"])[1]["sid"])

    def test_code_replay_sends_a_logout_token(self):
        cid = self.bcl_client("replay")
        b = self.browser(client_id=cid)
        got = b.sign_in("frank", PASSWORD, nonce=new_nonce())
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, r.text)
        sid = st.jwt_parts(r.json()["id_token"])[1]["sid"]
        r = b.exchange(got["code"], got["verifier"])
        self.assertEqual(st.oauth_error(r), "invalid_grant", r.text)
        got = self.fx.rx.wait("replay", 1)
        self.assertEqual(len(got), 1)
        self.check_logout_token(got[0][2], cid, "frank", sid)

    def test_one_logout_token_per_client_of_the_sign_in(self):
        c1, c2 = self.bcl_client("both-1"), self.bcl_client("both-2")
        b = self.browser(client_id=c1)
        t1 = self.sign_in(b, "alice")
        b.client_id = c2
        got = b.code_with_session(nonce=new_nonce())  # same browser session: same sid
        r = b.exchange(got["code"], got["verifier"], client_id=c2)
        self.assertEqual(r.status_code, 200, r.text)
        sid = st.jwt_parts(t1["id_token"])[1]["sid"]
        self.assertEqual(st.jwt_parts(r.json()["id_token"])[1]["sid"], sid)
        r = b.logout("GET", id_token_hint=r.json()["id_token"])
        self.assertEqual(r.status_code, 200, r.text[:300])
        for name, cid in (("both-1", c1), ("both-2", c2)):
            got = self.fx.rx.wait(name, 1)
            self.assertEqual(len(got), 1, name)
            self.check_logout_token(got[0][2], cid, "alice", sid)

    def test_a_hanging_receiver_delays_no_other(self):
        """Deliveries go out from several threads: a receiver that takes the
        POST and never answers (tokend gives up after 5 s) does not hold up
        the logout token of another application of the same sign-in."""
        c1, c2 = self.bcl_client("hang", plan=["hang", 200]), self.bcl_client("prompt")
        b = self.browser(client_id=c1)
        t1 = self.sign_in(b, "bob")
        b.client_id = c2
        got = b.code_with_session(nonce=new_nonce())
        r = b.exchange(got["code"], got["verifier"], client_id=c2)
        self.assertEqual(r.status_code, 200, r.text)
        t0 = time.monotonic()
        r = b.logout("GET", id_token_hint=t1["id_token"])
        self.assertEqual(r.status_code, 200, r.text[:300])
        got = self.fx.rx.wait("prompt", 1, timeout=10)
        self.assertEqual(len(got), 1)
        self.assertLess(got[0][0] - t0, 2.0, "a hanging receiver delayed another one's logout token")
        # the hung POST timed out (5 s) and was made again: let it land
        # here, not in the counters of a later test
        self.assertEqual(len(self.fx.rx.wait("hang", 2, timeout=15)), 2)
        time.sleep(0.5)

    def test_user_disable_sends_a_logout_token(self):
        fx = self.fx
        cid = self.bcl_client("disable")
        fx.add_user("gina", PASSWORD)
        b = self.browser(client_id=cid)
        t = self.sign_in(b, "gina")
        r = fx.admin("user", "disable", "gina", "--issuer", fx.issuer)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("1 delivered", r.out, r)
        got = fx.rx.wait("disable", 1)
        self.assertEqual(len(got), 1)
        self.check_logout_token(got[0][2], cid, "gina", st.jwt_parts(t["id_token"])[1]["sid"])
        # the server sees the CLI's revocation within its sync bound
        last, _ = st.wait_for(lambda: fx.auth(t["access_token"], aud=AUD, scope=API_SCOPE).headers.get(
            "X-Auth-Reason") == "revoked", 5)
        self.assertTrue(last, "the access token still works after user disable")


def tearDownModule():
    """Stops the shared server (its exit code is checked) and looks for a
    token or secret in its log."""
    fx = OidcCase.fx
    if fx is None:
        return
    OidcCase.fx = None
    log = fx.stderr() + fx.stdout()
    leaked = [s for s in fx.sensitive if s and s in log]
    fx.rx.close()
    fx.close()
    if leaked:
        raise AssertionError("%d tokens or secrets in the log" % len(leaked))


if __name__ == "__main__":
    st.main()
