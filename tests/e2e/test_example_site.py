# SPDX-License-Identifier: Apache-2.0
"""examples/nginx-site.conf and examples/tokend.service.d-override.conf,
run as they are (ports, paths and the certificate replaced):

- a real tokend with the drop-in's TOKEND_* environment (but a free port
  and its own URL), behind real nginx (Debian nginx-light) with the
  site included in an http { } block, over TLS with a throwaway certificate;
  a valid token gets the static file and the application (which receives
  the identity), no token 401 with tokend's challenge, a token without the
  scope 403, a Basic header 400;
- the drop-in passes `systemd-analyze verify` with a stand-in unit, and
  every variable it sets is a setting of `tokend serve --help`.

FAILS when nginx is not installed (scripts/deps.sh installs nginx-light).
Run by hand: TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_example_site.py
"""

import configparser
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SITE = os.path.join(ROOT, "examples", "nginx-site.conf")
DROPIN = os.path.join(ROOT, "examples", "tokend.service.d-override.conf")
AUD = "orders-api"

MAIN_CONF = r"""
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
    include %(dir)s/site.conf;
}
"""


def dropin_environment():
    """The Environment= lines of the drop-in, as a dict."""
    env = {}
    with open(DROPIN) as f:
        for line in f:
            m = re.match(r"Environment=([A-Z_]+)=(.*)$", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
    return env


class _Echo(http.server.BaseHTTPRequestHandler):
    """The application: answers with the headers it received."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ExampleSite(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        env = dropin_environment()
        assert env.pop("TOKEND_LISTEN", None), "the drop-in sets no TOKEND_LISTEN"
        assert env.pop("TOKEND_INSECURE_HTTP", None) == "true"
        # The fixture learns its port from the "listening on URL" banner,
        # which shows the public URL: leave that one out here.
        assert env.pop("TOKEND_PUBLIC_URL", "").startswith("https://")
        cls.fx = st.ServerFixture(https=False, settings=env, name="example-site")
        cls.fx.start()
        cls.cid, cls.secret = cls.fx.add_client("shop", "orders:read orders:write", AUD)
        cls.app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        cls.app.daemon_threads = True
        threading.Thread(target=cls.app.serve_forever, daemon=True).start()

        d = cls.dir = os.path.join(cls.fx.td, "nginx")
        os.makedirs(os.path.join(d, "www", "orders"))
        with open(os.path.join(d, "www", "orders", "hello.txt"), "w") as f:
            f.write("hello orders\n")
        cls.cert = os.path.join(d, "site.pem")
        key = os.path.join(d, "site.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cls.cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
        cls.port = st.free_port()
        with open(SITE) as f:
            site = f.read()
        for old, new in (("server 127.0.0.1:9000;", "server 127.0.0.1:%d;" % cls.fx.port),
                         ("http://127.0.0.1:8081;", "http://127.0.0.1:%d;" % cls.app.server_address[1]),
                         ("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % cls.port),
                         ("listen [::]:443 ssl;", ""),
                         ("/etc/ssl/certs/orders.example.com.pem", cls.cert),
                         ("/etc/ssl/private/orders.example.com.key", key),
                         ("root /srv/www/orders;", "root %s;" % os.path.join(d, "www"))):
            assert old in site, "examples/nginx-site.conf no longer has %r: update this test" % old
            site = site.replace(old, new)
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write(site)
        conf = MAIN_CONF % {"user": "user root;" if os.geteuid() == 0 else "", "dir": d}
        cls.nginx = st.Nginx(d, conf, cls.port).start()  # runs nginx -t first
        cls.base = "https://127.0.0.1:%d" % cls.port
        cls.session = st.new_session(cls.cert)

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()
        cls.app.shutdown()
        cls.app.server_close()
        cls.fx.close()

    def get(self, path, token=None, authorization=None):
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        if authorization:
            headers["Authorization"] = authorization
        return self.session.get(self.base + path, headers=headers, timeout=30)

    def test_valid_token(self):
        tok = self.fx.token(self.cid, self.secret, scope="orders:read orders:write")
        r = self.get("/orders/hello.txt", tok)
        self.assertEqual((r.status_code, r.text), (200, "hello orders\n"))
        r = self.get("/api/whoami", tok)
        self.assertEqual(r.status_code, 200, r.text)
        seen = r.json()
        self.assertEqual(seen["x-auth-client-id"], self.cid)
        self.assertEqual(seen["x-auth-scope"], "orders:read orders:write")
        self.assertEqual(seen["x-auth-issuer"], self.fx.url)
        self.assertTrue(seen["x-auth-subject"])

    def test_rejections(self):
        r = self.get("/orders/hello.txt")
        self.assertEqual(r.status_code, 401)
        self.assertEqual(r.headers.get("WWW-Authenticate"), 'Bearer realm="tokend"')
        r = self.get("/orders/hello.txt", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
        self.assertEqual(r.status_code, 401)
        self.assertIn('error="invalid_token"', r.headers.get("WWW-Authenticate", ""))
        self.assertTrue(r.headers.get("X-Auth-Reason"), r.headers)
        read_only = self.fx.token(self.cid, self.secret, scope="orders:read")
        r = self.get("/api/whoami", read_only)
        self.assertEqual(r.status_code, 403)
        self.assertIn('error="insufficient_scope"', r.headers.get("WWW-Authenticate", ""))
        self.assertEqual(r.headers.get("X-Auth-Reason"), "insufficient_scope")
        r = self.get("/orders/hello.txt", authorization="Basic Zm9vOmJhcg==")
        self.assertEqual(r.status_code, 400)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "wrong_scheme")

    def test_public_location(self):
        with open(os.path.join(self.dir, "www", "index.txt"), "w") as f:
            f.write("public\n")
        self.assertEqual(self.get("/index.txt").status_code, 200)


class DropIn(unittest.TestCase):

    def test_variables_are_settings(self):
        r = subprocess.run([tt.tokend_bin(), "serve", "--help"], capture_output=True, text=True, timeout=60)
        known = set(re.findall(r"\bTOKEND_[A-Z_]+\b", r.stdout))
        env = dropin_environment()
        self.assertIn("TOKEND_LISTEN", env)
        for k in env:
            self.assertIn(k, known, "%s is not a setting of tokend serve" % k)
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str
        with open(DROPIN) as f:
            cp.read_string(f.read())
        self.assertEqual(cp.sections(), ["Service"])
        self.assertGreaterEqual(int(cp["Service"]["LimitNOFILE"]), int(env["TOKEND_MAX_CONNECTIONS"]) + 64)

    def test_systemd_analyze_verify(self):
        sa = shutil.which("systemd-analyze")
        if not sa:
            self.skipTest("systemd-analyze is not installed")
        d = os.path.join(self.tmp(), "units")
        os.makedirs(os.path.join(d, "tokend.service.d"))
        with open(os.path.join(d, "tokend.service"), "w") as f:  # a stand-in for the packaged unit
            f.write("[Unit]\nDescription=tokend\n[Service]\nExecStart=%s serve\n" % os.path.abspath(tt.tokend_bin()))
        shutil.copy(DROPIN, os.path.join(d, "tokend.service.d", "override.conf"))
        r = subprocess.run([sa, "verify", "--man=no", os.path.join(d, "tokend.service")], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        problems = [ln for ln in r.stderr.splitlines() if "override.conf" in ln]
        self.assertEqual(problems, [], r.stderr)

    def tmp(self):
        d = tempfile.mkdtemp(prefix="tokend-dropin-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    tt.main()
