// A small canvas map (no map library: the whole app stays far below its size budget): the grids'
// vector tiles from the service (/tiles/grids/{z}/{x}/{y}.mvt, decoded by @mapbox/vector-tile), the
// worker's own grids from the cached boundaries (drawn offline too), the position with its accuracy.
// Drag to pan, pinch or the buttons to zoom. Web Mercator, WGS84 coordinates throughout.
import { VectorTile } from './vendor/vector-tile.js';
import { PbfReader } from './vendor/pbf.js';

const TILE = 256;
const tiles = new Map(); // "z/x/y" -> {features} | 'loading' | 'failed'
const MINZ = 10;
const MAXZ = 16;

const wx = (lon, z) => ((lon + 180) / 360) * TILE * 2 ** z;
const wy = (lat, z) => {
  const s = Math.sin((lat * Math.PI) / 180);
  return (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * TILE * 2 ** z;
};
const lonOf = (x, z) => (x / (TILE * 2 ** z)) * 360 - 180;
const latOf = (y, z) => {
  const n = Math.PI - (2 * Math.PI * y) / (TILE * 2 ** z);
  return (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
};

export class FieldMap {
  constructor(canvas, { onMove } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.center = [116.0, 28.0];
    this.zoom = 15;
    this.mine = []; // own grids, GeoJSON boundaries
    this.position = null; // {lon, lat, accuracy}
    this.track = []; // a patrol's fixes [[lon, lat], ...]
    this.marks = []; // check-in points {lon, lat, radius, done}
    this.onMove = onMove;
    this.rendered = new Set(); // grid ids drawn from tiles in the last frame
    this.pointers = new Map();
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const t of ['pointerup', 'pointercancel', 'pointerleave']) canvas.addEventListener(t, (e) => this.up(e));
    canvas.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomBy(e.deltaY < 0 ? 0.5 : -0.5);
    }, { passive: false });
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  setView(center, zoom = this.zoom) {
    this.center = center;
    this.zoom = Math.max(MINZ, Math.min(MAXZ + 2, zoom));
    this.draw();
  }

  zoomBy(d) {
    this.setView(this.center, this.zoom + d);
  }

  fit(grids) {
    const pts = grids.flatMap((g) => rings(g.boundary).flat());
    if (!pts.length) return;
    const xs = pts.map((p) => p[0]);
    const ys = pts.map((p) => p[1]);
    const c = [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2];
    const w = this.canvas.clientWidth || 320;
    const h = this.canvas.clientHeight || 240;
    let z = MAXZ;
    while (z > MINZ && (wx(Math.max(...xs), z) - wx(Math.min(...xs), z) > w * 0.9 || wy(Math.min(...ys), z) - wy(Math.max(...ys), z) > h * 0.9)) z -= 0.5;
    this.setView(c, z);
  }

  down(e) {
    this.canvas.setPointerCapture(e.pointerId);
    this.pointers.set(e.pointerId, [e.clientX, e.clientY]);
    this.pinch = null;
  }

  move(e) {
    const last = this.pointers.get(e.pointerId);
    if (!last) return;
    const now = [e.clientX, e.clientY];
    if (this.pointers.size === 2) {
      const [a, b] = [...this.pointers.values()];
      const before = Math.hypot(a[0] - b[0], a[1] - b[1]);
      this.pointers.set(e.pointerId, now);
      const [c, d] = [...this.pointers.values()];
      const after = Math.hypot(c[0] - d[0], c[1] - d[1]);
      if (before > 0) this.setView(this.center, this.zoom + Math.log2(after / before));
    } else {
      this.pointers.set(e.pointerId, now);
      const z = this.zoom;
      const x = wx(this.center[0], z) - (now[0] - last[0]);
      const y = wy(this.center[1], z) - (now[1] - last[1]);
      this.setView([lonOf(x, z), latOf(y, z)]);
    }
    e.preventDefault();
  }

  up(e) {
    if (this.pointers.delete(e.pointerId) && this.onMove) this.onMove(this.center);
  }

  /** Screen pixel of a WGS84 point, in CSS pixels. */
  pixel(lon, lat) {
    const z = this.zoom;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    return [wx(lon, z) - wx(this.center[0], z) + w / 2, wy(lat, z) - wy(this.center[1], z) + h / 2];
  }

  draw() {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => this.paint());
  }

  paint() {
    const { canvas, ctx } = this;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#eef2ee';
    ctx.fillRect(0, 0, w, h);
    const tz = Math.max(MINZ, Math.min(MAXZ, Math.floor(this.zoom)));
    const scale = 2 ** (this.zoom - tz);
    const cx = wx(this.center[0], tz);
    const cy = wy(this.center[1], tz);
    const x0 = Math.floor((cx - w / 2 / scale) / TILE);
    const x1 = Math.floor((cx + w / 2 / scale) / TILE);
    const y0 = Math.floor((cy - h / 2 / scale) / TILE);
    const y1 = Math.floor((cy + h / 2 / scale) / TILE);
    const mineIds = new Set(this.mine.map((g) => g.id));
    this.rendered = new Set();
    ctx.lineJoin = 'round';
    // Each tile of the view, or (not loaded, e.g. offline) the nearest loaded parent tile.
    const draw = new Map();
    for (let tx = x0; tx <= x1; tx++) {
      for (let ty = y0; ty <= y1; ty++) {
        let t = this.tile(tz, tx, ty);
        let [z, x, y] = [tz, tx, ty];
        while ((!t || !t.features) && z > MINZ && tz - z < 3) {
          [z, x, y] = [z - 1, x >> 1, y >> 1];
          t = tiles.get(`${z}/${x}/${y}`);
        }
        if (t && t.features) draw.set(`${z}/${x}/${y}`, [t, z, x, y]);
      }
    }
    for (const [t, z, x, y] of draw.values()) this.paintTile(t, z, x, y, mineIds, w, h);
    // The own grids, from the cached boundaries: always there, online or not.
    ctx.font = '13px sans-serif';
    ctx.textAlign = 'center';
    for (const g of this.mine) {
      ctx.beginPath();
      for (const ring of rings(g.boundary)) {
        ring.forEach(([lon, lat], i) => {
          const [sx, sy] = this.pixel(lon, lat);
          if (i) ctx.lineTo(sx, sy);
          else ctx.moveTo(sx, sy);
        });
        ctx.closePath();
      }
      ctx.fillStyle = 'rgba(22,119,87,0.12)';
      ctx.fill('evenodd');
      ctx.strokeStyle = '#167757';
      ctx.lineWidth = 2.5;
      ctx.stroke();
      const pts = rings(g.boundary)[0] || [];
      if (pts.length) {
        const [sx, sy] = this.pixel(
          pts.reduce((s, p) => s + p[0], 0) / pts.length,
          pts.reduce((s, p) => s + p[1], 0) / pts.length,
        );
        ctx.fillStyle = '#0f4f3a';
        ctx.fillText(g.name, sx, sy);
      }
    }
    const mpp0 = (lat) => (156543.03 * Math.cos((lat * Math.PI) / 180)) / 2 ** this.zoom;
    for (const m of this.marks) {
      const [sx, sy] = this.pixel(m.lon, m.lat);
      ctx.beginPath();
      ctx.arc(sx, sy, Math.max(6, m.radius / mpp0(m.lat)), 0, 2 * Math.PI);
      ctx.fillStyle = m.done ? 'rgba(22,119,87,0.18)' : 'rgba(230,140,20,0.18)';
      ctx.fill();
      ctx.strokeStyle = m.done ? '#167757' : '#c77a00';
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    if (this.track.length > 1) {
      ctx.beginPath();
      this.track.forEach(([lon, lat], i) => {
        const [sx, sy] = this.pixel(lon, lat);
        if (i) ctx.lineTo(sx, sy);
        else ctx.moveTo(sx, sy);
      });
      ctx.strokeStyle = '#d9480f';
      ctx.lineWidth = 3.5;
      ctx.stroke();
    }
    if (this.position) {
      const { lon, lat, accuracy } = this.position;
      const [sx, sy] = this.pixel(lon, lat);
      const mpp = (156543.03 * Math.cos((lat * Math.PI) / 180)) / 2 ** this.zoom;
      ctx.beginPath();
      ctx.arc(sx, sy, Math.max(8, (accuracy || 0) / mpp), 0, 2 * Math.PI);
      ctx.fillStyle = 'rgba(30,110,230,0.15)';
      ctx.fill();
      ctx.beginPath();
      ctx.arc(sx, sy, 7, 0, 2 * Math.PI);
      ctx.fillStyle = '#1e6ee6';
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#fff';
      ctx.stroke();
    }
  }

  paintTile(t, z, tx, ty, mineIds, w, h) {
    const { ctx } = this;
    const scale = 2 ** (this.zoom - z);
    const cx = wx(this.center[0], z);
    const cy = wy(this.center[1], z);
    for (const f of t.features) {
      this.rendered.add(f.id);
      ctx.beginPath();
      for (const ring of f.rings) {
        ring.forEach((p, i) => {
          const sx = (tx * TILE + (p.x / t.extent) * TILE - cx) * scale + w / 2;
          const sy = (ty * TILE + (p.y / t.extent) * TILE - cy) * scale + h / 2;
          if (i) ctx.lineTo(sx, sy);
          else ctx.moveTo(sx, sy);
        });
        ctx.closePath();
      }
      ctx.fillStyle = mineIds.has(f.id) ? 'rgba(22,119,87,0.10)' : 'rgba(120,120,120,0.05)';
      ctx.fill('evenodd');
      ctx.strokeStyle = '#8a9a90';
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }

  tile(z, x, y) {
    const key = `${z}/${x}/${y}`;
    const t = tiles.get(key);
    if (t !== undefined && !(t.failedAt && Date.now() - t.failedAt > 10_000)) return t.failedAt ? null : t;
    tiles.set(key, 'loading');
    fetch(`/tiles/grids/${key}.mvt`)
      .then(async (res) => {
        if (res.status === 204) return { features: [], extent: 4096 };
        if (!res.ok) throw new Error(`tile ${res.status}`);
        const vt = new VectorTile(new PbfReader(new Uint8Array(await res.arrayBuffer())));
        const layer = vt.layers.grids;
        const features = [];
        for (let i = 0; layer && i < layer.length; i++) {
          const f = layer.feature(i);
          features.push({ id: f.properties.id ?? f.id, rings: f.loadGeometry() });
        }
        return { features, extent: layer ? layer.extent : 4096 };
      })
      .then((v) => {
        tiles.set(key, v);
        this.draw();
      })
      .catch((err) => {
        if (navigator.onLine) console.warn('tile', key, String(err));
        tiles.set(key, { failedAt: Date.now() }); // offline: tried again 10 s later
      });
    return 'loading';
  }
}

function rings(geom) {
  if (!geom) return [];
  if (geom.type === 'Polygon') return geom.coordinates;
  if (geom.type === 'MultiPolygon') return geom.coordinates.flat();
  return [];
}
