#!/usr/bin/env node
// Browser tests of the release of originals with approval (原本取り出し,
// issue 8) in Debian's headless Chromium, driven by playwright-core:
//
//   Three files reach demo-staff's inbox over the REST API: two clean ones
//   and one with the EICAR test signature (blocked, infected).
//   LGWAN, demo-staff: requests the original of the first file with a
//   reason (the row then says 承認待ち), of the second too, and tries the
//   infected one: refused at once, the row says so, and no approver ever
//   sees it as pending.
//   LGWAN, demo-approver: sees both pending requests with the reasons and
//   the reports, approves the first with a comment, rejects the second.
//   LGWAN, demo-staff: /requests shows approved (and where to download) and
//   rejected with the comment.
//   Internet, demo-staff: /originals lists the approved original; the
//   download is the original's bytes, as an attachment.
//   Every page must load without script errors or CSP violations.
//
// Environment and exit status: see harness.mjs.
import fs from 'node:fs';
import path from 'node:path';

import {
  ARTIFACTS, check, eq, inTmp, newPage, run, shot, signIn, sleep, startDaemon, texts,
} from './harness.mjs';

const TOKEN = 'demo-token';
// EICAR, split so that no scanner flags this file.
const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

async function upload(urls, name, bytes) {
  const form = new FormData();
  form.append('recipient', 'demo-staff');
  form.append('file', new Blob([bytes]), name);
  const r = await fetch(urls.inet + '/api/v1/files', { method: 'POST', body: form, headers: { Authorization: 'Bearer ' + TOKEN } });
  eq(r.status, 202, `upload of ${name}`);
  const { id } = await r.json();
  for (const deadline = Date.now() + 120000; Date.now() < deadline; await sleep(300)) {
    const s = await (await fetch(`${urls.inet}/api/v1/files/${id}`, { headers: { Authorization: 'Bearer ' + TOKEN } })).json();
    if (!['queued', 'processing'].includes(s.status)) return s;
  }
  throw new Error(`${name} was not processed within 120 s`);
}

function audit(type) {
  return fs.readFileSync(inTmp('audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((a) => a.type === type);
}

async function requestOriginal(page, id, reason) {
  const row = page.locator(`#inbox tbody tr[data-id="${id}"]`);
  await row.locator('input.release-reason').fill(reason);
  const [response] = await Promise.all([page.waitForNavigation(), row.locator('button.release-request').click()]);
  eq(response.status(), 200, 'the inbox after a request');
  return row;
}

async function main(browser) {
  const urls = await startDaemon(['[release]', `dir = ${JSON.stringify(inTmp('releases'))}`]);
  console.log(`internet ${urls.inet}, lgwan ${urls.lgwan}`);
  const original = Buffer.concat([Buffer.from('契約書の原本\r\n', 'utf8'), Buffer.from([0, 1, 2, 250, 251, 252])]);
  const kept = await upload(urls, '契約書.txt', original);
  const second = await upload(urls, '名簿.csv', Buffer.from('氏名,所属\r\n山田,総務課\r\n', 'utf8'));
  const infected = await upload(urls, 'eicar.com', Buffer.from(EICAR, 'latin1'));
  eq(infected.status, 'blocked', 'the EICAR file is blocked');
  check(JSON.stringify(infected.report).includes('virus'), 'the EICAR report names a virus');

  console.log('lgwan staff: request the original of 契約書.txt with a reason');
  const staff = await newPage(browser, 'lgwan-staff');
  await signIn(staff, urls.lgwan, 'demo-staff', 'demo-staff');
  eq(await staff.locator('h1').innerText(), '受信箱', 'heading of the inbox');
  check((await texts(staff, 'nav.pages a')).includes('原本の申請'), 'the inbox links to the requests page');
  let row = await requestOriginal(staff, kept.id, '取引先との照合に原本が必要なため');
  eq(await staff.locator('#flash').innerText(), '原本を申請しました。承認を待っています。', 'flash after the request');
  eq(await row.locator('.release-state').innerText(), '原本: 承認待ち', 'state on the row');
  eq(await row.locator('button.release-request').count(), 0, 'no second request while one is pending');
  await requestOriginal(staff, second.id, '念のため');

  console.log('lgwan staff: the infected original is refused at once');
  row = await requestOriginal(staff, infected.id, 'どうしても必要');
  eq(await staff.locator('#flash').innerText(), 'ウイルスが検出された原本は取り出せません。申請は記録されました。',
     'flash after an infected request');
  eq(await row.locator('.release-state').innerText(), '原本: 取り出し不可 (ウイルス)', 'state of the infected row');
  eq(audit('release.refused').length, 1, 'the refusal is audited');
  eq(await row.locator('button.release-request').count(), 0, 'a refusal is final: no request form');
  await shot(staff, 'lgwan-staff-requested');

  console.log('lgwan approver: pending requests with reasons and reports');
  const approver = await newPage(browser, 'lgwan-approver');
  await signIn(approver, urls.lgwan, 'demo-approver', 'demo-approver');
  eq(new URL(approver.url()).pathname, '/approvals', 'an approver lands on the approvals');
  const pending = approver.locator('#approvals tbody tr');
  eq(await pending.count(), 2, 'two pending requests (the infected one is not pending)');
  const reqOf = (name) => approver.locator('#approvals tbody tr', { hasText: name });
  const first = reqOf('契約書.txt');
  check((await first.innerText()).includes('取引先との照合に原本が必要なため'), 'the reason is shown');
  check((await first.locator('.verdict').innerText()).length > 0, 'the verdict is shown');
  await shot(approver, 'lgwan-approvals');
  await first.locator('input.comment').fill('業務上必要と認めます');
  await Promise.all([approver.waitForNavigation(), first.locator('button.approve').click()]);
  eq(await approver.locator('#flash').innerText(), '承認しました。申請者に通知しました。', 'flash after approving');
  const other = reqOf('名簿.csv');
  await other.locator('input.comment').fill('無害化済みのファイルで足ります');
  await Promise.all([approver.waitForNavigation(), other.locator('button.reject').click()]);
  eq(await approver.locator('#approvals tbody tr').count(), 0, 'nothing pending any more');
  eq(await approver.locator('#decided tbody tr').count(), 3, 'three decisions listed (with the refusal)');
  await shot(approver, 'lgwan-approvals-decided');

  console.log('lgwan staff: /requests shows both decisions');
  await staff.goto(urls.lgwan + '/requests');
  const approvedRow = staff.locator('#requests tbody tr', { hasText: '契約書.txt' });
  eq(await approvedRow.locator('.release-state').innerText(), '原本: 承認済み', 'approved state');
  check((await approvedRow.innerText()).includes(urls.inet + '/originals'), 'where to download is named');
  const rejectedRow = staff.locator('#requests tbody tr', { hasText: '名簿.csv' });
  eq(await rejectedRow.locator('.release-state').innerText(), '原本: 却下', 'rejected state');
  eq(await rejectedRow.locator('.release-comment').innerText(), '無害化済みのファイルで足ります', 'the rejection comment');
  await shot(staff, 'lgwan-staff-requests');
  await staff.goto(urls.lgwan + '/requests?lang=en');
  eq(await staff.locator('h1').innerText(), 'My requests for originals', 'the requests page in English');
  eq(await staff.locator('#requests tbody tr', { hasText: '契約書.txt' }).locator('.release-state').innerText(),
     'original: approved', 'approved state in English');
  await staff.goto(urls.lgwan + '/requests?lang=ja');

  console.log('internet staff: download the approved original');
  const inet = await newPage(browser, 'internet-staff');
  await signIn(inet, urls.inet, 'demo-staff', 'demo-staff');
  eq(new URL(inet.url()).pathname, '/originals', 'a recipient lands on the originals');
  const rows = inet.locator('#originals tbody tr');
  eq(await rows.count(), 1, 'one original to download');
  check(!(await inet.locator('main').innerText()).includes('取引先との照合'), 'the LGWAN request text is not shown here');
  await shot(inet, 'internet-originals');
  const [download] = await Promise.all([inet.waitForEvent('download'), rows.first().locator('a.download').click()]);
  const saved = path.join(ARTIFACTS, 'original-' + download.suggestedFilename());
  await download.saveAs(saved);
  eq(download.suggestedFilename(), '契約書.txt', 'the original keeps its name');
  check(fs.readFileSync(saved).equals(original), 'the download is the original, byte for byte');
  eq(audit('release.downloaded').length, 1, 'the download is audited');

  console.log('lgwan auditor: every step is on the audit page');
  const auditor = await newPage(browser, 'lgwan-auditor');
  await signIn(auditor, urls.lgwan, 'demo-auditor', 'demo-auditor');
  eq(new URL(auditor.url()).pathname, '/audit', 'an auditor lands on the audit log');
  const types = await texts(auditor, '#audit tbody tr td:nth-child(2)');
  for (const t of ['release.requested', 'release.refused', 'release.approved', 'release.rejected', 'release.downloaded'])
    check(types.includes(t), `${t} on the audit page (types: ${[...new Set(types)].join(', ')})`);
  await shot(auditor, 'lgwan-audit');
  for (const p of [staff, approver, inet, auditor]) await p.context().close();
}

run('browser tests of the release of originals', main);
