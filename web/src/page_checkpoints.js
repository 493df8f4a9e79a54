// #/jobs/:id/checkpoints: counts, the latest completed, failed and restored
// checkpoints and savepoint, the summary, the history (a row opens its
// details) and the configuration.
import { get } from './api.js';
import { h, fill, table, keyValues, badge, card, showError } from './dom.js';
import * as format from './format.js';

function summaryRow(label, s, show) {
  return [label, show(s.min), show(s.avg), show(s.p50), show(s.p99), show(s.max)];
}

function latest(label, c, extra) {
  if (!c) return [label, h('span', { class: 'muted' }, 'none')];
  return [label, h('span', null, `#${c.id} at ${format.time(c.trigger_timestamp || c.restore_timestamp)}`,
    c.end_to_end_duration >= 0 ? `, ${format.duration(c.end_to_end_duration)}` : '',
    c.state_size >= 0 && c.state_size !== undefined ? `, ${format.bytes(c.state_size)}` : '',
    extra ? extra(c) : '')];
}

export function renderCheckpoints(view, [jobId], page) {
  const errors = h('div', { class: 'error hidden' });
  const title = h('h1', null, h('a', { href: `#/jobs/${jobId}` }, 'Job'), ' › Checkpoints');
  const cards = h('div', { class: 'cards' });
  const latestBox = h('div', { class: 'panel' });
  const summaryBox = h('div', null);
  const historyBox = h('div', { id: 'checkpoint-history' });
  const detailsBox = h('div', { id: 'checkpoint-details' });
  const configBox = h('div', null);
  fill(view, title, errors, cards, h('h2', null, 'Latest'), latestBox, h('h2', null, 'Summary (completed checkpoints)'),
    summaryBox, h('h2', null, 'History'), historyBox, detailsBox, h('h2', null, 'Configuration'), configBox);

  let selected = null;
  let configLoaded = false;

  async function showDetails(id) {
    selected = id;
    try {
      const c = await get(`/jobs/${jobId}/checkpoints/details/${id}`);
      if (!page.alive()) return;
      const pairs = [
        ['Status', badge(c.status)], ['Type', c.checkpoint_type],
        ['Triggered', format.time(c.trigger_timestamp)], ['Latest acknowledgement', format.time(c.latest_ack_timestamp)],
        ['End to end duration', format.duration(c.end_to_end_duration)],
        ['Checkpointed size', format.bytes(c.checkpointed_size)], ['Full state size', format.bytes(c.state_size)],
        ['In-flight data persisted', format.bytes(c.persisted_data)], ['Alignment buffered', format.bytes(c.alignment_buffered)],
        ['Subtasks acknowledged', `${c.num_acknowledged_subtasks} / ${c.num_subtasks}`],
      ];
      if (c.external_path) pairs.push(['Path', h('span', { class: 'mono' }, c.external_path, c.discarded ? ' (discarded)' : '')]);
      if (c.failure_message) pairs.push(['Failure', h('span', { class: 'mono' }, c.failure_message)]);
      const tasks = Object.entries(c.tasks || {});
      fill(detailsBox, h('h2', null, `Checkpoint #${c.id}`), keyValues(pairs),
        tasks.length === 0
          ? h('p', { class: 'muted' }, 'Per-vertex and per-subtask figures are not kept by Freshet; the totals above cover every subtask.')
          : table([{ label: 'Vertex' }, { label: 'Acknowledged', num: true }, { label: 'Size', num: true }],
            tasks.map(([vid, t]) => [vid, `${t.num_acknowledged_subtasks} / ${t.num_subtasks}`, format.bytes(t.state_size)])));
    } catch (e) {
      if (page.alive()) fill(detailsBox, h('div', { class: 'error' }, e.message));
    }
  }

  page.poll(async () => {
    try {
      const stats = await get(`/jobs/${jobId}/checkpoints`);
      if (!page.alive()) return;
      const n = stats.counts;
      fill(cards, card('Triggered', n.total, 'cp-total'), card('In progress', n.in_progress, 'cp-in-progress'),
        card('Completed', n.completed, 'cp-completed'), card('Failed', n.failed, 'cp-failed'),
        card('Restored', n.restored, 'cp-restored'));
      const l = stats.latest;
      fill(latestBox, keyValues([
        latest('Completed checkpoint', l.completed, (c) => h('div', { class: 'mono' }, c.external_path)),
        latest('Savepoint', l.savepoint, (c) => h('div', { class: 'mono' }, c.external_path)),
        latest('Failed checkpoint', l.failed, (c) => h('div', { class: 'mono' }, c.failure_message)),
        latest('Restored', l.restored, (c) => h('div', { class: 'mono' }, c.external_path)),
      ]));
      const s = stats.summary;
      fill(summaryBox, table(
        [{ label: '' }, { label: 'Min', num: true }, { label: 'Average', num: true }, { label: 'Median', num: true },
          { label: 'p99', num: true }, { label: 'Max', num: true }],
        [summaryRow('End to end duration', s.end_to_end_duration, format.duration),
          summaryRow('Checkpointed size', s.checkpointed_size, format.bytes),
          summaryRow('In-flight data persisted', s.persisted_data, format.bytes),
          summaryRow('Alignment buffered', s.alignment_buffered, format.bytes)]));
      const history = stats.history;
      fill(historyBox, table(
        [{ label: 'ID', num: true }, { label: 'Status' }, { label: 'Type' }, { label: 'Triggered' },
          { label: 'Duration', num: true }, { label: 'Size', num: true }, { label: 'Alignment', num: true },
          { label: 'Acknowledged', num: true }, { label: 'Failure' }],
        history.map((c) => [c.id, badge(c.status), c.checkpoint_type, format.time(c.trigger_timestamp),
          format.duration(c.end_to_end_duration), format.bytes(c.checkpointed_size), format.bytes(c.alignment_buffered),
          `${c.num_acknowledged_subtasks} / ${c.num_subtasks}`, c.failure_message || '']),
        {
          empty: 'No checkpoints yet.',
          onRow: (i) => showDetails(history[i].id),
          selected: history.findIndex((c) => c.id === selected),
          className: 'checkpoints',
        }));
      if (!configLoaded) {
        configLoaded = true;
        try {
          const c = await get(`/jobs/${jobId}/checkpoints/config`);
          fill(configBox, keyValues(Object.entries(c).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
        } catch (e) {
          fill(configBox, h('div', { class: 'muted' }, e.message));
        }
      }
      showError(errors, null);
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  });
}
