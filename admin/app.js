// llm-orchestrator admin console: plain DOM, no framework, no build step.
//
// Served at `/` on the admin listener and at `/admin/` on the main port; the
// API is always `/api/...` on the same origin. The token lives in
// sessionStorage only. Every string that comes from the API is put into the
// page as text (textContent / attributes), never as HTML.
'use strict';

(function () {
  const TOKEN_KEY = 'llm-orchestrator.admin-token';
  const TABS = ['providers', 'aliases', 'keys', 'logs', 'usage', 'config'];
  const PALETTE = ['#2563eb', '#16a34a', '#ea580c', '#9333ea', '#0891b2', '#dc2626', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];
  // Provider fields the form edits directly; everything else is "more options".
  const FORM_FIELDS = ['name', 'type', 'base_url', 'weight', 'enabled', 'models'];
  const VIEW_ONLY = ['id', 'source', 'read_only', 'keys', 'health', 'api_key', 'api_keys', 'disabled_api_keys'];

  const $ = (id) => document.getElementById(id);

  /** Build an element. props: class, text, testid, title, on{event}, data, attrs; children: nodes or strings. */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    applyProps(el, props);
    append(el, children);
    return el;
  }
  const SVGNS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k, String(v));
    }
    append(el, children);
    return el;
  }
  function applyProps(el, props) {
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'testid') el.dataset.testid = v;
      else if (k === 'data') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'disabled' || k === 'checked' || k === 'hidden') el[k] = !!v;
      else el.setAttribute(k, String(v));
    }
  }
  function append(el, children) {
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }
  function show(el, on) {
    el.hidden = !on;
  }
  function setText(el, text) {
    el.textContent = text || '';
    el.hidden = !text;
  }

  // ------------------------------------------------------------ formatting

  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(ms, withDate = true) {
    if (ms === null || ms === undefined) return '';
    const d = new Date(ms);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${t}` : t;
  }
  function fmtAxisTime(ms, spanMs) {
    const d = new Date(ms);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (spanMs <= 20 * 60 * 1000) return `${hm}:${pad(d.getSeconds())}`;
    if (spanMs <= 36 * 3600 * 1000) return hm;
    return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
  }
  function fmtMs(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    if (x === 0) return '0 ms';
    if (x < 10) return `${x.toFixed(1)} ms`;
    if (x < 1000) return `${Math.round(x)} ms`;
    return `${(x / 1000).toFixed(2)} s`;
  }
  function fmtNum(x) {
    if (x === null || x === undefined) return '–';
    if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(x >= 1e7 ? 0 : 1)}M`;
    if (Math.abs(x) >= 1e4) return `${(x / 1e3).toFixed(x >= 1e5 ? 0 : 1)}k`;
    return Number.isInteger(x) ? String(x) : x.toFixed(1);
  }
  function fmtUsd(x) {
    const v = Number(x) || 0;
    return `$${v >= 100 ? v.toFixed(2) : v >= 1 ? v.toFixed(3) : v.toFixed(6).replace(/0+$/, '').replace(/\.$/, '.00')}`;
  }
  function fmtPct(x) {
    return `${(100 * (x || 0)).toFixed(x && x < 0.1 ? 1 : 0)}%`;
  }
  function fmtDuration(secs) {
    if (secs % 86400 === 0) return `${secs / 86400} d`;
    if (secs % 3600 === 0) return `${secs / 3600} h`;
    if (secs % 60 === 0) return `${secs / 60} min`;
    return `${secs} s`;
  }
  function splitList(text) {
    return text.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
  }

  // ------------------------------------------------------------ notices

  let noticeTimer = null;
  function notify(message, kind = 'ok') {
    const el = $('notice');
    el.textContent = message;
    el.className = `notice ${kind}`;
    el.dataset.kind = kind;
    el.hidden = false;
    clearTimeout(noticeTimer);
    if (kind === 'ok') noticeTimer = setTimeout(() => { el.hidden = true; }, 5000);
  }
  function hideNotice() {
    $('notice').hidden = true;
  }

  // ------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, message, code, fields) {
      super(message);
      this.status = status;
      this.code = code || '';
      this.fields = fields || [];
    }
  }

  let token = sessionStorage.getItem(TOKEN_KEY) || '';

  /**
   * Call the admin API. Answers the parsed JSON (or text). Throws ApiError;
   * a 401 (unless `opts.probe`) ends the session and shows the login form.
   */
  async function api(method, path, body, opts = {}) {
    const headers = { Authorization: `Bearer ${opts.token !== undefined ? opts.token : token}` };
    let payload;
    if (body !== undefined) {
      if (typeof body === 'string') {
        payload = body;
        headers['Content-Type'] = opts.contentType || 'text/plain';
      } else {
        payload = JSON.stringify(body);
        headers['Content-Type'] = 'application/json';
      }
    }
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, `cannot reach the gateway: ${e.message}`, 'network');
    }
    const type = resp.headers.get('content-type') || '';
    const text = await resp.text();
    let data = text;
    if (type.includes('json') && text) {
      try { data = JSON.parse(text); } catch (_) { data = text; }
    }
    if (!resp.ok) {
      const err = data && typeof data === 'object' && data.error ? data.error : null;
      const message = err ? String(err.message || '') : (typeof data === 'string' && data.trim() ? data.trim() : `HTTP ${resp.status}`);
      const e = new ApiError(resp.status, message, err && err.code, err && Array.isArray(err.fields) ? err.fields : []);
      if (resp.status === 401 && !opts.probe) {
        logout(`Signed out: ${message}. Sign in again.`);
      }
      throw e;
    }
    return data;
  }

  function qs(params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
    }
    const str = p.toString();
    return str ? `?${str}` : '';
  }

  function errorText(e) {
    if (!(e instanceof ApiError)) return String(e && e.message ? e.message : e);
    const prefix = e.status ? `${e.status}: ` : '';
    return prefix + e.message;
  }

  // ------------------------------------------------------------ login

  function showLogin(message) {
    show($('app-view'), false);
    show($('login-view'), true);
    setText($('login-error'), message || '');
    $('login-token').value = '';
    $('login-token').focus();
  }

  function logout(message) {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    stopAuto();
    showLogin(message);
  }

  async function login(ev) {
    ev.preventDefault();
    const candidate = $('login-token').value.trim();
    if (!candidate) {
      setText($('login-error'), 'Enter the token.');
      return;
    }
    const button = $('login-submit');
    button.disabled = true;
    setText($('login-error'), '');
    try {
      await api('GET', '/api/aliases', undefined, { token: candidate, probe: true });
      token = candidate;
      sessionStorage.setItem(TOKEN_KEY, token);
      enterApp();
    } catch (e) {
      const msg = e.status === 401 ? `Sign-in failed: ${e.message}` : `Sign-in failed: ${errorText(e)}`;
      setText($('login-error'), msg);
    } finally {
      button.disabled = false;
    }
  }

  function enterApp() {
    show($('login-view'), false);
    show($('app-view'), true);
    route();
  }

  // ------------------------------------------------------------ tabs

  let currentTab = '';
  function route() {
    if (!token) return;
    const wanted = location.hash.replace(/^#/, '');
    const tab = TABS.includes(wanted) ? wanted : 'providers';
    currentTab = tab;
    for (const a of document.querySelectorAll('#tabs a')) {
      a.classList.toggle('active', a.dataset.tab === tab);
      if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    for (const v of document.querySelectorAll('.view')) show(v, v.dataset.view === tab);
    hideNotice();
    ({ providers: loadProviders, aliases: loadAliases, keys: loadClientKeys, logs: () => loadLogs(null), usage: loadUsage, config: () => {} })[tab]();
  }

  // Loads can overlap (a tab opened, then a filter applied at once): only
  // the answer to the latest request of each kind is shown.
  const latest = {};
  function ticket(kind) {
    latest[kind] = (latest[kind] || 0) + 1;
    const mine = latest[kind];
    return () => latest[kind] === mine;
  }

  // ------------------------------------------------------------ providers

  let providers = [];
  let healthByName = new Map();
  let editing = null; // the provider being edited (API view), or null when creating

  async function loadProviders() {
    const current = ticket('providers');
    try {
      const [list, health] = await Promise.all([
        api('GET', '/api/providers'),
        api('GET', '/api/providers/health').catch((e) => {
          if (e.status === 401) throw e;
          return null;
        }),
      ]);
      if (!current()) return;
      providers = Array.isArray(list.data) ? list.data : [];
      healthByName = new Map();
      if (health && Array.isArray(health.providers)) {
        for (const p of health.providers) healthByName.set(p.name, p);
      }
      renderProviders();
      if (editing) {
        const fresh = providers.find((p) => String(p.id) === String(editing.id));
        if (fresh) {
          editing = fresh;
          renderKeys();
        }
      }
    } catch (e) {
      if (e.status !== 401) notify(`Loading providers failed: ${errorText(e)}`, 'error');
    }
  }

  function healthOf(p) {
    const report = healthByName.get(p.name);
    const embedded = p.health || {};
    const state = (report && report.state) || embedded.state || '';
    const lastError = (report && report.last_error) || embedded.last_error || null;
    return { state, lastError, report };
  }

  function badge(state) {
    const known = ['healthy', 'degraded', 'unhealthy'].includes(state);
    return h('span', { class: `badge ${known ? state : 'unknown'}`, testid: 'health-badge', text: state || 'unknown' });
  }

  function renderProviders() {
    const body = clear($('providers-body'));
    const readOnlyHint = 'declared in the configuration file: edit the file to change or remove it';
    show($('providers-empty'), providers.length === 0);
    for (const p of providers) {
      const { state, lastError } = healthOf(p);
      const enabled = p.enabled !== false;
      const keys = Array.isArray(p.keys) ? p.keys : [];
      const models = Array.isArray(p.models) && p.models.length ? p.models : null;
      const mapKeys = p.model_map && typeof p.model_map === 'object' ? Object.keys(p.model_map) : [];
      const row = h('tr', { testid: 'provider-row', data: { name: p.name, id: String(p.id), source: p.source || '' }, class: enabled ? '' : 'disabled-row' },
        h('td', { class: 'name', testid: 'provider-name' }, p.name),
        h('td', { testid: 'provider-type' }, p.type || ''),
        h('td', { testid: 'provider-source' }, h('span', { class: `tag ${p.source === 'file' ? 'file' : 'api'}`, title: p.read_only ? 'declared in the configuration file: read-only through the API' : 'created through the API' }, p.source || '')),
        h('td', { testid: 'provider-enabled' }, enabled ? 'yes' : 'no'),
        h('td', { testid: 'provider-weight', class: 'num' }, String(p.weight ?? 1)),
        h('td', { testid: 'provider-keys', class: 'keys' },
          keys.length === 0 ? h('span', { class: 'muted' }, 'none') : keys.map((k) => h('span', { class: `key${k.enabled ? '' : ' off'}`, testid: 'provider-key', title: k.enabled ? `id ${k.id}` : `id ${k.id} (disabled)` }, k.key))),
        h('td', { testid: 'provider-models', class: 'models' },
          models ? models.join(', ') : h('span', { class: 'muted' }, 'all'),
          mapKeys.length ? h('div', { class: 'muted small' }, `mapped: ${mapKeys.join(', ')}`) : null),
        h('td', { testid: 'provider-health' }, badge(state)),
        h('td', { testid: 'provider-last-error', class: 'error-cell' },
          lastError ? [h('span', { class: 'status' }, lastError.status ? String(lastError.status) : ''), ' ', lastError.message || '', lastError.at_ms ? h('div', { class: 'muted small' }, fmtTime(lastError.at_ms)) : null] : ''),
        h('td', { class: 'actions' },
          h('button', { type: 'button', testid: 'provider-edit', onclick: () => openForm(p) }, 'Edit'),
          // Providers declared in the file are read-only through the API
          // (it answers 409): offer no action that cannot succeed.
          h('button', { type: 'button', testid: 'provider-toggle', disabled: !!p.read_only, title: p.read_only ? readOnlyHint : undefined, onclick: () => toggleProvider(p) }, enabled ? 'Disable' : 'Enable'),
          h('button', { type: 'button', class: 'danger', testid: 'provider-delete', disabled: !!p.read_only, title: p.read_only ? readOnlyHint : undefined, onclick: () => deleteProvider(p) }, 'Delete')));
      body.append(row);
    }
    // Provider names for the log filter.
    const dl = clear($('lf-provider-list'));
    for (const p of providers) dl.append(h('option', { value: p.name }));
  }

  async function toggleProvider(p) {
    const enabled = p.enabled !== false;
    try {
      await api('PATCH', `/api/providers/${encodeURIComponent(p.id)}`, { enabled: !enabled });
      notify(`Provider ${p.name} ${enabled ? 'disabled' : 'enabled'}.`);
    } catch (e) {
      if (e.status !== 401) notify(`${p.name}: ${errorText(e)}`, 'error');
    }
    await loadProviders();
  }

  async function deleteProvider(p) {
    if (!window.confirm(`Delete provider ${p.name}? Requests stop going to it at once.`)) return;
    try {
      await api('DELETE', `/api/providers/${encodeURIComponent(p.id)}`);
      notify(`Provider ${p.name} deleted.`);
      if (editing && String(editing.id) === String(p.id)) closeForm();
    } catch (e) {
      if (e.status !== 401) notify(`${p.name}: ${errorText(e)}`, 'error');
    }
    await loadProviders();
  }

  // ---- the create / edit form

  function extraOf(p) {
    const extra = {};
    for (const [k, v] of Object.entries(p || {})) {
      // Unset options (null) are left out: removing an entry sets it back to its default.
      if (!FORM_FIELDS.includes(k) && !VIEW_ONLY.includes(k) && v !== null) extra[k] = v;
    }
    return extra;
  }

  function clearFormErrors() {
    setText($('provider-form-errors'), '');
    for (const el of document.querySelectorAll('#provider-form .field-error')) setText(el, '');
    for (const el of document.querySelectorAll('#provider-form .field')) el.classList.remove('invalid');
  }

  function openForm(p) {
    editing = p || null;
    clearFormErrors();
    const f = $('provider-form');
    $('provider-form-title').textContent = p ? `Edit provider ${p.name}` : 'Add provider';
    $('pf-submit').textContent = p ? 'Save' : 'Create';
    $('pf-name').value = p ? p.name : '';
    $('pf-type').value = p && p.type ? p.type : 'openai';
    $('pf-base-url').value = p && p.base_url ? p.base_url : '';
    $('pf-weight').value = p && p.weight !== undefined ? String(p.weight) : '';
    $('pf-enabled').checked = p ? p.enabled !== false : true;
    $('pf-models').value = p && Array.isArray(p.models) ? p.models.join(', ') : '';
    $('pf-keys').value = '';
    const extra = extraOf(p);
    $('pf-extra').value = Object.keys(extra).length ? JSON.stringify(extra, null, 2) : '';
    show($('pf-keys-field'), !p);
    show($('pf-keys-panel'), !!p);
    if (p && p.read_only) {
      setText($('provider-form-errors'), `${p.name} is declared in the configuration file; the API will refuse changes (edit the file instead).`);
    }
    if (p) renderKeys();
    show(f, true);
    f.scrollIntoView({ block: 'nearest' });
    $('pf-name').focus();
  }

  function closeForm() {
    editing = null;
    show($('provider-form'), false);
  }

  function readForm() {
    const problems = [];
    const body = {
      name: $('pf-name').value.trim(),
      type: $('pf-type').value,
      base_url: $('pf-base-url').value.trim(),
      enabled: $('pf-enabled').checked,
    };
    const w = $('pf-weight').value.trim();
    if (w !== '') {
      const n = Number(w);
      if (!Number.isInteger(n)) problems.push({ field: 'weight', reason: 'must be a whole number' });
      else body.weight = n;
    }
    const models = splitList($('pf-models').value);
    let extra = {};
    const extraText = $('pf-extra').value.trim();
    if (extraText) {
      try {
        extra = JSON.parse(extraText);
        if (!extra || typeof extra !== 'object' || Array.isArray(extra)) {
          problems.push({ field: 'extra', reason: 'must be a JSON object' });
          extra = {};
        }
      } catch (e) {
        problems.push({ field: 'extra', reason: `not valid JSON: ${e.message}` });
      }
    }
    return { body, models, extra, problems };
  }

  async function submitForm(ev) {
    ev.preventDefault();
    clearFormErrors();
    const { body, models, extra, problems } = readForm();
    if (problems.length) {
      showFieldErrors(problems);
      return;
    }
    const button = $('pf-submit');
    button.disabled = true;
    try {
      if (!editing) {
        const create = { ...extra, ...body };
        if (models.length) create.models = models;
        const keys = splitList($('pf-keys').value.replace(/,/g, '\n'));
        if (keys.length) create.api_keys = keys;
        const res = await api('POST', '/api/providers', create);
        notify(`Provider ${res.provider ? res.provider.name : body.name} created.`);
        closeForm();
      } else {
        // A merge patch: changed fields, null for what was removed.
        const patch = { ...body };
        patch.models = models.length ? models : null;
        if (!('weight' in body)) patch.weight = null;
        const before = extraOf(editing);
        for (const k of Object.keys(before)) if (!(k in extra)) patch[k] = null;
        for (const [k, v] of Object.entries(extra)) {
          // Replace nested objects whole (a merge patch would keep removed entries).
          if (k in before && v && typeof v === 'object' && !Array.isArray(v)) {
            patch[k] = nullRemoved(before[k], v);
          } else {
            patch[k] = v;
          }
        }
        const res = await api('PATCH', `/api/providers/${encodeURIComponent(editing.id)}`, patch);
        notify(`Provider ${res.provider ? res.provider.name : body.name} saved.`);
        closeForm();
      }
    } catch (e) {
      if (e.status === 422) showFieldErrors(e.fields.length ? e.fields : [{ field: '', reason: e.message }], e.message);
      else if (e.status !== 401) setText($('provider-form-errors'), errorText(e));
    } finally {
      button.disabled = false;
    }
    await loadProviders();
  }

  /** A merge patch turning `before` into `after`: keys that disappeared become null. */
  function nullRemoved(before, after) {
    const out = { ...after };
    if (before && typeof before === 'object' && !Array.isArray(before)) {
      for (const k of Object.keys(before)) {
        if (!(k in after)) out[k] = null;
        else if (after[k] && typeof after[k] === 'object' && !Array.isArray(after[k])) out[k] = nullRemoved(before[k], after[k]);
      }
    }
    return out;
  }

  /** Put 422 field errors next to their inputs; the rest above the form. */
  function showFieldErrors(fields, summary) {
    const general = [];
    for (const f of fields) {
      const path = String(f.field || '').replace(/^(create|update)\[\d+\]\.?/, '').replace(/^providers\[[^\]]*\]\.?/, '');
      const head = path.split(/[.[]/)[0];
      let target = head;
      if (head === 'api_key' || head === 'disabled_api_keys') target = 'api_keys';
      if (head && !FORM_FIELDS.includes(head) && target !== 'api_keys') target = 'extra';
      if (target === 'api_keys' && editing) target = '';
      const el = target ? document.querySelector(`#provider-form [data-testid="pf-${target}-error"]`) : null;
      const text = path && target !== head ? `${path}: ${f.reason}` : f.reason;
      if (el) {
        el.append(el.textContent ? document.createElement('br') : '', text);
        el.hidden = false;
        el.closest('.field').classList.add('invalid');
      } else {
        general.push(path ? `${path}: ${f.reason}` : f.reason);
      }
    }
    const box = $('provider-form-errors');
    clear(box);
    box.append(h('strong', {}, 'The gateway rejected this provider'));
    if (general.length) box.append(h('ul', {}, general.map((g) => h('li', {}, g))));
    else box.append(h('div', { class: 'small' }, fields.length ? 'See the messages next to the fields below.' : summary || ''));
    box.hidden = false;
  }

  // ---- keys of the provider being edited

  function renderKeys() {
    const p = editing;
    const body = clear($('keys-body'));
    setText($('keys-error'), '');
    if (!p) return;
    const states = new Map();
    const report = healthByName.get(p.name);
    if (report && Array.isArray(report.keys)) for (const k of report.keys) states.set(k.key, k);
    const keys = Array.isArray(p.keys) ? p.keys : [];
    if (!keys.length) body.append(h('tr', {}, h('td', { colspan: '5', class: 'muted' }, 'No keys (openai-type providers may run without one).')));
    for (const k of keys) {
      const st = states.get(k.key);
      const stateText = !k.enabled ? 'disabled' : st ? st.state + (st.reason ? ` (${st.reason})` : '') + (st.cooldown_remaining_secs ? `, ${Math.ceil(st.cooldown_remaining_secs)} s left` : '') : '';
      body.append(h('tr', { testid: 'key-row', data: { keyId: k.id } },
        h('td', { class: 'key' }, k.key),
        h('td', { class: 'muted mono' }, k.id),
        h('td', {}, k.enabled ? 'yes' : 'no'),
        h('td', {}, stateText),
        h('td', { class: 'actions' },
          h('button', { type: 'button', testid: 'key-toggle', onclick: () => keyCall('PATCH', k, { enabled: !k.enabled }) }, k.enabled ? 'Disable' : 'Enable'),
          h('button', { type: 'button', class: 'danger', testid: 'key-remove', onclick: () => keyCall('DELETE', k) }, 'Remove'))));
    }
  }

  async function keyCall(method, k, body) {
    const p = editing;
    if (!p) return;
    if (method === 'DELETE' && !window.confirm(`Remove key ${k.key} from ${p.name}?`)) return;
    try {
      await api(method, `/api/providers/${encodeURIComponent(p.id)}/keys/${encodeURIComponent(k.id)}`, body);
      notify(method === 'DELETE' ? `Key ${k.key} removed.` : `Key ${k.key} ${body.enabled ? 'enabled' : 'disabled'}.`);
    } catch (e) {
      if (e.status !== 401) setText($('keys-error'), errorText(e));
      return;
    }
    await loadProviders();
  }

  async function addKey() {
    const p = editing;
    const input = $('key-new');
    const key = input.value.trim();
    if (!p) return;
    if (!key) {
      setText($('keys-error'), 'Enter the key to add.');
      return;
    }
    try {
      const res = await api('POST', `/api/providers/${encodeURIComponent(p.id)}/keys`, { api_key: key });
      input.value = '';
      notify(`Key ${res.key ? res.key.key : ''} added to ${p.name}.`);
    } catch (e) {
      if (e.status !== 401) {
        const detail = e.fields && e.fields.length ? e.fields.map((f) => `${f.field}: ${f.reason}`).join('; ') : '';
        setText($('keys-error'), e.status === 422 && detail ? `${e.status}: ${detail}` : errorText(e));
      }
      return;
    }
    await loadProviders();
  }

  // auto-refresh of the providers table
  let autoTimer = null;
  function stopAuto() {
    clearInterval(autoTimer);
    autoTimer = null;
    $('providers-auto').checked = false;
  }
  function toggleAuto() {
    clearInterval(autoTimer);
    autoTimer = $('providers-auto').checked
      ? setInterval(() => { if (token && currentTab === 'providers') loadProviders(); }, 10000)
      : null;
  }

  // ------------------------------------------------------------ client keys

  // Fields the key form edits directly; the rest (limits, budgets) is the JSON box.
  const KEY_FORM_FIELDS = ['name', 'owner', 'models', 'apis', 'expires_ms', 'enabled'];
  const KEY_VIEW_ONLY = ['id', 'key', 'expired', 'created_ms', 'updated_ms'];
  let clientKeys = [];
  let editingKey = null;

  async function loadClientKeys() {
    const current = ticket('keys');
    try {
      const list = await api('GET', '/api/keys');
      if (!current()) return;
      clientKeys = Array.isArray(list.data) ? list.data : [];
      renderClientKeys();
    } catch (e) {
      if (e.status !== 401) notify(`Loading client keys failed: ${errorText(e)}`, 'error');
    }
  }

  function keyExtra(k) {
    const extra = {};
    for (const [f, v] of Object.entries(k || {})) {
      if (!KEY_FORM_FIELDS.includes(f) && !KEY_VIEW_ONLY.includes(f) && v !== null) extra[f] = v;
    }
    return extra;
  }

  /** "rpm 60 · tpm 100000 · 4 at once · month $5" from whatever limits the key has. */
  function limitsText(k) {
    const parts = [];
    if (k.rpm != null) parts.push(`rpm ${k.rpm}`);
    if (k.tpm != null) parts.push(`tpm ${k.tpm}`);
    if (k.max_concurrent != null) parts.push(`${k.max_concurrent} at once`);
    for (const b of Array.isArray(k.budgets) ? k.budgets : []) {
      const what = [b.cost_usd != null ? `$${b.cost_usd}` : null, b.tokens != null ? `${fmtNum(b.tokens)} tokens` : null].filter(Boolean).join(' / ');
      parts.push(`${b.period || ''} ${what}`.trim());
    }
    return parts.join(' · ');
  }

  function renderClientKeys() {
    const body = clear($('ckeys-body'));
    show($('ckeys-empty'), clientKeys.length === 0);
    for (const k of clientKeys) {
      const limits = limitsText(k);
      body.append(h('tr', { testid: 'ckey-row', data: { id: String(k.id), name: k.name }, class: k.enabled && !k.expired ? '' : 'disabled-row' },
        h('td', { class: 'name', testid: 'ckey-name' }, k.name),
        h('td', { testid: 'ckey-owner' }, k.owner || ''),
        h('td', { class: 'key', testid: 'ckey-masked' }, k.key),
        h('td', { class: 'models', testid: 'ckey-models' }, k.models && k.models.length ? k.models.join(', ') : h('span', { class: 'muted' }, 'all')),
        h('td', { testid: 'ckey-apis' }, k.apis && k.apis.length ? k.apis.join(', ') : h('span', { class: 'muted' }, 'all')),
        h('td', { testid: 'ckey-limits' }, limits || h('span', { class: 'muted' }, 'none')),
        h('td', { testid: 'ckey-expires' }, k.expires_ms ? [fmtTime(k.expires_ms), k.expired ? h('span', { class: 'badge unhealthy' }, 'expired') : null] : h('span', { class: 'muted' }, 'never')),
        h('td', { testid: 'ckey-enabled' }, k.enabled ? 'yes' : 'no'),
        h('td', { class: 'muted small' }, fmtTime(k.created_ms)),
        h('td', { class: 'actions' },
          h('button', { type: 'button', testid: 'ckey-edit', onclick: () => openKeyForm(k) }, 'Edit'),
          h('button', { type: 'button', testid: 'ckey-toggle', onclick: () => toggleClientKey(k) }, k.enabled ? 'Revoke' : 'Enable'),
          h('button', { type: 'button', class: 'danger', testid: 'ckey-delete', onclick: () => deleteClientKey(k) }, 'Delete'))));
    }
  }

  async function toggleClientKey(k) {
    try {
      await api('PATCH', `/api/keys/${encodeURIComponent(k.id)}`, { enabled: !k.enabled });
      notify(`Client key ${k.name} ${k.enabled ? 'revoked' : 'enabled'}.`);
    } catch (e) {
      if (e.status !== 401) notify(`${k.name}: ${errorText(e)}`, 'error');
    }
    await loadClientKeys();
  }

  async function deleteClientKey(k) {
    if (!window.confirm(`Delete client key ${k.name} (${k.key})? Callers using it get 401 at once.`)) return;
    try {
      await api('DELETE', `/api/keys/${encodeURIComponent(k.id)}`);
      notify(`Client key ${k.name} deleted.`);
      if (editingKey && editingKey.id === k.id) closeKeyForm();
    } catch (e) {
      if (e.status !== 401) notify(`${k.name}: ${errorText(e)}`, 'error');
    }
    await loadClientKeys();
  }

  /** ms since the epoch as a datetime-local value (local time), and back. */
  function toLocalInput(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function openKeyForm(k) {
    editingKey = k || null;
    setText($('ckey-form-errors'), '');
    $('ckey-form-title').textContent = k ? `Edit client key ${k.name}` : 'Create client key';
    $('kf-submit').textContent = k ? 'Save' : 'Create';
    $('kf-name').value = k ? k.name : '';
    $('kf-owner').value = k ? k.owner || '' : '';
    $('kf-models').value = k && k.models ? k.models.join(', ') : '';
    for (const box of document.querySelectorAll('#kf-apis input')) box.checked = !!(k && k.apis && k.apis.includes(box.value));
    $('kf-expires').value = k && k.expires_ms ? toLocalInput(k.expires_ms) : '';
    $('kf-enabled').checked = k ? !!k.enabled : true;
    const extra = keyExtra(k);
    $('kf-extra').value = Object.keys(extra).length ? JSON.stringify(extra, null, 2) : '';
    show($('ckey-form'), true);
    $('ckey-form').scrollIntoView({ block: 'nearest' });
    $('kf-name').focus();
  }

  function closeKeyForm() {
    editingKey = null;
    show($('ckey-form'), false);
  }

  function showSecret(secret) {
    $('ckey-secret').value = secret;
    show($('ckey-secret-box'), true);
    $('ckey-secret').select();
  }

  function hideSecret() {
    // The secret leaves the page: nothing keeps it.
    $('ckey-secret').value = '';
    show($('ckey-secret-box'), false);
  }

  async function submitKeyForm(ev) {
    ev.preventDefault();
    setText($('ckey-form-errors'), '');
    const body = {
      name: $('kf-name').value.trim(),
      owner: $('kf-owner').value.trim(),
      models: splitList($('kf-models').value),
      apis: [...document.querySelectorAll('#kf-apis input')].filter((b) => b.checked).map((b) => b.value),
      enabled: $('kf-enabled').checked,
    };
    const expires = $('kf-expires').value;
    if (expires) {
      const ms = new Date(expires).getTime();
      if (!Number.isFinite(ms)) {
        setText($('ckey-form-errors'), 'expires: not a valid date and time');
        return;
      }
      body.expires_ms = ms;
    } else if (editingKey) {
      body.expires_ms = null;
    }
    let extra = {};
    const extraText = $('kf-extra').value.trim();
    if (extraText) {
      try {
        extra = JSON.parse(extraText);
      } catch (e) {
        setText($('ckey-form-errors'), `limits and budgets: not valid JSON: ${e.message}`);
        return;
      }
      if (!extra || typeof extra !== 'object' || Array.isArray(extra)) {
        setText($('ckey-form-errors'), 'limits and budgets: must be a JSON object');
        return;
      }
    }
    const button = $('kf-submit');
    button.disabled = true;
    try {
      if (!editingKey) {
        const res = await api('POST', '/api/keys', { ...extra, ...body });
        closeKeyForm();
        showSecret(res.secret);
        notify(`Client key ${res.key ? res.key.name : body.name} created.`);
      } else {
        const patch = { ...extra, ...body };
        // Limits removed from the JSON box are unset.
        for (const f of Object.keys(keyExtra(editingKey))) if (!(f in extra)) patch[f] = null;
        await api('PATCH', `/api/keys/${encodeURIComponent(editingKey.id)}`, patch);
        notify(`Client key ${body.name} saved.`);
        closeKeyForm();
      }
    } catch (e) {
      if (e.status === 401) return;
      const detail = e.fields && e.fields.length ? e.fields.map((f) => (f.field ? `${f.field}: ${f.reason}` : f.reason)).join('; ') : '';
      setText($('ckey-form-errors'), detail ? `${e.status}: ${detail}` : errorText(e));
    } finally {
      button.disabled = false;
    }
    await loadClientKeys();
  }

  async function copySecret() {
    try {
      await navigator.clipboard.writeText($('ckey-secret').value);
      notify('Secret copied.');
    } catch (_) {
      // Clipboard access needs a secure context: the text is selected for a manual copy.
      $('ckey-secret').select();
      notify('Copy the selected secret with Ctrl+C.');
    }
  }

  // ------------------------------------------------------------ aliases

  async function loadAliases() {
    setText($('alias-error'), '');
    try {
      const current = ticket('aliases');
      const list = await api('GET', '/api/aliases');
      if (!current()) return;
      const data = Array.isArray(list.data) ? list.data : [];
      const body = clear($('aliases-body'));
      show($('aliases-empty'), data.length === 0);
      for (const a of data) {
        body.append(h('tr', { testid: 'alias-row', data: { alias: a.alias } },
          h('td', { class: 'name' }, a.alias),
          h('td', {}, a.target),
          h('td', {}, h('span', { class: `tag ${a.source === 'file' ? 'file' : 'api'}` }, a.source || '')),
          h('td', { class: 'actions' },
            h('button', { type: 'button', testid: 'alias-edit', onclick: () => { $('alias-name').value = a.alias; $('alias-target').value = a.target; $('alias-target').focus(); } }, 'Edit'),
            h('button', { type: 'button', class: 'danger', testid: 'alias-delete', onclick: () => deleteAlias(a.alias) }, 'Delete'))));
      }
    } catch (e) {
      if (e.status !== 401) setText($('alias-error'), errorText(e));
    }
  }

  async function setAlias(ev) {
    ev.preventDefault();
    const alias = $('alias-name').value.trim();
    const target = $('alias-target').value.trim();
    setText($('alias-error'), '');
    if (!alias) {
      setText($('alias-error'), 'Enter the alias name.');
      return;
    }
    try {
      await api('PUT', `/api/aliases/${encodeURIComponent(alias)}`, { target });
      notify(`Alias ${alias} → ${target} set.`);
      $('alias-name').value = '';
      $('alias-target').value = '';
    } catch (e) {
      if (e.status === 401) return;
      const detail = e.fields && e.fields.length ? e.fields.map((f) => (f.field ? `${f.field}: ${f.reason}` : f.reason)).join('; ') : e.message;
      setText($('alias-error'), `${e.status ? `${e.status}: ` : ''}${detail}`);
      return;
    }
    await loadAliases();
  }

  async function deleteAlias(alias) {
    if (!window.confirm(`Delete alias ${alias}?`)) return;
    try {
      await api('DELETE', `/api/aliases/${encodeURIComponent(alias)}`);
      notify(`Alias ${alias} deleted.`);
    } catch (e) {
      if (e.status !== 401) setText($('alias-error'), errorText(e));
      return;
    }
    await loadAliases();
  }

  // ------------------------------------------------------------ request log

  let logCursor = null; // before_id of the page shown (null = newest)
  let logNext = null;
  let logPageNo = 1;

  function logFilters() {
    const q = {
      provider: $('lf-provider').value.trim(),
      model: $('lf-model').value.trim(),
      limit: $('lf-limit').value,
    };
    const st = $('lf-status').value;
    if (st === 'errors') q.min_status = 400;
    else if (st === 'custom') q.status = $('lf-status-custom').value.trim();
    else if (st) q.status = st;
    const since = $('lf-since').value;
    const until = $('lf-until').value;
    if (since) q.since_ms = new Date(since).getTime();
    if (until) q.until_ms = new Date(until).getTime();
    return q;
  }

  async function loadLogs(beforeId) {
    setText($('logs-error'), '');
    const q = logFilters();
    if (beforeId) q.before_id = beforeId;
    try {
      const current = ticket('logs');
      const page = await api('GET', `/api/logs${qs(q)}`);
      if (!current()) return;
      const items = Array.isArray(page.items) ? page.items : [];
      logCursor = beforeId || null;
      logNext = page.next_before_id ?? null;
      logPageNo = beforeId ? logPageNo + 1 : 1;
      renderLogs(items);
      $('logs-older').disabled = !logNext;
      $('logs-newest').disabled = !logCursor;
      $('logs-info').textContent = items.length
        ? `page ${logPageNo}: ${items.length} request${items.length === 1 ? '' : 's'}, ${fmtTime(items[items.length - 1].ts_ms)} – ${fmtTime(items[0].ts_ms)}${logNext ? '' : ' (oldest)'}`
        : '';
    } catch (e) {
      if (e.status !== 401) setText($('logs-error'), errorText(e));
    }
  }

  function renderLogs(items) {
    const body = clear($('logs-body'));
    show($('logs-empty'), items.length === 0);
    for (const r of items) {
      const cls = r.status >= 500 ? 's5' : r.status >= 400 ? 's4' : 's2';
      const tokens = r.prompt_tokens === null && r.completion_tokens === null ? '–' : `${r.prompt_tokens ?? '–'} / ${r.completion_tokens ?? '–'}`;
      const row = h('tr', { testid: 'log-row', class: 'clickable', data: { id: String(r.id), status: String(r.status), model: r.model || '', provider: r.provider || '' }, title: 'click for details' },
        h('td', { class: 'nowrap' }, fmtTime(r.ts_ms)),
        h('td', { testid: 'log-status' }, h('span', { class: `status ${cls}` }, String(r.status))),
        h('td', { testid: 'log-model' }, r.model || '', r.upstream_model && r.upstream_model !== r.model ? h('div', { class: 'muted small' }, `→ ${r.upstream_model}`) : null),
        h('td', { testid: 'log-provider' }, r.provider || h('span', { class: 'muted' }, '–')),
        h('td', { class: 'key' }, r.key || ''),
        h('td', {}, r.api || ''),
        h('td', {}, r.stream ? 'yes' : 'no'),
        h('td', { class: 'num' }, String(r.attempts ?? '')),
        h('td', { class: 'num nowrap' }, fmtMs(r.latency_ms)),
        h('td', { class: 'num nowrap' }, fmtMs(r.ttfb_ms)),
        h('td', { class: 'num nowrap' }, tokens),
        h('td', { class: 'error-cell' }, r.outcome || '', r.error ? h('div', { class: 'small' }, r.error) : null));
      const detail = h('tr', { class: 'detail', testid: 'log-detail', hidden: true },
        h('td', { colspan: '12' }, h('dl', { class: 'kv' },
          Object.entries(r).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined ? '–' : String(v))]))));
      row.addEventListener('click', () => { detail.hidden = !detail.hidden; });
      body.append(row, detail);
    }
  }

  // ------------------------------------------------------------ usage

  const NICE_BUCKETS = [10, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400];

  function usageParams() {
    const range = Number($('uf-range').value);
    let bucket = $('uf-bucket').value;
    bucket = bucket === 'auto' ? NICE_BUCKETS.find((b) => b >= range / 120) || 86400 : Number(bucket);
    // At most 500 buckets drawn.
    while (range / bucket > 500) bucket *= 2;
    const now = Date.now();
    const since = now - range * 1000;
    return { range, bucket, since, now, group: $('uf-group').value };
  }

  async function loadUsage() {
    const current = ticket('usage');
    setText($('usage-error'), '');
    const { bucket, since, now, group } = usageParams();
    try {
      const [total, grouped, summary, summaryTotal] = await Promise.all([
        api('GET', `/api/stats/usage${qs({ since_ms: since, bucket_secs: bucket })}`),
        api('GET', `/api/stats/usage${qs({ since_ms: since, bucket_secs: bucket, group_by: group })}`),
        api('GET', `/api/stats/usage${qs({ since_ms: since, group_by: group })}`),
        api('GET', `/api/stats/usage${qs({ since_ms: since })}`),
      ]);
      if (!current()) return;
      renderUsage({ bucket, since, now, group, total: total.data || [], grouped: grouped.data || [], summary: summary.data || [], summaryTotal: summaryTotal.data || [], dropped: total.log_rows_dropped || 0 });
    } catch (e) {
      if (e.status !== 401) setText($('usage-error'), errorText(e));
    }
  }

  function groupLabel(g, group) {
    if (g === null || g === undefined) return group === 'key' ? '(master token)' : `(no ${group})`;
    return String(g);
  }

  function renderUsage(u) {
    const bucketMs = u.bucket * 1000;
    const start = Math.floor(u.since / bucketMs) * bucketMs;
    const times = [];
    for (let t = start; t <= u.now; t += bucketMs) times.push(t);
    const index = new Map(times.map((t, i) => [t, i]));
    const groups = [...new Set(u.grouped.map((r) => groupLabel(r.group, u.group)))].sort();
    const colors = new Map(groups.map((g, i) => [g, PALETTE[i % PALETTE.length]]));

    // The focus select lists the groups; keep the choice when still present.
    const focusSel = $('uf-focus');
    const prev = focusSel.value;
    clear(focusSel).append(h('option', { value: '' }, 'all (total)'), groups.map((g) => h('option', { value: g }, g)));
    focusSel.value = groups.includes(prev) ? prev : '';
    const focus = focusSel.value;

    const series = (rows, field, fill) => {
      const out = times.map(() => fill);
      for (const r of rows) {
        const i = index.get(r.bucket_start_ms);
        if (i !== undefined) out[i] = r[field] ?? null;
      }
      return out;
    };
    const byGroup = (field) => groups
      .filter((g) => !focus || g === focus)
      .map((g) => ({ name: g, color: colors.get(g), values: series(u.grouped.filter((r) => groupLabel(r.group, u.group) === g), field, 0) }));
    const base = focus ? u.grouped.filter((r) => groupLabel(r.group, u.group) === focus) : u.total;

    const charts = clear($('charts'));
    const span = u.now - start;
    charts.append(
      chart({ id: 'requests', title: `Requests per ${fmtDuration(u.bucket)}`, kind: 'bars', times, span, bucketMs, series: byGroup('requests') }),
      chart({ id: 'errors', title: `Errors (status ≥ 400) per ${fmtDuration(u.bucket)}`, kind: 'bars', times, span, bucketMs, series: byGroup('errors') }),
      chart({ id: 'latency', title: 'Latency', kind: 'lines', times, span, bucketMs, fmt: fmtMs, whole: false, series: [
        { name: 'p50', color: PALETTE[0], values: series(base, 'p50_latency_ms', null) },
        { name: 'p95', color: PALETTE[2], values: series(base, 'p95_latency_ms', null) },
      ] }),
      chart({ id: 'tokens', title: `Tokens per ${fmtDuration(u.bucket)}`, kind: 'lines', times, span, bucketMs, series: [
        { name: 'in (prompt)', color: PALETTE[1], values: series(base, 'prompt_tokens', 0) },
        { name: 'out (completion)', color: PALETTE[3], values: series(base, 'completion_tokens', 0) },
      ] }),
      chart({ id: 'cost', title: `Cost (USD) per ${fmtDuration(u.bucket)}`, kind: 'bars', times, span, bucketMs, fmt: fmtUsd, whole: false, series: byGroup('cost_usd') }));

    const requests = u.summaryTotal.reduce((a, r) => a + r.requests, 0);
    $('usage-info').textContent = `${fmtNum(requests)} request${requests === 1 ? '' : 's'} since ${fmtTime(u.since)}, ${fmtDuration(u.bucket)} buckets${focus ? `, showing ${focus}` : ''}.` +
      (u.dropped ? ` ${u.dropped} log rows were dropped (the log writer fell behind); they are not counted.` : '');

    $('usage-group-head').textContent = { model: 'Model', key: 'Client key' }[u.group] || 'Provider';
    $('usage-summary-label').textContent = `by ${u.group}, since ${fmtTime(u.since)}`;
    const body = clear($('usage-summary-body'));
    const rows = [...u.summary].sort((a, b) => b.requests - a.requests);
    const line = (label, r, cls) => h('tr', { testid: 'usage-row', class: cls || '', data: { group: label } },
      h('td', { class: 'name' }, label),
      h('td', { class: 'num' }, String(r.requests)),
      h('td', { class: 'num' }, String(r.errors)),
      h('td', { class: 'num' }, fmtPct(r.error_rate ?? (r.requests ? r.errors / r.requests : 0))),
      h('td', { class: 'num' }, fmtMs(r.avg_latency_ms)),
      h('td', { class: 'num' }, fmtMs(r.p50_latency_ms)),
      h('td', { class: 'num' }, fmtMs(r.p95_latency_ms)),
      h('td', { class: 'num' }, String(r.prompt_tokens)),
      h('td', { class: 'num' }, String(r.completion_tokens)),
      h('td', { class: 'num' }, String(r.cached_tokens ?? 0)),
      h('td', { class: 'num', testid: 'usage-cost' }, fmtUsd(r.cost_usd ?? 0)));
    for (const r of rows) body.append(line(groupLabel(r.group, u.group), r));
    if (u.summaryTotal.length) body.append(line('total', u.summaryTotal[0], 'total'));
    if (!rows.length) body.append(h('tr', {}, h('td', { colspan: '11', class: 'muted' }, 'No requests in this range.')));
  }

  /** A round tick step for 4 steps reaching `max`; whole numbers for counts. */
  function niceStep(max, whole) {
    const v = max > 0 ? max / 4 : 0.25;
    const p = 10 ** Math.floor(Math.log10(v));
    let step = 10 * p;
    for (const m of [1, 2, 2.5, 5, 10]) {
      if (m * p >= v && !(whole && m === 2.5 && p < 10)) { step = m * p; break; }
    }
    return whole ? Math.max(1, step) : step;
  }

  const MIN = 60 * 1000, HOUR = 60 * MIN, DAY = 24 * HOUR;
  const TICK_STEPS = [10 * 1000, 30 * 1000, MIN, 2 * MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];

  /** Round local times for the x axis: at most ~7 between start and end. */
  function timeTicks(start, end) {
    const step = TICK_STEPS.find((st) => (end - start) / st <= 7) || 7 * DAY;
    // Align to local time (whole hours and days in the viewer's zone).
    const tz = new Date(start).getTimezoneOffset() * MIN;
    const ticks = [];
    for (let t = Math.ceil((start - tz) / step) * step + tz; t <= end; t += step) ticks.push(t);
    return ticks;
  }

  /** An SVG chart: stacked bars or lines over time buckets. */
  function chart({ id, title, kind, times, span, bucketMs, series, fmt = fmtNum, whole = true }) {
    const W = 640, H = 220, L = 56, R = 12, T = 12, B = 28;
    const pw = W - L - R, ph = H - T - B;
    const n = times.length;
    let max = 0;
    if (kind === 'bars') {
      for (let i = 0; i < n; i++) max = Math.max(max, series.reduce((a, sr) => a + (sr.values[i] || 0), 0));
    } else {
      for (const sr of series) for (const v of sr.values) if (v !== null && v > max) max = v;
    }
    const step = niceStep(max, whole);
    const top = step * 4;
    const y = (v) => T + ph - (v / top) * ph;
    const slot = pw / Math.max(n, 1);
    const x = (i) => L + slot * i + slot / 2;
    const xt = (t) => L + (slot * (t - times[0])) / bucketMs;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': title, 'data-testid': `chart-${id}-svg` });
    // grid and y axis
    for (let k = 0; k <= 4; k++) {
      const v = step * k;
      svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: k ? 'grid-line' : 'axis-line' }));
      svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick', text: fmt(v) }));
    }
    // x ticks at round local times
    for (const t of timeTicks(times[0], times[0] + n * bucketMs)) {
      svg.append(s('line', { x1: xt(t), x2: xt(t), y1: T + ph, y2: T + ph + 4, class: 'axis-line' }));
      svg.append(s('text', { x: xt(t), y: H - 8, 'text-anchor': 'middle', class: 'tick', text: fmtAxisTime(t, span) }));
    }
    let points = 0;
    if (kind === 'bars') {
      const bw = Math.max(1, slot * 0.8);
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (const sr of series) {
          const v = sr.values[i] || 0;
          if (!v) continue;
          const y0 = y(acc), y1 = y(acc + v);
          acc += v;
          points++;
          svg.append(s('rect', { x: x(i) - bw / 2, y: y1, width: bw, height: Math.max(0.5, y0 - y1), fill: sr.color, class: 'bar' },
            s('title', { text: `${fmtTime(times[i])} ${sr.name}: ${fmt(v)}` })));
        }
      }
    } else {
      for (const sr of series) {
        let d = '';
        let pen = false;
        sr.values.forEach((v, i) => {
          if (v === null || v === undefined) { pen = false; return; }
          d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
          pen = true;
        });
        if (d) svg.append(s('path', { d, fill: 'none', stroke: sr.color, 'stroke-width': 2, class: 'series', 'vector-effect': 'non-scaling-stroke' }));
        sr.values.forEach((v, i) => {
          if (v === null || v === undefined) return;
          const isolated = (i === 0 || sr.values[i - 1] === null) && (i === n - 1 || sr.values[i + 1] === null);
          if (v > 0) points++;
          svg.append(s('circle', { cx: x(i), cy: y(v), r: isolated || n <= 60 ? 2.5 : 0.01, fill: sr.color, class: 'point' },
            s('title', { text: `${fmtTime(times[i])} ${sr.name}: ${fmt(v)}` })));
        });
      }
    }
    if (!points) svg.append(s('text', { x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle', class: 'empty', text: 'no data in this range' }));
    const legend = h('div', { class: 'legend' }, series.map((sr) => h('span', { class: 'legend-item' }, h('i', { style: `background:${sr.color}` }), sr.name)));
    return h('figure', { class: 'chart card', testid: `chart-${id}`, data: { points: String(points) } }, h('figcaption', {}, title), svg, legend);
  }

  // ------------------------------------------------------------ import / export

  async function fetchExport() {
    const format = $('export-format').value;
    const include = $('export-keys').checked;
    const data = await api('GET', `/api/config/export${qs({ format, include_keys: include ? 'true' : '' })}`);
    return { format, text: typeof data === 'string' ? data : JSON.stringify(data, null, 2) };
  }

  async function viewExport() {
    try {
      const { text } = await fetchExport();
      const pre = $('export-preview');
      pre.textContent = text;
      pre.hidden = false;
    } catch (e) {
      if (e.status !== 401) notify(`Export failed: ${errorText(e)}`, 'error');
    }
  }

  async function downloadExport() {
    try {
      const { format, text } = await fetchExport();
      const blob = new Blob([text], { type: format === 'json' ? 'application/json' : 'application/toml' });
      const url = URL.createObjectURL(blob);
      const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
      const a = h('a', { href: url, download: `llm-orchestrator-${stamp}.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      notify(`Exported as ${format.toUpperCase()}${$('export-keys').checked ? ' (with keys: keep it secret)' : ''}.`);
    } catch (e) {
      if (e.status !== 401) notify(`Export failed: ${errorText(e)}`, 'error');
    }
  }

  let lastDryRun = null; // {text, format} of the last successful preview

  function importFormat(text) {
    const f = $('import-format').value;
    if (f !== 'auto') return f;
    return text.trimStart().startsWith('{') ? 'json' : 'toml';
  }

  function importInvalidated() {
    lastDryRun = null;
    $('import-apply').disabled = true;
  }

  async function runImport(dryRun) {
    const text = $('import-text').value;
    const errors = $('import-errors');
    setText(errors, '');
    if (!text.trim()) {
      setText(errors, 'Paste a configuration or choose a file first.');
      return;
    }
    const format = importFormat(text);
    if (!dryRun) {
      if (!lastDryRun || lastDryRun.text !== text || lastDryRun.format !== format) {
        setText(errors, 'Preview the import first.');
        return;
      }
      const question = lastDryRun.replaceRequired
        ? `Apply the import? It deletes ${lastDryRun.removes} API-owned provider(s)/alias(es) and keeps ${lastDryRun.keeps}.`
        : 'Apply the import? The sections it contains replace the API-owned ones.';
      if (!window.confirm(question)) return;
    }
    const result = $('import-result');
    try {
      // replace=true only after the dry run showed the deletions and the
      // user confirmed them above.
      const replace = !dryRun && lastDryRun.replaceRequired ? 'true' : 'false';
      const res = await api('POST', `/api/config/import${qs({ format, dry_run: dryRun ? 'true' : 'false', replace })}`, text,
        { contentType: format === 'json' ? 'application/json' : 'application/toml' });
      renderImportResult(res);
      if (dryRun) {
        lastDryRun = { text, format, replaceRequired: !!res.replace_required, removes: res.removes, keeps: res.keeps };
        $('import-apply').disabled = false;
      } else {
        importInvalidated();
        notify(`Import applied (configuration version ${res.version}).`);
      }
    } catch (e) {
      importInvalidated();
      result.hidden = true;
      if (e.status === 401) return;
      clear(errors);
      errors.append(h('strong', {}, e.status === 422 ? 'The configuration is invalid' : errorText(e)));
      if (e.fields && e.fields.length) {
        errors.append(h('ul', {}, e.fields.map((f) => h('li', { testid: 'import-error' }, f.field ? `${f.field}: ${f.reason}` : f.reason))));
      }
      errors.hidden = false;
    }
  }

  function renderImportResult(res) {
    const box = clear($('import-result'));
    const ch = res.changes || {};
    const list = (label, items, cls) => h('li', { class: cls }, `${label}: `, items && items.length ? items.join(', ') : h('span', { class: 'muted' }, 'none'));
    const prov = ch.providers || {};
    const al = ch.aliases || {};
    box.append(
      h('h4', { testid: 'import-result-title' }, res.dry_run ? 'Dry run: the import is valid and would change' : `Applied (version ${res.version})`),
      h('ul', { class: 'changes' },
        list('providers added', prov.added, 'add'),
        list('providers removed', prov.removed, 'remove'),
        list('providers changed', prov.changed, 'change'),
        list('aliases added', al.added, 'add'),
        list('aliases removed', al.removed, 'remove'),
        list('aliases changed', al.changed, 'change'),
        h('li', { class: ch.settings_changed ? 'change' : '' }, `settings: ${ch.settings_changed ? 'changed' : 'unchanged'}`),
        res.skipped_file_providers && res.skipped_file_providers.length
          ? h('li', {}, `skipped (declared in the file): ${res.skipped_file_providers.join(', ')}`) : null));
    box.hidden = false;
  }

  async function importFile() {
    const file = $('import-file').files[0];
    if (!file) return;
    try {
      $('import-text').value = await file.text();
      const name = file.name.toLowerCase();
      if (name.endsWith('.json')) $('import-format').value = 'json';
      else if (name.endsWith('.toml')) $('import-format').value = 'toml';
      importInvalidated();
      $('import-result').hidden = true;
    } catch (e) {
      setText($('import-errors'), `Cannot read ${file.name}: ${e.message}`);
    }
  }

  // ------------------------------------------------------------ wiring

  function wire() {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', () => logout('Signed out.'));
    window.addEventListener('hashchange', route);

    $('providers-refresh').addEventListener('click', loadProviders);
    $('providers-auto').addEventListener('change', toggleAuto);
    $('provider-new').addEventListener('click', () => openForm(null));
    $('provider-form').addEventListener('submit', submitForm);
    $('pf-cancel').addEventListener('click', closeForm);
    $('key-add').addEventListener('click', addKey);
    $('key-new').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); addKey(); } });

    $('ckeys-refresh').addEventListener('click', loadClientKeys);
    $('ckey-new').addEventListener('click', () => openKeyForm(null));
    $('ckey-form').addEventListener('submit', submitKeyForm);
    $('kf-cancel').addEventListener('click', closeKeyForm);
    $('ckey-secret-copy').addEventListener('click', copySecret);
    $('ckey-secret-done').addEventListener('click', hideSecret);

    $('aliases-refresh').addEventListener('click', loadAliases);
    $('alias-form').addEventListener('submit', setAlias);

    $('logs-filter').addEventListener('submit', (ev) => { ev.preventDefault(); loadLogs(null); });
    $('lf-status').addEventListener('change', () => show($('lf-status-custom'), $('lf-status').value === 'custom'));
    $('lf-reset').addEventListener('click', () => {
      for (const id of ['lf-provider', 'lf-model', 'lf-since', 'lf-until', 'lf-status-custom']) $(id).value = '';
      $('lf-status').value = '';
      show($('lf-status-custom'), false);
      loadLogs(null);
    });
    $('logs-older').addEventListener('click', () => { if (logNext) loadLogs(logNext); });
    $('logs-newest').addEventListener('click', () => loadLogs(null));

    $('usage-filter').addEventListener('submit', (ev) => { ev.preventDefault(); loadUsage(); });
    for (const id of ['uf-range', 'uf-bucket', 'uf-group', 'uf-focus']) $(id).addEventListener('change', loadUsage);

    $('export-view').addEventListener('click', viewExport);
    $('export-download').addEventListener('click', downloadExport);
    $('import-file').addEventListener('change', importFile);
    $('import-text').addEventListener('input', importInvalidated);
    $('import-format').addEventListener('change', importInvalidated);
    $('import-preview').addEventListener('click', () => runImport(true));
    $('import-apply').addEventListener('click', () => runImport(false));
  }

  wire();
  if (token) enterApp();
  else showLogin('');
})();
