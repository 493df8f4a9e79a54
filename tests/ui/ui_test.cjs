// Freshet's web UI in a real browser: playwright-core drives Debian's
// chromium against a cluster of processes: `freshet jobmanager` and two
// `freshet taskmanager`s of one slot each, so a job of parallelism 2 runs
// across both. The job (tests/deploy/jobs/ticker_job.cc) is uploaded and
// started through the Submit page; then every page must load without
// console errors or failed requests, the graph must show the plan's
// vertices, the records figures must grow between polls, checkpoints must
// show per-subtask figures, a failed checkpoint its reason, a savepoint must
// complete with a path on disk and cancel must end the job CANCELED.
// Screenshots of every page are written under FRESHET_UI_WORK_DIR/screenshots.
//
// Environment: FRESHET_CLI (the `freshet` program), FRESHET_TICKER_JOB (the
// job library), FRESHET_UI_WORK_DIR (a build directory for node_modules and
// screenshots), FRESHET_NPM (npm), FRESHET_CHROMIUM (default /usr/bin/chromium).
// Exit codes: 0 passed, 1 failed, 77 skipped (no chromium).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SKIP = 77;
const WAIT_MS = 60000; // generous: a loaded 2-core machine

function env(name, fallback) {
  const value = process.env[name] || fallback;
  if (!value) {
    console.error(`ui_test: the environment variable ${name} is required`);
    process.exit(1);
  }
  return value;
}

const chromiumPath = env('FRESHET_CHROMIUM', '/usr/bin/chromium');
if (!fs.existsSync(chromiumPath)) {
  console.log(`SKIP: ${chromiumPath} is not installed (scripts/install-deps.sh installs Debian's chromium for the UI tests)`);
  process.exit(SKIP);
}
const cli = env('FRESHET_CLI');
const tickerJob = env('FRESHET_TICKER_JOB');
const workDir = env('FRESHET_UI_WORK_DIR');
const npm = env('FRESHET_NPM', 'npm');
for (const file of [cli, tickerJob]) {
  if (!fs.existsSync(file)) {
    console.error(`ui_test: ${file} does not exist: build freshet_cli and test_ticker_job first`);
    process.exit(1);
  }
}

/** Installs playwright-core from the lock file into workDir (only when the lock changed). */
function installPackages() {
  fs.mkdirSync(workDir, { recursive: true });
  const lock = fs.readFileSync(path.join(__dirname, 'package-lock.json'), 'utf8');
  const installedLock = path.join(workDir, 'package-lock.json');
  const installed = fs.existsSync(installedLock) && fs.readFileSync(installedLock, 'utf8') === lock &&
    fs.existsSync(path.join(workDir, 'node_modules', 'playwright-core'));
  if (installed) return;
  fs.copyFileSync(path.join(__dirname, 'package.json'), path.join(workDir, 'package.json'));
  fs.writeFileSync(installedLock, lock);
  const result = spawnSync(npm, ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: workDir, stdio: 'inherit' });
  if (result.status !== 0) {
    fs.rmSync(installedLock, { force: true });
    console.error(`ui_test: npm ci in ${workDir} failed (${result.error ? result.error.message : `exit ${result.status}`})`);
    process.exit(1);
  }
}

/**
 * Starts `freshet <verb> <args>` in `dir` (stderr to <dir>/<name>.err);
 * resolves with { process, match } once its stdout matches `ready`.
 */
function startProcess(dir, name, verb, args, ready) {
  const child = spawn(cli, [verb, ...args], { cwd: dir, stdio: ['ignore', 'pipe', fs.openSync(path.join(dir, `${name}.err`), 'w')] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} printed nothing matching ${ready} in ${WAIT_MS} ms: ${out}`)), WAIT_MS);
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready: ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ process: child, match: m });
      }
    });
  });
}

/** Ends a process: SIGTERM, then SIGKILL after 20 s. */
async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/**
 * Starts the cluster in `dir`: a JobManager with no TaskManager of its own,
 * then TaskManager processes tm-1 and tm-2 of one slot each, each logging
 * to a directory of its own (as on separate hosts). Resolves with
 * { processes, url }.
 */
async function startCluster(dir) {
  const log = `env.log.dir=${path.join(dir, 'log')}`;
  const jm = await startProcess(dir, 'jobmanager', 'jobmanager',
    ['-D', 'rest.port=0', '-D', 'jobmanager.rpc.port=0', '-D', 'taskmanager.local.count=0', '-D', log],
    /REST endpoint: http:\/\/[^:\s]+:(\d+)\nRPC endpoint: ([^:\s]+):(\d+)\n/);
  const processes = [jm.process];
  // It binds 127.0.0.1; "localhost" could resolve to ::1 first.
  const url = `http://127.0.0.1:${jm.match[1]}`;
  try {
    for (const id of ['tm-1', 'tm-2']) {
      const tm = await startProcess(dir, id, 'taskmanager', ['-D', 'jobmanager.rpc.address=127.0.0.1', '-D',
        `jobmanager.rpc.port=${jm.match[3]}`, '-D', `taskmanager.resource-id=${id}`, '-D', 'taskmanager.host=127.0.0.1',
        '-D', 'taskmanager.numberOfTaskSlots=1', '-D', `env.log.dir=${path.join(dir, `log-${id}`)}`,
        '-D', `blob.storage.directory=${path.join(dir, `blobs-${id}`)}`],
      new RegExp(`TaskManager ${id}: RPC`));
      processes.push(tm.process);
    }
  } catch (e) {
    for (const p of processes) await stopProcess(p);
    throw e;
  }
  return { processes, url };
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  installPackages();
  const { chromium } = require(path.join(workDir, 'node_modules', 'playwright-core'));
  const screenshots = path.join(workDir, 'screenshots');
  fs.rmSync(screenshots, { recursive: true, force: true });
  fs.mkdirSync(screenshots, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'freshet-ui-test-'));
  let cluster = null;
  let browser = null;
  let failed = false;
  try {
    cluster = await startCluster(dir);
    const base = cluster.url;
    const rest = async (p) => {
      const response = await fetch(base + p);
      return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
    };

    // Serving, outside the browser: the root is the UI, unknown assets 404
    // with an error body, the API is where it was.
    const root = await rest('/');
    check(root.status === 200 && root.type.startsWith('text/html') && root.body.includes('/web/app.js'),
      `GET / is not the UI's index.html: ${root.status} ${root.type}`);
    const missing = await rest('/web/no-such-file.js');
    check(missing.status === 404 && missing.body.includes('no such web UI file'), `GET of an unknown asset: ${missing.status} ${missing.body}`);
    const script = await fetch(`${base}/web/app.js`);
    const etag = script.headers.get('etag');
    check(script.status === 200 && script.headers.get('content-type').startsWith('text/javascript') && etag &&
      script.headers.get('cache-control') === 'no-cache', `GET /web/app.js: ${script.status} ${script.headers.get('content-type')}`);
    const again = await fetch(`${base}/web/app.js`, { headers: { 'If-None-Match': etag } });
    check(again.status === 304, `GET /web/app.js with its ETag answered ${again.status}, not 304`);
    const css = await fetch(`${base}/web/vendor/uPlot.min.css`);
    check(css.status === 200 && css.headers.get('content-type').startsWith('text/css'), `GET of uPlot's CSS: ${css.status}`);
    // Both TaskManagers registered before the browser looks.
    const deadline = Date.now() + WAIT_MS;
    let overviewApi = await rest('/overview');
    while (JSON.parse(overviewApi.body)['taskmanagers'] !== 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      overviewApi = await rest('/overview');
    }
    check(overviewApi.status === 200 && JSON.parse(overviewApi.body)['slots-total'] === 2, `GET /overview: ${overviewApi.body}`);

    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(WAIT_MS);

    // Anything that goes wrong in the page fails the test, unless a step
    // expects that very failure (the error paths below).
    const problems = [];
    let expected = null; // RegExp of a URL whose failure is expected now
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (expected && expected.test(m.location().url || '')) return;
      problems.push(`console error: ${m.text()} (${m.location().url || 'no location'})`);
    });
    page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure().errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400 && !(expected && expected.test(r.url()))) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    });
    page.on('dialog', (d) => d.accept());

    const shots = [];
    const shot = async (name) => {
      const file = path.join(screenshots, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
    };
    const go = async (hash, page_name) => {
      // Hash changes only: a full navigation would abort the polls in flight.
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.waitForFunction((n) => document.getElementById('view').dataset.page === n, page_name);
    };
    const text = async (selector) => (await page.locator(selector).textContent()).trim();

    // Overview.
    await page.goto(`${base}/#/overview`);
    await page.waitForFunction(() => document.getElementById('tm-count')?.textContent === '2');
    check(await text('#slots-total') === '2', `slots total: ${await text('#slots-total')}`);
    check(await text('#slots-free') === '2', `slots free: ${await text('#slots-free')}`);
    await page.waitForFunction(() => document.getElementById('version').textContent.startsWith('Freshet'));
    // The JobManager's uptime, from /overview's jobmanager-uptime ('–' when absent).
    const uptime = await text('#uptime-card');
    check(/^(\d+ ms|(\d+[dhm] )*\d+[smh])$/.test(uptime), `the overview shows no uptime: '${uptime}'`);
    const started = await page.evaluate(() => document.getElementById('uptime-card').parentElement.title);
    check(/^started \d{4}-\d\d-\d\d /.test(started || ''), `the uptime card does not say when the JobManager started: '${started}'`);
    await shot('overview');

    // Submit: upload, then an error path (a setting the API refuses is shown), then the run.
    await go('#/submit', 'renderSubmit');
    await page.setInputFiles('#jarfile', tickerJob);
    await page.click('#upload');
    await page.waitForFunction(() => document.getElementById('submit-notice').textContent.startsWith('Uploaded ticker_job.so'));
    await page.waitForSelector('table.jars tbody tr td >> text=ticker_job.so');
    await page.fill('#program-args', `--rate 400 --keys 4 --output ${path.join(dir, 'ticks')}`);
    await page.fill('#parallelism', '2');
    await page.fill('#savepoint-path', path.join(dir, 'no-such-savepoint'));
    expected = /\/jars\/[^/]+\/run$/;
    await page.click('#run');
    await page.waitForFunction(() => /no checkpoint metadata at .*no-such-savepoint/.test(document.getElementById('submit-error').textContent));
    check(await page.evaluate(() => location.hash) === '#/submit', 'a refused run left the Submit page');
    expected = null;
    await page.fill('#savepoint-path', '');
    // Checkpoints that fail (below) do not fail the job.
    await page.fill('#job-settings', `execution.checkpointing.interval: 500 ms\nstate.checkpoints.dir: ${path.join(dir, 'checkpoints')}\n` +
      'execution.checkpointing.tolerable-failed-checkpoints: 1000');
    await shot('submit');
    await page.click('#run');
    await page.waitForFunction(() => /^#\/jobs\/[0-9a-f]{32}$/.test(location.hash));
    const jobId = (await page.evaluate(() => location.hash)).slice('#/jobs/'.length);

    // Job: status, graph against the plan, records growing, subtasks, tabs.
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'RUNNING');
    await page.waitForSelector('#graph[data-nodes]');
    const plan = JSON.parse((await rest(`/jobs/${jobId}/plan`)).body).plan;
    const nodes = Number(await page.getAttribute('#graph', 'data-nodes'));
    const edges = Number(await page.getAttribute('#graph', 'data-edges'));
    const planEdges = plan.nodes.reduce((n, v) => n + (v.inputs || []).length, 0);
    check(nodes === plan.nodes.length && nodes >= 2, `the graph shows ${nodes} vertices, the plan has ${plan.nodes.length}`);
    check(edges === planEdges, `the graph shows ${edges} edges, the plan has ${planEdges}`);
    const rows = await page.locator('table.vertices tbody tr').count();
    check(rows === plan.nodes.length, `the vertices table has ${rows} rows, the plan ${plan.nodes.length} vertices`);
    await page.waitForFunction(() => Number(document.querySelector('.cards').dataset.recordsOut) > 0);
    const first = Number(await page.getAttribute('.cards', 'data-records-out'));
    await page.waitForFunction((n) => Number(document.querySelector('.cards').dataset.recordsOut) > n, first);
    const second = Number(await page.getAttribute('.cards', 'data-records-out'));
    check(second > first, `records out did not grow: ${first} then ${second}`);
    // The rate columns fill in from the second poll on.
    await page.waitForFunction(() => /\/s$/.test(document.querySelector('table.vertices tbody tr td:nth-child(7)').textContent));
    await page.click('table.vertices tbody tr:nth-child(1)');
    await page.waitForFunction((p) => document.querySelectorAll('table.subtasks tbody tr').length === p, plan.nodes[0].parallelism);
    // One slot per TaskManager: the two subtasks run in different processes,
    // and the table links each to its own.
    const placed = await page.locator('table.subtasks tbody tr td:nth-child(3)').allTextContents();
    check([...placed].sort().join(',') === 'tm-1,tm-2', `subtasks placed on ${placed.join(', ')}, not on tm-1 and tm-2`);
    await shot('job');
    await page.click('#tab-button-exceptions');
    await page.waitForSelector('#root-exception');
    await shot('job-exceptions');
    await page.click('#tab-button-configuration');
    await page.waitForSelector('#tab-configuration >> text=checkpoint_directory');
    // /jobs/:id/config: the parallelism the run set, and its settings as user config.
    await page.waitForFunction(() => document.getElementById('job-parallelism')?.textContent === '2');
    await page.waitForSelector('#job-user-config >> text=execution.checkpointing.interval');
    await shot('job-configuration');

    // Checkpoints.
    await go(`#/jobs/${jobId}/checkpoints`, 'renderCheckpoints');
    await page.waitForFunction(() => Number(document.getElementById('cp-completed')?.textContent) > 0);
    await page.click('table.checkpoints tbody tr:nth-child(1)');
    await page.waitForSelector('#checkpoint-details >> text=Checkpoint #');
    // A completed checkpoint: a row per vertex; the first expands to one
    // row per subtask, every one acknowledged.
    await page.locator('table.checkpoints tbody tr', { has: page.locator('.badge.COMPLETED') }).first().click();
    await page.waitForSelector('#checkpoint-details >> text=COMPLETED');
    await page.waitForFunction((n) => document.querySelectorAll('table.checkpoint-vertices tr.checkpoint-vertex').length === n,
      plan.nodes.length);
    await page.click('table.checkpoint-vertices tr.checkpoint-vertex >> nth=0');
    await page.waitForFunction((p) => document.querySelectorAll('table.checkpoint-subtasks tbody tr').length === p,
      plan.nodes[0].parallelism);
    const subtaskStates = await page.locator('table.checkpoint-subtasks tbody tr td:nth-child(2)').allTextContents();
    check(subtaskStates.every((t) => t === 'completed'), `subtasks of a completed checkpoint: ${subtaskStates.join(', ')}`);
    // The figures the TaskManager processes measured, as the REST API has
    // them: start delay, alignment, sync and async per subtask.
    const shownId = Number((await text('#checkpoint-details h2 >> nth=0')).replace('Checkpoint #', ''));
    const firstVertex = plan.nodes[0].id;
    const measured = JSON.parse((await rest(`/jobs/${jobId}/checkpoints/details/${shownId}/subtasks/${firstVertex}`)).body);
    const headers = await page.locator('table.checkpoint-subtasks thead th').allTextContents();
    const cells = await page.locator('table.checkpoint-subtasks tbody tr:nth-child(1) td').allTextContents();
    const cell = (label) => cells[headers.indexOf(label)];
    const ms = (v) => `${v} ms`;
    const s0 = measured.subtasks[0];
    check(s0.status === 'completed' && s0.end_to_end_duration >= s0.checkpoint.sync, `subtask 0 of checkpoint ${shownId}: ${JSON.stringify(s0)}`);
    for (const [label, value] of [['Start delay', s0.start_delay], ['Alignment', s0.alignment.duration],
      ['Sync', s0.checkpoint.sync], ['Async', s0.checkpoint.async]]) {
      check(headers.includes(label), `the subtask table has no '${label}' column: ${headers.join(', ')}`);
      check(value < 1000 ? cell(label) === ms(value) : cell(label) !== '–',
        `'${label}' of subtask 0 shows '${cell(label)}', the REST API says ${value} ms`);
    }
    await shot('checkpoints');

    // Failing checkpoints: files where the next checkpoints' directories
    // would go make the tasks' writes fail. The history lists them FAILED
    // with the reason; the job goes on (tolerable failures), and checkpoints
    // complete again after those ids.
    const jobCheckpoints = path.join(dir, 'checkpoints', jobId);
    const stats = JSON.parse((await rest(`/jobs/${jobId}/checkpoints`)).body);
    const next = stats.counts.total + 1;
    const blockers = [];
    for (let id = next; id < next + 4; ++id) {
      const blocker = path.join(jobCheckpoints, `chk-${id}`);
      try {
        fs.writeFileSync(blocker, 'not a directory\n', { flag: 'wx' });
        blockers.push(blocker);
      } catch (e) {
        // Triggered already: its directory is there.
      }
    }
    check(blockers.length > 0, `no checkpoint directory from chk-${next} on could be blocked`);
    await page.waitForFunction(() => Number(document.getElementById('cp-failed')?.textContent) > 0);
    const failedRow = page.locator('table.checkpoints tbody tr', { has: page.locator('.badge.FAILED') }).first();
    const reason = (await failedRow.locator('td:last-child').textContent()).trim();
    check(reason.length > 0, 'the failed checkpoint\'s row gives no reason');
    await failedRow.click();
    await page.waitForSelector('#checkpoint-details >> text=Failure');
    const detailsText = await text('#checkpoint-details');
    check(detailsText.includes(reason.slice(0, 40)), `the failed checkpoint's details do not give its reason '${reason}'`);
    await shot('checkpoints-failed');
    const completedBefore = Number(await text('#cp-completed'));
    await page.waitForFunction((n) => Number(document.getElementById('cp-completed')?.textContent) > n, completedBefore);
    for (const blocker of blockers) fs.rmSync(blocker, { force: true });
    check(JSON.parse((await rest(`/jobs/${jobId}`)).body).state === 'RUNNING', 'the job did not survive the failed checkpoint');

    // TaskManagers: the list, then one with its charts and log.
    await go('#/taskmanagers', 'renderTaskManagers');
    await page.waitForFunction(() => document.querySelectorAll('table.taskmanagers tbody tr a').length === 2);
    await shot('taskmanagers');
    await page.click('table.taskmanagers tbody tr a >> text=tm-2');
    await page.waitForFunction(() => document.getElementById('view').dataset.page === 'renderTaskManager');
    // Its charts from metrics the JobManager fetched from that process, and
    // its own log file.
    await page.waitForFunction(() => Number(document.getElementById('tm-cpu-chart')?.dataset.points) >= 3);
    await page.waitForFunction(() => document.getElementById('log-text')?.textContent.includes('TaskManager tm-2 started'));
    await shot('taskmanager');

    // JobManager: configuration and log.
    await go('#/jobmanager', 'renderJobManager');
    await page.waitForSelector('#jm-config >> text=jobmanager.rpc.port');
    await page.waitForFunction(() => document.getElementById('log-text')?.textContent.includes('JobManager started'));
    await shot('jobmanager');

    // Savepoint, then cancel, from the job page.
    await go(`#/jobs/${jobId}`, 'renderJob');
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'RUNNING');
    const savepoints = path.join(dir, 'savepoints');
    await page.fill('#savepoint-dir', savepoints);
    await page.click('#trigger-savepoint');
    await page.waitForFunction(() => ['COMPLETED', 'FAILED'].includes(document.getElementById('action-status').dataset.state));
    const status = await text('#action-status');
    check(status.startsWith('Savepoint completed: '), `the savepoint did not complete: ${status}`);
    const location = status.slice('Savepoint completed: '.length);
    check(location.startsWith(savepoints) && fs.existsSync(location), `the savepoint path ${location} is not a directory under ${savepoints}`);
    await shot('job-savepoint');
    await page.click('#cancel-job');
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'CANCELED');
    const state = JSON.parse((await rest(`/jobs/${jobId}`)).body).state;
    check(state === 'CANCELED', `the REST API says the job is ${state}`);
    check(await page.locator('#cancel-job').isDisabled(), 'the cancel button stays enabled on an ended job');
    await shot('job-canceled');

    // Stop with savepoint, on a second job (started through the API: the
    // Submit page was tested above).
    const jars = JSON.parse((await rest('/jars')).body).files;
    const run = await fetch(`${base}/jars/${jars[0].id}/run`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ programArgsList: ['--rate', '200', '--output', path.join(dir, 'ticks-2')], parallelism: 1 }),
    });
    check(run.status === 200, `the second run answered ${run.status}`);
    const stopJobId = (await run.json()).jobid;
    await go(`#/jobs/${stopJobId}`, 'renderJob');
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'RUNNING');
    await page.fill('#savepoint-dir', savepoints);
    await page.click('#stop-job');
    await page.waitForFunction(() => ['COMPLETED', 'FAILED'].includes(document.getElementById('action-status').dataset.state));
    const stopStatus = await text('#action-status');
    check(stopStatus.startsWith('Stop with savepoint completed: '), `stop with savepoint did not complete: ${stopStatus}`);
    const stopLocation = stopStatus.slice('Stop with savepoint completed: '.length);
    check(stopLocation.startsWith(savepoints) && fs.existsSync(stopLocation), `the stop's savepoint ${stopLocation} is not on disk`);
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'FINISHED');
    await shot('job-stopped');

    // Resume from that savepoint through the Submit page: the new job
    // starts from it (the checkpoints page lists the restore), then is
    // cancelled from its page.
    await go('#/submit', 'renderSubmit');
    await page.click(`button.choose-jar[data-jar="${jars[0].id}"]`);
    await page.fill('#program-args', `--rate 200 --output ${path.join(dir, 'ticks-3')}`);
    await page.fill('#parallelism', '1');
    await page.fill('#savepoint-path', stopLocation);
    await page.fill('#job-settings', '');
    await page.click('#run');
    await page.waitForFunction((previous) => /^#\/jobs\/[0-9a-f]{32}$/.test(location.hash) && !location.hash.endsWith(previous),
      stopJobId);
    const resumedId = (await page.evaluate(() => location.hash)).slice('#/jobs/'.length);
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'RUNNING');
    await go(`#/jobs/${resumedId}/checkpoints`, 'renderCheckpoints');
    await page.waitForFunction(() => document.getElementById('cp-restored')?.textContent === '1');
    await page.waitForFunction((where) => document.getElementById('view').textContent.includes(where), stopLocation);
    // This run takes no periodic checkpoints: the page says so instead of
    // asking for a configuration that is not there.
    await page.waitForSelector('#checkpointing-off');
    await shot('job-resumed-checkpoints');
    await go(`#/jobs/${resumedId}`, 'renderJob');
    await page.click('#cancel-job');
    await page.waitForFunction(() => document.getElementById('job-state')?.textContent === 'CANCELED');

    // Back on the overview the jobs are listed as they ended.
    await go('#/overview', 'renderOverview');
    await page.waitForFunction(() => document.getElementById('jobs-cancelled')?.textContent === '2' &&
      document.getElementById('jobs-finished')?.textContent === '1');
    await page.waitForSelector('table.jobs >> text=CANCELED');
    await page.waitForSelector('table.jobs >> text=FINISHED');
    await shot('overview-ended');

    check(problems.length === 0, `the pages had problems:\n  ${problems.join('\n  ')}`);
    console.log(`ui_test: passed; job ${jobId}; savepoint ${location}`);
    console.log('screenshots:');
    for (const file of shots) console.log(`  ${file}`);
  } catch (e) {
    failed = true;
    console.error(`ui_test: FAILED: ${e.stack || e.message}`);
    for (const name of ['jobmanager', 'tm-1', 'tm-2']) {
      const err = path.join(dir, `${name}.err`);
      if (fs.existsSync(err)) console.error(`--- ${name}.err (tail) ---\n${fs.readFileSync(err, 'utf8').slice(-1500)}`);
    }
  } finally {
    if (browser) {
      try {
        if (failed) {
          const pages = browser.contexts().flatMap((c) => c.pages());
          if (pages.length > 0) {
            const file = path.join(screenshots, 'failure.png');
            await pages[0].screenshot({ path: file, fullPage: true });
            console.error(`screenshot of the failure: ${file}`);
          }
        }
      } catch (e) {
        // The failure is reported already.
      }
      await browser.close();
    }
    if (cluster) {
      // TaskManagers first: they would keep trying to reach a stopped JobManager.
      for (const p of cluster.processes.slice(1)) await stopProcess(p);
      await stopProcess(cluster.processes[0]);
    }
    if (!failed) fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

main();
