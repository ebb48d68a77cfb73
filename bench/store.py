#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/store.py: the SQLite and the PostgreSQL store side by side (issue 9
section 5), on loopback, in one run.

Two release `tokend serve --insecure-http` (as bench/serve.py starts them):
one on a SQLite file, one on a throwaway PostgreSQL 15 cluster
(tests/e2e/pgserver.py: fsync=off), each with a client_credentials client,
a public sign-in client and a few users. Then, --rounds times, each
measurement on SQLite and on PostgreSQL back to back (the order alternating
from round to round), --duration seconds each:

  S  sign-ins: GET /oauth/authorize -> POST /login (correct password, CSRF
     cookie and field from the page, through the password workers) -> code
     -> POST /oauth/token (authorization_code, PKCE), by --signin-threads
     Python threads on persistent connections. Each sign-in starts one
     refresh token family, kept for R. The CPU of tokend's password workers
     (the SCHED_IDLE threads) is counted apart: the rate per server
     CPU-second without it is the sign-in's cost outside Argon2id.
  R  refresh grants: wrk -s bench/store-refresh.lua, each request presenting
     the current, unused refresh token of one family; the answer's successor
     goes back to the queue (the family rotates strictly in sequence).
  I  token issuance: POST /oauth/token client_credentials (client_secret_basic),
     wrk -s bench/serve-token.lua.
  A  GET /auth with a valid ES256 token (wrk; validated from memory).

Then once more S R I A with SQLite next to a PostgreSQL cluster running
fsync=on, full_page_writes=on (PostgreSQL's defaults), unless --no-fsync-run.

Then revocation propagation (V): two instances A and B on one PostgreSQL
database (same --issuer, same --master-key-file, --jwks-max-age 0); for each
of --revocations tokens: a token from A, /auth at B says 200, POST
/oauth/revoke at A, then /auth at B polled on one persistent connection
until it says 401 revoked. The same --cli-revocations times with
`tokend revoke --jti` instead of the HTTP call (B polled while it runs).

For every run: the rate, p50/p99, the cores used by tokend, by the
PostgreSQL cluster (postmaster, backends and reaped children, from
/proc/PID/stat) and by the load generator, and the CPU the rest of the
machine used meanwhile (other sessions) and the hypervisor took (steal), as
bench/signin_flood.py reports them. One table at the end, with the ratios
PostgreSQL / SQLite (median of the per-round ratios), PASS/MISS against the
three targets, and the commands.

It builds nothing: cmake --preset release && cmake --build --preset release
-j2 --target tokend. It reuses bench/serve.py (tokend runner, wrk, CPU
accounting, clean-up), bench/signin_flood.py (machine CPU, the password
workers), tests/e2e/pgserver.py (PostgreSQL) and tests/e2e/servetest.py /
faulttest.py (the sign-in page, raw keep-alive HTTP). Everything it starts is
stopped on exit, Ctrl-C, SIGTERM or SIGHUP. Exit status 0 whatever the
numbers (a benchmark, not a test), 1 when a sanity check fails (a wrong
answer: the numbers would mean nothing), 2 on a set-up error.
"""

import argparse
import base64
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import serve as sb  # noqa: E402  bench/serve.py
import signin_flood as sf  # noqa: E402  bench/signin_flood.py
import faulttest as ft  # noqa: E402  tests/e2e/faulttest.py (and servetest as ft.st)
import pgserver  # noqa: E402  tests/e2e/pgserver.py

st = ft.st
REFRESH_LUA = os.path.join(HERE, "store-refresh.lua")
REDIRECT = "https://app.example/cb"
PASSWORD = "correct horse battery staple"
USERS = ("ann", "bob", "cyd", "dee")
ISSUER = "http://tokend.bench.invalid"
KINDS = ("S", "R", "I", "A")
KIND_LABEL = {"S": "sign-ins (authorize + login + code exchange)", "R": "refresh grants",
              "I": "issuance (client_credentials)", "A": "/auth ES256 valid"}
DISTURBED = 0.2  # cores of other CPU or steal above which a run counts as disturbed

TARGET_ISSUE = 0.80
TARGET_REFRESH = 1000.0
TARGET_REVOKE_P99_MS = 100.0


class SetupError(sb.SetupError):
    pass


def log(msg):
    sb.log(msg)


def now():
    return time.monotonic()


# ---------------------------------------------------------------------------
# CPU accounting

def pg_cluster_cpu_s(pg):
    """CPU-seconds of a PostgreSQL cluster: the postmaster's own and its reaped
    children's (cutime + cstime), plus its live children's (backends,
    checkpointer, WAL writer, autovacuum...)."""
    if pg is None or pg.proc is None:
        return 0.0
    pm = pg.proc.pid
    try:
        with open("/proc/%d/stat" % pm) as f:
            v = f.read().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in v[11:15]) / sb.TICKS
    except (OSError, IndexError, ValueError):
        return 0.0
    return total + sum(sb.proc_cpu_s(c) for c in sb.children(pm))


def idle_threads_cpu_s(pid):
    """CPU-seconds of the SCHED_IDLE threads of pid: tokend's password workers
    (src/http/workers.c), i.e. the Argon2id hashing."""
    total = 0.0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0.0
    for tid in tids:
        try:
            if os.sched_getscheduler(int(tid)) != os.SCHED_IDLE:
                continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                v = f.read().rsplit(")", 1)[1].split()
            total += (int(v[11]) + int(v[12])) / sb.TICKS
        except (OSError, IndexError, ValueError):
            pass
    return total


LIVE = {"tokends": [], "pgs": []}  # everything of ours that may use CPU: not "other"


def ours_cpu_s():
    return sum(sb.proc_cpu_s(t.proc.pid) for t in LIVE["tokends"] if t.proc) + \
        sum(pg_cluster_cpu_s(pg) for pg in LIVE["pgs"])


class CpuWindow:
    """Cores used between start() and stop() by tokend, its password workers,
    the PostgreSQL cluster, our children (wrk, reaped), this process, the
    rest of the machine (other sessions: what is busy minus all of ours),
    and steal."""

    def __init__(self, backend):
        self.b = backend

    def snap(self):
        b = self.b
        return {"t": now(), "tok": sb.proc_cpu_s(b.tokend.proc.pid), "hash": idle_threads_cpu_s(b.tokend.proc.pid),
                "pg": pg_cluster_cpu_s(b.pg), "ours": ours_cpu_s(), "ch": resource.getrusage(resource.RUSAGE_CHILDREN),
                "me": resource.getrusage(resource.RUSAGE_SELF), "machine": sf.machine_cpu_s()}

    def start(self):
        self.s0 = self.snap()
        return self

    def stop(self):
        s0, s1 = self.s0, self.snap()
        wall = s1["t"] - s0["t"]

        def ru(k):
            return (s1[k].ru_utime + s1[k].ru_stime - s0[k].ru_utime - s0[k].ru_stime) / wall
        r = {"wall": wall, "tok_cpu": (s1["tok"] - s0["tok"]) / wall, "hash_cpu": (s1["hash"] - s0["hash"]) / wall,
             "pg_cpu": (s1["pg"] - s0["pg"]) / wall, "client_cpu": ru("ch") + ru("me")}
        busy = (s1["machine"][0] - s0["machine"][0]) / wall
        r["other_cpu"] = busy - (s1["ours"] - s0["ours"]) / wall - r["client_cpu"]
        r["steal"] = (s1["machine"][1] - s0["machine"][1]) / wall
        return r


# ---------------------------------------------------------------------------
# one backend: a tokend on SQLite or on PostgreSQL

class Backend:
    def __init__(self, key, label, a, work, pg=None, dbname=None):
        self.key, self.label, self.a, self.pg = key, label, a, pg
        self.tokend = sb.Tokend(a.tokend, work, key, "ES256", "/dev/null", a.tokend_threads)
        if pg is not None:
            url = pg.new_database(dbname)
            self.store_url = url.replace("tokend:%s@" % pg.password, "tokend@")
            pwfile = os.path.join(self.tokend.dir, "pg.password")
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pg.password + "\n")
            self.tokend.store = ["--store", self.store_url, "--store-password-file", pwfile,
                                 "--master-key-file", os.path.join(self.tokend.dir, "master.key")]
        self.pool = []  # current refresh tokens of unused-up families
        self.lock = threading.Lock()
        self.spa = None
        self.token = None

    @property
    def addr(self):
        return self.tokend.addr

    @property
    def port(self):
        return int(self.tokend.addr.rsplit(":", 1)[1])

    def admin(self, args, stdin=None, what="tokend"):
        t = self.tokend
        p = subprocess.run([t.binary] + args + t.store, input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        if p.returncode != 0:
            raise SetupError("%s failed (%d): %s" % (what, p.returncode, p.stderr.strip()))
        return p.stdout

    def setup(self):
        t = self.tokend
        t.add_client(sb.CLIENT)
        self.spa = sf.add_signin_client(t)
        for u in USERS:
            self.admin(["user", "add", u, "--password-file", "-"], stdin=PASSWORD + "\n", what="tokend user add")
        t.start()
        LIVE["tokends"].append(t)
        self.token = sb.get_token(t.addr, sb.CLIENT, t.secrets[sb.CLIENT])
        st_, h, _ = sb.http_req(t.addr, "GET", sb.AUTH_PATH, {"Authorization": "Bearer " + self.token})
        sb.check(st_ == 200, "%s: /auth refuses its own token: %d %s" % (self.label, st_, h.get("X-Auth-Reason")))
        workers = sf.workers_idle(t.proc.pid)
        sb.check(workers >= 1, "%s: no password worker (SCHED_IDLE thread) found" % self.label)
        self.workers = workers

    def add_family(self, rt):
        with self.lock:
            self.pool.append(rt)


# ---------------------------------------------------------------------------
# sign-ins (the real flow, raw keep-alive HTTP)

class Client:
    """One persistent plain-HTTP connection (faulttest.http_raw), made again
    when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.sock = None

    def request(self, method, path, headers=(), body=None, timeout=30.0):
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = ft.connect_from("127.0.0.1", self.port, timeout=timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                r = ft.http_raw(self.sock, method, path, headers, body, host="127.0.0.1:%d" % self.port,
                                timeout=timeout)
            except (OSError, ValueError):
                self.close()
                if attempt:
                    raise
                continue
            if r[1].get("connection", "").lower() == "close":
                self.close()
            return r

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def sign_in(c, b, user):
    """One sign-in through the real flow; returns (POST /login seconds,
    refresh token). Raises SanityError on a wrong answer."""
    verifier, challenge = st.pkce_pair()
    q = urlencode({"response_type": "code", "client_id": b.spa, "redirect_uri": REDIRECT,
                   "state": st.random_state(), "code_challenge": challenge, "code_challenge_method": "S256",
                   "scope": sb.SCOPE})
    status, h, body = c.request("GET", "/oauth/authorize?" + q)
    sb.check(status == 200, "%s: the sign-in page: %d %r" % (b.label, status, body[:200]))
    form = st.login_form(st.parse_page(body.decode("utf-8")))
    m = re.match(r"\s*(tokend_csrf)=([^;]+)", h.get("set-cookie", ""))
    sb.check(m is not None, "%s: the sign-in page set no tokend_csrf cookie: %r" % (b.label, h.get("set-cookie")))
    data = st.hidden_fields(form)
    data.update({"username": user, "password": PASSWORD})
    action = urlsplit(urljoin("http://x/oauth/authorize", form["action"])).path
    t0 = now()
    status, h, body = c.request("POST", action, [("Content-Type", "application/x-www-form-urlencoded"),
                                                 ("Cookie", "%s=%s" % (m.group(1), m.group(2)))],
                                urlencode(data).encode())
    t_login = now() - t0
    if status == 503:
        return t_login, None
    sb.check(status in (302, 303), "%s: POST %s with the right password: %d %r" % (b.label, action, status, body[:300]))
    got = parse_qs(urlsplit(h.get("location", "")).query)
    sb.check("code" in got, "%s: the sign-in redirect has no code: %r" % (b.label, h.get("location")))
    ex = urlencode({"grant_type": "authorization_code", "code": got["code"][0], "code_verifier": verifier,
                    "redirect_uri": REDIRECT, "client_id": b.spa}).encode()
    status, h, body = c.request("POST", "/oauth/token", [("Content-Type", "application/x-www-form-urlencoded")], ex)
    sb.check(status == 200, "%s: code exchange: %d %r" % (b.label, status, body[:300]))
    return t_login, json.loads(body)["refresh_token"]


def signin_run(a, b, seconds=None, count=None):
    """--signin-threads threads signing in for `seconds` (a timed run) or until
    `count` sign-ins are done (topping up the refresh pool). Returns the
    measurement (timed) or None."""
    stop = threading.Event()
    lock = threading.Lock()
    done_in_window = []  # POST /login times of sign-ins finished inside the window
    state = {"n": 0, "busy503": 0, "error": None}
    t_end = [None]

    def worker(i):
        c = Client(b.port)
        k = i
        try:
            while not stop.is_set():
                user = USERS[k % len(USERS)]
                k += 1
                t_login, rt = sign_in(c, b, user)
                t_done = now()
                if rt is None:
                    with lock:
                        state["busy503"] += 1
                    time.sleep(0.05)
                    continue
                b.add_family(rt)
                with lock:
                    state["n"] += 1
                    if t_end[0] is not None and t_done <= t_end[0]:
                        done_in_window.append(t_login)
                    if count is not None and state["n"] >= count:
                        stop.set()
        except Exception as e:  # noqa: BLE001  reported by the main thread
            with lock:
                if state["error"] is None:
                    state["error"] = e
            stop.set()
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.signin_threads)]
    r = None
    if seconds is not None:
        m0 = metric_checks(b)
        win = CpuWindow(b).start()
        t_end[0] = now() + seconds
    for t in threads:
        t.start()
    try:
        if seconds is not None:
            while now() < t_end[0] and not stop.is_set():
                time.sleep(min(0.1, max(0.0, t_end[0] - now())))
            r = win.stop()
            m1 = metric_checks(b)
            stop.set()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    finally:
        stop.set()
    if state["error"] is not None:
        if isinstance(state["error"], sb.SanityError):
            raise state["error"]
        raise SetupError("%s: sign-in failed: %r" % (b.label, state["error"]))
    if r is None:
        return None
    lat = sorted(done_in_window)
    r.update({"count": len(lat), "rate": len(lat) / r["wall"], "p50": pct(lat, 50) * 1e3 if lat else None,
              "p99": pct(lat, 99) * 1e3 if lat else None, "errors": state["busy503"],
              "checks": (m1 - m0) / r["wall"]})
    return r


def metrics(b):
    """/metrics. Right after a wrk run the server may still hold wrk's 64
    connections from 127.0.0.1 (its answers in flight), and refuse one more
    from that address (--max-connections-per-ip 64): retry for a while."""
    deadline = now() + 10
    while True:
        try:
            st_, _, body = sb.http_req(b.addr, "GET", "/metrics")
            break
        except OSError:
            if now() > deadline:
                raise
            time.sleep(0.1)
    sb.check(st_ == 200, "/metrics: %d" % st_)
    return st.parse_metrics(body.decode())


def metric_checks(b):
    return st.metric(metrics(b), "tokend_password_checks_total", result="done")


def refresh_counts(b):
    m = metrics(b)
    return (st.metric(m, "tokend_tokens_issued_total", grant="refresh_token"),
            st.metric(m, "tokend_refresh_reuse_total"))


# ---------------------------------------------------------------------------
# wrk runs

def wrk_run(a, b, run):
    """One wrk run (bench/serve.py's Run for the command line)."""
    win = CpuWindow(b).start()
    rc, out, err = sb.run(run.argv(a), a.duration + 30, "wrk")
    r = win.stop()
    if rc != 0 or "Requests/sec" not in out:
        raise SetupError("wrk failed (%d): %s\n%s" % (rc, err, out))
    w = sb.parse_wrk(out)
    if a.verbose:
        log(out)
    r.update({"count": w["requests"], "rate": w["rps"], "p50": w["p50"], "p99": w["p99"],
              "errors": w["non2xx"] + w["sockerr"], "wrk_seconds": w["seconds"] or a.duration})
    return r


def refresh_run(a, b, work, rnd):
    need = int(math.ceil(1.5 * a.connections))
    if len(b.pool) < need:
        log("    (topping up %s's refresh families: %d more sign-ins, untimed)" % (b.label, need - len(b.pool)))
        signin_run(a, b, count=need - len(b.pool))
    with b.lock:
        take, b.pool = b.pool[:need], b.pool[need:]
    tokens = os.path.join(work, "refresh-%s-%d.in" % (b.key, rnd))
    out = os.path.join(work, "refresh-%s-%d.out" % (b.key, rnd))
    with open(tokens, "w") as f:
        f.write("threads %d\n" % a.wrk_threads)
        f.write("\n".join(take) + "\n")
    run = refresh_cmd(a, b, tokens, out)
    issued0, reuse0 = refresh_counts(b)
    r = wrk_run(a, b, run)
    issued1, reuse1 = refresh_counts(b)
    # no token presented twice: the server saw no reuse
    sb.check(reuse1 == reuse0, "%s: the server counted %d refresh token reuses during the run"
             % (b.label, reuse1 - reuse0))
    try:
        with open(out) as f:
            lines = f.read().splitlines()
    except OSError:
        raise SetupError("bench/store-refresh.lua wrote no %s" % out)
    m = re.fullmatch(r"ok (\d+) (\d+) (\d+) (\d+)", lines[0])
    sb.check(m is not None, "store-refresh.lua's summary: %r" % lines[:1])
    ok, bad, starved, other = (int(x) for x in m.groups())
    first_bad = lines[1][len("first_bad "):]
    left = [x for x in lines[2:] if x]
    with b.lock:
        b.pool = left + b.pool
    r.update({"rate": ok / r["wrk_seconds"], "count": ok, "errors": bad, "starved": starved, "first_bad": first_bad,
              "lost": len(take) - len(left), "server_count": issued1 - issued0})
    # every rotation wrk saw was counted by the server; the server may have made a few more (answers in flight)
    sb.check(ok <= issued1 - issued0 <= ok + a.connections,
             "%s: wrk saw %d rotations, the server counted %d" % (b.label, ok, issued1 - issued0))
    if bad:
        log("    %s: %d refresh answers were not 200 with a refresh_token; the first: %s" % (b.label, bad, first_bad))
    return r


def refresh_cmd(a, b, tokens, out):
    return sb.Run("R", "refresh", "http://%s/oauth/token" % b.addr, script=REFRESH_LUA,
                  script_args=[b.spa, tokens, out], shown_args=[b.spa, "$WORK/refresh.in", "$WORK/refresh.out"])


def issue_cmd(b):
    return sb.Run("I", "issuance", "http://%s/oauth/token" % b.addr, script=sb.TOKEN_LUA,
                  script_args=[sb.CLIENT, b.tokend.secrets[sb.CLIENT]], shown_args=[sb.CLIENT, "$CLIENT_SECRET"])


def auth_cmd(b):
    return sb.Run("A", "/auth", "http://%s%s" % (b.addr, sb.AUTH_PATH), ["Authorization: Bearer " + b.token],
                  token_name="$ES256_TOKEN")


def measure(a, b, kind, work, rnd):
    if kind == "S":
        return signin_run(a, b, seconds=a.duration)
    if kind == "R":
        return refresh_run(a, b, work, rnd)
    if kind == "I":
        return wrk_run(a, b, issue_cmd(b))
    return wrk_run(a, b, auth_cmd(b))


# ---------------------------------------------------------------------------
# revocation propagation between two instances

def b64url_json(seg):
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def revocation_bench(a, work, pg):
    log("revocation propagation: two instances on one PostgreSQL database")
    mk = os.path.join(work, "shared-master.key")
    A = Backend("rev-a", "instance A", a, work, pg=pg, dbname="tokend_rev")
    i = A.tokend.store.index("--master-key-file")
    A.tokend.store[i + 1] = mk
    A.tokend.store += ["--issuer", ISSUER, "--jwks-max-age", "0"]
    B = Backend("rev-b", "instance B", a, work)
    B.pg = pg
    B.tokend.store = list(A.tokend.store)  # the same database, password file, master key, issuer
    A.tokend.add_client(sb.CLIENT)
    secret = A.tokend.secrets[sb.CLIENT]
    for b in (A, B):
        b.tokend.start()
        LIVE["tokends"].append(b.tokend)
    basic = "Basic " + base64.b64encode(("%s:%s" % (sb.CLIENT, secret)).encode()).decode()
    form = ("Content-Type", "application/x-www-form-urlencoded")
    ca, cb = Client(A.port), Client(B.port)
    auth_path = sb.AUTH_PATH

    def token():
        status, _, body = ca.request("POST", "/oauth/token", [("Authorization", basic), form],
                                     b"grant_type=client_credentials")
        sb.check(status == 200, "instance A: POST /oauth/token: %d %r" % (status, body[:200]))
        tok = json.loads(body)["access_token"]
        return tok, b64url_json(tok.split(".")[1])["jti"]

    def at_b(tok):
        status, h, _ = cb.request("GET", auth_path, [("Authorization", "Bearer " + tok)])
        return status, h.get("x-auth-reason")

    def wait_revoked(tok, t_limit):
        polls = 0
        while True:
            status, reason = at_b(tok)
            t = now()
            polls += 1
            if status == 401 and reason == "revoked":
                return t, polls
            sb.check(status == 200, "instance B answered %d %s while waiting for 'revoked'" % (status, reason))
            if t > t_limit:
                return None, polls

    res = {"http": [], "cli": []}
    poll_rtt = []  # one GET /auth at B, the token still valid
    t_begin = now()
    for i in range(a.revocations):
        tok, jti = token()
        t0 = now()
        st_, reason = at_b(tok)
        poll_rtt.append(now() - t0)
        sb.check(st_ == 200, "instance B refuses a fresh token of A: %d %s" % (st_, reason))
        body = urlencode({"token": tok}).encode()
        t_sent = now()
        status, _, rb = ca.request("POST", "/oauth/revoke", [("Authorization", basic), form], body)
        t_resp = now()
        sb.check(status == 200, "instance A: POST /oauth/revoke: %d %r" % (status, rb[:200]))
        t401, polls = wait_revoked(tok, t_resp + 5.0)
        if t401 is None:
            res["http"].append((None, None, polls))
        else:
            res["http"].append((t401 - t_resp, t401 - t_sent, polls))
    t_http = now() - t_begin
    cli_argv = None
    t_begin = now()
    for i in range(a.cli_revocations):
        tok, jti = token()
        st_, reason = at_b(tok)
        sb.check(st_ == 200, "instance B refuses a fresh token of A: %d %s" % (st_, reason))
        argv = [a.tokend, "revoke", "--jti", jti] + A.tokend.store
        cli_argv = argv
        t_sent = now()
        p = sb.PROCS.start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        t_exit = t401 = None
        polls = 0
        limit = t_sent + 10.0
        while (t_exit is None or t401 is None) and now() < limit:
            if t_exit is None and p.poll() is not None:
                t_exit = now()
            if t401 is None:
                status, reason = at_b(tok)
                polls += 1
                if status == 401 and reason == "revoked":
                    t401 = now()
                else:
                    sb.check(status == 200, "instance B answered %d %s while waiting for 'revoked'"
                             % (status, reason))
            else:
                time.sleep(0.0005)
        if p.poll() is None:
            sb.PROCS.stop(p, signal.SIGKILL)
            raise SetupError("tokend revoke --jti did not finish within 10 s")
        err = p.stderr.read().decode(errors="replace")
        sb.PROCS.stop(p)
        sb.check(p.returncode == 0, "tokend revoke --jti failed (%d): %s" % (p.returncode, err.strip()))
        res["cli"].append((t401 - t_exit if t401 is not None else None, t401 - t_sent if t401 is not None else None,
                           polls, t_exit - t_sent))
    t_cli = now() - t_begin
    ca.close()
    cb.close()
    for b in (A, B):
        b.tokend.stop()
    shown_cli = [sb.rel(x) if x.startswith("/") else x for x in (cli_argv or [])]
    if shown_cli:
        shown_cli[3] = "$JTI"
    return {"res": res, "t_http": t_http, "t_cli": t_cli, "poll_rtt": sb.median(poll_rtt),
            "argv": [A.tokend.printable_argv(), B.tokend.printable_argv()], "cli_argv": shown_cli}


# ---------------------------------------------------------------------------
# statistics and the table

def pct(xs, p):
    """Nearest-rank percentile of sorted xs."""
    if not xs:
        return None
    k = max(1, int(math.ceil(p / 100.0 * len(xs))))
    return xs[min(k, len(xs)) - 1]


def per_cpu(r, hashing=True):
    c = r["tok_cpu"] + r["pg_cpu"] - (0 if hashing else r["hash_cpu"])
    return r["rate"] / c if c > 0 else None


def fnum(v, fmt="%.0f"):
    return "-" if v is None else fmt % v


def main():
    ap = argparse.ArgumentParser(description="SQLite and PostgreSQL stores side by side (see bench/README.md).")
    ap.add_argument("--tokend", default=os.path.join(ROOT, "build", "release", "tokend"),
                    help="tokend binary (default build/release/tokend)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per timed run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved SQLite/PostgreSQL rounds (default 3)")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    ap.add_argument("--tokend-threads", type=int, default=0, help="tokend --threads (default 0: one per core)")
    ap.add_argument("--signin-threads", type=int, default=0,
                    help="sign-ins in flight (default 0: 2 x password workers + 2)")
    ap.add_argument("--revocations", type=int, default=1000, help="revocations through POST /oauth/revoke (default 1000)")
    ap.add_argument("--cli-revocations", type=int, default=100,
                    help="revocations through tokend revoke --jti (default 100)")
    ap.add_argument("--kinds", default="SRIA",
                    help="measurements to run, a subset of SRIA in that order (default SRIA; R needs S's families "
                    "or signs in more, untimed)")
    ap.add_argument("--no-fsync-run", action="store_true", help="skip the round against PostgreSQL with fsync=on")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of rest after each run (default 1)")
    ap.add_argument("--verbose", action="store_true", help="print every wrk output")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if min(a.duration, a.connections, a.wrk_threads, a.rounds) < 1 or a.revocations < 0 or a.cli_revocations < 0:
        ap.error("--duration, --rounds, --connections and --wrk-threads must be positive")
    if not shutil.which("wrk"):
        log("bench/store.py: wrk is not installed (scripts/deps.sh installs it)")
        return 2
    if not os.access(a.tokend, os.X_OK):
        log("bench/store.py: %s is missing: cmake --preset release && cmake --build --preset release -j2 "
            "--target tokend" % a.tokend)
        return 2
    if not os.access(os.path.join(pgserver.PG_BIN, "postgres"), os.X_OK):
        log("bench/store.py: PostgreSQL 15 is not installed (%s; Debian's postgresql-15)" % pgserver.PG_BIN)
        return 2
    if not a.kinds or any(k not in KINDS for k in a.kinds):
        ap.error("--kinds takes letters of SRIA")
    a.kinds = [k for k in KINDS if k in a.kinds]
    a.tokend = os.path.abspath(a.tokend)
    a.perf = []
    os.environ.pop("TOKEND_LOGIN_WORKERS", None)
    signal.signal(signal.SIGTERM, sb.on_signal)
    signal.signal(signal.SIGHUP, sb.on_signal)
    work = tempfile.mkdtemp(prefix="tokend-bench-store-")
    pgs = LIVE["pgs"]
    status = 0
    try:
        status = bench(a, work, pgs)
    except sb.SanityError as e:
        log("bench/store.py: sanity check failed: %s" % e)
        status = 1
    except (sb.SetupError, RuntimeError, AssertionError) as e:
        log("bench/store.py: %s" % e)
        status = 2
    except KeyboardInterrupt:
        log("bench/store.py: interrupted")
        status = 130
    except Exception:  # noqa: BLE001  an unexpected error: say where, clean up all the same
        import traceback
        traceback.print_exc()
        status = 2
    finally:
        sb.PROCS.stop_all()
        for pg in list(pgs):
            pg.stop(keep_log=status not in (0, 130))
        if a.keep or status not in (0, 130):
            log("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def bench(a, work, pgs):
    t_start = time.time()
    load0 = loadavg()
    log("load average at start: %s" % load0)
    disk = disk_sync_s(work)
    pg = pgserver.PostgresServer()
    pgs.append(pg)
    t0 = now()
    pg.start()
    log("PostgreSQL 15 (fsync=off) on 127.0.0.1:%d, started in %.1f s" % (pg.port, now() - t0))
    lite = Backend("sqlite", "SQLite", a, work)
    pgb = Backend("pg", "PostgreSQL", a, work, pg=pg, dbname="tokend_bench")
    for b in (lite, pgb):
        b.setup()
    if a.signin_threads <= 0:
        a.signin_threads = 2 * lite.workers + 2
    log("tokend on SQLite at %s, on PostgreSQL at %s; %d password workers each"
        % (lite.addr, pgb.addr, lite.workers))

    # results[kind][backend key] = [run dicts]; rounds[k] = [(kind, key, r)]
    results = {k: {} for k in KINDS}
    order = []

    def one(kind, b, rnd, tag):
        log("  %s %-11s %s (%s)" % (kind, b.label, KIND_LABEL[kind], tag))
        r = measure(a, b, kind, work, rnd)
        r["round"] = tag
        results[kind].setdefault(b.key, []).append(r)
        order.append((tag, kind, b, r))
        time.sleep(a.pause)
        return r

    for rnd in range(a.rounds):
        log("round %d/%d" % (rnd + 1, a.rounds))
        pair = (lite, pgb) if rnd % 2 == 0 else (pgb, lite)
        for kind in a.kinds:
            for b in pair:
                one(kind, b, rnd, str(rnd + 1))
    lite_f = pgf_b = pgf = None
    if not a.no_fsync_run:
        for b in (pgb,):
            b.tokend.stop()
        pgf = pgserver.PostgresServer(fsync=True)
        pgs.append(pgf)
        pgf.start()
        log("PostgreSQL 15 with fsync=on, full_page_writes=on on 127.0.0.1:%d" % pgf.port)
        pgf_b = Backend("pgf", "PG fsync=on", a, work, pg=pgf, dbname="tokend_bench")
        pgf_b.setup()
        log("round F (SQLite next to PostgreSQL with fsync=on)")
        for kind in a.kinds:
            for b in (lite, pgf_b):
                r = one(kind, b, a.rounds, "F")
                if b is lite:  # keep the fsync round's SQLite apart from the main rounds
                    results[kind]["sqlite"].pop()
                    results[kind].setdefault("sqlite_f", []).append(r)
        pgf_b.tokend.stop()
        pgf.stop()
        pgs.remove(pgf)
    lite.tokend.stop()
    pgb.tokend.stop()

    rev = None
    if a.revocations or a.cli_revocations:
        rev = revocation_bench(a, work, pg)
    load1 = loadavg()

    report(a, work, results, order, rev, lite, pgb, pgf_b, pg, disk, load0, load1, time.time() - t_start)
    return 0


def q4(xs):
    """p50 / p90 / p99 / max of sorted seconds, in ms."""
    if not xs:
        return "-"
    return " / ".join("%.1f" % (pct(xs, p) * 1e3) for p in (50, 90, 99)) + " / %.1f" % (xs[-1] * 1e3)


def report(a, work, results, order, rev, lite, pgb, pgf_b, pg, disk, load0, load1, elapsed):
    fs = pgf_b is not None

    def runs(kind, key):
        return results.get(kind, {}).get(key, [])

    def med(kind, key, f):
        return sb.median(f(r) for r in runs(kind, key))

    def ratio(kind, f, num, den):
        return sb.median(f(p) / f(q) for p, q in zip(runs(kind, num), runs(kind, den))
                         if f(p) is not None and f(q))

    def rate(r):
        return r["rate"]

    def field(k):
        return lambda r: r.get(k)

    def cores(kind, key):
        if not runs(kind, key):
            return "-"
        return "%.2f+%.2f+%.2f" % tuple(med(kind, key, field(x)) for x in ("tok_cpu", "pg_cpu", "client_cpu"))

    cols = ["#", "measurement", "SQLite", "PostgreSQL", "PG ÷ SQLite"]
    if fs:
        cols += ["PG fsync=on", "÷ SQLite, round F"]
    cols += ["target", "result"]
    rows = []

    cur = {}

    def row(rid, label, f=None, fmt="%.0f", ratios=True, cells=None, target="", result=""):
        kind = cur["kind"]
        if cells is None:
            cells = [fnum(med(kind, "sqlite", f), fmt), fnum(med(kind, "pg", f), fmt),
                     fnum(ratio(kind, f, "pg", "sqlite"), "%.2fx") if ratios else ""]
            if fs:
                cells += [fnum(med(kind, "pgf", f), fmt),
                          fnum(ratio(kind, f, "pgf", "sqlite_f"), "%.2fx") if ratios else ""]
        rows.append([rid, label] + cells + [target, result])

    verdicts = {}
    for kind in a.kinds:
        cur["kind"] = kind
        if kind == "S":
            row("S", "sign-ins/s (authorize + login + exchange)", rate)
        elif kind == "R":
            m = med("R", "pg", rate)
            verdicts["R"] = sb.verdict(m is not None and m >= TARGET_REFRESH)
            row("R", "refresh grants/s", rate, target="PG >= 1000/s", result=verdicts["R"])
        elif kind == "I":
            x = ratio("I", rate, "pg", "sqlite")
            verdicts["I"] = sb.verdict(x is not None and x >= TARGET_ISSUE)
            row("I", "issuance: tokens/s", rate, target="PG >= 0.80x SQLite", result=verdicts["I"])
        else:
            row("A", "/auth ES256 valid: requests/s", rate)
        row("", "  per server CPU-s (tokend + PostgreSQL)", per_cpu)
        if kind == "S":
            row("", "  per server CPU-s, hashing excluded", lambda r: per_cpu(r, hashing=False))
            row("", "  password checks/s", field("checks"), "%.1f")
            row("", "  hashing CPU per sign-in (ms)",
                lambda r: r["hash_cpu"] / r["rate"] * 1e3 if r["rate"] else None, ratios=False)
            row("", "  POST /login p50 / p99 (ms)", cells=[
                "%s / %s" % (fnum(med("S", k, field("p50"))), fnum(med("S", k, field("p99")))) if k else ""
                for k in ["sqlite", "pg", None] + (["pgf", None] if fs else [])])
        else:
            row("", "  p50 / p99 (ms)", cells=[
                "%s / %s" % (fnum(med(kind, k, field("p50")), "%.2f"), fnum(med(kind, k, field("p99")), "%.2f"))
                if k else "" for k in ["sqlite", "pg", None] + (["pgf", None] if fs else [])])
        row("", "  cores: tokend + PostgreSQL + client",
            cells=[cores(kind, "sqlite"), cores(kind, "pg"), ""] + ([cores(kind, "pgf"), ""] if fs else []))
        errs = [sum(r["errors"] for r in runs(kind, k)) for k in ("sqlite", "pg", "pgf", "sqlite_f")]
        if any(errs):
            row("", "  non-2xx or errors, all rounds", cells=[str(errs[0]), str(errs[1]), ""] +
                ([str(errs[2]), ""] if fs else []))

    print("tokend store benchmark (issue 9 section 5), %s: SQLite and PostgreSQL side by side on loopback. "
          "%d vCPUs shared by the load generator, tokend and PostgreSQL; load average %s at the start, %s at the "
          "end; %.0f s in all." % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), load0, load1, elapsed))
    print("%d interleaved rounds of %d s runs (SQLite and PostgreSQL back to back, the order alternating)%s. wrk "
          "-t%d -c%d --latency (keep-alive); sign-ins by %d Python threads on keep-alive connections. tokend "
          "--threads %d, %d password workers. Disk: fdatasync of 8 KiB takes %.2f ms (median of 200) here."
          % (a.rounds, a.duration, "; round F: SQLite next to PostgreSQL with fsync=on" if fs else "",
             a.wrk_threads, a.connections, a.signin_threads, a.tokend_threads, lite.workers, disk * 1e3))
    print("Values: medians over the rounds; ratios: medians of the per-round ratios. Cores: tokend + the "
          "PostgreSQL cluster (postmaster, backends, background workers) + the client (wrk or this script).")
    print()
    widths = [max(len(cols[i]), *(len(str(r[i])) for r in rows)) for i in range(len(cols))]
    left = {0, 1, len(cols) - 2, len(cols) - 1}

    def fmt(r):
        return " | ".join(str(c).ljust(widths[i]) if i in left else str(c).rjust(widths[i])
                          for i, c in enumerate(r)).rstrip()
    print(fmt(cols))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(fmt(r))

    if rev:
        print()
        res = rev["res"]
        http_resp = sorted(x[0] for x in res["http"] if x[0] is not None)
        http_sent = sorted(x[1] for x in res["http"] if x[1] is not None)
        cli_resp = sorted(x[0] for x in res["cli"] if x[0] is not None)
        cli_sent = sorted(x[1] for x in res["cli"] if x[1] is not None)
        cli_run = sorted(x[3] for x in res["cli"])
        never = sum(1 for x in res["http"] + res["cli"] if x[0] is None)
        all_resp = sorted(http_resp + cli_resp)
        all_sent = sorted(http_sent + cli_sent)
        vrows = [("V1", "POST /oauth/revoke at A; from its response to the first 401 at B", http_resp),
                 ("", "  from the revoke request sent", http_sent),
                 ("V2", "tokend revoke --jti; from the CLI's exit to the first 401 at B", cli_resp),
                 ("", "  from the CLI's start", cli_sent),
                 ("", "  the CLI's run time, start to exit", cli_run),
                 ("V", "all; from the response (the CLI's exit)", all_resp),
                 ("", "  from the request sent (the CLI's start)", all_sent)]
        p99 = pct(all_resp, 99)
        verdicts["V"] = sb.verdict(p99 is not None and p99 <= TARGET_REVOKE_P99_MS / 1e3 and never == 0)
        print("Revocation propagation between two instances on one PostgreSQL (fsync=off), /auth at B polled on one "
              "keep-alive connection (a poll takes %s, the median GET /auth round trip at B):" % ("%.2f ms" % (rev["poll_rtt"] * 1e3)
                                                             if rev["poll_rtt"] else "-"))
        vc = ["#", "path", "n", "p50 / p90 / p99 / max (ms)"]
        body = [(r[0], r[1], str(len(r[2])), q4(r[2])) for r in vrows]
        vw = [max(len(vc[i]), *(len(x[i]) for x in body)) for i in range(4)]
        print(" | ".join(vc[i].ljust(vw[i]) for i in range(4)))
        print("-+-".join("-" * w for w in vw))
        for x in body:
            print(" | ".join(x[i].rjust(vw[i]) if i == 2 else x[i].ljust(vw[i]) for i in range(4)).rstrip())
        first = sum(1 for x in res["http"] if x[0] is not None and x[2] == 1)
        print("V1: %d of %d revocations were already seen at B by the first poll after A's response; the %d "
              "HTTP revocations took %.2f s in all, the %d CLI ones %.2f s."
              % (first, len(res["http"]), len(res["http"]), rev["t_http"], len(res["cli"]), rev["t_cli"]))
        print("Target p99 <= 100 ms (all %d, from the response or the CLI's exit): %s%s -> %s"
              % (len(all_resp) + never, "%.1f ms" % (p99 * 1e3) if p99 is not None else "-",
                 "; %d never seen revoked within the time limit" % never if never else "", verdicts["V"]))
        print("The fallback when NOTIFY is not delivered (the LISTEN connection lost): every instance catches up once "
              "a second anyway, so a revocation reaches it within about 1 s plus one catch-up query (not measured "
              "here). A negative 'from the CLI's exit' means B said 'revoked' before the CLI had exited.")
    print()
    print("Targets: issuance PG >= 0.80x SQLite: %s; refresh PG >= 1000/s: %s; revocation p99 <= 100 ms: %s"
          % (verdicts.get("I", "not run"), verdicts.get("R", "not run"), verdicts.get("V", "not run")))
    print()
    print("Per run: rate (other CPU / steal, cores; * disturbed: either above %.1f). Round F: fsync=on." % DISTURBED)
    for kind in a.kinds:
        parts = []
        for tag, k, b, r in order:
            if k == kind:
                flag = "*" if r["other_cpu"] > DISTURBED or r["steal"] > DISTURBED else ""
                parts.append("%s %s %.0f (%.2f/%.2f)%s" % (tag, b.key, r["rate"], max(0.0, r["other_cpu"]),
                                                            r["steal"], flag))
        print("  %s  %s" % (kind, "; ".join(parts)))
        rs = [p["rate"] / q["rate"] for p, q in zip(runs(kind, "pg"), runs(kind, "sqlite")) if q["rate"]]
        print("     PG ÷ SQLite by round: %s%s" % (" ".join("%.2fx" % x for x in rs),
                                                  "; round F %.2fx" % (runs(kind, "pgf")[0]["rate"] /
                                                                        runs(kind, "sqlite_f")[0]["rate"])
                                                  if fs and runs(kind, "pgf") else ""))
    if "R" in a.kinds:
        lost = [r.get("lost", 0) for _, k, _, r in order if k == "R"]
        starved = sum(r.get("starved", 0) for _, k, _, r in order if k == "R")
        firsts = [r["first_bad"] for _, k, _, r in order if k == "R" and r.get("first_bad")]
        print("  R: each run starts with %d families (1.5 x connections); families lost by run (the answer in flight "
              "when wrk stopped, or not a 200): %s; requests sent with no token left: %d%s"
              % (int(math.ceil(1.5 * a.connections)), " ".join(str(x) for x in lost), starved,
                 "; first bad answer: " + firsts[0] if firsts else ""))
    print()
    print("Commands:")

    def show(argv):
        return " ".join(sb.q(x) for x in argv).replace(work, "$WORK")
    print("  %s" % show([sb.rel(sys.argv[0])] + sys.argv[1:]))
    print("  SQLite      %s" % show(lite.tokend.printable_argv()))
    print("  PostgreSQL  %s" % show(pgb.tokend.printable_argv()))
    if fs:
        print("  round F     %s" % show(pgf_b.tokend.printable_argv()))
    print("  postgres (tests/e2e/pgserver.py; PostgreSQL 15 as user postgres): %s"
          % " ".join("-c " + sb.q(x) for x in pg.settings()).replace(pg.dir or "$PGDIR", "$PGDIR"))
    if fs:
        print("  round F's postgres: the same but -c fsync=on -c full_page_writes=on")
    print("  SQLite store: WAL, synchronous=NORMAL, a file on the same disk ($WORK)")
    print("  set-up: tokend client add bench --scope orders:read --aud orders-api --json; tokend client add spa "
          "--redirect-uri %s --public --scope orders:read --aud orders-api --json; tokend user add NAME "
          "--password-file - (%d users)" % (REDIRECT, len(USERS)))
    print("  S  %d threads: GET /oauth/authorize?response_type=code&client_id=spa&...&code_challenge_method=S256; "
          "POST /login (the page's form and tokend_csrf cookie); POST /oauth/token grant_type=authorization_code"
          % a.signin_threads)
    print("  R  %s" % show(refresh_cmd(a, lite, "x", "y").argv(a, shown=True)).replace(lite.addr, "$HOST"))
    print("  I  %s" % show(issue_cmd(lite).argv(a, shown=True)).replace(lite.addr, "$HOST"))
    print("  A  %s" % show(auth_cmd(lite).argv(a, shown=True)).replace(lite.addr, "$HOST"))
    if rev:
        print("  V  A: %s" % show(rev["argv"][0]))
        print("     B: %s" % show(rev["argv"][1]))
        if rev["cli_argv"]:
            print("  V2 %s" % show(rev["cli_argv"]))
    print()
    print("Caveats: %d shared vCPUs carry the load generator, tokend and PostgreSQL together (wrk takes 0.1-0.4 of a "
          "core); other sessions may run on the same VM (see 'other CPU' above). The test PostgreSQL runs with "
          "fsync=off and full_page_writes=off: that flatters its write latency against a production disk; round F "
          "runs it with fsync=on, on a virtual disk whose fdatasync takes %.2f ms, far less than many real disks "
          "(a production server commits in 0.1-10 ms depending on the disk). SQLite runs with synchronous=NORMAL in "
          "WAL mode on a real file: no fsync per commit either. PostgreSQL is reached over loopback TCP: no network "
          "latency." % (os.cpu_count(), disk * 1e3))


def disk_sync_s(d):
    """Median time of an 8 KiB write + fdatasync in directory d (200 times)."""
    path = os.path.join(d, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    ts = []
    try:
        for _ in range(200):
            os.write(fd, b"x" * 8192)
            t = time.perf_counter()
            os.fdatasync(fd)
            ts.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return sb.median(ts)


if __name__ == "__main__":
    sys.exit(main())
