#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/revocations.py: revocations at scale (issue 13 section 2), on
loopback, bounded in time.

For each store size (--sizes, default 0, 100000 and 1000000 revocations in
force, on SQLite; --backends pg or sqlite,pg: a throwaway PostgreSQL 15
cluster, tests/e2e/pgserver.py, fsync=off):

  fill    the store is filled with `tokend revoke --jti-file` of the binary
          under test (--tokend), in steps, each step timed: the bulk rate
          (revocations/s into the store), at the size reached so far. The
          jtis are 22 base64url characters of 16 random bytes, as tokend's.
  start   `tokend serve --insecure-http --listen 127.0.0.1:0 --log /dev/null`
          on that store, --runs times: the time from exec to the first 200
          of GET /healthz, and VmRSS (and VmHWM) from /proc/PID/status
          then; each binary given (--tokend, and --before for the
          comparison) on the same store.
  admin   `tokend keys list` and `tokend revoke --jti X` (a new X each run):
          wall time and the child's peak RSS (ru_maxrss of wait4), each binary.

Every process is stopped on exit, Ctrl-C or SIGTERM. It builds nothing:

  cmake --preset release && cmake --build --preset release -j2 --target tokend
  # the "before" binary: the commit before, built the same way elsewhere
  git archive 2503496 | tar -x -C /tmp/tokend-before
  cmake -S /tmp/tokend-before -B /tmp/tokend-before/build -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build /tmp/tokend-before/build -j2 --target tokend
  bench/revocations.py --before /tmp/tokend-before/build/tokend

Exit status 0 whatever the numbers (a benchmark, not a test), 1 when an
answer is wrong (a revoke that fails, a server that does not start), 2 on a
set-up error.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

PROCS = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def run_rss(argv, env, timeout=600):
    """Runs argv under /usr/bin/time (a small process: the peak RSS it
    reports is tokend's, not that of this Python forked before the exec):
    (rc, seconds, peak RSS KiB, out, err); run_rss.cpu: user + system s."""
    tf = tempfile.NamedTemporaryFile(delete=False)
    tf.close()
    outf = tempfile.TemporaryFile()
    errf = tempfile.TemporaryFile()
    t0 = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-o", tf.name, "-f", "%M %U %S"] + argv, env=env,
                         stdin=subprocess.DEVNULL, stdout=outf, stderr=errf, start_new_session=True)
    PROCS.append(p)
    try:
        p.wait(timeout)
    finally:
        PROCS.remove(p)
    dt = time.monotonic() - t0
    with open(tf.name) as f:
        last = f.read().strip().splitlines()[-1].split()
    os.unlink(tf.name)
    run_rss.cpu = float(last[1]) + float(last[2])
    outf.seek(0)
    errf.seek(0)
    return p.returncode, dt, int(last[0]), outf.read().decode(errors="replace"), errf.read().decode(errors="replace")


def healthz(addr):
    try:
        with urllib.request.urlopen("http://%s/healthz" % addr, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_serve(binary, env, workdir):
    """Starts tokend serve; returns (seconds to the first 200 of /healthz,
    VmRSS KiB, VmHWM KiB)."""
    outp = os.path.join(workdir, "serve.out")
    out = open(outp, "w+")
    argv = [binary, "serve", "--insecure-http", "--listen", "127.0.0.1:0", "--log", "/dev/null"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    PROCS.append(p)
    addr = None
    try:
        deadline = t0 + 120
        while time.monotonic() < deadline and p.poll() is None:
            if addr is None:
                out.seek(0)
                m = re.search(r"listening on http://(127\.0\.0\.1:\d+)", out.read())
                if m:
                    addr = m.group(1)
            if addr and healthz(addr):
                break
            time.sleep(0.005)
        else:
            out.seek(0)
            raise RuntimeError("tokend serve did not start:\n" + out.read()[-2000:])
        dt = time.monotonic() - t0
        with open("/proc/%d/stat" % p.pid) as f:
            v = f.read().rsplit(")", 1)[1].split()
        start_serve.cpu = (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")
        time.sleep(0.3)  # let start-up settle (threads, first maintenance)
        rss = status_kib(p.pid, "VmRSS")
        hwm = status_kib(p.pid, "VmHWM")
        return dt, rss, hwm
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        PROCS.remove(p)
        out.close()


def new_jtis(n):
    return [base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode() for _ in range(n)]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokend", default=os.path.join(ROOT, "build", "release", "tokend"))
    ap.add_argument("--before", help="a tokend built from the commit before, for the 'before' columns")
    ap.add_argument("--sizes", default="0,100000,1000000")
    ap.add_argument("--runs", type=int, default=3, help="serve starts and admin commands per binary and size")
    ap.add_argument("--step", type=int, default=100000, help="jtis per `tokend revoke --jti-file` while filling")
    ap.add_argument("--backends", default="sqlite",
                    help="sqlite, pg (a throwaway PostgreSQL 15 cluster, tests/e2e/pgserver.py) or sqlite,pg")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    bins = [("after", os.path.abspath(a.tokend))]
    if a.before:
        bins.append(("before", os.path.abspath(a.before)))
    for _, b in bins:
        if not os.access(b, os.X_OK):
            log("no tokend at %s (build it: see --help)" % b)
            return 2
    sizes = [int(x) for x in a.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="tokend-bench-rev-")
    pg = None
    results = []
    status = 0
    try:
        backends = []
        for bname in a.backends.split(","):
            if bname == "sqlite":
                backends.append(("sqlite", None))
            elif bname == "pg":
                import pgserver
                pg = pgserver.PostgresServer()
                pg.start()
                backends.append(("pg", pg))
            else:
                log("--backends: sqlite or pg, not %r" % bname)
                return 2
        for bname, pgs in backends:
            d = os.path.join(work, bname)
            os.makedirs(d)
            env = dict(os.environ)
            env.pop("TOKEND_CONFIG", None)
            env["TOKEND_MASTER_KEY_FILE"] = os.path.join(d, "master.key")
            env["TOKEND_STORE"] = pgs.new_database("tokend_bench") if pgs else "sqlite://" + os.path.join(d, "t.db")
            rc, dt, _, out, err = run_rss([bins[0][1], "keys", "list"], env)
            if rc != 0:
                raise RuntimeError("tokend keys list: " + err)
            have = 0
            for size in sizes:
                # fill up to `size`, timing each --jti-file step
                while have < size:
                    n = min(a.step, size - have)
                    path = os.path.join(d, "jtis.txt")
                    with open(path, "w") as f:
                        f.write("\n".join(new_jtis(n)) + "\n")
                    rc, dt, rss, out, err = run_rss([bins[0][1], "revoke", "--jti-file", path, "--json"], env)
                    if rc != 0:
                        raise RuntimeError("tokend revoke --jti-file: " + err)
                    got = json.loads(out)
                    if got["count"] != n or got["new"] != n:
                        raise RuntimeError("tokend revoke --jti-file said %r for %d new jtis" % (got, n))
                    results.append({"backend": bname, "what": "bulk", "size": have + n, "n": n, "s": dt,
                                    "rate": n / dt, "cpu_s": run_rss.cpu, "maxrss_kib": rss})
                    log("%s: %d -> %d revocations: %d in %.2f s = %.0f/s, CPU %.2f s (peak RSS %.1f MiB)"
                        % (bname, have, have + n, n, dt, n / dt, run_rss.cpu, rss / 1024))
                    have += n
                for label, b in bins:
                    starts, cpus, rsss, hwms = [], [], [], []
                    for _ in range(a.runs):
                        dt, rss, hwm = start_serve(b, env, d)
                        cpus.append(start_serve.cpu)
                        starts.append(dt)
                        rsss.append(rss)
                        hwms.append(hwm)
                    keys, keys_rss, rev, rev_rss, keys_cpu, rev_cpu = [], [], [], [], [], []
                    for _ in range(a.runs):
                        rc, dt, rss, out, err = run_rss([b, "keys", "list"], env)
                        if rc != 0:
                            raise RuntimeError("keys list: " + err)
                        keys.append(dt)
                        keys_cpu.append(run_rss.cpu)
                        keys_rss.append(rss)
                        rc, dt, rss, out, err = run_rss([b, "revoke", "--jti", new_jtis(1)[0]], env)
                        if rc != 0:
                            raise RuntimeError("revoke --jti: " + err)
                        rev.append(dt)
                        rev_cpu.append(run_rss.cpu)
                        rev_rss.append(rss)
                        have += 1
                    r = {"backend": bname, "what": "cmds", "binary": label, "size": size,
                         "start_s": median(starts), "start_cpu_s": median(cpus), "keys_cpu_s": median(keys_cpu),
                         "revoke_cpu_s": median(rev_cpu), "rss_kib": median(rsss), "hwm_kib": median(hwms),
                         "keys_s": median(keys), "keys_rss_kib": median(keys_rss),
                         "revoke_s": median(rev), "revoke_rss_kib": median(rev_rss)}
                    results.append(r)
                    log("%s %-6s %8d: serve ready %.2f s (CPU %.2f s), VmRSS %.1f MiB (HWM %.1f); keys list %.2f s %.1f MiB; "
                        "revoke --jti %.2f s %.1f MiB"
                        % (bname, label, size, r["start_s"], r["start_cpu_s"], r["rss_kib"] / 1024, r["hwm_kib"] / 1024, r["keys_s"],
                           r["keys_rss_kib"] / 1024, r["revoke_s"], r["revoke_rss_kib"] / 1024))
    except KeyboardInterrupt:
        status = 2
    except RuntimeError as e:
        log("error: %s" % e)
        status = 1
    finally:
        for p in list(PROCS):
            try:
                p.kill()
                p.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if pg is not None:
            pg.stop()
        if a.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results, sizes)
    print(json.dumps(results))
    return status


def print_table(results, sizes):
    print("\n# start and memory (medians)")
    print("# backend | binary | revocations | serve ready: wall / CPU (s) | VmRSS (MiB) | VmHWM (MiB) "
          "| keys list: wall / CPU (s), peak MiB | revoke --jti: wall / CPU (s), peak MiB")
    for r in results:
        if r["what"] != "cmds":
            continue
        print("# %-7s | %-6s | %11d | %11.2f / %5.2f | %11.1f | %11.1f | %6.2f / %5.2f, %5.1f | %6.2f / %5.2f, %5.1f"
              % (r["backend"], r["binary"], r["size"], r["start_s"], r["start_cpu_s"], r["rss_kib"] / 1024,
                 r["hwm_kib"] / 1024, r["keys_s"], r["keys_cpu_s"], r["keys_rss_kib"] / 1024, r["revoke_s"],
                 r["revoke_cpu_s"], r["revoke_rss_kib"] / 1024))
    print("\n# bulk revoke (tokend revoke --jti-file), per step")
    print("# backend | store size after | jtis | wall (s) | revocations/s | CPU (s) | per CPU-s | peak RSS (MiB)")
    for r in results:
        if r["what"] == "bulk":
            print("# %-7s | %16d | %6d | %8.2f | %13.0f | %7.2f | %9.0f | %6.1f"
                  % (r["backend"], r["size"], r["n"], r["s"], r["rate"], r["cpu_s"], r["n"] / max(r["cpu_s"], 1e-9),
                     r["maxrss_kib"] / 1024))
    print("# (CPU: the process's own user + system time; the bulk rate also waits on disk writes)")


if __name__ == "__main__":
    sys.exit(main())
