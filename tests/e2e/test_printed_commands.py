# SPDX-License-Identifier: Apache-2.0
"""The commands README.md, scripts/demo.sh and `tokend serve` print run as
printed, in the order printed, from the directory they say (issue 12
section 1).

Each flow runs in a temporary copy of the working directory's layout:

    T/build/release/tokend   a symbolic link to the binary under test ($TOKEND_BIN)
    T/scripts/demo.sh        a copy (run with TOKEND_DEMO_NO_BUILD=1: no apt, no build)
    T/tokend-data/           made by the commands themselves

and the commands are typed into a bash that starts in T, one at a time
(cd, export and TOKEN=... carry over to the next one, as in a terminal).
A command that runs until stopped (`tokend serve`) runs in the background;
every server started here is stopped here. The only changes made to a
printed command:

- README.md says 127.0.0.1:8443; the test listens on a free port instead
  (TOKEND_LISTEN in the environment of the shell, and the same port in the
  README's URLs), and its admin listener on a free port too
  (TOKEND_ADMIN_LISTEN), so that tests can run side by side;
- SECRET, which the text says to replace with the secret `tokend client
  add` printed, is replaced with it.

README's first two commands (`bash scripts/demo.sh`, `bash scripts/test.sh`)
are checked to come first and to exist, not run: the demo runs until
stopped, and the test script is this suite. The demo's server part runs
(scripts/demo.sh with TOKEND_DEMO_NO_BUILD=1).

Run by hand with

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_printed_commands.py
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

ROOT = tt.ROOT
README = os.path.join(ROOT, "README.md")
DEMO = os.path.join(ROOT, "scripts", "demo.sh")
COMMAND_TIMEOUT = 60
START_TIMEOUT = 60
README_PORT = "127.0.0.1:8443"
# files a server or an admin command makes in the directory it runs in:
# none may appear in the repository
STRAY = ("tokend.db", "tokend.db-wal", "tokend.db-shm", "tokend.master.key", "tokend-dev.crt", "tokend-dev.key")


# ---------------------------------------------------------------------------
# what the texts print

def readme_section(title):
    """The ```sh blocks of README.md's section `## title`, as lists of lines
    (the commands as printed, comments and all)."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    if title is None:
        body = text.split("\n## ", 1)[0]
    else:
        m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text, re.S | re.M)
        if not m:
            raise AssertionError("README.md has no section '## %s'" % title)
        body = m.group(1)
    blocks = re.findall(r"^```sh\n(.*?)^```", body, re.S | re.M)
    return [[ln for ln in b.splitlines() if ln.strip() and not ln.lstrip().startswith("#")] for b in blocks]


def try_it_commands(banner):
    """The commands under "Try it in another terminal" of a banner: the
    lines indented by two spaces after that line, up to the first blank line
    after them (lines in between that are not indented are headings)."""
    lines = banner.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("Try it in another terminal"):
            break
    else:
        raise AssertionError("no 'Try it in another terminal' in\n" + banner)
    cmds = []
    for ln in lines[i + 1:]:
        if not ln.strip():
            if cmds:
                break
            continue
        if ln.startswith("  ") and not ln.startswith("   "):
            cmds.append(ln[2:])
    return cmds


def secret_of(out):
    m = re.search(r"^client_secret:\s*(\S+)", out, re.M)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# a terminal

class Shell:
    """A bash that reads one command at a time, like a terminal: its working
    directory, exported variables and shell variables carry over."""

    def __init__(self, cwd, env, tag):
        self.dir = tempfile.mkdtemp(prefix="sh-%s-" % tag, dir=None)
        self.n = 0
        self.bg = []  # (pid, out path) of commands run in the background
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], stdin=subprocess.PIPE, cwd=cwd, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def _send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def _wait(self, path, timeout):
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if self.proc.poll() is not None:
                raise AssertionError("the shell exited (rc=%r)" % self.proc.returncode)
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %ds" % timeout)
            time.sleep(0.05)

    def run(self, cmd, timeout=COMMAND_TIMEOUT):
        """Runs `cmd` as typed; returns (rc, stdout, stderr)."""
        self.n += 1
        base = os.path.join(self.dir, str(self.n))
        # the newline before } ends a trailing # comment of the command
        self._send("{ %s\n} >%s.out 2>%s.err\necho $? >%s.tmp; mv %s.tmp %s.rc\n"
                   % (cmd, base, base, base, base, base))
        self._wait(base + ".rc", timeout)
        with open(base + ".rc") as f:
            rc = int(f.read().strip() or "-1")
        with open(base + ".out", encoding="utf-8", errors="replace") as f:
            out = f.read()
        with open(base + ".err", encoding="utf-8", errors="replace") as f:
            err = f.read()
        return rc, out, err

    def value(self, name):
        rc, out, _ = self.run('printf %%s "$%s"' % name)
        return out

    def start(self, cmd):
        """Runs a command that runs until stopped in the background (as
        `exec`, so that its pid is the server's); waits for its "listening
        on URL" line and returns (url, stdout so far)."""
        self.n += 1
        base = os.path.join(self.dir, str(self.n))
        self._send("{ exec %s\n} >%s.out 2>%s.err &\necho $! >%s.tmp; mv %s.tmp %s.pid\n"
                   % (cmd, base, base, base, base, base))
        self._wait(base + ".pid", 10)
        with open(base + ".pid") as f:
            pid = int(f.read().strip())
        self.bg.append(pid)
        return wait_listening(base + ".out", base + ".err", lambda: pid_alive(pid))

    def stop_background(self):
        for pid in self.bg:
            stop_pid(pid)
        self.bg = []

    def close(self):
        self.stop_background()
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_pid(pid):
    """SIGTERM, then SIGKILL after 10 s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # reaps it when it is our child
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def wait_listening(out_path, err_path, alive):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with open(out_path, encoding="utf-8", errors="replace") as f:
            out = f.read()
        m = re.search(r"listening on (\S+)", out)
        # the banner is complete once its last section is printed
        if m and "openid-configuration" in out:
            time.sleep(0.1)
            with open(out_path, encoding="utf-8", errors="replace") as f:
                return m.group(1), f.read()
        if not alive():
            break
        time.sleep(0.05)
    with open(err_path, encoding="utf-8", errors="replace") as f:
        err = f.read()
    raise AssertionError("the server did not start:\n--- stdout ---\n%s\n--- stderr ---\n%s" % (out, err))


# ---------------------------------------------------------------------------

class PrintedCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = tt.tokend_bin()
        cls.stray_before = {p for p in STRAY if os.path.exists(os.path.join(ROOT, p))}

    def setUp(self):
        self.shells = []
        self.procs = []
        self.td = tempfile.mkdtemp(prefix="tokend-printed-")
        self.addCleanup(shutil.rmtree, self.td, True)
        self.addCleanup(self.stop_all)

    def stop_all(self):
        for sh in self.shells:
            sh.close()
        for p in self.procs:
            if p.poll() is None:
                stop_pid(p.pid)
                p.wait(timeout=10)

    def layout(self, name):
        """T: a copy of the working directory's layout."""
        t = os.path.join(self.td, name)
        os.makedirs(os.path.join(t, "build", "release"))
        os.symlink(os.path.abspath(self.bin), os.path.join(t, "build", "release", "tokend"))
        os.makedirs(os.path.join(t, "scripts"))
        for f in ("demo.sh", "deps.sh"):
            shutil.copy(os.path.join(ROOT, "scripts", f), os.path.join(t, "scripts", f))
        return t

    def env(self, port):
        e = {k: v for k, v in os.environ.items() if not k.startswith("TOKEND_")}
        e["TOKEND_LISTEN"] = "127.0.0.1:%d" % port
        e["TOKEND_ADMIN_LISTEN"] = "127.0.0.1:0"  # the admin listener (/metrics) on a free port too
        return e

    def shell(self, cwd, env, tag):
        sh = Shell(cwd, env, tag)
        self.shells.append(sh)
        return sh

    def run_all(self, sh, cmds, secrets, what, port=None):
        """Runs `cmds` in `sh` as printed; SECRET replaced with the secret of
        the client the command names (from an earlier `client add`)."""
        for cmd in cmds:
            typed = cmd.replace(README_PORT, "127.0.0.1:%d" % port) if port else cmd
            m = re.search(r"'(\w[\w.~-]*):SECRET'", typed)
            if m:
                self.assertIn(m.group(1), secrets, "%s: no secret for %s yet: %s" % (what, m.group(1), cmd))
                typed = typed.replace("SECRET", secrets[m.group(1)])
            if re.match(r"tokend serve\b", cmd):
                sh.start(typed)
                continue
            rc, out, err = sh.run(typed)
            print("%s: rc %d: %s" % (what, rc, cmd), file=sys.stderr)
            with self.subTest(source=what, command=cmd):
                self.assertEqual(rc, 0, "%s: `%s` failed (rc %d)\n--- stdout ---\n%s\n--- stderr ---\n%s"
                                 % (what, cmd, rc, out[-3000:], err[-3000:]))
                self.check_output(sh, cmd, out, err)
            m = re.search(r"tokend client add (\S+)", cmd)
            if m and rc == 0:
                secrets[m.group(1)] = secret_of(out)
                self.assertTrue(secrets[m.group(1)], out)

    def check_output(self, sh, cmd, out, err):
        """What each kind of command must have done, beyond exiting 0."""
        if cmd.startswith("TOKEN="):
            self.assertRegex(sh.value("TOKEN"), r"^[\w-]+\.[\w-]+\.[\w-]+$", "TOKEN is not a JWT")
        elif cmd.startswith("curl -i") and "/auth?" in cmd:
            status = re.match(r"HTTP/[\d.]+ (\d+)", out)
            self.assertTrue(status, out[:500])
            want = "403" if "# 403" in cmd else "200"
            self.assertEqual(status.group(1), want, out[:1500])
        elif cmd.startswith("tokend inspect"):
            self.assertIn("VALID", out)
        elif "openid-configuration" in cmd:
            self.assertIn('"issuer"', out)

    # -- README -------------------------------------------------------------
    def test_readme_starts_with_the_demo_and_the_tests(self):
        first = readme_section(None)
        self.assertTrue(first, "README.md has no ```sh block before its first section")
        cmds = [re.sub(r"\s+#.*", "", c).strip() for c in first[0]]
        self.assertEqual(cmds[:2], ["bash scripts/demo.sh", "bash scripts/test.sh"])
        for s in ("demo.sh", "test.sh"):
            self.assertTrue(os.path.isfile(os.path.join(ROOT, "scripts", s)))

    def test_readme_run_the_server(self):
        blocks = readme_section("Run the server")
        self.assertEqual(len(blocks), 2, "a block for the server's terminal and one for the other: %r" % blocks)
        server_block, client_block = blocks
        self.assertTrue(any(re.match(r"tokend serve\b", c) for c in server_block), server_block)
        self.assertTrue(any("build/release" in c and "PATH" in c for c in server_block), "tokend is not put on PATH")
        t = self.layout("readme")
        port = st.free_port()
        env = self.env(port)
        secrets = {}
        # the server's terminal, then the other one
        term1 = self.shell(t, env, "server")
        self.run_all(term1, server_block, secrets, "README (server)", port)
        term2 = self.shell(t, env, "client")
        self.run_all(term2, client_block, secrets, "README (other terminal)", port)
        # one store, the demo's: everything is in tokend-data, nothing in T
        data = os.path.join(t, "tokend-data")
        for f in ("tokend.db", "tokend.master.key", "tokend-dev.crt"):
            self.assertTrue(os.path.isfile(os.path.join(data, f)), f)
            self.assertFalse(os.path.exists(os.path.join(t, f)), "a second store: " + f)

        # the banner of a server started again in the same place: the client
        # web exists now, so the banner uses it instead of adding it
        term1.stop_background()
        url, banner = term1.start([c for c in server_block if re.match(r"tokend serve\b", c)][0])
        self.assertIn(":%d" % port, url)
        cmds = try_it_commands(banner)
        self.assertFalse([c for c in cmds if "client add web" in c], banner)
        term3 = self.shell(self.td, env, "banner")  # anywhere: the banner says where
        self.run_all(term3, cmds, secrets, "serve banner (web exists)")

    # -- scripts/demo.sh and the serve banner under it ------------------------
    def start_demo(self, t, port):
        out_path = os.path.join(self.td, "demo-%d.out" % len(self.procs))
        err_path = out_path[:-4] + ".err"
        env = self.env(port)
        env["TOKEND_DEMO_NO_BUILD"] = "1"
        with open(out_path, "wb") as o, open(err_path, "wb") as e:
            p = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=t, env=env, stdin=subprocess.DEVNULL,
                                 stdout=o, stderr=e)
        self.procs.append(p)
        _, banner = wait_listening(out_path, err_path, lambda: p.poll() is None)
        return p, banner

    def test_demo_and_serve_banners(self):
        t = self.layout("demo")
        port = st.free_port()
        p, banner = self.start_demo(t, port)
        # the demo's commands, then the server's, as printed, from a shell
        # that starts in the repository's top directory
        demo_part, serve_part = banner.split("tokend serve: listening on", 1)
        demo_cmds = try_it_commands(demo_part)
        serve_cmds = try_it_commands(serve_part)
        self.assertEqual(len(demo_cmds), 4, demo_part)
        self.assertNotIn("tokend-data/tokend-dev.crt", banner)  # one way to name the certificate
        # the server's banner adds a client that does not exist
        adds = [c for c in serve_cmds if "client add" in c]
        self.assertEqual(len(adds), 1, serve_cmds)
        self.assertNotIn("client add demo", adds[0])
        self.assertTrue([c for c in serve_cmds if c.startswith("tokend inspect") and "--cacert" in c], serve_cmds)
        env = self.env(port)
        secrets = {}
        sh = self.shell(t, env, "demo")
        self.run_all(sh, demo_cmds, secrets, "demo banner")
        sh2 = self.shell(self.td, env, "serve")
        self.run_all(sh2, serve_cmds, secrets, "serve banner under the demo")
        data = os.path.join(t, "tokend-data")
        self.assertTrue(os.path.isfile(os.path.join(data, "tokend.db")))
        self.assertFalse(os.path.exists(os.path.join(t, "tokend.db")))

        # the demo again: its client exists, and nothing tells the user to add it
        stop_pid(p.pid)
        p.wait(timeout=10)
        p2, banner2 = self.start_demo(t, port)
        self.assertIn("The demo client exists", banner2)
        self.assertNotIn("client add demo", banner2)
        self.assertNotIn("client add web", banner2)  # made above: the banner uses it
        sh3 = self.shell(self.td, env, "again")
        self.run_all(sh3, try_it_commands(banner2.split("tokend serve: listening on", 1)[1]), secrets,
                     "serve banner, second demo run")

    # -- the repository stays clean ------------------------------------------
    def test_gitignore_keeps_secrets_out(self):
        if shutil.which("git") is None or not os.path.exists(os.path.join(ROOT, ".git")):
            raise unittest.SkipTest("not a git checkout")
        names = ["tokend.db", "tokend.db-wal", "tokend.db-shm", "tokend.master.key", "prod.master.key",
                 "tokend-dev.crt", "tokend-dev.key", "tokend-data/tokend.db", "sub/dir/tokend.master.key"]
        r = subprocess.run(["git", "-C", ROOT, "check-ignore", "--no-index"] + names, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        self.assertEqual(sorted(r.stdout.split()), sorted(names), r.stderr)

    @classmethod
    def tearDownClass(cls):
        stray = {p for p in STRAY if os.path.exists(os.path.join(ROOT, p))} - cls.stray_before
        if stray:
            raise AssertionError("the test left %s in the repository" % sorted(stray))


if __name__ == "__main__":
    unittest.main()
