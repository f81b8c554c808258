// dialogs.js — the "new conversation" dialog and the conversation details
// dialog (participants, add/remove, rename, leave). Both use <dialog>, so
// Escape closes them and focus stays inside while they are open.

import { h, setChildren, displayName, initials, fullTime } from './dom.js';
import { request, qs } from './api.js';

const SEARCH_DEBOUNCE_MS = 250;

// The mute choices: how long from now, in milliseconds.
const MUTE_FOR = { '1h': 3600e3, '8h': 8 * 3600e3, '1d': 24 * 3600e3 };

/**
 * userSearch is a search box with a result list of users (GET /api/users/).
 * isSelected(user) marks results as chosen; exclude(user) hides them.
 */
function userSearch({ inputId, testid, resultTestid, label, exclude, isSelected, onPick, isOnline }) {
  const input = h('input', {
    id: inputId,
    type: 'search',
    testid,
    placeholder: 'Search by username or name',
    autocomplete: 'off',
    spellcheck: false,
    autocapitalize: 'none',
  });
  const status = h('p', { class: 'muted small search-status', 'aria-live': 'polite' });
  const results = h('ul', { class: 'user-results', testid: `${testid}-results`, 'aria-label': 'Search results' });
  let timer = 0;
  let seq = 0;
  let users = [];

  const render = () => {
    const shown = users.filter((u) => !exclude(u));
    setChildren(results, shown.map((u) => {
      const chosen = isSelected(u);
      return h('li', {},
        h('button', {
          type: 'button',
          class: 'user-result',
          testid: resultTestid,
          dataset: { userId: String(u.id) },
          'aria-pressed': String(chosen),
          on: { click: () => { onPick(u); render(); } },
        },
        h('span', { class: 'avatar avatar-small', 'aria-hidden': 'true' }, initials(displayName(u))),
        h('span', { class: 'user-names' },
          h('span', { class: 'user-display' }, displayName(u)),
          h('span', { class: 'muted small' }, `@${u.username}`)),
        h('span', { class: 'presence', dataset: { online: String(isOnline(u)) }, role: 'img', 'aria-label': isOnline(u) ? 'online' : 'offline' }),
        h('span', { class: 'user-pick' }, chosen ? '✓ Added' : 'Add')));
    }));
    return shown.length;
  };

  const run = async () => {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) {
      users = [];
      status.textContent = '';
      render();
      return;
    }
    status.textContent = 'Searching…';
    try {
      const data = await request('GET', `api/users/${qs({ search: q, limit: 20 })}`);
      if (mine !== seq) return;
      users = (data && data.results) || [];
      status.textContent = '';
    } catch (err) {
      if (mine !== seq) return;
      users = [];
      status.textContent = `Search failed: ${err.detail || err.message}`;
    }
    if (!render() && !status.textContent) status.textContent = 'Nobody found.';
  };

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, SEARCH_DEBOUNCE_MS);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault(); // Enter searches now; it must not submit the form
      clearTimeout(timer);
      run();
    }
  });

  const el = h('div', { class: 'user-search' },
    h('label', { for: inputId }, label), input, status, results);
  return {
    el,
    input,
    render,
    clear() {
      clearTimeout(timer);
      seq++;
      input.value = '';
      users = [];
      status.textContent = '';
      render();
    },
  };
}

/** NewConversationDialog picks people and creates a direct or group conversation. */
export class NewConversationDialog {
  constructor(chat) {
    this.chat = chat;
    this.dlg = document.getElementById('new-conversation-dialog');
    this.selected = new Map(); // user id → user
    this.build();
  }

  build() {
    const chat = this.chat;
    this.search = userSearch({
      inputId: 'user-search',
      testid: 'user-search',
      resultTestid: 'user-result',
      label: 'Find people',
      exclude: (u) => chat.me && u.id === chat.me.id,
      isSelected: (u) => this.selected.has(u.id),
      isOnline: (u) => (chat.presence.has(u.id) ? chat.isOnline(u.id) : Boolean(u.is_online)),
      onPick: (u) => {
        if (this.selected.has(u.id)) this.selected.delete(u.id);
        else this.selected.set(u.id, u);
        this.update();
      },
    });
    this.chips = h('ul', { class: 'chips', testid: 'selected-users', 'aria-label': 'Chosen people' });
    this.group = h('input', { type: 'checkbox', id: 'new-conversation-group', testid: 'new-conversation-group', on: { change: () => this.update() } });
    this.title = h('input', { id: 'new-conversation-title', testid: 'new-conversation-title', maxLength: 100, placeholder: 'e.g. Weekend plans' });
    this.titleField = h('div', { class: 'field' }, h('label', { for: 'new-conversation-title' }, 'Group name (optional)'), this.title);
    this.error = h('p', { class: 'form-error', testid: 'new-conversation-error', role: 'alert', hidden: true });
    this.submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'create-conversation-submit', testid: 'create-conversation-submit' }, 'Start conversation');
    const form = h('form', { class: 'dialog-body stack', noValidate: true, on: { submit: (ev) => { ev.preventDefault(); this.create(); } } },
      h('h2', { id: 'new-conversation-heading' }, 'New conversation'),
      this.search.el,
      this.chips,
      h('label', { class: 'check', for: 'new-conversation-group' }, this.group, ' Group conversation'),
      this.titleField,
      this.error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', testid: 'new-conversation-cancel', on: { click: () => this.dlg.close() } }, 'Cancel'),
        this.submit));
    setChildren(this.dlg, form);
    this.dlg.addEventListener('click', (ev) => {
      if (ev.target === this.dlg) this.dlg.close(); // a click on the backdrop
    });
  }

  open() {
    this.selected.clear();
    this.search.clear();
    this.group.checked = false;
    this.title.value = '';
    this.error.hidden = true;
    this.update();
    this.dlg.showModal();
    this.search.input.focus();
  }

  update() {
    const many = this.selected.size > 1;
    if (many) this.group.checked = true;
    this.group.disabled = many; // more than two people is always a group
    this.titleField.hidden = !this.group.checked;
    this.submit.disabled = this.selected.size === 0;
    setChildren(this.chips, [...this.selected.values()].map((u) => h('li', { class: 'chip', testid: 'selected-user', dataset: { userId: String(u.id) } },
      displayName(u),
      h('button', {
        type: 'button',
        class: 'chip-remove',
        testid: 'selected-user-remove',
        'aria-label': `Remove ${displayName(u)}`,
        on: { click: () => { this.selected.delete(u.id); this.update(); this.search.render(); this.search.input.focus(); } },
      }, '×'))));
  }

  async create() {
    if (!this.selected.size) return;
    const body = { participant_ids: [...this.selected.keys()], is_group: this.group.checked };
    const title = this.title.value.trim();
    if (body.is_group && title) body.title = title;
    this.submit.disabled = true;
    this.error.hidden = true;
    try {
      const conv = await request('POST', 'api/conversations/', body);
      this.chat.upsertConversation(conv);
      this.dlg.close();
      location.hash = `#/c/${conv.id}`;
    } catch (err) {
      this.error.textContent = err.detail || err.message;
      this.error.hidden = false;
    } finally {
      this.submit.disabled = this.selected.size === 0;
    }
  }
}

/** DetailsDialog shows a conversation's participants and, for groups, manages them. */
export class DetailsDialog {
  constructor(chat) {
    this.chat = chat;
    this.dlg = document.getElementById('details-dialog');
    this.convId = null;
    this.build();
    chat.addEventListener('conversation', (ev) => {
      if (!this.dlg.open || ev.detail.id !== this.convId) return;
      if (ev.detail.removed) this.dlg.close();
      else {
        this.update();
        this.loadMembers(true); // someone may have joined or left
      }
    });
    chat.addEventListener('presence', () => {
      if (this.dlg.open) this.update();
    });
    chat.addEventListener('blocked', () => {
      if (this.dlg.open) this.update();
    });
  }

  get conv() {
    return this.chat.conversations.get(this.convId);
  }

  /** parts are the participants known: the pages loaded, else the conversation's first ten. */
  get parts() {
    const c = this.conv;
    return this.members || (c && c.participants) || [];
  }

  get amAdmin() {
    const me = this.parts.find((p) => p.user && p.user.id === this.chat.me.id);
    return Boolean(me && me.role === 'admin');
  }

  /**
   * loadMembers reads the participants from the participants route, in
   * join order: again from the first page (as many pages as were shown)
   * when reset, else the next page.
   */
  async loadMembers(reset) {
    const id = this.convId;
    const want = reset ? Math.max(this.memberPages || 0, 1) : 1;
    let list = reset ? [] : (this.members || []);
    let next = reset ? null : this.membersNext;
    let pages = 0;
    try {
      do {
        const data = await request('GET', `api/conversations/${id}/participants/${qs({ limit: 100, after: next })}`);
        if (this.convId !== id) return;
        const page = (data && data.results) || [];
        for (const p of page) {
          if (p.user && typeof p.user.is_online === 'boolean' && !this.chat.presence.has(p.user.id)) this.chat.presence.set(p.user.id, p.user.is_online);
        }
        list = list.concat(page);
        next = (data && data.next) || null;
        pages++;
      } while (next && pages < want);
    } catch (err) {
      if (this.convId === id) this.showError(err);
      return;
    }
    this.members = list;
    this.membersNext = next;
    this.memberPages = reset ? pages : (this.memberPages || 0) + pages;
    this.update();
  }

  build() {
    const chat = this.chat;
    this.heading = h('h2', { id: 'details-heading' });
    this.kind = h('p', { class: 'muted small' });
    this.titleInput = h('input', { id: 'details-title-input', testid: 'details-title-input', maxLength: 100 });
    this.renameError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    this.renameForm = h('form', { class: 'inline-form', noValidate: true, on: { submit: (ev) => { ev.preventDefault(); this.rename(); } } },
      h('label', { for: 'details-title-input' }, 'Group name'),
      h('div', { class: 'row' }, this.titleInput, h('button', { type: 'submit', class: 'btn', testid: 'details-rename-save' }, 'Rename')),
      this.renameError);
    this.count = h('h3', {});
    this.list = h('ul', { class: 'participants', testid: 'participant-list' });
    this.moreMembers = h('button', { type: 'button', class: 'btn btn-tiny', testid: 'participant-list-more', hidden: true, on: { click: () => this.loadMembers(false) } }, 'Show more');
    this.search = userSearch({
      inputId: 'participant-add-search',
      testid: 'participant-add-search',
      resultTestid: 'participant-add-result',
      label: 'Add people',
      exclude: (u) => this.parts.some((p) => p.user && p.user.id === u.id),
      isSelected: () => false,
      isOnline: (u) => (chat.presence.has(u.id) ? chat.isOnline(u.id) : Boolean(u.is_online)),
      onPick: (u) => this.add(u),
    });
    this.addSection = h('section', { class: 'stack-tight' }, this.search.el);
    this.error = h('p', { class: 'form-error', testid: 'details-error', role: 'alert', hidden: true });
    this.leaveBox = h('div', { class: 'leave' });
    this.muteSelect = h('select', { id: 'mute-select', testid: 'mute-select', on: { change: () => this.setMute() } });
    this.muteStatus = h('p', { class: 'muted small', testid: 'mute-status', 'aria-live': 'polite' });
    setChildren(this.dlg, h('div', { class: 'dialog-body stack' },
      h('div', {}, this.heading, this.kind),
      this.renameForm,
      h('section', { class: 'stack-tight' }, this.count, this.list, this.moreMembers),
      this.addSection,
      h('section', { class: 'stack-tight', 'aria-labelledby': 'mute-heading' },
        h('h3', { id: 'mute-heading' }, 'Notifications'),
        h('div', { class: 'row' }, h('label', { for: 'mute-select' }, 'Mute'), this.muteSelect),
        this.muteStatus),
      this.error,
      h('div', { class: 'dialog-actions spread' },
        this.leaveBox,
        h('button', { type: 'button', class: 'btn', testid: 'details-close', on: { click: () => this.dlg.close() } }, 'Close'))));
    this.dlg.addEventListener('click', (ev) => {
      if (ev.target === this.dlg) this.dlg.close();
    });
  }

  open(convId) {
    this.convId = convId;
    this.members = null;
    this.membersNext = null;
    this.memberPages = 0;
    const c = this.conv;
    if (!c) return;
    this.titleInput.value = c.title || '';
    this.renameError.hidden = true;
    this.error.hidden = true;
    this.search.clear();
    this.leaveNormal();
    this.update();
    this.dlg.showModal();
    this.loadMembers(true);
    this.loadMute();
  }

  /** loadMute shows the caller's mute of the conversation, as the server keeps it. */
  async loadMute() {
    const id = this.convId;
    this.muteSelect.disabled = true;
    this.muteStatus.dataset.state = 'loading';
    this.muteStatus.textContent = 'Loading…';
    try {
      const data = await request('GET', `api/conversations/${id}/notifications/`);
      if (this.convId === id) this.renderMute(data.muted_until);
    } catch (err) {
      if (this.convId !== id) return;
      this.muteStatus.dataset.state = 'error';
      this.muteStatus.textContent = `Could not read the mute: ${err.detail || err.message}`;
    }
  }

  renderMute(until) {
    const options = [['', 'Off'], ['1h', '1 hour'], ['8h', '8 hours'], ['1d', '1 day'], ['forever', 'Forever']];
    let value = '';
    let state = 'on';
    let text = 'Not muted: you are notified of new messages while you are away.';
    if (until === 'forever') {
      value = 'forever';
      state = 'forever';
      text = 'Muted forever: no notifications, except when someone mentions you.';
    } else if (until) {
      value = 'current';
      state = 'until';
      options.splice(1, 0, ['current', `Until ${fullTime(until)}`]);
      text = `Muted until ${fullTime(until)}: no notifications before then, except when someone mentions you.`;
    }
    setChildren(this.muteSelect, options.map(([v, label]) => h('option', { value: v, disabled: v === 'current' }, label)));
    this.muteSelect.value = value;
    this.muteSelect.disabled = false;
    this.muteStatus.dataset.state = state;
    this.muteStatus.textContent = text;
  }

  async setMute() {
    const id = this.convId;
    const choice = this.muteSelect.value;
    let until = null;
    if (choice === 'forever') until = 'forever';
    else if (MUTE_FOR[choice]) until = new Date(Date.now() + MUTE_FOR[choice]).toISOString();
    this.error.hidden = true;
    this.muteSelect.disabled = true;
    try {
      const data = await request('PUT', `api/conversations/${id}/notifications/`, { muted_until: until });
      if (this.convId === id) this.renderMute(data.muted_until);
    } catch (err) {
      if (this.convId !== id) return;
      this.showError(err);
      this.loadMute();
    }
  }

  update() {
    const c = this.conv;
    if (!c) return;
    const chat = this.chat;
    const admin = this.amAdmin;
    this.heading.textContent = chat.titleOf(c);
    this.kind.textContent = c.is_group ? `Group · created ${new Date(c.created_at).toLocaleDateString()}` : 'Direct conversation';
    this.renameForm.hidden = !(c.is_group && admin);
    this.addSection.hidden = !(c.is_group && admin);
    this.leaveBox.hidden = !c.is_group;
    const parts = [...this.parts].sort((a, b) => (a.role === b.role ? displayName(a.user).localeCompare(displayName(b.user)) : a.role === 'admin' ? -1 : 1));
    this.count.textContent = `Participants (${typeof c.member_count === 'number' ? c.member_count : parts.length})`;
    this.moreMembers.hidden = !this.membersNext;
    setChildren(this.list, parts.map((p) => {
      const me = p.user.id === chat.me.id;
      const online = chat.isOnline(p.user.id);
      return h('li', { class: 'participant', testid: 'participant-item', dataset: { userId: String(p.user.id), role: p.role } },
        h('span', { class: 'avatar avatar-small', 'aria-hidden': 'true' }, initials(displayName(p.user))),
        h('span', { class: 'user-names' },
          h('span', { class: 'user-display' }, me ? `${displayName(p.user)} (you)` : displayName(p.user)),
          h('span', { class: 'muted small' }, `@${p.user.username}`)),
        h('span', { class: 'presence', testid: 'presence', dataset: { online: String(online) }, role: 'img', 'aria-label': online ? 'online' : 'offline', title: online ? 'Online' : 'Offline' }),
        p.role === 'admin' ? h('span', { class: 'role' }, 'admin') : null,
        me ? null : this.blockButton(p.user),
        c.is_group && admin && !me
          ? h('button', { type: 'button', class: 'btn btn-tiny', testid: 'participant-remove', 'aria-label': `Remove ${displayName(p.user)}`, on: { click: () => this.remove(p.user) } }, 'Remove')
          : null,
        !me && chat.report
          ? h('button', { type: 'button', class: 'btn btn-tiny', testid: 'participant-report', 'aria-label': `Report ${displayName(p.user)}`, on: { click: () => { this.dlg.close(); chat.report({ user: p.user }); } } }, 'Report')
          : null);
    }));
    this.search.render();
  }

  /** blockButton blocks or unblocks a person; their messages collapse while blocked. */
  blockButton(user) {
    const blocked = this.chat.isBlocked(user.id);
    const name = displayName(user);
    return h('button', {
      type: 'button',
      class: `btn btn-tiny${blocked ? '' : ' btn-danger-outline'}`,
      testid: 'participant-block',
      dataset: { blocked: String(blocked) },
      'aria-label': `${blocked ? 'Unblock' : 'Block'} ${name}`,
      title: blocked ? `Show ${name}'s messages and typing again` : `Hide ${name}'s messages; they can no longer write to you directly`,
      on: { click: () => this.toggleBlock(user, !blocked) },
    }, blocked ? 'Unblock' : 'Block');
  }

  async toggleBlock(user, block) {
    this.error.hidden = true;
    try {
      await this.chat.setBlocked(user, block);
    } catch (err) {
      this.showError(err);
    }
  }

  showError(err) {
    // A 400's reason is in its fields ("You can block at most …"), not in
    // its generic detail.
    const fields = Object.values(err.fields || {}).flat();
    this.error.textContent = fields.length ? fields.join(' ') : (err.detail || err.message);
    this.error.hidden = false;
  }

  async refreshConv() {
    try {
      await this.chat.fetchConversation(this.convId);
    } catch {
      // conversation_updated will bring it too
    }
  }

  async rename() {
    const title = this.titleInput.value.trim();
    this.renameError.hidden = true;
    try {
      const c = await request('PATCH', `api/conversations/${this.convId}/`, { title });
      if (c && typeof c.id === 'number') this.chat.upsertConversation(c);
      else await this.refreshConv();
    } catch (err) {
      this.renameError.textContent = err.detail || (err.fields && err.fields.title && err.fields.title.join(' ')) || err.message;
      this.renameError.hidden = false;
    }
  }

  async add(user) {
    this.error.hidden = true;
    try {
      await request('POST', `api/conversations/${this.convId}/participants/`, { user_id: user.id });
      await this.refreshConv();
      this.search.clear();
      this.search.input.focus();
    } catch (err) {
      this.showError(err);
    }
  }

  async remove(user) {
    this.error.hidden = true;
    try {
      await request('DELETE', `api/conversations/${this.convId}/participants/${user.id}/`);
      await this.refreshConv();
    } catch (err) {
      this.showError(err);
    }
  }

  leaveNormal() {
    setChildren(this.leaveBox, h('button', {
      type: 'button',
      class: 'btn btn-danger-outline',
      testid: 'leave-conversation',
      on: { click: () => this.leaveConfirm() },
    }, 'Leave conversation'));
  }

  leaveConfirm() {
    const yes = h('button', { type: 'button', class: 'btn btn-danger', testid: 'leave-confirm', on: { click: () => this.leave() } }, 'Leave');
    setChildren(this.leaveBox,
      h('span', { class: 'small' }, 'Leave this group?'),
      yes,
      h('button', { type: 'button', class: 'btn', testid: 'leave-cancel', on: { click: () => { this.leaveNormal(); this.leaveBox.querySelector('button').focus(); } } }, 'Cancel'));
    yes.focus();
  }

  async leave() {
    const id = this.convId;
    const c = this.conv;
    this.chat.leaving.add(id);
    try {
      await request('DELETE', `api/conversations/${id}/participants/${this.chat.me.id}/`);
      this.dlg.close();
      this.chat.removeConversation(id);
      this.chat.toast(`You left “${c ? this.chat.titleOf(c) : 'the group'}”.`);
    } catch (err) {
      this.chat.leaving.delete(id);
      this.showError(err);
      this.leaveNormal();
    }
  }
}
