// #/taskmanagers and #/taskmanagers/:id: slots, hardware, metrics charts
// (CPU and memory of the process) and logs.
import { get, metrics } from './api.js';
import { h, fill, table, keyValues, card, showError } from './dom.js';
import { LiveChart, Rates } from './charts.js';
import { logViewer } from './logs.js';
import * as format from './format.js';

export function renderTaskManagers(view, params, page) {
  const errors = h('div', { class: 'error hidden' });
  const list = h('div', { id: 'taskmanagers' });
  fill(view, h('h1', null, 'TaskManagers'), errors, list);
  page.poll(async () => {
    try {
      const answer = await get('/taskmanagers');
      if (!page.alive()) return;
      fill(list, table(
        [{ label: 'ID' }, { label: 'Address' }, { label: 'Slots', num: true }, { label: 'Free slots', num: true },
          { label: 'CPU cores', num: true }, { label: 'Physical memory', num: true }, { label: 'Free memory', num: true },
          { label: 'Last heartbeat' }],
        answer.taskmanagers.map((tm) => [
          h('a', { href: `#/taskmanagers/${encodeURIComponent(tm.id)}` }, tm.id), tm.path, tm.slotsNumber, tm.freeSlots,
          tm.hardware.cpuCores, format.bytes(tm.hardware.physicalMemory), format.bytes(tm.hardware.freeMemory),
          format.time(tm.timeSinceLastHeartbeat)]),
        { empty: 'No TaskManager is registered.', className: 'taskmanagers' }));
      showError(errors, null);
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  });
}

const CPU = 'Status.Process.CpuTime';
const RSS = 'Status.Process.ResidentMemory';

export function renderTaskManager(view, [id], page) {
  const base = `/taskmanagers/${encodeURIComponent(id)}`;
  const errors = h('div', { class: 'error hidden' });
  const cards = h('div', { class: 'cards' });
  const cpuBox = h('div', { class: 'chart', id: 'tm-cpu-chart' });
  const memoryBox = h('div', { class: 'chart', id: 'tm-memory-chart' });
  const slotsBox = h('div', null);
  const metricsBox = h('div', null);
  const logs = logViewer(base, page);
  fill(view, h('h1', null, h('a', { href: '#/taskmanagers' }, 'TaskManagers'), ` › ${id}`), errors, cards,
    h('h2', null, 'Metrics'), h('div', { class: 'charts' }, cpuBox, memoryBox), metricsBox,
    h('h2', null, 'Allocated slots'), slotsBox, h('h2', null, 'Logs'), logs.box);

  const cpuChart = new LiveChart(cpuBox, 'CPU (cores busy)', ['CPU'], (v) => v.toFixed(2));
  const memoryChart = new LiveChart(memoryBox, 'Resident memory', ['RSS'], format.bytes);
  const rates = new Rates();
  page.onLeave(() => {
    cpuChart.destroy();
    memoryChart.destroy();
  });
  let tick = 0;

  page.poll(async () => {
    try {
      const tm = await get(base);
      if (!page.alive()) return;
      fill(cards, card('Slots', tm.slotsNumber, 'tm-slots'), card('Free slots', tm.freeSlots, 'tm-free-slots'),
        card('CPU cores', tm.hardware.cpuCores), card('Physical memory', format.bytes(tm.hardware.physicalMemory)),
        card('Free memory', format.bytes(tm.hardware.freeMemory)), card('Address', tm.path));
      fill(slotsBox, table([{ label: 'Job' }, { label: 'Resource' }],
        (tm.allocatedSlots || []).map((s) => [
          s.jobId ? h('a', { href: `#/jobs/${s.jobId}` }, s.jobId) : '–', JSON.stringify(s.resource || s)]),
        { empty: 'No slot is allocated.' }));
      const list = await get(`${base}/metrics`);
      const values = await metrics(`${base}/metrics`, list.map((m) => m.id));
      if (!page.alive()) return;
      const now = Date.now();
      // CPU time is in nanoseconds: its rate over wall time is cores busy.
      const r = rates.update(now, values[CPU] === undefined ? {} : { cpu: values[CPU] / 1e6 });
      cpuChart.push(now, [r.cpu === undefined ? null : r.cpu / 1000]);
      memoryChart.push(now, [values[RSS]]);
      cpuBox.dataset.points = String(cpuChart.points);
      fill(metricsBox, keyValues(Object.entries(values).map(([k, v]) => [k, format.number(v)])));
      // The log is re-read every few polls, not every one.
      if (tick % 4 === 0) await logs.refresh();
      tick += 1;
      showError(errors, null);
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  });
}
