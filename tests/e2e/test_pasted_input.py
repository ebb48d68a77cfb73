# SPDX-License-Identifier: Apache-2.0
"""Pasted input (issue 12, section 3): `tokend inspect` and `/auth`
recognise, name and explain the same pasted mistakes with the same words,
through one diagnoser in the core (tk_input_diagnose).

Each case is sent to `tokend inspect --json` (as the argument and on
stdin) and, as the Authorization header value, to `/auth` of a running
`tokend serve` (raw bytes over a socket, so that a BOM or a CR arrives as
it is). Asserted for every case:
  - /auth refuses it (never accepts a repaired token: fail closed), with
    the expected reason code in X-Auth-Reason and an error_description;
  - inspect's first problem has the same code and exactly that sentence;
  - inspect adds no false follow-on problem (no "no '.' separators", no
    "no typ header" for a header it could not decode);
  - where inspect repaired the input to go on, its source says so, and the
    token inside was decoded (the claims are shown).

A token wrapped over lines reaches /auth only with bare CRs as the breaks
(an LF ends the header line in HTTP/1.1): that is what is sent here.
"""

import json
import os
import socket
import sys
import unittest

sys.dont_write_bytecode = True  # keep tests/e2e free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servetest as st  # noqa: E402
import tokendtest as tt  # noqa: E402

AUD = "orders-api"
FALSE_FOLLOW_ONS = ("no '.' separators", 'no "typ" header')


def pad(seg):
    return seg + "=" * (-len(seg) % 4)


def cases(t):
    """(name, paste for inspect, Authorization value for /auth, code,
    a piece of the sentence, inspect goes on with a repaired token)."""
    h, p, s = t.split(".")
    wrapped = [t[:40], t[40:80], t[80:]]
    resp = json.dumps({"access_token": t, "token_type": "Bearer", "expires_in": 900})
    padded = ".".join(pad(x) for x in (h, p, s))
    assert padded != t, "the test token must need padding somewhere"
    return [
        ("token in quotes", '"%s"' % t, 'Bearer "%s"' % t, "malformed_header",
         "the token is in quotes (byte 0)", True),
        ("BOM", "\ufeff" + t, b"Bearer \xef\xbb\xbf" + t.encode(), "malformed_header",
         "byte 0 is a UTF-8 byte order mark (EF BB BF)", True),
        ("wrapped over 3 lines", "\n".join(wrapped), b"Bearer " + "\r".join(wrapped).encode(), "malformed_header",
         "the token is wrapped over 3 lines (the first line break is at byte 40)", True),
        ("space inside", t[:41] + " " + t[41:], "Bearer " + t[:41] + " " + t[41:], "malformed_header",
         "a space at byte 41 inside the token", True),
        ("percent-encoded dots", t.replace(".", "%2E"), "Bearer " + t.replace(".", "%2E"), "malformed_header",
         "'%%2E' at byte %d: the token was percent-encoded (URL-decode it)" % len(h), True),
        ("Bearer with no space", "Bearer" + t, "Bearer" + t, "malformed_header",
         "no space after 'Bearer'", True),
        ("Bearer Bearer", "Bearer Bearer " + t, "Bearer Bearer " + t, "malformed_header",
         "'Bearer Bearer': the prefix is there twice", True),
        ("Bearer:", "Bearer: " + t, "Bearer: " + t, "malformed_header", "'Bearer:' has a colon", True),
        ("Cookie line", "Cookie: theme=dark; access_token=" + t, "Cookie: theme=dark; access_token=" + t,
         "malformed_header", "this is a Cookie header line, not an Authorization value: the cookie 'access_token' "
         "holds the token", True),
        ("token response JSON", resp, "Bearer " + resp, "malformed_header",
         "this is a token response JSON: the token is its access_token member", True),
        ("= padding", padded, "Bearer " + padded, "malformed_token",
         "padding '=' at offset", False),
    ]


def auth_raw(fx, value):
    """GET /auth with exactly these Authorization value bytes; (status,
    X-Auth-Reason, error_description)."""
    if isinstance(value, str):
        value = value.encode()
    req = (b"GET /auth?aud=" + AUD.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           b"Authorization: " + value + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", fx.port), timeout=st.HTTP_TIMEOUT) as sock:
        sock.sendall(req)
        data = b""
        while True:
            d = sock.recv(65536)
            if not d:
                break
            data += d
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    desc = None
    if "www-authenticate" in hdrs:
        desc = st.parse_challenge(hdrs["www-authenticate"]).get("error_description")
    return status, hdrs.get("x-auth-reason"), desc


class PastedInput(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.fx = st.ServerFixture(https=False, name=cls.__name__)
        cls.fx.start()
        cid, secret = cls.fx.add_client("svc", "orders:read", AUD)
        # a token whose segments need padding (so that '=' can be added)
        for _ in range(20):
            t = cls.fx.token(cid, secret)
            if any(len(x) % 4 for x in t.split(".")):
                break
        cls.token = t

    @classmethod
    def tearDownClass(cls):
        cls.fx.close()

    def check_inspect(self, paste, code, sentence, repaired, stdin):
        r = tt.inspect_json(paste, stdin=stdin)
        self.assertEqual(r.rc, 1, r)
        self.assertIs(r.valid, False, r)
        self.assertTrue(r.problems, r)
        first = r.problems[0]
        self.assertEqual(first["code"], code, r)
        for p in r.problems:
            for bad in FALSE_FOLLOW_ONS:
                self.assertNotIn(bad, p["message"], r)
        if repaired:
            self.assertIn("inspected after repair", r.obj["source"], r)
            self.assertEqual(r.obj["payload"].get("aud"), AUD, r)
        return first["message"], r

    def test_same_sentence_in_inspect_and_auth(self):
        for name, paste, value, code, piece, repaired in cases(self.token):
            with self.subTest(case=name):
                status, reason, desc = auth_raw(self.fx, value)
                self.assertIn(status, (400, 401), (status, reason, desc))
                self.assertEqual(reason, code, desc)
                self.assertIsNotNone(desc)
                self.assertIn(piece, desc)
                for stdin in (False, True):
                    msg, r = self.check_inspect(paste, code, piece, repaired, stdin)
                    # the very sentence /auth gave, byte for byte
                    self.assertEqual(msg, desc, r)

    def test_header_line_pasted_as_the_value(self):
        # "Authorization: Bearer x" as the header's value: /auth names it.
        # inspect takes a whole header line by design (its help says so).
        t = self.token
        status, reason, desc = auth_raw(self.fx, "Authorization: Bearer " + t)
        self.assertEqual((status, reason), (400, "malformed_header"), desc)
        self.assertIn("the value starts with 'Authorization:', the header's name", desc)
        r = tt.inspect_json("Authorization: Bearer " + t)
        self.assertEqual(r.obj["source"], "an Authorization header line", r)
        self.assertNotIn("malformed_header", r.codes, r)

    def test_the_token_itself_still_passes(self):
        status, reason, _ = auth_raw(self.fx, "Bearer " + self.token)
        self.assertEqual((status, reason), (200, None))

    def test_no_false_follow_on_problems(self):
        # A header error stops there: no "no '.' separators" for a piece
        # of it that is not a token.
        r = tt.inspect_json("Bearer  opaque-reference")
        self.assertEqual(r.codes, ["malformed_header"], r)
        # A header that does not decode has no typ to compare.
        h, p, s = self.token.split(".")
        r = tt.inspect_json("Zm9v." + p + "." + s, "--typ", "at+jwt")
        self.assertEqual(r.codes[0], "malformed_token", r)
        self.assertNotIn("wrong_token_type", r.codes, r)
        # Other schemes are still named as such, not as pasted tokens.
        status, reason, desc = auth_raw(self.fx, "Basic dXNlcjpwYXNz")
        self.assertEqual((status, reason), (400, "wrong_scheme"), desc)


if __name__ == "__main__":
    st.main()
