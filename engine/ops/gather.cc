// ONNX Gather: out = data.take(indices, axis). Any axis (negative counts
// from the back), int32 or int64 indices (negative ones count from the end
// of the axis), any element type: it moves bytes, so constant folding can run
// it on int64 shape tensors and embedding lookups run it on float tables.
// Out-of-range indices are InvalidArgument (at compile time when the indices
// are constant, otherwise at run time).
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<int64_t> GatherAxis(const OpContext& c) {
  const int64_t rank = static_cast<int64_t>(c.in_shapes[0].size());
  const int64_t axis = c.node.GetInt("axis", 0);
  if (rank == 0 || axis < -rank || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": axis ", axis, " is out of range for data of rank ", rank));
  }
  return axis < 0 ? axis + rank : axis;
}

absl::Status CheckIndexType(const OpContext& c) {
  if (c.in_dtypes[1] != DataType::kInt64 && c.in_dtypes[1] != DataType::kInt32) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": indices have type ", DataTypeName(c.in_dtypes[1]),
        "; Gather takes int32 or int64 indices"));
  }
  return absl::OkStatus();
}

// Index i of `indices` (int32 or int64) made non-negative; an error names the
// position and the allowed range.
absl::StatusOr<int64_t> ResolveIndex(const Tensor& indices, int64_t i, int64_t dim) {
  const int64_t raw = indices.dtype() == DataType::kInt32
                          ? indices.data<int32_t>()[i]
                          : indices.data<int64_t>()[i];
  if (raw < -dim || raw >= dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "indices[", i, "] = ", raw, " is out of range [", -dim, ", ", dim - 1, "]"));
  }
  return raw < 0 ? raw + dim : raw;
}

absl::StatusOr<std::vector<TypedShape>> InferGather(const OpContext& c) {
  ASSIGN_OR_RETURN(int64_t axis, GatherAxis(c));
  RETURN_IF_ERROR(CheckIndexType(c));
  const Shape& data = c.in_shapes[0];
  if (const Tensor* idx = c.constant(1)) {
    for (int64_t i = 0; i < idx->num_elements(); ++i) {
      auto r = ResolveIndex(*idx, i, data[axis]);
      if (!r.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(c.node.Describe(), ": ", r.status().message()));
      }
    }
  }
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), c.in_shapes[1].begin(), c.in_shapes[1].end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  return std::vector<TypedShape>{{c.in_dtypes[0], out}};
}

class GatherKernel : public Kernel {
 public:
  GatherKernel(Shape out_shape, int64_t outer, int64_t dim, int64_t inner)
      : out_shape_(std::move(out_shape)), outer_(outer), dim_(dim), inner_(inner) {}

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    const Tensor& indices = in[1];
    const int64_t n = indices.num_elements();
    // Resolve (and bounds-check) every index before writing anything.
    std::vector<int64_t> rows(n);
    for (int64_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(rows[i], ResolveIndex(indices, i, dim_));
    }
    out[0] = Tensor(in[0].dtype(), out_shape_);
    const size_t chunk = inner_ * DataTypeSize(in[0].dtype());
    if (chunk == 0) return absl::OkStatus();
    const auto* src = static_cast<const std::byte*>(in[0].raw_data());
    auto* dst = static_cast<std::byte*>(out[0].raw_data());
    for (int64_t o = 0; o < outer_; ++o) {
      const std::byte* block = src + o * dim_ * chunk;
      for (int64_t i = 0; i < n; ++i, dst += chunk) {
        std::memcpy(dst, block + rows[i] * chunk, chunk);
      }
    }
    return absl::OkStatus();
  }

 private:
  Shape out_shape_;
  int64_t outer_, dim_, inner_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildGather(const OpContext& c) {
  ASSIGN_OR_RETURN(int64_t axis, GatherAxis(c));
  const Shape& data = c.in_shapes[0];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data[d];
  for (size_t d = axis + 1; d < data.size(); ++d) inner *= data[d];
  return std::unique_ptr<Kernel>(
      new GatherKernel(c.out_shapes[0], outer, data[axis], inner));
}

}  // namespace

extern const OpDef kGatherOp = {"Gather", 1, {}, InferGather, BuildGather};

}  // namespace qs
