// quantserve.v1.InferenceService: Predict, GetModelMetadata, ListModels, Feedback
// over the models in a ModelRegistry.
#pragma once

#include "quantserve/v1/inference.grpc.pb.h"
#include "server/inference_call.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/tensor_codec.h"

namespace qs {

// Predict uses gRPC's callback API (server/inference_call.h); the metadata
// methods stay synchronous.
class InferenceServiceImpl final
    : public quantserve::v1::InferenceService::WithCallbackMethod_Predict<
          quantserve::v1::InferenceService::Service> {
 public:
  // `metrics` may be null (no metrics); it must outlive the service.
  InferenceServiceImpl(const ModelRegistry& registry, DecodeLimits limits,
                       const ServerMetrics* metrics = nullptr)
      : registry_(registry), limits_(limits), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* ctx,
                                    const quantserve::v1::PredictRequest* req,
                                    quantserve::v1::PredictResponse* resp) override;
  grpc::Status GetModelMetadata(grpc::ServerContext* ctx,
                                const quantserve::v1::GetModelMetadataRequest* req,
                                quantserve::v1::ModelMetadata* resp) override;
  grpc::Status ListModels(grpc::ServerContext* ctx,
                          const quantserve::v1::ListModelsRequest* req,
                          quantserve::v1::ListModelsResponse* resp) override;
  grpc::Status Feedback(grpc::ServerContext* ctx, const quantserve::v1::FeedbackRequest* req,
                        quantserve::v1::FeedbackResponse* resp) override;

 private:
  // NOT_FOUND naming the field and the served models.
  grpc::Status ModelNotFound(const std::string& name) const;
  // Resolves and validates a Predict request into `run`.
  grpc::Status Prepare(const quantserve::v1::PredictRequest& req,
                       quantserve::v1::PredictResponse* resp, RequestMetrics& metrics,
                       PreparedRun& run) const;

  const ModelRegistry& registry_;
  const DecodeLimits limits_;
  const ServerMetrics* const metrics_;
};

// Fills `out` from a served model (shared by GetModelMetadata and ListModels).
void FillModelMetadata(const ServedModel& model, quantserve::v1::ModelMetadata* out);

}  // namespace qs
