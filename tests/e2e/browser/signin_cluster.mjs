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
  for (const k of ['app', 'tokend', 'out', 'username']) {
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

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 430, height: 860 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
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
      out.navigations.push({ url: redact(r.url()), status: r.status(), method: r.request().method() });
    }
  });

  // 1. the client app, "Sign in", the sign-in page (through nginx)
  await page.goto(args.app);
  await page.click('#signin');
  await page.waitForURL((u) => u.toString().startsWith(`${args.tokend}/oauth/authorize`));
  await page.waitForSelector('input[name=username]');
  out.steps.login_page = {
    url: redact(page.url()),
    title: await page.title(),
    h1: (await page.textContent('h1')) || '',
  };
  await shot(page, 'cluster-login.png');

  // 2. sign in (POST /login through nginx): back on the client's /cb
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
    result: JSON.parse(await page.textContent('#result')),
  };
  out.steps.cookies = (await context.cookies(args.tokend)).map((c) => c.name);
  await shot(page, 'cluster-signed-in.png');
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
