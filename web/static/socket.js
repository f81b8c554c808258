// socket.js — the one live WebSocket: connect with the access token (or a
// one-time ticket), reconnect with exponential backoff and jitter, answer
// token_expiring with a fresh token, and report every frame in and out.

import { session, refreshTokens, ensureFreshAccess, wsTicket } from './api.js';

const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30000;
const RATE_LIMITED_MIN_MS = 10000; // after 4029 "too many frames"
const STABLE_AFTER_MS = 10000; // a connection this old resets the backoff
const HANDSHAKE_TIMEOUT_MS = 10000; // open → connection_established

/** CLOSE_CODES: what each close code means, in words. */
export const CLOSE_CODES = {
  1000: 'normal closure',
  1001: 'server shutting down',
  1005: 'closed without a status code',
  1006: 'connection lost',
  1008: 'policy violation',
  1009: 'frame too large',
  1011: 'server error',
  1012: 'server restarting',
  1013: 'server overloaded, try again later',
  4001: 'token rejected',
  4004: 'conversation not found',
  4008: 'too slow (send queue overflowed)',
  4029: 'too many frames',
};

/** describeClose: "4001 token rejected". */
export function describeClose(code) {
  return `${code} ${CLOSE_CODES[code] || (code >= 4000 ? 'application close' : 'closed')}`;
}

/** wsUrl is the chat endpoint on this origin, ws: or wss: to match the page. */
export function wsUrl(query = {}) {
  const u = new URL('ws/chat/', document.baseURI);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  return u.href;
}

/** redactUrl hides credentials in a URL meant for display. */
export function redactUrl(url) {
  return url.replace(/([?&](?:token|ticket)=)[^&]*/g, '$1…');
}

/**
 * ChatSocket events:
 *   "status"  — status changed: "offline" | "connecting" | "live" | "reconnecting" | "stopped"
 *   "frame"   — detail {dir: "in"|"out", data, raw, at}
 *   "event"   — detail {text, at}: connection-level happenings for the log
 *   "message" — detail: a parsed server frame (after "frame")
 *   "close"   — detail {code, reason, wasClean, at, words}
 */
export class ChatSocket extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.status = 'offline';
    this.enabled = false;
    this.attempt = 0;
    this.retryAt = 0;
    this.retryTimer = 0;
    this.stableTimer = 0;
    this.handshakeTimer = 0;
    this.lastClose = null;
    this.useTicket = false;
    this.authExpServer = 0; // exp (server clock, ms) of the token in force on this socket
    this.expiringNoticed = false; // server said token_expiring and we owe it an authenticate
    this.connectedAt = 0;
    this.user = null;
    this.serverTime = '';
    this.connectionCount = 0;
    this.connectSeq = 0;
    session.addEventListener('tokens', () => this.onTokensRefreshed());
    window.addEventListener('online', () => {
      if (this.status === 'reconnecting') this.reconnectNow();
    });
  }

  get live() {
    return this.status === 'live' && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** start connects and keeps reconnecting until stop. */
  start() {
    if (this.enabled) return;
    this.enabled = true;
    this.attempt = 0;
    this.connect();
  }

  /** stop closes the socket for good (logout, or the user's Disconnect). */
  stop(reason = 'client closed') {
    this.enabled = false;
    this.connectSeq++;
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.handshakeTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(1000, reason);
      } catch {
        // already closing
      }
      this.noteClose({ code: 1000, reason, wasClean: true });
    }
    this.setStatus('offline');
  }

  /** reconnectNow skips the backoff wait (or forces a fresh connection). */
  reconnectNow() {
    this.enabled = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      this.ws = null;
      try {
        ws.close(1000, 'reconnecting');
      } catch {
        // already closing
      }
      this.noteClose({ code: 1000, reason: 'reconnecting', wasClean: true });
    }
    this.attempt = 0;
    this.connect();
  }

  setStatus(status) {
    if (this.status === status && status !== 'reconnecting') return;
    this.status = status;
    this.dispatchEvent(new CustomEvent('status', { detail: status }));
  }

  logEvent(text) {
    this.dispatchEvent(new CustomEvent('event', { detail: { text, at: new Date() } }));
  }

  async connect() {
    clearTimeout(this.retryTimer);
    if (!this.enabled) return;
    const seq = ++this.connectSeq; // a newer connect() supersedes this one
    this.setStatus('connecting');
    let url;
    let tokenExp = 0;
    try {
      await ensureFreshAccess();
      tokenExp = session.accessExpServer;
      if (this.useTicket) {
        try {
          url = wsUrl({ ticket: await wsTicket() });
        } catch (err) {
          if (err.isAuth) throw err;
          this.logEvent(`ticket request failed (${err.detail}); using ?token= instead`);
        }
      }
      if (!url) url = wsUrl({ token: session.access });
    } catch (err) {
      if (seq !== this.connectSeq) return;
      if (err.isAuth || !session.signedIn) {
        this.enabled = false;
        this.setStatus('offline');
        return; // the session has ended; the app shows the login
      }
      this.logEvent(`cannot connect yet: ${err.detail || err.message}`);
      this.scheduleReconnect();
      return;
    }
    if (seq !== this.connectSeq || !this.enabled) return;

    this.logEvent(`connecting to ${redactUrl(url)}`);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.logEvent(`cannot open WebSocket: ${err.message}`);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.authExpServer = tokenExp;
    this.expiringNoticed = false;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = setTimeout(() => {
      if (this.ws === ws && this.status !== 'live') {
        this.logEvent('no connection_established in time; retrying');
        try {
          ws.close(4000, 'handshake timeout');
        } catch {
          // ignore
        }
      }
    }, HANDSHAKE_TIMEOUT_MS);

    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.onFrame(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return; // a socket we already replaced or stopped
      this.ws = null;
      this.onClose(ev);
    });
  }

  onFrame(raw) {
    let data;
    try {
      data = JSON.parse(raw);
    } catch {
      data = null;
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: { dir: 'in', raw, data, at: new Date() } }));
    if (!data || typeof data !== 'object') return;
    switch (data.type) {
      case 'connection_established':
        clearTimeout(this.handshakeTimer);
        this.user = data.user || null;
        this.serverTime = data.server_time || '';
        this.connectedAt = Date.now();
        this.connectionCount++;
        clearTimeout(this.stableTimer);
        this.stableTimer = setTimeout(() => {
          this.attempt = 0;
        }, STABLE_AFTER_MS);
        this.setStatus('live');
        break;
      case 'token_expiring':
        this.onTokenExpiring(data);
        break;
      case 'authenticated': {
        const exp = Date.parse(data.expires_at);
        if (exp) this.authExpServer = exp;
        this.expiringNoticed = false;
        break;
      }
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent('message', { detail: data }));
  }

  /**
   * onTokenExpiring: if we already hold a newer access token, authenticate
   * with it now; otherwise refresh (no later than 15 s before the deadline)
   * and authenticate when the new token arrives (onTokensRefreshed).
   */
  onTokenExpiring(frame) {
    const expiresAt = Date.parse(frame.expires_at) || this.authExpServer;
    if (expiresAt) this.authExpServer = expiresAt;
    if (session.accessExpServer > expiresAt + 1000) {
      this.authenticate();
      return;
    }
    this.expiringNoticed = true;
    session.refreshBy(expiresAt - session.skew - 15000);
  }

  onTokensRefreshed() {
    if (!this.live) return;
    const soon = this.authExpServer && this.authExpServer - Date.now() - session.skew < 90000;
    if (this.expiringNoticed || soon) this.authenticate();
  }

  authenticate() {
    if (this.send({ type: 'authenticate', token: session.access })) this.expiringNoticed = false;
  }

  onClose(ev) {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.stableTimer);
    const info = this.noteClose(ev);
    if (!this.enabled) {
      this.setStatus('offline');
      return;
    }
    if (ev.code === 4004) {
      this.enabled = false;
      this.setStatus('stopped');
      return;
    }
    if (ev.code === 4001) {
      // The token was refused (expired, revoked, or the user is gone): get a
      // new one first. If that fails with 401 the session ends and the app
      // returns to the login screen.
      refreshTokens().then(
        () => this.scheduleReconnect(),
        (err) => {
          if (err.isAuth || !session.signedIn) {
            this.enabled = false;
            this.setStatus('offline');
          } else {
            this.scheduleReconnect();
          }
        },
      );
      this.setStatus('reconnecting');
      return;
    }
    this.scheduleReconnect(ev.code === 4029 ? RATE_LIMITED_MIN_MS : 0);
    return info;
  }

  noteClose({ code, reason, wasClean }) {
    this.lastClose = { code, reason: reason || '', wasClean: Boolean(wasClean), at: new Date(), words: describeClose(code) };
    this.logEvent(`closed: ${this.lastClose.words}${reason ? ` — “${reason}”` : ''}`);
    this.dispatchEvent(new CustomEvent('close', { detail: this.lastClose }));
    return this.lastClose;
  }

  scheduleReconnect(minDelay = 0) {
    if (!this.enabled) return;
    clearTimeout(this.retryTimer);
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    // "Equal jitter": half fixed, half random, so a server restart is not
    // met by every client at the same instant.
    const delay = Math.max(minDelay, ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.setStatus('reconnecting');
  }

  /** send writes one JSON frame; false when the socket is not open. */
  send(obj) {
    return this.sendRaw(JSON.stringify(obj), obj);
  }

  /** sendRaw writes text as is (the developer panel's free editor). */
  sendRaw(text, parsed) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(text);
    } catch {
      return false;
    }
    let data = parsed;
    if (data === undefined) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    this.dispatchEvent(new CustomEvent('frame', { detail: { dir: 'out', raw: text, data, at: new Date() } }));
    return true;
  }

  /** currentUrl is a ready WebSocket URL with the current access token. */
  currentUrl() {
    return wsUrl({ token: session.access });
  }
}
