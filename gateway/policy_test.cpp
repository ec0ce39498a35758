#include "policy.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace mukaika {
namespace {

SanitizerRegistry registry() {
  SanitizerRegistry r;
  register_builtin_sanitizers(r);
  return r;
}

TEST(Policy, BodyFallsBackToFileAndUnlistedKindsAreRemoved) {
  auto reg = registry();
  Config c;
  c.policy_file[Kind::Text] = {"text.normalize"};
  c.policy_file[Kind::Pdf] = {"block"};
  c.policy_body[Kind::Html] = {"html.to_text"};
  Policy p(c, reg);
  EXPECT_EQ(p.chain(Role::Body, Kind::Html).at(0).sanitizer->name(), "html.to_text");
  EXPECT_EQ(p.chain(Role::Body, Kind::Text).at(0).sanitizer->name(), "text.normalize");  // from [policy.file]
  EXPECT_EQ(p.chain(Role::File, Kind::Pdf).at(0).type, Step::Type::Block);
  // No rule at all: removed, never kept.
  EXPECT_EQ(p.chain(Role::File, Kind::Executable).at(0).type, Step::Type::Remove);
  EXPECT_EQ(p.chain(Role::File, Kind::Html).at(0).type, Step::Type::Remove);
}

TEST(Policy, SanitizerMustHandleTheKind) {
  auto reg = registry();
  Config c;
  c.policy_file[Kind::Executable] = {"text.normalize"};
  EXPECT_THROW(Policy(c, reg), ConfigError);
}

TEST(Policy, UnknownSanitizerIsAStartUpError) {
  auto reg = registry();
  Config c;
  c.policy_file[Kind::Text] = {"text.sparkle"};
  try {
    Policy p(c, reg);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("text.sparkle"), std::string::npos);
  }
}

TEST(Policy, OneInstancePerSanitizerShared) {
  auto reg = registry();
  Config c;
  c.policy_file[Kind::Text] = {"text.normalize"};
  c.policy_body[Kind::Text] = {"text.normalize"};
  Policy p(c, reg);
  EXPECT_EQ(p.chain(Role::File, Kind::Text)[0].sanitizer, p.chain(Role::Body, Kind::Text)[0].sanitizer);
}

TEST(Policy, EveryKindHasAPlainRemovalReason) {
  for (Kind k : all_kinds()) {
    Reason r = Policy::removal_reason(k);
    EXPECT_FALSE(r.code.empty());
    EXPECT_FALSE(r.ja.empty());
    EXPECT_FALSE(r.en.empty());
  }
}

}  // namespace
}  // namespace mukaika
