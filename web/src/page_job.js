// #/jobs/:id: status and duration, the job graph, per-vertex records in and
// out with their rates, back-pressure, busy time and watermarks, the
// subtasks of the selected vertex, exceptions with their history, the
// job's configuration, and the actions (cancel, savepoint, stop).
import { get, call, metrics, waitForOperation } from './api.js';
import { h, fill, table, keyValues, badge, card, showError } from './dom.js';
import { LiveChart, Rates } from './charts.js';
import { drawGraph } from './graph.js';
import * as format from './format.js';

const ENDED = new Set(['FINISHED', 'CANCELED', 'FAILED', 'SUSPENDED']);

/** Sums and maxima over a vertex's subtasks from GET .../metrics?get=<i>.<name>. */
async function vertexFigures(jobId, vertex) {
  const names = [];
  for (let i = 0; i < vertex.parallelism; i += 1) names.push(`${i}.numRecordsIn`, `${i}.numRecordsOut`);
  const values = await metrics(`/jobs/${jobId}/vertices/${vertex.id}/metrics`, names);
  const perSubtask = [];
  let recordsIn = 0;
  let recordsOut = 0;
  let seen = 0;
  for (let i = 0; i < vertex.parallelism; i += 1) {
    const rin = values[`${i}.numRecordsIn`];
    const rout = values[`${i}.numRecordsOut`];
    perSubtask.push({ in: rin, out: rout });
    if (rin !== undefined || rout !== undefined) seen += 1;
    recordsIn += rin || 0;
    recordsOut += rout || 0;
  }
  if (seen === 0) {
    // Ended subtasks drop their metrics; the job's details keep the totals.
    recordsIn = vertex.metrics['read-records'];
    recordsOut = vertex.metrics['write-records'];
  }
  const [pressure, marks] = await Promise.all([
    get(`/jobs/${jobId}/vertices/${vertex.id}/backpressure`),
    get(`/jobs/${jobId}/vertices/${vertex.id}/watermarks`),
  ]);
  let busy = null;
  for (const s of pressure.subtasks) busy = Math.max(busy ?? 0, s.busyRatio);
  const watermarks = {};
  let low = null;
  for (const m of marks) {
    const value = Number(m.value);
    watermarks[Number(m.id.split('.')[0])] = value;
    low = low === null ? value : Math.min(low, value);
  }
  return { recordsIn, recordsOut, perSubtask, pressure, busy, watermarks, low };
}

export function renderJob(view, [jobId], page) {
  const errors = h('div', { class: 'error hidden', id: 'job-error' });
  const title = h('h1', null, 'Job');
  const cards = h('div', { class: 'cards' });

  // Actions.
  const status = h('div', { class: 'notice hidden', id: 'action-status' });
  const targetDir = h('input', { type: 'text', id: 'savepoint-dir', placeholder: 'target directory (default: state.savepoints.dir)' });
  const drain = h('input', { type: 'checkbox', id: 'stop-drain' });
  const cancelButton = h('button', { class: 'action danger', id: 'cancel-job' }, 'Cancel job');
  const savepointButton = h('button', { class: 'action', id: 'trigger-savepoint' }, 'Trigger savepoint');
  const stopButton = h('button', { class: 'action secondary', id: 'stop-job' }, 'Stop with savepoint');
  const actionButtons = [cancelButton, savepointButton, stopButton];
  const actions = h('div', { class: 'panel' },
    h('div', { class: 'actions' }, cancelButton, savepointButton, stopButton,
      h('label', null, drain, ' drain (stop: end sources first)')),
    h('div', { style: 'margin-top:8px;max-width:560px' }, targetDir));

  // Tabs.
  const panes = {
    overview: h('div', { id: 'tab-overview' }),
    exceptions: h('div', { id: 'tab-exceptions', class: 'hidden' }),
    configuration: h('div', { id: 'tab-configuration', class: 'hidden' }),
  };
  const tabButtons = Object.keys(panes).map((name) => h('button', {
    id: `tab-button-${name}`,
    class: name === 'overview' ? 'active' : null,
    onclick: () => selectTab(name),
  }, name[0].toUpperCase() + name.slice(1)));
  const tabs = h('div', { class: 'tabs' }, tabButtons,
    h('a', { href: `#/jobs/${jobId}/checkpoints`, style: 'padding:8px 14px', id: 'checkpoints-link' }, 'Checkpoints →'));

  const graphBox = h('div', { id: 'graph' });
  const chartBox = h('div', { class: 'chart', id: 'records-chart' });
  const verticesBox = h('div', { id: 'vertices' });
  const subtasksBox = h('div', { id: 'subtasks' });
  fill(panes.overview, h('div', { class: 'split' }, h('div', null, h('h2', null, 'Job graph'), graphBox),
    h('div', null, h('h2', null, 'Records per second'), chartBox)),
  h('h2', null, 'Vertices'), verticesBox, subtasksBox);

  fill(view, title, errors, cards, actions, status, tabs, panes.overview, panes.exceptions, panes.configuration);

  let graph = null;
  let chart = null;
  let selected = null;
  let lastDetails = null;
  let configShown = false;
  const rates = new Rates();
  page.onLeave(() => {
    if (graph) graph.destroy();
    if (chart) chart.destroy();
  });

  function selectTab(name) {
    for (const [key, pane] of Object.entries(panes)) pane.classList.toggle('hidden', key !== name);
    tabButtons.forEach((b, i) => b.classList.toggle('active', Object.keys(panes)[i] === name));
    if (name === 'configuration' && !configShown) showConfiguration();
    if (chart) chart.onResize();
  }

  function selectVertex(id) {
    selected = id;
    if (graph) {
      graph.cy.nodes().unselect();
      graph.cy.getElementById(id).select();
    }
  }

  function say(text, state) {
    status.classList.remove('hidden');
    status.textContent = text;
    status.dataset.state = state;
  }

  async function runOperation(label, triggerPath, body) {
    actionButtons.forEach((b) => { b.disabled = true; });
    try {
      const answer = await call('POST', triggerPath, body);
      const requestId = answer['request-id'];
      say(`${label}: triggered (request ${requestId})`, 'IN_PROGRESS');
      const op = await waitForOperation(`/jobs/${jobId}/savepoints/${requestId}`,
        (s) => say(`${label}: ${s}`, s), () => page.alive());
      if (op === null) return;
      if (op['failure-cause']) {
        say(`${label} failed: ${op['failure-cause']['stack-trace']}`, 'FAILED');
      } else {
        say(`${label} completed: ${op.location}`, 'COMPLETED');
      }
    } catch (e) {
      say(`${label} failed: ${e.message}`, 'FAILED');
    } finally {
      actionButtons.forEach((b) => { b.disabled = lastDetails !== null && ENDED.has(lastDetails.state); });
    }
  }

  cancelButton.addEventListener('click', async () => {
    if (!window.confirm('Cancel this job?')) return;
    try {
      await call('PATCH', `/jobs/${jobId}?mode=cancel`);
      say('Cancel requested', 'IN_PROGRESS');
    } catch (e) {
      say(`Cancel failed: ${e.message}`, 'FAILED');
    }
  });
  savepointButton.addEventListener('click', () => runOperation('Savepoint', `/jobs/${jobId}/savepoints`,
    { 'target-directory': targetDir.value.trim() || undefined, 'cancel-job': false }));
  stopButton.addEventListener('click', () => runOperation('Stop with savepoint', `/jobs/${jobId}/stop`,
    { targetDirectory: targetDir.value.trim() || undefined, drain: drain.checked }));

  async function showConfiguration() {
    configShown = true;
    const box = panes.configuration;
    const details = lastDetails;
    const parts = [h('h2', null, 'Job')];
    if (details) {
      parts.push(keyValues([
        ['Job ID', h('span', { class: 'mono' }, details.jid)],
        ['Name', details.name],
        ['Type', details['job-type']],
        ['Max parallelism', details.maxParallelism > 0 ? details.maxParallelism : 'default'],
        ['Stoppable', String(details.isStoppable)],
        ...details.vertices.map((v) => [`Parallelism of ${v.name}`, v.parallelism]),
      ]));
    }
    const executionBox = h('div', { id: 'job-execution-config' }, 'Loading…');
    const userConfigBox = h('div', { id: 'job-user-config' }, 'Loading…');
    parts.push(h('h2', null, 'Execution configuration'), executionBox, h('h2', null, 'User configuration'), userConfigBox);
    const checkpointBox = h('div', null, 'Loading…');
    parts.push(h('h2', null, 'Checkpointing'), checkpointBox);
    const metricsBox = h('div', null, 'Loading…');
    parts.push(h('h2', null, 'Job metrics'), metricsBox);
    fill(box, parts);
    try {
      const config = await get(`/jobs/${jobId}/config`);
      const e = config['execution-config'] || {};
      fill(executionBox, keyValues([
        ['Execution mode', e['execution-mode']],
        ['Restart strategy', e['restart-strategy']],
        ['Job parallelism', h('span', { id: 'job-parallelism' }, String(e['job-parallelism']))],
        ['Object reuse', String(e['object-reuse-mode'])],
      ]));
      const user = Object.entries(e['user-config'] || {});
      fill(userConfigBox, user.length === 0
        ? h('div', { class: 'muted' }, 'None: the job was not run from a job library with settings.')
        : keyValues(user.map(([k, v]) => [h('span', { class: 'mono' }, k), h('span', { class: 'mono' }, String(v))])));
    } catch (e) {
      fill(executionBox, h('div', { class: 'error' }, e.message));
      fill(userConfigBox, '');
    }
    try {
      const c = await get(`/jobs/${jobId}/checkpoints/config`);
      fill(checkpointBox, keyValues(Object.entries(c).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
    } catch (e) {
      fill(checkpointBox, h('div', { class: 'muted' }, e.message));
    }
    try {
      const list = await get(`/jobs/${jobId}/metrics`);
      const values = await metrics(`/jobs/${jobId}/metrics`, list.map((m) => m.id));
      fill(metricsBox, list.length === 0 ? h('div', { class: 'muted' }, 'The job has no metrics (it ended).')
        : keyValues(Object.entries(values).map(([k, v]) => [k, format.number(v)])));
    } catch (e) {
      fill(metricsBox, h('div', { class: 'muted' }, e.message));
    }
  }

  function showExceptions(exceptions) {
    const entries = exceptions.exceptionHistory ? exceptions.exceptionHistory.entries : [];
    fill(panes.exceptions,
      h('h2', null, 'Root exception'),
      exceptions['root-exception']
        ? h('pre', { class: 'log', id: 'root-exception' }, exceptions['root-exception'])
        : h('div', { class: 'muted', id: 'root-exception' }, 'No exception: the job has not failed.'),
      h('h2', null, 'Exception history'),
      table([{ label: 'Time' }, { label: 'Exception' }, { label: 'Task' }],
        entries.map((e) => [format.time(e.timestamp), h('pre', { class: 'mono', style: 'margin:0;white-space:pre-wrap' }, e.stacktrace),
          e.taskName || '–']),
        { empty: 'No failures or restarts.' }));
  }

  page.poll(async () => {
    try {
      const details = await get(`/jobs/${jobId}`);
      if (!page.alive()) return;
      lastDetails = details;
      const now = Date.now();
      title.replaceChildren(details.name, ' ', badge(details.state));
      title.dataset.state = details.state;
      const ended = ENDED.has(details.state);
      actionButtons.forEach((b) => { b.disabled = ended; });
      if (!graph) {
        const plan = await get(`/jobs/${jobId}/plan`);
        if (!page.alive()) return;
        graph = drawGraph(graphBox, plan.plan, selectVertex);
        chart = new LiveChart(chartBox, 'records/s', details.vertices.map((v) => {
          const source = !plan.plan.nodes.find((n) => n.id === v.id)?.inputs?.length;
          return `${format.operators(v.name)[0]} ${source ? 'out' : 'in'}`;
        }), (v) => format.number(v));
        chart.sources = details.vertices.map((v) => !plan.plan.nodes.find((n) => n.id === v.id)?.inputs?.length);
      }
      const figures = await Promise.all(details.vertices.map((v) => vertexFigures(jobId, v)));
      if (!page.alive()) return;
      const counters = {};
      details.vertices.forEach((v, i) => {
        counters[`${v.id}.in`] = figures[i].recordsIn;
        counters[`${v.id}.out`] = figures[i].recordsOut;
      });
      const perSecond = rates.update(now, counters);
      chart.push(now, details.vertices.map((v, i) => perSecond[`${v.id}.${chart.sources[i] ? 'out' : 'in'}`]));
      const levels = {};
      details.vertices.forEach((v, i) => { levels[v.id] = figures[i].pressure.backpressureLevel; });
      graph.setLevels(levels);

      let totalIn = 0;
      let totalOut = 0;
      figures.forEach((f) => { totalIn += f.recordsIn || 0; totalOut += f.recordsOut || 0; });
      fill(cards,
        card('Status', details.state, 'job-state'),
        card('Duration', format.duration(details.duration), 'job-duration'),
        card('Started', format.time(details['start-time'])),
        card('Records in', format.number(totalIn), 'records-in'),
        card('Records out', format.number(totalOut), 'records-out'),
        card('Restarts', details.freshet ? details.freshet.restarts : '–'));
      cards.dataset.recordsIn = String(totalIn);
      cards.dataset.recordsOut = String(totalOut);

      fill(verticesBox, table(
        [{ label: 'Vertex' }, { label: 'Status' }, { label: 'Parallelism', num: true },
          { label: 'Records in', num: true }, { label: 'In/s', num: true },
          { label: 'Records out', num: true }, { label: 'Out/s', num: true },
          { label: 'Busy', num: true }, { label: 'Back-pressure' }, { label: 'Low watermark' }, { label: 'Duration', num: true }],
        details.vertices.map((v, i) => [
          h('div', null, format.operators(v.name).map((op) => h('div', null, op))),
          badge(v.status), v.parallelism,
          format.number(figures[i].recordsIn), format.rate(perSecond[`${v.id}.in`]),
          format.number(figures[i].recordsOut), format.rate(perSecond[`${v.id}.out`]),
          format.percent(figures[i].busy),
          figures[i].pressure.status === 'ok' ? badge(figures[i].pressure.backpressureLevel) : h('span', { class: 'muted' }, 'no data'),
          figures[i].low === null ? '–' : format.watermark(figures[i].low),
          format.duration(v.duration),
        ]),
        {
          onRow: (i) => selectVertex(details.vertices[i].id),
          selected: details.vertices.findIndex((v) => v.id === selected),
          rowData: (i) => ({ vertex: details.vertices[i].id }),
          className: 'vertices',
        }));

      const index = details.vertices.findIndex((v) => v.id === selected);
      if (index < 0) {
        fill(subtasksBox, h('p', { class: 'muted' }, 'Select a vertex (in the graph or the table) to see its subtasks.'));
      } else {
        const vertex = await get(`/jobs/${jobId}/vertices/${selected}`);
        if (!page.alive()) return;
        const f = figures[index];
        const pressure = new Map(f.pressure.subtasks.map((s) => [s.subtask, s]));
        fill(subtasksBox, h('h2', null, `Subtasks of ${vertex.name}`), table(
          [{ label: '#', num: true }, { label: 'Status' }, { label: 'TaskManager' }, { label: 'Records in', num: true },
            { label: 'Records out', num: true }, { label: 'Busy', num: true }, { label: 'Back-pressured', num: true },
            { label: 'Idle', num: true }, { label: 'Watermark' }, { label: 'Duration', num: true }],
          vertex.subtasks.map((s) => {
            const p = pressure.get(s.subtask) || {};
            const m = f.perSubtask[s.subtask] || {};
            return [s.subtask, badge(s.status),
              h('a', { href: `#/taskmanagers/${encodeURIComponent(s['taskmanager-id'])}` }, s['taskmanager-id']),
              format.number(m.in), format.number(m.out), format.percent(p.busyRatio), format.percent(p.ratio),
              format.percent(p.idleRatio),
              f.watermarks[s.subtask] === undefined ? '–' : format.watermark(f.watermarks[s.subtask]),
              format.duration(s.duration)];
          }), { className: 'subtasks' }));
      }

      showExceptions(await get(`/jobs/${jobId}/exceptions`));
      showError(errors, null);
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  });
}
