// The queue of cases waiting for the caller's posts, the overdue list, and the period's cases
// (which also feed the map's live dots and, without hot-spot tiles, the choropleth).
import { api } from './api.js';

// Statuses in which each post takes the next step of the loop (README, "The closed loop").
const WAITING = {
  admin: ['reported', 'registered', 'whistled', 'returned'],
  centre: ['reported', 'registered', 'whistled', 'returned'],
  street: ['reported', 'registered', 'whistled', 'returned'],
  community: ['reported', 'registered', 'feedback', 'verified'],
  grid_leader: ['reported', 'registered', 'feedback', 'verified'],
  grid_worker: ['reported', 'registered', 'feedback', 'verified'],
  department: ['dispatched', 'handling', 'rework'],
};
const PERIOD_MAX = 2_000; // cases of the period drawn on the map (newest first)
const RECENT = 200; // the newest cases reloaded after a live event
const RELOAD_GAP_MS = 1_000; // at most one reload a second, however many events arrive
const FULL_RELOAD_MS = 60_000;

export const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
export const hhmm = (t) => (t ? t.slice(5, 16).replace('T', ' ') : '');

async function all(query, max) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('/api/v1/cases', { query: { ...query, limit: 500, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items.slice(0, max);
}

export class Queue {
  constructor(listEl, countEl, tabsEl, { roles, period, onSelect, onChange }) {
    this.listEl = listEl;
    this.countEl = countEl;
    this.tabsEl = tabsEl;
    this.statuses = [...new Set(roles.flatMap((r) => WAITING[r] || []))];
    this.period = period;
    this.onSelect = onSelect;
    this.onChange = onChange;
    this.tab = 'todo';
    this.lists = { todo: [], overdue: [], all: [], drill: [] };
    this.fresh = new Set();
    this.selected = null;
    this.extensionAsked = new Set(); // cases whose department asked for more time (from events)
    tabsEl.addEventListener('click', (e) => {
      const tab = e.target.closest('[data-tab]')?.dataset.tab;
      if (tab) { this.tab = tab; this.render(); }
    });
    listEl.addEventListener('click', (e) => {
      const li = e.target.closest('[data-id]');
      if (li) this.onSelect(Number(li.dataset.id));
    });
    listEl.addEventListener('keydown', (e) => {
      const li = e.target.closest('[data-id]');
      if (li && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        this.onSelect(Number(li.dataset.id));
      }
    });
  }

  // `full`: the period's whole list; otherwise only its newest page, merged into what we have
  // (live events are mostly about recent cases; a full reload follows at least once a minute).
  async load(full = true) {
    const since = this.period.since;
    const periodList = full || !this.lists.all.length
      ? all({ since }, PERIOD_MAX)
      : api('/api/v1/cases', { query: { since, limit: RECENT } }).then((page) => {
        const ids = new Set(page.items.map((c) => c.id));
        return [...page.items, ...this.lists.all.filter((c) => !ids.has(c.id))].slice(0, PERIOD_MAX);
      });
    if (full) this.lastFull = Date.now();
    const [todo, overdue, period] = await Promise.all([
      this.statuses.length ? all({ status: this.statuses }, 500) : [],
      all({ overdue: true }, 500),
      periodList,
    ]);
    const asked = this.extensionAsked.size
      ? period.filter((c) => this.extensionAsked.has(c.id) && ['handling', 'rework'].includes(c.status))
      : [];
    this.lists = { todo: [...asked, ...todo], overdue, all: period, drill: this.lists.drill };
    this.render();
    this.onChange(this);
  }

  // Every case the console knows of, once (for the map).
  cases() {
    const seen = new Map();
    // The period's list last: the queues were reloaded in full and are never older.
    for (const list of [this.lists.drill, this.lists.all, this.lists.overdue, this.lists.todo]) {
      for (const c of list) seen.set(c.id, { ...c, _fresh: this.fresh.has(c.id) });
    }
    return [...seen.values()];
  }

  find(id) {
    return this.cases().find((c) => c.id === id);
  }

  // A live event: remember the case as fresh for a minute, then reload the lists (throttled, so a
  // burst of events costs one reload).
  touch(ev) {
    if (ev.case_id) {
      this.fresh.add(ev.case_id);
      setTimeout(() => { this.fresh.delete(ev.case_id); this.render(); this.onChange(this); }, 60_000);
      if (ev.type === 'case.request_extension') this.extensionAsked.add(ev.case_id);
      if (ev.type === 'case.decide_extension') this.extensionAsked.delete(ev.case_id);
    }
    this.reloadWanted = true;
    if (this.reloadTimer) return;
    const wait = Math.max(250, (this.lastLoad || 0) + RELOAD_GAP_MS - Date.now());
    this.reloadTimer = setTimeout(async () => {
      this.reloadWanted = false;
      try {
        await this.load(Date.now() - (this.lastFull || 0) > FULL_RELOAD_MS);
      } catch {
        // the next event (or the minute's full reload) tries again
      }
      this.lastLoad = Date.now();
      this.reloadTimer = null;
      if (this.reloadWanted) this.touch({});
    }, wait);
  }

  // The cases behind one of the period's figures (its `cases_url`), in a tab of their own.
  async drill(label, url) {
    const page = await api(`${url}${url.includes('?') ? '&' : '?'}limit=500`);
    this.lists.drill = page.items;
    this.drillLabel = label;
    const tab = this.tabsEl.querySelector('[data-tab="drill"]');
    tab.hidden = false;
    tab.textContent = `明细：${label}`;
    this.tab = 'drill';
    this.render();
    this.onChange(this);
  }

  select(id) {
    this.selected = id;
    this.render();
  }

  render() {
    for (const b of this.tabsEl.querySelectorAll('[data-tab]')) {
      const n = this.lists[b.dataset.tab].length;
      b.setAttribute('aria-selected', String(b.dataset.tab === this.tab));
      b.dataset.count = n;
    }
    const list = this.lists[this.tab];
    this.countEl.textContent = {
      todo: `待我处置 ${list.length} 件`,
      overdue: `超期 ${list.length} 件`,
      all: `本期上报 ${list.length} 件`,
      drill: `${this.drillLabel || ''}：${list.length} 件${list.length >= 500 ? '（仅显示前 500 件）' : ''}`,
    }[this.tab];
    this.listEl.innerHTML = list.map((c) => `
      <li data-id="${c.id}" data-status="${esc(c.status)}" tabindex="0" role="button" class="${c.id === this.selected ? 'selected' : ''} ${this.fresh.has(c.id) ? 'fresh' : ''}">
        <div class="row"><span class="number">${esc(c.number)}</span><span class="status s-${esc(c.status)}">${esc(c.status_label)}</span></div>
        <div class="title">${esc(c.title)}</div>
        <div class="row muted"><span>${esc(c.category?.name)} · ${esc(c.grid?.name || c.community?.name || '未定位')}</span><span>${esc(hhmm(c.reported_at))}</span></div>
        ${c.urgency !== 'normal' ? `<span class="badge urgent">${esc(c.urgency_label)}</span>` : ''}
        ${this.extensionAsked.has(c.id) ? '<span class="badge">延期申请</span>' : ''}
      </li>`).join('') || '<li class="empty">暂无</li>';
  }
}
