// The fixture of the tests of the web app's stores (DropBox, ReleaseDesk,
// PPAP): a fresh directory per test, named after the test and the process
// (parallel ctest runs each test in its own process), with an audit log in
// it; both go when the test ends.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "queue/audit_log.h"

namespace mukaika::http {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           (std::string(test->test_suite_name()) + "_" + std::to_string(::getpid()) + "_" + test->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    audit_ = std::make_unique<AuditLog>(dir_ / "audit.jsonl");
  }
  void TearDown() override {
    audit_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<AuditLog> audit_;
};

}  // namespace mukaika::http
