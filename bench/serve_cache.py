#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/serve_cache.py: /auth with one repeated token, ES256 against HS256,
with and without the verified-signature cache (issue 13 section 1).

Three `tokend serve` on loopback, each on its own store, started together:
  HS   --alg HS256 (the reference: its signature check is an HMAC);
  ES   ES256 (the default) with the default --auth-cache-size (100000);
  ES0  ES256 with --auth-cache-size 0 (every request verifies ECDSA).
Each gets GET /auth with one valid token of its own, the same token on every
request (what a proxy sends during a token's life), from wrk at 64
keep-alive connections. Rounds are interleaved (HS, ES, ES0, then the next
round in a rotated order) so that drift of the machine hits all three alike.
For each run: requests per second, and requests per server CPU-second
(wrk's requests / the server's utime + stime over the run), since wrk and
the servers share the cores. It prints medians over the rounds and the
ratios ES/HS and ES0/HS (target: ES/HS >= 0.90), then the commands used.

It reuses bench/serve.py's helpers (process handling, wrk parsing); it
builds nothing (cmake --preset release && cmake --build --preset release -j2
--target tokend). Everything it starts is stopped on exit, also on Ctrl-C,
SIGTERM or SIGHUP; every step has a time limit. Exit status: 0 when the run
completed, 1 when a sanity check failed (a valid token refused, the cache
not hit / hit when it is off), 2 on a usage or set-up error.
"""

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve as S  # noqa: E402  bench/serve.py

ROUNDS = 5


class Server(S.Tokend):
    """A tokend serve with extra serve-only flags (not given to `client add`)."""

    def __init__(self, *args, extra=()):
        super().__init__(*args)
        self.extra = list(extra)

    def start(self):
        admin = self.alg_args
        self.alg_args = admin + self.extra
        try:
            super().start()
        finally:
            self.alg_args = admin


def metric(addr, name):
    st, _, body = S.http_req(addr, "GET", "/metrics")
    S.check(st == 200, "GET /metrics: %d" % st)
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description="Repeated-token /auth: ES256 (cache on, off) against HS256.")
    ap.add_argument("--tokend", default=os.path.join(S.ROOT, "build", "release", "tokend"),
                    help="tokend binary (default build/release/tokend)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved rounds (default %d)" % ROUNDS)
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--tokend-threads", type=int, default=0, help="tokend --threads (default 0: one per core)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of rest after each wrk run (default 1)")
    ap.add_argument("--verbose", action="store_true", help="print every wrk output")
    a = ap.parse_args()
    a.perf = []
    if min(a.duration, a.connections, a.wrk_threads, a.rounds) < 1:
        ap.error("--duration, --rounds, --connections and --wrk-threads must be positive")
    if not shutil.which("wrk"):
        S.log("bench/serve_cache.py: wrk is not installed (scripts/deps.sh installs it)")
        return 2
    if not os.access(a.tokend, os.X_OK):
        S.log("bench/serve_cache.py: %s is missing: cmake --preset release && cmake --build --preset release -j2 "
              "--target tokend" % a.tokend)
        return 2
    a.tokend = os.path.abspath(a.tokend)
    signal.signal(signal.SIGTERM, S.on_signal)
    signal.signal(signal.SIGHUP, S.on_signal)
    work = tempfile.mkdtemp(prefix="tokend-bench-cache-")
    status = 0
    try:
        status = bench(a, work)
    except S.SanityError as e:
        S.log("bench/serve_cache.py: sanity check failed: %s" % e)
        status = 1
    except S.SetupError as e:
        S.log("bench/serve_cache.py: %s" % e)
        status = 2
    except KeyboardInterrupt:
        S.log("bench/serve_cache.py: interrupted")
        status = 130
    finally:
        S.PROCS.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return status


def bench(a, work):
    S.log("starting tokend (HS256, ES256 with the cache, ES256 without)")
    hs = Server(a.tokend, work, "hs256", "HS256", "/dev/null", a.tokend_threads)
    es = Server(a.tokend, work, "es256", "ES256", "/dev/null", a.tokend_threads)
    es0 = Server(a.tokend, work, "es256-nocache", "ES256", "/dev/null", a.tokend_threads,
                 extra=["--auth-cache-size", "0"])
    servers = (hs, es, es0)
    for t in servers:
        t.add_client(S.CLIENT)
        t.start()
    toks = {}
    for t in servers:
        tok = S.get_token(t.addr, S.CLIENT, t.secrets[S.CLIENT])
        S.check(S.b64url_json(tok.split(".")[0])["alg"] == t.alg, "%s issued a %s token" % (t.name, t.alg))
        for _ in range(2):
            st, h, _ = S.http_req(t.addr, "GET", S.AUTH_PATH, {"Authorization": "Bearer " + tok})
            S.check(st == 200 and h.get("X-Auth-Subject") == S.CLIENT,
                    "%s /auth refuses its own token: %d %s" % (t.name, st, h.get("X-Auth-Reason")))
        # one altered signature byte: refused, on the cached server too
        st, h, _ = S.http_req(t.addr, "GET", S.AUTH_PATH, {"Authorization": "Bearer " + S.alter_signature(tok)})
        S.check(st == 401 and h.get("X-Auth-Reason") == "bad_signature",
                "%s /auth: a token with one signature byte altered gets %d %s" % (t.name, st, h.get("X-Auth-Reason")))
        toks[t.name] = tok
    S.check(metric(es.addr, "tokend_auth_cache_hits_total") >= 1, "the ES256 server's cache was not hit")
    S.check(metric(es0.addr, "tokend_auth_cache_hits_total") == 0, "the cache-less server reports hits")

    runs = []
    for rid, t, label in (("HS", hs, "/auth HS256, one token"),
                          ("ES", es, "/auth ES256, one token, cache on"),
                          ("ES0", es0, "/auth ES256, one token, --auth-cache-size 0")):
        runs.append(S.Run(rid, label, "http://%s%s" % (t.addr, S.AUTH_PATH),
                          headers=["Authorization: Bearer " + toks[t.name]],
                          server_pids=lambda t=t: [t.proc.pid]))
    t0 = time.time()
    for rnd in range(a.rounds):
        S.log("round %d of %d" % (rnd + 1, a.rounds))
        order = runs[rnd % len(runs):] + runs[:rnd % len(runs)]
        for r in order:
            res = r.measure(a, rnd, [])
            # a refused valid token makes the numbers meaningless; a socket
            # error (wrk's 2 s time-out on a busy machine) is only reported
            S.check(res["non2xx"] == 0, "%s: %d non-2xx answers" % (r.rid, res["non2xx"]))
            res["per_cpu"] = res["requests"] / (res["srv_cpu"] * (res["seconds"] or a.duration)) \
                if res["srv_cpu"] else None
    hits = metric(es.addr, "tokend_auth_cache_hits_total")
    misses = metric(es.addr, "tokend_auth_cache_misses_total")
    S.check(metric(es0.addr, "tokend_auth_cache_hits_total") == 0, "the cache-less server reports hits")

    def med(r, k):
        return S.median(x[k] for x in r.results)

    def rat(x, y, k):
        return S.median(p[k] / q[k] for p, q in zip(x.results, y.results) if p[k] and q[k])

    print("\n/auth, one repeated token, %d interleaved rounds of %ds, wrk -t%d -c%d (medians)\n"
          % (a.rounds, a.duration, a.wrk_threads, a.connections))
    print("| run | what | requests/s | server CPU (cores) | requests per server CPU-second | socket errors "
          "| rounds (req/s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for r in runs:
        print("| %s | %s | %.0f | %.2f | %.0f | %d | %s |" % (
            r.rid, r.label, med(r, "rps"), med(r, "srv_cpu"), med(r, "per_cpu"),
            sum(x["sockerr"] for x in r.results), " ".join("%.0f" % x["rps"] for x in r.results)))
    es_r, es0_r, hs_r = runs[1], runs[2], runs[0]
    print()
    print("| ratio (median of per-round ratios) | requests/s | per server CPU-second |")
    print("| --- | ---: | ---: |")
    for name, x in (("ES / HS (cache on; target >= 0.90)", es_r), ("ES0 / HS (cache off)", es0_r)):
        print("| %s | %.3f | %.3f |" % (name, rat(x, hs_r, "rps"), rat(x, hs_r, "per_cpu")))
    print("| ES / ES0 (what the cache buys) | %.3f | %.3f |" % (rat(es_r, es0_r, "rps"), rat(es_r, es0_r, "per_cpu")))
    print("\nES256 cache: %d hits, %d misses (tokend_auth_cache_*_total)" % (hits, misses))
    print("\nTook %.0fs. Commands (TOKEN: a token of that server):" % (time.time() - t0))
    for t in servers:
        print("  " + " ".join(S.q(x) for x in t.printable_argv()))
    for r in runs:
        print("  " + " ".join(S.q(x) for x in r.argv(a, shown=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
