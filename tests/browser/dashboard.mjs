// Browser test of the dashboard (served by findings-api at /) against the running local
// stack, in Debian's headless Chromium driven by playwright-core (never a downloaded browser).
//
//   node tests/browser/dashboard.mjs [--junit FILE] [--artifacts DIR]
//
// Reads the URLs and the token from .local/casb.env (deploy/local/up writes it; variables
// already in the environment win). Prints one line per step, saves a screenshot per step in
// DIR (default build/browser-artifacts), writes a JUnit XML file when asked, and exits 1 on
// any failed step. Whatever it changes (an ignored finding, a hidden instance, a tuned
// severity, a paused or an added integration) is put back at the end, also after a failure.
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEMO = 'acme-demo';
const STEP_TIMEOUT_MS = 20000;

function parseArgs(argv) {
  const out = { junit: null, artifacts: join(ROOT, 'build', 'browser-artifacts') };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--junit') out.junit = argv[++i];
    else if (argv[i] === '--artifacts') out.artifacts = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return out;
}

function loadEnv() {
  const env = {};
  const file = join(ROOT, '.local', 'casb.env');
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m) env[m[1]] = m[2];
    }
  }
  for (const k of ['CASB_FINDINGS_URL', 'CASB_INTEGRATIONS_URL', 'CASB_TOKEN']) {
    if (process.env[k]) env[k] = process.env[k];
    if (!env[k]) throw new Error(`${k} is not set and not in ${file} (run deploy/local/up)`);
  }
  return env;
}

const args = parseArgs(process.argv.slice(2));
const env = loadEnv();

// Direct API calls: to find the demo integration before the page does, and to check and
// restore state independently of the page.
async function api(base, method, path, body) {
  const headers = { Authorization: `Bearer ${env.CASB_TOKEN}` };
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const fa = (method, path) => api(env.CASB_FINDINGS_URL, method, path);
const im = (method, path) => api(env.CASB_INTEGRATIONS_URL, method, path);

const results = [];
let failed = false;
let page = null;

async function step(name, fn) {
  const started = Date.now();
  if (failed) {
    results.push({ name, ms: 0, skipped: true });
    console.log(`skip  ${name}`);
    return;
  }
  try {
    await fn();
    results.push({ name, ms: Date.now() - started });
    console.log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed = true;
    const message = (e && e.message ? e.message : String(e)).split('\n')[0];
    results.push({ name, ms: Date.now() - started, error: message });
    console.log(`FAIL  ${name}: ${message}`);
  }
  if (page) {
    const file = join(args.artifacts, `${String(results.length).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

// Waits until every finding row satisfies pred (and there is at least one, unless allowEmpty).
async function waitRows(pred, description, allowEmpty = false) {
  await page.waitForFunction(({ src, allowEmpty }) => {
    const fn = new Function('row', `return (${src})(row)`);
    const rows = [...document.querySelectorAll('[data-testid="finding-row"]')];
    return (allowEmpty || rows.length > 0) && rows.every((r) => fn(r));
  }, { src: pred.toString(), allowEmpty }, { timeout: STEP_TIMEOUT_MS }).catch(() => {
    throw new Error(`timed out waiting for ${description}`);
  });
}

const findingRow = (id) => page.locator(`[data-testid="finding-row"][data-finding-id="${id}"]`);
const demoRow = () => page.locator(`[data-testid="integration-row"][data-integration-name="${DEMO}"]`);

function writeJunit(file) {
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const failures = results.filter((r) => r.error).length;
  const skipped = results.filter((r) => r.skipped).length;
  const total = results.reduce((a, r) => a + r.ms, 0) / 1000;
  const cases = results.map((r) => {
    const head = `  <testcase classname="browser.dashboard" name="${esc(r.name)}" time="${(r.ms / 1000).toFixed(3)}"`;
    if (r.error) return `${head}>\n    <failure message="${esc(r.error)}">${esc(r.error)}</failure>\n  </testcase>`;
    if (r.skipped) return `${head}>\n    <skipped/>\n  </testcase>`;
    return `${head}/>`;
  });
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n<testsuite name="browser.dashboard" tests="${results.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${total.toFixed(3)}">\n${cases.join('\n')}\n</testsuite>\n</testsuites>\n`);
}

async function main() {
  mkdirSync(args.artifacts, { recursive: true });
  const userDataDir = mkdtempSync(join(tmpdir(), 'casb-chromium-'));
  const pageErrors = [];
  let context = null;
  const demo = { id: null, paused: null, health: null };
  const touched = { ignored: null, hidden: null, tuned: null, added: null };

  await step('the stack has the demo integration', async () => {
    const list = await im('GET', '/v1/integrations?limit=200');
    const it = (list.integrations || []).find((x) => x.name === DEMO);
    check(it, `no integration named ${DEMO}`);
    check(!it.paused, `${DEMO} is paused before the test`);
    Object.assign(demo, { id: it.id, paused: it.paused, health: it.health });
  });

  try {
    await step('launch chromium', async () => {
      // The flags keep Chromium off the network it cannot reach here (see polyglot.md).
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: process.env.CASB_CHROMIUM || '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1400, height: 1000 },
      });
      page = context.pages()[0] || await context.newPage();
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      page.on('pageerror', (e) => pageErrors.push(e.message));
    });

    await step('load the dashboard', async () => {
      const res = await page.goto(`${env.CASB_FINDINGS_URL}/`);
      check(res && res.ok(), `GET / answered ${res && res.status()}`);
      await page.getByTestId('token-input').waitFor({ state: 'visible' });
    });

    await step('enter the token', async () => {
      await page.getByTestId('token-input').fill(env.CASB_TOKEN);
      await page.getByTestId('token-submit').click();
      await demoRow().waitFor({ state: 'visible' });
      await page.getByTestId('summary-high').waitFor({ state: 'visible' });
      const health = await demoRow().getByTestId('integration-health').textContent();
      check(health === demo.health, `health shown ${health}, API says ${demo.health}`);
    });

    await step(`see ${DEMO}'s findings`, async () => {
      await page.getByTestId('filter-integration').selectOption(demo.id);
      await waitRows((r) => r.children[2].textContent === 'acme-demo', `only ${DEMO}'s findings`);
      const api = await fa('GET', `/v1/findings?integration_id=${demo.id}&status=active&limit=200`);
      const shown = await page.getByTestId('finding-row').count();
      check(shown === api.findings.length, `${shown} rows shown, the API lists ${api.findings.length}`);
    });

    let target = null;
    await step('filter by severity', async () => {
      await page.getByTestId('filter-severity').selectOption('high');
      await waitRows((r) => r.dataset.severity === 'high', 'only high findings');
      const api = await fa('GET', `/v1/findings?integration_id=${demo.id}&status=active&severity=high&limit=200`);
      const shown = await page.getByTestId('finding-row').count();
      check(shown === api.findings.length, `${shown} high rows shown, the API lists ${api.findings.length}`);
      target = await page.getByTestId('finding-row').first().getAttribute('data-finding-id');
    });

    await step('ignore a finding: it moves to the ignored filter', async () => {
      await findingRow(target).getByTestId('finding-ignore').click();
      touched.ignored = target;
      await findingRow(target).waitFor({ state: 'detached' });
      await page.getByTestId('filter-status').selectOption('ignored');
      await waitRows((r) => r.dataset.status === 'ignored', 'only ignored findings');
      await findingRow(target).waitFor({ state: 'visible' });
      const f = await fa('GET', `/v1/findings/${target}`);
      check(f.status === 'ignored', `the API says ${f.status}`);
    });

    await step('unignore it: back to the active filter', async () => {
      await findingRow(target).getByTestId('finding-unignore').click();
      await findingRow(target).waitFor({ state: 'detached' });
      await page.getByTestId('filter-status').selectOption('active');
      await findingRow(target).waitFor({ state: 'visible' });
      check(await findingRow(target).getAttribute('data-status') === 'active', 'row is not active');
      const f = await fa('GET', `/v1/findings/${target}`);
      check(f.status === 'active', `the API says ${f.status}`);
      touched.ignored = null;
    });

    let instance = null;
    await step('open a finding: instances, remediation, history', async () => {
      await findingRow(target).getByTestId('finding-title').click();
      const detail = page.locator(`[data-testid="finding-detail"][data-finding-id="${target}"]`);
      await detail.waitFor({ state: 'visible' });
      await page.locator('[data-testid="instance-row"][data-state="active"]').first().waitFor();
      check(await page.locator('[data-testid="finding-remediation"] li').count() > 0, 'no remediation steps');
      await page.locator('[data-testid="history-event"][data-event="ignored"]').first().waitFor();
      instance = await page.locator('[data-testid="instance-row"][data-state="active"]').first().getAttribute('data-instance-id');
    });

    await step('hide an instance, then unhide it', async () => {
      const row = () => page.locator(`[data-testid="instance-row"][data-instance-id="${instance}"]`);
      await row().getByTestId('instance-hide').click();
      touched.hidden = instance;
      await page.locator(`[data-testid="instance-row"][data-instance-id="${instance}"][data-state="hidden"]`).waitFor();
      await page.locator('[data-testid="history-event"][data-event="hidden"]').first().waitFor();
      let i = await fa('GET', `/v1/instances/${instance}`);
      check(i.state === 'hidden', `the API says ${i.state} after hide`);
      await row().getByTestId('instance-unhide').click();
      await page.locator(`[data-testid="instance-row"][data-instance-id="${instance}"][data-state="active"]`).waitFor();
      i = await fa('GET', `/v1/instances/${instance}`);
      check(i.state === 'active', `the API says ${i.state} after unhide`);
      touched.hidden = null;
    });

    await step('tune the severity, then reset it', async () => {
      const sel = () => findingRow(target).getByTestId('finding-severity-select');
      await page.getByTestId('filter-severity').selectOption('');
      await findingRow(target).waitFor();
      await sel().selectOption('low');
      touched.tuned = target;
      await page.locator(`[data-testid="finding-row"][data-finding-id="${target}"][data-severity="low"]`).waitFor();
      let f = await fa('GET', `/v1/findings/${target}`);
      check(f.severity === 'low' && f.severity_tuned, `the API says ${f.severity}, tuned=${f.severity_tuned}`);
      await findingRow(target).getByTestId('finding-severity-reset').click();
      await page.locator(`[data-testid="finding-row"][data-finding-id="${target}"][data-severity="high"]`).waitFor();
      f = await fa('GET', `/v1/findings/${target}`);
      check(f.severity === 'high' && !f.severity_tuned, `the API says ${f.severity}, tuned=${f.severity_tuned}`);
      touched.tuned = null;
      await page.locator('[data-testid="history-event"][data-event="severity_reset"]').first().waitFor();
    });

    await step(`pause ${DEMO}: health shows paused`, async () => {
      await demoRow().getByTestId('integration-pause').click();
      demo.paused = true;
      await page.locator(`[data-testid="integration-row"][data-integration-name="${DEMO}"] [data-testid="integration-health"]:text-is("paused")`).waitFor();
      const it = await im('GET', `/v1/integrations/${demo.id}`);
      check(it.paused === true && it.health === 'paused', `the API says paused=${it.paused} health=${it.health}`);
    });

    await step(`resume ${DEMO}: health no longer paused`, async () => {
      await demoRow().getByTestId('integration-resume').click();
      await demoRow().getByTestId('integration-pause').waitFor();
      const health = await demoRow().getByTestId('integration-health').textContent();
      check(health !== 'paused', `health still ${health}`);
      const it = await im('GET', `/v1/integrations/${demo.id}`);
      check(it.paused === false && it.health !== 'paused', `the API says paused=${it.paused} health=${it.health}`);
      demo.paused = false;
    });

    await step('the resume scan shows in the scan history and finishes', async () => {
      // Resuming queues a scan; the page polls every 3 s while it is queued or running.
      await demoRow().getByTestId('integration-scans').click();
      await page.locator('[data-testid="scan-history"] [data-testid="scan-row"]').first().waitFor();
      await page.waitForFunction(() => {
        const row = document.querySelector('[data-testid="scan-history"] [data-testid="scan-row"]');
        return row && row.dataset.scanReason === 'resume' && row.dataset.scanStatus === 'succeeded';
      }, null, { timeout: 60000 }).catch(() => {
        throw new Error('the newest scan never showed as a succeeded resume scan');
      });
      await page.locator(`[data-testid="integration-row"][data-integration-name="${DEMO}"] [data-testid="integration-last-scan"]:has-text("resume")`).waitFor();
      const health = await demoRow().getByTestId('integration-health').textContent();
      check(health === demo.health, `health ${health} after the scan, was ${demo.health}`);
    });

    await step('add a GitHub integration by token (markup in its name stays text), see its first scan, delete it', async () => {
      const tenant = JSON.parse(readFileSync(join(ROOT, 'tests/fakes/saas-sim/tenants/demo.json'), 'utf8'));
      // Markup in a name is shown as text, never run (the dashboard writes no HTML).
      const name = `<img src=x onerror=window.__casbPwned=1>browser test ${Date.now()}`;
      await page.locator('[data-testid="add-integration"] summary').click();
      await page.getByTestId('add-name').fill(name);
      await page.getByTestId('add-organization').fill(DEMO);
      await page.getByTestId('add-api-base-url').fill(env.CASB_SIM_URL || 'http://127.0.0.1:8090');
      await page.getByTestId('add-token').fill(tenant.auth.tokens[0]);
      await page.getByTestId('add-submit').click();
      const row = page.locator(`[data-testid="integration-row"][data-integration-name="${name}"]`);
      await row.waitFor();
      touched.added = await row.getAttribute('data-integration-id');
      await page.waitForFunction(() => {
        const r = document.querySelector('[data-testid="scan-history"] [data-testid="scan-row"]');
        return r && r.dataset.scanReason === 'first' && r.dataset.scanStatus === 'succeeded';
      }, null, { timeout: 60000 }).catch(() => {
        throw new Error('the first scan of the new integration never showed as succeeded');
      });
      await row.locator('[data-testid="integration-health"]:text-is("healthy")').waitFor();
      check((await row.textContent()).includes('<img src=x onerror='), 'the name is not shown as text');
      check(await page.evaluate(() => window.__casbPwned === undefined), 'markup in a name ran');
      check(await row.locator('img').count() === 0, 'markup in a name became an element');
      page.once('dialog', (d) => d.accept());
      await row.getByTestId('integration-delete').click();
      await row.waitFor({ state: 'detached' });
      const gone = await im('GET', `/v1/integrations/${touched.added}`).then(() => false, (e) => e.message.includes(' 404 '));
      check(gone, 'the integration is still there after delete');
      touched.added = null;
    });

    await step('a read_only token sees the findings but is offered no change', async () => {
      const ro = await api(env.CASB_INTEGRATIONS_URL, 'POST', '/v1/tokens',
        { name: `browser read_only ${Date.now()}`, role: 'read_only' });
      touched.token = ro.id;
      await page.getByTestId('sign-out').click();
      await page.getByTestId('token-input').fill(ro.token);
      await page.getByTestId('token-submit').click();
      await demoRow().waitFor({ state: 'visible' });
      await page.getByTestId('finding-row').first().waitFor({ state: 'visible' });
      check(await page.evaluate(() => document.body.dataset.role) === 'read_only', 'the role was not read');
      check(!(await page.getByTestId('finding-ignore').first().isVisible()), 'Ignore is offered');
      check(!(await page.getByTestId('finding-severity-select').first().isVisible()), 'severity tuning is offered');
      check(!(await page.getByTestId('add-integration').isVisible()), 'Add integration is offered');
      check(!(await demoRow().getByTestId('integration-delete').isVisible()), 'Delete is offered');
      check(await demoRow().getByTestId('integration-scans').isVisible(), 'the scan history is not offered');
    });

    await step('no script errors on the page', async () => {
      check(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
      const statusLine = await page.getByTestId('status-message').getAttribute('class');
      check(!(statusLine || '').includes('error'), `status line shows an error: ${await page.getByTestId('status-message').textContent()}`);
    });
  } finally {
    // Put the demo data back whatever happened above.
    const restore = [];
    if (touched.ignored) restore.push(fa('POST', `/v1/findings/${touched.ignored}/unignore`));
    if (touched.tuned) restore.push(fa('DELETE', `/v1/findings/${touched.tuned}/severity`));
    if (touched.hidden) restore.push(fa('POST', `/v1/instances/${touched.hidden}/unhide`));
    if (touched.added) restore.push(im('DELETE', `/v1/integrations/${touched.added}`));
    if (touched.token) restore.push(im('DELETE', `/v1/tokens/${touched.token}`));
    if (demo.id && demo.paused) restore.push(im('POST', `/v1/integrations/${demo.id}/resume`));
    for (const r of await Promise.allSettled(restore)) {
      if (r.status === 'rejected') console.log(`restore failed: ${r.reason.message}`);
    }
    if (context) await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  failed = true;
  results.push({ name: 'run', ms: 0, error: e.message });
  console.log(`FAIL  run: ${e.message}`);
}
if (failed) exitCode = 1;
if (args.junit) writeJunit(args.junit);
const passed = results.filter((r) => !r.error && !r.skipped).length;
console.log(`${passed} passed, ${results.filter((r) => r.error).length} failed, ${results.filter((r) => r.skipped).length} skipped`);
process.exit(exitCode);
