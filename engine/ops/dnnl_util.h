// Small helpers shared by the oneDNN-backed kernels.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/kernel.h"
#include "engine/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {

dnnl::memory::data_type ToDnnl(DataType dtype);
// A dense row-major descriptor for `shape` (rank 0 is treated as [1]).
dnnl::memory::desc PlainDesc(const Shape& shape, DataType dtype = DataType::kFloat32);
// Row-major strides of `shape`.
dnnl::memory::dims RowMajorStrides(const Shape& shape);

// The node's fused activations as eltwise post-ops. Post-ops run in the
// output's units: Clip bounds (real units) are divided by `output_unit`.
dnnl::post_ops MakeActivationPostOps(const std::vector<FusedActivation>& fused,
                                     float output_unit = 1.f);

// Attributes every kernel uses: user scratchpad plus the node's fused
// activations as eltwise post-ops.
dnnl::primitive_attr MakeAttr(const std::vector<FusedActivation>& fused);

// Removes a GELU that is the last fused activation and says whether there
// was one: dense layers with a float32 output apply it themselves after
// the primitive (GeluErfInPlace, ops/gelu.h), faster than oneDNN's post-op.
bool TakeTrailingGelu(std::vector<FusedActivation>& fused);

// A built primitive with its scratchpad requirement.
struct DnnlStep {
  dnnl::primitive primitive;
  dnnl::memory::desc scratchpad;

  void Execute(std::unordered_map<int, dnnl::memory> args, RunContext& ctx) const;
};

template <typename PrimitiveDesc, typename Primitive>
DnnlStep MakeStep(const PrimitiveDesc& pd) {
  return DnnlStep{Primitive(pd), pd.scratchpad_desc()};
}

// Memory over a tensor's buffer (no copy). oneDNN never writes through src.
dnnl::memory Wrap(const dnnl::memory::desc& desc, const Tensor& t,
                  const dnnl::engine& engine);

// The layout input `i` arrives in: the producer's opaque layout when the
// plan kept one (OpContext::in_layouts), else plain row-major.
dnnl::memory::desc GivenLayout(const OpContext& c, size_t i);

// Feeds a primitive input laid out as `want` from a tensor laid out as
// `given`, with the reorder (if any) created once when the kernel is built.
class LayoutIn {
 public:
  LayoutIn() = default;
  LayoutIn(const dnnl::memory::desc& given, const dnnl::memory::desc& want,
           const dnnl::engine& engine);
  // Memory over `t` itself, or over `slot` scratch holding the reordered copy.
  dnnl::memory Get(const Tensor& t, RunContext& ctx, ScratchSlot slot) const;
  // `t` itself, or a new tensor holding the reordered copy (for a `want`
  // that is plain, for kernels that read elements themselves).
  Tensor GetTensor(const Tensor& t, RunContext& ctx) const;
  const dnnl::memory::desc& want() const { return want_; }

 private:
  dnnl::memory::desc given_, want_;
  std::optional<dnnl::reorder> reorder_;
};

// A primitive output laid out as `produced`, handed on either in that layout
// (`opaque_ok`: every reader is layout-aware) or reordered to plain.
class LayoutOut {
 public:
  LayoutOut() = default;
  LayoutOut(const dnnl::memory::desc& produced, DataType dtype, const Shape& shape,
            bool opaque_ok, const dnnl::engine& engine);
  // Allocates `out` and returns the memory the primitive writes.
  dnnl::memory Begin(Tensor& out, RunContext& ctx) const;
  // Reorders what the primitive wrote into `out` when `out` is plain.
  void Finish(const dnnl::memory& written, Tensor& out, RunContext& ctx) const;
  // What Kernel::OutputLayout() reports: zero desc when the output is plain.
  dnnl::memory::desc OutputLayout() const { return opaque_ ? produced_ : dnnl::memory::desc(); }

 private:
  dnnl::memory::desc produced_, plain_;
  DataType dtype_ = DataType::kFloat32;
  Shape shape_;
  bool opaque_ = false;
  std::optional<dnnl::reorder> reorder_;
};

// Constant weights reordered into the layout a primitive asked for, once per
// compiled model and layout, shared by every plan (batch size) that uses them.
class WeightCache {
 public:
  explicit WeightCache(dnnl::engine engine) : engine_(std::move(engine)) {}
  dnnl::memory Get(const std::string& key, const Tensor& plain,
                   const dnnl::memory::desc& plain_desc,
                   const dnnl::memory::desc& want);
  int64_t bytes() const;

  // Shape-independent state a kernel prepares once per compiled model (e.g.
  // a flattened tree ensemble) and shares with the plans of other batch
  // sizes: returns the value stored under `key`, storing `value` first when
  // there is none.
  std::shared_ptr<const void> Share(const std::string& key, std::shared_ptr<const void> value);
  std::shared_ptr<const void> FindShared(const std::string& key) const;

 private:
  struct Entry {
    std::string key;
    dnnl::memory::desc desc;
    dnnl::memory memory;
    Tensor keep_alive;  // owns the buffer when no reorder was needed
  };
  dnnl::engine engine_;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;  // guarded by mu_
  std::unordered_map<std::string, std::shared_ptr<const void>> shared_;  // guarded by mu_
};

// "f32", "u8", "s8", "s32", ...
std::string DnnlTypeName(dnnl::memory::data_type t);
// Implementation name and data types of a primitive descriptor.
template <typename PrimitiveDesc>
KernelInfo DescribePrimitive(const PrimitiveDesc& pd) {
  return KernelInfo{pd.impl_info_str(), DnnlTypeName(pd.src_desc().data_type()),
                    DnnlTypeName(pd.weights_desc().data_type()),
                    DnnlTypeName(pd.dst_desc().data_type())};
}

// Runs `fn`, turning oneDNN exceptions into a status naming the node.
template <typename Fn>
auto CatchDnnl(const Node& node, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const dnnl::error& e) {
    return absl::InvalidArgumentError(std::string("oneDNN rejected ") +
                                      node.Describe() + ": " + e.what());
  }
}

}  // namespace qs
