// The pipeline's fail-closed paths, with test-only sanitizers.
#include "pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "test_support.h"

namespace mukaika {
namespace {

class Upper : public Sanitizer {
 public:
  std::string_view name() const override { return "test.upper"; }
  std::vector<Kind> handles() const override { return {Kind::Text}; }
  Outcome process(const Item& item, Context&) const override {
    std::string s = item.bytes;
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (s.find("INJECT") != std::string::npos) s += "INFECTED-TEST-MARKER";  // a converter that emits bad output
    return Outcome::replace(s, "text/plain", item.name, {"test.upper", "大文字に変換", "upper-cased"});
  }
};

class Throws : public Sanitizer {
 public:
  std::string_view name() const override { return "test.throws"; }
  std::vector<Kind> handles() const override { return {Kind::Text}; }
  Outcome process(const Item&, Context&) const override { throw std::runtime_error("parser exploded"); }
};

// A "mail" whose body holds parts separated by "\n--\n"; the header block is
// not part of any child, so a marker there can be blamed on no part.
class Split : public Sanitizer {
 public:
  std::string_view name() const override { return "test.split"; }
  std::vector<Kind> handles() const override { return {Kind::Mail}; }
  Outcome process(const Item& item, Context& ctx) const override {
    // As mail.rebuild does; a nested mail's description must not win.
    ctx.report.describe_mail(item.path + "/inner.eml", "inner subject", "inner@example.jp");
    ctx.report.describe_mail(item.path, "subject of " + item.name, "a@example.jp");
    std::string body = item.bytes.substr(item.bytes.find("\n\n") + 2);
    std::vector<Item> children;
    std::size_t start = 0;
    int n = 0;
    while (true) {
      std::size_t end = body.find("\n--\n", start);
      Item c;
      c.bytes = body.substr(start, end == std::string::npos ? std::string::npos : end - start);
      c.name = "p" + std::to_string(++n) + ".txt";
      children.push_back(std::move(c));
      if (end == std::string::npos) break;
      start = end + 4;
    }
    return Outcome::expand(std::move(children), {});
  }
  Outcome reassemble(const Item& item, std::any&, std::vector<ItemResult>& children, Context&) const override {
    std::string out;
    bool changed = false;
    for (const auto& c : children) {
      if (c.delivered()) out += c.bytes + "|";
      changed = changed || c.verdict != ItemResult::Verdict::Clean;
    }
    return Outcome::replace(out, "text/plain", item.name, {"test.split", "分割", "split"}, !changed);
  }
};

struct Fixture {
  SanitizerRegistry registry;
  Config config;
  testing::MarkerScanner scanner;
  std::unique_ptr<Policy> policy;
  std::unique_ptr<Pipeline> pipeline;

  explicit Fixture(std::vector<std::string> text_chain = {"test.upper"}) {
    registry.add("test.upper", [](const toml::table&) { return std::make_unique<Upper>(); });
    registry.add("test.throws", [](const toml::table&) { return std::make_unique<Throws>(); });
    registry.add("test.split", [](const toml::table&) { return std::make_unique<Split>(); });
    config.policy_file[Kind::Text] = std::move(text_chain);
    config.policy_file[Kind::Mail] = {"test.split"};
    config.policy_file[Kind::Executable] = {"remove"};
    build();
  }
  void build() {
    policy = std::make_unique<Policy>(config, registry);
    pipeline = std::make_unique<Pipeline>(*policy, scanner, config.limits, Language::En);
  }
  PipelineResult run(std::string bytes, std::string name = "in.txt") {
    Item item;
    item.bytes = std::move(bytes);
    item.name = std::move(name);
    return pipeline->run(std::move(item));
  }
};

const char* kMailHead = "From: a@example.jp\nTo: b@example.jp\nSubject: test\n\n";

bool has_action(const PipelineResult& r, const std::string& action, const std::string& code) {
  for (const auto& a : r.actions)
    if (a.action == action && a.code == code) return true;
  return false;
}

TEST(Pipeline, ConvertsText) {
  Fixture f;
  auto r = f.run("hello world\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Sanitized);
  EXPECT_EQ(r.item.bytes, "HELLO WORLD\n");
  EXPECT_EQ(r.sha256_in.size(), 64u);
  EXPECT_EQ(r.sha256_out.size(), 64u);
  EXPECT_TRUE(has_action(r, "convert", "test.upper"));
}

TEST(Pipeline, SanitizerExceptionBlocks) {
  Fixture f({"test.throws"});
  auto r = f.run("hello\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "internal.error"));
  EXPECT_NE(r.actions.back().reason.find("parser exploded"), std::string::npos);
  EXPECT_TRUE(r.item.bytes.empty());
}

TEST(Pipeline, InfectedFileIsBlockedWithItsName) {
  Fixture f;
  auto r = f.run("text with INFECTED-TEST-MARKER inside\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_EQ(r.item.virus, "Test.Marker");
  EXPECT_TRUE(has_action(r, "block", "av.infected"));
}

TEST(Pipeline, ScanErrorBlocks) {
  Fixture f;
  auto r = f.run("SCAN-ERROR-MARKER\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "av.error"));
}

TEST(Pipeline, InfectedOutputIsBlocked) {
  Fixture f;
  auto r = f.run("please INJECT\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "av.output"));
}

TEST(Pipeline, InfectedPartIsDroppedAndTheRestDelivered) {
  Fixture f;
  auto r = f.run(std::string(kMailHead) + "good part\n--\nbad INFECTED-TEST-MARKER part\n--\nlast part", "m.eml");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Sanitized);
  EXPECT_EQ(r.item.bytes, "GOOD PART|LAST PART|");
  bool blamed = false;
  for (const auto& a : r.actions) blamed = blamed || (a.path == "m.eml/p2.txt" && a.virus == "Test.Marker");
  EXPECT_TRUE(blamed);
  // The top-level mail's Subject and From, for the notices about it.
  EXPECT_EQ(r.mail_subject, "subject of m.eml");
  EXPECT_EQ(r.mail_from, "a@example.jp");
}

TEST(Pipeline, FlaggedContainerWithNoBlamedPartIsBlocked) {
  Fixture f;
  // The marker sits in the header block, which no child carries.
  auto r = f.run("From: a@example.jp\nSubject: INFECTED-TEST-MARKER\nTo: b@example.jp\n\nclean\n--\nclean too", "m.eml");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "av.unlocated"));
}

TEST(Pipeline, DepthLimitBlocksChildren) {
  Fixture f;
  f.config.limits.max_depth = 0;
  f.build();
  auto r = f.run(std::string(kMailHead) + "a\n--\nb", "m.eml");
  EXPECT_TRUE(has_action(r, "block", "limits.depth"));
  EXPECT_EQ(r.item.bytes, "");  // both children blocked, nothing delivered
}

TEST(Pipeline, PartLimit) {
  Fixture f;
  f.config.limits.max_parts = 2;
  f.build();
  auto r = f.run(std::string(kMailHead) + "alpha text\n--\nbeta text\n--\ngamma text\n", "m.eml");
  EXPECT_TRUE(has_action(r, "block", "limits.parts"));
  EXPECT_EQ(r.item.bytes, "ALPHA TEXT|BETA TEXT|");
}

TEST(Pipeline, SizeLimit) {
  Fixture f;
  f.config.limits.max_item_bytes = 10;
  f.build();
  auto r = f.run("this is longer than ten bytes\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "limits.item_bytes"));
}

TEST(Pipeline, TimeLimit) {
  Fixture f;
  f.config.limits.max_seconds = std::chrono::seconds(-1);
  f.build();
  auto r = f.run("hello\n");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "limits.time"));
}

TEST(Pipeline, KindWithoutRuleIsRemoved) {
  Fixture f;
  std::string noise;
  for (int i = 0; i < 256; ++i) noise += static_cast<char>((i * 73 + 11) & 0xFF);
  auto r = f.run(noise, "blob.bin");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);  // top level: nothing written
  EXPECT_TRUE(has_action(r, "remove", "policy.unknown"));
}

TEST(Pipeline, DisguisedExecutableIsBlocked) {
  Fixture f;
  std::string pe(512, '\0');
  pe[0] = 'M';
  pe[1] = 'Z';
  pe[0x3c] = static_cast<char>(0x80);
  pe.replace(0x80, 4, std::string("PE\0\0", 4));
  pe[0x84] = 0x4c;
  pe[0x85] = 0x01;
  auto r = f.run(pe, "report.pdf");
  EXPECT_EQ(r.verdict, PipelineResult::Verdict::Blocked);
  EXPECT_TRUE(has_action(r, "block", "type.disguised"));
}

TEST(Pipeline, UnsafeInputNameIsMadeSafe) {
  Fixture f;
  auto r = f.run("x\n", "../../etc/\xE2\x80\xAEtxt.exe");
  EXPECT_EQ(r.item.name.find('/'), std::string::npos);
  EXPECT_EQ(r.item.name.find("\xE2\x80\xAE"), std::string::npos);
}

}  // namespace
}  // namespace mukaika
