// Building the DOM without innerHTML: job names, exceptions and log lines
// come from users and are always inserted as text.

/** h('td', {class: 'num'}, 'text', childNode, ...): an element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) {
      append(el, child);
    } else {
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table: columns [{label, num}], rows of cells; options.onRow(rowIndex) makes rows clickable. */
export function table(columns, rows, options = {}) {
  const head = h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.label)));
  const body = rows.map((cells, i) => h('tr', {
    class: options.onRow ? `clickable${options.selected === i ? ' selected' : ''}` : null,
    onclick: options.onRow ? () => options.onRow(i) : null,
    dataset: options.rowData ? options.rowData(i) : null,
  }, cells.map((cell, c) => h('td', { class: columns[c].num ? 'num' : null }, cell))));
  if (rows.length === 0) {
    body.push(h('tr', null, h('td', { colspan: columns.length, class: 'muted' }, options.empty || 'None')));
  }
  return h('table', { class: options.className || null }, h('thead', null, head), h('tbody', null, body));
}

/** A two-column key/value table. */
export function keyValues(pairs) {
  return h('table', { class: 'kv' }, h('tbody', null,
    pairs.map(([k, v]) => h('tr', null, h('td', null, k), h('td', null, v)))));
}

export function badge(text) {
  return h('span', { class: `badge ${text}` }, text);
}

export function card(label, value, id) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
}

/** Shows an error (an ApiError's messages) in `box`, or hides it when `error` is null. */
export function showError(box, error) {
  if (!error) {
    box.classList.add('hidden');
    box.textContent = '';
    return;
  }
  box.classList.remove('hidden');
  box.textContent = error.message || String(error);
}
