// QEmbedding (domain quantserve): Gather of rows from a row-wise quantized
// table (engine/ops/rowwise_table.h), dequantized to float32 on lookup.
// Inputs: table uint8 [rows, row bytes] (constant), indices int32/int64 of
// any shape (negative ones count from the end). Attributes: bits (8 or 4),
// dim. Output: float32 [indices..., dim]. Made by quant/quantize_embeddings.
#include "absl/strings/str_cat.h"
#include "engine/ops/op_registry.h"
#include "engine/ops/rowwise_table.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<std::vector<TypedShape>> InferQEmbedding(const OpContext& c) {
  const int64_t bits = c.node.GetInt("bits", 0), dim = c.node.GetInt("dim", -1);
  const Shape& t = c.in_shapes[0];
  if ((bits != 8 && bits != 4) || dim < 0 || c.in_dtypes[0] != DataType::kUint8 ||
      t.size() != 2 || t[1] != RowwiseRowBytes(dim, static_cast<int>(bits))) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": table ", ShapeToString(t), " ", DataTypeName(c.in_dtypes[0]),
        " does not hold rows of dim ", dim, " at ", bits,
        " bits (uint8 [rows, dim*bits/8 + 4], bits 8 or 4)"));
  }
  if (c.in_dtypes[1] != DataType::kInt64 && c.in_dtypes[1] != DataType::kInt32) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.node.Describe(), ": indices must be int32 or int64"));
  }
  Shape out = c.in_shapes[1];
  out.push_back(dim);
  return std::vector<TypedShape>{{DataType::kFloat32, out}};
}

class QEmbeddingKernel : public Kernel {
 public:
  QEmbeddingKernel(Shape out, int64_t rows, int64_t dim, int bits)
      : out_(std::move(out)), rows_(rows), dim_(dim), bits_(bits) {}

  KernelInfo Info() const override {
    return {absl::StrCat("rowwise_u", bits_), "", absl::StrCat("u", bits_), "f32"};
  }

  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out,
                   RunContext&) const override {
    const Tensor& idx = in[1];
    const int64_t n = idx.num_elements();
    out[0] = Tensor(DataType::kFloat32, out_);
    float* dst = out[0].data<float>();
    for (int64_t i = 0; i < n; ++i, dst += dim_) {
      const int64_t raw = idx.dtype() == DataType::kInt32 ? idx.data<int32_t>()[i]
                                                          : idx.data<int64_t>()[i];
      if (raw < -rows_ || raw >= rows_) {
        return absl::InvalidArgumentError(absl::StrCat(
            "indices[", i, "] = ", raw, " is out of range [", -rows_, ", ", rows_ - 1, "]"));
      }
      DequantizeRow(in[0], raw < 0 ? raw + rows_ : raw, dim_, bits_, dst);
    }
    return absl::OkStatus();
  }

 private:
  Shape out_;
  int64_t rows_, dim_;
  int bits_;
};

absl::StatusOr<std::unique_ptr<Kernel>> BuildQEmbedding(const OpContext& c) {
  return std::unique_ptr<Kernel>(
      new QEmbeddingKernel(c.out_shapes[0], c.in_shapes[0][0], c.node.GetInt("dim", 0),
                           static_cast<int>(c.node.GetInt("bits", 8))));
}

}  // namespace

extern const OpDef kQEmbeddingOp = {"QEmbedding", 1, {0}, InferQEmbedding, BuildQEmbedding};

}  // namespace qs
