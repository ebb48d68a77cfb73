#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/signin_flood.py: /auth latency with and without a sign-in flood
(issue 8: "Under a sign-in flood at full hashing capacity, /auth p99 stays
within 2x its p99 without the flood").

One `tokend serve --insecure-http` (release build, default --login-workers:
one per core, default --login-queue 32, --log /dev/null, as bench/serve.py
starts it) on a fresh store, with a client_credentials client whose token
wrk presents and a public sign-in client whose sign-in form the flood
posts. Then, interleaved, --rounds times:

  A  wrk -t2 -cN -dDs --latency GET /auth?aud=orders-api&scope=orders:read
     with a valid token (keep-alive connections), nothing else running;
  B  the same wrk run while a sign-in flood keeps every password worker
     busy: --flood-concurrency threads (default 2 x workers + 2) POST the
     sign-in form in a loop, each attempt on a new connection from a new
     loopback address (no per-address throttle), with a made-up CSRF
     pair, an unknown username and a wrong password, so every attempt costs
     one Argon2id check (64 MiB) unless the pool is full (then 503, and the
     thread pauses ~--flood-pause s so that the flooder's own CPU does not
     compete with what is measured). tests/e2e/faulttest.LoginFlood.

For each run: req/s, p50 and p99 (wrk's), cores used by tokend (utime +
stime from /proc/PID/stat), requests per server CPU-second, password
checks done per second, the share of /metrics samples (every 0.25 s, in A
and B alike) with every worker running a check, and the flood's 503s. The
figure: p99(B) / p99(A), taken round by round (A_i, B_i), median over the
rounds; PASS when <= 2.0, MISS otherwise. The exit status is 0 whatever the
numbers (it reports, it does not judge); 2 on a set-up error.

It builds nothing: cmake --preset release && cmake --build --preset release
-j2 --target tokend. It reuses bench/serve.py (the tokend runner, wrk
invocation and parsing, CPU accounting, process clean-up) and
tests/e2e/faulttest.py (the flood).
"""

import argparse
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import serve as sb  # noqa: E402  bench/serve.py
import faulttest as ft  # noqa: E402

TARGET = 2.0
REDIRECT = "https://app.example/cb"


def metrics(addr):
    st, _, body = sb.http_req(addr, "GET", "/metrics")
    if st != 200:
        raise sb.SanityError("/metrics: %d" % st)
    return ft.st.parse_metrics(body.decode())


class PoolSampler(threading.Thread):
    """tokend_password_checks{state="running"} every 0.25 s."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        self.addr = addr
        self.running = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(0.25):
            try:
                self.running.append(ft.st.metric(metrics(self.addr), "tokend_password_checks", state="running"))
            except (OSError, sb.SanityError):
                pass

    def stop(self):
        self.halt.set()
        self.join(10)
        return self.running


def add_signin_client(t):
    argv = [t.binary, "client", "add", "spa", "--redirect-uri", REDIRECT, "--public", "--scope", sb.SCOPE,
            "--aud", sb.AUD, "--json"]
    rc, out, err = sb.run(argv + t.store + t.alg_args, 30, "tokend client add (sign-in)")
    if rc != 0:
        raise sb.SetupError("tokend client add spa failed (%d): %s" % (rc, err.strip()))
    import json
    return json.loads(out)["client_id"]


def machine_cpu_s():
    """(busy, stolen) CPU-seconds of the whole machine so far, from
    /proc/stat: user + nice + system + irq + softirq, and steal (the
    hypervisor giving this VM's cores to others)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / sb.TICKS, v[7] / sb.TICKS


def workers_idle(pid):
    """How many threads of `pid` run under SCHED_IDLE (tokend's password
    workers, src/http/workers.c)."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            if os.sched_getscheduler(int(tid)) == os.SCHED_IDLE:
                n += 1
        except OSError:
            pass
    return n


def measure(a, run, t, flood_args, rnd):
    """One wrk run (with a flood when flood_args): the wrk result plus the
    pool's and the machine's numbers over the wrk run."""
    flood = None
    sampler = PoolSampler(t.addr)
    if flood_args:
        flood = ft.LoginFlood(**flood_args).start()
        time.sleep(1.0)  # the pool fills before wrk starts
    sampler.start()
    done0 = ft.st.metric(metrics(t.addr), "tokend_password_checks_total", result="done")
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    m0 = machine_cpu_s()
    r = run.measure(argparse.Namespace(**dict(vars(a), pause=0)), rnd, [])  # the rest comes below
    m1 = machine_cpu_s()
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    done1 = ft.st.metric(metrics(t.addr), "tokend_password_checks_total", result="done")
    running = sampler.stop()
    if flood:
        flood.halt()
    wall = r["seconds"] or a.duration
    r["checks_s"] = (done1 - done0) / wall
    r["busy"] = (sum(1 for x in running if x >= a.workers) / len(running)) if running else None
    r["flood"] = dict(flood.counts) if flood else {}
    r["me_cpu"] = (me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime) / wall
    r["per_cpu"] = r["rps"] / r["srv_cpu"] if r["srv_cpu"] else None
    # what the rest of the machine used meanwhile (other sessions), and what
    # the hypervisor took: a round where either is high was disturbed
    r["other_cpu"] = (m1[0] - m0[0]) / wall - r["srv_cpu"] - r["wrk_cpu"] - r["me_cpu"]
    r["steal"] = (m1[1] - m0[1]) / wall
    # rest; after a flood, its queue drains before the next baseline
    time.sleep(a.pause + (1.0 if flood else 0.0))
    return r


def main():
    ap = argparse.ArgumentParser(description="/auth p99 with and without a sign-in flood (see bench/README.md).")
    ap.add_argument("--tokend", default=os.path.join(ROOT, "build", "release", "tokend"),
                    help="tokend binary (default build/release/tokend)")
    ap.add_argument("--alg", choices=["ES256", "HS256"], default="ES256", help="token alg (default ES256)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="A/B pairs, interleaved (default 3)")
    ap.add_argument("--connections", type=int, default=8, help="wrk -c (default 8)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    ap.add_argument("--login-workers", type=int, default=0,
                    help="tokend --login-workers, passed as TOKEND_LOGIN_WORKERS (default 0: one per core)")
    ap.add_argument("--flood-concurrency", type=int, default=0,
                    help="sign-in attempts in flight (default 0: 2 x workers + 2)")
    ap.add_argument("--flood-pause", type=float, default=0.05,
                    help="seconds a flood thread waits after a 503 (default 0.05; 0: none)")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of rest after each wrk run (default 1)")
    ap.add_argument("--verbose", action="store_true", help="print every wrk output")
    a = ap.parse_args()
    if min(a.duration, a.connections, a.wrk_threads, a.rounds) < 1:
        ap.error("--duration, --rounds, --connections and --wrk-threads must be positive")
    if not shutil.which("wrk"):
        sb.log("bench/signin_flood.py: wrk is not installed (scripts/deps.sh installs it)")
        return 2
    if not os.access(a.tokend, os.X_OK):
        sb.log("bench/signin_flood.py: %s is missing: cmake --preset release && cmake --build --preset release "
               "-j2 --target tokend" % a.tokend)
        return 2
    a.tokend = os.path.abspath(a.tokend)
    a.perf = []
    a.workers = a.login_workers or os.cpu_count() or 1  # tokend's default --login-workers: one per core
    if a.login_workers:
        os.environ["TOKEND_LOGIN_WORKERS"] = str(a.login_workers)  # Tokend.start passes the environment on
    else:
        os.environ.pop("TOKEND_LOGIN_WORKERS", None)
    if a.flood_concurrency <= 0:
        a.flood_concurrency = 2 * a.workers + 2
    signal.signal(signal.SIGTERM, sb.on_signal)
    signal.signal(signal.SIGHUP, sb.on_signal)
    work = tempfile.mkdtemp(prefix="tokend-bench-flood-")
    status = 0
    try:
        status = bench(a, work)
    except sb.SanityError as e:
        sb.log("bench/signin_flood.py: sanity check failed: %s" % e)
        status = 1
    except (sb.SetupError, AssertionError) as e:
        sb.log("bench/signin_flood.py: %s" % e)
        status = 2
    except KeyboardInterrupt:
        sb.log("bench/signin_flood.py: interrupted")
        status = 130
    finally:
        sb.PROCS.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return status


def bench(a, work):
    t_start = time.time()
    t = sb.Tokend(a.tokend, work, a.alg.lower(), a.alg, "/dev/null", 0)
    t.add_client(sb.CLIENT)
    spa = add_signin_client(t)
    t.start()
    idle = workers_idle(t.proc.pid)
    sb.check(idle == a.workers, "found %d threads under SCHED_IDLE, expected %d password workers" % (idle, a.workers))
    token = sb.get_token(t.addr, sb.CLIENT, t.secrets[sb.CLIENT])
    st, h, _ = sb.http_req(t.addr, "GET", sb.AUTH_PATH, {"Authorization": "Bearer " + token})
    sb.check(st == 200, "/auth refuses its own token: %d %s" % (st, h.get("X-Auth-Reason")))
    port = int(t.addr.rsplit(":", 1)[1])
    action, fields = ft.forged_login_form(port, spa, REDIRECT)
    flood_args = {"port": port, "action": action, "fields": fields, "csrf_cookie": "tokend_csrf",
                  "concurrency": a.flood_concurrency, "seconds": a.duration + 30, "pause_on_503": a.flood_pause,
                  "addresses": ft.AddressPool()}
    # sanity: one forged attempt costs a password check (401, not 403 csrf)
    status, _ = ft.LoginFlood(**flood_args).attempt()
    sb.check(status == 401, "a forged sign-in attempt did not reach the password check: %r" % (status,))

    runs = {x: sb.Run(x, "/auth %s%s" % (a.alg, ", sign-in flood" if x == "B" else ""),
                      "http://%s%s" % (t.addr, sb.AUTH_PATH), ["Authorization: Bearer " + token],
                      token_name="$%s_TOKEN" % a.alg, server_pids=lambda: [t.proc.pid]) for x in "AB"}
    res = []
    for rnd in range(a.rounds):
        sb.log("round %d/%d" % (rnd + 1, a.rounds))
        ra = measure(a, runs["A"], t, None, rnd)
        rb = measure(a, runs["B"], t, flood_args, rnd)
        res.append((ra, rb))
        if a.verbose:
            sb.log("  A %r\n  B %r" % (ra, rb))
    t.stop()

    ratios = [rb["p99"] / ra["p99"] for ra, rb in res if ra["p99"] and rb["p99"]]
    med = sb.median(ratios)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print("tokend sign-in flood benchmark, %s, %d cores shared by wrk, tokend and the flood (load average now %s)"
          % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), load))
    print("%d interleaved A/B pairs of %d s wrk runs, wrk -t%d -c%d --latency (keep-alive), /auth %s; "
          "tokend --login-workers %d%s, --login-queue 32 (default); flood: %d in flight, %.2f s pause "
          "after a 503; %.0f s in all."
          % (a.rounds, a.duration, a.wrk_threads, a.connections, a.alg, a.workers,
             " (TOKEND_LOGIN_WORKERS)" if a.login_workers else " (default: one per core)", a.flood_concurrency,
             a.flood_pause, time.time() - t_start))
    print("srv CPU: cores used by tokend; req/CPU-s: req/s / srv CPU; checks/s: password checks done; busy: share "
          "of 0.25 s samples with all %d workers hashing; flooder CPU: this script's cores; other CPU: cores busy on "
          "the machine minus tokend, wrk and this script (other sessions), steal: cores the hypervisor took; a round "
          "where either is above ~0.2 was disturbed." % a.workers)
    print()
    cols = ["run", "req/s", "p50", "p99", "non-2xx", "srv CPU", "req/CPU-s", "wrk CPU", "checks/s", "busy",
            "flood answers", "flooder CPU", "other CPU", "steal"]
    rows = []
    for k, (ra, rb) in enumerate(res):
        for name, r in (("A%d" % (k + 1), ra), ("B%d" % (k + 1), rb)):
            rows.append([name, "%.0f" % r["rps"], sb.fmt_ms(r["p50"]), sb.fmt_ms(r["p99"]),
                         str(r["non2xx"] + r["sockerr"]), "%.2f" % r["srv_cpu"],
                         "%.0f" % r["per_cpu"] if r["per_cpu"] else "-", "%.2f" % r["wrk_cpu"],
                         "%.1f" % r["checks_s"], "%.0f%%" % (100 * r["busy"]) if r["busy"] is not None else "-",
                         " ".join("%s:%d" % kv for kv in sorted(r["flood"].items(), key=str)) or "-",
                         "%.2f" % r["me_cpu"], "%.2f" % r["other_cpu"], "%.2f" % r["steal"]])
    widths = [max(len(cols[i]), *(len(x[i]) for x in rows)) for i in range(len(cols))]
    print(" | ".join(c.ljust(widths[i]) for i, c in enumerate(cols)).rstrip())
    print("-+-".join("-" * w for w in widths))
    for x in rows:
        print(" | ".join(c.ljust(widths[i]) if i in (0, 10) else c.rjust(widths[i]) for i, c in enumerate(x)).rstrip())
    print()
    busy = sb.median(rb["busy"] for _, rb in res)
    print("median over the rounds: A p99 %s, B p99 %s; A %.0f req/s, B %.0f req/s; A %.0f, B %.0f req/CPU-s; "
          "B workers busy %.0f%% of samples"
          % (sb.fmt_ms(sb.median(ra["p99"] for ra, _ in res)), sb.fmt_ms(sb.median(rb["p99"] for _, rb in res)),
             sb.median(ra["rps"] for ra, _ in res), sb.median(rb["rps"] for _, rb in res),
             sb.median(ra["per_cpu"] for ra, _ in res), sb.median(rb["per_cpu"] for _, rb in res),
             100 * (busy or 0)))
    print("p99(B)/p99(A) per round: %s; median %.2fx; target <= %.1fx: %s"
          % (" ".join("%.2fx" % x for x in ratios), med or 0, TARGET, sb.verdict(med is not None and med <= TARGET)))
    if busy is not None and busy < 0.9:
        print("NOTE: the flood kept every worker busy in only %.0f%% of the samples: raise --flood-concurrency"
              % (100 * busy))
    if any(r["non2xx"] or r["sockerr"] for p in res for r in p):
        print("NOTE: /auth answered non-2xx or had socket errors: the numbers are suspect")
    print()
    print("Command: %s" % " ".join(sb.q(x) for x in [sb.rel(sys.argv[0])] + sys.argv[1:]))
    print("  tokend: %s%s" % ("TOKEND_LOGIN_WORKERS=%d " % a.login_workers if a.login_workers else "",
                             " ".join(sb.q(x) for x in t.printable_argv()).replace(work, "$WORK")))
    print("  wrk:    %s" % " ".join(sb.q(x) for x in runs["A"].argv(a, shown=True)))
    print("  flood:  POST %s (sign-in form of client spa, forged CSRF pair, unknown user), %d in flight, "
          "new connection and new 127.A.B.C source address per attempt" % (action, a.flood_concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
