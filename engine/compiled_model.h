// A model ready to serve: imported, optimized by graph passes, validated by
// compiling it for batch 1, with its weights packed for oneDNN.
//
// Immutable after Compile and safe to Run from many threads at once: each
// run takes its own RunContext (stream + scratchpad) from a pool, and plans
// for new input shapes (e.g. a new batch size) are built once and cached.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/plan.h"

namespace qs {

struct CompileOptions {
  bool optimize = true;  // run graph passes (fusions, folding)
  PlanLimits limits;
  // Plans cached per distinct input-shape set; beyond it the least
  // recently used plan is dropped (a run still holding it finishes with it).
  size_t max_cached_plans = 64;
  // oneDNN (OpenMP) threads per run; 0 = the OpenMP default (all cores).
  // With many concurrent runs on few cores, 1 avoids oversubscription.
  int intra_op_threads = 0;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class CompiledModel {
 public:
  static absl::StatusOr<std::unique_ptr<CompiledModel>> Compile(
      Graph graph, const CompileOptions& options = {});

  // Inputs by name (any order; every graph input exactly once). Returns the
  // graph outputs in order. Errors name the offending input.
  absl::StatusOr<std::vector<Tensor>> Run(const NamedTensors& inputs) const;
  // Inputs in graph-input order; `observer` (optional) sees every
  // intermediate value as it is produced; `profile` (optional) accumulates
  // the time of every layer.
  absl::StatusOr<std::vector<Tensor>> RunOrdered(std::vector<Tensor> inputs,
                                                 const Plan::ValueObserver* observer = nullptr,
                                                 RunProfile* profile = nullptr) const;

  // Builds and caches the plans for batch sizes 2..max_batch (batch 1 is
  // built by Compile), so that the first run at each size does not pay for
  // creating its oneDNN primitives (ResNet-18 w8a8: ~60 ms per size). Only
  // the first dim of each input may be dynamic; a model with other dynamic
  // dims (e.g. sequence length) is left alone. Fills at most half the plan
  // cache, so larger batches can be cached without evicting warmed plans.
  // Returns the number of plans built; an error names the batch size.
  absl::StatusOr<int> WarmUp(int64_t max_batch) const;

  // `inputs` by name → graph-input order; errors name the input.
  absl::StatusOr<std::vector<Tensor>> OrderInputs(const NamedTensors& inputs) const;
  // Checks dtypes, ranks and fixed dims of inputs in graph-input order.
  absl::Status ValidateInputs(const std::vector<Tensor>& inputs) const;

  const Graph& graph() const { return graph_; }
  const std::vector<ValueInfo>& inputs() const { return graph_.inputs; }
  const std::vector<ValueInfo>& outputs() const { return outputs_; }
  // The batch-1 plan's layers and the oneDNN primitives that run them.
  std::vector<Plan::LayerInfo> Layers() const;
  struct PlanCacheStats {
    size_t cached = 0;  // plans in the cache now
    uint64_t built = 0;  // plans built since Compile (including Compile's)
  };
  PlanCacheStats plan_cache_stats() const;

  // Bytes of constant weights as stored (after folding), plus parameters
  // kernels keep themselves (KernelInfo::weight_bytes, the ai.onnx.ml ops).
  int64_t weight_bytes() const;

 private:
  CompiledModel(Graph graph, const CompileOptions& options);
  absl::StatusOr<std::shared_ptr<const Plan>> PlanFor(const std::vector<Shape>& shapes) const;
  std::unique_ptr<RunContext> AcquireContext() const;
  void ReleaseContext(std::unique_ptr<RunContext> ctx) const;

  const Graph graph_;
  const CompileOptions options_;
  std::vector<ValueInfo> outputs_;  // with shapes/dtypes from the batch-1 plan
  dnnl::engine engine_;
  mutable WeightCache weights_;
  mutable std::mutex mu_;
  struct CachedPlan {
    std::shared_ptr<const Plan> plan;
    uint64_t last_used = 0;  // a tick of use_clock_
  };
  // Guarded by mu_.
  mutable std::map<std::vector<Shape>, CachedPlan> plans_;
  mutable uint64_t use_clock_ = 0;
  mutable uint64_t plans_built_ = 0;
  mutable std::vector<std::unique_ptr<RunContext>> idle_contexts_;           // guarded by mu_
  std::shared_ptr<const Plan> batch1_plan_;  // set once in Compile
};

}  // namespace qs
