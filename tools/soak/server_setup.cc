#include "tools/soak/server_setup.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "quantserve/v1/inference.grpc.pb.h"

namespace qs::soak {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::chrono::system_clock::time_point In(milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

std::shared_ptr<grpc::Channel> NewChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

bool WaitReady(Target& target, const std::shared_ptr<grpc::Channel>& channel, double timeout_s) {
  const auto until = Clock::now() + Seconds(timeout_s);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  while (Clock::now() < until) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(milliseconds(1000)));
    inference::ServerReadyResponse resp;
    if (stub->ServerReady(&ctx, inference::ServerReadyRequest(), &resp).ok() && resp.ready()) {
      return true;
    }
    if (!target.Alive(channel)) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

std::optional<ModelInfo> Describe(const Options& o, const std::shared_ptr<grpc::Channel>& channel,
                                  std::string* error) {
  auto stub = v1::InferenceService::NewStub(channel);
  ModelInfo info;
  info.model = o.model;
  if (info.model.empty()) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(milliseconds(10000)));
    v1::ListModelsResponse list;
    grpc::Status s = stub->ListModels(&ctx, v1::ListModelsRequest(), &list);
    if (!s.ok() || list.models_size() == 0) {
      *error = "ListModels: " + s.error_message();
      return std::nullopt;
    }
    info.model = list.models(0).name();
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(In(milliseconds(10000)));
  v1::GetModelMetadataRequest req;
  req.set_model(info.model);
  v1::ModelMetadata meta;
  grpc::Status s = stub->GetModelMetadata(&ctx, req, &meta);
  if (!s.ok()) {
    *error = "GetModelMetadata: " + s.error_message();
    return std::nullopt;
  }
  if (meta.inputs_size() != 1 || meta.outputs_size() < 1 || meta.outputs(0).shape_size() != 2 ||
      meta.inputs(0).datatype() != v1::FP32) {
    *error = "model " + info.model + ": the soak needs one FP32 image input and [N, classes] logits";
    return std::nullopt;
  }
  info.input_name = meta.inputs(0).name();
  info.sample_shape.assign(meta.inputs(0).shape().begin() + 1, meta.inputs(0).shape().end());
  info.output_name = meta.outputs(0).name();
  info.classes = meta.outputs(0).shape(1);
  std::vector<std::string> all;
  for (const auto& v : meta.variants()) all.push_back(v.name());
  info.variants = o.variants.empty() ? all : o.variants;
  for (const auto& v : info.variants) {
    if (std::find(all.begin(), all.end(), v) == all.end()) {
      *error = "variant '" + v + "' is not served for model " + info.model;
      return std::nullopt;
    }
  }
  return info;
}

bool TakeReferences(Workload& w, const std::shared_ptr<grpc::Channel>& channel,
                    std::string* error) {
  auto stub = v1::InferenceService::NewStub(channel);
  const int64_t c = w.info().classes;
  for (int v = 0; v < static_cast<int>(w.info().variants.size()); ++v) {
    std::vector<float> logits(static_cast<size_t>(w.images() * c));
    for (int first = 0; first < w.images(); first += 16) {
      Expectation e{v, first, std::min(16, w.images() - first)};
      v1::PredictRequest req;
      w.FillPredict(e, &req);
      req.set_raw_output(true);
      v1::PredictResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(In(milliseconds(30000)));
      grpc::Status s = stub->Predict(&ctx, req, &resp);
      if (!s.ok() || resp.outputs_size() < 1 ||
          resp.outputs(0).raw_data().size() != static_cast<size_t>(e.rows * c) * sizeof(float)) {
        *error = "reference answers of " + w.info().variants[v] + ": " + s.error_message();
        return false;
      }
      std::memcpy(logits.data() + first * c, resp.outputs(0).raw_data().data(),
                  resp.outputs(0).raw_data().size());
    }
    w.SetReference(v, std::move(logits));
  }
  return true;
}

bool Prime(const Workload& w, const std::shared_ptr<grpc::Channel>& channel, int rows,
           std::string* error) {
  auto stub = v1::InferenceService::NewStub(channel);
  rows = std::min(rows, w.images());
  for (int v = 0; v < static_cast<int>(w.info().variants.size()); ++v) {
    for (int r = 0; r <= rows; ++r) {
      v1::PredictRequest req;
      w.FillPredict(Expectation{v, 0, r}, &req);
      v1::PredictResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(In(milliseconds(30000)));
      grpc::Status s = stub->Predict(&ctx, req, &resp);
      if (!s.ok() && !(r == 0 && s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)) {
        *error = "priming " + w.info().variants[v] + " with " + std::to_string(r) +
                 " rows: " + s.error_message();
        return false;
      }
    }
  }
  return true;
}

}  // namespace qs::soak
