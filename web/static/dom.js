// dom.js — tiny DOM helpers. Everything here builds nodes with
// createElement / textContent; nothing ever parses HTML, so user content can
// never become markup.

/**
 * h builds an element. props keys:
 *   class, id, testid (→ data-testid), text (→ textContent), dataset {…},
 *   on {event: handler}, any "aria-*" / "data-*" / "role" / "for" attribute,
 *   and plain element properties (type, value, disabled, hidden, href, …).
 * children: strings (become text nodes), nodes, arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false && !(key in PROPS_FALSE_OK)) continue;
    switch (key) {
      case 'class': el.className = value; break;
      case 'testid': el.dataset.testid = value; break;
      case 'text': el.textContent = String(value); break;
      case 'dataset': Object.assign(el.dataset, value); break;
      case 'on':
        for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
        break;
      case 'innerHTML':
      case 'outerHTML':
        throw new Error('h(): HTML strings are not allowed');
      default:
        if (key.startsWith('aria-') || key.startsWith('data-') || key === 'role' || key === 'for' || key === 'list') {
          el.setAttribute(key, String(value));
        } else {
          el[key] = value;
        }
    }
  }
  append(el, children);
  return el;
}

// Properties where an explicit false must be applied rather than skipped.
const PROPS_FALSE_OK = { disabled: 1, hidden: 1, checked: 1, required: 1 };

/** append adds children (strings as text nodes) to el. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** replaceChildren empties el and appends children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** $ finds one element by selector (document-wide unless root is given). */
export function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

/**
 * reconcile keeps container's children in the order of items, reusing the
 * element cached under each item's key, so that focus, open editors and
 * scroll position survive updates. cache is a Map(key → element) that the
 * caller keeps between calls; the container must hold only these elements.
 */
export function reconcile(container, items, keyOf, create, update, cache) {
  const seen = new Set();
  let ref = container.firstChild;
  for (const item of items) {
    const key = keyOf(item);
    seen.add(key);
    let el = cache.get(key);
    if (!el) {
      el = create(item);
      cache.set(key, el);
    }
    update(el, item);
    if (el === ref) ref = ref.nextSibling;
    else container.insertBefore(el, ref);
  }
  for (const [key, el] of cache) {
    if (!seen.has(key)) {
      el.remove();
      cache.delete(key);
    }
  }
}

/** displayName is what the console calls a user. */
export function displayName(user) {
  if (!user) return 'Someone';
  return (user.display_name && user.display_name.trim()) || user.username || `user ${user.id}`;
}

/** initials for an avatar. */
export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const first = [...(parts[0] || '?')][0] || '?';
  const second = parts.length > 1 ? [...parts[parts.length - 1]][0] : '';
  return (first + (second || '')).toUpperCase();
}

/** codePoints counts characters the way the server does (Unicode code points). */
export function codePoints(s) {
  let n = 0;
  for (const _ of String(s)) n++;
  return n;
}

/** uuid returns a v4 UUID, also on plain-http hosts where crypto.randomUUID is missing. */
export function uuid() {
  if (typeof crypto.randomUUID === 'function' && window.isSecureContext) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** shortTime: "14:03" today, "Tue" this week, "27 Nov" otherwise. */
export function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  if (now - d < 6 * 86400e3 && now > d) return weekdayFmt.format(d);
  return dateFmt.format(d);
}

/** messageTime: the clock time, with the day when it was not today. */
export function messageTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  return `${dateFmt.format(d)}, ${timeFmt.format(d)}`;
}

/** fullTime for tooltips. */
export function fullTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : fullFmt.format(d);
}

/** clockWithMillis: "15:03:21.123", for the frame log. */
export function clockWithMillis(date = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`;
}

/**
 * copyText puts text on the clipboard; on plain-http hosts (no Clipboard
 * API) it falls back to a hidden textarea. Resolves to true on success.
 */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the legacy path
    }
  }
  const ta = h('textarea', { class: 'offscreen', value: text, readOnly: true, 'aria-hidden': 'true' });
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** decodeEntities turns HTML character references back into characters. */
export function decodeEntities(s) {
  return String(s).replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (all, e) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : all;
    }
    return ENTITIES[e] ?? all;
  });
}

/**
 * snippetNodes renders a search snippet: HTML-escaped text whose matched
 * words the server wraps in <b>…</b>. The nodes are built here (text nodes
 * and <b> elements) instead of parsing the snippet as HTML, so that any
 * other tag in it would show as its characters, never as markup.
 */
export function snippetNodes(snippet) {
  const out = [];
  let bold = false;
  for (const part of String(snippet || '').split(/(<\/?b>)/)) {
    if (part === '<b>') bold = true;
    else if (part === '</b>') bold = false;
    else if (part) {
      const text = decodeEntities(part);
      out.push(bold ? h('b', {}, text) : text);
    }
  }
  return out;
}
