// SPDX-License-Identifier: Apache-2.0
// pages.mjs — screenshots of tokend's HTML pages in headless Chromium at a
// phone's and a desktop's width, with the measures
// tests/e2e/test_pages_browser.py asserts on (one JSON object, last line).
//
//   node tests/e2e/browser/pages.mjs --pages FILE.json --out DIR
//
// FILE.json: [{"name": "login", "url": "https://127.0.0.1:PORT/..."}, ...].
// For every page and width (phone 390x844, desktop 1280x800): the status,
// the h1, the text, whether the page scrolls sideways (scrollWidth of the
// document against the window's width), the font size of the h1 (the
// smallest of its text, so that a rule on an element inside it counts) and
// of the body text (the first paragraph), and a full-page screenshot
// DIR/<name>-<width>.png.
//
// Exit status as harness.mjs says: 0 when the script ran to the end.

import fs from 'node:fs';
import { out, redact, run } from './harness.mjs';

const WIDTHS = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
];

function measure() {
  const px = (el) => parseFloat(getComputedStyle(el).fontSize);
  const h1 = document.querySelector('h1');
  let h1Size = 0;
  if (h1) {
    // the smallest font any text of the heading is drawn in
    h1Size = px(h1);
    const walk = document.createTreeWalker(h1, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
      if (n.textContent.trim() && n.parentElement) h1Size = Math.min(h1Size, px(n.parentElement));
    }
  }
  const p = document.querySelector('main p:not(.nav):not(.small)') || document.querySelector('p') || document.body;
  // what sticks out on the right, for the failure message
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 0.5 && wide.length < 5) {
      wide.push(`${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''} right=${Math.round(r.right)}`);
    }
  }
  return {
    title: document.title,
    h1: h1 ? h1.textContent : '',
    text: document.body ? document.body.innerText : '',
    scrollWidth: document.scrollingElement.scrollWidth,
    innerWidth: window.innerWidth,
    h1FontPx: h1Size,
    bodyFontPx: px(p),
    styled: document.querySelectorAll('style').length > 0,
    wide,
  };
}

run(['pages', 'out'], { ignoreHTTPSErrors: true, needPassword: false }, async ({ args, page }) => {
  const pages = JSON.parse(fs.readFileSync(args.pages, 'utf8'));
  for (const pg of pages) {
    for (const w of WIDTHS) {
      await page.setViewportSize({ width: w.width, height: w.height });
      const resp = await page.goto(pg.url);
      const key = `${pg.name}-${w.name}`;
      const shotPath = `${args.out}/${key}.png`;
      out.steps[key] = {
        url: redact(page.url()),
        status: resp ? resp.status() : 0,
        ...(await page.evaluate(measure)),
      };
      await page.screenshot({ path: shotPath, fullPage: true });
      out.screenshots[key] = shotPath;
    }
  }
});
