// Arbitrary bytes as a KServe v2 inference.ModelInferRequest: bytes that
// parse are sent to ModelInfer of a real, loaded server over a loopback
// channel (fuzz_server.h), and the same model name/version to ModelReady and
// ModelMetadata.
//
// Properties beyond "no crash, no sanitizer report":
//  - an error has a non-empty message and is never INTERNAL or UNKNOWN;
//  - an OK response is consistent with the request and the model: one
//    output per requested output (or every model output), each with the
//    model's datatype and fixed dims, the request's batch rows, and exactly
//    as many values as its shape needs: in raw_output_contents (one entry
//    per output) when the request used raw_input_contents, else in contents;
//  - ModelReady is true exactly when ModelMetadata succeeds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_server.h"
#include "server/kserve_codec.h"

namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using qs::fuzz::Fail;

size_t ContentsCount(const inference::InferTensorContents& c) {
  return static_cast<size_t>(c.bool_contents_size() + c.int_contents_size() +
                             c.int64_contents_size() + c.uint_contents_size() +
                             c.uint64_contents_size() + c.fp32_contents_size() +
                             c.fp64_contents_size() + c.bytes_contents_size());
}

void CheckResponse(const ModelInferRequest& req, const ModelInferResponse& resp) {
  auto model = qs::fuzz::GetServer().server->registry().Find(req.model_name());
  if (model == nullptr) Fail("ModelInfer OK for unknown model '%s'", req.model_name().c_str());
  const std::string variant =
      req.model_version().empty() ? model->default_variant : req.model_version();
  const qs::BuiltVariant* built = model->built.Find(variant);
  if (built == nullptr || resp.model_version() != variant ||
      resp.model_name() != req.model_name() || resp.id() != req.id()) {
    Fail("ModelInfer OK answered as %s/%s id '%s' for %s/%s id '%s'",
         resp.model_name().c_str(), resp.model_version().c_str(), resp.id().c_str(),
         req.model_name().c_str(), variant.c_str(), req.id().c_str());
  }
  const qs::CompiledModel& compiled = *built->model;
  const int64_t rows = req.inputs(0).shape_size() > 0 ? req.inputs(0).shape(0) : -1;
  const bool raw = req.raw_input_contents_size() > 0;
  const int want_outputs = req.outputs_size() > 0 ? req.outputs_size()
                                                  : static_cast<int>(compiled.outputs().size());
  if (resp.outputs_size() != want_outputs) {
    Fail("ModelInfer OK with %d outputs, want %d", resp.outputs_size(), want_outputs);
  }
  if (resp.raw_output_contents_size() != (raw ? want_outputs : 0)) {
    Fail("ModelInfer OK with %d raw_output_contents (raw inputs: %d, %d outputs)",
         resp.raw_output_contents_size(), raw, want_outputs);
  }
  for (int i = 0; i < resp.outputs_size(); ++i) {
    const ModelInferResponse::InferOutputTensor& out = resp.outputs(i);
    const std::string want_name =
        req.outputs_size() > 0 ? req.outputs(i).name() : compiled.outputs()[i].name;
    const qs::ValueInfo* info = nullptr;
    for (const qs::ValueInfo& o : compiled.outputs()) {
      if (o.name == want_name) info = &o;
    }
    if (out.name() != want_name || info == nullptr) {
      Fail("ModelInfer output %d is '%s', want '%s'", i, out.name().c_str(), want_name.c_str());
    }
    if (out.datatype() != qs::ToKServeDatatype(info->dtype)) {
      Fail("ModelInfer output '%s' has datatype '%s'", out.name().c_str(),
           out.datatype().c_str());
    }
    bool ok = out.shape_size() == static_cast<int>(info->shape.size());
    for (int d = 0; ok && d < out.shape_size(); ++d) {
      ok = out.shape(d) >= 0 && (info->shape[d] < 0 || info->shape[d] == out.shape(d));
    }
    if (ok && out.shape_size() > 0 && info->shape[0] < 0) ok = out.shape(0) == rows;
    int64_t n = 1;
    for (int64_t d : out.shape()) n *= d;
    const size_t element = qs::DataTypeSize(info->dtype);
    const size_t values = raw ? resp.raw_output_contents(i).size() / element
                              : ContentsCount(out.contents());
    if (!ok || values != static_cast<size_t>(n) ||
        (raw && resp.raw_output_contents(i).size() != n * element)) {
      Fail("ModelInfer output '%s': shape (%d dims, %zu values) inconsistent with the model "
           "or the %lld request rows",
           out.name().c_str(), out.shape_size(), values, static_cast<long long>(rows));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  qs::fuzz::GetServer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ModelInferRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return -1;  // not in the corpus
  qs::fuzz::FuzzServer& s = qs::fuzz::GetServer();
  {
    inference::ModelReadyRequest ready_req;
    ready_req.set_name(req.model_name());
    ready_req.set_version(req.model_version());
    inference::ModelReadyResponse ready;
    inference::ModelMetadataRequest meta_req;
    meta_req.set_name(req.model_name());
    meta_req.set_version(req.model_version());
    inference::ModelMetadataResponse meta;
    grpc::ServerContext ctx1, ctx2;
    const grpc::Status ready_status = s.kserve->ModelReady(&ctx1, &ready_req, &ready);
    const grpc::Status meta_status = s.kserve->ModelMetadata(&ctx2, &meta_req, &meta);
    if (!ready_status.ok()) Fail("ModelReady: %s", ready_status.error_message().c_str());
    qs::fuzz::CheckGrpcError(meta_status, "ModelMetadata");
    if (ready.ready() != meta_status.ok()) {
      Fail("ModelReady says %d, ModelMetadata says %s", ready.ready(),
           meta_status.error_message().c_str());
    }
  }
  ModelInferResponse resp;
  grpc::Status status;
  {
    grpc::ClientContext ctx;
    status = s.kserve_stub->ModelInfer(&ctx, req, &resp);
  }
  qs::fuzz::WaitIdle();
  if (!status.ok()) {
    qs::fuzz::CheckGrpcError(status, "ModelInfer");
    return 0;
  }
  if (req.inputs_size() == 0) Fail("ModelInfer OK without inputs");
  CheckResponse(req, resp);
  return 0;
}
