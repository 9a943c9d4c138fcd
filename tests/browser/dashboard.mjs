// Warden's compliance dashboard in headless Chromium, driven by Playwright.
//
// Run by crates/warden/tests/dashboard_browser.rs against a real
// `warden serve` it seeded. Inputs, from the environment:
//   DASHBOARD_BASE              the server, e.g. http://127.0.0.1:PORT
//   DASHBOARD_LINK_AUDITOR      `warden ui link` for an auditor (user:audrey)
//   DASHBOARD_LINK_APPROVER     ... for an approver (user:carol)
//   DASHBOARD_LINK_APPROVER2    ... for another approver (user:dan), who
//                               signs in by pasting the link's token
//   DASHBOARD_PROMOTION_ID      the open promotion request (0 of 2 approvals)
//   DASHBOARD_CLIENT_ID         a registered client
//   DASHBOARD_DENIED_SUBJECT    a subject with denied access decisions
//   DASHBOARD_ARTIFACTS         where screenshots go
//   DASHBOARD_DOCS_DIR          optional: also write the README's screenshots here
//   CHROMIUM                    the browser (default /usr/bin/chromium)
// Exit 0 and a JSON summary on the last line when every check passed;
// exit 1 with the failed expectation otherwise. Every wait is bounded.
import { chromium } from 'playwright-core';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const TIMEOUT = 10_000;
const WATCHDOG = 200_000;
const NARROW = { width: 390, height: 844 };
const WIDE = { width: 1280, height: 800 };

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
const steps = [];
function at(name) {
  step = name;
  steps.push(name);
  console.log(`-- ${name}`);
}

const people = [];
const shots = [];
const observations = {};

/// A person in their own browser context, with console errors, uncaught
/// exceptions and CSP violations collected.
async function person(browser, base, name) {
  const context = await browser.newContext({ baseURL: base, viewport: WIDE, deviceScaleFactor: 1 });
  context.setDefaultTimeout(TIMEOUT);
  context.setDefaultNavigationTimeout(TIMEOUT);
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(
        `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} in ${e.sourceFile || e.documentURI}:${e.lineNumber}`,
      );
    });
  });
  const page = await context.newPage();
  const p = { name, context, page, errors: [], tolerated: [], allow: [], requests: [] };
  const note = (text) => {
    if (p.allow.some((re) => re.test(text))) p.tolerated.push(text);
    else p.errors.push(`[${step}] ${text}`);
  };
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const source = msg.location()?.url ?? '';
    // The browser's own request for an icon the pages do not declare is
    // not a page error (noted in the summary).
    if (/ 404 /.test(msg.text()) && new URL(source || base).pathname === '/favicon.ico') {
      p.tolerated.push(`${msg.text()} (${source})`);
      return;
    }
    note(`console error on ${page.url()}: ${msg.text()}${source ? ` (${source})` : ''}`);
  });
  page.on('pageerror', (err) => note(`uncaught exception on ${page.url()}: ${err.message}`));
  page.on('request', (r) => p.requests.push(r.url()));
  people.push(p);
  return p;
}

/// Fails on any console error or CSP violation seen so far.
function clean(p) {
  expect(p.errors.length === 0, `${p.name}: console errors or CSP violations:\n  ${p.errors.join('\n  ')}`);
}

/// Runs `fn` while console errors matching `re` (an expected HTTP error
/// status) are tolerated.
async function tolerating(p, re, fn) {
  p.allow.push(re);
  try {
    return await fn();
  } finally {
    // Let late console messages of the response arrive first.
    await p.page.waitForTimeout(200);
    p.allow.pop();
  }
}

async function shot(p, dir, docsDir, name, { docs = false } = {}) {
  const file = path.join(dir, `${name}.png`);
  await p.page.screenshot({ path: file, fullPage: true, animations: 'disabled', caret: 'hide' });
  shots.push(file);
  if (docs && docsDir) {
    const target = path.join(docsDir, `${name}.png`);
    copyFileSync(file, target);
    shots.push(target);
  }
}

/// Waits until the element `selector` was replaced by an htmx swap that
/// `action` starts, and htmx is idle.
async function htmxSwap(page, selector, action) {
  await page.locator(selector).evaluate((el) => el.setAttribute('data-stale', ''));
  await action();
  await page.locator(`${selector}:not([data-stale])`).waitFor({ state: 'attached' });
  await page.waitForFunction(() => !document.querySelector('.htmx-request'), null, { timeout: TIMEOUT });
}

async function h1(page) {
  return ((await page.locator('h1').first().textContent()) ?? '').trim();
}

function pathOf(page) {
  return new URL(page.url()).pathname;
}

/// Waits for the page to reach `pathname`; if it does not, fails with
/// what the page shows instead.
async function landOn(p, pathname, doing) {
  try {
    await p.page.waitForURL((u) => u.pathname === pathname, { timeout: TIMEOUT });
    await p.page.waitForLoadState('load');
  } catch (e) {
    const shown = await p.page
      .evaluate(() => ({
        heading: document.querySelector('h1')?.textContent?.trim() ?? '',
        alert: [...document.querySelectorAll('.alert')].map((el) => el.textContent.trim()).join(' | '),
      }))
      .catch(() => ({ heading: '?', alert: '?' }));
    throw new Expectation(
      `${p.name}: ${doing} did not reach ${pathname} within ${TIMEOUT / 1000} s; the browser is at ${p.page.url()} showing "${shown.heading}": ${shown.alert || '(no alert)'} [${e.message.split('\n')[0]}]`,
    );
  }
}

/// Signs in by opening a login link: app.js moves the fragment's token
/// into the form and submits it.
async function signInWithLink(p, link, landing = '/ui/audit') {
  await p.page.goto(link, { waitUntil: 'load' });
  const token = new URLSearchParams(new URL(link).hash.slice(1)).get('token');
  // The link never signs in by itself: the page names the person and waits.
  const note = p.page.locator('#link-note');
  await note.waitFor({ state: 'visible', timeout: TIMEOUT });
  const sub = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub;
  expect(((await note.textContent()) ?? '').includes(sub), `${p.name}: the login link does not say it signs in as ${sub}`);
  expect(!p.page.url().includes('token='), `${p.name}: the token is still in the address bar: ${p.page.url()}`);
  await p.page.getByRole('button', { name: 'Sign in' }).click();
  await landOn(p, landing, 'signing in with a login link');
  // (Playwright reports a navigation's URL with its fragment, which the
  // browser never sends: only the part before '#' reaches a server.)
  const leaked = p.requests.map((u) => u.split('#')[0]).filter((u) => u.includes(token) || u.includes('token='));
  expect(leaked.length === 0, `${p.name}: the token was sent in a URL: ${leaked.join(', ')}`);
}

/// Signs in by pasting a token into the form.
async function signInByPasting(p, token, landing = '/ui/audit') {
  await p.page.goto('/ui/login');
  await p.page.locator('#token').fill(token);
  await p.page.getByRole('button', { name: 'Sign in' }).click();
  await landOn(p, landing, 'signing in with a pasted token');
}

/// The rows of the events table.
async function eventRows(page) {
  return page.locator('#events tbody tr').evaluateAll((rows) =>
    rows.map((tr) => {
      const cells = [...tr.querySelectorAll('td')].map((td) => td.textContent.trim());
      const badge = tr.querySelector('.badge.allow, .badge.deny');
      return {
        empty: tr.querySelector('td[colspan]') !== null,
        index: cells[0],
        kind: cells[2],
        subject: cells[3],
        decision: badge ? badge.textContent.trim() : '',
        denyBadge: tr.querySelector('.badge.deny') !== null,
        href: tr.querySelector('a')?.getAttribute('href') ?? '',
      };
    }),
  );
}

function newestFirst(rows) {
  return rows.every((r, i) => i === 0 || Number(r.index) < Number(rows[i - 1].index));
}

/// "N of M" approvals on a request card.
async function approvals(card) {
  const text = ((await card.locator('.approvals').textContent()) ?? '').trim();
  const m = /^(\d+) of (\d+)$/.exec(text);
  expect(m, `approvals read "${text}", not "N of M"`);
  return { got: Number(m[1]), required: Number(m[2]) };
}

/// No horizontal page overflow at the current (narrow) width, except
/// inside the regions that scroll themselves.
async function noOverflow(p, what) {
  const o = await p.page.evaluate(() => {
    const doc = document.documentElement;
    const width = doc.clientWidth;
    const describe = (el) => {
      let s = el.tagName.toLowerCase();
      if (el.id) s += `#${el.id}`;
      if (typeof el.className === 'string' && el.className.trim()) s += `.${el.className.trim().split(/\s+/).join('.')}`;
      return s;
    };
    const offenders = [];
    for (const el of document.body.querySelectorAll('*')) {
      if (el.parentElement?.closest('.table-wrap, .graph-wrap')) continue;
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 1) {
        offenders.push(`${describe(el)} (right edge ${Math.round(r.right)}px, width ${Math.round(r.width)}px)`);
      }
    }
    return { scrollWidth: doc.scrollWidth, width, offenders: offenders.slice(0, 12) };
  });
  expect(
    o.scrollWidth <= NARROW.width + 1,
    `${what} at ${NARROW.width}px: the page scrolls sideways (scrollWidth ${o.scrollWidth}); widest elements:\n  ${o.offenders.join('\n  ')}`,
  );
  if (o.offenders.length) observations[`${what}-clipped-at-390`] = o.offenders;
}

async function narrow(p, dir, docsDir, url, name) {
  await p.page.setViewportSize(NARROW);
  try {
    await p.page.goto(url);
    await noOverflow(p, name);
    await shot(p, dir, docsDir, `${name}-mobile`);
    clean(p);
  } finally {
    await p.page.setViewportSize(WIDE);
  }
}

async function main() {
  const base = env('DASHBOARD_BASE').replace(/\/+$/, '');
  const links = {
    auditor: env('DASHBOARD_LINK_AUDITOR'),
    approver: env('DASHBOARD_LINK_APPROVER'),
    approver2: env('DASHBOARD_LINK_APPROVER2'),
  };
  const promotion = env('DASHBOARD_PROMOTION_ID');
  const clientId = env('DASHBOARD_CLIENT_ID');
  const deniedSubject = env('DASHBOARD_DENIED_SUBJECT');
  const dir = env('DASHBOARD_ARTIFACTS');
  const docsDir = process.env.DASHBOARD_DOCS_DIR || '';
  mkdirSync(dir, { recursive: true });
  if (docsDir) mkdirSync(docsDir, { recursive: true });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
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
  const watchdog = setTimeout(() => {
    console.error(`FAILED at step "${step}": the scenario ran longer than ${WATCHDOG / 1000} s`);
    process.exit(1);
  }, WATCHDOG);
  try {
    await scenario(browser, { base, links, promotion, clientId, deniedSubject, dir, docsDir });
  } catch (e) {
    for (const p of people) {
      try {
        await p.page.screenshot({ path: path.join(dir, `failure-${p.name}.png`), fullPage: true, timeout: 5000 });
      } catch {
        // The page may be gone.
      }
    }
    throw e;
  } finally {
    clearTimeout(watchdog);
    await browser.close().catch(() => {});
  }
  console.log(
    JSON.stringify({
      ok: true,
      browser: browser.version(),
      steps,
      screenshots: shots,
      observations,
      tolerated: people.flatMap((p) => p.tolerated.map((t) => `${p.name}: ${t}`)),
    }),
  );
}

async function scenario(browser, { base, links, promotion, clientId, deniedSubject, dir, docsDir }) {
  const auditor = await person(browser, base, 'auditor');
  const approver = await person(browser, base, 'approver');
  const approver2 = await person(browser, base, 'approver2');
  const a = auditor.page;
  let rows;

  // (a) Sign in: a login link, and a pasted token.
  at('sign in with a login link (auditor)');
  await signInWithLink(auditor, links.auditor);
  expect((await h1(a)) === 'Audit log', `the auditor landed on "${await h1(a)}", not the audit log`);
  expect(
    ((await a.locator('.who .principal').textContent()) ?? '').trim() === 'user:audrey',
    'the header does not name user:audrey',
  );
  clean(auditor);

  at('sign in with a login link (approver)');
  // An approver may not read the audit log: it lands on Models.
  await signInWithLink(approver, links.approver, '/ui/models');
  observations.approver_landing = await h1(approver.page);
  expect(observations.approver_landing === 'Models', `the approver landed on "${observations.approver_landing}"`);
  clean(approver);

  at('sign in by pasting a token (second approver)');
  const token2 = new URLSearchParams(new URL(links.approver2).hash.slice(1)).get('token');
  expect(token2, 'the second login link has no token');
  await signInByPasting(approver2, token2, '/ui/models');
  expect(
    ((await approver2.page.locator('.who .principal').textContent()) ?? '').trim() === 'user:dan',
    'the header does not name user:dan',
  );
  clean(approver2);

  // (b) The audit log, newest first, and searching it.
  at('events newest first');
  rows = await eventRows(a);
  const count = ((await a.locator('#result-count').textContent()) ?? '').trim();
  const inLog = /of (\d+) in the log/.exec(count);
  expect(inLog, `#result-count reads "${count}"`);
  expect(rows.length > 1 && !rows[0].empty, 'the audit page lists no events');
  expect(newestFirst(rows), `the events are not newest first: ${rows.map((r) => r.index).join(', ')}`);
  expect(
    Number(rows[0].index) === Number(inLog[1]) - 1,
    `the first row is event ${rows[0].index}, not the newest (${Number(inLog[1]) - 1}); "${count}"`,
  );

  at('search: access decisions denied');
  await a.locator('#f-type').selectOption('access_decision');
  await a.locator('#f-decision').selectOption('deny');
  await htmxSwap(a, '#results', () => a.locator('form[role=search] button[type=submit]').click());
  let url = new URL(a.url());
  expect(
    url.searchParams.get('type') === 'access_decision' && url.searchParams.get('decision') === 'deny',
    `the search is not in the address bar: ${a.url()}`,
  );
  rows = await eventRows(a);
  expect(rows.length > 0 && !rows[0].empty, 'no denied access decision is listed');
  expect(newestFirst(rows), `the denials are not newest first: ${rows.map((r) => r.index).join(', ')}`);
  const notDenied = rows.filter((r) => !r.denyBadge || r.kind !== 'access_decision');
  expect(notDenied.length === 0, `rows that are not denied access decisions: ${JSON.stringify(notDenied)}`);
  const denials = rows.length;
  clean(auditor);

  at('search: by subject');
  await a.locator('#f-type').selectOption('');
  await a.locator('#f-decision').selectOption('');
  await a.locator('#f-subject').fill(deniedSubject);
  await htmxSwap(a, '#results', () => a.locator('form[role=search] button[type=submit]').click());
  url = new URL(a.url());
  expect(url.searchParams.get('subject') === deniedSubject, `the subject is not in the address bar: ${a.url()}`);
  rows = await eventRows(a);
  expect(rows.length > 0 && !rows[0].empty, `no event of ${deniedSubject} is listed`);
  const others = rows.filter((r) => r.subject !== deniedSubject);
  expect(others.length === 0, `rows of other subjects: ${JSON.stringify(others)}`);
  const denied = rows.find((r) => r.denyBadge);
  expect(denied, `none of ${deniedSubject}'s events is a denial`);
  expect(
    ((await a.locator('#result-count').textContent()) ?? '').includes(`${rows.length} event`),
    'the result count does not match the rows',
  );
  clean(auditor);

  // (c) An event and its inclusion proof.
  at('open an event');
  await a.locator(`#events a[href="${denied.href}"]`).click();
  await a.waitForURL((u) => u.pathname === denied.href);
  let verdict = '';
  for (let i = 0; i < 15; i++) {
    verdict = (await a.locator('#proof-result').getAttribute('data-verdict')) ?? '';
    if (verdict !== 'pending') break;
    await a.waitForTimeout(1000);
    await a.reload();
  }
  expect(
    verdict === 'verified',
    `the inclusion proof of ${denied.href} is "${verdict}": ${(await a.locator('#proof-result').textContent())?.trim()}`,
  );
  expect(
    ((await a.locator('.kv .badge.ok').first().textContent()) ?? '').includes('matches its leaf hash'),
    'the event body does not match its leaf hash',
  );
  await shot(auditor, dir, docsDir, 'audit-event', { docs: true });
  const eventUrl = denied.href;
  clean(auditor);

  // (d) Verify the whole log.
  at('verify the whole log');
  await a.goto('/ui/audit');
  await a.locator('#verify-button').click();
  await a.locator('#verify-result').waitFor({ timeout: 30_000 });
  const verifyVerdict = await a.locator('#verify-result').getAttribute('data-verdict');
  expect(verifyVerdict === 'ok', `verifying the log: ${(await a.locator('#verify-result').textContent())?.trim()}`);
  await shot(auditor, dir, docsDir, 'audit', { docs: true });
  clean(auditor);

  // (e) Lineage.
  at('lineage of dataset:features@1');
  await a.goto('/ui/lineage');
  await a.locator('#l-node').fill('dataset:features@1');
  await htmxSwap(a, '#lineage', () => a.getByRole('button', { name: 'Show', exact: true }).click());
  await a.locator('#lineage-graph a.node[data-node="dataset:features@1"]').waitFor();
  const nodes = await a.locator('#lineage-graph a.node').evaluateAll((els) => els.map((e) => e.getAttribute('data-node')));
  for (const n of ['dataset:transactions@1', 'dataset:features@1', 'model:fraud@1']) {
    expect(nodes.includes(n), `the graph of dataset:features@1 lacks ${n}: ${JSON.stringify(nodes)}`);
  }
  expect(
    (await a.locator('#lineage-graph a.node.root').getAttribute('data-node')) === 'dataset:features@1',
    'dataset:features@1 is not the graph\'s root',
  );
  expect(new URL(a.url()).searchParams.get('node') === 'dataset:features@1', `the node is not in the address bar: ${a.url()}`);
  await shot(auditor, dir, docsDir, 'lineage', { docs: true });
  clean(auditor);

  at('re-centre the graph from the keyboard');
  await a.evaluate(() => {
    window.__sameDocument = true;
  });
  await a.locator('#lineage-graph a.node[data-node="model:fraud@1"]').focus();
  expect(
    await a.evaluate(() => document.activeElement?.getAttribute('data-node') === 'model:fraud@1'),
    'the model node cannot take the keyboard focus',
  );
  await a.keyboard.press('Enter');
  await a.waitForURL((u) => u.searchParams.get('node') === 'model:fraud@1');
  await a.locator('#graph-h', { hasText: 'model:fraud@1' }).waitFor();
  await a.locator('#lineage-graph a.node.root[data-node="model:fraud@1"]').waitFor();
  await a.waitForFunction(() => !document.querySelector('.htmx-request'), null, { timeout: TIMEOUT });
  observations.recentre = (await a.evaluate(() => window.__sameDocument === true)) ? 'htmx swap' : 'full page load';
  const picker = await a.locator('#l-node').inputValue();
  if (picker !== 'model:fraud@1') observations.lineage_picker_after_recentre = picker;
  clean(auditor);

  at('erasure impact of dataset:transactions@1');
  await a.goto('/ui/lineage?node=dataset%3Atransactions%401');
  await a.getByRole('link', { name: /Erasure impact of this version/ }).click();
  await a.waitForURL((u) => u.pathname === '/ui/lineage/impact');
  const impactModels = await a.locator('#impact-models li').allTextContents();
  const impactDatasets = await a.locator('#impact-datasets li').allTextContents();
  expect(impactModels.map((t) => t.trim()).includes('model:fraud@1'), `#impact-models: ${JSON.stringify(impactModels)}`);
  expect(
    impactDatasets.map((t) => t.trim()).includes('dataset:features@1'),
    `#impact-datasets: ${JSON.stringify(impactDatasets)}`,
  );
  await shot(auditor, dir, docsDir, 'erasure-impact', { docs: true });
  clean(auditor);

  // (f) An approver approves.
  at('approve as an approver');
  const c = approver.page;
  await c.goto('/ui/models');
  let card = c.locator(`[id="request-${promotion}"]`);
  await card.waitFor();
  const approve = card.getByRole('button', { name: 'Approve', exact: true });
  expect((await approve.count()) === 1 && (await approve.isVisible()), 'the approver sees no Approve button');
  const before = await approvals(card);
  expect(before.got === 0 && before.required === 2, `approvals before: ${JSON.stringify(before)}`);
  await card.locator('input[name=reason]').fill('evaluation reviewed, metrics OK');
  await approve.click();
  await c.waitForURL((u) => u.pathname === '/ui/models' && u.searchParams.get('voted') === promotion);
  await c.locator('#vote-notice').waitFor();
  card = c.locator(`[id="request-${promotion}"]`);
  const after = await approvals(card);
  expect(after.got === before.got + 1, `approvals after the vote: ${after.got}, before: ${before.got}`);
  expect((await card.locator('table').textContent())?.includes('user:carol'), 'the ballot of user:carol is not listed');
  // Each approver counts once: after voting, no Approve button is offered again.
  expect(
    (await card.getByRole('button', { name: 'Approve', exact: true }).count()) === 0,
    'the approver is offered the Approve button again after voting',
  );
  await shot(approver, dir, docsDir, 'models', { docs: true });
  await narrow(approver, dir, docsDir, '/ui/models', 'models');
  clean(approver);

  // (g) The auditor may not vote, and the server refuses when they try.
  at('the auditor sees no vote form');
  await a.goto('/ui/models');
  card = a.locator(`[id="request-${promotion}"]`);
  await card.waitFor();
  expect((await card.getByRole('button', { name: 'Approve' }).count()) === 0, 'the auditor is offered an Approve button');
  expect(await card.locator('[data-no-vote]').isVisible(), 'the auditor is not told they may not vote');
  const auditorBefore = await approvals(card);
  await shot(auditor, dir, docsDir, 'models-auditor');
  clean(auditor);

  at('the server refuses the auditor\'s vote');
  const csrf = await a.locator('input[name=csrf]').first().inputValue();
  expect(csrf.length > 10, 'no CSRF token on the page');
  const refused = await tolerating(auditor, /status of 403/, async () => {
    const response = a.waitForResponse(
      (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === `/ui/promotions/${promotion}/approve`,
    );
    await a.evaluate(
      ({ id, token }) => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = `/ui/promotions/${encodeURIComponent(id)}/approve`;
        for (const [name, value] of [
          ['csrf', token],
          ['reason', 'looks fine to me'],
        ]) {
          const input = document.createElement('input');
          input.type = 'hidden';
          input.name = name;
          input.value = value;
          form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
      },
      { id: promotion, token: csrf },
    );
    const r = await response;
    await a.waitForLoadState('load');
    return r;
  });
  expect(refused.status() === 403, `the auditor's vote answered HTTP ${refused.status()}, not 403`);
  expect((await h1(a)) === 'Not allowed', `the refusal page's heading is "${await h1(a)}", not "Not allowed"`);
  await shot(auditor, dir, docsDir, 'vote-refused-auditor');
  await a.goto('/ui/models');
  const auditorAfter = await approvals(a.locator(`[id="request-${promotion}"]`));
  expect(
    auditorAfter.got === auditorBefore.got,
    `the refused vote changed the approvals: ${auditorBefore.got} → ${auditorAfter.got}`,
  );
  clean(auditor);

  // (h) Access matrix.
  at('access of the data-scientist role');
  await a.goto('/ui/access');
  await a.locator('#a-role').selectOption('data-scientist');
  await htmxSwap(a, '#matrix', () => a.locator('form[aria-labelledby=by-role-h] button[type=submit]').click());
  const matrixRows = await a.locator('#access-matrix tbody tr').count();
  expect(matrixRows > 0, '#access-matrix has no rows');
  expect(
    ((await a.locator('#matrix-h').textContent()) ?? '').includes('data-scientist'),
    `the matrix heading does not name the role: ${await a.locator('#matrix-h').textContent()}`,
  );
  expect(new URL(a.url()).searchParams.get('role') === 'data-scientist', `the role is not in the address bar: ${a.url()}`);
  await shot(auditor, dir, docsDir, 'access', { docs: true });
  const accessUrl = a.url();
  clean(auditor);

  // (i) Keys and clients.
  at('keys and clients');
  await a.goto('/ui/keys');
  expect((await a.locator('#keys tbody tr .badge.active').count()) >= 1, '#keys shows no active key');
  const clientIds = await a.locator('#clients tbody tr td:first-child').allTextContents();
  expect(
    clientIds.some((t) => t.trim().split(/\s+/)[0] === clientId),
    `#clients does not list ${clientId}: ${JSON.stringify(clientIds)}`,
  );
  await shot(auditor, dir, docsDir, 'keys', { docs: true });
  clean(auditor);

  // The second approver completes the promotion.
  at('the second approval puts the version in production');
  const d = approver2.page;
  await d.goto('/ui/models');
  card = d.locator(`[id="request-${promotion}"]`);
  await card.waitFor();
  await card.locator('input[name=reason]').fill('reviewed the evaluation too');
  await card.getByRole('button', { name: 'Approve', exact: true }).click();
  await d.waitForURL((u) => u.searchParams.get('voted') === promotion);
  const notice = ((await d.locator('#vote-notice').textContent()) ?? '').trim();
  expect(notice.includes('production'), `the completion notice reads "${notice}"`);
  expect((await d.locator(`[id="request-${promotion}"]`).count()) === 0, 'the completed request is still pending');
  await shot(approver2, dir, docsDir, 'models-completed');
  clean(approver2);

  // Narrow screens: no sideways scrolling of any page.
  at('narrow screens (390 px)');
  for (const [url, name] of [
    ['/ui/audit', 'audit'],
    [eventUrl, 'audit-event'],
    ['/ui/lineage?node=dataset%3Afeatures%401', 'lineage'],
    ['/ui/lineage/impact?node=dataset%3Atransactions%401', 'erasure-impact'],
    [accessUrl, 'access'],
    ['/ui/keys', 'keys'],
  ]) {
    await narrow(auditor, dir, docsDir, url, name);
  }

  for (const p of people) clean(p);
}

main().catch((e) => {
  const what = e instanceof Expectation ? e.message : e?.stack || String(e);
  console.error(`FAILED at step "${step}": ${what}`);
  for (const p of people) {
    if (p.errors.length) console.error(`${p.name}: console errors:\n  ${p.errors.join('\n  ')}`);
  }
  process.exit(1);
});
