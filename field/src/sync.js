// Caches for offline use: the worker (me), the own grids (with boundaries), the categories, and the
// cases in scope, the last ones caught up through /sync's cursor (changed cases come once, as they
// are now; `removed` ones are dropped; `tasks` say what the worker may do to each).
import { Offline, request } from './api.js';
import * as store from './store.js';

export const state = { syncs: 0, lastSync: null };

export async function refreshCatalogue() {
  const me = await request('/api/v1/me');
  await store.put('kv', me, 'me');
  const cats = await request('/api/v1/categories');
  await store.put('kv', cats, 'categories');
  const ids = [...new Set(me.posts.flatMap((p) => (p.grids || []).map((g) => g.id)))];
  const grids = [];
  for (const id of ids) grids.push(await request(`/api/v1/grids/${id}`));
  await store.put('kv', grids, 'grids');
  await refreshFieldWork(grids);
  return { me, cats, grids };
}

/** For field work offline: each grid's check-in points and buildings (WGS84), the visit
 * purposes, and the worker's own tasks (/me/tasks). One that fails keeps its cached copy. */
export async function refreshFieldWork(grids) {
  const keep = async (key, fn) => {
    try {
      await store.put('kv', await fn(), key);
    } catch (e) {
      if (!(e instanceof Offline)) console.warn('cache', key, e.message);
    }
  };
  await keep('checkpoints', async () => {
    const out = [];
    for (const g of grids) out.push(...(await request(`/api/v1/grids/${g.id}/checkpoints?crs=wgs84`)).filter((c) => c.active));
    return out;
  });
  await keep('buildings', async () => {
    const out = [];
    for (const g of grids) {
      const page = await request(`/api/v1/buildings?grid_id=${g.id}&limit=500&crs=wgs84`);
      out.push(...page.items.map((b) => ({ id: b.id, grid_id: b.grid_id, name: b.name, address: b.address, at: pointOf(b.geometry) })));
    }
    return out;
  });
  await keep('purposes', () => request('/api/v1/visit-purposes'));
  await refreshTasks();
}

export async function refreshTasks() {
  const t = await request('/api/v1/me/tasks');
  await store.put('kv', t, 'mytasks');
  return t;
}

/** A point for a building's geometry (a point, or the mean of a polygon's outer ring). */
function pointOf(g) {
  if (!g) return null;
  if (g.type === 'Point') return g.coordinates;
  const ring = g.type === 'Polygon' ? g.coordinates[0] : g.type === 'MultiPolygon' ? g.coordinates[0][0] : null;
  if (!ring || !ring.length) return null;
  return [ring.reduce((s, p) => s + p[0], 0) / ring.length, ring.reduce((s, p) => s + p[1], 0) / ring.length];
}

export async function syncCases() {
  let cursor = await store.get('kv', 'cursor');
  let page;
  do {
    page = await request(`/api/v1/sync${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`);
    const actions = new Map(page.tasks.map((t) => [t.case_id, t.actions]));
    await store.write([
      ...page.cases.map((c) => ['cases', { ...c, actions: actions.get(c.id) || [] }]),
      ...page.removed.map((id) => ['cases', undefined, id, 'delete']),
      ['kv', page.cursor, 'cursor'],
    ]);
    cursor = page.cursor;
  } while (page.has_more);
  state.syncs += 1;
  state.lastSync = new Date().toISOString();
}

export async function cached() {
  const [me, cats, grids, cases, checkpoints, buildings, purposes, mytasks] = await Promise.all([
    store.get('kv', 'me'),
    store.get('kv', 'categories'),
    store.get('kv', 'grids'),
    store.all('cases'),
    store.get('kv', 'checkpoints'),
    store.get('kv', 'buildings'),
    store.get('kv', 'purposes'),
    store.get('kv', 'mytasks'),
  ]);
  return {
    me: me || null,
    cats: cats || [],
    grids: grids || [],
    cases,
    checkpoints: checkpoints || [],
    buildings: buildings || [],
    purposes: purposes || [],
    mytasks: mytasks || { counts: { open: 0, due_today: 0, overdue: 0 }, items: [] },
  };
}

/** Point in the own grids' cached boundaries (WGS84): the grid, offline. */
export function gridAt(grids, lon, lat) {
  for (const g of grids) {
    const b = g.boundary;
    if (!b) continue;
    const polys = b.type === 'Polygon' ? [b.coordinates] : b.type === 'MultiPolygon' ? b.coordinates : [];
    if (polys.some((rings) => inRings(rings, lon, lat))) return g;
  }
  return null;
}

function inRings(rings, x, y) {
  let inside = false;
  for (const ring of rings) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i];
      const [xj, yj] = ring[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}

/** Metres between two WGS84 points (equirectangular: fine at a few hundred metres). */
export function distance(a, b) {
  const k = Math.PI / 180;
  const x = (b[0] - a[0]) * k * Math.cos(((a[1] + b[1]) / 2) * k);
  const y = (b[1] - a[1]) * k;
  return Math.sqrt(x * x + y * y) * 6_371_000;
}
