// SHA-256 of bytes, as lower-case hex (audit records, mail headers).
#pragma once

#include <string>
#include <string_view>

namespace mukaika {

std::string sha256_hex(std::string_view bytes);

}  // namespace mukaika
