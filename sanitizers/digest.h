// SHA-256 of bytes, as lower-case hex (audit records, mail headers).
#pragma once

#include <string>
#include <vector>
#include <string_view>

namespace mukaika {

std::string sha256_hex(std::string_view bytes);

// Overwrites secrets (PPAP passwords) before their memory is given back;
// the compiler may not drop it as a dead store (OPENSSL_cleanse).
void wipe(std::string& secret);
void wipe_passphrases(std::vector<std::string>& passphrases);

}  // namespace mukaika
