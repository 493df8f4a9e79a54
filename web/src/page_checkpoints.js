// #/jobs/:id/checkpoints: counts, the latest completed, failed and restored
// checkpoints and savepoint, the summary, the history (a row opens its
// details: per vertex, a vertex row expands to its subtasks) and the
// configuration.
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
  let vertexNames = {};
  let checkpointing = true;
  // The vertex whose subtasks are shown, per checkpoint id, so that the
  // details keep it open when shown again.
  const expanded = new Map();

  function vertexTable(c, tasks) {
    const rows = [];
    for (const [vid, t] of tasks) {
      const open = expanded.get(c.id) === vid;
      rows.push(h('tr', {
        class: `clickable checkpoint-vertex${open ? ' selected' : ''}`,
        dataset: { vertex: vid },
        onclick: () => (open ? collapse(c.id) : showSubtasks(c.id, vid)),
      },
      h('td', null, `${open ? '▾' : '▸'} `, vertexNames[vid] || h('span', { class: 'mono' }, vid)),
      h('td', null, badge(t.status)),
      h('td', { class: 'num' }, `${t.num_acknowledged_subtasks} / ${t.num_subtasks}`),
      h('td', null, format.time(t.latest_ack_timestamp)),
      h('td', { class: 'num' }, format.duration(t.end_to_end_duration)),
      h('td', { class: 'num' }, format.bytes(t.state_size)),
      h('td', { class: 'num' }, format.duration(t.alignment_duration)),
      h('td', { class: 'num' }, format.bytes(t.persisted_data))));
      if (open) rows.push(h('tr', { class: 'checkpoint-subtasks-row' }, h('td', { colspan: 8, id: `checkpoint-subtasks-${vid}` }, 'Loading…')));
    }
    const head = ['Vertex', 'Status', 'Acknowledged', 'Latest acknowledgement', 'End to end', 'State size', 'Longest alignment', 'In-flight data']
      .map((label, i) => h('th', { class: [2, 4, 5, 6, 7].includes(i) ? 'num' : null }, label));
    return h('table', { class: 'checkpoint-vertices' }, h('thead', null, h('tr', null, head)), h('tbody', null, rows));
  }

  function collapse(id) {
    expanded.delete(id);
    showDetails(id);
  }

  async function showSubtasks(id, vid) {
    if (expanded.get(id) !== vid) {
      // Re-render the details with this vertex open; they load its subtasks.
      expanded.set(id, vid);
      await showDetails(id);
      return;
    }
    try {
      const d = await get(`/jobs/${jobId}/checkpoints/details/${id}/subtasks/${vid}`);
      const cell = document.getElementById(`checkpoint-subtasks-${vid}`);
      if (!page.alive() || !cell) return;
      fill(cell, table(
        [{ label: 'Subtask', num: true }, { label: 'Status' }, { label: 'Acknowledged' },
          { label: 'End to end', num: true }, { label: 'State size', num: true }, { label: 'Start delay', num: true },
          { label: 'Alignment', num: true }, { label: 'Processed while aligning', num: true }, { label: 'Sync', num: true },
          { label: 'Async', num: true }, { label: 'In-flight data', num: true }, { label: 'Unaligned' }],
        d.subtasks.map((s) => (s.status === 'completed'
          ? [s.index, s.status, format.time(s.ack_timestamp), format.duration(s.end_to_end_duration),
            format.bytes(s.state_size), format.duration(s.start_delay), format.duration(s.alignment.duration),
            format.bytes(s.alignment.processed), format.duration(s.checkpoint.sync),
            format.duration(s.checkpoint.async), format.bytes(s.alignment.persisted), s.unaligned_checkpoint ? 'yes' : 'no']
          : [s.index, s.status, '–', '–', '–', '–', '–', '–', '–', '–', '–', '–'])),
        { className: 'checkpoint-subtasks' }));
    } catch (e) {
      const cell = document.getElementById(`checkpoint-subtasks-${vid}`);
      if (page.alive() && cell) fill(cell, h('div', { class: 'error' }, e.message));
    }
  }

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
        ['Longest alignment', format.duration(c.alignment_duration)],
        ['Processed while aligning', format.bytes(c.processed_data)],
        ['In-flight data persisted', format.bytes(c.persisted_data)],
        ['Subtasks acknowledged', `${c.num_acknowledged_subtasks} / ${c.num_subtasks}`],
      ];
      if (c.external_path) pairs.push(['Path', h('span', { class: 'mono' }, c.external_path, c.discarded ? ' (discarded)' : '')]);
      if (c.failure_message) pairs.push(['Failure', h('span', { class: 'mono' }, c.failure_message)]);
      const tasks = Object.entries(c.tasks || {});
      fill(detailsBox, h('h2', null, `Checkpoint #${c.id}`), keyValues(pairs),
        h('h2', null, 'Vertices'), vertexTable(c, tasks));
      if (expanded.has(c.id)) await showSubtasks(c.id, expanded.get(c.id));
    } catch (e) {
      if (page.alive()) fill(detailsBox, h('div', { class: 'error' }, e.message));
    }
  }

  page.poll(async () => {
    try {
      if (Object.keys(vertexNames).length === 0) {
        const job = await get(`/jobs/${jobId}`);
        vertexNames = Object.fromEntries(job.vertices.map((v) => [v.id, v.name]));
        checkpointing = job.freshet?.checkpointing !== false;
      }
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
          summaryRow('Longest alignment', s.alignment_duration, format.duration),
          summaryRow('Processed while aligning', s.processed_data, format.bytes),
          summaryRow('In-flight data persisted', s.persisted_data, format.bytes)]));
      const history = stats.history;
      fill(historyBox, table(
        [{ label: 'ID', num: true }, { label: 'Status' }, { label: 'Type' }, { label: 'Triggered' },
          { label: 'Duration', num: true }, { label: 'Size', num: true }, { label: 'Alignment', num: true },
          { label: 'Acknowledged', num: true }, { label: 'Failure' }],
        history.map((c) => [c.id, badge(c.status), c.checkpoint_type, format.time(c.trigger_timestamp),
          format.duration(c.end_to_end_duration), format.bytes(c.checkpointed_size), format.duration(c.alignment_duration),
          `${c.num_acknowledged_subtasks} / ${c.num_subtasks}`, c.failure_message || '']),
        {
          empty: 'No checkpoints yet.',
          onRow: (i) => showDetails(history[i].id),
          selected: history.findIndex((c) => c.id === selected),
          className: 'checkpoints',
        }));
      if (!configLoaded && !checkpointing) {
        // Its configuration would be a 404: savepoints only.
        configLoaded = true;
        fill(configBox, h('div', { class: 'muted', id: 'checkpointing-off' }, 'Periodic checkpointing is not enabled for this job.'));
      }
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
