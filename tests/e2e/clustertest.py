# SPDX-License-Identifier: Apache-2.0
"""Several `tokend serve` on one PostgreSQL, behind a real nginx (issue 9
section 4): the fixture of test_cluster*.py. Builds on servetest and
pgserver (changes neither):

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import clustertest as ct
    st = ct.st

    cl = ct.Cluster(n=3, settings={"TOKEND_MAX_STALE": "3s"}).start()
    try:
        a, b, c = cl.instances          # Instance: a ServerFixture of its own
        cid, secret = a.add_client("svc", "orders:read", "orders-api")
        tok = cl.front.token(cid, secret)          # through nginx
        b.auth(tok, aud="orders-api").status_code  # directly at B
    finally:
        cl.close()

What it starts (everything on loopback, stopped by close(), also when
start() fails half way):

 - PostgreSQL (pgserver.PostgresServer) and a fresh database;
 - a master key file of its own (64 hex digits, 0600), given to every
   instance and every admin command, with the same --issuer and
   --public-url (nginx's URL), --jwks-max-age, --trusted-proxy 127.0.0.1
   (nginx connects from there; test clients use other 127.x addresses);
 - n instances, plain HTTP (--insecure-http) on 127.0.0.1 ports chosen
   here, each with its own directory and access log (stderr). The first
   one starts alone (it creates the schema and the key ring), the others
   together;
 - nginx (optional) with a round-robin upstream of the instances
   (max_fails=2 fail_timeout=5s, keepalive 32, proxy_next_upstream error
   timeout as in docs/operations.md), an access log that names
   the upstream of every request, and an auth_request location /api/.

Instance.url is the instance's own address, although its banner prints
the public URL (nginx): ServerFixture.start() takes the URL from the
banner, Instance.start() puts the instance's own back.
"""

import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgserver  # noqa: E402
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

AUD = "orders-api"
SCOPE = "orders:read"


class Instance(st.ServerFixture):
    """One `tokend serve` of a cluster (plain HTTP on a port of its own)."""

    def __init__(self, cluster, name, port):
        super().__init__(https=False, settings=cluster.settings, extra=cluster.extra,
                         listen="127.0.0.1:%d" % port, name=name)
        self.cluster = cluster
        self.own_port = port
        self.logs = []  # the stderr file of every start: the access log across restarts

    def start(self, extra=(), env=None, listen=None):
        super().start(extra=extra, env=env, listen="127.0.0.1:%d" % self.own_port)
        # the banner names the public URL (nginx); this instance is here:
        self.port = self.own_port
        self.url = "http://127.0.0.1:%d" % self.own_port
        self.listen = "127.0.0.1:%d" % self.own_port
        self.logs.append(self.stderr_path)
        return self

    def kill(self):
        """SIGKILL (and forget the kept-alive connections to it)."""
        for s in self._sessions.values():
            s.close()
        self._sessions = {}
        super().kill()

    def all_log_lines(self, settle=0.4):
        """The JSON lines of the access logs of every start of this instance."""
        time.sleep(settle)
        out = []
        for p in self.logs:
            for line in st._read(p).splitlines():
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut by kill -9 (must not happen; test_cluster checks)
        return out

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self):
        return "<%s %s>" % (self.name, self.url)


class Endpoint:
    """A base URL that is not a server of ours to start (nginx in front):
    the HTTP helpers of ServerFixture (get, post, token, auth, revoke,
    introspect, metrics) on it."""

    https = False
    verify = True

    def __init__(self, url, name="front"):
        self.url = url
        self.name = name
        self._sessions = {}
        self.sensitive = set()

    session = st.ServerFixture.session
    get = st.ServerFixture.get
    post = st.ServerFixture.post
    request = st.ServerFixture.request
    token_response = st.ServerFixture.token_response
    token = st.ServerFixture.token
    auth = st.ServerFixture.auth
    introspect = st.ServerFixture.introspect
    revoke = st.ServerFixture.revoke

    def close(self):
        for s in self._sessions.values():
            s.close()
        self._sessions = {}

    def __repr__(self):
        return "<%s %s>" % (self.name, self.url)


NGINX_CONF = r"""
%(user)s
worker_processes 1;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;

events { worker_connections 1024; }

http {
    log_format cluster '$msec $remote_addr "$request_method $uri" $status '
                       'up=$upstream_addr ust=$upstream_status rt=$request_time';
    access_log %(dir)s/access.log cluster;
    client_body_temp_path %(dir)s/tmp/body;
    proxy_temp_path %(dir)s/tmp/proxy;
    fastcgi_temp_path %(dir)s/tmp/fastcgi;
    uwsgi_temp_path %(dir)s/tmp/uwsgi;
    scgi_temp_path %(dir)s/tmp/scgi;
    default_type application/json;

    # docs/operations.md, "nginx in front"
    upstream tokend {
%(servers)s
        keepalive 32;
    }

    server {
        listen 127.0.0.1:%(port)d;
        server_name localhost;

        location / {
            proxy_pass http://tokend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout;
        }

        # a protected resource (docs/nginx.md): a static file behind auth_request
        auth_request_set $auth_subject $upstream_http_x_auth_subject;
        auth_request_set $auth_reason $upstream_http_x_auth_reason;
        location /api/ {
            auth_request /_auth;
            error_page 401 = @unauth;
            error_page 403 = @forbidden;
            alias %(dir)s/www/;
            add_header X-Auth-Subject $auth_subject always;
        }
        location = /_auth {
            internal;
            proxy_pass http://tokend/auth?aud=%(aud)s&scope=%(scope)s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_next_upstream error timeout;
        }
        location @unauth {
            add_header X-Auth-Reason $auth_reason always;
            return 401;
        }
        location @forbidden {
            add_header X-Auth-Reason $auth_reason always;
            return 403;
        }
    }
}
"""

_NGX_LINE = re.compile(r'^(\S+) (\S+) "(\S+) (\S+)" (\d{3}) up=(.*?) ust=(.*?) rt=(\S+)$')


class Cluster:
    """PostgreSQL + n tokend instances (+ nginx). See the module's text.

    settings: more TOKEND_* for every instance and admin command (e.g.
    TOKEND_MAX_STALE, TOKEND_LEEWAY); extra: more flags for serve only."""

    def __init__(self, n=3, settings=None, extra=(), nginx=True, jwks_max_age="2s"):
        self.n = n
        self.want_nginx = nginx
        self.user_settings = dict(settings or {})
        self.extra = list(extra)
        self.jwks_max_age = jwks_max_age
        self.pg = None
        self.td = None
        self.instances = []
        self.nginx = None
        self.front = None
        self.settings = None
        self.store_url = None
        self.timings = {}

    # -- life cycle -------------------------------------------------------------
    def start(self):
        try:
            self._start()
        except BaseException:
            self.close(check=False)
            raise
        return self

    def _start(self):
        t0 = time.monotonic()
        self.td = tempfile.mkdtemp(prefix="tokend-cluster-")
        self.pg = pgserver.PostgresServer()
        self.pg.start()
        self.store_url = self.pg.new_database("tokend_cluster")
        self.timings["postgres"] = time.monotonic() - t0
        key = os.path.join(self.td, "master.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        self.nginx_port = st.free_port()
        self.public_url = "http://127.0.0.1:%d" % self.nginx_port
        self.settings = {
            "TOKEND_STORE": self.store_url,
            "TOKEND_MASTER_KEY_FILE": key,
            "TOKEND_ISSUER": self.public_url,
            "TOKEND_PUBLIC_URL": self.public_url,
            "TOKEND_JWKS_MAX_AGE": self.jwks_max_age,
            "TOKEND_TRUSTED_PROXY": "127.0.0.1",
            "TOKEND_LOGIN_WORKERS": "1",
        }
        self.settings.update(self.user_settings)
        ports = set()
        while len(ports) < self.n:
            ports.add(st.free_port())
        names = "ABCDEFGH"
        self.instances = [Instance(self, names[i], p) for i, p in enumerate(sorted(ports))]
        t1 = time.monotonic()
        self.instances[0].start()  # schema and key ring, alone
        errors = []

        def start_one(inst):
            try:
                inst.start()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=start_one, args=(i,)) for i in self.instances[1:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        self.timings["instances"] = time.monotonic() - t1
        if self.want_nginx:
            self._start_nginx()
        self.front = Endpoint(self.public_url if self.want_nginx else self.instances[0].url)

    def _start_nginx(self):
        d = os.path.join(self.td, "nginx")
        os.makedirs(os.path.join(d, "www"), exist_ok=True)
        with open(os.path.join(d, "www", "orders"), "w") as f:
            f.write('{"orders":[{"id":1,"item":"tea"}]}\n')
        servers = "\n".join("        server 127.0.0.1:%d max_fails=2 fail_timeout=5s;" % i.own_port
                            for i in self.instances)
        conf = NGINX_CONF % {"user": "user root;" if os.geteuid() == 0 else "", "dir": d,
                             "port": self.nginx_port, "servers": servers, "aud": AUD, "scope": SCOPE}
        self.nginx = st.Nginx(d, conf, self.nginx_port).start()

    def close(self, check=True):
        """Stops nginx, every instance (SIGTERM; with check, raises when one
        did not exit 0), PostgreSQL; removes the directories."""
        problems = []
        if self.front is not None:
            self.front.close()
        if self.nginx is not None:
            try:
                self.nginx.stop()
            except Exception as e:  # noqa: BLE001
                problems.append("nginx: %r" % e)
            self.nginx = None
        for inst in self.instances:
            try:
                inst.close(check=check)
            except AssertionError as e:
                problems.append(str(e))
        self.instances = []
        if self.pg is not None:
            self.pg.stop(keep_log=bool(problems))
            self.pg = None
        if self.td is not None:
            shutil.rmtree(self.td, ignore_errors=True)
            self.td = None
        if problems and check:
            raise AssertionError("\n".join(problems))

    # -- helpers ----------------------------------------------------------------
    def admin(self, *args, **kw):
        """An admin command with the cluster's settings."""
        return self.instances[0].admin(*args, **kw)

    def by_port(self, port):
        for i in self.instances:
            if i.own_port == port:
                return i
        return None

    def nginx_log(self):
        """nginx's access log: [{t, ip, method, uri, status, upstream: [ports], ustatus, rt}]."""
        if self.nginx is None:
            return []
        out = []
        for line in st._read(os.path.join(self.nginx.dir, "access.log")).splitlines():
            m = _NGX_LINE.match(line)
            if not m:
                continue
            ups = [int(p) for p in re.findall(r"127\.\d+\.\d+\.\d+:(\d+)", m.group(6))]
            out.append({"t": float(m.group(1)), "ip": m.group(2), "method": m.group(3), "uri": m.group(4),
                        "status": int(m.group(5)), "upstream": ups, "ustatus": m.group(7),
                        "rt": m.group(8)})
        return out

    def jwks(self, inst):
        r = inst.get("/.well-known/jwks.json")
        if r.status_code != 200:
            raise AssertionError("%s JWKS: %d %s" % (inst.name, r.status_code, r.text))
        return r.json()

    def keys(self):
        """`tokend keys list --json`, parsed."""
        r = self.admin("keys", "list", "--json")
        if r.rc != 0:
            raise AssertionError("keys list failed:\n%r" % r)
        return json.loads(r.out)


class CommitCutter:
    """A TCP relay between tokend and PostgreSQL that can lose one COMMIT's
    answer: once armed, the next connection to send `COMMIT` (a simple
    Query message, as postgres.c's tx_end sends it) has the message passed
    on, the server's answer dropped, and, `hold` s later (the server has
    committed by then), both sides closed. tokend sees the connection die
    while it waits for the result of a COMMIT that did happen: the
    ambiguous commit of a database crash or a network cut at that moment.

        cut = CommitCutter(pg.port).start()   # point an instance at cut.port
        cut.arm(); ...request...; cut.fired.wait(5)
        cut.close()
    """

    COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"

    def __init__(self, target_port, hold=0.3):
        import socket
        self.target = ("127.0.0.1", target_port)
        self.hold = hold
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.armed = threading.Event()
        self.fired = threading.Event()
        self.cuts = 0
        self.lock = threading.Lock()
        self.closing = False
        self.conns = []
        self.swallow = False
        self.refusing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def arm(self, swallow=False):
        """Cut the next COMMIT. swallow=True: the COMMIT itself never reaches
        the server, whose session stays open, idle inside the transaction
        (a network cut before the message arrived): tokend must learn that
        nothing was committed."""
        self.swallow = swallow
        self.fired.clear()
        self.armed.set()

    def refuse(self, on):
        """While on, every new connection is closed at once (the database
        cannot be reached again)."""
        self.refusing = on

    def disarm(self):
        self.armed.clear()

    def _accept(self):
        import socket
        while not self.closing:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.refusing:
                self._close(c)
                continue
            try:
                srv = socket.create_connection(self.target, timeout=10)
                srv.settimeout(None)
            except OSError:
                c.close()
                continue
            state = {"mute": False}
            with self.lock:
                self.conns.append((c, srv))
            threading.Thread(target=self._up, args=(c, srv, state), daemon=True).start()
            threading.Thread(target=self._down, args=(srv, c, state), daemon=True).start()

    def _up(self, c, srv, state):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                if self.armed.is_set() and self.COMMIT in data:
                    with self.lock:
                        mine = self.armed.is_set()
                        self.armed.clear()
                    if mine:
                        state["mute"] = True  # the server's answer never reaches tokend
                        if self.swallow:
                            state["keep_server"] = True
                        else:
                            srv.sendall(data)
                            time.sleep(self.hold)
                        self.cuts += 1
                        break
                srv.sendall(data)
        except OSError:
            pass
        finally:
            if state.get("keep_server"):
                self._close(c)  # the server side stays open until its session is ended
            else:
                self._close(c, srv)
            if state["mute"]:
                self.fired.set()

    def _down(self, srv, c, state):
        try:
            while True:
                data = srv.recv(65536)
                if not data:
                    break
                if state["mute"]:
                    continue
                c.sendall(data)
        except OSError:
            pass
        finally:
            self._close(c, srv)

    @staticmethod
    def _close(*socks):
        import socket
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                x.close()
            except OSError:
                pass

    def close(self):
        self.closing = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for c, srv in conns:
            self._close(c, srv)


class Poller:
    """A thread that asks `fn()` (a callable returning a status, or raising)
    as fast as it can (every `every` s), recording (monotonic time, status)
    until stop() or `seconds` pass."""

    def __init__(self, fn, seconds=10.0, every=0.0):
        self.fn = fn
        self.seconds = seconds
        self.every = every
        self.results = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        self.thread.join(30)
        return self

    def _run(self):
        t_end = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < t_end:
            t0 = time.monotonic()
            try:
                s = self.fn()
            except Exception as e:  # noqa: BLE001 - recorded
                s = type(e).__name__
            self.results.append((time.monotonic(), s))
            if self.every:
                time.sleep(max(0.0, self.every - (time.monotonic() - t0)))

    def first(self, status, after=0.0):
        """The monotonic time at which `status` was first seen (after `after`)."""
        for t, s in self.results:
            if t >= after and s == status:
                return t
        return None


def ms(x):
    return "%.1f ms" % (x * 1000.0)


def table(headers, rows):
    """A plain-text table (for the closing note)."""
    cols = [headers] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    line = "+-" + "-+-".join("-" * x for x in w) + "-+"
    out = [line, "| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(headers)) + " |", line]
    for r in cols[1:]:
        out.append("| " + " | ".join(c.ljust(w[i]) for i, c in enumerate(r)) + " |")
    out.append(line)
    return "\n".join(out)


__all__ = ["Cluster", "Instance", "Endpoint", "Poller", "CommitCutter", "st", "tt", "pgserver", "AUD", "SCOPE", "table", "ms"]
