// ai.onnx.ml Scaler, Normalizer and ZipMap.
//
// ZipMap turns [N, C] class probabilities into a sequence of maps
// {label: probability}. The engine has no map values: its output here is
// the same float tensor [N, C] (columns in classlabels order), which is what
// the gRPC APIs send; labels must number C.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/ml/ml_common.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

absl::StatusOr<std::vector<TypedShape>> SameShapeFloat(const OpContext& c) {
  RETURN_IF_ERROR(ml::RequireNumericInput(c));
  RETURN_IF_ERROR(ml::InputRows(c).status());
  return std::vector<TypedShape>{{DataType::kFloat32, c.in_shapes[0]}};
}

// Scaler: Y = (X - offset) · scale; offset and scale have 1 or F values.
class ScalerKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out, RunContext&) const override {
    const Tensor x = ml::AsFloat(in[0]);
    out[0] = Tensor(DataType::kFloat32, x.shape());
    const float* src = x.data<float>();
    float* dst = out[0].data<float>();
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const int64_t f = i % features_;
      dst[i] = (src[i] - offset_[offset_.size() == 1 ? 0 : f]) * scale_[scale_.size() == 1 ? 0 : f];
    }
    return absl::OkStatus();
  }
  KernelInfo Info() const override {
    KernelInfo info;
    info.weight_bytes = static_cast<int64_t>(offset_.size() + scale_.size()) * 4;
    return info;
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    ASSIGN_OR_RETURN(ml::Rows rows, ml::InputRows(c));
    auto k = std::make_unique<ScalerKernel>();
    k->features_ = rows.features;
    k->offset_ = c.node.GetFloats("offset");
    k->scale_ = c.node.GetFloats("scale");
    if (k->offset_.empty()) k->offset_ = {0.f};
    if (k->scale_.empty()) k->scale_ = {1.f};
    for (auto [name, v] : {std::pair{"offset", &k->offset_}, {"scale", &k->scale_}}) {
      if (v->size() != 1 && static_cast<int64_t>(v->size()) != rows.features) {
        return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": ", name, " has ",
                                                       v->size(), " values; expected 1 or ",
                                                       rows.features));
      }
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  int64_t features_ = 1;
  std::vector<float> offset_, scale_;
};

// Normalizer: each row divided by its max (MAX), Σ|x| (L1) or √Σx² (L2);
// an all-zero norm leaves the row as it is.
class NormalizerKernel : public Kernel {
 public:
  enum class Norm { kMax, kL1, kL2 };
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out, RunContext&) const override {
    const Tensor x = ml::AsFloat(in[0]);
    out[0] = Tensor(DataType::kFloat32, x.shape());
    const int64_t f = x.rank() == 1 ? x.shape()[0] : x.shape()[1];
    const int64_t n = f == 0 ? 0 : x.num_elements() / f;
    for (int64_t r = 0; r < n; ++r) {
      const float* src = x.data<float>() + r * f;
      float* dst = out[0].data<float>() + r * f;
      double norm = norm_ == Norm::kMax ? -INFINITY : 0.0;
      for (int64_t i = 0; i < f; ++i) {
        if (norm_ == Norm::kMax) norm = std::max<double>(norm, src[i]);
        else if (norm_ == Norm::kL1) norm += std::fabs(src[i]);
        else norm += static_cast<double>(src[i]) * src[i];
      }
      if (norm_ == Norm::kL2) norm = std::sqrt(norm);
      for (int64_t i = 0; i < f; ++i) {
        dst[i] = norm != 0 && std::isfinite(norm) ? static_cast<float>(src[i] / norm) : src[i];
      }
    }
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext& c) {
    auto k = std::make_unique<NormalizerKernel>();
    const std::string norm = c.node.GetString("norm", "MAX");
    if (norm == "MAX") k->norm_ = Norm::kMax;
    else if (norm == "L1") k->norm_ = Norm::kL1;
    else if (norm == "L2") k->norm_ = Norm::kL2;
    else {
      return absl::InvalidArgumentError(
          absl::StrCat(c.node.Describe(), ": norm '", norm, "' is not MAX, L1 or L2"));
    }
    return std::unique_ptr<Kernel>(std::move(k));
  }

 private:
  Norm norm_ = Norm::kMax;
};

absl::StatusOr<std::vector<TypedShape>> InferZipMap(const OpContext& c) {
  if (c.in_dtypes[0] != DataType::kFloat32 || c.in_shapes[0].size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        c.node.Describe(), ": input must be float [N, C]; got ", DataTypeName(c.in_dtypes[0]),
        " ", ShapeToString(c.in_shapes[0])));
  }
  const size_t ints = c.node.GetInts("classlabels_int64s").size();
  size_t strings = 0;
  if (auto it = c.node.attributes.find("classlabels_strings"); it != c.node.attributes.end()) {
    if (auto* v = std::get_if<std::vector<std::string>>(&it->second)) strings = v->size();
  }
  const int64_t labels = static_cast<int64_t>(std::max(ints, strings));
  if (labels != c.in_shapes[0][1]) {
    return absl::InvalidArgumentError(absl::StrCat(c.node.Describe(), ": ", labels,
                                                   " class labels for ", c.in_shapes[0][1],
                                                   " probability columns"));
  }
  return std::vector<TypedShape>{{DataType::kFloat32, c.in_shapes[0]}};
}

// The probabilities pass through unchanged (shared buffer, no copy).
class ZipMapKernel : public Kernel {
 public:
  absl::Status Run(std::span<const Tensor> in, std::span<Tensor> out, RunContext&) const override {
    out[0] = in[0];
    return absl::OkStatus();
  }
  static absl::StatusOr<std::unique_ptr<Kernel>> Build(const OpContext&) {
    return std::unique_ptr<Kernel>(std::make_unique<ZipMapKernel>());
  }
};

}  // namespace

extern const OpDef kScalerOp = {"Scaler", 1, {}, SameShapeFloat, ScalerKernel::Build, kMlDomain};
extern const OpDef kNormalizerOp = {"Normalizer", 1, {}, SameShapeFloat,
                                    NormalizerKernel::Build, kMlDomain};
extern const OpDef kZipMapOp = {"ZipMap", 1, {}, InferZipMap, ZipMapKernel::Build, kMlDomain};

}  // namespace qs
