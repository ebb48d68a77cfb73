# SPDX-License-Identifier: Apache-2.0
"""Fake identity providers for the trusted-issuer tests (issue 10): HTTPS
servers on 127.0.0.1 that publish OpenID Connect Discovery / RFC 8414
metadata and JWKS the way Auth0, Microsoft Entra (v1 and v2), Okta,
Keycloak and Google do, mint tokens of the same shapes, and misbehave on
demand.

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fakeidp

    ca = fakeidp.TestCA(tmpdir)                  # throwaway CA + leaf for 127.0.0.1
    srv = fakeidp.IdpServer(ca).start()          # https://127.0.0.1:PORT
    auth0 = srv.add(fakeidp.Provider("auth0", "/acme/"))
    google = fakeidp.IdpServer(ca).start().add(fakeidp.Provider("google", "/"))
    tok = auth0.mint({"aud": "https://orders.example"})       # shape defaults + these
    auth0.counts["jwks"]                          # how many times the JWKS was fetched
    auth0.fault(down="503")                       # or "reset"; slow=2.0; jwks_body="html" ...
    srv.close()

tokend is pointed at it with `--trust-ca-file ca.ca_pem`. Every issuer is
https://127.0.0.1:PORT<path>: the host is the same for all of them, the
path keeps the real provider's shape (Auth0's trailing slash, Entra's
/<tenant>/v2.0, Okta's /oauth2/default, Keycloak's /realms/<realm>).

Only Debian's python3-cryptography and python3-jwt (PyJWT signs the
tokens) and the standard library are used. Nothing leaves 127.0.0.1.
"""

import base64
import datetime
import hashlib
import http.server
import json
import os
import socket
import ssl
import threading
import time
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HUGE_BYTES = 50 * 1024 * 1024  # the "huge body" fault: 50 MiB


def b64u(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64u(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------------------
# a throwaway certificate authority

class TestCA:
    """A CA (EC P-256) and a leaf for 127.0.0.1 / localhost, written to
    directory `d`: ca_pem (what tokend trusts), leaf_pem, leaf_key."""

    def __init__(self, d, name="fakeidp test CA"):
        os.makedirs(d, exist_ok=True)
        self.dir = d
        slug = "".join(c if c.isalnum() else "-" for c in name)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        ca_cert = (x509.CertificateBuilder()
                   .subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
                   .sign(ca_key, hashes.SHA256()))
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        import ipaddress
        leaf_cert = (x509.CertificateBuilder()
                     .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                     .issuer_name(ca_name)
                     .public_key(leaf_key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.SubjectAlternativeName([
                         x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                         critical=False)
                     .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                     .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                    critical=False)
                     .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                    critical=False)
                     .sign(ca_key, hashes.SHA256()))
        self.ca_pem = os.path.join(d, slug + "-ca.pem")
        self.leaf_pem = os.path.join(d, slug + "-leaf.pem")
        self.leaf_key = os.path.join(d, slug + "-leaf.key")
        with open(self.ca_pem, "wb") as f:
            f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
        with open(self.leaf_pem, "wb") as f:
            f.write(leaf_cert.public_bytes(serialization.Encoding.PEM))
        with open(self.leaf_key, "wb") as f:
            f.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        os.chmod(self.leaf_key, 0o600)

    def server_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.leaf_pem, self.leaf_key)
        return ctx

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca_pem)


# ---------------------------------------------------------------------------
# signing keys

class SigningKey:
    """One RSA (or EC) key pair with a kid, and its JWK the way a provider
    publishes it."""

    def __init__(self, kid, alg="RS256", bits=2048, priv=None, use="sig"):
        self.kid = kid
        self.alg = alg
        self.use = use
        if priv is not None:
            self.priv = priv
        elif alg.startswith("ES"):
            self.priv = ec.generate_private_key({"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(),
                                                 "ES512": ec.SECP521R1()}[alg])
        else:
            self.priv = _rsa_key(bits)
        self._cert = None

    @property
    def bits(self):
        return self.priv.key_size

    @property
    def kty(self):
        return "EC" if isinstance(self.priv, ec.EllipticCurvePrivateKey) else "RSA"

    def pub_pem(self):
        return self.priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    def cert_der(self):
        """A self-signed certificate of the key (what x5c holds)."""
        if self._cert is None:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fakeidp signing key")])
            now = _now()
            c = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                 .public_key(self.priv.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(now - datetime.timedelta(days=1))
                 .not_valid_after(now + datetime.timedelta(days=365))
                 .sign(self.priv, hashes.SHA256()))
            self._cert = c.public_bytes(serialization.Encoding.DER)
        return self._cert

    def x5t(self):
        return b64u(hashlib.sha1(self.cert_der()).digest())

    def x5t_s256(self):
        return b64u(hashlib.sha256(self.cert_der()).digest())

    def public_members(self):
        n = self.priv.public_key().public_numbers()
        if self.kty == "RSA":
            return {"kty": "RSA", "n": _int_b64u(n.n), "e": _int_b64u(n.e)}
        size = (self.priv.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[self.priv.curve.name]
        return {"kty": "EC", "crv": crv, "x": b64u(n.x.to_bytes(size, "big")), "y": b64u(n.y.to_bytes(size, "big"))}


def _rsa_key(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# ---------------------------------------------------------------------------
# provider shapes

def _guid():
    return str(uuid.uuid4())


def _rand_kid(style):
    r = os.urandom(32)
    if style == "auth0":  # a 22-character random id
        return b64u(r)[:22]
    if style == "entra":  # the certificate's x5t (set by add_key)
        return None
    if style in ("okta", "keycloak"):  # 43 characters: base64url of a SHA-256 thumbprint
        return b64u(r)
    if style == "google":  # 40 hex digits
        return r[:20].hex()
    return "k-" + r.hex()[:10]


class Shape:
    """What differs between real providers: where things live, what the
    JWKS members are, what the tokens hold."""

    name = "generic"
    typ = "JWT"
    max_age = 3600
    cache_control = "public, max-age=%d"
    discovery = "oidc"  # "oidc", "rfc8414", "both" or "none"

    def issuer_path(self, p):
        return p.path.rstrip("/")

    def jwks_path(self, p):
        return p.path.rstrip("/") + "/jwks"

    def key_jwk(self, p, k):
        d = {"kty": None, "use": k.use, "alg": k.alg, "kid": k.kid}
        d.update(k.public_members())
        return d

    def claims(self, p, now):
        return {"iss": p.issuer, "sub": "user-1", "aud": "https://orders.example", "iat": now, "exp": now + 3600,
                "jti": b64u(os.urandom(12)), "client_id": "generic-client", "scope": "orders:read"}

    def metadata(self, p):
        return {"issuer": p.issuer, "jwks_uri": p.jwks_uri,
                "authorization_endpoint": p.base + p.issuer_path_only() + "/authorize",
                "token_endpoint": p.base + p.issuer_path_only() + "/oauth/token",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"]}


class Auth0(Shape):
    """https://TENANT.auth0.com/ (trailing slash), /.well-known/jwks.json,
    keys with alg, x5c and x5t; access tokens with `scope` (a string),
    `azp`, `gty` for machine-to-machine."""
    name = "auth0"
    cache_control = "public, max-age=%d, stale-while-revalidate=15, stale-if-error=86400"

    def issuer_path(self, p):
        return p.path.rstrip("/") + "/"

    def jwks_path(self, p):
        return p.path.rstrip("/") + "/.well-known/jwks.json"

    def key_jwk(self, p, k):
        d = {"kty": "RSA", "use": "sig"}
        d.update(k.public_members())
        d.update({"kid": k.kid, "x5t": k.x5t(), "x5c": [base64.b64encode(k.cert_der()).decode()], "alg": k.alg})
        return d

    def claims(self, p, now):
        return {"iss": p.issuer, "sub": "q5Jx3mFhT1XlTq7VZSn0@clients", "aud": "https://orders.example",
                "iat": now, "exp": now + 86400, "gty": "client-credentials", "azp": "q5Jx3mFhT1XlTq7VZSn0",
                "scope": "read:orders write:orders"}

    def metadata(self, p):
        b = p.issuer
        return {"issuer": b, "authorization_endpoint": b + "authorize", "token_endpoint": b + "oauth/token",
                "device_authorization_endpoint": b + "oauth/device/code", "userinfo_endpoint": b + "userinfo",
                "mfa_challenge_endpoint": b + "mfa/challenge", "jwks_uri": p.jwks_uri,
                "registration_endpoint": b + "oidc/register", "revocation_endpoint": b + "oauth/revoke",
                "scopes_supported": ["openid", "profile", "offline_access", "name", "email"],
                "response_types_supported": ["code", "token", "id_token", "code token", "code id_token",
                                             "token id_token", "code token id_token"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["HS256", "RS256", "PS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                          "private_key_jwt"],
                "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp",
                                     "family_name", "given_name", "iat", "identities", "iss", "name",
                                     "nickname", "phone_number", "picture", "sub"],
                "request_uri_parameter_supported": False, "request_parameter_supported": False}


class EntraV1(Shape):
    """https://sts.windows.net/<tid>/ tokens (v1.0 access tokens): header
    with x5t and kid, keys WITHOUT alg but with x5t, x5c and issuer, claims
    `scp` (string), `appid`, `ver` 1.0. Real keys live at
    login.microsoftonline.com/common/discovery/keys."""
    name = "entra-v1"
    cache_control = "max-age=%d, private"

    def __init__(self, tid=None):
        self.tid = tid or _guid()

    def issuer_path(self, p):
        return "/" + self.tid + "/"

    def jwks_path(self, p):
        return "/common/discovery/keys"

    def key_jwk(self, p, k):
        d = {"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.x5t()}
        d.update(k.public_members())
        d["x5c"] = [base64.b64encode(k.cert_der()).decode()]
        d["issuer"] = p.issuer
        return d

    def claims(self, p, now):
        return {"aud": "api://orders", "iss": p.issuer, "iat": now, "nbf": now, "exp": now + 4500, "acr": "1",
                "aio": b64u(os.urandom(40)), "amr": ["pwd"], "appid": "4f6a3c1e-5a8b-4c44-9d1d-0e6f3e2f9a10",
                "appidacr": "0", "family_name": "Doe", "given_name": "Alice", "ipaddr": "203.0.113.7",
                "name": "Alice Doe", "oid": "a8d1c6b4-2f4e-4e0b-8d6b-6a2c1b7e9f01",
                "rh": "0.AXwA" + b64u(os.urandom(24)),
                "scp": "Orders.Read Orders.Write", "sub": "Vq2y6ZxjJkQq0l4bXy1t0b3mM1nE9mW0zv4f6h8j2kA",
                "tid": self.tid, "unique_name": "alice@contoso.example", "upn": "alice@contoso.example",
                "uti": b64u(os.urandom(16)), "ver": "1.0"}

    def metadata(self, p):
        b = "https://127.0.0.1:%d/%s" % (p.server.port, self.tid)
        return {"token_endpoint": b + "/oauth2/token", "token_endpoint_auth_methods_supported":
                ["client_secret_post", "private_key_jwt", "client_secret_basic"], "jwks_uri": p.jwks_uri,
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
                "scopes_supported": ["openid"], "issuer": p.issuer, "microsoft_multi_refresh_token": True,
                "authorization_endpoint": b + "/oauth2/authorize", "http_logout_supported": True,
                "frontchannel_logout_supported": True, "end_session_endpoint": b + "/oauth2/logout",
                "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                     "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time",
                                     "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
                "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com"}


class EntraV2(EntraV1):
    """https://login.microsoftonline.com/<tid>/v2.0: keys at
    /<tid>/discovery/v2.0/keys (no alg; x5t, x5c, issuer), tokens with
    `azp`, `scp`, `ver` 2.0 and a GUID audience (the API's client id)."""
    name = "entra-v2"

    def issuer_path(self, p):
        return "/" + self.tid + "/v2.0"

    def jwks_path(self, p):
        return "/" + self.tid + "/discovery/v2.0/keys"

    def claims(self, p, now):
        return {"aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "iss": p.issuer, "iat": now, "nbf": now,
                "exp": now + 4500, "aio": b64u(os.urandom(40)), "azp": "c0ffee00-1b2c-4d5e-8f90-123456789abc",
                "azpacr": "0", "name": "Alice Doe", "oid": "a8d1c6b4-2f4e-4e0b-8d6b-6a2c1b7e9f01",
                "preferred_username": "alice@contoso.example", "rh": "0.AXwA" + b64u(os.urandom(24)),
                "scp": "Orders.Read", "sub": "mK2aB3yq9Zt7Q5sLx0vR4uW8nC1eD6fG2hJ9kL3pO7i", "tid": self.tid,
                "uti": b64u(os.urandom(16)), "ver": "2.0"}

    def metadata(self, p):
        m = EntraV1.metadata(self, p)
        b = "https://127.0.0.1:%d/%s" % (p.server.port, self.tid)
        m.update({"token_endpoint": b + "/oauth2/v2.0/token", "authorization_endpoint": b + "/oauth2/v2.0/authorize",
                  "end_session_endpoint": b + "/oauth2/v2.0/logout", "scopes_supported":
                  ["openid", "profile", "email", "offline_access"], "request_uri_parameter_supported": False,
                  "userinfo_endpoint": "https://127.0.0.1:%d/oidc/userinfo" % p.server.port})
        m.pop("microsoft_multi_refresh_token", None)
        return m


class Okta(Shape):
    """https://DOMAIN.okta.com/oauth2/default (a custom authorization
    server): /v1/keys, keys with alg, access tokens with `scp` as an ARRAY,
    `cid`, `uid`, `ver` 1 and a jti "AT.…"."""
    name = "okta"
    cache_control = "max-age=%d, must-revalidate"
    discovery = "both"

    def issuer_path(self, p):
        return p.path.rstrip("/")

    def jwks_path(self, p):
        return p.path.rstrip("/") + "/v1/keys"

    def key_jwk(self, p, k):
        d = {"kty": "RSA", "alg": k.alg, "kid": k.kid, "use": "sig"}
        d.update(k.public_members())
        return d

    def claims(self, p, now):
        return {"ver": 1, "jti": "AT." + b64u(os.urandom(32)), "iss": p.issuer, "aud": "api://default",
                "iat": now, "exp": now + 3600, "cid": "0oa1b2c3d4e5F6g7H8i9", "uid": "00u1a2b3c4D5e6F7g8h9",
                "scp": ["orders.read", "openid"], "auth_time": now - 30, "sub": "alice@example.com"}

    def metadata(self, p):
        b = p.issuer
        return {"issuer": b, "authorization_endpoint": b + "/v1/authorize", "token_endpoint": b + "/v1/token",
                "userinfo_endpoint": b + "/v1/userinfo", "registration_endpoint": b + "/v1/clients",
                "jwks_uri": p.jwks_uri, "response_types_supported": ["code", "id_token", "code id_token",
                                                                     "code token", "id_token token",
                                                                     "code id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post", "okta_post_message"],
                "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password",
                                          "client_credentials"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["orders.read", "openid", "profile", "email", "offline_access"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                          "client_secret_jwt", "private_key_jwt", "none"],
                "introspection_endpoint": b + "/v1/introspect", "revocation_endpoint": b + "/v1/revoke",
                "end_session_endpoint": b + "/v1/logout", "code_challenge_methods_supported": ["S256"]}


class Keycloak(Shape):
    """https://HOST/realms/<realm>: /protocol/openid-connect/certs holding the
    RS256 signing key AND an RSA-OAEP `use: enc` key (both with x5c, x5t,
    x5t#S256); access tokens with `scope` (a string), `azp`, payload
    `typ: Bearer`, realm_access and resource_access."""
    name = "keycloak"
    cache_control = "no-cache"  # Keycloak sends no max-age on certs

    def jwks_path(self, p):
        return p.path.rstrip("/") + "/protocol/openid-connect/certs"

    def key_jwk(self, p, k):
        d = {"kid": k.kid, "kty": "RSA", "alg": k.alg, "use": k.use}
        d.update(k.public_members())
        d.update({"x5c": [base64.b64encode(k.cert_der()).decode()], "x5t": k.x5t(), "x5t#S256": k.x5t_s256()})
        return d

    def claims(self, p, now):
        return {"exp": now + 300, "iat": now, "auth_time": now - 5, "jti": _guid(), "iss": p.issuer,
                "aud": ["orders-api", "account"], "sub": "f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "typ": "Bearer",
                "azp": "orders-web", "session_state": _guid(), "acr": "1",
                "allowed-origins": ["https://shop.example"],
                "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-shop"]},
                "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
                "scope": "openid profile email orders:read", "sid": _guid(), "email_verified": True,
                "preferred_username": "alice"}

    def metadata(self, p):
        b = p.issuer + "/protocol/openid-connect"
        return {"issuer": p.issuer, "authorization_endpoint": b + "/auth", "token_endpoint": b + "/token",
                "introspection_endpoint": b + "/token/introspect", "userinfo_endpoint": b + "/userinfo",
                "end_session_endpoint": b + "/logout", "jwks_uri": p.jwks_uri,
                "check_session_iframe": b + "/login-status-iframe.html",
                "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password",
                                          "client_credentials"],
                "response_types_supported": ["code", "none", "id_token", "token", "id_token token",
                                             "code id_token", "code token", "code id_token token"],
                "subject_types_supported": ["public", "pairwise"],
                "id_token_signing_alg_values_supported": ["PS384", "ES384", "RS384", "HS256", "HS512", "ES256",
                                                          "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"],
                "scopes_supported": ["openid", "profile", "email", "roles", "web-origins", "offline_access"],
                "code_challenge_methods_supported": ["plain", "S256"]}


class Google(Shape):
    """https://accounts.google.com (no path, no trailing slash):
    /oauth2/v3/certs with alg, use and a 40-hex kid; ID tokens whose aud is
    the client id (….apps.googleusercontent.com), with azp, email."""
    name = "google"
    cache_control = "public, max-age=%d, must-revalidate, no-transform"

    def issuer_path(self, p):
        return p.path.rstrip("/")

    def jwks_path(self, p):
        return p.path.rstrip("/") + "/oauth2/v3/certs"

    def key_jwk(self, p, k):
        d = {"alg": k.alg, "use": "sig", "kid": k.kid}
        d.update(k.public_members())
        return d

    def claims(self, p, now):
        cid = "407408718192-3f7n2p1cbm8v0d2s4k6q8r0t1u3w5y7a.apps.googleusercontent.com"
        return {"iss": p.issuer, "azp": cid, "aud": cid, "sub": "110248495921238986420",
                "email": "alice@gmail.example", "email_verified": True, "at_hash": b64u(os.urandom(16)),
                "name": "Alice Doe", "given_name": "Alice", "family_name": "Doe", "locale": "en",
                "iat": now, "exp": now + 3599}

    def metadata(self, p):
        b = "https://127.0.0.1:%d" % p.server.port
        return {"issuer": p.issuer, "authorization_endpoint": b + "/o/oauth2/v2/auth",
                "device_authorization_endpoint": b + "/device/code", "token_endpoint": b + "/token",
                "userinfo_endpoint": b + "/v1/userinfo", "revocation_endpoint": b + "/revoke",
                "jwks_uri": p.jwks_uri, "response_types_supported": ["code", "token", "id_token",
                                                                     "code token", "code id_token",
                                                                     "token id_token", "code token id_token",
                                                                     "none"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat",
                                     "iss", "name", "picture", "sub"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "grant_types_supported": ["authorization_code", "refresh_token",
                                          "urn:ietf:params:oauth:grant-type:device_code",
                                          "urn:ietf:params:oauth:grant-type:jwt-bearer"]}


class Generic(Shape):
    """A plain RFC 9068 authorization server: `client_id`, `scope`."""
    name = "generic"

    def key_jwk(self, p, k):
        d = {"kty": None, "use": "sig", "alg": k.alg, "kid": k.kid}
        d.update(k.public_members())
        return d


SHAPES = {"auth0": Auth0, "entra-v1": EntraV1, "entra-v2": EntraV2, "okta": Okta, "keycloak": Keycloak,
          "google": Google, "generic": Generic}


# ---------------------------------------------------------------------------
# a provider

class Provider:
    """One issuer on an IdpServer.

    shape: a key of SHAPES or a Shape instance. path: where it lives on the
    server (its issuer is https://127.0.0.1:PORT + the shape's issuer path
    for it). kids: the kids of its first signing keys (default: one key
    with a kid in the provider's style). discovery: "oidc"
    (/.well-known/openid-configuration under the issuer), "rfc8414" (only
    https://host/.well-known/oauth-authorization-server<path>), "both" or
    "none"; default the shape's. max_age: Cache-Control max-age of the JWKS
    (None: no Cache-Control at all); cache_control: the header's form, with
    %d for max_age (default the shape's, e.g. "public, max-age=%d")."""

    def __init__(self, shape, path="/", kids=None, alg="RS256", discovery=None, max_age="default",
                 keys=None, cache_control=None):
        self.shape = SHAPES[shape]() if isinstance(shape, str) else shape
        self.path = path
        self.alg = alg
        self.discovery = discovery or self.shape.discovery
        self.max_age = self.shape.max_age if max_age == "default" else max_age
        self.cache_control = cache_control  # the Cache-Control value (with %d for max_age); None: the shape's
        self.server = None
        self.lock = threading.Lock()
        self.counts = {}  # kind -> number of requests
        self.fetch_times = []  # monotonic times of JWKS requests
        self.log = []  # (monotonic time, kind, path)
        self.faults = {}
        self.keys = {}  # kid -> SigningKey: every key it ever had (it may sign with an unpublished one)
        self.published = []  # kids in the JWKS, in order
        self.extra_jwks = []  # raw JWK dicts appended to the JWKS (enc keys, weak keys, junk)
        self.metadata_over = {}
        self._pending_keys = list(keys or [])
        self._pending_kids = list(kids) if kids else None

    # -- set-up (by IdpServer.add) ---------------------------------------------
    def _attach(self, server):
        self.server = server
        for k in self._pending_keys:
            self._add(k)
        if not self._pending_keys:
            for kid in (self._pending_kids or [None]):
                self.add_key(kid)
        if isinstance(self.shape, Keycloak):
            enc = SigningKey("enc-" + b64u(os.urandom(8)), alg="RSA-OAEP", use="enc")
            self.enc_kid = enc.kid
            self.extra_jwks.append(self.shape.key_jwk(self, enc))

    @property
    def base(self):
        return self.server.url

    def issuer_path_only(self):
        return self.shape.issuer_path(self).rstrip("/")

    @property
    def issuer(self):
        return self.base + self.shape.issuer_path(self)

    @property
    def jwks_path(self):
        return self.shape.jwks_path(self)

    @property
    def jwks_uri(self):
        return self.metadata_over.get("jwks_uri", self.base + self.jwks_path)

    @property
    def oidc_path(self):
        return self.shape.issuer_path(self).rstrip("/") + "/.well-known/openid-configuration"

    @property
    def rfc8414_path(self):
        # RFC 8414 section 3.1: the well-known segment goes between host and path
        return "/.well-known/oauth-authorization-server" + self.shape.issuer_path(self).rstrip("/")

    @property
    def okta_as_path(self):
        # Okta also answers oauth-authorization-server under the issuer
        return self.shape.issuer_path(self).rstrip("/") + "/.well-known/oauth-authorization-server"

    def routes(self):
        r = {self.jwks_path: "jwks"}
        if self.discovery in ("oidc", "both"):
            r[self.oidc_path] = "openid-configuration"
        if self.discovery in ("rfc8414", "both"):
            r[self.rfc8414_path] = "oauth-authorization-server"
        if isinstance(self.shape, Okta):
            r[self.okta_as_path] = "oauth-authorization-server"
        return r

    # -- keys ------------------------------------------------------------------
    def _add(self, key, publish=True):
        with self.lock:
            self.keys[key.kid] = key
            if publish and key.kid not in self.published:
                self.published.append(key.kid)
        return key

    def add_key(self, kid=None, alg=None, bits=2048, publish=True):
        """A new signing key (published in the JWKS unless publish=False)."""
        key = SigningKey("tmp", alg=alg or self.alg, bits=bits)
        if kid is None:
            kid = _rand_kid(self.shape.name.split("-")[0])
            if kid is None:  # Entra: kid = x5t of the key's certificate
                kid = key.x5t()
        key.kid = kid
        return self._add(key, publish)

    def share_key(self, key):
        """Publishes another provider's key object (same kid, same key)."""
        return self._add(key)

    def publish(self, kid):
        with self.lock:
            if kid not in self.published:
                self.published.append(kid)

    def drop_key(self, kid):
        """Removes the key from the JWKS (it stays known for signing)."""
        with self.lock:
            self.published = [k for k in self.published if k != kid]

    def rotate(self, kid=None):
        """Publishes a new key, then the old ones are still there: returns the
        new key. (Call drop_key for the old one to complete a rotation.)"""
        return self.add_key(kid)

    @property
    def kid(self):
        """The kid of the first published key (the one mint uses by default)."""
        return self.published[0]

    def jwks(self):
        with self.lock:
            keys = [self.shape.key_jwk(self, self.keys[k]) for k in self.published]
            extra = list(self.extra_jwks)
        out = []
        for d in keys + extra:
            out.append({k: v for k, v in d.items() if v is not None})
        return {"keys": out}

    def add_raw_jwk(self, jwk):
        with self.lock:
            self.extra_jwks.append(jwk)

    def add_weak_rsa(self, kid="weak-rsa-1024", bits=1024):
        """Publishes an RSA key of `bits` bits (1024: below the 2048 floor);
        returns the SigningKey so a test can sign with it."""
        key = SigningKey(kid, alg="RS256", bits=bits)
        with self.lock:
            self.keys[kid] = key
            self.extra_jwks.append(self.shape.key_jwk(self, key))
        return key

    # -- documents -------------------------------------------------------------
    def metadata(self):
        m = self.shape.metadata(self)
        m["jwks_uri"] = self.jwks_uri
        m.update(self.metadata_over)
        return {k: v for k, v in m.items() if v is not None}

    # -- tokens ----------------------------------------------------------------
    def claims(self, **over):
        """The shape's default claims, `over` applied (a None value removes)."""
        c = self.shape.claims(self, int(time.time()))
        for k, v in over.items():
            if v is None:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def mint(self, claims=None, kid=None, alg=None, typ="default", key=None, header=None, defaults=True):
        """A signed token. claims: merged over the shape's defaults (None
        values remove a default) unless defaults=False. kid: which key signs
        (default: the first published); the header names `kid` (pass
        key= to sign with another key under this kid). alg: default the
        key's. typ: default the shape's; None leaves typ out. header: more
        header members."""
        c = self.claims(**(claims or {})) if defaults else dict(claims or {})
        kid = kid or self.kid
        k = key or self.keys.get(kid)
        if k is None:
            raise KeyError("no key %r at %s" % (kid, self.issuer))
        alg = alg or k.alg
        h = {"kid": kid, "typ": self.shape.typ if typ == "default" else typ}
        if isinstance(self.shape, EntraV1):
            h["x5t"] = k.x5t()
        if header:
            h.update(header)
        return jwt.encode(c, k.priv, algorithm=alg, headers=h)

    # -- faults ----------------------------------------------------------------
    def fault(self, **kw):
        """Sets faults (a None value clears one):
        down="503" | "reset" (close the connection without an answer);
        slow=SECONDS before answering (slow_kinds= a set of kinds, default all);
        jwks_body="html" | "huge" (50 MiB with Content-Length, streamed) |
            "huge-chunked" (50 MiB, chunked, no length) | "not-json" | "empty";
        metadata_body="html";
        jwks_redirect="http" (302 to the same path on the plain-HTTP mirror)
            or a URL;
        jwks_status=404 etc."""
        with self.lock:
            for k, v in kw.items():
                if v is None:
                    self.faults.pop(k, None)
                else:
                    self.faults[k] = v

    def clear_faults(self):
        with self.lock:
            self.faults = {}

    def count(self, kind="jwks"):
        with self.lock:
            return self.counts.get(kind, 0)

    def discovery_count(self):
        with self.lock:
            return self.counts.get("openid-configuration", 0) + self.counts.get("oauth-authorization-server", 0)

    def last_fetch(self):
        """Monotonic time of the last JWKS request (None: never)."""
        with self.lock:
            return self.fetch_times[-1] if self.fetch_times else None

    def _note(self, kind, path):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.log.append((time.monotonic(), kind, path))
            if kind in ("jwks", "jwks-http"):
                self.fetch_times.append(time.monotonic())
            return dict(self.faults)

    # -- answering -------------------------------------------------------------
    def answer(self, h, kind, path, scheme):
        faults = self._note(kind if scheme == "https" else kind + "-http", path)
        slow = faults.get("slow")
        if slow and kind in faults.get("slow_kinds", {kind}):
            time.sleep(slow)
        down = faults.get("down")
        if down == "reset":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if down:
            return h.send_body(int(down), b"<html><body><h1>503 Service Unavailable</h1></body></html>",
                               "text/html")
        if kind == "jwks":
            if scheme == "https" and faults.get("jwks_redirect"):
                target = faults["jwks_redirect"]
                if target == "http":
                    target = self.server.http_url + path
                return h.send_body(302, b"", "text/plain", extra={"Location": target})
            if faults.get("jwks_status"):
                return h.send_body(faults["jwks_status"], b'{"error":"not_found"}', "application/json")
            body = faults.get("jwks_body")
            if body == "html":
                return h.send_body(200, HTML_PAGE, "text/html; charset=utf-8")
            if body == "not-json":
                return h.send_body(200, b'{"keys": [', "application/json")
            if body == "empty":
                return h.send_body(200, b"", "application/json")
            if body in ("huge", "huge-chunked"):
                return h.send_huge(self, chunked=(body == "huge-chunked"))
            cc = None
            form = self.cache_control or self.shape.cache_control
            if self.max_age is not None:
                cc = form % self.max_age if "%d" in form else form
            return h.send_body(200, json.dumps(self.jwks()).encode(), "application/json; charset=utf-8",
                               extra={"Cache-Control": cc} if cc else None)
        if faults.get("metadata_body") == "html":
            return h.send_body(200, HTML_PAGE, "text/html; charset=utf-8")
        return h.send_body(200, json.dumps(self.metadata()).encode(), "application/json; charset=utf-8",
                           extra={"Cache-Control": "public, max-age=3600"})


HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
             b"<p>Our service is temporarily down for maintenance.</p></body></html>")


# ---------------------------------------------------------------------------
# the server

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeidp/1"

    def do_GET(self):
        srv = self.server.idp
        path = self.path.split("?", 1)[0]
        with srv.lock:
            srv.counts[path] = srv.counts.get(path, 0) + 1
            route = srv.routes.get(path)
            paused = srv.paused
        if paused:
            self.close_connection = True
            return
        if route is None:
            return self.send_body(404, b'{"error":"not_found"}', "application/json")
        provider, kind = route
        provider.answer(self, kind, path, self.server.scheme)

    def do_HEAD(self):
        self.send_body(405, b"", "text/plain")

    def send_body(self, status, body, ctype, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def send_huge(self, provider, chunked):
        """50 MiB of a JSON-looking body, streamed in 64 KiB blocks; records
        how many bytes went out before the client hung up
        (provider.huge_sent)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        block = b'{"keys":[' + b" " * (65536 - 9)
        pad = b" " * 65536
        sent = 0
        self.close_connection = True
        try:
            while sent < HUGE_BYTES:
                b = block if sent == 0 else pad
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(b) + b + b"\r\n")
                else:
                    self.wfile.write(b)
                sent += len(b)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        with provider.lock:
            provider.huge_sent = sent

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, idp, ctx):
        self.idp = idp
        self.ctx = ctx
        self.scheme = "https" if ctx else "http"
        super().__init__(addr, _Handler)

    def finish_request(self, request, client_address):
        # TLS handshake here, in the request's own thread (not in accept)
        if self.ctx is not None:
            try:
                request.settimeout(30)
                request = self.ctx.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
        try:
            super().finish_request(request, client_address)
        finally:
            try:
                request.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # broken pipes and TLS errors of clients that hung up


class IdpServer:
    """An HTTPS server on 127.0.0.1 hosting providers (add), with a
    plain-HTTP mirror of the same routes (http_url: the target of the
    "redirect to http" fault). counts: path -> number of requests.
    pause(): connections are refused (the listening socket is closed and
    kept-alive connections are dropped); resume(): the same port again."""

    def __init__(self, ca):
        self.ca = ca
        self.lock = threading.Lock()
        self.routes = {}
        self.counts = {}
        self.providers = []
        self.paused = False
        self.port = None
        self._https = None
        self._http = None
        self._threads = []

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def http_url(self):
        return "http://127.0.0.1:%d" % self._http.server_address[1]

    def _serve(self, srv):
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        t.start()
        self._threads.append(t)

    def start(self):
        self._https = _Server(("127.0.0.1", self.port or 0), self, self.ca.server_context())
        self.port = self._https.server_address[1]
        self._http = _Server(("127.0.0.1", 0), self, None)
        self._serve(self._https)
        self._serve(self._http)
        return self

    def add(self, provider):
        provider._attach(self)
        with self.lock:
            for path, kind in provider.routes().items():
                if path in self.routes:
                    raise ValueError("path %s taken on %s" % (path, self.url))
                self.routes[path] = (provider, kind)
            self.providers.append(provider)
        return provider

    def pause(self):
        """Connection refused from now on (until resume)."""
        with self.lock:
            self.paused = True
        if self._https is not None:
            self._https.shutdown()
            self._https.server_close()
            self._https = None

    def resume(self):
        with self.lock:
            self.paused = False
        if self._https is None:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self._https = _Server(("127.0.0.1", self.port), self, self.ca.server_context())
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            self._serve(self._https)

    def count(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def close(self):
        for s in (self._https, self._http):
            if s is not None:
                s.shutdown()
                s.server_close()
        self._https = self._http = None


# ---------------------------------------------------------------------------
# checking a provider from the outside (what a relying party would do)

def fetch_json(url, ca):
    """GET url with the test CA trusted; (status, headers, parsed body)."""
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=ca.client_context()))
    try:
        with opener.open(url, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), None


def verify_with_jwks(token, jwks, audience, issuer):
    """PyJWT's verification of `token` against a JWKS dict (keys without alg
    are taken as RS256, as Entra publishes them)."""
    header = jwt.get_unverified_header(token)
    for d in jwks["keys"]:
        if d.get("kid") == header.get("kid") and d.get("use", "sig") == "sig":
            k = jwt.PyJWK(dict(d, alg=d.get("alg", "RS256")))
            return jwt.decode(token, k.key, algorithms=[header["alg"]], audience=audience, issuer=issuer)
    raise KeyError("kid %r not in the JWKS" % header.get("kid"))
