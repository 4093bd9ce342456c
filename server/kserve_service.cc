#include "server/kserve_service.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "server/kserve_codec.h"
#include "server/status_util.h"

namespace qs {

namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelMetadataResponse;

constexpr const char* kServerName = "quantserve";
constexpr const char* kServerVersion = "0.1.0";  // project(quantserve VERSION ...)
constexpr const char* kPlatform = "quantserve_onednn";

grpc::Status Invalid(const std::string& msg) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg);
}

// "'a', 'b'" for error messages.
template <typename Range, typename Name>
std::string Quoted(const Range& items, Name name) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "'" : ", '") + name(item) + "'";
  return s.empty() ? "none" : s;
}

std::string VariantNames(const BuiltModel& m) {
  return Quoted(m.variants, [](const BuiltVariant& v) { return v.report.name; });
}

std::string ValueNames(const std::vector<ValueInfo>& values) {
  return Quoted(values, [](const ValueInfo& v) { return v.name; });
}

Shape WireShape(const Shape& shape) {
  Shape out;
  for (int64_t d : shape) out.push_back(d < 0 ? -1 : d);
  return out;
}

void FillTensorMetadata(const ValueInfo& info, ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(info.name);
  out->set_datatype(ToKServeDatatype(info.dtype));
  for (int64_t d : WireShape(info.shape)) out->add_shape(d);
}

// The decoded input against what the model declares for it.
grpc::Status CheckAgainstModel(const Tensor& t, const ValueInfo& want, const std::string& field,
                               const std::string& datatype) {
  if (t.dtype() != want.dtype) {
    return Invalid(absl::StrCat(field, ".datatype: ", datatype, ", but the model expects ",
                                ToKServeDatatype(want.dtype)));
  }
  bool ok = t.rank() == static_cast<int64_t>(want.shape.size());
  for (size_t d = 0; ok && d < want.shape.size(); ++d) {
    ok = want.shape[d] < 0 || want.shape[d] == t.shape()[d];
  }
  if (!ok) {
    return Invalid(absl::StrCat(field, ".shape: ", ShapeToString(t.shape()),
                                ", but the model expects ", ShapeToString(want.shape),
                                " (? = any size)"));
  }
  return grpc::Status::OK;
}


}  // namespace

grpc::Status KServeServiceImpl::Resolve(const std::string& name, const std::string& version,
                                        const std::string& name_field,
                                        const std::string& version_field,
                                        std::shared_ptr<const ServedModel>* model,
                                        const BuiltVariant** variant) const {
  *model = registry_.Find(name);
  if (*model == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat(name_field, ": model '", name, "' is not served (models: ",
                                     registry_.Names(), ")"));
  }
  const std::string& v = version.empty() ? (*model)->default_variant : version;
  *variant = (*model)->built.Find(v);
  if (*variant == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat(version_field, ": '", v, "' is not a version of model '",
                                     name, "' (versions: ", VariantNames((*model)->built),
                                     ")"));
  }
  return grpc::Status::OK;
}

grpc::Status KServeServiceImpl::ServerLive(grpc::ServerContext*,
                                           const inference::ServerLiveRequest*,
                                           inference::ServerLiveResponse* resp) {
  resp->set_live(true);  // answering at all means the process serves
  return grpc::Status::OK;
}

grpc::Status KServeServiceImpl::ServerReady(grpc::ServerContext*,
                                            const inference::ServerReadyRequest*,
                                            inference::ServerReadyResponse* resp) {
  resp->set_ready(!registry_.gate().draining() && registry_.loaded());
  return grpc::Status::OK;
}

grpc::Status KServeServiceImpl::ModelReady(grpc::ServerContext*,
                                           const inference::ModelReadyRequest* req,
                                           inference::ModelReadyResponse* resp) {
  std::shared_ptr<const ServedModel> model;
  const BuiltVariant* variant = nullptr;
  resp->set_ready(Resolve(req->name(), req->version(), "name", "version", &model, &variant).ok());
  return grpc::Status::OK;
}

grpc::Status KServeServiceImpl::ServerMetadata(grpc::ServerContext*,
                                               const inference::ServerMetadataRequest*,
                                               inference::ServerMetadataResponse* resp) {
  resp->set_name(kServerName);
  resp->set_version(kServerVersion);
  return grpc::Status::OK;
}

grpc::Status KServeServiceImpl::ModelMetadata(grpc::ServerContext*,
                                              const inference::ModelMetadataRequest* req,
                                              ModelMetadataResponse* resp) {
  std::shared_ptr<const ServedModel> model;
  const BuiltVariant* variant = nullptr;
  grpc::Status s = Resolve(req->name(), req->version(), "name", "version", &model, &variant);
  if (!s.ok()) return s;
  resp->set_name(model->name());
  for (const auto& v : model->built.variants) resp->add_versions(v.report.name);
  resp->set_platform(kPlatform);
  for (const auto& in : variant->model->inputs()) FillTensorMetadata(in, resp->add_inputs());
  for (const auto& o : variant->model->outputs()) FillTensorMetadata(o, resp->add_outputs());
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* KServeServiceImpl::ModelInfer(grpc::CallbackServerContext* ctx,
                                                        const ModelInferRequest* req,
                                                        ModelInferResponse* resp) {
  return StartInferenceCall(ctx, registry_, metrics_,
                            [this, req, resp](RequestMetrics& metrics, PreparedRun& run) {
                              return Prepare(*req, resp, metrics, run);
                            });
}

grpc::Status KServeServiceImpl::Prepare(const ModelInferRequest& req, ModelInferResponse* resp,
                                        RequestMetrics& metrics, PreparedRun& run) const {
  std::shared_ptr<const ServedModel> model;
  const BuiltVariant* variant = nullptr;
  grpc::Status s = Resolve(req.model_name(), req.model_version(), "model_name",
                           "model_version", &model, &variant);
  if (!s.ok()) return s;  // NOT_FOUND: counted as model/variant "unknown"
  metrics.Serving(model->FindMetrics(variant->report.name));
  const CompiledModel& compiled = *variant->model;
  const auto& model_inputs = compiled.inputs();
  const auto& model_outputs = compiled.outputs();

  std::vector<int> output_index;
  for (int i = 0; i < req.outputs_size(); ++i) {
    const std::string& name = req.outputs(i).name();
    auto it = std::find_if(model_outputs.begin(), model_outputs.end(),
                           [&](const ValueInfo& o) { return o.name == name; });
    if (it == model_outputs.end()) {
      return Invalid(absl::StrCat("outputs[", i, "]: '", name, "' is not an output of model '",
                                  model->name(), "' (outputs: ", ValueNames(model_outputs),
                                  ")"));
    }
    output_index.push_back(static_cast<int>(it - model_outputs.begin()));
  }

  // Raw inputs: one raw_input_contents entry per input, in order, for all.
  const bool use_raw = req.raw_input_contents_size() > 0;
  NamedTensors inputs;
  for (int i = 0; i < req.inputs_size(); ++i) {
    const ModelInferRequest::InferInputTensor& in = req.inputs(i);
    const std::string field = absl::StrCat("inputs[", i, "] ('", in.name(), "')");
    const std::string raw_field = absl::StrCat("raw_input_contents[", i, "]");
    if (use_raw && i >= req.raw_input_contents_size()) {
      return Invalid(absl::StrCat(field, ": has no ", raw_field, " (", req.inputs_size(),
                                  " inputs, ", req.raw_input_contents_size(),
                                  " raw_input_contents); when raw_input_contents is used, "
                                  "every input must be given there"));
    }
    auto it = std::find_if(model_inputs.begin(), model_inputs.end(),
                           [&](const ValueInfo& v) { return v.name == in.name(); });
    if (it == model_inputs.end()) {
      return Invalid(absl::StrCat(field, ": '", in.name(), "' is not an input of model '",
                                  model->name(), "' (inputs: ", ValueNames(model_inputs), ")"));
    }
    auto t = DecodeKServeInput(in, use_raw ? &req.raw_input_contents(i) : nullptr, field,
                               raw_field, limits_);
    if (!t.ok()) return ToGrpcStatus(t.status());
    s = CheckAgainstModel(*t, *it, field, in.datatype());
    if (!s.ok()) return s;
    inputs.emplace_back(in.name(), std::move(*t));
  }
  if (req.raw_input_contents_size() > req.inputs_size()) {
    return Invalid(absl::StrCat("raw_input_contents: ", req.raw_input_contents_size(),
                                " entries, but the request has ", req.inputs_size(),
                                " inputs; give one entry per input, in order"));
  }

  auto ordered = compiled.OrderInputs(inputs);  // missing or repeated inputs
  if (!ordered.ok()) return ToGrpcStatus(ordered.status());
  // Through the variant's batcher, like quantserve.v1 Predict, so both APIs
  // share batching and queue limits.
  run.variant = model->IndexOf(variant->report.name);
  run.inputs = *std::move(ordered);
  run.request_id = req.id();
  // The request and response live until the call is done; `model_outputs`
  // as long as the call holds the model.
  run.respond = [&req, resp, &model_outputs, use_raw, output_index, model_name = model->name(),
                 version = variant->report.name](const std::vector<Tensor>& outputs) mutable {
    resp->set_model_name(model_name);
    resp->set_model_version(version);
    resp->set_id(req.id());
    if (output_index.empty()) {
      output_index.resize(outputs.size());
      std::iota(output_index.begin(), output_index.end(), 0);
    }
    for (int i : output_index) {
      EncodeKServeOutput(outputs[i], model_outputs[i].name, resp->add_outputs(),
                         use_raw ? resp->add_raw_output_contents() : nullptr);
    }
    return grpc::Status::OK;
  };
  run.model = std::move(model);
  return grpc::Status::OK;
}

}  // namespace qs
