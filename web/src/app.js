// Freshet's web UI: a hash router over a few pages, each built only on the
// REST API. A page polls while it is shown (and the tab is visible); leaving
// it stops its timers and frees its charts and graph.
import { get } from './api.js';
import { h, fill } from './dom.js';
import { renderOverview } from './page_overview.js';
import { renderJob } from './page_job.js';
import { renderCheckpoints } from './page_checkpoints.js';
import { renderTaskManagers, renderTaskManager } from './page_taskmanagers.js';
import { renderJobManager } from './page_jobmanager.js';
import { renderSubmit } from './page_submit.js';

/** Poll period of every page, in ms. */
export const POLL_MS = 1500;

const ROUTES = [
  [/^\/overview$/, 'overview', renderOverview],
  [/^\/jobs\/([0-9a-f]{32})$/, 'overview', renderJob],
  [/^\/jobs\/([0-9a-f]{32})\/checkpoints$/, 'overview', renderCheckpoints],
  [/^\/taskmanagers$/, 'taskmanagers', renderTaskManagers],
  [/^\/taskmanagers\/([^/]+)$/, 'taskmanagers', renderTaskManager],
  [/^\/jobmanager$/, 'jobmanager', renderJobManager],
  [/^\/submit$/, 'submit', renderSubmit],
];

/**
 * What a page gets besides its container: poll(fn) runs fn now and every
 * POLL_MS after the previous run ended; alive() turns false once the user
 * left; onLeave(fn) registers clean-up.
 */
class PageContext {
  constructor() {
    this.live = true;
    this.timers = new Set();
    this.leaveHooks = [];
  }

  alive() {
    return this.live;
  }

  onLeave(fn) {
    this.leaveHooks.push(fn);
  }

  poll(fn, ms = POLL_MS) {
    const run = async () => {
      if (!this.live) return;
      if (!document.hidden) {
        try {
          await fn();
        } catch (e) {
          // fn shows its own errors; one failed poll must not stop the next.
        }
      }
      if (this.live) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          run();
        }, ms);
        this.timers.add(timer);
      }
    };
    run();
  }

  leave() {
    this.live = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const fn of this.leaveHooks) fn();
  }
}

let current = null;

function route() {
  const path = (location.hash || '#/overview').slice(1).split('?')[0];
  if (current) current.leave();
  current = new PageContext();
  const view = document.getElementById('view');
  view.replaceChildren();
  for (const [pattern, nav, render] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.nav === nav);
    view.dataset.page = render.name;
    render(view, match.slice(1).map(decodeURIComponent), current);
    return;
  }
  if (path === '/' || path === '') {
    location.hash = '#/overview';
    return;
  }
  view.dataset.page = 'notFound';
  fill(view, h('h1', null, 'Not found'),
    h('div', { class: 'error' }, `There is no page '${path}'.`),
    h('a', { href: '#/overview' }, 'Back to the overview'));
}

async function showVersion() {
  try {
    const config = await get('/config');
    document.getElementById('version').textContent = config['flink-version'] || '';
  } catch (e) {
    document.getElementById('version').textContent = 'JobManager unreachable';
  }
}

window.addEventListener('hashchange', route);
showVersion();
route();
