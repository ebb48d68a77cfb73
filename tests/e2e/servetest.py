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

Client authentication failures are throttled per client id AND per source
IP (issue 3 section 6): a test that fails client authentication on purpose
gets a source address of its own from fresh_ip() (any 127.x.y.z reaches a
server on 127.0.0.1), so that it does not throttle the other tests.
"""

import base64
import hashlib
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
            m = re.search(r"listening on (\S+)", self.stdout())
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
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

    def add_client(self, name, scope, aud, ttl=None):
        """`tokend client add NAME --scope .. --aud .. --json`: (id, secret)."""
        args = ["client", "add", name, "--json"]
        for s in (scope.split() if isinstance(scope, str) else scope):
            args += ["--scope", s]
        for a in (aud.split() if isinstance(aud, str) else aud):
            args += ["--aud", a]
        if ttl:
            args += ["--ttl", ttl]
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

    def metrics(self):
        """/metrics parsed: {(name, frozenset(labels.items())): float}."""
        r = self.get("/metrics")
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


def main():
    unittest.main(verbosity=2)
