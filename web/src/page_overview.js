// #/overview: the cluster (TaskManagers, slots, jobs by state, version,
// JobManager uptime) and
// every job, running ones first.
import { get } from './api.js';
import { h, fill, table, badge, card, showError } from './dom.js';
import * as format from './format.js';

export function jobsTable(jobs) {
  const order = (j) => (j.state === 'RUNNING' ? 0 : j['end-time'] > 0 ? 2 : 1);
  const sorted = [...jobs].sort((a, b) => order(a) - order(b) || b['start-time'] - a['start-time']);
  return table(
    [{ label: 'Job' }, { label: 'Status' }, { label: 'Start' }, { label: 'Duration', num: true },
      { label: 'Tasks', num: true }, { label: 'Job ID' }],
    sorted.map((j) => [
      h('a', { href: `#/jobs/${j.jid}` }, j.name),
      badge(j.state),
      format.time(j['start-time']),
      format.duration(j.duration),
      `${j.tasks.running} / ${j.tasks.total}`,
      h('span', { class: 'mono' }, j.jid),
    ]),
    { empty: 'No jobs yet: submit one on the Submit job page.', className: 'jobs' });
}

// The server's own count (jobmanager-uptime) rather than the browser's clock,
// which may differ from the JobManager's.
function uptimeCard(overview) {
  const c = card('JobManager uptime', format.duration(overview['jobmanager-uptime']), 'uptime-card');
  if (overview['jobmanager-start-time'] > 0) c.title = `started ${format.time(overview['jobmanager-start-time'])}`;
  return c;
}

export function renderOverview(view, params, page) {
  const errors = h('div', { class: 'error hidden' });
  const cards = h('div', { class: 'cards' });
  const jobs = h('div', null);
  fill(view, h('h1', null, 'Cluster overview'), errors, cards, h('h2', null, 'Jobs'), jobs);

  page.poll(async () => {
    try {
      const [overview, list] = await Promise.all([get('/overview'), get('/jobs/overview')]);
      if (!page.alive()) return;
      showError(errors, null);
      fill(cards,
        card('TaskManagers', overview.taskmanagers, 'tm-count'),
        card('Slots total', overview['slots-total'], 'slots-total'),
        card('Slots free', overview['slots-available'], 'slots-free'),
        card('Running jobs', overview['jobs-running'], 'jobs-running'),
        card('Finished jobs', overview['jobs-finished'], 'jobs-finished'),
        card('Canceled jobs', overview['jobs-cancelled'], 'jobs-cancelled'),
        card('Failed jobs', overview['jobs-failed'], 'jobs-failed'),
        card('Version', overview['flink-version'], 'version-card'),
        uptimeCard(overview));
      fill(jobs, jobsTable(list.jobs));
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  });
}
