#include "http/pages.h"

#include <sstream>

#include "queue/durable_io.h"

namespace mukaika::http::pages {

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string human_size(std::uint64_t n) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  if (n < 1024) s << n << " B";
  else if (n < 1024 * 1024) s << n / 1024.0 << " KB";
  else s << n / (1024.0 * 1024.0) << " MB";
  return s.str();
}

const char* status_label(Lang t, ItemStatus s) {
  switch (s) {
    case ItemStatus::Queued: return t("受付済み", "queued");
    case ItemStatus::Processing: return t("無害化中", "sanitizing");
    case ItemStatus::Done: return t("完了", "done");
    case ItemStatus::Blocked: return t("遮断", "blocked");
    case ItemStatus::Failed: return t("処理できず", "failed");
  }
  return "";
}

}  // namespace

std::string layout(Lang t, const std::string& title, const std::string& who, const std::string& csrf,
                   const std::string& zone_label, const std::string& body, const std::string& page_id) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"" << (t.en ? "en" : "ja") << "\">\n<head>\n<meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<meta name=\"csrf\" content=\"" << escape(csrf) << "\">\n"
    << "<title>" << escape(title) << " — mukaika</title>\n"
    << "<link rel=\"stylesheet\" href=\"/static/style.css\">\n"
    << "<script src=\"/static/app.js\" defer></script>\n</head>\n<body data-page=\"" << page_id << "\" data-lang=\""
    << (t.en ? "en" : "ja") << "\">\n<header><span class=\"brand\">mukaika 無害化</span><span class=\"zone\">"
    << escape(zone_label) << "</span>";
  if (!who.empty())
    h << "<form method=\"post\" action=\"/signout\" class=\"signout\"><span class=\"who\">" << escape(who)
      << "</span><input type=\"hidden\" name=\"csrf\" value=\"" << escape(csrf) << "\"><button type=\"submit\">"
      << t("サインアウト", "Sign out") << "</button></form>";
  h << "<a class=\"lang\" href=\"?lang=" << (t.en ? "ja" : "en") << "\">" << (t.en ? "日本語" : "English") << "</a>"
    << "</header>\n<main>\n<h1>" << escape(title) << "</h1>\n"
    << body << "</main>\n</body>\n</html>\n";
  return h.str();
}

const char* verdict_label(Lang t, const std::string& v) {
  if (v == "clean") return t("問題なし", "clean");
  if (v == "sanitized") return t("無害化済み", "sanitized");
  if (v == "blocked") return t("遮断", "blocked");
  if (v == "failed") return t("処理できず", "failed");
  return "";
}

std::vector<std::string> report_lines(const DropItem& item) { return report_lines(item.report, item.reason, item.name); }

std::vector<std::string> report_lines(const nlohmann::json& report, const std::string& reason_for_all,
                                      const std::string& name) {
  std::vector<std::string> lines;
  if (!reason_for_all.empty()) lines.push_back(reason_for_all);
  if (!report.is_object() || !report.contains("actions") || !report["actions"].is_array()) return lines;
  for (const auto& a : report["actions"]) {
    if (!a.is_object()) continue;
    const std::string action = a.value("action", "");
    if (action == "note" && a.value("code", "") == "pdf.pages") continue;  // bytes per page: for the audit, not people
    std::string reason = a.value("reason", "");
    if (reason.empty()) continue;
    const std::string path = a.value("path", "");
    if (!path.empty() && path != name && path.find('/') != std::string::npos) reason = path + ": " + reason;
    if (std::find(lines.begin(), lines.end(), reason) == lines.end()) lines.push_back(reason);
  }
  return lines;
}

std::string sign_in(Lang t, bool lgwan, const std::string& csrf, const std::string& error, const std::string& notice) {
  std::ostringstream b;
  b << "<p>" << (lgwan ? t("LGWAN 側の受信箱です。届いたファイルは無害化済みです。",
                           "This is the LGWAN-side inbox. Files here have been sanitized.")
                       : t("インターネット側のファイル受付です。送ったファイルは無害化してから LGWAN 側へ渡します。",
                           "This is the Internet-side file drop. Files you send are sanitized before they reach the LGWAN zone."))
    << "</p>\n";
  if (!error.empty()) b << "<p class=\"error\" role=\"alert\">" << escape(error) << "</p>\n";
  if (!notice.empty()) b << "<p class=\"notice\">" << escape(notice) << "</p>\n";
  b << "<form method=\"post\" action=\"/signin\" class=\"signin\">\n"
    << "<input type=\"hidden\" name=\"csrf\" value=\"" << escape(csrf) << "\">\n"
    << "<label>" << t("アカウント名", "Account") << " <input name=\"name\" id=\"name\" autocomplete=\"username\" required></label>\n"
    << "<label>" << t("パスワード", "Password")
    << " <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\n"
    << "<button type=\"submit\" id=\"signin\">" << t("サインイン", "Sign in") << "</button>\n</form>\n";
  return layout(t, t("サインイン", "Sign in"), "", "", lgwan ? t("LGWAN 接続系", "LGWAN zone") : t("インターネット接続系", "Internet zone"),
                b.str(), "signin");
}

std::string upload(Lang t, const std::string& who, const std::vector<Recipient>& recipients, const std::string& csrf,
                   std::uint64_t max_bytes) {
  std::ostringstream b;
  b << "<p>" << t("ファイルを選ぶか、ここに落としてください。宛先を選んで送ると、無害化してから LGWAN 側の受信箱に届きます。",
                  "Choose files or drop them here. Pick the recipient and send: they are sanitized, then delivered to the LGWAN-side inbox.")
    << "</p>\n<form id=\"upload-form\" data-max-bytes=\"" << max_bytes << "\">\n"
    << "<div id=\"drop\" class=\"drop\" tabindex=\"0\">" << t("ここにファイルをドラッグ＆ドロップ", "Drag and drop files here")
    << "<br><input type=\"file\" id=\"files\" name=\"file\" multiple></div>\n"
    << "<label>" << t("宛先", "Recipient") << " <select id=\"recipient\" name=\"recipient\" required>\n";
  for (const auto& r : recipients)
    b << "<option value=\"" << escape(r.value) << "\">" << escape(r.label) << "</option>\n";
  b << "</select></label>\n<label>" << t("メモ", "Note") << " <textarea id=\"note\" name=\"note\" maxlength=\"500\" rows=\"3\"></textarea></label>\n"
    << "<button type=\"submit\" id=\"send\">" << t("送信", "Send") << "</button>\n</form>\n"
    << "<ul id=\"progress\" class=\"progress\"></ul>\n"
    << "<p id=\"upload-error\" class=\"error\" role=\"alert\" hidden></p>\n"
    << "<template id=\"msg\" data-too-large=\"" << escape(t("大きすぎるファイルです", "file too large"))
    << "\" data-failed=\"" << escape(t("送れませんでした", "upload failed")) << "\" data-none=\""
    << escape(t("ファイルを選んでください", "choose at least one file")) << "\"></template>\n";
  return layout(t, t("ファイルを送る", "Send files"), who, csrf, t("インターネット接続系", "Internet zone"), b.str(), "upload");
}

std::string receipt(Lang t, const std::string& who, const std::vector<DropItem>& items, const std::string& csrf) {
  std::ostringstream b;
  b << "<p>" << t("受け付けました。無害化の状況はこの画面で自動的に更新されます。",
                  "Received. The status below updates by itself while the files are sanitized.")
    << "</p>\n<table class=\"items\" id=\"receipt\">\n<thead><tr><th>" << t("ファイル", "File") << "</th><th>"
    << t("大きさ", "Size") << "</th><th>" << t("宛先", "Recipient") << "</th><th>" << t("状態", "Status") << "</th><th>"
    << t("処理内容", "What was done") << "</th></tr></thead>\n<tbody>\n";
  for (const auto& i : items) {
    b << "<tr data-id=\"" << i.id << "\" data-final=\""
      << (i.status == ItemStatus::Queued || i.status == ItemStatus::Processing ? "0" : "1") << "\"><td>" << escape(i.name)
      << "</td><td>" << human_size(i.size) << "</td><td>" << escape(i.recipient) << "</td><td class=\"status status-"
      << to_string(i.status) << "\">" << status_label(t, i.status) << "</td><td class=\"report\"><ul>";
    for (const auto& line : report_lines(i)) b << "<li>" << escape(line) << "</li>";
    b << "</ul></td></tr>\n";
  }
  b << "</tbody></table>\n<template id=\"labels\" data-queued=\"" << status_label(t, ItemStatus::Queued)
    << "\" data-processing=\"" << status_label(t, ItemStatus::Processing) << "\" data-done=\""
    << status_label(t, ItemStatus::Done) << "\" data-blocked=\"" << status_label(t, ItemStatus::Blocked)
    << "\" data-failed=\"" << status_label(t, ItemStatus::Failed) << "\"></template>\n"
    << "<p><a href=\"/\">" << t("続けて送る", "Send more files") << "</a></p>\n";
  return layout(t, t("受付票", "Receipt"), who, csrf, t("インターネット接続系", "Internet zone"), b.str(), "receipt");
}

std::string inbox(Lang t, const std::string& who, const std::vector<DropItem>& items, const std::string& csrf,
                  const std::string& nav, const std::function<std::string(const DropItem&)>& release_cell, bool ppap,
                  const std::string& after) {
  std::ostringstream b;
  b << nav;
  if (items.empty()) b << "<p id=\"empty\">" << t("届いているファイルはありません。", "No files for you yet.") << "</p>\n";
  b << "<table class=\"items\" id=\"inbox\">\n<thead><tr><th></th><th>" << t("ファイル", "File") << "</th><th>"
    << t("送信者", "Sender") << "</th><th>" << t("メモ", "Note") << "</th><th>" << t("受付日時", "Received") << "</th><th>"
    << t("判定", "Verdict") << "</th><th>" << t("処理内容", "What was done") << "</th><th></th></tr></thead>\n<tbody>\n";
  for (const auto& i : items) {
    b << "<tr data-id=\"" << i.id << "\" class=\"" << (i.picked_up ? "picked" : "") << "\"><td class=\"thumb\">";
    if (i.status == ItemStatus::Done && (i.thumbnail || i.output_type == "image/png" || i.output_type == "image/jpeg"))
      b << "<img src=\"/files/" << i.id << "/thumbnail\" alt=\"\" loading=\"lazy\">";
    b << "</td><td>" << escape(i.status == ItemStatus::Done ? i.output_name : i.name);
    if (i.status == ItemStatus::Done && i.output_name != i.name)
      b << "<br><small>" << t("元のファイル: ", "original: ") << escape(i.name) << "</small>";
    b << "</td><td>" << escape(i.uploader) << "</td><td class=\"note\">" << escape(i.note) << "</td><td>"
      << escape(queue_detail::iso8601_local(i.received).substr(0, 16)) << "</td><td class=\"verdict verdict-"
      << escape(i.verdict.empty() ? std::string(to_string(i.status)) : i.verdict) << "\">"
      << (i.verdict.empty() ? status_label(t, i.status) : verdict_label(t, i.verdict)) << "</td><td class=\"report\"><ul>";
    for (const auto& line : report_lines(i)) b << "<li>" << escape(line) << "</li>";
    b << "</ul></td><td class=\"actions\">";
    if (i.status == ItemStatus::Done) {
      b << "<a class=\"download\" href=\"/api/v1/files/" << i.id << "/content\" download>" << t("ダウンロード", "Download")
        << "</a>";
      if (!i.picked_up)
        b << "<form method=\"post\" action=\"/files/" << i.id << "/done\"><input type=\"hidden\" name=\"csrf\" value=\""
          << escape(csrf) << "\"><button type=\"submit\">" << t("済にする", "Mark done") << "</button></form>";
      else
        b << "<span class=\"done-mark\">" << t("済", "done") << "</span>";
    } else if (!i.held.empty() && ppap) {
      b << held_action(t, i);
    }
    if (release_cell) b << release_cell(i);
    b << "</td></tr>\n";
  }
  b << "</tbody></table>\n" << after;
  return layout(t, t("受信箱", "Inbox"), who, csrf, t("LGWAN 接続系", "LGWAN zone"), b.str(), "inbox");
}

std::string frame(Lang t, const std::string& title, const std::string& who, const std::string& csrf, bool lgwan,
                  const std::string& body, const std::string& page_id) {
  return layout(t, title, who, csrf, lgwan ? t("LGWAN 接続系", "LGWAN zone") : t("インターネット接続系", "Internet zone"),
                body, page_id);
}

std::string audit(Lang t, const std::string& who, const AuditQuery& q, const AuditResult& result,
                  const std::string& csrf, const std::string& csv_link) {
  std::ostringstream b;
  auto field = [&](const char* name, const char* ja, const char* en, const std::string& value, const char* type) {
    b << "<label>" << t(ja, en) << " <input name=\"" << name << "\" id=\"audit-" << name << "\" type=\"" << type
      << "\" value=\"" << escape(value) << "\"></label>\n";
  };
  b << "<form method=\"get\" action=\"/audit\" class=\"audit-search\">\n";
  field("from", "開始日", "From", q.from, "date");
  field("to", "終了日", "To", q.to, "date");
  field("sender", "差出人・送信者", "Sender", q.sender, "text");
  field("recipient", "宛先", "Recipient", q.recipient, "text");
  field("message_id", "Message-ID", "Message-ID", q.message_id, "text");
  field("verdict", "判定", "Verdict", q.verdict, "text");
  field("virus", "ウイルス名", "Virus name", q.virus, "text");
  b << "<button type=\"submit\" id=\"audit-search\">" << t("検索", "Search") << "</button> <a id=\"audit-csv\" href=\""
    << escape(csv_link) << "\">" << t("CSV で出力", "Export CSV") << "</a>\n</form>\n";
  b << "<p>" << result.rows.size() << t(" 件", " records")
    << (result.truncated ? t(" (新しい順に上限まで。条件を絞ってください)", " (newest first, up to the limit: narrow the search)")
                         : "")
    << "</p>\n<table class=\"items\" id=\"audit\">\n<thead><tr><th>" << t("日時", "Time") << "</th><th>"
    << t("種類", "Type") << "</th><th>ID</th><th>" << t("差出人・送信者", "Sender") << "</th><th>" << t("宛先", "Recipients")
    << "</th><th>Message-ID</th><th>" << t("判定", "Verdict") << "</th><th>" << t("ウイルス", "Virus") << "</th><th>"
    << t("内容", "Detail") << "</th></tr></thead>\n<tbody>\n";
  for (const auto& r : result.rows)
    b << "<tr><td>" << escape(r.time.substr(0, 19)) << "</td><td>" << escape(r.type) << "</td><td>" << escape(r.id)
      << "</td><td>" << escape(r.sender) << "</td><td>" << escape(r.recipients) << "</td><td>" << escape(r.message_id)
      << "</td><td>" << escape(r.verdict) << "</td><td>" << escape(r.virus) << "</td><td>" << escape(r.detail)
      << "</td></tr>\n";
  b << "</tbody></table>\n";
  return layout(t, t("監査ログ", "Audit log"), who, csrf, t("LGWAN 接続系", "LGWAN zone"), b.str(), "audit");
}

std::string not_found(Lang t) {
  return layout(t, t("見つかりません", "Not found"), "", "", "",
                std::string("<p>") + t("このページはありません。", "There is no such page here.") + "</p>", "notfound");
}

std::string_view stylesheet() {
  return R"CSS(body{font-family:"IPAGothic","Noto Sans CJK JP",sans-serif;margin:0;color:#1d2731;background:#f5f7f9}
header{display:flex;gap:1em;align-items:center;padding:.6em 1.2em;background:#1f4e79;color:#fff}
header .brand{font-weight:bold}header .zone{background:#fff2;padding:.1em .6em;border-radius:.3em}
header .signout{margin-left:auto;display:flex;gap:.6em;align-items:center}header a{color:#fff}
main{max-width:70em;margin:1.5em auto;padding:0 1.2em}
label{display:block;margin:.8em 0}input,select,textarea{font:inherit;padding:.3em;display:block;margin-top:.2em;min-width:20em}
button{font:inherit;padding:.4em 1.2em;border:0;border-radius:.3em;background:#1f4e79;color:#fff;cursor:pointer}
.drop{border:2px dashed #8aa;padding:2em;text-align:center;background:#fff;border-radius:.5em}
.drop.over{background:#e8f1fb;border-color:#1f4e79}
.error{color:#a00;font-weight:bold}.notice{color:#064}
dl.ppap-item{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.ppap-item dd{margin:0}
.progress{list-style:none;padding:0}.progress li{margin:.4em 0}.progress progress{width:20em;vertical-align:middle}
table.items{border-collapse:collapse;width:100%;background:#fff}
table.items th,table.items td{border:1px solid #ccd;padding:.4em;vertical-align:top;text-align:left}
table.items ul{margin:0;padding-left:1.2em}
.thumb img{max-width:96px;max-height:96px;border:1px solid #ccd}
.status-done,.verdict-clean,.verdict-sanitized{color:#064}.status-blocked,.status-failed,.verdict-blocked,.verdict-failed{color:#a00;font-weight:bold}
nav.pages{margin:.5em 0 1em}nav.pages a{margin-right:1.2em}.release-form{margin-top:.4em}.release-form input{min-width:14em}
tr.picked{opacity:.6}.actions form{display:inline;margin-left:.5em}.actions button{padding:.2em .6em}
)CSS";
}

std::string_view script() {
  return R"JS('use strict';
// mukaika drop box pages: uploads with a progress bar per file, and a
// receipt that follows each file's status. No outside code, no inline script.
(function () {
  var csrf = (document.querySelector('meta[name="csrf"]') || {}).content || '';
  var page = document.body.getAttribute('data-page');

  function uploadOne(file, recipient, note, row) {
    return new Promise(function (resolve) {
      var form = new FormData();
      form.append('recipient', recipient);
      form.append('note', note);
      form.append('file', file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/v1/files');
      xhr.setRequestHeader('X-CSRF-Token', csrf);
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) row.bar.value = Math.round(100 * e.loaded / e.total);
      };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 202 && body.files) {
          row.bar.value = 100;
          row.state.textContent = '✓';
          resolve(body.files.map(function (f) { return f.id; }));
        } else {
          row.state.textContent = (document.body.getAttribute('data-lang') === 'en' ? body.message_en : body.message) ||
            ('HTTP ' + xhr.status);
          row.item.className = 'error';
          resolve([]);
        }
      };
      xhr.onerror = function () { row.state.textContent = 'network error'; row.item.className = 'error'; resolve([]); };
      xhr.send(form);
    });
  }

  function setUpUpload() {
    var form = document.getElementById('upload-form');
    var input = document.getElementById('files');
    var drop = document.getElementById('drop');
    var list = document.getElementById('progress');
    var err = document.getElementById('upload-error');
    var msg = document.getElementById('msg');
    var chosen = [];
    function show(files) {
      chosen = Array.prototype.slice.call(files);
      list.textContent = '';
      chosen.forEach(function (f) {
        var li = document.createElement('li');
        li.textContent = f.name + ' ';
        list.appendChild(li);
      });
    }
    input.addEventListener('change', function () { show(input.files); });
    ['dragenter', 'dragover'].forEach(function (n) {
      drop.addEventListener(n, function (e) { e.preventDefault(); drop.classList.add('over'); });
    });
    ['dragleave', 'drop'].forEach(function (n) {
      drop.addEventListener(n, function (e) { e.preventDefault(); drop.classList.remove('over'); });
    });
    drop.addEventListener('drop', function (e) { show(e.dataTransfer.files); });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      err.hidden = true;
      if (!chosen.length) { err.textContent = msg.getAttribute('data-none'); err.hidden = false; return; }
      var max = Number(form.getAttribute('data-max-bytes'));
      var recipient = document.getElementById('recipient').value;
      var note = document.getElementById('note').value;
      list.textContent = '';
      document.getElementById('send').disabled = true;
      var jobs = chosen.map(function (f) {
        var li = document.createElement('li');
        var name = document.createElement('span');
        name.textContent = f.name + ' ';
        var bar = document.createElement('progress');
        bar.max = 100; bar.value = 0;
        var state = document.createElement('span');
        state.className = 'state';
        li.appendChild(name); li.appendChild(bar); li.appendChild(state);
        list.appendChild(li);
        var row = { item: li, bar: bar, state: state };
        if (f.size > max) { state.textContent = ' ' + msg.getAttribute('data-too-large'); li.className = 'error'; return Promise.resolve([]); }
        return uploadOne(f, recipient, note, row);
      });
      Promise.all(jobs).then(function (ids) {
        var all = [].concat.apply([], ids);
        document.getElementById('send').disabled = false;
        if (all.length) setTimeout(function () { location.href = '/receipt?ids=' + all.join(','); }, 400);
        else { err.textContent = msg.getAttribute('data-failed'); err.hidden = false; }
      });
    });
  }

  function setUpReceipt() {
    var labels = document.getElementById('labels');
    function poll() {
      var rows = document.querySelectorAll('#receipt tr[data-final="0"]');
      if (!rows.length) return;
      var pending = Array.prototype.map.call(rows, function (tr) {
        return fetch('/api/v1/files/' + tr.getAttribute('data-id'), { credentials: 'same-origin' })
          .then(function (r) { return r.json(); })
          .then(function (item) {
            var cell = tr.querySelector('.status');
            cell.textContent = labels.getAttribute('data-' + item.status) || item.status;
            cell.className = 'status status-' + item.status;
            if (item.status !== 'queued' && item.status !== 'processing') {
              tr.setAttribute('data-final', '1');
              var ul = tr.querySelector('.report ul');
              ul.textContent = '';
              var lines = [];
              if (item.reason) lines.push(document.body.getAttribute('data-lang') === 'en' ? item.reason.en : item.reason.ja);
              ((item.report && item.report.actions) || []).forEach(function (a) {
                if (a.code === 'pdf.pages' || !a.reason || lines.indexOf(a.reason) >= 0) return;
                lines.push(a.reason);
              });
              lines.forEach(function (l) { var li = document.createElement('li'); li.textContent = l; ul.appendChild(li); });
            }
          })
          .catch(function () { /* try again on the next round */ });
      });
      Promise.all(pending).then(function () { setTimeout(poll, 1000); });
    }
    poll();
  }

  // PPAP: "add another password" adds an empty field in place, so what is
  // already typed stays (without script the server adds it).
  function setUpPasswords() {
    var add = document.getElementById('ppap-add');
    if (!add) return;
    add.addEventListener('click', function (e) {
      e.preventDefault();
      var list = document.getElementById('ppap-list');
      var fields = document.getElementById('ppap-fields');
      var n = list.querySelectorAll('input.ppap-password').length;
      var p = list.lastElementChild.cloneNode(true);
      var input = p.querySelector('input');
      input.value = '';
      input.required = false;
      input.id = 'ppap-password-' + (n + 1);
      list.appendChild(p);
      fields.value = String(n + 1);
      input.focus();
      if (n + 1 >= Number(add.getAttribute('data-max'))) add.hidden = true;
    });
  }

  if (page === 'upload') setUpUpload();
  if (page === 'receipt') setUpReceipt();
  if (page === 'ppap-file' || page === 'ppap-mail') setUpPasswords();
})();
)JS";
}

}  // namespace mukaika::http::pages
