// The API client: tokens (in sessionStorage, never localStorage), refresh rotation, problem+json.
const KEY = 'wangge.console.session';
let session = null;
try {
  session = JSON.parse(sessionStorage.getItem(KEY) || 'null');
} catch {
  session = null;
}
let refreshing = null;
let timer = null;

// The message names the request id of the answer (problem+json `request_id`): an operator
// quotes it and the server's log lines of that request are found by it.
export class ApiProblem extends Error {
  constructor(status, body) {
    const text = body?.detail || body?.title || `HTTP ${status}`;
    super(body?.request_id ? `${text}（请求编号 ${body.request_id}）` : text);
    this.status = status;
    this.body = body || {};
    this.requestId = body?.request_id || null;
  }
}

function save(tokens) {
  session = tokens && {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    expiresAt: Date.now() + tokens.expires_in * 1000,
  };
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
  schedule();
}

// Refresh a minute before the access token expires, so a wall screen stays signed in
// (the session still ends at its longest life, or when revoked).
function schedule() {
  clearTimeout(timer);
  if (!session) return;
  const wait = Math.max(session.expiresAt - Date.now() - 60_000, 5_000);
  timer = setTimeout(() => refresh().catch(() => {}), wait);
}

export const signedIn = () => session !== null;
export const accessToken = () => session?.access ?? null;

async function problemOf(res) {
  const type = res.headers.get('content-type') || '';
  if (type.includes('json')) {
    try {
      return await res.json();
    } catch {
      return null;
    }
  }
  return null;
}

export async function login(username, password) {
  const res = await fetch('/api/v1/auth/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password }),
  });
  if (!res.ok) throw new ApiProblem(res.status, await problemOf(res));
  save(await res.json());
}

function signedOut() {
  save(null);
  window.dispatchEvent(new CustomEvent('wangge:signed-out'));
}

export function refresh() {
  if (!session) return Promise.reject(new ApiProblem(401, { detail: '未登录' }));
  refreshing ??= (async () => {
    try {
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: session.refresh }),
      });
      if (!res.ok) {
        const body = await problemOf(res);
        if (res.status === 401 || res.status === 403) signedOut();
        throw new ApiProblem(res.status, body);
      }
      save(await res.json());
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function logout() {
  if (session) {
    await api('/api/v1/auth/logout', { method: 'POST' }).catch(() => {});
  }
  signedOut();
}

// fetch with the bearer token; one refresh-and-retry on 401.
async function authorised(path, init = {}, retried = false) {
  const headers = new Headers(init.headers || {});
  if (session) headers.set('Authorization', `Bearer ${session.access}`);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401 && session && !retried) {
    await refresh();
    return authorised(path, init, true);
  }
  return res;
}

// JSON API call. `etag` sends If-Match; the answer's ETag comes back on the result as `_etag`.
export async function api(path, { method = 'GET', body, etag, query } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (item !== undefined && item !== null && item !== '') q.append(k, item);
      }
    }
    url += `?${q}`;
  }
  const headers = { Accept: 'application/json', 'Accept-Language': 'zh-CN' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (etag) headers['If-Match'] = etag;
  const res = await authorised(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new ApiProblem(res.status, await problemOf(res));
  if (res.status === 204) return null;
  const data = await res.json();
  if (data && typeof data === 'object' && res.headers.get('etag')) {
    Object.defineProperty(data, '_etag', { value: res.headers.get('etag') });
  }
  return data;
}

// A protected image (photos need the bearer token, so <img src> alone cannot load them).
export async function blobUrl(path) {
  const res = await authorised(path);
  if (!res.ok) throw new ApiProblem(res.status, await problemOf(res));
  return URL.createObjectURL(await res.blob());
}

schedule();
