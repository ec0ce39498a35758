// Choosing and opening the virus scanner from the configuration.
//
// With `antivirus.database = ""`: /var/lib/clamav when it holds a
// database, otherwise the bundled test signatures, with a warning that says
// so. When no database can be loaded mukaika refuses to run, unless the
// configuration explicitly says `required = false` (then every scan answers
// clean and a warning says that nothing is being scanned).
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "config.h"
#include "sanitizer.h"

namespace mukaika {

// Where the bundled test signatures are: $MUKAIKA_SAMPLE_SIGNATURES, the
// source tree's samples/clamav, or the installed share directory.
std::string bundled_signature_dir();

// Throws ConfigError (with a message saying what to do) when no scanner can
// be had and one is required. Warnings go to `warnings`.
std::unique_ptr<Scanner> open_scanner(const Config& config, std::ostream& warnings);

}  // namespace mukaika
