// The patrol on this device (巡查): started, paused, resumed and ended here, each step an outbox
// entry with the time it was taken; the fixes of the device's position while it runs are written
// to IndexedDB (`track`) one by one and sealed into batches by the sender, so nothing recorded is
// lost when the app is closed or the network is down. The patrol's own state (for the screen) is
// kept in `kv` under the worker's id. Check-ins and visits made during it name it.
import { userId } from './api.js';
import * as outbox from './outbox.js';
import * as store from './store.js';
import { distance } from './sync.js';

const MIN_STEP_M = 5; // a fix is kept when the device moved this far ...
const MIN_GAP_MS = 1000; // ... and at least this long after the last one,
const HEARTBEAT_MS = 30_000; // or this long after it, moved or not
const SEAL_EVERY = 30; // fixes: then the batch is sent (and at each pause and the end)
const TRACK_SHOWN = 2000; // fixes kept on the patrol for the map

export let current = null;
const listeners = new Set();
export const onChange = (fn) => listeners.add(fn);
const changed = () => listeners.forEach((fn) => fn());
const key = () => `patrol:${userId()}`;
let unsealed = 0;

export async function load() {
  current = (await store.get('kv', key())) || null;
  return current;
}

async function save() {
  await store.put('kv', current, key());
  changed();
}

export async function start(grid) {
  const at = new Date().toISOString();
  const local = outbox.uuid();
  current = {
    local,
    gridId: grid.id,
    gridName: grid.name,
    status: 'active',
    startedAt: at,
    pausedAt: null,
    pausedMs: 0,
    endedAt: null,
    recorded: 0,
    metres: 0,
    last: null,
    track: [],
    checkins: {},
    visits: 0,
  };
  await save();
  await outbox.add({ id: local, kind: 'patrol', title: grid.name, body: { grid_id: grid.id, started_at: at } }, []);
}

/** pause | resume | end, at the moment the worker taps it. */
export async function step(kind) {
  if (!current) return;
  const at = new Date().toISOString();
  if (kind === 'pause') Object.assign(current, { status: 'paused', pausedAt: at });
  if (kind === 'resume') {
    current.pausedMs += Date.parse(at) - Date.parse(current.pausedAt);
    Object.assign(current, { status: 'active', pausedAt: null });
  }
  if (kind === 'end') {
    if (current.pausedAt) current.pausedMs += Date.parse(at) - Date.parse(current.pausedAt);
    Object.assign(current, { status: 'ended', pausedAt: null, endedAt: at });
  }
  await save();
  await outbox.sealTrack();
  unsealed = 0;
  await outbox.add({ id: outbox.uuid(), kind: 'patrol-step', step: kind, patrol: current.local, title: current.gridName, body: { at } }, []);
}

/** Forget the ended patrol on this screen (its entries stay in the outbox until sent). */
export async function close() {
  if (!current || current.status !== 'ended') return;
  await store.del('kv', key());
  current = null;
  changed();
}

/** A position from the device: a fix of the track when the patrol runs. */
export async function fix(p) {
  if (!current || current.status !== 'active') return false;
  const t = p.timestamp || Date.now();
  // Only fixes taken during the patrol (a cached position can be older than the start).
  if (t < Date.parse(current.startedAt) || t > Date.now() + 60_000) return false;
  const at = [p.coords.longitude, p.coords.latitude];
  const last = current.last;
  if (last) {
    if (t <= last.t) return false;
    const moved = distance([last.lon, last.lat], at);
    if (!((moved >= MIN_STEP_M && t - last.t >= MIN_GAP_MS) || t - last.t >= HEARTBEAT_MS)) return false;
    if (p.coords.accuracy <= 50) current.metres += moved;
  }
  const point = {
    id: outbox.uuid(),
    patrol: current.local,
    user: userId(),
    at: new Date(t).toISOString(),
    lon: round7(at[0]),
    lat: round7(at[1]),
    accuracy_m: Math.round(Math.min(p.coords.accuracy, 100_000) * 10) / 10,
    speed_mps: p.coords.speed != null && Number.isFinite(p.coords.speed) && p.coords.speed >= 0 ? p.coords.speed : null,
  };
  // The patrol moves on before anything is awaited (a fix arriving meanwhile sees this one).
  current.recorded += 1;
  current.last = { t, lon: at[0], lat: at[1] };
  current.track.push(at);
  if (current.track.length > TRACK_SHOWN) current.track.splice(0, current.track.length - TRACK_SHOWN);
  await store.put('track', point);
  await save();
  unsealed += 1;
  if (unsealed >= SEAL_EVERY) {
    unsealed = 0;
    if (navigator.onLine) outbox.kick();
    else outbox.requestSync();
  }
  return true;
}

/** Time on patrol (pauses excluded), in seconds, as the device sees it. */
export function seconds(now = Date.now()) {
  if (!current) return 0;
  const end = current.endedAt ? Date.parse(current.endedAt) : current.pausedAt ? Date.parse(current.pausedAt) : now;
  return Math.max(0, (end - Date.parse(current.startedAt) - current.pausedMs) / 1000);
}

export async function checkin(cp, position) {
  const id = outbox.uuid();
  await outbox.add(
    {
      id,
      kind: 'checkin',
      checkpointId: cp.id,
      patrol: current && current.status !== 'ended' ? current.local : null,
      title: cp.name,
      body: {
        lon: round7(position.lon),
        lat: round7(position.lat),
        crs: 'wgs84',
        accuracy_m: Math.round(Math.min(position.accuracy, 100_000) * 10) / 10,
        at: new Date().toISOString(),
      },
    },
    [],
  );
  if (current) {
    current.checkins[cp.id] = { entry: id, at: new Date().toISOString() };
    await save();
  }
}

export async function visit(building, body) {
  await outbox.add(
    {
      id: outbox.uuid(),
      kind: 'visit',
      buildingId: building.id,
      patrol: current && current.status !== 'ended' ? current.local : null,
      title: building.name,
      body: { ...body, at: new Date().toISOString() },
    },
    [],
  );
  if (current) {
    current.visits += 1;
    await save();
  }
}

const round7 = (v) => Math.round(v * 1e7) / 1e7;
