// People signing in through their identity provider, in headless Chromium
// driven by Playwright.
//
// Run by crates/warden/tests/sign_in.rs against a real `warden serve` with
// a `[[login]]` provider (the test `oidc-provider`) and a `warden login`
// waiting for its device code. Inputs, from the environment:
//   SIGNIN_BASE         the server, e.g. http://127.0.0.1:PORT
//   SIGNIN_DEVICE_URL   the URL `warden login` printed (/ui/device?user_code=…)
//   SIGNIN_USER_CODE    the code it printed
//   SIGNIN_AUTHORIZE_URL the URL `warden login --browser` printed
//   SIGNIN_ARTIFACTS    where screenshots go
//   CHROMIUM            the browser (default /usr/bin/chromium)
// The scenario: Bob (an auditor at the provider) opens the audit log, is
// sent to the provider, signs in there and lands on the audit log signed
// in as himself; Alice (an ML engineer) opens the device URL, signs in,
// sees the code her terminal shows and approves it; Bob opens the URL of
// `warden login --browser`, approves on the consent page and lands on the
// command's loopback page (the consent page moves on by itself: a
// redirect after a form post would break the dashboard's form-action
// policy). No console error and
// no CSP violation on Warden's pages. Exit 0 and a JSON summary on the
// last line when every check passed; exit 1 with the failed expectation
// otherwise. Every wait is bounded.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const TIMEOUT = 15_000;
const WATCHDOG = 120_000;

class Expectation extends Error {}

function env(name) {
  const v = process.env[name];
  if (!v) throw new Expectation(`the environment variable ${name} is not set`);
  return v;
}

function expect(ok, message) {
  if (!ok) throw new Expectation(message);
}

let step = 'start';
function at(name) {
  step = name;
  console.log(`-- ${name}`);
}

const people = [];

/// A person in a browser context of their own (the provider keeps one
/// session per browser), with the console errors and CSP violations of
/// Warden's pages collected.
async function person(browser, base, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(TIMEOUT);
  context.setDefaultNavigationTimeout(TIMEOUT);
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`);
    });
  });
  const page = await context.newPage();
  const p = { name, page, errors: [] };
  page.on('console', (msg) => {
    if (msg.type() !== 'error' || !page.url().startsWith(base)) return;
    if (/favicon\.ico/.test(msg.location()?.url ?? '')) return;
    p.errors.push(`[${step}] console error on ${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => p.errors.push(`[${step}] uncaught exception on ${page.url()}: ${err.message}`));
  people.push(p);
  return p;
}

/// Signs in at the provider's login form, which the page must show now.
async function atProvider(p, user) {
  await p.page.locator('input[name=login]').waitFor({ state: 'visible' });
  await p.page.fill('input[name=login]', user);
  await p.page.fill('input[name=password]', `password-${user}`);
  await p.page.click('#submit');
}

async function landOn(p, pathname) {
  try {
    await p.page.waitForURL((u) => u.pathname === pathname, { timeout: TIMEOUT });
    await p.page.waitForLoadState('load');
  } catch (e) {
    const shown = await p.page.locator('body').innerText().catch(() => '(no page)');
    throw new Expectation(`${p.name}: expected ${pathname}, at ${p.page.url()}: ${shown.slice(0, 400)}`);
  }
}

async function scenario(browser, { base, deviceUrl, userCode, authorizeUrl, dir }) {
  at('bob opens the audit log and is sent to the provider');
  const bob = await person(browser, base, 'bob');
  await bob.page.goto(`${base}/ui/audit`);
  expect(!bob.page.url().startsWith(base), `bob should be at the provider, is at ${bob.page.url()}`);
  await atProvider(bob, 'bob');

  at('bob is back on the audit log, signed in with his roles');
  await landOn(bob, '/ui/audit');
  const who = await bob.page.locator('body').innerText();
  expect(who.includes('user:bob@example.com'), `the audit log should name bob: ${who.slice(0, 400)}`);
  await bob.page.screenshot({ path: path.join(dir, 'sign-in-audit.png'), fullPage: true });
  const events = await bob.page.locator('body').innerText();
  expect(events.includes('sign_in'), 'the sign-in is in the audit log bob reads');

  at('alice opens the device URL and signs in');
  const alice = await person(browser, base, 'alice');
  await alice.page.goto(deviceUrl);
  await atProvider(alice, 'alice');
  await landOn(alice, '/ui/device');
  const code = ((await alice.page.locator('#approve-code').textContent()) ?? '').trim();
  expect(code === userCode, `the page should show the code ${userCode}, shows ${code}`);
  await alice.page.screenshot({ path: path.join(dir, 'sign-in-device.png'), fullPage: true });

  at('alice approves the device');
  await alice.page.click('#approve-allow');
  await alice.page.locator('#approve-done').waitFor({ state: 'visible' });

  at('bob approves warden login --browser on the consent page');
  await bob.page.goto(authorizeUrl);
  await landOn(bob, '/ui/authorize');
  await bob.page.click('#approve-allow');
  await bob.page.waitForURL((u) => u.pathname === '/callback' && u.port !== new URL(base).port, { timeout: TIMEOUT });
  const landed = await bob.page.locator('body').innerText();
  expect(landed.includes('Signed in'), `the command's page should say so: ${landed.slice(0, 200)}`);

  for (const p of people) {
    expect(p.errors.length === 0, `${p.name}: console errors or CSP violations:\n  ${p.errors.join('\n  ')}`);
  }
}

async function main() {
  const base = env('SIGNIN_BASE').replace(/\/+$/, '');
  const deviceUrl = env('SIGNIN_DEVICE_URL');
  const userCode = env('SIGNIN_USER_CODE');
  const authorizeUrl = env('SIGNIN_AUTHORIZE_URL');
  const dir = env('SIGNIN_ARTIFACTS');
  mkdirSync(dir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  });
  const watchdog = setTimeout(() => {
    console.error(`FAILED at step "${step}": the scenario ran longer than ${WATCHDOG / 1000} s`);
    process.exit(1);
  }, WATCHDOG);
  try {
    await scenario(browser, { base, deviceUrl, userCode, authorizeUrl, dir });
  } catch (e) {
    for (const p of people) {
      await p.page.screenshot({ path: path.join(dir, `failure-${p.name}.png`), fullPage: true, timeout: 5000 }).catch(() => {});
    }
    throw e;
  } finally {
    clearTimeout(watchdog);
    await browser.close().catch(() => {});
  }
  console.log(JSON.stringify({ ok: true, people: people.map((p) => p.name) }));
}

main().catch((e) => {
  const what = e instanceof Expectation ? e.message : e?.stack || String(e);
  console.error(`FAILED at step "${step}": ${what}`);
  process.exit(1);
});
