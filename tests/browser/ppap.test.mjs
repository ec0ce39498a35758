#!/usr/bin/env node
// Browser test of PPAP (issue 8) in Debian's headless Chromium, driven by
// playwright-core, against the real `mukaika serve`:
//
//   A password-protected zip (made here with `zip -P`) is uploaded for
//   demo-staff; the upload is held. On the LGWAN side the inbox offers
//   "パスワードを入力"; a wrong password shows the error with the count and
//   the form again (the password not echoed); "add another password" adds
//   a field in place (app.js); the right one among two opens it: the
//   inbox then offers the sanitized zip, whose member is the original text.
//   The English page says "Enter the password". No script errors or CSP
//   violations on any page.
//
// Environment as dropbox.test.mjs: MUKAIKA_BIN (required), MUKAIKA_SAMPLES,
// MUKAIKA_ARTIFACTS (screenshots go to its ppap/ folder), MUKAIKA_CHROMIUM,
// MUKAIKA_E2E_KEEP=1. Exit status: 0 passed, 1 failed, 77 skipped (no
// Chromium, no playwright-core, no zip/unzip).
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// Where things are: the same environment variables as dropbox.test.mjs.
const env = process.env;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SAMPLES = env.MUKAIKA_SAMPLES || path.join(HERE, '..', '..', 'samples');
const [BIN, CHROMIUM] = [env.MUKAIKA_BIN || '', env.MUKAIKA_CHROMIUM || '/usr/bin/chromium'];
const ARTIFACTS = path.join(path.resolve(env.MUKAIKA_ARTIFACTS || path.join(HERE, '..', '..', 'build', 'browser-artifacts')), 'ppap');
const onPath = (tool) => process.env.PATH.split(':').some((d) => fs.existsSync(path.join(d, tool)));

if (!BIN || !fs.existsSync(BIN)) {
  console.error('MUKAIKA_BIN is not set or not a file: ' + JSON.stringify(BIN));
  process.exit(1);
}
for (const [missing, why] of [
  [!fs.existsSync(CHROMIUM), CHROMIUM + ' is missing (deploy/install-deps.sh installs chromium)'],
  [!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core')), 'playwright-core is missing (npm ci --prefix tests/browser)'],
  [!onPath('zip') || !onPath('unzip'), 'zip or unzip is missing (deploy/install-deps.sh)'],
]) {
  if (missing) {
    console.log('SKIP: ' + why);
    process.exit(77);
  }
}
const { chromium } = createRequire(path.join(HERE, 'package.json'))('playwright-core');

class Failure extends Error {}
const check = (cond, what) => { if (!cond) throw new Failure(what); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PASSWORD = 'Ppap-' + Math.random().toString(36).slice(2, 10);
const WRONG = 'wrong-' + Math.random().toString(36).slice(2, 8);
const CONTENT = '見積金額 1,234,000 円 (PPAP browser test)\n';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mukaika-ppap-browser-'));
const at = (...p) => path.join(tmp, ...p);
let daemon = null;
let exited = null;

const port = () => new Promise((resolve, reject) => {
  const s = net.createServer().once('error', reject);
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const listening = (p) => new Promise((resolve) => {
  const c = net.connect({ host: '127.0.0.1', port: p });
  c.once('connect', () => { c.destroy(); resolve(true); }).once('error', () => resolve(false));
});
const log = () => { try { return fs.readFileSync(at('daemon.log'), 'utf8'); } catch { return ''; } };

async function serve() {
  const [smtp, inet, lgwan] = [await port(), await port(), await port()];
  const q = JSON.stringify;
  fs.writeFileSync(at('mukaika.toml'), `[antivirus]\ndatabase = ${q(path.join(SAMPLES, 'clamav'))}
[smtp]\nlisten = "127.0.0.1:${smtp}"\n[relay]\nmaildir = ${q(at('maildir'))}\n[spool]\ndir = ${q(at('spool'))}
[quarantine]\ndir = ${q(at('quarantine'))}\n[audit]\nlog = ${q(at('audit.jsonl'))}
[http.internet]\nlisten = "127.0.0.1:${inet}"\n[http.lgwan]\nlisten = "127.0.0.1:${lgwan}"
[dropbox]\ndir = ${q(at('dropbox'))}\n[ppap]\nmax_attempts = 3\n`);
  const out = fs.openSync(at('daemon.log'), 'a');
  daemon = spawn(BIN, ['serve', '--config', at('mukaika.toml')], { cwd: tmp, stdio: ['ignore', out, out] });
  daemon.on('exit', (code, signal) => { exited = signal || code; });
  for (const until = Date.now() + 60000; !((await listening(inet)) && (await listening(lgwan)) && (await listening(smtp)));) {
    check(exited === null, `mukaika serve exited with ${exited}:\n${log()}`);
    check(Date.now() < until, 'mukaika serve did not listen within 60 s');
    await sleep(200);
  }
  return { inet: `http://127.0.0.1:${inet}`, lgwan: `http://127.0.0.1:${lgwan}` };
}

// The encrypted zip, made now (never a committed binary).
function encryptedZip() {
  fs.mkdirSync(at('src'));
  fs.writeFileSync(at('src', 'mitsumori.txt'), CONTENT);
  execFileSync('zip', ['-q', '-j', '-P', PASSWORD, at('見積書.zip'), at('src', 'mitsumori.txt')]);
  return fs.readFileSync(at('見積書.zip'));
}

async function upload(urls, zip) {
  const form = new FormData();
  form.append('recipient', 'demo-staff');
  form.append('file', new Blob([zip], { type: 'application/zip' }), '見積書.zip');
  const r = await fetch(urls.inet + '/api/v1/files', { method: 'POST', body: form, headers: { Authorization: 'Bearer demo-token' } });
  check(r.status === 202, `upload answered ${r.status}`);
  const { id } = await r.json();
  for (const until = Date.now() + 60000; ;) {
    const s = await (await fetch(`${urls.inet}/api/v1/files/${id}`, { headers: { Authorization: 'Bearer demo-token' } })).json();
    if (s.status === 'blocked') return id;
    check(!['done', 'failed'].includes(s.status), `the encrypted zip should be held, is ${s.status}`);
    check(Date.now() < until, 'the upload was not processed within 60 s');
    await sleep(200);
  }
}

const problems = [];
let shots = 0;
async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${String(++shots).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function lgwan(browser, urls, id) {
  const context = await browser.newContext({ acceptDownloads: true, locale: 'ja-JP' });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('pageerror', (e) => problems.push('script error: ' + e.message));
  page.on('console', (m) => {
    const where = new URL((m.location() && m.location().url) || 'x:/').pathname;
    // The 422 of a wrong password is the page's answer, not a problem.
    if (/^Failed to load resource/.test(m.text()) && /\/(favicon\.ico|password)$/.test(where)) return;
    if (m.type() === 'error' || /Content Security Policy/i.test(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
  });
  try {
    console.log('lgwan: sign in as demo-staff; the held zip offers the password form');
    await page.goto(urls.lgwan + '/signin');
    await page.fill('#name', 'demo-staff');
    await page.fill('#password', 'demo-staff');
    await Promise.all([page.waitForNavigation(), page.click('#signin')]);
    const row = page.locator(`#inbox tbody tr[data-id="${id}"]`);
    check((await row.locator('.verdict').innerText()).length > 0, 'the held row shows a verdict');
    check(await row.locator('a.ppap-open').isVisible(), 'the held row offers パスワードを入力');
    check((await row.locator('a.ppap-open').innerText()) === 'パスワードを入力', 'link text');
    check((await row.locator('a.download').count()) === 0, 'nothing to download while held');
    await shot(page, 'inbox-held');

    await Promise.all([page.waitForNavigation(), row.locator('a.ppap-open').click()]);
    check(new URL(page.url()).pathname === `/files/${id}/password`, 'on the password page');
    check((await page.locator('#ppap-name').innerText()) === '見積書.zip', 'the page names the file');
    check((await page.locator('#ppap-attempts').innerText()).includes('あと 3 回'), 'attempts left before any');

    console.log('lgwan: a wrong password shows the error with the count');
    await page.fill('#ppap-password', WRONG);
    const [bad] = await Promise.all([page.waitForNavigation(), page.click('#ppap-submit')]);
    check(bad.status() === 422, `a wrong password answers 422, not ${bad.status()}`);
    const error = await page.locator('#ppap-error').innerText();
    check(error.includes('パスワードが違います') && error.includes('1 回目') && error.includes('あと 2 回'), 'error: ' + error);
    check((await page.inputValue('#ppap-password')) === '', 'the password field is empty again');
    check(!(await page.content()).includes(WRONG), 'the wrong password is not echoed into the page');
    await shot(page, 'wrong-password');

    console.log('lgwan: "add another password" adds a field in place; the right one among two opens it');
    await page.fill('#ppap-password', PASSWORD);
    const before = page.url();
    await page.click('#ppap-add');
    await page.locator('#ppap-password-2').waitFor();
    check(page.url() === before, 'adding a field does not leave the page');
    check((await page.inputValue('#ppap-password')) === PASSWORD, 'what was typed stays when a field is added');
    check((await page.inputValue('#ppap-fields')) === '2', 'the form says it has two fields');
    await page.fill('#ppap-password-2', 'another-' + WRONG);
    await shot(page, 'two-passwords');
    // Enter in a field opens (the form's first button), it does not add another field.
    const [good] = await Promise.all([page.waitForNavigation(), page.press('#ppap-password-2', 'Enter')]);
    check(good.status() === 200 && new URL(page.url()).pathname === '/', `back on the inbox, not ${page.url()}`);
    check(await row.locator('a.download').isVisible(), 'the opened zip can be downloaded');
    check((await row.locator('a.ppap-open').count()) === 0, 'no password form any more');
    await shot(page, 'inbox-opened');
    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('a.download').click()]);
    const saved = path.join(ARTIFACTS, 'downloaded.zip');
    await download.saveAs(saved);
    const member = execFileSync('unzip', ['-p', saved, 'mitsumori.txt']).toString('utf8');
    check(member === CONTENT, 'the downloaded zip holds the original text: ' + JSON.stringify(member));
    check(!/security status:\s+encrypted/.test(execFileSync('unzip', ['-Z', '-v', saved]).toString()), 'the download is not encrypted');

    console.log('lgwan: the page in English');
    await page.goto(`${urls.lgwan}/files/${id}/password?lang=en`);
    check((await page.locator('h1').innerText()) === 'Enter the password', 'English heading');
    await shot(page, 'english');
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

let status = 0;
try {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const urls = await serve();
  const id = await upload(urls, encryptedZip());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    await lgwan(browser, urls, id);
  } finally {
    await browser.close();
  }
  check(problems.length === 0, 'script errors or CSP violations:\n  ' + problems.join('\n  '));
  const audit = fs.readFileSync(at('audit.jsonl'), 'utf8');
  check(!audit.includes(PASSWORD) && !audit.includes(WRONG) && !log().includes(PASSWORD) && !log().includes(WRONG),
        'no password in the audit log or the daemon log');
  const attempts = audit.split('\n').filter((l) => l.includes('"ppap.attempt"')).map((l) => JSON.parse(l).result);
  check(attempts.join(',') === 'wrong,ok', 'audited attempts: ' + attempts);
  console.log('PASS: browser test of PPAP');
} catch (e) {
  status = 1;
  console.error('FAIL: ' + (e instanceof Failure ? e.message : e.stack || e));
  console.error('daemon log:\n' + log().split('\n').slice(-30).join('\n'));
} finally {
  if (daemon && exited === null) {
    const gone = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await gone;
  }
  if (process.env.MUKAIKA_E2E_KEEP === '1') console.error('kept ' + tmp);
  else fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);
