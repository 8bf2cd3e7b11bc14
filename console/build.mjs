// Build the console: copy src/ and MapLibre GL JS (from node_modules, installed by `npm ci`) into
// dist/. Assets go under dist/assets/<hash>/ (hash of their contents), so the server may cache them
// for a year; dist/index.html (never cached) points at the current hash. Scripts and styles get a
// gzip copy beside them. No bundler: the browser loads the ES modules as they are.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const maplibre = join(here, 'node_modules', 'maplibre-gl', 'dist');
const out = join(here, 'dist');

const files = new Map(); // path under assets/<hash>/ -> contents
for (const name of readdirSync(src).sort()) {
  if (name !== 'index.html') files.set(name, readFileSync(join(src, name)));
}
const stripMap = (buf) => Buffer.from(buf.toString('utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));
for (const name of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs', 'maplibre-gl.css']) {
  const body = readFileSync(join(maplibre, name));
  files.set(`vendor/${name}`, name.endsWith('.mjs') ? stripMap(body) : body);
}

const hash = createHash('sha256');
for (const [name, body] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
  hash.update(name).update('\0').update(body).update('\0');
}
const version = hash.digest('hex').slice(0, 12);
const base = `/console/assets/${version}`;

const tmp = `${out}.tmp`;
rmSync(tmp, { recursive: true, force: true });
for (const [name, body] of files) {
  const path = join(tmp, 'assets', version, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, body);
  // Pre-compressed beside it: the app sends it to browsers that accept gzip (MapLibre: 1.1 MB → ~0.3 MB).
  if (['.js', '.mjs', '.css'].includes(extname(name))) {
    writeFileSync(`${path}.gz`, gzipSync(body, { level: constants.Z_BEST_COMPRESSION }));
  }
}
const index = readFileSync(join(src, 'index.html'), 'utf8').replaceAll('__ASSETS__', base);
writeFileSync(join(tmp, 'index.html'), index);
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
console.log(`console built: dist/index.html, ${files.size} assets under ${base}/`);
