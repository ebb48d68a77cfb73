// SPDX-License-Identifier: Apache-2.0
// signin.mjs — drives Debian's headless Chromium through tokend's user
// sign-in for tests/e2e/test_signin_browser.py, which starts everything
// (tokend, nginx, the test client app) and asserts on the JSON this script
// prints on stdout (one object, last line).
//
//   node tests/e2e/browser/signin.mjs --app URL --tokend URL --error-url URL \
//        --out DIR --username NAME        (password in $SIGNIN_PASSWORD)
//
// Steps: open the client app, click "Sign in", land on tokend's sign-in page
// (login.png), sign in, land back on the client's /cb, which exchanged the
// code and called the resource behind nginx (signed-in.png); open an
// authorization request with a bad redirect_uri (error.png); open /logout,
// which asks "Sign out?" (logout-confirm.png), click its "Sign out" button
// (signed-out.png); click "Sign in" again: the sign-in page, not a code.
//
// Exit status 0 when the script ran to the end (whatever it saw: the Python
// side judges), 2 on bad arguments, 3 when Chromium or playwright-core is
// missing or a step threw (the JSON then has "error").

import { openSignIn, out, redact, run, submitSignIn } from './harness.mjs';

async function pageInfo(page) {
  return page.evaluate(() => ({
    title: document.title,
    h1: (document.querySelector('h1') || {}).textContent || '',
    text: document.body ? document.body.innerText : '',
    scripts: document.querySelectorAll('script').length,
    forms: [...document.forms].map((f) => ({
      action: f.action,
      method: f.method,
      fields: [...f.elements].map((e) => ({ name: e.name, type: e.type })).filter((e) => e.name),
    })),
  }));
}

async function steps({ args, password, context, page, shot }) {
  // 1. the client app, "Sign in", tokend's sign-in page
  await openSignIn(page, args);
  const login = await pageInfo(page);
  out.steps.login_page = {
    url: redact(page.url()),
    ...login,
    csrf_field: login.forms.some((f) => f.fields.some((x) => x.name === 'csrf' && x.type === 'hidden')),
  };
  await shot(page, 'login.png');

  // 2. sign in: back on the client's /cb, which exchanged the code
  out.steps.callback = {
    ...(await submitSignIn(page, args, password)),
    resource_status: (await page.textContent('#status')).trim(),
    result: JSON.parse(await page.textContent('#result')),
  };
  const cookies = await context.cookies(args.tokend);
  out.steps.cookies = cookies.map((c) => ({
    name: c.name,
    httpOnly: c.httpOnly,
    secure: c.secure,
    sameSite: c.sameSite,
    path: c.path,
    hostOnly: !c.domain.startsWith('.'),
  }));
  await shot(page, 'signed-in.png');

  // 3. an authorization request with a redirect URI that is not registered
  const errResp = await page.goto(args['error-url']);
  out.steps.error_page = {
    status: errResp ? errResp.status() : 0,
    url: redact(page.url()),
    headers: errResp ? await errResp.allHeaders() : {},
    ...(await pageInfo(page)),
  };
  await shot(page, 'error.png');

  // 4. sign out: /logout asks first; the user clicks "Sign out"
  const askResp = await page.goto(`${args.tokend}/logout`);
  out.steps.logout_confirm = {
    status: askResp ? askResp.status() : 0,
    url: redact(page.url()),
    ...(await pageInfo(page)),
    cookies: (await context.cookies(args.tokend)).map((c) => c.name),
  };
  await shot(page, 'logout-confirm.png');
  const [outResp] = await Promise.all([
    page.waitForNavigation(),
    page.click('form[action="logout"] button[type=submit]'),
  ]);
  out.steps.logout = {
    status: outResp ? outResp.status() : 0,
    method: outResp ? outResp.request().method() : '',
    url: redact(page.url()),
    ...(await pageInfo(page)),
  };
  out.steps.cookies_after_logout = (await context.cookies(args.tokend)).map((c) => c.name);
  await shot(page, 'signed-out.png');

  // 5. "Sign in" again: the sign-in page, no code
  await page.goto(args.app);
  await page.click('#signin');
  await page.waitForLoadState('load');
  out.steps.after_logout = { url: redact(page.url()), ...(await pageInfo(page)) };
  out.steps.after_logout.login_form = await page.$('input[name=password]').then((e) => e !== null);
}

await run(['app', 'tokend', 'error-url', 'out', 'username'], { ignoreHTTPSErrors: true }, steps);
