// #/jobmanager: the JobManager's configuration, metrics and logs.
import { get, metrics } from './api.js';
import { h, fill, table, keyValues, showError } from './dom.js';
import { logViewer } from './logs.js';
import * as format from './format.js';

export function renderJobManager(view, params, page) {
  const errors = h('div', { class: 'error hidden' });
  const configBox = h('div', { id: 'jm-config' });
  const metricsBox = h('div', { id: 'jm-metrics' });
  const logs = logViewer('/jobmanager', page);
  fill(view, h('h1', null, 'JobManager'), errors, h('div', { class: 'split' },
    h('div', null, h('h2', null, 'Configuration'), configBox),
    h('div', null, h('h2', null, 'Metrics'), metricsBox)), h('h2', null, 'Logs'), logs.box);
  let tick = 0;
  page.poll(async () => {
    try {
      if (tick === 0) {
        const config = await get('/jobmanager/config');
        if (!page.alive()) return;
        fill(configBox, table([{ label: 'Key' }, { label: 'Value' }],
          config.map((e) => [h('span', { class: 'mono' }, e.key), h('span', { class: 'mono' }, e.value)]),
          { empty: 'Every setting has its default.' }));
      }
      const list = await get('/jobmanager/metrics');
      const values = await metrics('/jobmanager/metrics', list.map((m) => m.id));
      if (!page.alive()) return;
      fill(metricsBox, keyValues(Object.entries(values).map(([k, v]) => [k, format.number(v)])));
      if (tick % 4 === 0) await logs.refresh();
      tick += 1;
      showError(errors, null);
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  });
}
