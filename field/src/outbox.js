// The outbox: every report or verification is saved here (IndexedDB) before anything is sent, with
// the Idempotency-Key made when it was entered. One sender at a time sends the entries in order:
// the case first, then each of its photos (one request each; the server keeps one copy of a photo
// sent twice). A network error or a 5xx/409/429 retries with backoff; a 4xx the worker must fix
// (a 422 names the field) stops the entry as "failed" until it is edited.
// Field work goes the same way: a patrol's start (its client_id is the entry's id), its pauses,
// resumes and end, its track in batches (the fixes recorded land in the `track` store and are
// sealed into `points` entries by the sender), check-ins, visits, dispute screening reports and
// the answers to personal tasks. An entry that needs the patrol's server id waits for the start to be sent.
// The page and the service worker (Background Sync, sw.js) both send: the Web Lock keeps it to one
// at a time, and each run reads the entries afresh from IndexedDB.
import { ApiError, Offline, SignedOut, request, userId } from './api.js';
import * as store from './store.js';

const BACKOFF_S = [2, 5, 15, 30, 60, 120, 300];
const FATAL = new Set([400, 403, 404, 413, 415, 422]);
const listeners = new Set();
export const onChange = (fn) => listeners.add(fn);
// Other contexts (the service worker, another tab) are told too.
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('wangge-outbox') : null;
if (channel) channel.onmessage = () => listeners.forEach((fn) => fn());
const changed = () => {
  listeners.forEach((fn) => fn());
  if (channel) channel.postMessage('changed');
};
const BATCH = 200; // fixes per batch (the server takes up to 500)
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
  requestSync();
  return full;
}

/** Ask the browser for a Background Sync (the service worker sends the queue when the network is
 * back, even with the app closed). Where there is none, the next start sends it. */
export function requestSync() {
  if (typeof window === 'undefined' || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.ready
    .then((r) => r.sync && r.sync.register('outbox'))
    .catch(() => {});
}

/** The fixes recorded and not yet sent, in `points` entries of at most BATCH each. */
export function sealTrack() {
  return store.seal((points) => {
    const groups = new Map();
    for (const p of points.sort((a, b) => (a.at < b.at ? -1 : 1))) {
      const k = `${p.user}\u0000${p.patrol}`;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(p);
    }
    const made = [];
    const now = new Date().toISOString();
    for (const list of groups.values()) {
      for (let i = 0; i < list.length; i += BATCH) {
        const chunk = list.slice(i, i + BATCH);
        made.push({
          id: uuid(),
          kind: 'points',
          patrol: chunk[0].patrol,
          user: chunk[0].user,
          state: 'waiting',
          attempts: 0,
          nextAt: 0,
          error: null,
          created: now,
          photos: [],
          body: {
            crs: 'wgs84',
            points: chunk.map(({ id, at, lon, lat, accuracy_m, speed_mps }) => ({
              id,
              at,
              lon,
              lat,
              accuracy_m,
              ...(speed_mps != null ? { speed_mps } : {}),
            })),
          },
        });
      }
    }
    return made;
  });
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
  await dueNow();
  kick();
}

async function dueNow() {
  for (const e of await entries()) {
    if (e.state !== 'waiting') continue;
    Object.assign(e, { attempts: 0, nextAt: 0 });
    await save(e);
  }
}

/** The service worker's Background Sync: send everything now; what is still to send after. */
export async function drain() {
  await dueNow();
  await flush();
  return outstanding();
}

async function sendDue() {
  // Offline, nothing is tried (and no backoff grows): the 'online' event brings the queue back.
  if (paused || !userId() || !navigator.onLine) return;
  if (await sealTrack()) changed();
  for (const e of await entries()) {
    if (e.state !== 'waiting' || e.nextAt > Date.now()) continue;
    const ok = await send(e);
    changed();
    if (!ok && paused) return;
  }
}

/** What is still to send now (not failed, not waiting for a failed patrol start). */
export async function outstanding() {
  const all = await entries();
  return all.filter((e) => e.state === 'waiting' && !blockedBy(e, all));
}

function blockedBy(e, all) {
  if (!e.patrol || e.kind === 'patrol') return null;
  const start = all.find((x) => x.kind === 'patrol' && x.id === e.patrol);
  return start && start.state === 'failed' ? start : null;
}

/** The server's id of a patrol started on this device (null: its start is not sent yet). */
async function patrolId(local) {
  if (!local) return null;
  const start = await store.get('outbox', local);
  if (!start) throw new ApiError(422, { field: 'patrol_id', detail: '所属巡查已从本机删除' });
  if (!start.patrolId) throw new Waiting('等待巡查开始记录发送');
  return start.patrolId;
}
class Waiting extends Error {}

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
    if (e.kind in FIELD && !e.result) {
      e.result = await FIELD[e.kind](e);
      log.push({ kind: e.kind, id: e.id });
      e.attempts = 0;
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
    if (err instanceof Waiting) {
      e.error = { detail: err.message };
      e.nextAt = Date.now() + 5000; // looked at again after the start (no attempt counted)
      await save(e);
      return false;
    }
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

// ---- field work ----------------------------------------------------------------------------

const STATUS_AFTER = { pause: 'paused', resume: 'active', end: 'ended' };

const FIELD = {
  /** Start: the entry's id is the patrol's client_id, so a resent start answers the same patrol. */
  async patrol(e) {
    let p;
    try {
      p = await request('/api/v1/patrols', { method: 'POST', json: { ...e.body, client_id: e.id } });
    } catch (err) {
      // Another patrol of this worker is in progress (started elsewhere): the worker decides.
      if (err instanceof ApiError && err.status === 409) throw new ApiError(422, { ...err.problem, field: 'patrol' });
      throw err;
    }
    e.patrolId = p.id;
    return { id: p.id, status: p.status };
  },
  /** Pause, resume, end: a replay finds the patrol already in the state asked for. */
  async 'patrol-step'(e) {
    const id = await patrolId(e.patrol);
    const path = `/api/v1/patrols/${id}`;
    try {
      const p = await request(`${path}/${e.step}`, { method: 'POST', json: e.body });
      return { status: p.status, distance_m: p.distance_m, duration_s: p.duration_s };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409) throw err;
      const p = await request(path);
      if (p.status === STATUS_AFTER[e.step] || p.status === 'ended') return { status: p.status, replayed: true, distance_m: p.distance_m, duration_s: p.duration_s };
      throw new ApiError(422, { ...err.problem, field: 'patrol' });
    }
  },
  /** A batch of fixes: each has the phone's id, so a retried batch adds nothing. */
  async points(e) {
    const id = await patrolId(e.patrol);
    for (;;) {
      try {
        const r = await request(`/api/v1/patrols/${id}/points`, { method: 'POST', json: e.body });
        return { ...r, dropped: e.dropped || [] };
      } catch (err) {
        // One fix the server refuses (a time before the start, a point outside China): that fix
        // is left out (kept on the entry, named), the others are sent.
        const i = err instanceof ApiError && err.status === 422 ? err.problem.index : undefined;
        if (i === undefined || !e.body.points[i] || e.body.points.length < 2) throw err;
        const [bad] = e.body.points.splice(i, 1);
        e.dropped = [...(e.dropped || []), { ...bad, code: err.problem.code || null }];
        await save(e);
      }
    }
  },
  async checkin(e) {
    const patrol_id = await patrolId(e.patrol);
    const c = await request(`/api/v1/checkpoints/${e.checkpointId}/checkins`, {
      method: 'POST',
      json: { ...e.body, client_id: e.id, ...(patrol_id ? { patrol_id } : {}) },
    });
    return { id: c.id, accepted: c.accepted, distance_m: c.distance_m };
  },
  async visit(e) {
    const patrol_id = await patrolId(e.patrol);
    const v = await request(`/api/v1/buildings/${e.buildingId}/visits`, {
      method: 'POST',
      json: { ...e.body, client_id: e.id, ...(patrol_id ? { patrol_id } : {}) },
    });
    return { id: v.id, case_id: v.case_id };
  },
  /** A dispute screening report (排查上报): on the patrol it was raised on once that patrol's
   * start is sent, else in the grid chosen; the entry's id is its client_id, so a resend answers
   * the dispute stored the first time. */
  async dispute(e) {
    const patrol_id = await patrolId(e.patrol);
    const body = { ...e.body, client_id: e.id };
    const d = patrol_id
      ? await request(`/api/v1/patrols/${patrol_id}/disputes`, { method: 'POST', json: body })
      : await request(`/api/v1/grids/${e.gridId}/disputes`, { method: 'POST', json: { ...body, source: 'report' } });
    return { id: d.id, case_number: d.case_number || null, escalated_to: d.escalated_to || null };
  },
  /** Accept / done / decline a personal task: a replay finds the task in that state. */
  async task(e) {
    const target = { accept: 'accepted', done: 'done', decline: 'declined' }[e.action];
    try {
      const t = await request(`/api/v1/me/tasks/${e.taskId}/${e.action}`, { method: 'POST', json: e.body });
      return { state: t.state };
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409) throw err;
      const mine = await request(`/api/v1/me/tasks?state=${target}`);
      if (mine.items.some((t) => t.id === e.taskId)) return { state: target, replayed: true };
      throw new ApiError(422, { ...err.problem, field: 'task' });
    }
  },
};
