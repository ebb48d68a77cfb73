# SPDX-License-Identifier: Apache-2.0
"""Shell completion (completions/tokend.bash, completions/_tokend for zsh)
against the program: for every command, the options offered after "--" are
exactly the options of `tokend <command> --help`; the commands are those of
`tokend --help`; sub-commands and fixed values (algorithms, --explain, ...)
are offered where they belong.

bash: the script is sourced and _tokend called with COMP_WORDS/COMP_CWORD.
zsh: an interactive zsh in a pseudo-terminal (zsh/zpty) completes a line,
with compadd wrapped to print what it is given (tests/e2e/zsh_capture.zsh).

Run by hand: TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_completion.py
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokendtest as tt  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BASH = os.path.join(ROOT, "completions", "tokend.bash")
ZSH_DIR = os.path.join(ROOT, "completions")
CAPTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zsh_capture.zsh")
FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
# Flags a command's --help names in its prose but does not take itself
# (--data-dir's help names --dev's certificate; the admin commands refuse --dev).
PROSE_ONLY = {"user": {"listen", "consent", "dev"}, "client": {"dev"}, "keys": {"dev"}, "revoke": {"dev"}}
ALGS = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
        "EdDSA"}


def run_help(*args):
    r = subprocess.run([tt.tokend_bin()] + list(args) + ["--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout


def commands():
    block = run_help().split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [ln.split()[0] for ln in block.splitlines() if ln.strip()]


def options_of(cmd):
    flags = set(FLAG.findall(run_help(cmd))) - PROSE_ONLY.get(cmd, set())
    return {"--" + f for f in flags} | {"--help"}


def bash_complete(*words):
    """What _tokend offers for the command line `words` (the last is being typed)."""
    script = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _tokend; printf "%s\\n" "${COMPREPLY[@]}"'
    r = subprocess.run(["bash", "--norc", "-c", script, "bash", BASH] + list(words), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stderr == "", r
    return set(x for x in r.stdout.split("\n") if x)


def zsh_complete(line):
    r = subprocess.run(["zsh", "-f", CAPTURE, ZSH_DIR, line], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return set(x.strip() for x in r.stdout.split("\n") if x.strip())


class Completion(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cmds = commands()
        cls.opts = {c: options_of(c) for c in cls.cmds}

    def test_bash_commands(self):
        self.assertEqual(bash_complete("tokend", ""), set(self.cmds) | {"--help", "--version"})
        self.assertEqual(bash_complete("tokend", "in"), {"inspect"})
        self.assertEqual(bash_complete("tokend", "s"), {"sign", "serve"})

    def test_bash_options_of_every_command(self):
        for c in self.cmds:
            with self.subTest(command=c):
                self.assertEqual(bash_complete("tokend", c, "--"), self.opts[c])
        self.assertEqual(bash_complete("tokend", "inspect", "--j"), {"--jwks", "--json"})
        # after a flag without value, options again
        self.assertEqual(bash_complete("tokend", "inspect", "--json", "--pro"), {"--profile"})

    def test_bash_values(self):
        self.assertEqual(bash_complete("tokend", "sign", "--alg", ""), ALGS)
        self.assertEqual(bash_complete("tokend", "keygen", "--alg", "E"), {"ES256", "ES384", "ES512", "EdDSA"})
        self.assertEqual(bash_complete("tokend", "serve", "--explain", ""), {"full", "bare"})
        self.assertEqual(bash_complete("tokend", "serve", "--forwarded-header", ""), {"x-forwarded-for", "forwarded"})
        self.assertEqual(bash_complete("tokend", "inspect", "--profile", ""), {"tokend"})
        self.assertEqual(bash_complete("tokend", "user", "set", "bob", "--email-verified", ""), {"yes", "no"})
        # a free-form value: nothing offered (not the options)
        self.assertEqual(bash_complete("tokend", "inspect", "--aud", ""), set())
        # files
        self.assertIn(os.path.join(ROOT, "completions", "tokend.bash"),
                      bash_complete("tokend", "inspect", "--key", os.path.join(ROOT, "completions", "tok")))

    def test_bash_subcommands(self):
        self.assertEqual(bash_complete("tokend", "client", ""), {"add", "list", "show", "disable", "enable", "remove"})
        self.assertEqual(bash_complete("tokend", "keys", ""), {"list", "rotate"})
        self.assertEqual(bash_complete("tokend", "user", "pa"), {"passwd"})
        self.assertEqual(bash_complete("tokend", "revoke", ""), set())

    def test_zsh(self):
        if not shutil.which("zsh"):
            self.skipTest("zsh is not installed (scripts/deps.sh installs it)")
        r = subprocess.run(["zsh", "-n", os.path.join(ZSH_DIR, "_tokend")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(set(self.cmds) <= zsh_complete("tokend "), zsh_complete("tokend "))
        for c in self.cmds:
            with self.subTest(command=c):
                got = {x for x in zsh_complete("tokend %s --" % c) if x.startswith("--")}
                self.assertEqual(got, self.opts[c])
        self.assertEqual(zsh_complete("tokend sign --alg="), ALGS)
        self.assertEqual(zsh_complete("tokend serve --explain="), {"full", "bare"})
        self.assertEqual(zsh_complete("tokend keys "), {"list", "rotate"})


if __name__ == "__main__":
    tt.main()
