// The map: grids, community areas, the hot-spot choropleth and live cases, on MapLibre GL JS
// served by the app (no CDN, no remote style, glyphs or sprites: every layer is local and carries
// no text). Vector tiles (/tiles/{layer}/{z}/{x}/{y}.mvt, TileJSON at /tiles/{layer}.json) are used
// when the server has them; otherwise the registry's GeoJSON endpoints feed the same layers.
import * as maplibregl from './vendor/maplibre-gl.mjs';
import { accessToken, api } from './api.js';
import { esc } from './queue.js';

export const STATUS_COLOURS = {
  reported: '#ff5252',
  registered: '#ff9800',
  whistled: '#ffd54f',
  returned: '#e040fb',
  dispatched: '#40c4ff',
  handling: '#448aff',
  suspended: '#90a4ae',
  rework: '#ff6e40',
  feedback: '#69f0ae',
  verified: '#00e676',
  closed: '#607d8b',
  rejected: '#455a64',
};
const STATUS_NAMES = {
  reported: '已上报', registered: '已立案', whistled: '已吹哨', returned: '已退回', dispatched: '已派遣',
  handling: '办理中', feedback: '已反馈', closed: '已办结',
};
const HOT_STOPS = [0, 'rgba(0,0,0,0)', 1, '#fff3b0', 3, '#ffb347', 6, '#ff6b3d', 10, '#d7263d'];

const STYLE = {
  version: 8,
  sources: {},
  layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#0e1721' } }],
};

// Tiles need the bearer token on scoped layers: every request to our own /tiles gets it.
function transformRequest(url) {
  const u = new URL(url, window.location.origin);
  if (u.origin === window.location.origin && u.pathname.startsWith('/tiles/')) {
    const token = accessToken();
    return { url: u.href, headers: token ? { Authorization: `Bearer ${token}` } : {} };
  }
  return { url: u.href };
}

async function tileJson(layer, query) {
  try {
    return await api(`/tiles/${layer}.json`, { query });
  } catch {
    return null; // no tiles on this server: use GeoJSON
  }
}

async function pages(path, query) {
  const items = [];
  for (let offset = 0; offset < 20_000; ) {
    const page = await api(path, { query: { ...query, limit: 500, offset } });
    items.push(...page.items);
    offset += page.items.length;
    if (!page.items.length || offset >= page.total) break;
  }
  return items;
}

const featureCollection = (features) => ({ type: 'FeatureCollection', features });

function bboxOf(features) {
  let [w, s, e, n] = [180, 90, -180, -90];
  const visit = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]);
      s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(visit);
  };
  for (const f of features) if (f.geometry) visit(f.geometry.coordinates);
  return w <= e ? [[w, s], [e, n]] : null;
}

// The first view: the places of the caller's posts (a district, a street, a community, grids),
// not every feature of the server. null: everything (an administrator, a department).
async function homeBounds(me) {
  const urls = [];
  for (const p of me?.posts || []) {
    if (p.role === 'admin') return null;
    if (p.area) urls.push(`/api/v1/areas/${p.area.id}`);
    for (const g of p.grids || []) urls.push(`/api/v1/grids/${g.id}`);
  }
  if (!urls.length) return null;
  const places = await Promise.all(urls.slice(0, 60).map((u) => api(u).catch(() => null)));
  return bboxOf(places.filter((x) => x?.boundary).map((x) => ({ geometry: x.boundary })));
}

// The base map (GET /console/config.json): a raster source under every layer, when configured.
async function baseMap() {
  try {
    return (await api('/console/config.json')).base_map;
  } catch {
    return null;
  }
}

// Names on the map as DOM labels (the map itself loads no glyphs): communities when zoomed out,
// grids from zoom 14, at the centre of what is drawn of each.
const LABEL_ZOOM = 14;
function centres(features) {
  const boxes = new Map();
  for (const f of features) {
    const key = f.properties?.id ?? f.id;
    const name = f.properties?.name;
    if (key === undefined || !name) continue;
    const b = bboxOf([f]);
    if (!b) continue;
    const prev = boxes.get(key);
    boxes.set(key, prev
      ? { name, box: [[Math.min(prev.box[0][0], b[0][0]), Math.min(prev.box[0][1], b[0][1])], [Math.max(prev.box[1][0], b[1][0]), Math.max(prev.box[1][1], b[1][1])]] }
      : { name, box: b });
  }
  return [...boxes.values()].map(({ name, box }) => ({ name, at: [(box[0][0] + box[1][0]) / 2, (box[0][1] + box[1][1]) / 2] }));
}

export class ConsoleMap {
  constructor(container, { onCaseClick }) {
    this.onCaseClick = onCaseClick;
    this.mode = null; // 'tiles' or 'geojson'
    this.gridFeatures = [];
    this.hotCounts = new Map();
    this.map = new maplibregl.Map({
      container,
      style: STYLE,
      center: [117.03, 28.24],
      zoom: 11,
      attributionControl: false,
      transformRequest,
      preserveDrawingBuffer: true, // screenshots of the wall screen
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    this.map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
    this.loaded = new Promise((resolve) => this.map.once('load', resolve));
  }

  async init(period, me) {
    await this.loaded;
    const [home, base] = await Promise.all([homeBounds(me), baseMap()]);
    if (base) {
      this.map.addSource('basemap', {
        type: 'raster', tiles: base.tiles, tileSize: base.tile_size || 256,
        minzoom: base.min_zoom ?? 0, maxzoom: base.max_zoom ?? 18,
        ...(base.bounds ? { bounds: base.bounds } : {}),
        ...(base.attribution ? { attribution: base.attribution } : {}),
      });
      this.map.addLayer({ id: 'basemap', type: 'raster', source: 'basemap', paint: { 'raster-opacity': 0.75 } });
      if (base.attribution) this.map.addControl(new maplibregl.AttributionControl({ compact: true }));
    }
    // Live cases are drawn from the console's own lists (they follow the event stream at once);
    // the other layers come from tiles when the server has them.
    const [grids, areas, hotspots] = await Promise.all(
      ['grids', 'areas', 'hotspots'].map((l) =>
        tileJson(l, l === 'hotspots' ? { since: period.since, until: period.until } : undefined)),
    );
    this.mode = grids ? 'tiles' : 'geojson';
    this.tiles = { grids, areas, hotspots };
    let bounds = null;
    if (grids) {
      this.map.addSource('grids', { type: 'vector', tiles: grids.tiles, minzoom: grids.minzoom ?? 0, maxzoom: grids.maxzoom ?? 16 });
      if (grids.bounds) bounds = [[grids.bounds[0], grids.bounds[1]], [grids.bounds[2], grids.bounds[3]]];
    } else {
      const items = await pages('/api/v1/grids', { with_boundary: true });
      this.gridFeatures = items.filter((g) => g.boundary).map((g) => ({
        type: 'Feature', id: g.id, geometry: g.boundary,
        properties: { id: g.id, code: g.code, name: g.name, kind: g.kind, cases: 0 },
      }));
      this.map.addSource('grids', { type: 'geojson', data: featureCollection(this.gridFeatures) });
      bounds = bboxOf(this.gridFeatures);
    }
    if (areas) {
      this.map.addSource('areas', { type: 'vector', tiles: areas.tiles, minzoom: areas.minzoom ?? 0, maxzoom: areas.maxzoom ?? 16 });
    } else {
      const items = await pages('/api/v1/areas', { level: 'community', with_boundary: true });
      this.map.addSource('areas', {
        type: 'geojson',
        data: featureCollection(items.filter((a) => a.boundary).map((a) => ({
          type: 'Feature', geometry: a.boundary, properties: { id: a.id, code: a.code, name: a.name },
        }))),
      });
    }
    if (hotspots) {
      this.map.addSource('hotspots', { type: 'vector', tiles: hotspots.tiles, minzoom: hotspots.minzoom ?? 0, maxzoom: hotspots.maxzoom ?? 16 });
    }
    this.map.addSource('cases', { type: 'geojson', data: featureCollection([]) });
    this.addLayers();
    this.home = home || bounds;
    if (this.home) this.map.fitBounds(this.home, { padding: 30, duration: 0 });
    this.labels = [];
    this.map.on('idle', () => this.drawLabels());
    this.map.on('click', 'cases-dot', (e) => {
      const f = e.features && e.features[0];
      if (f) this.onCaseClick(f.properties.id);
    });
    // A grid's card (a DOM popup: no map glyphs needed): name, community, households, staff on duty.
    this.map.on('click', 'grids-fill', (e) => {
      if (this.map.queryRenderedFeatures(e.point, { layers: ['cases-dot'] }).length) return;
      const p = e.features && e.features[0] && e.features[0].properties;
      if (!p) return;
      const row = (k, v) => (v === undefined || v === null ? '' : `<dt>${k}</dt><dd>${esc(v)}</dd>`);
      const hot = this.hotCounts.get(p.id ?? e.features[0].id);
      new maplibregl.Popup({ closeButton: true, className: 'grid-card' })
        .setLngLat(e.lngLat)
        .setHTML(`<b>${esc(p.name)}</b><dl>${row('编码', p.code)}${row('社区', p.community)}${row('街道', p.street)}${row('户数', p.households)}${row('人口', p.population)}${row('今日在岗', p.staff)}${row('本期事件', hot)}</dl>`)
        .addTo(this.map);
    });
    this.map.on('mouseenter', 'cases-dot', () => { this.map.getCanvas().style.cursor = 'pointer'; });
    this.map.on('mouseleave', 'cases-dot', () => { this.map.getCanvas().style.cursor = ''; });
  }

  addLayers() {
    const tiles = this.mode === 'tiles';
    const src = (name) => (tiles && this.tiles[name] ? { source: name, 'source-layer': name } : { source: name });
    const hot = this.tiles.hotspots
      ? { ...src('hotspots'), key: ['coalesce', ['get', 'count'], ['get', 'cases'], 0] }
      : { source: 'grids', ...(tiles ? { 'source-layer': 'grids' } : {}), key: ['coalesce', ['get', 'cases'], 0] };
    const { key, ...hotSource } = hot;
    this.map.addLayer({
      id: 'hotspots-fill', type: 'fill', ...hotSource,
      paint: { 'fill-color': ['step', key, ...HOT_STOPS.slice(1)], 'fill-opacity': 0.55 },
    });
    this.map.addLayer({
      id: 'grids-fill', type: 'fill', ...src('grids'),
      paint: { 'fill-color': '#4fc3f7', 'fill-opacity': 0.06 },
    });
    this.map.addLayer({
      id: 'grids-line', type: 'line', ...src('grids'),
      paint: { 'line-color': '#4fc3f7', 'line-width': 0.8, 'line-opacity': 0.7 },
    });
    this.map.addLayer({
      id: 'areas-line', type: 'line', ...src('areas'),
      paint: {
        'line-color': ['match', ['get', 'level'], 'street', '#ffca28', '#ffe082'],
        'line-width': ['match', ['get', 'level'], 'street', 3, 1.6],
        'line-opacity': 0.85,
      },
    });
    this.map.addLayer({
      id: 'cases-dot', type: 'circle', source: 'cases',
      paint: {
        'circle-radius': ['case', ['boolean', ['get', 'selected'], false], 10, 6],
        'circle-color': ['match', ['get', 'status'], ...Object.entries(STATUS_COLOURS).flat(), '#ffffff'],
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': ['case', ['boolean', ['get', 'fresh'], false], 3, 1],
      },
    });
  }

  drawLabels() {
    const grids = this.map.getZoom() >= LABEL_ZOOM;
    const layer = grids ? 'grids-fill' : 'areas-line';
    if (!this.map.getLayer(layer)) return;
    const key = `${layer}:${this.map.getBounds().toArray().flat().map((v) => v.toFixed(5)).join(',')}`;
    if (key === this.labelKey) return;
    this.labelKey = key;
    let feats = this.map.queryRenderedFeatures({ layers: [layer] });
    if (!grids) feats = feats.filter((f) => (f.properties?.level ?? 'community') === 'community');
    for (const m of this.labels) m.remove();
    this.labels = centres(feats).slice(0, 400).map(({ name, at }) => {
      const el = document.createElement('span');
      el.className = grids ? 'map-label grid' : 'map-label';
      el.textContent = name;
      return new maplibregl.Marker({ element: el }).setLngLat(at).addTo(this.map);
    });
  }

  // Live cases: the console's list of cases, drawn as dots coloured by status.
  setCases(cases, selectedId) {
    const src = this.map.getSource('cases');
    if (!src) return;
    src.setData(featureCollection(cases.filter((c) => c.location).map((c) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [c.location.lon, c.location.lat] },
      properties: { id: c.id, status: c.status, selected: c.id === selectedId, fresh: !!c._fresh },
    }))));
  }

  // The choropleth follows new reports: hot-spot tiles are fetched again (a new URL passes their
  // 30 s private cache) when the period's count changed; without hot-spot tiles it counts the
  // period's cases per grid on the client.
  setHotCounts(counts) {
    this.hotCounts = counts;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    if (this.tiles?.hotspots) {
      if (this.hotTotal !== undefined && this.hotTotal !== total) {
        const src = this.map.getSource('hotspots');
        this.hotVersion = (this.hotVersion || 0) + 1;
        const url = new URL(this.tiles.hotspots.tiles[0].replace(/[{}]/g, (c) => (c === '{' ? '%7B' : '%7D')));
        url.searchParams.set('v', this.hotVersion);
        src?.setTiles([url.href.replace(/%7B/g, '{').replace(/%7D/g, '}')]);
      }
      this.hotTotal = total;
      return;
    }
    if (this.mode !== 'geojson') return;
    for (const f of this.gridFeatures) f.properties.cases = counts.get(f.properties.id) || 0;
    this.map.getSource('grids')?.setData(featureCollection(this.gridFeatures));
  }

  setVisible(group, visible) {
    const layers = { grids: ['grids-fill', 'grids-line'], areas: ['areas-line'], hotspots: ['hotspots-fill'], cases: ['cases-dot'] }[group];
    for (const id of layers || []) this.map.setLayoutProperty(id, 'visibility', visible ? 'visible' : 'none');
  }

  // The legend: hot-spot classes and the colours of case statuses.
  legend(el) {
    const hot = [];
    for (let i = 2; i < HOT_STOPS.length; i += 2) {
      const upper = HOT_STOPS[i + 2];
      hot.push(`<span><i data-colour="${HOT_STOPS[i + 1]}"></i>${HOT_STOPS[i]}${upper ? `–${upper - 1}` : '+'}</span>`);
    }
    el.innerHTML = `<div><b>热点</b>（本期件数）${hot.join('')}</div>
      <div><b>事件</b>${Object.entries(STATUS_NAMES).map(([k, v]) => `<span><i class="dot" data-colour="${STATUS_COLOURS[k]}"></i>${v}</span>`).join('')}</div>`;
    // Colours through the CSSOM: the page's Content-Security-Policy allows no inline styles.
    for (const i of el.querySelectorAll('[data-colour]')) i.style.background = i.dataset.colour;
  }

  flyTo(c) {
    if (c?.location) this.map.easeTo({ center: [c.location.lon, c.location.lat], zoom: Math.max(this.map.getZoom(), 14) });
  }
}
