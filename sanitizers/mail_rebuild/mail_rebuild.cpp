#include "mail_rebuild/mail_rebuild.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "ascii.h"
#include "digest.h"
#include "mail_rebuild/gmime_handles.h"
#include "mime/charset.h"
#include "mime/header_text.h"
#include "registry.h"

namespace mukaika {

namespace gm {
void ensure_initialized() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}
}  // namespace gm

namespace {

struct Options {
  std::string fallback_charset = "cp932";
  bool notice = true;
  // The LGWAN page of a mail, where its recipient can see the report, ask
  // for the original and type the password of a held archive. "{id}" is
  // replaced by the top-level item's name without ".eml" (serve names each
  // mail <queue_id>.eml). "" = no link (the CLI, or no LGWAN pages).
  std::string page_url;
  // The page also takes the password of a held archive ([ppap] enabled;
  // serve sets it): only then does the notice say so.
  bool ppap = true;
};


// One run of body text: the top-level message, or a nested message that is
// flattened into the body as quoted text.
struct Segment {
  std::vector<std::string> header_lines;  // "From: ...", for nested messages
  std::vector<std::size_t> body_children;
  int level = 0;  // 0 top, 1 nested once, ...
};

struct Dropped {
  std::string path;
  Reason reason;
};

struct MailPlan {
  // Raw (unfolded, undecoded) header values of the top-level message.
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<Segment> segments;
  std::vector<Dropped> dropped;  // parts dropped during the walk itself
  bool parsed = true;            // false: GMime gave up, the input became one text body
};

std::string unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  std::size_t b = out.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  std::size_t e = out.find_last_not_of(" \t");
  return out.substr(b, e - b + 1);
}

std::string raw_header(GMimeObject* object, const char* name) {
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  if (!list) return {};
  int n = g_mime_header_list_get_count(list);
  for (int i = 0; i < n; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* hn = g_mime_header_get_name(h);
    if (hn && g_ascii_strcasecmp(hn, name) == 0) {
      const char* v = g_mime_header_get_raw_value(h);
      return v ? unfold(v) : std::string();
    }
  }
  return {};
}

Bytes part_content(GMimePart* part) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
  if (!wrapper) return {};
  gm::Ptr<GMimeStream> mem(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(wrapper, mem.get()) < 0) throw std::runtime_error("cannot decode a MIME part");
  GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  if (!array || array->len == 0) return {};
  return Bytes(reinterpret_cast<const char*>(array->data), array->len);
}

std::string mime_type_of(GMimeObject* object) {
  GMimeContentType* ct = g_mime_object_get_content_type(object);
  if (!ct) return "text/plain";
  gm::CharPtr t(g_mime_content_type_get_mime_type(ct));
  return t ? ascii_lower(t.get()) : std::string("text/plain");
}

class Walker {
 public:
  Walker(const Context& ctx, const Options& opts, MailPlan& plan, std::vector<Item>& children)
      : ctx_(ctx), opts_(opts), plan_(plan), children_(children) {}

  void message(GMimeMessage* msg, int level, std::string prefix) {
    if (level > ctx_.limits.max_depth) throw LimitHit("depth");
    Segment seg;
    seg.level = level;
    if (level > 0) {
      for (const char* h : {"From", "Date", "To", "Cc", "Subject"}) {
        std::string raw = raw_header(GMIME_OBJECT(msg), h);
        if (!raw.empty())
          seg.header_lines.push_back(std::string(h) + ": " + mime::decode_header_text(raw, opts_.fallback_charset));
      }
    }
    std::size_t index = plan_.segments.size();
    plan_.segments.push_back(std::move(seg));
    GMimeObject* body = g_mime_message_get_mime_part(msg);
    if (body) walk(body, index, level, level, prefix);
  }

  struct LimitHit : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

 private:
  void add_child(Item item, std::size_t segment) {
    if (static_cast<int>(children_.size()) >= ctx_.limits.max_parts) throw LimitHit("parts");
    if (item.role == Role::Body) plan_.segments[segment].body_children.push_back(children_.size());
    children_.push_back(std::move(item));
  }

  void walk(GMimeObject* object, std::size_t segment, int level, int depth, const std::string& prefix) {
    if (depth > ctx_.limits.max_depth + 2) throw LimitHit("depth");
    if (GMIME_IS_MESSAGE_PART(object)) {
      GMimeMessage* nested = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object));
      if (!nested) return;
      ++nested_count_;
      message(nested, level + 1, prefix + "message-" + std::to_string(nested_count_) + "/");
      return;
    }
    if (GMIME_IS_MULTIPART(object)) {
      GMimeMultipart* mp = GMIME_MULTIPART(object);
      std::string type = mime_type_of(object);
      int n = g_mime_multipart_get_count(mp);
      if (GMIME_IS_MULTIPART_ENCRYPTED(object)) {
        plan_.dropped.push_back({prefix + "encrypted",
                                 {"mail.encrypted_part", "暗号化された部分は検査できないため削除しました",
                                  "removed: an encrypted part cannot be inspected"}});
        return;
      }
      if (type == "multipart/alternative") {
        // One body is enough: plain text if the sender wrote one, else HTML.
        int choice = -1;
        for (const char* want : {"text/plain", "text/html"}) {
          for (int i = 0; i < n && choice < 0; ++i) {
            GMimeObject* p = g_mime_multipart_get_part(mp, i);
            if (GMIME_IS_PART(p) && mime_type_of(p) == want && !part_content(GMIME_PART(p)).empty()) choice = i;
          }
        }
        if (choice < 0) choice = n - 1;  // e.g. a multipart/related HTML body: the richest is last
        if (choice >= 0) walk(g_mime_multipart_get_part(mp, choice), segment, level, depth + 1, prefix);
        return;
      }
      if (GMIME_IS_MULTIPART_SIGNED(object) || type == "multipart/signed") {
        if (n > 0) walk(g_mime_multipart_get_part(mp, 0), segment, level, depth + 1, prefix);
        if (n > 1)
          plan_.dropped.push_back({prefix + "signature",
                                   {"mail.signature", "電子署名は無害化によって検証できなくなるため削除しました",
                                    "removed: the digital signature (sanitizing makes it unverifiable)"}});
        return;
      }
      for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(mp, i), segment, level, depth + 1, prefix);
      return;
    }
    if (GMIME_IS_APPLICATION_PKCS7_MIME(object)) {
      plan_.dropped.push_back({prefix + "smime",
                               {"mail.encrypted_part", "暗号化または署名された S/MIME 部分は検査できないため削除しました",
                                "removed: an S/MIME encrypted or signed part cannot be inspected"}});
      return;
    }
    if (!GMIME_IS_PART(object)) return;
    leaf(GMIME_PART(object), segment, prefix);
  }

  void leaf(GMimePart* part, std::size_t segment, const std::string& prefix) {
    GMimeObject* object = GMIME_OBJECT(part);
    std::string type = mime_type_of(object);
    mime::HeaderValue ct = mime::parse_header_params(raw_header(object, "Content-Type"), opts_.fallback_charset);
    mime::HeaderValue cd =
        mime::parse_header_params(raw_header(object, "Content-Disposition"), opts_.fallback_charset);
    std::string name;
    if (auto it = cd.params.find("filename"); it != cd.params.end()) name = it->second;
    if (name.empty())
      if (auto it = ct.params.find("name"); it != ct.params.end()) name = it->second;
    std::string charset;
    if (auto it = ct.params.find("charset"); it != ct.params.end()) charset = ascii_lower(it->second);

    Item item;
    item.bytes = part_content(part);
    item.declared_type = type;
    item.charset = charset;
    item.name = name;
    const bool attachment = cd.value == "attachment" || !name.empty();
    if (!attachment && (type == "text/plain" || type == "text/html")) {
      item.role = Role::Body;
      std::size_t n = plan_.segments[segment].body_children.size() + 1;  // numbered per message
      item.path = prefix + (n == 1 ? "body" : "body-" + std::to_string(n));
    } else {
      item.role = Role::File;
      item.path = prefix + (name.empty() ? "part-" + std::to_string(children_.size() + 1) : name);
    }
    add_child(std::move(item), segment);
  }

  const Context& ctx_;
  const Options& opts_;
  MailPlan& plan_;
  std::vector<Item>& children_;
  int nested_count_ = 0;
};

// GMime writes a run of Japanese without spaces as one encoded word of any
// length; RFC 2047 allows 75 characters and some mail clients enforce it.
// Splits every longer UTF-8 B word into words of at most 45 bytes (60 base64
// characters), on character boundaries, folded onto new lines.
std::string split_long_encoded_words(const std::string& raw) {
  static const std::string kOpen = "=?UTF-8?B?";
  std::string out;
  std::size_t pos = 0;
  while (true) {
    std::size_t start = raw.find(kOpen, pos);
    if (start == std::string::npos) break;
    std::size_t end = raw.find("?=", start + kOpen.size());
    if (end == std::string::npos) break;
    out.append(raw, pos, start - pos);
    std::size_t word_len = end + 2 - start;
    if (word_len <= 75) {
      out.append(raw, start, word_len);
    } else {
      std::string b64 = raw.substr(start + kOpen.size(), end - start - kOpen.size());
      gsize len = 0;
      gm::CharPtr decoded(reinterpret_cast<char*>(g_base64_decode(b64.c_str(), &len)));
      std::string_view bytes(decoded.get(), len);
      std::size_t i = 0;
      bool first = true;
      while (i < bytes.size()) {
        std::size_t n = std::min<std::size_t>(45, bytes.size() - i);
        // Back off to a character boundary (never split a UTF-8 sequence).
        while (n > 0 && i + n < bytes.size() && (static_cast<unsigned char>(bytes[i + n]) & 0xC0) == 0x80) --n;
        if (n == 0) n = std::min<std::size_t>(45, bytes.size() - i);
        gm::CharPtr enc(g_base64_encode(reinterpret_cast<const guchar*>(bytes.data() + i), n));
        if (!first) out += "\n ";
        out += kOpen + enc.get() + "?=";
        first = false;
        i += n;
      }
    }
    pos = end + 2;
  }
  out.append(raw, pos, std::string::npos);
  return out;
}

void shorten_encoded_words(GMimeObject* object) {
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  int n = g_mime_header_list_get_count(list);
  for (int i = 0; i < n; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* raw = g_mime_header_get_raw_value(h);
    if (!raw) continue;
    std::string fixed = split_long_encoded_words(raw);
    if (fixed != raw) g_mime_header_set_raw_value(h, fixed.c_str());
  }
}

// A group inside a group ("All: staff: a@x;;") is not valid RFC 5322 and
// GMime writes it back broken; keep one level: a group's members are the
// mailboxes found at any depth below it.
void collect_mailboxes(InternetAddressList* from, InternetAddressList* into) {
  int n = internet_address_list_length(from);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(from, i);
    if (INTERNET_ADDRESS_IS_GROUP(a))
      collect_mailboxes(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), into);
    else
      internet_address_list_add(into, a);
  }
}

gm::Ptr<InternetAddressList> flatten_groups(InternetAddressList* parsed) {
  gm::Ptr<InternetAddressList> out(internet_address_list_new());
  int n = internet_address_list_length(parsed);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(parsed, i);
    if (!INTERNET_ADDRESS_IS_GROUP(a)) {
      internet_address_list_add(out.get(), a);
      continue;
    }
    gm::Ptr<InternetAddressList> members(internet_address_list_new());
    collect_mailboxes(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), members.get());
    gm::Ptr<InternetAddress> group(internet_address_group_new(internet_address_get_name(a)));
    internet_address_group_set_members(INTERNET_ADDRESS_GROUP(group.get()), members.get());
    internet_address_list_add(out.get(), group.get());
  }
  return out;
}

std::string quote(std::string_view text, int level) {
  if (level <= 0) return std::string(text);
  std::string prefix;
  for (int i = 0; i < level; ++i) prefix += "> ";
  std::string out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += prefix;
    out += line;
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class MailRebuild : public Sanitizer {
 public:
  explicit MailRebuild(Options opts) : opts_(std::move(opts)) { gm::ensure_initialized(); }

  std::string_view name() const override { return "mail.rebuild"; }
  std::vector<Kind> handles() const override { return {Kind::Mail}; }

  Outcome process(const Item& item, Context& ctx) const override {
    MailPlan plan;
    std::vector<Item> children;
    std::string_view bytes = item.bytes;
    // An mbox "From " separator line is not a header: skip it.
    if (bytes.substr(0, 5) == "From ") {
      auto nl = bytes.find('\n');
      bytes = nl == std::string_view::npos ? std::string_view() : bytes.substr(nl + 1);
    }
    gm::Ptr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
    gm::Ptr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    gm::ParserOptionsPtr options(g_mime_parser_options_new());
    g_mime_parser_options_set_rfc2047_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    gm::Ptr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), options.get()));

    if (!message) {
      // GMime could not find a message at all: carry the bytes as one text
      // body (text.normalize decides whether they really are text).
      plan.parsed = false;
      plan.segments.push_back({});
      Item body;
      body.bytes = std::string(bytes);
      body.declared_type = "text/plain";
      body.role = Role::Body;
      body.path = "body";
      plan.segments[0].body_children.push_back(0);
      children.push_back(std::move(body));
      ctx.report.note(item.path, "note",
                      {"mail.unparsed", "メールとして解析できなかったため、全体をテキストとして扱いました",
                       "could not be parsed as a mail; the whole input was treated as text"});
      return Outcome::expand(std::move(children), std::move(plan));
    }

    GMimeObject* top = GMIME_OBJECT(message.get());
    // Headers people need; everything else is dropped (Received chains, X-
    // headers, DKIM, list headers: none helps the reader, some carry tracking).
    for (const char* h : {"From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References"}) {
      // To and Cc may legally appear once, but broken mailers repeat them.
      GMimeHeaderList* list = g_mime_object_get_header_list(top);
      int n = list ? g_mime_header_list_get_count(list) : 0;
      for (int i = 0; i < n; ++i) {
        GMimeHeader* header = g_mime_header_list_get_header_at(list, i);
        const char* hn = g_mime_header_get_name(header);
        const char* raw = g_mime_header_get_raw_value(header);
        if (hn && raw && g_ascii_strcasecmp(hn, h) == 0) plan.headers.emplace_back(h, unfold(raw));
      }
    }
    if (item.depth == 0) {
      std::string subject, from;
      for (const auto& [name, raw] : plan.headers) {
        if (name == "Subject" && subject.empty()) subject = mime::decode_header_text(raw, opts_.fallback_charset);
        if (name == "From" && from.empty()) from = mime::decode_header_text(raw, opts_.fallback_charset);
      }
      ctx.report.describe_mail(item.path, subject, from);
    }
    Walker walker(ctx, opts_, plan, children);
    try {
      walker.message(message.get(), 0, "");
    } catch (const Walker::LimitHit& hit) {
      if (std::string(hit.what()) == "parts")
        return Outcome::block({"limits.parts",
                               "メールの部品数が上限 (" + std::to_string(ctx.limits.max_parts) + ") を超えたため遮断しました",
                               "blocked: the mail has more than " + std::to_string(ctx.limits.max_parts) + " parts"});
      return Outcome::block({"limits.depth", "メールの入れ子が深すぎるため遮断しました",
                             "blocked: the mail is nested too deeply"});
    }
    for (const auto& d : plan.dropped) ctx.report.note(item.path + "/" + d.path, "remove", d.reason);
    return Outcome::expand(std::move(children), std::move(plan));
  }

  Outcome reassemble(const Item& item, std::any& state, std::vector<ItemResult>& children,
                     Context& ctx) const override {
    auto& plan = std::any_cast<MailPlan&>(state);
    const bool ja = ctx.language == Language::Ja;

    // The body is the message: if any of it is infected or blocked, the
    // whole message is blocked rather than delivered without it.
    for (const auto& c : children) {
      if (c.role != Role::Body || c.verdict != ItemResult::Verdict::Blocked) continue;
      if (!c.virus.empty())
        return Outcome::block({"mail.body_infected", "本文からウイルス「" + c.virus + "」を検出したため、メール全体を遮断しました",
                               "blocked: virus \"" + c.virus + "\" found in the message body"});
      return Outcome::block({"mail.body_blocked", "本文を無害化できなかったため、メール全体を遮断しました: " + c.reason.ja,
                             "blocked: the message body could not be sanitized: " + c.reason.en});
    }

    // What the recipient is told, one line per thing that changed.
    std::vector<std::string> lines;
    int converted = 0, removed = 0, blocked = 0;
    for (const auto& c : children) {
      const std::string label = c.role == Role::Body ? (ja ? "本文" : "body")
                                                     : (ja ? "添付「" + c.input_name + "」" : "attachment \"" + c.input_name + "\"");
      if (c.role == Role::File && c.delivered() && !c.parts.empty()) {
        ++converted;
        lines.push_back(label + ": " + c.reason.text(ctx.language) +
                        (ja ? "。中のファイル " + std::to_string(c.parts.size()) + " 件を、それぞれ添付ファイルとして届けます"
                            : "; its " + std::to_string(c.parts.size()) + " file(s) are attached one by one"));
        continue;
      }
      switch (c.verdict) {
        case ItemResult::Verdict::Clean:
          if (c.role == Role::File && c.name != c.input_name) {
            ++converted;
            lines.push_back(label + (ja ? ": ファイル名を「" + c.name + "」に変更しました" : ": renamed to \"" + c.name + "\""));
          }
          break;
        case ItemResult::Verdict::Sanitized:
          ++converted;
          lines.push_back(label + ": " + c.reason.text(ctx.language));
          break;
        case ItemResult::Verdict::Removed:
          ++removed;
          lines.push_back(label + ": " + c.reason.text(ctx.language));
          break;
        case ItemResult::Verdict::Blocked:
          ++blocked;
          lines.push_back(label + ": " + c.reason.text(ctx.language));
          break;
      }
    }
    for (const auto& d : plan.dropped) {
      ++removed;
      lines.push_back(d.reason.text(ctx.language));
    }
    if (!plan.parsed) {
      ++converted;
      lines.push_back(ja ? "メールとして解析できなかったため、全体をテキストとして表示しています"
                         : "the message could not be parsed; its whole content is shown as text");
    }
    const bool changed = !lines.empty();

    std::string body;
    if (opts_.notice && changed) {
      body += ja ? "【無害化通知】このメールは LGWAN 接続系へ届ける前に無害化されました。\n"
                 : "[Sanitizing notice] This message was sanitized before delivery to the LGWAN zone.\n";
      for (const auto& l : lines) body += "・" + l + "\n";
      const std::string page = page_link(item);
      if (page.empty())
        body += ja ? "原本はインターネット接続系で保管されています。必要な場合は情報システム担当にお問い合わせください。\n"
                   : "The original is kept on the Internet side; ask your IT staff if you need it.\n";
      else
        body += ja ? std::string("原本はインターネット接続系で保管されています。詳細、原本の申請") +
                         (opts_.ppap ? "、パスワード付きファイルのパスワード入力" : "") + "はこちら:\n  " + page + "\n"
                   : std::string("The original is kept on the Internet side. Details") +
                         (opts_.ppap ? ", a request for the original, and the password of a protected file:\n  "
                                     : " and a request for the original:\n  ") +
                         page + "\n";
      body += "----------------------------------------------------------------\n\n";
    }
    for (const auto& seg : plan.segments) {
      std::string text;
      for (std::size_t idx : seg.body_children) {
        const auto& c = children.at(idx);
        if (!c.delivered()) continue;
        if (!text.empty()) text += "\n\n";
        text += trim_newlines(c.bytes);
      }
      if (seg.level > 0) {
        body += ja ? "\n---------- 添付されていたメール ----------\n" : "\n---------- Attached message ----------\n";
        std::string block;
        for (const auto& h : seg.header_lines) block += h + "\n";
        block += "\n" + text;
        body += quote(block, seg.level);
      } else {
        body += text;
        body += "\n";
      }
    }

    gm::Ptr<GMimeMessage> out(g_mime_message_new(FALSE));
    set_headers(out.get(), plan, ctx, item.path);
    std::string summary = std::string("mukaika; ") + (changed ? "sanitized" : "clean") +
                          "; converted=" + std::to_string(converted) + "; removed=" + std::to_string(removed) +
                          "; blocked=" + std::to_string(blocked);
    g_mime_object_set_header(GMIME_OBJECT(out.get()), "X-Mukaika-Sanitized", summary.c_str(), nullptr);
    g_mime_object_set_header(GMIME_OBJECT(out.get()), "X-Mukaika-Original-SHA256", sha256_hex(item.bytes).c_str(),
                             nullptr);
    // GMime folds this 91-character line right after the colon; some readers
    // then keep a leading space in the value. One line is well within 998.
    if (GMimeHeader* h = g_mime_header_list_get_header(g_mime_object_get_header_list(GMIME_OBJECT(out.get())),
                                                       "X-Mukaika-Original-SHA256"))
      g_mime_header_set_raw_value(h, (" " + sha256_hex(item.bytes) + "\n").c_str());

    gm::Ptr<GMimeTextPart> text(g_mime_text_part_new_with_subtype("plain"));
    g_mime_text_part_set_charset(text.get(), "utf-8");
    g_mime_text_part_set_text(text.get(), body.c_str());
    g_mime_part_set_content_encoding(
        GMIME_PART(text.get()), g_mime_part_get_best_content_encoding(GMIME_PART(text.get()), GMIME_ENCODING_CONSTRAINT_7BIT));

    std::vector<const ItemResult*> attachments;
    for (const auto& c : children) {
      if (c.role != Role::File || !c.delivered()) continue;
      if (c.parts.empty()) {
        attachments.push_back(&c);
        continue;
      }
      for (const auto& p : c.parts)
        if (p.delivered()) attachments.push_back(&p);
    }

    if (attachments.empty()) {
      g_mime_message_set_mime_part(out.get(), GMIME_OBJECT(text.get()));
    } else {
      gm::Ptr<GMimeMultipart> mixed(g_mime_multipart_new_with_subtype("mixed"));
      g_mime_multipart_add(mixed.get(), GMIME_OBJECT(text.get()));
      for (const ItemResult* a : attachments) {
        std::string type = a->type.empty() ? "application/octet-stream" : a->type;
        if (type == "message/rfc822") {
          // RFC 2046 forbids base64 on message/rfc822; a rebuilt mail is
          // 7-bit clean, so it is attached as a message part.
          gm::Ptr<GMimeStream> data(g_mime_stream_mem_new_with_buffer(a->bytes.data(), a->bytes.size()));
          gm::Ptr<GMimeParser> parser(g_mime_parser_new_with_stream(data.get()));
          gm::Ptr<GMimeMessage> inner(g_mime_parser_construct_message(parser.get(), nullptr));
          if (!inner) throw std::runtime_error("a rebuilt attached message could not be re-read");
          gm::Ptr<GMimeMessagePart> part(g_mime_message_part_new_with_message("rfc822", inner.get()));
          g_mime_object_set_disposition(GMIME_OBJECT(part.get()), "attachment");
          g_mime_object_set_content_disposition_parameter(GMIME_OBJECT(part.get()), "filename", a->name.c_str());
          g_mime_multipart_add(mixed.get(), GMIME_OBJECT(part.get()));
          continue;
        }
        auto slash = type.find('/');
        std::string major = slash == std::string::npos ? "application" : type.substr(0, slash);
        std::string minor = slash == std::string::npos ? "octet-stream" : type.substr(slash + 1);
        gm::Ptr<GMimePart> part(g_mime_part_new_with_type(major.c_str(), minor.c_str()));
        if (!a->charset.empty()) g_mime_object_set_content_type_parameter(GMIME_OBJECT(part.get()), "charset", a->charset.c_str());
        gm::Ptr<GMimeStream> data(g_mime_stream_mem_new_with_buffer(a->bytes.data(), a->bytes.size()));
        gm::Ptr<GMimeDataWrapper> wrapper(g_mime_data_wrapper_new_with_stream(data.get(), GMIME_CONTENT_ENCODING_DEFAULT));
        g_mime_part_set_content(part.get(), wrapper.get());
        g_mime_part_set_content_encoding(part.get(), GMIME_CONTENT_ENCODING_BASE64);
        g_mime_part_set_filename(part.get(), a->name.c_str());
        g_mime_multipart_add(mixed.get(), GMIME_OBJECT(part.get()));
      }
      g_mime_message_set_mime_part(out.get(), GMIME_OBJECT(mixed.get()));
    }

    shorten_encoded_words(GMIME_OBJECT(out.get()));
    gm::FormatOptionsPtr format(g_mime_format_options_new());
    g_mime_format_options_set_newline_format(format.get(), GMIME_NEWLINE_FORMAT_DOS);
    gm::CharPtr serialized(g_mime_object_to_string(GMIME_OBJECT(out.get()), format.get()));
    if (!serialized) throw std::runtime_error("GMime could not serialize the rebuilt message");
    // GMime leaves some line ends bare; SMTP and Windows clients want CRLF
    // everywhere. Every part is 7-bit (base64, QP or encoded words), so
    // this touches line structure only.
    std::string crlf;
    for (const char* c = serialized.get(); *c; ++c) {
      if (*c == '\n' && (crlf.empty() || crlf.back() != '\r')) crlf += '\r';
      crlf += *c;
    }

    Reason reason;
    if (changed)
      reason = {"mail.rebuilt",
                "メールを作り直しました (変換 " + std::to_string(converted) + " 件, 削除 " + std::to_string(removed) +
                    " 件, 遮断 " + std::to_string(blocked) + " 件)",
                "message rebuilt (" + std::to_string(converted) + " converted, " + std::to_string(removed) +
                    " removed, " + std::to_string(blocked) + " blocked)"};
    else
      reason = {"mail.rebuilt_clean", "メールを作り直しました (内容の変更なし)", "message rebuilt (content unchanged)"};
    return Outcome::replace(std::move(crlf), "message/rfc822", item.name, std::move(reason), !changed);
  }

 private:
  void set_headers(GMimeMessage* out, const MailPlan& plan, Context& ctx, const std::string& path) const {
    gm::ParserOptionsPtr options(g_mime_parser_options_new());
    g_mime_parser_options_set_address_compliance_mode(options.get(), GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(options.get(), TRUE);
    GMimeObject* object = GMIME_OBJECT(out);
    bool have_date = false, have_subject = false;
    for (const auto& [name, raw] : plan.headers) {
      if (name == "Subject") {
        if (have_subject) continue;
        have_subject = true;
        g_mime_message_set_subject(out, mime::decode_header_text(raw, opts_.fallback_charset).c_str(), "utf-8");
      } else if (name == "Date") {
        if (have_date) continue;
        gm::DateTimePtr date(g_mime_utils_header_decode_date(raw.c_str()));
        if (date) {
          have_date = true;
          g_mime_message_set_date(out, date.get());
        }
      } else if (name == "Message-ID") {
        gm::CharPtr id(g_mime_utils_decode_message_id(raw.c_str()));
        if (id && g_mime_message_get_message_id(out) == nullptr) g_mime_message_set_message_id(out, id.get());
      } else if (name == "In-Reply-To" || name == "References") {
        gm::ReferencesPtr refs(g_mime_references_parse(options.get(), raw.c_str()));
        if (!refs) continue;
        std::string value;
        int n = g_mime_references_length(refs.get());
        for (int i = std::max(0, n - 50); i < n; ++i) value += (value.empty() ? "<" : " <") + std::string(g_mime_references_get_message_id(refs.get(), i)) + ">";
        if (!value.empty()) g_mime_object_set_header(object, name.c_str(), value.c_str(), nullptr);
      } else {
        std::string utf8 = mime::transcode_to_utf8(raw, opts_.fallback_charset);
        GMimeAddressType type = name == "From"   ? GMIME_ADDRESS_TYPE_FROM
                                : name == "To"   ? GMIME_ADDRESS_TYPE_TO
                                : name == "Cc"   ? GMIME_ADDRESS_TYPE_CC
                                                 : GMIME_ADDRESS_TYPE_REPLY_TO;
        gm::Ptr<InternetAddressList> parsed(internet_address_list_parse(options.get(), utf8.c_str()));
        if (parsed && internet_address_list_length(parsed.get()) > 0) {
          auto flat = flatten_groups(parsed.get());
          internet_address_list_append(g_mime_message_get_addresses(out, type), flat.get());
        } else {
          ctx.report.note(path + "/headers", "note",
                          {"mail.bad_address", name + " ヘッダーのアドレスを解析できなかったため削除しました",
                           "dropped the " + name + " header: its address could not be parsed"});
        }
      }
    }
  }

  // page_url for this mail, or "" (not configured, not the top level, or
  // a name that is not a plain queue id).
  std::string page_link(const Item& item) const {
    if (opts_.page_url.empty() || item.depth != 0) return {};
    std::string id = item.name;
    if (id.size() > 4 && id.compare(id.size() - 4, 4, ".eml") == 0) id.resize(id.size() - 4);
    if (id.empty() || id.size() > 64 ||
        !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; }))
      return {};
    std::string url = opts_.page_url;
    const auto at = url.find("{id}");
    if (at == std::string::npos) return {};
    return url.replace(at, 4, id);
  }

  Options opts_;
};

}  // namespace

std::unique_ptr<Sanitizer> make_mail_rebuild(const toml::table& options) {
  Options opts;
  for (const auto& [key, value] : options) {
    std::string k(key.str());
    if (k == "fallback_charset") {
      opts.fallback_charset = charset_option(value, k);
    } else if (k == "notice") {
      auto v = value.value<bool>();
      if (!v) throw ConfigError("notice must be true or false");
      opts.notice = *v;
    } else if (k == "page_url") {
      auto v = value.value<std::string>();
      if (!v || (!v->empty() && ((v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0) ||
                                 v->find("{id}") == std::string::npos ||
                                 v->find_first_of(" \t\r\n") != std::string::npos)))
        throw ConfigError("page_url must be \"\" or an http(s) URL containing {id}");
      opts.page_url = *v;
    } else if (k == "ppap") {
      auto v = value.value<bool>();
      if (!v) throw ConfigError("ppap must be true or false");
      opts.ppap = *v;
    } else {
      throw ConfigError("unknown option \"" + k + "\" (known: fallback_charset, notice, page_url, ppap)");
    }
  }
  return std::make_unique<MailRebuild>(std::move(opts));
}

}  // namespace mukaika
