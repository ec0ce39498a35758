// WebApp's access rules that need no server: whose a kept mail is.
#include "http/web_app.h"

#include <gtest/gtest.h>

namespace mukaika::http {
namespace {

TEST(MailAccess, TheEnvelopeRecipientDecidesWithoutRegardToCase) {
  AccountConfig sato;
  sato.name = "sato";
  sato.mail = {"sato@city.example.lg.jp"};
  AccountConfig suzuki;
  suzuki.name = "suzuki";
  suzuki.mail = {"suzuki@city.example.lg.jp"};
  const nlohmann::json kept = {{"recipients", {"Sato@City.Example.LG.JP", "kikaku@city.example.lg.jp"}}};
  EXPECT_TRUE(is_recipient_of(sato, kept));
  EXPECT_FALSE(is_recipient_of(suzuki, kept));
  // The address as the mail wrote it, for a reply about that mail.
  EXPECT_EQ(recipient_address_of(sato, kept), "Sato@City.Example.LG.JP");
  EXPECT_EQ(recipient_address_of(suzuki, kept), std::nullopt);
  AccountConfig nobody;  // no mail addresses: no mail
  EXPECT_FALSE(is_recipient_of(nobody, kept));
  EXPECT_FALSE(is_recipient_of(sato, nlohmann::json::object()));
  EXPECT_FALSE(is_recipient_of(sato, {{"recipients", "sato@city.example.lg.jp"}}));  // not a list
}

}  // namespace
}  // namespace mukaika::http
