# SPDX-License-Identifier: Apache-2.0
"""Helpers for the `tokend serve` end-to-end tests (test_serve_*.py): a
running server on loopback, admin commands on its store, HTTP through
python3-requests and through the real curl binary, and the RFC 6750
challenge parser.

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import servetest as st

    class T(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.fx = st.ServerFixture(https=True, settings={"TOKEND_LEEWAY": "0"})
            cls.fx.start()
            cls.client_id, cls.secret = cls.fx.add_client("svc", "orders:read", "orders-api")

        @classmethod
        def tearDownClass(cls):
            cls.fx.close()

Run one file by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_serve_auth.py

The binary is usually built with ASan/UBSan: every wait here is generous.

Failed client authentication and sign-in are throttled per source address
and per (client id or user, source address) (SECURITY.md rule 22): a test
that fails on purpose gets a source address of its own from fresh_ip() (any
127.x.y.z reaches a server on 127.0.0.1), so that it does not throttle the
other tests. (An identity that failed more than 20 times in the window, from
anywhere, makes every further failing address wait after its first failure:
a test must not fail one shared client or user that often.)
"""

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

import requests
from requests.adapters import HTTPAdapter

import tokendtest as tt

# Start-up under ASan can take a few seconds; a request should take far less.
START_TIMEOUT = 60
HTTP_TIMEOUT = 30
STOP_TIMEOUT = 5

_ip_lock = threading.Lock()
_ip_next = [10]


def fresh_ip():
    """A loopback source address no other test in this process uses."""
    with _ip_lock:
        n = _ip_next[0]
        _ip_next[0] += 1
    return "127.0.%d.%d" % (n // 250, 2 + n % 250)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def basic(client_id, secret):
    """The value of an Authorization: Basic header (RFC 6749 section 2.3.1)."""
    from urllib.parse import quote
    raw = "%s:%s" % (quote(client_id, safe=""), quote(secret, safe=""))
    return "Basic " + base64.b64encode(raw.encode()).decode()


def fingerprint(token):
    """The log's token fingerprint: first 8 hex digits of SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


def jwt_parts(token):
    """(header dict, payload dict) of a compact JWS, without verifying."""
    h, p, _ = token.split(".")
    return json.loads(tt.b64u_decode(h)), json.loads(tt.b64u_decode(p))


# ---------------------------------------------------------------------------
# RFC 6750 section 3 challenges

# auth-param = token BWS "=" BWS ( token / quoted-string ); RFC 6750 says
# the attribute values of its own parameters are quoted strings, with
# error_description and error_uri limited to %x20-21 / %x23-5B / %x5D-7E.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(r'(%s)="([^"\\]*)"' % _TOKEN)
RFC6750_ERRORS = ("invalid_request", "invalid_token", "insufficient_scope")
_DESC_OK = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")


class Challenge:
    def __init__(self, raw, scheme, params, order):
        self.raw = raw
        self.scheme = scheme
        self.params = params
        self.order = order

    def get(self, k, default=None):
        return self.params.get(k, default)

    def __repr__(self):
        return "Challenge(%r)" % self.raw


def parse_challenge(value):
    """Parses one `Bearer realm="..", k="v", ...` challenge strictly: the
    scheme, one space, then quoted-string parameters separated by ", ".
    Raises AssertionError with the value when it does not parse."""
    if value is None:
        raise AssertionError("no WWW-Authenticate header")
    m = re.match(r"^(%s)(?: (.*))?$" % _TOKEN, value)
    if not m:
        raise AssertionError("challenge does not start with a scheme: %r" % value)
    scheme, rest = m.group(1), m.group(2) or ""
    params = {}
    order = []
    pos = 0
    while pos < len(rest):
        pm = _PARAM.match(rest, pos)
        if not pm:
            raise AssertionError("bad auth-param at %d in %r" % (pos, value))
        k, v = pm.group(1), pm.group(2)
        if k in params:
            raise AssertionError("parameter %s twice in %r" % (k, value))
        params[k] = v
        order.append(k)
        pos = pm.end()
        if pos < len(rest):
            if not rest.startswith(", ", pos):
                raise AssertionError("parameters not separated by ', ' at %d in %r" % (pos, value))
            pos += 2
            if pos >= len(rest):
                raise AssertionError("trailing ', ' in %r" % value)
    return Challenge(value, scheme, params, order)


# ---------------------------------------------------------------------------
# HTTP through requests

class _SourceAdapter(HTTPAdapter):
    """Connects from a given local address."""

    def __init__(self, source_ip, **kw):
        self._source_ip = source_ip
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self._source_ip, 0)
        return super().init_poolmanager(*args, **kw)


def new_session(verify, source_ip=None):
    s = requests.Session()
    s.trust_env = False  # loopback only: never a proxy from the environment
    s.verify = verify
    if source_ip:
        a = _SourceAdapter(source_ip)
        s.mount("http://", a)
        s.mount("https://", a)
    return s


# ---------------------------------------------------------------------------
# HTTP through curl

class CurlResponse:
    """What curl saw: status, headers (lower-case name -> list of values),
    body (bytes)."""

    def __init__(self, args, rc, status, headers, body, stderr):
        self.args = args
        self.rc = rc
        self.status_code = status
        self.header_list = headers
        self.content = body
        self.stderr = stderr

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)

    def header(self, name, default=None):
        v = self.headers_all(name)
        return v[-1] if v else default

    def headers_all(self, name):
        n = name.lower()
        return [v for k, v in self.header_list if k == n]

    def __repr__(self):
        return "curl %r -> rc=%s status=%s\n%s\n%s\n%s" % (
            self.args, self.rc, self.status_code,
            "\n".join("%s: %s" % kv for kv in self.header_list), self.text[:2000], self.stderr)


def _parse_head(raw):
    """Parses curl -D output; keeps the last response (after 100-continue)."""
    blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    if not blocks:
        return 0, []
    lines = blocks[-1].decode("latin-1").split("\n")
    m = re.match(r"^HTTP/\S+ (\d{3})", lines[0])
    status = int(m.group(1)) if m else 0
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
    return status, headers


# ---------------------------------------------------------------------------
# the server

class ServerFixture:
    """One `tokend serve` on 127.0.0.1 in a temporary directory.

    https=True: --dev (self-signed certificate in the data dir, trusted by
    every helper here); https=False: --insecure-http.
    settings: TOKEND_* environment for the server AND every admin command
    (so that e.g. TOKEND_MAX_TTL agrees between `keys rotate` and serve).
    extra: more flags for `tokend serve` only.
    td: reuse another fixture's directory (same store and master key)."""

    def __init__(self, https=True, settings=None, extra=(), td=None, listen=None, name="serve"):
        self.https = https
        self.settings = dict(settings or {})
        self.extra = list(extra)
        self.own_td = td is None
        self.td = td or tempfile.mkdtemp(prefix="tokend-serve-")
        self.listen = listen or "127.0.0.1:0"
        self.name = name
        self.store_path = os.path.join(self.td, "tokend.db")
        self.master_key = os.path.join(self.td, "tokend.master.key")
        self.cert = os.path.join(self.td, "tokend-dev.crt")
        self.proc = None
        self.url = None
        self.port = None
        self.admin_url = None  # the admin listener (/metrics), from the banner
        self.sensitive = set()  # secrets and tokens that must never be logged
        self._sessions = {}
        self._n_start = 0
        self.stdout_path = None
        self.stderr_path = None

    # -- environment --------------------------------------------------------
    def env(self, **over):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("TOKEND_") and k != "TOKEND_BIN":
                del e[k]
        e["TOKEND_STORE"] = "sqlite://" + self.store_path
        e["TOKEND_MASTER_KEY_FILE"] = self.master_key
        e["TOKEND_ADMIN_LISTEN"] = "127.0.0.1:0"  # the admin listener (/metrics) on a free port
        e.update(self.settings)
        e.update(over)
        return e

    def command(self, listen=None, extra=()):
        cmd = [tt.tokend_bin(), "serve", "--listen", listen or self.listen, "--data-dir", self.td]
        cmd.append("--dev" if self.https else "--insecure-http")
        return cmd + self.extra + list(extra)

    # -- life cycle ---------------------------------------------------------
    def start(self, extra=(), env=None, listen=None):
        """Starts the server and waits for its "listening on URL" line."""
        assert self.proc is None, "already running"
        self._n_start += 1
        tag = "%s-%d" % (self.name, self._n_start)
        self.stdout_path = os.path.join(self.td, tag + ".stdout")
        self.stderr_path = os.path.join(self.td, tag + ".stderr")
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.command(listen, extra), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=self.env(**(env or {})),
                                         cwd=self.td)
        finally:
            out.close()
            err.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            out = self.stdout()
            m = re.search(r"listening on (\S+)", out)
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                a = re.search(r"admin listener on (\S+)", out)
                self.admin_url = a.group(1) if a else None
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.url is None:
            rc = self.proc.poll()
            self.kill()
            raise AssertionError("tokend serve did not start (rc=%r)\n--- stdout ---\n%s\n--- stderr ---\n%s"
                                 % (rc, self.stdout(), self.stderr()))
        self.listen = "127.0.0.1:%d" % self.port  # a restart comes back on the same port
        self._sessions = {}
        return self

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT s; returns the exit code."""
        if self.proc is None:
            return None
        for s in self._sessions.values():
            s.close()
        self._sessions = {}
        p = self.proc
        self.proc = None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self, check=True):
        """Stops the server and removes the directory. With check, raises
        AssertionError when the server did not exit 0 on SIGTERM within
        STOP_TIMEOUT s (an ASan/UBSan report at exit makes it non-zero)."""
        running = self.proc is not None
        t0 = time.monotonic()
        rc = self.stop()
        took = time.monotonic() - t0
        err = self.stderr()[-4000:] if running else ""
        if self.own_td:
            shutil.rmtree(self.td, ignore_errors=True)
        if check and running and (rc != 0 or took > STOP_TIMEOUT):
            raise AssertionError("tokend serve did not stop cleanly on SIGTERM (rc=%r after %.1f s)\n%s"
                                 % (rc, took, err))

    def stdout(self):
        return _read(self.stdout_path)

    def stderr(self):
        return _read(self.stderr_path)

    def log_text(self, settle=0.4):
        """The access log (stderr) so far; waits `settle` s for the server's
        100 ms flusher."""
        time.sleep(settle)
        return self.stderr()

    def log_lines(self, settle=0.4):
        """The JSON objects of the access log (other lines skipped)."""
        out = []
        for line in self.log_text(settle).splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def log_for(self, rid, timeout=5.0):
        """The access log line of request `rid` (waits for the flush)."""
        deadline = time.monotonic() + timeout
        while True:
            for o in self.log_lines(settle=0.1):
                if o.get("rid") == rid:
                    return o
            if time.monotonic() > deadline:
                raise AssertionError("no log line with rid %s in\n%s" % (rid, self.stderr()[-4000:]))

    # -- admin commands on the same store -------------------------------------
    def admin(self, *args, env=None, input=None, timeout=tt.TIMEOUT):
        """Runs `tokend ARGS` on this server's store and master key."""
        args = [str(a) for a in args]
        t0 = time.monotonic()
        p = subprocess.run([tt.tokend_bin()] + args, input=(input or "").encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=self.env(**(env or {})), cwd=self.td)
        return tt.Result(args, p.returncode, p.stdout.decode("utf-8", "replace"),
                         p.stderr.decode("utf-8", "replace"), time.monotonic() - t0)

    def add_client(self, name, scope, aud, ttl=None, serves=()):
        """`tokend client add NAME --scope .. --aud .. [--serves ..] --json`:
        (id, secret). `serves`: audiences whose tokens it may introspect."""
        args = ["client", "add", name, "--json"]
        for s in (scope.split() if isinstance(scope, str) else scope):
            args += ["--scope", s]
        for a in (aud.split() if isinstance(aud, str) else aud):
            args += ["--aud", a]
        if ttl:
            args += ["--ttl", ttl]
        for a in (serves.split() if isinstance(serves, str) else serves):
            args += ["--serves", a]
        r = self.admin(*args)
        if r.rc != 0:
            raise AssertionError("client add failed:\n%r" % r)
        o = json.loads(r.out)
        self.sensitive.add(o["client_secret"])
        self.sensitive.add(basic(o["client_id"], o["client_secret"]).split(" ", 1)[1])
        return o["client_id"], o["client_secret"]

    # -- HTTP -----------------------------------------------------------------
    @property
    def verify(self):
        return self.cert if self.https else True

    def session(self, source_ip=None):
        s = self._sessions.get(source_ip)
        if s is None:
            s = self._sessions[source_ip] = new_session(self.verify, source_ip)
        return s

    def get(self, path, source_ip=None, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.session(source_ip).get(self.url + path, **kw)

    def post(self, path, source_ip=None, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.session(source_ip).post(self.url + path, **kw)

    def request(self, method, path, source_ip=None, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.session(source_ip).request(method, self.url + path, **kw)

    def curl(self, path, *args, source_ip=None, timeout=HTTP_TIMEOUT):
        """Runs the real curl against path; returns a CurlResponse."""
        fd, head = tempfile.mkstemp(dir=self.td, prefix="curl-head-")
        os.close(fd)
        fd, body = tempfile.mkstemp(dir=self.td, prefix="curl-body-")
        os.close(fd)
        cmd = ["curl", "-sS", "--noproxy", "*", "-D", head, "-o", body, "--max-time", str(timeout)]
        if self.https:
            cmd += ["--cacert", self.cert]
        if source_ip:
            cmd += ["--interface", source_ip]
        cmd += [str(a) for a in args] + [self.url + path]
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout + 10)
            with open(head, "rb") as f:
                status, headers = _parse_head(f.read())
            with open(body, "rb") as f:
                content = f.read()
        finally:
            os.unlink(head)
            os.unlink(body)
        return CurlResponse(cmd, p.returncode, status, headers, content, p.stderr.decode("utf-8", "replace"))

    def token_response(self, client_id, secret, method="basic", source_ip=None, **params):
        data = {"grant_type": "client_credentials"}
        data.update(params)
        auth = None
        if method == "basic":
            auth = (client_id, secret)
        else:
            data["client_id"] = client_id
            data["client_secret"] = secret
        return self.post("/oauth/token", source_ip=source_ip, data=data, auth=auth)

    def token(self, client_id, secret, **params):
        """A fresh access token (asserts 200)."""
        r = self.token_response(client_id, secret, **params)
        if r.status_code != 200:
            raise AssertionError("token request failed: %d %s" % (r.status_code, r.text))
        t = r.json()["access_token"]
        self.sensitive.add(t)
        return t

    def auth(self, token=None, aud=None, scope=None, authorization=None, source_ip=None, method="GET"):
        """GET /auth with `Authorization: Bearer TOKEN` (or `authorization`
        verbatim; neither: no header) and ?aud=&scope=."""
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif token is not None:
            headers["Authorization"] = "Bearer " + token
        params = {}
        if aud is not None:
            params["aud"] = aud
        if scope is not None:
            params["scope"] = scope
        return self.request(method, "/auth", source_ip=source_ip, headers=headers, params=params)

    def introspect(self, client_id, secret, token, source_ip=None):
        return self.post("/oauth/introspect", source_ip=source_ip, data={"token": token}, auth=(client_id, secret))

    def revoke(self, client_id, secret, token, source_ip=None):
        return self.post("/oauth/revoke", source_ip=source_ip, data={"token": token}, auth=(client_id, secret))

    def admin_get(self, path, **kw):
        """GET `path` on the admin listener (plain HTTP; a connection of its
        own, so that no request deadline cuts an idle one under it)."""
        if self.admin_url is None:
            raise AssertionError("this server has no admin listener (--admin-listen off?)")
        kw.setdefault("timeout", HTTP_TIMEOUT)
        s = new_session(True)
        try:
            return s.get(self.admin_url + path, **kw)
        finally:
            s.close()

    def metrics(self):
        """/metrics of the admin listener, parsed: {(name,
        frozenset(labels.items())): float}."""
        r = self.admin_get("/metrics")
        if r.status_code != 200:
            raise AssertionError("/metrics: %d %s" % (r.status_code, r.text))
        return parse_metrics(r.text)

    def jwks_client(self):
        """PyJWT's PyJWKClient on our JWKS, trusting the dev certificate."""
        import jwt
        trust_urllib(self.cert if self.https else None)
        return jwt.PyJWKClient(self.url + "/.well-known/jwks.json")


def _read(path):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def trust_urllib(cafile):
    """PyJWT 2.6's PyJWKClient calls urllib.request.urlopen(uri) with no
    TLS options: install a global opener whose context trusts `cafile`
    (and that never uses a proxy)."""
    handlers = [urllib.request.ProxyHandler({})]
    if cafile:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
    urllib.request.install_opener(urllib.request.build_opener(*handlers))


_METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_metrics(text):
    """Prometheus text format 0.0.4, strictly: each sample line must parse."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line)
        if not m:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        labels = {}
        if m.group(2):
            pos = 0
            s = m.group(2)
            while pos < len(s):
                lm = _LABEL.match(s, pos)
                if not lm:
                    raise AssertionError("bad labels in %r" % line)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def wait_for(pred, timeout, interval=0.1):
    """Calls pred() until it returns a truthy value or timeout s pass;
    returns (value, seconds waited)."""
    t0 = time.monotonic()
    while True:
        v = pred()
        if v or time.monotonic() - t0 > timeout:
            return v, time.monotonic() - t0
        time.sleep(interval)


def early_in_second(latest=0.3):
    """Waits (< 1 s) until the wall clock is at most `latest` s into a
    second. The server's throttle counts whole seconds (time(NULL)): a block
    of 1 s that starts at x.95 s ends at x+1, 50 ms later. A test that needs
    a short block to still hold a few requests later starts it early in a
    second."""
    f = time.time() % 1.0
    if f > latest:
        time.sleep(1.0 - f + 0.02)


def main():
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------
# user sign-in (issue 4): users, clients of the authorization code flow,
# PKCE, the sign-in page and its form, cookies, a browser-like session
#
# Used by test_signin_*.py:
#
#     fx.add_user("alice", "correct horse battery")
#     cid, _ = fx.add_signin_client("spa", "https://app.example/cb", "orders:read", "orders-api")
#     b = st.SignInBrowser(fx, cid, "https://app.example/cb")
#     got = b.sign_in("alice", "correct horse battery")   # code, state, iss, verifier
#     tokens = b.exchange(got["code"], got["verifier"]).json()

import html.parser  # noqa: E402
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit  # noqa: E402

SESSION_COOKIE = "__Host-tokend_session"
CSRF_COOKIE = "__Host-tokend_csrf"


def pkce_pair():
    """(code_verifier, code_challenge) for S256 (RFC 7636 section 4.1-4.2):
    a 43-character verifier of 32 random bytes."""
    verifier = tt.b64u(os.urandom(32))
    challenge = tt.b64u(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge


def random_state():
    return tt.b64u(os.urandom(12))


def one_char_off(uri):
    """The URI with its last character changed (a redirect URI that differs
    by exactly one character)."""
    last = uri[-1]
    return uri[:-1] + ("x" if last != "x" else "y")


def set_cookie_headers(r):
    """Every Set-Cookie header of a requests response, unmerged."""
    return r.raw.headers.getlist("Set-Cookie") if r.raw is not None else []


def parse_set_cookie(value):
    """'n=v; Path=/; Secure; HttpOnly; SameSite=Lax' -> (name, value, attrs)
    with attrs' keys lower-case and flag attributes mapped to True."""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), val.strip(), attrs


def find_set_cookie(r, name):
    """(value, attrs) of the Set-Cookie for `name` in response r, or None."""
    for h in set_cookie_headers(r):
        n, v, a = parse_set_cookie(h)
        if n == name:
            return v, a
    return None


def query_params(url):
    """The query of a URL as {name: value} (each name must appear once)."""
    q = parse_qs(urlsplit(url).query, keep_blank_values=True)
    for k, v in q.items():
        if len(v) != 1:
            raise AssertionError("parameter %s appears %d times in %r" % (k, len(v), url))
    return {k: v[0] for k, v in q.items()}


def strip_query(url):
    p = urlsplit(url)
    return "%s://%s%s" % (p.scheme, p.netloc, p.path)


class PageParser(html.parser.HTMLParser):
    """What the tests look at in an HTML page: its forms (action, method,
    inputs), <script> elements, external references and the visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.scripts = 0
        self.external = []  # src/href of elements that load something
        self.text_parts = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        if tag in ("script", "style"):
            self._skip += 1
        if tag in ("script", "img", "iframe", "link", "object", "embed") and (a.get("src") or a.get("href")):
            self.external.append(a.get("src") or a.get("href"))
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "inputs": []})
        elif tag in ("input", "button") and self.forms:
            self.forms[-1]["inputs"].append({"name": a.get("name"), "type": a.get("type", "text").lower(),
                                             "value": a.get("value", "")})

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text_parts.append(data)

    @property
    def text(self):
        return re.sub(r"\s+", " ", " ".join(self.text_parts)).strip()


def parse_page(body):
    p = PageParser()
    p.feed(body)
    p.close()
    return p


def login_form(page):
    """The sign-in form of a parsed page: the form with a password input."""
    for f in page.forms:
        if any(i["type"] == "password" for i in f["inputs"]):
            return f
    raise AssertionError("no form with a password field in the page: %r" % page.text[:500])


def logout_form(page):
    """The form of the "Sign out?" page: a POST to logout."""
    for f in page.forms:
        if f["method"] == "post" and f["action"].rstrip("/").endswith("logout"):
            return f
    raise AssertionError("no sign-out form in the page: %r" % page.text[:500])


def hidden_fields(form):
    return {i["name"]: i["value"] for i in form["inputs"] if i["type"] == "hidden" and i["name"]}


class SignInBrowser:
    """A cookie-keeping HTTP client that goes through the sign-in pages the
    way a browser without JavaScript does: GET /oauth/authorize, read the
    form, POST it with a username and password, follow nothing by itself
    (every response is returned for the test to look at).

    Each instance has its own cookie jar and, by default, a source address of
    its own (fresh_ip), so that failed sign-ins it makes on purpose do not
    throttle the other tests."""

    def __init__(self, fx, client_id, redirect_uri, scope=None, source_ip=None):
        self.fx = fx
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.source_ip = source_ip or fresh_ip()
        self.s = new_session(fx.verify, self.source_ip)
        self.verifier = None
        self.state = None
        self.last_page_url = None

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the authorization request --------------------------------------------------
    def authorize_params(self, **over):
        """A valid authorization request with a fresh PKCE pair and state;
        `over` replaces parameters (None drops one)."""
        self.verifier, challenge = pkce_pair()
        self.state = random_state()
        p = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
             "state": self.state, "code_challenge": challenge, "code_challenge_method": "S256"}
        if self.scope:
            p["scope"] = self.scope
        for k, v in over.items():
            if v is None:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    def authorize_url(self, **over):
        return self.fx.url + "/oauth/authorize?" + urlencode(self.authorize_params(**over))

    def authorize(self, raw_query=None, **over):
        """GET /oauth/authorize (no redirect followed)."""
        url = self.fx.url + "/oauth/authorize?" + (raw_query if raw_query is not None
                                                   else urlencode(self.authorize_params(**over)))
        self.last_page_url = url
        return self.s.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)

    # -- the sign-in page ---------------------------------------------------------------
    def login_page(self, **over):
        """GET /oauth/authorize expecting the sign-in page: (response, form)."""
        r = self.authorize(**over)
        if r.status_code != 200:
            raise AssertionError("expected the sign-in page, got %d %s\n%s" % (
                r.status_code, r.headers.get("Location"), r.text[:2000]))
        return r, login_form(parse_page(r.text))

    def post_login(self, form, username, password, csrf=None, drop=(), extra=None, page_url=None):
        """POSTs the sign-in form with its hidden fields (csrf replaced when
        given; names in `drop` left out) to wherever its action points."""
        data = hidden_fields(form)
        if csrf is not None:
            data["csrf"] = csrf
        data["username"] = username
        data["password"] = password
        for k in drop:
            data.pop(k, None)
        data.update(extra or {})
        action = urljoin(page_url or self.last_page_url or (self.fx.url + "/oauth/authorize"), form["action"])
        self.last_page_url = action
        return self.s.post(action, data=data, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def sign_in(self, username, password, **over):
        """The whole sign-in: returns the redirect's parameters (code, state,
        iss) plus verifier, location and the POST /login response."""
        _, form = self.login_page(**over)
        r = self.post_login(form, username, password)
        if r.status_code not in (302, 303):
            raise AssertionError("sign-in did not redirect: %d\n%s" % (r.status_code, r.text[:2000]))
        return self.redirect_result(r)

    def redirect_result(self, r):
        loc = r.headers.get("Location", "")
        out = query_params(loc)
        out["location"] = loc
        out["verifier"] = self.verifier
        out["response"] = r
        if "code" in out:
            self.fx.sensitive.add(out["code"])
        return out

    def code_with_session(self, **over):
        """With a live session cookie: GET /oauth/authorize answers a code
        at once. Returns the redirect's parameters and the verifier."""
        r = self.authorize(**over)
        if r.status_code != 302:
            raise AssertionError("expected a 302 with a code, got %d\n%s" % (r.status_code, r.text[:2000]))
        return self.redirect_result(r)

    # -- the token endpoint ---------------------------------------------------------------
    def exchange(self, code, verifier, redirect_uri=None, client_id=None, auth=None, source_ip=None, **extra):
        """POST /oauth/token grant_type=authorization_code as a public client
        (client_id in the body) unless `auth` (id, secret) is given."""
        data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": self.redirect_uri if redirect_uri is None else redirect_uri}
        if auth is None:
            data["client_id"] = self.client_id if client_id is None else client_id
        data.update(extra)
        data = {k: v for k, v in data.items() if v is not None}
        r = self.fx.post("/oauth/token", source_ip=source_ip, data=data, auth=auth)
        _note_tokens(self.fx, r)
        return r

    def tokens(self, username, password, **over):
        """Signs in and exchanges the code: the token response's JSON."""
        got = self.sign_in(username, password, **over)
        r = self.exchange(got["code"], got["verifier"])
        if r.status_code != 200:
            raise AssertionError("code exchange failed: %d %s" % (r.status_code, r.text))
        return r.json()

    def cookie(self, name=SESSION_COOKIE):
        for c in self.s.cookies:
            if c.name == name:
                return c.value
        return None

    def logout(self, method="GET", headers=None, **params):
        """GET or POST /logout with `params` (query or form) and `headers`,
        as a link or another site's form would: no Origin, no csrf unless
        given. With a session this gets the "Sign out?" page."""
        if method == "GET":
            url = self.fx.url + "/logout" + ("?" + urlencode(params) if params else "")
            return self.s.get(url, headers=headers, allow_redirects=False, timeout=HTTP_TIMEOUT)
        return self.s.post(self.fx.url + "/logout", data=params, headers=headers, allow_redirects=False,
                           timeout=HTTP_TIMEOUT)

    def confirm_logout(self, r, headers=None, csrf=None):
        """Submits the "Sign out?" form of response r the way a browser does
        on a click of its button: a POST of its hidden fields to its action
        (with this browser's cookies). `csrf` replaces the field's value."""
        form = logout_form(parse_page(r.text))
        data = hidden_fields(form)
        if csrf is not None:
            data["csrf"] = csrf
        action = urljoin(self.fx.url + "/logout", form["action"])
        return self.s.post(action, data=data, headers=headers, allow_redirects=False, timeout=HTTP_TIMEOUT)

    def origin(self):
        """The server's origin as a browser sends it in Origin."""
        p = urlsplit(self.fx.url)
        return "%s://%s" % (p.scheme, p.netloc)


def _note_tokens(fx, r):
    try:
        o = r.json()
    except ValueError:
        return
    if isinstance(o, dict):
        for k in ("access_token", "refresh_token"):
            if isinstance(o.get(k), str):
                fx.sensitive.add(o[k])


def refresh_response(fx, refresh_token, client_id=None, auth=None, session=None, source_ip=None, **extra):
    """POST /oauth/token grant_type=refresh_token (client_id in the body for a
    public client, or `auth` = (id, secret)); `session` a requests.Session of
    the caller's own (e.g. one per thread)."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if auth is None and client_id is not None:
        data["client_id"] = client_id
    data.update(extra)
    s = session or fx.session(source_ip)
    r = s.post(fx.url + "/oauth/token", data=data, auth=auth, timeout=HTTP_TIMEOUT)
    _note_tokens(fx, r)
    return r


def oauth_error(r):
    """The `error` of an RFC 6749 section 5.2 JSON error response, or None."""
    try:
        o = r.json()
    except ValueError:
        return None
    return o.get("error") if isinstance(o, dict) else None


def _fx_add_user(self, name, password):
    """`tokend user add NAME --password-file -` (password on stdin)."""
    r = self.admin("user", "add", name, "--password-file", "-", input=password + "\n")
    if r.rc != 0:
        raise AssertionError("user add failed:\n%r" % r)
    self.sensitive.add(password)
    return name


def _fx_add_signin_client(self, name, redirect_uris, scope, aud, public=True, ttl=None):
    """`tokend client add NAME --redirect-uri URI.. [--public] --scope ..
    --aud .. --json`: (client_id, secret or None for a public client)."""
    args = ["client", "add", name, "--json"]
    for u in (redirect_uris.split() if isinstance(redirect_uris, str) else redirect_uris):
        args += ["--redirect-uri", u]
    for s in (scope.split() if isinstance(scope, str) else scope):
        args += ["--scope", s]
    for a in (aud.split() if isinstance(aud, str) else aud):
        args += ["--aud", a]
    if public:
        args.append("--public")
    if ttl:
        args += ["--ttl", ttl]
    r = self.admin(*args)
    if r.rc != 0:
        raise AssertionError("client add failed:\n%r" % r)
    o = json.loads(r.out)
    secret = o.get("client_secret")
    if secret:
        self.sensitive.add(secret)
    if public and secret:
        raise AssertionError("a public client was given a secret: %r" % o)
    return o["client_id"], secret


def _fx_metadata(self):
    """/.well-known/oauth-authorization-server as a dict."""
    r = self.get("/.well-known/oauth-authorization-server")
    if r.status_code != 200:
        raise AssertionError("metadata: %d %s" % (r.status_code, r.text))
    return r.json()


ServerFixture.add_user = _fx_add_user
ServerFixture.add_signin_client = _fx_add_signin_client
ServerFixture.metadata = _fx_metadata


# ---------------------------------------------------------------------------
# a client app of the authorization code flow, served in this process for a
# real browser (test_signin_browser.py, test_cluster.py)

class ClientAppBase:
    """The web server of a test client app on 127.0.0.1 (an ephemeral port):
    GET / answers the page self.index() returns, GET /cb?QUERY the page
    self.callback(QUERY) returns (a subclass writes both: what the app does
    with the code differs from test to test), anything else 404. Every page
    is titled `title` and not cached. self.http (new_session(verify)) is the
    app's own client for its server-side calls; pending (state -> verifier),
    tokens and results are shared with the request threads under lock."""

    def __init__(self, title, verify):
        self.client_id = None
        self.pending = {}  # state -> verifier
        self.tokens = []
        self.results = []
        self.lock = threading.Lock()
        self.http = new_session(verify)
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/":
                    self.send(200, app.index())
                elif path == "/cb":
                    self.send(200, app.callback(query))
                else:
                    self.send(404, "<p>not found</p>")

            def send(self, status, body):
                b = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>%s</title></head>"
                     "<body>%s</body></html>" % (title, body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(b)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(b)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.redirect_uri = self.url + "/cb"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.http.close()

    def index(self):
        raise NotImplementedError

    def callback(self, query):
        raise NotImplementedError

    def authorization_request(self, server, scope, **over):
        """server's /oauth/authorize URL for this app with fresh S256 PKCE and
        state (the verifier kept in pending for the callback); `over`
        replaces parameters."""
        verifier, challenge = pkce_pair()
        state = random_state()
        with self.lock:
            self.pending[state] = verifier
        p = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
             "scope": scope, "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
        p.update(over)
        return server + "/oauth/authorize?" + urlencode(p)

    def read_callback(self, query, issuer):
        """The query of a redirect back to /cb: its parameters, the results
        every app reports (error, iss_ok, state_ok) and the verifier of its
        state (None when the state is unknown or was used already)."""
        q = {k: v[0] for k, v in parse_qs(query).items()}
        res = {"error": q.get("error"), "iss_ok": q.get("iss") == issuer}
        with self.lock:
            verifier = self.pending.pop(q.get("state", ""), None)
        res["state_ok"] = verifier is not None
        return q, res, verifier

    def exchange(self, server, code, verifier):
        """The code for tokens at server's /oauth/token, as this public client."""
        return self.http.post(server + "/oauth/token", timeout=HTTP_TIMEOUT, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": self.redirect_uri, "client_id": self.client_id})


def browser_missing(browser_dir, chromium):
    """What a browser test needs and does not find (node, Chromium,
    playwright-core in browser_dir/node_modules): the test FAILS on it."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Debian nodejs)")
    if not os.access(chromium, os.X_OK):
        missing.append("%s (Debian chromium)" % chromium)
    if not os.path.isdir(os.path.join(browser_dir, "node_modules", "playwright-core")):
        missing.append("tests/e2e/browser/node_modules (npm ci --prefix tests/e2e/browser)")
    return missing


# ---------------------------------------------------------------------------
# nginx in a temporary prefix (as test_serve_nginx.py runs it)

NGINX = "/usr/sbin/nginx"


def wait_port(port, timeout, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Nginx:
    """nginx -p DIR -c DIR/nginx.conf with `conf` (which must say
    `daemon off;`, its pid, logs and temp paths under DIR, and listen on
    `port`). FAILS when nginx is not installed (scripts/deps.sh installs
    nginx-light)."""

    def __init__(self, d, conf, port):
        if not os.access(NGINX, os.X_OK):
            raise AssertionError("%s is not installed: run scripts/deps.sh (Debian nginx-light)" % NGINX)
        self.dir = d
        self.port = port
        self.proc = None
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        self.conf_path = os.path.join(d, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.cmd = [NGINX, "-p", d, "-e", os.path.join(d, "error.log"), "-c", self.conf_path]

    def start(self):
        t = subprocess.run(self.cmd + ["-t"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if t.returncode != 0:
            raise AssertionError("nginx -t failed:\n" + t.stdout.decode("utf-8", "replace"))
        with open(os.path.join(self.dir, "nginx.stderr"), "wb") as err:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        if not wait_port(self.port, 30):
            self.stop()
            raise AssertionError("nginx did not start:\n" + self.error_log())
        return self

    def error_log(self):
        return _read(os.path.join(self.dir, "error.log"))[-5000:]

    def stop(self):
        p = self.proc
        self.proc = None
        if p is not None and p.poll() is None:
            p.terminate()  # SIGTERM: fast shutdown
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
