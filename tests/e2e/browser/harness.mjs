// SPDX-License-Identifier: Apache-2.0
// harness.mjs — what signin.mjs and signin_cluster.mjs share, so that both
// keep one command line convention, one stdout JSON and one exit status
// convention: options as `--name value` (the password in $SIGNIN_PASSWORD),
// the checks for Chromium and playwright-core, a headless Chromium on a
// throwaway profile whose console, CSP reports and navigations go to the
// JSON, screenshots, and the cleanup.
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

// `--name value` pairs into { name: value }; throws when one of `required`
// is missing.
export function parseArgs(argv, required) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`bad argument ${a}`);
    }
    o[a.slice(2)] = argv[++i];
  }
  for (const k of required) {
    if (!o[k]) throw new Error(`--${k} is required`);
  }
  return o;
}

// The URL without its query values (a code must not reach the output).
export function redact(u) {
  try {
    const x = new URL(u);
    for (const k of [...x.searchParams.keys()]) x.searchParams.set(k, '…');
    return x.toString();
  } catch {
    return String(u);
  }
}

// The one object printed on stdout; the scripts fill out.steps.
export const out = { ok: false, steps: {}, screenshots: {}, console: [], csp_violations: [], navigations: [] };

export function emit(code) {
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(code);
}

// From the client app's "Sign in" link (args.app) to tokend's sign-in page
// (args.tokend), as a user gets there.
export async function openSignIn(page, args) {
  await page.goto(args.app);
  await page.click('#signin');
  await page.waitForURL((u) => u.toString().startsWith(`${args.tokend}/oauth/authorize`));
  await page.waitForSelector('input[name=username]');
}

// Signs in on that page as args.username; waits for the client app's /cb
// page (its #result is there once the app is done with the code) and says
// what the redirect carried.
export async function submitSignIn(page, args, password) {
  await page.fill('input[name=username]', args.username);
  await page.fill('input[name=password]', password);
  await Promise.all([
    page.waitForURL((u) => u.toString().startsWith(`${args.app}/cb`)),
    page.click('button[type=submit]'),
  ]);
  await page.waitForSelector('#result');
  const cb = new URL(page.url());
  return {
    url: redact(page.url()),
    has_code: cb.searchParams.has('code'),
    has_state: cb.searchParams.has('state'),
    has_iss: cb.searchParams.has('iss'),
  };
}

// Parses the command line (`required` options), checks for Chromium and
// playwright-core, launches Chromium, and runs `steps({ args, password,
// context, page, shot })`; out.ok when it returns. Then closes Chromium,
// removes its profile and exits (emit). Options: ignoreHTTPSErrors (tokend
// on HTTPS with a certificate Chromium does not trust), navigationMethod
// (each out.navigations entry also has the request's method), needPassword
// (false: a script that signs nobody in needs no $SIGNIN_PASSWORD).
export async function run(
  required,
  { ignoreHTTPSErrors = false, navigationMethod = false, needPassword = true },
  steps,
) {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), required);
  } catch (e) {
    out.error = String(e.message || e);
    emit(2);
  }
  const password = process.env.SIGNIN_PASSWORD;
  if (!password && needPassword) {
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
      ...(ignoreHTTPSErrors ? { ignoreHTTPSErrors: true } : {}),
      viewport: { width: 430, height: 860 }, // a phone: the page must read well there
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        ...(ignoreHTTPSErrors ? ['--ignore-certificate-errors'] : []),
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
        const nav = { url: redact(r.url()), status: r.status() };
        if (navigationMethod) nav.method = r.request().method();
        out.navigations.push(nav);
      }
    });

    await steps({ args, password, context, page, shot });
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
}
