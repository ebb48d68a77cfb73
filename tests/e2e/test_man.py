# SPDX-License-Identifier: Apache-2.0
"""The man pages (man/*.scd, built by cmake/man.cmake into <build>/man/):
groff finds nothing to warn about, and they do not drift from the program.

- Every page renders with `man --warnings` and prints nothing on stderr.
- Every command of `tokend --help` is in tokend(1); every flag of
  `tokend <command> --help` is in the page of that command (tokend-inspect(1),
  tokend-serve(8), else tokend(1)), and every flag a page names is one the
  program has (no removed flag stays documented).
- Every setting (each option line of `tokend serve --help`, and each key of an
  [issuer] section in src/cli/settings.c) is in tokend.conf(5), with its
  TOKEND_* variable; every TOKEND_* variable is in tokend-serve(8).
- Every public function (TK_API in include/tokend/*.h) is in libtokend(3).
- Every reason code of docs/errors.md is in tokend-inspect(1).

The pages are looked for in $TOKEND_MAN_DIR, else <dir of TOKEND_BIN>/man.
Run by hand: TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_man.py
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PAGES = ["tokend.1", "tokend-inspect.1", "tokend-serve.8", "tokend.conf.5", "libtokend.3"]
COMMANDS_PAGE = {"inspect": "tokend-inspect.1", "serve": "tokend-serve.8"}
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")


def man_dir():
    d = os.environ.get("TOKEND_MAN_DIR")
    if not d:
        d = os.path.join(os.path.dirname(os.path.abspath(tt.tokend_bin())), "man")
    return d


def source(page):
    """A page's scdoc source with the escapes and bold markers taken out."""
    with open(os.path.join(ROOT, "man", page + ".scd"), encoding="utf-8") as f:
        return f.read().replace("\\", "").replace("*", "")


def run_help(*args):
    r = subprocess.run([tt.tokend_bin()] + list(args) + ["--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout


def commands():
    text = run_help()
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [ln.split()[0] for ln in block.splitlines() if ln.strip()]


def has_word(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


class ManPages(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = man_dir()
        missing = [p for p in PAGES if not os.path.exists(os.path.join(cls.dir, p))]
        if missing:
            raise AssertionError("%s: no %s (build the 'man' target; scdoc from scripts/deps.sh)"
                                 % (cls.dir, ", ".join(missing)))
        cls.cmds = commands()
        cls.help = {c: run_help(c) for c in cls.cmds}

    def test_every_source_is_built_and_current(self):
        srcs = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ROOT, "man", "*.scd")))
        self.assertEqual(srcs, sorted(PAGES))
        for p in PAGES:
            built = os.path.getmtime(os.path.join(self.dir, p))
            self.assertGreaterEqual(built, os.path.getmtime(os.path.join(ROOT, "man", p + ".scd")),
                                    "%s is older than its source: rebuild" % p)

    def test_man_warnings(self):
        if not shutil.which("man"):
            self.fail("man (man-db) is not installed: scripts/deps.sh")
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        for p in PAGES:
            with self.subTest(page=p):
                r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", os.path.join(self.dir, p)],
                                   capture_output=True, text=True, env=env, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "", "groff warns about %s" % p)
                self.assertIn("NAME", r.stdout)
                # .nh after .TH: no flag or variable is hyphenated across lines
                self.assertNotIn("\u2010\n", r.stdout, p)

    def test_every_command_in_tokend_1(self):
        text = source("tokend.1")
        commands_section = text.split("# COMMANDS", 1)[1].split("\n# ", 1)[0]
        for c in self.cmds:
            self.assertRegex(commands_section, r"(?m)^" + re.escape(c) + r"\b", c)

    def test_every_flag_documented(self):
        for c in self.cmds:
            page = COMMANDS_PAGE.get(c, "tokend.1")
            text = source(page)
            for f in sorted(set(FLAG.findall(self.help[c]))):
                with self.subTest(command=c, flag=f):
                    self.assertTrue(has_word(text, "--" + f), "--%s of tokend %s is not in %s" % (f, c, page))

    def test_no_flag_documented_that_does_not_exist(self):
        known = {"help", "version"}
        for c in self.cmds:
            known |= set(FLAG.findall(self.help[c]))
        for page in PAGES:
            for f in sorted(set(FLAG.findall(source(page)))):
                with self.subTest(page=page, flag=f):
                    self.assertIn(f, known, "%s documents --%s, which tokend does not have" % (page, f))

    def test_every_setting_in_tokend_conf_5(self):
        conf = source("tokend.conf.5")
        serve = source("tokend-serve.8")
        # the settings are the option lines of --help (--print-config, named in
        # its prose, is an action, not a setting)
        settings = [f for f in re.findall(r"(?m)^  --([a-z][a-z0-9-]*)", self.help["serve"]) if f != "config"]
        self.assertGreater(len(settings), 30)
        for f in settings:
            with self.subTest(setting=f):
                self.assertRegex(conf, r"(?m)^" + re.escape(f) + r" = ", "%s is not a key in tokend.conf(5)" % f)
        for env in sorted(set(re.findall(r"\bTOKEND_[A-Z_]+\b", self.help["serve"]))):
            with self.subTest(env=env):
                self.assertTrue(has_word(conf, env), env)
                self.assertTrue(has_word(serve, env), env)
        with open(os.path.join(ROOT, "src", "cli", "settings.c"), encoding="utf-8") as f:
            table = f.read().split("cli_issuer_keys[ISK_COUNT_] = {", 1)[1].split("};", 1)[0]
        keys = re.findall(r'= "([a-z-]+)"', table)
        self.assertGreater(len(keys), 8)
        section = conf.split("# ISSUER SECTIONS", 1)[1]
        for k in keys:
            with self.subTest(issuer_key=k):
                self.assertRegex(section, r"(?m)^" + re.escape(k) + r" = ", k)

    def test_every_public_function_in_libtokend_3(self):
        text = source("libtokend.3")
        funcs = []
        for h in sorted(glob.glob(os.path.join(ROOT, "include", "tokend", "*.h"))):
            with open(h, encoding="utf-8") as f:
                decls = re.findall(r"TK_API[^;]*?;", f.read(), re.S)
            for d in decls:
                m = re.search(r"\b(tk_[a-z0-9_]+)\s*\(", d)
                if m:
                    funcs.append(m.group(1))
        self.assertGreater(len(funcs), 80)
        for fn in funcs:
            with self.subTest(function=fn):
                self.assertTrue(has_word(text, fn), "%s is not in libtokend(3)" % fn)
        for word in ("THREAD SAFETY", "OWNERSHIP", "struct_size", "tk_version"):
            self.assertIn(word, text)

    def test_every_reason_code_in_tokend_inspect_1(self):
        with open(os.path.join(ROOT, "docs", "errors.md"), encoding="utf-8") as f:
            codes = re.findall(r"(?m)^## `([a-z_]+)`", f.read())
        self.assertGreater(len(codes), 20)
        text = source("tokend-inspect.1").split("# REASON CODES", 1)[1]
        for c in codes:
            with self.subTest(code=c):
                self.assertRegex(text, r"(?m)^" + re.escape(c) + r"$", c)


if __name__ == "__main__":
    tt.main()
