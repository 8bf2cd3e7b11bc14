// 纠纷与走访计划: the worker's follow-up visits after a mediation agreement (回访, GET
// /api/v1/me/dispute-followups: does the agreement hold?), the households due a visit by their
// residents' tags (GET /api/v1/me/visit-plan), and a dispute screening report (排查上报) in one of
// the worker's grids, on the running patrol when there is one. The report goes through the outbox
// like a case (saved on the phone first, sent when the network is there, once); the follow-ups and
// the plan need the network (a follow-up that does not hold sends the dispute back to mediation at
// once): offline, the screen says so and keeps the report form.
import * as api from './api.js';
import * as outbox from './outbox.js';
import { clear, fmtTime, h, toast } from './ui.js';

const RISK = { low: '低风险', medium: '中风险', high: '高风险' };
const KINDS = [
  ['neighbour', '邻里纠纷'], ['family', '婚姻家庭'], ['property', '物业纠纷'], ['labour', '劳资纠纷'],
  ['land', '土地权属'], ['contract', '合同纠纷'], ['other', '其他'],
];

const problemText = (e) => (e instanceof api.ApiError ? e.problem.detail || e.message : e.message);

async function followUp(item, holds, note) {
  await api.request(`/api/v1/disputes/${item.dispute_id}/followups`, {
    method: 'POST',
    json: { n: item.n, holds, note: note || null },
  });
  toast(holds ? '已记录：协议履行良好' : '已记录：协议未履行，纠纷退回调解');
}

function followUpItem(item) {
  const note = h('input', { type: 'text', maxlength: '2000', placeholder: '回访说明（可选）', 'aria-label': '回访说明' });
  return h(
    'li',
    { 'data-followup': `${item.dispute_id}/${item.n}`, class: item.overdue ? 'overdue' : '' },
    h('b', {}, item.title),
    h('span', { class: 'muted small' }, `第 ${item.n} 次回访 · ${RISK[item.risk] || item.risk} · 应于 ${fmtTime(item.due_at)}${item.overdue ? '（已逾期）' : ''}`),
    note,
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'button', class: 'primary-inline', 'data-holds': 'true' }, '协议履行'),
      h('button', { type: 'button', 'data-holds': 'false' }, '未履行'),
    ),
  );
}

function wireButtons(li, item, rerender) {
  const note = li.querySelector('input');
  for (const b of li.querySelectorAll('[data-holds]')) {
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await followUp(item, b.dataset.holds === 'true', note.value.trim());
        rerender();
      } catch (e) {
        toast(problemText(e));
        b.disabled = false;
      }
    });
  }
}

function screeningForm(grids, patrolLocal) {
  const grid = h('select', { name: 'grid', 'aria-label': '网格' }, ...grids.map((g) => h('option', { value: String(g.id) }, g.name)));
  const kind = h('select', { name: 'kind', 'aria-label': '纠纷类型' }, ...KINDS.map(([v, l]) => h('option', { value: v }, l)));
  const risk = h('select', { name: 'risk', 'aria-label': '风险等级' }, ...Object.entries(RISK).map(([v, l]) => h('option', { value: v }, l)));
  const title = h('input', { name: 'title', maxlength: '200', required: 'required', placeholder: '一句话说明纠纷' });
  const parties = h('input', { name: 'parties', maxlength: '400', required: 'required', placeholder: '当事人，用顿号分隔' });
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h(
    'form',
    { id: 'screen-form', class: 'card', novalidate: 'novalidate' },
    h('h3', {}, patrolLocal ? '排查上报（本次巡查）' : '排查上报'),
    h('label', {}, '网格 ', grid), h('label', {}, '类型 ', kind), h('label', {}, '风险 ', risk),
    h('label', {}, '标题 ', title), h('label', {}, '当事人 ', parties), error,
    h('button', { type: 'submit', class: 'primary' }, '上报纠纷'),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const names = parties.value.split(/[、,，]/).map((s) => s.trim()).filter(Boolean);
    const body = {
      title: title.value.trim(), kind: kind.value, risk: risk.value,
      parties: names.map((name) => ({ name })),
    };
    if (!body.title || !names.length) {
      error.textContent = !body.title ? '请填写标题' : '请填写当事人';
      return;
    }
    const entry = await outbox.add(
      { id: outbox.uuid(), kind: 'dispute', patrol: patrolLocal, gridId: Number(grid.value), title: body.title, body },
      [],
    );
    toast(navigator.onLine ? '已保存，正在上报（见“待发送”）' : '已保存在本机，联网后自动上报');
    form.reset();
    form.dataset.entry = entry.id;
  });
  return form;
}

export async function renderDisputes(el, { grids, patrolLocal }) {
  const rerender = () => renderDisputes(el, { grids, patrolLocal });
  let queue;
  let plan;
  try {
    [queue, plan] = await Promise.all([
      api.request('/api/v1/me/dispute-followups'),
      api.request('/api/v1/me/visit-plan').catch(() => ({ items: [] })),
    ]);
  } catch (e) {
    clear(el).append(h('h2', {}, '纠纷与走访'), h('p', { class: 'muted', id: 'disputes-offline' }, e instanceof api.Offline ? '需要联网：纠纷回访与走访计划只在联网时显示；纠纷上报可离线填写，联网后自动发送' : problemText(e)));
    if (grids.length) el.append(screeningForm(grids, patrolLocal));
    return;
  }
  clear(el).append(h('h2', {}, '纠纷与走访'), h('h3', {}, `待回访（${queue.items.length}）`));
  const list = h('ul', { class: 'list', id: 'followup-list' });
  for (const item of queue.items) {
    const li = followUpItem(item);
    wireButtons(li, item, rerender);
    list.append(li);
  }
  if (!queue.items.length) list.append(h('li', { class: 'muted' }, '暂无待回访的纠纷'));
  el.append(list);
  const due = plan.items.filter((x) => x.due);
  el.append(h('h3', {}, `应走访的户（${due.length}）`));
  const pl = h('ul', { class: 'list', id: 'visit-plan' });
  for (const x of due) {
    pl.append(h('li', { 'data-household': String(x.household_id) }, h('b', {}, x.house), h('span', { class: 'muted small' }, `每 ${x.every_days} 天 · 上次 ${x.last_visit_at ? fmtTime(x.last_visit_at) : '从未走访'}`)));
  }
  if (!due.length) pl.append(h('li', { class: 'muted' }, '暂无到期的走访'));
  el.append(pl);
  if (grids.length) el.append(screeningForm(grids, patrolLocal));
}
