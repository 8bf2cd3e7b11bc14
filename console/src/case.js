// The case panel: the case, its assignments and deadlines, photos, timeline, and the actions the
// caller may take now (the server's `allowed_actions`), each sent with If-Match (the case's ETag).
import { api, blobUrl } from './api.js';
import { esc, hhmm } from './queue.js';

const REASON = [{ name: 'reason', label: '理由', type: 'textarea', required: true }];
const NOTE = [{ name: 'note', label: '备注', type: 'textarea' }];
const ACTIONS = {
  dispatch: { label: '派遣', primary: true, fields: [{ name: 'lead_department_id', label: '主办部门', type: 'department' }, ...NOTE] },
  decide_extension: { label: '审批延期', fields: [{ name: 'approve', label: '决定', type: 'approve' }, ...NOTE] },
  whistle: { label: '吹哨上报', fields: [...REASON, { name: 'department_ids', label: '报到部门', type: 'departments' }] },
  register: { label: '立案', fields: NOTE },
  reject: { label: '不予立案', fields: REASON },
  suspend: { label: '中止', fields: REASON },
  resume: { label: '恢复办理', fields: NOTE },
  reopen: { label: '重新办理', fields: REASON },
  on_spot: { label: '现场处置', fields: NOTE },
  sign_in: { label: '报到', fields: NOTE },
  return: { label: '退回', fields: REASON },
  request_extension: { label: '申请延期', fields: [{ name: 'amount', label: '时长', type: 'number' }, { name: 'unit', label: '单位', type: 'unit' }, { name: 'reason', label: '理由', type: 'textarea', required: true }] },
  feedback: { label: '办结反馈', fields: NOTE },
  verify: { label: '核查', fields: [{ name: 'passed', label: '结果', type: 'passed' }, ...NOTE] },
  evaluate: { label: '满意度', fields: [{ name: 'satisfaction', label: '评价', type: 'satisfaction' }, ...NOTE] },
};
const ASSIGNMENT_STATES = {
  dispatched: '待报到', handling: '办理中', suspended: '已中止', rework: '返工', feedback: '已反馈',
  done: '已完成', returned: '已退回', withdrawn: '已撤回',
};
const SELECTS = {
  approve: [['true', '批准'], ['false', '不批准']],
  passed: [['true', '通过'], ['false', '不通过（返工）']],
  unit: [['hours', '工作小时'], ['days', '工作日']],
  satisfaction: [['satisfied', '满意'], ['basically_satisfied', '基本满意'], ['dissatisfied', '不满意'], ['unreachable', '无法联系']],
};

let departments = null;
async function departmentList() {
  departments ??= await api('/api/v1/departments');
  return departments;
}

function field(f, depts) {
  const id = `f-${f.name}`;
  let input;
  if (f.type === 'textarea') input = `<textarea id="${id}" name="${f.name}" rows="2" maxlength="2000" ${f.required ? 'required' : ''}></textarea>`;
  else if (f.type === 'number') input = `<input id="${id}" name="${f.name}" type="number" min="0.5" max="60" step="0.5" value="1" required>`;
  else if (f.type === 'department') input = `<select id="${id}" name="${f.name}"><option value="">按路由规则自动</option>${depts.map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join('')}</select>`;
  else if (f.type === 'departments') input = `<select id="${id}" name="${f.name}" multiple size="4">${depts.map((d) => `<option value="${d.id}">${esc(d.name)}</option>`).join('')}</select>`;
  else input = `<select id="${id}" name="${f.name}">${SELECTS[f.type].map(([v, l]) => `<option value="${v}">${l}</option>`).join('')}</select>`;
  return `<label for="${id}">${f.label}</label>${input}`;
}

function bodyOf(form, spec) {
  const body = {};
  for (const f of spec.fields) {
    const el = form.elements[f.name];
    if (f.type === 'departments') body[f.name] = [...el.selectedOptions].map((o) => Number(o.value));
    else if (f.type === 'department') { if (el.value) body[f.name] = Number(el.value); }
    else if (f.type === 'approve' || f.type === 'passed') body[f.name] = el.value === 'true';
    else if (f.type === 'number') body[f.name] = Number(el.value);
    else body[f.name] = el.value;
  }
  return body;
}

export class CasePanel {
  constructor(el, { onActed, toast }) {
    this.el = el;
    this.onActed = onActed;
    this.toast = toast;
    this.caseId = null;
    this.detail = null;
    this.urls = [];
    el.addEventListener('click', (e) => this.click(e));
    el.addEventListener('submit', (e) => this.submit(e));
  }

  async open(id) {
    this.caseId = id;
    this.el.classList.remove('empty');
    this.el.innerHTML = '<p class="muted">加载中…</p>';
    await this.reload();
  }

  async reload() {
    if (this.caseId === null) return;
    const id = this.caseId;
    try {
      const detail = await api(`/api/v1/cases/${id}`);
      if (id !== this.caseId) return;
      this.detail = detail;
      await this.render(detail);
    } catch (e) {
      this.el.innerHTML = `<p class="error">${esc(e.message)}</p>`;
    }
  }

  async render(c) {
    for (const u of this.urls) URL.revokeObjectURL(u);
    this.urls = [];
    const depts = c.allowed_actions.some((a) => ['dispatch', 'whistle'].includes(a)) ? await departmentList() : [];
    const ext = c.assignments.find((a) => a.extension && a.extension.state === 'pending')?.extension;
    // The server allows by status and post; an extension can only be decided while one is pending.
    const acts = c.allowed_actions.filter((a) => ACTIONS[a] && (a !== 'decide_extension' || ext));
    this.el.innerHTML = `
      <header class="case-head" data-status="${esc(c.status)}">
        <div class="row"><span class="number">${esc(c.number)}</span><span id="case-status" class="status s-${esc(c.status)}">${esc(c.status_label)}</span></div>
        <h2>${esc(c.title)}</h2>
        ${c.urgency !== 'normal' ? `<span class="badge urgent">${esc(c.urgency_label)}</span>` : ''}
      </header>
      <dl class="facts">
        <dt>类别</dt><dd>${esc(c.category.class_name)} / ${esc(c.category.name)}</dd>
        <dt>位置</dt><dd>${esc([c.street?.name, c.community?.name, c.grid?.name].filter(Boolean).join(' · ') || '未定位')}${c.address ? `<br>${esc(c.address)}` : ''}</dd>
        <dt>上报</dt><dd>${esc(c.reporter?.name || '')} ${esc(hhmm(c.reported_at))}</dd>
        ${c.resident ? `<dt>群众</dt><dd>${esc(c.resident.name || '')} ${esc(c.resident.phone || '')}</dd>` : ''}
        ${c.lead_department ? `<dt>主办</dt><dd>${esc(c.lead_department.name)}</dd>` : ''}
        ${c.description ? `<dt>描述</dt><dd>${esc(c.description)}</dd>` : ''}
      </dl>
      ${c.assignments.length ? `<h3>承办</h3><ul class="assignments">${c.assignments.map((a) => `
        <li class="${a.overdue ? 'overdue' : ''}">${esc(a.department.name)}（${a.role === 'lead' ? '主办' : '协办'}）${esc(ASSIGNMENT_STATES[a.state] || a.state)}
        <span class="muted">报到时限 ${esc(hhmm(a.sign_in_due))}${a.handle_due ? ` · 办理时限 ${esc(hhmm(a.handle_due))}` : ''}${a.hours_left !== null ? ` · 剩余 ${a.hours_left.toFixed(1)} 工时` : ''}</span>
        ${a.overdue ? '<span class="badge urgent">超期</span>' : ''}</li>`).join('')}</ul>` : ''}
      ${ext ? `<p id="extension-request" class="badge">延期申请：${esc(ext.amount)} ${ext.unit === 'days' ? '工作日' : '工作小时'} — ${esc(ext.reason || '')}</p>` : ''}
      ${acts.length ? `<h3>可执行操作</h3><div class="actions">${acts.map((a) => `<button type="button" class="${ACTIONS[a].primary ? 'primary' : ''}" data-action="${a}">${ACTIONS[a].label}</button>`).join('')}</div>
        ${acts.map((a) => `<form class="action-form" data-form="${a}" hidden><h4>${ACTIONS[a].label}</h4>${ACTIONS[a].fields.map((f) => field(f, depts)).join('')}<div class="row"><button type="submit" class="primary">确认${ACTIONS[a].label}</button><button type="button" data-cancel>取消</button></div></form>`).join('')}` : ''}
      ${c.attachments.length ? `<h3>照片</h3><div class="photos">${c.attachments.map((p) => `<a href="#" data-photo="${p.id}" title="${esc(p.flags.join(' '))}"><img alt="照片 ${p.id}" data-thumb="${esc(p.thumbnail_url)}"></a>`).join('')}</div>` : ''}
      <h3>办理过程</h3>
      <ol class="timeline">${c.timeline.map((t) => `
        <li><time>${esc(hhmm(t.at))}</time> <b>${esc(t.action_label)}</b> ${esc(t.actor?.name || '系统')}${t.post?.title ? `（${esc(t.post.title)}）` : ''}
        ${t.note ? `<div class="note">${esc(t.note)}</div>` : ''}</li>`).join('')}</ol>`;
    for (const img of this.el.querySelectorAll('img[data-thumb]')) {
      blobUrl(img.dataset.thumb).then((u) => { this.urls.push(u); img.src = u; }).catch(() => { img.alt = '照片无法加载'; });
    }
  }

  click(e) {
    const act = e.target.closest('[data-action]')?.dataset.action;
    if (act) {
      for (const f of this.el.querySelectorAll('[data-form]')) f.hidden = f.dataset.form !== act;
      this.el.querySelector(`[data-form="${act}"]`)?.querySelector('select, textarea, input')?.focus();
      return;
    }
    if (e.target.closest('[data-cancel]')) {
      e.target.closest('form').hidden = true;
      return;
    }
    const photo = e.target.closest('[data-photo]');
    if (photo) {
      e.preventDefault();
      const p = this.detail.attachments.find((a) => a.id === Number(photo.dataset.photo));
      blobUrl(p.url).then((u) => { this.urls.push(u); window.open(u, '_blank', 'noopener'); });
    }
  }

  async submit(e) {
    e.preventDefault();
    const form = e.target;
    const action = form.dataset.form;
    const button = form.querySelector('[type=submit]');
    button.disabled = true;
    try {
      const updated = await api(`/api/v1/cases/${this.caseId}/actions/${action}`, {
        method: 'POST',
        body: bodyOf(form, ACTIONS[action]),
        etag: this.detail._etag || `"${this.detail.version}"`,
      });
      this.detail = updated;
      await this.render(updated);
      this.toast(`${ACTIONS[action].label}成功：${updated.number} → ${updated.status_label}`);
      this.onActed(updated);
    } catch (err) {
      button.disabled = false;
      if (err.status === 412 || err.status === 409) {
        this.toast(`${err.message}（已刷新为最新状态）`, true);
        await this.reload();
      } else {
        this.toast(err.message, true);
      }
    }
  }
}
