# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of trusted external issuers on GET /auth (issue 10):
`tokend serve` fetches the key sets of configured issuers (Auth0, Entra v1
and v2, Okta, Keycloak, Google and plain RFC 8414 servers, all faked by
fakeidp.py over HTTPS on 127.0.0.1 with a throwaway CA), caches them,
refetches once per cool-down on an unknown kid, serves a stale set for a
bounded time when its issuer is down, skips keys it cannot use, and
explains every rejection.

Two servers: IssuerAuth (one tokend trusting every fake provider through a
--config file with [issuer ...] sections and trust-issuer lines, plus
nginx auth_request in front of it) and StaleIssuer (a tokend given its
issuers by --trust-issuer flags, with a 1 s minimum cache lifetime, a 4 s
--issuer-max-stale and a 2 s fetch time-out, for providers going down and
for Cache-Control lifetimes).

A 503 `unavailable` is not a challenge (no WWW-Authenticate): its
description is read from the access log line of its X-Request-Id.

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_issuers.py
"""

import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakeidp  # noqa: E402
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

import jwt  # noqa: E402

FETCH_WAIT = 1.0  # --issuer-fetch-wait
WAIT_MARGIN = 1.5  # what an ASan build may add to a bounded wait
COOLDOWN = 30  # --issuer-kid-cooldown (given in the environment)

AUTH0_AUD = "https://orders.example"
STRICT_AUD = "https://strict.example"
GOOGLE_CLIENT = "407408718192-3f7n2p1cbm8v0d2s4k6q8r0t1u3w5y7a.apps.googleusercontent.com"


def challenge(r):
    return st.parse_challenge(r.headers.get("WWW-Authenticate"))


def description(r):
    return challenge(r).get("error_description") or ""


def shown(value, limit=64):
    """How a description shows a kid: cut at 64 characters, with "..."."""
    return value if len(value) <= limit else value[:limit] + "..."


def issuers_named(text):
    """The https://127.0.0.1:PORT... URLs in a description."""
    return re.findall(r"https://127\.0\.0\.1:\d+[^\s,;()']*", text)


class IssuerBase(unittest.TestCase):
    fx = None

    def auth(self, token, aud=None, scope=None, iss=(), fx=None, timeout=st.HTTP_TIMEOUT):
        """GET /auth with Bearer TOKEN and ?aud= &scope= &iss= (repeatable)."""
        fx = fx or self.fx
        params = []
        if aud is not None:
            params.append(("aud", aud))
        if scope is not None:
            params.append(("scope", scope))
        for i in ([iss] if isinstance(iss, str) else iss):
            params.append(("iss", i))
        fx.sensitive.add(token)
        return fx.session().get(fx.url + "/auth", params=params, headers={"Authorization": "Bearer " + token},
                                timeout=timeout)

    def assertAccepted(self, r, subject, client_id, scope, issuer):
        self.assertEqual(r.status_code, 200, "%s %s" % (r.headers, self.fx.stderr()[-3000:]))
        self.assertNotIn("X-Auth-Reason", r.headers)
        self.assertNotIn("WWW-Authenticate", r.headers)
        self.assertEqual(r.headers.get("X-Auth-Subject"), subject, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Client-Id"), client_id, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Scope"), scope, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Issuer"), issuer, r.headers)

    def assertUnavailable(self, r, fx=None):
        """A 503 `unavailable`: X-Auth-Reason, no identity; a 503 is not a
        challenge (no WWW-Authenticate): its description is the `detail` of
        the request's access log line, found by X-Request-Id. Returns it."""
        fx = fx or self.fx
        self.assertEqual(r.status_code, 503, "%s\n%s" % (r.headers, fx.stderr()[-3000:]))
        self.assertEqual(r.headers.get("X-Auth-Reason"), "unavailable", r.headers)
        for h in ("X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope", "X-Auth-Issuer"):
            self.assertNotIn(h, r.headers)
        rid = r.headers.get("X-Request-Id")
        self.assertTrue(rid, r.headers)
        line = fx.log_for(rid)
        self.assertEqual(line.get("reason"), "unavailable", line)
        d = line.get("detail") or ""
        self.assertTrue(d, line)
        self.assertTrue(r.headers.get("Retry-After"), r.headers)
        return d

    def assertRejected(self, r, status, reason, error="invalid_token", fx=None):
        """A rejection per RFC 6750 section 3 with our reason code; returns
        the description."""
        fx = fx or self.fx
        self.assertEqual(r.status_code, status, "%s\n%s" % (r.headers, fx.stderr()[-3000:]))
        self.assertEqual(r.headers.get("X-Auth-Reason"), reason, r.headers)
        for h in ("X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scope", "X-Auth-Issuer"):
            self.assertNotIn(h, r.headers)
        ch = challenge(r)
        self.assertEqual(ch.scheme, "Bearer")
        self.assertEqual(ch.get("realm"), "tokend")
        if error is None:
            self.assertNotIn("error", ch.params, r.headers)
        else:
            self.assertEqual(ch.get("error"), error, r.headers)
        d = ch.get("error_description") or ""
        self.assertTrue(d, r.headers)
        return d


# ---------------------------------------------------------------------------
# nginx auth_request in front

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

    upstream tokend { server 127.0.0.1:%(tokend_port)d; keepalive 8; }
    upstream backend { server 127.0.0.1:%(backend_port)d; keepalive 4; }

    server {
        listen 127.0.0.1:%(port)d;
        auth_request_set $auth_subject $upstream_http_x_auth_subject;
        auth_request_set $auth_client $upstream_http_x_auth_client_id;
        auth_request_set $auth_scope $upstream_http_x_auth_scope;
        auth_request_set $auth_issuer $upstream_http_x_auth_issuer;
        auth_request_set $auth_reason $upstream_http_x_auth_reason;

        location /api/ {
            auth_request /_auth;
            error_page 401 = @unauth;
            proxy_set_header X-Auth-Subject $auth_subject;
            proxy_set_header X-Auth-Client-Id $auth_client;
            proxy_set_header X-Auth-Scope $auth_scope;
            proxy_set_header X-Auth-Issuer $auth_issuer;
            proxy_set_header Authorization "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
        location = /_auth {
            internal;
            # tokend's --dev certificate on loopback
            proxy_pass https://tokend/auth?aud=api%%3A%%2F%%2Fdefault&scope=orders.read&iss=%(okta)s;
            proxy_ssl_verify off;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
        location @unauth {
            add_header X-Auth-Reason $auth_reason always;
            return 401;
        }
    }
}
"""


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


# ---------------------------------------------------------------------------
# the main server: every provider shape and every rejection

class IssuerAuth(IssuerBase):
    @classmethod
    def setUpClass(cls):
        cls.td = tempfile.mkdtemp(prefix="tokend-idp-")
        cls.ca = fakeidp.TestCA(os.path.join(cls.td, "ca1"), "fakeidp CA one")
        cls.ca2 = fakeidp.TestCA(os.path.join(cls.td, "ca2"), "fakeidp CA two")
        cls.servers = []
        cls.fx = None
        cls.nginx = None
        cls.backend = None
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _set_up(cls):
        A = cls.srv = cls._server(cls.ca)
        P = fakeidp.Provider
        cls.auth0 = A.add(P("auth0", "/acme/"))
        cls.entra1 = A.add(P(fakeidp.EntraV1()))
        cls.entra2 = A.add(P(fakeidp.EntraV2()))
        cls.okta = A.add(P("okta", "/oauth2/default"))
        cls.keycloak = A.add(P("keycloak", "/realms/shop", max_age=None))
        cls.plain = A.add(P("generic", "/plain"))
        cls.strict = A.add(P("generic", "/strict", alg="PS256"))
        cls.r8414 = A.add(P("generic", "/as/tenant-7", discovery="rfc8414"))
        cls.rot = A.add(P("generic", "/rot"))
        cls.flood = A.add(P("generic", "/flood"))
        cls.slow = A.add(P("generic", "/slow"))
        cls.slowfirst = A.add(P("generic", "/slowfirst"))
        cls.dup_a = A.add(P("generic", "/dup-a", kids=["shared-2024"]))
        cls.dup_b = A.add(P("generic", "/dup-b", kids=["shared-2024"]))
        cls.weak = A.add(P("generic", "/weak"))
        cls.html = A.add(P("generic", "/html"))
        cls.huge = A.add(P("generic", "/huge"))
        cls.hugechunk = A.add(P("generic", "/hugechunk"))
        cls.redir = A.add(P("generic", "/redir"))
        cls.badiss = A.add(P("generic", "/badiss"))
        cls.httpjwks = A.add(P("generic", "/httpjwks"))
        cls.fixed = A.add(P("generic", "/fixed"))
        cls.stranger = A.add(P("generic", "/stranger"))  # never trusted
        # a second server, with a certificate of another CA, trusted only
        # through its section's ca-file: Google's shape (an issuer at the
        # root of its host); and one trusted without a CA for it
        B = cls.srv2 = cls._server(cls.ca2)
        cls.google = B.add(P("google", "/"))
        cls.untrusted_ca = B.add(P("generic", "/other"))

        # faults in place before tokend's first fetch
        cls.weak_key = cls.weak.add_weak_rsa("weak-rsa-1024", 1024)
        cls.html.fault(jwks_body="html")
        cls.huge.fault(jwks_body="huge")
        cls.hugechunk.fault(jwks_body="huge-chunked")  # no Content-Length to go by
        cls.redir.fault(jwks_redirect="http")
        cls.badiss.metadata_over["issuer"] = cls.badiss.issuer + "/"
        cls.httpjwks.metadata_over["jwks_uri"] = A.http_url + cls.httpjwks.jwks_path
        cls.slowfirst.fault(down="503")
        cls.flood.fault(slow=0.3)  # misses arriving during the refetch share it
        jwks_file = os.path.join(cls.td, "fixed-jwks.json")
        with open(jwks_file, "w") as f:
            json.dump(cls.fixed.jwks(), f)

        sections = [
            (cls.auth0, ["audience = %s" % AUTH0_AUD]),
            (cls.entra1, ["jwks-uri = %s" % cls.entra1.jwks_uri, "audience = api://orders",
                          "scope-claim = scp roles", "subject-claim = oid"]),
            (cls.okta, ["audience = api://default", "scope-claim = scp"]),
            (cls.strict, ["audience = %s" % STRICT_AUD, "algorithms = PS256", "require-typ = at+jwt",
                          "leeway = 0", "required-claims = sub client_id"]),
            (cls.plain, ["audience = https://plain.example https://plain-2.example"]),
            (cls.fixed, ["jwks-file = %s" % jwks_file, "audience = https://fixed.example"]),
            (cls.google, ["ca-file = %s" % cls.ca2.ca_pem, "audience = %s" % GOOGLE_CLIENT]),
        ]
        plain_trust = [cls.entra2, cls.keycloak, cls.r8414, cls.rot, cls.flood, cls.slow, cls.slowfirst,
                       cls.dup_a, cls.dup_b, cls.weak, cls.html, cls.huge, cls.hugechunk, cls.redir, cls.badiss,
                       cls.httpjwks,
                       cls.untrusted_ca]
        lines = ["# tokend serve --config for test_issuers.py",
                 "trust-ca-file = %s" % cls.ca.ca_pem,
                 "issuer-fetch-wait = 1s",
                 "issuer-fetch-timeout = 5s"]
        lines += ["trust-issuer = %s" % p.issuer for p in plain_trust]
        for p, body in sections:
            lines += ["", "[issuer %s]" % p.issuer] + body
        cls.trusted = [p.issuer for p, _ in sections] + [p.issuer for p in plain_trust]
        cls.config = os.path.join(cls.td, "tokend.conf")
        with open(cls.config, "w") as f:
            f.write("\n".join(lines) + "\n")

        cls.fx = st.ServerFixture(https=True, settings={"TOKEND_ISSUER_KID_COOLDOWN": "%ds" % COOLDOWN},
                                  extra=["--config", cls.config], name="issuers")
        cls.fx.start()
        cls.own_id, cls.own_secret = cls.fx.add_client("svc", "orders:read", "orders-api")
        # every issuer that can be fetched has its key set before the tests
        # count fetches: one valid token each, until accepted
        warm = [(cls.auth0, None), (cls.entra1, None), (cls.entra2, "6e74172b-be56-4843-9ff4-e66a39bb12e3"),
                (cls.okta, None), (cls.keycloak, "orders-api"), (cls.plain, "https://orders.example"),
                (cls.r8414, "https://orders.example"), (cls.rot, "https://orders.example"),
                (cls.flood, "https://orders.example"), (cls.slow, "https://orders.example"),
                (cls.dup_a, "https://orders.example"), (cls.dup_b, "https://orders.example"),
                (cls.weak, "https://orders.example"), (cls.google, None)]
        s = st.new_session(cls.fx.verify)
        for p, aud in warm:
            tok = p.mint()
            cls.fx.sensitive.add(tok)
            params = {"aud": aud} if aud else {}

            def ok():
                return s.get(cls.fx.url + "/auth", params=params, headers={"Authorization": "Bearer " + tok},
                             timeout=st.HTTP_TIMEOUT).status_code == 200
            good, _ = st.wait_for(ok, 30, 0.2)
            assert good, "%s: its tokens are not accepted\n%s" % (p.issuer, cls.fx.stderr()[-4000:])
        s.close()
        cls._start_nginx()

    @classmethod
    def _start_nginx(cls):
        """nginx auth_request in front of tokend, for a route of the Okta
        issuer; the backend echoes the headers it gets."""
        cls.backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        cls.backend.daemon_threads = True
        threading.Thread(target=cls.backend.serve_forever, daemon=True).start()
        d = os.path.join(cls.td, "nginx")
        port = st.free_port()
        from urllib.parse import quote
        conf = NGINX_CONF % {"user": "user root;" if os.geteuid() == 0 else "", "dir": d, "port": port,
                             "tokend_port": cls.fx.port, "backend_port": cls.backend.server_address[1],
                             "okta": quote(cls.okta.issuer, safe="")}
        cls.nginx = st.Nginx(d, conf, port).start()
        cls.nginx_base = "http://127.0.0.1:%d" % port

    @classmethod
    def _server(cls, ca):
        s = fakeidp.IdpServer(ca).start()
        cls.servers.append(s)
        return s

    @classmethod
    def tearDownClass(cls):
        if cls.nginx is not None:
            cls.nginx.stop()
        if cls.backend is not None:
            cls.backend.shutdown()
            cls.backend.server_close()
        try:
            if cls.fx is not None:
                cls.fx.close()
        finally:
            for s in cls.servers:
                s.close()
            import shutil
            shutil.rmtree(cls.td, ignore_errors=True)

    def metrics(self):
        return self.fx.metrics()

    def m(self, name, **labels):
        return st.metric(self.metrics(), name, **labels)

    # -- every provider shape accepted -------------------------------------------------
    def test_auth0(self):
        p = self.auth0
        tok = p.mint()
        self.assertTrue(p.issuer.endswith("/acme/"))
        # no ?aud=: the audience of the issuer's section
        r = self.auth(tok, scope="read:orders")
        self.assertAccepted(r, "q5Jx3mFhT1XlTq7VZSn0@clients", "q5Jx3mFhT1XlTq7VZSn0",
                            "read:orders write:orders", p.issuer)
        # an array audience (user tokens also name /userinfo)
        tok = p.mint({"aud": [AUTH0_AUD, p.issuer + "userinfo"], "sub": "auth0|65f1c0ffee",
                      "gty": None, "scope": "openid profile read:orders"})
        r = self.auth(tok)
        self.assertAccepted(r, "auth0|65f1c0ffee", "q5Jx3mFhT1XlTq7VZSn0", "openid profile read:orders", p.issuer)
        # the same issuer without its trailing slash is another issuer
        tok = p.mint({"iss": p.issuer.rstrip("/")})
        self.assertRejected(self.auth(tok), 401, "wrong_issuer")

    def test_entra_v1_jwks_uri_without_discovery(self):
        p = self.entra1
        tok = p.mint()
        # header as Entra's: typ JWT, x5t = kid; keys without alg (RS256)
        h = jwt.get_unverified_header(tok)
        self.assertEqual(h["x5t"], h["kid"])
        self.assertNotIn("alg", p.jwks()["keys"][0])
        r = self.auth(tok, scope="Orders.Read")
        # subject-claim = oid; client id from appid (no client_id, no azp)
        self.assertAccepted(r, "a8d1c6b4-2f4e-4e0b-8d6b-6a2c1b7e9f01", "4f6a3c1e-5a8b-4c44-9d1d-0e6f3e2f9a10",
                            "Orders.Read Orders.Write", p.issuer)
        # an app-only token: application roles (an array) instead of scp
        tok = p.mint({"scp": None, "roles": ["Orders.Read.All", "Orders.Write.All"]})
        r = self.auth(tok, scope="Orders.Write.All")
        self.assertEqual(r.status_code, 200, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Scope"), "Orders.Read.All Orders.Write.All")
        # jwks-uri given: discovery never asked
        self.assertEqual(p.discovery_count(), 0)
        self.assertGreaterEqual(p.count("jwks"), 1)

    def test_entra_v2(self):
        p = self.entra2
        api = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
        tok = p.mint()
        self.assertTrue(p.issuer.endswith("/v2.0"))
        r = self.auth(tok, aud=api, scope="Orders.Read")
        self.assertAccepted(r, "mK2aB3yq9Zt7Q5sLx0vR4uW8nC1eD6fG2hJ9kL3pO7i", "c0ffee00-1b2c-4d5e-8f90-123456789abc",
                            "Orders.Read", p.issuer)
        # the default scope claims ("scope scp") find scp
        d = self.assertRejected(self.auth(tok, aud=api, scope="Orders.Write"), 403, "insufficient_scope",
                                error="insufficient_scope")
        self.assertIn("Orders.Write", d)
        # an api:// audience
        tok = p.mint({"aud": "api://orders"})
        self.assertEqual(self.auth(tok, aud="api://orders").status_code, 200)
        self.assertGreaterEqual(p.count("openid-configuration"), 1)

    def test_okta_scp_array(self):
        p = self.okta
        tok = p.mint()
        r = self.auth(tok, scope="orders.read")
        self.assertAccepted(r, "alice@example.com", "0oa1b2c3d4e5F6g7H8i9", "orders.read openid", p.issuer)
        d = self.assertRejected(self.auth(tok, scope="orders.write"), 403, "insufficient_scope",
                                error="insufficient_scope")
        self.assertIn("orders.write", d)
        self.assertIn("'scp'", d)  # which claim was looked at

    def test_keycloak_enc_key_skipped(self):
        p = self.keycloak
        kinds = [(k.get("use"), k.get("alg")) for k in p.jwks()["keys"]]
        self.assertEqual(kinds, [("sig", "RS256"), ("enc", "RSA-OAEP")])
        tok = p.mint()
        r = self.auth(tok, aud="orders-api", scope="orders:read")
        self.assertAccepted(r, "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "orders-web",
                            "openid profile email orders:read", p.issuer)
        # the encryption key is not a verification key: skipped, named in the log
        self.assertEqual(self.m("tokend_issuer_keys", issuer=p.issuer), 1.0)
        log = self.fx.log_text()
        lines = [ln for ln in log.splitlines() if p.issuer in ln and p.enc_kid in ln]
        self.assertTrue(lines, log[-3000:])
        self.assertIn("enc", lines[0])
        # a token naming the encryption key's kid is not verified with it
        tok = p.mint(kid=p.enc_kid, key=p.keys[p.kid])
        d = self.assertRejected(self.auth(tok, aud="orders-api"), 401, "unknown_key")
        self.assertEqual(len(p.kid), 43)  # Keycloak's kids: base64url SHA-256 thumbprints
        self.assertIn("keys '%s'" % shown(p.kid), d)
        self.assertIn("kid '%s'" % shown(p.enc_kid), d)

    def test_google_root_issuer_with_section_ca(self):
        p = self.google
        self.assertEqual(p.issuer, p.base)  # no path, no trailing slash
        tok = p.mint()
        r = self.auth(tok)  # the audience (the client id) from the section
        self.assertEqual(r.status_code, 200, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Subject"), "110248495921238986420")
        self.assertEqual(r.headers.get("X-Auth-Client-Id"), GOOGLE_CLIENT)
        self.assertEqual(r.headers.get("X-Auth-Issuer"), p.issuer)
        self.assertNotIn("X-Auth-Scope", r.headers)  # an ID token: no scopes
        # an ID token of another client of the same issuer
        tok = p.mint({"aud": "999-other.apps.googleusercontent.com"})
        d = self.assertRejected(self.auth(tok), 401, "wrong_audience")
        self.assertIn("999-other.apps.googleusercontent.com", d)
        self.assertIn(GOOGLE_CLIENT[:48], d)  # (long values are cut, with "...")

    def test_rfc8414_only(self):
        p = self.r8414
        r = self.auth(p.mint(), aud="https://orders.example")
        self.assertAccepted(r, "user-1", "generic-client", "orders:read", p.issuer)
        # the OpenID address answered 404, then RFC 8414's was read
        self.assertGreaterEqual(self.srv.count("/as/tenant-7/.well-known/openid-configuration"), 1)
        self.assertGreaterEqual(p.count("oauth-authorization-server"), 1)

    def test_fixed_jwks_file_never_fetched(self):
        p = self.fixed
        r = self.auth(p.mint({"aud": "https://fixed.example"}))
        self.assertAccepted(r, "user-1", "generic-client", "orders:read", p.issuer)
        d = self.assertRejected(self.auth(p.mint(kid="not-in-file", key=p.keys[p.kid],
                                                 claims={"aud": "https://fixed.example"})), 401, "unknown_key")
        self.assertIn("not-in-file", d)
        self.assertIn(p.kid, d)
        self.assertEqual(p.count("jwks") + p.discovery_count(), 0)

    def test_own_tokens_alongside(self):
        tok = self.fx.token(self.own_id, self.own_secret)
        r = self.auth(tok, aud="orders-api", scope="orders:read")
        self.assertAccepted(r, self.own_id, self.own_id, "orders:read", self.fx.url)
        # ?iss= may name tokend itself
        self.assertEqual(self.auth(tok, aud="orders-api", iss=self.fx.url).status_code, 200)
        d = self.assertRejected(self.auth(tok, aud="orders-api", iss=self.okta.issuer), 401, "wrong_issuer")
        self.assertIn(self.okta.issuer, d)
        # without an audience: still 400 audience_required for our own tokens
        r = self.auth(tok)
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "audience_required")

    # -- audiences and issuers of a route --------------------------------------------
    def test_audience_section_and_route(self):
        p = self.plain
        # the section lists two audiences: either will do without ?aud=
        for aud in ("https://plain.example", "https://plain-2.example"):
            self.assertEqual(self.auth(p.mint({"aud": aud})).status_code, 200)
        d = self.assertRejected(self.auth(p.mint({"aud": "https://billing.example"})), 401, "wrong_audience")
        self.assertIn("https://plain.example", d)
        # ?aud= of the route wins over the section
        tok = p.mint({"aud": "https://billing.example"})
        self.assertEqual(self.auth(tok, aud="https://billing.example").status_code, 200)
        d = self.assertRejected(self.auth(p.mint({"aud": "https://plain.example"}), aud="https://billing.example"),
                                401, "wrong_audience")
        self.assertIn("https://billing.example", d)
        # an issuer without a section audience, and no ?aud=: 400
        r = self.auth(self.keycloak.mint())
        self.assertEqual(r.status_code, 400, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "audience_required")

    def test_untrusted_issuer_names_the_trusted(self):
        tok = self.stranger.mint({"aud": "https://orders.example"})
        d = self.assertRejected(self.auth(tok, aud="https://orders.example"), 401, "wrong_issuer")
        named = issuers_named(d)
        trusted = set(self.trusted) | {self.fx.url}
        trusted_named = [u for u in named if u in trusted]
        self.assertGreaterEqual(len(trusted_named), 2, d)
        for u in named:
            self.assertTrue(u in trusted or u == self.stranger.issuer, "%s named in %r" % (u, d))
        # the stranger's server was never asked anything: iss chooses no URL
        self.assertEqual(self.stranger.count("jwks") + self.stranger.discovery_count(), 0)

    def test_iss_restriction(self):
        okta, auth0 = self.okta, self.auth0
        ot, at = okta.mint(), auth0.mint()
        self.assertEqual(self.auth(ot, aud="api://default", iss=okta.issuer).status_code, 200)
        d = self.assertRejected(self.auth(at, aud=AUTH0_AUD, iss=okta.issuer), 401, "wrong_issuer")
        self.assertIn(okta.issuer, d)
        # repeatable
        for tok, aud in ((ot, "api://default"), (at, AUTH0_AUD)):
            self.assertEqual(self.auth(tok, aud=aud, iss=[okta.issuer, auth0.issuer]).status_code, 200)
        self.assertRejected(self.auth(self.entra2.mint(), aud="6e74172b-be56-4843-9ff4-e66a39bb12e3",
                                      iss=[okta.issuer, auth0.issuer]), 401, "wrong_issuer")

    # -- rejections, each with its concrete values -------------------------------------
    def test_unknown_key_refetched_once(self):
        p = self.plain
        before = p.count("jwks")
        tok = p.mint({"aud": "https://plain.example"}, kid="ghost-kid", key=p.keys[p.kid])
        d = self.assertRejected(self.auth(tok), 401, "unknown_key")
        self.assertIn("ghost-kid", d)
        self.assertIn(p.issuer, d)
        self.assertIn(p.kid, d)  # the kids the set holds
        self.assertIn("fetched", d)
        self.assertIn("ago", d)
        self.assertIn("refetched just now", d)
        self.assertEqual(p.count("jwks"), before + 1)
        # a second miss within the cool-down: not refetched, and it says so
        d = self.assertRejected(self.auth(tok), 401, "unknown_key")
        self.assertNotIn("refetched just now", d)
        self.assertIn("cool-down %ds" % COOLDOWN, d)
        self.assertEqual(p.count("jwks"), before + 1)

    def test_bad_signature(self):
        p = self.auth0
        h, pl, s = p.mint().split(".")
        sig = bytearray(tt.b64u_decode(s))
        sig[7] ^= 0x10
        d = self.assertRejected(self.auth(h + "." + pl + "." + tt.b64u(bytes(sig))), 401, "bad_signature")
        self.assertNotIn("q5Jx3mFhT1XlTq7VZSn0", d)  # claims of a bad token are not described

    def test_same_kid_two_issuers(self):
        a, b = self.dup_a, self.dup_b
        self.assertEqual(a.kid, b.kid)
        aud = "https://orders.example"
        self.assertAccepted(self.auth(a.mint(), aud=aud), "user-1", "generic-client", "orders:read", a.issuer)
        self.assertAccepted(self.auth(b.mint(), aud=aud), "user-1", "generic-client", "orders:read", b.issuer)
        # claims issuer A, signed with B's key of the same kid
        forged = a.mint(key=b.keys[b.kid])
        d = self.assertRejected(self.auth(forged, aud=aud), 401, "bad_signature")
        self.assertIn("shared-2024", d)
        forged = b.mint(key=a.keys[a.kid])
        self.assertRejected(self.auth(forged, aud=aud), 401, "bad_signature")

    def test_expired(self):
        now = int(time.time())
        tok = self.auth0.mint({"iat": now - 7200, "exp": now - 600})
        d = self.assertRejected(self.auth(tok), 401, "expired")
        self.assertIn("expired", d)
        self.assertIn("10m", d)
        # leeway = 0 in the strict section
        tok = self.strict.mint({"aud": STRICT_AUD, "exp": now - 3}, typ="at+jwt")
        d = self.assertRejected(self.auth(tok), 401, "expired")
        self.assertIn("leeway 0s", d)
        # within the default 60 s leeway: still valid
        tok = self.auth0.mint({"exp": now - 20})
        self.assertEqual(self.auth(tok).status_code, 200)

    def test_strict_section(self):
        p = self.strict
        good = p.mint({"aud": STRICT_AUD}, typ="at+jwt")
        self.assertEqual(p.keys[p.kid].alg, "PS256")
        self.assertAccepted(self.auth(good), "user-1", "generic-client", "orders:read", p.issuer)
        # the key is a PS256 key: an RS256 signature by the same key is refused
        d = self.assertRejected(self.auth(p.mint({"aud": STRICT_AUD}, typ="at+jwt", alg="RS256")), 401,
                                "alg_not_allowed")
        self.assertIn("RS256", d)
        # require-typ = at+jwt
        d = self.assertRejected(self.auth(p.mint({"aud": STRICT_AUD}, typ="JWT")), 401, "wrong_token_type")
        self.assertIn("at+jwt", d)
        # required-claims = sub client_id
        d = self.assertRejected(self.auth(p.mint({"aud": STRICT_AUD, "client_id": None}, typ="at+jwt")), 401,
                                "missing_claim")
        self.assertIn("client_id", d)
        # exp is always required
        d = self.assertRejected(self.auth(self.auth0.mint({"exp": None})), 401, "missing_claim")
        self.assertIn("exp", d)

    def test_alg_confusion(self):
        p = self.okta
        # HS256 keyed with the issuer's public RSA key (the classic confusion)
        pem = p.keys[p.kid].pub_pem()
        hdr = {"alg": "HS256", "typ": "JWT", "kid": p.kid}
        tok = tt.make_token(hdr, p.claims(), signer=lambda m: hmac.new(pem, m, hashlib.sha256).digest())
        d = self.assertRejected(self.auth(tok), 401, "alg_not_allowed")
        self.assertIn("HS256", d)
        # alg none
        h, pl, _ = p.mint().split(".")
        none = tt.b64u_json({"alg": "none", "typ": "JWT", "kid": p.kid}) + "." + pl + "."
        self.assertRejected(self.auth(none), 401, "alg_not_allowed")

    # -- key sets that cannot be (fully) used ---------------------------------------------
    def unavailable(self, p, *needles):
        tok = p.mint({"aud": "https://orders.example"})
        t0 = time.monotonic()
        r = self.auth(tok, aud="https://orders.example")
        took = time.monotonic() - t0
        d = self.assertUnavailable(r)
        self.assertLess(took, FETCH_WAIT + WAIT_MARGIN + 1.0)
        self.assertIn(p.issuer, d)
        for n in needles:
            self.assertIn(n, d)
        return d

    def test_html_body(self):
        self.unavailable(self.html, "HTML")
        self.assertGreaterEqual(self.m("tokend_issuer_fetches_total", issuer=self.html.issuer, result="error"), 1)

    def test_huge_body(self):
        for p in (self.huge, self.hugechunk):
            with self.subTest(provider=p.path):
                self.unavailable(p, "over 65536 bytes")
                # it hung up long before the 50 MiB were sent
                ok, _ = st.wait_for(lambda: getattr(p, "huge_sent", None) is not None, 10)
                self.assertTrue(ok)
                self.assertLess(p.huge_sent, fakeidp.HUGE_BYTES // 4)

    def test_redirect_to_http(self):
        self.unavailable(self.redir, "https")
        self.assertEqual(self.redir.count("jwks-http"), 0, "followed a redirect to http://")

    def test_discovery_issuer_mismatch(self):
        self.unavailable(self.badiss, self.badiss.issuer + "/")
        self.assertEqual(self.badiss.count("jwks"), 0)

    def test_discovery_http_jwks_uri(self):
        self.unavailable(self.httpjwks, "https")
        self.assertEqual(self.httpjwks.count("jwks-http"), 0)

    def test_untrusted_ca(self):
        # its certificate comes from CA two, which only Google's section trusts
        self.unavailable(self.untrusted_ca)
        self.assertEqual(self.untrusted_ca.count("jwks") + self.untrusted_ca.discovery_count(), 0)

    def test_rsa1024_key_skipped(self):
        p = self.weak
        aud = "https://orders.example"
        self.assertAccepted(self.auth(p.mint(), aud=aud), "user-1", "generic-client", "orders:read", p.issuer)
        self.assertEqual(self.m("tokend_issuer_keys", issuer=p.issuer), 1.0)
        log = self.fx.log_text()
        lines = [ln for ln in log.splitlines() if p.issuer in ln and "weak-rsa-1024" in ln]
        self.assertTrue(lines, log[-3000:])
        self.assertIn("1024", lines[0])
        # a token signed with the weak key: its kid is not in the usable set
        d = self.assertRejected(self.auth(p.mint(kid="weak-rsa-1024"), aud=aud), 401, "unknown_key")
        self.assertIn("weak-rsa-1024", d)

    # -- rotation, floods, slowness ----------------------------------------------------------
    def test_rotation_one_refetch(self):
        p = self.rot
        aud = "https://orders.example"
        old = p.kid
        self.assertEqual(self.auth(p.mint(), aud=aud).status_code, 200)
        before = p.count("jwks")
        new = p.rotate("rot-2").kid
        # the first token with the new kid is accepted: no 401 in between
        r = self.auth(p.mint(kid=new), aud=aud)
        self.assertAccepted(r, "user-1", "generic-client", "orders:read", p.issuer)
        self.assertEqual(p.count("jwks"), before + 1)
        for _ in range(5):
            self.assertEqual(self.auth(p.mint(kid=new), aud=aud).status_code, 200)
        self.assertEqual(p.count("jwks"), before + 1)
        # the old key leaves the JWKS; tokend's cached set still verifies it
        p.drop_key(old)
        self.assertEqual(self.auth(p.mint(kid=old), aud=aud).status_code, 200)
        # an unknown kid now: the cool-down holds, the description lists both
        d = self.assertRejected(self.auth(p.mint(kid="rot-3", key=p.keys[new]), aud=aud), 401, "unknown_key")
        self.assertIn("'%s'" % old, d)
        self.assertIn("'%s'" % new, d)
        self.assertIn("cool-down", d)
        self.assertEqual(p.count("jwks"), before + 1)
        self.assertEqual(self.m("tokend_issuer_kid_refetches_total", issuer=p.issuer, result="fetched"), 1.0)
        self.assertEqual(self.m("tokend_issuer_kid_refetches_total", issuer=p.issuer, result="cooldown"), 1.0)

    def test_random_kid_flood(self):
        p = self.flood
        aud = "https://orders.example"
        key = p.keys[p.kid]
        toks = [p.mint(kid="rnd-" + uuid.uuid4().hex[:12], key=key) for _ in range(200)]
        before = p.count("jwks")
        sessions = threading.local()
        opened = []

        def one(tok):
            s = getattr(sessions, "s", None)
            if s is None:
                s = sessions.s = st.new_session(self.fx.verify)
                opened.append(s)
            self.fx.sensitive.add(tok)
            r = s.get(self.fx.url + "/auth", params={"aud": aud}, headers={"Authorization": "Bearer " + tok},
                      timeout=st.HTTP_TIMEOUT)
            return r.status_code, r.headers.get("X-Auth-Reason"), description(r)

        t0 = time.monotonic()
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                res = list(ex.map(one, toks))
        finally:
            for s in opened:
                s.close()
        took = time.monotonic() - t0
        self.assertLess(took, COOLDOWN, "the flood must fit in one cool-down")
        self.assertEqual({(s, r) for s, r, _ in res}, {(401, "unknown_key")})
        self.assertEqual(p.count("jwks") - before, 1, "one JWKS fetch for the whole flood")
        self.assertEqual(self.m("tokend_issuer_kid_refetches_total", issuer=p.issuer, result="fetched"), 1.0)
        self.assertEqual(self.m("tokend_issuer_kid_refetches_total", issuer=p.issuer, result="cooldown"),
                         sum(1 for _, _, d in res if "refetched just now" not in d))
        self.assertTrue(any("refetched just now" in d for _, _, d in res))
        self.assertTrue(any("cool-down %ds" % COOLDOWN in d for _, _, d in res))
        # the real key still works
        self.assertEqual(self.auth(p.mint(), aud=aud).status_code, 200)

    def test_slow_refetch_bounded(self):
        """A token with a new kid while the issuer answers slowly: the
        request waits for the refetch at most --issuer-fetch-wait, and over
        that bound the answer is 503 with Retry-After (SECURITY.md rule 21),
        not a verdict on a key set the refetch has not delivered yet."""
        p = self.slow
        aud = "https://orders.example"
        self.assertEqual(self.auth(p.mint(), aud=aud).status_code, 200)
        before = p.count("jwks")
        new = p.rotate("slow-2").kid
        p.fault(slow=3.0)
        try:
            tok = p.mint(kid=new)
            t0 = time.monotonic()
            r = self.auth(tok, aud=aud)
            took = time.monotonic() - t0
            self.assertLess(took, FETCH_WAIT + WAIT_MARGIN, "waited %.2f s for a refetch" % took)
            # once the slow answer is in, the token is accepted
            ok, _ = st.wait_for(lambda: self.auth(tok, aud=aud).status_code == 200, 15, 0.5)
            self.assertTrue(ok)
            self.assertEqual(p.count("jwks"), before + 1)
            # what the waiting request was told
            self.assertNotEqual(r.status_code, 200)
            self.assertEqual((r.status_code, r.headers.get("X-Auth-Reason")), (503, "unavailable"),
                             "over the wait bound: %s" % r.headers)
            self.assertIn(p.issuer, self.assertUnavailable(r))
            self.assertTrue(r.headers.get("Retry-After"), r.headers)
        finally:
            p.fault(slow=None)

    def test_slow_first_fetch_bounded(self):
        p = self.slowfirst
        aud = "https://orders.example"
        # it answered 503 at start-up: no key set yet
        d = self.unavailable(p, "HTTP 503")
        p.fault(down=None, slow=3.0)
        try:
            tok = p.mint()
            t0 = time.monotonic()
            r = self.auth(tok, aud=aud)
            took = time.monotonic() - t0
            self.assertLess(took, FETCH_WAIT + WAIT_MARGIN, "waited %.2f s for a first fetch" % took)
            d = self.assertUnavailable(r)
            self.assertIn(p.issuer, d)
            ok, _ = st.wait_for(lambda: self.auth(tok, aud=aud).status_code == 200, 20, 0.5)
            self.assertTrue(ok, self.fx.stderr()[-3000:])
            # SECURITY.md rule 21: over the wait bound, 503 with Retry-After
            self.assertTrue(r.headers.get("Retry-After"), r.headers)
        finally:
            p.fault(slow=None)

    # -- metrics -------------------------------------------------------------------------
    def test_metrics(self):
        m = self.metrics()
        for p in (self.auth0, self.entra1, self.okta, self.google):
            self.assertGreaterEqual(st.metric(m, "tokend_issuer_fetches_total", issuer=p.issuer, result="ok"), 1,
                                    p.issuer)
            self.assertEqual(st.metric(m, "tokend_issuer_keys", issuer=p.issuer), 1.0, p.issuer)
            age = m.get(("tokend_issuer_keyset_age_seconds", frozenset({"issuer": p.issuer}.items())))
            self.assertIsNotNone(age, p.issuer)
            self.assertGreaterEqual(age, 0)
            self.assertLess(age, 600)
            self.assertEqual(st.metric(m, "tokend_issuer_keyset_stale", issuer=p.issuer), 0.0)
        self.assertGreaterEqual(st.metric(m, "tokend_issuer_fetches_total", issuer=self.huge.issuer,
                                          result="error"), 1)
        self.assertEqual(st.metric(m, "tokend_issuer_fetches_total", issuer=self.huge.issuer, result="ok"), 0)
        self.assertEqual(st.metric(m, "tokend_issuer_keys", issuer=self.dup_a.issuer), 1.0)
        # a fetch failure is a warning line in the log, naming the issuer
        log = self.fx.log_text()
        warn = [ln for ln in log.splitlines() if self.html.issuer in ln and "could not be fetched" in ln]
        self.assertTrue(warn, log[-3000:])

    def nginx_get(self, path, token):
        with st.new_session(True) as s:
            return s.get(self.nginx_base + path, headers={"Authorization": "Bearer " + token},
                         timeout=st.HTTP_TIMEOUT)

    def test_nginx_foreign_token(self):
        p = self.okta
        r = self.nginx_get("/api/orders", p.mint())
        self.assertEqual(r.status_code, 200, r.text + self.nginx.error_log())
        h = r.json()["headers"]
        self.assertEqual(h.get("x-auth-subject"), "alice@example.com")
        self.assertEqual(h.get("x-auth-issuer"), p.issuer)
        self.assertEqual(h.get("x-auth-client-id"), "0oa1b2c3d4e5F6g7H8i9")
        self.assertEqual(h.get("x-auth-scope"), "orders.read openid")
        self.assertNotIn("authorization", h)
        # another trusted issuer, but not the route's: refused, reason passed on
        r = self.nginx_get("/api/orders", self.auth0.mint({"aud": "api://default", "scope": "orders.read"}))
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "wrong_issuer")
        self.assertNotIn('"path"', r.text)
        # a token without the route's scope
        r = self.nginx_get("/api/orders", p.mint({"scp": ["openid"]}))
        self.assertNotEqual(r.status_code, 200)
        self.assertNotIn('"path"', r.text)

    def test_zz_no_token_in_log(self):
        log = self.fx.log_text()
        for s in self.fx.sensitive:
            self.assertNotIn(s, log)
        for p in (self.auth0, self.okta):
            sig = p.mint().split(".")[2]
            self.assertNotIn(sig, log)


# ---------------------------------------------------------------------------
# issuers going down: stale sets, then failing closed

MAX_STALE = 4


class StaleIssuer(IssuerBase):
    """--issuer-cache-min 1s and --issuer-max-stale 4s: providers whose key
    sets live 2 s (Cache-Control max-age=2), so that they expire, are served
    stale while their provider is down, then refused."""

    @classmethod
    def setUpClass(cls):
        cls.td = tempfile.mkdtemp(prefix="tokend-idp-stale-")
        cls.servers = []
        cls.fx = None
        try:
            cls.ca = fakeidp.TestCA(os.path.join(cls.td, "ca"), "fakeidp stale CA")
            # "gone" on a server of its own: pausing it refuses connections
            cls.srv_gone = fakeidp.IdpServer(cls.ca).start()
            cls.servers.append(cls.srv_gone)
            cls.gone = cls.srv_gone.add(fakeidp.Provider("generic", "/gone", max_age=2,
                                                         cache_control="max-age=%d, must-revalidate"))
            cls.srv = fakeidp.IdpServer(cls.ca).start()
            cls.servers.append(cls.srv)
            cls.sick = cls.srv.add(fakeidp.Provider("generic", "/sick", max_age=2, cache_control="max-age=%d, private"))
            # the Cache-Control forms where the directive that matters comes last
            cls.lastma = cls.srv.add(fakeidp.Provider("generic", "/lastma", max_age=2,
                                                      cache_control="public, max-age=%d"))
            cls.onlyma = cls.srv.add(fakeidp.Provider("generic", "/onlyma", max_age=2, cache_control="max-age=%d"))
            cls.nocache = cls.srv.add(fakeidp.Provider("generic", "/nocache", max_age=0, cache_control="no-cache"))
            # slower than --issuer-fetch-timeout
            cls.hang = cls.srv.add(fakeidp.Provider("generic", "/hang"))
            cls.hang.fault(slow=4.0)
            providers = (cls.gone, cls.sick, cls.lastma, cls.onlyma, cls.nocache)
            cls.fx = st.ServerFixture(https=True, name="stale", extra=[
                "--trust-ca-file", cls.ca.ca_pem, "--issuer-cache-min", "1s",
                "--issuer-max-stale", "%ds" % MAX_STALE, "--issuer-fetch-timeout", "2s"]
                + [a for p in providers + (cls.hang,) for a in ("--trust-issuer", p.issuer)])
            cls.fx.start()
            s = st.new_session(cls.fx.verify)
            for p in providers:
                tok = p.mint()

                def ok():
                    return s.get(cls.fx.url + "/auth", params={"aud": "https://orders.example"},
                                 headers={"Authorization": "Bearer " + tok}, timeout=st.HTTP_TIMEOUT).status_code == 200
                good, _ = st.wait_for(ok, 30, 0.2)
                assert good, "%s: its tokens are not accepted\n%s" % (p.issuer, cls.fx.stderr()[-4000:])
            s.close()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.fx is not None:
                cls.fx.close()
        finally:
            for s in cls.servers:
                s.close()
            import shutil
            shutil.rmtree(cls.td, ignore_errors=True)

    def stale_metric(self, p):
        return st.metric(self.fx.metrics(), "tokend_issuer_keyset_stale", issuer=p.issuer)

    def down_then_unavailable(self, p, down, err_needle):
        aud = "https://orders.example"
        tok = p.mint()
        self.assertEqual(self.auth(tok, aud=aud).status_code, 200)
        down()
        # the set expires (max-age 2 s), the refetch fails: the last good set
        # is served, marked stale
        stale, _ = st.wait_for(lambda: self.stale_metric(p) == 1.0, 15, 0.2)
        self.assertTrue(stale, self.fx.stderr()[-3000:])
        r = self.auth(tok, aud=aud)
        if self.stale_metric(p) == 1.0:  # (not yet past the max staleness)
            self.assertEqual(r.status_code, 200, r.headers)
        m = self.fx.metrics()
        self.assertGreaterEqual(st.metric(m, "tokend_issuer_fetches_total", issuer=p.issuer, result="error"), 1)
        self.assertGreaterEqual(st.metric(m, "tokend_issuer_fetches_total", issuer=p.issuer, result="ok"), 1)
        log = self.fx.log_text()
        warn = [json.loads(ln) for ln in log.splitlines() if ln.startswith("{") and p.issuer in ln
                and "could not be fetched" in ln and '"rid"' not in ln]
        self.assertTrue(warn, log[-3000:])
        self.assertIn(warn[0].get("level"), ("warn", "warning"), warn[0])
        self.assertIn("serving the one fetched at", warn[0].get("msg", ""))
        self.assertIn(err_needle, warn[0].get("msg", ""))
        self.assertNotIn(tok, log)
        self.assertNotIn(tok.split(".")[2], log)
        # past --issuer-max-stale: 503 with the reason
        gone, _ = st.wait_for(lambda: self.auth(tok, aud=aud).status_code == 503, MAX_STALE + 15, 0.3)
        self.assertTrue(gone, self.fx.stderr()[-3000:])
        d = self.assertUnavailable(self.auth(tok, aud=aud))
        self.assertIn(p.issuer, d)
        self.assertIn(err_needle, d)
        self.assertIn("more than %ds past its expiry" % MAX_STALE, d)
        self.assertEqual(self.stale_metric(p), 2.0)  # 2: past the max staleness
        return d

    def test_refused(self):
        self.down_then_unavailable(self.gone, self.srv_gone.pause, "onnect")

    def test_http_503(self):
        self.down_then_unavailable(self.sick, lambda: self.sick.fault(down="503"), "HTTP 503")

    def test_fetch_timeout(self):
        p = self.hang
        ok, _ = st.wait_for(lambda: st.metric(self.fx.metrics(), "tokend_issuer_fetches_total", issuer=p.issuer,
                                              result="error") >= 1, 15, 0.2)
        self.assertTrue(ok, self.fx.stderr()[-3000:])
        t0 = time.monotonic()
        r = self.auth(p.mint(), aud="https://orders.example")
        self.assertLess(time.monotonic() - t0, FETCH_WAIT + WAIT_MARGIN)
        d = self.assertUnavailable(r)
        self.assertIn(p.issuer, d)
        self.assertIn("2000 ms", d)

    def test_cache_control_last_directive(self):
        """A key set's life comes from Cache-Control whatever the place of
        max-age (or no-cache) in the header: "public, max-age=2" and
        "max-age=2" must make tokend refetch within a few seconds, as
        "max-age=2, private" does."""
        for p in (self.sick, self.lastma, self.onlyma, self.nocache):
            with self.subTest(cache_control=p.cache_control):
                n = p.count("jwks")
                again, _ = st.wait_for(lambda: p.count("jwks") > n, 6, 0.2)
                m = st.metric(self.fx.metrics(), "tokend_issuer_keyset_age_seconds", issuer=p.issuer)
                self.assertTrue(again, "%s: no refetch in 6 s (key set age %s s)" % (p.cache_control, m))


# ---------------------------------------------------------------------------
# a config file written like the documented example, with comments after values

class ConfigComments(IssuerBase):
    """`audience = https://orders.example   # the orders API`: the words of
    the comment must not become audiences the issuer's tokens may carry.
    Either the comment is left out of the value, or the server refuses the
    file at start-up."""

    def test_inline_comment_is_not_an_audience(self):
        td = tempfile.mkdtemp(prefix="tokend-idp-conf-")
        srv = None
        self.fx = None
        try:
            ca = fakeidp.TestCA(os.path.join(td, "ca"), "fakeidp conf CA")
            srv = fakeidp.IdpServer(ca).start()
            p = srv.add(fakeidp.Provider("generic", "/conf"))
            conf = os.path.join(td, "tokend.conf")
            with open(conf, "w") as f:
                f.write("trust-ca-file = %s\n\n[issuer %s]\n"
                        "audience = https://orders.example   # the orders API\n" % (ca.ca_pem, p.issuer))
            self.fx = st.ServerFixture(https=True, name="conf", extra=["--config", conf])
            try:
                self.fx.start()
            except AssertionError as e:  # refused: it must say where
                self.assertIn("tokend.conf", str(e))
                return
            tok = p.mint({"aud": "https://orders.example"})
            ok, _ = st.wait_for(lambda: self.auth(tok).status_code == 200, 30, 0.2)
            self.assertTrue(ok, self.fx.stderr()[-3000:])
            for word in ("the", "#", "orders", "API"):
                with self.subTest(aud=word):
                    r = self.auth(p.mint({"aud": word}))
                    self.assertRejected(r, 401, "wrong_audience")
        finally:
            if self.fx is not None:
                self.fx.close()
            if srv is not None:
                srv.close()
            import shutil
            shutil.rmtree(td, ignore_errors=True)

    def test_too_many_issuers_refused(self):
        """32 --trust-issuer flags and one more issuer in a section: the
        server refuses to start and says why, instead of leaving the
        section's issuer out without a word."""
        import subprocess
        import shutil
        td = tempfile.mkdtemp(prefix="tokend-idp-many-")
        try:
            conf = os.path.join(td, "tokend.conf")
            with open(conf, "w") as f:
                f.write("[issuer https://extra.example/]\naudience = x\n")
            args = [tt.tokend_bin(), "serve", "--insecure-http", "--listen", "127.0.0.1:0",
                    "--store", "sqlite://%s/t.db" % td, "--master-key-file", os.path.join(td, "mk"),
                    "--config", conf]
            for i in range(32):
                args += ["--trust-issuer", "https://i%d.example/" % i]
            p = subprocess.run(args, capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2, p)
            self.assertIn("at most 32 trusted issuers", p.stderr)
        finally:
            shutil.rmtree(td, ignore_errors=True)


if __name__ == "__main__":
    st.main()
