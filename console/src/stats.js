// The period's evaluation figures (考评). From the statistics endpoint when the server has it;
// otherwise counted here from the period's cases the console has loaded (and marked 估算).
import { api } from './api.js';
import { esc } from './queue.js';

const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)}%` : '—');

export function period() {
  const [y, m] = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit' })
    .format(new Date()).split('-');
  const next = m === '12' ? `${Number(y) + 1}-01` : `${y}-${String(Number(m) + 1).padStart(2, '0')}`;
  return { label: `${y}年${Number(m)}月`, since: `${y}-${m}-01T00:00:00`, until: `${next}-01T00:00:00` };
}

// Figures counted from the cases themselves (a fallback; the server's statistics are authoritative).
export function countFigures(cases, overdue, capped) {
  const counted = cases.filter((c) => c.status !== 'rejected' && c.duplicate_of === null);
  const closed = counted.filter((c) => c.status === 'closed').length;
  const rated = counted.filter((c) => c.satisfaction && c.satisfaction !== 'unreachable');
  const happy = rated.filter((c) => ['satisfied', 'basically_satisfied'].includes(c.satisfaction)).length;
  return [
    ['上报', `${capped ? '≥' : ''}${cases.length}`],
    ['已办结', closed],
    ['办结率', pct(closed, counted.length)],
    ['超期', overdue.length],
    ['现场处置', counted.filter((c) => c.on_spot).length],
    ['满意率', pct(happy, rated.length)],
  ];
}

export async function serverFigures(p) {
  try {
    return await api('/api/v1/stats/summary', { query: { since: p.since, until: p.until } });
  } catch {
    return null;
  }
}

export function render(el, p, figures, source) {
  el.innerHTML = `<span class="period">${esc(p.label)}${source === 'local' ? '<small title="由本台已加载的事件计算">（估算）</small>' : ''}</span>${figures
    .map(([k, v]) => `<span class="figure" data-figure="${esc(k)}"><b>${esc(v)}</b><small>${esc(k)}</small></span>`).join('')}`;
}
