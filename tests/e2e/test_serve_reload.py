# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of SIGHUP and the access log's sampling (issue 13
section 3, issue 14 section 3):

- the log file is reopened on SIGHUP, logrotate's way: rename the file,
  send SIGHUP, and every line logged before the signal is in the renamed
  file, every line after it in the new one; under load no request's line
  is lost or written twice;
- the TLS certificate and key are read again on SIGHUP: new connections
  get the new certificate, an open keep-alive connection goes on working;
  a certificate that does not parse, a key that does not match it, or a
  certificate past its date is refused, logged, and the old one stays;
- --log-sample-auth-ok: successful /auth answers are logged at that rate,
  failures and other routes always.
"""

import datetime
import http.client
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402

AUD = "orders-api"


def make_cert(cn, days=30, expired=False):
    """A self-signed P-256 certificate for 127.0.0.1 / localhost: (cert PEM, key PEM, DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired else \
        (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


def write(path, data, mode=0o600):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)  # as a certificate manager would: whole files


def unverified():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_cert(port):
    """The DER certificate a new TLS connection to 127.0.0.1:port is given."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with unverified().wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def json_lines(path):
    out = []
    with open(path, "rb") as f:
        for line in f.read().decode("utf-8").splitlines():
            out.append(json.loads(line))  # every line whole and JSON
    return out


class LogReopen(unittest.TestCase):
    """--log FILE: rename, SIGHUP, nothing lost, nothing doubled."""

    def setUp(self):
        self.fx = st.ServerFixture(https=False, name="logreopen")
        self.log = os.path.join(self.fx.td, "access.log")
        self.fx.start(extra=["--log", self.log])

    def tearDown(self):
        self.fx.close()

    def rids(self, n):
        out = []
        for _ in range(n):
            r = self.fx.get("/healthz")
            self.assertEqual(r.status_code, 200)
            out.append(r.headers["X-Request-Id"])
        return out

    def test_rename_then_sighup(self):
        fx = self.fx
        before = self.rids(20)
        self.assertEqual(os.stat(self.log).st_mode & 0o777, 0o640)
        rotated = self.log + ".1"
        os.rename(self.log, rotated)
        fx.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(self.log), "the new log file")
        after = self.rids(20)
        wait_for(lambda: any(o.get("msg", "").startswith("log file reopened") for o in json_lines(self.log)),
                 "the reopen event in the new file")
        fx.stop()
        old = json_lines(rotated)
        new = json_lines(self.log)
        old_rids = [o["rid"] for o in old if "rid" in o]
        new_rids = [o["rid"] for o in new if "rid" in o]
        self.assertEqual(set(before) - set(old_rids), set(), "lines logged before SIGHUP missing from the old file")
        self.assertEqual(set(after) - set(new_rids), set(), "lines logged after SIGHUP missing from the new file")
        self.assertFalse(set(before) & set(new_rids))
        self.assertFalse(set(after) & set(old_rids))
        self.assertEqual(os.stat(self.log).st_mode & 0o777, 0o640)

    def test_under_load_nothing_lost_or_doubled(self):
        fx = self.fx
        seen = []
        stop = threading.Event()
        errors = []

        def hammer():
            conn = http.client.HTTPConnection("127.0.0.1", fx.port, timeout=10)
            try:
                while not stop.is_set():
                    conn.request("GET", "/healthz")
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(r.status)
                    seen.append(r.getheader("X-Request-Id"))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            finally:
                conn.close()

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for i in range(3):  # three rotations while requests keep coming
            time.sleep(0.3)
            os.rename(self.log, "%s.%d" % (self.log, i + 1))
            fx.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: os.path.exists(self.log), "the new log file")
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(fx.stop(), 0)
        logged = []
        for p in [self.log + ".1", self.log + ".2", self.log + ".3", self.log]:
            logged += [o["rid"] for o in json_lines(p) if "rid" in o]
        self.assertGreater(len(seen), 100)
        self.assertEqual(len(logged), len(set(logged)), "a line written twice")
        self.assertEqual(set(seen) - set(logged), set(), "lines lost across the reopens")

    def test_unwritable_new_file_keeps_the_old(self):
        fx = self.fx
        d = os.path.join(fx.td, "logdir")
        os.mkdir(d)
        # the log path now names a directory: open() fails, the old fd stays
        os.rename(self.log, self.log + ".1")
        os.rename(d, self.log)
        fx.proc.send_signal(signal.SIGHUP)
        rid = self.rids(1)[0]
        # the main loop acts on SIGHUP within a second; the log is flushed
        # within 100 ms after that
        def reopened():
            got = json_lines(self.log + ".1")
            said = any("still writing to the file open before" in o.get("msg", "") for o in got)
            return got if said and rid in [o.get("rid") for o in got] else None
        lines, _ = st.wait_for(reopened, 5.0)
        self.assertIsNone(fx.proc.poll())
        lines = lines or json_lines(self.log + ".1")
        self.assertIn(rid, [o.get("rid") for o in lines])
        self.assertTrue(any("still writing to the file open before" in o.get("msg", "") for o in lines), lines[-3:])


class CertReload(unittest.TestCase):
    """--tls-cert / --tls-key read again on SIGHUP."""

    @classmethod
    def setUpClass(cls):
        cls.a = make_cert("tokend-a")
        cls.b = make_cert("tokend-b")
        cls.c = make_cert("tokend-c")

    def setUp(self):
        self.fx = st.ServerFixture(https=True, name="certreload")
        self.cert = os.path.join(self.fx.td, "server.crt")
        self.key = os.path.join(self.fx.td, "server.key")
        self.log = os.path.join(self.fx.td, "access.log")
        write(self.cert, self.a[0], 0o644)
        write(self.key, self.a[1])
        self.fx.start(extra=["--tls-cert", self.cert, "--tls-key", self.key, "--log", self.log])

    def tearDown(self):
        self.fx.close()

    def events(self):
        return [o for o in json_lines(self.log) if "level" in o]

    def hup_and_wait(self, n_events_before, word):
        self.fx.proc.send_signal(signal.SIGHUP)
        return wait_for(lambda: [o for o in self.events()[n_events_before:] if word in o["msg"]],
                        "a TLS event (%s) in the log" % word)

    def test_new_certificate_for_new_connections_keep_alive_survives(self):
        port = self.fx.port
        self.assertEqual(peer_cert(port), self.a[2])
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=unverified(), timeout=10)
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        r.read()
        sock = conn.sock
        self.assertEqual(sock.getpeercert(binary_form=True), self.a[2])

        write(self.cert, self.b[0], 0o644)
        write(self.key, self.b[1])
        n = len(self.events())
        ev = self.hup_and_wait(n, "TLS certificate")
        self.assertIn("reloaded", ev[0]["msg"])
        self.assertEqual(peer_cert(port), self.b[2])
        # the connection opened before is still the same one, and works
        for _ in range(3):
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        self.assertIs(conn.sock, sock)
        self.assertEqual(sock.getpeercert(binary_form=True), self.a[2])
        conn.close()

    def refused(self, cert_pem, key_pem, why):
        port = self.fx.port
        write(self.cert, cert_pem, 0o644)
        write(self.key, key_pem)
        n = len(self.events())
        ev = self.hup_and_wait(n, "TLS")
        msgs = " | ".join(o["msg"] for o in ev)
        self.assertIn("refused", msgs)
        self.assertIn(why, msgs)
        self.assertIn("still serving the old one", msgs)
        self.assertEqual(peer_cert(port), self.a[2])  # the old pair serves on
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=unverified(), timeout=10)
        conn.request("GET", "/healthz")
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()
        self.assertIsNone(self.fx.proc.poll())

    def test_garbage_certificate_keeps_the_old(self):
        self.refused(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", self.b[1],
                     "certificate chain is not usable")

    def test_key_of_another_certificate_keeps_the_old(self):
        self.refused(self.b[0], self.c[1], "does not belong to the certificate")

    def test_expired_certificate_keeps_the_old(self):
        old = make_cert("tokend-old", expired=True)
        self.refused(old[0], old[1], "expired at")

    def test_missing_file_keeps_the_old(self):
        port = self.fx.port
        os.unlink(self.cert)
        n = len(self.events())
        ev = self.hup_and_wait(n, "TLS certificate")
        self.assertIn("still serving the old one", ev[0]["msg"])
        self.assertEqual(peer_cert(port), self.a[2])


class Sampling(unittest.TestCase):
    """--log-sample-auth-ok RATE."""

    def start(self, rate):
        fx = st.ServerFixture(https=False, name="sample")
        self.addCleanup(fx.close)
        fx.start(extra=["--log-sample-auth-ok", rate])
        cid, secret = fx.add_client("svc", "orders:read", AUD)
        return fx, fx.token(cid, secret)

    def test_zero_logs_only_failures(self):
        fx, tok = self.start("0")
        ok = fx.auth(tok, aud=AUD)
        self.assertEqual(ok.status_code, 200)
        bad = fx.auth(tok, aud="other-api")
        self.assertEqual(bad.status_code, 401)
        health = fx.get("/healthz")
        rid_bad = bad.headers["X-Request-Id"]
        fx.log_for(rid_bad)
        fx.log_for(health.headers["X-Request-Id"])
        rids = {o.get("rid") for o in fx.log_lines(settle=0.3)}
        self.assertNotIn(ok.headers["X-Request-Id"], rids)
        # a failure still carries the token's fingerprint
        self.assertEqual(fx.log_for(rid_bad)["token_fp"], st.fingerprint(tok))

    def test_half(self):
        fx, tok = self.start("0.5")
        rids = []
        for _ in range(300):
            r = fx.auth(tok, aud=AUD)
            self.assertEqual(r.status_code, 200)
            rids.append(r.headers["X-Request-Id"])
        logged = {o.get("rid"): o for o in fx.log_lines(settle=0.5)}
        n = sum(1 for r in rids if r in logged)
        self.assertGreater(n, 90)   # 150 expected; 300 draws
        self.assertLess(n, 210)
        for r in rids:
            if r in logged:
                self.assertEqual(logged[r]["token_fp"], st.fingerprint(tok))

    def test_bad_rate_fails_fast(self):
        for rate in ("1.5", "-0.1", "half", "nan", ""):
            fx = st.ServerFixture(https=False, name="badrate")
            try:
                r = fx.admin("serve", "--insecure-http", "--listen", "127.0.0.1:0", "--log-sample-auth-ok", rate,
                             timeout=30)
                self.assertEqual(r.rc, 2, r)
                self.assertIn("--log-sample-auth-ok", r.err)
            finally:
                fx.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
