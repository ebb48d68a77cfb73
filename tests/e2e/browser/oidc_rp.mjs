// SPDX-License-Identifier: Apache-2.0
// oidc_rp.mjs — what oidc_openid_client.mjs and oidc_oauth4webapi.mjs
// share: the relying party's own web server on loopback (its redirect URI
// /cb and its post-logout page /logged-out), the browser's part of the
// sign-in and of RP-initiated logout, a record of each step (result or the
// library's complaint) in the harness's JSON, and plain-fetch probes of
// tokend that do not go through the library under test.
//
// Command line (both scripts): --issuer URL --client-id ID --rp URL (the
// RP's origin, http://127.0.0.1:PORT; its /cb and /logged-out are the
// client's registered redirect URIs) --out DIR --username NAME, the
// password in $SIGNIN_PASSWORD. Node trusts tokend's dev certificate
// through $NODE_EXTRA_CA_CERTS (set by test_oidc_browser.py); Chromium is
// told to ignore certificate errors (harness.mjs).

import http from 'node:http';

import { out, redact } from './harness.mjs';

export const REQUIRED = ['issuer', 'client-id', 'rp', 'out', 'username'];
export const SCOPE = 'openid profile email';

// What a library threw, in a form the Python side can assert on and a
// person can read: the class, its code (openid-client / oauth4webapi
// ERR_* / OAUTH_* codes), the OAuth error, the HTTP status, the cause.
// An Error cause is described the same way (openid-client wraps
// oauth4webapi's errors), two levels deep.
export function describeError(e, depth = 0) {
  if (!e || typeof e !== 'object') return { message: String(e) };
  const d = { name: e.name, message: String(e.message || '').slice(0, 1000) };
  if (e.code) d.code = e.code;
  if (e.error) d.error = e.error;
  if (e.error_description) d.error_description = String(e.error_description).slice(0, 500);
  if (typeof e.status === 'number') d.status = e.status;
  if (e.cause !== undefined) {
    const c = e.cause;
    if (c instanceof Error) {
      d.cause = depth < 2 ? describeError(c, depth + 1) : { name: c.name, message: String(c.message).slice(0, 500) };
    } else if (c instanceof Response) {
      d.cause = { status: c.status };
    } else {
      try {
        d.cause = JSON.parse(JSON.stringify(c));
      } catch {
        d.cause = String(c).slice(0, 500);
      }
    }
  }
  return d;
}

// Runs fn() as step `name`: out.steps[name] is what it returned, or
// { error } when it threw (and then it throws again: the steps after it
// depend on it).
export async function step(name, fn) {
  try {
    const r = await fn();
    out.steps[name] = r === undefined ? { ok: true } : r;
    return r;
  } catch (e) {
    out.steps[name] = { error: describeError(e) };
    throw new Error(`step ${name}: ${e && e.message}`, { cause: e });
  }
}

// Runs fn(), which is expected to throw (a refusal the library reports);
// returns { threw, error }.
export async function expectRefusal(fn) {
  try {
    await fn();
    return { threw: false };
  } catch (e) {
    return { threw: true, error: describeError(e) };
  }
}

// The claims of a compact JWS without verifying it (the header shows the
// alg, typ and kid tokend chose).
export function jwtHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString('utf8'));
}

// The RP's web server: GET /cb and GET /logged-out each answer a small
// page and hand the full URL to whoever waits with next(path).
export async function startRP(origin) {
  const u = new URL(origin);
  const waiters = { '/cb': [], '/logged-out': [] };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, origin);
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    const q = waiters[url.pathname];
    const body =
      q === undefined
        ? '<p>not found</p>'
        : url.pathname === '/cb'
          ? '<h1 id="back">Back at the relying party</h1>'
          : '<h1 id="logged-out">Signed out of the relying party</h1>';
    res.writeHead(q === undefined ? 404 : 200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>RP</title></head><body>${body}</body></html>`);
    if (q !== undefined && q.length > 0) q.shift()(url);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(u.port), '127.0.0.1', resolve);
  });
  return {
    redirectUri: `${origin}/cb`,
    postLogoutUri: `${origin}/logged-out`,
    // a promise of the URL of the next request to `path`
    next(path) {
      return new Promise((resolve) => waiters[path].push(resolve));
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

// The user's part of the sign-in: Chromium opens the authorization URL,
// gets tokend's sign-in page, fills it in and submits it; resolves with
// the URL the RP's /cb received.
export async function browserSignIn(page, rp, authorizationUrl, args, password, shot) {
  const cb = rp.next('/cb');
  await page.goto(authorizationUrl.href);
  await page.waitForSelector('input[name=username]');
  const login = {
    url: redact(page.url()),
    title: await page.title(),
    button: (await page.textContent('button[type=submit]')).trim(),
  };
  await shot(page, 'login.png');
  await page.fill('input[name=username]', args.username);
  await page.fill('input[name=password]', password);
  await Promise.all([
    page.waitForURL((x) => x.toString().startsWith(rp.redirectUri)),
    page.click('button[type=submit]'),
  ]);
  await page.waitForSelector('#back');
  await shot(page, 'callback.png');
  const url = await cb;
  login.callback = {
    url: redact(url.href),
    params: [...url.searchParams.keys()].sort(),
    iss: url.searchParams.get('iss'),
  };
  return { url, login };
}

// A second authorization request in the same browser (prompt=none): the
// session answers with a code at once, no page shown; resolves with the
// URL the RP's /cb received and what the browser saw.
export async function browserSilent(page, rp, authorizationUrl) {
  const cb = rp.next('/cb');
  await page.goto(authorizationUrl.href);
  await page.waitForURL((x) => x.toString().startsWith(rp.redirectUri));
  const url = await cb;
  return {
    url,
    seen: {
      url: redact(url.href),
      params: [...url.searchParams.keys()].sort(),
      oauth_error: url.searchParams.get('error'),
    },
  };
}

// The browser's part of RP-initiated logout: Chromium follows the
// end-session URL; with an id_token_hint of its own sign-in tokend signs it
// out without asking and sends it to the RP's /logged-out. Resolves with
// what the browser saw (asked: tokend showed "Sign out?" instead).
export async function browserLogout(page, rp, endSessionUrl, tokend, shot) {
  const back = rp.next('/logged-out');
  const resp = await page.goto(endSessionUrl.href);
  await page.waitForLoadState('load');
  const here = page.url();
  const seen = {
    url: redact(here),
    status: resp ? resp.status() : 0,
    title: await page.title(),
    h1: ((await page.$('h1')) && (await page.textContent('h1'))) || '',
  };
  seen.back_at_rp = here.startsWith(rp.postLogoutUri);
  seen.asked = here.startsWith(`${tokend}/logout`) && /Sign out\?/.test(seen.title + seen.h1);
  await shot(page, seen.back_at_rp ? 'logged-out.png' : 'logout-page.png');
  if (seen.back_at_rp) {
    const url = await back;
    seen.state = url.searchParams.get('state');
    seen.params = [...url.searchParams.keys()].sort();
  }
  seen.cookies = (await page.context().cookies(tokend)).map((c) => c.name);
  return seen;
}

// GET /userinfo with a bearer token by plain fetch (not through the
// library): the status and the challenge.
export async function probeUserinfo(endpoint, accessToken) {
  const r = await fetch(endpoint, { headers: { Authorization: `Bearer ${accessToken}` } });
  await r.arrayBuffer();
  return { status: r.status, www_authenticate: r.headers.get('www-authenticate') };
}

// A refresh by plain fetch, as a public client: the status and the error.
export async function probeRefresh(tokenEndpoint, clientId, refreshToken) {
  const r = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }),
  });
  let error = null;
  try {
    error = (await r.json()).error || null;
  } catch {
    error = null;
  }
  return { status: r.status, error };
}
