// quantserve-loadgen: asynchronous gRPC load on a running quantserve
// (quantserve.v1 Predict), closed or open loop, over a weighted mix of
// variants; prints throughput, p50/p90/p99/max latency and errors by status
// code (docs/BENCHMARKS.md#quantserve-loadgen). Exit code 1 if any call or
// the metadata lookup failed, 2 on a usage error.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "engine/data/dataset.h"
#include "engine/random_inputs.h"
#include "server/tensor_codec.h"
#include "tools/client/load_runner.h"
#include "tools/loadgen/async_load.h"
#include "tools/loadgen/loadgen_report.h"

namespace {

namespace v1 = quantserve::v1;
using qs::loadgen::LoadgenOptions;

int Fail(const std::string& what) {
  std::cerr << "quantserve-loadgen: " << what << "\n";
  return 1;
}

// At most this many distinct request messages per variant (cycled).
constexpr int64_t kMessages = 64;

// The rows each request carries: `kMessages` batches of random rows, or
// consecutive batches of the .npy rows (wrapping around).
absl::StatusOr<std::vector<std::vector<qs::Tensor>>> InputBatches(
    const std::vector<qs::ValueInfo>& inputs, const LoadgenOptions& o) {
  std::vector<std::vector<qs::Tensor>> batches;
  if (o.npy.empty()) {
    for (int64_t i = 0; i < kMessages; ++i) {
      auto b = qs::RandomInputs(inputs, o.batch, o.seed + static_cast<uint32_t>(i));
      if (!b.ok()) return b.status();
      batches.push_back(std::move(*b));
    }
    return batches;
  }
  if (inputs.size() != 1) {
    return absl::InvalidArgumentError("--npy: the model has " + std::to_string(inputs.size()) +
                                      " inputs; --npy feeds single-input models only");
  }
  qs::DatasetSpec spec;
  spec.format = qs::DatasetSpec::Format::kNpy;
  spec.inputs = o.npy;
  const qs::Shape sample(inputs[0].shape.begin() + 1, inputs[0].shape.end());
  auto data = qs::LoadDataset(spec, sample);
  if (!data.ok()) return data.status();
  if (data->size() == 0) return absl::InvalidArgumentError("--npy: no rows in " + o.npy);
  const int64_t n = std::min(kMessages, (data->size() + o.batch - 1) / o.batch);
  for (int64_t i = 0; i < n; ++i) {
    qs::Tensor rows = data->Batch(i * o.batch, o.batch);
    while (rows.shape()[0] < o.batch) {  // wrap around the end of the file
      qs::Tensor more = data->Batch(0, o.batch - rows.shape()[0]);
      qs::Shape shape = rows.shape();
      shape[0] += more.shape()[0];
      qs::Tensor joined(qs::DataType::kFloat32, shape);
      std::copy_n(rows.data<float>(), rows.num_elements(), joined.data<float>());
      std::copy_n(more.data<float>(), more.num_elements(),
                  joined.data<float>() + rows.num_elements());
      rows = std::move(joined);
    }
    batches.push_back({std::move(rows)});
  }
  return batches;
}

int Run(const LoadgenOptions& o) {
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  auto channel =
      grpc::CreateCustomChannel(o.address, grpc::InsecureChannelCredentials(), channel_args);
  auto stub = v1::InferenceService::NewStub(channel);

  auto meta = qs::client::FetchModelMetadata(channel, o.address, o.model, o.timeout_ms);
  if (!meta.ok()) return Fail(std::string(meta.status().message()));
  std::vector<qs::ValueInfo> inputs;
  for (const auto& in : meta->inputs()) {
    qs::ValueInfo info;
    info.name = in.name();
    info.dtype = qs::FromWireType(in.datatype());
    info.shape.assign(in.shape().begin(), in.shape().end());
    inputs.push_back(std::move(info));
  }
  auto batches = InputBatches(inputs, o);
  if (!batches.ok()) return Fail(batches.status().ToString());

  qs::loadgen::LoadgenRun run;
  run.options = o;
  std::vector<qs::loadgen::VariantLoad> loads;
  for (const auto& [name, weight] : o.variant_mix) {
    qs::loadgen::VariantLoad load;
    load.variant = name;
    load.weight = weight;
    load.rows_per_request = o.batch;
    for (const auto& tensors : *batches) {
      v1::PredictRequest req;
      req.set_model(o.model);
      req.set_variant(name);
      req.set_raw_output(true);
      for (size_t i = 0; i < tensors.size(); ++i) {
        qs::EncodeTensor(tensors[i], inputs[i].name, /*raw=*/true, req.add_inputs());
      }
      load.requests.push_back(std::move(req));
    }
    loads.push_back(std::move(load));
    run.variants.push_back(name.empty() ? meta->default_variant() : name);
  }

  qs::loadgen::PhaseOptions phase;
  phase.concurrency = o.concurrency;
  phase.timeout_ms = o.timeout_ms;
  phase.seed = o.seed;
  if (o.warmup_requests > 0) {
    phase.max_requests = o.warmup_requests;
    qs::loadgen::RunPhase(stub.get(), loads, phase);
  }
  phase.rate_per_s = o.rate_per_s;
  phase.duration_s = o.duration_s;
  phase.max_requests = o.requests;
  run.phase = qs::loadgen::RunPhase(stub.get(), loads, phase);

  if (o.json) {
    std::cout << qs::loadgen::RunJson(run).dump() << std::endl;
  } else {
    qs::loadgen::PrintRun(std::cout, run);
  }
  qs::loadgen::PrintErrors(std::cerr, run);
  for (const auto& v : run.phase.variants) {
    if (v.ok != v.requests) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  LoadgenOptions options;
  const int code = qs::loadgen::ParseLoadgenOptions(argc, argv, &options);
  if (code >= 0) return code;
  return Run(options);
}
