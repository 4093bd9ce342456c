// Human-readable comparison of a model's variants (bits, method, bytes,
// accuracy, agreement with fp32) and of each quantized layer's primitive.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "engine/model_builder.h"

namespace qs::cli {

inline void PrintReportLayers(FILE* out, const BuiltModel& m) {
  for (const auto& v : m.variants) {
    if (v.report.layers.empty()) continue;
    std::fprintf(out, "\n%s / %s layers:\n", m.name.c_str(), v.report.name.c_str());
    std::fprintf(out, "  %-14s %-7s %5s %-7s %5s %-10s %4s %4s %4s  %s\n", "layer", "op", "wbits",
                "method", "abits", "calib", "src", "wei", "dst", "impl");
    for (const auto& l : v.report.layers) {
      if (!l.quantized) {
        std::fprintf(out, "  %-14s %-7s fp32 (%s)\n", l.name.c_str(), l.op.c_str(), l.reason.c_str());
        continue;
      }
      std::fprintf(out, "  %-14s %-7s %5d %-7s %5d %-10s %4s %4s %4s  %s%s\n", l.name.c_str(),
                  l.op.c_str(), l.weight_bits, l.method.c_str(), l.activation_bits,
                  l.calibration.c_str(), l.src_dt.c_str(), l.wei_dt.c_str(), l.dst_dt.c_str(),
                  l.impl.c_str(), l.optimizer.empty() ? "" : ("  opt " + l.optimizer).c_str());
    }
  }
}

// The comparison table `quantserve report` prints and `serve` logs at start-up.
inline void PrintReportTable(FILE* out, const std::vector<BuiltModel>& models) {
  std::fprintf(out, "%-16s %-10s %5s %5s %-8s %12s %9s %9s %8s\n", "model", "variant", "wbits",
              "abits", "method", "weight_bytes", "accuracy", "agree_fp32", "build_s");
  for (const auto& m : models) {
    for (const auto& v : m.variants) {
      const VariantReport& r = v.report;
      std::fprintf(out, "%-16s %-10s %5d %5d %-8s %12lld", m.name.c_str(), r.name.c_str(),
                  r.weight_bits, r.activation_bits, r.method.c_str(),
                  static_cast<long long>(r.weight_bytes));
      if (r.evaluated) {
        std::fprintf(out, " %8.2f%% %9.2f%%", 100 * r.accuracy, 100 * r.top1_agreement);
      } else {
        std::fprintf(out, " %9s %10s", "-", "-");
      }
      std::fprintf(out, " %8.2f\n", r.build_seconds);
    }
  }
  for (const auto& m : models) PrintReportLayers(out, m);
}

}  // namespace qs::cli
