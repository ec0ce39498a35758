#include "http/auth.h"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace mukaika::http {

static_assert(kPasswordOpsLimit == crypto_pwhash_OPSLIMIT_INTERACTIVE);
static_assert(kPasswordMemLimit == crypto_pwhash_MEMLIMIT_INTERACTIVE);

namespace {

using namespace std::chrono;

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without it there is no safe randomness: nothing here can work.
    if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  });
}

constexpr std::string_view kArgon2idPrefix = "$argon2id$";
constexpr std::string_view kSha256Prefix = "sha256:";

std::string hex(const unsigned char* bytes, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, n);
  out.pop_back();
  return out;
}

seconds ceil_seconds(steady_clock::duration d) { return duration_cast<seconds>(d + seconds(1) - nanoseconds(1)); }

Clock system_clock_or(Clock clock) {
  if (clock) return clock;
  return [] { return steady_clock::now(); };
}

}  // namespace

std::string hash_password(std::string_view password, unsigned long long opslimit, std::size_t memlimit) {
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), opslimit, memlimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("password hashing failed (out of memory, or limits out of range)");
  return out;
}

bool verify_password(std::string_view encoded, std::string_view password) {
  ensure_sodium();
  // Only Argon2id: an old argon2i string or anything else is a configuration
  // mistake, not a password to accept.
  if (!encoded.starts_with(kArgon2idPrefix) || encoded.size() >= crypto_pwhash_STRBYTES ||
      encoded.find('\0') != std::string_view::npos)
    return false;
  char str[crypto_pwhash_STRBYTES] = {};
  std::copy(encoded.begin(), encoded.end(), str);
  return crypto_pwhash_str_verify(str, password.data(), password.size()) == 0;
}

std::string token_hash(std::string_view token) {
  ensure_sodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return std::string(kSha256Prefix) + hex(digest, sizeof digest);
}

bool verify_token(std::string_view configured_hash, std::string_view presented) {
  ensure_sodium();
  if (presented.empty() || !configured_hash.starts_with(kSha256Prefix)) return false;
  std::string_view hex_part = configured_hash.substr(kSha256Prefix.size());
  unsigned char expected[crypto_hash_sha256_BYTES];
  std::size_t len = 0;
  const char* end = nullptr;
  if (hex_part.size() != 2 * sizeof expected ||
      sodium_hex2bin(expected, sizeof expected, hex_part.data(), hex_part.size(), nullptr, &len, &end) != 0 ||
      len != sizeof expected || end != hex_part.data() + hex_part.size())
    return false;
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(presented.data()), presented.size());
  return sodium_memcmp(digest, expected, sizeof digest) == 0;
}

std::string random_token() {
  ensure_sodium();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  constexpr int kVariant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(sizeof bytes, kVariant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, sizeof bytes, kVariant);
  out.resize(out.size() - 1);  // the terminating NUL
  sodium_memzero(bytes, sizeof bytes);
  return out;
}

// --- sessions ----------------------------------------------------------------

SessionStore::SessionStore(Limits limits) : SessionStore(limits, nullptr) {}

SessionStore::SessionStore(Limits limits, Clock clock) : limits_(limits), clock_(system_clock_or(std::move(clock))) {
  limits_.max_sessions = std::max<std::size_t>(limits_.max_sessions, 1);
  ensure_sodium();
}

std::string SessionStore::key_of(std::string_view id) const {
  unsigned char digest[crypto_generichash_BYTES];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(id.data()), id.size(), nullptr,
                     0);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

bool SessionStore::expired(const Session& s, steady_clock::time_point now) const {
  return now - s.last_seen >= limits_.idle_timeout || now - s.created >= limits_.absolute_timeout;
}

void SessionStore::erase(std::unordered_map<std::string, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  sessions_.erase(it);
}

Session SessionStore::create(Principal principal) {
  Session s;
  s.id = random_token();
  s.csrf_token = random_token();
  s.principal = std::move(principal);
  std::string key = key_of(s.id);

  std::lock_guard lock(mutex_);
  s.created = s.last_seen = clock_();
  // Idle sessions gather at the back: drop the expired ones, then, when
  // still full, the least recently used.
  while (!lru_.empty()) {
    auto it = sessions_.find(lru_.back());
    if (sessions_.size() < limits_.max_sessions && !expired(it->second.session, s.created)) break;
    erase(it);
  }
  lru_.push_front(key);
  sessions_.emplace(std::move(key), Entry{s, lru_.begin()});
  return s;
}

std::optional<Session> SessionStore::find(std::string_view id) {
  if (id.empty()) return std::nullopt;
  std::string key = key_of(id);
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  auto now = clock_();
  if (expired(it->second.session, now)) {
    erase(it);
    return std::nullopt;
  }
  it->second.session.last_seen = now;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.session;
}

void SessionStore::destroy(std::string_view id) {
  std::string key = key_of(id);
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) erase(it);
}

void SessionStore::destroy_account(std::string_view account) {
  std::lock_guard lock(mutex_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (it->second.session.principal.account == account) erase(it);
    it = next;
  }
}

std::size_t SessionStore::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

bool check_csrf(const Session& session, std::string_view presented) {
  // The length is no secret (always 43); the bytes are compared in constant time.
  if (session.csrf_token.empty() || presented.size() != session.csrf_token.size()) return false;
  return sodium_memcmp(session.csrf_token.data(), presented.data(), presented.size()) == 0;
}

// --- sign-in rate limiting ---------------------------------------------------

SignInLimiter::SignInLimiter(Limits limits) : SignInLimiter(limits, nullptr) {}

SignInLimiter::SignInLimiter(Limits limits, Clock clock) : limits_(limits), clock_(system_clock_or(std::move(clock))) {
  limits_.max_account_failures = std::max<std::size_t>(limits_.max_account_failures, 1);
  limits_.max_address_failures = std::max<std::size_t>(limits_.max_address_failures, 1);
  limits_.max_keys = std::max<std::size_t>(limits_.max_keys, 1);
}

seconds SignInLimiter::wait_for(Table& table, std::string_view key, std::size_t max, TimePoint now) {
  auto it = table.find(std::string(key));
  if (it == table.end()) return seconds(0);
  Failures& f = it->second;
  f.erase(f.begin(), std::find_if(f.begin(), f.end(), [&](TimePoint t) { return now - t < limits_.window; }));
  if (f.empty()) {
    table.erase(it);
    return seconds(0);
  }
  if (f.size() < max) return seconds(0);
  // Locked until the oldest of the last `max` failures leaves the window.
  return ceil_seconds(f.front() + limits_.window - now);
}

void SignInLimiter::add(Table& table, std::string_view key, std::size_t max, TimePoint now) {
  auto it = table.find(std::string(key));
  if (it == table.end()) {
    prune(table, now);
    it = table.emplace(std::string(key), Failures{}).first;
  }
  Failures& f = it->second;
  f.push_back(now);
  if (f.size() > max) f.erase(f.begin(), f.end() - static_cast<std::ptrdiff_t>(max));  // only the last `max` matter
}

void SignInLimiter::prune(Table& table, TimePoint now) {
  if (table.size() < limits_.max_keys) return;
  std::erase_if(table, [&](const auto& kv) { return kv.second.empty() || now - kv.second.back() >= limits_.window; });
  // Still full of live keys (many addresses at once): forget a tenth rather
  // than grow without bound. Those keys start counting from zero again.
  if (table.size() >= limits_.max_keys) {
    std::size_t drop = std::max<std::size_t>(table.size() / 10, 1);
    for (auto it = table.begin(); it != table.end() && drop > 0; --drop) it = table.erase(it);
  }
}

seconds SignInLimiter::retry_after(std::string_view account, std::string_view address) {
  std::lock_guard lock(mutex_);
  auto now = clock_();
  return std::max(wait_for(accounts_, account, limits_.max_account_failures, now),
                  wait_for(addresses_, address, limits_.max_address_failures, now));
}

void SignInLimiter::record_failure(std::string_view account, std::string_view address) {
  std::lock_guard lock(mutex_);
  auto now = clock_();
  add(accounts_, account, limits_.max_account_failures, now);
  add(addresses_, address, limits_.max_address_failures, now);
}

void SignInLimiter::record_success(std::string_view account) {
  std::lock_guard lock(mutex_);
  accounts_.erase(std::string(account));
}

}  // namespace mukaika::http
