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

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CHROMIUM = process.env.SIGNIN_CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 30000; // ms; tokend is usually built with ASan

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${a}`);
    }
    o[a.slice(2)] = argv[++i];
  }
  for (const k of ['app', 'tokend', 'error-url', 'out', 'username']) {
    if (!o[k]) throw new Error(`--${k} is required`);
  }
  return o;
}

// The URL without its query values (a code must not reach the output).
function redact(u) {
  try {
    const x = new URL(u);
    for (const k of [...x.searchParams.keys()]) x.searchParams.set(k, '…');
    return x.toString();
  } catch {
    return String(u);
  }
}

const out = { ok: false, steps: {}, screenshots: {}, console: [], csp_violations: [], navigations: [] };

function emit(code) {
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(code);
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  out.error = String(e.message || e);
  emit(2);
}
const password = process.env.SIGNIN_PASSWORD;
if (!password) {
  out.error = 'SIGNIN_PASSWORD is not set';
  emit(2);
}

if (!fs.existsSync(CHROMIUM)) {
  out.error = `${CHROMIUM} is missing: install Debian's chromium (scripts/deps.sh)`;
  emit(3);
}

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  out.error = `playwright-core is missing (${e.message}): run npm ci --prefix ${path.relative(process.cwd(), here) || '.'}`;
  emit(3);
}

fs.mkdirSync(args.out, { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokend-chromium-'));
let context;

async function shot(page, name) {
  const p = path.join(args.out, name);
  await page.screenshot({ path: p, fullPage: true });
  out.screenshots[name.replace(/\.png$/, '')] = p;
  return p;
}

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

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 430, height: 860 }, // a phone: the page must read well there
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--ignore-certificate-errors',
    ],
  });
  out.browser = context.browser() ? context.browser().version() : 'chromium';
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => {
    const t = m.text();
    out.console.push(`${m.type()}: ${t}`.slice(0, 500));
    if (/Content Security Policy/i.test(t)) out.csp_violations.push(t.slice(0, 500));
  });
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) {
      out.navigations.push({ url: redact(r.url()), status: r.status() });
    }
  });

  // 1. the client app, "Sign in", tokend's sign-in page
  await page.goto(args.app);
  await page.click('#signin');
  await page.waitForURL((u) => u.toString().startsWith(`${args.tokend}/oauth/authorize`));
  await page.waitForSelector('input[name=username]');
  const login = await pageInfo(page);
  out.steps.login_page = {
    url: redact(page.url()),
    ...login,
    csrf_field: login.forms.some((f) => f.fields.some((x) => x.name === 'csrf' && x.type === 'hidden')),
  };
  await shot(page, 'login.png');

  // 2. sign in: back on the client's /cb, which exchanged the code
  await page.fill('input[name=username]', args.username);
  await page.fill('input[name=password]', password);
  await Promise.all([
    page.waitForURL((u) => u.toString().startsWith(`${args.app}/cb`)),
    page.click('button[type=submit]'),
  ]);
  await page.waitForSelector('#result');
  const cb = new URL(page.url());
  out.steps.callback = {
    url: redact(page.url()),
    has_code: cb.searchParams.has('code'),
    has_state: cb.searchParams.has('state'),
    has_iss: cb.searchParams.has('iss'),
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

  out.ok = true;
} catch (e) {
  out.error = String((e && e.stack) || e).slice(0, 4000);
}

try {
  if (context) await context.close();
} finally {
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
emit(out.ok ? 0 : 3);
