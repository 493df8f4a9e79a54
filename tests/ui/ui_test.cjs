// Freshet's web UI in a real browser: playwright-core drives Debian's
// chromium against a `freshet jobmanager` with one in-process TaskManager.
// The job (tests/deploy/jobs/ticker_job.cc) is uploaded and started through
// the Submit page; then every page must load without console errors or
// failed requests, the graph must show the plan's vertices, the records
// figures must grow between polls, a savepoint must complete with a path on
// disk and cancel must end the job CANCELED. Screenshots of every page are
// written under FRESHET_UI_WORK_DIR/screenshots.
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

/** Starts `freshet jobmanager` in `dir`; resolves with { process, url } once it prints its REST endpoint. */
function startJobManager(dir) {
  const args = ['jobmanager', '-D', 'rest.port=0', '-D', 'jobmanager.rpc.port=0', '-D', 'taskmanager.local.count=1',
    '-D', 'taskmanager.numberOfTaskSlots=4', '-D', `env.log.dir=${path.join(dir, 'log')}`];
  const child = spawn(cli, args, { cwd: dir, stdio: ['ignore', 'pipe', fs.openSync(path.join(dir, 'jobmanager.err'), 'w')] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the JobManager printed no REST endpoint in ${WAIT_MS} ms: ${out}`)), WAIT_MS);
    child.on('exit', (code) => reject(new Error(`the JobManager exited (${code}) before it served: ${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /REST endpoint: http:\/\/[^:\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        // It binds 127.0.0.1; "localhost" could resolve to ::1 first.
        resolve({ process: child, url: `http://127.0.0.1:${m[1]}` });
      }
    });
  });
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
  let jobManager = null;
  let browser = null;
  let failed = false;
  try {
    jobManager = await startJobManager(dir);
    const base = jobManager.url;
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
    const overviewApi = await rest('/overview');
    check(overviewApi.status === 200 && JSON.parse(overviewApi.body)['slots-total'] === 4, `GET /overview: ${overviewApi.body}`);

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
    await page.waitForFunction(() => document.getElementById('tm-count')?.textContent === '1');
    check(await text('#slots-total') === '4', `slots total: ${await text('#slots-total')}`);
    check(await text('#slots-free') === '4', `slots free: ${await text('#slots-free')}`);
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
    await page.fill('#job-settings', `execution.checkpointing.interval: 500 ms\nstate.checkpoints.dir: ${path.join(dir, 'checkpoints')}`);
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
    await shot('checkpoints');

    // TaskManagers: the list, then one with its charts and log.
    await go('#/taskmanagers', 'renderTaskManagers');
    await page.waitForSelector('table.taskmanagers tbody tr a');
    check(await page.locator('table.taskmanagers tbody tr').count() === 1, 'one TaskManager expected');
    await shot('taskmanagers');
    await page.click('table.taskmanagers tbody tr a');
    await page.waitForFunction(() => document.getElementById('view').dataset.page === 'renderTaskManager');
    await page.waitForFunction(() => Number(document.getElementById('tm-cpu-chart')?.dataset.points) >= 3);
    await page.waitForFunction(() => document.getElementById('log-text')?.textContent.includes('JobManager started'));
    await shot('taskmanager');

    // JobManager: configuration and log.
    await go('#/jobmanager', 'renderJobManager');
    await page.waitForSelector('#jm-config >> text=taskmanager.numberOfTaskSlots');
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

    // Back on the overview the jobs are listed as they ended.
    await go('#/overview', 'renderOverview');
    await page.waitForFunction(() => document.getElementById('jobs-cancelled')?.textContent === '1' &&
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
    const err = path.join(dir, 'jobmanager.err');
    if (fs.existsSync(err)) console.error(`--- jobmanager.err (tail) ---\n${fs.readFileSync(err, 'utf8').slice(-1500)}`);
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
    if (jobManager) {
      jobManager.process.removeAllListeners('exit');
      const exited = new Promise((resolve) => jobManager.process.once('exit', resolve));
      jobManager.process.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20000))]);
      if (jobManager.process.exitCode === null && jobManager.process.signalCode === null) jobManager.process.kill('SIGKILL');
    }
    if (!failed) fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

main();
