// A process's log files: the list from <base>/logs, the chosen one from
// <base>/logs/<name> shown as text (refreshed with the page's poll).
import { get } from './api.js';
import { h, fill, table } from './dom.js';
import * as format from './format.js';

export function logViewer(base, page) {
  const list = h('div', null);
  const text = h('pre', { class: 'log hidden', id: 'log-text' });
  const box = h('div', { class: 'logs' }, list, text);
  let chosen = null;

  async function show(name) {
    chosen = name;
    try {
      const content = await get(`${base}/logs/${encodeURIComponent(name)}`);
      if (!page.alive() || chosen !== name) return;
      text.classList.remove('hidden');
      const atEnd = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      text.textContent = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
      if (atEnd) text.scrollTop = text.scrollHeight;
    } catch (e) {
      text.classList.remove('hidden');
      text.textContent = e.message;
    }
  }

  async function refresh() {
    const answer = await get(`${base}/logs`);
    if (!page.alive()) return;
    const logs = answer.logs || [];
    fill(list, table([{ label: 'File' }, { label: 'Size', num: true }, { label: 'Modified' }],
      logs.map((l) => [h('button', { type: 'button', class: 'linklike log-link', onclick: () => show(l.name) }, l.name),
        format.bytes(l.size), format.time(l.mtime)]), { empty: 'No log files.' }));
    if (chosen === null && logs.length > 0) chosen = logs[0].name;
    if (chosen !== null) await show(chosen);
  }

  return { box, refresh };
}
