# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of what `tokend serve` does about the network in front of
it (issue 8 section 2), functional checks only (the slowloris and flood
fault suite is elsewhere):

  NoTrustedProxy      without --trusted-proxy (or with a range the peer is
                      not in) X-Forwarded-For is ignored: the log's ip is
                      the TCP peer, and throttling keys on the peer
  TrustedProxy        --trusted-proxy 127.0.0.0/8: the client address is read
                      from X-Forwarded-For from the right, skipping trusted
                      hops; "ip" is the client, "peer" the proxy; throttling
                      keys on the forwarded address; a garbage entry gives
                      the peer and a log line saying so; trusted proxies are
                      exempt from --max-connections-per-ip
  ForwardedHeader     --forwarded-header forwarded (RFC 7239)
  BadProxySettings    a bad --trusted-proxy or --forwarded-header fails
                      start-up with a clear message
  ConnectionLimit     --max-connections-per-ip 3: a 4th connection from one
                      address is closed at once, others are served
  RequestDeadline     --request-timeout 1s: half a request head, then
                      nothing: cut within about 1.25 s
  Readiness           /readyz commits a write: 503 while the store cannot
  LoginPool           --login-workers 1 --login-queue 0: sign-ins beyond
                      the pool get 503 + Retry-After; the server answers
  AdminListener       the admin listener (--admin-listen, plain HTTP)
                      serves /metrics, /healthz and /readyz and nothing
                      else; the public listener (HTTPS) answers 404 for
                      /metrics, and its log line says where it is
  AdminPerAddress     connections to the admin listener do not count
                      against --max-connections-per-ip
  PublicMetrics       --public-metrics: /metrics on both listeners
  AdminListenerOff    --admin-listen off: no admin listener; /metrics
                      nowhere, or on the public listener with
                      --public-metrics
  AdminListenFailures a bad --admin-listen, or its port in use, fails
                      start-up with a message naming --admin-listen

Every source address comes from st.fresh_ip() (distinct loopback peers).

Run by hand with

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_serve_network.py
"""

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

AUD = "orders-api"
SCOPE = "orders:read"
REDIRECT = "https://app.example/cb"
PASSWORD = "correct horse battery staple"


def raw_connect(fx, source_ip, timeout=10.0):
    """A plain TCP connection to an --insecure-http fixture from source_ip."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", fx.port))
    return s


def raw_request(s, path="/healthz"):
    """Sends one keep-alive GET on socket s and reads its whole answer:
    (status, head text). Leaves the connection open."""
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("connection closed before an answer: %r" % buf)
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    length = 0
    for line in text.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    return int(text.split(" ", 2)[1]), text


def read_until_closed(s, limit):
    """Reads s until the server closes it (or resets it) or `limit` s pass:
    (bytes read, seconds waited, closed?)."""
    t0 = time.monotonic()
    got = b""
    s.settimeout(0.05)
    while time.monotonic() - t0 < limit:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return got, time.monotonic() - t0, True
        if not chunk:
            return got, time.monotonic() - t0, True
        got += chunk
    return got, time.monotonic() - t0, False


def serve_fails(args, env):
    """`tokend serve ARGS` that must exit non-zero at once: stderr."""
    p = subprocess.run([tt.tokend_bin(), "serve"] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if p.returncode == 0 or "listening on" in out:
        raise AssertionError("started anyway: %r\n%s%s" % (args, out, err))
    return err


class FixtureCase(unittest.TestCase):
    HTTPS = False
    EXTRA = ()

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=cls.HTTPS, extra=cls.EXTRA, name=cls.__name__)
        cls.fx.start()

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def logged(self, r):
        return self.fx.log_for(r.headers["X-Request-Id"])


# ---------------------------------------------------------------------------
# forwarding headers

class NoTrustedProxy(FixtureCase):
    def test_x_forwarded_for_is_ignored(self):
        fx = self.fx
        peer = st.fresh_ip()
        for value in ("203.0.113.9", "198.51.100.1, 203.0.113.9", "garbage"):
            with self.subTest(xff=value):
                r = fx.get("/healthz", source_ip=peer, headers={"X-Forwarded-For": value})
                self.assertEqual(r.status_code, 200)
                line = self.logged(r)
                self.assertEqual(line.get("ip"), peer, line)
                self.assertNotIn("peer", line)
                self.assertNotIn("parse", line.get("detail", ""), line)
        r = fx.get("/healthz", source_ip=peer, headers={"Forwarded": 'for="[2001:db8::1]:4711"'})
        self.assertEqual(self.logged(r).get("ip"), peer)

    def test_throttling_ignores_x_forwarded_for(self):
        """A client cannot slip out of its throttle by writing another
        address into X-Forwarded-For, nor throttle someone else's."""
        fx = self.fx
        cid, secret = fx.add_client("xff-untrusted", SCOPE, AUD)
        peer = st.fresh_ip()
        st.early_in_second()
        got = []
        for i in range(8):
            r = fx.post("/oauth/token", source_ip=peer, auth=(cid, "tokend_cs_wrong"),
                        data={"grant_type": "client_credentials"},
                        headers={"X-Forwarded-For": "203.0.113.%d" % (i + 1)})
            got.append(r.status_code)
            if r.status_code == 429:
                break
        self.assertEqual(got[-1], 429, "a new X-Forwarded-For each time escaped the throttle: %r" % got)
        r = fx.post("/oauth/token", source_ip=peer, auth=(cid, secret), data={"grant_type": "client_credentials"},
                    headers={"X-Forwarded-For": "192.0.2.77"})
        self.assertEqual(r.status_code, 429, r.text)
        # another peer naming the throttled peer's (forwarded) addresses is served
        r = fx.post("/oauth/token", source_ip=st.fresh_ip(), auth=(cid, secret),
                    data={"grant_type": "client_credentials"}, headers={"X-Forwarded-For": "203.0.113.1"})
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])


class UntrustedPeer(FixtureCase):
    """Trusted proxies configured, but not the peer: the header is ignored."""
    EXTRA = ("--trusted-proxy", "10.0.0.0/8,192.0.2.1,::1")

    def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(self):
        peer = st.fresh_ip()
        r = self.fx.get("/healthz", source_ip=peer, headers={"X-Forwarded-For": "203.0.113.9"})
        line = self.logged(r)
        self.assertEqual(line.get("ip"), peer, line)
        self.assertNotIn("peer", line)


class TrustedProxy(FixtureCase):
    # every loopback peer is a "proxy"; the limit shows they are exempt
    EXTRA = ("--trusted-proxy", "127.0.0.0/8", "--max-connections-per-ip", "2")

    def via(self, xff, path="/healthz", peer=None, **kw):
        peer = peer or st.fresh_ip()
        headers = kw.pop("headers", {})
        if xff is not None:
            headers["X-Forwarded-For"] = xff
        return peer, self.fx.request(kw.pop("method", "GET"), path, source_ip=peer, headers=headers, **kw)

    def test_client_address_from_x_forwarded_for(self):
        peer, r = self.via("203.0.113.9")
        self.assertEqual(r.status_code, 200)
        line = self.logged(r)
        self.assertEqual(line.get("ip"), "203.0.113.9", line)
        self.assertEqual(line.get("peer"), peer, line)
        # IPv6, and optional whitespace around the comma
        peer, r = self.via("198.51.100.1 ,  2001:db8::2")
        line = self.logged(r)
        self.assertEqual(line.get("ip"), "2001:db8::2", line)
        self.assertEqual(line.get("peer"), peer, line)

    def test_no_header_the_peer_is_the_client(self):
        peer, r = self.via(None)
        line = self.logged(r)
        self.assertEqual(line.get("ip"), peer, line)
        self.assertNotIn("peer", line)

    def test_forged_prefix_is_not_read(self):
        """The client wrote 198.51.100.1 itself; our proxy appended the
        address it saw: the rightmost untrusted entry is the client."""
        for xff in ("198.51.100.1, 203.0.113.9", "198.51.100.1,203.0.113.9", "127.0.0.9, 203.0.113.9"):
            with self.subTest(xff=xff):
                _, r = self.via(xff)
                self.assertEqual(self.logged(r).get("ip"), "203.0.113.9")
        # two header lines are one list, the last line nearest
        peer = st.fresh_ip()
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.fx.port, timeout=st.HTTP_TIMEOUT,
                                          source_address=(peer, 0))
        try:
            conn.putrequest("GET", "/healthz")
            conn.putheader("X-Forwarded-For", "198.51.100.1")
            conn.putheader("X-Forwarded-For", "203.0.113.9")
            conn.endheaders()
            resp = conn.getresponse()
            resp.read()
            line = self.fx.log_for(resp.getheader("X-Request-Id"))
        finally:
            conn.close()
        self.assertEqual(line.get("ip"), "203.0.113.9", line)
        self.assertEqual(line.get("peer"), peer, line)

    def test_trusted_hops_are_skipped(self):
        # client, then a second proxy of ours (trusted), then the peer
        peer, r = self.via("198.51.100.1, 203.0.113.9, 127.0.0.77")
        line = self.logged(r)
        self.assertEqual(line.get("ip"), "203.0.113.9", line)
        self.assertEqual(line.get("peer"), peer, line)
        # only trusted hops: the leftmost is the origin
        _, r = self.via("127.0.0.55, 127.0.0.66")
        self.assertEqual(self.logged(r).get("ip"), "127.0.0.55")

    def test_garbage_rightmost_entry_gives_the_peer(self):
        for xff in ("203.0.113.9, not-an-address", "203.0.113.9, 999.1.1.1", "unknown", "203.0.113.9,, _hidden"):
            with self.subTest(xff=xff):
                peer, r = self.via(xff)
                self.assertEqual(r.status_code, 200)
                line = self.logged(r)
                self.assertEqual(line.get("ip"), peer, line)
                self.assertIn("X-Forwarded-For", line.get("detail", ""), line)
                self.assertIn("does not parse", line.get("detail", ""), line)

    def test_throttling_keys_on_the_forwarded_address(self):
        fx = self.fx
        cid, secret = fx.add_client("behind-proxy", SCOPE, AUD)
        proxy = st.fresh_ip()
        a, b = "203.0.113.50", "203.0.113.51"
        st.early_in_second()
        got = []
        for _ in range(10):
            _, r = self.via(a, "/oauth/token", peer=proxy, method="POST", auth=(cid, "tokend_cs_wrong"),
                            data={"grant_type": "client_credentials"})
            got.append(r.status_code)
            if r.status_code == 429:
                break
            self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(got[-1], 429, got)
        self.assertGreaterEqual(len(got), 6, got)
        line = self.logged(r)
        self.assertEqual(line.get("ip"), a, line)
        self.assertEqual(line.get("peer"), proxy, line)
        # A waits, with the right secret too
        _, r = self.via(a, "/oauth/token", peer=proxy, method="POST", auth=(cid, secret),
                        data={"grant_type": "client_credentials"})
        self.assertEqual(r.status_code, 429, r.text)
        # the same proxy forwarding for B: served
        _, r = self.via(b, "/oauth/token", peer=proxy, method="POST", auth=(cid, secret),
                        data={"grant_type": "client_credentials"})
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])

    def test_trusted_proxies_are_exempt_from_the_connection_limit(self):
        proxy = st.fresh_ip()
        socks = []
        try:
            for _ in range(4):  # --max-connections-per-ip 2
                s = raw_connect(self.fx, proxy)
                socks.append(s)
                status, _ = raw_request(s)
                self.assertEqual(status, 200)
            for s in socks:  # all still open and serving
                self.assertEqual(raw_request(s)[0], 200)
        finally:
            for s in socks:
                s.close()


class ForwardedHeader(FixtureCase):
    EXTRA = ("--trusted-proxy", "127.0.0.0/8", "--forwarded-header", "forwarded")

    def test_forwarded_for(self):
        fx = self.fx
        for value, want in (('for="[2001:db8::1]:4711"', "2001:db8::1"),
                            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
                            ('for=198.51.100.1, for="203.0.113.9:80"', "203.0.113.9"),
                            ("For=203.0.113.10", "203.0.113.10")):
            with self.subTest(forwarded=value):
                peer = st.fresh_ip()
                r = fx.get("/healthz", source_ip=peer, headers={"Forwarded": value})
                self.assertEqual(r.status_code, 200)
                line = self.logged(r)
                self.assertEqual(line.get("ip"), want, line)
                self.assertEqual(line.get("peer"), peer, line)

    def test_x_forwarded_for_is_not_read(self):
        peer = st.fresh_ip()
        r = self.fx.get("/healthz", source_ip=peer, headers={"X-Forwarded-For": "203.0.113.9"})
        line = self.logged(r)
        self.assertEqual(line.get("ip"), peer, line)
        self.assertNotIn("peer", line)

    def test_garbage_gives_the_peer(self):
        peer = st.fresh_ip()
        r = self.fx.get("/healthz", source_ip=peer, headers={"Forwarded": "for=203.0.113.9, for=not-an-ip"})
        line = self.logged(r)
        self.assertEqual(line.get("ip"), peer, line)
        self.assertIn("does not parse", line.get("detail", ""), line)


class BadProxySettings(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=False, name="bad-proxy")

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def test_bad_trusted_proxy_fails_start_up(self):
        for bad in ("10.0.0.0/33", "not-an-ip", "10.0.0.0/8,bogus", "2001:db8::/129", "10.0.0.0/-1"):
            with self.subTest(value=bad):
                err = serve_fails(["--listen", "127.0.0.1:0", "--insecure-http", "--data-dir", self.fx.td,
                                   "--trusted-proxy", bad], self.fx.env())
                self.assertRegex(err, r"(?i)trusted.prox")
                self.assertIn(bad.split(",")[-1], err)
        err = serve_fails(["--listen", "127.0.0.1:0", "--insecure-http", "--data-dir", self.fx.td],
                          self.fx.env(TOKEND_TRUSTED_PROXY="300.1.1.1"))
        self.assertIn("300.1.1.1", err)

    def test_bad_forwarded_header_fails_start_up(self):
        err = serve_fails(["--listen", "127.0.0.1:0", "--insecure-http", "--data-dir", self.fx.td,
                           "--forwarded-header", "x-real-ip"], self.fx.env())
        self.assertIn("--forwarded-header", err)
        self.assertIn("x-forwarded-for", err)


# ---------------------------------------------------------------------------
# connections

class ConnectionLimit(FixtureCase):
    EXTRA = ("--max-connections-per-ip", "3")

    def test_fourth_connection_from_one_address_is_closed(self):
        fx = self.fx
        before = st.metric(fx.metrics(), "tokend_connections_refused_total")
        ip = st.fresh_ip()
        held = []
        try:
            # three connections, each known to be accepted (it answered),
            # then idle (keep-alive)
            for _ in range(3):
                s = raw_connect(fx, ip)
                held.append(s)
                self.assertEqual(raw_request(s)[0], 200)
            s4 = raw_connect(fx, ip)
            try:
                try:
                    s4.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                except (ConnectionResetError, BrokenPipeError):
                    pass
                got, waited, closed = read_until_closed(s4, 5.0)
            finally:
                s4.close()
            self.assertTrue(closed, "the 4th connection was not closed within 5 s")
            self.assertLess(waited, 2.0, "closed only after %.2f s" % waited)
            self.assertNotIn(b"200 OK", got)
            # another address connects and gets answers meanwhile
            other = st.fresh_ip()
            r = fx.get("/healthz", source_ip=other)
            self.assertEqual(r.status_code, 200)
            s5 = raw_connect(fx, other)
            held.append(s5)
            self.assertEqual(raw_request(s5)[0], 200)
            # the three held connections still serve
            for s in held[:3]:
                self.assertEqual(raw_request(s)[0], 200)
            after = st.metric(fx.metrics(), "tokend_connections_refused_total")
            self.assertGreaterEqual(after - before, 1)
            # a limit, not a ban: once one closes, the address connects again
            held.pop(0).close()

            def again():
                try:
                    s = raw_connect(fx, ip, timeout=2.0)
                except OSError:
                    return None
                try:
                    return raw_request(s)[0] == 200 and s
                except (AssertionError, OSError):
                    s.close()
                    return None
            s6, _ = st.wait_for(again, 5.0, interval=0.1)
            self.assertTrue(s6, "the address could not connect again after closing one of its connections")
            held.append(s6)
        finally:
            for s in held:
                s.close()


class RequestDeadline(FixtureCase):
    """(An idle keep-alive connection is cut after the deadline too: every
    request here goes on a connection of its own.)"""
    EXTRA = ("--request-timeout", "1s")
    D = 1.0

    def metrics(self):
        r = self.fx.admin_get("/metrics")
        self.assertEqual(r.status_code, 200)
        return st.parse_metrics(r.text)

    def test_half_a_head_then_nothing_is_cut(self):
        fx = self.fx
        before = st.metric(self.metrics(), "tokend_connections_cut_total")
        s = raw_connect(fx, st.fresh_ip())
        try:
            t0 = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            got, _, closed = read_until_closed(s, self.D + 5.0)
            took = time.monotonic() - t0
        finally:
            s.close()
        self.assertTrue(closed, "a stalled request head was not cut within %.1f s" % (self.D + 5.0))
        self.assertNotIn(b"200 OK", got)
        self.assertGreaterEqual(took, self.D - 0.1, "cut before the deadline: %.2f s" % took)
        # about D + 0.25 s (the sweeper's period), with room for a loaded CI
        self.assertLessEqual(took, self.D + 0.25 + 0.5, "cut only after %.2f s" % took)
        after = st.metric(self.metrics(), "tokend_connections_cut_total")
        self.assertGreaterEqual(after - before, 1)
        # a complete request on a fresh connection still works
        s = raw_connect(fx, st.fresh_ip())
        try:
            self.assertEqual(raw_request(s)[0], 200)
        finally:
            s.close()
        self.assertEqual(fx.get("/healthz", source_ip=st.fresh_ip()).status_code, 200)

    def test_idle_keep_alive_connection_is_cut(self):
        s = raw_connect(self.fx, st.fresh_ip())
        try:
            self.assertEqual(raw_request(s)[0], 200)
            t0 = time.monotonic()
            got, _, closed = read_until_closed(s, self.D + 5.0)
            took = time.monotonic() - t0
        finally:
            s.close()
        self.assertTrue(closed, "an idle connection was kept for %.1f s" % took)
        self.assertEqual(got, b"")
        self.assertLessEqual(took, self.D + 0.25 + 0.5, "cut only after %.2f s" % took)

    def test_the_deadline_restarts_for_each_request(self):
        """A keep-alive connection that sends whole requests within the
        deadline keeps working past it."""
        s = raw_connect(self.fx, st.fresh_ip())
        try:
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < self.D * 2:
                self.assertEqual(raw_request(s)[0], 200)
                n += 1
                time.sleep(self.D / 3)
            self.assertGreaterEqual(n, 4)
        finally:
            s.close()


# ---------------------------------------------------------------------------
# readiness

class Readiness(FixtureCase):
    def test_ready(self):
        r = self.fx.get("/readyz")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.text, "ready\n")
        self.assertIn("no-store", r.headers.get("Cache-Control", ""))

    def test_not_ready_while_the_store_cannot_commit_a_write(self):
        """Another process holds the store's write lock (works as root too,
        where a read-only mode would not stop the server): /readyz must try
        a COMMIT to see it; a read would still succeed."""
        fx = self.fx
        self.assertEqual(fx.get("/readyz").status_code, 200)
        db = sqlite3.connect(fx.store_path, timeout=10, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock, held
            try:
                def not_ready():
                    r = fx.get("/readyz")
                    return [r] if r.status_code == 503 else None  # (a 503 Response is falsy)
                got, waited = st.wait_for(not_ready, 30.0, interval=0.2)
                self.assertTrue(got, "/readyz stayed ready while the store could not commit a write")
                r = got[0]
                self.assertTrue(r.text.startswith("not ready: the store cannot commit a write"), r.text)
                self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"))
                self.assertEqual(self.logged(r).get("status"), 503)
                # alive all the same
                self.assertEqual(fx.get("/healthz").status_code, 200)
            finally:
                db.execute("ROLLBACK")
        finally:
            db.close()
        r, waited = st.wait_for(lambda: fx.get("/readyz").status_code == 200, 15.0, interval=0.2)
        self.assertTrue(r, "/readyz did not come back once the store could write again")


# ---------------------------------------------------------------------------
# sign-in password checks in a bounded pool

class LoginPool(FixtureCase):
    HTTPS = True  # the __Host- cookies of the sign-in pages
    EXTRA = ("--login-workers", "1", "--login-queue", "0")
    BUSY = "Too many people are signing in right now. Try again in a moment."

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fx.add_user("pat", PASSWORD)
        cls.cid, _ = cls.fx.add_signin_client("spa", REDIRECT, SCOPE, AUD)

    def round(self, n):
        """n sign-ins at once, each from its own address with its own valid
        CSRF pair; one with the right password. Also polls /healthz while
        they run. Returns ([(browser, response)], [healthz statuses])."""
        fx = self.fx
        browsers = []
        for _ in range(n):
            b = st.SignInBrowser(fx, self.cid, REDIRECT, scope=SCOPE)
            self.addCleanup(b.close)
            _, form = b.login_page()
            browsers.append((b, form))
        barrier = threading.Barrier(n + 1)
        results = [None] * n
        health = []
        done = threading.Event()

        def post(i):
            b, form = browsers[i]
            barrier.wait()
            try:
                results[i] = b.post_login(form, "pat", PASSWORD if i == 0 else "wrong password %d" % i)
            except Exception as exc:  # noqa: BLE001 - reported below
                results[i] = exc

        def poll():
            s = st.new_session(fx.verify, st.fresh_ip())
            try:
                while not done.is_set():
                    health.append(s.get(fx.url + "/healthz", timeout=st.HTTP_TIMEOUT).status_code)
                    time.sleep(0.01)
            finally:
                s.close()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        poller = threading.Thread(target=poll)
        poller.start()
        barrier.wait()
        for t in threads:
            t.join(120)
        done.set()
        poller.join(60)
        return [(browsers[i][0], results[i]) for i in range(n)], health

    def test_busy_pool_answers_503_and_the_rest_normally(self):
        fx = self.fx
        before = fx.metrics()
        busy = []
        normal = []
        health = []
        for _ in range(3):  # a round almost always has a 503; be sure
            got, h = self.round(8)
            health += h
            for b, r in got:
                self.assertNotIsInstance(r, Exception, r)
                (busy if r.status_code == 503 else normal).append(r)
            if busy:
                break
        self.assertTrue(busy, "no 503 with one worker and no queue: %r" % [r.status_code for r in normal])
        for r in normal:
            self.assertIn(r.status_code, (401, 303), r.text[:500])
        for r in busy:
            ra = r.headers.get("Retry-After", "")
            self.assertRegex(ra, r"^[1-9][0-9]*$", dict(r.headers))
            page = st.parse_page(r.text)
            self.assertIn(self.BUSY, page.text)
            self.assertIsNotNone(st.login_form(page), "the busy page still has the form")
            self.assertIsNone(st.find_set_cookie(r, st.SESSION_COOKIE))
            self.assertNotIn(PASSWORD, r.text)
            line = self.logged(r)
            self.assertEqual(line.get("status"), 503, line)
            self.assertEqual(line.get("error"), "login_busy", line)
        # the server kept answering while the pool was full
        self.assertTrue(health, "no /healthz answer while the sign-ins ran")
        self.assertEqual(set(health), {200}, health)
        after = fx.metrics()
        self.assertGreaterEqual(st.metric(after, "tokend_password_checks_total", result="refused")
                                - st.metric(before, "tokend_password_checks_total", result="refused"), len(busy))
        self.assertGreaterEqual(st.metric(after, "tokend_password_checks_total", result="done")
                                - st.metric(before, "tokend_password_checks_total", result="done"), len(normal))
        # nothing left running or waiting
        idle, _ = st.wait_for(lambda: (lambda m: st.metric(m, "tokend_password_checks", state="running") == 0
                                       and st.metric(m, "tokend_password_checks", state="waiting") == 0)(
                                           fx.metrics()), 10.0)
        self.assertTrue(idle, "password checks still running or waiting after the sign-ins ended")
        # and a sign-in on its own goes through
        b = st.SignInBrowser(fx, self.cid, REDIRECT, scope=SCOPE)
        self.addCleanup(b.close)
        self.assertTrue(b.sign_in("pat", PASSWORD).get("code"))

    def test_metrics_have_the_pool_series(self):
        m = self.fx.metrics()
        for key in (("tokend_password_checks", {"state": "running"}), ("tokend_password_checks", {"state": "waiting"}),
                    ("tokend_password_checks_total", {"result": "done"}),
                    ("tokend_password_checks_total", {"result": "refused"})):
            self.assertIn((key[0], frozenset(key[1].items())), m, key)


# ---------------------------------------------------------------------------
# the admin listener (issue 14 section 3)

class AdminListener(FixtureCase):
    HTTPS = True  # the public listener; the admin one is plain HTTP on loopback

    def test_banner_names_the_admin_listener(self):
        fx = self.fx
        self.assertRegex(fx.admin_url or "", r"^http://127\.0\.0\.1:\d+$")
        self.assertNotEqual(int(fx.admin_url.rsplit(":", 1)[1]), fx.port)
        self.assertIn("admin listener on %s (/metrics, /healthz, /readyz)" % fx.admin_url, fx.stdout())

    def test_admin_listener_serves_metrics_and_health(self):
        fx = self.fx
        r = fx.admin_get("/metrics")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"))
        self.assertIn("tokend_http_requests_total", r.text)
        self.assertEqual(fx.admin_get("/healthz").status_code, 200)
        self.assertEqual(fx.admin_get("/readyz").status_code, 200)
        line = fx.log_for(r.headers["X-Request-Id"])
        self.assertEqual(line.get("listener"), "admin", line)
        self.assertEqual(line["route"], "/metrics")

    def test_admin_listener_serves_nothing_else(self):
        fx = self.fx
        for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/auth?aud=x", "/errors/expired",
                     "/oauth/authorize", "/login", "/"):
            with self.subTest(path=path):
                r = fx.admin_get(path)
                self.assertEqual(r.status_code, 404, r.text)
                line = fx.log_for(r.headers["X-Request-Id"])
                self.assertIn("admin listener serves /metrics, /healthz and /readyz only", line.get("detail", ""))
        s = st.new_session(True)
        try:
            r = s.post(fx.admin_url + "/oauth/token", data={"grant_type": "client_credentials"},
                       timeout=st.HTTP_TIMEOUT)
            self.assertEqual(r.status_code, 404)
            r = s.put(fx.admin_url + "/metrics", timeout=st.HTTP_TIMEOUT)
            self.assertEqual(r.status_code, 405)
            self.assertIn("GET", r.headers.get("Allow", ""))
        finally:
            s.close()

    def test_admin_listener_is_plain_http(self):
        """TLS to the admin port is not spoken: a handshake gets no certificate."""
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        port = int(self.fx.admin_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                with ctx.wrap_socket(raw) as t:
                    t.do_handshake()

    def test_public_listener_does_not_serve_metrics(self):
        fx = self.fx
        r = fx.get("/metrics")
        self.assertEqual(r.status_code, 404, r.text)
        self.assertEqual(r.json()["error"], "not_found")
        line = fx.log_for(r.headers["X-Request-Id"])
        self.assertNotIn("listener", line)
        self.assertIn("--admin-listen", line.get("detail", ""))
        self.assertIn("--public-metrics", line.get("detail", ""))
        # the health probes of load balancers stay on the public listener
        self.assertEqual(fx.get("/healthz").status_code, 200)
        self.assertEqual(fx.get("/readyz").status_code, 200)

    def test_public_requests_are_counted_on_the_admin_listener(self):
        fx = self.fx
        before = st.metric(fx.metrics(), "tokend_http_requests_total", route="/healthz", status="200")
        for _ in range(3):
            self.assertEqual(fx.get("/healthz").status_code, 200)
        after = st.metric(fx.metrics(), "tokend_http_requests_total", route="/healthz", status="200")
        self.assertEqual(after - before, 3)



class AdminPerAddress(FixtureCase):
    EXTRA = ("--max-connections-per-ip", "2")

    def test_admin_connections_do_not_count_against_the_per_address_limit(self):
        """--max-connections-per-ip guards the public listener: connections
        to the admin listener from the same address (a scraper on the
        machine) never take a client's place."""
        fx = self.fx
        held = []
        port = int(fx.admin_url.rsplit(":", 1)[1])
        ip = st.fresh_ip()
        try:
            for _ in range(4):
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.settimeout(10)
                c.bind((ip, 0))
                c.connect(("127.0.0.1", port))
                held.append(c)
            self.assertEqual(fx.get("/healthz", source_ip=ip).status_code, 200)
            c = raw_connect(fx, ip)
            held.append(c)
            self.assertEqual(raw_request(c)[0], 200)
        finally:
            for c in held:
                c.close()


class PublicMetrics(FixtureCase):
    EXTRA = ("--public-metrics",)

    def test_metrics_on_both_listeners(self):
        fx = self.fx
        r = fx.get("/metrics")
        self.assertEqual(r.status_code, 200, r.text)
        self.assertIn("tokend_http_requests_total", r.text)
        self.assertEqual(fx.admin_get("/metrics").status_code, 200)
        self.assertIn("--public-metrics", fx.stdout())


class AdminListenerOff(unittest.TestCase):
    def test_off(self):
        fx = st.ServerFixture(https=False, settings={"TOKEND_ADMIN_LISTEN": "off"}, name="admin-off")
        try:
            fx.start()
            self.assertIsNone(fx.admin_url)
            self.assertIn("no admin listener (--admin-listen off), no /metrics", fx.stdout())
            self.assertEqual(fx.get("/metrics").status_code, 404)
            self.assertEqual(fx.get("/healthz").status_code, 200)
            fx.stop()
            fx.start(extra=("--public-metrics",))
            self.assertIsNone(fx.admin_url)
            r = fx.get("/metrics")
            self.assertEqual(r.status_code, 200, r.text)
            self.assertIn("tokend_http_requests_total", r.text)
        finally:
            fx.close()


class AdminListenFailures(FixtureCase):
    def test_bad_admin_listen(self):
        for bad in ("8444", "127.0.0.1", "127.0.0.1:99999", "example.com:8444", "[::1"):
            with self.subTest(value=bad):
                err = serve_fails(["--listen", "127.0.0.1:0", "--insecure-http", "--data-dir", self.fx.td,
                                   "--admin-listen", bad], self.fx.env())
                self.assertIn("--admin-listen", err)

    def test_admin_port_in_use(self):
        fx = self.fx
        port = int(fx.admin_url.rsplit(":", 1)[1])
        err = serve_fails(["--listen", "127.0.0.1:0", "--insecure-http", "--data-dir", fx.td],
                          fx.env(TOKEND_ADMIN_LISTEN="127.0.0.1:%d" % port))
        self.assertIn("--admin-listen", err)
        self.assertIn(str(port), err)
        self.assertRegex(err, r"(?i)in use")
        self.assertIn("off", err)
        # the running server was not disturbed
        self.assertEqual(fx.admin_get("/metrics").status_code, 200)


if __name__ == "__main__":
    st.main()
