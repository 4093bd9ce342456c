// Arbitrary bytes as a quantserve.v1.PredictRequest: bytes that parse are
// sent to Predict of a real, loaded server over a loopback channel
// (fuzz_server.h), then, for a served request with a request_id, to
// Feedback.
//
// Properties beyond "no crash, no sanitizer report":
//  - an error has a non-empty message and is never INTERNAL or UNKNOWN;
//  - an OK response is consistent with the request and the model: one
//    output per requested name (or every model output), each with the
//    model's datatype and fixed dims, the request's batch rows, and exactly
//    as many values (typed or raw bytes) as its shape needs; one top_k entry
//    per row with min(top_k, classes) indices.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <string>

#include "fuzz_server.h"

namespace {

namespace v1 = quantserve::v1;
using qs::fuzz::Fail;

size_t ValueCount(const v1::Tensor& t, size_t element_size) {
  if (!t.raw_data().empty()) return t.raw_data().size() / element_size;
  return static_cast<size_t>(t.float_data_size() + t.int64_data_size() + t.int32_data_size() +
                             t.double_data_size());
}

void CheckResponse(const v1::PredictRequest& req, const v1::PredictResponse& resp) {
  auto model = qs::fuzz::GetServer().server->registry().Find(req.model());
  if (model == nullptr) Fail("Predict OK for unknown model '%s'", req.model().c_str());
  const std::string variant = req.variant().empty() ? model->default_variant : req.variant();
  const qs::BuiltVariant* built = model->built.Find(variant);
  if (built == nullptr || resp.variant() != variant || resp.model() != req.model()) {
    Fail("Predict OK answered as %s/%s for %s/%s", resp.model().c_str(),
         resp.variant().c_str(), req.model().c_str(), variant.c_str());
  }
  const qs::CompiledModel& compiled = *built->model;
  // The batch: rows of the first input (the bundled model has one).
  const int64_t rows = req.inputs(0).shape_size() > 0 ? req.inputs(0).shape(0) : -1;
  const int want_outputs = req.output_names_size() > 0
                               ? req.output_names_size()
                               : static_cast<int>(compiled.outputs().size());
  if (resp.outputs_size() != want_outputs) {
    Fail("Predict OK with %d outputs, want %d", resp.outputs_size(), want_outputs);
  }
  for (int i = 0; i < resp.outputs_size(); ++i) {
    const v1::Tensor& out = resp.outputs(i);
    const std::string want_name =
        req.output_names_size() > 0 ? req.output_names(i) : compiled.outputs()[i].name;
    const qs::ValueInfo* info = nullptr;
    for (const qs::ValueInfo& o : compiled.outputs()) {
      if (o.name == want_name) info = &o;
    }
    if (out.name() != want_name || info == nullptr) {
      Fail("Predict output %d is '%s', want '%s'", i, out.name().c_str(), want_name.c_str());
    }
    if (qs::FromWireType(out.datatype()) != info->dtype) {
      Fail("Predict output '%s' has datatype %d", out.name().c_str(), out.datatype());
    }
    bool ok = out.shape_size() == static_cast<int>(info->shape.size());
    for (int d = 0; ok && d < out.shape_size(); ++d) {
      ok = out.shape(d) >= 0 && (info->shape[d] < 0 || info->shape[d] == out.shape(d));
    }
    if (ok && out.shape_size() > 0 && info->shape[0] < 0) ok = out.shape(0) == rows;
    int64_t n = 1;
    for (int64_t d : out.shape()) n *= d;
    const size_t element = qs::DataTypeSize(info->dtype);
    if (!ok || ValueCount(out, element) != static_cast<size_t>(n) ||
        (req.raw_output() && out.raw_data().size() != n * element)) {
      Fail("Predict output '%s': shape (%d dims, %lld values) inconsistent with the model "
           "or the %lld request rows",
           out.name().c_str(), out.shape_size(), static_cast<long long>(ValueCount(out, element)),
           static_cast<long long>(rows));
    }
  }
  if (req.top_k() > 0 && rows > 0) {
    if (resp.top_k_size() != rows) Fail("top_k: %d entries for %lld rows", resp.top_k_size(),
                                        static_cast<long long>(rows));
    const qs::ValueInfo& first = compiled.outputs()[0];
    // FillTopK: the first model output, one row per sample.
    int64_t classes = 1;
    for (size_t d = 1; d < first.shape.size(); ++d) classes *= first.shape[d];
    if (first.shape.empty() || classes <= 0) Fail("top_k on an output of unknown size");
    for (const v1::ClassScores& cs : resp.top_k()) {
      const int64_t want = std::min<int64_t>(req.top_k(), classes);
      if (cs.indices_size() != want || cs.scores_size() != want) {
        Fail("top_k: %d indices, want %lld", cs.indices_size(), static_cast<long long>(want));
      }
      for (int32_t idx : cs.indices()) {
        if (idx < 0 || idx >= classes) Fail("top_k index %d out of range", idx);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qs::fuzz::GetServer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::PredictRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return -1;  // not in the corpus
  qs::fuzz::FuzzServer& s = qs::fuzz::GetServer();
  v1::PredictResponse resp;
  grpc::Status status;
  {
    grpc::ClientContext ctx;
    status = s.predict_stub->Predict(&ctx, req, &resp);
  }
  qs::fuzz::WaitIdle();
  if (!status.ok()) {
    qs::fuzz::CheckGrpcError(status, "Predict");
    return 0;
  }
  if (req.inputs_size() == 0) Fail("Predict OK without inputs");
  CheckResponse(req, resp);
  if (!req.request_id().empty()) {
    v1::FeedbackRequest feedback;
    feedback.set_model(req.model());
    feedback.set_request_id(req.request_id());
    for (int i = 0; i < req.inputs(0).shape(0); ++i) feedback.add_labels(i % 10);
    v1::FeedbackResponse feedback_resp;
    grpc::ServerContext ctx;
    qs::fuzz::CheckGrpcError(s.predict->Feedback(&ctx, &feedback, &feedback_resp), "Feedback");
  }
  return 0;
}
