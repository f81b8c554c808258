// moderate.js — reporting and the Staff view. ReportDialog asks for a
// reason and a note and files a report of a message or a person
// (POST /api/reports/). StaffView, shown only to staff (is_staff in
// /api/users/me/), is the report queue with each report's context and
// the actions staff take, accounts to deactivate or reactivate, and the
// audit log (everything under /api/admin/).

import { h, setChildren, displayName, fullTime, messageTime } from './dom.js';
import { request, qs } from './api.js';

const REASONS = [
  ['spam', 'Spam'],
  ['abuse', 'Abuse or harassment'],
  ['illegal', 'Illegal content'],
  ['other', 'Something else'],
];

const ACTION_NAMES = {
  dismiss: 'Dismissed',
  remove_message: 'Message removed',
  deactivate_user: 'User deactivated',
  dismiss_report: 'dismissed a report',
  reactivate_user: 'reactivated',
  grant_staff: 'made staff',
  revoke_staff: 'took staff away from',
};

/** ReportDialog reports a message or a person to staff. */
export class ReportDialog {
  constructor({ toast }) {
    this.toast = toast;
    this.dlg = document.getElementById('report-dialog');
    this.target = null;
    this.build();
  }

  build() {
    this.heading = h('h2', { id: 'report-heading' });
    this.what = h('p', { class: 'muted small', testid: 'report-target' });
    this.reasons = REASONS.map(([value, label]) => {
      const input = h('input', { type: 'radio', name: 'report-reason', value, id: `report-reason-${value}`, testid: 'report-reason', dataset: { reason: value } });
      return { input, el: h('label', { class: 'check', for: `report-reason-${value}` }, input, ` ${label}`) };
    });
    this.note = h('textarea', { id: 'report-note', testid: 'report-note', rows: 3, maxLength: 1000, placeholder: 'What should staff know? (optional)' });
    this.error = h('p', { class: 'form-error', testid: 'report-error', role: 'alert', hidden: true });
    this.submit = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'report-submit' }, 'Send report');
    const form = h('form', { class: 'dialog-body stack', noValidate: true, on: { submit: (ev) => { ev.preventDefault(); this.send(); } } },
      h('div', {}, this.heading, this.what),
      h('fieldset', { class: 'stack-tight reasons' }, h('legend', {}, 'Reason'), this.reasons.map((r) => r.el)),
      h('div', { class: 'field' }, h('label', { for: 'report-note' }, 'Note ', h('span', { class: 'optional' }, '(optional)')), this.note),
      this.error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', testid: 'report-cancel', on: { click: () => this.dlg.close() } }, 'Cancel'),
        this.submit));
    setChildren(this.dlg, form);
    this.dlg.addEventListener('click', (ev) => {
      if (ev.target === this.dlg) this.dlg.close();
    });
  }

  /** open asks about a message ({message}) or a person ({user}). */
  open(target) {
    this.target = target;
    if (target.message) {
      this.heading.textContent = 'Report message';
      const m = target.message;
      this.what.textContent = `${displayName(m.sender)}: “${(m.content || '').slice(0, 120)}”`;
    } else {
      this.heading.textContent = `Report ${displayName(target.user)}`;
      this.what.textContent = `@${target.user.username}`;
    }
    for (const r of this.reasons) r.input.checked = false;
    this.note.value = '';
    this.error.hidden = true;
    this.submit.disabled = false;
    this.dlg.showModal();
    this.reasons[0].input.focus();
  }

  async send() {
    const chosen = this.reasons.find((r) => r.input.checked);
    if (!chosen) {
      this.error.textContent = 'Pick a reason.';
      this.error.hidden = false;
      return;
    }
    const body = { reason: chosen.input.value };
    const note = this.note.value.trim();
    if (note) body.note = note;
    if (this.target.message) body.message_id = this.target.message.id;
    else body.user_id = this.target.user.id;
    this.submit.disabled = true;
    this.error.hidden = true;
    try {
      const rep = await request('POST', 'api/reports/', body);
      this.dlg.close();
      this.toast(rep && rep.reason !== body.reason ? 'You reported this already; staff will look at it.' : 'Report sent. Staff will look at it.');
    } catch (err) {
      const fields = Object.values(err.fields || {}).flat();
      this.error.textContent = fields.length ? fields.join(' ') : (err.detail || err.message);
      this.error.hidden = false;
      this.submit.disabled = false;
    }
  }
}

/** StaffView is the staff's dialog: reports, accounts and the audit log. */
export class StaffView {
  constructor({ toast }) {
    this.toast = toast;
    this.dlg = document.getElementById('staff-dialog');
    this.button = document.getElementById('staff-toggle');
    this.tab = 'open';
    this.build();
    this.button.addEventListener('click', () => this.open());
  }

  /** setUser shows the Staff button to staff only. */
  setUser(me) {
    this.button.hidden = !(me && me.is_staff === true);
    if (this.button.hidden && this.dlg.open) this.dlg.close();
  }

  build() {
    const tabs = [['open', 'Open reports'], ['resolved', 'Resolved'], ['accounts', 'Accounts'], ['audit', 'Audit log']];
    this.tabs = h('div', { class: 'tabs', role: 'tablist' }, tabs.map(([key, label]) => h('button', {
      type: 'button', class: 'tab', role: 'tab', testid: `staff-tab-${key}`, dataset: { tab: key },
      on: { click: () => this.show(key) },
    }, label)));
    this.status = h('p', { class: 'muted small', testid: 'staff-status', 'aria-live': 'polite' });
    this.body = h('div', { class: 'staff-body', testid: 'staff-body' });
    this.more = h('button', { type: 'button', class: 'btn btn-tiny', testid: 'staff-more', hidden: true, on: { click: () => this.load(false) } }, 'More');
    setChildren(this.dlg, h('div', { class: 'dialog-body stack staff' },
      h('div', { class: 'row spread' },
        h('h2', { id: 'staff-heading' }, 'Staff'),
        h('button', { type: 'button', class: 'btn', testid: 'staff-close', on: { click: () => this.dlg.close() } }, 'Close')),
      this.tabs, this.status, this.body, this.more));
  }

  open() {
    if (!this.dlg.open) this.dlg.showModal();
    this.show(this.tab);
  }

  show(tab) {
    this.tab = tab;
    for (const b of this.tabs.children) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    this.dlg.dataset.tab = tab;
    this.next = null;
    setChildren(this.body);
    if (tab === 'accounts') {
      this.more.hidden = true;
      this.status.textContent = '';
      this.renderAccounts();
      return;
    }
    this.load(true);
  }

  async load(reset) {
    const tab = this.tab;
    const path = tab === 'audit'
      ? `api/admin/audit/${qs({ before: reset ? null : this.next })}`
      : `api/admin/reports/${qs({ status: tab, before: reset ? null : this.next })}`;
    this.status.textContent = 'Loading…';
    this.dlg.dataset.state = 'loading';
    let data;
    try {
      data = await request('GET', path);
    } catch (err) {
      if (this.tab !== tab) return;
      this.status.textContent = `Could not load: ${err.detail || err.message}`;
      this.dlg.dataset.state = 'error';
      return;
    }
    if (this.tab !== tab) return;
    const list = (data && data.results) || [];
    this.next = (data && data.next) || null;
    this.more.hidden = !this.next;
    const items = tab === 'audit' ? list.map((e) => this.auditEl(e)) : list.map((r) => this.reportEl(r));
    if (reset) setChildren(this.body, items);
    else this.body.append(...items);
    const none = { open: 'No open reports.', resolved: 'No resolved reports yet.', audit: 'Nothing recorded yet.' }[tab];
    this.status.textContent = this.body.childElementCount ? '' : none;
    this.dlg.dataset.state = 'done';
  }

  messageEl(m, reported) {
    const text = m.is_deleted ? (m.removed_by_moderator ? 'Removed by a moderator' : 'Message deleted') : (m.content || '(attachment)');
    return h('li', { class: `staff-msg${reported ? ' reported' : ''}${m.is_deleted ? ' deleted' : ''}`, testid: reported ? 'staff-reported-message' : 'staff-context-message', dataset: { messageId: String(m.id) } },
      h('span', { class: 'staff-msg-sender' }, displayName(m.sender)),
      h('span', { class: 'staff-msg-text' }, text),
      h('time', { class: 'muted small', dateTime: m.created_at, title: fullTime(m.created_at) }, messageTime(m.created_at)));
  }

  accountLine(u) {
    if (!u) return h('p', { class: 'muted small' }, 'Account gone.');
    return h('p', { class: 'small', testid: 'staff-report-user', dataset: { userId: String(u.id), active: String(u.is_active) } },
      h('strong', {}, displayName(u)), ` @${u.username}`,
      u.is_staff ? h('span', { class: 'role' }, 'staff') : null,
      u.is_active ? null : h('span', { class: 'role role-danger', testid: 'staff-deactivated' }, 'deactivated'));
  }

  reportEl(r) {
    const el = h('li', { class: 'staff-report', testid: 'staff-report', dataset: { reportId: String(r.id), status: r.status, targetType: r.target_type } });
    const head = h('p', { class: 'small' },
      h('strong', { testid: 'staff-report-reason' }, r.reason), ' · ',
      r.target_type === 'message' ? 'a message' : 'a person', ' · reported by ',
      r.reporter ? displayName(r.reporter) : 'a deleted account', ' · ',
      h('time', { dateTime: r.created_at, title: fullTime(r.created_at) }, messageTime(r.created_at)));
    const note = r.note ? h('blockquote', { class: 'staff-note', testid: 'staff-report-note' }, r.note) : null;
    const context = r.target_type === 'message' && r.context.length
      ? h('ol', { class: 'staff-context', testid: 'staff-context' }, r.context.map((m) => this.messageEl(m, r.message && m.id === r.message.id)))
      : null;
    let foot;
    if (r.resolution) {
      const res = r.resolution;
      foot = h('p', { class: 'small staff-resolution', testid: 'staff-resolution', dataset: { action: res.action } },
        `${ACTION_NAMES[res.action] || res.action} by ${res.resolved_by ? displayName(res.resolved_by) : 'a deleted account'} · ${fullTime(res.resolved_at)}`,
        res.note ? ` — ${res.note}` : '');
    } else {
      foot = this.actionsEl(r, el);
    }
    const reactivate = r.user && !r.user.is_active
      ? h('button', { type: 'button', class: 'btn btn-tiny', testid: 'staff-reactivate', on: { click: () => this.askReason(el, r.user, true) } }, 'Reactivate')
      : null;
    setChildren(el, head, note, context, this.accountLine(r.user), reactivate, foot);
    return el;
  }

  actionsEl(r, el) {
    const note = h('input', { class: 'staff-note-input', testid: 'staff-resolve-note', maxLength: 1000, placeholder: 'Note for the audit log (optional)', 'aria-label': 'Note' });
    const error = h('p', { class: 'form-error', testid: 'staff-error', role: 'alert', hidden: true });
    const act = (action) => async () => {
      error.hidden = true;
      try {
        const done = await request('POST', `api/admin/reports/${r.id}/resolve/`, { action, note: note.value.trim() });
        el.replaceWith(this.reportEl(done));
        this.toast(`Report ${r.id}: ${(ACTION_NAMES[action] || action).toLowerCase()}.`);
      } catch (err) {
        error.textContent = err.detail && !Object.keys(err.fields || {}).length ? err.detail : Object.values(err.fields || {}).flat().join(' ') || err.message;
        error.hidden = false;
      }
    };
    return h('div', { class: 'stack-tight' }, note,
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'btn btn-tiny', testid: 'staff-dismiss', on: { click: act('dismiss') } }, 'Dismiss'),
        r.target_type === 'message' && r.message && !r.message.is_deleted
          ? h('button', { type: 'button', class: 'btn btn-tiny btn-danger', testid: 'staff-remove-message', on: { click: act('remove_message') } }, 'Remove message')
          : null,
        r.user && r.user.is_active
          ? h('button', { type: 'button', class: 'btn btn-tiny btn-danger', testid: 'staff-deactivate-user', on: { click: act('deactivate_user') } }, 'Deactivate user')
          : null),
      error);
  }

  /** askReason asks for the reason of a deactivation or reactivation of u, in place. */
  askReason(el, u, reactivate) {
    const reason = h('input', { class: 'staff-note-input', testid: 'staff-reason', maxLength: 500, placeholder: 'Reason (required)', 'aria-label': 'Reason' });
    const error = h('p', { class: 'form-error', testid: 'staff-error', role: 'alert', hidden: true });
    const verb = reactivate ? 'reactivate' : 'deactivate';
    const box = h('form', { class: 'stack-tight staff-ask', noValidate: true, on: { submit: async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      try {
        await request('POST', `api/admin/users/${u.id}/${verb}/`, { reason: reason.value.trim() });
        this.toast(`${displayName(u)} is ${reactivate ? 'active again' : 'deactivated'}.`);
        this.show(this.tab);
      } catch (err) {
        error.textContent = Object.values(err.fields || {}).flat().join(' ') || err.detail || err.message;
        error.hidden = false;
      }
    } } }, reason,
    h('div', { class: 'row' },
      h('button', { type: 'submit', class: 'btn btn-tiny btn-primary', testid: `staff-${verb}-confirm` }, reactivate ? 'Reactivate' : 'Deactivate'),
      h('button', { type: 'button', class: 'btn btn-tiny', on: { click: () => box.remove() } }, 'Cancel')),
    error);
    el.append(box);
    reason.focus();
  }

  renderAccounts() {
    const input = h('input', { type: 'search', id: 'staff-account-search', testid: 'staff-account-search', placeholder: 'Search by username or name', autocomplete: 'off', spellcheck: false, autocapitalize: 'none' });
    const list = h('ul', { class: 'staff-accounts', testid: 'staff-accounts' });
    const run = async () => {
      const q = input.value.trim();
      if (!q) { setChildren(list); return; }
      try {
        const data = await request('GET', `api/admin/users/${qs({ search: q, limit: 20 })}`);
        setChildren(list, ((data && data.results) || []).map((u) => {
          const li = h('li', { class: 'staff-account', testid: 'staff-account', dataset: { userId: String(u.id), active: String(u.is_active) } });
          setChildren(li, this.accountLine(u),
            h('button', { type: 'button', class: `btn btn-tiny${u.is_active ? ' btn-danger' : ''}`, testid: u.is_active ? 'staff-deactivate' : 'staff-reactivate',
              on: { click: () => this.askReason(li, u, !u.is_active) } }, u.is_active ? 'Deactivate' : 'Reactivate'));
          return li;
        }));
      } catch (err) {
        this.status.textContent = `Search failed: ${err.detail || err.message}`;
      }
    };
    let timer = 0;
    input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(run, 250); });
    input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); clearTimeout(timer); run(); } });
    setChildren(this.body, h('label', { for: 'staff-account-search' }, 'Find an account (deactivated ones too)'), input, list);
    input.focus();
  }

  auditEl(e) {
    const who = e.actor ? `@${e.actor.username}` : 'The command line';
    const what = {
      dismiss_report: `dismissed report ${e.report_id}`,
      remove_message: `removed message ${e.target_id} by @${e.target_name}`,
      deactivate_user: `deactivated @${e.target_name}`,
      reactivate_user: `reactivated @${e.target_name}`,
      grant_staff: `made @${e.target_name} staff`,
      revoke_staff: `took staff away from @${e.target_name}`,
    }[e.action] || `${e.action} ${e.target_type} ${e.target_id}`;
    return h('li', { class: 'staff-audit', testid: 'staff-audit-entry', dataset: { action: e.action, targetId: String(e.target_id) } },
      h('time', { class: 'muted small', dateTime: e.at, title: fullTime(e.at) }, fullTime(e.at)), ' ',
      h('span', {}, `${who} ${what}`),
      e.reason ? h('span', { class: 'muted' }, ` — ${e.reason}`) : null);
  }
}
