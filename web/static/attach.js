// attach.js — attachments. The composer's uploads (POST /api/uploads/ with
// XMLHttpRequest, whose upload.onprogress fetch does not have), the files
// a message carries (thumbnails that open a viewer, and download chips),
// and that full-size viewer.
//
// No local previews: the page's Content-Security-Policy allows images from
// 'self' and data: only, so a blob: URL of a picked file would not show.
// A pending upload shows its name and size; the picture appears once the
// message is sent and carries the server's thumbnail URL.

import { h, setChildren } from './dom.js';
import { ApiError, apiUrl, session, ensureFreshAccess, refreshTokens } from './api.js';

/** MAX_ATTACHMENTS is how many files one message may carry (the server's limit). */
export const MAX_ATTACHMENTS = 10;
// THUMB_BOX is the largest a thumbnail is drawn in a bubble, in CSS pixels
// (the server makes them within 320×320).
const THUMB_BOX = 240;

/** humanSize says a byte count the way people read it: "512 B", "12.3 KB", "4.0 MB". */
export function humanSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/** fitWithin scales w×h down (never up) to fit a box×box square. */
export function fitWithin(w, h, box) {
  if (!(w > 0 && h > 0)) return { width: box, height: box };
  const s = Math.min(1, box / w, box / h);
  return { width: Math.max(1, Math.round(w * s)), height: Math.max(1, Math.round(h * s)) };
}

/** isPicture tells an attachment the console shows as a picture: one with a thumbnail. */
export function isPicture(a) {
  return Boolean(a && a.thumbnail_url);
}

/**
 * uploadFile sends one file as the multipart field "file". It returns
 * {promise, abort}: the promise resolves to the upload's JSON, or rejects
 * with an ApiError carrying the server's detail. onProgress gets the
 * fraction sent (0…1). Like api.js's request, a 401 refreshes the access
 * token once and tries again.
 */
export function uploadFile(file, onProgress) {
  let xhr = null;
  let aborted = false;
  const once = (token) => new Promise((resolve, reject) => {
    xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl('api/uploads/'));
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.addEventListener('progress', (ev) => {
      if (ev.lengthComputable && ev.total > 0) onProgress(ev.loaded / ev.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && data && typeof data.id === 'number') resolve(data);
      else {
        const ra = Number(xhr.getResponseHeader('Retry-After'));
        reject(new ApiError(xhr.status || 500, data, Number.isFinite(ra) && ra > 0 ? ra : undefined));
      }
    });
    // A server that refuses a large body may close the connection before
    // the browser has sent it all: that shows as a network error.
    xhr.addEventListener('error', () => reject(new ApiError(0, {
      detail: 'The upload was cut off: the connection failed, or the file is larger than the server accepts.',
      code: 'network_error',
    })));
    xhr.addEventListener('abort', () => reject(new ApiError(0, { detail: 'Cancelled.', code: 'cancelled' })));
    const form = new FormData();
    form.append('file', file, file.name || 'file');
    xhr.send(form);
  });
  const promise = (async () => {
    const used = await ensureFreshAccess();
    if (aborted) throw new ApiError(0, { detail: 'Cancelled.', code: 'cancelled' });
    try {
      return await once(used);
    } catch (err) {
      if (err.status !== 401 || aborted) throw err;
      if (session.access === used) await refreshTokens();
      onProgress(0);
      return once(session.access);
    }
  })();
  return {
    promise,
    abort() {
      aborted = true;
      if (xhr) xhr.abort();
    },
  };
}

/**
 * filesOf returns the files of a DataTransfer (a drop or a paste), or []
 * when it holds none. A paste that also has plain text (a copied range of
 * a spreadsheet also comes as a picture) stays a text paste.
 */
export function filesOf(dt, { textWins = false } = {}) {
  if (!dt) return [];
  const files = [...(dt.files || [])];
  if (!files.length && dt.items) {
    for (const it of dt.items) {
      if (it.kind === 'file') {
        const f = it.getAsFile();
        if (f) files.push(f);
      }
    }
  }
  if (textWins && files.length && [...(dt.types || [])].includes('text/plain')) return [];
  return files;
}

/** hasFiles tells whether a drag carries files (its types are all a dragover can see). */
export function hasFiles(dt) {
  return Boolean(dt && [...(dt.types || [])].includes('Files'));
}

/**
 * attachmentsEl shows a message's attachments: pictures as thumbnails
 * (their space kept from width and height before they load) that open
 * onOpen(attachment), other files as chips that download. Returns null
 * for none.
 */
export function attachmentsEl(list, onOpen) {
  if (!Array.isArray(list) || !list.length) return null;
  const pictures = list.filter(isPicture);
  const files = list.filter((a) => !isPicture(a));
  return h('div', { class: 'msg-attachments', testid: 'message-attachments' },
    pictures.length ? h('div', { class: 'msg-pictures' }, pictures.map((a) => {
      const size = fitWithin(a.width, a.height, THUMB_BOX);
      return h('button', {
        type: 'button',
        class: 'msg-picture',
        testid: 'attachment-image',
        dataset: { attachmentId: String(a.id) },
        title: `${a.name} (${humanSize(a.size)})`,
        'aria-label': `Open the picture ${a.name}`,
        on: { click: () => onOpen(a) },
      }, h('img', {
        src: apiUrl(a.thumbnail_url),
        alt: a.name,
        width: size.width,
        height: size.height,
        loading: 'lazy',
        decoding: 'async',
        testid: 'attachment-thumbnail',
      }));
    })) : null,
    files.map((a) => fileChip(a)));
}

/** fileChip is a download link showing a file's name and size. */
function fileChip(a) {
  return h('a', {
    class: 'file-chip',
    testid: 'attachment-file',
    dataset: { attachmentId: String(a.id), mime: a.mime || '' },
    href: apiUrl(a.url),
    download: a.name || '',
    title: `Download ${a.name}`,
  },
  fileBadge(a.name, a.mime),
  h('span', { class: 'file-name', testid: 'attachment-name' }, a.name || 'file'),
  h('span', { class: 'file-size', testid: 'attachment-size' }, humanSize(a.size)));
}

/**
 * pendingFilesEl shows the files of a message still being sent: names and
 * sizes only (the server's URLs come with the acknowledged message).
 */
export function pendingFilesEl(list) {
  if (!Array.isArray(list) || !list.length) return null;
  return h('div', { class: 'msg-attachments', testid: 'message-attachments' }, list.map((a) =>
    h('span', { class: 'file-chip pending', testid: 'attachment-pending' },
      fileBadge(a.name, a.mime),
      h('span', { class: 'file-name' }, a.name),
      h('span', { class: 'file-size' }, humanSize(a.size)))));
}

/** fileBadge is a small label with a file's extension ("PDF", "TXT"), drawn in CSS: no icon font or emoji needed. */
export function fileBadge(name, mime) {
  const m = /\.([A-Za-z0-9]{1,4})$/.exec(name || '');
  const ext = m ? m[1].toUpperCase() : /^image\//.test(mime || '') ? 'IMG' : 'FILE';
  return h('span', { class: 'file-ext', 'aria-hidden': 'true' }, ext);
}

/**
 * Lightbox is the full-size picture viewer: a modal <dialog> (Escape
 * closes it, as any modal dialog) with the picture, its name, a download
 * link and a close button.
 */
export class Lightbox {
  constructor(dialog) {
    this.dialog = dialog;
    this.img = h('img', { class: 'lightbox-img', testid: 'lightbox-image', alt: '' });
    this.caption = h('span', { class: 'lightbox-name', testid: 'lightbox-name' });
    this.download = h('a', { class: 'btn btn-small', testid: 'lightbox-download' }, 'Download');
    const close = h('button', { type: 'button', class: 'btn btn-small', testid: 'lightbox-close', 'aria-label': 'Close', on: { click: () => this.close() } }, '×');
    setChildren(dialog,
      h('div', { class: 'lightbox-bar' }, this.caption, this.download, close),
      h('div', { class: 'lightbox-body' }, this.img));
    // A click on the dark area around the picture closes it too.
    dialog.addEventListener('click', (ev) => {
      if (ev.target === dialog || ev.target.classList.contains('lightbox-body')) this.close();
    });
    dialog.addEventListener('close', () => {
      // The event comes a task after close(): a picture opened meanwhile stays.
      if (dialog.open) return;
      this.img.removeAttribute('src');
      if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
      this.returnFocus = null;
    });
  }

  /** open shows attachment a at full size. */
  open(a) {
    this.returnFocus = document.activeElement;
    this.img.alt = a.name || '';
    // width and height keep the picture's shape while it loads; CSS
    // scales it down to the window.
    if (a.width > 0 && a.height > 0) {
      this.img.width = a.width;
      this.img.height = a.height;
    } else {
      this.img.removeAttribute('width');
      this.img.removeAttribute('height');
    }
    this.img.src = apiUrl(a.url);
    this.caption.textContent = `${a.name} · ${humanSize(a.size)}`;
    this.download.href = apiUrl(a.url);
    this.download.download = a.name || '';
    this.dialog.dataset.attachmentId = String(a.id);
    if (!this.dialog.open) this.dialog.showModal();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}
