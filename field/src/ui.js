// DOM helpers (no innerHTML: every text goes in as text).
export const $ = (s) => document.querySelector(s);

export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== '' && v != null) el.setAttribute(k, v);
  for (const k of kids) if (k !== '' && k != null) el.append(k);
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export const FIELD_LABELS = {
  category: '事项类别',
  title: '标题',
  description: '描述',
  location: '位置',
  files: '照片',
  passed: '核查结果',
  satisfaction: '回访结果',
  note: '说明',
  'lon,lat': '位置',
  patrol: '巡查',
  patrol_id: '巡查',
  grid_id: '网格',
  points: '轨迹点',
  purpose: '走访目的',
  outcome: '走访结果',
  case: '上报事件',
  task: '任务',
  reason: '原因',
  at: '时间',
};

let toastTimer = null;
export function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.classList.add('on');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('on'), 3000);
}

const FMT = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
});
export const fmtTime = (iso) => (iso ? FMT.format(new Date(iso)) : '');
