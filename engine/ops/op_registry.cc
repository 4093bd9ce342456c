#include "engine/ops/op_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace qs {

extern const OpDef kAddOp, kAveragePoolOp, kBatchNormalizationOp, kClipOp,
    kConcatOp, kConvOp, kDivOp, kDropoutOp, kFlattenOp, kGemmOp,
    kGlobalAveragePoolOp, kIdentityOp, kLeakyReluOp, kMatMulOp, kMaxPoolOp,
    kMulOp, kReluOp, kReshapeOp, kSigmoidOp, kSoftmaxOp, kSubOp, kTanhOp,
    kTransposeOp, kQuantizeLinearOp, kDequantizeLinearOp, kQConvOp, kQDenseOp;
extern const OpDef kGatherOp, kReduceSumOp, kQEmbeddingOp;
// Shape plumbing and transformer ops.
extern const OpDef kShapeOp, kConstantOfShapeOp, kUnsqueezeOp, kSqueezeOp, kSliceOp, kCastOp,
    kEqualOp, kLessOp, kGreaterOp, kWhereOp, kExpandOp, kReduceMeanOp, kReduceMaxOp,
    kReduceMinOp, kSqrtOp, kPowOp, kErfOp, kGeluOp, kLayerNormalizationOp;
extern const OpDef kTreeEnsembleClassifierOp, kTreeEnsembleRegressorOp, kLinearClassifierOp,
    kLinearRegressorOp, kSVMClassifierOp, kSVMRegressorOp, kScalerOp, kNormalizerOp,
    kZipMapOp;

namespace {
const std::vector<const OpDef*>& AllOps() {
  static const std::vector<const OpDef*> ops = {
      &kAddOp,       &kAveragePoolOp, &kBatchNormalizationOp, &kClipOp,
      &kConcatOp,    &kConvOp,        &kDivOp,                &kDropoutOp,
      &kFlattenOp,   &kGemmOp,        &kGlobalAveragePoolOp,  &kIdentityOp,
      &kLeakyReluOp, &kMatMulOp,      &kMaxPoolOp,            &kMulOp,
      &kReluOp,      &kReshapeOp,     &kSigmoidOp,            &kSoftmaxOp,
      &kSubOp,       &kTanhOp,        &kTransposeOp,          &kQuantizeLinearOp,
      &kDequantizeLinearOp, &kQConvOp,  &kQDenseOp,
      &kGatherOp,    &kReduceSumOp,   &kQEmbeddingOp,
      // Shape plumbing and transformer ops.
      &kShapeOp, &kConstantOfShapeOp, &kUnsqueezeOp, &kSqueezeOp, &kSliceOp, &kCastOp,
      &kEqualOp, &kLessOp, &kGreaterOp, &kWhereOp, &kExpandOp, &kReduceMeanOp,
      &kReduceMaxOp, &kReduceMinOp, &kSqrtOp, &kPowOp, &kErfOp, &kGeluOp,
      &kLayerNormalizationOp,
      // ai.onnx.ml (engine/ml/)
      &kTreeEnsembleClassifierOp, &kTreeEnsembleRegressorOp, &kLinearClassifierOp,
      &kLinearRegressorOp, &kSVMClassifierOp, &kSVMRegressorOp, &kScalerOp,
      &kNormalizerOp, &kZipMapOp};
  return ops;
}
}  // namespace

const OpDef* FindOp(std::string_view op_type) {
  for (const OpDef* op : AllOps()) {
    if (op_type == op->op_type) return op;
  }
  return nullptr;
}

int64_t NodeOpset(const Graph& graph, const std::string& domain) {
  return domain == kMlDomain ? graph.ml_opset : graph.opset;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> names;
  for (const OpDef* op : AllOps()) names.emplace_back(op->op_type);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status RequireFloatInputs(const OpContext& c) {
  for (size_t i = 0; i < c.in_dtypes.size(); ++i) {
    if (c.has_input(i) && c.in_dtypes[i] != DataType::kFloat32) {
      return absl::UnimplementedError(absl::StrCat(
          c.node.Describe(), ": input ", i, " has type ", DataTypeName(c.in_dtypes[i]),
          "; this op supports float32 only"));
    }
  }
  return absl::OkStatus();
}

std::string SupportedOpsList() {
  std::string s;
  for (const auto& name : SupportedOps()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace qs
