#include "server/inference_service.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "engine/output_compare.h"
#include "server/status_util.h"

namespace qs {

namespace v1 = quantserve::v1;

namespace {

grpc::Status Invalid(const std::string& msg) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg);
}

std::string VariantNames(const BuiltModel& m) {
  std::string s;
  for (const auto& v : m.variants) s += (s.empty() ? "'" : ", '") + v.report.name + "'";
  return s;
}

void FillTensorMetadata(const ValueInfo& info, v1::TensorMetadata* out) {
  out->set_name(info.name);
  out->set_datatype(ToWireType(info.dtype));
  for (int64_t d : info.shape) out->add_shape(d < 0 ? -1 : d);
}

// Top-k (descending) of each sample's scores in the first output.
void FillTopK(const Tensor& scores, uint32_t k, v1::PredictResponse* resp) {
  if (scores.dtype() != DataType::kFloat32 || scores.rank() < 1 || scores.shape()[0] == 0) return;
  const int64_t n = scores.shape()[0];
  const int64_t classes = scores.num_elements() / n;
  const int64_t kk = std::min<int64_t>(k, classes);
  std::vector<int32_t> idx(classes);
  for (int64_t s = 0; s < n; ++s) {
    const float* row = scores.data<float>() + s * classes;
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                      [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    v1::ClassScores* cs = resp->add_top_k();
    for (int64_t i = 0; i < kk; ++i) {
      cs->add_indices(idx[i]);
      cs->add_scores(row[idx[i]]);
    }
  }
}


}  // namespace

grpc::Status InferenceServiceImpl::ModelNotFound(const std::string& name) const {
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("model: '", name, "' is not served (models: ",
                                   registry_.Names(), ")"));
}

void FillModelMetadata(const ServedModel& model, v1::ModelMetadata* out) {
  out->set_name(model.name());
  out->set_default_variant(model.default_variant);
  if (!model.built.variants.empty()) {
    const CompiledModel& m = *model.built.variants.front().model;
    for (const auto& in : m.inputs()) FillTensorMetadata(in, out->add_inputs());
    for (const auto& o : m.outputs()) FillTensorMetadata(o, out->add_outputs());
  }
  for (const auto& v : model.built.variants) {
    const VariantReport& r = v.report;
    v1::VariantMetadata* vm = out->add_variants();
    vm->set_name(r.name);
    vm->set_weight_bits(r.weight_bits);
    vm->set_activation_bits(r.activation_bits);
    vm->set_method(r.method);
    vm->set_weight_bytes(r.weight_bytes);
    vm->set_accuracy(r.accuracy);
    vm->set_top1_agreement(r.top1_agreement);
    vm->set_is_default(r.name == model.default_variant);
    vm->set_build_seconds(r.build_seconds);
    vm->set_evaluated(r.evaluated);
  }
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Predict(grpc::CallbackServerContext* ctx,
                                                        const v1::PredictRequest* req,
                                                        v1::PredictResponse* resp) {
  return StartInferenceCall(ctx, registry_, metrics_,
                            [this, req, resp](RequestMetrics& metrics, PreparedRun& run) {
                              return Prepare(*req, resp, metrics, run);
                            });
}

grpc::Status InferenceServiceImpl::Prepare(const v1::PredictRequest& req,
                                           v1::PredictResponse* resp, RequestMetrics& metrics,
                                           PreparedRun& run) const {
  // NOT_FOUND for the model or variant: `metrics` counts it as "unknown".
  std::shared_ptr<const ServedModel> model = registry_.Find(req.model());
  if (model == nullptr) return ModelNotFound(req.model());
  const std::string variant_name =
      req.variant().empty() ? model->default_variant : req.variant();
  const BuiltVariant* variant = model->built.Find(variant_name);
  if (variant == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("variant: '", variant_name, "' is not a variant of model '",
                                     req.model(), "' (variants: ", VariantNames(model->built),
                                     ")"));
  }
  metrics.Serving(model->FindMetrics(variant_name));
  const CompiledModel& compiled = *variant->model;
  std::vector<int> output_index;
  for (int i = 0; i < req.output_names_size(); ++i) {
    const auto& outs = compiled.outputs();
    auto it = std::find_if(outs.begin(), outs.end(),
                           [&](const ValueInfo& o) { return o.name == req.output_names(i); });
    if (it == outs.end()) {
      return Invalid(absl::StrCat("output_names[", i, "]: '", req.output_names(i),
                                  "' is not an output of model '", req.model(), "'"));
    }
    output_index.push_back(static_cast<int>(it - outs.begin()));
  }
  NamedTensors inputs;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const v1::Tensor& in = req.inputs(i);
    auto t = DecodeTensor(in, absl::StrCat("inputs[", i, "] ('", in.name(), "')"), limits_);
    if (!t.ok()) return ToGrpcStatus(t.status());
    inputs.emplace_back(in.name(), std::move(*t));
  }
  auto ordered = compiled.OrderInputs(inputs);
  if (!ordered.ok()) return ToGrpcStatus(ordered.status());
  absl::Status valid = compiled.ValidateInputs(*ordered);
  if (!valid.ok()) return ToGrpcStatus(valid);

  run.variant = model->IndexOf(variant_name);
  run.inputs = *std::move(ordered);
  run.request_id = req.request_id();
  // The request and response live until the call is done; `compiled` as
  // long as the call holds the model.
  run.respond = [&req, resp, &compiled, model_name = model->name(), variant_name,
                 output_index](const std::vector<Tensor>& outputs) mutable {
    resp->set_model(model_name);
    resp->set_variant(variant_name);
    resp->set_request_id(req.request_id());
    if (output_index.empty()) {
      output_index.resize(outputs.size());
      std::iota(output_index.begin(), output_index.end(), 0);
    }
    for (int i : output_index) {
      EncodeTensor(outputs[i], compiled.outputs()[i].name, req.raw_output(), resp->add_outputs());
    }
    // Top-k of the first float32 output: the logits of neural models, the
    // class probabilities of ai.onnx.ml classifiers (whose first output is
    // the int64 label).
    if (const Tensor* scores = FirstFloatOutput(outputs); req.top_k() > 0 && scores != nullptr) {
      FillTopK(*scores, req.top_k(), resp);
    }
    return grpc::Status::OK;
  };
  run.model = std::move(model);
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::GetModelMetadata(grpc::ServerContext*,
                                                    const v1::GetModelMetadataRequest* req,
                                                    v1::ModelMetadata* resp) {
  std::shared_ptr<const ServedModel> model = registry_.Find(req->model());
  if (model == nullptr) return ModelNotFound(req->model());
  FillModelMetadata(*model, resp);
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::ListModels(grpc::ServerContext*,
                                              const v1::ListModelsRequest*,
                                              v1::ListModelsResponse* resp) {
  for (const auto& m : registry_.List()) FillModelMetadata(*m, resp->add_models());
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::Feedback(grpc::ServerContext*,
                                            const v1::FeedbackRequest* req,
                                            v1::FeedbackResponse* resp) {
  std::shared_ptr<const ServedModel> model = registry_.Find(req->model());
  if (model == nullptr) return ModelNotFound(req->model());
  if (model->feedback == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("model: Feedback is off for model '", req->model(),
                                     "' (its drift.feedback_capacity is 0)"));
  }
  if (req->request_id().empty()) return Invalid("request_id: empty; name an earlier request");
  for (int i = 0; i < req->labels_size(); ++i) {
    if (req->labels(i) < 0) {
      return Invalid(absl::StrCat("labels[", i, "]: ", req->labels(i),
                                  " is not a class index (must be >= 0)"));
    }
  }
  FeedbackStore::Taken taken =
      model->feedback->Take(req->request_id(), static_cast<size_t>(req->labels_size()));
  if (taken.outcome == FeedbackStore::Taken::Outcome::kUnknown) {
    if (model->model_metrics && model->model_metrics->feedback_unmatched) {
      model->model_metrics->feedback_unmatched->Increment();
    }
    return grpc::Status(
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("request_id: '", req->request_id(), "' is not remembered for model '",
                     req->model(), "' (never seen, already reported, or older than the ",
                     model->feedback->capacity(), " most recent requests with an id)"));
  }
  if (taken.outcome == FeedbackStore::Taken::Outcome::kWrongCount) {
    return Invalid(absl::StrCat("labels: ", req->labels_size(), " labels, but request '",
                                req->request_id(), "' had ", taken.samples,
                                " samples (one label per sample)"));
  }
  const FeedbackStore::Predictions& predictions = taken.predictions;
  for (size_t v = 0; v < predictions.size(); ++v) {
    const std::vector<int32_t>& top1 = predictions[v];
    if (top1.empty()) continue;
    int32_t correct = 0;
    for (size_t i = 0; i < top1.size(); ++i) correct += top1[i] == req->labels(i);
    v1::VariantFeedback* out = resp->add_variants();
    out->set_variant(model->built.variants[v].report.name);
    out->set_samples(static_cast<int32_t>(top1.size()));
    out->set_correct(correct);
    VariantMetrics* m = v < model->metrics.size() ? model->metrics[v].get() : nullptr;
    if (m != nullptr && m->feedback_samples != nullptr) {
      m->feedback_samples->Increment(static_cast<double>(top1.size()));
      m->feedback_correct->Increment(correct);
    }
  }
  return grpc::Status::OK;
}

}  // namespace qs
