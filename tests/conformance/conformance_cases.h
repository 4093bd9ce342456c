// Discovers and runs ONNX's own operator conformance tests (Debian's
// libonnx-testdata) for the ops the engine claims to support.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace qs::conformance {

inline constexpr char kNodeTestRoot[] = "/usr/share/libonnx-testdata/data/node";

struct Case {
  std::string name;  // directory name, e.g. test_conv_with_strides_padding
  std::string dir;
};

inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// Cases whose every node is an op the engine supports, sorted by name.
std::vector<Case> ClaimedCases();

// Known skips: test name -> reason, from skips.txt beside this file.
const std::map<std::string, std::string>& KnownSkips();

// Runs every test_data_set_* of the case; OK when all outputs match.
absl::Status RunCase(const Case& c);

}  // namespace qs::conformance
