#include "config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <algorithm>
#include <map>

#include "test_support.h"

namespace mukaika {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("mukaika-config-test-" + name);
  std::ofstream(path) << text;
  return path.string();
}

SanitizerRegistry registry() {
  SanitizerRegistry r;
  register_builtin_sanitizers(r);
  return r;
}

TEST(Config, EmbeddedDefaultLoads) {
  Config c = load_config(std::nullopt, registry());
  EXPECT_EQ(c.language, Language::Ja);
  EXPECT_EQ(c.policy_file.at(Kind::Mail), std::vector<std::string>{"mail.rebuild"});
  EXPECT_EQ(c.policy_body.at(Kind::Html), std::vector<std::string>{"html.to_text"});
  EXPECT_EQ(c.limits.max_depth, 8);
  EXPECT_TRUE(c.antivirus.required);
}

TEST(Config, FileOverridesKeyByKey) {
  auto path = write_temp("override.toml", "language = \"en\"\n[limits]\nmax_depth = 3\n[policy.file]\npdf = [\"block\"]\n");
  Config c = load_config(path, registry());
  EXPECT_EQ(c.language, Language::En);
  EXPECT_EQ(c.limits.max_depth, 3);
  EXPECT_EQ(c.limits.max_parts, 500);  // untouched default
  EXPECT_EQ(c.policy_file.at(Kind::Pdf), std::vector<std::string>{"block"});
  EXPECT_EQ(c.policy_file.at(Kind::Mail), std::vector<std::string>{"mail.rebuild"});
}

TEST(Config, EveryProblemIsReportedWithItsLine) {
  auto path = write_temp("bad.toml",
                         "language = \"fr\"\n"              // 1
                         "colour = 1\n"                     // 2
                         "[limits]\n"                       // 3
                         "max_depth = 0\n"                  // 4
                         "max_parts = \"many\"\n"           // 5
                         "[policy.file]\n"                  // 6
                         "pdf = [\"pdf.sparkle\"]\n"        // 7
                         "gizmo = [\"remove\"]\n"           // 8
                         "[sanitizer.\"html.to_text\"]\n"   // 9
                         "colour = true\n");                // 10
  auto problems = check_config_file(path, registry());
  std::map<int, std::string> by_line;
  for (const auto& p : problems) by_line[p.line] += p.message + ";";
  EXPECT_NE(by_line[1].find("language"), std::string::npos);
  EXPECT_NE(by_line[2].find("colour"), std::string::npos);
  EXPECT_NE(by_line[4].find("max_depth"), std::string::npos);
  EXPECT_NE(by_line[5].find("max_parts"), std::string::npos);
  EXPECT_NE(by_line[7].find("pdf.sparkle"), std::string::npos);
  EXPECT_NE(by_line[8].find("gizmo"), std::string::npos);
  EXPECT_NE(by_line[9].find("colour"), std::string::npos) << by_line[9];
  EXPECT_EQ(problems.size(), 7u);
  EXPECT_THROW(load_config(path, registry()), ConfigError);
}

TEST(Config, SyntaxErrorHasLine) {
  auto path = write_temp("syntax.toml", "language = \"ja\"\n[limits\nmax_depth = 2\n");
  auto problems = check_config_file(path, registry());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 2);
}

TEST(Config, PpapSectionIsValidated) {
  Config d = load_config(std::nullopt, registry());
  EXPECT_TRUE(d.ppap.enabled);
  EXPECT_EQ(d.ppap.max_attempts, 5);
  Config c = load_config(write_temp("ppap.toml", "[ppap]\nenabled = false\nmax_attempts = 3\n"), registry());
  EXPECT_FALSE(c.ppap.enabled);
  EXPECT_EQ(c.ppap.max_attempts, 3);
  auto problems = check_config_file(write_temp("ppap-bad.toml", "[ppap]\nmax_attempts = 0\npassword = \"x\"\n"),
                                    registry());
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].line, 2);
  EXPECT_EQ(problems[1].line, 3);
}

TEST(Config, SanitizerForWrongKindIsRefused) {
  auto path = write_temp("wrongkind.toml", "[policy.file]\npdf = [\"html.to_text\"]\n");
  auto problems = check_config_file(path, registry());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 2);
  EXPECT_NE(problems[0].message.find("does not handle"), std::string::npos);
}

TEST(Config, ItemLimitMustFitTheScanner) {
  auto path = write_temp("scanlimit.toml", "[antivirus]\nmax_file_bytes = 1000\n");
  auto problems = check_config_file(path, registry());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 2);
  EXPECT_NE(problems[0].message.find("max_file_bytes"), std::string::npos);
}

TEST(Config, WorkersSection) {
  Config d = load_config(std::nullopt, registry());
  EXPECT_EQ(d.workers.count, 0);  // one per core
  EXPECT_EQ(d.workers.recycle_after, 100);
  EXPECT_EQ(d.workers.user, "nobody");
  EXPECT_TRUE(d.workers.require_full_sandbox);
  auto path = write_temp("workers.toml",
                         "[workers]\ncount = 3\nmemory_mb = 256\ntime_limit_seconds = 200\nrecycle_after = 1\n"
                         "require_full_sandbox = false\n");
  Config c = load_config(path, registry());
  EXPECT_EQ(c.workers.count, 3);
  EXPECT_EQ(c.workers.memory_mb, 256u);
  EXPECT_EQ(c.workers.time_limit_seconds, 200);
  EXPECT_EQ(c.workers.recycle_after, 1);
  EXPECT_FALSE(c.workers.require_full_sandbox);
  EXPECT_EQ(c.workers.user, "nobody");  // untouched default
}

TEST(Config, WorkersProblemsAreReportedWithTheirLines) {
  auto path = write_temp("badworkers.toml",
                         "[limits]\n"                    // 1
                         "max_seconds = 60\n"            // 2
                         "[workers]\n"                   // 3
                         "count = -1\n"                  // 4
                         "memory_mb = 1\n"               // 5
                         "recycle_after = 0\n"           // 6
                         "time_limit_seconds = 30\n"     // 7: below limits.max_seconds
                         "user = \"root\"\n"             // 8: workers must not be root
                         "require_full_sandbox = \"yes\"\n"  // 9
                         "sandbox = \"off\"\n");          // 10
  auto problems = check_config_file(path, registry());
  std::map<int, std::string> by_line;
  for (const auto& p : problems) by_line[p.line] += p.message + ";";
  EXPECT_NE(by_line[4].find("workers.count"), std::string::npos);
  EXPECT_NE(by_line[5].find("workers.memory_mb"), std::string::npos);
  EXPECT_NE(by_line[6].find("workers.recycle_after"), std::string::npos);
  EXPECT_NE(by_line[7].find("limits.max_seconds"), std::string::npos) << by_line[7];
  EXPECT_NE(by_line[8].find("root"), std::string::npos);
  EXPECT_NE(by_line[9].find("true or false"), std::string::npos);
  EXPECT_NE(by_line[10].find("workers.sandbox"), std::string::npos);
  EXPECT_EQ(problems.size(), 7u);

  auto unknown = write_temp("unknownuser.toml", "[workers]\nuser = \"no-such-user-mukaika\"\n");
  problems = check_config_file(unknown, registry());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 2);
  EXPECT_NE(problems[0].message.find("no such user"), std::string::npos);
}

TEST(Config, MtaSections) {
  Config d = load_config(std::nullopt, registry());
  EXPECT_EQ(d.smtp.listen, "127.0.0.1:2525");
  EXPECT_EQ(d.smtp.max_message_bytes, 52428800u);
  EXPECT_EQ(d.smtp.allowed_networks, (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
  EXPECT_EQ(d.relay.next_hop, "");
  EXPECT_EQ(d.relay.maildir, "./var/lgwan-maildir");
  EXPECT_EQ(d.relay.retry_min_s, 60);
  EXPECT_EQ(d.relay.retry_max_s, 900);
  EXPECT_EQ(d.relay.give_up_after_h, 120);
  EXPECT_EQ(d.spool_dir, "./var/spool");
  EXPECT_EQ(d.quarantine.dir, "./var/quarantine");
  EXPECT_EQ(d.quarantine.keep_days, 14);
  auto path = write_temp("mta.toml",
                         "[smtp]\nlisten = \"0.0.0.0:25\"\nallowed_networks = [\"192.0.2.10/32\"]\n"
                         "[relay]\nnext_hop = \"[2001:db8::5]:25\"\nretry_min_s = 30\n"
                         "[spool]\ndir = \"/var/spool/mukaika\"\n[quarantine]\nkeep_days = 30\n");
  Config c = load_config(path, registry());
  EXPECT_EQ(c.smtp.listen, "0.0.0.0:25");
  EXPECT_EQ(c.smtp.allowed_networks, std::vector<std::string>{"192.0.2.10/32"});
  EXPECT_EQ(c.relay.next_hop, "[2001:db8::5]:25");
  EXPECT_EQ(c.relay.retry_min_s, 30);
  EXPECT_EQ(c.spool_dir, "/var/spool/mukaika");
  EXPECT_EQ(c.quarantine.keep_days, 30);
}

TEST(Config, MtaProblemsAreReportedWithTheirLines) {
  auto path = write_temp("badmta.toml",
                         "[smtp]\n"                             // 1
                         "listen = \"localhost\"\n"             // 2: no port
                         "allowed_networks = \"10.0.0.0/8\"\n"  // 3: not a list
                         "tls_key = \"/etc/key.pem\"\n"         // 4: without a certificate
                         "[relay]\n"                            // 5
                         "next_hop = \"mx:99999\"\n"            // 6: port out of range
                         "retry_min_s = 1000\n"                 // 7: above retry_max_s
                         "retry_max_s = 900\n"                  // 8
                         "[quarantine]\n"                       // 9
                         "keep_days = 0\n");                    // 10
  auto problems = check_config_file(path, registry());
  std::map<int, std::string> by_line;
  for (const auto& p : problems) by_line[p.line] += p.message + ";";
  EXPECT_NE(by_line[2].find("smtp.listen"), std::string::npos) << by_line[2];
  EXPECT_NE(by_line[3].find("list of strings"), std::string::npos) << by_line[3];
  EXPECT_NE(by_line[4].find("tls_certificate"), std::string::npos) << by_line[4];
  EXPECT_NE(by_line[6].find("relay.next_hop"), std::string::npos) << by_line[6];
  EXPECT_NE(by_line[7].find("retry_max_s"), std::string::npos) << by_line[7];
  EXPECT_NE(by_line[10].find("quarantine.keep_days"), std::string::npos) << by_line[10];
  EXPECT_EQ(problems.size(), 6u);
}

TEST(Config, AccountMailAndPublicUrl) {
  auto path = write_temp("people.toml",
                         "[http.lgwan]\n"
                         "public_url = \"https://mukaika.lgwan.example\"\n"
                         "[[accounts]]\n"
                         "name = \"sato\"\n"
                         "roles = [\"recipient\"]\n"
                         "mail = [\"Sato@City.Example.lg.jp\"]\n"
                         "password_hash = \"$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\"\n");
  Config c = load_config(path, registry());
  EXPECT_EQ(c.http.lgwan.public_url, "https://mukaika.lgwan.example/");
  EXPECT_EQ(c.http.internet.public_url, "http://127.0.0.1:8080/");  // from listen
  ASSERT_EQ(c.accounts.size(), 1u);
  EXPECT_EQ(c.accounts[0].mail, std::vector<std::string>{"sato@city.example.lg.jp"});

  auto bad = write_temp("badpeople.toml",
                        "[http.lgwan]\n"                         // 1
                        "public_url = \"mukaika.lgwan\"\n"      // 2: no scheme
                        "[[accounts]]\n"                         // 3
                        "name = \"sato\"\n"                     // 4
                        "mail = [\"not an address\"]\n"         // 5
                        "password_hash = \"$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g\"\n");
  std::map<int, std::string> by_line;
  for (const auto& p : check_config_file(bad, registry())) by_line[p.line] += p.message + ";";
  EXPECT_NE(by_line[2].find("public_url"), std::string::npos) << by_line[2];
  EXPECT_NE(by_line[5].find("accounts.mail"), std::string::npos) << by_line[5];
}

TEST(Config, ReleaseSection) {
  Config d = load_config(std::nullopt, registry());
  EXPECT_EQ(d.release.dir, "./var/releases");
  EXPECT_EQ(d.release.download_hours, 24);
  EXPECT_FALSE(d.release.deliver_to_lgwan);
  auto path = write_temp("release.toml", "[release]\ndir = \"/srv/releases\"\ndownload_hours = 2\ndeliver_to_lgwan = true\n");
  Config c = load_config(path, registry());
  EXPECT_EQ(c.release.dir, "/srv/releases");
  EXPECT_EQ(c.release.download_hours, 2);
  EXPECT_TRUE(c.release.deliver_to_lgwan);

  auto bad = write_temp("badrelease.toml",
                        "[release]\n"                    // 1
                        "download_hours = 0\n"           // 2: too short
                        "deliver_to_lgwan = \"yes\"\n"   // 3: not a boolean
                        "where = \"lgwan\"\n");          // 4: unknown
  std::map<int, std::string> by_line;
  for (const auto& p : check_config_file(bad, registry())) by_line[p.line] += p.message + ";";
  EXPECT_NE(by_line[2].find("release.download_hours must be between 1 and 720"), std::string::npos) << by_line[2];
  EXPECT_NE(by_line[3].find("release.deliver_to_lgwan must be true or false"), std::string::npos) << by_line[3];
  EXPECT_NE(by_line[4].find("unknown key release.where"), std::string::npos) << by_line[4];
}

TEST(Config, DemoAccountsIncludeAnApprover) {
  Config d = load_config(std::nullopt, registry());
  const auto it = std::find_if(d.accounts.begin(), d.accounts.end(), [](const auto& a) { return a.name == "demo-approver"; });
  ASSERT_NE(it, d.accounts.end());
  EXPECT_EQ(it->roles, std::vector<std::string>{"approver"});
}

TEST(Config, MissingFile) {
  auto problems = check_config_file("/nonexistent/mukaika.toml", registry());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].to_string().find("/nonexistent/mukaika.toml"), std::string::npos);
}

}  // namespace
}  // namespace mukaika
