// Pieces both rebuilders share: reasons, zip failures, escaping, image sniffing.
#include <cstdint>
#include <string>

#include "office_strip/findings.h"
#include "office_strip/rebuild.h"

namespace mukaika::office_strip {

namespace {

struct FindingText {
  const char* code;
  const char* ja_label;
  const char* en_label;
  const char* ja;
  const char* en;
};

constexpr FindingText kFindingTexts[kFindingCount] = {
    {"office.macros", "マクロ", "macros", "マクロ (VBA・Basic・スクリプト) を除去しました",
     "removed macros (VBA, Basic, scripts)"},
    {"office.activex", "ActiveX・フォームコントロール", "ActiveX and form controls",
     "ActiveX コントロール・フォームコントロールを除去しました", "removed ActiveX and form controls"},
    {"office.embedded", "埋め込みオブジェクト", "embedded objects",
     "埋め込みオブジェクト (OLE・パッケージ・埋め込み文書) を除去しました（表示用の画像は残る場合があります）",
     "removed embedded objects (OLE, packages, embedded documents); their preview picture may remain"},
    {"office.external", "外部リンク", "external links",
     "外部への参照 (テンプレート・リンクされたオブジェクトや画像・外部データ接続) を除去しました",
     "removed references to outside files and servers (templates, linked objects and pictures, data connections)"},
    {"office.dde", "DDE", "DDE", "DDE (他のプログラムを起動しうるフィールド・リンク) を除去しました",
     "removed DDE fields and links (they can start other programs)"},
    {"office.fields", "フィールド", "fields",
     "外部の内容を取り込む・プログラムを動かすフィールドを除去しました（表示されていた結果の文字は残しました）",
     "removed fields that fetch outside content or run something (their last displayed result is kept)"},
    {"office.customui", "リボン等のカスタマイズ", "custom UI",
     "リボン・ツールバー・キー割り当てのカスタマイズを除去しました", "removed ribbon, toolbar and key customisations"},
    {"office.xlm", "Excel 4.0 マクロ", "Excel 4.0 macros",
     "Excel 4.0 マクロ (マクロシート・自動実行の名前・マクロ関数) を除去しました",
     "removed Excel 4.0 macros (macro sheets, auto-run names, macro functions)"},
    {"office.events", "イベント・動作設定", "events and actions",
     "開いたときやクリックで動く処理 (イベント・動作設定) を除去しました",
     "removed event handlers and actions that run on opening or on a click"},
    {"office.hyperlinks", "ハイパーリンク", "hyperlinks",
     "外部へのハイパーリンクを除去しました（リンクの文字は残しました）",
     "removed hyperlinks to outside targets (their text is kept)"},
    {"office.media", "音声・動画・埋め込みフォント等", "media and embedded fonts",
     "音声・動画・3D モデル・埋め込みフォント・アドインを除去しました",
     "removed audio, video, 3D models, embedded fonts and add-ins"},
    {"office.images", "画像の一部", "some pictures",
     "形式が正しくない、または対象外の形式 (SVG など) の画像を除去しました",
     "removed pictures that are not what they claim to be, or in formats not kept (such as SVG)"},
    {"office.hidden", "表示されない部品", "hidden parts",
     "表示に使われない部品 (縮小画像・プリンター設定・カスタム XML・署名など) を除去しました",
     "removed parts that are not displayed (thumbnails, printer settings, custom XML, signatures)"},
};

}  // namespace

Reason finding_reason(Finding f, int count) {
  const FindingText& t = kFindingTexts[static_cast<std::size_t>(f)];
  const std::string n = std::to_string(count);
  return {t.code, std::string(t.ja) + " (" + n + " 件)", std::string(t.en) + " (" + n + ")"};
}

std::string finding_label(Finding f, Language lang) {
  const FindingText& t = kFindingTexts[static_cast<std::size_t>(f)];
  return lang == Language::En ? t.en_label : t.ja_label;
}

RebuildResult blocked(Reason reason) {
  RebuildResult r;
  r.status = RebuildResult::Status::Blocked;
  r.reason = std::move(reason);
  return r;
}

RebuildResult unsupported(Reason reason) {
  RebuildResult r;
  r.status = RebuildResult::Status::Unsupported;
  r.reason = std::move(reason);
  return r;
}

RebuildResult zip_failure(const ZipReadResult& zip) {
  using S = ZipReadResult::Status;
  switch (zip.status) {
    case S::TooManyMembers:
      return blocked({"office.limits.members", "文書の中の部品の数が上限を超えたため遮断しました",
                      "blocked: the document holds more parts than the limit"});
    case S::MemberTooLarge:
      return blocked({"office.limits.part_bytes",
                      "文書の中の部品「" + zip.detail + "」が展開後のサイズの上限を超えたため遮断しました",
                      "blocked: the part \"" + zip.detail + "\" is larger than the limit once expanded"});
    case S::TotalTooLarge:
      return blocked({"office.limits.total_bytes", "文書を展開した合計サイズが上限を超えたため遮断しました",
                      "blocked: the document expands to more than the limit"});
    case S::Encrypted:
      return blocked({"office.encrypted", "文書の中身が暗号化されていて検査できないため遮断しました",
                      "blocked: parts of the document are encrypted and cannot be inspected"});
    case S::DuplicateName:
      return blocked({"office.ambiguous",
                      "同じ名前の部品が複数あり (「" + zip.detail + "」)、どちらが使われるか決まらないため遮断しました",
                      "blocked: two parts share the name \"" + zip.detail + "\", so what a reader sees is ambiguous"});
    case S::Time:
      return blocked({"office.limits.time", "処理時間の上限を超えたため遮断しました",
                      "blocked: processing took longer than the time limit"});
    case S::NotZip:
    case S::Ok:
      break;
  }
  return blocked({"office.unparseable", "文書の入れ物 (zip) が壊れているため遮断しました",
                  "blocked: the document's zip container is damaged (" + zip.detail + ")"});
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

bool image_bytes_match(std::string_view mime, std::string_view b) {
  auto u8 = [&](std::size_t i) { return i < b.size() ? static_cast<std::uint8_t>(b[i]) : 0u; };
  auto u32le = [&](std::size_t i) {
    return static_cast<std::uint32_t>(u8(i)) | static_cast<std::uint32_t>(u8(i + 1)) << 8 |
           static_cast<std::uint32_t>(u8(i + 2)) << 16 | static_cast<std::uint32_t>(u8(i + 3)) << 24;
  };
  if (mime == "image/png" || mime == "image/x-png") return b.starts_with("\x89PNG\r\n\x1a\n");
  if (mime == "image/jpeg" || mime == "image/jpg" || mime == "image/pjpeg") return b.starts_with("\xFF\xD8\xFF");
  if (mime == "image/gif") return b.starts_with("GIF87a") || b.starts_with("GIF89a");
  if (mime == "image/bmp" || mime == "image/x-bmp" || mime == "image/x-ms-bmp") return b.starts_with("BM");
  if (mime == "image/tiff") return b.starts_with(std::string_view("II*\0", 4)) || b.starts_with(std::string_view("MM\0*", 4));
  // EMF: an EMR_HEADER record (type 1) whose signature field is " EMF".
  if (mime == "image/x-emf" || mime == "image/emf") return b.size() >= 88 && u32le(0) == 1 && u32le(40) == 0x464D4520;
  // WMF: the Aldus placeable header, or a bare header (memory or disk
  // metafile, header size 9 words).
  if (mime == "image/x-wmf" || mime == "image/wmf")
    return u32le(0) == 0x9AC6CDD7 || ((u8(0) == 1 || u8(0) == 2) && u8(1) == 0 && u8(2) == 9 && u8(3) == 0);
  return false;
}

}  // namespace mukaika::office_strip
