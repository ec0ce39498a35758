// The JSON report of `mukaika sanitize --report` and, later, of the REST
// API: one object per input with its verdict, hashes, type and every action.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "pipeline.h"

namespace mukaika {

// `input` is what the operator named; `output` the written path ("" when
// nothing was written).
nlohmann::json report_item(const std::string& input, const std::string& output, const PipelineResult& result);

}  // namespace mukaika
