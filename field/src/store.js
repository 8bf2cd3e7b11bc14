// IndexedDB: everything the worker enters lands here first. Stores:
//   kv      auth, me, grids, categories, recent categories, the sync cursor
//   outbox  entries waiting to be sent (keyPath id), each with its Idempotency-Key
//   blobs   the resized photos of outbox entries, until uploaded
//   cases   cases in the worker's scope, from /sync (keyPath id)
//   track   the fixes of a patrol recorded and not yet sealed into a batch (keyPath id)
// The page and the service worker (Background Sync) both open it.
const NAME = 'wangge-field';
let opened = null;

function open() {
  opened ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(NAME, 2);
    r.onupgradeneeded = (ev) => {
      const db = r.result;
      if (ev.oldVersion < 1) {
        db.createObjectStore('kv');
        db.createObjectStore('outbox', { keyPath: 'id' });
        db.createObjectStore('blobs');
        db.createObjectStore('cases', { keyPath: 'id' });
      }
      if (ev.oldVersion < 2) db.createObjectStore('track', { keyPath: 'id' });
    };
    r.onsuccess = () => {
      // Another context (a new build's page or worker) upgrading: let it, open again next time.
      r.result.onversionchange = () => {
        r.result.close();
        opened = null;
      };
      resolve(r.result);
    };
    r.onerror = () => reject(r.error);
  });
  return opened;
}

const done = (t) =>
  new Promise((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error('transaction aborted'));
  });
const result = (r) =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

export async function get(store, key) {
  const db = await open();
  return result(db.transaction(store).objectStore(store).get(key));
}

export async function all(store) {
  const db = await open();
  return result(db.transaction(store).objectStore(store).getAll());
}

export async function put(store, value, key) {
  const db = await open();
  const t = db.transaction(store, 'readwrite');
  if (key === undefined) t.objectStore(store).put(value);
  else t.objectStore(store).put(value, key);
  return done(t);
}

export async function del(store, key) {
  const db = await open();
  const t = db.transaction(store, 'readwrite');
  t.objectStore(store).delete(key);
  return done(t);
}

/** Several writes in one transaction: [[store, value, key?] | [store, undefined, key, 'delete']]. */
export async function write(ops) {
  const db = await open();
  const t = db.transaction([...new Set(ops.map((o) => o[0]))], 'readwrite');
  for (const [store, value, key, op] of ops) {
    const s = t.objectStore(store);
    if (op === 'delete') s.delete(key);
    else if (key === undefined) s.put(value);
    else s.put(value, key);
  }
  return done(t);
}

export async function clear(store) {
  const db = await open();
  const t = db.transaction(store, 'readwrite');
  t.objectStore(store).clear();
  return done(t);
}

/** The recorded fixes moved into outbox entries in one transaction (nothing lost, nothing twice):
 * `make(points)` returns the entries for the fixes read (grouped and cut as it likes). */
export async function seal(make) {
  const db = await open();
  const t = db.transaction(['track', 'outbox'], 'readwrite');
  const track = t.objectStore('track');
  const req = track.getAll();
  let made = 0;
  req.onsuccess = () => {
    const points = req.result;
    if (!points.length) return;
    const entries = make(points);
    made = entries.length;
    for (const e of entries) t.objectStore('outbox').put(e);
    for (const p of points) track.delete(p.id);
  };
  await done(t);
  return made;
}
