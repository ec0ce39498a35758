// Accounts, API tokens, sessions, CSRF tokens and sign-in rate limiting for
// the HTTP drop box and REST API (libsodium underneath).
//
// Promises:
// - Passwords are stored only as Argon2id strings ("$argon2id$..."); a
//   stored string of any other kind, or a malformed one, never verifies.
// - API tokens are configured only as "sha256:<64 hex>" of the token; the
//   comparison takes the same time whatever bytes differ.
// - Session ids and CSRF tokens are 32 bytes from the system's CSPRNG,
//   base64url without padding (43 characters). The store keeps only a hash
//   of each id, so a memory dump does not hand out live sessions. A session
//   ends after an idle timeout, after an absolute maximum, on destroy(), or
//   when the store is full and it is the least recently used.
// - SignInLimiter counts failures per account name and per client address
//   separately; a success clears the account's count but never the
//   address's (one known password must not unlock guessing others).
// - SessionStore and SignInLimiter are safe to use from several threads;
//   both take an injectable clock for tests.
// - Nothing here throws for bad input; hash_password() throws
//   std::runtime_error only when libsodium cannot work (out of memory).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mukaika::http {

// --- passwords ---------------------------------------------------------------

// libsodium's crypto_pwhash_OPSLIMIT_INTERACTIVE and _MEMLIMIT_INTERACTIVE
// (checked in auth.cpp), so this header needs no <sodium.h>.
inline constexpr unsigned long long kPasswordOpsLimit = 2;
inline constexpr std::size_t kPasswordMemLimit = 64 * 1024 * 1024;

// An Argon2id string for the configuration (`mukaika passwd` prints it).
std::string hash_password(std::string_view password, unsigned long long opslimit = kPasswordOpsLimit,
                          std::size_t memlimit = kPasswordMemLimit);

// True only when `encoded` is a well-formed Argon2id string for `password`.
bool verify_password(std::string_view encoded, std::string_view password);

// --- API tokens --------------------------------------------------------------

// "sha256:<lower-case hex>" of the token, as written in the configuration.
std::string token_hash(std::string_view token);

// True when `presented` hashes to `configured_hash` ("sha256:<hex>", hex in
// any case). False for an empty token or a malformed configured value.
bool verify_token(std::string_view configured_hash, std::string_view presented);

// 32 random bytes, base64url without padding: new API tokens, session ids.
std::string random_token();

// --- sessions ----------------------------------------------------------------

// Who is signed in and what they may do: filled from the account's
// configuration when the session is created.
struct Principal {
  std::string account;
  std::vector<std::string> roles;  // e.g. "user", "admin"
  std::vector<std::string> zones;  // the networks (LGWAN side, internet side) the account may use
};

struct Session {
  std::string id;          // the cookie value
  std::string csrf_token;  // echoed by the page in forms and X-CSRF-Token
  Principal principal;
  std::chrono::steady_clock::time_point created;
  std::chrono::steady_clock::time_point last_seen;
};

using Clock = std::function<std::chrono::steady_clock::time_point()>;

class SessionStore {
 public:
  struct Limits {
    std::chrono::seconds idle_timeout = std::chrono::minutes(30);
    std::chrono::seconds absolute_timeout = std::chrono::hours(12);
    std::size_t max_sessions = 10000;
  };

  explicit SessionStore(Limits limits);
  SessionStore(Limits limits, Clock clock);

  // A new session; the least recently used one goes when the store is full.
  Session create(Principal principal);

  // The live session with this id, its idle timer restarted; nullopt when
  // unknown or expired (an expired one is removed).
  std::optional<Session> find(std::string_view id);

  void destroy(std::string_view id);

  // Ends every session of an account: after a password change or removal.
  void destroy_account(std::string_view account);

  std::size_t size() const;

 private:
  struct Entry {
    Session session;
    std::list<std::string>::iterator lru;  // position in lru_
  };

  std::string key_of(std::string_view id) const;
  bool expired(const Session& s, std::chrono::steady_clock::time_point now) const;
  void erase(std::unordered_map<std::string, Entry>::iterator it);

  Limits limits_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> sessions_;  // by hash of the id
  std::list<std::string> lru_;                       // keys, most recently used first
};

// Constant-time check of a CSRF token presented with a request.
bool check_csrf(const Session& session, std::string_view presented);

// --- sign-in rate limiting ---------------------------------------------------

class SignInLimiter {
 public:
  struct Limits {
    std::size_t max_account_failures = 5;   // per account name in `window`
    std::size_t max_address_failures = 20;  // per client address in `window`
    std::chrono::seconds window = std::chrono::minutes(15);
    std::size_t max_keys = 100000;  // memory bound: stale keys are dropped first
  };

  explicit SignInLimiter(Limits limits);
  SignInLimiter(Limits limits, Clock clock);

  // Zero when a sign-in attempt may go ahead; otherwise how long until it
  // may (for Retry-After). Ask before checking the password.
  std::chrono::seconds retry_after(std::string_view account, std::string_view address);
  bool allowed(std::string_view account, std::string_view address) {
    return retry_after(account, address) == std::chrono::seconds(0);
  }

  void record_failure(std::string_view account, std::string_view address);
  void record_success(std::string_view account);

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Failures = std::vector<TimePoint>;  // oldest first, only those inside the window
  using Table = std::unordered_map<std::string, Failures>;

  std::chrono::seconds wait_for(Table& table, std::string_view key, std::size_t max, TimePoint now);
  void add(Table& table, std::string_view key, std::size_t max, TimePoint now);
  void prune(Table& table, TimePoint now);

  Limits limits_;
  Clock clock_;
  std::mutex mutex_;
  Table accounts_;
  Table addresses_;
};

}  // namespace mukaika::http
