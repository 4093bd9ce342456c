// inference.GRPCInferenceService: the KServe v2 / Open Inference Protocol
// over the models in a ModelRegistry, so KServe and Triton clients can call
// quantserve unchanged. A model's variants are its versions; an empty
// version selects the model's default variant.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "inference/grpc_predict_v2.grpc.pb.h"
#include "server/inference_call.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/tensor_codec.h"

namespace qs {

// ModelInfer uses gRPC's callback API (server/inference_call.h); the other
// methods stay synchronous.
class KServeServiceImpl final
    : public inference::GRPCInferenceService::WithCallbackMethod_ModelInfer<
          inference::GRPCInferenceService::Service> {
 public:
  // ServerReady is true once the registry holds every configured model
  // (ModelRegistry::loaded()) and is not draining. `metrics` may be null (no
  // metrics); it must outlive the service.
  KServeServiceImpl(const ModelRegistry& registry, DecodeLimits limits,
                    const ServerMetrics* metrics = nullptr)
      : registry_(registry), limits_(limits), metrics_(metrics) {}

  grpc::Status ServerLive(grpc::ServerContext* ctx, const inference::ServerLiveRequest* req,
                          inference::ServerLiveResponse* resp) override;
  grpc::Status ServerReady(grpc::ServerContext* ctx, const inference::ServerReadyRequest* req,
                           inference::ServerReadyResponse* resp) override;
  grpc::Status ModelReady(grpc::ServerContext* ctx, const inference::ModelReadyRequest* req,
                          inference::ModelReadyResponse* resp) override;
  grpc::Status ServerMetadata(grpc::ServerContext* ctx,
                              const inference::ServerMetadataRequest* req,
                              inference::ServerMetadataResponse* resp) override;
  grpc::Status ModelMetadata(grpc::ServerContext* ctx,
                             const inference::ModelMetadataRequest* req,
                             inference::ModelMetadataResponse* resp) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override;

 private:
  // The model and its variant named by `version` (empty: the default);
  // NOT_FOUND naming `name_field`/`version_field` and what exists.
  grpc::Status Resolve(const std::string& name, const std::string& version,
                       const std::string& name_field, const std::string& version_field,
                       std::shared_ptr<const ServedModel>* model,
                       const BuiltVariant** variant) const;

  // Resolves and validates a ModelInfer request into `run`.
  grpc::Status Prepare(const inference::ModelInferRequest& req,
                       inference::ModelInferResponse* resp, RequestMetrics& metrics,
                       PreparedRun& run) const;

  const ModelRegistry& registry_;
  const DecodeLimits limits_;
  const ServerMetrics* const metrics_;
};

}  // namespace qs
