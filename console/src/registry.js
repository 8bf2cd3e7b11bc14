// The grid's ledger (网格台账): its size with the source (基础信息 or 填报), the base-data figures,
// the residents as the server masks them for the caller, and the grid's disputes (矛盾纠纷) with
// their case numbers and the community's dispute figures. Nothing here decrypts or unmasks: a
// reveal stays a purposeful, audited request of its own (not offered on the wall screen).
import { api } from './api.js';
import { esc } from './queue.js';

const SOURCE = { base_data: '来自基础信息', typed: '填报数' };
const RISK = { low: '低', medium: '中', high: '高' };
const DISPUTE_STATUS = {
  screened: '已排查', mediating: '调解中', referred: '会商研判', follow_up: '回访中', closed: '已化解', failed: '调解未成',
};

// The grids the caller serves (their posts' grids), else the first page of the grids it may list.
export async function gridsOf(me) {
  const seen = new Map();
  for (const p of me.posts) for (const g of p.grids || []) seen.set(g.id, g.name);
  if (seen.size) return [...seen].map(([id, name]) => ({ id, name }));
  const page = await api('/api/v1/grids', { query: { limit: 500 } });
  return page.items.map((g) => ({ id: g.id, name: g.name }));
}

async function optional(path, query) {
  try {
    return await api(path, query ? { query } : undefined);
  } catch (e) {
    if (e.status === 403 || e.status === 404) return null; // not the caller's to see
    throw e;
  }
}

const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)}%`);

export class Registry {
  constructor(el, { onCase }) {
    this.el = el;
    this.onCase = onCase;
    this.el.addEventListener('click', (e) => {
      const c = e.target.closest('[data-case]');
      if (c) this.onCase(Number(c.dataset.case));
    });
  }

  async open(gridId) {
    this.gridId = gridId;
    this.el.className = 'registry';
    this.el.innerHTML = '<p class="muted">加载中…</p>';
    const [grid, figures, residents, disputes] = await Promise.all([
      api(`/api/v1/grids/${gridId}`),
      optional(`/api/v1/grids/${gridId}/basedata/figures`),
      optional(`/api/v1/grids/${gridId}/residents`, { limit: 20 }),
      optional(`/api/v1/grids/${gridId}/disputes`),
    ]);
    const area = grid.community?.id
      ? await optional('/api/v1/dispute-figures', { area_id: grid.community.id })
      : null;
    if (gridId !== this.gridId) return; // another grid was chosen meanwhile
    this.el.innerHTML = `
      <h2>${esc(grid.name)} <span class="number">${esc(grid.code)}</span></h2>
      <dl class="size">
        <div><dt>户数</dt><dd data-size="households">${esc(grid.households ?? '—')}</dd><dd class="muted">${esc(SOURCE[grid.households_source] || '无数据')}</dd></div>
        <div><dt>人口</dt><dd data-size="population">${esc(grid.population ?? '—')}</dd><dd class="muted">${esc(SOURCE[grid.population_source] || '无数据')}</dd></div>
      </dl>
      ${figures ? `<h3>基础信息</h3><p class="figures">房屋 ${esc(figures.houses)} · 户 ${esc(figures.households)} · 实有人口 ${esc(figures.population)} · 户籍人口 ${esc(figures.registered)} · 单位 ${esc(figures.organisations)}</p>
        <p class="tags">${Object.entries(figures.by_tag).map(([k, n]) => `<span class="tag">${esc(k)} ${esc(n)}</span>`).join('') || '<span class="muted">无标签人员</span>'}</p>` : ''}
      ${residents ? `<h3>人员（${esc(residents.total)}，已脱敏）</h3>
        <table class="residents"><thead><tr><th>姓名</th><th>身份证号</th><th>电话</th><th>标签</th></tr></thead><tbody>
        ${residents.items.map((r) => `<tr><td>${esc(r.name ?? '（已清除）')}</td><td class="number">${esc(r.id_number ?? '')}</td><td class="number">${esc(r.phone ?? '')}</td><td>${esc(r.tags.join('、'))}</td></tr>`).join('') || '<tr><td colspan="4" class="muted">暂无人员</td></tr>'}
        </tbody></table>` : ''}
      ${disputes ? `<h3>矛盾纠纷（${esc(disputes.total)}）</h3>
        <ol class="disputes">${disputes.items.map((d) => `<li data-dispute="${d.id}" ${d.case_id ? `data-case="${d.case_id}" role="button" tabindex="0"` : ''}>
          <div class="row"><span class="number">${esc(d.case_number || '')}</span><span class="risk r-${esc(d.risk)}">${esc(RISK[d.risk])}风险</span><span class="status">${esc(DISPUTE_STATUS[d.status] || d.status)}</span></div>
          <div class="title">${esc(d.title)}</div>
          <div class="muted">当事人：${esc(d.parties.map((p) => p.name).join('、'))}${d.escalated_to ? ' · 已报综治中心' : ''}</div>
        </li>`).join('') || '<li class="muted">暂无纠纷</li>'}</ol>` : ''}
      ${area ? `<h3>社区纠纷化解</h3><p class="figures" data-figures="disputes">排查 ${esc(area.screened)} · 调解 ${esc(area.mediated)} · 化解 ${esc(area.closed)} · 成功率 ${esc(pct(area.success_rate))} · 重复纠纷 ${esc(area.repeat_disputes)}</p>` : ''}`;
  }
}
