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
// Environment and exit status as harness.mjs (screenshots go to the
// artifacts' ppap/ folder); also 77 (skipped) without zip/unzip.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, check, daemonLog, inTmp, newPage, run, shot, sleep, startDaemon } from './harness.mjs';

const onPath = (tool) => process.env.PATH.split(':').some((d) => fs.existsSync(path.join(d, tool)));
if (!onPath('zip') || !onPath('unzip')) {
  console.log('SKIP: zip or unzip is missing (deploy/install-deps.sh)');
  process.exit(77);
}

const PASSWORD = 'Ppap-' + Math.random().toString(36).slice(2, 10);
const WRONG = 'wrong-' + Math.random().toString(36).slice(2, 8);
const CONTENT = '見積金額 1,234,000 円 (PPAP browser test)\n';

// The encrypted zip, made now (never a committed binary).
function encryptedZip() {
  fs.mkdirSync(inTmp('src'));
  fs.writeFileSync(inTmp('src', 'mitsumori.txt'), CONTENT);
  execFileSync('zip', ['-q', '-j', '-P', PASSWORD, inTmp('見積書.zip'), inTmp('src', 'mitsumori.txt')]);
  return fs.readFileSync(inTmp('見積書.zip'));
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

async function lgwan(browser, urls, id) {
  const page = await newPage(browser, 'lgwan');
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
}

await run('browser test of PPAP', async (browser) => {
  const urls = await startDaemon(['[ppap]', 'max_attempts = 3']);
  const id = await upload(urls, encryptedZip());
  await lgwan(browser, urls, id);
  const audit = fs.readFileSync(inTmp('audit.jsonl'), 'utf8');
  const log = daemonLog();
  check(!audit.includes(PASSWORD) && !audit.includes(WRONG) && !log.includes(PASSWORD) && !log.includes(WRONG),
        'no password in the audit log or the daemon log');
  const attempts = audit.split('\n').filter((l) => l.includes('"ppap.attempt"')).map((l) => JSON.parse(l).result);
  check(attempts.join(',') === 'wrong,ok', 'audited attempts: ' + attempts);
});
