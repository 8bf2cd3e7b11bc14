// Caches for offline use: the worker (me), the own grids (with boundaries), the categories, and the
// cases in scope, the last ones caught up through /sync's cursor (changed cases come once, as they
// are now; `removed` ones are dropped; `tasks` say what the worker may do to each).
import { request } from './api.js';
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
  return { me, cats, grids };
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
  const [me, cats, grids, cases] = await Promise.all([
    store.get('kv', 'me'),
    store.get('kv', 'categories'),
    store.get('kv', 'grids'),
    store.all('cases'),
  ]);
  return { me: me || null, cats: cats || [], grids: grids || [], cases };
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
