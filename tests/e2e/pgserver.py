#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A throwaway PostgreSQL server for tests (issue 9): started and stopped by
the tests themselves, never the machine's own cluster.

    with PostgresServer() as pg:           # initdb + start, ~1 s
        url = pg.new_database()            # postgres://tokend:PW@127.0.0.1:PORT/NAME?sslmode=disable
        ...
        pg.stop_fast(); pg.start_again()   # a restart on the same data and port
        pg.kill(); pg.start_again()        # a crash (SIGKILL) and crash recovery
    # stopped, its directory removed

or, around any command (what tests/pg/with_postgres.sh does):

    /usr/bin/python3 tests/e2e/pgserver.py --run CMD ARGS...

which exports TOKEND_TEST_PG_URL (role tokend, password, TCP, a fresh
database tokend_test whose public schema tokend owns) and
TOKEND_TEST_PG_ADMIN (libpq key/value conninfo of the superuser over the
Unix socket), runs CMD, stops the server and exits with CMD's status.

How it runs:
 - Binaries from /usr/lib/postgresql/15/bin (Debian 12's postgresql-15),
   named by path: whatever pg_ctl is on PATH is not used.
 - PostgreSQL refuses to run as root, so as root the server (initdb,
   postgres) runs as the `postgres` system user (or `nobody` when there is
   none); otherwise as the caller. The clients (psql, the tests) run as the
   caller.
 - Everything lives in one fresh directory, mkdtemp("tokend-pg-") under
   $TMPDIR or /tmp: data/ (PGDATA), the Unix socket, server.log. It is
   removed on stop; a run whose harness died without stopping (SIGKILL) is
   swept by the next start (its postmaster gets SIGQUIT, its directory goes).
 - Listens on 127.0.0.1 on a free port (bind to port 0, then start there;
   retried on a lost race) and on a Unix socket in that directory.
 - pg_hba: trust on the Unix socket (setup only), scram-sha-256 over TCP.
 - Durability against a machine crash is off, deliberately: fsync=off and
   full_page_writes=off (nothing here must survive one). synchronous_commit
   stays on: with fsync off it costs a write() per commit, and it keeps the
   promise that a commit survives a crash of the server (kill(), for the
   fault tests). PostgresServer(synchronous_commit=False) turns it off too,
   for speed where no test kills the server: then kill() loses the commits
   of the last ~200 ms (wal_writer_delay). PostgresServer(fsync=True) runs
   with PostgreSQL's durable defaults instead (fsync=on,
   full_page_writes=on: every commit waits for its WAL to reach the disk),
   for benchmarks that compare against a production-like server
   (bench/store.py).
 - Stop is a fast shutdown (SIGINT to the postmaster, what `pg_ctl stop -m
   fast` sends), then SIGKILL to its process group after a timeout. The
   postmaster also gets SIGQUIT (immediate shutdown) if the process that
   started it dies first (PR_SET_PDEATHSIG), so a killed harness leaves no
   server behind.

Python 3 standard library only.
"""

import atexit
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
ROLE = "tokend"
SUPERUSER = "postgres"
PREFIX = "tokend-pg-"
MARKER = "harness.pid"  # in the run directory: the pid of the process that owns it


def _clean_env():
    """The environment for PostgreSQL's programs: no PG* variable of the
    caller's may point them elsewhere; C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _traversable(path):
    """Whether anyone may walk down to path (o+x on it and every parent)."""
    path = os.path.abspath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _set_pdeathsig():
    # Runs in the child, after the user switch (CPython applies user= and
    # group= before preexec_fn), so the setting survives into exec.
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


def sweep_leftovers(base=None):
    """Removes run directories of harnesses that died without stopping
    their server (a SIGKILLed test run): stops the server if it still runs
    (SIGQUIT: immediate shutdown), then deletes the directory."""
    base = base or tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        d = os.path.join(base, name)
        if not name.startswith(PREFIX) or not os.path.isdir(d):
            continue
        try:
            with open(os.path.join(d, MARKER)) as f:
                owner = int(f.read().strip())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if _alive(owner):
            continue
        try:
            with open(os.path.join(d, "data", "postmaster.pid")) as f:
                pm = int(f.readline().strip())
            with open(f"/proc/{pm}/cmdline", "rb") as f:
                if d.encode() in f.read():
                    os.kill(pm, signal.SIGQUIT)
                    for _ in range(50):
                        if not _alive(pm):
                            break
                        time.sleep(0.1)
        except (OSError, ValueError):
            pass
        shutil.rmtree(d, ignore_errors=True)


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory. Not thread-safe:
    start and stop it from one thread (the one that started the server must
    outlive it, see PR_SET_PDEATHSIG)."""

    def __init__(self, bindir=PG_BIN, base=None, log_statements=False, synchronous_commit=True, fsync=False):
        self.bindir = bindir
        self.synchronous_commit = synchronous_commit
        self.fsync = fsync
        self.base = base
        self.log_statements = log_statements
        self.dir = None
        self.port = None
        self.password = secrets.token_hex(16)  # role tokend's
        self.proc = None
        self._dbs = 0
        self._kept_log = None
        # As root: run the server as an unprivileged user.
        self.run_as = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self.run_as = pw
                break
            if self.run_as is None:
                raise RuntimeError("running as root and there is no postgres or nobody user to run PostgreSQL as")

    # ---- paths and connection strings ------------------------------------

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def socket_dir(self):
        return self.dir

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def url(self, dbname="tokend_test"):
        """A URL for role tokend over TCP with its password."""
        return f"postgres://{ROLE}:{self.password}@127.0.0.1:{self.port}/{dbname}?sslmode=disable"

    def conninfo(self, dbname="tokend_test"):
        """libpq key/value form for role tokend over the Unix socket (trust)."""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={ROLE}"

    def admin_conninfo(self, dbname="postgres"):
        """The superuser over the Unix socket (trust)."""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={SUPERUSER}"

    # ---- running things ------------------------------------------------------

    def _as_server_user(self):
        if self.run_as is None:
            return {}
        return {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}

    def _run_server_tool(self, args):
        r = subprocess.run(args, cwd=self.dir, env=_clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, **self._as_server_user())
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({r.returncode}):\n{r.stdout}")
        return r.stdout

    def psql(self, sql, dbname="postgres", user=SUPERUSER):
        """Runs SQL (from stdin, so secrets stay out of argv) over the Unix
        socket; returns the output (tuples only, unaligned)."""
        r = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", self.socket_dir, "-p", str(self.port), "-U", user, "-d", dbname],
                           input=sql, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr.strip()}")
        return r.stdout

    # ---- life cycle ----------------------------------------------------------

    def start(self):
        """initdb into a fresh directory, start, create role tokend and the
        database tokend_test (owned by tokend, as is its public schema)."""
        if self.dir is not None:
            raise RuntimeError("already started")
        if self.run_as is not None and not _traversable(self.base or tempfile.gettempdir()):
            self.base = "/tmp"  # the server's user must reach its directory
        sweep_leftovers(self.base)
        self.dir = tempfile.mkdtemp(prefix=PREFIX, dir=self.base)
        atexit.register(self.stop)
        try:
            with open(os.path.join(self.dir, MARKER), "w") as f:
                f.write(f"{os.getpid()}\n")
            os.chmod(self.dir, 0o755)  # the socket's directory; data/ is 0700
            if self.run_as is not None:
                os.chown(self.dir, self.run_as.pw_uid, self.run_as.pw_gid)
            pwfile = os.path.join(self.dir, "initdb.pw")
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(16) + "\n")  # the superuser's; nothing uses it (trust on the socket)
            if self.run_as is not None:
                os.chown(pwfile, self.run_as.pw_uid, self.run_as.pw_gid)
            try:
                self._run_server_tool([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", SUPERUSER,
                                       f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                                       "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            finally:
                os.unlink(pwfile)
            last = None
            for _ in range(5):  # the free port may be taken between our probe and the server's bind
                self.port = _free_port()
                try:
                    self._start_postmaster()
                    break
                except RuntimeError as e:
                    last = e
                    if "could not bind" not in str(e) and "could not create any TCP/IP sockets" not in str(e):
                        raise
            else:
                raise last
            self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}';")
            self.new_database("tokend_test")
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def settings(self):
        """The server's settings (name=value, given to postgres as -c)."""
        out = ["listen_addresses=127.0.0.1", f"port={self.port}", f"unix_socket_directories={self.socket_dir}",
               f"fsync={'on' if self.fsync else 'off'}", f"full_page_writes={'on' if self.fsync else 'off'}",
               f"synchronous_commit={'on' if self.synchronous_commit else 'off'}",
               "max_connections=200", "shared_buffers=32MB", "log_line_prefix=%m [%p] %q%u@%d ", "TimeZone=UTC"]
        if self.log_statements:
            out.append("log_statement=all")
        return out

    def _start_postmaster(self):
        args = [os.path.join(self.bindir, "postgres"), "-D", self.data]
        for kv in self.settings():
            args += ["-c", kv]
        with open(self.log_path, "a") as log:
            if self.run_as is not None:
                os.chown(self.log_path, self.run_as.pw_uid, self.run_as.pw_gid)
            log.write(f"---- tokend test harness: starting on port {self.port}\n")
            log.flush()
            # Its own session: a Ctrl-C at the terminal reaches the command
            # under test, and the server is stopped after it, in order.
            self.proc = subprocess.Popen(args, cwd=self.dir, env=_clean_env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_set_pdeathsig, **self._as_server_user())
        self._wait_ready()

    def _wait_ready(self, timeout=30.0):
        pidfile = os.path.join(self.data, "postmaster.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"postgres exited during start-up:\n{self.log_tail()}")
            try:
                with open(pidfile) as f:
                    lines = f.read().splitlines()
                # Line 1 is the postmaster's pid (a killed one leaves its
                # file behind), line 8 its status: "ready" once it accepts
                # connections.
                if len(lines) >= 8 and lines[0].strip() == str(self.proc.pid) and lines[7].strip() == "ready":
                    return
            except OSError:
                pass
            time.sleep(0.02)
        self._kill_group()
        raise RuntimeError(f"postgres was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def new_database(self, name=None):
        """A fresh database owned by tokend (its public schema too); returns its URL."""
        if name is None:
            self._dbs += 1
            name = f"tokend_t{self._dbs}"
        self.psql(f'CREATE DATABASE "{name}" OWNER {ROLE};')
        self.psql(f"ALTER SCHEMA public OWNER TO {ROLE};", dbname=name)
        return self.url(name)

    def stop_fast(self, timeout=15.0):
        """A fast shutdown (what `pg_ctl stop -m fast` does: SIGINT to the
        postmaster); SIGKILL to its process group after `timeout`. Keeps the
        data directory: start_again() brings it back."""
        if self.proc is None:
            return
        try:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()
        self.proc = None

    def kill(self):
        """A crash: SIGKILL to the postmaster and every backend (its process
        group). start_again() then runs crash recovery."""
        if self.proc is not None:
            self._kill_group()
        self.proc = None
        # A killed postmaster leaves postmaster.pid; PostgreSQL checks whether
        # that pid still lives and ignores the file when it does not.

    def start_again(self):
        """Starts the server again on the same data directory and port."""
        if self.proc is not None:
            raise RuntimeError("the server is running")
        self._start_postmaster()

    def _kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self, keep_log=False):
        """Stops the server and removes its directory. With keep_log, the
        server log is first copied to a file of its own (returned, and
        printed to stderr)."""
        if self.dir is None:
            return None
        self.stop_fast()
        kept = None
        if keep_log and os.path.exists(self.log_path):
            fd, kept = tempfile.mkstemp(prefix="tokend-pg-log-", suffix=".log", dir=self.base)
            with os.fdopen(fd, "wb") as out, open(self.log_path, "rb") as f:
                shutil.copyfileobj(f, out)
            print(f"pgserver: the PostgreSQL server log is kept in {kept}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        atexit.unregister(self.stop)
        return kept

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop(keep_log=exc_type is not None)
        return False


class _Signalled(Exception):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def run(cmd):
    """Starts a server, runs cmd with TOKEND_TEST_PG_URL and
    TOKEND_TEST_PG_ADMIN set, stops the server; returns cmd's exit status
    (128 + N when a signal N ended it or us)."""
    child = None

    def on_signal(signum, frame):
        raise _Signalled(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    pg = PostgresServer()
    status = 1
    try:
        t0 = time.monotonic()
        pg.start()
        # The caller's environment without PG* (libpq would read them).
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["TOKEND_TEST_PG_URL"] = pg.url("tokend_test")
        env["TOKEND_TEST_PG_ADMIN"] = pg.admin_conninfo()
        print(f"pgserver: PostgreSQL on 127.0.0.1:{pg.port} and {pg.socket_dir}, started in "
              f"{time.monotonic() - t0:.2f} s", file=sys.stderr)
        child = subprocess.Popen(cmd, env=env)
        status = child.wait()
        if status < 0:
            status = 128 - status
    except _Signalled as e:
        status = 128 + e.signum
        if child is not None and child.poll() is None:
            # A terminal Ctrl-C reached it already; a SIGTERM to us did not.
            if e.signum != signal.SIGINT:
                child.send_signal(e.signum)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    except Exception as e:  # the server did not start
        print(f"pgserver: {e}", file=sys.stderr)
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # finish the clean-up
        t0 = time.monotonic()
        failed = status != 0
        if failed and pg.dir is not None:
            print(f"pgserver: {' '.join(cmd)} exited with {status}; last lines of the server log:\n"
                  f"{pg.log_tail(20)}", file=sys.stderr)
        pg.stop(keep_log=failed)
        if pg.port:
            print(f"pgserver: stopped in {time.monotonic() - t0:.2f} s", file=sys.stderr)
    return status


def main(argv):
    if len(argv) >= 2 and argv[1] == "--run" and len(argv) >= 3:
        return run(argv[2:])
    print("usage: pgserver.py --run CMD [ARGS...]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
