#!/usr/bin/env node
// Browser tests of the drop box pages of `mukaika serve` in Debian's headless
// Chromium (/usr/bin/chromium), driven by playwright-core (issue 7):
//
//   Internet page: a wrong password shows the error; sign in as
//   demo-uploader, choose two files (a PDF with JavaScript and a PNG), pick
//   demo-staff, add a note, send; a <progress> per file reaches 100; the
//   receipt follows both files to 完了 with what was done.
//   LGWAN page: sign in as demo-staff; both files are in the inbox with
//   sender, note, verdict and report; the PDF's first-page thumbnail and
//   the PNG's thumbnail load; the PDF
//   downloads (sanitized: %PDF, no /JavaScript); 済にする marks it done.
//   English: ?lang=en shows the English page and English error.
//   Every page must load without script errors or CSP violations.
//
// Environment and exit status: see harness.mjs.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

import {
  ARTIFACTS, SAMPLES, check, eq, inTmp, newPage, run, shot, signIn, startDaemon, texts,
} from './harness.mjs';

// A real, small RGB PNG (a gradient), so the sanitizer re-encodes an image
// and the inbox has a thumbnail to show.
function makePng(width, height) {
  const table = new Int32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c;
  });
  const crc32 = (buf) => {
    let c = -1;
    for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;  // bit depth
  ihdr[9] = 2;  // RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = Math.round((255 * x) / width);
      raw[row + 2 + x * 3] = Math.round((255 * y) / height);
      raw[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// ------------------------------------------------------------------ steps

async function internetSide(browser, urls, files) {
  const page = await newPage(browser, 'internet');

  console.log('internet: wrong password shows the error');
  const bad = await signIn(page, urls.inet, 'demo-uploader', 'not-the-password');
  eq(bad.status(), 401, 'status of a wrong sign-in');
  eq(await page.getAttribute('html', 'lang'), 'ja', 'html lang by default');
  const err = await page.locator('p.error[role="alert"]').innerText();
  eq(err, 'アカウント名またはパスワードが違います', 'error on the page after a wrong password');
  await shot(page, 'internet-wrong-password');

  console.log('internet: sign in as demo-uploader');
  const ok = await signIn(page, urls.inet, 'demo-uploader', 'demo-uploader');
  eq(ok.status(), 200, 'status of the page after sign-in');
  eq(new URL(page.url()).pathname, '/', 'page after sign-in');
  eq(await page.locator('h1').innerText(), 'ファイルを送る', 'heading of the upload page');
  eq(await page.locator('header .who').innerText(), 'デモ送信者', 'header names who is signed in (display name)');
  const options = await page.locator('#recipient option').evaluateAll((os) => os.map((o) => o.value));
  check(options.includes('demo-staff'), `demo-staff is a recipient (options: ${options})`);

  console.log('internet: send nothing: the page says to choose a file');
  await page.click('#send');
  await page.locator('#upload-error').waitFor({ state: 'visible' });
  eq(await page.locator('#upload-error').innerText(), 'ファイルを選んでください', 'error when sending without files');

  console.log('internet: choose two files, pick demo-staff, add a note, send');
  await page.setInputFiles('#files', [files.pdf, files.png]);
  eq((await texts(page, '#progress li')).map((s) => s.trim()).join('|'),
     files.names.join('|'), 'chosen files listed before sending');
  await page.selectOption('#recipient', 'demo-staff');
  await page.fill('#note', files.note);
  await shot(page, 'internet-files-chosen');

  // Hold the navigation to the receipt until the progress bars were seen
  // (and photographed) at 100: the page leaves 400 ms after the uploads.
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/receipt?**', async (route) => {
    await held;
    await route.continue();
  });
  await page.click('#send');
  // Bars reach 100 when the bytes are sent; a file's state is written when
  // its answer arrives, a moment later: wait for both.
  await page.waitForFunction(() => {
    const bars = document.querySelectorAll('#progress li progress');
    const states = document.querySelectorAll('#progress li .state');
    return bars.length === 2 && Array.prototype.every.call(bars, (b) => b.value === 100 && b.max === 100) &&
           Array.prototype.every.call(states, (s) => s.textContent !== '');
  }, null, { timeout: 60000 });
  const states = await texts(page, '#progress li .state');
  eq(states.join('|'), '✓|✓', 'each file is marked as sent');
  await shot(page, 'internet-progress-100');
  release();
  await page.waitForURL(/\/receipt\?ids=[^,]+,[^,]+$/, { timeout: 30000 });
  await page.unroute('**/receipt?**');

  console.log('internet: the receipt follows both files to 完了');
  eq(await page.locator('h1').innerText(), '受付票', 'heading of the receipt');
  const rows = page.locator('#receipt tbody tr');
  eq(await rows.count(), 2, 'rows on the receipt');
  await shot(page, 'internet-receipt-queued');
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('#receipt tbody tr');
    return rows.length === 2 && Array.prototype.every.call(rows, (tr) =>
      tr.getAttribute('data-final') === '1' && tr.querySelectorAll('.report li').length > 0);
  }, null, { timeout: 120000 });
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const row = rows.nth(i);
    ids.push(await row.getAttribute('data-id'));
    const cells = await row.locator('td').allInnerTexts();
    eq(cells[0], files.names[i], `file name on receipt row ${i + 1}`);
    eq(cells[2], 'demo-staff', `recipient on receipt row ${i + 1}`);
    eq(await row.locator('.status').innerText(), '完了', `status of ${files.names[i]} on the receipt`);
    check(await row.locator('.status').evaluate((td) => td.classList.contains('status-done')), 'status cell styled as done');
  }
  const pdfReport = (await rows.nth(0).locator('.report li').allInnerTexts()).join('\n');
  check(pdfReport.length > 0, 'the PDF row says what was done');
  console.log('  PDF report: ' + pdfReport.replace(/\n/g, ' / '));
  console.log('  PNG report: ' + (await rows.nth(1).locator('.report li').allInnerTexts()).join(' / '));
  await shot(page, 'internet-receipt-done');
  await page.context().close();
  return ids;
}

async function lgwanSide(browser, urls, files, ids) {
  const page = await newPage(browser, 'lgwan');

  console.log('lgwan: an uploader has no inbox here');
  const refused = await signIn(page, urls.lgwan, 'demo-uploader', 'demo-uploader');
  eq(refused.status(), 403, 'status when an uploader signs in on the LGWAN side');

  console.log('lgwan: sign in as demo-staff');
  await signIn(page, urls.lgwan, 'demo-staff', 'demo-staff');
  eq(new URL(page.url()).pathname, '/', 'page after sign-in');
  eq(await page.locator('h1').innerText(), '受信箱', 'heading of the inbox');

  const rowOf = (id) => page.locator(`#inbox tbody tr[data-id="${id}"]`);
  eq(await page.locator('#inbox tbody tr').count(), 2, 'rows in the inbox');
  const [pdfRow, pngRow] = ids.map(rowOf);
  for (const [row, what] of [[pdfRow, 'PDF'], [pngRow, 'PNG']]) {
    const cells = await row.locator('td').allInnerTexts();
    eq(cells[2], 'demo-uploader', `sender of the ${what}`);
    eq(cells[3], files.note, `note of the ${what}`);
    check(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(cells[4]), `received time of the ${what}: ${cells[4]}`);
    check(['無害化済み', '問題なし'].includes(cells[5]), `verdict of the ${what}: ${cells[5]}`);
    check(await row.locator('a.download').isVisible(), `download link of the ${what}`);
  }
  eq(await pdfRow.locator('.verdict').innerText(), '無害化済み', 'verdict of the PDF with JavaScript');
  check((await pdfRow.locator('.report li').count()) > 0, 'the PDF row says what was done');
  check((await pdfRow.locator('td').nth(1).innerText()).includes(files.names[0]) ||
        (await pdfRow.locator('td').nth(1).innerText()).includes('元のファイル'), 'PDF row names the file');
  console.log('lgwan: the PDF\'s first-page thumbnail loads');
  const pdfImg = pdfRow.locator('.thumb img');
  eq(await pdfImg.count(), 1, 'a first-page thumbnail for the PDF');
  await pdfImg.scrollIntoViewIfNeeded();
  await page.waitForFunction((id) => {
    const i = document.querySelector(`#inbox tr[data-id="${id}"] .thumb img`);
    return i && i.complete && i.naturalWidth > 0;
  }, ids[0], { timeout: 30000 });
  eq(await pdfImg.evaluate((i) => Math.max(i.naturalWidth, i.naturalHeight)), 240, 'PDF thumbnail size (240 px)');

  console.log('lgwan: the image thumbnail loads');
  const img = pngRow.locator('.thumb img');
  eq(await img.count(), 1, 'a thumbnail for the PNG');
  await img.scrollIntoViewIfNeeded();
  await page.waitForFunction((id) => {
    const i = document.querySelector(`#inbox tr[data-id="${id}"] .thumb img`);
    return i && i.complete && i.naturalWidth > 0;
  }, ids[1], { timeout: 30000 });
  const size = await img.evaluate((i) => [i.naturalWidth, i.naturalHeight]);
  eq(size.join('x'), `${files.pngSize[0]}x${files.pngSize[1]}`, 'thumbnail size (the re-encoded image)');
  await shot(page, 'lgwan-inbox');

  console.log('lgwan: download the sanitized PDF');
  const [download] = await Promise.all([page.waitForEvent('download'), pdfRow.locator('a.download').click()]);
  const saved = path.join(ARTIFACTS, 'downloaded-' + download.suggestedFilename());
  await download.saveAs(saved);
  check(download.suggestedFilename().endsWith('.pdf'), `downloaded file name: ${download.suggestedFilename()}`);
  const bytes = fs.readFileSync(saved);
  eq(bytes.subarray(0, 5).toString('latin1'), '%PDF-', 'start of the downloaded file');
  for (const name of ['/JavaScript', '/OpenAction', '/Launch', '/EmbeddedFile'])
    check(!bytes.includes(name), `the downloaded PDF has no ${name}`);
  check(!bytes.equals(fs.readFileSync(files.pdf)), 'the downloaded PDF is not the original');
  console.log(`  ${download.suggestedFilename()}: ${bytes.length} bytes`);

  console.log('lgwan: 済にする marks the PDF done');
  const [done] = await Promise.all([page.waitForNavigation(), pdfRow.getByRole('button', { name: '済にする' }).click()]);
  eq(done.status(), 200, 'status of the inbox after marking done');
  eq(new URL(page.url()).pathname, '/', 'back on the inbox');
  check(await pdfRow.evaluate((tr) => tr.classList.contains('picked')), 'the PDF row is shown as picked up');
  eq(await pdfRow.locator('.done-mark').innerText(), '済', 'the PDF row says 済');
  eq(await pdfRow.getByRole('button', { name: '済にする' }).count(), 0, 'no 済にする button on a picked-up row');
  eq(await pngRow.getByRole('button', { name: '済にする' }).count(), 1, 'the PNG is still to be picked up');
  await shot(page, 'lgwan-marked-done');
  await page.context().close();
}

async function english(browser, urls) {
  const page = await newPage(browser, 'english');
  console.log('english: ?lang=en shows English, and the English error');
  await page.goto(urls.inet + '/signin?lang=en');
  eq(await page.getAttribute('html', 'lang'), 'en', 'html lang with ?lang=en');
  eq(await page.locator('h1').innerText(), 'Sign in', 'heading in English');
  eq(await page.locator('#signin').innerText(), 'Sign in', 'button in English');
  check((await page.locator('main').innerText()).includes('Internet-side file drop'), 'English text on the page');
  // The choice sticks (a cookie) through the form post.
  await page.fill('#name', 'demo-uploader');
  await page.fill('#password', 'wrong');
  const [bad] = await Promise.all([page.waitForNavigation(), page.click('#signin')]);
  eq(bad.status(), 401, 'status of a wrong sign-in');
  eq(await page.locator('p.error').innerText(), 'Wrong account name or password.', 'English error');
  await shot(page, 'english-wrong-password');
  await page.fill('#name', 'demo-uploader');
  await page.fill('#password', 'demo-uploader');
  await Promise.all([page.waitForNavigation(), page.click('#signin')]);
  eq(await page.locator('h1').innerText(), 'Send files', 'upload page in English');
  eq(await page.locator('#send').innerText(), 'Send', 'send button in English');
  await shot(page, 'english-upload-page');
  // And back to Japanese.
  await page.click('header a.lang');
  eq(await page.locator('h1').innerText(), 'ファイルを送る', 'upload page back in Japanese');
  await page.context().close();
}

// ------------------------------------------------------------------ main

async function main(browser) {
  const png = inTmp('地図.png');
  const pngSize = [120, 80];
  fs.writeFileSync(png, makePng(...pngSize));
  const pdf = inTmp('見積書.pdf');
  fs.copyFileSync(path.join(SAMPLES, 'files', 'active-content.pdf'), pdf);
  check(fs.readFileSync(pdf).includes('/JavaScript'), 'the sample PDF has JavaScript to remove');
  const files = { pdf, png, pngSize, names: ['見積書.pdf', '地図.png'], note: '至急: 見積と地図です' };

  const urls = await startDaemon();
  console.log(`chromium ${browser.version()}, internet ${urls.inet}, lgwan ${urls.lgwan}`);
  const ids = await internetSide(browser, urls, files);
  await lgwanSide(browser, urls, files, ids);
  await english(browser, urls);
}

run('browser tests of the drop box', main);
