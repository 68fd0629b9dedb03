// Rampart's operator dashboard: the live event stream (/api/events: alerts, threat-level changes, policy
// actions), the Prometheus exposition (/metrics) read once a second, and the deny list (/api/deny). Everything
// shown comes from those three; the page keeps only the last minutes in memory.
'use strict';

const LEVELS = ['green', 'yellow', 'orange', 'red'];
const REGISTRATION = ['open', 'rate limited', 'closed'];
const HISTORY_S = 300;      // what the charts and the heat map keep
const MAX_ROWS = 200;       // alert and policy rows kept
const POLL_MS = 1000;

const $ = (id) => document.getElementById(id);
let streamLevelSeen = false;  // the stream told the monitor's level: it is fresher than the poll's
let alertsSeen = 0;

function text(el, value) { if (el.textContent !== value) el.textContent = value; }

function setLevel(el, name) {
  text(el, name || '–');
  el.dataset.level = name || '';
}

// An EVE timestamp ("2026-12-07T10:31:13.300000+0000") in milliseconds since the epoch.
function eveTime(ts) {
  return Date.parse(String(ts).replace(/(\.\d{3})\d*/, '$1').replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
}

function clock(ts) {
  const d = new Date(ts ? eveTime(ts) : Date.now());
  return isNaN(d) ? String(ts) : d.toLocaleTimeString();
}

function cell(row, value, cls) {
  const td = document.createElement('td');
  td.textContent = value;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function prepend(tbody, row) {
  tbody.insertBefore(row, tbody.firstChild);
  while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(tbody.rows.length - 1);
}

// ---- the Prometheus text exposition ----

// name -> [{labels: {...}, value}]
function parseExposition(body) {
  const out = new Map();
  for (const line of body.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3])) !== null) labels[l[1]] = l[2];
    }
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value: Number(m[4]) });
  }
  return out;
}

function single(m, name) {
  const s = m.get(name);
  return s && s.length ? s[0].value : undefined;
}

function byLabel(m, name, label) {
  const r = new Map();
  for (const s of m.get(name) || []) r.set(s.labels[label], s.value);
  return r;
}

// A histogram's cumulative buckets: [[le, count], ...] in order.
function buckets(m, name) {
  return (m.get(name + '_bucket') || [])
    .map((s) => [s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value])
    .sort((a, b) => a[0] - b[0]);
}

// The Q quantile of the observations between two readings of the same histogram (linear within a bucket).
function quantile(now, before, q) {
  const diff = now.map(([le, c], i) => [le, c - (before && before[i] ? before[i][1] : 0)]);
  const total = diff.length ? diff[diff.length - 1][1] : 0;
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let prevLe = 0, prevC = 0;
  for (const [le, c] of diff) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + (le - prevLe) * (c - prevC > 0 ? (rank - prevC) / (c - prevC) : 0);
    }
    prevLe = le; prevC = c;
  }
  return prevLe;
}

function seconds(v) {
  if (v === undefined) return '–';
  return v < 1 ? (v * 1000).toFixed(v < 0.01 ? 1 : 0) + ' ms' : v.toFixed(2) + ' s';
}

// ---- charts (Chart.js) ----

const charts = {};

function lineChart(id, series, options) {
  if (typeof Chart === 'undefined') return null;
  const colors = ['#1565c0', '#c62828', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#5d4037', '#455a64'];
  return new Chart($(id), {
    type: 'line',
    data: { labels: [], datasets: series.map((label, i) => ({
      label, data: [], borderColor: colors[i % colors.length], backgroundColor: colors[i % colors.length],
      pointRadius: 0, borderWidth: 1.5, stepped: options && options.stepped, tension: 0 })) },
    options: Object.assign({
      animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { legend: { display: series.length > 1, labels: { boxWidth: 10 } } },
      scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true } },
    }, options && options.chart),
  });
}

function pushPoint(chart, label, values, names) {
  if (!chart) return;
  if (names) {  // a chart whose series come and go (shed reasons)
    for (const n of names) {
      if (!chart.data.datasets.some((d) => d.label === n)) {
        const colors = ['#c62828', '#ef6c00', '#6a1b9a', '#1565c0', '#2e7d32', '#00838f', '#5d4037'];
        const c = colors[chart.data.datasets.length % colors.length];
        chart.data.datasets.push({ label: n, data: chart.data.labels.map(() => 0), borderColor: c,
          backgroundColor: c, pointRadius: 0, borderWidth: 1.5, tension: 0 });
        chart.options.plugins.legend.display = true;
      }
    }
  }
  chart.data.labels.push(label);
  chart.data.datasets.forEach((d, i) => d.data.push(names ? (values.get(d.label) || 0) : values[i]));
  if (chart.data.labels.length > HISTORY_S) {
    chart.data.labels.shift();
    chart.data.datasets.forEach((d) => d.data.shift());
  }
  chart.update('none');
}

// ---- heat maps (DOM cells coloured by share) ----

function heatColor(share) {
  const s = Math.max(0, Math.min(1, share));
  const hue = 220 - 220 * s;  // blue (idle) to red (all of it)
  return 'hsl(' + hue + ', 80%, ' + (92 - 45 * s) + '%)';
}

const shardHistory = [];  // [{shard: share}], one per poll

function drawShardHeat(shares) {
  shardHistory.push(shares);
  if (shardHistory.length > 120) shardHistory.shift();
  const heat = $('shard-heat');
  const shards = [...shares.keys()].sort((a, b) => Number(a) - Number(b));
  if (!shards.length) { text(heat, 'no expert shards (experts run in the engine)'); return; }
  heat.textContent = '';
  heat.style.gridTemplateColumns = 'max-content repeat(' + shardHistory.length + ', 1fr)';
  for (const s of shards) {
    const label = document.createElement('div');
    label.className = 'label';
    label.textContent = 'shard ' + s;
    heat.appendChild(label);
    for (const h of shardHistory) {
      const c = document.createElement('div');
      c.className = 'cell';
      const v = h.get(s);
      if (v !== undefined) c.style.background = heatColor(v);
      c.title = 'shard ' + s + ': ' + (v === undefined ? '–' : (100 * v).toFixed(0) + ' %');
      heat.appendChild(c);
    }
  }
}

function drawExpertHeat(tokens) {
  const heat = $('expert-heat');
  const experts = [...tokens.keys()].sort((a, b) => Number(a) - Number(b));
  if (!experts.length) { text(heat, 'no routed tokens yet'); return; }
  const max = Math.max(...experts.map((e) => tokens.get(e)));
  if (heat.childElementCount !== experts.length) {
    heat.textContent = '';
    heat.style.gridTemplateColumns = 'repeat(' + Math.min(32, experts.length) + ', 1fr)';
    for (const e of experts) {
      const c = document.createElement('div');
      c.className = 'cell';
      c.dataset.expert = e;
      heat.appendChild(c);
    }
  }
  for (const c of heat.children) {
    const v = tokens.get(c.dataset.expert) || 0;
    c.style.background = heatColor(max > 0 ? v / max : 0);
    c.title = 'expert ' + c.dataset.expert + ': ' + v;
  }
}

// ---- the metrics poll ----

let previous = null;  // {t, m} of the last reading
const history = [];   // the last minute of readings, oldest first
const shedMinute = [];  // [{t, counts}] for the last minute

function rate(now, before, name, dt) {
  const a = single(now, name), b = before ? single(before, name) : undefined;
  return a !== undefined && b !== undefined && dt > 0 ? Math.max(0, (a - b) / dt) : undefined;
}

function onMetrics(body) {
  const m = parseExposition(body);
  const t = Date.now();
  const dt = previous ? (t - previous.t) / 1000 : 0;
  const before = previous ? previous.m : null;
  const label = new Date(t).toLocaleTimeString();

  const inForce = single(m, 'rampart:threat_level_in_force');
  const monitorLevel = single(m, 'rampart:threat_level');
  setLevel($('level-in-force'), LEVELS[inForce]);
  if (!streamLevelSeen) setLevel($('level-monitor'), LEVELS[monitorLevel]);
  text($('registration'), REGISTRATION[single(m, 'rampart:registration_mode')] || '–');
  text($('deny-count'), String(single(m, 'rampart:deny_list_entries') ?? '–'));
  const running = single(m, 'rampart:num_requests_running'), waiting = single(m, 'rampart:num_requests_waiting');
  text($('queue'), (running ?? '–') + ' / ' + (waiting ?? '–'));
  const kv = single(m, 'rampart:kv_cache_usage_perc');
  text($('kv'), kv === undefined ? '–' : (100 * kv).toFixed(0) + ' %');
  const up = single(m, 'rampart:monitor_capture_up');
  text($('capture'), up === undefined ? '–' : up ? 'up, ' + (single(m, 'rampart:monitor_kernel_drops') || 0) + ' dropped' : 'DOWN');

  const regRate = rate(m, before, 'rampart:registered_generation_tokens_total', dt);
  const allRate = rate(m, before, 'rampart:generation_tokens_total', dt);
  text($('reg-goodput'), regRate === undefined ? '–' : regRate.toFixed(1) + ' tok/s');
  text($('all-goodput'), allRate === undefined ? '–' : allRate.toFixed(1) + ' tok/s');
  const lat = {};
  for (const [id, name] of [['reg-ttft', 'rampart:registered_time_to_first_token_seconds'],
                            ['all-ttft', 'rampart:time_to_first_token_seconds'],
                            ['reg-tpot', 'rampart:registered_time_per_output_token_seconds'],
                            ['all-tpot', 'rampart:time_per_output_token_seconds']]) {
    // Over the last 10 s of readings when there are some, so a quiet second does not blank the figure.
    const old = history.length ? history[Math.max(0, history.length - 10)] : null;
    const now = buckets(m, name);
    const p50 = quantile(now, old ? buckets(old, name) : null, 0.5);
    const p99 = quantile(now, old ? buckets(old, name) : null, 0.99);
    lat[id] = p99;
    text($(id), seconds(p50) + ' / ' + seconds(p99));
  }

  const shed = byLabel(m, 'rampart:request_shed_total', 'reason');
  shedMinute.push({ t, counts: shed });
  while (shedMinute.length && t - shedMinute[0].t > 60000) shedMinute.shift();
  const tbody = $('shed');
  tbody.textContent = '';
  const shedRates = new Map();
  for (const [reason, count] of [...shed.entries()].sort((a, b) => b[1] - a[1])) {
    const row = document.createElement('tr');
    row.dataset.reason = reason;
    cell(row, reason);
    cell(row, String(count));
    cell(row, String(count - (shedMinute[0].counts.get(reason) || 0)));
    tbody.appendChild(row);
    const b = before ? byLabel(before, 'rampart:request_shed_total', 'reason').get(reason) || 0 : count;
    shedRates.set(reason, dt > 0 ? Math.max(0, (count - b) / dt) : 0);
  }

  pushPoint(charts.level, label, [inForce, monitorLevel]);
  pushPoint(charts.goodput, label, [regRate, allRate]);
  pushPoint(charts.latency, label, [lat['reg-ttft'], lat['reg-tpot']]);
  pushPoint(charts.queue, label, [running, waiting, kv === undefined ? undefined : 100 * kv]);
  pushPoint(charts.shed, label, shedRates, [...shed.keys()]);

  const shard = byLabel(m, 'rampart:expert_shard_tokens', 'shard');
  const prevShard = before ? byLabel(before, 'rampart:expert_shard_tokens', 'shard') : new Map();
  const served = new Map();
  let total = 0;
  for (const [s, v] of shard) { const d = Math.max(0, v - (prevShard.get(s) || 0)); served.set(s, d); total += d; }
  const shares = new Map();
  for (const [s, d] of served) shares.set(s, total > 0 ? d / total : 0);
  if (before) drawShardHeat(shares);
  drawExpertHeat(byLabel(m, 'rampart:expert_tokens', 'expert'));

  history.push(m);
  if (history.length > 60) history.shift();
  previous = { t, m };
}

async function poll() {
  try {
    const [metrics, deny] = await Promise.all([fetch('/metrics', { cache: 'no-store' }),
                                               fetch('/api/deny', { cache: 'no-store' })]);
    if (!metrics.ok) throw new Error('/metrics answered ' + metrics.status);
    onMetrics(await metrics.text());
    if (deny.ok) onDeny(await deny.json());
    $('metrics-state').dataset.state = 'live';
    text($('metrics-state'), 'metrics: ' + new Date().toLocaleTimeString());
  } catch (e) {
    $('metrics-state').dataset.state = 'error';
    text($('metrics-state'), 'metrics: ' + e.message);
  }
  setTimeout(poll, POLL_MS);
}

function onDeny(list) {
  const tbody = $('deny');
  tbody.textContent = '';
  for (const e of list.entries) {
    const row = document.createElement('tr');
    cell(row, e.prefix);
    cell(row, e.expires_in_s < 120 ? e.expires_in_s.toFixed(0) + ' s' : (e.expires_in_s / 60).toFixed(1) + ' min');
    cell(row, e.spares_tenants ? 'spared' : 'refused too');
    tbody.appendChild(row);
  }
  if (list.total > list.entries.length) {
    const row = document.createElement('tr');
    cell(row, '… and ' + (list.total - list.entries.length) + ' more');
    tbody.appendChild(row);
  }
}

// ---- the live event stream ----

function onAlert(e) {
  const r = e.rampart || {};
  const row = document.createElement('tr');
  row.className = 'alert phase-' + r.phase;
  row.dataset.detector = r.detector;
  row.dataset.phase = r.phase;
  row.dataset.raisedAt = eveTime(e.timestamp);  // when the monitor raised it, and when it was shown here
  row.dataset.shownAt = Date.now();
  cell(row, clock(e.timestamp));
  cell(row, r.detector, 'detector');
  cell(row, r.phase);
  cell(row, String((e.alert || {}).severity ?? ''));
  cell(row, r.metric + ' ' + Number(r.value).toPrecision(4) + ' / ' + Number(r.threshold).toPrecision(4));
  const culprits = (r.culprits || []).map((c) => c.key || c).join(', ');
  cell(row, (e.src_ip || culprits || '-') + ' → ' + (e.dest_ip || '-') + (e.dest_port ? ':' + e.dest_port : ''));
  cell(row, r.threat_level || '');
  prepend($('alerts'), row);
  alertsSeen++;
  text($('alert-count'), '(' + alertsSeen + ')');
}

function onThreatLevel(e) {
  const t = e.threat_level || {};
  streamLevelSeen = true;
  const level = $('level-monitor');
  setLevel(level, t.to);
  level.dataset.changedAt = eveTime(e.timestamp);
  level.dataset.shownAt = Date.now();
  const row = document.createElement('tr');
  row.className = 'level-change';
  cell(row, clock(e.timestamp));
  cell(row, 'threat level');
  cell(row, t.from + ' → ' + t.to + (t.active && t.active.length ? ' (' + t.active.join(', ') + ')' : ''));
  prepend($('policy'), row);
}

function onPolicy(e) {
  const p = e.policy || {};
  const row = document.createElement('tr');
  cell(row, clock(e.timestamp));
  cell(row, p.action || 'policy');
  const detail = Object.entries(p).filter(([k]) => k !== 'action')
    .map(([k, v]) => k + ': ' + (Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : v));
  cell(row, detail.join('; '));
  prepend($('policy'), row);
}

function connectStream() {
  const state = $('stream-state');
  const es = new EventSource('/api/events');  // reconnects by itself, resuming from the last id it saw
  es.onopen = () => { state.dataset.state = 'live'; text(state, 'live'); };
  es.onerror = () => { state.dataset.state = 'reconnecting'; text(state, 'reconnecting'); };
  es.onmessage = (msg) => {
    let e;
    try { e = JSON.parse(msg.data); } catch (err) { return; }
    if (e.event_type === 'alert') onAlert(e);
    else if (e.event_type === 'threat_level') onThreatLevel(e);
    else if (e.event_type === 'policy') onPolicy(e);
  };
  es.addEventListener('missed', (msg) => {
    const row = document.createElement('tr');
    cell(row, clock());
    cell(row, 'stream');
    cell(row, JSON.parse(msg.data).missed + ' events were missed while away');
    prepend($('policy'), row);
  });
}

function start() {
  charts.level = lineChart('chart-level', ['in force', 'monitor'],
    { stepped: true, chart: { scales: { x: { ticks: { maxTicksLimit: 6 } },
      y: { min: 0, max: 3, ticks: { stepSize: 1, callback: (v) => LEVELS[v] } } } } });
  charts.goodput = lineChart('chart-goodput', ['registered', 'all users']);
  charts.latency = lineChart('chart-latency', ['TTFT p99', 'TPOT p99']);
  charts.queue = lineChart('chart-queue', ['running', 'waiting', 'KV %']);
  charts.shed = lineChart('chart-shed', []);
  connectStream();
  poll();
}

document.addEventListener('DOMContentLoaded', start);
