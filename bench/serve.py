#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bench/serve.py: `tokend serve` under load, next to nginx, on loopback.

Measures in one run, with wrk (Debian) at 64 keep-alive connections:
  N1, N2  nginx alone: `return 200` (this machine's ceiling) and a static file;
  A1, A2  tokend GET /auth (plain HTTP on 127.0.0.1) with a valid HS256 token
          (a server started with --alg HS256 on its own store) and a valid
          ES256 token (the default alg);
  A4      /auth with a mix of invalid tokens (expired, bad signature, wrong
          audience, garbage) rotated by bench/serve-mix.lua;
  A3      token issuance: POST /oauth/token, client_credentials, ES256
          (bench/serve-token.lua);
  P1-P3   nginx auth_request in front of /auth protecting a static file, with
          the configuration of docs/nginx.md (read from that file): HS256 with
          upstream keep-alive, the same without it, ES256 with it;
  V       bench/verify --alg ES256, whose raw OpenSSL rate (x 2 cores) the
          ES256 target is relative to, run next to A2;
  M1, M2  tokend's resident memory: idle after start, then every second.
It prints one table (medians when --rounds N > 1), then the commands used.

It builds nothing: it takes build/release/tokend and build/release/bench/verify
(cmake --preset release && cmake --build --preset release -j2 --target tokend
bench_verify). Everything it starts (two tokend, three nginx, wrk, verify,
perf) is stopped on exit, also on Ctrl-C, SIGTERM or SIGHUP; every step has
a time limit. Exit status: 0 when the run completed (whatever the numbers: it
is a benchmark, not a test); 1 when a sanity check failed (a valid token
refused, an invalid one accepted, nginx not passing tokend's answer on),
since the numbers would then mean nothing; 2 on a usage or set-up error.
"""

import argparse
import base64
import http.client
import json
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOCS_NGINX = os.path.join(ROOT, "docs", "nginx.md")
MIX_LUA = os.path.join(HERE, "serve-mix.lua")
TOKEN_LUA = os.path.join(HERE, "serve-token.lua")

AUD = "orders-api"
SCOPE = "orders:read"
AUTH_PATH = "/auth?aud=orders-api&scope=orders:read"
CLIENT = "bench"
LEEWAY = 60  # tokend's default --leeway: an expired token must be older than this

# What docs/nginx.md's configuration names, and what the benchmark puts instead.
DOC_TOKEND = "127.0.0.1:9000"
DOC_LISTEN = "listen 8080;"
DOC_ROOT = "/srv/www"
DOC_KEEPALIVE = re.compile(r"^[ \t]*keepalive 32;[^\n]*\n", re.M)
BLOCK_MARK = "<!-- bench/serve.py reads the next nginx block -->"

STATIC_BODY = b'{"orders":[{"id":1,"item":"widget","qty":3}]}\n'


class SetupError(Exception):
    pass


class SanityError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def q(arg):
    """Shell-quotes one argument for the printed command lines."""
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+,-]+", arg):
        return arg
    return "'" + arg.replace("'", "'\\''") + "'"


def rel(path):
    try:
        r = os.path.relpath(path)
        return r if not r.startswith("../..") else path
    except ValueError:
        return path


class Procs:
    """Every process started here; stops them all (by pid) on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, wait=5.0):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except ProcessLookupError:
                pass
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


PROCS = Procs()


def on_signal(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def run(argv, timeout, what):
    """Runs a command to completion (in its own session, stopped on timeout)."""
    p = PROCS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        PROCS.stop(p, signal.SIGKILL)
        raise SetupError("%s took more than %ds: %s" % (what, timeout, " ".join(argv)))
    PROCS.procs.remove(p)
    return p.returncode, out, err


# ---------------------------------------------------------------------------
# HTTP helpers (http.client, one connection per call)

def http_req(hostport, method, path, headers=None, body=None):
    host, port = hostport.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, r.msg, data
    finally:
        c.close()


def get_token(hostport, client_id, secret):
    basic = base64.b64encode(("%s:%s" % (client_id, secret)).encode()).decode()
    st, _, body = http_req(hostport, "POST", "/oauth/token",
                           {"Authorization": "Basic " + basic,
                            "Content-Type": "application/x-www-form-urlencoded"},
                           "grant_type=client_credentials")
    if st != 200:
        raise SanityError("POST /oauth/token for %s: %d %s" % (client_id, st, body[:200]))
    return json.loads(body)["access_token"]


def b64url_json(seg):
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def alter_signature(tok):
    """The token with one character in the middle of its signature changed:
    still canonical base64url of the right length, so the verdict is
    bad_signature (an altered last character would be non-canonical)."""
    h, p, s = tok.split(".")
    k = len(s) // 2
    c = "B" if s[k] != "B" else "C"
    return "%s.%s.%s" % (h, p, s[:k] + c + s[k + 1:])


# ---------------------------------------------------------------------------
# tokend

class Tokend:
    def __init__(self, binary, workdir, name, alg, log_path, threads):
        self.binary = binary
        self.name = name
        self.alg = alg
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.store = ["--store", "sqlite://" + os.path.join(self.dir, "tokend.db"),
                      "--master-key-file", os.path.join(self.dir, "master.key")]
        self.alg_args = ["--alg", alg] if alg != "ES256" else []
        self.log_path = log_path
        self.threads = threads
        self.proc = None
        self.addr = None
        self.argv = None
        self.secrets = {}

    def add_client(self, client_id, ttl=None):
        argv = [self.binary, "client", "add", client_id, "--scope", SCOPE, "--aud", AUD, "--json"]
        if ttl:
            argv += ["--ttl", ttl]
        rc, out, err = run(argv + self.store + self.alg_args, 30, "tokend client add")
        if rc != 0:
            raise SetupError("tokend client add failed (%d): %s" % (rc, err.strip()))
        self.secrets[client_id] = json.loads(out)["client_secret"]

    def start(self):
        log_arg = self.log_path if self.log_path == "/dev/null" else os.path.join(self.dir, "access.log")
        # /metrics on the benchmarked listener itself (signin_flood.py, issuers.py read it there)
        self.argv = [self.binary, "serve", "--insecure-http", "--listen", "127.0.0.1:0"] + self.alg_args + \
            self.store + ["--log", log_arg, "--threads", str(self.threads), "--admin-listen", "off",
                          "--public-metrics"]
        self.out = open(os.path.join(self.dir, "serve.out"), "w+")
        self.proc = PROCS.start(self.argv, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            self.out.seek(0)
            m = re.search(r"listening on http://(127\.0\.0\.1:\d+)", self.out.read())
            if m:
                self.addr = m.group(1)
                break
            time.sleep(0.05)
        if not self.addr:
            self.out.seek(0)
            raise SetupError("tokend serve (%s) did not start:\n%s" % (self.name, self.out.read()))
        for _ in range(100):  # wait until it answers
            try:
                if http_req(self.addr, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            raise SetupError("tokend serve (%s) does not answer GET /healthz" % self.name)

    def stop(self):
        if self.proc:
            PROCS.stop(self.proc, signal.SIGTERM, 10)
            self.proc = None

    def printable_argv(self):
        return [rel(a) if a.startswith("/") and a != "/dev/null" else a for a in self.argv]


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    """Samples VmRSS of each tokend every second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pids = {}
        self.samples = {}
        self.halt = threading.Event()
        self.lock = threading.Lock()

    def watch(self, name, pid):
        with self.lock:
            self.pids[name] = pid
            self.samples[name] = []

    def run(self):
        while not self.halt.wait(1.0):
            with self.lock:
                for name, pid in self.pids.items():
                    v = rss_kib(pid)
                    if v is not None:
                        self.samples[name].append(v)


# ---------------------------------------------------------------------------
# nginx

def docs_nginx_block():
    """The configuration that docs/nginx.md shows, from the block after BLOCK_MARK."""
    try:
        with open(DOCS_NGINX) as f:
            text = f.read()
    except OSError as e:
        raise SetupError("cannot read %s: %s" % (DOCS_NGINX, e))
    i = text.find(BLOCK_MARK)
    m = re.compile(r"```nginx\n(.*?)```", re.S).search(text, i) if i >= 0 else None
    if not m:
        raise SetupError("%s: no ```nginx block after the line %s" % (DOCS_NGINX, BLOCK_MARK))
    return m.group(1)


def site_config(tokend_addr, listen, root, keepalive):
    conf = docs_nginx_block()
    for old in (DOC_TOKEND, DOC_LISTEN, DOC_ROOT):
        if old not in conf:
            raise SetupError("docs/nginx.md's configuration no longer contains '%s', which the benchmark replaces"
                             % old)
    if not DOC_KEEPALIVE.search(conf):
        raise SetupError("docs/nginx.md's configuration no longer has a 'keepalive 32;' line")
    conf = conf.replace(DOC_TOKEND, tokend_addr).replace(DOC_LISTEN, "listen %s;" % listen)
    conf = conf.replace(DOC_ROOT, root)
    if not keepalive:
        conf = DOC_KEEPALIVE.sub("", conf)
    return conf


class Nginx:
    def __init__(self, workdir, name, workers):
        self.dir = os.path.join(workdir, name)
        os.makedirs(os.path.join(self.dir, "tmp"))
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.workers = workers
        self.proc = None

    def write(self, servers):
        d = self.dir
        main = """# generated by bench/serve.py
worker_processes %s;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path %s/tmp/body;
    proxy_temp_path %s/tmp/proxy;
    fastcgi_temp_path %s/tmp/fastcgi;
    uwsgi_temp_path %s/tmp/uwsgi;
    scgi_temp_path %s/tmp/scgi;

%s
}
""" % (self.workers, d, d, d, d, d, d, d, servers)
        with open(self.conf, "w") as f:
            f.write(main)

    def argv(self):
        return ["nginx", "-p", self.dir, "-e", os.path.join(self.dir, "error.log"), "-c", self.conf]

    def start(self, ports):
        rc, out, err = run(self.argv() + ["-t"], 30, "nginx -t")
        if rc != 0:
            raise SetupError("nginx -t refuses %s:\n%s" % (self.conf, err))
        self.proc = PROCS.start(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        for port in ports:
            while True:
                if self.proc.poll() is not None:
                    raise SetupError("nginx exited: %s" % self.proc.stderr.read().decode(errors="replace"))
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise SetupError("nginx does not listen on %d" % port)
                    time.sleep(0.05)

    def stop(self):
        if self.proc:
            PROCS.stop(self.proc, signal.SIGQUIT, 10)
            self.proc = None


# ---------------------------------------------------------------------------
# wrk

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_ms(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", s)
    return float(m.group(1)) * UNIT[m.group(2)] if m else None


def parse_wrk(out):
    r = {"rps": None, "p50": None, "p99": None, "requests": 0, "non2xx": 0, "sockerr": 0, "seconds": None}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = float(m.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, out, re.M)
        if m:
            r["p" + pct] = parse_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["sockerr"] = sum(int(x) for x in m.groups())
    return r


# ---------------------------------------------------------------------------

def proc_cpu_s(pid):
    """utime + stime of a process (all its threads), in seconds; 0 when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


TICKS = os.sysconf("SC_CLK_TCK")


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


class Run:
    """One measurement: its wrk command, and its results over the rounds."""

    def __init__(self, rid, label, url, headers=(), script=None, script_args=(), shown_args=None,
                 token_name="$TOKEN", server_pids=lambda: [], perf_pid=None):
        self.rid, self.label, self.url = rid, label, url
        self.headers, self.script, self.script_args = list(headers), script, list(script_args)
        self.shown_args = shown_args
        self.token_name = token_name
        self.server_pids = server_pids
        self.perf_pid = perf_pid
        self.results = []

    def argv(self, a, shown=False):
        argv = ["wrk", "-t%d" % a.wrk_threads, "-c%d" % a.connections, "-d%ds" % a.duration, "--latency"]
        for h in self.headers:
            if shown:
                h = re.sub(r"(Bearer|Basic) \S{20,}", lambda m: m.group(1) + " " + self.token_name, h)
            argv += ["-H", h]
        if self.script:
            argv += ["-s", rel(self.script) if shown else self.script]
        argv.append(self.url)
        if self.script_args:
            argv += ["--"] + (self.shown_args if shown and self.shown_args is not None else self.script_args)
        return argv

    def measure(self, a, rnd, perf_files):
        log("  %-3s %s (%ds)" % (self.rid, self.label, a.duration))
        perf = None
        if self.perf_pid and self.rid in a.perf and rnd == 0:
            out = os.path.abspath("perf-%s.data" % self.rid)
            perf = PROCS.start(["perf", "record", "--call-graph", "dwarf,16384", "-F", "250", "-p",
                                str(self.perf_pid()), "-o", out, "--", "sleep",
                                str(max(1, a.duration - 2))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            perf_files.append((self.rid, out))
        pids = self.server_pids()
        cpu0 = sum(proc_cpu_s(p) for p in pids)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc, out, err = run(self.argv(a), a.duration + 30, "wrk")
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1 = sum(proc_cpu_s(p) for p in pids)
        if perf:
            try:
                perf.wait(30)
            except subprocess.TimeoutExpired:
                pass
            PROCS.stop(perf, signal.SIGINT, 10)
        if rc != 0 or "Requests/sec" not in out:
            raise SetupError("wrk failed (%d): %s\n%s" % (rc, err, out))
        r = parse_wrk(out)
        wall = r["seconds"] or a.duration
        r["srv_cpu"] = (cpu1 - cpu0) / wall
        r["wrk_cpu"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
        if a.verbose:
            log(out)
        self.results.append(r)
        time.sleep(a.pause)
        return r

    def agg(self):
        rs = self.results
        return {"rps": median(r["rps"] for r in rs), "p50": median(r["p50"] for r in rs),
                "p99": median(r["p99"] for r in rs), "requests": sum(r["requests"] for r in rs),
                "non2xx": sum(r["non2xx"] for r in rs), "sockerr": sum(r["sockerr"] for r in rs),
                "srv_cpu": median(r["srv_cpu"] for r in rs), "wrk_cpu": median(r["wrk_cpu"] for r in rs),
                "rounds": [r["rps"] for r in rs]}


def ratio(x, ref):
    """Median over the rounds of x's rate / ref's rate in the same round."""
    if isinstance(ref, Run):
        return median(p["rps"] / q["rps"] for p, q in zip(x.results, ref.results))
    return median(p["rps"] / q for p, q in zip(x.results, ref))


def fmt_ms(v):
    if v is None:
        return "-"
    return "%.2f ms" % v if v < 10 else "%.1f ms" % v


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def verdict(ok):
    return "PASS" if ok else "MISS"


def check(ok, what):
    if not ok:
        raise SanityError(what)


def print_table(rows, header):
    cols = ["#", "measurement", "req/s", "p50", "p99", "non-2xx", "CPU srv+wrk", "check", "measured", "target",
            "result"]
    lines = []
    for rid, label, r, checks in rows:
        base = [rid, label]
        if r:
            bad = r["non2xx"]
            bad_s = ("all" if bad == r["requests"] else str(bad)) if bad else "0"
            if r["sockerr"]:
                bad_s += " +%d sock err" % r["sockerr"]
            base += ["%.0f" % r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"]), bad_s,
                     "%.2f+%.2f" % (r["srv_cpu"], r["wrk_cpu"])]
        else:
            base += ["", "", "", "", ""]
        if not checks:
            lines.append(base + ["", "", "", ""])
        for k, c in enumerate(checks):
            lines.append((base if k == 0 else [""] * len(base)) + list(c))
    widths = [max(len(cols[i]), *(len(l[i]) for l in lines)) for i in range(len(cols))]
    right = {2, 3, 4, 5, 6, 8}

    def fmt(row):
        return " | ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                          for i, c in enumerate(row)).rstrip()
    print(header)
    print()
    print(fmt(cols))
    print("-+-".join("-" * w for w in widths))
    for l in lines:
        print(fmt(l))


def main():
    ap = argparse.ArgumentParser(
        description="tokend serve under wrk, next to nginx, on loopback: one table (see bench/README.md).")
    ap.add_argument("--tokend", default=os.path.join(ROOT, "build", "release", "tokend"),
                    help="tokend binary (default build/release/tokend)")
    ap.add_argument("--verify", default=os.path.join(ROOT, "build", "release", "bench", "verify"),
                    help="bench/verify binary (default build/release/bench/verify)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the whole sequence N times; the table shows medians (default 1)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--tokend-threads", type=int, default=0, help="tokend --threads (default 0: one per core)")
    ap.add_argument("--nginx-workers", default="auto", help="nginx worker_processes (default auto)")
    ap.add_argument("--tokend-log", choices=["file", "/dev/null"], default="/dev/null",
                    help="tokend --log: /dev/null (default) or a file in the work directory")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds of rest after each wrk run (default 1)")
    ap.add_argument("--perf", action="append", default=[], metavar="ID",
                    help="perf record (dwarf call graphs) the tokend of run ID (A1..A4, P1..P3; first round) "
                    "into ./perf-ID.data")
    ap.add_argument("--verbose", action="store_true", help="print every wrk output")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (stores, configs, logs)")
    a = ap.parse_args()
    if min(a.duration, a.connections, a.wrk_threads, a.rounds) < 1:
        ap.error("--duration, --rounds, --connections and --wrk-threads must be positive")

    for tool in ("wrk", "nginx") + (("perf",) if a.perf else ()):
        if not shutil.which(tool):
            log("bench/serve.py: %s is not installed (scripts/deps.sh installs wrk and nginx-light)" % tool)
            return 2
    for path, how in ((a.tokend, "--target tokend"), (a.verify, "--target bench_verify")):
        if not os.access(path, os.X_OK):
            log("bench/serve.py: %s is missing: cmake --preset release && cmake --build --preset release -j2 %s"
                % (path, how))
            return 2
    a.tokend = os.path.abspath(a.tokend)
    a.verify = os.path.abspath(a.verify)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    work = tempfile.mkdtemp(prefix="tokend-bench-serve-")
    os.chmod(work, 0o755)  # nginx's workers (nobody) read the static files
    sampler = RssSampler()
    status = 0
    try:
        status = bench(a, work, sampler)
    except SanityError as e:
        log("bench/serve.py: sanity check failed: %s" % e)
        status = 1
    except SetupError as e:
        log("bench/serve.py: %s" % e)
        status = 2
    except KeyboardInterrupt:
        log("bench/serve.py: interrupted")
        status = 130
    finally:
        sampler.halt.set()
        PROCS.stop_all()
        if a.keep or status not in (0, 130):
            log("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


def raw_es256(a):
    """bench/verify --alg ES256 --verbose: the raw OpenSSL ES256 rate on one core as verify reports it
    (its best round), the median of its rounds, and tokend's best round."""
    rc, out, err = run([a.verify, "--alg", "ES256", "--verbose"], 120, "bench/verify")
    m = re.search(r"^ES256\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", out, re.M)
    rounds = re.search(r"^ES256\s+raw OpenSSL\s+([\d ]+)$", out, re.M)
    if rc != 0 or not m or not rounds:
        raise SetupError("bench/verify --alg ES256 failed (%d):\n%s%s" % (rc, out, err))
    return {"tokend": int(m.group(1)), "raw": int(m.group(2)),
            "raw_median": median(int(x) for x in rounds.group(1).split())}


def bench(a, work, sampler):
    t_start = time.time()

    # -- tokend: two servers, each on its own store ----------------------------
    log("starting tokend (ES256 and HS256 servers)")
    es = Tokend(a.tokend, work, "es256", "ES256", a.tokend_log, a.tokend_threads)
    hs = Tokend(a.tokend, work, "hs256", "HS256", a.tokend_log, a.tokend_threads)
    for t in (es, hs):
        t.add_client(CLIENT)
    es.add_client("short", ttl="1s")
    es.start()
    hs.start()
    time.sleep(1.0)
    idle = {t.name: rss_kib(t.proc.pid) for t in (es, hs)}
    sampler.watch("es256", es.proc.pid)
    sampler.watch("hs256", hs.proc.pid)
    sampler.start()

    es_tok = get_token(es.addr, CLIENT, es.secrets[CLIENT])
    hs_tok = get_token(hs.addr, CLIENT, hs.secrets[CLIENT])
    short_tok = get_token(es.addr, "short", es.secrets["short"])
    short_exp = b64url_json(short_tok.split(".")[1])["exp"]
    check(b64url_json(es_tok.split(".")[0])["alg"] == "ES256", "the ES256 server issued a non-ES256 token")
    check(b64url_json(hs_tok.split(".")[0])["alg"] == "HS256", "the HS256 server issued a non-HS256 token")
    for t, tok in ((es, es_tok), (hs, hs_tok)):
        st, h, _ = http_req(t.addr, "GET", AUTH_PATH, {"Authorization": "Bearer " + tok})
        check(st == 200 and h.get("X-Auth-Subject") == CLIENT,
              "%s /auth refuses its own token: %d %s" % (t.name, st, h.get("X-Auth-Reason")))
    st, _, body = http_req(es.addr, "POST", "/oauth/token",
                           {"Authorization": "Basic " + base64.b64encode(
                               ("%s:%s" % (CLIENT, es.secrets[CLIENT])).encode()).decode(),
                            "Content-Type": "application/x-www-form-urlencoded"}, "grant_type=client_credentials")
    check(st == 200 and b"access_token" in body, "POST /oauth/token as wrk sends it: %d" % st)

    # -- nginx: docs/nginx.md's configuration, three times ---------------------
    www = os.path.join(work, "www")
    os.makedirs(os.path.join(www, "orders"))
    for p in ("orders/list.json", "list.json"):
        with open(os.path.join(www, p), "wb") as f:
            f.write(STATIC_BODY)
    for d in (www, os.path.join(www, "orders")):
        os.chmod(d, 0o755)

    def start_nginx(name, tokend, keepalive, ceiling=False):
        ng = Nginx(work, name, a.nginx_workers)
        port = free_port()
        servers = site_config(tokend.addr, "127.0.0.1:%d" % port, www, keepalive)
        ports = [port]
        if ceiling:
            cport = free_port()
            servers += ("\n# the machine's ceiling: nginx answering without doing anything\n"
                        "server {\n    listen 127.0.0.1:%d;\n    location = / { return 200; }\n}\n" % cport)
            ports.append(cport)
        ng.write(servers)
        ng.start(ports)
        return ng, ["127.0.0.1:%d" % p for p in ports]

    def check_pair(hostport, tok):
        ok_h = {"Authorization": "Bearer " + tok}
        st, h, body = http_req(hostport, "GET", "/orders/list.json", ok_h)
        check(st == 200 and body == STATIC_BODY, "nginx+tokend: a valid token gets %d" % st)
        st, h, _ = http_req(hostport, "GET", "/orders/list.json")
        check(st == 401 and h.get_all("WWW-Authenticate") == ['Bearer realm="tokend"'],
              "nginx+tokend: no token gets %d %s" % (st, h.get_all("WWW-Authenticate")))
        st, h, _ = http_req(hostport, "GET", "/orders/list.json", {"Authorization": "Bearer " + alter_signature(tok)})
        ch = h.get_all("WWW-Authenticate") or []
        check(st == 401 and len(ch) == 1 and 'error="invalid_token"' in ch[0]
              and h.get("X-Auth-Reason") == "bad_signature",
              "nginx+tokend: a bad signature gets %d %s" % (st, ch))
        st, h, _ = http_req(hostport, "GET", "/api/orders", ok_h)
        ch = h.get_all("WWW-Authenticate") or []
        check(st == 403 and len(ch) == 1 and 'error="insufficient_scope"' in ch[0],
              "nginx+tokend: a missing scope gets %d %s" % (st, ch))
        st, h, _ = http_req(hostport, "GET", "/orders/list.json", {"Authorization": "Basic Zm9vOmJhcg=="})
        ch = h.get_all("WWW-Authenticate") or []
        check(st == 400 and len(ch) == 1 and 'error="invalid_request"' in ch[0],
              "nginx+tokend: a Basic header gets %d %s" % (st, ch))
        st, _, body = http_req(hostport, "GET", "/list.json")
        check(st == 200 and body == STATIC_BODY, "nginx static file gets %d" % st)

    ng1, (pair_hs, ceiling) = start_nginx("nginx-hs256-keepalive", hs, True, ceiling=True)
    ng2, (pair_hs_nk,) = start_nginx("nginx-hs256-no-keepalive", hs, False)
    ng3, (pair_es,) = start_nginx("nginx-es256-keepalive", es, True)
    check(http_req(ceiling, "GET", "/")[0] == 200, "nginx return 200 does not answer 200")
    for hp, tok in ((pair_hs, hs_tok), (pair_hs_nk, hs_tok), (pair_es, es_tok)):
        check_pair(hp, tok)

    def ng_pids(ng):
        return [ng.proc.pid] + children(ng.proc.pid)

    mix = [(AUTH_PATH, "Bearer " + short_tok, "expired"),
           (AUTH_PATH, "Bearer " + alter_signature(es_tok), "bad_signature"),
           ("/auth?aud=billing-api&scope=orders:read", "Bearer " + es_tok, "wrong_audience"),
           (AUTH_PATH, "Bearer garbage", "unsupported_token_type")]
    names = {"expired": "$EXPIRED_TOKEN", "bad_signature": "$BAD_SIGNATURE_TOKEN", "wrong_audience": "$ES256_TOKEN"}
    margs, mshown = [], []
    for path, authz, reason in mix:
        margs += [path, authz]
        mshown += [path, "Bearer " + names[reason] if reason in names else authz]

    hs_h = ["Authorization: Bearer " + hs_tok]
    es_h = ["Authorization: Bearer " + es_tok]
    es_pid = lambda: es.proc.pid
    hs_pid = lambda: hs.proc.pid
    R = {}
    for r in (
        Run("N1", "nginx return 200", "http://%s/" % ceiling, server_pids=lambda: ng_pids(ng1)),
        Run("A1", "/auth HS256 valid", "http://%s%s" % (hs.addr, AUTH_PATH), hs_h, token_name="$HS256_TOKEN",
            server_pids=lambda: [hs.proc.pid], perf_pid=hs_pid),
        Run("N2", "nginx static file", "http://%s/list.json" % pair_hs, hs_h, token_name="$HS256_TOKEN",
            server_pids=lambda: ng_pids(ng1)),
        Run("P1", "nginx+tokend HS256", "http://%s/orders/list.json" % pair_hs, hs_h, token_name="$HS256_TOKEN",
            server_pids=lambda: ng_pids(ng1) + [hs.proc.pid], perf_pid=hs_pid),
        Run("P2", "nginx+tokend HS256, no keepalive", "http://%s/orders/list.json" % pair_hs_nk, hs_h,
            token_name="$HS256_TOKEN", server_pids=lambda: ng_pids(ng2) + [hs.proc.pid], perf_pid=hs_pid),
        Run("P3", "nginx+tokend ES256", "http://%s/orders/list.json" % pair_es, es_h, token_name="$ES256_TOKEN",
            server_pids=lambda: ng_pids(ng3) + [es.proc.pid], perf_pid=es_pid),
        Run("A2", "/auth ES256 valid", "http://%s%s" % (es.addr, AUTH_PATH), es_h, token_name="$ES256_TOKEN",
            server_pids=lambda: [es.proc.pid], perf_pid=es_pid),
        Run("A3", "POST /oauth/token ES256", "http://%s/oauth/token" % es.addr, script=TOKEN_LUA,
            script_args=[CLIENT, es.secrets[CLIENT]], shown_args=[CLIENT, "$CLIENT_SECRET"],
            server_pids=lambda: [es.proc.pid], perf_pid=es_pid),
        Run("A4", "/auth ES256 invalid mix", "http://%s/" % es.addr, script=MIX_LUA, script_args=margs,
            shown_args=mshown, server_pids=lambda: [es.proc.pid], perf_pid=es_pid),
    ):
        R[r.rid] = r

    verify_rates = []
    perf_files = []
    for rnd in range(a.rounds):
        log("round %d/%d: wrk runs of %ds, %d connections, %d wrk threads"
            % (rnd + 1, a.rounds, a.duration, a.connections, a.wrk_threads))
        for rid in ("N1", "A1", "N2", "P1", "P2", "P3"):
            R[rid].measure(a, rnd, perf_files)
        log("  V   bench/verify --alg ES256 --verbose (raw OpenSSL ES256 rate, one core)")
        verify_rates.append(raw_es256(a))
        for rid in ("A2", "A3"):
            R[rid].measure(a, rnd, perf_files)
        if rnd == 0:  # the expired token must be older than tokend's leeway
            wait = short_exp + LEEWAY + 1 - time.time()
            if wait > 0:
                log("  (waiting %.0fs until the 1s-token is past tokend's %ds leeway)" % (wait, LEEWAY))
                time.sleep(wait)
            for path, authz, reason in mix:
                st, h, _ = http_req(es.addr, "GET", path, {"Authorization": authz})
                check(st == 401 and h.get("X-Auth-Reason") == reason,
                      "mix: expected 401 %s, got %d %s" % (reason, st, h.get("X-Auth-Reason")))
        R["A4"].measure(a, rnd, perf_files)

    time.sleep(1.5)  # one more RSS sample after the last run
    last = {t.name: rss_kib(t.proc.pid) for t in (es, hs)}
    samples = {k: list(v) for k, v in sampler.samples.items()}
    for ng in (ng1, ng2, ng3):
        ng.stop()
    for t in (es, hs):
        t.stop()

    # -- the table -------------------------------------------------------------
    raw_1core = median(v["raw"] for v in verify_rates)
    raw_median = median(v["raw_median"] for v in verify_rates)
    tokend_1core = median(v["tokend"] for v in verify_rates)
    two_cores = [2 * v["raw"] for v in verify_rates]
    two_cores_median = [2 * v["raw_median"] for v in verify_rates]
    g = {rid: r.agg() for rid, r in R.items()}

    def p99(rid):
        v = g[rid]["p99"]
        return ("p99", fmt_ms(v), "< 5 ms", verdict(v is not None and v < 5.0))

    def per_cpu_s(rid, ref):
        """Requests per CPU-second of the server, relative to ref's: what the rate would be if both had
        the same CPU (wrk takes what it needs on a 2-core machine)."""
        x, y = g[rid], g[ref]
        v = (x["rps"] / x["srv_cpu"]) / (y["rps"] / y["srv_cpu"]) if x["srv_cpu"] and y["srv_cpu"] else 0
        return ("per server CPU-s ÷ %s's" % ref, "%.2fx" % v, "", "")

    rows = []
    rows.append(("N1", "nginx `return 200` (ceiling)", g["N1"], []))
    rows.append(("N2", "nginx static file, no auth", g["N2"], [("÷ N1", "%.2fx" % ratio(R["N2"], R["N1"]), "", "")]))
    x = ratio(R["A1"], R["N1"])
    rows.append(("A1", "/auth HS256 valid", g["A1"], [("÷ N1", "%.2fx" % x, ">= 0.50x", verdict(x >= 0.5)),
                                                      p99("A1"), per_cpu_s("A1", "N1")]))
    x = ratio(R["A2"], two_cores)
    per_cpu = g["A2"]["rps"] / g["A2"]["srv_cpu"] if g["A2"]["srv_cpu"] else 0
    rows.append(("A2", "/auth ES256 valid", g["A2"],
                 [("÷ 2 x raw ES256 (V)", "%.2fx" % x, ">= 0.80x", verdict(x >= 0.8)), p99("A2"),
                  ("÷ 2 x raw, median round", "%.2fx" % ratio(R["A2"], two_cores_median), "", ""),
                  ("per server CPU-s ÷ raw med.", "%.2fx" % (per_cpu / raw_median), "", "")]))
    rows.append(("A4", "/auth invalid mix (ES256 server)", g["A4"],
                 [("÷ A2", "%.2fx" % ratio(R["A4"], R["A2"]), "", ""), p99("A4")]))
    rows.append(("A3", "POST /oauth/token (ES256)", g["A3"],
                 [("tokens/s", "%.0f" % g["A3"]["rps"], ">= 10000", verdict(g["A3"]["rps"] >= 10000)),
                  ("÷ N1", "%.2fx" % ratio(R["A3"], R["N1"]), "", "")]))
    rows.append(("P1", "nginx auth_request + /auth HS256", g["P1"],
                 [("÷ N2", "%.2fx" % ratio(R["P1"], R["N2"]), "", ""), p99("P1")]))
    rows.append(("P2", "  the same, no upstream keepalive", g["P2"],
                 [("÷ P1", "%.2fx" % ratio(R["P2"], R["P1"]), "", "")]))
    rows.append(("P3", "nginx auth_request + /auth ES256", g["P3"],
                 [("÷ N2", "%.2fx" % ratio(R["P3"], R["N2"]), "", ""),
                  ("÷ A2", "%.2fx" % ratio(R["P3"], R["A2"]), "", "")]))
    rows.append(("V", "bench/verify ES256, 1 core", None,
                 [("raw OpenSSL ES256/s", "%d" % raw_1core, "", ""),
                  ("  median of its rounds", "%d" % raw_median, "", ""),
                  ("tokend (tk_verify)", "%d" % tokend_1core, "", "")]))
    for k, (name, label) in enumerate((("es256", "tokend RSS, ES256 server"), ("hs256", "tokend RSS, HS256 server"))):
        s = samples.get(name) or []
        mx = max(s + [idle[name], last[name]])
        rows.append(("M%d" % (k + 1), label, None,
                     [("idle after start", mib(idle[name]), "<= 16 MiB", verdict(idle[name] <= 16 * 1024)),
                      ("max / last", "%s / %s" % (mib(mx), mib(last[name])), "", ""),
                      ("max - idle (%d samples)" % len(s), mib(mx - idle[name]), "<= 8 MiB",
                       verdict(mx - idle[name] <= 8 * 1024))]))

    bad = [rid for rid in ("N1", "N2", "A1", "A2", "A3", "P1", "P2", "P3")
           if g[rid]["non2xx"] or g[rid]["sockerr"]]
    if g["A4"]["non2xx"] != g["A4"]["requests"] or g["A4"]["sockerr"]:
        bad.append("A4")
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    header = ("tokend serve benchmark, %s, %d cores shared by wrk, nginx and tokend (load average now %s)\n"
              "%d round(s) of %d s runs, wrk -t%d -c%d --latency (keep-alive); tokend --threads %d --log %s; "
              "nginx worker_processes %s; %.0f s in all.\n"
              "req/s, p50, p99, CPU: %s. CPU: cores used by the server(s) (tokend, nginx or both) + by wrk.\n"
              "Ratios of rates are taken round by round; targets: issue 3 section 8."
              % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), load, a.rounds, a.duration, a.wrk_threads,
                 a.connections, a.tokend_threads, a.tokend_log if a.tokend_log == "/dev/null" else "FILE",
                 a.nginx_workers, time.time() - t_start,
                 "median over the rounds; ratios: median of the per-round ratios" if a.rounds > 1 else "one round"))
    print_table(rows, header)
    print()
    if bad:
        print("NOTE: unexpected statuses or socket errors in %s (non-2xx should be 0, or all for A4)"
              % ", ".join(bad))
        print()
    if a.rounds > 1:
        print("req/s per round: " + "; ".join("%s %s" % (rid, " ".join("%.0f" % x for x in g[rid]["rounds"]))
                                             for rid in ("N1", "N2", "A1", "A2", "A4", "A3", "P1", "P2", "P3"))
              + "; V raw best/median %s" % " ".join("%d/%d" % (v["raw"], v["raw_median"]) for v in verify_rates))
        print()
    print("Commands (each tokend on its own fresh store; the nginx configuration is docs/nginx.md's, "
          "written into the work directory with its ports and root):")
    cmds = [("S1", es.printable_argv()), ("S2", hs.printable_argv()),
            ("V", [rel(a.verify), "--alg", "ES256", "--verbose"])]
    cmds += [(rid, R[rid].argv(a, shown=True)) for rid in ("N1", "N2", "A1", "A2", "A4", "A3", "P1", "P2", "P3")]
    for rid, argv in cmds:
        print("  %-3s %s" % (rid, " ".join(q(x) for x in argv).replace(work, "$WORK")))
    print("  nginx -p $WORK/nginx-NAME -e $WORK/nginx-NAME/error.log -c $WORK/nginx-NAME/nginx.conf"
          "   (NAME: hs256-keepalive for N1 N2 P1, hs256-no-keepalive for P2, es256-keepalive for P3)")
    for rid, path in perf_files:
        print("  perf data of %s: %s  (perf report -i %s --children --sort sym -g none)" % (rid, path, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
