# SPDX-License-Identifier: Apache-2.0
"""End-to-end test of tokend behind real nginx (Debian nginx-light) with
auth_request to /auth (issue 3 section 7): a valid token reaches a static
location and a proxied backend, whose received headers show the identity;
an expired token gets 401 with tokend's WWW-Authenticate passed through to
the client; a token without the scope a location requires gets 403.

nginx runs as the current user from a temporary prefix, with the upstream
keep-alive settings of DESIGN.md. If nginx is not installed the test FAILS
(scripts/deps.sh installs nginx-light).
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402

NGINX = "/usr/sbin/nginx"
AUD = "orders-api"

NGINX_CONF = r"""
%(user)s
worker_processes 1;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;

events { worker_connections 128; }

http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;
    default_type text/plain;

    upstream tokend {
        server 127.0.0.1:%(tokend_port)d;
        keepalive 16;
    }
    upstream backend {
        server 127.0.0.1:%(backend_port)d;
        keepalive 4;
    }

    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;

        # tokend's verdict, kept for the protected locations and @unauth
        auth_request_set $auth_subject $upstream_http_x_auth_subject;
        auth_request_set $auth_client $upstream_http_x_auth_client_id;
        auth_request_set $auth_scope $upstream_http_x_auth_scope;
        auth_request_set $auth_www $upstream_http_www_authenticate;
        auth_request_set $auth_reason $upstream_http_x_auth_reason;

        # a static location: no `return` here (nginx runs it before
        # auth_request, silently skipping the check)
        location /static/ {
            auth_request /_auth_read;
            error_page 401 = @unauth;
            error_page 403 = @forbidden;
            root %(dir)s/www;
            add_header X-Auth-Subject $auth_subject always;
        }

        # a proxied API: the identity goes to the backend as headers
        location /api/ {
            auth_request /_auth_read;
            error_page 401 = @unauth;
            error_page 403 = @forbidden;
            proxy_set_header X-Auth-Subject $auth_subject;
            proxy_set_header X-Auth-Client-Id $auth_client;
            proxy_set_header X-Auth-Scope $auth_scope;
            proxy_set_header Authorization "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }

        # needs a scope the test client does not have
        location /admin/ {
            auth_request /_auth_admin;
            error_page 401 = @unauth;
            error_page 403 = @forbidden;
            proxy_set_header X-Auth-Subject $auth_subject;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }

        location = /_auth_read {
            internal;
            proxy_pass http://tokend/auth?aud=%(aud)s&scope=orders:read;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }

        location = /_auth_admin {
            internal;
            proxy_pass http://tokend/auth?aud=%(aud)s&scope=orders:admin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }

        # For a 401, ngx_http_auth_request_module itself copies the
        # subrequest's WWW-Authenticate to the response, and the header
        # survives this error_page redirect: adding $auth_www here as well
        # would send the challenge twice. Only our reason code is added.
        location @unauth {
            add_header X-Auth-Reason $auth_reason always;
            return 401;
        }

        # For a 403 nginx copies nothing: pass tokend's challenge through.

        location @forbidden {
            add_header WWW-Authenticate $auth_www always;
            add_header X-Auth-Reason $auth_reason always;
            return 403;
        }
    }
}
"""


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """The backend: answers every request with the headers it received."""
    protocol_version = "HTTP/1.1"

    def _echo(self):
        body = json.dumps({"path": self.path, "method": self.command,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _echo
    do_POST = _echo

    def log_message(self, *args):
        pass


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class NginxAuthRequest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(NGINX, os.X_OK):
            raise AssertionError("%s is not installed: run scripts/deps.sh (Debian nginx-light)" % NGINX)
        # plain HTTP upstream on loopback; leeway 0 so a 1 s token expires
        cls.fx = st.ServerFixture(https=False, settings={"TOKEND_LEEWAY": "0"}, name="nginx-tokend")
        cls.fx.start()
        fx = cls.fx
        cls.cid, cls.secret = fx.add_client("shop", "orders:read orders:write", AUD)
        cls.short_id, cls.short_secret = fx.add_client("shortlived", "orders:read", AUD, ttl="1s")
        cls.expiring = fx.token(cls.short_id, cls.short_secret)
        cls.expiring_exp = st.jwt_parts(cls.expiring)[1]["exp"]

        cls.backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
        cls.backend.daemon_threads = True
        cls.backend_thread = threading.Thread(target=cls.backend.serve_forever, daemon=True)
        cls.backend_thread.start()

        d = cls.ngx_dir = os.path.join(fx.td, "nginx")
        for sub in ("tmp", "www/static"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "www/static/hello.txt"), "w") as f:
            f.write("hello from the protected static location\n")
        cls.port = st.free_port()
        conf = NGINX_CONF % {
            "user": "user root;" if os.geteuid() == 0 else "",
            "dir": d, "port": cls.port, "tokend_port": fx.port,
            "backend_port": cls.backend.server_address[1], "aud": AUD,
        }
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(conf)
        cmd = [NGINX, "-p", d, "-e", os.path.join(d, "error.log"), "-c", os.path.join(d, "nginx.conf")]
        t = subprocess.run(cmd + ["-t"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if t.returncode != 0:
            raise AssertionError("nginx -t failed:\n" + t.stdout.decode("utf-8", "replace"))
        with open(os.path.join(d, "nginx.stderr"), "wb") as err:
            cls.nginx = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if not wait_port(cls.port, 30):
            cls._stop_nginx()
            raise AssertionError("nginx did not start:\n" + cls._nginx_error_log())
        cls.session = st.new_session(True)
        cls.base = "http://127.0.0.1:%d" % cls.port

    @classmethod
    def _nginx_error_log(cls):
        p = os.path.join(cls.ngx_dir, "error.log")
        if not os.path.exists(p):
            return ""
        with open(p) as f:
            return f.read()[-5000:]

    @classmethod
    def _stop_nginx(cls):
        p = getattr(cls, "nginx", None)
        if p is not None and p.poll() is None:
            p.terminate()  # SIGTERM: fast shutdown
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @classmethod
    def tearDownClass(cls):
        cls._stop_nginx()
        if getattr(cls, "session", None) is not None:
            cls.session.close()
        if getattr(cls, "backend", None) is not None:
            cls.backend.shutdown()
            cls.backend.server_close()
        cls.fx.close()

    def get(self, path, token=None, authorization=None):
        h = {}
        if authorization is not None:
            h["Authorization"] = authorization
        elif token is not None:
            h["Authorization"] = "Bearer " + token
        return self.session.get(self.base + path, headers=h, timeout=st.HTTP_TIMEOUT)

    def direct_challenge(self, token, scope):
        """What tokend itself answers for this token (no nginx)."""
        r = self.fx.auth(token, aud=AUD, scope=scope)
        return r.headers.get("WWW-Authenticate"), r.headers.get("X-Auth-Reason")

    # -- cases -------------------------------------------------------------------
    def test_valid_token_static_location(self):
        tok = self.fx.token(self.cid, self.secret)
        r = self.get("/static/hello.txt", tok)
        self.assertEqual(r.status_code, 200, r.text + self._nginx_error_log())
        self.assertEqual(r.text, "hello from the protected static location\n")
        self.assertEqual(r.headers.get("X-Auth-Subject"), self.cid)
        self.assertNotIn("WWW-Authenticate", r.headers)

    def test_valid_token_identity_reaches_backend(self):
        tok = self.fx.token(self.cid, self.secret)
        for i in range(3):  # several, over the kept-alive upstream connections
            r = self.get("/api/orders?page=%d" % i, tok)
            self.assertEqual(r.status_code, 200, r.text + self._nginx_error_log())
            seen = r.json()
            self.assertEqual(seen["path"], "/api/orders?page=%d" % i)
            h = seen["headers"]
            self.assertEqual(h.get("x-auth-subject"), self.cid)
            self.assertEqual(h.get("x-auth-client-id"), self.cid)
            self.assertEqual(h.get("x-auth-scope"), "orders:read orders:write")
            self.assertNotIn("authorization", h, "nginx was told to drop the token")

    def test_no_token_401_bare_challenge(self):
        for path in ("/static/hello.txt", "/api/orders"):
            with self.subTest(path=path):
                r = self.get(path)
                self.assertEqual(r.status_code, 401)
                # exactly one challenge, exactly tokend's
                self.assertEqual(r.raw.headers.getlist("WWW-Authenticate"), ['Bearer realm="tokend"'])
                self.assertEqual(r.headers.get("X-Auth-Reason"), "missing_token")
                self.assertNotIn("hello from", r.text)

    def test_expired_token_401_with_tokend_challenge(self):
        time.sleep(max(0.0, self.expiring_exp + 1.2 - time.time()))
        direct, reason = self.direct_challenge(self.expiring, "orders:read")
        self.assertEqual(reason, "expired")
        for path in ("/static/hello.txt", "/api/orders"):
            with self.subTest(path=path):
                r = self.get(path, self.expiring)
                self.assertEqual(r.status_code, 401, r.text)
                self.assertNotIn("hello from", r.text)
                self.assertEqual(r.headers.get("X-Auth-Reason"), "expired")
                self.assertEqual(len(r.raw.headers.getlist("WWW-Authenticate")), 1, r.headers)
                got = r.headers.get("WWW-Authenticate")
                ch = st.parse_challenge(got)
                self.assertEqual(ch.scheme, "Bearer")
                self.assertEqual(ch.get("realm"), "tokend")
                self.assertEqual(ch.get("error"), "invalid_token")
                self.assertIn("expired", ch.get("error_description", ""))
                self.assertEqual(ch.get("error_uri"), self.fx.url + "/errors/expired")
                # exactly what tokend said (the description names times that
                # move with the clock: compare all but the description)
                d = st.parse_challenge(direct)
                self.assertEqual({k: v for k, v in ch.params.items() if k != "error_description"},
                                 {k: v for k, v in d.params.items() if k != "error_description"})

    def test_bad_signature_401(self):
        tok = self.fx.token(self.cid, self.secret)
        h, p, s = tok.split(".")
        bad = h + "." + p + "." + ("A" if s[0] != "A" else "B") + s[1:]
        r = self.get("/api/orders", bad)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "bad_signature")
        self.assertEqual(st.parse_challenge(r.headers.get("WWW-Authenticate")).get("error"), "invalid_token")

    def test_missing_scope_403(self):
        tok = self.fx.token(self.cid, self.secret)
        direct, reason = self.direct_challenge(tok, "orders:admin")
        self.assertEqual(reason, "insufficient_scope")
        r = self.get("/admin/settings", tok)
        self.assertEqual(r.status_code, 403, r.text)
        self.assertNotIn('"path"', r.text, "the backend must not be reached")
        self.assertEqual(r.headers.get("X-Auth-Reason"), "insufficient_scope")
        self.assertEqual(r.raw.headers.getlist("WWW-Authenticate"), [direct])
        ch = st.parse_challenge(r.headers.get("WWW-Authenticate"))
        self.assertEqual(ch.get("error"), "insufficient_scope")
        # the same token passes where its scope suffices
        self.assertEqual(self.get("/api/orders", tok).status_code, 200)

    def test_malformed_header_400_is_denied(self):
        # auth_request turns any other status than 2xx/401/403 into 500:
        # whatever nginx does, the request must not pass
        tok = self.fx.token(self.cid, self.secret)
        r = self.get("/api/orders", authorization="Basic " + tok)
        self.assertNotEqual(r.status_code, 200)
        self.assertNotIn('"path"', r.text)

    def test_revoked_token_denied_at_once(self):
        tok = self.fx.token(self.cid, self.secret)
        self.assertEqual(self.get("/api/orders", tok).status_code, 200)
        self.assertEqual(self.fx.revoke(self.cid, self.secret, tok).status_code, 200)
        r = self.get("/api/orders", tok)
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "revoked")

    def test_zz_subrequests_reached_tokend(self):
        # every nginx auth subrequest was a logged /auth request of tokend
        lines = [o for o in self.fx.log_lines() if o.get("route") == "/auth"]
        self.assertTrue(any(o.get("status") == 200 for o in lines))
        self.assertTrue(any(o.get("reason") == "insufficient_scope" for o in lines))
        log = self._nginx_error_log()
        self.assertNotIn("[emerg]", log)
        self.assertNotIn("upstream prematurely closed", log)


if __name__ == "__main__":
    st.main()
