// Equal, Less, Greater with NumPy broadcasting → bool.
#include "absl/strings/str_cat.h"
#include "engine/ops/broadcast.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<std::vector<TypedShape>> InferCompare(const OpContext& c) {
  if (c.in_dtypes[0] != c.in_dtypes[1]) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": inputs differ in type (", DataTypeName(c.in_dtypes[0]), ", ",
        DataTypeName(c.in_dtypes[1]), ")"));
  }
  auto out = BroadcastShapes(c.in_shapes[0], c.in_shapes[1]);
  if (!out.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": ", out.status().message()));
  }
  return std::vector<TypedShape>{{DataType::kBool, *out}};
}

template <typename T>
void Compare(const std::string& op, const Tensor& a, const Tensor& b, Tensor& out) {
  if (op == "Equal") {
    BroadcastBinary<T, bool>(a, b, out, [](T x, T y) { return x == y; });
  } else if (op == "Less") {
    BroadcastBinary<T, bool>(a, b, out, [](T x, T y) { return x < y; });
  } else {
    BroadcastBinary<T, bool>(a, b, out, [](T x, T y) { return x > y; });
  }
}

class CompareKernel : public Kernel {
 public:
  CompareKernel(std::string op, Shape out) : op_(std::move(op)), out_(std::move(out)) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    out[0] = Tensor(DataType::kBool, out_);
    switch (in[0].dtype()) {
      case DataType::kFloat32: Compare<float>(op_, in[0], in[1], out[0]); break;
      case DataType::kFloat64: Compare<double>(op_, in[0], in[1], out[0]); break;
      case DataType::kInt64: Compare<int64_t>(op_, in[0], in[1], out[0]); break;
      case DataType::kInt32: Compare<int32_t>(op_, in[0], in[1], out[0]); break;
      case DataType::kInt8: Compare<int8_t>(op_, in[0], in[1], out[0]); break;
      case DataType::kUint8: Compare<uint8_t>(op_, in[0], in[1], out[0]); break;
      case DataType::kBool: Compare<bool>(op_, in[0], in[1], out[0]); break;
      default:
        return absl::UnimplementedError(
            absl::StrCat("cannot compare ", DataTypeName(in[0].dtype())));
    }
    return absl::OkStatus();
  }

 private:
  std::string op_;
  Shape out_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildCompare(const OpContext& c) {
  return std::unique_ptr<Kernel>(new CompareKernel(c.node.op_type, c.out_shapes[0]));
}

}  // namespace

extern const OpDef kEqualOp = {"Equal", 7, {}, InferCompare, BuildCompare};
extern const OpDef kLessOp = {"Less", 7, {}, InferCompare, BuildCompare};
extern const OpDef kGreaterOp = {"Greater", 7, {}, InferCompare, BuildCompare};

}  // namespace qs
