// Build 网格通 (the field app): copy src/ and the small vector-tile decoder (from node_modules,
// installed by `npm ci`) into dist/. Assets go under dist/assets/<hash>/ (hash of their contents,
// cached for a year by the server); dist/index.html, dist/sw.js and dist/manifest.webmanifest
// (never cached) name the current hash. Scripts and styles get a gzip copy beside them. No bundler:
// the browser loads the ES modules as they are. Prints the app shell's gzipped size (target < 300 KB).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, deflateSync, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const nm = join(here, 'node_modules');
const out = join(here, 'dist');
const PAGES = new Set(['index.html', 'sw.js', 'manifest.webmanifest']);

const files = new Map(); // path under assets/<hash>/ -> contents
for (const name of readdirSync(src).sort()) {
  if (!PAGES.has(name)) files.set(name, readFileSync(join(src, name)));
}
// The vector-tile decoder and its two dependencies, bare imports made relative.
const vendor = {
  'vector-tile.js': join(nm, '@mapbox', 'vector-tile', 'index.js'),
  'point-geometry.js': join(nm, '@mapbox', 'point-geometry', 'index.js'),
  'pbf.js': join(nm, 'pbf', 'index.js'),
};
for (const [name, path] of Object.entries(vendor)) {
  const body = readFileSync(path, 'utf8')
    .replaceAll("from '@mapbox/point-geometry'", "from './point-geometry.js'")
    .replaceAll("from 'pbf'", "from './pbf.js'")
    .replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
  files.set(`vendor/${name}`, Buffer.from(body));
}
files.set('icon-192.png', icon(192));
files.set('icon-512.png', icon(512));

const hash = createHash('sha256');
for (const [name, body] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
  hash.update(name).update('\0').update(body).update('\0');
}
for (const name of PAGES) hash.update(readFileSync(join(src, name)));
const version = hash.digest('hex').slice(0, 12);
const base = `/app/assets/${version}`;

const tmp = `${out}.tmp`;
rmSync(tmp, { recursive: true, force: true });
let raw = 0;
let gz = 0;
for (const [name, body] of files) {
  const path = join(tmp, 'assets', version, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body);
  const packed = gzipSync(body, { level: constants.Z_BEST_COMPRESSION });
  if (['.js', '.mjs', '.css'].includes(extname(name))) writeFileSync(`${path}.gz`, packed);
  if (!name.endsWith('.png')) {
    raw += body.length;
    gz += packed.length;
  }
}
const pages = {};
for (const name of PAGES) {
  pages[name] = readFileSync(join(src, name), 'utf8')
    .replaceAll('__ASSETS__', base)
    .replaceAll('__VERSION__', version)
    .replaceAll('__PRECACHE__', JSON.stringify([...files.keys()].sort().map((n) => `${base}/${n}`)));
  writeFileSync(join(tmp, name), pages[name]);
  raw += pages[name].length;
  gz += gzipSync(pages[name], { level: constants.Z_BEST_COMPRESSION }).length;
}
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
const kb = (n) => (n / 1024).toFixed(1);
console.log(`field app built: dist/index.html, ${files.size} assets under ${base}/`);
console.log(
  `field app shell: ${kb(gz)} KB gzipped (${kb(raw)} KB raw; map included; icons not counted), target < 300 KB`,
);
if (gz > 300 * 1024) {
  console.error('field app shell is over its 300 KB budget');
  process.exit(1);
}

// A square PNG icon: a green tile with a white 3×3 grid (网格), drawn pixel by pixel.
function icon(size) {
  const row = size * 4 + 1;
  const px = Buffer.alloc(row * size);
  const m = Math.round(size * 0.2);
  const line = Math.max(2, Math.round(size * 0.035));
  for (let y = 0; y < size; y++) {
    px[y * row] = 0;
    for (let x = 0; x < size; x++) {
      const inner = x >= m && x < size - m && y >= m && y < size - m;
      const cell = (size - 2 * m) / 3;
      const onLine =
        inner &&
        [0, 1, 2, 3].some(
          (k) => Math.abs(x - m - k * cell) < line || Math.abs(y - m - k * cell) < line,
        );
      const [r, g, b] = onLine ? [255, 255, 255] : [22, 119, 87];
      px.set([r, g, b, 255], y * row + 1 + x * 4);
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(px)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(buf) {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}
