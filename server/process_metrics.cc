#include "server/process_metrics.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/buffer_cache.h"
#include "server/metric_names.h"

namespace qs {

namespace {

// The fields of /proc/self/stat after the command name, so that index 0 is
// field 3 (state) of proc(5); empty when unreadable.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const auto paren = line.rfind(')');  // the command name may hold spaces
  if (paren == std::string::npos) return {};
  std::istringstream rest(line.substr(paren + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

// proc(5) field number (1-based) of /proc/self/stat.
double StatField(const std::vector<std::string>& fields, size_t number) {
  const size_t i = number - 3;
  return i < fields.size() ? std::strtod(fields[i].c_str(), nullptr) : -1;
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  family.metric.push_back(m);
  return family;
}

}  // namespace

ProcessCollector::ProcessCollector() {
  // starttime (field 22) is in clock ticks after boot; btime is boot time.
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double start_ticks = StatField(StatFields(), 22);
  std::ifstream stat("/proc/stat");
  for (std::string key; stat >> key;) {
    if (key == "btime") {
      double boot = 0;
      if (stat >> boot && start_ticks >= 0 && ticks > 0) {
        start_time_seconds_ = boot + start_ticks / ticks;
      }
      break;
    }
    stat.ignore(1 << 20, '\n');
  }
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const std::vector<std::string> fields = StatFields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double utime = StatField(fields, 14), stime = StatField(fields, 15);
  if (utime >= 0 && stime >= 0 && ticks > 0) {
    out.push_back(Family(metric::kProcessCpu, metric::kProcessCpuHelp, MetricType::Counter,
                         (utime + stime) / ticks));
  }
  std::ifstream statm("/proc/self/statm");
  double size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    out.push_back(Family(metric::kProcessResident, metric::kProcessResidentHelp, MetricType::Gauge,
                         resident_pages * page));
    out.push_back(Family(metric::kProcessVirtual, metric::kProcessVirtualHelp, MetricType::Gauge,
                         size_pages * page));
  }
  std::error_code ec;
  double fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    out.push_back(
        Family(metric::kProcessOpenFds, metric::kProcessOpenFdsHelp, MetricType::Gauge, fds));
  }
  const BufferCache::Stats cache = BufferCache::Global().stats();
  out.push_back(Family(metric::kActivationCacheIdle, metric::kActivationCacheIdleHelp,
                       MetricType::Gauge, static_cast<double>(cache.idle_bytes)));
  prometheus::MetricFamily requests;
  requests.name = metric::kActivationCacheRequests;
  requests.help = metric::kActivationCacheRequestsHelp;
  requests.type = MetricType::Counter;
  for (const auto& [result, count] : {std::pair<const char*, uint64_t>{"hit", cache.hits},
                                      std::pair<const char*, uint64_t>{"miss", cache.misses}}) {
    prometheus::ClientMetric m;
    m.label.push_back({"result", result});
    m.counter.value = static_cast<double>(count);
    requests.metric.push_back(m);
  }
  out.push_back(std::move(requests));
  if (start_time_seconds_ > 0) {
    out.push_back(Family(metric::kProcessStartTime, metric::kProcessStartTimeHelp,
                         MetricType::Gauge, start_time_seconds_));
  }
  return out;
}

}  // namespace qs
