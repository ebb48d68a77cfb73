// SPDX-License-Identifier: Apache-2.0
// signin_cluster.mjs — drives Debian's headless Chromium through one user
// sign-in against a tokend cluster behind nginx, for
// tests/e2e/test_cluster.py, which starts everything (PostgreSQL, the
// tokend instances, nginx, the test client app) and asserts on the JSON
// this script prints on stdout (one object, last line).
//
//   node tests/e2e/browser/signin_cluster.mjs --app URL --tokend URL \
//        --out DIR --username NAME        (password in $SIGNIN_PASSWORD)
//
// --tokend is nginx's URL: every request of the browser to tokend goes
// through nginx's round-robin upstream. Steps: open the client app, click
// "Sign in", land on the sign-in page (cluster-login.png), sign in, land
// back on the client's /cb, whose server side exchanged the code at
// another instance than the one that served POST /login
// (cluster-signed-in.png).
//
// Exit status 0 when the script ran to the end (the Python side judges), 2
// on bad arguments, 3 when Chromium or playwright-core is missing or a step
// threw (the JSON then has "error").

import { openSignIn, out, redact, run, submitSignIn } from './harness.mjs';

async function steps({ args, password, context, page, shot }) {
  // 1. the client app, "Sign in", the sign-in page (through nginx)
  await openSignIn(page, args);
  out.steps.login_page = {
    url: redact(page.url()),
    title: await page.title(),
    h1: (await page.textContent('h1')) || '',
  };
  await shot(page, 'cluster-login.png');

  // 2. sign in (POST /login through nginx): back on the client's /cb
  out.steps.callback = {
    ...(await submitSignIn(page, args, password)),
    result: JSON.parse(await page.textContent('#result')),
  };
  out.steps.cookies = (await context.cookies(args.tokend)).map((c) => c.name);
  await shot(page, 'cluster-signed-in.png');
}

await run(['app', 'tokend', 'out', 'username'], { navigationMethod: true }, steps);
