// sw.js — the console's service worker. It only shows push notifications
// and opens the console on a click: it caches nothing and never answers a
// fetch, so the console always talks to the live server.
//
// A push carries the payload the server's dispatcher builds (see
// docs/API.md "Devices and notifications"): {title, body?, badge,
// data: {conversation_id, message_id, seq}}, every value of data a string.
// Served from the console's folder, its scope is the whole console.

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (ev) => ev.waitUntil(self.clients.claim()));

/** payloadOf reads a push's JSON, or makes do with its text. */
function payloadOf(ev) {
  if (!ev.data) return {};
  try {
    const p = ev.data.json();
    return p && typeof p === 'object' ? p : {};
  } catch {
    return { body: ev.data.text() };
  }
}

/** consoleUrl is the console's address that opens conversation id. */
function consoleUrl(id) {
  const url = new URL('./', self.registration.scope);
  if (/^[0-9]+$/.test(String(id || ''))) url.hash = `#/c/${id}`;
  return url.href;
}

self.addEventListener('push', (ev) => {
  const p = payloadOf(ev);
  const data = p.data && typeof p.data === 'object' ? p.data : {};
  const conv = data.conversation_id || '';
  const title = typeof p.title === 'string' && p.title ? p.title : 'New message';
  const options = {
    body: typeof p.body === 'string' ? p.body : '',
    icon: new URL('favicon.svg', self.registration.scope).href,
    // One notification per conversation: a newer push replaces the one
    // shown, as the providers' collapse keys do, and still alerts.
    tag: conv ? `conv-${conv}` : 'confab',
    renotify: Boolean(conv),
    data: { conversation_id: conv, message_id: data.message_id || '', seq: data.seq || '', url: consoleUrl(conv) },
  };
  const work = [self.registration.showNotification(title, options)];
  if (typeof p.badge === 'number' && self.navigator.setAppBadge) {
    work.push(self.navigator.setAppBadge(p.badge).catch(() => {}));
  }
  ev.waitUntil(Promise.all(work));
});

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  const data = ev.notification.data || {};
  const url = data.url || consoleUrl(data.conversation_id);
  ev.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const open = windows.find((c) => c.url.startsWith(self.registration.scope));
    if (!open) {
      await self.clients.openWindow(url);
      return;
    }
    // The console opens the conversation itself (app.js), keeping its
    // socket and state, rather than being reloaded at a new address.
    open.postMessage({ type: 'open_conversation', conversation_id: Number(data.conversation_id) || null });
    // A browser may refuse the focus (no click of its own to allow it);
    // the conversation is open either way.
    await open.focus().catch(() => {});
  })());
});
