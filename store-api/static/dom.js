// Building the back office's DOM without HTML strings. Every value goes in as a text node or a
// property, never through a parser, so a widget named `<img src=x onerror=…>` is shown as
// those characters. The page's Trusted Types policy (`require-trusted-types-for 'script'`)
// makes the browser refuse any HTML string assigned to the DOM: this file is the only way in.

/** `h('td', {class: 'num'}, 'text', child)`: an element with attributes and children. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'value') {
      element.value = value;
    } else if (key === 'href') {
      // Links point inside the back office or this site: never a script URL.
      element.setAttribute('href', sameSiteHref(value));
    } else if (key === 'src') {
      const src = imageUrl(value);
      if (src !== null) element.setAttribute('src', src);
    } else if (key.toLowerCase().startsWith('on')) {
      throw new Error(`event handler attribute ${key}: use {on: {…}}`);
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends strings (as text), numbers, elements and nested arrays; skips null and false. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces the children of `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

function sameSiteHref(value) {
  const text = String(value);
  return text.startsWith('#') || (text.startsWith('/') && !text.startsWith('//')) ? text : '#';
}

/**
 * The same rule as the server's (`storefront::present::image_url`): an absolute http(s) address
 * with a host, or a path on this site; anything else (`javascript:`, `data:`, `//host`) is null.
 */
export function imageUrl(raw) {
  const url = String(raw ?? '').trim();
  if (url === '' || url.length > 2048 || /[\s\\\u0000-\u001f\u007f-\u009f]/.test(url)) return null;
  const absolute = /^https?:\/\/([^/?#]*)/i.exec(url);
  if (absolute) {
    const host = absolute[1].split('@').pop();
    return host === '' ? null : url;
  }
  return url.startsWith('/') && !url.startsWith('//') ? url : null;
}

/** Integer cents as `12.50`. */
export function money(cents) {
  const value = Number(cents);
  if (!Number.isSafeInteger(value)) return String(cents);
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** `12.5`, `12.50` or `12` as cents; null when it is not an amount. */
export function parseMoney(text) {
  const match = /^\s*(\d{1,13})(?:[.,](\d{1,2}))?\s*$/.exec(String(text));
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
}

/** An RFC 3339 time in the reader's own time zone and language. */
export function when(text) {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? String(text) : date.toLocaleString();
}

/** The values of a form's named fields, trimmed (passwords as typed). */
export function fields(form) {
  const values = {};
  for (const element of form.elements) {
    if (!element.name || element.disabled) continue;
    values[element.name] = element.type === 'password' ? element.value : element.value.trim();
  }
  return values;
}

/**
 * A button that asks to be pressed twice: the first press arms it (`Really delete?`), the second
 * runs `action`; it disarms by itself after a few seconds. No `confirm()` dialog.
 */
export function twoStepButton(label, armedLabel, action) {
  let timer = null;
  const button = h('button', {type: 'button', class: 'danger'}, label);
  button.addEventListener('click', async () => {
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = armedLabel;
      timer = setTimeout(() => {
        button.classList.remove('armed');
        button.textContent = label;
      }, 5000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      button.classList.remove('armed');
      button.textContent = label;
    }
  });
  return button;
}
