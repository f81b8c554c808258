// api.js — the REST side: the session (tokens in sessionStorage), JSON
// requests with the contract's error bodies, and transparent access-token
// refresh (scheduled before expiry, and once more on a 401).

const KEY_ACCESS = 'confab.access';
const KEY_REFRESH = 'confab.refresh';
const KEY_USER = 'confab.user';
const KEY_SKEW = 'confab.skew';

// Never refresh more often than this, whatever the token lifetime: a server
// configured with very short tokens must not make the console spin.
const MIN_REFRESH_GAP_MS = 5000;
// A request made with less than this left on the access token refreshes first.
const FRESH_MARGIN_MS = 15000;
// After a refresh that failed for a network reason, try again this much later.
const REFRESH_RETRY_MS = 10000;

/** ApiError carries the contract's error body: {detail, code, fields}. */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const detail = (body && typeof body.detail === 'string' && body.detail) || defaultDetail(status);
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? 'network_error' : 'error');
    this.detail = detail;
    this.fields = (body && typeof body.fields === 'object' && body.fields) || {};
    this.retryAfter = retryAfter;
  }

  /** isAuth tells whether the error means the credentials are no good. */
  get isAuth() {
    return this.status === 401;
  }
}

function defaultDetail(status) {
  if (status === 0) return 'Cannot reach the server. Check your connection.';
  if (status === 429) return 'Too many requests. Please wait a moment.';
  if (status >= 500) return 'The server had a problem. Please try again.';
  return `Request failed (HTTP ${status}).`;
}

/** decodeJwt returns a JWT's claims without verifying it (the server does that). */
export function decodeJwt(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const json = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

/** apiUrl resolves an API path against the page, so the console works under any prefix. */
export function apiUrl(path) {
  return new URL(path.replace(/^\//, ''), document.baseURI).href;
}

/**
 * Session holds the tokens and the signed-in user, mirrors them into
 * sessionStorage and keeps the access token fresh.
 * Events: "tokens" (new access token), "expired" (detail: reason; the
 * session is over and the user must sign in again).
 */
class Session extends EventTarget {
  constructor() {
    super();
    this.access = sessionStorage.getItem(KEY_ACCESS) || '';
    this.refresh = sessionStorage.getItem(KEY_REFRESH) || '';
    this.skew = Number(sessionStorage.getItem(KEY_SKEW)) || 0; // server clock − local clock, ms
    try {
      this.user = JSON.parse(sessionStorage.getItem(KEY_USER) || 'null');
    } catch {
      this.user = null;
    }
    this.lastRefreshAt = 0;
    this.refreshAt = 0;
    this.timer = 0;
    if (this.refresh) this.schedule();
  }

  get signedIn() {
    return Boolean(this.refresh);
  }

  /** accessClaims are the claims of the current access token (or null). */
  get accessClaims() {
    return this.access ? decodeJwt(this.access) : null;
  }

  /** accessExpServer is the access token's exp in server-clock milliseconds. */
  get accessExpServer() {
    const c = this.accessClaims;
    return c && c.exp ? c.exp * 1000 : 0;
  }

  /** accessExpLocal is the access token's exp in local-clock milliseconds. */
  get accessExpLocal() {
    const exp = this.accessExpServer;
    return exp ? exp - this.skew : 0;
  }

  /** start begins a session from a login or register response. */
  start({ access, refresh, user }) {
    this.setTokens(access, refresh);
    if (user) this.setUser(user);
  }

  setUser(user) {
    this.user = user;
    sessionStorage.setItem(KEY_USER, JSON.stringify(user));
  }

  setTokens(access, refresh) {
    this.access = access;
    if (refresh) this.refresh = refresh;
    const c = decodeJwt(access);
    // iat is "now" on the server's clock; remember the difference so that
    // expiry maths work even when this machine's clock is off.
    if (c && c.iat) this.skew = c.iat * 1000 - Date.now();
    sessionStorage.setItem(KEY_ACCESS, this.access);
    sessionStorage.setItem(KEY_REFRESH, this.refresh);
    sessionStorage.setItem(KEY_SKEW, String(this.skew));
    this.schedule();
    this.dispatchEvent(new CustomEvent('tokens'));
  }

  /** clear forgets everything (logout). */
  clear() {
    clearTimeout(this.timer);
    this.access = '';
    this.refresh = '';
    this.user = null;
    sessionStorage.removeItem(KEY_ACCESS);
    sessionStorage.removeItem(KEY_REFRESH);
    sessionStorage.removeItem(KEY_USER);
    sessionStorage.removeItem(KEY_SKEW);
  }

  /** expire ends the session because the server no longer accepts it. */
  expire(reason) {
    if (!this.signedIn) return;
    this.clear();
    this.dispatchEvent(new CustomEvent('expired', { detail: reason }));
  }

  /** schedule plans the next refresh: well before exp, never in a tight loop. */
  schedule() {
    clearTimeout(this.timer);
    const c = this.accessClaims;
    if (!this.refresh) return;
    let at;
    if (c && c.exp) {
      const expLocal = this.accessExpLocal;
      const lifetime = c.iat ? (c.exp - c.iat) * 1000 : 15 * 60e3;
      at = expLocal - Math.min(120e3, lifetime / 2);
    } else {
      at = Date.now(); // no usable access token: get one now
    }
    this.setRefreshAt(at);
  }

  /** refreshBy makes sure a refresh happens no later than localTime. */
  refreshBy(localTime) {
    if (this.refreshAt > localTime) this.setRefreshAt(localTime);
  }

  setRefreshAt(at) {
    clearTimeout(this.timer);
    this.refreshAt = Math.max(at, this.lastRefreshAt + MIN_REFRESH_GAP_MS);
    const delay = Math.max(0, this.refreshAt - Date.now());
    // setTimeout overflows past ~24.8 days; re-plan instead.
    this.timer = setTimeout(() => {
      if (Date.now() + 1000 < this.refreshAt) return this.setRefreshAt(this.refreshAt);
      refreshTokens().catch(() => {});
    }, Math.min(delay, 2 ** 31 - 1));
  }

  /** checkAfterSleep refreshes at once if a timer was missed (tab asleep). */
  checkAfterSleep() {
    if (this.signedIn && this.refreshAt && Date.now() >= this.refreshAt) {
      refreshTokens().catch(() => {});
    }
  }
}

export const session = new Session();

async function rawFetch(method, path, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, null);
  }
  let data = null;
  // Read the body even for 204: an unread body is cancelled, which browsers
  // report as an aborted request.
  const text = await res.text().catch(() => '');
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const ra = Number(res.headers.get('Retry-After'));
    throw new ApiError(res.status, data, Number.isFinite(ra) && ra > 0 ? ra : undefined);
  }
  return data;
}

let inflight = null;

/**
 * refreshTokens trades the refresh token for a new pair. Concurrent callers
 * share one request: the old refresh token is spent by the first use, and a
 * second use would trip the server's reuse detection.
 */
export function refreshTokens() {
  if (!inflight) {
    inflight = doRefresh().finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

async function doRefresh() {
  const refresh = session.refresh;
  if (!refresh) throw new ApiError(401, { detail: 'Not signed in.', code: 'not_authenticated' });
  session.lastRefreshAt = Date.now();
  try {
    const data = await rawFetch('POST', 'api/auth/token/refresh/', { body: { refresh } });
    if (session.refresh !== refresh) return; // logged out (or in again) meanwhile
    if (!data || !data.access) throw new ApiError(500, { detail: 'The server sent no access token.' });
    session.setTokens(data.access, data.refresh || refresh);
  } catch (err) {
    if (session.refresh === refresh) {
      if (err.code === 'account_disabled') {
        session.expire('This account has been disabled by the server\'s staff.');
      } else if (err.status === 401 || err.status === 400 || err.status === 403) {
        session.expire('Your session has ended. Please sign in again.');
      } else {
        session.setRefreshAt(Date.now() + REFRESH_RETRY_MS);
      }
    }
    throw err;
  }
}

/** ensureFreshAccess refreshes first when the access token is missing or nearly expired. */
export async function ensureFreshAccess() {
  if (!session.signedIn) throw new ApiError(401, { detail: 'Not signed in.', code: 'not_authenticated' });
  if (!session.access || session.accessExpLocal - Date.now() < FRESH_MARGIN_MS) {
    await refreshTokens();
  }
  return session.access;
}

/**
 * request makes an authenticated JSON call. On a 401 it refreshes once and
 * retries once; a second 401 ends the session.
 */
export async function request(method, path, body) {
  await ensureFreshAccess();
  const used = session.access;
  try {
    return await rawFetch(method, path, { body, token: used });
  } catch (err) {
    if (err.status !== 401) throw err;
    if (session.access === used) await refreshTokens();
    try {
      return await rawFetch(method, path, { body, token: session.access });
    } catch (err2) {
      if (err2.status === 401) session.expire('Your session has ended. Please sign in again.');
      throw err2;
    }
  }
}

/** login signs in and starts the session. */
export async function login(username, password) {
  const data = await rawFetch('POST', 'api/auth/token/', { body: { username, password } });
  session.start(data);
  return data;
}

/** register creates an account and starts the session. */
export async function register(username, password, displayName) {
  const body = { username, password };
  if (displayName) body.display_name = displayName;
  const data = await rawFetch('POST', 'api/auth/register/', { body });
  session.start(data);
  return data;
}

/** logout revokes the refresh token on the server (best effort) and forgets the session. */
export async function logout() {
  const refresh = session.refresh;
  const access = session.accessExpLocal > Date.now() + 2000 ? session.access : '';
  session.clear();
  if (!refresh) return;
  try {
    await rawFetch('POST', 'api/auth/logout/', { body: { refresh }, token: access });
  } catch {
    // The token is forgotten here either way; the server lets it expire.
  }
}

/** wsTicket asks for a one-time WebSocket ticket (no JWT in the URL). */
export async function wsTicket() {
  const data = await request('POST', 'api/auth/ws-ticket/');
  if (!data || !data.ticket) throw new ApiError(500, { detail: 'The server sent no ticket.' });
  return data.ticket;
}

/** qs builds a query string from the defined values of params. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
