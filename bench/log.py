#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/log.py: what the access log costs /auth (issue 13 section 3: at
most 5 % of /auth CPU).

Starts release `tokend serve --insecure-http` servers on loopback, each on
its own store with an HS256 client (HS256: the cheapest validation, so the
log's share is the largest), and runs wrk on GET /auth with a valid token,
interleaved, --rounds times:

  OFF   --log FILE --log-sample-auth-ok 0: no line for a successful /auth
        (nor its token fingerprint); what the log costs is measured
        against this
  ON    --log FILE: every /auth line, written to a real file
  S10   --log FILE --log-sample-auth-ok 0.1 (one line in ten)
  BASE  (with --baseline BIN) another tokend build, e.g. main before this
        change, with --log FILE

For each run: requests/s, and requests per server CPU-second (utime +
stime of tokend from /proc/PID/stat over the run): wrk and tokend share the
cores, so the rate alone moves with how much CPU tokend happens to get.
The log's cost is 1 - (ON per CPU-second / OFF per CPU-second), taken round
by round (ON_i against OFF_i), median over the rounds. Exit status 0
whatever the numbers; 2 on a set-up error.

It builds nothing: cmake --preset release && cmake --build --preset release
-j2 --target tokend. It reuses bench/serve.py (the runner, wrk parsing,
CPU accounting, process clean-up). Everything runs in a fresh temporary
directory, on 127.0.0.1, and is stopped on exit, Ctrl-C or SIGTERM.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import serve as sb  # noqa: E402  bench/serve.py

TARGET = 0.05


class Server:
    def __init__(self, binary, workdir, name, extra, threads):
        self.binary, self.name, self.extra, self.threads = binary, name, list(extra), threads
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "access.log")
        self.store = ["--store", "sqlite://" + os.path.join(self.dir, "tokend.db"),
                      "--master-key-file", os.path.join(self.dir, "master.key"), "--alg", "HS256"]
        self.proc = None
        self.addr = None
        self.token = None

    def start(self):
        rc, out, err = sb.run([self.binary, "client", "add", "bench", "--scope", sb.SCOPE, "--aud", sb.AUD,
                               "--json"] + self.store, 30, "tokend client add")
        if rc != 0:
            raise sb.SetupError("tokend client add failed (%d): %s" % (rc, err.strip()))
        secret = sb.json.loads(out)["client_secret"]
        self.argv = [self.binary, "serve", "--insecure-http", "--listen", "127.0.0.1:0"] + self.store + \
            ["--log", self.log_path, "--threads", str(self.threads)] + self.extra
        self.out = open(os.path.join(self.dir, "serve.out"), "w+")
        self.proc = sb.PROCS.start(self.argv, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            self.out.seek(0)
            m = re.search(r"listening on http://(127\.0\.0\.1:\d+)", self.out.read())
            if m:
                self.addr = m.group(1)
                break
            time.sleep(0.05)
        if not self.addr:
            self.out.seek(0)
            raise sb.SetupError("tokend serve (%s) did not start:\n%s" % (self.name, self.out.read()))
        time.sleep(0.3)
        self.token = sb.get_token(self.addr, "bench", secret)
        st, _, _ = sb.http_req(self.addr, "GET", sb.AUTH_PATH, {"Authorization": "Bearer " + self.token})
        if st != 200:
            raise sb.SanityError("%s: /auth with a valid token answered %d" % (self.name, st))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokend", default=os.path.join(ROOT, "build", "release", "tokend"))
    ap.add_argument("--baseline", help="another tokend binary to compare, run with --log FILE")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--tokend-threads", type=int, default=0)
    ap.add_argument("--pause", type=float, default=0.5)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (the logs)")
    a = ap.parse_args()
    a.perf = []
    for b in [a.tokend] + ([a.baseline] if a.baseline else []):
        if not os.access(b, os.X_OK):
            print("no executable %s: cmake --preset release && cmake --build --preset release -j2 --target tokend"
                  % b, file=sys.stderr)
            return 2
    if not shutil.which("wrk"):
        print("wrk is not installed (scripts/deps.sh)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, sb.on_signal)
    signal.signal(signal.SIGHUP, sb.on_signal)
    work = tempfile.mkdtemp(prefix="tokend-bench-log-")
    t0 = time.time()
    try:
        configs = [("OFF", a.tokend, ["--log-sample-auth-ok", "0"]), ("ON", a.tokend, []),
                   ("S10", a.tokend, ["--log-sample-auth-ok", "0.1"])]
        if a.baseline:
            configs.append(("BASE", a.baseline, []))
        servers = {}
        runs = {}
        for name, binary, extra in configs:
            s = Server(binary, work, name.lower(), extra, a.tokend_threads)
            s.start()
            servers[name] = s
            runs[name] = sb.Run(name, name, "http://%s%s" % (s.addr, sb.AUTH_PATH),
                                headers=["Authorization: Bearer " + s.token],
                                server_pids=(lambda p=s.proc.pid: [p]))
        sb.log("log benchmark: %d round(s) of %d s wrk runs per configuration, interleaved" % (a.rounds, a.duration))
        for rnd in range(a.rounds):
            sb.log("round %d/%d" % (rnd + 1, a.rounds))
            order = list(runs) if rnd % 2 == 0 else list(reversed(list(runs)))
            for name in order:
                runs[name].measure(a, rnd, [])
        for s in servers.values():
            sb.PROCS.stop(s.proc, signal.SIGTERM, 10)
        sizes = {n: os.path.getsize(s.log_path) for n, s in servers.items()}

        def per_cpu(r):
            return r["rps"] / r["srv_cpu"] if r["srv_cpu"] else None

        def cost(name, by):
            xs = []
            for p, q in zip(runs[name].results, runs["OFF"].results):
                x, y = (per_cpu(p), per_cpu(q)) if by == "cpu" else (p["rps"], q["rps"])
                if x and y:
                    xs.append(1.0 - x / y)
            return sb.median(xs)

        load = os.getloadavg()
        print("tokend access log benchmark, %s, %d cores (load average now %.2f %.2f %.2f)"
              % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), *load))
        print("%d round(s) of %d s, wrk -t%d -c%d --latency, GET /auth (HS256, valid token); %d s in all."
              % (a.rounds, a.duration, a.wrk_threads, a.connections, time.time() - t0))
        print("median over the rounds; cost: 1 - (config / OFF), taken round by round, median.\n")
        print("%-4s | %-44s | %8s | %7s | %8s | %9s | %8s | %8s | %9s"
              % ("#", "configuration", "req/s", "cores", "req/cpu-s", "cost(cpu)", "cost(rps)", "non-2xx",
                 "log bytes"))
        print("-" * 4 + "-+-" + "-" * 44 + "-+-" + "-+-".join("-" * w for w in (8, 7, 8, 9, 8, 8, 9)))
        labels = {"OFF": "--log FILE --log-sample-auth-ok 0",
                  "ON": "--log FILE (every line)",
                  "S10": "--log FILE --log-sample-auth-ok 0.1",
                  "BASE": "baseline binary, --log FILE (every line)"}
        for name in runs:
            g = runs[name].agg()
            pc = sb.median(per_cpu(r) for r in runs[name].results)
            c_cpu = cost(name, "cpu") if name != "OFF" else None
            c_rps = cost(name, "rps") if name != "OFF" else None
            print("%-4s | %-44s | %8.0f | %7.2f | %8.0f | %9s | %8s | %8d | %9d"
                  % (name, labels[name], g["rps"], g["srv_cpu"], pc,
                     "%+.1f%%" % (100 * c_cpu) if c_cpu is not None else "",
                     "%+.1f%%" % (100 * c_rps) if c_rps is not None else "", g["non2xx"], sizes[name]))
        c = cost("ON", "cpu")
        print("\nper-round req/cpu-s:")
        for name in runs:
            print("  %-4s %s" % (name, " ".join("%.0f" % (per_cpu(r) or 0) for r in runs[name].results)))
        print("\nlog cost (ON vs OFF, per server CPU-second): %.1f%%; target <= %.0f%%: %s"
              % (100 * c, 100 * TARGET, "PASS" if c <= TARGET else "MISS"))
        print("\nservers:")
        for name, s in servers.items():
            print("  %-4s %s" % (name, " ".join(sb.rel(x) if x.startswith("/") else x for x in s.argv)))
        print("wrk: " + " ".join(runs["ON"].argv(a, shown=True)))
        return 0
    except (sb.SetupError, sb.SanityError) as e:
        print("bench/log.py: %s" % e, file=sys.stderr)
        return 2
    finally:
        sb.PROCS.stop_all()
        if a.keep:
            print("work directory kept: %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
