// The Velo console: jobs, a job's page, a SQL box and the catalog, drawn from velo-server's HTTP API.
//
// Framework-free and build-free on purpose (the server ships this file as is and the console must
// work offline). Loaded by boot.js, which owns the bearer token (window.velo.session). Every number
// on screen comes from the API: GET /jobs is polled once a second and rates (records per second) are
// computed here from the counters' deltas; a job's page polls GET /jobs/{name}; the SQL box and a
// job's live output read POST /query's NDJSON stream.
(function () {
  'use strict';

  const session = window.velo.session;
  const WORDS = window.velo.words;
  const POLL_MS = 1000;         // GET /jobs: the sparklines' resolution
  const DETAIL_POLL_MS = 1500;  // GET /jobs/{name}: offsets, history, errors
  const HISTORY = 120;          // samples kept per job (two minutes at POLL_MS)
  const MAX_ROWS = 500;         // rows kept by a streaming (append-only) result table
  const SVGNS = 'http://www.w3.org/2000/svg';
  const STATES = ['STARTING', 'RUNNING', 'PAUSED', 'DEGRADED', 'STOPPING', 'STOPPED', 'FAILED'];

  // ------------------------------------------------------------------------------------ DOM helpers

  /** h('div', {class, text, onclick, dataset, ...attrs}, ...children): one element, built in one call. */
  function h(tag, props, ...children) {
    const svg = tag.startsWith('svg:');
    const el = svg ? document.createElementNS(SVGNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'html') el.innerHTML = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'value' && !svg) el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** replaceChildren that skips null/false children (conditional parts of a view). */
  function fill(el, ...children) {
    el.replaceChildren();
    return append(el, children);
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  // ------------------------------------------------------------------------------------ formatting

  function fmtCount(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return '–';
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + 'G';
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
    return String(Math.round(n));
  }

  function fmtRate(r) {
    if (r === null || r === undefined) return '–';
    if (r > 0 && r < 10) return r.toFixed(1);
    return fmtCount(r);
  }

  function fmtBytes(b) {
    if (!b) return '0 B';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i += 1; }
    return (i ? b.toFixed(1) : String(b)) + ' ' + units[i];
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || ms < 0) return '–';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + String(s % 60).padStart(2, '0') + 's';
    const hr = Math.floor(m / 60);
    if (hr < 48) return hr + 'h ' + String(m % 60).padStart(2, '0') + 'm';
    return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
  }

  function fmtClock(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString([], { hour12: false });
  }

  function fmtDateTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString([], { hour12: false });
  }

  function cellText(value) {
    if (value === null || value === undefined) return 'NULL';
    if (typeof value === 'object') return JSON.stringify(value);
    // 15 significant digits: what a double holds reliably (no ...0000001 tails from float sums).
    if (typeof value === 'number' && !Number.isInteger(value)) return String(Number(value.toPrecision(15)));
    return String(value);
  }

  function fmtCell(value) {
    return value === null || value === undefined ? h('span', { class: 'null', text: 'NULL' }) : cellText(value);
  }

  // ------------------------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || ('HTTP ' + status));
      this.status = status;
      this.error = error || {};
    }
  }

  /** One JSON call to the API with the session's token; errors become ApiError (the API's one shape). */
  async function api(method, path, body) {
    const init = { method, headers: session.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (exc) {
      throw new ApiError(0, { code: 'network', message: 'the server cannot be reached' });
    }
    if (resp.status === 401) {
      const err = await resp.json().catch(() => ({}));
      session.expired(err.error && err.error.message);
      throw new ApiError(401, err.error);
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || { message: text || resp.statusText });
    return data;
  }

  function toast(message, kind) {
    const el = h('div', { class: 'toast toast-' + (kind || 'info'), role: 'status', text: message });
    document.getElementById('toasts').appendChild(el);
    setTimeout(() => el.classList.add('toast-out'), 4000);
    setTimeout(() => el.remove(), 4600);
  }

  // ------------------------------------------------------------------------------------ highlighting

  const KEYWORDS = new Set(WORDS.keywords);
  const TYPES = new Set(WORDS.types);
  const UNITS = new Set(WORDS.units);
  const FUNCTIONS = new Set(WORDS.functions);
  const SQL_TOKEN = /(--[^\n]*)|(\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|("(?:[^"]|"")*"?|`[^`]*`?)|(\$\{[^}\n]*\}?)|(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|([\s\S])/g;

  /** SQL text → tokens {text, cls, start}; the classes are the stylesheet's .t-* colours. */
  function sqlTokens(text) {
    const tokens = [];
    SQL_TOKEN.lastIndex = 0;
    let m;
    while ((m = SQL_TOKEN.exec(text)) !== null) {
      let cls = '';
      if (m[1] || m[2]) cls = 'comment';
      else if (m[3]) cls = 'string';
      else if (m[4]) cls = 'quoted';
      else if (m[5]) cls = 'var';
      else if (m[6]) cls = 'number';
      else if (m[7]) {
        const up = m[7].toUpperCase();
        const next = text.slice(SQL_TOKEN.lastIndex).match(/^\s*\(/);
        if (FUNCTIONS.has(up) && next) cls = 'fn';
        else if (KEYWORDS.has(up)) cls = 'kw';
        else if (TYPES.has(up)) cls = 'type';
        else if (UNITS.has(up)) cls = 'unit';
        else if (next) cls = 'fn';
        else cls = 'ident';
      } else if (m[9]) cls = /[(),;.]/.test(m[9]) ? 'punct' : 'op';
      tokens.push({ text: m[0], cls, start: m.index });
    }
    return tokens;
  }

  /** Highlighted HTML for SQL; ``errorAt`` (a character offset) marks the token an error points at. */
  function highlightSql(text, errorAt) {
    let html = '';
    let marked = false;
    for (const t of sqlTokens(text)) {
      const end = t.start + t.text.length;
      const hit = errorAt !== undefined && errorAt !== null && !marked && errorAt >= t.start && errorAt < end && t.cls !== '';
      const cls = (t.cls ? 't-' + t.cls : '') + (hit ? ' t-error' : '');
      if (hit) marked = true;
      html += cls.trim() ? '<span class="' + cls.trim() + '">' + escapeHtml(t.text) + '</span>' : escapeHtml(t.text);
    }
    if (errorAt !== undefined && errorAt !== null && !marked) html += '<span class="t-error t-eof"> </span>';
    return html;
  }

  const PY_KEYWORDS = new Set(('and as assert async await break class continue def del elif else except finally for from ' +
    'global if import in is lambda nonlocal not or pass raise return try while with yield None True False').split(' '));
  const PY_TOKEN = /(#[^\n]*)|((?:[rbf]{0,2})(?:'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|([\s\S])/g;

  function highlightPython(text) {
    let html = '';
    PY_TOKEN.lastIndex = 0;
    let m;
    while ((m = PY_TOKEN.exec(text)) !== null) {
      let cls = '';
      if (m[1]) cls = 'comment';
      else if (m[2]) cls = 'string';
      else if (m[3]) cls = 'number';
      else if (m[4]) {
        if (PY_KEYWORDS.has(m[4])) cls = 'kw';
        else if (/^\s*\(/.test(text.slice(PY_TOKEN.lastIndex))) cls = 'fn';
      }
      html += cls ? '<span class="t-' + cls + '">' + escapeHtml(m[0]) + '</span>' : escapeHtml(m[0]);
    }
    return html;
  }

  function codeBlock(text, lang) {
    const html = lang === 'python' ? highlightPython(text) : highlightSql(text);
    return h('pre', { class: 'code code-' + lang, html });
  }

  // ------------------------------------------------------------------------------------ sparklines

  /** A small SVG line over ``values`` (scaled to their max; a flat zero line when all are zero). */
  function sparkline(values, opts) {
    const o = Object.assign({ width: 96, height: 24, cls: '' }, opts || {});
    const svg = h('svg:svg', { class: 'spark ' + o.cls, width: o.width, height: o.height, viewBox: `0 0 ${o.width} ${o.height}`, 'aria-hidden': 'true' });
    const pts = values.filter((v) => v !== null && v !== undefined);
    if (pts.length < 2) {
      svg.appendChild(h('svg:line', { x1: 0, y1: o.height - 1, x2: o.width, y2: o.height - 1, class: 'spark-base' }));
      return svg;
    }
    const max = Math.max(...pts) || 1;
    // The x axis is time: it widens with the samples up to HISTORY, so a new job's line is not a dot.
    const horizon = Math.min(HISTORY, Math.max(30, pts.length));
    const step = o.width / (horizon - 1);
    const offset = o.width - step * (pts.length - 1);
    const coords = pts.map((v, i) => [offset + i * step, o.height - 2 - (v / max) * (o.height - 4)]);
    const line = coords.map(([x, y]) => x.toFixed(1) + ',' + y.toFixed(1)).join(' ');
    const first = coords[0][0].toFixed(1);
    svg.appendChild(h('svg:polygon', { class: 'spark-area', points: `${first},${o.height} ${line} ${o.width},${o.height}` }));
    svg.appendChild(h('svg:polyline', { class: 'spark-line', points: line }));
    const [lx, ly] = coords[coords.length - 1];
    svg.appendChild(h('svg:circle', { class: 'spark-dot', cx: lx.toFixed(1), cy: ly.toFixed(1), r: 1.8 }));
    svg.appendChild(h('svg:title', { text: 'max ' + fmtRate(max) }));
    return svg;
  }

  // ------------------------------------------------------------------------------------ the jobs store

  /** Polls GET /jobs; keeps each job's last HISTORY samples to draw rates and lag over time. */
  const store = {
    jobs: [],
    samples: new Map(),  // name -> [{t, in, out, lag, failed, dlq}]
    listeners: new Set(),
    error: null,
    loaded: false,
    timer: null,

    async poll() {
      clearTimeout(this.timer);
      try {
        const data = await api('GET', '/jobs');
        const now = Date.now();
        this.jobs = data.jobs || [];
        const seen = new Set();
        for (const job of this.jobs) {
          seen.add(job.name);
          const m = job.metrics || {};
          const list = this.samples.get(job.name) || [];
          list.push({ t: now, in: m.records_in || 0, out: m.records_out || 0, lag: m.lag || 0,
            failed: m.records_failed || 0, dlq: m.records_dlq || 0 });
          if (list.length > HISTORY) list.splice(0, list.length - HISTORY);
          this.samples.set(job.name, list);
        }
        for (const name of [...this.samples.keys()]) if (!seen.has(name)) this.samples.delete(name);
        this.error = null;
      } catch (exc) {
        this.error = exc;
      }
      this.loaded = true;
      for (const fn of this.listeners) fn();
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    },

    /** Per-interval values of a counter as a rate (records/s), or a gauge as is ('lag'). */
    series(name, field) {
      const list = this.samples.get(name) || [];
      if (field === 'lag') return list.map((s) => s.lag);
      const out = [];
      for (let i = 1; i < list.length; i++) {
        const dt = (list[i].t - list[i - 1].t) / 1000;
        // A counter going down means the job restarted: no negative rates.
        out.push(dt > 0 ? Math.max(0, (list[i][field] - list[i - 1][field]) / dt) : 0);
      }
      return out;
    },

    /** The rate over the last few samples (steadier than one interval). */
    rate(name, field, window) {
      const list = this.samples.get(name) || [];
      if (list.length < 2) return null;
      const a = list[Math.max(0, list.length - 1 - (window || 3))];
      const b = list[list.length - 1];
      const dt = (b.t - a.t) / 1000;
      return dt > 0 ? Math.max(0, (b[field] - a[field]) / dt) : null;
    },

    subscribe(fn) {
      this.listeners.add(fn);
      return () => this.listeners.delete(fn);
    },

    refresh() { return this.poll(); },
  };

  function stateBadge(state, extra) {
    return h('span', { class: 'badge state-' + String(state || '').toLowerCase() + (extra ? ' ' + extra : ''), text: state || '?' });
  }

  /** Pause / resume / stop for one job; ``after`` runs once the server answered. */
  function jobActions(job, after) {
    const name = job.name;
    const path = '/jobs/' + encodeURIComponent(name);
    const act = async (button, method, url, verb) => {
      button.disabled = true;
      try {
        const updated = await api(method, url);
        toast(`${name}: ${verb} (${updated && updated.state ? updated.state : 'done'})`, 'ok');
        if (after) after(updated, method === 'DELETE');
      } catch (exc) {
        toast(`${name}: ${exc.message}`, 'error');
        if (after) after(null, false);
      }
      button.disabled = false;
      store.refresh();
    };
    const buttons = [];
    if (job.state === 'RUNNING' || job.state === 'DEGRADED') {
      buttons.push(h('button', { class: 'btn btn-sm', type: 'button', dataset: { action: 'pause' }, title: 'Pause: keep offsets and state, stop reading',
        onclick: (e) => act(e.currentTarget, 'POST', path + '/pause', 'paused') }, '❚❚ Pause'));
    }
    if (job.state === 'PAUSED') {
      buttons.push(h('button', { class: 'btn btn-sm', type: 'button', dataset: { action: 'resume' }, title: 'Resume reading where it paused',
        onclick: (e) => act(e.currentTarget, 'POST', path + '/resume', 'resumed') }, '▶ Resume'));
    }
    if (!['STOPPED', 'FAILED', 'STOPPING'].includes(job.state)) {
      // Two clicks: a stop releases the job's consumer group slot and cannot be undone from here.
      const stop = h('button', { class: 'btn btn-sm btn-danger-ghost', type: 'button', dataset: { action: 'stop' }, title: 'Stop: drain, commit, release' }, '■ Stop');
      let armed = null;
      stop.addEventListener('click', () => {
        if (!armed) {
          stop.textContent = 'Confirm stop';
          stop.classList.add('btn-danger');
          stop.dataset.armed = '1';
          armed = setTimeout(() => { armed = null; stop.textContent = '■ Stop'; stop.classList.remove('btn-danger'); delete stop.dataset.armed; }, 4000);
          return;
        }
        clearTimeout(armed);
        act(stop, 'DELETE', path, 'stopped');
      });
      buttons.push(stop);
    }
    return h('div', { class: 'actions' }, buttons);
  }

  function lastReason(job) {
    const hist = job.history || [];
    return hist.length ? hist[hist.length - 1].reason : '';
  }

  function jobLink(name) {
    return h('a', { class: 'job-link', href: '#/jobs/' + encodeURIComponent(name), text: name });
  }

  // ------------------------------------------------------------------------------------ Jobs view

  class JobsView {
    constructor() {
      this.filter = { state: 'ALL', app: 'ALL', text: '' };
      this.rows = new Map();
      this.el = h('div', { class: 'view view-jobs' });
    }

    mount() {
      this.summary = h('div', { class: 'summary' });
      this.stateChips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Filter by state' });
      this.appSelect = h('select', { id: 'filter-app', class: 'select', 'aria-label': 'Filter by app', onchange: (e) => { this.filter.app = e.target.value; this.render(); } });
      this.search = h('input', { id: 'filter-text', class: 'input input-sm', type: 'search', placeholder: 'Filter by name…', 'aria-label': 'Filter by name',
        oninput: (e) => { this.filter.text = e.target.value.toLowerCase(); this.render(); } });
      this.tbody = h('tbody');
      this.empty = h('div', { class: 'empty', hidden: true });
      this.table = h('table', { class: 'grid jobs-table', id: 'jobs-table' },
        h('thead', {}, h('tr', {},
          h('th', { text: 'Job' }), h('th', { text: 'App' }), h('th', { text: 'State' }),
          h('th', { class: 'num', text: 'In / s' }), h('th', { class: 'num', text: 'Out / s' }), h('th', { class: 'num', text: 'Lag' }),
          h('th', { class: 'num', text: 'Failed' }), h('th', { class: 'num', text: 'DLQ' }), h('th', { class: 'num', text: 'Uptime' }),
          h('th', { class: 'actions-col', text: '' }))),
        this.tbody);
      append(this.el, [
        this.summary,
        h('div', { class: 'card' },
          h('div', { class: 'toolbar' }, this.stateChips, h('div', { class: 'toolbar-right' }, this.search, this.appSelect)),
          h('div', { class: 'table-wrap' }, this.table), this.empty),
      ]);
      this.unsubscribe = store.subscribe(() => this.render());
      if (store.loaded) this.render();
    }

    unmount() { if (this.unsubscribe) this.unsubscribe(); }

    visible(job) {
      const f = this.filter;
      if (f.state !== 'ALL' && job.state !== f.state) return false;
      if (f.app !== 'ALL' && (job.app || '') !== f.app) return false;
      return !(f.text && !job.name.toLowerCase().includes(f.text));
    }

    renderSummary(jobs) {
      const total = (field) => jobs.reduce((acc, j) => acc + (store.rate(j.name, field) || 0), 0);
      const lag = jobs.reduce((acc, j) => acc + ((j.metrics && j.metrics.lag) || 0), 0);
      const failed = jobs.reduce((acc, j) => acc + ((j.metrics && j.metrics.records_failed) || 0), 0);
      const dlq = jobs.reduce((acc, j) => acc + ((j.metrics && j.metrics.records_dlq) || 0), 0);
      const sumSeries = (field) => {
        const all = jobs.map((j) => store.series(j.name, field));
        const len = Math.max(0, ...all.map((s) => s.length));
        const out = [];
        for (let i = 0; i < len; i++) out.push(all.reduce((acc, s) => acc + (s[s.length - len + i] || 0), 0));
        return out;
      };
      const running = jobs.filter((j) => j.state === 'RUNNING').length;
      const trouble = jobs.filter((j) => j.state === 'FAILED' || j.state === 'DEGRADED').length;
      const stat = (label, value, sub, spark, cls) => h('div', { class: 'stat ' + (cls || '') },
        h('div', { class: 'stat-label', text: label }),
        h('div', { class: 'stat-row' }, h('span', { class: 'stat-value', text: value }), spark || null),
        sub ? h('div', { class: 'stat-sub', text: sub }) : null);
      fill(this.summary,
        stat('Jobs', String(jobs.length), `${running} running · ${jobs.filter((j) => j.state === 'PAUSED').length} paused`),
        stat('Needs attention', String(trouble), 'failed or degraded', null, trouble ? 'stat-bad' : ''),
        stat('Records in / s', fmtRate(total('in')), 'all jobs', sparkline(sumSeries('in'), { width: 120, height: 28, cls: 'spark-in' })),
        stat('Records out / s', fmtRate(total('out')), 'all jobs', sparkline(sumSeries('out'), { width: 120, height: 28, cls: 'spark-out' })),
        stat('Lag', fmtCount(lag), 'records waiting', sparkline(sumSeries('lag'), { width: 120, height: 28, cls: 'spark-lag' }), lag > 1000 ? 'stat-warn' : ''),
        stat('Failed · DLQ', fmtCount(failed) + ' · ' + fmtCount(dlq), 'records', null, failed ? 'stat-warn' : ''),
      );
    }

    renderFilters(jobs) {
      const counts = { ALL: jobs.length };
      for (const j of jobs) counts[j.state] = (counts[j.state] || 0) + 1;
      const chips = ['ALL', ...STATES.filter((s) => counts[s] || s === this.filter.state)];
      fill(this.stateChips, ...chips.map((s) => h('button', {
        type: 'button', class: 'chip' + (this.filter.state === s ? ' chip-on' : '') + (s !== 'ALL' ? ' chip-' + s.toLowerCase() : ''),
        dataset: { state: s }, 'aria-pressed': String(this.filter.state === s),
        onclick: () => { this.filter.state = s; this.render(); },
      }, s === 'ALL' ? 'All' : s.charAt(0) + s.slice(1).toLowerCase(), h('span', { class: 'chip-count', text: String(counts[s] || 0) }))));
      const apps = [...new Set(jobs.map((j) => j.app || ''))].sort();
      const options = ['ALL', ...apps];
      const current = [...this.appSelect.options].map((o) => o.value).join('\n');
      if (current !== options.join('\n')) {
        fill(this.appSelect, ...options.map((a) => h('option', { value: a, text: a === 'ALL' ? 'All apps' : (a || '(no app)') })));
        this.appSelect.value = options.includes(this.filter.app) ? this.filter.app : 'ALL';
      }
    }

    row(job) {
      let r = this.rows.get(job.name);
      if (!r) {
        r = {
          tr: h('tr', { dataset: { job: job.name } }),
          name: h('td', { class: 'cell-name' }),
          app: h('td', { class: 'cell-app' }),
          state: h('td', { class: 'cell-state' }),
          in: h('td', { class: 'num cell-spark' }),
          out: h('td', { class: 'num cell-spark' }),
          lag: h('td', { class: 'num cell-spark' }),
          failed: h('td', { class: 'num' }),
          dlq: h('td', { class: 'num' }),
          uptime: h('td', { class: 'num muted' }),
          actions: h('td', { class: 'actions-col' }),
          key: '',
        };
        append(r.tr, [r.name, r.app, r.state, r.in, r.out, r.lag, r.failed, r.dlq, r.uptime, r.actions]);
        r.name.append(jobLink(job.name), h('div', { class: 'sub mono', text: '→ ' + (job.sink || '') }));
        this.rows.set(job.name, r);
      }
      const m = job.metrics || {};
      r.app.textContent = job.app ? job.app + (job.version ? ' ' + job.version : '') : '—';
      fill(r.state, stateBadge(job.state, 'state'), h('div', { class: 'sub', text: lastReason(job) }));
      r.state.title = job.error || lastReason(job);
      const sparkCell = (cell, series, value, cls) => fill(cell,
        h('div', { class: 'spark-cell' }, sparkline(series, { cls }), h('span', { class: 'spark-value', text: value })));
      sparkCell(r.in, store.series(job.name, 'in'), fmtRate(store.rate(job.name, 'in')), 'spark-in');
      sparkCell(r.out, store.series(job.name, 'out'), fmtRate(store.rate(job.name, 'out')), 'spark-out');
      sparkCell(r.lag, store.series(job.name, 'lag'), fmtCount(m.lag || 0), 'spark-lag');
      r.failed.textContent = fmtCount(m.records_failed || 0);
      r.failed.classList.toggle('bad', (m.records_failed || 0) > 0);
      r.dlq.textContent = job.dlq_topic ? fmtCount(m.records_dlq || 0) : '—';
      r.dlq.classList.toggle('warn', (m.records_dlq || 0) > 0);
      const live = job.started_at && !['STOPPED', 'FAILED'].includes(job.state);
      r.uptime.textContent = live ? fmtDuration(Date.now() - new Date(job.started_at).getTime()) : '—';
      // Buttons are rebuilt only when the state changes, so a click never lands on a replaced node.
      if (r.key !== job.state) {
        r.key = job.state;
        fill(r.actions, jobActions(job));
      }
      return r.tr;
    }

    render() {
      const jobs = [...store.jobs].sort((a, b) => (a.app || '').localeCompare(b.app || '') || a.name.localeCompare(b.name));
      this.renderSummary(jobs);
      this.renderFilters(jobs);
      const shown = jobs.filter((j) => this.visible(j));
      const names = new Set(jobs.map((j) => j.name));
      for (const name of [...this.rows.keys()]) if (!names.has(name)) { this.rows.get(name).tr.remove(); this.rows.delete(name); }
      const trs = shown.map((j) => this.row(j));
      // Reorder only when needed (moving a row under the pointer would eat a click).
      const current = [...this.tbody.children];
      if (current.length !== trs.length || current.some((tr, i) => tr !== trs[i])) fill(this.tbody, ...trs);
      this.empty.hidden = shown.length > 0;
      if (store.error) {
        this.empty.hidden = false;
        fill(this.empty, h('strong', { text: 'Cannot list jobs: ' }), store.error.message);
      } else if (!jobs.length) {
        fill(this.empty, h('strong', { text: 'No jobs yet. ' }),
          'Deploy one from the ', h('a', { href: '#/sql', text: 'SQL box' }), ' (CREATE STREAM … AS SELECT, START JOB …), the shell or POST /apps.');
      } else {
        fill(this.empty, 'No job matches the filter.');
      }
    }
  }

  // ------------------------------------------------------------------------------------ streaming queries

  /** One POST /query: reads the NDJSON lines and hands each event to ``on``; stop() cancels it. */
  class QueryStream {
    constructor(sql, options, on) {
      this.sql = sql;
      this.options = options || {};
      this.on = on;
      this.id = null;
      this.rows = 0;
      this.finished = false;
      this.ctrl = new AbortController();
    }

    async start() {
      const body = { sql: this.sql };
      if (this.options.limit) body.limit = this.options.limit;
      if (this.options.properties) body.properties = this.options.properties;
      let resp;
      try {
        resp = await fetch('/query', {
          method: 'POST', signal: this.ctrl.signal, body: JSON.stringify(body),
          headers: session.headers({ 'Content-Type': 'application/json', Accept: 'application/x-ndjson' }),
        });
      } catch (exc) {
        return this.finish(this.ctrl.signal.aborted ? { done: { reason: 'cancelled', rows: this.rows } } : { error: { code: 'network', message: 'the server cannot be reached' } });
      }
      if (resp.status === 401) {
        const err = await resp.json().catch(() => ({}));
        session.expired(err.error && err.error.message);
        return this.finish({ error: err.error || { message: 'unauthorized' } });
      }
      if (!resp.ok) {
        // Found before the stream started: the body is the API's error shape (line/column for SQL).
        const err = await resp.json().catch(() => ({}));
        return this.finish({ error: err.error || { message: 'HTTP ' + resp.status } });
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let nl;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            if (line) this.dispatch(JSON.parse(line));
          }
        }
      } catch (exc) {
        if (!this.ctrl.signal.aborted) return this.finish({ error: { code: 'network', message: 'the stream was cut: ' + exc.message } });
      }
      return this.finish({ done: { reason: this.ctrl.signal.aborted ? 'cancelled' : 'end_of_input', rows: this.rows } });
    }

    dispatch(event) {
      if (event.header) {
        this.id = event.header.query_id;
        this.on.header(event.header);
      } else if (event.row !== undefined) {
        this.rows += 1;
        this.on.row(event);
      } else if (event.done || event.error) {
        this.finish(event);
      } else if (event.heartbeat && this.on.heartbeat) {
        this.on.heartbeat(event.heartbeat);
      }
    }

    finish(event) {
      if (this.finished) return;
      this.finished = true;
      if (event.error) this.on.error(event.error);
      else this.on.done(event.done);
    }

    /** Cancel: DELETE /queries/{id} (the server ends the stream with done: cancelled); abort as a fallback. */
    async stop() {
      if (this.finished) return;
      if (this.id) {
        try { await api('DELETE', '/queries/' + encodeURIComponent(this.id)); } catch (_) { /* gone already */ }
        setTimeout(() => this.ctrl.abort(), 2000);
      } else {
        this.ctrl.abort();
      }
    }

    /** Leave without waiting (navigation): the server releases a disconnected query within a second. */
    close() {
      if (this.finished) return;
      if (this.id) api('DELETE', '/queries/' + encodeURIComponent(this.id)).catch(() => {});
      this.finished = true;
      this.ctrl.abort();
    }
  }

  /** A result table fed by query events: appended rows, or, for changelog rows, updated in place by key. */
  class ResultTable {
    constructor(opts) {
      this.opts = Object.assign({ maxRows: MAX_ROWS, newestFirst: false, id: null }, opts || {});
      this.el = h('div', { class: 'result' });
      this.table = h('table', { class: 'grid result-table', id: this.opts.id });
      this.thead = h('thead');
      this.tbody = h('tbody');
      append(this.table, [this.thead, this.tbody]);
      this.el.appendChild(h('div', { class: 'table-wrap result-wrap' }, this.table));
      this.reset();
    }

    reset() {
      this.columns = [];
      this.live = false;
      this.keyed = new Map();
      this.pending = [];
      this.changes = 0;
      fill(this.thead);
      fill(this.tbody);
      this.table.classList.remove('live');
      this.el.hidden = true;  // no empty frame before a header arrives
    }

    setHeader(header) {
      this.columns = header.columns || [];
      this.el.hidden = false;
      this.live = header.emit === 'changes';
      this.table.classList.toggle('live', this.live);
      this.table.dataset.emit = header.emit || 'none';
      fill(this.thead, h('tr', {}, this.columns.map((c) =>
        h('th', { class: /INT|DOUBLE|DECIMAL|FLOAT|REAL|BIGINT/.test(c.type) ? 'num' : '', title: c.type },
          c.name, c.type && c.type !== 'ANY' ? h('span', { class: 'col-type', text: c.type }) : null))));
    }

    add(event) {
      this.pending.push(event);
      if (!this.scheduled) {
        this.scheduled = true;
        requestAnimationFrame(() => this.flush());
      }
    }

    cells(row) {
      return this.columns.map((c, i) => h('td', { class: typeof row[i] === 'number' ? 'num' : '', dataset: { col: c.name } }, fmtCell(row[i])));
    }

    flush() {
      this.scheduled = false;
      const events = this.pending;
      this.pending = [];
      for (const ev of events) {
        if (ev.key !== undefined && ev.op) this.applyChange(ev);
        else this.appendRow(ev.row);
      }
      if (this.onchange) this.onchange();
    }

    appendRow(row) {
      const tr = h('tr', { class: 'row-new' }, this.cells(row));
      if (this.opts.newestFirst) this.tbody.insertBefore(tr, this.tbody.firstChild);
      else this.tbody.appendChild(tr);
      while (this.tbody.children.length > this.opts.maxRows) {
        (this.opts.newestFirst ? this.tbody.lastChild : this.tbody.firstChild).remove();
      }
    }

    /** upsert: replace the key's row in place (changed cells flash); delete: remove it. */
    applyChange(ev) {
      this.changes += 1;
      const k = JSON.stringify(ev.key);
      const existing = this.keyed.get(k);
      if (ev.op === 'delete') {
        if (existing) { existing.remove(); this.keyed.delete(k); }
        return;
      }
      if (!existing) {
        const tr = h('tr', { class: 'row-new', dataset: { key: k } }, this.cells(ev.row));
        this.keyed.set(k, tr);
        this.tbody.appendChild(tr);
        return;
      }
      const tds = existing.children;
      ev.row.forEach((value, i) => {
        const td = tds[i];
        if (!td) return;
        if (td.textContent !== cellText(value)) {
          fill(td, fmtCell(value));
          td.classList.remove('flash');
          void td.offsetWidth;  // restart the flash animation
          td.classList.add('flash');
        }
      });
    }

    get size() { return this.live ? this.keyed.size : this.tbody.children.length; }
  }

  // ------------------------------------------------------------------------------------ plan tree

  /** GET /jobs/{name}'s plan → a tree {kind, text, children, state?, mode?}.
   *  The server sends the plan tree as plan_tree ({kind, node, text, changelog, state_kept, columns,
   *  children}: engine/plan.py), drawn as is, its changelog mode on each box; an older server's plan is
   *  EXPLAIN's text (one step a line: sources first, then operators, then Output / Emit / Limit / Warning). */
  function planTree(plan, job) {
    if (plan && typeof plan === 'object' && !Array.isArray(plan)) {
      const conv = (node) => ({
        kind: node.operator || node.op || node.kind || node.type || node.name || 'node',
        text: [node.detail || node.description || node.text || '', node.state_kept && node.state_kept !== 'none' ? 'state: ' + node.state_kept : ''].filter(Boolean).join(' — '),
        state: node.state || null,
        mode: node.changelog || node.changelog_mode || node.mode || null,
        children: (node.children || node.inputs || []).map(conv),
      });
      return { root: conv(plan), meta: [] };
    }
    const lines = Array.isArray(plan) ? plan : String(plan || '').split('\n').filter((l) => l.trim());
    const sources = [];
    const steps = [];
    const meta = [];
    for (const line of lines) {
      const m = line.match(/^([A-Za-z][A-Za-z ]*?)(?:\s+([^:\s]+))?:\s*(.*)$/);
      const kind = m ? m[1] : line;
      if (/^(Output|Emit|Limit|Warning)$/.test(kind)) meta.push({ kind, text: m[3] });
      else if (kind === 'Source') sources.push({ kind: 'Source', alias: m[2] || '', text: m[3], children: [] });
      else if (m && !m[2]) steps.push({ kind, text: m[3], children: [] });
      else if (m) steps.push({ kind, text: (m[2] ? m[2] + ': ' : '') + m[3], children: [] });
      else steps.push({ kind: line, text: '', children: [] });
    }
    const emit = meta.find((x) => x.kind === 'Emit');
    const mode = emit ? (emit.text === 'CHANGES' ? 'upsert changelog' : emit.text.toLowerCase() + ' (append)') : 'append';
    const sink = { kind: 'Sink', text: job && job.sink ? `topic '${job.sink}'` : 'the client', mode, children: [] };
    let node = sink;
    // The chain reads top-down in EXPLAIN; drawn bottom-up here: each step feeds the next.
    for (const step of steps.slice().reverse()) {
      node.children = [step];
      node = step;
    }
    node.children = sources;
    return { root: sink, meta };
  }

  const KIND_CLASS = { source: 'src', sink: 'sink', filter: 'filter', project: 'project', join: 'join', aggregate: 'agg',
    'group by': 'agg', aggregates: 'agg', window: 'window', watermark: 'window', having: 'filter', over: 'agg' };

  function planNode(node) {
    const kind = String(node.kind);
    const cls = KIND_CLASS[kind.toLowerCase()] || (kind.toLowerCase().includes('join') ? 'join' : (kind.toLowerCase().includes('aggregate') ? 'agg' : 'op'));
    const box = h('div', { class: 'plan-box plan-' + cls, dataset: { kind } },
      h('div', { class: 'plan-kind' }, kind + (node.alias ? ' ' + node.alias : ''),
        node.state ? stateBadge(node.state, 'badge-xs') : null,
        node.mode ? h('span', { class: 'plan-mode', text: node.mode }) : null),
      node.text ? h('div', { class: 'plan-text', text: node.text }) : null);
    const kids = node.children || [];
    if (!kids.length) return h('div', { class: 'plan-sub' }, box);
    const row = h('div', { class: 'plan-children' + (kids.length > 1 ? ' plan-fork' : '') }, kids.map(planNode));
    return h('div', { class: 'plan-sub' }, row, h('div', { class: 'plan-edge', 'aria-hidden': 'true' }), box);
  }

  function drawPlan(plan, job) {
    const { root, meta } = planTree(plan, job);
    return h('div', { class: 'plan' },
      h('div', { class: 'plan-tree', id: 'plan-tree' }, planNode(root)),
      meta.length ? h('dl', { class: 'plan-meta' }, meta.map((x) => [h('dt', { text: x.kind }), h('dd', { class: x.kind === 'Warning' ? 'warn' : 'mono', text: x.text })])) : null);
  }

  // ------------------------------------------------------------------------------------ Job view

  class JobView {
    constructor(name) {
      this.name = name;
      this.el = h('div', { class: 'view view-job' });
      this.job = null;
      this.sqlShown = null;
      this.outputOn = true;
    }

    mount() {
      this.head = h('div', { class: 'page-head' });
      this.banner = h('div', { class: 'banner banner-bad', hidden: true });
      this.stats = h('div', { class: 'summary summary-job' });
      this.sqlCard = h('div', { class: 'card-body' });
      this.planCard = h('div', { class: 'card-body' });
      this.codeCard = h('details', { class: 'card-details' }, h('summary', { text: 'Generated code' }));
      this.historyCard = h('div', { class: 'card-body' });
      this.partsCard = h('div', { class: 'card-body card-flush' });
      this.errorsCard = h('div', { class: 'card-body' });
      this.propsCard = h('div', { class: 'card-body card-flush' });
      this.outputMeta = h('span', { class: 'muted' });
      this.outputToggle = h('button', { class: 'btn btn-sm', type: 'button', id: 'output-toggle', onclick: () => this.toggleOutput() }, 'Pause output');
      this.output = new ResultTable({ newestFirst: true, maxRows: 100, id: 'output-table' });
      this.outputEmpty = h('div', { class: 'empty empty-sm', text: 'Waiting for new records on the sink topic…' });
      const card = (title, body, extra) => h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { text: title }), extra || null), body);
      append(this.el, [
        this.head, this.banner, this.stats,
        h('div', { class: 'columns' },
          h('div', { class: 'col' },
            card('SQL', this.sqlCard),
            card('Plan', this.planCard),
            h('section', { class: 'card' }, this.codeCard),
            card('Live output', h('div', {}, this.outputEmpty, this.output.el), h('div', { class: 'card-tools' }, this.outputMeta, this.outputToggle))),
          h('div', { class: 'col col-side' },
            card('State history', this.historyCard),
            card('Partitions', this.partsCard),
            card('Last record errors', this.errorsCard),
            card('Properties', this.propsCard))),
      ]);
      this.output.onchange = () => {
        this.outputEmpty.hidden = this.output.size > 0;
        this.outputMeta.textContent = this.stream ? `${fmtCount(this.stream.rows)} records since opened` : '';
      };
      this.unsubscribe = store.subscribe(() => this.renderStats());
      this.poll();
    }

    unmount() {
      this.gone = true;
      clearTimeout(this.timer);
      if (this.unsubscribe) this.unsubscribe();
      if (this.stream) this.stream.close();
    }

    /** After an action: a stopped job leaves the server's list, so its final view is kept as is. */
    acted(updated, stopped) {
      if (!stopped || !updated) { this.poll(); return; }
      this.final = true;
      this.job = updated;
      clearTimeout(this.timer);
      if (this.stream) { this.stream.close(); this.stream = null; }
      this.headKey = null;
      this.render();
    }

    async poll() {
      clearTimeout(this.timer);
      if (this.final) return;
      try {
        this.job = await api('GET', '/jobs/' + encodeURIComponent(this.name));
        this.error = null;
      } catch (exc) {
        this.error = exc;
      }
      if (this.gone) return;
      this.render();
      this.timer = setTimeout(() => this.poll(), DETAIL_POLL_MS);
    }

    render() {
      if (this.error && !this.job) {
        fill(this.head, h('div', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / ', this.name));
        this.banner.hidden = false;
        this.banner.textContent = this.error.status === 404 ? `No job named '${this.name}'.` : this.error.message;
        return;
      }
      const job = this.job;
      if (!job) return;
      const key = job.state + (this.final ? ':final' : '');
      if (this.headKey !== key) {
        this.headKey = key;
        fill(this.head,
          h('div', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / ', job.app ? job.app + ' / ' : ''),
          h('div', { class: 'page-title' },
            h('h1', { class: 'mono', text: job.name }), stateBadge(job.state, 'job-state badge-lg'),
            h('div', { class: 'page-actions' }, this.final ? null : jobActions(job, (updated, stopped) => this.acted(updated, stopped)))),
        );
      }
      const meta = [
        ['source', job.source], ['sink', job.sink], ['group', job.consumer_group],
        ['app', job.app ? job.app + (job.version ? ' ' + job.version : '') : null],
        ['created', fmtDateTime(job.created_at)], ['on failure', job.failure_strategy + (job.dlq_topic ? ' → ' + job.dlq_topic : '')],
      ].filter(([, v]) => v);
      const metaLine = h('div', { class: 'meta-line' }, meta.map(([k, v]) => h('span', {}, h('span', { class: 'muted', text: k + ' ' }), h('span', { class: 'mono', text: v }))));
      const oldMeta = this.head.querySelector('.meta-line');
      if (oldMeta) oldMeta.replaceWith(metaLine); else this.head.appendChild(metaLine);

      this.banner.hidden = !job.error && !this.final;
      this.banner.className = 'banner ' + (job.error ? 'banner-bad' : 'banner-info');
      if (job.error) fill(this.banner, h('strong', { text: 'Failed: ' }), job.error);
      else if (this.final) fill(this.banner, h('strong', { text: 'Stopped. ' }), 'The server no longer lists this job: these are its final figures.');

      if (this.sqlShown !== job.sql) {
        this.sqlShown = job.sql;
        fill(this.sqlCard, codeBlock(job.sql, 'sql'));
        fill(this.planCard, drawPlan(job.plan_tree || job.plan, job));
        fill(this.codeCard, h('summary', {}, 'Generated code', h('span', { class: 'muted', text: ` · ${(job.generated_code || '').split('\n').length} lines of Python` })),
          codeBlock(job.generated_code || '# no generated code', 'python'));
        this.startOutput();
      }
      this.renderStats();
      this.renderHistory(job);
      this.renderPartitions(job);
      this.renderErrors(job);
      this.renderProps(job);
    }

    renderStats() {
      const job = this.job;
      if (!job) return;
      const live = store.jobs.find((j) => j.name === job.name) || job;
      const m = live.metrics || {};
      const stat = (label, value, spark, cls, title) => h('div', { class: 'stat ' + (cls || ''), title: title || null },
        h('div', { class: 'stat-label', text: label }),
        h('div', { class: 'stat-row' }, h('span', { class: 'stat-value', text: value }), spark || null));
      const wm = m.watermark_ms ? new Date(m.watermark_ms).toLocaleTimeString([], { hour12: false }) : '–';
      fill(this.stats,
        stat('In / s', fmtRate(store.rate(job.name, 'in')), sparkline(store.series(job.name, 'in'), { width: 110, height: 28, cls: 'spark-in' })),
        stat('Out / s', fmtRate(store.rate(job.name, 'out')), sparkline(store.series(job.name, 'out'), { width: 110, height: 28, cls: 'spark-out' })),
        stat('Lag', fmtCount(m.lag || 0), sparkline(store.series(job.name, 'lag'), { width: 110, height: 28, cls: 'spark-lag' })),
        stat('Read', fmtCount(m.records_in), null, '', String(m.records_in)),
        stat('Written', fmtCount(m.records_out), null, '', String(m.records_out)),
        stat('Failed', fmtCount(m.records_failed || 0), null, m.records_failed ? 'stat-bad' : ''),
        stat('Late', fmtCount(m.records_late || 0), null, m.records_late ? 'stat-warn' : ''),
        stat('DLQ', job.dlq_topic ? fmtCount(m.records_dlq || 0) : '—', null, m.records_dlq ? 'stat-warn' : ''),
        stat('Watermark', wm, null, '', m.watermark_ms ? new Date(m.watermark_ms).toISOString() : 'no event time yet'),
        stat('State size', fmtBytes(m.state_bytes || 0)),
      );
    }

    renderHistory(job) {
      const hist = job.history || [];
      const items = hist.map((t, i) => {
        const next = hist[i + 1];
        const until = next ? new Date(next.at).getTime() : Date.now();
        return h('li', { class: 'tl-item' },
          h('span', { class: 'tl-dot state-' + t.state.toLowerCase() }),
          h('div', { class: 'tl-main' },
            h('div', {}, stateBadge(t.state, 'badge-xs'), h('span', { class: 'tl-reason', text: t.reason || '' })),
            h('div', { class: 'tl-when muted', title: fmtDateTime(t.at) }, fmtClock(t.at), ' · ', next ? 'for ' + fmtDuration(until - new Date(t.at).getTime()) : 'since ' + fmtDuration(until - new Date(t.at).getTime()))));
      }).reverse();
      fill(this.historyCard, h('ol', { class: 'timeline', id: 'history' }, items));
    }

    renderPartitions(job) {
      const parts = job.partitions || [];
      if (!parts.length) {
        fill(this.partsCard, h('div', { class: 'empty empty-sm', text: job.state === 'RUNNING' ? 'No partition assigned yet.' : 'No partitions (the job is not reading).' }));
        return;
      }
      const maxLag = Math.max(1, ...parts.map((p) => p.lag || 0));
      const bar = (lag) => {
        const fill = h('span', { class: 'lagbar-fill' });
        fill.style.width = Math.round(((lag || 0) / maxLag) * 100) + '%';
        return h('span', { class: 'lagbar' }, fill);
      };
      fill(this.partsCard, h('table', { class: 'grid grid-compact', id: 'partitions' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Topic' }), h('th', { class: 'num', text: 'P' }), h('th', { class: 'num', text: 'Offset' }),
          h('th', { class: 'num', text: 'End' }), h('th', { class: 'num', text: 'Lag' }), h('th', {}))),
        h('tbody', {}, parts.map((p) => h('tr', {},
          h('td', { class: 'mono', text: p.topic || job.source || '' }), h('td', { class: 'num', text: String(p.partition) }),
          h('td', { class: 'num', text: p.position === null || p.position === undefined ? '–' : String(p.position) }),
          h('td', { class: 'num', text: p.high_watermark === null || p.high_watermark === undefined ? '–' : String(p.high_watermark) }),
          h('td', { class: 'num' + (p.lag ? ' warn' : ''), text: String(p.lag || 0) }), h('td', { class: 'lagbar-cell' }, bar(p.lag)))))));
    }

    renderErrors(job) {
      const errors = job.last_errors || [];
      const reasons = Object.entries((job.metrics && job.metrics.failures_by_reason) || {});
      fill(this.errorsCard,
        reasons.length ? h('div', { class: 'reasons' }, reasons.map(([r, n]) => h('span', { class: 'chip chip-static' }, r, h('span', { class: 'chip-count', text: fmtCount(n) })))) : null,
        errors.length
          ? h('ol', { class: 'errors', id: 'last-errors' }, errors.slice().reverse().map((e) => h('li', { class: 'mono', text: e })))
          : h('div', { class: 'empty empty-sm', text: 'No record errors.' }));
    }

    renderProps(job) {
      const props = Object.entries(job.properties || {});
      fill(this.propsCard, props.length
        ? h('table', { class: 'grid grid-compact' }, h('tbody', {}, props.map(([k, v]) => h('tr', {}, h('td', { class: 'mono muted', text: k }), h('td', { class: 'mono', text: typeof v === 'object' ? JSON.stringify(v) : String(v) })))))
        : h('div', { class: 'empty empty-sm', text: 'No properties.' }));
    }

    startOutput() {
      if (this.stream) this.stream.close();
      this.stream = null;
      const job = this.job;
      if (!job || !job.sink || !this.outputOn) {
        this.outputMeta.textContent = job && !job.sink ? 'this job has no sink topic' : '';
        return;
      }
      this.output.reset();
      this.outputEmpty.hidden = false;
      this.outputEmpty.textContent = 'Waiting for new records on the sink topic…';
      // PRINT: every new record of the sink topic, whatever its shape (columns from the records).
      const stream = new QueryStream(`PRINT '${job.sink.replace(/'/g, "''")}';`, {}, {
        header: (hd) => this.output.setHeader(hd),
        row: (ev) => this.output.add({ row: ev.row }),
        done: () => { if (!this.gone && this.stream === stream) this.outputMeta.textContent = 'stopped'; },
        error: (err) => {
          if (this.gone || this.stream !== stream) return;
          this.outputEmpty.hidden = false;
          this.outputEmpty.textContent = 'Live output unavailable: ' + err.message;
        },
      });
      this.stream = stream;
      this.outputMeta.textContent = 'streaming ' + job.sink;
      stream.start();
    }

    toggleOutput() {
      this.outputOn = !this.outputOn;
      this.outputToggle.textContent = this.outputOn ? 'Pause output' : 'Resume output';
      if (this.outputOn) this.startOutput();
      else if (this.stream) { this.stream.close(); this.stream = null; this.outputMeta.textContent = 'paused'; }
    }
  }

  // ------------------------------------------------------------------------------------ SQL view

  const EXAMPLES = [
    ['Live rows', 'SELECT * FROM trades;'],
    ['Filter', "SELECT symbol, price, quantity FROM trades WHERE side = 'BUY' AND quantity >= 1000;"],
    ['Live table (EMIT CHANGES)', 'SELECT symbol, COUNT(*) AS trades, SUM(quantity) AS volume\nFROM trades\nGROUP BY symbol\nEMIT CHANGES;'],
    ['Print a topic', 'PRINT trades FROM BEGINNING LIMIT 20;'],
    ['Show jobs', 'SHOW JOBS;'],
    ['Explain', 'EXPLAIN SELECT symbol, AVG(price) AS avg_price FROM trades GROUP BY symbol EMIT CHANGES;'],
  ];

  /** What a statement is: SELECT/PRINT stream through POST /query, everything else runs on /statements. */
  function isQuery(sql) {
    const first = sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ').trim().split(/\s+/)[0] || '';
    return /^(SELECT|PRINT|WITH)$/i.test(first.replace(/[^A-Za-z]/g, ''));
  }

  /** 1-based line/column → offset in ``text``. */
  function offsetOf(text, line, column) {
    const lines = text.split('\n');
    let offset = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
    return Math.min(text.length, offset + Math.max(0, column - 1));
  }

  class SqlView {
    constructor() {
      this.el = h('div', { class: 'view view-sql' });
      this.built = false;
      this.stream = null;
      this.errorAt = null;
    }

    build() {
      this.built = true;
      this.input = h('textarea', { id: 'sql-input', class: 'editor-input', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off',
        'aria-label': 'SQL', placeholder: 'SELECT … FROM …;   Ctrl-Enter runs' });
      this.input.value = sessionStorage.getItem('velo.sql') || EXAMPLES[2][1];
      this.hl = h('pre', { class: 'editor-hl code', 'aria-hidden': 'true' });
      this.editor = h('div', { class: 'editor' }, this.hl, this.input);
      this.runBtn = h('button', { id: 'run', class: 'btn btn-primary', type: 'button', title: 'Run (Ctrl-Enter)', onclick: () => this.run() }, '▶ Run');
      this.stopBtn = h('button', { id: 'stop', class: 'btn', type: 'button', disabled: true, title: 'Stop (Esc)', onclick: () => this.stop() }, '■ Stop');
      this.limit = h('input', { id: 'limit', class: 'input input-sm input-num', type: 'number', min: '1', placeholder: 'no limit', 'aria-label': 'Row limit' });
      this.fromStart = h('input', { id: 'from-beginning', type: 'checkbox' });
      this.examples = h('select', { class: 'select', 'aria-label': 'Examples', onchange: (e) => {
        const ex = EXAMPLES[Number(e.target.value)];
        if (ex) { this.input.value = ex[1]; this.sync(); this.input.focus(); }
        e.target.value = '';
      } }, h('option', { value: '', text: 'Examples…' }), EXAMPLES.map(([label], i) => h('option', { value: String(i), text: label })));
      this.status = h('div', { class: 'run-status', id: 'run-status' });
      this.errorBox = h('div', { class: 'sql-error', id: 'sql-error', role: 'alert', hidden: true });
      this.result = new ResultTable({ id: 'result' });
      this.messages = h('div', { class: 'messages' });
      this.idle = h('div', { class: 'empty', id: 'result-idle', text: 'Rows appear here as they stream in. An EMIT CHANGES query is a table updated in place by key.' });
      append(this.el, [
        h('section', { class: 'card' },
          h('div', { class: 'card-head' }, h('h2', { text: 'SQL' }), h('span', { class: 'muted hint', text: 'Ctrl-Enter runs · Esc stops · SELECT and PRINT stream rows; other statements run once' }),
            h('div', { class: 'card-tools' }, this.examples)),
          this.editor,
          h('div', { class: 'toolbar toolbar-run' }, this.runBtn, this.stopBtn,
            h('label', { class: 'field' }, 'Limit', this.limit),
            h('label', { class: 'field' }, this.fromStart, 'From beginning'),
            this.status),
          this.errorBox),
        h('section', { class: 'card card-result' }, this.idle, this.messages, this.result.el),
      ]);
      this.input.addEventListener('input', () => { this.errorAt = null; this.sync(); });
      this.input.addEventListener('scroll', () => { this.hl.scrollTop = this.input.scrollTop; this.hl.scrollLeft = this.input.scrollLeft; });
      this.input.addEventListener('keydown', (e) => this.key(e));
      this.result.onchange = () => this.renderStatus();
      this.sync();
    }

    mount(params) {
      if (!this.built) this.build();
      const q = params && params.get('q');
      if (q) { this.input.value = q; this.errorAt = null; this.sync(); }
      this.ticker = setInterval(() => this.renderStatus(), 500);
      setTimeout(() => this.input.focus(), 0);
    }

    // The running query goes on while another page is shown (like a shell in another tab).
    unmount() { clearInterval(this.ticker); }

    key(e) {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.run(); }
      else if (e.key === 'Escape') { e.preventDefault(); this.stop(); }
      else if (e.key === 'Tab' && !e.shiftKey) {
        e.preventDefault();
        const { selectionStart: s, selectionEnd: t, value } = this.input;
        this.input.value = value.slice(0, s) + '  ' + value.slice(t);
        this.input.selectionStart = this.input.selectionEnd = s + 2;
        this.sync();
      }
    }

    sync() {
      const text = this.input.value;
      sessionStorage.setItem('velo.sql', text);
      // A trailing newline needs a character after it for the overlay to keep the same height.
      this.hl.innerHTML = highlightSql(text, this.errorAt) + '\n ';
      const lines = Math.min(18, Math.max(4, text.split('\n').length + 1));
      this.editor.style.height = (lines * 20 + 20) + 'px';
    }

    running(on) {
      this.runBtn.disabled = false;
      this.stopBtn.disabled = !on;
      this.el.classList.toggle('is-running', on);
    }

    showError(err, sql) {
      this.errorBox.hidden = false;
      const parts = [h('div', { class: 'sql-error-head' }, h('span', { class: 'badge badge-err', text: err.code || 'error' }),
        err.line ? h('span', { class: 'muted', text: ` line ${err.line}, column ${err.column || 1}` + (err.statement ? `, statement ${err.statement}` : '') + ' · ' }) : ' ',
        h('span', { class: 'sql-error-msg', text: err.message || 'the query failed' }))];
      if (err.line && sql !== undefined) {
        const lines = sql.split('\n');
        const text = lines[err.line - 1];
        if (text !== undefined) {
          const gutter = String(err.line).padStart(3) + ' │ ';
          const caret = ' '.repeat(gutter.length + Math.max(0, (err.column || 1) - 1)) + '^';
          parts.push(h('pre', { class: 'caret-block', id: 'error-caret' }, gutter + text + '\n', h('span', { class: 'caret', text: caret })));
        }
        this.errorAt = offsetOf(sql, err.line, err.column || 1);
        this.sync();
      }
      const hints = [];
      if (err.expected && err.expected.length) hints.push('expected: ' + err.expected.slice(0, 12).join(', '));
      if (err.suggestions && err.suggestions.length) hints.push('did you mean: ' + err.suggestions.slice(0, 6).join(', '));
      // POST /statements stops at the first failure and the ones before it stay applied (a syntax
      // error anywhere stops the script before anything runs).
      if (err.statement > 1 && err.code !== 'sql_syntax') {
        hints.push(err.statement > 2 ? `statements 1–${err.statement - 1} ran before it and stay applied` : 'statement 1 ran before it and stays applied');
      }
      if (hints.length) parts.push(h('div', { class: 'muted sql-error-hint', text: hints.join(' · ') }));
      fill(this.errorBox, ...parts);
    }

    clearError() {
      this.errorBox.hidden = true;
      fill(this.errorBox);
      if (this.errorAt !== null) { this.errorAt = null; this.sync(); }
    }

    renderStatus() {
      const st = this.state;
      if (!st) { fill(this.status); return; }
      const elapsed = ((st.ended || Date.now()) - st.started) / 1000;
      const rows = this.stream ? this.stream.rows : 0;
      const bits = [];
      if (st.phase === 'running') bits.push(h('span', { class: 'pulse' }), h('strong', { text: st.id ? 'streaming' : 'starting' }));
      else bits.push(h('strong', { text: st.phase }));
      if (st.id) bits.push(h('span', { class: 'mono muted', text: st.id }));
      if (st.kind === 'query') {
        bits.push(h('span', { id: 'row-count', text: this.result.live ? `${this.result.size} keys · ${fmtCount(this.result.changes)} changes` : `${fmtCount(rows)} rows` }));
        if (elapsed > 0.5 && rows) bits.push(h('span', { class: 'muted', text: fmtRate(rows / elapsed) + ' rows/s' }));
      }
      bits.push(h('span', { class: 'muted', text: elapsed.toFixed(1) + 's' }));
      fill(this.status, ...bits);
    }

    async run() {
      const sql = this.input.value.trim();
      if (!sql) return;
      this.idle.hidden = true;
      if (this.stream) { this.stream.close(); this.stream = null; }
      this.clearError();
      fill(this.messages);
      this.result.reset();
      if (!isQuery(sql)) return this.runStatements(sql);
      const options = {};
      const limit = parseInt(this.limit.value, 10);
      if (limit > 0) options.limit = limit;
      if (this.fromStart.checked) options.properties = { 'auto.offset.reset': 'earliest' };
      const state = { kind: 'query', phase: 'running', started: Date.now(), id: null };
      this.state = state;
      const stream = new QueryStream(sql, options, {
        header: (hd) => { state.id = hd.query_id; this.result.setHeader(hd); this.renderStatus(); },
        row: (ev) => this.result.add(ev),
        heartbeat: () => this.renderStatus(),
        done: (done) => {
          if (this.stream !== stream) return;
          state.phase = 'done · ' + ((done && done.reason) || 'end') ; state.ended = Date.now();
          this.running(false); this.renderStatus();
        },
        error: (err) => {
          if (this.stream !== stream) return;
          state.phase = 'failed'; state.ended = Date.now();
          this.running(false); this.showError(err, this.input.value.trim() === sql ? this.input.value : sql); this.renderStatus();
        },
      });
      this.stream = stream;
      this.running(true);
      this.renderStatus();
      await stream.start();
    }

    async runStatements(sql) {
      const state = { kind: 'statements', phase: 'running', started: Date.now(), id: null };
      this.state = state;
      this.running(true);
      this.renderStatus();
      try {
        const data = await api('POST', '/statements', { sql: /;\s*$/.test(sql) ? sql : sql + ';' });
        for (const r of data.results || []) {
          const text = r.message || '';
          // EXPLAIN and friends answer several lines: keep them as written.
          this.messages.appendChild(h('div', { class: 'message' }, h('span', { class: 'badge badge-xs', text: r.type }), ' ',
            text.includes('\n') ? h('pre', { class: 'code message-text', text }) : text,
            r.job ? [' ', jobLink(r.job.name)] : null));
          if (r.type === 'rows' && r.columns) {
            const table = new ResultTable({});
            table.setHeader({ columns: r.columns.map((c) => (typeof c === 'string' ? { name: c, type: '' } : c)), emit: 'none' });
            (r.rows || []).forEach((row) => table.appendRow(row));
            this.messages.appendChild(table.el);
          }
        }
        state.phase = 'done';
        store.refresh();
      } catch (exc) {
        state.phase = 'failed';
        this.showError(exc.error || { message: exc.message }, this.input.value);
      }
      state.ended = Date.now();
      this.running(false);
      this.renderStatus();
    }

    async stop() {
      if (!this.stream || this.stream.finished) return;
      this.stopBtn.disabled = true;
      await this.stream.stop();
    }
  }

  // ------------------------------------------------------------------------------------ Catalog view

  class CatalogView {
    constructor() {
      this.el = h('div', { class: 'view view-catalog' });
      this.text = '';
    }

    mount() {
      this.search = h('input', { class: 'input input-sm', type: 'search', placeholder: 'Filter topics, streams, functions…', 'aria-label': 'Filter',
        oninput: (e) => { this.text = e.target.value.toLowerCase(); this.render(); } });
      this.topicsBody = h('div', { class: 'card-body card-flush' });
      this.relBody = h('div', { class: 'card-body relations' });
      this.fnBody = h('div', { class: 'card-body card-flush' });
      this.counts = {};
      const card = (title, id, body) => h('section', { class: 'card', id }, h('div', { class: 'card-head' }, h('h2', { text: title }), h('span', { class: 'muted count', dataset: { count: id } })), body);
      append(this.el, [
        h('div', { class: 'page-head' }, h('div', { class: 'page-title' }, h('h1', { text: 'Topics & catalog' }), h('div', { class: 'page-actions' }, this.search))),
        h('div', { class: 'columns columns-even' },
          h('div', { class: 'col' }, card('Topics', 'topics', this.topicsBody)),
          h('div', { class: 'col' }, card('Streams & tables', 'relations', this.relBody))),
        card('Functions', 'functions', this.fnBody),
      ]);
      this.load();
    }

    unmount() { this.gone = true; }

    async load() {
      const [topics, catalog] = await Promise.all([
        api('GET', '/topics').catch((exc) => ({ error: exc })),
        api('GET', '/catalog').catch((exc) => ({ error: exc })),
      ]);
      if (this.gone) return;
      this.topics = topics;
      this.catalog = catalog;
      this.render();
    }

    match(...texts) { return !this.text || texts.some((t) => String(t || '').toLowerCase().includes(this.text)); }

    setCount(id, n) { const el = this.el.querySelector(`[data-count="${id}"]`); if (el) el.textContent = String(n); }

    render() {
      const t = this.topics || {};
      if (t.error) fill(this.topicsBody, h('div', { class: 'empty', text: 'Cannot list topics: ' + t.error.message }));
      else {
        const list = (t.topics || []).filter((x) => this.match(x.name)).sort((a, b) => a.name.localeCompare(b.name));
        const max = Math.max(1, ...list.map((x) => x.end_offset || 0));
        this.setCount('topics', list.length);
        fill(this.topicsBody, h('table', { class: 'grid', id: 'topics-table' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Topic' }), h('th', { class: 'num', text: 'Partitions' }), h('th', { class: 'num', text: 'Records' }), h('th', { text: 'End offsets by partition' }), h('th', {}))),
          h('tbody', {}, list.map((x) => {
            const fill = h('span', { class: 'sizebar-fill' });
            fill.style.width = Math.max(1, Math.round(((x.end_offset || 0) / max) * 100)) + '%';
            return h('tr', { dataset: { topic: x.name } },
              h('td', { class: 'mono' }, x.name, h('span', { class: 'sizebar' }, fill)),
              h('td', { class: 'num', text: String((x.partitions || []).length) }),
              h('td', { class: 'num', text: fmtCount(x.end_offset || 0), title: String(x.end_offset || 0) }),
              h('td', { class: 'mono sub-cell', text: (x.partitions || []).map((p) => `${p.partition}:${p.end_offset === null ? '–' : p.end_offset}`).join('  ') }),
              h('td', { class: 'actions-col' }, h('a', { class: 'btn btn-sm btn-ghost', href: '#/sql?q=' + encodeURIComponent(`PRINT '${x.name.replace(/'/g, "''")}' FROM BEGINNING LIMIT 50;`), text: 'Print' })));
          }))));
      }
      const c = this.catalog || {};
      if (c.error) {
        fill(this.relBody, h('div', { class: 'empty', text: 'Cannot read the catalog: ' + c.error.message }));
        fill(this.fnBody);
        return;
      }
      const rels = [...(c.streams || []), ...(c.tables || [])].filter((r) => this.match(r.name, r.topic, ...(r.columns || []).map((col) => col.name)))
        .sort((a, b) => a.name.localeCompare(b.name));
      this.setCount('relations', rels.length);
      fill(this.relBody, ...(rels.length ? rels.map((r) => h('div', { class: 'relation', dataset: { relation: r.name } },
        h('div', { class: 'relation-head' },
          h('span', { class: 'badge badge-xs badge-' + (r.kind || 'stream'), text: (r.kind || 'stream').toUpperCase() }),
          h('strong', { class: 'mono', text: r.name }),
          h('span', { class: 'muted mono', text: r.topic && r.topic !== r.name ? ' ← ' + r.topic : '' }),
          r.job ? h('span', { class: 'muted' }, ' · by ', jobLink(r.job)) : null,
          h('span', { class: 'relation-tags muted', text: [r.format, r.key ? 'key ' + r.key : null, r.timestamp ? 'time ' + r.timestamp : null].filter(Boolean).join(' · ') }),
          h('a', { class: 'btn btn-sm btn-ghost', href: '#/sql?q=' + encodeURIComponent(`SELECT * FROM ${r.name};`), text: 'Query' })),
        h('div', { class: 'columns-list' }, (r.columns || []).map((col) => h('span', { class: 'colpill' }, h('span', { class: 'mono', text: col.name }), h('span', { class: 'col-type', text: col.type }))))))
        : [h('div', { class: 'empty empty-sm', text: 'No declared streams or tables.' })]));
      const fns = (c.functions || []).filter((f) => this.match(f.name, f.description, f.signature));
      this.setCount('functions', fns.length);
      fill(this.fnBody, h('table', { class: 'grid', id: 'functions-table' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Function' }), h('th', { text: 'Signature' }), h('th', { text: 'Returns' }), h('th', { text: 'Description' }), h('th', { text: 'Example' }))),
        h('tbody', {}, fns.map((f) => h('tr', {},
          h('td', { class: 'mono strong', text: f.name }), h('td', { class: 'mono', text: f.signature }), h('td', { class: 'mono muted', text: f.return_type }),
          h('td', { text: f.description }), h('td', { class: 'mono muted', text: f.example || '' }))))));
    }
  }

  // ------------------------------------------------------------------------------------ header, router

  async function serverStatus() {
    const el = document.getElementById('server-status');
    try {
      const resp = await fetch('/health', { cache: 'no-store' });
      const health = await resp.json();
      const up = fmtDuration(health.uptime_s * 1000);
      fill(el,
        h('span', { class: 'dot ' + (health.kafka.reachable ? 'dot-ok' : 'dot-bad'), title: health.kafka.reachable ? 'Kafka reachable' : 'Kafka unreachable' }),
        h('span', { class: 'mono', text: 'Kafka ' + health.kafka.brokers }),
        h('span', { class: 'sep', text: '·' }), 'velo ' + health.version,
        h('span', { class: 'sep', text: '·' }), 'up ' + up);
      el.title = health.status === 'ok' ? 'server healthy' : 'server degraded: Kafka unreachable';
    } catch (_) {
      fill(el, h('span', { class: 'dot dot-bad' }), 'server unreachable');
    }
    setTimeout(serverStatus, 5000);
  }

  const sqlView = new SqlView();
  let current = null;

  function route() {
    const hash = location.hash || '#/jobs';
    const [path, query] = hash.slice(1).split('?');
    const params = new URLSearchParams(query || '');
    const parts = path.split('/').filter(Boolean);
    let view;
    let section = parts[0] || 'jobs';
    if (section === 'jobs' && parts[1]) view = new JobView(decodeURIComponent(parts.slice(1).join('/')));
    else if (section === 'sql') view = sqlView;
    else if (section === 'catalog') view = new CatalogView();
    else { section = 'jobs'; view = new JobsView(); }
    if (current) current.unmount();
    current = view;
    const app = document.getElementById('app');
    fill(app, view.el);
    if (view !== sqlView) fill(view.el);
    view.mount(params);
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === section);
    document.title = (section === 'jobs' && parts[1] ? decodeURIComponent(parts[1]) : { jobs: 'Jobs', sql: 'SQL', catalog: 'Topics & catalog' }[section]) + ' · Velo';
  }

  function start() {
    document.getElementById('nav').hidden = false;
    document.getElementById('logout').hidden = !session.auth;
    document.body.classList.add('ready');
    window.addEventListener('hashchange', route);
    serverStatus();
    store.poll();
    route();
  }

  start();
})();
