// push.js — notifications: the switch that has this browser notified
// through Web Push (a service worker, sw.js, and the browser's push
// service), the list of the user's devices, and the way a click on a
// notification comes back to the console.
//
// This browser's device is remembered in localStorage (KEY_DEVICE) as
// {user_id, device_id, endpoint}: a browser has one push subscription,
// whoever is signed in, so the switch is on only for the user whose
// device the server holds for that subscription.

import { h, setChildren, fullTime } from './dom.js';
import { request } from './api.js';

const KEY_DEVICE = 'confab.push.device';
// Logging out waits this long at most for this browser's device to go.
const FORGET_TIMEOUT_MS = 4000;
// A browser whose push service is out of reach can leave subscribe()
// pending for ever (Chromium does, without its push server): give up then.
const SUBSCRIBE_TIMEOUT_MS = 20000;

const PLATFORMS = { webpush: 'Web browser', fcm: 'Android (FCM)', apns: 'iPhone or iPad (APNs)' };

/** support says whether this browser can be notified, and if not why. */
export function pushSupport() {
  if (!window.isSecureContext) return { ok: false, why: 'Notifications need the console on a secure (https) address.' };
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    return { ok: false, why: 'This browser has no push service: Confab cannot notify you here.' };
  }
  return { ok: true };
}

/** keyBytes decodes a base64url VAPID key for pushManager.subscribe. */
function keyBytes(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(b64url.length / 4) * 4, '=');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function sameKey(buffer, bytes) {
  if (!buffer) return false;
  const a = new Uint8Array(buffer);
  return a.length === bytes.length && a.every((x, i) => x === bytes[i]);
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(KEY_DEVICE) || 'null');
  } catch {
    return null;
  }
}

function withTimeout(promise, ms) {
  let timer = 0;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Notifications is the "Notifications" dialog: the switch for this
 * browser and the user's devices. Its switch's state (data-state of
 * [push-state]) is one of:
 *   checking, unsupported (no push service or not https), denied (the
 *   site may not show notifications), unavailable (the browser's push
 *   service refused to subscribe), off, on, busy, error (the server
 *   refused the subscription).
 */
export class Notifications {
  constructor(chat) {
    this.chat = chat;
    this.dlg = document.getElementById('notifications-dialog');
    this.devices = [];
    this.failure = null; // {state, text} of the last attempt to turn on
    this.build();
    if (pushSupport().ok) {
      // A click on a notification while the console is open comes here
      // (sw.js): open the conversation in place.
      navigator.serviceWorker.addEventListener('message', (ev) => {
        const m = ev.data;
        if (m && m.type === 'open_conversation' && Number.isInteger(m.conversation_id) && this.chat.me) {
          location.hash = `#/c/${m.conversation_id}`;
        }
      });
      navigator.serviceWorker.startMessages();
    }
  }

  get me() {
    return this.chat.me;
  }

  build() {
    this.switch = h('input', {
      type: 'checkbox',
      id: 'push-switch',
      testid: 'push-switch',
      class: 'toggle',
      role: 'switch',
      'aria-describedby': 'push-state',
      on: { change: () => this.flip() },
    });
    this.state = h('p', { id: 'push-state', class: 'small push-state', testid: 'push-state', 'aria-live': 'polite', dataset: { state: 'checking' } });
    this.list = h('ul', { class: 'devices', testid: 'device-list', 'aria-label': 'Your devices' });
    this.listStatus = h('p', { class: 'muted small', testid: 'device-list-status', 'aria-live': 'polite' });
    this.error = h('p', { class: 'form-error', testid: 'notifications-error', role: 'alert', hidden: true });
    setChildren(this.dlg, h('div', { class: 'dialog-body stack' },
      h('h2', { id: 'notifications-heading' }, 'Notifications'),
      h('section', { class: 'stack-tight' },
        h('label', { class: 'check switch-row', for: 'push-switch' }, this.switch, ' Notify me on this browser'),
        this.state),
      h('section', { class: 'stack-tight' },
        h('h3', {}, 'Your devices'),
        h('p', { class: 'muted small' }, 'Where Confab notifies you of new messages while you are away. Mute a conversation in its details.'),
        this.list,
        this.listStatus),
      this.error,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', testid: 'notifications-close', on: { click: () => this.dlg.close() } }, 'Close'))));
    this.dlg.addEventListener('click', (ev) => {
      if (ev.target === this.dlg) this.dlg.close();
    });
  }

  open() {
    this.error.hidden = true;
    this.dlg.showModal();
    this.refresh();
  }

  showError(err) {
    this.error.textContent = err.detail || err.message;
    this.error.hidden = false;
  }

  /** refresh reloads the devices, then works out the switch's state. */
  async refresh() {
    this.listStatus.textContent = 'Loading…';
    try {
      const data = await request('GET', 'api/devices/');
      this.devices = (data && data.results) || [];
      this.listStatus.textContent = this.devices.length ? '' : 'No devices yet.';
    } catch (err) {
      this.listStatus.textContent = '';
      this.showError(err);
    }
    await this.check();
    this.renderDevices();
  }

  /** thisDevice is this browser's device id when it is the signed-in user's. */
  thisDevice() {
    const rec = remembered();
    return rec && this.me && rec.user_id === this.me.id ? rec.device_id : null;
  }

  async subscription() {
    const reg = await navigator.serviceWorker.getRegistration();
    return reg ? reg.pushManager.getSubscription() : null;
  }

  async check() {
    const support = pushSupport();
    if (!support.ok) return this.setState('unsupported', support.why);
    if (Notification.permission === 'denied') {
      return this.setState('denied', 'Notifications are blocked for this site. Allow them in the browser’s site settings, then turn this on.');
    }
    let sub = null;
    try {
      sub = await this.subscription();
    } catch (err) {
      return this.setState('unavailable', `This browser’s push service is not available: ${err.message}`);
    }
    const rec = remembered();
    const mine = sub && rec && this.me && rec.user_id === this.me.id && rec.endpoint === sub.endpoint &&
      this.devices.some((d) => d.id === rec.device_id);
    if (mine) return this.setState('on', 'On: this browser shows new messages while Confab is closed or you are offline.');
    if (this.failure) return this.setState(this.failure.state, this.failure.text);
    return this.setState('off', 'Off: this browser is not notified.');
  }

  setState(state, text) {
    this.state.dataset.state = state;
    this.state.textContent = text;
    this.switch.checked = state === 'on';
    this.switch.disabled = state === 'unsupported' || state === 'denied' || state === 'busy' || state === 'checking';
  }

  async flip() {
    const on = this.switch.checked;
    this.error.hidden = true;
    this.setState('busy', on ? 'Turning on…' : 'Turning off…');
    if (on) await this.turnOn();
    else await this.turnOff();
    await this.refresh();
  }

  async turnOn() {
    this.failure = null;
    const fail = (state, text) => {
      this.failure = { state, text };
    };
    let permission = Notification.permission;
    if (permission === 'default') permission = await Notification.requestPermission();
    if (permission !== 'granted') return; // check() says denied, or off when the question was dismissed
    let key;
    try {
      const data = await request('GET', 'api/push/vapid-public-key/');
      key = data && data.public_key ? keyBytes(data.public_key) : null;
    } catch (err) {
      return fail('error', `Could not turn on: ${err.detail || err.message}`);
    }
    if (!key) return fail('unavailable', 'The server has no Web Push key, so it cannot notify browsers.');
    let sub;
    try {
      sub = await withTimeout((async () => {
        const reg = await navigator.serviceWorker.register('sw.js');
        await navigator.serviceWorker.ready;
        let s = await reg.pushManager.getSubscription();
        if (s && !sameKey(s.options.applicationServerKey, key)) {
          await s.unsubscribe(); // made for another server key: useless here
          s = null;
        }
        return s || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
      })(), SUBSCRIBE_TIMEOUT_MS);
    } catch (err) {
      return fail('unavailable', `This browser’s push service could not subscribe (${err.name}: ${err.message}), so Confab cannot notify you here.`);
    }
    try {
      const d = await request('POST', 'api/devices/', { platform: 'webpush', subscription: sub.toJSON() });
      localStorage.setItem(KEY_DEVICE, JSON.stringify({ user_id: this.me.id, device_id: d.id, endpoint: sub.endpoint }));
    } catch (err) {
      const why = (err.fields && err.fields.subscription && [].concat(err.fields.subscription).join(' ')) || err.detail || err.message;
      await sub.unsubscribe().catch(() => {});
      return fail('error', `The server did not take this browser: ${why}`);
    }
  }

  async turnOff() {
    this.failure = null;
    const id = this.thisDevice();
    try {
      if (id !== null) await request('DELETE', `api/devices/${id}/`);
    } catch (err) {
      if (err.status !== 404) {
        this.showError(err);
        return;
      }
    }
    await this.unsubscribe();
  }

  async unsubscribe() {
    localStorage.removeItem(KEY_DEVICE);
    try {
      const sub = await this.subscription();
      if (sub) await sub.unsubscribe();
    } catch {
      // Nothing to undo: the server no longer holds the device.
    }
  }

  async remove(device) {
    this.error.hidden = true;
    try {
      await request('DELETE', `api/devices/${device.id}/`);
    } catch (err) {
      if (err.status !== 404) {
        this.showError(err);
        return;
      }
    }
    if (device.id === this.thisDevice()) await this.unsubscribe();
    await this.refresh();
  }

  renderDevices() {
    const here = this.state.dataset.state === 'on' ? this.thisDevice() : null;
    setChildren(this.list, this.devices.map((d) => h('li', { class: 'device', testid: 'device-item', dataset: { deviceId: String(d.id), platform: d.platform } },
      h('span', { class: 'device-names' },
        h('span', { class: 'device-platform' }, PLATFORMS[d.platform] || d.platform, d.id === here ? h('span', { class: 'role', testid: 'device-this' }, 'this browser') : null),
        h('span', { class: 'muted small' }, `Added ${fullTime(d.created_at)}`)),
      h('button', {
        type: 'button',
        class: 'btn btn-tiny',
        testid: 'device-delete',
        'aria-label': `Remove ${PLATFORMS[d.platform] || d.platform} device added ${fullTime(d.created_at)}`,
        on: { click: () => this.remove(d) },
      }, 'Remove'))));
  }

  /**
   * forget deletes this browser's device before its user logs out, so
   * that the next person on this browser is not shown their messages.
   * Best effort, within FORGET_TIMEOUT_MS.
   */
  async forget() {
    const id = this.thisDevice();
    if (id === null) return;
    try {
      await withTimeout(request('DELETE', `api/devices/${id}/`), FORGET_TIMEOUT_MS);
    } catch {
      // Logging out goes on; the device stays until it is removed.
      return;
    }
    await withTimeout(this.unsubscribe(), FORGET_TIMEOUT_MS).catch(() => {});
  }
}
