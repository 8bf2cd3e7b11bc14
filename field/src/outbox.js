// The outbox: every report or verification is saved here (IndexedDB) before anything is sent, with
// the Idempotency-Key made when it was entered. One sender at a time sends the entries in order:
// the case first, then each of its photos (one request each; the server keeps one copy of a photo
// sent twice). A network error or a 5xx/409/429 retries with backoff; a 4xx the worker must fix
// (a 422 names the field) stops the entry as "failed" until it is edited.
import { ApiError, Offline, SignedOut, request, userId } from './api.js';
import * as store from './store.js';

const BACKOFF_S = [2, 5, 15, 30, 60, 120, 300];
const FATAL = new Set([400, 403, 404, 413, 415, 422]);
const listeners = new Set();
export const onChange = (fn) => listeners.add(fn);
const changed = () => listeners.forEach((fn) => fn());
export const log = []; // what was sent, for the e2e test to read

export const uuid = () => crypto.randomUUID();

export async function entries() {
  const mine = (await store.all('outbox')).filter((e) => e.user === userId());
  return mine.sort((a, b) => (a.created < b.created ? -1 : 1));
}

/** Save a new entry and its photos (Blobs) in one transaction, then try to send. */
export async function add(entry, blobs) {
  const photos = blobs.map((b, i) => ({ key: `${entry.id}/${i}`, name: `photo-${i + 1}.jpg`, done: false }));
  const full = {
    state: 'waiting',
    attempts: 0,
    nextAt: 0,
    error: null,
    created: new Date().toISOString(),
    user: userId(),
    photos,
    ...entry,
  };
  await store.write([
    ['outbox', full],
    ...blobs.map((b, i) => ['blobs', b, photos[i].key]),
  ]);
  changed();
  kick();
  return full;
}

/** After a failure: the corrected body, a new key (the failed request made nothing), sent again. */
export async function resubmit(id, body) {
  const e = await store.get('outbox', id);
  Object.assign(e, { body, idem: uuid(), state: 'waiting', error: null, attempts: 0, nextAt: 0 });
  await store.put('outbox', e);
  changed();
  kick();
}

export async function retry(id) {
  const e = await store.get('outbox', id);
  Object.assign(e, { state: 'waiting', attempts: 0, nextAt: 0 });
  await store.put('outbox', e);
  changed();
  kick();
}

export async function discard(id) {
  const e = await store.get('outbox', id);
  await store.write([
    ['outbox', undefined, id, 'delete'],
    ...e.photos.map((p) => ['blobs', undefined, p.key, 'delete']),
  ]);
  changed();
}

let running = null;
let timer = null;
let paused = false; // signed out: wait for the next sign-in
export function resume() {
  paused = false;
  kick();
}

/** Send what is due now; one run at a time (and one tab at a time, where Web Locks exist). */
export function kick() {
  if (running) {
    running.again = true;
    return running;
  }
  const job = { again: false };
  const body = async () => {
    do {
      job.again = false;
      await sendDue();
    } while (job.again);
  };
  job.promise = (navigator.locks ? navigator.locks.request('wangge-outbox', body) : body()).finally(() => {
    running = null;
    schedule();
  });
  running = job;
  return job;
}

export async function flush() {
  const job = kick();
  await job.promise;
}

async function schedule() {
  clearTimeout(timer);
  if (!navigator.onLine) return;
  const due = (await entries()).filter((e) => e.state === 'waiting').map((e) => e.nextAt);
  if (!due.length || paused) return;
  timer = setTimeout(kick, Math.max(0, Math.min(...due) - Date.now()));
}

/** The network is back: what waits is due now, its backoff started afresh. */
export async function online() {
  for (const e of await entries()) {
    if (e.state !== 'waiting') continue;
    Object.assign(e, { attempts: 0, nextAt: 0 });
    await save(e);
  }
  kick();
}

async function sendDue() {
  // Offline, nothing is tried (and no backoff grows): the 'online' event brings the queue back.
  if (paused || !userId() || !navigator.onLine) return;
  for (const e of await entries()) {
    if (e.state !== 'waiting' || e.nextAt > Date.now()) continue;
    const ok = await send(e);
    changed();
    if (!ok && paused) return;
  }
}

async function save(e) {
  await store.put('outbox', e);
}

async function send(e) {
  try {
    if (e.kind === 'case' && !e.caseId) {
      const c = await request('/api/v1/cases', {
        method: 'POST',
        json: e.body,
        headers: { 'Idempotency-Key': e.idem },
      });
      log.push({ kind: 'case', id: e.id, caseId: c.id });
      Object.assign(e, { caseId: c.id, number: c.number, grid: c.grid, duplicates: c.duplicates || [], attempts: 0 });
      await store.put('cases', { ...c, actions: [] });
      await save(e);
    }
    if (e.kind in ACTIONS && !e.eventId) {
      e.eventId = await act(e);
      await save(e);
    }
    for (const p of e.photos) {
      if (p.done) continue;
      const stored = await store.get('blobs', p.key);
      if (!stored) throw new ApiError(422, { field: 'files', detail: '照片已丢失，请删除后重新拍摄' });
      // A fresh copy of the bytes for each attempt (a Blob read back from IndexedDB can go stale
      // after an upload that was cut off).
      const blob = new Blob([await stored.arrayBuffer()], { type: stored.type || 'image/jpeg' });
      const form = new FormData();
      form.append('files', blob, p.name);
      if (e.eventId) form.append('event_id', String(e.eventId));
      await request(`/api/v1/cases/${e.caseId}/attachments`, { method: 'POST', form });
      log.push({ kind: 'photo', id: e.id, caseId: e.caseId });
      p.done = true;
      e.attempts = 0; // progress: the next failure starts the backoff afresh
      await store.write([
        ['outbox', e],
        ['blobs', undefined, p.key, 'delete'],
      ]);
    }
    Object.assign(e, { state: 'done', error: null, sentAt: new Date().toISOString() });
    await save(e);
    return true;
  } catch (err) {
    if (err instanceof SignedOut) {
      paused = true;
      e.error = { detail: '登录已过期：重新登录后继续发送（内容已保存在本机）' };
    } else if (err instanceof ApiError && FATAL.has(err.status)) {
      const p = err.problem;
      const field = p.field || (p.errors && p.errors[0] && p.errors[0].field) || null;
      e.state = 'failed';
      e.error = { status: err.status, code: p.code || null, field, detail: p.detail || err.message };
    } else {
      e.attempts += 1;
      const wait = BACKOFF_S[Math.min(e.attempts - 1, BACKOFF_S.length - 1)] * 1000;
      e.nextAt = Date.now() + wait * (0.8 + 0.4 * Math.random());
      e.error = {
        detail: err instanceof Offline ? '网络不可用，稍后自动重试' : `暂时无法发送（${err.message}），稍后自动重试`,
      };
    }
    await save(e);
    return false;
  }
}

/** An action of the loop (verify on site, evaluate = the resident callback): If-Match is the
 * version the worker saw, so a replay (response lost after the server committed) answers 412, and
 * the case's timeline tells whether our step is there. */
const ACTIONS = {
  verify: (body) => (body.passed ? 'verified' : 'rework'),
  evaluate: () => 'closed',
};

async function act(e) {
  const path = `/api/v1/cases/${e.caseId}`;
  try {
    const c = await request(`${path}/actions/${e.kind}`, {
      method: 'POST',
      json: e.body,
      headers: { 'If-Match': `"${e.baseVersion}"` },
    });
    log.push({ kind: e.kind, id: e.id, caseId: e.caseId });
    await store.put('cases', { ...c, actions: c.allowed_actions || [] });
    return mine(c, e.kind).id;
  } catch (err) {
    if (!(err instanceof ApiError) || ![409, 412].includes(err.status)) throw err;
    const c = await request(path);
    const step = mine(c, e.kind);
    if (step && step.to_status === ACTIONS[e.kind](e.body) && c.version > e.baseVersion) {
      await store.put('cases', { ...c, actions: c.allowed_actions || [] });
      return step.id;
    }
    throw new ApiError(422, { field: e.kind === 'verify' ? 'passed' : 'satisfaction', detail: `事件已变化（${c.status_label}），无法提交` });
  }
}

function mine(c, action) {
  const steps = (c.timeline || []).filter((s) => s.action === action && s.actor && s.actor.id === userId());
  return steps[steps.length - 1] || null;
}
