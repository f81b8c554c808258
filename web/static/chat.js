// chat.js — conversations, messages, typing, read receipts and presence.
// State lives in plain Maps; the DOM is updated in place (reconcile) so that
// focus, open editors and the scroll position survive live updates.

import { h, setChildren, reconcile, displayName, initials, codePoints, uuid, shortTime, messageTime, fullTime } from './dom.js';
import { request, qs } from './api.js';
import { MAX_ATTACHMENTS, Lightbox, uploadFile, filesOf, hasFiles, attachmentsEl, pendingFilesEl, humanSize, fileBadge } from './attach.js';

const PAGE_SIZE = 50;
const LIST_PAGE_SIZE = 100; // conversations (and participants) per request: the server's maximum
const ACK_TIMEOUT_MS = 10000; // no message_ack by then: re-send over REST (same client_id)
const TYPING_SEND_EVERY_MS = 3000; // re-announce "typing" at most this often
const TYPING_IDLE_MS = 3000; // quiet this long: send is_typing false
const TYPING_SHOW_MS = 6000; // show someone as typing this long without news
const TYPING_STOP_GAP_MS = 1100; // the server forwards ≤ 1 typing frame/s, so space them
const MAX_CONTENT = 4000;
const GROUP_WINDOW_MS = 5 * 60e3; // consecutive messages closer than this share a header
const JUMP_PAGE_SIZE = 100; // history page size while loading back to a message we jump to
const JUMP_MAX_PAGES = 50; // give up a jump past this many pages
const SYNC_PAGE_SIZE = 200; // changes per GET /api/sync/ while catching up after a reconnect
/** REACTION_CHOICES are the emoji the reaction picker offers. */
export const REACTION_CHOICES = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

/**
 * mergeMessage is what the console keeps when it learns a new state m of a
 * message it holds as old. A state older than the one held (a smaller
 * version) is dropped. Events fanned out to every socket carry reactions
 * without "me" (one payload for all viewers): the "me" known locally for
 * the same emoji is kept then.
 */
export function mergeMessage(old, m) {
  if (!old) return m;
  if (typeof old.version === 'number' && typeof m.version === 'number' && m.version < old.version) return old;
  if (Array.isArray(m.reactions) && m.reactions.some((r) => typeof r.me !== 'boolean')) {
    const mine = new Map((old.reactions || []).map((r) => [r.emoji, r.me === true]));
    m = { ...m, reactions: m.reactions.map((r) => (typeof r.me === 'boolean' ? r : { ...r, me: mine.get(r.emoji) || false })) };
  }
  return m;
}

/**
 * applyReaction returns m with one reaction_updated event applied: the
 * emoji's count as the event says (gone at 0), and "me" changed only when
 * the event is about the current user. An event the message already
 * reflects (its version is not newer) changes nothing.
 */
export function applyReaction(m, f, meId) {
  if (typeof m.version === 'number' && typeof f.version === 'number' && f.version <= m.version) return m;
  const list = (m.reactions || []).map((r) => ({ ...r }));
  let r = list.find((x) => x.emoji === f.emoji);
  if (!r && f.count > 0) list.push((r = { emoji: f.emoji, count: 0, me: false }));
  if (r) {
    r.count = f.count;
    if (f.user_id === meId) r.me = Boolean(f.added);
  }
  const next = { ...m, reactions: list.filter((x) => x.count > 0) };
  if (typeof f.version === 'number') next.version = f.version;
  return next;
}

const NAME_CHAR = /[A-Za-z0-9_.-]/;

/**
 * mentionNodes splits content into text and highlighted @mentions. names
 * maps a lower-case username to the user id the message mentions (only
 * those: an @name the server did not resolve stays plain text). A name
 * starts after an @ at the start or after a character no username has; a
 * name ending in "." or "-" also tries itself without them, as the server
 * does. Everything is text nodes: content never becomes markup.
 */
export function mentionNodes(content, names, meId) {
  if (!names || !names.size) return [content];
  const out = [];
  const re = /@([A-Za-z0-9_.-]+)/g;
  let last = 0;
  let hit;
  while ((hit = re.exec(content))) {
    const at = hit.index;
    if (at > 0 && NAME_CHAR.test(content[at - 1])) continue;
    let name = hit[1];
    let id = names.get(name.toLowerCase());
    while (id === undefined && /[.-]$/.test(name)) {
      name = name.slice(0, -1);
      id = names.get(name.toLowerCase());
    }
    if (id === undefined) continue;
    out.push(content.slice(last, at));
    out.push(h('span', {
      class: `mention${id === meId ? ' mention-me' : ''}`,
      testid: 'mention',
      dataset: { userId: String(id) },
    }, `@${name}`));
    last = at + 1 + name.length;
    re.lastIndex = last;
  }
  out.push(content.slice(last));
  return out;
}

/** Thread is the loaded message history of the open conversation. */
class Thread {
  constructor(convId) {
    this.convId = convId;
    this.messages = new Map(); // id → message; the Map is what makes ids unique
    this.loaded = false;
    this.hasMore = false;
    this.loadingOlder = false;
    this.error = '';
    this.joinCursor = null; // last_message_id or since_version sent with the latest join
    this.joinedByVersion = false; // the latest join asked for since_version
    this.pageVersion = 0; // the highest message version in the first (newest) page
    this.rejoin = false;
    this.max = 0;
  }

  add(m) {
    if (!m || typeof m.id !== 'number') return false;
    const old = this.messages.get(m.id);
    this.messages.set(m.id, mergeMessage(old, m));
    const had = Boolean(old);
    if (m.id > this.max) this.max = m.id;
    return !had;
  }

  maxId() {
    return this.max;
  }

  minId() {
    let min = 0;
    for (const id of this.messages.keys()) if (!min || id < min) min = id;
    return min;
  }

  sorted() {
    return [...this.messages.values()].sort((a, b) => a.id - b.id);
  }
}

/** attachmentsSummary stands for a message's files where its text would show: "📎 cat.png", "📎 3 files". */
export function attachmentsSummary(list) {
  const n = Array.isArray(list) ? list.length : 0;
  if (!n) return '';
  return n === 1 ? `📎 ${list[0].name}` : `📎 ${n} files`;
}

function participantOf(conv, userId) {
  return (conv && conv.participants || []).find((p) => p.user && p.user.id === userId) || null;
}

function lastActivity(c) {
  return Date.parse((c.last_message && c.last_message.created_at) || c.updated_at || c.created_at) || 0;
}

function joinNames(names) {
  if (names.length <= 1) return names.join('');
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]}`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others`;
}

/**
 * Chat is the chat screen's controller. It needs the ChatSocket and a
 * toast(text, kind) function; the app calls start(me) after sign-in and
 * reset() on sign-out.
 */
export class Chat extends EventTarget {
  constructor({ socket, toast }) {
    super();
    this.socket = socket;
    this.toast = toast;
    // report(target), set by app.js, opens the report dialog for
    // {message} or {user}; null: no Report buttons.
    this.report = null;
    this.me = null;
    this.conversations = new Map();
    this.presence = new Map(); // user id → online?
    this.activeId = null;
    this.thread = null;
    this.pending = new Map(); // client_id → pending send
    this.desiredJoins = new Set(); // conversations this tab keeps joined (rejoined on reconnect)
    this.typing = new Map(); // conversation id → Map(user id → {name, until})
    this.typingTimer = 0;
    this.out = { convId: null, active: false, lastSentAt: 0, idleTimer: 0, startTimer: 0, stopTimer: 0 };
    this.drafts = new Map();
    this.leaving = new Set(); // conversations we are leaving on purpose
    this.listCache = new Map();
    this.msgCache = new Map();
    this.openSeq = 0;
    this.listLoaded = false;
    this.listNext = null; // the cursor of the next page of conversations, null when all are shown
    this.listPages = 0;
    this.connectedOnce = false;
    // versions: conversation id → the highest conversation version this tab
    // has seen on the socket for it (joined.version and the versions of the
    // live events that followed). A rejoin asks for what came after it
    // (since_version). REST answers never raise it: events older than such
    // an answer may still be on their way over the socket.
    this.versions = new Map();
    this.syncCursor = null; // the /api/sync/ cursor; null until the first answer
    this.syncAsked = false;
    // serverSyncs: a joined frame carried a version, so this server takes
    // since_version and has /api/sync/. Until then the console joins with
    // last_message_id and never asks for /api/sync/ (an older server would
    // only answer 404).
    this.serverSyncs = false;
    this.syncing = null;
    this.replyTo = new Map(); // conversation id → the message the composer answers
    this.users = new Map(); // user id → user-lite, for @mentions
    this.participantsAsked = new Set(); // conversations whose full participant list was asked for
    this.pendingJump = null; // {convId, messageId} to show once the conversation is open
    this.jumpedEl = null;
    // uploads: conversation id → the files picked for its next message, in
    // order: {key, file, name, size, mime, state: "uploading" | "done" |
    // "failed", progress (0…1), error, upload (the server's answer), abort}.
    this.uploads = new Map();
    this.uploadCache = new Map();
    this.dragDepth = 0;
    // blocked: the ids of the users I block (GET /api/users/blocked/).
    // Their messages still arrive (in groups); they are shown collapsed,
    // each until revealed (message ids in revealed).
    this.blocked = new Set();
    this.revealed = new Set();

    const byId = (id) => document.getElementById(id);
    this.els = {
      app: byId('app-view'),
      list: byId('conversation-list'),
      listStatus: byId('conversation-list-status'),
      empty: byId('conversation-empty'),
      pane: byId('conversation-pane'),
      title: byId('conversation-title'),
      subtitle: byId('conversation-subtitle'),
      scroller: byId('message-scroller'),
      messages: byId('message-list'),
      loadOlder: byId('load-older'),
      history: byId('history-status'),
      seenBy: byId('seen-by'),
      typing: byId('typing-indicator'),
      composer: byId('composer'),
      input: byId('composer-input'),
      send: byId('composer-send'),
      count: byId('composer-count'),
      back: byId('back-button'),
      replyBar: byId('reply-bar'),
      replySender: byId('reply-bar-sender'),
      replyText: byId('reply-bar-text'),
      replyCancel: byId('reply-cancel'),
      uploads: byId('composer-uploads'),
      attach: byId('composer-attach'),
      file: byId('composer-file'),
    };
    this.lightbox = new Lightbox(byId('lightbox'));
    this.bind();
    this.bindAttach();
  }

  bind() {
    const e = this.els;
    this.socket.addEventListener('message', (ev) => this.onFrame(ev.detail));
    this.socket.addEventListener('close', () => this.onSocketClosed());
    e.scroller.addEventListener('scroll', () => {
      this.pinned = this.nearBottom();
      if (e.scroller.scrollTop < 150) this.loadOlder();
      if (this.pinned) this.markRead();
    }, { passive: true });
    // A list read to its end stays at its end when the pane changes size
    // (the developer panel opens, the window narrows and bubbles wrap).
    this.pinned = true;
    new ResizeObserver(() => {
      if (!this.pinned || !this.thread || this.nearBottom()) return;
      e.scroller.scrollTop = e.scroller.scrollHeight;
      this.markRead();
    }).observe(e.scroller);
    e.loadOlder.addEventListener('click', () => this.loadOlder());
    e.back.addEventListener('click', () => {
      location.hash = '';
    });
    e.composer.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submitComposer();
    });
    e.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submitComposer();
      } else if (ev.key === 'Escape' && this.activeId !== null && this.replyTo.has(this.activeId)) {
        ev.preventDefault();
        this.cancelReply();
      }
    });
    e.replyCancel.addEventListener('click', () => {
      this.cancelReply();
      e.input.focus();
    });
    e.input.addEventListener('input', () => {
      this.autosize();
      this.updateCount();
      if (e.input.value.trim()) this.typingStarted();
      else this.stopTyping();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.markRead();
      else this.stopTyping();
    });
  }

  // ---------------------------------------------------------------- lifecycle

  start(me) {
    this.me = me;
    this.rememberUser(me);
    this.loadConversations();
    this.loadBlocked();
  }

  // ---------------------------------------------------------------- blocks

  /** loadBlocked reads the block list: whose messages are collapsed. */
  async loadBlocked() {
    try {
      const data = await request('GET', 'api/users/blocked/');
      this.blocked = new Set(((data && data.results) || []).map((u) => u.id));
    } catch {
      return; // shown uncollapsed until the next sign-in: the server still keeps their typing and mentions away
    }
    if (this.thread) this.renderMessages({ preserve: true });
    this.renderList();
    this.dispatchEvent(new CustomEvent('blocked'));
  }

  isBlocked(userId) {
    return this.blocked.has(userId);
  }

  /** setBlocked blocks (or unblocks) a user, then shows the messages accordingly. */
  async setBlocked(user, block) {
    await request(block ? 'PUT' : 'DELETE', `api/users/${user.id}/block/`);
    if (block) this.blocked.add(user.id);
    else this.blocked.delete(user.id);
    if (this.thread) this.renderMessages({ preserve: true });
    this.renderList();
    this.dispatchEvent(new CustomEvent('blocked'));
    this.toast(block ? `You blocked ${displayName(user)}.` : `You unblocked ${displayName(user)}.`);
  }


  reset() {
    this.leaveActive({ silent: true });
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.conversations.clear();
    this.presence.clear();
    this.desiredJoins.clear();
    this.typing.clear();
    this.drafts.clear();
    this.leaving.clear();
    this.listCache.clear();
    this.versions.clear();
    this.syncCursor = null;
    this.syncing = null;
    this.syncAsked = false;
    this.serverSyncs = false;
    this.replyTo.clear();
    for (const list of this.uploads.values()) for (const u of list) u.abort();
    this.uploads.clear();
    this.lightbox.close();
    this.users.clear();
    this.blocked.clear();
    this.revealed.clear();
    this.participantsAsked.clear();
    this.pendingJump = null;
    this.els.list.replaceChildren();
    this.listLoaded = false;
    this.listNext = null;
    this.listPages = 0;
    this.connectedOnce = false;
    this.me = null;
    this.showEmpty();
  }

  /** route opens the conversation named by the URL hash (#/c/<id>), or none. */
  route() {
    if (!this.me) return;
    const m = /^#\/c\/(\d+)$/.exec(location.hash);
    if (m) this.openConversation(Number(m[1]));
    else {
      this.leaveActive();
      this.showEmpty();
    }
  }

  // ------------------------------------------------------------ conversations

  async loadConversations() {
    const st = this.els.listStatus;
    if (!this.listLoaded) {
      st.textContent = 'Loading conversations…';
      st.hidden = false;
    }
    try {
      // As many pages as were shown before (the first, plus any that
      // "More conversations" brought), most recent activity first.
      const fresh = new Map();
      let next = null;
      let pages = 0;
      do {
        const data = await request('GET', `api/conversations/${qs({ limit: LIST_PAGE_SIZE, before: next })}`);
        if (!this.me) return;
        this.addConversations(fresh, data);
        next = (data && data.next) || null;
        pages++;
      } while (next && pages < this.listPages);
      this.conversations = fresh;
      this.listNext = next;
      this.listPages = pages;
      this.listLoaded = true;
      this.maybeStartSync();
      if (this.activeId !== null && !fresh.has(this.activeId) && !(next && await this.stillThere(this.activeId))) {
        // Gone while we were away (removed, or never ours).
        this.toast('That conversation is no longer available.');
        location.hash = '';
      }
      this.renderList();
      if (this.thread) {
        this.renderHeader();
        this.renderSeenBy();
        this.markRead();
      }
    } catch (err) {
      if (!this.me) return;
      st.textContent = `Could not load conversations: ${err.detail || err.message}`;
      st.hidden = false;
    }
  }

  /** addConversations puts a page of conversations into into, noting who is online. */
  addConversations(into, data) {
    for (const c of (data && data.results) || []) {
      into.set(c.id, c);
      for (const p of c.participants || []) {
        this.rememberUser(p.user);
        if (p.user && typeof p.user.is_online === 'boolean') this.presence.set(p.user.id, p.user.is_online);
      }
    }
  }

  /** stillThere asks for a conversation the loaded pages do not reach. */
  async stillThere(id) {
    try {
      return Boolean(await this.fetchConversation(id));
    } catch {
      return false;
    }
  }

  /** loadMore shows the next page of the conversation list. */
  async loadMore() {
    if (!this.listNext || this.loadingMore) return;
    this.loadingMore = true;
    try {
      const data = await request('GET', `api/conversations/${qs({ limit: LIST_PAGE_SIZE, before: this.listNext })}`);
      if (!this.me) return;
      const page = new Map();
      this.addConversations(page, data);
      for (const [id, c] of page) if (!this.conversations.has(id)) this.conversations.set(id, c);
      this.listNext = (data && data.next) || null;
      this.listPages++;
      this.renderList();
    } catch (err) {
      this.toast(`Could not load more conversations: ${err.detail || err.message}`, 'error');
    } finally {
      this.loadingMore = false;
    }
  }

  async fetchConversation(id) {
    const c = await request('GET', `api/conversations/${id}/`);
    this.upsertConversation(c);
    return c;
  }

  upsertConversation(c) {
    if (!c || typeof c.id !== 'number') return;
    const old = this.conversations.get(c.id);
    if (old) {
      if (typeof c.unread_count !== 'number') c.unread_count = old.unread_count;
      if (old.last_message && (!c.last_message || c.last_message.id < old.last_message.id)) c.last_message = old.last_message;
      // Keep read marks that live frames moved past this snapshot.
      for (const p of c.participants || []) {
        const was = participantOf(old, p.user && p.user.id);
        if (was && (was.last_read_message_id || 0) > (p.last_read_message_id || 0)) p.last_read_message_id = was.last_read_message_id;
      }
    }
    for (const p of c.participants || []) {
      this.rememberUser(p.user);
      if (p.user && typeof p.user.is_online === 'boolean' && !this.presence.has(p.user.id)) this.presence.set(p.user.id, p.user.is_online);
    }
    if (typeof c.unread_count !== 'number') c.unread_count = 0;
    this.leaving.delete(c.id);
    this.conversations.set(c.id, c);
    this.renderList();
    if (this.activeId === c.id) {
      this.renderHeader();
      this.renderSeenBy();
    }
    this.dispatchEvent(new CustomEvent('conversation', { detail: c }));
  }

  removeConversation(id, notice) {
    const c = this.conversations.get(id);
    this.conversations.delete(id);
    this.desiredJoins.delete(id);
    this.renderList();
    if (this.activeId === id) {
      if (notice && c) this.toast(notice.replace('%s', this.titleOf(c)));
      this.leaveActive({ silent: true });
      location.hash = '';
      this.showEmpty();
    }
    this.dispatchEvent(new CustomEvent('conversation', { detail: { id, removed: true } }));
  }

  others(c) {
    return (c.participants || []).filter((p) => p.user && p.user.id !== this.me.id);
  }

  titleOf(c) {
    if (!c) return '';
    if (c.is_group) {
      if (c.title && c.title.trim()) return c.title;
      const names = this.others(c).map((p) => displayName(p.user));
      // participants are the first ten; member_count counts them all.
      const others = Math.max((c.member_count || 0) - 1, names.length);
      if (!names.length) return 'Group';
      return others <= 3 ? joinNames(names) : `${names[0]}, ${names[1]} and ${others - 2} others`;
    }
    const other = this.others(c)[0];
    return other ? displayName(other.user) : c.title || 'Just you';
  }

  isOnline(userId) {
    if (this.me && userId === this.me.id) return true;
    return this.presence.get(userId) === true;
  }

  convOnline(c) {
    return this.others(c).some((p) => this.isOnline(p.user.id));
  }

  sortedConversations() {
    return [...this.conversations.values()].sort((a, b) => lastActivity(b) - lastActivity(a) || b.id - a.id);
  }

  renderList() {
    const convs = this.sortedConversations();
    const st = this.els.listStatus;
    if (this.listLoaded) {
      st.hidden = convs.length > 0;
      st.textContent = convs.length ? '' : 'No conversations yet. Start one with “New”.';
    }
    reconcile(
      this.els.list,
      convs,
      (c) => c.id,
      (c) => h('li', { class: 'conv-row' }, h('a', {
        class: 'conv',
        href: `#/c/${c.id}`,
        testid: 'conversation-item',
        dataset: { conversationId: String(c.id) },
      })),
      (li, c) => this.updateConvItem(li.firstChild, c),
      this.listCache,
    );
    if (!this.moreButton) {
      this.moreButton = h('button', { type: 'button', class: 'btn btn-tiny', testid: 'conversation-list-more', on: { click: () => this.loadMore() } }, 'More conversations');
      this.els.list.after(this.moreButton);
    }
    this.moreButton.hidden = !this.listNext;
  }

  updateConvItem(a, c) {
    const active = c.id === this.activeId;
    const unread = active ? 0 : c.unread_count || 0;
    const title = this.titleOf(c);
    const online = this.convOnline(c);
    const lm = c.last_message;
    let preview = 'No messages yet';
    if (lm) {
      const who = lm.sender && this.me && lm.sender.id === this.me.id ? 'You' : c.is_group ? displayName(lm.sender) : '';
      const text = lm.is_deleted ? 'Message deleted' : lm.content || attachmentsSummary(lm.attachments);
      preview = who ? `${who}: ${text}` : text;
      if (!lm.is_deleted && lm.sender && this.blocked.has(lm.sender.id)) preview = 'Message from someone you blocked';
    }
    const sig = JSON.stringify([title, online, unread, preview, lm && lm.created_at, active, c.is_group]);
    if (a._sig === sig) return;
    a._sig = sig;
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    a.dataset.unread = String(unread);
    setChildren(
      a,
      h('span', { class: `avatar${c.is_group ? ' avatar-group' : ''}`, 'aria-hidden': 'true' }, initials(title)),
      h('span', { class: 'conv-body' },
        h('span', { class: 'conv-top' },
          h('span', { class: 'conv-title', testid: 'conversation-title' }, title),
          h('span', {
            class: 'presence',
            testid: 'presence',
            dataset: { online: String(online) },
            role: 'img',
            'aria-label': online ? 'online' : 'offline',
            title: online ? 'Online' : 'Offline',
          }),
          lm ? h('time', { class: 'conv-time', dateTime: lm.created_at, title: fullTime(lm.created_at) }, shortTime(lm.created_at)) : null),
        h('span', { class: 'conv-bottom' },
          h('span', { class: `conv-preview${lm && lm.is_deleted ? ' deleted' : ''}`, testid: 'conversation-preview' }, preview),
          unread > 0 ? h('span', { class: 'badge', testid: 'conversation-unread', 'aria-label': `${unread} unread` }, unread > 99 ? '99+' : String(unread)) : null)),
    );
  }

  // ------------------------------------------------------------- open / leave

  showEmpty() {
    this.els.pane.hidden = true;
    this.els.empty.hidden = false;
    this.els.app.dataset.view = 'list';
    this.renderList();
  }

  async openConversation(id) {
    if (this.activeId === id && this.thread) {
      this.els.app.dataset.view = 'conversation';
      return;
    }
    this.leaveActive();
    const seq = ++this.openSeq;
    this.activeId = id;
    this.pinned = true;
    const t = new Thread(id);
    this.thread = t;
    this.msgCache.clear();
    this.els.messages.replaceChildren();
    this.els.empty.hidden = true;
    this.els.pane.hidden = false;
    this.els.app.dataset.view = 'conversation';
    this.els.input.value = this.drafts.get(id) || '';
    this.renderReplyBar();
    this.renderUploads();
    this.autosize();
    this.updateCount();
    this.renderHeader();
    this.renderHistory();
    this.renderSeenBy();
    this.renderTyping();
    this.renderList();

    if (!this.conversations.has(id)) {
      try {
        await this.fetchConversation(id);
      } catch (err) {
        if (seq !== this.openSeq) return;
        this.toast(err.status === 404 ? 'Conversation not found.' : `Could not open the conversation: ${err.detail}`, 'error');
        location.hash = '';
        return;
      }
      if (seq !== this.openSeq) return;
    }
    await this.loadNewest(t);
    if (seq !== this.openSeq || !t.loaded) return;
    this.desiredJoins.add(id);
    if (this.socket.live) this.sendJoin(id, {});
    this.markRead();
    if (window.matchMedia('(pointer: fine)').matches) this.els.input.focus({ preventScroll: true });
  }

  /** loadNewest (re)loads the newest page into t, keeping live messages newer than it. */
  async loadNewest(t, { replace = false } = {}) {
    t.error = '';
    this.renderHistory();
    let page;
    try {
      page = await request('GET', `api/conversations/${t.convId}/messages/${qs({ limit: PAGE_SIZE })}`);
    } catch (err) {
      if (this.thread !== t) return;
      t.error = err.detail || err.message;
      this.renderHistory();
      return;
    }
    if (this.thread !== t) return;
    const results = (page && page.results) || [];
    if (replace && results.length) {
      // The gap was too large to replay: start over from the newest page,
      // keeping anything newer that arrived live meanwhile.
      const pageMax = results[results.length - 1].id;
      const keep = [...t.messages.values()].filter((m) => m.id > pageMax);
      t.messages.clear();
      t.max = 0;
      for (const m of keep) t.add(m);
    }
    for (const m of results) t.add(m);
    if (!t.loaded || replace) t.hasMore = Boolean(page && page.has_more);
    const first = !t.loaded;
    if (first) {
      // The newest page shows every change up to when it was read, so a
      // join asking for what came after its highest version misses nothing.
      for (const m of results) if (typeof m.version === 'number' && m.version > t.pageVersion) t.pageVersion = m.version;
    }
    t.loaded = true;
    this.renderMessages({ toBottom: first });
    if (first) {
      this.fillViewport();
      this.runJump();
    }
  }

  leaveActive({ silent = false } = {}) {
    const id = this.activeId;
    if (id === null) return;
    this.drafts.set(id, this.els.input.value);
    this.stopTyping();
    if (this.desiredJoins.has(id)) {
      this.desiredJoins.delete(id);
      if (!silent && this.socket.live) this.socket.send({ type: 'leave_conversation', conversation_id: id, request_id: `leave:${id}` });
    }
    this.versions.delete(id); // a later open reads the history afresh
    this.jumpedEl = null;
    this.activeId = null;
    this.thread = null;
    this.openSeq++;
    this.msgCache.clear();
    this.els.messages.replaceChildren();
    this.renderUploads();
    this.renderList();
  }

  sendJoin(id, { rejoin = false }) {
    const t = this.thread && this.thread.convId === id && this.thread.loaded ? this.thread : null;
    const c = this.conversations.get(id);
    const cursor = t ? t.maxId() : (c && c.last_message && c.last_message.id) || 0;
    const frame = { type: 'join_conversation', conversation_id: id, request_id: `join:${id}` };
    // since_version when this tab knows a version of the conversation (a
    // server with versions): the replay then brings edits, deletions and
    // reactions too. Otherwise last_message_id: new messages only.
    const since = this.serverSyncs ? this.versions.get(id) || (t && t.pageVersion) || 0 : 0;
    if (since) frame.since_version = since;
    else if (cursor) frame.last_message_id = cursor;
    if (t) {
      t.joinCursor = since || cursor || null;
      t.joinedByVersion = Boolean(since);
      t.rejoin = rejoin;
    }
    this.socket.send(frame);
  }

  // ------------------------------------------------------------------ frames

  onFrame(f) {
    if (!f || !this.me) return;
    this.noteVersion(f);
    switch (f.type) {
      case 'connection_established':
        this.onConnected(f);
        break;
      case 'new_message':
        this.onNewMessage(f.conversation_id, f.message);
        break;
      case 'notification':
        this.onNewMessage(f.conversation_id, f.message);
        break;
      case 'message_ack':
        if (f.message) this.onNewMessage(f.message.conversation_id, f.message);
        break;
      case 'message_updated':
      case 'message_deleted':
        this.onMessageChanged(f.conversation_id, f.message);
        break;
      case 'reaction_updated':
        this.onReactionUpdated(f);
        break;
      case 'typing':
        this.onTyping(f);
        break;
      case 'read_receipt':
        this.onReadReceipt(f);
        break;
      case 'presence':
        this.setPresence(f.user_id, f.status === 'online');
        break;
      case 'conversation_updated':
        this.onConversationUpdated(f.conversation);
        break;
      case 'joined':
        this.onJoined(f);
        break;
      case 'left':
        this.desiredJoins.delete(f.conversation_id);
        break;
      case 'error':
        this.onErrorFrame(f);
        break;
      default:
        break;
    }
  }

  onConnected(f) {
    if (f.user && f.user.id === this.me.id) this.me = { ...this.me, ...f.user };
    const reconnect = this.connectedOnce;
    this.connectedOnce = true;
    for (const id of this.desiredJoins) {
      if (this.thread && this.thread.convId === id) {
        if (this.thread.loaded) this.sendJoin(id, { rejoin: reconnect });
      } else {
        this.sendJoin(id, {});
      }
    }
    // Badges and previews of conversations we had not joined may have moved
    // while we were away: notifications are not replayed. With a sync
    // cursor, only what changed is fetched; without one, the whole list.
    if (reconnect && this.listLoaded && this.syncCursor !== null) this.catchUp();
    else if (reconnect || !this.listLoaded) this.loadConversations();
  }

  /**
   * noteVersion raises the version known for a joined conversation from a
   * frame of its topic (live or replayed, in version order on this socket).
   */
  noteVersion(f) {
    let v;
    switch (f.type) {
      case 'joined':
      case 'reaction_updated':
        v = f.version;
        break;
      case 'new_message':
      case 'message_updated':
      case 'message_deleted':
        v = f.message && f.message.version;
        break;
      default:
        return;
    }
    const id = f.conversation_id ?? (f.message && f.message.conversation_id);
    if (typeof v !== 'number' || !this.desiredJoins.has(id)) return;
    if (v > (this.versions.get(id) || 0)) this.versions.set(id, v);
  }

  // --------------------------------------------------------------------- sync

  /** maybeStartSync takes a sync cursor once, when the server has shown it syncs. */
  maybeStartSync() {
    if (!this.serverSyncs || this.syncCursor !== null || this.syncAsked || !this.listLoaded) return;
    this.syncAsked = true;
    this.startSync();
  }

  /** startSync takes the current /api/sync/ cursor; reconnects fetch what changed after it. */
  async startSync() {
    if (!this.me || this.syncCursor !== null) return;
    try {
      const data = await request('GET', 'api/sync/');
      if (this.me && data && data.cursor !== undefined && data.cursor !== null) this.syncCursor = data.cursor;
    } catch {
      // A server without /api/sync/: reconnects reload the whole list.
    }
  }

  /** catchUp applies every change after the sync cursor to the conversation list (and the open thread). */
  catchUp() {
    if (this.syncing) return this.syncing;
    this.syncing = (async () => {
      try {
        for (let i = 0; i < 50; i++) {
          const data = await request('GET', `api/sync/${qs({ since: this.syncCursor, limit: SYNC_PAGE_SIZE })}`);
          if (!this.me || !data) return;
          this.applySync(data);
          if (data.cursor !== undefined && data.cursor !== null) this.syncCursor = data.cursor;
          if (!data.has_more) return;
        }
        await this.loadConversations(); // far behind: the list is cheaper whole
      } catch {
        if (!this.me) return;
        // A cursor the server no longer takes: start over from a fresh one.
        this.syncCursor = null;
        await this.startSync();
        await this.loadConversations();
      } finally {
        this.syncing = null;
      }
    })();
    return this.syncing;
  }

  applySync(data) {
    for (const id of data.removed_conversation_ids || []) {
      if (this.conversations.has(id)) this.removeConversation(id, this.leaving.has(id) ? '' : 'You are no longer in “%s”.');
    }
    for (const c of data.conversations || []) this.upsertConversation(c);
    let touched = false;
    const t = this.thread;
    for (const m of data.messages || []) {
      if (!m || typeof m.id !== 'number') continue;
      const inThread = t && t.loaded && t.convId === m.conversation_id;
      if (inThread && !t.messages.has(m.id) && m.id < t.maxId()) continue; // older than the loaded pages
      this.ingest(m);
      if (inThread) touched = true;
    }
    this.renderList();
    if (touched) this.renderMessages();
  }

  onSocketClosed() {
    // Sends that were waiting for message_ack may or may not have reached
    // the server. Re-send them over REST with the same client_id: the server
    // answers with the original if it had it, so nothing is duplicated.
    for (const p of this.pending.values()) {
      if (p.state === 'pending' && p.via === 'ws') this.sendViaRest(p);
    }
    const o = this.out;
    o.active = false;
    clearTimeout(o.startTimer);
    o.startTimer = 0;
    o.lastSentAt = 0; // the next connection starts with a clean slate on the server
  }

  onNewMessage(convId, m) {
    if (!m || typeof m.id !== 'number') return;
    if (convId === undefined || convId === null) convId = m.conversation_id;
    if (m.conversation_id === undefined) m.conversation_id = convId;
    const c = this.conversations.get(convId);
    const prevLast = (c && c.last_message && c.last_message.id) || 0;
    const mine = Boolean(m.sender && m.sender.id === this.me.id);
    this.ingest(m);
    if (!c) {
      // A conversation we have not seen yet (just created by someone else).
      this.fetchConversation(convId).catch(() => {});
      return;
    }
    if (m.id > prevLast && !mine) {
      const viewing = this.activeId === convId && document.visibilityState === 'visible';
      if (!viewing) c.unread_count = (c.unread_count || 0) + 1;
    }
    if (m.sender) this.clearTyping(convId, m.sender.id);
    this.renderList();
    if (this.thread && this.thread.convId === convId) {
      this.renderMessages({ toBottom: mine });
      this.renderTyping();
      this.markRead();
    }
  }

  /** ingest files a message: reconciles our pending send, the thread and the list preview. */
  ingest(m) {
    if (m.client_id && m.sender && m.sender.id === this.me.id) {
      const p = this.pending.get(m.client_id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(m.client_id);
        // Keep the same <li>: the pending bubble becomes the acked one.
        const el = this.msgCache.get(`p:${p.client_id}`);
        if (el) {
          this.msgCache.delete(`p:${p.client_id}`);
          if (this.msgCache.has(`m:${m.id}`)) el.remove();
          else this.msgCache.set(`m:${m.id}`, el);
        }
      }
    }
    const t = this.thread;
    if (t && t.convId === m.conversation_id && t.loaded) t.add(m);
    const c = this.conversations.get(m.conversation_id);
    if (c && (!c.last_message || m.id >= c.last_message.id)) {
      c.last_message = c.last_message && c.last_message.id === m.id ? mergeMessage(c.last_message, m) : m;
      if (m.created_at && (!c.updated_at || m.created_at > c.updated_at)) c.updated_at = m.created_at;
    }
  }

  onMessageChanged(convId, m) {
    if (!m || typeof m.id !== 'number') return;
    if (convId === undefined || convId === null) convId = m.conversation_id;
    const t = this.thread;
    if (t && t.convId === convId && t.messages.has(m.id)) {
      t.messages.set(m.id, mergeMessage(t.messages.get(m.id), m));
      this.renderMessages();
    }
    const c = this.conversations.get(convId);
    if (c && c.last_message && c.last_message.id === m.id) {
      c.last_message = mergeMessage(c.last_message, m);
      this.renderList();
    }
  }

  onReactionUpdated(f) {
    const t = this.thread;
    if (t && t.convId === f.conversation_id && t.messages.has(f.message_id)) {
      t.messages.set(f.message_id, applyReaction(t.messages.get(f.message_id), f, this.me.id));
      this.renderMessages();
    }
    const c = this.conversations.get(f.conversation_id);
    if (c && c.last_message && c.last_message.id === f.message_id) c.last_message = applyReaction(c.last_message, f, this.me.id);
  }

  onTyping(f) {
    if (!this.me || f.user_id === this.me.id || this.blocked.has(f.user_id)) return;
    const convId = f.conversation_id;
    let m = this.typing.get(convId);
    if (!m) this.typing.set(convId, (m = new Map()));
    if (f.is_typing === false) m.delete(f.user_id);
    else {
      const c = this.conversations.get(convId);
      const p = participantOf(c, f.user_id);
      m.set(f.user_id, { name: p ? displayName(p.user) : f.username || 'Someone', until: Date.now() + TYPING_SHOW_MS });
    }
    if (this.activeId === convId) this.renderTyping();
  }

  clearTyping(convId, userId) {
    const m = this.typing.get(convId);
    if (m && m.delete(userId) && this.activeId === convId) this.renderTyping();
  }

  onReadReceipt(f) {
    const c = this.conversations.get(f.conversation_id);
    if (!c) return;
    const p = participantOf(c, f.user_id);
    if (p && (f.message_id || 0) > (p.last_read_message_id || 0)) p.last_read_message_id = f.message_id;
    if (f.user_id === this.me.id && c.last_message && f.message_id >= c.last_message.id && c.unread_count) {
      c.unread_count = 0; // read on another device
      this.renderList();
    }
    if (this.activeId === c.id) this.renderSeenBy();
  }

  setPresence(userId, online) {
    if (typeof userId !== 'number') return;
    this.presence.set(userId, online);
    this.renderList();
    if (this.thread) this.renderHeader();
    this.dispatchEvent(new CustomEvent('presence', { detail: { userId, online } }));
  }

  onConversationUpdated(c) {
    if (!c || typeof c.id !== 'number') return;
    if (!participantOf(c, this.me.id)) {
      // Removed by an admin: say so. Left on purpose: the leaver already knows.
      const notice = this.leaving.has(c.id) ? '' : 'You are no longer in “%s”.';
      if (this.conversations.has(c.id)) this.removeConversation(c.id, notice);
      return;
    }
    this.upsertConversation(c);
  }

  onJoined(f) {
    const id = f.conversation_id;
    this.desiredJoins.add(id);
    if (typeof f.version === 'number' && !this.serverSyncs) {
      this.serverSyncs = true;
      this.maybeStartSync();
    }
    const c = this.conversations.get(id);
    if (c && Array.isArray(f.online_user_ids)) {
      const online = new Set(f.online_user_ids);
      for (const p of c.participants || []) if (p.user) this.presence.set(p.user.id, online.has(p.user.id));
      this.renderList();
    }
    const t = this.thread;
    if (t && t.convId === id && t.loaded) {
      if (t.joinCursor && f.recovered === false) {
        this.toast('Reloaded the conversation: too much was missed to replay.');
        this.loadNewest(t, { replace: true });
      } else if (t.joinedByVersion) {
        // The replay before this joined brought every change: nothing to reload.
      } else if (!t.joinCursor || t.rejoin) {
        // No cursor (empty thread) leaves a window between our REST read and
        // the join; after a reconnect, edits and deletions are not replayed.
        // One more read of the newest page closes both; ids dedupe.
        this.loadNewest(t);
      }
      t.rejoin = false;
      this.renderHeader();
      this.markRead();
    }
  }

  onErrorFrame(f) {
    const rid = typeof f.request_id === 'string' ? f.request_id : '';
    if (rid.startsWith('send:')) {
      const p = this.pending.get(rid.slice(5));
      if (p && p.state === 'pending') {
        clearTimeout(p.timer);
        p.state = 'failed';
        p.error = f.detail || f.code || 'rejected';
        if (this.activeId === p.conversation_id) this.renderMessages();
      }
      return;
    }
    if (rid.startsWith('dev-') || rid.startsWith('typing:') || rid.startsWith('read:')) return;
    if (rid.startsWith('join:')) {
      const id = Number(rid.slice(5));
      this.desiredJoins.delete(id);
      if (this.activeId === id) this.toast(`Live updates unavailable for this conversation: ${f.detail || f.code}`, 'error');
      return;
    }
    if (f.code === 'rate_limited') this.toast(`Slow down: ${f.detail || 'too many requests'}`, 'error');
    else this.toast(`Server: ${f.detail || f.code || 'error'}`, 'error');
  }

  // ---------------------------------------------------------------- rendering

  nearBottom() {
    const s = this.els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  renderHeader() {
    const c = this.conversations.get(this.activeId);
    if (!c) {
      this.els.title.textContent = this.activeId !== null ? 'Loading…' : '';
      this.els.subtitle.textContent = '';
      return;
    }
    this.els.title.textContent = this.titleOf(c);
    if (c.is_group) {
      const members = typeof c.member_count === 'number' ? c.member_count : (c.participants || []).length;
      const online = (c.participants || []).filter((p) => p.user && this.isOnline(p.user.id)).length;
      this.els.subtitle.textContent = `${members} member${members === 1 ? '' : 's'} · ${online} online`;
    } else {
      const other = this.others(c)[0];
      this.els.subtitle.textContent = other ? `@${other.user.username} · ${this.isOnline(other.user.id) ? 'online' : 'offline'}` : '';
    }
    document.title = `${this.titleOf(c)} · Confab`;
  }

  renderHistory() {
    const t = this.thread;
    const e = this.els;
    if (!t) return;
    e.loadOlder.hidden = !(t.loaded && t.hasMore && !t.loadingOlder);
    if (t.error) {
      setChildren(e.history, `Could not load messages: ${t.error} `,
        h('button', { class: 'link', type: 'button', on: { click: () => (t.loaded ? this.loadOlder() : this.loadNewest(t)) } }, 'Try again'));
    } else if (!t.loaded) e.history.textContent = 'Loading messages…';
    else if (t.loadingOlder) e.history.textContent = 'Loading older messages…';
    else if (!t.hasMore) e.history.textContent = t.messages.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
    else e.history.textContent = '';
  }

  messageItems() {
    const t = this.thread;
    const items = t.sorted().map((m) => ({ key: `m:${m.id}`, msg: m, state: 'acked', senderId: m.sender && m.sender.id, at: Date.parse(m.created_at) }));
    const pend = [...this.pending.values()]
      .filter((p) => p.conversation_id === t.convId)
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((p) => ({ key: `p:${p.client_id}`, pending: p, state: p.state, senderId: this.me.id, at: p.createdAt }));
    const all = items.concat(pend);
    for (let i = 0; i < all.length; i++) {
      const prev = all[i - 1];
      all[i].continued = Boolean(prev && prev.senderId === all[i].senderId && all[i].at - prev.at < GROUP_WINDOW_MS && !(prev.msg && prev.msg.is_deleted));
    }
    return all;
  }

  renderMessages({ toBottom = false, preserve = false } = {}) {
    const t = this.thread;
    if (!t || !t.loaded) return;
    const s = this.els.scroller;
    const wasNear = this.nearBottom();
    const before = { height: s.scrollHeight, top: s.scrollTop };
    reconcile(this.els.messages, this.messageItems(), (it) => it.key, () => h('li', { class: 'msg', testid: 'message' }),
      (el, it) => this.updateMessageEl(el, it), this.msgCache);
    this.renderHistory();
    this.renderSeenBy();
    if (preserve) s.scrollTop = before.top + (s.scrollHeight - before.height);
    else if (toBottom || wasNear) s.scrollTop = s.scrollHeight;
  }

  updateMessageEl(el, it) {
    el.classList.toggle('continued', it.continued);
    const c = this.conversations.get(this.activeId);
    const m = it.msg;
    const p = it.pending;
    const mine = it.senderId === this.me.id;
    const amAdmin = Boolean(c && c.is_group && (participantOf(c, this.me.id) || {}).role === 'admin');
    const names = m ? this.mentionNames(m) : null;
    const quote = m ? m.reply_to : p.reply_to;
    // A message of someone I block is collapsed, until I ask to see it.
    const collapsed = Boolean(m && !mine && !m.is_deleted && m.sender && this.blocked.has(m.sender.id) && !this.revealed.has(m.id));
    const sig = JSON.stringify(m
      ? [m.id, m.content, m.edited_at, m.is_deleted, m.removed_by_moderator, c && c.is_group, amAdmin, quote, m.reactions, names && [...names], (m.attachments || []).map((a) => a.id), collapsed]
      : [p.client_id, p.state, p.error, quote]);
    if (el._sig === sig || el.dataset.editing) return;
    el._sig = sig;
    if (collapsed) {
      el.className = 'msg blocked';
      el.dataset.state = it.state;
      el.dataset.messageId = String(m.id);
      el.dataset.senderId = String(m.sender.id);
      el.dataset.blocked = 'true';
      delete el.dataset.mentionsMe;
      setChildren(el, h('p', { class: 'msg-blocked muted small', testid: 'message-blocked' },
        'Message from someone you blocked. ',
        h('button', { type: 'button', class: 'link', testid: 'message-blocked-show', on: { click: () => { this.revealed.add(m.id); this.renderMessages({ preserve: true }); } } }, 'Show')));
      return;
    }
    delete el.dataset.blocked;
    el.classList.remove('blocked');

    el.dataset.state = it.state;
    el.classList.toggle('mine', mine);
    el.classList.toggle('deleted', Boolean(m && m.is_deleted));
    const mentionsMe = Boolean(m && !m.is_deleted && Array.isArray(m.mentions) && m.mentions.includes(this.me.id));
    el.classList.toggle('mentions-me', mentionsMe);
    if (mentionsMe) el.dataset.mentionsMe = 'true';
    else delete el.dataset.mentionsMe;
    if (m) {
      el.dataset.messageId = String(m.id);
      el.dataset.senderId = String(m.sender ? m.sender.id : '');
    } else {
      delete el.dataset.messageId;
      el.dataset.senderId = String(this.me.id);
    }
    if (m && m.client_id) el.dataset.clientId = m.client_id;
    else if (p) el.dataset.clientId = p.client_id;

    const author = !mine && c && c.is_group ? h('p', { class: 'msg-author', testid: 'message-author' }, displayName(m.sender)) : null;
    let bubble;
    let status = null;
    let actions = null;
    let reactions = null;
    if (m) {
      const stamp = h('span', { class: 'msg-stamp' },
        h('time', { dateTime: m.created_at, title: fullTime(m.created_at) }, messageTime(m.created_at)),
        m.edited_at && !m.is_deleted ? h('span', { class: 'msg-edited', title: `Edited ${fullTime(m.edited_at)}` }, ' · edited') : null);
      const files = m.is_deleted ? null : attachmentsEl(m.attachments, (a) => this.openAttachment(m, a));
      bubble = h('div', { class: `msg-bubble${files ? ' has-attachments' : ''}${files && !m.content ? ' attachments-only' : ''}` },
        files,
        m.is_deleted
          ? h('p', { class: `msg-text msg-tombstone${m.removed_by_moderator ? ' moderated' : ''}`, testid: 'message-content', dataset: { removedByModerator: String(Boolean(m.removed_by_moderator)) } },
            m.removed_by_moderator ? 'Removed by a moderator' : 'Message deleted')
          : h('p', { class: 'msg-text', testid: 'message-content', hidden: !m.content }, mentionNodes(m.content, names, this.me.id)),
        stamp);
      if (!m.is_deleted) {
        actions = this.messageActions(el, m, mine, mine || amAdmin);
        reactions = this.reactionChips(m);
      }
    } else {
      const files = pendingFilesEl(p.attachments);
      bubble = h('div', { class: `msg-bubble${files ? ' has-attachments' : ''}${files && !p.content ? ' attachments-only' : ''}` },
        files,
        h('p', { class: 'msg-text', testid: 'message-content', hidden: !p.content }, p.content),
        h('span', { class: 'msg-stamp' }, p.state === 'failed' ? 'Not sent' : 'Sending…'));
      if (p.state === 'failed') {
        status = h('p', { class: 'msg-status', role: 'alert' },
          h('span', {}, `Not sent${p.error ? `: ${p.error}` : ''}. `),
          h('button', { class: 'link', type: 'button', testid: 'message-retry', on: { click: () => this.retry(p.client_id) } }, 'Retry'),
          ' · ',
          h('button', { class: 'link', type: 'button', testid: 'message-discard', on: { click: () => this.discard(p.client_id) } }, 'Discard'));
      }
    }
    setChildren(el, author, quote ? this.quoteEl(quote) : null, h('div', { class: 'msg-row' }, bubble, actions), reactions, status);
  }

  /** quoteEl shows the message a reply answers, as it is now; a click shows the original. */
  quoteEl(q) {
    const deleted = Boolean(q.is_deleted);
    return h('button', {
      type: 'button',
      class: `msg-quote${deleted ? ' deleted' : ''}`,
      testid: 'message-quote',
      dataset: { replyToId: String(q.id) },
      title: 'Show the original message',
      on: { click: () => this.jumpTo(this.activeId, q.id) },
    },
    h('span', { class: 'msg-quote-sender', testid: 'message-quote-sender' }, displayName(q.sender)),
    h('span', { class: 'msg-quote-text', testid: 'message-quote-text' }, deleted ? 'Deleted message' : q.content_preview || 'Attachment'));
  }

  /** reactionChips are the counts under a bubble; a click toggles one's own reaction. */
  reactionChips(m) {
    const list = (m.reactions || []).filter((r) => r.count > 0);
    if (!list.length) return null;
    return h('div', { class: 'msg-reactions', testid: 'reactions' }, list.map((r) => h('button', {
      type: 'button',
      class: `reaction-chip${r.me ? ' me' : ''}`,
      testid: 'reaction-chip',
      dataset: { emoji: r.emoji, count: String(r.count), me: String(r.me === true) },
      'aria-pressed': String(r.me === true),
      'aria-label': `${r.emoji} ${r.count}${r.me ? ', including you' : ''}`,
      on: { click: () => this.toggleReaction(m, r.emoji) },
    }, h('span', { class: 'reaction-emoji' }, r.emoji), ' ', h('span', { class: 'reaction-count', testid: 'reaction-count' }, String(r.count)))));
  }

  messageActions(el, m, mine, canDelete) {
    const box = h('div', { class: 'msg-actions' });
    const normal = () => setChildren(box,
      h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-reply', 'aria-label': 'Reply to message', on: { click: () => this.startReply(m) } }, 'Reply'),
      h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-react', 'aria-label': 'Add a reaction', 'aria-haspopup': 'true', on: { click: () => showPicker() } }, '☺'),
      mine && m.content ? h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-edit', 'aria-label': 'Edit message', on: { click: () => this.startEdit(el, m) } }, 'Edit') : null,
      canDelete ? h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-delete', 'aria-label': 'Delete message', on: { click: () => askConfirm() } }, 'Delete') : null,
      !mine && this.report ? h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-report', 'aria-label': 'Report message', on: { click: () => this.report({ message: m }) } }, 'Report') : null);
    const askConfirm = () => {
      const yes = h('button', { class: 'btn btn-tiny btn-danger', type: 'button', testid: 'message-delete-confirm', on: { click: () => this.deleteMessage(m) } }, 'Delete');
      setChildren(box, h('span', { class: 'small' }, 'Delete this message?'), yes,
        h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-delete-cancel', on: { click: () => { normal(); box.querySelector('button').focus(); } } }, 'Cancel'));
      yes.focus();
    };
    const showPicker = () => {
      // A press anywhere outside the picker closes it, as a menu does.
      const outside = (ev) => { if (!box.contains(ev.target)) close(); };
      const close = () => {
        document.removeEventListener('pointerdown', outside, true);
        normal();
        box.classList.remove('open');
      };
      const current = this.thread && this.thread.messages.get(m.id);
      const mineNow = new Set(((current || m).reactions || []).filter((r) => r.me).map((r) => r.emoji));
      const picker = h('div', { class: 'reaction-picker', testid: 'reaction-picker', role: 'menu', on: { keydown: (ev) => { if (ev.key === 'Escape') close(); } } },
        REACTION_CHOICES.map((emoji) => h('button', {
          type: 'button',
          class: `btn btn-tiny reaction-option${mineNow.has(emoji) ? ' me' : ''}`,
          testid: 'reaction-option',
          role: 'menuitem',
          dataset: { emoji },
          'aria-label': `React with ${emoji}`,
          on: { click: () => { close(); this.toggleReaction(current || m, emoji); } },
        }, emoji)),
        h('button', { type: 'button', class: 'btn btn-tiny', testid: 'reaction-picker-close', 'aria-label': 'Close', on: { click: close } }, '×'));
      box.classList.add('open');
      setChildren(box, picker);
      picker.querySelector('button').focus();
      document.addEventListener('pointerdown', outside, true);
    };
    normal();
    return box;
  }

  startEdit(el, m) {
    el.dataset.editing = '1';
    const input = h('textarea', { class: 'edit-input', testid: 'message-edit-input', value: m.content, rows: 2, 'aria-label': 'Edit message' });
    const err = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const done = () => {
      delete el.dataset.editing;
      el._sig = null;
      this.renderMessages();
    };
    const save = async () => {
      const content = input.value.trim();
      if (!content) {
        err.textContent = 'A message cannot be empty. Use Delete instead.';
        err.hidden = false;
        return;
      }
      if (codePoints(content) > MAX_CONTENT) {
        err.textContent = `At most ${MAX_CONTENT} characters.`;
        err.hidden = false;
        return;
      }
      if (content === m.content) return done();
      try {
        const updated = await request('PATCH', `api/messages/${m.id}/`, { content });
        this.onMessageChanged(updated.conversation_id ?? m.conversation_id, updated);
        done();
      } catch (e) {
        err.textContent = e.detail || e.message;
        err.hidden = false;
      }
    };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        save();
      } else if (ev.key === 'Escape') {
        ev.preventDefault();
        done();
      }
    });
    const form = h('form', { class: 'edit-form', on: { submit: (ev) => { ev.preventDefault(); save(); } } },
      input,
      h('div', { class: 'edit-actions' },
        h('button', { class: 'btn btn-tiny', type: 'button', testid: 'message-edit-cancel', on: { click: done } }, 'Cancel'),
        h('button', { class: 'btn btn-tiny btn-primary', type: 'submit', testid: 'message-edit-save' }, 'Save')),
      err);
    const row = el.querySelector('.msg-row');
    if (row) row.replaceWith(form);
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  async deleteMessage(m) {
    try {
      await request('DELETE', `api/messages/${m.id}/`);
      this.onMessageChanged(m.conversation_id, { ...m, content: '', is_deleted: true });
    } catch (e) {
      this.toast(`Could not delete: ${e.detail || e.message}`, 'error');
      const el = this.msgCache.get(`m:${m.id}`);
      if (el) {
        el._sig = null;
        this.renderMessages();
      }
    }
  }

  renderSeenBy() {
    const el = this.els.seenBy;
    const t = this.thread;
    const c = t && this.conversations.get(t.convId);
    const last = t && t.loaded ? t.maxId() : 0;
    if (!c || !last) {
      el.hidden = true;
      el.textContent = '';
      return;
    }
    const lastMsg = t.messages.get(last);
    const senderId = lastMsg && lastMsg.sender ? lastMsg.sender.id : null;
    const seers = this.others(c)
      .filter((p) => p.user.id !== senderId && (p.last_read_message_id || 0) >= last)
      .map((p) => displayName(p.user));
    el.hidden = seers.length === 0;
    el.textContent = seers.length ? `Seen by ${joinNames(seers)}` : '';
    el.dataset.messageId = String(last);
  }

  renderTyping() {
    clearTimeout(this.typingTimer);
    const el = this.els.typing;
    const m = this.activeId !== null ? this.typing.get(this.activeId) : null;
    const now = Date.now();
    const names = [];
    let next = Infinity;
    if (m) {
      for (const [uid, v] of m) {
        if (v.until <= now) m.delete(uid);
        else {
          names.push(v.name);
          next = Math.min(next, v.until);
        }
      }
    }
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    if (el.textContent !== text) el.textContent = text;
    el.classList.toggle('active', Boolean(text));
    if (next !== Infinity) this.typingTimer = setTimeout(() => this.renderTyping(), next - now + 50);
  }

  // ---------------------------------------------------------- infinite scroll

  async loadOlder() {
    const t = this.thread;
    if (!t || !t.loaded || !t.hasMore || t.loadingOlder) return;
    const before = t.minId();
    if (!before) return;
    t.loadingOlder = true;
    t.error = '';
    this.renderHistory();
    try {
      const page = await request('GET', `api/conversations/${t.convId}/messages/${qs({ limit: PAGE_SIZE, before })}`);
      if (this.thread !== t) return;
      for (const m of (page && page.results) || []) t.add(m);
      t.hasMore = Boolean(page && page.has_more);
    } catch (err) {
      if (this.thread !== t) return;
      t.error = err.detail || err.message;
    } finally {
      t.loadingOlder = false;
    }
    this.renderMessages({ preserve: true });
    this.fillViewport();
  }

  /** fillViewport loads older pages until the list can scroll (so scrolling up can page further). */
  fillViewport() {
    const t = this.thread;
    const s = this.els.scroller;
    if (t && t.loaded && t.hasMore && !t.error && s.scrollHeight <= s.clientHeight + 10) {
      requestAnimationFrame(() => this.loadOlder());
    }
  }

  // ------------------------------------------------------------------ sending

  autosize() {
    const el = this.els.input;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }

  updateCount() {
    const n = codePoints(this.els.input.value.trim());
    const left = MAX_CONTENT - n;
    this.els.count.textContent = left < 300 ? String(left) : '';
    this.els.count.classList.toggle('over', left < 0);
  }

  submitComposer() {
    if (this.activeId === null || !this.thread) return;
    const content = this.els.input.value.trim();
    const files = this.uploads.get(this.activeId) || [];
    if (files.some((u) => u.state === 'uploading')) {
      this.toast('Wait for the files to finish uploading.');
      return;
    }
    const ready = files.filter((u) => u.state === 'done');
    if (!content && !ready.length) return;
    if (codePoints(content) > MAX_CONTENT) {
      this.toast(`A message can have at most ${MAX_CONTENT} characters.`, 'error');
      return;
    }
    this.els.input.value = '';
    this.drafts.delete(this.activeId);
    this.autosize();
    this.updateCount();
    this.stopTyping();
    const replyTo = this.replyTo.get(this.activeId) || null;
    this.replyTo.delete(this.activeId);
    this.renderReplyBar();
    // Sent files leave the tray; failed ones stay, with their error, until removed.
    if (ready.length) {
      this.uploads.set(this.activeId, files.filter((u) => u.state !== 'done'));
      this.renderUploads();
    }
    this.send(this.activeId, content, replyTo, ready.map((u) => u.upload));
  }

  send(convId, content, replyTo = null, uploads = []) {
    const p = { client_id: uuid(), conversation_id: convId, content, state: 'pending', error: '', createdAt: Date.now(), via: '', timer: 0 };
    if (uploads.length) {
      p.attachment_ids = uploads.map((u) => u.id);
      p.attachments = uploads.map((u) => ({ id: u.id, name: u.name, size: u.size, mime: u.mime }));
    }
    if (replyTo) {
      p.reply_to_id = replyTo.id;
      p.reply_to = { id: replyTo.id, sender: replyTo.sender, content_preview: [...(replyTo.content || '')].slice(0, 200).join(''), is_deleted: Boolean(replyTo.is_deleted) };
    }
    this.pending.set(p.client_id, p);
    this.dispatchSend(p);
    if (this.activeId === convId) this.renderMessages({ toBottom: true });
  }

  dispatchSend(p) {
    p.state = 'pending';
    p.error = '';
    clearTimeout(p.timer);
    const frame = { type: 'new_message', conversation_id: p.conversation_id, content: p.content, client_id: p.client_id, request_id: `send:${p.client_id}` };
    if (p.reply_to_id) frame.reply_to_id = p.reply_to_id;
    if (p.attachment_ids) frame.attachment_ids = p.attachment_ids;
    if (this.socket.live && this.socket.send(frame)) {
      p.via = 'ws';
      p.timer = setTimeout(() => {
        if (this.pending.get(p.client_id) === p && p.state === 'pending') this.sendViaRest(p);
      }, ACK_TIMEOUT_MS);
    } else {
      this.sendViaRest(p);
    }
  }

  async sendViaRest(p) {
    p.via = 'rest';
    clearTimeout(p.timer);
    try {
      const body = { content: p.content, client_id: p.client_id };
      if (p.reply_to_id) body.reply_to_id = p.reply_to_id;
      if (p.attachment_ids) body.attachment_ids = p.attachment_ids;
      const m = await request('POST', `api/conversations/${p.conversation_id}/messages/`, body);
      if (m && typeof m.id === 'number') {
        if (m.conversation_id === undefined) m.conversation_id = p.conversation_id;
        this.onNewMessage(m.conversation_id, m);
      }
    } catch (err) {
      if (this.pending.get(p.client_id) !== p) return; // acknowledged meanwhile
      p.state = 'failed';
      p.error = err.detail || err.message;
      if (this.activeId === p.conversation_id) this.renderMessages();
    }
  }

  retry(clientId) {
    const p = this.pending.get(clientId);
    if (!p) return;
    this.dispatchSend(p); // same client_id: the server never stores it twice
    if (this.activeId === p.conversation_id) this.renderMessages();
  }

  discard(clientId) {
    const p = this.pending.get(clientId);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(clientId);
    if (this.activeId === p.conversation_id) this.renderMessages();
  }

  // -------------------------------------------------------------- attachments

  bindAttach() {
    const e = this.els;
    e.attach.addEventListener('click', () => e.file.click());
    e.file.addEventListener('change', () => {
      this.addFiles([...e.file.files]);
      e.file.value = ''; // the same file again is a change too
    });
    e.input.addEventListener('paste', (ev) => {
      const files = filesOf(ev.clipboardData, { textWins: true });
      if (!files.length) return;
      ev.preventDefault();
      this.addFiles(files);
    });
    // Files dropped anywhere on the open conversation are attached.
    e.pane.addEventListener('dragenter', (ev) => {
      if (!hasFiles(ev.dataTransfer)) return;
      ev.preventDefault();
      this.dragDepth++;
      e.pane.classList.add('drop-target');
    });
    e.pane.addEventListener('dragover', (ev) => {
      if (!hasFiles(ev.dataTransfer)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
      e.pane.classList.add('drop-target');
    });
    e.pane.addEventListener('dragleave', () => {
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (!this.dragDepth) e.pane.classList.remove('drop-target');
    });
    e.pane.addEventListener('drop', (ev) => {
      this.dragDepth = 0;
      e.pane.classList.remove('drop-target');
      const files = filesOf(ev.dataTransfer);
      if (!files.length) return;
      ev.preventDefault();
      this.addFiles(files);
    });
    // A file dropped beside the conversation must not make the browser
    // leave the console to show it.
    for (const type of ['dragover', 'drop']) {
      document.addEventListener(type, (ev) => {
        if (!ev.defaultPrevented && hasFiles(ev.dataTransfer)) {
          ev.preventDefault();
          ev.dataTransfer.dropEffect = 'none';
        }
      });
    }
  }

  /** addFiles uploads files for the open conversation's next message. */
  addFiles(files) {
    const convId = this.activeId;
    if (convId === null || !files.length) return;
    let list = this.uploads.get(convId);
    if (!list) this.uploads.set(convId, (list = []));
    const room = MAX_ATTACHMENTS - list.length;
    if (files.length > room) {
      this.toast(`A message can carry at most ${MAX_ATTACHMENTS} files.`, 'error');
      files = files.slice(0, Math.max(0, room));
    }
    for (const file of files) {
      const u = { key: uuid(), file, name: file.name || 'file', size: file.size, mime: file.type || '', state: 'uploading', progress: 0, error: '', upload: null, abort: () => {} };
      list.push(u);
      const job = uploadFile(file, (fraction) => {
        u.progress = fraction;
        this.renderUploadProgress(u);
      });
      u.abort = job.abort;
      job.promise.then((up) => {
        u.state = 'done';
        u.progress = 1;
        u.upload = up;
      }, (err) => {
        u.state = 'failed';
        u.error = err.detail || err.message;
      }).finally(() => {
        if (this.activeId === convId) this.renderUploads();
      });
    }
    this.renderUploads();
  }

  /** removeUpload takes a file out of the next message (stopping its upload). */
  removeUpload(key) {
    const convId = this.activeId;
    const list = this.uploads.get(convId) || [];
    const u = list.find((x) => x.key === key);
    if (!u) return;
    u.abort();
    // An upload that finished is taken back on the server too, so that it
    // stops counting against the quota at once.
    if (u.upload) request('DELETE', `api/uploads/${u.upload.id}/`).catch(() => {});
    this.uploads.set(convId, list.filter((x) => x !== u));
    this.renderUploads();
    this.els.input.focus();
  }

  /** renderUploads shows the open conversation's files above the composer, and allows Send when none is still uploading. */
  renderUploads() {
    const e = this.els;
    const list = (this.activeId !== null && this.uploads.get(this.activeId)) || [];
    e.uploads.hidden = list.length === 0;
    reconcile(e.uploads, list, (u) => u.key, (u) => this.uploadEl(u), (el, u) => this.updateUploadEl(el, u), this.uploadCache);
    const busy = list.some((u) => u.state === 'uploading');
    e.send.disabled = busy;
    e.send.title = busy ? 'Wait for the files to finish uploading' : '';
    e.uploads.dataset.busy = String(busy);
  }

  uploadEl(u) {
    const el = h('li', { class: 'upload', testid: 'upload-item' },
      fileBadge(u.name, u.mime),
      h('span', { class: 'upload-body' },
        h('span', { class: 'upload-top' },
          h('span', { class: 'upload-name', testid: 'upload-name', title: u.name }, u.name),
          h('span', { class: 'upload-size', testid: 'upload-size' }, humanSize(u.size))),
        h('span', { class: 'upload-bottom' },
          h('progress', { class: 'upload-progress', testid: 'upload-progress', max: 100, value: 0, 'aria-label': `Uploading ${u.name}` }),
          h('span', { class: 'upload-percent', testid: 'upload-percent' }),
          h('span', { class: 'upload-error', testid: 'upload-error', role: 'alert' }))),
      h('button', {
        type: 'button',
        class: 'btn btn-ghost btn-tiny upload-remove',
        testid: 'upload-remove',
        'aria-label': `Remove ${u.name}`,
        title: 'Remove',
        on: { click: () => this.removeUpload(u.key) },
      }, '×'));
    el._parts = {
      progress: el.querySelector('.upload-progress'),
      percent: el.querySelector('.upload-percent'),
      error: el.querySelector('.upload-error'),
    };
    return el;
  }

  updateUploadEl(el, u) {
    el.dataset.state = u.state;
    if (u.upload) el.dataset.uploadId = String(u.upload.id);
    const parts = el._parts;
    parts.progress.hidden = u.state !== 'uploading';
    parts.error.hidden = u.state !== 'failed';
    parts.error.textContent = u.state === 'failed' ? u.error : '';
    this.renderUploadProgress(u, el);
  }

  renderUploadProgress(u, el = this.uploadCache.get(u.key)) {
    if (!el || !el._parts) return;
    const pct = Math.round(u.progress * 100);
    el.dataset.progress = String(pct);
    el._parts.progress.value = pct;
    let text = '';
    if (u.state === 'uploading') text = pct >= 100 ? 'Processing…' : `${pct}%`;
    else if (u.state === 'done') text = 'Ready';
    el._parts.percent.textContent = text;
  }

  /** openAttachment shows a picture of m at full size, with the freshest signed URL known. */
  openAttachment(m, a) {
    const now = this.thread && this.thread.messages.get(m.id);
    const fresh = ((now && now.attachments) || []).find((x) => x.id === a.id);
    this.lightbox.open(fresh || a);
  }

  // ------------------------------------------------------------------ replies

  startReply(m) {
    if (this.activeId === null || !m || m.is_deleted) return;
    this.replyTo.set(this.activeId, m);
    this.renderReplyBar();
    this.els.input.focus();
  }

  cancelReply() {
    if (this.activeId === null) return;
    this.replyTo.delete(this.activeId);
    this.renderReplyBar();
  }

  /** renderReplyBar shows, above the composer, the message being answered. */
  renderReplyBar() {
    const e = this.els;
    const m = this.activeId !== null ? this.replyTo.get(this.activeId) : null;
    e.replyBar.hidden = !m;
    e.replySender.textContent = m ? displayName(m.sender) : '';
    e.replyText.textContent = m ? m.content || attachmentsSummary(m.attachments) : '';
    if (m) e.replyBar.dataset.replyToId = String(m.id);
    else delete e.replyBar.dataset.replyToId;
  }

  // ---------------------------------------------------------------- reactions

  /** toggleReaction adds the emoji as one's own reaction, or takes it back. */
  async toggleReaction(m, emoji) {
    const t = this.thread;
    const current = (t && t.messages.get(m.id)) || m;
    const had = (current.reactions || []).some((r) => r.emoji === emoji && r.me === true);
    try {
      const updated = await request(had ? 'DELETE' : 'PUT', `api/messages/${m.id}/reactions/${encodeURIComponent(emoji)}/`);
      if (updated && typeof updated.id === 'number') this.onMessageChanged(updated.conversation_id ?? m.conversation_id, updated);
    } catch (err) {
      this.toast(`Could not ${had ? 'remove' : 'add'} the reaction: ${err.detail || err.message}`, 'error');
    }
  }

  // ----------------------------------------------------------------- mentions

  rememberUser(u) {
    if (u && typeof u.id === 'number' && u.username) this.users.set(u.id, u);
  }

  /**
   * mentionNames maps the lower-case usernames of the users m mentions to
   * their ids. A conversation object lists only its first ten participants:
   * an id not known yet asks once for the whole list, and the messages are
   * drawn again when it comes.
   */
  mentionNames(m) {
    const names = new Map();
    if (!m || m.is_deleted || !Array.isArray(m.mentions) || !m.mentions.length) return names;
    this.rememberUser(m.sender);
    let missing = false;
    for (const id of m.mentions) {
      const u = this.users.get(id);
      if (u) names.set(u.username.toLowerCase(), id);
      else missing = true;
    }
    if (missing) this.askParticipants(m.conversation_id ?? this.activeId);
    return names;
  }

  async askParticipants(convId) {
    if (convId === null || convId === undefined || this.participantsAsked.has(convId)) return;
    this.participantsAsked.add(convId);
    try {
      let after = null;
      for (let i = 0; i < 20; i++) {
        const page = await request('GET', `api/conversations/${convId}/participants/${qs({ limit: LIST_PAGE_SIZE, after })}`);
        for (const p of (page && page.results) || []) this.rememberUser(p.user);
        after = (page && page.next) || null;
        if (!after) break;
      }
    } catch {
      return; // mentions stay plain text
    }
    if (this.thread && this.thread.convId === convId) this.renderMessages();
  }

  // -------------------------------------------------------------------- jumps

  /**
   * jumpTo opens the conversation, loads history back to the message if it
   * is older than what is shown, scrolls to it and highlights it.
   */
  jumpTo(convId, messageId) {
    if (typeof convId !== 'number' || typeof messageId !== 'number') return;
    this.pendingJump = { convId, messageId };
    if (this.activeId === convId && this.thread && this.thread.loaded) this.runJump();
    else if (location.hash !== `#/c/${convId}`) location.hash = `#/c/${convId}`;
    else this.route();
  }

  async runJump() {
    const j = this.pendingJump;
    const t = this.thread;
    if (!j || !t || t.convId !== j.convId || !t.loaded) return;
    this.pendingJump = null;
    if (!t.messages.has(j.messageId) && t.hasMore && !t.loadingOlder) {
      t.loadingOlder = true;
      this.renderHistory();
      try {
        for (let i = 0; i < JUMP_MAX_PAGES && !t.messages.has(j.messageId) && t.hasMore && t.minId() > j.messageId; i++) {
          const page = await request('GET', `api/conversations/${t.convId}/messages/${qs({ limit: JUMP_PAGE_SIZE, before: t.minId() })}`);
          if (this.thread !== t) return;
          for (const m of (page && page.results) || []) t.add(m);
          t.hasMore = Boolean(page && page.has_more);
        }
      } catch (err) {
        if (this.thread === t) t.error = err.detail || err.message;
      } finally {
        t.loadingOlder = false;
      }
      if (this.thread !== t) return;
      this.renderMessages({ preserve: true });
    }
    const el = this.msgCache.get(`m:${j.messageId}`);
    if (!el) {
      this.toast('That message is not in the conversation any more.');
      return;
    }
    if (this.jumpedEl && this.jumpedEl !== el) {
      this.jumpedEl.classList.remove('jumped');
      delete this.jumpedEl.dataset.highlighted;
    }
    this.jumpedEl = el;
    el.classList.remove('jumped');
    void el.offsetWidth; // restart the highlight animation
    el.classList.add('jumped');
    el.dataset.highlighted = 'true';
    el.scrollIntoView({ block: 'center' });
  }

  // --------------------------------------------------------------- typing out

  typingStarted() {
    const id = this.activeId;
    if (id === null || !this.socket.live) return;
    const o = this.out;
    clearTimeout(o.stopTimer); // typing again: a "stopped" still waiting is moot
    const now = Date.now();
    if (!o.active || o.convId !== id || (!o.startTimer && now - o.lastSentAt >= TYPING_SEND_EVERY_MS)) {
      o.active = true;
      o.convId = id;
      // The server forwards at most one typing frame per second and drops
      // the rest. Typing the next message right after sending one would
      // otherwise be lost (its "typing" follows the last one too closely),
      // and the other side would see nothing: wait out the gap instead.
      const sendStart = () => {
        o.startTimer = 0;
        if (o.active && o.convId === id && this.socket.live && this.socket.send({ type: 'typing', conversation_id: id, is_typing: true })) {
          o.lastSentAt = Date.now();
        }
      };
      const wait = Math.max(0, o.lastSentAt + TYPING_STOP_GAP_MS - now);
      clearTimeout(o.startTimer);
      o.startTimer = 0;
      if (wait === 0) sendStart();
      else o.startTimer = setTimeout(sendStart, wait);
    }
    clearTimeout(o.idleTimer);
    o.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    const o = this.out;
    clearTimeout(o.idleTimer);
    if (!o.active) return;
    o.active = false;
    clearTimeout(o.startTimer);
    o.startTimer = 0;
    const convId = o.convId;
    const wait = Math.max(0, o.lastSentAt + TYPING_STOP_GAP_MS - Date.now());
    clearTimeout(o.stopTimer);
    const sendStop = () => {
      if (this.socket.live) this.socket.send({ type: 'typing', conversation_id: convId, is_typing: false });
      o.lastSentAt = Date.now();
    };
    if (wait === 0) sendStop();
    else o.stopTimer = setTimeout(sendStop, wait);
  }

  // ------------------------------------------------------------------- reads

  markRead() {
    const t = this.thread;
    if (!t || !t.loaded || document.visibilityState !== 'visible' || !this.nearBottom()) return;
    const c = this.conversations.get(t.convId);
    if (!c) return;
    const last = t.maxId();
    const hadUnread = c.unread_count > 0;
    c.unread_count = 0;
    const mine = participantOf(c, this.me.id);
    const already = (mine && mine.last_read_message_id) || 0;
    if (last && last > already) {
      if (mine) mine.last_read_message_id = last;
      const frame = { type: 'read_receipt', conversation_id: t.convId, message_id: last, request_id: `read:${t.convId}` };
      if (!(this.socket.live && this.socket.send(frame))) {
        request('POST', `api/conversations/${t.convId}/read/`, { message_id: last }).catch(() => {
          if (mine && mine.last_read_message_id === last) mine.last_read_message_id = already;
        });
      }
    }
    if (hadUnread) this.renderList();
  }
}
