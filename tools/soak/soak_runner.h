// One soak run from start to report: start (or reach) the server, take the
// reference answers, warm up, soak with interval reports, stop the load and
// check the server's own metrics, then (with --serve) SIGTERM it under load.
#pragma once

#include <functional>
#include <string>

#include "tools/soak/soak_options.h"
#include "tools/soak/soak_report.h"

namespace qs::soak {

// `progress` receives one line per interval and per step.
Report RunSoak(const Options& options, const std::function<void(const std::string&)>& progress);

}  // namespace qs::soak
