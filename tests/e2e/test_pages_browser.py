# SPDX-License-Identifier: Apache-2.0
"""tokend's HTML pages in a real browser, at a phone's and a desktop's width
(issue 12 section 6).

    Chromium (headless, Debian's /usr/bin/chromium, driven by playwright-core
    from tests/e2e/browser/pages.mjs) opens, at 390x844 and at 1280x800:

      login           the sign-in page of a valid authorization request
      unknown-client  the sign-in error page for a client_id nobody registered
      bad-redirect    the sign-in error page for a redirect_uri the client
                      did not register
      errors-index    /errors/ (the introduction and every reason code)
      errors-expired  /errors/expired
      errors-unknown  /errors/nonsense (no such code)

    and the test asserts on every one: nothing scrolls sideways
    (document.scrollingElement.scrollWidth <= window.innerWidth), and the h1,
    every piece of its text, is drawn larger than the body text.

The sign-in error pages name what the request carried (the client id, the
redirect URI received, escaped) and the request id, which the log line of
that request carries too; an unknown reason code gets a styled page that
lists the valid codes.

Screenshots go to $TOKEND_TEST_OUTPUT or build/test-output/pages/ as
<page>-phone.png and <page>-desktop.png (the paths are printed). The test
FAILS when node, Chromium or tests/e2e/browser/node_modules is missing:
scripts/deps.sh installs Debian's chromium and runs `npm ci --prefix
tests/e2e/browser`.

Run by hand with

    TOKEND_BIN=$PWD/build/dev/tokend /usr/bin/python3 tests/e2e/test_pages_browser.py
"""

import html
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "browser", "pages.mjs")
AUD = "orders-api"
SCOPE = "orders:read"
REDIRECT = "https://app.example/cb"
# a redirect URI that is not registered, with markup in it: shown escaped
BAD_REDIRECT = "https://evil.example/cb?next=<b>x</b>&q=\"1\""
UNKNOWN_CLIENT = "no-such-app"
NODE_TIMEOUT = 180
PAGES = ("login", "unknown-client", "bad-redirect", "errors-index", "errors-expired", "errors-unknown")
WIDTHS = ("phone", "desktop")


def output_dir():
    d = os.environ.get("TOKEND_TEST_OUTPUT") or os.path.join(tt.ROOT, "build", "test-output", "pages")
    os.makedirs(d, exist_ok=True)
    return d


class Pages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=True)
        cls.fx.start()
        try:
            cls.client_id, _ = cls.fx.add_signin_client("pages-app", REDIRECT, SCOPE, AUD)
            b = st.SignInBrowser(cls.fx, cls.client_id, REDIRECT, scope=SCOPE)
            cls.urls = {
                "login": b.authorize_url(),
                "unknown-client": b.authorize_url(client_id=UNKNOWN_CLIENT),
                "bad-redirect": b.authorize_url(redirect_uri=BAD_REDIRECT),
                "errors-index": cls.fx.url + "/errors/",
                "errors-expired": cls.fx.url + "/errors/expired",
                "errors-unknown": cls.fx.url + "/errors/nonsense",
            }
            b.close()
            cls.out_dir = output_dir()
            spec = os.path.join(cls.fx.td, "pages.json")
            with open(spec, "w") as f:
                json.dump([{"name": n, "url": cls.urls[n]} for n in PAGES], f)
            p = subprocess.run(["node", SCRIPT, "--pages", spec, "--out", cls.out_dir], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=NODE_TIMEOUT, cwd=tt.ROOT)
        except BaseException:
            cls.fx.close(check=False)
            raise
        cls.node_rc = p.returncode
        cls.node_stderr = p.stderr.decode("utf-8", "replace")
        lines = p.stdout.decode("utf-8", "replace").strip().splitlines()
        try:
            cls.res = json.loads(lines[-1]) if lines else {}
        except ValueError:
            cls.res = {"error": "no JSON from pages.mjs: %r" % lines[-5:]}
        for key, path in sorted(cls.res.get("screenshots", {}).items()):
            print("screenshot %s: %s" % (key, path), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def step(self, key):
        s = self.res.get("steps", {}).get(key)
        if s is None:
            self.fail("pages.mjs did not reach %s: %s\n%s" % (key, self.res.get("error"), self.node_stderr[-2000:]))
        return s

    def test_1_script_ran_to_the_end(self):
        self.assertTrue(self.res.get("ok"), "pages.mjs failed: %s\n%s" % (self.res.get("error"),
                                                                          self.node_stderr[-3000:]))
        self.assertEqual(self.node_rc, 0)

    def test_2_no_page_scrolls_sideways(self):
        for name in PAGES:
            for w in WIDTHS:
                with self.subTest(page=name, width=w):
                    s = self.step("%s-%s" % (name, w))
                    self.assertLessEqual(s["scrollWidth"], s["innerWidth"],
                                         "%s at %s width is %dpx wide in a %dpx window; too wide: %s"
                                         % (name, w, s["scrollWidth"], s["innerWidth"], s["wide"]))

    def test_3_the_heading_is_larger_than_the_text(self):
        for name in PAGES:
            for w in WIDTHS:
                with self.subTest(page=name, width=w):
                    s = self.step("%s-%s" % (name, w))
                    self.assertTrue(s["h1"].strip(), "no h1")
                    self.assertGreater(s["h1FontPx"], s["bodyFontPx"] * 1.2,
                                       "h1 %r in %.1fpx, body text %.1fpx" % (s["h1"], s["h1FontPx"],
                                                                              s["bodyFontPx"]))

    def test_4_screenshots_kept(self):
        for name in PAGES:
            for w in WIDTHS:
                with self.subTest(page=name, width=w):
                    path = self.res.get("screenshots", {}).get("%s-%s" % (name, w))
                    self.assertTrue(path and os.path.isfile(path), path)
                    with open(path, "rb") as f:
                        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
                    self.assertTrue(path.startswith(self.out_dir), path)

    def test_5_statuses(self):
        want = {"login": 200, "unknown-client": 400, "bad-redirect": 400, "errors-index": 200,
                "errors-expired": 200, "errors-unknown": 404}
        for name, status in want.items():
            with self.subTest(page=name):
                self.assertEqual(self.step(name + "-phone")["status"], status)

    def test_6_bad_redirect_page_names_what_was_received(self):
        s = self.step("bad-redirect-desktop")
        self.assertIn(BAD_REDIRECT, s["text"])  # shown as text, so escaped in the HTML
        self.assertIn(self.client_id, s["text"])
        # the page and the log name the same request
        r = self.fx.get(self.urls["bad-redirect"].replace(self.fx.url, ""), allow_redirects=False)
        self.assertEqual(r.status_code, 400)
        rid = r.headers["X-Request-Id"]
        self.assertIn(rid, r.text)
        self.assertIn(html.escape(BAD_REDIRECT, quote=True), r.text)
        self.assertNotIn("<b>x</b>", r.text)
        line = self.fx.log_for(rid)
        self.assertEqual(line.get("client_id"), self.client_id)
        self.assertEqual(line.get("error"), "invalid_redirect_uri")
        self.assertIn(BAD_REDIRECT, line.get("detail", ""))

    def test_7_unknown_client_page_names_the_id(self):
        s = self.step("unknown-client-phone")
        self.assertIn(UNKNOWN_CLIENT, s["text"])
        r = self.fx.get(self.urls["unknown-client"].replace(self.fx.url, ""), allow_redirects=False)
        rid = r.headers["X-Request-Id"]
        self.assertIn(rid, r.text)
        line = self.fx.log_for(rid)
        self.assertEqual(line.get("client_id"), UNKNOWN_CLIENT)
        self.assertEqual(line.get("error"), "invalid_client")
        self.assertIn(REDIRECT, line.get("detail", ""))

    def test_8_unknown_code_page_is_styled_and_lists_the_codes(self):
        s = self.step("errors-unknown-desktop")
        self.assertTrue(s["styled"], "no stylesheet on the 404 page")
        self.assertIn("nonsense", s["text"])
        for code in ("expired", "wrong_audience", "unknown_key", "bad_signature"):
            self.assertIn(code, s["text"])
        r = self.fx.get("/errors/nonsense")
        self.assertEqual(r.status_code, 404)
        self.assertIn('href="expired"', r.text)
        # the name asked for is shown escaped, never as markup
        r = self.fx.get("/errors/%3Cb%3Ex")
        self.assertEqual(r.status_code, 404)
        self.assertNotIn("<b>x", r.text)
        self.assertTrue(re.search(r"&lt;b&gt;x|no reason code", r.text), r.text[:500])


if __name__ == "__main__":
    unittest.main()
