// The API with the worker's token: refreshed before it expires and on a 401 (one refresh at a
// time: a refresh token is single-use, and reusing it ends the session).
import * as store from './store.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}
export class Offline extends Error {}
export class SignedOut extends Error {}

let auth = null; // {access, refresh, expiresAt, userId}
const listeners = new Set();
export const onAuth = (fn) => listeners.add(fn);
export const stats = { refreshed: 0 };

export async function loadAuth() {
  auth = (await store.get('kv', 'auth')) || null;
  return auth;
}
export const signedIn = () => auth !== null;
export const userId = () => auth && auth.userId;

async function saveTokens(t, userId) {
  auth = {
    access: t.access_token,
    refresh: t.refresh_token,
    expiresAt: Date.now() + t.expires_in * 1000,
    userId: userId ?? (auth && auth.userId),
  };
  await store.put('kv', auth, 'auth');
}

async function signOut(reason) {
  auth = null;
  await store.del('kv', 'auth');
  for (const fn of listeners) fn(reason);
}

async function problemOf(res) {
  try {
    return await res.json();
  } catch {
    return { detail: `HTTP ${res.status}` };
  }
}

export async function login(username, password) {
  let res;
  try {
    res = await fetch('/api/v1/auth/token', {
      method: 'POST',
      body: new URLSearchParams({ username, password }),
    });
  } catch {
    throw new Offline('网络不可用，无法登录');
  }
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  await saveTokens(await res.json(), null);
  const me = await request('/api/v1/me');
  auth.userId = me.id;
  await store.put('kv', auth, 'auth');
  return me;
}

export async function logout() {
  try {
    await request('/api/v1/auth/logout', { method: 'POST' });
  } catch {
    /* signed out here whatever the server says */
  }
  await signOut('logout');
}

let refreshing = null;
/** One refresh at a time across the page and the service worker (a refresh token is single-use):
 * under the lock, the tokens are read again, and one refreshed meanwhile by the other is used. */
function refresh() {
  const used = auth && auth.refresh;
  const body = async () => {
    const saved = await store.get('kv', 'auth');
    if (!saved) {
      auth = null;
      throw new SignedOut('未登录');
    }
    if (saved.refresh !== used) {
      auth = saved; // the other context refreshed already
      return;
    }
    let res;
    try {
      res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: auth.refresh }),
      });
    } catch {
      throw new Offline('网络不可用');
    }
    if (res.status === 401) {
      await signOut('expired');
      throw new SignedOut('登录已过期，请重新登录');
    }
    if (!res.ok) throw new ApiError(res.status, await problemOf(res));
    await saveTokens(await res.json());
    stats.refreshed += 1;
  };
  refreshing ??= (navigator.locks ? navigator.locks.request('wangge-auth', body) : body()).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** fetch with the token; JSON in and out; throws ApiError (with the problem), Offline or SignedOut. */
export async function request(path, { method = 'GET', json, form, headers = {}, raw = false } = {}) {
  if (!auth) throw new SignedOut('未登录');
  if (auth.expiresAt - Date.now() < 30_000) await refresh();
  for (let attempt = 0; ; attempt++) {
    const h = { ...headers, Authorization: `Bearer ${auth.access}` };
    let body;
    if (json !== undefined) {
      h['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form) body = form;
    let res;
    try {
      res = await fetch(path, { method, headers: h, body });
    } catch (err) {
      if (navigator.onLine) console.warn('fetch failed', method, path, String(err));
      throw new Offline('网络不可用');
    }
    if (res.status === 401 && attempt === 0) {
      await refresh();
      continue;
    }
    if (res.status === 401) {
      await signOut('expired');
      throw new SignedOut('登录已过期，请重新登录');
    }
    if (!res.ok) throw new ApiError(res.status, await problemOf(res));
    if (raw) return res;
    if (res.status === 204) return null;
    return res.json();
  }
}
