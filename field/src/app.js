// 网格通: sign-in, home (my grids on the map, my queue's counts, push), patrol (track, check-ins,
// visits), report, tasks (the cases' queue and my personal tasks), a case with its timeline and
// the verification on site, and the outbox. Data comes from the caches (IndexedDB)
// first and is refreshed when the network is there; what the worker enters goes to the outbox.
import * as api from './api.js';
import { renderDisputes } from './disputes.js';
import { FieldMap } from './map.js';
import * as outbox from './outbox.js';
import * as patrol from './patrol.js';
import { resize } from './photos.js';
import * as store from './store.js';
import * as sync from './sync.js';
import { h, $, FIELD_LABELS, toast, fmtTime, clear } from './ui.js';

const CLOSED = new Set(['closed', 'rejected', 'duplicate', 'verified']);
const S = { me: null, cats: [], grids: [], cases: [], checkpoints: [], buildings: [], purposes: [], mytasks: { counts: { open: 0 }, items: [] }, building: null, purpose: null, patrolGrid: null, position: null, pick: null, photos: [], verifyPhotos: [], category: null, editing: null, tab: 'verify' };
const maps = {};
window.wangge = { S, outbox, sync, api, maps, patrol, ready: false };

async function boot() {
  if ('serviceWorker' in navigator) {
    // A module worker (it imports the outbox to send it on Background Sync).
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app', type: 'module' }).catch((e) => console.warn('service worker', e.message));
    navigator.serviceWorker.addEventListener('message', (e) => {
      // A tapped notification: its screen.
      if (e.data && e.data.type === 'open' && /^#[a-z]+(\/\d+)?$/.test(e.data.hash)) location.hash = e.data.hash;
    });
  }
  api.onAuth((reason) => {
    showLogin(reason === 'expired' ? '登录已过期，请重新登录（未发送的内容已保存在本机）' : '');
  });
  $('#login-form').addEventListener('submit', onLogin);
  await api.loadAuth();
  if (api.signedIn()) await start();
  else showLogin('');
}

function showLogin(message) {
  $('#bar').hidden = true;
  $('#tabbar').hidden = true;
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== 'login';
  $('#login-error').textContent = message;
  document.body.dataset.view = 'login';
  document.body.dataset.ready = 'true';
}

async function onLogin(ev) {
  ev.preventDefault();
  const f = ev.target;
  $('#login-error').textContent = '';
  try {
    await api.login(f.username.value.trim(), f.password.value);
    f.password.value = '';
    await start();
  } catch (e) {
    $('#login-error').textContent = e.message;
  }
}

let started = false;
async function start() {
  $('#bar').hidden = false;
  $('#tabbar').hidden = false;
  await load();
  if (!started) {
    started = true;
    wire();
    window.addEventListener('hashchange', route);
    window.addEventListener('online', () => {
      net();
      refresh();
      outbox.online();
    });
    window.addEventListener('offline', net);
    outbox.onChange(() => {
      renderBadges();
      if (screen() === 'outbox') renderOutbox();
      if (screen() === 'home') renderHome();
      if (screen() === 'patrol') renderPatrol();
      if (screen() === 'task') openTask(Number(location.hash.split('/')[1]), false);
      afterSend();
    });
    patrol.onChange(() => screen() === 'patrol' && renderPatrol());
    setInterval(() => navigator.onLine && refresh(), 60_000);
    setInterval(() => screen() === 'patrol' && patrol.current && patrol.current.status === 'active' && renderStats(), 1000);
    watchPosition();
  }
  net();
  await patrol.load();
  outbox.resume();
  pushRenew();
  route();
  await refresh();
  window.wangge.ready = true;
  document.body.dataset.ready = 'true';
}

async function load() {
  Object.assign(S, await sync.cached());
  $('#who').textContent = S.me ? S.me.display_name : '';
  for (const m of Object.values(maps)) m.mine = S.grids;
}

let refreshing = null;
async function refresh() {
  refreshing ??= (async () => {
    try {
      await sync.refreshCatalogue();
      await sync.syncCases();
    } catch (e) {
      if (!(e instanceof api.Offline) && !(e instanceof api.SignedOut)) console.warn('refresh', e);
    }
    await load();
    const first = !maps.home || !maps.home.fitted;
    if (maps.home && first && S.grids.length) {
      maps.home.fit(S.grids);
      maps.home.fitted = true;
    }
    rerender();
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}
window.wangge.refresh = refresh;

let sendTimer = null;
function afterSend() {
  clearTimeout(sendTimer);
  sendTimer = setTimeout(() => navigator.onLine && refresh(), 300);
}

function net() {
  const el = $('#net');
  el.dataset.online = String(navigator.onLine);
  el.textContent = navigator.onLine ? '在线' : '离线';
}

const screen = () => (location.hash.slice(1) || 'home').split('/')[0];

function route() {
  if (!api.signedIn()) return;
  const [name, arg] = (location.hash.slice(1) || 'home').split('/');
  const target = name === 'edit' ? 'report' : name;
  const known = ['home', 'patrol', 'visit', 'report', 'tasks', 'task', 'case', 'outbox', 'disputes'];
  const show = known.includes(target) ? target : 'home';
  for (const s of document.querySelectorAll('[data-screen]')) s.hidden = s.dataset.screen !== show;
  const tab = { visit: 'patrol', task: 'tasks', case: 'tasks', disputes: 'tasks' }[show] || show;
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('on', a.dataset.nav === tab);
  document.body.dataset.view = show;
  window.scrollTo(0, 0);
  if (show === 'home') renderHome();
  if (show === 'report') openReport(name === 'edit' ? arg : null);
  if (show === 'tasks') renderTasks();
  if (show === 'patrol') renderPatrol();
  if (show === 'visit') openVisit();
  if (show === 'task') openTask(Number(arg), true);
  if (show === 'case') openCase(Number(arg));
  if (show === 'outbox') renderOutbox();
  if (show === 'disputes') openDisputes();
  renderBadges();
}

// 纠纷与走访 (disputes.js): a screening report goes on the running patrol (through the outbox).
async function openDisputes() {
  const p = patrol.current;
  await renderDisputes($('#disputes-view'), { grids: S.grids, patrolLocal: p && p.status !== 'ended' ? p.local : null });
}

function rerender() {
  const s = screen();
  if (s === 'home') renderHome();
  if (s === 'tasks') renderTasks();
  if (s === 'outbox') renderOutbox();
  if (s === 'patrol') renderPatrol();
  renderBadges();
}

function wire() {
  maps.home = new FieldMap($('#home-map'));
  maps.pick = new FieldMap($('#pick-map'), { onMove: (c) => setPick(c, null) });
  maps.patrol = new FieldMap($('#patrol-map'));
  for (const m of Object.values(maps)) m.mine = S.grids;
  if (S.grids.length) {
    maps.home.fit(S.grids);
    maps.home.fitted = true;
  }
  for (const b of document.querySelectorAll('[data-zoom]')) {
    const [m, d] = b.dataset.zoom.split(':');
    b.addEventListener('click', () => maps[m].zoomBy(Number(d)));
  }
  $('#logout').addEventListener('click', async () => {
    const waiting = (await outbox.entries()).filter((e) => e.state !== 'done').length;
    if (waiting && !confirm(`还有 ${waiting} 条未发送，退出后仍保存在本机，重新登录后继续发送。确定退出？`)) return;
    await api.logout();
  });
  $('#cat-search').addEventListener('input', renderCats);
  $('#use-gps').addEventListener('click', () => {
    if (S.position) {
      setPick([S.position.lon, S.position.lat], S.position.accuracy);
      maps.pick.setView(S.pick.at, 17);
    } else toast('尚未获得定位');
  });
  $('#photo-input').addEventListener('change', (e) => addPhotos(e.target, S.photos, $('#photo-list')));
  $('#verify-photos').addEventListener('change', (e) => addPhotos(e.target, S.verifyPhotos, $('#verify-thumbs')));
  $('#report-form').addEventListener('submit', onReport);
  $('#verify-form').addEventListener('submit', onVerify);
  $('#evaluate-form').addEventListener('submit', onEvaluate);
  $('#patrol-start').addEventListener('click', onPatrolStart);
  $('#patrol-pause').addEventListener('click', () => patrol.step('pause'));
  $('#patrol-resume').addEventListener('click', () => patrol.step('resume'));
  $('#patrol-end').addEventListener('click', () => confirm('结束本次巡查？') && patrol.step('end'));
  $('#patrol-close').addEventListener('click', () => patrol.close());
  $('#building-search').addEventListener('input', renderBuildings);
  $('#visit-form').addEventListener('submit', onVisit);
  for (const r of document.querySelectorAll('#visit-form input[name=outcome]')) {
    r.addEventListener('change', () => ($('#visit-case').hidden = $('#visit-form').outcome.value !== 'case_raised'));
  }
  for (const b of document.querySelectorAll('[data-task]')) b.addEventListener('click', () => onTask(b.dataset.task));
  $('#push-enable').addEventListener('click', enablePush);
  $('#send-now').addEventListener('click', async () => {
    for (const e of await outbox.entries()) if (e.state === 'waiting') await outbox.retry(e.id);
  });
}

function watchPosition() {
  if (!navigator.geolocation) return;
  navigator.geolocation.watchPosition(
    (p) => {
      S.position = { lon: p.coords.longitude, lat: p.coords.latitude, accuracy: p.coords.accuracy };
      for (const m of Object.values(maps)) {
        m.position = S.position;
        m.draw();
      }
      renderPosition();
      patrol.fix(p).then((kept) => {
        if (screen() !== 'patrol') return;
        if (kept) renderStats();
        renderCheckpoints();
      });
      if (screen() === 'report' && !S.pick) {
        setPick([S.position.lon, S.position.lat], S.position.accuracy);
        maps.pick.setView(S.pick.at, 17);
      }
    },
    () => {
      $('#home-pos').textContent = '无法定位：请允许网格通使用位置';
    },
    { enableHighAccuracy: true, maximumAge: 10_000 },
  );
}

function renderPosition() {
  if (!S.position) return;
  const g = sync.gridAt(S.grids, S.position.lon, S.position.lat);
  const acc = Math.round(S.position.accuracy);
  $('#home-pos').textContent = `当前位置：${g ? g.name : '不在我的网格内'}（精度 ±${acc} 米${acc > 50 ? '，精度较差' : ''}）`;
}

// ---- home ----------------------------------------------------------------------------------

function counts() {
  const me = S.me ? S.me.id : null;
  const open = S.cases.filter((c) => !CLOSED.has(c.status));
  return {
    verify: S.cases.filter((c) => c.actions.includes('verify')),
    evaluate: S.cases.filter((c) => c.actions.includes('evaluate')),
    mine: open.filter((c) => c.reporter && c.reporter.id === me),
    open,
  };
}

async function renderHome() {
  const c = counts();
  const box = [];
  const entries = await outbox.entries();
  const waiting = entries.filter((e) => e.state === 'waiting').length;
  const failed = entries.filter((e) => e.state === 'failed').length;
  const tile = (label, n, href, key) => h('a', { class: 'count', href, 'data-count': key }, h('b', {}, String(n)), h('span', {}, label));
  box.push(tile('待核查', c.verify.length, '#tasks/verify', 'verify'));
  box.push(tile('待回访', c.evaluate.length, '#tasks/evaluate', 'evaluate'));
  box.push(tile('我上报的', c.mine.length, '#tasks/mine', 'mine'));
  box.push(tile('我的任务', S.mytasks.counts.open, '#tasks/mytasks', 'mytasks'));
  box.push(tile('纠纷与走访', '›', '#disputes', 'disputes'));
  box.push(tile('待发送', waiting, '#outbox', 'waiting'));
  box.push(tile('发送失败', failed, '#outbox', 'failed'));
  clear($('#counts')).append(...box);
  const list = clear($('#my-grids'));
  for (const g of S.grids) {
    const n = c.open.filter((x) => x.grid && x.grid.id === g.id).length;
    list.append(h('li', { 'data-grid': g.code }, h('b', {}, g.name), h('span', { class: 'muted small' }, `${g.code} · 在办 ${n} 件`)));
  }
  if (!S.grids.length) list.append(h('li', { class: 'muted' }, '暂无网格（联网后自动获取）'));
  renderPosition();
  renderPush();
  maps.home && maps.home.draw();
}

async function renderBadges() {
  const entries = await outbox.entries();
  const pending = entries.filter((e) => e.state !== 'done').length;
  const b = $('#badge-outbox');
  b.hidden = !pending;
  b.textContent = String(pending);
  $('#badge-patrol').hidden = !(patrol.current && patrol.current.status !== 'ended');
  const t = $('#badge-tasks');
  const n = counts().verify.length + S.mytasks.items.filter((x) => x.state === 'open').length;
  t.hidden = !n;
  t.textContent = String(n);
}

// ---- report --------------------------------------------------------------------------------

async function openReport(editId) {
  const form = $('#report-form');
  for (const el of document.querySelectorAll('#report-form .field-error')) el.textContent = '';
  $('#report-error').textContent = '';
  S.editing = null;
  if (editId) {
    const e = await store.get('outbox', editId);
    if (e && e.kind === 'case') {
      S.editing = e;
      form.title.value = e.body.title;
      form.description.value = e.body.description;
      S.category = e.body.category;
      setPick([e.body.location.lon, e.body.location.lat], e.body.location.accuracy_m);
      maps.pick.setView(S.pick.at, 17);
      $('#report-heading').textContent = '修改后重新发送';
      $('#report-submit').textContent = '重新发送';
      if (e.error) {
        $('#report-error').textContent = `服务器未接受：${e.error.detail}`;
        const slot = e.error.field && document.querySelector(`#report-form .field-error[data-field="${e.error.field.split('.')[0]}"]`);
        if (slot) slot.textContent = e.error.detail;
      }
    }
  } else {
    $('#report-heading').textContent = '上报事件';
    $('#report-submit').textContent = '保存并发送';
    if (!S.pick && S.position) {
      setPick([S.position.lon, S.position.lat], S.position.accuracy);
      maps.pick.setView(S.pick.at, 17);
    } else if (!S.pick && S.grids.length) maps.pick.fit(S.grids);
  }
  maps.pick.mine = S.grids;
  maps.pick.draw();
  renderCats();
  renderDups();
}

function catOf(code) {
  return S.cats.find((c) => c.code === code) || null;
}

async function renderCats() {
  const q = $('#cat-search').value.trim().toLowerCase();
  const recent = (await store.get('kv', 'recent')) || [];
  const chosen = catOf(S.category);
  $('#cat-chosen').textContent = chosen ? `已选：${chosen.class_name} · ${chosen.name}` : S.category ? `已选：${S.category}` : '未选择';
  const rank = (c) => {
    const i = recent.indexOf(c.code);
    return i < 0 ? 1000 : i;
  };
  const hits = S.cats
    .filter((c) => !q || [c.name, c.class_name, c.code, ...(c.keywords || [])].some((s) => String(s).toLowerCase().includes(q)))
    .sort((a, b) => rank(a) - rank(b) || (a.code < b.code ? -1 : 1))
    .slice(0, q ? 30 : 8);
  const list = clear($('#cat-list'));
  for (const c of hits) {
    const li = h(
      'li',
      {},
      h('button', { type: 'button', 'data-code': c.code, class: c.code === S.category ? 'on' : '' },
        h('span', {}, c.name), h('small', {}, `${c.class_name}${recent.includes(c.code) ? ' · 最近使用' : ''}`)),
    );
    li.firstChild.addEventListener('click', () => {
      S.category = c.code;
      document.querySelector('#report-form .field-error[data-field="category"]').textContent = '';
      renderCats();
      renderDups();
    });
    list.append(li);
  }
  if (!hits.length) list.append(h('li', { class: 'muted' }, S.cats.length ? '没有匹配的类别' : '类别尚未下载（联网后自动获取）'));
}

function setPick(at, accuracy) {
  // From the GPS: its accuracy; moved by hand on the map: none (the worker placed it).
  S.pick = { at, accuracy: accuracy ?? null };
  const g = sync.gridAt(S.grids, at[0], at[1]);
  const acc = S.pick.accuracy != null ? `，定位精度 ±${Math.round(S.pick.accuracy)} 米${S.pick.accuracy > 50 ? '（精度较差，请在地图上核对）' : ''}` : '（已手动调整）';
  $('#pick-info').textContent = `${g ? `所在网格：${g.name}` : '不在我的网格内'}${acc}`;
  renderDups();
}

function renderDups() {
  const box = $('#dups');
  const cat = catOf(S.category);
  if (!cat || !S.pick) {
    box.hidden = true;
    return;
  }
  const radius = cat.duplicate_radius_m || 100;
  const near = S.cases
    .filter((c) => c.category.code === cat.code && !CLOSED.has(c.status) && c.location)
    .map((c) => ({ c, d: sync.distance(S.pick.at, [c.location.lon, c.location.lat]) }))
    .filter((x) => x.d <= radius)
    .sort((a, b) => a.d - b.d)
    .slice(0, 5);
  box.hidden = !near.length;
  clear(box);
  if (!near.length) return;
  box.append(h('p', { class: 'warn' }, `附近已有同类事件（${near.length} 件），请确认不是重复上报：`));
  for (const { c, d } of near) {
    box.append(h('a', { href: `#case/${c.id}`, class: 'dup' }, `${c.title} · ${c.status_label} · 约 ${Math.round(d)} 米`));
  }
}

async function addPhotos(input, list, thumbs) {
  for (const f of input.files) {
    try {
      const blob = await resize(f);
      list.push({ blob, url: URL.createObjectURL(blob) });
    } catch (e) {
      toast(e.message);
    }
  }
  input.value = '';
  renderThumbs(list, thumbs);
}

function renderThumbs(list, thumbs) {
  clear(thumbs);
  list.forEach((p, i) => {
    const b = h('button', { type: 'button', class: 'thumb', 'aria-label': `删除第 ${i + 1} 张照片` }, h('img', { src: p.url, alt: '' }), h('span', {}, '×'));
    b.addEventListener('click', () => {
      URL.revokeObjectURL(p.url);
      list.splice(i, 1);
      renderThumbs(list, thumbs);
    });
    thumbs.append(b);
  });
}

async function onReport(ev) {
  ev.preventDefault();
  const f = ev.target;
  const errs = {};
  if (!S.category) errs.category = '请选择事项类别';
  if (!f.title.value.trim()) errs.title = '请填写标题';
  if (!S.pick) errs.location = '尚未定位：请拖动地图选择位置';
  for (const el of document.querySelectorAll('#report-form .field-error')) el.textContent = errs[el.dataset.field] || '';
  if (Object.keys(errs).length) return;
  const [lon, lat] = S.pick.at;
  const body = {
    category: S.category,
    title: f.title.value.trim(),
    description: f.description.value.trim(),
    // The browser's position is WGS84: sent as it is, with the crs named (never converted here).
    location: { lon: round7(lon), lat: round7(lat), crs: 'wgs84', ...(S.pick.accuracy != null ? { accuracy_m: Math.round(S.pick.accuracy * 10) / 10 } : {}) },
  };
  const recent = ((await store.get('kv', 'recent')) || []).filter((c) => c !== S.category);
  await store.put('kv', [S.category, ...recent].slice(0, 8), 'recent');
  if (S.editing) {
    await outbox.resubmit(S.editing.id, { ...S.editing.body, ...body });
    toast('已修改，正在重新发送');
  } else {
    const photos = S.photos.map((p) => p.blob);
    await outbox.add({ id: outbox.uuid(), idem: outbox.uuid(), kind: 'case', body }, photos);
    toast(navigator.onLine ? '已保存，正在发送' : '已保存在本机，联网后自动发送');
  }
  S.photos.forEach((p) => URL.revokeObjectURL(p.url));
  S.photos = [];
  renderThumbs(S.photos, $('#photo-list'));
  f.reset();
  S.category = null;
  S.editing = null;
  S.pick = null;
  location.hash = '#outbox';
}

const round7 = (v) => Math.round(v * 1e7) / 1e7;

// ---- tasks and a case ----------------------------------------------------------------------

function renderTasks() {
  const arg = location.hash.split('/')[1];
  if (arg) S.tab = arg;
  const c = counts();
  const tabs = [
    ['mytasks', '我的任务', S.mytasks.items],
    ['verify', '待核查', c.verify],
    ['evaluate', '待回访', c.evaluate],
    ['mine', '我上报的', c.mine],
    ['open', '网格内在办', c.open],
  ];
  const nav = clear($('#task-tabs'));
  for (const [key, label, list] of tabs) {
    const b = h('button', { type: 'button', class: key === S.tab ? 'on' : '', 'data-tab': key }, `${label} ${list.length}`);
    b.addEventListener('click', () => {
      S.tab = key;
      renderTasks();
    });
    nav.append(b);
  }
  const ul = clear($('#task-list'));
  if (S.tab === 'mytasks') {
    for (const t of S.mytasks.items) {
      ul.append(
        h('li', {}, h('a', { href: `#task/${t.id}`, class: 'row', 'data-task-id': String(t.id) },
          h('b', {}, t.title),
          h('span', { class: `muted small due${t.overdue ? ' overdue' : ''}` }, `${TASK_KINDS[t.kind] || t.kind} · ${TASK_STATES[t.state] || t.state}${t.due_at ? ` · ${t.overdue ? '已逾期' : '期限'} ${fmtTime(t.due_at)}` : ''}`))),
      );
    }
    if (!S.mytasks.items.length) ul.append(h('li', { class: 'muted' }, '暂无任务'));
    return;
  }
  const items = (tabs.find((t) => t[0] === S.tab) || tabs[0])[2]
    .slice()
    .sort((a, b) => (a.reported_at < b.reported_at ? 1 : -1))
    .slice(0, 100);
  for (const x of items) {
    ul.append(
      h('li', {}, h('a', { href: `#case/${x.id}`, class: 'row', 'data-case': String(x.id) },
        h('b', {}, x.title), h('span', { class: 'muted small' }, `${x.number} · ${x.category.name} · ${x.status_label}${x.grid ? ` · ${x.grid.name}` : ''}`))),
    );
  }
  if (!items.length) ul.append(h('li', { class: 'muted' }, '暂无'));
}

async function openCase(id) {
  const view = clear($('#case-view'));
  const tl = clear($('#timeline'));
  $('#verify-form').hidden = true;
  $('#evaluate-form').hidden = true;
  let c = await store.get('cases', id);
  try {
    c = await api.request(`/api/v1/cases/${id}`);
    await store.put('cases', { ...c, actions: c.allowed_actions || [] });
  } catch (e) {
    if (!(e instanceof api.Offline)) toast(e.message);
  }
  if (!c) {
    view.append(h('p', { class: 'muted' }, '离线：这件事件尚未下载'));
    return;
  }
  S.current = c;
  view.append(
    h('h2', {}, c.title),
    h('p', { class: 'muted small' }, `${c.number} · ${c.category.name} · ${c.grid ? c.grid.name : '未落格'}`),
    h('p', { class: 'status', 'data-status': c.status }, c.status_label),
    h('p', {}, c.description || ''),
  );
  const pending = (await outbox.entries()).filter((e) => e.caseId === id && e.state !== 'done');
  const what = { verify: '核查结果', evaluate: '回访结果', case: '照片' };
  for (const e of pending) view.append(h('p', { class: 'warn' }, `本机待发送：${what[e.kind]}（${e.error ? e.error.detail : '等待发送'}）`));
  const actions = c.allowed_actions || c.actions || [];
  $('#verify-form').hidden = !actions.includes('verify') || pending.some((e) => e.kind === 'verify');
  $('#evaluate-form').hidden = !actions.includes('evaluate') || pending.some((e) => e.kind === 'evaluate');
  S.verifyPhotos = [];
  renderThumbs(S.verifyPhotos, $('#verify-thumbs'));
  if (!c.timeline) {
    tl.append(h('li', { class: 'muted' }, '离线：办理经过在联网后显示'));
    return;
  }
  for (const s of c.timeline) {
    tl.append(
      h('li', { 'data-action': s.action },
        h('b', {}, s.action_label),
        h('span', { class: 'muted small' }, `${fmtTime(s.at)}${s.actor ? ` · ${s.actor.name}` : ''}${s.attachments.length ? ` · 照片 ${s.attachments.length} 张` : ''}`),
        s.note ? h('p', {}, s.note) : '',
        s.attachments.length ? thumbs(s.attachments) : ''),
    );
  }
}

/** The step's photos, fetched with the token (thumbnails, 320 px) and shown as blob: URLs. */
function thumbs(ids) {
  const box = h('div', { class: 'tl-photos' });
  for (const id of ids) {
    const img = h('img', { alt: '', 'aria-label': `照片 ${id}`, 'data-attachment': String(id) });
    box.append(img);
    api
      .request(`/api/v1/attachments/${id}/thumbnail`, { raw: true })
      .then((res) => res.blob())
      .then((b) => {
        img.src = URL.createObjectURL(b);
      })
      .catch(() => img.replaceWith(h('span', { class: 'muted small' }, '照片（联网后显示）')));
  }
  return box;
}

async function onVerify(ev) {
  ev.preventDefault();
  const c = S.current;
  const f = ev.target;
  const passed = f.passed.value === 'true';
  await outbox.add(
    { id: outbox.uuid(), kind: 'verify', caseId: c.id, baseVersion: c.version, title: c.title, body: { passed, note: f.note.value.trim() } },
    S.verifyPhotos.map((p) => p.blob),
  );
  S.verifyPhotos = [];
  f.reset();
  toast(navigator.onLine ? '核查结果已保存，正在发送' : '核查结果已保存在本机，联网后自动发送');
  location.hash = '#outbox';
}

const SATISFACTION = { satisfied: '满意', basically_satisfied: '基本满意', dissatisfied: '不满意', unreachable: '联系不上' };

async function onEvaluate(ev) {
  ev.preventDefault();
  const c = S.current;
  const f = ev.target;
  await outbox.add(
    { id: outbox.uuid(), kind: 'evaluate', caseId: c.id, baseVersion: c.version, title: c.title, body: { satisfaction: f.satisfaction.value, note: f.note.value.trim() } },
    [],
  );
  f.reset();
  toast(navigator.onLine ? '回访结果已保存，正在发送' : '回访结果已保存在本机，联网后自动发送');
  location.hash = '#outbox';
}

// ---- the outbox ----------------------------------------------------------------------------

async function renderOutbox() {
  const all = await outbox.entries();
  const waiting = all.filter((e) => e.state === 'waiting');
  const failed = all.filter((e) => e.state === 'failed');
  const sent = all.filter((e) => e.state === 'done');
  $('#outbox-summary').textContent = `等待发送 ${waiting.length} · 发送失败 ${failed.length} · 已发送 ${sent.length}`;
  const ul = clear($('#outbox-list'));
  for (const e of [...failed, ...waiting, ...sent.reverse().slice(0, 30)]) {
    const title = entryTitle(e);
    const photos = e.photos.length ? ` · 照片 ${e.photos.filter((p) => p.done).length}/${e.photos.length}` : '';
    const label = { waiting: '等待发送', failed: '发送失败', done: '已发送' }[e.state];
    const li = h('li', { class: `entry ${e.state}`, 'data-entry': e.id, 'data-state': e.state },
      h('b', {}, title),
      h('span', { class: 'small' }, `${label}${e.number ? ` · ${e.number}` : ''}${e.grid ? ` · ${e.grid.name}` : ''}${photos}${e.attempts ? ` · 已重试 ${e.attempts} 次` : ''}`),
      h('span', { class: 'muted small' }, `录入于 ${fmtTime(e.created)}`));
    if (e.state === 'waiting' && !navigator.onLine) {
      li.append(h('p', { class: 'muted small' }, '离线：已保存在本机，联网后自动发送'));
    } else if (e.error && e.state !== 'done') {
      const field = e.error.field ? `【${FIELD_LABELS[e.error.field.split('.')[0]] || e.error.field}】` : '';
      li.append(h('p', { class: e.state === 'failed' ? 'error' : 'muted small', 'data-error-field': e.error.field || '' }, `${field}${e.error.detail}`));
    }
    const result = e.state === 'done' ? resultText(e) : '';
    if (result) li.append(h('p', { class: 'small ok', 'data-result': e.kind }, result));
    if (e.state === 'done' && e.duplicates && e.duplicates.length) {
      li.append(h('p', { class: 'warn small' }, `附近已有同类事件：${e.duplicates.map((d) => d.number).join('、')}`));
    }
    const buttons = h('div', { class: 'buttons' });
    if (e.state === 'failed' && e.kind === 'case' && !e.caseId) buttons.append(button('修改', () => (location.hash = `#edit/${e.id}`), 'edit'));
    if (e.state === 'failed' || (e.state === 'waiting' && navigator.onLine)) buttons.append(button('重试', () => outbox.retry(e.id), 'retry'));
    if (e.state === 'failed') buttons.append(button('删除', () => confirm('删除这条未发送的内容？') && outbox.discard(e.id), 'discard'));
    if (e.caseId) buttons.append(button('查看', () => (location.hash = `#case/${e.caseId}`), 'open'));
    if (buttons.childNodes.length) li.append(buttons);
    ul.append(li);
  }
  if (!all.length) ul.append(h('li', { class: 'muted' }, '队列为空'));
}

function entryTitle(e) {
  const steps = { pause: '暂停', resume: '继续', end: '结束' };
  switch (e.kind) {
    case 'case':
      return e.body.title;
    case 'verify':
      return `核查：${e.title || `事件 ${e.caseId}`}（${e.body.passed ? '通过' : '退回重办'}）`;
    case 'evaluate':
      return `回访：${e.title || `事件 ${e.caseId}`}（${SATISFACTION[e.body.satisfaction]}）`;
    case 'patrol':
      return `开始巡查：${e.title}`;
    case 'patrol-step':
      return `${steps[e.step]}巡查：${e.title}`;
    case 'points':
      return `巡查轨迹：${e.body.points.length} 个定位点`;
    case 'checkin':
      return `打卡：${e.title}`;
    case 'visit':
      return `走访：${e.title}`;
    case 'dispute':
      return `纠纷上报：${e.title}`;
    case 'task':
      return `任务${{ accept: '接受', done: '办结', decline: '拒绝' }[e.action]}：${e.title}`;
    default:
      return e.kind;
  }
}

function resultText(e) {
  const r = e.result;
  if (!r) return '';
  if (e.kind === 'points') return `服务器收到 ${r.received} 个，新存 ${r.stored} 个${r.duplicates ? `，重复 ${r.duplicates} 个（未重复保存）` : ''}${r.dropped.length ? `，舍弃 ${r.dropped.length} 个` : ''}`;
  if (e.kind === 'checkin') return r.accepted ? `打卡成功（距打卡点 ${Math.round(r.distance_m)} 米）` : `已记录，但不在打卡范围内（距 ${Math.round(r.distance_m)} 米）`;
  if (e.kind === 'patrol-step' && e.step === 'end' && r.distance_m != null) return `巡查里程 ${Math.round(r.distance_m)} 米，用时 ${Math.round(r.duration_s / 60)} 分钟`;
  if (e.kind === 'visit' && r.case_id) return `已同时上报事件 ${r.case_id}`;
  if (e.kind === 'dispute') return `纠纷已登记${r.case_number ? ` ${r.case_number}` : ''}${r.escalated_to ? '：高风险，已报综治中心' : ''}`;
  return '';
}

// ---- patrol, check-ins, visits -------------------------------------------------------------

function renderPatrol() {
  const p = patrol.current;
  $('#patrol-idle').hidden = Boolean(p);
  $('#patrol-live').hidden = !p;
  if (!p) {
    const here = S.position && sync.gridAt(S.grids, S.position.lon, S.position.lat);
    if (!S.patrolGrid || !S.grids.some((g) => g.id === S.patrolGrid)) S.patrolGrid = (here || S.grids[0] || {}).id || null;
    const box = clear($('#patrol-grids'));
    for (const g of S.grids) {
      const l = h('label', {}, h('input', { type: 'radio', name: 'patrol-grid', value: String(g.id) }), ` ${g.name}`);
      const input = l.querySelector('input');
      input.checked = g.id === S.patrolGrid;
      input.addEventListener('change', () => (S.patrolGrid = g.id));
      box.append(l);
    }
    if (!S.grids.length) box.append(h('p', { class: 'muted' }, '暂无网格（联网后自动获取）'));
    $('#patrol-start').disabled = !S.patrolGrid;
  } else {
    const label = { active: '巡查中', paused: '已暂停', ended: '已结束' }[p.status];
    const st = $('#patrol-status');
    st.textContent = `${label} · ${p.gridName}`;
    st.dataset.status = p.status;
    $('#patrol-pause').hidden = p.status !== 'active';
    $('#patrol-resume').hidden = p.status !== 'paused';
    $('#patrol-end').hidden = p.status === 'ended';
    $('#patrol-close').hidden = p.status !== 'ended';
    renderStats();
    const m = maps.patrol;
    m.mine = S.grids;
    m.track = p.track;
    if (!m.fitted) {
      const g = S.grids.find((x) => x.id === p.gridId);
      if (S.position) m.setView([S.position.lon, S.position.lat], 17);
      else if (g) m.fit([g]);
      m.fitted = true;
    }
  }
  renderCheckpoints();
}

async function renderStats() {
  const p = patrol.current;
  if (!p) return;
  const s = Math.round(patrol.seconds());
  const hms = `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  const entries = await outbox.entries();
  const waitingPts = entries.filter((e) => e.kind === 'points' && e.patrol === p.local && e.state !== 'done').reduce((n, e) => n + e.body.points.length, 0);
  const unsealed = (await store.all('track')).filter((x) => x.patrol === p.local).length;
  const stat = (dt, dd, key) => h('div', { 'data-stat': key }, h('dt', {}, dt), h('dd', {}, dd));
  clear($('#patrol-stats')).append(
    stat('用时', hms, 'time'),
    stat('里程（约）', `${Math.round(p.metres)} 米`, 'distance'),
    stat('定位点', `${p.recorded}`, 'points'),
    stat('待发送', `${waitingPts + unsealed}`, 'unsent'),
    stat('打卡', `${Object.keys(p.checkins).length}`, 'checkins'),
    stat('走访', `${p.visits}`, 'visits'),
  );
  if (maps.patrol) {
    maps.patrol.track = p.track;
    maps.patrol.draw();
  }
}

function renderCheckpoints() {
  const p = patrol.current;
  const gridId = p ? p.gridId : S.patrolGrid;
  const list = S.checkpoints.filter((c) => c.grid_id === gridId);
  const ul = clear($('#checkpoint-list'));
  if (maps.patrol) {
    maps.patrol.marks = list.map((c) => ({ lon: c.lon, lat: c.lat, radius: c.radius_m, done: Boolean(p && p.checkins[c.id]) }));
    maps.patrol.draw();
  }
  const here = S.position ? [S.position.lon, S.position.lat] : null;
  const near = list.map((c) => ({ c, d: here ? sync.distance(here, [c.lon, c.lat]) : null })).sort((a, b) => (a.d ?? 0) - (b.d ?? 0));
  for (const { c, d } of near) {
    const done = p && p.checkins[c.id];
    const inside = d != null && d <= c.radius_m + Math.min(S.position.accuracy, 50);
    const where = d == null ? '尚未定位' : `距 ${Math.round(d)} 米 · 范围 ${Math.round(c.radius_m)} 米${inside ? '' : '（不在范围内）'}`;
    const schedule = c.schedule === 'weekly' ? `每周 ${c.per_week} 次` : '每个工作日';
    const li = h('li', { class: `cp${done ? ' done' : ''}`, 'data-checkpoint': String(c.id) },
      h('span', { class: 'what' }, h('b', {}, c.name), h('span', { class: 'muted small' }, `${where} · ${schedule}`),
        done ? h('span', { class: 'small ok' }, `本次巡查已打卡 ${fmtTime(done.at)}`) : ''));
    const b = h('button', { type: 'button', 'data-do': 'checkin' }, done ? '再次打卡' : '打卡');
    b.addEventListener('click', () => onCheckin(c, d));
    li.append(b);
    ul.append(li);
  }
  if (!list.length) ul.append(h('li', { class: 'muted' }, gridId ? '这个网格没有打卡点' : '请先选择网格'));
}

async function onPatrolStart() {
  const g = S.grids.find((x) => x.id === S.patrolGrid);
  if (!g) return;
  maps.patrol.fitted = false;
  await patrol.start(g);
  toast(navigator.onLine ? '巡查已开始' : '巡查已开始（离线：轨迹保存在本机，联网后自动发送）');
  renderPatrol();
}

async function onCheckin(c, d) {
  if (!S.position) return toast('尚未获得定位，无法打卡');
  if (d > 1000) return toast(`距打卡点 ${Math.round(d)} 米，超过 1 公里，无法打卡`);
  const inside = d <= c.radius_m + Math.min(S.position.accuracy, 50);
  if (!inside && !confirm(`距打卡点约 ${Math.round(d)} 米，不在打卡范围内，仍要记录（将标记为异常）吗？`)) return;
  await patrol.checkin(c, S.position);
  toast(navigator.onLine ? `已打卡：${c.name}` : `已打卡：${c.name}（保存在本机，联网后发送）`);
  renderCheckpoints();
  renderStats();
}

function openVisit() {
  const f = $('#visit-form');
  for (const el of document.querySelectorAll('#visit-form .field-error')) el.textContent = '';
  const box = clear($('#purpose-list'));
  for (const p of S.purposes) {
    const l = h('label', {}, h('input', { type: 'radio', name: 'purpose', value: p.code }), ` ${p.name}`);
    l.querySelector('input').checked = p.code === S.purpose;
    l.querySelector('input').addEventListener('change', () => (S.purpose = p.code));
    box.append(l);
  }
  if (!S.purposes.length) box.append(h('p', { class: 'muted' }, '走访目的尚未下载（联网后自动获取）'));
  const sel = clear($('#visit-category'));
  for (const c of S.cats) sel.append(h('option', { value: c.code }, `${c.class_name} · ${c.name}`));
  $('#visit-case').hidden = f.outcome.value !== 'case_raised';
  renderBuildings();
}

function renderBuildings() {
  const q = $('#building-search').value.trim();
  const here = S.position ? [S.position.lon, S.position.lat] : null;
  const chosen = S.buildings.find((b) => b.id === S.building);
  $('#building-chosen').textContent = chosen ? `已选：${chosen.name}` : '未选择（按距离排列）';
  const hits = S.buildings
    .filter((b) => !q || b.name.includes(q) || (b.address || '').includes(q))
    .map((b) => ({ b, d: here && b.at ? sync.distance(here, b.at) : null }))
    .sort((x, y) => (x.d ?? 1e9) - (y.d ?? 1e9))
    .slice(0, q ? 30 : 8);
  const ul = clear($('#building-list'));
  for (const { b, d } of hits) {
    const btn = h('button', { type: 'button', 'data-building': String(b.id), class: b.id === S.building ? 'on' : '' },
      h('span', {}, b.name), h('small', {}, d != null ? `约 ${Math.round(d)} 米` : b.address || ''));
    btn.addEventListener('click', () => {
      S.building = b.id;
      renderBuildings();
    });
    ul.append(h('li', {}, btn));
  }
  if (!hits.length) ul.append(h('li', { class: 'muted' }, S.buildings.length ? '没有匹配的楼栋' : '楼栋尚未下载（联网后自动获取）'));
}

async function onVisit(ev) {
  ev.preventDefault();
  const f = ev.target;
  const errs = {};
  const b = S.buildings.find((x) => x.id === S.building);
  if (!b) errs.building = '请选择走访的楼栋';
  if (!S.purpose) errs.purpose = '请选择走访目的';
  const raise = f.outcome.value === 'case_raised';
  if (raise && !f.case_title.value.trim()) errs.case = '请填写发现的问题';
  for (const el of document.querySelectorAll('#visit-form .field-error')) el.textContent = errs[el.dataset.field] || '';
  if (Object.keys(errs).length) return;
  await patrol.visit(b, {
    purpose: S.purpose,
    outcome: f.outcome.value,
    note: f.note.value.trim() || null,
    ...(raise ? { case: { category: f.category.value, title: f.case_title.value.trim(), description: f.note.value.trim() } } : {}),
  });
  f.reset();
  S.building = null;
  toast(navigator.onLine ? '走访已保存，正在发送' : '走访已保存在本机，联网后自动发送');
  location.hash = '#patrol';
}

// ---- personal tasks ------------------------------------------------------------------------

const TASK_KINDS = { verification: '现场核查', callback: '回访', inspection: '检查', meeting_resolution: '会议决议' };
const TASK_STATES = { open: '待接受', accepted: '办理中', done: '已办结', declined: '已拒绝', cancelled: '已撤销', pending_approval: '待审批', refused: '未准入' };

let taskSeq = 0;
async function openTask(id, reload) {
  const seq = ++taskSeq; // a newer call (a change while this one waits) draws instead
  let t = S.mytasks.items.find((x) => x.id === id);
  if (reload && navigator.onLine) {
    try {
      S.mytasks = await sync.refreshTasks();
      t = S.mytasks.items.find((x) => x.id === id) || t;
    } catch (e) {
      if (!(e instanceof api.Offline)) toast(e.message);
    }
  }
  const all = await outbox.entries();
  if (seq !== taskSeq) return;
  const view = clear($('#task-view'));
  if (!t) {
    view.append(h('p', { class: 'muted' }, navigator.onLine ? '没有这项任务（可能已办结或撤销）' : '离线：这项任务尚未下载'));
    $('#task-form').hidden = true;
    return;
  }
  const pending = all.filter((e) => e.kind === 'task' && e.taskId === id && e.state !== 'done');
  const sent = all.filter((e) => e.kind === 'task' && e.taskId === id && e.state === 'done');
  const local = sent.length ? sent[sent.length - 1].result.state : null;
  const state = pending.length ? { accept: 'accepted', done: 'done', decline: 'declined' }[pending[pending.length - 1].action] : local && local !== t.state && ['open', 'accepted'].includes(t.state) ? local : t.state;
  view.append(
    h('h2', {}, t.title),
    h('p', { class: 'muted small' }, `${TASK_KINDS[t.kind] || t.kind} · 任务 ${t.id}`),
    h('p', { class: 'status', 'data-task-state': state }, TASK_STATES[state] || state),
    t.due_at ? h('p', { class: `due${t.overdue ? ' overdue' : ''}` }, `${t.overdue ? '已逾期，期限' : '期限'}：${fmtTime(t.due_at)}`) : '',
    t.description ? h('p', {}, t.description) : '',
  );
  if (t.case_id) view.append(h('a', { href: `#case/${t.case_id}`, class: 'button', 'data-do': 'task-case' }, '查看事件并现场核查'));
  for (const e of pending) view.append(h('p', { class: 'warn' }, `本机待发送：${entryTitle(e)}（${e.error ? e.error.detail : '等待发送'}）`));
  const form = $('#task-form');
  form.hidden = !['open', 'accepted'].includes(state);
  form.dataset.task = String(id);
  form.querySelector('[data-task="accept"]').hidden = state !== 'open';
  form.querySelector('[data-task="done"]').hidden = state !== 'accepted';
}

async function onTask(action) {
  const f = $('#task-form');
  const id = Number(f.dataset.task);
  const t = S.mytasks.items.find((x) => x.id === id);
  const note = f.note.value.trim();
  f.querySelector('.field-error[data-field="reason"]').textContent = '';
  if (action === 'decline' && note.length < 2) {
    f.querySelector('.field-error[data-field="reason"]').textContent = '拒绝任务请填写原因（至少两个字）';
    return;
  }
  await outbox.add({ id: outbox.uuid(), kind: 'task', action, taskId: id, title: t ? t.title : `任务 ${id}`, body: action === 'decline' ? { reason: note } : { note } }, []);
  f.reset();
  toast(navigator.onLine ? '已保存，正在发送' : '已保存在本机，联网后自动发送');
  openTask(id, false);
}

// ---- Web Push ------------------------------------------------------------------------------

const pushKey = () => `push:${api.userId()}`;

async function renderPush() {
  const el = $('#push-state');
  const btn = $('#push-enable');
  if (!('PushManager' in window) || !('Notification' in window) || !('serviceWorker' in navigator)) {
    el.textContent = '消息提醒：此浏览器不支持';
    btn.hidden = true;
    return;
  }
  const saved = await store.get('kv', pushKey());
  const on = saved && Notification.permission === 'granted';
  el.textContent = on ? '消息提醒：已开启（新任务、任务逾期、事件退回时提醒）' : Notification.permission === 'denied' ? '消息提醒：通知已被禁止，请在浏览器设置中允许' : '消息提醒：未开启（新任务、任务逾期、事件退回时提醒）';
  el.dataset.push = on ? 'on' : 'off';
  btn.hidden = Boolean(on) || Notification.permission === 'denied';
}

async function enablePush() {
  try {
    if ((await Notification.requestPermission()) !== 'granted') {
      toast('未允许通知，无法开启消息提醒');
      return renderPush();
    }
    await pushRegister();
    toast('消息提醒已开启');
  } catch (e) {
    toast(e instanceof api.Offline ? '需要联网才能开启消息提醒' : `无法开启消息提醒：${e.message}`);
  }
  renderPush();
}

/** Subscribe with the server's VAPID key and register the device (the same endpoint again is the
 * same device, now this worker's). */
async function pushRegister() {
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (!sub) {
    const { public_key } = await api.request('/api/v1/me/push/key');
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: unb64url(public_key) });
  }
  const saved = await api.request('/api/v1/me/push/subscriptions', {
    method: 'POST',
    json: { ...sub.toJSON(), user_agent: navigator.userAgent.slice(0, 300) },
  });
  await store.put('kv', { id: saved.id, endpoint: saved.endpoint }, pushKey());
}

/** At start: a device subscribed before (permission kept) is registered for this worker. */
async function pushRenew() {
  try {
    if (!('PushManager' in window) || Notification.permission !== 'granted' || !navigator.onLine) return;
    if (await store.get('kv', pushKey())) return;
    const reg = await navigator.serviceWorker.ready;
    if (await reg.pushManager.getSubscription()) await pushRegister();
  } catch (e) {
    console.warn('push', e.message);
  }
}

function unb64url(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

function button(label, fn, key) {
  const b = h('button', { type: 'button', 'data-do': key }, label);
  b.addEventListener('click', fn);
  return b;
}

boot();
