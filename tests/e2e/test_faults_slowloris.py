# SPDX-License-Identifier: Apache-2.0
"""Slow clients (issue 8 section 5; SECURITY.md rule 18): one address
holding many connections that each dribble a request head cannot starve
anyone else.

test_slowloris_from_one_address: `tokend serve --insecure-http
--request-timeout 5s` (default --max-connections-per-ip 64, --max-connections
1024). From 127.0.0.2 the attacker opens ATTACK_CONNS (1,100) connections at
once and, every TICK (2 s), sends one more byte of a request head that never
ends on each open one, and reopens every connection the server closed, for
ATTACK_SECONDS (20 s). It watches each socket and records when the server
closed it. Meanwhile a probe from 127.0.0.1 calls /auth?aud=... with a
valid token every 0.25 s, each call on a NEW connection (so accepting
works for others too).

  - every probe call answers 200, each within PROBE_BOUND (2 s, generous
    for ASan on 2 shared cores);
  - tokend_connections_refused_total > 0 and tokend_connections_cut_total
    > 0 (/metrics);
  - no attacker connection lived more than timeout + SLACK (3 s: the
    sweeper's period, scheduling, ASan): every closed one was closed within
    that of its connect, and every one still open at the end is younger;
  - the per-address limit held: at every tick, the attacker connections
    older than 1 s and still open (so accepted, not refused at once) number
    at most 64 + ACCEPT_RACE (the limit is checked at accept, counted a
    few instructions later: with N worker threads accepting at once an
    address can briefly hold up to N over it, conns.c).

test_trusted_proxy_is_exempt: `--max-connections-per-ip 16
--trusted-proxy 127.0.0.3 --request-timeout 5s`:

  - a proxy at 127.0.0.3 opens PROXY_CONNS (60) connections and keeps them
    all open, each carrying /auth calls with an X-Forwarded-For naming its
    own client, twice (so all 60 were held at once): every call 200, and
    tokend_connections_refused_total does not move;
  - the same from 127.0.0.4 (not trusted): at most 16 + ACCEPT_RACE of the
    60 connections are served, the others are closed without an answer, and
    tokend_connections_refused_total grows by at least the difference;
  - exempt from the limit is not exempt from the deadline: a connection
    from the trusted proxy that dribbles a request head is cut within
    timeout + SLACK (the client address a proxy names is only known once a
    whole head has arrived).

The file raises its own RLIMIT_NOFILE soft limit (resource.setrlimit, to
FD_WANTED or the hard limit) before starting the server, which inherits it:
1,100 sockets here and as many on the server's side.

Run by hand with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_faults_slowloris.py
"""

import errno
import os
import selectors
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402

st = ft.st

TIMEOUT = 5  # --request-timeout
SLACK = 3.0
ATTACK_CONNS = 1100
ATTACK_SECONDS = 20
TICK = 2.0
PROBE_EVERY = 0.25
PROBE_BOUND = 2.0
PER_IP = 64
ACCEPT_RACE = 16
PROXY_CONNS = 60
PROXY_LIMIT = 16
FD_WANTED = 4096
ATTACKER = "127.0.0.2"
PROXY = "127.0.0.3"
UNTRUSTED = "127.0.0.4"
# a request head that never ends: one byte of it per tick
HEAD = (b"GET /auth?aud=orders-api HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow\r\nX-Slow: "
        + b"a" * 4096)


class SlowConn:
    __slots__ = ("sock", "opened", "closed", "sent")

    def __init__(self, sock, opened):
        self.sock = sock
        self.opened = opened
        self.closed = None
        self.sent = 0


class Attacker:
    """ATTACK_CONNS slow connections from one address, on one thread with a
    selector: sends a byte of HEAD to each every TICK, notices (EOF, reset)
    when the server closes one, reopens it at the next tick."""

    def __init__(self, source, port, conns, seconds):
        self.source, self.port, self.n, self.seconds = source, port, conns, seconds
        self.sel = selectors.DefaultSelector()
        self.live = {}  # fd -> SlowConn
        self.done = []  # closed SlowConns
        self.max_accepted = 0
        self.connect_errors = 0
        self.opened = 0

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.source, 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.connect_errors += 1
            return
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.connect_errors += 1
            return
        c = SlowConn(s, time.monotonic())
        self.live[s.fileno()] = c
        self.sel.register(s, selectors.EVENT_READ, c)
        self.opened += 1

    def close(self, c, now):
        if c.closed is None:
            c.closed = now
            self.sel.unregister(c.sock)
            del self.live[c.sock.fileno()]
            c.sock.close()
            self.done.append(c)

    def tick(self, now):
        for c in list(self.live.values()):
            try:
                n = c.sock.send(HEAD[c.sent:c.sent + 1])
                c.sent += n
            except BlockingIOError:
                pass  # still connecting (the backlog is full): try again next tick
            except OSError:
                self.close(c, now)
        accepted = sum(1 for c in self.live.values() if now - c.opened > 1.0)
        self.max_accepted = max(self.max_accepted, accepted)
        while len(self.live) < self.n:
            self.open_one()

    def run(self):
        t_end = time.monotonic() + self.seconds
        next_tick = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= t_end:
                break
            if now >= next_tick:
                self.tick(now)
                next_tick = now + TICK
            for key, _ in self.sel.select(timeout=min(0.05, max(0.0, next_tick - now))):
                c = key.data
                try:
                    d = c.sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                if not d:
                    self.close(c, time.monotonic())
        end = time.monotonic()
        still = list(self.live.values())
        for c in still:
            self.sel.unregister(c.sock)
            c.sock.close()
        self.sel.close()
        return end, still


def refused(fx):
    return st.metric(fx.metrics(), "tokend_connections_refused_total")


def cut(fx):
    return st.metric(fx.metrics(), "tokend_connections_cut_total")


class SlowClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nofile = ft.raise_nofile(FD_WANTED)

    def server(self, *extra):
        fx = st.ServerFixture(https=False, name="faults-slowloris",
                              extra=["--request-timeout", "%ds" % TIMEOUT] + list(extra))
        self.addCleanup(fx.close)
        fx.start()
        cid, secret = fx.add_client("svc", ft.SCOPE, ft.AUD)
        return fx, fx.token(cid, secret)

    def test_slowloris_from_one_address(self):
        if self.nofile < ATTACK_CONNS * 2 + 200:
            self.skipTest("RLIMIT_NOFILE is %d; this test needs %d" % (self.nofile, ATTACK_CONNS * 2 + 200))
        fx, token = self.server()
        probe = ft.AuthProbe("127.0.0.1", fx.port, token, ATTACK_SECONDS + 1, every=PROBE_EVERY)
        atk = Attacker(ATTACKER, fx.port, ATTACK_CONNS, ATTACK_SECONDS)
        probe.start()
        end, still = atk.run()
        probe.join()

        lifetimes = [c.closed - c.opened for c in atk.done]
        at_once = sum(1 for x in lifetimes if x < 1.0)
        longest_closed = max(lifetimes) if lifetimes else 0.0
        oldest_open = max((end - c.opened for c in still), default=0.0)
        slow = [x for x in lifetimes if x >= 1.0]
        m_refused, m_cut = refused(fx), cut(fx)
        print("\nattacker: %d connections opened in %d s (%d connect errors); %d closed by the server within 1 s "
              "(refused), %d after 1 s (cut: %.1f-%.1f s after connect); at most %d held at once; %d open at the "
              "end, the oldest %.1f s old. Metrics: refused %d, cut %d. Probe: %s"
              % (atk.opened, ATTACK_SECONDS, atk.connect_errors, at_once, len(slow), min(slow, default=0),
                 max(slow, default=0), atk.max_accepted, len(still), oldest_open, m_refused, m_cut, probe.summary()),
              file=sys.stderr)

        self.assertEqual(probe.failures(PROBE_BOUND), [], "probe calls that failed or took more than %.1f s"
                         % PROBE_BOUND)
        self.assertGreaterEqual(len(probe.results), ATTACK_SECONDS / PROBE_EVERY / 2)
        self.assertGreater(m_refused, 0)
        self.assertGreater(m_cut, 0)
        self.assertLessEqual(longest_closed, TIMEOUT + SLACK, "an attacker connection lived too long")
        self.assertLessEqual(oldest_open, TIMEOUT + SLACK, "an attacker connection is still open, too old")
        self.assertGreater(len(slow), 0, "no attacker connection was ever accepted")
        self.assertLessEqual(atk.max_accepted, PER_IP + ACCEPT_RACE, "the per-address limit did not hold")

    def test_trusted_proxy_is_exempt(self):
        fx, token = self.server("--max-connections-per-ip", str(PROXY_LIMIT), "--trusted-proxy", PROXY)
        auth = "/auth?aud=%s&scope=%s" % (ft.AUD, ft.SCOPE)
        bearer = ("Authorization", "Bearer " + token)

        # the trusted proxy holds PROXY_CONNS connections at once
        r0 = refused(fx)
        conns = []
        self.addCleanup(lambda: [s.close() for s in conns])
        statuses = []
        for i in range(PROXY_CONNS):
            s = ft.connect_from(PROXY, fx.port)
            conns.append(s)
            statuses.append(ft.http_get_raw(s, auth, [bearer, ("X-Forwarded-For", "198.51.100.%d" % (i + 1))])[0])
        for i, s in enumerate(conns):  # all still open, all still served
            statuses.append(ft.http_get_raw(s, auth, [bearer, ("X-Forwarded-For", "198.51.100.%d" % (i + 1))])[0])
        self.assertEqual(statuses, [200] * (2 * PROXY_CONNS))
        self.assertEqual(refused(fx), r0, "a trusted proxy's connections were refused")

        # ... while an untrusted address doing the same is held to the limit
        for s in conns:
            s.close()
        conns.clear()
        served = 0
        for i in range(PROXY_CONNS):
            try:
                s = ft.connect_from(UNTRUSTED, fx.port)
                conns.append(s)
                if ft.http_get_raw(s, auth, [bearer], timeout=10)[0] == 200:
                    served += 1
            except (OSError, ValueError):
                pass  # closed by the server without an answer
        r1 = refused(fx)
        print("\nuntrusted address: %d of %d connections served, refused_total %d -> %d"
              % (served, PROXY_CONNS, r0, r1), file=sys.stderr)
        self.assertGreaterEqual(served, PROXY_LIMIT - 1)
        self.assertLessEqual(served, PROXY_LIMIT + ACCEPT_RACE)
        self.assertGreaterEqual(r1 - r0, PROXY_CONNS - served)
        for s in conns:
            s.close()
        conns.clear()

        # exempt from the limit, not from the deadline
        s = ft.connect_from(PROXY, fx.port)
        conns.append(s)
        t0 = time.monotonic()
        closed = None
        s.settimeout(1.0)
        for k in range(int((TIMEOUT + SLACK) * 2) + 2):
            try:
                s.send(HEAD[k:k + 1])
                if s.recv(4096) == b"":
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = time.monotonic() - t0
                break
        self.assertIsNotNone(closed, "a slow connection from the trusted proxy was never cut")
        self.assertLessEqual(closed, TIMEOUT + SLACK)
        self.assertGreaterEqual(closed, TIMEOUT - 0.5)


if __name__ == "__main__":
    st.main()
