// The console: login, then the map, the queue, the case panel and the live stream.
import { ApiProblem, api, login, logout, signedIn } from './api.js';
import { CasePanel } from './case.js';
import { ConsoleMap } from './map.js';
import { Queue } from './queue.js';
import { Registry, gridsOf } from './registry.js';
import { countFigures, period, render as renderStats, serverFigures } from './stats.js';
import { connect } from './stream.js';

const $ = (id) => document.getElementById(id);
const LIVE = { live: '● 实时', connecting: '○ 连接中', retrying: '○ 重连中', off: '○ 离线' };

function toast(text, bad = false) {
  const el = $('toast');
  const item = document.createElement('div');
  item.className = bad ? 'bad' : '';
  item.textContent = text;
  el.append(item);
  setTimeout(() => item.remove(), 6000);
}

function showLogin() {
  $('console').hidden = true;
  $('login').hidden = false;
  $('login-form').elements.username.focus();
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.target;
  $('login-error').textContent = '';
  f.querySelector('button').disabled = true;
  try {
    await login(f.elements.username.value.trim(), f.elements.password.value);
    f.reset();
    await start();
  } catch (err) {
    $('login-error').textContent = err instanceof ApiProblem ? err.message : `登录失败：${err.message}`;
  } finally {
    f.querySelector('button').disabled = false;
  }
});
$('logout').addEventListener('click', () => logout());
window.addEventListener('wangge:signed-out', () => window.location.reload());

async function start() {
  const me = await api('/api/v1/me');
  const roles = [...new Set(me.posts.map((p) => p.role))];
  $('who').textContent = `${me.display_name}（${[...new Set(me.posts.map((p) => p.role_label))].join('、')}）`;
  $('login').hidden = true;
  $('console').hidden = false;

  const p = period();
  const panel = new CasePanel($('case'), {
    toast,
    onActed: (c) => { queue.touch({ case_id: null }); map.flyTo(c); },
  });
  const showCase = () => { $('ledger').hidden = true; $('case').hidden = false; };
  const select = (id) => {
    showCase();
    queue.select(id);
    map.setCases(queue.cases(), id);
    map.flyTo(queue.find(id));
    panel.open(id);
  };
  const map = new ConsoleMap($('map'), { onCaseClick: select });
  let statsFromServer = false;
  let statsTimer = null;
  const loadStats = async () => {
    const data = await serverFigures(roles).catch(() => undefined);
    if (data === undefined) return; // a transient failure: keep what is shown
    statsFromServer = data !== null;
    if (data) renderStats($('stats'), p, data, 'server');
    else queue.onChange(queue);
  };
  const queue = new Queue($('queue'), $('queue-count'), document.querySelector('.tabs'), {
    roles,
    period: p,
    onSelect: select,
    onChange: (q) => {
      map.setCases(q.cases(), q.selected);
      const counts = new Map();
      for (const c of q.lists.all) if (c.grid) counts.set(c.grid.id, (counts.get(c.grid.id) || 0) + 1);
      map.setHotCounts(counts);
      if (!statsFromServer) renderStats($('stats'), p, countFigures(q.lists.all, q.lists.overdue, q.lists.all.length >= 2000), 'local');
      else { clearTimeout(statsTimer); statsTimer = setTimeout(loadStats, 500); }
    },
  });
  $('stats').addEventListener('click', (e) => {
    const fig = e.target.closest('[data-url]');
    if (fig) queue.drill(fig.dataset.label, fig.dataset.url).catch((err) => toast(err.message, true));
  });
  const ledger = new Registry($('ledger'), { onCase: (id) => select(id) });
  const pick = $('ledger-grid');
  for (const g of await gridsOf(me).catch(() => [])) pick.append(new Option(g.name, g.id));
  pick.addEventListener('change', () => {
    if (!pick.value) return showCase();
    $('case').hidden = true;
    $('ledger').hidden = false;
    ledger.open(Number(pick.value)).catch((err) => toast(err.message, true));
  });
  for (const box of document.querySelectorAll('#layers input')) {
    box.addEventListener('change', () => map.setVisible(box.dataset.layer, box.checked));
  }
  window.wangge = { map: map.map, consoleMap: map, queue, panel, ledger, me, events: [] };

  await map.init(p, me);
  map.legend($('legend'));
  await loadStats();
  await queue.load();
  connect({
    onEvent: (ev) => {
      queue.touch(ev);
      if (ev.type === 'case.reported') toast(`新上报事件：${ev.payload?.number || ev.case_id}`);
      if (ev.case_id === panel.caseId) setTimeout(() => panel.reload(), 300);
      const seen = window.wangge.events; // the last 100 events, for tests and the curious
      seen.push(ev);
      if (seen.length > 100) seen.shift();
    },
    onState: (s) => {
      $('live').dataset.state = s;
      $('live').textContent = LIVE[s] || s;
    },
    onResync: () => queue.load(),
  });
  // A wall screen stays open for days: when the month turns, start again on the new period.
  setInterval(() => { if (period().since !== p.since) window.location.reload(); }, 60_000);
  document.body.dataset.ready = 'true';
}

if (signedIn()) {
  start().catch((e) => {
    toast(e.message, true);
    showLogin();
  });
} else {
  showLogin();
}
