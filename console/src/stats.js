// The period's evaluation figures (考评): from GET /api/v1/stats/indicators for the caller's own
// unit (district for the centre, street, community, grid worker, department); on a server without
// the statistics endpoint, counted here from the period's cases the console loaded (marked 估算).
import { api } from './api.js';
import { esc } from './queue.js';

// The figures shown, with their labels for a period that has no row yet (no cases).
const SHOWN = {
  received: '受理数', closed: '结案数', closure_rate: '结案率', overdue_now: '当前超期数',
  sign_in_on_time_rate: '按时签收率', handled_on_time_rate: '按期处置率', satisfaction_rate: '满意率',
};
const UNIT_OF_ROLE = [
  ['admin', 'district'], ['centre', 'district'], ['street', 'street'], ['community', 'community'],
  ['governance', 'community'], ['grid_leader', 'community'], ['grid_worker', 'worker'],
  ['department', 'department'],
];

const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)}%` : '—');

export function period() {
  const [y, m] = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit' })
    .format(new Date()).split('-');
  const next = m === '12' ? `${Number(y) + 1}-01` : `${y}-${String(Number(m) + 1).padStart(2, '0')}`;
  return { label: `${y}年${Number(m)}月`, since: `${y}-${m}-01T00:00:00`, until: `${next}-01T00:00:00` };
}

function display(f) {
  if (f.denominator !== undefined && f.denominator !== null) return pct(f.numerator, f.denominator);
  if (f.mean !== undefined && f.mean !== null) return f.mean.toFixed(1);
  return f.value ?? '—';
}

// The server's figures for the caller's unit: {unit, figures: [[key, label, shown]], rating}, or
// null when the server has no statistics endpoint.
export async function serverFigures(roles) {
  const unit = (UNIT_OF_ROLE.find(([r]) => roles.includes(r)) || [null, 'district'])[1];
  let table;
  try {
    table = await api('/api/v1/stats/indicators', { query: { unit, period: 'month' } });
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
  const row = table.items[0];
  const figures = Object.entries(SHOWN).map(([k, label]) => {
    const f = row?.figures[k];
    return [k, f?.label ?? label, f ? display(f) : k.endsWith('_rate') ? '—' : 0, f?.cases_url];
  });
  return { unit: row?.unit?.name || '', figures, rating: row?.rating_label || '本期暂无事件' };
}

// Figures counted from the cases themselves (the fallback).
export function countFigures(cases, overdue, capped) {
  const counted = cases.filter((c) => c.status !== 'rejected' && c.duplicate_of === null);
  const closed = counted.filter((c) => c.status === 'closed').length;
  const rated = counted.filter((c) => c.satisfaction && c.satisfaction !== 'unreachable');
  const happy = rated.filter((c) => ['satisfied', 'basically_satisfied'].includes(c.satisfaction)).length;
  return {
    unit: '',
    figures: [
      ['received', '上报', `${capped ? '≥' : ''}${cases.length}`],
      ['closed', '已办结', closed],
      ['closure_rate', '办结率', pct(closed, counted.length)],
      ['overdue_now', '超期', overdue.length],
      ['on_spot', '现场处置', counted.filter((c) => c.on_spot).length],
      ['satisfaction_rate', '满意率', pct(happy, rated.length)],
    ],
  };
}

export function render(el, p, data, source) {
  const title = `${data.unit ? `${data.unit} · ` : ''}${p.label}`;
  el.dataset.source = source;
  // A figure from the server links to the cases behind it (`cases_url`): a click lists them.
  el.innerHTML = `<span class="period">${esc(title)}${source === 'local' ? '<small title="由本台已加载的事件计算">（估算）</small>' : ''}${data.rating ? `<br><small>${esc(data.rating)}</small>` : ''}</span>${data.figures
    .map(([k, label, v, url]) => (url
      ? `<button type="button" class="figure" data-figure="${esc(k)}" data-url="${esc(url)}" data-label="${esc(label)}" title="查看明细"><b>${esc(v)}</b><small>${esc(label)}</small></button>`
      : `<span class="figure" data-figure="${esc(k)}"><b>${esc(v)}</b><small>${esc(label)}</small></span>`)).join('')}`;
}
