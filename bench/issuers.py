#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/issuers.py: /auth with tokens of a trusted external issuer (issue 10
section 6), on loopback, in one run.

A fake identity provider runs inside this script: an HTTPS server (Python's
ThreadingHTTPServer + ssl, with a throwaway CA and a P-256 leaf for
127.0.0.1 made by /usr/bin/openssl in the work directory) serving, for each
of its tenants https://127.0.0.1:PORT/NAME, the OpenID discovery document
and a JWKS with the tenant's Cache-Control max-age, and counting every
fetch. Its keys are an RSA-2048 and a P-256 key; its tokens are RFC 9068
access tokens (typ at+jwt, expiring in 30 days) signed by PyJWT (Debian
python3-jwt). By default (--foreign-shape own) they carry the claims of
tokend's own client_credentials token with the same lengths (iss sub aud
exp iat jti client_id scope; a 16-character kid, a 22-character jti), so
that a foreign and an own token differ in where they come from and not in
size; --foreign-shape provider makes them as identity providers do (the
whole RFC 7638 thumbprint as kid, nbf, azp, gty, a 32-hex jti: 96 bytes more).

Target 1, foreign / own >= 0.95: two tokend, both started with
--trust-issuer https://127.0.0.1:PORT/t1 --trust-ca-file CA.pem, one with
--alg RS256, one with the default ES256. --rounds times, interleaved (the
order within a pair alternating from round to round), --duration s each:
  F1  GET /auth?aud=orders-api&scope=orders:read with a foreign RS256 token,
      at the RS256 server;     O1  the same with the server's own RS256 token;
  F2  a foreign ES256 token, at the ES256 server;
                               O2  the same with the server's own ES256 token.
wrk -t2 -c16 --latency -s bench/issuers-auth.lua (keep-alive). Reported:
req/s, requests per server CPU-second (utime + stime of tokend from
/proc/PID/stat), p50/p99, tokend's context switches per request, and
foreign / own for both rates (medians of the per-round ratios).
libmicrohttpd keeps each connection on the pool thread that accepted it, and
now and then one of tokend's two threads accepts all of wrk's connections
(the other idles, the rate halves): a run where one thread did nearly all
the work is marked 1T and run again, at most --one-thread-retries times
(this is chance, not the token; the runs thrown away are counted). Then, with
--callgrind N (default 300; valgrind needed), each server is started again
on its store under valgrind --tool=callgrind and sent N foreign then N own
requests, twice, on one keep-alive connection: instructions per request,
which the other sessions of a shared machine cannot disturb, and the
functions where foreign and own differ.

Target 2, key set refresh under load, p99(refresh) / p99(none) <= 2 and no
failed request: two tokend, both --issuer-cache-min 0, each trusting one
tenant of the fake issuer; the tenants differ only in their Cache-Control:
  R1  /auth with a foreign RS256 token while the tenant says max-age=3
      (--refresh-max-age): tokend refetches the key set in the background
      every 2 s (at 3/4 of its life, in whole seconds);
  R2  the same with max-age=86400: never refetched during the run.
--refresh-rounds pairs of --refresh-duration s runs, the order alternating
(1T runs repeated as above), after a 2 s warm-up of each server.
Then two rotation runs (--refresh-duration each), each on a fresh tokend:
  R3  the tenant (max-age=86400) publishes a second RSA key --rotate-at s into
      the run; 3 s later the clients start sending tokens signed with it (every
      other request; bench/issuers-rotate.lua): tokend meets an unknown kid and
      refetches once (--issuer-kid-cooldown);
  R4  the same with max-age=3: the background refresh finds the key first.
Reported: req/s, p50, p90, p99, max, non-2xx (must be 0), the fetches the
issuer answered and the ones tokend counted (tokend_issuer_fetches_total,
tokend_issuer_kid_refetches_total), the intervals between fetches, and
/auth's answers by reason (tokend_validations_total).

For every run also the cores used by tokend, wrk and this script (the fake
issuer), and the CPU the rest of the machine (other sessions) and the
hypervisor (steal) took meanwhile, as bench/signin_flood.py reports them: a
run where either is above ~0.2 core was disturbed.

It builds nothing: cmake --preset release && cmake --build --preset release
-j2 --target tokend. It reuses bench/serve.py (tokend runner, wrk parsing,
CPU accounting, clean-up) and bench/signin_flood.py (/metrics, machine CPU).
Everything it starts is stopped on exit, Ctrl-C, SIGTERM or SIGHUP; every
step has a time limit. Exit status 0 whatever the numbers (a benchmark, not a
test); 1 when a sanity check fails (a valid token refused, a forged one
accepted: the numbers would mean nothing); 2 on a set-up error.
"""

import argparse
import base64
import hashlib
import http.server
import json
import math
import os
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import serve as sb  # noqa: E402  bench/serve.py
import signin_flood as sf  # noqa: E402  bench/signin_flood.py

AUTH_LUA = os.path.join(HERE, "issuers-auth.lua")
ROTATE_LUA = os.path.join(HERE, "issuers-rotate.lua")
OPENSSL = "/usr/bin/openssl"
AUTH_PATH = sb.AUTH_PATH  # /auth?aud=orders-api&scope=orders:read
LONG_MAX_AGE = 86400
TOKEN_LIFE = 30 * 86400
ROTATE_LEAD = 3  # seconds between the new key's publication and the first token signed with it
DISTURBED = 0.2
SUB, SUB_NEW = "app-1", "app-2"  # the foreign tokens' sub (and client_id); SUB_NEW: signed with the rotated-in key
# The JWKS's Cache-Control, max-age first: tokend (main at 05e18a7) parses the header line libcurl hands
# it with its CRLF, so a max-age (or no-cache) that ends the line is ignored and the key set lives 1 h
# (bench/README.md). --max-age-last sends the other order, to see whether that is fixed.
CACHE_CONTROL = {"first": "max-age=%d, public", "last": "public, max-age=%d"}

TARGET_RATIO = 0.95
TARGET_P99 = 2.0


def log(msg):
    sb.log(msg)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# ---------------------------------------------------------------------------
# keys and tokens of the fake issuer (PyJWT, cryptography)

class Key:
    """A signing key of the fake issuer: private key, public JWK, kid (the
    first 16 characters of the RFC 7638 thumbprint, as tokend names its own
    keys: 96 bits)."""

    def __init__(self, kind, shape="own"):
        import jwt
        self.shape = shape
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        if kind == "RSA":
            self.alg = "RS256"
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.priv.public_key()))
            members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
        else:
            self.alg = "ES256"
            self.priv = ec.generate_private_key(ec.SECP256R1())
            # full-size coordinates (RFC 7518 section 6.2.1.2): PyJWT 2.6's to_jwk
            # drops leading zero bytes, which tokend refuses
            pn = self.priv.public_key().public_numbers()
            members = {"crv": "P-256", "kty": "EC", "x": b64u(pn.x.to_bytes(32, "big")),
                       "y": b64u(pn.y.to_bytes(32, "big"))}
        canon = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        self.thumbprint = b64u(hashlib.sha256(canon).digest())
        self.kid = self.thumbprint[:16] if shape == "own" else self.thumbprint
        self.jwk = dict(members, kid=self.kid, use="sig", alg=self.alg)

    def token(self, issuer, sub, now):
        """A signed access token (typ at+jwt, expiring in 30 days). Shape "own": the claims tokend's own
        client_credentials token has (iss sub aud exp iat jti client_id scope, a 22-character jti, a
        16-character kid), so that foreign and own tokens differ in where they come from, not in size;
        "provider": a bigger token as identity providers make them (the whole thumbprint as kid, nbf, a
        32-hex jti, azp, gty)."""
        import jwt
        if self.shape == "own":
            claims = {"iss": issuer, "sub": sub, "aud": sb.AUD, "exp": now + TOKEN_LIFE, "iat": now,
                      "jti": b64u(os.urandom(16)), "client_id": sub, "scope": sb.SCOPE}
        else:
            claims = {"iss": issuer, "sub": sub, "aud": sb.AUD, "exp": now + TOKEN_LIFE, "iat": now,
                      "nbf": now, "jti": uuid.uuid4().hex, "client_id": sub, "azp": sub, "gty": "client-credentials",
                      "scope": sb.SCOPE}
        return jwt.encode(claims, self.priv, algorithm=self.alg, headers={"kid": self.kid, "typ": "at+jwt"})


class Tenant:
    """One issuer of the fake provider: https://127.0.0.1:PORT/NAME."""

    def __init__(self, name, max_age, keys):
        self.name = name
        self.max_age = max_age
        self.keys = list(keys)
        self.issuer = None  # set when the server knows its port
        self.lock = threading.Lock()
        self.fetches = {"discovery": [], "jwks": []}  # time.time() of each

    def publish(self, key):
        with self.lock:
            self.keys.append(key)

    def count(self, what, t0=0.0, t1=float("inf")):
        with self.lock:
            return sum(1 for t in self.fetches[what] if t0 <= t < t1)

    def times(self, what, t0=0.0, t1=float("inf")):
        with self.lock:
            return [t for t in self.fetches[what] if t0 <= t < t1]


class FakeIssuer:
    """The HTTPS server of the tenants."""

    def __init__(self, work, cc_order="first"):
        self.cc_order = cc_order
        self.dir = os.path.join(work, "issuer")
        os.makedirs(self.dir)
        self.tenants = {}
        self.ca = os.path.join(self.dir, "ca.pem")
        self._certs()
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                issuer.handle(self)

            def log_message(self, fmt, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.dir, "leaf.pem"), os.path.join(self.dir, "leaf.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.start()

    def _certs(self):
        d = self.dir
        ext = os.path.join(d, "leaf.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        steps = [
            [OPENSSL, "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", os.path.join(d, "ca.key"), "-out", self.ca, "-days", "2",
             "-subj", "/CN=tokend bench throwaway CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            [OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", os.path.join(d, "leaf.key"), "-out", os.path.join(d, "leaf.csr"), "-subj", "/CN=127.0.0.1"],
            [OPENSSL, "x509", "-req", "-in", os.path.join(d, "leaf.csr"), "-CA", self.ca, "-CAkey",
             os.path.join(d, "ca.key"), "-set_serial", "2", "-days", "2", "-out", os.path.join(d, "leaf.pem"),
             "-extfile", ext],
        ]
        for argv in steps:
            rc, out, err = sb.run(argv, 30, "openssl")
            if rc != 0:
                raise sb.SetupError("openssl failed (%d): %s\n%s" % (rc, " ".join(argv), err))

    def add(self, tenant):
        tenant.issuer = "%s/%s" % (self.base, tenant.name)
        self.tenants[tenant.name] = tenant
        return tenant

    def handle(self, h):
        path = h.path.split("?", 1)[0]
        parts = path.strip("/").split("/", 1)
        t = self.tenants.get(parts[0])
        rest = parts[1] if len(parts) == 2 else ""
        if not t or rest not in (".well-known/openid-configuration", "jwks.json"):
            h.send_error(404)
            return
        with t.lock:
            if rest == "jwks.json":
                t.fetches["jwks"].append(time.time())
                doc = {"keys": [k.jwk for k in t.keys]}
                cc = CACHE_CONTROL[self.cc_order] % t.max_age
            else:
                t.fetches["discovery"].append(time.time())
                doc = {"issuer": t.issuer, "jwks_uri": t.issuer + "/jwks.json",
                       "authorization_endpoint": t.issuer + "/authorize", "token_endpoint": t.issuer + "/oauth/token",
                       "response_types_supported": ["code"], "subject_types_supported": ["public"],
                       "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
                cc = CACHE_CONTROL[self.cc_order] % 86400
        body = json.dumps(doc).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Cache-Control", cc)
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------------------
# tokend with a trusted issuer

class Tokend(sb.Tokend):
    """bench/serve.py's runner, with extra serve flags (the trusted issuer) and a chosen port."""

    def __init__(self, binary, workdir, name, alg, log_path, threads, extra, port=0):
        super().__init__(binary, workdir, name, alg, log_path, threads)
        self.extra = list(extra)
        self.port = port

    def start(self):
        saved = self.alg_args
        self.alg_args = saved + self.extra  # serve's argv: alg flags, then the store, the log, the threads
        try:
            super().start()  # it listens on 127.0.0.1:0 ...
        finally:
            self.alg_args = saved
        if self.port:  # ... so start it again on the port asked for (the issuer is the public URL)
            super().stop()
            self.argv = [x if x != "127.0.0.1:0" else "127.0.0.1:%d" % self.port for x in self.argv]
            self.addr = None
            self.out = open(os.path.join(self.dir, "serve.out"), "w+")
            self.proc = sb.PROCS.start(self.argv, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.time() + 15
            while time.time() < deadline and self.proc.poll() is None:
                try:
                    if sb.http_req("127.0.0.1:%d" % self.port, "GET", "/healthz")[0] == 200:
                        self.addr = "127.0.0.1:%d" % self.port
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            if not self.addr:
                self.out.seek(0)
                raise sb.SetupError("tokend serve (%s) did not start on port %d:\n%s" % (self.name, self.port,
                                                                                        self.out.read()))
        self.issuer = "http://" + self.addr  # the default --issuer: the public URL


def metrics(t):
    return sf.metrics(t.addr)


def metric(m, name, **labels):
    return sf.ft.st.metric(m, name, **labels)


def reasons_delta(m0, m1):
    """tokend_validations_total between two /metrics: {reason: count} of the ones that moved."""
    out = {}
    for (name, labels), v in m1.items():
        if name == "tokend_validations_total":
            d = v - m0.get((name, labels), 0.0)
            if d:
                out[dict(labels)["reason"]] = int(d)
    return out


def fetch_counts(m, issuer):
    return (metric(m, "tokend_issuer_fetches_total", issuer=issuer, result="ok"),
            metric(m, "tokend_issuer_fetches_total", issuer=issuer, result="error"),
            metric(m, "tokend_issuer_kid_refetches_total", issuer=issuer, result="fetched"),
            metric(m, "tokend_issuer_kid_refetches_total", issuer=issuer, result="cooldown"))


def auth(t, token):
    st, h, body = sb.http_req(t.addr, "GET", AUTH_PATH, {"Authorization": "Bearer " + token})
    return st, h, body


def expect_valid(t, token, issuer, sub, what):
    st, h, body = auth(t, token)
    sb.check(st == 200 and h.get("X-Auth-Issuer") == issuer and h.get("X-Auth-Subject") == sub,
             "%s: /auth at %s answered %d (reason %s, issuer %s, subject %s; expected 200 from %s for %s): %s"
             % (what, t.name, st, h.get("X-Auth-Reason"), h.get("X-Auth-Issuer"), h.get("X-Auth-Subject"), issuer,
                sub, body[:200]))


def expect_refused(t, token, reason, what):
    st, h, body = auth(t, token)
    sb.check(st == 401 and h.get("X-Auth-Reason") == reason,
             "%s: /auth at %s answered %d %s, expected 401 %s" % (what, t.name, st, h.get("X-Auth-Reason"), reason))


# ---------------------------------------------------------------------------
# wrk

def ctx_switches(pid):
    """(voluntary, involuntary) context switches of all of pid's live threads: voluntary ones are waits
    (a contended lock, an empty epoll), involuntary ones preemptions."""
    v = n = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0, 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        v += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        n += int(line.split()[1])
        except OSError:
            pass
    return v, n


def thread_cpu(pid):
    """{tid: utime + stime ticks} of pid's live threads."""
    d = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return d
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                v = f.read().rsplit(")", 1)[1].split()
            d[tid] = int(v[11]) + int(v[12])
        except (OSError, IndexError, ValueError):
            pass
    return d


def parse_wrk(out):
    r = sb.parse_wrk(out)
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    r["max"] = sb.parse_ms(m.group(3)) if m else None
    m = re.search(r"^\s+90%\s+(\S+)", out, re.M)
    r["p90"] = sb.parse_ms(m.group(1)) if m else None
    m = re.search(r"^rotate: sent_new (\d+)", out, re.M)
    r["sent_new"] = int(m.group(1)) if m else None
    return r


def wrk_argv(a, duration, url, script, args, shown=None):
    return (["wrk", "-t%d" % a.wrk_threads, "-c%d" % a.connections, "-d%ds" % duration, "--latency", "-s",
             sb.rel(script) if shown else script, url, "--"] + list(shown if shown else args))


def measure(a, t, duration, script, args, shown, label, during=None):
    """One wrk run against tokend t: wrk's numbers, the cores of tokend / wrk / this script (the fake
    issuer) / the rest of the machine / steal, and tokend's /metrics before and after."""
    log("  %s (%d s)" % (label, duration))
    m0 = metrics(t)
    cpu0 = sb.proc_cpu_s(t.proc.pid)
    cs0 = ctx_switches(t.proc.pid)
    th0 = thread_cpu(t.proc.pid)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    mc0 = sf.machine_cpu_s()
    t0 = time.time()
    if during:
        during(t0)
    rc, out, err = sb.run(wrk_argv(a, duration, "http://" + t.addr, script, args), duration + 30, "wrk")
    t1 = time.time()
    mc1 = sf.machine_cpu_s()
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = sb.proc_cpu_s(t.proc.pid)
    cs1 = ctx_switches(t.proc.pid)
    th1 = thread_cpu(t.proc.pid)
    m1 = metrics(t)
    if rc != 0 or "Requests/sec" not in out:
        raise sb.SetupError("wrk failed (%d): %s\n%s" % (rc, err, out))
    if a.verbose:
        log(out)
    r = parse_wrk(out)
    wall = r["seconds"] or duration
    r["t0"], r["t1"] = t0, t1
    r["srv_cpu"] = (cpu1 - cpu0) / wall
    r["wrk_cpu"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
    r["me_cpu"] = (me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime) / wall
    r["other_cpu"] = (mc1[0] - mc0[0]) / wall - r["srv_cpu"] - r["wrk_cpu"] - r["me_cpu"]
    r["steal"] = (mc1[1] - mc0[1]) / wall
    r["per_cpu"] = r["rps"] / r["srv_cpu"] if r["srv_cpu"] else None
    n = max(1, r["requests"])
    r["vcs"], r["ics"] = (cs1[0] - cs0[0]) / n, (cs1[1] - cs0[1]) / n  # per request
    # libmicrohttpd keeps a connection on the pool thread that accepted it: with a handful of connections
    # one thread may serve them all (bench/README.md). The two busiest threads, in cores:
    busy = sorted(((th1[k] - th0.get(k, 0)) / sb.TICKS / wall for k in th1), reverse=True) + [0.0, 0.0]
    r["threads"] = busy[:2]
    r["one_thread"] = a.tokend_threads != 1 and busy[0] > 0.3 and busy[1] < 0.25 * busy[0]
    r["m0"], r["m1"] = m0, m1
    r["reasons"] = reasons_delta(m0, m1)
    r["label"] = label
    time.sleep(a.pause)
    return r


def measure_spread(a, t, duration, script, args, shown, label):
    """measure(), run again (at most --one-thread-retries times) while one tokend thread served every
    connection: which pool thread a connection lands on is chance, and a ratio between a run on two
    threads and a run on one measures that chance, not the tokens. r["one_thread_runs"] counts the
    runs thrown away."""
    dropped = 0
    while True:
        r = measure(a, t, duration, script, args, shown, label)
        if not r["one_thread"] or dropped >= a.one_thread_retries:
            r["one_thread_runs"] = dropped
            return r
        dropped += 1
        log("    one tokend thread served every connection (%.0f req/s): run again" % r["rps"])


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="/auth with a trusted external issuer's tokens, and key set refresh under load "
                    "(issue 10 section 6; see bench/README.md).")
    ap.add_argument("--tokend", default=os.path.join(ROOT, "build", "release", "tokend"),
                    help="tokend binary (default build/release/tokend)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per foreign/own run (default 5)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved foreign/own rounds (default 5)")
    ap.add_argument("--refresh-duration", type=int, default=20,
                    help="seconds per refresh and rotation run (default 20)")
    ap.add_argument("--refresh-rounds", type=int, default=2,
                    help="refresh / no-refresh pairs, the order alternating (default 2)")
    ap.add_argument("--refresh-max-age", type=int, default=3,
                    help="the key set's Cache-Control max-age in the refresh runs, s (default 3: refetched every "
                    "2 s)")
    ap.add_argument("--rotate-at", type=int, default=7,
                    help="second of the rotation runs at which the issuer publishes its new key; tokens signed "
                    "with it follow %d s later (default 7)" % ROTATE_LEAD)
    ap.add_argument("--foreign-shape", choices=["own", "provider"], default="own",
                    help="the foreign tokens' claims: 'own' (default) those of tokend's own token, same sizes; "
                    "'provider' a bigger token as identity providers make them (96 bytes more)")
    ap.add_argument("--max-age-last", action="store_true",
                    help="the issuer sends 'Cache-Control: public, max-age=N' instead of 'max-age=N, public' "
                    "(tokend at 05e18a7 ignores a max-age at the end of the line: R1 is then not refreshed)")
    ap.add_argument("--connections", type=int, default=16,
                    help="wrk -c (default 16; with 8, libmicrohttpd often puts every connection on one of tokend's "
                    "threads: see bench/README.md)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    ap.add_argument("--tokend-threads", type=int, default=0, help="tokend --threads (default 0: one per core)")
    ap.add_argument("--only", choices=["auth", "refresh", "callgrind"],
                    help="run only target 1 (auth), target 2 (refresh) or the instruction counts (callgrind)")
    ap.add_argument("--callgrind", type=int, default=300, metavar="N",
                    help="also count instructions: each target-1 server under valgrind --tool=callgrind, N "
                    "foreign then N own requests, twice, on one keep-alive connection; prints instructions per "
                    "request and where foreign and own differ (default 300, about 25 s; 0: skip)")
    ap.add_argument("--one-thread-retries", type=int, default=2, metavar="N",
                    help="run a foreign/own or refresh run again, at most N times, when one tokend thread served "
                    "every connection (default 2; 0: keep such runs)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of rest after each run (default 1)")
    ap.add_argument("--verbose", action="store_true", help="print every wrk output")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (stores, certificates, logs)")
    a = ap.parse_args()
    if min(a.duration, a.rounds, a.refresh_duration, a.refresh_rounds, a.connections, a.wrk_threads,
           a.refresh_max_age) < 1:
        ap.error("durations, rounds, --connections, --wrk-threads and --refresh-max-age must be positive")
    if not 1 <= a.rotate_at <= a.refresh_duration - ROTATE_LEAD - 2:
        ap.error("--rotate-at must leave the new tokens a few seconds of the run (1 .. --refresh-duration - %d)"
                 % (ROTATE_LEAD + 2))
    for tool in ("wrk", OPENSSL):
        if not shutil.which(tool):
            log("bench/issuers.py: %s is not installed (scripts/deps.sh installs wrk)" % tool)
            return 2
    try:
        import jwt  # noqa: F401
        import cryptography  # noqa: F401
    except ImportError as e:
        log("bench/issuers.py: %s (Debian: python3-jwt python3-cryptography)" % e)
        return 2
    if not os.access(a.tokend, os.X_OK):
        log("bench/issuers.py: %s is missing: cmake --preset release && cmake --build --preset release -j2 "
            "--target tokend" % a.tokend)
        return 2
    a.tokend = os.path.abspath(a.tokend)
    signal.signal(signal.SIGTERM, sb.on_signal)
    signal.signal(signal.SIGHUP, sb.on_signal)
    work = tempfile.mkdtemp(prefix="tokend-bench-issuers-")
    status = 0
    fake = None
    try:
        fake = FakeIssuer(work, "last" if a.max_age_last else "first")
        status = bench(a, work, fake)
    except sb.SanityError as e:
        log("bench/issuers.py: sanity check failed: %s" % e)
        status = 1
    except (sb.SetupError, AssertionError) as e:
        log("bench/issuers.py: %s" % e)
        status = 2
    except KeyboardInterrupt:
        log("bench/issuers.py: interrupted")
        status = 130
    except Exception:  # noqa: BLE001  an unexpected error: say where, clean up all the same
        import traceback
        traceback.print_exc()
        status = 2
    finally:
        sb.PROCS.stop_all()
        if fake:
            fake.stop()
        if a.keep or status not in (0, 130):
            log("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


def trust_flags(fake, tenant, extra=()):
    return ["--trust-issuer", tenant.issuer, "--trust-ca-file", fake.ca] + list(extra)


def start_tokend(a, work, name, alg, flags, client=False, port=0):
    t = Tokend(a.tokend, work, name, alg, "/dev/null", a.tokend_threads, flags, port)
    if client:
        t.add_client(sb.CLIENT, ttl="1h")
    t.start()
    return t


def wait_keys(t, issuer, what):
    """Waits until tokend has fetched the issuer's key set (the maintainer fetches at start)."""
    deadline = time.time() + 10
    while time.time() < deadline:
        if metric(metrics(t), "tokend_issuer_keys", issuer=issuer) > 0:
            return
        time.sleep(0.05)
    t.out.seek(0)
    raise sb.SetupError("%s: tokend did not fetch the key set of %s within 10 s:\n%s" % (what, issuer, t.out.read()))


def bench(a, work, fake):
    t_start = time.time()
    load0 = sb_loadavg()
    log("fake issuer at %s (CA %s); load average %s" % (fake.base, fake.ca, load0))
    rsa1, ec1 = Key("RSA", a.foreign_shape), Key("EC", a.foreign_shape)
    tenant1 = fake.add(Tenant("t1", LONG_MAX_AGE, [rsa1, ec1]))
    res = {"t1": None, "t2": None, "cg": None}
    cmds = []

    # -- target 1: foreign vs own --------------------------------------------------
    if a.only in (None, "auth"):
        res["t1"] = target1(a, work, fake, tenant1, rsa1, ec1, cmds)
    if a.callgrind and a.only in (None, "auth", "callgrind"):
        res["cg"] = callgrind_counts(a, work, fake, tenant1, rsa1, ec1)
    # -- target 2: refresh under load, rotation -----------------------------------------
    if a.only in (None, "refresh"):
        res["t2"] = target2(a, work, fake, rsa1, ec1, cmds)

    report(a, res, cmds, fake, load0, time.time() - t_start, work)
    return 0


def sb_loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def target1(a, work, fake, tenant1, rsa1, ec1, cmds):
    log("target 1: foreign vs own tokens, %d interleaved rounds of %d s" % (a.rounds, a.duration))
    flags = trust_flags(fake, tenant1)
    srv = {"RS256": start_tokend(a, work, "rs256", "RS256", flags, client=True),
           "ES256": start_tokend(a, work, "es256", "ES256", flags, client=True)}
    now = int(time.time())
    foreign = {"RS256": rsa1.token(tenant1.issuer, SUB, now), "ES256": ec1.token(tenant1.issuer, SUB, now)}
    own = {}
    for alg, t in srv.items():
        wait_keys(t, tenant1.issuer, "target 1")
        own[alg] = sb.get_token(t.addr, sb.CLIENT, t.secrets[sb.CLIENT])
        sb.check(sb.b64url_json(own[alg].split(".")[0])["alg"] == alg,
                 "the %s server issued a non-%s token" % (alg, alg))
        sb.check(sb.b64url_json(foreign[alg].split(".")[0])["alg"] == alg, "PyJWT made a non-%s token" % alg)
        expect_valid(t, foreign[alg], tenant1.issuer, SUB, "foreign %s" % alg)
        expect_valid(t, own[alg], t.issuer, sb.CLIENT, "own %s" % alg)
        expect_refused(t, sb.alter_signature(foreign[alg]), "bad_signature", "foreign %s, signature altered" % alg)
        expect_refused(t, sb.alter_signature(own[alg]), "bad_signature", "own %s, signature altered" % alg)
    cells = [("F1", "RS256", "foreign"), ("O1", "RS256", "own"), ("F2", "ES256", "foreign"), ("O2", "ES256", "own")]
    runs = {c[0]: [] for c in cells}
    for rnd in range(a.rounds):
        log("round %d/%d" % (rnd + 1, a.rounds))
        for alg in ("RS256", "ES256"):
            pair = [c for c in cells if c[1] == alg]
            if rnd % 2:
                pair.reverse()
            for cid, _, who in pair:
                tok = foreign[alg] if who == "foreign" else own[alg]
                r = measure_spread(a, srv[alg], a.duration, AUTH_LUA, [AUTH_PATH, tok], None,
                                   "%s /auth %s %s token (round %d)" % (cid, who, alg, rnd + 1))
                r["round"] = rnd + 1
                runs[cid].append(r)
    for t in srv.values():
        t.stop()
    cmds.append(("RS256 server", srv["RS256"].printable_argv()))
    cmds.append(("ES256 server", srv["ES256"].printable_argv()))
    cmds.append(("F1 O1 F2 O2", wrk_argv(a, a.duration, "http://127.0.0.1:PORT", AUTH_LUA, [],
                                          shown=[AUTH_PATH, "$TOKEN"])))
    return {"runs": runs, "cells": cells}


def target2(a, work, fake, rsa1, ec1, cmds):
    log("target 2: key set refresh under load, %d pair(s) of %d s; then two rotation runs"
        % (a.refresh_rounds, a.refresh_duration))
    short = fake.add(Tenant("short", a.refresh_max_age, [rsa1, ec1]))
    long_ = fake.add(Tenant("long", LONG_MAX_AGE, [rsa1, ec1]))
    common = ["--issuer-cache-min", "0"]
    now = int(time.time())
    tok = {short.name: rsa1.token(short.issuer, SUB, now), long_.name: rsa1.token(long_.issuer, SUB, now)}
    srv = {}
    for tn in (short, long_):
        t = start_tokend(a, work, "t2-" + tn.name, "ES256", trust_flags(fake, tn, common))
        wait_keys(t, tn.issuer, "target 2")
        expect_valid(t, tok[tn.name], tn.issuer, SUB, "foreign RS256 (%s)" % tn.name)
        srv[tn.name] = t
    for tn in (short, long_):  # a short warm-up of each, not measured
        sb.run(wrk_argv(a, 2, "http://" + srv[tn.name].addr, AUTH_LUA, [AUTH_PATH, tok[tn.name]]), 30, "wrk")
    # the two servers run side by side; only one is loaded at a time, but the idle refresh server keeps
    # refetching (every ~2 s, a few ms of CPU): that is counted in "other CPU" of the no-refresh runs
    pairs = []
    for rnd in range(a.refresh_rounds):
        log("refresh round %d/%d" % (rnd + 1, a.refresh_rounds))
        order = (short, long_) if rnd % 2 == 0 else (long_, short)
        got = {}
        for tn in order:
            t = srv[tn.name]
            rid = "R1" if tn is short else "R2"
            idle = srv[short.name].proc.pid  # during R2, the idle R1 server's refetches cost what they cost
            idle0, w0 = sb.proc_cpu_s(idle), time.time()
            r = measure_spread(a, t, a.refresh_duration, AUTH_LUA, [AUTH_PATH, tok[tn.name]], None,
                               "%s /auth foreign RS256, max-age=%d (round %d)" % (rid, tn.max_age, rnd + 1))
            if rid == "R2":
                r["idle_cpu"] = sb.proc_cpu_s(idle) - idle0
                r["idle_fetches"] = short.count("jwks", w0, r["t1"])
            r["issuer_fetches"] = tn.count("jwks", r["t0"], r["t1"])
            r["fetch_times"] = tn.times("jwks", r["t0"], r["t1"])
            r["tokend_fetches"] = [y - x for x, y in zip(fetch_counts(r["m0"], tn.issuer),
                                                         fetch_counts(r["m1"], tn.issuer))]
            r["round"] = rnd + 1
            got[rid] = r
        pairs.append(got)
    for tn in (short, long_):
        cmds.append(("R1 server" if tn is short else "R2 server", srv[tn.name].printable_argv()))
        srv[tn.name].stop()
    cmds.append(("R1 R2", wrk_argv(a, a.refresh_duration, "http://127.0.0.1:PORT", AUTH_LUA, [],
                                   shown=[AUTH_PATH, "$TOKEN"])))

    # -- rotation --------------------------------------------------------------------------
    rot = []
    for rid, max_age in (("R3", LONG_MAX_AGE), ("R4", a.refresh_max_age)):
        rsa2 = Key("RSA", a.foreign_shape)
        tn = fake.add(Tenant("rotate-%d" % max_age, max_age, [rsa1, ec1]))
        t = start_tokend(a, work, "t2-" + tn.name, "ES256", trust_flags(fake, tn, common))
        wait_keys(t, tn.issuer, "rotation")
        now = int(time.time())
        old_tok = rsa1.token(tn.issuer, SUB, now)
        new_tok = rsa2.token(tn.issuer, SUB_NEW, now)
        expect_valid(t, old_tok, tn.issuer, SUB, "rotation, old key")
        box = {}

        def during(t0, tn=tn, rsa2=rsa2, box=box):
            # the switch second for wrk's Lua clock, and a timer publishing the key ROTATE_LEAD s before
            box["switch"] = int(math.ceil(t0)) + a.rotate_at + ROTATE_LEAD
            pub_at = box["switch"] - ROTATE_LEAD

            def publish():
                time.sleep(max(0.0, pub_at - time.time()))
                tn.publish(rsa2)
                box["published"] = time.time()
            th = threading.Thread(target=publish, daemon=True)
            th.start()
            box["thread"] = th
            # wrk reads its script arguments at start: the switch time must be known before
            args[2] = str(box["switch"])

        args = [AUTH_PATH, old_tok, "0", new_tok]
        label = "%s rotation at the issuer, max-age=%d: new key published at %d s, its tokens from %d s" % (
            rid, max_age, a.rotate_at, a.rotate_at + ROTATE_LEAD)
        r = measure(a, t, a.refresh_duration, ROTATE_LUA, args, None, label, during=during)
        box["thread"].join(5)
        r["issuer_fetches"] = tn.count("jwks", r["t0"], r["t1"])
        r["fetch_times"] = tn.times("jwks", r["t0"], r["t1"])
        r["tokend_fetches"] = [y - x for x, y in zip(fetch_counts(r["m0"], tn.issuer),
                                                     fetch_counts(r["m1"], tn.issuer))]
        r["published"] = box.get("published")
        r["switch"] = box["switch"]
        r["max_age"] = max_age
        r["rid"] = rid
        # afterwards both tokens are good
        expect_valid(t, new_tok, tn.issuer, SUB_NEW, "%s: the new key's token after the run" % rid)
        expect_valid(t, old_tok, tn.issuer, SUB, "%s: the old key's token after the run" % rid)
        cmds.append(("%s server" % rid, t.printable_argv()))
        t.stop()
        rot.append(r)
    cmds.append(("R3 R4", wrk_argv(a, a.refresh_duration, "http://127.0.0.1:PORT", ROTATE_LUA, [],
                                   shown=[AUTH_PATH, "$OLD_TOKEN", "$SWITCH_UNIX_TIME", "$NEW_TOKEN"])))
    return {"pairs": pairs, "rot": rot, "short": short, "long": long_}


# ---------------------------------------------------------------------------
# instruction counts (callgrind): what a foreign token costs beyond an own one, without the noise of a
# shared machine

CG_FUNCS = ("srv_handle_auth", "tka_validate_any", "tk_token_parse", "tk_keycache_verify_token",
            "tka_validate_parsed", "tk_token_verify_signature", "tk_token_check_claims", "after_signature",
            "tka_is_revoked", "srv_fingerprint")


def cg_annotate(path):
    """{function name: inclusive Ir} from callgrind_annotate --inclusive=yes (tokend's functions by bare
    name, the others as callgrind names them)."""
    rc, out, err = sb.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path], 120,
                          "callgrind_annotate")
    if rc != 0:
        raise sb.SetupError("callgrind_annotate %s failed: %s" % (path, err))
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if not m or "PROGRAM TOTALS" in line or m.group(2).startswith("=>"):
            continue
        name = m.group(2)
        f = re.match(r"/\S*/src/\S+?:(\w+)", name)
        key = f.group(1) if f else re.sub(r" \[.*\]$", "", name)
        d[key] = d.get(key, 0) + int(m.group(1).replace(",", ""))
    return d


def cg_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise sb.SetupError("%s: no summary line" % path)


def callgrind_counts(a, work, fake, tenant, rsa1, ec1):
    import http.client
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        log("callgrind: valgrind is not installed; skipped")
        return None
    log("callgrind: %d foreign and %d own requests, twice, per alg, under valgrind" % (a.callgrind, a.callgrind))
    out = {}
    for alg, key in (("RS256", rsa1), ("ES256", ec1)):
        port = sb.free_port()
        t = start_tokend(a, work, "cg-" + alg.lower(), alg, trust_flags(fake, tenant), client=True, port=port)
        wait_keys(t, tenant.issuer, "callgrind")
        own = sb.get_token(t.addr, sb.CLIENT, t.secrets[sb.CLIENT])
        t.stop()  # the store now holds the keys and the client: the same server, started again under valgrind
        foreign = key.token(tenant.issuer, SUB, int(time.time()))
        argv = t.argv
        prefix = os.path.join(t.dir, "callgrind.out")
        vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % prefix] + argv
        vlog = open(os.path.join(t.dir, "valgrind.log"), "w+")
        p = sb.PROCS.start(vg, stdout=vlog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        addr = "127.0.0.1:%d" % port
        deadline = time.time() + 180
        while True:
            try:
                if sb.http_req(addr, "GET", "/healthz")[0] == 200 and \
                        metric(sf.metrics(addr), "tokend_issuer_keys", issuer=tenant.issuer) > 0:
                    break
            except OSError:
                pass
            if p.poll() is not None or time.time() > deadline:
                vlog.seek(0)
                raise sb.SetupError("tokend under valgrind did not come up:\n%s" % vlog.read()[-3000:])
            time.sleep(0.5)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def burst(tok, n):
            for _ in range(n):
                c.request("GET", AUTH_PATH, headers={"Authorization": "Bearer " + tok})
                r = c.getresponse()
                r.read()
                sb.check(r.status == 200, "callgrind: /auth answered %d %s" % (r.status, r.getheader("X-Auth-Reason")))

        burst(foreign, 50)
        burst(own, 50)
        dumps = []
        for k, (who, tok) in enumerate((("foreign", foreign), ("own", own), ("foreign", foreign), ("own", own))):
            rc, _, err = sb.run(["callgrind_control", "-z", str(p.pid)], 60, "callgrind_control -z")
            burst(tok, a.callgrind)
            rc2, _, err2 = sb.run(["callgrind_control", "-d", "%s-%d" % (who, k), str(p.pid)], 60,
                                  "callgrind_control -d")
            if rc or rc2:
                raise sb.SetupError("callgrind_control failed: %s %s" % (err, err2))
            dumps.append((who, "%s.%d.%d" % (prefix, p.pid, k + 1)))
        c.close()
        sb.PROCS.stop(p, signal.SIGTERM, 60)
        res = {"foreign": [], "own": [], "funcs": {"foreign": {}, "own": {}}, "argv": vg,
               "tok_len": {"foreign": len(foreign), "own": len(own)}}
        for who, path in dumps:
            res[who].append(cg_total(path) / a.callgrind)
            for name, v in cg_annotate(path).items():
                res["funcs"][who][name] = res["funcs"][who].get(name, 0) + v / a.callgrind / 2
        out[alg] = res
    return out



# ---------------------------------------------------------------------------
# the report

def fnum(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def disturbed(r):
    return r["other_cpu"] > DISTURBED or r["steal"] > DISTURBED


def table(cols, rows, right):
    widths = [max(len(cols[i]), *(len(x[i]) for x in rows)) for i in range(len(cols))]

    def fmt(row):
        return " | ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()
    print(fmt(cols))
    print("-+-".join("-" * w for w in widths))
    for x in rows:
        print(fmt(x))


def reasons_str(rs):
    return " ".join("%s:%d" % kv for kv in sorted(rs.items())) or "-"



def print_callgrind(a, cg):
    print()
    print("Instructions per /auth request (valgrind --tool=callgrind, all of tokend's threads, %d requests per "
          "dump on one keep-alive connection, two dumps each; the server of target 1 started again under "
          "valgrind on its store):" % a.callgrind)
    print()
    rows = []
    for alg, r in cg.items():
        f, o = sb.median(r["foreign"]), sb.median(r["own"])
        rows.append([alg, "%d B / %d B" % (r["tok_len"]["foreign"], r["tok_len"]["own"]),
                     " ".join("%.0f" % x for x in r["foreign"]), " ".join("%.0f" % x for x in r["own"]),
                     "%.3fx" % (o / f), "%+.0f" % (f - o)])
    table(["alg", "token foreign / own", "Ir/req foreign", "Ir/req own", "own ÷ foreign (as a rate)",
           "foreign - own"], rows, {2, 3, 4, 5})
    for alg, r in cg.items():
        ff, oo = r["funcs"]["foreign"], r["funcs"]["own"]
        print("  %s, inclusive Ir per request, foreign / own: %s" % (alg, "; ".join(
            "%s %.0f / %.0f" % (n, ff.get(n, 0), oo.get(n, 0)) for n in CG_FUNCS if ff.get(n) or oo.get(n))))
        ours = [n for n in set(ff) | set(oo) if re.fullmatch(r"\w+", n)]  # tokend's functions
        diff = sorted(ours, key=lambda n: -abs(ff.get(n, 0) - oo.get(n, 0)))
        print("  %s, largest differences (foreign - own, inclusive): %s" % (alg, "; ".join(
            "%s %+.0f" % (n, ff.get(n, 0) - oo.get(n, 0)) for n in diff[:12])))


def report(a, res, cmds, fake, load0, elapsed, work):
    print("tokend trusted-issuer benchmark (issue 10 section 6), %s, %d cores shared by wrk, tokend and the fake "
          "issuer (load average %s at start, %s at the end); %.0f s in all."
          % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), load0, sb_loadavg(), elapsed))
    print("wrk -t%d -c%d --latency (keep-alive) on loopback; tokend --threads %d --log /dev/null --insecure-http; "
          "the fake issuer: HTTPS on %s (throwaway P-256 CA), RSA-2048 and P-256 keys, JWKS with 'Cache-Control: "
          "%s', tokens by PyJWT (--foreign-shape %s)."
          % (a.wrk_threads, a.connections, a.tokend_threads, fake.base,
             (CACHE_CONTROL[fake.cc_order] % 0).replace("=0", "=N"),
             a.foreign_shape))
    print("CPU columns: cores used by tokend (srv), wrk, and this script's fake issuer (iss); other: the rest of "
          "the machine (other sessions), steal: the hypervisor; '*' marks a run where either was above %.1f."
          % DISTURBED)
    verdicts = []
    t1 = res["t1"]
    if t1:
        runs = t1["runs"]
        print()
        print("Target 1: /auth with a foreign token vs tokend's own token of the same alg, same server (both "
              "started with --trust-issuer); %d interleaved rounds of %d s; values: medians over the rounds, "
              "ratios: medians of the per-round ratios." % (a.rounds, a.duration))
        print()
        cols = ["#", "measurement", "req/s", "req/CPU-s", "p50", "p99", "non-2xx", "cores srv+wrk", "ratio",
                "measured", "target", "result"]
        rows = []
        for fid, oid, alg in (("F1", "O1", "RS256"), ("F2", "O2", "ES256")):
            for cid, who in ((fid, "foreign"), (oid, "own")):
                rs = runs[cid]
                rows.append([cid, "/auth %s %s token" % (who, alg), fnum(sb.median(r["rps"] for r in rs)),
                             fnum(sb.median(r["per_cpu"] for r in rs)), sb.fmt_ms(sb.median(r["p50"] for r in rs)),
                             sb.fmt_ms(sb.median(r["p99"] for r in rs)),
                             str(sum(r["non2xx"] + r["sockerr"] for r in rs)),
                             "%.2f+%.2f" % (sb.median(r["srv_cpu"] for r in rs), sb.median(r["wrk_cpu"] for r in rs)),
                             "", "", "", ""])
            x = sb.median(f["rps"] / o["rps"] for f, o in zip(runs[fid], runs[oid]))
            y = sb.median(f["per_cpu"] / o["per_cpu"] for f, o in zip(runs[fid], runs[oid])
                          if f["per_cpu"] and o["per_cpu"])
            ok = x >= TARGET_RATIO and y is not None and y >= TARGET_RATIO
            verdicts.append(("foreign %s >= %.2fx own (req/s and per CPU-s)" % (alg, TARGET_RATIO),
                             "%.2fx / %.2fx" % (x, y or 0), ok))
            rows.append(["", "", "", "", "", "", "", "", "%s ÷ %s req/s" % (fid, oid), "%.2fx" % x,
                         ">= %.2fx" % TARGET_RATIO, sb.verdict(x >= TARGET_RATIO)])
            rows.append(["", "", "", "", "", "", "", "", "%s ÷ %s per CPU-s" % (fid, oid), "%.2fx" % (y or 0),
                         ">= %.2fx" % TARGET_RATIO, sb.verdict(y is not None and y >= TARGET_RATIO)])
        table(cols, rows, {2, 3, 4, 5, 6, 7, 9})
        print()
        print("Per run: req/s, req/CPU-s (cores: srv = the two busiest tokend threads, wrk; other / steal; tokend's "
              "voluntary + involuntary context switches per request); '*' disturbed, '1T' one tokend thread "
              "served (nearly) every connection; [after N 1T runs]: the run was repeated N times because of that "
              "(--one-thread-retries):")
        for cid in ("F1", "O1", "F2", "O2"):
            print("  %s %s" % (cid, "; ".join(
                "%d: %.0f, %.0f (%.2f = %.2f+%.2f, %.2f; %.2f/%.2f; %.2f+%.2f)%s%s%s"
                % (r["round"], r["rps"], r["per_cpu"] or 0, r["srv_cpu"], r["threads"][0], r["threads"][1],
                   r["wrk_cpu"], r["other_cpu"], r["steal"], r["vcs"], r["ics"], "*" if disturbed(r) else "",
                   " 1T" if r["one_thread"] else "",
                   " [after %d 1T run(s)]" % r["one_thread_runs"] if r["one_thread_runs"] else "")
                for r in runs[cid])))
        for fid, oid in (("F1", "O1"), ("F2", "O2")):
            print("  %s ÷ %s by round: req/s %s; per CPU-s %s" % (
                fid, oid, " ".join("%.2fx" % (f["rps"] / o["rps"]) for f, o in zip(runs[fid], runs[oid])),
                " ".join("%.2fx" % (f["per_cpu"] / o["per_cpu"]) for f, o in zip(runs[fid], runs[oid])
                         if f["per_cpu"] and o["per_cpu"])))
            clean = [(f, o) for f, o in zip(runs[fid], runs[oid])
                     if not (disturbed(f) or disturbed(o) or f["one_thread"] or o["one_thread"])
                     and f["per_cpu"] and o["per_cpu"]]
            print("  %s ÷ %s over the %d round(s) where neither run was disturbed nor on one thread: req/s %s, "
                  "per CPU-s %s" % (fid, oid, len(clean),
                                    fnum(sb.median(f["rps"] / o["rps"] for f, o in clean), "%.2fx"),
                                    fnum(sb.median(f["per_cpu"] / o["per_cpu"] for f, o in clean), "%.2fx")))
        bad = {cid: reasons_str({k: v for r in runs[cid] for k, v in r["reasons"].items() if k != "valid"})
               for cid in runs}
        if any(v != "-" for v in bad.values()):
            print("NOTE: /auth refused tokens: %s" % bad)
    if res.get("cg"):
        print_callgrind(a, res["cg"])
    t2 = res["t2"]
    if t2:
        print()
        print("Target 2: key set refresh under load: /auth with a foreign RS256 token, %d s runs; both tokend "
              "--issuer-cache-min 0; the issuer's JWKS says max-age=%d (R1: refetched in the background at 3/4 of "
              "its life) or max-age=%d (R2: never refetched during the run); %d pair(s), the order alternating."
              % (a.refresh_duration, a.refresh_max_age, LONG_MAX_AGE, a.refresh_rounds))
        print("other/steal: '*' disturbed, '1T' one tokend thread served (nearly) every connection, '+N' the run "
              "was repeated N times because of that. "
              "fetches: JWKS GETs the issuer answered during the run / tokend's tokend_issuer_fetches_total ok "
              "(+errors) / kid refetches (fetched+cooldown); interval: seconds between the issuer's JWKS GETs.")
        print()
        cols = ["#", "run", "req/s", "p50", "p90", "p99", "max", "non-2xx", "cores srv+wrk+iss", "other/steal",
                "fetches", "interval", "answers"]
        rows = []
        p99r = []
        fail = 0
        for k, pr in enumerate(t2["pairs"]):
            for rid in ("R1", "R2"):
                r = pr[rid]
                ft_ = r["tokend_fetches"]
                iv = [y - x for x, y in zip(r["fetch_times"], r["fetch_times"][1:])]
                fail += r["non2xx"] + r["sockerr"]
                rows.append([rid, "round %d, max-age=%d"
                             % (r["round"], a.refresh_max_age if rid == "R1" else LONG_MAX_AGE),
                             fnum(r["rps"]), sb.fmt_ms(r["p50"]), sb.fmt_ms(r["p90"]), sb.fmt_ms(r["p99"]),
                             sb.fmt_ms(r["max"]), str(r["non2xx"] + r["sockerr"]),
                             "%.2f+%.2f+%.2f" % (r["srv_cpu"], r["wrk_cpu"], r["me_cpu"]),
                             "%.2f/%.2f%s%s%s" % (r["other_cpu"], r["steal"], "*" if disturbed(r) else "",
                                                  " 1T" if r["one_thread"] else "",
                                                  " +%d" % r["one_thread_runs"] if r["one_thread_runs"] else ""),
                             "%d / %d%s / %d+%d" % (r["issuer_fetches"], ft_[0], "+%d" % ft_[1] if ft_[1] else "",
                                                    ft_[2], ft_[3]),
                             "%.1f-%.1f" % (min(iv), max(iv)) if iv else "-", reasons_str(r["reasons"])])
            if pr["R1"]["p99"] and pr["R2"]["p99"]:
                p99r.append(pr["R1"]["p99"] / pr["R2"]["p99"])
        for r in t2["rot"]:
            ft_ = r["tokend_fetches"]
            iv = [y - x for x, y in zip(r["fetch_times"], r["fetch_times"][1:])]
            rows.append([r["rid"], "rotation, max-age=%d" % r["max_age"], fnum(r["rps"]), sb.fmt_ms(r["p50"]),
                         sb.fmt_ms(r["p90"]), sb.fmt_ms(r["p99"]), sb.fmt_ms(r["max"]),
                         str(r["non2xx"] + r["sockerr"]),
                         "%.2f+%.2f+%.2f" % (r["srv_cpu"], r["wrk_cpu"], r["me_cpu"]),
                         "%.2f/%.2f%s%s" % (r["other_cpu"], r["steal"], "*" if disturbed(r) else "",
                                            " 1T" if r["one_thread"] else ""),
                         "%d / %d%s / %d+%d" % (r["issuer_fetches"], ft_[0], "+%d" % ft_[1] if ft_[1] else "",
                                                ft_[2], ft_[3]),
                         "%.1f-%.1f" % (min(iv), max(iv)) if iv else "-", reasons_str(r["reasons"])])
        table(cols, rows, {2, 3, 4, 5, 6, 7})
        print()
        med = sb.median(p99r)
        p1 = sb.median(pr["R1"]["p99"] for pr in t2["pairs"])
        p2 = sb.median(pr["R2"]["p99"] for pr in t2["pairs"])
        refetched = all(pr["R1"]["issuer_fetches"] >= a.refresh_duration // 3 for pr in t2["pairs"])
        print("p99 R1 ÷ R2 by round: %s; median %s (R1 p99 %s, R2 p99 %s, medians)"
              % (" ".join("%.2fx" % x for x in p99r), "%.2fx" % med if med else "-", sb.fmt_ms(p1), sb.fmt_ms(p2)))
        idle = [(pr["R2"]["idle_cpu"], pr["R2"]["idle_fetches"]) for pr in t2["pairs"]]
        print("What a background refetch costs: the idle R1 server used %s s of CPU for %s refetches during the R2 "
              "runs (%s ms each, TLS handshake and JWKS parse included; its CPU time is counted in ticks of %.0f ms)"
              % (" + ".join("%.2f" % c for c, _ in idle), " + ".join("%d" % n for _, n in idle),
                 fnum(1000 * sum(c for c, _ in idle) / max(1, sum(n for _, n in idle)), "%.1f"), 1000.0 / sb.TICKS))
        if not refetched:
            print("NOTE: an R1 run saw fewer JWKS fetches than one per 3 s: the refresh did not happen as intended")
        verdicts.append(("refresh: p99 R1 ÷ R2 <= %.1fx" % TARGET_P99, "%.2fx" % (med or 0),
                         med is not None and med <= TARGET_P99 and refetched))
        verdicts.append(("refresh: no failed request in R1 and R2", "%d" % fail, fail == 0))
        for r in t2["rot"]:
            bad = r["non2xx"] + r["sockerr"]
            pub = r["published"] - r["t0"] if r.get("published") else None
            print("%s: key published %s s into the run, tokens with its kid from %.1f s; JWKS GETs at %s s"
                  % (r["rid"], fnum(pub, "%.1f"), r["switch"] - r["t0"],
                     ", ".join("%.1f" % (x - r["t0"]) for x in r["fetch_times"]) or "none"))
            print("%s: %s of %d requests carried a token with the new kid"
                  % (r["rid"], fnum(r["sent_new"], "%d"), r["requests"]))
            verdicts.append(("rotation, max-age=%d: no non-2xx" % r["max_age"],
                             "%d of %d" % (bad, r["requests"]), bad == 0 and (r["sent_new"] or 0) > 0))
    print()
    print("Targets (issue 10 section 6):")
    for what, measured, ok in verdicts:
        print("  %-58s %-14s %s" % (what, measured, sb.verdict(ok)))
    print()
    print("Command: %s" % " ".join(sb.q(x) for x in [sb.rel(sys.argv[0])] + sys.argv[1:]))
    for what, argv in cmds:
        print("  %-13s %s" % (what, " ".join(sb.q(x) for x in argv).replace(work, "$WORK")))
    print("  (tokens: $TOKEN a foreign PyJWT token or the server's own from POST /oauth/token client_credentials; "
          "each tokend on a fresh SQLite store)")


if __name__ == "__main__":
    sys.exit(main())
