// account.js — the account dialog: "Download my data" (GET
// /api/users/me/export/, saved as the file the server names) and "Delete
// account" (DELETE /api/users/me/ with the password, after saying what
// happens). See docs/API.md, "Deleting an account".

import { h, setChildren } from './dom.js';
import { request, ensureFreshAccess, apiUrl, session, ApiError } from './api.js';

/** filenameOf reads the file name of a Content-Disposition header. */
function filenameOf(header) {
  const m = /filename="([^"]+)"/.exec(header || '');
  return m ? m[1] : 'confab-export.json';
}

export class AccountDialog {
  /**
   * onDeleted is called once the account is deleted (the session is
   * over); beforeDelete and afterRefused bracket the request, so that
   * the socket does not fight the deletion's close.
   */
  constructor({ onDeleted, beforeDelete, afterRefused }) {
    this.dlg = document.getElementById('account-dialog');
    this.onDeleted = onDeleted;
    this.beforeDelete = beforeDelete;
    this.afterRefused = afterRefused;
    this.build();
  }

  build() {
    this.downloadStatus = h('p', { class: 'muted small', testid: 'download-status', 'aria-live': 'polite' });
    this.downloadButton = h('button', { type: 'button', class: 'btn', testid: 'download-data', on: { click: () => this.download() } },
      'Download my data');
    this.password = h('input', { id: 'delete-password', testid: 'delete-password', type: 'password', autocomplete: 'current-password', required: true });
    this.error = h('p', { class: 'form-error', testid: 'delete-error', role: 'alert', hidden: true });
    this.submit = h('button', { type: 'submit', class: 'btn btn-danger', testid: 'delete-account-submit' }, 'Delete my account');
    const form = h('form', { class: 'stack', noValidate: true, on: { submit: (ev) => { ev.preventDefault(); this.remove(); } } },
      h('h3', {}, 'Delete account'),
      h('div', { class: 'small', testid: 'delete-explanation' },
        h('p', {}, 'This cannot be undone. At once:'),
        h('ul', {},
          h('li', {}, 'you are signed out everywhere, and your devices get no more notifications;'),
          h('li', {}, 'you leave every conversation; the others keep them, and see you as “Deleted user”;'),
          h('li', {}, 'every message you sent is erased (text, files and the reactions to it), leaving “Message deleted” in its place;'),
          h('li', {}, 'your username stays reserved for a while, so that nobody can pass for you, then becomes free.')),
        h('p', {}, 'Download your data first if you want a copy.')),
      h('div', { class: 'field' }, h('label', { for: 'delete-password' }, 'Your password'), this.password),
      this.error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', testid: 'account-close', on: { click: () => this.dlg.close() } }, 'Cancel'),
        this.submit));
    setChildren(this.dlg, h('div', { class: 'dialog-body stack' },
      h('h2', { id: 'account-heading' }, 'Your account'),
      h('section', { class: 'stack' },
        h('h3', {}, 'Your data'),
        h('p', { class: 'small' }, 'A JSON file with your profile, your conversations, every message you sent and your devices.'),
        h('div', {}, this.downloadButton),
        this.downloadStatus),
      h('hr'),
      form));
    this.dlg.addEventListener('click', (ev) => {
      if (ev.target === this.dlg) this.dlg.close(); // a click on the backdrop
    });
  }

  open() {
    this.password.value = '';
    this.error.hidden = true;
    this.downloadStatus.textContent = '';
    this.dlg.dataset.state = '';
    if (!this.dlg.open) this.dlg.showModal();
  }

  /** download fetches the export with the access token and saves it. */
  async download() {
    this.downloadButton.disabled = true;
    this.downloadStatus.textContent = 'Preparing your file…';
    try {
      const token = await ensureFreshAccess();
      let res;
      try {
        res = await fetch(apiUrl('api/users/me/export/'), { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
      } catch {
        throw new ApiError(0, null);
      }
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        const ra = Number(res.headers.get('Retry-After'));
        throw new ApiError(res.status, body, Number.isFinite(ra) && ra > 0 ? ra : undefined);
      }
      const blob = await res.blob();
      const name = filenameOf(res.headers.get('Content-Disposition'));
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      this.downloadStatus.textContent = `Saved ${name} (${Math.max(1, Math.round(blob.size / 1024))} KB).`;
      this.downloadStatus.dataset.file = name;
    } catch (err) {
      let text = err.detail || err.message;
      if (err.status === 429 && err.retryAfter) text = `You can download your data a few times an hour. Try again in ${Math.ceil(err.retryAfter / 60)} min.`;
      this.downloadStatus.textContent = text;
    } finally {
      this.downloadButton.disabled = false;
    }
  }

  /** remove deletes the account with the password given. */
  async remove() {
    const password = this.password.value;
    this.error.hidden = true;
    if (!password) {
      this.showError('Enter your password to delete your account.');
      return;
    }
    this.submit.disabled = true;
    this.beforeDelete();
    try {
      await request('DELETE', 'api/users/me/', { password });
    } catch (err) {
      this.afterRefused();
      this.submit.disabled = false;
      if (err.status === 403) this.showError('That password is not correct.');
      else this.showError(err.detail || err.message);
      return;
    }
    this.submit.disabled = false;
    this.dlg.close();
    session.clear();
    this.onDeleted();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }
}
