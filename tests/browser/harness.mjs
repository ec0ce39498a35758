// Shared pieces of the browser tests (tests/browser/*.test.mjs): checks, a
// `mukaika serve` on free loopback ports in a temp dir, pages in Debian's
// headless Chromium that collect script errors and CSP violations,
// screenshots, sign-in.
//
// Environment: MUKAIKA_BIN (the binary, required), MUKAIKA_SAMPLES
// (samples/, default <repo>/samples), MUKAIKA_ARTIFACTS (screenshots and the
// daemon's log, in a folder named after the test, default
// <repo>/build/browser-artifacts), MUKAIKA_CHROMIUM
// (default /usr/bin/chromium), MUKAIKA_E2E_KEEP=1 keeps the temp dir.
// A test exits 0 passed, 1 failed, 77 skipped (no Chromium or no
// playwright-core: run `npm ci --prefix tests/browser`).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.dirname(path.dirname(HERE));
export const SAMPLES = process.env.MUKAIKA_SAMPLES || path.join(REPO, 'samples');
const BIN = process.env.MUKAIKA_BIN || '';
export const CHROMIUM = process.env.MUKAIKA_CHROMIUM || '/usr/bin/chromium';
// One folder per test script (release.test.mjs: <artifacts>/release), so tests may run side by side.
export const ARTIFACTS = path.join(path.resolve(process.env.MUKAIKA_ARTIFACTS || path.join(REPO, 'build', 'browser-artifacts')),
                                   path.basename(process.argv[1] || 'browser', '.test.mjs'));
const KEEP = process.env.MUKAIKA_E2E_KEEP === '1';

function skip(why) {
  console.log('SKIP: ' + why);
  process.exit(77);
}

// playwright-core's chromium, or exit 77 (skipped) / 1 (no binary).
export function loadChromium() {
  if (!BIN || !fs.existsSync(BIN)) {
    console.error('MUKAIKA_BIN is not set or not a file: ' + JSON.stringify(BIN));
    process.exit(1);
  }
  if (!fs.existsSync(CHROMIUM)) skip(CHROMIUM + ' is missing (apt-get install chromium; deploy/install-deps.sh does)');
  if (!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core')))
    skip('tests/browser/node_modules/playwright-core is missing (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser)');
  return createRequire(path.join(HERE, 'package.json'))('playwright-core').chromium;
}

export class Failure extends Error {}
export function check(cond, what) {
  if (!cond) throw new Failure(what);
}
export function eq(actual, expected, what) {
  if (actual !== expected) throw new Failure(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port });
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

// ------------------------------------------------------------------ daemon

export const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mukaika-browser-'));
export const inTmp = (...p) => path.join(tmp, ...p);
let daemon = null;
let daemonExit = null;

// `extra`: more configuration lines after the drop box's.
export async function startDaemon(extra = []) {
  const [smtp, inet, lgwan] = [await freePort(), await freePort(), await freePort()];
  const toml = (s) => JSON.stringify(s);  // a TOML basic string is close enough for these paths
  const config = [
    '[antivirus]', `database = ${toml(path.join(SAMPLES, 'clamav'))}`,
    '[smtp]', `listen = "127.0.0.1:${smtp}"`,
    '[relay]', `maildir = ${toml(inTmp('maildir'))}`,
    '[spool]', `dir = ${toml(inTmp('spool'))}`,
    '[quarantine]', `dir = ${toml(inTmp('quarantine'))}`,
    '[audit]', `log = ${toml(inTmp('audit.jsonl'))}`,
    '[http]', 'max_upload_bytes = 20971520', 'request_timeout_seconds = 10',
    '[http.internet]', `listen = "127.0.0.1:${inet}"`,
    '[http.lgwan]', `listen = "127.0.0.1:${lgwan}"`,
    '[dropbox]', `dir = ${toml(inTmp('dropbox'))}`,
    ...extra,
    '',
  ].join('\n');
  fs.writeFileSync(inTmp('mukaika.toml'), config);
  const log = fs.openSync(inTmp('daemon.log'), 'a');
  daemon = spawn(BIN, ['serve', '--config', inTmp('mukaika.toml')], { cwd: tmp, stdio: ['ignore', log, log] });
  daemon.on('exit', (code, signal) => { daemonExit = signal || code; });
  const deadline = Date.now() + 60000;
  for (;;) {
    if (daemonExit !== null) throw new Failure(`mukaika serve exited with ${daemonExit}:\n${daemonLog()}`);
    // SMTP binds after the HTTP listeners: wait for all three.
    if ((await canConnect(inet)) && (await canConnect(lgwan)) && (await canConnect(smtp))) break;
    if (Date.now() > deadline) throw new Failure('mukaika serve did not listen within 60 s');
    await sleep(200);
  }
  return { inet: `http://127.0.0.1:${inet}`, lgwan: `http://127.0.0.1:${lgwan}`, smtp };
}

export function daemonLog() {
  try { return fs.readFileSync(inTmp('daemon.log'), 'utf8'); } catch { return ''; }
}

async function stopDaemon() {
  if (!daemon || daemonExit !== null) return;
  const exited = new Promise((r) => daemon.once('exit', r));
  daemon.kill('SIGTERM');
  const t = setTimeout(() => daemon.kill('SIGKILL'), 30000);
  await exited;
  clearTimeout(t);
}

// ------------------------------------------------------------------ pages

export const problems = [];  // script errors and CSP violations seen on any page
let currentPage = null;  // photographed when a step fails

export async function newPage(browser, label) {
  // One context per zone and person, like different PCs: both listeners are
  // on 127.0.0.1 here and cookies do not tell ports apart.
  const context = await browser.newContext({ acceptDownloads: true, locale: 'ja-JP', viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  currentPage = page;
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => problems.push(`${label}: script error: ${e.message}`));
  page.on('console', (m) => {
    const text = m.text();
    const where = (m.location() && m.location().url) || '';
    // Expected: no favicon, the 401/403/429 of a refused sign-in and the
    // 422 of a wrong PPAP password.
    if (/^Failed to load resource/.test(text) && /\/(favicon\.ico|signin|password)$/.test(new URL(where || 'x:/').pathname)) return;
    if (m.type() === 'error' || /Content Security Policy/i.test(text)) problems.push(`${label}: console ${m.type()}: ${text} (${where})`);
  });
  return page;
}

let shotNo = 0;
export async function shot(page, name) {
  const file = path.join(ARTIFACTS, `${String(++shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log('  screenshot ' + path.relative(process.cwd(), file));
}

export async function signIn(page, base, name, password) {
  await page.goto(base + '/');
  check(new URL(page.url()).pathname === '/signin', `${base}/ without a session redirects to /signin, not ${page.url()}`);
  await page.fill('#name', name);
  await page.fill('#password', password);
  const [response] = await Promise.all([page.waitForNavigation(), page.click('#signin')]);
  return response;
}

export const texts = (page, sel) => page.locator(sel).allInnerTexts();

// Runs `main` (which gets the browser), then reports, stops the daemon, keeps
// the artifacts and exits with the status.
export async function run(title, main) {
  const chromium = loadChromium();
  let status = 0;
  try {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of fs.readdirSync(ARTIFACTS)) fs.rmSync(path.join(ARTIFACTS, f), { recursive: true, force: true });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      await main(browser);
    } catch (e) {
      if (currentPage && !currentPage.isClosed()) await shot(currentPage, 'failure').catch(() => {});
      throw e;
    } finally {
      await browser.close();
    }
    check(problems.length === 0, 'script errors or CSP violations:\n  ' + problems.join('\n  '));
    console.log('PASS: ' + title);
  } catch (e) {
    status = 1;
    console.error('FAIL: ' + (e instanceof Failure ? e.message : e.stack || e));
    if (problems.length) console.error('also seen:\n  ' + problems.join('\n  '));
  } finally {
    await stopDaemon();
    try { fs.copyFileSync(inTmp('daemon.log'), path.join(ARTIFACTS, 'daemon.log')); } catch { /* no log */ }
    if (status) console.error('daemon log (also in artifacts):\n' + daemonLog().split('\n').slice(-40).join('\n'));
    if (KEEP) console.error('kept ' + tmp);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(status);
}
