# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of `tokend serve` over its life (issue 3 sections 1, 4,
6 and 7): key rotation by `tokend keys rotate` in another process (old
tokens keep verifying, new ones carry the new kid, a key that left the
ring is reported as unknown_key naming it); restart on the same store and
master key (clients, keys and revocations survive; another master key
fails fast); start-up failures that fail fast with a clear message;
throttling of failed client authentication (429 + Retry-After, growing);
the body and header limits (413, 431); /metrics; and the access log (JSON
lines, never a token, secret or Authorization value). Where the files go
(issue 14 section 3): run from a build tree, the current directory, and
the banner says so; --data-dir moves the store and the master key, for the
server and the admin commands alike. Readiness for systemd (Type=notify):
READY=1 on $NOTIFY_SOCKET once serving, STOPPING=1 on the way out.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

AUD = "orders-api"
# a failed start must end well within this (ASan included)
FAIL_FAST = 20


def kids_of(fx):
    return [k["kid"] for k in fx.get("/.well-known/jwks.json").json()["keys"]]


class KeyRotation(unittest.TestCase):
    """Default lifetimes: a rotation must not disturb tokens in flight, and a
    new key signs only after it has been published for the JWKS cache
    lifetime (here --jwks-max-age 2s, to keep the test short)."""

    SETTINGS = {"TOKEND_JWKS_MAX_AGE": "2s"}

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=False, settings=cls.SETTINGS, name="rotation")
        cls.fx.start()
        cls.cid, cls.secret = cls.fx.add_client("svc", "orders:read", AUD)

    def test_jwks_cache_lifetime_is_the_publish_delay(self):
        r = self.fx.get("/.well-known/jwks.json")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers.get("Cache-Control"), "public, max-age=2")

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def test_tokens_signed_before_rotation_keep_verifying(self):
        fx = self.fx
        old = fx.token(self.cid, self.secret)
        k1 = st.jwt_parts(old)[0]["kid"]
        ring = json.loads(fx.admin("keys", "list", "--json").out)["keys"]
        # access tokens come from the ES256 ring; the RS256 ring beside it
        # signs ID tokens and rotates with it
        self.assertEqual(sorted(k["alg"] for k in ring), ["ES256", "ES256", "RS256", "RS256"], ring)
        ring = [k for k in ring if k["alg"] == "ES256"]
        states = {k["kid"]: k["state"] for k in ring}
        self.assertEqual(states.get(k1), "active", ring)
        nxt = [k for k, s in states.items() if s == "next"]
        self.assertEqual(len(nxt), 1, ring)
        k2 = nxt[0]
        # the next key is published before it signs
        self.assertIn(k2, kids_of(fx))

        # Regression (issue 9 section 2): a key published a moment ago must
        # not sign yet: a verifier caching the JWKS would not know it.
        # Wait out the server's own next key's publication first.
        created = [k["created_at"] for k in ring if k["kid"] == k2][0]
        time.sleep(max(0.0, created + 2.2 - time.time()))
        res = fx.admin("keys", "rotate", "--json")
        self.assertEqual(res.rc, 0, res)
        after = {k["kid"]: k["state"] for k in json.loads(res.out)["keys"]}
        # ...and two rotations in a row no longer activate an unseen key
        again = fx.admin("keys", "rotate")
        self.assertNotEqual(again.rc, 0, again)
        self.assertIn("not now", again.err)
        self.assertIn("JWKS cache", again.err)
        self.assertEqual(after.get(k1), "retired", res.out)
        self.assertEqual(after.get(k2), "active", res.out)

        # the running server picks the rotation up (upkeep once a second)
        def new_kid():
            t = fx.token(self.cid, self.secret)
            return t if st.jwt_parts(t)[0]["kid"] != k1 else None
        new, waited = st.wait_for(new_kid, 5.0, interval=0.1)
        self.assertTrue(new, "tokens still signed by %s 5 s after `tokend keys rotate`" % k1)
        self.assertEqual(st.jwt_parts(new)[0]["kid"], k2)
        self.assertLessEqual(waited, 3.0)

        # the old token keeps verifying, as does the new one
        for tok in (old, new):
            r = fx.auth(tok, aud=AUD, scope="orders:read")
            self.assertEqual(r.status_code, 200, r.headers)
        self.assertIs(fx.introspect(self.cid, self.secret, old).json()["active"], True)
        # retired, active, new next: of ES256 and of RS256 (the server
        # reloads its ring once a second: the two rotations may land in two)
        kids, _ = st.wait_for(lambda: (lambda k: k if len(k) == 6 else None)(kids_of(fx)), 3.0)
        kids = kids or kids_of(fx)
        self.assertIn(k1, kids, "a retired key stays in the JWKS while its tokens live")
        self.assertIn(k2, kids)
        self.assertEqual(len(kids), 6, kids)


class KeyRotatedOut(unittest.TestCase):
    """Short lifetimes: a retired key leaves the ring once the longest token
    it signed has expired (max-ttl + leeway), and the server says so."""

    SETTINGS = {"TOKEND_MAX_TTL": "2s", "TOKEND_ACCESS_TTL": "1s", "TOKEND_LEEWAY": "0", "TOKEND_JWKS_MAX_AGE": "0"}

    @classmethod
    def setUpClass(cls):
        # the same settings for the server and `tokend keys rotate`
        cls.fx = st.ServerFixture(https=False, settings=cls.SETTINGS, name="rotated-out")
        cls.fx.start()
        cls.cid, cls.secret = cls.fx.add_client("svc", "orders:read", AUD)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def test_key_that_left_the_ring_is_unknown_key(self):
        fx = self.fx
        old = fx.token(self.cid, self.secret)
        k1 = st.jwt_parts(old)[0]["kid"]
        for _ in range(2):
            res = fx.admin("keys", "rotate")
            self.assertEqual(res.rc, 0, res)
            time.sleep(1.0)
        ring = json.loads(fx.admin("keys", "list", "--json").out)["keys"]
        # gone from the JWKS once its verify window (2 s + 0 s) has passed
        gone, waited = st.wait_for(lambda: k1 not in kids_of(fx), 10.0, interval=0.2)
        self.assertTrue(gone, "key %s still published 10 s after its window; ring %r" % (k1, ring))
        self.assertNotIn(k1, [k["kid"] for k in json.loads(fx.admin("keys", "list", "--json").out)["keys"]])

        r = fx.auth(old, aud=AUD)
        self.assertEqual(r.status_code, 401, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Reason"), "unknown_key")
        ch = st.parse_challenge(r.headers.get("WWW-Authenticate"))
        self.assertEqual(ch.get("error"), "invalid_token")
        d = ch.get("error_description", "")
        self.assertIn(k1, d)
        self.assertIn("rotated out", d)
        # its own token, but the signature can no longer be shown to be ours:
        # no reason (RFC 7662 section 4; SECURITY.md: a reason only for a
        # token whose signature is ours)
        self.assertEqual(fx.introspect(self.cid, self.secret, old).json(), {"active": False})
        # the current key signs and verifies
        new = fx.token(self.cid, self.secret)
        self.assertNotEqual(st.jwt_parts(new)[0]["kid"], k1)
        self.assertEqual(fx.auth(new, aud=AUD).status_code, 200)


class Restart(unittest.TestCase):
    """Stop and start on the same store and master key."""

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, name="restart")
        cls.fx.start()
        cls.cid, cls.secret = cls.fx.add_client("svc", "orders:read orders:write", AUD)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def start_fails(self, env=None, extra=()):
        """Starts a second server on this store that must fail fast."""
        fx = self.fx
        cmd = fx.command(listen="127.0.0.1:0", extra=extra)
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=fx.env(**(env or {})), cwd=fx.td, timeout=FAIL_FAST + 30)
        el = time.monotonic() - t0
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, "started anyway:\n" + out + err)
        self.assertLess(el, FAIL_FAST)
        self.assertNotIn("listening on", out)
        return err

    def test_master_key_file_created_0600(self):
        mode = os.stat(self.fx.master_key).st_mode & 0o777
        self.assertEqual(mode, 0o600, oct(mode))
        self.assertIn("master key", self.fx.stderr())

    def test_restart_keeps_clients_keys_and_revocations(self):
        fx = self.fx
        keep = fx.token(self.cid, self.secret)
        by_api = fx.token(self.cid, self.secret)
        by_cli = fx.token(self.cid, self.secret)
        self.assertEqual(fx.revoke(self.cid, self.secret, by_api).status_code, 200)
        res = fx.admin("revoke", "--jti", st.jwt_parts(by_cli)[1]["jti"])
        self.assertEqual(res.rc, 0, res)
        kids = sorted(kids_of(fx))
        url = fx.url

        rc = fx.stop()
        self.assertEqual(rc, 0, "exit status after SIGTERM\n" + fx.stderr()[-3000:])
        self.assertIn("stopping", fx.stdout())
        fx.start()
        self.assertEqual(fx.url, url)

        self.assertEqual(sorted(kids_of(fx)), kids, "the same keys after a restart")
        # the client still authenticates, and its new token verifies
        new = fx.token(self.cid, self.secret)
        self.assertEqual(fx.auth(new, aud=AUD).status_code, 200)
        # a token issued before the restart still verifies
        r = fx.auth(keep, aud=AUD, scope="orders:read")
        self.assertEqual(r.status_code, 200, r.headers)
        self.assertEqual(r.headers.get("X-Auth-Subject"), self.cid)
        # revocations survive, whichever way they were made
        for tok in (by_api, by_cli):
            r = fx.auth(tok, aud=AUD)
            self.assertEqual(r.status_code, 401)
            self.assertEqual(r.headers.get("X-Auth-Reason"), "revoked")
            self.assertEqual(fx.introspect(self.cid, self.secret, tok).json(),
                             {"active": False, "reason": "revoked"})

    def test_port_in_use(self):
        err = self.start_fails(extra=("--listen", "127.0.0.1:%d" % self.fx.port))
        self.assertIn(str(self.fx.port), err)
        self.assertRegex(err, r"(?i)in use|cannot listen|bind")
        # and the running server was not disturbed
        self.assertEqual(self.fx.get("/healthz").status_code, 200)

    def test_other_master_key_fails_fast(self):
        other = os.path.join(self.fx.td, "other.master.key")
        with open(other, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        os.chmod(other, 0o600)
        err = self.start_fails(env={"TOKEND_MASTER_KEY_FILE": other})
        self.assertIn("master key", err)
        self.assertIn("TOKEND_MASTER_KEY_FILE", err)
        # admin commands that need the keys refuse as well
        res = self.fx.admin("keys", "rotate", env={"TOKEND_MASTER_KEY_FILE": other})
        self.assertNotEqual(res.rc, 0, res)
        self.assertIn("master key", res.err)
        # the running server still serves with its own key
        self.assertEqual(self.fx.auth(self.fx.token(self.cid, self.secret), aud=AUD).status_code, 200)

    def test_missing_master_key_fails_fast(self):
        missing = os.path.join(self.fx.td, "missing.master.key")
        err = self.start_fails(env={"TOKEND_MASTER_KEY_FILE": missing})
        self.assertIn("master key", err)

    def test_missing_master_key_is_not_replaced(self):
        """A master key is created on the FIRST run (issue 3 section 2): when
        the store already holds sealed keys, a missing master key file is an
        error, and no new (useless) master key file may be left behind."""
        missing = os.path.join(self.fx.td, "missing2.master.key")
        self.start_fails(env={"TOKEND_MASTER_KEY_FILE": missing})
        self.assertFalse(os.path.exists(missing),
                         "a failed start on an existing store created a new master key file %s" % missing)

    def test_group_readable_master_key_fails_fast(self):
        loose = os.path.join(self.fx.td, "loose.master.key")
        shutil.copy(self.fx.master_key, loose)
        os.chmod(loose, 0o640)
        err = self.start_fails(env={"TOKEND_MASTER_KEY_FILE": loose})
        self.assertIn(loose, err)
        self.assertIn("0640", err)
        self.assertIn("chmod 600", err)


class StartupFailures(unittest.TestCase):
    """Bad settings fail fast, non-zero, with a message naming the problem."""

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, name="startup")
        cls.td = cls.fx.td
        # a certificate and key to break in various ways: --dev makes them
        cls.fx.start()
        cls.fx.stop()
        cls.key = os.path.join(cls.td, "tokend-dev.key")

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def fails(self, *args, env=None):
        cmd = [tt.tokend_bin(), "serve"] + [str(a) for a in args]
        t0 = time.monotonic()
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.fx.env(**(env or {})), cwd=self.td, timeout=FAIL_FAST + 30)
        el = time.monotonic() - t0
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, "started anyway: %r\n%s%s" % (args, out, err))
        self.assertNotIn("listening on", out)
        self.assertLess(el, FAIL_FAST, args)
        self.assertTrue(err.strip(), "no message on stderr for %r" % (args,))
        return err

    def test_unknown_flag(self):
        err = self.fails("--listen", "127.0.0.1:0", "--insecure-http", "--no-such-flag")
        self.assertIn("--no-such-flag", err)
        err = self.fails("--insecure-http", "stray-argument")
        self.assertIn("stray-argument", err)

    def test_bad_listen(self):
        for bad in ("nohost", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", ":8443", "256.1.1.1:80",
                    "example.invalid:80"):
            with self.subTest(listen=bad):
                err = self.fails("--listen", bad, "--insecure-http")
                self.assertIn("listen", err)
                self.assertIn(bad.split(":")[0] or bad, err)

    def test_bad_values(self):
        for args, word in ((("--leeway", "9999"), "--leeway"), (("--explain", "loud"), "--explain"),
                           (("--access-ttl", "forever"), "--access-ttl"), (("--alg", "none"), "--alg"),
                           (("--access-ttl", "2h", "--max-ttl", "1h"), "--access-ttl"),
                           (("--threads", "-1"), "--threads")):
            with self.subTest(args=args):
                err = self.fails("--listen", "127.0.0.1:0", "--insecure-http", *args)
                self.assertIn(word, err)

    def test_https_needs_a_certificate(self):
        err = self.fails("--listen", "127.0.0.1:0")
        self.assertIn("--tls-cert", err)
        self.assertIn("--insecure-http", err)
        err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", self.fx.cert)
        self.assertIn("--tls-key", err)

    def test_unreadable_tls_key(self):
        missing = os.path.join(self.td, "no-such-key.pem")
        err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", self.fx.cert, "--tls-key", missing)
        self.assertIn(missing, err)
        self.assertIn("TLS key", err)
        err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", self.fx.cert, "--tls-key", self.td)
        self.assertIn("TLS key", err)
        if os.geteuid() != 0:  # root reads mode 000 files
            locked = os.path.join(self.td, "locked.pem")
            shutil.copy(self.key, locked)
            os.chmod(locked, 0)
            err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", self.fx.cert, "--tls-key", locked)
            self.assertIn(locked, err)
        missing_cert = os.path.join(self.td, "no-such-cert.pem")
        err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", missing_cert, "--tls-key", self.key)
        self.assertIn(missing_cert, err)

    def test_group_readable_tls_key(self):
        loose = os.path.join(self.td, "loose.pem")
        shutil.copy(self.key, loose)
        os.chmod(loose, 0o644)
        err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", self.fx.cert, "--tls-key", loose)
        self.assertIn(loose, err)
        self.assertIn("chmod 600", err)

    def test_not_a_tls_key(self):
        junk = os.path.join(self.td, "junk.pem")
        with open(junk, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
        os.chmod(junk, 0o600)
        err = self.fails("--listen", "127.0.0.1:0", "--tls-cert", self.fx.cert, "--tls-key", junk)
        self.assertIn("TLS", err)

    def test_group_readable_master_key(self):
        loose = os.path.join(self.td, "loose.master.key")
        shutil.copy(self.fx.master_key, loose)
        os.chmod(loose, 0o644)
        err = self.fails("--listen", "127.0.0.1:0", "--insecure-http", env={"TOKEND_MASTER_KEY_FILE": loose})
        self.assertIn(loose, err)
        self.assertIn("master key", err)

    def test_bad_store(self):
        err = self.fails("--listen", "127.0.0.1:0", "--insecure-http",
                         env={"TOKEND_STORE": "postgres://nowhere/db"})
        self.assertIn("store", err)
        d = os.path.join(self.td, "no", "such", "dir", "t.db")
        err = self.fails("--listen", "127.0.0.1:0", "--insecure-http", env={"TOKEND_STORE": "sqlite://" + d})
        self.assertIn("store", err)

    def test_port_in_use_by_another_program(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            err = self.fails("--listen", "127.0.0.1:%d" % port, "--insecure-http")
            self.assertIn(str(port), err)
            self.assertIn("in use", err)
        finally:
            s.close()


class ProtectionMetricsLog(unittest.TestCase):
    """Throttling, limits, /metrics and the access log, on one server."""

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True, name="protect")
        cls.fx.start()
        fx = cls.fx
        cls.cid, cls.secret = fx.add_client("svc", "orders:read orders:write", AUD)
        cls.victim_id, cls.victim_secret = fx.add_client("victim", "orders:read", AUD)
        cls.by_id, cls.by_secret = fx.add_client("bystander", "orders:read", AUD)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def fail_until_429(self, client_id, wrong, ip, limit=12):
        """Wrong secrets for client_id from ip until a 429: (statuses, the
        429 response). Each answer before it must be 401."""
        statuses = []
        for _ in range(limit):
            r = self.fx.token_response(client_id, wrong, source_ip=ip)
            statuses.append(r.status_code)
            if r.status_code == 429:
                return statuses, r
            self.assertEqual(r.status_code, 401, r.text)
            self.assertEqual(r.json().get("error"), "invalid_client")
        self.fail("no 429 after %d wrong secrets: %r" % (len(statuses), statuses))

    def test_throttling_429_retry_after_grows(self):
        fx = self.fx
        ip = st.fresh_ip()
        before = fx.metrics()
        wrong = "tokend_cs_WRONG-SECRET-MARKER-1"
        fx.sensitive.add(wrong)
        st.early_in_second()  # the first block (1 s) holds for the checks below
        statuses, first = self.fail_until_429(self.victim_id, wrong, ip)
        self.assertLessEqual(len(statuses), 10, statuses)
        self.assertEqual(statuses[:5], [401] * 5, "five free failures (fail_free)")
        self.assertEqual(first.headers.get("Cache-Control"), "no-store")
        self.assertEqual(first.json().get("error"), "invalid_client")
        ra1 = first.headers.get("Retry-After")
        self.assertRegex(ra1 or "", r"^[1-9][0-9]*$")
        ra1 = int(ra1)
        throttled = 1
        # while blocked the right secret is refused from the failing address
        r = fx.token_response(self.victim_id, self.victim_secret, source_ip=ip)
        self.assertEqual(r.status_code, 429, r.text)
        self.assertTrue(r.headers.get("Retry-After"))
        throttled += 1
        # ... and so is another client from that address (the address gates)
        r = fx.token_response(self.by_id, self.by_secret, source_ip=ip)
        self.assertEqual(r.status_code, 429, r.text)
        throttled += 1
        # the same client from elsewhere is not held back (SECURITY.md rule 22)
        r = fx.token_response(self.victim_id, self.victim_secret, source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])
        # another client from elsewhere is not affected
        r = fx.token_response(self.by_id, self.by_secret, source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])
        # the backoff grows: after the wait, one more failure blocks longer
        time.sleep(ra1 + 0.3)
        st.early_in_second()
        r = fx.token_response(self.victim_id, wrong, source_ip=ip)
        self.assertEqual(r.status_code, 401, r.text)
        r = fx.token_response(self.victim_id, wrong, source_ip=ip)
        self.assertEqual(r.status_code, 429, r.text)
        throttled += 1
        ra2 = int(r.headers.get("Retry-After"))
        self.assertGreater(ra2, ra1)
        after = fx.metrics()
        self.assertGreaterEqual(st.metric(after, "tokend_client_auth_throttled_total")
                                - st.metric(before, "tokend_client_auth_throttled_total"), throttled)
        self.assertGreaterEqual(st.metric(after, "tokend_client_auth_failures_total")
                                - st.metric(before, "tokend_client_auth_failures_total"), 7)
        self.assertGreaterEqual(st.metric(after, "tokend_http_requests_total", route="/oauth/token", status="429"),
                                throttled)
        # the log names the throttled client
        line = fx.log_for(first.headers["X-Request-Id"])
        self.assertEqual(line.get("status"), 429, line)
        self.assertEqual(line.get("client_id"), self.victim_id, line)

    def test_regression_wrong_secrets_from_one_address_do_not_lock_the_client_out_elsewhere(self):
        """The old rule: six wrong secrets from one address locked the client
        out everywhere. An attacker who knows a client id must not be able
        to deny its owner service from another address."""
        fx = self.fx
        cid, secret = fx.add_client("locked-out-victim", "orders:read", AUD)
        attacker = st.fresh_ip()
        st.early_in_second()
        statuses, r429 = self.fail_until_429(cid, "tokend_cs_attacker-guess", attacker)
        self.assertGreaterEqual(len(statuses), 6)
        # the attacker keeps trying for a while: still 429 there
        for _ in range(3):
            r = fx.token_response(cid, "tokend_cs_attacker-guess", source_ip=attacker)
            self.assertEqual(r.status_code, 429, r.text)
        # the owner, from its own address, gets its token at once
        r = fx.token_response(cid, secret, source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])
        # with the body method too
        r = fx.token_response(cid, secret, method="post", source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])

    def test_regression_invented_ids_throttle_only_their_address(self):
        """The old rule: failures with invented client ids from one address
        locked out every client at that address, and were counted against
        nobody else. Now: that address waits (for the real client too), any
        other address is served."""
        fx = self.fx
        cid, secret = fx.add_client("spray-victim", "orders:read", AUD)
        attacker = st.fresh_ip()
        st.early_in_second()
        statuses = []
        for i in range(8):
            r = fx.token_response("invented-client-%d" % i, "tokend_cs_guess", source_ip=attacker)
            statuses.append(r.status_code)
            self.assertIn(r.status_code, (401, 429), r.text)
            self.assertEqual(r.json().get("error"), "invalid_client")
        self.assertEqual(statuses[:5], [401] * 5, statuses)
        self.assertIn(429, statuses, statuses)
        # the address waits, for the real client with its right secret too
        r = fx.token_response(cid, secret, source_ip=attacker)
        self.assertEqual(r.status_code, 429, r.text)
        self.assertRegex(r.headers.get("Retry-After", ""), r"^[1-9][0-9]*$")
        # another address is served
        r = fx.token_response(cid, secret, source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])

    def test_distributed_guess_one_failure_per_new_address(self):
        """More than 20 failures for one client id in the window, spread
        over many addresses: each further failing address waits after its
        first failure (instead of five free ones). The owner, from an
        address that did not fail, is still served."""
        fx = self.fx
        cid, secret = fx.add_client("sprayed", "orders:read", AUD)
        guess = "tokend_cs_distributed-guess"
        # 21 failures from 21 addresses, one each: none of them is blocked by
        # its own count (1 <= 5), so each is 401
        for _ in range(21):
            r = fx.token_response(cid, guess, source_ip=st.fresh_ip())
            self.assertEqual(r.status_code, 401, r.text)
        # a new address: its first failure is answered, its next try waits
        ip = st.fresh_ip()
        st.early_in_second()
        r = fx.token_response(cid, guess, source_ip=ip)
        self.assertEqual(r.status_code, 401, r.text)
        r = fx.token_response(cid, guess, source_ip=ip)
        self.assertEqual(r.status_code, 429, r.text)
        r = fx.token_response(cid, secret, source_ip=ip)
        self.assertEqual(r.status_code, 429, "the address that guessed waits, right secret or not: %s" % r.text)
        # the owner is never locked out by others' failures
        r = fx.token_response(cid, secret, source_ip=st.fresh_ip())
        self.assertEqual(r.status_code, 200, r.text)
        fx.sensitive.add(r.json()["access_token"])

    def test_invalid_client_log_says_which(self):
        """The client hears one answer; the operator's log says whether the
        id is unknown or the secret wrong."""
        fx = self.fx
        ip = st.fresh_ip()
        unknown = fx.token_response("no-such-client-id", "tokend_cs_whatever", source_ip=ip)
        wrong = fx.token_response(self.by_id, "tokend_cs_not-the-secret", source_ip=ip)
        for r in (unknown, wrong):
            self.assertEqual(r.status_code, 401, r.text)
            self.assertEqual(r.json().get("error"), "invalid_client")
            self.assertEqual(r.json().get("error_description"), "client authentication failed")
        self.assertEqual(unknown.json(), wrong.json())
        self.assertEqual(unknown.headers.get("WWW-Authenticate"), wrong.headers.get("WWW-Authenticate"))
        lu = fx.log_for(unknown.headers["X-Request-Id"])
        lw = fx.log_for(wrong.headers["X-Request-Id"])
        self.assertEqual(lu.get("detail"), "client authentication failed: no client has this id", lu)
        self.assertEqual(lw.get("detail"), "client authentication failed: wrong secret for this client", lw)
        # the same for introspection and revocation (one client authentication)
        r = fx.post("/oauth/introspect", source_ip=ip, data={"token": "x"},
                    auth=("no-such-client-id", "tokend_cs_whatever"))
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(fx.log_for(r.headers["X-Request-Id"]).get("detail"),
                         "client authentication failed: no client has this id")
        r = fx.post("/oauth/revoke", source_ip=ip, data={"token": "x"}, auth=(self.by_id, "tokend_cs_nope"))
        self.assertEqual(r.status_code, 401, r.text)
        self.assertEqual(fx.log_for(r.headers["X-Request-Id"]).get("detail"),
                         "client authentication failed: wrong secret for this client")

    def announce_body(self, path, length):
        """Sends a request head announcing `length` body bytes with
        `Expect: 100-continue`, and no body: the client waits for the
        server's word, so the answer must come from the head alone."""
        import http.client
        import ssl
        fx = self.fx
        conn = http.client.HTTPSConnection("127.0.0.1", fx.port, timeout=st.HTTP_TIMEOUT,
                                           context=ssl.create_default_context(cafile=fx.cert))
        try:
            conn.putrequest("POST", path)
            conn.putheader("Authorization", st.basic(self.cid, self.secret))
            conn.putheader("Content-Type", "application/x-www-form-urlencoded")
            conn.putheader("Content-Length", str(length))
            conn.putheader("Expect", "100-continue")
            conn.endheaders()
            r = conn.getresponse()
            return r.status, r.read(), r.getheader("X-Request-Id")
        finally:
            conn.close()

    def test_body_limit_413(self):
        fx = self.fx
        big = "grant_type=client_credentials&pad=" + "x" * (64 * 1024)
        path = os.path.join(fx.td, "big.form")
        with open(path, "w") as f:
            f.write(big)
        for route in ("/oauth/token", "/oauth/introspect", "/oauth/revoke", "/auth"):
            with self.subTest(route=route):
                # the whole body, through curl
                c = fx.curl(route, "-u", "%s:%s" % (self.cid, self.secret), "--data-binary", "@" + path)
                self.assertEqual(c.rc, 0, c)
                self.assertEqual(c.status_code, 413, c)
                self.assertEqual(c.json().get("error"), "body_too_large")
                self.assertTrue(c.header("X-Request-Id"))
                # judged from Content-Length alone
                status, body, rid = self.announce_body(route, 64 * 1024 + 1)
                self.assertEqual(status, 413, body)
                self.assertTrue(rid)
        # chunked (no Content-Length): the limit holds while reading
        def chunks():
            for _ in range(80):
                yield b"x" * 1024
        r = fx.post("/oauth/token", data=chunks(), auth=(self.cid, self.secret),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status_code, 413)
        # a body within the limit is read (and the request answered normally)
        ok = "grant_type=client_credentials&pad=" + "x" * (60 * 1024)
        r = fx.post("/oauth/token", data=ok, auth=(self.cid, self.secret),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status_code, 200, r.text[:200])
        fx.sensitive.add(r.json()["access_token"])

    def test_body_limit_413_reaches_a_client_sending_a_large_body(self):
        """A client that sends its whole (too large) body without waiting
        for 100-continue, as python3-requests does, must still READ the 413:
        the server has to drain or half-close (RFC 9112 section 9.6), not
        close a TLS connection with the body unread."""
        fx = self.fx
        big = "grant_type=client_credentials&pad=" + "x" * (1024 * 1024)
        outcomes = {}
        for route in ("/oauth/token", "/auth"):
            for _ in range(5):
                try:
                    r = fx.post(route, data=big, auth=(self.cid, self.secret),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
                    got = str(r.status_code)
                except Exception as exc:  # noqa: BLE001 - the failure is the finding
                    got = "%s (no response read)" % type(exc).__name__
                outcomes[(route, got)] = outcomes.get((route, got), 0) + 1
        self.assertEqual(outcomes, {("/oauth/token", "413"): 5, ("/auth", "413"): 5})
        self.assertEqual(fx.get("/healthz").status_code, 200)

    def test_header_limit_431(self):
        fx = self.fx
        tok = fx.token(self.cid, self.secret)
        for path in ("/auth", "/oauth/token", "/healthz"):
            with self.subTest(path=path):
                r = fx.get(path, headers={"X-Pad": "a" * (17 * 1024), "Authorization": "Bearer " + tok})
                self.assertEqual(r.status_code, 431)
        c = fx.curl("/auth", "-H", "X-Pad: " + "b" * (17 * 1024), "-H", "Authorization: Bearer " + tok)
        self.assertEqual(c.status_code, 431, c)
        # many small headers add up
        many = {"X-H%03d" % i: "c" * 100 for i in range(200)}
        self.assertEqual(fx.get("/healthz", headers=many).status_code, 431)
        # a header block a little under 16 KiB is fine
        r = fx.get("/auth?aud=" + AUD, headers={"X-Pad": "d" * (15 * 1024), "Authorization": "Bearer " + tok})
        self.assertEqual(r.status_code, 200)
        # a far bigger one is refused too (by libmicrohttpd itself), and the
        # server keeps serving
        try:
            r = fx.get("/healthz", headers={"X-Pad": "e" * (64 * 1024)})
            self.assertEqual(r.status_code, 431)
        except Exception:  # the connection may be closed instead
            pass
        self.assertEqual(fx.get("/healthz").status_code, 200)

    def test_metrics(self):
        fx = self.fx
        before = fx.metrics()
        tok = fx.token(self.cid, self.secret)
        self.assertEqual(fx.auth(tok, aud=AUD).status_code, 200)
        self.assertEqual(fx.auth(tok, aud=AUD, scope="orders:admin").status_code, 403)
        self.assertEqual(fx.auth("not-a-jwt", aud=AUD).status_code, 401)
        self.assertEqual(fx.auth(aud=AUD).status_code, 401)
        self.assertIs(fx.introspect(self.cid, self.secret, tok).json()["active"], True)
        self.assertEqual(fx.token_response("svc", "wrong-secret", source_ip=st.fresh_ip()).status_code, 401)
        r = fx.admin_get("/metrics")
        self.assertEqual(r.status_code, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"))
        self.assertIn("version=0.0.4", r.headers["Content-Type"])
        after = st.parse_metrics(r.text)
        types = dict(line.split()[2:4] for line in r.text.splitlines() if line.startswith("# TYPE "))

        def delta(name, **labels):
            return st.metric(after, name, **labels) - st.metric(before, name, **labels)

        self.assertEqual(types.get("tokend_tokens_issued_total"), "counter")
        self.assertEqual(delta("tokend_tokens_issued_total", grant="client_credentials"), 1)
        self.assertEqual(types.get("tokend_validations_total"), "counter")
        self.assertEqual(delta("tokend_validations_total", result="valid", reason="valid"), 2)  # auth+introspect
        self.assertEqual(delta("tokend_validations_total", result="invalid", reason="insufficient_scope"), 1)
        self.assertEqual(delta("tokend_validations_total", result="invalid", reason="unsupported_token_type"), 1)
        self.assertEqual(delta("tokend_validations_total", result="invalid", reason="missing_token"), 1)
        # every reason code has its series, even at 0
        for reason in ("expired", "bad_signature", "unknown_key", "revoked", "wrong_audience"):
            self.assertIn(("tokend_validations_total", frozenset({"result": "invalid", "reason": reason}.items())),
                          after)
        self.assertEqual(types.get("tokend_client_auth_failures_total"), "counter")
        self.assertGreaterEqual(delta("tokend_client_auth_failures_total"), 1)
        # latency histograms by route
        self.assertEqual(types.get("tokend_http_request_duration_seconds"), "histogram")
        for route in ("/auth", "/oauth/token", "/oauth/introspect"):
            with self.subTest(route=route):
                buckets = sorted(
                    ((float(dict(k[1])["le"]), v) for k, v in after.items()
                     if k[0] == "tokend_http_request_duration_seconds_bucket" and dict(k[1]).get("route") == route),
                    key=lambda x: x[0])
                self.assertGreaterEqual(len(buckets), 5)
                self.assertEqual(buckets[-1][0], float("inf"))
                counts = [v for _, v in buckets]
                self.assertEqual(counts, sorted(counts), "cumulative buckets")
                count = st.metric(after, "tokend_http_request_duration_seconds_count", route=route)
                self.assertEqual(counts[-1], count)
                self.assertGreater(count, 0)
                self.assertGreater(st.metric(after, "tokend_http_request_duration_seconds_sum", route=route), 0)
        self.assertGreaterEqual(delta("tokend_http_requests_total", route="/auth", status="200"), 1)
        self.assertGreaterEqual(delta("tokend_http_requests_total", route="/auth", status="403"), 1)

    def test_zz_access_log(self):
        """Runs last (name): the log of every request of this class."""
        fx = self.fx
        tok = fx.token(self.cid, self.secret)
        tok_post = fx.token(self.cid, self.secret, method="post")
        # more requests that carry secrets in every place they can go
        fx.auth(tok, aud=AUD)
        fx.auth(tok_post, aud="wrong-aud")
        h, p, s = tok.split(".")
        tampered = h + "." + p + "." + s[:-4] + ("AAAA" if s[-4:] != "AAAA" else "BBBB")
        fx.auth(tampered, aud=AUD)
        foreign = tt.new_key("ES256", kid="foreign").token(tt.claims(aud=AUD), kid=True)
        fx.auth(foreign, aud=AUD)
        opaque = "opaque-SECRET-REFERENCE-TOKEN-0123456789"
        fx.auth(opaque, aud=AUD)
        fx.auth(opaque)  # no audience: 400 before the token is looked at
        fx.auth(authorization="Basic " + tt.b64u(self.cid + ":" + self.secret), aud=AUD)
        fx.introspect(self.cid, self.secret, tok)
        fx.revoke(self.cid, self.secret, tok_post)
        wrong = "tokend_cs_WRONG-SECRET-MARKER-2"
        fx.post("/oauth/token", source_ip=st.fresh_ip(),
                data={"grant_type": "client_credentials", "client_id": self.cid, "client_secret": wrong})
        fx.post("/oauth/token", data=[("grant_type", "client_credentials"), ("client_secret", self.secret),
                                      ("client_secret", self.secret), ("client_id", self.cid)])
        fx.get("/healthz", headers={"X-Pad": "a" * (17 * 1024), "Authorization": "Bearer " + tok})
        fx.curl("/oauth/token", "-u", "%s:%s" % (self.cid, self.secret), "-d", "grant_type=client_credentials")
        for secret in (tampered, foreign, opaque, wrong, tt.b64u(self.cid + ":" + self.secret)):
            fx.sensitive.add(secret)

        text = fx.log_text(settle=0.5)
        out = fx.stdout()
        lines = text.splitlines()
        self.assertGreater(len(lines), 20)
        requests_seen = 0
        for line in lines:
            if not line.startswith("{"):
                # only the server's own start-up notices are not JSON
                self.assertTrue(line.startswith("tokend serve: "), "not a JSON log line: %r" % line)
                continue
            o = json.loads(line)
            self.assertIsInstance(o, dict)
            self.assertIn("time", o)
            if "level" in o:  # an event (warning), not a request
                self.assertIn("msg", o)
                continue
            requests_seen += 1
            for k in ("rid", "route", "status", "latency_us", "method", "ip"):
                self.assertIn(k, o, line)
            self.assertIsInstance(o["status"], int)
            self.assertIsInstance(o["latency_us"], int)
            self.assertGreaterEqual(o["latency_us"], 0)
            if "token_fp" in o:
                self.assertRegex(o["token_fp"], r"^[0-9a-f]{8}$")
        self.assertGreater(requests_seen, 20)
        # the fingerprint of a token used at /auth is there, the token is not
        fps = {o.get("token_fp") for o in fx.log_lines(settle=0)}
        self.assertIn(st.fingerprint(tok), fps)
        # never a token, a client secret or an Authorization value
        self.assertGreater(len(fx.sensitive), 8)
        leaked = []
        for secret in sorted(fx.sensitive):
            for where, blob in (("log", text), ("stdout", out)):
                if secret in blob:
                    leaked.append("%s: %s..." % (where, secret[:24]))
                # a token's signature or a secret's tail alone is a leak too
                tail = secret[-24:]
                if len(secret) > 40 and tail in blob:
                    leaked.append("%s (tail): %s..." % (where, secret[:24]))
        self.assertEqual(leaked, [])
        self.assertNotIn("Bearer ", text)
        self.assertNotIn("Basic ", text)
        self.assertNotIn("aaaaaaaaaaaaaaaa", text, "a header value was logged")


# ---------------------------------------------------------------------------
# where the files go, and systemd readiness (issue 14 section 3)

class CheckoutFixture(st.ServerFixture):
    """A server with nothing said about its files: no TOKEND_STORE, no
    TOKEND_MASTER_KEY_FILE, no --data-dir (`data_dir` adds one)."""

    def __init__(self, data_dir=None, **kw):
        super().__init__(**kw)
        self.data_dir = data_dir

    def env(self, **over):
        e = super().env(**over)
        for k in ("TOKEND_STORE", "TOKEND_MASTER_KEY_FILE"):
            if k not in over:
                e.pop(k, None)
        return e

    def command(self, listen=None, extra=()):
        cmd = super().command(listen, extra)
        i = cmd.index("--data-dir")
        del cmd[i:i + 2]
        if self.data_dir:
            cmd += ["--data-dir", self.data_dir]
        return cmd


class Files(unittest.TestCase):
    def test_build_tree_keeps_its_files_in_the_current_directory_and_says_so(self):
        fx = CheckoutFixture(https=False, name="checkout")
        try:
            fx.start()
            td = os.path.realpath(fx.td)
            self.assertIn("tokend serve: files in the current directory, %s (run from a build tree; --data-dir DIR "
                          "for another): store ./tokend.db (created), master key ./tokend.master.key (created)\n"
                          % td, fx.stdout())
            self.assertTrue(os.path.exists(os.path.join(fx.td, "tokend.db")))
            mode = os.stat(os.path.join(fx.td, "tokend.master.key")).st_mode & 0o777
            self.assertEqual(mode, 0o600, oct(mode))
            # the admin commands find the same files from the same directory
            r = fx.admin("client", "add", "svc", "--scope", "orders:read", "--aud", AUD, "--json")
            self.assertEqual(r.rc, 0, r)
            fx.stop()
            fx.start()
            self.assertIn("store ./tokend.db, master key ./tokend.master.key\n", fx.stdout())
            self.assertNotIn("(created)", fx.stdout())
            r = fx.admin("client", "list")
            self.assertIn("svc", r.out, r)
        finally:
            fx.close()

    def test_data_dir_holds_the_store_and_master_key(self):
        data = tempfile.mkdtemp(prefix="tokend-data-")
        fx = CheckoutFixture(https=True, data_dir=data, name="data-dir")
        try:
            fx.start()
            self.assertIn("store %s/tokend.db (created), master key %s/tokend.master.key (created)\n" % (data, data),
                          fx.stdout())
            self.assertNotIn("current directory", fx.stdout().split("listening on")[0])
            self.assertEqual(sorted(f for f in os.listdir(data) if not f.startswith("tokend.db-")),
                             ["tokend-dev.crt", "tokend-dev.key", "tokend.db", "tokend.master.key"])
            self.assertFalse(os.path.exists(os.path.join(fx.td, "tokend.db")))
            self.assertEqual(os.stat(os.path.join(data, "tokend.master.key")).st_mode & 0o777, 0o600)
            # the admin commands take --data-dir (or TOKEND_DATA_DIR) too, from anywhere
            r = fx.admin("client", "add", "svc", "--scope", "orders:read", "--aud", AUD, "--json",
                         "--data-dir", data)
            self.assertEqual(r.rc, 0, r)
            cid = json.loads(r.out)["client_id"]
            r = fx.admin("client", "list", env={"TOKEND_DATA_DIR": data})
            self.assertIn(cid, r.out, r)
            # the banner's commands carry it
            self.assertIn("tokend client add web --data-dir %s" % data, fx.stdout())
            self.assertIn("--data-dir", tt.run("client", "--help").out)
        finally:
            fx.close()
            shutil.rmtree(data, ignore_errors=True)


class Notify(unittest.TestCase):
    """Type=notify: READY=1 (with MAINPID and a STATUS) once the server
    serves, STOPPING=1 when it stops; the sd_notify protocol, no
    libsystemd."""

    def test_ready_and_stopping(self):
        fx = st.ServerFixture(https=False, name="notify")
        sock_path = os.path.join(fx.td, "notify.sock")
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            rx.bind(sock_path)
            rx.settimeout(20)
            fx.start(env={"NOTIFY_SOCKET": sock_path})
            msg = rx.recv(4096).decode()
            fields = dict(line.split("=", 1) for line in msg.split("\n") if line)
            self.assertEqual(fields.get("READY"), "1", msg)
            self.assertEqual(fields.get("MAINPID"), str(fx.proc.pid), msg)
            self.assertIn(fx.url, fields.get("STATUS", ""), msg)
            # it serves when it says so
            self.assertEqual(fx.get("/healthz").status_code, 200)
            self.assertEqual(fx.stop(), 0)
            self.assertEqual(rx.recv(4096).decode(), "STOPPING=1")
        finally:
            rx.close()
            fx.close()

    def test_abstract_socket(self):
        fx = st.ServerFixture(https=False, name="notify-abstract")
        name = "tokend-test-%d-%d" % (os.getpid(), int(time.monotonic() * 1000))
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            rx.bind("\0" + name)
            rx.settimeout(20)
            fx.start(env={"NOTIFY_SOCKET": "@" + name})
            self.assertTrue(rx.recv(4096).decode().startswith("READY=1\n"))
        finally:
            rx.close()
            fx.close()


if __name__ == "__main__":
    st.main()
