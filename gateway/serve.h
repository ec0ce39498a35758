// `mukaika serve` and `mukaika queue`: the MTA hop.
//
//   mukaika serve [--config FILE]
//       SMTP from the Internet-side MTA (smtp.listen) -> spool (250 only
//       once on disk) -> sanitized in the sandboxed workers -> original to
//       the quarantine, audit record -> delivered with the original
//       envelope to relay.next_hop, or into relay.maildir when there is no
//       next hop. SIGTERM/SIGINT: stop accepting, finish the sessions and
//       the step in flight, exit 0. SIGHUP: reopen the audit log (for log
//       rotation); other settings need a restart. SIGUSR1: retry deferred
//       mail now.
//   mukaika queue [--config FILE] [list | flush]
//       Lists the spool (safe while serve runs), or asks the running daemon
//       to retry deferred mail now.
//
// Exit status: 0 clean stop, 2 configuration or start-up error (a message
// says what to fix).
#pragma once

#include <string>
#include <vector>

#include "registry.h"

namespace mukaika {

using RegisterSanitizers = void (*)(SanitizerRegistry&);

int cmd_serve(const std::vector<std::string>& args, RegisterSanitizers register_sanitizers);
int cmd_queue(const std::vector<std::string>& args, RegisterSanitizers register_sanitizers);

}  // namespace mukaika
