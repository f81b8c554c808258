// app.js — entry point of the Confab web console: sign-in, wiring of the
// session, the socket, the chat screen and the developer panel.
//
// Modules: dom.js (DOM helpers, text only), api.js (REST + tokens),
// socket.js (WebSocket + reconnect), chat.js (conversations and messages),
// dialogs.js (new conversation, details), search.js (message search),
// attach.js (uploads, attachments, the picture viewer), push.js (this
// browser's notifications, the user's devices; sw.js is its service
// worker), devpanel.js (frames, tools and the push outbox).
// All user content is rendered with textContent / text nodes, never as HTML
// (search snippets too: their <b> marks are built as elements, see dom.js).
//
// Stable hooks for browser tests (id = element id, [tid] = data-testid):
//
// Sign in / register
//   #login-form [login-form], #login-username [login-username],
//   #login-password [login-password], #login-submit [login-submit],
//   #login-error [login-error], #show-register [show-register] (switch to the
//   register form), #register-form [register-form], #register-username
//   [register-username], #register-display-name [register-display-name],
//   #register-password [register-password], #register-submit [register-submit],
//   #register-error [register-error], #show-login [show-login],
//   #auth-notice [auth-notice] (e.g. "Your session has ended").
//
// Top bar
//   #connection-status [connection-status] data-status = "connecting" | "live" |
//     "reconnecting" (also "offline" after logout or the dev panel's Disconnect,
//     "stopped" after close code 4004); its text says e.g. "Reconnecting in 4 s".
//   #connection-retry [connection-retry] (shown while reconnecting/offline),
//   #me-name [me-name], #logout-button [logout-button],
//   #devpanel-toggle [devpanel-toggle] (aria-expanded),
//   #notifications-button [notifications-button] (opens the dialog below).
//   #staff-toggle [staff-toggle] (staff only) opens the Staff view.
//   #account-button [account-button] (opens the account dialog).
//
// Reporting  #report-dialog [report-dialog]: [report-target],
//   [report-reason] data-reason (radios), #report-note [report-note],
//   [report-submit], [report-cancel], [report-error]. Opened by
//   [message-report] (a message's menu, others' messages) and
//   [participant-report] (a person in the details dialog).
//
// Staff view  #staff-dialog [staff-dialog] data-tab data-state:
//   [staff-tab-open|resolved|accounts|audit], [staff-status], [staff-body];
//   [staff-report] data-report-id data-status data-target-type with
//   [staff-report-reason], [staff-report-note], [staff-context] of
//   [staff-context-message] / [staff-reported-message] data-message-id,
//   [staff-report-user] data-active, [staff-resolve-note], [staff-dismiss],
//   [staff-remove-message], [staff-deactivate-user], [staff-resolution]
//   data-action, [staff-reactivate]; accounts: [staff-account-search],
//   [staff-account] data-user-id data-active, [staff-deactivate] /
//   [staff-reactivate], [staff-reason], [staff-deactivate-confirm] /
//   [staff-reactivate-confirm]; [staff-audit-entry] data-action; [staff-more].
//
// Account dialog  #account-dialog [account-dialog]
//   [download-data] (saves the export), [download-status] (data-file = the
//   file name once saved), [delete-explanation], #delete-password
//   [delete-password], [delete-account-submit], [delete-error],
//   [account-close]. After a deletion the sign-in screen says
//   "Your account has been deleted." in [auth-notice].
//
// Conversations
//   #new-conversation-button [new-conversation-button]
//   #conversation-list [conversation-list]; each item is an <a> with
//     [conversation-item] data-conversation-id="<id>" (aria-current="page" when
//     open) containing [conversation-title], [conversation-preview],
//     [presence] data-online="true|false", and [conversation-unread] (the
//     badge, present only when unread > 0).
//   #conversation-list-status [conversation-list-status] (loading / empty).
//   URL hash #/c/<id> opens a conversation.
//
// Message search (sidebar)
//   #message-search [message-search] (debounced as you type; Escape clears),
//   #search-panel [search-panel] data-state = "loading" | "done" | "error"
//   (shown instead of the conversation list while there is a query),
//   #search-status [search-status], #search-results [search-results]; each
//   result is a button [search-result] data-message-id data-conversation-id
//   with [search-result-conversation] and [search-snippet] (matched words in
//   <b>); a click opens the conversation at the message. #search-more
//   [search-more] loads the next page.
//
// New conversation dialog  #new-conversation-dialog [new-conversation-dialog]
//   #user-search [user-search], [user-search-results], [user-result]
//   data-user-id (aria-pressed when chosen), [selected-users] with
//   [selected-user] data-user-id and [selected-user-remove],
//   #new-conversation-group [new-conversation-group] (checkbox),
//   #new-conversation-title [new-conversation-title],
//   #create-conversation-submit [create-conversation-submit],
//   [new-conversation-cancel], [new-conversation-error].
//
// Open conversation
//   #conversation-title [conversation-title], #conversation-subtitle
//   [conversation-subtitle], #back-button [back-button] (phone layout),
//   #details-button [details-button], #message-scroller [message-scroller],
//   #load-older [load-older], #history-status [history-status],
//   #message-list [message-list]; each message is an <li> [message] with
//     data-state = "pending" | "acked" | "failed", data-message-id="<id>"
//     (only once acknowledged), data-client-id, data-sender-id, class "mine"
//     for your own, class "mentions-me" and data-mentions-me="true" when it
//     mentions you, data-highlighted="true" (class "jumped") on the message a
//     search result or a quote jumped to; inside: [message-content] (with a
//     [mention] span data-user-id, class "mention-me" for you, per @mention),
//     [message-quote] data-reply-to-id (a reply's original, above the bubble:
//     [message-quote-sender], [message-quote-text], "Deleted message" once
//     deleted; a click scrolls to it), [reactions] with one [reaction-chip]
//     per emoji (data-emoji, data-count, data-me, aria-pressed; its
//     [reaction-count]; a click toggles your own), [message-reply],
//     [message-react] → [reaction-picker] with [reaction-option] data-emoji
//     and [reaction-picker-close]; for your own messages
//     [message-edit] → [message-edit-input], [message-edit-save],
//     [message-edit-cancel]; [message-delete] → [message-delete-confirm],
//     [message-delete-cancel]; failed sends: [message-retry], [message-discard].
//   #seen-by [seen-by] ("Seen by …", under the last message; data-message-id).
//   #typing-indicator [typing-indicator] ("alice is typing…", empty when idle).
//   #reply-bar [reply-bar] data-reply-to-id (shown while answering a message:
//   [reply-bar-sender], [reply-bar-text], #reply-cancel [reply-cancel]; Escape
//   in the composer cancels too), #composer [composer], #composer-input
//   [composer-input], #composer-send [composer-send] (disabled while a file
//   is uploading).
//   Attachments (attach.js): #composer-attach [composer-attach] opens
//   #composer-file [composer-file] (multiple); files dropped on the open
//   conversation (class "drop-target" while dragging) or pasted into the
//   composer go the same way. #composer-uploads [composer-uploads]
//   (data-busy) lists them: [upload-item] data-state = "uploading" | "done"
//   | "failed", data-progress (0–100), data-upload-id once uploaded, with
//   [upload-name], [upload-size], [upload-progress] (<progress>),
//   [upload-percent], [upload-error] (the server's detail), [upload-remove].
//   A message's files are in [message-attachments]: pictures as buttons
//   [attachment-image] data-attachment-id holding [attachment-thumbnail]
//   (<img>), other files as links [attachment-file] (download) with
//   [attachment-name] and [attachment-size] ("12.3 KB"); a message still
//   being sent shows [attachment-pending] chips. A picture opens
//   #lightbox [lightbox] data-attachment-id: [lightbox-image],
//   [lightbox-name], [lightbox-download], [lightbox-close] (Escape too).
//
// Details dialog  #details-dialog [details-dialog]
//   #details-title-input [details-title-input], [details-rename-save],
//   [participant-list], [participant-item] data-user-id data-role,
//   [participant-remove], [participant-block] data-blocked ("Block" /
//   "Unblock": a blocked person's messages show as [message-blocked] with
//   [message-blocked-show]; the <li> has data-blocked="true"),
//   #participant-add-search [participant-add-search],
//   [participant-add-result] data-user-id, [leave-conversation] →
//   [leave-confirm] / [leave-cancel], [details-error], [details-close].
//   Mute: #mute-select [mute-select] (values "", "1h", "8h", "1d",
//   "forever"; "current" while a mute chosen earlier runs), [mute-status]
//   data-state = "loading" | "on" | "until" | "forever" | "error" (its
//   text says e.g. "Muted until 7 Dec, 20:03").
//
// Notifications dialog  #notifications-dialog [notifications-dialog]
//   #push-switch [push-switch] (a checkbox, role switch: notify this
//   browser), #push-state [push-state] data-state = "checking" |
//   "unsupported" | "denied" | "unavailable" | "off" | "busy" | "on" |
//   "error", with a sentence that says why; [device-list] of
//   [device-item] data-device-id data-platform, each with [device-delete]
//   and, for this browser's own, [device-this]; [device-list-status]
//   ("No devices yet."), [notifications-error], [notifications-close].
//   A click on a notification (sw.js) opens its conversation here.
//
// Developer panel  #devpanel [devpanel]
//   [devpanel-close], [dev-status], [dev-ws-url], #last-close [last-close]
//   (data-code="<close code>", text like "4001 token rejected — “token
//   expired” at 15:03:21.123"), [dev-token-exp], [dev-user], #copy-ws-url
//   [copy-ws-url], #copy-curl [copy-curl], [copy-status], [curl-preview],
//   [dev-reconnect], [dev-connect-toggle], #dev-use-ticket [dev-use-ticket],
//   [dev-template-<type>] for ping, join_conversation, leave_conversation,
//   new_message, typing, read_receipt, authenticate; #dev-editor [dev-editor],
//   #dev-send [dev-send], #dev-ping [dev-ping], [dev-format], [dev-error],
//   #frame-filter [frame-filter] (type), [frame-dir-filter], [frame-pause]
//   (aria-pressed), [frame-clear], [frame-count], #frame-log [frame-log];
//   each frame is an <li> [frame-entry] data-dir="in"|"out" data-type="<type>";
//   connection happenings (connecting, closed …) are [frame-event] data-dir="sys".
//   Push outbox (GET /api/push/deliveries/, every 5 s while open):
//   [outbox-refresh], [outbox-count] data-state = "pending" | "sent" |
//   "failed" (text: the number), [outbox-status], [outbox-list] of
//   [outbox-item] data-delivery-id data-state data-device-id
//   data-conversation-id, with [outbox-attempts] and [outbox-error].
//
// Elsewhere: #toasts [toasts] holds transient [toast] messages.

import { $, h } from './dom.js';
import { session, request, ensureFreshAccess, login, register, logout } from './api.js';
import { ChatSocket, describeClose } from './socket.js';
import { Chat } from './chat.js';
import { NewConversationDialog, DetailsDialog } from './dialogs.js';
import { DevPanel } from './devpanel.js';
import { MessageSearch } from './search.js';
import { Notifications } from './push.js';
import { ReportDialog, StaffView } from './moderate.js';
import { AccountDialog } from './account.js';

const USERNAME_RE = /^[A-Za-z0-9_.-]{3,32}$/;

const els = {
  auth: $('#auth-view'),
  app: $('#app-view'),
  notice: $('#auth-notice'),
  loginForm: $('#login-form'),
  loginUser: $('#login-username'),
  loginPass: $('#login-password'),
  loginSubmit: $('#login-submit'),
  loginError: $('#login-error'),
  regForm: $('#register-form'),
  regUser: $('#register-username'),
  regName: $('#register-display-name'),
  regPass: $('#register-password'),
  regSubmit: $('#register-submit'),
  regError: $('#register-error'),
  status: $('#connection-status'),
  statusLabel: $('#connection-label'),
  retry: $('#connection-retry'),
  meName: $('#me-name'),
  logout: $('#logout-button'),
  toasts: $('#toasts'),
};

// ------------------------------------------------------------------- toasts

function toast(text, kind = 'info') {
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×');
  const el = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: kind === 'error' ? 'alert' : 'status' },
    h('span', {}, text), close);
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  els.toasts.append(el);
  while (els.toasts.childElementCount > 4) els.toasts.firstElementChild.remove();
  setTimeout(remove, kind === 'error' ? 8000 : 5000);
}

// ------------------------------------------------------------------- wiring

const socket = new ChatSocket();
const chat = new Chat({ socket, toast });
const reportDialog = new ReportDialog({ toast });
chat.report = (target) => reportDialog.open(target);
const staff = new StaffView({ toast });
const newDialog = new NewConversationDialog(chat);
const details = new DetailsDialog(chat);
const devpanel = new DevPanel({ socket, chat, toast });
const search = new MessageSearch(chat);
const notifications = new Notifications(chat);
const account = new AccountDialog({
  // The deletion closes this session's socket with 4001: stop it first,
  // so that it does not try to sign in again meanwhile.
  beforeDelete: () => socket.stop('deleting the account'),
  afterRefused: () => socket.start(),
  onDeleted: () => leaveApp('Your account has been deleted.'),
});
$('#account-button').addEventListener('click', () => account.open());

$('#new-conversation-button').addEventListener('click', () => newDialog.open());
$('#notifications-button').addEventListener('click', () => notifications.open());
$('#details-button').addEventListener('click', () => {
  if (chat.activeId !== null) details.open(chat.activeId);
});
window.addEventListener('hashchange', () => chat.route());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') session.checkAfterSleep();
});

// --------------------------------------------------------- connection status

let countdown = 0;

function renderStatus() {
  const s = socket.status;
  els.status.dataset.status = s;
  clearInterval(countdown);
  let label;
  switch (s) {
    case 'live':
      label = 'Live';
      break;
    case 'connecting':
      label = socket.connectionCount ? 'Reconnecting…' : 'Connecting…';
      break;
    case 'reconnecting': {
      const secs = Math.max(0, Math.ceil((socket.retryAt - Date.now()) / 1000));
      label = secs > 0 ? `Reconnecting in ${secs} s` : 'Reconnecting…';
      countdown = setInterval(renderStatus, 500);
      break;
    }
    case 'stopped':
      label = 'Stopped';
      break;
    default:
      label = 'Offline';
  }
  if (els.statusLabel.textContent !== label) els.statusLabel.textContent = label;
  const lc = socket.lastClose;
  els.status.title = lc ? `Last disconnect: ${describeClose(lc.code)}${lc.reason ? ` (${lc.reason})` : ''}` : '';
  const showRetry = (s === 'reconnecting' || s === 'offline' || s === 'stopped') && session.signedIn;
  els.retry.hidden = !showRetry;
  els.retry.textContent = s === 'reconnecting' ? 'Retry now' : 'Connect';
}

socket.addEventListener('status', renderStatus);
socket.addEventListener('close', renderStatus);
els.retry.addEventListener('click', () => socket.reconnectNow());

socket.addEventListener('message', (ev) => {
  const f = ev.detail;
  if (f.type === 'connection_established' && f.user && session.user && f.user.id === session.user.id) {
    session.setUser({ ...session.user, ...f.user });
    renderMe();
  }
});

// ---------------------------------------------------------------- auth views

function showAuth(notice) {
  els.app.hidden = true;
  els.auth.hidden = false;
  document.title = 'Sign in · Confab';
  els.notice.textContent = notice || '';
  els.notice.hidden = !notice;
  showForm('login');
}

function showForm(which) {
  const login = which === 'login';
  els.loginForm.hidden = !login;
  els.regForm.hidden = login;
  clearErrors();
  (login ? els.loginUser : els.regUser).focus();
}

function clearErrors() {
  for (const el of [els.loginError, els.regError, ...els.regForm.querySelectorAll('.field-error')]) {
    el.textContent = '';
    el.hidden = true;
  }
  for (const input of document.querySelectorAll('#auth-view input')) input.removeAttribute('aria-invalid');
}

function fieldError(name, text) {
  const el = els.regForm.querySelector(`.field-error[data-field="${name}"]`);
  const input = els.regForm.querySelector(`[name="${name}"]`);
  if (input) input.setAttribute('aria-invalid', 'true');
  if (!el) return false;
  el.textContent = text;
  el.hidden = false;
  return true;
}

function formError(el, text) {
  el.textContent = text;
  el.hidden = false;
}

function errorText(err) {
  if (err.status === 429 && err.retryAfter) return `${err.detail} Try again in ${err.retryAfter} s.`;
  return err.detail || err.message;
}

$('#show-register').addEventListener('click', () => showForm('register'));
$('#show-login').addEventListener('click', () => showForm('login'));

els.loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors();
  const username = els.loginUser.value.trim();
  const password = els.loginPass.value;
  if (!username || !password) {
    formError(els.loginError, 'Enter your username and password.');
    return;
  }
  els.loginSubmit.disabled = true;
  try {
    const data = await login(username, password);
    els.loginPass.value = '';
    await enterApp(data.user);
  } catch (err) {
    formError(els.loginError, err.status === 401 ? 'Wrong username or password.' : errorText(err));
    els.loginPass.select();
  } finally {
    els.loginSubmit.disabled = false;
  }
});

els.regForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearErrors();
  const username = els.regUser.value.trim();
  const displayName = els.regName.value.trim();
  const password = els.regPass.value;
  let ok = true;
  if (!USERNAME_RE.test(username)) {
    fieldError('username', '3–32 characters: letters, digits, _ . or -');
    ok = false;
  }
  const n = [...password].length;
  if (n < 8 || n > 128) {
    fieldError('password', 'Use 8 to 128 characters.');
    ok = false;
  }
  if (!ok) return;
  els.regSubmit.disabled = true;
  try {
    const data = await register(username, password, displayName);
    els.regPass.value = '';
    await enterApp(data.user);
  } catch (err) {
    let shown = false;
    for (const [field, msgs] of Object.entries(err.fields || {})) {
      shown = fieldError(field, [].concat(msgs).join(' ')) || shown;
    }
    if (err.status === 409 && !shown) shown = fieldError('username', err.detail || 'That username is taken.');
    if (!shown || err.detail) formError(els.regError, errorText(err));
  } finally {
    els.regSubmit.disabled = false;
  }
});

// ------------------------------------------------------------------ the app

function renderMe() {
  const u = session.user;
  els.meName.textContent = u ? (u.display_name || u.username) : '';
  els.meName.title = u ? `@${u.username}` : '';
}

async function enterApp(user) {
  let me = user;
  if (!me) me = await request('GET', 'api/users/me/');
  session.setUser(me);
  staff.setUser(me);
  els.auth.hidden = true;
  els.app.hidden = false;
  document.title = 'Confab';
  renderMe();
  chat.start(me);
  socket.start();
  renderStatus();
  chat.route();
}

function leaveApp(notice) {
  socket.stop('signed out');
  chat.reset();
  search.reset();
  if (newDialog.dlg.open) newDialog.dlg.close();
  if (details.dlg.open) details.dlg.close();
  if (notifications.dlg.open) notifications.dlg.close();
  if (reportDialog.dlg.open) reportDialog.dlg.close();
  staff.setUser(null);
  if (account.dlg.open) account.dlg.close();
  devpanel.toggle(false);
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  showAuth(notice);
}

els.logout.addEventListener('click', async () => {
  els.logout.disabled = true;
  socket.stop('logout');
  await notifications.forget(); // the next person here gets none of this user's pushes
  await logout();
  els.logout.disabled = false;
  leaveApp('You have signed out.');
});

session.addEventListener('expired', (ev) => leaveApp(ev.detail || 'Please sign in again.'));

async function boot() {
  if (!session.signedIn) {
    showAuth();
    return;
  }
  try {
    await ensureFreshAccess();
    const me = await request('GET', 'api/users/me/');
    await enterApp(me);
  } catch (err) {
    if (!session.signedIn) return; // "expired" already showed the login
    if (session.user) {
      // The server is unreachable for now: show what we have; the socket
      // keeps retrying and the list reloads once it is back.
      await enterApp(session.user);
      toast(`Cannot reach the server: ${err.detail || err.message}`, 'error');
    } else {
      showAuth(`Cannot reach the server: ${err.detail || err.message}`);
    }
  }
}

boot();
