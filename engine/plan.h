// A Plan is a graph compiled for one concrete set of input shapes: every
// value has a slot, every node a built kernel. Plans are immutable and are
// shared by all concurrent runs with those shapes.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/kernel.h"
#include "engine/ops/dnnl_util.h"
#include "engine/run_profile.h"

namespace qs {

struct PlanLimits {
  int64_t max_tensor_bytes = int64_t{1} << 31;  // any single value
  int64_t max_total_bytes = int64_t{8} << 30;   // all values of one run
};

class Plan {
 public:
  // Builds kernels for `graph` given the shapes of its inputs (in
  // graph.inputs order). Fails with a message naming the node whose shapes
  // are inconsistent or whose tensors would be too large.
  static absl::StatusOr<std::unique_ptr<Plan>> Build(const Graph& graph,
                                                     const std::vector<Shape>& input_shapes,
                                                     const PlanLimits& limits,
                                                     const dnnl::engine& engine,
                                                     WeightCache& weights);

  // Sees every graph input and every value a node produces (calibration).
  using ValueObserver = std::function<void(const std::string& value, const Tensor& tensor)>;

  // Inputs in graph.inputs order (already validated); outputs in
  // graph.outputs order. `profile` (optional) accumulates time per step.
  absl::StatusOr<std::vector<Tensor>> Execute(std::vector<Tensor> inputs, RunContext& ctx,
                                              const ValueObserver* observer = nullptr,
                                              RunProfile* profile = nullptr) const;

  const std::vector<TypedShape>& output_types() const { return output_types_; }

  struct LayerInfo {
    std::string node, op;
    KernelInfo kernel;
    // Output 0 stays in the oneDNN layout the kernel picked (not plain).
    bool opaque_output = false;
  };
  // Every step with its oneDNN primitive, in execution order.
  std::vector<LayerInfo> Layers() const;
  int64_t activation_bytes() const { return activation_bytes_; }

 private:
  struct Step {
    const Node* node;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> inputs;   // slots; -1 for omitted optional inputs
    std::vector<int> outputs;  // slots; -1 for omitted optional outputs
    std::vector<int> release;  // slots whose last use is this step
  };
  std::vector<Step> steps_;
  int num_slots_ = 0;
  std::vector<int> input_slots_, output_slots_;
  std::vector<std::string> input_names_;
  std::vector<std::pair<int, Tensor>> constants_;
  std::unordered_set<const void*> constant_buffers_;  // to never hand weights out
  std::vector<TypedShape> output_types_;
  int64_t activation_bytes_ = 0;
  // Values kept in an opaque oneDNN layout, with the reorder that makes a
  // plain copy for observers (built once: calibration observes every run).
  struct OpaqueValue {
    dnnl::memory::desc layout, plain;
    dnnl::reorder to_plain;
  };
  std::unordered_map<int, OpaqueValue> opaque_slots_;

  // `value` of `slot` as a plain tensor (a reordered copy if it is opaque),
  // for observers.
  Tensor PlainView(int slot, const Tensor& value, RunContext& ctx) const;
};

// Runs one node whose inputs are all constants (constant folding).
absl::StatusOr<std::vector<Tensor>> EvaluateConstantNode(const Node& node,
                                                         const Graph& graph,
                                                         const dnnl::engine& engine);

}  // namespace qs
