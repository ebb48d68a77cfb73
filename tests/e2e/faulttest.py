# SPDX-License-Identifier: Apache-2.0
"""Helpers for the fault tests (test_faults_*.py): reading the server's
SQLite store from the outside, checking refresh token families in it,
signing in many families quickly, raw sockets from a chosen loopback
address, a small tmpfs, the process's resident memory, and the access log
file. Builds on servetest (never changes it):

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import faulttest as ft
    st = ft.st

Store facts these helpers rely on (src/store/sqlite.c, schema 3):
refresh_tokens(hash BLOB(32) PK = SHA-256 of the token's text, parent
BLOB(32), zeros for the first token of a family, sid, client_id, user_id,
scope, audience, created_at, expires_at, used_at 0 = unused);
revocations(seq, kind 1 = jti / 2 = sid, value, reason, revoked_at, until);
sessions(id_hash, sid, user_id, created_at, last_seen, ended_at);
audit(id, at, kind, client_id, ip, detail). The store is in WAL mode, so a
read-only connection sees the last commit while the server runs, and after
a SIGKILL sees exactly what was committed (a commit is durable against a
process crash once its WAL frames are written, fsync or not).
"""

import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402

AUD = "orders-api"
SCOPE = "orders:read"
REDIRECT = "https://app.example/cb"
PASSWORD = "correct horse battery staple"
GRACE = 2  # seconds: flow.c REUSE_GRACE (compared in whole seconds: wait > GRACE + 1)
ZERO = bytes(32)


def sha(token):
    """The store's key of a token: SHA-256 of its text."""
    return hashlib.sha256(token.encode()).digest()


def short(token_or_hash):
    """8 hex digits to name a token or a hash in messages (never the token)."""
    if isinstance(token_or_hash, str):
        token_or_hash = sha(token_or_hash)
    return token_or_hash.hex()[:8]


# ---------------------------------------------------------------------------
# the store, from the outside

class Store:
    """A read-only view of a tokend SQLite store (safe while the server runs,
    and after it was killed: mode=ro never checkpoints or rewrites)."""

    def __init__(self, path):
        self.path = path
        self.db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def refresh_rows(self):
        """{hash: row dict} of every refresh token."""
        out = {}
        for h, parent, sid, used_at, created_at, client_id in self.db.execute(
                "SELECT hash, parent, sid, used_at, created_at, client_id FROM refresh_tokens"):
            out[bytes(h)] = {"hash": bytes(h), "parent": bytes(parent), "sid": sid, "used_at": used_at,
                             "created_at": created_at, "client_id": client_id}
        return out

    def revocations(self):
        return [{"kind": k, "value": v, "reason": r, "revoked_at": at} for k, v, r, at in
                self.db.execute("SELECT kind, value, reason, revoked_at FROM revocations ORDER BY seq")]

    def revoked_sids(self):
        return {r["value"] for r in self.revocations() if r["kind"] == 2}

    def audit(self, kind=None):
        q = "SELECT id, at, kind, client_id, ip, detail FROM audit"
        rows = self.db.execute(q + (" WHERE kind = ?" if kind else "") + " ORDER BY id",
                               (kind,) if kind else ())
        return [dict(zip(("id", "at", "kind", "client_id", "ip", "detail"), r)) for r in rows]

    def session_ended(self, sid):
        row = self.db.execute("SELECT ended_at FROM sessions WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else row[0]


def read_store(path):
    with Store(path) as s:
        return s.refresh_rows(), s.revoked_sids(), s.audit("refresh_reuse")


def check_families(rows, sids=None):
    """Checks the shape of every refresh token family (rows grouped by sid),
    or of the families `sids`:

      - exactly one first token (parent = zeros);
      - every other token's parent is a token of the same family;
      - every used token has exactly one child, an unused token has none;
      - so the family is one chain from the first token to exactly one
        unused head, with no branch.

    Returns {sid: [hashes from first to head]}; raises AssertionError
    naming the family and what is wrong."""
    fams = {}
    for r in rows.values():
        fams.setdefault(r["sid"], []).append(r)
    if sids is not None:
        missing = [s for s in sids if s not in fams]
        if missing:
            raise AssertionError("families with no refresh token in the store (lost): %r" % missing)
        fams = {s: fams[s] for s in sids}
    chains = {}
    for sid, rs in fams.items():
        by_hash = {r["hash"]: r for r in rs}
        children = {}
        for r in rs:
            if r["parent"] != ZERO:
                if r["parent"] not in by_hash:
                    raise AssertionError("family %s: token %s has a parent %s outside the family"
                                         % (sid, short(r["hash"]), short(r["parent"])))
                children.setdefault(r["parent"], []).append(r)
        roots = [r for r in rs if r["parent"] == ZERO]
        if len(roots) != 1:
            raise AssertionError("family %s has %d first tokens" % (sid, len(roots)))
        for r in rs:
            kids = children.get(r["hash"], [])
            if r["used_at"] and len(kids) != 1:
                raise AssertionError("family %s: used token %s has %d successors (accepted %s)"
                                     % (sid, short(r["hash"]), len(kids),
                                        "twice" if kids else "with its successor lost"))
            if not r["used_at"] and kids:
                raise AssertionError("family %s: unused token %s has %d successors"
                                     % (sid, short(r["hash"]), len(kids)))
        chain = [roots[0]]
        while chain[-1]["used_at"]:
            chain.append(children[chain[-1]["hash"]][0])
        if len(chain) != len(rs):
            raise AssertionError("family %s: %d tokens, but the chain from its first token has %d"
                                 % (sid, len(rs), len(chain)))
        chains[sid] = [r["hash"] for r in chain]
    return chains


# ---------------------------------------------------------------------------
# sign-in

def setup_signin(fx, users=("alice",)):
    """Users (password PASSWORD) and a public sign-in client; its id."""
    for u in users:
        fx.add_user(u, PASSWORD)
    cid, _ = fx.add_signin_client("spa", REDIRECT, SCOPE, AUD)
    return cid


def sign_in(fx, client_id, user="alice", source_ip=None):
    """A fresh sign-in (own browser, own sid): the token response JSON,
    with "sid" added from the access token."""
    b = st.SignInBrowser(fx, client_id, REDIRECT, source_ip=source_ip)
    try:
        t = b.tokens(user, PASSWORD)
    finally:
        b.close()
    t["sid"] = st.jwt_parts(t["access_token"])[1]["sid"]
    return t


def auth(fx, session, access, timeout=st.HTTP_TIMEOUT):
    return session.get(fx.url + "/auth", params={"aud": AUD, "scope": SCOPE},
                       headers={"Authorization": "Bearer " + access}, timeout=timeout)


def describe(r):
    try:
        o = r.json()
    except ValueError:
        return "%d %r" % (r.status_code, r.text[:300])
    if isinstance(o, dict):
        o = {k: v for k, v in o.items() if k not in ("access_token", "refresh_token")}
    return "%d %s" % (r.status_code, json.dumps(o))


def description(r):
    try:
        return r.json().get("error_description", "")
    except (ValueError, AttributeError):
        return ""


# ---------------------------------------------------------------------------
# the access log file

def check_log_file(path):
    """(lines, problems): every line of the access log must be one JSON
    object and the file must end at a line boundary (a SIGKILL may only
    cut between lines)."""
    with open(path, "rb") as f:
        data = f.read()
    problems = []
    if data and not data.endswith(b"\n"):
        problems.append("the file ends inside a line: %r" % data[-200:])
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, line in enumerate(lines):
        try:
            o = json.loads(line.decode("utf-8"))
            if not isinstance(o, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as e:
            problems.append("line %d is not a JSON object (%s): %r" % (i + 1, e, line[:200]))
    return len(lines), problems


# ---------------------------------------------------------------------------
# processes and sockets

def rss_kib(pid):
    """VmRSS of a process in KiB (None when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def raise_nofile(want):
    """Raises this process's RLIMIT_NOFILE soft limit to `want` (or its hard
    limit); servers started afterwards inherit it. Returns the new soft
    limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def connect_from(source_ip, port, host="127.0.0.1", timeout=10.0):
    """A blocking TCP connection to host:port from source_ip."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect((host, port))
    return s


def http_raw(sock, method, path, headers=(), body=None, host="localhost", timeout=10.0):
    """One HTTP/1.1 request on an open plain-HTTP socket (keep-alive):
    (status, headers dict lower-case, body bytes). Raises OSError/ValueError
    on a closed or broken connection."""
    sock.settimeout(timeout)
    headers = list(headers)
    if body is not None:
        headers.append(("Content-Length", str(len(body))))
    req = "%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (method, path, host,
                                                     "".join("%s: %s\r\n" % h for h in headers))
    sock.sendall(req.encode() + (body or b""))
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            raise ValueError("connection closed before a response head")
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise ValueError("not an HTTP response: %r" % lines[0])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            raise ValueError("connection closed inside a response body")
        rest += d
    return int(m.group(1)), hdrs, rest[:n]


def http_get_raw(sock, path, headers=(), host="localhost", timeout=10.0):
    return http_raw(sock, "GET", path, headers, None, host, timeout)


class AuthProbe:
    """A thread that calls GET /auth?aud=AUD&scope=SCOPE with `token` every
    `every` s for `seconds` s, each call on a NEW connection from `source`
    (plain HTTP): results is [(status or the error's repr, seconds)]."""

    def __init__(self, source, port, token, seconds, every=0.25, headers=()):
        import threading
        self.source, self.port, self.token, self.seconds, self.every = source, port, token, seconds, every
        self.headers = list(headers)
        self.results = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def join(self, timeout=60):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("the /auth probe did not finish")
        return self

    def _run(self):
        t_end = time.monotonic() + self.seconds
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                s = connect_from(self.source, self.port, timeout=30)
                try:
                    status = http_get_raw(s, "/auth?aud=%s&scope=%s" % (AUD, SCOPE),
                                          [("Authorization", "Bearer " + self.token)] + self.headers, timeout=30)[0]
                finally:
                    s.close()
            except (OSError, ValueError) as e:
                status = repr(e)
            self.results.append((status, time.monotonic() - t0))
            time.sleep(max(0.0, self.every - (time.monotonic() - t0)))

    def failures(self, bound):
        """The calls that did not answer 200 within `bound` s."""
        return [(s, round(x, 3)) for s, x in self.results if s != 200 or x > bound]

    def summary(self):
        lat = sorted(x for _, x in self.results) or [0.0]
        return "%d calls, %s, latency median %.3f s, max %.3f s" % (
            len(self.results), sorted(set(str(s) for s, _ in self.results)), lat[len(lat) // 2], lat[-1])


# ---------------------------------------------------------------------------
# a small tmpfs

class Tmpfs:
    """A tmpfs of `size` mounted on a new directory (root, or root in a user
    and mount namespace of its own: see reexec_in_namespace). mount() raises
    unittest.SkipTest with the reason when mounting is not possible."""

    def __init__(self, size="4m", prefix="tokend-tmpfs-"):
        import tempfile
        self.size = size
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.mounted = False

    def mount(self):
        import unittest
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % self.size, "tmpfs", self.dir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if p.returncode != 0:
            os.rmdir(self.dir)
            raise unittest.SkipTest("cannot mount a tmpfs (needs root or a user namespace): %s"
                                    % p.stdout.decode("utf-8", "replace").strip())
        self.mounted = True
        return self

    def free_bytes(self):
        v = os.statvfs(self.dir)
        return v.f_bavail * v.f_frsize

    def fill(self, name="filler"):
        """Writes a file until the tmpfs is full (ENOSPC at 1-byte writes);
        returns its path."""
        import errno
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 4096, 512, 1):
                chunk = b"\0" * size
                while True:
                    try:
                        os.write(fd, chunk)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return path

    def unmount(self):
        if self.mounted:
            p = subprocess.run(["umount", self.dir], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            if p.returncode != 0:  # something still holds a file: detach it anyway
                subprocess.run(["umount", "-l", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30)
            self.mounted = False
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


REEXEC_MARK = "TOKEND_FAULTS_IN_NAMESPACE"


def reexec_in_namespace(argv0):
    """Not root: runs this test file again as root of a user and mount
    namespace of its own (`unshare --user --map-root-user --mount`), when
    unshare works here. Returns only when it does not (then the tests that
    need a mount skip with the reason)."""
    import shutil
    if os.geteuid() == 0 or os.environ.get(REEXEC_MARK) or not shutil.which("unshare"):
        return
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    if probe.returncode != 0:
        return
    os.environ[REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("unshare", ["unshare", "--user", "--map-root-user", "--mount", sys.executable,
                          os.path.abspath(argv0)] + sys.argv[1:])


# ---------------------------------------------------------------------------
# a sign-in flood (test_faults_signin_flood.py, bench/signin_flood.py)

def forged_login_form(port, client_id, redirect=REDIRECT, host="127.0.0.1"):
    """What an attacker needs to POST the sign-in form at will, from one
    GET of the sign-in page (plain HTTP): (action path, hidden fields).
    The CSRF pair it then sends is made up (flood_body)."""
    from urllib.parse import urlencode, urljoin, urlsplit
    verifier, challenge = st.pkce_pair()
    q = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect,
                   "state": st.random_state(), "code_challenge": challenge, "code_challenge_method": "S256",
                   "scope": SCOPE})
    s = connect_from(host, port)
    try:
        status, _, body = http_get_raw(s, "/oauth/authorize?" + q)
    finally:
        s.close()
    if status != 200:
        raise AssertionError("the sign-in page: %d %r" % (status, body[:300]))
    form = st.login_form(st.parse_page(body.decode("utf-8")))
    action = urlsplit(urljoin("http://x/oauth/authorize", form["action"])).path
    return action, st.hidden_fields(form)


class AddressPool:
    """Distinct loopback source addresses 127.A.B.C with A >= 1 (servetest's
    fresh_ip hands out 127.0.x.y: no overlap)."""

    def __init__(self, first=1):
        import threading
        self.n = 0
        self.first = first
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            n = self.n
            self.n += 1
        return "127.%d.%d.%d" % (self.first + n // 62500, (n // 250) % 250, 2 + n % 250)


class LoginFlood:
    """`concurrency` threads, each POSTing the sign-in form in a loop until
    `seconds` pass: a forged double-submit CSRF pair (cookie and field
    equal, made up here), an unknown username, a wrong password, each
    attempt on a new connection from a new source address (so no
    per-address throttle applies). pause_on_503: seconds a thread waits
    after a 503 (0: none, a real flood; the benchmark uses a short pause so
    that its own CPU does not compete with what it measures).

    After join(): counts {status or error name: n}, retry_after (the
    Retry-After values of the 503s), bad (answers without what they must
    carry)."""

    def __init__(self, port, action, fields, csrf_cookie, concurrency, seconds, pause_on_503=0.0, addresses=None):
        import threading
        self.port, self.action, self.fields, self.cookie = port, action, dict(fields), csrf_cookie
        self.seconds, self.pause = seconds, pause_on_503
        self.addresses = addresses or AddressPool()
        self.counts = {}
        self.retry_after = []
        self.bad = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(concurrency)]

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout=120):
        for t in self.threads:
            t.join(timeout)
        return self

    def halt(self):
        self.stop.set()
        return self.join()

    def _body(self, i, k, csrf):
        from urllib.parse import urlencode
        data = dict(self.fields)
        data.update({"csrf": csrf, "username": "nobody-%d-%d-%s" % (i, k, os.urandom(4).hex()),
                     "password": "not the password"})
        return urlencode(data).encode()

    def attempt(self, i=0, k=0):
        """One sign-in attempt: (status or the error's name, headers)."""
        import base64
        csrf = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        body = self._body(i, k, csrf)
        headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "%s=%s" % (self.cookie, csrf))]
        try:
            s = connect_from(self.addresses.next(), self.port, timeout=60)
            try:
                status, hdrs, _ = http_raw(s, "POST", self.action, headers, body, timeout=60)
            finally:
                s.close()
        except (OSError, ValueError) as e:
            return type(e).__name__, {}
        return status, hdrs

    def _run(self, i):
        import random
        k = 0
        t_end = self.t0 + self.seconds
        while time.monotonic() < t_end and not self.stop.is_set():
            k += 1
            status, hdrs = self.attempt(i, k)
            with self.lock:
                self.counts[status] = self.counts.get(status, 0) + 1
                if status == 503:
                    ra = hdrs.get("retry-after", "")
                    if ra.isdigit() and int(ra) >= 1:
                        self.retry_after.append(int(ra))
                    else:
                        self.bad.append("503 without a Retry-After of at least 1 s: %r" % hdrs)
            if status == 503 and self.pause:
                time.sleep(self.pause * (0.5 + random.random()))
