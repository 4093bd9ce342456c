// The contract between the compiler and each op implementation.
//
// An op is described by an OpDef (ops/op_registry.h): a shape-inference
// function and a kernel builder. A Kernel is built once per plan (a concrete
// set of input shapes), is immutable afterwards and may run on many threads
// at once; everything mutable lives in the RunContext of one run.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/tensor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace qs {

class WeightCache;

// Scratch buffers a kernel may hold at the same time within one step.
enum class ScratchSlot {
  kPrimitive,  // a oneDNN primitive's own scratchpad
  kSrc0,       // input 0 reordered into the layout the primitive wants
  kSrc1,       // input 1 likewise
  kDst,        // the primitive's output before its reorder to plain
  kCount,
};

// Per-run mutable state: a oneDNN stream and scratch buffers (primitives are
// created with scratchpad_mode::user, so they never share one). Contexts are
// pooled by the compiled model, so the buffers are reused across runs.
class RunContext {
 public:
  explicit RunContext(const dnnl::engine& engine);
  dnnl::stream& stream() { return stream_; }
  const dnnl::engine& engine() const { return engine_; }
  // A 64-byte aligned buffer of at least `bytes`, valid until the next call
  // for the same slot.
  void* Scratch(ScratchSlot slot, size_t bytes);
  void* Scratchpad(size_t bytes) { return Scratch(ScratchSlot::kPrimitive, bytes); }
  // Frees the layout buffers above `keep_bytes` (a run's end): a pooled
  // context would otherwise hold a copy of the largest activation it ever
  // reordered, per slot, for as long as the model is served.
  void TrimScratch(size_t keep_bytes);

 private:
  struct Buffer {
    std::shared_ptr<std::byte> data;
    size_t bytes = 0;
  };
  dnnl::engine engine_;
  dnnl::stream stream_;
  Buffer scratch_[static_cast<int>(ScratchSlot::kCount)];
};

// Which oneDNN primitive runs a layer, for reports ("impl" as oneDNN names
// it, data types as "f32", "u8", "s8"). Empty for kernels without one.
struct KernelInfo {
  std::string impl, src_dt, wei_dt, dst_dt;
  // Bytes of parameters the kernel holds itself rather than reading from
  // graph initializers (the ai.onnx.ml ops keep theirs in attributes).
  int64_t weight_bytes = 0;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual KernelInfo Info() const { return {}; }
  // The oneDNN layout output 0 is written in when the builder was allowed
  // an opaque one (OpContext::out_layout_free); a zero desc means plain
  // row-major, which every other output always is.
  virtual dnnl::memory::desc OutputLayout() const { return {}; }
  // Fills `outputs` (one per node output). Inputs are never modified.
  virtual absl::Status Run(std::span<const Tensor> inputs,
                           std::span<Tensor> outputs, RunContext& ctx) const = 0;
};

// What shape inference and kernel builders see of a node.
struct OpContext {
  const Node& node;
  int64_t opset = 0;
  std::vector<Shape> in_shapes;
  std::vector<DataType> in_dtypes;
  // Constant value of each input, or nullptr if it is computed at run time.
  std::vector<const Tensor*> constants;
  // The layout each input arrives in: a zero desc for plain row-major, else
  // the producer's OutputLayout() (only for inputs the op lists in
  // OpDef::layout_free_inputs).
  std::vector<dnnl::memory::desc> in_layouts;
  // Output 0 may be written in any oneDNN layout (every consumer is
  // layout-aware and it is not a graph output): keeping the blocked layout
  // a convolution picked saves a reorder to plain and back per layer.
  bool out_layout_free = false;

  // Filled for builders only (after shape inference).
  std::vector<Shape> out_shapes;
  std::vector<DataType> out_dtypes;
  const dnnl::engine* engine = nullptr;
  WeightCache* weights = nullptr;

  size_t num_inputs() const { return node.inputs.size(); }
  bool has_input(size_t i) const { return node.HasInput(i); }
  const Tensor* constant(size_t i) const {
    return i < constants.size() ? constants[i] : nullptr;
  }
  // Input i's layout (a zero desc: plain).
  dnnl::memory::desc in_layout(size_t i) const {
    return i < in_layouts.size() ? in_layouts[i] : dnnl::memory::desc();
  }
};

struct TypedShape {
  DataType dtype = DataType::kFloat32;
  Shape shape;
};

using InferFn = absl::StatusOr<std::vector<TypedShape>> (*)(const OpContext&);
using BuildFn = absl::StatusOr<std::unique_ptr<Kernel>> (*)(const OpContext&);

}  // namespace qs
