// search.js — the message search box in the sidebar. It asks
// GET /api/search/messages/ as the user types (debounced), lists the
// results with their snippets and conversations, and a click on one opens
// that conversation at the message.

import { h, setChildren, displayName, shortTime, fullTime, snippetNodes } from './dom.js';
import { request, qs } from './api.js';

const DEBOUNCE_MS = 250;
const LIMIT = 20;

export class MessageSearch {
  constructor(chat) {
    this.chat = chat;
    this.seq = 0;
    this.timer = 0;
    this.query = '';
    this.next = null;
    const byId = (id) => document.getElementById(id);
    this.els = {
      input: byId('message-search'),
      panel: byId('search-panel'),
      status: byId('search-status'),
      results: byId('search-results'),
      more: byId('search-more'),
      list: byId('conversation-list'),
    };
    this.els.input.addEventListener('input', () => this.schedule());
    this.els.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.els.input.value) {
        ev.preventDefault();
        this.els.input.value = '';
        this.schedule();
      }
    });
    this.els.more.addEventListener('click', () => this.run(this.query, this.next));
  }

  schedule() {
    clearTimeout(this.timer);
    const q = this.els.input.value.trim();
    if (!q) {
      this.clear();
      return;
    }
    this.timer = setTimeout(() => this.run(q, null), DEBOUNCE_MS);
  }

  /** clear empties the results and shows the conversation list again. */
  clear() {
    clearTimeout(this.timer);
    this.seq++;
    this.query = '';
    this.next = null;
    this.els.results.replaceChildren();
    this.els.panel.hidden = true;
    this.els.more.hidden = true;
    this.els.list.hidden = false;
  }

  /** reset forgets the search (sign-out). */
  reset() {
    this.els.input.value = '';
    this.clear();
  }

  async run(q, before) {
    const seq = ++this.seq;
    const e = this.els;
    e.panel.hidden = false;
    e.list.hidden = true;
    e.panel.dataset.state = 'loading';
    if (!before) e.status.textContent = 'Searching…';
    e.more.hidden = true;
    let data;
    try {
      data = await request('GET', `api/search/messages/${qs({ q, limit: LIMIT, before })}`);
    } catch (err) {
      if (seq !== this.seq) return;
      e.panel.dataset.state = 'error';
      e.status.textContent = `Search failed: ${err.detail || err.message}`;
      return;
    }
    if (seq !== this.seq) return;
    this.query = q;
    this.next = (data && data.next) || null;
    const results = (data && data.results) || [];
    const items = results.filter((r) => r && r.message).map((r) => this.resultEl(r));
    if (before) e.results.append(...items);
    else setChildren(e.results, items);
    const n = e.results.childElementCount;
    e.status.textContent = n ? `${n}${this.next ? '+' : ''} result${n === 1 ? '' : 's'}` : 'No messages found.';
    e.more.hidden = !this.next;
    e.panel.dataset.state = 'done';
  }

  resultEl({ message: m, snippet }) {
    const c = this.chat.conversations.get(m.conversation_id);
    const where = c ? this.chat.titleOf(c) : 'Conversation';
    return h('li', {},
      h('button', {
        type: 'button',
        class: 'search-result',
        testid: 'search-result',
        dataset: { messageId: String(m.id), conversationId: String(m.conversation_id) },
        on: { click: () => this.chat.jumpTo(m.conversation_id, m.id) },
      },
      h('span', { class: 'search-result-head' },
        h('span', { class: 'search-result-conv', testid: 'search-result-conversation' }, where),
        c && !c.is_group && displayName(m.sender) === where ? null : h('span', { class: 'search-result-sender' }, displayName(m.sender)),
        h('time', { class: 'search-result-time', dateTime: m.created_at, title: fullTime(m.created_at) }, shortTime(m.created_at))),
      h('span', { class: 'search-snippet', testid: 'search-snippet' }, snippetNodes(snippet))));
  }
}
