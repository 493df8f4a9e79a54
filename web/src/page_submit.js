// #/submit: upload a job library (POST /jars/upload, field "jarfile") and
// run an uploaded one (POST /jars/:id/run) with arguments, parallelism,
// extra settings and a savepoint to restore from.
import { get, call, postForm } from './api.js';
import { h, fill, table, showError } from './dom.js';
import * as format from './format.js';

/** Splits program arguments like a shell's words: blanks separate, quotes group, backslash escapes. */
export function splitArguments(text) {
  const words = [];
  let word = null;
  let quote = null;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word = word ?? '';
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote) throw new Error(`the program arguments have an unclosed ${quote} quote`);
  if (word !== null) words.push(word);
  return words;
}

/** "key: value" lines (blank lines and # comments skipped) into an object. */
export function parseSettings(text) {
  const settings = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`configuration line ${i + 1} ('${line}') is not "key: value"`);
    settings[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  });
  return settings;
}

export function renderSubmit(view, params, page) {
  const errors = h('div', { class: 'error hidden', id: 'submit-error' });
  const notice = h('div', { class: 'notice hidden', id: 'submit-notice' });
  const file = h('input', { type: 'file', id: 'jarfile', name: 'jarfile', accept: '.so' });
  const uploadButton = h('button', { class: 'action', id: 'upload', type: 'submit' }, 'Upload');
  const uploadForm = h('form', { class: 'panel actions', id: 'upload-form' }, file, uploadButton);
  const jarsBox = h('div', { id: 'jars' });

  const args = h('input', { type: 'text', id: 'program-args', placeholder: '--input /data/in --output /data/out' });
  const parallelism = h('input', { type: 'number', id: 'parallelism', min: '1', placeholder: 'default (parallelism.default)' });
  const savepoint = h('input', { type: 'text', id: 'savepoint-path', placeholder: 'restore from this savepoint or checkpoint (optional)' });
  const allowNonRestored = h('input', { type: 'checkbox', id: 'allow-non-restored' });
  const settings = h('textarea', { id: 'job-settings', placeholder: 'execution.checkpointing.interval: 10 s\nstate.checkpoints.dir: /tmp/checkpoints' });
  const chosen = h('span', { class: 'mono', id: 'chosen-jar' }, 'none: pick one above');
  const runButton = h('button', { class: 'action', id: 'run', type: 'submit', disabled: true }, 'Run job');
  const runForm = h('form', { class: 'panel grid', id: 'run-form' },
    h('label', null, 'Job library'), chosen,
    h('label', { for: 'program-args' }, 'Program arguments'), args,
    h('label', { for: 'parallelism' }, 'Parallelism'), parallelism,
    h('label', { for: 'savepoint-path' }, 'Savepoint path'), savepoint,
    h('label', { for: 'allow-non-restored' }, 'Allow non-restored state'), h('div', null, allowNonRestored),
    h('label', { for: 'job-settings' }, 'Configuration (key: value per line)'), settings,
    h('span', null), h('div', null, runButton));

  fill(view, h('h1', null, 'Submit a job'), errors, notice,
    h('h2', null, 'Upload a job library'), uploadForm,
    h('h2', null, 'Uploaded job libraries'), jarsBox,
    h('h2', null, 'Run'), runForm);

  let jarId = null;

  function choose(id, name) {
    jarId = id;
    chosen.textContent = `${name} (${id})`;
    runButton.disabled = false;
  }

  async function refresh() {
    const answer = await get('/jars');
    if (!page.alive()) return;
    fill(jarsBox, table([{ label: 'Name' }, { label: 'Uploaded' }, { label: 'ID' }, { label: '' }],
      answer.files.map((f) => [f.name, format.time(f.uploaded), h('span', { class: 'mono' }, f.id),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'action secondary choose-jar', dataset: { jar: f.id }, onclick: () => choose(f.id, f.name) }, 'Choose'),
          h('button', {
            type: 'button',
            class: 'action secondary',
            onclick: async () => {
              try {
                await call('DELETE', `/jars/${encodeURIComponent(f.id)}`);
                if (jarId === f.id) {
                  jarId = null;
                  runButton.disabled = true;
                  chosen.textContent = 'none: pick one above';
                }
                await refresh();
              } catch (e) {
                showError(errors, e);
              }
            },
          }, 'Delete'))]),
      { empty: 'No job library is uploaded.', className: 'jars' }));
  }

  uploadForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(errors, null);
    if (file.files.length === 0) {
      showError(errors, new Error('choose a job library (.so) to upload first'));
      return;
    }
    uploadButton.disabled = true;
    try {
      const form = new FormData();
      form.append('jarfile', file.files[0]);
      const answer = await postForm('/jars/upload', form);
      const id = answer.filename.split('/').pop();
      choose(id, file.files[0].name);
      notice.classList.remove('hidden');
      notice.textContent = `Uploaded ${file.files[0].name} as ${id}`;
      await refresh();
    } catch (e) {
      showError(errors, e);
    } finally {
      uploadButton.disabled = false;
    }
  });

  runForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(errors, null);
    if (jarId === null) return;
    try {
      const body = {
        programArgsList: splitArguments(args.value),
        allowNonRestoredState: allowNonRestored.checked,
      };
      if (parallelism.value.trim() !== '') {
        const p = Number(parallelism.value);
        if (!Number.isInteger(p) || p < 1) throw new Error(`parallelism '${parallelism.value}' is not a positive whole number`);
        body.parallelism = p;
      }
      if (savepoint.value.trim() !== '') body.savepointPath = savepoint.value.trim();
      const extra = parseSettings(settings.value);
      if (Object.keys(extra).length > 0) body.flinkConfiguration = extra;
      runButton.disabled = true;
      const answer = await call('POST', `/jars/${encodeURIComponent(jarId)}/run`, body);
      location.hash = `#/jobs/${answer.jobid}`;
    } catch (e) {
      showError(errors, e);
    } finally {
      runButton.disabled = jarId === null;
    }
  });

  page.poll(async () => {
    try {
      await refresh();
    } catch (e) {
      if (page.alive()) showError(errors, e);
    }
  }, 5000);
}
