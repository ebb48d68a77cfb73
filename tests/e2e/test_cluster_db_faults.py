# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL fails under two tokend instances (issue 9 section 4;
docs/operations.md "When the database fails").

Two `tokend serve` (A, B; --max-stale 3s) on one PostgreSQL (pgserver.py),
asked straight on loopback (what each instance answers is the point).
A steady load runs throughout: client_credentials at A and B, refresh
token rotation (one family at A, one at B), sign-ins (the page and POST
/login at A, the code exchanged at B), /auth with a valid token and with
a token revoked before the outage, /readyz. Then PostgreSQL is

  1. stopped (a fast shutdown, `pg_ctl stop -m fast`), and
  2. killed (SIGKILL to the postmaster and its backends; crash recovery
     on start),

kept down for 6 s, and started again on the same port. Asserted:

 - while down: token requests, the sign-in page, POST /login, code
   exchange, refresh, revocation, introspection and the logout
   confirmation answer 503 with Retry-After (never another 5xx, never a
   dropped connection); the admin CLI (client list, revoke, keys rotate)
   exits non-zero at once with a message naming the store and hiding the
   password;
 - /auth keeps answering 200 for a valid token while the outage is shorter
   than --max-stale, then 503 `X-Auth-Reason: unavailable` (its log line
   says the revocation list is stale); /readyz is 503; a token revoked
   before the outage says 401 revoked throughout;
 - when PostgreSQL is back every instance recovers by itself (/readyz,
   /auth and token issuance answer 200 again; the times are printed) and a
   revocation made at A during the recovery is seen at B;
 - nothing was issued that the store does not have: every refresh token
   and code a client received is in the store, the last refresh token of
   each family works (once), every code received was exchanged once, and
   the session whose logout failed is still there, then signs out.

A table of what answered what in each phase, and the recovery times, are
printed (for the closing note).

Clients of nginx in front (the upstream block of docs/operations.md,
clustertest.NGINX_CONF) are recorded too; test_3 asks that they see 503 +
Retry-After while the database is down and 200 within a second of the
instances' recovery. test_4 ends every tokend session from the server's
side (pg_terminate_backend) under load: an idle pooled session so ended is
replaced before use, so only a statement in flight at that moment can
answer 503 (+ Retry-After). test_5* cut one COMMIT (clustertest.
CommitCutter between an instance P and PostgreSQL): a revocation whose
answer is lost is a 503, in force, and its retry works; a refresh or code
exchange whose answer is lost answers 200 (P asks what became of the
transaction); one whose COMMIT never arrived is a 503 after which the
token still works.

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_cluster_db_faults.py
"""

import hashlib
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clustertest as ct  # noqa: E402
import faulttest as ft  # noqa: E402

st = ct.st
AUD = ct.AUD
SCOPE = ct.SCOPE
REDIRECT = ft.REDIRECT
PASSWORD = ft.PASSWORD
MAX_STALE = 3  # s, --max-stale
DOWN_FOR = 6.0  # s the database stays down
CACHED_FOR = 2.5  # s: client_credentials may still succeed from memory (authority/cache.c: 1 s, 2 s, + slack)
RECOVERY_BOUND = 10.0  # s: "a few seconds"
PROBE_TIMEOUT = 10  # s per request: a hung request is a finding, not a wait

FRONT_KINDS = ("nginx: client_credentials", "nginx: /auth valid token")
NGINX_SEEN = {}  # how -> (Recorder, marks): what clients of nginx saw in each outage
PHASES = ("before", "down < max-stale", "down > max-stale", "recovering", "after")
SUMMARY = []  # printed at the end


def retry_after_ok(r):
    ra = r.headers.get("Retry-After", "")
    return ra.isdigit() and int(ra) >= 1


def verdict(r, with_reason=False):
    """What a response says, as a short string; a 503 without Retry-After
    and any other 5xx are spelled so that the checks catch them."""
    s = str(r.status_code)
    if with_reason and r.headers.get("X-Auth-Reason"):
        s += " " + r.headers["X-Auth-Reason"]
    if r.status_code == 503 and not retry_after_ok(r):
        s += " NO-RETRY-AFTER"
    return s


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []  # (t0, t1, kind, instance, verdict)

    def add(self, t0, kind, inst, v):
        with self.lock:
            self.events.append((t0, time.monotonic(), kind, inst, v))

    def select(self, kind=None, inst=None, t_from=None, t_to=None):
        with self.lock:
            ev = list(self.events)
        return [e for e in ev if (kind is None or e[2] == kind) and (inst is None or e[3] == inst)
                and (t_from is None or e[0] >= t_from) and (t_to is None or e[0] < t_to)]


class Loop:
    """Calls step() every `every` s in a thread until stopped; step returns
    [(kind, instance name, verdict)] and may raise (recorded as the
    exception's name: a dropped connection or a timeout)."""

    def __init__(self, rec, name, step, every, stop):
        self.rec, self.name, self.step, self.every, self.stop = rec, name, step, every, stop
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                for item in self.step():
                    # (kind, instance, verdict), or with the time its request was sent
                    # when one step sends several (the sign-in loop)
                    self.rec.add(item[3] if len(item) > 3 else t0, item[0], item[1], item[2])
            except Exception as e:  # noqa: BLE001 - recorded, fails the test
                self.rec.add(t0, self.name, "?", "EXC " + type(e).__name__ + ": " + str(e)[:200])
            self.stop.wait(max(0.0, self.every - (time.monotonic() - t0)))


class RefreshFamily:
    """One sign-in's refresh token, rotated at `inst` whenever the store
    lets it: every token received is kept (it must be in the store)."""

    def __init__(self, inst, client_id, tokens):
        self.inst, self.client_id = inst, client_id
        self.s = st.new_session(True)
        self.current = tokens["refresh_token"]
        self.received = [tokens["refresh_token"]]
        self.rotations = 0

    def step(self):
        r = self.s.post(self.inst.url + "/oauth/token", timeout=PROBE_TIMEOUT, data={
            "grant_type": "refresh_token", "refresh_token": self.current, "client_id": self.client_id})
        v = verdict(r)
        if r.status_code == 200:
            self.current = r.json()["refresh_token"]
            self.received.append(self.current)
            self.rotations += 1
        elif r.status_code == 400:
            v += " " + ft.description(r)[:120]
        return [("refresh", self.inst.name, v)]


class SignIns:
    """Sign-ins in a loop: the page and POST /login at `a` (a new browser,
    its own address, each time), the code exchanged at `b`. The next
    browser fetches its sign-in page as soon as the last one is done, so
    that a form is in hand when the database goes: its POST /login is
    tried again each round until it gets through. A code whose exchange got
    503 is exchanged again on the next round (it lives 60 s)."""

    def __init__(self, a, b, client_id):
        self.a, self.b, self.client_id = a, b, client_id
        self.received = []  # every code a browser was given
        self.pending = []  # codes not exchanged yet: (code, verifier)
        self.exchanged = []
        self.tokens = []
        self.s = st.new_session(True)
        self.br = None
        self.form = None

    def close(self):
        self.s.close()
        if self.br is not None:
            self.br.close()

    def exchange(self, code, verifier):
        r = self.s.post(self.b.url + "/oauth/token", timeout=PROBE_TIMEOUT, data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT, "client_id": self.client_id})
        v = verdict(r)
        if r.status_code == 200:
            self.exchanged.append(code)
            self.tokens.append(r.json())
        elif r.status_code != 503:
            v += " " + ft.description(r)[:120]
        return r.status_code, v

    def page(self, out):
        if self.br is None:
            self.br = st.SignInBrowser(self.a, self.client_id, REDIRECT)
        r = self.br.authorize()
        out.append(("sign-in page", self.a.name, verdict(r)))
        if r.status_code == 200:
            self.form = st.login_form(st.parse_page(r.text))

    def step(self):
        out = []
        for code, verifier in list(self.pending):
            sent = time.monotonic()
            status, v = self.exchange(code, verifier)
            out.append(("code exchange", self.b.name, v, sent))
            if status != 503:
                self.pending.remove((code, verifier))
        if self.form is None:
            self.page(out)
            if self.form is None:
                return out
        sent = time.monotonic()
        r = self.br.post_login(self.form, "alice", PASSWORD)
        out.append(("POST /login", self.a.name, verdict(r), sent))
        if r.status_code != 303:
            return out
        got = self.br.redirect_result(r)
        self.br.close()
        self.br = None
        self.form = None
        self.received.append(got["code"])
        status, v = self.exchange(got["code"], got["verifier"])
        out.append(("code exchange", self.b.name, v))
        if status == 503:
            self.pending.append((got["code"], got["verifier"]))
        self.page(out)  # the next form, in hand
        return out


def exchange(inst, got, client_id):
    return inst.post("/oauth/token", data={"grant_type": "authorization_code", "code": got["code"],
                                           "code_verifier": got["verifier"], "redirect_uri": REDIRECT,
                                           "client_id": client_id})


def sha_hex(token):
    return hashlib.sha256(token.encode()).hexdigest()


class DatabaseFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t_start = time.monotonic()
        cls.cl = ct.Cluster(n=2, settings={"TOKEND_MAX_STALE": "%ds" % MAX_STALE}).start()
        try:
            cls.a, cls.b = cls.cl.instances
            cls.cid, cls.secret = cls.a.add_client("svc", SCOPE, AUD, serves=AUD)
            cls.spa = cls.a.add_signin_client("spa", REDIRECT, SCOPE, AUD)[0]
            cls.a.add_user("alice", PASSWORD)
        except BaseException:
            cls.cl.close(check=False)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.cl.close()
            if getattr(cls, "cut", None) is not None:
                cls.cut.close()
        finally:
            if SUMMARY:
                print("\n---- test_cluster_db_faults: measured ----\n" + "\n\n".join(SUMMARY), file=sys.stderr)
            print("test_cluster_db_faults: %.1f s in all" % (time.monotonic() - cls.t_start), file=sys.stderr)

    def test_1_postgres_stopped(self):
        self.outage("stop_fast")

    def test_2_postgres_killed(self):
        self.outage("kill")

    # The upstream block of docs/operations.md "nginx in front" (which
    # clustertest.NGINX_CONF copies) passes tokend's 503 + Retry-After on
    # while the database is down, and sends requests to every instance
    # again as soon as they serve. (With http_503 in proxy_next_upstream
    # each 503 counted towards max_fails: 502 "no live upstreams" for up to
    # fail_timeout after the recovery.)
    def test_3_through_the_documented_nginx(self):
        self.assertEqual(sorted(NGINX_SEEN), ["kill", "stop_fast"], "the outages did not run")
        for how, (rec, marks) in sorted(NGINX_SEEN.items()):
            down = {e[4] for e in rec.select("nginx: client_credentials", t_from=marks["down"] + CACHED_FOR,
                                             t_to=marks["start"])}
            self.assertEqual(down, {"503"}, "%s: token requests through nginx while the database was down" % how)
            late = [e for e in rec.select("nginx: client_credentials", t_from=marks["recovered"] + 1.0)]
            self.assertEqual({e[4] for e in late}, {"200"},
                             "%s: token requests through nginx 1 s after every instance recovered" % how)

    def test_4_connections_dropped_by_the_server(self):
        """PostgreSQL ends every tokend session (pg_terminate_backend: what a
        restart between two requests, a failover or an idle-connection
        killer does) under load, three times: the instances answer 503 +
        Retry-After at worst (never another 5xx), only for a request in
        flight at that moment (idle pooled sessions so ended are replaced
        before use), serve again at once, and listen again (a revocation
        at A reaches B in milliseconds)."""
        cl, a, b = self.cl, self.a, self.b
        rec = Recorder()
        stop = threading.Event()
        valid = a.token(self.cid, self.secret)
        loops = []
        sessions = []

        def token_step(inst):
            s = st.new_session(True)
            sessions.append(s)

            def step():
                r = s.post(inst.url + "/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(self.cid, self.secret), timeout=PROBE_TIMEOUT)
                return [("client_credentials", inst.name, verdict(r))]
            return step

        for inst in (a, b, a, b):
            loops.append(Loop(rec, "client_credentials", token_step(inst), 0.01, stop))
        # the pool: request threads + password workers + 2 (docs/operations.md)
        pool = (os.cpu_count() or 1) + 1 + 2
        events = []
        try:
            for lp in loops:
                lp.start()
            time.sleep(0.5)
            for _ in range(3):
                t0 = time.monotonic()
                n = cl.pg.psql("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE usename = 'tokend') t;", dbname="tokend_cluster").strip()
                time.sleep(1.0)
                events.append((t0, int(n)))
        finally:
            stop.set()
            for lp in loops:
                lp.thread.join(30)
            for s in sessions:
                s.close()
        lines = []
        for t0, n in events:
            bad = [e for e in rec.select(t_from=t0 - 0.05, t_to=t0 + 1.0) if e[4] != "200"]
            per = {name: len([e for e in bad if e[3] == name]) for name in ("A", "B")}
            last_bad = max((e[0] - t0 for e in bad), default=0.0)
            lines.append("%d sessions ended: %s 503s (A %d, B %d), the last %.0f ms after" % (
                n, len(bad), per["A"], per["B"], last_bad * 1000))
            self.assertEqual({e[4] for e in bad} - {"503"}, set(), "answers other than 200 and 503: %r" % bad)
            for name in per:  # two loops per instance: at most their two requests in flight
                self.assertLessEqual(per[name], 2, "%s: more 503s than requests in flight" % name)
        self.assertEqual({e[4] for e in rec.select()} - {"200", "503"}, set())
        for t0, _ in events:
            for name in ("A", "B"):
                self.assertTrue([e for e in rec.select(inst=name, t_from=t0 + 0.01, t_to=t0 + 1.0) if e[4] == "200"],
                                "%s did not serve again within a second" % name)
        fan = []
        for _ in range(3):
            tok = a.token(self.cid, self.secret)
            self.assertEqual(a.revoke(self.cid, self.secret, tok).status_code, 200)
            fan.append(self.wait_revoked(b, tok, 2.0)[0])
        self.assertTrue(all(x is not None and x < 1.0 for x in fan), fan)
        self.assertEqual(ft.auth(b, b.session(), valid).status_code, 200)
        summary = ("PostgreSQL ends every tokend session under load (client_credentials at A and B, 4 loops; "
                   "pool %d per instance):\n  %s\n  then revocations at A seen at B after: %s" % (
                       pool, "\n  ".join(lines), " ".join(ct.ms(x) for x in fan)))
        SUMMARY.append(summary)
        print("\n" + summary, file=sys.stderr)

    # -- the answer to a COMMIT lost ---------------------------------------------------
    # clustertest.CommitCutter sits between instance P and PostgreSQL and,
    # once armed, passes the next COMMIT on but drops its answer and closes
    # the connection: the transaction is committed, P cannot know it. A
    # database crash or a network cut at that moment does the same. Armed
    # with swallow=True it drops the COMMIT itself and leaves the server's
    # session open inside the transaction: nothing is committed, and the
    # session holds its row locks until it is ended.

    @classmethod
    def proxied(cls):
        """Instance P, whose store connections go through the CommitCutter."""
        if getattr(cls, "p", None) is None:
            cls.cut = ct.CommitCutter(cls.cl.pg.port).start()
            p = ct.Instance(cls.cl, "P", st.free_port())
            p.settings["TOKEND_STORE"] = cls.cl.store_url.replace(":%d/" % cls.cl.pg.port, ":%d/" % cls.cut.port)
            cls.cl.instances.append(p)  # stopped with the cluster
            p.start()
            cls.p = p
        return cls.p

    def cut_request(self, send, swallow=False):
        """send() with the next COMMIT's answer (swallow: the COMMIT) lost;
        returns (the response, its duration), asserting that the cut
        happened during it."""
        self.cut.arm(swallow=swallow)
        try:
            t0 = time.monotonic()
            r = send()
            took = time.monotonic() - t0
            self.assertTrue(self.cut.fired.wait(5), "no COMMIT was cut: %s" % ft.describe(r))
        finally:
            self.cut.disarm()
        return r, took

    def spent(self, table, token):
        return self.cl.pg.psql("SELECT used_at <> 0 FROM %s WHERE hash = decode('%s', 'hex');" % (table, sha_hex(token)),
                               dbname="tokend_cluster").strip()

    def test_5a_lost_commit_answer_of_a_revocation(self):
        """A revocation whose COMMIT answer was lost: 503 + Retry-After,
        never a crash or another 5xx, P goes on serving, the revocation is
        in force everywhere (P included) and its retry answers 200."""
        p = self.proxied()
        a, b = self.a, self.b
        tok = a.token(self.cid, self.secret)
        r, _ = self.cut_request(lambda: p.revoke(self.cid, self.secret, tok))
        self.assertEqual(r.status_code, 503, ft.describe(r))
        self.assertTrue(retry_after_ok(r), r.headers)
        self.assertTrue(p.alive())
        self.assertEqual(p.token_response(self.cid, self.secret).status_code, 200, "P after the cut")
        for inst in (a, b, p):
            self.assertEqual(self.wait_revoked(inst, tok, 2.0)[1], "401 revoked", inst.name)
        self.assertEqual(p.revoke(self.cid, self.secret, tok).status_code, 200, "the client's retry")

    def test_5b_lost_commit_answer_of_a_refresh(self):
        """The COMMIT of a refresh rotation took, its answer was lost: P asks
        PostgreSQL what became of the transaction (pg_xact_status) and
        answers 200 with the tokens it stored; they work, and the old
        refresh token is spent. (Answering 503 here would make the client's
        retry look like a stolen token's reuse: the sign-in would be lost.)"""
        p = self.proxied()
        fam = ft.sign_in(self.a, self.spa)
        r, took = self.cut_request(lambda: st.refresh_response(p, fam["refresh_token"], client_id=self.spa))
        self.assertEqual(r.status_code, 200, "a committed rotation whose answer was lost: %s" % ft.describe(r))
        new = r.json()
        self.assertEqual(self.spent("refresh_tokens", fam["refresh_token"]), "t")
        self.assertEqual(self.spent("refresh_tokens", new["refresh_token"]), "f", "the successor is stored, unused")
        self.assertEqual(verdict(ft.auth(self.b, self.b.session(), new["access_token"])), "200")
        r2 = st.refresh_response(self.b, new["refresh_token"], client_id=self.spa)
        self.assertEqual(r2.status_code, 200, "the successor rotates at B: %s" % ft.describe(r2))
        SUMMARY.append("lost COMMIT answer on a refresh at P: %s in %.0f ms (the rotation took; asked with "
                       "pg_xact_status); its refresh token then rotates at B: %s" % (ft.describe(r)[:40], took * 1000,
                                                                                     ft.describe(r2)[:40]))

    def test_5c_lost_commit_answer_of_a_code_exchange(self):
        """The same for an authorization code: 200 with the stored tokens."""
        p = self.proxied()
        with st.SignInBrowser(self.a, self.spa, REDIRECT) as br:
            got = br.sign_in("alice", PASSWORD)
        r, took = self.cut_request(lambda: exchange(p, got, self.spa))
        self.assertEqual(r.status_code, 200, "a committed exchange whose answer was lost: %s" % ft.describe(r))
        self.assertEqual(self.spent("codes", got["code"]), "t")
        toks = r.json()
        self.assertEqual(verdict(ft.auth(self.a, self.a.session(), toks["access_token"])), "200")
        self.assertEqual(st.refresh_response(self.a, toks["refresh_token"], client_id=self.spa).status_code, 200)
        SUMMARY.append("lost COMMIT answer on a code exchange at P: %s in %.0f ms" % (ft.describe(r)[:40], took * 1000))

    def test_5c2_lost_commit_answer_and_no_database(self):
        """The answer to a refresh rotation's COMMIT is lost and PostgreSQL
        cannot be reached to ask: 503 + Retry-After, and the log says the
        token may have been spent (it was), never that it was not."""
        p = self.proxied()
        fam = ft.sign_in(self.a, self.spa)

        def send():
            self.cut.refuse(True)
            return st.refresh_response(p, fam["refresh_token"], client_id=self.spa)
        try:
            r, _ = self.cut_request(send)
        finally:
            self.cut.refuse(False)
        self.assertEqual(r.status_code, 503, ft.describe(r))
        self.assertTrue(retry_after_ok(r), r.headers)
        detail = p.log_for(r.headers["X-Request-Id"]).get("detail", "")
        self.assertIn("may have been spent", detail)
        self.assertNotIn("not spent", detail)
        self.assertEqual(self.spent("refresh_tokens", fam["refresh_token"]), "t")
        self.assertEqual(p.token_response(self.cid, self.secret).status_code, 200, "P once it reaches the database")

    def test_5d_commit_never_arrived_refresh(self):
        """The COMMIT of a refresh rotation never reached PostgreSQL, whose
        session sits inside the transaction holding the row: P finds the
        transaction still running, ends that session after a second, learns
        it was rolled back, and answers 503 + Retry-After saying nothing
        was written. The refresh token is unspent and the retry works."""
        p = self.proxied()
        fam = ft.sign_in(self.a, self.spa)
        r, took = self.cut_request(lambda: st.refresh_response(p, fam["refresh_token"], client_id=self.spa),
                                   swallow=True)
        self.assertEqual(r.status_code, 503, ft.describe(r))
        self.assertTrue(retry_after_ok(r), r.headers)
        detail = p.log_for(r.headers["X-Request-Id"]).get("detail", "")
        self.assertIn("nothing was written", detail)
        self.assertNotIn(fam["refresh_token"], detail)
        self.assertEqual(self.spent("refresh_tokens", fam["refresh_token"]), "f")
        r2 = st.refresh_response(p, fam["refresh_token"], client_id=self.spa)
        self.assertEqual(r2.status_code, 200, "the retry after a COMMIT that never arrived: %s" % ft.describe(r2))
        SUMMARY.append("COMMIT of a refresh at P never arrived: %s in %.2f s (log: %r); the retry: %s" % (
            verdict(r), took, detail[:120], ft.describe(r2)[:40]))

    def test_5e_commit_never_arrived_code(self):
        """The same for a code exchange: 503, the code unspent, the retry 200."""
        p = self.proxied()
        with st.SignInBrowser(self.a, self.spa, REDIRECT) as br:
            got = br.sign_in("alice", PASSWORD)
        r, _ = self.cut_request(lambda: exchange(p, got, self.spa), swallow=True)
        self.assertEqual(r.status_code, 503, ft.describe(r))
        self.assertTrue(retry_after_ok(r), r.headers)
        self.assertEqual(self.spent("codes", got["code"]), "f")
        r2 = exchange(p, got, self.spa)
        self.assertEqual(r2.status_code, 200, "the retry after a COMMIT that never arrived: %s" % ft.describe(r2))

    # ---------------------------------------------------------------------------------
    def outage(self, how):
        cl, a, b = self.cl, self.a, self.b
        insts = (a, b)
        rec = Recorder()
        stop = threading.Event()
        valid = a.token(self.cid, self.secret)
        revoked = b.token(self.cid, self.secret)
        late_revoke = a.token(self.cid, self.secret)  # revoked at A during the recovery
        r = a.revoke(self.cid, self.secret, revoked)
        self.assertEqual(r.status_code, 200)
        for inst in insts:
            self.assertEqual(self.wait_revoked(inst, revoked, 1.0)[1], "401 revoked")
        families = [RefreshFamily(inst, self.spa, ft.sign_in(a, self.spa)) for inst in insts]
        signins = SignIns(a, b, self.spa)
        # a browser signed in at A, on the "Sign out?" page: its confirmation comes during the outage
        leaving = st.SignInBrowser(a, self.spa, REDIRECT)
        got = leaving.sign_in("alice", PASSWORD)
        r = leaving.exchange(got["code"], got["verifier"])
        self.assertEqual(r.status_code, 200, ft.describe(r))
        leaving_tokens = r.json()
        ask = leaving.logout()
        self.assertIn("Sign out?", ask.text)
        # a code given to a browser just before the outage, exchanged during it (503) and after it (200)
        held = ft.st.SignInBrowser(a, self.spa, REDIRECT)
        held_code = held.sign_in("alice", PASSWORD)
        held.close()
        self.held = (held_code["code"], held_code["verifier"])

        sessions = {}

        def sess(key):
            if key not in sessions:
                sessions[key] = st.new_session(True)
            return sessions[key]

        def token_step(inst):
            def step():
                r = sess(("tok", inst.name)).post(inst.url + "/oauth/token", data={"grant_type": "client_credentials"},
                                                  auth=(self.cid, self.secret), timeout=PROBE_TIMEOUT)
                return [("client_credentials", inst.name, verdict(r))]
            return step

        def auth_step(inst, tok, kind):
            def step():
                r = sess((kind, inst.name)).get(inst.url + "/auth", params={"aud": AUD, "scope": SCOPE},
                                                headers={"Authorization": "Bearer " + tok}, timeout=PROBE_TIMEOUT)
                return [(kind, inst.name, verdict(r, with_reason=True))]
            return step

        def ready_step(inst):
            def step():
                r = sess(("ready", inst.name)).get(inst.url + "/readyz", timeout=PROBE_TIMEOUT)
                return [("/readyz", inst.name, verdict(r))]
            return step

        def front_step(kind):
            def step():
                s = sess(("front", kind))
                if kind == "nginx: client_credentials":
                    r = s.post(cl.public_url + "/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(self.cid, self.secret), timeout=PROBE_TIMEOUT)
                else:
                    r = s.get(cl.public_url + "/auth", params={"aud": AUD, "scope": SCOPE},
                              headers={"Authorization": "Bearer " + valid}, timeout=PROBE_TIMEOUT)
                return [(kind, "nginx", verdict(r, with_reason=True))]
            return step

        loops = []
        for kind in FRONT_KINDS:
            loops.append(Loop(rec, kind, front_step(kind), 0.1, stop))
        for inst in insts:
            loops.append(Loop(rec, "client_credentials", token_step(inst), 0.1, stop))
            loops.append(Loop(rec, "/auth valid", auth_step(inst, valid, "/auth valid token"), 0.1, stop))
            loops.append(Loop(rec, "/auth revoked", auth_step(inst, revoked, "/auth revoked before"), 0.1, stop))
            loops.append(Loop(rec, "/readyz", ready_step(inst), 0.2, stop))
        for f in families:
            loops.append(Loop(rec, "refresh", f.step, 0.1, stop))
        loops.append(Loop(rec, "sign-in", signins.step, 0.3, stop))
        marks = {}
        try:
            for lp in loops:
                lp.start()
            time.sleep(1.5)

            # ---- down ----------------------------------------------------------------
            marks["stop"] = time.monotonic()
            getattr(cl.pg, how)()
            marks["down"] = time.monotonic()
            early = self.one_shot(rec, valid, leaving, ask)
            time.sleep(max(0.0, marks["stop"] + DOWN_FOR - time.monotonic()))
            late = self.one_shot(rec, valid, leaving, ask)
            stale = {}
            for inst in insts:
                r = ft.auth(inst, inst.session(), valid)
                stale[inst.name] = (r.status_code, r.headers.get("X-Auth-Reason"), r.headers.get("Retry-After"),
                                    inst.log_for(r.headers["X-Request-Id"]).get("detail", ""))

            # ---- up again --------------------------------------------------------------
            marks["start"] = time.monotonic()
            cl.pg.start_again()
            marks["up"] = time.monotonic()
            fanout = {}
            rev = threading.Thread(target=lambda: fanout.update(self.revoke_during_recovery(late_revoke)))
            rev.start()
            recovery = self.watch_recovery(insts, valid, marks["up"])
            rev.join(30)
            marks["recovered"] = marks["up"] + max(max(v.values()) for v in recovery.values())
            time.sleep(max(0.0, marks["recovered"] + 1.5 - time.monotonic()))
            # how long clients of nginx wait for the recovery (test_3): up to 8 s after the start
            while time.monotonic() - marks["up"] < 8.0 and not any(
                    e[4] == "200" for e in rec.select("nginx: client_credentials", t_from=marks["up"])):
                time.sleep(0.1)
        finally:
            stop.set()
            for lp in loops:
                lp.thread.join(30)
            for s in sessions.values():
                s.close()
            if not cl.pg.running():  # a failure half way: the next test needs the database
                cl.pg.start_again()
        for f in families:
            f.s.close()
        signins.close()

        # revocations at A once everything recovered: B is told at once again (LISTEN/NOTIFY), not
        # by the once-a-second catch-up
        fanout["after"] = []
        for _ in range(5):
            tok = a.token(self.cid, self.secret)
            self.assertEqual(ft.auth(b, b.session(), tok).status_code, 200)
            self.assertEqual(a.revoke(self.cid, self.secret, tok).status_code, 200)
            fanout["after"].append(self.wait_revoked(b, tok, 2.0)[0])
        summary = self.summarize(how, rec, marks, recovery, fanout, early, late, stale)
        SUMMARY.append(summary)
        print("\n" + summary, file=sys.stderr)

        # ---- what was answered --------------------------------------------------------
        NGINX_SEEN[how] = (rec, dict(marks))
        # (what nginx answered is judged by test_3_through_the_documented_nginx)
        errors = [e for e in rec.select() if e[4].startswith("EXC") or (e[3] != "nginx" and (
                  (e[4][:1] == "5" and not e[4].startswith("503")) or "NO-RETRY-AFTER" in e[4]))]
        self.assertEqual(errors, [], "dropped connections, 5xx other than 503, or 503 without Retry-After")
        for inst in insts:
            self.assertTrue(inst.alive(), "%s died:\n%s" % (inst.name, inst.stderr()[-3000:]))
        t_down, t_up = marks["down"], marks["start"]
        store_kinds = ("client_credentials", "refresh", "sign-in page", "POST /login", "code exchange")
        for kind in ("client_credentials", "refresh", "POST /login"):
            # client_credentials writes nothing when it succeeds: an instance
            # answers it from its cached client (1 s) and copy of the
            # failure counters (trusted 2 s) for up to CACHED_FOR into an
            # outage, then 503 until the database is back
            t_from = t_down + (CACHED_FOR if kind == "client_credentials" else 0.05)
            during = rec.select(kind, t_from=t_from, t_to=t_up)
            self.assertTrue(during, "no %s request while the database was down" % kind)
            self.assertEqual({e[4] for e in during}, {"503"}, "%s while the database was down" % kind)
        for inst in insts:
            seq = [e[4] for e in rec.select("client_credentials", inst.name, t_from=t_down + 0.05, t_to=t_up)]
            self.assertNotIn("200", seq[seq.index("503"):] if "503" in seq else [],
                             "%s: client_credentials went back to 200 while the database was down" % inst.name)
        for inst in insts:
            seq = [e for e in rec.select("/auth valid token", inst.name, t_from=t_down, t_to=t_up)]
            early_ok = [e[4] for e in seq if e[0] < marks["stop"] + MAX_STALE - 1.2]
            self.assertTrue(early_ok and set(early_ok) == {"200"},
                            "%s: /auth during the first %.1f s of the outage: %r"
                            % (inst.name, MAX_STALE - 1.2, early_ok))
            late_503 = [e[4] for e in seq if e[0] >= marks["stop"] + MAX_STALE + 1.5]
            self.assertTrue(late_503 and set(late_503) == {"503 unavailable"},
                            "%s: /auth past --max-stale: %r" % (inst.name, sorted(set(late_503))))
            flips = [i for i in range(1, len(seq)) if seq[i][4] == "200" and seq[i - 1][4] != "200"]
            self.assertEqual(flips, [], "%s: /auth went back to 200 while the database was still down" % inst.name)
            code, reason, ra, detail = stale[inst.name]
            self.assertEqual((code, reason), (503, "unavailable"))
            self.assertTrue(ra, "no Retry-After on /auth's 503")
            self.assertIn("revocation list unavailable", detail)
            self.assertIn("failing closed", detail)
            ready_down = {e[4] for e in rec.select("/readyz", inst.name, t_from=t_down + 1.2, t_to=t_up)}
            self.assertEqual(ready_down, {"503"}, "%s /readyz while the database was down" % inst.name)
        self.assertEqual({e[4] for e in rec.select("/auth revoked before")}, {"401 revoked"},
                         "a token revoked before the outage must say so throughout")
        # introspection needs no write: with the client cached and the
        # revocations fresh it answers at first, like /auth; past
        # --max-stale it fails closed
        self.assertIn(early.pop("introspect at B"), ("200", "503"))
        for name, v in list(early.items()) + list(late.items()):
            if name.startswith("CLI"):
                rc, err = v
                self.assertGreater(rc, 0, "%s: %r" % (name, err))
                self.assertIn("cannot connect to PostgreSQL", err, name)
                self.assertNotIn(cl.pg.password, err, "%s printed the database password" % name)
                self.assertNotIn("Sanitizer", err)
            else:
                self.assertEqual(v, "503", "%s while the database was down" % name)

        # ---- recovered -------------------------------------------------------------------
        for inst in insts:
            for what, t in recovery[inst.name].items():
                self.assertLess(t, RECOVERY_BOUND,
                                "%s: %s took %.1f s after PostgreSQL was back" % (inst.name, what, t))
        self.assertIsNotNone(fanout["seen_at_b"], "B never saw the revocation made at A during the recovery")
        self.assertTrue(all(x is not None and x < 1.0 for x in fanout["after"]), fanout["after"])
        after = marks["recovered"]
        for kind in store_kinds + ("/auth valid token", "/readyz"):
            got = {e[4] for e in rec.select(kind, t_from=after)}
            self.assertEqual(got, {"303"} if kind == "POST /login" else {"200"},
                             "%s after the recovery" % kind)

        # ---- nothing issued that the store does not have -----------------------------
        rows = set(cl.pg.psql("SELECT encode(hash, 'hex') FROM refresh_tokens;", dbname="tokend_cluster").split())
        codes = set(cl.pg.psql("SELECT encode(hash, 'hex') FROM codes;", dbname="tokend_cluster").split())
        for f in families:
            missing = [ft.short(t) for t in f.received if sha_hex(t) not in rows]
            self.assertEqual(missing, [], "refresh tokens a client received that the store does not have")
            self.assertGreater(f.rotations, 0)
        for t in signins.tokens + [leaving_tokens]:
            if "refresh_token" in t:
                self.assertIn(sha_hex(t["refresh_token"]), rows)
        self.assertEqual([ft.short(c) for c in signins.received if sha_hex(c) not in codes], [],
                         "codes a browser received that the store does not have")
        # the code held through the outage: exchanged once now
        self.assertIn(sha_hex(self.held[0]), codes)
        r = b.post("/oauth/token", data={"grant_type": "authorization_code", "code": self.held[0],
                                         "code_verifier": self.held[1], "redirect_uri": REDIRECT,
                                         "client_id": self.spa})
        self.assertEqual(r.status_code, 200, "a code issued before the outage: %s" % ft.describe(r))
        # every code received was exchanged, once (some after a 503 and a retry)
        self.assertEqual(signins.pending, [])
        self.assertEqual(sorted(signins.exchanged), sorted(signins.received))
        # the last refresh token of each family works, once
        for f in families:
            r = st.refresh_response(f.inst, f.current, client_id=self.spa)
            self.assertEqual(r.status_code, 200, "the head of a family at %s: %s" % (f.inst.name, ft.describe(r)))
            r2 = st.refresh_response(f.inst, f.current, client_id=self.spa)
            self.assertEqual((r2.status_code, st.oauth_error(r2)), (400, "invalid_grant"))
        # the logout that failed left the session as it was: it ends now
        self.assertEqual(ft.auth(b, b.session(), leaving_tokens["access_token"]).status_code, 200)
        r = leaving.confirm_logout(ask)
        self.assertIn(r.status_code, (200, 303), r.text[:300])
        leaving.close()
        _, last = self.wait_revoked(b, leaving_tokens["access_token"], 2.0)
        self.assertEqual(last, "401 revoked")

    # ---------------------------------------------------------------------------------
    def one_shot(self, rec, valid, leaving, ask):
        """What needs the store, once each, now: {name: verdict}."""
        a, b = self.a, self.b
        out = {}
        out["revoke (RFC 7009) at A"] = verdict(a.revoke(self.cid, self.secret, valid))
        out["introspect at B"] = verdict(b.introspect(self.cid, self.secret, valid))
        r = leaving.confirm_logout(ask)
        out["logout confirmation at A"] = verdict(r)
        if r.status_code == 503:
            self.assertIn("could not sign you out", r.text)
        r = b.post("/oauth/token", data={"grant_type": "authorization_code", "code": self.held[0],
                                         "code_verifier": self.held[1], "redirect_uri": REDIRECT,
                                         "client_id": self.spa})
        out["code exchange at B"] = verdict(r)
        br = st.SignInBrowser(a, self.spa, REDIRECT)
        try:
            out["sign-in page at A"] = verdict(br.authorize())
        finally:
            br.close()
        for args in (("client", "list"), ("revoke", "--jti", "nosuchjti"), ("keys", "rotate")):
            res = self.cl.admin(*args, timeout=30)
            out["CLI tokend " + " ".join(args[:2])] = (res.rc, res.err.strip())
        return out

    def watch_recovery(self, insts, valid, t_up):
        """Per instance: seconds after PostgreSQL was back until /readyz,
        /auth (valid token) and a token request answered 200."""
        out = {}

        def watch(inst):
            s = st.new_session(True)
            got = {}
            try:
                while len(got) < 3 and time.monotonic() - t_up < 20:
                    try:
                        if "readyz" not in got and s.get(inst.url + "/readyz",
                                                         timeout=PROBE_TIMEOUT).status_code == 200:
                            got["readyz"] = time.monotonic() - t_up
                        if "auth" not in got and ft.auth(inst, s, valid, timeout=PROBE_TIMEOUT).status_code == 200:
                            got["auth"] = time.monotonic() - t_up
                        if "token" not in got and s.post(inst.url + "/oauth/token",
                                                         data={"grant_type": "client_credentials"},
                                                         auth=(self.cid, self.secret),
                                                         timeout=PROBE_TIMEOUT).status_code == 200:
                            got["token"] = time.monotonic() - t_up
                    except Exception:  # noqa: BLE001 - the loops record errors
                        pass
                    time.sleep(0.02)
            finally:
                s.close()
            for k in ("readyz", "auth", "token"):
                got.setdefault(k, float("inf"))
            out[inst.name] = got

        ths = [threading.Thread(target=watch, args=(i,)) for i in insts]
        for t in ths:
            t.start()
        for t in ths:
            t.join(30)
        return out

    def revoke_during_recovery(self, tok):
        """Revokes tok at A as soon as A can (right after PostgreSQL is
        back, while the instances recover; retried on 503), then polls B."""
        a, b = self.a, self.b
        t0 = time.monotonic()
        tries = 0
        while True:
            tries += 1
            r = a.revoke(self.cid, self.secret, tok)
            if r.status_code == 200 or time.monotonic() - t0 > RECOVERY_BOUND:
                break
            time.sleep(0.02)
        t_rev = time.monotonic()
        seen, last = self.wait_revoked(b, tok, 3.0)
        return {"tries": tries, "status": r.status_code, "seen_at_b": seen, "last": last,
                "revoked_after_up": t_rev}

    def wait_revoked(self, inst, tok, bound):
        s = st.new_session(True)
        t0 = time.monotonic()
        try:
            while True:
                r = ft.auth(inst, s, tok)
                last = verdict(r, with_reason=True)
                if last == "401 revoked":
                    return time.monotonic() - t0, last
                if time.monotonic() - t0 > bound:
                    return None, last
                time.sleep(0.002)
        finally:
            s.close()

    # ---------------------------------------------------------------------------------
    def summarize(self, how, rec, marks, recovery, fanout, early, late, stale):
        bounds = [("before", None, marks["stop"]), ("down < max-stale", marks["stop"], marks["stop"] + MAX_STALE),
                  ("down > max-stale", marks["stop"] + MAX_STALE, marks["start"]),
                  ("recovering", marks["start"], marks["recovered"]), ("after", marks["recovered"], None)]
        kinds = ["client_credentials", "refresh", "sign-in page", "POST /login", "code exchange",
                 "/auth valid token", "/auth revoked before", "/readyz"] + list(FRONT_KINDS)
        rows = []
        for kind in kinds:
            row = [kind]
            for _, t0, t1 in bounds:
                counts = {}
                for e in rec.select(kind, t_from=t0, t_to=t1):
                    counts[e[4]] = counts.get(e[4], 0) + 1
                row.append(", ".join("%s x%d" % (k, n) for k, n in sorted(counts.items())) or "-")
            rows.append(row)
        for name in early:
            e, l_ = early[name], late[name]
            if name.startswith("CLI"):
                e, l_ = "rc=%d" % e[0], "rc=%d" % l_[0]
            rows.append([name, "", e, l_, "", ""])
        out = ["PostgreSQL %s (down %.1f s; --max-stale %ds): what answered what (status x count, both instances)"
               % ("stopped (fast shutdown)" if how == "stop_fast" else "killed (SIGKILL)",
                  marks["start"] - marks["stop"], MAX_STALE),
               ct.table(["request"] + [b[0] for b in bounds], rows)]
        flip = {}
        for name in recovery:
            t = [e[0] for e in rec.select("/auth valid token", name, t_from=marks["stop"], t_to=marks["start"])
                 if e[4] != "200"]
            flip[name] = (min(t) - marks["stop"]) if t else None
        rrows = [[n, "%.2f s" % flip[n] if flip[n] is not None else "-",
                  "%.2f s" % recovery[n]["readyz"], "%.2f s" % recovery[n]["auth"], "%.2f s" % recovery[n]["token"]]
                 for n in sorted(recovery)]
        out.append(ct.table(["instance", "/auth 503 after the stop", "/readyz 200 after start",
                             "/auth 200 after start", "token 200 after start"], rrows))
        cli = early.get("CLI tokend client list", (0, ""))[1].splitlines() or [""]
        out.append("CLI message while down: %s" % cli[0])
        out.append("/auth past --max-stale: %s" % "; ".join("%s: %d %s, log detail %r" % (n, v[0], v[1], v[3])
                                                           for n, v in sorted(stale.items())))
        seen = fanout["seen_at_b"]
        out.append("revocation at A during the recovery: %d tries, accepted %.2f s after PostgreSQL was back; "
                   "B said revoked %s later" % (fanout["tries"], fanout["revoked_after_up"] - marks["up"],
                                                ct.ms(seen) if seen is not None else "never"))
        for kind in FRONT_KINDS:
            ok = [e[0] for e in rec.select(kind, t_from=marks["up"]) if e[4] == "200"]
            out.append("%s: first 200 %s after PostgreSQL was back (the instances: %.2f s)" % (
                kind, "%.2f s" % (min(ok) - marks["up"]) if ok else "never",
                marks["recovered"] - marks["up"]))
        out.append("revocations at A after the recovery, seen at B after: %s" % " ".join(
            ct.ms(x) if x is not None else "never" for x in fanout["after"]))
        return "\n".join(out)


if __name__ == "__main__":
    st.main()
