// TEST ONLY — never linked into the shipped `mukaika` binary.
//
// `test.fault`: a sanitizer for text that misbehaves on command, to prove
// the worker sandbox contains it. The first word of the item decides:
//
//   CRASH     writes through a wild pointer (SIGSEGV)
//   ABORT     std::abort()
//   LOOP      spins forever
//   ALLOC     allocates and touches memory until it runs out
//   SOCKET    socket(AF_INET, SOCK_STREAM)
//   EXEC      execve("/bin/true")
//   FORK      fork()
//   GARBAGE   writes a malformed reply frame straight to the worker's socket
//   HANGUP    closes the worker's socket and spins
//   SLEEP n   sleeps n milliseconds, then keeps the item
//   PID       replaces the item with the worker's pid
//   THREADS   runs 4 threads (as Poppler does), then keeps the item
//   PROBE     replaces the item with a report of what the sandbox allows
//             (one "name=result" line each; see fault_sanitizers.cpp)
//   anything else: kept unchanged
//
// Registered under the name "test.fault" for Kind::Text.
#pragma once

#include "registry.h"

namespace mukaika::testing {

void register_fault_sanitizers(SanitizerRegistry& registry);

}  // namespace mukaika::testing
