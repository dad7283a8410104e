// cutover's dashboard: reads the admin API every two seconds with the admin token kept
// in this tab's session storage (never in a URL, a cookie or the page), and draws each
// route's rollout, evidence and verdicts. Operator actions go through the same admin
// endpoints as the CLI, naming the actor `dashboard`.
'use strict';

const TOKEN_KEY = 'cutover.adminToken';
const REFRESH_MS = 2000;
const KEEP_POINTS = 3600;
const ARMS = ['candidate', 'control', 'primary'];
const COLORS = { primary: '#4c78a8', candidate: '#f58518', weight: '#54a24b' };
const EVENT_COLORS = { rollback: '#d62728', pause: '#ff9f1c', plan_changed: '#9467bd', advance: '#2ca02c', start: '#1f77b4', promote: '#2ca02c' };

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  since: null,
  series: new Map(),   // route → columns, as /admin/dashboard sends them
  events: new Map(),   // route → { newest, list }
  routes: new Map(),   // route → its section's elements and charts
  configured: null,
  timer: null,
  busy: false,
};

class Unauthorized extends Error {}

const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function num(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return Number(value).toLocaleString('en-US', { maximumFractionDigits: digits });
}

function int(value) {
  return value === null || value === undefined ? '—' : Math.round(value).toLocaleString('en-US');
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (method !== 'GET') headers['x-cutover-actor'] = 'dashboard';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Unauthorized();
  const json = await response.json().catch(() => null);
  if (!response.ok) throw new Error(json?.error?.message ?? `HTTP ${response.status}`);
  return json;
}

// ── sign-in ────────────────────────────────────────────────────────────────────────

function showLogin(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.timer);
  $('login-view').hidden = false;
  $('routes').hidden = true;
  $('global').hidden = true;
  $('live').hidden = true;
  $('sign-out').hidden = true;
  $('login-error').hidden = !message;
  $('login-error').textContent = message ?? '';
  $('token').value = '';
  $('token').focus();
}

function showApp() {
  $('login-view').hidden = true;
  $('routes').hidden = false;
  $('global').hidden = false;
  $('sign-out').hidden = false;
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  state.token = $('token').value.trim();
  $('token').value = '';
  try {
    await api('GET', '/admin/rollouts');
  } catch (failure) {
    showLogin(failure instanceof Unauthorized ? 'That token was refused.' : `The gateway did not answer: ${failure.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  showApp();
  refresh();
});

$('sign-out').addEventListener('click', () => showLogin());

// ── refresh ────────────────────────────────────────────────────────────────────────

async function refresh() {
  clearTimeout(state.timer);
  if (!state.token) return;
  try {
    const since = state.since === null ? '' : `?since=${state.since}`;
    const [views, dashboard, upstreams, alerts] = await Promise.all([
      api('GET', '/admin/rollouts'),
      api('GET', `/admin/dashboard${since}`),
      api('GET', '/admin/upstreams'),
      api('GET', '/admin/alerts'),
    ]);
    state.configured = dashboard.configured;
    const cost = dashboard.configured.prices ? await api('GET', '/admin/cost?since=1h') : null;
    appendSeries(dashboard.series);
    for (const view of views) {
      await refreshEvents(view);
      renderRoute(view, { upstreams, cost });
    }
    renderAlerts(alerts.alerts);
    $('problem').hidden = true;
    $('live').hidden = false;
    $('updated').textContent = clock(dashboard.now);
  } catch (failure) {
    if (failure instanceof Unauthorized) {
      showLogin('The token was refused (changed on the gateway?).');
      return;
    }
    $('problem').hidden = false;
    $('problem').textContent = `cannot refresh: ${failure.message}`;
  }
  state.timer = setTimeout(refresh, REFRESH_MS);
}

function appendSeries(routes) {
  for (const incoming of routes) {
    const kept = state.series.get(incoming.route);
    if (!kept) {
      state.series.set(incoming.route, incoming);
    } else {
      const append = (into, from) => {
        for (const key of Object.keys(from)) {
          if (Array.isArray(from[key])) {
            into[key].push(...from[key]);
            if (into[key].length > KEEP_POINTS) into[key].splice(0, into[key].length - KEEP_POINTS);
          } else if (typeof from[key] === 'object' && from[key] !== null) {
            append(into[key], from[key]);
          }
        }
      };
      append(kept, { t: incoming.t, weight: incoming.weight, step: incoming.step, arms: incoming.arms });
    }
    const t = incoming.t;
    if (t.length > 0) {
      const newest = Math.round(t[t.length - 1] * 1000);
      state.since = state.since === null ? newest : Math.max(state.since, newest);
    }
  }
}

async function refreshEvents(view) {
  const newest = view.events?.[0]?.id ?? 0;
  const known = state.events.get(view.route);
  if (known && known.newest === newest) return;
  const list = await api('GET', `/admin/events?route=${encodeURIComponent(view.route)}&limit=200`);
  state.events.set(view.route, { newest, list });
}

// ── one route ──────────────────────────────────────────────────────────────────────

function routeSection(route) {
  let section = state.routes.get(route);
  if (section) return section;
  const root = document.createElement('section');
  root.className = 'route';
  root.dataset.route = route;
  root.innerHTML = `
    <h2>route <span class="name"></span> <span class="pair"></span></h2>
    <div class="grid top">
      <div class="card rollout"><h3>Rollout</h3><div class="status"></div><div class="plan"></div><div class="waiting"></div></div>
      <div class="card actions"><h3>Actions</h3>
        <div class="buttons">
          <button type="button" data-action="pause">Pause</button>
          <button type="button" data-action="resume">Resume</button>
          <button type="button" data-action="promote">Promote</button>
          <button type="button" data-action="abort" class="danger">Abort</button>
        </div>
        <div class="set-weight"><input type="number" min="0" max="100" step="0.01" placeholder="weight %" aria-label="weight in percent">
          <button type="button" data-action="weight">Set weight</button></div>
        <p class="hint">Each asks for confirmation; recorded in the events as <code>dashboard</code>.</p>
      </div>
    </div>
    <div class="grid charts">
      <div class="card"><h3>Weight (%) and events</h3><div class="chart" data-chart="weight"></div></div>
      <div class="card"><h3>Requests per second</h3><div class="chart" data-chart="rate"></div></div>
      <div class="card"><h3>Latency (ms): p50 solid, p95 dashed</h3><div class="chart" data-chart="latency"></div></div>
      <div class="card"><h3>Upstream error rate (%)</h3><div class="chart" data-chart="errors"></div></div>
    </div>
    <div class="card"><h3>Arms</h3><div class="arms"></div></div>
    <div class="card"><h3>Criteria of this step</h3><div class="criteria"></div></div>
    <div class="grid panels">
      <div class="card"><h3>Shadow agreement</h3><div class="shadow-agreement"></div></div>
      <div class="card"><h3>Cost</h3><div class="cost"></div></div>
      <div class="card"><h3>Upstream health</h3><div class="health"></div></div>
    </div>
    <div class="card"><h3>Events</h3><div class="events"></div></div>`;
  $('routes').appendChild(root);
  root.querySelector('.name').textContent = route;
  for (const button of root.querySelectorAll('[data-action]')) {
    button.dataset.route = route;
    button.addEventListener('click', () => act(route, button.dataset.action, root));
  }
  section = { root, charts: {}, find: (selector) => root.querySelector(selector) };
  state.routes.set(route, section);
  return section;
}

function renderRoute(view, extra) {
  const section = routeSection(view.route);
  section.find('.pair').textContent = `${view.primary} → ${view.candidate ?? '(no candidate)'}`;
  section.find('.status').innerHTML = statusHtml(view);
  section.find('.plan').innerHTML = planHtml(view);
  section.find('.waiting').innerHTML = waitingHtml(view);
  section.find('.arms').innerHTML = armsHtml(view);
  section.find('.criteria').innerHTML = criteriaHtml(view);
  section.find('.shadow-agreement').innerHTML = shadowAgreementHtml(view);
  section.find('.cost').innerHTML = costHtml(view, extra.cost);
  section.find('.health').innerHTML = healthHtml(view, extra.upstreams);
  section.find('.events').innerHTML = eventsHtml(state.events.get(view.route)?.list ?? []);
  drawCharts(section, view);
}

function statusHtml(view) {
  const step = view.steps > 0 ? `${view.step + 1}/${view.steps}` : 'manual';
  const failures = view.failure_limit === null ? '' : `<div><span class="label">failed checks</span> ${view.consecutive_failures}/${view.failure_limit}</div>`;
  return `
    <div class="facts">
      <div><span class="label">phase</span> <span class="phase phase-${esc(view.phase)}" data-field="phase">${esc(view.phase)}</span>${view.dry_run ? ' <span class="tag">dry-run</span>' : ''}</div>
      <div><span class="label">step</span> <span data-field="step">${step}</span></div>
      <div><span class="label">weight</span> <span data-field="weight">${num(view.weight)}</span>%</div>
      <div><span class="label">shadow</span> ${num(view.shadow * 100)}%</div>
      <div><span class="label">in step</span> ${duration(view.seconds_in_step)} <span class="muted">(running ${duration(view.active_seconds_in_step)})</span></div>
      ${failures}
    </div>`;
}

function planHtml(view) {
  if (!view.plan || view.plan.length === 0) return '<p class="muted">No rollout plan: the weight is set by hand.</p>';
  const finished = view.phase === 'promoted';
  const cells = view.plan.map((step, index) => {
    const status = finished || index < view.step ? 'done' : index === view.step ? 'current' : 'todo';
    const label = step.weight === 0 && step.shadow > 0 ? `shadow ${num(step.shadow * 100)}%` : `${num(step.weight)}%`;
    const longest = step.max_duration_seconds === null ? 'held until decided' : `undecided after ${duration(step.max_duration_seconds)}`;
    const title = [`step ${index + 1}: weight ${num(step.weight)}%`, `at least ${duration(step.min_duration_seconds)}`, `${int(step.min_requests)} requests`, longest]
      .concat(step.criteria.map((criterion) => criterion.summary)).join('\n');
    return `<li class="${status}" title="${esc(title)}">${esc(label)}</li>`;
  });
  return `<ol class="steps">${cells.join('')}</ol>`;
}

function waitingHtml(view) {
  const evaluation = view.evaluation;
  if (['promoted', 'rolled_back'].includes(view.phase)) return `<p class="muted">The rollout is over: ${esc(view.phase.replace('_', ' '))}.</p>`;
  if (view.phase === 'paused' && view.undecided) {
    return `<p class="undecided"><strong>Undecided:</strong> the step reached its max duration without a verdict and waits for an operator (resume, promote or abort).</p>
    <p class="muted">${esc(view.undecided.reason ?? '')}</p>`;
  }
  if (view.phase === 'paused') return '<p><strong>Paused:</strong> waits for an operator (resume, promote or abort).</p>';
  if (!evaluation) return '<p class="muted">Waiting for the first analysis of this step.</p>';
  const missing = (evaluation.gates ?? []).filter((gate) => !gate.met)
    .map((gate) => `${esc(gate.gate.replaceAll('_', ' '))} ${int(gate.have)}/${int(gate.need)} (${gate.eta_seconds === null ? 'ETA unknown at the current rate' : `ETA ~${duration(gate.eta_seconds)}`})`);
  const open = (evaluation.checks ?? []).filter((check) => check.verdict === 'inconclusive').map((check) => esc(check.criterion));
  const parts = [];
  if (evaluation.held) parts.push(esc(evaluation.held));
  if (missing.length) parts.push(`still missing: ${missing.join(', ')}`);
  if (open.length) parts.push(`criteria not decided yet: ${open.join(', ')}`);
  const verdict = `<span class="verdict verdict-${esc(evaluation.verdict)}">${esc(evaluation.verdict)}</span>`;
  return `<p><span class="label">last check</span> ${verdict} <span class="muted">(control: ${esc(evaluation.control.replaceAll('_', ' '))})</span></p>
    <p><span class="label">waiting for</span> ${parts.length ? parts.join('; ') : 'the next interval'}</p>`;
}

function latest(column) {
  for (let index = (column?.length ?? 0) - 1; index >= 0; index -= 1) {
    if (column[index] !== null) return column[index];
  }
  return null;
}

function check(view, criterion) {
  return (view.evaluation?.checks ?? []).find((item) => item.criterion === criterion);
}

function armsHtml(view) {
  const series = state.series.get(view.route)?.arms ?? {};
  const errorCheck = check(view, 'max_error_rate');
  const p95Check = check(view, 'max_latency_p95_ratio');
  const p50Check = check(view, 'max_latency_p50_ratio');
  const rows = ARMS.map((arm) => {
    const counts = view.arms[arm] ?? {};
    const live = series[arm];
    const requests = counts.requests ?? 0;
    const errorRate = requests > 0 ? (counts.upstream_errors / requests) * 100 : null;
    const bound = arm === 'candidate' && errorCheck?.upper !== null && errorCheck?.upper !== undefined ? ` <span class="muted">(≤ ${num(errorCheck.upper)}% bound)</span>` : '';
    const p50 = live ? latest(live.p50_ms) : arm === 'control' ? p50Check?.control : null;
    const p95 = live ? latest(live.p95_ms) : arm === 'control' ? p95Check?.control : null;
    return `<tr data-arm="${arm}"><th>${arm}</th><td>${int(requests)}</td><td>${live ? num(latest(live.requests_per_second), 1) : '—'}</td>
      <td>${errorRate === null ? '—' : `${num(errorRate)}%`}${bound}</td><td>${int(counts.client_errors)}</td><td>${num(p50, 0)}</td><td>${num(p95, 0)}</td>
      <td>${live ? num(latest(live.ttft_p95_ms), 0) : '—'}</td><td>${live ? num(latest(live.fallbacks_per_second), 2) : '—'}</td></tr>`;
  });
  return `<table><thead><tr><th>arm</th><th>requests in step</th><th>req/s</th><th>upstream errors</th><th>client errors</th>
    <th>p50 ms</th><th>p95 ms</th><th>TTFT p95 ms</th><th>fallbacks/s</th></tr></thead><tbody>${rows.join('')}</tbody></table>
    <p class="hint">Rates, latencies and fallbacks over the last 10 s (the control is a slice of the primary's users: its latency comes from the step's analysis); counts since the step began.</p>`;
}

function unitOf(summary) {
  if (!summary) return '';
  if (summary.includes('× primary')) return '×';
  if (summary.includes('pp')) return 'pp';
  if (summary.includes('%')) return '%';
  return '';
}

function valueUnit(criterion) {
  if (criterion.includes('latency') || criterion.includes('ttft')) return ' ms';
  if (criterion.includes('error')) return '%';
  if (criterion.includes('cost')) return ' $';
  return '';
}

function criteriaHtml(view) {
  const checks = view.evaluation?.checks ?? [];
  if (checks.length === 0) return '<p class="muted">No analysis of this step yet, or a step with gates only.</p>';
  const step = view.plan?.[view.step];
  const rows = checks.map((item) => {
    const budgets = { max_excess_failures: 'excess failures', max_excess_slow_requests: 'excess slow requests' };
    const derived = budgets[item.criterion] ? `${budgets[item.criterion]} ≤ ${int(item.threshold)} (derived budget)` : null;
    const named = item.dimension ? `${item.criterion} (${item.dimension})` : item.criterion;
    const summary = step?.criteria.find((criterion) => criterion.criterion === item.criterion)?.summary ?? derived ?? `${item.criterion} ${item.threshold}`;
    const unit = unitOf(summary);
    let bounds = '—';
    if (item.lower !== null && item.upper !== null) bounds = `${num(item.lower)} … ${num(item.upper)}${unit}`;
    else if (item.lower !== null) bounds = `≥ ${num(item.lower)}${unit}`;
    else if (item.upper !== null) bounds = `≤ ${num(item.upper)}${unit}`;
    return `<tr><th>${esc(named)}</th><td>${esc(summary)}</td><td>${num(item.candidate)}${valueUnit(item.criterion)}</td>
      <td>${num(item.control)}${item.control === null ? '' : valueUnit(item.criterion)}</td><td>${bounds}</td><td>${int(item.candidate_samples)} / ${int(item.control_samples)}</td>
      <td><span class="verdict verdict-${esc(item.verdict)}">${esc(item.verdict)}</span></td><td class="evidence">${esc(item.evidence)}</td></tr>`;
  });
  return `<table><thead><tr><th>criterion</th><th>threshold</th><th>candidate</th><th>control</th><th>bounds</th><th>samples</th><th>verdict</th><th>evidence</th></tr></thead>
    <tbody>${rows.join('')}</tbody></table>`;
}

function notConfigured(what) {
  return `<p class="not-configured">not configured${what ? `: ${esc(what)}` : ''}</p>`;
}

function shadowAgreementHtml(view) {
  const agreement = view.shadow_agreement;
  if (agreement === undefined || agreement === null) return notConfigured('no shadow comparison on this route');
  if (typeof agreement !== 'object') return `<p>${esc(agreement)}</p>`;
  const rows = Object.entries(agreement.dimensions ?? agreement).map(([dimension, value]) =>
    `<tr><th>${esc(dimension)}</th><td>${typeof value === 'number' ? `${num(value <= 1 ? value * 100 : value, 1)}%` : esc(typeof value === 'object' ? JSON.stringify(value) : value)}</td></tr>`);
  return `<table><tbody>${rows.join('')}</tbody></table>`;
}

function costHtml(view, cost) {
  if (!state.configured?.prices) return notConfigured('no [prices] in the config');
  const route = cost?.routes?.find((item) => item.route === view.route);
  if (!route) return '<p class="muted">No priced traffic yet.</p>';
  const rows = route.arms.map((arm) => `<tr><th>${esc(arm.arm)}</th><td>${esc(arm.upstream)}</td><td>$${num(arm.cost_per_1k_requests_usd, 4)}</td>
    <td>$${num(arm.cost_per_successful_request_usd, 6)}</td><td>$${num(arm.cost_usd, 4)}</td></tr>`);
  const projection = route.projection
    ? `<p><span class="label">a month all on the candidate</span> $${num(route.projection.candidate_usd_per_month, 0)} vs $${num(route.projection.primary_usd_per_month, 0)} on the primary
       (<strong>${num(route.projection.saves_percent, 1)}% saved</strong>; the last hour's ${int(route.projection.requests)} requests, 30 days)</p>`
    : '<p class="muted">No monthly projection until both arms have priced requests.</p>';
  return `<table><thead><tr><th>arm</th><th>upstream</th><th>per 1,000 req</th><th>per successful req</th><th>last hour</th></tr></thead>
    <tbody>${rows.join('')}</tbody></table>${projection}`;
}

function healthHtml(view, upstreams) {
  const names = [view.primary, view.candidate].filter(Boolean);
  const rows = upstreams.filter((upstream) => names.includes(upstream.name)).map((upstream) => {
    const probe = state.configured?.health_probes
      ? `${upstream.probe.up ? 'up' : 'down'}${upstream.probe.last_error ? ` <span class="muted">(${esc(upstream.probe.last_error)})</span>` : ''}`
      : '<span class="not-configured">probes not configured</span>';
    return `<tr><th>${esc(upstream.name)}</th><td><span class="dot ${upstream.up ? 'ok' : 'bad'}"></span>${upstream.up ? 'up' : 'down'}</td>
      <td>${probe}</td><td>breaker ${upstream.breaker_open ? '<strong class="bad">open</strong>' : 'closed'}</td></tr>`;
  });
  return `<table><tbody>${rows.join('')}</tbody></table>`;
}

function eventsHtml(events) {
  if (events.length === 0) return '<p class="muted">No events yet.</p>';
  const rows = events.slice(0, 50).map((event) => `<tr><td>${clock(event.at)}</td><td><span class="event-kind kind-${esc(event.kind)}">${esc(event.kind)}</span></td>
    <td>${esc(event.from_phase)} → ${esc(event.to_phase)}</td><td>${num(event.weight_percent)}%</td><td>${esc(event.actor)}</td><td>${esc(event.reason)}</td></tr>`);
  return `<table><thead><tr><th>time</th><th>event</th><th>phase</th><th>weight</th><th>by</th><th>reason</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function renderAlerts(alerts) {
  if (!state.configured || state.configured.alerts === 0) {
    $('alerts').innerHTML = notConfigured('no alert rules');
    return;
  }
  const firing = alerts.filter((alert) => alert.state === 'firing');
  if (firing.length === 0) {
    $('alerts').innerHTML = `<p class="muted">None firing (${alerts.length} rule instance${alerts.length === 1 ? '' : 's'} watched).</p>`;
    return;
  }
  $('alerts').innerHTML = `<table><tbody>${firing.map((alert) => `<tr class="severity-${esc(alert.severity)}"><th>${esc(alert.alert)}</th><td>${esc(alert.severity)}</td>
    <td>${esc(alert.scope)}</td><td>${esc(alert.metric)} = ${num(alert.value)} (${esc(alert.op)} ${num(alert.threshold)} over ${esc(alert.window)})</td>
    <td>since ${alert.fired_at ? clock(alert.fired_at) : '—'}</td></tr>`).join('')}</tbody></table>`;
}

// ── charts ─────────────────────────────────────────────────────────────────────────

function eventMarkers(route) {
  return {
    hooks: {
      draw: [(plot) => {
        const events = state.events.get(route)?.list ?? [];
        const { ctx } = plot;
        const { top, height } = plot.bbox;
        ctx.save();
        ctx.font = `${Math.round(10 * devicePixelRatio)}px sans-serif`;
        for (const [index, event] of events.entries()) {
          const x = plot.valToPos(event.at / 1000, 'x', true);
          if (x < plot.bbox.left || x > plot.bbox.left + plot.bbox.width) continue;
          ctx.strokeStyle = EVENT_COLORS[event.kind] ?? '#777';
          ctx.fillStyle = ctx.strokeStyle;
          ctx.setLineDash([4, 3]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          // Staggered, so that the labels of close events do not overwrite each other.
          ctx.fillText(event.kind, x + 3, top + (12 + 12 * (index % 3)) * devicePixelRatio);
        }
        ctx.restore();
      }],
    },
  };
}

function chartOptions(kind, route, width) {
  const line = (label, stroke, dash) => ({ label, stroke, width: 2, dash, spanGaps: false, points: { show: false } });
  const base = { width, height: 190, legend: { show: true }, scales: { x: { time: true } }, axes: [{}, { size: 50 }] };
  switch (kind) {
    case 'weight':
      // From 0 to a little above the highest weight shown: a 1% step must not look like none.
      return { ...base, plugins: [eventMarkers(route)], scales: { x: { time: true }, y: { range: (plot, min, max) => [0, Math.min(100, Math.max(5, (max ?? 0) * 1.2))] } },
        series: [{}, { ...line('weight %', COLORS.weight), fill: 'rgba(84,162,75,0.12)' }] };
    case 'rate':
      return { ...base, series: [{}, line('primary', COLORS.primary), line('candidate', COLORS.candidate)] };
    case 'latency':
      return { ...base, series: [{}, line('primary p50', COLORS.primary), line('primary p95', COLORS.primary, [6, 4]),
        line('candidate p50', COLORS.candidate), line('candidate p95', COLORS.candidate, [6, 4])] };
    default:
      return { ...base, series: [{}, line('primary', COLORS.primary), line('candidate', COLORS.candidate)] };
  }
}

function chartData(kind, columns) {
  const { t, weight, arms } = columns;
  switch (kind) {
    case 'weight': return [t, weight];
    case 'rate': return [t, arms.primary.requests_per_second, arms.candidate.requests_per_second];
    case 'latency': return [t, arms.primary.p50_ms, arms.primary.p95_ms, arms.candidate.p50_ms, arms.candidate.p95_ms];
    default: return [t, arms.primary.error_percent, arms.candidate.error_percent];
  }
}

function drawCharts(section, view) {
  const columns = state.series.get(view.route);
  if (!columns || typeof uPlot === 'undefined') return;
  for (const holder of section.root.querySelectorAll('[data-chart]')) {
    const kind = holder.dataset.chart;
    const data = chartData(kind, columns);
    let chart = section.charts[kind];
    if (!chart) {
      chart = new uPlot(chartOptions(kind, view.route, Math.max(280, holder.clientWidth)), data, holder);
      section.charts[kind] = chart;
    } else {
      chart.setData(data);
    }
    // What was drawn, for people and tests alike: points with a value in any series.
    const drawn = data.slice(1).reduce((count, values) => count + values.filter((value) => value !== null).length, 0);
    holder.dataset.points = String(drawn);
  }
}

window.addEventListener('resize', () => {
  for (const section of state.routes.values()) {
    for (const [kind, chart] of Object.entries(section.charts)) {
      const holder = section.root.querySelector(`[data-chart="${kind}"]`);
      chart.setSize({ width: Math.max(280, holder.clientWidth), height: 190 });
    }
  }
});

// ── actions ────────────────────────────────────────────────────────────────────────

function confirmAction(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $('confirm-yes').onclick = null;
      $('confirm-no').onclick = null;
      dialog.close();
      resolve(answer);
    };
    $('confirm-yes').onclick = () => done(true);
    $('confirm-no').onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
  });
}

function toast(text, bad) {
  const element = $('toast');
  element.textContent = text;
  element.className = bad ? 'toast bad' : 'toast';
  element.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { element.hidden = true; }, 6000);
}

async function act(route, action, root) {
  let question;
  let request;
  if (action === 'weight') {
    const value = Number(root.querySelector('.set-weight input').value);
    if (!Number.isFinite(value) || value < 0 || value > 100 || root.querySelector('.set-weight input').value === '') {
      toast('Give a weight between 0 and 100 (percent).', true);
      return;
    }
    question = `Set the candidate's weight on route ${route} to ${value}%? A running plan pauses.`;
    request = () => api('POST', `/admin/rollouts/${encodeURIComponent(route)}/weight`, { weight: value });
  } else {
    const words = { pause: 'Pause', resume: 'Resume', promote: 'Promote to the next step of', abort: 'Abort (roll back to the primary)' };
    question = `${words[action]} the rollout of route ${route}?`;
    request = () => api('POST', `/admin/rollouts/${encodeURIComponent(route)}/${action}`);
  }
  if (!(await confirmAction(question))) return;
  try {
    const view = await request();
    toast(`${action}: route ${route} is now ${view.phase} at ${num(view.weight)}%.`);
  } catch (failure) {
    if (failure instanceof Unauthorized) {
      showLogin('The token was refused.');
      return;
    }
    toast(`${action} refused: ${failure.message}`, true);
  }
  refresh();
}

// ── start ──────────────────────────────────────────────────────────────────────────

if (state.token) {
  showApp();
  refresh();
} else {
  showLogin();
}
