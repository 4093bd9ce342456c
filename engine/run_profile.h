// Time spent per layer over many runs of a model (`quantserve bench
// --profile`): what to optimize next, in the engine's own terms (the node,
// its op type and the oneDNN primitive that ran it), without an external
// profiler. Kernels run synchronously on the CPU stream, so the time around
// a kernel's Run is its time.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace qs {

// Not thread-safe: one profile per sequence of runs. Layers are keyed by
// their node (`key`, its address in the compiled graph), not by name: ONNX
// does not require node names to be unique, and two layers of one name
// would merge into one row.
class RunProfile {
 public:
  struct Layer {
    std::string name, op_type, impl;
    double total_ms = 0;
    int64_t calls = 0;
  };
  struct OpType {
    std::string op_type;
    int layers = 0;
    double total_ms = 0;
  };

  // Adds one execution of a layer; `impl` is read only the first time.
  template <typename ImplFn>
  void Record(const void* key, const std::string& name, const std::string& op_type, double ms,
              ImplFn&& impl) {
    auto [it, inserted] = index_.try_emplace(key, layers_.size());
    if (inserted) layers_.push_back({name, op_type, impl(), 0, 0});
    Layer& l = layers_[it->second];
    l.total_ms += ms;
    ++l.calls;
  }
  // Counts a whole run (also the time outside kernels: buffer handling).
  void RecordRun(double ms) {
    ++runs_;
    run_ms_ += ms;
  }

  int64_t runs() const { return runs_; }
  double run_ms() const { return run_ms_; }
  // In first-execution order.
  const std::vector<Layer>& layers() const { return layers_; }
  // Summed per op type, most expensive first.
  std::vector<OpType> ByOpType() const;

 private:
  std::vector<Layer> layers_;
  std::unordered_map<const void*, size_t> index_;
  int64_t runs_ = 0;
  double run_ms_ = 0;
};

}  // namespace qs
