// The live event stream (SSE). EventSource cannot send an Authorization header: each connection
// first asks for a one-use ticket (POST /api/v1/events/ticket), which also arrives as an HttpOnly
// cookie scoped to /api/v1/events, so the stream URL carries no credential. A ticket opens one
// stream once, so the browser's own reconnect would be refused: on any error we close, get a new
// ticket and reopen with last_event_id, and the server replays what we missed.
import { api } from './api.js';

const LOOP_ACTIONS = [
  'register', 'reject', 'whistle', 'dispatch', 'sign_in', 'return', 'request_extension',
  'decide_extension', 'suspend', 'resume', 'feedback', 'on_spot', 'verify', 'evaluate', 'reopen',
];
export const EVENT_TYPES = [
  'case.reported', 'case.overdue', 'case.deadline_soon',
  ...LOOP_ACTIONS.map((a) => `case.${a}`),
];

export function connect({ onEvent, onState, onResync }) {
  let source = null;
  let lastId = null;
  let stopped = false;
  let backoff = 1000;
  let retryTimer = null;

  const state = (s) => onState && onState(s);

  async function open() {
    if (stopped) return;
    state('connecting');
    try {
      await api('/api/v1/events/ticket', { method: 'POST' });
    } catch (e) {
      return retry();
    }
    const url = new URL('/api/v1/events/stream', window.location.origin);
    if (lastId !== null) url.searchParams.set('last_event_id', lastId);
    source = new EventSource(url, { withCredentials: true });
    source.addEventListener('ready', (m) => {
      backoff = 1000;
      const data = JSON.parse(m.data);
      if (lastId === null) lastId = data.last_event_id;
      state('live');
    });
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (m) => {
        lastId = Number(m.lastEventId) || lastId;
        onEvent(JSON.parse(m.data));
      });
    }
    source.addEventListener('resync', () => onResync && onResync());
    source.addEventListener('end', (m) => {
      const data = JSON.parse(m.data);
      lastId = data.last_event_id ?? lastId;
      source.close();
      if (data.reason === 'session_ended') return state('off');
      open();
    });
    source.onerror = () => {
      source.close();
      retry();
    };
  }

  function retry() {
    if (stopped) return;
    state('retrying');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(open, backoff);
    backoff = Math.min(backoff * 2, 30_000);
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(retryTimer);
      if (source) source.close();
      state('off');
    },
  };
}
