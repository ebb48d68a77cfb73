# SPDX-License-Identifier: Apache-2.0
"""Disk full under the store (issue 8 section 5; SECURITY.md rules 19 and
20): while the store cannot write, grants answer 503 and leave every
credential as it was; nothing claims a revocation that was not stored; once
space is back, every sign-in goes on from the token its client holds.

Set-up: the store (tokend.db and its -wal and -shm files), and nothing
else, on a 4 MiB tmpfs (mounted as root; not root: the file re-runs itself
under `unshare --user --map-root-user --mount`, or the test skips saying
why). The server's certificate, master key and logs stay in a normal
directory. One `tokend serve --dev`, FAMILIES sign-ins of one user, a
confidential client for client_credentials. One family (the "reused" one)
rotates its first refresh token and waits more than the 2-second grace, so
that presenting that first token again is a reuse. Then a file fills the
tmpfs to the last byte.

What this measures and asserts while the disk is full:

  SQLite in WAL mode appends each commit's pages to the -wal file and only
  reuses the file's space after a checkpoint resets it (every 1000 pages by
  default). This server started on a fresh store minutes ago and wrote far
  less than that, so no reset has happened: every commit needs the file to
  grow, and cannot. Measured here: every write fails, and the assertions
  below that say "503" rely on that (a server whose WAL had been reset can
  still fit a few small commits into it; the invariants marked ALWAYS hold
  either way).

  - /readyz: 503 "the store cannot commit a write" (it commits a probe row,
    at most once a second); it is 200 again within seconds of space coming
    back;
  - refresh of each family, several times: ALWAYS 200 or 503
    temporarily_unavailable, never 400 invalid_grant, never another 5xx;
    measured: all 503. A 200's new token is then what the client holds;
  - client_credentials (writes nothing): ALWAYS 200 or 503; measured 200;
  - /auth with the access tokens: 200 (validation writes nothing);
  - the reuse of the rotated token (> 2 s old): 503, and the answer does
    not say "revoked" (rule 20: the revocation, session end and audit event
    could not be stored); ALWAYS: it says "revoked" only if the store has
    the revocation;
  - POST /oauth/revoke of another family's refresh token: ALWAYS 200 or
    503; measured 503; a 200 must be a stored revocation;
  - a new sign-in: the form POST answers 303 or 503, never another 5xx.

Then the filler is deleted, and:

  - every family continues from the token it holds: the last one that got a
    200 (a 503 left the presented token unspent): 200, twice in a row,
    including the family whose revocation got 503 (nothing was revoked);
  - the store: every family is one chain with one unused head, which is
    the token the client holds (faulttest.check_families): no family lost,
    none forked;
  - the reuse, retried, now revokes: 400 invalid_grant saying "revoked";
    the revocation survives a restart (SIGTERM, exit 0, start on the same
    store): the family's access token gets 401 `revoked` at /auth and its
    newest refresh token is invalid_grant, while the other families still
    work.

The tmpfs is unmounted at the end, also when the test fails.

Run by hand (as root, or where user namespaces are allowed) with

    TOKEND_BIN=build/dev/tokend /usr/bin/python3 tests/e2e/test_faults_disk.py
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faulttest as ft  # noqa: E402

st = ft.st

FAMILIES = 4
TRIES = 3  # refreshes per family while the disk is full


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.tmpfs = ft.Tmpfs("4m", prefix="tokend-disk-")
        self.tmpfs.mount()
        self.addCleanup(self.tmpfs.unmount)
        self.store = os.path.join(self.tmpfs.dir, "tokend.db")
        self.fx = st.ServerFixture(https=True, name="faults-disk", settings={"TOKEND_STORE": "sqlite://" + self.store})
        self.fx.store_path = self.store
        self.addCleanup(self.fx.close, check=False)  # runs before the unmount
        self.fx.start()
        self.client_id = ft.setup_signin(self.fx)
        self.cc_id, self.cc_secret = self.fx.add_client("svc", ft.SCOPE, ft.AUD)

    def refresh(self, token):
        return st.refresh_response(self.fx, token, client_id=self.client_id)

    def assert_auth(self, access, status, reason=None):
        r = self.fx.auth(access, aud=ft.AUD, scope=ft.SCOPE)
        self.assertEqual((r.status_code, r.headers.get("X-Auth-Reason")), (status, reason), r.text)

    def test_disk_full(self):
        fams = [ft.sign_in(self.fx, self.client_id) for _ in range(FAMILIES)]
        sids = [f["sid"] for f in fams]
        reused, revoked_fam, others = fams[0], fams[1], fams[1:]
        # the reused family: rotate its first token, keep the second
        spent = reused["refresh_token"]
        r = self.refresh(spent)
        self.assertEqual(r.status_code, 200, r.text)
        reused.update(r.json())
        spent_at = time.time()

        filler = self.tmpfs.fill()
        self.assertEqual(self.tmpfs.free_bytes(), 0)
        print("\nstore files on the full tmpfs: %s" % ", ".join(
            "%s %d B" % (n, os.path.getsize(os.path.join(self.tmpfs.dir, n)))
            for n in sorted(os.listdir(self.tmpfs.dir)) if n != "filler"), file=sys.stderr)
        seen = {}

        def note(what, r):
            seen.setdefault(what, []).append(r.status_code)

        r = self.fx.get("/readyz")
        note("readyz", r)
        self.assertEqual(r.status_code, 503, r.text)
        self.assertIn("cannot commit a write", r.text)

        for f in others:
            for _ in range(TRIES):
                r = self.refresh(f["refresh_token"])
                note("refresh", r)
                self.assertIn(r.status_code, (200, 503), ft.describe(r))
                if r.status_code == 503:
                    self.assertEqual(st.oauth_error(r), "temporarily_unavailable", ft.describe(r))
                else:  # ALWAYS allowed; then the client holds the new token
                    f.update(r.json())
            self.assert_auth(f["access_token"], 200)
        # measured: no refresh could be stored
        self.assertEqual(set(seen["refresh"]), {503}, "a refresh was stored on a full disk: %r" % seen)

        r = self.fx.token_response(self.cc_id, self.cc_secret)
        note("client_credentials", r)
        self.assertIn(r.status_code, (200, 503), ft.describe(r))
        if r.status_code == 200:
            self.assert_auth(r.json()["access_token"], 200)

        time.sleep(max(0.0, spent_at + ft.GRACE + 1.2 - time.time()))
        r = self.refresh(spent)
        note("reuse", r)
        self.assertEqual(r.status_code, 503, "the reuse while the disk is full: %s" % ft.describe(r))
        self.assertEqual(st.oauth_error(r), "temporarily_unavailable")
        self.assertNotIn("revoked", r.text.lower())
        self.assert_auth(reused["access_token"], 200)  # nothing was revoked

        r = self.fx.post("/oauth/revoke", data={"token": revoked_fam["refresh_token"], "client_id": self.client_id})
        note("revoke", r)
        self.assertIn(r.status_code, (200, 503), r.text)
        revoke_stored = r.status_code == 200

        b = st.SignInBrowser(self.fx, self.client_id, ft.REDIRECT)
        try:
            _, form = b.login_page()
            r = b.post_login(form, "alice", ft.PASSWORD)
            note("login", r)
            self.assertIn(r.status_code, (303, 503), r.text[:500])
        finally:
            b.close()

        r = self.fx.get("/readyz")
        note("readyz", r)
        print("answers while the disk was full: %s" % ", ".join(
            "%s %s" % (k, "/".join(str(x) for x in v)) for k, v in seen.items()), file=sys.stderr)

        # what the store holds while full: nothing claimed was stored, nothing lost
        with ft.Store(self.store) as s:
            self.assertEqual(s.revoked_sids(), {revoked_fam["sid"]} if revoke_stored else set())
            self.assertEqual(s.audit("refresh_reuse"), [])
            ft.check_families(s.refresh_rows(), sids)

        # -- space is back ---------------------------------------------------------
        os.unlink(filler)
        # /readyz checks at most once a second: the next check commits
        ok, _ = st.wait_for(lambda: self.fx.get("/readyz").status_code == 200, 5)
        self.assertTrue(ok, "/readyz does not recover once space is back: %s" % self.fx.get("/readyz").text)
        for f in others:
            if f is revoked_fam and revoke_stored:
                self.assertEqual(st.oauth_error(self.refresh(f["refresh_token"])), "invalid_grant")
                continue
            for _ in range(2):
                r = self.refresh(f["refresh_token"])
                self.assertEqual(r.status_code, 200, "a family did not survive the full disk: %s" % ft.describe(r))
                f.update(r.json())
        with ft.Store(self.store) as s:
            chains = ft.check_families(s.refresh_rows(), sids)
        for f in others:
            self.assertEqual(chains[f["sid"]][-1], ft.sha(f["refresh_token"]))

        # the reuse, retried, revokes now (and says so)
        r = self.refresh(spent)
        self.assertEqual(r.status_code, 400, ft.describe(r))
        self.assertEqual(st.oauth_error(r), "invalid_grant")
        self.assertRegex(ft.description(r), "every token of this sign-in is now revoked")
        self.assert_auth(reused["access_token"], 401, "revoked")
        with ft.Store(self.store) as s:
            self.assertIn(reused["sid"], s.revoked_sids())
            self.assertEqual([a["detail"] for a in s.audit("refresh_reuse")], [reused["sid"]])
            self.assertNotEqual(s.session_ended(reused["sid"]), 0)

        # ... and the revocation survives a restart
        self.assertEqual(self.fx.stop(), 0, self.fx.stderr()[-3000:])
        self.fx.start()
        self.assert_auth(reused["access_token"], 401, "revoked")
        r = self.refresh(reused["refresh_token"])
        self.assertEqual(st.oauth_error(r), "invalid_grant", ft.describe(r))
        for f in others:
            if f is revoked_fam and revoke_stored:
                continue
            self.assert_auth(f["access_token"], 200)
            r = self.refresh(f["refresh_token"])
            self.assertEqual(r.status_code, 200, ft.describe(r))


if __name__ == "__main__":
    ft.reexec_in_namespace(__file__)
    st.main()
