// `quantserve bench --profile`: where a run's time goes, per op type and per
// layer, as a table or as the JSON "profile" object.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>

#include "engine/run_profile.h"

namespace qs::cli {

// Op types by time, then the `top_layers` most expensive layers.
void PrintProfile(FILE* out, const RunProfile& profile, int top_layers);

// {"runs", "run_ms", "kernels_ms", "by_op_type": [{op_type, layers, ms_per_run,
// percent}], "layers": [{name, op_type, impl, ms_per_run, percent}]} with
// layers in execution order; ms are per run, percent of the whole run.
nlohmann::json ProfileJson(const RunProfile& profile);

}  // namespace qs::cli
