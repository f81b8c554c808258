// devpanel.js — the developer panel: connection facts, the user's push
// outbox, a frame composer with a template for every client frame of the
// contract, and a live log of every frame in and out.

import { h, setChildren, clockWithMillis, copyText, uuid } from './dom.js';
import { session, apiUrl, request } from './api.js';
import { describeClose, redactUrl } from './socket.js';

const MAX_ENTRIES = 500;
// The push outbox is read again this often while the panel is open.
const OUTBOX_EVERY_MS = 5000;
const OUTBOX_STATES = ['pending', 'sent', 'failed'];

const CLIENT_TYPES = ['ping', 'join_conversation', 'leave_conversation', 'new_message', 'typing', 'read_receipt', 'authenticate'];
const SERVER_TYPES = [
  'connection_established', 'pong', 'joined', 'left', 'new_message', 'message_ack', 'message_updated', 'message_deleted',
  'reaction_updated', 'typing', 'read_receipt', 'presence', 'notification', 'conversation_updated', 'error', 'token_expiring', 'authenticated',
];

function requestId() {
  return `dev-${uuid().slice(0, 8)}`;
}

/** shellQuote wraps s in single quotes for a POSIX shell. */
function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

export class DevPanel {
  constructor({ socket, chat, toast }) {
    this.socket = socket;
    this.chat = chat;
    this.toast = toast;
    this.el = document.getElementById('devpanel');
    this.toggleBtn = document.getElementById('devpanel-toggle');
    this.paused = false;
    this.buffer = [];
    this.types = new Set([...CLIENT_TYPES, ...SERVER_TYPES]);
    this.tick = 0;
    this.outboxTick = 0;
    this.outboxSeq = 0;
    this.build();
    socket.addEventListener('frame', (ev) => this.onFrame(ev.detail));
    socket.addEventListener('event', (ev) => this.onEvent(ev.detail));
    socket.addEventListener('status', () => this.renderFacts());
    socket.addEventListener('close', () => this.renderFacts());
    session.addEventListener('tokens', () => this.renderFacts());
    this.toggleBtn.addEventListener('click', () => this.toggle());
  }

  get isOpen() {
    return !this.el.hidden;
  }

  toggle(force) {
    const open = force === undefined ? this.el.hidden : force;
    this.el.hidden = !open;
    this.toggleBtn.setAttribute('aria-expanded', String(open));
    document.getElementById('app-view').classList.toggle('dev-open', open);
    clearInterval(this.tick);
    clearInterval(this.outboxTick);
    if (open) {
      this.renderFacts();
      this.tick = setInterval(() => this.renderFacts(), 1000);
      this.loadOutbox();
      this.outboxTick = setInterval(() => this.loadOutbox(), OUTBOX_EVERY_MS);
      this.logEl.scrollTop = this.logEl.scrollHeight;
    } else {
      this.outboxSeq++; // an answer on its way is for a panel now closed
      this.outboxList.replaceChildren(); // the next user on this tab sees none of it
      this.toggleBtn.focus();
    }
  }

  build() {
    // Connection facts
    this.fStatus = h('dd', { testid: 'dev-status' });
    this.fUrl = h('dd', {}, h('code', { testid: 'dev-ws-url' }));
    this.fClose = h('dd', { id: 'last-close', testid: 'last-close' }, 'none yet');
    this.fToken = h('dd', { testid: 'dev-token-exp' });
    this.fUser = h('dd', { testid: 'dev-user' });
    this.connBtn = h('button', { type: 'button', class: 'btn btn-small', testid: 'dev-connect-toggle', on: { click: () => this.toggleConnection() } });
    this.ticket = h('input', { type: 'checkbox', id: 'dev-use-ticket', testid: 'dev-use-ticket', on: { change: () => { this.socket.useTicket = this.ticket.checked; } } });
    this.copyStatus = h('p', { class: 'muted small', testid: 'copy-status', 'aria-live': 'polite' });
    this.curlPreview = h('code', { class: 'curl', testid: 'curl-preview' });

    // Composer
    this.editor = h('textarea', {
      id: 'dev-editor',
      testid: 'dev-editor',
      class: 'code-input',
      rows: 8,
      spellcheck: false,
      autocapitalize: 'none',
      autocomplete: 'off',
      on: { keydown: (ev) => { if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); this.sendEditor(); } } },
    });
    this.editor.value = JSON.stringify(this.template('ping'), null, 2);
    this.editorError = h('p', { class: 'form-error', testid: 'dev-error', role: 'alert', hidden: true });

    // Log controls
    this.filter = h('select', { id: 'frame-filter', testid: 'frame-filter', on: { change: () => this.applyFilter() } });
    this.dirFilter = h('select', { id: 'frame-dir-filter', testid: 'frame-dir-filter', 'aria-label': 'Direction', on: { change: () => this.applyFilter() } },
      h('option', { value: '' }, 'in + out'), h('option', { value: 'in' }, '← in'), h('option', { value: 'out' }, '→ out'));
    this.pauseBtn = h('button', { type: 'button', class: 'btn btn-small', testid: 'frame-pause', 'aria-pressed': 'false', on: { click: () => this.togglePause() } }, 'Pause');
    this.countEl = h('span', { class: 'muted small', testid: 'frame-count' });
    this.logEl = h('ol', { id: 'frame-log', class: 'frame-log', testid: 'frame-log', 'aria-label': 'Frame log' });
    this.renderFilterOptions();

    // Push outbox
    this.outboxCounts = Object.fromEntries(OUTBOX_STATES.map((st) => [st, h('dd', { testid: 'outbox-count', dataset: { state: st } }, '–')]));
    this.outboxStatus = h('p', { class: 'muted small', testid: 'outbox-status', 'aria-live': 'polite' });
    this.outboxList = h('ol', { class: 'outbox', testid: 'outbox-list', 'aria-label': 'Latest pushes' });

    setChildren(this.el,
      h('header', { class: 'dev-head' },
        h('h2', {}, 'Developer'),
        h('button', { type: 'button', class: 'btn btn-ghost', testid: 'devpanel-close', 'aria-label': 'Close developer panel', on: { click: () => this.toggle(false) } }, 'Close')),
      h('div', { class: 'dev-scroll' },
        h('section', { class: 'dev-section', 'aria-labelledby': 'dev-conn-h' },
          h('h3', { id: 'dev-conn-h' }, 'Connection'),
          h('dl', { class: 'facts' },
            h('dt', {}, 'Status'), this.fStatus,
            h('dt', {}, 'Socket'), this.fUrl,
            h('dt', {}, 'Last disconnect'), this.fClose,
            h('dt', {}, 'Access token'), this.fToken,
            h('dt', {}, 'Signed in as'), this.fUser),
          h('div', { class: 'button-row' },
            h('button', { type: 'button', class: 'btn btn-small', id: 'copy-ws-url', testid: 'copy-ws-url', on: { click: () => this.copyWsUrl() } }, 'Copy WebSocket URL'),
            h('button', { type: 'button', class: 'btn btn-small', id: 'copy-curl', testid: 'copy-curl', on: { click: () => this.copyCurl() } }, 'Copy curl'),
            h('button', { type: 'button', class: 'btn btn-small', testid: 'dev-reconnect', on: { click: () => this.socket.reconnectNow() } }, 'Reconnect'),
            this.connBtn),
          this.curlPreview,
          this.copyStatus,
          h('label', { class: 'check small', for: 'dev-use-ticket' }, this.ticket, ' Connect with a one-time ticket (no token in the URL)')),
        h('section', { class: 'dev-section', 'aria-labelledby': 'dev-outbox-h' },
          h('div', { class: 'log-head' },
            h('h3', { id: 'dev-outbox-h' }, 'Push outbox'),
            h('button', { type: 'button', class: 'btn btn-small', testid: 'outbox-refresh', on: { click: () => this.loadOutbox() } }, 'Refresh')),
          h('p', { class: 'muted small' }, 'Pushes to your devices, made while you had no live connection.'),
          h('dl', { class: 'facts outbox-counts' },
            OUTBOX_STATES.map((st) => [h('dt', {}, st[0].toUpperCase() + st.slice(1)), this.outboxCounts[st]])),
          this.outboxStatus,
          this.outboxList),
        h('section', { class: 'dev-section', 'aria-labelledby': 'dev-send-h' },
          h('h3', { id: 'dev-send-h' }, 'Send a frame'),
          h('div', { class: 'templates', role: 'group', 'aria-label': 'Frame templates' },
            CLIENT_TYPES.map((t) => h('button', {
              type: 'button',
              class: 'btn btn-tiny',
              testid: `dev-template-${t}`,
              on: { click: () => this.useTemplate(t) },
            }, t))),
          h('label', { for: 'dev-editor', class: 'visually-hidden' }, 'Frame JSON'),
          this.editor,
          this.editorError,
          h('div', { class: 'button-row' },
            h('button', { type: 'button', class: 'btn btn-primary btn-small', id: 'dev-send', testid: 'dev-send', on: { click: () => this.sendEditor() } }, 'Send'),
            h('button', { type: 'button', class: 'btn btn-small', id: 'dev-ping', testid: 'dev-ping', on: { click: () => this.sendFrame(this.template('ping')) } }, 'Ping'),
            h('button', { type: 'button', class: 'btn btn-small', testid: 'dev-format', on: { click: () => this.formatEditor() } }, 'Format'),
            h('span', { class: 'muted small' }, 'Ctrl+Enter sends'))),
        h('section', { class: 'dev-section dev-log', 'aria-labelledby': 'dev-log-h' },
          h('div', { class: 'log-head' },
            h('h3', { id: 'dev-log-h' }, 'Frames'),
            h('label', { for: 'frame-filter', class: 'small' }, 'Type'), this.filter,
            this.dirFilter,
            this.pauseBtn,
            h('button', { type: 'button', class: 'btn btn-small', testid: 'frame-clear', on: { click: () => this.clear() } }, 'Clear'),
            this.countEl),
          this.logEl)));
  }

  // ------------------------------------------------------------ facts / copy

  renderFacts() {
    if (!this.isOpen) return;
    const s = this.socket;
    let status = s.status;
    if (status === 'reconnecting') status += ` in ${Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000))} s (attempt ${s.attempt})`;
    if (status === 'live' && s.connectedAt) status += ` for ${Math.round((Date.now() - s.connectedAt) / 1000)} s`;
    this.fStatus.textContent = status;
    this.fUrl.firstChild.textContent = session.access ? redactUrl(s.currentUrl()) : '—';
    const lc = s.lastClose;
    if (lc) {
      this.fClose.textContent = `${describeClose(lc.code)}${lc.reason ? ` — “${lc.reason}”` : ''} at ${clockWithMillis(lc.at)}`;
      this.fClose.dataset.code = String(lc.code);
    }
    const exp = session.accessExpLocal;
    if (exp) {
      const left = Math.round((exp - Date.now()) / 1000);
      this.fToken.textContent = left > 0
        ? `expires in ${left >= 120 ? `${Math.floor(left / 60)} min` : `${left} s`} (${new Date(exp).toLocaleTimeString()})`
        : 'expired';
    } else this.fToken.textContent = '—';
    const u = this.chat.me;
    this.fUser.textContent = u ? `${u.username} (id ${u.id})` : '—';
    this.connBtn.textContent = s.enabled ? 'Disconnect' : 'Connect';
    this.curlPreview.textContent = this.curl(true);
  }

  toggleConnection() {
    if (this.socket.enabled) this.socket.stop('disconnected from the developer panel');
    else this.socket.start();
    this.renderFacts();
  }

  curl(redacted) {
    const id = this.chat.activeId;
    const path = id !== null ? `api/conversations/${id}/messages/?limit=20` : 'api/conversations/';
    const token = redacted ? '…' : session.access;
    return `curl -sS -H ${shellQuote(`Authorization: Bearer ${token}`)} ${shellQuote(apiUrl(path))}`;
  }

  async copy(text, what) {
    const ok = await copyText(text);
    const exp = session.accessExpLocal;
    this.copyStatus.textContent = ok
      ? `Copied the ${what}${exp ? `; its token is valid until ${new Date(exp).toLocaleTimeString()}` : ''}.`
      : `Could not reach the clipboard; select and copy: ${text}`;
  }

  copyWsUrl() {
    this.copy(this.socket.currentUrl(), 'WebSocket URL');
  }

  copyCurl() {
    this.copy(this.curl(false), 'curl command');
  }

  // ------------------------------------------------------------ push outbox

  async loadOutbox() {
    if (!this.isOpen || !session.signedIn) return;
    const mine = ++this.outboxSeq;
    try {
      const data = await request('GET', 'api/push/deliveries/?limit=20');
      if (mine !== this.outboxSeq) return;
      this.renderOutbox(data);
    } catch (err) {
      if (mine !== this.outboxSeq) return;
      this.outboxStatus.textContent = `Could not read the outbox: ${err.detail || err.message}`;
    }
  }

  renderOutbox(data) {
    const counts = (data && data.counts) || {};
    for (const st of OUTBOX_STATES) this.outboxCounts[st].textContent = String(counts[st] || 0);
    const list = (data && data.results) || [];
    this.outboxStatus.textContent = list.length
      ? `The latest ${list.length}, newest first; updated ${clockWithMillis()}.`
      : 'No pushes yet.';
    const time = (iso) => (iso ? clockWithMillis(new Date(iso)) : '');
    setChildren(this.outboxList, list.map((d) => {
      const conv = this.chat.conversations.get(d.conversation_id);
      return h('li', {
        class: `outbox-item outbox-${d.state}`,
        testid: 'outbox-item',
        dataset: { deliveryId: String(d.id), state: d.state, deviceId: String(d.device_id), conversationId: String(d.conversation_id) },
      },
      h('div', { class: 'outbox-top' },
        h('span', { class: 'outbox-state' }, d.state),
        h('span', {}, `${d.platform} device ${d.device_id}`),
        h('span', { class: 'muted' }, `#${d.id}`)),
      h('div', { class: 'muted' },
        `${conv ? `“${this.chat.titleOf(conv)}”` : 'conversation'} (${d.conversation_id}), message ${d.message_id} · `,
        h('span', { testid: 'outbox-attempts' }, `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`)),
      h('div', { class: 'muted' },
        `made ${time(d.created_at)} · changed ${time(d.updated_at)}${d.next_at ? ` · next try ${time(d.next_at)}` : ''}`),
      d.last_error ? h('div', { class: 'outbox-error', testid: 'outbox-error' }, d.last_error) : null);
    }));
  }

  // ---------------------------------------------------------------- composer

  template(type) {
    const chat = this.chat;
    const convId = chat.activeId ?? ([...chat.conversations.keys()][0] || 1);
    const last = chat.thread && chat.thread.convId === convId ? chat.thread.maxId() : ((chat.conversations.get(convId) || {}).last_message || {}).id || 0;
    switch (type) {
      case 'ping':
        return { type, timestamp: new Date().toISOString(), request_id: requestId() };
      case 'join_conversation': {
        const since = chat.versions.get(convId);
        return since
          ? { type, conversation_id: convId, since_version: since, request_id: requestId() }
          : { type, conversation_id: convId, last_message_id: last, request_id: requestId() };
      }
      case 'leave_conversation':
        return { type, conversation_id: convId, request_id: requestId() };
      case 'new_message':
        return { type, conversation_id: convId, content: 'Hello from the developer panel', client_id: uuid(), request_id: requestId() };
      case 'typing':
        return { type, conversation_id: convId, is_typing: true, request_id: requestId() };
      case 'read_receipt':
        return { type, conversation_id: convId, message_id: last, request_id: requestId() };
      case 'authenticate':
        return { type, token: session.access, request_id: requestId() };
      default:
        return { type };
    }
  }

  useTemplate(type) {
    this.editor.value = JSON.stringify(this.template(type), null, 2);
    this.editorError.hidden = true;
    this.editor.focus();
  }

  formatEditor() {
    try {
      this.editor.value = JSON.stringify(JSON.parse(this.editor.value), null, 2);
      this.editorError.hidden = true;
    } catch (err) {
      this.showEditorError(`Not valid JSON: ${err.message}`);
    }
  }

  showEditorError(text) {
    this.editorError.textContent = text;
    this.editorError.hidden = false;
  }

  sendEditor() {
    let obj;
    try {
      obj = JSON.parse(this.editor.value);
    } catch (err) {
      this.showEditorError(`Not valid JSON: ${err.message}`);
      return;
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      this.showEditorError('A frame is one JSON object with a "type".');
      return;
    }
    this.sendFrame(obj);
  }

  sendFrame(obj) {
    if (!this.socket.send(obj)) {
      this.showEditorError(`Not sent: the socket is ${this.socket.status}.`);
      return;
    }
    this.editorError.hidden = true;
  }

  // --------------------------------------------------------------------- log

  renderFilterOptions() {
    const current = this.filter.value;
    setChildren(this.filter,
      h('option', { value: '' }, 'All types'),
      [...this.types].sort().map((t) => h('option', { value: t }, t)));
    this.filter.value = current;
  }

  onFrame({ dir, data, raw, at }) {
    const type = data && typeof data.type === 'string' ? data.type : '(not JSON)';
    if (!this.types.has(type)) {
      this.types.add(type);
      this.renderFilterOptions();
    }
    this.push({ kind: 'frame', dir, type, data, raw, at });
  }

  onEvent({ text, at }) {
    this.push({ kind: 'event', text, at });
  }

  push(entry) {
    if (this.paused) {
      this.buffer.push(entry);
      if (this.buffer.length > MAX_ENTRIES) this.buffer.shift();
      this.pauseBtn.textContent = `Resume (${this.buffer.length} new)`;
      return;
    }
    this.appendEntries([entry]);
  }

  appendEntries(entries) {
    const log = this.logEl;
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const e of entries) frag.append(this.entryEl(e));
    log.append(frag);
    while (log.childElementCount > MAX_ENTRIES) log.firstElementChild.remove();
    this.countEl.textContent = `${log.querySelectorAll('[data-testid="frame-entry"]').length} frames`;
    if (stick) log.scrollTop = log.scrollHeight;
  }

  entryEl(e) {
    const time = h('time', { class: 'frame-time', dateTime: e.at.toISOString() }, clockWithMillis(e.at));
    if (e.kind === 'event') {
      const li = h('li', { class: 'frame frame-sys', testid: 'frame-event', dataset: { dir: 'sys', type: '' } }, time, h('span', { class: 'frame-text' }, e.text));
      li.hidden = !this.matches(li);
      return li;
    }
    const arrow = e.dir === 'in' ? '←' : '→';
    const oneLine = e.data ? JSON.stringify(e.data) : String(e.raw);
    const pretty = e.data ? JSON.stringify(e.data, null, 2) : String(e.raw);
    const li = h('li', { class: `frame frame-${e.dir}`, testid: 'frame-entry', dataset: { dir: e.dir, type: e.type } },
      h('details', {},
        h('summary', {},
          time,
          h('span', { class: 'frame-dir', 'aria-label': e.dir === 'in' ? 'received' : 'sent' }, arrow),
          h('span', { class: 'frame-type' }, e.type),
          h('span', { class: 'frame-preview' }, oneLine.length > 160 ? `${oneLine.slice(0, 160)}…` : oneLine)),
        h('pre', { class: 'frame-json' }, pretty)));
    li.hidden = !this.matches(li);
    return li;
  }

  matches(li) {
    const type = this.filter.value;
    const dir = this.dirFilter.value;
    if (li.dataset.dir === 'sys') return !type && !dir;
    return (!type || li.dataset.type === type) && (!dir || li.dataset.dir === dir);
  }

  applyFilter() {
    for (const li of this.logEl.children) li.hidden = !this.matches(li);
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseBtn.setAttribute('aria-pressed', String(this.paused));
    if (this.paused) {
      this.pauseBtn.textContent = 'Resume';
    } else {
      this.pauseBtn.textContent = 'Pause';
      const entries = this.buffer;
      this.buffer = [];
      this.appendEntries(entries);
    }
  }

  clear() {
    this.logEl.replaceChildren();
    this.buffer = [];
    if (this.paused) this.pauseBtn.textContent = 'Resume';
    this.countEl.textContent = '';
  }
}
