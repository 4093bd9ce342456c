// Where(condition, x, y) and Expand(x, shape), both with NumPy broadcasting
// and type-agnostic.
#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/element_copy.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<Shape> Broadcast(const OpContext& c, const Shape& a, const Shape& b) {
  auto out = BroadcastShapes(a, b);
  if (!out.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": ", out.status().message()));
  }
  return *out;
}

absl::StatusOr<std::vector<TypedShape>> InferWhere(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kBool || c.in_dtypes[1] != c.in_dtypes[2]) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": needs a bool condition and x, y of one type"));
  }
  ASSIGN_OR_RETURN(Shape xy, Broadcast(c, c.in_shapes[1], c.in_shapes[2]));
  ASSIGN_OR_RETURN(Shape out, Broadcast(c, c.in_shapes[0], xy));
  return std::vector<TypedShape>{{c.in_dtypes[1], out}};
}

class WhereKernel : public Kernel {
 public:
  explicit WhereKernel(Shape out) : out_(std::move(out)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(in[1].dtype(), out_);
    const size_t rank = out_.size();
    const std::array<std::vector<int64_t>, 3> strides = {
        BroadcastStrides(in[0].shape(), rank), BroadcastStrides(in[1].shape(), rank),
        BroadcastStrides(in[2].shape(), rank)};
    const bool* cond = in[0].data<bool>();
    WithElementType(in[1].dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = in[1].data<T>();
      const T* y = in[2].data<T>();
      T* dst = out[0].data<T>();
      ForEachBroadcast(out_, strides, [&](int64_t n, const std::array<int64_t, 3>& off) {
        dst[n] = cond[off[0]] ? x[off[1]] : y[off[2]];
      });
    });
    return absl::OkStatus();
  }

 private:
  Shape out_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildWhere(const OpContext& c) {
  return std::unique_ptr<Kernel>(new WhereKernel(c.out_shapes[0]));
}

absl::StatusOr<std::vector<TypedShape>> InferExpand(const OpContext& c) {
  const Tensor* shape = c.constant(1);
  if (shape == nullptr || shape->rank() != 1) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": the shape must be a constant 1-D tensor (known when the plan is "
        "built)"));
  }
  Shape want;
  for (int64_t i = 0; i < shape->num_elements(); ++i) {
    want.push_back(shape->ScalarAsInt64(i));
    if (want.back() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": negative dim ", want.back()));
    }
  }
  ASSIGN_OR_RETURN(Shape out, Broadcast(c, c.in_shapes[0], want));
  return std::vector<TypedShape>{{c.in_dtypes[0], out}};
}

class ExpandKernel : public Kernel {
 public:
  explicit ExpandKernel(Shape out) : out_(std::move(out)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(in[0].dtype(), out_);
    const std::array<std::vector<int64_t>, 1> strides = {
        BroadcastStrides(in[0].shape(), out_.size())};
    WithElementType(in[0].dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T* x = in[0].data<T>();
      T* dst = out[0].data<T>();
      ForEachBroadcast(out_, strides,
                       [&](int64_t n, const std::array<int64_t, 1>& off) { dst[n] = x[off[0]]; });
    });
    return absl::OkStatus();
  }

 private:
  Shape out_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildExpand(const OpContext& c) {
  return std::unique_ptr<Kernel>(new ExpandKernel(c.out_shapes[0]));
}

}  // namespace

extern const OpDef kWhereOp = {"Where", 9, {}, InferWhere, BuildWhere};
extern const OpDef kExpandOp = {"Expand", 8, {1}, InferExpand, BuildExpand};

}  // namespace qs
