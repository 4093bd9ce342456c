// Cast between float32, float64, int64, int32, int8, uint8 and bool.
#include "absl/strings/str_cat.h"
#include "engine/onnx_tensor.h"
#include "engine/ops/element_copy.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<DataType> TargetType(const OpContext& c) {
  const int64_t to = c.node.GetInt("to", 0);
  const DataType t = DataTypeFromOnnx(static_cast<int>(to));
  if (!WithNumericType(t, [](auto) {})) {
    return absl::UnimplementedError(
        absl::StrCat(c.node.Describe(), ": cannot cast to ONNX type ", to));
  }
  return t;
}

absl::StatusOr<std::vector<TypedShape>> InferCast(const OpContext& c) {
  ASSIGN_OR_RETURN(DataType to, TargetType(c));
  if (!WithNumericType(c.in_dtypes[0], [](auto) {})) {
    return absl::UnimplementedError(absl::StrCat(
        c.node.Describe(), ": cannot cast from ", DataTypeName(c.in_dtypes[0])));
  }
  return std::vector<TypedShape>{{to, c.in_shapes[0]}};
}

class CastKernel : public Kernel {
 public:
  explicit CastKernel(DataType to) : to_(to) {}
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    if (in[0].dtype() == to_) {
      out[0] = in[0];
      return absl::OkStatus();
    }
    out[0] = Tensor(to_, in[0].shape());
    const int64_t n = in[0].num_elements();
    WithNumericType(in[0].dtype(), [&](auto from_tag) {
      using From = decltype(from_tag);
      WithNumericType(to_, [&](auto to_tag) {
        using To = decltype(to_tag);
        const From* src = in[0].data<From>();
        To* dst = out[0].data<To>();
        for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<To>(src[i]);
      });
    });
    return absl::OkStatus();
  }

 private:
  DataType to_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildCast(const OpContext& c) {
  return std::unique_ptr<Kernel>(new CastKernel(c.out_dtypes[0]));
}

}  // namespace

extern const OpDef kCastOp = {"Cast", 6, {}, InferCast, BuildCast};

}  // namespace qs
