// End-to-end test of the admin console in headless Chromium (playwright-core).
//
// Run by tests/console.rs (`cargo test --test console`), which starts a mock
// OpenAI vendor and the gateway and passes:
//   CONSOLE_URL    admin listener base (the console is at `/`)
//   MAIN_URL       gateway main port base (the console is also at `/admin/`)
//   TOKEN          the admin / auth token
//   MOCK_URL       the mock OpenAI vendor base URL, with /v1
//   FILE_PROVIDER  optional: name of a provider declared in the config file
//   CHROMIUM       optional: browser binary (default /usr/bin/chromium)
// Prints one line per check; exits 1 with the reason on the first failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const started = Date.now();
const checks = [];
const browserLog = [];
let context = null;
let page = null;
let userDataDir = null;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v.replace(/\/+$/, '');
}

function ok(message) {
  checks.push(message);
  console.log(`ok ${checks.length} - ${message}`);
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const CONSOLE_URL = need('CONSOLE_URL');
const MAIN_URL = need('MAIN_URL');
const TOKEN = process.env.TOKEN || '';
const MOCK_URL = need('MOCK_URL');
const FILE_PROVIDER = process.env.FILE_PROVIDER || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!TOKEN) throw new Error('environment variable TOKEN is not set');

const PROVIDER = 'console-mock';
const KEY1 = 'sk-console-e2e-secret-0000000001';
const KEY2 = 'sk-console-e2e-secret-0000000002';
const MODEL = 'console-test';

const sel = (testid) => `[data-testid="${testid}"]`;
const providerRow = (name) => `${sel('provider-row')}[data-name="${name}"]`;

async function chat(model) {
  const r = await fetch(`${MAIN_URL}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello from the console test' }] }),
  });
  const text = await r.text();
  return { status: r.status, text, provider: r.headers.get('x-llm-orchestrator-provider') };
}

/** Poll `fn` until it returns a truthy value. */
async function until(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function text(selector) {
  return (await page.locator(selector).first().textContent()) || '';
}

async function login(token) {
  await page.fill(sel('login-token'), token);
  await page.click(sel('login-submit'));
}

async function openTab(name) {
  await page.click(sel(`tab-${name}`));
  await page.waitForSelector(`${sel(`view-${name}`)}:not([hidden])`);
}

async function main() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} does not exist: run ./scripts/bootstrap test`);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-e2e-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => browserLog.push(`[${m.type()}] ${m.text()}`));
  // Confirmation dialogs (delete, import) are accepted.
  page.on('dialog', (d) => d.accept());
  ok(`launched ${CHROMIUM} (${context.browser() ? context.browser().version() : 'persistent context'})`);

  // ---------------------------------------------------------- login
  const resp = await page.goto(`${CONSOLE_URL}/`);
  check(resp && resp.status() === 200, `GET ${CONSOLE_URL}/ answered ${resp && resp.status()}`);
  await page.waitForSelector(`${sel('login-form')}:visible`);
  const styled = await page.evaluate(() => getComputedStyle(document.querySelector('.login')).display);
  check(styled === 'flex', `style.css is not applied on the admin listener (display ${styled})`);
  ok('console loads on the admin listener with its stylesheet; login form shown');

  await login('definitely-not-the-token');
  await page.waitForSelector(`${sel('login-error')}:visible`);
  const loginErr = await text(sel('login-error'));
  check(/incorrect bearer token/i.test(loginErr), `wrong token: unexpected login error "${loginErr}"`);
  check(await page.isHidden(sel('app-view')), 'wrong token: the app became visible');
  ok(`a wrong token is refused with "${loginErr.trim()}"`);

  await login(TOKEN);
  await page.waitForSelector(`${sel('view-providers')}:visible`);
  const stored = await page.evaluate(() => sessionStorage.getItem('llm-orchestrator.admin-token'));
  check(stored === TOKEN, 'the token is not kept in sessionStorage');
  ok('the right token signs in (kept in sessionStorage); providers view shown');

  // ---------------------------------------------------------- file-declared provider: read-only
  if (FILE_PROVIDER) {
    const row = page.locator(providerRow(FILE_PROVIDER));
    await row.waitFor();
    check((await row.locator(sel('provider-source')).textContent()).trim() === 'file', 'file provider: source is not "file"');
    // The API refuses (409) to disable or delete a provider the file
    // declares: the console offers neither.
    for (const id of ['provider-toggle', 'provider-delete']) {
      const button = row.locator(sel(id));
      check(await button.isDisabled(), `file provider: the ${id} button is enabled`);
      const title = (await button.getAttribute('title')) || '';
      check(/configuration file/.test(title), `file provider: the ${id} button does not say why it is disabled ("${title}")`);
    }
    ok(`Disable and Delete are disabled for file-declared ${FILE_PROVIDER}, with the reason as tooltip`);
  }

  // ---------------------------------------------------------- create a provider
  await page.click(sel('provider-new'));
  await page.waitForSelector(`${sel('provider-form')}:visible`);
  await page.fill(sel('pf-name'), PROVIDER);
  await page.selectOption(sel('pf-type'), 'openai');
  await page.fill(sel('pf-base-url'), MOCK_URL);
  await page.fill(sel('pf-keys'), KEY1);
  await page.fill(sel('pf-models'), 'console-*');
  await page.click(sel('pf-submit'));
  const row = page.locator(providerRow(PROVIDER));
  await row.waitFor();
  await page.waitForSelector(`${sel('provider-form')}`, { state: 'hidden' });
  const keysCell = (await row.locator(sel('provider-keys')).textContent()).trim();
  check(keysCell === 'sk-…0001', `the key is not shown masked: "${keysCell}"`);
  check(!(await page.content()).includes(KEY1), 'the secret key appears in the page');
  check((await row.locator(sel('provider-type')).textContent()).trim() === 'openai', 'type column');
  check((await row.locator(sel('provider-source')).textContent()).trim() === 'api', 'source column');
  check((await row.locator(sel('provider-models')).textContent()).includes('console-*'), 'models column');
  for (const id of ['provider-toggle', 'provider-delete']) {
    check(!(await row.locator(sel(id)).isDisabled()), `API provider: the ${id} button is disabled`);
  }
  const badge = (await row.locator(sel('health-badge')).textContent()).trim();
  check(['healthy', 'degraded', 'unhealthy'].includes(badge), `health badge "${badge}"`);
  ok(`provider ${PROVIDER} created through the form: type openai, source api, key ${keysCell}, models console-*, health ${badge}`);

  // ---------------------------------------------------------- invalid provider: 422 next to the field
  await page.click(sel('provider-new'));
  await page.fill(sel('pf-name'), 'console-bad');
  await page.fill(sel('pf-base-url'), 'ftp://not-a-vendor');
  await page.click(sel('pf-submit'));
  await page.waitForSelector(`${sel('pf-base_url-error')}:visible`);
  const fieldErr = await text(sel('pf-base_url-error'));
  check(/http/.test(fieldErr) && fieldErr.includes('ftp://not-a-vendor'), `unexpected base_url error "${fieldErr}"`);
  check(await page.isVisible(sel('provider-form-errors')), 'the form error summary is not shown');
  check((await page.locator(providerRow('console-bad')).count()) === 0, 'the invalid provider appears in the table');
  ok(`an invalid base_url gets the API's 422 next to the field: "${fieldErr.trim()}"`);
  await page.fill(sel('pf-base-url'), MOCK_URL);
  await page.fill(sel('pf-weight'), '0');
  await page.click(sel('pf-submit'));
  await until('the weight error', async () => (await page.isVisible(sel('pf-weight-error'))) && !(await page.isVisible(sel('pf-base_url-error'))));
  ok(`weight 0 gets a 422 next to the weight field: "${(await text(sel('pf-weight-error'))).trim()}"`);
  await page.click(sel('pf-cancel'));

  // ---------------------------------------------------------- keys: add, disable, remove
  await row.locator(sel('provider-edit')).click();
  await page.waitForSelector(`${sel('keys-panel')}:visible`);
  check((await page.inputValue(sel('pf-base-url'))) === MOCK_URL, 'the edit form is not filled in');
  await page.fill(sel('key-new'), KEY2);
  await page.click(sel('key-add'));
  await until('two key rows', async () => (await page.locator(sel('key-row')).count()) === 2);
  await until('the second key in the table', async () => (await row.locator(sel('provider-keys')).textContent()).includes('sk-…0002'));
  const second = page.locator(`${sel('key-row')}:has-text("sk-…0002")`);
  await second.locator(sel('key-toggle')).click();
  await until('the key disabled', async () => (await second.textContent()).includes('disabled'));
  await second.locator(sel('key-remove')).click();
  await until('one key row', async () => (await page.locator(sel('key-row')).count()) === 1);
  check(!(await page.content()).includes(KEY2), 'the second secret key appears in the page');
  ok('a key was added, disabled and removed from the edit panel');
  // edit: weight 3, saved by merge patch
  await page.fill(sel('pf-weight'), '3');
  await page.click(sel('pf-submit'));
  await until('weight 3 in the table', async () => (await row.locator(sel('provider-weight')).textContent()).trim() === '3');
  ok('editing the weight saves it (3)');

  // ---------------------------------------------------------- aliases
  await openTab('aliases');
  await page.fill(sel('alias-name'), 'console-alias');
  await page.fill(sel('alias-target'), MODEL);
  await page.click(sel('alias-submit'));
  const aliasRow = page.locator(`${sel('alias-row')}[data-alias="console-alias"]`);
  await aliasRow.waitFor();
  check((await aliasRow.textContent()).includes(MODEL), 'alias target not shown');
  await aliasRow.locator(sel('alias-delete')).click();
  await aliasRow.waitFor({ state: 'detached' });
  ok('an alias was set and deleted');

  // ---------------------------------------------------------- traffic
  const first = await chat(MODEL);
  check(first.status === 200, `chat completion through ${MAIN_URL} answered ${first.status}: ${first.text}`);
  check(first.provider === PROVIDER, `answered by provider "${first.provider}", not ${PROVIDER}`);
  check(JSON.parse(first.text).choices?.length > 0, `no choices in ${first.text}`);
  for (let i = 0; i < 11; i++) {
    const r = await chat(MODEL);
    check(r.status === 200, `request ${i + 2} answered ${r.status}`);
  }
  const missing = await chat('nowhere-model');
  check(missing.status === 404, `unknown model answered ${missing.status}`);
  ok(`12 chat completions for ${MODEL} through the main port answered 200 by ${PROVIDER}; an unknown model 404`);

  // ---------------------------------------------------------- request log
  await openTab('logs');
  await page.fill(sel('lf-model'), MODEL);
  await page.selectOption(sel('lf-status'), '200');
  await page.selectOption(sel('lf-limit'), '10');
  const logRows = `${sel('log-row')}[data-model="${MODEL}"][data-status="200"]`;
  await until('12 logged requests', async () => {
    await page.click(sel('lf-apply'));
    await page.waitForTimeout(200);
    return (await page.locator(logRows).count()) === 10 && !(await page.isDisabled(sel('logs-older')));
  });
  const firstPage = await until('a page of only the filtered rows', async () => {
    const rows = await page.locator(sel('log-row')).evaluateAll((rs) => rs.map((r) => [Number(r.dataset.id), r.dataset.model, r.dataset.status, r.dataset.provider]));
    return rows.length === 10 && rows.every(([, m, st, p]) => m === MODEL && st === '200' && p === PROVIDER) && rows;
  });
  ok(`the log browser shows the ${MODEL} requests (status 200, provider ${PROVIDER}), 10 per page`);
  await page.click(sel('logs-older'));
  await until('the older page', async () => {
    const ids = await page.locator(sel('log-row')).evaluateAll((rs) => rs.map((r) => Number(r.dataset.id)));
    return ids.length === 2 && ids.every((id) => id < Math.min(...firstPage.map((r) => r[0])));
  });
  check(await page.isDisabled(sel('logs-older')), '"older" is still enabled on the last page');
  ok('"Older" pages back with before_id: 2 older rows, then no further page');
  await page.locator(sel('log-row')).first().click();
  await page.waitForSelector(`${sel('log-detail')}:visible`);
  check((await text(`${sel('log-detail')}:visible`)).includes('request_id'), 'row details lack the request id');
  ok('clicking a row shows its details');
  await page.click(sel('lf-reset'));
  await page.selectOption(sel('lf-status'), 'errors');
  await page.click(sel('lf-apply'));
  await until('only errors, the 404 among them', async () => {
    const rows = await page.locator(sel('log-row')).evaluateAll((rs) => rs.map((r) => [Number(r.dataset.status), r.dataset.model]));
    return rows.length > 0 && rows.every(([st]) => st >= 400) && rows.some(([st, m]) => st === 404 && m === 'nowhere-model') && rows;
  });
  ok('the "errors" status filter shows the 404 and nothing below 400');

  // ---------------------------------------------------------- usage
  await openTab('usage');
  await page.waitForSelector(`${sel('chart-requests')} svg rect.bar`);
  for (const c of ['requests', 'errors', 'latency', 'tokens']) {
    check((await page.locator(`${sel(`chart-${c}`)} svg`).count()) === 1, `chart ${c} missing`);
  }
  const latencyPaths = await page.locator(`${sel('chart-latency')} svg circle.point`).count();
  check(latencyPaths > 0, 'the latency chart has no points');
  const usageRow = page.locator(`${sel('usage-row')}[data-group="${PROVIDER}"]`);
  await usageRow.waitFor();
  const requests = Number((await usageRow.locator('td').nth(1).textContent()).trim());
  check(requests >= 12, `usage summary counts ${requests} requests for ${PROVIDER}`);
  ok(`usage charts render as SVG (requests bars, errors, p50/p95 latency, tokens); summary: ${requests} requests for ${PROVIDER}`);
  await page.selectOption(sel('uf-group'), 'model');
  await page.waitForSelector(`${sel('usage-row')}[data-group="${MODEL}"]`);
  ok('grouping by model shows a summary row for console-test');

  // ---------------------------------------------------------- client keys
  await openTab('keys');
  await page.waitForSelector(`${sel('ckeys-empty')}:visible`);
  await page.click(sel('ckey-new'));
  await page.waitForSelector(`${sel('ckey-form')}:visible`);
  await page.fill(sel('kf-name'), 'console-app');
  await page.fill(sel('kf-owner'), 'console-team');
  await page.fill(sel('kf-models'), 'console-*');
  await page.check(sel('kf-api-openai'));
  await page.fill(sel('kf-extra'), '{not json');
  await page.click(sel('kf-submit'));
  await page.waitForSelector(`${sel('ckey-form-errors')}:visible`);
  check(/not valid JSON/.test(await text(sel('ckey-form-errors'))), 'invalid limits JSON is not reported');
  await page.fill(sel('kf-extra'), '');
  await page.fill(sel('kf-models'), '');
  await page.fill(sel('kf-name'), '');
  await page.click(sel('kf-submit'));
  await until('the empty-name error', async () => /name/.test(await text(sel('ckey-form-errors'))));
  ok(`the key form reports bad JSON locally and the API's 422 ("${(await text(sel('ckey-form-errors'))).trim()}")`);
  await page.fill(sel('kf-name'), 'console-app');
  await page.fill(sel('kf-models'), 'console-*');
  await page.click(sel('kf-submit'));
  await page.waitForSelector(`${sel('ckey-secret-box')}:visible`);
  const secret = await page.inputValue(sel('ckey-secret'));
  check(/^llmo-[A-Za-z0-9_-]{40}$/.test(secret), `the secret shown once is not a client key: "${secret}"`);
  const keyRow = page.locator(`${sel('ckey-row')}[data-name="console-app"]`);
  await keyRow.waitFor();
  const masked = (await keyRow.locator(sel('ckey-masked')).textContent()).trim();
  check(masked === `llmo-…${secret.slice(-4)}`, `the key is not shown masked: "${masked}"`);
  check((await keyRow.locator(sel('ckey-models')).textContent()).includes('console-*'), 'models column');
  check((await keyRow.locator(sel('ckey-apis')).textContent()).trim() === 'openai', 'apis column');
  check((await keyRow.locator(sel('ckey-owner')).textContent()).trim() === 'console-team', 'owner column');
  await page.click(sel('ckey-secret-done'));
  await page.waitForSelector(sel('ckey-secret-box'), { state: 'hidden' });
  check(!(await page.content()).includes(secret), 'the secret is still in the page after "I have saved it"');
  ok(`client key console-app created: the secret shown once, then only ${masked} in the page`);

  const keyChat = async (model) => {
    const r = await fetch(`${MAIN_URL}/v1/chat/completions`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello with a client key' }] }),
    });
    return r.status;
  };
  check((await keyChat(MODEL)) === 200, 'the new client key cannot call its model');
  check((await keyChat('other-model')) === 403, 'the client key may call a model outside its globs');
  await keyRow.locator(sel('ckey-toggle')).click();
  await until('the revoked row', async () => (await keyRow.locator(sel('ckey-enabled')).textContent()).trim() === 'no');
  check((await keyChat(MODEL)) === 401, 'a revoked client key is still accepted');
  ok('the key calls console-* (200), not other models (403); "Revoke" makes it 401');

  await keyRow.locator(sel('ckey-edit')).click();
  await page.waitForSelector(`${sel('ckey-form')}:visible`);
  check((await page.inputValue(sel('kf-name'))) === 'console-app', 'the key edit form is not filled in');
  await page.check(sel('kf-enabled'));
  await page.fill(sel('kf-owner'), 'console-team-2');
  await page.click(sel('kf-submit'));
  await until('the edited row', async () => (await keyRow.locator(sel('ckey-owner')).textContent()).trim() === 'console-team-2');
  check((await keyChat(MODEL)) === 200, 'the re-enabled client key is refused');
  // Usage per client key: the key's own row (its requests), apart from the master token's.
  await openTab('usage');
  await page.selectOption(sel('uf-group'), 'key');
  const keyUsage = `${sel('usage-row')}[data-group*="console-app"]`;
  await until('a usage row for the client key', async () => {
    await page.click(sel('uf-apply'));
    await page.waitForTimeout(200);
    return (await page.locator(keyUsage).count()) > 0;
  });
  const keyRequests = Number((await page.locator(keyUsage).locator('td').nth(1).textContent()).trim());
  check(keyRequests >= 2, `the client key's usage row counts ${keyRequests} requests`);
  check((await page.locator(`${sel('usage-row')}[data-group="(master token)"]`).count()) === 1, 'no usage row for the master token');
  check(/^\$/.test((await page.locator(keyUsage).locator(sel('usage-cost')).textContent()).trim()), 'no cost cell');
  ok(`usage grouped by client key: ${keyRequests} requests for console-app, the master token apart, with a cost column`);
  await page.selectOption(sel('uf-group'), 'provider');
  await openTab('keys');
  await keyRow.locator(sel('ckey-delete')).click();
  await page.waitForSelector(`${sel('ckeys-empty')}:visible`);
  check((await keyChat(MODEL)) === 401, 'a deleted client key is still accepted');
  ok('editing re-enables the key and changes its owner; deleting it makes it 401');

  // ---------------------------------------------------------- export / import
  await openTab('config');
  await page.selectOption(sel('export-format'), 'toml');
  await page.click(sel('export-view'));
  await page.waitForSelector(`${sel('export-preview')}:visible`);
  const exported = await text(sel('export-preview'));
  check(exported.includes(`name = "${PROVIDER}"`) && exported.includes('sk-…0001'), 'the TOML export lacks the provider or its masked key');
  check(!exported.includes(KEY1), 'the export without keys contains the secret');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(sel('export-download'))]);
  check(/\.toml$/.test(download.suggestedFilename()), `download named ${download.suggestedFilename()}`);
  ok(`the export shows masked TOML and downloads as ${download.suggestedFilename()}`);

  await page.fill(sel('import-text'), `[[providers]]\nname = "console-broken"\ntype = "openai"\nbase_url = "ftp://nope"\n`);
  await page.click(sel('import-preview'));
  await page.waitForSelector(`${sel('import-errors')}:visible`);
  check((await text(sel('import-errors'))).includes('base_url'), 'the invalid import error does not name base_url');
  check(await page.isDisabled(sel('import-apply')), 'apply is enabled after a failed dry run');
  ok('an invalid import is refused by the dry run with the field named');

  const doc = [
    '[[providers]]', `name = "${PROVIDER}"`, 'type = "openai"', `base_url = "${MOCK_URL}"`,
    'api_keys = ["sk-…0001"]', 'models = ["console-*"]', '',
    '[[providers]]', 'name = "console-imported"', 'type = "openai"', `base_url = "${MOCK_URL}"`, 'models = ["imported-*"]', '',
  ].join('\n');
  await page.fill(sel('import-text'), doc);
  await page.click(sel('import-preview'));
  await page.waitForSelector(`${sel('import-result')}:visible`);
  const preview = await text(sel('import-result'));
  check(/dry run/i.test(preview) && /providers added: console-imported/.test(preview), `dry run result: ${preview}`);
  check(!(await page.isDisabled(sel('import-apply'))), 'apply stays disabled after a valid dry run');
  ok('the dry run previews the import (providers added: console-imported)');
  await page.click(sel('import-apply'));
  await until('the applied import', async () => /Applied/.test(await text(sel('import-result'))));
  await openTab('providers');
  await page.locator(providerRow('console-imported')).waitFor();
  const again = await chat(MODEL);
  check(again.status === 200, `after the import ${MODEL} answered ${again.status}: ${again.text}`);
  ok('applying the import adds console-imported; the masked key still resolves (chat 200)');

  // ---------------------------------------------------------- 401 mid-session, logout
  await page.evaluate(() => sessionStorage.setItem('llm-orchestrator.admin-token', 'revoked-token'));
  await page.reload();
  await page.waitForSelector(`${sel('login-error')}:visible`);
  check(/incorrect bearer token/.test(await text(sel('login-error'))), 'a 401 does not explain itself on the login form');
  check(await page.evaluate(() => sessionStorage.getItem('llm-orchestrator.admin-token')) === null, 'the rejected token stays stored');
  ok('a 401 during a session returns to the login form with the reason');
  await login(TOKEN);
  await page.waitForSelector(`${sel('view-providers')}:visible`);
  await page.click(sel('logout'));
  await page.waitForSelector(`${sel('login-form')}:visible`);
  check(await page.evaluate(() => sessionStorage.getItem('llm-orchestrator.admin-token')) === null, 'logout keeps the token');
  ok('log out returns to the login form and forgets the token');

  // ---------------------------------------------------------- the main port
  const mainResp = await page.goto(`${MAIN_URL}/admin`);
  check(mainResp && mainResp.status() === 200 && page.url() === `${MAIN_URL}/admin/`, `${MAIN_URL}/admin ended at ${page.url()} (${mainResp && mainResp.status()})`);
  await page.waitForSelector(`${sel('login-form')}:visible`);
  check(await page.evaluate(() => getComputedStyle(document.querySelector('.login')).display) === 'flex', 'style.css is not applied under /admin/');
  await login(TOKEN);
  await page.locator(providerRow(PROVIDER)).waitFor();
  ok(`the console also works at ${MAIN_URL}/admin/ (redirected from /admin), listing ${PROVIDER}`);

  check(pageErrors.length === 0, `JavaScript errors in the page: ${pageErrors.join(' | ')}`);
  ok('no JavaScript errors in the page');
}

async function finish(code) {
  if (context) await context.close().catch(() => {});
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

const watchdog = setTimeout(() => {
  console.error(`FAIL: the console test did not finish within 150 s (after ${checks.length} checks)`);
  process.exit(1);
}, 150000);

try {
  await main();
  clearTimeout(watchdog);
  console.log(`console e2e: ${checks.length} checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await finish(0);
} catch (e) {
  clearTimeout(watchdog);
  console.error(`FAIL after ${checks.length} passing checks: ${e && e.stack ? e.stack : e}`);
  if (page) {
    try {
      const shot = path.join(os.tmpdir(), `console-e2e-failure-${process.pid}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      console.error(`page: ${page.url()}; screenshot: ${shot}`);
    } catch (_) { /* the page may be gone */ }
  }
  if (browserLog.length) console.error(`browser console (last 20):\n${browserLog.slice(-20).join('\n')}`);
  await finish(1);
}
