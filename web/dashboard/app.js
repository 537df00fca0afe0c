// The CASB dashboard: plain ES module, no framework, no build step. Everything shown comes
// from the findings API (this origin) and integration-manager (its URL from
// /v1/dashboard-config; it allows this origin through CASB_CORS_ORIGINS). Data goes into the
// DOM only through textContent and attribute setters, never as HTML.

const TOKEN_KEY = 'casb.token';
const POLL_MS = 3000;
const SEVERITIES = ['critical', 'high', 'medium', 'low'];

const state = {
  integrationsUrl: null,
  integrations: [],
  findingsCursor: null,
  selectedFinding: null,  // id of the finding shown in the detail panel
  scansIntegration: null, // id of the integration whose scan history is shown
  pollTimer: null,
};

const $ = (id) => document.getElementById(id);

// Builds an element: el('td', {class: 'x', 'data-testid': 'y'}, 'text' | node, ...).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'onclick') node.addEventListener('click', value);
    else if (name === 'onchange') node.addEventListener('change', value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function status(message, isError = false) {
  const p = $('status');
  p.textContent = message;
  p.classList.toggle('error', isError);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function when(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// One API call with the bearer token. base is '' (findings-api, same origin) or the
// integration-manager URL. Resolves to the parsed JSON body (null for 204).
async function api(base, method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(base + path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach ${base || 'the findings API'}: ${e.message}`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    if (res.status === 401) signOut('The token was refused: enter a valid one.');
    const detail = data && (data.detail || data.title) ? (data.detail || data.title) : res.statusText;
    throw new ApiError(res.status, `${method} ${path}: ${res.status} ${detail}`);
  }
  return data;
}

const fa = (method, path, body) => api('', method, path, body);
const im = (method, path, body) => api(state.integrationsUrl, method, path, body);

// Runs an action, reporting failures in the status line instead of throwing.
async function guarded(what, fn) {
  try {
    const r = await fn();
    return r;
  } catch (e) {
    status(`${what} failed: ${e.message}`, true);
    return undefined;
  }
}

// ---- sign in / out ----

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.pollTimer);
  $('app').hidden = true;
  $('login').hidden = false;
  $('sign-out').hidden = true;
  if (message) status(message, true);
}

// The token's role (GET /v1/me) hides what it may not do; the APIs refuse it anyway (403).
async function loadRole() {
  const me = await guarded('Reading the token', () => im('GET', '/v1/me'));
  document.body.dataset.role = me ? me.token.role : 'read_only';
}

async function start() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  status('Loading…');
  await loadRole();
  if (!token()) return; // the token was refused
  await loadIntegrations();
  if (!token()) return;
  await Promise.all([loadSummary(), loadFindings(false)]);
  if (token()) status('');
}

// ---- summary ----

async function loadSummary() {
  const s = await guarded('Loading the summary', () => fa('GET', '/v1/summary'));
  if (!s) return;
  const box = $('summary');
  box.replaceChildren();
  for (const sev of SEVERITIES) {
    const c = (s.by_severity && s.by_severity[sev]) || { findings: 0, instances: 0 };
    box.append(el('div', { class: `card card-${sev}`, 'data-testid': `summary-${sev}` },
      el('span', { class: `sev sev-${sev}` }, sev),
      el('div', { class: 'count', 'data-testid': `summary-${sev}-findings` }, c.findings),
      el('div', { class: 'muted' }, `${c.instances} instances`)));
  }
  box.append(el('div', { class: 'card', 'data-testid': 'summary-total' },
    el('span', {}, 'total'),
    el('div', { class: 'count' }, s.total_findings ?? 0),
    el('div', { class: 'muted' }, `${s.total_instances ?? 0} instances`)));
}

// ---- integrations ----

function scanActive(it) {
  return Boolean(it.current);
}

const isLive = (scan) => scan && (scan.status === 'queued' || scan.status === 'running');

async function loadIntegrations() {
  const data = await guarded('Loading integrations', () => im('GET', '/v1/integrations?limit=100'));
  if (!data) return;
  const list = data.integrations || [];
  // An integration's last_scan is its last finished scan; the newest one tells whether a
  // scan is queued or running now (live progress).
  await Promise.all(list.map(async (it) => {
    const scans = await im('GET', `/v1/integrations/${encodeURIComponent(it.id)}/scans?limit=1`).catch(() => null);
    const newest = scans && scans.scans ? scans.scans[0] : null;
    it.current = isLive(newest) ? newest : null;
  }));
  state.integrations = list;
  renderIntegrations();
  renderIntegrationFilter();
  schedulePoll();
}

function renderIntegrations() {
  const body = $('integrations');
  body.replaceChildren();
  for (const it of state.integrations) {
    const actions = el('td', {});
    if (it.paused) {
      actions.append(el('button', { type: 'button', class: 'needs-admin', 'data-testid': 'integration-resume',
        onclick: () => integrationAction(it, 'resume') }, 'Resume'));
    } else {
      actions.append(el('button', { type: 'button', class: 'needs-admin', 'data-testid': 'integration-pause',
        onclick: () => integrationAction(it, 'pause') }, 'Pause'));
      actions.append(el('button', { type: 'button', class: 'needs-admin', 'data-testid': 'integration-scan',
        onclick: () => scanNow(it) }, 'Scan now'));
    }
    actions.append(el('button', { type: 'button', 'data-testid': 'integration-scans',
      onclick: () => showScans(it.id) }, 'Scans'));
    actions.append(el('button', { type: 'button', class: 'needs-admin', 'data-testid': 'integration-delete',
      onclick: () => deleteIntegration(it) }, 'Delete'));
    const last = it.last_scan;
    const lastCell = el('td', { 'data-testid': 'integration-last-scan' },
      last ? `${last.status} (${last.reason}) ${when(last.finished_at || it.last_scan_at)}` : 'never');
    if (last && last.error) lastCell.append(el('div', { class: 'muted' }, last.error));
    if (it.current) {
      lastCell.append(el('div', { class: 'progress', 'data-testid': 'integration-scan-progress' },
        `scan ${it.current.status} (${it.current.reason})…`));
    }
    body.append(el('tr', { 'data-testid': 'integration-row', 'data-integration-id': it.id,
      'data-integration-name': it.name },
      el('td', { 'data-testid': 'integration-name' }, it.name,
        el('div', { class: 'muted' }, (it.config && it.config.organization) || '')),
      el('td', {}, it.provider),
      el('td', { 'data-testid': 'integration-health', class: `health-${it.health}`,
        title: it.health_reason || '' }, it.health),
      lastCell,
      el('td', {}, it.paused ? 'paused' : when(it.next_scan_at)),
      actions));
  }
  if (state.integrations.length === 0) {
    body.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No integrations yet.')));
  }
}

function renderIntegrationFilter() {
  const sel = document.querySelector('[data-testid="filter-integration"]');
  const current = sel.value;
  sel.replaceChildren(el('option', { value: '' }, 'All'));
  for (const it of state.integrations) sel.append(el('option', { value: it.id }, it.name));
  if (state.integrations.some((it) => it.id === current)) sel.value = current;
}

async function integrationAction(it, action) {
  const ok = await guarded(`${action} ${it.name}`, () => im('POST', `/v1/integrations/${encodeURIComponent(it.id)}/${action}`));
  if (ok === undefined) return;
  status(`${it.name}: ${action === 'pause' ? 'paused' : 'resumed'}.`);
  await Promise.all([loadIntegrations(), loadSummary()]);
}

async function scanNow(it) {
  const r = await guarded(`Scanning ${it.name}`, () => im('POST', `/v1/integrations/${encodeURIComponent(it.id)}/scans`));
  if (r === undefined) return;
  status(`${it.name}: scan queued.`);
  await loadIntegrations();
  await showScans(it.id);
}

async function deleteIntegration(it) {
  if (!window.confirm(`Delete the integration "${it.name}" and all its findings?`)) return;
  const r = await guarded(`Deleting ${it.name}`, () => im('DELETE', `/v1/integrations/${encodeURIComponent(it.id)}`));
  if (r === undefined) return;
  status(`${it.name}: deleted.`);
  if (state.scansIntegration === it.id) {
    state.scansIntegration = null;
    $('scans').hidden = true;
  }
  await Promise.all([loadIntegrations(), loadSummary(), loadFindings(false)]);
}

async function addIntegration(ev) {
  ev.preventDefault();
  const f = ev.target;
  const config = { organization: f.organization.value.trim() };
  if (f.api_base_url.value.trim()) config.api_base_url = f.api_base_url.value.trim();
  const body = { provider: 'github', name: f.name.value.trim(), config,
    credentials: { token: f.token.value } };
  const it = await guarded('Adding the integration', () => im('POST', '/v1/integrations', body));
  if (!it) return;
  f.reset();
  $('add-integration').open = false;
  status(`${it.name}: added, first scan queued.`);
  await loadIntegrations();
  await showScans(it.id);
}

// ---- scan history and live progress ----

async function showScans(integrationId) {
  state.scansIntegration = integrationId;
  const it = state.integrations.find((x) => x.id === integrationId);
  const data = await guarded('Loading scans', () => im('GET', `/v1/integrations/${encodeURIComponent(integrationId)}/scans?limit=20`));
  if (!data || state.scansIntegration !== integrationId) return;
  $('scans').hidden = false;
  $('scans-title').textContent = `Scans of ${it ? it.name : integrationId}`;
  const body = $('scans-body');
  body.replaceChildren();
  for (const sc of data.scans || []) {
    const st = sc.stats || {};
    const live = sc.status === 'queued' || sc.status === 'running';
    body.append(el('tr', { 'data-testid': 'scan-row', 'data-scan-id': sc.id, 'data-scan-status': sc.status,
      'data-scan-reason': sc.reason },
      el('td', {}, sc.status, live ? el('div', { class: 'progress', 'data-testid': 'scan-progress' },
        sc.status === 'running' ? 'in progress…' : 'waiting for a worker…') : null),
      el('td', {}, sc.reason),
      el('td', {}, when(sc.queued_at)),
      el('td', {}, when(sc.finished_at)),
      el('td', {}, sc.duration_ms != null ? `${sc.duration_ms} ms` : '—'),
      el('td', {}, st.api_calls ?? '—'),
      el('td', {}, st.assets_seen ?? '—'),
      el('td', {}, st.findings ?? '—'),
      el('td', {}, sc.error || '')));
  }
  if ((data.scans || []).length === 0) {
    body.append(el('tr', {}, el('td', { colspan: 9, class: 'muted' }, 'No scans yet.')));
  }
  // A scan that started or finished between two refreshes of the integration list: bring
  // the list (and what the scan changed) up to date.
  const newest = (data.scans || [])[0];
  const stale = it && newest && (isLive(newest) ? !it.current
    : (it.current || !it.last_scan || it.last_scan.id !== newest.id));
  if (stale) {
    await loadIntegrations();
    if (!isLive(newest)) await Promise.all([loadSummary(), loadFindings(false)]);
    return;
  }
  schedulePoll();
}

// While any scan is queued or running, refresh every POLL_MS; when the last one finishes,
// the summary and findings are refreshed once more, since the scan changed them.
function schedulePoll() {
  clearTimeout(state.pollTimer);
  const active = state.integrations.some(scanActive);
  const shownActive = !$('scans').hidden &&
    document.querySelector('#scans-body [data-scan-status="queued"], #scans-body [data-scan-status="running"]');
  if (!active && !shownActive) {
    if (state.wasPolling) {
      state.wasPolling = false;
      loadSummary();
      loadFindings(false);
    }
    return;
  }
  state.wasPolling = true;
  state.pollTimer = setTimeout(async () => {
    if (!token()) return;
    await loadIntegrations();
    if (state.scansIntegration) await showScans(state.scansIntegration);
  }, POLL_MS);
}

// ---- findings ----

function filterQuery() {
  const f = $('filters');
  const params = new URLSearchParams();
  for (const name of ['integration_id', 'severity', 'status', 'q', 'sort']) {
    const v = f.elements[name].value.trim();
    if (v) params.set(name, v);
  }
  params.set('limit', '50');
  return params;
}

async function loadFindings(more) {
  const params = filterQuery();
  if (more && state.findingsCursor) params.set('cursor', state.findingsCursor);
  const data = await guarded('Loading findings', () => fa('GET', `/v1/findings?${params}`));
  if (!data) return;
  const body = $('findings');
  if (!more) body.replaceChildren();
  for (const f of data.findings || []) body.append(findingRow(f));
  state.findingsCursor = data.next_cursor || null;
  $('findings-more').hidden = !state.findingsCursor;
  $('findings-empty').hidden = body.children.length > 0;
}

function findingRow(f) {
  const sevSelect = el('select', { class: 'needs-analyst', 'data-testid': 'finding-severity-select', 'aria-label': 'Tune severity',
    onchange: (ev) => tuneSeverity(f, ev.target.value) });
  for (const sev of SEVERITIES) {
    const o = el('option', { value: sev }, sev);
    if (sev === f.severity) o.selected = true;
    sevSelect.append(o);
  }
  const actions = el('td', {}, sevSelect);
  if (f.severity_tuned) {
    actions.append(el('button', { type: 'button', class: 'needs-analyst', 'data-testid': 'finding-severity-reset',
      title: `back to ${f.default_severity}`, onclick: () => resetSeverity(f) }, 'Reset'));
  }
  if (f.status === 'ignored') {
    actions.append(el('button', { type: 'button', class: 'needs-analyst', 'data-testid': 'finding-unignore',
      onclick: () => setIgnored(f, false) }, 'Unignore'));
  } else {
    actions.append(el('button', { type: 'button', class: 'needs-analyst', 'data-testid': 'finding-ignore',
      onclick: () => setIgnored(f, true) }, 'Ignore'));
  }
  // Clicks on the controls act on the finding; anywhere else on the row opens it.
  actions.addEventListener('click', (ev) => ev.stopPropagation());
  const row = el('tr', { class: 'finding-row', 'data-testid': 'finding-row', 'data-finding-id': f.id,
    'data-finding-type': f.finding_type.id, 'data-severity': f.severity, 'data-status': f.status,
    onclick: () => openFinding(f.id) },
    el('td', {}, el('span', { class: `sev sev-${f.severity}`, 'data-testid': 'finding-severity' }, f.severity),
      f.severity_tuned ? el('span', { class: 'muted' }, ' (tuned)') : null),
    el('td', { 'data-testid': 'finding-title' }, f.finding_type.title,
      el('div', { class: 'muted' }, f.finding_type.id)),
    el('td', {}, f.integration_name),
    el('td', { 'data-testid': 'finding-instances' }, f.instance_count),
    el('td', { 'data-testid': 'finding-status' }, f.status),
    el('td', {}, when(f.last_seen_at)),
    actions);
  if (f.id === state.selectedFinding) row.classList.add('selected');
  return row;
}

async function setIgnored(f, ignored) {
  const r = await guarded(ignored ? 'Ignoring' : 'Unignoring',
    () => fa('POST', `/v1/findings/${encodeURIComponent(f.id)}/${ignored ? 'ignore' : 'unignore'}`));
  if (r === undefined) return;
  status(`${f.finding_type.title}: ${ignored ? 'ignored' : 'active again'}.`);
  await refreshAfterTriage(f.id);
}

async function tuneSeverity(f, severity) {
  const r = await guarded('Tuning the severity',
    () => fa('PUT', `/v1/findings/${encodeURIComponent(f.id)}/severity`, { severity }));
  if (r === undefined) return;
  status(`${f.finding_type.title}: severity ${severity}.`);
  await refreshAfterTriage(f.id);
}

async function resetSeverity(f) {
  const r = await guarded('Resetting the severity',
    () => fa('DELETE', `/v1/findings/${encodeURIComponent(f.id)}/severity`));
  if (r === undefined) return;
  status(`${f.finding_type.title}: severity back to ${r && r.severity ? r.severity : 'default'}.`);
  await refreshAfterTriage(f.id);
}

async function refreshAfterTriage(findingId) {
  const jobs = [loadSummary(), loadFindings(false)];
  if (state.selectedFinding === findingId) jobs.push(openFinding(findingId));
  await Promise.all(jobs);
}

// ---- one finding: remediation, instances, history ----

async function openFinding(id) {
  state.selectedFinding = id;
  const enc = encodeURIComponent(id);
  const [f, inst, hist] = await Promise.all([
    guarded('Loading the finding', () => fa('GET', `/v1/findings/${enc}`)),
    guarded('Loading instances', () => fa('GET', `/v1/findings/${enc}/instances?state=all&limit=200`)),
    guarded('Loading history', () => fa('GET', `/v1/findings/${enc}/history?limit=100`)),
  ]);
  if (!f || state.selectedFinding !== id) return;
  for (const row of document.querySelectorAll('#findings tr')) {
    row.classList.toggle('selected', row.dataset.findingId === id);
  }
  $('detail').hidden = false;
  $('detail').dataset.findingId = id;
  $('detail-title').textContent = f.finding_type.title;
  $('detail-meta').textContent =
    `${f.severity}${f.severity_tuned ? ` (tuned; default ${f.default_severity})` : ''} · ${f.status} · ` +
    `${f.instance_count} instances · ${f.integration_name} · first seen ${when(f.first_seen_at)}`;
  $('detail-description').textContent = f.description || '';
  $('detail-impact').textContent = f.impact || '';
  $('detail-remediation').replaceChildren(...(f.remediation || []).map((step) => el('li', {}, step)));
  renderInstances(inst ? inst.instances || [] : []);
  renderHistory(hist ? hist.events || [] : []);
}

function renderInstances(list) {
  const body = $('instances');
  body.replaceChildren();
  for (const i of list) {
    const asset = i.asset || {};
    // Only http(s) links: an asset URL comes from the SaaS API and must not become javascript:.
    const name = /^https?:\/\//i.test(asset.url || '')
      ? el('a', { href: asset.url, target: '_blank', rel: 'noopener noreferrer' }, asset.name || asset.id)
      : (asset.name || asset.id);
    const action = i.state === 'hidden'
      ? el('button', { type: 'button', class: 'needs-analyst', 'data-testid': 'instance-unhide', onclick: () => setHidden(i, false) }, 'Unhide')
      : el('button', { type: 'button', class: 'needs-analyst', 'data-testid': 'instance-hide', onclick: () => setHidden(i, true) }, 'Hide');
    body.append(el('tr', { 'data-testid': 'instance-row', 'data-instance-id': i.id, 'data-asset-id': asset.id,
      'data-state': i.state },
      el('td', { 'data-testid': 'instance-asset' }, name),
      el('td', {}, asset.kind),
      el('td', { 'data-testid': 'instance-state' }, i.state,
        i.resolved_at ? el('div', { class: 'muted' }, `resolved ${when(i.resolved_at)}`) : null),
      el('td', {}, when(i.first_seen_at)),
      el('td', {}, when(i.last_seen_at)),
      el('td', {}, action)));
  }
  if (list.length === 0) body.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No instances.')));
}

function renderHistory(events) {
  const ul = $('history');
  ul.replaceChildren();
  for (const e of events) {
    const who = e.actor ? `by ${e.actor}` : (e.scan_id ? `by scan ${e.scan_id}` : '');
    const extra = e.details && Object.keys(e.details).length ? ` ${JSON.stringify(e.details)}` : '';
    const parts = [when(e.at), e.event, e.asset_name, who].filter(Boolean);
    ul.append(el('li', { 'data-testid': 'history-event', 'data-event': e.event },
      parts.join(' · ') + extra));
  }
  if (events.length === 0) ul.append(el('li', { class: 'muted' }, 'No events yet.'));
}

async function setHidden(i, hidden) {
  const r = await guarded(hidden ? 'Hiding' : 'Unhiding',
    () => fa('POST', `/v1/instances/${encodeURIComponent(i.id)}/${hidden ? 'hide' : 'unhide'}`));
  if (r === undefined) return;
  status(`${(i.asset && i.asset.name) || i.id}: ${hidden ? 'hidden' : 'visible again'}.`);
  await refreshAfterTriage(i.finding_id);
}

// ---- wiring ----

async function init() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('token-input').value = '';
    start();
  });
  $('sign-out').addEventListener('click', () => { signOut(); status('Signed out.'); });
  $('add-integration-form').addEventListener('submit', addIntegration);
  $('filters').addEventListener('change', () => loadFindings(false));
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadFindings(false); });
  let typing = null;
  $('filters').elements.q.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => loadFindings(false), 300);
  });
  $('findings-more').addEventListener('click', () => loadFindings(true));
  $('detail-close').addEventListener('click', () => {
    state.selectedFinding = null;
    $('detail').hidden = true;
    for (const row of document.querySelectorAll('#findings tr.selected')) row.classList.remove('selected');
  });

  // The integration-manager's URL is public configuration, needed before any token.
  try {
    const res = await fetch('/v1/dashboard-config');
    if (!res.ok) throw new Error(`${res.status}`);
    state.integrationsUrl = (await res.json()).integrations_url.replace(/\/+$/, '');
  } catch (e) {
    status(`Cannot load /v1/dashboard-config: ${e.message}`, true);
    return;
  }
  if (token()) start();
  else $('token-input').focus();
}

init();
