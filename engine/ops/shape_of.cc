// Shape (a shape-only op: evaluated when a plan is built, so its output is a
// constant of that plan) and ConstantOfShape.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/ops/element_copy.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

// Shape-15 start/end, clamped to [0, rank].
std::pair<int64_t, int64_t> ShapeRange(const OpContext& c) {
  const int64_t rank = static_cast<int64_t>(c.in_shapes[0].size());
  auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
  const int64_t start = clamp(c.node.GetInt("start", 0));
  const int64_t end = clamp(c.node.GetInt("end", rank));
  return {start, std::max(start, end)};
}

absl::StatusOr<std::vector<TypedShape>> InferShape(const OpContext& c) {
  auto [start, end] = ShapeRange(c);
  return std::vector<TypedShape>{{DataType::kInt64, {end - start}}};
}

// Emits a tensor fixed when the plan is built.
class ConstantKernel : public Kernel {
 public:
  explicit ConstantKernel(Tensor value) : value_(std::move(value)) {}
  absl::Status Run(std::span<const Tensor>, std::span<Tensor> out, RunContext&) const override {
    out[0] = value_.Clone();
    return absl::OkStatus();
  }

 private:
  Tensor value_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildShape(const OpContext& c) {
  auto [start, end] = ShapeRange(c);
  const Shape& x = c.in_shapes[0];
  std::vector<int64_t> dims(x.begin() + start, x.begin() + end);
  return std::unique_ptr<Kernel>(
      new ConstantKernel(Tensor::FromVector<int64_t>({end - start}, dims)));
}

absl::StatusOr<std::vector<TypedShape>> InferConstantOfShape(const OpContext& c) {
  const Tensor* shape = c.constant(0);
  if (shape == nullptr || shape->rank() != 1 || shape->dtype() != DataType::kInt64) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": input must be a constant 1-D int64 shape (known when the plan "
        "is built)"));
  }
  Shape out;
  for (int64_t i = 0; i < shape->num_elements(); ++i) {
    const int64_t d = shape->ScalarAsInt64(i);
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": negative dim ", d, " in the shape"));
    }
    out.push_back(d);
  }
  DataType dtype = DataType::kFloat32;
  if (c.node.HasAttr("value")) {
    const Tensor& v = std::get<Tensor>(c.node.attributes.at("value"));
    if (v.num_elements() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": value must have one element"));
    }
    dtype = v.dtype();
  }
  return std::vector<TypedShape>{{dtype, out}};
}

class FillKernel : public Kernel {
 public:
  FillKernel(TypedShape out, Tensor value) : out_(std::move(out)), value_(std::move(value)) {}
  absl::Status Run(std::span<const Tensor>, std::span<Tensor> out, RunContext&) const override {
    out[0] = Tensor(out_.dtype, out_.shape);
    if (value_.empty()) return absl::OkStatus();  // zeros
    WithElementType(out_.dtype, [&](auto tag) {
      using T = decltype(tag);
      T v;
      std::memcpy(&v, value_.raw_data(), sizeof(T));
      std::fill_n(out[0].data<T>(), out[0].num_elements(), v);
    });
    return absl::OkStatus();
  }

 private:
  TypedShape out_;
  Tensor value_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildConstantOfShape(const OpContext& c) {
  Tensor value;
  if (c.node.HasAttr("value")) value = std::get<Tensor>(c.node.attributes.at("value"));
  return std::unique_ptr<Kernel>(
      new FillKernel(TypedShape{c.out_dtypes[0], c.out_shapes[0]}, value));
}

}  // namespace

extern const OpDef kShapeOp = {"Shape", 1, {}, InferShape, BuildShape, /*domain=*/"",
                              /*shape_only=*/true};
extern const OpDef kConstantOfShapeOp = {"ConstantOfShape", 9, {0}, InferConstantOfShape,
                                         BuildConstantOfShape};

}  // namespace qs
