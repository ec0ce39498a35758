#include "policy.h"

namespace mukaika {

Policy::Policy(const Config& config, const SanitizerRegistry& registry) {
  std::map<std::string, const Sanitizer*> instances;
  auto build = [&](const std::map<Kind, std::vector<std::string>>& rules, std::map<Kind, std::vector<Step>>& out) {
    for (const auto& [kind, names] : rules) {
      std::vector<Step> steps;
      for (const auto& name : names) {
        if (name == "remove" || name == "block") {
          steps.push_back({name == "remove" ? Step::Type::Remove : Step::Type::Block, nullptr});
          continue;
        }
        auto it = instances.find(name);
        if (it == instances.end()) {
          static const toml::table empty;
          const auto* opts = config.sanitizer_options[name].as_table();
          owned_.push_back(registry.create(name, opts ? *opts : empty));
          it = instances.emplace(name, owned_.back().get()).first;
        }
        bool handles = false;
        for (Kind k : it->second->handles()) handles = handles || k == kind;
        if (!handles)
          throw ConfigError("policy: sanitizer \"" + name + "\" does not handle kind \"" +
                            std::string(to_string(kind)) + "\"");
        steps.push_back({Step::Type::Run, it->second});
      }
      out[kind] = std::move(steps);
    }
  };
  build(config.policy_file, file_);
  build(config.policy_body, body_);
}

const std::vector<Step>& Policy::chain(Role role, Kind kind) const {
  static const std::vector<Step> remove{{Step::Type::Remove, nullptr}};
  if (role == Role::Body) {
    auto it = body_.find(kind);
    if (it != body_.end()) return it->second;
  }
  auto it = file_.find(kind);
  return it != file_.end() ? it->second : remove;
}

Reason Policy::removal_reason(Kind kind) {
  switch (kind) {
    case Kind::Executable:
      return {"policy.executable", "実行ファイルのため削除しました", "removed: executable program"};
    case Kind::Script:
      return {"policy.script", "スクリプトファイルのため削除しました", "removed: script file"};
    case Kind::Shortcut:
      return {"policy.shortcut", "ショートカットファイルのため削除しました", "removed: shortcut file"};
    case Kind::DiskImage:
      return {"policy.disk_image", "ディスクイメージ (ISO・VHD 等) のため削除しました",
              "removed: disk image (ISO, VHD and the like)"};
    case Kind::Html:
      return {"policy.html", "HTML ファイルはスクリプトを含みうるため削除しました",
              "removed: HTML file (may contain scripts)"};
    case Kind::Xml:
      return {"policy.xml", "XML ファイルは Office などで開かれ動作しうるため削除しました",
              "removed: XML file (Office and other programs may act on it)"};
    case Kind::Svg:
      return {"policy.svg", "SVG 画像はスクリプトを含みうるため削除しました",
              "removed: SVG image (may contain scripts)"};
    case Kind::Pdf:
      return {"policy.pdf", "PDF の無害化 (画像化) が有効でないため削除しました",
              "removed: PDF sanitizing (rasterizing) is not enabled"};
    case Kind::Image:
      return {"policy.image", "画像の無害化 (再エンコード) が有効でないため削除しました",
              "removed: image sanitizing (re-encoding) is not enabled"};
    case Kind::Archive:
      return {"policy.archive", "圧縮ファイルの展開・検査が有効でないため削除しました",
              "removed: opening and checking archives is not enabled"};
    case Kind::OfficeLegacy:
      return {"policy.office_legacy",
              "古い形式の Office 文書 (.doc/.xls/.ppt) は中身を検査・無害化できないため削除しました。送信者に PDF か .docx 形式での再送を依頼してください",
              "removed: legacy binary Office files (.doc/.xls/.ppt) cannot be inspected or sanitized; ask the sender for PDF or .docx"};
    case Kind::Office:
    case Kind::OpenDocument:
      return {"policy.office", "Office 文書の無害化 (マクロ等の除去) が有効でないため削除しました",
              "removed: Office document sanitizing (macro removal) is not enabled"};
    case Kind::Rtf:
      return {"policy.rtf", "RTF 文書の無害化が有効でないため削除しました",
              "removed: RTF document sanitizing is not enabled"};
    case Kind::Encrypted:
      return {"policy.encrypted", "パスワードで保護されていて中身を検査できないため削除しました",
              "removed: password-protected, so its content cannot be inspected"};
    case Kind::Mail:
      return {"policy.mail", "添付されたメールの処理が有効でないため削除しました",
              "removed: processing attached mail is not enabled"};
    case Kind::Text:
      return {"policy.text", "テキストファイルの受け入れが有効でないため削除しました",
              "removed: text files are not accepted"};
    case Kind::Empty:
    case Kind::Unknown:
      break;
  }
  return {"policy.unknown", "種類を判別できないファイルのため削除しました", "removed: unrecognised file type"};
}

Reason Policy::block_reason(Kind kind) {
  if (kind == Kind::Encrypted)
    return {"policy.encrypted", "パスワードで保護されていて中身を検査できないため遮断しました。原本はインターネット接続系で保管されています",
            "blocked: password-protected, so its content cannot be inspected; the original is kept on the Internet side"};
  Reason r = removal_reason(kind);
  r.ja = "設定により遮断しました (" + std::string(to_string(kind)) + ")";
  r.en = "blocked by policy (" + std::string(to_string(kind)) + ")";
  return r;
}

}  // namespace mukaika
